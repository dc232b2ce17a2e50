/* End to end: a small run on the real Fashion-MNIST learns, records what it
 * measured, resumes to the same numbers, and is re-evaluated and predicted
 * with the weights it saved. Skipped when the Debian dataset is absent. */
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/checkpoint.h"
#include "clvit/data.h"
#include "clvit/predictor.h"
#include "clvit/tasks.h"
#include "clvit/trainer.h"
#include "tmp_tree.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


static void small_config(clv_config *c, int tasks)
{
    clv_config_defaults(c);
    c->tasks = tasks;
    c->train_limit = 768;
    c->test_limit = 100;
    c->epochs = 2;
    c->batch = 64;
    c->threads = 2;
    c->eval_batch = 64;
    c->seed = 7;
}

static void temp_dir(char *buf, size_t len, const char *tag)
{
    snprintf(buf, len, "/tmp/clvit-test-%s-XXXXXX", tag);
    cr_assert_not_null(mkdtemp(buf));
}

static void read_record(const char *dir, clv_run_record *rec, clv_config *cfg)
{
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_read(rec, cfg, dir, &err), 0, "%s", err.msg);
}

static void train_ok(const clv_config *cfg, const char *dir, int resume, int64_t stop_after)
{
    clv_train_opts o = {.out_dir = dir, .resume = resume, .overwrite = !resume, .stop_after_steps = stop_after};
    clv_err err = {{0}};
    int rc = clv_train_run(cfg, &o, &err);
    cr_assert_eq(rc, stop_after ? CLV_STOPPED : 0, "rc %d: %s", rc, err.msg);
}

Test(train, learns_and_records_the_matrix, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char dir[64];
    temp_dir(dir, sizeof dir, "learn");
    clv_config cfg;
    small_config(&cfg, 5);
    train_ok(&cfg, dir, 0, 0);

    clv_run_record rec;
    clv_config saved;
    read_record(dir, &rec, &saved);
    cr_assert_str_eq(rec.status, "complete");
    cr_assert_eq(rec.n_tasks, 5);
    cr_assert_eq(saved.train_limit, 768, "the config is recorded");
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
            double a = clv_run_record_acc(&rec, i, j);
            if (j > i)
                cr_assert(isnan(a), "A[%d][%d] must be null", i, j);
            else
                cr_assert(a >= 0 && a <= 100, "A[%d][%d] = %f", i, j, a);
        }
    /* right after learning (24 steps), each binary task is above chance (50%), clearly so on average */
    double diag = 0;
    for (int t = 0; t < 5; t++) {
        cr_assert_gt(clv_run_record_acc(&rec, t, t), 60.0, "task %d: %f", t + 1, clv_run_record_acc(&rec, t, t));
        diag += clv_run_record_acc(&rec, t, t) / 5;
    }
    cr_assert_gt(diag, 75.0, "mean accuracy right after learning: %f", diag);
    double mean = 0;
    for (int j = 0; j < 5; j++)
        mean += clv_run_record_acc(&rec, 4, j) / 5;
    cr_assert_float_eq(clv_run_record_average_accuracy(&rec), mean, 1e-9);
    for (int t = 0; t < 5; t++) {
        cr_assert_eq(rec.tasks[t].n_classes, 2);
        cr_assert_eq(rec.tasks[t].classes[0], 2 * t, "natural class order");
        cr_assert_not_null(rec.tasks[t].class_names, "the dataset's class names are recorded");
        cr_assert_eq(rec.tasks[t].train_images, 768);
        cr_assert_eq(rec.tasks[t].test_images, 100);
        cr_assert_eq(rec.tasks[t].head_bits, (64 + 1) * 2 * 32, "head of vit_nano: 2 x 64 weights + 2 biases");
        cr_assert_geq(rec.tasks[t].stored_bits, rec.tasks[t].head_bits);
        cr_assert_gt(rec.tasks[t].trainable_params, 0);
        /* a run that learns: no task flagged, a training curve per epoch */
        cr_assert_eq(rec.tasks[t].warnings.n, 0, "task %d: %s", t + 1,
                     rec.tasks[t].warnings.n ? rec.tasks[t].warnings.items[0] : "");
        cr_assert_eq(rec.tasks[t].n_epochs, 2);
        for (int e = 0; e < 2; e++)
            cr_assert(rec.tasks[t].epoch_loss[e] > 0 && rec.tasks[t].epoch_loss[e] < 2 &&
                          rec.tasks[t].epoch_train_accuracy[e] >= 0 && rec.tasks[t].epoch_train_accuracy[e] <= 100,
                      "task %d epoch %d: loss %f, accuracy %f", t + 1, e + 1, rec.tasks[t].epoch_loss[e],
                      rec.tasks[t].epoch_train_accuracy[e]);
        cr_assert_eq(rec.tasks[t].masks.n_layers, 0, "finetune stores no mask");
    }
    cr_assert_eq(rec.warnings.n, 0);
    char path[128];
    snprintf(path, sizeof path, "%s/results.csv", dir);
    cr_assert_eq(access(path, R_OK), 0, "results.csv written");
    snprintf(path, sizeof path, "%s/task-05.safetensors", dir);
    cr_assert_eq(access(path, R_OK), 0, "task file written");
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    cr_assert_neq(access(path, F_OK), 0, "no checkpoint left after a finished run");

    /* eval re-measures exactly what the run recorded after its last task */
    clv_run_record rec2;
    clv_config cfg2;
    double *now = NULL;
    clv_err err = {{0}};
    cr_assert_eq(clv_eval_run(dir, 0, -1, &rec2, &cfg2, &now, &err), 0, "%s", err.msg);
    for (int t = 0; t < 5; t++)
        cr_assert_eq(now[t], clv_run_record_acc(&rec, 4, t), "task %d: eval %f, recorded %f", t + 1, now[t],
                     clv_run_record_acc(&rec, 4, t));
    free(now);
    clv_run_record_free(&rec2);

    /* predict from the run: the same accuracy on the same images, with the dataset's class ids */
    clv_predictor *p = clv_predictor_from_run(dir, &err);
    cr_assert_not_null(p, "%s", err.msg);
    clv_dataset *train = NULL, *test = NULL;
    cr_assert_eq(clv_dataset_open_pair("fashion-mnist", NULL, &train, &test, &err), 0, "%s", err.msg);
    clv_task_split split;
    cr_assert_eq(clv_task_split_make(&split, train, test, 5, 0, 7, &err), 0, "%s", err.msg);
    clv_task_split_limit(&split, 0, 100); /* the run's --test-limit: the same 100 images */
    const clv_present *pr = clv_predictor_present(p);
    size_t per = (size_t)pr->out_c * pr->out_h * pr->out_w;
    float *x = malloc(per * sizeof *x);
    uint8_t px[28 * 28];
    int task = 3, correct = 0;
    for (int i = 0; i < 100; i++) {
        int h, w;
        int64_t idx = split.tasks[task].test_indices[i];
        cr_assert_eq(test->ops->get(test, idx, px, sizeof px, &h, &w, &err), 0, "%s", err.msg);
        cr_assert_eq(clv_present_image(pr, px, h, w, 1, x, &err), 0, "%s", err.msg);
        float logits[2];
        cr_assert_eq(clv_predictor_logits(p, task, x, 1, logits, &err), 0, "%s", err.msg);
        int local = logits[1] > logits[0];
        correct += local == split.tasks[task].test_labels[i];
        cr_assert_eq(clv_predictor_class_id(p, task, local), 2 * task + local);
        cr_assert_str_eq(clv_predictor_class_name(p, task, local), local ? "Sneaker" : "Shirt",
                         "Fashion-MNIST's names of classes 6 and 7, kept in run.json");
    }
    cr_assert_float_eq((double)correct, clv_run_record_acc(&rec, 4, task), 1e-9,
                       "predict %d of 100 vs recorded %f", correct, clv_run_record_acc(&rec, 4, task));
    free(x);
    clv_task_split_free(&split);
    clv_dataset_free(train);
    clv_dataset_free(test);
    clv_predictor_free(p);
    clv_run_record_free(&rec);
    tmp_tree_remove(dir);
}

Test(train, finetune_forgets_linear_does_not, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char dir[64];
    temp_dir(dir, sizeof dir, "linear");
    clv_config cfg;
    small_config(&cfg, 2);
    snprintf(cfg.method, sizeof cfg.method, "linear");
    train_ok(&cfg, dir, 0, 0);
    clv_run_record rec;
    clv_config saved;
    read_record(dir, &rec, &saved);
    /* a frozen backbone: task 1's accuracy cannot move while task 2 trains */
    cr_assert_eq(clv_run_record_acc(&rec, 0, 0), clv_run_record_acc(&rec, 1, 0));
    cr_assert_float_eq(clv_run_record_forgetting(&rec), 0.0, 1e-12);
    cr_assert_gt(rec.tasks[0].trainable_params, 100000, "task 1 trains the base");
    cr_assert_eq(rec.tasks[1].trainable_params, (64 + 1) * 5, "then only the head (5 classes) trains");
    clv_run_record_free(&rec);
    tmp_tree_remove(dir);
}

Test(train, resume_gives_the_same_numbers, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char a[64], b[64];
    temp_dir(a, sizeof a, "whole");
    temp_dir(b, sizeof b, "resumed");
    clv_config cfg;
    small_config(&cfg, 2);
    cfg.train_limit = 256;
    train_ok(&cfg, a, 0, 0);
    train_ok(&cfg, b, 0, 5); /* stopped inside task 1's first epoch */
    char path[128];
    snprintf(path, sizeof path, "%s/state.safetensors", b);
    cr_assert_eq(access(path, R_OK), 0, "a stop leaves a checkpoint");
    train_ok(&cfg, b, 1, 0);

    clv_run_record ra, rb;
    clv_config ca, cb;
    read_record(a, &ra, &ca);
    read_record(b, &rb, &cb);
    cr_assert_str_eq(rb.status, "complete");
    for (int i = 0; i < 2; i++)
        for (int j = 0; j <= i; j++)
            cr_assert_eq(clv_run_record_acc(&ra, i, j), clv_run_record_acc(&rb, i, j),
                         "A[%d][%d]: uninterrupted %f, resumed %f", i, j, clv_run_record_acc(&ra, i, j),
                         clv_run_record_acc(&rb, i, j));
    clv_run_record_free(&ra);
    clv_run_record_free(&rb);
    tmp_tree_remove(a);
    tmp_tree_remove(b);
}

Test(train, refuses_to_overwrite_or_resume_nothing)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char dir[64];
    temp_dir(dir, sizeof dir, "refuse");
    clv_config cfg;
    small_config(&cfg, 5);
    clv_err err = {{0}};
    clv_train_opts o = {.out_dir = dir, .resume = 1};
    cr_assert_eq(clv_train_run(&cfg, &o, &err), -1);
    cr_assert(strstr(err.msg, "nothing to resume"), "%s", err.msg);
    FILE *f = fopen(strcat(strcpy((char[96]){0}, dir), "/run.json"), "w");
    fputs("{}", f);
    fclose(f);
    o.resume = 0;
    cr_assert_eq(clv_train_run(&cfg, &o, &err), -1);
    cr_assert(strstr(err.msg, "--resume") && strstr(err.msg, "--overwrite"), "%s", err.msg);
    tmp_tree_remove(dir);
}

Test(train, thread_count_does_not_change_the_results, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char a[64], b[64];
    temp_dir(a, sizeof a, "thr1");
    temp_dir(b, sizeof b, "thr2");
    clv_config cfg;
    small_config(&cfg, 2);
    cfg.train_limit = 256;
    cfg.threads = 1;
    train_ok(&cfg, a, 0, 0);
    cfg.threads = 2;
    train_ok(&cfg, b, 0, 0);
    clv_run_record ra, rb;
    clv_config ca, cb;
    read_record(a, &ra, &ca);
    read_record(b, &rb, &cb);
    /* same seed: same samples, augmentation and initialization; only float rounding may differ,
     * which can flip at most a borderline test image (1 of 100 = 1 point) */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j <= i; j++)
            cr_assert_leq(fabs(clv_run_record_acc(&ra, i, j) - clv_run_record_acc(&rb, i, j)), 1.0,
                          "A[%d][%d]: 1 thread %f, 2 threads %f", i, j, clv_run_record_acc(&ra, i, j),
                          clv_run_record_acc(&rb, i, j));
    clv_run_record_free(&ra);
    clv_run_record_free(&rb);
    tmp_tree_remove(a);
    tmp_tree_remove(b);
}

/* clvit pretrain: one task over all classes, exported as backbone + head;
 * the file loads as --weights (same backbone bit for bit) and predicts. */
Test(train, pretrain_exports_a_base_for_weights, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char dir[64], path[128];
    temp_dir(dir, sizeof dir, "pretrain");
    clv_config cfg;
    small_config(&cfg, 1);
    cfg.epochs = 1;
    train_ok(&cfg, dir, 0, 0);
    snprintf(path, sizeof path, "%s/pretrained.safetensors", dir);
    clv_err err = {{0}};
    cr_assert_eq(clv_ckpt_export_pretrained(dir, path, &err), 0, "%s", err.msg);

    clv_safetensors st;
    cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
    const clv_st_tensor *hw = clv_st_find(&st, "head.weight");
    cr_assert_not_null(hw, "the head over all classes is exported");
    cr_assert_eq(hw->shape[0], 10);
    cr_assert_eq(hw->shape[1], 64);
    cr_assert_str_eq(clv_st_meta(&st, "model"), "vit_nano_patch4_32");
    cr_assert_not_null(clv_st_meta(&st, "mean"));
    clv_st_close(&st);

    /* the exported backbone is the run's base, bit for bit */
    char base_path[128];
    snprintf(base_path, sizeof base_path, "%s/base.safetensors", dir);
    clv_model *a = clv_model_create("vit_nano_patch4_32", &err), *b = clv_model_create("vit_nano_patch4_32", &err);
    cr_assert(a && b);
    cr_assert_eq(clv_ckpt_load_backbone(path, a, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_ckpt_load_backbone(base_path, b, &err), 0, "%s", err.msg);
    for (int i = 0; i < a->params.count; i++)
        cr_assert_eq(memcmp(a->params.items[i]->data, b->params.items[i]->data,
                            (size_t)a->params.items[i]->numel * sizeof(float)),
                     0, "%s differs", a->params.items[i]->name);
    clv_model_free(a);
    clv_model_free(b);
    clv_predictor *pr = clv_predictor_from_weights("vit_nano_patch4_32", path, NULL, NULL, &err);
    cr_assert_not_null(pr, "predict takes the exported file: %s", err.msg);
    cr_assert_eq(clv_predictor_classes(pr, 0), 10);
    clv_predictor_free(pr);

    /* a continual run starts from it: task 1 is adapted like the others */
    char run2[64];
    temp_dir(run2, sizeof run2, "fromweights");
    clv_config c2;
    small_config(&c2, 2);
    c2.epochs = 1;
    snprintf(c2.method, sizeof c2.method, "linear");
    snprintf(c2.weights, sizeof c2.weights, "%s", path);
    train_ok(&c2, run2, 0, 0);
    clv_run_record rec;
    clv_config saved;
    read_record(run2, &rec, &saved);
    cr_assert_str_eq(saved.weights, path);
    cr_assert_str_eq(rec.status, "complete");
    clv_run_record_free(&rec);
    tmp_tree_remove(run2);
    tmp_tree_remove(dir);
}
