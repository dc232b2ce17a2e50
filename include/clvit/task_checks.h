/* Checks that say when a run or a task cannot have worked, as warnings
 * ("code: sentence", clvit/warnings.h) for the log and run.json:
 *
 *   mask_budget_short   (a piggyback or maskrkr task, at its start) the
 *                       schedule cannot move any score across the threshold
 *   near_chance         (a task, when learned) test accuracy below chance + 5 points
 *   loss_not_falling    (a task, when learned) the training loss did not fall
 *   no_pretrained_base  (the run) the different-domain protocol without --weights
 *
 * and the training curve of a task (per-epoch mean loss and accuracy) they
 * read, which the trainer keeps and checkpoints. */
#ifndef CLVIT_TASK_CHECKS_H
#define CLVIT_TASK_CHECKS_H

#include "clvit/config.h"
#include "clvit/warnings.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the training curve of one task ---- */
typedef struct clv_task_curve {
    int epochs;
    double *loss_sum;         /* per epoch: the sum over its steps of the batch's mean loss */
    int64_t *steps, *correct, *images;
    int64_t first_steps;      /* the first tenth of epoch 1: ceil(steps_per_epoch / 10) steps */
    double first_loss_sum;    /* the sum of their losses (so far) */
} clv_task_curve;

int clv_task_curve_init(clv_task_curve *c, int epochs, int64_t steps_per_epoch, clv_err *err);
void clv_task_curve_free(clv_task_curve *c);
/* One optimizer step of epoch (0-based) at step (0-based within the task). */
void clv_task_curve_step(clv_task_curve *c, int epoch, int64_t step, double loss, int64_t correct, int64_t images);
/* Mean loss and training accuracy (percent) of an epoch; NAN without steps. */
double clv_task_curve_loss(const clv_task_curve *c, int epoch);
double clv_task_curve_accuracy(const clv_task_curve *c, int epoch);
/* Mean loss of epoch 1's first tenth; NAN until those steps are done. */
double clv_task_curve_first_tenth(const clv_task_curve *c);

/* ---- mask_budget_short ----
 * A mask bit is 1 while its score is above the threshold and every score
 * starts at mask_init, so a bit flips only after its score moved down by
 * mask_init - threshold. With Adam (AdamW: scores get no weight decay) a
 * parameter moves at most about lr x (the schedule's factor) per step,
 * whatever its gradient: the update is lr m_hat / (sqrt(v_hat) + eps), and
 * |m_hat| / sqrt(v_hat) is about 1 or less (Kingma and Ba, 2015, section
 * 2.1; it can exceed 1, up to (1 - beta1) / sqrt(1 - beta2) = 3.2, only for
 * a gradient that is suddenly much larger than all before it). So the most
 * a score can move over a task is lr_mask x (the sum of the factors over
 * its steps), and below mask_init - threshold no bit can flip: the task
 * is its base network with a new head. With SGD a step is lr x gradient,
 * not bounded by lr: no check. */
typedef struct clv_mask_budget {
    int64_t steps;      /* the task's optimizer steps */
    double factor_sum;  /* the sum of the schedule's factors over them */
    double movement;    /* lr x factor_sum: the most a score can move */
    double needed;      /* mask_init - threshold: what one bit needs */
} clv_mask_budget;

clv_mask_budget clv_mask_budget_of(const clv_config *cfg, double lr, int64_t steps_per_epoch);
/* Adds mask_budget_short for task (0-based) when the budget is short under
 * AdamW: returns 1 when it did, 0 when the budget allows movement (or the
 * optimizer is not adamw), -1 when out of memory. */
int clv_check_mask_budget(const clv_config *cfg, int task, double lr, int64_t steps_per_epoch, clv_warnings *out);

/* ---- near_chance, loss_not_falling ----
 * near_chance: the test accuracy of the task right after it was learned is
 *   below chance + CLV_NEAR_CHANCE_POINTS (chance = 100 / classes).
 * loss_not_falling: the last epoch's mean training loss is not below
 *   CLV_LOSS_FALL_RATIO x the mean over epoch 1's first tenth, and is not
 *   below half the chance-level loss ln(classes) (a task that learned within
 *   its first tenth has a low loss and is not flagged). A task of no more
 *   steps than that first tenth is not judged.
 * Neither applies to a task of fewer than 2 classes. */
#define CLV_NEAR_CHANCE_POINTS 5.0
#define CLV_LOSS_FALL_RATIO 0.95
/* Adds what applies; returns how many were added, or -1 when out of memory. */
int clv_check_task_outcome(int task, int classes, double test_accuracy, const clv_task_curve *curve,
                           clv_warnings *out);

/* ---- no_pretrained_base ----
 * The different-domain protocol (data decathlon) with a method that adapts
 * or reads a frozen base (rkr, piggyback, maskrkr, linear) and no --weights:
 * the base is then trained from scratch on the first domain. Returns 1 when
 * added, 0 when not, -1 when out of memory. */
int clv_check_run(const clv_config *cfg, clv_warnings *out);

#ifdef __cplusplus
}
#endif
#endif
