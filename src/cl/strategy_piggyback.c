/* piggyback: per task, a binary mask over every weight of the frozen base
 * (W_t = W * M_t), learned through real-valued scores by the
 * straight-through estimator. A task stores 1 bit per weight. */
#include "cl/adapted.h"

static int pb_init(clv_strategy *s, const clv_learner *L, clv_err *err)
{
    adapted *st = adapted_new(L, sizeof(adapted), err);
    if (!st)
        return -1;
    s->state = st;
    for (int i = 0; i < st->n_layers; i++)
        if (!(st->ad[i] = clv_piggyback_create(st->layers[i], L->n_tasks, L->cfg->threshold, err)))
            return -1;
    adapted_attach(st);
    return 0;
}

static int pb_begin(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    adapted *st = s->state;
    if (task == st->base_task)
        return adapted_begin_base(st, L, err);
    if (adapted_begin_task(st, L, task, err))
        return -1;
    for (int i = 0; i < st->n_layers; i++)
        if (clv_piggyback_add_task(st->ad[i], st->layers[i], task, L->cfg->mask_init, L->cfg->lr_mask,
                                   &st->task_ps[task], err))
            return -1;
    adapted_select(st, task);
    return 0;
}

static int pb_end(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    adapted *st = s->state;
    if (task != st->base_task) {
        for (int i = 0; i < st->n_layers; i++)
            if (clv_piggyback_freeze(st->ad[i], st->layers[i], task, err))
                return -1;
        clv_params_free(&st->task_ps[task]); /* only the bits are kept */
    }
    if (adapted_end_norms(st, task, err))
        return -1;
    return clv_learner_set_backbone_trainable(L, 0, err);
}

static int pb_activate(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    adapted *st = s->state;
    if (task != st->base_task && !clv_piggyback_mask(st->ad[0], task) && !st->task_ps[task].count)
        return clv_errf(err, "piggyback: task %d has not been learned", task + 1);
    adapted_select(st, task);
    return 0;
}

static void pb_storage(clv_strategy *s, clv_learner *L, int task, clv_storage *out)
{
    adapted *st = s->state;
    if (task == st->base_task) {
        out->one_time_task = 1; /* it trains the base: only its head is its own */
        return;
    }
    for (int i = 0; i < st->n_layers; i++)
        clv_storage_add_bits(out, "weight_mask", st->layers[i]->out * st->layers[i]->in);
    clv_storage_add_floats(out, "norms", adapted_norm_floats(st, task));
}

static int pb_save(clv_strategy *s, clv_learner *L, int task, clv_st_writer *w, clv_err *err)
{
    adapted *st = s->state;
    if (task == st->base_task)
        return 0;
    for (int i = 0; i < st->n_layers; i++) {
        const clv_wlayer *l = st->layers[i];
        if (adapted_save_mask(w, l, "weight", clv_piggyback_mask(st->ad[i], task), l->out * l->in, err))
            return -1;
    }
    if (adapted_save_norms(st, task, w, err))
        return -1;
    return clv_st_writer_meta(w, "mask_bits", "1 bit per weight, row-major, least significant bit first", err);
}

static int pb_load(clv_strategy *s, clv_learner *L, int task, const clv_safetensors *f, clv_err *err)
{
    adapted *st = s->state;
    if (adapted_load_norms(st, task, f, err))
        return -1;
    if (task == st->base_task)
        return 0;
    for (int i = 0; i < st->n_layers; i++) {
        const clv_wlayer *l = st->layers[i];
        const uint8_t *bits = adapted_find_mask(f, l, "weight", l->out * l->in, err);
        if (!bits || clv_piggyback_set_mask(st->ad[i], l, task, bits, err))
            return -1;
    }
    return 0;
}

static clv_params *pb_task_params(clv_strategy *s, int task)
{
    adapted *st = s->state;
    return task == st->base_task ? NULL : &st->task_ps[task];
}

static void pb_free(clv_strategy *s) { adapted_free(s->state); }

const clv_strategy_ops clv_strategy_piggyback = {
    .name = "piggyback",
    .summary = "frozen base; per task a binary mask over every weight (1 bit per weight)",
    .init = pb_init,
    .begin_task = pb_begin,
    .end_task = pb_end,
    .activate = pb_activate,
    .task_storage = pb_storage,
    .save_task = pb_save,
    .load_task = pb_load,
    .task_params = pb_task_params,
    .free = pb_free,
};
