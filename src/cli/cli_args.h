/* Shared command-line handling: settings flags (the spelling of the config
 * table), --config, --set, and small parsing helpers. */
#ifndef CLVIT_CLI_ARGS_H
#define CLVIT_CLI_ARGS_H

#include <stddef.h>

#include "clvit/config.h"

/* Applies --config FILE first, then every --set k=v and --<setting> value in
 * order. A boolean setting is a switch: --augment alone (or followed by
 * true/false, 1/0, yes/no, on/off) and --no-augment. A bad value is
 * reported under the flag typed. Arguments it does not know are left for the caller: their indices
 * are written to rest (rest_count of them). Returns 0, or -1 with err set. */
int clv_cli_apply_settings(clv_config *cfg, int argc, char **argv, int *rest, int *rest_count, int *any_set,
                           clv_err *err);
/* Value of a "--name value" / "--name=value" option at argv[*i]; advances *i. NULL if argv[*i] is not it. */
const char *clv_cli_option(int argc, char **argv, int *i, const char *name, clv_err *err, int *failed);
int clv_cli_is_flag(const char *arg, const char *name);
/* " (did you mean --epochs?)" when arg ("--epoch") is a small edit away from
 * one of names (without "--", NULL-terminated) or, when settings is 1, from
 * a setting's flag; "" otherwise. Writes into buf and returns it. */
const char *clv_cli_suggest(const char *arg, const char *const *names, int settings, char *buf, size_t len);
int clv_cli_parse_int(const char *s, const char *what, int lo, int hi, int *out, clv_err *err);
void clv_cli_die(const clv_err *err);

#endif
