/* The one GEMM interface. Row-major, BLAS semantics:
 *   C[M x N] = alpha * op(A) op(B) + beta * C
 * op(A) is M x K (A stored K x M when trans_a), op(B) is K x N (B stored N x K
 * when trans_b). lda/ldb/ldc are row strides in elements.
 * The backend is a build option (make GEMM=dnnl|openblas|blis); every
 * backend threads with the same OpenMP pool. Called from inside an OpenMP
 * parallel region it runs on the calling thread only. */
#ifndef CLVIT_GEMM_H
#define CLVIT_GEMM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void clv_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* Name of the backend compiled in ("oneDNN 2.6.3", "OpenBLAS", ...). */
const char *clv_gemm_backend(void);

#ifdef __cplusplus
}
#endif
#endif
