/* ewc: Elastic Weight Consolidation (Kirkpatrick et al. 2017) as a baseline.
 * The whole backbone keeps training on every task, like finetune, one head
 * per task; from the second task on, a quadratic penalty holds each
 * backbone weight near where the last task left it, in proportion to its
 * diagonal Fisher. One online Fisher and one anchor, whatever the number of
 * tasks (docs/methods.md; the math in clvit/ewc_math.h):
 *
 *   consolidate (after task t): F = decay F + (1/N) sum_b |b| g_b^2, theta* = theta
 *   loss:           + lambda/2 sum_i F_i (theta_i - theta*_i)^2   (--ewc-lambda)
 *   after_backward: grad_i += lambda F_i (theta_i - theta*_i)
 *
 * Kept: F with the base (base.safetensors, "ewc.fisher.<param>"), counted
 * once as kind shared_fisher; theta* is the base itself between tasks (it
 * is re-taken from the loaded base when a run resumes), so it is not
 * counted twice. Batch-norm running statistics are not penalized. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/ewc_math.h"
#include "clvit/strategy.h"

#define FISHER_PREFIX "ewc.fisher."

typedef struct ewc {
    int64_t numel;   /* over the penalized parameters, in the model's order */
    float *fisher;   /* F */
    float *anchor;   /* theta* */
    float *sum;      /* consolidate: sum_b |b| g_b^2 */
    double samples;  /* consolidate: images seen */
    int consolidated; /* F and theta* exist: the penalty applies */
    const clv_params *ps;
} ewc;

static int penalized(const clv_param *p) { return !p->buffer; }

static void ewc_free(clv_strategy *s)
{
    ewc *e = s->state;
    if (!e)
        return;
    free(e->fisher);
    free(e->anchor);
    free(e->sum);
    free(e);
}

static int ewc_init(clv_strategy *s, const clv_learner *L, clv_err *err)
{
    ewc *e = calloc(1, sizeof *e);
    if (!e)
        return clv_errf(err, "out of memory");
    s->state = e;
    e->ps = &L->model->params;
    for (int i = 0; i < e->ps->count; i++)
        e->numel += penalized(e->ps->items[i]) ? e->ps->items[i]->numel : 0;
    e->fisher = calloc((size_t)e->numel, sizeof(float));
    e->anchor = calloc((size_t)e->numel, sizeof(float));
    if (!e->fisher || !e->anchor) {
        ewc_free(s); /* the registry frees only the strategy when init fails */
        s->state = NULL;
        return clv_errf(err, "out of memory for EWC's Fisher and anchor (%lld floats each)", (long long)e->numel);
    }
    return 0;
}

static int ewc_begin(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    return clv_learner_set_backbone_trainable(L, 1, err);
}

static int ewc_end(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    return clv_learner_set_backbone_trainable(L, 0, err);
}

static int ewc_activate(clv_strategy *s, clv_learner *L, int task, clv_err *err) { return 0; }

/* The penalty's value (a term of the parameters only: the same on every rank). */
static int ewc_loss(clv_strategy *s, clv_learner *L, const clv_step_batch *b, double *loss, clv_err *err)
{
    ewc *e = s->state;
    if (!e->consolidated)
        return 0;
    const float lambda = L->cfg->ewc_lambda;
    int64_t off = 0;
    for (int i = 0; i < e->ps->count; i++) {
        const clv_param *p = e->ps->items[i];
        if (!penalized(p))
            continue;
        *loss += clv_ewc_penalty(NULL, p->data, e->anchor + off, e->fisher + off, p->numel, lambda);
        off += p->numel;
    }
    return 0;
}

/* The penalty's gradient, after the allreduce (every rank adds the same). */
static int ewc_after_backward(clv_strategy *s, clv_learner *L, int task, clv_params *trainable, clv_err *err)
{
    ewc *e = s->state;
    if (!e->consolidated)
        return 0;
    const float lambda = L->cfg->ewc_lambda;
    int64_t off = 0;
    for (int i = 0; i < e->ps->count; i++) {
        clv_param *p = e->ps->items[i];
        if (!penalized(p))
            continue;
        if (p->trainable && p->grad)
            clv_ewc_penalty(p->grad, p->data, e->anchor + off, e->fisher + off, p->numel, lambda);
        off += p->numel;
    }
    return 0;
}

/* One batch of the Fisher pass: its mean cross-entropy's gradients are in the grads. */
static int fisher_visit(void *ctx, int64_t n, clv_err *err)
{
    ewc *e = ctx;
    int64_t off = 0;
    for (int i = 0; i < e->ps->count; i++) {
        const clv_param *p = e->ps->items[i];
        if (!penalized(p))
            continue;
        if (p->trainable && p->grad)
            clv_ewc_fisher_add(e->sum + off, p->grad, p->numel, (float)n);
        off += p->numel;
    }
    e->samples += (double)n;
    return 0;
}

static int copy_anchor(ewc *e)
{
    int64_t off = 0;
    for (int i = 0; i < e->ps->count; i++) {
        const clv_param *p = e->ps->items[i];
        if (!penalized(p))
            continue;
        memcpy(e->anchor + off, p->data, (size_t)p->numel * sizeof(float));
        off += p->numel;
    }
    return 0;
}

static int ewc_consolidate(clv_strategy *s, clv_learner *L, int task, clv_task_pass *pass, clv_err *err)
{
    ewc *e = s->state;
    if (!e->sum && !(e->sum = malloc((size_t)e->numel * sizeof(float))))
        return clv_errf(err, "out of memory for EWC's Fisher sum (%lld floats)", (long long)e->numel);
    memset(e->sum, 0, (size_t)e->numel * sizeof(float));
    e->samples = 0;
    if (clv_task_pass_grads(pass, 0, 0, fisher_visit, e, err))
        return clv_err_prefix(err, "ewc: the Fisher pass");
    if (e->samples <= 0)
        return clv_errf(err, "ewc: task %d's Fisher pass saw no image", task + 1);
    clv_ewc_fisher_merge(e->fisher, e->sum, e->numel, e->samples, L->cfg->ewc_decay);
    free(e->sum);
    e->sum = NULL;
    copy_anchor(e);
    e->consolidated = 1;
    return 0;
}

/* F exists from task 1 on and keeps its size: a one-time cost. */
static void ewc_storage(clv_strategy *s, clv_learner *L, int task, clv_storage *out)
{
    ewc *e = s->state;
    if (task == 0)
        clv_storage_add_floats(out, "shared_fisher", e->numel);
}

static int ewc_save_base(clv_strategy *s, clv_learner *L, clv_st_writer *w, clv_err *err)
{
    ewc *e = s->state;
    if (!e->consolidated)
        return 0;
    int64_t off = 0;
    for (int i = 0; i < e->ps->count; i++) {
        const clv_param *p = e->ps->items[i];
        if (!penalized(p))
            continue;
        char name[CLV_NAME_LEN + 16];
        snprintf(name, sizeof name, FISHER_PREFIX "%s", p->name);
        if (clv_st_writer_add(w, name, CLV_DT_F32, p->ndim, p->shape, e->fisher + off, err))
            return -1;
        off += p->numel;
    }
    return 0;
}

/* The Fisher of the last learned task; theta* is the base just loaded. */
static int ewc_load_base(clv_strategy *s, clv_learner *L, const clv_safetensors *st, clv_err *err)
{
    ewc *e = s->state;
    int64_t off = 0;
    for (int i = 0; i < e->ps->count; i++) {
        const clv_param *p = e->ps->items[i];
        if (!penalized(p))
            continue;
        char name[CLV_NAME_LEN + 16];
        snprintf(name, sizeof name, FISHER_PREFIX "%s", p->name);
        const clv_st_tensor *t = clv_st_find(st, name);
        if (!t)
            return clv_errf(err, "%s: no tensor %s: EWC keeps its Fisher with the base (a run of another method?)",
                            st->path, name);
        if (clv_st_read_f32(st, t, e->fisher + off, p->numel, err))
            return clv_err_prefix(err, "%s", st->path);
        off += p->numel;
    }
    copy_anchor(e);
    e->consolidated = 1;
    return 0;
}

const clv_strategy_ops clv_strategy_ewc = {
    .name = "ewc",
    .summary = "the whole network trains; a Fisher-weighted penalty keeps old tasks' weights (EWC, online)",
    .init = ewc_init,
    .begin_task = ewc_begin,
    .end_task = ewc_end,
    .activate = ewc_activate,
    .task_storage = ewc_storage,
    .free = ewc_free,
    .save_base = ewc_save_base,
    .load_base = ewc_load_base,
    .loss = ewc_loss,
    .after_backward = ewc_after_backward,
    .consolidate = ewc_consolidate,
};
