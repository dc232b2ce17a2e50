/* clvit report: runs grouped over seeds with mean and sample sd, the Pareto
 * front, the storage columns, JSON read back, CSV, pictures, old and
 * foreign directories. The run.json files are written here by hand. */
#include <cairo.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clvit/report.h"
#include "tmp_tree.h"

typedef struct {
    const char *method, *model;
    int rank, epochs, threads, eval_batch;
    uint64_t seed;
    double a10, a11;     /* A[1][0], A[1][1]; A[0][0] = 90; a11 NAN: task 2 unfinished */
    int64_t own_bits;    /* task 2's own bits beside its head ("weight_mask" or "lm") */
    double zero_share;   /* tasks[1].masks.zero_share; NAN: no "masks" key */
    int warnings;        /* task 2's warnings */
} spec;

static const int64_t HEAD = 32 * 130;

/* A 2-task run: task 1 trained the base (head only), task 2 stores own_bits. */
static void make_run(const char *dir, spec s)
{
    clv_config cfg;
    clv_config_defaults(&cfg);
    cfg.tasks = 2;
    snprintf(cfg.method, sizeof cfg.method, "%s", s.method);
    snprintf(cfg.model, sizeof cfg.model, "%s", s.model ? s.model : "vit_nano_patch4_32");
    cfg.rank = s.rank ? s.rank : 2;
    cfg.epochs = s.epochs ? s.epochs : 1;
    cfg.threads = s.threads;
    cfg.eval_batch = s.eval_batch ? s.eval_batch : 256;
    cfg.seed = s.seed;
    clv_run_record r;
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_init(&r, 2, &err), 0);
    r.acc[0] = 90;
    r.acc[2] = s.a10;
    r.acc[3] = s.a11;
    r.base_bits = 32 * 1000;
    for (int t = 0; t < 2; t++) {
        clv_task_record *tr = &r.tasks[t];
        tr->done = t == 0 || !isnan(s.a11);
        clv_storage_add_floats(&tr->storage, "head", 130);
        if (t == 1) {
            if (!strcmp(s.method, "rkr"))
                clv_storage_add_floats(&tr->storage, "lm", s.own_bits / 32);
            else
                clv_storage_add_bits(&tr->storage, "weight_mask", s.own_bits);
        }
        tr->storage.one_time_task = t == 0;
        tr->stored_bits = clv_storage_total(&tr->storage);
        tr->head_bits = HEAD;
        tr->n_classes = 1;
        tr->classes = malloc(sizeof(int32_t));
        tr->classes[0] = t;
    }
    strcpy(r.status, isnan(s.a11) ? "running" : "complete");
    cr_assert_eq(clv_run_record_write(&r, &cfg, dir, &err), 0, "%s", err.msg);
    clv_run_record_free(&r);
    if (isnan(s.zero_share) && !s.warnings)
        return;
    /* what the masks helper's trainer adds: tasks[1].masks and tasks[1].warnings */
    char path[256];
    snprintf(path, sizeof path, "%s/run.json", dir);
    FILE *f = fopen(path, "rb");
    char *text = calloc(1, 1 << 20);
    cr_assert(f && text);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[n] = 0;
    cJSON *root = cJSON_Parse(text);
    free(text);
    cJSON *task = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "tasks"), 1);
    /* replace what the trainer's record already wrote (an empty warnings array) */
    cJSON_DeleteItemFromObjectCaseSensitive(task, "masks");
    cJSON_DeleteItemFromObjectCaseSensitive(task, "warnings");
    if (!isnan(s.zero_share)) {
        cJSON *m = cJSON_AddObjectToObject(task, "masks");
        cJSON_AddNumberToObject(m, "bits", (double)s.own_bits);
        cJSON_AddNumberToObject(m, "zero_bits", round(s.zero_share * (double)s.own_bits));
        cJSON_AddNumberToObject(m, "zero_share", s.zero_share);
    }
    cJSON *w = cJSON_AddArrayToObject(task, "warnings");
    for (int i = 0; i < s.warnings; i++)
        cJSON_AddItemToArray(w, cJSON_CreateString(i ? "loss_not_falling: the loss stayed at 0.69"
                                                     : "near_chance: 50.7% against chance 50%"));
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs(out, f);
    fclose(f);
    free(out);
}

static char *capture(void (*fn)(const clv_report_run *, int, FILE *), const clv_report_run *runs, int n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    fn(runs, n, f);
    fclose(f);
    return buf;
}

/* runs/0..: rkr seeds 0-2 (threads, eval batch differ), rkr with 3 epochs, piggyback seeds 0-1, rkr unfinished. */
#define N_RUNS 7
static char root_dir[] = "/tmp/clvit-report-XXXXXX";
static clv_report_run runs[N_RUNS];

static void make_suite(void)
{
    cr_assert_not_null(mkdtemp(root_dir));
    const spec specs[N_RUNS] = {
        {"rkr", NULL, 2, 1, 1, 64, 0, 80, 80, 32 * 5000, NAN, 0},
        {"piggyback", NULL, 0, 1, 0, 0, 0, 70, 90, 20000, 0.1, 2},
        {"rkr", NULL, 2, 1, 2, 0, 1, 84, 84, 32 * 5000, NAN, 0},
        {"rkr", NULL, 2, 1, 4, 128, 2, 88, 88, 32 * 5000, NAN, 0},
        {"rkr", NULL, 2, 3, 0, 0, 0, 95, 95, 32 * 5000, NAN, 0},
        {"piggyback", NULL, 0, 1, 0, 0, 1, 70, 86, 20000, 0.3, 0},
        {"rkr", NULL, 2, 1, 0, 0, 4, NAN, NAN, 32 * 5000, NAN, 0},
    };
    clv_err err = {{0}};
    for (int i = 0; i < N_RUNS; i++) {
        char dir[128];
        snprintf(dir, sizeof dir, "%s/run%d", root_dir, i);
        cr_assert_eq(mkdir(dir, 0777), 0);
        make_run(dir, specs[i]);
        cr_assert_eq(clv_report_run_read(&runs[i], dir, &err), 0, "%s", err.msg);
    }
}

static void free_suite(void)
{
    for (int i = 0; i < N_RUNS; i++)
        clv_report_run_free(&runs[i]);
    tmp_tree_remove(root_dir);
}

Test(report, groups_seeds_with_mean_and_sd, .init = make_suite, .fini = free_suite)
{
    clv_report_group *g;
    int ng;
    clv_err err = {{0}};
    cr_assert_eq(clv_report_group_runs(runs, N_RUNS, &g, &ng, &err), 0, "%s", err.msg);
    cr_assert_eq(ng, 4, "rkr x3 seeds, piggyback x2, rkr 3 epochs, rkr unfinished: %d groups", ng);
    /* group 0: rkr, runs 0, 2, 3 (seeds 0, 1, 2; threads and eval batch differ) */
    cr_assert_eq(g[0].n_runs, 3);
    cr_assert(g[0].runs[0] == 0 && g[0].runs[1] == 2 && g[0].runs[2] == 3);
    /* average accuracy (the last row): 80, 84, 88 -> mean 84, sample sd 4 */
    cr_assert_float_eq(g[0].accuracy.mean, 84.0, 1e-9);
    cr_assert_float_eq(g[0].accuracy.sd, 4.0, 1e-9);
    /* forgetting 90 - A[1][0]: 10, 6, 2 -> mean 6, sd 4 */
    cr_assert_float_eq(g[0].forgetting.mean, 6.0, 1e-9);
    cr_assert_float_eq(g[0].forgetting.sd, 4.0, 1e-9);
    cr_assert_float_eq(g[0].marginal_bits.mean, 32.0 * 5000, 1e-9, "task 1 trained the base: only task 2 counts");
    cr_assert_float_eq(g[0].marginal_bits.sd, 0.0, 1e-12);
    cr_assert_float_eq(g[0].marginal_elements.mean, 5000.0, 1e-9);
    cr_assert_float_eq(g[0].one_time_bits.mean, 32.0 * 1000, 1e-9);
    cr_assert_float_eq(g[0].head_bits.mean, (double)HEAD, 1e-9);
    cr_assert(isnan(g[0].zero_share.mean) && g[0].zero_share.n == 0, "no masks recorded: blank");
    cr_assert_str_eq(g[0].settings, "train.epochs=1");
    /* group 1: piggyback, seeds 0 and 1 */
    cr_assert_eq(g[1].n_runs, 2);
    cr_assert_float_eq(g[1].accuracy.mean, 79.0, 1e-9); /* (80 + 78) / 2 */
    cr_assert_float_eq(g[1].accuracy.sd, sqrt(2.0), 1e-9);
    cr_assert_float_eq(g[1].zero_share.mean, 0.2, 1e-12);
    cr_assert_float_eq(g[1].zero_share.sd, sqrt(0.02), 1e-12);
    cr_assert_eq(g[1].task_warnings, 2);
    cr_assert_str_eq(g[1].settings, "train.epochs=1", "rank is the same everywhere: not a difference");
    /* group 2: rkr with 3 epochs, alone; group 3: the unfinished run */
    cr_assert_eq(g[2].n_runs, 1);
    cr_assert_str_eq(g[2].settings, "train.epochs=3");
    cr_assert_float_eq(g[2].accuracy.mean, 95.0, 1e-9);
    cr_assert(isnan(g[2].accuracy.sd), "one run: no sd");
    cr_assert_eq(g[3].n_runs, 1);
    cr_assert_eq(g[3].tasks_done, 1, "finished one task of two");
    cr_assert(isnan(g[3].marginal_bits.mean), "only the one-time task done: no marginal figure yet");
    /* the front: piggyback (20000 bits, 79%) and rkr 3 epochs (160000, 95%); rkr (160000, 84%) is beaten */
    cr_assert(g[1].pareto && g[2].pareto && !g[0].pareto && !g[3].pareto);
    char label[256];
    clv_report_group_label(runs, g, ng, 2, label, sizeof label);
    cr_assert_str_eq(label, "rkr K=2 (train.epochs=3)");
    clv_report_groups_free(g, ng);
}

Test(report, stat_and_pareto_front)
{
    const double v[5] = {1, NAN, 2, 3, 6};
    clv_report_stat s = clv_report_stat_of(v, 5);
    cr_assert_eq(s.n, 4);
    cr_assert_float_eq(s.mean, 3.0, 1e-12);
    cr_assert_float_eq(s.sd, sqrt((4 + 1 + 0 + 9) / 3.0), 1e-12, "sample sd, NAN skipped");
    s = clv_report_stat_of(v + 1, 1);
    cr_assert(s.n == 0 && isnan(s.mean) && isnan(s.sd));

    const double bits[7] = {100, 200, 50, 200, NAN, 100, 0};
    const double acc[7] = {80, 90, 70, 85, 99, 80, 60};
    int front[7];
    clv_report_pareto(bits, acc, 7, front);
    const int expect[7] = {1, 1, 1, 0, 0, 1, 1}; /* 3 beaten by 1; 4 has no bits; 0 and 5 tie */
    for (int i = 0; i < 7; i++)
        cr_assert_eq(front[i], expect[i], "point %d (%g bits, %g%%)", i, bits[i], acc[i]);
}

Test(report, group_table_and_per_run_table, .init = make_suite, .fini = free_suite)
{
    char *md = capture(clv_report_markdown, runs, N_RUNS);
    /* 160000 bits = 19.53 KiB; one-time 32000 bits = 3.91 KiB; heads 4160 bits = 0.51 KiB */
    const char *rkr = strstr(md, "| rkr | 2 | train.epochs=1 | 3 | 2/2 | 84.00 ± 4.00 | 6.00 ± 4.00 | 19.53 | 3.91 | "
                                 "0.51 | - | 0 |");
    const char *pb = strstr(md, "| piggyback | - | train.epochs=1 | 2 | 2/2 | 79.00 ± 1.41 | 20.00 ± 0.00 | 2.44 | "
                                "3.91 | 0.51 | 20.00 ± 14.14 | 2 |");
    const char *rkr3 = strstr(md, "| rkr | 2 | train.epochs=3 | 1 | 2/2 | 95.00 |");
    const char *warn = strstr(md, "run1: task 2: near_chance: 50.7%");
    cr_assert(rkr && pb && rkr3 && warn, "%s", md);
    cr_assert(warn < rkr3 && rkr3 < rkr && rkr < pb, "warnings first, then the table, best accuracy first: %s", md);
    cr_assert(strstr(md, "7 runs on fashion-mnist with vit_nano_patch4_32"), "the one model above the table: %s", md);
    cr_assert_null(strstr(md, "| vit_nano_patch4_32 |"), "no model column when all runs share it: %s", md);
    const char *last = strrchr(md, '\n');
    while (last > md && last[-1] != '\n')
        last--; /* the last line of the output is a row of the table */
    cr_assert(last > md && !strncmp(last - 1, "\n|", 2), "the table is printed last: %s", md);
    for (const char *line = strstr(md, "| method"); line; line = strchr(line + 1, '\n'))
        cr_assert_lt(strcspn(line + 1, "\n"), 120, "a narrow table: %.*s", (int)strcspn(line + 1, "\n"), line + 1);
    free(md);
    md = capture(clv_report_markdown_per_run, runs, N_RUNS);
    cr_assert(strstr(md, "run3 | rkr | vit_nano_patch4_32 | fashion-mnist | 2 | 2 | 2/2 | 88.00 | 2.00 | 160000 | 19.53 "
                         "| 32000 | 4160 |"),
              "%s", md);
    cr_assert(strstr(md, "| 2 | 70.00 | 90.00 |"), "the matrix rows: %s", md);
    free(md);
    char *csv = capture(clv_report_groups_csv, runs, N_RUNS);
    cr_assert(strstr(csv, "rkr,vit_nano_patch4_32,fashion-mnist,2,\"train.epochs=1\",3,2,2,84.0000,4.0000,"), "%s", csv);
    free(csv);
    csv = capture(clv_report_csv, runs, N_RUNS);
    cr_assert(strstr(csv, ",rkr,vit_nano_patch4_32,fashion-mnist,2,2,84.0000,6.0000,"), "%s", csv);
    free(csv);
}

static const cJSON *get(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert_not_null(v, "key %s", key);
    return v;
}

Test(report, json_reads_back, .init = make_suite, .fini = free_suite)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    clv_err err = {{0}};
    cr_assert_eq(clv_report_json(runs, N_RUNS, f, &err), 0, "%s", err.msg);
    fclose(f);
    cJSON *root = cJSON_Parse(buf);
    cr_assert_not_null(root, "valid JSON: %s", buf);
    free(buf);
    cr_assert_str_eq(get(root, "format")->valuestring, "clvit-report-1");
    const cJSON *groups = get(root, "groups"), *rows = get(root, "runs");
    cr_assert_eq(cJSON_GetArraySize(groups), 4);
    cr_assert_eq(cJSON_GetArraySize(rows), N_RUNS);
    const char *stats[] = {"average_accuracy",  "forgetting",        "marginal_bits_per_task",
                           "marginal_kib_per_task", "marginal_elements_per_task", "one_time_bits",
                           "one_time_elements", "head_bits_per_task", "head_elements_per_task", "zero_mask_share"};
    const cJSON *g0 = cJSON_GetArrayItem(groups, 0), *g1 = cJSON_GetArrayItem(groups, 1);
    for (size_t i = 0; i < sizeof stats / sizeof stats[0]; i++) {
        const cJSON *s = get(g0, stats[i]);
        get(s, "mean"), get(s, "sd"), get(s, "n");
    }
    cr_assert_str_eq(get(g0, "label")->valuestring, "rkr K=2 (train.epochs=1)");
    cr_assert_str_eq(get(g0, "method")->valuestring, "rkr");
    cr_assert_eq(get(g0, "rank")->valueint, 2);
    cr_assert(cJSON_IsNull(get(g1, "rank")), "piggyback has no rank");
    cr_assert_str_eq(get(get(g0, "settings"), "train.epochs")->valuestring, "1");
    cr_assert_eq(get(g0, "n_runs")->valueint, 3);
    cr_assert_eq(cJSON_GetArrayItem(get(g0, "seeds"), 2)->valueint, 2);
    cr_assert(strstr(cJSON_GetArrayItem(get(g0, "runs"), 1)->valuestring, "/run2"));
    cr_assert_float_eq(get(get(g0, "average_accuracy"), "mean")->valuedouble, 84.0, 1e-9);
    cr_assert_float_eq(get(get(g0, "average_accuracy"), "sd")->valuedouble, 4.0, 1e-9);
    cr_assert_eq(get(get(g0, "average_accuracy"), "n")->valueint, 3);
    cr_assert_float_eq(get(get(g0, "marginal_kib_per_task"), "mean")->valuedouble, 160000 / 8192.0, 1e-9);
    cr_assert(cJSON_IsNull(get(get(g0, "zero_mask_share"), "mean")));
    cr_assert_float_eq(get(get(g1, "zero_mask_share"), "mean")->valuedouble, 0.2, 1e-12);
    cr_assert_eq(get(g1, "task_warnings")->valueint, 2);
    cr_assert(strstr(cJSON_GetArrayItem(get(g1, "warnings"), 1)->valuestring, "task 2: loss_not_falling:"));
    cr_assert(cJSON_IsTrue(get(g1, "pareto")) && cJSON_IsFalse(get(g0, "pareto")));
    cr_assert_eq(get(g0, "tasks_done")->valueint, 2);
    cr_assert_eq(get(g0, "n_tasks")->valueint, 2);
    /* per run */
    const cJSON *r3 = cJSON_GetArrayItem(rows, 3), *r6 = cJSON_GetArrayItem(rows, 6);
    cr_assert_eq(get(r3, "group")->valueint, 0);
    cr_assert_eq(get(r3, "seed")->valueint, 2);
    cr_assert_float_eq(get(r3, "average_accuracy")->valuedouble, 88.0, 1e-9);
    cr_assert_float_eq(get(r3, "marginal_bits_per_task")->valuedouble, 160000.0, 1e-9);
    cr_assert_eq(get(r3, "one_time_bits")->valueint, 32000);
    cr_assert_eq(get(get(r3, "one_time"), "base")->valueint, 32000);
    cr_assert_eq(get(r3, "total_bits")->valueint, 32000 + 2 * 4160 + 160000);
    cr_assert_eq(cJSON_GetArraySize(get(r3, "marginal_tasks")), 1);
    cr_assert(cJSON_IsNull(get(r6, "marginal_bits_per_task")), "unfinished: null, not 0");
    cr_assert_str_eq(get(r6, "status")->valuestring, "running");
    cr_assert_eq(get(cJSON_GetArrayItem(rows, 1), "task_warnings")->valueint, 2);
    cJSON_Delete(root);
}

Test(report, pictures_are_written, .init = make_suite, .fini = free_suite)
{
    char pics[256];
    snprintf(pics, sizeof pics, "%s/plots", root_dir);
    cr_assert_eq(mkdir(pics, 0777), 0);
    clv_err err = {{0}};
    /* run0 has a training curve (2 tasks of 3 steps), run1 none (made before metrics.csv) */
    char csv[512];
    snprintf(csv, sizeof csv, "%s/run0/metrics.csv", root_dir);
    FILE *mf = fopen(csv, "w");
    cr_assert_not_null(mf);
    fputs("task,epoch,step,loss,train_accuracy,lr,images_per_s\n1,1,1,2.3,10,0.001,500\n1,1,2,1.9,30,0.001,510\n"
          "1,1,3,1.2,55,0.001,505\n2,1,1,0.7,60,0.001,700\n2,1,2,0.5,75,0.001,690\n2,1,3,0.4,80,0.001,710\n",
          mf);
    fclose(mf);
    cr_assert_eq(clv_report_plot(runs, N_RUNS, pics, &err), 0, "%s", err.msg);
    const char *files[] = {"matrix-1-rkr.png", "matrix-2-piggyback.svg", "accuracy-vs-bits.png",
                           "accuracy-vs-bits.svg", "curves-1-rkr.png", "curves-1-rkr.svg"};
    char missing[512];
    snprintf(missing, sizeof missing, "%s/curves-2-piggyback.png", pics);
    cr_assert_neq(access(missing, F_OK), 0, "no curves for a run without metrics.csv");
    for (int i = 0; i < 6; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", pics, files[i]);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s written", files[i]);
        unsigned char head[8] = {0};
        cr_assert_eq(fread(head, 1, 8, f), 8);
        fclose(f);
        if (strstr(files[i], ".png"))
            cr_assert_eq(memcmp(head, "\x89PNG\r\n\x1a\n", 8), 0, "%s is a PNG", files[i]);
        else
            cr_assert(head[0] == '<', "%s is SVG text", files[i]);
    }
    /* the heatmap's scale runs from chance (50% for these tasks) to 100: run0's A[1][0] = 80 is the ramp at
     * 0.6 (it was at 0.8 on 0-100), and a colour bar stands right of the matrix, yellow at its top (100) */
    char png[512];
    snprintf(png, sizeof png, "%s/matrix-1-rkr.png", pics);
    cairo_surface_t *img = cairo_image_surface_create_from_png(png);
    cr_assert_eq(cairo_surface_status(img), CAIRO_STATUS_SUCCESS);
    const unsigned char *data = cairo_image_surface_get_data(img);
    int stride = cairo_image_surface_get_stride(img);
#define PIXEL(x, y, c) data[(y) * stride + (x) * 4 + (2 - (c))] /* ARGB32 in memory: B G R A */
    const int cell_x = 70 + 3, cell_y = 70 + 56 + 3, want80[3] = {77, 162, 120};
    for (int c = 0; c < 3; c++)
        cr_assert(abs(PIXEL(cell_x, cell_y, c) - want80[c]) <= 3, "channel %d of the 80%% cell: %d, want %d", c,
                  PIXEL(cell_x, cell_y, c), want80[c]);
    const int bar_x = 70 + 2 * 56 + 24 + 8, bar_y = 70 + 2, want100[3] = {253, 231, 37};
    for (int c = 0; c < 3; c++)
        cr_assert(abs(PIXEL(bar_x, bar_y, c) - want100[c]) <= 12, "channel %d of the bar's top: %d, want %d", c,
                  PIXEL(bar_x, bar_y, c), want100[c]);
#undef PIXEL
    cairo_surface_destroy(img);
    cr_assert_not(clv_report_is_run_dir(pics), "plots/ is no run");
    snprintf(pics, sizeof pics, "%s/run0/run.json", root_dir);
    cr_assert_not(clv_report_is_run_dir(pics), "a file is no run");
    snprintf(pics, sizeof pics, "%s/run0", root_dir);
    cr_assert(clv_report_is_run_dir(pics));
}

/* A run.json of clvit before storage_elements, one_time_task, masks, warnings. */
Test(report, old_run_json_still_reports)
{
    char dir[] = "/tmp/clvit-report-old-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/run.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("{\"status\": \"complete\", \"base_bits\": 6400, \"config\": {\"data\": {\"tasks\": \"2\"}, \"method\": "
          "{\"name\": \"piggyback\"}}, \"accuracy_matrix\": [[90, null], [90, 80]], \"tasks\": ["
          "{\"classes\": [0], \"done\": true, \"stored_bits\": 320, \"head_bits\": 320, \"storage_bits\": {\"head\": 320}},"
          "{\"classes\": [1], \"done\": true, \"stored_bits\": 1320, \"head_bits\": 320,"
          " \"storage_bits\": {\"head\": 320, \"weight_mask\": 1000}}]}",
          f);
    fclose(f);
    clv_report_run r;
    clv_err err = {{0}};
    cr_assert_eq(clv_report_run_read(&r, dir, &err), 0, "%s", err.msg);
    cr_assert_float_eq(r.storage.marginal_bits_per_task, 1000.0, 1e-12, "task 1 inferred as the base's task");
    cr_assert(isnan(r.zero_share));
    char *md = capture(clv_report_markdown, &r, 1);
    cr_assert(strstr(md, "| piggyback | 1 | 2/2 | 85.00 | 0.00 | 0.12 | 0.78 | 0.04 | - | 0 |"), "%s", md);
    free(md);
    clv_report_run_free(&r);
    tmp_tree_remove(dir);
}

Test(report, missing_run_names_the_directory)
{
    clv_report_run r;
    clv_err err = {{0}};
    cr_assert_eq(clv_report_run_read(&r, "/nonexistent/run-x", &err), -1);
    cr_assert(strstr(err.msg, "/nonexistent/run-x"), "%s", err.msg);
}

static int notes_mention(const clv_warnings *notes, const char *what)
{
    for (int i = 0; i < notes->n; i++)
        if (strstr(notes->items[i], what) && !strncmp(notes->items[i], "skipping ", 9))
            return 1;
    return 0;
}

/* clvit report runs/<all> after make run: runs/default is a folder of runs
 * with plots/ beside them; run.json paths, files and repeats. */
Test(report, finds_runs_in_folders_files_and_run_json)
{
    char root[] = "/tmp/clvit-report-find-XXXXXX";
    cr_assert_not_null(mkdtemp(root));
    char p[256];
    const char *dirs[] = {"default", "default/rkr", "default/finetune", "default/plots", "study", "study/part",
                          "study/part/seed1", "empty", "default/rkr/plots"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
        cr_assert_eq(mkdir(p, 0777), 0, "%s", p);
    }
    const char *run_dirs[] = {"default/rkr", "default/finetune", "study/part/seed1"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", root, run_dirs[i]);
        make_run(p, (spec){"rkr", NULL, 2, 1, 0, 0, i, 80, 80, 32 * 5000, NAN, 0});
    }
    snprintf(p, sizeof p, "%s/notes.txt", root);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs("x\n", f);
    fclose(f);

    clv_report_paths list = {0};
    clv_warnings notes = {0};
    clv_err err = {{0}};
    /* the folder: both runs in name order, plots/ and a run's own subfolder not searched */
    snprintf(p, sizeof p, "%s/default", root);
    cr_assert_eq(clv_report_find_runs(&list, p, &notes, &err), 0, "%s", err.msg);
    cr_assert_eq(list.n, 2);
    cr_assert(strstr(list.dirs[0], "default/finetune") && strstr(list.dirs[1], "default/rkr"));
    cr_assert_eq(notes.n, 0, "plots/ inside a folder of runs is passed over silently");
    /* a run.json path names its directory; given again through the folder it is a repeat */
    snprintf(p, sizeof p, "%s/study/part/seed1/run.json", root);
    cr_assert_eq(clv_report_find_runs(&list, p, &notes, &err), 0, "%s", err.msg);
    cr_assert_eq(list.n, 3);
    snprintf(p, sizeof p, "%s/study/part/seed1", root);
    cr_assert_str_eq(list.dirs[2], p);
    cr_assert_eq(clv_report_find_runs(&list, p, &notes, &err), 0);
    cr_assert_eq(list.n, 3);
    cr_assert(notes_mention(&notes, "given before"), "a repeat is noted");
    /* what is not a run: a plots folder, a file, an empty folder */
    const char *not_runs[] = {"default/plots", "notes.txt", "empty"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", root, not_runs[i]);
        cr_assert_eq(clv_report_find_runs(&list, p, &notes, &err), 0, "%s", err.msg);
        cr_assert(notes_mention(&notes, p), "%s is skipped with a note", p);
    }
    cr_assert_eq(list.n, 3);
    /* the whole tree: the study's run is found 3 levels down, nothing twice */
    cr_assert_eq(clv_report_find_runs(&list, root, &notes, &err), 0);
    cr_assert_eq(list.n, 3);
    /* a path that does not exist is an error naming it */
    snprintf(p, sizeof p, "%s/missing", root);
    cr_assert_eq(clv_report_find_runs(&list, p, &notes, &err), -1);
    cr_assert(strstr(err.msg, p), "%s", err.msg);
    clv_report_paths_free(&list);
    clv_warnings_clear(&notes);
    tmp_tree_remove(root);
}

/* run.json's task_agnostic (clvit eval --task-agnostic) becomes a column of the group table and a JSON
 * figure; runs that did not measure it count as absent, not as 0 */
Test(report, task_agnostic_accuracy_when_measured, .init = make_suite, .fini = free_suite)
{
    clv_err err = {{0}};
    const int measured[2] = {0, 2};
    const char *values[2] = {"{\"accuracy\": 60}", "{\"accuracy\": 70}"};
    for (int i = 0; i < 2; i++) {
        char dir[128];
        snprintf(dir, sizeof dir, "%s/run%d", root_dir, measured[i]);
        cr_assert_eq(clv_run_record_put(dir, "task_agnostic", values[i], &err), 0, "%s", err.msg);
        clv_report_run_free(&runs[measured[i]]);
        cr_assert_eq(clv_report_run_read(&runs[measured[i]], dir, &err), 0, "%s", err.msg);
    }
    char *md = capture(clv_report_markdown, runs, N_RUNS);
    cr_assert(strstr(md, "| acc (%) | no task id (%) | forgetting |"), "%s", md);
    cr_assert(strstr(md, "| rkr | 2 | train.epochs=1 | 3 | 2/2 | 84.00 ± 4.00 | 65.00 ± 7.07 | 6.00 ± 4.00 |"), "%s", md);
    cr_assert(strstr(md, "| piggyback | - | train.epochs=1 | 2 | 2/2 | 79.00 ± 1.41 | - |"), "%s", md);
    free(md);
    char *js = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&js, &len);
    cr_assert_eq(clv_report_json(runs, N_RUNS, f, &err), 0, "%s", err.msg);
    fclose(f);
    cJSON *root = cJSON_Parse(js);
    cr_assert_not_null(root);
    const cJSON *g0 = cJSON_GetArrayItem(get(root, "groups"), 0), *r0 = cJSON_GetArrayItem(get(root, "runs"), 0);
    cr_assert_float_eq(get(get(g0, "task_agnostic_accuracy"), "mean")->valuedouble, 65.0, 1e-9);
    cr_assert_eq(get(get(g0, "task_agnostic_accuracy"), "n")->valueint, 2);
    cr_assert_float_eq(get(r0, "task_agnostic_accuracy")->valuedouble, 60.0, 1e-9);
    cr_assert(cJSON_IsNull(get(cJSON_GetArrayItem(get(root, "runs"), 1), "task_agnostic_accuracy")));
    cJSON_Delete(root);
    free(js);
}
