/* clvit inspect: the tensors (name, dtype, shape) and metadata of a safetensors file. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "clvit/ckpt_layout.h"
#include "clvit/safetensors.h"

int clv_cmd_inspect(int argc, char **argv)
{
    int as_json = 0, nfiles = 0, status = 0;
    for (int i = 1; i < argc; i++) {
        if (clv_cli_is_flag(argv[i], "help") || !strcmp(argv[i], "-h")) {
            printf("usage: clvit inspect [--json] FILE.safetensors...\n\nLists every tensor (name, dtype, shape, "
                   "bytes) and the metadata of each file, after its layout: which naming of which family it "
                   "uses\n(timm ViT, timm 0.6 or >= 0.9 Swin, torchvision/timm ResNet), its classifier head and "
                   "what clvit cannot load.\n");
            return 0;
        }
        if (clv_cli_is_flag(argv[i], "json"))
            as_json = 1;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "clvit inspect: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            continue;
        nfiles++;
        clv_safetensors st;
        clv_err err = {{0}};
        if (clv_st_open(&st, argv[i], &err)) {
            fprintf(stderr, "clvit inspect: %s\n", err.msg);
            status = 1;
            continue;
        }
        if (!as_json)
            printf("%s\n", argv[i]);
        /* which naming of which family (clvit/ckpt_layout.h); clvit's own files say what they are */
        clv_ckpt_layout l;
        clv_ckpt_layout_of_file(&st, &l);
        char desc[512];
        clv_ckpt_layout_describe(&l, desc, sizeof desc);
        const char *format = clv_st_meta(&st, "format");
        if (format && l.kind == CLV_LAYOUT_UNKNOWN)
            snprintf(desc, sizeof desc, "%s (a clvit file: a task's head and tensors, or a checkpoint)", format);
        const char *extra[] = {"layout", desc};
        clv_st_print_with(&st, stdout, as_json, extra, 1);
        clv_st_close(&st);
    }
    if (!nfiles) {
        fprintf(stderr, "clvit inspect: no file given (clvit inspect FILE.safetensors)\n");
        return 2;
    }
    return status;
}
