/* The parts a transformer backbone holds around its blocks (see clvit/transformer_backbone.h). */
#include "clvit/transformer_backbone.h"

#include <stdlib.h>

int clv_tbackbone_init(clv_tbackbone *t, const clv_model *m, int in_chans, int img, int P, int n_blocks,
                       clv_arena_layout train, clv_arena_layout infer, clv_arena_layout grads, void *ctx,
                       clv_err *err)
{
    t->pe = (clv_patch_embed){.cin = in_chans, .P = P, .img = img};
    t->mem = (clv_activations){.model = m->info.name, .train = train, .infer = infer, .grads = grads, .ctx = ctx};
    t->n_blocks = n_blocks;
    if (!(t->blocks = calloc((size_t)n_blocks + 1, sizeof *t->blocks)))
        return clv_errf(err, "%s: out of memory", m->info.name);
    return 0;
}

void clv_tbackbone_free(clv_tbackbone *t)
{
    clv_activations_free(&t->mem);
    clv_tblock_grads_free(&t->grads);
    clv_wlayer_release(&t->pe.proj);
    free(t->blocks);
    t->blocks = NULL;
}

int clv_tbackbone_forward(clv_tbackbone *t, clv_model *m, const float *x, int64_t B, float *feats, int64_t image_rows,
                          int64_t infer_rows, clv_batch_forward forward, clv_err *err)
{
    if (B <= 0)
        return clv_errf(err, "%s: batch size %lld", m->info.name, (long long)B);
    t->mem.trained_B = 0;
    const int64_t slice = m->training ? B : (infer_rows / image_rows > 1 ? infer_rows / image_rows : 1);
    const int64_t img = (int64_t)m->info.in_chans * m->info.img_size * m->info.img_size;
    /* inference: the slices read the same weights, each packed for oneDNN once (vit_tiny_patch4_32
     * bf16 at batch 256, 8 slices: the packing was 5% of the forward) */
    const int fix = !m->training && slice < B;
    if (fix)
        clv_compute_fix_weights(m->compute, 1);
    int rc = 0;
    for (int64_t b0 = 0; b0 < B && !rc; b0 += slice) {
        const int64_t nb = B - b0 < slice ? B - b0 : slice;
        rc = forward(m, x + b0 * img, nb, feats + b0 * m->info.feat_dim, err);
    }
    if (fix)
        clv_compute_fix_weights(m->compute, 0);
    return rc ? -1 : 0;
}
