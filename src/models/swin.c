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
#include "clvit/kernels.h"
#include "clvit/kernels_swin.h"
#include "clvit/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { INIT_ZERO, INIT_ONE, INIT_TRUNC02, INIT_CONV };

#define LN_EPS 1e-5f

typedef struct sblock {
    int64_t H, W, C, heads, ws, shift, nW, N;
    clv_param *n1w, *n1b, *n2w, *n2b, *table;
    clv_wlayer qkv, proj, fc1, fc2;
    int widx0;        /* index of qkv in m->wlayers */
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
    int widx;
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
    unsigned char *init_kind;

    int64_t cap_B, B;
    float *fwd;
    int32_t *idx_mem;
    float *patches, *peout, *pmean, *prstd, *x0, *lnf, *meanf, *rstdf;
    float *bwd;
    int64_t bwd_cap_B;
    float *dres, *dtmp, *dwin, *dqkv, *dhid, *dhid2, *dS, *dpatches, *dpe;
    float *attn_scratch;
    float **zsave;
    int64_t *zsave_cap;
    float *wscratch;
    int64_t wscratch_n;
} swin;

/* ---- buffers ---- */

typedef struct bump {
    float *p;
    int64_t used; /* floats */
} bump;

static float *take(bump *b, int64_t n)
{
    n = (n + 15) & ~(int64_t)15;
    float *r = b->p ? b->p + b->used : NULL;
    b->used += n;
    return r;
}

/* Lays out (b.p NULL: counts) the training arena for batch B. */
static void fwd_layout(swin *s, int64_t B, bump *b)
{
    const int64_t L0 = s->Hp * s->Wp;
    s->patches = take(b, B * L0 * s->K);
    s->peout = take(b, B * L0 * s->D);
    s->pmean = take(b, B * L0);
    s->prstd = take(b, B * L0);
    s->x0 = take(b, B * L0 * s->D);
    float *x = s->x0;
    for (int i = 0; i < s->n_stages; i++) {
        stage *st = &s->stages[i];
        for (int j = 0; j < st->depth; j++) {
            sblock *k = &st->blocks[j];
            const int64_t R = B * k->H * k->W, C = k->C, Hm = 4 * C;
            k->xin = x;
            k->ln1 = take(b, R * C);
            k->mean1 = take(b, R);
            k->rstd1 = take(b, R);
            k->xw = take(b, R * C);
            k->qkv_out = take(b, R * 3 * C);
            k->att = take(b, (R / k->N) * k->heads * k->N * k->N);
            k->ao = take(b, R * C);
            k->po = take(b, R * C);
            k->xmid = take(b, R * C);
            k->ln2 = take(b, R * C);
            k->mean2 = take(b, R);
            k->rstd2 = take(b, R);
            k->h = take(b, R * Hm);
            k->g = take(b, R * Hm);
            k->xout = take(b, R * C);
            x = k->xout;
        }
        if (st->has_merge) {
            smerge *mg = &st->merge;
            const int64_t R4 = B * (mg->H / 2) * (mg->W / 2);
            mg->xin = x;
            mg->xg = take(b, R4 * 4 * mg->C);
            mg->ln = take(b, R4 * 4 * mg->C);
            mg->mean = take(b, R4);
            mg->rstd = take(b, R4);
            mg->out = take(b, R4 * 2 * mg->C);
            x = mg->out;
        }
    }
    s->lnf = take(b, B * s->Hl * s->Wl * s->Cl);
    s->meanf = take(b, B * s->Hl * s->Wl);
    s->rstdf = take(b, B * s->Hl * s->Wl);
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

static int ensure_fwd(clv_model *m, int64_t B, clv_err *err)
{
    swin *s = m->impl;
    if (B <= s->cap_B)
        return 0;
    clv_free(s->fwd);
    free(s->idx_mem);
    s->fwd = NULL;
    s->idx_mem = NULL;
    s->cap_B = 0;
    bump b = {0};
    fwd_layout(s, B, &b);
    int64_t nidx = 0;
    for (int i = 0; i < s->n_stages; i++) {
        const stage *st = &s->stages[i];
        nidx += (int64_t)st->depth * B * st->blocks[0].H * st->blocks[0].W;
        if (st->has_merge)
            nidx += B * st->merge.H * st->merge.W;
    }
    size_t n;
    if (clv_mul_overflow((size_t)b.used, sizeof(float), &n) || !(s->fwd = clv_alloc_array((size_t)b.used, sizeof(float))) ||
        !(s->idx_mem = malloc((size_t)nidx * sizeof(int32_t)))) {
        clv_free(s->fwd);
        s->fwd = NULL;
        return clv_errf(err, "%s: out of memory for the activations of batch %lld (%.0f MiB)", m->info.name,
                        (long long)B, (double)b.used * 4.0 / 1048576.0);
    }
    b = (bump){.p = s->fwd};
    fwd_layout(s, B, &b);
    int32_t *ip = s->idx_mem;
    for (int i = 0; i < s->n_stages; i++) {
        stage *st = &s->stages[i];
        for (int j = 0; j < st->depth; j++) {
            sblock *k = &st->blocks[j];
            k->win = ip;
            clv_swin_window_index(k->win, B, k->H, k->W, k->ws, k->shift);
            ip += B * k->H * k->W;
        }
        if (st->has_merge) {
            st->merge.idx = ip;
            clv_swin_merge_index(ip, B, st->merge.H, st->merge.W);
            ip += B * st->merge.H * st->merge.W;
        }
    }
    s->cap_B = B;
    return 0;
}

static int ensure_bwd(clv_model *m, clv_err *err)
{
    swin *s = m->impl;
    if (s->bwd_cap_B >= s->cap_B)
        return 0;
    clv_free(s->bwd);
    s->bwd_cap_B = 0;
    const int64_t B = s->cap_B, tok = B * widest(s, 1);
    int64_t att = 0;
    for (int i = 0; i < s->n_stages; i++) {
        const sblock *k = &s->stages[i].blocks[0];
        const int64_t a = B * k->H * k->W * k->heads * k->N;
        if (a > att)
            att = a;
    }
    const int64_t L0 = B * s->Hp * s->Wp;
    bump b = {0};
    for (int pass = 0; pass < 2; pass++) {
        s->dres = take(&b, tok);
        s->dtmp = take(&b, tok);
        s->dwin = take(&b, 2 * tok); /* also the merge's 4C-wide rows */
        s->dqkv = take(&b, 3 * tok);
        s->dhid = take(&b, 4 * tok);
        s->dhid2 = take(&b, 4 * tok);
        s->dS = take(&b, att);
        s->dpatches = take(&b, L0 * s->K);
        s->dpe = take(&b, L0 * s->D);
        if (pass == 0) {
            if (!(s->bwd = clv_alloc_array((size_t)b.used, sizeof(float))))
                return clv_errf(err, "%s: out of memory for the gradients of batch %lld", m->info.name,
                                (long long)B);
            b = (bump){.p = s->bwd};
        }
    }
    s->bwd_cap_B = B;
    return 0;
}

static int zsave_for(clv_model *m, int idx, int64_t rows, float **z, clv_err *err)
{
    swin *s = m->impl;
    const clv_wlayer *l = m->wlayers[idx];
    *z = NULL;
    if (!m->training || !clv_wlayer_scale(l))
        return 0;
    if (s->zsave_cap[idx] < rows) {
        clv_free(s->zsave[idx]);
        s->zsave_cap[idx] = 0;
        size_t n;
        if (clv_mul_overflow((size_t)rows, (size_t)l->out, &n) || !(s->zsave[idx] = clv_alloc_array(n, sizeof(float))))
            return clv_errf(err, "%s: out of memory for the scaled outputs of %s", m->info.name, l->name);
        s->zsave_cap[idx] = rows;
    }
    *z = s->zsave[idx];
    return 0;
}

/* ---- forward ---- */

static void add_inplace(float *y, const float *a, int64_t n)
{
#pragma omp parallel for if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++)
        y[i] += a[i];
}

static int block_forward(clv_model *m, sblock *k, int64_t B, clv_err *err)
{
    const int64_t R = B * k->H * k->W, C = k->C;
    float *z;
    clv_layernorm_forward(k->ln1, k->mean1, k->rstd1, k->xin, k->n1w->data, k->n1b->data, R, C, LN_EPS);
    clv_rows_gather(k->xw, k->ln1, k->win, R, C);
    if (zsave_for(m, k->widx0, R, &z, err))
        return -1;
    clv_wlayer_forward(&k->qkv, k->qkv_out, z, k->xw, R);
    clv_window_bias_forward(k->bias, k->table->data, k->relidx, k->N, k->heads);
    clv_window_attention_forward(k->ao, k->att, k->qkv_out, k->bias, k->mask, k->nW, R / k->N, k->N, C, k->heads);
    if (zsave_for(m, k->widx0 + 1, R, &z, err))
        return -1;
    clv_wlayer_forward(&k->proj, k->po, z, k->ao, R);
    /* window reverse and roll back: the scatter by the same index */
    memcpy(k->xmid, k->xin, (size_t)(R * C) * sizeof(float));
    clv_rows_scatter_add(k->xmid, k->po, k->win, R, C);
    clv_layernorm_forward(k->ln2, k->mean2, k->rstd2, k->xmid, k->n2w->data, k->n2b->data, R, C, LN_EPS);
    if (zsave_for(m, k->widx0 + 2, R, &z, err))
        return -1;
    clv_wlayer_forward(&k->fc1, k->h, z, k->ln2, R);
    clv_gelu_forward(k->g, k->h, R * 4 * C);
    if (zsave_for(m, k->widx0 + 3, R, &z, err))
        return -1;
    clv_wlayer_forward(&k->fc2, k->xout, z, k->g, R);
    add_inplace(k->xout, k->xmid, R * C);
    return 0;
}

static int merge_forward(clv_model *m, smerge *mg, int64_t B, clv_err *err)
{
    const int64_t R4 = B * (mg->H / 2) * (mg->W / 2), C4 = 4 * mg->C;
    float *z;
    clv_rows_gather(mg->xg, mg->xin, mg->idx, 4 * R4, mg->C);
    clv_layernorm_forward(mg->ln, mg->mean, mg->rstd, mg->xg, mg->nw->data, mg->nb->data, R4, C4, LN_EPS);
    if (zsave_for(m, mg->widx, R4, &z, err))
        return -1;
    clv_wlayer_forward(&mg->red, mg->out, z, mg->ln, R4);
    return 0;
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
    float *z;
    clv_patchify(s->patches, x, B, s->cfg.in_chans, img, img, s->P);
    if (zsave_for(m, 0, L0, &z, err))
        return -1;
    clv_wlayer_forward(&s->pe, s->peout, z, s->patches, L0);
    clv_layernorm_forward(s->x0, s->pmean, s->prstd, s->peout, s->pnw->data, s->pnb->data, L0, s->D, LN_EPS);
    const float *last = s->x0;
    for (int i = 0; i < s->n_stages; i++) {
        stage *st = &s->stages[i];
        for (int j = 0; j < st->depth; j++) {
            if (block_forward(m, &st->blocks[j], B, err))
                return -1;
            last = st->blocks[j].xout;
        }
        if (st->has_merge) {
            if (merge_forward(m, &st->merge, B, err))
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

static int prepare_scaled(clv_model *m, int64_t B, clv_err *err)
{
    swin *s = m->impl;
    int64_t need = 0;
    for (int i = 0; i < m->n_wlayers; i++) {
        const clv_wlayer *l = m->wlayers[i];
        if (!clv_wlayer_scale(l))
            continue;
        if (!s->zsave[i])
            return clv_errf(err, "%s: %s gained an output scale between forward and backward", m->info.name,
                            l->name);
        const int64_t n = clv_wlayer_scratch_floats(l, s->zsave_cap[i]);
        if (n > need)
            need = n;
    }
    if (need > s->wscratch_n) {
        clv_free(s->wscratch);
        s->wscratch_n = 0;
        if (!(s->wscratch = clv_alloc_array((size_t)need, sizeof(float))))
            return clv_errf(err, "%s: out of memory for the adapter scratch", m->info.name);
        s->wscratch_n = need;
    }
    return 0;
}

/* dres: gradient of the block's output on entry, of its input on return. */
static void block_backward(clv_model *m, sblock *k, int64_t B)
{
    swin *s = m->impl;
    const int64_t R = B * k->H * k->W, C = k->C, Hm = 4 * C;
    float *ws = s->wscratch;
    /* MLP branch */
    zero(s->dhid, R * Hm);
    clv_wlayer_backward(&k->fc2, s->dhid, s->dres, k->g, s->zsave[k->widx0 + 3], R, ws);
    zero(s->dhid2, R * Hm);
    clv_gelu_backward(s->dhid2, s->dhid, k->h, R * Hm);
    zero(s->dtmp, R * C);
    clv_wlayer_backward(&k->fc1, s->dtmp, s->dhid2, k->ln2, s->zsave[k->widx0 + 2], R, ws);
    clv_layernorm_backward(s->dres, grad_of(k->n2w), grad_of(k->n2b), s->dtmp, k->xmid, k->n2w->data, k->mean2,
                           k->rstd2, R, C);
    /* attention branch: xmid = xin + scatter(po) */
    float *dpo = s->dwin, *dao = s->dwin + R * C;
    clv_rows_gather(dpo, s->dres, k->win, R, C);
    zero(dao, R * C);
    clv_wlayer_backward(&k->proj, dao, dpo, k->ao, s->zsave[k->widx0 + 1], R, ws);
    zero(s->dqkv, R * 3 * C);
    const int bias_trains = k->table->trainable;
    clv_window_attention_backward(s->dqkv, bias_trains ? s->dS : NULL, dao, k->qkv_out, k->att, R / k->N, k->N, C,
                                  k->heads, s->attn_scratch);
    if (bias_trains)
        clv_window_bias_backward(k->table->grad, s->dS, k->relidx, R / k->N, k->N, k->heads);
    float *dxw = s->dwin;
    zero(dxw, R * C);
    clv_wlayer_backward(&k->qkv, dxw, s->dqkv, k->xw, s->zsave[k->widx0], R, ws);
    zero(s->dtmp, R * C);
    clv_rows_scatter_add(s->dtmp, dxw, k->win, R, C);
    clv_layernorm_backward(s->dres, grad_of(k->n1w), grad_of(k->n1b), s->dtmp, k->xin, k->n1w->data, k->mean1,
                           k->rstd1, R, C);
}

/* dres: gradient of the merge's output on entry, of its input on return. */
static void merge_backward(clv_model *m, smerge *mg, int64_t B)
{
    swin *s = m->impl;
    const int64_t R4 = B * (mg->H / 2) * (mg->W / 2), C4 = 4 * mg->C;
    float *dln = s->dwin, *dxg = s->dqkv;
    zero(dln, R4 * C4);
    clv_wlayer_backward(&mg->red, dln, s->dres, mg->ln, s->zsave[mg->widx], R4, s->wscratch);
    zero(dxg, R4 * C4);
    clv_layernorm_backward(dxg, grad_of(mg->nw), grad_of(mg->nb), dln, mg->xg, mg->nw->data, mg->mean, mg->rstd, R4,
                           C4);
    zero(s->dres, 4 * R4 * mg->C);
    clv_rows_scatter_add(s->dres, dxg, mg->idx, 4 * R4, mg->C);
}

static int swin_backward(clv_model *m, const float *dfeats, float *dx, clv_err *err)
{
    swin *s = m->impl;
    const int64_t B = s->B;
    if (B == 0)
        return clv_errf(err, "%s: backward without a successful training forward (training = 1)", m->info.name);
    if (ensure_bwd(m, err) || prepare_scaled(m, B, err))
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
        if (st->has_merge)
            merge_backward(m, &st->merge, B);
        for (int j = st->depth - 1; j >= 0; j--)
            block_backward(m, &st->blocks[j], B);
    }
    /* patch embedding: norm, projection */
    const int64_t L0 = B * s->Hp * s->Wp, img = s->cfg.img_size;
    zero(s->dpe, L0 * s->D);
    clv_layernorm_backward(s->dpe, grad_of(s->pnw), grad_of(s->pnb), s->dres, s->peout, s->pnw->data, s->pmean,
                           s->prstd, L0, s->D);
    if (dx)
        zero(s->dpatches, L0 * s->K);
    clv_wlayer_backward(&s->pe, dx ? s->dpatches : NULL, s->dpe, s->patches, s->zsave[0], L0, s->wscratch);
    if (dx)
        clv_patchify_backward(dx, s->dpatches, B, s->cfg.in_chans, img, img, s->P);
    return 0;
}

/* ---- init, free ---- */

static void swin_init(clv_model *m, uint64_t seed)
{
    swin *s = m->impl;
    /* the patch projection keeps PyTorch's conv default (timm initializes only Linear and LayerNorm):
     * uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias */
    const float conv_bound = 1.0f / sqrtf((float)s->K);
    for (int k = 0; k < m->params.count; k++) {
        clv_param *p = m->params.items[k];
        const uint64_t key = clv_rng_key(seed, CLV_STREAM_INIT, (uint64_t)k, 0);
        for (int64_t j = 0; j < p->numel; j++) {
            float v = 0.0f;
            switch (s->init_kind[k]) {
            case INIT_ZERO: v = 0.0f; break;
            case INIT_ONE: v = 1.0f; break;
            case INIT_TRUNC02: v = clv_rng_trunc_normal(key, (uint64_t)j, 0.02f); break;
            case INIT_CONV: v = conv_bound * (2.0f * clv_rng_uniform(key, (uint64_t)j) - 1.0f); break;
            }
            p->data[j] = v;
        }
    }
    for (int i = 0; i < m->n_wlayers; i++)
        if (m->wlayers[i]->adapter && m->wlayers[i]->adapter->ops->invalidate)
            m->wlayers[i]->adapter->ops->invalidate(m->wlayers[i]->adapter);
}

static void swin_free(clv_model *m)
{
    swin *s = m->impl;
    if (s) {
        clv_free(s->fwd);
        free(s->idx_mem);
        clv_free(s->bwd);
        clv_free(s->wscratch);
        clv_free(s->attn_scratch);
        if (s->zsave)
            for (int i = 0; i < m->n_wlayers; i++)
                clv_free(s->zsave[i]);
        free(s->zsave);
        free(s->zsave_cap);
        for (int i = 0; s->stages && i < s->n_stages; i++) {
            for (int j = 0; s->stages[i].blocks && j < s->stages[i].depth; j++) {
                free(s->stages[i].blocks[j].relidx);
                free(s->stages[i].blocks[j].mask);
                free(s->stages[i].blocks[j].bias);
            }
            free(s->stages[i].blocks);
        }
        free(s->stages);
        free(s->init_kind);
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

static clv_param *add(clv_model *m, int kind, int no_decay, clv_err *err, const char *name, int ndim, int64_t d0,
                      int64_t d1, int64_t d2, int64_t d3)
{
    swin *s = m->impl;
    const int64_t shape[4] = {d0, d1, d2, d3};
    clv_param *p = clv_params_add(&m->params, name, ndim, shape, err);
    if (!p)
        return NULL;
    unsigned char *kinds = realloc(s->init_kind, (size_t)m->params.count);
    if (!kinds) {
        clv_errf(err, "out of memory");
        return NULL;
    }
    s->init_kind = kinds;
    kinds[m->params.count - 1] = (unsigned char)kind;
    p->no_decay = no_decay;
    return p;
}

static int add_linear(clv_model *m, clv_wlayer *l, const char *prefix, int64_t out, int64_t in, int bias, clv_err *err)
{
    char name[CLV_NAME_LEN];
    snprintf(l->name, sizeof l->name, "%s", prefix);
    l->out = out;
    l->in = in;
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (!(l->weight = add(m, INIT_TRUNC02, 0, err, name, 2, out, in, 0, 0)))
        return -1;
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        if (!(l->bias = add(m, INIT_ZERO, 1, err, name, 1, out, 0, 0, 0)))
            return -1;
    }
    m->wlayers[m->n_wlayers++] = l;
    return 0;
}

static int add_norm(clv_model *m, clv_param **w, clv_param **b, const char *prefix, int64_t D, clv_err *err)
{
    char name[CLV_NAME_LEN];
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (!(*w = add(m, INIT_ONE, 1, err, name, 1, D, 0, 0, 0)))
        return -1;
    snprintf(name, sizeof name, "%s.bias", prefix);
    if (!(*b = add(m, INIT_ZERO, 1, err, name, 1, D, 0, 0, 0)))
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
    if (!(k->table = add(m, INIT_TRUNC02, 1, err, q, 2, tw * tw, heads, 0, 0)))
        return -1;
    k->widx0 = m->n_wlayers;
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
    s->zsave = calloc((size_t)n_wl, sizeof *s->zsave);
    s->zsave_cap = calloc((size_t)n_wl, sizeof *s->zsave_cap);
    if (!s->stages || !m->wlayers || !s->zsave || !s->zsave_cap) {
        clv_errf(err, "%s: out of memory", name);
        goto fail;
    }
    /* registration order = timm's state_dict order */
    if (!(s->pew = add(m, INIT_CONV, 0, err, "patch_embed.proj.weight", 4, s->D, cfg->in_chans, s->P, s->P)) ||
        !(s->peb = add(m, INIT_CONV, 1, err, "patch_embed.proj.bias", 1, s->D, 0, 0, 0)))
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
            mg->widx = m->n_wlayers;
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
    {
        int64_t T = 1; /* the largest window: the attention backward's per-thread scratch */
        for (int i = 0; i < s->n_stages; i++)
            if (s->stages[i].blocks[0].N > T)
                T = s->stages[i].blocks[0].N;
        if (!(s->attn_scratch = clv_alloc_array((size_t)clv_attention_scratch_floats(1, T, 1, 1), sizeof(float)))) {
            clv_errf(err, "%s: out of memory", name);
            goto fail;
        }
    }

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
