/* What follows a weight layer's GEMM, in one pass over its output rows:
 * bias, output scale (saving the pre-scale values for the backward), the
 * residual add and GELU. As separate passes each read and wrote the whole
 * N x C output again; on the ViT's shapes these passes are memory-bound and
 * cost about as much as a small GEMM. The arithmetic and its order are those
 * of the separate kernels, so results are the same floats. */
#include "clvit/kernels.h"
#include "kernels/vmath.h"

#include <math.h>

/* GELU's erf and exp make its loop compute-bound: with AVX-512, use its full width (GCC's tuning
 * for recent Intel cores stops at 256 bits). No loop here reduces across lanes, so the width
 * changes no result. */
#pragma GCC target("prefer-vector-width=512")

void clv_linear_epilogue(float *y, float *z, const float *b, const float *s, const float *res, float *g, int64_t N,
                         int64_t C)
{
    clv_linear_epilogue_bf16(y, z, b, s, res, g, NULL, N, C);
}

void clv_linear_epilogue_bf16(float *y, float *z, const float *b, const float *s, const float *res, float *g,
                              clv_bf16 *gh, int64_t N, int64_t C)
{
    clv_linear_epilogue_lowrank(y, z, NULL, NULL, 0, b, s, res, g, gh, N, C);
}

void clv_linear_epilogue_lowrank(float *y, float *z, const float *U, const float *Q, int64_t K, const float *b,
                                 const float *s, const float *res, float *g, clv_bf16 *gh, int64_t N, int64_t C)
{
    /* per row, one simple loop per step: each vectorizes, and the row stays in L1 between them */
#pragma omp parallel for if (N * C > 32768) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        float *yr = y + n * C; /* no restrict: w is yr when z is NULL */
        float *w = z ? z + n * C : yr; /* where the GEMM wrote */
        for (int64_t k = 0; k < K; k++) {
            const float u = U[n * K + k], *restrict q = Q + k * C;
            for (int64_t c = 0; c < C; c++)
                w[c] = w[c] + u * q[c];
        }
        if (b)
            for (int64_t c = 0; c < C; c++)
                w[c] = w[c] + b[c];
        if (z && s)
            for (int64_t c = 0; c < C; c++)
                yr[c] = w[c] * s[c];
        else if (s)
            for (int64_t c = 0; c < C; c++)
                yr[c] = yr[c] * s[c];
        else if (z)
            for (int64_t c = 0; c < C; c++)
                yr[c] = w[c];
        if (res) {
            const float *restrict rr = res + n * C;
            for (int64_t c = 0; c < C; c++)
                yr[c] = yr[c] + rr[c];
        }
        if (g && gh) {
            float *restrict gr = g + n * C;
            clv_bf16 *restrict hr = gh + n * C;
            for (int64_t c = 0; c < C; c++) {
                gr[c] = clv_gelu1(yr[c]);
                hr[c] = clv_bf16_from_float(gr[c]);
            }
        } else if (g) {
            float *restrict gr = g + n * C;
            for (int64_t c = 0; c < C; c++)
                gr[c] = clv_gelu1(yr[c]);
        } else if (gh) {
            clv_bf16 *restrict hr = gh + n * C;
            for (int64_t c = 0; c < C; c++)
                hr[c] = clv_bf16_from_float(clv_gelu1(yr[c]));
        }
    }
}
