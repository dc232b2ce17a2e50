/* Shared machinery of the adapter-based strategies (see adapted.h). */
#include "cl/adapted.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- --task-norms ---- */

static void norms_copy_out(const task_norms *tn, float *dst)
{
    for (int i = 0; i < tn->n; i++) {
        memcpy(dst, tn->p[i]->data, (size_t)tn->p[i]->numel * sizeof(float));
        dst += tn->p[i]->numel;
    }
}

static void norms_copy_in(const task_norms *tn, const float *src)
{
    for (int i = 0; i < tn->n; i++) {
        memcpy(tn->p[i]->data, src, (size_t)tn->p[i]->numel * sizeof(float));
        src += tn->p[i]->numel;
    }
}

static int norms_init(adapted *s, clv_model *m, clv_err *err)
{
    task_norms *tn = &s->tn;
    for (int i = 0; i < m->params.count; i++)
        if (m->params.items[i]->norm)
            tn->n++;
    if (!tn->n)
        return clv_errf(err, "--task-norms: %s has no norm layers", m->info.name);
    tn->p = calloc((size_t)tn->n, sizeof *tn->p);
    tn->task = calloc((size_t)s->n_tasks, sizeof *tn->task);
    if (!tn->p || !tn->task)
        return clv_errf(err, "out of memory");
    int k = 0;
    for (int i = 0; i < m->params.count; i++)
        if (m->params.items[i]->norm) {
            tn->p[k++] = m->params.items[i];
            tn->floats += m->params.items[i]->numel;
        }
    if (!(tn->base = malloc((size_t)tn->floats * sizeof(float))))
        return clv_errf(err, "out of memory");
    /* the model holds the base now when it was loaded (--weights); otherwise
     * the snapshot is taken again when the base is frozen or read back */
    norms_copy_out(tn, tn->base);
    return 0;
}

static void norms_free(task_norms *tn, int n_tasks)
{
    for (int t = 0; tn->task && t < n_tasks; t++)
        free(tn->task[t]);
    free(tn->task);
    free(tn->base);
    free(tn->p);
}

int64_t adapted_norm_floats(const adapted *s, int task)
{
    return s->tn.n && task != s->base_task && s->tn.task[task] ? s->tn.floats : 0;
}

int adapted_save_norms(const adapted *s, int task, clv_st_writer *w, clv_err *err)
{
    const task_norms *tn = &s->tn;
    if (!tn->n || task == s->base_task)
        return 0;
    if (!tn->task[task])
        return clv_errf(err, "--task-norms: task %d has no norms to save", task + 1);
    const float *src = tn->task[task];
    char name[CLV_NAME_LEN + 8];
    for (int i = 0; i < tn->n; i++) {
        snprintf(name, sizeof name, "norms.%s", tn->p[i]->name);
        if (clv_st_writer_add(w, name, CLV_DT_F32, tn->p[i]->ndim, tn->p[i]->shape, src, err))
            return -1;
        src += tn->p[i]->numel;
    }
    return 0;
}

int adapted_load_norms(adapted *s, int task, const clv_safetensors *st, clv_err *err)
{
    task_norms *tn = &s->tn;
    if (!tn->n)
        return 0;
    /* read back after the run's base file: the model holds the base's norms */
    norms_copy_out(tn, tn->base);
    if (task == s->base_task)
        return 0;
    if (!tn->task[task] && !(tn->task[task] = malloc((size_t)tn->floats * sizeof(float))))
        return clv_errf(err, "out of memory");
    float *dst = tn->task[task];
    char name[CLV_NAME_LEN + 8];
    for (int i = 0; i < tn->n; i++) {
        snprintf(name, sizeof name, "norms.%s", tn->p[i]->name);
        const clv_st_tensor *t = clv_st_find(st, name);
        if (!t)
            return clv_errf(err, "%s: no %s (the run was made with --task-norms)", st->path, name);
        if (clv_st_read_f32(st, t, dst, tn->p[i]->numel, err))
            return -1;
        dst += tn->p[i]->numel;
    }
    return 0;
}

void *adapted_new(const clv_learner *L, size_t size, clv_err *err)
{
    adapted *s = calloc(1, size > sizeof *s ? size : sizeof *s);
    if (!s) {
        clv_errf(err, "out of memory");
        return NULL;
    }
    /* --adapt no-patch-embed: the first weight layer (the one reading the image) stays the base's */
    s->first = L->cfg->adapt == CLV_ADAPT_NO_PATCH_EMBED && L->model->n_wlayers > 1 ? 1 : 0;
    s->layers = L->model->wlayers + s->first;
    s->n_layers = L->model->n_wlayers - s->first;
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
    if (L->cfg->task_norms && norms_init(s, L->model, err)) {
        adapted_free(s);
        return NULL;
    }
    return s;
}

void adapted_attach(adapted *s)
{
    for (int i = 0; i < s->n_layers; i++)
        s->layers[i]->adapter = s->ad[i];
}

void adapted_free(adapted *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_layers; i++) {
        if (s->layers[i]->adapter == s->ad[i])
            s->layers[i]->adapter = NULL;
        if (s->ad[i])
            s->ad[i]->ops->free(s->ad[i]);
    }
    for (int t = 0; t < s->n_tasks; t++)
        clv_params_free(&s->task_ps[t]);
    norms_free(&s->tn, s->n_tasks);
    free(s->rank);
    free(s->ad);
    free(s->task_ps);
    free(s);
}

void adapted_select(adapted *s, int task)
{
    for (int i = 0; i < s->n_layers; i++)
        clv_task_adapter_select(s->ad[i], task == s->base_task && !s->base_adapted ? -1 : task);
    if (s->tn.n) /* a task without norms of its own (the base, or one being learned) starts from the base's */
        norms_copy_in(&s->tn, task >= 0 && task != s->base_task && s->tn.task[task] ? s->tn.task[task] : s->tn.base);
}

int adapted_begin_task(adapted *s, clv_learner *L, int task, clv_err *err)
{
    if (clv_learner_set_backbone_trainable(L, 0, err))
        return -1;
    for (int i = 0; i < s->tn.n; i++)
        if (clv_param_set_trainable(s->tn.p[i], 1, err)) /* buffers (running statistics) stay untrainable */
            return -1;
    return 0;
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

int adapted_end_norms(adapted *s, int task, clv_err *err)
{
    task_norms *tn = &s->tn;
    if (!tn->n)
        return 0;
    if (task == s->base_task) {
        norms_copy_out(tn, tn->base); /* the base is frozen with these */
        return 0;
    }
    if (!tn->task[task] && !(tn->task[task] = malloc((size_t)tn->floats * sizeof(float))))
        return clv_errf(err, "out of memory");
    norms_copy_out(tn, tn->task[task]);
    norms_copy_in(tn, tn->base); /* the base file is written with the base's norms */
    return 0;
}

float adapted_lr(const clv_learner *L) { return L->cfg->lr_adapter > 0 ? L->cfg->lr_adapter : L->cfg->lr; }

clv_conv_view adapted_view(const clv_learner *L)
{
    return L->cfg->conv_view == CLV_CONV_VIEW_RKR ? CLV_VIEW_RKR : CLV_VIEW_OURS;
}

int adapted_set_ranks(adapted *s, const clv_learner *L, clv_err *err)
{
    s->rank_wanted = L->cfg->rank;
    if (!(s->rank = calloc((size_t)s->n_layers, sizeof *s->rank)))
        return clv_errf(err, "out of memory");
    char list[512] = "";
    int n = 0;
    for (int i = 0; i < s->n_layers; i++) {
        int64_t rows, cols;
        if (clv_rect_shape(s->layers[i], adapted_view(L), &rows, &cols, err))
            return -1;
        const int64_t most = rows < cols ? rows : cols;
        s->rank[i] = s->rank_wanted < most ? s->rank_wanted : (int)most;
        if (s->rank[i] < s->rank_wanted) {
            size_t off = strlen(list);
            if (off < sizeof list)
                snprintf(list + off, sizeof list - off, "%s%s at %d", n ? ", " : "", s->layers[i]->name, s->rank[i]);
            n++;
        }
    }
    if (n)
        clv_info("%s: rank %d capped for %d layer%s (the most their rectification has): %s", L->cfg->method,
                 s->rank_wanted, n, n > 1 ? "s" : "", list);
    return 0;
}

int adapted_rank_caps(const adapted *s, clv_rank_cap *caps, int max)
{
    int n = 0;
    for (int i = 0; s->rank && i < s->n_layers; i++)
        if (s->rank[i] < s->rank_wanted) {
            if (n < max) {
                snprintf(caps[n].layer, sizeof caps[n].layer, "%s", s->layers[i]->name);
                caps[n].rank = s->rank[i];
            }
            n++;
        }
    return n;
}
