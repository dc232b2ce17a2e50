/* The task router: a batch of images through every learned task of a run,
 * the most confident task chosen per image (clvit/task_select.h). Internal
 * to the library: the predictor (--task auto) and the task-agnostic
 * evaluation use it. */
#ifndef CLVIT_TRAIN_ROUTER_H
#define CLVIT_TRAIN_ROUTER_H

#include "clvit/task_select.h"
#include "train/run_internal.h"

typedef struct clv_router {
    int n;          /* learned tasks */
    int *task;      /* [n] their ids */
    int *group;     /* [n] index into task[] of the task whose backbone forward serves it */
    int groups;     /* distinct backbone functions */
    float **logits; /* [n] logits of the last batch, [cap_B x classes] */
    int64_t cap_B;
    int active;     /* the task the backbone is switched to, -1 unknown */
} clv_router;

/* Lists R's learned tasks (recorded done, head loaded) and groups those
 * that share a backbone function (activates each once). */
int clv_router_init(clv_router *r, clv_run *R, clv_err *err);
/* Routes B images x; out[B]. Afterwards r->logits[i] holds task[i]'s logits. */
int clv_router_route(clv_router *r, clv_run *R, clv_task_select sel, const float *x, int64_t B, clv_route *out,
                     clv_err *err);
void clv_router_free(clv_router *r);

#endif
