/* Scaled dot-product self-attention core of timm's Attention, without its
 * qkv and proj linears. One (batch, head) pair is independent of every other,
 * so the loop over pairs is the parallel one and each pair's GEMMs run on a
 * single thread over strided views of qkv (row stride 3C): no copies, and
 * results that do not depend on the thread count.
 *
 * scale = hd^-1/2 keeps the logits' variance near 1 whatever the head width,
 * so the softmax does not saturate. timm scales q before q k^T; we fold the
 * scale into the GEMM's alpha, which rounds differently by at most an ulp. */
#include "clvit/gemm.h"
#include "clvit/kernels.h"
#include "kernels/softmax_row.h"

#include <math.h>
#include <omp.h>

/* The backward runs on at most min(max threads, processors) threads and the
 * scratch holds max(max threads, processors) buffers, so the scratch stays
 * large enough when the thread count is raised after it was sized. */
static int backward_threads(void)
{
    const int t = omp_get_max_threads(), p = omp_get_num_procs();
    return t < p ? t : p;
}

/* A thread's part of the scratch: da, ar (T x T each), then 3 T hd floats */
static float *thread_scratch(float *scratch, int64_t T, int64_t hd)
{
    return scratch + (int64_t)omp_get_thread_num() * (2 * T * T + 3 * T * hd);
}

/* One pair's probabilities a [T x T] = softmax_rows(scale q k^T), q and k in qkv (row stride 3C):
 * the forward's and the backward's recomputation alike, so the same floats */
static void pair_probabilities(float *a, const float *q, int64_t T, int64_t C, int64_t hd, float scale)
{
    clv_gemm(0, 1, T, T, hd, scale, q, 3 * C, q + C, 3 * C, 0.0f, a, T);
    for (int64_t t = 0; t < T; t++)
        clv_softmax_row(a + t * T, a + t * T, T);
}

int64_t clv_attention_scratch_floats(int64_t B, int64_t T, int64_t C, int64_t H)
{
    /* backward: per thread one T x T buffer for dAtt, one for the recomputed probabilities (when
     * att is not kept), and dq, dk, dv of one pair for the bf16 backward */
    const int t = omp_get_max_threads(), p = omp_get_num_procs();
    return (int64_t)(t > p ? t : p) * (2 * T * T + 3 * T * (C / H));
}

void clv_attention_forward(float *out, float *att, const float *qkv, int64_t B, int64_t T, int64_t C, int64_t H,
                           float *scratch)
{
    const int64_t hd = C / H, ld = 3 * C;
    const float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static)
    for (int64_t bh = 0; bh < B * H; bh++) {
        const int64_t b = bh / H, h = bh % H;
        const float *q = qkv + b * T * ld + h * hd;
        const float *v = q + 2 * C;
        float *a = att + bh * T * T;
        pair_probabilities(a, q, T, C, hd, scale);
        clv_gemm(0, 0, T, hd, T, 1.0f, a, T, v, ld, 0.0f, out + b * T * C + h * hd, C);
    }
}

void clv_attention_forward_h(clv_bf16 *outh, float *att, const float *qkv, int64_t B, int64_t T, int64_t C, int64_t H,
                             float *scratch)
{
    const int64_t hd = C / H, ld = 3 * C;
    const float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static) num_threads(backward_threads())
    for (int64_t bh = 0; bh < B * H; bh++) {
        const int64_t b = bh / H, h = bh % H;
        const float *q = qkv + b * T * ld + h * hd;
        const float *v = q + 2 * C;
        float *a = att + bh * T * T, *o = thread_scratch(scratch, T, hd);
        pair_probabilities(a, q, T, C, hd, scale);
        /* the forward's product into the thread's scratch, then rounded while in cache */
        clv_gemm(0, 0, T, hd, T, 1.0f, a, T, v, ld, 0.0f, o, hd);
        for (int64_t t = 0; t < T; t++) {
            const float *restrict sr = o + t * hd;
            clv_bf16 *restrict dr = outh + (b * T + t) * C + h * hd;
#pragma omp simd
            for (int64_t j = 0; j < hd; j++)
                dr[j] = clv_bf16_from_float(sr[j]);
        }
    }
}

void clv_attention_output(float *out, const float *att, const float *qkv, int64_t B, int64_t T, int64_t C, int64_t H)
{
    const int64_t hd = C / H, ld = 3 * C;
#pragma omp parallel for schedule(static)
    for (int64_t bh = 0; bh < B * H; bh++) {
        const int64_t b = bh / H, h = bh % H;
        const float *v = qkv + b * T * ld + h * hd + 2 * C;
        /* the forward's product, call for call: the same floats */
        clv_gemm(0, 0, T, hd, T, 1.0f, att + bh * T * T, T, v, ld, 0.0f, out + b * T * C + h * hd, C);
    }
}

/* One (image, head) pair's backward: dq, dk, dv (T x hd each, row stride ldd) from its dout, with
 * da (T x T) and, when a is NULL, ar (T x T) as scratch */
static void pair_backward(float *dq, float *dk, float *dv, int64_t ldd, const float *dob, const float *q,
                          const float *a, float *da, float *ar, int64_t T, int64_t C, int64_t hd)
{
    const int64_t ld = 3 * C;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *k = q + C, *v = q + 2 * C;
    if (!a) { /* the same probabilities as the forward's, bit for bit, while they are in cache */
        pair_probabilities(ar, q, T, C, hd, scale);
        a = ar;
    }
    /* out = A V: dA = dout V^T, dV = A^T dout */
    clv_gemm(0, 1, T, T, hd, 1.0f, dob, C, v, ld, 0.0f, da, T);
    clv_gemm(1, 0, T, hd, T, 1.0f, a, T, dob, C, 0.0f, dv, ldd);
    /* through the row softmax, in place: dS */
    for (int64_t t = 0; t < T; t++)
        clv_softmax_row_backward(da + t * T, da + t * T, a + t * T, T, 0);
    /* S = scale q k^T: dq = scale dS k, dk = scale dS^T q */
    clv_gemm(0, 0, T, hd, T, scale, da, T, k, ld, 0.0f, dq, ldd);
    clv_gemm(1, 0, T, hd, T, scale, da, T, q, ld, 0.0f, dk, ldd);
}

void clv_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int64_t B, int64_t T,
                            int64_t C, int64_t H, float *scratch)
{
    if (!dqkv)
        return;
    const int64_t hd = C / H, ld = 3 * C;
#pragma omp parallel for schedule(static) num_threads(backward_threads())
    for (int64_t bh = 0; bh < B * H; bh++) {
        const int64_t b = bh / H, h = bh % H;
        float *dq = dqkv + b * T * ld + h * hd, *da = thread_scratch(scratch, T, hd);
        pair_backward(dq, dq + C, dq + 2 * C, ld, dout + b * T * C + h * hd, qkv + b * T * ld + h * hd,
                      att ? att + bh * T * T : NULL, da, da + T * T, T, C, hd);
    }
}

void clv_attention_backward_h(clv_bf16 *dqkvh, float *colsum, float *parts, const float *dout, const float *qkv,
                              const float *att, int64_t B, int64_t T, int64_t C, int64_t H, float *scratch)
{
    const int64_t hd = C / H, ld = 3 * C;
#pragma omp parallel for schedule(static) num_threads(backward_threads())
    for (int64_t bh = 0; bh < B * H; bh++) {
        const int64_t b = bh / H, h = bh % H;
        float *da = thread_scratch(scratch, T, hd), *d3 = da + 2 * T * T; /* dq, dk, dv: T x hd each */
        pair_backward(d3, d3 + T * hd, d3 + 2 * T * hd, hd, dout + b * T * C + h * hd, qkv + b * T * ld + h * hd,
                      att ? att + bh * T * T : NULL, da, da + T * T, T, C, hd);
        /* into dqkv's bf16 while in cache, and the pair's columns summed over its image's rows */
        for (int64_t p = 0; p < 3; p++) {
            const float *src = d3 + p * T * hd;
            float *restrict part = colsum ? parts + b * ld + p * C + h * hd : NULL;
            if (part)
                for (int64_t j = 0; j < hd; j++)
                    part[j] = 0.0f;
            for (int64_t t = 0; t < T; t++) {
                const float *restrict sr = src + t * hd;
                clv_bf16 *restrict dr = dqkvh + (b * T + t) * ld + p * C + h * hd;
#pragma omp simd
                for (int64_t j = 0; j < hd; j++)
                    dr[j] = clv_bf16_from_float(sr[j]);
                if (part)
#pragma omp simd
                    for (int64_t j = 0; j < hd; j++)
                        part[j] += sr[j];
            }
        }
    }
    if (!colsum)
        return;
    /* the images' sums in image order: the same floats on any thread count */
#pragma omp parallel for schedule(static) if (B * ld > 65536)
    for (int64_t c = 0; c < ld; c++) {
        float s = 0.0f;
        for (int64_t b = 0; b < B; b++)
            s += parts[b * ld + c];
        colsum[c] += s;
    }
}

/* p[t] = softmax_t(scale q . k_t) for the class row: one row of scores, the
 * same row arithmetic as the full forward's softmax */
static void cls_probs(float *p, const float *q, const float *k, int64_t T, int64_t hd, int64_t ld, float scale)
{
    for (int64_t t = 0; t < T; t++) {
        const float *restrict kt = k + t * ld;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t d = 0; d < hd; d++)
            s += q[d] * kt[d];
        p[t] = scale * s;
    }
    clv_softmax_row(p, p, T);
}

void clv_attention_cls_forward(float *out, const float *qkv, int64_t B, int64_t T, int64_t C, int64_t H)
{
    const int64_t hd = C / H, ld = 3 * C;
    const float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static) if (B * H * T * hd > 32768)
    for (int64_t bh = 0; bh < B * H; bh++) {
        const int64_t b = bh / H, h = bh % H;
        const float *q = qkv + b * T * ld + h * hd;
        const float *k = q + C, *v = q + 2 * C;
        float p[T];
        cls_probs(p, q, k, T, hd, ld, scale);
        float *restrict o = out + b * C + h * hd;
        for (int64_t d = 0; d < hd; d++)
            o[d] = 0.0f;
        for (int64_t t = 0; t < T; t++) {
            const float *restrict vt = v + t * ld;
            const float pt = p[t];
#pragma omp simd
            for (int64_t d = 0; d < hd; d++)
                o[d] += pt * vt[d];
        }
    }
}

void clv_attention_cls_backward(float *dqkv, const float *dout, const float *qkv, int64_t B, int64_t T, int64_t C,
                                int64_t H)
{
    const int64_t hd = C / H, ld = 3 * C;
    const float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static) if (B * H * T * hd > 32768)
    for (int64_t bh = 0; bh < B * H; bh++) {
        const int64_t b = bh / H, h = bh % H;
        const float *q = qkv + b * T * ld + h * hd;
        const float *k = q + C, *v = q + 2 * C;
        float *dq = dqkv + b * T * ld + h * hd;
        float *dk = dq + C, *dv = dq + 2 * C;
        const float *restrict g = dout + b * C + h * hd;
        float p[T], ds[T];
        cls_probs(p, q, k, T, hd, ld, scale);
        /* out = sum_t p_t v_t: dp_t = g . v_t, dv_t = p_t g */
        for (int64_t t = 0; t < T; t++) {
            const float *restrict vt = v + t * ld;
            float *restrict dvt = dv + t * ld;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int64_t d = 0; d < hd; d++)
                s += g[d] * vt[d];
            ds[t] = s;
            for (int64_t d = 0; d < hd; d++)
                dvt[d] = p[t] * g[d];
        }
        clv_softmax_row_backward(ds, ds, p, T, 0);
        /* scores = scale q0 . k_t: dq0 = scale sum_t ds_t k_t, dk_t = scale ds_t q0; dq is 0 below row 0 */
        float *restrict dq0 = dq;
        for (int64_t d = 0; d < hd; d++)
            dq0[d] = 0.0f;
        for (int64_t t = 0; t < T; t++) {
            const float *restrict kt = k + t * ld;
            float *restrict dkt = dk + t * ld, *restrict dqt = dq + t * ld;
            const float st = scale * ds[t];
#pragma omp simd
            for (int64_t d = 0; d < hd; d++) {
                dq0[d] += st * kt[d];
                dkt[d] = st * q[d];
            }
            if (t)
                for (int64_t d = 0; d < hd; d++)
                    dqt[d] = 0.0f;
        }
    }
}
