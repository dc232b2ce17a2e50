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
#include "clvit/safetensors.h"
#include "clvit/transformer_block.h"
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

static float *read_tensor(const clv_safetensors *st, const char *name, int64_t numel)
{
    clv_err err = {{0}};
    const clv_st_tensor *t = clv_st_find(st, name);
    cr_assert(t, "%s: no tensor %s", st->path, name);
    cr_assert_eq(t->numel, numel, "%s: %s has %lld elements, want %lld", st->path, name, (long long)t->numel,
                 (long long)numel);
    float *p = malloc((size_t)numel * sizeof(float));
    cr_assert(p);
    cr_assert_eq(clv_st_read_f32(st, t, p, numel, &err), 0, "%s", err.msg);
    return p;
}

/* max |a - b| / max(floor, max |b|) */
static double rel_diff(const float *a, const float *b, int64_t n, double floor)
{
    double bmax = floor, d = 0;
    for (int64_t i = 0; i < n; i++)
        bmax = fmax(bmax, fabs((double)b[i]));
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= d))
            d = isnan(e) ? INFINITY : e;
    }
    return d / bmax;
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

Test(block, vit_is_the_old_drivers_bit_for_bit)
{
    clv_err err = {{0}};
    clv_model *m = clv_vit_create("vit_ref", &ref_vit, &err);
    cr_assert(m, "%s", err.msg);
    /* the same kernels in the same order: the same floats */
    cr_expect_eq(against_reference(m, "vit", 3), 0, "tensors differ in some bit from the old ViT driver");
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
