/* Groups of runs that differ only in the seed, their mean and spread, and
 * the Pareto front of accuracy against marginal bits per task. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/report.h"

clv_report_stat clv_report_stat_of(const double *v, int n)
{
    clv_report_stat s = {NAN, NAN, 0};
    double sum = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i])) {
            sum += v[i];
            s.n++;
        }
    if (!s.n)
        return s;
    s.mean = sum / s.n;
    if (s.n < 2)
        return s;
    double ss = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]))
            ss += (v[i] - s.mean) * (v[i] - s.mean);
    s.sd = sqrt(ss / (s.n - 1));
    return s;
}

void clv_report_pareto(const double *bits, const double *acc, int n, int *on_front)
{
    for (int i = 0; i < n; i++) {
        on_front[i] = !isnan(bits[i]) && !isnan(acc[i]);
        for (int j = 0; j < n && on_front[i]; j++) {
            if (j == i || isnan(bits[j]) || isnan(acc[j]))
                continue;
            if (bits[j] <= bits[i] && acc[j] >= acc[i] && (bits[j] < bits[i] || acc[j] > acc[i]))
                on_front[i] = 0;
        }
    }
}

static int ignored_in_grouping(const clv_setting *s)
{
    return s->resume_may_change || (!strcmp(s->section, "run") && !strcmp(s->key, "seed"));
}

/* Same config but for the seed and what may change on resume, same progress. */
static int same_group(const clv_report_run *a, const clv_report_run *b)
{
    if (clv_run_record_last_row(&a->rec) != clv_run_record_last_row(&b->rec))
        return 0;
    for (int i = 0; i < clv_config_settings_count(); i++) {
        const clv_setting *s = clv_config_setting(i);
        if (ignored_in_grouping(s))
            continue;
        char va[CLV_PATH_LEN], vb[CLV_PATH_LEN];
        clv_config_format(&a->cfg, s, va, sizeof va);
        clv_config_format(&b->cfg, s, vb, sizeof vb);
        if (strcmp(va, vb))
            return 0;
    }
    return 1;
}

/* Settings whose value differs between groups, beside method, model and rank (a column where it
 * matters, meaningless elsewhere). */
static void describe_settings(const clv_report_run *runs, clv_report_group *g, int n_groups)
{
    for (int k = 0; k < n_groups; k++) {
        const clv_config *c = &runs[g[k].runs[0]].cfg;
        size_t off = 0;
        g[k].settings[0] = 0;
        g[k].n_settings = 0;
        for (int i = 0; i < clv_config_settings_count(); i++) {
            const clv_setting *s = clv_config_setting(i);
            if (ignored_in_grouping(s) || (!strcmp(s->section, "method") && !strcmp(s->key, "name")) ||
                (!strcmp(s->section, "model") && !strcmp(s->key, "name")) ||
                (!strcmp(s->section, "method") && !strcmp(s->key, "rank")))
                continue;
            char v[CLV_PATH_LEN], other[CLV_PATH_LEN];
            clv_config_format(c, s, v, sizeof v);
            int varies = 0;
            for (int j = 0; j < n_groups && !varies; j++) {
                clv_config_format(&runs[g[j].runs[0]].cfg, s, other, sizeof other);
                varies = strcmp(v, other) != 0;
            }
            if (!varies)
                continue;
            if (g[k].n_settings < CLV_REPORT_MAX_SETTINGS)
                g[k].setting[g[k].n_settings++] = i;
            if (off < sizeof g[k].settings)
                off += (size_t)snprintf(g[k].settings + off, sizeof g[k].settings - off, "%s%s.%s=%s",
                                        off ? ", " : "", s->section, s->key, v);
        }
    }
}

static void summarize(const clv_report_run *runs, clv_report_group *g, double *v)
{
    const int n = g->n_runs;
#define STAT(field, expr)                                                                                             \
    do {                                                                                                              \
        for (int i = 0; i < n; i++) {                                                                                 \
            const clv_report_run *r = &runs[g->runs[i]];                                                              \
            v[i] = (expr);                                                                                            \
        }                                                                                                             \
        g->field = clv_report_stat_of(v, n);                                                                          \
    } while (0)
    STAT(accuracy, clv_run_record_average_accuracy(&r->rec));
    STAT(forgetting, clv_run_record_forgetting(&r->rec));
    STAT(marginal_bits, r->storage.marginal_bits_per_task);
    STAT(marginal_elements, r->storage.marginal_elements_per_task);
    STAT(one_time_bits, (double)r->storage.one_time_bits);
    STAT(one_time_elements, (double)r->storage.one_time_elements);
    STAT(head_bits, r->storage.head_bits_per_task);
    STAT(head_elements, r->storage.head_elements_per_task);
    STAT(zero_share, r->zero_share);
    STAT(agnostic_accuracy, r->agnostic_accuracy);
#undef STAT
    g->tasks_done = clv_run_record_last_row(&runs[g->runs[0]].rec) + 1;
    g->task_warnings = 0;
    for (int i = 0; i < n; i++)
        g->task_warnings += runs[g->runs[i]].task_warnings;
}

int clv_report_group_runs(const clv_report_run *runs, int n, clv_report_group **groups, int *n_groups, clv_err *err)
{
    *groups = NULL;
    *n_groups = 0;
    const size_t cap = (size_t)(n > 0 ? n : 1);
    clv_report_group *g = calloc(cap, sizeof *g);
    int *of = calloc(cap, sizeof *of); /* group of each run */
    double *v = calloc(cap, sizeof *v), *bits = calloc(cap, sizeof *bits), *acc = calloc(cap, sizeof *acc);
    int *front = calloc(cap, sizeof *front);
    int k = 0, rc = -1;
    if (!g || !of || !v || !bits || !acc || !front)
        goto oom;
    for (int i = 0; i < n; i++) {
        of[i] = -1;
        for (int j = 0; j < i && of[i] < 0; j++)
            if (same_group(&runs[i], &runs[j]))
                of[i] = of[j];
        if (of[i] < 0)
            of[i] = k++;
    }
    for (int i = 0; i < n; i++) {
        clv_report_group *gr = &g[of[i]];
        if (!gr->runs && !(gr->runs = malloc((size_t)n * sizeof *gr->runs)))
            goto oom;
        gr->runs[gr->n_runs++] = i;
    }
    for (int j = 0; j < k; j++) {
        summarize(runs, &g[j], v);
        bits[j] = g[j].marginal_bits.mean;
        acc[j] = g[j].accuracy.mean;
    }
    clv_report_pareto(bits, acc, k, front);
    for (int j = 0; j < k; j++)
        g[j].pareto = front[j];
    describe_settings(runs, g, k);
    *groups = g;
    *n_groups = k;
    g = NULL;
    rc = 0;
    goto done;
oom:
    clv_errf(err, "out of memory");
done:
    if (g)
        clv_report_groups_free(g, k);
    free(of);
    free(v);
    free(bits);
    free(acc);
    free(front);
    return rc;
}

void clv_report_groups_free(clv_report_group *groups, int n_groups)
{
    if (!groups)
        return;
    for (int i = 0; i < n_groups; i++)
        free(groups[i].runs);
    free(groups);
}

void clv_report_group_label(const clv_report_run *runs, const clv_report_group *groups, int n_groups, int g,
                            char *buf, size_t len)
{
    const clv_config *c = &runs[groups[g].runs[0]].cfg;
    int models_differ = 0;
    for (int j = 0; j < n_groups; j++)
        models_differ |= strcmp(runs[groups[j].runs[0]].cfg.model, c->model) != 0;
    size_t off = (size_t)snprintf(buf, len, "%s", c->method);
    if (clv_report_uses_rank(c->method) && off < len)
        off += (size_t)snprintf(buf + off, len - off, " K=%d", c->rank);
    if (models_differ && off < len)
        off += (size_t)snprintf(buf + off, len - off, ", %s", c->model);
    if (groups[g].settings[0] && off < len)
        snprintf(buf + off, len - off, " (%s)", groups[g].settings);
}
