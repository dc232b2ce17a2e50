/* GELU in its exact erf form, as torch.nn.GELU() (approximate='none'), with
 * erf and exp from kernels/vmath.h so that the loops vectorize. */
#include "clvit/kernels.h"
#include "kernels/vmath.h"

/* erf, exp and a division an element make these loops compute-bound: with AVX-512, use its full
 * width (GCC's tuning for recent Intel cores stops at 256 bits). No loop here reduces across
 * lanes, so the width changes no result. */
#pragma GCC target("prefer-vector-width=512")

#include <math.h>

void clv_gelu_forward(float *y, const float *x, int64_t n)
{
    float *restrict yr = y;
    const float *restrict xr = x;
#pragma omp parallel for if (n > 16384) schedule(static)
    for (int64_t i = 0; i < n; i++)
        yr[i] = clv_gelu1(xr[i]);
}

/* d/dx [x Phi(x)] = Phi(x) + x phi(x) */
static inline float gelu_grad(float v)
{
    const float inv_sqrt_2pi = 0.3989422804014327f;
    const float cdf = 0.5f * (1.0f + clv_verff(v * (float)M_SQRT1_2));
    const float pdf = inv_sqrt_2pi * clv_vexpf(-0.5f * v * v);
    return cdf + v * pdf;
}

void clv_gelu_forward_grad(float *y, float *dydx, const float *x, int64_t n)
{
    clv_gelu_forward_grad_bf16(y, NULL, dydx, x, n);
}

void clv_gelu_forward_grad_bf16(float *y, clv_bf16 *yh, float *dydx, const float *x, int64_t n)
{
    if (yh) {
        /* omp simd: dydx may be x, element for element (read before written), which is safe in
         * vectors; without it GCC's overlap check sends the in-place call to scalar code */
        clv_bf16 *restrict hr = yh;
        if (y) {
#pragma omp parallel for simd if (n > 16384) schedule(static)
            for (int64_t i = 0; i < n; i++) {
                const float v = x[i];
                const float e = clv_verff(v * 0.70710678118654752440f);
                y[i] = 0.5f * v * (1.0f + e);
                hr[i] = clv_bf16_from_float(y[i]);
                dydx[i] = 0.5f * (1.0f + e) + v * (0.3989422804014327f * clv_vexpf(-0.5f * v * v));
            }
        } else {
#pragma omp parallel for simd if (n > 16384) schedule(static)
            for (int64_t i = 0; i < n; i++) {
                const float v = x[i];
                const float e = clv_verff(v * 0.70710678118654752440f);
                hr[i] = clv_bf16_from_float(0.5f * v * (1.0f + e));
                dydx[i] = 0.5f * (1.0f + e) + v * (0.3989422804014327f * clv_vexpf(-0.5f * v * v));
            }
        }
        return;
    }
    /* dydx may alias x (each element is read before it is written), so no restrict on those two */
    float *restrict yr = y;
#pragma omp parallel for simd if (n > 16384) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        /* clv_gelu1 and gelu_grad written out around one erf */
        const float e = clv_verff(v * 0.70710678118654752440f);
        yr[i] = 0.5f * v * (1.0f + e);
        dydx[i] = 0.5f * (1.0f + e) + v * (0.3989422804014327f * clv_vexpf(-0.5f * v * v));
    }
}

void clv_gelu_backward(float *dx, const float *dy, const float *x, int64_t n)
{
    float *restrict dxr = dx;
    const float *restrict dyr = dy, *restrict xr = x;
#pragma omp parallel for if (n > 16384) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        dxr[i] += dyr[i] * gelu_grad(xr[i]);
    }
}

void clv_gelu_backward_bf16(clv_bf16 *gh, clv_bf16 *dhh, float *parts, const float *h, const float *dg, int64_t rows,
                            int64_t cols, int64_t group_rows)
{
    const int64_t groups = (rows + group_rows - 1) / group_rows;
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
    for (int64_t gr = 0; gr < groups; gr++) {
        float *restrict part = parts + gr * cols;
        const int64_t r1 = (gr + 1) * group_rows < rows ? (gr + 1) * group_rows : rows;
        for (int64_t j = 0; j < cols; j++)
            part[j] = 0.0f;
        for (int64_t n = gr * group_rows; n < r1; n++) {
            const float *restrict hr = h + n * cols, *restrict dgr = dg + n * cols;
            clv_bf16 *restrict gr_h = gh + n * cols, *restrict dr = dhh + n * cols;
#pragma omp simd
            for (int64_t j = 0; j < cols; j++) {
                /* clv_gelu_forward_grad's arithmetic, then the product as clv_mul_forward's */
                const float v = hr[j];
                const float e = clv_verff(v * 0.70710678118654752440f);
                gr_h[j] = clv_bf16_from_float(0.5f * v * (1.0f + e));
                const float gp = 0.5f * (1.0f + e) + v * (0.3989422804014327f * clv_vexpf(-0.5f * v * v));
                const float d = dgr[j] * gp;
                part[j] += d;
                dr[j] = clv_bf16_from_float(d);
            }
        }
    }
}
