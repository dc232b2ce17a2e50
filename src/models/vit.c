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
#include "clvit/builder.h"
#include "clvit/kernels.h"
#include "clvit/model.h"
#include "clvit/transformer_backbone.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vit {
    clv_vit_config cfg;
    int64_t D, H, Hm, P, C, Np, T, K; /* K = C P P, the patch length */
    clv_param *cls, *pos;
    clv_norm norm;
    clv_tbackbone tb; /* patch embedding, arenas, the blocks' shared buffers */
    clv_tblock *blocks; /* the last one with the class-row core */

    float *patches, *peout, *x0, *clsx, *meanf, *rstdf;
    clv_tblock_acts *acts;

    float *dres, *dcls, *dpe, *dpatches;
} vit;

static const clv_model_ops vit_ops; /* at the end of the file */

/* ---- arenas (clvit/arena.h): layouts for the batch v->tb.mem.lay_B ---- */

static void fwd_layout(void *ctx, clv_carver *c)
{
    vit *v = ctx;
    const int64_t B = v->tb.mem.lay_B, D = v->D, T = v->T;
    const int depth = v->cfg.depth;
    v->patches = clv_carve_floats(c, B, v->Np, v->K);
    v->peout = clv_carve_floats(c, B, v->Np, D);
    v->x0 = clv_carve_floats(c, B, T, D);
    v->clsx = clv_carve_floats(c, B, D, 1);
    v->meanf = clv_carve_floats(c, B, 1, 1);
    v->rstdf = clv_carve_floats(c, B, 1, 1);
    clv_tblock_carve_shared(c, &v->tb.sh, v->tb.blocks, depth, B);
    /* the last block's output feeds only the final norm of the class rows (copied out): no backward
     * reads it, so it may overwrite norm2's output */
    for (int i = 0; i < depth; i++)
        clv_tblock_carve_train(c, &v->acts[i], &v->blocks[i], &v->tb.sh, B, i + 1 < depth);
}

/* Inference keeps nothing for a backward: every block writes the same
 * buffers, and the residual stream alternates between two. */
static void inf_layout(void *ctx, clv_carver *c)
{
    vit *v = ctx;
    const int64_t B = v->tb.mem.lay_B, D = v->D;
    v->patches = clv_carve_floats(c, B, v->Np, v->K);
    v->peout = clv_carve_floats(c, B, v->Np, D);
    clv_tblock_acts shared;
    clv_tblock_carve_infer(c, &shared, &v->tb.sh, v->tb.blocks, v->cfg.depth, B);
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
    const int64_t B = v->tb.mem.lay_B, D = v->D;
    v->dres = clv_carve_floats(c, B, v->T, D);
    v->dcls = clv_carve_floats(c, B, D, 1);
    v->dpe = clv_carve_floats(c, B, v->Np, D);
    v->dpatches = clv_carve_floats(c, B, v->Np, v->K);
    clv_tblock_carve_grads(c, &v->tb.grads, &v->tb.sh, v->tb.blocks, v->cfg.depth, B);
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
    if (clv_activations_forward(&v->tb.mem, B, m->training, err))
        return -1;
    const int64_t D = v->D, T = v->T, Np = v->Np;
    const clv_wl_mode mode = m->training ? CLV_WL_TRAIN : CLV_WL_INFER;

    if (clv_patch_embed_forward(&v->tb.pe, v->peout, v->patches, x, B, mode, err))
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
        if (clv_tblock_forward(&v->blocks[i], &v->acts[i], &v->tb.sh, xin, B, m->training, err))
            return -1;
        xin = v->acts[i].xout;
    }

    /* LayerNorm is per token and only the class token is pooled: norm just those rows. */
    const int64_t stride = v->cfg.depth ? D : T * D; /* the last block's output is compact */
    for (int64_t b = 0; b < B; b++)
        memcpy(v->clsx + b * D, xin + b * stride, (size_t)D * sizeof(float));
    clv_norm_forward(&v->norm, feats, v->meanf, v->rstdf, v->clsx, B, D);
    v->tb.mem.trained_B = m->training ? B : 0;
    return 0;
}

/* Inference runs in slices of about INFER_ROWS token rows (clv_tbackbone_forward): batch 256 of
 * vit_tiny_patch4_32 is about 7% faster in slices of 31 images, and its arena smaller. */
#define INFER_ROWS 2048

static int vit_forward(clv_model *m, const float *x, int64_t B, float *feats, clv_err *err)
{
    vit *v = m->impl;
    return clv_tbackbone_forward(&v->tb, m, x, B, feats, v->T, INFER_ROWS, forward_batch, err);
}

/* ---- backward ----
 * The graph is walked in units, lowest first: 0 the embedding (patch
 * projection, cls_token, pos_embed), then per block norm1, qkv (with the
 * attention core), proj, norm2, fc1, fc2, and last the final norm. A unit's
 * input gradient is formed only when a unit below it needs a gradient (or dx
 * was asked for), so training only the top of the network costs only the top. */

/* block i's units are 1 + 6 i + (0..5), see clv_tblock_lowest_trainable */
static int lowest_trainable_unit(const vit *v)
{
    if (v->cls->trainable || v->pos->trainable || clv_wlayer_trains(&v->tb.pe.proj))
        return 0;
    for (int i = 0; i < v->cfg.depth; i++) {
        const int u = clv_tblock_lowest_trainable(&v->blocks[i]);
        if (u < 6)
            return 1 + 6 * i + u;
    }
    if (clv_norm_trains(&v->norm))
        return 1 + 6 * v->cfg.depth;
    return 2 + 6 * v->cfg.depth;
}


static void zero(float *p, int64_t n) { memset(p, 0, (size_t)n * sizeof(float)); }

/* The walk overwrites saved activations (h becomes GELU'(h), then the gradient at h), so a
 * forward's activations serve one backward. */
static int vit_backward(clv_model *m, const float *dfeats, float *dx, clv_err *err)
{
    vit *v = m->impl;
    int64_t B;
    if (clv_activations_take(&v->tb.mem, &B, err))
        return -1;
    const int lowest = dx ? -1 : lowest_trainable_unit(v);
    const int ufinal = 1 + 6 * v->cfg.depth;
    if (lowest > ufinal)
        return 0;
    if (clv_wlayers_check_saved(m->wlayers, m->n_wlayers, err)) /* before any gradient is touched */
        return clv_err_prefix(err, "%s", m->info.name);
    if (clv_activations_backward(&v->tb.mem, err))
        return -1;
    const int64_t D = v->D, T = v->T, Np = v->Np;

    const int need = lowest < ufinal;
    clv_norm_backward_into(&v->norm, need ? v->dcls : NULL, dfeats, v->clsx, v->meanf, v->rstdf, B, D);
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
        const int rc = clv_tblock_backward(&v->blocks[i], &v->acts[i], &v->tb.sh, &v->tb.grads, dout, v->dres, B,
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
    if (!dx && !clv_wlayer_trains(&v->tb.pe.proj))
        return 0;
    for (int64_t b = 0; b < B; b++)
        memcpy(v->dpe + b * Np * D, v->dres + (b * T + 1) * D, (size_t)(Np * D) * sizeof(float));
    return clv_patch_embed_backward(&v->tb.pe, dx, v->dpatches, v->dpe, v->patches, B, &v->tb.grads.wscratch, err);
}

static void vit_free(clv_model *m)
{
    vit *v = m->impl;
    if (v) {
        clv_tbackbone_free(&v->tb);
        for (int i = 0; v->blocks && i < v->cfg.depth; i++)
            clv_tblock_free(&v->blocks[i]);
        free(v->acts);
        free(v->blocks);
    }
    clv_build_model_free(m);
}

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
    in->img_size = c->img_size;
    in->in_chans = c->in_chans;
    in->feat_dim = c->embed_dim;
    const double D = (double)v->D, T = (double)v->T, Hm = (double)v->Hm;
    const double per_block = 2.0 * T * D * 3.0 * D /* qkv */ + 2.0 * T * T * D /* q k^T */ +
                             2.0 * T * T * D /* att v */ + 2.0 * T * D * D /* proj */ + 2.0 * T * D * Hm * 2.0;
    in->flops_per_image = 2.0 * (double)v->Np * (double)v->K * D + c->depth * per_block;
    char count[32];
    clv_build_count_str(m, count, sizeof count);
    snprintf(in->summary, sizeof in->summary, "ViT dim %d depth %d heads %d patch %d %dx%d, %s params", c->embed_dim,
             c->depth, c->num_heads, c->patch_size, c->img_size, c->img_size, count);
}

clv_model *clv_vit_create(const char *name, const clv_vit_config *cfg, clv_err *err)
{
    clv_model *m = clv_build_model("vit", name, &vit_ops, sizeof(vit), err);
    vit *v = m ? m->impl : NULL;
    if (!v || check_config(name, cfg, err))
        return clv_build_abandon(m);

    v->cfg = *cfg;
    if (clv_tbackbone_init(&v->tb, m, cfg->in_chans, cfg->img_size, cfg->patch_size, cfg->depth, fwd_layout, inf_layout,
                           bwd_layout, v, err))
        goto fail;
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
    v->acts = calloc((size_t)depth + 1, sizeof *v->acts);
    if (!v->blocks || !v->acts) {
        clv_errf(err, "%s: out of memory", name);
        goto fail;
    }

    /* registration order = timm's state_dict order */
    clv_builder b;
    clv_builder_init(&b, m, err);
    if (!(v->cls = clv_build_param(&b, "cls_token", CLV_INIT_NORMAL, 1e-6f, 1, 3, 1, 1, D, 0)) ||
        !(v->pos = clv_build_param(&b, "pos_embed", CLV_INIT_TRUNC_NORMAL, 0.02f, 1, 3, 1, v->T, D, 0)) ||
        clv_build_patch_proj(&b, &v->tb.pe.proj, "patch_embed.proj", D, v->C, v->P))
        goto fail;
    const clv_tblock_config bc = {.T = v->T, .C = D, .heads = v->H, .hidden = v->Hm, .eps = cfg->ln_eps};
    for (int i = 0; i < depth; i++) {
        const clv_attn_spec core = {.kind = i + 1 < depth ? CLV_ATTN_GLOBAL : CLV_ATTN_CLASS_ROW};
        const size_t at = clv_builder_push(&b, "blocks.%d", i);
        if (clv_tblock_build(&v->blocks[i], &b, &bc, &core))
            goto fail;
        clv_builder_pop(&b, at);
        v->tb.blocks[i] = &v->blocks[i];
    }
    if (clv_build_norm(&b, &v->norm, "norm", D, cfg->ln_eps))
        goto fail;
    fill_info(m);
    return m;

fail:
    return clv_build_abandon(m);
}

static const clv_model_ops vit_ops = {
    .init = clv_build_initialize, .forward = vit_forward, .backward = vit_backward, .free = vit_free};
