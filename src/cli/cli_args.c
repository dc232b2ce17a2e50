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

static int is_bool_word(const char *v)
{
    static const char *const words[] = {"true", "false", "1", "0", "yes", "no", "on", "off"};
    for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
        if (!strcmp(v, words[k]))
            return 1;
    return 0;
}

/* The settings table names a bad value by its INI key ("train.epochs: ...");
 * the user typed a flag, so the message names that flag instead. */
static void name_flag(clv_err *err, const clv_setting *s, const char *typed)
{
    char key[128], flag[128];
    snprintf(key, sizeof key, "%s.%s", s->section, s->key);
    snprintf(flag, sizeof flag, "%s", typed);
    char *eq = strchr(flag, '=');
    if (eq)
        *eq = 0;
    size_t n = strlen(key);
    if (strncmp(err->msg, key, n))
        return;
    /* the table's own form is "section.key (--flag): ..."; the typed flag replaces both */
    char both[160];
    snprintf(both, sizeof both, "%s (--%s)", key, s->flag);
    if (!strncmp(err->msg, both, strlen(both)))
        n = strlen(both);
    size_t fl = strlen(flag), rest = strlen(err->msg + n);
    if (fl + rest >= sizeof err->msg)
        return;
    memmove(err->msg + fl, err->msg + n, rest + 1);
    memcpy(err->msg, flag, fl);
}

/* Levenshtein distance of a and b (both short). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return (size_t)-1;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static void consider(const char *typed, const char *name, size_t *best, const char **pick)
{
    size_t d = edit_distance(typed, name);
    if (d < *best) {
        *best = d;
        *pick = name;
    }
}

const char *clv_cli_suggest(const char *arg, const char *const *names, int settings, char *buf, size_t len)
{
    buf[0] = 0;
    if (strncmp(arg, "--", 2))
        return buf;
    char typed[128];
    snprintf(typed, sizeof typed, "%s", arg + 2);
    char *eq = strchr(typed, '=');
    if (eq)
        *eq = 0;
    size_t best = (size_t)-1;
    const char *pick = NULL;
    for (int k = 0; names && names[k]; k++)
        consider(typed, names[k], &best, &pick);
    for (int k = 0; settings && k < clv_config_settings_count(); k++)
        consider(typed, clv_config_setting(k)->flag, &best, &pick);
    /* a typo, not another word: at most 1 edit in 4 letters, and never all of them */
    size_t n = strlen(typed), allowed = n / 4 > 0 ? n / 4 : 1;
    if (pick && best <= allowed && best < n)
        snprintf(buf, len, " (did you mean --%s?)", pick);
    return buf;
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
            const clv_setting *negated = !s && !strncmp(name, "no-", 3) ? clv_config_find_flag(name + 3) : NULL;
            const char *value = NULL;
            if (negated) {
                if (negated->type != CLV_SET_BOOL || eq)
                    return clv_errf(err, "--%s: only a switch has a --no- form, and it takes no value", name);
                s = negated;
                value = "false"; /* --no-augment */
            } else if (s && s->type == CLV_SET_BOOL && !eq)
                /* a switch: --augment alone is true; a boolean word after it is its value */
                value = i + 1 < argc && is_bool_word(argv[i + 1]) ? argv[++i] : "true";
            else if (s && !(value = clv_cli_option(argc, argv, &i, name, err, &failed)))
                return -1;
            if (s) {
                if (clv_config_set(cfg, s, value, err)) {
                    name_flag(err, s, a);
                    return -1;
                }
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
