/* clvit inspect: the tensors (name, dtype, shape) and metadata of a safetensors file. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "clvit/safetensors.h"

int clv_cmd_inspect(int argc, char **argv)
{
    int as_json = 0, nfiles = 0, status = 0;
    for (int i = 1; i < argc; i++) {
        if (clv_cli_is_flag(argv[i], "help") || !strcmp(argv[i], "-h")) {
            printf("usage: clvit inspect [--json] FILE.safetensors...\n\nLists every tensor (name, dtype, shape, "
                   "bytes) and the metadata of each file.\n");
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
        clv_st_print(&st, stdout, as_json);
        clv_st_close(&st);
    }
    if (!nfiles) {
        fprintf(stderr, "clvit inspect: no file given (clvit inspect FILE.safetensors)\n");
        return 2;
    }
    return status;
}
