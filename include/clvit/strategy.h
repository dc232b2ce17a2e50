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
