/* Shared machinery of the method adapters (see task_adapter.h) and the
 * bit-packed masks. */
#include "adapt/task_adapter.h"

#include <stdio.h>
#include <string.h>

#include "clvit/gemm.h"
#include "clvit/kernels.h"
#include "clvit/mask_density.h"

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

/* A conv weight (Cout, Cin, k, k) in the rkr view; *k = 0 for our view or a
 * layer that is not a convolution. */
static int conv_kernel(const clv_wlayer *l, clv_conv_view view, int64_t *k, clv_err *err)
{
    *k = 0;
    if (view != CLV_VIEW_RKR || l->weight->ndim != 4)
        return 0;
    const int64_t *sh = l->weight->shape;
    if (sh[2] != sh[3] || sh[0] != l->out || sh[1] * sh[2] * sh[3] != l->in)
        return clv_errf(err, "%s: RKR's conv view needs a square kernel (weight %lld x %lld x %lld x %lld)", l->name,
                        (long long)sh[0], (long long)sh[1], (long long)sh[2], (long long)sh[3]);
    *k = sh[2];
    return 0;
}

int clv_rect_shape(const clv_wlayer *l, clv_conv_view view, int64_t *rows, int64_t *cols, clv_err *err)
{
    int64_t k;
    if (conv_kernel(l, view, &k, err))
        return -1;
    *rows = k ? l->weight->shape[1] * k : l->out;
    *cols = k ? l->out * k : l->in;
    return 0;
}

int task_adapter_init(task_adapter *ta, const clv_adapter_ops *ops, const clv_wlayer *l, int n_tasks,
                      clv_conv_view view, clv_err *err)
{
    ta->base.ops = ops;
    ta->base.state = ta;
    ta->active = -1;
    ta->n_tasks = n_tasks;
    ta->out = l->out;
    ta->in = l->in;
    if (conv_kernel(l, view, &ta->conv_k, err) || clv_rect_shape(l, view, &ta->rows, &ta->cols, err))
        return -1;
    if (!(ta->weff = clv_alloc_array((size_t)(l->out * l->in), sizeof(float))) ||
        (ta->conv_k && !(ta->rect = clv_alloc_array((size_t)(ta->rows * ta->cols), sizeof(float)))))
        return clv_errf(err, "%s: out of memory for the adapted weight", l->name);
    return 0;
}

int64_t task_adapter_max_rank(const task_adapter *ta) { return ta->rows < ta->cols ? ta->rows : ta->cols; }

void task_adapter_release(task_adapter *ta)
{
    clv_free(ta->weff);
    clv_free(ta->rect);
    clv_free(ta->scratch);
}

float *task_adapter_scratch(task_adapter *ta, const clv_wlayer *l, size_t n, clv_err *err)
{
    if (clv_scratch_reserve((void **)&ta->scratch, &ta->scratch_cap, n, sizeof(float))) {
        clv_errf(err, "%s: out of memory for the adapter's backward (%zu floats)", l->name, n);
        return NULL;
    }
    return ta->scratch;
}

const float *task_adapter_full_dweight(task_adapter *ta, const clv_wlayer *l, const ta_grad *src, clv_err *err)
{
    if (src->dw)
        return src->dw;
    float *t = task_adapter_scratch(ta, l, (size_t)(l->out * l->in), err);
    if (!t)
        return NULL;
    if (clv_wlayer_gemm_dyt_x(l, src->dy, src->x, src->N, 0.0f, t, err))
        return NULL;
    if (src->s) /* diag(s) dy^T x: rows scaled after the product */
        for (int64_t c = 0; c < l->out; c++)
            for (int64_t i = 0; i < l->in; i++)
                t[c * l->in + i] *= src->s[c];
    return t;
}

int task_adapter_identity_backward(task_adapter *ta, const clv_wlayer *l, const ta_grad *src, clv_err *err)
{
    if (!l->weight->trainable)
        return 0;
    if (!src->dw && !src->s)
        return clv_wlayer_gemm_dyt_x(l, src->dy, src->x, src->N, 1.0f, l->weight->grad, err);
    const float *dw = task_adapter_full_dweight(ta, l, src, err);
    if (!dw)
        return -1;
    const int64_t n = l->out * l->in;
    for (int64_t i = 0; i < n; i++)
        l->weight->grad[i] += dw[i];
    return 0;
}

void task_adapter_form_lowrank(task_adapter *ta, const clv_wlayer *l, const float *A, const float *B, int K)
{
    memcpy(ta->weff, l->weight->data, (size_t)(l->out * l->in) * sizeof(float));
    if (!ta->conv_k) {
        clv_gemm(0, 0, l->out, l->in, K, 1.0f, A, K, B, l->in, 1.0f, ta->weff, l->in);
        return;
    }
    clv_gemm(0, 0, ta->rows, ta->cols, K, 1.0f, A, K, B, ta->cols, 0.0f, ta->rect, ta->cols);
    clv_rkr_view_add(ta->weff, ta->rect, l->out, ta->rows / ta->conv_k, ta->conv_k);
}

/* dA += dR B^T, dB += A^T dR for dR [rows x cols], the rectification's full gradient */
static void lowrank_from_full(float *dA, float *dB, const float *dR, const float *A, const float *B, int K,
                              int64_t rows, int64_t cols)
{
    if (dA)
        clv_gemm(0, 1, rows, K, cols, 1.0f, dR, cols, B, cols, 1.0f, dA, K);
    if (dB)
        clv_gemm(1, 0, K, cols, rows, 1.0f, A, K, dR, cols, 1.0f, dB, cols);
}

int task_adapter_lowrank_backward(task_adapter *ta, const clv_wlayer *l, const float *A, const float *B, int K,
                                  const ta_grad *src, float *dA, float *dB, clv_err *err)
{
    const int64_t k = ta->conv_k, cin = k ? ta->rows / k : 0;
    if (src->dw) { /* the full gradient is given: two small products (through the conv view's placement) */
        if (!dA && !dB)
            return 0;
        const float *dR = src->dw;
        if (k) {
            float *t = task_adapter_scratch(ta, l, (size_t)(ta->rows * ta->cols), err);
            if (!t)
                return -1;
            clv_rkr_view_gather(t, src->dw, l->out, cin, k);
            dR = t;
        }
        lowrank_from_full(dA, dB, dR, A, B, K, ta->rows, ta->cols);
        return 0;
    }
    const int64_t N = src->N;
    float *t = task_adapter_scratch(ta, l,
                                    (size_t)(k ? clv_rkr_view_backward_scratch_floats(N, cin, l->out, k, K)
                                               : clv_lowrank_backward_scratch_floats(N, l->in, l->out, K)),
                                    err);
    if (!t)
        return -1;
    if (k)
        clv_rkr_view_backward(dA, dB, src->x, src->dy, src->s, A, B, N, cin, l->out, k, K, t);
    else
        clv_lowrank_backward(dA, dB, src->x, src->dy, src->s, A, B, N, l->in, l->out, K, t);
    return 0;
}

int task_adapter_rkr_backward(task_adapter *ta, const clv_wlayer *l, clv_param *lm, clv_param *rm, clv_param *f, int K,
                              const ta_grad *src, const float *ds, clv_err *err)
{
    if (task_adapter_lowrank_backward(ta, l, lm->data, rm->data, K, src, lm->trainable ? lm->grad : NULL,
                                      rm->trainable ? rm->grad : NULL, err))
        return -1;
    if (ds && f->trainable)
        for (int64_t c = 0; c < l->out; c++)
            f->grad[c] += ds[c];
    return 0;
}

int task_adapter_rkr_factor_grads(const clv_wlayer *l, clv_param *lm, clv_param *rm, clv_param *f, int K,
                                  const float *dA, const float *dB, const float *ds)
{
    if (lm->trainable)
        for (int64_t i = 0; i < lm->numel; i++)
            lm->grad[i] += dA[i];
    if (rm->trainable)
        for (int64_t i = 0; i < rm->numel; i++)
            rm->grad[i] += dB[i];
    if (ds && f->trainable)
        for (int64_t c = 0; c < l->out; c++)
            f->grad[c] += ds[c];
    (void)K;
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

clv_adapter *task_adapter_made(task_adapter *ta, void *state, int ok, void (*free_fn)(clv_adapter *), clv_err *err)
{
    ta->base.state = state;
    if (ok)
        return &ta->base;
    if (err && !err->msg[0])
        clv_errf(err, "out of memory");
    free_fn(&ta->base);
    return NULL;
}

clv_adapter *task_adapter_with_settings(clv_adapter *a, const clv_adapter_settings *set)
{
    if (a) /* every adapter's state begins with its task_adapter */
        ((task_adapter *)a->state)->set = *set;
    return a;
}

uint64_t task_adapter_key(const task_adapter *ta, int task)
{
    return clv_rng_key(ta->set.seed, CLV_STREAM_ADAPTER, (uint64_t)ta->set.layer, (uint64_t)task);
}

int task_adapter_save_params(clv_param *const *ps, int n, const char *prefix, clv_st_writer *w, clv_err *err)
{
    for (int i = 0; i < n; i++)
        if (clv_st_writer_add_param(w, ps[i], prefix, err))
            return -1;
    return 0;
}

int task_adapter_load_params(const clv_safetensors *st, clv_param *const *ps, int n, const char *prefix,
                             clv_err *err)
{
    clv_params view = {(clv_param **)ps, n, (size_t)n}; /* borrowed: never freed */
    return clv_st_load_params(st, &view, prefix, 0, err);
}

int task_adapter_save_mask(clv_st_writer *w, const clv_wlayer *l, const char *what, const uint8_t *bits, int64_t n,
                           clv_err *err)
{
    if (!bits)
        return clv_errf(err, "%s: no %s mask to save", l->name, what);
    char name[CLV_NAME_LEN + 32], key[CLV_NAME_LEN + 64], count[32];
    snprintf(name, sizeof name, "mask.%s.%s", l->name, what);
    int64_t shape[1] = {clv_mask_bytes(n)};
    /* the exact bit count beside the padded bytes: the file alone tells a mask's density */
    clv_mask_bits_key(key, sizeof key, name);
    snprintf(count, sizeof count, "%lld", (long long)n);
    return clv_st_writer_add(w, name, CLV_DT_U8, 1, shape, bits, err) || clv_st_writer_meta(w, key, count, err) ? -1
                                                                                                                 : 0;
}

const uint8_t *task_adapter_find_mask(const clv_safetensors *st, const clv_wlayer *l, const char *what, int64_t n,
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
    char key[CLV_NAME_LEN + 64], count[32];
    clv_mask_bits_key(key, sizeof key, name);
    snprintf(count, sizeof count, "%lld", (long long)n);
    const char *recorded = clv_st_meta(st, key); /* absent in files written before it was recorded */
    if (recorded && strcmp(recorded, count)) {
        clv_errf(err, "%s: metadata %s says %s bits, the model's %s mask has %lld", st->path, key, recorded, what,
                 (long long)n);
        return NULL;
    }
    return clv_st_tensor_data(st, t);
}
