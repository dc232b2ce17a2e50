/* clvit report: the comparison table of several runs (Markdown or CSV) and,
 * with --plot, their pictures. */
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
    fprintf(out, "usage: clvit report [--csv] [--plot DIR] RUN_DIR...\n\n"
                 "Prints, for each run: method, backbone, data, tasks learned, average accuracy, forgetting,\n"
                 "storage added per task (float-equivalent parameters = bits / 32, and MiB) and in total, the\n"
                 "base network's size; then a method x backbone table (when several backbones appear) and every\n"
                 "accuracy matrix. --csv prints one CSV row per run instead. --plot DIR also draws each accuracy\n"
                 "matrix as a heatmap and accuracy against stored bits per task, as PNG and SVG, into DIR.\n");
}

int clv_cmd_report(int argc, char **argv)
{
    int csv = 0, n = 0, status = 1;
    const char *plot = NULL;
    clv_err err = {{0}};
    clv_report_run *runs = calloc((size_t)argc, sizeof *runs);
    if (!runs)
        return 1;
    for (int i = 1; i < argc; i++) {
        int failed = 0;
        const char *v;
        if (clv_cli_is_flag(argv[i], "help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            status = 0;
            goto done;
        } else if (clv_cli_is_flag(argv[i], "csv"))
            csv = 1;
        else if ((v = clv_cli_option(argc, argv, &i, "plot", &err, &failed)) || failed) {
            if (failed) {
                fprintf(stderr, "clvit report: %s\n", err.msg);
                status = 2;
                goto done;
            }
            plot = v;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "clvit report: unknown option '%s' (see clvit report --help)\n", argv[i]);
            status = 2;
            goto done;
        } else {
            if (clv_report_run_read(&runs[n], argv[i], &err)) {
                fprintf(stderr, "clvit report: %s\n", err.msg);
                goto done;
            }
            n++;
        }
    }
    if (!n) {
        fprintf(stderr, "clvit report: no run directory given (clvit report runs/*)\n");
        status = 2;
        goto done;
    }
    if (csv)
        clv_report_csv(runs, n, stdout);
    else
        clv_report_markdown(runs, n, stdout);
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
    return status;
}
