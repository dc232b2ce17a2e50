/* Winograd F(2x2, 3x3) in bf16 for 3x3 stride-1 pad-1 convolutions over NHWC
 * fp32 activations: the forward, the backward data and the backward weights.
 *
 * Each 2x2 output tile is A^T [U (.) V] A with V = B^T d B (the tile's 4x4
 * input patch d) and U = G g G^T (the 3x3 filter g): 16 products a tile and
 * channel pair instead of 36. The 16 element-wise products become 16 GEMMs
 * over the tiles, run as one batched bf16 matmul on oneDNN (bf16 V and U,
 * fp32 sums); the transforms are fp32 and V, U are rounded to bf16 once, as
 * the direct bf16 convolution rounds x and W. F(2x2, 3x3)'s transforms have
 * coefficients 0, +-1/2 and +-1, so no error grows from them (F(4x4, 3x3)'s
 * would). The backward weights is the gradient of the same computation:
 * dU = sum over tiles of V (.) (A dy A^T), dW = G^T dU G.
 *
 * Tiles go in chunks (about CLV_WINO_CHUNK_BYTES of V and products), so the
 * transformed operands stay in cache between the transform and the GEMM.
 * Results do not depend on the thread count except through oneDNN's matmul.
 * Needs bf16 on oneDNN (clv_compute_bf16_onednn); -1 with err set otherwise
 * or when out of memory. */
#ifndef CLVIT_WINOGRAD_BF16_H
#define CLVIT_WINOGRAD_BF16_H

#include "clvit/precision.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Working memory (grow-only; zero-initialize it): nothing in it outlives a
 * call but U (from clv_wino_bf16_weight to the convolution that reads it), so
 * a model's convolutions, which run one after another, share one. */
typedef struct clv_wino_bf16 {
    clv_bf16 *u; /* the prepared transformed weight [16][ci][co] */
    int64_t u_ci, u_co;
    clv_bf16 *v, *dm;
    float *m, *du, *zero;
    size_t u_cap, v_cap, dm_cap, m_cap, du_cap, zero_cap;
} clv_wino_bf16;

void clv_wino_bf16_free(clv_wino_bf16 *w);

/* Prepares U from W [cout][cin][3][3] (PyTorch's oihw): for the forward
 * (ci = cin, co = cout), or with backward_data for the data gradient
 * (ci = cout, co = cin: W rotated by 180 degrees, in and out swapped). */
int clv_wino_bf16_weight(clv_wino_bf16 *w, const float *W, int64_t cout, int64_t cin, int backward_data,
                         clv_err *err);

/* An epilogue of the output transform: y = [relu](conv + bias + res), bias
 * [co] (required) and res [B H W x co] (NULL: none; may be y itself). */
typedef struct clv_wino_epilogue {
    const float *bias, *res;
    int relu;
} clv_wino_epilogue;

/* y [B H W x co] = the convolution of x [B H W x ci] with the prepared U
 * (zero padding 1, stride 1: y has x's size), then ep (may be NULL). With U
 * for the backward data, x is dy and y is dx. */
int clv_wino_bf16_conv(clv_compute *c, clv_wino_bf16 *w, float *y, const float *x, int64_t B, int64_t H, int64_t W,
                       int64_t ci, int64_t co, const clv_wino_epilogue *ep, clv_err *err);

/* dW [cout][cin][3][3] = the weight gradient of the convolution of x
 * [B H W x cin] given dy [B H W x cout] (overwritten). */
int clv_wino_bf16_dweight(clv_compute *c, clv_wino_bf16 *w, float *dW, const float *x, const float *dy, int64_t B,
                          int64_t H, int64_t W, int64_t cin, int64_t cout, clv_err *err);

#ifdef __cplusplus
}
#endif
#endif
