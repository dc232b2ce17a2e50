/* CNN kernels: forward values against direct formulas (a naive convolution,
 * PyTorch's batch-norm and pooling definitions) and backward against finite
 * differences. The whole ResNet against PyTorch is in tests/test_resnet.c. */
#include <criterion/criterion.h>

#include "clvit/core.h"
#include "clvit/kernels_cnn.h"
#include "gradcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *fzeros(int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    cr_assert(p);
    return p;
}

static float *frand(int64_t n, uint64_t seed, float lo, float hi)
{
    float *p = fzeros(n);
    gradcheck_fill(p, n, seed, lo, hi);
    return p;
}

#define EXPECT_GC(x, dx, n, fn, ctx, what)                                                                            \
    do {                                                                                                              \
        gradcheck_result r_;                                                                                          \
        char b_[160];                                                                                                 \
        cr_assert_eq(gradcheck_run(x, dx, n, fn, ctx, NULL, &r_), 0, "%s: non-finite loss", what);                    \
        cr_expect(r_.max_rel < 1e-2, "%s: %s", what, gradcheck_str(&r_, b_, sizeof b_));                              \
    } while (0)

/* ---- layout ---- */

Test(cnn_kernels, nchw_to_nhwc_and_back)
{
    const int64_t B = 2, C = 3, H = 4, W = 5, n = B * C * H * W;
    float *x = frand(n, 1, -1, 1), *y = fzeros(n), *dx = fzeros(n);
    clv_nchw_to_nhwc(y, x, B, C, H, W);
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < H * W; i++)
                cr_assert_eq(y[(b * H * W + i) * C + c], x[(b * C + c) * H * W + i]);
    clv_nchw_to_nhwc_backward(dx, y, B, C, H, W);
    cr_expect_eq(memcmp(dx, x, (size_t)n * sizeof(float)), 0, "the backward is the inverse transpose");
    free(x), free(y), free(dx);
}

/* ---- im2col: im2col + GEMM equals a direct convolution ---- */

static void direct_conv(double *y, const float *x, const float *w, int64_t B, int64_t H, int64_t W, int64_t C,
                        int64_t Co, int64_t k, int64_t s, int64_t p)
{
    const int64_t Ho = clv_conv_out_size(H, k, s, p), Wo = clv_conv_out_size(W, k, s, p);
    for (int64_t b = 0; b < B; b++)
        for (int64_t oy = 0; oy < Ho; oy++)
            for (int64_t ox = 0; ox < Wo; ox++)
                for (int64_t o = 0; o < Co; o++) {
                    double acc = 0;
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t ky = 0; ky < k; ky++)
                            for (int64_t kx = 0; kx < k; kx++) {
                                const int64_t iy = oy * s - p + ky, ix = ox * s - p + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                    continue;
                                acc += (double)x[((b * H + iy) * W + ix) * C + c] * w[((o * C + c) * k + ky) * k + kx];
                            }
                    y[((b * Ho + oy) * Wo + ox) * Co + o] = acc;
                }
}

Test(cnn_kernels, im2col_gemm_is_the_convolution)
{
    /* B, H, W, C, Co, k, s, p: 3x3 pad 1, 7x7 stride 2 pad 3 (ImageNet stem), 1x1 stride 2, odd sizes */
    const int64_t shapes[4][8] = {{2, 5, 6, 3, 4, 3, 1, 1}, {1, 9, 9, 2, 3, 7, 2, 3}, {2, 7, 5, 4, 3, 1, 2, 0},
                                  {1, 6, 7, 3, 2, 3, 2, 1}};
    for (int t = 0; t < 4; t++) {
        const int64_t B = shapes[t][0], H = shapes[t][1], W = shapes[t][2], C = shapes[t][3], Co = shapes[t][4],
                      k = shapes[t][5], s = shapes[t][6], p = shapes[t][7];
        const int64_t Ho = clv_conv_out_size(H, k, s, p), Wo = clv_conv_out_size(W, k, s, p), K = C * k * k;
        const int64_t N = B * Ho * Wo;
        float *x = frand(B * H * W * C, 10 + t, -1, 1), *w = frand(Co * K, 20 + t, -1, 1);
        float *cols = fzeros(N * K);
        double *ref = calloc((size_t)(N * Co), sizeof(double));
        clv_im2col(cols, x, B, H, W, C, k, s, p);
        direct_conv(ref, x, w, B, H, W, C, Co, k, s, p);
        double worst = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < Co; o++) {
                double acc = 0;
                for (int64_t j = 0; j < K; j++)
                    acc += (double)cols[n * K + j] * w[o * K + j];
                worst = fmax(worst, fabs(acc - ref[n * Co + o]));
            }
        cr_expect(worst < 1e-6, "shape %d: im2col . W^T differs from the convolution by %g", t, worst);
        free(x), free(w), free(cols), free(ref);
    }
}

Test(cnn_kernels, col2im_is_the_adjoint_of_im2col)
{
    const int64_t B = 2, H = 7, W = 6, C = 3, k = 3, s = 2, p = 1;
    const int64_t Ho = clv_conv_out_size(H, k, s, p), Wo = clv_conv_out_size(W, k, s, p), K = C * k * k;
    const int64_t nx = B * H * W * C, nc = B * Ho * Wo * K;
    float *x = frand(nx, 3, -1, 1), *c = frand(nc, 4, -1, 1), *cols = fzeros(nc), *dx = fzeros(nx);
    clv_im2col(cols, x, B, H, W, C, k, s, p);
    clv_col2im(dx, c, B, H, W, C, k, s, p);
    /* <im2col(x), c> = <x, col2im(c)> */
    const double lhs = gradcheck_dot(cols, c, nc), rhs = gradcheck_dot(x, dx, nx);
    cr_expect(fabs(lhs - rhs) < 1e-5 * (fabs(lhs) + 1), "%.12g vs %.12g", lhs, rhs);
    /* and it accumulates */
    clv_col2im(dx, c, B, H, W, C, k, s, p);
    cr_expect(fabs(gradcheck_dot(x, dx, nx) - 2 * rhs) < 1e-5 * (fabs(rhs) + 1));
    free(x), free(c), free(cols), free(dx);
}

/* ---- batch norm ---- */

/* Column c of x [N x C] in double: its mean, and (around the given centre) its biased variance */
static double column_mean(const float *x, int64_t N, int64_t C, int64_t c)
{
    double m = 0;
    for (int64_t n = 0; n < N; n++)
        m += x[n * C + c];
    return m / N;
}
static double column_var(const float *x, int64_t N, int64_t C, int64_t c, double centre)
{
    double v = 0;
    for (int64_t n = 0; n < N; n++)
        v += (x[n * C + c] - centre) * (x[n * C + c] - centre);
    return v / N;
}

/* The statistics take one pass (sum x and sum x^2 in double): the variance
 * stays exact to float precision when the mean is far from 0 against the
 * spread, as after a ReLU or a shifted input. */
Test(cnn_kernels, batchnorm_variance_survives_a_large_mean)
{
    const int64_t N = 1000, C = 3;
    float *x = frand(N * C, 8, -0.5, 0.5), mean[3], var[3];
    for (int64_t n = 0; n < N; n++)
        x[n * C + 1] += 300.0f, x[n * C + 2] = x[n * C + 2] * 1e-3f - 40.0f;
    double *scratch = malloc((size_t)clv_batchnorm_scratch_doubles(N, C) * sizeof(double));
    clv_batchnorm_stats(mean, var, x, N, C, scratch);
    for (int64_t c = 0; c < C; c++) {
        const double m = column_mean(x, N, C, c), v = column_var(x, N, C, c, mean[c]);
        cr_expect(fabs(mean[c] - m) < 1e-6 * (fabs(m) + 1), "mean %d: %.9g vs %.9g", (int)c, mean[c], m);
        cr_expect(fabs(var[c] - v) < 2e-7 * v, "variance %d: %.9g vs %.9g", (int)c, var[c], v);
    }
    free(scratch), free(x);
}

Test(cnn_kernels, batchnorm_forward_matches_the_definition)
{
    const int64_t N = 600, C = 5; /* more rows than one block of the reduction */
    float *x = frand(N * C, 5, -2, 3), *g = frand(C, 6, 0.5, 1.5), *b = frand(C, 7, -0.5, 0.5);
    float mean[5], var[5], rstd[5], rm[5] = {0.1f, 0, 0, 0, 0}, rv[5] = {1, 1, 1, 1, 2};
    float *y = fzeros(N * C);
    /* the caller's scratch: what it held before does not matter (here NaNs, then zeros: the same bits) */
    const int64_t ns = clv_batchnorm_scratch_doubles(N, C);
    double *scratch = malloc((size_t)ns * sizeof(double));
    for (int64_t i = 0; i < ns; i++)
        scratch[i] = NAN;
    clv_batchnorm_stats(mean, var, x, N, C, scratch);
    float mean0[5], var0[5];
    memset(scratch, 0, (size_t)ns * sizeof(double));
    clv_batchnorm_stats(mean0, var0, x, N, C, scratch);
    cr_assert(!memcmp(mean, mean0, sizeof mean) && !memcmp(var, var0, sizeof var), "statistics from dirty scratch");
    free(scratch);
    clv_batchnorm_rstd(rstd, var, C, 1e-5f);
    clv_batchnorm_apply(y, x, mean, rstd, g, b, N, C, 0);
    for (int64_t c = 0; c < C; c++) {
        const double m = column_mean(x, N, C, c), v = column_var(x, N, C, c, m);
        cr_expect(fabs(mean[c] - m) < 1e-6, "mean %d", (int)c);
        cr_expect(fabs(var[c] - v) < 1e-5 * v, "biased variance %d", (int)c);
        for (int64_t n = 0; n < N; n += 37) {
            double want = (x[n * C + c] - m) / sqrt(v + 1e-5) * g[c] + b[c];
            cr_expect(fabs(y[n * C + c] - want) < 1e-5, "y[%d,%d] %g vs %g", (int)n, (int)c, y[n * C + c], want);
        }
        /* PyTorch's running update: unbiased variance, momentum 0.1 */
        float rm0 = rm[c], rv0 = rv[c];
        clv_batchnorm_update_running(rm + c, rv + c, mean + c, var + c, N, 1, 0.1f);
        cr_expect(fabsf(rm[c] - (0.9f * rm0 + 0.1f * (float)m)) < 1e-6f);
        cr_expect(fabsf(rv[c] - (0.9f * rv0 + 0.1f * (float)(v * N / (N - 1)))) < 1e-5f);
    }
    /* relu */
    float *yr = fzeros(N * C);
    clv_batchnorm_apply(yr, x, mean, rstd, g, b, N, C, 1);
    for (int64_t i = 0; i < N * C; i++)
        cr_assert_eq(yr[i], y[i] > 0 ? y[i] : 0.0f);
    free(x), free(g), free(b), free(y), free(yr);
}

/* The training passes that also write the next conv's bf16 input are the
 * plain passes (same fp32 bits) plus clv_bf16_from_floats of their output. */
Test(cnn_kernels, bf16_writing_passes_are_the_plain_ones)
{
    const int64_t N = 1100, C = 70; /* over the kernels' parallel threshold */
    float *x = frand(N * C, 21, -2, 3), *g = frand(C, 22, 0.5, 1.5), *b = frand(C, 23, -0.5, 0.5);
    float *mean = frand(C, 24, -0.2f, 0.2f), *rstd = frand(C, 25, 0.5f, 2);
    float *y = fzeros(N * C), *yf = fzeros(N * C), *a = frand(N * C, 26, -2, 2);
    clv_bf16 *h = calloc((size_t)(N * C), sizeof *h), *want = calloc((size_t)(N * C), sizeof *want);
    cr_assert(h && want);
    for (int relu = 0; relu < 2; relu++) {
        clv_batchnorm_apply(y, x, mean, rstd, g, b, N, C, relu);
        clv_batchnorm_apply_bf16(yf, h, x, mean, rstd, g, b, N, C, relu);
        clv_bf16_from_floats(want, y, (size_t)(N * C));
        cr_assert(!memcmp(y, yf, (size_t)(N * C) * sizeof *y), "relu %d: fp32 output differs", relu);
        cr_assert(!memcmp(h, want, (size_t)(N * C) * sizeof *h), "relu %d: bf16 copy differs", relu);
    }
    /* add + relu: with and without the bf16 copy, against the formula */
    memcpy(yf, y, (size_t)(N * C) * sizeof *y);
    clv_add_relu(y, NULL, a, N * C);
    clv_add_relu(yf, h, a, N * C);
    clv_bf16_from_floats(want, y, (size_t)(N * C));
    cr_assert(!memcmp(y, yf, (size_t)(N * C) * sizeof *y), "add_relu: fp32 output differs");
    cr_assert(!memcmp(h, want, (size_t)(N * C) * sizeof *h), "add_relu: bf16 copy differs");
    int positive = 0;
    for (int64_t i = 0; i < N * C; i++) {
        cr_assert(y[i] >= 0.0f);
        positive += y[i] > 0.0f;
    }
    cr_expect(positive > N * C / 4 && positive < N * C, "add_relu clipped %d of %lld", positive, (long long)(N * C));
    /* the norm's backward written as bf16: the zeroed fp32 dx converted, and the same dgamma, dbeta */
    for (int bs = 0; bs < 2; bs++) {
        double *sc = calloc((size_t)clv_batchnorm_scratch_doubles(N, C), sizeof(double));
        float *dg = fzeros(C), *db = fzeros(C), *dg2 = fzeros(C), *db2 = fzeros(C);
        cr_assert(sc);
        memset(y, 0, (size_t)(N * C) * sizeof *y);
        clv_batchnorm_backward(y, dg, db, a, x, mean, rstd, g, N, C, bs, sc);
        clv_batchnorm_backward_bf16(h, dg2, db2, a, x, mean, rstd, g, N, C, bs, sc);
        clv_bf16_from_floats(want, y, (size_t)(N * C));
        cr_assert(!memcmp(h, want, (size_t)(N * C) * sizeof *h), "batch_stats %d: bf16 dx differs", bs);
        cr_assert(!memcmp(dg, dg2, (size_t)C * 4) && !memcmp(db, db2, (size_t)C * 4), "batch_stats %d: dgamma/dbeta",
                  bs);
        free(sc), free(dg), free(db), free(dg2), free(db2);
    }
    free(x), free(g), free(b), free(mean), free(rstd), free(y), free(yf), free(a), free(h), free(want);
}

typedef struct bn_ctx {
    float *x, *g, *b, *r, *y, *mean, *var, *rstd;
    int64_t N, C;
    int batch;
    double *scratch;
} bn_ctx;

static double bn_loss(void *p)
{
    bn_ctx *c = p;
    if (c->batch) {
        clv_batchnorm_stats(c->mean, c->var, c->x, c->N, c->C, c->scratch);
        clv_batchnorm_rstd(c->rstd, c->var, c->C, 1e-5f);
    }
    clv_batchnorm_apply(c->y, c->x, c->mean, c->rstd, c->g, c->b, c->N, c->C, 0);
    return gradcheck_dot(c->y, c->r, c->N * c->C);
}

Test(cnn_kernels, batchnorm_backward_finite_differences)
{
    for (int batch = 0; batch < 2; batch++) {
        bn_ctx c = {.N = 270, .C = 3, .batch = batch}; /* more rows than one reduction block */
        c.x = frand(c.N * c.C, 8, -2, 2), c.g = frand(c.C, 9, 0.5, 1.5), c.b = frand(c.C, 10, -1, 1);
        c.r = frand(c.N * c.C, 11, -1, 1), c.y = fzeros(c.N * c.C);
        c.mean = frand(c.C, 12, -0.2f, 0.2f), c.var = frand(c.C, 13, 0.5, 1.5), c.rstd = fzeros(c.C);
        c.scratch = calloc((size_t)clv_batchnorm_scratch_doubles(c.N, c.C), sizeof(double));
        clv_batchnorm_rstd(c.rstd, c.var, c.C, 1e-5f);
        bn_loss(&c);
        float *dx = fzeros(c.N * c.C), *dg = fzeros(c.C), *db = fzeros(c.C);
        clv_batchnorm_backward(dx, dg, db, c.r, c.x, c.mean, c.rstd, c.g, c.N, c.C, batch, c.scratch);
        const char *what = batch ? "batch statistics" : "running statistics";
        /* the written form: the same floats over whatever dx held, without the zeroing */
        float *dxw = fzeros(c.N * c.C), *dg2 = fzeros(c.C), *db2 = fzeros(c.C);
        for (int64_t i = 0; i < c.N * c.C; i++)
            dxw[i] = NAN;
        clv_batchnorm_backward_into(dxw, dg2, db2, c.r, c.x, c.mean, c.rstd, c.g, c.N, c.C, batch, c.scratch);
        cr_expect_eq(memcmp(dxw, dx, (size_t)(c.N * c.C) * sizeof(float)), 0, "%s: dx written as accumulated", what);
        cr_expect_eq(memcmp(dg2, dg, (size_t)c.C * sizeof(float)), 0, "%s: the same dgamma", what);
        cr_expect_eq(memcmp(db2, db, (size_t)c.C * sizeof(float)), 0, "%s: the same dbeta", what);
        free(dxw), free(dg2), free(db2);
        /* a smooth function of many inputs: a larger step keeps the float noise of the loss small */
        gradcheck_opts o = gradcheck_defaults();
        o.eps = 5e-2f;
        gradcheck_result res;
        char buf[160];
        cr_assert_eq(gradcheck_run(c.x, dx, c.N * c.C, bn_loss, &c, &o, &res), 0);
        cr_expect(res.max_rel < 1e-2, "%s dx: %s", what, gradcheck_str(&res, buf, sizeof buf));
        EXPECT_GC(c.g, dg, c.C, bn_loss, &c, what);
        EXPECT_GC(c.b, db, c.C, bn_loss, &c, what);
        free(c.x), free(c.g), free(c.b), free(c.r), free(c.y), free(c.mean), free(c.var), free(c.rstd);
        free(dx), free(dg), free(db), free(c.scratch);
    }
}

Test(cnn_kernels, relu_mask)
{
    float y[4] = {-1, 0, 2, 3}, dy[4] = {1, 1, 1, 1};
    clv_relu_mask(dy, y, 4);
    cr_expect(dy[0] == 0 && dy[1] == 0 && dy[2] == 1 && dy[3] == 1);
}

/* ---- pooling ---- */

Test(cnn_kernels, maxpool_forward_known_values)
{
    /* one channel 4x4 image 0..15, 3x3 stride 2 pad 1 -> 2x2: max of each window */
    float x[16], y[4];
    int32_t am[4];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i;
    clv_maxpool_forward(y, am, x, 1, 4, 4, 1, 3, 2, 1);
    const float want[4] = {5, 7, 13, 15};
    for (int i = 0; i < 4; i++) {
        cr_expect_eq(y[i], want[i], "y[%d] = %g", i, y[i]);
        cr_expect_eq(am[i], (int32_t)want[i]);
    }
    /* ties go to the first element in scan order */
    float t[16] = {0};
    clv_maxpool_forward(y, am, t, 1, 4, 4, 1, 3, 2, 1);
    cr_expect_eq(am[0], 0);
    cr_expect_eq(am[3], 5, "window of output (1,1) starts at pixel (1,1)");
}

typedef struct pool_ctx {
    float *x, *y, *r;
    int32_t *am;
    int64_t B, H, W, C;
} pool_ctx;

static double maxpool_loss(void *p)
{
    pool_ctx *c = p;
    clv_maxpool_forward(c->y, c->am, c->x, c->B, c->H, c->W, c->C, 3, 2, 1);
    const int64_t Ho = clv_conv_out_size(c->H, 3, 2, 1), Wo = clv_conv_out_size(c->W, 3, 2, 1);
    return gradcheck_dot(c->y, c->r, c->B * Ho * Wo * c->C);
}

Test(cnn_kernels, maxpool_and_avgpool_backward)
{
    pool_ctx c = {.B = 2, .H = 7, .W = 6, .C = 3};
    const int64_t n = c.B * c.H * c.W * c.C, Ho = clv_conv_out_size(c.H, 3, 2, 1),
                  Wo = clv_conv_out_size(c.W, 3, 2, 1), no = c.B * Ho * Wo * c.C;
    /* distinct values well apart, so finite differences never cross a tie */
    c.x = fzeros(n);
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    clv_rng_permutation(77, perm, n);
    for (int64_t i = 0; i < n; i++)
        c.x[i] = 0.1f * (float)perm[i];
    free(perm);
    c.y = fzeros(no), c.r = frand(no, 14, -1, 1), c.am = calloc((size_t)no, sizeof(int32_t));
    maxpool_loss(&c);
    float *dx = fzeros(n);
    clv_maxpool_backward(dx, c.r, c.am, c.B, Ho, Wo, c.C);
    gradcheck_opts o = gradcheck_defaults();
    o.eps = 1e-3f;
    gradcheck_result res;
    char buf[160];
    cr_assert_eq(gradcheck_run(c.x, dx, n, maxpool_loss, &c, &o, &res), 0);
    cr_expect(res.max_rel < 1e-2, "maxpool: %s", gradcheck_str(&res, buf, sizeof buf));

    /* average pool: y = mean over pixels; dx = dy / HW */
    const int64_t HW = c.H * c.W;
    float *ya = fzeros(c.B * c.C), *dxa = fzeros(n), *dy = frand(c.B * c.C, 15, -1, 1);
    clv_avgpool_forward(ya, c.x, c.B, HW, c.C);
    for (int64_t b = 0; b < c.B; b++)
        for (int64_t ch = 0; ch < c.C; ch++) {
            double s = 0;
            for (int64_t i = 0; i < HW; i++)
                s += c.x[(b * HW + i) * c.C + ch];
            cr_expect(fabs(ya[b * c.C + ch] - s / HW) < 1e-5, "avgpool");
        }
    clv_avgpool_backward(dxa, dy, c.B, HW, c.C);
    for (int64_t i = 0; i < n; i++) {
        const int64_t b = i / (HW * c.C), ch = i % c.C;
        cr_assert(fabsf(dxa[i] - dy[b * c.C + ch] / (float)HW) < 1e-7f);
    }
    free(c.x), free(c.y), free(c.r), free(c.am), free(dx), free(ya), free(dxa), free(dy);
}
