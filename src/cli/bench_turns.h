/* clvit bench's side of bench/lockstep.py: taking turns with another
 * benchmark process, one step at a time (the protocol is in lockstep.py). */
#ifndef CLVIT_CLI_BENCH_TURNS_H
#define CLVIT_CLI_BENCH_TURNS_H

#include "clvit/core.h"

typedef struct {
    int rfd, wfd; /* -1, -1: no turns (a bench on its own) */
} clv_bench_turns;

/* "--turns R,W": two open file descriptors, the one to read "g" from and the one to write "r" to. */
int clv_bench_turns_parse(clv_bench_turns *t, const char *value, clv_err *err);

/* Before a step: says it is ready ("r") and waits for the go ("g"). Nothing to do without turns.
 * A runner that went away or wrote something else is an error. */
int clv_bench_turn(const clv_bench_turns *t, clv_err *err);

#endif
