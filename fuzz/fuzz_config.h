/* What the INI and --set harnesses do with a config a reader accepted: the
 * cross-field checks, every setting formatted (as run.json records it) and
 * read back to the same text, and the resume diff against the defaults. */
#include "fuzz_util.h"

#include "clvit/config.h"

static void fuzz_use_config(const clv_config *c)
{
    clv_err err = {{0}};
    int rc = clv_config_validate(c, &err);
    fuzz_check_err(rc, &err);
    clv_config again;
    clv_config_defaults(&again);
    for (int i = 0; i < clv_config_settings_count(); i++) {
        const clv_setting *s = clv_config_setting(i);
        char text[CLV_PATH_LEN + 64], back[CLV_PATH_LEN + 64];
        clv_config_format(c, s, text, sizeof text);
        /* run.json's promise: a recorded value reads back as itself */
        if (clv_config_set(&again, s, text, &err)) {
            fprintf(stderr, "fuzz: %s.%s = '%s' formatted, then refused: %s\n", s->section, s->key, text, err.msg);
            abort();
        }
        clv_config_format(&again, s, back, sizeof back);
        if (strcmp(text, back)) {
            fprintf(stderr, "fuzz: %s.%s = '%s' read back as '%s'\n", s->section, s->key, text, back);
            abort();
        }
    }
    clv_config defaults;
    clv_config_defaults(&defaults);
    char diff[4096];
    (void)clv_config_diff(&defaults, c, diff, sizeof diff);
}
