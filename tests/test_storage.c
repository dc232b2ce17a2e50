/* Storage split into one-time, heads and marginal bits: on tiny runs of
 * every method it adds up to stored_bits (per task and in total), the
 * marginal tasks are the ones after any one-time cost, Mask-RKR's marginal
 * figure is its masks only, run.json says the same; run.json files written
 * before the split are read with it inferred. The end-to-end part is
 * skipped when the Debian dataset is absent. */
#define _XOPEN_SOURCE 700
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/model.h"
#include "clvit/storage_summary.h"
#include "clvit/trainer.h"
#include "tmp_tree.h"
#include "tiny_run.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
#define T 5
#define K 2

static void tiny(clv_config *c, const char *method, const char *weights)
{
    tiny_run_config(c, method, T);
    snprintf(c->weights, sizeof c->weights, "%s", weights ? weights : "");
    c->rank = K;
    c->batch = 64;
    c->lr_mask = 1e-3f;
}

/* What vit_nano stores per task, by the formulas of docs/methods.md. */
typedef struct {
    int64_t base_floats, weights, lm, rm, f;
} nano_sizes;

static nano_sizes sizes(void)
{
    clv_err err = {{0}};
    clv_model *m = clv_model_create("vit_nano_patch4_32", &err);
    cr_assert_not_null(m, "%s", err.msg);
    nano_sizes s = {clv_params_count(&m->params, 0), 0, 0, 0, 0};
    for (int i = 0; i < m->n_wlayers; i++) {
        int64_t out = m->wlayers[i]->out, in = m->wlayers[i]->in;
        s.weights += out * in;
        s.lm += out * K;
        s.rm += K * in;
        s.f += out;
    }
    clv_model_free(m);
    return s;
}

static cJSON *read_json(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/run.json", dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    cJSON *root = cJSON_Parse(text);
    cr_assert_not_null(root, "%s is JSON", path);
    return root;
}

static double json_num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert(cJSON_IsNumber(v) || cJSON_IsNull(v), "key %s", key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Trains, then checks the split adds up and that run.json says what the summary says.
 * marginal_tasks: bit t set = task t + 1 counts in the mean. */
static void check_run(const char *method, const char *weights, unsigned marginal_tasks, double marginal_bits,
                      double marginal_elements, int64_t one_time_extra_bits, char *keep_dir)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/clvit-storage-%s-XXXXXX", method);
    cr_assert_not_null(mkdtemp(dir));
    clv_config c;
    tiny(&c, method, weights);
    clv_train_opts o = {.out_dir = dir, .overwrite = 1};
    clv_err err = {{0}};
    cr_assert_eq(clv_train_run(&c, &o, &err), 0, "%s: %s", method, err.msg);
    clv_run_record rec;
    clv_config saved;
    cr_assert_eq(clv_run_record_read(&rec, &saved, dir, &err), 0, "%s", err.msg);
    clv_storage_summary s;
    clv_storage_summarize(&rec, &s);
    const char *w = weights ? " --weights" : "";

    int64_t stored = 0;
    for (int t = 0; t < T; t++) {
        const clv_task_record *tr = &rec.tasks[t];
        clv_task_split sp;
        clv_storage_split_task(&tr->storage, &sp);
        cr_assert_eq(sp.head_bits + sp.one_time_bits + sp.marginal_bits, tr->stored_bits,
                     "%s%s task %d: head %lld + one-time %lld + marginal %lld = stored %lld", method, w, t + 1,
                     (long long)sp.head_bits, (long long)sp.one_time_bits, (long long)sp.marginal_bits,
                     (long long)tr->stored_bits);
        cr_assert_eq(sp.head_bits, tr->head_bits);
        cr_assert_eq(sp.head_elements * 32, tr->head_bits, "a head is floats");
        cr_assert_eq(clv_storage_task_is_marginal(tr), (int)((marginal_tasks >> t) & 1), "%s%s: task %d counted?",
                     method, w, t + 1);
        stored += tr->stored_bits;
    }
    cr_assert_eq(s.total_bits, rec.base_bits + stored);
    cr_assert_eq(s.one_time_bits + s.head_bits + s.marginal_bits, s.total_bits, "%s%s: the split adds up", method,
                 w);
    cr_assert_eq(s.one_time_bits, rec.base_bits + one_time_extra_bits, "%s%s: one-time = base + %lld", method, w,
                 (long long)one_time_extra_bits);
    cr_assert_float_eq(s.marginal_bits_per_task, marginal_bits, 1e-9, "%s%s: marginal %f, expected %f", method, w,
                       s.marginal_bits_per_task, marginal_bits);
    cr_assert_float_eq(s.marginal_elements_per_task, marginal_elements, 1e-9, "%s%s: marginal elements %f vs %f",
                       method, w, s.marginal_elements_per_task, marginal_elements);
    cr_assert_float_eq(s.head_bits_per_task, (double)rec.tasks[0].head_bits, 1e-9, "equal heads");

    /* run.json says the same */
    cJSON *root = read_json(dir);
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(root, "storage");
    cr_assert(cJSON_IsObject(js), "run.json has \"storage\"");
    cr_assert_eq(json_num(js, "base_bits"), (double)rec.base_bits);
    cr_assert_eq(json_num(js, "one_time_bits"), (double)s.one_time_bits);
    cr_assert_eq(json_num(js, "one_time_elements"), (double)s.one_time_elements);
    cr_assert_eq(json_num(js, "marginal_bits_per_task"), marginal_bits);
    cr_assert_eq(json_num(js, "marginal_elements_per_task"), marginal_elements);
    cr_assert_eq(json_num(js, "head_bits_per_task"), s.head_bits_per_task);
    cr_assert_eq(json_num(js, "head_elements_per_task"), s.head_elements_per_task);
    cr_assert_eq(json_num(js, "total_bits"), (double)s.total_bits);
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(js, "one_time"), *kv;
    double kinds_sum = 0;
    cJSON_ArrayForEach(kv, one) kinds_sum += kv->valuedouble;
    cr_assert_eq(kinds_sum, (double)s.one_time_bits, "the one-time kinds add up");
    unsigned listed = 0;
    cJSON_ArrayForEach(kv, cJSON_GetObjectItemCaseSensitive(js, "marginal_tasks")) listed |= 1u << (kv->valueint - 1);
    cr_assert_eq(listed, marginal_tasks, "marginal_tasks");
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(root, "tasks");
    for (int t = 0; t < T; t++) {
        const cJSON *o = cJSON_GetArrayItem(tasks, t);
        clv_task_split sp;
        clv_storage_split_task(&rec.tasks[t].storage, &sp);
        cr_assert_eq(json_num(o, "marginal_bits"), (double)sp.marginal_bits);
        cr_assert_eq(json_num(o, "marginal_elements"), (double)sp.marginal_elements);
        cr_assert_eq(json_num(o, "head_elements"), (double)sp.head_elements);
    }
    cJSON_Delete(root);
    clv_run_record_free(&rec);
    if (keep_dir)
        strcpy(keep_dir, dir);
    else
        tmp_tree_remove(dir);
}

Test(storage, split_adds_up_for_every_method, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    const nano_sizes z = sizes();
    const int64_t rkr = z.lm + z.rm + z.f;
    const unsigned all = 0x1f, after_base = 0x1e;
    check_run("finetune", NULL, all, 0, 0, 0, NULL);
    check_run("linear", NULL, after_base, 0, 0, 0, NULL);
    /* the regularizers: ewc's one Fisher (a float per backbone weight) is a one-time cost, lwf stores nothing */
    check_run("ewc", NULL, all, 0, 0, 32 * z.base_floats, NULL);
    check_run("lwf", NULL, all, 0, 0, 0, NULL);
    check_run("independent", NULL, all, 32.0 * z.base_floats, (double)z.base_floats, 0, NULL);
    char base_run[64];
    check_run("rkr", NULL, after_base, 32.0 * rkr, (double)rkr, 0, base_run);
    check_run("piggyback", NULL, after_base, (double)z.weights, (double)z.weights, 0, NULL);
    /* Mask-RKR: task 1 trains the base, task 2 learns LM, RM, F (one-time floats); tasks 3-5 store masks only */
    check_run("maskrkr", NULL, 0x1c, (double)rkr, (double)rkr, 32 * rkr, NULL);

    /* from a pretrained base: task 1 is adapted like the others */
    char weights[128];
    snprintf(weights, sizeof weights, "%s/base.safetensors", base_run);
    check_run("rkr", weights, all, 32.0 * rkr, (double)rkr, 0, NULL);
    check_run("maskrkr", weights, 0x1e, (double)rkr, (double)rkr, 32 * rkr, NULL);
    tmp_tree_remove(base_run);
}

Test(storage, maskrkr_marginal_is_its_masks_only, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char dir[64] = "/tmp/clvit-storage-mrkr-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    clv_config c;
    tiny(&c, "maskrkr", NULL);
    c.tasks = 5;
    snprintf(c.mask_on, sizeof c.mask_on, "lm,f");
    c.task_norms = 1; /* the shared task also stores norms: marginal bits of a one-time task */
    clv_train_opts o = {.out_dir = dir, .overwrite = 1};
    clv_err err = {{0}};
    cr_assert_eq(clv_train_run(&c, &o, &err), 0, "%s", err.msg);
    clv_run_record rec;
    clv_config saved;
    cr_assert_eq(clv_run_record_read(&rec, &saved, dir, &err), 0, "%s", err.msg);
    clv_storage_summary s;
    clv_storage_summarize(&rec, &s);
    const nano_sizes z = sizes();
    const int64_t norms = clv_storage_get(&rec.tasks[2].storage, "norms");
    cr_assert_gt(norms, 0);
    cr_assert_eq(s.n_marginal, 3, "tasks 3, 4, 5");
    cr_assert_float_eq(s.marginal_bits_per_task, (double)(z.lm + z.f + norms), 1e-9,
                       "1 bit per element of LM and F, and the task's norms: %f", s.marginal_bits_per_task);
    cr_assert_eq(clv_storage_get(&rec.tasks[1].storage, "shared_rm"), 32 * z.rm, "RM is shared though not masked");
    cr_assert_eq(s.one_time_bits, rec.base_bits + 32 * (z.lm + z.rm + z.f));
    cr_assert_eq(s.one_time_bits + s.head_bits + s.marginal_bits, s.total_bits);
    clv_run_record_free(&rec);
    tmp_tree_remove(dir);
}

/* A record built by hand: what counts, what is NAN. */
Test(storage, summary_of_a_record)
{
    clv_run_record r;
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_init(&r, 4, &err), 0);
    r.base_bits = 3200;
    for (int t = 0; t < 4; t++) {
        clv_storage *s = &r.tasks[t].storage;
        clv_storage_add_floats(s, "head", 10);
        if (t == 1)
            clv_storage_add_floats(s, "shared_lm", 5);
        if (t >= 2)
            clv_storage_add_bits(s, "lm_mask", 100 + t); /* 102, 103 */
        s->one_time_task = t < 2;
        r.tasks[t].stored_bits = clv_storage_total(s);
        r.tasks[t].head_bits = 320;
        r.tasks[t].done = t < 3; /* task 4 not learned yet */
    }
    clv_storage_summary s;
    clv_storage_summarize(&r, &s);
    cr_assert_eq(s.n_done, 3);
    cr_assert_eq(s.n_marginal, 1, "only task 3 is done and counted");
    cr_assert_float_eq(s.marginal_bits_per_task, 102.0, 1e-12);
    cr_assert_eq(s.one_time_bits, 3200 + 160);
    cr_assert_eq(s.one_time_elements, 100 + 5);
    cr_assert_eq(clv_storage_get(&s.one_time, "shared_lm"), 160);
    cr_assert_eq(s.head_bits, 3 * 320);
    cr_assert_float_eq(s.head_elements_per_task, 10.0, 1e-12);
    cr_assert_eq(s.total_bits, 3200 + 3 * 320 + 160 + 102);
    r.tasks[2].done = 0;
    clv_storage_summarize(&r, &s);
    cr_assert(isnan(s.marginal_bits_per_task), "no marginal task yet: no figure");
    clv_run_record_free(&r);
}

static void write_text(const char *dir, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/run.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* run.json of a 3-task maskrkr run as clvit wrote it before the split: "lm", "rm", "f" on task 2. */
static const char *old_maskrkr =
    "{\"status\": \"complete\", \"base_bits\": 6400, \"config\": {\"data\": {\"tasks\": \"3\"}, \"method\": "
    "{\"name\": \"maskrkr\"}},"
    " \"accuracy_matrix\": [[90, null, null], [90, 80, null], [90, 80, 70]],"
    " \"tasks\": ["
    "{\"classes\": [0], \"done\": true, \"stored_bits\": 320, \"head_bits\": 320, \"storage_bits\": {\"head\": 320}},"
    "{\"classes\": [1], \"done\": true, \"stored_bits\": 1280, \"head_bits\": 320,"
    " \"storage_bits\": {\"head\": 320, \"lm\": 320, \"rm\": 320, \"f\": 320}},"
    "{\"classes\": [2], \"done\": true, \"stored_bits\": 350, \"head_bits\": 320,"
    " \"storage_bits\": {\"head\": 320, \"lm_mask\": 10, \"rm_mask\": 10, \"f_mask\": 10}}]}";

Test(storage, old_run_json_gets_the_split_inferred)
{
    char dir[] = "/tmp/clvit-storage-old-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    write_text(dir, old_maskrkr);
    clv_run_record r;
    clv_config cfg;
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_read(&r, &cfg, dir, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_storage_get(&r.tasks[1].storage, "shared_lm"), 320, "maskrkr's lm is the shared LM");
    cr_assert_eq(clv_storage_get(&r.tasks[1].storage, "lm"), 0);
    cr_assert_eq(clv_storage_get_elements(&r.tasks[1].storage, "shared_f"), 10, "floats: 32 bits each");
    cr_assert_eq(clv_storage_get_elements(&r.tasks[2].storage, "lm_mask"), 10, "masks: 1 bit each");
    cr_assert(r.tasks[0].storage.one_time_task, "task 1 stores only its head while later tasks store more");
    cr_assert(r.tasks[1].storage.one_time_task, "task 2 holds the shared tensors");
    cr_assert(!r.tasks[2].storage.one_time_task);
    clv_storage_summary s;
    clv_storage_summarize(&r, &s);
    cr_assert_float_eq(s.marginal_bits_per_task, 30.0, 1e-12, "the masks of task 3");
    cr_assert_eq(s.one_time_bits, 6400 + 960);
    clv_run_record_free(&r);

    /* older still: no storage_bits at all; the rest beside the head is "unrecorded" but adds up */
    write_text(dir, "{\"status\": \"running\", \"base_bits\": 6400, \"config\": {\"data\": {\"tasks\": \"2\"}, "
                    "\"method\": {\"name\": \"rkr\"}}, \"accuracy_matrix\": [[90, null], [null, null]],"
                    " \"tasks\": [{\"classes\": [0], \"done\": true, \"stored_bits\": 960, \"head_bits\": 320},"
                    " {\"classes\": [1], \"done\": false}]}");
    cr_assert_eq(clv_run_record_read(&r, &cfg, dir, &err), 0, "%s", err.msg);
    clv_storage_summarize(&r, &s);
    cr_assert_eq(clv_storage_get(&r.tasks[0].storage, "unrecorded"), 640);
    cr_assert_eq(s.one_time_bits + s.head_bits + s.marginal_bits, s.total_bits);
    cr_assert_float_eq(s.marginal_bits_per_task, 640.0, 1e-12, "task 1 stores more than its head: it counts");
    clv_run_record_free(&r);
    tmp_tree_remove(dir);
}
