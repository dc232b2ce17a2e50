/* Task sequences of task-incremental learning: a dataset's classes split
 * into T disjoint tasks of equal size, in natural order or shuffled by a
 * seed. Each task has its own local labels 0..K-1 and its own head; the task
 * id is given at evaluation. */
#ifndef CLVIT_TASKS_H
#define CLVIT_TASKS_H

#include "clvit/data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_task_info {
    int *classes;           /* n_classes global class ids; local label k = classes[k] */
    int n_classes;
    int64_t *train_indices; /* samples of the train set in this task, ascending */
    int32_t *train_labels;  /* their local labels */
    int64_t n_train;
    int64_t *test_indices;
    int32_t *test_labels;
    int64_t n_test;
} clv_task_info;

typedef struct clv_task_split {
    clv_task_info *tasks;
    int n_tasks;
} clv_task_split;

/* Splits the classes of train (test must have the same number of classes)
 * into n_tasks tasks. Errors: n_tasks < 1, classes not divisible by n_tasks,
 * a task without training or test images. shuffled: class order permuted by
 * (seed, CLV_STREAM_CLASSES); otherwise 0, 1, 2, ... */
int clv_task_split_make(clv_task_split *split, const clv_dataset *train, const clv_dataset *test, int n_tasks,
                        int shuffled, uint64_t seed, clv_err *err);
/* Keeps at most train_limit training and test_limit test images per task
 * (0: all), spread evenly over the task's images in their order: the i-th
 * kept is image floor(i n / limit). Files list a task's images class by
 * class, so the first N would drop whole classes; an even spread keeps each
 * class's share. */
void clv_task_split_limit(clv_task_split *split, int64_t train_limit, int64_t test_limit);
void clv_task_split_free(clv_task_split *split);

#ifdef __cplusplus
}
#endif
#endif
