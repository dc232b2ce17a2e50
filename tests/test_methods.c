/* The methods end to end on Fashion-MNIST: earlier tasks' logits never
 * change bit for bit, stored bits equal the formula and the task files, a
 * run resumed inside task 3 ends as the uninterrupted one, wrong settings
 * are refused. Skipped when the Debian dataset is absent. */
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/model.h"
#include "clvit/predictor.h"
#include "clvit/safetensors.h"
#include "clvit/trainer.h"
#include "tmp_tree.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
#define STEPS_PER_TASK 8 /* 256 images, batch 64, 2 epochs */


static void config(clv_config *c, const char *method)
{
    clv_config_defaults(c);
    snprintf(c->method, sizeof c->method, "%s", method);
    c->tasks = 5;
    c->train_limit = 256;
    c->test_limit = 64;
    c->epochs = 2;
    c->batch = 64;
    c->threads = 2;
    c->eval_batch = 64;
    c->seed = 3;
    c->lr_mask = 1e-3f; /* enough to flip some mask bits in a few steps */
}

static int run(const clv_config *c, const char *dir, int resume, int64_t stop_after)
{
    clv_train_opts o = {.out_dir = dir, .resume = resume, .overwrite = !resume, .stop_after_steps = stop_after};
    clv_err err = {{0}};
    int rc = clv_train_run(c, &o, &err);
    cr_assert(rc == 0 || rc == CLV_STOPPED, "%s", err.msg);
    return rc;
}

/* Logits of task for a fixed batch, from the weights saved in dir. */
static void task_logits(const char *dir, int task, float *logits)
{
    clv_err err = {{0}};
    clv_predictor *p = clv_predictor_from_run(dir, &err);
    cr_assert_not_null(p, "%s", err.msg);
    const clv_present *pr = clv_predictor_present(p);
    int64_t per = (int64_t)pr->out_c * pr->out_h * pr->out_w;
    float *x = malloc((size_t)(4 * per) * sizeof *x);
    for (int64_t i = 0; i < 4 * per; i++)
        x[i] = sinf(0.37f * (float)i);
    cr_assert_eq(clv_predictor_logits(p, task, x, 4, logits, &err), 0, "%s", err.msg);
    free(x);
    clv_predictor_free(p);
}

static void isolation_norms(const char *method, const char *model, int task_norms)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/clvit-iso-%s-XXXXXX", method);
    cr_assert_not_null(mkdtemp(dir));
    clv_config c;
    config(&c, method);
    c.tasks = 5;
    snprintf(c.model, sizeof c.model, "%s", model);
    c.task_norms = task_norms;
    /* stop at the end of task 2's steps; the resume finishes task 2 and stops in task 3 */
    cr_assert_eq(run(&c, dir, 0, 2 * STEPS_PER_TASK), CLV_STOPPED);
    cr_assert_eq(run(&c, dir, 1, STEPS_PER_TASK), CLV_STOPPED);
    float after2_t0[8], after2_t1[8], later_t0[8], later_t1[8];
    task_logits(dir, 0, after2_t0);
    task_logits(dir, 1, after2_t1);
    cr_assert_eq(run(&c, dir, 1, 0), 0);
    task_logits(dir, 0, later_t0);
    task_logits(dir, 1, later_t1);
    cr_assert_eq(memcmp(after2_t0, later_t0, sizeof later_t0), 0, "%s: task 1's logits changed", method);
    cr_assert_eq(memcmp(after2_t1, later_t1, sizeof later_t1), 0, "%s: task 2's logits changed", method);

    clv_run_record rec;
    clv_config saved;
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_read(&rec, &saved, dir, &err), 0, "%s", err.msg);
    for (int j = 0; j < 5; j++)
        for (int i = j + 1; i < 5; i++)
            cr_assert_eq(clv_run_record_acc(&rec, i, j), clv_run_record_acc(&rec, j, j),
                         "%s forgets: A[%d][%d] %f vs %f", method, i, j, clv_run_record_acc(&rec, i, j),
                         clv_run_record_acc(&rec, j, j));
    cr_assert_float_eq(clv_run_record_forgetting(&rec), 0.0, 1e-12);
    if (task_norms) { /* each adapted task stores its norms: every norm parameter's floats */
        clv_model *m = clv_model_create(model, &err);
        cr_assert(m, "%s", err.msg);
        int64_t floats = 0;
        for (int i = 0; i < m->params.count; i++)
            if (m->params.items[i]->norm)
                floats += m->params.items[i]->numel;
        clv_model_free(m);
        cr_expect_eq(clv_storage_get(&rec.tasks[0].storage, "norms"), 0, "the base task has the base's norms");
        for (int t = 1; t < 5; t++)
            cr_expect_eq(clv_storage_get(&rec.tasks[t].storage, "norms"), 32 * floats, "task %d: %lld norm floats", t + 1,
                         (long long)floats);
        char path[128];
        snprintf(path, sizeof path, "%s/task-03.safetensors", dir);
        clv_safetensors st;
        cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
        int n = 0;
        for (int i = 0; i < st.count; i++)
            n += !strncmp(st.tensors[i].name, "norms.", 6);
        cr_expect_gt(n, 0, "the task file holds its norms");
        clv_st_close(&st);
    }
    clv_run_record_free(&rec);
    tmp_tree_remove(dir);
}

static void isolation(const char *method, const char *model) { isolation_norms(method, model, 0); }

Test(methods, rkr_never_changes_earlier_tasks, .timeout = 300) { isolation("rkr", "vit_nano_patch4_32"); }
Test(methods, piggyback_never_changes_earlier_tasks, .timeout = 300) { isolation("piggyback", "vit_nano_patch4_32"); }
Test(methods, maskrkr_never_changes_earlier_tasks, .timeout = 300) { isolation("maskrkr", "vit_nano_patch4_32"); }
/* --task-norms: each task its own LayerNorms (ViT) or batch norms with their statistics (ResNet) */
Test(methods, rkr_with_task_norms_never_changes_earlier_tasks, .timeout = 300)
{
    isolation_norms("rkr", "vit_nano_patch4_32", 1);
}
Test(methods, piggyback_with_task_norms_on_resnet_never_changes_earlier_tasks, .timeout = 300)
{
    isolation_norms("piggyback", "resnet_nano_cifar", 1);
}
Test(methods, maskrkr_with_task_norms_never_changes_earlier_tasks, .timeout = 300)
{
    isolation_norms("maskrkr", "vit_nano_patch4_32", 1);
}
/* a CNN: adapters on convolutions, batch norms frozen with the base */
Test(methods, rkr_on_resnet_never_changes_earlier_tasks, .timeout = 300) { isolation("rkr", "resnet_nano_cifar"); }
Test(methods, piggyback_on_resnet_never_changes_earlier_tasks, .timeout = 300)
{
    isolation("piggyback", "resnet_nano_cifar");
}
Test(methods, maskrkr_on_resnet_never_changes_earlier_tasks, .timeout = 300)
{
    isolation("maskrkr", "resnet_nano_cifar");
}
/* a hierarchical transformer: adapters on windowed attention and patch merging */
Test(methods, rkr_on_swin_never_changes_earlier_tasks, .timeout = 300) { isolation("rkr", "swin_nano_patch2_window4_32"); }
Test(methods, piggyback_on_swin_never_changes_earlier_tasks, .timeout = 300)
{
    isolation("piggyback", "swin_nano_patch2_window4_32");
}
Test(methods, maskrkr_on_swin_never_changes_earlier_tasks, .timeout = 300)
{
    isolation("maskrkr", "swin_nano_patch2_window4_32");
}

/* Sum over the model's weight layers of f(out, in). */
static int64_t layer_sum(int64_t (*f)(int64_t out, int64_t in, int k), int k)
{
    clv_err err = {{0}};
    clv_model *m = clv_model_create("vit_nano_patch4_32", &err);
    cr_assert_not_null(m, "%s", err.msg);
    int64_t s = 0;
    for (int i = 0; i < m->n_wlayers; i++)
        s += f(m->wlayers[i]->out, m->wlayers[i]->in, k);
    clv_model_free(m);
    return s;
}

static int64_t rkr_floats(int64_t out, int64_t in, int k) { return out * k + k * in + out; }
static int64_t weights(int64_t out, int64_t in, int k) { return (void)k, out * in; }
static int64_t layers(int64_t out, int64_t in, int k) { return (void)out, (void)in, (void)k, 1; }
static int64_t lm_floats(int64_t out, int64_t in, int k) { return (void)in, out * k; }
static int64_t rm_floats(int64_t out, int64_t in, int k) { return (void)out, k * in; }
static int64_t f_floats(int64_t out, int64_t in, int k) { return (void)in, (void)k, out; }

/* The per-kind breakdown adds up to stored_bits and has exactly the kinds given. */
static void expect_storage(const clv_task_record *tr, const char *const *kinds, const int64_t *bits, int n,
                           const char *what)
{
    cr_assert_eq(tr->storage.n, n, "%s: %d kinds recorded, expected %d", what, tr->storage.n, n);
    for (int i = 0; i < n; i++)
        cr_expect_eq(clv_storage_get(&tr->storage, kinds[i]), bits[i], "%s: %s = %lld bits, expected %lld", what,
                     kinds[i], (long long)clv_storage_get(&tr->storage, kinds[i]), (long long)bits[i]);
    cr_expect_eq(clv_storage_total(&tr->storage), tr->stored_bits, "%s: the kinds add up to stored_bits", what);
}

/* Bytes of the tensors of task-NN.safetensors other than the head. */
static int64_t task_file_bytes(const char *dir, int task)
{
    char path[128];
    snprintf(path, sizeof path, "%s/task-%02d.safetensors", dir, task + 1);
    clv_safetensors st;
    clv_err err = {{0}};
    cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
    int64_t bytes = 0;
    for (int i = 0; i < st.count; i++)
        if (strncmp(st.tensors[i].name, "head.", 5))
            bytes += (int64_t)(st.tensors[i].end - st.tensors[i].begin);
    clv_st_close(&st);
    return bytes;
}

Test(methods, stored_bits_equal_the_formula_and_the_files, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    const char *methods[3] = {"rkr", "piggyback", "maskrkr"};
    const int64_t head = (64 + 1) * 5 * 32, K = 2;
    const int64_t rkr_bits = 32 * layer_sum(rkr_floats, (int)K), masked = layer_sum(rkr_floats, (int)K);
    const int64_t pb_bits = layer_sum(weights, 0), n_layers = layer_sum(layers, 0);
    for (int m = 0; m < 3; m++) {
        char dir[64];
        snprintf(dir, sizeof dir, "/tmp/clvit-bits-%s-XXXXXX", methods[m]);
        cr_assert_not_null(mkdtemp(dir));
        clv_config c;
        config(&c, methods[m]);
        c.tasks = 2;
        c.train_limit = 64;
        c.epochs = 1;
        c.rank = (int)K;
        (void)run(&c, dir, 0, 0);
        clv_run_record rec;
        clv_config saved;
        clv_err err = {{0}};
        cr_assert_eq(clv_run_record_read(&rec, &saved, dir, &err), 0, "%s", err.msg);
        cr_assert_eq(rec.tasks[0].stored_bits, head, "%s: the base task adds only its head", methods[m]);
        int64_t own = rec.tasks[1].stored_bits - rec.tasks[1].head_bits;
        cr_assert_eq(rec.tasks[1].head_bits, head);
        int64_t file_bits = 8 * task_file_bytes(dir, 1);
        const int64_t lm = layer_sum(lm_floats, (int)K), rm = layer_sum(rm_floats, (int)K), f = layer_sum(f_floats, 0);
        if (m == 0) {
            const char *kinds[] = {"head", "lm", "rm", "f"};
            expect_storage(&rec.tasks[1], kinds, (int64_t[]){head, 32 * lm, 32 * rm, 32 * f}, 4, "rkr");
            cr_assert_eq(own, rkr_bits, "rkr: 32 x (out K + K in + out) per layer");
            cr_assert_eq(file_bits, own, "rkr: the file holds exactly those floats");
        } else if (m == 1) {
            const char *kinds[] = {"head", "weight_mask"};
            expect_storage(&rec.tasks[1], kinds, (int64_t[]){head, pb_bits}, 2, "piggyback");
            cr_assert_eq(own, pb_bits, "piggyback: 1 bit per weight");
            cr_assert(file_bits >= own && file_bits < own + 8 * n_layers, "piggyback file %lld bits for %lld",
                      (long long)file_bits, (long long)own);
        } else {
            /* task 2 is the first adapted task: it learns the shared tensors (floats), a one-time cost */
            const char *kinds[] = {"head", "shared_lm", "shared_rm", "shared_f"};
            expect_storage(&rec.tasks[1], kinds, (int64_t[]){head, 32 * lm, 32 * rm, 32 * f}, 4, "maskrkr shared");
            cr_assert_eq(own, 32 * masked, "maskrkr: the shared tensors once");
            cr_assert_eq(file_bits, own);
        }
        clv_run_record_free(&rec);
        tmp_tree_remove(dir);
    }
    /* a later Mask-RKR task: 1 bit per masked element */
    char dir[64] = "/tmp/clvit-bits-mrkr3-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    clv_config c;
    config(&c, "maskrkr");
    c.tasks = 5;
    c.train_limit = 64;
    c.epochs = 1;
    snprintf(c.mask_on, sizeof c.mask_on, "lm,f");
    (void)run(&c, dir, 0, 0);
    clv_run_record rec;
    clv_config saved;
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_read(&rec, &saved, dir, &err), 0, "%s", err.msg);
    int64_t lm_f = layer_sum(rkr_floats, 2); /* out K + K in + out; minus RM's K in below */
    int64_t rm = 0;
    {
        clv_model *m = clv_model_create("vit_nano_patch4_32", &err);
        for (int i = 0; i < m->n_wlayers; i++)
            rm += 2 * m->wlayers[i]->in;
        clv_model_free(m);
    }
    for (int t = 2; t < 5; t++) {
        cr_assert_eq(rec.tasks[t].stored_bits - rec.tasks[t].head_bits, lm_f - rm,
                     "maskrkr --mask-on lm,f: 1 bit per element of LM and F");
        const char *kinds[] = {"head", "lm_mask", "f_mask"};
        expect_storage(&rec.tasks[t], kinds,
                       (int64_t[]){rec.tasks[t].head_bits, layer_sum(lm_floats, 2), layer_sum(f_floats, 0)}, 3,
                       "maskrkr --mask-on lm,f");
    }
    int64_t file_bits = 8 * task_file_bytes(dir, 3);
    cr_assert(file_bits >= lm_f - rm && file_bits < lm_f - rm + 16 * n_layers, "file %lld bits",
              (long long)file_bits);
    clv_run_record_free(&rec);
    tmp_tree_remove(dir);
}

Test(methods, resume_inside_task_3_ends_the_same, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char a[64] = "/tmp/clvit-res-a-XXXXXX", b[64] = "/tmp/clvit-res-b-XXXXXX";
    cr_assert(mkdtemp(a) && mkdtemp(b));
    clv_config c;
    config(&c, "maskrkr");
    c.tasks = 5;
    (void)run(&c, a, 0, 0);
    cr_assert_eq(run(&c, b, 0, 2 * STEPS_PER_TASK + 3), CLV_STOPPED); /* inside task 3 */
    (void)run(&c, b, 1, 0);
    clv_run_record ra, rb;
    clv_config ca, cb;
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_read(&ra, &ca, a, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_run_record_read(&rb, &cb, b, &err), 0, "%s", err.msg);
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j <= i; j++)
            cr_assert_eq(clv_run_record_acc(&ra, i, j), clv_run_record_acc(&rb, i, j), "A[%d][%d]", i, j);
        cr_assert_eq(ra.tasks[i].stored_bits, rb.tasks[i].stored_bits);
        cr_assert_eq(ra.tasks[i].trainable_params, rb.tasks[i].trainable_params);
    }
    float la[8], lb[8];
    task_logits(a, 2, la);
    task_logits(b, 2, lb);
    cr_assert_eq(memcmp(la, lb, sizeof la), 0, "task 3's weights are the same");
    clv_run_record_free(&ra);
    clv_run_record_free(&rb);
    tmp_tree_remove(a);
    tmp_tree_remove(b);
}

Test(methods, wrong_settings_are_refused)
{
    clv_config c;
    clv_err err = {{0}};
    config(&c, "rkr");
    c.rank = 0;
    cr_assert_eq(clv_config_validate(&c, &err), -1);
    cr_assert(strstr(err.msg, "--rank"), "%s", err.msg);
    config(&c, "piggyback");
    c.threshold = 0.5f;
    cr_assert_eq(clv_config_validate(&c, &err), -1);
    cr_assert(strstr(err.msg, "--threshold") && strstr(err.msg, "--mask-init"), "%s", err.msg);
    const char *bad[] = {"lm,xx", "", "lm,lm", "lm,", "LM"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        config(&c, "maskrkr");
        snprintf(c.mask_on, sizeof c.mask_on, "%s", bad[i]);
        cr_assert_eq(clv_config_validate(&c, &err), -1, "--mask-on '%s'", bad[i]);
        cr_assert(strstr(err.msg, "--mask-on"), "%s", err.msg);
    }
    config(&c, "maskrkr");
    snprintf(c.mask_on, sizeof c.mask_on, "f,lm");
    cr_assert_eq(clv_config_validate(&c, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_config_mask_on("rm,f", &err), 2 | 4);
    config(&c, "finetune");
    c.task_norms = 1;
    cr_assert_eq(clv_config_validate(&c, &err), -1);
    cr_assert(strstr(err.msg, "--task-norms") && strstr(err.msg, "finetune"), "%s", err.msg);
    /* a rank larger than a layer is refused when the adapters are made */
    config(&c, "rkr");
    c.rank = 100;
    c.tasks = 2;
    char dir[64] = "/tmp/clvit-rank-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    clv_train_opts o = {.out_dir = dir, .overwrite = 1};
    if (!access(FMNIST, R_OK)) {
        cr_assert_eq(clv_train_run(&c, &o, &err), -1);
        cr_assert(strstr(err.msg, "rank 100"), "%s", err.msg);
    }
    tmp_tree_remove(dir);
}
