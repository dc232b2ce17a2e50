/* In-memory datasets (IDX, CIFAR): all pixels held once as uint8 HWC.
 * Internal to src/data. */
#ifndef CLVIT_DATA_DATASET_MEMORY_H
#define CLVIT_DATA_DATASET_MEMORY_H

#include "clvit/data.h"

/* A dataset of n images of h x w x c bytes; pixels and labels are taken
 * over (freed with the dataset). num_classes = largest label + 1. */
clv_dataset *clv_memory_dataset(const char *name, const char *path, int64_t n, int h, int w, int c, uint8_t *pixels,
                                int32_t *labels, clv_err *err);

#endif
