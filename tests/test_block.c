/* The shared pre-norm transformer block (clvit/transformer_block.h) and its
 * attention cores: the whole ViT and Swin against what their hand-written
 * drivers computed before the block was shared (tests/fixtures/block_ref,
 * tools/make_block_ref.c), finite differences through one block with each
 * core, the windowed core's index against the explicit roll and partition,
 * and the timm names the builders register. */
#include <criterion/criterion.h>

#include "clvit/kernels.h"
#include "clvit/kernels_swin.h"
#include "clvit/model.h"
#include "clvit/precision.h"
#include "clvit/safetensors.h"
#include "clvit/transformer_block.h"
#include "fixture_tensors.h"
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF "tests/fixtures/block_ref.safetensors"

static float *fzeros(int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    cr_assert(p);
    return p;
}

/* the generator's sequence (tools/make_block_ref.c) */
static void fill(float *p, int64_t n, uint32_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 8) / 8388608.0 - 1.0);
    }
}

/* Features (training and inference), every parameter gradient and the input
 * gradient against the old driver's. Returns how many tensors differ in any bit. */
static int against_reference(clv_model *m, const char *tag, int64_t B)
{
    clv_safetensors st;
    clv_err err = {{0}};
    cr_assert_eq(clv_st_open(&st, REF, &err), 0, "%s", err.msg);
    const int64_t nx = B * m->info.in_chans * m->info.img_size * m->info.img_size, F = B * m->info.feat_dim;
    float *x = fzeros(nx), *dx = fzeros(nx), *feats = fzeros(F), *df = fzeros(F), *inf = fzeros(F);
    fill(x, nx, 1), fill(df, F, 2);
    m->ops->init(m, 7);
    for (int i = 0; i < m->params.count; i++)
        cr_assert_eq(clv_param_set_trainable(m->params.items[i], 1, &err), 0);
    clv_params_zero_grad(&m->params);
    m->training = 1;
    cr_assert_eq(m->ops->forward(m, x, B, feats, &err), 0, "%s", err.msg);
    cr_assert_eq(m->ops->backward(m, df, dx, &err), 0, "%s", err.msg);
    m->training = 0;
    cr_assert_eq(m->ops->forward(m, x, B, inf, &err), 0, "%s", err.msg);
    char name[CLV_NAME_LEN + 32];
    int differ = 0;
    struct {
        const char *what;
        const float *got;
        int64_t n;
        double tol;
    } outs[] = {{"feats", feats, F, 1e-5}, {"infer_feats", inf, F, 1e-5}, {"grad.x", dx, nx, 1e-4}};
    for (size_t k = 0; k < sizeof outs / sizeof outs[0]; k++) {
        snprintf(name, sizeof name, "%s.%s", tag, outs[k].what);
        float *ref = read_tensor(&st, name, outs[k].n);
        const double d = rel_diff(outs[k].got, ref, outs[k].n, 1e-6);
        cr_expect(d < outs[k].tol, "%s: relative difference %.3g from the old driver", name, d);
        differ += memcmp(outs[k].got, ref, (size_t)outs[k].n * sizeof(float)) != 0;
        free(ref);
    }
    for (int i = 0; i < m->params.count; i++) {
        const clv_param *p = m->params.items[i];
        snprintf(name, sizeof name, "%s.grad.%s", tag, p->name);
        float *ref = read_tensor(&st, name, p->numel);
        const double d = rel_diff(p->grad, ref, p->numel, 1e-6);
        cr_expect(d < 1e-4, "%s: relative difference %.3g from the old driver", name, d);
        differ += memcmp(p->grad, ref, (size_t)p->numel * sizeof(float)) != 0;
        free(ref);
    }
    free(x), free(dx), free(feats), free(df), free(inf);
    clv_st_close(&st);
    return differ;
}

/* keep in step with tools/make_block_ref.c */
static const clv_vit_config ref_vit = {8, 2, 3, 16, 3, 2, 32, 1e-6f};
static const clv_swin_config ref_swin = {16, 2, 3, 8, 2, 3, {2, 2, 1, 0}, {2, 2, 4, 0}};

Test(block, vit_matches_the_old_driver)
{
    clv_err err = {{0}};
    clv_model *m = clv_vit_create("vit_ref", &ref_vit, &err);
    cr_assert(m, "%s", err.msg);
    /* the same kernels in the same order: the same floats, but only for the
     * build and CPU that wrote the reference (-O3 -march=native on an
     * AVX-512 Xeon); another ISA or a sanitizer build reassociates, so the
     * assertion is the 1e-4 relative bound inside against_reference, and
     * bit identity is reported */
    const int differ = against_reference(m, "vit", 3);
    cr_log_info("vit: %d tensors differ in some bit from the reference build's", differ);
    clv_model_free(m);
}

Test(block, swin_matches_the_old_driver)
{
    clv_err err = {{0}};
    clv_model *m = clv_swin_create("swin_ref", &ref_swin, &err);
    cr_assert(m, "%s", err.msg);
    /* rows in image order rather than window order: sums over rows reassociate (within tolerance) */
    against_reference(m, "swin", 2);
    clv_model_free(m);
}

/* ---- one block, by finite differences, with each attention core ---- */

typedef struct one_block {
    clv_model m; /* holds the parameters and the weight layers the builder registers */
    clv_tblock k;
    const clv_tblock *ks[1];
    clv_tblock_acts a;
    clv_tblock_shared sh;
    clv_tblock_grads g;
    clv_arena fwd, bwd;
    int64_t B, N, R;
    float *x, *r, *dout, *dx;
} one_block;

static void fwd_layout(void *ctx, clv_carver *c)
{
    one_block *t = ctx;
    clv_tblock_carve_shared(c, &t->sh, t->ks, 1, t->B);
    clv_tblock_carve_train(c, &t->a, &t->k, &t->sh, t->B, 1);
}

static void bwd_layout(void *ctx, clv_carver *c)
{
    one_block *t = ctx;
    clv_tblock_carve_grads(c, &t->g, &t->sh, t->ks, 1, t->B);
}

static void one_block_init(one_block *t, const clv_attn_spec *spec, int64_t B, int64_t T, int64_t C, int64_t heads)
{
    clv_err err = {{0}};
    memset(t, 0, sizeof *t);
    clv_params_init(&t->m.params);
    snprintf(t->m.info.name, sizeof t->m.info.name, "one_block");
    clv_builder b;
    clv_builder_init(&b, &t->m, &err);
    clv_builder_push(&b, "blocks.%d", 3);
    const clv_tblock_config cfg = {.T = T, .C = C, .heads = heads, .hidden = 2 * C, .eps = 1e-5f};
    cr_assert_eq(clv_tblock_build(&t->k, &b, &cfg, spec), 0, "%s", err.msg);
    t->ks[0] = &t->k;
    t->B = B, t->N = B * T, t->R = clv_tblock_out_rows(&t->k, B);
    for (int i = 0; i < t->m.params.count; i++) {
        clv_param *p = t->m.params.items[i];
        gradcheck_fill(p->data, p->numel, 100 + (uint64_t)i, -0.3f, 0.3f);
        if (strstr(p->name, "norm") && strstr(p->name, "weight"))
            for (int64_t j = 0; j < p->numel; j++)
                p->data[j] += 1.0f;
        cr_assert_eq(clv_param_set_trainable(p, 1, &err), 0);
    }
    cr_assert_eq(clv_arena_lay_out(&t->fwd, fwd_layout, t, "test block", &err), 0, "%s", err.msg);
    cr_assert_eq(clv_arena_lay_out(&t->bwd, bwd_layout, t, "test block grads", &err), 0, "%s", err.msg);
    t->x = fzeros(t->N * C), t->dx = fzeros(t->N * C), t->r = fzeros(t->R * C), t->dout = fzeros(t->R * C);
    gradcheck_fill(t->x, t->N * C, 1, -1, 1);
    gradcheck_fill(t->r, t->R * C, 2, -1, 1);
}

static void one_block_free(one_block *t)
{
    clv_tblock_free(&t->k);
    clv_tblock_grads_free(&t->g);
    clv_arena_free(&t->fwd), clv_arena_free(&t->bwd);
    clv_params_free(&t->m.params);
    free(t->m.wlayers);
    free(t->x), free(t->dx), free(t->r), free(t->dout);
}

static double block_loss(void *p)
{
    one_block *t = p;
    clv_err err = {{0}};
    cr_assert_eq(clv_tblock_forward(&t->k, &t->a, &t->sh, t->x, t->B, 1, &err), 0, "%s", err.msg);
    return gradcheck_dot(t->a.xout, t->r, t->R * t->k.C);
}

/* the forward, then the backward with every unit trained and dx asked */
static void block_gradients(one_block *t)
{
    clv_err err = {{0}};
    clv_params_zero_grad(&t->m.params);
    block_loss(t);
    memcpy(t->dout, t->r, (size_t)(t->R * t->k.C) * sizeof(float));
    cr_assert_eq(clv_tblock_backward(&t->k, &t->a, &t->sh, &t->g, t->dout, t->dx, t->B, -1, &err), 0, "%s",
                 err.msg);
}

static void check_block(const clv_attn_spec *spec, int64_t T, const char *core)
{
    one_block t;
    one_block_init(&t, spec, 2, T, 8, 2);
    block_gradients(&t);
    gradcheck_result res;
    char buf[160];
    const gradcheck_opts opts = {.eps = 1e-2f, .floor = 1e-2, .max_probes = 60};
    cr_assert_eq(gradcheck_run(t.x, t.dx, t.N * t.k.C, block_loss, &t, &opts, &res), 0);
    cr_expect(res.max_rel < 2e-2, "%s core, dx: %s", core, gradcheck_str(&res, buf, sizeof buf));
    for (int i = 0; i < t.m.params.count; i++) {
        clv_param *p = t.m.params.items[i];
        float *g = malloc((size_t)p->numel * sizeof *g);
        memcpy(g, p->grad, (size_t)p->numel * sizeof *g);
        cr_assert_eq(gradcheck_run(p->data, g, p->numel, block_loss, &t, &opts, &res), 0);
        cr_expect(res.max_rel < 2e-2, "%s core, %s: %s", core, p->name, gradcheck_str(&res, buf, sizeof buf));
        free(g);
    }
    one_block_free(&t);
}

Test(block, global_core_gradients_by_finite_differences)
{
    const clv_attn_spec spec = {.kind = CLV_ATTN_GLOBAL};
    check_block(&spec, 5, "global");
}

Test(block, class_row_core_gradients_by_finite_differences)
{
    const clv_attn_spec spec = {.kind = CLV_ATTN_CLASS_ROW};
    check_block(&spec, 5, "class-row");
}

Test(block, windowed_core_gradients_by_finite_differences)
{
    /* a 4x4 grid in 2x2 windows shifted by 1: the mask, the roll and the bias table all take part */
    const clv_attn_spec spec = {.kind = CLV_ATTN_WINDOWED, .grid_h = 4, .grid_w = 4, .window = 2, .shift = 1};
    check_block(&spec, 16, "windowed");
}

Test(block, a_frozen_block_stops_the_walk_where_nothing_below_trains)
{
    const clv_attn_spec spec = {.kind = CLV_ATTN_GLOBAL};
    one_block t;
    one_block_init(&t, &spec, 2, 5, 8, 2);
    clv_err err = {{0}};
    for (int i = 0; i < t.m.params.count; i++)
        cr_assert_eq(clv_param_set_trainable(t.m.params.items[i], strstr(t.m.params.items[i]->name, "fc2") != NULL,
                                             &err),
                     0);
    cr_expect_eq(clv_tblock_lowest_trainable(&t.k), 5);
    block_loss(&t);
    memcpy(t.dout, t.r, (size_t)(t.R * t.k.C) * sizeof(float));
    memset(t.dx, 0x7f, (size_t)(t.N * t.k.C) * sizeof(float)); /* must stay untouched */
    cr_expect_eq(clv_tblock_backward(&t.k, &t.a, &t.sh, &t.g, t.dout, t.dx, t.B, 5, &err), 1, "%s", err.msg);
    cr_expect_eq(((uint32_t *)t.dx)[0], 0x7f7f7f7fu, "the input gradient was written");
    one_block_free(&t);
}

/* ---- memory: what a training forward keeps ---- */

Test(block, windowed_training_keeps_neither_probabilities_nor_output)
{
    const clv_attn_spec spec = {.kind = CLV_ATTN_WINDOWED, .grid_h = 4, .grid_w = 4, .window = 2, .shift = 1};
    one_block t;
    one_block_init(&t, &spec, 2, 16, 8, 2);
    /* the backward forms both again into the shared output and the gradients' dg */
    cr_expect_null(t.a.att, "the probabilities are kept");
    cr_expect_eq(t.a.attout, t.sh.attout, "the output is kept");
    const int64_t att = t.k.attn.ops->recomputed_att_floats(&t.k.attn, t.B);
    cr_expect_eq(t.g.att, t.g.dg, "the recomputed probabilities have a buffer of their own");
    cr_expect_leq(att, t.N * t.k.hidden, "the probabilities overflow dg");
    one_block_free(&t);
}

/* block 0 carved again over block 1 (the same block twice): its training forward spends block 1's
 * buffers, which block 1's forward then overwrites; forming it again before its backward gives the
 * gradients of a block that kept everything, bit for bit, for a layout of one output more */
static clv_tblock_acts again_a;

static void again_layout(void *ctx, clv_carver *c)
{
    one_block *t = ctx;
    fwd_layout(t, c);
    clv_tblock_carve_again(c, &again_a, &t->k, &t->a, t->B);
}

Test(block, a_block_formed_again_has_the_gradients_of_one_that_kept_everything)
{
    const clv_attn_spec spec = {.kind = CLV_ATTN_WINDOWED, .grid_h = 4, .grid_w = 4, .window = 2, .shift = 1};
    one_block t;
    one_block_init(&t, &spec, 2, 16, 8, 2);
    clv_err err = {{0}};
    const int64_t RC = t.R * t.k.C, NC = t.N * t.k.C;
    /* the reference: forward and backward over the block's own buffers */
    block_gradients(&t);
    float *dx_ref = fzeros(NC), *grads_ref = NULL;
    memcpy(dx_ref, t.dx, (size_t)NC * sizeof(float));
    int64_t total = 0;
    for (int i = 0; i < t.m.params.count; i++)
        total += t.m.params.items[i]->numel;
    grads_ref = fzeros(total);
    for (int i = 0, at = 0; i < t.m.params.count; at += (int)t.m.params.items[i]->numel, i++)
        memcpy(grads_ref + at, t.m.params.items[i]->grad, (size_t)t.m.params.items[i]->numel * sizeof(float));

    size_t kept, with_again; /* (counting leaves the pointers NULL: carve after it) */
    cr_assert_eq(clv_arena_measure(fwd_layout, &t, &kept), 0);
    cr_assert_eq(clv_arena_measure(again_layout, &t, &with_again), 0);
    cr_assert_eq(clv_arena_lay_out(&t.fwd, again_layout, &t, "test block again", &err), 0, "%s", err.msg);
    cr_assert_eq(clv_arena_lay_out(&t.bwd, bwd_layout, &t, "test block grads", &err), 0, "%s", err.msg); /* dqkv */
    cr_expect_eq(with_again, kept + (size_t)((RC * sizeof(float) + CLV_ARENA_ALIGN - 1) / CLV_ARENA_ALIGN * CLV_ARENA_ALIGN),
                 "a block formed again keeps more than its output");
    cr_expect_neq(again_a.xout, t.a.xout);
    cr_expect_eq(again_a.qkv, t.a.qkv);
    cr_expect_eq(again_a.h, t.a.h);

    clv_params_zero_grad(&t.m.params);
    cr_assert_eq(clv_tblock_forward(&t.k, &again_a, &t.sh, t.x, t.B, 1, &err), 0, "%s", err.msg);
    float *x1 = fzeros(NC);
    memcpy(x1, again_a.xout, (size_t)NC * sizeof(float));
    cr_assert_eq(clv_tblock_forward(&t.k, &t.a, &t.sh, x1, t.B, 1, &err), 0, "%s", err.msg); /* spends them */
    cr_assert_eq(clv_tblock_forward_again(&t.k, &again_a, &t.sh, t.B, &err), 0, "%s", err.msg);
    cr_expect_eq(memcmp(again_a.xout, x1, (size_t)NC * sizeof(float)), 0, "the output was written over");
    /* only block 0's gradients: block 1's backward is left out, the parameters are one set */
    clv_params_zero_grad(&t.m.params);
    memcpy(t.dout, t.r, (size_t)RC * sizeof(float));
    cr_assert_eq(clv_tblock_backward(&t.k, &again_a, &t.sh, &t.g, t.dout, t.dx, t.B, -1, &err), 0, "%s", err.msg);
    cr_expect_eq(memcmp(t.dx, dx_ref, (size_t)NC * sizeof(float)), 0, "dx differs");
    for (int i = 0, at = 0; i < t.m.params.count; at += (int)t.m.params.items[i]->numel, i++)
        cr_expect_eq(memcmp(grads_ref + at, t.m.params.items[i]->grad, (size_t)t.m.params.items[i]->numel * sizeof(float)),
                     0, "%s's gradient differs", t.m.params.items[i]->name);
    free(dx_ref), free(grads_ref), free(x1);
    one_block_free(&t);
}

/* bf16 training's own steps against the fp32 path's (reference_path): the forward keeps the
 * norms' outputs and the global core's output as their GEMMs' bf16 inputs, which the backward
 * reads instead of forming them again, and the core writes dqkv in bf16 only, with its column sums. The same gradients
 * bit for bit, after a second forward over another input (the copy is the last forward's), but for
 * qkv's bias, whose column sums add the same floats in another order (within 1e-6). */
Test(block, bf16_training_steps_give_the_gradients_of_the_fp32_paths_steps)
{
    const clv_attn_spec spec = {.kind = CLV_ATTN_GLOBAL};
    one_block t;
    one_block_init(&t, &spec, 3, 7, 16, 2);
    clv_err err = {{0}};
    clv_compute *c = clv_compute_create(CLV_PRECISION_BF16, 0, &err);
    cr_assert(c, "%s", err.msg);
    for (int i = 0; i < t.m.n_wlayers; i++)
        t.m.wlayers[i]->compute = c;
    const int keeps = clv_compute_bf16_onednn(c);
    if (!keeps)
        cr_log_info("no bf16 matmul on oneDNN here: proj converts its input, nothing is kept");
    const int64_t NC = t.N * t.k.C;
    int64_t total = 0;
    for (int i = 0; i < t.m.params.count; i++)
        total += t.m.params.items[i]->numel;
    float *x0 = fzeros(NC), *dx[2] = {fzeros(NC), fzeros(NC)}, *grads[2] = {fzeros(total), fzeros(total)};
    gradcheck_fill(x0, NC, 9, -1, 1);
    for (int again = 1; again >= 0; again--) {
        t.k.reference_path = again;
        cr_assert_eq(clv_tblock_forward(&t.k, &t.a, &t.sh, x0, t.B, 1, &err), 0, "%s", err.msg);
        memset(t.g.dqkv, 0x7f, (size_t)(3 * NC) * sizeof(float)); /* fp32 dqkv: written on the reference path only */
        block_gradients(&t); /* a forward over t.x, then the backward */
        cr_expect_eq(t.k.attout_h.rows, again || !keeps ? 0 : t.R, "reference_path %d: proj's input kept", again);
        cr_expect_eq(t.k.ln1_h.rows, again || !keeps ? 0 : t.N, "reference_path %d: norm1's output kept", again);
        cr_expect_eq(t.k.ln2_h.rows, again || !keeps ? 0 : t.R, "reference_path %d: norm2's output kept", again);
        cr_expect_eq(((const uint32_t *)t.g.dqkv)[0] == 0x7f7f7f7fu, !again && keeps,
                     "reference_path %d: fp32 dqkv written", again);
        memcpy(dx[again], t.dx, (size_t)NC * sizeof(float));
        for (int i = 0, at = 0; i < t.m.params.count; at += (int)t.m.params.items[i]->numel, i++)
            memcpy(grads[again] + at, t.m.params.items[i]->grad, (size_t)t.m.params.items[i]->numel * sizeof(float));
    }
    cr_expect_eq(memcmp(dx[0], dx[1], (size_t)NC * sizeof(float)), 0, "dx differs");
    for (int i = 0, at = 0; i < t.m.params.count; at += (int)t.m.params.items[i]->numel, i++) {
        const clv_param *p = t.m.params.items[i];
        if (strstr(p->name, "qkv.bias")) {
            const double d = rel_diff(grads[0] + at, grads[1] + at, p->numel, 1e-6);
            cr_expect(d < 1e-6, "%s's gradient: relative difference %.3g", p->name, d);
        } else
            cr_expect_eq(memcmp(grads[0] + at, grads[1] + at, (size_t)p->numel * sizeof(float)), 0,
                         "%s's gradient differs", p->name);
    }
    for (int i = 0; i < t.m.n_wlayers; i++)
        t.m.wlayers[i]->compute = NULL;
    clv_compute_free(c);
    free(x0), free(dx[0]), free(dx[1]), free(grads[0]), free(grads[1]);
    one_block_free(&t);
}

/* ---- the windowed core's index against the explicit roll and partition ---- */

Test(block, windowed_attention_through_the_index_is_roll_partition_and_back)
{
    const int64_t B = 2, H = 8, W = 8, ws = 4, shift = 2, N = ws * ws, nW = (H / ws) * (W / ws), C = 8, heads = 2;
    const int64_t rows = B * H * W;
    float *qkv = fzeros(rows * 3 * C), *dout = fzeros(rows * C), *bias = fzeros(heads * N * N);
    float *mask = fzeros(nW * N * N), *scratch = fzeros(clv_window_attention_scratch_floats(N, C, heads));
    int32_t *idx1 = malloc((size_t)(H * W) * sizeof *idx1), *idxB = malloc((size_t)rows * sizeof *idxB);
    gradcheck_fill(qkv, rows * 3 * C, 1, -1, 1);
    gradcheck_fill(dout, rows * C, 2, -1, 1);
    gradcheck_fill(bias, heads * N * N, 3, -0.5f, 0.5f);
    clv_swin_attention_mask(mask, H, W, ws, shift);
    clv_swin_window_index(idx1, 1, H, W, ws, shift);
    clv_swin_window_index(idxB, B, H, W, ws, shift);
    /* through the index, in image order */
    float *out = fzeros(rows * C), *att = fzeros(B * nW * heads * N * N), *dqkv = fzeros(rows * 3 * C);
    clv_window_attention_forward(out, att, qkv, bias, mask, idx1, nW, B * nW, N, C, heads, scratch);
    clv_window_attention_backward(dqkv, NULL, dout, qkv, att, idx1, nW, B * nW, N, C, heads, scratch);
    /* explicitly: roll and partition (gather), windows in order, reverse and roll back (scatter) */
    float *qkvw = fzeros(rows * 3 * C), *outw = fzeros(rows * C), *attw = fzeros(B * nW * heads * N * N);
    float *doutw = fzeros(rows * C), *dqkvw = fzeros(rows * 3 * C), *out2 = fzeros(rows * C);
    float *dqkv2 = fzeros(rows * 3 * C);
    clv_rows_gather(qkvw, qkv, idxB, rows, 3 * C);
    clv_rows_gather(doutw, dout, idxB, rows, C);
    clv_window_attention_forward(outw, attw, qkvw, bias, mask, NULL, nW, B * nW, N, C, heads, scratch);
    clv_window_attention_backward(dqkvw, NULL, doutw, qkvw, attw, NULL, nW, B * nW, N, C, heads, scratch);
    clv_rows_scatter_add(out2, outw, idxB, rows, C);
    clv_rows_scatter_add(dqkv2, dqkvw, idxB, rows, 3 * C);
    cr_expect_eq(memcmp(out, out2, (size_t)(rows * C) * sizeof(float)), 0, "outputs differ");
    cr_expect_eq(memcmp(att, attw, (size_t)(B * nW * heads * N * N) * sizeof(float)), 0, "probabilities differ");
    cr_expect_eq(memcmp(dqkv, dqkv2, (size_t)(rows * 3 * C) * sizeof(float)), 0, "dqkv differs");
    /* the output again from the kept probabilities is the forward's, bit for bit */
    float *again = fzeros(rows * C);
    clv_window_attention_output(again, att, qkv, idx1, nW, B * nW, N, C, heads, scratch);
    cr_expect_eq(memcmp(again, out, (size_t)(rows * C) * sizeof(float)), 0, "the output again differs");
    /* inference keeps no probabilities: the same output */
    float *inf = fzeros(rows * C);
    clv_window_attention_forward(inf, NULL, qkv, bias, mask, idx1, nW, B * nW, N, C, heads, scratch);
    cr_expect_eq(memcmp(inf, out, (size_t)(rows * C) * sizeof(float)), 0, "inference output differs");
    free(qkv), free(dout), free(bias), free(mask), free(scratch), free(idx1), free(idxB), free(out), free(att);
    free(dqkv), free(qkvw), free(outw), free(attw), free(doutw), free(dqkvw), free(out2), free(dqkv2), free(again);
    free(inf);
}

/* ---- names ---- */

Test(block, builders_register_timm_names_in_order)
{
    const clv_attn_spec spec = {.kind = CLV_ATTN_WINDOWED, .grid_h = 4, .grid_w = 4, .window = 2, .shift = 0};
    one_block t;
    one_block_init(&t, &spec, 1, 16, 8, 2);
    static const char *const names[] = {
        "blocks.3.norm1.weight", "blocks.3.norm1.bias", "blocks.3.attn.relative_position_bias_table",
        "blocks.3.attn.qkv.weight", "blocks.3.attn.qkv.bias", "blocks.3.attn.proj.weight", "blocks.3.attn.proj.bias",
        "blocks.3.norm2.weight", "blocks.3.norm2.bias", "blocks.3.mlp.fc1.weight", "blocks.3.mlp.fc1.bias",
        "blocks.3.mlp.fc2.weight", "blocks.3.mlp.fc2.bias"};
    cr_assert_eq(t.m.params.count, 13);
    for (int i = 0; i < 13; i++)
        cr_expect_str_eq(t.m.params.items[i]->name, names[i]);
    static const char *const layers[] = {"blocks.3.attn.qkv", "blocks.3.attn.proj", "blocks.3.mlp.fc1",
                                         "blocks.3.mlp.fc2"};
    cr_assert_eq(t.m.n_wlayers, 4);
    for (int i = 0; i < 4; i++)
        cr_expect_str_eq(t.m.wlayers[i]->name, layers[i]);
    one_block_free(&t);
}

Test(block, a_name_too_long_is_refused_with_its_name)
{
    clv_model m = {0};
    clv_params_init(&m.params);
    snprintf(m.info.name, sizeof m.info.name, "long");
    clv_err err = {{0}};
    clv_builder b;
    clv_builder_init(&b, &m, &err);
    char part[CLV_NAME_LEN];
    memset(part, 'x', sizeof part - 1);
    part[sizeof part - 1] = '\0';
    clv_builder_push(&b, "%s", part);
    clv_norm n;
    cr_expect_eq(clv_build_norm(&b, &n, "norm", 4, 1e-5f), -1);
    cr_expect(strstr(err.msg, "longer than"), "%s", err.msg);
    cr_expect_eq(m.params.count, 0);
    clv_params_free(&m.params);
}
