/* Forward and backward of an adaptable weight layer (see clvit/adapter.h):
 * z = x W_eff^T + b, y = z * s. The layer owns the bias gradient, dx and
 * what its backward needs of the forward (z under a scale); the adapter (or,
 * without one, the base weight) owns the weight gradient. */
#include "clvit/adapter.h"
#include "clvit/gemm.h"
#include "clvit/kernels.h"

#include <math.h>
#include <string.h>

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

/* In bf16, a rectification W_eff = W + A B (RKR, Mask-RKR) stays out of the
 * GEMMs' rounding: they read the base W and the layer adds the low-rank
 * product in fp32. Rounded into W_eff, A B (about 1e-4..1e-3, smaller than
 * half a bf16 step of W's entries at first) would lose most of the steps
 * that move it. Returns K, 0 when the GEMMs read W_eff (fp32, other adapters). */
static int64_t lowrank_beside(const clv_wlayer *l, const float **A, const float **B)
{
    if (!l->adapter || !l->adapter->ops->lowrank || clv_compute_precision(l->compute) != CLV_PRECISION_BF16)
        return 0;
    return l->adapter->ops->lowrank(l->adapter, l, A, B);
}

/* At [K x out] = (diag(s) A)^T for A [out x K] (s may be NULL): the factor as the row kernels read it */
static void factor_t(float *At, const float *A, const float *s, int64_t out, int64_t K)
{
    for (int64_t c = 0; c < out; c++)
        for (int64_t k = 0; k < K; k++)
            At[k * out + c] = s ? s[c] * A[c * K + k] : A[c * K + k];
}

/* The low-rank term's operands for the epilogue: U [N x K] = x B^T and A^T [K x out], in the
 * layer's buffer; NULL (err set) when out of memory. */
static const float *lowrank_operands(clv_wlayer *l, const float *x, int64_t N, const float *A, const float *B,
                                     int64_t K, const float **At, clv_err *err)
{
    size_t n;
    if (clv_mul_overflow((size_t)(N + l->out), (size_t)K, &n) ||
        clv_scratch_reserve((void **)&l->lowrank_tmp, &l->lowrank_cap, n, sizeof(float))) {
        clv_errf(err, "%s: out of memory for its low-rank product (%lld rows)", l->name, (long long)N);
        return NULL;
    }
    float *U = l->lowrank_tmp, *T = U + N * K;
    factor_t(T, A, NULL, l->out, K);
    clv_lowrank_project(U, x, B, N, l->in, K);
    *At = T;
    return U;
}

float *clv_wlayer_keep_z(clv_wlayer *l, int64_t N, clv_err *err)
{
    size_t n;
    if (clv_mul_overflow((size_t)N, (size_t)l->out, &n)) {
        clv_errf(err, "%s: %lld rows overflow its saved output", l->name, (long long)N);
        return NULL;
    }
    if (clv_scratch_reserve((void **)&l->zsave, &l->zsave_cap, n, sizeof(float))) {
        clv_errf(err, "%s: out of memory for its pre-scale output (%lld rows)", l->name, (long long)N);
        return NULL;
    }
    l->saved = CLV_WL_SAVED_Z;
    return l->zsave;
}

/* Decides what this forward keeps and returns where the GEMM writes z (NULL: into y). */
static int keep_for_backward(clv_wlayer *l, int64_t N, clv_wl_mode mode, float **z, clv_err *err)
{
    *z = NULL;
    l->saved = CLV_WL_SAVED_NONE;
    l->saved_rows = mode == CLV_WL_INFER ? 0 : N;
    if (mode == CLV_WL_INFER || !clv_wlayer_scale(l))
        return 0;
    if (mode == CLV_WL_TRAIN_KEEPS_Y && clv_wlayer_scale_invertible(l)) {
        l->saved = CLV_WL_SAVED_Y;
        return 0;
    }
    return (*z = clv_wlayer_keep_z(l, N, err)) ? 0 : -1;
}

int clv_wlayer_forward_fused(clv_wlayer *l, float *y, const float *x, int64_t N, const float *res, float *gelu,
                             clv_wl_mode mode, clv_err *err)
{
    return clv_wlayer_forward_fused_bf16(l, y, x, N, res, gelu, NULL, mode, err);
}

int clv_wlayer_forward_fused_bf16(clv_wlayer *l, float *y, const float *x, int64_t N, const float *res, float *gelu,
                                  clv_bf16 *gelu_h, clv_wl_mode mode, clv_err *err)
{
    float *z;
    if (keep_for_backward(l, N, mode, &z, err))
        return -1;
    const float *A = NULL, *B = NULL;
    const int64_t K = lowrank_beside(l, &A, &B);
    const float *W = K ? l->weight->data : clv_wlayer_weight(l);
    const float *s = clv_wlayer_scale(l);
    const float *b = l->bias ? l->bias->data : NULL;
    /* the GEMM writes the pre-scale output where the backward wants it (zsave when kept); in
     * bf16 on oneDNN the matmul adds the bias (the same sum z + b the epilogue forms) */
    if (b && clv_compute_bf16_onednn(l->compute)) {
        /* the residual too, when nothing comes between it and the bias (no scale) */
        const float *r = !s && !z && res != y ? res : NULL;
        if (clv_compute_gemm_bias(l->compute, N, l->out, l->in, x, l->in, W, l->in, b, r, z ? z : y, l->out, err))
            return clv_err_prefix(err, "%s", l->name);
        b = NULL;
        if (r)
            res = NULL;
    } else if (clv_compute_gemm(l->compute, 0, 1, N, l->out, l->in, 1.0f, x, l->in, W, l->in, 0.0f, z ? z : y,
                                l->out, err))
        return clv_err_prefix(err, "%s", l->name);
    const float *U = NULL, *At = NULL; /* the low-rank term, added in the epilogue's pass */
    if (K && !(U = lowrank_operands(l, x, N, A, B, K, &At, err)))
        return -1;
    if (K || b || s || res || gelu || gelu_h)
        clv_linear_epilogue_lowrank(y, z, U, At, K, b, s, res, gelu, gelu_h, N, l->out);
    return 0;
}

/* A plain layer's forward straight to bf16: y_h = bf16([GELU](x W^T + b)) in one matmul */
static int forward_plain_to_bf16(clv_wlayer *l, int gelu, clv_bf16 *y_h, const float *x, int64_t N, clv_wl_mode mode,
                                 clv_err *err)
{
    float *z;
    if (!clv_wlayer_plain_bf16(l))
        return clv_errf(err, "%s: %s needs a plain layer in bf16", l->name,
                        gelu ? "GELU inside the matmul" : "a bf16 output");
    if (keep_for_backward(l, N, mode, &z, err))
        return -1;
    const float *b = l->bias ? l->bias->data : NULL;
    const float *W = clv_wlayer_weight(l);
    if ((gelu ? clv_compute_gemm_bias_gelu : clv_compute_gemm_bias_to_bf16)(l->compute, N, l->out, l->in, x, l->in, W,
                                                                            l->in, b, y_h, err))
        return clv_err_prefix(err, "%s", l->name);
    return 0;
}

int clv_wlayer_forward_gelu_bf16(clv_wlayer *l, clv_bf16 *gelu_h, const float *x, int64_t N, clv_wl_mode mode,
                                 clv_err *err)
{
    return forward_plain_to_bf16(l, 1, gelu_h, x, N, mode, err);
}

int clv_wlayer_forward_to_bf16(clv_wlayer *l, clv_bf16 *y_h, const float *x, int64_t N, clv_wl_mode mode,
                               clv_err *err)
{
    return forward_plain_to_bf16(l, 0, y_h, x, N, mode, err);
}

int clv_wlayer_forward(clv_wlayer *l, float *y, const float *x, int64_t N, clv_wl_mode mode, clv_err *err)
{
    return clv_wlayer_forward_fused(l, y, x, N, NULL, NULL, mode, err);
}

int clv_wlayer_check_saved(const clv_wlayer *l, int64_t N, clv_err *err)
{
    if (!clv_wlayer_scale(l))
        return 0;
    if (l->saved == CLV_WL_SAVED_NONE)
        return clv_errf(err, "%s gained an output scale between forward and backward", l->name);
    if (l->saved_rows != N)
        return clv_errf(err, "%s: backward over %lld rows after a forward over %lld", l->name, (long long)N,
                        (long long)l->saved_rows);
    if (l->saved == CLV_WL_SAVED_Y && !clv_wlayer_scale_invertible(l))
        return clv_errf(err, "%s's output scale changed between forward and backward", l->name);
    return 0;
}

int clv_wlayers_check_saved(clv_wlayer *const *ls, int n, clv_err *err)
{
    for (int i = 0; i < n; i++)
        if (clv_wlayer_check_saved(ls[i], ls[i]->saved_rows, err))
            return -1;
    return 0;
}

/* How a backward runs besides the plain one (all zero: dx accumulated) */
typedef struct {
    float dx_beta;
    int (*after_dx)(void *ctx, clv_err *err); /* between the dx GEMM and the weight gradient's */
    void *ctx;
    int dy_shadowed; /* dy's bf16 copy is a shadow, its column sums already in the bias gradient */
} bwd_opts;

/* dx [N x in] += (dy diag(s) A) B in fp32 (s may be NULL), sAt [K x out] its scratch */
static void lowrank_dx(float *dx, const float *dy, const float *s, const float *A, const float *B, int64_t N,
                       int64_t in, int64_t out, int64_t K, float *sAt)
{
    factor_t(sAt, A, s, out, K);
    clv_lowrank_apply(dx, dy, sAt, B, N, out, in, K);
}

static int wlayer_backward(clv_wlayer *l, float *dx, const float *dy, const float *x, const float *y, int64_t N,
                           clv_arena *scratch, const bwd_opts *o, clv_err *err)
{
    const float dx_beta = o->dx_beta;
    const float *A = NULL, *B = NULL;
    const int64_t K = dx ? lowrank_beside(l, &A, &B) : 0; /* dx gets the rectification's term in fp32 */
    const float *W = K ? l->weight->data : clv_wlayer_weight(l);
    const float *s = clv_wlayer_scale(l);
    float *db = l->bias && l->bias->trainable ? l->bias->grad : NULL;
    float *ds = NULL, *db_sum = NULL; /* db_sum: the bias gradient as the plain column sums of dy */
    /* scratch (no longer grows with N): under a scale ds, the column sums of dy and
     * diag(s) W [out x in]; with a low-rank term (diag(s) A)^T [K x out] */
    const size_t scale_floats = s ? (size_t)(2 * l->out + l->out * l->in) : 0,
                 lowrank_floats = K ? (size_t)(l->out * K) : 0;
    if (scale_floats + lowrank_floats &&
        clv_arena_reserve(scratch, (scale_floats + lowrank_floats) * sizeof(float), "weight layers' scratch", err))
        return -1;
    float *sAt = K ? (float *)scratch->mem + scale_floats : NULL;
    if (s) {
        if (clv_wlayer_check_saved(l, N, err))
            return -1;
        const int from_y = l->saved == CLV_WL_SAVED_Y;
        if (from_y && !y)
            return clv_errf(err, "%s: its backward needs the forward's output", l->name);
        /* The gradient at z is dz = dy * s; it is never formed: the bias
         * gradient is s * colsum(dy), dx = dy (diag(s) W_eff) and the
         * adapter folds s into its factors. Only ds reads z (or y / s). */
        ds = scratch->mem;
        float *dsum = ds + l->out, *Ws = ds + 2 * l->out;
        /* in bf16 with a dx to compute, the pass also converts dy for dx and the weight
         * gradient (below); otherwise clv_scale_columns_backward, as in fp32 */
        const float *z = from_y ? y : l->zsave, *sdiv = from_y ? s : NULL;
        if (!dx)
            clv_scale_columns_backward(ds, dsum, dy, z, sdiv, N, l->out);
        else if (clv_compute_hold_scaled(l->compute, dy, z, sdiv, N, l->out, ds, dsum, err))
            return clv_err_prefix(err, "%s", l->name);
        if (db)
            for (int64_t c = 0; c < l->out; c++)
                db[c] += s[c] * dsum[c];
        if (dx) {
            for (int64_t c = 0; c < l->out; c++)
                for (int64_t i = 0; i < l->in; i++)
                    Ws[c * l->in + i] = s[c] * W[c * l->in + i];
            W = Ws;
        }
    } else if (db && !o->dy_shadowed) {
        db_sum = db;
    }
    /* in bf16, dy is converted once for dx and the weight gradient, in the pass that sums
     * its columns for the bias (in fp32 only the sums: clv_colsum_add) */
    if (!o->dy_shadowed && dx && !s && clv_compute_hold(l->compute, dy, N, l->out, db_sum, err))
        return clv_err_prefix(err, "%s", l->name);
    if (!dx && db_sum)
        clv_colsum_add(db_sum, dy, N, l->out);
    int rc = 0;
    if (dx && clv_compute_gemm(l->compute, 0, 0, N, l->in, l->out, 1.0f, dy, l->out, W, l->in, dx_beta, dx, l->in,
                               err))
        rc = clv_err_prefix(err, "%s", l->name);
    else {
        if (K)
            lowrank_dx(dx, dy, s, A, B, N, l->in, l->out, K, sAt);
        if (o->after_dx && o->after_dx(o->ctx, err))
            rc = -1;
        else if (l->adapter)
            rc = l->adapter->ops->backward(l->adapter, l, x, dy, s, N, ds, err);
        else if (l->weight->trainable) /* a scale comes only from an adapter: here dz = dy */
            rc = clv_wlayer_gemm_dyt_x(l, dy, x, N, 1.0f, l->weight->grad, err);
    }
    clv_compute_unhold(l->compute);
    return rc;
}

int clv_wlayer_backward(clv_wlayer *l, float *dx, const float *dy, const float *x, const float *y, int64_t N,
                        clv_arena *scratch, clv_err *err)
{
    const bwd_opts o = {.dx_beta = 1.0f};
    return wlayer_backward(l, dx, dy, x, y, N, scratch, &o, err);
}

int clv_wlayer_backward_into(clv_wlayer *l, float *dx, const float *dy, const float *x, const float *y, int64_t N,
                             clv_arena *scratch, clv_err *err)
{
    const bwd_opts o = {.dx_beta = 0.0f};
    return wlayer_backward(l, dx, dy, x, y, N, scratch, &o, err);
}

int clv_wlayer_plain_bf16(const clv_wlayer *l)
{
    return !clv_wlayer_scale(l) && !l->adapter && clv_compute_bf16_onednn(l->compute);
}

int clv_wlayer_backward_split_into(clv_wlayer *l, float *dx, const float *dy, const float *x, int64_t N,
                                   clv_arena *scratch, int (*after_dx)(void *ctx, clv_err *err), void *ctx,
                                   clv_err *err)
{
    if (!clv_wlayer_plain_bf16(l) || !dx)
        return clv_errf(err, "%s: a split backward needs a plain layer in bf16 and dx", l->name);
    const bwd_opts o = {.dx_beta = 0.0f, .after_dx = after_dx, .ctx = ctx};
    return wlayer_backward(l, dx, dy, x, NULL, N, scratch, &o, err);
}

int clv_wlayer_backward_shadowed_into(clv_wlayer *l, float *dx, const float *dy, const float *x, int64_t N,
                                      clv_arena *scratch, clv_err *err)
{
    if (!clv_wlayer_plain_bf16(l))
        return clv_errf(err, "%s: a shadowed dy needs a plain layer in bf16", l->name);
    const bwd_opts o = {.dx_beta = 0.0f, .dy_shadowed = 1};
    return wlayer_backward(l, dx, dy, x, NULL, N, scratch, &o, err);
}

int clv_wlayer_gemm_dyt_x(const clv_wlayer *l, const float *dy, const float *x, int64_t N, float beta, float *dW,
                          clv_err *err)
{
    if (clv_compute_gemm(l->compute, 1, 0, l->out, l->in, N, 1.0f, dy, l->out, x, l->in, beta, dW, l->in, err))
        return clv_err_prefix(err, "%s", l->name);
    return 0;
}

void clv_wlayer_release(clv_wlayer *l)
{
    clv_free(l->zsave);
    l->zsave = NULL;
    l->zsave_cap = 0;
    clv_free(l->lowrank_tmp);
    l->lowrank_tmp = NULL;
    l->lowrank_cap = 0;
    l->saved = CLV_WL_SAVED_NONE;
    l->saved_rows = 0;
}

void clv_wlayers_invalidate(clv_wlayer *const *ls, int n)
{
    for (int i = 0; i < n; i++)
        if (ls[i]->adapter && ls[i]->adapter->ops->invalidate)
            ls[i]->adapter->ops->invalidate(ls[i]->adapter);
}
