/* The pre-norm transformer block (see clvit/transformer_block.h). */
#include "clvit/transformer_block.h"
#include "clvit/kernels.h"

#include <string.h>

int clv_tblock_build(clv_tblock *k, clv_builder *b, const clv_tblock_config *cfg, const clv_attn_spec *attn)
{
    const int64_t C = cfg->C;
    k->T = cfg->T, k->C = C, k->hidden = cfg->hidden, k->eps = cfg->eps;
    k->ln1_h = k->ln2_h = k->attout_h = (clv_tblock_kept){0};
    k->reference_path = 0;
    if (clv_build_norm(b, &k->norm1, "norm1", C, cfg->eps))
        return -1;
    const size_t at = clv_builder_push(b, "attn");
    if (clv_attn_core_build(&k->attn, b, attn, cfg->T, C, cfg->heads) ||
        clv_build_linear(b, &k->qkv, "qkv", 3 * C, C, 1) || clv_build_linear(b, &k->proj, "proj", C, C, 1))
        return -1;
    clv_builder_pop(b, at);
    return clv_build_norm(b, &k->norm2, "norm2", C, cfg->eps) || clv_build_linear(b, &k->fc1, "mlp.fc1", cfg->hidden, C, 1) ||
                   clv_build_linear(b, &k->fc2, "mlp.fc2", C, cfg->hidden, 1)
               ? -1
               : 0;
}

void clv_tblock_free(clv_tblock *k)
{
    clv_tblock_kept *kept[3] = {&k->ln1_h, &k->ln2_h, &k->attout_h};
    for (int i = 0; i < 3; i++) {
        clv_free(kept[i]->h);
        *kept[i] = (clv_tblock_kept){0};
    }
    clv_attn_core_free(&k->attn);
    clv_wlayer_release(&k->qkv);
    clv_wlayer_release(&k->proj);
    clv_wlayer_release(&k->fc1);
    clv_wlayer_release(&k->fc2);
}

/* ---- buffers ---- */

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

void clv_tblock_carve_shared(clv_carver *c, clv_tblock_shared *sh, const clv_tblock *const *ks, int n, int64_t B)
{
    int64_t tok = 0, g = 0, scratch = 0;
    for (int i = 0; i < n; i++) {
        const clv_tblock *k = ks[i];
        const int64_t N = B * k->T;
        tok = max64(tok, N * k->C);
        g = max64(g, N * max64(k->hidden, 3 * k->C));
        scratch = max64(scratch, k->attn.ops->scratch_floats(&k->attn, B));
    }
    sh->ln = clv_carve_floats(c, tok, 1, 1);
    sh->g = clv_carve_floats(c, g, 1, 1);
    sh->attout = clv_carve_floats(c, tok, 1, 1);
    sh->scratch = scratch ? clv_carve_floats(c, scratch, 1, 1) : NULL;
}

void clv_tblock_carve_train(clv_carver *c, clv_tblock_acts *a, const clv_tblock *k, const clv_tblock_shared *sh,
                            int64_t B, int keep_out)
{
    const int64_t N = B * k->T, R = clv_tblock_out_rows(k, B), C = k->C;
    const int64_t att = k->attn.ops->att_floats(&k->attn, B, 1);
    a->ln1 = sh->ln;
    a->mean1 = clv_carve_floats(c, N, 1, 1);
    a->rstd1 = clv_carve_floats(c, N, 1, 1);
    a->qkv = clv_carve_floats(c, N, 3 * C, 1);
    /* the global core's probabilities are kept rather than their product with V: about the same
     * size, and the backward's product again (proj's input) costs less than the probabilities
     * again (in bf16 the block keeps proj's bf16 input besides: core_forward_h); a core that forms
     * both again in the backward keeps neither */
    a->att = att ? clv_carve_floats(c, att, 1, 1) : NULL;
    a->attout = k->attn.ops->output || k->attn.ops->recomputed_att_floats ? sh->attout : clv_carve_floats(c, R, C, 1);
    a->xmid = clv_carve_floats(c, R, C, 1);
    a->ln2 = sh->ln;
    a->mean2 = clv_carve_floats(c, R, 1, 1);
    a->rstd2 = clv_carve_floats(c, R, 1, 1);
    a->h = clv_carve_floats(c, R, k->hidden, 1);
    a->g = sh->g;
    a->xout = keep_out ? clv_carve_floats(c, R, C, 1) : sh->ln;
}

void clv_tblock_carve_again(clv_carver *c, clv_tblock_acts *a, const clv_tblock *k, const clv_tblock_acts *next,
                            int64_t B)
{
    *a = *next;
    a->xout = clv_carve_floats(c, clv_tblock_out_rows(k, B), k->C, 1); /* next's input */
}

void clv_tblock_carve_infer(clv_carver *c, clv_tblock_acts *a, clv_tblock_shared *sh, const clv_tblock *const *ks,
                            int n, int64_t B)
{
    int64_t rows = 0, tok = 0, qkv = 0, att = 0, hid = 0;
    for (int i = 0; i < n; i++) {
        const clv_tblock *k = ks[i];
        const int64_t N = B * k->T;
        rows = max64(rows, N);
        tok = max64(tok, N * k->C);
        qkv = max64(qkv, N * 3 * k->C);
        att = max64(att, k->attn.ops->att_floats(&k->attn, B, 0));
        hid = max64(hid, N * k->hidden);
    }
    clv_tblock_carve_shared(c, sh, ks, n, B);
    a->ln1 = a->ln2 = sh->ln;
    a->mean1 = a->mean2 = clv_carve_floats(c, rows, 1, 1);
    a->rstd1 = a->rstd2 = clv_carve_floats(c, rows, 1, 1);
    a->qkv = clv_carve_floats(c, qkv, 1, 1);
    a->att = att ? clv_carve_floats(c, att, 1, 1) : NULL;
    a->attout = sh->attout;
    a->xmid = clv_carve_floats(c, tok, 1, 1);
    a->h = clv_carve_floats(c, hid, 1, 1);
    a->g = sh->g;
    a->xout = clv_carve_floats(c, tok, 1, 1);
}

void clv_tblock_carve_grads(clv_carver *c, clv_tblock_grads *g, const clv_tblock_shared *sh,
                            const clv_tblock *const *ks, int n, int64_t B)
{
    int64_t tok = 0, hid = 0, att = 0;
    for (int i = 0; i < n; i++) {
        const clv_attn_core *core = &ks[i]->attn;
        tok = max64(tok, B * ks[i]->T * ks[i]->C);
        hid = max64(hid, B * ks[i]->T * ks[i]->hidden);
        if (core->ops->recomputed_att_floats)
            att = max64(att, core->ops->recomputed_att_floats(core, B));
    }
    g->dattout = clv_carve_floats(c, tok, 1, 1);
    g->dln = clv_carve_floats(c, tok, 1, 1);
    g->dg = clv_carve_floats(c, hid, 1, 1);
    g->dqkv = sh->g;
    /* recomputed probabilities live from proj's backward to the core's, when dg is spent */
    g->att = att <= hid ? g->dg : clv_carve_floats(c, att, 1, 1);
}

void clv_tblock_grads_free(clv_tblock_grads *g)
{
    clv_arena_free(&g->gprime);
    clv_arena_free(&g->wscratch);
}

/* ---- forward ---- */

/* y[r] += x[r * stride] for R rows of C: the residual of the rows a class-row core kept */
static void add_rows(float *y, const float *x, int64_t R, int64_t stride, int64_t C)
{
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < C; c++)
            y[r * C + c] += x[r * stride * C + c];
}

/* ---- bf16 inputs written by their producers ----
 * In bf16 the norms and GELU write their output's bf16 copy in the pass that
 * forms it (clv_compute_shadow), and the fp32 output only when something
 * reads it other than the next layer's GEMMs: an adapter may. Slot 0 holds
 * a norm's output (qkv's or fc1's input), slot 1 GELU's (fc2's), slot 2 the
 * gradient at fc1's output (formed only in bf16 by the fused backward), slot
 * 3 the attention's output (proj's input, when the core's products run in
 * bf16). */
enum { SHADOW_NORM = 0, SHADOW_GELU = 1, SHADOW_DH = 2, SHADOW_ATTOUT = 3 };

static int reads_fp32_input(const clv_wlayer *l) { return l->adapter != NULL; }

/* In bf16 on oneDNN an inference forward runs a core's bf16 products (attention_core.h) when the
 * qkv layer is plain: nothing else reads its output then, so the layer writes it in bf16 only, into
 * the first half of qkv's buffer. vit_tiny_patch4_32 on an AMD EPYC (Zen 4), 2 threads: the core's
 * forward 4.6 -> 3.4 ms a block at batch 128. Training keeps the fp32 core: with bf16 products
 * (forward and backward, as autocast runs them) the demo's independent method ended 0.47 points
 * below fp32 on average over seeds 0-4 (paired; sd 0.49), against +0.14 before, for a step about 2%
 * faster (docs/precision.md). */
static int attn_in_bf16(const clv_tblock *k, int training)
{
    return !training && k->attn.ops->forward_bf16 && clv_wlayer_plain_bf16(&k->qkv);
}

/* Where the bf16 core writes its output: attout's shadow (proj's GEMM input), and attout in fp32
 * only when proj's adapter reads it */
static int attout_targets(clv_tblock *k, clv_tblock_acts *a, int64_t R, float **out, clv_bf16 **oh, clv_err *err)
{
    if (clv_compute_shadow(k->proj.compute, SHADOW_ATTOUT, a->attout, R, k->C, oh, err))
        return -1;
    *out = !*oh || reads_fp32_input(&k->proj) ? a->attout : NULL;
    return 0;
}

/* Room for rows x C bf16 values in a kept copy, its rows not yet written */
static int kept_room(clv_tblock_kept *kept, int64_t rows, int64_t C, const char *what, clv_err *err)
{
    const size_t n = (size_t)(rows * C);
    kept->rows = 0;
    if (clv_scratch_reserve((void **)&kept->h, &kept->cap, n, sizeof(clv_bf16)))
        return clv_errf(err, "%s: out of memory for its kept bf16 input (%zu values)", what, n);
    return 0;
}

/* Does the block take bf16's own steps around layer l (keep its bf16 input from the forward for the
 * backward, write the gradient at its output in bf16 only)? When l reads nothing but bf16 copies. */
static int bf16_steps(const clv_tblock *k, const clv_wlayer *l)
{
    return !k->reference_path && clv_wlayer_plain_bf16(l);
}

/* And proj's, when the core would form its output again for proj's backward and can write it in
 * bf16 itself. Measured on vit_tiny_patch4_32 (AMD EPYC Zen 4, 2 threads, batch 128): the
 * backward's product costs about 2 ms a block and its conversion to bf16 0.4 ms, for 3.2 MB a block. */
static int keeps_attout_h(const clv_tblock *k)
{
    return k->attn.ops->output && k->attn.ops->forward_h && bf16_steps(k, &k->proj);
}

/* The core's forward with its output (proj's input, rows x C) in bf16 only, into the block's own
 * buffer, lent to proj's GEMMs (SHADOW_ATTOUT) under attout's name: attout is not written */
static int core_forward_h(clv_tblock *k, clv_tblock_acts *a, const clv_tblock_shared *sh, int64_t B, int64_t rows,
                          clv_err *err)
{
    if (kept_room(&k->attout_h, rows, k->C, k->proj.name, err))
        return -1;
    k->attn.ops->forward_h(&k->attn, k->attout_h.h, a->att, a->qkv, B, sh->scratch);
    k->attout_h.rows = rows;
    clv_compute_lend(k->proj.compute, SHADOW_ATTOUT, a->attout, rows, k->C, k->attout_h.h);
    return 0;
}

/* The norm of x (N x C) for layer l's GEMMs, in y's name: its bf16 copy written in the same pass
 * (SHADOW_NORM), y in fp32 only when l reads it so. kept (may be NULL): a training forward that
 * keeps l's input writes the copy there instead, for the backward (norm_again). */
static int norm_for(clv_tblock *k, clv_tblock_kept *kept, const clv_norm *nm, const clv_wlayer *l, float *y,
                    float *mean, float *rstd, const float *x, int64_t N, int64_t C, clv_err *err)
{
    clv_bf16 *h;
    if (kept && bf16_steps(k, l)) {
        if (kept_room(kept, N, C, l->name, err))
            return -1;
        clv_norm_forward_bf16(nm, NULL, kept->h, mean, rstd, x, N, C);
        kept->rows = N;
        clv_compute_lend(l->compute, SHADOW_NORM, y, N, C, kept->h);
        return 0;
    }
    if (kept)
        kept->rows = 0;
    if (clv_compute_shadow(l->compute, SHADOW_NORM, y, N, C, &h, err))
        return -1;
    clv_norm_forward_bf16(nm, !h || reads_fp32_input(l) ? y : NULL, h, mean, rstd, x, N, C);
    return 0;
}

/* In the backward, the norm's output for l's weight gradient: the forward's kept copy, or formed
 * again (the same values: the same input through the same per-row arithmetic) */
static int norm_again(clv_tblock *k, clv_tblock_kept *kept, const clv_norm *nm, const clv_wlayer *l, float *y,
                      float *mean, float *rstd, const float *x, int64_t N, int64_t C, clv_err *err)
{
    if (kept->rows == N && bf16_steps(k, l)) {
        clv_compute_lend(l->compute, SHADOW_NORM, y, N, C, kept->h);
        return 0;
    }
    return norm_for(k, NULL, nm, l, y, mean, rstd, x, N, C, err);
}

static void unshadow(clv_tblock *k)
{
    clv_compute_unshadow(k->qkv.compute, SHADOW_NORM);
    clv_compute_unshadow(k->qkv.compute, SHADOW_GELU);
    clv_compute_unshadow(k->qkv.compute, SHADOW_DH);
    clv_compute_unshadow(k->qkv.compute, SHADOW_ATTOUT);
}

/* full = 0: up to fc1's output (what a backward reads that the block does not keep) */
static int forward(clv_tblock *k, clv_tblock_acts *a, const clv_tblock_shared *sh, const float *x, int64_t B,
                   int training, int full, clv_err *err)
{
    const int64_t N = B * k->T, R = clv_tblock_out_rows(k, B), C = k->C;
    const clv_wl_mode mode = training ? CLV_WL_TRAIN : CLV_WL_INFER;
    /* qkv's output stays for the attention backward, h (fc1's) for GELU's */
    const clv_wl_mode mode_kept = training ? CLV_WL_TRAIN_KEEPS_Y : CLV_WL_INFER;
    a->xin = x;
    k->ln1_h.rows = k->ln2_h.rows = k->attout_h.rows = 0; /* this forward's, if it keeps them */
    const int bf = attn_in_bf16(k, training);
    clv_bf16 *qh = (clv_bf16 *)a->qkv;
    if (norm_for(k, training ? &k->ln1_h : NULL, &k->norm1, &k->qkv, a->ln1, a->mean1, a->rstd1, x, N, C, err) ||
        (bf ? clv_wlayer_forward_to_bf16(&k->qkv, qh, a->ln1, N, mode_kept, err)
            : clv_wlayer_forward(&k->qkv, a->qkv, a->ln1, N, mode_kept, err)))
        return -1;
    clv_compute_unshadow(k->qkv.compute, SHADOW_NORM);
    if (bf) {
        float *out;
        clv_bf16 *oh;
        if (attout_targets(k, a, R, &out, &oh, err) ||
            k->attn.ops->forward_bf16(&k->attn, k->qkv.compute, out, oh, a->att, qh, B, err))
            return -1;
    } else if (training && keeps_attout_h(k)) {
        if (core_forward_h(k, a, sh, B, R, err))
            return -1;
    } else
        k->attn.ops->forward(&k->attn, a->attout, a->att, a->qkv, B, sh->scratch);
    /* residual adds and GELU ride along in the pass that adds each layer's bias */
    if (clv_wlayer_forward_fused(&k->proj, a->xmid, a->attout, R, R == N ? x : NULL, NULL, mode, err))
        return -1;
    clv_compute_unshadow(k->proj.compute, SHADOW_ATTOUT);
    if (R != N) /* the residual rows are strided */
        add_rows(a->xmid, x, R, N / R, C);
    if (norm_for(k, training ? &k->ln2_h : NULL, &k->norm2, &k->fc1, a->ln2, a->mean2, a->rstd2, a->xmid, R, C, err))
        return -1;
    /* GELU's output only when fc2 follows (the backward forms it again) */
    clv_bf16 *gh = NULL;
    if (full && clv_compute_shadow(k->fc2.compute, SHADOW_GELU, a->g, R, k->hidden, &gh, err))
        return -1;
    float *g = full && (!gh || reads_fp32_input(&k->fc2)) ? a->g : NULL;
    /* fc2's bf16 input is all an inference needs from fc1 when both are plain: bias and GELU
     * inside fc1's matmul. Training keeps h for GELU's backward: oneDNN's erf epilogue costs
     * about what writing h costs, so forming h again in the backward was a GEMM more for nothing
     * (vit_tiny bf16 step +3.5%, same peak memory: h's buffer is the block's own either way). */
    if (!training && gh && !g && clv_wlayer_plain_bf16(&k->fc1)) {
        if (clv_wlayer_forward_gelu_bf16(&k->fc1, gh, a->ln2, R, mode_kept, err))
            return -1;
    } else if (clv_wlayer_forward_fused_bf16(&k->fc1, a->h, a->ln2, R, NULL, g, gh, mode_kept, err))
        return -1;
    clv_compute_unshadow(k->fc1.compute, SHADOW_NORM);
    if (full && clv_wlayer_forward_fused(&k->fc2, a->xout, a->g, R, a->xmid, NULL, mode, err))
        return -1;
    return 0;
}

int clv_tblock_forward(clv_tblock *k, clv_tblock_acts *a, const clv_tblock_shared *sh, const float *x, int64_t B,
                       int training, clv_err *err)
{
    const int rc = forward(k, a, sh, x, B, training, 1, err);
    unshadow(k);
    return rc;
}

int clv_tblock_forward_again(clv_tblock *k, clv_tblock_acts *a, const clv_tblock_shared *sh, int64_t B, clv_err *err)
{
    /* fc2's input is formed again by the backward (GELU's), its output is read by nothing now */
    const int rc = forward(k, a, sh, a->xin, B, 1, 0, err);
    unshadow(k);
    return rc;
}

/* ---- backward ---- */

int clv_tblock_lowest_trainable(const clv_tblock *k)
{
    if (clv_norm_trains(&k->norm1))
        return 0;
    if (clv_wlayer_trains(&k->qkv) || clv_attn_core_trains(&k->attn))
        return 1;
    if (clv_wlayer_trains(&k->proj))
        return 2;
    if (clv_norm_trains(&k->norm2))
        return 3;
    if (clv_wlayer_trains(&k->fc1))
        return 4;
    return clv_wlayer_trains(&k->fc2) ? 5 : 6;
}


/* the input's gradient from the R rows a class-row core kept: zero elsewhere */
static void expand_rows(float *dx, const float *dout, int64_t R, int64_t stride, int64_t C)
{
    memset(dx, 0, (size_t)(R * stride * C) * sizeof(float));
    for (int64_t r = 0; r < R; r++)
        memcpy(dx + r * stride * C, dout + r * C, (size_t)C * sizeof(float));
}

/* GELU's backward between fc2's dx and weight-gradient GEMMs: g's bf16 copy for fc2's, and dh
 * (fc1's dy) only in bf16, with fc1's bias gradient, in one pass over h and dg */
typedef struct {
    clv_tblock *k;
    clv_tblock_acts *a;
    clv_tblock_grads *g;
    int64_t R;
} gelu_fuse;

static int gelu_backward_fused(void *ctx, clv_err *err)
{
    gelu_fuse *f = ctx;
    clv_wlayer *fc1 = &f->k->fc1;
    float *db = fc1->bias && fc1->bias->trainable ? fc1->bias->grad : NULL;
    return clv_compute_gelu_backward(fc1->compute, SHADOW_GELU, f->a->g, SHADOW_DH, f->g->dg, f->a->h, f->g->dg, f->R,
                                     f->k->hidden, db, err);
}

static int backward(clv_tblock *k, clv_tblock_acts *a, const clv_tblock_shared *sh, clv_tblock_grads *g, float *dout,
                    float *dx, int64_t B, int lowest, clv_err *err)
{
    const int64_t N = B * k->T, R = clv_tblock_out_rows(k, B), C = k->C, Hm = k->hidden;
    clv_arena *ws = &g->wscratch;
    /* the input gradients below are written (_into), not accumulated: no zeroing passes */
    int need = lowest < 5;
    /* GELU's output again (the forward kept only h), and GELU'(h) over h (or, when fc1's backward
     * reads h, into a buffer of its own): one erf for both */
    const int fc1_y = clv_wlayer_reads_output(&k->fc1);
    if (fc1_y && clv_arena_reserve(&g->gprime, (size_t)(R * Hm) * sizeof(float), "GELU's derivative", err))
        return -1;
    float *gp = fc1_y ? g->gprime.mem : a->h;
    if (need && clv_wlayer_plain_bf16(&k->fc1) && clv_wlayer_plain_bf16(&k->fc2)) {
        /* bf16 without adapters: GELU's backward in one pass between fc2's two GEMMs */
        gelu_fuse f = {k, a, g, R};
        if (clv_wlayer_backward_split_into(&k->fc2, g->dg, dout, a->g, R, ws, gelu_backward_fused, &f, err))
            return -1;
        clv_compute_unshadow(k->fc2.compute, SHADOW_GELU);
        need = lowest < 4;
        if (norm_again(k, &k->ln2_h, &k->norm2, &k->fc1, a->ln2, a->mean2, a->rstd2, a->xmid, R, C, err) ||
            clv_wlayer_backward_shadowed_into(&k->fc1, need ? g->dln : NULL, g->dg, a->ln2, R, ws, err))
            return -1;
        clv_compute_unshadow(k->fc1.compute, SHADOW_NORM);
        clv_compute_unshadow(k->fc1.compute, SHADOW_DH);
    } else {
        clv_bf16 *gh;
        if (clv_compute_shadow(k->fc2.compute, SHADOW_GELU, a->g, R, Hm, &gh, err))
            return -1;
        clv_gelu_forward_grad_bf16(!gh || reads_fp32_input(&k->fc2) ? a->g : NULL, gh, gp, a->h, R * Hm);
        if (clv_wlayer_backward_into(&k->fc2, need ? g->dg : NULL, dout, a->g, NULL, R, ws, err))
            return -1;
        clv_compute_unshadow(k->fc2.compute, SHADOW_GELU);
        if (!need)
            return 1;
        clv_mul_forward(gp, g->dg, gp, R * Hm); /* dh = dg GELU'(h), over GELU'(h) */
        need = lowest < 4;
        /* norm2's output again, bit for bit (same input, same per-row arithmetic) */
        if (norm_again(k, &k->ln2_h, &k->norm2, &k->fc1, a->ln2, a->mean2, a->rstd2, a->xmid, R, C, err) ||
            clv_wlayer_backward_into(&k->fc1, need ? g->dln : NULL, gp, a->ln2, a->h, R, ws, err))
            return -1;
        clv_compute_unshadow(k->fc1.compute, SHADOW_NORM);
    }
    if (!need)
        return 1;
    need = lowest < 3;
    clv_norm_backward(&k->norm2, need ? dout : NULL, g->dln, a->xmid, a->mean2, a->rstd2, R, C);
    if (!need)
        return 1;

    need = lowest < 2;
    /* proj's input again (the shared buffers hold the lowest block's), with the probabilities when
     * the core's backward follows */
    float *att = a->att;
    if (k->attout_h.rows == R && keeps_attout_h(k)) /* proj reads only its bf16 input, which the forward kept */
        clv_compute_lend(k->proj.compute, SHADOW_ATTOUT, a->attout, R, C, k->attout_h.h);
    else if (k->attn.ops->recomputed_att_floats)
        k->attn.ops->forward(&k->attn, a->attout, att = need ? g->att : NULL, a->qkv, B, sh->scratch);
    else if (k->attn.ops->output)
        k->attn.ops->output(&k->attn, a->attout, att, a->qkv, B, sh->scratch);
    if (clv_wlayer_backward_into(&k->proj, need ? g->dattout : NULL, dout, a->attout, NULL, R, ws, err))
        return -1;
    clv_compute_unshadow(k->proj.compute, SHADOW_ATTOUT);
    if (!need)
        return 1;
    /* dqkv only in bf16 when qkv's GEMMs are all that read it: rounded while in cache, its column
     * sums (qkv's bias gradient) formed on the way */
    clv_wlayer *ql = &k->qkv;
    const int dqkv_h = k->attn.ops->backward_h && bf16_steps(k, ql);
    if (dqkv_h) {
        float *db = ql->bias && ql->bias->trainable ? ql->bias->grad : NULL, *parts = NULL;
        clv_bf16 *dh;
        if (clv_compute_shadow(ql->compute, SHADOW_DH, g->dqkv, N, 3 * C, &dh, err) ||
            (db && !(parts = clv_compute_float_slot(ql->compute, 1, (size_t)(B * 3 * C), err))))
            return -1;
        k->attn.ops->backward_h(&k->attn, dh, db, parts, g->dattout, a->qkv, att, B, sh->scratch);
    } else
        k->attn.ops->backward(&k->attn, g->dqkv, g->dattout, a->qkv, att, B, sh->scratch);
    /* the residual branch: the gradient of xmid is that of the input */
    if (R != N)
        expand_rows(dx, dout, R, N / R, C);
    else if (dx != dout)
        memcpy(dx, dout, (size_t)(N * C) * sizeof(float));
    need = lowest < 1;
    if (norm_again(k, &k->ln1_h, &k->norm1, ql, a->ln1, a->mean1, a->rstd1, a->xin, N, C, err) ||
        (dqkv_h ? clv_wlayer_backward_shadowed_into(ql, need ? g->dln : NULL, g->dqkv, a->ln1, N, ws, err)
                : clv_wlayer_backward_into(ql, need ? g->dln : NULL, g->dqkv, a->ln1, a->qkv, N, ws, err)))
        return -1;
    clv_compute_unshadow(ql->compute, SHADOW_NORM);
    clv_compute_unshadow(ql->compute, SHADOW_DH);
    if (!need)
        return 1;
    need = lowest < 0;
    clv_norm_backward(&k->norm1, need ? dx : NULL, g->dln, a->xin, a->mean1, a->rstd1, N, C);
    return need ? 0 : 1;
}

int clv_tblock_backward(clv_tblock *k, clv_tblock_acts *a, const clv_tblock_shared *sh, clv_tblock_grads *g,
                        float *dout, float *dx, int64_t B, int lowest, clv_err *err)
{
    const int rc = backward(k, a, sh, g, dout, dx, B, lowest, err);
    unshadow(k);
    return rc;
}
