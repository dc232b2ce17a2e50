/* Winograd F(2x2, 3x3) in bf16 (see clvit/winograd_bf16.h).
 *
 * Layouts: a chunk of T tiles keeps V [16][T][ci] (bf16), the products
 * M [16][T][co] (fp32) and, for the backward weights, A dy A^T [16][T][co]
 * (bf16); element e = 4 r + s of the 4x4 transform. Tile t of a batch is
 * image t / (th tw), tile row t / tw % th, column t % tw, covering output
 * rows 2i, 2i+1 and columns 2j, 2j+1, and input rows 2i-1 .. 2i+2. */
#include "clvit/winograd_bf16.h"
#include "clvit/kernels.h"

#include <string.h>

#define NE 16
/* bytes of V and products per chunk: within the last-level cache of a core pair */
#define CLV_WINO_CHUNK_BYTES (6u << 20)

void clv_wino_bf16_free(clv_wino_bf16 *w)
{
    clv_free(w->u);
    clv_free(w->v);
    clv_free(w->dm);
    clv_free(w->m);
    clv_free(w->du);
    clv_free(w->zero);
    memset(w, 0, sizeof *w);
}

static int grow(void **p, size_t *cap, size_t n, size_t elem, clv_err *err)
{
    if (clv_scratch_reserve(p, cap, n, elem))
        return clv_errf(err, "out of memory for a Winograd convolution's buffers (%zu values)", n);
    return 0;
}

/* zeros for the padding: one pixel of n channels */
static const float *zero_pixel(clv_wino_bf16 *w, int64_t n, clv_err *err)
{
    const size_t old = w->zero_cap;
    if (grow((void **)&w->zero, &w->zero_cap, (size_t)n, sizeof(float), err))
        return NULL;
    if (w->zero_cap != old)
        memset(w->zero, 0, w->zero_cap * sizeof(float));
    return w->zero;
}

/* o[e * es] = bf16(G g G^T) of the 3x3 filter g0 .. g8 (row-major), in straight code so that the
 * loop around it vectorizes */
static inline __attribute__((always_inline)) void filter_transform(clv_bf16 *o, int64_t es, float g0, float g1,
                                                                   float g2, float g3, float g4, float g5,
                                                                   float g6, float g7, float g8)
{
    const float t10 = 0.5f * (g0 + g3 + g6), t11 = 0.5f * (g1 + g4 + g7), t12 = 0.5f * (g2 + g5 + g8);
    const float t20 = 0.5f * (g0 - g3 + g6), t21 = 0.5f * (g1 - g4 + g7), t22 = 0.5f * (g2 - g5 + g8);
#define ROW(r, a, b, c)                                                                                                \
    o[(4 * (r) + 0) * es] = clv_bf16_from_float(a);                                                                  \
    o[(4 * (r) + 1) * es] = clv_bf16_from_float(0.5f * ((a) + (b) + (c)));                                           \
    o[(4 * (r) + 2) * es] = clv_bf16_from_float(0.5f * ((a) - (b) + (c)));                                           \
    o[(4 * (r) + 3) * es] = clv_bf16_from_float(c)
    ROW(0, g0, g1, g2);
    ROW(1, t10, t11, t12);
    ROW(2, t20, t21, t22);
    ROW(3, g6, g7, g8);
#undef ROW
}

/* g [3][3] = G^T u G of u [16] (the adjoint of filter_transform), u[e] at u[e * es] */
static inline __attribute__((always_inline)) void filter_transform_adjoint(float g[9], const float *u, int64_t es)
{
#define U_(e) u[(e) * es]
    /* G^T u: three rows of four */
    const float h1_0 = U_(4) + U_(8), h1_1 = U_(5) + U_(9), h1_2 = U_(6) + U_(10), h1_3 = U_(7) + U_(11);
    const float t00 = U_(0) + 0.5f * h1_0, t01 = U_(1) + 0.5f * h1_1, t02 = U_(2) + 0.5f * h1_2,
                t03 = U_(3) + 0.5f * h1_3;
    const float t10 = 0.5f * (U_(4) - U_(8)), t11 = 0.5f * (U_(5) - U_(9)), t12 = 0.5f * (U_(6) - U_(10)),
                t13 = 0.5f * (U_(7) - U_(11));
    const float t20 = 0.5f * h1_0 + U_(12), t21 = 0.5f * h1_1 + U_(13), t22 = 0.5f * h1_2 + U_(14),
                t23 = 0.5f * h1_3 + U_(15);
#undef U_
#define COL(r, a, b, c, d)                                                                                             \
    g[3 * (r) + 0] = (a) + 0.5f * ((b) + (c));                                                                       \
    g[3 * (r) + 1] = 0.5f * ((b) - (c));                                                                             \
    g[3 * (r) + 2] = 0.5f * ((b) + (c)) + (d)
    COL(0, t00, t01, t02, t03);
    COL(1, t10, t11, t12, t13);
    COL(2, t20, t21, t22, t23);
#undef COL
}

int clv_wino_bf16_weight(clv_wino_bf16 *w, const float *W, int64_t cout, int64_t cin, int backward_data,
                         clv_err *err)
{
    const int64_t ci = backward_data ? cout : cin, co = backward_data ? cin : cout, es = ci * co;
    if (grow((void **)&w->u, &w->u_cap, (size_t)(NE * ci * co), sizeof(clv_bf16), err))
        return -1;
    clv_bf16 *u = w->u;
    /* U[e][a][b] from the filter between input channel a and output channel b: for each a, a
     * vectorized pass over b. Its tap q is at base[b sb + q0 + q dq]; the backward data's filter is
     * W[a][b] rotated by 180 degrees (taps in reverse). Strides not known at compile time, so the
     * reads over b become gathers (a constant stride of 9 does not vectorize). */
    const int64_t sb = backward_data ? 9 : cin * 9, q0 = backward_data ? 8 : 0, dq = backward_data ? -1 : 1;
#pragma omp parallel for schedule(static) if (ci * co > 4096)
    for (int64_t a = 0; a < ci; a++) {
        const float *base = W + (backward_data ? a * cin * 9 : a * 9) + q0;
        clv_bf16 *ua = u + a * co;
#pragma omp simd
        for (int64_t b = 0; b < co; b++) {
            const float *g = base + b * sb;
            filter_transform(ua + b, es, g[0], g[dq], g[2 * dq], g[3 * dq], g[4 * dq], g[5 * dq], g[6 * dq],
                             g[7 * dq], g[8 * dq]);
        }
    }
    w->u_ci = ci, w->u_co = co;
    return 0;
}

typedef struct geom {
    int64_t B, H, W, th, tw, tiles;
} geom;

static geom geometry(int64_t B, int64_t H, int64_t W)
{
    geom g = {B, H, W, (H + 1) / 2, (W + 1) / 2, 0};
    g.tiles = B * g.th * g.tw;
    return g;
}

/* Tile t's image n, tile row i and column j (the order of the file's head comment) */
static inline void tile_at(const geom *g, int64_t t, int64_t *n, int64_t *i, int64_t *j)
{
    *n = t / (g->th * g->tw);
    *i = t / g->tw % g->th;
    *j = t % g->tw;
}

/* Tiles a chunk holds: a power of two (the batch's tile counts are, on even sizes, so no
 * short last chunk), at least 16, with bytes_per_tile bytes of chunk buffers a tile and at
 * most budget bytes of them. */
static int64_t chunk_tiles(const geom *g, int64_t bytes_per_tile, int64_t budget)
{
    int64_t T = 16;
    while (T < g->tiles && 2 * T * bytes_per_tile <= budget)
        T *= 2;
    return T < g->tiles ? T : g->tiles;
}

/* V[e][t - t0][.] = bf16(B^T d B) for tiles t0 .. t0 + nt of x [B H W x C] (v: the chunk, e-stride es) */
static void input_transform(clv_bf16 *restrict v, int64_t es, const float *restrict x, const float *restrict zero,
                            const geom *g, int64_t C, int64_t t0, int64_t nt)
{
#pragma omp parallel for schedule(static) if (nt * C > 16384)
    for (int64_t q = 0; q < nt; q++) {
        int64_t n, i, j;
        tile_at(g, t0 + q, &n, &i, &j);
        const float *p[4][4];
        for (int r = 0; r < 4; r++)
            for (int s = 0; s < 4; s++) {
                const int64_t h = 2 * i - 1 + r, ww = 2 * j - 1 + s;
                p[r][s] = h >= 0 && h < g->H && ww >= 0 && ww < g->W ? x + ((n * g->H + h) * g->W + ww) * C : zero;
            }
        clv_bf16 *o = v + q * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) {
            float t_[4][4];
            for (int s = 0; s < 4; s++) { /* B^T d: rows */
                const float d0 = p[0][s][c], d1 = p[1][s][c], d2 = p[2][s][c], d3 = p[3][s][c];
                t_[0][s] = d0 - d2;
                t_[1][s] = d1 + d2;
                t_[2][s] = d2 - d1;
                t_[3][s] = d1 - d3;
            }
            for (int r = 0; r < 4; r++) { /* (B^T d) B: columns */
                o[(4 * r + 0) * es + c] = clv_bf16_from_float(t_[r][0] - t_[r][2]);
                o[(4 * r + 1) * es + c] = clv_bf16_from_float(t_[r][1] + t_[r][2]);
                o[(4 * r + 2) * es + c] = clv_bf16_from_float(t_[r][2] - t_[r][1]);
                o[(4 * r + 3) * es + c] = clv_bf16_from_float(t_[r][1] - t_[r][3]);
            }
        }
    }
}

/* o00 .. o11 = A^T M A of channel c (mm: the tile's products, e-stride es), as straight code (the
 * loops around it vectorize) */
#define TILE_OUT(mm, es, c)                                                                                             \
    const float *m_ = (mm) + (c);                                                                                    \
    const float r00 = m_[0] + m_[4 * (es)] + m_[8 * (es)], r01 = m_[1 * (es)] + m_[5 * (es)] + m_[9 * (es)],          \
                r02 = m_[2 * (es)] + m_[6 * (es)] + m_[10 * (es)], r03 = m_[3 * (es)] + m_[7 * (es)] + m_[11 * (es)];  \
    const float r10 = m_[4 * (es)] - m_[8 * (es)] - m_[12 * (es)], r11 = m_[5 * (es)] - m_[9 * (es)] - m_[13 * (es)],  \
                r12 = m_[6 * (es)] - m_[10 * (es)] - m_[14 * (es)], r13 = m_[7 * (es)] - m_[11 * (es)] - m_[15 * (es)]; \
    const float o00 = r00 + r01 + r02, o01 = r01 - r02 - r03, o10 = r10 + r11 + r12, o11 = r11 - r12 - r13

/* max(0, v) when relu, keeping NaN (as oneDNN's ReLU post-op) */
#define RELU(v) (relu && (v) < 0.0f ? 0.0f : (v))

/* y's 2x2 tiles t0 .. t0 + nt = ep(A^T M A) (m: the chunk's products, e-stride es; ep may be NULL,
 * its res may be y) */
static void output_transform(float *y, const float *restrict m, int64_t es, const geom *g, int64_t C, int64_t t0,
                             int64_t nt, const clv_wino_epilogue *ep)
{
    const float *bias = ep ? ep->bias : NULL, *res = ep ? ep->res : NULL;
    const int relu = ep && ep->relu;
#pragma omp parallel for schedule(static) if (nt * C > 16384)
    for (int64_t q = 0; q < nt; q++) {
        int64_t n, i, j;
        tile_at(g, t0 + q, &n, &i, &j);
        /* the tile's pixels; one past the edge is its neighbour inside, written after it in the order
         * a11, a01, a10, p00, so each pixel ends with its own value */
        const int64_t p00 = ((n * g->H + 2 * i) * g->W + 2 * j) * C, right = 2 * j + 1 < g->W ? C : 0,
                      down = 2 * i + 1 < g->H ? g->W * C : 0;
        const int64_t a01 = p00 + right, a10 = p00 + down, a11 = p00 + down + right;
        const float *mm = m + q * C;
        if (!ep) {
#pragma omp simd
            for (int64_t c = 0; c < C; c++) {
                TILE_OUT(mm, es, c);
                y[a11 + c] = o11;
                y[a01 + c] = o01;
                y[a10 + c] = o10;
                y[p00 + c] = o00;
            }
        } else if (!res) {
#pragma omp simd
            for (int64_t c = 0; c < C; c++) {
                TILE_OUT(mm, es, c);
                y[a11 + c] = RELU(o11 + bias[c]);
                y[a01 + c] = RELU(o01 + bias[c]);
                y[a10 + c] = RELU(o10 + bias[c]);
                y[p00 + c] = RELU(o00 + bias[c]);
            }
        } else {
#pragma omp simd
            for (int64_t c = 0; c < C; c++) {
                TILE_OUT(mm, es, c);
                /* all of res read before y is written: res may be y */
                const float v00 = o00 + bias[c] + res[p00 + c], v01 = o01 + bias[c] + res[a01 + c],
                            v10 = o10 + bias[c] + res[a10 + c], v11 = o11 + bias[c] + res[a11 + c];
                y[a11 + c] = RELU(v11);
                y[a01 + c] = RELU(v01);
                y[a10 + c] = RELU(v10);
                y[p00 + c] = RELU(v00);
            }
        }
    }
}

/* dM[e][t - t0][.] = bf16(A dy A^T) for tiles t0 .. t0 + nt of dy [B H W x C] (zeros past the edge) */
static void gradient_transform(clv_bf16 *restrict dm, int64_t es, const float *restrict dy,
                               const float *restrict zero, const geom *g, int64_t C, int64_t t0, int64_t nt)
{
#pragma omp parallel for schedule(static) if (nt * C > 16384)
    for (int64_t q = 0; q < nt; q++) {
        int64_t n, i, j;
        tile_at(g, t0 + q, &n, &i, &j);
        const float *p[2][2];
        for (int r = 0; r < 2; r++)
            for (int s = 0; s < 2; s++) {
                const int64_t h = 2 * i + r, ww = 2 * j + s;
                p[r][s] = h < g->H && ww < g->W ? dy + ((n * g->H + h) * g->W + ww) * C : zero;
            }
        clv_bf16 *o = dm + q * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) {
            float t_[4][2];
            for (int s = 0; s < 2; s++) { /* A dy: rows */
                const float a = p[0][s][c], b = p[1][s][c];
                t_[0][s] = a;
                t_[1][s] = a + b;
                t_[2][s] = a - b;
                t_[3][s] = -b;
            }
            for (int r = 0; r < 4; r++) { /* (A dy) A^T: columns */
                o[(4 * r + 0) * es + c] = clv_bf16_from_float(t_[r][0]);
                o[(4 * r + 1) * es + c] = clv_bf16_from_float(t_[r][0] + t_[r][1]);
                o[(4 * r + 2) * es + c] = clv_bf16_from_float(t_[r][0] - t_[r][1]);
                o[(4 * r + 3) * es + c] = clv_bf16_from_float(-t_[r][1]);
            }
        }
    }
}

static int need_onednn(clv_compute *c, clv_err *err)
{
    return clv_compute_bf16_onednn(c) ? 0 : clv_errf(err, "a bf16 Winograd convolution needs bf16 on oneDNN");
}

int clv_wino_bf16_conv(clv_compute *c, clv_wino_bf16 *w, float *y, const float *x, int64_t B, int64_t H, int64_t W,
                       int64_t ci, int64_t co, const clv_wino_epilogue *ep, clv_err *err)
{
    if (need_onednn(c, err))
        return -1;
    if (!w->u || w->u_ci != ci || w->u_co != co)
        return clv_errf(err, "a Winograd convolution of %lld -> %lld channels without its weight", (long long)ci,
                        (long long)co);
    const geom g = geometry(B, H, W);
    const int64_t T = chunk_tiles(&g, NE * (ci * 2 + co * 4), CLV_WINO_CHUNK_BYTES);
    const float *zero = zero_pixel(w, ci, err);
    if (!zero || grow((void **)&w->v, &w->v_cap, (size_t)(NE * T * ci), sizeof(clv_bf16), err) ||
        grow((void **)&w->m, &w->m_cap, (size_t)(NE * T * co), sizeof(float), err))
        return -1;
    for (int64_t t0 = 0; t0 < g.tiles; t0 += T) {
        const int64_t nt = g.tiles - t0 < T ? g.tiles - t0 : T;
        input_transform(w->v, T * ci, x, zero, &g, ci, t0, nt);
        const clv_bmm_shape sh = {.nb = 1, .nh = NE, .M = nt, .N = co, .K = ci,
                                  .as = {NE * T * ci, T * ci, ci, 1}, .bs = {NE * ci * co, ci * co, co, 1},
                                  .cs = {NE * T * co, T * co, co, 1}};
        if (clv_compute_bmm(c, &sh, 1.0f, w->v, w->u, w->m, 0, err))
            return -1;
        output_transform(y, w->m, T * co, &g, co, t0, nt, ep);
    }
    return 0;
}

int clv_wino_bf16_dweight(clv_compute *c, clv_wino_bf16 *w, float *dW, const float *x, const float *dy, int64_t B,
                          int64_t H, int64_t W, int64_t cin, int64_t cout, clv_err *err)
{
    if (need_onednn(c, err))
        return -1;
    const geom g = geometry(B, H, W);
    /* each chunk adds its dU into the sum (a pass over 16 cin cout floats): chunks of at least
     * twice that */
    const int64_t du_bytes = NE * cin * cout * (int64_t)sizeof(float);
    const int64_t T = chunk_tiles(&g, NE * (cin + cout) * 2,
                                  2 * du_bytes > CLV_WINO_CHUNK_BYTES ? 2 * du_bytes : CLV_WINO_CHUNK_BYTES);
    const float *zero = zero_pixel(w, cin > cout ? cin : cout, err);
    if (!zero || grow((void **)&w->v, &w->v_cap, (size_t)(NE * T * cin), sizeof(clv_bf16), err) ||
        grow((void **)&w->dm, &w->dm_cap, (size_t)(NE * T * cout), sizeof(clv_bf16), err) ||
        grow((void **)&w->du, &w->du_cap, (size_t)(NE * cin * cout), sizeof(float), err))
        return -1;
    /* dU[e] [cin x cout] = sum over chunks of V[e]^T dM[e], added in chunk order */
    for (int64_t t0 = 0; t0 < g.tiles; t0 += T) {
        const int64_t nt = g.tiles - t0 < T ? g.tiles - t0 : T;
        input_transform(w->v, T * cin, x, zero, &g, cin, t0, nt);
        gradient_transform(w->dm, T * cout, dy, zero, &g, cout, t0, nt);
        const clv_bmm_shape sh = {.nb = 1, .nh = NE, .M = cin, .N = cout, .K = nt,
                                  .as = {NE * T * cin, T * cin, 1, cin}, .bs = {NE * T * cout, T * cout, cout, 1},
                                  .cs = {NE * cin * cout, cin * cout, cout, 1}, .accumulate = t0 > 0};
        if (clv_compute_bmm(c, &sh, 1.0f, w->v, w->dm, w->du, 0, err))
            return -1;
    }
    /* dW[o][i] = G^T dU[.][i][o] G: for each i, a vectorized pass over o into a row of gradients
     * kept in cin order per o */
    const float *du = w->du;
    const int64_t es = cin * cout;
#pragma omp parallel for schedule(static) if (cin * cout > 4096)
    for (int64_t i = 0; i < cin; i++) {
#pragma omp simd
        for (int64_t o = 0; o < cout; o++)
            filter_transform_adjoint(dW + (o * cin + i) * 9, du + i * cout + o, es);
    }
    return 0;
}
