/* One run as `clvit report` sees it: its record, its storage split, and what
 * other parts of clvit add to run.json (mask densities, warnings), read
 * directly from the file so that a run without them still reports. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clvit/report.h"
#include "clvit/input_file.h"

int clv_report_is_run_dir(const char *path)
{
    struct stat st;
    char p[CLV_PATH_LEN + 32];
    snprintf(p, sizeof p, "%s/run.json", path);
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static char *slurp(const char *path)
{
    FILE *f = clv_input_fopen(path, NULL);
    if (!f)
        return NULL;
    char *text = clv_read_stream(f, NULL);
    fclose(f);
    return text;
}

static int add_warning(clv_report_run *run, const char *prefix, const char *text)
{
    if (clv_grow(&run->warnings, &run->cap_warnings, (size_t)run->n_warnings + 1))
        return -1;
    char **w = run->warnings;
    size_t len = strlen(prefix) + strlen(text) + 1;
    if (!(w[run->n_warnings] = malloc(len)))
        return -1;
    snprintf(w[run->n_warnings], len, "%s%s", prefix, text);
    run->n_warnings++;
    return 0;
}

/* tasks[i].masks.zero_share (or zero_bits / bits) and the warnings. */
static int read_extras(clv_report_run *run, clv_err *err)
{
    char path[CLV_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/run.json", run->dir);
    char *text = slurp(path);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!root)
        return clv_errf(err, "%s: cannot be read again", path);
    int rc = -1;
    const cJSON *w, *tasks = cJSON_GetObjectItemCaseSensitive(root, "tasks");
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(root, "warnings"))
    {
        if (cJSON_IsString(w) && add_warning(run, "", w->valuestring))
            goto oom;
    }
    double share_sum = 0;
    int shares = 0;
    for (int t = 0; t < run->rec.n_tasks; t++) {
        const cJSON *o = cJSON_GetArrayItem(tasks, t);
        if (!run->rec.tasks[t].done)
            continue;
        char prefix[32];
        snprintf(prefix, sizeof prefix, "task %d: ", t + 1);
        cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(o, "warnings"))
        {
            if (!cJSON_IsString(w))
                continue;
            if (add_warning(run, prefix, w->valuestring))
                goto oom;
            run->task_warnings++;
        }
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "masks");
        const cJSON *zs = cJSON_GetObjectItemCaseSensitive(m, "zero_share");
        const cJSON *zb = cJSON_GetObjectItemCaseSensitive(m, "zero_bits");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(m, "bits");
        if (cJSON_IsNumber(zs)) {
            share_sum += zs->valuedouble;
            shares++;
        } else if (cJSON_IsNumber(zb) && cJSON_IsNumber(b) && b->valuedouble > 0) {
            share_sum += zb->valuedouble / b->valuedouble;
            shares++;
        }
    }
    run->zero_share = shares ? share_sum / shares : NAN;
    const cJSON *ta = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "task_agnostic"),
                                                       "accuracy");
    run->agnostic_accuracy = cJSON_IsNumber(ta) ? ta->valuedouble : NAN;
    rc = 0;
    goto done;
oom:
    clv_errf(err, "out of memory");
done:
    cJSON_Delete(root);
    return rc;
}

int clv_report_run_read(clv_report_run *run, const char *dir, clv_err *err)
{
    memset(run, 0, sizeof *run);
    snprintf(run->dir, sizeof run->dir, "%s", dir);
    run->zero_share = NAN;
    run->agnostic_accuracy = NAN;
    if (clv_run_record_read(&run->rec, &run->cfg, dir, err))
        return -1;
    clv_storage_summarize(&run->rec, &run->storage);
    if (read_extras(run, err)) {
        clv_report_run_free(run);
        return -1;
    }
    return 0;
}

void clv_report_run_free(clv_report_run *run)
{
    clv_run_record_free(&run->rec);
    for (int i = 0; i < run->n_warnings; i++)
        free(run->warnings[i]);
    free(run->warnings);
    run->warnings = NULL;
    run->n_warnings = 0;
    run->cap_warnings = 0;
}

double clv_report_bits_per_task(const clv_report_run *run)
{
    double sum = 0;
    int n = 0;
    for (int t = 0; t < run->rec.n_tasks; t++)
        if (run->rec.tasks[t].done) {
            sum += (double)run->rec.tasks[t].stored_bits;
            n++;
        }
    return n ? sum / n : NAN;
}

int clv_report_uses_rank(const char *method) { return !strcmp(method, "rkr") || !strcmp(method, "maskrkr"); }
