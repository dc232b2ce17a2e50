/* bf16 Winograd F(2x2, 3x3) (clvit/winograd_bf16.h) against the exact
 * convolution in double: the forward, the data gradient and the weight
 * gradient, on sides that are and are not a multiple of the 2x2 tiles and an
 * output smaller than one tile. The tolerance is the error bound of the
 * algorithm itself: V, U (and A dy A^T) are each rounded once to bf16
 * (relative 2^-9), so an output is off by at most about 2^-7 times the same
 * transforms run on absolute values with absolute coefficients, computed here
 * in double. A wrong coefficient or tile offset is off by far more (checked:
 * a sign flipped in each transform fails its part of this test). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/precision.h"
#include "clvit/winograd_bf16.h"
#include "gradcheck.h"

static const double Bt[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double At[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};

typedef struct shape {
    int64_t B, H, W, cin, cout;
} shape;

static const shape shapes[] = {
    {2, 6, 6, 5, 7},   /* sides a multiple of the tiles */
    {3, 5, 7, 16, 9},  /* odd sides: the last tile row and column half outside */
    {2, 1, 1, 4, 3},   /* an output smaller than one tile */
    {1, 8, 4, 33, 40}, /* channels past a vector's width */
};

/* the image value at (n, h, w, c), 0 outside */
static double at(const float *x, const shape *s, int64_t C, int64_t n, int64_t h, int64_t w, int64_t c, int abs_)
{
    if (h < 0 || h >= s->H || w < 0 || w >= s->W)
        return 0;
    const double v = x[((n * s->H + h) * s->W + w) * C + c];
    return abs_ ? fabs(v) : v;
}

/* y [B H W x co] = conv(x [B H W x ci], g(a, b)) exactly, and bound = the Winograd transforms of
 * |x| and |g| with absolute coefficients (the algorithm's own error scale); g(a, b) is filter a -> b */
static void reference(double *y, double *bound, const float *x, const float *W, int flip, const shape *s, int64_t ci,
                      int64_t co)
{
    const int64_t cin = flip ? co : ci;
    for (int64_t n = 0; n < s->B; n++)
        for (int64_t i = 0; i < (s->H + 1) / 2; i++)
            for (int64_t j = 0; j < (s->W + 1) / 2; j++)
                for (int64_t b = 0; b < co; b++) {
                    double m[4][4] = {{0}}; /* sum over a of |U| |V| */
                    double yt[2][2] = {{0}};
                    for (int64_t a = 0; a < ci; a++) {
                        const float *g0 = flip ? W + (a * cin + b) * 9 : W + (b * cin + a) * 9;
                        double g[3][3], u[4][4] = {{0}}, v[4][4] = {{0}}, d[4][4];
                        for (int r = 0; r < 3; r++)
                            for (int q = 0; q < 3; q++)
                                g[r][q] = flip ? g0[8 - (3 * r + q)] : g0[3 * r + q];
                        for (int r = 0; r < 4; r++)
                            for (int q = 0; q < 4; q++)
                                d[r][q] = at(x, s, ci, n, 2 * i - 1 + r, 2 * j - 1 + q, a, 0);
                        for (int r = 0; r < 2; r++) /* the exact output */
                            for (int q = 0; q < 2; q++)
                                for (int kr = 0; kr < 3; kr++)
                                    for (int kq = 0; kq < 3; kq++)
                                        yt[r][q] += d[r + kr][q + kq] * g[kr][kq];
                        for (int r = 0; r < 4; r++)
                            for (int q = 0; q < 4; q++)
                                for (int k = 0; k < 3; k++)
                                    for (int l = 0; l < 3; l++)
                                        u[r][q] += fabs(G[r][k]) * fabs(g[k][l]) * fabs(G[q][l]);
                        for (int r = 0; r < 4; r++)
                            for (int q = 0; q < 4; q++)
                                for (int k = 0; k < 4; k++)
                                    for (int l = 0; l < 4; l++)
                                        v[r][q] += fabs(Bt[r][k]) * fabs(d[k][l]) * fabs(Bt[q][l]);
                        for (int r = 0; r < 4; r++)
                            for (int q = 0; q < 4; q++)
                                m[r][q] += u[r][q] * v[r][q];
                    }
                    for (int r = 0; r < 2; r++)
                        for (int q = 0; q < 2; q++) {
                            const int64_t h = 2 * i + r, w = 2 * j + q;
                            if (h >= s->H || w >= s->W)
                                continue;
                            double bd = 0;
                            for (int k = 0; k < 4; k++)
                                for (int l = 0; l < 4; l++)
                                    bd += fabs(At[r][k]) * m[k][l] * fabs(At[q][l]);
                            const int64_t o = ((n * s->H + h) * s->W + w) * co + b;
                            y[o] = yt[r][q];
                            bound[o] = bd;
                        }
                }
}

/* worst |got - want| / (2^-7 bound + 1e-6) */
static double worst(const float *got, const double *want, const double *bound, int64_t n)
{
    double w = 0;
    for (int64_t i = 0; i < n; i++)
        w = fmax(w, fabs(got[i] - want[i]) / (ldexp(bound[i], -7) + 1e-6));
    return w;
}

static clv_compute *bf16_onednn(void)
{
    clv_err err = {{0}};
    clv_compute *c = clv_compute_create(CLV_PRECISION_BF16, 0, &err);
    cr_assert_not_null(c, "%s", err.msg);
    if (!clv_compute_bf16_onednn(c)) {
        clv_compute_free(c);
        return NULL;
    }
    return c;
}

Test(winograd_bf16, forward_and_data_gradient_within_their_rounding)
{
    clv_compute *c = bf16_onednn();
    if (!c) {
        cr_log_info("no bf16 on oneDNN here: nothing to test");
        return;
    }
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape *s = &shapes[si];
        const int64_t nx = s->B * s->H * s->W * s->cin, ny = s->B * s->H * s->W * s->cout, nw = s->cout * s->cin * 9;
        float *x = malloc((size_t)nx * 4), *dy = malloc((size_t)ny * 4), *W = malloc((size_t)nw * 4);
        float *y = malloc((size_t)ny * 4), *dx = malloc((size_t)nx * 4);
        double *yr = malloc((size_t)ny * 8), *yb = malloc((size_t)ny * 8), *dxr = malloc((size_t)nx * 8),
               *dxb = malloc((size_t)nx * 8);
        gradcheck_fill(x, nx, 10 + si, -1, 1);
        gradcheck_fill(dy, ny, 20 + si, -1, 1);
        gradcheck_fill(W, nw, 30 + si, -1, 1);
        clv_wino_bf16 w = {0};
        clv_err err = {{0}};
        cr_assert_eq(clv_wino_bf16_weight(&w, W, s->cout, s->cin, 0, &err), 0, "%s", err.msg);
        cr_assert_eq(clv_wino_bf16_conv(c, &w, y, x, s->B, s->H, s->W, s->cin, s->cout, NULL, &err), 0, "%s", err.msg);
        cr_assert_eq(clv_wino_bf16_weight(&w, W, s->cout, s->cin, 1, &err), 0, "%s", err.msg);
        cr_assert_eq(clv_wino_bf16_conv(c, &w, dx, dy, s->B, s->H, s->W, s->cout, s->cin, NULL, &err), 0, "%s", err.msg);
        reference(yr, yb, x, W, 0, s, s->cin, s->cout);
        reference(dxr, dxb, dy, W, 1, s, s->cout, s->cin);
        const double wy = worst(y, yr, yb, ny), wx = worst(dx, dxr, dxb, nx);
        cr_log_info("shape %zu: forward %.3f, dx %.3f of the bound", si, wy, wx);
        cr_expect_leq(wy, 1.0, "shape %zu: forward off by %.3g x its bound", si, wy);
        cr_expect_leq(wx, 1.0, "shape %zu: dx off by %.3g x its bound", si, wx);
        /* bf16 is in use: not the fp32 result to 1e-4 */
        double off = 0;
        for (int64_t i = 0; i < ny; i++)
            off = fmax(off, fabs(y[i] - yr[i]));
        cr_expect_gt(off, 1e-4, "shape %zu: the forward is fp32's", si);
        clv_wino_bf16_free(&w);
        free(x), free(dy), free(W), free(y), free(dx), free(yr), free(yb), free(dxr), free(dxb);
    }
    clv_compute_free(c);
}

/* dW = sum over tiles of G^T (V (.) A dy A^T) G: against the exact sum, bound by the same
 * transforms on absolute values */
Test(winograd_bf16, weight_gradient_within_its_rounding)
{
    clv_compute *c = bf16_onednn();
    if (!c) {
        cr_log_info("no bf16 on oneDNN here: nothing to test");
        return;
    }
    static const double A[4][2] = {{1, 0}, {1, 1}, {1, -1}, {0, -1}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape *s = &shapes[si];
        const int64_t nx = s->B * s->H * s->W * s->cin, ny = s->B * s->H * s->W * s->cout, nw = s->cout * s->cin * 9;
        float *x = malloc((size_t)nx * 4), *dy = malloc((size_t)ny * 4), *dW = malloc((size_t)nw * 4);
        double *want = calloc((size_t)nw, 8), *bound = calloc((size_t)nw, 8);
        gradcheck_fill(x, nx, 40 + si, -1, 1);
        gradcheck_fill(dy, ny, 50 + si, -1, 1);
        clv_wino_bf16 w = {0};
        clv_err err = {{0}};
        cr_assert_eq(clv_wino_bf16_dweight(c, &w, dW, x, dy, s->B, s->H, s->W, s->cin, s->cout, &err), 0, "%s",
                     err.msg);
        for (int64_t o = 0; o < s->cout; o++)
            for (int64_t a = 0; a < s->cin; a++) {
                double du[4][4] = {{0}}; /* sum over tiles of |V| |A dy A^T| (absolute coefficients) */
                double *wv = want + (o * s->cin + a) * 9, *bv = bound + (o * s->cin + a) * 9;
                for (int64_t n = 0; n < s->B; n++)
                    for (int64_t h = 0; h < s->H; h++)
                        for (int64_t ww = 0; ww < s->W; ww++)
                            for (int kr = 0; kr < 3; kr++)
                                for (int kq = 0; kq < 3; kq++)
                                    wv[3 * kr + kq] += at(dy, s, s->cout, n, h, ww, o, 0) *
                                                       at(x, s, s->cin, n, h + kr - 1, ww + kq - 1, a, 0);
                for (int64_t n = 0; n < s->B; n++)
                    for (int64_t i = 0; i < (s->H + 1) / 2; i++)
                        for (int64_t j = 0; j < (s->W + 1) / 2; j++) {
                            double v[4][4] = {{0}}, m[4][4] = {{0}};
                            for (int r = 0; r < 4; r++)
                                for (int q = 0; q < 4; q++) {
                                    for (int k = 0; k < 4; k++)
                                        for (int l = 0; l < 4; l++)
                                            v[r][q] += fabs(Bt[r][k]) * fabs(Bt[q][l]) *
                                                       at(x, s, s->cin, n, 2 * i - 1 + k, 2 * j - 1 + l, a, 1);
                                    for (int k = 0; k < 2; k++)
                                        for (int l = 0; l < 2; l++)
                                            m[r][q] += fabs(A[r][k]) * fabs(A[q][l]) *
                                                       at(dy, s, s->cout, n, 2 * i + k, 2 * j + l, o, 1);
                                    du[r][q] += v[r][q] * m[r][q];
                                }
                        }
                for (int kr = 0; kr < 3; kr++)
                    for (int kq = 0; kq < 3; kq++)
                        for (int r = 0; r < 4; r++)
                            for (int q = 0; q < 4; q++)
                                bv[3 * kr + kq] += fabs(G[r][kr]) * du[r][q] * fabs(G[q][kq]);
            }
        const double wd = worst(dW, want, bound, nw);
        cr_log_info("shape %zu: dW %.3f of the bound", si, wd);
        cr_expect_leq(wd, 1.0, "shape %zu: dW off by %.3g x its bound", si, wd);
        double off = 0;
        for (int64_t i = 0; i < nw; i++)
            off = fmax(off, fabs(dW[i] - want[i]));
        cr_expect_gt(off, 1e-4, "shape %zu: dW is fp32's", si);
        clv_wino_bf16_free(&w);
        free(x), free(dy), free(dW), free(want), free(bound);
    }
    clv_compute_free(c);
}

/* The output transform's epilogue, y = [relu](conv + bias + res), res apart or y itself: bit for
 * bit the plain convolution's output with those added in that order */
Test(winograd_bf16, epilogue_adds_bias_residual_and_relu)
{
    clv_compute *c = bf16_onednn();
    if (!c) {
        cr_log_info("no bf16 on oneDNN here: nothing to test");
        return;
    }
    const shape *s = &shapes[1];
    const int64_t nx = s->B * s->H * s->W * s->cin, ny = s->B * s->H * s->W * s->cout, nw = s->cout * s->cin * 9;
    float *x = malloc((size_t)nx * 4), *W = malloc((size_t)nw * 4), *z = malloc((size_t)ny * 4),
          *res = malloc((size_t)ny * 4), *y = malloc((size_t)ny * 4), bias[16];
    gradcheck_fill(x, nx, 60, -1, 1);
    gradcheck_fill(W, nw, 61, -1, 1);
    gradcheck_fill(res, ny, 62, -1, 1);
    gradcheck_fill(bias, s->cout, 63, -1, 1);
    clv_wino_bf16 w = {0};
    clv_err err = {{0}};
    cr_assert_eq(clv_wino_bf16_weight(&w, W, s->cout, s->cin, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_wino_bf16_conv(c, &w, z, x, s->B, s->H, s->W, s->cin, s->cout, NULL, &err), 0, "%s", err.msg);
    for (int relu = 0; relu < 2; relu++)
        for (int in_place = 0; in_place < 3; in_place++) { /* 2: no residual */
            const float *r = in_place == 2 ? NULL : in_place ? y : res;
            if (in_place == 1)
                memcpy(y, res, (size_t)ny * 4);
            const clv_wino_epilogue ep = {.bias = bias, .res = r, .relu = relu};
            cr_assert_eq(clv_wino_bf16_conv(c, &w, y, x, s->B, s->H, s->W, s->cin, s->cout, &ep, &err), 0, "%s",
                         err.msg);
            int64_t bad = 0, zeros = 0;
            for (int64_t i = 0; i < ny; i++) {
                float v = z[i] + bias[i % s->cout];
                if (in_place != 2)
                    v += res[i];
                if (relu && v < 0.0f)
                    v = 0.0f;
                bad += memcmp(&v, &y[i], 4) != 0;
                zeros += y[i] == 0.0f;
            }
            cr_expect_eq(bad, 0, "relu %d residual %d: %lld of %lld outputs differ", relu, in_place, (long long)bad,
                         (long long)ny);
            if (relu)
                cr_expect_gt(zeros, ny / 10, "relu %d residual %d: ReLU clipped only %lld", relu, in_place,
                             (long long)zeros);
        }
    clv_wino_bf16_free(&w);
    free(x), free(W), free(z), free(res), free(y);
    clv_compute_free(c);
}
