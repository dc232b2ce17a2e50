/* Swin Transformer backbone with timm 0.6's semantics and tensor names
 * (timm.models.swin_transformer.SwinTransformer, ape=False, patch_norm=True,
 * qkv_bias=True, mlp_ratio 4, LayerNorm eps 1e-5, no dropout):
 *   patch_embed.proj (conv P x P stride P) + patch_embed.norm;
 *   layers.i.blocks.j: x + proj(W-MSA(norm1(x))), then x + fc2(gelu(fc1(norm2(x)))),
 *     W-MSA in ws x ws windows of the grid rolled by -shift (shift = ws/2 on odd
 *     blocks, 0 when the grid is no larger than the window, which then shrinks to
 *     the grid), scores scale q k^T + the relative position bias
 *     (attn.relative_position_bias_table) + the shifted-window mask;
 *   layers.i.downsample (timm 0.6: at the END of stage i, all but the last):
 *     2x2 neighbours concatenated (x0, x1, x2, x3 order), norm, reduction
 *     (Linear 4C -> 2C, no bias);
 *   norm, then the average over tokens: the features. The head is a task
 *   head outside the backbone.
 * Newer timm versions (0.9+) put the downsample at the start of the next
 * stage (layers.i+1.downsample); rename those tensors to load such files.
 *
 * Tokens are rows (b, y, x). Shift + window partition and patch merging are
 * row gathers by indices built for the largest batch; every Linear (and the
 * patch projection, a conv viewed as D x (C P P)) is a clv_wlayer with an
 * adapter slot, in forward order. */
#include "clvit/arena.h"
#include "clvit/kernels.h"
#include "clvit/kernels_swin.h"
#include "clvit/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LN_EPS 1e-5f

typedef struct sblock {
    int64_t H, W, C, heads, ws, shift, nW, N;
    clv_param *n1w, *n1b, *n2w, *n2b, *table;
    clv_wlayer qkv, proj, fc1, fc2;
    int32_t *relidx;  /* [N N] */
    float *mask;      /* [nW N N] or NULL (no shift) */
    float *bias;      /* [heads N N], formed from the table at each forward */
    int32_t *win;     /* window gather index for cap_B images */
    /* activations (training arena) */
    float *xin, *ln1, *mean1, *rstd1, *xw, *qkv_out, *att, *ao, *po, *xmid, *ln2, *mean2, *rstd2, *h, *g, *xout;
} sblock;

typedef struct smerge {
    int64_t H, W, C; /* input grid and channels */
    clv_param *nw, *nb;
    clv_wlayer red;
    int32_t *idx; /* merge gather index for cap_B images */
    float *xin, *xg, *ln, *mean, *rstd, *out;
} smerge;

typedef struct stage {
    int depth;
    sblock *blocks;
    int has_merge;
    smerge merge;
} stage;

typedef struct swin {
    clv_swin_config cfg;
    int64_t P, Hp, Wp, K, D;
    clv_param *pew, *peb, *pnw, *pnb, *nw, *nb;
    clv_wlayer pe;
    stage *stages;
    int n_stages;
    int64_t Hl, Wl, Cl; /* last stage */

    int64_t lay_B; /* the batch the layouts below carve for */
    int64_t cap_B, B;
    clv_arena fwd; /* activations and the gather indices */
    float *patches, *peout, *pmean, *prstd, *x0, *lnf, *meanf, *rstdf;
    clv_arena bwd;
    int64_t bwd_cap_B;
    float *dres, *dtmp, *dwin, *dqkv, *dhid, *dhid2, *dS, *dpatches, *dpe;
    float *attn_scratch; /* the window attention backward's */
    double *bias_sums;   /* the bias table backward's [heads N N] */
    clv_arena wscratch;  /* the weight layers' backward scratch */
} swin;

/* ---- buffers (clvit/arena.h): layouts for the batch s->lay_B ---- */

/* The training arena: activations, then the gather indices (filled by ensure_fwd). */
static void fwd_layout(void *ctx, clv_carver *c)
{
    swin *s = ctx;
    const int64_t B = s->lay_B, L0 = s->Hp * s->Wp;
    s->patches = clv_carve_floats(c, B, L0, s->K);
    s->peout = clv_carve_floats(c, B, L0, s->D);
    s->pmean = clv_carve_floats(c, B, L0, 1);
    s->prstd = clv_carve_floats(c, B, L0, 1);
    s->x0 = clv_carve_floats(c, B, L0, s->D);
    float *x = s->x0;
    for (int i = 0; i < s->n_stages; i++) {
        stage *st = &s->stages[i];
        for (int j = 0; j < st->depth; j++) {
            sblock *k = &st->blocks[j];
            const int64_t L = k->H * k->W, C = k->C, Hm = 4 * C;
            k->xin = x;
            k->ln1 = clv_carve_floats(c, B, L, C);
            k->mean1 = clv_carve_floats(c, B, L, 1);
            k->rstd1 = clv_carve_floats(c, B, L, 1);
            k->xw = clv_carve_floats(c, B, L, C);
            k->qkv_out = clv_carve_floats(c, B, L, 3 * C);
            k->att = clv_carve_floats(c, B, L / k->N * k->heads, k->N * k->N);
            k->ao = clv_carve_floats(c, B, L, C);
            k->po = clv_carve_floats(c, B, L, C);
            k->xmid = clv_carve_floats(c, B, L, C);
            k->ln2 = clv_carve_floats(c, B, L, C);
            k->mean2 = clv_carve_floats(c, B, L, 1);
            k->rstd2 = clv_carve_floats(c, B, L, 1);
            k->h = clv_carve_floats(c, B, L, Hm);
            k->g = clv_carve_floats(c, B, L, Hm);
            k->xout = clv_carve_floats(c, B, L, C);
            x = k->xout;
        }
        if (st->has_merge) {
            smerge *mg = &st->merge;
            const int64_t L4 = (mg->H / 2) * (mg->W / 2);
            mg->xin = x;
            mg->xg = clv_carve_floats(c, B, L4, 4 * mg->C);
            mg->ln = clv_carve_floats(c, B, L4, 4 * mg->C);
            mg->mean = clv_carve_floats(c, B, L4, 1);
            mg->rstd = clv_carve_floats(c, B, L4, 1);
            mg->out = clv_carve_floats(c, B, L4, 2 * mg->C);
            x = mg->out;
        }
    }
    int64_t scratch = 0;
    for (int i = 0; i < s->n_stages; i++) {
        const sblock *k = &s->stages[i].blocks[0];
        const int64_t f = clv_window_attention_scratch_floats(k->N, k->C, k->heads);
        scratch = f > scratch ? f : scratch;
    }
    s->attn_scratch = clv_carve_floats(c, scratch, 1, 1);
    s->lnf = clv_carve_floats(c, B, s->Hl * s->Wl, s->Cl);
    s->meanf = clv_carve_floats(c, B, s->Hl * s->Wl, 1);
    s->rstdf = clv_carve_floats(c, B, s->Hl * s->Wl, 1);
    for (int i = 0; i < s->n_stages; i++) {
        stage *st = &s->stages[i];
        for (int j = 0; j < st->depth; j++)
            st->blocks[j].win = clv_carve_i32(c, B, st->blocks[j].H, st->blocks[j].W);
        if (st->has_merge)
            st->merge.idx = clv_carve_i32(c, B, st->merge.H, st->merge.W);
    }
}

/* rows x width of the widest token matrix of the network */
static int64_t widest(const swin *s, int64_t per_row_factor)
{
    int64_t w = s->Hp * s->Wp * s->D * per_row_factor;
    for (int i = 0; i < s->n_stages; i++) {
        const sblock *k = &s->stages[i].blocks[0];
        if (k->H * k->W * k->C * per_row_factor > w)
            w = k->H * k->W * k->C * per_row_factor;
    }
    return w;
}

static int lay_out(clv_model *m, clv_arena *a, clv_arena_layout layout, int64_t B, const char *what, clv_err *err)
{
    swin *s = m->impl;
    char ctx[160];
    snprintf(ctx, sizeof ctx, "%s: %s buffers for batch %lld", m->info.name, what, (long long)B);
    s->lay_B = B;
    return clv_arena_lay_out(a, layout, s, ctx, err);
}

static int ensure_fwd(clv_model *m, int64_t B, clv_err *err)
{
    swin *s = m->impl;
    if (B <= s->cap_B)
        return 0;
    s->cap_B = 0;
    if (lay_out(m, &s->fwd, fwd_layout, B, "activation", err))
        return -1;
    for (int i = 0; i < s->n_stages; i++) {
        stage *st = &s->stages[i];
        for (int j = 0; j < st->depth; j++) {
            sblock *k = &st->blocks[j];
            clv_swin_window_index(k->win, B, k->H, k->W, k->ws, k->shift);
        }
        if (st->has_merge)
            clv_swin_merge_index(st->merge.idx, B, st->merge.H, st->merge.W);
    }
    s->cap_B = B;
    return 0;
}

/* The backward's buffers, sized for the widest token matrix, reused by every block. */
static void bwd_layout(void *ctx, clv_carver *c)
{
    swin *s = ctx;
    const int64_t B = s->lay_B, tok = widest(s, 1);
    int64_t att = 0, bias = 0;
    for (int i = 0; i < s->n_stages; i++) {
        const sblock *k = &s->stages[i].blocks[0];
        att = k->H * k->W * k->heads * k->N > att ? k->H * k->W * k->heads * k->N : att;
        bias = k->heads * k->N * k->N > bias ? k->heads * k->N * k->N : bias;
    }
    s->dres = clv_carve_floats(c, B, tok, 1);
    s->dtmp = clv_carve_floats(c, B, tok, 1);
    s->dwin = clv_carve_floats(c, B, tok, 2); /* also the merge's 4C-wide rows */
    s->dqkv = clv_carve_floats(c, B, tok, 3);
    s->dhid = clv_carve_floats(c, B, tok, 4);
    s->dhid2 = clv_carve_floats(c, B, tok, 4);
    s->dS = clv_carve_floats(c, B, att, 1);
    s->dpatches = clv_carve_floats(c, B, s->Hp * s->Wp, s->K);
    s->dpe = clv_carve_floats(c, B, s->Hp * s->Wp, s->D);
    s->bias_sums = clv_carve(c, bias, 1, 1, sizeof(double));
}

static int ensure_bwd(clv_model *m, clv_err *err)
{
    swin *s = m->impl;
    if (s->bwd_cap_B >= s->cap_B)
        return 0;
    s->bwd_cap_B = 0;
    if (lay_out(m, &s->bwd, bwd_layout, s->cap_B, "gradient", err))
        return -1;
    s->bwd_cap_B = s->cap_B;
    return 0;
}

/* ---- forward ---- */

static void add_inplace(float *y, const float *a, int64_t n)
{
#pragma omp parallel for if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++)
        y[i] += a[i];
}

static int block_forward(swin *s, sblock *k, int64_t B, clv_wl_mode mode, clv_err *err)
{
    const int64_t R = B * k->H * k->W, C = k->C;
    clv_layernorm_forward(k->ln1, k->mean1, k->rstd1, k->xin, k->n1w->data, k->n1b->data, R, C, LN_EPS);
    clv_rows_gather(k->xw, k->ln1, k->win, R, C);
    if (clv_wlayer_forward(&k->qkv, k->qkv_out, k->xw, R, mode, err))
        return -1;
    clv_window_bias_forward(k->bias, k->table->data, k->relidx, k->N, k->heads);
    clv_window_attention_forward(k->ao, k->att, k->qkv_out, k->bias, k->mask, NULL, k->nW, R / k->N, k->N, C, k->heads,
                                 s->attn_scratch);
    if (clv_wlayer_forward(&k->proj, k->po, k->ao, R, mode, err))
        return -1;
    /* window reverse and roll back: the scatter by the same index */
    memcpy(k->xmid, k->xin, (size_t)(R * C) * sizeof(float));
    clv_rows_scatter_add(k->xmid, k->po, k->win, R, C);
    clv_layernorm_forward(k->ln2, k->mean2, k->rstd2, k->xmid, k->n2w->data, k->n2b->data, R, C, LN_EPS);
    if (clv_wlayer_forward(&k->fc1, k->h, k->ln2, R, mode, err))
        return -1;
    clv_gelu_forward(k->g, k->h, R * 4 * C);
    if (clv_wlayer_forward(&k->fc2, k->xout, k->g, R, mode, err))
        return -1;
    add_inplace(k->xout, k->xmid, R * C);
    return 0;
}

static int merge_forward(smerge *mg, int64_t B, clv_wl_mode mode, clv_err *err)
{
    const int64_t R4 = B * (mg->H / 2) * (mg->W / 2), C4 = 4 * mg->C;
    clv_rows_gather(mg->xg, mg->xin, mg->idx, 4 * R4, mg->C);
    clv_layernorm_forward(mg->ln, mg->mean, mg->rstd, mg->xg, mg->nw->data, mg->nb->data, R4, C4, LN_EPS);
    return clv_wlayer_forward(&mg->red, mg->out, mg->ln, R4, mode, err);
}

static int swin_forward(clv_model *m, const float *x, int64_t B, float *feats, clv_err *err)
{
    swin *s = m->impl;
    if (B <= 0)
        return clv_errf(err, "%s: batch size %lld", m->info.name, (long long)B);
    s->B = 0;
    if (ensure_fwd(m, B, err))
        return -1;
    const int64_t L0 = B * s->Hp * s->Wp, img = s->cfg.img_size;
    const clv_wl_mode mode = m->training ? CLV_WL_TRAIN : CLV_WL_INFER;
    clv_patchify(s->patches, x, B, s->cfg.in_chans, img, img, s->P);
    if (clv_wlayer_forward(&s->pe, s->peout, s->patches, L0, mode, err))
        return -1;
    clv_layernorm_forward(s->x0, s->pmean, s->prstd, s->peout, s->pnw->data, s->pnb->data, L0, s->D, LN_EPS);
    const float *last = s->x0;
    for (int i = 0; i < s->n_stages; i++) {
        stage *st = &s->stages[i];
        for (int j = 0; j < st->depth; j++) {
            if (block_forward(s, &st->blocks[j], B, mode, err))
                return -1;
            last = st->blocks[j].xout;
        }
        if (st->has_merge) {
            if (merge_forward(&st->merge, B, mode, err))
                return -1;
            last = st->merge.out;
        }
    }
    const int64_t T = s->Hl * s->Wl, Rl = B * T, C = s->Cl;
    clv_layernorm_forward(s->lnf, s->meanf, s->rstdf, last, s->nw->data, s->nb->data, Rl, C, LN_EPS);
    for (int64_t b = 0; b < B; b++) {
        float *f = feats + b * C;
        for (int64_t c = 0; c < C; c++)
            f[c] = 0.0f;
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < C; c++)
                f[c] += s->lnf[(b * T + t) * C + c];
        for (int64_t c = 0; c < C; c++)
            f[c] /= (float)T;
    }
    s->B = m->training ? B : 0;
    return 0;
}

/* ---- backward ---- */

static float *grad_of(clv_param *p) { return p->trainable ? p->grad : NULL; }
static void zero(float *p, int64_t n) { memset(p, 0, (size_t)n * sizeof(float)); }

/* dres: gradient of the block's output on entry, of its input on return. */
static int block_backward(swin *s, sblock *k, int64_t B, clv_err *err)
{
    const int64_t R = B * k->H * k->W, C = k->C, Hm = 4 * C;
    /* MLP branch */
    zero(s->dhid, R * Hm);
    if (clv_wlayer_backward(&k->fc2, s->dhid, s->dres, k->g, NULL, R, &s->wscratch, err))
        return -1;
    zero(s->dhid2, R * Hm);
    clv_gelu_backward(s->dhid2, s->dhid, k->h, R * Hm);
    zero(s->dtmp, R * C);
    if (clv_wlayer_backward(&k->fc1, s->dtmp, s->dhid2, k->ln2, NULL, R, &s->wscratch, err))
        return -1;
    clv_layernorm_backward(s->dres, grad_of(k->n2w), grad_of(k->n2b), s->dtmp, k->xmid, k->n2w->data, k->mean2,
                           k->rstd2, R, C);
    /* attention branch: xmid = xin + scatter(po) */
    float *dpo = s->dwin, *dao = s->dwin + R * C;
    clv_rows_gather(dpo, s->dres, k->win, R, C);
    zero(dao, R * C);
    if (clv_wlayer_backward(&k->proj, dao, dpo, k->ao, NULL, R, &s->wscratch, err))
        return -1;
    zero(s->dqkv, R * 3 * C);
    const int bias_trains = k->table->trainable;
    clv_window_attention_backward(s->dqkv, bias_trains ? s->dS : NULL, dao, k->qkv_out, k->att, NULL, k->nW,
                                  R / k->N, k->N, C, k->heads, s->attn_scratch);
    if (bias_trains)
        clv_window_bias_backward(k->table->grad, s->dS, k->relidx, R / k->N, k->N, k->heads, s->bias_sums);
    float *dxw = s->dwin;
    zero(dxw, R * C);
    if (clv_wlayer_backward(&k->qkv, dxw, s->dqkv, k->xw, NULL, R, &s->wscratch, err))
        return -1;
    zero(s->dtmp, R * C);
    clv_rows_scatter_add(s->dtmp, dxw, k->win, R, C);
    clv_layernorm_backward(s->dres, grad_of(k->n1w), grad_of(k->n1b), s->dtmp, k->xin, k->n1w->data, k->mean1,
                           k->rstd1, R, C);
    return 0;
}

/* dres: gradient of the merge's output on entry, of its input on return. */
static int merge_backward(swin *s, smerge *mg, int64_t B, clv_err *err)
{
    const int64_t R4 = B * (mg->H / 2) * (mg->W / 2), C4 = 4 * mg->C;
    float *dln = s->dwin, *dxg = s->dqkv;
    zero(dln, R4 * C4);
    if (clv_wlayer_backward(&mg->red, dln, s->dres, mg->ln, NULL, R4, &s->wscratch, err))
        return -1;
    zero(dxg, R4 * C4);
    clv_layernorm_backward(dxg, grad_of(mg->nw), grad_of(mg->nb), dln, mg->xg, mg->nw->data, mg->mean, mg->rstd, R4,
                           C4);
    zero(s->dres, 4 * R4 * mg->C);
    clv_rows_scatter_add(s->dres, dxg, mg->idx, 4 * R4, mg->C);
    return 0;
}

static int swin_backward(clv_model *m, const float *dfeats, float *dx, clv_err *err)
{
    swin *s = m->impl;
    const int64_t B = s->B;
    if (B == 0)
        return clv_errf(err, "%s: backward without a successful training forward (training = 1)", m->info.name);
    if (clv_wlayers_check_saved(m->wlayers, m->n_wlayers, err)) /* before any gradient is touched */
        return clv_err_prefix(err, "%s", m->info.name);
    if (ensure_bwd(m, err))
        return -1;
    const int64_t T = s->Hl * s->Wl, C = s->Cl, Rl = B * T;
    /* the mean over tokens, then the final norm */
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < C; c++)
                s->dtmp[(b * T + t) * C + c] = dfeats[b * C + c] / (float)T;
    const stage *lastst = &s->stages[s->n_stages - 1];
    const float *last = lastst->blocks[lastst->depth - 1].xout;
    zero(s->dres, Rl * C);
    clv_layernorm_backward(s->dres, grad_of(s->nw), grad_of(s->nb), s->dtmp, last, s->nw->data, s->meanf, s->rstdf,
                           Rl, C);
    for (int i = s->n_stages - 1; i >= 0; i--) {
        stage *st = &s->stages[i];
        if (st->has_merge && merge_backward(s, &st->merge, B, err))
            return -1;
        for (int j = st->depth - 1; j >= 0; j--)
            if (block_backward(s, &st->blocks[j], B, err))
                return -1;
    }
    /* patch embedding: norm, projection */
    const int64_t L0 = B * s->Hp * s->Wp, img = s->cfg.img_size;
    zero(s->dpe, L0 * s->D);
    clv_layernorm_backward(s->dpe, grad_of(s->pnw), grad_of(s->pnb), s->dres, s->peout, s->pnw->data, s->pmean,
                           s->prstd, L0, s->D);
    if (dx)
        zero(s->dpatches, L0 * s->K);
    if (clv_wlayer_backward(&s->pe, dx ? s->dpatches : NULL, s->dpe, s->patches, NULL, L0, &s->wscratch, err))
        return -1;
    if (dx)
        clv_patchify_backward(dx, s->dpatches, B, s->cfg.in_chans, img, img, s->P);
    return 0;
}

/* ---- init, free ---- */

static void swin_init(clv_model *m, uint64_t seed)
{
    clv_params_initialize(&m->params, seed);
    clv_wlayers_invalidate(m->wlayers, m->n_wlayers);
}

static void swin_free(clv_model *m)
{
    swin *s = m->impl;
    if (s) {
        clv_arena_free(&s->fwd);
        clv_arena_free(&s->bwd);
        clv_arena_free(&s->wscratch);
        for (int i = 0; m->wlayers && i < m->n_wlayers; i++)
            clv_wlayer_release(m->wlayers[i]);
        for (int i = 0; s->stages && i < s->n_stages; i++) {
            for (int j = 0; s->stages[i].blocks && j < s->stages[i].depth; j++) {
                free(s->stages[i].blocks[j].relidx);
                free(s->stages[i].blocks[j].mask);
                free(s->stages[i].blocks[j].bias);
            }
            free(s->stages[i].blocks);
        }
        free(s->stages);
        free(s);
    }
    clv_params_free(&m->params);
    free(m->wlayers);
    free(m);
}

static const clv_model_ops swin_ops = {
    .init = swin_init,
    .forward = swin_forward,
    .backward = swin_backward,
    .free = swin_free,
};

/* ---- construction ---- */

static clv_param *add(clv_model *m, clv_init_kind kind, float scale, int no_decay, clv_err *err, const char *name,
                      int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    return clv_params_add_init(&m->params, name, kind, scale, no_decay, ndim, d0, d1, d2, d3, err);
}

static int add_linear(clv_model *m, clv_wlayer *l, const char *prefix, int64_t out, int64_t in, int bias, clv_err *err)
{
    char name[CLV_NAME_LEN + 8]; /* a name too long for a parameter is refused by clv_params_add */
    snprintf(l->name, sizeof l->name, "%s", prefix);
    l->out = out;
    l->in = in;
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (!(l->weight = add(m, CLV_INIT_TRUNC_NORMAL, 0.02f, 0, err, name, 2, out, in, 0, 0)))
        return -1;
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        if (!(l->bias = add(m, CLV_INIT_ZERO, 0.0f, 1, err, name, 1, out, 0, 0, 0)))
            return -1;
    }
    m->wlayers[m->n_wlayers++] = l;
    return 0;
}

static int add_norm(clv_model *m, clv_param **w, clv_param **b, const char *prefix, int64_t D, clv_err *err)
{
    char name[CLV_NAME_LEN];
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (!(*w = add(m, CLV_INIT_ONE, 0.0f, 1, err, name, 1, D, 0, 0, 0)))
        return -1;
    snprintf(name, sizeof name, "%s.bias", prefix);
    if (!(*b = add(m, CLV_INIT_ZERO, 0.0f, 1, err, name, 1, D, 0, 0, 0)))
        return -1;
    (*w)->norm = (*b)->norm = 1;
    return 0;
}

static int add_block(clv_model *m, sblock *k, int stage_i, int j, int64_t H, int64_t W, int64_t C, int64_t heads,
                     int64_t window, clv_err *err)
{
    char p[48], q[CLV_NAME_LEN];
    k->H = H, k->W = W, k->C = C, k->heads = heads;
    /* timm: no shift and a window the grid's size when the grid is no larger than the window */
    k->ws = H <= window || W <= window ? (H < W ? H : W) : window;
    k->shift = (H <= window || W <= window) ? 0 : (j % 2 ? window / 2 : 0);
    if (H % k->ws || W % k->ws)
        return clv_errf(err, "%s: stage %d's %lldx%lld grid is not a multiple of the window %lld", m->info.name,
                        stage_i + 1, (long long)H, (long long)W, (long long)k->ws);
    k->N = k->ws * k->ws;
    k->nW = (H / k->ws) * (W / k->ws);
    snprintf(p, sizeof p, "layers.%d.blocks.%d", stage_i, j);
    snprintf(q, sizeof q, "%s.norm1", p);
    if (add_norm(m, &k->n1w, &k->n1b, q, C, err))
        return -1;
    snprintf(q, sizeof q, "%s.attn.relative_position_bias_table", p);
    const int64_t tw = 2 * k->ws - 1;
    if (!(k->table = add(m, CLV_INIT_TRUNC_NORMAL, 0.02f, 1, err, q, 2, tw * tw, heads, 0, 0)))
        return -1;
    snprintf(q, sizeof q, "%s.attn.qkv", p);
    if (add_linear(m, &k->qkv, q, 3 * C, C, 1, err))
        return -1;
    snprintf(q, sizeof q, "%s.attn.proj", p);
    if (add_linear(m, &k->proj, q, C, C, 1, err))
        return -1;
    snprintf(q, sizeof q, "%s.norm2", p);
    if (add_norm(m, &k->n2w, &k->n2b, q, C, err))
        return -1;
    snprintf(q, sizeof q, "%s.mlp.fc1", p);
    if (add_linear(m, &k->fc1, q, 4 * C, C, 1, err))
        return -1;
    snprintf(q, sizeof q, "%s.mlp.fc2", p);
    if (add_linear(m, &k->fc2, q, C, 4 * C, 1, err))
        return -1;
    k->relidx = malloc((size_t)(k->N * k->N) * sizeof *k->relidx);
    k->bias = malloc((size_t)(heads * k->N * k->N) * sizeof *k->bias);
    if (k->shift)
        k->mask = malloc((size_t)(k->nW * k->N * k->N) * sizeof *k->mask);
    if (!k->relidx || !k->bias || (k->shift && !k->mask))
        return clv_errf(err, "out of memory");
    clv_swin_relative_index(k->relidx, k->ws);
    if (k->shift)
        clv_swin_attention_mask(k->mask, H, W, k->ws, k->shift);
    /* 2 FLOPs per multiply-add: qkv, q k^T, att v, proj, fc1, fc2 */
    m->info.flops_per_image += 2.0 * (double)(H * W) * (double)(C * 3 * C + 2 * k->N * C + C * C + 8 * C * C);
    return 0;
}

static int check_config(const char *name, const clv_swin_config *c, clv_err *err)
{
    if (c->img_size <= 0 || c->img_size > 4096 || c->patch_size <= 0 || c->img_size % c->patch_size)
        return clv_errf(err, "%s: image size %d is not a positive multiple of patch size %d", name, c->img_size,
                        c->patch_size);
    if (c->in_chans <= 0 || c->in_chans > 64 || c->embed_dim <= 0 || c->embed_dim > 8192 || c->window <= 0)
        return clv_errf(err, "%s: in_chans, embed_dim or window out of range", name);
    if (c->n_stages < 1 || c->n_stages > CLV_SWIN_MAX_STAGES)
        return clv_errf(err, "%s: %d stages (1..%d)", name, c->n_stages, CLV_SWIN_MAX_STAGES);
    int64_t res = c->img_size / c->patch_size, dim = c->embed_dim;
    for (int i = 0; i < c->n_stages; i++) {
        if (c->depths[i] <= 0 || c->depths[i] > 64 || c->heads[i] <= 0 || dim % c->heads[i])
            return clv_errf(err, "%s: stage %d: depth %d, %d heads for dim %lld", name, i + 1, c->depths[i],
                            c->heads[i], (long long)dim);
        if (i + 1 < c->n_stages && (res % 2 || res < 2))
            return clv_errf(err, "%s: stage %d's %lldx%lld grid cannot be merged 2x2", name, i + 1, (long long)res,
                            (long long)res);
        res /= 2;
        dim *= 2;
    }
    return 0;
}

clv_model *clv_swin_create(const char *name, const clv_swin_config *cfg, clv_err *err)
{
    if (!name || strlen(name) >= sizeof(((clv_model_info *)0)->name)) {
        clv_errf(err, "swin: missing or too long model name");
        return NULL;
    }
    if (check_config(name, cfg, err))
        return NULL;
    clv_model *m = calloc(1, sizeof *m);
    swin *s = calloc(1, sizeof *s);
    if (!m || !s) {
        free(m);
        free(s);
        clv_errf(err, "%s: out of memory", name);
        return NULL;
    }
    m->ops = &swin_ops;
    m->impl = s;
    m->training = 1;
    clv_params_init(&m->params);
    snprintf(m->info.name, sizeof m->info.name, "%s", name);
    s->cfg = *cfg;
    s->P = cfg->patch_size;
    s->Hp = s->Wp = cfg->img_size / cfg->patch_size;
    s->K = (int64_t)cfg->in_chans * s->P * s->P;
    s->D = cfg->embed_dim;
    s->n_stages = cfg->n_stages;
    int n_wl = 1;
    for (int i = 0; i < cfg->n_stages; i++)
        n_wl += 4 * cfg->depths[i] + 1;
    s->stages = calloc((size_t)cfg->n_stages, sizeof *s->stages);
    m->wlayers = calloc((size_t)n_wl, sizeof *m->wlayers);
    if (!s->stages || !m->wlayers) {
        clv_errf(err, "%s: out of memory", name);
        goto fail;
    }
    /* the patch projection keeps PyTorch's conv default (timm initializes only Linear and LayerNorm):
     * uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias */
    const float conv_bound = 1.0f / sqrtf((float)s->K);
    /* registration order = timm's state_dict order */
    if (!(s->pew = add(m, CLV_INIT_UNIFORM, conv_bound, 0, err, "patch_embed.proj.weight", 4, s->D, cfg->in_chans,
                       s->P, s->P)) ||
        !(s->peb = add(m, CLV_INIT_UNIFORM, conv_bound, 1, err, "patch_embed.proj.bias", 1, s->D, 0, 0, 0)))
        goto fail;
    snprintf(s->pe.name, sizeof s->pe.name, "patch_embed.proj");
    s->pe.out = s->D;
    s->pe.in = s->K;
    s->pe.weight = s->pew;
    s->pe.bias = s->peb;
    m->wlayers[m->n_wlayers++] = &s->pe;
    if (add_norm(m, &s->pnw, &s->pnb, "patch_embed.norm", s->D, err))
        goto fail;
    m->info.flops_per_image = 2.0 * (double)(s->Hp * s->Wp) * (double)(s->K * s->D);
    int64_t H = s->Hp, W = s->Wp, C = s->D;
    for (int i = 0; i < cfg->n_stages; i++) {
        stage *st = &s->stages[i];
        st->depth = cfg->depths[i];
        if (!(st->blocks = calloc((size_t)st->depth, sizeof *st->blocks))) {
            clv_errf(err, "%s: out of memory", name);
            goto fail;
        }
        for (int j = 0; j < st->depth; j++)
            if (add_block(m, &st->blocks[j], i, j, H, W, C, cfg->heads[i], cfg->window, err))
                goto fail;
        if (i + 1 < cfg->n_stages) {
            smerge *mg = &st->merge;
            char q[CLV_NAME_LEN];
            st->has_merge = 1;
            mg->H = H, mg->W = W, mg->C = C;
            snprintf(q, sizeof q, "layers.%d.downsample.reduction", i);
            if (add_linear(m, &mg->red, q, 2 * C, 4 * C, 0, err))
                goto fail;
            snprintf(q, sizeof q, "layers.%d.downsample.norm", i);
            if (add_norm(m, &mg->nw, &mg->nb, q, 4 * C, err))
                goto fail;
            m->info.flops_per_image += 2.0 * (double)(H / 2 * W / 2) * (double)(4 * C * 2 * C);
            H /= 2, W /= 2, C *= 2;
        }
    }
    s->Hl = H, s->Wl = W, s->Cl = C;
    if (add_norm(m, &s->nw, &s->nb, "norm", C, err))
        goto fail;
    clv_model_info *in = &m->info;
    snprintf(in->family, sizeof in->family, "swin");
    in->img_size = cfg->img_size;
    in->in_chans = cfg->in_chans;
    in->feat_dim = (int)C;
    const double np = (double)clv_params_count(&m->params, 0);
    char count[32], depths[64] = "", heads[64] = "";
    size_t dl = 0, hl = 0;
    for (int i = 0; i < cfg->n_stages; i++) {
        dl += (size_t)snprintf(depths + dl, sizeof depths - dl, "%s%d", i ? "-" : "", cfg->depths[i]);
        hl += (size_t)snprintf(heads + hl, sizeof heads - hl, "%s%d", i ? "-" : "", cfg->heads[i]);
    }
    if (np >= 1e6)
        snprintf(count, sizeof count, "%.1fM", np / 1e6);
    else
        snprintf(count, sizeof count, "%.0fK", np / 1e3);
    snprintf(in->summary, sizeof in->summary, "Swin dim %d depths %s heads %s window %d patch %d %dx%d, %s params",
             cfg->embed_dim, depths, heads, cfg->window, cfg->patch_size, cfg->img_size, cfg->img_size, count);
    return m;
fail:
    swin_free(m);
    return NULL;
}
