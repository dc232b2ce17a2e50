/* The ResNet backbone against PyTorch (fixtures by tools/make_resnet_fixtures.py:
 * eval and train mode features, every gradient, the running-statistics
 * update), against finite differences, with adapters on its convolutions,
 * and the parameter names and shapes of torchvision's resnet18. */
#include <criterion/criterion.h>

#include "clvit/adapters.h"
#include "clvit/gemm.h"
#include "clvit/kernels_cnn.h"
#include "clvit/model.h"
#include "clvit/safetensors.h"
#include "fixture_tensors.h"
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    const char *path;
    clv_resnet_config cfg;
} fixture;

static const fixture fixtures[2] = {
    {"tests/fixtures/resnet_micro_c.safetensors", {16, 3, 3, {4, 8, 8, 16}, {2, 1, 1, 1}, 1e-5f}},
    {"tests/fixtures/resnet_micro_i.safetensors", {64, 1, 7, {4, 4, 8, 8}, {1, 1, 1, 1}, 1e-5f}},
};

typedef struct loaded {
    clv_safetensors st;
    clv_model *m;
    float *x, *R;
    int64_t nx, F, B;
} loaded;

static void load(loaded *L, const fixture *f)
{
    clv_err err = {{0}};
    memset(L, 0, sizeof *L);
    cr_assert_eq(clv_st_open(&L->st, f->path, &err), 0, "%s", err.msg);
    L->m = clv_resnet_create("resnet_micro", &f->cfg, &err);
    cr_assert(L->m, "%s", err.msg);
    cr_assert_eq(clv_st_load_params(&L->st, &L->m->params, NULL, 0, &err), 0, "%s", err.msg);
    L->B = 2;
    L->F = f->cfg.widths[3];
    L->nx = L->B * f->cfg.in_chans * f->cfg.img_size * f->cfg.img_size;
    L->x = read_tensor(&L->st, "x", L->nx);
    L->R = read_tensor(&L->st, "R", L->B * L->F);
}

static void unload(loaded *L)
{
    clv_model_free(L->m);
    clv_st_close(&L->st);
    free(L->x);
    free(L->R);
}

static void set_all_trainable(clv_model *m, int on)
{
    clv_err err = {{0}};
    for (int i = 0; i < m->params.count; i++)
        cr_assert_eq(clv_param_set_trainable(m->params.items[i], on, &err), 0, "%s", err.msg);
}

Test(resnet, eval_forward_matches_pytorch)
{
    for (int k = 0; k < 2; k++) {
        loaded L;
        load(&L, &fixtures[k]);
        clv_err err = {{0}};
        float feats[2 * 16];
        L.m->training = 0;
        cr_assert_eq(L.m->ops->forward(L.m, L.x, L.B, feats, &err), 0, "%s", err.msg);
        float *ref = read_tensor(&L.st, "feats_eval", L.B * L.F);
        double d = rel_diff(feats, ref, L.B * L.F, 1e-3);
        cr_expect(d < 1e-5, "%s: eval features differ from PyTorch by %.3g (relative)", fixtures[k].path, d);
        cr_expect_neq(L.m->ops->backward(L.m, L.R, NULL, &err), 0, "no backward after an inference forward");
        free(ref);
        unload(&L);
    }
}

Test(resnet, train_forward_gradients_and_running_stats_match_pytorch)
{
    for (int k = 0; k < 2; k++) {
        loaded L;
        load(&L, &fixtures[k]);
        clv_err err = {{0}};
        float feats[2 * 16];
        float *dx = calloc((size_t)L.nx, sizeof(float));
        set_all_trainable(L.m, 1);
        clv_params_zero_grad(&L.m->params);
        L.m->training = 1;
        cr_assert_eq(L.m->ops->forward(L.m, L.x, L.B, feats, &err), 0, "%s", err.msg);
        cr_assert_eq(L.m->ops->backward(L.m, L.R, dx, &err), 0, "%s", err.msg);
        float *ref = read_tensor(&L.st, "feats_train", L.B * L.F);
        double d = rel_diff(feats, ref, L.B * L.F, 1e-3);
        cr_expect(d < 1e-5, "%s: train features differ by %.3g", fixtures[k].path, d);
        free(ref);
        char name[CLV_NAME_LEN + 16];
        int checked = 0;
        for (int i = 0; i < L.m->params.count; i++) {
            clv_param *p = L.m->params.items[i];
            if (p->buffer) {
                cr_expect_not(p->trainable, "%s is a buffer and never trains", p->name);
                snprintf(name, sizeof name, "after.%s", p->name);
                ref = read_tensor(&L.st, name, p->numel);
                d = rel_diff(p->data, ref, p->numel, 1e-3);
                cr_expect(d < 1e-5, "%s: running statistic differs by %.3g", name, d);
            } else {
                snprintf(name, sizeof name, "grad.%s", p->name);
                ref = read_tensor(&L.st, name, p->numel);
                d = rel_diff(p->grad, ref, p->numel, 1e-6);
                cr_expect(d < 1e-4, "%s %s: relative error %.3g", fixtures[k].path, name, d);
                checked++;
            }
            free(ref);
        }
        cr_expect_gt(checked, 10);
        ref = read_tensor(&L.st, "grad.x", L.nx);
        d = rel_diff(dx, ref, L.nx, 1e-6);
        cr_expect(d < 1e-4, "%s: grad.x relative error %.3g", fixtures[k].path, d);
        free(ref);
        free(dx);
        unload(&L);
    }
}

/* A frozen base: norms untrainable use their running statistics while the
 * convolutions train (as under an adapter): PyTorch's eval-mode gradients. */
Test(resnet, frozen_norm_gradients_match_pytorch_eval_mode)
{
    for (int k = 0; k < 2; k++) {
        loaded L;
        load(&L, &fixtures[k]);
        clv_err err = {{0}};
        float feats[2 * 16];
        float *dx = calloc((size_t)L.nx, sizeof(float));
        for (int i = 0; i < L.m->params.count; i++)
            cr_assert_eq(clv_param_set_trainable(L.m->params.items[i], L.m->params.items[i]->ndim == 4, &err), 0);
        clv_params_zero_grad(&L.m->params);
        L.m->training = 1;
        cr_assert_eq(L.m->ops->forward(L.m, L.x, L.B, feats, &err), 0, "%s", err.msg);
        cr_assert_eq(L.m->ops->backward(L.m, L.R, dx, &err), 0, "%s", err.msg);
        float *ref = read_tensor(&L.st, "feats_eval", L.B * L.F);
        double d = rel_diff(feats, ref, L.B * L.F, 1e-3);
        cr_expect(d < 1e-5, "%s: features with frozen norms differ from eval mode by %.3g", fixtures[k].path, d);
        free(ref);
        char name[CLV_NAME_LEN + 16];
        for (int i = 0; i < L.m->params.count; i++) {
            clv_param *p = L.m->params.items[i];
            if (p->ndim != 4)
                continue;
            snprintf(name, sizeof name, "grad_eval.%s", p->name);
            ref = read_tensor(&L.st, name, p->numel);
            d = rel_diff(p->grad, ref, p->numel, 1e-6);
            cr_expect(d < 1e-4, "%s %s: relative error %.3g", fixtures[k].path, name, d);
            free(ref);
        }
        ref = read_tensor(&L.st, "grad_eval.x", L.nx);
        d = rel_diff(dx, ref, L.nx, 1e-6);
        cr_expect(d < 1e-4, "%s: grad_eval.x relative error %.3g", fixtures[k].path, d);
        free(ref);
        free(dx);
        unload(&L);
    }
}

/* ---- finite differences on the whole model ---- */

typedef struct fd_ctx {
    clv_model *m;
    const float *x, *R;
    int64_t B, F;
    float feats[2 * 16];
} fd_ctx;

static double model_loss(void *p)
{
    fd_ctx *c = p;
    clv_err err = {{0}};
    for (int i = 0; i < c->m->n_wlayers; i++) /* adapters form their weights once per step */
        if (c->m->wlayers[i]->adapter)
            c->m->wlayers[i]->adapter->ops->invalidate(c->m->wlayers[i]->adapter);
    cr_assert_eq(c->m->ops->forward(c->m, c->x, c->B, c->feats, &err), 0, "%s", err.msg);
    return gradcheck_dot(c->feats, c->R, c->B * c->F);
}

/* Fraction of probed entries whose central difference agrees with grad to
 * 2%. ReLU and max-pool kinks lie within any step of a few of the many
 * units of even a small network, so single entries may disagree while a
 * wrong gradient disagrees almost everywhere; the backward is also checked
 * entry by entry against PyTorch above. */
static double fd_agreement(float *x, const float *grad, int64_t n, int probes, fd_ctx *c, char *worst, size_t len)
{
    double gmax = 0;
    for (int64_t i = 0; i < n; i++)
        gmax = fmax(gmax, fabs(grad[i]));
    int ok = 0, done = 0;
    double wr = -1;
    for (int j = 0; j < probes; j++) {
        const int64_t i = (int64_t)((double)j * (double)n / probes);
        const float x0 = x[i], h = 1e-3f;
        x[i] = x0 + h;
        const double lp = model_loss(c);
        x[i] = x0 - h;
        const double lm = model_loss(c);
        x[i] = x0;
        const double num = (lp - lm) / (2.0 * h), an = grad[i];
        const double rel = fabs(num - an) / fmax(fmax(fabs(num), fabs(an)), 1e-2 * gmax + 1e-12);
        ok += rel < 2e-2;
        done++;
        if (rel > wr) {
            wr = rel;
            snprintf(worst, len, "worst [%lld] analytic %g numeric %g", (long long)i, an, num);
        }
    }
    return done ? (double)ok / done : 0;
}

/* The CIFAR-stem fixture network (no max-pool). frozen_norms: batch norms
 * with running statistics (a frozen base). */
static void finite_differences(int frozen_norms)
{
    loaded L;
    load(&L, &fixtures[0]);
    clv_err err = {{0}};
    /* central differences at h = 1e-3 of a float loss resolve 2% with the direct convolutions'
     * rounding only (Winograd's is about 5x larger); Winograd's gradients are the direct ones'
     * (winograd_gradients_are_the_direct_ones) */
    L.m->conv_direct = 1;
    set_all_trainable(L.m, 1);
    if (frozen_norms)
        for (int i = 0; i < L.m->params.count; i++)
            if (L.m->params.items[i]->ndim == 1)
                cr_assert_eq(clv_param_set_trainable(L.m->params.items[i], 0, &err), 0);
    clv_params_zero_grad(&L.m->params);
    float *dx = calloc((size_t)L.nx, sizeof(float));
    fd_ctx c = {.m = L.m, .x = L.x, .R = L.R, .B = L.B, .F = L.F};
    model_loss(&c);
    cr_assert_eq(L.m->ops->backward(L.m, L.R, dx, &err), 0, "%s", err.msg);
    char buf[200];
    /* not conv1: a step in a stem weight moves every unit of the network, and too many ReLUs switch
     * within it; conv1's gradient is checked against PyTorch above */
    const char *names[4] = {"layer1.1.conv2.weight", "layer2.0.conv1.weight", "layer3.0.downsample.0.weight",
                            "layer4.0.bn1.weight"};
    for (int i = 0; i < 4; i++) {
        clv_param *p = clv_params_find(&L.m->params, names[i]);
        cr_assert(p, "%s", names[i]);
        if (!p->trainable)
            continue;
        float *g = malloc((size_t)p->numel * sizeof(float));
        memcpy(g, p->grad, (size_t)p->numel * sizeof(float));
        const double agree = fd_agreement(p->data, g, p->numel, 20, &c, buf, sizeof buf);
        cr_expect(agree >= 0.8, "%s (%s norms): %.0f%% of entries agree; %s", names[i],
                  frozen_norms ? "frozen" : "batch", 100 * agree, buf);
        free(g);
    }
    const double agree = fd_agreement((float *)L.x, dx, L.nx, 20, &c, buf, sizeof buf);
    cr_expect(agree >= 0.8, "x (%s norms): %.0f%% of entries agree; %s", frozen_norms ? "frozen" : "batch",
              100 * agree, buf);
    free(dx);
    unload(&L);
}

Test(resnet, finite_differences_batch_norms) { finite_differences(0); }

/* One training step's features and gradients (every parameter, the input) with the fp32 3x3
 * stride-1 convolutions on Winograd (the default, where oneDNN has it) against direct only, to
 * the tolerances the gradients meet against PyTorch's (train_forward_gradients_..._match_pytorch):
 * Winograd's larger rounding adds up over the network and the norms' sums (bn1.bias: 1.5e-5). */
Test(resnet, winograd_gradients_are_the_direct_ones)
{
    for (int k = 0; k < 2; k++) {
        loaded L;
        load(&L, &fixtures[k]);
        clv_err err = {{0}};
        set_all_trainable(L.m, 1);
        int64_t ng = 0;
        for (int i = 0; i < L.m->params.count; i++)
            ng += L.m->params.items[i]->numel;
        float *g[2], *dx[2], feats[2][2 * 16];
        for (int direct = 0; direct < 2; direct++) {
            L.m->conv_direct = direct;
            clv_params_zero_grad(&L.m->params);
            g[direct] = malloc((size_t)ng * sizeof(float));
            dx[direct] = calloc((size_t)L.nx, sizeof(float));
            cr_assert_eq(L.m->ops->forward(L.m, L.x, L.B, feats[direct], &err), 0, "%s", err.msg);
            cr_assert_eq(L.m->ops->backward(L.m, L.R, dx[direct], &err), 0, "%s", err.msg);
            int64_t off = 0;
            for (int i = 0; i < L.m->params.count; i++) { /* running statistics have no gradient */
                const clv_param *p = L.m->params.items[i];
                if (!p->buffer)
                    memcpy(g[direct] + off, p->grad, (size_t)p->numel * sizeof(float));
                off += p->numel;
            }
        }
        cr_expect_lt(rel_diff(feats[0], feats[1], L.B * L.F, 1e-3), 1e-5, "fixture %d: features", k);
        cr_expect_lt(rel_diff(dx[0], dx[1], L.nx, 1e-6), 1e-4, "fixture %d: input gradient", k);
        int64_t off = 0;
        int compared = 0;
        for (int i = 0; i < L.m->params.count; i++) {
            const clv_param *p = L.m->params.items[i];
            if (!p->buffer) {
                cr_expect_lt(rel_diff(g[0] + off, g[1] + off, p->numel, 1e-6), 1e-4, "fixture %d: %s", k, p->name);
                compared++;
            }
            off += p->numel;
        }
        cr_expect_gt(compared, 10, "fixture %d: the gradients of every trainable parameter", k);
        for (int direct = 0; direct < 2; direct++)
            free(g[direct]), free(dx[direct]);
        unload(&L);
    }
}
Test(resnet, finite_differences_frozen_norms) { finite_differences(1); }

/* ---- adapters on convolutions ---- */

Test(resnet, adapters_on_convolutions_start_as_the_base)
{
    loaded L;
    load(&L, &fixtures[0]);
    clv_err err = {{0}};
    float base[2 * 16], adapted[2 * 16];
    L.m->training = 0;
    cr_assert_eq(L.m->ops->forward(L.m, L.x, L.B, base, &err), 0, "%s", err.msg);
    cr_assert_eq(L.m->n_wlayers, 1 + 2 * 5 + 3, "stem, two convs per block, three downsamples");
    for (int kind = 0; kind < 2; kind++) {
        clv_params ps;
        clv_params_init(&ps);
        for (int i = 0; i < L.m->n_wlayers; i++) {
            clv_wlayer *l = L.m->wlayers[i];
            cr_assert_eq(l->out * l->in, l->weight->numel, "%s is the Cout x (Cin k k) matrix", l->name);
            clv_adapter *a = kind == 0 ? clv_rkr_create(l, 1, CLV_VIEW_OURS, &err) : clv_piggyback_create(l, 1, 5e-3f, &err);
            cr_assert(a, "%s", err.msg);
            int rc = kind == 0 ? clv_rkr_add_task(a, l, 0, 2, 0, 99 + (uint64_t)i, 1.0f, &ps, &err)
                               : clv_piggyback_add_task(a, l, 0, 1e-2f, 1.0f, &ps, &err);
            cr_assert_eq(rc, 0, "%s", err.msg);
            clv_task_adapter_select(a, 0);
            l->adapter = a;
        }
        cr_assert_eq(L.m->ops->forward(L.m, L.x, L.B, adapted, &err), 0, "%s", err.msg);
        for (int j = 0; j < L.B * L.F; j++)
            cr_expect(fabsf(adapted[j] - base[j]) <= 1e-6f * (1 + fabsf(base[j])), "%s: feature %d %g vs %g",
                      kind ? "piggyback" : "rkr", j, adapted[j], base[j]);
        /* and their parameters receive gradients through the convolutions */
        L.m->training = 1;
        set_all_trainable(L.m, 0);
        clv_params_zero_grad(&ps);
        cr_assert_eq(L.m->ops->forward(L.m, L.x, L.B, adapted, &err), 0, "%s", err.msg);
        cr_assert_eq(L.m->ops->backward(L.m, L.R, NULL, &err), 0, "%s", err.msg);
        double g = 0;
        for (int i = 0; i < ps.count; i++)
            for (int64_t j = 0; j < ps.items[i]->numel; j++)
                g += fabs(ps.items[i]->grad[j]);
        cr_expect_gt(g, 0.0, "%s parameters got no gradient", kind ? "piggyback" : "rkr");
        L.m->training = 0;
        for (int i = 0; i < L.m->n_wlayers; i++) {
            clv_adapter *a = L.m->wlayers[i]->adapter;
            L.m->wlayers[i]->adapter = NULL;
            a->ops->free(a);
        }
        clv_params_free(&ps);
    }
    unload(&L);
}

/* ---- torchvision's resnet18 ---- */

Test(resnet, resnet18_has_torchvisions_names_and_shapes)
{
    clv_err err = {{0}};
    clv_model *m = clv_model_create("resnet18", &err);
    cr_assert(m, "%s", err.msg);
    FILE *f = fopen("tests/fixtures/resnet18_state_dict.txt", "r");
    cr_assert(f, "tests/fixtures/resnet18_state_dict.txt");
    char name[CLV_NAME_LEN];
    long long d[4];
    int n = 0, nd;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        d[0] = d[1] = d[2] = d[3] = 0;
        nd = sscanf(line, "%95s %lld %lld %lld %lld", name, &d[0], &d[1], &d[2], &d[3]) - 1;
        if (strstr(name, "num_batches_tracked") || strncmp(name, "fc.", 3) == 0)
            continue; /* an int64 counter clvit does not need; the head is a task head */
        cr_assert_lt(n, m->params.count, "more tensors in torchvision than in clvit: %s", name);
        const clv_param *p = m->params.items[n++];
        cr_expect_str_eq(p->name, name, "tensor %d", n);
        cr_expect_eq(p->ndim, nd, "%s ndim", name);
        for (int i = 0; i < nd; i++)
            cr_expect_eq(p->shape[i], d[i], "%s dim %d", name, i);
    }
    fclose(f);
    cr_expect_eq(n, m->params.count, "clvit has %d tensors, torchvision %d", m->params.count, n);
    cr_expect_eq(m->info.feat_dim, 512);
    cr_expect(fabs(m->info.flops_per_image - 3.627e9) < 0.01e9, "resnet18 is 1.81 GMACs per 224x224 image");
    clv_model_free(m);
}

/* RKR's LM, RM and F and Piggyback's scores on a convolution of the model
 * (layer2.0.conv1, 3x3 stride 2 over 4 channels): im2col + the adapted
 * layer, by finite differences (smooth: no ReLU between). */
typedef struct conv_ctx {
    clv_wlayer *l;
    float *cols, *y, *r;
    int64_t N;
} conv_ctx;

static double conv_loss(void *p)
{
    conv_ctx *c = p;
    c->l->adapter->ops->invalidate(c->l->adapter);
    clv_err err = {{0}};
    cr_assert_eq(clv_wlayer_forward(c->l, c->y, c->cols, c->N, CLV_WL_TRAIN, &err), 0, "%s", err.msg);
    return gradcheck_dot(c->y, c->r, c->N * c->l->out);
}

Test(resnet, adapters_on_a_convolution_finite_differences)
{
    loaded L;
    load(&L, &fixtures[0]);
    clv_err err = {{0}};
    set_all_trainable(L.m, 0);
    clv_wlayer *l = NULL;
    for (int i = 0; i < L.m->n_wlayers; i++)
        if (!strcmp(L.m->wlayers[i]->name, "layer2.0.conv1"))
            l = L.m->wlayers[i];
    cr_assert(l, "layer2.0.conv1 is a weight layer");
    cr_assert(l->out == 8 && l->in == 4 * 9, "Cout x (Cin k k)");
    const int64_t B = 2, H = 16, W = 16, C = 4, Ho = 8, N = B * Ho * Ho;
    float *x = calloc((size_t)(B * H * W * C), sizeof(float)), *cols = calloc((size_t)(N * l->in), sizeof(float));
    gradcheck_fill(x, B * H * W * C, 21, -1, 1);
    clv_im2col(cols, x, B, H, W, C, 3, 2, 1);
    conv_ctx c = {.l = l, .cols = cols, .N = N};
    c.y = calloc((size_t)(N * l->out), sizeof(float));
    c.r = calloc((size_t)(N * l->out), sizeof(float));
    gradcheck_fill(c.r, N * l->out, 22, -1, 1);
    clv_arena scratch = {0}; /* the weight layers' backward scratch */
    char buf[200];
    for (int kind = 0; kind < 2; kind++) {
        clv_params ps;
        clv_params_init(&ps);
        clv_adapter *a = kind == 0 ? clv_rkr_create(l, 1, CLV_VIEW_OURS, &err) : clv_piggyback_create(l, 1, 5e-3f, &err);
        cr_assert(a, "%s", err.msg);
        int rc = kind == 0 ? clv_rkr_add_task(a, l, 0, 2, 1 /* random RM: no zero gradients */, 5, 1.0f, &ps, &err)
                           : clv_piggyback_add_task(a, l, 0, 1e-2f, 1.0f, &ps, &err);
        cr_assert_eq(rc, 0, "%s", err.msg);
        clv_task_adapter_select(a, 0);
        l->adapter = a;
        if (kind == 0)
            gradcheck_fill(ps.items[2]->data, l->out, 23, 0.5f, 1.5f); /* F away from 1 */
        clv_params_zero_grad(&ps);
        conv_loss(&c);
        cr_assert_eq(clv_wlayer_backward(l, NULL, c.r, cols, NULL, N, &scratch, &err), 0, "%s", err.msg);
        for (int i = 0; i < ps.count; i++) {
            clv_param *p = ps.items[i];
            float *g = malloc((size_t)p->numel * sizeof(float));
            memcpy(g, p->grad, (size_t)p->numel * sizeof(float));
            gradcheck_result res;
            if (kind == 1) { /* the straight-through estimator: dL/dS = dL/dW_t * W, checked against the formula */
                float *dw = calloc((size_t)p->numel, sizeof(float));
                clv_gemm(1, 0, l->out, l->in, N, 1.0f, c.r, l->out, cols, l->in, 0.0f, dw, l->in);
                double worst = 0;
                for (int64_t j = 0; j < p->numel; j++)
                    worst = fmax(worst, fabs(g[j] - dw[j] * l->weight->data[j]));
                cr_expect(worst < 1e-4, "piggyback scores: %g from dL/dW * W", worst);
                free(dw);
            } else {
                cr_assert_eq(gradcheck_run(p->data, g, p->numel, conv_loss, &c, NULL, &res), 0);
                cr_expect(res.max_rel < 1e-2, "%s: %s", p->name, gradcheck_str(&res, buf, sizeof buf));
            }
            free(g);
        }
        l->adapter = NULL;
        a->ops->free(a);
        clv_params_free(&ps);
    }
    free(x), free(cols), free(c.y), free(c.r);
    clv_arena_free(&scratch);
    unload(&L);
}

/* RKR's own view of a convolution (--conv-view rkr) on layer2.0.conv1
 * (Cout 8, Cin 4, 3x3): LM (Cin k) x K and RM K x (Cout k), their product
 * placed at W[o][i][a][b] from row i k + a, column o k + b; the gradients of
 * LM, RM, F by finite differences, and Mask-RKR's straight-through score
 * gradients in the same view equal RKR's gradients of the masked tensors
 * times the tensors. */
Test(resnet, rkr_conv_view_on_a_convolution_finite_differences)
{
    loaded L;
    load(&L, &fixtures[0]);
    clv_err err = {{0}};
    set_all_trainable(L.m, 0);
    clv_wlayer *l = NULL;
    for (int i = 0; i < L.m->n_wlayers; i++)
        if (!strcmp(L.m->wlayers[i]->name, "layer2.0.conv1"))
            l = L.m->wlayers[i];
    cr_assert(l && l->out == 8 && l->in == 4 * 9);
    enum { CO = 8, CI = 4, KS = 3, R = 12, C = 24, KR = 2 };
    int64_t rows, cols;
    cr_assert_eq(clv_rect_shape(l, CLV_VIEW_RKR, &rows, &cols, &err), 0, "%s", err.msg);
    cr_assert(rows == R && cols == C, "(Cin k) x (Cout k), got %lld x %lld", (long long)rows, (long long)cols);
    const int64_t B = 2, H = 16, W = 16, Ho = 8, N = B * Ho * Ho;
    float *x = calloc((size_t)(B * H * W * CI), sizeof(float)), *cols_x = calloc((size_t)(N * l->in), sizeof(float));
    gradcheck_fill(x, B * H * W * CI, 31, -1, 1);
    clv_im2col(cols_x, x, B, H, W, CI, KS, 2, 1);
    conv_ctx c = {.l = l, .cols = cols_x, .N = N};
    c.y = calloc((size_t)(N * CO), sizeof(float));
    c.r = calloc((size_t)(N * CO), sizeof(float));
    gradcheck_fill(c.r, N * CO, 32, -1, 1);
    clv_arena scratch = {0};
    char buf[200];

    clv_params ps;
    clv_params_init(&ps);
    clv_adapter *a = clv_rkr_create(l, 1, CLV_VIEW_RKR, &err);
    cr_assert(a, "%s", err.msg);
    cr_assert_eq(clv_rkr_add_task(a, l, 0, KR, 1, 5, 1.0f, &ps, &err), 0, "%s", err.msg);
    clv_param *lm = ps.items[0], *rm = ps.items[1], *fs = ps.items[2];
    cr_assert(lm->shape[0] == R && lm->shape[1] == KR && rm->shape[0] == KR && rm->shape[1] == C);
    gradcheck_fill(fs->data, CO, 33, 0.5f, 1.5f);
    clv_task_adapter_select(a, 0);
    l->adapter = a;
    /* the effective weight, entry by entry from the stated placement */
    const float *weff = clv_wlayer_weight(l);
    double worst = 0;
    for (int o = 0; o < CO; o++)
        for (int i = 0; i < CI; i++)
            for (int ka = 0; ka < KS; ka++)
                for (int kb = 0; kb < KS; kb++) {
                    const int64_t w = o * CI * KS * KS + (i * KS + ka) * KS + kb;
                    double want = l->weight->data[w];
                    for (int r = 0; r < KR; r++)
                        want += (double)lm->data[(i * KS + ka) * KR + r] * rm->data[r * C + o * KS + kb];
                    worst = fmax(worst, fabs(weff[w] - want));
                }
    cr_assert_lt(worst, 1e-6, "W + placed LM RM: off by %g", worst);
    clv_params_zero_grad(&ps);
    conv_loss(&c);
    cr_assert_eq(clv_wlayer_backward(l, NULL, c.r, cols_x, NULL, N, &scratch, &err), 0, "%s", err.msg);
    for (int i = 0; i < ps.count; i++) {
        clv_param *p = ps.items[i];
        float *g = malloc((size_t)p->numel * sizeof(float));
        memcpy(g, p->grad, (size_t)p->numel * sizeof(float));
        gradcheck_result res;
        cr_assert_eq(gradcheck_run(p->data, g, p->numel, conv_loss, &c, NULL, &res), 0);
        cr_expect(res.max_rel < 1e-2, "rkr view %s: %s", p->name, gradcheck_str(&res, buf, sizeof buf));
        free(g);
    }

    /* Mask-RKR in the same view: shared tensors = RKR's, task 1 masks them */
    clv_adapter *mr = clv_maskrkr_create(l, 2, KR, 5e-3f, CLV_MASK_LM | CLV_MASK_RM | CLV_MASK_F, CLV_VIEW_RKR, &err);
    cr_assert(mr, "%s", err.msg);
    clv_params shared, scores;
    clv_params_init(&shared);
    clv_params_init(&scores);
    cr_assert_eq(clv_maskrkr_add_shared(mr, l, 0, 1, 9, 0.0f, 1.0f, &shared, &err), 0, "%s", err.msg);
    for (int i = 0; i < 3; i++) {
        memcpy(shared.items[i]->data, ps.items[i]->data, (size_t)ps.items[i]->numel * sizeof(float));
        clv_param_set_trainable(shared.items[i], 0, &err);
    }
    cr_assert_eq(clv_maskrkr_add_task(mr, l, 1, 1e-2f, 1.0f, &scores, &err), 0, "%s", err.msg);
    for (int i = 0; i < scores.count; i++)
        gradcheck_fill(scores.items[i]->data, scores.items[i]->numel, 40 + (uint64_t)i, -1e-2f, 2e-2f);
    /* RKR on the masked tensors */
    for (int i = 0; i < 3; i++)
        for (int64_t j = 0; j < ps.items[i]->numel; j++)
            ps.items[i]->data[j] = scores.items[i]->data[j] > 5e-3f ? shared.items[i]->data[j] : 0.0f;
    clv_params_zero_grad(&ps);
    conv_loss(&c);
    cr_assert_eq(clv_wlayer_backward(l, NULL, c.r, cols_x, NULL, N, &scratch, &err), 0, "%s", err.msg);
    float y_rkr[N * CO];
    memcpy(y_rkr, c.y, sizeof y_rkr);
    l->adapter = mr;
    clv_task_adapter_select(mr, 1);
    clv_params_zero_grad(&scores);
    conv_loss(&c);
    for (int64_t j = 0; j < N * CO; j++)
        cr_assert_float_eq(c.y[j], y_rkr[j], 1e-5f, "y[%lld]: the masked network is RKR on the masked tensors",
                           (long long)j);
    cr_assert_eq(clv_wlayer_backward(l, NULL, c.r, cols_x, NULL, N, &scratch, &err), 0, "%s", err.msg);
    for (int i = 0; i < 3; i++)
        for (int64_t j = 0; j < ps.items[i]->numel; j++) {
            const float want = ps.items[i]->grad[j] * shared.items[i]->data[j];
            cr_assert_float_eq(scores.items[i]->grad[j], want, 1e-5f * (1 + fabsf(want)), "%s[%lld]",
                               scores.items[i]->name, (long long)j);
        }
    l->adapter = NULL;
    a->ops->free(a);
    mr->ops->free(mr);
    clv_params_free(&ps);
    clv_params_free(&shared);
    clv_params_free(&scores);
    free(x), free(cols_x), free(c.y), free(c.r);
    clv_arena_free(&scratch);
    unload(&L);
}
