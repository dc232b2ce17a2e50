/* The parts of run.json that say whether a run and its tasks worked:
 * per task "masks" (mask density), "warnings", "epoch_loss" and
 * "epoch_train_accuracy"; the run's "warnings". Written and read by
 * run_record.c. Internal. */
#ifndef CLVIT_IO_RUN_RECORD_CHECKS_H
#define CLVIT_IO_RUN_RECORD_CHECKS_H

#include <cjson/cJSON.h>

#include "clvit/run_record.h"

void run_checks_task_to_json(cJSON *task_object, const clv_task_record *tr);
int run_checks_task_from_json(const cJSON *task_object, clv_task_record *tr, const char *path, int task,
                              clv_err *err);
void run_checks_run_to_json(cJSON *root, const clv_run_record *r);
int run_checks_run_from_json(const cJSON *root, clv_run_record *r, const char *path, clv_err *err);

#endif
