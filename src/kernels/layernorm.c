/* LayerNorm over the last dimension, as torch.nn.LayerNorm (biased variance,
 * eps inside the square root). The forward saves mean and 1/std per row.
 * The backward is one pass over the rows: dx row by row, and dw and db as
 * shares of fixed groups of rows (each summed in row order), added in group
 * order, so that the parameter gradients do not depend on the thread count
 * (without dx the same sums go over column blocks). */
#include "clvit/kernels.h"

#include <math.h>
#include <stdlib.h>

#define COLBLOCK 32
#define GROUP_ROWS 64

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

/* dw, db's share of rows r0 .. r1 - 1 over columns c0 .. c0 + nc - 1, summed in row order from 0 */
static void group_sums(float *restrict aw, float *restrict ab, const float *dy, const float *x, const float *mean,
                       const float *rstd, int64_t r0, int64_t r1, int64_t c0, int64_t nc, int64_t C)
{
    for (int64_t j = 0; j < nc; j++)
        aw[j] = ab[j] = 0.0f;
    for (int64_t n = r0; n < r1; n++) {
        const float *restrict xr = x + n * C + c0, *restrict dyr = dy + n * C + c0;
        const float m = mean[n], r = rstd[n];
        for (int64_t j = 0; j < nc; j++) {
            aw[j] += dyr[j] * ((xr[j] - m) * r);
            ab[j] += dyr[j];
        }
    }
}

void clv_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                            const float *mean, const float *rstd, int64_t N, int64_t C)
{
    const int sums = dw || db;
    const int64_t groups = (N + GROUP_ROWS - 1) / GROUP_ROWS;
    /* with dx: one pass, each group of rows also summing its share of dw and db */
    float *parts = dx && sums ? malloc((size_t)(groups * 2 * C) * sizeof(float)) : NULL;
    if (dx) {
        /* dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w */
#pragma omp parallel for if (N * C > 16384) schedule(static)
        for (int64_t gi = 0; gi < groups; gi++) {
            const int64_t r1 = (gi + 1) * GROUP_ROWS < N ? (gi + 1) * GROUP_ROWS : N;
            float *restrict pw = parts ? parts + gi * 2 * C : NULL, *restrict pb = parts ? pw + C : NULL;
            if (parts)
                for (int64_t c = 0; c < C; c++)
                    pw[c] = pb[c] = 0.0f;
            for (int64_t n = gi * GROUP_ROWS; n < r1; n++) {
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
                if (parts)
#pragma omp simd
                    for (int64_t c = 0; c < C; c++) {
                        const float xhat = (xr[c] - m) * r;
                        dxr[c] += r * (dyr[c] * w[c] - sg - xhat * sgx);
                        pw[c] += dyr[c] * xhat;
                        pb[c] += dyr[c];
                    }
                else
                    for (int64_t c = 0; c < C; c++) {
                        const float xhat = (xr[c] - m) * r;
                        dxr[c] += r * (dyr[c] * w[c] - sg - xhat * sgx);
                    }
            }
        }
    }
    if (!sums)
        return;
    if (parts) {
        /* the groups' shares in group order */
#pragma omp parallel for if (groups * C > 16384) schedule(static)
        for (int64_t c = 0; c < C; c++) {
            float sw = 0.0f, sb = 0.0f;
            for (int64_t gi = 0; gi < groups; gi++) {
                sw += parts[gi * 2 * C + c];
                sb += parts[gi * 2 * C + C + c];
            }
            if (dw)
                dw[c] += sw;
            if (db)
                db[c] += sb;
        }
        free(parts);
        return;
    }
    /* without dx (or without memory for the shares): the same sums, group by group, over column blocks */
    const int64_t nblocks = (C + COLBLOCK - 1) / COLBLOCK;
#pragma omp parallel for if (N * C > 16384) schedule(static)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        const int64_t c0 = blk * COLBLOCK;
        const int64_t nc = C - c0 < COLBLOCK ? C - c0 : COLBLOCK;
        float tw[COLBLOCK] = {0}, tb[COLBLOCK] = {0}, aw[COLBLOCK], ab[COLBLOCK];
        for (int64_t gi = 0; gi < groups; gi++) {
            const int64_t r1 = (gi + 1) * GROUP_ROWS < N ? (gi + 1) * GROUP_ROWS : N;
            group_sums(aw, ab, dy, x, mean, rstd, gi * GROUP_ROWS, r1, c0, nc, C);
            for (int64_t j = 0; j < nc; j++) {
                tw[j] += aw[j];
                tb[j] += ab[j];
            }
        }
        if (dw)
            for (int64_t j = 0; j < nc; j++)
                dw[c0 + j] += tw[j];
        if (db)
            for (int64_t j = 0; j < nc; j++)
                db[c0 + j] += tb[j];
    }
}
