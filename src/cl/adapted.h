/* What the adapter-based strategies (rkr, piggyback, maskrkr) share: an
 * adapter on every weight layer of the backbone, one parameter list per
 * task, and the base task (task 1 without --weights: the backbone itself
 * trains, adapters are the identity; afterwards it is frozen). Internal. */
#ifndef CLVIT_CL_ADAPTED_H
#define CLVIT_CL_ADAPTED_H

#include "clvit/adapters.h"
#include "clvit/strategy.h"

typedef struct adapted {
    int n_layers, n_tasks;
    clv_adapter **ad;   /* ad[i] sits in model->wlayers[i] */
    clv_params *task_ps; /* task_ps[t]: what task t trains (and, for rkr, keeps) */
    int base_task;      /* 0 when the base trains on task 1, -1 when pretrained */
    clv_model *model;   /* the backbone the adapters sit in */
} adapted;

/* Allocates a zeroed block of size bytes starting with an adapted (size
 * >= sizeof(adapted)) and fills it; the caller then creates ad[i] and calls
 * adapted_attach. */
void *adapted_new(const clv_learner *L, size_t size, clv_err *err);
void adapted_attach(adapted *s);
/* Detaches and frees the adapters, the per-task lists and the block. */
void adapted_free(adapted *s);
/* begin_task for the base task: the backbone trains, adapters are the identity. */
int adapted_begin_base(adapted *s, clv_learner *L, clv_err *err);
/* Freezes the backbone and task's own params. */
int adapted_end(adapted *s, clv_learner *L, int task, clv_err *err);
void adapted_select(adapted *s, int task);
/* Key for layer i of task (CLV_STREAM_ADAPTER). */
uint64_t adapted_key(const clv_learner *L, int layer, int task);
/* Writes task's params as F32 under prefix, or reads them back. */
int adapted_save_params(const clv_params *ps, const char *prefix, clv_st_writer *w, clv_err *err);
int adapted_load_params(const clv_safetensors *st, clv_params *ps, const char *prefix, clv_err *err);
/* A U8 tensor "mask.<layer>.<what>" of a packed mask of n bits. */
int adapted_save_mask(clv_st_writer *w, const clv_wlayer *l, const char *what, const uint8_t *bits, int64_t n,
                      clv_err *err);
/* The bytes of that tensor, checked against n bits; NULL with err set. */
const uint8_t *adapted_find_mask(const clv_safetensors *st, const clv_wlayer *l, const char *what, int64_t n,
                                 clv_err *err);

#endif
