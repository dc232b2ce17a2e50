/* Runs and tasks that cannot have worked say so: the mask budget warning
 * (exactly when the schedule cannot move a score across the threshold),
 * near_chance and loss_not_falling (on both sides of their rules and on
 * real runs at learning rate 0), no_pretrained_base; Piggyback's recipe
 * leaves its masks room to move. */
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/task_checks.h"
#include "clvit/trainer.h"
#include "tmp_tree.h"
#include "tiny_run.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

static void mask_config(clv_config *c, const char *method)
{
    clv_config_defaults(c);
    snprintf(c->method, sizeof c->method, "%s", method);
}

/* The number after marker in text (e.g. "--lr-mask to at least "). */
static double number_after(const char *text, const char *marker)
{
    const char *p = strstr(text, marker);
    cr_assert_not_null(p, "'%s' in: %s", marker, text);
    return strtod(p + strlen(marker), NULL);
}

static int short_for(const clv_config *c, double lr, int64_t spe)
{
    clv_warnings w = {0};
    int r = clv_check_mask_budget(c, 2, lr, spe, &w);
    cr_assert_geq(r, 0);
    cr_assert_eq(r, w.n, "returns what it added");
    cr_assert_eq(clv_warnings_has(&w, "mask_budget_short"), r);
    clv_warnings_clear(&w);
    return r;
}

static void budget_boundary(clv_config *c, int64_t spe)
{
    clv_mask_budget b = clv_mask_budget_of(c, 1.0, spe);
    cr_assert_eq(b.steps, spe * c->epochs);
    cr_assert_float_eq(b.needed, (double)c->mask_init - (double)c->threshold, 1e-12);
    clv_schedule s = clv_task_schedule(c, spe);
    cr_assert_float_eq(b.factor_sum, clv_schedule_sum(&s), 1e-9, "the sum of the task's factors");
    double exact = b.needed / b.factor_sum; /* the rate at which a score just reaches the threshold */
    cr_assert_eq(short_for(c, exact * 0.999, spe), 1, "schedule %d: just short at %g", (int)c->schedule, exact * 0.999);
    cr_assert_eq(short_for(c, exact * 1.001, spe), 0, "schedule %d: just enough at %g", (int)c->schedule, exact * 1.001);

    /* the message says by how much, and its suggestions are enough as printed */
    clv_warnings w = {0};
    double lr = exact / 3;
    cr_assert_eq(clv_check_mask_budget(c, 2, lr, spe, &w), 1);
    const char *m = w.items[0];
    const char *want = "mask_budget_short: task 3: few or no mask bits can flip";
    cr_assert(!strncmp(m, want, strlen(want)), "%s", m);
    cr_assert_float_eq(number_after(m, "short by "), b.needed - lr * b.factor_sum, 1e-3 * b.needed, "%s", m);
    double lr_ok = number_after(m, "--lr-mask to at least ");
    cr_assert_eq(short_for(c, lr_ok, spe), 0, "the suggested --lr-mask %g is enough", lr_ok);
    cr_assert_eq(short_for(c, lr_ok * 0.99, spe), 1, "and not much more than enough");
    clv_config more = *c;
    if (strstr(m, "no --epochs up to 1000 is enough")) { /* a step decay bounds the sum */
        more.epochs = 1000;
        cr_assert_eq(short_for(&more, lr, spe), 1, "1000 epochs are not enough");
    } else {
        int e = (int)number_after(m, "--epochs to at least ");
        more.epochs = e;
        cr_assert_eq(short_for(&more, lr, spe), 0, "%d epochs are enough", e);
        more.epochs = e - 1;
        cr_assert_eq(short_for(&more, lr, spe), 1, "%d epochs are not", e - 1);
    }
    clv_warnings_clear(&w);
}

Test(checks, mask_budget_warns_exactly_when_short)
{
    clv_config c;
    mask_config(&c, "piggyback");
    budget_boundary(&c, 79); /* cosine with warmup, 1 epoch */
    c.epochs = 10;
    budget_boundary(&c, 100);
    c.schedule = CLV_SCHEDULE_STEP;
    c.lr_step_epochs = 3;
    c.lr_step_gamma = 0.5f;
    c.warmup_epochs = 0;
    budget_boundary(&c, 50); /* no number of epochs helps at a third of the rate */
    c.lr_step_gamma = 0.9f;
    budget_boundary(&c, 50); /* 30 epochs of full rate at most: more epochs help */
    /* the defaults on Split CIFAR-100 (5,000 images a task, batch 64): the 0.004 */
    mask_config(&c, "maskrkr");
    clv_mask_budget b = clv_mask_budget_of(&c, c.lr_mask, clv_steps_per_epoch(5000, c.batch));
    cr_assert(b.movement > 0.0035 && b.movement < 0.0045, "%g", b.movement);
    cr_assert_eq(short_for(&c, c.lr_mask, clv_steps_per_epoch(5000, c.batch)), 1);
    /* SGD's step is lr x gradient, not bounded by lr: no claim */
    c.optimizer = CLV_OPTIMIZER_SGD;
    cr_assert_eq(short_for(&c, 1e-9, 10), 0);
}

Test(checks, step_decay_that_no_epochs_can_fix_says_so)
{
    clv_config c;
    mask_config(&c, "piggyback");
    c.schedule = CLV_SCHEDULE_STEP;
    c.lr_step_epochs = 1;
    c.lr_step_gamma = 0.5f;
    c.warmup_epochs = 0;
    /* at most 2 epochs' worth of full-rate steps, whatever the epochs: 2 x 10 x 1e-4 = 0.002 < 0.005 */
    clv_warnings w = {0};
    cr_assert_eq(clv_check_mask_budget(&c, 0, 1e-4, 10, &w), 1);
    cr_assert(strstr(w.items[0], "no --epochs up to 1000 is enough"), "%s", w.items[0]);
    clv_warnings_clear(&w);
}

/* A curve of epochs x spe steps whose losses come from loss(epoch, step). */
static void fill(clv_task_curve *c, int epochs, int spe, double first, double last)
{
    clv_err err = {{0}};
    cr_assert_eq(clv_task_curve_init(c, epochs, spe, &err), 0);
    for (int e = 0; e < epochs; e++)
        for (int s = 0; s < spe; s++) {
            /* epoch 1's first tenth at `first`, the last epoch at `last`, a line between */
            double loss = e == 0 && s < c->first_steps ? first : e == epochs - 1 ? last : 0.5 * (first + last);
            clv_task_curve_step(c, e, (int64_t)e * spe + s, loss, 16, 32);
        }
}

static int outcome(int classes, double acc, double first, double last, clv_warnings *w)
{
    clv_task_curve c;
    fill(&c, 3, 20, first, last);
    cr_assert_float_eq(clv_task_curve_first_tenth(&c), first, 1e-12);
    cr_assert_float_eq(clv_task_curve_loss(&c, 2), last, 1e-12);
    cr_assert_float_eq(clv_task_curve_accuracy(&c, 1), 50.0, 1e-12);
    int r = clv_check_task_outcome(4, classes, acc, &c, w);
    clv_task_curve_free(&c);
    return r;
}

Test(checks, near_chance_and_loss_not_falling_on_both_sides)
{
    clv_warnings w = {0};
    /* a stuck task: chance accuracy, the loss at ln 2 throughout */
    cr_assert_eq(outcome(2, 50.70, 0.6931, 0.6931, &w), 2);
    cr_assert(clv_warnings_has(&w, "near_chance") && clv_warnings_has(&w, "loss_not_falling"));
    cr_assert(strstr(w.items[0], "task 5 ends at 50.70%"), "%s", w.items[0]);
    clv_warnings_clear(&w);
    /* a task that learned */
    cr_assert_eq(outcome(2, 97.4, 0.69, 0.10, &w), 0);
    /* accuracy: chance + 5 points is the line */
    cr_assert_eq(outcome(2, 54.99, 0.69, 0.10, &w), 1);
    cr_assert(clv_warnings_has(&w, "near_chance"));
    clv_warnings_clear(&w);
    cr_assert_eq(outcome(2, 55.0, 0.69, 0.10, &w), 0);
    cr_assert_eq(outcome(10, 14.9, 2.3, 1.0, &w), 1, "10 classes: below 15%%");
    clv_warnings_clear(&w);
    cr_assert_eq(outcome(10, 15.1, 2.3, 1.0, &w), 0);
    cr_assert_eq(outcome(2, 3.0, 0.69, 0.10, &w), 1, "far below chance is a failure too");
    clv_warnings_clear(&w);
    /* loss: the last epoch must fall below 0.95 x epoch 1's first tenth */
    cr_assert_eq(outcome(2, 90, 0.80, 0.80 * 0.951, &w), 1);
    cr_assert(clv_warnings_has(&w, "loss_not_falling"), "%s", w.items[0]);
    clv_warnings_clear(&w);
    cr_assert_eq(outcome(2, 90, 0.80, 0.80 * 0.949, &w), 0);
    cr_assert_eq(outcome(2, 90, 0.70, 0.90, &w), 1, "a rising loss");
    clv_warnings_clear(&w);
    /* ... unless it is already low: learned within the first tenth (ln 2 / 2 = 0.347) */
    cr_assert_eq(outcome(2, 99, 0.30, 0.30, &w), 0);
    cr_assert_eq(outcome(2, 99, 0.36, 0.36, &w), 1);
    clv_warnings_clear(&w);
    /* one class: nothing to judge */
    cr_assert_eq(outcome(1, 100, 0, 0, &w), 0);
    /* a task no longer than its first tenth is not judged */
    clv_task_curve c;
    fill(&c, 1, 5, 0.69, 0.69); /* 5 steps, the first tenth is 1 step: judged */
    cr_assert_eq(clv_check_task_outcome(0, 2, 90, &c, &w), 1);
    clv_warnings_clear(&w);
    clv_task_curve_free(&c);
    fill(&c, 1, 1, 0.69, 0.69);
    cr_assert_eq(clv_check_task_outcome(0, 2, 90, &c, &w), 0);
    clv_task_curve_free(&c);
    cr_assert_eq(w.n, 0);
}

Test(checks, no_pretrained_base_for_the_different_domain_protocol)
{
    const char *frozen[] = {"rkr", "piggyback", "maskrkr", "linear"};
    for (int i = 0; i < 4; i++) {
        clv_config c;
        mask_config(&c, frozen[i]);
        snprintf(c.data, sizeof c.data, "decathlon");
        clv_warnings w = {0};
        cr_assert_eq(clv_check_run(&c, &w), 1, "%s", frozen[i]);
        cr_assert(!strncmp(w.items[0],
                           "no_pretrained_base: the different-domain protocol expects a pretrained base (--weights); ",
                           89),
                  "%s", w.items[0]);
        cr_assert(strstr(w.items[0], "(aircraft)"), "names the first domain: %s", w.items[0]);
        clv_warnings_clear(&w);
        snprintf(c.weights, sizeof c.weights, "base.safetensors");
        cr_assert_eq(clv_check_run(&c, &w), 0, "%s with --weights", frozen[i]);
    }
    clv_config c;
    clv_warnings w = {0};
    mask_config(&c, "finetune");
    snprintf(c.data, sizeof c.data, "decathlon");
    cr_assert_eq(clv_check_run(&c, &w), 0, "finetune and independent train the whole network anyway");
    mask_config(&c, "rkr");
    cr_assert_eq(clv_check_run(&c, &w), 0, "one domain (fashion-mnist): the base from task 1 is the protocol");
    cr_assert_eq(w.n, 0);
}

Test(checks, piggyback_recipe_lets_masks_move)
{
    clv_config c;
    clv_config_defaults(&c);
    clv_err err = {{0}};
    cr_assert_eq(clv_config_load_ini(&c, "configs/piggyback_recipe.ini", &err), 0, "%s", err.msg);
    cr_assert_eq(clv_config_validate(&c, &err), 0, "%s", err.msg);
    /* arunmallya/piggyback: Adam without weight decay, 1e-4 for scores and head, x0.1 every 15 of 30 epochs, batch 32 */
    cr_assert_str_eq(c.method, "piggyback");
    cr_assert_eq(c.optimizer, CLV_OPTIMIZER_ADAMW);
    cr_assert_eq(c.weight_decay, 0.0f);
    cr_assert_float_eq(c.lr_mask, 1e-4f, 1e-12);
    cr_assert_float_eq(c.lr_head, 1e-4f, 1e-12);
    cr_assert_eq(c.epochs, 30);
    cr_assert_eq(c.schedule, CLV_SCHEDULE_STEP);
    cr_assert_eq(c.lr_step_epochs, 15);
    cr_assert_float_eq(c.lr_step_gamma, 0.1f, 1e-9);
    cr_assert_eq(c.warmup_epochs, 0.0f);
    cr_assert_eq(c.batch, 32);
    cr_assert_float_eq(c.mask_init, 1e-2f, 1e-12);
    cr_assert_float_eq(c.threshold, 5e-3f, 1e-12);
    /* Piggyback's CUB-200 (5,994 training images): 1e-4 x (15 + 1.5) x 187 steps = about 0.31 */
    clv_mask_budget cub = clv_mask_budget_of(&c, c.lr_mask, clv_steps_per_epoch(5994, c.batch));
    cr_assert_float_eq(cub.movement, 1e-4 * 16.5 * 187, 1e-6, "%g", cub.movement);
    /* a Split Fashion-MNIST task (12,000 images): 0.62, about 124 times what one bit needs */
    int64_t spe = clv_steps_per_epoch(12000, c.batch);
    clv_mask_budget b = clv_mask_budget_of(&c, c.lr_mask, spe);
    cr_assert_float_eq(b.movement, 1e-4 * 16.5 * 375, 1e-6, "%g", b.movement);
    cr_assert_gt(b.movement, 100 * b.needed);
    clv_warnings w = {0};
    cr_assert_eq(clv_check_mask_budget(&c, 1, c.lr_mask, spe, &w), 0, "no warning");
}

/* ---- end to end ---- */


static void run(const clv_config *c, const char *dir)
{
    clv_train_opts o = {.out_dir = dir, .overwrite = 1};
    clv_err err = {{0}};
    cr_assert_eq(clv_train_run(c, &o, &err), 0, "%s", err.msg);
}

static void record(const char *dir, clv_run_record *rec)
{
    clv_config saved;
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_read(rec, &saved, dir, &err), 0, "%s", err.msg);
}

Test(checks, a_learning_rate_of_zero_is_flagged, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char dir[64] = "/tmp/clvit-lr0-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    clv_config c;
    tiny_run_config(&c, "finetune", 1); /* one task of 10 classes: chance 10% */
    c.train_limit = 256;
    c.test_limit = 500;
    c.epochs = 2;
    c.seed = 4;
    c.lr = c.lr_head = 0;
    run(&c, dir);
    clv_run_record rec;
    record(dir, &rec);
    const clv_task_record *tr = &rec.tasks[0];
    cr_assert(clv_warnings_has(&tr->warnings, "loss_not_falling"), "%d warnings", tr->warnings.n);
    cr_assert(clv_run_record_acc(&rec, 0, 0) < 15.0, "a random head: %f%%", clv_run_record_acc(&rec, 0, 0));
    cr_assert(clv_warnings_has(&tr->warnings, "near_chance"));
    cr_assert_eq(tr->n_epochs, 2);
    cr_assert(fabs(tr->epoch_loss[1] - tr->epoch_loss[0]) < 0.05 * tr->epoch_loss[0], "the loss stays: %f %f",
              tr->epoch_loss[0], tr->epoch_loss[1]);
    clv_run_record_free(&rec);
    tmp_tree_remove(dir);
}

Test(checks, different_domains_without_weights_are_flagged)
{
    char dir[64] = "/tmp/clvit-dom-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    clv_config c;
    tiny_run_config(&c, "linear", 2);
    snprintf(c.data, sizeof c.data, "decathlon");
    snprintf(c.data_root, sizeof c.data_root, "tests/fixtures/data/decathlon");
    snprintf(c.domains, sizeof c.domains, "alpha,beta");
    c.batch = 4;
    run(&c, dir);
    clv_run_record rec;
    record(dir, &rec);
    cr_assert_eq(rec.warnings.n, 1);
    cr_assert(!strncmp(rec.warnings.items[0],
                       "no_pretrained_base: the different-domain protocol expects a pretrained base (--weights)", 87),
              "%s", rec.warnings.items[0]);
    clv_run_record_free(&rec);
    snprintf(c.method, sizeof c.method, "finetune");
    run(&c, dir);
    record(dir, &rec);
    cr_assert_eq(rec.warnings.n, 0, "finetune trains its whole network: no such warning");
    clv_run_record_free(&rec);
    tmp_tree_remove(dir);
}
