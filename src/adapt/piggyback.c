/* Piggyback on one weight layer: per task, W_t = W * M_t with the binary
 * mask M_t = 1[S_t > tau] of real-valued scores, trained by the
 * straight-through estimator dL/dS = dL/dW_t * W. After the task only the
 * mask's bits are kept. */
#include <stdlib.h>
#include <string.h>

#include "adapt/task_adapter.h"
#include "clvit/gemm.h"

typedef struct {
    task_adapter ta;
    float tau;
    clv_param **scores; /* while the task trains; owned by the strategy's list */
    uint8_t **bits;     /* after it */
} piggyback;

static const float *pb_weight(clv_adapter *a, const clv_wlayer *l)
{
    piggyback *p = a->state;
    int t = p->ta.active;
    if (t < 0 || (!p->scores[t] && !p->bits[t]))
        return l->weight->data;
    if (!p->ta.weff_valid) {
        const float *W = l->weight->data;
        float *E = p->ta.weff;
        const int64_t n = l->out * l->in;
        if (p->scores[t]) {
            const float *S = p->scores[t]->data, tau = p->tau;
#pragma omp parallel for simd schedule(static)
            for (int64_t i = 0; i < n; i++)
                E[i] = S[i] > tau ? W[i] : 0.0f;
        } else
            clv_mask_apply(E, W, p->bits[t], n);
        p->ta.weff_valid = 1;
    }
    return p->ta.weff;
}

/* Piggyback has no output scale (pb_ops.scale is NULL), so s is NULL and dz = dy. */
static int pb_backward(clv_adapter *a, const clv_wlayer *l, const float *x, const float *dz, const float *s,
                       int64_t N, const float *ds, clv_err *err)
{
    piggyback *p = a->state;
    int t = p->ta.active;
    if (t < 0 || (!p->scores[t] && !p->bits[t]))
        return task_adapter_identity_backward(&p->ta, l, x, dz, NULL, N, err);
    clv_param *S = p->scores[t];
    if (!S || !S->trainable)
        return 0; /* a frozen mask learns nothing */
    const int64_t n = l->out * l->in;
    float *dW = task_adapter_scratch(&p->ta, l, (size_t)n, err);
    if (!dW)
        return -1;
    /* the full dW_t is unavoidable here: every score has its own gradient */
    if (clv_wlayer_gemm_dyt_x(l, dz, x, N, 0.0f, dW, err))
        return -1;
    const float *W = l->weight->data;
    float *g = S->grad;
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++)
        g[i] += dW[i] * W[i];
    return 0;
}

static void pb_free(clv_adapter *a)
{
    piggyback *p = a->state;
    task_adapter_release(&p->ta);
    for (int t = 0; p->bits && t < p->ta.n_tasks; t++)
        free(p->bits[t]);
    free(p->bits);
    free(p->scores);
    free(p);
}

static const clv_adapter_ops pb_ops = {"piggyback", pb_weight, NULL, pb_backward, task_adapter_invalidate, pb_free};

clv_adapter *clv_piggyback_create(const clv_wlayer *l, int n_tasks, float threshold, clv_err *err)
{
    piggyback *p = calloc(1, sizeof *p);
    if (!p) {
        clv_errf(err, "out of memory");
        return NULL;
    }
    p->tau = threshold;
    p->scores = calloc((size_t)n_tasks, sizeof *p->scores);
    p->bits = calloc((size_t)n_tasks, sizeof *p->bits);
    p->ta.n_tasks = n_tasks;
    const int ok = p->scores && p->bits && !task_adapter_init(&p->ta, &pb_ops, l, n_tasks, CLV_VIEW_OURS, err);
    return task_adapter_made(&p->ta, p, ok, pb_free, err);
}

int clv_piggyback_add_task(clv_adapter *a, const clv_wlayer *l, int task, float init, float lr, clv_params *ps,
                           clv_err *err)
{
    piggyback *p = a->state;
    if (task < 0 || task >= p->ta.n_tasks || p->scores[task] || p->bits[task])
        return clv_errf(err, "%s: Piggyback task %d exists or is out of range", l->name, task + 1);
    clv_param *s = task_adapter_param(ps, l, "scores", 2, l->out, l->in, 1, lr, err);
    if (!s)
        return -1;
    for (int64_t i = 0; i < s->numel; i++)
        s->data[i] = init;
    s->mask_score = 1;
    p->scores[task] = s;
    p->ta.weff_valid = 0;
    return 0;
}

int clv_piggyback_freeze(clv_adapter *a, const clv_wlayer *l, int task, clv_err *err)
{
    piggyback *p = a->state;
    if (task < 0 || task >= p->ta.n_tasks || !p->scores[task])
        return clv_errf(err, "%s: Piggyback task %d has no scores to freeze", l->name, task + 1);
    const int64_t n = l->out * l->in;
    if (!(p->bits[task] = malloc((size_t)clv_mask_bytes(n))))
        return clv_errf(err, "out of memory");
    clv_mask_pack(p->bits[task], p->scores[task]->data, n, p->tau);
    p->scores[task] = NULL;
    p->ta.weff_valid = 0;
    return 0;
}

const uint8_t *clv_piggyback_mask(const clv_adapter *a, int task)
{
    const piggyback *p = a->state;
    return task >= 0 && task < p->ta.n_tasks ? p->bits[task] : NULL;
}

static int set_mask(clv_adapter *a, const clv_wlayer *l, int task, const uint8_t *bits, clv_err *err)
{
    piggyback *p = a->state;
    if (task < 0 || task >= p->ta.n_tasks)
        return clv_errf(err, "%s: task %d out of range", l->name, task + 1);
    const size_t bytes = (size_t)clv_mask_bytes(l->out * l->in);
    uint8_t *b = malloc(bytes);
    if (!b)
        return clv_errf(err, "out of memory");
    memcpy(b, bits, bytes);
    free(p->bits[task]);
    p->bits[task] = b;
    p->scores[task] = NULL;
    p->ta.weff_valid = 0;
    return 0;
}

/* ---- the lifecycle (clv_adapter_method): a task keeps 1 bit per weight ---- */

static clv_adapter *life_create(const clv_wlayer *l, const clv_adapter_settings *set, clv_err *err)
{
    return task_adapter_with_settings(clv_piggyback_create(l, set->n_tasks, set->threshold, err), set);
}

static int life_add_task(clv_adapter *a, const clv_wlayer *l, int task, clv_params *ps, clv_err *err)
{
    const clv_adapter_settings *set = &((piggyback *)a->state)->ta.set;
    return clv_piggyback_add_task(a, l, task, set->mask_init, set->lr_mask, ps, err);
}

static int life_end_task(clv_adapter *a, const clv_wlayer *l, int task, clv_err *err)
{
    return clv_piggyback_freeze(a, l, task, err) ? -1 : 1; /* only the bits are kept */
}

static int life_has_task(const clv_adapter *a, int task)
{
    const piggyback *p = a->state;
    return task >= 0 && task < p->ta.n_tasks && (p->scores[task] || p->bits[task]);
}

static void life_storage(const clv_adapter *a, const clv_wlayer *l, int task, clv_storage *out)
{
    clv_storage_add_bits(out, "weight_mask", l->out * l->in);
}

static int life_save(const clv_adapter *a, const clv_wlayer *l, int task, clv_st_writer *w, clv_err *err)
{
    return task_adapter_save_mask(w, l, "weight", clv_piggyback_mask(a, task), l->out * l->in, err) ? -1 : 1;
}

static int life_load(clv_adapter *a, const clv_wlayer *l, int task, const clv_safetensors *st, clv_params *ps,
                     clv_err *err)
{
    const uint8_t *bits = task_adapter_find_mask(st, l, "weight", l->out * l->in, err);
    return !bits || set_mask(a, l, task, bits, err) ? -1 : 0;
}

/* name, create, add_task, end_task, has_task, task_storage, save_task, load_task, mask_note */
const clv_adapter_method clv_adapter_piggyback = {
    "piggyback", life_create, life_add_task, life_end_task, life_has_task, life_storage, life_save, life_load,
    "1 bit per weight, row-major, least significant bit first"};

