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
