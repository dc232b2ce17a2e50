/* lwf: Learning without Forgetting (Li and Hoiem 2016) as a baseline. The
 * whole backbone keeps training on every task, like finetune, one head per
 * task; from the second task on, each old head's outputs on the new task's
 * images are distilled from what the network gave before the task began
 * (the math and the choices in clvit/lwf_math.h and docs/methods.md):
 *
 *   loss += alpha sum_{j<t} CE(softmax(y_j / T), log_softmax(z_j / T))
 *
 * y_j, the teacher's logits, come from a frozen copy of the backbone taken
 * when task t begins (FACIL's way: exact under augmentation, where Li and
 * Hoiem's responses recorded once per image would not match the augmented
 * image), in inference mode, through head j; z_j from the training
 * network. The copy is working memory only and is re-taken from the base
 * when a run resumes: LwF stores nothing beyond the shared backbone and
 * the heads. */
#include <stdlib.h>
#include <string.h>

#include "clvit/lwf_math.h"
#include "clvit/strategy.h"

typedef struct lwf {
    clv_model *teacher; /* the backbone as the task began (task > 0) */
    float *tfeats;      /* [n x feat_dim] the teacher's features */
    float *logits;      /* 3 x [n x classes] of one old head: teacher y, student z, dL/dz */
    size_t cap_tfeats, cap_logits;
} lwf;

static int lwf_init(clv_strategy *s, const clv_learner *L, clv_err *err)
{
    if (!(s->state = calloc(1, sizeof(lwf))))
        return clv_errf(err, "out of memory");
    return 0;
}

static void lwf_free(clv_strategy *s)
{
    lwf *w = s->state;
    if (!w)
        return;
    clv_model_free(w->teacher);
    free(w->tfeats);
    free(w->logits);
    free(w);
}

/* teacher = a copy of the backbone as it is now, in inference mode */
static int take_teacher(lwf *w, const clv_model *m, clv_err *err)
{
    if (!w->teacher && !(w->teacher = clv_model_create(m->info.name, err)))
        return clv_err_prefix(err, "lwf: the teacher network");
    if (!w->teacher->compute != !m->compute && /* the teacher computes in the backbone's precision */
        clv_model_set_precision(w->teacher, clv_compute_precision(m->compute), 0, err))
        return clv_err_prefix(err, "lwf: the teacher network");
    w->teacher->conv_direct = m->conv_direct;
    clv_params *tp = &w->teacher->params;
    if (tp->count != m->params.count)
        return clv_errf(err, "lwf: the teacher has %d parameters, the backbone %d", tp->count, m->params.count);
    for (int i = 0; i < tp->count; i++) {
        if (tp->items[i]->numel != m->params.items[i]->numel)
            return clv_errf(err, "lwf: the teacher's %s differs in size from the backbone's", tp->items[i]->name);
        memcpy(tp->items[i]->data, m->params.items[i]->data, (size_t)tp->items[i]->numel * sizeof(float));
    }
    w->teacher->training = 0;
    return 0;
}

static int lwf_begin(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    if (task > 0 && take_teacher(s->state, L->model, err))
        return -1;
    return clv_learner_set_backbone_trainable(L, 1, err);
}

static int lwf_end(clv_strategy *s, clv_learner *L, int task, clv_err *err)
{
    return clv_learner_set_backbone_trainable(L, 0, err);
}

static int lwf_activate(clv_strategy *s, clv_learner *L, int task, clv_err *err) { return 0; }

static int lwf_loss(clv_strategy *s, clv_learner *L, const clv_step_batch *b, double *loss, clv_err *err)
{
    lwf *w = s->state;
    if (b->task == 0)
        return 0;
    if (!w->teacher)
        return clv_errf(err, "lwf: task %d began without its teacher (begin_task was not called)", b->task + 1);
    int kmax = 0;
    for (int j = 0; j < b->task; j++)
        kmax = L->heads[j].classes > kmax ? L->heads[j].classes : kmax;
    const size_t nk = (size_t)b->n * (size_t)kmax;
    if (clv_grow(&w->tfeats, &w->cap_tfeats, (size_t)b->n * (size_t)b->feat_dim) ||
        clv_grow(&w->logits, &w->cap_logits, 3 * nk))
        return clv_errf(err, "lwf: out of memory for a batch of %lld", (long long)b->n);
    float *y = w->logits, *z = y + nk, *dz = z + nk;
    if (w->teacher->ops->forward(w->teacher, b->x, b->n, w->tfeats, err))
        return clv_err_prefix(err, "lwf: the teacher's forward");
    /* the rank's mean, weighted into the whole batch's mean */
    const float share = (float)b->n / (float)b->global_n;
    const float T = L->cfg->lwf_temperature, alpha = L->cfg->lwf_alpha;
    for (int j = 0; j < b->task; j++) {
        clv_head *h = &L->heads[j];
        if (!h->params.count)
            continue; /* never made: clvit bench times task 2 of 2 alone */
        const size_t hk = (size_t)b->n * (size_t)h->classes;
        clv_head_forward(h, y, w->tfeats, b->n);
        clv_head_forward(h, z, b->feats, b->n);
        memset(dz, 0, hk * sizeof(float));
        *loss += clv_lwf_distill(dz, z, y, b->n, h->classes, T, alpha, share);
        /* an old head is frozen: only the features receive its gradient */
        clv_head_backward(h, b->dfeats, dz, b->feats, b->n);
    }
    return 0;
}

const clv_strategy_ops clv_strategy_lwf = {
    .name = "lwf",
    .summary = "the whole network trains; old heads' outputs are distilled from the network before the task (LwF)",
    .init = lwf_init,
    .begin_task = lwf_begin,
    .end_task = lwf_end,
    .activate = lwf_activate,
    .free = lwf_free,
    .loss = lwf_loss,
};
