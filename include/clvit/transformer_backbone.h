/* What a transformer backbone (ViT, Swin) holds around its blocks: the
 * patch embedding, the activation arenas, the list of its blocks in forward
 * order (for sizing the buffers they share), those shared buffers and the
 * backward's. The family's own file adds its embedding extras, stages,
 * merges, pooling and the layouts. */
#ifndef CLVIT_TRANSFORMER_BACKBONE_H
#define CLVIT_TRANSFORMER_BACKBONE_H

#include "clvit/activations.h"
#include "clvit/patch_embed.h"
#include "clvit/transformer_block.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_tbackbone {
    clv_patch_embed pe;
    clv_activations mem;
    const clv_tblock **blocks; /* n_blocks, filled by the family as it builds them */
    int n_blocks;
    clv_tblock_shared sh;
    clv_tblock_grads grads;
} clv_tbackbone;

/* For model m: a patch embedding of in_chans x img x img images in patches
 * of P, room for n_blocks blocks, and the arenas' three layouts over ctx.
 * -1 with err set when out of memory. */
int clv_tbackbone_init(clv_tbackbone *t, const clv_model *m, int in_chans, int img, int P, int n_blocks,
                       clv_arena_layout train, clv_arena_layout infer, clv_arena_layout grads, void *ctx,
                       clv_err *err);
void clv_tbackbone_free(clv_tbackbone *t);

/* The family's forward over one batch (its activations laid out for B). */
typedef int (*clv_batch_forward)(clv_model *m, const float *x, int64_t B, float *feats, clv_err *err);
/* m's forward over B images: in one batch when training; in inference,
 * which keeps nothing between blocks, in slices of about infer_rows token
 * rows (image_rows per image), so that a block's buffers stay in the
 * last-level cache between the kernels that write and read them, and the
 * arena stays small. Each image's result is its own, whatever the slicing. */
int clv_tbackbone_forward(clv_tbackbone *t, clv_model *m, const float *x, int64_t B, float *feats, int64_t image_rows,
                          int64_t infer_rows, clv_batch_forward forward, clv_err *err);

#ifdef __cplusplus
}
#endif
#endif
