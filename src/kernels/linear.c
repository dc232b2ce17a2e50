/* Linear layer kernels: y = x w^T + b and its backward, all through clv_gemm.
 * Weights are stored out x in (PyTorch layout), hence the transposes. */
#include "clvit/gemm.h"
#include "clvit/kernels.h"

void clv_linear_forward(float *y, const float *x, const float *w, const float *b, int64_t N, int64_t in, int64_t out)
{
    clv_gemm(0, 1, N, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    if (!b)
        return;
#pragma omp parallel for if (N * out > 32768) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        float *restrict yr = y + n * out;
        const float *restrict br = b;
        for (int64_t o = 0; o < out; o++)
            yr[o] += br[o];
    }
}

void clv_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int64_t N,
                         int64_t in, int64_t out)
{
    if (dx)
        clv_gemm(0, 0, N, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in);
    if (dw)
        clv_gemm(1, 0, out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in);
    if (db)
        clv_colsum_add(db, dy, N, out);
}
