/* clvit report: the comparison table of several runs (per group of seeds or
 * per run; Markdown, CSV or JSON) and, with --plot, their pictures. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "clvit/report.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: clvit report [--per-run] [--csv | --json] [--plot DIR] RUN...\n\n"
            "A RUN is a run directory, its run.json, or a folder of runs (such as runs/default after make run;\n"
            "searched up to 4 levels down). Anything else (plots/, other files) is skipped with a note.\n"
            "Runs that differ only in the seed (and in threads, eval batch, data root, checkpoint interval) and\n"
            "have finished as many tasks form a group: one row with the mean and sample standard deviation over\n"
            "its runs of average accuracy and forgetting; the marginal bits per task without heads (the mean over\n"
            "the tasks after any one-time cost; also in KiB), the one-time bits (the base, Mask-RKR's shared\n"
            "tensors), the head bits per task, the share of mask bits that are 0, and the count of task warnings\n"
            "(listed below the table). A method x backbone table follows when several backbones appear.\n"
            "  --per-run    one row per run instead, then every accuracy matrix\n"
            "  --csv        the same rows as CSV\n"
            "  --json       groups and runs as JSON (keys in docs/methods.md)\n"
            "  --plot DIR   also draw each accuracy matrix, accuracy against marginal bits per task (one\n"
            "               point per group, seed spread as error bars, the Pareto front) and each run's\n"
            "               training loss and accuracy per task from its metrics.csv, as PNG and SVG\n"
            );
}

int clv_cmd_report(int argc, char **argv)
{
    int csv = 0, json = 0, per_run = 0, n = 0, status = 1;
    const char *plot = NULL;
    clv_err err = {{0}};
    clv_report_paths found = {0};
    clv_warnings notes = {0};
    clv_report_run *runs = NULL;
    for (int i = 1; i < argc; i++) {
        int failed = 0;
        const char *v;
        if (clv_cli_is_flag(argv[i], "help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            status = 0;
            goto done;
        } else if (clv_cli_is_flag(argv[i], "csv"))
            csv = 1;
        else if (clv_cli_is_flag(argv[i], "json"))
            json = 1;
        else if (clv_cli_is_flag(argv[i], "per-run"))
            per_run = 1;
        else if ((v = clv_cli_option(argc, argv, &i, "plot", &err, &failed)) || failed) {
            if (failed) {
                fprintf(stderr, "clvit report: %s\n", err.msg);
                status = 2;
                goto done;
            }
            plot = v;
        } else if (argv[i][0] == '-') {
            static const char *const own[] = {"csv", "json", "per-run", "plot", "help", NULL};
            char hint[160];
            fprintf(stderr, "clvit report: unknown option '%s'%s (see clvit report --help)\n", argv[i],
                    clv_cli_suggest(argv[i], own, 0, hint, sizeof hint));
            status = 2;
            goto done;
        } else if (clv_report_find_runs(&found, argv[i], &notes, &err)) {
            fprintf(stderr, "clvit report: %s\n", err.msg);
            goto done;
        }
    }
    for (int k = 0; k < notes.n; k++)
        fprintf(stderr, "clvit report: %s\n", notes.items[k]);
    if (found.n && !(runs = calloc((size_t)found.n, sizeof *runs))) {
        fprintf(stderr, "clvit report: out of memory\n");
        goto done;
    }
    for (; n < found.n; n++)
        if (clv_report_run_read(&runs[n], found.dirs[n], &err)) {
            fprintf(stderr, "clvit report: %s\n", err.msg);
            goto done;
        }
    if (csv && json) {
        fprintf(stderr, "clvit report: --csv and --json exclude each other\n");
        status = 2;
        goto done;
    }
    if (!n) {
        fprintf(stderr, "clvit report: no run found in what was given (clvit report runs/*)\n");
        status = 2;
        goto done;
    }
    if (json) {
        if (clv_report_json(runs, n, stdout, &err)) {
            fprintf(stderr, "clvit report: %s\n", err.msg);
            goto done;
        }
    } else if (csv)
        (per_run ? clv_report_csv : clv_report_groups_csv)(runs, n, stdout);
    else
        (per_run ? clv_report_markdown_per_run : clv_report_markdown)(runs, n, stdout);
    if (plot) {
        if (mkdir(plot, 0777) && errno != EEXIST) {
            fprintf(stderr, "clvit report: %s: cannot create: %s\n", plot, strerror(errno));
            goto done;
        }
        if (clv_report_plot(runs, n, plot, &err)) {
            fprintf(stderr, "clvit report: %s\n", err.msg);
            goto done;
        }
        fprintf(stderr, "clvit report: pictures in %s/\n", plot);
    }
    status = 0;
done:
    for (int i = 0; i < n; i++)
        clv_report_run_free(&runs[i]);
    free(runs);
    clv_report_paths_free(&found);
    clv_warnings_clear(&notes);
    return status;
}
