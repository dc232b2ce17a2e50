/* GELU in its exact erf form, as torch.nn.GELU() (approximate='none'), with
 * erf and exp from kernels/vmath.h so that the loops vectorize. */
#include "clvit/kernels.h"
#include "kernels/vmath.h"

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
    /* dydx may alias x (each element is read before it is written), so no restrict on those two */
    float *restrict yr = y;
#pragma omp parallel for if (n > 16384) schedule(static)
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
