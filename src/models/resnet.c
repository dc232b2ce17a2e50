/* ResNet backbone with BasicBlocks, torchvision's semantics and tensor names
 * (torchvision.models.resnet / timm's resnet18 are the same network: conv1,
 * bn1, relu, [maxpool], layer1..layer4 of BasicBlocks, global average pool;
 * the `fc` head is a task head outside the backbone). A block computes
 *     y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)),
 * shortcut = downsample (1x1 conv with the block's stride, then a batch norm)
 * where the shape changes, else the identity. Convolutions have no bias.
 *
 * Activations are NHWC matrices (rows = pixels), oneDNN's nhwc layout, and
 * each convolution is oneDNN's (clvit/conv.h) fed with its weight layer's
 * effective weight, so every adapter applies to it. In inference a conv
 * also runs its batch norm (folded into the weight and a bias), the
 * residual add and the ReLU as oneDNN post-ops.
 *
 * Batch norm: with batch statistics (and a running-statistics update, as in
 * PyTorch's train mode) when the model is training and the norm's weight is
 * trainable; with the running statistics otherwise (evaluation, and a frozen
 * base), where it is a fixed per-channel affine map. */
#include "clvit/arena.h"
#include "clvit/builder.h"
#include "clvit/conv.h"
#include "clvit/kernels_cnn.h"
#include "clvit/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BN_MOMENTUM 0.1f

typedef struct convbn {
    clv_wlayer wl;                  /* the weight, adapted like any weight layer */
    clv_conv conv;                  /* oneDNN's convolution of it */
    int64_t cin, cout, k, s, p;
    int64_t H, W, Ho, Wo;           /* input and output spatial size */
    clv_batchnorm bn;
    float *mean, *var, *rstd;       /* statistics the last forward used [cout] (activation arena) */
    float *mul, *add;               /* inference: the norm as a per-channel affine map [cout] */
    int batch_stats;                /* the last forward normalized with batch statistics */
    float *z;                       /* conv output [B Ho Wo x cout] (training arena) */
} convbn;

typedef struct rblock {
    convbn c1, c2, ds;
    int has_ds;
    float *x;  /* input (the previous stage's output) */
    float *a1; /* relu(bn1(conv1(x))) */
    float *y;  /* output */
} rblock;

typedef struct resnet {
    clv_resnet_config cfg;
    convbn stem;
    int pool;
    int64_t Hp, Wp;        /* after the max-pool (or the stem) */
    rblock *blocks;
    int n_blocks;
    int64_t act_max;       /* largest activation, floats per image */
    int64_t feat_hw;       /* pixels per image of the last stage */

    int64_t lay_B;         /* the batch the layouts below carve for */
    int64_t cap_B, B;      /* arena batch; batch of the last training forward (0: none) */
    clv_arena fwd;
    float *tmp;
    float *xin, *stem_a, *pooled;
    int32_t *argmax;
    double *bn_scratch;    /* the batch-norm kernels' */
    clv_arena bwd;
    float *gA, *gB, *gt, *dz, *dxin;
    int64_t bwd_cap_B;
    clv_arena wscratch;    /* the convolutions' backward scratch */
    clv_dnnl dnnl;         /* oneDNN's engine and stream for the convolutions */
} resnet;

/* ---- buffers ---- */

static int64_t rows_of(const convbn *c) { return c->Ho * c->Wo; }

static void free_arenas(resnet *r)
{
    clv_arena_free(&r->fwd);
    clv_arena_free(&r->bwd);
    r->cap_B = r->bwd_cap_B = 0;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* The largest scratch a batch norm of the network needs for batch B. */
static int64_t bn_scratch_doubles(const resnet *r, int64_t B)
{
    int64_t n = clv_batchnorm_scratch_doubles(B * rows_of(&r->stem), r->stem.cout);
    for (int i = 0; i < r->n_blocks; i++) {
        const rblock *bk = &r->blocks[i];
        n = max64(n, clv_batchnorm_scratch_doubles(B * rows_of(&bk->c1), bk->c1.cout));
        n = max64(n, clv_batchnorm_scratch_doubles(B * rows_of(&bk->c2), bk->c2.cout));
        if (bk->has_ds)
            n = max64(n, clv_batchnorm_scratch_doubles(B * rows_of(&bk->ds), bk->ds.cout));
    }
    return n;
}

/* the per-channel statistics a norm's forward uses and its backward reads */
static void carve_stats(clv_carver *c, convbn *cb)
{
    cb->mean = clv_carve_floats(c, 5, cb->cout, 1);
    cb->var = cb->mean ? cb->mean + cb->cout : NULL;
    cb->rstd = cb->mean ? cb->mean + 2 * cb->cout : NULL;
    cb->mul = cb->mean ? cb->mean + 3 * cb->cout : NULL;
    cb->add = cb->mean ? cb->mean + 4 * cb->cout : NULL;
}

/* The training arena for batch r->lay_B: input, every conv's output, its norm's, the shortcut's
 * output and the batch norms' scratch. */
static void fwd_layout(void *ctx, clv_carver *c)
{
    resnet *r = ctx;
    const int64_t B = r->lay_B;
    const clv_resnet_config *cf = &r->cfg;
    r->xin = clv_carve_floats(c, B, (int64_t)cf->img_size * cf->img_size, cf->in_chans);
    r->stem.z = clv_carve_floats(c, B, rows_of(&r->stem), r->stem.cout);
    r->stem_a = clv_carve_floats(c, B, rows_of(&r->stem), r->stem.cout);
    r->pooled = r->pool ? clv_carve_floats(c, B, r->Hp * r->Wp, r->stem.cout) : r->stem_a;
    r->argmax = r->pool ? clv_carve_i32(c, B, r->Hp * r->Wp, r->stem.cout) : NULL;
    r->tmp = clv_carve_floats(c, B, r->act_max, 1);
    r->bn_scratch = clv_carve(c, bn_scratch_doubles(r, B), 1, 1, sizeof(double));
    carve_stats(c, &r->stem);
    const float *x = r->pooled;
    for (int i = 0; i < r->n_blocks; i++) {
        rblock *bk = &r->blocks[i];
        bk->x = (float *)x;
        carve_stats(c, &bk->c1);
        carve_stats(c, &bk->c2);
        if (bk->has_ds)
            carve_stats(c, &bk->ds);
        bk->c1.z = clv_carve_floats(c, B, rows_of(&bk->c1), bk->c1.cout);
        bk->a1 = clv_carve_floats(c, B, rows_of(&bk->c1), bk->c1.cout);
        bk->c2.z = clv_carve_floats(c, B, rows_of(&bk->c2), bk->c2.cout);
        if (bk->has_ds)
            bk->ds.z = clv_carve_floats(c, B, rows_of(&bk->ds), bk->ds.cout);
        bk->y = clv_carve_floats(c, B, rows_of(&bk->c2), bk->c2.cout);
        x = bk->y;
    }
}

static void bwd_layout(void *ctx, clv_carver *c)
{
    resnet *r = ctx;
    const int64_t B = r->lay_B;
    r->gA = clv_carve_floats(c, B, r->act_max, 1);
    r->gB = clv_carve_floats(c, B, r->act_max, 1);
    r->gt = clv_carve_floats(c, B, r->act_max, 1);
    r->dz = clv_carve_floats(c, B, r->act_max, 1);
    r->dxin = clv_carve_floats(c, B, (int64_t)r->cfg.img_size * r->cfg.img_size, r->cfg.in_chans);
}

static int lay_out(clv_model *m, clv_arena *a, clv_arena_layout layout, int64_t B, const char *what, clv_err *err)
{
    resnet *r = m->impl;
    char ctx[160];
    snprintf(ctx, sizeof ctx, "%s: %s buffers for batch %lld", m->info.name, what, (long long)B);
    r->lay_B = B;
    return clv_arena_lay_out(a, layout, r, ctx, err);
}

static int ensure_fwd(clv_model *m, int64_t B, clv_err *err)
{
    resnet *r = m->impl;
    if (B <= r->cap_B)
        return 0;
    free_arenas(r);
    if (lay_out(m, &r->fwd, fwd_layout, B, "activation", err))
        return -1;
    r->cap_B = B;
    return 0;
}

static int ensure_bwd(clv_model *m, clv_err *err)
{
    resnet *r = m->impl;
    if (r->bwd_cap_B >= r->cap_B)
        return 0;
    r->bwd_cap_B = 0;
    if (lay_out(m, &r->bwd, bwd_layout, r->cap_B, "gradient", err))
        return -1;
    r->bwd_cap_B = r->cap_B;
    return 0;
}

/* ---- forward ---- */

/* The bf16 copy of a convolution's next input, written by its producer's pass (NULL: next
 * reads none, or next is NULL); clv_conv_input_ready(next, x) after filling it. */
static int next_input_bf16(resnet *r, clv_conv *next, int64_t B, clv_bf16 **h, clv_err *err)
{
    *h = NULL;
    return next ? clv_conv_input_bf16(next, &r->dnnl, B, h, err) : 0;
}

/* out = [relu](bn(conv(x))), x [B H W x cin] (training: z kept for the backward); next (may be
 * NULL): the convolution that reads out next, whose bf16 input the same pass writes. */
static int convbn_forward(clv_model *m, convbn *c, const float *x, int64_t B, float *out, int relu, clv_conv *next,
                          clv_err *err)
{
    resnet *r = m->impl;
    const int64_t N = B * rows_of(c);
    if (clv_conv_forward(&c->conv, &r->dnnl, c->z, x, B, CLV_WL_TRAIN, NULL, err))
        return -1;
    c->batch_stats = c->bn.w->trainable;
    if (c->batch_stats) {
        clv_batchnorm_stats(c->mean, c->var, c->z, N, c->cout, r->bn_scratch);
        clv_batchnorm_update_running(c->bn.running_mean->data, c->bn.running_var->data, c->mean, c->var, N, c->cout,
                                     BN_MOMENTUM);
    } else {
        memcpy(c->mean, c->bn.running_mean->data, (size_t)c->cout * sizeof(float));
        memcpy(c->var, c->bn.running_var->data, (size_t)c->cout * sizeof(float));
    }
    clv_batchnorm_rstd(c->rstd, c->var, c->cout, c->bn.eps);
    clv_bf16 *h;
    if (next_input_bf16(r, next, B, &h, err))
        return -1;
    if (h) {
        clv_batchnorm_apply_bf16(out, h, c->z, c->mean, c->rstd, c->bn.w->data, c->bn.b->data, N, c->cout, relu);
        clv_conv_input_ready(next, out);
    } else {
        clv_batchnorm_apply(out, c->z, c->mean, c->rstd, c->bn.w->data, c->bn.b->data, N, c->cout, relu);
    }
    return 0;
}

/* Inference: out = [relu](bn(conv(x)) [+ res]) in one oneDNN convolution, the norm (running
 * statistics) folded into a per-channel multiplier and shift. res may be out itself. */
static int convbn_infer(clv_model *m, convbn *c, const float *x, int64_t B, float *out, const float *res, int relu,
                        clv_err *err)
{
    resnet *r = m->impl;
    const float *g = c->bn.w->data, *be = c->bn.b->data, *rm = c->bn.running_mean->data;
    clv_batchnorm_rstd(c->rstd, c->bn.running_var->data, c->cout, c->bn.eps);
    for (int64_t o = 0; o < c->cout; o++) {
        c->mul[o] = g[o] * c->rstd[o];
        c->add[o] = be[o] - rm[o] * c->mul[o];
    }
    const clv_conv_fuse fu = {.mul = c->mul, .add = c->add, .res = res, .relu = relu};
    return clv_conv_forward(&c->conv, &r->dnnl, out, x, B, CLV_WL_INFER, &fu, err);
}

static int resnet_infer(clv_model *m, int64_t B, clv_err *err)
{
    resnet *r = m->impl;
    if (convbn_infer(m, &r->stem, r->xin, B, r->stem_a, NULL, 1, err))
        return -1;
    if (r->pool)
        clv_maxpool_forward(r->pooled, r->argmax, r->stem_a, B, r->stem.Ho, r->stem.Wo, r->stem.cout, 3, 2, 1);
    for (int i = 0; i < r->n_blocks; i++) {
        rblock *bk = &r->blocks[i];
        /* the shortcut first, into y, which conv2 then adds to before its relu */
        if (bk->has_ds && convbn_infer(m, &bk->ds, bk->x, B, bk->y, NULL, 0, err))
            return -1;
        if (convbn_infer(m, &bk->c1, bk->x, B, bk->a1, NULL, 1, err) ||
            convbn_infer(m, &bk->c2, bk->a1, B, bk->y, bk->has_ds ? bk->y : bk->x, 1, err))
            return -1;
    }
    return 0;
}

static int resnet_train_forward(clv_model *m, int64_t B, clv_err *err)
{
    resnet *r = m->impl;
    if (convbn_forward(m, &r->stem, r->xin, B, r->stem_a, 1, r->pool ? NULL : &r->blocks[0].c1.conv, err))
        return -1;
    if (r->pool)
        clv_maxpool_forward(r->pooled, r->argmax, r->stem_a, B, r->stem.Ho, r->stem.Wo, r->stem.cout, 3, 2, 1);
    for (int i = 0; i < r->n_blocks; i++) {
        rblock *bk = &r->blocks[i];
        if (convbn_forward(m, &bk->c1, bk->x, B, bk->a1, 1, &bk->c2.conv, err) ||
            convbn_forward(m, &bk->c2, bk->a1, B, bk->y, 0, NULL, err))
            return -1;
        const int64_t n = B * rows_of(&bk->c2) * bk->c2.cout;
        const float *shortcut = bk->x;
        if (bk->has_ds) {
            if (convbn_forward(m, &bk->ds, bk->x, B, r->tmp, 0, NULL, err))
                return -1;
            shortcut = r->tmp;
        }
        /* the block's output and, in bf16, the next block's first conv input in one pass */
        clv_conv *next = i + 1 < r->n_blocks ? &r->blocks[i + 1].c1.conv : NULL;
        clv_bf16 *h;
        if (next_input_bf16(r, next, B, &h, err))
            return -1;
        clv_add_relu(bk->y, h, shortcut, n);
        if (h)
            clv_conv_input_ready(next, bk->y);
    }
    return 0;
}

static int resnet_forward(clv_model *m, const float *x, int64_t B, float *feats, clv_err *err)
{
    resnet *r = m->impl;
    if (B <= 0)
        return clv_errf(err, "%s: batch size %lld", m->info.name, (long long)B);
    r->B = 0;
    r->dnnl.winograd = !m->conv_direct; /* the convs re-make their primitives when it changes */
    if (ensure_fwd(m, B, err))
        return -1;
    const clv_resnet_config *c = &r->cfg;
    clv_nchw_to_nhwc(r->xin, x, B, c->in_chans, c->img_size, c->img_size);
    if (m->training ? resnet_train_forward(m, B, err) : resnet_infer(m, B, err))
        return -1;
    const rblock *last = &r->blocks[r->n_blocks - 1];
    clv_avgpool_forward(feats, last->y, B, r->feat_hw, last->c2.cout);
    r->B = m->training ? B : 0;
    return 0;
}

/* ---- backward ---- */

static float *grad_of(clv_param *p) { return p->trainable ? p->grad : NULL; }

static int wl_trains(const clv_wlayer *l) { return l->weight->trainable || l->adapter != NULL; }

static int convbn_trains(const convbn *c) { return wl_trains(&c->wl) || c->bn.w->trainable || c->bn.b->trainable; }

static int any_trains(const resnet *r)
{
    if (convbn_trains(&r->stem))
        return 1;
    for (int i = 0; i < r->n_blocks; i++) {
        const rblock *bk = &r->blocks[i];
        if (convbn_trains(&bk->c1) || convbn_trains(&bk->c2) || (bk->has_ds && convbn_trains(&bk->ds)))
            return 1;
    }
    return 0;
}

/* dout: gradient of the norm's output (pre-relu, already masked). dinput (may be NULL): the
 * gradient of the conv's input x, overwritten, or accumulated into when accumulate. */
static int convbn_backward(resnet *r, convbn *c, const float *dout, const float *x, float *dinput, int accumulate,
                           int64_t B, clv_err *err)
{
    const int64_t N = B * rows_of(c);
    clv_bf16 *h; /* in bf16: the norm's input gradient written only as the conv's bf16 dy */
    if (clv_conv_dy_bf16(&c->conv, B, &h, err))
        return -1;
    if (h) {
        clv_batchnorm_backward_bf16(h, grad_of(c->bn.w), grad_of(c->bn.b), dout, c->z, c->mean, c->rstd,
                                    c->bn.w->data, N, c->cout, c->batch_stats, r->bn_scratch);
        clv_conv_dy_ready(&c->conv, r->dz);
    } else {
        clv_batchnorm_backward_into(r->dz, grad_of(c->bn.w), grad_of(c->bn.b), dout, c->z, c->mean, c->rstd,
                                    c->bn.w->data, N, c->cout, c->batch_stats, r->bn_scratch);
    }
    return clv_conv_backward(&c->conv, &r->dnnl, dinput, accumulate, r->dz, x, B, &r->wscratch, err);
}

static int resnet_backward(clv_model *m, const float *dfeats, float *dx, clv_err *err)
{
    resnet *r = m->impl;
    const int64_t B = r->B;
    if (B == 0)
        return clv_errf(err, "%s: backward without a successful training forward (training = 1)", m->info.name);
    if (!dx && !any_trains(r))
        return 0;
    if (clv_wlayers_check_saved(m->wlayers, m->n_wlayers, err)) /* before any gradient is touched */
        return clv_err_prefix(err, "%s", m->info.name);
    if (ensure_bwd(m, err))
        return -1;
    const rblock *last = &r->blocks[r->n_blocks - 1];
    float *dy = r->gA, *dnext = r->gB;
    int64_t n = B * rows_of(&last->c2) * last->c2.cout;
    memset(dy, 0, (size_t)n * sizeof(float));
    clv_avgpool_backward(dy, dfeats, B, r->feat_hw, last->c2.cout);
    for (int i = r->n_blocks - 1; i >= 0; i--) {
        rblock *bk = &r->blocks[i];
        n = B * rows_of(&bk->c2) * bk->c2.cout;
        clv_relu_mask(dy, bk->y, n); /* dy is now the gradient of bn2's output and of the shortcut */
        const int64_t n1 = B * rows_of(&bk->c1) * bk->c1.cout;
        float *da1 = r->gt;
        if (convbn_backward(r, &bk->c2, dy, bk->a1, da1, 0, B, err))
            return -1;
        clv_relu_mask(da1, bk->a1, n1);
        const int64_t nx = B * bk->c1.H * bk->c1.W * bk->c1.cin;
        if (convbn_backward(r, &bk->c1, da1, bk->x, dnext, 0, B, err))
            return -1;
        if (bk->has_ds) {
            if (convbn_backward(r, &bk->ds, dy, bk->x, dnext, 1, B, err))
                return -1;
        } else {
#pragma omp parallel for schedule(static) if (nx > 65536)
            for (int64_t j = 0; j < nx; j++)
                dnext[j] += dy[j];
        }
        float *t = dy;
        dy = dnext;
        dnext = t;
    }
    /* dy: gradient of the first block's input (the pooled stem output) */
    const int64_t ns = B * rows_of(&r->stem) * r->stem.cout;
    float *dstem = dy;
    if (r->pool) {
        dstem = dnext;
        memset(dstem, 0, (size_t)ns * sizeof(float));
        clv_maxpool_backward(dstem, dy, r->argmax, B, r->Hp, r->Wp, r->stem.cout);
    }
    clv_relu_mask(dstem, r->stem_a, ns);
    const clv_resnet_config *c = &r->cfg;
    if (convbn_backward(r, &r->stem, dstem, r->xin, dx ? r->dxin : NULL, 0, B, err))
        return -1;
    if (dx)
        clv_nchw_to_nhwc_backward(dx, r->dxin, B, c->in_chans, c->img_size, c->img_size);
    return 0;
}

/* ---- init, free ---- */

static void resnet_init(clv_model *m, uint64_t seed) { clv_build_initialize(m, seed); }

static void resnet_free(clv_model *m)
{
    resnet *r = m->impl;
    free_arenas(r);
    clv_arena_free(&r->wscratch);
    for (int i = 0; i < m->n_wlayers; i++)
        clv_wlayer_release(m->wlayers[i]);
    clv_conv_release(&r->stem.conv);
    for (int i = 0; r->blocks && i < r->n_blocks; i++) {
        clv_conv_release(&r->blocks[i].c1.conv);
        clv_conv_release(&r->blocks[i].c2.conv);
        clv_conv_release(&r->blocks[i].ds.conv);
    }
    clv_dnnl_close(&r->dnnl);
    free(r->blocks);
    clv_build_model_free(m);
}

static const clv_model_ops resnet_ops = {
    .init = resnet_init,
    .forward = resnet_forward,
    .backward = resnet_backward,
    .free = resnet_free,
};

/* ---- construction ---- */


/* conv "<scope>.<conv>.weight" [cout x cin x k x k] and norm "<scope>.<bn>.{weight,bias,running_mean,running_var}" */
static int add_convbn(clv_builder *bld, convbn *c, const char *conv, const char *bn, int64_t cin, int64_t cout,
                      int64_t k, int64_t s, int64_t p, int64_t H, int64_t W)
{
    clv_model *m = bld->m;
    resnet *r = m->impl;
    c->cin = cin, c->cout = cout, c->k = k, c->s = s, c->p = p, c->H = H, c->W = W;
    c->Ho = clv_conv_out_size(H, k, s, p);
    c->Wo = clv_conv_out_size(W, k, s, p);
    if (c->Ho < 1 || c->Wo < 1)
        return clv_errf(bld->err, "%s: %s%s%s gets a %lldx%lld input, too small for its %lldx%lld stride %lld kernel",
                        m->info.name, bld->scope, bld->scope[0] ? "." : "", conv, (long long)H, (long long)W,
                        (long long)k, (long long)k, (long long)s);
    if (clv_build_conv(bld, &c->wl, conv, cout, cin, k) ||
        clv_build_batchnorm(bld, &c->bn, bn, cout, r->cfg.bn_eps) ||
        clv_conv_init(&c->conv, &c->wl, cin, cout, k, s, p, H, W, bld->err))
        return -1;
    const int64_t act = c->Ho * c->Wo * cout;
    r->act_max = max64(r->act_max, max64(act, H * W * cin));
    m->info.flops_per_image += 2.0 * (double)(c->Ho * c->Wo) * (double)cout * (double)(cin * k * k);
    return 0;
}

static int check_config(const char *name, const clv_resnet_config *c, clv_err *err)
{
    if (c->img_size < 8 || c->img_size > 4096)
        return clv_errf(err, "%s: image size %d out of range", name, c->img_size);
    if (c->in_chans <= 0 || c->in_chans > 64)
        return clv_errf(err, "%s: in_chans %d out of range", name, c->in_chans);
    if (c->stem_kernel != 7 && c->stem_kernel != 3)
        return clv_errf(err, "%s: stem_kernel must be 7 (ImageNet) or 3 (CIFAR), not %d", name, c->stem_kernel);
    for (int i = 0; i < 4; i++)
        if (c->widths[i] <= 0 || c->widths[i] > 8192 || c->blocks[i] <= 0 || c->blocks[i] > 64)
            return clv_errf(err, "%s: layer%d has width %d and %d blocks", name, i + 1, c->widths[i], c->blocks[i]);
    if (!(c->bn_eps > 0.0f))
        return clv_errf(err, "%s: bn_eps must be positive", name);
    return 0;
}

clv_model *clv_resnet_create(const char *name, const clv_resnet_config *cfg, clv_err *err)
{
    if (check_config(name ? name : "resnet", cfg, err))
        return NULL;
    clv_model *m = clv_build_model("resnet", name, &resnet_ops, sizeof(resnet), err);
    if (!m)
        return NULL;
    resnet *r = m->impl;
    r->cfg = *cfg;
    r->pool = cfg->stem_kernel == 7;
    for (int i = 0; i < 4; i++)
        r->n_blocks += cfg->blocks[i];
    if (!(r->blocks = calloc((size_t)r->n_blocks, sizeof *r->blocks))) {
        clv_errf(err, "%s: out of memory", name);
        return clv_build_abandon(m);
    }
    if (clv_dnnl_open(&r->dnnl, err)) {
        clv_err_prefix(err, "%s", name);
        return clv_build_abandon(m);
    }
    clv_builder bld;
    clv_builder_init(&bld, m, err);
    const int64_t S = cfg->img_size;
    const int64_t sk = cfg->stem_kernel, ss = r->pool ? 2 : 1, sp = r->pool ? 3 : 1;
    if (add_convbn(&bld, &r->stem, "conv1", "bn1", cfg->in_chans, cfg->widths[0], sk, ss, sp, S, S))
        return clv_build_abandon(m);
    r->Hp = r->pool ? clv_conv_out_size(r->stem.Ho, 3, 2, 1) : r->stem.Ho;
    r->Wp = r->pool ? clv_conv_out_size(r->stem.Wo, 3, 2, 1) : r->stem.Wo;
    if (r->Hp * r->Wp * cfg->widths[0] > r->act_max)
        r->act_max = r->Hp * r->Wp * cfg->widths[0];
    int64_t H = r->Hp, W = r->Wp, cin = cfg->widths[0];
    int bi = 0;
    for (int L = 0; L < 4; L++)
        for (int j = 0; j < cfg->blocks[L]; j++, bi++) {
            rblock *bk = &r->blocks[bi];
            const int64_t cout = cfg->widths[L], s = (L > 0 && j == 0) ? 2 : 1;
            const size_t at = clv_builder_push(&bld, "layer%d.%d", L + 1, j);
            int fail = add_convbn(&bld, &bk->c1, "conv1", "bn1", cin, cout, 3, s, 1, H, W) ||
                       add_convbn(&bld, &bk->c2, "conv2", "bn2", cout, cout, 3, 1, 1, bk->c1.Ho, bk->c1.Wo);
            if (!fail && (s != 1 || cin != cout)) {
                bk->has_ds = 1;
                fail = add_convbn(&bld, &bk->ds, "downsample.0", "downsample.1", cin, cout, 1, s, 0, H, W);
            }
            clv_builder_pop(&bld, at);
            if (fail)
                return clv_build_abandon(m);
            H = bk->c2.Ho, W = bk->c2.Wo, cin = cout;
        }
    r->feat_hw = H * W;

    clv_model_info *in = &m->info;
    in->img_size = cfg->img_size;
    in->in_chans = cfg->in_chans;
    in->feat_dim = cfg->widths[3];
    int64_t np = 0;
    for (int i = 0; i < m->params.count; i++)
        if (!m->params.items[i]->buffer)
            np += m->params.items[i]->numel;
    char count[32];
    if (np >= 1000000)
        snprintf(count, sizeof count, "%.1fM", (double)np / 1e6);
    else
        snprintf(count, sizeof count, "%.0fK", (double)np / 1e3);
    snprintf(in->summary, sizeof in->summary, "ResNet %s stem, widths %d-%d-%d-%d, blocks %d-%d-%d-%d, %dx%d, %s params",
             r->pool ? "7x7+pool" : "3x3", cfg->widths[0], cfg->widths[1], cfg->widths[2], cfg->widths[3],
             cfg->blocks[0], cfg->blocks[1], cfg->blocks[2], cfg->blocks[3], cfg->img_size, cfg->img_size, count);
    return m;
}
