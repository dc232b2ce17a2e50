/* The pre-norm transformer block of ViT and Swin, forward and backward:
 *
 *   xmid = x + proj(core(qkv(norm1(x))))       xout = xmid + fc2(GELU(fc1(norm2(xmid))))
 *
 * with the attention core behind clvit/attention_core.h (global, class row,
 * windowed). x is [B T x C] (B images of T tokens); after a class-row core
 * the rest of the block runs on R = B rows (token 0 of each image).
 *
 * What the block does for every backbone that uses it:
 *  - weight layers only through clv_wlayer_* (adapters plug in unseen), with
 *    the bias, the residual add and GELU fused into the pass after each GEMM;
 *  - a training forward keeps only qkv, the core's probabilities, xmid, fc1's
 *    output h and the output (9 C + the probabilities per token; the windowed
 *    core keeps no probabilities: 9 C): the norms' outputs, GELU's, the
 *    global core's output and the windowed core's probabilities and output
 *    are recomputed by the backward from what is kept, bit for bit, into
 *    buffers shared by all blocks (in bf16 the norms' outputs and the global
 *    core's output are kept as their GEMMs' bf16 inputs instead, 3 C / 2
 *    more per token: docs/blocks.md);
 *  - the backward writes its input gradients (_into), and walks only as far
 *    down as a gradient is needed;
 *  - inference keeps nothing: all blocks share one set of buffers
 *    (clv_tblock_carve_infer).
 * Buffers come from the model's arenas (clvit/arena.h) through the carve
 * functions below, so a model lays out its own embedding, merges and head
 * around them. */
#ifndef CLVIT_TRANSFORMER_BLOCK_H
#define CLVIT_TRANSFORMER_BLOCK_H

#include "clvit/arena.h"
#include "clvit/attention_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A bf16 copy a training forward keeps in the block's own memory for the
 * backward's weight-gradient GEMM, instead of the backward forming it again. */
typedef struct clv_tblock_kept {
    clv_bf16 *h;
    size_t cap;   /* values */
    int64_t rows; /* the rows the last training forward wrote; 0: none */
} clv_tblock_kept;

typedef struct clv_tblock {
    int64_t T, C, hidden; /* tokens per image, width, MLP hidden width */
    float eps;            /* LayerNorm's */
    clv_norm norm1, norm2;
    clv_attn_core attn;
    clv_wlayer qkv, proj, fc1, fc2;
    /* In bf16 training, what the plain weight layers' weight gradients read, kept from the
     * forward in bf16 (docs/blocks.md): norm1's and norm2's outputs (qkv's and fc1's inputs,
     * formed again by the backward otherwise) and, with a core that forms its output again
     * (the global one), proj's input, which that core then writes in bf16 only. */
    clv_tblock_kept ln1_h, ln2_h, attout_h;
    /* 1: bf16 runs the fp32 path's steps (keeps no bf16 copies, the core writes dqkv in fp32
     * for qkv's backward to convert): the tests' reference */
    int reference_path;
} clv_tblock;

typedef struct clv_tblock_config {
    int64_t T, C, heads, hidden;
    float eps;
} clv_tblock_config;

/* Registers, under the builder's current scope (timm's order): norm1, the
 * core's parameters (attn.*), attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2. */
int clv_tblock_build(clv_tblock *k, clv_builder *b, const clv_tblock_config *cfg, const clv_attn_spec *attn);
void clv_tblock_free(clv_tblock *k);

/* One block's activations for one forward. */
typedef struct clv_tblock_acts {
    const float *xin;           /* the block's input [N x C], N = B T (set by the forward) */
    float *ln1, *mean1, *rstd1; /* norm1's output (shared) and statistics [N] */
    float *qkv;                 /* [N x 3C] */
    float *att;                 /* the core's probabilities (may be NULL) */
    float *attout;              /* the core's output [R x C] (shared when the core can recompute it) */
    float *xmid;                /* [R x C] */
    float *ln2, *mean2, *rstd2; /* norm2's output (shared) and statistics [R] */
    float *h, *g;               /* fc1's output [R x hidden], GELU's (shared) */
    float *xout;                /* [R x C] */
} clv_tblock_acts;

/* Buffers shared by the blocks of one model (sized for the widest). */
typedef struct clv_tblock_shared {
    float *ln, *g, *attout; /* g is also the backward's dqkv (g is spent when dqkv is written) */
    float *scratch;         /* the cores' */
} clv_tblock_shared;

/* The backward's buffers, shared by all blocks. */
typedef struct clv_tblock_grads {
    float *dattout, *dln, *dg, *dqkv; /* [N x C] [N x C] [N x hidden] [N x 3C] of the widest block */
    float *att;                       /* the probabilities a core recomputes (in dg when they fit) */
    clv_arena gprime;                 /* GELU'(h) when fc1's backward reads h (else written over h) */
    clv_arena wscratch;               /* the weight layers' backward scratch */
} clv_tblock_grads;

/* Layouts for B images, carved in one arena pass (clvit/arena.h). */
void clv_tblock_carve_shared(clv_carver *c, clv_tblock_shared *sh, const clv_tblock *const *ks, int n, int64_t B);
/* Training: the block's kept buffers, sharing sh's. keep_out = 0 lets the
 * output overwrite norm2's (shared) output: only for a block whose output
 * feeds nothing that a backward reads. */
void clv_tblock_carve_train(clv_carver *c, clv_tblock_acts *a, const clv_tblock *k, const clv_tblock_shared *sh,
                            int64_t B, int keep_out);
/* Training, for a block the backward forms again (clv_tblock_forward_again
 * right before its clv_tblock_backward): it keeps only its output, and
 * writes the rest into next's buffers, those of a block of the same shape
 * after it, whose backward has run by then. */
void clv_tblock_carve_again(clv_carver *c, clv_tblock_acts *a, const clv_tblock *k, const clv_tblock_acts *next,
                            int64_t B);
/* Inference: one set of buffers for all n blocks; the residual stream
 * alternates between xmid and xout, and a block may read its input from
 * xout (the previous block's). */
void clv_tblock_carve_infer(clv_carver *c, clv_tblock_acts *a, clv_tblock_shared *sh, const clv_tblock *const *ks,
                            int n, int64_t B);
void clv_tblock_carve_grads(clv_carver *c, clv_tblock_grads *g, const clv_tblock_shared *sh,
                            const clv_tblock *const *ks, int n, int64_t B);
void clv_tblock_grads_free(clv_tblock_grads *g);

/* Rows of the block's output for B images: B T, or B after a class-row core. */
static inline int64_t clv_tblock_out_rows(const clv_tblock *k, int64_t B) { return k->attn.ops->out_rows(&k->attn, B); }

/* a->xout = block(x) over B images. training: keep what the backward needs. */
int clv_tblock_forward(clv_tblock *k, clv_tblock_acts *a, const clv_tblock_shared *sh, const float *x, int64_t B,
                       int training, clv_err *err);

/* A clv_tblock_carve_again block's training forward again, from the input
 * of its last clv_tblock_forward, as far as its backward needs: the same
 * floats (the output is not formed again). */
int clv_tblock_forward_again(clv_tblock *k, clv_tblock_acts *a, const clv_tblock_shared *sh, int64_t B, clv_err *err);

/* The block's units, lowest first: 0 norm1, 1 qkv with the core, 2 proj,
 * 3 norm2, 4 fc1, 5 fc2. The lowest one that trains, or 6 for none. */
int clv_tblock_lowest_trainable(const clv_tblock *k);

/* dout [R x C]: the gradient of the block's output (used as a work buffer);
 * dx [N x C]: the gradient of its input, written (may be dout when R = N).
 * Gradients are formed down to unit `lowest` (negative: dx too).
 * Returns 0 when dx was written, 1 when the walk stopped above the input
 * (nothing below needs a gradient), -1 on error (err set). */
int clv_tblock_backward(clv_tblock *k, clv_tblock_acts *a, const clv_tblock_shared *sh, clv_tblock_grads *g,
                        float *dout, float *dx, int64_t B, int lowest, clv_err *err);

#ifdef __cplusplus
}
#endif
#endif
