/* Tests of the math kernels (clvit/kernels.h): forwards against double
 * references written here (or hand values), every backward against central
 * finite differences, the accumulate convention, and thread-count
 * independence. Suite "kernels". */
#include <criterion/criterion.h>

#include "clvit/core.h"
#include "clvit/kernels.h"
#include "gradcheck.h"
#include "kernels/vmath.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static float *falloc(int64_t n)
{
    float *p = clv_alloc_array((size_t)n, sizeof(float));
    cr_assert(p, "alloc %lld floats", (long long)n);
    return p;
}

static double *dalloc(int64_t n)
{
    double *p = calloc((size_t)n, sizeof(double));
    cr_assert(p);
    return p;
}

static float *frand(int64_t n, uint64_t seed, float lo, float hi)
{
    float *p = falloc(n);
    gradcheck_fill(p, n, seed, lo, hi);
    return p;
}

/* Outputs start as NaN so that a kernel that reads (instead of overwrites)
 * its output, or forgets an element, is caught. */
static float *fnan(int64_t n)
{
    float *p = falloc(n);
    for (int64_t i = 0; i < n; i++)
        p[i] = NAN;
    return p;
}

#define EXPECT_GC(x, g, n, fn, ctx, what)                                                                             \
    do {                                                                                                               \
        gradcheck_result res_;                                                                                         \
        char buf_[256];                                                                                                \
        gradcheck_opts o_ = gradcheck_defaults();                                                                      \
        int rc_ = gradcheck_run((x), (g), (n), (fn), (ctx), &o_, &res_);                                               \
        cr_expect(rc_ == 0 && res_.max_rel < 1e-2, "%s: %s", (what), gradcheck_str(&res_, buf_, sizeof buf_));         \
    } while (0)

#define EXPECT_CLOSE(a, ref, n, tol, what)                                                                             \
    do {                                                                                                               \
        double d_ = gradcheck_max_rel_diff((a), (ref), (n), 1.0);                                                     \
        cr_expect(d_ < (tol), "%s: max rel diff %.3g >= %.3g", (what), d_, (double)(tol));                            \
    } while (0)

/* a == 2 * b elementwise (to float rounding): the accumulate convention */
static void expect_doubled(const float *twice, const float *once, int64_t n, const char *what)
{
    double worst = 0, scale = 1e-6;
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(once[i]));
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)twice[i] - 2.0 * once[i]));
    cr_expect(worst / scale < 1e-5, "%s: second backward did not accumulate (err %.3g)", what, worst / scale);
}

/* ------------------------------------------------------------------ vexp */

Test(kernels, vexp_accuracy)
{
    double worst = 0;
    for (double v = -87.0; v < 88.0; v += 0.000731) {
        const float x = (float)v;
        const double e = exp((double)x);
        worst = fmax(worst, fabs(clv_vexpf(x) - e) / e);
    }
    cr_expect(worst < 2.5e-7, "vexpf max rel err %.3g", worst);
    cr_expect(clv_vexpf(0.0f) == 1.0f);
    cr_expect(clv_vexpf(-100.0f) == 0.0f);
    cr_expect(clv_vexpf(-INFINITY) == 0.0f);
}

Test(kernels, verf_accuracy)
{
    double worst = 0;
    for (double v = -7.0; v < 7.0; v += 0.0000731) {
        const float x = (float)v;
        worst = fmax(worst, fabs(clv_verff(x) - erf((double)x)));
    }
    cr_expect(worst < 4e-7, "verff max abs err %.3g", worst);
    cr_expect(clv_verff(0.0f) == 0.0f);
    cr_expect(clv_verff(-9.0f) == -1.0f && clv_verff(9.0f) == 1.0f);
    cr_expect(clv_verff(1e-20f) > 0.0f, "odd and nonzero near 0");
}

/* ---------------------------------------------------------------- linear */

typedef struct {
    float *y, *x, *w, *b, *r;
    int64_t N, in, out;
} linear_ctx;

static double linear_loss(void *p)
{
    linear_ctx *c = p;
    clv_linear_forward(c->y, c->x, c->w, c->b, c->N, c->in, c->out);
    return gradcheck_dot(c->y, c->r, c->N * c->out);
}

Test(kernels, linear_forward)
{
    const int64_t N = 7, in = 5, out = 3;
    float *x = frand(N * in, 1, -1, 1), *w = frand(out * in, 2, -1, 1), *b = frand(out, 3, -1, 1);
    float *y = fnan(N * out), *y0 = fnan(N * out);
    double *ref = dalloc(N * out), *ref0 = dalloc(N * out);
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < out; o++) {
            double s = 0;
            for (int64_t i = 0; i < in; i++)
                s += (double)x[n * in + i] * w[o * in + i];
            ref0[n * out + o] = s;
            ref[n * out + o] = s + b[o];
        }
    clv_linear_forward(y, x, w, b, N, in, out);
    clv_linear_forward(y0, x, w, NULL, N, in, out);
    EXPECT_CLOSE(y, ref, N * out, 1e-6, "linear with bias");
    EXPECT_CLOSE(y0, ref0, N * out, 1e-6, "linear without bias");
    clv_free(x), clv_free(w), clv_free(b), clv_free(y), clv_free(y0), free(ref), free(ref0);
}

Test(kernels, linear_backward)
{
    const int64_t N = 6, in = 5, out = 7;
    linear_ctx c = {.N = N, .in = in, .out = out};
    c.x = frand(N * in, 11, -1, 1), c.w = frand(out * in, 12, -1, 1), c.b = frand(out, 13, -1, 1);
    c.r = frand(N * out, 14, -1, 1), c.y = falloc(N * out);
    float *dx = falloc(N * in), *dw = falloc(out * in), *db = falloc(out);
    clv_linear_backward(dx, dw, db, c.r, c.x, c.w, N, in, out);
    EXPECT_GC(c.x, dx, N * in, linear_loss, &c, "linear dx");
    EXPECT_GC(c.w, dw, out * in, linear_loss, &c, "linear dw");
    EXPECT_GC(c.b, db, out, linear_loss, &c, "linear db");

    float *dx2 = falloc(N * in), *dw2 = falloc(out * in), *db2 = falloc(out);
    clv_linear_backward(dx2, dw2, db2, c.r, c.x, c.w, N, in, out);
    clv_linear_backward(dx2, dw2, db2, c.r, c.x, c.w, N, in, out);
    expect_doubled(dx2, dx, N * in, "linear dx");
    expect_doubled(dw2, dw, out * in, "linear dw");
    expect_doubled(db2, db, out, "linear db");
    /* NULL gradients are skipped */
    clv_linear_backward(NULL, NULL, db2, c.r, c.x, c.w, N, in, out);
    cr_expect(fabsf(db2[0] - 3 * db[0]) <= 1e-5f * fabsf(db[0]) + 1e-6f);
    clv_free(c.x), clv_free(c.w), clv_free(c.b), clv_free(c.r), clv_free(c.y);
    clv_free(dx), clv_free(dw), clv_free(db), clv_free(dx2), clv_free(dw2), clv_free(db2);
}

/* ------------------------------------------------------------- layernorm */

typedef struct {
    float *y, *mean, *rstd, *x, *w, *b, *r;
    int64_t N, C;
    float eps;
} ln_ctx;

static double ln_loss(void *p)
{
    ln_ctx *c = p;
    clv_layernorm_forward(c->y, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C, c->eps);
    return gradcheck_dot(c->y, c->r, c->N * c->C);
}

Test(kernels, layernorm_forward)
{
    const int64_t N = 4, C = 37;
    const float eps = 1e-6f;
    float *x = frand(N * C, 21, -2, 3), *w = frand(C, 22, 0.5f, 1.5f), *b = frand(C, 23, -1, 1);
    float *y = fnan(N * C), *mean = fnan(N), *rstd = fnan(N);
    double *ref = dalloc(N * C), *rm = dalloc(N), *rr = dalloc(N);
    for (int64_t n = 0; n < N; n++) {
        double m = 0, v = 0;
        for (int64_t c = 0; c < C; c++)
            m += x[n * C + c];
        m /= C;
        for (int64_t c = 0; c < C; c++)
            v += (x[n * C + c] - m) * (x[n * C + c] - m);
        v /= C; /* biased, as torch */
        rm[n] = m;
        rr[n] = 1.0 / sqrt(v + eps);
        for (int64_t c = 0; c < C; c++)
            ref[n * C + c] = (x[n * C + c] - m) * rr[n] * w[c] + b[c];
    }
    clv_layernorm_forward(y, mean, rstd, x, w, b, N, C, eps);
    EXPECT_CLOSE(y, ref, N * C, 2e-6, "layernorm y");
    EXPECT_CLOSE(mean, rm, N, 2e-6, "layernorm mean");
    for (int64_t n = 0; n < N; n++)
        cr_expect(fabs(rstd[n] - rr[n]) < 2e-6 * rr[n], "rstd[%lld] %g vs %g", (long long)n, rstd[n], rr[n]);

    /* a constant row: variance 0, rstd = eps^-1/2, y = b */
    float xc[8], yc[8], wc[8], bc[8], mc, rc;
    for (int i = 0; i < 8; i++)
        xc[i] = 3.0f, wc[i] = 2.0f, bc[i] = (float)i;
    clv_layernorm_forward(yc, &mc, &rc, xc, wc, bc, 1, 8, 1e-6f);
    cr_expect(mc == 3.0f && fabsf(rc - 1000.0f) < 1e-2f, "mean %g rstd %g", mc, rc);
    for (int i = 0; i < 8; i++)
        cr_expect(yc[i] == (float)i, "y[%d] = %g", i, yc[i]);
    clv_free(x), clv_free(w), clv_free(b), clv_free(y), clv_free(mean), clv_free(rstd);
    free(ref), free(rm), free(rr);
}

Test(kernels, layernorm_backward)
{
    const int64_t N = 5, C = 11;
    ln_ctx c = {.N = N, .C = C, .eps = 1e-5f};
    c.x = frand(N * C, 31, -2, 2), c.w = frand(C, 32, 0.5f, 1.5f), c.b = frand(C, 33, -1, 1);
    c.r = frand(N * C, 34, -1, 1), c.y = falloc(N * C), c.mean = falloc(N), c.rstd = falloc(N);
    ln_loss(&c);
    float *dx = falloc(N * C), *dw = falloc(C), *db = falloc(C);
    clv_layernorm_backward(dx, dw, db, c.r, c.x, c.w, c.mean, c.rstd, N, C);
    EXPECT_GC(c.x, dx, N * C, ln_loss, &c, "layernorm dx");
    EXPECT_GC(c.w, dw, C, ln_loss, &c, "layernorm dw");
    EXPECT_GC(c.b, db, C, ln_loss, &c, "layernorm db");

    ln_loss(&c); /* mean/rstd of the unperturbed x again */
    float *dx2 = falloc(N * C), *dw2 = falloc(C), *db2 = falloc(C);
    clv_layernorm_backward(dx2, dw2, db2, c.r, c.x, c.w, c.mean, c.rstd, N, C);
    clv_layernorm_backward(dx2, dw2, db2, c.r, c.x, c.w, c.mean, c.rstd, N, C);
    expect_doubled(dx2, dx, N * C, "layernorm dx");
    expect_doubled(dw2, dw, C, "layernorm dw");
    expect_doubled(db2, db, C, "layernorm db");
    clv_free(c.x), clv_free(c.w), clv_free(c.b), clv_free(c.r), clv_free(c.y), clv_free(c.mean), clv_free(c.rstd);
    clv_free(dx), clv_free(dw), clv_free(db), clv_free(dx2), clv_free(dw2), clv_free(db2);
}

/* dw and db by the one pass with dx and by the column pass without it: the same sums, group of
 * rows by group, bit for bit; and several groups' shares added up to the double sums' values. */
Test(kernels, layernorm_backward_parameter_sums_with_and_without_dx)
{
    const int64_t N = 203, C = 70; /* 4 groups of 64 rows, the last short; 3 column blocks */
    float *x = frand(N * C, 41, -2, 2), *w = frand(C, 42, 0.5f, 1.5f), *b = frand(C, 43, -1, 1);
    float *dy = frand(N * C, 44, -1, 1), *y = falloc(N * C), *mean = falloc(N), *rstd = falloc(N);
    clv_layernorm_forward(y, mean, rstd, x, w, b, N, C, 1e-5f);
    float *dx = falloc(N * C), *dw[2] = {falloc(C), falloc(C)}, *db[2] = {falloc(C), falloc(C)};
    clv_layernorm_backward(dx, dw[0], db[0], dy, x, w, mean, rstd, N, C);
    clv_layernorm_backward(NULL, dw[1], db[1], dy, x, w, mean, rstd, N, C);
    cr_expect_eq(memcmp(dw[0], dw[1], (size_t)C * sizeof(float)), 0, "dw with and without dx");
    cr_expect_eq(memcmp(db[0], db[1], (size_t)C * sizeof(float)), 0, "db with and without dx");
    for (int64_t c = 0; c < C; c++) {
        double ew = 0, eb = 0;
        for (int64_t n = 0; n < N; n++) {
            ew += (double)dy[n * C + c] * (((double)x[n * C + c] - mean[n]) * rstd[n]);
            eb += dy[n * C + c];
        }
        cr_expect(fabs(dw[0][c] - ew) < 1e-4 && fabs(db[0][c] - eb) < 1e-4, "column %lld: dw %g (%g), db %g (%g)",
                  (long long)c, dw[0][c], ew, db[0][c], eb);
    }
    clv_free(x), clv_free(w), clv_free(b), clv_free(dy), clv_free(y), clv_free(mean), clv_free(rstd), clv_free(dx);
    clv_free(dw[0]), clv_free(dw[1]), clv_free(db[0]), clv_free(db[1]);
}

/* ------------------------------------------------------------------ gelu */

typedef struct {
    float *y, *x, *r;
    int64_t n;
} un_ctx;

static double gelu_loss(void *p)
{
    un_ctx *c = p;
    clv_gelu_forward(c->y, c->x, c->n);
    return gradcheck_dot(c->y, c->r, c->n);
}

Test(kernels, gelu_forward)
{
    /* torch.nn.functional.gelu(torch.tensor([1., -1., 2.5, -3., 0.])) in double */
    const float x[5] = {1.0f, -1.0f, 2.5f, -3.0f, 0.0f};
    const double want[5] = {0.841344746068543, -0.15865525393145702, 2.4844758366855597, -0.00404969409489031, 0.0};
    float y[5];
    clv_gelu_forward(y, x, 5);
    for (int i = 0; i < 5; i++)
        cr_expect(fabs(y[i] - want[i]) < 1e-6, "gelu(%g) = %.9g, want %.9g", x[i], y[i], want[i]);
    const int64_t n = 1000;
    float *xs = frand(n, 41, -6, 6), *ys = fnan(n);
    double *ref = dalloc(n);
    for (int64_t i = 0; i < n; i++)
        ref[i] = 0.5 * xs[i] * (1.0 + erf(xs[i] / sqrt(2.0)));
    clv_gelu_forward(ys, xs, n);
    EXPECT_CLOSE(ys, ref, n, 1e-6, "gelu");
    clv_free(xs), clv_free(ys), free(ref);
}

Test(kernels, gelu_backward)
{
    const int64_t n = 40;
    un_ctx c = {.n = n};
    c.x = frand(n, 51, -4, 4), c.r = frand(n, 52, -1, 1), c.y = falloc(n);
    float *dx = falloc(n), *dx2 = falloc(n);
    clv_gelu_backward(dx, c.r, c.x, n);
    EXPECT_GC(c.x, dx, n, gelu_loss, &c, "gelu dx");
    /* exact derivative against double at a few points */
    for (int64_t i = 0; i < n; i++) {
        const double v = c.x[i];
        const double d = 0.5 * (1 + erf(v / sqrt(2.0))) + v * exp(-0.5 * v * v) / sqrt(2 * M_PI);
        cr_expect(fabs(dx[i] - c.r[i] * d) < 1e-6, "gelu'(%g)", v);
    }
    clv_gelu_backward(dx2, c.r, c.x, n);
    clv_gelu_backward(dx2, c.r, c.x, n);
    expect_doubled(dx2, dx, n, "gelu dx");
    /* GELU and GELU' in one pass: GELU's floats, and times dy the backward's floats */
    float *g = fnan(n), *y = fnan(n), *d = falloc(n);
    memcpy(d, c.x, (size_t)n * sizeof(float));
    clv_gelu_forward(y, c.x, n);
    clv_gelu_forward_grad(g, d, d, n);
    clv_mul_forward(d, c.r, d, n);
    for (int64_t i = 0; i < n; i++) {
        cr_expect_eq(g[i], y[i], "fused gelu(%g)", (double)c.x[i]);
        cr_expect_eq(d[i], dx[i], "fused gelu'(%g) times dy", (double)c.x[i]);
    }
    /* the derivative into its own buffer, x untouched: the same floats */
    float *g2 = fnan(n), *d2 = fnan(n), *x2 = falloc(n);
    memcpy(x2, c.x, (size_t)n * sizeof(float));
    clv_gelu_forward_grad(g2, d2, x2, n);
    clv_mul_forward(d2, c.r, d2, n);
    cr_expect(memcmp(x2, c.x, (size_t)n * sizeof(float)) == 0, "x only read");
    cr_expect(memcmp(g2, g, (size_t)n * sizeof(float)) == 0 && memcmp(d2, d, (size_t)n * sizeof(float)) == 0);
    clv_free(g2), clv_free(d2), clv_free(x2);
    clv_free(g), clv_free(y), clv_free(d);
    clv_free(c.x), clv_free(c.r), clv_free(c.y), clv_free(dx), clv_free(dx2);
}

/* --------------------------------------------------------------- softmax */

typedef struct {
    float *y, *x, *r;
    int64_t N, K;
} sm_ctx;

static double softmax_loss(void *p)
{
    sm_ctx *c = p;
    clv_softmax_forward(c->y, c->x, c->N, c->K);
    return gradcheck_dot(c->y, c->r, c->N * c->K);
}

Test(kernels, softmax_forward)
{
    const float x[4] = {0.0f, logf(3.0f), 1000.0f, 1000.0f};
    float y[4];
    clv_softmax_forward(y, x, 2, 2);
    cr_expect(fabsf(y[0] - 0.25f) < 1e-7f && fabsf(y[1] - 0.75f) < 1e-7f, "%g %g", y[0], y[1]);
    cr_expect(y[2] == 0.5f && y[3] == 0.5f, "large logits overflow: %g %g", y[2], y[3]);

    const int64_t N = 3, K = 17;
    float *xs = frand(N * K, 61, -8, 8), *ys = fnan(N * K);
    double *ref = dalloc(N * K);
    for (int64_t n = 0; n < N; n++) {
        double s = 0;
        for (int64_t k = 0; k < K; k++)
            s += exp(xs[n * K + k]);
        for (int64_t k = 0; k < K; k++)
            ref[n * K + k] = exp(xs[n * K + k]) / s;
    }
    clv_softmax_forward(ys, xs, N, K);
    EXPECT_CLOSE(ys, ref, N * K, 1e-6, "softmax");
    clv_free(xs), clv_free(ys), free(ref);
}

Test(kernels, softmax_backward)
{
    const int64_t N = 4, K = 7;
    sm_ctx c = {.N = N, .K = K};
    c.x = frand(N * K, 71, -3, 3), c.r = frand(N * K, 72, -1, 1), c.y = falloc(N * K);
    softmax_loss(&c);
    float *dx = falloc(N * K), *dx2 = falloc(N * K);
    clv_softmax_backward(dx, c.r, c.y, N, K);
    EXPECT_GC(c.x, dx, N * K, softmax_loss, &c, "softmax dx");
    softmax_loss(&c);
    clv_softmax_backward(dx2, c.r, c.y, N, K);
    clv_softmax_backward(dx2, c.r, c.y, N, K);
    expect_doubled(dx2, dx, N * K, "softmax dx");
    clv_free(c.x), clv_free(c.r), clv_free(c.y), clv_free(dx), clv_free(dx2);
}

/* ------------------------------------------------------------------ xent */

typedef struct {
    float *probs, *logits;
    int32_t *labels;
    int64_t N, K;
    float dloss;
} xent_ctx;

static double xent_loss(void *p)
{
    xent_ctx *c = p;
    return c->dloss * (double)clv_xent_forward(c->probs, c->logits, c->labels, c->N, c->K, NULL);
}

Test(kernels, xent_forward)
{
    const float logits[6] = {0.0f, 0.0f, 0.0f, 200.0f, 5.0f, -1.0f};
    const int32_t labels[3] = {0, 0, 0};
    float probs[6];
    int64_t correct = -1;
    /* rows: (0,0) label 0 -> ln 2, not counted correct (tie goes to index 0: correct)
     *       (0,200) label 0 -> 200 exactly, p underflows yet the loss is finite
     *       (5,-1) label 0 -> log(1 + e^-6) */
    const float l = clv_xent_forward(probs, logits, labels, 3, 2, &correct);
    const double want = (log(2.0) + 200.0 + log1p(exp(-6.0))) / 3.0;
    cr_expect(fabs(l - want) < 1e-5 * want, "loss %.9g want %.9g", l, want);
    cr_expect(correct == 2, "correct %lld", (long long)correct);
    cr_expect(probs[2] == 0.0f && probs[3] == 1.0f);

    const int64_t N = 9, K = 13;
    float *x = frand(N * K, 81, -5, 5), *p = fnan(N * K);
    int32_t lab[9];
    for (int i = 0; i < 9; i++)
        lab[i] = (int32_t)((i * 7) % K);
    double ref = 0;
    int64_t ref_ok = 0;
    for (int64_t n = 0; n < N; n++) {
        double s = 0;
        int64_t best = 0;
        for (int64_t k = 0; k < K; k++) {
            s += exp(x[n * K + k]);
            if (x[n * K + k] > x[n * K + best])
                best = k;
        }
        ref += log(s) - x[n * K + lab[n]];
        ref_ok += best == lab[n];
    }
    ref /= N;
    int64_t ok = -1;
    const float loss = clv_xent_forward(p, x, lab, N, K, &ok);
    cr_expect(fabs(loss - ref) < 1e-6 * fabs(ref), "loss %.9g ref %.9g", loss, ref);
    cr_expect(ok == ref_ok, "correct %lld ref %lld", (long long)ok, (long long)ref_ok);
    for (int64_t n = 0; n < N; n++) {
        double s = 0;
        for (int64_t k = 0; k < K; k++)
            s += p[n * K + k];
        cr_expect(fabs(s - 1) < 1e-6, "row %lld sums to %.9g", (long long)n, s);
    }
    clv_free(x), clv_free(p);
}

Test(kernels, xent_backward)
{
    const int64_t N = 5, K = 6;
    int32_t lab[5] = {0, 5, 2, 2, 3};
    xent_ctx c = {.N = N, .K = K, .labels = lab, .dloss = 1.7f};
    c.logits = frand(N * K, 91, -3, 3), c.probs = falloc(N * K);
    xent_loss(&c);
    float *dl = falloc(N * K), *dl2 = falloc(N * K);
    clv_xent_backward(dl, c.probs, lab, N, K, c.dloss);
    EXPECT_GC(c.logits, dl, N * K, xent_loss, &c, "xent dlogits");
    xent_loss(&c);
    clv_xent_backward(dl2, c.probs, lab, N, K, c.dloss);
    clv_xent_backward(dl2, c.probs, lab, N, K, c.dloss);
    expect_doubled(dl2, dl, N * K, "xent dlogits");
    clv_free(c.logits), clv_free(c.probs), clv_free(dl), clv_free(dl2);
}

/* ------------------------------------------------------------- attention */

typedef struct {
    float *out, *att, *qkv, *r, *scratch;
    int64_t B, T, C, H;
} attn_ctx;

static double attn_loss(void *p)
{
    attn_ctx *c = p;
    clv_attention_forward(c->out, c->att, c->qkv, c->B, c->T, c->C, c->H, c->scratch);
    return gradcheck_dot(c->out, c->r, c->B * c->T * c->C);
}

static void attn_ctx_init(attn_ctx *c, int64_t B, int64_t T, int64_t C, int64_t H, uint64_t seed)
{
    *c = (attn_ctx){.B = B, .T = T, .C = C, .H = H};
    c->qkv = frand(B * T * 3 * C, seed, -1.5f, 1.5f);
    c->r = frand(B * T * C, seed + 1, -1, 1);
    c->out = fnan(B * T * C);
    c->att = fnan(B * H * T * T);
    c->scratch = falloc(clv_attention_scratch_floats(B, T, C, H));
}

static void attn_ctx_free(attn_ctx *c)
{
    clv_free(c->qkv), clv_free(c->r), clv_free(c->out), clv_free(c->att), clv_free(c->scratch);
}

/* timm: q, k, v = qkv.reshape(B, T, 3, H, hd).permute(2, 0, 3, 1, 4);
 * out = (softmax(q * hd^-0.5 @ k^T) @ v).transpose(1, 2).reshape(B, T, C) */
static void attn_reference(double *out, double *att, const float *qkv, int64_t B, int64_t T, int64_t C, int64_t H)
{
    const int64_t hd = C / H;
    const double scale = 1.0 / sqrt((double)hd);
#define QKV(b, t, s, h, d) ((double)qkv[((b) * T + (t)) * 3 * C + (s) * C + (h) * hd + (d)])
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++) {
                double *a = att + ((b * H + h) * T + i) * T, m = -INFINITY, s = 0;
                for (int64_t j = 0; j < T; j++) {
                    double dot = 0;
                    for (int64_t d = 0; d < hd; d++)
                        dot += QKV(b, i, 0, h, d) * scale * QKV(b, j, 1, h, d);
                    a[j] = dot;
                    m = fmax(m, dot);
                }
                for (int64_t j = 0; j < T; j++)
                    s += (a[j] = exp(a[j] - m));
                for (int64_t j = 0; j < T; j++)
                    a[j] /= s;
                for (int64_t d = 0; d < hd; d++) {
                    double o = 0;
                    for (int64_t j = 0; j < T; j++)
                        o += a[j] * QKV(b, j, 2, h, d);
                    out[(b * T + i) * C + h * hd + d] = o;
                }
            }
#undef QKV
}

Test(kernels, attention_forward)
{
    const int64_t B = 2, T = 5, C = 9, H = 3; /* hd = 3 */
    attn_ctx c;
    attn_ctx_init(&c, B, T, C, H, 101);
    double *ro = dalloc(B * T * C), *ra = dalloc(B * H * T * T);
    attn_reference(ro, ra, c.qkv, B, T, C, H);
    clv_attention_forward(c.out, c.att, c.qkv, B, T, C, H, c.scratch);
    EXPECT_CLOSE(c.out, ro, B * T * C, 1e-6, "attention out");
    EXPECT_CLOSE(c.att, ra, B * H * T * T, 1e-6, "attention probabilities");
    /* the output again from the saved probabilities: every entry, the forward's floats */
    float *again = fnan(B * T * C);
    clv_attention_output(again, c.att, c.qkv, B, T, C, H);
    cr_expect_eq(memcmp(again, c.out, (size_t)(B * T * C) * sizeof(float)), 0, "att V again differs");
    /* the output in bf16 only: the bf16 of out, bit for bit, every entry; the same probabilities */
    clv_bf16 *h = malloc((size_t)(B * T * C) * sizeof *h), *ref = malloc((size_t)(B * T * C) * sizeof *ref);
    float *att2 = fnan(B * H * T * T);
    memset(h, 0xff, (size_t)(B * T * C) * sizeof *h);
    clv_bf16_from_floats(ref, c.out, (size_t)(B * T * C));
    clv_attention_forward_h(h, att2, c.qkv, B, T, C, H, c.scratch);
    cr_expect_eq(memcmp(h, ref, (size_t)(B * T * C) * sizeof *h), 0, "the output in bf16 differs");
    cr_expect_eq(memcmp(att2, c.att, (size_t)(B * H * T * T) * sizeof(float)), 0, "its probabilities differ");
    free(h), free(ref), clv_free(att2);
    clv_free(again);
    attn_ctx_free(&c);
    free(ro), free(ra);
}

Test(kernels, attention_backward)
{
    const int64_t shapes[3][4] = {{2, 5, 9, 3}, {1, 7, 8, 2}, {3, 4, 6, 1}};
    for (int s = 0; s < 3; s++) {
        const int64_t B = shapes[s][0], T = shapes[s][1], C = shapes[s][2], H = shapes[s][3];
        attn_ctx c;
        attn_ctx_init(&c, B, T, C, H, 111 + 10 * s);
        const int64_t n = B * T * 3 * C;
        float *dqkv = falloc(n), *d2 = fnan(n);
        attn_loss(&c);
        clv_attention_backward(dqkv, c.r, c.qkv, c.att, B, T, C, H, c.scratch);
        char what[64];
        snprintf(what, sizeof what, "attention dqkv B%lld T%lld C%lld H%lld", (long long)B, (long long)T,
                 (long long)C, (long long)H);
        EXPECT_GC(c.qkv, dqkv, n, attn_loss, &c, what);
        attn_loss(&c);
        /* it writes (not adds): every entry over a NaN-filled buffer, twice gives the same bits */
        clv_attention_backward(d2, c.r, c.qkv, c.att, B, T, C, H, c.scratch);
        clv_attention_backward(d2, c.r, c.qkv, c.att, B, T, C, H, c.scratch);
        cr_expect_eq(memcmp(d2, dqkv, (size_t)n * sizeof(float)), 0, "%s: not overwritten", what);
        /* att = NULL: the probabilities recomputed from qkv, the same gradient bit for bit */
        float *d3 = falloc(n);
        attn_loss(&c);
        clv_attention_backward(d3, c.r, c.qkv, NULL, B, T, C, H, c.scratch);
        cr_expect_eq(memcmp(d3, dqkv, (size_t)n * sizeof(float)), 0, "%s: recomputed probabilities differ", what);
        clv_free(d3);
        clv_free(dqkv), clv_free(d2);
        attn_ctx_free(&c);
    }
}

/* dqkv in bf16 only: the bf16 of clv_attention_backward's dqkv bit for bit (each pair's dq, dk,
 * dv go through the thread's scratch, not dqkv), every entry written, with att kept and
 * recomputed; colsum += dqkv's column sums (fp32 sums of the same floats in another order:
 * within 1e-5 of double sums), on 1 and 3 threads the same bits. */
Test(kernels, attention_backward_to_bf16_is_the_rounded_fp32_backward)
{
    const int64_t shapes[2][4] = {{2, 5, 9, 3}, {3, 7, 8, 2}};
    const int saved = omp_get_max_threads();
    for (int s = 0; s < 2; s++) {
        const int64_t B = shapes[s][0], T = shapes[s][1], C = shapes[s][2], H = shapes[s][3], ld = 3 * C;
        attn_ctx c;
        attn_ctx_init(&c, B, T, C, H, 151 + 10 * s);
        const int64_t n = B * T * ld;
        float *dqkv = falloc(n), *parts = fnan(B * ld), *colsum[2] = {falloc(ld), falloc(ld)};
        clv_bf16 *ref = malloc((size_t)n * sizeof *ref), *h = malloc((size_t)n * sizeof *h);
        attn_loss(&c);
        clv_attention_backward(dqkv, c.r, c.qkv, c.att, B, T, C, H, c.scratch);
        clv_bf16_from_floats(ref, dqkv, (size_t)n);
        for (int k = 0; k < 2; k++) {
            omp_set_num_threads(k ? 3 : 1);
            memset(h, 0xff, (size_t)n * sizeof *h);
            for (int64_t j = 0; j < ld; j++)
                colsum[k][j] = 0.5f; /* added to, not overwritten */
            clv_attention_backward_h(h, colsum[k], parts, c.r, c.qkv, k ? NULL : c.att, B, T, C, H, c.scratch);
            cr_expect_eq(memcmp(h, ref, (size_t)n * sizeof *h), 0, "B%lld T%lld: %d thread(s), att %s", (long long)B,
                         (long long)T, k ? 3 : 1, k ? "recomputed" : "kept");
        }
        omp_set_num_threads(saved);
        cr_expect_eq(memcmp(colsum[0], colsum[1], (size_t)ld * sizeof(float)), 0, "column sums: 1 vs 3 threads");
        for (int64_t j = 0; j < ld; j++) {
            double e = 0.5;
            for (int64_t r = 0; r < B * T; r++)
                e += dqkv[r * ld + j];
            cr_expect(fabs(colsum[0][j] - e) <= 1e-5 * (1 + fabs(e)), "column %lld: %.9g against %.9g", (long long)j,
                      colsum[0][j], e);
        }
        /* without colsum, parts is not read */
        clv_attention_backward_h(h, NULL, NULL, c.r, c.qkv, c.att, B, T, C, H, c.scratch);
        cr_expect_eq(memcmp(h, ref, (size_t)n * sizeof *h), 0, "without column sums");
        clv_free(dqkv), clv_free(parts), clv_free(colsum[0]), clv_free(colsum[1]);
        free(ref), free(h);
        attn_ctx_free(&c);
    }
}

/* Also: a scratch sized while 1 thread was set stays large enough when the
 * count is raised to 4 afterwards (run under make DEBUG=1 to see overflows). */
Test(kernels, attention_thread_count_independent)
{
    const int64_t B = 3, T = 17, C = 24, H = 4;
    const int64_t nout = B * T * C, natt = B * H * T * T, nqkv = B * T * 3 * C;
    const int saved = omp_get_max_threads();
    const int threads[3] = {1, 2, 4};
    float *out[3], *att[3], *dqkv[3];
    omp_set_num_threads(1);
    attn_ctx c;
    attn_ctx_init(&c, B, T, C, H, 131);
    for (int k = 0; k < 3; k++) {
        omp_set_num_threads(threads[k]);
        out[k] = falloc(nout), att[k] = falloc(natt), dqkv[k] = falloc(nqkv);
        clv_attention_forward(out[k], att[k], c.qkv, B, T, C, H, c.scratch);
        clv_attention_backward(dqkv[k], c.r, c.qkv, att[k], B, T, C, H, c.scratch);
    }
    omp_set_num_threads(saved);
    for (int k = 1; k < 3; k++) {
        cr_expect(memcmp(out[0], out[k], (size_t)nout * sizeof(float)) == 0, "out: 1 vs %d threads", threads[k]);
        cr_expect(memcmp(att[0], att[k], (size_t)natt * sizeof(float)) == 0, "att: 1 vs %d threads", threads[k]);
        cr_expect(memcmp(dqkv[0], dqkv[k], (size_t)nqkv * sizeof(float)) == 0, "dqkv: 1 vs %d threads", threads[k]);
    }
    for (int k = 0; k < 3; k++)
        clv_free(out[k]), clv_free(att[k]), clv_free(dqkv[k]);
    attn_ctx_free(&c);
}

/* Large enough to take the parallel paths of the row and column loops. */
Test(kernels, reductions_thread_count_independent)
{
    const int64_t N = 301, C = 97;
    float *x = frand(N * C, 141, -2, 2), *w = frand(C, 142, 0.5f, 1.5f), *b = frand(C, 143, -1, 1);
    float *dy = frand(N * C, 144, -1, 1);
    const int saved = omp_get_max_threads();
    float *y[2], *dx[2], *dw[2], *db[2], *cs[2], mean[301], rstd[301];
    for (int k = 0; k < 2; k++) {
        omp_set_num_threads(k + 1);
        y[k] = falloc(N * C), dx[k] = falloc(N * C), dw[k] = falloc(C), db[k] = falloc(C), cs[k] = falloc(C);
        clv_layernorm_forward(y[k], mean, rstd, x, w, b, N, C, 1e-6f);
        clv_layernorm_backward(dx[k], dw[k], db[k], dy, x, w, mean, rstd, N, C);
        clv_colsum_add(cs[k], dy, N, C);
    }
    omp_set_num_threads(saved);
    cr_expect(memcmp(y[0], y[1], (size_t)(N * C) * sizeof(float)) == 0, "layernorm y");
    cr_expect(memcmp(dx[0], dx[1], (size_t)(N * C) * sizeof(float)) == 0, "layernorm dx");
    cr_expect(memcmp(dw[0], dw[1], (size_t)C * sizeof(float)) == 0, "layernorm dw");
    cr_expect(memcmp(db[0], db[1], (size_t)C * sizeof(float)) == 0, "layernorm db");
    cr_expect(memcmp(cs[0], cs[1], (size_t)C * sizeof(float)) == 0, "colsum");
    for (int k = 0; k < 2; k++)
        clv_free(y[k]), clv_free(dx[k]), clv_free(dw[k]), clv_free(db[k]), clv_free(cs[k]);
    clv_free(x), clv_free(w), clv_free(b), clv_free(dy);
}

/* -------------------------------------------------------------- patchify */

/* patchify then a GEMM with the flattened conv weight must equal the
 * convolution with kernel = stride = P computed directly. */
Test(kernels, patchify_is_strided_conv)
{
    const int64_t B = 2, Cin = 3, H = 6, W = 9, P = 3, D = 4;
    const int64_t gh = H / P, gw = W / P, np = gh * gw, row = Cin * P * P;
    float *img = frand(B * Cin * H * W, 151, -1, 1), *wt = frand(D * row, 152, -1, 1);
    float *patches = fnan(B * np * row), *y = fnan(B * np * D);
    double *ref = dalloc(B * np * D);
    for (int64_t b = 0; b < B; b++)
        for (int64_t d = 0; d < D; d++)
            for (int64_t py = 0; py < gh; py++)
                for (int64_t px = 0; px < gw; px++) {
                    double s = 0;
                    for (int64_t c = 0; c < Cin; c++)
                        for (int64_t i = 0; i < P; i++)
                            for (int64_t j = 0; j < P; j++)
                                s += (double)wt[((d * Cin + c) * P + i) * P + j] *
                                     img[((b * Cin + c) * H + py * P + i) * W + px * P + j];
                    /* the conv's output [B, D, gh, gw] flattened to tokens [B, gh*gw, D] */
                    ref[(b * np + py * gw + px) * D + d] = s;
                }
    clv_patchify(patches, img, B, Cin, H, W, P);
    clv_linear_forward(y, patches, wt, NULL, B * np, row, D);
    EXPECT_CLOSE(y, ref, B * np * D, 1e-6, "patchify + linear vs conv");
    clv_free(img), clv_free(wt), clv_free(patches), clv_free(y), free(ref);
}

typedef struct {
    float *patches, *img, *r;
    int64_t B, Cin, H, W, P;
} patch_ctx;

static double patch_loss(void *p)
{
    patch_ctx *c = p;
    clv_patchify(c->patches, c->img, c->B, c->Cin, c->H, c->W, c->P);
    return gradcheck_dot(c->patches, c->r, c->B * c->Cin * c->H * c->W);
}

Test(kernels, patchify_backward)
{
    patch_ctx c = {.B = 2, .Cin = 2, .H = 4, .W = 6, .P = 2};
    const int64_t n = c.B * c.Cin * c.H * c.W;
    c.img = frand(n, 161, -1, 1), c.r = frand(n, 162, -1, 1), c.patches = falloc(n);
    float *dimg = falloc(n), *d2 = falloc(n);
    clv_patchify_backward(dimg, c.r, c.B, c.Cin, c.H, c.W, c.P);
    EXPECT_GC(c.img, dimg, n, patch_loss, &c, "patchify dimg");
    clv_patchify_backward(d2, c.r, c.B, c.Cin, c.H, c.W, c.P);
    clv_patchify_backward(d2, c.r, c.B, c.Cin, c.H, c.W, c.P);
    expect_doubled(d2, dimg, n, "patchify dimg");
    clv_free(c.img), clv_free(c.r), clv_free(c.patches), clv_free(dimg), clv_free(d2);
}

/* ------------------------------------------------------ row-wise helpers */

Test(kernels, elementwise_helpers)
{
    const float a[5] = {1, 2, 3, 4, 5}, b[5] = {0.5f, -2, 0, 1e-3f, -5};
    float y[5];
    clv_add_forward(y, a, b, 5);
    cr_expect(y[0] == 1.5f && y[1] == 0 && y[2] == 3 && y[3] == 4.001f && y[4] == 0);

    /* 2 x 3 */
    float m[6] = {1, 2, 3, 4, 5, 6};
    const float s[3] = {2, -1, 0.5f};
    clv_scale_columns(m, s, 2, 3);
    const float want[6] = {2, -2, 1.5f, 8, -5, 3};
    for (int i = 0; i < 6; i++)
        cr_expect(m[i] == want[i], "scaled[%d] = %g want %g", i, m[i], want[i]);

    float cs[3] = {10, 20, 30};
    clv_colsum_add(cs, m, 2, 3); /* accumulates */
    cr_expect(cs[0] == 20 && cs[1] == 13 && cs[2] == 34.5f, "%g %g %g", cs[0], cs[1], cs[2]);

    /* more columns than one block, odd sizes */
    const int64_t N = 13, C = 75;
    float *x = frand(N * C, 171, -1, 1), *out = falloc(C);
    clv_colsum_add(out, x, N, C);
    double worst = 0;
    for (int64_t c = 0; c < C; c++) {
        double r = 0;
        for (int64_t n = 0; n < N; n++)
            r += x[n * C + c];
        worst = fmax(worst, fabs(out[c] - r));
    }
    cr_expect(worst < 1e-5, "colsum err %.3g", worst);
    clv_free(x), clv_free(out);
}

/* ------------------------------------------------------ output scales */

Test(kernels, scale_columns_save_and_backward)
{
    const int64_t N = 750, C = 45; /* more columns than one block, odd sizes, enough to go parallel */
    float *y = falloc(N * C), *z = falloc(N * C), *s = falloc(C), *dy = falloc(N * C), *dz = falloc(N * C);
    float *y0 = falloc(N * C), *b = falloc(C), ds[45];
    gradcheck_fill(z, N * C, 1, -1, 1);
    gradcheck_fill(s, C, 2, 0.5f, 1.5f);
    gradcheck_fill(dy, N * C, 3, -1, 1);
    gradcheck_fill(b, C, 4, -1, 1);
    memcpy(y0, z, (size_t)(N * C) * sizeof(float));
    clv_linear_epilogue(y, z, b, s, NULL, NULL, N, C);
    for (int64_t i = 0; i < N * C; i++) {
        cr_assert_eq(z[i], y0[i] + b[i % C], "z keeps the pre-scale output, bias added");
        cr_assert_eq(y[i], (y0[i] + b[i % C]) * s[i % C]);
    }
    /* in place, with and without a bias */
    float *w = falloc(N * C);
    memcpy(w, y0, (size_t)(N * C) * sizeof(float));
    clv_linear_epilogue(w, NULL, b, s, NULL, NULL, N, C);
    cr_assert(memcmp(w, y, (size_t)(N * C) * sizeof(float)) == 0, "in place with bias");
    memcpy(w, y0, (size_t)(N * C) * sizeof(float));
    clv_linear_epilogue(w, NULL, NULL, s, NULL, NULL, N, C);
    for (int64_t i = 0; i < N * C; i++)
        cr_assert_eq(w[i], y0[i] * s[i % C], "in place without bias");
    clv_free(w), clv_free(b);
    /* the backward: ds = colsum(dy * z) and colsum(dy), rows in order (the floats of clv_colsum_add) */
    float *dsum = fnan(C), *dsum_want = falloc(C);
    memset(dsum_want, 0, (size_t)C * sizeof(float));
    memcpy(dz, z, (size_t)(N * C) * sizeof(float));
    clv_scale_columns_backward(ds, dsum, dy, z, NULL, N, C);
    cr_assert(memcmp(dz, z, (size_t)(N * C) * sizeof(float)) == 0, "z is only read");
    clv_colsum_add(dsum_want, dy, N, C);
    for (int64_t c = 0; c < C; c++) {
        double acc = 0;
        for (int64_t n = 0; n < N; n++)
            acc += (double)dy[n * C + c] * z[n * C + c];
        cr_assert_float_eq(ds[c], acc, 1e-5 * (1 + fabs(acc)), "ds[%lld] %.9g %.9g", (long long)c, ds[c], acc);
        cr_assert_eq(dsum[c], dsum_want[c], "column sum of dy [%lld]", (long long)c);
    }
    /* the same bits on 1 and 3 threads */
    const int saved = omp_get_max_threads();
    float ds1[45], dsum1[45];
    for (int t = 1; t <= 3; t += 2) {
        omp_set_num_threads(t);
        clv_scale_columns_backward(ds1, dsum1, dy, z, NULL, N, C);
        cr_assert(memcmp(ds1, ds, sizeof ds1) == 0 && memcmp(dsum1, dsum, sizeof dsum1) == 0, "%d threads", t);
    }
    omp_set_num_threads(saved);
    /* from the scaled output y = z * s: ds = colsum(dy * y) / s, the same to float rounding */
    float *ys = falloc(N * C), ds2[45], dsum2[45];
    for (int64_t i = 0; i < N * C; i++)
        ys[i] = z[i] * s[i % C];
    clv_scale_columns_backward(ds2, dsum2, dy, ys, s, N, C);
    for (int64_t c = 0; c < C; c++) {
        cr_assert_float_eq(ds2[c], ds[c], 1e-5f * (1 + fabsf(ds[c])), "ds from y [%lld]", (long long)c);
        cr_assert_eq(dsum2[c], dsum[c]);
    }
    clv_free(ys);
    clv_free(dsum), clv_free(dsum_want);
    clv_free(y), clv_free(z), clv_free(s), clv_free(dy), clv_free(dz), clv_free(y0);
}

/* ------------------------------------------------------------- low rank */

typedef struct {
    const float *x, *W, *r, *s;
    float *A, *B;
    int64_t N, in, out;
    int K;
} lowrank_ctx;

/* L = sum r . ((x (W + A B)^T) diag(s)), in double (s NULL: ones) */
static double lowrank_loss(void *p)
{
    const lowrank_ctx *c = p;
    double L = 0;
    for (int64_t o = 0; o < c->out; o++)
        for (int64_t i = 0; i < c->in; i++) {
            double w = c->W[o * c->in + i];
            for (int k = 0; k < c->K; k++)
                w += (double)c->A[o * c->K + k] * c->B[k * c->in + i];
            if (c->s)
                w *= c->s[o];
            for (int64_t n = 0; n < c->N; n++)
                L += (double)c->r[n * c->out + o] * c->x[n * c->in + i] * w;
        }
    return L;
}

/* Odd sizes: rank blocks with a remainder, feature widths with vector tails,
 * rows over several groups and a short last chunk; without and with an
 * output scale (dz = dy * s, given as dy and s). */
Test(kernels, lowrank_backward)
{
    const int ranks[3] = {5, 16, 7};
    for (int ri = 0; ri < 3; ri++) {
        const int64_t N = 301, in = 27, out = 45;
        const int K = ranks[ri];
        float *x = frand(N * in, 161, -1, 1), *dz = frand(N * out, 162, -1, 1);
        float *sc = ri == 2 ? frand(out, 167, 0.25f, 2.0f) : NULL;
        float *A = frand(out * K, 163, -0.5f, 0.5f), *B = frand(K * in, 164, -0.5f, 0.5f);
        float *dA = frand(out * K, 165, -1, 1), *dB = frand(K * in, 166, -1, 1);
        float *dA0 = falloc(out * K), *dB0 = falloc(K * in);
        memcpy(dA0, dA, (size_t)(out * K) * sizeof(float));
        memcpy(dB0, dB, (size_t)(K * in) * sizeof(float));
        float *scratch = falloc(clv_lowrank_backward_scratch_floats(N, in, out, K));
        clv_lowrank_backward(dA, dB, x, dz, sc, A, B, N, in, out, K, scratch);
        /* double reference, added to the previous contents */
        double *refA = dalloc(out * K), *refB = dalloc(K * in);
        for (int64_t n = 0; n < N; n++) {
            for (int k = 0; k < K; k++) {
                double t1 = 0, t2 = 0;
                for (int64_t i = 0; i < in; i++)
                    t1 += (double)x[n * in + i] * B[k * in + i];
                for (int64_t o = 0; o < out; o++)
                    t2 += (double)dz[n * out + o] * (sc ? sc[o] : 1.0) * A[o * K + k];
                for (int64_t o = 0; o < out; o++)
                    refA[o * K + k] += dz[n * out + o] * (sc ? sc[o] : 1.0) * t1;
                for (int64_t i = 0; i < in; i++)
                    refB[k * in + i] += t2 * x[n * in + i];
            }
        }
        for (int64_t j = 0; j < out * K; j++)
            refA[j] += dA0[j];
        for (int64_t j = 0; j < K * in; j++)
            refB[j] += dB0[j];
        EXPECT_CLOSE(dA, refA, out * K, 1e-5, "dA (accumulated)");
        EXPECT_CLOSE(dB, refB, K * in, 1e-5, "dB (accumulated)");

        /* the same bits on 1, 2 and 3 threads; only dB when dA is not asked for */
        const int saved = omp_get_max_threads();
        for (int t = 1; t <= 3; t++) {
            omp_set_num_threads(t);
            float *a2 = falloc(out * K), *b2 = falloc(K * in), *b3 = falloc(K * in);
            memcpy(a2, dA0, (size_t)(out * K) * sizeof(float));
            memcpy(b2, dB0, (size_t)(K * in) * sizeof(float));
            memcpy(b3, dB0, (size_t)(K * in) * sizeof(float));
            clv_lowrank_backward(a2, b2, x, dz, sc, A, B, N, in, out, K, scratch);
            clv_lowrank_backward(NULL, b3, x, dz, sc, A, B, N, in, out, K, scratch);
            cr_expect(memcmp(a2, dA, (size_t)(out * K) * sizeof(float)) == 0, "dA: %d threads", t);
            cr_expect(memcmp(b2, dB, (size_t)(K * in) * sizeof(float)) == 0, "dB: %d threads", t);
            cr_expect(memcmp(b3, dB, (size_t)(K * in) * sizeof(float)) == 0, "dB alone: %d threads", t);
            clv_free(a2), clv_free(b2), clv_free(b3);
        }
        omp_set_num_threads(saved);
        clv_free(x), clv_free(dz), clv_free(A), clv_free(B), clv_free(dA), clv_free(dB), clv_free(dA0);
        clv_free(dB0), clv_free(scratch), free(refA), free(refB), clv_free(sc);
    }

    /* finite differences of sum r . (x (W + A B)^T) on a small case */
    const int64_t N = 7, in = 10, out = 9;
    const int K = 3;
    float *x = frand(N * in, 171, -1, 1), *W = frand(out * in, 172, -1, 1), *r = frand(N * out, 173, -1, 1);
    float *A = frand(out * K, 174, -1, 1), *B = frand(K * in, 175, -1, 1);
    float *dA = falloc(out * K), *dB = falloc(K * in);
    memset(dA, 0, (size_t)(out * K) * sizeof(float));
    memset(dB, 0, (size_t)(K * in) * sizeof(float));
    float *scratch = falloc(clv_lowrank_backward_scratch_floats(N, in, out, K));
    clv_lowrank_backward(dA, dB, x, r, NULL, A, B, N, in, out, K, scratch);
    lowrank_ctx c = {x, W, r, NULL, A, B, N, in, out, K};
    EXPECT_GC(A, dA, out * K, lowrank_loss, &c, "dA");
    EXPECT_GC(B, dB, K * in, lowrank_loss, &c, "dB");
    /* with an output scale */
    float *sc = frand(out, 176, 0.25f, 2.0f);
    memset(dA, 0, (size_t)(out * K) * sizeof(float));
    memset(dB, 0, (size_t)(K * in) * sizeof(float));
    clv_lowrank_backward(dA, dB, x, r, sc, A, B, N, in, out, K, scratch);
    c.s = sc;
    EXPECT_GC(A, dA, out * K, lowrank_loss, &c, "dA, scaled");
    EXPECT_GC(B, dB, K * in, lowrank_loss, &c, "dB, scaled");
    clv_free(sc);
    clv_free(x), clv_free(W), clv_free(r), clv_free(A), clv_free(B), clv_free(dA), clv_free(dB), clv_free(scratch);
}

/* -------------------------------------------------- class-row attention */

typedef struct {
    float *qkv, *r, *out;
    int64_t B, T, C, H;
} cls_attn_ctx;

static double cls_attn_loss(void *p)
{
    cls_attn_ctx *c = p;
    clv_attention_cls_forward(c->out, c->qkv, c->B, c->T, c->C, c->H);
    return gradcheck_dot(c->out, c->r, c->B * c->C);
}

/* Row 0 of the full attention (double reference), its gradient by finite
 * differences, and the full backward given a gradient on row 0 only. */
Test(kernels, attention_cls_row)
{
    const int64_t B = 3, T = 7, C = 12, H = 3;
    cls_attn_ctx c = {.B = B, .T = T, .C = C, .H = H};
    c.qkv = frand(B * T * 3 * C, 181, -1.5f, 1.5f);
    c.r = frand(B * C, 182, -1, 1);
    c.out = fnan(B * C);
    double *ro = dalloc(B * T * C), *ra = dalloc(B * H * T * T);
    attn_reference(ro, ra, c.qkv, B, T, C, H);
    clv_attention_cls_forward(c.out, c.qkv, B, T, C, H);
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < C; j++)
            cr_expect(fabs(c.out[b * C + j] - ro[b * T * C + j]) < 1e-5, "out[%lld][%lld]", (long long)b,
                      (long long)j);

    float *dqkv = fnan(B * T * 3 * C); /* every entry must be written */
    clv_attention_cls_backward(dqkv, c.r, c.qkv, B, T, C, H);
    for (int64_t i = 0; i < B * T * 3 * C; i++)
        cr_assert(isfinite(dqkv[i]), "dqkv[%lld] not written", (long long)i);
    EXPECT_GC(c.qkv, dqkv, B * T * 3 * C, cls_attn_loss, &c, "cls attention dqkv");

    /* the full attention's backward with dout on row 0 only */
    float *dout = falloc(B * T * C), *dfull = falloc(B * T * 3 * C), *att = falloc(B * H * T * T);
    float *out = falloc(B * T * C), *scratch = falloc(clv_attention_scratch_floats(B, T, C, H));
    memset(dout, 0, (size_t)(B * T * C) * sizeof(float));
    memset(dfull, 0, (size_t)(B * T * 3 * C) * sizeof(float));
    for (int64_t b = 0; b < B; b++)
        memcpy(dout + b * T * C, c.r + b * C, (size_t)C * sizeof(float));
    clv_attention_forward(out, att, c.qkv, B, T, C, H, scratch);
    clv_attention_backward(dfull, dout, c.qkv, att, B, T, C, H, scratch);
    for (int64_t i = 0; i < B * T * 3 * C; i++)
        cr_expect(fabsf(dfull[i] - dqkv[i]) < 1e-5f, "dqkv[%lld]: %g vs full %g", (long long)i, (double)dqkv[i],
                  (double)dfull[i]);
    clv_free(c.qkv), clv_free(c.r), clv_free(c.out), clv_free(dqkv), clv_free(dout), clv_free(dfull);
    clv_free(att), clv_free(out), clv_free(scratch), free(ro), free(ra);
}

/* Every combination of the epilogue's steps against the separate kernels. */
Test(kernels, linear_epilogue_combinations)
{
    const int64_t N = 37, C = 45;
    float *z0 = frand(N * C, 191, -3, 3), *b = frand(C, 192, -1, 1), *s = frand(C, 193, 0.5f, 1.5f);
    float *res = frand(N * C, 194, -1, 1);
    float *y = falloc(N * C), *z = falloc(N * C), *g = falloc(N * C), *ref = falloc(N * C), *gref = falloc(N * C);
    for (int mask = 0; mask < 32; mask++) {
        const int use_z = mask & 1, use_b = mask & 2, use_s = mask & 4, use_r = mask & 8, use_g = mask & 16;
        /* reference: bias, (save), scale, residual, GELU as separate passes */
        memcpy(ref, z0, (size_t)(N * C) * sizeof(float));
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++) {
                float v = ref[n * C + c];
                if (use_b)
                    v += b[c];
                if (use_s)
                    v *= s[c];
                ref[n * C + c] = v;
            }
        if (use_r)
            clv_add_forward(ref, ref, res, N * C);
        if (use_g)
            clv_gelu_forward(gref, ref, N * C);
        if (use_z) {
            memcpy(z, z0, (size_t)(N * C) * sizeof(float));
            for (int64_t i = 0; i < N * C; i++)
                y[i] = NAN;
        } else {
            memcpy(y, z0, (size_t)(N * C) * sizeof(float));
        }
        clv_linear_epilogue(y, use_z ? z : NULL, use_b ? b : NULL, use_s ? s : NULL, use_r ? res : NULL,
                            use_g ? g : NULL, N, C);
        for (int64_t i = 0; i < N * C; i++) {
            cr_assert(fabsf(y[i] - ref[i]) <= 1e-6f * (1 + fabsf(ref[i])), "mask %d: y[%lld] %g vs %g", mask,
                      (long long)i, (double)y[i], (double)ref[i]);
            if (use_z)
                cr_assert_eq(z[i], use_b ? z0[i] + b[i % C] : z0[i], "mask %d: z keeps the pre-scale value", mask);
            if (use_g)
                cr_assert(fabsf(g[i] - gref[i]) <= 1e-6f * (1 + fabsf(gref[i])), "mask %d: gelu[%lld]", mask,
                          (long long)i);
        }
    }
    clv_free(z0), clv_free(b), clv_free(s), clv_free(res), clv_free(y), clv_free(z), clv_free(g), clv_free(ref);
    clv_free(gref);
}

/* U = X P^T and T += (X P^T) Q against double sums, with a rank that is not a multiple of the
 * register block and rows that are not a multiple of the vector width; the same bits on 1 and 2
 * threads; the epilogue's low-rank term is U Q added before the bias and scale */
Test(kernels, lowrank_project_apply_and_epilogue)
{
    enum { NR = 37, CIN = 21, COUT = 19, KR = 5 };
    float *X = falloc(NR * CIN), *P = falloc(KR * CIN), *Q = falloc(KR * COUT), *T0 = falloc(NR * COUT),
          *T = falloc(NR * COUT), *T2 = falloc(NR * COUT), *U = falloc(NR * KR), *b = falloc(COUT),
          *s = falloc(COUT), *y = falloc(NR * COUT), *z = falloc(NR * COUT);
    gradcheck_fill(X, NR * CIN, 1, -1, 1);
    gradcheck_fill(P, KR * CIN, 2, -1, 1);
    gradcheck_fill(Q, KR * COUT, 3, -1, 1);
    gradcheck_fill(T0, NR * COUT, 4, -1, 1);
    gradcheck_fill(b, COUT, 5, -1, 1);
    gradcheck_fill(s, COUT, 6, 0.5f, 1.5f);
    double ref[NR * COUT];
    for (int n = 0; n < NR; n++) {
        double u[KR];
        for (int k = 0; k < KR; k++) {
            u[k] = 0;
            for (int i = 0; i < CIN; i++)
                u[k] += (double)X[n * CIN + i] * P[k * CIN + i];
        }
        for (int j = 0; j < COUT; j++) {
            ref[n * COUT + j] = T0[n * COUT + j];
            for (int k = 0; k < KR; k++)
                ref[n * COUT + j] += u[k] * Q[k * COUT + j];
        }
    }
    clv_lowrank_project(U, X, P, NR, CIN, KR);
    for (int n = 0; n < NR; n++)
        for (int k = 0; k < KR; k++) {
            double u = 0;
            for (int i = 0; i < CIN; i++)
                u += (double)X[n * CIN + i] * P[k * CIN + i];
            cr_assert_float_eq(U[n * KR + k], u, 1e-5, "U[%d,%d]", n, k);
        }
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        float *out = threads == 1 ? T : T2;
        memcpy(out, T0, NR * COUT * sizeof(float));
        clv_lowrank_apply(out, X, P, Q, NR, CIN, COUT, KR);
    }
    for (int i = 0; i < NR * COUT; i++)
        cr_assert_float_eq(T[i], ref[i], 1e-5, "T[%d]", i);
    cr_assert_eq(memcmp(T, T2, NR * COUT * sizeof(float)), 0, "the same bits on 1 and 2 threads");
    /* epilogue: z = T0 + U Q + b (kept), y = z * s */
    memcpy(z, T0, NR * COUT * sizeof(float));
    clv_linear_epilogue_lowrank(y, z, U, Q, KR, b, s, NULL, NULL, NULL, NR, COUT);
    for (int n = 0; n < NR; n++)
        for (int j = 0; j < COUT; j++) {
            const double v = ref[n * COUT + j] + b[j];
            cr_assert_float_eq(z[n * COUT + j], v, 1e-5, "z[%d,%d]", n, j);
            cr_assert_float_eq(y[n * COUT + j], v * s[j], 1e-5, "y[%d,%d]", n, j);
        }
    float *all[] = {X, P, Q, T0, T, T2, U, b, s, y, z};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        clv_free(all[i]);
}
