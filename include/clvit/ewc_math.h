/* Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017), the math
 * only: a diagonal empirical Fisher estimated from batch gradients, merged
 * online across tasks, and the quadratic penalty with its gradient. The
 * kernels work on one flat tensor at a time (a parameter's n floats), take
 * caller-owned buffers and never allocate; the strategy (src/cl/) walks the
 * backbone's parameter list and owns the buffers.
 *
 * Fisher of task t, from the task's training batches b of |b| images, with
 * g_b the gradient of the batch's MEAN cross-entropy (true labels: the
 * empirical Fisher) at the task's final weights:
 *
 *     F_new = (1/N) sum_b |b| g_b^2,          N = sum_b |b|
 *
 * (FACIL's estimator; with equal batches it equals Avalanche's mean over
 * batches of g_b^2). It is not the per-sample Fisher (1/N) sum_n g_n^2,
 * which would need a backward per image: batch gradients average the
 * per-sample ones before squaring, so F_new is smaller by up to |b| where
 * the samples disagree. lambda absorbs the scale.
 *
 * Merged online (one Fisher, one anchor, whatever the number of tasks;
 * Schwarz et al. 2018, Avalanche's mode="online"):
 *
 *     F_t = decay F_{t-1} + F_new,   F_0 = 0;   theta* = the weights after task t
 *
 * decay = 1 sums the tasks' Fishers (Huszar 2018's reading of EWC's
 * penalties, one per task, around the latest weights).
 *
 * Penalty while training task t+1, and its gradient:
 *
 *     P = lambda/2 sum_i F_i (theta_i - theta*_i)^2
 *     dP/dtheta_i = lambda F_i (theta_i - theta*_i)                        */
#ifndef CLVIT_EWC_MATH_H
#define CLVIT_EWC_MATH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* sum[i] += weight * grad[i]^2 (weight: the batch's image count |b|). */
void clv_ewc_fisher_add(float *sum, const float *grad, int64_t n, float weight);

/* fisher[i] = decay * fisher[i] + sum[i] / samples: F_t from F_{t-1} and the
 * task's accumulated sum over `samples` images (> 0). */
void clv_ewc_fisher_merge(float *fisher, const float *sum, int64_t n, double samples, float decay);

/* Returns lambda/2 sum_i fisher[i] (theta[i] - anchor[i])^2, summed in
 * double in index order (the same value whatever the thread count); when
 * grad is not NULL, grad[i] += lambda fisher[i] (theta[i] - anchor[i]). */
double clv_ewc_penalty(float *grad, const float *theta, const float *anchor, const float *fisher, int64_t n,
                       float lambda);

#ifdef __cplusplus
}
#endif
#endif
