/* Training augmentation on presented (normalized CHW) images. Internal. */
#ifndef CLVIT_DATA_AUGMENT_H
#define CLVIT_DATA_AUGMENT_H

#include "clvit/data.h"

/* Random crop with zero-pixel padding (torchvision RandomCrop(size,
 * padding)) and, with flip, a horizontal flip with probability 1/2. The
 * draws are a function of key and the sample's position in the epoch.
 * fill[k] is the normalized value of a zero pixel in channel k; tmp holds
 * one image. */
void clv_augment_image(float *img, float *tmp, int c, int h, int w, int padding, int flip, const float *fill,
                       uint64_t key, int64_t position);

#endif
