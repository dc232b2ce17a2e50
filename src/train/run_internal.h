/* What the trainer, the evaluator and the predictor share: a run in memory
 * (config, data, task split, learner, strategy, record) and the steps that
 * build it and evaluate it. Internal to the library. */
#ifndef CLVIT_TRAIN_RUN_INTERNAL_H
#define CLVIT_TRAIN_RUN_INTERNAL_H

#include "clvit/checkpoint.h"
#include "clvit/data.h"
#include "clvit/dist.h"
#include "clvit/run_record.h"
#include "clvit/step.h"
#include "clvit/strategy.h"
#include "clvit/task_checks.h"
#include "clvit/tasks.h"
#include "clvit/trainer.h"

typedef struct clv_run {
    const clv_config *cfg;
    const char *dir;
    const clv_train_opts *opts; /* training only */
    int64_t steps_run;          /* optimizer steps taken by this process (for stop_after_steps) */
    const clv_dist *dist;       /* NULL: one process */
    int writer;                 /* this process writes the run directory (rank 0) */
    clv_dataset *train, *test;
    clv_task_split split;
    clv_norm norm;
    clv_learner L;
    clv_strategy *strategy;
    clv_run_record rec;
    clv_task_curve curve;       /* the training curve of the task being learned (task_checks.h) */
    clv_batch_bufs eval;        /* evaluation's features and logits */
} clv_run;

/* Opens the datasets and splits them into the config's tasks; sets the
 * normalization of the data kind. */
int clv_run_open_data(clv_run *R, clv_err *err);
/* Model (from cfg->weights if given), heads, strategy; with load_done, the
 * run directory's base and the files of every finished task. */
int clv_run_build_learner(clv_run *R, int load_done, clv_err *err);
void clv_run_free(clv_run *R);
/* Switches the backbone to task's function (strategy.activate + fresh caches). */
int clv_run_activate(clv_run *R, int task, clv_err *err);
/* Logits of the activated task for B images (into R->logits). */
int clv_run_logits(clv_run *R, int task, const float *x, int64_t B, clv_err *err);
/* The loader of task's training images in epoch as the trainer reads
 * them (shuffled, augmented per the config, this rank's share). */
clv_loader_config clv_run_loader_config(const clv_run *R, int task, int epoch);
/* Task `task`'s test images in order, unsharded (evaluation and routing). */
clv_loader_config clv_run_test_loader_config(const clv_run *R, int task);

/* What a strategy's consolidate hook runs over (clvit/strategy.h). */
struct clv_task_pass {
    clv_run *R;
    clv_step *step; /* the task's step: its trainable list and buffers */
    int task;
};

/* Test accuracy (percent) of task on its test images (cfg->test_limit). */
int clv_run_evaluate_task(clv_run *R, int task, double *acc, clv_err *err);

#endif
