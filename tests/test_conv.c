/* The oneDNN convolution (clvit/conv.h) against the im2col + weight-layer
 * GEMM reference it replaced: forward, dx and dW within fp32 tolerance for
 * 1x1 and 3x3 kernels, strides 1 and 2, with and without padding (3x3 stride 1 in
 * fp32 on oneDNN's Winograd primitives where it has them, and direct only); its
 * inference epilogue (folded norm, residual, relu); and every adapter's
 * gradients through oneDNN's full dW_eff (backward_dweight) against their
 * row-wise backward on the same conv, under an output scale (RKR in our
 * view through the low-rank K-channel convolutions); in bf16, against the
 * fp32 conv on bf16-rounded inputs. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/adapters.h"
#include "clvit/conv.h"
#include "clvit/kernels_cnn.h"
#include "clvit/precision.h"
#include "clvit/winograd_bf16.h"
#include "gradcheck.h"

typedef struct shape {
    int64_t B, cin, cout, k, s, p, H, W;
} shape;

static const shape shapes[] = {
    {3, 5, 7, 3, 1, 1, 9, 9},   /* 3x3, stride 1, padded */
    {3, 5, 7, 3, 2, 1, 9, 8},   /* 3x3, stride 2, padded, odd and even sides */
    {2, 6, 4, 1, 1, 0, 7, 7},   /* 1x1, stride 1 */
    {2, 6, 4, 1, 2, 0, 8, 7},   /* 1x1, stride 2 (a downsample) */
    {2, 3, 8, 3, 1, 0, 6, 6},   /* 3x3 without padding, 3 input channels (a stem) */
    {2, 3, 8, 7, 2, 3, 12, 12}, /* 7x7 stride 2 pad 3 (the ImageNet stem) */
    {2, 16, 32, 3, 1, 1, 8, 8}, /* 3x3 stride 1 over 16-channel blocks: fp32 Winograd where oneDNN has it */
    {3, 32, 16, 3, 1, 1, 5, 7}, /* the same with sides that are not a multiple of its 4x4 tiles */
    {2, 16, 16, 3, 1, 1, 2, 2}, /* an output smaller than one tile */
};

typedef struct fixture {
    shape sh;
    clv_params ps;
    clv_wlayer l;
    clv_conv c;
    clv_dnnl d;
    int64_t N, nx, ny;
    float *x, *dy, *cols;
    clv_arena scratch;
} fixture;

static void fixture_init(fixture *f, const shape *sh, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->sh = *sh;
    clv_err err = {{0}};
    clv_params_init(&f->ps);
    snprintf(f->l.name, sizeof f->l.name, "layer1.0.conv1");
    f->l.out = sh->cout;
    f->l.in = sh->cin * sh->k * sh->k;
    int64_t ws[4] = {sh->cout, sh->cin, sh->k, sh->k};
    f->l.weight = clv_params_add(&f->ps, "layer1.0.conv1.weight", 4, ws, &err);
    cr_assert_not_null(f->l.weight, "%s", err.msg);
    gradcheck_fill(f->l.weight->data, f->l.weight->numel, seed, -1, 1);
    cr_assert_eq(clv_conv_init(&f->c, &f->l, sh->cin, sh->cout, sh->k, sh->s, sh->p, sh->H, sh->W, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(clv_dnnl_open(&f->d, &err), 0, "%s", err.msg);
    f->N = sh->B * f->c.Ho * f->c.Wo;
    f->nx = sh->B * sh->H * sh->W * sh->cin;
    f->ny = f->N * sh->cout;
    f->x = malloc((size_t)f->nx * sizeof(float));
    f->dy = malloc((size_t)f->ny * sizeof(float));
    f->cols = malloc((size_t)(f->N * f->l.in) * sizeof(float));
    gradcheck_fill(f->x, f->nx, seed + 1, -1, 1);
    gradcheck_fill(f->dy, f->ny, seed + 2, -1, 1);
    clv_im2col(f->cols, f->x, sh->B, sh->H, sh->W, sh->cin, sh->k, sh->s, sh->p);
}

static void fixture_free(fixture *f)
{
    clv_conv_release(&f->c);
    clv_dnnl_close(&f->d);
    clv_wlayer_release(&f->l);
    clv_arena_free(&f->scratch);
    clv_params_free(&f->ps);
    free(f->x);
    free(f->dy);
    free(f->cols);
}

/* max |a - b| / max(1, max |b|) */
static double rel_err(const float *a, const float *b, int64_t n)
{
    double d = 0, m = 1;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return d / m;
}

/* the reference: im2col + the layer's GEMM, dx through col2im */
static void reference(fixture *f, float *y, float *dx, float *dw)
{
    clv_err err = {{0}};
    const shape *sh = &f->sh;
    cr_assert_eq(clv_wlayer_forward(&f->l, y, f->cols, f->N, CLV_WL_TRAIN, &err), 0, "%s", err.msg);
    float *dcols = calloc((size_t)(f->N * f->l.in), sizeof(float));
    memset(f->l.weight->grad, 0, (size_t)f->l.weight->numel * sizeof(float));
    cr_assert_eq(clv_wlayer_backward(&f->l, dcols, f->dy, f->cols, y, f->N, &f->scratch, &err), 0, "%s", err.msg);
    memset(dx, 0, (size_t)f->nx * sizeof(float));
    clv_col2im(dx, dcols, sh->B, sh->H, sh->W, sh->cin, sh->k, sh->s, sh->p);
    memcpy(dw, f->l.weight->grad, (size_t)f->l.weight->numel * sizeof(float));
    free(dcols);
}

Test(conv, forward_dx_dw_match_im2col)
{
    for (size_t sw = 0; sw < 2 * sizeof shapes / sizeof shapes[0]; sw++) {
        const size_t si = sw / 2;
        const int winograd = sw % 2 == 0; /* where oneDNN has it; then direct only */
        fixture f;
        fixture_init(&f, &shapes[si], 10 + 10 * si);
        f.d.winograd = winograd;
        clv_err err = {{0}};
        cr_assert_eq(clv_param_set_trainable(f.l.weight, 1, &err), 0, "%s", err.msg);
        const int64_t nw = f.l.weight->numel;
        float *y0 = malloc((size_t)f.ny * 4), *dx0 = malloc((size_t)f.nx * 4), *dw0 = malloc((size_t)nw * 4);
        float *y = malloc((size_t)f.ny * 4), *dx = malloc((size_t)f.nx * 4), *dw = malloc((size_t)nw * 4);
        reference(&f, y0, dx0, dw0);

        cr_assert_eq(clv_conv_forward(&f.c, &f.d, y, f.x, f.sh.B, CLV_WL_TRAIN, NULL, &err), 0, "%s", err.msg);
        for (int64_t i = 0; i < f.nx; i++)
            dx[i] = NAN; /* overwritten */
        memset(f.l.weight->grad, 0, (size_t)nw * 4);
        f.l.weight->grad[0] = 0.5f; /* the weight gradient accumulates */
        cr_assert_eq(clv_conv_backward(&f.c, &f.d, dx, 0, f.dy, f.x, f.sh.B, &f.scratch, &err), 0, "%s", err.msg);
        f.l.weight->grad[0] -= 0.5f;
        memcpy(dw, f.l.weight->grad, (size_t)nw * 4);
        char impl[512];
        cr_log_info("shape %zu, winograd %d: %s", si, winograd, clv_conv_impl(&f.c, impl, sizeof impl));
        cr_expect(winograd || !strstr(impl, "wino"), "shape %zu: direct only, yet %s", si, impl);
        cr_expect_lt(rel_err(y, y0, f.ny), 1e-5, "shape %zu: forward", si);
        { /* the blocked buffers Winograd's convs share: what they held before does not matter */
            float *y2 = malloc((size_t)f.ny * 4);
            for (int t = 0; t < 2; t++)
                for (size_t i = 0; i < f.d.blocked->cap[t] / sizeof(float); i++)
                    f.d.blocked->buf[t][i] = 1e30f;
            cr_assert_eq(clv_conv_forward(&f.c, &f.d, y2, f.x, f.sh.B, CLV_WL_TRAIN, NULL, &err), 0, "%s", err.msg);
            cr_expect_eq(memcmp(y2, y, (size_t)f.ny * 4), 0, "shape %zu: the forward again, the same floats", si);
            free(y2);
        }
        cr_expect_lt(rel_err(dx, dx0, f.nx), 1e-5, "shape %zu: dx", si);
        cr_expect_lt(rel_err(dw, dw0, nw), 1e-5, "shape %zu: dW", si);

        /* accumulate: dx += the same gradient */
        for (int64_t i = 0; i < f.nx; i++)
            dx[i] = 1.0f;
        cr_assert_eq(clv_conv_backward(&f.c, &f.d, dx, 1, f.dy, f.x, f.sh.B, &f.scratch, &err), 0, "%s", err.msg);
        for (int64_t i = 0; i < f.nx; i++)
            dx[i] -= 1.0f;
        cr_expect_lt(rel_err(dx, dx0, f.nx), 1e-5, "shape %zu: accumulated dx", si);
        free(y0), free(dx0), free(dw0), free(y), free(dx), free(dw);
        fixture_free(&f);
    }
}

Test(conv, inference_epilogue_folds_norm_residual_and_relu)
{
    for (size_t si = 0; si < 4; si++) {
        fixture f;
        fixture_init(&f, &shapes[si], 100 + si);
        clv_err err = {{0}};
        const int64_t C = f.sh.cout;
        float *z = malloc((size_t)f.ny * 4), *y = malloc((size_t)f.ny * 4), *res = malloc((size_t)f.ny * 4);
        float mul[16], add[16];
        gradcheck_fill(mul, C, 7, 0.5f, 2.0f);
        gradcheck_fill(add, C, 8, -1, 1);
        gradcheck_fill(res, f.ny, 9, -1, 1);
        cr_assert_eq(clv_conv_forward(&f.c, &f.d, z, f.x, f.sh.B, CLV_WL_INFER, NULL, &err), 0, "%s", err.msg);
        for (int relu = 0; relu < 2; relu++)
            for (int with_res = 0; with_res < 2; with_res++) {
                const clv_conv_fuse fu = {.mul = mul, .add = add, .res = with_res ? res : NULL, .relu = relu};
                cr_assert_eq(clv_conv_forward(&f.c, &f.d, y, f.x, f.sh.B, CLV_WL_INFER, &fu, &err), 0, "%s",
                             err.msg);
                double worst = 0;
                for (int64_t n = 0; n < f.N; n++)
                    for (int64_t o = 0; o < C; o++) {
                        double v = (double)z[n * C + o] * mul[o] + add[o] + (with_res ? res[n * C + o] : 0.0);
                        if (relu && v < 0)
                            v = 0;
                        worst = fmax(worst, fabs(v - y[n * C + o]));
                    }
                cr_expect_lt(worst, 1e-4, "shape %zu relu %d residual %d: %g", si, relu, with_res, worst);
            }
        /* the residual may be the output buffer itself */
        memcpy(y, res, (size_t)f.ny * 4);
        const clv_conv_fuse fu = {.mul = NULL, .add = NULL, .res = y, .relu = 0};
        cr_assert_eq(clv_conv_forward(&f.c, &f.d, y, f.x, f.sh.B, CLV_WL_INFER, &fu, &err), 0, "%s", err.msg);
        for (int64_t i = 0; i < f.ny; i++)
            cr_assert_float_eq(y[i], z[i] + res[i], 1e-4, "in-place residual [%lld]", (long long)i);
        free(z), free(y), free(res);
        fixture_free(&f);
    }
}

/* y, dx and dW of a conv (base weight trainable), and a fused inference
 * forward (folded norm, residual, relu) into yf. */
static void conv_pass(fixture *f, float *y, float *dx, float *dw, float *yf, const float *mul, const float *add,
                      const float *res)
{
    clv_err err = {{0}};
    cr_assert_eq(clv_param_set_trainable(f->l.weight, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_conv_forward(&f->c, &f->d, y, f->x, f->sh.B, CLV_WL_TRAIN, NULL, &err), 0, "%s", err.msg);
    memset(f->l.weight->grad, 0, (size_t)f->l.weight->numel * 4);
    cr_assert_eq(clv_conv_backward(&f->c, &f->d, dx, 0, f->dy, f->x, f->sh.B, &f->scratch, &err), 0, "%s", err.msg);
    memcpy(dw, f->l.weight->grad, (size_t)f->l.weight->numel * 4);
    memcpy(yf, res, (size_t)f->ny * 4);
    const clv_conv_fuse fu = {.mul = mul, .add = add, .res = yf, .relu = 1};
    cr_assert_eq(clv_conv_forward(&f->c, &f->d, yf, f->x, f->sh.B, CLV_WL_INFER, &fu, &err), 0, "%s", err.msg);
}

static void round_all(float *x, int64_t n, int absolute)
{
    clv_bf16_round_floats(x, x, (size_t)n);
    for (int64_t i = 0; absolute && i < n; i++)
        x[i] = fabsf(x[i]);
}

/* max over i of |a - b| / bound (bound > 0) */
static double worst_over(const float *a, const float *b, const float *bound, int64_t n)
{
    double w = 0;
    for (int64_t i = 0; i < n; i++)
        w = fmax(w, fabs((double)a[i] - b[i]) / bound[i]);
    return w;
}

/* A bf16 conv (oneDNN's bf16 primitives, or with emulate the converting
 * path) is the fp32 conv on bf16-rounded x, dy and W: two bf16 values
 * multiply exactly in fp32, so only the summation order differs, within
 * 1e-5 of sum |a||b| (the fp32 conv of the absolute values; with the folded
 * norm, rounded after folding as the conv does, plus |shift| and |res|). */
static void bf16_against_rounded_fp32(int emulate)
{
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        fixture f, g, h; /* bf16; fp32 on rounded inputs; fp32 on their absolute values */
        const uint64_t seed = 300 + 10 * si;
        fixture_init(&f, &shapes[si], seed), fixture_init(&g, &shapes[si], seed), fixture_init(&h, &shapes[si], seed);
        clv_err err = {{0}};
        f.l.compute = clv_compute_create(CLV_PRECISION_BF16, emulate, &err);
        cr_assert_not_null(f.l.compute, "%s", err.msg);
        const int64_t nw = f.l.weight->numel, C = f.sh.cout;
        float mul[64], add[64], res[4096], addabs[64];
        cr_assert_leq(f.ny, 4096);
        cr_assert_leq(C, 64);
        /* the references: fp32 with the direct kernels' rounding; f: oneDNN's bf16 primitives (bf16
         * Winograd has its own test, suite winograd_bf16) */
        f.d.winograd = g.d.winograd = h.d.winograd = 0;
        gradcheck_fill(mul, C, seed + 5, 0.5f, 2.0f);
        gradcheck_fill(add, C, seed + 6, -1, 1);
        gradcheck_fill(res, f.ny, seed + 7, -1, 1);
        for (int64_t o = 0; o < C; o++)
            addabs[o] = fabsf(add[o]);
        for (int ab = 0; ab < 2; ab++) {
            fixture *r = ab ? &h : &g;
            round_all(r->x, r->nx, ab), round_all(r->dy, r->ny, ab), round_all(r->l.weight->data, nw, ab);
        }
        float *out[3][5];
        for (int k = 0; k < 3; k++)
            for (int j = 0; j < 5; j++)
                out[k][j] = malloc((size_t)(j == 1 ? f.nx : j == 2 ? nw : f.ny) * 4);
        conv_pass(&f, out[0][0], out[0][1], out[0][2], out[0][3], mul, add, res);
        conv_pass(&g, out[1][0], out[1][1], out[1][2], out[1][4], mul, add, res); /* out[1][4]: unused */
        conv_pass(&h, out[2][0], out[2][1], out[2][2], out[2][4], mul, add, res);
        /* the fused references: W folded by the norm's scale, then rounded, as the fused conv does */
        fixture *rs[2] = {&g, &h};
        for (int ab = 0; ab < 2; ab++) {
            fixture *r = rs[ab];
            fixture_free(r), fixture_init(r, &shapes[si], seed);
            r->d.winograd = 0;
            const int64_t in = r->l.in;
            for (int64_t o = 0; o < C; o++)
                for (int64_t i = 0; i < in; i++)
                    r->l.weight->data[o * in + i] *= mul[o];
            round_all(r->x, r->nx, ab), round_all(r->l.weight->data, nw, ab);
            float *yf = out[1 + ab][3];
            for (int64_t i = 0; i < f.ny; i++)
                yf[i] = ab ? fabsf(res[i]) : res[i];
            const clv_conv_fuse fu = {.add = ab ? addabs : add, .res = yf, .relu = 1};
            cr_assert_eq(clv_conv_forward(&r->c, &r->d, yf, r->x, r->sh.B, CLV_WL_INFER, &fu, &err), 0, "%s",
                         err.msg);
        }
        const int64_t ns[4] = {f.ny, f.nx, nw, f.ny};
        const char *what[4] = {"forward", "dx", "dW", "fused forward"};
        char impl[512];
        cr_log_info("emulate %d shape %zu: %s", emulate, si, clv_conv_impl(&f.c, impl, sizeof impl));
        for (int j = 0; j < 4; j++) {
            for (int64_t i = 0; i < ns[j]; i++)
                out[2][j][i] = 1e-5f * out[2][j][i] + 1e-30f;
            const double w = worst_over(out[0][j], out[1][j], out[2][j], ns[j]);
            cr_expect_leq(w, 1.0, "emulate %d shape %zu: bf16 %s off fp32 on rounded inputs by %.3g x 1e-5 sum|a||b|",
                          emulate, si, what[j], w);
        }
        /* bf16 is in use: the unrounded fp32 conv differs */
        fixture u;
        fixture_init(&u, &shapes[si], seed);
        cr_assert_eq(clv_conv_forward(&u.c, &u.d, out[1][4], u.x, u.sh.B, CLV_WL_TRAIN, NULL, &err), 0, "%s",
                     err.msg);
        cr_expect_gt(rel_err(out[0][0], out[1][4], f.ny), 1e-4, "emulate %d shape %zu: bf16 forward is fp32's",
                     emulate, si);
        fixture_free(&u);
        for (int k = 0; k < 3; k++)
            for (int j = 0; j < 5; j++)
                free(out[k][j]);
        clv_compute_free(f.l.compute);
        f.l.compute = NULL;
        fixture_free(&f), fixture_free(&g), fixture_free(&h);
    }
}

Test(conv, bf16_is_fp32_on_rounded_inputs) { bf16_against_rounded_fp32(0); }
Test(conv, bf16_converting_path_is_fp32_on_rounded_inputs) { bf16_against_rounded_fp32(1); }

/* y, dx and dW of a training pass on x (base weight trainable); with
 * filled, a producer first wrote the conv's bf16 input from x itself. */
static void train_pass(fixture *f, const float *x, int filled, float *y, float *dx, float *dw)
{
    clv_err err = {{0}};
    cr_assert_eq(clv_param_set_trainable(f->l.weight, 1, &err), 0, "%s", err.msg);
    if (filled) {
        clv_bf16 *h = NULL;
        cr_assert_eq(clv_conv_input_bf16(&f->c, &f->d, f->sh.B, &h, &err), 0, "%s", err.msg);
        cr_assert_not_null(h);
        clv_bf16_from_floats(h, x, (size_t)f->nx);
        clv_conv_input_ready(&f->c, x);
    }
    cr_assert_eq(clv_conv_forward(&f->c, &f->d, y, x, f->sh.B, CLV_WL_TRAIN, NULL, &err), 0, "%s", err.msg);
    memset(f->l.weight->grad, 0, (size_t)f->l.weight->numel * 4);
    cr_assert_eq(clv_conv_backward(&f->c, &f->d, dx, 0, f->dy, x, f->sh.B, &f->scratch, &err), 0, "%s", err.msg);
    memcpy(dw, f->l.weight->grad, (size_t)f->l.weight->numel * 4);
}

/* In bf16 on oneDNN the forward's converted input is kept for the backward
 * weights and may come from its producer: the same bits as converting it
 * there; a copy made for another x (pointer) is never used. */
Test(conv, bf16_kept_and_produced_input_are_the_converted_one)
{
    for (size_t si = 0; si < 3; si++) {
        fixture f;
        fixture_init(&f, &shapes[si], 700 + si);
        f.d.winograd = 0; /* bf16 Winograd reads fp32 x and dy (no bf16 copies) */
        clv_err err = {{0}};
        clv_bf16 *h = (clv_bf16 *)1;
        cr_assert_eq(clv_conv_input_bf16(&f.c, &f.d, f.sh.B, &h, &err), 0, "%s", err.msg);
        cr_expect_null(h, "fp32 reads no bf16 input");
        f.l.compute = clv_compute_create(CLV_PRECISION_BF16, 0, &err);
        cr_assert_not_null(f.l.compute, "%s", err.msg);
        cr_assert_eq(clv_conv_input_bf16(&f.c, &f.d, f.sh.B, &h, &err), 0, "%s", err.msg);
        if (!h) { /* no bf16 convolution in this oneDNN on this CPU: the converting path */
            cr_log_info("shape %zu: no bf16 convolution here, nothing kept", si);
            clv_compute_free(f.l.compute);
            f.l.compute = NULL;
            fixture_free(&f);
            continue;
        }
        const int64_t nw = f.l.weight->numel;
        float *x2 = malloc((size_t)f.nx * 4), *o[4][3];
        gradcheck_fill(x2, f.nx, 800 + si, -1, 1);
        for (int k = 0; k < 4; k++)
            for (int j = 0; j < 3; j++)
                o[k][j] = malloc((size_t)(j == 0 ? f.ny : j == 1 ? f.nx : nw) * 4);
        /* the reference: each pass through the compute scratch, as before any kept copy (x2 first
         * leaves nothing kept for x; an inference forward in between drops what is kept) */
        train_pass(&f, x2, 0, o[3][0], o[3][1], o[3][2]);
        cr_assert_eq(clv_conv_forward(&f.c, &f.d, o[0][0], f.x, f.sh.B, CLV_WL_INFER, NULL, &err), 0, "%s", err.msg);
        train_pass(&f, f.x, 0, o[0][0], o[0][1], o[0][2]);
        train_pass(&f, f.x, 1, o[1][0], o[1][1], o[1][2]);
        /* a copy marked ready for x2, then a forward on x: x is converted; the backward on x2
         * (another input than the forward's) converts x2, not the kept copy of x */
        cr_assert_eq(clv_conv_input_bf16(&f.c, &f.d, f.sh.B, &h, &err), 0, "%s", err.msg);
        memset(h, 0, (size_t)f.nx * sizeof *h);
        clv_conv_input_ready(&f.c, x2);
        cr_assert_eq(clv_conv_forward(&f.c, &f.d, o[2][0], f.x, f.sh.B, CLV_WL_TRAIN, NULL, &err), 0, "%s", err.msg);
        memset(f.l.weight->grad, 0, (size_t)nw * 4);
        cr_assert_eq(clv_conv_backward(&f.c, &f.d, o[2][1], 0, f.dy, x2, f.sh.B, &f.scratch, &err), 0, "%s", err.msg);
        memcpy(o[2][2], f.l.weight->grad, (size_t)nw * 4);
        const int64_t ns[3] = {f.ny, f.nx, nw};
        for (int j = 0; j < 3; j++) {
            cr_expect(!memcmp(o[1][j], o[0][j], (size_t)ns[j] * 4), "shape %zu: produced input changes output %d", si,
                      j);
        }
        cr_expect(!memcmp(o[2][0], o[0][0], (size_t)f.ny * 4), "shape %zu: a copy made for x2 was used for x", si);
        cr_expect(!memcmp(o[2][2], o[3][2], (size_t)nw * 4), "shape %zu: backward on x2 used x's kept copy", si);
        cr_expect_gt(rel_err(o[3][2], o[0][2], nw), 1e-3, "shape %zu: x and x2 give the same dW", si);
        /* dy given only in bf16 (dy's fp32 values garbage): the same dx and dW */
        cr_assert_eq(clv_conv_forward(&f.c, &f.d, o[2][0], f.x, f.sh.B, CLV_WL_TRAIN, NULL, &err), 0, "%s", err.msg);
        cr_assert_eq(clv_conv_dy_bf16(&f.c, f.sh.B, &h, &err), 0, "%s", err.msg);
        cr_assert_not_null(h);
        clv_bf16_from_floats(h, f.dy, (size_t)f.ny);
        float *junk = malloc((size_t)f.ny * 4);
        for (int64_t i = 0; i < f.ny; i++)
            junk[i] = NAN;
        clv_conv_dy_ready(&f.c, junk);
        memset(f.l.weight->grad, 0, (size_t)nw * 4);
        cr_assert_eq(clv_conv_backward(&f.c, &f.d, o[2][1], 0, junk, f.x, f.sh.B, &f.scratch, &err), 0, "%s", err.msg);
        cr_expect(!memcmp(o[2][1], o[0][1], (size_t)f.nx * 4), "shape %zu: dx from the given bf16 dy", si);
        cr_expect(!memcmp(f.l.weight->grad, o[0][2], (size_t)nw * 4), "shape %zu: dW from the given bf16 dy", si);
        free(junk);
        for (int k = 0; k < 4; k++)
            for (int j = 0; j < 3; j++)
                free(o[k][j]);
        free(x2);
        clv_compute_free(f.l.compute);
        f.l.compute = NULL;
        fixture_free(&f);
    }
}

Test(conv, refuses_a_kernel_larger_than_its_input)
{
    clv_wlayer l = {.name = "conv1", .out = 4, .in = 3 * 9};
    clv_conv c;
    clv_err err = {{0}};
    cr_assert_eq(clv_conv_init(&c, &l, 3, 4, 3, 1, 0, 2, 2, &err), -1);
    cr_assert(strstr(err.msg, "conv1") && strstr(err.msg, "too small"), "%s", err.msg);
    l.in = 5;
    cr_assert_eq(clv_conv_init(&c, &l, 3, 4, 3, 1, 1, 8, 8, &err), -1);
    cr_assert(strstr(err.msg, "not a"), "%s", err.msg);
}

/* One adapter on the conv: its parameters' gradients from the row-wise path
 * (im2col columns, clv_wlayer_backward -> ops->backward) and from oneDNN's
 * full dW_eff (clv_conv_backward -> ops->backward_dweight) agree. */
static void adapter_paths_agree(const char *what, fixture *f, clv_params *ps)
{
    clv_err err = {{0}};
    float *y = malloc((size_t)f->ny * 4), *dcols = calloc((size_t)(f->N * f->l.in), 4);
    f->l.adapter->ops->invalidate(f->l.adapter);
    clv_params_zero_grad(ps);
    cr_assert_eq(clv_wlayer_forward(&f->l, y, f->cols, f->N, CLV_WL_TRAIN, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_wlayer_backward(&f->l, dcols, f->dy, f->cols, y, f->N, &f->scratch, &err), 0, "%s", err.msg);
    float **want = calloc((size_t)ps->count, sizeof *want);
    for (int i = 0; i < ps->count; i++) {
        clv_param *p = ps->items[i];
        want[i] = malloc((size_t)p->numel * 4);
        memcpy(want[i], p->grad, (size_t)p->numel * 4);
    }
    float *y2 = malloc((size_t)f->ny * 4);
    clv_params_zero_grad(ps);
    cr_assert_eq(clv_conv_forward(&f->c, &f->d, y2, f->x, f->sh.B, CLV_WL_TRAIN, NULL, &err), 0, "%s", err.msg);
    cr_expect_lt(rel_err(y2, y, f->ny), 1e-5, "%s: forward", what);
    cr_assert_eq(clv_conv_backward(&f->c, &f->d, NULL, 0, f->dy, f->x, f->sh.B, &f->scratch, &err), 0, "%s", err.msg);
    for (int i = 0; i < ps->count; i++) {
        clv_param *p = ps->items[i];
        double m = 0;
        for (int64_t j = 0; j < p->numel; j++)
            m = fmax(m, fabs(want[i][j]));
        cr_expect_gt(m, 0, "%s: %s has a gradient to compare", what, p->name);
        cr_expect_lt(rel_err(p->grad, want[i], p->numel), 1e-4, "%s: %s", what, p->name);
        free(want[i]);
    }
    free(want), free(y), free(y2), free(dcols);
}

static void train_all(clv_params *ps)
{
    clv_err err = {{0}};
    for (int i = 0; i < ps->count; i++)
        cr_assert_eq(clv_param_set_trainable(ps->items[i], 1, &err), 0, "%s", err.msg);
}

Test(conv, adapters_take_onednns_weight_gradient)
{
    const shape sh = {2, 4, 6, 3, 2, 1, 8, 8};
    for (int view = 0; view < 2; view++) {
        fixture f;
        fixture_init(&f, &sh, 500 + view);
        clv_err err = {{0}};
        clv_params ps;
        clv_params_init(&ps);
        clv_adapter *a = clv_rkr_create(&f.l, 1, view ? CLV_VIEW_RKR : CLV_VIEW_OURS, &err);
        cr_assert_not_null(a, "%s", err.msg);
        cr_assert_eq(clv_rkr_add_task(a, &f.l, 0, 2, 1, 5, 1.0f, &ps, &err), 0, "%s", err.msg);
        f.l.adapter = a;
        clv_task_adapter_select(a, 0);
        gradcheck_fill(ps.items[2]->data, ps.items[2]->numel, 3, 0.5f, 1.5f); /* F: a real output scale */
        adapter_paths_agree(view ? "rkr (RKR's conv view)" : "rkr", &f, &ps);
        char impl[512];
        clv_conv_impl(&f.c, impl, sizeof impl);
        cr_log_info("rkr view %d: %s", view, impl);
        /* our view takes the low-rank path (K-channel convs), RKR's view the full dW_eff */
        cr_expect_eq(strstr(impl, "low-rank K=2") != NULL, view == 0, "%s", impl);
        f.l.adapter = NULL;
        a->ops->free(a);
        clv_params_free(&ps);
        fixture_free(&f);
    }
    {
        fixture f;
        fixture_init(&f, &sh, 600);
        clv_err err = {{0}};
        clv_params ps;
        clv_params_init(&ps);
        clv_adapter *a = clv_piggyback_create(&f.l, 2, 5e-3f, &err);
        cr_assert_not_null(a, "%s", err.msg);
        cr_assert_eq(clv_piggyback_add_task(a, &f.l, 1, 1e-2f, 1e-4f, &ps, &err), 0, "%s", err.msg);
        gradcheck_fill(ps.items[0]->data, ps.items[0]->numel, 5, -1e-2f, 2e-2f);
        f.l.adapter = a;
        clv_task_adapter_select(a, 1);
        adapter_paths_agree("piggyback", &f, &ps);
        f.l.adapter = NULL;
        a->ops->free(a);
        clv_params_free(&ps);
        fixture_free(&f);
    }
    for (int view = 0; view < 2; view++) {
        fixture f;
        fixture_init(&f, &sh, 700 + view);
        clv_err err = {{0}};
        clv_params shared, task;
        clv_params_init(&shared);
        clv_params_init(&task);
        clv_adapter *a = clv_maskrkr_create(&f.l, 3, 2, 5e-3f, CLV_MASK_LM | CLV_MASK_RM | CLV_MASK_F,
                                            view ? CLV_VIEW_RKR : CLV_VIEW_OURS, &err);
        cr_assert_not_null(a, "%s", err.msg);
        cr_assert_eq(clv_maskrkr_add_shared(a, &f.l, 1, 1, 9, 0.0f, 1e-3f, &shared, &err), 0, "%s", err.msg);
        clv_param *lm = clv_maskrkr_shared(a, CLV_MASK_LM), *rm = clv_maskrkr_shared(a, CLV_MASK_RM),
                  *fs = clv_maskrkr_shared(a, CLV_MASK_F);
        gradcheck_fill(lm->data, lm->numel, 11, -0.5f, 0.5f);
        gradcheck_fill(rm->data, rm->numel, 12, -0.5f, 0.5f);
        gradcheck_fill(fs->data, fs->numel, 13, 0.5f, 1.5f);
        f.l.adapter = a;
        clv_task_adapter_select(a, 1); /* the shared task: plain RKR on the shared tensors */
        train_all(&shared);
        adapter_paths_agree("maskrkr shared task", &f, &shared);
        for (int i = 0; i < shared.count; i++)
            clv_param_set_trainable(shared.items[i], 0, &err);
        cr_assert_eq(clv_maskrkr_add_task(a, &f.l, 2, 1e-2f, 1e-4f, &task, &err), 0, "%s", err.msg);
        for (int i = 0; i < task.count; i++)
            gradcheck_fill(task.items[i]->data, task.items[i]->numel, 21 + i, -1e-2f, 2e-2f);
        clv_task_adapter_select(a, 2); /* a masking task: straight-through score gradients */
        adapter_paths_agree("maskrkr masking task", &f, &task);
        f.l.adapter = NULL;
        a->ops->free(a);
        clv_params_free(&task);
        clv_params_free(&shared);
        fixture_free(&f);
    }
}

/* In bf16 at small outputs the weight gradient is im2col + a bf16 matmul,
 * handed to an adapter in oihw: piggyback's score gradients match the fp32
 * conv's to bf16's rounding (a wrong layout is off by the gradient's size). */
Test(conv, bf16_adapter_takes_the_im2col_weight_gradient)
{
    const shape sh = {2, 4, 6, 3, 2, 1, 8, 8}; /* 4x4 outputs */
    fixture f[2];
    clv_params ps[2];
    clv_adapter *a[2];
    clv_err err = {{0}};
    for (int b = 0; b < 2; b++) {
        fixture_init(&f[b], &sh, 900);
        clv_params_init(&ps[b]);
        if (b) {
            f[b].l.compute = clv_compute_create(CLV_PRECISION_BF16, 0, &err);
            cr_assert_not_null(f[b].l.compute, "%s", err.msg);
        }
        a[b] = clv_piggyback_create(&f[b].l, 2, 5e-3f, &err);
        cr_assert_not_null(a[b], "%s", err.msg);
        cr_assert_eq(clv_piggyback_add_task(a[b], &f[b].l, 1, 1e-2f, 1e-4f, &ps[b], &err), 0, "%s", err.msg);
        gradcheck_fill(ps[b].items[0]->data, ps[b].items[0]->numel, 5, -1e-2f, 2e-2f);
        f[b].l.adapter = a[b];
        clv_task_adapter_select(a[b], 1);
        float *y = malloc((size_t)f[b].ny * 4);
        clv_params_zero_grad(&ps[b]);
        cr_assert_eq(clv_conv_forward(&f[b].c, &f[b].d, y, f[b].x, sh.B, CLV_WL_TRAIN, NULL, &err), 0, "%s", err.msg);
        cr_assert_eq(clv_conv_backward(&f[b].c, &f[b].d, NULL, 0, f[b].dy, f[b].x, sh.B, &f[b].scratch, &err), 0,
                     "%s", err.msg);
        free(y);
    }
    char impl[512];
    clv_conv_impl(&f[1].c, impl, sizeof impl);
    cr_log_info("%s", impl);
    if (strstr(impl, "im2col")) {
        const clv_param *g32 = ps[0].items[0], *g16 = ps[1].items[0];
        const double e = rel_err(g16->grad, g32->grad, g32->numel);
        cr_expect_lt(e, 3e-2, "bf16 score gradients off fp32's by %.3g of their size", e);
        cr_expect_gt(e, 1e-7, "bf16 score gradients are fp32's: bf16 not in use");
    } else
        cr_log_info("no bf16 convolution here: the im2col weight gradient is not in use");
    for (int b = 0; b < 2; b++) {
        f[b].l.adapter = NULL;
        a[b]->ops->free(a[b]);
        clv_params_free(&ps[b]);
        clv_compute_free(f[b].l.compute);
        f[b].l.compute = NULL;
        fixture_free(&f[b]);
    }
}

/* In a bf16 training forward, RKR's rectification A B (here about 1e-4, under half a bf16 step of W)
 * is added beside the bf16 conv of the base W in fp32, not rounded into W_eff: y equals
 * s (x * (bf16(W) + A B)) on bf16-valued x, within fp32's summation error, and not
 * s (x * bf16(W + A B)), which the test first checks to be farther away than that. */
Test(conv, bf16_rectification_stays_fp32_in_the_training_forward)
{
    const shape sh = {2, 4, 6, 3, 1, 1, 6, 6};
    for (int emulate = 0; emulate < 2; emulate++) {
        fixture f;
        fixture_init(&f, &sh, 950 + emulate);
        clv_err err = {{0}};
        const int64_t in = f.l.in, C = sh.cout, K = 2;
        round_all(f.x, f.nx, 0);
        clv_im2col(f.cols, f.x, sh.B, sh.H, sh.W, sh.cin, sh.k, sh.s, sh.p);
        f.l.compute = clv_compute_create(CLV_PRECISION_BF16, emulate, &err);
        cr_assert_not_null(f.l.compute, "%s", err.msg);
        f.d.winograd = 0; /* the direct bf16 conv's rounding (the rectification beside is the same code) */
        clv_params ps;
        clv_params_init(&ps);
        clv_adapter *a = clv_rkr_create(&f.l, 1, CLV_VIEW_OURS, &err);
        cr_assert_not_null(a, "%s", err.msg);
        cr_assert_eq(clv_rkr_add_task(a, &f.l, 0, K, 0, 5, 1e-3f, &ps, &err), 0, "%s", err.msg);
        clv_param *lm = ps.items[0], *rm = ps.items[1], *fs = ps.items[2];
        cr_assert(lm->numel == C * K && rm->numel == K * in && fs->numel == C);
        gradcheck_fill(lm->data, lm->numel, 31, -1e-2f, 1e-2f);
        gradcheck_fill(rm->data, rm->numel, 32, -1e-2f, 1e-2f);
        gradcheck_fill(fs->data, fs->numel, 33, 0.5f, 1.5f);
        f.l.adapter = a;
        clv_task_adapter_select(a, 0);
        float *y = malloc((size_t)f.ny * 4);
        cr_assert_eq(clv_conv_forward(&f.c, &f.d, y, f.x, sh.B, CLV_WL_TRAIN, NULL, &err), 0, "%s", err.msg);
        double worst = 0, moved = 0; /* in units of the tolerance */
        for (int64_t n = 0; n < f.N; n++)
            for (int64_t o = 0; o < C; o++) {
                double want = 0, rounded = 0, mag = 0;
                for (int64_t i = 0; i < in; i++) {
                    double ab = 0;
                    for (int64_t k = 0; k < K; k++)
                        ab += (double)lm->data[o * K + k] * rm->data[k * in + i];
                    const float w = f.l.weight->data[o * in + i], xv = f.cols[n * in + i];
                    want += xv * ((double)clv_bf16_to_float(clv_bf16_from_float(w)) + ab);
                    rounded += xv * (double)clv_bf16_to_float(clv_bf16_from_float((float)(w + ab)));
                    mag += fabs(xv) * fabs(w);
                }
                const double tol = 1e-5 * mag * fs->data[o] + 1e-7;
                worst = fmax(worst, fabs(y[n * C + o] - fs->data[o] * want) / tol);
                moved = fmax(moved, fs->data[o] * fabs(rounded - want) / tol);
            }
        cr_expect_leq(worst, 1.0, "emulate %d: y off s (x * (bf16(W) + A B)) by %.3g x its tolerance", emulate, worst);
        /* the check can fail: rounding W_eff moves y by more than that tolerance */
        cr_expect_gt(moved, 5.0, "emulate %d: rounding W_eff moves y by only %.3g x the tolerance", emulate, moved);
        /* the backward takes x * B from the forward: the same gradients as forming it again (given a copy of x,
         * another pointer, it does) */
        float *xc = malloc((size_t)f.nx * 4), *g[2];
        memcpy(xc, f.x, (size_t)f.nx * 4);
        const int64_t ng = lm->numel + rm->numel + fs->numel;
        for (int pass = 0; pass < 2; pass++) {
            clv_params_zero_grad(&ps);
            cr_assert_eq(clv_conv_forward(&f.c, &f.d, y, f.x, sh.B, CLV_WL_TRAIN, NULL, &err), 0, "%s", err.msg);
            cr_assert_eq(clv_conv_backward(&f.c, &f.d, NULL, 0, f.dy, pass ? xc : f.x, sh.B, &f.scratch, &err), 0,
                         "%s", err.msg);
            g[pass] = malloc((size_t)ng * 4);
            memcpy(g[pass], lm->grad, (size_t)lm->numel * 4);
            memcpy(g[pass] + lm->numel, rm->grad, (size_t)rm->numel * 4);
            memcpy(g[pass] + lm->numel + rm->numel, fs->grad, (size_t)fs->numel * 4);
        }
        double gmax = 0;
        for (int64_t i = 0; i < ng; i++)
            gmax = fmax(gmax, fabs(g[0][i]));
        cr_expect_gt(gmax, 0, "emulate %d: no adapter gradient to compare", emulate);
        cr_expect(!memcmp(g[0], g[1], (size_t)ng * 4), "emulate %d: the forward's x * B changed the gradients", emulate);
        free(g[0]), free(g[1]), free(xc);
        free(y);
        f.l.adapter = NULL;
        a->ops->free(a);
        clv_params_free(&ps);
        clv_compute_free(f.l.compute);
        f.l.compute = NULL;
        fixture_free(&f);
    }
}

/* In bf16 with native bf16 a 3x3 stride-1 pad-1 conv runs bf16 Winograd (clvit/winograd_bf16.h):
 * its training forward, dx (overwritten and accumulated), dW (accumulated into the gradient, and
 * handed to an adapter) and fused inference forward (the norm's scale folded into W, its shift,
 * the residual in place and ReLU in the output transform) are bit for bit the kernel's own calls;
 * with winograd off it is the direct bf16 conv again. */
Test(conv, bf16_winograd_is_the_kernels_calls)
{
    const shape sh = shapes[7]; /* 32 -> 16 channels, sides 5 x 7 */
    fixture f;
    fixture_init(&f, &sh, 1200);
    clv_err err = {{0}};
    f.l.compute = clv_compute_create(CLV_PRECISION_BF16, 0, &err);
    cr_assert_not_null(f.l.compute, "%s", err.msg);
    if (!clv_compute_bf16_native(f.l.compute)) {
        cr_log_info("no native bf16 here: the direct conv runs (suite conv's other bf16 tests)");
        clv_compute_free(f.l.compute);
        f.l.compute = NULL;
        fixture_free(&f);
        return;
    }
    const int64_t nw = f.l.weight->numel, C = sh.cout;
    float *y = malloc((size_t)f.ny * 4), *dx = malloc((size_t)f.nx * 4), *want = malloc((size_t)f.nx * 4),
          *dw = malloc((size_t)nw * 4), *wf = malloc((size_t)nw * 4), *res = malloc((size_t)f.ny * 4);
    float mul[16], add[16];
    gradcheck_fill(mul, C, 1201, 0.5f, 2.0f);
    gradcheck_fill(add, C, 1202, -1, 1);
    gradcheck_fill(res, f.ny, 1203, -1, 1);
    clv_wino_bf16 w = {0};
    cr_assert_eq(clv_param_set_trainable(f.l.weight, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_conv_forward(&f.c, &f.d, y, f.x, sh.B, CLV_WL_TRAIN, NULL, &err), 0, "%s", err.msg);
    char impl[512];
    cr_expect(strstr(clv_conv_impl(&f.c, impl, sizeof impl), "winograd_bf16"), "%s", impl);
    cr_assert_eq(clv_wino_bf16_weight(&w, f.l.weight->data, C, sh.cin, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_wino_bf16_conv(f.l.compute, &w, want, f.x, sh.B, sh.H, sh.W, sh.cin, C, NULL, &err), 0, "%s",
                 err.msg);
    cr_expect(!memcmp(y, want, (size_t)f.ny * 4), "training forward");
    /* the backward: dx overwritten, then accumulated onto dx; dW accumulated onto the gradient */
    for (int64_t i = 0; i < nw; i++)
        f.l.weight->grad[i] = 1.0f;
    cr_assert_eq(clv_conv_backward(&f.c, &f.d, dx, 0, f.dy, f.x, sh.B, &f.scratch, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_wino_bf16_weight(&w, f.l.weight->data, C, sh.cin, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_wino_bf16_conv(f.l.compute, &w, want, f.dy, sh.B, sh.H, sh.W, C, sh.cin, NULL, &err), 0, "%s",
                 err.msg);
    cr_expect(!memcmp(dx, want, (size_t)f.nx * 4), "dx");
    cr_assert_eq(clv_wino_bf16_dweight(f.l.compute, &w, dw, f.x, f.dy, sh.B, sh.H, sh.W, sh.cin, C, &err), 0, "%s",
                 err.msg);
    int64_t bad = 0;
    for (int64_t i = 0; i < nw; i++)
        bad += f.l.weight->grad[i] != 1.0f + dw[i];
    cr_expect_eq(bad, 0, "dW accumulated: %lld of %lld differ", (long long)bad, (long long)nw);
    cr_assert_eq(clv_conv_backward(&f.c, &f.d, dx, 1, f.dy, f.x, sh.B, &f.scratch, &err), 0, "%s", err.msg);
    bad = 0;
    for (int64_t i = 0; i < f.nx; i++)
        bad += dx[i] != want[i] + want[i];
    cr_expect_eq(bad, 0, "dx accumulated: %lld differ", (long long)bad);
    /* the fused inference forward, residual in place */
    const int64_t in = f.l.in;
    for (int64_t o = 0; o < C; o++)
        for (int64_t i = 0; i < in; i++)
            wf[o * in + i] = f.l.weight->data[o * in + i] * mul[o];
    memcpy(y, res, (size_t)f.ny * 4);
    const clv_conv_fuse fu = {.mul = mul, .add = add, .res = y, .relu = 1};
    cr_assert_eq(clv_conv_forward(&f.c, &f.d, y, f.x, sh.B, CLV_WL_INFER, &fu, &err), 0, "%s", err.msg);
    memcpy(want, res, (size_t)f.ny * 4);
    const clv_wino_epilogue ep = {.bias = add, .res = want, .relu = 1};
    cr_assert_eq(clv_wino_bf16_weight(&w, wf, C, sh.cin, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_wino_bf16_conv(f.l.compute, &w, want, f.x, sh.B, sh.H, sh.W, sh.cin, C, &ep, &err), 0, "%s",
                 err.msg);
    cr_expect(!memcmp(y, want, (size_t)f.ny * 4), "fused forward");
    /* winograd off: the direct bf16 conv */
    f.d.winograd = 0;
    cr_assert_eq(clv_conv_forward(&f.c, &f.d, y, f.x, sh.B, CLV_WL_TRAIN, NULL, &err), 0, "%s", err.msg);
    cr_expect(!strstr(clv_conv_impl(&f.c, impl, sizeof impl), "winograd"), "%s", impl);
    clv_wino_bf16_free(&w);
    free(y), free(dx), free(want), free(dw), free(wf), free(res);
    clv_compute_free(f.l.compute);
    f.l.compute = NULL;
    fixture_free(&f);
}

/* Without an adapter and with the base frozen, nothing but dx is computed
 * (no weight gradient buffer is touched), and a backward with another
 * batch than the forward's is refused. */
Test(conv, frozen_base_and_batch_mismatch)
{
    fixture f;
    fixture_init(&f, &shapes[0], 900);
    clv_err err = {{0}};
    float *y = malloc((size_t)f.ny * 4), *dx = malloc((size_t)f.nx * 4);
    cr_assert_eq(clv_conv_forward(&f.c, &f.d, y, f.x, f.sh.B, CLV_WL_TRAIN, NULL, &err), 0, "%s", err.msg);
    cr_assert_null(f.l.weight->grad);
    cr_assert_eq(clv_conv_backward(&f.c, &f.d, dx, 0, f.dy, f.x, f.sh.B, &f.scratch, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_conv_backward(&f.c, &f.d, dx, 0, f.dy, f.x, f.sh.B - 1, &f.scratch, &err), -1);
    cr_assert(strstr(err.msg, "layer1.0.conv1"), "%s", err.msg);
    free(y), free(dx);
    fixture_free(&f);
}

/* oneDNN 2.6.3's 1x1 backward weights below AVX-512 (jit_1x1:avx2) writes past its scratchpad
 * for a strided 1x1 convolution with fewer than 8 input channels; such a convolution takes
 * another implementation. On AVX-512 this holds trivially; `make test` runs this suite again
 * with oneDNN limited to AVX2, where the faulty kernel would otherwise be chosen. */
Test(conv, strided_1x1_with_few_channels_avoids_the_faulty_kernel)
{
    const shape few[] = {{2, 4, 8, 1, 2, 0, 8, 8}, {2, 3, 8, 1, 2, 0, 16, 16}, {2, 6, 4, 1, 2, 0, 8, 7}};
    for (size_t i = 0; i < sizeof few / sizeof few[0]; i++) {
        fixture f;
        fixture_init(&f, &few[i], 1300 + i);
        clv_err err = {{0}};
        cr_assert_eq(clv_param_set_trainable(f.l.weight, 1, &err), 0, "%s", err.msg);
        const int64_t nw = f.l.weight->numel;
        float *y0 = malloc((size_t)f.ny * 4), *dx0 = malloc((size_t)f.nx * 4), *dw0 = malloc((size_t)nw * 4);
        float *y = malloc((size_t)f.ny * 4), *dx = malloc((size_t)f.nx * 4);
        reference(&f, y0, dx0, dw0);
        cr_assert_eq(clv_conv_forward(&f.c, &f.d, y, f.x, f.sh.B, CLV_WL_TRAIN, NULL, &err), 0, "%s", err.msg);
        memset(f.l.weight->grad, 0, (size_t)nw * 4);
        cr_assert_eq(clv_conv_backward(&f.c, &f.d, dx, 0, f.dy, f.x, f.sh.B, &f.scratch, &err), 0, "%s", err.msg);
        char impl[512];
        clv_conv_impl(&f.c, impl, sizeof impl);
        const char *bw = strrchr(impl, '/'); /* "forward / backward data / backward weights" */
        cr_assert(bw, "%s", impl);
        bw += 2;
        cr_expect(strncmp(bw, "jit_1x1:", 8) || strstr(bw, "avx512"), "%zu input channels, stride 2: %s", (size_t)few[i].cin,
                  impl);
        cr_expect_lt(rel_err(f.l.weight->grad, dw0, nw), 1e-5, "shape %zu: dW (%s)", i, impl);
        cr_expect_lt(rel_err(dx, dx0, f.nx), 1e-5, "shape %zu: dx (%s)", i, impl);
        free(y0), free(dx0), free(dw0), free(y), free(dx);
        fixture_free(&f);
    }
}
