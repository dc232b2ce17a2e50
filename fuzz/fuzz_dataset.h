/* Shared by the harnesses of readers that open a training and a validation
 * set (decathlon, image folders): every image of an accepted set is decoded
 * through the dataset interface, and every label is checked against the
 * class count. Header-only, like fuzz_util.h. */
#ifndef CLVIT_FUZZ_DATASET_H
#define CLVIT_FUZZ_DATASET_H

#include "fuzz_util.h"

#include "clvit/data.h"

/* Aborts on a label out of range or an image that fails without a message
 * (a listed file that is no image, e.g. notes.txt or a folder, must fail
 * with one); then frees both sets. */
static void fuzz_fetch_all_and_free(clv_dataset *tr, clv_dataset *va)
{
    uint8_t img[64 * 64 * 3];
    clv_err err = {{0}};
    for (int s = 0; s < 2; s++) {
        const clv_dataset *ds = s ? va : tr;
        for (int64_t i = 0; i < ds->n; i++) {
            int h, w;
            if (ds->labels[i] < 0 || ds->labels[i] >= ds->num_classes)
                abort();
            fuzz_check_err(ds->ops->get(ds, i, img, sizeof img, &h, &w, &err), &err);
        }
    }
    clv_dataset_free(tr);
    clv_dataset_free(va);
}

#endif
