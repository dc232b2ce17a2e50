/* Softmax cross-entropy over class logits, mean over rows. The loss is
 * summed in row order (an ordered loop) so it does not depend on the thread
 * count. */
#include "clvit/kernels.h"
#include "kernels/softmax_row.h"

float clv_xent_forward(float *probs, const float *logits, const int32_t *labels, int64_t N, int64_t K,
                       int64_t *correct)
{
    double loss = 0.0;
    int64_t ok = 0;
#pragma omp parallel for ordered if (N * K > 16384) schedule(static, 1) reduction(+ : ok)
    for (int64_t n = 0; n < N; n++) {
        const float *xr = logits + n * K;
        /* -log p[label] = logZ - x[label], exact even where p underflows */
        const float lz = clv_softmax_row(probs + n * K, xr, K);
        const double l = (double)lz - (double)xr[labels[n]];
        int64_t best = 0;
        for (int64_t k = 1; k < K; k++)
            if (xr[k] > xr[best])
                best = k;
        ok += best == labels[n];
#pragma omp ordered
        loss += l;
    }
    if (correct)
        *correct = ok;
    return N > 0 ? (float)(loss / (double)N) : 0.0f;
}

void clv_xent_backward(float *dlogits, const float *probs, const int32_t *labels, int64_t N, int64_t K, float dloss)
{
    const float g = dloss / (float)N;
#pragma omp parallel for if (N * K > 16384) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        float *restrict dr = dlogits + n * K;
        const float *restrict pr = probs + n * K;
        for (int64_t k = 0; k < K; k++)
            dr[k] += g * pr[k];
        dr[labels[n]] -= g;
    }
}
