/* Vision Transformer backbone with timm's semantics and tensor names
 * (timm.models.vision_transformer.VisionTransformer with its defaults: class
 * token, learned absolute position embedding added to every token, pre-norm
 * blocks, LayerNorm eps 1e-6, qkv bias, exact GELU, no dropout,
 * global_pool='token': the features are the final-normed class token).
 *
 * The blocks are clvit/transformer_block.h's (global attention, the last
 * one class-row: only the class token reaches the head); this file owns the
 * embedding, the final norm and the activation memory around them:
 *  - one forward arena holding what backward needs, sized for the largest
 *    batch seen (or, for inference, a layout that keeps nothing);
 *  - one backward arena of gradient buffers, allocated by the first backward.
 * Adapters attached to the weight layers belong to whoever attached them; the
 * model does not free them. */
#include "clvit/arena.h"
#include "clvit/builder.h"
#include "clvit/kernels.h"
#include "clvit/model.h"
#include "clvit/transformer_block.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vit {
    clv_vit_config cfg;
    int64_t D, H, Hm, P, C, Np, T, K; /* K = C P P, the patch length */
    clv_param *cls, *pos;
    clv_norm norm;
    clv_wlayer pe;
    clv_tblock *blocks; /* the last one with the class-row core */
    const clv_tblock **kptrs;

    int64_t lay_B; /* the batch the layouts below carve for */
    int64_t cap_B; /* forward arena sized for this batch */
    int64_t B;     /* batch of the last successful training forward, 0 if none */
    clv_arena fwd;
    clv_arena inf; /* inference arena, when the training arena is too small to lend */
    int layout; /* which arena the activation pointers below describe: 0 none, 1 training, 2 inference */
    float *patches, *peout, *x0, *clsx, *meanf, *rstdf;
    clv_tblock_shared sh;
    clv_tblock_acts *acts;

    int64_t bwd_cap_B;
    clv_arena bwd;
    float *dres, *dcls, *dpe, *dpatches;
    clv_tblock_grads grads;
} vit;

/* ---- arenas (clvit/arena.h): layouts for the batch v->lay_B ---- */

static void fwd_layout(void *ctx, clv_carver *c)
{
    vit *v = ctx;
    const int64_t B = v->lay_B, D = v->D, T = v->T;
    const int depth = v->cfg.depth;
    v->patches = clv_carve_floats(c, B, v->Np, v->K);
    v->peout = clv_carve_floats(c, B, v->Np, D);
    v->x0 = clv_carve_floats(c, B, T, D);
    v->clsx = clv_carve_floats(c, B, D, 1);
    v->meanf = clv_carve_floats(c, B, 1, 1);
    v->rstdf = clv_carve_floats(c, B, 1, 1);
    clv_tblock_carve_shared(c, &v->sh, v->kptrs, depth, B);
    /* the last block's output feeds only the final norm of the class rows (copied out): no backward
     * reads it, so it may overwrite norm2's output */
    for (int i = 0; i < depth; i++)
        clv_tblock_carve_train(c, &v->acts[i], &v->blocks[i], &v->sh, B, i + 1 < depth);
}

/* Inference keeps nothing for a backward: every block writes the same
 * buffers, and the residual stream alternates between two. */
static void inf_layout(void *ctx, clv_carver *c)
{
    vit *v = ctx;
    const int64_t B = v->lay_B, D = v->D;
    v->patches = clv_carve_floats(c, B, v->Np, v->K);
    v->peout = clv_carve_floats(c, B, v->Np, D);
    clv_tblock_acts shared;
    clv_tblock_carve_infer(c, &shared, &v->sh, v->kptrs, v->cfg.depth, B);
    v->x0 = shared.xout;
    if (!v->cfg.depth) /* no blocks: the stream still needs its buffer */
        v->x0 = clv_carve_floats(c, B, v->T, D);
    v->clsx = clv_carve_floats(c, B, D, 1);
    v->meanf = clv_carve_floats(c, B, 1, 1);
    v->rstdf = clv_carve_floats(c, B, 1, 1);
    for (int i = 0; i < v->cfg.depth; i++)
        v->acts[i] = shared;
}

static void bwd_layout(void *ctx, clv_carver *c)
{
    vit *v = ctx;
    const int64_t B = v->lay_B, D = v->D;
    v->dres = clv_carve_floats(c, B, v->T, D);
    v->dcls = clv_carve_floats(c, B, D, 1);
    v->dpe = clv_carve_floats(c, B, v->Np, D);
    v->dpatches = clv_carve_floats(c, B, v->Np, v->K);
    clv_tblock_carve_grads(c, &v->grads, &v->sh, v->kptrs, v->cfg.depth, B);
}

static int lay_out(clv_model *m, clv_arena *a, clv_arena_layout layout, int64_t B, const char *what, clv_err *err)
{
    vit *v = m->impl;
    char ctx[160];
    snprintf(ctx, sizeof ctx, "%s: %s buffers for batch %lld", m->info.name, what, (long long)B);
    v->lay_B = B;
    return clv_arena_lay_out(a, layout, v, ctx, err);
}

/* Points the activation buffers into the training arena (grown to batch B
 * if needed), or for inference into a layout that keeps nothing: carved out
 * of the training arena when it is big enough (it is idle between steps),
 * else out of its own arena. */
static int ensure_fwd(clv_model *m, int64_t B, int training, clv_err *err)
{
    vit *v = m->impl;
    if (training) {
        if (B > v->cap_B || v->layout != 1) {
            v->layout = 0;
            if (lay_out(m, &v->fwd, fwd_layout, B > v->cap_B ? B : v->cap_B, "activation", err))
                return -1;
            if (B > v->cap_B)
                v->cap_B = B;
        }
        v->layout = 1;
        return 0;
    }
    size_t need;
    v->lay_B = B;
    if (clv_arena_measure(inf_layout, v, &need))
        return clv_errf(err, "%s: inference buffers for batch %lld overflow", m->info.name, (long long)B);
    v->layout = 0;
    /* the training arena is idle between steps: borrow it when it is big enough */
    if (lay_out(m, need <= v->fwd.bytes ? &v->fwd : &v->inf, inf_layout, B, "inference", err))
        return -1;
    v->layout = 2;
    return 0;
}

static void add_inplace(float *y, const float *a, int64_t n)
{
#pragma omp parallel for if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++)
        y[i] += a[i];
}

static int forward_batch(clv_model *m, const float *x, int64_t B, float *feats, clv_err *err)
{
    vit *v = m->impl;
    if (ensure_fwd(m, B, m->training, err))
        return -1;
    const int64_t D = v->D, T = v->T, Np = v->Np, img = v->cfg.img_size;
    const clv_wl_mode mode = m->training ? CLV_WL_TRAIN : CLV_WL_INFER;

    clv_patchify(v->patches, x, B, v->C, img, img, v->P);
    if (clv_wlayer_forward(&v->pe, v->peout, v->patches, B * Np, mode, err))
        return -1;
    /* token 0 is the class token; pos_embed is added to every token */
    const float *cls = v->cls->data, *pos = v->pos->data;
    for (int64_t b = 0; b < B; b++) {
        float *xb = v->x0 + b * T * D;
        for (int64_t d = 0; d < D; d++)
            xb[d] = cls[d] + pos[d];
        const float *pb = v->peout + b * Np * D;
        for (int64_t j = 0; j < Np * D; j++)
            xb[D + j] = pb[j] + pos[D + j];
    }

    /* Only the class token's row of the last block's output reaches the head, so after that block's
     * keys and values the last block runs on the B class rows alone (its class-row core). */
    const float *xin = v->x0;
    for (int i = 0; i < v->cfg.depth; i++) {
        if (clv_tblock_forward(&v->blocks[i], &v->acts[i], &v->sh, xin, B, m->training, err))
            return -1;
        xin = v->acts[i].xout;
    }

    /* LayerNorm is per token and only the class token is pooled: norm just those rows. */
    const int64_t stride = v->cfg.depth ? D : T * D; /* the last block's output is compact */
    for (int64_t b = 0; b < B; b++)
        memcpy(v->clsx + b * D, xin + b * stride, (size_t)D * sizeof(float));
    clv_layernorm_forward(feats, v->meanf, v->rstdf, v->clsx, v->norm.w->data, v->norm.b->data, B, D,
                          v->cfg.ln_eps);
    v->B = m->training ? B : 0;
    return 0;
}

/* Inference keeps nothing between blocks, so it runs in slices of about INFER_ROWS token rows: a
 * block's buffers (qkv, the MLP's hidden layer) then stay in the last-level cache between the kernels
 * that write and read them (batch 256 of vit_tiny_patch4_32: about 7% faster in slices of 31 images,
 * and a smaller arena). Each image's result is its own, whatever the slicing. */
#define INFER_ROWS 2048

static int vit_forward(clv_model *m, const float *x, int64_t B, float *feats, clv_err *err)
{
    vit *v = m->impl;
    if (B <= 0)
        return clv_errf(err, "%s: batch size %lld", m->info.name, (long long)B);
    v->B = 0;
    const int64_t slice = m->training ? B : (INFER_ROWS / v->T > 1 ? INFER_ROWS / v->T : 1);
    const int64_t img = (int64_t)v->C * v->cfg.img_size * v->cfg.img_size;
    for (int64_t b0 = 0; b0 < B; b0 += slice) {
        const int64_t nb = B - b0 < slice ? B - b0 : slice;
        if (forward_batch(m, x + b0 * img, nb, feats + b0 * v->D, err))
            return -1;
    }
    return 0;
}

/* ---- backward ----
 * The graph is walked in units, lowest first: 0 the embedding (patch
 * projection, cls_token, pos_embed), then per block norm1, qkv (with the
 * attention core), proj, norm2, fc1, fc2, and last the final norm. A unit's
 * input gradient is formed only when a unit below it needs a gradient (or dx
 * was asked for), so training only the top of the network costs only the top. */

static int wl_trains(const clv_wlayer *l)
{
    return l->weight->trainable || (l->bias && l->bias->trainable) || l->adapter != NULL;
}

/* block i's units are 1 + 6 i + (0..5), see clv_tblock_lowest_trainable */
static int lowest_trainable_unit(const vit *v)
{
    if (v->cls->trainable || v->pos->trainable || wl_trains(&v->pe))
        return 0;
    for (int i = 0; i < v->cfg.depth; i++) {
        const int u = clv_tblock_lowest_trainable(&v->blocks[i]);
        if (u < 6)
            return 1 + 6 * i + u;
    }
    if (v->norm.w->trainable || v->norm.b->trainable)
        return 1 + 6 * v->cfg.depth;
    return 2 + 6 * v->cfg.depth;
}

static float *grad_of(clv_param *p) { return p->trainable ? p->grad : NULL; }

static void zero(float *p, int64_t n) { memset(p, 0, (size_t)n * sizeof(float)); }

static int backward_walk(clv_model *m, const float *dfeats, float *dx, clv_err *err)
{
    vit *v = m->impl;
    const int64_t B = v->B;
    const int lowest = dx ? -1 : lowest_trainable_unit(v);
    const int ufinal = 1 + 6 * v->cfg.depth;
    if (lowest > ufinal)
        return 0;
    if (clv_wlayers_check_saved(m->wlayers, m->n_wlayers, err)) /* before any gradient is touched */
        return clv_err_prefix(err, "%s", m->info.name);
    if (v->bwd_cap_B < v->cap_B) {
        v->bwd_cap_B = 0;
        if (lay_out(m, &v->bwd, bwd_layout, v->cap_B, "gradient", err))
            return -1;
        v->bwd_cap_B = v->cap_B;
    }
    const int64_t D = v->D, T = v->T, Np = v->Np, img = v->cfg.img_size;

    const int need = lowest < ufinal;
    if (need)
        zero(v->dcls, B * D);
    clv_layernorm_backward(need ? v->dcls : NULL, grad_of(v->norm.w), grad_of(v->norm.b), dfeats, v->clsx,
                           v->norm.w->data, v->meanf, v->rstdf, B, D);
    if (!need)
        return 0;
    if (v->cfg.depth == 0) { /* the class rows' gradient over every token: zero elsewhere */
        zero(v->dres, B * T * D);
        for (int64_t b = 0; b < B; b++)
            memcpy(v->dres + b * T * D, v->dcls + b * D, (size_t)D * sizeof(float));
    }

    /* dres holds the gradient of the residual stream; the last block works on the compact class rows
     * (dcls) down to its attention, where the stream widens to every token. */
    for (int i = v->cfg.depth - 1; i >= 0; i--) {
        float *dout = i + 1 == v->cfg.depth ? v->dcls : v->dres;
        const int rc = clv_tblock_backward(&v->blocks[i], &v->acts[i], &v->sh, &v->grads, dout, v->dres, B,
                                           lowest - (1 + 6 * i), err);
        if (rc)
            return rc < 0 ? -1 : 0;
    }

    /* embedding: x0 = [cls; patch tokens] + pos */
    if (v->cls->trainable)
        for (int64_t b = 0; b < B; b++)
            add_inplace(v->cls->grad, v->dres + b * T * D, D);
    if (v->pos->trainable)
        for (int64_t b = 0; b < B; b++)
            add_inplace(v->pos->grad, v->dres + b * T * D, T * D);
    if (!dx && !wl_trains(&v->pe))
        return 0;
    for (int64_t b = 0; b < B; b++)
        memcpy(v->dpe + b * Np * D, v->dres + (b * T + 1) * D, (size_t)(Np * D) * sizeof(float));
    if (dx)
        zero(v->dpatches, B * Np * v->K);
    if (clv_wlayer_backward(&v->pe, dx ? v->dpatches : NULL, v->dpe, v->patches, NULL, B * Np, &v->grads.wscratch,
                            err))
        return -1;
    if (dx)
        clv_patchify_backward(dx, v->dpatches, B, v->C, img, img, v->P);
    return 0;
}

/* The walk overwrites saved activations (h becomes GELU'(h), then the gradient at h), so a
 * forward's activations serve one backward. */
static int vit_backward(clv_model *m, const float *dfeats, float *dx, clv_err *err)
{
    vit *v = m->impl;
    if (v->B == 0)
        return clv_errf(err, "%s: backward without a training forward (training = 1) since the last backward",
                        m->info.name);
    const int rc = backward_walk(m, dfeats, dx, err);
    v->B = 0;
    return rc;
}

/* ---- init: timm's init_weights, from the kinds given at registration ---- */

static void vit_init(clv_model *m, uint64_t seed)
{
    clv_params_initialize(&m->params, seed);
    clv_wlayers_invalidate(m->wlayers, m->n_wlayers);
}

static void vit_free(clv_model *m)
{
    vit *v = m->impl;
    if (v) {
        clv_arena_free(&v->fwd);
        clv_arena_free(&v->inf);
        clv_arena_free(&v->bwd);
        clv_tblock_grads_free(&v->grads);
        clv_wlayer_release(&v->pe);
        for (int i = 0; v->blocks && i < v->cfg.depth; i++)
            clv_tblock_free(&v->blocks[i]);
        free(v->acts);
        free(v->kptrs);
        free(v->blocks);
        free(v);
    }
    clv_params_free(&m->params);
    free(m->wlayers);
    free(m);
}

static const clv_model_ops vit_ops = {
    .init = vit_init,
    .forward = vit_forward,
    .backward = vit_backward,
    .free = vit_free,
};

/* ---- construction ---- */

static int check_config(const char *name, const clv_vit_config *c, clv_err *err)
{
    /* generous bounds that keep every product below well inside int64 */
    if (c->img_size <= 0 || c->img_size > 4096 || c->patch_size <= 0 || c->img_size % c->patch_size)
        return clv_errf(err, "%s: image size %d is not a positive multiple of patch size %d", name, c->img_size,
                        c->patch_size);
    if (c->in_chans <= 0 || c->in_chans > 64)
        return clv_errf(err, "%s: in_chans %d out of range", name, c->in_chans);
    if (c->embed_dim <= 0 || c->embed_dim > 16384 || c->num_heads <= 0 || c->embed_dim % c->num_heads)
        return clv_errf(err, "%s: embed_dim %d is not a positive multiple of num_heads %d", name, c->embed_dim,
                        c->num_heads);
    if (c->depth < 0 || c->depth > 1024)
        return clv_errf(err, "%s: depth %d out of range", name, c->depth);
    if (c->mlp_hidden <= 0 || c->mlp_hidden > 65536)
        return clv_errf(err, "%s: mlp_hidden %d out of range", name, c->mlp_hidden);
    if (!(c->ln_eps > 0.0f))
        return clv_errf(err, "%s: ln_eps must be positive", name);
    return 0;
}

static void fill_info(clv_model *m)
{
    vit *v = m->impl;
    const clv_vit_config *c = &v->cfg;
    clv_model_info *in = &m->info;
    snprintf(in->family, sizeof in->family, "vit");
    in->img_size = c->img_size;
    in->in_chans = c->in_chans;
    in->feat_dim = c->embed_dim;
    const double D = (double)v->D, T = (double)v->T, Hm = (double)v->Hm;
    const double per_block = 2.0 * T * D * 3.0 * D /* qkv */ + 2.0 * T * T * D /* q k^T */ +
                             2.0 * T * T * D /* att v */ + 2.0 * T * D * D /* proj */ + 2.0 * T * D * Hm * 2.0;
    in->flops_per_image = 2.0 * (double)v->Np * (double)v->K * D + c->depth * per_block;
    const double np = (double)clv_params_count(&m->params, 0);
    char count[32];
    if (np >= 1e6)
        snprintf(count, sizeof count, "%.1fM", np / 1e6);
    else
        snprintf(count, sizeof count, "%.0fK", np / 1e3);
    snprintf(in->summary, sizeof in->summary, "ViT dim %d depth %d heads %d patch %d %dx%d, %s params", c->embed_dim,
             c->depth, c->num_heads, c->patch_size, c->img_size, c->img_size, count);
}

clv_model *clv_vit_create(const char *name, const clv_vit_config *cfg, clv_err *err)
{
    if (!name || strlen(name) >= sizeof(((clv_model_info *)0)->name)) {
        clv_errf(err, "vit: missing or too long model name");
        return NULL;
    }
    if (check_config(name, cfg, err))
        return NULL;
    clv_model *m = calloc(1, sizeof *m);
    vit *v = calloc(1, sizeof *v);
    if (!m || !v) {
        free(m);
        free(v);
        clv_errf(err, "%s: out of memory", name);
        return NULL;
    }
    m->ops = &vit_ops;
    m->impl = v;
    m->training = 1;
    clv_params_init(&m->params);
    snprintf(m->info.name, sizeof m->info.name, "%s", name);

    v->cfg = *cfg;
    v->D = cfg->embed_dim;
    v->H = cfg->num_heads;
    v->Hm = cfg->mlp_hidden;
    v->P = cfg->patch_size;
    v->C = cfg->in_chans;
    v->Np = (int64_t)(cfg->img_size / cfg->patch_size) * (cfg->img_size / cfg->patch_size);
    v->T = v->Np + 1;
    v->K = v->C * v->P * v->P;
    const int64_t D = v->D;
    const int depth = cfg->depth;

    v->blocks = calloc((size_t)depth + 1, sizeof *v->blocks);
    v->kptrs = calloc((size_t)depth + 1, sizeof *v->kptrs);
    v->acts = calloc((size_t)depth + 1, sizeof *v->acts);
    if (!v->blocks || !v->kptrs || !v->acts) {
        clv_errf(err, "%s: out of memory", name);
        goto fail;
    }

    /* registration order = timm's state_dict order */
    clv_builder b;
    clv_builder_init(&b, m, err);
    if (!(v->cls = clv_build_param(&b, "cls_token", CLV_INIT_NORMAL, 1e-6f, 1, 3, 1, 1, D, 0)) ||
        !(v->pos = clv_build_param(&b, "pos_embed", CLV_INIT_TRUNC_NORMAL, 0.02f, 1, 3, 1, v->T, D, 0)) ||
        clv_build_patch_proj(&b, &v->pe, "patch_embed.proj", D, v->C, v->P))
        goto fail;
    const clv_tblock_config bc = {.T = v->T, .C = D, .heads = v->H, .hidden = v->Hm, .eps = cfg->ln_eps};
    for (int i = 0; i < depth; i++) {
        const clv_attn_spec core = {.kind = i + 1 < depth ? CLV_ATTN_GLOBAL : CLV_ATTN_CLASS_ROW};
        const size_t at = clv_builder_push(&b, "blocks.%d", i);
        if (clv_tblock_build(&v->blocks[i], &b, &bc, &core))
            goto fail;
        clv_builder_pop(&b, at);
        v->kptrs[i] = &v->blocks[i];
    }
    if (clv_build_norm(&b, &v->norm, "norm", D))
        goto fail;
    fill_info(m);
    return m;

fail:
    vit_free(m);
    return NULL;
}
