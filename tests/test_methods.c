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

#include "clvit/adapters.h"
#include "clvit/model.h"
#include "clvit/predictor.h"
#include "clvit/safetensors.h"
#include "clvit/strategy.h"
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

/* setting: one "section.key=value" beside the method's defaults, or NULL */
static void isolation_set(const char *method, const char *model, int task_norms, const char *setting)
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
    clv_err serr = {{0}};
    cr_assert(!setting || !clv_config_set_assignment(&c, setting, &serr), "%s", serr.msg);
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

static void isolation_norms(const char *method, const char *model, int task_norms)
{
    isolation_set(method, model, task_norms, NULL);
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

/* every source of Mask-RKR's shared tensors */
Test(methods, maskrkr_joint_never_changes_earlier_tasks, .timeout = 300)
{
    isolation_set("maskrkr", "vit_nano_patch4_32", 0, "method.maskrkr_source=joint");
}
Test(methods, maskrkr_random_never_changes_earlier_tasks, .timeout = 300)
{
    isolation_set("maskrkr", "vit_nano_patch4_32", 0, "method.maskrkr_source=random");
}
Test(methods, maskrkr_joint_on_resnet_never_changes_earlier_tasks, .timeout = 300)
{
    isolation_set("maskrkr", "resnet_nano_cifar", 0, "method.maskrkr_source=joint");
}
/* RKR's view of convolutions, and the patch embedding left as the base's */
Test(methods, rkr_conv_view_on_resnet_never_changes_earlier_tasks, .timeout = 300)
{
    isolation_set("rkr", "resnet_nano_cifar", 0, "method.conv_view=rkr");
}
Test(methods, maskrkr_conv_view_on_resnet_never_changes_earlier_tasks, .timeout = 300)
{
    isolation_set("maskrkr", "resnet_nano_cifar", 0, "method.conv_view=rkr");
}
Test(methods, piggyback_without_patch_embed_never_changes_earlier_tasks, .timeout = 300)
{
    isolation_set("piggyback", "swin_nano_patch2_window4_32", 0, "method.adapt=no-patch-embed");
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

/* bf16 GEMM inputs: the earlier tasks' effective weights are formed in fp32
 * from frozen tensors and rounded the same way each time, so isolation holds
 * bit for bit as in fp32. (suite bf16: make test runs it again on AVX2 only) */
Test(bf16, rkr_never_changes_earlier_tasks, .timeout = 300)
{
    isolation_set("rkr", "vit_nano_patch4_32", 0, "train.precision=bf16");
}
Test(bf16, piggyback_never_changes_earlier_tasks, .timeout = 300)
{
    isolation_set("piggyback", "vit_nano_patch4_32", 0, "train.precision=bf16");
}
Test(bf16, maskrkr_never_changes_earlier_tasks, .timeout = 300)
{
    isolation_set("maskrkr", "vit_nano_patch4_32", 0, "train.precision=bf16");
}
Test(bf16, rkr_on_resnet_never_changes_earlier_tasks, .timeout = 300)
{
    isolation_set("rkr", "resnet_nano_cifar", 0, "train.precision=bf16");
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

/* A rank above a layer's min(rows, cols) is capped for that layer: run.json
 * names the capped layers, and the stored bits and the task file's tensors
 * have exactly the capped shapes. */
static void capped_rank(const char *method, const char *model, const char *view, int K)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/clvit-cap-%s-XXXXXX", method);
    cr_assert_not_null(mkdtemp(dir));
    clv_config c;
    config(&c, method);
    c.tasks = 5;
    c.train_limit = 64;
    c.epochs = 1;
    c.rank = K;
    snprintf(c.model, sizeof c.model, "%s", model);
    c.conv_view = !strcmp(view, "rkr") ? CLV_CONV_VIEW_RKR : CLV_CONV_VIEW_OURS;
    (void)run(&c, dir, 0, 0);
    clv_run_record rec;
    clv_config saved;
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_read(&rec, &saved, dir, &err), 0, "%s", err.msg);
    clv_model *m = clv_model_create(model, &err);
    cr_assert_not_null(m, "%s", err.msg);
    const clv_conv_view v = !strcmp(view, "rkr") ? CLV_VIEW_RKR : CLV_VIEW_OURS;
    const int maskrkr = !strcmp(method, "maskrkr");
    int64_t lm = 0, rm = 0, f = 0;
    int caps = 0;
    char path[128];
    snprintf(path, sizeof path, "%s/task-02.safetensors", dir); /* rkr's task, or maskrkr's shared floats */
    clv_safetensors st;
    cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
    for (int i = 0; i < m->n_wlayers; i++) {
        const clv_wlayer *l = m->wlayers[i];
        int64_t rows, cols;
        cr_assert_eq(clv_rect_shape(l, v, &rows, &cols, &err), 0, "%s", err.msg);
        const int64_t most = rows < cols ? rows : cols, k = K < most ? K : most;
        lm += rows * k;
        rm += k * cols;
        f += l->out;
        if (k < K) {
            cr_assert_lt(caps, rec.n_rank_caps, "%s: %s capped at %lld but not in run.json", method, l->name,
                         (long long)k);
            cr_expect_str_eq(rec.rank_caps[caps].layer, l->name);
            cr_expect_eq(rec.rank_caps[caps].rank, k, "%s: %s", method, l->name);
            caps++;
        }
        char name[160];
        snprintf(name, sizeof name, "%s.%s.lm", method, l->name);
        const clv_st_tensor *t = clv_st_find(&st, name);
        cr_assert(t && t->ndim == 2 && t->shape[0] == rows && t->shape[1] == k, "%s: %s is not [%lld, %lld]", path,
                  name, (long long)rows, (long long)k);
        snprintf(name, sizeof name, "%s.%s.rm", method, l->name);
        t = clv_st_find(&st, name);
        cr_assert(t && t->ndim == 2 && t->shape[0] == k && t->shape[1] == cols, "%s: %s is not [%lld, %lld]", path,
                  name, (long long)k, (long long)cols);
    }
    clv_st_close(&st);
    cr_assert_gt(caps, 0, "the test needs a capped layer");
    cr_assert(rec.has_rank_caps);
    cr_assert_eq(rec.n_rank_caps, caps, "run.json lists exactly the capped layers");
    for (int t = 1; t < 3; t++) {
        const int floats = !maskrkr || t == 1;
        const int64_t want = floats ? 32 * (lm + rm + f) : lm + rm + f;
        cr_expect_eq(rec.tasks[t].stored_bits - rec.tasks[t].head_bits, want, "%s task %d: %lld bits, expected %lld",
                     method, t + 1, (long long)(rec.tasks[t].stored_bits - rec.tasks[t].head_bits), (long long)want);
        const char *lm_kind = !floats ? "lm_mask" : maskrkr ? "shared_lm" : "lm";
        const char *rm_kind = !floats ? "rm_mask" : maskrkr ? "shared_rm" : "rm";
        cr_expect_eq(clv_storage_get(&rec.tasks[t].storage, lm_kind), floats ? 32 * lm : lm, "%s", lm_kind);
        cr_expect_eq(clv_storage_get(&rec.tasks[t].storage, rm_kind), floats ? 32 * rm : rm, "%s", rm_kind);
    }
    if (maskrkr) /* the masks of the last task cover the capped tensors */
        cr_expect(8 * task_file_bytes(dir, 2) >= lm + rm + f && 8 * task_file_bytes(dir, 2) < lm + rm + f + 24 * m->n_wlayers);
    else
        cr_expect_eq(8 * task_file_bytes(dir, 1), 32 * (lm + rm + f), "rkr: the file holds exactly those floats");
    clv_model_free(m);
    clv_run_record_free(&rec);
    tmp_tree_remove(dir);
}

Test(methods, rank_above_a_layer_is_capped_as_run_json_says, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    /* the case: rank 64 on a 64-wide ViT whose patch embedding has 48 inputs */
    capped_rank("rkr", "vit_nano_patch4_32", "ours", 64);
    capped_rank("maskrkr", "vit_nano_patch4_32", "ours", 64);
    /* RKR's conv view: the 3x3 stem over 3 channels is (3 x 3) x (16 x 3), rank at most 9 */
    capped_rank("rkr", "resnet_nano_cifar", "rkr", 16);
    /* methods without a rank record none; rkr without a capped layer an empty list */
    char dir[64] = "/tmp/clvit-cap-none-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    const char *methods[2] = {"piggyback", "rkr"};
    for (int i = 0; i < 2; i++) {
        clv_config c;
        config(&c, methods[i]);
        c.tasks = 2;
        c.train_limit = 64;
        c.epochs = 1;
        (void)run(&c, dir, 0, 0);
        char path[128], text[1 << 16];
        snprintf(path, sizeof path, "%s/run.json", dir);
        FILE *jf = fopen(path, "r");
        cr_assert_not_null(jf);
        text[fread(text, 1, sizeof text - 1, jf)] = 0;
        fclose(jf);
        cr_expect(i == 0 ? !strstr(text, "rank_caps") : strstr(text, "\"rank_caps\":\t[]") != NULL, "%s: %s",
                  methods[i], strstr(text, "rank_caps") ? strstr(text, "rank_caps") : "no rank_caps");
    }
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
        /* the curve of task 3 comes back from the checkpoint: the same to the bit */
        cr_assert_eq(ra.tasks[i].n_epochs, 2);
        cr_assert_eq(rb.tasks[i].n_epochs, 2);
        for (int e = 0; e < 2; e++) {
            cr_assert_eq(ra.tasks[i].epoch_loss[e], rb.tasks[i].epoch_loss[e], "task %d epoch %d", i + 1, e + 1);
            cr_assert_eq(ra.tasks[i].epoch_train_accuracy[e], rb.tasks[i].epoch_train_accuracy[e]);
        }
        cr_assert_eq(ra.tasks[i].masks.zero_bits, rb.tasks[i].masks.zero_bits);
        cr_assert_eq(ra.tasks[i].masks.n_layers, rb.tasks[i].masks.n_layers);
        cr_assert_eq(ra.tasks[i].warnings.n, rb.tasks[i].warnings.n, "task %d's warnings", i + 1);
        for (int k = 0; k < ra.tasks[i].warnings.n; k++)
            cr_assert_str_eq(ra.tasks[i].warnings.items[k], rb.tasks[i].warnings.items[k]);
    }
    cr_assert_gt(ra.tasks[2].masks.bits, 0, "task 3 stores masks");
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
    /* the adapters' learning rate: a number, not negative */
    cr_assert_eq(clv_config_set_assignment(&c, "method.lr_adapter=nan", &err), -1);
    cr_assert(strstr(err.msg, "method.lr_adapter"), "%s", err.msg);
    cr_assert_eq(clv_config_set_assignment(&c, "method.lr_adapter=-1e-3", &err), -1);
    cr_assert_eq(clv_config_set(&c, clv_config_find_flag("lr-adapter"), "inf", &err), -1);
    config(&c, "rkr");
    c.lr_adapter = NAN;
    cr_assert_eq(clv_config_validate(&c, &err), -1);
    cr_assert(strstr(err.msg, "--lr-adapter"), "%s", err.msg);
    cr_assert_eq(clv_config_set_assignment(&c, "method.adapt=embed", &err), -1);
    cr_assert(strstr(err.msg, "patch-embed|no-patch-embed"), "%s", err.msg);
    cr_assert_eq(clv_config_set_assignment(&c, "method.conv_view=paper", &err), -1);
    cr_assert(strstr(err.msg, "ours|rkr"), "%s", err.msg);
    config(&c, "maskrkr");
    cr_assert_eq(clv_config_set_assignment(&c, "method.maskrkr_source=joint", &err), 0, "%s", err.msg);
    cr_assert_eq(clv_config_validate(&c, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_config_set_assignment(&c, "method.maskrkr_source=last", &err), -1);
    cr_assert(strstr(err.msg, "first|joint|random"), "%s", err.msg);
    /* none of them may change on --resume */
    const char *keys[] = {"method.lr_adapter", "method.adapt", "method.conv_view", "method.maskrkr_source"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert_eq(clv_config_find(keys[i])->resume_may_change, 0, "%s", keys[i]);
}

/* --lr-adapter: the real-valued LM, RM, F train at their own rate (0: --lr),
 * Mask-RKR's scores at --lr-mask, whatever the source. */
static void expect_lr(const char *method, const char *source, float lr_adapter, int task, float want_lr,
                      float want_mask_lr)
{
    clv_config c;
    config(&c, method);
    c.lr = 2e-3f;
    c.lr_adapter = lr_adapter;
    c.maskrkr_source = !strcmp(source, "joint")    ? CLV_MASKRKR_JOINT
                       : !strcmp(source, "random") ? CLV_MASKRKR_RANDOM
                                                   : CLV_MASKRKR_FIRST;
    clv_err err = {{0}};
    clv_model *m = clv_model_create("vit_nano_patch4_32", &err);
    cr_assert_not_null(m, "%s", err.msg);
    clv_head heads[5] = {0};
    clv_learner L = {.cfg = &c, .model = m, .heads = heads, .n_tasks = 5};
    clv_strategy *s = clv_strategy_create(method, &L, &err);
    cr_assert_not_null(s, "%s", err.msg);
    for (int t = 0; t <= task; t++) {
        cr_assert_eq(s->ops->begin_task(s, &L, t, &err), 0, "%s", err.msg);
        if (t == task)
            break;
        cr_assert_eq(s->ops->end_task(s, &L, t, &err), 0, "%s", err.msg);
    }
    clv_params *ps = s->ops->task_params(s, task);
    cr_assert(ps && ps->count > 0, "%s (%s): task %d trains adapter tensors", method, source, task + 1);
    for (int i = 0; i < ps->count; i++) {
        const char *dot = strrchr(ps->items[i]->name, '.');
        const int score = !strncmp(dot, ".s_", 3);
        cr_expect_eq(ps->items[i]->lr_scale, score ? want_mask_lr : want_lr, "%s (%s): %s at %g", method, source,
                     ps->items[i]->name, ps->items[i]->lr_scale);
    }
    clv_strategy_free(s);
    clv_model_free(m);
}

Test(methods, adapter_tensors_train_at_lr_adapter)
{
    expect_lr("rkr", "first", 3e-4f, 1, 3e-4f, 0);
    expect_lr("rkr", "first", 0.0f, 1, 2e-3f, 0); /* 0: the same as --lr */
    expect_lr("maskrkr", "first", 3e-4f, 1, 3e-4f, 0);
    expect_lr("maskrkr", "joint", 3e-4f, 0, 3e-4f, 0); /* learned with the base on task 1 */
    expect_lr("maskrkr", "joint", 3e-4f, 1, 0, 1e-3f);  /* then only scores */
    expect_lr("maskrkr", "random", 3e-4f, 1, 0, 1e-3f);
}

/* --maskrkr-source joint: LM, RM, F learned with the base on task 1 are kept
 * in base.safetensors, counted as task 1's one-time shared_* storage, and
 * read back bit for bit: a run stopped inside task 2 and resumed from the
 * files ends exactly as the uninterrupted one. */
Test(methods, maskrkr_joint_keeps_its_shared_tensors_with_the_base, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char a[64] = "/tmp/clvit-joint-a-XXXXXX", b[64] = "/tmp/clvit-joint-b-XXXXXX";
    cr_assert(mkdtemp(a) && mkdtemp(b));
    clv_config c;
    config(&c, "maskrkr");
    c.maskrkr_source = CLV_MASKRKR_JOINT;
    (void)run(&c, a, 0, 0);
    cr_assert_eq(run(&c, b, 0, STEPS_PER_TASK + 3), CLV_STOPPED); /* inside task 2, the first masked one */
    (void)run(&c, b, 1, 0);
    clv_run_record ra, rb;
    clv_config ca, cb;
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_read(&ra, &ca, a, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_run_record_read(&rb, &cb, b, &err), 0, "%s", err.msg);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j <= i; j++)
            cr_assert_eq(clv_run_record_acc(&ra, i, j), clv_run_record_acc(&rb, i, j), "A[%d][%d]", i, j);
    for (int t = 0; t < 5; t++) {
        float la[8], lb[8];
        task_logits(a, t, la);
        task_logits(b, t, lb);
        cr_assert_eq(memcmp(la, lb, sizeof la), 0, "task %d's logits", t + 1);
    }
    /* the base file holds them, learned (RM starts at 0), and no task file does */
    char path[128];
    snprintf(path, sizeof path, "%s/base.safetensors", a);
    clv_safetensors st;
    cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
    const int64_t lm = layer_sum(lm_floats, 2), rm = layer_sum(rm_floats, 2), f = layer_sum(f_floats, 0);
    int64_t got[3] = {0, 0, 0};
    double rm_size = 0;
    for (int i = 0; i < st.count; i++) {
        const clv_st_tensor *t = &st.tensors[i];
        if (strncmp(t->name, "maskrkr.", 8))
            continue;
        const char *dot = strrchr(t->name, '.');
        const int k = !strcmp(dot, ".lm") ? 0 : !strcmp(dot, ".rm") ? 1 : 2;
        got[k] += t->numel;
        if (k == 1) {
            const float *v = clv_st_tensor_data(&st, t);
            for (int64_t j = 0; j < t->numel; j++)
                rm_size += fabs(v[j]);
        }
    }
    clv_st_close(&st);
    cr_assert(got[0] == lm && got[1] == rm && got[2] == f, "base file: %lld %lld %lld floats of LM, RM, F",
              (long long)got[0], (long long)got[1], (long long)got[2]);
    cr_assert_gt(rm_size, 0.0, "RM was learned with the base");
    for (int t = 0; t < 5; t++) {
        snprintf(path, sizeof path, "%s/task-%02d.safetensors", a, t + 1);
        cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
        for (int i = 0; i < st.count; i++)
            cr_assert(strncmp(st.tensors[i].name, "maskrkr.", 8), "%s holds %s", path, st.tensors[i].name);
        clv_st_close(&st);
    }
    const int64_t head = (64 + 1) * 2 * 32;
    const char *kinds[] = {"head", "shared_lm", "shared_rm", "shared_f"};
    expect_storage(&ra.tasks[0], kinds, (int64_t[]){head, 32 * lm, 32 * rm, 32 * f}, 4, "joint: task 1");
    const char *mask_kinds[] = {"head", "lm_mask", "rm_mask", "f_mask"};
    for (int t = 1; t < 5; t++)
        expect_storage(&ra.tasks[t], mask_kinds, (int64_t[]){head, lm, rm, f}, 4, "joint: a masked task");
    clv_run_record_free(&ra);
    clv_run_record_free(&rb);
    tmp_tree_remove(a);
    tmp_tree_remove(b);
}

/* --adapt no-patch-embed: the first weight layer (the one reading the image)
 * stays the base's: nothing stored for it, nothing in the task files. */
static int64_t without_first(int64_t (*f)(int64_t out, int64_t in, int k), int k)
{
    clv_err err = {{0}};
    clv_model *m = clv_model_create("vit_nano_patch4_32", &err);
    const int64_t first = f(m->wlayers[0]->out, m->wlayers[0]->in, k);
    clv_model_free(m);
    return layer_sum(f, k) - first;
}

Test(methods, no_patch_embed_leaves_the_layer_reading_the_image_alone, .timeout = 300)
{
    const char *models[3] = {"vit_nano_patch4_32", "swin_nano_patch2_window4_32", "resnet_nano_cifar"};
    const char *first[3] = {"patch_embed.proj", "patch_embed.proj", "conv1"};
    for (int i = 0; i < 3; i++) {
        clv_err err = {{0}};
        clv_model *m = clv_model_create(models[i], &err);
        cr_assert_not_null(m, "%s", err.msg);
        const clv_wlayer *l = m->wlayers[0];
        cr_expect_str_eq(l->name, first[i], "%s: the first weight layer", models[i]);
        cr_expect(l->weight->ndim == 4 && l->weight->shape[1] == m->info.in_chans, "%s: it reads the image",
                  models[i]);
        clv_model_free(m);
    }
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    const char *methods[3] = {"rkr", "piggyback", "maskrkr"};
    for (int k = 0; k < 3; k++) {
        char dir[64] = "/tmp/clvit-nope-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        clv_config c;
        config(&c, methods[k]);
        c.train_limit = 64;
        c.epochs = 1;
        c.adapt = CLV_ADAPT_NO_PATCH_EMBED;
        (void)run(&c, dir, 0, 0);
        clv_run_record rec;
        clv_config saved;
        clv_err err = {{0}};
        cr_assert_eq(clv_run_record_read(&rec, &saved, dir, &err), 0, "%s", err.msg);
        cr_assert_eq(saved.adapt, CLV_ADAPT_NO_PATCH_EMBED, "run.json records it");
        const int64_t want = k == 1 ? without_first(weights, 0) : 32 * without_first(rkr_floats, 2);
        cr_expect_eq(rec.tasks[1].stored_bits - rec.tasks[1].head_bits, want, "%s: %lld bits, expected %lld",
                     methods[k], (long long)(rec.tasks[1].stored_bits - rec.tasks[1].head_bits), (long long)want);
        for (int t = 1; t < 5; t++) {
            char path[128];
            snprintf(path, sizeof path, "%s/task-%02d.safetensors", dir, t + 1);
            clv_safetensors st;
            cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
            for (int i = 0; i < st.count; i++)
                cr_assert(!strstr(st.tensors[i].name, "patch_embed"), "%s holds %s", path, st.tensors[i].name);
            clv_st_close(&st);
        }
        clv_run_record_free(&rec);
        tmp_tree_remove(dir);
    }
}

/* --maskrkr-source joint with --weights: "with the base" means the loaded
 * base trains on task 1 together with LM, RM, F; the run's base file then
 * differs from the weights, task 1 is the one-time task, and no task is
 * forgotten afterwards. */
Test(methods, maskrkr_joint_with_weights_trains_the_loaded_base_on_task_1, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char w[64] = "/tmp/clvit-jw-w-XXXXXX", dir[64] = "/tmp/clvit-jw-XXXXXX";
    cr_assert(mkdtemp(w) && mkdtemp(dir));
    clv_config c;
    config(&c, "linear");
    c.train_limit = 64;
    c.epochs = 1;
    (void)run(&c, w, 0, 0); /* a base trained on task 1: the "pretrained" weights */
    config(&c, "maskrkr");
    c.maskrkr_source = CLV_MASKRKR_JOINT;
    snprintf(c.weights, sizeof c.weights, "%s/base.safetensors", w);
    (void)run(&c, dir, 0, 0);
    clv_run_record rec;
    clv_config saved;
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_read(&rec, &saved, dir, &err), 0, "%s", err.msg);
    cr_expect_eq(clv_storage_get(&rec.tasks[0].storage, "shared_lm"), 32 * layer_sum(lm_floats, 2));
    cr_expect(rec.tasks[0].storage.one_time_task, "task 1 pays the one-time cost");
    for (int t = 1; t < 5; t++)
        cr_expect_eq(clv_storage_get(&rec.tasks[t].storage, "lm_mask"), layer_sum(lm_floats, 2), "task %d masks",
                     t + 1);
    for (int j = 0; j < 5; j++)
        for (int i = j + 1; i < 5; i++)
            cr_assert_eq(clv_run_record_acc(&rec, i, j), clv_run_record_acc(&rec, j, j), "A[%d][%d]", i, j);
    char pa[128], pb[128];
    snprintf(pa, sizeof pa, "%s/base.safetensors", w);
    snprintf(pb, sizeof pb, "%s/base.safetensors", dir);
    clv_safetensors a, b;
    cr_assert_eq(clv_st_open(&a, pa, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_st_open(&b, pb, &err), 0, "%s", err.msg);
    const clv_st_tensor *ta = clv_st_find(&a, "blocks.0.attn.qkv.weight"), *tb = clv_st_find(&b, "blocks.0.attn.qkv.weight");
    cr_assert(ta && tb && ta->numel == tb->numel);
    cr_expect_neq(memcmp(clv_st_tensor_data(&a, ta), clv_st_tensor_data(&b, tb), (size_t)ta->numel * 4), 0,
                  "the loaded base trained on task 1");
    cr_expect_not_null(clv_st_find(&b, "maskrkr.blocks.0.attn.qkv.lm"), "LM, RM, F kept with the base");
    clv_st_close(&a);
    clv_st_close(&b);
    clv_run_record_free(&rec);
    tmp_tree_remove(w);
    tmp_tree_remove(dir);
}
