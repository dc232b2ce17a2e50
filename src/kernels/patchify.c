/* Patch extraction for a convolution with kernel = stride = P and no padding
 * (ViT's patch embedding): the conv becomes one GEMM over the patch rows.
 * Every image element belongs to exactly one patch, so the backward scatter
 * has no overlaps and parallelizes over (image, patch row) without races. */
#include "clvit/kernels.h"

#include <string.h>

void clv_patchify(float *patches, const float *img, int64_t B, int64_t Cin, int64_t H, int64_t W, int64_t P)
{
    const int64_t gh = H / P, gw = W / P, row = Cin * P * P;
#pragma omp parallel for collapse(2) if (B * Cin * H * W > 32768) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t py = 0; py < gh; py++)
            for (int64_t px = 0; px < gw; px++) {
                float *dst = patches + ((b * gh + py) * gw + px) * row;
                for (int64_t c = 0; c < Cin; c++)
                    for (int64_t i = 0; i < P; i++) {
                        const float *src = img + ((b * Cin + c) * H + py * P + i) * W + px * P;
                        memcpy(dst + (c * P + i) * P, src, (size_t)P * sizeof(float));
                    }
            }
}

void clv_patchify_backward(float *dimg, const float *dpatches, int64_t B, int64_t Cin, int64_t H, int64_t W, int64_t P)
{
    const int64_t gh = H / P, gw = W / P, row = Cin * P * P;
#pragma omp parallel for collapse(2) if (B * Cin * H * W > 32768) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t py = 0; py < gh; py++)
            for (int64_t px = 0; px < gw; px++) {
                const float *src = dpatches + ((b * gh + py) * gw + px) * row;
                for (int64_t c = 0; c < Cin; c++)
                    for (int64_t i = 0; i < P; i++) {
                        float *restrict dst = dimg + ((b * Cin + c) * H + py * P + i) * W + px * P;
                        const float *restrict s = src + (c * P + i) * P;
                        for (int64_t j = 0; j < P; j++)
                            dst[j] += s[j];
                    }
            }
}
