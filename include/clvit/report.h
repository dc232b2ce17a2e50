/* Reports over finished (or running) runs: the paper's comparison table
 * (method, backbone, rank, average accuracy, forgetting, and storage split
 * into the marginal bits per task without heads, the one-time bits and the
 * heads; clvit/storage_summary.h), as Markdown, CSV or JSON, and pictures
 * drawn with Cairo (each accuracy matrix as a heatmap; accuracy against the
 * marginal bits per task, one point per group of runs).
 *
 * Runs that differ only in the seed (their configs compared without
 * run.seed and the settings that may change on resume: threads, eval batch,
 * data root, checkpoint interval) and have finished the same number of tasks
 * form a group: one row with the mean and sample standard deviation over its
 * runs. */
#ifndef CLVIT_REPORT_H
#define CLVIT_REPORT_H

#include <stdio.h>

#include "clvit/run_record.h"
#include "clvit/storage_summary.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_report_run {
    char dir[CLV_PATH_LEN];
    clv_config cfg;
    clv_run_record rec;
    clv_storage_summary storage;
    double zero_share;  /* mean over done tasks of tasks[i].masks.zero_share; NAN when none is recorded */
    double agnostic_accuracy; /* run.json's task_agnostic.accuracy (clvit eval --task-agnostic); NAN when absent */
    int task_warnings;  /* entries of tasks[i].warnings */
    int n_warnings;     /* every warning as text: "task 5: near_chance: ..." or a run-level one */
    char **warnings;
    size_t cap_warnings;
} clv_report_run;

/* 1 when path is a directory holding run.json (a glob over runs may also name plots/). */
int clv_report_is_run_dir(const char *path);
/* The run directories named by paths of a command line (`clvit report runs/<all>`). */
typedef struct clv_report_paths {
    int n;
    char **dirs; /* malloc'd, in the order found */
} clv_report_paths;
/* Adds to list the runs path names: a run directory, a run.json file (its
 * directory), or a folder of runs, searched up to 4 levels down in name
 * order (hidden entries and a run's own subfolders are not searched).
 * Anything else (a plots/ folder, another file) and a run already listed
 * are skipped with a one-line note appended to notes ("skipping PATH
 * (why)"). Returns 0, or -1 with err set when path does not exist. */
int clv_report_find_runs(clv_report_paths *list, const char *path, clv_warnings *notes, clv_err *err);
void clv_report_paths_free(clv_report_paths *list);
/* Reads dir/run.json into run (free with clv_report_run_free). Keys a run
 * written by an older clvit lacks are inferred or left blank (NAN). */
int clv_report_run_read(clv_report_run *run, const char *dir, clv_err *err);
void clv_report_run_free(clv_report_run *run);

/* Mean stored bits per finished task, head included. */
double clv_report_bits_per_task(const clv_report_run *run);
/* 1 for the methods with a rank (rkr, maskrkr). */
int clv_report_uses_rank(const char *method);

/* Mean and sample standard deviation (n - 1) of the values that are not NAN;
 * n counts them; mean NAN when n = 0, sd NAN when n < 2. */
typedef struct clv_report_stat {
    double mean, sd;
    int n;
} clv_report_stat;
clv_report_stat clv_report_stat_of(const double *v, int n);

#define CLV_REPORT_MAX_SETTINGS 96

typedef struct clv_report_group {
    int n_runs;
    int *runs;            /* indices into the runs given, in their order */
    int tasks_done;       /* rows of the accuracy matrix every run has finished */
    clv_report_stat accuracy, forgetting;
    clv_report_stat marginal_bits, marginal_elements;   /* per task, heads excluded */
    clv_report_stat one_time_bits, one_time_elements;
    clv_report_stat head_bits, head_elements;           /* per task */
    clv_report_stat zero_share;
    clv_report_stat agnostic_accuracy; /* without a task id (NAN mean when no run measured it) */
    int task_warnings;    /* summed over the runs */
    int pareto;           /* on the front of accuracy (higher) against marginal bits (fewer) */
    char settings[512];   /* the settings that set it apart beside method, model and rank: "a.b=v, ..." */
    int n_settings;       /* ... as indices of clv_config_setting */
    int setting[CLV_REPORT_MAX_SETTINGS];
} clv_report_group;

/* Groups runs (in order of first appearance) and marks the Pareto front. */
int clv_report_group_runs(const clv_report_run *runs, int n, clv_report_group **groups, int *n_groups,
                          clv_err *err);
void clv_report_groups_free(clv_report_group *groups, int n_groups);
/* on_front[i] = 1 when no other point has at most bits[i] and at least acc[i],
 * one of them strictly; points with a NAN are never on it. */
void clv_report_pareto(const double *bits, const double *acc, int n, int *on_front);
/* "rkr K=2", "piggyback", plus ", <model>" when models differ and the settings. */
void clv_report_group_label(const clv_report_run *runs, const clv_report_group *groups, int n_groups, int g,
                            char *buf, size_t len);

/* The group table (one row per group; then the warnings and, when several
 * models appear, a method x model table). */
void clv_report_markdown(const clv_report_run *runs, int n, FILE *out);
/* One row per run, then each run's accuracy matrix. */
void clv_report_markdown_per_run(const clv_report_run *runs, int n, FILE *out);
void clv_report_csv(const clv_report_run *runs, int n, FILE *out);        /* one row per run */
void clv_report_groups_csv(const clv_report_run *runs, int n, FILE *out); /* one row per group */
/* {"format": "clvit-report-1", "groups": [...], "runs": [...]} (docs/methods.md). */
int clv_report_json(const clv_report_run *runs, int n, FILE *out, clv_err *err);

/* Writes into dir: matrix-<i>-<method>.png/.svg per run,
 * accuracy-vs-bits.png/.svg (one point per group) and, for each run with a
 * metrics.csv, curves-<i>-<method>.png/.svg (loss and training accuracy
 * per step, one colour per task). */
int clv_report_plot(const clv_report_run *runs, int n, const char *dir, clv_err *err);

#ifdef __cplusplus
}
#endif
#endif
