/* linear: the base network is frozen and only the task heads train. The
 * base is trained on the first task unless pretrained weights are given. */
#include "clvit/strategy.h"

static int lin_begin(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    return clv_learner_set_backbone_trainable(L, task == 0 && !L->pretrained, err);
}

static int lin_end(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    return clv_learner_set_backbone_trainable(L, 0, err);
}

static int lin_activate(clv_strategy *s, clv_learner *L, int task, clv_err *err) { return 0; }

/* Every task stores only its head; task 1 also trains the base, a one-time cost. */
static void lin_storage(clv_strategy *s, clv_learner *L, int task, clv_storage *out)
{
    out->one_time_task = task == 0 && !L->pretrained;
}

const clv_strategy_ops clv_strategy_linear = {
    .name = "linear",
    .summary = "frozen base (trained on task 1 or pretrained), only the heads train",
    .begin_task = lin_begin,
    .end_task = lin_end,
    .activate = lin_activate,
    .task_storage = lin_storage,
};
