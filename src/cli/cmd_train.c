/* clvit train: learn a task sequence into a run directory, or resume one. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "cli/stop_signal.h"
#include "clvit/checkpoint.h"
#include "clvit/dist.h"
#include "clvit/run_lock.h"
#include "clvit/trainer.h"

/* The one piece of process-wide state the CLI keeps: a stop request from a signal. */
static volatile sig_atomic_t stop_requested;

static void usage(FILE *out, int pretrain)
{
    if (pretrain) {
        fprintf(out,
                "usage: clvit pretrain [--config FILE] [--set section.key=value]... [--<setting> VALUE]...\n"
                "                      --out DIR [--resume [--force]] [--overwrite] [--quiet]\n\n"
                "Trains a base network on ALL classes of a dataset (one task, the whole network trains) and\n"
                "writes DIR/pretrained.safetensors: the backbone and its head under timm's names, for\n"
                "--weights in later runs (and for clvit predict). Resumable like train.\n\n"
                "settings (flag, then its INI spelling [section] key); data.tasks and method.name are fixed:\n");
        clv_config_print_help(out);
        return;
    }
    fprintf(out,
            "usage: clvit train [--config FILE] [--set section.key=value]... [--<setting> VALUE]...\n"
            "                   --out DIR [--resume [--force]] [--overwrite] [--quiet] [--compare-settings]\n\n"
            "Learns the tasks of a dataset one after another and writes DIR/run.json (accuracy matrix,\n"
            "forgetting, stored bits per task), DIR/results.csv and checkpoints. Ctrl-C writes a\n"
            "checkpoint and stops; --resume continues where it stopped (a changed setting is refused,\n"
            "naming it, unless --force). --compare-settings trains nothing: it says how the settings given\n"
            "differ from those DIR's run was made with (exit 0: the same, 3: they differ; threads, eval\n"
            "batch, data root and checkpoint interval may differ).\n\n"
            "settings (flag, then its INI spelling [section] key):\n");
    clv_config_print_help(out);
}

/* --compare-settings: the settings given against those the run in dir was
 * made with (tools/run_demo.sh trains a run again when they differ). */
static int compare_settings(const char *cmd, clv_config *cfg, const char *dir, int pretrain)
{
    clv_err err = {{0}};
    clv_run_record rec;
    clv_config saved;
    if (pretrain)
        cfg->tasks = 1;
    if (clv_run_record_read(&rec, &saved, dir, &err)) {
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
        return 1;
    }
    clv_run_record_free(&rec);
    char diff[4096];
    if (!clv_config_diff(&saved, cfg, diff, sizeof diff)) {
        printf("%s: the same settings\n", dir);
        return 0;
    }
    printf("%s was made with other settings (recorded vs given): %s\n", dir, diff);
    return 3;
}

/* train and pretrain share everything but the task layout and the export. */
static int train_main(int argc, char **argv, int pretrain)
{
    const char *cmd = pretrain ? "clvit pretrain" : "clvit train";
    /* before any thread exists (OpenMP's pool, Open MPI's), so every thread inherits the blocked signals */
    if (clv_stop_on_signals(&stop_requested)) {
        fprintf(stderr, "%s: cannot start the signal thread\n", cmd);
        return 1;
    }
    clv_err err = {{0}};
    clv_config cfg;
    clv_config_defaults(&cfg);
    int rest[256], nrest = 0, any_set = 0;
    if (argc > 256) {
        fprintf(stderr, "%s: too many arguments\n", cmd);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (clv_cli_is_flag(argv[i], "help") || !strcmp(argv[i], "-h")) {
            usage(stdout, pretrain);
            return 0;
        }
    if (clv_cli_apply_settings(&cfg, argc, argv, rest, &nrest, &any_set, &err)) {
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
        return 2;
    }
    clv_train_opts opts = {0};
    opts.progress = isatty(2) ? 2 : 1;
    int force = 0, compare = 0;
    for (int k = 0; k < nrest; k++) {
        int i = rest[k], failed = 0;
        const char *v;
        if ((v = clv_cli_option(argc, argv, &i, "out", &err, &failed)) || failed) {
            if (failed) {
                fprintf(stderr, "%s: %s\n", cmd, err.msg);
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
        else if (clv_cli_is_flag(argv[i], "compare-settings"))
            compare = 1;
        else {
            static const char *const own[] = {"out", "resume", "force", "overwrite", "quiet", "compare-settings",
                                              "config", "set", "help", NULL};
            char hint[160];
            fprintf(stderr, "%s: unknown option '%s'%s (see %s --help)\n", cmd, argv[i],
                    clv_cli_suggest(argv[i], own, 1, hint, sizeof hint), cmd);
            return 2;
        }
    }
    if (!opts.out_dir) {
        fprintf(stderr, "%s: --out DIR is required (see %s --help)\n", cmd, cmd);
        return 2;
    }
    if (opts.resume && opts.overwrite) {
        fprintf(stderr, "%s: --resume and --overwrite contradict each other\n", cmd);
        return 2;
    }
    if (compare)
        return compare_settings(cmd, &cfg, opts.out_dir, pretrain);
    if (opts.resume) {
        /* the run's own config, with the flags given now on top */
        clv_run_record rec;
        clv_config saved;
        if (clv_run_record_read(&rec, &saved, opts.out_dir, &err)) {
            fprintf(stderr, "%s: cannot resume: %s\n", cmd, err.msg);
            return 1;
        }
        clv_run_record_free(&rec);
        clv_config merged = saved;
        if (any_set && clv_cli_apply_settings(&merged, argc, argv, rest, &nrest, NULL, &err)) {
            fprintf(stderr, "%s: %s\n", cmd, err.msg);
            return 2;
        }
        if (merged.precision != saved.precision) { /* not even with --force: a run keeps one precision */
            fprintf(stderr,
                    "%s: cannot resume %s in %s: it was trained with train.precision %s; resume it in %s, or start "
                    "a new run\n",
                    cmd, opts.out_dir, clv_precision_name(merged.precision), clv_precision_name(saved.precision),
                    clv_precision_name(saved.precision));
            return 1;
        }
        char diff[2048];
        if (clv_config_diff(&saved, &merged, diff, sizeof diff) && !force) {
            fprintf(stderr,
                    "%s: %s was made with other settings: %s; resume with the same settings, or add --force\n", cmd,
                    opts.out_dir, diff);
            return 1;
        }
        cfg = merged;
    }
    if (pretrain) {
        if (strcmp(cfg.method, "finetune")) {
            fprintf(stderr, "%s: the base trains as a whole (method finetune), not with --method %s\n", cmd,
                    cfg.method);
            return 2;
        }
        cfg.tasks = 1; /* every class in one task */
    }
    if (clv_config_validate(&cfg, &err)) {
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
        return 2;
    }
    opts.stop = &stop_requested;
    /* run.json records the command as typed: "clvit train ..." */
    char *command[258];
    command[0] = "clvit";
    for (int i = 0; i < argc; i++)
        command[i + 1] = argv[i];
    opts.argc = argc + 1;
    opts.argv = command;

    /* under mpirun (built with make MPI=1): data-parallel ranks; rank 0 reports and writes */
    clv_dist dist;
    if (clv_dist_init(&dist, NULL, NULL, &err)) {
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
        return 1;
    }
    opts.dist = &dist;
    /* one writer per run directory: rank 0 writes, so rank 0 holds the lock */
    int lock = -1;
    if (dist.rank == 0 && (lock = clv_run_lock(opts.out_dir, &err)) < 0) {
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
        if (dist.size > 1)
            clv_dist_abort(&dist, 1);
        clv_dist_finalize(&dist);
        return 1;
    }
    if (dist.rank != 0)
        opts.progress = 0;
    else if (dist.size > 1)
        fprintf(stderr, "%s: %d data-parallel ranks, %d threads each\n", cmd, dist.size, clv_threads_get());
    int rc = clv_train_run(&cfg, &opts, &err);
    if (rc < 0 && dist.size > 1) {
        fprintf(stderr, "%s (rank %d): %s\n", cmd, dist.rank, err.msg);
        clv_dist_abort(&dist, 1); /* the other ranks may be waiting in a collective */
    }
    clv_dist_finalize(&dist);
    if (rc == CLV_STOPPED) {
        fprintf(stderr, "%s: stopped; checkpoint written. Continue with: %s --out %s --resume\n", cmd, cmd,
                opts.out_dir);
        clv_run_unlock(lock);
        return 130;
    }
    if (rc) {
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
        clv_run_unlock(lock);
        return 1;
    }
    if (pretrain && dist.rank == 0) {
        char path[CLV_PATH_LEN + 32];
        snprintf(path, sizeof path, "%s/pretrained.safetensors", opts.out_dir);
        if (clv_ckpt_export_pretrained(opts.out_dir, path, &err)) {
            fprintf(stderr, "%s: %s\n", cmd, err.msg);
            clv_run_unlock(lock);
            return 1;
        }
        fprintf(stderr, "%s: wrote %s; use it with --weights %s\n", cmd, path, path);
    }
    clv_run_unlock(lock);
    return 0;
}

int clv_cmd_train(int argc, char **argv) { return train_main(argc, argv, 0); }
int clv_cmd_pretrain(int argc, char **argv) { return train_main(argc, argv, 1); }
