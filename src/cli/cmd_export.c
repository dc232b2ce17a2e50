/* clvit export: a learned task of a run as one plain timm-named safetensors file. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "clvit/export.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: clvit export --run DIR --task N [--out FILE.safetensors]\n\n"
            "Writes task N (1-based) of the run as one network under timm's names and layout, for\n"
            "load_state_dict(strict=True) into the timm model of that architecture made with the task's\n"
            "class count (torchvision's resnet for the resnet family): the task's effective weights (RKR's\n"
            "W + LM RM with its scale folded into the weight rows and the bias, Piggyback's and Mask-RKR's\n"
            "masks applied, Independent's copy), its norms, its head as the model's head (Swin: head.fc, as\n"
            "timm >= 0.9), and in the metadata the mean/std, class ids and names. The default FILE is\n"
            "DIR/export-task-NN.safetensors. It also loads back: clvit predict --weights FILE.\n");
}

int clv_cmd_export(int argc, char **argv)
{
    const char *run = NULL, *out = NULL;
    int task = 0;
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
            run = v;
        } else if ((v = clv_cli_option(argc, argv, &i, "task", &err, &failed)) || failed) {
            if (failed || clv_cli_parse_int(v, "--task", 1, 1000000, &task, &err))
                goto bad;
        } else if ((v = clv_cli_option(argc, argv, &i, "out", &err, &failed)) || failed) {
            if (failed)
                goto bad;
            out = v;
        } else {
            static const char *const own[] = {"run", "task", "out", "help", NULL};
            char hint[160];
            fprintf(stderr, "clvit export: unknown option '%s'%s (see clvit export --help)\n", argv[i],
                    clv_cli_suggest(argv[i], own, 0, hint, sizeof hint));
            return 2;
        }
    }
    if (!run || !task) {
        clv_errf(&err, "give --run DIR and --task N (1-based)");
        goto bad;
    }
    char path[CLV_PATH_LEN + 64];
    if (!out) {
        snprintf(path, sizeof path, "%s/export-task-%02d.safetensors", run, task);
        out = path;
    }
    clv_export_info info;
    if (clv_export_task(run, task - 1, out, &info, &err)) {
        fprintf(stderr, "clvit export: %s\n", err.msg);
        return 1;
    }
    printf("%s: task %d of %s, %d classes, %d tensors in %s names (%d weight layers adapted, %d scales folded)\n",
           out, task, run, info.classes, info.tensors, info.layout, info.adapted, info.scaled);
    return 0;
bad:
    fprintf(stderr, "clvit export: %s\n", err.msg);
    return 2;
}
