/* LwF's distillation loss of one old head and its gradient
 * (include/clvit/lwf_math.h has the formula and the choices). Rows are a
 * batch of a head's logits: a few hundred floats, so one serial pass. */
#include "clvit/lwf_math.h"

#include <math.h>

/* log sum_c exp(x_c / T), stable: shifted by the row's max */
static double log_sum_exp_t(const float *x, int64_t K, double invT)
{
    float mx = x[0];
    for (int64_t c = 1; c < K; c++)
        if (x[c] > mx)
            mx = x[c];
    double s = 0.0;
    for (int64_t c = 0; c < K; c++)
        s += exp(((double)x[c] - mx) * invT);
    return (double)mx * invT + log(s);
}

double clv_lwf_distill(float *dlogits, const float *logits, const float *teacher, int64_t N, int64_t K, float T,
                       float alpha, float dloss)
{
    if (N <= 0 || K <= 0)
        return 0.0;
    const double invT = 1.0 / (double)T;
    const double g = (double)dloss * (double)alpha / ((double)N * (double)T);
    double total = 0.0;
    for (int64_t n = 0; n < N; n++) {
        const float *z = logits + n * K, *y = teacher + n * K;
        const double lse_p = log_sum_exp_t(z, K, invT), lse_q = log_sum_exp_t(y, K, invT);
        /* -sum_c q_c log p_c = lse_p - sum_c q_c z_c / T, since sum_c q_c = 1 */
        double qz = 0.0;
        for (int64_t c = 0; c < K; c++)
            qz += exp((double)y[c] * invT - lse_q) * (double)z[c];
        total += lse_p - qz * invT;
        if (dlogits)
            for (int64_t c = 0; c < K; c++) {
                const double p = exp((double)z[c] * invT - lse_p), q = exp((double)y[c] * invT - lse_q);
                dlogits[n * K + c] += (float)(g * (p - q));
            }
    }
    return (double)alpha * total / (double)N;
}
