/* clvit train: learn a task sequence into a run directory, or resume one. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "clvit/dist.h"
#include "clvit/trainer.h"

/* The one piece of process-wide state the CLI keeps: a stop request from a signal. */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    if (stop_requested) /* a second signal: leave at once */
        _exit(128 + sig);
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: clvit train [--config FILE] [--set section.key=value]... [--<setting> VALUE]...\n"
            "                   --out DIR [--resume [--force]] [--overwrite] [--quiet]\n\n"
            "Learns the tasks of a dataset one after another and writes DIR/run.json (accuracy matrix,\n"
            "forgetting, stored bits per task), DIR/results.csv and checkpoints. Ctrl-C writes a\n"
            "checkpoint and stops; --resume continues where it stopped (a changed setting is refused,\n"
            "naming it, unless --force).\n\n"
            "settings (flag, then its INI spelling [section] key):\n");
    clv_config_print_help(out);
}

int clv_cmd_train(int argc, char **argv)
{
    clv_err err = {{0}};
    clv_config cfg;
    clv_config_defaults(&cfg);
    int rest[256], nrest = 0, any_set = 0;
    if (argc > 256) {
        fprintf(stderr, "clvit train: too many arguments\n");
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (clv_cli_is_flag(argv[i], "help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    if (clv_cli_apply_settings(&cfg, argc, argv, rest, &nrest, &any_set, &err)) {
        fprintf(stderr, "clvit train: %s\n", err.msg);
        return 2;
    }
    clv_train_opts opts = {0};
    opts.progress = isatty(2) ? 2 : 1;
    int force = 0;
    for (int k = 0; k < nrest; k++) {
        int i = rest[k], failed = 0;
        const char *v;
        if ((v = clv_cli_option(argc, argv, &i, "out", &err, &failed)) || failed) {
            if (failed) {
                fprintf(stderr, "clvit train: %s\n", err.msg);
                return 2;
            }
            opts.out_dir = v;
            while (k + 1 < nrest && rest[k + 1] <= i) /* its value */
                k++;
        } else if (clv_cli_is_flag(argv[i], "resume"))
            opts.resume = 1;
        else if (clv_cli_is_flag(argv[i], "force"))
            force = 1;
        else if (clv_cli_is_flag(argv[i], "overwrite"))
            opts.overwrite = 1;
        else if (clv_cli_is_flag(argv[i], "quiet"))
            opts.progress = 0;
        else {
            fprintf(stderr, "clvit train: unknown option '%s' (see clvit train --help)\n", argv[i]);
            return 2;
        }
    }
    if (!opts.out_dir) {
        fprintf(stderr, "clvit train: --out DIR is required (see clvit train --help)\n");
        return 2;
    }
    if (opts.resume && opts.overwrite) {
        fprintf(stderr, "clvit train: --resume and --overwrite contradict each other\n");
        return 2;
    }
    if (opts.resume) {
        /* the run's own config, with the flags given now on top */
        clv_run_record rec;
        clv_config saved;
        if (clv_run_record_read(&rec, &saved, opts.out_dir, &err)) {
            fprintf(stderr, "clvit train: cannot resume: %s\n", err.msg);
            return 1;
        }
        clv_run_record_free(&rec);
        clv_config merged = saved;
        if (any_set && clv_cli_apply_settings(&merged, argc, argv, rest, &nrest, NULL, &err)) {
            fprintf(stderr, "clvit train: %s\n", err.msg);
            return 2;
        }
        char diff[2048];
        if (clv_config_diff(&saved, &merged, diff, sizeof diff) && !force) {
            fprintf(stderr,
                    "clvit train: %s was made with other settings: %s; resume with the same settings, or add --force\n",
                    opts.out_dir, diff);
            return 1;
        }
        cfg = merged;
    }
    if (clv_config_validate(&cfg, &err)) {
        fprintf(stderr, "clvit train: %s\n", err.msg);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    opts.stop = &stop_requested;

    /* under mpirun (built with make MPI=1): data-parallel ranks; rank 0 reports and writes */
    clv_dist dist;
    if (clv_dist_init(&dist, NULL, NULL, &err)) {
        fprintf(stderr, "clvit train: %s\n", err.msg);
        return 1;
    }
    opts.dist = &dist;
    if (dist.rank != 0)
        opts.progress = 0;
    else if (dist.size > 1)
        fprintf(stderr, "clvit train: %d data-parallel ranks, %d threads each\n", dist.size, clv_threads_get());
    int rc = clv_train_run(&cfg, &opts, &err);
    if (rc < 0 && dist.size > 1) {
        fprintf(stderr, "clvit train (rank %d): %s\n", dist.rank, err.msg);
        clv_dist_abort(&dist, 1); /* the other ranks may be waiting in a collective */
    }
    clv_dist_finalize(&dist);
    if (rc == CLV_STOPPED) {
        fprintf(stderr, "clvit train: stopped; checkpoint written. Continue with: clvit train --out %s --resume\n",
                opts.out_dir);
        return 130;
    }
    if (rc) {
        fprintf(stderr, "clvit train: %s\n", err.msg);
        return 1;
    }
    return 0;
}
