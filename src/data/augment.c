/* Random crop with padding and horizontal flip (see augment.h). */
#include "data/augment.h"

#include <string.h>

void clv_augment_image(float *img, float *tmp, int c, int h, int w, int padding, int flip, const float *fill,
                       uint64_t key, int64_t position)
{
    const uint64_t base = (uint64_t)position * 3;
    int dy = 0, dx = 0;
    if (padding > 0) {
        dy = (int)clv_rng_below(key, base, (uint64_t)(2 * padding + 1)) - padding;
        dx = (int)clv_rng_below(key, base + 1, (uint64_t)(2 * padding + 1)) - padding;
    }
    int mirror = flip && clv_rng_uniform(key, base + 2) < 0.5f;
    if (!dy && !dx && !mirror)
        return;
    const size_t plane = (size_t)h * w;
    memcpy(tmp, img, plane * c * sizeof *img);
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int sx = mirror ? w - 1 - x : x; /* flip after the crop, as the torchvision pipeline does */
                int yy = y + dy, xx = sx + dx;
                img[k * plane + (size_t)y * w + x] =
                    yy >= 0 && yy < h && xx >= 0 && xx < w ? tmp[k * plane + (size_t)yy * w + xx] : fill[k];
            }
}
