/* `clvit export`: a learned task as a plain timm-named network (clvit/export.h).
 * The effective weights come from the weight layers themselves (their
 * adapter's weight() and scale()), so every method exports the same way
 * and a new method needs nothing here. */
#include "clvit/export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/ckpt_layout.h"
#include "train/predictor_internal.h"

/* The weight layer whose weight (or bias, *is_bias) p is; NULL for other parameters. */
static const clv_wlayer *layer_of(const clv_model *m, const clv_param *p, int *is_bias)
{
    for (int i = 0; i < m->n_wlayers; i++) {
        const clv_wlayer *l = m->wlayers[i];
        if (l->weight == p || l->bias == p) {
            *is_bias = l->bias == p;
            return l;
        }
    }
    return NULL;
}

/* p's exported values: the effective weight or bias of its layer, scale folded in */
static float *folded(const clv_wlayer *l, const clv_param *p, int is_bias, clv_export_info *info)
{
    float *out = malloc((size_t)p->numel * sizeof *out);
    if (!out)
        return NULL;
    const float *s = clv_wlayer_scale(l);
    if (is_bias) {
        for (int64_t o = 0; o < p->numel; o++)
            out[o] = s ? p->data[o] * s[o] : p->data[o];
        return out;
    }
    const float *w = clv_wlayer_weight(l);
    info->adapted += l->adapter != NULL;
    info->scaled += s != NULL;
    for (int64_t o = 0; o < l->out; o++)
        for (int64_t i = 0; i < l->in; i++)
            out[o * l->in + i] = s ? w[o * l->in + i] * s[o] : w[o * l->in + i];
    return out;
}

static int ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

/* JSON array of the task's class ids, or of its class names (NULL: none) */
static char *classes_json(clv_predictor *p, int task, int K, int names)
{
    size_t cap = 16, len = 0;
    for (int k = 0; k < K; k++) {
        const char *n = clv_predictor_class_name(p, task, k);
        if (names && !n)
            return NULL;
        cap += names ? 2 * strlen(n) + 8 : 14;
    }
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[len++] = '[';
    for (int k = 0; k < K; k++) {
        if (k)
            s[len++] = ',';
        if (!names) {
            len += (size_t)snprintf(s + len, cap - len, "%d", clv_predictor_class_id(p, task, k));
            continue;
        }
        s[len++] = '"';
        for (const char *c = clv_predictor_class_name(p, task, k); *c; c++) {
            if (*c == '"' || *c == '\\')
                s[len++] = '\\';
            s[len++] = (unsigned char)*c < 0x20 ? ' ' : *c;
        }
        s[len++] = '"';
    }
    s[len++] = ']';
    s[len] = '\0';
    return s;
}

int clv_export_task(const char *run_dir, int task, const char *path, clv_export_info *info, clv_err *err)
{
    clv_export_info dummy;
    if (!info)
        info = &dummy;
    memset(info, 0, sizeof *info);
    clv_predictor *p = clv_predictor_from_run(run_dir, err);
    if (!p)
        return -1;
    clv_st_writer *w = NULL;
    float **copies = NULL;
    int64_t *counters = NULL;
    char **names = NULL, *cls = NULL, *cls_names = NULL;
    int rc = -1, n = 0;
    if (!clv_predictor_task_ready(p, task)) {
        clv_errf(err, "%s: task %d is not learned (the run has %d tasks)", run_dir, task + 1,
                 clv_predictor_n_tasks(p));
        goto done;
    }
    clv_run *R = clv_predictor_activate_run(p, task, err);
    if (!R)
        goto done;
    const clv_model *m = R->L.model;
    const clv_head *h = &R->L.heads[task];
    clv_ckpt_layout own, timm = {0};
    clv_ckpt_layout_of_model(m, &own);
    /* today's timm names: Swin as timm >= 0.9 saves it; ViT and ResNet did not change */
    timm.kind = own.kind == CLV_LAYOUT_SWIN_06 ? CLV_LAYOUT_SWIN_09 : own.kind;
    snprintf(info->layout, sizeof info->layout, "%s", clv_ckpt_layout_name(&timm));
    const char *head_name = timm.kind == CLV_LAYOUT_SWIN_09 ? "head.fc" : timm.kind == CLV_LAYOUT_RESNET ? "fc" : "head";
    const int total = m->params.count + 2 + m->params.count; /* params, head, at most one counter each */
    copies = calloc((size_t)total, sizeof *copies);
    names = calloc((size_t)total, sizeof *names);
    counters = calloc((size_t)total, sizeof *counters);
    w = clv_st_writer_new();
    if (!copies || !names || !counters || !w) {
        clv_errf(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < m->params.count; i++) {
        const clv_param *q = m->params.items[i];
        int is_bias = 0;
        const clv_wlayer *l = layer_of(m, q, &is_bias);
        const float *data = q->data;
        if (l) {
            if (!(copies[n] = folded(l, q, is_bias, info))) {
                clv_errf(err, "out of memory");
                goto done;
            }
            data = copies[n];
        }
        char buf[CLV_NAME_LEN + 8];
        clv_ckpt_layout_rename(&timm, &own, q->name, buf, sizeof buf);
        if (!(names[n] = strdup(buf)) ||
            clv_st_writer_add(w, names[n], CLV_DT_F32, q->ndim, q->shape, data, err)) {
            if (!names[n])
                clv_errf(err, "out of memory");
            goto done;
        }
        n++;
        /* torchvision's BatchNorm2d keeps a step counter; its state_dict (strict loading) wants it */
        if (timm.kind == CLV_LAYOUT_RESNET && ends_with(q->name, ".running_var")) {
            size_t len = strlen(q->name) - strlen("running_var");
            snprintf(buf, sizeof buf, "%.*snum_batches_tracked", (int)len, q->name);
            if (!(names[n] = strdup(buf)) || clv_st_writer_add(w, names[n], CLV_DT_I64, 0, NULL, &counters[n], err)) {
                if (!names[n])
                    clv_errf(err, "out of memory");
                goto done;
            }
            n++;
        }
    }
    for (int i = 0; i < h->params.count; i++) {
        const clv_param *q = h->params.items[i];
        char buf[32];
        snprintf(buf, sizeof buf, "%s.%s", head_name, ends_with(q->name, "bias") ? "bias" : "weight");
        if (!(names[n] = strdup(buf)) || clv_st_writer_add(w, names[n], CLV_DT_F32, q->ndim, q->shape, q->data, err)) {
            if (!names[n])
                clv_errf(err, "out of memory");
            goto done;
        }
        n++;
    }
    info->classes = h->classes;
    info->tensors = n;
    const clv_present *pr = clv_predictor_present(p);
    char mean[96], std[96], tbuf[16];
    snprintf(mean, sizeof mean, "[%.9g, %.9g, %.9g]", pr->mean[0], pr->mean[1], pr->mean[2]);
    snprintf(std, sizeof std, "[%.9g, %.9g, %.9g]", pr->std[0], pr->std[1], pr->std[2]);
    snprintf(tbuf, sizeof tbuf, "%d", task + 1);
    cls = classes_json(p, task, h->classes, 0);
    cls_names = classes_json(p, task, h->classes, 1);
    if (!cls) {
        clv_errf(err, "out of memory");
        goto done;
    }
    if (clv_st_writer_meta(w, "format", "clvit-export-1", err) || clv_st_writer_meta(w, "model", m->info.name, err) ||
        clv_st_writer_meta(w, "method", R->cfg->method, err) || clv_st_writer_meta(w, "task", tbuf, err) ||
        clv_st_writer_meta(w, "classes", cls, err) ||
        (cls_names && clv_st_writer_meta(w, "class_names", cls_names, err)) ||
        clv_st_writer_meta(w, "mean", mean, err) || clv_st_writer_meta(w, "std", std, err) ||
        clv_st_writer_meta(w, "timm_layout", info->layout, err) || clv_st_writer_write(w, path, err))
        goto done;
    rc = 0;
done:
    clv_st_writer_free(w);
    for (int i = 0; copies && i < total; i++)
        free(copies[i]);
    for (int i = 0; names && i < total; i++)
        free(names[i]);
    free(copies);
    free(names);
    free(counters);
    free(cls);
    free(cls_names);
    clv_predictor_free(p);
    return rc;
}
