/* Forward and backward of an adaptable weight layer (see clvit/adapter.h):
 * z = x W_eff^T + b, y = z * s. The layer owns the bias gradient and dx;
 * the adapter (or, without one, the base weight) owns the weight gradient. */
#include "clvit/adapter.h"
#include "clvit/gemm.h"
#include "clvit/kernels.h"

#include <string.h>

void clv_wlayer_forward_fused(const clv_wlayer *l, float *y, float *zsave, const float *x, int64_t N, const float *res,
                              float *gelu)
{
    const float *W = clv_wlayer_weight(l);
    const float *s = clv_wlayer_scale(l);
    const float *b = l->bias ? l->bias->data : NULL;
    /* the GEMM writes the pre-scale output where the backward wants it (zsave when scaled) */
    float *z = s && zsave ? zsave : NULL;
    clv_linear_forward(z ? z : y, x, W, NULL, N, l->in, l->out);
    if (b || s || res || gelu)
        clv_linear_epilogue(y, z, b, s, res, gelu, N, l->out);
}

void clv_wlayer_forward(const clv_wlayer *l, float *y, float *zsave, const float *x, int64_t N)
{
    clv_wlayer_forward_fused(l, y, zsave, x, N, NULL, NULL);
}

int64_t clv_wlayer_scratch_floats(const clv_wlayer *l, int64_t N)
{
    return clv_wlayer_scale(l) ? N * l->out + l->out : 0;
}

static void wlayer_backward(const clv_wlayer *l, float *dx, float dx_beta, const float *dy, const float *x,
                            const float *zsave, int64_t N, float *scratch)
{
    const float *W = clv_wlayer_weight(l);
    const float *s = clv_wlayer_scale(l);
    const float *dz = dy;
    float *ds = NULL;
    float *db = l->bias && l->bias->trainable ? l->bias->grad : NULL;
    if (s) {
        /* dz = dy * s; ds = column sums of dy * z; the bias gradient in the same pass */
        float *dzbuf = scratch;
        ds = scratch + N * l->out;
        clv_scale_columns_backward(dzbuf, ds, db, dy, zsave, s, N, l->out);
        dz = dzbuf;
    } else if (db) {
        clv_colsum_add(db, dz, N, l->out);
    }
    if (dx)
        clv_gemm(0, 0, N, l->in, l->out, 1.0f, dz, l->out, W, l->in, dx_beta, dx, l->in);
    if (l->adapter)
        l->adapter->ops->backward(l->adapter, l, x, dz, N, ds);
    else if (l->weight->trainable)
        clv_gemm(1, 0, l->out, l->in, N, 1.0f, dz, l->out, x, l->in, 1.0f, l->weight->grad, l->in);
}

void clv_wlayer_backward(const clv_wlayer *l, float *dx, const float *dy, const float *x, const float *zsave, int64_t N,
                         float *scratch)
{
    wlayer_backward(l, dx, 1.0f, dy, x, zsave, N, scratch);
}

void clv_wlayer_backward_into(const clv_wlayer *l, float *dx, const float *dy, const float *x, const float *zsave,
                              int64_t N, float *scratch)
{
    wlayer_backward(l, dx, 0.0f, dy, x, zsave, N, scratch);
}
