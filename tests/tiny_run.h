/* The settings of the tests' end-to-end runs: a few dozen images per task,
 * one epoch, so that a whole run takes a second or two. */
#ifndef CLVIT_TESTS_TINY_RUN_H
#define CLVIT_TESTS_TINY_RUN_H

#include "clvit/config.h"

/* Defaults, then: method, tasks, 64 train / 32 test images per task, 1 epoch,
 * batch 32, 2 threads, eval batch 64, seed 5. */
void tiny_run_config(clv_config *c, const char *method, int tasks);

#endif
