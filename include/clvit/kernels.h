/* Math kernels, forward and backward. Plain functions, all sizes explicit
 * (llm.c style). Conventions:
 *  - row-major float arrays; N = number of rows (e.g. batch * tokens);
 *  - every backward ACCUMULATES (+=) into the gradients it is given
 *    (dx, dw, db ...); the caller zeroes them once per step; a NULL gradient
 *    pointer means "not needed" and is skipped;
 *  - what the backward needs is saved by the forward into named buffers;
 *  - kernels parallelize with OpenMP over their outermost independent loop
 *    and produce the same numbers whatever the thread count. */
#ifndef CLVIT_KERNELS_H
#define CLVIT_KERNELS_H

#include "clvit/precision.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Linear: y[N x out] = x[N x in] w[out x in]^T + b[out] (b may be NULL) ---- */
void clv_linear_forward(float *y, const float *x, const float *w, const float *b, int64_t N, int64_t in, int64_t out);
/* dx += dy w; dw += dy^T x; db += column sums of dy. */
void clv_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int64_t N,
                         int64_t in, int64_t out);

/* ---- LayerNorm over the last dimension C; mean and rstd [N] are saved ---- */
void clv_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                           int64_t N, int64_t C, float eps);
/* The same, with a bf16 copy of y written in the same pass (yh; y or yh may
 * be NULL): a bf16 GEMM's input without a conversion pass. */
void clv_layernorm_forward_bf16(float *y, clv_bf16 *yh, float *mean, float *rstd, const float *x, const float *w,
                                const float *b, int64_t N, int64_t C, float eps);
void clv_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                            const float *mean, const float *rstd, int64_t N, int64_t C);

/* ---- GELU, exact: 0.5 x (1 + erf(x / sqrt 2)) ---- */
void clv_gelu_forward(float *y, const float *x, int64_t n);
void clv_gelu_backward(float *dx, const float *dy, const float *x, int64_t n);
/* y = GELU(x) and dydx = GELU'(x), erf evaluated once: for a backward that
 * recomputes the forward's output. dydx may be x (in place, when x is no
 * longer needed). The same bits as clv_gelu_forward and the derivative
 * clv_gelu_backward multiplies by. */
void clv_gelu_forward_grad(float *y, float *dydx, const float *x, int64_t n);
/* The same, and yh (may be NULL) = y in bf16; y may be NULL when yh is not. */
void clv_gelu_forward_grad_bf16(float *y, clv_bf16 *yh, float *dydx, const float *x, int64_t n);
/* Backward through GELU for bf16 GEMMs on both sides, rows x cols: gh =
 * bf16(GELU(h)), dhh = bf16(dg GELU'(h)), and parts [groups x cols] = the
 * column sums of dg GELU'(h) over each group of group_rows rows (summed in
 * row order). The arithmetic of clv_gelu_forward_grad and clv_mul_forward. */
void clv_gelu_backward_bf16(clv_bf16 *gh, clv_bf16 *dhh, float *parts, const float *h, const float *dg, int64_t rows,
                            int64_t cols, int64_t group_rows);

/* ---- y = a + b, y = a * b elementwise (residual, gates); y may alias a or b ---- */
void clv_add_forward(float *y, const float *a, const float *b, int64_t n);
void clv_mul_forward(float *y, const float *a, const float *b, int64_t n);

/* ---- Row softmax: y[N x K] = softmax(x) per row (numerically stable) ---- */
void clv_softmax_forward(float *y, const float *x, int64_t N, int64_t K);
/* dx += y * (dy - sum_k dy*y) per row */
void clv_softmax_backward(float *dx, const float *dy, const float *y, int64_t N, int64_t K);

/* ---- Softmax cross-entropy, mean over the N rows ----
 * probs [N x K] saved; returns the mean loss; correct (may be NULL) gets the
 * number of rows whose argmax equals the label. Labels must be in [0, K). */
float clv_xent_forward(float *probs, const float *logits, const int32_t *labels, int64_t N, int64_t K,
                       int64_t *correct);
/* dlogits += dloss * (probs - onehot(label)) / N */
void clv_xent_backward(float *dlogits, const float *probs, const int32_t *labels, int64_t N, int64_t K, float dloss);

/* ---- Multi-head self-attention core (timm's Attention without the linears) ----
 * qkv [B x T x 3C] is the qkv Linear's output, laid out (3, H, hd) along its
 * last axis as in timm (q = [.., 0:C], k = [.., C:2C], v = [.., 2C:3C], head h
 * at columns h*hd .. h*hd+hd-1 of each). out [B x T x C] = heads concatenated.
 * att [B x H x T x T] saves the softmax probabilities; scale = 1/sqrt(hd).
 * The backward takes att = NULL to recompute them from qkv instead (the same
 * values bit for bit; the forward's att may then be a scratch buffer).
 * The backward writes every entry of dqkv (each (image, head) pair owns its
 * columns), so dqkv needs no zeroing first.
 * scratch must hold clv_attention_scratch_floats(B, T, C, H) floats. */
int64_t clv_attention_scratch_floats(int64_t B, int64_t T, int64_t C, int64_t H);
void clv_attention_forward(float *out, float *att, const float *qkv, int64_t B, int64_t T, int64_t C, int64_t H,
                           float *scratch);
void clv_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int64_t B, int64_t T,
                            int64_t C, int64_t H, float *scratch);
/* The forward with its output in bf16 only (outh [B T x C]): each pair's
 * fp32 output goes through the thread's scratch and is rounded while in
 * cache, the values clv_bf16_from_floats gives for clv_attention_forward's
 * out; att as clv_attention_forward's. */
void clv_attention_forward_h(clv_bf16 *outh, float *att, const float *qkv, int64_t B, int64_t T, int64_t C, int64_t H,
                             float *scratch);
/* The backward with dqkv in bf16 only (dqkvh, every entry written): each
 * pair's fp32 dq, dk, dv are rounded while in cache, the values
 * clv_bf16_from_floats gives for clv_attention_backward's dqkv. colsum (may
 * be NULL) += dqkv's column sums, each image's rows summed in row order into
 * parts [B x 3C] and the images then in image order (thread-count
 * independent): the qkv layer's bias gradient, with no fp32 dqkv to read. */
void clv_attention_backward_h(clv_bf16 *dqkvh, float *colsum, float *parts, const float *dout, const float *qkv,
                              const float *att, int64_t B, int64_t T, int64_t C, int64_t H, float *scratch);
/* out = att V again from the saved probabilities, the same floats as the
 * forward's out: for a backward that keeps att rather than out. */
void clv_attention_output(float *out, const float *att, const float *qkv, int64_t B, int64_t T, int64_t C, int64_t H);
/* The same attention with its products in bf16 (clv_compute_bmm: one oneDNN
 * matmul over all (image, head) pairs), as PyTorch's autocast runs them; the
 * softmax and its backward stay fp32. qkvh is qkv in bf16 (the qkv layer
 * writes it so). The forward writes the probabilities att (fp32) and out in
 * fp32 and/or bf16 (outh; either may be NULL): the product of att rounded to
 * bf16 with V; the output again gives the same values bit for bit. The
 * backward overwrites dqkv (fp32). The transformer block runs the forward in
 * inference only: trained with bf16 products the demo lost about half a
 * point (docs/precision.md). Only with bf16 on oneDNN: -1 (err set)
 * otherwise, or when out of memory. */
int clv_attention_forward_bf16(clv_compute *c, float *out, clv_bf16 *outh, float *att, const clv_bf16 *qkvh,
                               int64_t B, int64_t T, int64_t C, int64_t H, clv_err *err);
int clv_attention_output_bf16(clv_compute *c, float *out, clv_bf16 *outh, const float *att, const clv_bf16 *qkvh,
                              int64_t B, int64_t T, int64_t C, int64_t H, clv_err *err);
int clv_attention_backward_bf16(clv_compute *c, float *dqkv, const float *dout, const clv_bf16 *qkvh,
                                const float *att, int64_t B, int64_t T, int64_t C, int64_t H, clv_err *err);
/* The same attention for the class token's query only (row 0 of each image):
 * what the last block of a class-token ViT needs, since nothing but that
 * row reaches the head. out [B x C] holds row 0 of each image's output.
 * The backward overwrites all of dqkv [B x T x 3C] (dq is zero below row 0),
 * recomputing the probabilities; dout is [B x C]. */
void clv_attention_cls_forward(float *out, const float *qkv, int64_t B, int64_t T, int64_t C, int64_t H);
void clv_attention_cls_backward(float *dqkv, const float *dout, const float *qkv, int64_t B, int64_t T, int64_t C,
                                int64_t H);

/* ---- Patch extraction for a conv with kernel = stride = P (no padding) ----
 * img [B x Cin x H x W] (NCHW) -> patches [B x (H/P)(W/P) x (Cin P P)], each row
 * in the order (c, ph, pw) of a flattened conv weight [D x Cin x P x P],
 * patches in row-major (py, px) order. H and W must be multiples of P. */
void clv_patchify(float *patches, const float *img, int64_t B, int64_t Cin, int64_t H, int64_t W, int64_t P);
/* dimg += the inverse scatter of dpatches */
void clv_patchify_backward(float *dimg, const float *dpatches, int64_t B, int64_t Cin, int64_t H, int64_t W, int64_t P);

/* ---- Row-wise broadcast helpers ---- */
/* y[N x C] *= s[C] per column; ds += column sums of dy*y_unscaled (see adapters) */
void clv_scale_columns(float *y, const float *s, int64_t N, int64_t C);
/* The pass after a weight layer's GEMM, per element of the N x C output:
 *   v = z + b (z as the GEMM wrote it; in place on y when z is NULL)
 *   z = v (kept for the backward of a scale), v = v * s, v = v + res, y = v,
 *   g = GELU(v).
 * Every one of b, s, res, g (and z) may be NULL: that step is skipped. The
 * same floats as the separate bias, scale, residual and GELU kernels. */
void clv_linear_epilogue(float *y, float *z, const float *b, const float *s, const float *res, float *g, int64_t N,
                         int64_t C);
/* The same, and gh (may be NULL) = g in bf16, the next GEMM's input; g may be
 * NULL when gh is not. */
void clv_linear_epilogue_bf16(float *y, float *z, const float *b, const float *s, const float *res, float *g,
                              clv_bf16 *gh, int64_t N, int64_t C);
/* The same with a low-rank term first: v = z + U Q (U [N x K], Q [K x C];
 * K 0: none), then the steps above; z keeps v when given. */
void clv_linear_epilogue_lowrank(float *y, float *z, const float *U, const float *Q, int64_t K, const float *b,
                                 const float *s, const float *res, float *g, clv_bf16 *gh, int64_t N, int64_t C);
/* y = z * s per column, backward without forming dz = dy * s (its
 * consumers fold s into their other operand): ds[C] = column sums of
 * dy * z and dsum[C] = column sums of dy, both overwritten. With sdiv (the
 * scale s, every entry nonzero) z is given as y and ds = colsum(dy * y) / s,
 * so that a layer whose output is kept anyway need not keep z. */
void clv_scale_columns_backward(float *ds, float *dsum, const float *dy, const float *z, const float *sdiv, int64_t N,
                                int64_t C);
/* out[C] += column sums of a[N x C] */
void clv_colsum_add(float *out, const float *a, int64_t N, int64_t C);

/* ---- Low-rank weight update ---- */
/* Backward of z[N x out] = x[N x in] (W + A B)^T for the factors A [out x K],
 * B [K x in] in one pass over x and dz: dA += dz^T (x B^T), dB += (dz A)^T x
 * (each skipped when NULL). dz = dy * s per column (s [out], or NULL for
 * dz = dy): s is folded into A and dA, so dz is never formed. Needs
 * clv_lowrank_backward_scratch_floats(N, in, out, K) floats of scratch.
 * The result does not depend on the thread count. */
int64_t clv_lowrank_backward_scratch_floats(int64_t N, int64_t in, int64_t out, int K);
void clv_lowrank_backward(float *dA, float *dB, const float *x, const float *dy, const float *s, const float *A,
                          const float *B, int64_t N, int64_t in, int64_t out, int K, float *scratch);
/* T [N x cout] += (X P^T) Q for X [N x cin], P [K x cin], Q [K x cout], in
 * fp32 in one pass over X and T (a low-rank term beside a bf16 GEMM). The
 * result does not depend on the thread count. */
void clv_lowrank_apply(float *T, const float *X, const float *P, const float *Q, int64_t N, int64_t cin,
                       int64_t cout, int64_t K);
/* U [N x K] = X P^T for X [N x cin], P [K x cin], in fp32 in one pass over X
 * (the first half of clv_lowrank_apply; the same bits). */
void clv_lowrank_project(float *U, const float *X, const float *P, int64_t N, int64_t cin, int64_t K);

/* ---- RKR's view of a convolution weight (Cout, Cin, k, k) ---- */
/* The rectification P [(Cin k) x (Cout k)] added into W's layout:
 * W[o][i][a][b] += P[i k + a][o k + b] (W row-major, Cout x (Cin k k)). */
void clv_rkr_view_add(float *W, const float *P, int64_t cout, int64_t cin, int64_t k);
/* Its adjoint: P[i k + a][o k + b] = W[o][i][a][b] (overwrites P), e.g. a
 * full weight gradient gathered into the rectification's layout. */
void clv_rkr_view_gather(float *P, const float *W, int64_t cout, int64_t cin, int64_t k);
/* Backward of z[N x Cout] = x[N x (Cin k k)] (W + R)^T with R the above
 * placement of A B, A [(Cin k) x K], B [K x (Cout k)]: dA, dB += (each
 * skipped when NULL), dz = dy * s per column (s NULL: dz = dy), never
 * forming the full dW. Needs clv_rkr_view_backward_scratch_floats floats.
 * The result does not depend on the thread count. */
int64_t clv_rkr_view_backward_scratch_floats(int64_t N, int64_t cin, int64_t cout, int64_t k, int K);
void clv_rkr_view_backward(float *dA, float *dB, const float *x, const float *dy, const float *s, const float *A,
                           const float *B, int64_t N, int64_t cin, int64_t cout, int64_t k, int K, float *scratch);

#ifdef __cplusplus
}
#endif
#endif
