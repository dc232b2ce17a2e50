/* metrics.csv: the training curve of a run, one row per optimizer step,
 * written as it trains (flushed at every epoch's end and checkpoint) and
 * read back for `clvit report --plot`.
 *
 *   task,epoch,step,loss,train_accuracy,lr,images_per_s
 *   1,1,1,2.3142,12.50,0.0003,812.4
 *
 * task and epoch count from 1, step from 1 within its task; loss and
 * train_accuracy (percent) are the step's batch's; lr is the backbone's
 * rate (--lr) times the schedule's factor at that step (every other rate
 * follows the same factor); images_per_s is the batch over the wall time
 * since the previous row. A resumed run first drops the rows past the
 * point it resumes from, so each step has one row. */
#ifndef CLVIT_METRICS_LOG_H
#define CLVIT_METRICS_LOG_H

#include <stdint.h>
#include <stdio.h>

#include "clvit/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_metrics_log {
    FILE *f;                  /* NULL: not logging (a rank that does not write) */
    int task;                 /* 0-based */
    int steps_per_epoch, checkpoint_every;
    double last_time;
} clv_metrics_log;

/* Starts the rows of task (0-based) after `done_steps` of its steps (0, or
 * where a resumed task continues): dir/metrics.csv keeps its rows of earlier
 * tasks and of this task's first done_steps steps, the rest is dropped
 * (also a half-written last line), and rows are appended from here. */
int clv_metrics_log_begin(clv_metrics_log *m, const char *dir, int task, int64_t done_steps, int steps_per_epoch,
                          int checkpoint_every, clv_err *err);
/* The row of step `step` (1-based within the task, in epoch, 0-based). */
void clv_metrics_log_row(clv_metrics_log *m, int epoch, int64_t step, double loss, int64_t correct, int64_t images,
                         double lr);
/* Flushes and closes (also after an error or a stop). */
void clv_metrics_log_end(clv_metrics_log *m);

typedef struct clv_metrics_row {
    int task, epoch;          /* 1-based, as in the file */
    int64_t step;
    double loss, train_accuracy, lr, images_per_s;
} clv_metrics_row;

/* Reads path's rows (malloc'd, *n of them). Returns 0; 1 when the file does
 * not exist (a run made before metrics.csv); -1 with err naming the line of
 * a malformed row. */
int clv_metrics_read(const char *path, clv_metrics_row **rows, int *n, clv_err *err);

#ifdef __cplusplus
}
#endif
#endif
