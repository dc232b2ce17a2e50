/* Prediction without a task id (clvit/task_select.h): the confidence scores
 * against their definitions; on a run whose two tasks are easy to tell
 * apart, the router sends at least 95% of each task's test images to it;
 * for every method, the figures written into run.json equal a recount made
 * image by image through the predictor (each task's logits, then the
 * choice), and `--task auto` agrees with that recount.
 *
 * The data (an IDX pair written here): 28x28 images whose left half shows
 * one of task 1's five 4x4 textures (classes 0-4) or whose right half shows
 * one of task 2's (classes 5-9), the other half flat gray. A third of each
 * class's training images look like the other task's, spread evenly over
 * the class's task labels: every task learns that such images say nothing
 * about its classes, which is what makes the tasks easy to tell apart. */
#define _XOPEN_SOURCE 700
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/strategy.h"
#include "clvit/predictor.h"
#include "clvit/task_select.h"
#include "clvit/trainer.h"
#include "tmp_tree.h"
#include "tiny_run.h"

Test(task_select, scores_follow_their_definitions)
{
    const float z[3] = {2.0f, 0.5f, -1.0f};
    int label;
    double mp, en;
    clv_task_scores(z, 3, &label, &mp, &en);
    double e[3], s = 0, h = 0;
    for (int i = 0; i < 3; i++)
        s += e[i] = exp(z[i]);
    for (int i = 0; i < 3; i++)
        h -= e[i] / s * log(e[i] / s);
    cr_assert_eq(label, 0);
    cr_assert_float_eq(mp, e[0] / s, 1e-12);
    cr_assert_float_eq(en, h / log(3.0), 1e-12);
    const float flat[4] = {1, 1, 1, 1};
    clv_task_scores(flat, 4, &label, &mp, &en);
    cr_assert_float_eq(mp, 0.25, 1e-12);
    cr_assert_float_eq(en, 1.0, 1e-12, "uniform: the largest normalized entropy");
    const float one[1] = {-3};
    clv_task_scores(one, 1, &label, &mp, &en);
    cr_assert_float_eq(mp, 1.0, 1e-12);
    cr_assert_float_eq(en, 0.0, 1e-12);
    cr_assert(clv_task_scores_better(CLV_SELECT_MAXPROB, 0.9, 0.5, 0.8, 0.1));
    cr_assert(clv_task_scores_better(CLV_SELECT_ENTROPY, 0.8, 0.1, 0.9, 0.5));
    clv_task_select sel;
    clv_err err = {{0}};
    cr_assert_eq(clv_task_select_parse("entropy", &sel, &err), 0);
    cr_assert_eq(sel, CLV_SELECT_ENTROPY);
    cr_assert_neq(clv_task_select_parse("max", &sel, &err), 0);
    cr_assert(strstr(err.msg, "--task-select") && strstr(err.msg, "'max'"), "%s", err.msg);
}

/* ---- the two-task data ---- */

#define SIDE 28
#define N_TEST 6 /* per class */

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

typedef struct textures {
    uint8_t bits[10][16];
} textures;

static void make_textures(textures *t)
{
    uint32_t s = 11;
    for (int n = 0; n < 10;) {
        int ones = 0, same = 0;
        for (int i = 0; i < 16; i++)
            ones += t->bits[n][i] = rng_next(&s) & 1;
        for (int m = 0; m < n; m++)
            same |= !memcmp(t->bits[m], t->bits[n], 16);
        n += ones >= 4 && ones <= 12 && !same;
    }
}

/* half_on (0 left: task 1, 1 right: task 2) shows texture k of its task */
static void draw(const textures *t, int half_on, int k, uint8_t *px, uint32_t *s)
{
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            int half = x >= SIDE / 2, v = 125;
            if (half == half_on)
                v = t->bits[5 * half + k][(y % 4) * 4 + x % 4] ? 220 : 30;
            v += (int)(rng_next(s) % 21) - 10;
            px[y * SIDE + x] = (uint8_t)v;
        }
}

static void write_idx(const char *path, uint32_t magic, const uint32_t *dims, int nd, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    uint8_t h[16];
    for (int i = 0; i <= nd; i++) {
        uint32_t v = i ? dims[i - 1] : magic;
        h[4 * i] = v >> 24, h[4 * i + 1] = v >> 16, h[4 * i + 2] = v >> 8, h[4 * i + 3] = v;
    }
    cr_assert_eq(fwrite(h, 4, (size_t)nd + 1, f), (size_t)nd + 1);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* n_per images per class, the first n_other of which look like the other task's;
 * keeps the test images' pixels and classes when test_px is given */
static void write_split(const char *root, const char *prefix, int n_per, int n_other, uint8_t *test_px,
                        int32_t *test_cls)
{
    textures t = {0};
    make_textures(&t);
    uint32_t s = prefix[0] == 't' && prefix[1] == '1' ? 777 : 333;
    const size_t n = (size_t)n_per * 10, per = SIDE * SIDE;
    uint8_t *px = malloc(n * per), *lab = malloc(n);
    size_t i = 0;
    for (int j = 0; j < n_per; j++)
        for (int c = 0; c < 10; c++, i++) {
            const int task = c / 5, k = c % 5, other = j < n_other;
            draw(&t, other ? 1 - task : task, other ? (k + j) % 5 : k, px + i * per, &s);
            lab[i] = (uint8_t)c;
            if (test_cls)
                test_cls[i] = c;
        }
    if (test_px)
        memcpy(test_px, px, n * per);
    char path[512];
    uint32_t dims[3] = {(uint32_t)n, SIDE, SIDE};
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", root, prefix);
    write_idx(path, 0x803, dims, 3, px, n * per);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", root, prefix);
    write_idx(path, 0x801, dims, 1, lab, n);
    free(px);
    free(lab);
}

typedef struct two_tasks {
    char root[64], run[96];
    uint8_t test_px[10 * N_TEST * SIDE * SIDE];
    int32_t test_cls[10 * N_TEST];
} two_tasks;

static void train_two_tasks(two_tasks *d, const char *method, int epochs, int n_train)
{
    snprintf(d->root, sizeof d->root, "/tmp/clvit-route-XXXXXX");
    cr_assert_not_null(mkdtemp(d->root));
    snprintf(d->run, sizeof d->run, "%s/run", d->root);
    write_split(d->root, "train", n_train, n_train / 3, NULL, NULL);
    write_split(d->root, "t10k", N_TEST, 0, d->test_px, d->test_cls);
    clv_config c;
    tiny_run_config(&c, method, 2);
    snprintf(c.data, sizeof c.data, "mnist");
    snprintf(c.data_root, sizeof c.data_root, "%s", d->root);
    c.train_limit = c.test_limit = 0;
    c.epochs = epochs;
    c.batch = 16;
    c.augment = 0;
    c.seed = 1;
    clv_train_opts o = {.out_dir = d->run, .overwrite = 1};
    clv_err err = {{0}};
    cr_assert_eq(clv_train_run(&c, &o, &err), 0, "%s: %s", method, err.msg);
}

static const cJSON *get(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert_not_null(v, "run.json: no %s", key);
    return v;
}

/* run.json's task_agnostic against a recount through the predictor, one image at a time */
static void recount(const two_tasks *d, clv_task_select sel)
{
    clv_err err = {{0}};
    clv_predictor *p = clv_predictor_from_run(d->run, &err);
    cr_assert_not_null(p, "%s", err.msg);
    const clv_present *pr = clv_predictor_present(p);
    const size_t per = (size_t)pr->out_c * pr->out_h * pr->out_w;
    float *x = malloc(per * sizeof *x), *xs = malloc(10 * N_TEST * per * sizeof *xs);
    int64_t routed[2][2] = {{0}}, correct[2] = {0};
    clv_route auto_routes[10 * N_TEST];
    for (int i = 0; i < 10 * N_TEST; i++) {
        cr_assert_eq(clv_present_image(pr, d->test_px + (size_t)i * SIDE * SIDE, SIDE, SIDE, 1, x, &err), 0, "%s",
                     err.msg);
        memcpy(xs + (size_t)i * per, x, per * sizeof *x);
        int best_t = -1, best_label = 0;
        double best_mp = 0, best_en = 0;
        for (int u = 0; u < 2; u++) {
            float logits[5];
            int label;
            double mp, en;
            cr_assert_eq(clv_predictor_classes(p, u), 5);
            cr_assert_eq(clv_predictor_logits(p, u, x, 1, logits, &err), 0, "%s", err.msg);
            clv_task_scores(logits, 5, &label, &mp, &en);
            if (best_t < 0 || clv_task_scores_better(sel, mp, en, best_mp, best_en))
                best_t = u, best_label = label, best_mp = mp, best_en = en;
        }
        const int t = d->test_cls[i] / 5;
        cr_assert_eq(clv_predictor_class_id(p, t, d->test_cls[i] % 5), d->test_cls[i], "natural class order");
        routed[t][best_t]++;
        correct[t] += best_t == t && best_label == d->test_cls[i] % 5;
    }
    /* --task auto: the whole batch at once gives the same choices */
    cr_assert_eq(clv_predictor_route(p, sel, xs, 10 * N_TEST, auto_routes, &err), 0, "%s", err.msg);
    int64_t auto_routed[2][2] = {{0}};
    for (int i = 0; i < 10 * N_TEST; i++)
        auto_routed[d->test_cls[i] / 5][auto_routes[i].task]++;
    cr_assert_eq(memcmp(auto_routed, routed, sizeof routed), 0, "--task auto routes as the recount");
    clv_predictor_free(p);
    free(x);
    free(xs);

    char path[160];
    snprintf(path, sizeof path, "%s/run.json", d->run);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    cJSON *root = cJSON_Parse(text);
    cr_assert_not_null(root);
    const cJSON *ta = get(root, "task_agnostic"), *tasks = get(ta, "tasks");
    cr_assert_str_eq(get(ta, "select")->valuestring, clv_task_select_name(sel));
    cr_assert_eq(cJSON_GetArraySize(tasks), 2);
    double mean_routing = 0, mean_acc = 0;
    for (int t = 0; t < 2; t++) {
        const cJSON *e = cJSON_GetArrayItem(tasks, t), *to = get(e, "routed_to");
        cr_assert_eq(get(e, "task")->valueint, t + 1);
        cr_assert_eq(get(e, "images")->valuedouble, 5 * N_TEST);
        for (int u = 0; u < 2; u++)
            cr_assert_eq(cJSON_GetArrayItem(to, u)->valuedouble, (double)routed[t][u], "task %d routed to %d", t + 1,
                         u + 1);
        cr_assert_eq(get(e, "routed_here")->valuedouble, (double)routed[t][t]);
        cr_assert_eq(get(e, "correct")->valuedouble, (double)correct[t]);
        const double r = 100.0 * routed[t][t] / (5 * N_TEST), a = 100.0 * correct[t] / (5 * N_TEST);
        cr_assert_float_eq(get(e, "routing")->valuedouble, r, 1e-9);
        cr_assert_float_eq(get(e, "accuracy")->valuedouble, a, 1e-9);
        mean_routing += r / 2;
        mean_acc += a / 2;
    }
    cr_assert_float_eq(get(ta, "routing")->valuedouble, mean_routing, 1e-9);
    cr_assert_float_eq(get(ta, "accuracy")->valuedouble, mean_acc, 1e-9);
    /* the rest of run.json is still there */
    cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(root, "accuracy_matrix"));
    cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(root, "config"));
    cJSON_Delete(root);
}

Test(task_select, tasks_easy_to_tell_apart_are_routed_at_least_95_percent, .timeout = 300)
{
    static two_tasks d;
    train_two_tasks(&d, "independent", 8, 30);
    const clv_task_select sels[2] = {CLV_SELECT_MAXPROB, CLV_SELECT_ENTROPY};
    for (int i = 0; i < 2; i++) {
        clv_agnostic a;
        clv_err err = {{0}};
        cr_assert_eq(clv_eval_task_agnostic(d.run, 0, -1, sels[i], 1, &a, &err), 0, "%s", err.msg);
        cr_assert_eq(a.n_tasks, 2);
        for (int t = 0; t < 2; t++) {
            cr_assert_eq(a.images[t], 5 * N_TEST);
            cr_expect_geq(clv_agnostic_routing(&a, t), 95.0, "%s: task %d routed %.1f%% to itself",
                          clv_task_select_name(sels[i]), t + 1, clv_agnostic_routing(&a, t));
        }
        cr_assert_eq(a.groups, 2, "independent: a backbone per task");
        clv_agnostic_free(&a);
        recount(&d, sels[i]);
    }
    tmp_tree_remove(d.root);
}

/* every registered method: task_agnostic in run.json is what a recount finds;
 * tasks that share a backbone (finetune, linear, ewc, lwf) share its forward */
Test(task_select, every_method_records_what_a_recount_finds, .timeout = 300)
{
    static const char *const shares_backbone[] = {"finetune", "linear", "ewc", "lwf"};
    cr_assert_geq(clv_strategy_count(), 8);
    for (int i = 0; i < clv_strategy_count(); i++) {
        const char *method = clv_strategy_ops_at(i)->name;
        static two_tasks d;
        train_two_tasks(&d, method, 1, 6);
        clv_agnostic a;
        clv_err err = {{0}};
        cr_assert_eq(clv_eval_task_agnostic(d.run, 0, -1, CLV_SELECT_MAXPROB, 1, &a, &err), 0, "%s: %s", method, err.msg);
        int shared = 0;
        for (size_t k = 0; k < sizeof shares_backbone / sizeof *shares_backbone; k++)
            shared |= !strcmp(method, shares_backbone[k]);
        cr_assert_eq(a.groups, shared ? 1 : 2, "%s: %d backbone forwards per image", method, a.groups);
        clv_agnostic_free(&a);
        recount(&d, CLV_SELECT_MAXPROB);
        tmp_tree_remove(d.root);
    }
}
