/* What the three method adapters share: the active task, the cache of the
 * effective weight, the backward scratch, and the identity behaviour on the
 * base network. Internal to src/adapt. */
#ifndef CLVIT_ADAPT_TASK_ADAPTER_H
#define CLVIT_ADAPT_TASK_ADAPTER_H

#include "clvit/adapters.h"

typedef struct task_adapter {
    clv_adapter base;   /* base.state points back to this struct */
    int active;         /* selected task, -1 the base network */
    int n_tasks;
    int64_t out, in;
    int64_t rows, cols; /* the rectification's matrix (clv_rect_shape): out x in, or RKR's conv view */
    int64_t conv_k;     /* RKR's conv view: the kernel size k (Cin = rows / k); 0: our view */
    float *rect;        /* RKR's conv view: the product LM RM [rows x cols] before placement */
    float *weff;        /* effective weight of the active task */
    int weff_valid;
    float *scratch;
    size_t scratch_cap; /* floats */
    clv_adapter_settings set; /* when made by a clv_adapter_method's create */
} task_adapter;

/* Where an adapter's weight gradients come from: the layer's input x
 * [N x in] and output gradient dy with its scale s (dz = dy * s, never
 * formed), or, when dw is set, the full gradient of the effective weight
 * dw [out x in] = dz^T x. Both adapter entry points (backward and
 * backward_dweight) go through the same code with one of them. */
typedef struct ta_grad {
    const float *x, *dy, *s;
    int64_t N;
    const float *dw;
} ta_grad;

static inline ta_grad ta_grad_rows(const float *x, const float *dy, const float *s, int64_t N)
{
    return (ta_grad){.x = x, .dy = dy, .s = s, .N = N, .dw = NULL};
}
static inline ta_grad ta_grad_dweight(const float *dw) { return (ta_grad){.dw = dw}; }

/* dW_eff [out x in] = dz^T x, or src->dw itself when given; NULL (err set) when scratch is short. */
const float *task_adapter_full_dweight(task_adapter *ta, const clv_wlayer *l, const ta_grad *src, clv_err *err);

int task_adapter_init(task_adapter *ta, const clv_adapter_ops *ops, const clv_wlayer *l, int n_tasks,
                      clv_conv_view view, clv_err *err);
/* min(rows, cols): the largest rank of a rectification */
int64_t task_adapter_max_rank(const task_adapter *ta);
void task_adapter_release(task_adapter *ta);
/* At least n floats of scratch (NULL with err naming layer l on allocation failure). */
float *task_adapter_scratch(task_adapter *ta, const clv_wlayer *l, size_t n, clv_err *err);
/* The base network's backward: dW += dz^T x when the base weight trains,
 * dz = dy * s per column (s NULL: dz = dy). -1 (err set) when scratch is short. */
int task_adapter_identity_backward(task_adapter *ta, const clv_wlayer *l, const ta_grad *src, clv_err *err);
/* Writes W + A B (A rows x K, B K x cols, placed into W's layout by the
 * view) into ta->weff. */
void task_adapter_form_lowrank(task_adapter *ta, const clv_wlayer *l, const float *A, const float *B, int K);
/* Low-rank backward of z = x (W + A B)^T: dA += dz^T (x B^T) and
 * dB += (dz A)^T x (each skipped when NULL; in RKR's conv view the same
 * through the placement), never forming the full dW; dz = dy * s per
 * column (s NULL: dz = dy), never formed either. */
int task_adapter_lowrank_backward(task_adapter *ta, const clv_wlayer *l, const float *A, const float *B, int K,
                                  const ta_grad *src, float *dA, float *dB, clv_err *err);
/* RKR's backward for W + LM RM with output scale F: the low-rank gradients
 * of LM and RM (each only when it trains) and dF += ds. Shared by rkr and
 * maskrkr (on its shared tensors). */
int task_adapter_rkr_backward(task_adapter *ta, const clv_wlayer *l, clv_param *lm, clv_param *rm, clv_param *f, int K,
                              const ta_grad *src, const float *ds, clv_err *err);
/* lm, rm, f += dA [rows x K], dB [K x cols], ds (each only when it trains; ds may be NULL). */
int task_adapter_rkr_factor_grads(const clv_wlayer *l, clv_param *lm, clv_param *rm, clv_param *f, int K,
                                  const float *dA, const float *dB, const float *ds);
void task_adapter_invalidate(clv_adapter *a);
/* A param of ps named "<layer>.<what>" (appended; NULL with err on failure). */
clv_param *task_adapter_param(clv_params *ps, const clv_wlayer *l, const char *what, int ndim, int64_t d0,
                              int64_t d1, int trainable, float lr, clv_err *err);

/* The end of an adapter's create: with ok, its slot (state set); otherwise
 * NULL, err saying "out of memory" unless it says more, and the adapter
 * freed by free_fn (which may see a partly made state). */
clv_adapter *task_adapter_made(task_adapter *ta, void *state, int ok, void (*free_fn)(clv_adapter *), clv_err *err);
/* a (made by one of the adapters' create functions, or NULL) keeps the
 * settings its lifecycle reads; returns a. */
clv_adapter *task_adapter_with_settings(clv_adapter *a, const clv_adapter_settings *set);
/* The layer's draws for task (clv_adapter_settings.layer). */
uint64_t task_adapter_key(const task_adapter *ta, int task);
/* Writes the n params as F32 under prefix, or reads them back (shapes must match). */
int task_adapter_save_params(clv_param *const *ps, int n, const char *prefix, clv_st_writer *w, clv_err *err);
int task_adapter_load_params(const clv_safetensors *st, clv_param *const *ps, int n, const char *prefix,
                             clv_err *err);
/* A U8 tensor "mask.<layer>.<what>" of a packed mask of n bits, its bit count in the metadata. */
int task_adapter_save_mask(clv_st_writer *w, const clv_wlayer *l, const char *what, const uint8_t *bits, int64_t n,
                           clv_err *err);
/* The bytes of that tensor, checked against n bits; NULL with err set. */
const uint8_t *task_adapter_find_mask(const clv_safetensors *st, const clv_wlayer *l, const char *what, int64_t n,
                                      clv_err *err);

#endif
