/* run.json and results.csv: what a run learned, measured and stored. */
#include "clvit/run_record.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/atomic_file.h"
#include "clvit/storage_summary.h"
#include "clvit/version.h"
#include "io/data_manifest.h"
#include "io/run_record_checks.h"
#include "clvit/input_file.h"

int clv_run_record_init(clv_run_record *r, int n_tasks, clv_err *err)
{
    memset(r, 0, sizeof *r);
    r->n_tasks = n_tasks;
    r->acc = malloc((size_t)n_tasks * (size_t)n_tasks * sizeof *r->acc);
    r->tasks = calloc((size_t)n_tasks, sizeof *r->tasks);
    if (!r->acc || !r->tasks)
        return clv_errf(err, "out of memory");
    for (int i = 0; i < n_tasks * n_tasks; i++)
        r->acc[i] = NAN;
    strcpy(r->status, "running");
    return 0;
}

static void free_class_names(clv_task_record *tr)
{
    for (int k = 0; tr->class_names && k < tr->n_classes; k++)
        free(tr->class_names[k]);
    free(tr->class_names);
    tr->class_names = NULL;
}

int clv_task_record_name_classes(clv_task_record *tr, char *const *names, int n_names, clv_err *err)
{
    free_class_names(tr);
    for (int k = 0; k < tr->n_classes; k++)
        if (!names || tr->classes[k] < 0 || tr->classes[k] >= n_names || !names[tr->classes[k]])
            return 0;
    if (!(tr->class_names = calloc((size_t)tr->n_classes + 1, sizeof *tr->class_names)))
        return clv_errf(err, "out of memory");
    for (int k = 0; k < tr->n_classes; k++)
        if (!(tr->class_names[k] = strdup(names[tr->classes[k]]))) {
            free_class_names(tr);
            return clv_errf(err, "out of memory");
        }
    return 0;
}

void clv_task_record_free(clv_task_record *tr)
{
    free_class_names(tr);
    free(tr->classes);
    tr->classes = NULL;
    clv_mask_density_free(&tr->masks);
    clv_warnings_clear(&tr->warnings);
    free(tr->epoch_loss);
    free(tr->epoch_train_accuracy);
    tr->epoch_loss = tr->epoch_train_accuracy = NULL;
    tr->n_epochs = 0;
}

int clv_task_record_set_curves(clv_task_record *tr, int n, const double *loss, const double *accuracy, clv_err *err)
{
    double *l = malloc(((size_t)n + 1) * sizeof *l), *a = malloc(((size_t)n + 1) * sizeof *a);
    if (!l || !a) {
        free(l);
        free(a);
        return clv_errf(err, "out of memory");
    }
    memcpy(l, loss, (size_t)n * sizeof *l);
    memcpy(a, accuracy, (size_t)n * sizeof *a);
    free(tr->epoch_loss);
    free(tr->epoch_train_accuracy);
    tr->epoch_loss = l;
    tr->epoch_train_accuracy = a;
    tr->n_epochs = n;
    return 0;
}

void clv_run_record_free(clv_run_record *r)
{
    if (r->tasks)
        for (int t = 0; t < r->n_tasks; t++)
            clv_task_record_free(&r->tasks[t]);
    free(r->tasks);
    free(r->rank_caps);
    free(r->acc);
    for (int i = 0; i < r->n_commands; i++)
        free(r->commands[i]);
    free(r->commands);
    clv_warnings_clear(&r->warnings);
    memset(r, 0, sizeof *r);
}

double clv_run_record_acc(const clv_run_record *r, int after, int task) { return r->acc[after * r->n_tasks + task]; }

int clv_run_record_last_row(const clv_run_record *r)
{
    int last = -1;
    for (int i = 0; i < r->n_tasks; i++) {
        int full = 1;
        for (int j = 0; j <= i; j++)
            full &= !isnan(clv_run_record_acc(r, i, j));
        if (!full)
            break;
        last = i;
    }
    return last;
}

double clv_run_record_average_accuracy(const clv_run_record *r)
{
    int last = clv_run_record_last_row(r);
    if (last < 0)
        return NAN;
    double sum = 0;
    for (int j = 0; j <= last; j++)
        sum += clv_run_record_acc(r, last, j);
    return sum / (last + 1);
}

double clv_run_record_forgetting(const clv_run_record *r)
{
    int last = clv_run_record_last_row(r);
    if (last < 1)
        return last < 0 ? NAN : 0.0;
    double sum = 0;
    for (int j = 0; j < last; j++) {
        double best = -INFINITY;
        for (int i = j; i < last; i++)
            best = fmax(best, clv_run_record_acc(r, i, j));
        sum += best - clv_run_record_acc(r, last, j);
    }
    return sum / last;
}

static cJSON *number_or_null(double v) { return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v); }

/* A setting as a typed JSON value. Numbers are written as the settings
 * table formats them (raw), so a float is its shortest round-trip text and
 * a 64-bit seed loses no digit; a seed beyond 2^53, which JSON readers hold
 * in a double, stays a string. */
static cJSON *setting_json(const clv_config *cfg, const clv_setting *s)
{
    char v[CLV_PATH_LEN];
    clv_config_format(cfg, s, v, sizeof v);
    switch (s->type) {
    case CLV_SET_BOOL:
        return cJSON_CreateBool(!strcmp(v, "true"));
    case CLV_SET_STR:
    case CLV_SET_CHOICE:
        return cJSON_CreateString(v);
    case CLV_SET_U64:
        if (strtoull(v, NULL, 10) > (1ull << 53))
            return cJSON_CreateString(v);
        return cJSON_CreateRaw(v);
    default:
        return cJSON_CreateRaw(v);
    }
}

static cJSON *config_json(const clv_config *cfg)
{
    cJSON *root = cJSON_CreateObject();
    for (int i = 0; i < clv_config_settings_count(); i++) {
        const clv_setting *s = clv_config_setting(i);
        cJSON *sec = cJSON_GetObjectItemCaseSensitive(root, s->section);
        if (!sec)
            sec = cJSON_AddObjectToObject(root, s->section);
        cJSON_AddItemToObject(sec, s->key, setting_json(cfg, s));
    }
    return root;
}

/* A setting of run.json back as the text clv_config_set reads: a string as
 * it is (every run.json before settings were typed), a number or a boolean
 * as text; NULL for anything else. */
static const char *setting_text(const cJSON *v, char *buf, size_t len)
{
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v) ? "true" : "false";
    if (!cJSON_IsNumber(v))
        return NULL;
    double d = v->valuedouble;
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
        snprintf(buf, len, "%.0f", d);
    else
        snprintf(buf, len, "%.17g", d); /* read as a float by clv_config_set: the float written */
    return buf;
}

/* One line a shell reads back as these arguments. */
static char *shell_quote_join(int argc, char *const *argv)
{
    size_t cap = 1;
    for (int i = 0; i < argc; i++)
        cap += 4 * strlen(argv[i]) + 3;
    char *out = malloc(cap), *o = out;
    if (!out)
        return NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int plain = *a != 0;
        for (const char *c = a; *c; c++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%", *c))
                plain = 0;
        if (i)
            *o++ = ' ';
        if (plain) {
            o += sprintf(o, "%s", a);
            continue;
        }
        *o++ = '\'';
        for (const char *c = a; *c; c++)
            o += *c == '\'' ? sprintf(o, "'\\''") : sprintf(o, "%c", *c);
        *o++ = '\'';
    }
    *o = 0;
    return out;
}

static int add_command_text(clv_run_record *r, const char *line)
{
    char *copy = strdup(line);
    char **items = copy ? realloc(r->commands, (size_t)(r->n_commands + 1) * sizeof *items) : NULL;
    if (!items) {
        free(copy);
        return -1;
    }
    items[r->n_commands++] = copy;
    r->commands = items;
    return 0;
}

int clv_run_record_add_command(clv_run_record *r, int argc, char *const *argv, clv_err *err)
{
    char *line = shell_quote_join(argc, argv);
    int rc = line ? add_command_text(r, line) : -1;
    free(line);
    return rc ? clv_errf(err, "out of memory") : 0;
}

/* A task's storage by kind (bits and elements) and its split (clvit/storage_summary.h). */
static void task_storage_json(cJSON *o, const clv_task_record *tr)
{
    cJSON *sb = cJSON_AddObjectToObject(o, "storage_bits"); /* stored_bits by kind */
    cJSON *se = cJSON_AddObjectToObject(o, "storage_elements");
    for (int k = 0; k < tr->storage.n; k++) {
        cJSON_AddNumberToObject(sb, tr->storage.item[k].kind, (double)tr->storage.item[k].bits);
        cJSON_AddNumberToObject(se, tr->storage.item[k].kind, (double)tr->storage.item[k].elements);
    }
    clv_task_split sp;
    clv_storage_split_task(&tr->storage, &sp);
    cJSON_AddBoolToObject(o, "one_time_task", tr->storage.one_time_task);
    cJSON_AddNumberToObject(o, "marginal_bits", (double)sp.marginal_bits);
    cJSON_AddNumberToObject(o, "marginal_elements", (double)sp.marginal_elements);
    cJSON_AddNumberToObject(o, "head_elements", (double)sp.head_elements);
}

/* The run's storage split: one-time, heads, marginal (docs/methods.md). */
static cJSON *storage_json(const clv_run_record *r)
{
    clv_storage_summary s;
    clv_storage_summarize(r, &s);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "base_bits", (double)s.base_bits);
    cJSON_AddNumberToObject(o, "base_elements", (double)s.base_elements);
    cJSON_AddNumberToObject(o, "one_time_bits", (double)s.one_time_bits);
    cJSON_AddNumberToObject(o, "one_time_elements", (double)s.one_time_elements);
    cJSON *ob = cJSON_AddObjectToObject(o, "one_time"), *oe = cJSON_AddObjectToObject(o, "one_time_elements_by_kind");
    for (int k = 0; k < s.one_time.n; k++) {
        cJSON_AddNumberToObject(ob, s.one_time.item[k].kind, (double)s.one_time.item[k].bits);
        cJSON_AddNumberToObject(oe, s.one_time.item[k].kind, (double)s.one_time.item[k].elements);
    }
    cJSON_AddItemToObject(o, "head_bits_per_task", number_or_null(s.head_bits_per_task));
    cJSON_AddItemToObject(o, "head_elements_per_task", number_or_null(s.head_elements_per_task));
    cJSON_AddItemToObject(o, "marginal_bits_per_task", number_or_null(s.marginal_bits_per_task));
    cJSON_AddItemToObject(o, "marginal_elements_per_task", number_or_null(s.marginal_elements_per_task));
    cJSON *mt = cJSON_AddArrayToObject(o, "marginal_tasks");
    for (int t = 0; t < r->n_tasks; t++)
        if (clv_storage_task_is_marginal(&r->tasks[t]))
            cJSON_AddItemToArray(mt, cJSON_CreateNumber(t + 1));
    cJSON_AddNumberToObject(o, "head_bits_total", (double)s.head_bits);
    cJSON_AddNumberToObject(o, "marginal_bits_total", (double)s.marginal_bits);
    cJSON_AddNumberToObject(o, "total_bits", (double)s.total_bits);
    return o;
}

int clv_run_record_write_results(const clv_run_record *r, const clv_config *cfg, const char *dir, clv_err *err)
{
    size_t cap = 256 + (size_t)r->n_tasks * (size_t)r->n_tasks * 96;
    char *buf = malloc(cap);
    if (!buf)
        return clv_errf(err, "out of memory");
    size_t off = (size_t)snprintf(buf, cap, "method,model,after_task,task,accuracy,stored_bits\n");
    for (int i = 0; i < r->n_tasks; i++)
        for (int j = 0; j <= i; j++) {
            double a = clv_run_record_acc(r, i, j);
            if (isnan(a))
                continue;
            off += (size_t)snprintf(buf + off, cap - off, "%s,%s,%d,%d,%.4f,%lld\n", cfg->method, cfg->model, i + 1,
                                    j + 1, a, (long long)r->tasks[j].stored_bits);
        }
    char path[CLV_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/results.csv", dir);
    int rc = clv_atomic_write(path, buf, off, err);
    free(buf);
    return rc;
}

int clv_run_record_write(const clv_run_record *r, const clv_config *cfg, const char *dir, clv_err *err)
{
    /* results.csv first, run.json last: a resume trusts run.json, and a kill
     * between the two then leaves results.csv ahead (made again when the task
     * is), never behind a run.json that records the task as learned */
    if (clv_run_record_write_results(r, cfg, dir, err))
        return -1;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", "clvit-run-1");
    cJSON_AddStringToObject(root, "clvit_version", CLV_VERSION);
    cJSON_AddStringToObject(root, "status", r->status);
    cJSON_AddStringToObject(root, "method", cfg->method);
    cJSON_AddStringToObject(root, "model", cfg->model);
    cJSON_AddStringToObject(root, "dataset", cfg->data);
    if (clv_data_manifest_add(root, cfg->data_root, err)) { /* the generated data it saw, if any */
        cJSON_Delete(root);
        return -1;
    }
    cJSON_AddNumberToObject(root, "n_tasks", r->n_tasks);
    cJSON_AddNumberToObject(root, "tasks_completed", clv_run_record_last_row(r) + 1);
    cJSON *m = cJSON_AddArrayToObject(root, "accuracy_matrix");
    for (int i = 0; i < r->n_tasks; i++) {
        cJSON *row = cJSON_CreateArray();
        for (int j = 0; j < r->n_tasks; j++)
            cJSON_AddItemToArray(row, number_or_null(clv_run_record_acc(r, i, j)));
        cJSON_AddItemToArray(m, row);
    }
    cJSON_AddItemToObject(root, "average_accuracy", number_or_null(clv_run_record_average_accuracy(r)));
    cJSON_AddItemToObject(root, "forgetting", number_or_null(clv_run_record_forgetting(r)));
    cJSON_AddNumberToObject(root, "base_bits", (double)r->base_bits);
    cJSON_AddItemToObject(root, "storage", storage_json(r));
    cJSON *tasks = cJSON_AddArrayToObject(root, "tasks");
    double total_seconds = 0;
    for (int t = 0; t < r->n_tasks; t++) {
        const clv_task_record *tr = &r->tasks[t];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "task", t + 1);
        cJSON_AddItemToObject(o, "classes", cJSON_CreateIntArray(tr->classes, tr->n_classes));
        if (tr->class_names)
            cJSON_AddItemToObject(o, "class_names",
                                  cJSON_CreateStringArray((const char *const *)tr->class_names, tr->n_classes));
        cJSON_AddNumberToObject(o, "train_images", (double)tr->train_images);
        cJSON_AddNumberToObject(o, "test_images", (double)tr->test_images);
        cJSON_AddBoolToObject(o, "done", tr->done);
        cJSON_AddNumberToObject(o, "stored_bits", (double)tr->stored_bits);
        cJSON_AddNumberToObject(o, "head_bits", (double)tr->head_bits);
        cJSON_AddNumberToObject(o, "head_params", (double)(tr->head_bits / 32)); /* the head's floats */
        cJSON_AddNumberToObject(o, "trainable_params", (double)tr->trainable_params);
        task_storage_json(o, tr);
        cJSON_AddNumberToObject(o, "seconds", tr->seconds);
        run_checks_task_to_json(o, tr);
        total_seconds += tr->seconds;
        cJSON_AddItemToArray(tasks, o);
    }
    cJSON_AddNumberToObject(root, "seconds", total_seconds);
    cJSON_AddStringToObject(root, "gemm", r->gemm);
    /* how rectifications see a convolution (--conv-view; masks are elementwise, any view is theirs) */
    const int rkr_view = cfg->conv_view == CLV_CONV_VIEW_RKR && (!strcmp(cfg->method, "rkr") || !strcmp(cfg->method, "maskrkr"));
    cJSON_AddStringToObject(root, "conv_weight_matrix",
                            rkr_view ? "(Cin k) x (Cout k), RKR's view: W[o][i][a][b] at row i k + a, column o k + b"
                                     : "Cout x (Cin kh kw), PyTorch's weight order");
    if (r->has_rank_caps) {
        cJSON *caps = cJSON_AddArrayToObject(root, "rank_caps");
        for (int i = 0; i < r->n_rank_caps; i++) {
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "layer", r->rank_caps[i].layer);
            cJSON_AddNumberToObject(c, "rank", r->rank_caps[i].rank);
            cJSON_AddItemToArray(caps, c);
        }
    }
    cJSON_AddNumberToObject(root, "threads", r->threads);
    run_checks_run_to_json(root, r);
    cJSON_AddItemToObject(root, "config", config_json(cfg));
    cJSON *cmds = cJSON_AddArrayToObject(root, "commands");
    for (int i = 0; i < r->n_commands; i++)
        cJSON_AddItemToArray(cmds, cJSON_CreateString(r->commands[i]));

    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return clv_errf(err, "out of memory");
    char path[CLV_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/run.json", dir);
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the terminator: written by length */
    int rc = clv_atomic_write(path, text, len + 1, err);
    free(text);
    return rc;
}

static char *read_text(const char *path, clv_err *err)
{
    FILE *f = clv_input_fopen(path, err);
    if (!f) {
        if (errno == ENOENT)
            clv_errf(err, "%s: cannot open (no run here?)", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (64L << 20)) {
        fclose(f);
        clv_errf(err, "%s: unreasonable size", path);
        return NULL;
    }
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        clv_errf(err, "%s: read failed", path);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    return buf;
}

/* storage_bits (+ storage_elements, one_time_task) of one task; sets *legacy when
 * the newer keys are missing. */
/* Largest count run.json holds: integers up to 2^53 are exact in a double. */
#define JSON_MAX_COUNT 9.0e15

/* A number of run.json that becomes an integer: it must be one, within
 * [lo, hi]; converting anything else (1e30, -1e300) to an integer type is
 * undefined behaviour. Returns 0 and sets *out, or -1. */
static int json_integer(const cJSON *v, double lo, double hi, int64_t *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) || v->valuedouble != floor(v->valuedouble))
        return -1;
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int read_task_storage(const cJSON *o, clv_task_record *tr, int *legacy)
{
    const cJSON *sb = cJSON_GetObjectItemCaseSensitive(o, "storage_bits"), *kv;
    const cJSON *se = cJSON_GetObjectItemCaseSensitive(o, "storage_elements");
    const cJSON *ot = cJSON_GetObjectItemCaseSensitive(o, "one_time_task");
    int have_elements = cJSON_IsObject(se);
    cJSON_ArrayForEach(kv, sb)
    {
        if (!cJSON_IsNumber(kv) || !kv->string)
            continue;
        const cJSON *e = have_elements ? cJSON_GetObjectItemCaseSensitive(se, kv->string) : NULL;
        int64_t bits, elements = 0;
        if (json_integer(kv, 0, JSON_MAX_COUNT, &bits) ||
            (cJSON_IsNumber(e) && json_integer(e, 0, JSON_MAX_COUNT, &elements)) ||
            clv_storage_set(&tr->storage, kv->string, bits, elements))
            return -1;
    }
    if (!have_elements)
        clv_storage_infer_elements(&tr->storage);
    if (!cJSON_IsObject(sb) && tr->stored_bits > 0) { /* older still: only the totals */
        int64_t rest = tr->stored_bits - tr->head_bits;
        if (clv_storage_set(&tr->storage, "head", tr->head_bits, tr->head_bits / 32) ||
            (rest > 0 && clv_storage_set(&tr->storage, "unrecorded", rest, 0)))
            return -1;
    }
    tr->storage.one_time_task = cJSON_IsTrue(ot);
    if (!cJSON_IsBool(ot))
        *legacy = 1;
    return 0;
}

int clv_run_record_put(const char *dir, const char *key, const char *json, clv_err *err)
{
    char path[CLV_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/run.json", dir);
    char *text = read_text(path, err);
    if (!text)
        return -1;
    cJSON *root = cJSON_Parse(text), *value = cJSON_Parse(json);
    free(text);
    int rc = -1;
    if (!root || !cJSON_IsObject(root) || !value) {
        clv_errf(err, "%s: %s", path, !root || !cJSON_IsObject(root) ? "not a JSON object" : "bad value to add");
        goto done;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(root, key);
    cJSON_AddItemToObject(root, key, value);
    value = NULL;
    char *out = cJSON_Print(root);
    if (!out) {
        clv_errf(err, "out of memory");
        goto done;
    }
    size_t len = strlen(out);
    out[len] = '\n'; /* replaces the terminator: written by length */
    rc = clv_atomic_write(path, out, len + 1, err);
    free(out);
done:
    cJSON_Delete(root);
    cJSON_Delete(value);
    return rc;
}

int clv_run_record_read(clv_run_record *r, clv_config *cfg, const char *dir, clv_err *err)
{
    char path[CLV_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/run.json", dir);
    char *text = read_text(path, err);
    if (!text)
        return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root)
        return clv_errf(err, "%s: not valid JSON", path);
    int rc = -1;
    memset(r, 0, sizeof *r);
    const cJSON *conf = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *mat = cJSON_GetObjectItemCaseSensitive(root, "accuracy_matrix");
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(root, "tasks");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
    if (!cJSON_IsObject(conf) || !cJSON_IsArray(mat) || !cJSON_IsArray(tasks) || !cJSON_IsString(status)) {
        clv_errf(err, "%s: missing config, accuracy_matrix, tasks or status", path);
        goto done;
    }
    clv_config_defaults(cfg);
    for (int i = 0; i < clv_config_settings_count(); i++) {
        const clv_setting *s = clv_config_setting(i);
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(conf, s->section);
        const cJSON *v = sec ? cJSON_GetObjectItemCaseSensitive(sec, s->key) : NULL;
        char num[64];
        const char *text = setting_text(v, num, sizeof num);
        if (!v) { /* a setting newer than the run: its default, or what runs before it ran with */
            if (s->unrecorded && clv_config_set(cfg, s, s->unrecorded, err)) {
                clv_err_prefix(err, "%s", path);
                goto done;
            }
            continue;
        }
        if (!text) {
            clv_errf(err, "%s: config %s.%s is neither a string, a number nor a boolean", path, s->section, s->key);
            goto done;
        }
        if (clv_config_set(cfg, s, text, err)) {
            clv_err_prefix(err, "%s", path);
            goto done;
        }
    }
    int T = cJSON_GetArraySize(mat);
    if (T < 1 || T != cfg->tasks || cJSON_GetArraySize(tasks) != T) {
        clv_errf(err, "%s: accuracy_matrix and tasks disagree with data.tasks", path);
        goto done;
    }
    if (clv_run_record_init(r, T, err))
        goto done;
    snprintf(r->status, sizeof r->status, "%s", status->valuestring);
    for (int i = 0; i < T; i++) {
        const cJSON *row = cJSON_GetArrayItem(mat, i);
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != T) {
            clv_errf(err, "%s: accuracy_matrix row %d is not %d long", path, i + 1, T);
            goto done;
        }
        for (int j = 0; j < T; j++) {
            const cJSON *v = cJSON_GetArrayItem(row, j);
            r->acc[i * T + j] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        }
    }
    const cJSON *bb = cJSON_GetObjectItemCaseSensitive(root, "base_bits");
    if (bb && json_integer(bb, 0, JSON_MAX_COUNT, &r->base_bits)) {
        clv_errf(err, "%s: base_bits is not a count of bits", path);
        goto done;
    }
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(root, "rank_caps"), *cap;
    r->has_rank_caps = cJSON_IsArray(caps);
    if (r->has_rank_caps && cJSON_GetArraySize(caps) > 0) {
        if (!(r->rank_caps = calloc((size_t)cJSON_GetArraySize(caps), sizeof *r->rank_caps))) {
            clv_errf(err, "out of memory");
            goto done;
        }
        cJSON_ArrayForEach(cap, caps)
        {
            const cJSON *l = cJSON_GetObjectItemCaseSensitive(cap, "layer"), *k = cJSON_GetObjectItemCaseSensitive(cap, "rank");
            int64_t rank;
            if (!cJSON_IsString(l) || json_integer(k, 0, INT_MAX, &rank)) {
                clv_errf(err, "%s: rank_caps entries need a layer and a rank (a whole number)", path);
                goto done;
            }
            clv_rank_cap *c = &r->rank_caps[r->n_rank_caps++];
            snprintf(c->layer, sizeof c->layer, "%s", l->valuestring);
            c->rank = (int)rank;
        }
    }
    int legacy = 0; /* written before elements and one-time tasks were recorded */
    for (int t = 0; t < T; t++) {
        const cJSON *o = cJSON_GetArrayItem(tasks, t);
        clv_task_record *tr = &r->tasks[t];
        const cJSON *cl = cJSON_GetObjectItemCaseSensitive(o, "classes");
        if (!cJSON_IsArray(cl)) {
            clv_errf(err, "%s: task %d has no classes", path, t + 1);
            goto done;
        }
        tr->n_classes = cJSON_GetArraySize(cl);
        tr->classes = calloc((size_t)tr->n_classes + 1, sizeof *tr->classes);
        if (!tr->classes) {
            clv_errf(err, "out of memory");
            goto done;
        }
        for (int k = 0; k < tr->n_classes; k++) {
            int64_t c;
            if (json_integer(cJSON_GetArrayItem(cl, k), 0, INT32_MAX, &c)) {
                clv_errf(err, "%s: task %d: class %d is not a class id (a whole number >= 0)", path, t + 1, k + 1);
                goto done;
            }
            tr->classes[k] = (int32_t)c;
        }
        const cJSON *names = cJSON_GetObjectItemCaseSensitive(o, "class_names"); /* absent before they were kept */
        if (names && (!cJSON_IsArray(names) || cJSON_GetArraySize(names) != tr->n_classes)) {
            clv_errf(err, "%s: task %d: class_names is not an array of %d names", path, t + 1, tr->n_classes);
            goto done;
        }
        if (names) {
            if (!(tr->class_names = calloc((size_t)tr->n_classes + 1, sizeof *tr->class_names))) {
                clv_errf(err, "out of memory");
                goto done;
            }
            for (int k = 0; k < tr->n_classes; k++) {
                const cJSON *nm = cJSON_GetArrayItem(names, k);
                if (!cJSON_IsString(nm) || !(tr->class_names[k] = strdup(nm->valuestring))) {
                    clv_errf(err, "%s: task %d: class_names[%d] is not a string", path, t + 1, k);
                    goto done;
                }
            }
        }
        /* counts: absent in older files (0), else whole numbers in range */
        static const char *const count_keys[] = {"train_images", "test_images", "stored_bits", "head_bits",
                                                 "trainable_params"};
        int64_t *const counts[] = {&tr->train_images, &tr->test_images, &tr->stored_bits, &tr->head_bits,
                                   &tr->trainable_params};
        for (int k = 0; k < 5; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, count_keys[k]);
            *counts[k] = 0;
            if (v && json_integer(v, 0, JSON_MAX_COUNT, counts[k])) {
                clv_errf(err, "%s: task %d: %s is not a count (a whole number >= 0)", path, t + 1, count_keys[k]);
                goto done;
            }
        }
        const cJSON *secs = cJSON_GetObjectItemCaseSensitive(o, "seconds");
        tr->seconds = cJSON_IsNumber(secs) ? secs->valuedouble : 0;
        if (read_task_storage(o, tr, &legacy)) {
            clv_errf(err,
                     "%s: task %d: storage_bits has too many kinds, a kind name too long or a size that is not a "
                     "whole number >= 0",
                     path, t + 1);
            goto done;
        }
        tr->done = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "done"));
        if (run_checks_task_from_json(o, tr, path, t, err))
            goto done;
    }
    if (legacy)
        clv_storage_infer_one_time_tasks(r, cfg->method);
    if (run_checks_run_from_json(root, r, path, err))
        goto done;
    const cJSON *cmds = cJSON_GetObjectItemCaseSensitive(root, "commands"), *cmd; /* absent before they were kept */
    cJSON_ArrayForEach(cmd, cmds)
    {
        if (cJSON_IsString(cmd) && add_command_text(r, cmd->valuestring)) {
            clv_errf(err, "out of memory");
            goto done;
        }
    }
    rc = 0;
done:
    cJSON_Delete(root);
    if (rc)
        clv_run_record_free(r);
    return rc;
}

void clv_run_record_print(const clv_run_record *r, const clv_config *cfg, FILE *out)
{
    fprintf(out, "accuracy (%%) of %s on %s, %s: row = after learning task i, column = task j\n", cfg->method,
            cfg->data, cfg->model);
    fprintf(out, "after \\ task");
    for (int j = 0; j < r->n_tasks; j++)
        fprintf(out, " %7d", j + 1);
    fprintf(out, "\n");
    for (int i = 0; i < r->n_tasks; i++) {
        fprintf(out, "%12d", i + 1);
        for (int j = 0; j < r->n_tasks; j++) {
            double a = clv_run_record_acc(r, i, j);
            if (isnan(a))
                fprintf(out, " %7s", j > i ? "" : "-");
            else
                fprintf(out, " %7.2f", a);
        }
        fprintf(out, "\n");
    }
    fprintf(out, "average accuracy %.2f%%, forgetting %.2f points\n", clv_run_record_average_accuracy(r),
            clv_run_record_forgetting(r));
}
