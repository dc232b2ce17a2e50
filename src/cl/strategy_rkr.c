/* rkr: every weight layer of the frozen base gets, per task, a low-rank
 * rectification LM_t RM_t of its weight and a scaling F_t of its output
 * (Rectification-based Knowledge Retention). A task stores its LM, RM, F. */
#include <string.h>

#include "cl/adapted.h"

static int rkr_init(clv_strategy *s, const clv_learner *L, clv_err *err)
{
    adapted *st = adapted_new(L, sizeof(adapted), err);
    if (!st)
        return -1;
    s->state = st;
    if (adapted_set_ranks(st, L, err))
        return -1;
    for (int i = 0; i < st->n_layers; i++)
        if (!(st->ad[i] = clv_rkr_create(st->layers[i], L->n_tasks, adapted_view(L), err)))
            return -1;
    adapted_attach(st);
    return 0;
}

static int add_task(adapted *st, const clv_learner *L, int task, clv_err *err)
{
    const int random_rm = !strcmp(L->cfg->rkr_init, "random");
    for (int i = 0; i < st->n_layers; i++)
        if (clv_rkr_add_task(st->ad[i], st->layers[i], task, st->rank[i], random_rm, adapted_key(st, L, i, task),
                             adapted_lr(L), &st->task_ps[task], err))
            return -1;
    return 0;
}

static int rkr_begin(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    adapted *st = s->state;
    if (task == st->base_task)
        return adapted_begin_base(st, L, err);
    if (adapted_begin_task(st, L, task, err) || add_task(st, L, task, err))
        return -1;
    adapted_select(st, task);
    return 0;
}

static int rkr_end(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    return adapted_end_norms(s->state, task, err) || adapted_end(s->state, L, task, err) ? -1 : 0;
}

static int rkr_activate(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    adapted *st = s->state;
    if (task != st->base_task && !clv_rkr_task_floats(st->ad[0], task))
        return clv_errf(err, "rkr: task %d has not been learned", task + 1);
    adapted_select(st, task);
    return 0;
}

static void rkr_storage(clv_strategy *s, clv_learner *L, int task, clv_storage *out)
{
    adapted *st = s->state;
    out->one_time_task = task == st->base_task; /* it trains the base: only its head is its own */
    for (int i = 0; i < st->n_layers; i++) {
        int64_t lm = 0, rm = 0, f = 0;
        clv_rkr_task_numel(st->ad[i], task, &lm, &rm, &f);
        clv_storage_add_floats(out, "lm", lm);
        clv_storage_add_floats(out, "rm", rm);
        clv_storage_add_floats(out, "f", f);
    }
    clv_storage_add_floats(out, "norms", adapted_norm_floats(st, task));
}

static int rkr_save(clv_strategy *s, clv_learner *L, int task, clv_st_writer *w, clv_err *err)
{
    return adapted_save_params(&((adapted *)s->state)->task_ps[task], "rkr.", w, err) ||
                   adapted_save_norms(s->state, task, w, err)
               ? -1
               : 0;
}

static int rkr_load(clv_strategy *s, clv_learner *L, int task, const clv_safetensors *st_file, clv_err *err)
{
    adapted *st = s->state;
    if (adapted_load_norms(st, task, st_file, err))
        return -1;
    if (task == st->base_task)
        return 0;
    if (add_task(st, L, task, err) || adapted_load_params(st_file, &st->task_ps[task], "rkr.", err))
        return -1;
    return adapted_end(st, L, task, err);
}

static clv_params *rkr_task_params(clv_strategy *s, int task)
{
    adapted *st = s->state;
    return task == st->base_task ? NULL : &st->task_ps[task];
}

static void rkr_free(clv_strategy *s) { adapted_free(s->state); }

static int rkr_rank_caps(clv_strategy *s, clv_rank_cap *caps, int max) { return adapted_rank_caps(s->state, caps, max); }

const clv_strategy_ops clv_strategy_rkr = {
    .name = "rkr",
    .summary = "frozen base; per task and layer a rank-K rectification LM RM of the weight and output scales F",
    .init = rkr_init,
    .begin_task = rkr_begin,
    .end_task = rkr_end,
    .activate = rkr_activate,
    .task_storage = rkr_storage,
    .save_task = rkr_save,
    .load_task = rkr_load,
    .task_params = rkr_task_params,
    .free = rkr_free,
    .rank_caps = rkr_rank_caps,
};
