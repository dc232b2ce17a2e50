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
 * e.g. RKR's low-rank path); the bias gradient stays with the layer. */
#ifndef CLVIT_ADAPTER_H
#define CLVIT_ADAPTER_H

#include "clvit/param.h"

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
     * when no scale). Accumulates into the adapter's own parameter gradients. */
    void (*backward)(clv_adapter *a, const clv_wlayer *l, const float *x, const float *dy, const float *s, int64_t N,
                     const float *ds);
    /* Parameters changed (optimizer step, task switch): re-form next time. */
    void (*invalidate)(clv_adapter *a);
    void (*free)(clv_adapter *a);
} clv_adapter_ops;

struct clv_adapter {
    const clv_adapter_ops *ops;
    void *state;
};

struct clv_wlayer {
    char name[CLV_NAME_LEN]; /* module name, e.g. "blocks.0.attn.qkv" */
    int64_t out, in;         /* the weight viewed as an out x in matrix */
    clv_param *weight;       /* base weight */
    clv_param *bias;         /* may be NULL */
    clv_adapter *adapter;    /* NULL: identity */
};

static inline const float *clv_wlayer_weight(const clv_wlayer *l)
{
    return l->adapter ? l->adapter->ops->weight(l->adapter, l) : l->weight->data;
}
static inline const float *clv_wlayer_scale(const clv_wlayer *l)
{
    return l->adapter && l->adapter->ops->scale ? l->adapter->ops->scale(l->adapter, l) : NULL;
}

/* y [N x out] = (x W_eff^T + b) * s. When the layer has a scale, zsave
 * [N x out] receives the pre-scale output z (needed by the backward);
 * otherwise zsave may be NULL. */
void clv_wlayer_forward(const clv_wlayer *l, float *y, float *zsave, const float *x, int64_t N);
/* The same, and in the pass that adds the bias: y += res [N x out] (the
 * residual stream; may be NULL) and gelu [N x out] = GELU(y) (may be NULL). */
void clv_wlayer_forward_fused(const clv_wlayer *l, float *y, float *zsave, const float *x, int64_t N, const float *res,
                              float *gelu);
/* dy [N x out] in; dx [N x in] += (may be NULL); bias and weight/adapter
 * gradients accumulated. zsave as given to the forward. scratch holds
 * clv_wlayer_scratch_floats(l, N) floats (when scaled: ds, a column sum of dy
 * and diag(s) W_eff; no longer grows with N). */
void clv_wlayer_backward(const clv_wlayer *l, float *dx, const float *dy, const float *x, const float *zsave, int64_t N,
                         float *scratch);
/* The same with dx overwritten (=) instead of accumulated: spares the caller
 * a pass that zeroes dx first. */
void clv_wlayer_backward_into(const clv_wlayer *l, float *dx, const float *dy, const float *x, const float *zsave,
                              int64_t N, float *scratch);
/* The same, from the forward's scaled output y [N x out] instead of its
 * pre-scale output (ds = colsum(dy * y) / s, the same to float rounding):
 * for a layer whose output its model keeps anyway, when
 * clv_wlayer_scale_invertible(l) held at the forward. */
void clv_wlayer_backward_into_from_output(const clv_wlayer *l, float *dx, const float *dy, const float *x,
                                          const float *y, int64_t N, float *scratch);
/* 1 when the layer has a scale and every entry is a normal float (nonzero,
 * finite, not subnormal), so that z = y / s; 0 otherwise (no scale, or a
 * masked-out entry as Mask-RKR's F can have). */
int clv_wlayer_scale_invertible(const clv_wlayer *l);
int64_t clv_wlayer_scratch_floats(const clv_wlayer *l, int64_t N);

#ifdef __cplusplus
}
#endif
#endif
