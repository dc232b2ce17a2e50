/* run.json: mask density, training curves and warnings (see run_record_checks.h).
 *
 *   "masks": {"bits": B, "zero_bits": Z, "zero_share": Z / B,
 *             "layers": [{"name": "blocks.0.attn.qkv.weight", "bits": b, "zero_bits": z}, ...]}
 *            only for a task whose file stores mask bits
 *   "warnings": ["code: sentence", ...]       per task and at the top
 *   "epoch_loss", "epoch_train_accuracy": [per epoch, null where no step ran] */
#include "io/run_record_checks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static cJSON *warnings_json(const clv_warnings *w)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < w->n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(w->items[i]));
    return a;
}

static int warnings_read(const cJSON *a, clv_warnings *w, const char *path, const char *where, clv_err *err)
{
    clv_warnings_clear(w);
    if (!a)
        return 0;
    if (!cJSON_IsArray(a))
        return clv_errf(err, "%s: %s warnings is not an array", path, where);
    const cJSON *v;
    cJSON_ArrayForEach(v, a)
    {
        if (!cJSON_IsString(v))
            return clv_errf(err, "%s: %s warnings holds a non-string", path, where);
        if (clv_warnings_add_text(w, v->valuestring))
            return clv_errf(err, "out of memory");
    }
    return 0;
}

static cJSON *curve_json(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, isnan(v[i]) ? cJSON_CreateNull() : cJSON_CreateNumber(v[i]));
    return a;
}

static cJSON *masks_json(const clv_mask_density *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "bits", (double)d->bits);
    cJSON_AddNumberToObject(o, "zero_bits", (double)d->zero_bits);
    cJSON_AddNumberToObject(o, "zero_share", d->bits ? (double)d->zero_bits / (double)d->bits : 0.0);
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int i = 0; layers && i < d->n_layers; i++) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "name", d->layers[i].name);
        cJSON_AddNumberToObject(l, "bits", (double)d->layers[i].bits);
        cJSON_AddNumberToObject(l, "zero_bits", (double)d->layers[i].zero_bits);
        cJSON_AddItemToArray(layers, l);
    }
    return o;
}

static int count_of(const cJSON *o, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 9.0e15)
        return -1;
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int masks_read(const cJSON *o, clv_mask_density *d, const char *path, int task, clv_err *err)
{
    clv_mask_density_free(d);
    if (!o)
        return 0;
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(o, "layers"); /* optional for readers of older files */
    if (!cJSON_IsObject(o) || (layers && !cJSON_IsArray(layers)) || count_of(o, "bits", &d->bits) ||
        count_of(o, "zero_bits", &d->zero_bits) || d->zero_bits > d->bits)
        return clv_errf(err, "%s: task %d: masks needs bits >= zero_bits and an array of layers", path, task + 1);
    int n = cJSON_GetArraySize(layers);
    if (n && !(d->layers = calloc((size_t)n, sizeof *d->layers)))
        return clv_errf(err, "out of memory");
    for (int i = 0; i < n; i++) {
        const cJSON *l = cJSON_GetArrayItem(layers, i);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(l, "name");
        clv_mask_layer *ml = &d->layers[i];
        if (!cJSON_IsString(name) || count_of(l, "bits", &ml->bits) || count_of(l, "zero_bits", &ml->zero_bits))
            return clv_errf(err, "%s: task %d: masks layer %d needs name, bits and zero_bits", path, task + 1, i + 1);
        snprintf(ml->name, sizeof ml->name, "%s", name->valuestring);
        d->n_layers++;
    }
    return 0;
}

static int curve_read(const cJSON *a, double **out, int *n, const char *path, int task, const char *key,
                      clv_err *err)
{
    if (!a)
        return 0;
    int len = cJSON_GetArraySize(a);
    if (!cJSON_IsArray(a) || (*n && len != *n))
        return clv_errf(err, "%s: task %d: %s is not an array of the epochs", path, task + 1, key);
    free(*out);
    if (!(*out = calloc((size_t)len + 1, sizeof **out)))
        return clv_errf(err, "out of memory");
    for (int i = 0; i < len; i++) {
        const cJSON *v = cJSON_GetArrayItem(a, i);
        (*out)[i] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    }
    *n = len;
    return 0;
}

void run_checks_task_to_json(cJSON *o, const clv_task_record *tr)
{
    if (tr->masks.n_layers || tr->masks.bits)
        cJSON_AddItemToObject(o, "masks", masks_json(&tr->masks));
    cJSON_AddItemToObject(o, "epoch_loss", curve_json(tr->epoch_loss, tr->n_epochs));
    cJSON_AddItemToObject(o, "epoch_train_accuracy", curve_json(tr->epoch_train_accuracy, tr->n_epochs));
    cJSON_AddItemToObject(o, "warnings", warnings_json(&tr->warnings));
}

int run_checks_task_from_json(const cJSON *o, clv_task_record *tr, const char *path, int task, clv_err *err)
{
    char where[32];
    snprintf(where, sizeof where, "task %d", task + 1);
    int n = 0;
    if (masks_read(cJSON_GetObjectItemCaseSensitive(o, "masks"), &tr->masks, path, task, err) ||
        warnings_read(cJSON_GetObjectItemCaseSensitive(o, "warnings"), &tr->warnings, path, where, err) ||
        curve_read(cJSON_GetObjectItemCaseSensitive(o, "epoch_loss"), &tr->epoch_loss, &n, path, task,
                   "epoch_loss", err) ||
        curve_read(cJSON_GetObjectItemCaseSensitive(o, "epoch_train_accuracy"), &tr->epoch_train_accuracy, &n, path,
                   task, "epoch_train_accuracy", err))
        return -1;
    if ((tr->epoch_loss == NULL) != (tr->epoch_train_accuracy == NULL))
        return clv_errf(err, "%s: task %d: epoch_loss and epoch_train_accuracy come together", path, task + 1);
    tr->n_epochs = n;
    return 0;
}

void run_checks_run_to_json(cJSON *root, const clv_run_record *r)
{
    cJSON_AddItemToObject(root, "warnings", warnings_json(&r->warnings));
}

int run_checks_run_from_json(const cJSON *root, clv_run_record *r, const char *path, clv_err *err)
{
    return warnings_read(cJSON_GetObjectItemCaseSensitive(root, "warnings"), &r->warnings, path, "the run's", err);
}
