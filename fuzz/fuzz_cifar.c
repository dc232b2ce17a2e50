/* libFuzzer harness: CIFAR binary files (src/data/cifar.c). The input is
 * one file, read as CIFAR-10 and as CIFAR-100 records; an accepted file's
 * every image is fetched through the dataset interface. */
#include "fuzz_util.h"

#include "clvit/data.h"

static void read_as(const char *path, int cifar100)
{
    clv_err err = {{0}};
    clv_dataset *ds = NULL;
    const char *paths[1] = {path};
    int rc = clv_cifar_open(paths, 1, cifar100, "fuzz", &ds, &err);
    fuzz_check_err(rc, &err);
    if (rc)
        return;
    uint8_t img[32 * 32 * 3];
    for (int64_t i = 0; i < ds->n; i++) {
        int h, w;
        if (ds->ops->get(ds, i, img, sizeof img, &h, &w, &err) || ds->labels[i] < 0 ||
            ds->labels[i] >= ds->num_classes)
            abort(); /* an accepted file yields every image and a label in range */
    }
    clv_dataset_free(ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_input_file("data_batch.bin", data, size);
    read_as(path, 0);
    read_as(path, 1);
    return 0;
}
