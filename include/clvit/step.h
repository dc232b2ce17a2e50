/* One training step of a task, the same for the trainer and `clvit bench`:
 *
 *   forward -> head -> loss (cross-entropy + the strategy's loss hook)
 *   -> head and backbone backward -> allreduce -> strategy after_backward
 *   -> clip -> optimizer step -> zeroed grads, re-formed adapter weights
 *
 * clv_step_begin prepares a task as the trainer does (its head, the
 * strategy's begin_task, learning rates, the list of what trains, the
 * optimizer of the config); clv_step_run takes one step on a batch. */
#ifndef CLVIT_STEP_H
#define CLVIT_STEP_H

#include "clvit/checkpoint.h"
#include "clvit/dist.h"
#include "clvit/optim.h"
#include "clvit/strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One rank's batch at the head: features, logits and, for training, their
 * gradients and the softmax; grown to the largest batch seen. */
typedef struct clv_batch_bufs {
    int64_t cap_b;
    int cap_k;
    float *feats, *dfeats, *logits, *dlogits, *probs;
} clv_batch_bufs;
int clv_batch_bufs_ensure(clv_batch_bufs *b, int64_t B, int K, int64_t feat_dim, clv_err *err);
void clv_batch_bufs_free(clv_batch_bufs *b);

typedef struct clv_step {
    clv_learner *L;
    clv_strategy *strategy;
    int task;
    const clv_dist *dist;       /* NULL: one process */
    float clip_norm;            /* 0: no clipping */
    clv_optim *opt;
    clv_params trainable;       /* a view of everything that trains in the task */
    clv_param_group groups[3];  /* what the state file keeps: "model.", the head, "task." */
    int n_groups;
    clv_batch_bufs buf;         /* this rank's batch */
} clv_step;

typedef struct clv_step_stats {
    float loss;      /* the batch's mean loss over all ranks (cross-entropy + the strategy's) */
    int64_t correct; /* images the task's head got right, over all ranks */
    int stop;        /* in: this rank asks to stop after the step; out: some rank did */
    int diverged;    /* out: the step failed because the loss is not finite */
} clv_step_stats;

/* Prepares task (heads[task] freshly initialized from cfg->seed, trainable,
 * L->n_heads raised): strategy.begin_task, learning rates (backbone cfg->lr,
 * head cfg->lr_head, the strategy's tensors their own), the trainable list,
 * the optimizer of cfg. */
int clv_step_begin(clv_step *st, const clv_config *cfg, clv_learner *L, clv_strategy *s, int task, int n_classes,
                   const clv_dist *dist, clv_err *err);
/* One step on this rank's n images x [n x C x H x W] with labels y, of a
 * batch of global_n over all ranks, at cfg->lr times lr_factor. A
 * non-finite loss (over all ranks) is an error before any parameter
 * changes ("the loss is nan (diverged; ...)"). */
int clv_step_run(clv_step *st, const float *x, const int32_t *y, int64_t n, int64_t global_n, float lr_factor,
                 clv_step_stats *stats, clv_err *err);
/* Gradients of the mean cross-entropy of a batch (against y, or with
 * predicted_labels against the head's argmax) in the trainable parameters'
 * grads, summed over ranks; no hook, no optimizer step (clv_task_pass_grads). */
int clv_step_grads(clv_step *st, const float *x, const int32_t *y, int64_t n, int64_t global_n, int predicted_labels,
                   clv_err *err);
/* Frees the step's list, optimizer and buffers (not the learner). */
void clv_step_end(clv_step *st);

/* The learner of cfg as the trainer builds it: the backbone (initialized
 * from cfg->seed, or cfg->weights, then frozen), cfg->tasks empty heads,
 * the strategy of cfg->method. Free with clv_learner_free. */
int clv_learner_build(clv_learner *L, clv_strategy **s, const clv_config *cfg, clv_err *err);
void clv_learner_free(clv_learner *L, clv_strategy *s);

#ifdef __cplusplus
}
#endif
#endif
