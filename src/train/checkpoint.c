/* base, task and state files of a run directory (see clvit/checkpoint.h). */
#include "clvit/checkpoint.h"

#include "clvit/ckpt_layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void clv_ckpt_path(char *buf, size_t len, const char *dir, const char *what, int task)
{
    if (!strcmp(what, "task"))
        snprintf(buf, len, "%s/task-%02d.safetensors", dir, task + 1);
    else
        snprintf(buf, len, "%s/%s.safetensors", dir, what);
}

/* What to do about a damaged file of a run, after the reader's reason. */
static const char ADVICE_LEARNED[] =
    "the file is damaged (corrupted or truncated) and --resume cannot remake it, for the learned tasks "
    "depend on it: restore it from a copy, or train the run again with --overwrite (the same settings "
    "reproduce it)";
static const char ADVICE_STATE[] =
    "the checkpoint is damaged (corrupted or truncated): delete it and run --resume again; the task in "
    "progress restarts from its first step, the learned tasks are kept";

int clv_ckpt_explain_damage(clv_err *err, const char *what)
{
    const char *advice = !strcmp(what, "state") ? ADVICE_STATE : ADVICE_LEARNED;
    if (err) {
        size_t used = strlen(err->msg);
        snprintf(err->msg + used, sizeof err->msg - used, "; %s", advice);
    }
    return -1;
}

int clv_ckpt_open(clv_safetensors *st, const char *path, const char *what, clv_err *err)
{
    int rc = clv_st_open(st, path, err);
    if (rc == CLV_ST_DAMAGED)
        clv_ckpt_explain_damage(err, what);
    return rc;
}

static void norm_meta(const clv_norm *norm, char *mean, char *std, size_t len)
{
    snprintf(mean, len, "[%.6g, %.6g, %.6g]", norm->mean[0], norm->mean[1], norm->mean[2]);
    snprintf(std, len, "[%.6g, %.6g, %.6g]", norm->std[0], norm->std[1], norm->std[2]);
}

static int add_norm_meta(clv_st_writer *w, const clv_norm *norm, clv_err *err)
{
    char mean[96], std[96];
    norm_meta(norm, mean, std, sizeof mean);
    return clv_st_writer_meta(w, "mean", mean, err) || clv_st_writer_meta(w, "std", std, err) ? -1 : 0;
}

static int parse_triple(const char *s, float out[3])
{
    float v[3];
    if (sscanf(s, " [ %f , %f , %f ]", &v[0], &v[1], &v[2]) != 3)
        return -1;
    for (int i = 0; i < 3; i++)
        out[i] = v[i];
    return 0;
}

int clv_ckpt_read_norm(const clv_safetensors *st, clv_norm *norm, clv_err *err)
{
    const char *mean = clv_st_meta(st, "mean"), *std = clv_st_meta(st, "std");
    if (!mean && !std)
        return 1;
    clv_norm n;
    if (!mean || !std || parse_triple(mean, n.mean) || parse_triple(std, n.std))
        return clv_errf(err, "%s: metadata mean/std must both be JSON arrays of 3 numbers", st->path);
    for (int i = 0; i < 3; i++)
        if (!(n.std[i] > 0))
            return clv_errf(err, "%s: metadata std must be positive", st->path);
    *norm = n;
    return 0;
}

static int write_params(clv_st_writer *w, const clv_params *ps, const char *prefix, clv_err *err)
{
    for (int i = 0; i < ps->count; i++)
        if (clv_st_writer_add_param(w, ps->items[i], prefix, err))
            return -1;
    return 0;
}

int clv_ckpt_save_base(const char *dir, clv_learner *L, clv_strategy *s, const clv_norm *norm, clv_err *err)
{
    char path[CLV_PATH_LEN + 64];
    const clv_model *m = L->model;
    clv_ckpt_path(path, sizeof path, dir, "base", 0);
    clv_st_writer *w = clv_st_writer_new();
    if (!w)
        return clv_errf(err, "out of memory");
    int rc = write_params(w, &m->params, NULL, err) || (s && s->ops->save_base && s->ops->save_base(s, L, w, err)) ||
             clv_st_writer_meta(w, "format", "clvit-base-1", err) ||
             clv_st_writer_meta(w, "model", m->info.name, err) || add_norm_meta(w, norm, err) ||
             clv_st_writer_write(w, path, err);
    clv_st_writer_free(w);
    return rc ? -1 : 0;
}

int clv_ckpt_load_backbone(const char *path, clv_model *m, clv_err *err)
{
    clv_safetensors st;
    int rc = clv_st_open(&st, path, err);
    if (rc)
        return rc;
    rc = clv_ckpt_layout_load(&st, NULL, m, err);
    clv_st_close(&st);
    return rc;
}

int clv_ckpt_load_weights(const char *path, clv_model *m, clv_err *err)
{
    clv_safetensors st;
    int rc = clv_st_open(&st, path, err);
    if (rc)
        return rc;
    clv_ckpt_layout l;
    clv_ckpt_layout_of_file(&st, &l);
    rc = clv_ckpt_layout_load(&st, &l, m, err);
    if (!rc && l.head_weight[0])
        clv_info("%s: %s layout; its %lld-class head (%s) is not used: every task trains its own head", path,
                 clv_ckpt_layout_name(&l), (long long)l.head_classes, l.head_weight);
    else if (!rc && l.kind != CLV_LAYOUT_UNKNOWN)
        clv_info("%s: %s layout", path, clv_ckpt_layout_name(&l));
    clv_st_close(&st);
    return rc;
}

int clv_ckpt_save_task(const char *dir, int task, clv_learner *L, clv_strategy *s, const int32_t *classes,
                       int n_classes, const clv_norm *norm, clv_err *err)
{
    char path[CLV_PATH_LEN + 64], buf[64], *cls = malloc((size_t)n_classes * 12 + 8);
    if (!cls)
        return clv_errf(err, "out of memory");
    size_t off = (size_t)sprintf(cls, "[");
    for (int k = 0; k < n_classes; k++)
        off += (size_t)sprintf(cls + off, k ? ", %d" : "%d", classes[k]);
    strcpy(cls + off, "]");
    clv_ckpt_path(path, sizeof path, dir, "task", task);
    snprintf(buf, sizeof buf, "%d", task + 1);
    clv_st_writer *w = clv_st_writer_new();
    int rc = !w || write_params(w, &L->heads[task].params, NULL, err) ||
             (s->ops->save_task && s->ops->save_task(s, L, task, w, err)) ||
             clv_st_writer_meta(w, "format", "clvit-task-1", err) || clv_st_writer_meta(w, "task", buf, err) ||
             clv_st_writer_meta(w, "classes", cls, err) || clv_st_writer_meta(w, "method", s->ops->name, err) ||
             clv_st_writer_meta(w, "model", L->model->info.name, err) || add_norm_meta(w, norm, err) ||
             clv_st_writer_write(w, path, err);
    if (!w)
        clv_errf(err, "out of memory");
    clv_st_writer_free(w);
    free(cls);
    return rc ? -1 : 0;
}

int clv_ckpt_load_task(const char *dir, int task, clv_learner *L, clv_strategy *s, clv_err *err)
{
    char path[CLV_PATH_LEN + 64];
    clv_ckpt_path(path, sizeof path, dir, "task", task);
    clv_safetensors st;
    if (clv_ckpt_open(&st, path, "task", err))
        return -1;
    int rc = -1;
    const clv_st_tensor *hw = clv_st_find(&st, "head.weight");
    if (!hw || hw->ndim != 2 || hw->shape[1] != L->model->info.feat_dim || hw->shape[0] < 1 ||
        hw->shape[0] > (1 << 20)) {
        clv_errf(err, "%s: no head.weight of shape [classes, %d]", path, L->model->info.feat_dim);
        goto done;
    }
    clv_head *h = &L->heads[task];
    if (h->classes != (int)hw->shape[0]) {
        clv_head_free(h);
        if (clv_head_init(h, L->model->info.feat_dim, (int)hw->shape[0], 0, task, err))
            goto done;
    }
    if (clv_st_load_params(&st, &h->params, NULL, 0, err))
        goto done;
    if (s && s->ops->load_task && s->ops->load_task(s, L, task, &st, err))
        goto done;
    if (L->n_heads < task + 1)
        L->n_heads = task + 1;
    rc = 0;
done:
    clv_st_close(&st);
    return rc;
}

/* curve.loss_sum F64 [epochs], curve.counts I64 [epochs, 3] (steps, correct,
 * images), curve.first_tenth F64 [1] (the loss sum of epoch 1's first tenth) */
typedef struct {
    int64_t *counts;
} curve_buf;

static int add_curve(clv_st_writer *w, const clv_task_curve *c, curve_buf *buf, clv_err *err)
{
    int64_t e = c->epochs, shape1[1] = {e}, shape2[2] = {e, 3}, one[1] = {1};
    if (!(buf->counts = malloc((size_t)(3 * e + 1) * sizeof *buf->counts)))
        return clv_errf(err, "out of memory");
    for (int64_t i = 0; i < e; i++) {
        buf->counts[3 * i] = c->steps[i];
        buf->counts[3 * i + 1] = c->correct[i];
        buf->counts[3 * i + 2] = c->images[i];
    }
    return clv_st_writer_add(w, "curve.loss_sum", CLV_DT_F64, 1, shape1, c->loss_sum, err) ||
                   clv_st_writer_add(w, "curve.counts", CLV_DT_I64, 2, shape2, buf->counts, err) ||
                   clv_st_writer_add(w, "curve.first_tenth", CLV_DT_F64, 1, one, &c->first_loss_sum, err)
               ? -1
               : 0;
}

static int read_curve(const clv_safetensors *st, clv_task_curve *c, clv_err *err)
{
    const clv_st_tensor *ls = clv_st_find(st, "curve.loss_sum"), *cn = clv_st_find(st, "curve.counts"),
                        *ft = clv_st_find(st, "curve.first_tenth");
    if (!ls && !cn && !ft)
        return 0; /* a checkpoint from before curves were kept */
    if (!ls || !cn || !ft || ls->dtype != CLV_DT_F64 || ls->ndim != 1 || cn->dtype != CLV_DT_I64 || cn->ndim != 2 ||
        cn->shape[0] != ls->shape[0] || cn->shape[1] != 3 || ft->dtype != CLV_DT_F64 || ft->numel != 1)
        return clv_errf(err, "%s: curve.loss_sum, curve.counts, curve.first_tenth must be F64 [E], I64 [E, 3], F64 [1]",
                        st->path);
    /* a run resumed with --force and other epochs keeps what fits */
    int64_t e = ls->shape[0] < c->epochs ? ls->shape[0] : c->epochs;
    const uint8_t *counts = clv_st_tensor_data(st, cn), *sums = clv_st_tensor_data(st, ls);
    memcpy(&c->first_loss_sum, clv_st_tensor_data(st, ft), sizeof c->first_loss_sum);
    for (int64_t i = 0; i < e; i++) { /* memcpy: a tensor's offset need not be 8-byte aligned */
        int64_t v[3];
        memcpy(&c->loss_sum[i], sums + 8 * i, sizeof c->loss_sum[i]);
        memcpy(v, counts + 24 * i, sizeof v);
        c->steps[i] = v[0];
        c->correct[i] = v[1];
        c->images[i] = v[2];
    }
    return 0;
}

int clv_ckpt_save_state(const char *dir, const clv_param_group *groups, int n_groups, const clv_ckpt_position *pos,
                        const clv_task_curve *curve, clv_err *err)
{
    curve_buf cb = {0};
    char path[CLV_PATH_LEN + 64], name[CLV_NAME_LEN + 64], buf[3][32];
    clv_ckpt_path(path, sizeof path, dir, "state", 0);
    clv_st_writer *w = clv_st_writer_new();
    if (!w)
        return clv_errf(err, "out of memory");
    int rc = 0;
    for (int g = 0; g < n_groups && !rc; g++) {
        const clv_params *ps = groups[g].params;
        rc = write_params(w, ps, groups[g].prefix, err);
        for (int i = 0; i < ps->count && !rc; i++) {
            const clv_param *p = ps->items[i];
            if (p->opt_m) {
                snprintf(name, sizeof name, "opt_m.%s%s", groups[g].prefix, p->name);
                rc = clv_st_writer_add(w, name, CLV_DT_F32, p->ndim, p->shape, p->opt_m, err);
            }
            if (!rc && p->opt_v) {
                snprintf(name, sizeof name, "opt_v.%s%s", groups[g].prefix, p->name);
                rc = clv_st_writer_add(w, name, CLV_DT_F32, p->ndim, p->shape, p->opt_v, err);
            }
        }
    }
    snprintf(buf[0], sizeof buf[0], "%d", pos->task);
    snprintf(buf[1], sizeof buf[1], "%lld", (long long)pos->step);
    snprintf(buf[2], sizeof buf[2], "%lld", (long long)pos->opt_t);
    rc = rc || (curve && add_curve(w, curve, &cb, err)) || clv_st_writer_meta(w, "format", "clvit-state-1", err) ||
         clv_st_writer_meta(w, "task", buf[0], err) || clv_st_writer_meta(w, "step", buf[1], err) ||
         clv_st_writer_meta(w, "opt_t", buf[2], err) || clv_st_writer_write(w, path, err);
    clv_st_writer_free(w);
    free(cb.counts);
    return rc ? -1 : 0;
}

static int meta_i64(const clv_safetensors *st, const char *key, int64_t *out, clv_err *err)
{
    const char *v = clv_st_meta(st, key);
    char *end;
    if (!v)
        return clv_errf(err, "%s: metadata '%s' missing", st->path, key);
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno || x < 0)
        return clv_errf(err, "%s: metadata '%s' is not a count: %s", st->path, key, v);
    *out = x;
    return 0;
}

static int read_moment(const clv_safetensors *st, const char *name, clv_param *p, float **slot, clv_err *err)
{
    const clv_st_tensor *t = clv_st_find(st, name);
    if (!t)
        return 0;
    if (!*slot && !(*slot = clv_alloc_array((size_t)p->numel, sizeof(float))))
        return clv_errf(err, "out of memory");
    return clv_st_read_f32(st, t, *slot, p->numel, err);
}

static int read_position(const clv_safetensors *st, clv_ckpt_position *pos, clv_err *err)
{
    int64_t task;
    if (meta_i64(st, "task", &task, err) || meta_i64(st, "step", &pos->step, err) ||
        meta_i64(st, "opt_t", &pos->opt_t, err))
        return -1;
    if (task > (1 << 20))
        return clv_errf(err, "%s: metadata 'task' is out of range: %lld", st->path, (long long)task);
    pos->task = (int)task;
    return 0;
}

int clv_ckpt_state_position(const char *dir, clv_ckpt_position *pos, clv_err *err)
{
    char path[CLV_PATH_LEN + 64];
    clv_ckpt_path(path, sizeof path, dir, "state", 0);
    if (access(path, F_OK))
        return 1;
    clv_safetensors st;
    if (clv_ckpt_open(&st, path, "state", err))
        return -1;
    int rc = read_position(&st, pos, err);
    clv_st_close(&st);
    return rc;
}

int clv_ckpt_load_state(const char *dir, const clv_param_group *groups, int n_groups, clv_ckpt_position *pos,
                        clv_task_curve *curve, clv_err *err)
{
    char path[CLV_PATH_LEN + 64], name[CLV_NAME_LEN + 64];
    clv_ckpt_path(path, sizeof path, dir, "state", 0);
    if (access(path, F_OK))
        return 1;
    clv_safetensors st;
    if (clv_ckpt_open(&st, path, "state", err))
        return -1;
    int rc = -1;
    if (read_position(&st, pos, err))
        goto done;
    if (curve && read_curve(&st, curve, err))
        goto done;
    for (int g = 0; g < n_groups; g++) {
        clv_params *ps = groups[g].params;
        if (clv_st_load_params(&st, ps, groups[g].prefix, 0, err))
            goto done;
        for (int i = 0; i < ps->count; i++) {
            clv_param *p = ps->items[i];
            snprintf(name, sizeof name, "opt_m.%s%s", groups[g].prefix, p->name);
            if (read_moment(&st, name, p, &p->opt_m, err))
                goto done;
            snprintf(name, sizeof name, "opt_v.%s%s", groups[g].prefix, p->name);
            if (read_moment(&st, name, p, &p->opt_v, err))
                goto done;
        }
    }
    rc = 0;
done:
    clv_st_close(&st);
    return rc;
}

int clv_ckpt_remove_state(const char *dir)
{
    char path[CLV_PATH_LEN + 64];
    clv_ckpt_path(path, sizeof path, dir, "state", 0);
    return unlink(path) && errno != ENOENT ? -1 : 0;
}

/* Copies every tensor of src whose name starts with prefix ("" = all). */
static int copy_tensors(clv_st_writer *w, const clv_safetensors *src, const char *prefix, clv_err *err)
{
    for (int i = 0; i < src->count; i++) {
        const clv_st_tensor *t = &src->tensors[i];
        if (strncmp(t->name, prefix, strlen(prefix)))
            continue;
        if (clv_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, clv_st_tensor_data(src, t), err))
            return -1;
    }
    return 0;
}

int clv_ckpt_export_pretrained(const char *run_dir, const char *path, clv_err *err)
{
    char base_path[CLV_PATH_LEN + 64], task_path[CLV_PATH_LEN + 64];
    clv_ckpt_path(base_path, sizeof base_path, run_dir, "base", 0);
    clv_ckpt_path(task_path, sizeof task_path, run_dir, "task", 0);
    clv_safetensors base, task;
    if (clv_ckpt_open(&base, base_path, "base", err))
        return -1;
    if (clv_ckpt_open(&task, task_path, "task", err)) {
        clv_st_close(&base);
        return -1;
    }
    int rc = -1;
    clv_st_writer *w = clv_st_writer_new();
    if (!w) {
        clv_errf(err, "out of memory");
        goto done;
    }
    if (copy_tensors(w, &base, "", err) || copy_tensors(w, &task, "head.", err) ||
        clv_st_writer_meta(w, "format", "clvit-pretrained-1", err))
        goto done;
    static const char *const keys[] = {"model", "mean", "std"};
    for (int k = 0; k < 3; k++) {
        const char *v = clv_st_meta(&base, keys[k]);
        if (v && clv_st_writer_meta(w, keys[k], v, err))
            goto done;
    }
    const char *classes = clv_st_meta(&task, "classes");
    if (classes && clv_st_writer_meta(w, "classes", classes, err))
        goto done;
    rc = clv_st_writer_write(w, path, err);
done:
    clv_st_writer_free(w);
    clv_st_close(&task);
    clv_st_close(&base);
    return rc ? -1 : 0;
}
