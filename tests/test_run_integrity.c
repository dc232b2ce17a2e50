/* A run directory that lost a file it needs is an error, never a silent
 * fallback: with base.safetensors gone, predict and --resume once ran the
 * learned tasks on a freshly initialized backbone and exited 0. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clvit/param.h"
#include "clvit/predictor.h"
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
