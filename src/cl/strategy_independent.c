/* independent: a separate network per task, each trained from the same
 * starting point (the seed's initialization or the pretrained weights).
 * The upper bound: nothing is shared, nothing is forgotten, and every task
 * stores a whole backbone. */
#include <stdlib.h>
#include <string.h>

#include "clvit/strategy.h"

typedef struct {
    int n_tasks, n_params;
    int64_t total;   /* floats in one backbone */
    float *start;    /* the common starting point */
    float **nets;    /* nets[t]: task t's backbone, flattened in parameter order */
} indep_state;

static void copy_out(const clv_model *m, float *dst)
{
    for (int i = 0; i < m->params.count; i++) {
        const clv_param *p = m->params.items[i];
        memcpy(dst, p->data, (size_t)p->numel * sizeof(float));
        dst += p->numel;
    }
}

static void copy_in(clv_model *m, const float *src)
{
    for (int i = 0; i < m->params.count; i++) {
        clv_param *p = m->params.items[i];
        memcpy(p->data, src, (size_t)p->numel * sizeof(float));
        src += p->numel;
    }
}

static int ind_init(clv_strategy *s, const clv_learner *L, clv_err *err)
{
    indep_state *st = calloc(1, sizeof *st);
    if (!st)
        return clv_errf(err, "out of memory");
    s->state = st;
    st->n_tasks = L->n_tasks;
    st->total = clv_params_count(&L->model->params, 0);
    st->start = clv_alloc_array((size_t)st->total, sizeof(float));
    st->nets = calloc((size_t)L->n_tasks, sizeof *st->nets);
    if (!st->start || !st->nets)
        return clv_errf(err, "out of memory");
    copy_out(L->model, st->start);
    return 0;
}

static float *net(indep_state *st, int task, clv_err *err)
{
    if (!st->nets[task] && !(st->nets[task] = clv_alloc_array((size_t)st->total, sizeof(float))))
        clv_errf(err, "out of memory for the network of task %d", task + 1);
    return st->nets[task];
}

static int ind_begin(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    indep_state *st = s->state;
    copy_in(L->model, st->start);
    return clv_learner_set_backbone_trainable(L, 1, err);
}

static int ind_end(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    float *dst = net(s->state, task, err);
    if (!dst)
        return -1;
    copy_out(L->model, dst);
    return clv_learner_set_backbone_trainable(L, 0, err);
}

static int ind_activate(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    indep_state *st = s->state;
    if (!st->nets[task])
        return clv_errf(err, "independent: task %d has no network yet", task + 1);
    copy_in(L->model, st->nets[task]);
    return 0;
}

static void ind_storage(clv_strategy *s, clv_learner *L, int task, clv_storage *out)
{
    clv_storage_add_floats(out, "backbone", ((indep_state *)s->state)->total);
}

static int ind_save(clv_strategy *s, clv_learner *L, int task, clv_st_writer *w, clv_err *err)
{
    indep_state *st = s->state;
    const float *src = st->nets[task];
    if (!src)
        return clv_errf(err, "independent: task %d has no network to save", task + 1);
    for (int i = 0; i < L->model->params.count; i++) {
        const clv_param *p = L->model->params.items[i];
        char name[CLV_NAME_LEN + 16];
        snprintf(name, sizeof name, "backbone.%s", p->name);
        if (clv_st_writer_add(w, name, CLV_DT_F32, p->ndim, p->shape, src, err))
            return -1;
        src += p->numel;
    }
    return 0;
}

static int ind_load(clv_strategy *s, clv_learner *L, int task, const clv_safetensors *f, clv_err *err)
{
    float *dst = net(s->state, task, err);
    if (!dst)
        return -1;
    for (int i = 0; i < L->model->params.count; i++) {
        const clv_param *p = L->model->params.items[i];
        char name[CLV_NAME_LEN + 16];
        snprintf(name, sizeof name, "backbone.%s", p->name);
        const clv_st_tensor *t = clv_st_find(f, name);
        if (!t)
            return clv_errf(err, "%s: missing tensor %s", f->path, name);
        int same = t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++)
            same = t->shape[d] == p->shape[d];
        if (!same)
            return clv_errf(err, "%s: tensor %s has the wrong shape", f->path, name);
        if (clv_st_read_f32(f, t, dst, p->numel, err))
            return -1;
        dst += p->numel;
    }
    return 0;
}

static void ind_free(clv_strategy *s)
{
    indep_state *st = s->state;
    if (!st)
        return;
    for (int t = 0; t < st->n_tasks; t++)
        clv_free(st->nets[t]);
    free(st->nets);
    clv_free(st->start);
    free(st);
}

const clv_strategy_ops clv_strategy_independent = {
    .name = "independent",
    .summary = "a separate network per task from the same start (upper bound: stores everything)",
    .init = ind_init,
    .begin_task = ind_begin,
    .end_task = ind_end,
    .activate = ind_activate,
    .task_storage = ind_storage,
    .save_task = ind_save,
    .load_task = ind_load,
    .free = ind_free,
};
