/* A backbone's activation arenas (see clvit/activations.h). */
#include "clvit/activations.h"

#include <stdio.h>

static int lay_out(clv_activations *a, clv_arena *arena, clv_arena_layout layout, int64_t B, const char *what,
                   clv_err *err)
{
    char ctx[160];
    snprintf(ctx, sizeof ctx, "%s: %s buffers for batch %lld", a->model, what, (long long)B);
    a->lay_B = B;
    return clv_arena_lay_out(arena, layout, a->ctx, ctx, err);
}

int clv_activations_forward(clv_activations *a, int64_t B, int training, clv_err *err)
{
    if (training) {
        if (B > a->cap_B || a->layout != 1) {
            a->layout = 0;
            if (lay_out(a, &a->fwd, a->train, B > a->cap_B ? B : a->cap_B, "activation", err))
                return -1;
            if (B > a->cap_B)
                a->cap_B = B;
        }
        a->layout = 1;
        return 0;
    }
    a->layout = 0;
    /* the training arena is idle between steps (an inference forward ends a pending backward):
     * inference borrows it, grown if need be, so the two never take memory side by side */
    if (lay_out(a, &a->fwd, a->infer, B, "inference", err))
        return -1;
    a->layout = 2;
    return 0;
}

int clv_activations_backward(clv_activations *a, clv_err *err)
{
    if (a->bwd_cap_B >= a->cap_B)
        return 0;
    a->bwd_cap_B = 0;
    if (lay_out(a, &a->bwd, a->grads, a->cap_B, "gradient", err))
        return -1;
    a->bwd_cap_B = a->cap_B;
    return 0;
}

int clv_activations_take(clv_activations *a, int64_t *B, clv_err *err)
{
    *B = a->trained_B;
    a->trained_B = 0;
    if (*B == 0)
        return clv_errf(err, "%s: backward without a training forward (training = 1) since the last backward",
                        a->model);
    return 0;
}

void clv_activations_free(clv_activations *a)
{
    clv_arena_free(&a->fwd);
    clv_arena_free(&a->bwd);
}
