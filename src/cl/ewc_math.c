/* EWC's Fisher accumulation and quadratic penalty (include/clvit/ewc_math.h
 * has the formulas and the choices). Plain loops: a backbone is a few
 * million floats, touched once per step. */
#include "clvit/ewc_math.h"

void clv_ewc_fisher_add(float *restrict sum, const float *restrict grad, int64_t n, float weight)
{
    for (int64_t i = 0; i < n; i++)
        sum[i] += weight * grad[i] * grad[i];
}

void clv_ewc_fisher_merge(float *restrict fisher, const float *restrict sum, int64_t n, double samples, float decay)
{
    const float inv = (float)(1.0 / samples);
    for (int64_t i = 0; i < n; i++)
        fisher[i] = decay * fisher[i] + sum[i] * inv;
}

double clv_ewc_penalty(float *restrict grad, const float *restrict theta, const float *restrict anchor,
                       const float *restrict fisher, int64_t n, float lambda)
{
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float d = theta[i] - anchor[i];
        acc += (double)fisher[i] * (double)d * (double)d;
    }
    if (grad)
        for (int64_t i = 0; i < n; i++)
            grad[i] += lambda * fisher[i] * (theta[i] - anchor[i]);
    return 0.5 * (double)lambda * acc;
}
