/* maskrkr (the paper's Mask-RKR): RKR's LM, RM, F are learned once, then
 * frozen and shared; every later task learns Piggyback-style binary masks
 * over them (--mask-on lm,rm,f) and stores 1 bit per masked element.
 * --maskrkr-source says where the shared tensors come from:
 *   first   learned as plain RKR on the first adapted task, stored in its file;
 *   joint   learned with the base on task 1 (W + LM RM, scaled by F, all
 *           training; a base loaded with --weights trains there too),
 *           stored with the base in base.safetensors;
 *   random  drawn from the seed once the base is final, scaled to the size
 *           of a rectification RKR learns (RANDOM_RECT_RATIO); F = 1. */
#include <stdio.h>
#include <string.h>

#include "cl/adapted.h"

typedef struct {
    adapted a;   /* first: adapted_* helpers take it */
    int shared_task, learn_shared, mask_on;
    int joint;   /* the shared tensors are learned with the base (shared_task == the base task) */
} mrkr;

/* --maskrkr-source random: ||LM RM||_F / ||W||_F per layer at the start,
 * the size of the rectifications RKR learns (measured on Split
 * Fashion-MNIST, see docs/methods.md). */
#define RANDOM_RECT_RATIO 0.34f

/* Prefix of the shared tensors in a task file (first) or the base file (joint). */
#define SHARED_PREFIX "maskrkr."

static const struct {
    int flag;
    const char *name;
} kinds[3] = {{CLV_MASK_LM, "lm"}, {CLV_MASK_RM, "rm"}, {CLV_MASK_F, "f"}};

static int has_shared(const mrkr *m) { return clv_maskrkr_shared(m->a.ad[0], CLV_MASK_LM) != NULL; }

/* Drawn (random) tensors are made once the base is final: at the first
 * adapted task, or when a finished one is read back after the base. */
static int add_shared(mrkr *m, const clv_learner *L, clv_err *err)
{
    clv_params *ps = &m->a.task_ps[m->shared_task >= 0 ? m->shared_task : 0];
    for (int i = 0; i < m->a.n_layers; i++)
        if (clv_maskrkr_add_shared(m->a.ad[i], m->a.layers[i], m->shared_task, m->learn_shared,
                                   adapted_key(&m->a, L, i, 0), RANDOM_RECT_RATIO, adapted_lr(L), ps, err))
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
    m->learn_shared = strcmp(L->cfg->maskrkr_source, "random") != 0;
    m->joint = !strcmp(L->cfg->maskrkr_source, "joint");
    if (m->joint && m->a.base_task < 0) { /* "with the base": a loaded base trains on task 1 too */
        m->a.base_task = 0;
        clv_info("maskrkr --maskrkr-source joint: task 1 trains the base loaded with --weights together with LM, "
                 "RM, F; later tasks mask them over that base");
    }
    m->shared_task = m->learn_shared ? m->a.base_task + !m->joint : -2;
    m->a.base_adapted = m->joint;
    if (m->shared_task >= m->a.n_tasks && m->learn_shared)
        clv_warn("maskrkr: a single task only learns the shared RKR tensors; nothing is masked");
    if (adapted_set_ranks(&m->a, L, err))
        return -1;
    for (int i = 0; i < m->a.n_layers; i++)
        if (!(m->a.ad[i] = clv_maskrkr_create(m->a.layers[i], L->n_tasks, m->a.rank[i], L->cfg->threshold, mask_on,
                                             adapted_view(L), err)))
            return -1;
    adapted_attach(&m->a);
    return 0;
}

static int is_mask_task(const mrkr *m, int task)
{
    return task != m->a.base_task && !(m->learn_shared && task == m->shared_task);
}

static int mr_begin(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    mrkr *m = s->state;
    if (task == m->a.base_task) {
        if (adapted_begin_base(&m->a, L, err) || (m->joint && add_shared(m, L, err)))
            return -1;
        adapted_select(&m->a, task);
        return 0;
    }
    if (adapted_begin_task(&m->a, L, task, err))
        return -1;
    /* learned here (first), or drawn now that the base is final (random) */
    if ((!is_mask_task(m, task) || !m->learn_shared) && !has_shared(m) && add_shared(m, L, err))
        return -1;
    if (is_mask_task(m, task) && !has_shared(m))
        return clv_errf(err, "maskrkr: task %d has no shared LM, RM, F to mask (the base file did not keep them?)",
                        task + 1);
    if (is_mask_task(m, task))
        for (int i = 0; i < m->a.n_layers; i++)
            if (clv_maskrkr_add_task(m->a.ad[i], m->a.layers[i], task, L->cfg->mask_init, L->cfg->lr_mask,
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
    if (task == m->a.base_task) {
        if (m->joint) /* learned with the base, kept in base.safetensors: "shared_lm" ... */
            for (int i = 0; i < m->a.n_layers; i++)
                for (int k = 0; k < 3; k++) {
                    char kind[24];
                    snprintf(kind, sizeof kind, CLV_STORAGE_SHARED_PREFIX "%s", kinds[k].name);
                    clv_storage_add_floats(out, kind, clv_maskrkr_shared(m->a.ad[i], kinds[k].flag)->numel);
                }
        return;
    }
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
        return adapted_save_params(&m->a.task_ps[task], SHARED_PREFIX, w, err);
    for (int i = 0; i < m->a.n_layers; i++)
        for (int k = 0; k < 3; k++) {
            if (!(m->mask_on & kinds[k].flag))
                continue;
            int64_t n = 0;
            const uint8_t *bits = clv_maskrkr_mask(m->a.ad[i], task, kinds[k].flag, &n);
            if (adapted_save_mask(w, m->a.layers[i], kinds[k].name, bits, n, err))
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
        if (add_shared(m, L, err) || adapted_load_params(f, &m->a.task_ps[task], SHARED_PREFIX, err))
            return -1;
        return adapted_end(&m->a, L, task, err);
    }
    if (!has_shared(m) && add_shared(m, L, err)) /* random: drawn from the base read back before */
        return -1;
    for (int i = 0; i < m->a.n_layers; i++)
        for (int k = 0; k < 3; k++) {
            if (!(m->mask_on & kinds[k].flag))
                continue;
            const int64_t n = clv_maskrkr_shared(m->a.ad[i], kinds[k].flag)->numel;
            const uint8_t *bits = adapted_find_mask(f, m->a.layers[i], kinds[k].name, n, err);
            if (!bits || clv_maskrkr_set_mask(m->a.ad[i], task, kinds[k].flag, bits, err))
                return -1;
        }
    return 0;
}

static clv_params *mr_task_params(clv_strategy *s, int task)
{
    mrkr *m = s->state;
    return task == m->a.base_task && !m->joint ? NULL : &m->a.task_ps[task];
}

static void mr_free(clv_strategy *s) { adapted_free(s->state); }

/* joint: the shared tensors go with the base, once the base task has made them */
static int mr_save_base(clv_strategy *s, clv_learner *L, clv_st_writer *w, clv_err *err)
{
    mrkr *m = s->state;
    if (!m->joint || !has_shared(m))
        return 0;
    return adapted_save_params(&m->a.task_ps[m->a.base_task], SHARED_PREFIX, w, err);
}

static int mr_load_base(clv_strategy *s, clv_learner *L, const clv_safetensors *st, clv_err *err)
{
    mrkr *m = s->state;
    if (!m->joint)
        return 0;
    if (!has_shared(m) && add_shared(m, L, err))
        return -1;
    if (adapted_load_params(st, &m->a.task_ps[m->a.base_task], SHARED_PREFIX, err)) {
        clv_err_prefix(err, "maskrkr --maskrkr-source joint: the base file keeps LM, RM, F");
        return -1;
    }
    return adapted_end(&m->a, L, m->a.base_task, err);
}

static int mr_rank_caps(clv_strategy *s, clv_rank_cap *caps, int max) { return adapted_rank_caps(s->state, caps, max); }

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
    .save_base = mr_save_base,
    .load_base = mr_load_base,
    .rank_caps = mr_rank_caps,
};
