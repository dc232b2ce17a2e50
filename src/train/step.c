/* One training step and the preparation of a task (see clvit/step.h). */
#include "clvit/step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/kernels.h"

int clv_learner_build(clv_learner *L, clv_strategy **s, const clv_config *cfg, clv_err *err)
{
    memset(L, 0, sizeof *L);
    *s = NULL;
    L->cfg = cfg;
    L->n_tasks = cfg->tasks;
    if (!(L->model = clv_model_create(cfg->model, err)))
        return -1;
    L->model->ops->init(L->model, cfg->seed);
    L->model->conv_direct = cfg->conv_algorithm == CLV_CONV_DIRECT;
    if (clv_model_set_precision(L->model, cfg->precision, 0, err))
        return -1;
    if (cfg->weights[0]) {
        if (clv_ckpt_load_weights(cfg->weights, L->model, err))
            return clv_err_prefix(err, "--weights");
        L->pretrained = 1;
    }
    if (clv_learner_set_backbone_trainable(L, 0, err))
        return -1;
    if (!(L->heads = calloc((size_t)cfg->tasks, sizeof *L->heads)))
        return clv_errf(err, "out of memory");
    return (*s = clv_strategy_create(cfg->method, L, err)) ? 0 : -1;
}

void clv_learner_free(clv_learner *L, clv_strategy *s)
{
    clv_strategy_free(s);
    for (int t = 0; L->heads && t < L->n_tasks; t++)
        clv_head_free(&L->heads[t]);
    free(L->heads);
    clv_model_free(L->model);
    memset(L, 0, sizeof *L);
}

/* The trainable list: backbone (its trainable ones), head, the strategy's. */
static int collect(clv_step *st, clv_err *err)
{
    clv_params *task_ps =
        st->strategy->ops->task_params ? st->strategy->ops->task_params(st->strategy, st->task) : NULL;
    st->groups[st->n_groups++] = (clv_param_group){"model.", &st->L->model->params};
    st->groups[st->n_groups++] = (clv_param_group){"", &st->L->heads[st->task].params};
    if (task_ps)
        st->groups[st->n_groups++] = (clv_param_group){"task.", task_ps};
    for (int g = 0; g < st->n_groups; g++)
        for (int i = 0; i < st->groups[g].params->count; i++) {
            clv_param *p = st->groups[g].params->items[i];
            if (p->trainable && clv_params_append(&st->trainable, p, err))
                return -1;
        }
    return 0;
}

int clv_step_begin(clv_step *st, const clv_config *cfg, clv_learner *L, clv_strategy *s, int task, int n_classes,
                   const clv_dist *dist, clv_err *err)
{
    memset(st, 0, sizeof *st);
    st->L = L;
    st->strategy = s;
    st->task = task;
    st->dist = dist;
    st->clip_norm = cfg->clip_norm;
    clv_model *m = L->model;
    clv_head *h = &L->heads[task];
    if (clv_head_init(h, m->info.feat_dim, n_classes, cfg->seed, task, err))
        return -1;
    if (L->n_heads < task + 1)
        L->n_heads = task + 1;
    for (int i = 0; i < h->params.count; i++)
        if (clv_param_set_trainable(h->params.items[i], 1, err))
            return -1;
    if (s->ops->begin_task(s, L, task, err))
        return -1;
    for (int i = 0; i < m->params.count; i++)
        m->params.items[i]->lr_scale = cfg->lr;
    for (int i = 0; i < h->params.count; i++)
        h->params.items[i]->lr_scale = cfg->lr_head;
    if (collect(st, err))
        return -1;
    clv_optim_config oc = clv_optim_defaults();
    oc.kind = cfg->optimizer == CLV_OPTIMIZER_SGD ? CLV_OPTIM_SGD : CLV_OPTIM_ADAMW;
    oc.momentum = cfg->momentum;
    oc.weight_decay = cfg->weight_decay;
    if (!(st->opt = clv_optim_create(&oc, err)))
        return -1;
    /* moments left by an earlier task would be misread by a fresh step count */
    clv_optim_reset_state(&st->trainable);
    return 0;
}

int clv_batch_bufs_ensure(clv_batch_bufs *bb, int64_t B, int K, int64_t D, clv_err *err)
{
    if (B <= bb->cap_b && K <= bb->cap_k)
        return 0;
    int64_t b = B > bb->cap_b ? B : bb->cap_b;
    int k = K > bb->cap_k ? K : bb->cap_k;
    float **bufs[] = {&bb->feats, &bb->dfeats, &bb->logits, &bb->dlogits, &bb->probs};
    int64_t sizes[] = {b * D, b * D, b * k, b * k, b * k};
    for (int i = 0; i < 5; i++) {
        clv_free(*bufs[i]);
        if (!(*bufs[i] = clv_alloc_array((size_t)sizes[i], sizeof(float)))) {
            bb->cap_b = bb->cap_k = 0; /* grown again next time */
            return clv_errf(err, "out of memory for a batch of %lld", (long long)b);
        }
    }
    bb->cap_b = b;
    bb->cap_k = k;
    return 0;
}

void clv_batch_bufs_free(clv_batch_bufs *bb)
{
    float *bufs[] = {bb->feats, bb->dfeats, bb->logits, bb->dlogits, bb->probs};
    for (int i = 0; i < 5; i++)
        clv_free(bufs[i]);
    memset(bb, 0, sizeof *bb);
}

int clv_step_run(clv_step *st, const float *x, const int32_t *y, int64_t n, int64_t global_n, float lr_factor,
                 clv_step_stats *stats, clv_err *err)
{
    clv_learner *L = st->L;
    clv_model *m = L->model;
    clv_head *h = &L->heads[st->task];
    const clv_strategy_ops *ops = st->strategy->ops;
    const int K = h->classes;
    const int64_t D = m->info.feat_dim;
    m->training = 1;
    if (clv_batch_bufs_ensure(&st->buf, n, K, m->info.feat_dim, err) || m->ops->forward(m, x, n, st->buf.feats, err))
        return -1;
    clv_head_forward(h, st->buf.logits, st->buf.feats, n);
    int64_t correct = 0;
    float loss = clv_xent_forward(st->buf.probs, st->buf.logits, y, n, K, &correct);
    memset(st->buf.dlogits, 0, (size_t)(n * K) * sizeof(float));
    memset(st->buf.dfeats, 0, (size_t)(n * D) * sizeof(float));
    /* the mean over the whole batch: each rank's share is weighted by its size */
    clv_xent_backward(st->buf.dlogits, st->buf.probs, y, n, K, (float)n / (float)global_n);
    if (ops->loss) {
        clv_step_batch b = {st->task, x, y, n, global_n, (int)D, K, st->buf.feats, st->buf.logits, st->buf.dfeats, st->buf.dlogits};
        double extra = 0;
        if (ops->loss(st->strategy, L, &b, &extra, err))
            return -1;
        loss = (float)((double)loss + extra);
    }
    /* every rank sees the whole batch's loss, accuracy and stop request */
    double sums[3] = {(double)loss * (double)n, (double)correct, (double)stats->stop};
    if (clv_dist_allreduce_f64(st->dist, sums, 3, err))
        return -1;
    stats->loss = (float)(sums[0] / (double)global_n);
    stats->correct = (int64_t)sums[1];
    stats->stop = sums[2] > 0;
    stats->diverged = !isfinite(stats->loss);
    if (stats->diverged)
        return clv_errf(err, "the loss is %f (diverged; lower the learning rate)", stats->loss);
    clv_head_backward(h, st->buf.dfeats, st->buf.dlogits, st->buf.feats, n);
    if (st->trainable.count > h->params.count && m->ops->backward(m, st->buf.dfeats, NULL, err))
        return -1;
    if (clv_dist_allreduce_grads(st->dist, &st->trainable, err))
        return -1;
    if (ops->after_backward && ops->after_backward(st->strategy, L, st->task, &st->trainable, err))
        return -1;
    if (st->clip_norm > 0)
        clv_clip_grad_norm(&st->trainable, st->clip_norm);
    if (clv_optim_step(st->opt, &st->trainable, lr_factor, err))
        return -1;
    clv_params_zero_grad(&st->trainable);
    clv_wlayers_invalidate(m->wlayers, m->n_wlayers); /* the adapted weights are re-formed next time */
    return 0;
}

int clv_step_grads(clv_step *st, const float *x, const int32_t *y, int64_t n, int64_t global_n, int predicted_labels,
                   clv_err *err)
{
    clv_model *m = st->L->model;
    clv_head *h = &st->L->heads[st->task];
    const int K = h->classes;
    m->training = 1;
    if (clv_batch_bufs_ensure(&st->buf, n, K, m->info.feat_dim, err) || m->ops->forward(m, x, n, st->buf.feats, err))
        return -1;
    clv_head_forward(h, st->buf.logits, st->buf.feats, n);
    int32_t *pred = NULL;
    if (predicted_labels) {
        if (!(pred = malloc((size_t)(n ? n : 1) * sizeof *pred)))
            return clv_errf(err, "out of memory");
        for (int64_t i = 0; i < n; i++) {
            const float *l = st->buf.logits + i * K;
            int best = 0;
            for (int k = 1; k < K; k++)
                best = l[k] > l[best] ? k : best;
            pred[i] = best;
        }
        y = pred;
    }
    int64_t correct;
    clv_xent_forward(st->buf.probs, st->buf.logits, y, n, K, &correct);
    memset(st->buf.dlogits, 0, (size_t)(n * K) * sizeof(float));
    memset(st->buf.dfeats, 0, (size_t)(n * m->info.feat_dim) * sizeof(float));
    clv_xent_backward(st->buf.dlogits, st->buf.probs, y, n, K, (float)n / (float)global_n);
    free(pred);
    clv_head_backward(h, st->buf.dfeats, st->buf.dlogits, st->buf.feats, n);
    if (st->trainable.count > h->params.count && m->ops->backward(m, st->buf.dfeats, NULL, err))
        return -1;
    return clv_dist_allreduce_grads(st->dist, &st->trainable, err);
}

void clv_step_end(clv_step *st)
{
    clv_params_free_view(&st->trainable);
    clv_optim_free(st->opt);
    clv_batch_bufs_free(&st->buf);
    memset(st, 0, sizeof *st);
}
