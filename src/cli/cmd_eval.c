/* clvit eval: re-evaluates every learned task of a run with its saved
 * weights and compares with the accuracies the run recorded. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "clvit/task_select.h"
#include "clvit/trainer.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: clvit eval --run DIR [--threads N] [--precision fp32|bf16] [--json]\n"
                 "       clvit eval --run DIR --task-agnostic [--task-select maxprob|entropy] [--threads N]\n"
                 "                  [--precision fp32|bf16] [--json]\n\n"
                 "Loads the run's base and task files, evaluates every finished task on its test images with\n"
                 "its own head, and prints each accuracy beside the one recorded after the last task.\n"
                 "Exit status 1 if an accuracy differs from the record by more than 0.01 points.\n"
                 "--precision: the weight layers' GEMM inputs (default: the run's train.precision; another\n"
                 "precision may move accuracies off the record by a little).\n\n"
                 "--task-agnostic: no task id is given. Each finished task's test images go through every\n"
                 "finished task and the most confident head chooses the task (--task-select: maxprob, the\n"
                 "default, or entropy; see clvit predict --task auto). Prints per task how many of its images\n"
                 "were routed to it and how many got task and class right (the accuracy over the union of\n"
                 "all tasks' classes), beside the task-aware accuracy recorded, and writes them into\n"
                 "run.json under task_agnostic. Costs one backbone forward per task and image (one for all\n"
                 "tasks that share the backbone, as finetune's and linear's).\n");
}

/* --task-agnostic: the routing and union accuracy per task, the task-aware accuracy recorded beside them. */
static int eval_agnostic(const char *dir, int threads, int precision, clv_task_select select, int as_json)
{
    clv_err err = {{0}};
    clv_agnostic a;
    if (clv_eval_task_agnostic(dir, threads, precision, select, 1, &a, &err)) {
        fprintf(stderr, "clvit eval: %s\n", err.msg);
        return 1;
    }
    clv_run_record rec;
    clv_config cfg;
    int have_rec = !clv_run_record_read(&rec, &cfg, dir, NULL);
    int last = have_rec ? clv_run_record_last_row(&rec) : -1;
    if (as_json) {
        printf("{\"run\": \"%s\", \"select\": \"%s\", \"tasks\": [", dir, clv_task_select_name(select));
        for (int t = 0, first = 1; t < a.n_tasks; t++) {
            if (!a.images[t])
                continue;
            printf("%s{\"task\": %d, \"images\": %lld, \"routing\": %.4f, \"accuracy\": %.4f}", first ? "" : ", ",
                   t + 1, (long long)a.images[t], clv_agnostic_routing(&a, t), clv_agnostic_accuracy(&a, t));
            first = 0;
        }
        printf("], \"routing\": %.4f, \"accuracy\": %.4f, \"forwards_per_image\": %d, \"seconds\": %.3f}\n",
               clv_agnostic_mean_routing(&a), clv_agnostic_mean_accuracy(&a), a.groups, a.seconds);
    } else {
        printf("task-agnostic (%s): each task's test images routed among %d learned tasks\n",
               clv_task_select_name(select), a.n_tasks);
        printf("%-6s %8s %14s %16s %16s\n", "task", "images", "routed here %", "task+class %", "task-aware %");
        for (int t = 0; t < a.n_tasks; t++) {
            if (!a.images[t])
                continue;
            double aware = last >= 0 ? clv_run_record_acc(&rec, last, t) : NAN;
            printf("%-6d %8lld %14.2f %16.2f %16.2f\n", t + 1, (long long)a.images[t], clv_agnostic_routing(&a, t),
                   clv_agnostic_accuracy(&a, t), aware);
        }
        printf("%-6s %8s %14.2f %16.2f %16.2f\n", "mean", "", clv_agnostic_mean_routing(&a),
               clv_agnostic_mean_accuracy(&a), have_rec ? clv_run_record_average_accuracy(&rec) : NAN);
        printf("%d backbone forward%s per image, %.1f s; written to %s/run.json (task_agnostic)\n", a.groups,
               a.groups == 1 ? "" : "s", a.seconds, dir);
    }
    if (have_rec)
        clv_run_record_free(&rec);
    clv_agnostic_free(&a);
    return 0;
}

int clv_cmd_eval(int argc, char **argv)
{
    const char *dir = NULL;
    int threads = 0, as_json = 0, agnostic = 0, select_given = 0, precision = -1;
    clv_task_select select = CLV_SELECT_MAXPROB;
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
        } else if ((v = clv_cli_option(argc, argv, &i, "precision", &err, &failed)) || failed) {
            clv_precision p;
            if (failed || clv_precision_parse(v, &p, &err))
                goto bad;
            precision = (int)p;
        } else if ((v = clv_cli_option(argc, argv, &i, "task-select", &err, &failed)) || failed) {
            if (failed || clv_task_select_parse(v, &select, &err))
                goto bad;
            select_given = 1;
        } else if (clv_cli_is_flag(argv[i], "task-agnostic"))
            agnostic = 1;
        else if (clv_cli_is_flag(argv[i], "json"))
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
    if (select_given && !agnostic) {
        fprintf(stderr, "clvit eval: --task-select applies to --task-agnostic\n");
        return 2;
    }
    if (agnostic)
        return eval_agnostic(dir, threads, precision, select, as_json);
    clv_run_record rec;
    clv_config cfg;
    double *now = NULL;
    if (clv_eval_run(dir, threads, precision, &rec, &cfg, &now, &err)) {
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
