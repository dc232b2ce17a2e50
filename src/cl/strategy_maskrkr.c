/* maskrkr (the paper's Mask-RKR): RKR's LM, RM, F are learned once, as
 * plain RKR on the first adapted task (or drawn from the seed with
 * --maskrkr-source random), then frozen and shared; every later task learns
 * Piggyback-style binary masks over them (--mask-on lm,rm,f) and stores 1
 * bit per masked element. */
#include <stdio.h>
#include <string.h>

#include "cl/adapted.h"

typedef struct {
    adapted a;   /* first: adapted_* helpers take it */
    int shared_task, learn_shared, mask_on;
} mrkr;

static const struct {
    int flag;
    const char *name;
} kinds[3] = {{CLV_MASK_LM, "lm"}, {CLV_MASK_RM, "rm"}, {CLV_MASK_F, "f"}};

static int add_shared(mrkr *m, const clv_learner *L, clv_err *err)
{
    for (int i = 0; i < m->a.n_layers; i++)
        if (clv_maskrkr_add_shared(m->a.ad[i], L->model->wlayers[i], m->shared_task, m->learn_shared,
                                   adapted_key(L, i, 0), L->cfg->lr, &m->a.task_ps[m->shared_task], err))
            return -1;
    return 0;
}

static int mr_init(clv_strategy *s, const clv_learner *L, clv_err *err)
{
    int mask_on = clv_config_mask_on(L->cfg->mask_on, err);
    if (mask_on < 0)
        return -1;
    mrkr *m = adapted_new(L, sizeof *m, err);
    if (!m)
        return -1;
    s->state = m;
    m->mask_on = mask_on;
    m->shared_task = m->a.base_task + 1;
    m->learn_shared = strcmp(L->cfg->maskrkr_source, "random") != 0;
    if (m->shared_task >= m->a.n_tasks && m->learn_shared)
        clv_warn("maskrkr: a single task only learns the shared RKR tensors; nothing is masked");
    for (int i = 0; i < m->a.n_layers; i++)
        if (!(m->a.ad[i] = clv_maskrkr_create(L->model->wlayers[i], L->n_tasks, L->cfg->rank, L->cfg->threshold,
                                             mask_on, err)))
            return -1;
    adapted_attach(&m->a);
    return m->learn_shared ? 0 : add_shared(m, L, err);
}

static int is_mask_task(const mrkr *m, int task)
{
    return task != m->a.base_task && !(m->learn_shared && task == m->shared_task);
}

static int mr_begin(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    mrkr *m = s->state;
    if (task == m->a.base_task)
        return adapted_begin_base(&m->a, L, err);
    if (adapted_begin_task(&m->a, L, task, err))
        return -1;
    if (!is_mask_task(m, task)) {
        if (add_shared(m, L, err))
            return -1;
    } else
        for (int i = 0; i < m->a.n_layers; i++)
            if (clv_maskrkr_add_task(m->a.ad[i], L->model->wlayers[i], task, L->cfg->mask_init, L->cfg->lr_mask,
                                     &m->a.task_ps[task], err))
                return -1;
    adapted_select(&m->a, task);
    return 0;
}

static int mr_end(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    mrkr *m = s->state;
    if (is_mask_task(m, task)) {
        for (int i = 0; i < m->a.n_layers; i++)
            if (clv_maskrkr_freeze(m->a.ad[i], task, err))
                return -1;
        clv_params_free(&m->a.task_ps[task]); /* the scores: only the bits are kept */
    }
    if (adapted_end_norms(&m->a, task, err))
        return -1;
    return adapted_end(&m->a, L, task, err);
}

static int mr_activate(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    mrkr *m = s->state;
    adapted_select(&m->a, task);
    return 0;
}

static void mr_storage(clv_strategy *s, clv_learner *L, int task, clv_storage *out)
{
    mrkr *m = s->state;
    /* the base task trains the base, the shared task learns LM, RM, F: both are one-time costs */
    out->one_time_task = !is_mask_task(m, task);
    if (task == m->a.base_task)
        return;
    for (int i = 0; i < m->a.n_layers; i++)
        for (int k = 0; k < 3; k++) {
            int64_t n = clv_maskrkr_shared(m->a.ad[i], kinds[k].flag)->numel;
            char kind[24];
            if (!is_mask_task(m, task)) { /* the shared real-valued LM, RM, F: "shared_lm" ... */
                snprintf(kind, sizeof kind, CLV_STORAGE_SHARED_PREFIX "%s", kinds[k].name);
                clv_storage_add_floats(out, kind, n);
            } else if (m->mask_on & kinds[k].flag) {
                snprintf(kind, sizeof kind, "%s_mask", kinds[k].name);
                clv_storage_add_bits(out, kind, n);
            }
        }
    clv_storage_add_floats(out, "norms", adapted_norm_floats(&m->a, task));
}

static int mr_save(clv_strategy *s, clv_learner *L, int task, clv_st_writer *w, clv_err *err)
{
    mrkr *m = s->state;
    if (task == m->a.base_task)
        return 0;
    if (adapted_save_norms(&m->a, task, w, err))
        return -1;
    if (!is_mask_task(m, task))
        return adapted_save_params(&m->a.task_ps[task], "maskrkr.", w, err);
    for (int i = 0; i < m->a.n_layers; i++)
        for (int k = 0; k < 3; k++) {
            if (!(m->mask_on & kinds[k].flag))
                continue;
            int64_t n = 0;
            const uint8_t *bits = clv_maskrkr_mask(m->a.ad[i], task, kinds[k].flag, &n);
            if (adapted_save_mask(w, L->model->wlayers[i], kinds[k].name, bits, n, err))
                return -1;
        }
    return clv_st_writer_meta(w, "mask_bits", "1 bit per masked element, row-major, least significant bit first", err);
}

static int mr_load(clv_strategy *s, clv_learner *L, int task, const clv_safetensors *f, clv_err *err)
{
    mrkr *m = s->state;
    if (adapted_load_norms(&m->a, task, f, err))
        return -1;
    if (task == m->a.base_task)
        return 0;
    if (!is_mask_task(m, task)) {
        if (add_shared(m, L, err) || adapted_load_params(f, &m->a.task_ps[task], "maskrkr.", err))
            return -1;
        return adapted_end(&m->a, L, task, err);
    }
    for (int i = 0; i < m->a.n_layers; i++)
        for (int k = 0; k < 3; k++) {
            if (!(m->mask_on & kinds[k].flag))
                continue;
            const int64_t n = clv_maskrkr_shared(m->a.ad[i], kinds[k].flag)->numel;
            const uint8_t *bits = adapted_find_mask(f, L->model->wlayers[i], kinds[k].name, n, err);
            if (!bits || clv_maskrkr_set_mask(m->a.ad[i], task, kinds[k].flag, bits, err))
                return -1;
        }
    return 0;
}

static clv_params *mr_task_params(clv_strategy *s, int task)
{
    mrkr *m = s->state;
    return task == m->a.base_task ? NULL : &m->a.task_ps[task];
}

static void mr_free(clv_strategy *s) { adapted_free(s->state); }

const clv_strategy_ops clv_strategy_maskrkr = {
    .name = "maskrkr",
    .summary = "frozen base; RKR tensors learned once, then per task binary masks over them (1 bit each)",
    .init = mr_init,
    .begin_task = mr_begin,
    .end_task = mr_end,
    .activate = mr_activate,
    .task_storage = mr_storage,
    .save_task = mr_save,
    .load_task = mr_load,
    .task_params = mr_task_params,
    .free = mr_free,
};
