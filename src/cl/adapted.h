/* What the adapter-based strategies (rkr, piggyback, maskrkr) share: an
 * adapter on every weight layer of the backbone, one parameter list per
 * task, and the base task (task 1 without --weights: the backbone itself
 * trains, adapters are the identity; afterwards it is frozen). Internal. */
#ifndef CLVIT_CL_ADAPTED_H
#define CLVIT_CL_ADAPTED_H

#include "clvit/adapters.h"
#include "clvit/strategy.h"

/* --task-norms: the model's norm parameters (affine and running statistics)
 * hold the active task's values; the base's are kept aside, each learned
 * task's in its own copy. */
typedef struct task_norms {
    int n;             /* norm parameters of the model; 0 when off */
    clv_param **p;
    int64_t floats;    /* their total size */
    float *base;       /* the base's values */
    float **task;      /* task[t]: task t's values, NULL until learned */
} task_norms;

typedef struct adapted {
    int n_layers, n_tasks;
    task_norms tn;
    clv_wlayer **layers; /* the adapted weight layers (the model's, without the first with --adapt no-patch-embed) */
    int first;          /* index of layers[0] in the model's wlayers */
    int *rank;          /* rkr, maskrkr: each layer's rank (--rank capped at the layer's; adapted_set_ranks) */
    int rank_wanted;    /* --rank */
    int base_adapted;   /* the base task runs through the adapters too (maskrkr --maskrkr-source joint) */
    clv_adapter **ad;   /* ad[i] sits in layers[i] */
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
/* end_task with --task-norms: task keeps the norms it trained (the base task:
 * the base's), and the model returns to the base's. */
int adapted_end_norms(adapted *s, int task, clv_err *err);
/* Switches adapters (and norms, with --task-norms) to task. */
void adapted_select(adapted *s, int task);
/* begin_task of an adapted task: the frozen base, and with --task-norms the
 * norm layers train (from the base's values). */
int adapted_begin_task(adapted *s, clv_learner *L, int task, clv_err *err);
/* With --task-norms: the floats task t stores for its norms (0 when off or base). */
int64_t adapted_norm_floats(const adapted *s, int task);
/* Task t's norms as "norms.<param>" tensors, or read back (no-ops when off;
 * loading also takes the base's norms from the model, which then holds the
 * run's base file: call it first in load_task). */
int adapted_save_norms(const adapted *s, int task, clv_st_writer *w, clv_err *err);
int adapted_load_norms(adapted *s, int task, const clv_safetensors *st, clv_err *err);
/* Key for adapted layer i of task (CLV_STREAM_ADAPTER), by the layer's
 * index in the model, so a layer draws the same whichever layers are adapted. */
uint64_t adapted_key(const adapted *s, const clv_learner *L, int layer, int task);
/* --lr-adapter, or --lr when it is 0: the learning rate of LM, RM, F. */
float adapted_lr(const clv_learner *L);
/* --conv-view as the adapters' enum. */
clv_conv_view adapted_view(const clv_learner *L);
/* rkr, maskrkr: each layer's rank, --rank capped at min(rows, cols) of its
 * rectification (the log names the capped layers once); before creating
 * the adapters. */
int adapted_set_ranks(adapted *s, const clv_learner *L, clv_err *err);
/* The strategies' rank_caps hook (clvit/strategy.h). */
int adapted_rank_caps(const adapted *s, clv_rank_cap *caps, int max);
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
