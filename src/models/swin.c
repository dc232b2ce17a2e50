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
 * Tokens are rows (b, y, x). The blocks are clvit/transformer_block.h's with
 * the windowed attention core (which reads its windows through the roll and
 * partition index, so the token matrices stay in image order); this file owns
 * the patch embedding, the patch merges (row gathers by a per-image index),
 * the final norm and pooling, and the activation memory around them. Every
 * Linear (and the patch projection, a conv viewed as D x (C P P)) is a
 * clv_wlayer with an adapter slot, in forward order. */
#include "clvit/builder.h"
#include "clvit/kernels.h"
#include "clvit/kernels_cnn.h"
#include "clvit/kernels_swin.h"
#include "clvit/model.h"
#include "clvit/transformer_backbone.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LN_EPS 1e-5f

typedef struct smerge {
    int64_t H, W, C; /* input grid and channels */
    clv_norm norm;
    clv_wlayer red;
    int32_t *idx;     /* [H W]: one image's gather into 2x2 groups */
    const float *xin; /* the last block's output */
    float *xg, *ln, *mean, *rstd, *out; /* xg and ln shared (the backward gathers and norms again) */
} smerge;

typedef struct stage {
    int depth;
    clv_tblock *blocks;
    clv_tblock_acts *acts;
    int again; /* block 0 keeps only its output: the backward forms the rest again in block 1's buffers */
    int has_merge;
    smerge merge;
} stage;

typedef struct swin {
    clv_swin_config cfg;
    int64_t P, Hp, Wp, K, D;
    clv_tbackbone tb; /* patch embedding, arenas, the blocks' shared buffers */
    clv_norm pnorm, norm;
    stage *stages;
    int n_stages;
    int64_t Hl, Wl, Cl; /* last stage */

    float *patches, *peout, *pmean, *prstd, *x0, *lnf, *meanf, *rstdf;
    const float *last; /* the final norm's input */

    float *dres, *dpatches, *dpe;
} swin;

static const clv_model_ops swin_ops; /* at the end of the file */

/* ---- buffers (clvit/arena.h): layouts for the batch s->tb.mem.lay_B ---- */

static void embed_layout(swin *s, clv_carver *c)
{
    const int64_t B = s->tb.mem.lay_B, L0 = s->Hp * s->Wp;
    s->patches = clv_carve_floats(c, B, L0, s->K);
    s->peout = clv_carve_floats(c, B, L0, s->D);
    s->pmean = clv_carve_floats(c, B, L0, 1);
    s->prstd = clv_carve_floats(c, B, L0, 1);
}

/* a merge's gathered input (in GELU's shared output when xg_shared), its statistics (norm output
 * shared), and its output unless given. (A pointer given is NULL while the carver counts.) */
static void merge_layout(swin *s, smerge *mg, clv_carver *c, int xg_shared, float *out)
{
    const int64_t B = s->tb.mem.lay_B, L4 = (mg->H / 2) * (mg->W / 2);
    mg->xg = xg_shared ? s->tb.sh.g : clv_carve_floats(c, B, L4, 4 * mg->C);
    mg->ln = s->tb.sh.ln;
    mg->mean = clv_carve_floats(c, B, L4, 1);
    mg->rstd = clv_carve_floats(c, B, L4, 1);
    mg->out = out ? out : clv_carve_floats(c, B, L4, 2 * mg->C);
}

static void final_layout(swin *s, clv_carver *c)
{
    s->lnf = s->tb.sh.ln;
    s->meanf = clv_carve_floats(c, s->tb.mem.lay_B, s->Hl * s->Wl, 1);
    s->rstdf = clv_carve_floats(c, s->tb.mem.lay_B, s->Hl * s->Wl, 1);
}

/* Training: what the backward reads, per block and merge. */
static void fwd_layout(void *ctx, clv_carver *c)
{
    swin *s = ctx;
    embed_layout(s, c);
    const stage *first = &s->stages[0];
    s->x0 = first->again ? NULL : clv_carve_floats(c, s->tb.mem.lay_B, s->Hp * s->Wp, s->D);
    clv_tblock_carve_shared(c, &s->tb.sh, s->tb.blocks, s->tb.n_blocks, s->tb.mem.lay_B);
    for (int i = 0; i < s->n_stages; i++) {
        stage *st = &s->stages[i];
        for (int j = st->again; j < st->depth; j++)
            clv_tblock_carve_train(c, &st->acts[j], &st->blocks[j], &s->tb.sh, s->tb.mem.lay_B, 1);
        if (st->again)
            clv_tblock_carve_again(c, &st->acts[0], &st->blocks[0], &st->acts[1], s->tb.mem.lay_B);
        /* the first block's input when it is formed again: the stage's last output, which is written
         * after the first block has read its input, and spent (by the merge's or the final norm's
         * backward) before the backward forms that input again from the embedding */
        if (i == 0 && st->again)
            s->x0 = st->acts[st->depth - 1].xout;
        /* the gathered input goes where GELU's output goes (the blocks' is spent by then; B T 4 C
         * floats hold the B T C): the backward gathers it again */
        if (st->has_merge)
            merge_layout(s, &st->merge, c, 1, NULL);
    }
    final_layout(s, c);
}

/* Inference keeps nothing for a backward: every block writes the same buffers, the residual stream
 * alternates between two, and a merge writes its output over its input once it has gathered it. */
static void inf_layout(void *ctx, clv_carver *c)
{
    swin *s = ctx;
    embed_layout(s, c);
    clv_tblock_acts shared;
    clv_tblock_carve_infer(c, &shared, &s->tb.sh, s->tb.blocks, s->tb.n_blocks, s->tb.mem.lay_B);
    s->x0 = shared.xout;
    const smerge *first = NULL; /* the widest merge: the later ones fit in its buffers */
    for (int i = 0; i < s->n_stages; i++) {
        stage *st = &s->stages[i];
        for (int j = 0; j < st->depth; j++)
            st->acts[j] = shared;
        if (!st->has_merge)
            continue;
        smerge *mg = &st->merge;
        if (!first) {
            merge_layout(s, mg, c, 0, shared.xout);
            first = mg;
        } else {
            mg->xg = first->xg, mg->ln = first->ln, mg->mean = first->mean, mg->rstd = first->rstd;
            mg->out = shared.xout;
        }
    }
    final_layout(s, c);
}

static void bwd_layout(void *ctx, clv_carver *c)
{
    swin *s = ctx;
    const int64_t B = s->tb.mem.lay_B, L0 = s->Hp * s->Wp;
    s->dres = clv_carve_floats(c, B, L0, s->D); /* the first stage's tokens are the widest */
    clv_tblock_carve_grads(c, &s->tb.grads, &s->tb.sh, s->tb.blocks, s->tb.n_blocks, B);
    /* the patch embedding's gradients come after every block's: in the blocks' dg (the first
     * stage's B L0 4 D floats) when they fit there, each on a 64-byte boundary */
    const int64_t at = (B * L0 * s->D + 15) / 16 * 16;
    if (at + B * L0 * s->K <= B * L0 * s->stages[0].blocks[0].hidden) {
        s->dpe = s->tb.grads.dg;
        s->dpatches = s->tb.grads.dg ? s->tb.grads.dg + at : NULL;
    } else {
        s->dpatches = clv_carve_floats(c, B, L0, s->K);
        s->dpe = clv_carve_floats(c, B, L0, s->D);
    }
}

/* ---- forward ---- */

static int merge_forward(smerge *mg, const float *x, int64_t B, clv_wl_mode mode, clv_err *err)
{
    const int64_t L = mg->H * mg->W, R4 = B * L / 4, C4 = 4 * mg->C;
    mg->xin = x;
    for (int64_t b = 0; b < B; b++)
        clv_rows_gather(mg->xg + b * L * mg->C, x + b * L * mg->C, mg->idx, L, mg->C);
    clv_norm_forward(&mg->norm, mg->ln, mg->mean, mg->rstd, mg->xg, R4, C4);
    return clv_wlayer_forward(&mg->red, mg->out, mg->ln, R4, mode, err);
}

static int forward_batch(clv_model *m, const float *x, int64_t B, float *feats, clv_err *err)
{
    swin *s = m->impl;
    if (clv_activations_forward(&s->tb.mem, B, m->training, err))
        return -1;
    const int64_t L0 = B * s->Hp * s->Wp;
    const clv_wl_mode mode = m->training ? CLV_WL_TRAIN : CLV_WL_INFER;
    if (clv_patch_embed_forward(&s->tb.pe, s->peout, s->patches, x, B, mode, err))
        return -1;
    clv_norm_forward(&s->pnorm, s->x0, s->pmean, s->prstd, s->peout, L0, s->D);
    const float *last = s->x0;
    for (int i = 0; i < s->n_stages; i++) {
        stage *st = &s->stages[i];
        for (int j = 0; j < st->depth; j++) {
            if (clv_tblock_forward(&st->blocks[j], &st->acts[j], &s->tb.sh, last, B, m->training, err))
                return -1;
            last = st->acts[j].xout;
        }
        if (st->has_merge) {
            if (merge_forward(&st->merge, last, B, mode, err))
                return -1;
            last = st->merge.out;
        }
    }
    const int64_t T = s->Hl * s->Wl, C = s->Cl;
    s->last = last;
    clv_norm_forward(&s->norm, s->lnf, s->meanf, s->rstdf, last, B * T, C);
    clv_avgpool_forward(feats, s->lnf, B, T, C);
    s->tb.mem.trained_B = m->training ? B : 0;
    return 0;
}

/* Inference runs in slices of about INFER_ROWS token rows of the first stage (clv_tbackbone_forward),
 * which bounds its arena (about 32 MB per 1000 rows for swin_tiny_patch4_window7_224: 20 images a
 * slice). Smaller slices cost Swin time: batch 32 of swin_tiny, 2 threads, CPU time of an inference
 * forward, in slices of 2 images 3.3 s, of 5 images 3.1-3.3 s, unsliced 2.9-3.1 s (peak RSS 0.34,
 * 0.45, 1.03 GB). */
#define INFER_ROWS 65536

static int swin_forward(clv_model *m, const float *x, int64_t B, float *feats, clv_err *err)
{
    swin *s = m->impl;
    return clv_tbackbone_forward(&s->tb, m, x, B, feats, s->Hp * s->Wp, INFER_ROWS, forward_batch, err);
}

/* ---- backward: top down, and only as far down as a gradient is needed ---- */

static void zero(float *p, int64_t n) { memset(p, 0, (size_t)n * sizeof(float)); }

/* dres: the gradient of the merge's output on entry, of its input on return when below (else untouched). */
static int merge_backward(swin *s, smerge *mg, int64_t B, int below, clv_err *err)
{
    const int64_t L = mg->H * mg->W, R4 = B * L / 4, C4 = 4 * mg->C;
    clv_tblock_grads *g = &s->tb.grads;
    const int need = below || clv_norm_trains(&mg->norm);
    /* the gathered input and its norm again: the forward kept neither */
    for (int64_t b = 0; b < B; b++)
        clv_rows_gather(mg->xg + b * L * mg->C, mg->xin + b * L * mg->C, mg->idx, L, mg->C);
    clv_norm_forward(&mg->norm, mg->ln, mg->mean, mg->rstd, mg->xg, R4, C4);
    if (clv_wlayer_backward_into(&mg->red, need ? g->dln : NULL, s->dres, mg->ln, NULL, R4, &g->wscratch, err))
        return -1;
    if (!need)
        return 0;
    float *dxg = g->dattout;
    clv_norm_backward_into(&mg->norm, below ? dxg : NULL, g->dln, mg->xg, mg->mean, mg->rstd, R4, C4);
    if (!below)
        return 0;
    zero(s->dres, B * L * mg->C);
    for (int64_t b = 0; b < B; b++)
        clv_rows_scatter_add(s->dres + b * L * mg->C, dxg + b * L * mg->C, mg->idx, L, mg->C);
    return 0;
}

/* The walk overwrites saved activations (h becomes GELU'(h), then the gradient at h), so a
 * forward's activations serve one backward. */
static int swin_backward(clv_model *m, const float *dfeats, float *dx, clv_err *err)
{
    swin *s = m->impl;
    int64_t B;
    if (clv_activations_take(&s->tb.mem, &B, err))
        return -1;
    /* below[k]: something under block k (in forward order) needs a gradient; merges and the final
     * norm take theirs from the block before them */
    int below[s->tb.n_blocks + 1], merge_below[CLV_SWIN_MAX_STAGES];
    int any = dx != NULL || clv_wlayer_trains(&s->tb.pe.proj) || clv_norm_trains(&s->pnorm), k = 0;
    for (int i = 0; i < s->n_stages; i++) {
        stage *st = &s->stages[i];
        for (int j = 0; j < st->depth; j++, k++) {
            below[k] = any;
            any |= clv_tblock_lowest_trainable(&st->blocks[j]) < 6;
        }
        merge_below[i] = any;
        if (st->has_merge)
            any |= clv_wlayer_trains(&st->merge.red) || clv_norm_trains(&st->merge.norm);
    }
    if (!any && !clv_norm_trains(&s->norm))
        return 0;
    if (clv_wlayers_check_saved(m->wlayers, m->n_wlayers, err)) /* before any gradient is touched */
        return clv_err_prefix(err, "%s", m->info.name);
    if (clv_activations_backward(&s->tb.mem, err))
        return -1;
    /* the mean over tokens, then the final norm */
    const int64_t T = s->Hl * s->Wl, C = s->Cl, Rl = B * T;
    float *dpool = s->tb.grads.dln;
    zero(dpool, Rl * C);
    clv_avgpool_backward(dpool, dfeats, B, T, C);
    clv_norm_backward_into(&s->norm, any ? s->dres : NULL, dpool, s->last, s->meanf, s->rstdf, Rl, C);
    if (!any)
        return 0;
    for (int i = s->n_stages - 1; i >= 0; i--) {
        stage *st = &s->stages[i];
        k -= st->depth;
        if (st->has_merge) {
            if (merge_backward(s, &st->merge, B, merge_below[i], err))
                return -1;
            if (!merge_below[i])
                return 0;
        }
        for (int j = st->depth - 1; j >= 0; j--) {
            clv_tblock *bk = &st->blocks[j];
            const int lowest = below[k + j] ? -1 : clv_tblock_lowest_trainable(bk);
            /* block 0's forward again, from its input, over block 1's spent buffers: the same floats */
            if (j == 0 && st->again) {
                if (i == 0) /* the embedding's norm again, bit for bit (see fwd_layout) */
                    clv_norm_forward(&s->pnorm, s->x0, s->pmean, s->prstd, s->peout, B * s->Hp * s->Wp, s->D);
                if (clv_tblock_forward_again(bk, &st->acts[0], &s->tb.sh, B, err))
                    return -1;
            }
            const int rc = clv_tblock_backward(bk, &st->acts[j], &s->tb.sh, &s->tb.grads, s->dres, s->dres, B, lowest, err);
            if (rc)
                return rc < 0 ? -1 : 0;
        }
    }
    /* patch embedding: norm, projection */
    const int64_t L0 = B * s->Hp * s->Wp;
    const int need = dx || clv_wlayer_trains(&s->tb.pe.proj);
    clv_norm_backward_into(&s->pnorm, need ? s->dpe : NULL, s->dres, s->peout, s->pmean, s->prstd, L0, s->D);
    if (!need)
        return 0;
    return clv_patch_embed_backward(&s->tb.pe, dx, s->dpatches, s->dpe, s->patches, B, &s->tb.grads.wscratch, err);
}

static void swin_free(clv_model *m)
{
    swin *s = m->impl;
    if (s) {
        clv_tbackbone_free(&s->tb);
        for (int i = 0; s->stages && i < s->n_stages; i++) {
            stage *st = &s->stages[i];
            for (int j = 0; st->blocks && j < st->depth; j++)
                clv_tblock_free(&st->blocks[j]);
            clv_wlayer_release(&st->merge.red);
            free(st->merge.idx);
            free(st->blocks);
            free(st->acts);
        }
        free(s->stages);
    }
    clv_build_model_free(m);
}

/* ---- construction ---- */

/* Stage i's block j on an H x W grid of C channels, under "layers.i.blocks.j". */
static int add_block(clv_model *m, clv_builder *b, clv_tblock *k, int stage_i, int j, int64_t H, int64_t W, int64_t C,
                     int64_t heads, int64_t window)
{
    /* timm: no shift and a window the grid's size when the grid is no larger than the window */
    const int64_t ws = H <= window || W <= window ? (H < W ? H : W) : window;
    const int64_t shift = (H <= window || W <= window) ? 0 : (j % 2 ? window / 2 : 0);
    if (H % ws || W % ws)
        return clv_errf(b->err, "%s: stage %d's %lldx%lld grid is not a multiple of the window %lld", m->info.name,
                        stage_i + 1, (long long)H, (long long)W, (long long)ws);
    const clv_attn_spec core = {.kind = CLV_ATTN_WINDOWED, .grid_h = H, .grid_w = W, .window = ws, .shift = shift};
    const clv_tblock_config bc = {.T = H * W, .C = C, .heads = heads, .hidden = 4 * C, .eps = LN_EPS};
    const size_t at = clv_builder_push(b, "blocks.%d", j);
    if (clv_tblock_build(k, b, &bc, &core))
        return -1;
    clv_builder_pop(b, at);
    /* 2 FLOPs per multiply-add: qkv, q k^T, att v, proj, fc1, fc2 */
    m->info.flops_per_image += 2.0 * (double)(H * W) * (double)(C * 3 * C + 2 * ws * ws * C + C * C + 8 * C * C);
    return 0;
}

static int add_merge(clv_model *m, clv_builder *b, smerge *mg, int64_t H, int64_t W, int64_t C)
{
    mg->H = H, mg->W = W, mg->C = C;
    const size_t at = clv_builder_push(b, "downsample");
    if (clv_build_linear(b, &mg->red, "reduction", 2 * C, 4 * C, 0) || clv_build_norm(b, &mg->norm, "norm", 4 * C, LN_EPS))
        return -1;
    clv_builder_pop(b, at);
    if (!(mg->idx = malloc((size_t)(H * W) * sizeof *mg->idx)))
        return clv_errf(b->err, "%s: out of memory", m->info.name);
    clv_swin_merge_index(mg->idx, 1, H, W);
    m->info.flops_per_image += 2.0 * (double)(H / 2 * W / 2) * (double)(4 * C * 2 * C);
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

static void fill_info(clv_model *m, const clv_swin_config *cfg, int64_t C)
{
    clv_model_info *in = &m->info;
    in->img_size = cfg->img_size;
    in->in_chans = cfg->in_chans;
    in->feat_dim = (int)C;
    char count[32], depths[64] = "", heads[64] = "";
    size_t dl = 0, hl = 0;
    for (int i = 0; i < cfg->n_stages; i++) {
        dl += (size_t)snprintf(depths + dl, sizeof depths - dl, "%s%d", i ? "-" : "", cfg->depths[i]);
        hl += (size_t)snprintf(heads + hl, sizeof heads - hl, "%s%d", i ? "-" : "", cfg->heads[i]);
    }
    clv_build_count_str(m, count, sizeof count);
    snprintf(in->summary, sizeof in->summary, "Swin dim %d depths %s heads %s window %d patch %d %dx%d, %s params",
             cfg->embed_dim, depths, heads, cfg->window, cfg->patch_size, cfg->img_size, cfg->img_size, count);
}

clv_model *clv_swin_create(const char *name, const clv_swin_config *cfg, clv_err *err)
{
    clv_model *m = clv_build_model("swin", name, &swin_ops, sizeof(swin), err);
    swin *s = m ? m->impl : NULL;
    if (!s || check_config(name, cfg, err))
        return clv_build_abandon(m);
    s->P = cfg->patch_size;
    s->cfg = *cfg;
    s->Hp = s->Wp = cfg->img_size / cfg->patch_size;
    s->K = (int64_t)cfg->in_chans * s->P * s->P;
    s->D = cfg->embed_dim;
    s->n_stages = cfg->n_stages;
    int n_blocks = 0;
    for (int i = 0; i < cfg->n_stages; i++)
        n_blocks += cfg->depths[i];
    if (clv_tbackbone_init(&s->tb, m, cfg->in_chans, cfg->img_size, cfg->patch_size, n_blocks, fwd_layout, inf_layout,
                           bwd_layout, s, err))
        goto fail;
    s->stages = calloc((size_t)cfg->n_stages, sizeof *s->stages);
    if (!s->stages) {
        clv_errf(err, "%s: out of memory", name);
        goto fail;
    }
    /* registration order = timm's state_dict order */
    clv_builder b;
    clv_builder_init(&b, m, err);
    if (clv_build_patch_proj(&b, &s->tb.pe.proj, "patch_embed.proj", s->D, cfg->in_chans, s->P) ||
        clv_build_norm(&b, &s->pnorm, "patch_embed.norm", s->D, LN_EPS))
        goto fail;
    m->info.flops_per_image = 2.0 * (double)(s->Hp * s->Wp) * (double)(s->K * s->D);
    int64_t H = s->Hp, W = s->Wp, C = s->D;
    for (int i = 0, k = 0; i < cfg->n_stages; i++) {
        stage *st = &s->stages[i];
        st->depth = cfg->depths[i];
        /* the first stage's first block is formed twice rather than kept: its tokens are the most
         * (swin_tiny batch 16: 155 MB less for about 2% more FLOPs a step: qkv, proj, fc1 and the
         * core again) */
        st->again = i == 0 && st->depth >= 2;
        st->blocks = calloc((size_t)st->depth, sizeof *st->blocks);
        st->acts = calloc((size_t)st->depth, sizeof *st->acts);
        if (!st->blocks || !st->acts) {
            clv_errf(err, "%s: out of memory", name);
            goto fail;
        }
        const size_t at = clv_builder_push(&b, "layers.%d", i);
        for (int j = 0; j < st->depth; j++, k++) {
            if (add_block(m, &b, &st->blocks[j], i, j, H, W, C, cfg->heads[i], cfg->window))
                goto fail;
            s->tb.blocks[k] = &st->blocks[j];
        }
        if (i + 1 < cfg->n_stages) {
            st->has_merge = 1;
            if (add_merge(m, &b, &st->merge, H, W, C))
                goto fail;
            H /= 2, W /= 2, C *= 2;
        }
        clv_builder_pop(&b, at);
    }
    s->Hl = H, s->Wl = W, s->Cl = C;
    if (clv_build_norm(&b, &s->norm, "norm", C, LN_EPS))
        goto fail;
    fill_info(m, cfg, C);
    return m;
fail:
    return clv_build_abandon(m);
}

static const clv_model_ops swin_ops = {
    .init = clv_build_initialize, .forward = swin_forward, .backward = swin_backward, .free = swin_free};
