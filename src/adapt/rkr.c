/* RKR on one weight layer: per task, W_t = W + LM_t RM_t (rank K, in the
 * layer's view: clv_rect_shape) and the output scaled by F_t. The effective
 * weight is formed once per optimizer step; the backward takes the
 * low-rank path (no full dW). */
#include <stdlib.h>

#include "adapt/task_adapter.h"

typedef struct {
    task_adapter ta;
    int *rank;
    clv_param **lm, **rm, **f; /* per task; owned by the strategy's lists */
} rkr;

static const float *rkr_weight(clv_adapter *a, const clv_wlayer *l)
{
    rkr *r = a->state;
    int t = r->ta.active;
    if (t < 0 || !r->lm[t])
        return l->weight->data;
    if (!r->ta.weff_valid) {
        task_adapter_form_lowrank(&r->ta, l, r->lm[t]->data, r->rm[t]->data, r->rank[t]);
        r->ta.weff_valid = 1;
    }
    return r->ta.weff;
}

static const float *rkr_scale(clv_adapter *a, const clv_wlayer *l)
{
    rkr *r = a->state;
    int t = r->ta.active;
    return t < 0 || !r->f[t] ? NULL : r->f[t]->data;
}

static int rkr_grads(clv_adapter *a, const clv_wlayer *l, const ta_grad *src, const float *ds, clv_err *err)
{
    rkr *r = a->state;
    int t = r->ta.active;
    if (t < 0 || !r->lm[t])
        return task_adapter_identity_backward(&r->ta, l, src, err);
    return task_adapter_rkr_backward(&r->ta, l, r->lm[t], r->rm[t], r->f[t], r->rank[t], src, ds, err);
}

static int rkr_backward(clv_adapter *a, const clv_wlayer *l, const float *x, const float *dy, const float *s,
                        int64_t N, const float *ds, clv_err *err)
{
    const ta_grad src = ta_grad_rows(x, dy, s, N);
    return rkr_grads(a, l, &src, ds, err);
}

static int rkr_backward_dweight(clv_adapter *a, const clv_wlayer *l, const float *dw, const float *ds, clv_err *err)
{
    const ta_grad src = ta_grad_dweight(dw);
    return rkr_grads(a, l, &src, ds, err);
}

/* the low-rank path in our view (in RKR's conv view the factors are placed, not multiplied in) */
static int rkr_lowrank(clv_adapter *a, const clv_wlayer *l, const float **A, const float **B)
{
    rkr *r = a->state;
    int t = r->ta.active;
    if (t < 0 || !r->lm[t] || r->ta.conv_k)
        return 0;
    *A = r->lm[t]->data;
    *B = r->rm[t]->data;
    return r->rank[t];
}

static int rkr_backward_lowrank(clv_adapter *a, const clv_wlayer *l, const float *dA, const float *dB,
                                const float *ds, clv_err *err)
{
    rkr *r = a->state;
    int t = r->ta.active;
    if (t < 0 || !r->lm[t] || r->ta.conv_k)
        return clv_errf(err, "%s: no low-rank factors to take gradients", l->name);
    return task_adapter_rkr_factor_grads(l, r->lm[t], r->rm[t], r->f[t], r->rank[t], dA, dB, ds);
}

static void rkr_free(clv_adapter *a)
{
    rkr *r = a->state;
    task_adapter_release(&r->ta);
    free(r->rank);
    free(r->lm);
    free(r->rm);
    free(r->f);
    free(r);
}

static const clv_adapter_ops rkr_ops = {"rkr", rkr_weight, rkr_scale, rkr_backward, task_adapter_invalidate,
                                        rkr_free, rkr_backward_dweight, rkr_lowrank, rkr_backward_lowrank};

clv_adapter *clv_rkr_create(const clv_wlayer *l, int n_tasks, clv_conv_view view, clv_err *err)
{
    rkr *r = calloc(1, sizeof *r);
    if (!r) {
        clv_errf(err, "out of memory");
        return NULL;
    }
    r->rank = calloc((size_t)n_tasks, sizeof *r->rank);
    r->lm = calloc((size_t)n_tasks, sizeof *r->lm);
    r->rm = calloc((size_t)n_tasks, sizeof *r->rm);
    r->f = calloc((size_t)n_tasks, sizeof *r->f);
    r->ta.n_tasks = n_tasks;
    const int ok = r->rank && r->lm && r->rm && r->f && !task_adapter_init(&r->ta, &rkr_ops, l, n_tasks, view, err);
    return task_adapter_made(&r->ta, r, ok, rkr_free, err);
}

int clv_rkr_add_task(clv_adapter *a, const clv_wlayer *l, int task, int rank, int random_rm, uint64_t key, float lr,
                     clv_params *ps, clv_err *err)
{
    rkr *r = a->state;
    if (task < 0 || task >= r->ta.n_tasks || r->lm[task])
        return clv_errf(err, "%s: RKR task %d exists or is out of range", l->name, task + 1);
    if (rank < 1)
        return clv_errf(err, "%s: rank %d must be at least 1", l->name, rank);
    if (rank > task_adapter_max_rank(&r->ta)) /* a rank beyond the layer's is the layer's */
        rank = (int)task_adapter_max_rank(&r->ta);
    clv_param *lm = task_adapter_param(ps, l, "lm", 2, r->ta.rows, rank, 1, lr, err);
    clv_param *rm = lm ? task_adapter_param(ps, l, "rm", 2, rank, r->ta.cols, 1, lr, err) : NULL;
    clv_param *f = rm ? task_adapter_param(ps, l, "f", 1, l->out, 0, 1, lr, err) : NULL;
    if (!f)
        return -1;
    for (int64_t i = 0; i < lm->numel; i++)
        lm->data[i] = 0.02f * clv_rng_normal(key, (uint64_t)i);
    for (int64_t i = 0; i < rm->numel; i++)
        rm->data[i] = random_rm ? 0.02f * clv_rng_normal(key, (uint64_t)(lm->numel + i)) : 0.0f;
    for (int64_t i = 0; i < f->numel; i++)
        f->data[i] = 1.0f;
    r->rank[task] = rank;
    r->lm[task] = lm;
    r->rm[task] = rm;
    r->f[task] = f;
    r->ta.weff_valid = 0;
    return 0;
}

int64_t clv_rkr_task_floats(const clv_adapter *a, int task)
{
    const rkr *r = a->state;
    if (task < 0 || task >= r->ta.n_tasks || !r->lm[task])
        return 0;
    return r->lm[task]->numel + r->rm[task]->numel + r->f[task]->numel;
}

/* ---- the lifecycle (clv_adapter_method): a task keeps its LM, RM, F as floats ---- */

#define FILE_PREFIX "rkr."

static clv_adapter *life_create(const clv_wlayer *l, const clv_adapter_settings *set, clv_err *err)
{
    return task_adapter_with_settings(clv_rkr_create(l, set->n_tasks, set->view, err), set);
}

static int life_add_task(clv_adapter *a, const clv_wlayer *l, int task, clv_params *ps, clv_err *err)
{
    const rkr *r = a->state;
    const clv_adapter_settings *set = &r->ta.set;
    return clv_rkr_add_task(a, l, task, set->rank, set->random_rm, task_adapter_key(&r->ta, task), set->lr, ps, err);
}

static int life_end_task(clv_adapter *a, const clv_wlayer *l, int task, clv_err *err) { return 0; }

static int life_has_task(const clv_adapter *a, int task) { return clv_rkr_task_floats(a, task) > 0; }

static void life_storage(const clv_adapter *a, const clv_wlayer *l, int task, clv_storage *out)
{
    const rkr *r = a->state;
    if (!life_has_task(a, task))
        return;
    clv_storage_add_floats(out, "lm", r->lm[task]->numel);
    clv_storage_add_floats(out, "rm", r->rm[task]->numel);
    clv_storage_add_floats(out, "f", r->f[task]->numel);
}

static int life_save(const clv_adapter *a, const clv_wlayer *l, int task, clv_st_writer *w, clv_err *err)
{
    const rkr *r = a->state;
    if (!life_has_task(a, task))
        return clv_errf(err, "%s: RKR task %d has no tensors to save", l->name, task + 1);
    clv_param *ps[3] = {r->lm[task], r->rm[task], r->f[task]};
    return task_adapter_save_params(ps, 3, FILE_PREFIX, w, err);
}

static int life_load(clv_adapter *a, const clv_wlayer *l, int task, const clv_safetensors *st, clv_params *ps,
                     clv_err *err)
{
    const rkr *r = a->state;
    if (life_add_task(a, l, task, ps, err))
        return -1;
    clv_param *own[3] = {r->lm[task], r->rm[task], r->f[task]};
    return task_adapter_load_params(st, own, 3, FILE_PREFIX, err);
}

/* name, create, add_task, end_task, has_task, task_storage, save_task, load_task, mask_note */
const clv_adapter_method clv_adapter_rkr = {
    "rkr", life_create, life_add_task, life_end_task, life_has_task, life_storage, life_save, life_load,
    NULL};

