/* Shared machinery of the adapter-based strategies (see adapted.h). */
#include "cl/adapted.h"

#include <stdio.h>
#include <stdlib.h>

void *adapted_new(const clv_learner *L, size_t size, clv_err *err)
{
    adapted *s = calloc(1, size > sizeof *s ? size : sizeof *s);
    if (!s) {
        clv_errf(err, "out of memory");
        return NULL;
    }
    s->n_layers = L->model->n_wlayers;
    s->n_tasks = L->n_tasks;
    s->base_task = L->pretrained ? -1 : 0;
    s->model = L->model;
    s->ad = calloc((size_t)s->n_layers, sizeof *s->ad);
    s->task_ps = calloc((size_t)s->n_tasks, sizeof *s->task_ps);
    if (!s->ad || !s->task_ps) {
        free(s->ad);
        free(s->task_ps);
        free(s);
        clv_errf(err, "out of memory");
        return NULL;
    }
    for (int t = 0; t < s->n_tasks; t++)
        clv_params_init(&s->task_ps[t]);
    return s;
}

void adapted_attach(adapted *s)
{
    for (int i = 0; i < s->n_layers; i++)
        s->model->wlayers[i]->adapter = s->ad[i];
}

void adapted_free(adapted *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_layers; i++) {
        if (s->model->wlayers[i]->adapter == s->ad[i])
            s->model->wlayers[i]->adapter = NULL;
        if (s->ad[i])
            s->ad[i]->ops->free(s->ad[i]);
    }
    for (int t = 0; t < s->n_tasks; t++)
        clv_params_free(&s->task_ps[t]);
    free(s->ad);
    free(s->task_ps);
    free(s);
}

void adapted_select(adapted *s, int task)
{
    for (int i = 0; i < s->n_layers; i++)
        clv_task_adapter_select(s->ad[i], task == s->base_task ? -1 : task);
}

int adapted_begin_base(adapted *s, clv_learner *L, clv_err *err)
{
    adapted_select(s, s->base_task);
    return clv_learner_set_backbone_trainable(L, 1, err);
}

int adapted_end(adapted *s, clv_learner *L, int task, clv_err *err)
{
    clv_params *ps = &s->task_ps[task];
    for (int i = 0; i < ps->count; i++)
        if (clv_param_set_trainable(ps->items[i], 0, err))
            return -1;
    return clv_learner_set_backbone_trainable(L, 0, err);
}

uint64_t adapted_key(const clv_learner *L, int layer, int task)
{
    return clv_rng_key(L->cfg->seed, CLV_STREAM_ADAPTER, (uint64_t)layer, (uint64_t)task);
}

int adapted_save_params(const clv_params *ps, const char *prefix, clv_st_writer *w, clv_err *err)
{
    for (int i = 0; i < ps->count; i++)
        if (clv_st_writer_add_param(w, ps->items[i], prefix, err))
            return -1;
    return 0;
}

int adapted_load_params(const clv_safetensors *st, clv_params *ps, const char *prefix, clv_err *err)
{
    return clv_st_load_params(st, ps, prefix, 0, err);
}

int adapted_save_mask(clv_st_writer *w, const clv_wlayer *l, const char *what, const uint8_t *bits, int64_t n,
                      clv_err *err)
{
    if (!bits)
        return clv_errf(err, "%s: no %s mask to save", l->name, what);
    char name[CLV_NAME_LEN + 32];
    snprintf(name, sizeof name, "mask.%s.%s", l->name, what);
    int64_t shape[1] = {clv_mask_bytes(n)};
    return clv_st_writer_add(w, name, CLV_DT_U8, 1, shape, bits, err);
}

const uint8_t *adapted_find_mask(const clv_safetensors *st, const clv_wlayer *l, const char *what, int64_t n,
                                 clv_err *err)
{
    char name[CLV_NAME_LEN + 32];
    snprintf(name, sizeof name, "mask.%s.%s", l->name, what);
    const clv_st_tensor *t = clv_st_find(st, name);
    if (!t || t->dtype != CLV_DT_U8 || t->ndim != 1 || t->shape[0] != clv_mask_bytes(n)) {
        clv_errf(err, "%s: %s must be a U8 tensor of %lld bytes (%lld mask bits)", st->path, name,
                 (long long)clv_mask_bytes(n), (long long)n);
        return NULL;
    }
    return clv_st_tensor_data(st, t);
}
