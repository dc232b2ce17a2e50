/* Batch normalization over the channel columns of an NHWC matrix (see
 * clvit/kernels_cnn.h). Column sums run over fixed blocks of rows in
 * double, each block on one thread, and the blocks are added in order, so
 * the statistics do not depend on the thread count. The kernels take their
 * scratch from the caller (clv_batchnorm_scratch_doubles) and never allocate. */
#include "clvit/kernels_cnn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ROW_BLOCK 256

int64_t clv_batchnorm_scratch_doubles(int64_t N, int64_t C)
{
    const int64_t nb = (N + ROW_BLOCK - 1) / ROW_BLOCK;
    /* the row blocks' partial sums, four per-channel sums in double, three per-channel floats */
    return nb * C * 2 + 4 * C + (3 * C + 1) / 2;
}

/* out[c] = sum_n f(n, c) for the two per-channel sums the kernels need:
 * mode 0: s0 = sum (x - m), s1 = sum (x - m)^2, mode 2: s0 = sum dy,
 * s1 = sum dy (x - m) rstd. part: the row blocks' partial sums. */
static void column_sums(double *s0, double *s1, const float *a, const float *bb, const double *m, const double *rstd,
                        int64_t N, int64_t C, int mode, double *part)
{
    const int64_t nb = (N + ROW_BLOCK - 1) / ROW_BLOCK;
    memset(part, 0, (size_t)(nb * C * 2) * sizeof *part);
#pragma omp parallel for schedule(static) if (N * C > 65536)
    for (int64_t blk = 0; blk < nb; blk++) {
        double *p0 = part + blk * C * 2, *p1 = p0 + C;
        const int64_t end = (blk + 1) * ROW_BLOCK < N ? (blk + 1) * ROW_BLOCK : N;
        for (int64_t n = blk * ROW_BLOCK; n < end; n++) {
            const float *ar = a + n * C;
            if (mode == 0)
                for (int64_t c = 0; c < C; c++) {
                    const double d = (double)ar[c] - m[c];
                    p0[c] += d;
                    p1[c] += d * d;
                }
            else {
                const float *br = bb + n * C;
                for (int64_t c = 0; c < C; c++) {
                    p0[c] += ar[c];
                    p1[c] += (double)ar[c] * (((double)br[c] - m[c]) * rstd[c]);
                }
            }
        }
    }
    for (int64_t c = 0; c < C; c++) {
        double t0 = 0, t1 = 0;
        for (int64_t blk = 0; blk < nb; blk++) {
            t0 += part[blk * C * 2 + c];
            t1 += part[blk * C * 2 + C + c];
        }
        s0[c] = t0;
        if (s1)
            s1[c] = t1;
    }
}

/* The scratch's parts (see clv_batchnorm_scratch_doubles). */
typedef struct bn_scratch {
    double *part, *sums; /* sums: 4 C */
    float *f;            /* 3 C */
} bn_scratch;

static bn_scratch split(double *scratch, int64_t N, int64_t C)
{
    const int64_t nb = (N + ROW_BLOCK - 1) / ROW_BLOCK;
    bn_scratch b = {.part = scratch, .sums = scratch + nb * C * 2};
    b.f = (float *)(b.sums + 4 * C);
    return b;
}

void clv_batchnorm_stats(float *mean, float *var, const float *x, int64_t N, int64_t C, double *scratch)
{
    bn_scratch sc = split(scratch, N, C);
    /* One pass, shifted by each column's first value k so that nothing cancels when the mean is
     * far from 0 against the spread: s = sum (x - k), s2 = sum (x - k)^2; the variance is taken
     * around the float mean m the normalization uses, sum (x - m)^2 = s2 - 2 (m - k) s + N (m - k)^2. */
    double *s = sc.sums, *s2 = s + C, *k = s + 2 * C;
    for (int64_t c = 0; c < C; c++)
        k[c] = N > 0 ? x[c] : 0.0;
    column_sums(s, s2, x, NULL, k, NULL, N, C, 0, sc.part);
    for (int64_t c = 0; c < C; c++) {
        const float mf = (float)(k[c] + s[c] / (double)N);
        const double dm = (double)mf - k[c], q = s2[c] - 2.0 * dm * s[c] + (double)N * dm * dm;
        mean[c] = mf;
        var[c] = q > 0 ? (float)(q / (double)N) : 0.0f;
    }
}

void clv_batchnorm_update_running(float *run_mean, float *run_var, const float *mean, const float *var, int64_t N,
                                  int64_t C, float momentum)
{
    const double unbias = N > 1 ? (double)N / (double)(N - 1) : 1.0;
    for (int64_t c = 0; c < C; c++) {
        run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * mean[c];
        run_var[c] = (1.0f - momentum) * run_var[c] + momentum * (float)(var[c] * unbias);
    }
}

void clv_batchnorm_rstd(float *rstd, const float *var, int64_t C, float eps)
{
    for (int64_t c = 0; c < C; c++)
        rstd[c] = 1.0f / sqrtf(var[c] + eps);
}

void clv_batchnorm_apply(float *y, const float *x, const float *mean, const float *rstd, const float *gamma,
                         const float *beta, int64_t N, int64_t C, int relu)
{
#pragma omp parallel for schedule(static) if (N * C > 65536)
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * C;
        float *yr = y + n * C;
        for (int64_t c = 0; c < C; c++) {
            const float v = (xr[c] - mean[c]) * rstd[c] * gamma[c] + beta[c];
            yr[c] = relu && v < 0.0f ? 0.0f : v;
        }
    }
}

void clv_batchnorm_apply_bf16(float *y, clv_bf16 *yh, const float *x, const float *mean, const float *rstd,
                              const float *gamma, const float *beta, int64_t N, int64_t C, int relu)
{
#pragma omp parallel for schedule(static) if (N * C > 65536)
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * C;
        float *yr = y + n * C;
        clv_bf16 *hr = yh + n * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) {
            const float v = (xr[c] - mean[c]) * rstd[c] * gamma[c] + beta[c];
            const float o = relu && v < 0.0f ? 0.0f : v;
            yr[c] = o;
            hr[c] = clv_bf16_from_float(o);
        }
    }
}

void clv_add_relu(float *y, clv_bf16 *yh, const float *a, int64_t n)
{
    if (!yh) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) {
            const float v = y[i] + a[i];
            y[i] = v > 0.0f ? v : 0.0f;
        }
        return;
    }
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        const float v = y[i] + a[i], o = v > 0.0f ? v : 0.0f;
        y[i] = o;
        yh[i] = clv_bf16_from_float(o);
    }
}

/* clv_batchnorm_backward; with dxh, dx is not touched and dxh gets 0 + dx's term in bf16 */
/* one element of dx = gamma rstd (dy - [batch] (sum dy + xhat sum dy xhat) / N), with the per-column
 * factors k0 = gamma rstd, k1, k2 formed by bn_backward */
static inline float dx_term(float dy, float x, float mean, float rstd, float k0, float k1, float k2)
{
    const float xhat = (x - mean) * rstd;
    return k0 * (dy - k1 - xhat * k2);
}

static void bn_backward(float *dx, int dx_written, clv_bf16 *dxh, float *dgamma, float *dbeta, const float *dy,
                        const float *x, const float *mean, const float *rstd, const float *gamma, int64_t N, int64_t C,
                        int batch_stats, double *scratch)
{
    if (!dx && !dxh && !dgamma && !dbeta)
        return;
    bn_scratch sc = split(scratch, N, C);
    double *sdy = sc.sums, *sdyx = sc.sums + C, *m = sc.sums + 2 * C, *r = sc.sums + 3 * C;
    for (int64_t c = 0; c < C; c++)
        m[c] = mean[c], r[c] = rstd[c];
    /* sdy = sum dy, sdyx = sum dy xhat */
    column_sums(sdy, sdyx, dy, x, m, r, N, C, 2, sc.part);
    for (int64_t c = 0; c < C; c++) {
        if (dgamma)
            dgamma[c] += (float)sdyx[c];
        if (dbeta)
            dbeta[c] += (float)sdy[c];
    }
    if (dx || dxh) {
        float *k0 = sc.f, *k1 = k0 + C, *k2 = k0 + 2 * C;
        /* dx = gamma rstd (dy - [batch] (sum dy + xhat sum dy xhat) / N) */
        for (int64_t c = 0; c < C; c++) {
            k0[c] = gamma[c] * rstd[c];
            k1[c] = batch_stats ? (float)(sdy[c] / (double)N) : 0.0f;
            k2[c] = batch_stats ? (float)(sdyx[c] / (double)N) : 0.0f;
        }
        if (dxh) {
#pragma omp parallel for schedule(static) if (N * C > 65536)
            for (int64_t n = 0; n < N; n++) {
                const float *dyr = dy + n * C, *xr = x + n * C;
                clv_bf16 *hr = dxh + n * C;
                for (int64_t c = 0; c < C; c++) /* 0 + term: the value (and sign of zero) dx += gives from 0 */
                    hr[c] = clv_bf16_from_float(0.0f + dx_term(dyr[c], xr[c], mean[c], rstd[c], k0[c], k1[c], k2[c]));
            }
            return;
        }
#pragma omp parallel for schedule(static) if (N * C > 65536)
        for (int64_t n = 0; n < N; n++) {
            const float *dyr = dy + n * C, *xr = x + n * C;
            float *dxr = dx + n * C;
            for (int64_t c = 0; c < C; c++) /* written: 0 + term, as dx += gives from 0, dx unread */
                dxr[c] = (dx_written ? 0.0f : dxr[c]) + dx_term(dyr[c], xr[c], mean[c], rstd[c], k0[c], k1[c], k2[c]);
        }
    }
}

void clv_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean,
                            const float *rstd, const float *gamma, int64_t N, int64_t C, int batch_stats,
                            double *scratch)
{
    bn_backward(dx, 0, NULL, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, batch_stats, scratch);
}

void clv_batchnorm_backward_into(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                                 const float *mean, const float *rstd, const float *gamma, int64_t N, int64_t C,
                                 int batch_stats, double *scratch)
{
    bn_backward(dx, 1, NULL, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, batch_stats, scratch);
}

void clv_batchnorm_backward_bf16(clv_bf16 *dxh, float *dgamma, float *dbeta, const float *dy, const float *x,
                                 const float *mean, const float *rstd, const float *gamma, int64_t N, int64_t C,
                                 int batch_stats, double *scratch)
{
    bn_backward(NULL, 0, dxh, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, batch_stats, scratch);
}

void clv_relu_mask(float *dy, const float *y, int64_t n)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        if (!(y[i] > 0.0f))
            dy[i] = 0.0f;
}
