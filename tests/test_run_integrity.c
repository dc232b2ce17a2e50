/* A run directory that lost a file it needs is an error, never a silent
 * fallback: with base.safetensors gone, predict and --resume once ran the
 * learned tasks on a freshly initialized backbone and exited 0. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clvit/param.h"
#include "clvit/predictor.h"
#include "clvit/safetensors.h"
#include "clvit/trainer.h"
#include "tmp_tree.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

Test(run_integrity, a_missing_base_is_an_error, .timeout = 120)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    clv_config cfg;
    clv_config_defaults(&cfg);
    snprintf(cfg.method, sizeof cfg.method, "rkr");
    cfg.tasks = 5;
    cfg.train_limit = 128;
    cfg.test_limit = 50;
    cfg.threads = 2;
    char dir[] = "/tmp/clvit-integrity-XXXXXX", path[128];
    cr_assert_not_null(mkdtemp(dir));
    clv_err err = {{0}};
    /* two tasks learned, then stopped: a run to resume and to predict with */
    clv_train_opts o = {.out_dir = dir, .overwrite = 1, .stop_after_steps = 3};
    cfg.epochs = 1;
    int rc = clv_train_run(&cfg, &o, &err);
    cr_assert_eq(rc, CLV_STOPPED, "%s", err.msg);
    clv_predictor *p = clv_predictor_from_run(dir, &err);
    cr_assert_not_null(p, "the intact run opens: %s", err.msg);
    clv_predictor_free(p);

    snprintf(path, sizeof path, "%s/base.safetensors", dir);
    cr_assert_eq(unlink(path), 0);
    cr_expect_null(clv_predictor_from_run(dir, &err), "predict refuses");
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "missing") && strstr(err.msg, "1 task"), "%s", err.msg);
    clv_train_opts r = {.out_dir = dir, .resume = 1};
    cr_expect_eq(clv_train_run(&cfg, &r, &err), -1, "resume refuses");
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "missing"), "%s", err.msg);
    tmp_tree_remove(dir);
}

/* What the trainer checks before a task's tensors are saved: a step can leave
 * weights non-finite although the loss it measured was finite. */
Test(run_integrity, non_finite_parameters_are_found)
{
    clv_params ps;
    clv_params_init(&ps);
    clv_err err = {{0}};
    const int64_t sa[1] = {3}, sb[2] = {2, 2};
    clv_param *a = clv_params_add(&ps, "a", 1, sa, &err), *b = clv_params_add(&ps, "b", 2, sb, &err);
    cr_assert(a && b, "%s", err.msg);
    int64_t at = -1;
    cr_expect_null(clv_params_first_nonfinite(&ps, &at), "zeros are finite");
    b->data[2] = 1e30f;
    cr_expect_null(clv_params_first_nonfinite(&ps, &at), "large but finite");
    b->data[3] = INFINITY;
    cr_expect_eq(clv_params_first_nonfinite(&ps, &at), b);
    cr_expect_eq(at, 3);
    a->data[1] = NAN;
    cr_expect_eq(clv_params_first_nonfinite(&ps, &at), a, "the first parameter in order");
    cr_expect_eq(at, 1);
    clv_params_free(&ps);
}

static void flip_last_byte(const char *path)
{
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f, "%s", path);
    fseek(f, -1, SEEK_END);
    int c = fgetc(f);
    fseek(f, -1, SEEK_END);
    fputc(c ^ 0x01, f);
    fclose(f);
}

static int eval_ok(const char *dir, clv_err *err)
{
    clv_run_record rec;
    clv_config saved;
    double *now = NULL;
    if (clv_eval_run(dir, 1, -1, &rec, &saved, &now, err))
        return -1;
    clv_run_record_free(&rec);
    free(now);
    return 0;
}

/* A flipped bit or a cut in a run's files is found by their checksums when
 * the run is read back (eval, predict, --resume), and the message names the
 * file and says what to do: a damaged checkpoint can be deleted (the task
 * in progress restarts), a learned task's file cannot be remade. */
Test(run_integrity, damaged_files_are_named_with_what_to_do, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    clv_config cfg;
    clv_config_defaults(&cfg);
    snprintf(cfg.method, sizeof cfg.method, "rkr");
    cfg.tasks = 5;
    cfg.train_limit = 128; /* 2 steps a task */
    cfg.test_limit = 50;
    cfg.threads = 1;
    char dir[] = "/tmp/clvit-damage-XXXXXX", task[128], state[128], base[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(task, sizeof task, "%s/task-01.safetensors", dir);
    snprintf(state, sizeof state, "%s/state.safetensors", dir);
    snprintf(base, sizeof base, "%s/base.safetensors", dir);
    clv_err err = {{0}};
    /* task 1 learned, task 2 stopped after its first step: a checkpoint */
    clv_train_opts o = {.out_dir = dir, .overwrite = 1, .stop_after_steps = 3};
    cr_assert_eq(clv_train_run(&cfg, &o, &err), CLV_STOPPED, "%s", err.msg);
    cr_assert_eq(access(state, F_OK), 0, "a checkpoint was written");
    cr_assert_eq(eval_ok(dir, &err), 0, "the untouched run evaluates: %s", err.msg);

    const char *learned[] = {task, base};
    for (int k = 0; k < 2; k++) {
        flip_last_byte(learned[k]);
        cr_expect_eq(eval_ok(dir, &err), -1, "eval refuses a damaged %s", learned[k]);
        cr_expect(strstr(err.msg, learned[k]) && strstr(err.msg, "corrupted") && strstr(err.msg, "--overwrite"),
                  "%s", err.msg);
        cr_expect_null(clv_predictor_from_run(dir, &err), "predict refuses");
        cr_expect(strstr(err.msg, learned[k]) && strstr(err.msg, "corrupted"), "%s", err.msg);
        clv_train_opts r = {.out_dir = dir, .resume = 1};
        cr_expect_eq(clv_train_run(&cfg, &r, &err), -1, "--resume refuses");
        cr_expect(strstr(err.msg, learned[k]) && strstr(err.msg, "corrupted"), "%s", err.msg);
        flip_last_byte(learned[k]);
    }

    struct stat sb;
    cr_assert_eq(stat(state, &sb), 0);
    cr_assert_eq(truncate(state, sb.st_size - 100), 0);
    clv_train_opts r = {.out_dir = dir, .resume = 1};
    cr_expect_eq(clv_train_run(&cfg, &r, &err), -1, "--resume refuses a cut checkpoint");
    cr_expect(strstr(err.msg, state) && strstr(err.msg, "truncated") && strstr(err.msg, "delete it"), "%s", err.msg);
    /* the advice holds: without the checkpoint, task 2 restarts (and stops again after a step) */
    cr_assert_eq(unlink(state), 0);
    r.stop_after_steps = 1;
    cr_assert_eq(clv_train_run(&cfg, &r, &err), CLV_STOPPED, "%s", err.msg);
    cr_assert_eq(access(state, F_OK), 0, "task 2 ran again and wrote a checkpoint");
    cr_assert_eq(eval_ok(dir, &err), 0, "%s", err.msg);
    tmp_tree_remove(dir);
}

/* Rewrites a task file with every float set to v, through the library's
 * writer, so that its checksum is valid: only the numbers are wrong. */
static void rewrite_floats(const char *path, float v)
{
    clv_safetensors st;
    clv_err err = {{0}};
    cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
    clv_st_writer *w = clv_st_writer_new();
    float **bufs = calloc((size_t)st.count, sizeof *bufs);
    for (int i = 0; i < st.count; i++) {
        const clv_st_tensor *t = &st.tensors[i];
        const void *data = clv_st_tensor_data(&st, t);
        if (t->dtype == CLV_DT_F32) {
            bufs[i] = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
            for (int64_t k = 0; k < t->numel; k++)
                bufs[i][k] = v;
            data = bufs[i];
        }
        cr_assert_eq(clv_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, data, &err), 0, "%s", err.msg);
    }
    for (int i = 0; i < st.n_meta; i++)
        if (strcmp(st.meta_keys[i], CLV_ST_CRC_KEY))
            cr_assert_eq(clv_st_writer_meta(w, st.meta_keys[i], st.meta_vals[i], &err), 0, "%s", err.msg);
    cr_assert_eq(clv_st_writer_write(w, path, &err), 0, "%s", err.msg);
    clv_st_writer_free(w);
    for (int i = 0; i < st.count; i++)
        free(bufs[i]);
    free(bufs);
    clv_st_close(&st);
}

/* Weights of 1e30 are finite, so they pass every check of a file, yet they
 * overflow inside the network: eval and predict once reported a score made
 * of infs and NaNs ("probability": null) and exited 0. */
Test(run_integrity, overflowing_weights_are_an_error, .timeout = 120)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    clv_config cfg;
    clv_config_defaults(&cfg);
    snprintf(cfg.method, sizeof cfg.method, "rkr");
    cfg.tasks = 5;
    cfg.train_limit = 128;
    cfg.test_limit = 50;
    cfg.threads = 1;
    char dir[] = "/tmp/clvit-overflow-XXXXXX", task[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(task, sizeof task, "%s/task-02.safetensors", dir);
    clv_err err = {{0}};
    clv_train_opts o = {.out_dir = dir, .overwrite = 1, .stop_after_steps = 5}; /* tasks 1 and 2 learned */
    cr_assert_eq(clv_train_run(&cfg, &o, &err), CLV_STOPPED, "%s", err.msg);
    cr_assert_eq(eval_ok(dir, &err), 0, "%s", err.msg);
    rewrite_floats(task, 1e30f);

    cr_expect_eq(eval_ok(dir, &err), -1, "eval refuses");
    cr_expect(strstr(err.msg, dir) && strstr(err.msg, "task 2") && strstr(err.msg, "non-finite"), "%s", err.msg);
    clv_predictor *p = clv_predictor_from_run(dir, &err);
    cr_assert_not_null(p, "the files are intact: %s", err.msg);
    const clv_present *pr = clv_predictor_present(p);
    int64_t n = (int64_t)pr->out_c * pr->out_h * pr->out_w;
    float *x = calloc((size_t)n, sizeof *x), logits[16];
    cr_expect_eq(clv_predictor_logits(p, 0, x, 1, logits, &err), 0, "task 1 is untouched: %s", err.msg);
    cr_expect_eq(clv_predictor_logits(p, 1, x, 1, logits, &err), -1, "task 2 overflows");
    cr_expect(strstr(err.msg, dir) && strstr(err.msg, "task 2") && strstr(err.msg, "non-finite"), "%s", err.msg);
    free(x);
    clv_predictor_free(p);
    tmp_tree_remove(dir);
}
