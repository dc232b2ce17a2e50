/* The three attention cores of clvit/attention_core.h over the kernels of
 * clvit/kernels.h (global, class row) and clvit/kernels_swin.h (windowed). */
#include "clvit/attention_core.h"
#include "clvit/kernels.h"
#include "clvit/kernels_swin.h"

#include <stdlib.h>

/* ---- global: every token of an image attends to every token ---- */

static int64_t all_rows(const clv_attn_core *c, int64_t B) { return B * c->T; }

static int64_t global_att(const clv_attn_core *c, int64_t B, int training) { return B * c->heads * c->T * c->T; }

static int64_t global_scratch(const clv_attn_core *c, int64_t B)
{
    return clv_attention_scratch_floats(B, c->T, c->C, c->heads);
}

static void global_forward(clv_attn_core *c, float *out, float *att, const float *qkv, int64_t B, float *scratch)
{
    clv_attention_forward(out, att, qkv, B, c->T, c->C, c->heads, scratch);
}

static void global_output(const clv_attn_core *c, float *out, const float *att, const float *qkv, int64_t B,
                          float *scratch)
{
    clv_attention_output(out, att, qkv, B, c->T, c->C, c->heads);
}

static void global_backward(clv_attn_core *c, float *dqkv, const float *dout, const float *qkv, float *att, int64_t B,
                            float *scratch)
{
    clv_attention_backward(dqkv, dout, qkv, att, B, c->T, c->C, c->heads, scratch);
}

static void global_forward_h(clv_attn_core *c, clv_bf16 *outh, float *att, const float *qkv, int64_t B, float *scratch)
{
    clv_attention_forward_h(outh, att, qkv, B, c->T, c->C, c->heads, scratch);
}

static void global_backward_h(clv_attn_core *c, clv_bf16 *dqkvh, float *colsum, float *parts, const float *dout,
                              const float *qkv, float *att, int64_t B, float *scratch)
{
    clv_attention_backward_h(dqkvh, colsum, parts, dout, qkv, att, B, c->T, c->C, c->heads, scratch);
}

static int global_forward_bf16(clv_attn_core *c, clv_compute *cc, float *out, clv_bf16 *outh, float *att,
                               const clv_bf16 *qkvh, int64_t B, clv_err *err)
{
    return clv_attention_forward_bf16(cc, out, outh, att, qkvh, B, c->T, c->C, c->heads, err);
}

static const clv_attn_core_ops global_ops = {
    .kind = "global",
    .out_rows = all_rows,
    .att_floats = global_att,
    .scratch_floats = global_scratch,
    .forward = global_forward,
    .output = global_output,
    .backward = global_backward,
    .forward_h = global_forward_h,
    .backward_h = global_backward_h,
    .forward_bf16 = global_forward_bf16,
};

/* ---- class row: the class token's query only; small enough to keep its output ---- */

static int64_t one_row(const clv_attn_core *c, int64_t B) { return B; }

static int64_t no_floats(const clv_attn_core *c, int64_t B) { return 0; }

static int64_t no_att(const clv_attn_core *c, int64_t B, int training) { return 0; }

static void class_forward(clv_attn_core *c, float *out, float *att, const float *qkv, int64_t B, float *scratch)
{
    clv_attention_cls_forward(out, qkv, B, c->T, c->C, c->heads);
}

static void class_backward(clv_attn_core *c, float *dqkv, const float *dout, const float *qkv, float *att, int64_t B,
                           float *scratch)
{
    clv_attention_cls_backward(dqkv, dout, qkv, B, c->T, c->C, c->heads);
}

static const clv_attn_core_ops class_row_ops = {
    .kind = "class_row",
    .out_rows = one_row,
    .att_floats = no_att,
    .scratch_floats = no_floats,
    .forward = class_forward,
    .backward = class_backward,
};

/* ---- windowed: Swin's W-MSA with the relative position bias and the shift mask ---- */

typedef struct windowed {
    int64_t ws, shift, N, nW; /* window size, shift, tokens per window, windows per image */
    clv_param *table;         /* relative_position_bias_table [(2ws-1)^2 x heads] */
    int32_t *relidx;          /* [N N] */
    float *mask;              /* [nW N N], NULL without a shift */
    float *bias;              /* [heads N N], formed from the table at each forward */
    int32_t *idx;             /* [T]: the rows of one image's windows (roll, then partition) */
    double *bias_sums;        /* [heads N N]: the table backward's */
} windowed;

/* no forward keeps probabilities: each (window, head) pair's live in the scratch */
static int64_t win_att(const clv_attn_core *c, int64_t B, int training) { return 0; }

/* The backward forms the probabilities and the output again from qkv, bit for bit (the same kernel
 * on the same floats), into buffers all blocks share: keeping them cost 1 + heads ws^2 / C floats a
 * token per block, 30% of swin_tiny's training activations, for about 1% more FLOPs a step. */
static int64_t win_recomputed_att(const clv_attn_core *c, int64_t B)
{
    const windowed *w = c->state;
    return B * w->nW * c->heads * w->N * w->N;
}

static int64_t win_scratch(const clv_attn_core *c, int64_t B)
{
    const windowed *w = c->state;
    return clv_window_attention_scratch_floats(w->N, c->C, c->heads);
}

static void win_forward(clv_attn_core *c, float *out, float *att, const float *qkv, int64_t B, float *scratch)
{
    windowed *w = c->state;
    clv_window_bias_forward(w->bias, w->table->data, w->relidx, w->N, c->heads);
    clv_window_attention_forward(out, att, qkv, w->bias, w->mask, w->idx, w->nW, B * w->nW, w->N, c->C, c->heads,
                                 scratch);
}

static void win_backward(clv_attn_core *c, float *dqkv, const float *dout, const float *qkv, float *att, int64_t B,
                         float *scratch)
{
    windowed *w = c->state;
    const int table = w->table->trainable;
    /* the scores' gradient (the bias's) goes over the spent probabilities */
    clv_window_attention_backward(dqkv, table ? att : NULL, dout, qkv, att, w->idx, w->nW, B * w->nW, w->N, c->C,
                                  c->heads, scratch);
    if (table)
        clv_window_bias_backward(w->table->grad, att, w->relidx, B * w->nW, w->N, c->heads, w->bias_sums);
}

static int win_trains(const clv_attn_core *c) { return ((const windowed *)c->state)->table->trainable; }

static void win_free(clv_attn_core *c)
{
    windowed *w = c->state;
    if (w) {
        free(w->relidx);
        free(w->mask);
        free(w->bias);
        free(w->idx);
        free(w->bias_sums);
        free(w);
    }
    c->state = NULL;
}

static const clv_attn_core_ops windowed_ops = {
    .kind = "windowed",
    .out_rows = all_rows,
    .att_floats = win_att,
    .recomputed_att_floats = win_recomputed_att,
    .scratch_floats = win_scratch,
    .forward = win_forward,
    .backward = win_backward,
    .trains = win_trains,
    .free = win_free,
};

static int build_windowed(clv_attn_core *c, clv_builder *b, const clv_attn_spec *s)
{
    const int64_t H = s->grid_h, W = s->grid_w, ws = s->window, heads = c->heads;
    if (ws <= 0 || H % ws || W % ws || s->shift < 0 || s->shift >= ws || H * W != c->T)
        return clv_errf(b->err, "%s: a %lldx%lld grid of %lld tokens cannot be cut into %lldx%lld windows shifted by %lld",
                        b->m->info.name, (long long)H, (long long)W, (long long)c->T, (long long)ws, (long long)ws,
                        (long long)s->shift);
    windowed *w = calloc(1, sizeof *w);
    if (!w)
        return clv_errf(b->err, "%s: out of memory", b->m->info.name);
    c->state = w;
    w->ws = ws, w->shift = s->shift, w->N = ws * ws, w->nW = (H / ws) * (W / ws);
    const int64_t tw = 2 * ws - 1, N = w->N;
    if (!(w->table = clv_build_param(b, "relative_position_bias_table", CLV_INIT_TRUNC_NORMAL, 0.02f, 1, 2, tw * tw,
                                     heads, 0, 0)))
        return -1;
    w->relidx = malloc((size_t)(N * N) * sizeof *w->relidx);
    w->bias = malloc((size_t)(heads * N * N) * sizeof *w->bias);
    w->bias_sums = malloc((size_t)(heads * N * N) * sizeof *w->bias_sums);
    w->idx = malloc((size_t)(H * W) * sizeof *w->idx);
    if (w->shift)
        w->mask = malloc((size_t)(w->nW * N * N) * sizeof *w->mask);
    if (!w->relidx || !w->bias || !w->bias_sums || !w->idx || (w->shift && !w->mask))
        return clv_errf(b->err, "%s: out of memory", b->m->info.name);
    clv_swin_relative_index(w->relidx, ws);
    clv_swin_window_index(w->idx, 1, H, W, ws, w->shift);
    if (w->shift)
        clv_swin_attention_mask(w->mask, H, W, ws, w->shift);
    return 0;
}

int clv_attn_core_build(clv_attn_core *c, clv_builder *b, const clv_attn_spec *spec, int64_t T, int64_t C,
                        int64_t heads)
{
    c->T = T, c->C = C, c->heads = heads, c->state = NULL;
    switch (spec->kind) {
    case CLV_ATTN_GLOBAL:
        c->ops = &global_ops;
        return 0;
    case CLV_ATTN_CLASS_ROW:
        c->ops = &class_row_ops;
        return 0;
    case CLV_ATTN_WINDOWED:
        c->ops = &windowed_ops;
        return build_windowed(c, b, spec);
    }
    return clv_errf(b->err, "%s: unknown attention core %d", b->m->info.name, (int)spec->kind);
}

void clv_attn_core_free(clv_attn_core *c)
{
    if (c->ops && c->ops->free)
        c->ops->free(c);
}
