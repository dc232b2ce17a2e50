/* Continual-learning methods ("strategies") and the learner they act on.
 *
 * The learner is the shared backbone plus one head per task. A strategy
 * decides what trains in task t (trainable flags, adapters attached to the
 * backbone's weight layers), what is kept when the task ends, how the model
 * is switched to task t for evaluation, and what task t costs to store.
 * It never touches the data, the optimizer or the files directly: the
 * trainer calls its hooks. A new method is a new file plus one line in
 * src/cl/strategy_registry.c. */
#ifndef CLVIT_STRATEGY_H
#define CLVIT_STRATEGY_H

#include "clvit/config.h"
#include "clvit/model.h"
#include "clvit/run_record.h"
#include "clvit/safetensors.h"
#include "clvit/storage.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_learner {
    const clv_config *cfg;
    clv_model *model;  /* the shared backbone */
    clv_head *heads;   /* heads[t] for t < n_heads */
    int n_heads;
    int n_tasks;
    int pretrained;    /* the base came from --weights */
} clv_learner;

typedef struct clv_strategy clv_strategy;

/* What one training step hands a strategy's loss hook: this rank's share of
 * the batch after the forward and the head, and the gradients the step is
 * about to propagate. Gradients are of the mean over the whole batch (all
 * ranks): a per-image term l_i contributes dl_i / global_n. */
typedef struct clv_step_batch {
    int task;
    const float *x;        /* [n x in_chans x img x img] the images as the model saw them */
    const int32_t *y;      /* [n] labels within the task */
    int64_t n;             /* this rank's images */
    int64_t global_n;      /* the batch's images over all ranks */
    int feat_dim, classes; /* of the backbone's features, of the task's head */
    const float *feats;    /* [n x feat_dim] the backbone's output */
    const float *logits;   /* [n x classes] of the task's head */
    float *dfeats;         /* [n x feat_dim] += d(extra loss)/d(feats); goes through the backbone */
    float *dlogits;        /* [n x classes] += d(extra loss)/d(logits) (holds the cross-entropy's);
                              goes through the task's head */
} clv_step_batch;

/* A pass over the task's training images that a strategy's consolidate hook
 * can run (see clv_task_pass_grads); made by the trainer. */
typedef struct clv_task_pass clv_task_pass;

/* Called once per batch by clv_task_pass_grads, with the gradients of that
 * batch's mean cross-entropy in the grads of every trainable parameter
 * (summed over ranks); n the batch's images over all ranks. */
typedef int (*clv_pass_visit)(void *ctx, int64_t n, clv_err *err);

/* Runs over the task's training images in order, in batches of the run's
 * batch size, without augmentation, stopping after max_images (0: all):
 * forward, head, cross-entropy (against the true labels, or with
 * predicted_labels against the head's argmax, as an empirical or a
 * "max-prediction" Fisher wants), backward into the trainable parameters'
 * grads, visit, zeroed grads. Batch-norm running statistics are left as
 * they were. */
int clv_task_pass_grads(clv_task_pass *p, int64_t max_images, int predicted_labels, clv_pass_visit visit, void *ctx,
                        clv_err *err);

typedef struct clv_strategy_ops {
    const char *name;
    const char *summary;
    /* Allocates s->state (may leave it NULL). */
    int (*init)(clv_strategy *s, const clv_learner *L, clv_err *err);
    /* Before training task t (its head exists and trains): set what else trains. */
    int (*begin_task)(clv_strategy *s, clv_learner *L, int task, clv_err *err);
    /* After training task t: freeze, binarize, snapshot what the task keeps. */
    int (*end_task)(clv_strategy *s, clv_learner *L, int task, clv_err *err);
    /* Make the backbone compute task t's function (evaluation, predict). */
    int (*activate)(clv_strategy *s, clv_learner *L, int task, clv_err *err);
    /* Adds to out the exact bits task t stores beyond the shared base, by
     * kind, its head excluded (the trainer adds the head). */
    void (*task_storage)(clv_strategy *s, clv_learner *L, int task, clv_storage *out);
    /* The task's own tensors beside its head (NULL hooks: none). */
    int (*save_task)(clv_strategy *s, clv_learner *L, int task, clv_st_writer *w, clv_err *err);
    int (*load_task)(clv_strategy *s, clv_learner *L, int task, const clv_safetensors *st, clv_err *err);
    /* Parameters the strategy trains in task t besides backbone and head
     * (adapters); NULL: none. They are optimized and checkpointed. */
    clv_params *(*task_params)(clv_strategy *s, int task);
    void (*free)(clv_strategy *s);
    /* (optional) Tensors kept with the base network in base.safetensors
     * (Mask-RKR's LM, RM, F learned jointly with the base), and reading them
     * back once the base task is done. */
    int (*save_base)(clv_strategy *s, clv_learner *L, clv_st_writer *w, clv_err *err);
    int (*load_base)(clv_strategy *s, clv_learner *L, const clv_safetensors *st, clv_err *err);
    /* (optional; methods with a rank) The layers whose rank was capped: up to
     * max of them into caps; returns how many there are. */
    int (*rank_caps)(clv_strategy *s, clv_rank_cap *caps, int max);

    /* ---- hooks of the training step (clvit/step.h); a method with a loss
     * of its own (EWC, LwF) is a strategy with these, nothing else changes ---- */
    /* (optional) An extra loss term, called after the cross-entropy's
     * gradient is in b->dlogits and before the head's and the backbone's
     * backward: adds its gradients to b->dlogits and b->dfeats (and may
     * accumulate into the grads of trainable parameters it reaches through
     * its own computation, e.g. old heads; those are then summed over ranks
     * like any other). *loss (0 on entry): its value as a mean over this
     * rank's n images; a term of the parameters only (the same on every
     * rank) gives its value, and its gradient in after_backward. The step
     * reports cross-entropy + this. */
    int (*loss)(clv_strategy *s, clv_learner *L, const clv_step_batch *b, double *loss, clv_err *err);
    /* (optional) After the backward and the allreduce of the gradients (so
     * every rank holds the same), before clipping and the optimizer step:
     * adds gradients of parameter-only terms (EWC's penalty) to the grads of
     * the trainable parameters (the step's list). */
    int (*after_backward)(clv_strategy *s, clv_learner *L, int task, clv_params *trainable, clv_err *err);
    /* (optional) After task's last step, before end_task, with everything
     * that trained still trainable: a look at the task's data through the
     * trained network (EWC's Fisher: clv_task_pass_grads). */
    int (*consolidate)(clv_strategy *s, clv_learner *L, int task, clv_task_pass *pass, clv_err *err);
} clv_strategy_ops;

struct clv_strategy {
    const clv_strategy_ops *ops;
    void *state;
};

int clv_strategy_count(void);
const clv_strategy_ops *clv_strategy_ops_at(int i);
clv_strategy *clv_strategy_create(const char *name, const clv_learner *L, clv_err *err);
void clv_strategy_free(clv_strategy *s);

/* Helpers for strategies. */
int clv_learner_set_backbone_trainable(clv_learner *L, int trainable, clv_err *err);
/* Bits of a head: (feat_dim + 1) x classes floats. */
int64_t clv_head_bits(const clv_head *h);

#ifdef __cplusplus
}
#endif
#endif
