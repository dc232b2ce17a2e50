/* The low-rank backward of z = x (W + A B)^T without the full dW:
 *   dA += dz^T (x B^T),  dB += (dz A)^T x,
 * where dz = dy diag(s) arrives as dy and s: (dz A) = dy (diag(s) A) and
 * dA's rows are scaled after the sum, so a scaled layer never forms dz.
 * As four GEMMs with a rank-sized dimension (4 to 16) it made four passes
 * over x and dz at a fraction of the GEMM's speed (oneDNN's kernels want
 * wide outputs). Here one pass: rows go in fixed groups, each group in
 * chunks small enough to stay in L2, where a chunk's x B^T and dz A are
 * formed and then reduced into the group's partial dA and dB with the
 * rank in registers. Groups depend only on N, and their partials are added
 * in group order, so the result does not depend on the thread count. */
#include "clvit/kernels.h"

#include <string.h>

typedef float v8 __attribute__((vector_size(32)));

#define CHUNK 16  /* rows per chunk: 16 x 768 floats of dz stay in L1 */
#define GROUPS 16  /* at most this many partials */
#define KB 4       /* rank columns per register block */

static inline v8 load8(const float *p)
{
    v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store8(float *p, v8 v) { memcpy(p, &v, sizeof v); }

static inline float hsum8(v8 v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }

static int64_t group_rows(int64_t N)
{
    int64_t per = (N + GROUPS - 1) / GROUPS;
    per = (per + CHUNK - 1) / CHUNK * CHUNK;
    return per ? per : CHUNK;
}

int64_t clv_lowrank_backward_scratch_floats(int64_t N, int64_t in, int64_t out, int K)
{
    const int64_t groups = (N + group_rows(N) - 1) / group_rows(N);
    /* A^T, then per group: partial dA^T (K x out), partial dB (K x in), the chunk's two CHUNK x K products */
    return (int64_t)K * out + groups * ((int64_t)K * (in + out) + 2 * CHUNK * (int64_t)K);
}

/* the kn (<= KB) dot products of rows ar and ar + lda (two rows: twice the independent sums per load of m)
 * with rows k0.. of m; with one row when two is 0. kn is a constant after inlining. */
static inline __attribute__((always_inline)) void dots_block(float *t, const float *ar, int64_t lda, int two,
                                                             int K, const float *m, int64_t len, int k0, int kn)
{
    const int64_t len8 = len & ~(int64_t)7;
    const float *br = two ? ar + lda : ar;
    v8 acc[KB] = {{0}}, acc2[KB] = {{0}};
    for (int64_t i = 0; i < len8; i += 8) {
        const v8 av = load8(ar + i), bv = load8(br + i);
        for (int k = 0; k < kn; k++) {
            const v8 mv = load8(m + (k0 + k) * len + i);
            acc[k] += av * mv;
            acc2[k] += bv * mv;
        }
    }
    for (int k = 0; k < kn; k++) {
        float s = hsum8(acc[k]), s2 = hsum8(acc2[k]);
        for (int64_t i = len8; i < len; i++) {
            s += ar[i] * m[(k0 + k) * len + i];
            s2 += br[i] * m[(k0 + k) * len + i];
        }
        t[k0 + k] = s;
        if (two)
            t[K + k0 + k] = s2;
    }
}

/* t[r * K + k] = sum_i a[r][i] m[k][i] for the n rows of a (row stride lda), m K x len (row stride len) */
static void rows_times_mt(float *t, const float *a, int64_t n, int64_t lda, const float *m, int64_t len, int K)
{
    for (int64_t r = 0; r < n; r += 2) {
        const int two = r + 1 < n;
        for (int k0 = 0; k0 < K; k0 += KB) {
            if (K - k0 >= KB)
                dots_block(t + r * K, a + r * lda, lda, two, K, m, len, k0, KB);
            else
                dots_block(t + r * K, a + r * lda, lda, two, K, m, len, k0, K - k0);
        }
    }
}

/* p[k][c] += sum_r t[r * K + k] a[r][c] for rows k0..k0+kn of p, kn a constant after inlining */
static inline __attribute__((always_inline)) void outer_block(float *p, const float *t, const float *a, int64_t n,
                                                              int64_t lda, int64_t len, int K, int k0, int kn)
{
    const int64_t len16 = len & ~(int64_t)15;
    for (int64_t c = 0; c < len16; c += 16) {
        v8 lo[KB] = {{0}}, hi[KB] = {{0}};
        for (int64_t r = 0; r < n; r++) {
            const v8 a0 = load8(a + r * lda + c), a1 = load8(a + r * lda + c + 8);
            for (int k = 0; k < kn; k++) {
                const float tk = t[r * K + k0 + k];
                lo[k] += tk * a0;
                hi[k] += tk * a1;
            }
        }
        for (int k = 0; k < kn; k++) {
            float *pk = p + (int64_t)(k0 + k) * len + c;
            store8(pk, load8(pk) + lo[k]);
            store8(pk + 8, load8(pk + 8) + hi[k]);
        }
    }
    for (int64_t c = len16; c < len; c++)
        for (int k = 0; k < kn; k++) {
            float s = 0.0f;
            for (int64_t r = 0; r < n; r++)
                s += t[r * K + k0 + k] * a[r * lda + c];
            p[(int64_t)(k0 + k) * len + c] += s;
        }
}

/* p[k][c] += sum_r t[r * K + k] a[r][c] over the n rows of a (row stride lda), c < len */
static void acc_tt_rows(float *p, const float *t, const float *a, int64_t n, int64_t lda, int64_t len, int K)
{
    for (int k0 = 0; k0 < K; k0 += KB) {
        if (K - k0 >= KB)
            outer_block(p, t, a, n, lda, len, K, k0, KB);
        else
            outer_block(p, t, a, n, lda, len, K, k0, K - k0);
    }
}

void clv_lowrank_backward(float *dA, float *dB, const float *x, const float *dy, const float *s, const float *A,
                          const float *B, int64_t N, int64_t in, int64_t out, int K, float *scratch)
{
    if ((!dA && !dB) || N <= 0 || K <= 0)
        return;
    const int64_t per = group_rows(N), groups = (N + per - 1) / per;
    const int64_t gfloats = (int64_t)K * (in + out) + 2 * CHUNK * (int64_t)K;
    /* (diag(s) A)^T (K x out), so that (dy s) A is a row-times-rows product like x B^T */
    float *At = scratch, *parts = scratch + (int64_t)K * out;
    if (dB)
        for (int64_t c = 0; c < out; c++)
            for (int k = 0; k < K; k++)
                At[(int64_t)k * out + c] = s ? A[c * K + k] * s[c] : A[c * K + k];
#pragma omp parallel for schedule(dynamic, 1) if (N * (in + out) * K > 65536)
    for (int64_t g = 0; g < groups; g++) {
        float *pA = parts + g * gfloats; /* dA^T partial, K x out */
        float *pB = pA + (int64_t)K * out; /* dB partial, K x in */
        float *t1 = pB + (int64_t)K * in;  /* x B^T, CHUNK x K */
        float *t2 = t1 + CHUNK * K;        /* dz A, CHUNK x K */
        memset(pA, 0, (size_t)K * (size_t)(in + out) * sizeof(float));
        const int64_t r1 = (g + 1) * per < N ? (g + 1) * per : N;
        for (int64_t r0 = g * per; r0 < r1; r0 += CHUNK) {
            const int64_t n = r1 - r0 < CHUNK ? r1 - r0 : CHUNK;
            const float *xc = x + r0 * in, *dzc = dy + r0 * out; /* dz without its scale */
            if (dA) {
                rows_times_mt(t1, xc, n, in, B, in, K);
                acc_tt_rows(pA, t1, dzc, n, out, out, K);
            }
            if (dB) {
                rows_times_mt(t2, dzc, n, out, At, out, K);
                acc_tt_rows(pB, t2, xc, n, in, in, K);
            }
        }
    }
    /* group partials in group order; dA's rows scaled by s once, after the sum over rows */
    if (dA)
        for (int64_t c = 0; c < out; c++)
            for (int k = 0; k < K; k++) {
                float acc = 0.0f;
                for (int64_t g = 0; g < groups; g++)
                    acc += parts[g * gfloats + (int64_t)k * out + c];
                dA[c * K + k] += s ? acc * s[c] : acc;
            }
    if (dB)
        for (int64_t g = 0; g < groups; g++) {
            const float *pB = parts + g * gfloats + (int64_t)K * out;
            for (int64_t j = 0; j < (int64_t)K * in; j++)
                dB[j] += pB[j];
        }
}

/* u [kn] = the dot products of x [cin] with the rows p[0..kn-1] (KB independent sums in one pass over x) */
static inline void row_dots(float *restrict u, const float *restrict x, const float *const *p, int64_t kn, int64_t cin)
{
    v8 acc[KB] = {{0}};
    int64_t i = 0;
    for (; i + 8 <= cin; i += 8) {
        const v8 xv = load8(x + i);
        for (int k = 0; k < KB; k++)
            acc[k] += xv * load8(p[k] + i);
    }
    for (int k = 0; k < KB; k++) {
        float s = hsum8(acc[k]);
        for (int64_t j = i; j < cin; j++)
            s += x[j] * p[k][j];
        if (k < kn)
            u[k] = s;
    }
}

/* the rows k0 .. k0 + KB - 1 of M [K x cols]; past K a repeat of the last (its result is not used) */
static inline void block_rows(const float **r, const float *M, int64_t k0, int64_t K, int64_t cols)
{
    for (int64_t k = 0; k < KB; k++)
        r[k] = M + (k0 + k < K ? k0 + k : K - 1) * cols;
}

void clv_lowrank_project(float *restrict U, const float *restrict X, const float *restrict P, int64_t N, int64_t cin,
                         int64_t K)
{
#pragma omp parallel for schedule(static) if (N * cin * K > (1 << 18))
    for (int64_t n = 0; n < N; n++)
        for (int64_t k0 = 0; k0 < K; k0 += KB) {
            const float *p[KB];
            block_rows(p, P, k0, K, cin);
            row_dots(U + n * K + k0, X + n * cin, p, K - k0 < KB ? K - k0 : KB, cin);
        }
}

/* T [N x cout] += (X P^T) Q row by row, P [K x cin], Q [K x cout]: a
 * low-rank term beside a GEMM (the dx of RKR's x B^T A^T: dy (s A) B). As
 * two GEMMs with a rank-sized dimension it ran on oneDNN's sgemm at a small
 * fraction of its speed; here one pass over X and T, a row's dot products
 * in registers. Rows are independent: any thread count gives the same bits. */
void clv_lowrank_apply(float *restrict T, const float *restrict X, const float *restrict P, const float *restrict Q,
                       int64_t N, int64_t cin, int64_t cout, int64_t K)
{
#pragma omp parallel for schedule(static) if (N * (cin + cout) * K > (1 << 18))
    for (int64_t n = 0; n < N; n++) {
        float *t = T + n * cout;
        for (int64_t k0 = 0; k0 < K; k0 += KB) {
            const int64_t kn = K - k0 < KB ? K - k0 : KB;
            const float *p[KB], *q[KB];
            block_rows(p, P, k0, K, cin);
            block_rows(q, Q, k0, K, cout);
            float u[KB] = {0};
            row_dots(u, X + n * cin, p, kn, cin);
            int64_t j = 0;
            for (; j + 8 <= cout; j += 8) {
                v8 v = load8(t + j);
                for (int k = 0; k < KB; k++)
                    v += u[k] * load8(q[k] + j);
                store8(t + j, v);
            }
            for (; j < cout; j++)
                for (int k = 0; k < KB; k++)
                    t[j] += u[k] * q[k][j];
        }
    }
}
