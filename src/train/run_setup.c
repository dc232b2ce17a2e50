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
    if (clv_task_split_make(&R->split, R->train, R->test, cfg->tasks, cfg->class_order == CLV_CLASS_ORDER_SHUFFLED,
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
    if (clv_learner_build(&R->L, &R->strategy, cfg, err))
        return -1;
    R->rec.base_bits = clv_params_count(&R->L.model->params, 0) * 32;
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
    } else if (done) {
        /* before a task is recorded, a base file is not this run's: --overwrite
         * keeps an earlier run's until task 1 writes its own (a state file, if
         * any, holds the backbone then) */
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
    clv_learner_free(&R->L, R->strategy);
    clv_task_split_free(&R->split);
    clv_dataset_free(R->train);
    clv_dataset_free(R->test);
    clv_run_record_free(&R->rec);
    clv_task_curve_free(&R->curve);
    clv_batch_bufs_free(&R->eval);
    memset(R, 0, sizeof *R);
}

clv_loader_config clv_run_loader_config(const clv_run *R, int task, int epoch)
{
    const clv_config *cfg = R->cfg;
    const clv_task_info *ti = &R->split.tasks[task];
    const clv_model *m = R->L.model;
    clv_loader_config lc = clv_loader_defaults();
    lc.dataset = R->train;
    lc.indices = ti->train_indices;
    lc.labels = ti->train_labels;
    lc.count = ti->n_train;
    lc.batch = cfg->batch;
    lc.drop_last = ti->n_train >= cfg->batch;
    lc.shuffle = 1;
    lc.augment = cfg->augment;
    lc.flip = cfg->augment && clv_dataset_flip_ok(R->train);
    lc.crop_padding = cfg->crop_padding;
    lc.seed = cfg->seed;
    lc.task = task;
    lc.epoch = epoch;
    lc.shard_rank = R->dist ? R->dist->rank : 0;
    lc.shard_count = R->dist ? R->dist->size : 0;
    lc.out_c = m->info.in_chans;
    lc.out_h = lc.out_w = m->info.img_size;
    lc.fit_resize = cfg->fit == CLV_FIT_RESIZE;
    memcpy(lc.mean, R->norm.mean, sizeof lc.mean);
    memcpy(lc.std, R->norm.std, sizeof lc.std);
    return lc;
}

clv_loader_config clv_run_test_loader_config(const clv_run *R, int task)
{
    const clv_task_info *ti = &R->split.tasks[task];
    const clv_model *m = R->L.model;
    clv_loader_config lc = clv_loader_defaults();
    lc.dataset = R->test;
    lc.indices = ti->test_indices;
    lc.labels = ti->test_labels;
    lc.count = ti->n_test;
    lc.batch = R->cfg->eval_batch;
    lc.out_c = m->info.in_chans;
    lc.out_h = lc.out_w = m->info.img_size;
    lc.fit_resize = R->cfg->fit == CLV_FIT_RESIZE;
    memcpy(lc.mean, R->norm.mean, sizeof lc.mean);
    memcpy(lc.std, R->norm.std, sizeof lc.std);
    return lc;
}
