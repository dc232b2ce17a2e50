/* Layout changes and im2col / col2im for convolutions on NHWC activations
 * (see clvit/kernels_cnn.h). The GEMM itself is the weight layer's. */
#include "clvit/kernels_cnn.h"

#include <string.h>

void clv_nchw_to_nhwc(float *y, const float *x, int64_t B, int64_t C, int64_t H, int64_t W)
{
    const int64_t HW = H * W;
#pragma omp parallel for schedule(static) if (B * HW * C > 65536)
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < HW; i++)
            for (int64_t c = 0; c < C; c++)
                y[(b * HW + i) * C + c] = x[(b * C + c) * HW + i];
}

void clv_nchw_to_nhwc_backward(float *dx, const float *dy, int64_t B, int64_t C, int64_t H, int64_t W)
{
    const int64_t HW = H * W;
#pragma omp parallel for schedule(static) if (B * HW * C > 65536)
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < HW; i++)
                dx[(b * C + c) * HW + i] += dy[(b * HW + i) * C + c];
}

void clv_im2col(float *cols, const float *x, int64_t B, int64_t H, int64_t W, int64_t C, int64_t k, int64_t s,
                int64_t p)
{
    const int64_t Ho = clv_conv_out_size(H, k, s, p), Wo = clv_conv_out_size(W, k, s, p), K = C * k * k;
#pragma omp parallel for schedule(static) if (B * Ho * Wo * K > 65536)
    for (int64_t row = 0; row < B * Ho; row++) {
        const int64_t b = row / Ho, oy = row % Ho;
        for (int64_t ox = 0; ox < Wo; ox++) {
            float *dst = cols + ((b * Ho + oy) * Wo + ox) * K;
            for (int64_t ky = 0; ky < k; ky++) {
                const int64_t iy = oy * s - p + ky;
                for (int64_t kx = 0; kx < k; kx++) {
                    const int64_t ix = ox * s - p + kx, j = ky * k + kx;
                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
                        for (int64_t c = 0; c < C; c++)
                            dst[c * k * k + j] = 0.0f;
                        continue;
                    }
                    const float *src = x + ((b * H + iy) * W + ix) * C;
                    for (int64_t c = 0; c < C; c++)
                        dst[c * k * k + j] = src[c];
                }
            }
        }
    }
}

void clv_col2im(float *dx, const float *dcols, int64_t B, int64_t H, int64_t W, int64_t C, int64_t k, int64_t s,
                int64_t p)
{
    const int64_t Ho = clv_conv_out_size(H, k, s, p), Wo = clv_conv_out_size(W, k, s, p), K = C * k * k;
    /* one image per iteration: images write disjoint parts of dx, and the
     * order of the additions into each pixel is fixed */
#pragma omp parallel for schedule(static) if (B * Ho * Wo * K > 65536)
    for (int64_t b = 0; b < B; b++)
        for (int64_t oy = 0; oy < Ho; oy++)
            for (int64_t ox = 0; ox < Wo; ox++) {
                const float *src = dcols + ((b * Ho + oy) * Wo + ox) * K;
                for (int64_t ky = 0; ky < k; ky++) {
                    const int64_t iy = oy * s - p + ky;
                    if (iy < 0 || iy >= H)
                        continue;
                    for (int64_t kx = 0; kx < k; kx++) {
                        const int64_t ix = ox * s - p + kx, j = ky * k + kx;
                        if (ix < 0 || ix >= W)
                            continue;
                        float *d = dx + ((b * H + iy) * W + ix) * C;
                        for (int64_t c = 0; c < C; c++)
                            d[c] += src[c * k * k + j];
                    }
                }
            }
}
