/* The task-by-task training loop and the run directory it fills.
 *
 * For each task t: strategy.begin_task -> epochs of (loader -> forward ->
 * loss -> backward -> clip -> optimizer step) -> strategy.end_task ->
 * task-NN.safetensors, base.safetensors -> evaluate tasks 0..t -> run.json.
 * A checkpoint (state.safetensors: parameters, optimizer state, position)
 * is written atomically at every epoch end, every checkpoint_every steps
 * and when a stop is requested, so a run killed at any moment resumes with
 * at most the epoch in progress lost, and an interrupted-then-resumed run
 * gives the same numbers as an uninterrupted one. */
#ifndef CLVIT_TRAINER_H
#define CLVIT_TRAINER_H

#include <signal.h>

#include "clvit/config.h"
#include "clvit/optim.h"
#include "clvit/run_record.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_train_opts {
    const char *out_dir;
    int resume;                    /* continue the run in out_dir */
    int overwrite;                 /* start afresh even if out_dir holds a run */
    volatile sig_atomic_t *stop;   /* set asynchronously (SIGINT): checkpoint and return CLV_STOPPED */
    int64_t stop_after_steps;      /* testing: behave as if stopped after this many optimizer steps of
                                      this call, counted across tasks (0: never) */
    int progress;                  /* 0 quiet, 1 a line per epoch, 2 plus a live bar */
    const struct clv_dist *dist;   /* data-parallel ranks (clvit/dist.h); NULL: one process */
    int argc;                      /* the command line, recorded in run.json's "commands" (argv NULL: none) */
    char *const *argv;
} clv_train_opts;

#define CLV_STOPPED 2 /* clv_train_run's return when stopped early (checkpoint written) */

/* Runs (or resumes) a whole task sequence; 0 when complete, CLV_STOPPED
 * when stopped with a checkpoint, -1 on error. */
int clv_train_run(const clv_config *cfg, const clv_train_opts *opts, clv_err *err);

/* Optimizer steps of one epoch over n training images: the ragged last
 * batch is dropped, unless it is the only one. */
int64_t clv_steps_per_epoch(int64_t n_images, int batch);
/* The learning-rate schedule of one task under cfg (train.schedule,
 * warmup_epochs, min_lr_ratio, lr_step_epochs, lr_step_gamma); every
 * parameter group's rate (backbone, heads, scores, adapters) follows it. */
clv_schedule clv_task_schedule(const clv_config *cfg, int64_t steps_per_epoch);

/* Re-evaluates every finished task of the run in run_dir with the weights
 * saved there (threads 0: the run's setting; precision a clv_precision, or
 * -1 for the run's train.precision). rec and cfg receive the run's
 * record and config (free rec with clv_run_record_free); *acc_now a malloc'ed
 * array of rec->n_tasks accuracies measured now, NAN for unfinished tasks. */
int clv_eval_run(const char *run_dir, int threads, int precision, clv_run_record *rec, clv_config *cfg, double **acc_now,
                 clv_err *err);

#ifdef __cplusplus
}
#endif
#endif
