/* The Swin Transformer: its kernels (shifted-window indices, the attention
 * mask, windowed attention with a relative position bias) against their
 * definitions and finite differences, the whole backbone against PyTorch
 * (tools/make_swin_fixtures.py: timm 0.6's semantics), and the names and
 * shapes of timm's swin_tiny_patch4_window7_224. */
#include <criterion/criterion.h>

#include "clvit/kernels.h"
#include "clvit/kernels_swin.h"
#include "clvit/model.h"
#include "clvit/safetensors.h"
#include "fixture_tensors.h"
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MICRO "tests/fixtures/swin_micro.safetensors"
static const clv_swin_config micro_cfg = {16, 2, 3, 8, 4, 2, {2, 2}, {2, 4}};

static float *fzeros(int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    cr_assert(p);
    return p;
}

/* ---- indices and mask against their definitions ---- */

Test(swin, window_index_is_roll_then_partition)
{
    const int64_t B = 2, H = 8, W = 12, ws = 4, s = 2;
    int32_t *idx = malloc((size_t)(B * H * W) * sizeof *idx);
    clv_swin_window_index(idx, B, H, W, ws, s);
    /* rolled[y][x] = img[(y + s) % H][(x + s) % W]; windows (b, wy, wx), tokens (iy, ix) */
    int64_t r = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t wy = 0; wy < H / ws; wy++)
            for (int64_t wx = 0; wx < W / ws; wx++)
                for (int64_t iy = 0; iy < ws; iy++)
                    for (int64_t ix = 0; ix < ws; ix++, r++) {
                        const int64_t y = (wy * ws + iy + s) % H, x = (wx * ws + ix + s) % W;
                        cr_assert_eq(idx[r], (b * H + y) * W + x, "row %lld", (long long)r);
                    }
    /* a permutation: the reverse is the scatter by the same index */
    char *seen = calloc((size_t)(B * H * W), 1);
    for (int64_t i = 0; i < B * H * W; i++) {
        cr_assert_not(seen[idx[i]], "pixel %d twice", idx[i]);
        seen[idx[i]] = 1;
    }
    free(seen);
    free(idx);
}

Test(swin, merge_index_is_timms_concat_order)
{
    int32_t idx[2 * 2 * 2 * 4];
    clv_swin_merge_index(idx, 2, 4, 4);
    /* image 1, output (1, 0): x0 = (2, 0), x1 = (3, 0), x2 = (2, 1), x3 = (3, 1) */
    const int32_t *r = idx + 4 * (4 + 2);
    cr_expect_eq(r[0], 16 + 2 * 4 + 0);
    cr_expect_eq(r[1], 16 + 3 * 4 + 0);
    cr_expect_eq(r[2], 16 + 2 * 4 + 1);
    cr_expect_eq(r[3], 16 + 3 * 4 + 1);
}

Test(swin, relative_index_and_mask)
{
    int32_t ri[16 * 16];
    clv_swin_relative_index(ri, 4);
    /* token i = (y, x): index = (yi - yj + 3) * 7 + (xi - xj + 3) */
    cr_expect_eq(ri[0 * 16 + 0], 3 * 7 + 3);
    cr_expect_eq(ri[5 * 16 + 0], (1 + 3) * 7 + (1 + 3));
    cr_expect_eq(ri[0 * 16 + 15], (0 - 3 + 3) * 7 + (0 - 3 + 3));
    /* 8x8 grid, window 4, shift 2: 4 windows; window 0 is one region, window 3 has four */
    float *mask = fzeros(4 * 16 * 16);
    clv_swin_attention_mask(mask, 8, 8, 4, 2);
    for (int64_t t = 0; t < 256; t++)
        cr_assert_eq(mask[t], 0.0f, "window 0 lies in one region");
    const float *m3 = mask + 3 * 256;
    cr_expect_eq(m3[0 * 16 + 1], 0.0f, "(0,0) and (0,1) of window 3: same region");
    cr_expect_eq(m3[0 * 16 + 2], -100.0f, "(0,0) and (0,2): across the shift");
    cr_expect_eq(m3[0 * 16 + 8], -100.0f, "(0,0) and (2,0)");
    cr_expect_eq(m3[10 * 16 + 15], 0.0f, "(2,2) and (3,3)");
    free(mask);
}

/* ---- windowed attention: forward by definition, backward by finite differences ---- */

typedef struct wa_ctx {
    float *qkv, *table, *mask, *bias, *out, *att, *r, *scratch;
    int32_t *ri;
    int64_t Bw, N, C, H, nW;
} wa_ctx;

static double wa_loss(void *p)
{
    wa_ctx *c = p;
    clv_window_bias_forward(c->bias, c->table, c->ri, c->N, c->H);
    clv_window_attention_forward(c->out, c->att, c->qkv, c->bias, c->mask, NULL, c->nW, c->Bw, c->N, c->C, c->H,
                                 c->scratch);
    return gradcheck_dot(c->out, c->r, c->Bw * c->N * c->C);
}

Test(swin, window_attention_forward_and_gradients)
{
    wa_ctx c = {.Bw = 4, .N = 4, .C = 6, .H = 2, .nW = 2};
    const int64_t ws = 2, T = (2 * ws - 1) * (2 * ws - 1);
    c.qkv = fzeros(c.Bw * c.N * 3 * c.C), c.table = fzeros(T * c.H), c.mask = fzeros(c.nW * c.N * c.N);
    c.bias = fzeros(c.H * c.N * c.N), c.out = fzeros(c.Bw * c.N * c.C), c.att = fzeros(c.Bw * c.H * c.N * c.N);
    c.r = fzeros(c.Bw * c.N * c.C);
    c.scratch = fzeros(clv_window_attention_scratch_floats(c.N, c.C, c.H));
    c.ri = malloc((size_t)(c.N * c.N) * sizeof *c.ri);
    clv_swin_relative_index(c.ri, ws);
    gradcheck_fill(c.qkv, c.Bw * c.N * 3 * c.C, 1, -1, 1);
    gradcheck_fill(c.table, T * c.H, 2, -0.5f, 0.5f);
    gradcheck_fill(c.r, c.Bw * c.N * c.C, 3, -1, 1);
    for (int64_t t = 0; t < c.nW * c.N * c.N; t++) /* a mask with a -100 pattern on window 1 */
        c.mask[t] = t >= c.N * c.N && (t % 3 == 0) && (t % (c.N + 1)) ? -100.0f : 0.0f;
    wa_loss(&c);
    /* forward by definition: window 3 (mask 1), head 1, query 2 */
    {
        const int64_t w = 3, h = 1, i = 2, hd = c.C / c.H;
        double s[4], mx = -1e30, z = 0;
        for (int64_t j = 0; j < c.N; j++) {
            double d = 0;
            for (int64_t e = 0; e < hd; e++)
                d += (double)c.qkv[(w * c.N + i) * 3 * c.C + h * hd + e] *
                     c.qkv[(w * c.N + j) * 3 * c.C + c.C + h * hd + e];
            s[j] = d / sqrt((double)hd) + c.table[c.ri[i * c.N + j] * c.H + h] + c.mask[(w % 2) * 16 + i * 4 + j];
            mx = fmax(mx, s[j]);
        }
        for (int64_t j = 0; j < c.N; j++)
            z += exp(s[j] - mx);
        for (int64_t e = 0; e < hd; e++) {
            double o = 0;
            for (int64_t j = 0; j < c.N; j++)
                o += exp(s[j] - mx) / z * c.qkv[(w * c.N + j) * 3 * c.C + 2 * c.C + h * hd + e];
            cr_expect(fabs(c.out[(w * c.N + i) * c.C + h * hd + e] - o) < 1e-5, "out[%lld] %g vs %g", (long long)e,
                      c.out[(w * c.N + i) * c.C + h * hd + e], o);
        }
    }
    float *dqkv = fzeros(c.Bw * c.N * 3 * c.C), *dS = fzeros(c.Bw * c.H * c.N * c.N), *dtable = fzeros(T * c.H);
    float *scratch = c.scratch;
    clv_window_attention_backward(dqkv, dS, c.r, c.qkv, c.att, NULL, c.nW, c.Bw, c.N, c.C, c.H, scratch);
    double *sums = calloc((size_t)(c.H * c.N * c.N), sizeof(double));
    clv_window_bias_backward(dtable, dS, c.ri, c.Bw, c.N, c.H, sums);
    free(sums);
    gradcheck_result res;
    char buf[160];
    cr_assert_eq(gradcheck_run(c.qkv, dqkv, c.Bw * c.N * 3 * c.C, wa_loss, &c, NULL, &res), 0);
    cr_expect(res.max_rel < 1e-2, "dqkv: %s", gradcheck_str(&res, buf, sizeof buf));
    cr_assert_eq(gradcheck_run(c.table, dtable, T * c.H, wa_loss, &c, NULL, &res), 0);
    cr_expect(res.max_rel < 1e-2, "relative position bias table: %s", gradcheck_str(&res, buf, sizeof buf));
    /* without dS: the same dqkv through the per-thread scratch */
    float *d2 = fzeros(c.Bw * c.N * 3 * c.C);
    wa_loss(&c);
    clv_window_attention_backward(d2, NULL, c.r, c.qkv, c.att, NULL, c.nW, c.Bw, c.N, c.C, c.H, scratch);
    cr_expect_eq(memcmp(d2, dqkv, (size_t)(c.Bw * c.N * 3 * c.C) * sizeof(float)), 0);
    free(c.qkv), free(c.table), free(c.mask), free(c.bias), free(c.out), free(c.att), free(c.r), free(c.ri);
    free(dqkv), free(dS), free(dtable), free(scratch), free(d2);
}

Test(swin, gather_and_scatter_are_adjoint)
{
    const int64_t R = 24, C = 5;
    int32_t idx[24];
    int64_t perm[24];
    clv_rng_permutation(9, perm, R);
    for (int i = 0; i < R; i++)
        idx[i] = (int32_t)perm[i];
    float *x = fzeros(R * C), *c = fzeros(R * C), *y = fzeros(R * C), *dx = fzeros(R * C);
    gradcheck_fill(x, R * C, 4, -1, 1);
    gradcheck_fill(c, R * C, 5, -1, 1);
    clv_rows_gather(y, x, idx, R, C);
    clv_rows_scatter_add(dx, c, idx, R, C);
    cr_expect(fabs(gradcheck_dot(y, c, R * C) - gradcheck_dot(x, dx, R * C)) < 1e-5);
    free(x), free(c), free(y), free(dx);
}

/* ---- the backbone against PyTorch ---- */

Test(swin, micro_matches_pytorch)
{
    clv_safetensors st;
    clv_err err = {{0}};
    cr_assert_eq(clv_st_open(&st, MICRO, &err), 0, "%s", err.msg);
    clv_model *m = clv_swin_create("swin_micro", &micro_cfg, &err);
    cr_assert(m, "%s", err.msg);
    cr_assert_eq(clv_st_load_params(&st, &m->params, NULL, 0, &err), 0, "%s", err.msg);
    const int64_t nx = 2 * 3 * 16 * 16;
    float *x = read_tensor(&st, "x", nx), *R = read_tensor(&st, "R", 32), *ref = read_tensor(&st, "feats", 32);
    float feats[32], *dx = fzeros(nx);
    for (int i = 0; i < m->params.count; i++)
        cr_assert_eq(clv_param_set_trainable(m->params.items[i], 1, &err), 0);
    clv_params_zero_grad(&m->params);
    cr_assert_eq(m->ops->forward(m, x, 2, feats, &err), 0, "%s", err.msg);
    double d = rel_diff(feats, ref, 32, 1e-3);
    cr_expect(d < 1e-5, "features differ from PyTorch by %.3g (relative)", d);
    cr_assert_eq(m->ops->backward(m, R, dx, &err), 0, "%s", err.msg);
    char name[CLV_NAME_LEN + 8];
    for (int i = 0; i < m->params.count; i++) {
        clv_param *p = m->params.items[i];
        snprintf(name, sizeof name, "grad.%s", p->name);
        float *g = read_tensor(&st, name, p->numel);
        d = rel_diff(p->grad, g, p->numel, 1e-6);
        cr_expect(d < 1e-4, "%s: relative error %.3g", name, d);
        free(g);
    }
    float *gx = read_tensor(&st, "grad.x", nx);
    d = rel_diff(dx, gx, nx, 1e-6);
    cr_expect(d < 1e-4, "grad.x: relative error %.3g", d);
    /* inference (training = 0) gives the same features */
    float f2[32];
    m->training = 0;
    cr_assert_eq(m->ops->forward(m, x, 2, f2, &err), 0, "%s", err.msg);
    cr_expect_eq(memcmp(f2, feats, sizeof f2), 0);
    free(gx), free(x), free(R), free(ref), free(dx);
    clv_model_free(m);
    clv_st_close(&st);
}

Test(swin, swin_tiny_has_timms_names_and_shapes)
{
    clv_err err = {{0}};
    clv_model *m = clv_model_create("swin_tiny_patch4_window7_224", &err);
    cr_assert(m, "%s", err.msg);
    FILE *f = fopen("tests/fixtures/swin_tiny_state_dict.txt", "r");
    cr_assert(f);
    char line[256], name[CLV_NAME_LEN];
    long long d[4];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        d[0] = d[1] = d[2] = d[3] = 0;
        const int nd = sscanf(line, "%95s %lld %lld %lld %lld", name, &d[0], &d[1], &d[2], &d[3]) - 1;
        /* buffers clvit computes (and ignores when loading), and the head */
        if (strstr(name, "relative_position_index") || strstr(name, "attn_mask") || !strncmp(name, "head.", 5))
            continue;
        cr_assert_lt(n, m->params.count, "more tensors in timm than in clvit: %s", name);
        const clv_param *p = m->params.items[n++];
        cr_expect_str_eq(p->name, name, "tensor %d", n);
        cr_expect_eq(p->ndim, nd, "%s ndim", name);
        for (int i = 0; i < nd; i++)
            cr_expect_eq(p->shape[i], d[i], "%s dim %d", name, i);
    }
    fclose(f);
    cr_expect_eq(n, m->params.count);
    cr_expect_eq(m->info.feat_dim, 768);
    /* 4.5 G multiply-adds per 224x224 image (timm's table) */
    cr_expect(fabs(m->info.flops_per_image / 2 - 4.49e9) < 0.05e9, "%g", m->info.flops_per_image);
    clv_model_free(m);
}
