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
/* channels of a weight transform's blocks (a cache line of bf16 U) */
#define OUT_BLOCK 32

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
    if (n <= *cap)
        return 0;
    clv_free(*p);
    *cap = 0;
    if (!(*p = clv_alloc_array(n, elem)))
        return clv_errf(err, "out of memory for a Winograd convolution's buffers (%zu values)", n);
    *cap = n;
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

/* u [16] = G g G^T, g [3][3] */
static void filter_transform(float u[NE], const float g[9])
{
    float t[4][3];
    for (int s = 0; s < 3; s++) {
        t[0][s] = g[s];
        t[1][s] = 0.5f * (g[s] + g[3 + s] + g[6 + s]);
        t[2][s] = 0.5f * (g[s] - g[3 + s] + g[6 + s]);
        t[3][s] = g[6 + s];
    }
    for (int r = 0; r < 4; r++) {
        u[4 * r + 0] = t[r][0];
        u[4 * r + 1] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
        u[4 * r + 2] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
        u[4 * r + 3] = t[r][2];
    }
}

/* g [3][3] = G^T u G, u [16] (the adjoint of filter_transform) */
static void filter_transform_adjoint(float g[9], const float u[NE])
{
    float t[3][4];
    for (int s = 0; s < 4; s++) {
        t[0][s] = u[s] + 0.5f * (u[4 + s] + u[8 + s]);
        t[1][s] = 0.5f * (u[4 + s] - u[8 + s]);
        t[2][s] = 0.5f * (u[4 + s] + u[8 + s]) + u[12 + s];
    }
    for (int r = 0; r < 3; r++) {
        g[3 * r + 0] = t[r][0] + 0.5f * (t[r][1] + t[r][2]);
        g[3 * r + 1] = 0.5f * (t[r][1] - t[r][2]);
        g[3 * r + 2] = 0.5f * (t[r][1] + t[r][2]) + t[r][3];
    }
}

int clv_wino_bf16_weight(clv_wino_bf16 *w, const float *W, int64_t cout, int64_t cin, int backward_data,
                         clv_err *err)
{
    const int64_t ci = backward_data ? cout : cin, co = backward_data ? cin : cout;
    if (grow((void **)&w->u, &w->u_cap, (size_t)(NE * ci * co), sizeof(clv_bf16), err))
        return -1;
    clv_bf16 *u = w->u;
    /* in blocks of OUT_BLOCK x OUT_BLOCK (input, output) channel pairs: each filter row of W
     * read in runs, each row of U written in runs */
    const int64_t na = (ci + OUT_BLOCK - 1) / OUT_BLOCK, nb = (co + OUT_BLOCK - 1) / OUT_BLOCK;
#pragma omp parallel for schedule(static) if (ci * co > 4096)
    for (int64_t blk = 0; blk < na * nb; blk++) {
        const int64_t a0 = blk / nb * OUT_BLOCK, b0 = blk % nb * OUT_BLOCK;
        const int64_t a1 = a0 + OUT_BLOCK < ci ? a0 + OUT_BLOCK : ci, b1 = b0 + OUT_BLOCK < co ? b0 + OUT_BLOCK : co;
        float tile[NE][OUT_BLOCK][OUT_BLOCK];
        for (int64_t a = a0; a < a1; a++)
            for (int64_t b = b0; b < b1; b++) {
                /* the filter between input channel a and output channel b */
                const float *g0 = backward_data ? W + (a * cin + b) * 9 : W + (b * cin + a) * 9;
                float g[9], e16[NE];
                for (int q = 0; q < 9; q++)
                    g[q] = backward_data ? g0[8 - q] : g0[q];
                filter_transform(e16, g);
                for (int e = 0; e < NE; e++)
                    tile[e][a - a0][b - b0] = e16[e];
            }
        for (int e = 0; e < NE; e++)
            for (int64_t a = a0; a < a1; a++)
                for (int64_t b = b0; b < b1; b++)
                    u[(e * ci + a) * co + b] = clv_bf16_from_float(tile[e][a - a0][b - b0]);
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
        const int64_t t = t0 + q, n = t / (g->th * g->tw), i = t / g->tw % g->th, j = t % g->tw;
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

/* y's 2x2 tiles t0 .. t0 + nt = A^T M A (m: the chunk's products, e-stride es) */
static void output_transform(float *restrict y, const float *restrict m, int64_t es, const geom *g, int64_t C,
                             int64_t t0, int64_t nt)
{
#pragma omp parallel for schedule(static) if (nt * C > 16384)
    for (int64_t q = 0; q < nt; q++) {
        const int64_t t = t0 + q, n = t / (g->th * g->tw), i = t / g->tw % g->th, j = t % g->tw;
        const int down = 2 * i + 1 < g->H, right = 2 * j + 1 < g->W;
        float *y00 = y + ((n * g->H + 2 * i) * g->W + 2 * j) * C, *y10 = y00 + g->W * C;
        const float *mm = m + q * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) {
            float t_[2][4];
            for (int s = 0; s < 4; s++) { /* A^T M: rows */
                const float m0 = mm[(0 + s) * es + c], m1 = mm[(4 + s) * es + c], m2 = mm[(8 + s) * es + c],
                            m3 = mm[(12 + s) * es + c];
                t_[0][s] = m0 + m1 + m2;
                t_[1][s] = m1 - m2 - m3;
            }
            y00[c] = t_[0][0] + t_[0][1] + t_[0][2];
            if (right)
                y00[C + c] = t_[0][1] - t_[0][2] - t_[0][3];
            if (down) {
                y10[c] = t_[1][0] + t_[1][1] + t_[1][2];
                if (right)
                    y10[C + c] = t_[1][1] - t_[1][2] - t_[1][3];
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
        const int64_t t = t0 + q, n = t / (g->th * g->tw), i = t / g->tw % g->th, j = t % g->tw;
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
                       int64_t ci, int64_t co, clv_err *err)
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
        output_transform(y, w->m, T * co, &g, co, t0, nt);
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
    const float *du = w->du;
    const int64_t nblk = (cout + OUT_BLOCK - 1) / OUT_BLOCK;
#pragma omp parallel for schedule(static) if (cin * cout > 4096)
    for (int64_t blk = 0; blk < nblk; blk++) {
        const int64_t o0 = blk * OUT_BLOCK, o1 = o0 + OUT_BLOCK < cout ? o0 + OUT_BLOCK : cout;
        for (int64_t i = 0; i < cin; i++)
            for (int64_t o = o0; o < o1; o++) {
                float u[NE];
                for (int e = 0; e < NE; e++)
                    u[e] = du[(e * cin + i) * cout + o];
                filter_transform_adjoint(dW + (o * cin + i) * 9, u);
            }
    }
    return 0;
}
