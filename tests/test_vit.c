/* Tests of the ViT backbone, the task head and the model registry against
 * PyTorch (fixtures made by tools/make_vit_fixtures.py), finite differences
 * and published figures. */
#include <criterion/criterion.h>

#include "clvit/model.h"
#include "clvit/safetensors.h"
#include "fixture_tensors.h"
#include "gradcheck.h"
#include "vit_formula.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MICRO_PATH "tests/fixtures/vit_micro.safetensors"
#define NANO_PATH "tests/fixtures/vit_nano_logits.safetensors"

static const clv_vit_config micro_cfg = {8, 4, 3, 16, 2, 2, 64, 1e-6f};

/* ---- helpers ---- */

static double max_abs_diff(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= d))
            d = isnan(e) ? INFINITY : e;
    }
    return d;
}

static void set_all_trainable(clv_params *ps, int trainable)
{
    clv_err err = {{0}};
    for (int i = 0; i < ps->count; i++)
        cr_assert_eq(clv_param_set_trainable(ps->items[i], trainable, &err), 0, "%s", err.msg);
}

/* The micro model of fixture 1 with the fixture's weights, and its x and R. */
typedef struct micro {
    clv_safetensors st;
    clv_model *m;
    float *x, *R, *feats_ref;
    float feats[2 * 16];
} micro;

static void micro_open(micro *mc)
{
    clv_err err = {{0}};
    memset(mc, 0, sizeof *mc);
    cr_assert_eq(clv_st_open(&mc->st, MICRO_PATH, &err), 0, "%s", err.msg);
    mc->m = clv_vit_create("vit_micro", &micro_cfg, &err);
    cr_assert(mc->m, "%s", err.msg);
    cr_assert_eq(clv_st_load_params(&mc->st, &mc->m->params, NULL, 0, &err), 0, "%s", err.msg);
    mc->x = read_tensor(&mc->st, "x", 2 * 3 * 8 * 8);
    mc->R = read_tensor(&mc->st, "R", 2 * 16);
    mc->feats_ref = read_tensor(&mc->st, "feats", 2 * 16);
}

static void micro_close(micro *mc)
{
    clv_model_free(mc->m);
    clv_st_close(&mc->st);
    free(mc->x);
    free(mc->R);
    free(mc->feats_ref);
}

/* grad of every trainable parameter (and of x if dx) against the fixture;
 * frozen parameters' grad buffers must still hold `sentinel`. */
static void check_micro_grads(micro *mc, const float *dx, float sentinel)
{
    clv_params *ps = &mc->m->params;
    char name[CLV_NAME_LEN + 8];
    for (int i = 0; i < ps->count; i++) {
        clv_param *p = ps->items[i];
        if (!p->grad)
            continue;
        if (!p->trainable) {
            for (int64_t j = 0; j < p->numel; j++)
                cr_assert_eq(p->grad[j], sentinel, "frozen %s got a gradient at [%lld]", p->name, (long long)j);
            continue;
        }
        snprintf(name, sizeof name, "grad.%s", p->name);
        float *ref = read_tensor(&mc->st, name, p->numel);
        double d = rel_diff(p->grad, ref, p->numel, 1e-6);
        cr_expect(d < 1e-4, "%s: relative error %.3g", name, d);
        free(ref);
    }
    if (dx) {
        float *ref = read_tensor(&mc->st, "grad.x", 2 * 3 * 8 * 8);
        double d = rel_diff(dx, ref, 2 * 3 * 8 * 8, 1e-6);
        cr_expect(d < 1e-4, "grad.x: relative error %.3g", d);
        free(ref);
    }
}

/* ---- fixture 1: forward and gradients against PyTorch ---- */

Test(vit, micro_forward_matches_pytorch)
{
    micro mc;
    clv_err err = {{0}};
    micro_open(&mc);
    cr_assert_eq(mc.m->ops->forward(mc.m, mc.x, 2, mc.feats, &err), 0, "%s", err.msg);
    double d = max_abs_diff(mc.feats, mc.feats_ref, 2 * 16);
    cr_expect(d < 1e-5, "feats differ from PyTorch by %.3g", d);
    micro_close(&mc);
}

/* Inference runs a large batch in slices of images (2048 token rows): each
 * image's features are those of one unsliced training forward. */
Test(vit, inference_in_slices_matches_one_forward)
{
    micro mc;
    clv_err err = {{0}};
    micro_open(&mc);
    const int64_t B = 900, img = 3 * 8 * 8; /* T = 5: slices of 409 images, the last one short */
    float *x = malloc((size_t)(B * img) * sizeof(float)), *fi = malloc((size_t)(B * 16) * sizeof(float));
    float *ft = malloc((size_t)(B * 16) * sizeof(float));
    cr_assert(x && fi && ft);
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < img; j++)
            x[b * img + j] = mc.x[(b % 2) * img + j] * (1.0f + 0.001f * (float)(b % 97)) - 0.01f * (float)(b % 13);
    mc.m->training = 1;
    cr_assert_eq(mc.m->ops->forward(mc.m, x, B, ft, &err), 0, "%s", err.msg);
    mc.m->training = 0;
    cr_assert_eq(mc.m->ops->forward(mc.m, x, B, fi, &err), 0, "%s", err.msg);
    double d = max_abs_diff(fi, ft, B * 16);
    cr_expect(d < 1e-5, "sliced inference differs from one forward by %.3g", d);
    cr_expect(max_abs_diff(fi, mc.feats_ref, 16) < 1e-5, "image 0 (unperturbed) differs from PyTorch");
    free(x), free(fi), free(ft);
    micro_close(&mc);
}

/* Inference (training = 0) reuses one set of buffers for every block: the
 * same features bit for bit, at any batch, before or after a training
 * forward; a backward after it is refused; training afterwards is exact. */
Test(vit, inference_forward_is_the_training_forward)
{
    micro mc;
    clv_err err = {{0}};
    float train_feats[2 * 16], dx[2 * 3 * 8 * 8] = {0};
    micro_open(&mc);
    mc.m->training = 0;
    cr_assert_eq(mc.m->ops->forward(mc.m, mc.x, 2, mc.feats, &err), 0, "%s", err.msg);
    cr_expect(max_abs_diff(mc.feats, mc.feats_ref, 2 * 16) < 1e-5, "inference feats differ from PyTorch");
    cr_expect_neq(mc.m->ops->backward(mc.m, mc.R, NULL, &err), 0, "a backward after an inference forward");
    cr_expect(strstr(err.msg, "training") != NULL, "%s", err.msg);

    mc.m->training = 1;
    set_all_trainable(&mc.m->params, 1);
    clv_params_zero_grad(&mc.m->params);
    cr_assert_eq(mc.m->ops->forward(mc.m, mc.x, 2, train_feats, &err), 0, "%s", err.msg);
    cr_expect_eq(memcmp(train_feats, mc.feats, sizeof train_feats), 0, "training and inference forwards differ");

    float one[16];
    mc.m->training = 0;
    cr_assert_eq(mc.m->ops->forward(mc.m, mc.x + 3 * 8 * 8, 1, one, &err), 0, "%s", err.msg);
    cr_expect(max_abs_diff(one, mc.feats + 16, 16) < 1e-5, "image 2 alone differs from image 2 in a batch of 2");
    mc.m->training = 1;
    cr_assert_eq(mc.m->ops->forward(mc.m, mc.x, 2, train_feats, &err), 0, "%s", err.msg);
    cr_assert_eq(mc.m->ops->backward(mc.m, mc.R, dx, &err), 0, "%s", err.msg);
    check_micro_grads(&mc, dx, 0.0f);
    micro_close(&mc);
}

Test(vit, micro_gradients_match_pytorch)
{
    micro mc;
    clv_err err = {{0}};
    float dx[2 * 3 * 8 * 8] = {0};
    micro_open(&mc);
    set_all_trainable(&mc.m->params, 1);
    clv_params_zero_grad(&mc.m->params);
    cr_assert_eq(mc.m->ops->forward(mc.m, mc.x, 2, mc.feats, &err), 0, "%s", err.msg);
    cr_assert_eq(mc.m->ops->backward(mc.m, mc.R, dx, &err), 0, "%s", err.msg);
    check_micro_grads(&mc, dx, 0.0f);

    /* a backward consumes the forward's activations: a second one is refused, not silently wrong */
    clv_param *w = clv_params_find(&mc.m->params, "blocks.0.attn.qkv.weight");
    cr_assert(w);
    float g0 = w->grad[5];
    cr_expect_neq(mc.m->ops->backward(mc.m, mc.R, NULL, &err), 0, "a second backward after one forward");
    cr_expect(strstr(err.msg, "since the last backward") != NULL, "message: %s", err.msg);
    cr_expect_eq(w->grad[5], g0, "the refused backward changed a gradient");
    /* gradients accumulate over forward + backward pairs: a second pair doubles them */
    cr_assert_eq(mc.m->ops->forward(mc.m, mc.x, 2, mc.feats, &err), 0, "%s", err.msg);
    cr_assert_eq(mc.m->ops->backward(mc.m, mc.R, NULL, &err), 0, "%s", err.msg);
    cr_expect(fabsf(w->grad[5] - 2.0f * g0) <= 1e-6f * fabsf(g0) + 1e-9f, "%g vs 2 x %g", w->grad[5], g0);
    micro_close(&mc);
}

/* Frozen parameters get nothing; what still trains is exact, also when
 * backward stops early (dx NULL, lower layers frozen). */
Test(vit, frozen_params_get_no_gradient)
{
    static const char *const trains[][4] = {
        /* only the top of the network */
        {"blocks.1.mlp.fc2.weight", "norm.weight", NULL},
        /* a bias alone in the middle: backward must reach it */
        {"blocks.1.attn.proj.bias", NULL},
        /* the lowest LayerNorm and the final one */
        {"blocks.0.norm1.bias", "norm.bias", NULL},
        /* the embedding without the patch projection */
        {"pos_embed", "cls_token", NULL},
        /* patch projection only */
        {"patch_embed.proj.weight", NULL},
    };
    const float sentinel = 12345.0f;
    clv_err err = {{0}};
    for (size_t c = 0; c < sizeof trains / sizeof trains[0]; c++) {
        micro mc;
        micro_open(&mc);
        set_all_trainable(&mc.m->params, 1); /* allocates every grad buffer */
        for (int i = 0; i < mc.m->params.count; i++) {
            clv_param *p = mc.m->params.items[i];
            p->trainable = 0;
            for (int j = 0; trains[c][j]; j++)
                if (strcmp(p->name, trains[c][j]) == 0)
                    p->trainable = 1;
            for (int64_t j = 0; j < p->numel; j++)
                p->grad[j] = p->trainable ? 0.0f : sentinel;
        }
        cr_assert_eq(mc.m->ops->forward(mc.m, mc.x, 2, mc.feats, &err), 0, "%s", err.msg);
        cr_assert_eq(mc.m->ops->backward(mc.m, mc.R, NULL, &err), 0, "%s", err.msg);
        check_micro_grads(&mc, NULL, sentinel);
        micro_close(&mc);
    }
}

/* ---- finite differences over the whole micro model ---- */

typedef struct fd_ctx {
    clv_model *m;
    const float *x, *R;
    float feats[2 * 16];
} fd_ctx;

static double micro_loss(void *p)
{
    fd_ctx *c = p;
    clv_err err = {{0}};
    cr_assert_eq(c->m->ops->forward(c->m, c->x, 2, c->feats, &err), 0, "%s", err.msg);
    return gradcheck_dot(c->feats, c->R, 2 * 16);
}

Test(vit, finite_differences)
{
    micro mc;
    clv_err err = {{0}};
    float dx[2 * 3 * 8 * 8] = {0};
    char buf[256];
    micro_open(&mc);
    set_all_trainable(&mc.m->params, 1);
    clv_params_zero_grad(&mc.m->params);
    cr_assert_eq(mc.m->ops->forward(mc.m, mc.x, 2, mc.feats, &err), 0, "%s", err.msg);
    cr_assert_eq(mc.m->ops->backward(mc.m, mc.R, dx, &err), 0, "%s", err.msg);

    fd_ctx ctx = {.m = mc.m, .x = mc.x, .R = mc.R};
    gradcheck_opts o = gradcheck_defaults();
    o.eps = 1e-2f;
    o.max_probes = 4;
    gradcheck_result res;
    /* every parameter kind: embeddings, conv, LayerNorms, every Linear of every block */
    for (int i = 0; i < mc.m->params.count; i++) {
        clv_param *p = mc.m->params.items[i];
        cr_assert_eq(gradcheck_run(p->data, p->grad, p->numel, micro_loss, &ctx, &o, &res), 0);
        cr_expect(res.max_rel < 1e-2, "%s: %s", p->name, gradcheck_str(&res, buf, sizeof buf));
    }
    /* the input gradient is small against the forward's float rounding: a larger step */
    o.eps = 3e-2f;
    o.max_probes = 16;
    cr_assert_eq(gradcheck_run(mc.x, dx, 2 * 3 * 8 * 8, micro_loss, &ctx, &o, &res), 0);
    cr_expect(res.max_rel < 1e-2, "x: %s", gradcheck_str(&res, buf, sizeof buf));
    micro_close(&mc);
}

/* ---- fixture 2: a registry model end to end ---- */

Test(vit, nano_logits_match_pytorch)
{
    clv_err err = {{0}};
    clv_model *m = clv_model_create("vit_nano_patch4_32", &err);
    cr_assert(m, "%s", err.msg);
    clv_head h;
    cr_assert_eq(clv_head_init(&h, m->info.feat_dim, 10, 0, 0, &err), 0, "%s", err.msg);

    vit_formula_fill(m, &h);

    enum { B = 2, NX = B * 3 * 32 * 32 };
    float *x = malloc(NX * sizeof(float));
    cr_assert(x);
    for (int j = 0; j < NX; j++)
        x[j] = (float)sin(0.0007 * (double)j * (double)j + 0.3);
    float feats[B * 64], logits[B * 10];
    cr_assert_eq(m->ops->forward(m, x, B, feats, &err), 0, "%s", err.msg);
    clv_head_forward(&h, logits, feats, B);

    clv_safetensors st;
    cr_assert_eq(clv_st_open(&st, NANO_PATH, &err), 0, "%s", err.msg);
    float *ref = read_tensor(&st, "logits", B * 10);
    double d = max_abs_diff(logits, ref, B * 10);
    cr_expect(d < 1e-4, "logits differ from PyTorch by %.3g (logit[0] %g vs %g)", d, logits[0], ref[0]);
    free(ref);
    clv_st_close(&st);
    free(x);
    clv_head_free(&h);
    clv_model_free(m);
}

/* ---- batching ---- */

Test(vit, batch_of_one_equals_batch_of_three)
{
    clv_err err = {{0}};
    clv_model *m = clv_model_create("vit_nano_patch4_32", &err);
    cr_assert(m, "%s", err.msg);
    m->ops->init(m, 7);
    enum { IMG = 3 * 32 * 32, D = 64 };
    float *x = malloc(3 * IMG * sizeof(float));
    cr_assert(x);
    gradcheck_fill(x, 3 * IMG, 11, -2.0f, 2.0f);
    float one[3][D], three[3 * D];
    /* batch 1 first, so that batch 3 re-allocates the activations */
    cr_assert_eq(m->ops->forward(m, x + IMG, 1, one[1], &err), 0, "%s", err.msg);
    cr_assert_eq(m->ops->forward(m, x, 3, three, &err), 0, "%s", err.msg);
    cr_assert_eq(m->ops->forward(m, x, 1, one[0], &err), 0, "%s", err.msg);
    cr_assert_eq(m->ops->forward(m, x + 2 * IMG, 1, one[2], &err), 0, "%s", err.msg);
    for (int b = 0; b < 3; b++) {
        double d = max_abs_diff(one[b], three + b * D, D);
        cr_expect(d < 1e-5, "image %d: batch 1 and batch 3 differ by %.3g", b, d);
    }
    /* and the images do differ from each other */
    cr_expect(max_abs_diff(three, three + D, D) > 1e-2);
    free(x);
    clv_model_free(m);
}

Test(vit, backward_before_forward_fails)
{
    clv_err err = {{0}};
    clv_model *m = clv_vit_create("vit_micro", &micro_cfg, &err);
    cr_assert(m, "%s", err.msg);
    float df[16] = {0};
    cr_expect_eq(m->ops->backward(m, df, NULL, &err), -1);
    cr_expect(strstr(err.msg, "forward"), "%s", err.msg);
    cr_expect_eq(m->ops->forward(m, df, 0, df, &err), -1);
    clv_model_free(m);
}

/* ---- init, info, registry, head ---- */

Test(vit, init_follows_timm)
{
    clv_err err = {{0}};
    clv_model *m = clv_model_create("vit_nano_patch4_32", &err);
    cr_assert(m, "%s", err.msg);
    m->ops->init(m, 3);
    clv_params *ps = &m->params;
    clv_param *w = clv_params_find(ps, "blocks.2.mlp.fc1.weight");
    cr_assert(w);
    double s = 0, s2 = 0, amax = 0;
    for (int64_t i = 0; i < w->numel; i++) {
        s += w->data[i];
        s2 += (double)w->data[i] * w->data[i];
        amax = fmax(amax, fabs(w->data[i]));
    }
    const double sd = sqrt(s2 / (double)w->numel - (s / (double)w->numel) * (s / (double)w->numel));
    /* N(0, .02) truncated at +-2 std has std 0.0176 */
    cr_expect(sd > 0.0166 && sd < 0.0186, "fc1 std %g", sd);
    cr_expect(amax <= 0.04 + 1e-7, "fc1 max %g", amax);
    cr_expect_eq(clv_params_find(ps, "blocks.2.mlp.fc1.bias")->data[3], 0.0f);
    cr_expect_eq(clv_params_find(ps, "blocks.1.norm2.weight")->data[7], 1.0f);
    cr_expect_eq(clv_params_find(ps, "norm.bias")->data[7], 0.0f);
    clv_param *cls = clv_params_find(ps, "cls_token");
    cr_expect(fabsf(cls->data[0]) < 1e-5f && cls->data[0] != 0.0f, "cls %g", cls->data[0]);
    clv_param *pe = clv_params_find(ps, "patch_embed.proj.weight");
    const float bound = 1.0f / sqrtf(48.0f);
    double pmax = 0;
    for (int64_t i = 0; i < pe->numel; i++)
        pmax = fmax(pmax, fabs(pe->data[i]));
    cr_expect(pmax <= bound && pmax > 0.9 * bound, "patch conv max %g bound %g", pmax, bound);
    cr_expect(clv_params_find(ps, "pos_embed")->no_decay);
    cr_expect(clv_params_find(ps, "blocks.0.attn.qkv.bias")->no_decay);
    cr_expect(!clv_params_find(ps, "blocks.0.attn.qkv.weight")->no_decay);

    /* deterministic in the seed */
    float a = w->data[100];
    m->ops->init(m, 3);
    cr_expect_eq(w->data[100], a);
    m->ops->init(m, 4);
    cr_expect_neq(w->data[100], a);
    clv_model_free(m);
}

Test(vit, weight_layers_in_forward_order)
{
    clv_err err = {{0}};
    clv_model *m = clv_model_create("vit_nano_patch4_32", &err);
    cr_assert(m, "%s", err.msg);
    cr_assert_eq(m->n_wlayers, 1 + 4 * 4);
    cr_expect_str_eq(m->wlayers[0]->name, "patch_embed.proj");
    cr_expect_eq(m->wlayers[0]->out, 64);
    cr_expect_eq(m->wlayers[0]->in, 48);
    cr_expect_str_eq(m->wlayers[5]->name, "blocks.1.attn.qkv");
    cr_expect_str_eq(m->wlayers[8]->name, "blocks.1.mlp.fc2");
    cr_expect_eq(m->wlayers[8]->in, 256);
    cr_expect_eq(m->wlayers[8]->weight, clv_params_find(&m->params, "blocks.1.mlp.fc2.weight"));
    cr_expect_eq(clv_params_count(&m->params, 0), 207424); /* timm's count for this shape */
    clv_model_free(m);
}

Test(vit, registry)
{
    static const char *const names[] = {"vit_nano_patch4_32", "vit_tiny_patch4_32", "vit_tiny_patch16_224",
                                        "vit_small_patch16_224", "vit_base_patch16_224"};
    static const int dims[] = {64, 192, 192, 384, 768};
    clv_err err = {{0}};
    cr_assert_geq(clv_model_registry_count(), 5);
    /* every entry builds, and the listing's summary is the built model's */
    for (int i = 0; i < clv_model_registry_count(); i++) {
        clv_model *m = clv_model_create(clv_model_registry_name(i), &err);
        cr_assert(m, "%s", err.msg);
        cr_expect_str_eq(clv_model_registry_summary(i), m->info.summary);
        cr_expect_str_eq(m->info.name, clv_model_registry_name(i));
        cr_expect_gt(m->n_wlayers, 0);
        clv_model_free(m);
    }
    for (int i = 0; i < 5; i++) {
        cr_expect_str_eq(clv_model_registry_name(i), names[i]);
        clv_model *m = clv_model_create(names[i], &err);
        cr_assert(m, "%s", err.msg);
        cr_expect_str_eq(m->info.name, names[i]);
        cr_expect_str_eq(m->info.family, "vit");
        cr_expect_eq(m->info.feat_dim, dims[i]);
        /* the listing's summary is the built model's */
        cr_expect_str_eq(clv_model_registry_summary(i), m->info.summary);
        if (i == 4)
            /* ViT-B/16 at 224: 17.56 G multiply-adds (fvcore / timm tables), 2 FLOPs each */
            cr_expect(fabs(m->info.flops_per_image / 2.0 - 17.56e9) < 0.01 * 17.56e9, "%g",
                      m->info.flops_per_image);
        clv_model_free(m);
    }
    cr_expect_null(clv_model_registry_name(clv_model_registry_count()));
    cr_expect_null(clv_model_create("vit_huge_patch14_224", &err));
    cr_expect(strstr(err.msg, "vit_huge_patch14_224") && strstr(err.msg, "vit_tiny_patch4_32"), "%s", err.msg);
    cr_expect_str_eq(clv_model_registry_summary(4), "ViT dim 768 depth 12 heads 12 patch 16 224x224, 85.8M params");
}

Test(vit, head)
{
    clv_err err = {{0}};
    clv_head h;
    cr_assert_eq(clv_head_init(&h, 4, 3, 9, 2, &err), 0, "%s", err.msg);
    clv_param *w = clv_params_find(&h.params, "head.weight"), *b = clv_params_find(&h.params, "head.bias");
    cr_assert(w && b);
    cr_expect_eq(w->shape[0], 3);
    cr_expect_eq(w->shape[1], 4);
    cr_expect(w->trainable && b->trainable && b->no_decay);
    for (int i = 0; i < 12; i++)
        cr_expect(fabsf(w->data[i]) <= 0.04f && w->data[i] != 0.0f);
    clv_head other;
    cr_assert_eq(clv_head_init(&other, 4, 3, 9, 3, &err), 0, "%s", err.msg);
    cr_expect_neq(other.params.items[0]->data[0], w->data[0], "tasks draw different heads");
    clv_head_free(&other);

    for (int i = 0; i < 3; i++)
        b->data[i] = 0.5f * (float)i;
    const float f[2 * 4] = {1, 2, 3, 4, -1, 0.5f, 0, 2};
    float logits[2 * 3];
    clv_head_forward(&h, logits, f, 2);
    for (int n = 0; n < 2; n++)
        for (int k = 0; k < 3; k++) {
            float e = b->data[k];
            for (int d = 0; d < 4; d++)
                e += f[n * 4 + d] * w->data[k * 4 + d];
            cr_expect_float_eq(logits[n * 3 + k], e, 1e-6f);
        }
    const float dl[2 * 3] = {1, -1, 0.5f, 0, 2, -3};
    float df[2 * 4] = {0};
    clv_params_zero_grad(&h.params);
    clv_head_backward(&h, df, dl, f, 2);
    for (int n = 0; n < 2; n++)
        for (int d = 0; d < 4; d++) {
            float e = 0;
            for (int k = 0; k < 3; k++)
                e += dl[n * 3 + k] * w->data[k * 4 + d];
            cr_expect_float_eq(df[n * 4 + d], e, 1e-6f);
        }
    cr_expect_float_eq(b->grad[2], 0.5f - 3.0f, 1e-6f);
    cr_expect_float_eq(w->grad[1 * 4 + 3], -1.0f * 4 + 2.0f * 2, 1e-6f);
    clv_head_free(&h);
}

/* ---- adapter slots: a per-output scale on two layers ---- */

/* A test adapter: W_eff = W, per-output scale s, collects ds. */
typedef struct scale_state {
    float s[64], ds[64];
} scale_state;

static const float *sa_weight(clv_adapter *a, const clv_wlayer *l) { return l->weight->data; }
static const float *sa_scale(clv_adapter *a, const clv_wlayer *l) { return ((scale_state *)a->state)->s; }
static int sa_backward(clv_adapter *a, const clv_wlayer *l, const float *x, const float *dy, const float *s,
                       int64_t N, const float *ds, clv_err *err)
{
    scale_state *st = a->state;
    cr_assert(ds);
    for (int64_t c = 0; c < l->out; c++)
        st->ds[c] += ds[c];
    return 0;
}
static const clv_adapter_ops sa_ops = {.kind = "test-scale", .weight = sa_weight, .scale = sa_scale,
                                       .backward = sa_backward};

Test(vit, scaled_layers_get_saved_outputs)
{
    micro mc;
    clv_err err = {{0}};
    char buf[256];
    micro_open(&mc);
    clv_wlayer *pe = mc.m->wlayers[0], *fc1 = mc.m->wlayers[7];
    cr_assert_str_eq(fc1->name, "blocks.1.mlp.fc1");
    scale_state s_pe, s_fc1;
    clv_adapter a_pe = {&sa_ops, &s_pe}, a_fc1 = {&sa_ops, &s_fc1};
    for (int c = 0; c < 64; c++)
        s_pe.s[c] = s_fc1.s[c] = 1.0f;

    /* unit scales change nothing */
    pe->adapter = &a_pe;
    fc1->adapter = &a_fc1;
    cr_assert_eq(mc.m->ops->forward(mc.m, mc.x, 2, mc.feats, &err), 0, "%s", err.msg);
    double d = max_abs_diff(mc.feats, mc.feats_ref, 2 * 16);
    cr_expect(d < 1e-5, "unit scales moved feats by %.3g", d);

    /* ds by finite differences, everything else frozen: backward must still reach the patch embedding */
    gradcheck_fill(s_pe.s, 16, 21, 0.5f, 1.5f);
    gradcheck_fill(s_fc1.s, 64, 22, 0.5f, 1.5f);
    memset(s_pe.ds, 0, sizeof s_pe.ds);
    memset(s_fc1.ds, 0, sizeof s_fc1.ds);
    cr_assert_eq(mc.m->ops->forward(mc.m, mc.x, 2, mc.feats, &err), 0, "%s", err.msg);
    cr_assert_eq(mc.m->ops->backward(mc.m, mc.R, NULL, &err), 0, "%s", err.msg);
    fd_ctx ctx = {.m = mc.m, .x = mc.x, .R = mc.R};
    gradcheck_opts o = gradcheck_defaults();
    gradcheck_result res;
    cr_assert_eq(gradcheck_run(s_pe.s, s_pe.ds, 16, micro_loss, &ctx, &o, &res), 0);
    cr_expect(res.max_rel < 1e-2, "patch_embed scale: %s", gradcheck_str(&res, buf, sizeof buf));
    o.max_probes = 16;
    cr_assert_eq(gradcheck_run(s_fc1.s, s_fc1.ds, 64, micro_loss, &ctx, &o, &res), 0);
    cr_expect(res.max_rel < 1e-2, "fc1 scale: %s", gradcheck_str(&res, buf, sizeof buf));

    /* qkv and fc1 keep their outputs: under a scale with no zero their ds comes from y / s (no saved
     * z); with a masked-out (zero) entry, as Mask-RKR's F can have, they keep z. All by finite
     * differences, in a full-row block and in the class-row block. */
    clv_wlayer *qkv0 = mc.m->wlayers[1], *qkv1 = mc.m->wlayers[5], *fc10 = mc.m->wlayers[3];
    cr_assert_str_eq(qkv1->name, "blocks.1.attn.qkv");
    cr_assert_str_eq(fc10->name, "blocks.0.mlp.fc1");
    scale_state s_q0, s_q1, s_f0;
    clv_adapter a_q0 = {&sa_ops, &s_q0}, a_q1 = {&sa_ops, &s_q1}, a_f0 = {&sa_ops, &s_f0};
    gradcheck_fill(s_q0.s, 64, 23, 0.5f, 1.5f);
    gradcheck_fill(s_q1.s, 64, 24, 0.5f, 1.5f);
    gradcheck_fill(s_f0.s, 64, 25, 0.5f, 1.5f);
    s_q0.s[5] = 0.0f;
    s_fc1.s[9] = 0.0f;
    memset(s_q0.ds, 0, sizeof s_q0.ds);
    memset(s_q1.ds, 0, sizeof s_q1.ds);
    memset(s_f0.ds, 0, sizeof s_f0.ds);
    qkv0->adapter = &a_q0;
    qkv1->adapter = &a_q1;
    fc10->adapter = &a_f0;
    cr_assert(!clv_wlayer_scale_invertible(qkv0) && clv_wlayer_scale_invertible(qkv1));
    cr_assert(clv_wlayer_scale_invertible(fc10) && !clv_wlayer_scale_invertible(fc1));
    memset(s_pe.ds, 0, sizeof s_pe.ds);
    memset(s_fc1.ds, 0, sizeof s_fc1.ds);
    cr_assert_eq(mc.m->ops->forward(mc.m, mc.x, 2, mc.feats, &err), 0, "%s", err.msg);
    cr_assert_eq(mc.m->ops->backward(mc.m, mc.R, NULL, &err), 0, "%s", err.msg);
    o.max_probes = 24;
    cr_assert_eq(gradcheck_run(s_q1.s, s_q1.ds, 48, micro_loss, &ctx, &o, &res), 0);
    cr_expect(res.max_rel < 1e-2, "qkv scale from its output: %s", gradcheck_str(&res, buf, sizeof buf));
    cr_assert_eq(gradcheck_run(s_q0.s, s_q0.ds, 48, micro_loss, &ctx, &o, &res), 0);
    cr_expect(res.max_rel < 1e-2, "qkv scale with a zero entry: %s", gradcheck_str(&res, buf, sizeof buf));
    cr_expect(fabsf(s_q0.ds[5]) > 0, "a masked-out entry still has a gradient");
    cr_assert_eq(gradcheck_run(s_f0.s, s_f0.ds, 64, micro_loss, &ctx, &o, &res), 0);
    cr_expect(res.max_rel < 1e-2, "fc1 scale from its output: %s", gradcheck_str(&res, buf, sizeof buf));
    cr_assert_eq(gradcheck_run(s_fc1.s, s_fc1.ds, 64, micro_loss, &ctx, &o, &res), 0);
    cr_expect(res.max_rel < 1e-2, "class-row fc1 scale with a zero entry: %s", gradcheck_str(&res, buf, sizeof buf));
    /* an entry zeroed between forward and backward: refused, not divided by */
    cr_assert_eq(mc.m->ops->forward(mc.m, mc.x, 2, mc.feats, &err), 0, "%s", err.msg);
    s_q1.s[7] = 0.0f;
    cr_expect_eq(mc.m->ops->backward(mc.m, mc.R, NULL, &err), -1);
    cr_expect(strstr(err.msg, "blocks.1.attn.qkv"), "%s", err.msg);
    qkv0->adapter = qkv1->adapter = fc10->adapter = NULL;

    /* a scale that appears after the forward has no saved output: refused */
    cr_assert_eq(mc.m->ops->forward(mc.m, mc.x, 2, mc.feats, &err), 0, "%s", err.msg);
    clv_wlayer *qkv = mc.m->wlayers[1];
    scale_state s_qkv;
    clv_adapter a_qkv = {&sa_ops, &s_qkv};
    qkv->adapter = &a_qkv;
    cr_expect_eq(mc.m->ops->backward(mc.m, mc.R, NULL, &err), -1);
    cr_expect(strstr(err.msg, "blocks.0.attn.qkv"), "%s", err.msg);
    qkv->adapter = NULL;
    pe->adapter = fc1->adapter = NULL;
    micro_close(&mc);
}
