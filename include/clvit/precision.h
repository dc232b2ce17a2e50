/* Compute precision of the weight layers' GEMMs, and bf16 GEMM.
 *
 * fp32 (the default): every GEMM is clv_gemm, bit for bit as always.
 * bf16: the large GEMMs of the weight layers (forward x W^T, dx = dy W,
 * dW = dy^T x, and the adapters' N-row products) round their two inputs to
 * bfloat16 (round to nearest even) and accumulate in fp32 into fp32 outputs.
 * Everything else (master weights, gradients, optimizer state, norms,
 * softmax, GELU, loss, the adapters' small products) stays fp32.
 *
 * A clv_compute is the per-model context the weight layers share: the
 * precision, grow-only bf16 scratch for the converted operands, and (with the
 * oneDNN backend) the engine, stream and a cache of matmul primitives. It is
 * not thread-safe: one model's layers run one after another.
 *
 * When oneDNN cannot run a bf16 matmul natively (no oneDNN backend, a CPU
 * without avx512_bf16/AMX, or emulate requested), the same numbers come from
 * converting the bf16 operands back to fp32 and calling clv_gemm: the products
 * of two bf16 values are exact in fp32, so only summation order differs. */
#ifndef CLVIT_PRECISION_H
#define CLVIT_PRECISION_H

#include <stddef.h>
#include <stdint.h>

#include "clvit/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The order is the settings table's "fp32|bf16" (train.precision). */
typedef enum { CLV_PRECISION_FP32 = 0, CLV_PRECISION_BF16 = 1 } clv_precision;

const char *clv_precision_name(clv_precision p);
/* "fp32" or "bf16" into *p; -1 with err naming the value otherwise. */
int clv_precision_parse(const char *s, clv_precision *p, clv_err *err);

typedef uint16_t clv_bf16;

/* fp32 -> bf16 with round to nearest even; NaN stays NaN (quiet), inf stays inf. */
static inline clv_bf16 clv_bf16_from_float(float f)
{
    union {
        float f;
        uint32_t u;
    } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep the sign, force a quiet payload bit */
        return (clv_bf16)((v.u >> 16) | 0x40u);
    return (clv_bf16)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}
static inline float clv_bf16_to_float(clv_bf16 h)
{
    union {
        uint32_t u;
        float f;
    } v = {(uint32_t)h << 16};
    return v.f;
}
/* n values; the plain loops vectorize. */
void clv_bf16_from_floats(clv_bf16 *dst, const float *src, size_t n);
void clv_bf16_to_floats(float *dst, const clv_bf16 *src, size_t n);

typedef struct clv_compute clv_compute;

/* A context of precision p. emulate: never use oneDNN's bf16 matmul (the
 * converting path; for tests and CPUs where it is slow). NULL with err set
 * only when out of memory. */
clv_compute *clv_compute_create(clv_precision p, int emulate, clv_err *err);
void clv_compute_free(clv_compute *c);
clv_precision clv_compute_precision(const clv_compute *c);
/* 1 when bf16 GEMMs run on oneDNN's bf16 matmul, 0 when emulated. */
int clv_compute_bf16_native(const clv_compute *c);
/* One line for logs and `clvit info`: how bf16 runs on this CPU, e.g.
 * "native (oneDNN avx512_core_amx)" or "emulated: ...". Needs no context. */
const char *clv_bf16_support(char *buf, size_t len);

/* C [M x N] = alpha op(A) op(B) + beta C with clv_gemm's row-major BLAS
 * semantics (see gemm.h), A and B in bf16, C fp32, fp32 accumulation.
 * -1 (err set) only when the emulating path cannot get its scratch. */
int clv_gemm_bf16(clv_compute *c, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const clv_bf16 *A, int64_t lda, const clv_bf16 *B, int64_t ldb, float beta, float *C,
                  int64_t ldc, clv_err *err);

/* clv_gemm on fp32 operands in the context's precision: c NULL or fp32 is
 * exactly clv_gemm; bf16 converts A and B into the context's scratch first
 * and calls clv_gemm_bf16. -1 (err set) when the scratch cannot grow. */
int clv_compute_gemm(clv_compute *c, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
                     clv_err *err);

/* C [M x N] = A [M x K] B^T (B [N x K]) + bias [N] on every row + res
 * [M x N] (row stride ldc; bias and res may be NULL): a weight layer's
 * forward with the residual stream. In bf16 on oneDNN both are added inside
 * the matmul (no pass over C); otherwise clv_compute_gemm and a pass. */
int clv_compute_gemm_bias(clv_compute *c, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                          const float *B, int64_t ldb, const float *bias, const float *res, float *C, int64_t ldc,
                          clv_err *err);

/* Ch [M x N] = bf16(GELU(A B^T + bias)) in one oneDNN matmul (bias may be
 * NULL; erf GELU as the matmul's post-op, bf16 destination): fc1's forward
 * when only fc2's GEMM reads GELU's output and the backward forms fc1's
 * output again. Only with bf16 on oneDNN; -1 (err set) otherwise, when the
 * shape is empty or oneDNN refuses it, or out of memory. */
int clv_compute_gemm_bias_gelu(clv_compute *c, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                               const float *B, int64_t ldb, const float *bias, clv_bf16 *Ch, clv_err *err);

/* Converts X [rows x cols, packed] once and lets every clv_compute_gemm that
 * reads exactly that block (as A or B, transposed or not) use the copy until
 * clv_compute_unhold: a layer's backward reads dy twice (dx and dW). The
 * caller must not change X in between. colsum (may be NULL) [cols] += the
 * column sums of X in the same pass (the bias gradient; in groups of 64 rows,
 * so independent of the thread count). Without a bf16 context only the
 * column sums are done (clv_colsum_add, bit for bit as before). -1 (err set)
 * when out of memory. */
int clv_compute_hold(clv_compute *c, const float *X, int64_t rows, int64_t cols, float *colsum, clv_err *err);
/* The same hold of dy for a layer with an output scale, and in its pass what
 * clv_scale_columns_backward gives: ds [cols] = column sums of dy * z (divided
 * by sdiv when given), dsum [cols] = column sums of dy (both written; in row
 * groups, independent of the thread count). Without a bf16 context
 * clv_scale_columns_backward itself. */
int clv_compute_hold_scaled(clv_compute *c, const float *dy, const float *z, const float *sdiv, int64_t rows,
                            int64_t cols, float *ds, float *dsum, clv_err *err);
void clv_compute_unhold(clv_compute *c);
/* A bf16 copy of X [rows x cols, packed] that X's producer writes in the
 * pass that writes X, saving each GEMM that reads X a conversion pass: *h
 * gets room for it (grow-only, in slot 0 .. CLV_COMPUTE_SHADOWS - 1), and
 * from then until clv_compute_unshadow of that slot every clv_compute_gemm
 * reading exactly that block uses the copy, so the producer may skip writing
 * X in fp32 when nothing else reads it. *h is NULL when c has no bf16 GEMM
 * on oneDNN (fp32, the converting path): then write X as usual. -1 (err
 * set) when out of memory. */
#define CLV_COMPUTE_SHADOWS 4
int clv_compute_shadow(clv_compute *c, int slot, const float *X, int64_t rows, int64_t cols, clv_bf16 **h,
                       clv_err *err);
void clv_compute_unshadow(clv_compute *c, int slot);
/* fixed = 1: until clv_compute_fix_weights(c, 0), the weights the GEMMs
 * read do not change (an inference forward over row slices): a weight that
 * goes to oneDNN's packed layout is packed once, into memory of its own, and
 * read from there by every later GEMM. 0 (the default) frees those copies:
 * each GEMM packs its weight again. */
void clv_compute_fix_weights(clv_compute *c, int fixed);
/* The same for a bf16 copy of X that the caller keeps in memory of its own
 * (h, rows x cols, packed): GEMMs reading exactly X use h until
 * clv_compute_unshadow of that slot. Nothing happens when c has no bf16 GEMM
 * on oneDNN (the GEMMs then read X). */
void clv_compute_lend(clv_compute *c, int slot, const float *X, int64_t rows, int64_t cols, const clv_bf16 *h);
/* The backward through GELU between two bf16 GEMMs in one pass over h (its
 * input) and dg (the gradient at its output), rows x cols: the shadow of g
 * (slot g_slot) = GELU(h), fc2's weight-gradient input; the shadow of dh
 * (slot dh_slot) = dg GELU'(h), fc1's dy, never written in fp32; colsum
 * (may be NULL) += dh's column sums (fc1's bias gradient; in row groups of
 * 64, as clv_compute_hold). The same values as clv_gelu_forward_grad, the
 * product and clv_compute_hold in turn. Only with bf16 on oneDNN (else -1,
 * err set; also when out of memory). */
int clv_compute_gelu_backward(clv_compute *c, int g_slot, const float *g, int dh_slot, const float *dh,
                              const float *h, const float *dg, int64_t rows, int64_t cols, float *colsum,
                              clv_err *err);

/* For operators that convert their own operands (oneDNN's convolutions):
 * 1 when c is bf16 and its bf16 runs on oneDNN (natively or by oneDNN's own
 * emulation), 0 for fp32 and for the converting path (emulate requested, no
 * oneDNN backend, or oneDNN has no bf16 matmul here). */
int clv_compute_bf16_onednn(const clv_compute *c);
/* X [n] converted into the context's grow-only scratch slot (0 or 1): as
 * bf16, or as fp32 values rounded to bf16 (the converting path's operands).
 * Valid until the next call with that slot or the context's next GEMM or
 * hold. NULL (err set) when out of memory. */
const clv_bf16 *clv_compute_bf16_scratch(clv_compute *c, int slot, const float *X, size_t n, clv_err *err);
const float *clv_compute_round_scratch(clv_compute *c, int slot, const float *X, size_t n, clv_err *err);
/* The bf16 scratch slot grown to n values, for a caller that writes it itself. */
clv_bf16 *clv_compute_bf16_slot(clv_compute *c, int slot, size_t n, clv_err *err);
/* The fp32 scratch slot (0 or 1) grown to n values, for a caller that writes it itself; valid
 * until the context's next hold, GELU backward or converting GEMM. */
float *clv_compute_float_slot(clv_compute *c, int slot, size_t n, clv_err *err);

/* Ch [M x N] = bf16(A B^T + bias): clv_compute_gemm_bias_gelu without GELU, a plain layer's forward whose only reader takes
 * bf16 (the attention's qkv). As clv_compute_gemm_bias_gelu otherwise. */
int clv_compute_gemm_bias_to_bf16(clv_compute *c, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                                  const float *B, int64_t ldb, const float *bias, clv_bf16 *Ch, clv_err *err);

/* A grid of nb x nh products C[b][h] = alpha A[b][h] B[b][h] (M x K by K x N), each operand a
 * strided view: element (b, h, i, j) of A at A[b as[0] + h as[1] + i as[2] + j as[3]], likewise B
 * (i < K, j < N) and C; so a transpose is a swap of the last two strides. A and B bf16, C fp32
 * or (c_bf16) bf16, fp32 accumulation: the attention's per-(image, head) products in one oneDNN
 * matmul. Only with bf16 on oneDNN; -1 (err set) otherwise or when oneDNN refuses the shape. */
typedef struct clv_bmm_shape {
    int64_t nb, nh, M, N, K;
    int64_t as[4], bs[4], cs[4];
    int accumulate; /* C += the products (fp32 C only) instead of C = */
} clv_bmm_shape;
int clv_compute_bmm(clv_compute *c, const clv_bmm_shape *sh, float alpha, const clv_bf16 *A, const clv_bf16 *B,
                    void *C, int c_bf16, clv_err *err);

/* dst [n] = src rounded to bf16 values, kept in fp32 (dst may be src). */
void clv_bf16_round_floats(float *dst, const float *src, size_t n);

#ifdef __cplusplus
}
#endif
#endif
