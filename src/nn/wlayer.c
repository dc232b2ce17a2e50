/* Forward and backward of an adaptable weight layer (see clvit/adapter.h):
 * z = x W_eff^T + b, y = z * s. The layer owns the bias gradient and dx;
 * the adapter (or, without one, the base weight) owns the weight gradient. */
#include "clvit/adapter.h"
#include "clvit/gemm.h"
#include "clvit/kernels.h"

#include <math.h>
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
    (void)N;
    /* ds, the column sums of dy, diag(s) W_eff */
    return clv_wlayer_scale(l) ? 2 * l->out + l->out * l->in : 0;
}

int clv_wlayer_scale_invertible(const clv_wlayer *l)
{
    const float *s = clv_wlayer_scale(l);
    if (!s)
        return 0;
    for (int64_t c = 0; c < l->out; c++)
        if (!isnormal(s[c]))
            return 0;
    return 1;
}

/* zsave the pre-scale output z, or (y_kept) the scaled output y */
static void wlayer_backward(const clv_wlayer *l, float *dx, float dx_beta, const float *dy, const float *x,
                            const float *zsave, int y_kept, int64_t N, float *scratch)
{
    const float *W = clv_wlayer_weight(l);
    const float *s = clv_wlayer_scale(l);
    float *db = l->bias && l->bias->trainable ? l->bias->grad : NULL;
    float *ds = NULL;
    if (s) {
        /* The gradient at z is dz = dy * s; it is never formed: the bias
         * gradient is s * colsum(dy), dx = dy (diag(s) W_eff) and the
         * adapter folds s into its factors. Only ds reads z. */
        ds = scratch;
        float *dsum = scratch + l->out, *Ws = scratch + 2 * l->out;
        clv_scale_columns_backward(ds, dsum, dy, zsave, y_kept ? s : NULL, N, l->out);
        if (db)
            for (int64_t c = 0; c < l->out; c++)
                db[c] += s[c] * dsum[c];
        if (dx) {
            for (int64_t c = 0; c < l->out; c++)
                for (int64_t i = 0; i < l->in; i++)
                    Ws[c * l->in + i] = s[c] * W[c * l->in + i];
            W = Ws;
        }
    } else if (db) {
        clv_colsum_add(db, dy, N, l->out);
    }
    if (dx)
        clv_gemm(0, 0, N, l->in, l->out, 1.0f, dy, l->out, W, l->in, dx_beta, dx, l->in);
    if (l->adapter)
        l->adapter->ops->backward(l->adapter, l, x, dy, s, N, ds);
    else if (l->weight->trainable) /* a scale comes only from an adapter: here dz = dy */
        clv_gemm(1, 0, l->out, l->in, N, 1.0f, dy, l->out, x, l->in, 1.0f, l->weight->grad, l->in);
}

void clv_wlayer_backward(const clv_wlayer *l, float *dx, const float *dy, const float *x, const float *zsave, int64_t N,
                         float *scratch)
{
    wlayer_backward(l, dx, 1.0f, dy, x, zsave, 0, N, scratch);
}

void clv_wlayer_backward_into(const clv_wlayer *l, float *dx, const float *dy, const float *x, const float *zsave,
                              int64_t N, float *scratch)
{
    wlayer_backward(l, dx, 0.0f, dy, x, zsave, 0, N, scratch);
}

void clv_wlayer_backward_into_from_output(const clv_wlayer *l, float *dx, const float *dy, const float *x,
                                          const float *y, int64_t N, float *scratch)
{
    wlayer_backward(l, dx, 0.0f, dy, x, y, 1, N, scratch);
}
