/* clvit eval: re-evaluates every learned task of a run with its saved
 * weights and compares with the accuracies the run recorded. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "clvit/trainer.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: clvit eval --run DIR [--threads N] [--json]\n\n"
                 "Loads the run's base and task files, evaluates every finished task on its test images with\n"
                 "its own head, and prints each accuracy beside the one recorded after the last task.\n"
                 "Exit status 1 if an accuracy differs from the record by more than 0.01 points.\n");
}

int clv_cmd_eval(int argc, char **argv)
{
    const char *dir = NULL;
    int threads = 0, as_json = 0;
    clv_err err = {{0}};
    for (int i = 1; i < argc; i++) {
        int failed = 0;
        const char *v;
        if (clv_cli_is_flag(argv[i], "help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if ((v = clv_cli_option(argc, argv, &i, "run", &err, &failed)) || failed) {
            if (failed)
                goto bad;
            dir = v;
        } else if ((v = clv_cli_option(argc, argv, &i, "threads", &err, &failed)) || failed) {
            if (failed || clv_cli_parse_int(v, "--threads", 1, 1024, &threads, &err))
                goto bad;
        } else if (clv_cli_is_flag(argv[i], "json"))
            as_json = 1;
        else {
            fprintf(stderr, "clvit eval: unknown option '%s' (see clvit eval --help)\n", argv[i]);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "clvit eval: --run DIR is required\n");
        return 2;
    }
    clv_run_record rec;
    clv_config cfg;
    double *now = NULL;
    if (clv_eval_run(dir, threads, &rec, &cfg, &now, &err)) {
        fprintf(stderr, "clvit eval: %s\n", err.msg);
        return 1;
    }
    int last = clv_run_record_last_row(&rec), differ = 0;
    if (as_json)
        printf("{\"run\": \"%s\", \"tasks\": [", dir);
    else
        printf("%-6s %10s %10s\n", "task", "recorded", "now");
    for (int t = 0, first = 1; t < rec.n_tasks; t++) {
        if (isnan(now[t]))
            continue;
        double was = last >= 0 ? clv_run_record_acc(&rec, last, t) : NAN;
        if (!isnan(was) && fabs(was - now[t]) > 0.01)
            differ = 1;
        if (as_json) {
            printf("%s{\"task\": %d, \"recorded\": ", first ? "" : ", ", t + 1);
            if (isnan(was))
                printf("null");
            else
                printf("%.4f", was);
            printf(", \"accuracy\": %.4f}", now[t]);
        } else
            printf("%-6d %10.2f %10.2f\n", t + 1, was, now[t]);
        first = 0;
    }
    if (as_json)
        printf("], \"matches_record\": %s}\n", differ ? "false" : "true");
    else if (differ)
        fprintf(stderr, "clvit eval: accuracies differ from the record in %s/run.json\n", dir);
    free(now);
    clv_run_record_free(&rec);
    return differ;
bad:
    fprintf(stderr, "clvit eval: %s\n", err.msg);
    return 2;
}
