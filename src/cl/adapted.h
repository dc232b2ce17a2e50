/* The machinery of the adapted strategy (src/cl/strategy_adapted.c: rkr,
 * piggyback, maskrkr): an adapter on every weight layer of the backbone,
 * one parameter list per task, the base task (task 1 without --weights: the
 * backbone itself trains, adapters are the identity; afterwards it is
 * frozen), per-task norms and ranks. Internal. */
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
    const clv_adapter_method *method; /* what the adapters do over the run */
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
#endif
