/* The storage of a run, split the way the paper's comparison needs it
 * (docs/methods.md, "Storage accounting"):
 *   one-time  the base network (base_bits) and every "shared_*" kind of the
 *             done tasks (Mask-RKR's LM, RM, F, learned once);
 *   heads     each done task's "head";
 *   marginal  each done task's other kinds (its rectifications, masks,
 *             norms, backbone copy).
 * one-time + heads + marginal = base + the done tasks' stored_bits, in bits
 * and in elements. The marginal cost per task is the mean of the per-task
 * marginal figures over the "marginal tasks": the done tasks that do not pay
 * a one-time cost (storage.one_time_task unset). */
#ifndef CLVIT_STORAGE_SUMMARY_H
#define CLVIT_STORAGE_SUMMARY_H

#include "clvit/run_record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One task's stored bits (elements) split into its head, one-time kinds and the rest. */
typedef struct clv_task_split {
    int64_t head_bits, head_elements;
    int64_t one_time_bits, one_time_elements;
    int64_t marginal_bits, marginal_elements;
} clv_task_split;

void clv_storage_split_task(const clv_storage *s, clv_task_split *out);
/* 1 when the task counts in the mean marginal cost: done, no one-time task. */
int clv_storage_task_is_marginal(const clv_task_record *tr);

typedef struct clv_storage_summary {
    int64_t base_bits, base_elements;
    clv_storage one_time;                /* by kind: "base", then the shared_* kinds */
    int64_t one_time_bits, one_time_elements;
    int64_t head_bits, head_elements;         /* sums over the done tasks */
    int64_t marginal_bits, marginal_elements; /* sums over the done tasks, marginal or not */
    int64_t total_bits, total_elements;       /* base + every done task's stored_bits */
    int n_done, n_marginal;
    double head_bits_per_task, head_elements_per_task;         /* mean over done tasks; NAN if none */
    double marginal_bits_per_task, marginal_elements_per_task; /* mean over marginal tasks; NAN if none */
} clv_storage_summary;

void clv_storage_summarize(const clv_run_record *r, clv_storage_summary *out);

/* For run.json files written before elements and one-time tasks were recorded:
 * elements by kind from the bits (kinds ending in "_mask" hold 1 bit per
 * element, every other kind 32-bit floats) ... */
void clv_storage_infer_elements(clv_storage *s);
/* ... and the one-time tasks: in a maskrkr run the real-valued "lm", "rm",
 * "f" are the shared tensors (renamed "shared_*"); a task holding shared_*
 * kinds is a one-time task, and so is task 1 when it stores only its head
 * while a later done task stores more (the base was trained on it). */
void clv_storage_infer_one_time_tasks(clv_run_record *r, const char *method);

#ifdef __cplusplus
}
#endif
#endif
