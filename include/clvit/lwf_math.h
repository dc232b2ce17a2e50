/* Learning without Forgetting (Li and Hoiem, ECCV 2016 / TPAMI 2017), the
 * math only: the distillation loss of one old task's head and its gradient
 * with respect to that head's new logits. Caller-owned buffers, no
 * allocation; the strategy sums over the old heads.
 *
 * For an old task j < t with K_j classes, z = the current network's logits
 * of head j (N x K_j) and y = head j's logits recorded before task t began
 * (the teacher), at temperature T:
 *
 *     q = softmax(y / T)     log p = log_softmax(z / T)        (per row)
 *     L_j = -(1/N) sum_n sum_c q_nc log p_nc
 *     L   = alpha sum_{j<t} L_j
 *     dL/dz_nc = alpha / (N T) (p_nc - q_nc)
 *
 * Choices, against the sources:
 * - one softmax per old head, the heads' losses summed: Li and Hoiem's "for
 *   multiple old tasks we take the sum of the loss for each old task".
 *   FACIL instead concatenates all old heads' logits into one softmax; in
 *   task-incremental learning every head is evaluated on its own, so we
 *   keep them apart.
 * - no T^2 factor: neither Li and Hoiem nor FACIL scale by T^2 (Hinton et
 *   al.'s KD does, to keep gradient sizes independent of T). With T = 2
 *   our gradient is a quarter of a T^2-scaled one: alpha absorbs it.
 * - FACIL's softmax(z)^(1/T), renormalized, is softmax(z/T) exactly; its
 *   eps = 1e-5 smoothing of p only guards log(0), which the log-sum-exp
 *   form here never takes, so it is left out.
 * - L is not divided by T: the loss is a cross-entropy between the two
 *   tempered distributions, as both sources write it. */
#ifndef CLVIT_LWF_MATH_H
#define CLVIT_LWF_MATH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Returns alpha * L_j for one head (logits, teacher: N x K row-major, T > 0),
 * summed in double in row order. When dlogits is not NULL,
 *     dlogits[n][c] += dloss * alpha / (N T) (p_nc - q_nc)
 * (dloss as in clv_xent_backward: 1, or a rank's share of a global batch). */
double clv_lwf_distill(float *dlogits, const float *logits, const float *teacher, int64_t N, int64_t K, float T,
                       float alpha, float dloss);

#ifdef __cplusplus
}
#endif
#endif
