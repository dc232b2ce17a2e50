/* The one training step (clvit/step.h): `clvit bench` builds its learner
 * and takes its steps through the same functions as the trainer, so the
 * first step of a run and the library's step from the same state give the
 * same parameters, bit for bit; a strategy's loss and after-backward hooks
 * reach the gradients the step applies. */
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/checkpoint.h"
#include "clvit/safetensors.h"
#include "clvit/step.h"
#include "clvit/trainer.h"
#include "tiny_run.h"
#include "tmp_tree.h"
#include "train/run_internal.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

/* Every parameter of the step's groups equals its tensor in dir's state file. */
static void expect_same_as_state(const clv_step *st, const char *dir)
{
    char path[256];
    clv_ckpt_path(path, sizeof path, dir, "state", 0);
    clv_safetensors f;
    clv_err err = {{0}};
    cr_assert_eq(clv_st_open(&f, path, &err), 0, "%s", err.msg);
    int compared = 0;
    for (int g = 0; g < st->n_groups; g++)
        for (int i = 0; i < st->groups[g].params->count; i++) {
            const clv_param *p = st->groups[g].params->items[i];
            char name[256];
            snprintf(name, sizeof name, "%s%s", st->groups[g].prefix, p->name);
            const clv_st_tensor *t = clv_st_find(&f, name);
            cr_assert_not_null(t, "%s: no %s", path, name);
            float *v = malloc((size_t)p->numel * sizeof(float));
            cr_assert_eq(clv_st_read_f32(&f, t, v, p->numel, &err), 0, "%s", err.msg);
            cr_expect_eq(memcmp(v, p->data, (size_t)p->numel * sizeof(float)), 0,
                         "%s differs after one step (trainable %d)", name, p->trainable);
            compared += p->trainable;
            free(v);
        }
    cr_expect_gt(compared, 0, "nothing trained");
    clv_st_close(&f);
}

/* Task 1's first step of a run stopped after it, and the same step taken
 * as `clvit bench` takes it (clv_learner_build, clv_step_begin,
 * clv_step_run) on the trainer's first batch. With weights, task 1 is an
 * adapted task (rkr, piggyback train their adapters). */
static void same_step(const char *method, int pretrained)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char dir[64] = "/tmp/clvit-test-step-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    clv_config cfg;
    tiny_run_config(&cfg, method, 5);
    clv_err err = {{0}};
    if (pretrained) { /* a base of its own initialization, as --weights */
        clv_learner L;
        clv_strategy *s;
        clv_config plain = cfg;
        snprintf(plain.method, sizeof plain.method, "linear");
        cr_assert_eq(clv_learner_build(&L, &s, &plain, &err), 0, "%s", err.msg);
        clv_norm norm = {{0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}};
        cr_assert_eq(clv_ckpt_save_base(dir, &L, NULL, &norm, &err), 0, "%s", err.msg);
        clv_learner_free(&L, s);
        snprintf(cfg.weights, sizeof cfg.weights, "%s/base.safetensors", dir);
    }
    char out[96];
    snprintf(out, sizeof out, "%s/run", dir);
    clv_train_opts o = {.out_dir = out, .overwrite = 1, .stop_after_steps = 1};
    cr_assert_eq(clv_train_run(&cfg, &o, &err), CLV_STOPPED, "%s", err.msg);

    clv_run R;
    memset(&R, 0, sizeof R);
    R.cfg = &cfg;
    cr_assert_eq(clv_run_open_data(&R, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_learner_build(&R.L, &R.strategy, &cfg, &err), 0, "%s", err.msg);
    clv_step st;
    cr_assert_eq(clv_step_begin(&st, &cfg, &R.L, R.strategy, 0, R.split.tasks[0].n_classes, NULL, &err), 0, "%s",
                 err.msg);
    clv_loader_config lc = clv_run_loader_config(&R, 0, 0);
    clv_loader *ld = clv_loader_start(&lc, &err);
    cr_assert_not_null(ld, "%s", err.msg);
    clv_batch b;
    cr_assert_eq(clv_loader_next(ld, &b, &err), 1, "%s", err.msg);
    clv_schedule sched = clv_task_schedule(&cfg, clv_steps_per_epoch(R.split.tasks[0].n_train, cfg.batch));
    clv_step_stats stats = {0};
    cr_assert_eq(clv_step_run(&st, b.x, b.y, b.size, b.global_size, clv_schedule_factor(&sched, 0), &stats, &err), 0,
                 "%s", err.msg);
    clv_loader_stop(ld);
    cr_expect(isfinite(stats.loss) && stats.loss > 0);
    expect_same_as_state(&st, out);
    clv_step_end(&st);
    clv_run_free(&R);
    tmp_tree_remove(dir);
}

Test(step, bench_and_trainer_take_the_same_finetune_step, .timeout = 120) { same_step("finetune", 0); }
Test(step, bench_and_trainer_take_the_same_rkr_step, .timeout = 120) { same_step("rkr", 1); }
Test(step, bench_and_trainer_take_the_same_piggyback_step, .timeout = 120) { same_step("piggyback", 1); }

/* ---- the strategy's hooks, on synthetic images ---- */

/* loss: the cross-entropy counted twice (its gradient added once more) and 0.25 besides. */
static int twice_loss(clv_strategy *s, clv_learner *L, const clv_step_batch *b, double *loss, clv_err *err)
{
    for (int64_t i = 0; i < b->n * b->classes; i++)
        b->dlogits[i] *= 2.0f;
    *loss = 0.25;
    return 0;
}

static int after_calls;
static int zero_grads(clv_strategy *s, clv_learner *L, int task, clv_params *trainable, clv_err *err)
{
    after_calls++;
    int nonzero = 0;
    for (int i = 0; i < trainable->count; i++)
        for (int64_t j = 0; j < trainable->items[i]->numel; j++) {
            nonzero += trainable->items[i]->grad[j] != 0.0f;
            trainable->items[i]->grad[j] = 0.0f;
        }
    cr_expect_gt(nonzero, 0, "after_backward came before the backward");
    return 0;
}

typedef struct {
    clv_config cfg;
    clv_learner L;
    clv_strategy *s;
    clv_step st;
    float *x;
    int32_t y[8];
} hooked;

/* finetune of vit_nano on 8 random images, plain SGD at lr, with ops' hooks. */
static void hooked_begin(hooked *h, clv_strategy_ops *ops, float lr)
{
    clv_err err = {{0}};
    tiny_run_config(&h->cfg, "finetune", 2);
    snprintf(h->cfg.model, sizeof h->cfg.model, "vit_nano_patch4_32");
    h->cfg.optimizer = CLV_OPTIMIZER_SGD;
    h->cfg.momentum = 0;
    h->cfg.weight_decay = 0;
    h->cfg.clip_norm = 0;
    h->cfg.lr = h->cfg.lr_head = lr;
    cr_assert_eq(clv_learner_build(&h->L, &h->s, &h->cfg, &err), 0, "%s", err.msg);
    *ops = *h->s->ops;
    h->s->ops = ops;
    cr_assert_eq(clv_step_begin(&h->st, &h->cfg, &h->L, h->s, 0, 4, NULL, &err), 0, "%s", err.msg);
    const clv_model_info *mi = &h->L.model->info;
    const int64_t n = 8 * mi->in_chans * mi->img_size * mi->img_size;
    h->x = malloc((size_t)n * sizeof(float));
    const uint64_t key = clv_rng_key(3, CLV_STREAM_BENCH, 0, 0);
    for (int64_t i = 0; i < n; i++)
        h->x[i] = clv_rng_normal(key, (uint64_t)i);
    for (int i = 0; i < 8; i++)
        h->y[i] = i % 4;
}

static float hooked_step(hooked *h)
{
    clv_err err = {{0}};
    clv_step_stats stats = {0};
    cr_assert_eq(clv_step_run(&h->st, h->x, h->y, 8, 8, 1.0f, &stats, &err), 0, "%s", err.msg);
    return stats.loss;
}

static void hooked_end(hooked *h)
{
    clv_step_end(&h->st);
    clv_learner_free(&h->L, h->s);
    free(h->x);
}

Test(step, the_loss_hook_adds_its_value_and_its_gradient_goes_through_the_network, .timeout = 60)
{
    clv_strategy_ops plain_ops, twice_ops;
    hooked plain, twice;
    hooked_begin(&plain, &plain_ops, 2e-2f); /* SGD: twice the gradient is twice the rate */
    hooked_begin(&twice, &twice_ops, 1e-2f);
    twice_ops.loss = twice_loss;
    const float lp = hooked_step(&plain), lt = hooked_step(&twice);
    cr_expect_float_eq(lt, lp + 0.25f, 1e-5f, "loss %g, the cross-entropy %g + 0.25", lt, lp);
    int compared = 0;
    for (int i = 0; i < plain.st.trainable.count; i++) {
        const clv_param *a = plain.st.trainable.items[i], *b = twice.st.trainable.items[i];
        for (int64_t j = 0; j < a->numel; j++)
            cr_assert_float_eq(a->data[j], b->data[j], 1e-6f + 1e-5f * fabsf(a->data[j]), "%s[%lld]", a->name,
                               (long long)j);
        compared += strstr(a->name, "blocks.0.") != NULL; /* the backbone's first block moved too */
    }
    cr_expect_gt(compared, 0);
    hooked_end(&plain);
    hooked_end(&twice);
}

Test(step, after_backward_sees_the_gradients_and_its_changes_are_applied, .timeout = 60)
{
    clv_strategy_ops ops;
    hooked h;
    hooked_begin(&h, &ops, 1e-2f);
    ops.after_backward = zero_grads;
    float *copy[256];
    cr_assert_lt(h.st.trainable.count, 256);
    for (int i = 0; i < h.st.trainable.count; i++) {
        const clv_param *p = h.st.trainable.items[i];
        copy[i] = malloc((size_t)p->numel * sizeof(float));
        memcpy(copy[i], p->data, (size_t)p->numel * sizeof(float));
    }
    after_calls = 0;
    hooked_step(&h);
    cr_expect_eq(after_calls, 1);
    for (int i = 0; i < h.st.trainable.count; i++) { /* SGD without decay: a zero gradient changes nothing */
        const clv_param *p = h.st.trainable.items[i];
        cr_expect_eq(memcmp(copy[i], p->data, (size_t)p->numel * sizeof(float)), 0, "%s moved", p->name);
        free(copy[i]);
    }
    hooked_end(&h);
}

/* ---- the pass a strategy's consolidate hook runs (EWC's Fisher) ---- */

typedef struct {
    clv_params *trainable;
    int64_t images;
    int batches, fail_at;
    double grad_sq;
} pass_seen;

static int visit(void *ctx, int64_t n, clv_err *err)
{
    pass_seen *s = ctx;
    s->images += n;
    double sq = 0;
    for (int i = 0; i < s->trainable->count; i++)
        for (int64_t j = 0; j < s->trainable->items[i]->numel; j++)
            sq += (double)s->trainable->items[i]->grad[j] * s->trainable->items[i]->grad[j];
    cr_expect_gt(sq, 0, "batch %d: no gradient to look at", s->batches);
    s->grad_sq += sq;
    return ++s->batches == s->fail_at ? clv_errf(err, "visit stops") : 0;
}

/* Every parameter and buffer (batch-norm statistics) as it was, every grad zero. */
static void expect_untouched(const clv_params *ps, float *const *copy, const char *when)
{
    for (int i = 0; i < ps->count; i++) {
        const clv_param *p = ps->items[i];
        cr_expect_eq(memcmp(copy[i], p->data, (size_t)p->numel * sizeof(float)), 0, "%s: %s changed", when, p->name);
        for (int64_t j = 0; p->grad && j < p->numel; j++)
            cr_assert_eq(p->grad[j], 0.0f, "%s: %s's grad left", when, p->name);
    }
}

Test(step, the_task_pass_shows_each_batch_gradient_and_changes_nothing, .timeout = 120)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    clv_config cfg;
    tiny_run_config(&cfg, "finetune", 5);
    snprintf(cfg.model, sizeof cfg.model, "resnet_nano_cifar"); /* batch norms: their statistics must stay */
    clv_err err = {{0}};
    clv_run R;
    memset(&R, 0, sizeof R);
    R.cfg = &cfg;
    cr_assert_eq(clv_run_open_data(&R, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_learner_build(&R.L, &R.strategy, &cfg, &err), 0, "%s", err.msg);
    clv_step st;
    cr_assert_eq(clv_step_begin(&st, &cfg, &R.L, R.strategy, 0, R.split.tasks[0].n_classes, NULL, &err), 0, "%s",
                 err.msg);
    const clv_params *mp = &R.L.model->params;
    float **copy = calloc((size_t)mp->count, sizeof *copy);
    for (int i = 0; i < mp->count; i++) {
        copy[i] = malloc((size_t)mp->items[i]->numel * sizeof(float));
        memcpy(copy[i], mp->items[i]->data, (size_t)mp->items[i]->numel * sizeof(float));
    }
    clv_task_pass pass = {&R, &st, 0};
    for (int predicted = 0; predicted < 2; predicted++) {
        pass_seen seen = {&st.trainable, 0, 0, 0, 0};
        cr_assert_eq(clv_task_pass_grads(&pass, 40, predicted, visit, &seen, &err), 0, "%s", err.msg);
        cr_expect_eq(seen.images, 40, "the pass saw %lld images of the 40 asked", (long long)seen.images);
        cr_expect_eq(seen.batches, 2, "40 images in batches of 32");
        expect_untouched(mp, copy, predicted ? "predicted labels" : "true labels");
    }
    pass_seen stop = {&st.trainable, 0, 0, 1, 0};
    cr_expect_eq(clv_task_pass_grads(&pass, 0, 0, visit, &stop, &err), -1, "a failing visit fails the pass");
    cr_expect_str_eq(err.msg, "visit stops");
    expect_untouched(mp, copy, "a stopped pass");
    for (int i = 0; i < mp->count; i++)
        free(copy[i]);
    free(copy);
    clv_step_end(&st);
    clv_run_free(&R);
}
