/* Building a run in memory: data and task split, learner and strategy,
 * learned tasks loaded back from the run directory, step buffers. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/run_internal.h"

int clv_run_open_data(clv_run *R, clv_err *err)
{
    const clv_config *cfg = R->cfg;
    const char *root = cfg->data_root[0] ? cfg->data_root : NULL;
    if (!strcmp(cfg->data, "decathlon")) {
        if (!root)
            return clv_errf(err, "decathlon needs --data-root DIR (the folder holding annotations/ and data/)");
        if (clv_decathlon_open(root, cfg->domains, &R->train, &R->test, err))
            return -1;
    } else if (clv_dataset_open_pair(cfg->data, root, &R->train, &R->test, err)) {
        return -1;
    }
    clv_dataset_default_norm(cfg->data, R->norm.mean, R->norm.std);
    if (clv_task_split_make(&R->split, R->train, R->test, cfg->tasks, !strcmp(cfg->class_order, "shuffled"),
                            cfg->seed, err))
        return -1;
    clv_task_split_limit(&R->split, cfg->train_limit, cfg->test_limit);
    return 0;
}

/* The layers whose rank the strategy capped, for run.json (methods with a rank only). */
static int record_rank_caps(clv_run *R, clv_err *err)
{
    clv_strategy *s = R->strategy;
    free(R->rec.rank_caps);
    R->rec.rank_caps = NULL;
    R->rec.n_rank_caps = 0;
    R->rec.has_rank_caps = s->ops->rank_caps != NULL;
    if (!s->ops->rank_caps)
        return 0;
    int n = s->ops->rank_caps(s, NULL, 0);
    if (n > 0) {
        if (!(R->rec.rank_caps = calloc((size_t)n, sizeof *R->rec.rank_caps)))
            return clv_errf(err, "out of memory");
        R->rec.n_rank_caps = s->ops->rank_caps(s, R->rec.rank_caps, n);
    }
    return 0;
}

int clv_run_build_learner(clv_run *R, int load_done, clv_err *err)
{
    const clv_config *cfg = R->cfg;
    R->L.cfg = cfg;
    R->L.n_tasks = cfg->tasks;
    if (!(R->L.model = clv_model_create(cfg->model, err)))
        return -1;
    R->L.model->ops->init(R->L.model, cfg->seed);
    if (cfg->weights[0]) {
        if (clv_ckpt_load_weights(cfg->weights, R->L.model, err))
            return clv_err_prefix(err, "--weights");
        R->L.pretrained = 1;
    }
    if (clv_learner_set_backbone_trainable(&R->L, 0, err))
        return -1;
    R->rec.base_bits = clv_params_count(&R->L.model->params, 0) * 32;
    if (!(R->L.heads = calloc((size_t)cfg->tasks, sizeof *R->L.heads)))
        return clv_errf(err, "out of memory");
    if (!(R->strategy = clv_strategy_create(cfg->method, &R->L, err)))
        return -1;
    if (record_rank_caps(R, err))
        return -1;
    if (!load_done)
        return 0;
    char path[CLV_PATH_LEN + 64];
    clv_ckpt_path(path, sizeof path, R->dir, "base", 0);
    /* every finished task wrote the base beside its own file: without it the
     * tasks would run on a freshly initialized backbone, silently wrong */
    int done = 0;
    for (int t = 0; t < cfg->tasks && t < R->rec.n_tasks; t++)
        done += R->rec.tasks[t].done;
    if (access(path, F_OK)) {
        if (done)
            return clv_errf(err,
                            "%s is missing, yet %d task(s) of this run are recorded as learned: their shared "
                            "backbone is lost; restore the file, or start the run afresh (--overwrite)",
                            path, done);
    } else {
        int rc = clv_ckpt_load_backbone(path, R->L.model, err);
        if (rc)
            return rc == CLV_ST_DAMAGED ? clv_ckpt_explain_damage(err, "base") : -1;
    }
    /* what the strategy keeps with the base, once the base task has made it */
    if (R->strategy->ops->load_base && R->rec.n_tasks > 0 && R->rec.tasks[0].done) {
        clv_safetensors st;
        if (clv_ckpt_open(&st, path, "base", err))
            return -1;
        int rc = R->strategy->ops->load_base(R->strategy, &R->L, &st, err);
        clv_st_close(&st);
        if (rc)
            return -1;
    }
    for (int t = 0; t < cfg->tasks && t < R->rec.n_tasks && R->rec.tasks[t].done; t++)
        if (clv_ckpt_load_task(R->dir, t, &R->L, R->strategy, err))
            return -1;
    return 0;
}

void clv_run_free(clv_run *R)
{
    clv_strategy_free(R->strategy);
    if (R->L.heads)
        for (int t = 0; t < R->L.n_tasks; t++)
            clv_head_free(&R->L.heads[t]);
    free(R->L.heads);
    clv_model_free(R->L.model);
    clv_task_split_free(&R->split);
    clv_dataset_free(R->train);
    clv_dataset_free(R->test);
    clv_run_record_free(&R->rec);
    clv_task_curve_free(&R->curve);
    float *bufs[] = {R->feats, R->dfeats, R->logits, R->dlogits, R->probs};
    for (int i = 0; i < 5; i++)
        clv_free(bufs[i]);
    memset(R, 0, sizeof *R);
}

int clv_run_ensure_buffers(clv_run *R, int64_t B, int K, clv_err *err)
{
    if (B <= R->cap_b && K <= R->cap_k)
        return 0;
    int64_t b = B > R->cap_b ? B : R->cap_b;
    int k = K > R->cap_k ? K : R->cap_k;
    int64_t D = R->L.model->info.feat_dim;
    float **bufs[] = {&R->feats, &R->dfeats, &R->logits, &R->dlogits, &R->probs};
    int64_t sizes[] = {b * D, b * D, b * k, b * k, b * k};
    for (int i = 0; i < 5; i++) {
        clv_free(*bufs[i]);
        if (!(*bufs[i] = clv_alloc_array((size_t)sizes[i], sizeof(float))))
            return clv_errf(err, "out of memory for a batch of %lld", (long long)b);
    }
    R->cap_b = b;
    R->cap_k = k;
    return 0;
}

void clv_run_invalidate_adapters(clv_model *m)
{
    for (int i = 0; i < m->n_wlayers; i++) {
        clv_adapter *a = m->wlayers[i]->adapter;
        if (a && a->ops->invalidate)
            a->ops->invalidate(a);
    }
}
