/* Prediction without a task id (task-agnostic inference).
 *
 * Every learned task classifies the image with its own backbone function
 * and head; the task whose head is most confident is chosen:
 *   maxprob  the largest softmax probability (highest wins)
 *   entropy  the softmax's entropy divided by ln(classes), in [0, 1], so
 *            heads of different class counts compare (lowest wins)
 * Ties go to the earlier task. Cost: one backbone forward per task and
 * image, run a batch at a time through every task; tasks whose backbone
 * function is the same (finetune, linear: activating another task changes
 * no weight and attaches no adapter) share one forward and differ only in
 * their heads.
 *
 * `clvit eval --task-agnostic` routes every learned task's test images
 * among all learned tasks and reports, per task, how many were routed to
 * it and how many got both the task and the class right (accuracy over the
 * union of all tasks' classes), and writes them into run.json under
 * "task_agnostic" (see docs/methods.md). */
#ifndef CLVIT_TASK_SELECT_H
#define CLVIT_TASK_SELECT_H

#include "clvit/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CLV_SELECT_MAXPROB = 0, CLV_SELECT_ENTROPY = 1 } clv_task_select;

/* "maxprob" | "entropy"; an error naming --task-select otherwise. */
int clv_task_select_parse(const char *s, clv_task_select *out, clv_err *err);
const char *clv_task_select_name(clv_task_select sel);

/* One row of logits: its most likely label, that label's probability, and
 * the normalized entropy (0 for a single class). */
void clv_task_scores(const float *logits, int K, int *label, double *maxprob, double *entropy);
/* Whether scores (maxprob a, entropy b) beat (maxprob c, entropy d) under sel. */
int clv_task_scores_better(clv_task_select sel, double a_maxprob, double a_entropy, double c_maxprob,
                           double c_entropy);

/* What the router chose for one image. */
typedef struct clv_route {
    int task;        /* 0-based */
    int label;       /* local label within that task */
    double maxprob;  /* the chosen task's scores */
    double entropy;
} clv_route;

/* The task-agnostic evaluation of a run's learned tasks. */
typedef struct clv_agnostic {
    clv_task_select select;
    int n_tasks;        /* tasks of the run (unlearned ones have 0 images) */
    int64_t *images;    /* [n_tasks] test images of each learned task */
    int64_t *routed;    /* [n_tasks x n_tasks]: routed[t * n + u] = images of task t routed to u */
    int64_t *correct;   /* [n_tasks] images of t routed to t with the right class */
    int groups;         /* backbone forwards per image (tasks sharing a backbone count once) */
    double seconds;
} clv_agnostic;

void clv_agnostic_free(clv_agnostic *a);
/* Percent of task t's images routed to t, and with task and class right (NAN without images). */
double clv_agnostic_routing(const clv_agnostic *a, int t);
double clv_agnostic_accuracy(const clv_agnostic *a, int t);
/* Means over the learned tasks. */
double clv_agnostic_mean_routing(const clv_agnostic *a);
double clv_agnostic_mean_accuracy(const clv_agnostic *a);

/* Evaluates run_dir task-agnostically (threads > 0 overrides the run's, and
 * so does precision >= 0, a clv_precision);
 * with write, records the result in run_dir/run.json under "task_agnostic"
 * (holding the run's lock, so never beside a training process). */
int clv_eval_task_agnostic(const char *run_dir, int threads, int precision, clv_task_select sel, int write, clv_agnostic *out,
                           clv_err *err);

#ifdef __cplusplus
}
#endif
#endif
