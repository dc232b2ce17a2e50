/* finetune: one network keeps training on every task (the lower bound:
 * shows forgetting). A task keeps only its head; earlier tasks are
 * evaluated with the current backbone. */
#include "clvit/strategy.h"

static int ft_begin(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    return clv_learner_set_backbone_trainable(L, 1, err);
}

static int ft_end(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    return clv_learner_set_backbone_trainable(L, 0, err);
}

static int ft_activate(clv_strategy *s, clv_learner *L, int task, clv_err *err) { return 0; }

const clv_strategy_ops clv_strategy_finetune = {
    .name = "finetune",
    .summary = "the whole network keeps training on each task (lower bound: forgets)",
    .begin_task = ft_begin,
    .end_task = ft_end,
    .activate = ft_activate,
};
