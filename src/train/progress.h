/* Training progress on stderr: one line per epoch (loss, accuracy, images/s
 * and the time left for the whole run), on a terminal a live bar redrawn a
 * few times a second, and otherwise (piped to a log) a line a minute
 * inside long epochs. */
#ifndef CLVIT_TRAIN_PROGRESS_H
#define CLVIT_TRAIN_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

typedef struct clv_progress {
    int mode; /* 0 quiet, 1 lines, 2 lines + live bar */
    int task, n_tasks, epochs, steps_per_epoch, epoch;
    int64_t steps_after; /* optimizer steps of the tasks still to learn after this one */
    int64_t step_in_epoch, images, correct;
    double loss_sum;
    int64_t loss_count;
    double epoch_start, last_draw;
} clv_progress;

void clv_progress_init(clv_progress *p, int mode, int task, int n_tasks, int epochs, int steps_per_epoch,
                       int64_t steps_after);
void clv_progress_epoch_begin(clv_progress *p, int epoch, int64_t first_step);
void clv_progress_step(clv_progress *p, int64_t batch, float loss, int64_t correct);
void clv_progress_epoch_end(clv_progress *p);
/* The progress line after `elapsed` seconds of the current epoch: "task 2/5
 * epoch 1/3  loss 0.4123  acc 85.20%  910 img/s  run left ~0:04:10" (the
 * time left is the mean time of this epoch's steps times the run's steps
 * left; absent once nothing is left or before a step ran). */
void clv_progress_format(const clv_progress *p, double elapsed, char *buf, size_t len);

#endif
