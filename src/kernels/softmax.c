/* Row-wise softmax, numerically stable (max subtracted), and its backward. */
#include "clvit/kernels.h"
#include "kernels/softmax_row.h"

void clv_softmax_forward(float *y, const float *x, int64_t N, int64_t K)
{
#pragma omp parallel for if (N * K > 16384) schedule(static)
    for (int64_t n = 0; n < N; n++)
        clv_softmax_row(y + n * K, x + n * K, K);
}

void clv_softmax_backward(float *dx, const float *dy, const float *y, int64_t N, int64_t K)
{
#pragma omp parallel for if (N * K > 16384) schedule(static)
    for (int64_t n = 0; n < N; n++)
        clv_softmax_row_backward(dx + n * K, dy + n * K, y + n * K, K, 1);
}
