/* Random crop with padding and horizontal flip (see augment.h). */
#include "data/augment.h"

#include <math.h>
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

clv_crop_box clv_center_crop_box(int h, int w, int out_h, int out_w, double crop_pct)
{
    /* the shorter side resized to out / crop_pct, then an out_h x out_w center crop, in source pixels */
    const double s = (h < w ? h : w) * crop_pct;
    const double bh = s * (out_h >= out_w ? 1.0 : (double)out_h / out_w);
    const double bw = s * (out_w >= out_h ? 1.0 : (double)out_w / out_h);
    return (clv_crop_box){.y = (h - bh) / 2, .x = (w - bw) / 2, .h = bh, .w = bw};
}

clv_crop_box clv_random_resized_crop_box(int h, int w, uint64_t key, int64_t position)
{
    const double area = (double)h * w, lo = log(3.0 / 4.0), hi = log(4.0 / 3.0);
    const uint64_t base = (uint64_t)position * 64 + 3; /* clear of clv_augment_image's draws */
    for (int i = 0; i < 10; i++) {
        const double target = area * (0.08 + 0.92 * clv_rng_uniform(key, base + 4 * (uint64_t)i));
        const double ratio = exp(lo + (hi - lo) * clv_rng_uniform(key, base + 4 * (uint64_t)i + 1));
        const int cw = (int)lround(sqrt(target * ratio)), ch = (int)lround(sqrt(target / ratio));
        if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
            const int y = (int)clv_rng_below(key, base + 4 * (uint64_t)i + 2, (uint64_t)(h - ch + 1));
            const int x = (int)clv_rng_below(key, base + 4 * (uint64_t)i + 3, (uint64_t)(w - cw + 1));
            return (clv_crop_box){.y = y, .x = x, .h = ch, .w = cw};
        }
    }
    double ch = h, cw = w; /* fallback: the whole image, cut to the nearest allowed ratio */
    if ((double)w / h < 3.0 / 4.0)
        ch = lround(w / (3.0 / 4.0));
    else if ((double)w / h > 4.0 / 3.0)
        cw = lround(h * (4.0 / 3.0));
    return (clv_crop_box){.y = (int)((h - ch) / 2), .x = (int)((w - cw) / 2), .h = ch, .w = cw};
}
