/* run.json: metrics formulas and the write/read round trip. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clvit/run_record.h"
#include "clvit/version.h"
#include "tmp_tree.h"

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

/* run.json's settings carry their types (numbers without float noise,
 * booleans, strings), the command lines and the version; a run.json whose
 * settings are text (written before) reads the same. */
Test(run_record, typed_settings_commands_and_version)
{
    char dir[] = "/tmp/clvit-rr-typed-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    clv_config cfg, back_cfg;
    clv_config_defaults(&cfg);
    cfg.tasks = 1;
    cfg.lr = 3e-3f;
    cfg.augment = 0;
    cfg.seed = 12345678901234567890ull; /* beyond a double's integers */
    clv_run_record r, back;
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_init(&r, 1, &err), 0);
    r.tasks[0].classes = calloc(1, sizeof(int32_t));
    r.tasks[0].n_classes = 1;
    char *argv1[] = {"clvit", "train", "--lr", "3e-3", "--out", "runs/a b", "--set", "x='y'"};
    char *argv2[] = {"clvit", "train", "--out", "runs/a b", "--resume"};
    cr_assert_eq(clv_run_record_add_command(&r, 8, argv1, &err), 0);
    cr_assert_eq(clv_run_record_write(&r, &cfg, dir, &err), 0, "%s", err.msg);

    char path[256], text[1 << 16];
    snprintf(path, sizeof path, "%s/run.json", dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    text[fread(text, 1, sizeof text - 1, f)] = 0;
    fclose(f);
    cr_assert_null(strstr(text, "0.00300000003"), "no float noise");
    cJSON *root = cJSON_Parse(text);
    cr_assert_not_null(root);
    const cJSON *conf = cJSON_GetObjectItem(root, "config");
    const cJSON *lr = cJSON_GetObjectItem(cJSON_GetObjectItem(conf, "train"), "lr");
    cr_assert(cJSON_IsNumber(lr) && lr->valuedouble == 0.003, "train.lr is the number 0.003");
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(conf, "train"), "epochs")));
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(conf, "data"), "augment")));
    cr_assert(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(conf, "model"), "name")));
    const cJSON *seed = cJSON_GetObjectItem(cJSON_GetObjectItem(conf, "run"), "seed");
    cr_assert(cJSON_IsString(seed) && !strcmp(seed->valuestring, "12345678901234567890"), "a seed beyond 2^53 stays exact");
    const cJSON *ver = cJSON_GetObjectItem(root, "clvit_version");
    cr_assert(cJSON_IsString(ver) && !strcmp(ver->valuestring, CLV_VERSION));
    const cJSON *cmds = cJSON_GetObjectItem(root, "commands");
    cr_assert_eq(cJSON_GetArraySize(cmds), 1);
    cr_assert_str_eq(cJSON_GetArrayItem(cmds, 0)->valuestring,
                     "clvit train --lr 3e-3 --out 'runs/a b' --set 'x='\\''y'\\'''", "shell-quoted");
    cJSON_Delete(root);

    /* read back (as --resume does), a second command appended */
    cr_assert_eq(clv_run_record_read(&back, &back_cfg, dir, &err), 0, "%s", err.msg);
    char diff[512];
    cr_assert_eq(clv_config_diff(&cfg, &back_cfg, diff, sizeof diff), 0, "%s", diff);
    cr_assert_eq(back_cfg.lr, 3e-3f);
    cr_assert_eq(back_cfg.seed, 12345678901234567890ull);
    cr_assert_eq(back.n_commands, 1);
    cr_assert_eq(clv_run_record_add_command(&back, 5, argv2, &err), 0);
    cr_assert_eq(clv_run_record_write(&back, &back_cfg, dir, &err), 0, "%s", err.msg);
    clv_run_record_free(&back);
    cr_assert_eq(clv_run_record_read(&back, &back_cfg, dir, &err), 0, "%s", err.msg);
    cr_assert_eq(back.n_commands, 2);
    cr_assert_str_eq(back.commands[1], "clvit train --out 'runs/a b' --resume");
    clv_run_record_free(&back);

    /* the older form: every setting a string */
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("{\"status\": \"running\", \"config\": {\"data\": {\"tasks\": \"1\", \"augment\": \"false\"}, \"train\": "
          "{\"lr\": \"0.00300000003\", \"epochs\": \"4\"}}, \"accuracy_matrix\": [[null]], \"tasks\": [{\"classes\": [0]}]}",
          f);
    fclose(f);
    cr_assert_eq(clv_run_record_read(&back, &back_cfg, dir, &err), 0, "%s", err.msg);
    cr_assert_eq(back_cfg.lr, 3e-3f);
    cr_assert_eq(back_cfg.epochs, 4);
    cr_assert_eq(back_cfg.augment, 0);
    cr_assert_eq(back.n_commands, 0);
    clv_run_record_free(&back);
    clv_run_record_free(&r);
    tmp_tree_remove(dir);
}

/* run.json is written last: a resume trusts it, so a write stopped between
 * the two files must not leave run.json ahead of results.csv (a directory
 * in results.csv's place makes its write fail). */
Test(run_record, run_json_is_written_after_results_csv)
{
    char dir[] = "/tmp/clvit-rr-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/results.csv", dir);
    cr_assert_eq(mkdir(path, 0777), 0);
    clv_config cfg;
    clv_config_defaults(&cfg);
    cfg.tasks = 3;
    clv_run_record r;
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_init(&r, 3, &err), 0);
    fill(&r);
    cr_assert_neq(clv_run_record_write(&r, &cfg, dir, &err), 0, "results.csv cannot be written");
    snprintf(path, sizeof path, "%s/run.json", dir);
    cr_expect_neq(access(path, F_OK), 0, "no run.json without its results.csv");
    clv_run_record_free(&r);
    tmp_tree_remove(dir);
}

/* A setting newer than a run: run.json without train.conv_algorithm was made
 * before Winograd existed, with the direct convolutions, and resumes with
 * them; a recorded value reads back as itself. */
Test(run_record, a_missing_setting_reads_as_what_the_run_ran_with)
{
    char dir[] = "/tmp/clvit-rr-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    clv_config cfg, back_cfg;
    clv_config_defaults(&cfg);
    cr_assert_eq(cfg.conv_algorithm, CLV_CONV_WINOGRAD, "the default of a new run");
    cfg.tasks = 1;
    clv_run_record r, back;
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_init(&r, 1, &err), 0);
    r.acc[0] = 50;
    r.tasks[0].n_classes = 2;
    r.tasks[0].classes = malloc(2 * sizeof(int32_t));
    r.tasks[0].classes[0] = 0;
    r.tasks[0].classes[1] = 1;
    cr_assert_eq(clv_run_record_write(&r, &cfg, dir, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_run_record_read(&back, &back_cfg, dir, &err), 0, "%s", err.msg);
    cr_expect_eq(back_cfg.conv_algorithm, CLV_CONV_WINOGRAD, "recorded winograd reads back as winograd");
    clv_run_record_free(&back);

    /* the same run.json without the key, as an older clvit wrote it */
    char path[512];
    snprintf(path, sizeof path, "%s/run.json", dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    static char text[1 << 16];
    const size_t got = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[got] = 0;
    cJSON *root = cJSON_Parse(text);
    cr_assert_not_null(root);
    cJSON *train = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "config"), "train");
    cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(train, "conv_algorithm"), "run.json records the setting");
    cJSON_DeleteItemFromObjectCaseSensitive(train, "conv_algorithm");
    cJSON_DeleteItemFromObjectCaseSensitive(train, "precision"); /* a newer setting whose default is the old behaviour */
    char *out = cJSON_Print(root);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(out, f);
    fclose(f);
    free(out);
    cJSON_Delete(root);
    cr_assert_eq(clv_run_record_read(&back, &back_cfg, dir, &err), 0, "%s", err.msg);
    cr_expect_eq(back_cfg.conv_algorithm, CLV_CONV_DIRECT, "a run recorded before the setting ran direct");
    cr_expect_eq(back_cfg.precision, CLV_PRECISION_FP32, "a missing setting without an older value takes its default");
    clv_run_record_free(&back);
    clv_run_record_free(&r);
    tmp_tree_remove(dir);
}
