/* The attention core's products in bf16 (see clvit/kernels.h): each of the
 * four products of the forward and backward is one batched oneDNN matmul over
 * strided views of qkv, so no (image, head) pair is copied. On an AMD EPYC
 * (Zen 4, 2 threads) a batched 65 x 65 x 64 product over 128 x 3 pairs takes
 * 0.85 ms in bf16 against 2.0 ms for the per-pair fp32 sgemm calls of
 * kernels/attention.c. The softmax, its backward and the probabilities the
 * backward reads stay fp32; only the products' inputs are rounded (the
 * probabilities and dS when they enter a product). */
#include "clvit/kernels.h"
#include "kernels/softmax_row.h"

#include <math.h>

/* The layout of one attention: q, k, v at column offsets 0, C, 2C of qkv
 * (row stride 3C), head h at h hd; probabilities [B H T T]; out [B T C]. */
typedef struct {
    int64_t B, T, C, H, hd, ld;
} geom;

static geom geom_of(int64_t B, int64_t T, int64_t C, int64_t H) { return (geom){B, T, C, H, C / H, 3 * C}; }

/* strides (image, head, row, column) of the views */
static void qkv_view(int64_t s[4], const geom *g) { s[0] = g->T * g->ld, s[1] = g->hd, s[2] = g->ld, s[3] = 1; }
static void qkv_view_t(int64_t s[4], const geom *g) { s[0] = g->T * g->ld, s[1] = g->hd, s[2] = 1, s[3] = g->ld; }
static void att_view(int64_t s[4], const geom *g) { s[0] = g->H * g->T * g->T, s[1] = g->T * g->T, s[2] = g->T, s[3] = 1; }
static void att_view_t(int64_t s[4], const geom *g) { s[0] = g->H * g->T * g->T, s[1] = g->T * g->T, s[2] = 1, s[3] = g->T; }
static void out_view(int64_t s[4], const geom *g) { s[0] = g->T * g->C, s[1] = g->hd, s[2] = g->C, s[3] = 1; }

static clv_bmm_shape shape(const geom *g, int64_t M, int64_t N, int64_t K)
{
    return (clv_bmm_shape){.nb = g->B, .nh = g->H, .M = M, .N = N, .K = K};
}

/* out (fp32 and/or bf16) = Ph V */
static int product_with_v(clv_compute *c, const geom *g, float *out, clv_bf16 *outh, const clv_bf16 *Ph,
                          const clv_bf16 *qkvh, clv_err *err)
{
    clv_bmm_shape s = shape(g, g->T, g->hd, g->T);
    att_view(s.as, g);
    qkv_view(s.bs, g);
    out_view(s.cs, g);
    if (out) {
        if (clv_compute_bmm(c, &s, 1.0f, Ph, qkvh + 2 * g->C, out, 0, err))
            return -1;
        if (outh)
            clv_bf16_from_floats(outh, out, (size_t)(g->B * g->T * g->C));
        return 0;
    }
    return outh ? clv_compute_bmm(c, &s, 1.0f, Ph, qkvh + 2 * g->C, outh, 1, err) : 0;
}

int clv_attention_forward_bf16(clv_compute *c, float *out, clv_bf16 *outh, float *att, const clv_bf16 *qkvh,
                               int64_t B, int64_t T, int64_t C, int64_t H, clv_err *err)
{
    const geom g = geom_of(B, T, C, H);
    const int64_t rows = B * H * T;
    clv_bf16 *Ph = clv_compute_bf16_slot(c, 0, (size_t)(rows * T), err);
    if (!Ph)
        return -1;
    /* scores = scale q k^T (timm scales q first: an ulp apart, as in kernels/attention.c) */
    clv_bmm_shape s = shape(&g, T, T, g.hd);
    qkv_view(s.as, &g);
    qkv_view_t(s.bs, &g);
    att_view(s.cs, &g);
    if (clv_compute_bmm(c, &s, 1.0f / sqrtf((float)g.hd), qkvh, qkvh + C, att, 0, err))
        return -1;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        float *a = att + r * T;
        clv_softmax_row(a, a, T);
        clv_bf16 *restrict p = Ph + r * T;
        for (int64_t t = 0; t < T; t++)
            p[t] = clv_bf16_from_float(a[t]);
    }
    return product_with_v(c, &g, out, outh, Ph, qkvh, err);
}

int clv_attention_output_bf16(clv_compute *c, float *out, clv_bf16 *outh, const float *att, const clv_bf16 *qkvh,
                              int64_t B, int64_t T, int64_t C, int64_t H, clv_err *err)
{
    const geom g = geom_of(B, T, C, H);
    const size_t n = (size_t)(B * H * T * T);
    clv_bf16 *Ph = clv_compute_bf16_slot(c, 0, n, err);
    if (!Ph)
        return -1;
    clv_bf16_from_floats(Ph, att, n); /* the forward's rounding of the same floats */
    return product_with_v(c, &g, out, outh, Ph, qkvh, err);
}

int clv_attention_backward_bf16(clv_compute *c, float *dqkv, const float *dout, const clv_bf16 *qkvh,
                                const float *att, int64_t B, int64_t T, int64_t C, int64_t H, clv_err *err)
{
    const geom g = geom_of(B, T, C, H);
    const int64_t rows = B * H * T;
    const size_t n = (size_t)(rows * T), nout = (size_t)(B * T * C);
    const float scale = 1.0f / sqrtf((float)g.hd);
    /* slot 0: the probabilities, then dS, in bf16; slot 1: dout in bf16; dP in fp32 */
    clv_bf16 *Ph = clv_compute_bf16_slot(c, 0, n, err), *dOh = Ph ? clv_compute_bf16_slot(c, 1, nout, err) : NULL;
    float *dP = dOh ? clv_compute_float_slot(c, 0, n, err) : NULL;
    if (!dP)
        return -1;
    clv_bf16_from_floats(Ph, att, n);
    clv_bf16_from_floats(dOh, dout, nout);
    /* out = P V: dP = dout V^T, dV = P^T dout */
    clv_bmm_shape s = shape(&g, T, T, g.hd);
    out_view(s.as, &g);
    qkv_view_t(s.bs, &g);
    att_view(s.cs, &g);
    if (clv_compute_bmm(c, &s, 1.0f, dOh, qkvh + 2 * C, dP, 0, err))
        return -1;
    s = shape(&g, T, g.hd, T);
    att_view_t(s.as, &g);
    out_view(s.bs, &g);
    qkv_view(s.cs, &g);
    if (clv_compute_bmm(c, &s, 1.0f, Ph, dOh, dqkv + 2 * C, 0, err))
        return -1;
    /* through the row softmax: dS over dP, then dS in bf16 over the spent probabilities' copy */
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        float *d = dP + r * T;
        clv_softmax_row_backward(d, d, att + r * T, T, 0);
        clv_bf16 *restrict h = Ph + r * T;
        for (int64_t t = 0; t < T; t++)
            h[t] = clv_bf16_from_float(d[t]);
    }
    /* S = scale q k^T: dq = scale dS k, dk = scale dS^T q */
    s = shape(&g, T, g.hd, T);
    att_view(s.as, &g);
    qkv_view(s.bs, &g);
    qkv_view(s.cs, &g);
    if (clv_compute_bmm(c, &s, scale, Ph, qkvh + C, dqkv, 0, err))
        return -1;
    att_view_t(s.as, &g);
    return clv_compute_bmm(c, &s, scale, Ph, qkvh, dqkv + C, 0, err);
}
