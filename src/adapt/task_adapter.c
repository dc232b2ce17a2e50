/* Shared machinery of the method adapters (see task_adapter.h) and the
 * bit-packed masks. */
#include "adapt/task_adapter.h"

#include <stdio.h>
#include <string.h>

#include "clvit/gemm.h"
#include "clvit/kernels.h"

void clv_mask_pack(uint8_t *bits, const float *scores, int64_t n, float threshold)
{
    memset(bits, 0, (size_t)clv_mask_bytes(n));
    for (int64_t i = 0; i < n; i++)
        bits[i >> 3] |= (uint8_t)((scores[i] > threshold) << (i & 7));
}

void clv_mask_apply(float *out, const float *values, const uint8_t *bits, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        out[i] = clv_mask_bit(bits, i) ? (values ? values[i] : 1.0f) : 0.0f;
}

int64_t clv_mask_count(const uint8_t *bits, int64_t n)
{
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++)
        c += clv_mask_bit(bits, i);
    return c;
}

void clv_task_adapter_select(clv_adapter *a, int task)
{
    task_adapter *ta = a->state;
    ta->active = task;
    a->ops->invalidate(a); /* the effective tensors are the old task's */
}

int clv_task_adapter_selected(const clv_adapter *a) { return ((const task_adapter *)a->state)->active; }

int task_adapter_init(task_adapter *ta, const clv_adapter_ops *ops, const clv_wlayer *l, int n_tasks,
                      clv_err *err)
{
    ta->base.ops = ops;
    ta->base.state = ta;
    ta->active = -1;
    ta->n_tasks = n_tasks;
    ta->out = l->out;
    ta->in = l->in;
    if (!(ta->weff = clv_alloc_array((size_t)(l->out * l->in), sizeof(float))))
        return clv_errf(err, "%s: out of memory for the adapted weight", l->name);
    return 0;
}

void task_adapter_release(task_adapter *ta)
{
    clv_free(ta->weff);
    clv_free(ta->scratch);
}

float *task_adapter_scratch(task_adapter *ta, size_t n)
{
    if (n > ta->scratch_cap) {
        clv_free(ta->scratch);
        ta->scratch_cap = 0;
        if (!(ta->scratch = clv_alloc_array(n, sizeof(float))))
            return NULL;
        ta->scratch_cap = n;
    }
    return ta->scratch;
}

int task_adapter_identity_backward(task_adapter *ta, const clv_wlayer *l, const float *x, const float *dy,
                                   const float *s, int64_t N)
{
    if (!l->weight->trainable)
        return 0;
    if (!s) {
        clv_gemm(1, 0, l->out, l->in, N, 1.0f, dy, l->out, x, l->in, 1.0f, l->weight->grad, l->in);
        return 0;
    }
    /* dW += diag(s) dy^T x: rows scaled after the product */
    float *t = task_adapter_scratch(ta, (size_t)(l->out * l->in));
    if (!t)
        return -1;
    clv_gemm(1, 0, l->out, l->in, N, 1.0f, dy, l->out, x, l->in, 0.0f, t, l->in);
    for (int64_t c = 0; c < l->out; c++)
        for (int64_t i = 0; i < l->in; i++)
            l->weight->grad[c * l->in + i] += s[c] * t[c * l->in + i];
    return 0;
}

void task_adapter_form_lowrank(task_adapter *ta, const clv_wlayer *l, const float *A, const float *B, int K)
{
    memcpy(ta->weff, l->weight->data, (size_t)(l->out * l->in) * sizeof(float));
    clv_gemm(0, 0, l->out, l->in, K, 1.0f, A, K, B, l->in, 1.0f, ta->weff, l->in);
}

int task_adapter_lowrank_backward(task_adapter *ta, const clv_wlayer *l, const float *A, const float *B, int K,
                                  const float *x, const float *dy, const float *s, int64_t N, float *dA, float *dB)
{
    float *t = task_adapter_scratch(ta, (size_t)clv_lowrank_backward_scratch_floats(N, l->in, l->out, K));
    if (!t)
        return -1;
    clv_lowrank_backward(dA, dB, x, dy, s, A, B, N, l->in, l->out, K, t);
    return 0;
}

void task_adapter_invalidate(clv_adapter *a) { ((task_adapter *)a->state)->weff_valid = 0; }

clv_param *task_adapter_param(clv_params *ps, const clv_wlayer *l, const char *what, int ndim, int64_t d0,
                              int64_t d1, int trainable, float lr, clv_err *err)
{
    char name[CLV_NAME_LEN];
    if ((size_t)snprintf(name, sizeof name, "%s.%s", l->name, what) >= sizeof name) {
        clv_errf(err, "%s.%s: name too long", l->name, what);
        return NULL;
    }
    int64_t shape[2] = {d0, d1};
    clv_param *p = clv_params_add(ps, name, ndim, shape, err);
    if (!p)
        return NULL;
    p->no_decay = 1; /* adapter tensors are not decayed toward zero: F's neutral value is 1 */
    p->lr_scale = lr;
    if (trainable && clv_param_set_trainable(p, 1, err))
        return NULL;
    return p;
}
