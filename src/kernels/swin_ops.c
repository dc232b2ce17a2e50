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

void clv_window_attention_forward(float *out, float *att, const float *qkv, const float *bias, const float *mask,
                                  int64_t nW, int64_t Bw, int64_t N, int64_t C, int64_t H)
{
    const int64_t hd = C / H, ld = 3 * C;
    const float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static)
    for (int64_t bh = 0; bh < Bw * H; bh++) {
        const int64_t w = bh / H, h = bh % H;
        const float *q = qkv + w * N * ld + h * hd;
        const float *k = q + C, *v = q + 2 * C;
        float *a = att + bh * N * N;
        const float *bs = bias + h * N * N, *mk = mask ? mask + (w % nW) * N * N : NULL;
        /* timm scales q before the product; folding the scale into alpha rounds differently by an ulp */
        clv_gemm(0, 1, N, N, hd, scale, q, ld, k, ld, 0.0f, a, N);
        for (int64_t t = 0; t < N * N; t++)
            a[t] += bs[t] + (mk ? mk[t] : 0.0f);
        for (int64_t t = 0; t < N; t++)
            clv_softmax_row(a + t * N, a + t * N, N);
        clv_gemm(0, 0, N, hd, N, 1.0f, a, N, v, ld, 0.0f, out + w * N * C + h * hd, C);
    }
}

static int backward_threads(void)
{
    const int t = omp_get_max_threads(), p = omp_get_num_procs();
    return t < p ? t : p;
}

void clv_window_attention_backward(float *dqkv, float *dS, const float *dout, const float *qkv, const float *att,
                                   int64_t Bw, int64_t N, int64_t C, int64_t H, float *scratch)
{
    const int64_t hd = C / H, ld = 3 * C;
    const float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static) num_threads(backward_threads())
    for (int64_t bh = 0; bh < Bw * H; bh++) {
        const int64_t w = bh / H, h = bh % H;
        const float *q = qkv + w * N * ld + h * hd;
        const float *k = q + C, *v = q + 2 * C;
        float *dq = dqkv + w * N * ld + h * hd;
        float *dk = dq + C, *dv = dq + 2 * C;
        const float *a = att + bh * N * N;
        const float *dob = dout + w * N * C + h * hd;
        float *da = dS ? dS + bh * N * N : scratch + (int64_t)omp_get_thread_num() * 2 * N * N;
        /* out = A V: dA = dout V^T, dV += A^T dout */
        clv_gemm(0, 1, N, N, hd, 1.0f, dob, C, v, ld, 0.0f, da, N);
        clv_gemm(1, 0, N, hd, N, 1.0f, a, N, dob, C, 1.0f, dv, ld);
        /* through the row softmax, in place: dA becomes dS (also the bias's and mask's gradient) */
        for (int64_t t = 0; t < N; t++)
            clv_softmax_row_backward(da + t * N, da + t * N, a + t * N, N, 0);
        /* S = scale q k^T + ...: dq += scale dS k, dk += scale dS^T q */
        clv_gemm(0, 0, N, hd, N, scale, da, N, k, ld, 1.0f, dq, ld);
        clv_gemm(1, 0, N, hd, N, scale, da, N, q, ld, 1.0f, dk, ld);
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
