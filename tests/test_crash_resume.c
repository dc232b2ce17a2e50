/* What a run killed at any moment (SIGKILL: no handler, no last
 * checkpoint) leaves behind, resumed with --resume, ends as the
 * uninterrupted run, file for file: tests/crash_check.sh does it with real
 * kills; these are its findings, made deterministic. Skipped when the
 * Debian dataset is absent. */
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/trainer.h"
#include "read_whole.h"
#include "tmp_tree.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

/* crash_check.sh's run, 2 tasks: 4 steps an epoch, 2 epochs, a checkpoint every 3 steps */
static void config(clv_config *c, const char *method)
{
    clv_config_defaults(c);
    snprintf(c->method, sizeof c->method, "%s", method);
    c->tasks = 2;
    c->train_limit = 128;
    c->test_limit = 100;
    c->epochs = 2;
    c->batch = 32;
    c->checkpoint_every = 3;
    c->threads = 2;
    c->seed = 7;
}

static int run(const clv_config *c, const char *dir, int resume, int64_t stop_after)
{
    clv_train_opts o = {.out_dir = dir, .resume = resume, .overwrite = !resume, .stop_after_steps = stop_after};
    clv_err err = {{0}};
    int rc = clv_train_run(c, &o, &err);
    cr_assert(rc == 0 || rc == CLV_STOPPED, "%s (%s, resume %d)", err.msg, dir, resume);
    return rc;
}

/* name is the same, byte for byte, in both run directories */
static void same_file(const char *a, const char *b, const char *name, const char *what)
{
    size_t la = 0, lb = 0;
    char *fa = read_whole_in(a, name, &la), *fb = read_whole_in(b, name, &lb);
    cr_assert_not_null(fa, "%s: %s/%s missing", what, a, name);
    cr_assert_not_null(fb, "%s: %s/%s missing", what, b, name);
    cr_expect(la == lb && !memcmp(fa, fb, la), "%s: %s differs from the uninterrupted run's", what, name);
    free(fa);
    free(fb);
}

static void same_run(const char *a, const char *b, int tasks, const char *what)
{
    char name[64];
    same_file(a, b, "base.safetensors", what);
    same_file(a, b, "results.csv", what);
    for (int t = 0; t < tasks; t++) {
        snprintf(name, sizeof name, "task-%02d.safetensors", t + 1);
        same_file(a, b, name, what);
    }
}

static void remove_file(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

/* crash_check's retry: a run made again with --overwrite in the directory
 * of an earlier, finished one (same settings), killed inside task 1 (the
 * base task) before its first checkpoint (step 3), or after it, then
 * resumed. The earlier run's base.safetensors was once loaded as the
 * backbone, though no task of this run had made it: piggyback and maskrkr
 * ended with task 1 at 82% instead of 45%. */
static void killed_in_task_1_of_an_overwritten_run(const char *method)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char a[64], b[64], what[128];
    snprintf(a, sizeof a, "/tmp/clvit-crash-a-XXXXXX");
    snprintf(b, sizeof b, "/tmp/clvit-crash-b-XXXXXX");
    cr_assert(mkdtemp(a) && mkdtemp(b));
    clv_config c;
    config(&c, method);
    cr_assert_eq(run(&c, a, 0, 0), 0);
    static const int stops[] = {2, 5};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(run(&c, b, 0, 0), 0); /* the earlier run */
        cr_assert_eq(run(&c, b, 0, stops[i]), CLV_STOPPED);
        if (stops[i] < c.checkpoint_every)
            remove_file(b, "state.safetensors"); /* a kill leaves no checkpoint before step 3 */
        cr_assert_eq(run(&c, b, 1, 0), 0);
        snprintf(what, sizeof what, "%s killed after step %d of task 1", method, stops[i]);
        same_run(a, b, c.tasks, what);
    }
    tmp_tree_remove(a);
    tmp_tree_remove(b);
}

Test(crash_resume, piggyback_killed_in_task_1_ends_the_same, .timeout = 300)
{
    killed_in_task_1_of_an_overwritten_run("piggyback");
}
Test(crash_resume, maskrkr_killed_in_task_1_ends_the_same, .timeout = 300)
{
    killed_in_task_1_of_an_overwritten_run("maskrkr");
}
Test(crash_resume, rkr_killed_in_task_1_ends_the_same, .timeout = 300)
{
    killed_in_task_1_of_an_overwritten_run("rkr");
}

static void copy_file(const char *from_dir, const char *to_dir, const char *name, const char *to_name)
{
    size_t len = 0;
    char *buf = read_whole_in(from_dir, name, &len), path[256];
    cr_assert_not_null(buf, "%s/%s", from_dir, name);
    snprintf(path, sizeof path, "%s/%s", to_dir, to_name);
    FILE *f = fopen(path, "wb");
    cr_assert(f && fwrite(buf, 1, len, f) == len && !fclose(f), "%s", path);
    free(buf);
}

static int exists(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return !access(path, F_OK);
}

/* A kill after run.json recorded a task as learned and before its
 * checkpoint was removed leaves the task's last state.safetensors: --resume
 * refused ("state.safetensors is for task 1 step 8, expected task 2"), or,
 * after the last task, ended with the file still there. It is dropped. */
Test(crash_resume, a_checkpoint_of_a_recorded_task_is_dropped, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char a[64] = "/tmp/clvit-crash-a-XXXXXX", b[64] = "/tmp/clvit-crash-b-XXXXXX";
    cr_assert(mkdtemp(a) && mkdtemp(b));
    clv_config c;
    config(&c, "piggyback");
    cr_assert_eq(run(&c, a, 0, 0), 0);
    const int steps = 8; /* a task's */
    for (int task = 1; task <= c.tasks; task++) {
        /* task's checkpoint after its last step, kept aside; then the task recorded as learned */
        cr_assert_eq(run(&c, b, 0, task * steps), CLV_STOPPED);
        copy_file(b, b, "state.safetensors", "kept");
        cr_assert_eq(run(&c, b, 1, task < c.tasks ? 1 : 0), task < c.tasks ? CLV_STOPPED : 0);
        copy_file(b, b, "kept", "state.safetensors");
        remove_file(b, "kept");
        cr_assert_eq(run(&c, b, 1, 0), 0);
        cr_expect_not(exists(b, "state.safetensors"), "task %d's checkpoint is removed", task);
        char what[64];
        snprintf(what, sizeof what, "resumed with task %d's checkpoint left", task);
        same_run(a, b, c.tasks, what);
    }
    tmp_tree_remove(a);
    tmp_tree_remove(b);
}

/* crash_check.sh, CRASH_SEED=58526 (kill 4, maskrkr, rename:46): killed
 * right after the last task's run.json was renamed into place, before
 * results.csv had its rows (and before the checkpoint's removal). --resume
 * found every task recorded as learned, dropped the checkpoint and ended
 * with results.csv one row of the matrix short. A resume now writes
 * results.csv again from run.json, the record every other file follows. */
Test(crash_resume, results_csv_behind_run_json_is_written_again, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char a[64] = "/tmp/clvit-crash-a-XXXXXX", b[64] = "/tmp/clvit-crash-b-XXXXXX";
    cr_assert(mkdtemp(a) && mkdtemp(b));
    clv_config c;
    config(&c, "maskrkr");
    cr_assert_eq(run(&c, a, 0, 0), 0);
    const int steps = 8; /* a task's */
    /* the last task trained, not yet recorded: results.csv holds the tasks before it */
    cr_assert_eq(run(&c, b, 0, c.tasks * steps), CLV_STOPPED);
    copy_file(b, b, "state.safetensors", "kept-state");
    copy_file(b, b, "results.csv", "kept-results");
    cr_assert_eq(run(&c, b, 1, 0), 0);
    /* what the kill left: run.json complete, results.csv and the checkpoint from before */
    copy_file(b, b, "kept-state", "state.safetensors");
    copy_file(b, b, "kept-results", "results.csv");
    remove_file(b, "kept-state");
    remove_file(b, "kept-results");
    cr_assert_eq(run(&c, b, 1, 0), 0);
    cr_expect_not(exists(b, "state.safetensors"), "the last task's checkpoint is removed");
    same_run(a, b, c.tasks, "resumed with run.json ahead of results.csv");
    tmp_tree_remove(a);
    tmp_tree_remove(b);
}
