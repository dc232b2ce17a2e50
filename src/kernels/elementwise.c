/* Elementwise and row-broadcast helpers: residual add, per-column scale,
 * column sums. Column sums run over fixed column blocks, each summed in row
 * order by one thread, so the result does not depend on the thread count. */
#include "clvit/kernels.h"

/* Columns per block in column reductions: a few AVX registers of partial
 * sums, and enough blocks to share C = 192 between threads. */
#define COLBLOCK 32

void clv_add_forward(float *y, const float *a, const float *b, int64_t n)
{
    float *restrict yr = y;
    const float *restrict ar = a, *restrict br = b;
#pragma omp parallel for simd if (n > 65536) schedule(static)
    for (int64_t i = 0; i < n; i++)
        yr[i] = ar[i] + br[i];
}

/* no restrict: y may alias a or b (each element is read before it is written) */
void clv_mul_forward(float *y, const float *a, const float *b, int64_t n)
{
#pragma omp parallel for simd if (n > 65536) schedule(static)
    for (int64_t i = 0; i < n; i++)
        y[i] = a[i] * b[i];
}

void clv_scale_columns(float *y, const float *s, int64_t N, int64_t C)
{
#pragma omp parallel for if (N * C > 32768) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        float *restrict yr = y + n * C;
        const float *restrict sr = s;
        for (int64_t c = 0; c < C; c++)
            yr[c] *= sr[c];
    }
}

void clv_colsum_add(float *out, const float *a, int64_t N, int64_t C)
{
    const int64_t nblocks = (C + COLBLOCK - 1) / COLBLOCK;
#pragma omp parallel for if (N * C > 32768) schedule(static)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        const int64_t c0 = blk * COLBLOCK;
        const int64_t nc = C - c0 < COLBLOCK ? C - c0 : COLBLOCK;
        float acc[COLBLOCK] = {0};
        for (int64_t n = 0; n < N; n++) {
            const float *restrict ar = a + n * C + c0;
            for (int64_t j = 0; j < nc; j++)
                acc[j] += ar[j];
        }
        for (int64_t j = 0; j < nc; j++)
            out[c0 + j] += acc[j];
    }
}

void clv_scale_columns_backward(float *ds, float *dsum, const float *dy, const float *z, const float *sdiv, int64_t N,
                                int64_t C)
{
    /* column blocks in parallel, rows in order within each: the sums do not depend on the thread count */
    const int64_t nblocks = (C + COLBLOCK - 1) / COLBLOCK;
#pragma omp parallel for if (N * C > 32768) schedule(static)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        const int64_t c0 = blk * COLBLOCK;
        const int64_t nc = C - c0 < COLBLOCK ? C - c0 : COLBLOCK;
        float acc[COLBLOCK] = {0}, sum[COLBLOCK] = {0};
        for (int64_t n = 0; n < N; n++) {
            const float *restrict dyr = dy + n * C + c0, *restrict zr = z + n * C + c0;
            for (int64_t j = 0; j < nc; j++) {
                acc[j] += dyr[j] * zr[j];
                sum[j] += dyr[j];
            }
        }
        for (int64_t j = 0; j < nc; j++) {
            ds[c0 + j] = sdiv ? acc[j] / sdiv[c0 + j] : acc[j];
            dsum[c0 + j] = sum[j];
        }
    }
}
