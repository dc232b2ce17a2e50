/* The comparison table of `clvit report` (Markdown and CSV). */
#include "clvit/report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int clv_report_run_read(clv_report_run *run, const char *dir, clv_err *err)
{
    memset(run, 0, sizeof *run);
    snprintf(run->dir, sizeof run->dir, "%s", dir);
    return clv_run_record_read(&run->rec, &run->cfg, dir, err);
}

void clv_report_run_free(clv_report_run *run) { clv_run_record_free(&run->rec); }

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

static double total_bits(const clv_report_run *run)
{
    double sum = 0;
    for (int t = 0; t < run->rec.n_tasks; t++)
        if (run->rec.tasks[t].done)
            sum += (double)run->rec.tasks[t].stored_bits;
    return sum;
}

static double mib(double bits) { return bits / 8.0 / (1024.0 * 1024.0); }

static void fmt_pct(char *buf, size_t len, double v)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.2f", v);
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
            fmt_pct(b, sizeof b, clv_run_record_acc(&r->rec, i, j));
            fprintf(out, " %s |", j > i ? "" : b);
        }
        fprintf(out, "\n");
    }
}

/* Distinct values of a field, in order of first appearance. */
static int distinct(const clv_report_run *runs, int n, int use_model, const char **out)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        const char *v = use_model ? runs[i].cfg.model : runs[i].cfg.method;
        int seen = 0;
        for (int j = 0; j < k; j++)
            seen |= !strcmp(out[j], v);
        if (!seen)
            out[k++] = v;
    }
    return k;
}

static void grid_markdown(const clv_report_run *runs, int n, FILE *out)
{
    const char *methods[256], *models[256];
    if (n > 256)
        return;
    int nm = distinct(runs, n, 0, methods), nb = distinct(runs, n, 1, models);
    if (nb < 2)
        return;
    fprintf(out, "\naverage accuracy (%%) / added per task (MiB), method x backbone\n\n| method |");
    for (int b = 0; b < nb; b++)
        fprintf(out, " %s |", models[b]);
    fprintf(out, "\n| --- |");
    for (int b = 0; b < nb; b++)
        fprintf(out, " ---: |");
    fprintf(out, "\n");
    for (int m = 0; m < nm; m++) {
        fprintf(out, "| %s |", methods[m]);
        for (int b = 0; b < nb; b++) {
            const clv_report_run *hit = NULL;
            for (int i = 0; i < n; i++)
                if (!strcmp(runs[i].cfg.method, methods[m]) && !strcmp(runs[i].cfg.model, models[b]))
                    hit = &runs[i];
            if (!hit)
                fprintf(out, " |");
            else
                fprintf(out, " %.2f / %.4f |", clv_run_record_average_accuracy(&hit->rec),
                        mib(clv_report_bits_per_task(hit)));
        }
        fprintf(out, "\n");
    }
}

void clv_report_markdown(const clv_report_run *runs, int n, FILE *out)
{
    fprintf(out, "| run | method | backbone | data | tasks | avg acc (%%) | forgetting | "
                 "added/task (params) | added/task (MiB) | added total (MiB) | base (MiB) |\n"
                 "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int i = 0; i < n; i++) {
        const clv_report_run *r = &runs[i];
        char acc[32], fg[32];
        fmt_pct(acc, sizeof acc, clv_run_record_average_accuracy(&r->rec));
        fmt_pct(fg, sizeof fg, clv_run_record_forgetting(&r->rec));
        double per = clv_report_bits_per_task(r);
        fprintf(out, "| %s | %s | %s | %s | %d/%d | %s | %s | %.0f | %.4f | %.4f | %.3f |\n", r->dir, r->cfg.method,
                r->cfg.model, r->cfg.data, clv_run_record_last_row(&r->rec) + 1, r->rec.n_tasks, acc, fg, per / 32,
                mib(per), mib(total_bits(r)), mib((double)r->rec.base_bits));
    }
    grid_markdown(runs, n, out);
    for (int i = 0; i < n; i++)
        matrix_markdown(&runs[i], out);
}

void clv_report_csv(const clv_report_run *runs, int n, FILE *out)
{
    fprintf(out, "run,method,model,data,tasks_done,n_tasks,average_accuracy,forgetting,bits_per_task,"
                 "params_per_task,mib_per_task,total_bits,base_bits\n");
    for (int i = 0; i < n; i++) {
        const clv_report_run *r = &runs[i];
        double per = clv_report_bits_per_task(r);
        fprintf(out, "\"%s\",%s,%s,%s,%d,%d,%.4f,%.4f,%.0f,%.1f,%.6f,%.0f,%lld\n", r->dir, r->cfg.method,
                r->cfg.model, r->cfg.data, clv_run_record_last_row(&r->rec) + 1, r->rec.n_tasks,
                clv_run_record_average_accuracy(&r->rec), clv_run_record_forgetting(&r->rec), per, per / 32,
                mib(per), total_bits(r), (long long)r->rec.base_bits);
    }
}
