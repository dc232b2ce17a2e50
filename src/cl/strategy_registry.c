/* The list of methods and the helpers they share. */
#include <stdlib.h>
#include <string.h>

#include "clvit/strategy.h"

extern const clv_strategy_ops clv_strategy_finetune;
extern const clv_strategy_ops clv_strategy_linear;
extern const clv_strategy_ops clv_strategy_independent;
extern const clv_strategy_ops clv_strategy_rkr;
extern const clv_strategy_ops clv_strategy_piggyback;
extern const clv_strategy_ops clv_strategy_maskrkr;
extern const clv_strategy_ops clv_strategy_ewc;
extern const clv_strategy_ops clv_strategy_lwf;

static const clv_strategy_ops *const registry[] = {
    &clv_strategy_finetune,
    &clv_strategy_linear,
    &clv_strategy_independent,
    &clv_strategy_rkr,
    &clv_strategy_piggyback,
    &clv_strategy_maskrkr,
    &clv_strategy_ewc,
    &clv_strategy_lwf,
};

#define N_STRATEGIES ((int)(sizeof registry / sizeof registry[0]))

int clv_strategy_count(void) { return N_STRATEGIES; }
const clv_strategy_ops *clv_strategy_ops_at(int i) { return i >= 0 && i < N_STRATEGIES ? registry[i] : NULL; }

clv_strategy *clv_strategy_create(const char *name, const clv_learner *L, clv_err *err)
{
    for (int i = 0; i < N_STRATEGIES; i++) {
        if (strcmp(registry[i]->name, name))
            continue;
        clv_strategy *s = calloc(1, sizeof *s);
        if (!s) {
            clv_errf(err, "out of memory");
            return NULL;
        }
        s->ops = registry[i];
        if (s->ops->init && s->ops->init(s, L, err)) {
            clv_strategy_free(s); /* what init made before it failed */
            return NULL;
        }
        return s;
    }
    char known[256] = "";
    for (int i = 0; i < N_STRATEGIES; i++) {
        strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
        strncat(known, registry[i]->name, sizeof known - strlen(known) - 1);
    }
    clv_errf(err, "unknown method '%s' (known: %s)", name, known);
    return NULL;
}

void clv_strategy_free(clv_strategy *s)
{
    if (!s)
        return;
    if (s->ops->free)
        s->ops->free(s);
    free(s);
}

int clv_learner_set_backbone_trainable(clv_learner *L, int trainable, clv_err *err)
{
    for (int i = 0; i < L->model->params.count; i++)
        if (clv_param_set_trainable(L->model->params.items[i], trainable, err))
            return -1;
    return 0;
}

int64_t clv_head_bits(const clv_head *h) { return (int64_t)(h->feat_dim + 1) * h->classes * 32; }
