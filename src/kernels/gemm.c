/* The GEMM interface over the backend chosen at build time (see gemm.h).
 * oneDNN's dnnl_sgemm is row-major already; CBLAS is told so. */
#include "clvit/gemm.h"

#if defined(CLV_GEMM_dnnl)
#include <oneapi/dnnl/dnnl.h>
#elif defined(CLV_GEMM_openblas) || defined(CLV_GEMM_blis)
#include <cblas.h>
#endif

void clv_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0)
        return;
#if defined(CLV_GEMM_dnnl)
    dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)M,
                (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
#endif
}

const char *clv_gemm_backend(void)
{
#if defined(CLV_GEMM_dnnl)
#define CLV_STR2(x) #x
#define CLV_STR(x) CLV_STR2(x)
    return "oneDNN " CLV_STR(DNNL_VERSION_MAJOR) "." CLV_STR(DNNL_VERSION_MINOR) "." CLV_STR(
        DNNL_VERSION_PATCH) " (dnnl_sgemm)";
#elif defined(CLV_GEMM_openblas)
    return "OpenBLAS (cblas_sgemm)";
#else
    return "BLIS (cblas_sgemm)";
#endif
}
