/* Adaptable weight layers and the adapter slot (see shared/DESIGN.md).
 *
 * Every weight layer of a backbone (each Linear, and each conv viewed as a
 * Cout x (Cin kh kw) matrix) is a clv_wlayer. A layer never knows which
 * method adapts it: it asks its adapter for the effective weight and the
 * optional per-output scale of the active task, and hands the gradient back:
 *
 *   z = x W_eff^T + b          y = z * s   (s per output feature, if any)
 *
 * A NULL adapter is the identity: W_eff = W, no scale, and the base weight
 * receives dW = dz^T x when it is trainable. With an adapter, all weight
 * gradients are the adapter's business (it may skip the full dW entirely,
 * e.g. RKR's low-rank path); the bias gradient stays with the layer.
 * The layer keeps what its backward needs (the pre-scale output z under a
 * scale), so no model manages adapters' scales. */
#ifndef CLVIT_ADAPTER_H
#define CLVIT_ADAPTER_H

#include "clvit/arena.h"
#include "clvit/param.h"
#include "clvit/precision.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_adapter clv_adapter;
typedef struct clv_wlayer clv_wlayer;

typedef struct clv_adapter_ops {
    const char *kind;
    /* Effective weight [out x in] of the active task; may be the base weight.
     * Formed at most once per optimizer step (cache until invalidate). */
    const float *(*weight)(clv_adapter *a, const clv_wlayer *l);
    /* Per-output scale [out] of the active task, or NULL for none. */
    const float *(*scale)(clv_adapter *a, const clv_wlayer *l);
    /* x [N x in] the layer input; the gradient of the pre-scale output is
     * dz = dy * s per column (s [out] the active scale, or NULL for dz = dy;
     * dz itself is not formed); ds [out] the gradient of the scale (NULL
     * when no scale). Accumulates into the adapter's own parameter gradients;
     * -1 (err set) when its scratch cannot grow. */
    int (*backward)(clv_adapter *a, const clv_wlayer *l, const float *x, const float *dy, const float *s, int64_t N,
                    const float *ds, clv_err *err);
    /* Parameters changed (optimizer step, task switch): re-form next time. */
    void (*invalidate)(clv_adapter *a);
    void (*free)(clv_adapter *a);
    /* (optional) The same gradients as backward, from dw [out x in], the full
     * gradient of the effective weight (dz^T x, the scale already applied,
     * as a convolution library's backward-weights gives it) and ds as in
     * backward. A layer calls it only when the adapter has it. */
    int (*backward_dweight)(clv_adapter *a, const clv_wlayer *l, const float *dw, const float *ds, clv_err *err);
    /* (optional) When the active task's weight is W_eff = W + A B in the
     * layer's out x in matrix, A [out x K] and B [K x in]: returns K > 0 and
     * the factors; else 0. In bf16 a weight layer's GEMMs then read the base
     * W and the layer adds the low-rank product in fp32, so that the
     * rectification is not lost in W_eff's rounding. With backward_lowrank
     * (its backward wants only the gradients of A and B and of the scale),
     * a convolution forms dA = dz^T (x * B) and dB = (dz A)^T x with
     * K-channel convolutions instead of the full dW_eff (RKR's low-rank path). */
    int (*lowrank)(clv_adapter *a, const clv_wlayer *l, const float **A, const float **B);
    /* dA [out x K], dB [K x in] as above and ds as in backward: accumulated into the task's parameters. */
    int (*backward_lowrank)(clv_adapter *a, const clv_wlayer *l, const float *dA, const float *dB, const float *ds,
                            clv_err *err);
} clv_adapter_ops;

struct clv_adapter {
    const clv_adapter_ops *ops;
    void *state;
};

/* What a layer's last training forward kept for its backward: the layer
 * owns it, whatever the model around it. */
typedef enum {
    CLV_WL_SAVED_NONE = 0, /* no scale (or inference): the backward needs nothing of the output */
    CLV_WL_SAVED_Z,        /* the pre-scale output z, in the layer's own buffer */
    CLV_WL_SAVED_Y         /* nothing: the caller keeps the output y, and z = y / s */
} clv_wl_saved;

struct clv_wlayer {
    char name[CLV_NAME_LEN]; /* module name, e.g. "blocks.0.attn.qkv" */
    int64_t out, in;         /* the weight viewed as an out x in matrix */
    clv_param *weight;       /* base weight */
    clv_param *bias;         /* may be NULL */
    clv_adapter *adapter;    /* NULL: identity */
    clv_compute *compute;    /* the model's GEMM precision and scratch (NULL: fp32, plain clv_gemm) */
    /* owned by the layer (clv_wlayer_release), set by the forward */
    clv_wl_saved saved;
    int64_t saved_rows; /* N of the last training forward, 0 after inference */
    float *zsave;       /* [saved_rows x out] when saved == CLV_WL_SAVED_Z */
    size_t zsave_cap;   /* floats */
    float *lowrank_tmp; /* [(N + out) x K]: x B^T and A^T of a rectification added beside a bf16 GEMM */
    size_t lowrank_cap; /* floats */
};

static inline const float *clv_wlayer_weight(const clv_wlayer *l)
{
    return l->adapter ? l->adapter->ops->weight(l->adapter, l) : l->weight->data;
}
static inline const float *clv_wlayer_scale(const clv_wlayer *l)
{
    return l->adapter && l->adapter->ops->scale ? l->adapter->ops->scale(l->adapter, l) : NULL;
}

/* How a forward runs. */
typedef enum {
    CLV_WL_INFER = 0,        /* no backward follows: nothing is kept */
    CLV_WL_TRAIN,            /* keeps what the backward needs (z, when the layer has a scale) */
    CLV_WL_TRAIN_KEEPS_Y     /* the same, and the caller keeps y unchanged for the backward (it hands
                                y back): under a scale with every entry a normal float the layer then
                                keeps nothing and takes z = y / s, the same to float rounding */
} clv_wl_mode;

/* For a forward that keeps its pre-scale output z [N x out] for the backward (the layer's
 * zsave, saved = CLV_WL_SAVED_Z): where to write it, or NULL (err set) when N rows overflow or
 * do not fit in memory. clv_wlayer_forward's own, and a convolution's (conv.c). */
float *clv_wlayer_keep_z(clv_wlayer *l, int64_t N, clv_err *err);
/* y [N x out] = (x W_eff^T + b) * s. -1 (err set) only when training and
 * the layer cannot grow its saved output. */
int clv_wlayer_forward(clv_wlayer *l, float *y, const float *x, int64_t N, clv_wl_mode mode, clv_err *err);
/* The same, and in the pass that adds the bias: y += res [N x out] (the
 * residual stream; may be NULL) and gelu [N x out] = GELU(y) (may be NULL). */
int clv_wlayer_forward_fused(clv_wlayer *l, float *y, const float *x, int64_t N, const float *res, float *gelu,
                             clv_wl_mode mode, clv_err *err);
/* With gelu_h (may be NULL): GELU(y) also (or, when gelu is NULL, only) in
 * bf16: the next layer's GEMM input, without a conversion pass. */
int clv_wlayer_forward_fused_bf16(clv_wlayer *l, float *y, const float *x, int64_t N, const float *res, float *gelu,
                                  clv_bf16 *gelu_h, clv_wl_mode mode, clv_err *err);
/* For a plain layer in bf16 (clv_wlayer_plain_bf16): only gelu_h [N x out]
 * = bf16(GELU(x W^T + b)), in one oneDNN matmul; y is not formed (a
 * backward forms it again with clv_wlayer_forward). */
int clv_wlayer_forward_gelu_bf16(clv_wlayer *l, clv_bf16 *gelu_h, const float *x, int64_t N, clv_wl_mode mode,
                                 clv_err *err);
/* For a plain layer in bf16: only y_h [N x out] = bf16(x W^T + b), in one
 * oneDNN matmul, for a layer whose output only bf16 products read (the
 * attention's qkv); nothing the backward needs is kept, nor needed. */
int clv_wlayer_forward_to_bf16(clv_wlayer *l, clv_bf16 *y_h, const float *x, int64_t N, clv_wl_mode mode,
                               clv_err *err);
/* dy [N x out] in, x the forward's input; dx [N x in] += (may be NULL);
 * bias and weight/adapter gradients accumulated. y: the forward's output
 * when it ran with CLV_WL_TRAIN_KEEPS_Y (else NULL). scratch: memory shared
 * by the layers of a model, grown as needed. -1 (err set, nothing
 * accumulated) when the forward did not keep what this backward needs
 * (clv_wlayer_check_saved) or scratch cannot grow. */
int clv_wlayer_backward(clv_wlayer *l, float *dx, const float *dy, const float *x, const float *y, int64_t N,
                        clv_arena *scratch, clv_err *err);
/* The same with dx overwritten (=) instead of accumulated: spares the caller
 * a pass that zeroes dx first. */
int clv_wlayer_backward_into(clv_wlayer *l, float *dx, const float *dy, const float *x, const float *y, int64_t N,
                             clv_arena *scratch, clv_err *err);
/* 1 for a layer without output scale and adapter whose GEMMs run in bf16 on
 * oneDNN: the layers the two backwards below take. */
int clv_wlayer_plain_bf16(const clv_wlayer *l);
/* clv_wlayer_backward_into (dx required) with after_dx run between the dx
 * GEMM and the weight gradient's: the pass that forms the input x's bf16
 * copy (clv_compute_shadow) from dx, GELU's backward before fc2. */
int clv_wlayer_backward_split_into(clv_wlayer *l, float *dx, const float *dy, const float *x, int64_t N,
                                   clv_arena *scratch, int (*after_dx)(void *ctx, clv_err *err), void *ctx,
                                   clv_err *err);
/* clv_wlayer_backward_into for a dy that exists only as a bf16 shadow
 * (clv_compute_shadow) whose column sums its producer already added to the
 * bias gradient. */
int clv_wlayer_backward_shadowed_into(clv_wlayer *l, float *dx, const float *dy, const float *x, int64_t N,
                                      clv_arena *scratch, clv_err *err);
/* 1 when the backward will read the forward's output y (CLV_WL_SAVED_Y): the
 * caller must not overwrite it before. */
static inline int clv_wlayer_reads_output(const clv_wlayer *l) { return l->saved == CLV_WL_SAVED_Y; }
/* 1 when a backward must reach the layer: its weight or bias trains, or an adapter is attached. */
static inline int clv_wlayer_trains(const clv_wlayer *l)
{
    return l->weight->trainable || (l->bias && l->bias->trainable) || l->adapter != NULL;
}
/* 0 when the last training forward over N rows kept what a backward with the
 * layer's current scale needs; else -1 naming the layer (a scale that
 * appeared, or an entry zeroed, after the forward). Models check all their
 * layers before a backward touches any gradient. */
int clv_wlayer_check_saved(const clv_wlayer *l, int64_t N, clv_err *err);
int clv_wlayers_check_saved(clv_wlayer *const *ls, int n, clv_err *err);
/* 1 when the layer has a scale and every entry is a normal float (nonzero,
 * finite, not subnormal), so that z = y / s; 0 otherwise (no scale, or a
 * masked-out entry as Mask-RKR's F can have). */
int clv_wlayer_scale_invertible(const clv_wlayer *l);
/* dW [out x in] = dy^T x + beta dW over N rows in the layer's precision: the
 * full weight gradient, for the layer and for adapters that need it. -1 (err
 * set) when the bf16 scratch cannot grow. */
int clv_wlayer_gemm_dyt_x(const clv_wlayer *l, const float *dy, const float *x, int64_t N, float beta, float *dW,
                          clv_err *err);
/* Frees what the layer keeps for its backward. */
void clv_wlayer_release(clv_wlayer *l);
/* Every adapter of ls re-forms its weight (after the base changed). */
void clv_wlayers_invalidate(clv_wlayer *const *ls, int n);

#ifdef __cplusplus
}
#endif
#endif
