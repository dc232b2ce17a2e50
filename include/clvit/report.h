/* Reports over finished (or running) runs: the paper's comparison table
 * (method, backbone, average accuracy, forgetting, storage added per task),
 * as Markdown or CSV, and pictures drawn with Cairo (the accuracy matrix as a
 * heatmap; accuracy against stored bits per task, one point per run). */
#ifndef CLVIT_REPORT_H
#define CLVIT_REPORT_H

#include <stdio.h>

#include "clvit/run_record.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_report_run {
    char dir[CLV_PATH_LEN];
    clv_config cfg;
    clv_run_record rec;
} clv_report_run;

/* Reads dir/run.json into run (free with clv_report_run_free). */
int clv_report_run_read(clv_report_run *run, const char *dir, clv_err *err);
void clv_report_run_free(clv_report_run *run);

/* Mean stored bits per finished task (head included), and the base's. */
double clv_report_bits_per_task(const clv_report_run *run);

/* One row per run: method, model, data, tasks done, average accuracy,
 * forgetting, added per task (float-equivalent parameters = bits / 32, and
 * MiB), added in total, base; then, in Markdown, each run's accuracy matrix
 * and, when several models appear, a method x model table of average
 * accuracy. */
void clv_report_markdown(const clv_report_run *runs, int n, FILE *out);
void clv_report_csv(const clv_report_run *runs, int n, FILE *out);

/* Writes into dir: matrix-<i>-<method>.png/.svg per run, and
 * accuracy-vs-bits.png/.svg. */
int clv_report_plot(const clv_report_run *runs, int n, const char *dir, clv_err *err);

#ifdef __cplusplus
}
#endif
#endif
