/* metrics.csv: one row per optimizer step as a run trains, kept across a
 * stop and a resume without duplicates (rows past the resumed point,
 * also a half-written line, are dropped), and read back. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/metrics_log.h"
#include "clvit/trainer.h"
#include "tmp_tree.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

Test(metrics_log, begin_keeps_rows_before_the_resumed_point)
{
    char dir[] = "/tmp/clvit-metrics-XXXXXX", path[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    write_file(path, "task,epoch,step,loss,train_accuracy,lr,images_per_s\n"
                     "1,1,1,2.0,10.0,0.001,100.0\n1,1,2,1.5,20.0,0.001,100.0\n"
                     "2,1,1,1.0,50.0,0.001,100.0\n2,1,2,0.9,60.0,0.001,100.0\n2,2,3,0.8,70.0,0.001,100.0\n"
                     "2,2,4,0.7,80.0,0.001,100.0\n3,1,1,0.5,90.0,0.001,100.0\n3,1,2,0.4,9");
    clv_metrics_log m;
    clv_err err = {{0}};
    /* task 2 (0-based 1) resumes after 2 of its steps */
    cr_assert_eq(clv_metrics_log_begin(&m, dir, 1, 2, 2, 0, &err), 0, "%s", err.msg);
    clv_metrics_log_row(&m, 1, 3, 0.25, 48, 64, 5e-4);
    clv_metrics_log_end(&m);
    clv_metrics_row *rows;
    int n;
    cr_assert_eq(clv_metrics_read(path, &rows, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 5, "task 1's 2 rows, task 2's first 2, the new one; task 3 and the half line gone");
    cr_assert(rows[3].task == 2 && rows[3].step == 2 && rows[3].loss == 0.9);
    cr_assert(rows[4].task == 2 && rows[4].epoch == 2 && rows[4].step == 3);
    cr_assert_float_eq(rows[4].train_accuracy, 75.0, 1e-9);
    cr_assert_float_eq(rows[4].lr, 5e-4, 1e-12);
    cr_assert(rows[4].images_per_s > 0);
    free(rows);
    /* a fresh run (task 1 from its start) keeps nothing */
    cr_assert_eq(clv_metrics_log_begin(&m, dir, 0, 0, 2, 0, &err), 0, "%s", err.msg);
    clv_metrics_log_end(&m);
    cr_assert_eq(clv_metrics_read(path, &rows, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 0);
    free(rows);
    /* malformed rows are refused naming the line; no file: 1 */
    write_file(path, "task,epoch,step,loss,train_accuracy,lr,images_per_s\n1,1,1,2.0,10.0,0.001,100.0\n1,x,2\n");
    cr_assert_eq(clv_metrics_read(path, &rows, &n, &err), -1);
    cr_assert(strstr(err.msg, "line 3"), "%s", err.msg);
    unlink(path);
    cr_assert_eq(clv_metrics_read(path, &rows, &n, &err), 1);
    tmp_tree_remove(dir);
}

static void config(clv_config *c)
{
    clv_config_defaults(c);
    c->tasks = 2;
    c->train_limit = 256; /* 4 steps of 64 an epoch */
    c->test_limit = 50;
    c->epochs = 2;
    c->batch = 64;
    c->threads = 1;
    c->checkpoint_every = 3;
    c->seed = 3;
    snprintf(c->method, sizeof c->method, "linear");
}

static int train(const clv_config *c, const char *dir, int resume, int64_t stop_after)
{
    clv_train_opts o = {.out_dir = dir, .resume = resume, .overwrite = !resume, .stop_after_steps = stop_after};
    clv_err err = {{0}};
    int rc = clv_train_run(c, &o, &err);
    cr_assert(rc == 0 || rc == CLV_STOPPED, "%s", err.msg);
    return rc;
}

static void read_rows(const char *dir, clv_metrics_row **rows, int *n)
{
    char path[128];
    clv_err err = {{0}};
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    cr_assert_eq(clv_metrics_read(path, rows, n, &err), 0, "%s", err.msg);
}

Test(metrics_log, one_row_per_step_across_a_stop_and_resume, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char dir[] = "/tmp/clvit-metrics-run-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    clv_config c;
    config(&c);
    /* stopped in task 1's second epoch (a checkpoint at step 6): its 6 rows are on disk */
    cr_assert_eq(train(&c, dir, 0, 6), CLV_STOPPED);
    clv_metrics_row *rows;
    int n;
    read_rows(dir, &rows, &n);
    cr_assert_eq(n, 6);
    cr_assert(rows[5].task == 1 && rows[5].epoch == 2 && rows[5].step == 6);
    free(rows);
    /* what a process killed after its checkpoint leaves: rows the resumed run will write again */
    char path[128];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *f = fopen(path, "a");
    cr_assert_not_null(f);
    fputs("1,2,7,0.5,50.0,0.001,100.0\n1,2,8,0.5,50.0,0.001,100.0\n2,1,", f);
    fclose(f);
    cr_assert_eq(train(&c, dir, 1, 0), 0);
    read_rows(dir, &rows, &n);
    cr_assert_eq(n, 16, "2 tasks x 2 epochs x 4 steps, each once");
    for (int i = 0; i < 16; i++) {
        int task = i / 8 + 1, step = i % 8 + 1;
        cr_assert(rows[i].task == task && rows[i].step == step && rows[i].epoch == (step - 1) / 4 + 1,
                  "row %d: task %d epoch %d step %lld", i, rows[i].task, rows[i].epoch, (long long)rows[i].step);
        cr_assert(isfinite(rows[i].loss) && rows[i].loss > 0 && rows[i].lr > 0 && rows[i].images_per_s > 0);
        cr_assert(rows[i].train_accuracy >= 0 && rows[i].train_accuracy <= 100);
    }
    cr_assert(rows[0].loss != 0.5 || rows[6].loss != 0.5, "the planted rows were replaced");
    free(rows);
    tmp_tree_remove(dir);
}
