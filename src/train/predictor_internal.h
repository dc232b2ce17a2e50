/* What the predictor lends the library's other users of a loaded run
 * (export). Internal to the library. */
#ifndef CLVIT_TRAIN_PREDICTOR_INTERNAL_H
#define CLVIT_TRAIN_PREDICTOR_INTERNAL_H

#include "clvit/predictor.h"
#include "train/run_internal.h"

/* The run behind p with its backbone switched to task (which must be ready). */
clv_run *clv_predictor_activate_run(clv_predictor *p, int task, clv_err *err);

#endif
