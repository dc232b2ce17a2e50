/* libFuzzer harness: Visual Decathlon annotation files (src/data/decathlon.c).
 * The input is a domain's train annotations and its val annotations joined
 * by the separator below (no separator: the same JSON for both). They are
 * read against a data root made once per process: the layout of
 * tests/fixtures/data/decathlon (data/{alpha,beta}/{train,val}/000000k.png,
 * valid PNGs), plus a link to a file outside the root and a text file. An
 * accepted set has every image decoded through the dataset interface. */
#include "fuzz_dataset.h"
#include "fuzz_tiny_png.h"

#include <sys/stat.h>

#include "clvit/data.h"

#define SEPARATOR "\nDECATHLON-VAL\n"

static char root[512];

static void make_root(void)
{
    char path[1024];
    snprintf(root, sizeof root, "%s/root", fuzz_dir());
    static const char *const dirs[] = {"", "/annotations", "/data", "/data/alpha", "/data/alpha/train",
                                       "/data/alpha/val", "/data/beta", "/data/beta/train", "/data/beta/val"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        snprintf(path, sizeof path, "%s%s", root, dirs[i]);
        if (mkdir(path, 0700))
            abort();
    }
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < 3; k++) {
            snprintf(path, sizeof path, "%s/data/%s/train/%07d.png", root, d ? "beta" : "alpha", k);
            fuzz_write(path, fuzz_tiny_png, sizeof fuzz_tiny_png);
            snprintf(path, sizeof path, "%s/data/%s/val/%07d.png", root, d ? "beta" : "alpha", k);
            fuzz_write(path, fuzz_tiny_png, sizeof fuzz_tiny_png);
        }
    snprintf(path, sizeof path, "%s/outside.png", fuzz_dir());
    fuzz_write(path, fuzz_tiny_png, sizeof fuzz_tiny_png);
    char link[1024];
    snprintf(link, sizeof link, "%s/data/alpha/train/link.png", root);
    if (symlink(path, link))
        abort();
    snprintf(path, sizeof path, "%s/data/alpha/notes.txt", root);
    fuzz_write(path, (const uint8_t *)"not an image\n", 13);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!root[0])
        make_root();
    const uint8_t *sep = memmem(data, size, SEPARATOR, strlen(SEPARATOR));
    const size_t n_train = sep ? (size_t)(sep - data) : size;
    const uint8_t *val = sep ? sep + strlen(SEPARATOR) : data;
    const size_t n_val = sep ? size - n_train - strlen(SEPARATOR) : size;
    char path[1024];
    snprintf(path, sizeof path, "%s/annotations/fz_train.json", root);
    fuzz_write(path, data, n_train);
    snprintf(path, sizeof path, "%s/annotations/fz_val.json", root);
    fuzz_write(path, val, n_val);
    clv_dataset *tr = NULL, *va = NULL;
    clv_err err = {{0}};
    int rc = clv_decathlon_open(root, "fz", &tr, &va, &err);
    fuzz_check_err(rc, &err);
    if (rc)
        return 0;
    for (int s = 0; s < 2; s++)
        if ((s ? va : tr)->n_groups != 1 || (s ? va : tr)->num_classes < 1)
            abort();
    fuzz_fetch_all_and_free(tr, va);
    return 0;
}
