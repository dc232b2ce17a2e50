/* Mask density: run.json's "masks" of a piggyback or maskrkr task equal the
 * 0 bits of the packed masks in its task file, counted here independently
 * (bit counts from the model's shapes, not from clvit's metadata); a run
 * whose masks cannot move reports 0 and says why; the keys are those
 * agreed with the report (notes/schema.md). The reader refuses a mask
 * without its bit count. The end-to-end tests are skipped when Debian's
 * Fashion-MNIST is absent. */
#define _XOPEN_SOURCE 700
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/mask_density.h"
#include "clvit/model.h"
#include "clvit/safetensors.h"
#include "clvit/trainer.h"
#include "tmp_tree.h"
#include "tiny_run.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

/* ---- the reader on files made here ---- */

static void write_masks(const char *path, const char *count_a, const char *count_b)
{
    /* 20 bits: ones except bits 3, 7, 19 (3 zeros); padding bits 20..23 left 0 */
    static uint8_t a[3] = {0x77, 0xff, 0x07};
    static uint8_t b[1] = {0x0f}; /* 6 bits: bits 4, 5 zero */
    clv_err err = {{0}};
    clv_st_writer *w = clv_st_writer_new();
    int64_t sa[1] = {3}, sb[1] = {1};
    cr_assert_eq(clv_st_writer_add(w, "mask.blocks.0.attn.qkv.lm", CLV_DT_U8, 1, sa, a, &err), 0);
    cr_assert_eq(clv_st_writer_add(w, "mask.patch_embed.proj.f", CLV_DT_U8, 1, sb, b, &err), 0);
    if (count_a)
        cr_assert_eq(clv_st_writer_meta(w, "mask_bits.blocks.0.attn.qkv.lm", count_a, &err), 0);
    cr_assert_eq(clv_st_writer_meta(w, "mask_bits.patch_embed.proj.f", count_b, &err), 0);
    cr_assert_eq(clv_st_writer_write(w, path, &err), 0, "%s", err.msg);
    clv_st_writer_free(w);
}

Test(mask_density, counts_the_zero_bits_of_each_mask_in_model_order)
{
    char dir[64] = "/tmp/clvit-density-XXXXXX", path[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/task-02.safetensors", dir);
    write_masks(path, "20", "6");
    clv_safetensors st;
    clv_err err = {{0}};
    cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
    const char *order[] = {"patch_embed.proj", "blocks.0.attn.qkv"};
    clv_mask_density d;
    cr_assert_eq(clv_mask_density_read(&st, order, 2, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n_layers, 2);
    cr_assert_str_eq(d.layers[0].name, "patch_embed.proj.f", "the model's order, not the file's");
    cr_assert_eq(d.layers[0].bits, 6);
    cr_assert_eq(d.layers[0].zero_bits, 2, "bits 6, 7 of the byte are padding, not zeros");
    cr_assert_str_eq(d.layers[1].name, "blocks.0.attn.qkv.lm");
    cr_assert_eq(d.layers[1].bits, 20);
    cr_assert_eq(d.layers[1].zero_bits, 3);
    cr_assert_eq(d.bits, 26);
    cr_assert_eq(d.zero_bits, 5);
    clv_mask_density_free(&d);
    cr_assert_eq(clv_mask_density_read(&st, NULL, 0, &d, &err), 0, "%s", err.msg);
    cr_assert_str_eq(d.layers[0].name, "blocks.0.attn.qkv.lm", "without an order: the file's");
    clv_mask_density_free(&d);
    clv_st_close(&st);

    const char *bad[] = {NULL, "16", "25", "0", "2x"}; /* missing, too few or many bits for 3 bytes, junk */
    for (int i = 0; i < 5; i++) {
        write_masks(path, bad[i], "6");
        cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
        cr_assert_eq(clv_mask_density_read(&st, order, 2, &d, &err), -1, "bit count '%s'", bad[i] ? bad[i] : "none");
        cr_assert(strstr(err.msg, "task-02.safetensors") && strstr(err.msg, "mask.blocks.0.attn.qkv.lm"), "%s",
                  err.msg);
        cr_assert_eq(d.n_layers, 0);
        clv_st_close(&st);
    }
    tmp_tree_remove(dir);
}

/* ---- end to end ---- */

static void config(clv_config *c, const char *method, int tasks)
{
    tiny_run_config(c, method, tasks);
    c->lr_mask = 1e-2f; /* 2 steps of up to 1e-2: bits flip */
}

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

/* The 0 bits among the first n bits of a U8 tensor of task's file, counted bit by bit. */
static int64_t file_zero_bits(const clv_safetensors *st, const char *name, int64_t n)
{
    const clv_st_tensor *t = clv_st_find(st, name);
    cr_assert_not_null(t, "%s: no %s", st->path, name);
    cr_assert(t->dtype == CLV_DT_U8 && t->numel == (n + 7) / 8, "%s: %lld bytes for %lld bits", name,
              (long long)t->numel, (long long)n);
    const uint8_t *b = clv_st_tensor_data(st, t);
    int64_t zeros = 0;
    for (int64_t i = 0; i < n; i++)
        zeros += !((b[i / 8] >> (i % 8)) & 1);
    return zeros;
}

/* Checks task's record against its file: kinds[k] masked with n(out, in, K) bits per layer. */
static int64_t check_against_file(const char *dir, int task, const clv_task_record *tr, const char *const *kinds,
                                  int n_kinds, int K)
{
    char path[128];
    snprintf(path, sizeof path, "%s/task-%02d.safetensors", dir, task + 1);
    clv_safetensors st;
    clv_err err = {{0}};
    cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
    clv_model *m = clv_model_create("vit_nano_patch4_32", &err);
    cr_assert_not_null(m, "%s", err.msg);
    cr_assert_eq(tr->masks.n_layers, m->n_wlayers * n_kinds, "one entry per layer and masked tensor");
    int64_t bits = 0, zeros = 0;
    for (int i = 0; i < m->n_wlayers; i++)
        for (int k = 0; k < n_kinds; k++) {
            const clv_wlayer *l = m->wlayers[i];
            int64_t n = !strcmp(kinds[k], "weight") ? l->out * l->in
                        : !strcmp(kinds[k], "lm")   ? l->out * K
                        : !strcmp(kinds[k], "rm")   ? K * l->in
                                                    : l->out;
            char name[160];
            snprintf(name, sizeof name, "mask.%s.%s", l->name, kinds[k]);
            int64_t z = file_zero_bits(&st, name, n);
            const clv_mask_layer *ml = &tr->masks.layers[i * n_kinds + k];
            cr_assert_str_eq(ml->name, name + 5);
            cr_assert_eq(ml->bits, n, "%s: %lld bits", ml->name, (long long)ml->bits);
            cr_assert_eq(ml->zero_bits, z, "%s: %lld zero bits recorded, the file has %lld", ml->name,
                         (long long)ml->zero_bits, (long long)z);
            bits += n;
            zeros += z;
        }
    cr_assert_eq(tr->masks.bits, bits);
    cr_assert_eq(tr->masks.zero_bits, zeros, "task %d: %lld zero bits recorded, the file has %lld", task + 1,
                 (long long)tr->masks.zero_bits, (long long)zeros);
    clv_model_free(m);
    clv_st_close(&st);
    return zeros;
}

Test(mask_density, piggyback_records_the_zero_bits_of_its_task_file, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char dir[64] = "/tmp/clvit-dens-pb-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    clv_config c;
    config(&c, "piggyback", 2);
    run(&c, dir);
    clv_run_record rec;
    record(dir, &rec);
    cr_assert_eq(rec.tasks[0].masks.n_layers, 0, "the base task stores no mask");
    const char *kinds[] = {"weight"};
    int64_t zeros = check_against_file(dir, 1, &rec.tasks[1], kinds, 1, 0);
    cr_assert_gt(zeros, 0, "lr_mask 1e-2 flips bits");
    cr_assert(!clv_warnings_has(&rec.tasks[1].warnings, "mask_budget_short"), "a budget of 1.5 x 1e-2 > 5e-3");
    clv_run_record_free(&rec);

    /* the keys agreed in notes/schema.md, as run.json spells them */
    char path[128];
    snprintf(path, sizeof path, "%s/run.json", dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    char *text = calloc(1, 1 << 22);
    size_t len = fread(text, 1, (1 << 22) - 1, f);
    fclose(f);
    cr_assert_gt(len, 0);
    cJSON *root = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(root);
    cr_assert(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "warnings")), "top-level warnings");
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(root, "tasks");
    const cJSON *t0 = cJSON_GetArrayItem(tasks, 0), *t1 = cJSON_GetArrayItem(tasks, 1);
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(t0, "masks"), "no masks key without masks");
    const cJSON *masks = cJSON_GetObjectItemCaseSensitive(t1, "masks");
    double b = cJSON_GetObjectItemCaseSensitive(masks, "bits")->valuedouble;
    double z = cJSON_GetObjectItemCaseSensitive(masks, "zero_bits")->valuedouble;
    cr_assert_float_eq(cJSON_GetObjectItemCaseSensitive(masks, "zero_share")->valuedouble, z / b, 1e-12);
    const cJSON *l0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(masks, "layers"), 0);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(l0, "name")->valuestring, "patch_embed.proj.weight");
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(l0, "bits")) &&
              cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(l0, "zero_bits")));
    for (int t = 0; t < 2; t++) {
        const cJSON *o = cJSON_GetArrayItem(tasks, t);
        cr_assert(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(o, "warnings")));
        const cJSON *loss = cJSON_GetObjectItemCaseSensitive(o, "epoch_loss");
        const cJSON *acc = cJSON_GetObjectItemCaseSensitive(o, "epoch_train_accuracy");
        cr_assert(cJSON_GetArraySize(loss) == 1 && cJSON_GetArraySize(acc) == 1, "one entry per epoch");
        cr_assert(cJSON_GetArrayItem(loss, 0)->valuedouble > 0);
        cr_assert(cJSON_GetArrayItem(acc, 0)->valuedouble >= 0 && cJSON_GetArrayItem(acc, 0)->valuedouble <= 100);
    }
    cJSON_Delete(root);
    tmp_tree_remove(dir);
}

Test(mask_density, maskrkr_records_the_zero_bits_of_lm_rm_f, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char dir[64] = "/tmp/clvit-dens-mr-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    clv_config c;
    config(&c, "maskrkr", 5); /* task 1 the base, task 2 the shared LM RM F, tasks 3-5 masks */
    c.rank = 2;
    run(&c, dir);
    clv_run_record rec;
    record(dir, &rec);
    cr_assert_eq(rec.tasks[0].masks.n_layers + rec.tasks[1].masks.n_layers, 0, "base and shared tasks: no masks");
    const char *kinds[] = {"lm", "rm", "f"};
    for (int t = 2; t < 5; t++)
        cr_assert_gt(check_against_file(dir, t, &rec.tasks[t], kinds, 3, 2), 0, "task %d changed some bits", t + 1);
    clv_run_record_free(&rec);
    tmp_tree_remove(dir);
}

Test(mask_density, masks_that_cannot_move_report_zero_and_say_why, .timeout = 300)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char dir[64] = "/tmp/clvit-dens-0-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    clv_config c;
    config(&c, "piggyback", 2);
    c.lr_mask = 0;
    run(&c, dir);
    clv_run_record rec;
    record(dir, &rec);
    const char *kinds[] = {"weight"};
    cr_assert_eq(check_against_file(dir, 1, &rec.tasks[1], kinds, 1, 0), 0);
    cr_assert_eq(rec.tasks[1].masks.zero_bits, 0, "nothing moved");
    cr_assert_gt(rec.tasks[1].masks.bits, 0);
    cr_assert(clv_warnings_has(&rec.tasks[1].warnings, "mask_budget_short"), "the budget warning is recorded");
    cr_assert(!clv_warnings_has(&rec.tasks[0].warnings, "mask_budget_short"), "the base task trains no scores");
    clv_run_record_free(&rec);
    tmp_tree_remove(dir);
}
