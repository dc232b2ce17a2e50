/* Settings: defaults, INI files, flags/assignments, validation, diffs. */
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/config.h"

Test(config, defaults_are_the_demo)
{
    clv_config c;
    clv_config_defaults(&c);
    cr_assert_str_eq(c.data, "fashion-mnist");
    cr_assert_eq(c.tasks, 5);
    cr_assert_str_eq(c.model, "vit_nano_patch4_32");
    cr_assert_str_eq(c.method, "finetune");
    cr_assert_float_eq(c.lr, 1e-3f, 1e-9);
    cr_assert_eq(c.augment, 1);
    clv_err err;
    cr_assert_eq(clv_config_validate(&c, &err), 0);
}

Test(config, ini_file_sets_values)
{
    clv_config c;
    clv_config_defaults(&c);
    clv_err err = {{0}};
    cr_assert_eq(clv_config_load_ini(&c, "tests/fixtures/config/good.ini", &err), 0, "%s", err.msg);
    cr_assert_str_eq(c.data, "cifar100");
    cr_assert_eq(c.tasks, 10);
    cr_assert_eq(c.epochs, 3);
    cr_assert_float_eq(c.lr, 5e-4f, 1e-10);
    cr_assert_eq(c.optimizer, CLV_OPTIMIZER_SGD);
    cr_assert_eq(c.seed, 42u);
    cr_assert_eq(c.batch, 64, "untouched keys keep their defaults");
}

Test(config, ini_errors_name_file_and_problem)
{
    clv_config c;
    clv_config_defaults(&c);
    clv_err err = {{0}};
    cr_assert_eq(clv_config_load_ini(&c, "tests/fixtures/config/bad_value.ini", &err), -1);
    cr_assert(strstr(err.msg, "bad_value.ini") && strstr(err.msg, "train.epochs"), "%s", err.msg);
    cr_assert_eq(clv_config_load_ini(&c, "tests/fixtures/config/unknown_key.ini", &err), -1);
    cr_assert(strstr(err.msg, "unknown_key.ini") && strstr(err.msg, "epochz"), "%s", err.msg);
    cr_assert_eq(clv_config_load_ini(&c, "tests/fixtures/config/syntax.ini", &err), -1);
    cr_assert(strstr(err.msg, "syntax.ini") && strstr(err.msg, "section"), "%s", err.msg);
    cr_assert_eq(clv_config_load_ini(&c, "tests/fixtures/config/missing.ini", &err), -1);
    cr_assert(strstr(err.msg, "missing.ini"), "%s", err.msg);
}

Test(config, flags_and_assignments_are_the_same_settings)
{
    clv_config a, b;
    clv_config_defaults(&a);
    clv_config_defaults(&b);
    clv_err err = {{0}};
    cr_assert_eq(clv_config_set(&a, clv_config_find_flag("epochs"), "7", &err), 0);
    cr_assert_eq(clv_config_set_assignment(&b, "train.epochs=7", &err), 0, "%s", err.msg);
    cr_assert_eq(a.epochs, 7);
    cr_assert_eq(b.epochs, 7);
    cr_assert_eq(clv_config_find_flag("epochs"), clv_config_find("train.epochs"));
}

Test(config, bad_values_refused)
{
    clv_config c;
    clv_config_defaults(&c);
    clv_err err = {{0}};
    cr_assert_eq(clv_config_set_assignment(&c, "train.optimizer=lion", &err), -1);
    cr_assert(strstr(err.msg, "adamw|sgd"), "%s", err.msg);
    cr_assert_eq(clv_config_set_assignment(&c, "train.lr=-1", &err), -1);
    cr_assert_eq(clv_config_set_assignment(&c, "train.lr=nan", &err), -1);
    cr_assert_eq(clv_config_set_assignment(&c, "data.tasks=3x", &err), -1);
    cr_assert_eq(clv_config_set_assignment(&c, "data.augment=maybe", &err), -1);
    cr_assert_eq(clv_config_set_assignment(&c, "no.such=1", &err), -1);
    cr_assert(strstr(err.msg, "no.such"), "%s", err.msg);
    cr_assert_eq(clv_config_set_assignment(&c, "train.epochs", &err), -1);
    cr_assert_eq(c.epochs, 1, "a refused value leaves the setting as it was");
    c.tasks = 0;
    cr_assert_eq(clv_config_validate(&c, &err), -1);
}

Test(config, diff_names_changed_keys_only)
{
    clv_config a, b;
    clv_config_defaults(&a);
    b = a;
    char buf[512];
    cr_assert_eq(clv_config_diff(&a, &b, buf, sizeof buf), 0);
    b.epochs = 3;
    b.threads = 1; /* may change on resume */
    cr_assert_eq(clv_config_diff(&a, &b, buf, sizeof buf), 1);
    cr_assert(strstr(buf, "train.epochs") && !strstr(buf, "threads"), "%s", buf);
}

Test(config, format_round_trips_every_setting)
{
    clv_config a, b;
    clv_config_defaults(&a);
    clv_config_set_assignment(&a, "train.lr=0.000123", NULL);
    clv_config_set_assignment(&a, "run.seed=18446744073709551615", NULL);
    memset(&b, 0, sizeof b);
    clv_config_defaults(&b);
    for (int i = 0; i < clv_config_settings_count(); i++) {
        const clv_setting *s = clv_config_setting(i);
        char v[CLV_PATH_LEN];
        clv_config_format(&a, s, v, sizeof v);
        clv_err err = {{0}};
        cr_assert_eq(clv_config_set(&b, s, v, &err), 0, "%s.%s=%s: %s", s->section, s->key, v, err.msg);
    }
    char buf[256];
    cr_assert_eq(clv_config_diff(&a, &b, buf, sizeof buf), 0, "%s", buf);
    cr_assert_eq(b.seed, UINT64_MAX);
}

/* The learning-rate schedule's settings: a row each (INI, flag, help,
 * run.json), validated, and never changed on resume. */
Test(config, schedule_settings_are_validated_and_fixed_on_resume)
{
    clv_config c;
    clv_config_defaults(&c);
    clv_err err = {{0}};
    cr_assert_eq(c.schedule, CLV_SCHEDULE_COSINE, "the default stays the cosine");
    cr_assert_eq(c.lr_step_epochs, 15);
    cr_assert_float_eq(c.lr_step_gamma, 0.1f, 1e-9);
    const char *rows[][2] = {{"train.schedule", "schedule"}, {"train.lr_step_epochs", "lr-step-epochs"},
                             {"train.lr_step_gamma", "lr-step-gamma"}};
    for (int i = 0; i < 3; i++) {
        const clv_setting *s = clv_config_find(rows[i][0]);
        cr_assert_not_null(s, "%s is a row of the settings table", rows[i][0]);
        cr_assert_eq(clv_config_find_flag(rows[i][1]), s, "--%s", rows[i][1]);
        cr_assert_eq(s->resume_may_change, 0, "%s changes results: fixed on resume", rows[i][0]);
    }
    cr_assert_eq(clv_config_set_assignment(&c, "train.schedule=step", &err), 0, "%s", err.msg);
    cr_assert_eq(clv_config_set_assignment(&c, "train.schedule=linear", &err), -1);
    cr_assert(strstr(err.msg, "cosine|step"), "%s", err.msg);
    const char *bad[] = {"train.lr_step_gamma=nan", "train.lr_step_gamma=-0.5", "train.lr_step_gamma=inf",
                         "train.lr_step_epochs=-1", "train.lr_step_epochs=2.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(clv_config_set_assignment(&c, bad[i], &err), -1, "%s is refused", bad[i]);
    const char *absurd[] = {"train.lr_step_gamma=0", "train.lr_step_gamma=1.5", "train.lr_step_epochs=0",
                            "train.lr_step_epochs=1000000"};
    for (size_t i = 0; i < sizeof absurd / sizeof absurd[0]; i++) {
        clv_config d = c;
        cr_assert_eq(clv_config_set_assignment(&d, absurd[i], &err), -1, "%s is refused", absurd[i]);
        cr_assert(strstr(err.msg, "--lr-step-"), "the message names the flag: %s", err.msg);
    }
    clv_config e = c;
    e.lr_step_gamma = 0, e.lr_step_epochs = 15;
    cr_assert_eq(clv_config_validate(&e, &err), -1, "a gamma of 0 set in code is refused");
    cr_assert(strstr(err.msg, "--lr-step-gamma"), "%s", err.msg);
    clv_config d = c;
    cr_assert_eq(clv_config_set_assignment(&d, "train.lr_step_gamma=1", &err), 0);
    cr_assert_eq(clv_config_validate(&d, &err), 0, "gamma 1 (no decay) is allowed: %s", err.msg);

    clv_config a;
    clv_config_defaults(&a);
    char buf[512];
    cr_assert_eq(clv_config_diff(&a, &c, buf, sizeof buf), 1);
    cr_assert(strstr(buf, "train.schedule"), "a resume that changes the schedule is refused: %s", buf);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    clv_config_print_help(f);
    fclose(f);
    cr_assert(strstr(text, "--schedule") && strstr(text, "--lr-step-epochs") && strstr(text, "--lr-step-gamma") &&
                  strstr(text, "train.lr_step_gamma"),
              "--help lists them");
    free(text);
}

/* Values that once overflowed integers (UBSan) or crashed OpenMP are refused,
 * naming the flag, whether given as text or set in code; the largest
 * sensible values pass. */
Test(config, absurd_values_refused)
{
    const struct {
        const char *set, *flag;
    } bad[] = {
        {"run.threads=100000", "--threads"},         {"data.crop_padding=2147483647", "--crop-padding"},
        {"train.warmup_epochs=1e30", "--warmup-epochs"}, {"train.epochs=2147483647", "--epochs"},
        {"train.lr=1e30", "--lr"},                   {"method.lr_mask=1e9", "--lr-mask"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clv_config c;
        clv_config_defaults(&c);
        clv_err err = {{0}};
        cr_expect_eq(clv_config_set_assignment(&c, bad[i].set, &err), -1, "%s is refused", bad[i].set);
        cr_expect(strstr(err.msg, bad[i].flag) != NULL, "%s: %s", bad[i].set, err.msg);
    }
    clv_config c;
    clv_config_defaults(&c);
    clv_err err = {{0}};
    c.threads = 100000;
    cr_expect_eq(clv_config_validate(&c, &err), -1, "set in code");
    cr_expect(strstr(err.msg, "--threads"), "%s", err.msg);
    clv_config_defaults(&c);
    c.epochs = 10, c.warmup_epochs = 11;
    cr_expect_eq(clv_config_validate(&c, &err), -1, "warmup longer than the task");
    cr_expect(strstr(err.msg, "--warmup-epochs"), "%s", err.msg);
    clv_config_defaults(&c);
    c.threads = 1024, c.crop_padding = 64, c.epochs = 300, c.warmup_epochs = 300;
    cr_expect_eq(clv_config_validate(&c, &err), 0, "%s", err.msg);
}

/* Every numeric row of the settings table has an interval, its default is
 * in it, and NaN, inf, -1 and 1e30 are refused naming the flag: as text
 * (flags, INI, --set, run.json) and as a value set in code. */
Test(config, every_numeric_setting_refuses_nan_inf_negative_and_absurd)
{
    const char *bad_text[] = {"nan", "inf", "-inf", "-1", "1e30", "-1e30"};
    int rows = 0;
    for (int i = 0; i < clv_config_settings_count(); i++) {
        const clv_setting *s = clv_config_setting(i);
        if (s->type != CLV_SET_INT && s->type != CLV_SET_I64 && s->type != CLV_SET_FLOAT)
            continue;
        rows++;
        char flag[80];
        snprintf(flag, sizeof flag, "--%s", s->flag);
        cr_assert_not_null(s->values, "%s.%s has no interval in the table", s->section, s->key);
        clv_config c;
        clv_config_defaults(&c);
        clv_err err = {{0}};
        cr_expect_eq(clv_config_validate(&c, &err), 0, "the defaults are valid: %s", err.msg);
        for (size_t k = 0; k < sizeof bad_text / sizeof bad_text[0]; k++) {
            cr_expect_eq(clv_config_set(&c, s, bad_text[k], &err), -1, "%s %s is refused", flag, bad_text[k]);
            cr_expect(strstr(err.msg, flag) && strstr(err.msg, bad_text[k]), "%s %s: %s", flag, bad_text[k], err.msg);
        }
        /* the same values put into the struct by code */
        char *field = (char *)&c + s->offset;
        if (s->type == CLV_SET_FLOAT) {
            const float v[] = {NAN, INFINITY, -INFINITY, -1, 1e30f};
            for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
                clv_config_defaults(&c);
                *(float *)field = v[k];
                cr_expect_eq(clv_config_validate(&c, &err), -1, "%s = %g in code is refused", flag, (double)v[k]);
                cr_expect(strstr(err.msg, flag), "%s = %g: %s", flag, (double)v[k], err.msg);
            }
        } else {
            const int64_t v[] = {-1, s->type == CLV_SET_INT ? INT_MAX : INT64_MAX};
            for (size_t k = 0; k < 2; k++) {
                clv_config_defaults(&c);
                if (s->type == CLV_SET_INT)
                    *(int *)field = (int)v[k];
                else
                    *(int64_t *)field = v[k];
                cr_expect_eq(clv_config_validate(&c, &err), -1, "%s = %lld in code is refused", flag,
                             (long long)v[k]);
                cr_expect(strstr(err.msg, flag), "%s = %lld: %s", flag, (long long)v[k], err.msg);
            }
        }
    }
    cr_expect_geq(rows, 20, "the numeric rows were found (%d)", rows);
}
