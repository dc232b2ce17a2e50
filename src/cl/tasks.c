/* Task splits of task-incremental learning (see clvit/tasks.h). */
#include "clvit/tasks.h"

#include <stdlib.h>
#include <string.h>

static int collect(const clv_dataset *ds, const int *local_of, int task_of_class_target, const int *task_of,
                   int64_t **idx, int32_t **lab, int64_t *n, clv_err *err)
{
    int64_t count = 0;
    for (int64_t i = 0; i < ds->n; i++)
        count += task_of[ds->labels[i]] == task_of_class_target;
    *idx = malloc((size_t)(count ? count : 1) * sizeof **idx);
    *lab = malloc((size_t)(count ? count : 1) * sizeof **lab);
    if (!*idx || !*lab)
        return clv_errf(err, "out of memory");
    int64_t k = 0;
    for (int64_t i = 0; i < ds->n; i++)
        if (task_of[ds->labels[i]] == task_of_class_target) {
            (*idx)[k] = i;
            (*lab)[k] = local_of[ds->labels[i]];
            k++;
        }
    *n = count;
    return 0;
}

int clv_task_split_make(clv_task_split *split, const clv_dataset *train, const clv_dataset *test, int n_tasks,
                        int shuffled, uint64_t seed, clv_err *err)
{
    memset(split, 0, sizeof *split);
    const int C = train->num_classes;
    if (n_tasks < 1)
        return clv_errf(err, "the number of tasks must be at least 1 (got %d)", n_tasks);
    if (test->num_classes != C)
        return clv_errf(err, "%s has %d classes but %s has %d", train->path, C, test->path, test->num_classes);
    const int grouped = train->class_group != NULL;
    if (grouped && n_tasks != train->n_groups)
        return clv_errf(err, "%s has %d domains, one task each: set the number of tasks to %d, not %d", train->name,
                        train->n_groups, train->n_groups, n_tasks);
    if (!grouped && (C < n_tasks || C % n_tasks))
        return clv_errf(err, "%d classes of %s cannot be split into %d equal tasks", C, train->name, n_tasks);
    const int K = C / n_tasks; /* classes per task when not grouped */
    int64_t *order = malloc((size_t)C * sizeof *order);
    int *task_of = malloc((size_t)C * sizeof *task_of), *local_of = malloc((size_t)C * sizeof *local_of);
    split->tasks = calloc((size_t)n_tasks, sizeof *split->tasks);
    int rc = -1;
    if (!order || !task_of || !local_of || !split->tasks) {
        clv_errf(err, "out of memory");
        goto done;
    }
    split->n_tasks = n_tasks;
    if (shuffled)
        clv_rng_permutation(clv_rng_key(seed, CLV_STREAM_CLASSES, 0, 0), order, C);
    else
        for (int c = 0; c < C; c++)
            order[c] = c;
    if (grouped) /* a group's classes in their order, groups in theirs: local labels count up per group */
        for (int c = 0; c < C; c++)
            order[c] = c;
    for (int p = 0; p < C; p++) {
        const int c = (int)order[p];
        task_of[c] = grouped ? train->class_group[c] : p / K;
        local_of[c] = split->tasks[task_of[c]].n_classes++;
    }
    for (int t = 0; t < n_tasks; t++) {
        clv_task_info *ti = &split->tasks[t];
        if (!ti->n_classes) {
            clv_errf(err, "task %d of %s has no classes", t + 1, train->name);
            goto done;
        }
        if (!(ti->classes = malloc((size_t)ti->n_classes * sizeof *ti->classes))) {
            clv_errf(err, "out of memory");
            goto done;
        }
        for (int c = 0; c < C; c++)
            if (task_of[c] == t)
                ti->classes[local_of[c]] = c;
        if (collect(train, local_of, t, task_of, &ti->train_indices, &ti->train_labels, &ti->n_train, err) ||
            collect(test, local_of, t, task_of, &ti->test_indices, &ti->test_labels, &ti->n_test, err))
            goto done;
        if (!ti->n_train || !ti->n_test) {
            clv_errf(err, "task %d (classes %d..) has no %s images in %s", t + 1, ti->classes[0],
                     ti->n_train ? "test" : "training", ti->n_train ? test->path : train->path);
            goto done;
        }
    }
    rc = 0;
done:
    free(order);
    free(task_of);
    free(local_of);
    if (rc)
        clv_task_split_free(split);
    return rc;
}

/* Keeps limit of n entries, the i-th being entry floor(i n / limit); in place. */
static void keep_spread(int64_t *idx, int32_t *lab, int64_t *n, int64_t limit)
{
    if (!limit || *n <= limit)
        return;
    for (int64_t i = 0; i < limit; i++) {
        const int64_t j = (int64_t)((__int128)i * *n / limit); /* j >= i: compacting forward is safe */
        idx[i] = idx[j];
        lab[i] = lab[j];
    }
    *n = limit;
}

void clv_task_split_limit(clv_task_split *split, int64_t train_limit, int64_t test_limit)
{
    for (int t = 0; t < split->n_tasks; t++) {
        clv_task_info *ti = &split->tasks[t];
        keep_spread(ti->train_indices, ti->train_labels, &ti->n_train, train_limit);
        keep_spread(ti->test_indices, ti->test_labels, &ti->n_test, test_limit);
    }
}

void clv_task_split_free(clv_task_split *split)
{
    for (int t = 0; split->tasks && t < split->n_tasks; t++) {
        clv_task_info *ti = &split->tasks[t];
        free(ti->classes);
        free(ti->train_indices);
        free(ti->train_labels);
        free(ti->test_indices);
        free(ti->test_labels);
    }
    free(split->tasks);
    memset(split, 0, sizeof *split);
}
