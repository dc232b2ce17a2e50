/* A convolution layer on oneDNN's convolution primitives (forward,
 * backward data, backward weights), activations NHWC.
 *
 * The weight stays an adaptable weight layer (clvit/adapter.h): the conv
 * asks it for the effective weight W_eff [Cout x Cin x k x k] (the out x
 * (Cin k k) matrix every adapter sees) and the optional per-output scale s,
 * computes y = conv(x, W_eff) * s, and hands the weight gradient back as
 * the full dW_eff (oneDNN's backward-weights) through the adapter's
 * backward_dweight, or into the base weight's gradient without an adapter.
 * An adapter whose task is W + A B (RKR in our view) gets dA and dB from
 * two K-channel convolutions instead (adapter ops lowrank/backward_lowrank).
 * So every method adapts a conv exactly as it adapts a Linear.
 *
 * Activations are the NHWC matrices of clvit/kernels_cnn.h ([B*H*W x C],
 * rows = pixels), which is oneDNN's nhwc tag as it is: no reorder of
 * activations anywhere. The weight is reordered once per forward into the
 * layout oneDNN picks for the shape (format "any").
 *
 * oneDNN's engine and stream are the model's (clv_dnnl); each conv owns its
 * primitives for the batch of its last call and re-creates them when the
 * batch changes (oneDNN's primitive cache makes a switch back cheap).
 * Precision: the weight layer's (l->compute, clvit/precision.h). In bf16
 * the primitives read bf16 src, weights and diff_dst and write fp32 dst,
 * diff_src and diff_weights (x and dz converted into the compute context's
 * scratch, W by the reorder); where oneDNN has no bf16 convolution beyond its
 * reference code, the operands are rounded to bf16 values in fp32 through
 * the fp32 primitives. A low-rank adapter's K-channel convs stay fp32. */
#ifndef CLVIT_CONV_H
#define CLVIT_CONV_H

#include "clvit/adapter.h"
#include "clvit/precision.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The blocked activation buffers the model's Winograd convolutions share
 * (each conv reorders its nhwc input and output through them per call). */
typedef struct clv_dnnl_blocked {
    float *buf[2]; /* 0: a conv's (diff_)src, 1: its (diff_)dst */
    size_t cap[2]; /* bytes */
} clv_dnnl_blocked;

/* oneDNN's CPU engine and a stream on it, owned by one model. */
typedef struct clv_dnnl {
    void *engine; /* dnnl_engine_t */
    void *stream; /* dnnl_stream_t */
    /* fp32 3x3 stride-1 convolutions on oneDNN's Winograd primitives where it
     * has them (1 after clv_dnnl_open; 0: direct only, set before the first call) */
    int winograd;
    clv_dnnl_blocked *blocked;
    struct clv_wino_bf16 *wino; /* bf16 Winograd's working memory, shared by the model's convolutions */
} clv_dnnl;

int clv_dnnl_open(clv_dnnl *d, clv_err *err);
void clv_dnnl_close(clv_dnnl *d);

typedef struct clv_conv_prims clv_conv_prims;

/* A bias-free k x k convolution with stride s and zero padding p over an
 * H x W input; l (not owned) is its weight layer (out = cout, in = cin k k). */
typedef struct clv_conv {
    clv_wlayer *l;
    int64_t cin, cout, k, s, p, H, W, Ho, Wo;
    clv_conv_prims *pr; /* oneDNN's, owned; NULL until the first call */
} clv_conv;

/* What an inference forward may fuse into the convolution:
 * y = relu?((conv(x, W_eff) * s) * mul + add + res), per output channel
 * mul and add (a batch norm with fixed statistics), res [N x cout] the
 * residual (may be NULL; may be y itself). mul and add may be NULL. */
typedef struct clv_conv_fuse {
    const float *mul, *add, *res;
    int relu;
} clv_conv_fuse;

/* Sets the conv's shape (Ho, Wo from the others); -1 with err when the
 * kernel does not fit the input or the layer's matrix is not cout x (cin k k). */
int clv_conv_init(clv_conv *c, clv_wlayer *l, int64_t cin, int64_t cout, int64_t k, int64_t s, int64_t p, int64_t H,
                  int64_t W, clv_err *err);
void clv_conv_release(clv_conv *c);

/* y [B Ho Wo x cout] = conv(x [B H W x cin], W_eff) * s. mode as for
 * clv_wlayer_forward: training keeps the pre-scale output when the layer
 * has a scale. fuse (inference only, NULL: none) adds the epilogue above. */
int clv_conv_forward(clv_conv *c, const clv_dnnl *d, float *y, const float *x, int64_t B, clv_wl_mode mode,
                     const clv_conv_fuse *fuse, clv_err *err);
/* dy [B Ho Wo x cout] the gradient of y, x the forward's input. dx (NULL:
 * not needed) is overwritten, or accumulated into when accumulate. The
 * weight gradient goes to the adapter (backward_dweight) or, when the base
 * weight trains, into its grad. scratch: memory shared by a model's layers,
 * grown as needed. -1 with err naming the layer. */
int clv_conv_backward(clv_conv *c, const clv_dnnl *d, float *dx, int accumulate, const float *dy, const float *x,
                      int64_t B, clv_arena *scratch, clv_err *err);
/* bf16 on oneDNN, training: a training forward converts x once into the
 * conv's own buffer and its backward weights reads that copy again when
 * given the same x (x must not change in between, as for any backward).
 * A producer of the conv's next input may write the bf16 copy in the same
 * pass as x itself: *h gets the conv's buffer [B H W x cin] for batch B
 * (NULL when the conv reads no bf16 input: fp32, or bf16 through rounded
 * fp32), and clv_conv_input_ready(c, x) after filling it makes the next
 * forward on x use it instead of converting. -1 with err when out of memory. */
int clv_conv_input_bf16(clv_conv *c, const clv_dnnl *d, int64_t B, clv_bf16 **h, clv_err *err);
void clv_conv_input_ready(clv_conv *c, const float *x);
/* Likewise for the gradient dy of the backward: *h (the compute context's
 * scratch, valid until its next use) when the backward reads dy only in
 * bf16 (bf16 on oneDNN, no scale, no low-rank adapter), else NULL; a
 * producer writes dy's bf16 values there instead of dy and calls
 * clv_conv_dy_ready(c, dy); the next clv_conv_backward given that dy then
 * reads the copy and never dy itself. */
int clv_conv_dy_bf16(clv_conv *c, int64_t B, clv_bf16 **h, clv_err *err);
void clv_conv_dy_ready(clv_conv *c, const float *dy);
/* oneDNN's implementation names for the last batch (forward, backward data,
 * backward weights; "-" for one not made yet; then a low-rank adapter's
 * K-channel forward and backward weights when made), for logs and tests. */
const char *clv_conv_impl(const clv_conv *c, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
