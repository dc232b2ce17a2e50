/* run.json: metrics formulas and the write/read round trip. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/run_record.h"

static void fill(clv_run_record *r)
{
    /* A[i][j]: after task i, on task j */
    const double a[3][3] = {{90, NAN, NAN}, {80, 95, NAN}, {70, 85, 99}};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            r->acc[i * 3 + j] = a[i][j];
}

Test(run_record, average_and_forgetting)
{
    clv_run_record r;
    clv_err err;
    cr_assert_eq(clv_run_record_init(&r, 3, &err), 0);
    cr_assert(isnan(clv_run_record_average_accuracy(&r)));
    fill(&r);
    cr_assert_eq(clv_run_record_last_row(&r), 2);
    cr_assert_float_eq(clv_run_record_average_accuracy(&r), (70 + 85 + 99) / 3.0, 1e-12);
    /* task 0: max(90, 80) - 70 = 20; task 1: 95 - 85 = 10 -> mean 15 */
    cr_assert_float_eq(clv_run_record_forgetting(&r), 15.0, 1e-12);
    r.acc[2 * 3 + 2] = NAN; /* last row unfinished: metrics of row 1 */
    cr_assert_eq(clv_run_record_last_row(&r), 1);
    cr_assert_float_eq(clv_run_record_average_accuracy(&r), (80 + 95) / 2.0, 1e-12);
    cr_assert_float_eq(clv_run_record_forgetting(&r), 10.0, 1e-12);
    clv_run_record_free(&r);
}

Test(run_record, round_trip_through_run_json)
{
    char dir[] = "/tmp/clvit-rr-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    clv_config cfg, back_cfg;
    clv_config_defaults(&cfg);
    cfg.tasks = 3;
    cfg.epochs = 4;
    clv_run_record r, back;
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_init(&r, 3, &err), 0);
    fill(&r);
    for (int t = 0; t < 3; t++) {
        r.tasks[t].n_classes = 2;
        r.tasks[t].classes = malloc(2 * sizeof(int32_t));
        r.tasks[t].classes[0] = 2 * t;
        r.tasks[t].classes[1] = 2 * t + 1;
        r.tasks[t].stored_bits = 32 * 130 + 1000 + t;
        r.tasks[t].head_bits = 32 * 130;
        clv_storage_add_floats(&r.tasks[t].storage, "head", 130);
        clv_storage_add_bits(&r.tasks[t].storage, "weight_mask", 1000 + t);
        r.tasks[t].storage.one_time_task = t == 0;
        r.tasks[t].train_images = 12000;
        r.tasks[t].done = 1;
    }
    cr_assert_eq(clv_run_record_write(&r, &cfg, dir, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_run_record_read(&back, &back_cfg, dir, &err), 0, "%s", err.msg);
    char diff[256];
    cr_assert_eq(clv_config_diff(&cfg, &back_cfg, diff, sizeof diff), 0, "%s", diff);
    for (int i = 0; i < 9; i++)
        cr_assert(isnan(r.acc[i]) ? isnan(back.acc[i]) : r.acc[i] == back.acc[i], "entry %d", i);
    cr_assert_eq(back.tasks[2].classes[1], 5);
    cr_assert_eq(back.tasks[1].stored_bits, 32 * 130 + 1001);
    cr_assert_eq(back.tasks[0].done, 1);
    cr_assert_eq(back.tasks[2].head_bits, 32 * 130);
    cr_assert_eq(back.tasks[1].storage.n, 2, "the per-kind breakdown is read back");
    cr_assert_str_eq(back.tasks[1].storage.item[1].kind, "weight_mask");
    cr_assert_eq(back.tasks[1].storage.item[1].bits, 1001);
    cr_assert_eq(back.tasks[1].storage.item[1].elements, 1001, "mask elements: 1 bit each");
    cr_assert_eq(clv_storage_get_elements(&back.tasks[1].storage, "head"), 130, "head elements: floats");
    cr_assert(back.tasks[0].storage.one_time_task && !back.tasks[1].storage.one_time_task, "one-time tasks read back");
    {
        char jp[512], text[8192];
        snprintf(jp, sizeof jp, "%s/run.json", dir);
        FILE *jf = fopen(jp, "r");
        cr_assert_not_null(jf);
        size_t got = fread(text, 1, sizeof text - 1, jf);
        fclose(jf);
        text[got] = 0;
        cr_assert(strstr(text, "\"head_params\":\t130"), "run.json gives the head's float count");
        cr_assert(strstr(text, "\"conv_weight_matrix\":\t\"Cout x (Cin kh kw)"), "run.json says how convolutions are adapted");
    }

    /* results.csv has one line per measured entry (6) plus the header */
    char path[512];
    snprintf(path, sizeof path, "%s/results.csv", dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    int lines = 0;
    for (int ch; (ch = fgetc(f)) != EOF;)
        lines += ch == '\n';
    fclose(f);
    cr_assert_eq(lines, 7);

    clv_run_record_free(&back);
    /* a corrupt run.json is refused, naming the file */
    snprintf(path, sizeof path, "%s/run.json", dir);
    f = fopen(path, "w");
    fputs("{\"status\": ", f);
    fclose(f);
    cr_assert_eq(clv_run_record_read(&back, &back_cfg, dir, &err), -1);
    cr_assert(strstr(err.msg, "run.json"), "%s", err.msg);
    clv_run_record_free(&r);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Mask density, training curves and warnings survive run.json (a resumed
 * run rewrites it from what it read). */
Test(run_record, masks_curves_and_warnings_round_trip)
{
    char dir[] = "/tmp/clvit-rrc-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    clv_config cfg, back_cfg;
    clv_config_defaults(&cfg);
    cfg.tasks = 2;
    clv_run_record r, back;
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_init(&r, 2, &err), 0);
    for (int t = 0; t < 2; t++) {
        r.tasks[t].n_classes = 1;
        r.tasks[t].classes = calloc(1, sizeof(int32_t));
    }
    clv_mask_density *d = &r.tasks[1].masks;
    d->layers = calloc(2, sizeof *d->layers);
    d->n_layers = 2;
    d->layers[0] = (clv_mask_layer){"blocks.0.attn.qkv.lm", 384, 17};
    d->layers[1] = (clv_mask_layer){"blocks.0.attn.qkv.f", 192, 0};
    d->bits = 576;
    d->zero_bits = 17;
    cr_assert_eq(clv_warnings_add(&r.tasks[1].warnings, "near_chance", "task %d at %.2f%%", 2, 50.7), 0);
    cr_assert_eq(clv_warnings_add(&r.warnings, "no_pretrained_base", "no --weights"), 0);
    double loss[3] = {0.69, NAN, 0.31}, acc[3] = {50, NAN, 88.5};
    cr_assert_eq(clv_task_record_set_curves(&r.tasks[1], 3, loss, acc, &err), 0);
    cr_assert_eq(clv_run_record_write(&r, &cfg, dir, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_run_record_read(&back, &back_cfg, dir, &err), 0, "%s", err.msg);
    cr_assert_eq(back.tasks[0].masks.n_layers, 0);
    const clv_mask_density *b = &back.tasks[1].masks;
    cr_assert_eq(b->n_layers, 2);
    cr_assert_eq(b->bits, 576);
    cr_assert_eq(b->zero_bits, 17);
    cr_assert_str_eq(b->layers[1].name, "blocks.0.attn.qkv.f");
    cr_assert_eq(b->layers[0].zero_bits, 17);
    cr_assert_eq(back.tasks[1].warnings.n, 1);
    cr_assert_str_eq(back.tasks[1].warnings.items[0], "near_chance: task 2 at 50.70%");
    cr_assert_eq(back.tasks[0].warnings.n, 0);
    cr_assert_eq(back.warnings.n, 1);
    cr_assert_str_eq(back.warnings.items[0], "no_pretrained_base: no --weights");
    cr_assert_eq(back.tasks[1].n_epochs, 3);
    cr_assert_eq(back.tasks[1].epoch_loss[2], 0.31);
    cr_assert(isnan(back.tasks[1].epoch_loss[1]) && isnan(back.tasks[1].epoch_train_accuracy[1]), "null: no step");
    cr_assert_eq(back.tasks[1].epoch_train_accuracy[2], 88.5);
    cr_assert_eq(back.tasks[0].n_epochs, 0);
    clv_run_record_free(&back);
    clv_run_record_free(&r);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
