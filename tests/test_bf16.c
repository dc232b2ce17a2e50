/* bf16 precision (clvit/precision.h): the conversion against hand values,
 * clv_gemm_bf16 against the fp32 GEMM on bf16-rounded inputs through oneDNN
 * and through the converting path, and every backbone's features and
 * gradients in bf16 against fp32. make test runs this suite a second time
 * with oneDNN limited to AVX2 (no bf16 matmul: the converting path). */
#include <criterion/criterion.h>

#include "clvit/gemm.h"
#include "clvit/kernels.h"
#include "clvit/model.h"
#include "clvit/precision.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

Test(bf16, conversion_rounds_to_nearest_even)
{
    static const struct {
        uint32_t in;
        uint16_t out;
        const char *what;
    } cases[] = {
        {0x3f800000u, 0x3f80, "1.0 is exact"},
        {0x3f808000u, 0x3f80, "1 + 2^-8, a tie, goes to the even 1.0"},
        {0x3f818000u, 0x3f82, "a tie above an odd bf16 goes up to even"},
        {0x3f808001u, 0x3f81, "just above a tie rounds up"},
        {0x3f807fffu, 0x3f80, "just below a tie rounds down"},
        {0xbf818000u, 0xbf82, "negative ties as positive ones"},
        {0x7f800000u, 0x7f80, "+inf"},
        {0xff800000u, 0xff80, "-inf"},
        {0x7f7fffffu, 0x7f80, "FLT_MAX rounds to +inf"},
        {0x7f7f7fffu, 0x7f7f, "the largest value that stays finite"},
        {0x00000000u, 0x0000, "+0"},
        {0x80000000u, 0x8000, "-0"},
        {0x00000001u, 0x0000, "the smallest denormal rounds to 0"},
        {0x00008000u, 0x0000, "a denormal tie goes to even 0"},
        {0x00018000u, 0x0002, "a denormal tie above odd goes up"},
        {0x00010000u, 0x0001, "the smallest bf16 denormal is kept"},
        {0x807fffffu, 0x8080, "the largest negative denormal rounds to -FLT_MIN"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = clv_bf16_from_float(float_of(cases[i].in));
        cr_expect_eq(got, cases[i].out, "%s: 0x%08x -> 0x%04x, expected 0x%04x", cases[i].what, cases[i].in, got,
                     cases[i].out);
    }
    /* NaN stays NaN, also a signaling one whose payload lies in the low bits (truncation would make inf) */
    uint32_t nans[] = {0x7fc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        float back = clv_bf16_to_float(clv_bf16_from_float(float_of(nans[i])));
        cr_expect(isnan(back), "0x%08x must stay NaN", nans[i]);
        cr_expect_eq(bits_of(back) >> 31, nans[i] >> 31, "0x%08x keeps its sign", nans[i]);
    }
    cr_expect_eq(bits_of(clv_bf16_to_float(0x3f82)), 0x3f820000u);
}

Test(bf16, bulk_conversion_equals_the_scalar_one)
{
    enum { N = 100003 }; /* over the threshold of the parallel loop, odd for the vector tail */
    float *x = malloc(N * sizeof *x), *back = malloc(N * sizeof *back);
    clv_bf16 *h = malloc(N * sizeof *h);
    uint64_t key = clv_rng_key(7, 0, 0, 0);
    for (int i = 0; i < N; i++)
        x[i] = clv_rng_normal(key, (uint64_t)i) * ldexpf(1.0f, (i % 60) - 30);
    x[5] = NAN;
    x[6] = INFINITY;
    clv_bf16_from_floats(h, x, N);
    clv_bf16_to_floats(back, h, N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(h[i], clv_bf16_from_float(x[i]), "element %d", i);
        cr_assert_eq(bits_of(back[i]), (uint32_t)h[i] << 16, "element %d", i);
        if (isfinite(x[i]))
            cr_assert_leq(fabsf(back[i] - x[i]), ldexpf(fabsf(x[i]), -8), "element %d: within half a bf16 ulp", i);
    }
    free(x);
    free(back);
    free(h);
}

/* ---- GEMM ---- */

static float *random_floats(int64_t n, uint64_t seed)
{
    float *v = malloc((size_t)n * sizeof *v);
    uint64_t key = clv_rng_key(seed, 1, 0, 0);
    for (int64_t i = 0; i < n; i++)
        v[i] = clv_rng_normal(key, (uint64_t)i);
    return v;
}

/* Every transpose, padded strides, alpha and beta: clv_gemm_bf16 and
 * clv_compute_gemm against clv_gemm on the bf16-rounded inputs. Products of
 * two bf16 values are exact in fp32, so only the order of the fp32 sums
 * differs: within 1e-5 of sum |a_ik b_kj| (K <= 200: a few ulps of the sum). */
static void gemm_against_fp32(int emulate)
{
    clv_err err = {{0}};
    clv_compute *c = clv_compute_create(CLV_PRECISION_BF16, emulate, &err);
    cr_assert(c, "%s", err.msg);
    if (emulate)
        cr_expect_eq(clv_compute_bf16_native(c), 0, "emulate never uses oneDNN's bf16 matmul");
    /* {64, 48, 16}, {130, 70, 1} and {260, 40, 70}: B no larger than A, as a weight layer's, so
     * on oneDNN B goes to the matmul's own (padded, blocked) layout */
    const int64_t shapes[][3] = {{37, 29, 200}, {64, 48, 16}, {1, 5, 3}, {130, 70, 1}, {260, 40, 70}};
    const float alphas[] = {1.0f, 0.5f}, betas[] = {0.0f, 1.0f, 0.75f};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int ai = 0; ai < 2; ai++)
                    for (int bi = 0; bi < 3; bi++) {
                        const int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                        const int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
                        const int64_t lda = ac + 3, ldb = bc + 5, ldc = N + 2; /* padded rows */
                        float *A = random_floats(ar * lda, 1 + s), *B = random_floats(br * ldb, 2 + s);
                        float *C0 = random_floats(M * ldc, 3 + s);
                        float *Ar = malloc((size_t)(ar * lda) * sizeof *Ar), *Br = malloc((size_t)(br * ldb) * sizeof *Br);
                        float *absA = malloc((size_t)(ar * lda) * sizeof *absA), *absB = malloc((size_t)(br * ldb) * sizeof *absB);
                        clv_bf16 *Ah = malloc((size_t)(ar * lda) * sizeof *Ah), *Bh = malloc((size_t)(br * ldb) * sizeof *Bh);
                        clv_bf16_from_floats(Ah, A, (size_t)(ar * lda));
                        clv_bf16_from_floats(Bh, B, (size_t)(br * ldb));
                        clv_bf16_to_floats(Ar, Ah, (size_t)(ar * lda));
                        clv_bf16_to_floats(Br, Bh, (size_t)(br * ldb));
                        for (int64_t i = 0; i < ar * lda; i++)
                            absA[i] = fabsf(Ar[i]);
                        for (int64_t i = 0; i < br * ldb; i++)
                            absB[i] = fabsf(Br[i]);
                        float *ref = malloc((size_t)(M * ldc) * sizeof *ref), *mag = calloc((size_t)(M * ldc), sizeof *mag);
                        float *got = malloc((size_t)(M * ldc) * sizeof *got), *got2 = malloc((size_t)(M * ldc) * sizeof *got2);
                        memcpy(ref, C0, (size_t)(M * ldc) * sizeof *ref);
                        memcpy(got, C0, (size_t)(M * ldc) * sizeof *got);
                        memcpy(got2, C0, (size_t)(M * ldc) * sizeof *got2);
                        const float al = alphas[ai], be = betas[bi];
                        clv_gemm(ta, tb, M, N, K, al, Ar, lda, Br, ldb, be, ref, ldc);
                        clv_gemm(ta, tb, M, N, K, 1.0f, absA, lda, absB, ldb, 0.0f, mag, ldc);
                        cr_assert_eq(clv_gemm_bf16(c, ta, tb, M, N, K, al, Ah, lda, Bh, ldb, be, got, ldc, &err), 0,
                                     "%s", err.msg);
                        cr_assert_eq(clv_compute_gemm(c, ta, tb, M, N, K, al, A, lda, B, ldb, be, got2, ldc, &err), 0,
                                     "%s", err.msg);
                        for (int64_t i = 0; i < M; i++)
                            for (int64_t j = 0; j < ldc; j++) {
                                const int64_t at = i * ldc + j;
                                if (j >= N) { /* the padding is never written */
                                    cr_assert_eq(bits_of(got[at]), bits_of(C0[at]));
                                    cr_assert_eq(bits_of(got2[at]), bits_of(C0[at]));
                                    continue;
                                }
                                const double tol = 1e-5 * (fabsf(al) * mag[at] + fabsf(be * C0[at])) + 1e-30;
                                cr_assert_leq(fabs((double)got[at] - ref[at]), tol,
                                              "M%lld N%lld K%lld ta%d tb%d alpha %g beta %g: C[%lld][%lld] %.9g vs %.9g",
                                              (long long)M, (long long)N, (long long)K, ta, tb, al, be, (long long)i,
                                              (long long)j, got[at], ref[at]);
                                cr_assert_leq(fabs((double)got2[at] - ref[at]), tol, "clv_compute_gemm C[%lld][%lld]",
                                              (long long)i, (long long)j);
                            }
                        free(A), free(B), free(C0), free(Ar), free(Br), free(absA), free(absB), free(Ah), free(Bh);
                        free(ref), free(mag), free(got), free(got2);
                    }
    clv_compute_free(c);
}

Test(bf16, gemm_equals_fp32_gemm_on_rounded_inputs) { gemm_against_fp32(0); }
Test(bf16, converting_path_equals_fp32_gemm_on_rounded_inputs) { gemm_against_fp32(1); }

Test(bf16, fp32_context_is_clv_gemm_bit_for_bit)
{
    clv_err err = {{0}};
    clv_compute *c = clv_compute_create(CLV_PRECISION_FP32, 0, &err);
    cr_assert(c);
    float *A = random_floats(40 * 30, 1), *B = random_floats(30 * 20, 2);
    float ref[40 * 20], got[40 * 20], got_null[40 * 20];
    clv_gemm(0, 0, 40, 20, 30, 1.0f, A, 30, B, 20, 0.0f, ref, 20);
    cr_assert_eq(clv_compute_gemm(c, 0, 0, 40, 20, 30, 1.0f, A, 30, B, 20, 0.0f, got, 20, &err), 0);
    cr_assert_eq(clv_compute_gemm(NULL, 0, 0, 40, 20, 30, 1.0f, A, 30, B, 20, 0.0f, got_null, 20, &err), 0);
    cr_expect_eq(memcmp(ref, got, sizeof ref), 0);
    cr_expect_eq(memcmp(ref, got_null, sizeof ref), 0);
    clv_compute_free(c);
    free(A);
    free(B);
}

/* A held dy: the GEMMs that read it give what they give converting it
 * themselves, bit for bit; the column sums done in the same pass are the
 * exact sums to float rounding (in fp32, clv_colsum_add's bit for bit), and
 * the same bits on 1 and 2 threads. */
Test(bf16, held_operand_and_its_column_sums)
{
    clv_err err = {{0}};
    for (int emulate = 0; emulate < 2; emulate++) {
        clv_compute *c = clv_compute_create(CLV_PRECISION_BF16, emulate, &err);
        const int64_t N = 1000, out = 70, in = 40; /* rows: 15 full groups of 64 and a partial one */
        float *dy = random_floats(N * out, 8), *W = random_floats(out * in, 9), *x = random_floats(N * in, 10);
        float sums[70], ref_sums[70];
        for (int j = 0; j < out; j++)
            sums[j] = ref_sums[j] = (float)j; /* accumulated into */
        float *dx0 = calloc((size_t)(N * in), sizeof(float)), *dx1 = calloc((size_t)(N * in), sizeof(float));
        float *dw0 = calloc((size_t)(out * in), sizeof(float)), *dw1 = calloc((size_t)(out * in), sizeof(float));
        cr_assert_eq(clv_compute_gemm(c, 0, 0, N, in, out, 1.0f, dy, out, W, in, 0.0f, dx0, in, &err), 0);
        cr_assert_eq(clv_compute_gemm(c, 1, 0, out, in, N, 1.0f, dy, out, x, in, 0.0f, dw0, in, &err), 0);
        clv_colsum_add(ref_sums, dy, N, out);
        cr_assert_eq(clv_compute_hold(c, dy, N, out, sums, &err), 0, "%s", err.msg);
        cr_assert_eq(clv_compute_gemm(c, 0, 0, N, in, out, 1.0f, dy, out, W, in, 0.0f, dx1, in, &err), 0);
        cr_assert_eq(clv_compute_gemm(c, 1, 0, out, in, N, 1.0f, dy, out, x, in, 0.0f, dw1, in, &err), 0);
        clv_compute_unhold(c);
        double exact[70];
        for (int j = 0; j < out; j++) {
            exact[j] = j;
            for (int64_t n = 0; n < N; n++)
                exact[j] += dy[n * out + j];
            cr_expect_leq(fabs(sums[j] - exact[j]), 1e-5 * N, "emulate %d: column %d sums to %g, exactly %g", emulate,
                          j, sums[j], exact[j]);
        }
        if (emulate) /* no bf16 context in use: clv_colsum_add itself */
            cr_expect_eq(memcmp(sums, ref_sums, sizeof sums), 0, "converting path: clv_colsum_add's sums");
        float sums1[70] = {0}, sums2[70] = {0};
        const int threads = omp_get_max_threads();
        omp_set_num_threads(1);
        cr_assert_eq(clv_compute_hold(c, dy, N, out, sums1, &err), 0);
        omp_set_num_threads(2);
        cr_assert_eq(clv_compute_hold(c, dy, N, out, sums2, &err), 0);
        omp_set_num_threads(threads);
        clv_compute_unhold(c);
        cr_expect_eq(memcmp(sums1, sums2, sizeof sums1), 0, "emulate %d: sums differ on 1 and 2 threads", emulate);
        /* the scaled hold: ds and dsum as clv_scale_columns_backward's to rounding, dx the same */
        float *z = random_floats(N * out, 11), sdiv[70], ds[70], dsum[70], ref_ds[70], ref_dsum[70];
        for (int j = 0; j < out; j++)
            sdiv[j] = 0.5f + (float)j / 16;
        clv_scale_columns_backward(ref_ds, ref_dsum, dy, z, sdiv, N, out);
        cr_assert_eq(clv_compute_hold_scaled(c, dy, z, sdiv, N, out, ds, dsum, &err), 0, "%s", err.msg);
        memset(dx1, 0, (size_t)(N * in) * sizeof(float));
        cr_assert_eq(clv_compute_gemm(c, 0, 0, N, in, out, 1.0f, dy, out, W, in, 0.0f, dx1, in, &err), 0);
        clv_compute_unhold(c);
        for (int j = 0; j < out; j++) {
            cr_expect_float_eq(ds[j], ref_ds[j], 1e-5f * N, "emulate %d: ds[%d]", emulate, j);
            cr_expect_float_eq(dsum[j], ref_dsum[j], 1e-5f * N, "emulate %d: dsum[%d]", emulate, j);
        }
        cr_expect_eq(memcmp(dx0, dx1, (size_t)(N * in) * sizeof(float)), 0, "emulate %d: dx after a scaled hold",
                     emulate);
        free(z);
        cr_expect_eq(memcmp(dx0, dx1, (size_t)(N * in) * sizeof(float)), 0, "emulate %d: dx", emulate);
        cr_expect_eq(memcmp(dw0, dw1, (size_t)(out * in) * sizeof(float)), 0, "emulate %d: dW", emulate);
        free(dy), free(W), free(x), free(dx0), free(dx1), free(dw0), free(dw1);
        clv_compute_free(c);
    }
}

/* ---- bf16 copies written by their producers (clv_compute_shadow) ---- */

static void bf16_of(clv_bf16 *h, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        h[i] = clv_bf16_from_float(x[i]);
}

/* The norms, the epilogue and GELU write the bf16 copy of exactly the floats they write in fp32,
 * and the same fp32 floats as their fp32-only forms, with or without the fp32 output. */
Test(bf16, producers_write_the_bf16_of_their_fp32_output)
{
    const int64_t N = 37, C = 24, n = N * C;
    float *x = random_floats(n, 21), *w = random_floats(C, 22), *b = random_floats(C, 23);
    float *y0 = malloc(n * sizeof(float)), *y1 = malloc(n * sizeof(float)), m0[37], r0[37], m1[37], r1[37];
    clv_bf16 *h = malloc(n * sizeof(clv_bf16)), *h2 = malloc(n * sizeof(clv_bf16)), *ref = malloc(n * sizeof(clv_bf16));
    clv_layernorm_forward(y0, m0, r0, x, w, b, N, C, 1e-6f);
    clv_layernorm_forward_bf16(y1, h, m1, r1, x, w, b, N, C, 1e-6f);
    clv_layernorm_forward_bf16(NULL, h2, m1, r1, x, w, b, N, C, 1e-6f);
    bf16_of(ref, y0, n);
    cr_expect_eq(memcmp(y0, y1, n * sizeof(float)), 0, "layernorm: fp32 output");
    cr_expect_eq(memcmp(m0, m1, sizeof m0) | memcmp(r0, r1, sizeof r0), 0, "layernorm: statistics");
    cr_expect_eq(memcmp(h, ref, n * sizeof(clv_bf16)), 0, "layernorm: bf16 copy");
    cr_expect_eq(memcmp(h2, ref, n * sizeof(clv_bf16)), 0, "layernorm: bf16 only");
    /* epilogue: bias, residual, GELU */
    float *res = random_floats(n, 24), *g0 = malloc(n * sizeof(float)), *g1 = malloc(n * sizeof(float));
    memcpy(y0, x, n * sizeof(float));
    memcpy(y1, x, n * sizeof(float));
    clv_linear_epilogue(y0, NULL, b, NULL, res, g0, N, C);
    clv_linear_epilogue_bf16(y1, NULL, b, NULL, res, g1, h, N, C);
    bf16_of(ref, g0, n);
    cr_expect_eq(memcmp(y0, y1, n * sizeof(float)) | memcmp(g0, g1, n * sizeof(float)), 0, "epilogue: fp32 outputs");
    cr_expect_eq(memcmp(h, ref, n * sizeof(clv_bf16)), 0, "epilogue: GELU's bf16 copy");
    memcpy(y1, x, n * sizeof(float));
    clv_linear_epilogue_bf16(y1, NULL, b, NULL, res, NULL, h2, N, C);
    cr_expect_eq(memcmp(h2, ref, n * sizeof(clv_bf16)), 0, "epilogue: GELU in bf16 only");
    /* GELU with its derivative, also in place over the input */
    float *d0 = malloc(n * sizeof(float)), *d1 = malloc(n * sizeof(float));
    clv_gelu_forward_grad(g0, d0, x, n);
    bf16_of(ref, g0, n);
    clv_gelu_forward_grad_bf16(g1, h, d1, x, n);
    cr_expect_eq(memcmp(g0, g1, n * sizeof(float)) | memcmp(d0, d1, n * sizeof(float)), 0, "GELU: fp32 outputs");
    cr_expect_eq(memcmp(h, ref, n * sizeof(clv_bf16)), 0, "GELU: bf16 copy");
    memcpy(d1, x, n * sizeof(float));
    clv_gelu_forward_grad_bf16(NULL, h2, d1, d1, n);
    cr_expect_eq(memcmp(d0, d1, n * sizeof(float)), 0, "GELU in place: derivative");
    cr_expect_eq(memcmp(h2, ref, n * sizeof(clv_bf16)), 0, "GELU in place: bf16 copy");
    free(x), free(w), free(b), free(y0), free(y1), free(h), free(h2), free(ref), free(res), free(g0), free(g1);
    free(d0), free(d1);
}

/* A GEMM reads the registered copy instead of converting X, until unshadowed; without
 * oneDNN's bf16 (the converting path) there is no copy to write. */
Test(bf16, gemm_reads_the_shadow_until_unshadowed)
{
    clv_err err = {{0}};
    clv_compute *c = clv_compute_create(CLV_PRECISION_BF16, 0, &err);
    const int64_t M = 50, K = 30, N = 20;
    float *x = random_floats(M * K, 31), *W = random_floats(N * K, 32), *y0 = malloc(M * N * sizeof(float)),
          *y1 = malloc(M * N * sizeof(float));
    clv_bf16 *h;
    cr_assert_eq(clv_compute_shadow(c, 1, x, M, K, &h, &err), 0, "%s", err.msg);
    if (!clv_compute_bf16_onednn(c)) {
        cr_expect_null(h, "no bf16 matmul here: producers write fp32 only");
    } else {
        cr_assert_not_null(h);
        bf16_of(h, x, M * K);
        cr_assert_eq(clv_compute_gemm(c, 0, 1, M, N, K, 1.0f, x, K, W, K, 0.0f, y0, N, &err), 0);
        float *x2 = random_floats(M * K, 33); /* x changes; the copy still says the old x */
        memcpy(x, x2, M * K * sizeof(float));
        cr_assert_eq(clv_compute_gemm(c, 0, 1, M, N, K, 1.0f, x, K, W, K, 0.0f, y1, N, &err), 0);
        cr_expect_eq(memcmp(y0, y1, M * N * sizeof(float)), 0, "the GEMM read the shadow");
        clv_compute_unshadow(c, 1);
        cr_assert_eq(clv_compute_gemm(c, 0, 1, M, N, K, 1.0f, x, K, W, K, 0.0f, y1, N, &err), 0);
        cr_expect_neq(memcmp(y0, y1, M * N * sizeof(float)), 0, "after unshadow the GEMM converts x again");
        free(x2);
    }
    /* the bias inside the matmul: the GEMM's output plus the bias */
    float bias[20];
    for (int j = 0; j < N; j++)
        bias[j] = (float)j - 7.5f;
    cr_assert_eq(clv_compute_gemm(c, 0, 1, M, N, K, 1.0f, x, K, W, K, 0.0f, y0, N, &err), 0);
    float *res = random_floats(M * N, 34);
    cr_assert_eq(clv_compute_gemm_bias(c, M, N, K, x, K, W, K, bias, NULL, y1, N, &err), 0, "%s", err.msg);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++)
            cr_expect_float_eq(y1[i * N + j], y0[i * N + j] + bias[j], 1e-5f, "(%lld, %lld)", (long long)i,
                               (long long)j);
    /* and the residual, added after the bias as the epilogue adds it */
    cr_assert_eq(clv_compute_gemm_bias(c, M, N, K, x, K, W, K, bias, res, y1, N, &err), 0, "%s", err.msg);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++)
            cr_expect_float_eq(y1[i * N + j], (y0[i * N + j] + bias[j]) + res[i * N + j], 1e-5f, "(%lld, %lld)",
                               (long long)i, (long long)j);
    free(res);
    free(x), free(W), free(y0), free(y1);
    clv_compute_free(c);
}

/* fc1's forward with bias and GELU inside oneDNN's matmul, bf16 out: the bf16 of GELU(x W^T + b)
 * as the epilogue forms it, to a bf16 rounding (2^-8 relative) or, in the negative tail, 1e-5
 * absolute: both erfs are accurate in absolute terms only (measured: oneDNN's and ours differ by
 * 1e-7..1e-6 where GELU is 1e-6..1e-4, so 6% of these elements round differently). Refused
 * without bf16 on oneDNN. */
Test(bf16, gemm_with_gelu_is_the_epilogues_gelu_to_a_rounding)
{
    clv_err err = {{0}};
    clv_compute *c = clv_compute_create(CLV_PRECISION_BF16, 0, &err);
    const int64_t M = 130, K = 48, N = 72;
    float *x = random_floats(M * K, 51), *W = random_floats(N * K, 52), *b = random_floats(N, 53);
    float *y = malloc(M * N * sizeof(float)), *g = malloc(M * N * sizeof(float));
    clv_bf16 *h = malloc(M * N * sizeof(clv_bf16));
    if (!clv_compute_bf16_onednn(c)) {
        cr_expect_neq(clv_compute_gemm_bias_gelu(c, M, N, K, x, K, W, K, b, h, &err), 0, "refused");
    } else {
        cr_assert_eq(clv_compute_gemm_bias_gelu(c, M, N, K, x, K, W, K, b, h, &err), 0, "%s", err.msg);
        cr_assert_eq(clv_compute_gemm_bias(c, M, N, K, x, K, W, K, b, NULL, y, N, &err), 0, "%s", err.msg);
        clv_linear_epilogue(y, NULL, NULL, NULL, NULL, g, M, N);
        for (int64_t i = 0; i < M * N; i++) {
            const float got = clv_bf16_to_float(h[i]);
            cr_expect_leq(fabsf(got - g[i]), fabsf(g[i]) * (1.0f / 256) + 1e-5f, "element %lld: %g, not %g (of %g)",
                          (long long)i, got, g[i], y[i]);
        }
    }
    free(x), free(W), free(b), free(y), free(g), free(h);
    clv_compute_free(c);
}

/* GELU's fused backward: the shadows of g and dh and dh's column sums, bit for bit those of
 * clv_gelu_forward_grad, the product and clv_compute_hold in turn (fewer passes, the same floats),
 * and the same on 1 and 2 threads. */
Test(bf16, fused_gelu_backward_equals_its_passes)
{
    clv_err err = {{0}};
    clv_compute *c = clv_compute_create(CLV_PRECISION_BF16, 0, &err);
    if (!clv_compute_bf16_onednn(c)) {
        cr_expect_neq(clv_compute_gelu_backward(c, 1, NULL, 2, NULL, NULL, NULL, 1, 1, NULL, &err), 0,
                      "refused without oneDNN's bf16");
        clv_compute_free(c);
        return;
    }
    const int64_t R = 200, H = 48, n = R * H, in = 16;
    float *hin = random_floats(n, 41), *dg = random_floats(n, 42), *g = malloc(n * sizeof(float)),
          *gp = malloc(n * sizeof(float)), *W = random_floats(H * in, 43);
    float sums[48] = {0}, ref_sums[48] = {0}, sums2[48] = {0};
    clv_gelu_forward_grad(g, gp, hin, n);
    clv_mul_forward(gp, dg, gp, n);
    clv_bf16 *gref = malloc(n * sizeof(clv_bf16)), *dref = malloc(n * sizeof(clv_bf16));
    bf16_of(gref, g, n);
    bf16_of(dref, gp, n);
    cr_assert_eq(clv_compute_hold(c, gp, R, H, ref_sums, &err), 0);
    clv_compute_unhold(c);
    /* the shadows, read through GEMMs (dh W, g W) against the same GEMMs on the references; the
     * fp32 arrays under the keys hold NaN, so a GEMM that converted them would show it */
    float *ya = malloc(R * in * sizeof(float)), *yb = malloc(R * in * sizeof(float));
    float *dd = malloc(n * sizeof(float)), *gg = malloc(n * sizeof(float)); /* keys with garbage in fp32 */
    for (int64_t i = 0; i < n; i++)
        dd[i] = gg[i] = NAN;
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    cr_assert_eq(clv_compute_gelu_backward(c, 1, gg, 2, dd, hin, dg, R, H, sums2, &err), 0, "%s", err.msg);
    omp_set_num_threads(2);
    cr_assert_eq(clv_compute_gelu_backward(c, 1, gg, 2, dd, hin, dg, R, H, sums, &err), 0, "%s", err.msg);
    omp_set_num_threads(threads);
    cr_expect_eq(memcmp(sums, ref_sums, sizeof sums), 0, "column sums as clv_compute_hold's");
    cr_expect_eq(memcmp(sums, sums2, sizeof sums), 0, "column sums on 1 and 2 threads");
    clv_bf16 *Wh = malloc(H * in * sizeof(clv_bf16));
    bf16_of(Wh, W, H * in);
    cr_assert_eq(clv_gemm_bf16(c, 0, 0, R, in, H, 1.0f, dref, H, Wh, in, 0.0f, ya, in, &err), 0);
    cr_assert_eq(clv_compute_gemm(c, 0, 0, R, in, H, 1.0f, dd, H, W, in, 0.0f, yb, in, &err), 0);
    cr_expect_eq(memcmp(ya, yb, R * in * sizeof(float)), 0, "dh's shadow is bf16(dg GELU'(h))");
    cr_assert_eq(clv_gemm_bf16(c, 0, 0, R, in, H, 1.0f, gref, H, Wh, in, 0.0f, ya, in, &err), 0);
    cr_assert_eq(clv_compute_gemm(c, 0, 0, R, in, H, 1.0f, gg, H, W, in, 0.0f, yb, in, &err), 0);
    cr_expect_eq(memcmp(ya, yb, R * in * sizeof(float)), 0, "g's shadow is bf16(GELU(h))");
    clv_compute_unshadow(c, 1);
    clv_compute_unshadow(c, 2);
    free(hin), free(dg), free(g), free(gp), free(W), free(gref), free(dref), free(ya), free(yb), free(dd), free(gg);
    free(Wh);
    clv_compute_free(c);
}

/* max |a - b| over max |b|: a relative error that does not blow up where b is near 0 */
static double rel_max_diff(const float *a, const float *b, int64_t n)
{
    double d = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return d / (m + 1e-30);
}

/* The attention's products in bf16 against the fp32 kernels on the same bf16-rounded qkv: the
 * probabilities differ only by the order of the fp32 sums of exact products; the output and the
 * gradients by the rounding of the probabilities, dout and dS to bf16 (2^-9 relative each). */
Test(bf16, attention_products_in_bf16_near_fp32)
{
    clv_err err = {{0}};
    clv_compute *c = clv_compute_create(CLV_PRECISION_BF16, 0, &err);
    cr_assert(c, "%s", err.msg);
    const int64_t B = 3, T = 17, C = 48, H = 3, n_qkv = B * T * 3 * C, n_out = B * T * C, n_att = B * H * T * T;
    float *qkv = random_floats(n_qkv, 21), *dout = random_floats(n_out, 22);
    clv_bf16 *qkvh = malloc((size_t)n_qkv * sizeof *qkvh), *outh = malloc((size_t)n_out * sizeof *outh);
    clv_bf16 *outh2 = malloc((size_t)n_out * sizeof *outh2), *ref_h = malloc((size_t)n_out * sizeof *ref_h);
    float *att = malloc((size_t)n_att * sizeof *att), *att_ref = malloc((size_t)n_att * sizeof *att_ref);
    float *out = malloc((size_t)n_out * sizeof *out), *out_ref = malloc((size_t)n_out * sizeof *out_ref);
    float *out2 = malloc((size_t)n_out * sizeof *out2), *dqkv = malloc((size_t)n_qkv * sizeof *dqkv);
    float *dqkv_ref = malloc((size_t)n_qkv * sizeof *dqkv_ref);
    float *scratch = malloc((size_t)clv_attention_scratch_floats(B, T, C, H) * sizeof *scratch);
    clv_bf16_from_floats(qkvh, qkv, (size_t)n_qkv);
    clv_bf16_to_floats(qkv, qkvh, (size_t)n_qkv); /* the fp32 kernels get the same, rounded, inputs */
    if (!clv_compute_bf16_onednn(c)) { /* the converting path has no batched product */
        cr_expect_eq(clv_attention_forward_bf16(c, out, NULL, att, qkvh, B, T, C, H, &err), -1);
        cr_expect(strstr(err.msg, "oneDNN") != NULL, "%s", err.msg);
    } else {
        clv_attention_forward(out_ref, att_ref, qkv, B, T, C, H, scratch);
        clv_attention_backward(dqkv_ref, dout, qkv, att_ref, B, T, C, H, scratch);
        cr_assert_eq(clv_attention_forward_bf16(c, out, outh, att, qkvh, B, T, C, H, &err), 0, "%s", err.msg);
        cr_expect_leq(rel_max_diff(att, att_ref, n_att), 1e-5, "probabilities");
        cr_expect_leq(rel_max_diff(out, out_ref, n_out), 1e-2, "output");
        bf16_of(ref_h, out, n_out);
        cr_expect_eq(memcmp(outh, ref_h, (size_t)n_out * sizeof *outh), 0, "the output's bf16 copy");
        /* the output again: the same floats; in bf16 alone, the same values to a rounding */
        cr_assert_eq(clv_attention_output_bf16(c, out2, NULL, att, qkvh, B, T, C, H, &err), 0, "%s", err.msg);
        cr_expect_eq(memcmp(out, out2, (size_t)n_out * sizeof *out), 0, "the output again");
        cr_assert_eq(clv_attention_output_bf16(c, NULL, outh2, att, qkvh, B, T, C, H, &err), 0, "%s", err.msg);
        for (int64_t i = 0; i < n_out; i++)
            cr_assert_leq(fabsf(clv_bf16_to_float(outh2[i]) - out[i]), ldexpf(fabsf(out[i]), -8) + 1e-30f,
                          "the output in bf16 alone, element %lld", (long long)i);
        cr_assert_eq(clv_attention_backward_bf16(c, dqkv, dout, qkvh, att, B, T, C, H, &err), 0, "%s", err.msg);
        for (int part = 0; part < 3; part++) { /* q, k, v: each against its own scale */
            float *a = malloc((size_t)n_out * sizeof *a), *b = malloc((size_t)n_out * sizeof *b);
            for (int64_t r = 0; r < B * T; r++)
                for (int64_t j = 0; j < C; j++) {
                    a[r * C + j] = dqkv[r * 3 * C + part * C + j];
                    b[r * C + j] = dqkv_ref[r * 3 * C + part * C + j];
                }
            cr_expect_leq(rel_max_diff(a, b, n_out), 2e-2, "gradient of %c", "qkv"[part]);
            free(a), free(b);
        }
    }
    free(qkv), free(dout), free(qkvh), free(outh), free(outh2), free(ref_h), free(att), free(att_ref), free(out);
    free(out_ref), free(out2), free(dqkv), free(dqkv_ref), free(scratch);
    clv_compute_free(c);
}

Test(bf16, precision_names_parse_and_refuse)
{
    clv_precision p;
    clv_err err = {{0}};
    cr_expect_eq(clv_precision_parse("bf16", &p, &err), 0);
    cr_expect_eq(p, CLV_PRECISION_BF16);
    cr_expect_str_eq(clv_precision_name(p), "bf16");
    cr_expect_eq(clv_precision_parse("fp16", &p, &err), -1);
    cr_expect(strstr(err.msg, "'fp16'") && strstr(err.msg, "fp32|bf16"), "%s", err.msg);
    char buf[192];
    cr_expect(strstr(clv_bf16_support(buf, sizeof buf), "native") || strstr(buf, "emulated"), "%s", buf);
}

/* ---- backbones ---- */

typedef struct {
    float *feats;
    float **grads;
    int n;
} pass;

/* features and every parameter's gradient of one training forward/backward */
static pass run_model_via(const char *name, int via_bf16, clv_precision p, int emulate)
{
    clv_err err = {{0}};
    clv_model *m = clv_model_create(name, &err);
    cr_assert(m, "%s", err.msg);
    m->ops->init(m, 11);
    for (int i = 0; i < m->params.count; i++)
        cr_assert_eq(clv_param_set_trainable(m->params.items[i], 1, &err), 0, "%s", err.msg);
    clv_params_zero_grad(&m->params);
    if (via_bf16)
        cr_assert_eq(clv_model_set_precision(m, CLV_PRECISION_BF16, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_model_set_precision(m, p, emulate, &err), 0, "%s", err.msg);
    if (p == CLV_PRECISION_FP32) {
        cr_assert_null(m->compute, "fp32 needs no context: plain clv_gemm");
        for (int i = 0; i < m->n_wlayers; i++)
            cr_assert_null(m->wlayers[i]->compute);
    }
    const int64_t B = 6, img = (int64_t)m->info.in_chans * m->info.img_size * m->info.img_size;
    float *x = random_floats(B * img, 5), *df = random_floats(B * m->info.feat_dim, 6);
    pass r = {malloc((size_t)(B * m->info.feat_dim) * sizeof(float)), calloc((size_t)m->params.count, sizeof(float *)),
              m->params.count};
    cr_assert_eq(m->ops->forward(m, x, B, r.feats, &err), 0, "%s", err.msg);
    cr_assert_eq(m->ops->backward(m, df, NULL, &err), 0, "%s", err.msg);
    for (int i = 0; i < m->params.count; i++) {
        clv_param *q = m->params.items[i];
        if (!q->grad)
            continue;
        r.grads[i] = malloc((size_t)q->numel * sizeof(float));
        memcpy(r.grads[i], q->grad, (size_t)q->numel * sizeof(float));
    }
    free(x);
    free(df);
    clv_model_free(m);
    return r;
}

static pass run_model(const char *name, clv_precision p, int emulate) { return run_model_via(name, 0, p, emulate); }

static double rel_norm_diff(const float *a, const float *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)b[i] * b[i];
    }
    return s > 0 ? sqrt(d / s) : sqrt(d);
}

static void pass_free(pass *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->grads[i]);
    free(p->grads);
    free(p->feats);
}

/* bf16 against fp32, tensor by tensor as ||a - b|| / ||b||. Each GEMM input
 * carries a relative rounding error of at most 2^-9 (8 significant bits), so
 * one product is off by about 2^-9 sqrt(2) ~ 3e-3 of its norm; the nano
 * backbones chain 8-12 of them forward and as many backward, partly damped by
 * the norms: features within 2e-2 (measured 3-5e-3). The ViT's and Swin's
 * gradients (GELU, smooth) within 3e-2 (measured 6e-3). ResNet's gradients at
 * init are ill-conditioned in fp32 already: perturbing the input by 1e-4
 * (relative) moves them by 3%, by 1e-3 by 10% (ReLU kinks flipping; measured),
 * so bf16's 4e-3 moves them by up to ~0.3 (measured 0.12-0.29): within 0.5,
 * which still catches a wrong transpose or a lost accumulation (errors of
 * order 1). The error must also exceed 1e-5: bf16 is really in use. The
 * converting path and oneDNN differ in summation order only, which flips a
 * few bf16 roundings downstream: within the same bounds (measured 1.4e-3 ViT). */
typedef struct {
    const char *name;
    double feats, grads;
} tolerance;

static void backbone_in_bf16(tolerance tol)
{
    const char *name = tol.name;
    clv_err err = {{0}};
    clv_model *m = clv_model_create(name, &err);
    cr_assert(m, "%s", err.msg);
    const int64_t nf = 6 * m->info.feat_dim;
    clv_model_free(m);
    pass f32 = run_model(name, CLV_PRECISION_FP32, 0), b16 = run_model(name, CLV_PRECISION_BF16, 0),
         emu = run_model(name, CLV_PRECISION_BF16, 1);
    double e = rel_norm_diff(b16.feats, f32.feats, nf);
    cr_expect_leq(e, tol.feats, "%s: bf16 features %.3g off fp32", name, e);
    cr_expect_gt(e, 1e-5, "%s: bf16 features equal fp32's (%.3g): bf16 not in use", name, e);
    cr_expect_leq(rel_norm_diff(emu.feats, b16.feats, nf), tol.feats, "%s: converting path vs oneDNN", name);
    m = clv_model_create(name, &err);
    double worst = 0;
    for (int i = 0; i < f32.n; i++) {
        if (!f32.grads[i])
            continue;
        const int64_t n = m->params.items[i]->numel;
        double g = rel_norm_diff(b16.grads[i], f32.grads[i], n);
        worst = g > worst ? g : worst;
        cr_expect_leq(g, tol.grads, "%s: bf16 gradient of %s %.3g off fp32", name, m->params.items[i]->name, g);
        double ge = rel_norm_diff(emu.grads[i], b16.grads[i], n);
        cr_expect_leq(ge, tol.grads, "%s: gradient of %s, converting path vs oneDNN %.3g", name, m->params.items[i]->name,
                      ge);
    }
    cr_log_info("%s: bf16 vs fp32 features %.2g, worst gradient %.2g", name, e, worst);
    clv_model_free(m);
    pass_free(&f32);
    pass_free(&b16);
    pass_free(&emu);
}

/* An inference forward's features (m->training 0) of vit_nano_patch4_32 in the given precision:
 * in bf16 its blocks run the attention's products in bf16 on the qkv layer's bf16 output */
static float *infer_features(clv_precision p, int64_t B)
{
    clv_err err = {{0}};
    clv_model *m = clv_model_create("vit_nano_patch4_32", &err);
    cr_assert(m, "%s", err.msg);
    m->ops->init(m, 11);
    cr_assert_eq(clv_model_set_precision(m, p, 0, &err), 0, "%s", err.msg);
    const int64_t img = (int64_t)m->info.in_chans * m->info.img_size * m->info.img_size;
    float *x = random_floats(B * img, 5), *f = malloc((size_t)(B * m->info.feat_dim) * sizeof *f);
    m->training = 0;
    cr_assert_eq(m->ops->forward(m, x, B, f, &err), 0, "%s", err.msg);
    free(x);
    clv_model_free(m);
    return f;
}

/* Inference in bf16 (bf16 attention products) against fp32, to the training forward's bound; and,
 * on oneDNN's bf16, not the training forward's features (fp32 attention): the bf16 core is in use */
Test(bf16, vit_inference_features_near_fp32)
{
    const int64_t B = 6;
    float *f32 = infer_features(CLV_PRECISION_FP32, B), *b16 = infer_features(CLV_PRECISION_BF16, B);
    pass train = run_model("vit_nano_patch4_32", CLV_PRECISION_BF16, 0);
    clv_err err = {{0}};
    clv_model *m = clv_model_create("vit_nano_patch4_32", &err);
    const int64_t nf = B * m->info.feat_dim;
    clv_model_free(m);
    const double e = rel_norm_diff(b16, f32, nf);
    cr_expect_leq(e, 2e-2, "bf16 inference features %.3g off fp32", e);
    clv_compute *c = clv_compute_create(CLV_PRECISION_BF16, 0, &err);
    if (clv_compute_bf16_onednn(c)) /* else (AVX2) the fp32 core runs in both */
        cr_expect_gt(rel_norm_diff(b16, train.feats, nf), 1e-6, "bf16 inference equals the fp32 core's features");
    clv_compute_free(c);
    free(f32), free(b16);
    pass_free(&train);
}

/* An inference forward over several row slices (31 images of 65 tokens each, INFER_ROWS) packs
 * each weight for oneDNN once for all of them (clv_compute_fix_weights): the features of the
 * slices run one by one, bit for bit; after a weight changes, the next forward packs it again. */
Test(bf16, inference_slices_share_packed_weights)
{
    clv_err err = {{0}};
    clv_model *m = clv_model_create("vit_nano_patch4_32", &err);
    cr_assert(m, "%s", err.msg);
    m->ops->init(m, 11);
    cr_assert_eq(clv_model_set_precision(m, CLV_PRECISION_BF16, 0, &err), 0, "%s", err.msg);
    const int64_t B = 70, slices[3] = {31, 31, 8}, F = m->info.feat_dim;
    const int64_t img = (int64_t)m->info.in_chans * m->info.img_size * m->info.img_size;
    float *x = random_floats(B * img, 5), *whole[2], *apart = malloc((size_t)(B * F) * sizeof(float));
    clv_param *w = NULL;
    for (int i = 0; i < m->params.count; i++)
        if (!strcmp(m->params.items[i]->name, "blocks.0.attn.qkv.weight"))
            w = m->params.items[i];
    cr_assert_not_null(w);
    m->training = 0;
    for (int round = 0; round < 2; round++) {
        whole[round] = malloc((size_t)(B * F) * sizeof(float));
        cr_assert_eq(m->ops->forward(m, x, B, whole[round], &err), 0, "%s", err.msg);
        for (int64_t s = 0, b0 = 0; s < 3; b0 += slices[s], s++)
            cr_assert_eq(m->ops->forward(m, x + b0 * img, slices[s], apart + b0 * F, &err), 0, "%s", err.msg);
        cr_expect_eq(memcmp(whole[round], apart, (size_t)(B * F) * sizeof(float)), 0,
                     "round %d: the slices' features differ from the whole batch's", round);
        for (int64_t j = 0; j < w->numel; j++) /* the next forward must see this */
            w->data[j] *= 1.5f;
    }
    cr_expect_neq(memcmp(whole[0], whole[1], (size_t)(B * F) * sizeof(float)), 0, "the changed weight went unseen");
    free(x), free(whole[0]), free(whole[1]), free(apart);
    clv_model_free(m);
}

Test(bf16, vit_features_and_gradients_near_fp32) { backbone_in_bf16((tolerance){"vit_nano_patch4_32", 2e-2, 3e-2}); }
Test(bf16, swin_features_and_gradients_near_fp32)
{
    backbone_in_bf16((tolerance){"swin_nano_patch2_window4_32", 2e-2, 3e-2});
}
Test(bf16, resnet_features_and_gradients_near_fp32) { backbone_in_bf16((tolerance){"resnet_nano_cifar", 2e-2, 0.5}); }

Test(bf16, fp32_after_bf16_is_fp32_bit_for_bit)
{
    pass a = run_model("vit_nano_patch4_32", CLV_PRECISION_FP32, 0);
    pass b = run_model_via("vit_nano_patch4_32", 1, CLV_PRECISION_FP32, 0);
    cr_expect_eq(memcmp(a.feats, b.feats, 6 * 64 * sizeof(float)), 0);
    for (int i = 0; i < a.n; i++)
        cr_expect(!a.grads[i] || !memcmp(a.grads[i], b.grads[i], sizeof(float)), "gradient %d", i);
    pass_free(&a);
    pass_free(&b);
}
