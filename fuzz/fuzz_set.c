/* libFuzzer harness: settings on the command line (--set section.key=value,
 * --<flag> value, --<flag>=value; src/cli/cli_args.c and the settings table
 * of src/core/config.c). The input is the argument list, one argument a
 * line. --config is dropped: it would open whatever file the input names
 * (the INI harness covers that reader). */
#include "fuzz_config.h"

#include "cli/cli_args.h"

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char *argv[MAX_ARGS + 1] = {"clvit-train"};
    int argc = 1;
    for (char *save = NULL, *a = strtok_r(text, "\n", &save); a && argc < MAX_ARGS; a = strtok_r(NULL, "\n", &save))
        if (strncmp(a, "--config", 8))
            argv[argc++] = a;
    argv[argc] = NULL;
    clv_config c;
    clv_config_defaults(&c);
    clv_err err = {{0}};
    int rest[MAX_ARGS], n_rest = 0, any = 0;
    int rc = clv_cli_apply_settings(&c, argc, argv, rest, &n_rest, &any, &err);
    fuzz_check_err(rc, &err);
    if (!rc) {
        for (int i = 0; i < n_rest; i++)
            if (rest[i] < 1 || rest[i] >= argc)
                abort();
        fuzz_use_config(&c);
    }
    free(text);
    return 0;
}
