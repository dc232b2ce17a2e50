/* Max pooling and global average pooling on NHWC activations (see
 * clvit/kernels_cnn.h). */
#include "clvit/kernels_cnn.h"

#include <math.h>

void clv_maxpool_forward(float *y, int32_t *argmax, const float *x, int64_t B, int64_t H, int64_t W, int64_t C,
                         int64_t k, int64_t s, int64_t p)
{
    const int64_t Ho = clv_conv_out_size(H, k, s, p), Wo = clv_conv_out_size(W, k, s, p);
#pragma omp parallel for schedule(static) if (B * Ho * Wo * C > 65536)
    for (int64_t row = 0; row < B * Ho; row++) {
        const int64_t b = row / Ho, oy = row % Ho;
        for (int64_t ox = 0; ox < Wo; ox++) {
            float *yr = y + ((b * Ho + oy) * Wo + ox) * C;
            int32_t *ar = argmax + ((b * Ho + oy) * Wo + ox) * C;
            for (int64_t c = 0; c < C; c++)
                yr[c] = -INFINITY, ar[c] = -1;
            for (int64_t ky = 0; ky < k; ky++) {
                const int64_t iy = oy * s - p + ky;
                if (iy < 0 || iy >= H)
                    continue;
                for (int64_t kx = 0; kx < k; kx++) {
                    const int64_t ix = ox * s - p + kx;
                    if (ix < 0 || ix >= W)
                        continue;
                    const int64_t pix = (b * H + iy) * W + ix;
                    const float *xr = x + pix * C;
                    for (int64_t c = 0; c < C; c++)
                        if (xr[c] > yr[c] || ar[c] < 0 || isnan(xr[c])) {
                            yr[c] = xr[c];
                            ar[c] = (int32_t)pix;
                        }
                }
            }
        }
    }
}

void clv_maxpool_backward(float *dx, const float *dy, const int32_t *argmax, int64_t B, int64_t Ho, int64_t Wo,
                          int64_t C)
{
    /* windows overlap, so scatter image by image (disjoint parts of dx) */
#pragma omp parallel for schedule(static) if (B * Ho * Wo * C > 65536)
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = b * Ho * Wo; i < (b + 1) * Ho * Wo; i++)
            for (int64_t c = 0; c < C; c++)
                dx[(int64_t)argmax[i * C + c] * C + c] += dy[i * C + c];
}

void clv_avgpool_forward(float *y, const float *x, int64_t B, int64_t HW, int64_t C)
{
    const float inv = 1.0f / (float)HW;
#pragma omp parallel for schedule(static) if (B * HW * C > 65536)
    for (int64_t b = 0; b < B; b++) {
        float *yr = y + b * C;
        for (int64_t c = 0; c < C; c++)
            yr[c] = 0.0f;
        for (int64_t i = 0; i < HW; i++)
            for (int64_t c = 0; c < C; c++)
                yr[c] += x[(b * HW + i) * C + c];
        for (int64_t c = 0; c < C; c++)
            yr[c] *= inv;
    }
}

void clv_avgpool_backward(float *dx, const float *dy, int64_t B, int64_t HW, int64_t C)
{
    const float inv = 1.0f / (float)HW;
#pragma omp parallel for schedule(static) if (B * HW * C > 65536)
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < HW; i++)
            for (int64_t c = 0; c < C; c++)
                dx[(b * HW + i) * C + c] += dy[b * C + c] * inv;
}
