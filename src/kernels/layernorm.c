/* LayerNorm over the last dimension, as torch.nn.LayerNorm (biased variance,
 * eps inside the square root). The forward saves mean and 1/std per row.
 * The backward is two passes: dx row by row, then dw and db over column
 * blocks (each column summed in row order by one thread) so that the
 * parameter gradients do not depend on the thread count. */
#include "clvit/kernels.h"

#include <math.h>

#define COLBLOCK 32

void clv_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                           int64_t N, int64_t C, float eps)
{
    clv_layernorm_forward_bf16(y, NULL, mean, rstd, x, w, b, N, C, eps);
}

void clv_layernorm_forward_bf16(float *y, clv_bf16 *yh, float *mean, float *rstd, const float *x, const float *w,
                                const float *b, int64_t N, int64_t C, float eps)
{
#pragma omp parallel for if (N * C > 16384) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *restrict xr = x + n * C;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t c = 0; c < C; c++)
            s += xr[c];
        const float m = s / (float)C;
        /* two passes: the variance of the centred values does not cancel */
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int64_t c = 0; c < C; c++) {
            const float d = xr[c] - m;
            v += d * d;
        }
        const float r = 1.0f / sqrtf(v / (float)C + eps);
        if (y && yh) {
            float *restrict yr = y + n * C;
            clv_bf16 *restrict hr = yh + n * C;
            for (int64_t c = 0; c < C; c++) {
                yr[c] = (xr[c] - m) * r * w[c] + b[c];
                hr[c] = clv_bf16_from_float(yr[c]);
            }
        } else if (y) {
            float *restrict yr = y + n * C;
            for (int64_t c = 0; c < C; c++)
                yr[c] = (xr[c] - m) * r * w[c] + b[c];
        } else {
            clv_bf16 *restrict hr = yh + n * C;
            for (int64_t c = 0; c < C; c++)
                hr[c] = clv_bf16_from_float((xr[c] - m) * r * w[c] + b[c]);
        }
        mean[n] = m;
        rstd[n] = r;
    }
}

void clv_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                            const float *mean, const float *rstd, int64_t N, int64_t C)
{
    if (dx) {
        /* dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w */
#pragma omp parallel for if (N * C > 16384) schedule(static)
        for (int64_t n = 0; n < N; n++) {
            const float *restrict xr = x + n * C, *restrict dyr = dy + n * C;
            float *restrict dxr = dx + n * C;
            const float m = mean[n], r = rstd[n];
            float sg = 0.0f, sgx = 0.0f;
#pragma omp simd reduction(+ : sg, sgx)
            for (int64_t c = 0; c < C; c++) {
                const float g = dyr[c] * w[c];
                sg += g;
                sgx += g * (xr[c] - m) * r;
            }
            sg /= (float)C;
            sgx /= (float)C;
            for (int64_t c = 0; c < C; c++) {
                const float xhat = (xr[c] - m) * r;
                dxr[c] += r * (dyr[c] * w[c] - sg - xhat * sgx);
            }
        }
    }
    if (!dw && !db)
        return;
    const int64_t nblocks = (C + COLBLOCK - 1) / COLBLOCK;
#pragma omp parallel for if (N * C > 16384) schedule(static)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        const int64_t c0 = blk * COLBLOCK;
        const int64_t nc = C - c0 < COLBLOCK ? C - c0 : COLBLOCK;
        float aw[COLBLOCK] = {0}, ab[COLBLOCK] = {0};
        for (int64_t n = 0; n < N; n++) {
            const float *restrict xr = x + n * C + c0, *restrict dyr = dy + n * C + c0;
            const float m = mean[n], r = rstd[n];
            for (int64_t j = 0; j < nc; j++) {
                aw[j] += dyr[j] * ((xr[j] - m) * r);
                ab[j] += dyr[j];
            }
        }
        if (dw)
            for (int64_t j = 0; j < nc; j++)
                dw[c0 + j] += aw[j];
        if (db)
            for (int64_t j = 0; j < nc; j++)
                db[c0 + j] += ab[j];
    }
}
