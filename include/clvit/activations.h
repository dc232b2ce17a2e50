/* The activation memory of a backbone, in three arenas (clvit/arena.h):
 *  - training: what a forward keeps for its backward, laid out for the
 *    largest batch seen;
 *  - inference: a layout that keeps nothing, carved into the same arena as
 *    training (idle between steps), which it grows when it needs more, so
 *    that a model that trains and evaluates holds the larger of the two;
 *  - gradients: the backward's buffers, laid out for the training batch by
 *    the first backward.
 * The model gives the three layouts; each reads the batch to carve for from
 * lay_B. Zero-initialize, set the fields above `lay_B`, free with
 * clv_activations_free. */
#ifndef CLVIT_ACTIVATIONS_H
#define CLVIT_ACTIVATIONS_H

#include "clvit/arena.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_activations {
    const char *model; /* for messages */
    clv_arena_layout train, infer, grads;
    void *ctx; /* handed to the layouts */

    int64_t lay_B;     /* the batch the layout being carved is for */
    int64_t cap_B;     /* the training layout's batch */
    int64_t bwd_cap_B; /* the gradient layout's batch */
    int layout;        /* what the model's activation pointers describe: 0 nothing, 1 training, 2 inference */
    int64_t trained_B; /* batch of the last successful training forward not yet backpropagated, else 0 */
    clv_arena fwd, bwd; /* training and inference; gradients */
} clv_activations;

/* Points the model's activation pointers at a layout for a forward over B
 * images: the training layout (grown to B if needed) or the inference one. */
int clv_activations_forward(clv_activations *a, int64_t B, int training, clv_err *err);
/* Lays out the gradient buffers for the training batch if not yet done. */
int clv_activations_backward(clv_activations *a, clv_err *err);
/* The batch of the training forward a backward is about to consume (and
 * forget: one backward per forward); -1 (err set) when there is none. */
int clv_activations_take(clv_activations *a, int64_t *B, clv_err *err);
void clv_activations_free(clv_activations *a);

#ifdef __cplusplus
}
#endif
#endif
