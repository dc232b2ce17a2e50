/* Swin Transformer kernels: row gathers, the shifted-window indices and
 * mask, windowed attention with a relative position bias (see
 * clvit/kernels_swin.h). One (window, head) pair is independent of the
 * others, as in attention.c; the bias gradient sums over windows in a fixed
 * order, so nothing depends on the thread count. */
#include "clvit/gemm.h"
#include "clvit/kernels.h"
#include "clvit/kernels_swin.h"
#include "kernels/softmax_row.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

void clv_rows_gather(float *y, const float *x, const int32_t *idx, int64_t R, int64_t C)
{
#pragma omp parallel for schedule(static) if (R * C > 65536)
    for (int64_t r = 0; r < R; r++)
        memcpy(y + r * C, x + (int64_t)idx[r] * C, (size_t)C * sizeof(float));
}

void clv_rows_scatter_add(float *dx, const float *dy, const int32_t *idx, int64_t R, int64_t C)
{
    /* idx never repeats a row: the rows written are disjoint */
#pragma omp parallel for schedule(static) if (R * C > 65536)
    for (int64_t r = 0; r < R; r++) {
        float *d = dx + (int64_t)idx[r] * C;
        const float *s = dy + r * C;
        for (int64_t c = 0; c < C; c++)
            d[c] += s[c];
    }
}

void clv_swin_window_index(int32_t *idx, int64_t B, int64_t H, int64_t W, int64_t ws, int64_t shift)
{
    const int64_t nWy = H / ws, nWx = W / ws;
    int64_t r = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t wy = 0; wy < nWy; wy++)
            for (int64_t wx = 0; wx < nWx; wx++)
                for (int64_t iy = 0; iy < ws; iy++)
                    for (int64_t ix = 0; ix < ws; ix++) {
                        /* roll by -shift: the shifted image at (y, x) is the image at (y + s, x + s) */
                        const int64_t y = (wy * ws + iy + shift) % H, x = (wx * ws + ix + shift) % W;
                        idx[r++] = (int32_t)((b * H + y) * W + x);
                    }
}

void clv_swin_merge_index(int32_t *idx, int64_t B, int64_t H, int64_t W)
{
    static const int dy[4] = {0, 1, 0, 1}, dx[4] = {0, 0, 1, 1};
    int64_t r = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t y = 0; y < H / 2; y++)
            for (int64_t x = 0; x < W / 2; x++)
                for (int k = 0; k < 4; k++)
                    idx[r++] = (int32_t)((b * H + 2 * y + dy[k]) * W + 2 * x + dx[k]);
}

void clv_swin_relative_index(int32_t *idx, int64_t ws)
{
    const int64_t N = ws * ws;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < N; j++) {
            const int64_t dy = i / ws - j / ws + ws - 1, dx = i % ws - j % ws + ws - 1;
            idx[i * N + j] = (int32_t)(dy * (2 * ws - 1) + dx);
        }
}

/* region of coordinate v along an axis of length L in timm's img_mask:
 * slices (0, -ws), (-ws, -shift), (-shift, None) */
static int region(int64_t v, int64_t L, int64_t ws, int64_t shift)
{
    return v < L - ws ? 0 : v < L - shift ? 1 : 2;
}

void clv_swin_attention_mask(float *mask, int64_t H, int64_t W, int64_t ws, int64_t shift)
{
    const int64_t nWx = W / ws, nW = (H / ws) * nWx, N = ws * ws;
    for (int64_t w = 0; w < nW; w++) {
        const int64_t wy = w / nWx, wx = w % nWx;
        for (int64_t i = 0; i < N; i++) {
            const int ri = 3 * region(wy * ws + i / ws, H, ws, shift) + region(wx * ws + i % ws, W, ws, shift);
            for (int64_t j = 0; j < N; j++) {
                const int rj = 3 * region(wy * ws + j / ws, H, ws, shift) + region(wx * ws + j % ws, W, ws, shift);
                mask[(w * N + i) * N + j] = ri == rj ? 0.0f : -100.0f;
            }
        }
    }
}

/* The attention runs one window per iteration on one thread: the window's
 * qkv rows are gathered from where its tokens sit (the roll and the
 * partition, by idx) into that thread's scratch, where every head's products
 * stay in cache, and the window's output rows are scattered back to the
 * same rows (the partition's reverse and the roll back). So the token
 * matrices stay in image order and no windowed copy of the layer input, qkv
 * or the output is ever formed. Each head's GEMMs see the same strides as
 * on a contiguous qkv. */
static int window_threads(void)
{
    const int t = omp_get_max_threads(), p = omp_get_num_procs();
    return t < p ? t : p;
}

/* per thread: qkv and its gradient [N x 3C] each, out or dout [N x C], two N x N */
static int64_t per_thread(int64_t N, int64_t C) { return 7 * N * C + 2 * N * N; }

int64_t clv_window_attention_scratch_floats(int64_t N, int64_t C, int64_t H)
{
    const int t = omp_get_max_threads(), p = omp_get_num_procs();
    return (int64_t)(t > p ? t : p) * per_thread(N, C);
}

/* row of token i of window w: image w / nW, its window w % nW */
static inline int64_t win_row(const int32_t *idx, int64_t w, int64_t i, int64_t nW, int64_t N)
{
    const int64_t wl = w % nW;
    return (w / nW) * nW * N + (idx ? idx[wl * N + i] : wl * N + i);
}

/* rows of window w of x [. x C] into y [N x C], or back (scatter) */
static void gather_window(float *y, const float *x, const int32_t *idx, int64_t w, int64_t nW, int64_t N, int64_t C)
{
    for (int64_t i = 0; i < N; i++)
        memcpy(y + i * C, x + win_row(idx, w, i, nW, N) * C, (size_t)C * sizeof(float));
}

static void scatter_window(float *x, const float *y, const int32_t *idx, int64_t w, int64_t nW, int64_t N, int64_t C)
{
    for (int64_t i = 0; i < N; i++)
        memcpy(x + win_row(idx, w, i, nW, N) * C, y + i * C, (size_t)C * sizeof(float));
}

/* The forward (bias given: scores, softmax into att or scratch) and the output again (bias NULL:
 * from the kept att), one pass over windows: the same product call for call, so the output again
 * is the same floats. */
static void window_pass(float *out, float *att, const float *qkv, const float *bias, const float *mask,
                        const int32_t *idx, int64_t nW, int64_t Bw, int64_t N, int64_t C, int64_t H, float *scratch)
{
    const int64_t hd = C / H, ld = 3 * C;
    const float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static) num_threads(window_threads())
    for (int64_t w = 0; w < Bw; w++) {
        float *qs = scratch + (int64_t)omp_get_thread_num() * per_thread(N, C), *os = qs + 6 * N * C;
        const float *mk = mask ? mask + (w % nW) * N * N : NULL;
        gather_window(qs, qkv, idx, w, nW, N, ld);
        for (int64_t h = 0; h < H; h++) {
            float *a = att ? att + (w * H + h) * N * N : os + N * C;
            if (bias) {
                const float *bs = bias + h * N * N;
                /* timm scales q before the product; folding the scale into alpha rounds differently by an ulp */
                clv_gemm(0, 1, N, N, hd, scale, qs + h * hd, ld, qs + C + h * hd, ld, 0.0f, a, N);
                for (int64_t t = 0; t < N * N; t++)
                    a[t] += bs[t] + (mk ? mk[t] : 0.0f);
                for (int64_t t = 0; t < N; t++)
                    clv_softmax_row(a + t * N, a + t * N, N);
            }
            clv_gemm(0, 0, N, hd, N, 1.0f, a, N, qs + 2 * C + h * hd, ld, 0.0f, os + h * hd, C);
        }
        scatter_window(out, os, idx, w, nW, N, C);
    }
}

void clv_window_attention_forward(float *out, float *att, const float *qkv, const float *bias, const float *mask,
                                  const int32_t *idx, int64_t nW, int64_t Bw, int64_t N, int64_t C, int64_t H,
                                  float *scratch)
{
    window_pass(out, att, qkv, bias, mask, idx, nW, Bw, N, C, H, scratch);
}

void clv_window_attention_output(float *out, const float *att, const float *qkv, const int32_t *idx, int64_t nW,
                                 int64_t Bw, int64_t N, int64_t C, int64_t H, float *scratch)
{
    /* att is only read when bias is NULL */
    window_pass(out, (float *)att, qkv, NULL, NULL, idx, nW, Bw, N, C, H, scratch);
}

void clv_window_attention_backward(float *dqkv, float *dS, const float *dout, const float *qkv, const float *att,
                                   const int32_t *idx, int64_t nW, int64_t Bw, int64_t N, int64_t C, int64_t H,
                                   float *scratch)
{
    const int64_t hd = C / H, ld = 3 * C;
    const float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static) num_threads(window_threads())
    for (int64_t w = 0; w < Bw; w++) {
        float *qs = scratch + (int64_t)omp_get_thread_num() * per_thread(N, C), *dqs = qs + 3 * N * C;
        float *dos = dqs + 3 * N * C, *da = dos + N * C;
        gather_window(qs, qkv, idx, w, nW, N, ld);
        gather_window(dos, dout, idx, w, nW, N, C);
        for (int64_t h = 0; h < H; h++) {
            const float *a = att + (w * H + h) * N * N;
            const float *q = qs + h * hd, *k = q + C, *v = q + 2 * C, *dob = dos + h * hd;
            float *dq = dqs + h * hd, *dk = dq + C, *dv = dq + 2 * C;
            /* out = A V: dA = dout V^T, dV = A^T dout */
            clv_gemm(0, 1, N, N, hd, 1.0f, dob, C, v, ld, 0.0f, da, N);
            clv_gemm(1, 0, N, hd, N, 1.0f, a, N, dob, C, 0.0f, dv, ld);
            /* through the row softmax, in place: dA becomes dS (also the bias's and mask's gradient) */
            for (int64_t t = 0; t < N; t++)
                clv_softmax_row_backward(da + t * N, da + t * N, a + t * N, N, 0);
            if (dS) /* may be att: this head's probabilities are spent */
                memcpy(dS + (w * H + h) * N * N, da, (size_t)(N * N) * sizeof(float));
            /* S = scale q k^T + ...: dq = scale dS k, dk = scale dS^T q */
            clv_gemm(0, 0, N, hd, N, scale, da, N, k, ld, 0.0f, dq, ld);
            clv_gemm(1, 0, N, hd, N, scale, da, N, q, ld, 0.0f, dk, ld);
        }
        scatter_window(dqkv, dqs, idx, w, nW, N, ld);
    }
}

void clv_window_bias_forward(float *bias, const float *table, const int32_t *idx, int64_t N, int64_t H)
{
    for (int64_t h = 0; h < H; h++)
        for (int64_t t = 0; t < N * N; t++)
            bias[h * N * N + t] = table[(int64_t)idx[t] * H + h];
}

void clv_window_bias_backward(float *dtable, const float *dS, const int32_t *idx, int64_t Bw, int64_t N, int64_t H,
                              double *sum)
{
    const int64_t NN = N * N;
    /* the sum over windows of each (h, i, j) on one thread, in window order;
     * then the scatter into the table, serially, in (h, i, j) order */
#pragma omp parallel for schedule(static) if (Bw * H * NN > 65536)
    for (int64_t ht = 0; ht < H * NN; ht++) {
        const int64_t h = ht / NN, t = ht % NN;
        double s = 0;
        for (int64_t w = 0; w < Bw; w++)
            s += dS[(w * H + h) * NN + t];
        sum[ht] = s;
    }
    for (int64_t h = 0; h < H; h++)
        for (int64_t t = 0; t < NN; t++)
            dtable[(int64_t)idx[t] * H + h] += (float)sum[h * NN + t];
}
