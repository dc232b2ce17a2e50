/* Training progress on stderr: one line per epoch (loss, accuracy, images/s,
 * ETA) and, on a terminal, a live bar redrawn a few times a second. */
#ifndef CLVIT_TRAIN_PROGRESS_H
#define CLVIT_TRAIN_PROGRESS_H

#include <stdint.h>

typedef struct clv_progress {
    int mode; /* 0 quiet, 1 lines, 2 lines + live bar */
    int task, n_tasks, epochs, steps_per_epoch, epoch;
    int64_t step_in_epoch, images, correct;
    double loss_sum;
    int64_t loss_count;
    double epoch_start, last_draw;
} clv_progress;

void clv_progress_init(clv_progress *p, int mode, int task, int n_tasks, int epochs, int steps_per_epoch);
void clv_progress_epoch_begin(clv_progress *p, int epoch, int64_t first_step);
void clv_progress_step(clv_progress *p, int64_t batch, float loss, int64_t correct);
void clv_progress_epoch_end(clv_progress *p);

#endif
