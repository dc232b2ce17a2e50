/* The settings of the tests' end-to-end runs (tiny_run.h). */
#include "tiny_run.h"

#include <stdio.h>

void tiny_run_config(clv_config *c, const char *method, int tasks)
{
    clv_config_defaults(c);
    snprintf(c->method, sizeof c->method, "%s", method);
    c->tasks = tasks;
    c->train_limit = 64;
    c->test_limit = 32;
    c->epochs = 1;
    c->batch = 32;
    c->threads = 2;
    c->eval_batch = 64;
    c->seed = 5;
}
