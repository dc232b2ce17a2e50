/* clv_predictor: a run directory or a weights file, ready to classify. */
#include "clvit/predictor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/ckpt_layout.h"
#include "train/predictor_internal.h"
#include "train/router.h"
#include "train/run_internal.h"

struct clv_predictor {
    clv_run run;     /* the learner (a weights file: one task, "finetune") */
    clv_config cfg;
    clv_present present;
    int active;      /* task the backbone is switched to, -1 none */
    clv_router router; /* --task auto, set up at its first use */
    int routing;
};

static void set_present(clv_predictor *p)
{
    const clv_model *m = p->run.L.model;
    p->present.out_c = m->info.in_chans;
    p->present.out_h = p->present.out_w = m->info.img_size;
    p->present.fit_resize = p->cfg.fit == CLV_FIT_RESIZE;
    memcpy(p->present.mean, p->run.norm.mean, sizeof p->present.mean);
    memcpy(p->present.std, p->run.norm.std, sizeof p->present.std);
}

clv_predictor *clv_predictor_from_run(const char *run_dir, clv_err *err)
{
    clv_predictor *p = calloc(1, sizeof *p);
    if (!p) {
        clv_errf(err, "out of memory");
        return NULL;
    }
    p->active = -1;
    clv_run *R = &p->run;
    if (clv_run_record_read(&R->rec, &p->cfg, run_dir, err))
        goto fail;
    clv_threads_set(p->cfg.threads);
    R->cfg = &p->cfg;
    R->dir = run_dir;
    clv_dataset_default_norm(p->cfg.data, R->norm.mean, R->norm.std);
    if (clv_run_build_learner(R, 1, err))
        goto fail;
    /* the base file records the normalization the run trained with */
    char path[CLV_PATH_LEN + 64];
    clv_ckpt_path(path, sizeof path, run_dir, "base", 0);
    clv_safetensors st;
    if (!clv_st_open(&st, path, NULL)) {
        int r = clv_ckpt_read_norm(&st, &R->norm, err);
        clv_st_close(&st);
        if (r < 0)
            goto fail;
    }
    set_present(p);
    return p;
fail:
    clv_predictor_free(p);
    return NULL;
}

clv_predictor *clv_predictor_from_weights(const char *model, const char *weights, const float *mean,
                                          const float *std, clv_err *err)
{
    clv_predictor *p = calloc(1, sizeof *p);
    if (!p) {
        clv_errf(err, "out of memory");
        return NULL;
    }
    p->active = -1;
    clv_run *R = &p->run;
    clv_config_defaults(&p->cfg);
    snprintf(p->cfg.model, sizeof p->cfg.model, "%s", model);
    snprintf(p->cfg.method, sizeof p->cfg.method, "finetune");
    p->cfg.tasks = 1;
    R->cfg = &p->cfg;
    clv_safetensors st;
    int opened = 0;
    if (clv_run_record_init(&R->rec, 1, err) || clv_run_build_learner(R, 0, err))
        goto fail;
    snprintf(p->cfg.weights, sizeof p->cfg.weights, "%s", weights); /* loaded below; named in errors */
    if (clv_ckpt_load_backbone(weights, R->L.model, err) || clv_st_open(&st, weights, err))
        goto fail;
    opened = 1;
    /* the classifier under its layout's name: head, head.fc (timm >= 0.9 Swin) or fc (ResNet) */
    if (clv_ckpt_layout_load_head(&st, NULL, R->L.model->info.feat_dim, &R->L.heads[0], err))
        goto fail;
    R->L.n_heads = 1;
    R->rec.tasks[0].done = 1;
    for (int c = 0; c < 3; c++)
        R->norm.mean[c] = R->norm.std[c] = 0.5f;
    int r = clv_ckpt_read_norm(&st, &R->norm, err);
    if (r < 0)
        goto fail;
    if (r == 1 && !mean)
        clv_warn("%s: no mean/std in its metadata; normalizing with 0.5/0.5 (give --mean and --std)", weights);
    for (int c = 0; c < 3; c++) {
        if (mean)
            R->norm.mean[c] = mean[c];
        if (std)
            R->norm.std[c] = std[c];
    }
    clv_st_close(&st);
    set_present(p);
    return p;
fail:
    if (opened)
        clv_st_close(&st);
    clv_predictor_free(p);
    return NULL;
}

int clv_predictor_set_precision(clv_predictor *p, clv_precision prec, clv_err *err)
{
    p->cfg.precision = prec;
    return clv_model_set_precision(p->run.L.model, prec, 0, err);
}

void clv_predictor_free(clv_predictor *p)
{
    if (!p)
        return;
    clv_router_free(&p->router);
    clv_run_free(&p->run);
    free(p);
}

int clv_predictor_n_tasks(const clv_predictor *p) { return p->run.rec.n_tasks; }

int clv_predictor_task_ready(const clv_predictor *p, int task)
{
    return task >= 0 && task < p->run.rec.n_tasks && p->run.rec.tasks[task].done && task < p->run.L.n_heads;
}

int clv_predictor_classes(const clv_predictor *p, int task) { return p->run.L.heads[task].classes; }

int clv_predictor_class_id(const clv_predictor *p, int task, int k)
{
    const clv_task_record *tr = &p->run.rec.tasks[task];
    return tr->classes && k < tr->n_classes ? tr->classes[k] : k;
}

const char *clv_predictor_class_name(const clv_predictor *p, int task, int k)
{
    const clv_task_record *tr = &p->run.rec.tasks[task];
    return tr->class_names && k >= 0 && k < tr->n_classes ? tr->class_names[k] : NULL;
}

const clv_present *clv_predictor_present(const clv_predictor *p) { return &p->present; }

int clv_predictor_logits(clv_predictor *p, int task, const float *x, int64_t B, float *logits, clv_err *err)
{
    if (!clv_predictor_task_ready(p, task))
        return clv_errf(err, "task %d has not been learned", task + 1);
    if (p->active != task) {
        if (clv_run_activate(&p->run, task, err))
            return -1;
        p->active = task;
    }
    if (clv_run_logits(&p->run, task, x, B, err))
        return -1;
    memcpy(logits, p->run.eval.logits, (size_t)(B * p->run.L.heads[task].classes) * sizeof *logits);
    return 0;
}

int clv_predictor_route(clv_predictor *p, clv_task_select sel, const float *x, int64_t B, clv_route *out,
                        clv_err *err)
{
    if (!p->routing) {
        p->active = -1; /* init switches the backbone from task to task */
        if (clv_router_init(&p->router, &p->run, err))
            return -1;
        p->routing = 1;
        p->active = p->router.active;
    }
    p->router.active = p->active;
    int rc = clv_router_route(&p->router, &p->run, sel, x, B, out, err);
    p->active = rc ? -1 : p->router.active;
    return rc;
}

const float *clv_predictor_routed_logits(const clv_predictor *p, int task, int64_t b)
{
    for (int i = 0; p->routing && i < p->router.n; i++)
        if (p->router.task[i] == task)
            return p->router.logits[i] + b * p->run.L.heads[task].classes;
    return NULL;
}

clv_run *clv_predictor_activate_run(clv_predictor *p, int task, clv_err *err)
{
    if (!clv_predictor_task_ready(p, task)) {
        clv_errf(err, "task %d has not been learned", task + 1);
        return NULL;
    }
    if (p->active != task) {
        if (clv_run_activate(&p->run, task, err))
            return NULL;
        p->active = task;
    }
    return &p->run;
}
