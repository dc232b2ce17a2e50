/* Prediction with learned weights: either a run directory (any finished
 * task, with that task's backbone function and head) or a model name plus a
 * safetensors file (a backbone with timm names and one head; the class
 * count comes from head.weight's shape). Images are presented as in
 * training: pixels scaled to [0, 1], normalized with the mean/std of the
 * file's metadata (or of the run's data), brought to the model's input. */
#ifndef CLVIT_PREDICTOR_H
#define CLVIT_PREDICTOR_H

#include "clvit/data.h"
#include "clvit/precision.h"
#include "clvit/task_select.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_predictor clv_predictor;

clv_predictor *clv_predictor_from_run(const char *run_dir, clv_err *err);
/* mean/std NULL: from the file's metadata, else 0.5 (with a warning). */
clv_predictor *clv_predictor_from_weights(const char *model, const char *weights, const float *mean,
                                          const float *std, clv_err *err);
void clv_predictor_free(clv_predictor *p);
/* Runs the backbone's GEMMs in precision prec from now on (default: the
 * run's train.precision, fp32 for --weights). -1 (err set) when out of memory. */
int clv_predictor_set_precision(clv_predictor *p, clv_precision prec, clv_err *err);

int clv_predictor_n_tasks(const clv_predictor *p);
/* Whether task (0-based) can be predicted (finished in the run). */
int clv_predictor_task_ready(const clv_predictor *p, int task);
int clv_predictor_classes(const clv_predictor *p, int task);
/* Global class id of local label k of task (the run's split; identity for a weights file). */
int clv_predictor_class_id(const clv_predictor *p, int task, int k);
/* Name of local label k of task (the run.json's class_names); NULL when the run records none. */
const char *clv_predictor_class_name(const clv_predictor *p, int task, int k);
/* The presentation (model size, channels, normalization). */
const clv_present *clv_predictor_present(const clv_predictor *p);
/* Logits (B x classes) for B presented images x (B x C x H x W). */
int clv_predictor_logits(clv_predictor *p, int task, const float *x, int64_t B, float *logits, clv_err *err);

/* --task auto: B images through every learned task, the most confident
 * chosen per image (clvit/task_select.h); out[B]. */
int clv_predictor_route(clv_predictor *p, clv_task_select sel, const float *x, int64_t B, clv_route *out,
                        clv_err *err);
/* After clv_predictor_route: task's logits for image b (NULL: not learned). */
const float *clv_predictor_routed_logits(const clv_predictor *p, int task, int64_t b);

#ifdef __cplusplus
}
#endif
#endif
