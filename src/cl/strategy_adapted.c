/* The adapter-based methods as rows of one strategy: an adapter on every
 * adapted weight layer of the frozen base (clvit/adapters.h says what each
 * computes and keeps), one parameter list per task, and the base task
 * (task 1 without --weights: the backbone itself trains, the adapters are
 * the identity, unless the method adapts it too). What differs between the
 * methods lives with their adapters (clv_adapter_method); a row adds its
 * settings, whether it has a rank, and what it keeps with the base.
 *
 *   rkr        per task and layer a rank-K rectification LM RM of the
 *              weight and output scales F, kept as floats
 *   piggyback  per task a binary mask over every weight, 1 bit per weight
 *   maskrkr    RKR's LM, RM, F learned once (or drawn), then per task
 *              binary masks over them, 1 bit per masked element.
 *              --maskrkr-source says where LM, RM, F come from:
 *                first   learned as plain RKR on the first adapted task,
 *                        stored in its file;
 *                joint   learned with the base on task 1 (W + LM RM, scaled
 *                        by F, all training; a base loaded with --weights
 *                        trains there too), stored in base.safetensors;
 *                random  drawn from the seed once the base is final, scaled
 *                        to the size of a rectification RKR learns. */
#include <string.h>

#include "cl/adapted.h"

typedef struct adapted_row {
    const clv_strategy_ops *ops;
    const clv_adapter_method *method;
    int has_rank;
    /* (optional) the row's own settings, before the adapters are made */
    int (*prepare)(adapted *s, const clv_learner *L, clv_adapter_settings *set, clv_err *err);
} adapted_row;

/* --maskrkr-source random: ||LM RM||_F / ||W||_F per layer at the start,
 * the size of the rectifications RKR learns (measured on Split
 * Fashion-MNIST, see docs/methods.md). */
#define RANDOM_RECT_RATIO 0.34f

static int maskrkr_prepare(adapted *s, const clv_learner *L, clv_adapter_settings *set, clv_err *err)
{
    const clv_config *cfg = L->cfg;
    if ((set->mask_on = clv_config_mask_on(cfg->mask_on, err)) < 0)
        return -1;
    const int learn = cfg->maskrkr_source != CLV_MASKRKR_RANDOM, joint = cfg->maskrkr_source == CLV_MASKRKR_JOINT;
    if (joint && s->base_task < 0) { /* "with the base": a loaded base trains on task 1 too */
        s->base_task = 0;
        clv_info("maskrkr --maskrkr-source joint: task 1 trains the base loaded with --weights together with LM, "
                 "RM, F; later tasks mask them over that base");
    }
    set->shared_task = learn ? s->base_task + !joint : -2;
    set->random_ratio = RANDOM_RECT_RATIO;
    s->base_adapted = joint;
    if (learn && set->shared_task >= s->n_tasks)
        clv_warn("maskrkr: a single task only learns the shared RKR tensors; nothing is masked");
    return 0;
}

extern const clv_strategy_ops clv_strategy_rkr, clv_strategy_piggyback, clv_strategy_maskrkr;

static const adapted_row rows[] = {
    {&clv_strategy_rkr, &clv_adapter_rkr, 1, NULL},
    {&clv_strategy_piggyback, &clv_adapter_piggyback, 0, NULL},
    {&clv_strategy_maskrkr, &clv_adapter_maskrkr, 1, maskrkr_prepare},
};

static const adapted_row *row_of(const clv_strategy_ops *ops)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].ops == ops)
            return &rows[i];
    return NULL;
}

static int ad_init(clv_strategy *s, const clv_learner *L, clv_err *err)
{
    const adapted_row *row = row_of(s->ops);
    const clv_config *cfg = L->cfg;
    adapted *st = adapted_new(L, sizeof *st, err);
    if (!st)
        return -1;
    s->state = st;
    st->method = row->method;
    clv_adapter_settings set = {
        .n_tasks = L->n_tasks,
        .seed = cfg->seed,
        .view = adapted_view(L),
        .lr = adapted_lr(L),
        .random_rm = cfg->rkr_init == CLV_RKR_INIT_RANDOM,
        .threshold = cfg->threshold,
        .mask_init = cfg->mask_init,
        .lr_mask = cfg->lr_mask,
        .shared_task = -2,
    };
    if ((row->prepare && row->prepare(st, L, &set, err)) || (row->has_rank && adapted_set_ranks(st, L, err)))
        return -1;
    for (int i = 0; i < st->n_layers; i++) {
        set.layer = st->first + i;
        set.rank = st->rank ? st->rank[i] : 0;
        if (!(st->ad[i] = row->method->create(st->layers[i], &set, err)))
            return -1;
    }
    adapted_attach(st);
    return 0;
}

static int add_task(adapted *st, int task, clv_err *err)
{
    for (int i = 0; i < st->n_layers; i++)
        if (st->method->add_task(st->ad[i], st->layers[i], task, &st->task_ps[task], err))
            return -1;
    return 0;
}

/* the base task, when the method does not adapt it, is the backbone's own */
static int adapts(const adapted *st, int task) { return task != st->base_task || st->base_adapted; }

static int ad_begin(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    adapted *st = s->state;
    if (task == st->base_task) {
        if (adapted_begin_base(st, L, err))
            return -1;
    } else if (adapted_begin_task(st, L, task, err))
        return -1;
    if (adapts(st, task)) {
        if (add_task(st, task, err))
            return -1;
        adapted_select(st, task);
    }
    return 0;
}

static int ad_end(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    adapted *st = s->state;
    int bits_only = 0;
    for (int i = 0; adapts(st, task) && i < st->n_layers; i++) {
        int r = st->method->end_task(st->ad[i], st->layers[i], task, err);
        if (r < 0)
            return -1;
        bits_only |= r;
    }
    if (bits_only)
        clv_params_free(&st->task_ps[task]); /* the scores: only the bits are kept */
    return adapted_end_norms(st, task, err) || adapted_end(st, L, task, err) ? -1 : 0;
}

static int ad_activate(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    adapted *st = s->state;
    if (task != st->base_task && !st->method->has_task(st->ad[0], task))
        return clv_errf(err, "%s: task %d has not been learned", s->ops->name, task + 1);
    adapted_select(st, task);
    return 0;
}

static void ad_storage(clv_strategy *s, clv_learner *L, int task, clv_storage *out)
{
    adapted *st = s->state;
    out->one_time_task = task == st->base_task; /* it trains the base: only its head is its own */
    for (int i = 0; adapts(st, task) && i < st->n_layers; i++)
        st->method->task_storage(st->ad[i], st->layers[i], task, out);
    clv_storage_add_floats(out, "norms", adapted_norm_floats(st, task));
}

static int ad_save(clv_strategy *s, clv_learner *L, int task, clv_st_writer *w, clv_err *err)
{
    adapted *st = s->state;
    if (task == st->base_task) /* what the base task adapts goes with the base (ad_save_base) */
        return 0;
    int masks = 0;
    for (int i = 0; i < st->n_layers; i++) {
        int r = st->method->save_task(st->ad[i], st->layers[i], task, w, err);
        if (r < 0)
            return -1;
        masks |= r;
    }
    if (adapted_save_norms(st, task, w, err))
        return -1;
    return masks ? clv_st_writer_meta(w, "mask_bits", st->method->mask_note, err) : 0;
}

static int ad_load(clv_strategy *s, clv_learner *L, int task, const clv_safetensors *f, clv_err *err)
{
    adapted *st = s->state;
    if (adapted_load_norms(st, task, f, err))
        return -1;
    if (task == st->base_task)
        return 0;
    for (int i = 0; i < st->n_layers; i++)
        if (st->method->load_task(st->ad[i], st->layers[i], task, f, &st->task_ps[task], err))
            return -1;
    return adapted_end(st, L, task, err);
}

static clv_params *ad_task_params(clv_strategy *s, int task)
{
    adapted *st = s->state;
    return adapts(st, task) ? &st->task_ps[task] : NULL;
}

static void ad_free(clv_strategy *s) { adapted_free(s->state); }

static int ad_rank_caps(clv_strategy *s, clv_rank_cap *caps, int max) { return adapted_rank_caps(s->state, caps, max); }

/* maskrkr joint: the shared tensors go with the base, once the base task has made them */
static int ad_save_base(clv_strategy *s, clv_learner *L, clv_st_writer *w, clv_err *err)
{
    adapted *st = s->state;
    if (!st->base_adapted || !st->method->has_task(st->ad[0], st->base_task))
        return 0;
    for (int i = 0; i < st->n_layers; i++)
        if (st->method->save_task(st->ad[i], st->layers[i], st->base_task, w, err) < 0)
            return -1;
    return 0;
}

static int ad_load_base(clv_strategy *s, clv_learner *L, const clv_safetensors *f, clv_err *err)
{
    adapted *st = s->state;
    if (!st->base_adapted)
        return 0;
    for (int i = 0; i < st->n_layers; i++)
        if (st->method->load_task(st->ad[i], st->layers[i], st->base_task, f, &st->task_ps[st->base_task], err))
            return clv_err_prefix(err, "%s --maskrkr-source joint: the base file keeps LM, RM, F", s->ops->name);
    return adapted_end(st, L, st->base_task, err);
}

#define ADAPTED_OPS                                                                                                    \
    .init = ad_init, .begin_task = ad_begin, .end_task = ad_end, .activate = ad_activate,                             \
    .task_storage = ad_storage, .save_task = ad_save, .load_task = ad_load, .task_params = ad_task_params,            \
    .free = ad_free

const clv_strategy_ops clv_strategy_rkr = {
    .name = "rkr",
    .summary = "frozen base; per task and layer a rank-K rectification LM RM of the weight and output scales F",
    ADAPTED_OPS,
    .rank_caps = ad_rank_caps,
};

const clv_strategy_ops clv_strategy_piggyback = {
    .name = "piggyback",
    .summary = "frozen base; per task a binary mask over every weight (1 bit per weight)",
    ADAPTED_OPS,
};

const clv_strategy_ops clv_strategy_maskrkr = {
    .name = "maskrkr",
    .summary = "frozen base; RKR tensors learned once, then per task binary masks over them (1 bit each)",
    ADAPTED_OPS,
    .save_base = ad_save_base,
    .load_base = ad_load_base,
    .rank_caps = ad_rank_caps,
};
