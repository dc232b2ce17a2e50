/* RKR's view of a convolution (Singh et al., CVPR 2021): the rectification
 * of a conv weight W (Cout, Cin, k, k) is the product P = A B of
 * A [(Cin k) x K] and B [K x (Cout k)], placed into W's layout by
 *     R[o][i][a][b] = P[i k + a][o k + b]
 * (input channel and kernel row index P's rows, output channel and kernel
 * column its columns). The layer computes z = x W^T on im2col columns x
 * [N x (Cin k k)] in PyTorch's order ((i k + a) k + b), so with X_b the
 * columns of kernel column b (X_b[n][j] = x[n][j k + b], j = i k + a) and
 * B_b [K x Cout] the columns o k + b of B,
 *     z_R = sum_b X_b A B_b,
 * k low-rank products of the ordinary kind (A' = B_b^T, B' = A^T). The
 * backward therefore runs clv_lowrank_backward once per kernel column on a
 * gathered X_b, never forming the full dW. */
#include "clvit/kernels.h"

#include <string.h>

void clv_rkr_view_add(float *W, const float *P, int64_t cout, int64_t cin, int64_t k)
{
    const int64_t rows = cin * k, cols = cout * k, in = cin * k * k;
#pragma omp parallel for schedule(static) if (cout * in > 65536)
    for (int64_t o = 0; o < cout; o++)
        for (int64_t j = 0; j < rows; j++)
            for (int64_t b = 0; b < k; b++)
                W[o * in + j * k + b] += P[j * cols + o * k + b];
}

void clv_rkr_view_gather(float *P, const float *W, int64_t cout, int64_t cin, int64_t k)
{
    const int64_t rows = cin * k, cols = cout * k, in = cin * k * k;
#pragma omp parallel for schedule(static) if (cout * in > 65536)
    for (int64_t o = 0; o < cout; o++)
        for (int64_t j = 0; j < rows; j++)
            for (int64_t b = 0; b < k; b++)
                P[j * cols + o * k + b] = W[o * in + j * k + b];
}

int64_t clv_rkr_view_backward_scratch_floats(int64_t N, int64_t cin, int64_t cout, int64_t k, int K)
{
    const int64_t rows = cin * k;
    /* X_b, A' and dA' (Cout x K each), B' and dB' (K x rows each), the low-rank kernel's own */
    return N * rows + 2 * cout * K + 2 * (int64_t)K * rows + clv_lowrank_backward_scratch_floats(N, rows, cout, K);
}

void clv_rkr_view_backward(float *dA, float *dB, const float *x, const float *dy, const float *s, const float *A,
                           const float *B, int64_t N, int64_t cin, int64_t cout, int64_t k, int K, float *scratch)
{
    if ((!dA && !dB) || N <= 0 || K <= 0)
        return;
    const int64_t rows = cin * k, cols = cout * k, in = cin * k * k;
    float *Xb = scratch, *Ap = Xb + N * rows, *dAp = Ap + cout * K, *Bp = dAp + cout * K, *dBp = Bp + K * rows;
    float *rest = dBp + K * rows;
    for (int64_t j = 0; j < rows; j++) /* B' = A^T, the same for every kernel column */
        for (int r = 0; r < K; r++)
            Bp[r * rows + j] = A[j * K + r];
    memset(dBp, 0, (size_t)(K * rows) * sizeof(float));
    for (int64_t b = 0; b < k; b++) {
#pragma omp parallel for schedule(static) if (N * rows > 65536)
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < rows; j++)
                Xb[n * rows + j] = x[n * in + j * k + b];
        for (int64_t o = 0; o < cout; o++) /* A' = B_b^T */
            for (int r = 0; r < K; r++)
                Ap[o * K + r] = B[r * cols + o * k + b];
        memset(dAp, 0, (size_t)(cout * K) * sizeof(float));
        /* dA' = dB_b^T needs dB; dB' = dA^T needs dA */
        clv_lowrank_backward(dB ? dAp : NULL, dA ? dBp : NULL, Xb, dy, s, Ap, Bp, N, rows, cout, K, rest);
        if (dB)
            for (int64_t o = 0; o < cout; o++)
                for (int r = 0; r < K; r++)
                    dB[r * cols + o * k + b] += dAp[o * K + r];
    }
    if (dA)
        for (int64_t j = 0; j < rows; j++)
            for (int r = 0; r < K; r++)
                dA[j * K + r] += dBp[r * rows + j];
}
