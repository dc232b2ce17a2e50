/* Optimizers (SGD with momentum, AdamW; PyTorch semantics), global-norm
 * gradient clipping and learning-rate schedules.
 *
 * Learning rates: each parameter's p->lr_scale is its learning rate; the
 * step multiplies it by a schedule factor, so the backbone, the heads and
 * adapter parameters can each have their own rate under one schedule.
 * Optimizer state lives in the parameters (opt_m, opt_v, lazily allocated);
 * the step count lives in the optimizer and is saved by checkpoints. */
#ifndef CLVIT_OPTIM_H
#define CLVIT_OPTIM_H

#include "clvit/param.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CLV_OPTIM_SGD = 0, CLV_OPTIM_ADAMW = 1 } clv_optim_kind;

typedef struct clv_optim_config {
    clv_optim_kind kind;
    float momentum;     /* SGD; 0 = plain SGD */
    int nesterov;       /* SGD */
    float weight_decay; /* SGD: coupled L2 added to the gradient; AdamW: decoupled */
    float beta1, beta2, eps; /* AdamW */
} clv_optim_config;

/* AdamW, momentum 0.9, weight decay 0.05, betas (0.9, 0.999), eps 1e-8. */
clv_optim_config clv_optim_defaults(void);

typedef struct clv_optim clv_optim;

clv_optim *clv_optim_create(const clv_optim_config *cfg, clv_err *err);
void clv_optim_free(clv_optim *opt);
/* One step over the trainable parameters of ps (params without trainable or
 * grad are skipped; no_decay ones get no weight decay), with learning rate
 * lr_factor * p->lr_scale. Returns -1 only when state cannot be allocated. */
int clv_optim_step(clv_optim *opt, clv_params *ps, float lr_factor, clv_err *err);
/* Zeroes the optimizer state (momenta, moments) of every param of ps: a
 * new task starts its optimizer afresh. */
void clv_optim_reset_state(clv_params *ps);
/* Number of steps taken (AdamW's bias correction uses it). */
int64_t clv_optim_get_step(const clv_optim *opt);
void clv_optim_set_step(clv_optim *opt, int64_t t);

/* Scales the gradients of the trainable params so that their global L2
 * norm is at most max_norm (like torch.nn.utils.clip_grad_norm_, with its
 * 1e-6 in the denominator). Returns the norm before clipping. */
double clv_clip_grad_norm(clv_params *ps, double max_norm);

typedef enum { CLV_SCHED_CONSTANT = 0, CLV_SCHED_COSINE = 1, CLV_SCHED_STEP = 2 } clv_schedule_kind;

typedef struct clv_schedule {
    clv_schedule_kind kind;
    int64_t total_steps;  /* steps of the whole schedule */
    int64_t warmup_steps; /* linear warmup from 0 (exclusive) to 1 */
    float min_factor;     /* cosine: it ends at this fraction of the rate */
    int64_t step_every;   /* step: the factor is multiplied by gamma every step_every steps (from step 0) */
    float gamma;          /* step: in (0, 1] */
} clv_schedule;

/* The factor at step (0-based), a pure function so that resume is exact:
 * warmup (step + 1) / warmup_steps while step < warmup_steps, then
 * cosine: min + (1 - min) * (1 + cos(pi * progress)) / 2 with progress from
 *   0 at the end of warmup to 1 at total_steps;
 * step: gamma ^ floor(step / step_every) (PyTorch's StepLR, stepped per epoch
 *   when step_every is an epoch's steps);
 * constant: 1. */
float clv_schedule_factor(const clv_schedule *s, int64_t step);
/* The sum of the factors over steps 0 .. total_steps - 1: how far, in units
 * of the peak rate, the schedule lets Adam move a parameter at most. */
double clv_schedule_sum(const clv_schedule *s);

#ifdef __cplusplus
}
#endif
#endif
