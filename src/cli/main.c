/* clvit: command-line entry point; dispatches to one file per subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/omp_wait.h"
#include "clvit/core.h"
#include "clvit/version.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} commands[] = {
    {"train", clv_cmd_train, "learn a sequence of tasks (or resume one) into a run directory"},
    {"pretrain", clv_cmd_pretrain, "train a base network on all classes of a dataset, for --weights"},
    {"eval", clv_cmd_eval, "re-evaluate every learned task of a run"},
    {"predict", clv_cmd_predict, "classify images with a run's task or a weights file"},
    {"export", clv_cmd_export, "write a run's task as a plain timm-named network"},
    {"report", clv_cmd_report, "the comparison table (and pictures) of several runs"},
    {"bench", clv_cmd_bench, "time training and inference steps"},
    {"info", clv_cmd_info, "build, GEMM backend, threads, models and methods"},
    {"inspect", clv_cmd_inspect, "list the tensors and metadata of a safetensors file"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: clvit <command> [options]   (clvit <command> --help for its options; clvit --version)\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    clv_cli_passive_wait(argv);
    const char *log = getenv("CLVIT_LOG");
    if (log && *log) {
        clv_log_level level;
        if (clv_log_level_parse(log, &level)) {
            fprintf(stderr, "clvit: CLVIT_LOG: '%s' is not one of error, warning, info, debug\n", log);
            return 2;
        }
        clv_log_set_level(level);
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("clvit %s\n", CLV_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "clvit: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
