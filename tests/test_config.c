/* Settings: defaults, INI files, flags/assignments, validation, diffs. */
#include <criterion/criterion.h>
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
    cr_assert_str_eq(c.optimizer, "sgd");
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
