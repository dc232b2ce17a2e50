/* EWC's Fisher and penalty, LwF's distillation loss: values and gradients
 * against PyTorch (tests/fixtures/ewc_lwf.safetensors, made by
 * tools/make_ewc_lwf_fixtures.py in float64), finite differences, and the
 * properties the strategies rely on. */
#include <criterion/criterion.h>

#include "clvit/ewc_math.h"
#include "clvit/lwf_math.h"
#include "clvit/safetensors.h"
#include "gradcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FIX "tests/fixtures/ewc_lwf.safetensors"

static clv_safetensors st;

static void open_fixture(void)
{
    clv_err err = {{0}};
    cr_assert_eq(clv_st_open(&st, FIX, &err), 0, "%s", err.msg);
}

static void close_fixture(void) { clv_st_close(&st); }

/* The tensor `name` as a new float array of exactly n elements. */
static float *tensor(const char *name, int64_t n)
{
    clv_err err = {{0}};
    const clv_st_tensor *t = clv_st_find(&st, name);
    cr_assert(t, "%s: no tensor %s", FIX, name);
    cr_assert_eq(t->numel, n, "%s: %s has %lld elements, want %lld", FIX, name, (long long)t->numel, (long long)n);
    float *p = malloc((size_t)n * sizeof(float));
    cr_assert(p);
    cr_assert_eq(clv_st_read_f32(&st, t, p, n, &err), 0, "%s", err.msg);
    return p;
}

static float scalar(const char *name)
{
    float *p = tensor(name, 1), v = p[0];
    free(p);
    return v;
}

/* max_i |a - b| / max(max_i |b|, 1e-6) */
static double rel_diff(const float *a, const float *b, int64_t n)
{
    double bmax = 1e-6, d = 0;
    for (int64_t i = 0; i < n; i++)
        bmax = fmax(bmax, fabs((double)b[i]));
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        d = isnan(e) ? INFINITY : fmax(d, e);
    }
    return d / bmax;
}

/* ---- EWC ---- */

#define EWC_P 28 /* W 4x6 + b 4 */

Test(ewc_math, fisher_matches_facil_batch_estimator, .init = open_fixture, .fini = close_fixture)
{
    float *grads = tensor("ewc.grads", 3 * EWC_P), *sizes = tensor("ewc.batch_sizes", 3);
    float *fisher = tensor("ewc.fisher_prev", EWC_P), *want = tensor("ewc.fisher", EWC_P);
    float sum[EWC_P] = {0};
    double samples = 0;
    for (int b = 0; b < 3; b++) {
        clv_ewc_fisher_add(sum, grads + b * EWC_P, EWC_P, sizes[b]);
        samples += sizes[b];
    }
    clv_ewc_fisher_merge(fisher, sum, EWC_P, samples, scalar("ewc.decay"));
    double d = rel_diff(fisher, want, EWC_P);
    cr_expect(d < 1e-5, "Fisher vs FACIL's loop: rel diff %g", d);
    free(grads), free(sizes), free(fisher), free(want);
}

Test(ewc_math, penalty_and_gradient_match_torch, .init = open_fixture, .fini = close_fixture)
{
    float *theta = tensor("ewc.theta", EWC_P), *anchor = tensor("ewc.anchor", EWC_P);
    float *fisher = tensor("ewc.fisher", EWC_P), *want_g = tensor("ewc.penalty_grad", EWC_P);
    float grad[EWC_P];
    for (int i = 0; i < EWC_P; i++)
        grad[i] = 0.25f; /* the gradient accumulates onto what is there */
    double p = clv_ewc_penalty(grad, theta, anchor, fisher, EWC_P, scalar("ewc.lambda"));
    float want = scalar("ewc.penalty");
    cr_expect(fabs(p - want) <= 1e-5 * fabs(want), "penalty %.9g, torch %.9g", p, want);
    for (int i = 0; i < EWC_P; i++)
        grad[i] -= 0.25f;
    double d = rel_diff(grad, want_g, EWC_P);
    cr_expect(d < 1e-5, "penalty gradient vs autograd: rel diff %g", d);
    /* without a gradient buffer the value is the same */
    cr_expect_eq(clv_ewc_penalty(NULL, theta, anchor, fisher, EWC_P, scalar("ewc.lambda")), p);
    free(theta), free(anchor), free(fisher), free(want_g);
}

typedef struct penalty_ctx {
    const float *theta, *anchor, *fisher;
    int64_t n;
    float lambda;
} penalty_ctx;

static double penalty_loss(void *ctx)
{
    const penalty_ctx *c = ctx;
    return clv_ewc_penalty(NULL, c->theta, c->anchor, c->fisher, c->n, c->lambda);
}

Test(ewc_math, penalty_gradient_matches_finite_differences)
{
    const int64_t sizes[] = {1, 7, 300};
    for (int k = 0; k < 3; k++) {
        int64_t n = sizes[k];
        float *theta = malloc(n * sizeof(float)), *anchor = malloc(n * sizeof(float));
        float *fisher = malloc(n * sizeof(float)), *grad = calloc(n, sizeof(float));
        gradcheck_fill(theta, n, 10 + k, -1, 1);
        gradcheck_fill(anchor, n, 20 + k, -1, 1);
        gradcheck_fill(fisher, n, 30 + k, 0, 2);
        penalty_ctx c = {theta, anchor, fisher, n, 3.5f};
        clv_ewc_penalty(grad, theta, anchor, fisher, n, c.lambda);
        gradcheck_result res;
        char buf[256];
        cr_assert_eq(gradcheck_run(theta, grad, n, penalty_loss, &c, NULL, &res), 0);
        cr_expect(res.max_rel < 1e-3, "n %lld: %s", (long long)n, gradcheck_str(&res, buf, sizeof buf));
        free(theta), free(anchor), free(fisher), free(grad);
    }
}

Test(ewc_math, penalty_is_zero_at_the_anchor_and_without_fisher)
{
    float theta[5] = {0.5f, -1, 2, 0, 3}, anchor[5] = {0.5f, -1, 2, 0, 3}, fisher[5] = {1, 2, 3, 4, 5};
    float zero[5] = {0}, grad[5] = {0};
    cr_expect_eq(clv_ewc_penalty(grad, theta, anchor, fisher, 5, 100.0f), 0.0);
    for (int i = 0; i < 5; i++)
        cr_expect_eq(grad[i], 0.0f);
    anchor[2] = -7;
    cr_expect_eq(clv_ewc_penalty(grad, theta, anchor, zero, 5, 100.0f), 0.0);
    cr_expect_eq(clv_ewc_penalty(grad, theta, anchor, fisher, 5, 0.0f), 0.0);
    /* a moved weight costs lambda/2 F d^2 */
    cr_expect_float_eq(clv_ewc_penalty(NULL, theta, anchor, fisher, 5, 2.0f), 3.0 * 81.0, 1e-9);
}

Test(ewc_math, merge_decays_the_old_fisher_and_adds_the_new_mean)
{
    float fisher[3] = {0}, sum[3] = {0};
    float g1[3] = {1, -2, 0.5f}, g2[3] = {3, 0, -1};
    clv_ewc_fisher_add(sum, g1, 3, 4);
    clv_ewc_fisher_add(sum, g2, 3, 2);
    clv_ewc_fisher_merge(fisher, sum, 3, 6, 0.5f); /* F_0 = 0: the first task's Fisher alone */
    const float want1[3] = {(4 * 1 + 2 * 9) / 6.0f, 16 / 6.0f, (4 * 0.25f + 2 * 1) / 6.0f};
    for (int i = 0; i < 3; i++)
        cr_expect_float_eq(fisher[i], want1[i], 1e-6, "[%d] %g vs %g", i, fisher[i], want1[i]);
    clv_ewc_fisher_merge(fisher, sum, 3, 6, 0.5f); /* a second task with the same gradients */
    for (int i = 0; i < 3; i++)
        cr_expect_float_eq(fisher[i], 1.5f * want1[i], 1e-6);
    clv_ewc_fisher_merge(fisher, sum, 3, 6, 0.0f); /* decay 0 keeps only the newest task */
    for (int i = 0; i < 3; i++)
        cr_expect_float_eq(fisher[i], want1[i], 1e-6);
}

/* ---- LwF ---- */

static const int64_t lwf_k[2] = {3, 5};
#define LWF_N 4

Test(lwf_math, loss_and_gradient_match_torch, .init = open_fixture, .fini = close_fixture)
{
    const float T = scalar("lwf.T"), alpha = scalar("lwf.alpha");
    double total = 0;
    for (int j = 0; j < 2; j++) {
        char name[32];
        int64_t n = LWF_N * lwf_k[j];
        snprintf(name, sizeof name, "lwf.z.%d", j);
        float *z = tensor(name, n);
        snprintf(name, sizeof name, "lwf.y.%d", j);
        float *y = tensor(name, n);
        snprintf(name, sizeof name, "lwf.grad.%d", j);
        float *want_g = tensor(name, n);
        snprintf(name, sizeof name, "lwf.loss.%d", j);
        float want = scalar(name);
        float *g = calloc(n, sizeof(float));
        double l = clv_lwf_distill(g, z, y, LWF_N, lwf_k[j], T, alpha, 1.0f);
        cr_expect(fabs(l - want) <= 1e-5 * fabs(want), "head %d: loss %.9g, torch %.9g", j, l, want);
        double d = rel_diff(g, want_g, n);
        cr_expect(d < 1e-5, "head %d: gradient vs autograd: rel diff %g", j, d);
        total += l;
        free(z), free(y), free(want_g), free(g);
    }
    float want = scalar("lwf.loss");
    cr_expect(fabs(total - want) <= 1e-5 * fabs(want), "sum over heads %.9g, torch %.9g", total, want);
}

typedef struct lwf_ctx {
    const float *z, *y;
    int64_t N, K;
    float T, alpha;
} lwf_ctx;

static double lwf_loss(void *ctx)
{
    const lwf_ctx *c = ctx;
    return clv_lwf_distill(NULL, c->z, c->y, c->N, c->K, c->T, c->alpha, 1.0f);
}

Test(lwf_math, gradient_matches_finite_differences)
{
    const struct { int64_t N, K; float T; } cases[] = {{1, 2, 1.0f}, {5, 7, 2.0f}, {16, 10, 4.0f}, {3, 100, 0.5f}};
    for (int k = 0; k < 4; k++) {
        int64_t n = cases[k].N * cases[k].K;
        float *z = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float)), *g = calloc(n, sizeof(float));
        gradcheck_fill(z, n, 40 + k, -3, 3);
        gradcheck_fill(y, n, 50 + k, -3, 3);
        lwf_ctx c = {z, y, cases[k].N, cases[k].K, cases[k].T, 0.8f};
        clv_lwf_distill(g, z, y, c.N, c.K, c.T, c.alpha, 1.0f);
        gradcheck_result res;
        char buf[256];
        cr_assert_eq(gradcheck_run(z, g, n, lwf_loss, &c, NULL, &res), 0);
        cr_expect(res.max_rel < 1e-2, "N %lld K %lld T %g: %s", (long long)c.N, (long long)c.K, c.T,
                  gradcheck_str(&res, buf, sizeof buf));
        free(z), free(y), free(g);
    }
}

Test(lwf_math, matching_the_teacher_is_the_minimum)
{
    /* z = y: p = q, the gradient vanishes and the loss is alpha times the
     * entropy of q; any other z costs more (Gibbs' inequality) */
    float y[2 * 4] = {1, -2, 0.5f, 3, 0, 0, 0, 0}, z[2 * 4], g[2 * 4] = {0};
    memcpy(z, y, sizeof z);
    const float T = 2, alpha = 0.5f;
    double at = clv_lwf_distill(g, z, y, 2, 4, T, alpha, 1.0f);
    for (int i = 0; i < 8; i++)
        cr_expect(fabsf(g[i]) < 1e-8f, "[%d] %g", i, g[i]);
    double entropy = 0;
    for (int n = 0; n < 2; n++) {
        double s = 0;
        for (int c = 0; c < 4; c++)
            s += exp(y[n * 4 + c] / T);
        for (int c = 0; c < 4; c++) {
            double q = exp(y[n * 4 + c] / T) / s;
            entropy -= q * log(q);
        }
    }
    cr_expect(fabs(at - alpha * entropy / 2) < 1e-6, "%.9g vs alpha H(q) = %.9g", at, alpha * entropy / 2);
    z[1] += 0.5f;
    cr_expect_gt(clv_lwf_distill(NULL, z, y, 2, 4, T, alpha, 1.0f), at);
}

Test(lwf_math, a_shift_of_a_row_changes_nothing_even_far_from_zero)
{
    /* softmax is shift-invariant; logits of 1000 would overflow a naive exp */
    float z[3] = {0.3f, -1.2f, 2.0f}, y[3] = {1.0f, 0.0f, -0.5f}, g0[3] = {0}, g1[3] = {0};
    float zs[3], ys[3];
    for (int c = 0; c < 3; c++)
        zs[c] = z[c] + 1000.0f, ys[c] = y[c] - 1000.0f;
    double l0 = clv_lwf_distill(g0, z, y, 1, 3, 2.0f, 1.0f, 1.0f);
    double l1 = clv_lwf_distill(g1, zs, ys, 1, 3, 2.0f, 1.0f, 1.0f);
    cr_expect(isfinite(l1) && fabs(l0 - l1) < 1e-3, "%g vs %g", l0, l1);
    for (int c = 0; c < 3; c++)
        cr_expect(fabsf(g0[c] - g1[c]) < 1e-4f, "[%d] %g vs %g", c, g0[c], g1[c]);
}

Test(lwf_math, dloss_scales_the_gradient_only)
{
    float z[4] = {0.1f, 0.7f, -0.3f, 1.1f}, y[4] = {-1, 2, 0.5f, 0}, g1[4] = {0}, g2[4] = {0};
    double l1 = clv_lwf_distill(g1, z, y, 2, 2, 2.0f, 1.0f, 1.0f);
    double l2 = clv_lwf_distill(g2, z, y, 2, 2, 2.0f, 1.0f, 0.25f);
    cr_expect_eq(l1, l2);
    for (int i = 0; i < 4; i++)
        cr_expect_float_eq(g2[i], 0.25f * g1[i], 1e-7);
}
