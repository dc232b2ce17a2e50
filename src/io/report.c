/* The comparison tables of `clvit report`: per group or per run, Markdown or CSV. */
#include "clvit/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double mib(double bits) { return bits / 8.0 / (1024.0 * 1024.0); }
static double kib(double bits) { return bits / 8.0 / 1024.0; }

/* "-" for NAN, else the value with the given decimals. */
static const char *num(char *buf, size_t len, double v, int decimals)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.*f", decimals, v);
    return buf;
}

/* "mean ± sd" (sd shown when there are two runs or more; for storage only when it is not 0). */
static const char *stat_text(char *buf, size_t len, clv_report_stat s, int decimals, double scale, int sd_if_zero)
{
    if (isnan(s.mean)) {
        snprintf(buf, len, "-");
        return buf;
    }
    if (s.n >= 2 && (sd_if_zero || s.sd > 0))
        snprintf(buf, len, "%.*f ± %.*f", decimals, s.mean * scale, decimals, s.sd * scale);
    else
        snprintf(buf, len, "%.*f", decimals, s.mean * scale);
    return buf;
}

static void matrix_markdown(const clv_report_run *r, FILE *out)
{
    int T = r->rec.n_tasks;
    fprintf(out, "\n%s (%s, %s): accuracy (%%) after learning task i (rows) on task j (columns)\n\n|", r->dir,
            r->cfg.method, r->cfg.model);
    fprintf(out, " after \\ task |");
    for (int j = 0; j < T; j++)
        fprintf(out, " %d |", j + 1);
    fprintf(out, "\n| --- |");
    for (int j = 0; j < T; j++)
        fprintf(out, " ---: |");
    fprintf(out, "\n");
    for (int i = 0; i < T; i++) {
        fprintf(out, "| %d |", i + 1);
        for (int j = 0; j < T; j++) {
            char b[32];
            num(b, sizeof b, clv_run_record_acc(&r->rec, i, j), 2);
            fprintf(out, " %s |", j > i ? "" : b);
        }
        fprintf(out, "\n");
    }
}

static void warnings_markdown(const clv_report_run *runs, int n, FILE *out)
{
    int any = 0;
    for (int i = 0; i < n; i++)
        for (int w = 0; w < runs[i].n_warnings; w++) {
            if (!any++)
                fprintf(out, "\nwarnings:\n\n");
            fprintf(out, "- %s: %s\n", runs[i].dir, runs[i].warnings[w]);
        }
}

static void rank_text(char *buf, size_t len, const clv_config *c)
{
    if (clv_report_uses_rank(c->method))
        snprintf(buf, len, "%d", c->rank);
    else
        snprintf(buf, len, "-");
}

/* Average accuracy / marginal KiB per task, method x model, where one group fills the cell. */
static void grid_markdown(const clv_report_run *runs, const clv_report_group *g, int ng, FILE *out)
{
    const char **methods = calloc((size_t)ng, sizeof *methods), **models = calloc((size_t)ng, sizeof *models);
    int nm = 0, nb = 0;
    if (!methods || !models)
        goto done;
    for (int k = 0; k < ng; k++) {
        const clv_config *c = &runs[g[k].runs[0]].cfg;
        int seen_m = 0, seen_b = 0;
        for (int j = 0; j < nm; j++)
            seen_m |= !strcmp(methods[j], c->method);
        for (int j = 0; j < nb; j++)
            seen_b |= !strcmp(models[j], c->model);
        if (!seen_m)
            methods[nm++] = c->method;
        if (!seen_b)
            models[nb++] = c->model;
    }
    if (nb < 2)
        goto done;
    fprintf(out, "\naverage accuracy (%%) / marginal KiB per task, method x backbone\n\n| method |");
    for (int b = 0; b < nb; b++)
        fprintf(out, " %s |", models[b]);
    fprintf(out, "\n| --- |");
    for (int b = 0; b < nb; b++)
        fprintf(out, " ---: |");
    fprintf(out, "\n");
    for (int m = 0; m < nm; m++) {
        fprintf(out, "| %s |", methods[m]);
        for (int b = 0; b < nb; b++) {
            int hits = 0, hit = -1;
            for (int k = 0; k < ng; k++) {
                const clv_config *c = &runs[g[k].runs[0]].cfg;
                if (!strcmp(c->method, methods[m]) && !strcmp(c->model, models[b]))
                    hits++, hit = k;
            }
            char a[64], s[64];
            if (!hits)
                fprintf(out, " |");
            else if (hits > 1)
                fprintf(out, " %d groups (above) |", hits);
            else
                fprintf(out, " %s / %s |", stat_text(a, sizeof a, g[hit].accuracy, 2, 1, 1),
                        num(s, sizeof s, kib(g[hit].marginal_bits.mean), 2));
        }
        fprintf(out, "\n");
    }
done:
    free(methods);
    free(models);
}

/* Groups by average accuracy, best first (unfinished, NAN, last; ties in order of appearance). */
static int *accuracy_order(const clv_report_group *g, int ng)
{
    int *order = malloc(((size_t)ng + 1) * sizeof *order);
    if (!order)
        return NULL;
    for (int k = 0; k < ng; k++) {
        int j = k;
        for (; j > 0; j--) {
            double a = g[order[j - 1]].accuracy.mean, b = g[k].accuracy.mean;
            if (!(isnan(a) ? !isnan(b) : !isnan(b) && b > a))
                break;
            order[j] = order[j - 1];
        }
        order[j] = k;
    }
    return order;
}

/* The group table comes last, after the warnings and the method x backbone
 * table, so that it is what a terminal shows when `make run` ends; storage
 * in KiB (bits in --csv and --json) keeps it narrow. */
void clv_report_markdown(const clv_report_run *runs, int n, FILE *out)
{
    clv_report_group *g = NULL;
    int ng = 0;
    clv_err err = {{0}};
    if (clv_report_group_runs(runs, n, &g, &ng, &err)) {
        fprintf(out, "(no table: %s)\n", err.msg);
        return;
    }
    int *order = accuracy_order(g, ng);
    if (!order) {
        fprintf(out, "(no table: out of memory)\n");
        clv_report_groups_free(g, ng);
        return;
    }
    warnings_markdown(runs, n, out);
    grid_markdown(runs, g, ng, out);
    int with_settings = 0, with_rank = 0, one_model = 1, one_data = 1, with_agnostic = 0;
    for (int k = 0; k < ng; k++) {
        const clv_config *c = &runs[g[k].runs[0]].cfg;
        with_settings |= g[k].settings[0] != 0;
        with_agnostic |= g[k].agnostic_accuracy.n > 0;
        with_rank |= clv_report_uses_rank(c->method);
        one_model &= !strcmp(c->model, runs[0].cfg.model);
        one_data &= !strcmp(c->data, runs[0].cfg.data);
    }
    if (ng)
        fprintf(out, "\n%d run%s%s%s%s%s, best average accuracy first; storage in KiB: marginal per task without "
                     "heads, one-time, heads per task%s (docs/methods.md)\n\n",
                n, n == 1 ? "" : "s", one_data ? " on " : "", one_data ? runs[0].cfg.data : "",
                one_model ? " with " : "", one_model ? runs[0].cfg.model : "",
                with_agnostic ? "; no task id: task and class right without the task id (eval --task-agnostic)" : "");
    fprintf(out, "| method |%s%s%s runs | tasks | acc (%%) |%s forgetting | KiB/task | one-time | heads | "
                 "mask 0s (%%) | warnings |\n| --- |%s%s%s ---: | ---: | ---: |%s ---: | ---: | ---: | ---: | ---: | ---: |\n",
            one_model ? "" : " model |", with_rank ? " K |" : "", with_settings ? " settings |" : "",
            with_agnostic ? " no task id (%) |" : "", one_model ? "" : " --- |", with_rank ? " ---: |" : "",
            with_settings ? " --- |" : "", with_agnostic ? " ---: |" : "");
    for (int o = 0; o < ng; o++) {
        const int k = order[o];
        const clv_report_run *r = &runs[g[k].runs[0]];
        char rank[16], acc[64], fg[64], mk[64], ot[64], hd[64], zs[64], ag[64];
        rank_text(rank, sizeof rank, &r->cfg);
        fprintf(out, "| %s |", r->cfg.method);
        if (!one_model)
            fprintf(out, " %s |", r->cfg.model);
        if (with_rank)
            fprintf(out, " %s |", rank);
        if (with_settings)
            fprintf(out, " %s |", g[k].settings);
        fprintf(out, " %d | %d/%d | %s |", g[k].n_runs, g[k].tasks_done, r->rec.n_tasks,
                stat_text(acc, sizeof acc, g[k].accuracy, 2, 1, 1));
        if (with_agnostic)
            fprintf(out, " %s |", stat_text(ag, sizeof ag, g[k].agnostic_accuracy, 2, 1, 1));
        fprintf(out, " %s | %s | %s | %s | %s | %d |\n",
                stat_text(fg, sizeof fg, g[k].forgetting, 2, 1, 1),
                stat_text(mk, sizeof mk, g[k].marginal_bits, 2, 1 / 8192.0, 0),
                stat_text(ot, sizeof ot, g[k].one_time_bits, 2, 1 / 8192.0, 0),
                stat_text(hd, sizeof hd, g[k].head_bits, 2, 1 / 8192.0, 0),
                stat_text(zs, sizeof zs, g[k].zero_share, 2, 100, 1), g[k].task_warnings);
    }
    free(order);
    clv_report_groups_free(g, ng);
}

void clv_report_markdown_per_run(const clv_report_run *runs, int n, FILE *out)
{
    fprintf(out, "| run | method | backbone | data | rank | seed | tasks | avg acc (%%) | forgetting | "
                 "marginal/task (bits) | marginal/task (KiB) | one-time (bits) | heads/task (bits) | total (MiB) | "
                 "zero mask bits (%%) | task warnings |\n"
                 "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
                 "---: | ---: |\n");
    for (int i = 0; i < n; i++) {
        const clv_report_run *r = &runs[i];
        const clv_storage_summary *s = &r->storage;
        char rank[16], acc[32], fg[32], mb[32], mk[32], hd[32], zs[32];
        rank_text(rank, sizeof rank, &r->cfg);
        fprintf(out, "| %s | %s | %s | %s | %s | %llu | %d/%d | %s | %s | %s | %s | %lld | %s | %.4f | %s | %d |\n",
                r->dir, r->cfg.method, r->cfg.model, r->cfg.data, rank, (unsigned long long)r->cfg.seed,
                clv_run_record_last_row(&r->rec) + 1, r->rec.n_tasks,
                num(acc, sizeof acc, clv_run_record_average_accuracy(&r->rec), 2),
                num(fg, sizeof fg, clv_run_record_forgetting(&r->rec), 2), num(mb, sizeof mb, s->marginal_bits_per_task, 0),
                num(mk, sizeof mk, kib(s->marginal_bits_per_task), 2), (long long)s->one_time_bits,
                num(hd, sizeof hd, s->head_bits_per_task, 0), mib((double)s->total_bits),
                num(zs, sizeof zs, 100 * r->zero_share, 2), r->task_warnings);
    }
    warnings_markdown(runs, n, out);
    for (int i = 0; i < n; i++)
        matrix_markdown(&runs[i], out);
}

static void csv_num(FILE *out, double v, int decimals)
{
    if (!isnan(v))
        fprintf(out, "%.*f", decimals, v);
}

void clv_report_csv(const clv_report_run *runs, int n, FILE *out)
{
    fprintf(out, "run,method,model,data,tasks_done,n_tasks,average_accuracy,forgetting,bits_per_task,"
                 "params_per_task,mib_per_task,total_bits,base_bits,rank,seed,marginal_bits_per_task,"
                 "marginal_elements_per_task,one_time_bits,one_time_elements,head_bits_per_task,"
                 "head_elements_per_task,zero_mask_share,task_warnings\n");
    for (int i = 0; i < n; i++) {
        const clv_report_run *r = &runs[i];
        const clv_storage_summary *s = &r->storage;
        double per = clv_report_bits_per_task(r);
        fprintf(out, "\"%s\",%s,%s,%s,%d,%d,%.4f,%.4f,%.0f,%.1f,%.6f,%.0f,%lld,", r->dir, r->cfg.method, r->cfg.model,
                r->cfg.data, clv_run_record_last_row(&r->rec) + 1, r->rec.n_tasks,
                clv_run_record_average_accuracy(&r->rec), clv_run_record_forgetting(&r->rec), per, per / 32, mib(per),
                (double)(s->total_bits - s->base_bits), (long long)r->rec.base_bits);
        if (clv_report_uses_rank(r->cfg.method))
            fprintf(out, "%d", r->cfg.rank);
        fprintf(out, ",%llu,", (unsigned long long)r->cfg.seed);
        csv_num(out, s->marginal_bits_per_task, 1);
        fputc(',', out);
        csv_num(out, s->marginal_elements_per_task, 1);
        fprintf(out, ",%lld,%lld,", (long long)s->one_time_bits, (long long)s->one_time_elements);
        csv_num(out, s->head_bits_per_task, 1);
        fputc(',', out);
        csv_num(out, s->head_elements_per_task, 1);
        fputc(',', out);
        csv_num(out, r->zero_share, 6);
        fprintf(out, ",%d\n", r->task_warnings);
    }
}

static void csv_stat(FILE *out, clv_report_stat s, int decimals)
{
    fputc(',', out);
    csv_num(out, s.mean, decimals);
    fputc(',', out);
    csv_num(out, s.sd, decimals);
}

void clv_report_groups_csv(const clv_report_run *runs, int n, FILE *out)
{
    clv_report_group *g = NULL;
    int ng = 0;
    clv_err err = {{0}};
    if (clv_report_group_runs(runs, n, &g, &ng, &err))
        return;
    fprintf(out, "method,model,data,rank,settings,runs,tasks_done,n_tasks,average_accuracy,average_accuracy_sd,"
                 "forgetting,forgetting_sd,marginal_bits_per_task,marginal_bits_per_task_sd,"
                 "marginal_elements_per_task,marginal_elements_per_task_sd,one_time_bits,one_time_bits_sd,"
                 "head_bits_per_task,head_bits_per_task_sd,zero_mask_share,zero_mask_share_sd,task_warnings,pareto\n");
    for (int k = 0; k < ng; k++) {
        const clv_report_run *r = &runs[g[k].runs[0]];
        fprintf(out, "%s,%s,%s,", r->cfg.method, r->cfg.model, r->cfg.data);
        if (clv_report_uses_rank(r->cfg.method))
            fprintf(out, "%d", r->cfg.rank);
        fprintf(out, ",\"%s\",%d,%d,%d", g[k].settings, g[k].n_runs, g[k].tasks_done, r->rec.n_tasks);
        csv_stat(out, g[k].accuracy, 4);
        csv_stat(out, g[k].forgetting, 4);
        csv_stat(out, g[k].marginal_bits, 1);
        csv_stat(out, g[k].marginal_elements, 1);
        csv_stat(out, g[k].one_time_bits, 1);
        csv_stat(out, g[k].head_bits, 1);
        csv_stat(out, g[k].zero_share, 6);
        fprintf(out, ",%d,%d\n", g[k].task_warnings, g[k].pareto);
    }
    clv_report_groups_free(g, ng);
}
