/* The pass over a task's training images that a strategy's consolidate
 * hook runs (clv_task_pass_grads in clvit/strategy.h). */
#include <stdlib.h>
#include <string.h>

#include "train/run_internal.h"

/* Batch-norm running statistics, kept aside while the pass's training-mode forwards update them. */
static float *buffers_save(const clv_params *ps, clv_err *err)
{
    int64_t n = 0;
    for (int i = 0; i < ps->count; i++)
        n += ps->items[i]->buffer ? ps->items[i]->numel : 0;
    float *keep = malloc((size_t)(n ? n : 1) * sizeof(float)), *dst = keep;
    if (!keep) {
        clv_errf(err, "out of memory");
        return NULL;
    }
    for (int i = 0; i < ps->count; i++)
        if (ps->items[i]->buffer) {
            memcpy(dst, ps->items[i]->data, (size_t)ps->items[i]->numel * sizeof(float));
            dst += ps->items[i]->numel;
        }
    return keep;
}

static void buffers_restore(const clv_params *ps, const float *src)
{
    for (int i = 0; i < ps->count; i++)
        if (ps->items[i]->buffer) {
            memcpy(ps->items[i]->data, src, (size_t)ps->items[i]->numel * sizeof(float));
            src += ps->items[i]->numel;
        }
}

int clv_task_pass_grads(clv_task_pass *p, int64_t max_images, int predicted_labels, clv_pass_visit visit, void *ctx,
                        clv_err *err)
{
    clv_run *R = p->R;
    const clv_params *mp = &R->L.model->params;
    clv_loader_config lc = clv_run_loader_config(R, p->task, 0);
    lc.shuffle = 0;
    lc.augment = 0;
    lc.flip = 0;
    lc.drop_last = 0;
    if (max_images > 0 && max_images < lc.count)
        lc.count = max_images;
    float *kept = buffers_save(mp, err);
    if (!kept)
        return -1;
    clv_params_zero_grad(&p->step->trainable);
    clv_loader *ld = clv_loader_start(&lc, err);
    int got = ld ? 0 : -1;
    clv_batch b;
    while (ld && (got = clv_loader_next(ld, &b, err)) == 1)
        if (clv_step_grads(p->step, b.x, b.y, b.size, b.global_size, predicted_labels, err) ||
            visit(ctx, b.global_size, err)) {
            got = -1;
            break;
        } else
            clv_params_zero_grad(&p->step->trainable);
    clv_loader_stop(ld);
    clv_params_zero_grad(&p->step->trainable);
    buffers_restore(mp, kept);
    free(kept);
    clv_wlayers_invalidate(R->L.model->wlayers, R->L.model->n_wlayers);
    return got < 0 ? -1 : 0;
}
