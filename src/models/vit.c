/* Vision Transformer backbone with timm's semantics and tensor names
 * (timm.models.vision_transformer.VisionTransformer with its defaults: class
 * token, learned absolute position embedding added to every token, pre-norm
 * blocks, LayerNorm eps 1e-6, qkv bias, exact GELU, no dropout,
 * global_pool='token': the features are the final-normed class token).
 *
 * Owns the parameters, the adaptable weight layers (the patch embedding viewed
 * as D x (C P P) after clv_patchify, then qkv, proj, fc1, fc2 of every block,
 * in forward order) and all activation memory:
 *  - one forward arena holding what backward needs, sized for the largest
 *    batch seen;
 *  - one backward arena of gradient buffers, allocated by the first backward.
 * Weight layers run only through clv_wlayer_forward/backward, so adapters plug
 * in without this file knowing about them; the layers keep what their own
 * backward needs (qkv's and fc1's outputs stay in the arena for the backward
 * anyway, so they run with CLV_WL_TRAIN_KEEPS_Y). Adapters attached to the layers
 * belong to whoever attached them; the model does not free them. */
#include "clvit/arena.h"
#include "clvit/kernels.h"
#include "clvit/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct block {
    clv_param *n1w, *n1b, *n2w, *n2b;
    clv_wlayer qkv, proj, fc1, fc2;
} block;

/* What one block's forward saves for its backward (N = B T rows). The
 * norm outputs and the GELU output are not kept: they point into buffers
 * shared by all blocks and the backward recomputes them (from the saved
 * norm inputs and statistics, and from the fc1 output), which saves 6 of the
 * 16 N x D floats a block would otherwise hold. The attention keeps its
 * probabilities and recomputes its output (att V) instead. */
typedef struct block_acts {
    float *ln1, *mean1, *rstd1; /* norm1 output [N x D] (shared) and statistics [N] */
    float *qkv;                 /* [N x 3D] */
    float *att;                 /* softmax probabilities [B x H x T x T] (NULL in the class-row block) */
    float *attout;              /* heads concatenated [N x D] (shared, recomputed; kept by the class-row block) */
    float *xmid;                /* residual stream after the attention branch */
    float *ln2, *mean2, *rstd2;
    float *h, *g;               /* fc1 output (GELU input), GELU output [N x Hm] (shared) */
    float *xout;                /* residual stream after the MLP branch */
} block_acts;

typedef struct vit {
    clv_vit_config cfg;
    int64_t D, H, Hm, P, C, Np, T, K; /* K = C P P, the patch length */
    clv_param *cls, *pos, *pew, *peb, *nw, *nb;
    clv_wlayer pe;
    block *blocks;

    int64_t lay_B; /* the batch the layouts below carve for */
    int64_t cap_B; /* forward arena sized for this batch */
    int64_t B;     /* batch of the last successful training forward, 0 if none */
    clv_arena fwd;
    clv_arena inf; /* inference arena, when the training arena is too small to lend */
    int layout; /* which arena the activation pointers below describe: 0 none, 1 training, 2 inference */
    float *patches, *peout, *x0, *clsx, *meanf, *rstdf, *attn_scratch;
    block_acts *acts;

    int64_t bwd_cap_B;
    clv_arena bwd;
    float *dres, *dattout, *dqkv, *dln, *dg, *dcls, *dpe, *dpatches;

    clv_arena gprime;   /* GELU'(h) when fc1's backward reads h (else written over h) */
    clv_arena wscratch; /* the weight layers' backward scratch */
} vit;

/* ---- arenas (clvit/arena.h): layouts for the batch v->lay_B ---- */

static void fwd_layout(void *ctx, clv_carver *c)
{
    vit *v = ctx;
    const int64_t B = v->lay_B;
    const int64_t D = v->D, T = v->T, Hm = v->Hm;
    v->patches = clv_carve_floats(c, B, v->Np, v->K);
    v->peout = clv_carve_floats(c, B, v->Np, D);
    v->x0 = clv_carve_floats(c, B, T, D);
    v->clsx = clv_carve_floats(c, B, D, 1);
    v->meanf = clv_carve_floats(c, B, 1, 1);
    v->rstdf = clv_carve_floats(c, B, 1, 1);
    v->attn_scratch = clv_carve_floats(c, clv_attention_scratch_floats(B, T, D, v->H), 1, 1);
    /* g (GELU's output, recomputed per block by the backward) also holds the backward's dqkv: a block's
     * g is dead once fc2's weight gradient is formed, before its attention backward writes dqkv, and
     * dqkv is spent (qkv's backward) before the block below recomputes g. */
    float *ln = clv_carve_floats(c, B, T, D), *g = clv_carve_floats(c, B, T, Hm > 3 * D ? Hm : 3 * D);
    float *attout = clv_carve_floats(c, B, T, D);
    v->dqkv = g;
    for (int i = 0; i < v->cfg.depth; i++) {
        block_acts *a = &v->acts[i];
        /* the last block runs on the class rows after its keys and values (see vit_forward) */
        const int64_t Tr = i + 1 < v->cfg.depth ? T : 1;
        a->ln1 = ln;
        a->mean1 = clv_carve_floats(c, B, T, 1);
        a->rstd1 = clv_carve_floats(c, B, T, 1);
        a->qkv = clv_carve_floats(c, B, T, 3 * D);
        /* a block keeps its attention probabilities, not their product with V: about the same size, and
         * the backward's product again (proj's weight gradient) costs less than the probabilities again.
         * The last block (class rows) keeps its small output. */
        a->att = Tr == T ? clv_carve_floats(c, B * v->H, T, T) : NULL;
        a->attout = Tr == T ? attout : clv_carve_floats(c, B, Tr, D);
        a->xmid = clv_carve_floats(c, B, Tr, D);
        a->ln2 = ln;
        a->mean2 = clv_carve_floats(c, B, Tr, 1);
        a->rstd2 = clv_carve_floats(c, B, Tr, 1);
        a->h = clv_carve_floats(c, B, Tr, Hm);
        a->g = g;
        /* the last block's output feeds only the final norm of the class rows
         * (copied out): no backward reads it, so it may overwrite norm2's output */
        a->xout = i + 1 < v->cfg.depth ? clv_carve_floats(c, B, T, D) : ln;
    }
}

/* Inference keeps nothing for a backward: every block writes the same
 * buffers, and the residual stream alternates between two. */
static void inf_layout(void *ctx, clv_carver *c)
{
    vit *v = ctx;
    const int64_t B = v->lay_B;
    const int64_t D = v->D, T = v->T, Hm = v->Hm;
    v->patches = clv_carve_floats(c, B, v->Np, v->K);
    v->peout = clv_carve_floats(c, B, v->Np, D);
    float *xa = clv_carve_floats(c, B, T, D), *xb = clv_carve_floats(c, B, T, D);
    v->x0 = xb;
    v->clsx = clv_carve_floats(c, B, D, 1);
    v->meanf = clv_carve_floats(c, B, 1, 1);
    v->rstdf = clv_carve_floats(c, B, 1, 1);
    v->attn_scratch = clv_carve_floats(c, clv_attention_scratch_floats(B, T, D, v->H), 1, 1);
    block_acts shared = {
        .ln1 = clv_carve_floats(c, B, T, D),
        .mean1 = clv_carve_floats(c, B, T, 1),
        .rstd1 = clv_carve_floats(c, B, T, 1),
        .qkv = clv_carve_floats(c, B, T, 3 * D),
        .att = clv_carve_floats(c, B * v->H, T, T),
        .attout = clv_carve_floats(c, B, T, D),
        .xmid = xa,
        .h = clv_carve_floats(c, B, T, Hm),
        .g = clv_carve_floats(c, B, T, Hm),
        .xout = xb,
    };
    shared.ln2 = shared.ln1;
    shared.mean2 = shared.mean1;
    shared.rstd2 = shared.rstd1;
    for (int i = 0; i < v->cfg.depth; i++)
        v->acts[i] = shared;
}

static void bwd_layout(void *ctx, clv_carver *c)
{
    vit *v = ctx;
    const int64_t B = v->lay_B;
    const int64_t D = v->D, T = v->T;
    v->dres = clv_carve_floats(c, B, T, D);
    v->dattout = clv_carve_floats(c, B, T, D);
    v->dln = clv_carve_floats(c, B, T, D);
    v->dg = clv_carve_floats(c, B, T, v->Hm);
    v->dcls = clv_carve_floats(c, B, D, 1);
    v->dpe = clv_carve_floats(c, B, v->Np, D);
    v->dpatches = clv_carve_floats(c, B, v->Np, v->K);
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
    const int64_t D = v->D, T = v->T, Np = v->Np, N = B * T, img = v->cfg.img_size;
    const float eps = v->cfg.ln_eps;
    const clv_wl_mode mode = m->training ? CLV_WL_TRAIN : CLV_WL_INFER;
    /* qkv's output stays for the attention backward, h (fc1's) for GELU's */
    const clv_wl_mode mode_kept = m->training ? CLV_WL_TRAIN_KEEPS_Y : CLV_WL_INFER;

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
     * keys and values the last block runs on the B class rows alone (compact, row b = image b). */
    const float *xin = v->x0;
    for (int i = 0; i < v->cfg.depth; i++) {
        block *bk = &v->blocks[i];
        block_acts *a = &v->acts[i];
        const int last = i + 1 == v->cfg.depth;
        const int64_t R = last ? B : N; /* rows after the attention */
        clv_layernorm_forward(a->ln1, a->mean1, a->rstd1, xin, bk->n1w->data, bk->n1b->data, N, D, eps);
        if (clv_wlayer_forward(&bk->qkv, a->qkv, a->ln1, N, mode_kept, err))
            return -1;
        if (last)
            clv_attention_cls_forward(a->attout, a->qkv, B, T, D, v->H);
        else
            clv_attention_forward(a->attout, a->att, a->qkv, B, T, D, v->H, v->attn_scratch);
        /* residual adds and GELU ride along in the pass that adds each layer's bias */
        if (clv_wlayer_forward_fused(&bk->proj, a->xmid, a->attout, R, last ? NULL : xin, NULL, mode, err))
            return -1;
        if (last) /* the class rows of the input are strided */
            for (int64_t b = 0; b < B; b++)
                add_inplace(a->xmid + b * D, xin + b * T * D, D);

        clv_layernorm_forward(a->ln2, a->mean2, a->rstd2, a->xmid, bk->n2w->data, bk->n2b->data, R, D, eps);
        if (clv_wlayer_forward_fused(&bk->fc1, a->h, a->ln2, R, NULL, a->g, mode_kept, err) ||
            clv_wlayer_forward_fused(&bk->fc2, a->xout, a->g, R, a->xmid, NULL, mode, err))
            return -1;
        xin = a->xout;
    }

    /* LayerNorm is per token and only the class token is pooled: norm just those rows. */
    const int64_t stride = v->cfg.depth ? D : T * D; /* the last block's output is compact */
    for (int64_t b = 0; b < B; b++)
        memcpy(v->clsx + b * D, xin + b * stride, (size_t)D * sizeof(float));
    clv_layernorm_forward(feats, v->meanf, v->rstdf, v->clsx, v->nw->data, v->nb->data, B, D, eps);
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

static int ln_trains(const clv_param *w, const clv_param *b) { return w->trainable || b->trainable; }

static int lowest_trainable_unit(const vit *v)
{
    if (v->cls->trainable || v->pos->trainable || wl_trains(&v->pe))
        return 0;
    for (int i = 0; i < v->cfg.depth; i++) {
        const block *bk = &v->blocks[i];
        const int u = 1 + 6 * i;
        if (ln_trains(bk->n1w, bk->n1b))
            return u;
        if (wl_trains(&bk->qkv))
            return u + 1;
        if (wl_trains(&bk->proj))
            return u + 2;
        if (ln_trains(bk->n2w, bk->n2b))
            return u + 3;
        if (wl_trains(&bk->fc1))
            return u + 4;
        if (wl_trains(&bk->fc2))
            return u + 5;
    }
    if (ln_trains(v->nw, v->nb))
        return 1 + 6 * v->cfg.depth;
    return 2 + 6 * v->cfg.depth;
}

static float *grad_of(clv_param *p) { return p->trainable ? p->grad : NULL; }

static void zero(float *p, int64_t n) { memset(p, 0, (size_t)n * sizeof(float)); }

/* the residual stream's gradient over every token from the class rows' (compact): zero elsewhere */
static void expand_cls_rows(float *dres, const float *dcls, int64_t B, int64_t T, int64_t D)
{
    zero(dres, B * T * D);
    for (int64_t b = 0; b < B; b++)
        memcpy(dres + b * T * D, dcls + b * D, (size_t)D * sizeof(float));
}

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
    const int64_t D = v->D, T = v->T, Np = v->Np, N = B * T, Hm = v->Hm, img = v->cfg.img_size;
    clv_arena *ws = &v->wscratch;
    int fc1_reads_h = 0;
    for (int i = 0; i < v->cfg.depth; i++)
        fc1_reads_h |= clv_wlayer_reads_output(&v->blocks[i].fc1);
    if (fc1_reads_h &&
        clv_arena_reserve(&v->gprime, (size_t)(v->cap_B * T * Hm) * sizeof(float), "GELU's derivative", err))
        return clv_err_prefix(err, "%s", m->info.name);

    int need = lowest < ufinal;
    if (need)
        zero(v->dcls, B * D);
    clv_layernorm_backward(need ? v->dcls : NULL, grad_of(v->nw), grad_of(v->nb), dfeats, v->clsx, v->nw->data,
                           v->meanf, v->rstdf, B, D);
    if (!need)
        return 0;
    if (v->cfg.depth == 0)
        expand_cls_rows(v->dres, v->dcls, B, T, D);

    /* dres holds the gradient of the residual stream; each branch adds to it. The last block works on
     * the compact class rows (dcls) down to its attention, where the stream widens to every token. */
    for (int i = v->cfg.depth - 1; i >= 0; i--) {
        block *bk = &v->blocks[i];
        block_acts *a = &v->acts[i];
        const float *xin = i ? v->acts[i - 1].xout : v->x0;
        const int u = 1 + 6 * i, last = i + 1 == v->cfg.depth;
        const int64_t R = last ? B : N;
        float *dr = last ? v->dcls : v->dres;

        /* the input gradients below are written (_into), not accumulated: no zeroing passes */
        need = lowest < u + 5;
        /* GELU's output again (the forward kept only h), and GELU'(h) over h (or, when fc1's
         * backward reads h, into a buffer of its own): one erf for both */
        const int fc1_y = clv_wlayer_reads_output(&bk->fc1);
        float *gp = fc1_y ? v->gprime.mem : a->h;
        clv_gelu_forward_grad(a->g, gp, a->h, R * Hm);
        if (clv_wlayer_backward_into(&bk->fc2, need ? v->dg : NULL, dr, a->g, NULL, R, ws, err))
            return -1;
        if (!need)
            return 0;
        clv_mul_forward(gp, v->dg, gp, R * Hm); /* dh = dg GELU'(h), over GELU'(h) */
        const float *dh = gp;
        need = lowest < u + 4;
        /* norm2's output again, bit for bit (same input, same per-row arithmetic) */
        clv_layernorm_forward(a->ln2, a->mean2, a->rstd2, a->xmid, bk->n2w->data, bk->n2b->data, R, D, v->cfg.ln_eps);
        if (clv_wlayer_backward_into(&bk->fc1, need ? v->dln : NULL, dh, a->ln2, a->h, R, ws, err))
            return -1;
        if (!need)
            return 0;
        need = lowest < u + 3;
        clv_layernorm_backward(need ? dr : NULL, grad_of(bk->n2w), grad_of(bk->n2b), v->dln, a->xmid,
                               bk->n2w->data, a->mean2, a->rstd2, R, D);
        if (!need)
            return 0;

        need = lowest < u + 2;
        if (!last) /* proj's input again (the shared buffer holds the lowest block's) */
            clv_attention_output(a->attout, a->att, a->qkv, B, T, D, v->H);
        if (clv_wlayer_backward_into(&bk->proj, need ? v->dattout : NULL, dr, a->attout, NULL, R, ws, err))
            return -1;
        if (!need)
            return 0;
        if (last) {
            clv_attention_cls_backward(v->dqkv, v->dattout, a->qkv, B, T, D, v->H);
            expand_cls_rows(v->dres, v->dcls, B, T, D);
        } else {
            clv_attention_backward(v->dqkv, v->dattout, a->qkv, a->att, B, T, D, v->H, v->attn_scratch);
        }
        need = lowest < u + 1;
        clv_layernorm_forward(a->ln1, a->mean1, a->rstd1, xin, bk->n1w->data, bk->n1b->data, N, D, v->cfg.ln_eps);
        if (clv_wlayer_backward_into(&bk->qkv, need ? v->dln : NULL, v->dqkv, a->ln1, a->qkv, N, ws, err))
            return -1;
        if (!need)
            return 0;
        need = lowest < u;
        clv_layernorm_backward(need ? v->dres : NULL, grad_of(bk->n1w), grad_of(bk->n1b), v->dln, xin,
                               bk->n1w->data, a->mean1, a->rstd1, N, D);
        if (!need)
            return 0;
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
    if (clv_wlayer_backward(&v->pe, dx ? v->dpatches : NULL, v->dpe, v->patches, NULL, B * Np, ws, err))
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
        clv_arena_free(&v->wscratch);
        clv_arena_free(&v->gprime);
        for (int i = 0; m->wlayers && i < m->n_wlayers; i++)
            if (m->wlayers[i])
                clv_wlayer_release(m->wlayers[i]);
        free(v->acts);
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

static clv_param *add(clv_model *m, clv_init_kind kind, float scale, int no_decay, clv_err *err, const char *name,
                      int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    return clv_params_add_init(&m->params, name, kind, scale, no_decay, ndim, d0, d1, d2, d3, err);
}

/* A Linear "prefix.weight" [out x in] + "prefix.bias" [out] as a weight layer. */
static int add_linear(clv_model *m, clv_wlayer *l, const char *prefix, int64_t out, int64_t in, clv_err *err)
{
    char name[CLV_NAME_LEN];
    snprintf(l->name, sizeof l->name, "%s", prefix);
    l->out = out;
    l->in = in;
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (!(l->weight = add(m, CLV_INIT_TRUNC_NORMAL, 0.02f, 0, err, name, 2, out, in, 0, 0)))
        return -1;
    snprintf(name, sizeof name, "%s.bias", prefix);
    if (!(l->bias = add(m, CLV_INIT_ZERO, 0.0f, 1, err, name, 1, out, 0, 0, 0)))
        return -1;
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

    m->n_wlayers = 1 + 4 * depth;
    v->blocks = calloc((size_t)depth + 1, sizeof *v->blocks);
    v->acts = calloc((size_t)depth + 1, sizeof *v->acts);
    m->wlayers = calloc((size_t)m->n_wlayers, sizeof *m->wlayers);
    if (!v->blocks || !v->acts || !m->wlayers) {
        clv_errf(err, "%s: out of memory", name);
        goto fail;
    }

    /* PyTorch's Conv2d default (kaiming_uniform a=sqrt(5)) is U(+-1/sqrt(fan_in)) for weight and bias. */
    const float conv_bound = 1.0f / sqrtf((float)v->K);
    /* registration order = timm's state_dict order */
    if (!(v->cls = add(m, CLV_INIT_NORMAL, 1e-6f, 1, err, "cls_token", 3, 1, 1, D, 0)) ||
        !(v->pos = add(m, CLV_INIT_TRUNC_NORMAL, 0.02f, 1, err, "pos_embed", 3, 1, v->T, D, 0)) ||
        !(v->pew = add(m, CLV_INIT_UNIFORM, conv_bound, 0, err, "patch_embed.proj.weight", 4, D, v->C, v->P, v->P)) ||
        !(v->peb = add(m, CLV_INIT_UNIFORM, conv_bound, 1, err, "patch_embed.proj.bias", 1, D, 0, 0, 0)))
        goto fail;
    snprintf(v->pe.name, sizeof v->pe.name, "patch_embed.proj");
    v->pe.out = D;
    v->pe.in = v->K;
    v->pe.weight = v->pew;
    v->pe.bias = v->peb;
    m->wlayers[0] = &v->pe;

    for (int i = 0; i < depth; i++) {
        block *bk = &v->blocks[i];
        char p[CLV_NAME_LEN];
#define PFX(s) (snprintf(p, sizeof p, "blocks.%d.%s", i, s), p)
        if (add_norm(m, &bk->n1w, &bk->n1b, PFX("norm1"), D, err) ||
            add_linear(m, &bk->qkv, PFX("attn.qkv"), 3 * D, D, err) ||
            add_linear(m, &bk->proj, PFX("attn.proj"), D, D, err) ||
            add_norm(m, &bk->n2w, &bk->n2b, PFX("norm2"), D, err) ||
            add_linear(m, &bk->fc1, PFX("mlp.fc1"), v->Hm, D, err) ||
            add_linear(m, &bk->fc2, PFX("mlp.fc2"), D, v->Hm, err))
            goto fail;
#undef PFX
        m->wlayers[1 + 4 * i] = &bk->qkv;
        m->wlayers[2 + 4 * i] = &bk->proj;
        m->wlayers[3 + 4 * i] = &bk->fc1;
        m->wlayers[4 + 4 * i] = &bk->fc2;
    }
    if (add_norm(m, &v->nw, &v->nb, "norm", D, err))
        goto fail;
    fill_info(m);
    return m;

fail:
    vit_free(m);
    return NULL;
}
