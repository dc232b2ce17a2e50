/* `clvit report --json`: the group table and the per-run rows as JSON, for
 * tools that build documents from runs (keys in docs/methods.md). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/report.h"

static cJSON *number_or_null(double v) { return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v); }

static cJSON *stat_json(clv_report_stat s, double scale)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "mean", number_or_null(s.mean * scale));
    cJSON_AddItemToObject(o, "sd", number_or_null(s.sd * scale));
    cJSON_AddNumberToObject(o, "n", s.n);
    return o;
}

static void identity_json(cJSON *o, const clv_report_run *r)
{
    cJSON_AddStringToObject(o, "method", r->cfg.method);
    cJSON_AddStringToObject(o, "model", r->cfg.model);
    cJSON_AddStringToObject(o, "dataset", r->cfg.data);
    cJSON_AddItemToObject(o, "rank", clv_report_uses_rank(r->cfg.method) ? cJSON_CreateNumber(r->cfg.rank)
                                                                          : cJSON_CreateNull());
}

static void warnings_json(cJSON *arr, const clv_report_run *r, int with_dir)
{
    for (int w = 0; w < r->n_warnings; w++) {
        char buf[CLV_PATH_LEN + 512];
        if (with_dir)
            snprintf(buf, sizeof buf, "%s: %s", r->dir, r->warnings[w]);
        else
            snprintf(buf, sizeof buf, "%s", r->warnings[w]);
        cJSON_AddItemToArray(arr, cJSON_CreateString(buf));
    }
}

static cJSON *group_json(const clv_report_run *runs, const clv_report_group *groups, int ng, int k)
{
    const clv_report_group *g = &groups[k];
    const clv_report_run *first = &runs[g->runs[0]];
    cJSON *o = cJSON_CreateObject();
    char label[768];
    clv_report_group_label(runs, groups, ng, k, label, sizeof label);
    cJSON_AddStringToObject(o, "label", label);
    identity_json(o, first);
    cJSON *set = cJSON_AddObjectToObject(o, "settings");
    for (int i = 0; i < g->n_settings; i++) {
        const clv_setting *s = clv_config_setting(g->setting[i]);
        char key[128], v[CLV_PATH_LEN];
        snprintf(key, sizeof key, "%s.%s", s->section, s->key);
        clv_config_format(&first->cfg, s, v, sizeof v);
        cJSON_AddStringToObject(set, key, v);
    }
    cJSON_AddNumberToObject(o, "n_runs", g->n_runs);
    cJSON *seeds = cJSON_AddArrayToObject(o, "seeds"), *dirs = cJSON_AddArrayToObject(o, "runs");
    cJSON *warn = cJSON_AddArrayToObject(o, "warnings");
    for (int i = 0; i < g->n_runs; i++) {
        const clv_report_run *r = &runs[g->runs[i]];
        cJSON_AddItemToArray(seeds, cJSON_CreateNumber((double)r->cfg.seed));
        cJSON_AddItemToArray(dirs, cJSON_CreateString(r->dir));
        warnings_json(warn, r, 1);
    }
    cJSON_AddNumberToObject(o, "tasks_done", g->tasks_done);
    cJSON_AddNumberToObject(o, "n_tasks", first->rec.n_tasks);
    cJSON_AddItemToObject(o, "average_accuracy", stat_json(g->accuracy, 1));
    cJSON_AddItemToObject(o, "forgetting", stat_json(g->forgetting, 1));
    cJSON_AddItemToObject(o, "marginal_bits_per_task", stat_json(g->marginal_bits, 1));
    cJSON_AddItemToObject(o, "marginal_kib_per_task", stat_json(g->marginal_bits, 1 / 8192.0));
    cJSON_AddItemToObject(o, "marginal_elements_per_task", stat_json(g->marginal_elements, 1));
    cJSON_AddItemToObject(o, "one_time_bits", stat_json(g->one_time_bits, 1));
    cJSON_AddItemToObject(o, "one_time_elements", stat_json(g->one_time_elements, 1));
    cJSON_AddItemToObject(o, "head_bits_per_task", stat_json(g->head_bits, 1));
    cJSON_AddItemToObject(o, "head_elements_per_task", stat_json(g->head_elements, 1));
    cJSON_AddItemToObject(o, "zero_mask_share", stat_json(g->zero_share, 1));
    cJSON_AddItemToObject(o, "task_agnostic_accuracy", stat_json(g->agnostic_accuracy, 1));
    cJSON_AddNumberToObject(o, "task_warnings", g->task_warnings);
    cJSON_AddBoolToObject(o, "pareto", g->pareto);
    return o;
}

static cJSON *run_json(const clv_report_run *r, int group)
{
    const clv_storage_summary *s = &r->storage;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dir", r->dir);
    cJSON_AddNumberToObject(o, "group", group);
    identity_json(o, r);
    cJSON_AddNumberToObject(o, "seed", (double)r->cfg.seed);
    cJSON_AddStringToObject(o, "status", r->rec.status);
    cJSON_AddNumberToObject(o, "tasks_done", clv_run_record_last_row(&r->rec) + 1);
    cJSON_AddNumberToObject(o, "n_tasks", r->rec.n_tasks);
    cJSON_AddItemToObject(o, "average_accuracy", number_or_null(clv_run_record_average_accuracy(&r->rec)));
    cJSON_AddItemToObject(o, "forgetting", number_or_null(clv_run_record_forgetting(&r->rec)));
    cJSON_AddItemToObject(o, "marginal_bits_per_task", number_or_null(s->marginal_bits_per_task));
    cJSON_AddItemToObject(o, "marginal_kib_per_task", number_or_null(s->marginal_bits_per_task / 8192.0));
    cJSON_AddItemToObject(o, "marginal_elements_per_task", number_or_null(s->marginal_elements_per_task));
    cJSON *mt = cJSON_AddArrayToObject(o, "marginal_tasks");
    for (int t = 0; t < r->rec.n_tasks; t++)
        if (clv_storage_task_is_marginal(&r->rec.tasks[t]))
            cJSON_AddItemToArray(mt, cJSON_CreateNumber(t + 1));
    cJSON_AddNumberToObject(o, "one_time_bits", (double)s->one_time_bits);
    cJSON_AddNumberToObject(o, "one_time_elements", (double)s->one_time_elements);
    cJSON *ot = cJSON_AddObjectToObject(o, "one_time");
    for (int k = 0; k < s->one_time.n; k++)
        cJSON_AddNumberToObject(ot, s->one_time.item[k].kind, (double)s->one_time.item[k].bits);
    cJSON_AddItemToObject(o, "head_bits_per_task", number_or_null(s->head_bits_per_task));
    cJSON_AddItemToObject(o, "head_elements_per_task", number_or_null(s->head_elements_per_task));
    cJSON_AddNumberToObject(o, "total_bits", (double)s->total_bits);
    cJSON_AddItemToObject(o, "zero_mask_share", number_or_null(r->zero_share));
    cJSON_AddItemToObject(o, "task_agnostic_accuracy", number_or_null(r->agnostic_accuracy));
    cJSON_AddNumberToObject(o, "task_warnings", r->task_warnings);
    warnings_json(cJSON_AddArrayToObject(o, "warnings"), r, 0);
    return o;
}

int clv_report_json(const clv_report_run *runs, int n, FILE *out, clv_err *err)
{
    clv_report_group *g = NULL;
    int ng = 0;
    if (clv_report_group_runs(runs, n, &g, &ng, err))
        return -1;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", "clvit-report-1");
    cJSON *groups = cJSON_AddArrayToObject(root, "groups"), *rows = cJSON_AddArrayToObject(root, "runs");
    for (int k = 0; k < ng; k++)
        cJSON_AddItemToArray(groups, group_json(runs, g, ng, k));
    for (int i = 0; i < n; i++) {
        int group = -1;
        for (int k = 0; k < ng && group < 0; k++)
            for (int j = 0; j < g[k].n_runs; j++)
                if (g[k].runs[j] == i)
                    group = k;
        cJSON_AddItemToArray(rows, run_json(&runs[i], group));
    }
    clv_report_groups_free(g, ng);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return clv_errf(err, "out of memory");
    fprintf(out, "%s\n", text);
    free(text);
    return 0;
}
