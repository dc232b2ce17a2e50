/* The attention core of a transformer block: what sits between its qkv and
 * proj linears, behind one small vtable, so that one block serves ViT and
 * Swin (clvit/transformer_block.h).
 *
 *  - global:    every token attends to every token of its image (ViT);
 *  - class_row: only the class token's query (row 0 of each image): the last
 *               block of a class-token ViT, since nothing else reaches the head;
 *  - windowed:  Swin's W-MSA: ws x ws windows of the grid rolled by -shift,
 *               scores + the relative position bias (a parameter of the core)
 *               + the shifted-window mask. The roll, the partition and their
 *               reverse are an index the kernels read through, so the token
 *               matrices stay in image order.
 *
 * qkv [B T x 3C] in timm's (3, heads, hd) layout; the output has out_rows(B)
 * rows of C (B T, or B for the class row: row b is image b's token 0). */
#ifndef CLVIT_ATTENTION_CORE_H
#define CLVIT_ATTENTION_CORE_H

#include "clvit/builder.h"
#include "clvit/precision.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_attn_core clv_attn_core;

typedef struct clv_attn_core_ops {
    const char *kind;
    int64_t (*out_rows)(const clv_attn_core *c, int64_t B);
    /* Floats of the probabilities a forward over B images keeps (training)
     * or needs as a buffer (inference); 0: none. */
    int64_t (*att_floats)(const clv_attn_core *c, int64_t B, int training);
    /* (optional) Floats of the probabilities that the backward recomputes,
     * with forward, into a buffer all blocks share (the output too), instead
     * of a training forward keeping them; NULL: kept as att_floats says. */
    int64_t (*recomputed_att_floats)(const clv_attn_core *c, int64_t B);
    /* Floats of scratch its forward, output and backward need over B images. */
    int64_t (*scratch_floats)(const clv_attn_core *c, int64_t B);
    /* out = attention(qkv); att as sized by att_floats (may be NULL when 0). */
    void (*forward)(clv_attn_core *c, float *out, float *att, const float *qkv, int64_t B, float *scratch);
    /* (optional) out again from the kept att, the same floats as the forward's;
     * NULL: the block keeps the output instead (unless the core recomputes
     * both, recomputed_att_floats). */
    void (*output)(const clv_attn_core *c, float *out, const float *att, const float *qkv, int64_t B, float *scratch);
    /* dqkv [B T x 3C] overwritten from dout [out_rows x C]; may consume att;
     * accumulates the gradients of the core's own trainable parameters. */
    void (*backward)(clv_attn_core *c, float *dqkv, const float *dout, const float *qkv, float *att, int64_t B,
                     float *scratch);
    /* (optional) the forward writing its output in bf16 only (outh; clvit/kernels.h's
     * clv_attention_forward_h): for a plain proj layer in bf16 that keeps it for its backward. */
    void (*forward_h)(clv_attn_core *c, clv_bf16 *outh, float *att, const float *qkv, int64_t B, float *scratch);
    /* (optional) the backward writing dqkv in bf16 only (dqkvh) and adding its column sums to
     * colsum (may be NULL) over parts [B x 3C] (clvit/kernels.h's clv_attention_backward_h): for a
     * plain qkv layer in bf16, which reads nothing else of dqkv. */
    void (*backward_h)(clv_attn_core *c, clv_bf16 *dqkvh, float *colsum, float *parts, const float *dout,
                       const float *qkv, float *att, int64_t B, float *scratch);
    /* (optional) the forward with its products in bf16 (clvit/kernels.h's
     * clv_attention_forward_bf16) on the context cc: qkvh is qkv in bf16, out is written in fp32
     * and/or bf16 (outh; either may be NULL). A block uses it for inference in bf16 on oneDNN
     * when its qkv layer is plain. 0, or -1 with err set. */
    int (*forward_bf16)(clv_attn_core *c, clv_compute *cc, float *out, clv_bf16 *outh, float *att,
                        const clv_bf16 *qkvh, int64_t B, clv_err *err);
    /* (optional) 1 when a parameter of the core trains */
    int (*trains)(const clv_attn_core *c);
    /* (optional) frees the core's state */
    void (*free)(clv_attn_core *c);
} clv_attn_core_ops;

struct clv_attn_core {
    const clv_attn_core_ops *ops;
    int64_t T, C, heads; /* tokens per image, width, heads */
    void *state;         /* the windowed core's */
};

typedef enum { CLV_ATTN_GLOBAL = 0, CLV_ATTN_CLASS_ROW, CLV_ATTN_WINDOWED } clv_attn_kind;

typedef struct clv_attn_spec {
    clv_attn_kind kind;
    /* windowed: the grid (T = grid_h grid_w), window size and shift (0: none) */
    int64_t grid_h, grid_w, window, shift;
} clv_attn_spec;

/* Builds the core for T tokens of width C in `heads` heads; the windowed
 * core registers "<scope>.relative_position_bias_table" [(2ws-1)^2 x heads]
 * (truncated normal, std 0.02). -1 with b's err set on failure. */
int clv_attn_core_build(clv_attn_core *c, clv_builder *b, const clv_attn_spec *spec, int64_t T, int64_t C,
                        int64_t heads);
void clv_attn_core_free(clv_attn_core *c);
static inline int clv_attn_core_trains(const clv_attn_core *c) { return c->ops->trains && c->ops->trains(c); }

#ifdef __cplusplus
}
#endif
#endif
