/* libFuzzer harness: IDX files, plain or gzip (src/data/idx.c). The input is
 * the images file and the labels file joined by the separator below (no
 * separator: the labels file is empty); an accepted pair's every image is
 * fetched through the dataset interface. */
#include "fuzz_util.h"

#include "clvit/data.h"

#define SEPARATOR "\nIDX-LABELS\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *sep = memmem(data, size, SEPARATOR, strlen(SEPARATOR));
    size_t n_images = sep ? (size_t)(sep - data) : size;
    const size_t skip = sep ? strlen(SEPARATOR) : 0;
    char images[512];
    snprintf(images, sizeof images, "%s", fuzz_input_file("images-idx3-ubyte", data, n_images));
    const char *labels = fuzz_input_file("labels-idx1-ubyte", data + n_images + skip, size - n_images - skip);
    clv_err err = {{0}};
    clv_dataset *ds = NULL;
    int rc = clv_idx_open(images, labels, "fuzz", &ds, &err);
    fuzz_check_err(rc, &err);
    if (rc)
        return 0;
    const size_t cap = (size_t)ds->height * ds->width * 3;
    uint8_t *img = malloc(cap);
    for (int64_t i = 0; i < ds->n && img; i++) {
        int h, w;
        if (ds->ops->get(ds, i, img, cap, &h, &w, &err) || h != ds->height || w != ds->width)
            abort();
    }
    free(img);
    clv_dataset_free(ds);
    return 0;
}
