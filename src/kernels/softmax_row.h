/* Private to src/kernels: softmax of one row and its backward, shared by the
 * softmax, cross-entropy and attention kernels. */
#ifndef CLVIT_KERNELS_SOFTMAX_ROW_H
#define CLVIT_KERNELS_SOFTMAX_ROW_H

#include "kernels/vmath.h"

#include <math.h>
#include <stdint.h>

/* y = softmax(x); y may alias x. Returns log(sum exp(x - max)) + max, the
 * log-partition, so that cross-entropy needs no log of a tiny probability. */
static inline float clv_softmax_row(float *y, const float *x, int64_t K)
{
    float m = x[0];
#pragma omp simd reduction(max : m)
    for (int64_t k = 1; k < K; k++)
        m = x[k] > m ? x[k] : m;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t k = 0; k < K; k++) {
        const float e = clv_vexpf(x[k] - m);
        y[k] = e;
        s += e;
    }
    const float inv = 1.0f / s;
#pragma omp simd
    for (int64_t k = 0; k < K; k++)
        y[k] *= inv;
    return logf(s) + m;
}

/* dx (+)= y * (dy - sum_k dy*y): accumulates, or overwrites when accumulate
 * is 0 (then dx may alias dy). */
static inline void clv_softmax_row_backward(float *dx, const float *dy, const float *y, int64_t K, int accumulate)
{
    float d = 0.0f;
#pragma omp simd reduction(+ : d)
    for (int64_t k = 0; k < K; k++)
        d += dy[k] * y[k];
    if (!accumulate) {
#pragma omp simd
        for (int64_t k = 0; k < K; k++)
            dx[k] = y[k] * (dy[k] - d);
    } else {
#pragma omp simd
        for (int64_t k = 0; k < K; k++)
            dx[k] += y[k] * (dy[k] - d);
    }
}

#endif
