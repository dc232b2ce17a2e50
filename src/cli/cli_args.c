/* Command-line helpers shared by the subcommands. */
#include "cli/cli_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int clv_cli_is_flag(const char *arg, const char *name)
{
    return arg[0] == '-' && arg[1] == '-' && !strcmp(arg + 2, name);
}

const char *clv_cli_option(int argc, char **argv, int *i, const char *name, clv_err *err, int *failed)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, "--", 2) || strncmp(a + 2, name, n))
        return NULL;
    if (a[2 + n] == '=')
        return a + 3 + n;
    if (a[2 + n])
        return NULL;
    if (*i + 1 >= argc) {
        clv_errf(err, "--%s needs a value", name);
        *failed = 1;
        return NULL;
    }
    return argv[++*i];
}

int clv_cli_parse_int(const char *s, const char *what, int lo, int hi, int *out, clv_err *err)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return clv_errf(err, "%s: '%s' is not an integer in [%d, %d]", what, s, lo, hi);
    *out = (int)v;
    return 0;
}

int clv_cli_apply_settings(clv_config *cfg, int argc, char **argv, int *rest, int *rest_count, int *any_set,
                           clv_err *err)
{
    int failed = 0;
    *rest_count = 0;
    if (any_set)
        *any_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = clv_cli_option(argc, argv, &i, "config", err, &failed);
        if (failed)
            return -1;
        if (v) {
            if (clv_config_load_ini(cfg, v, err))
                return -1;
            if (any_set)
                *any_set = 1;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v;
        if ((v = clv_cli_option(argc, argv, &i, "config", err, &failed)) || failed) {
            if (failed)
                return -1;
            continue;
        }
        if ((v = clv_cli_option(argc, argv, &i, "set", err, &failed)) || failed) {
            if (failed || clv_config_set_assignment(cfg, v, err))
                return -1;
            if (any_set)
                *any_set = 1;
            continue;
        }
        if (!strncmp(a, "--", 2)) {
            char name[128];
            snprintf(name, sizeof name, "%s", a + 2);
            char *eq = strchr(name, '=');
            if (eq)
                *eq = 0;
            const clv_setting *s = clv_config_find_flag(name);
            if (s) {
                v = clv_cli_option(argc, argv, &i, name, err, &failed);
                if (failed || clv_config_set(cfg, s, v, err))
                    return -1;
                if (any_set)
                    *any_set = 1;
                continue;
            }
        }
        rest[(*rest_count)++] = i;
    }
    return 0;
}

void clv_cli_die(const clv_err *err)
{
    fprintf(stderr, "clvit: %s\n", err->msg);
    exit(1);
}
