/* run.json's "data_manifest": the generated dataset a run saw (name, seed,
 * generator version, checksum from <data root>/manifest.json), nothing for
 * a root without a study manifest, and a clear error for a study manifest
 * that lacks a field. */
#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clvit/run_record.h"
#include "tmp_tree.h"

static void put(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* Writes a 1-task run record with data root `root` into out; returns the rc and fills err. */
static int write_run(const char *root, const char *out, clv_err *err)
{
    clv_config cfg;
    clv_config_defaults(&cfg);
    cfg.tasks = 1;
    snprintf(cfg.data_root, sizeof cfg.data_root, "%s", root);
    clv_run_record r;
    cr_assert_eq(clv_run_record_init(&r, 1, err), 0);
    const int rc = clv_run_record_write(&r, &cfg, out, err);
    clv_run_record_free(&r);
    return rc;
}

static cJSON *read_run(const char *out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/run.json", out);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    cJSON *j = cJSON_Parse(text);
    cr_assert_not_null(j);
    return j;
}

Test(data_manifest, a_study_manifest_is_recorded_in_run_json)
{
    char dir[] = "/tmp/clvit-dm-XXXXXX", root[64], out[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(root, sizeof root, "%s/data", dir);
    snprintf(out, sizeof out, "%s/run", dir);
    cr_assert_eq(mkdir(root, 0755), 0);
    cr_assert_eq(mkdir(out, 0755), 0);
    put(root, "manifest.json",
        "{\"format\": \"clvit-study-manifest-1\", \"name\": \"glyphs100\", \"generator\": \"clvit-studygen\", "
        "\"generator_version\": \"1\", \"seed\": 42, \"classes\": [], \"checksum\": \"48585427\"}");
    clv_err err = {{0}};
    cr_assert_eq(write_run(root, out, &err), 0, "%s", err.msg);
    cJSON *j = read_run(out);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "data_manifest");
    cr_assert(cJSON_IsObject(d), "run.json has data_manifest");
    cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(d, "name")->valuestring, "glyphs100");
    cr_expect_eq(cJSON_GetObjectItemCaseSensitive(d, "seed")->valuedouble, 42);
    cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(d, "generator_version")->valuestring, "1");
    cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(d, "checksum")->valuestring, "48585427");
    cr_expect(strstr(cJSON_GetObjectItemCaseSensitive(d, "path")->valuestring, "/data/manifest.json"));
    cJSON_Delete(j);
    tmp_tree_remove(dir);
}

Test(data_manifest, no_manifest_or_another_tools_manifest_adds_nothing)
{
    char dir[] = "/tmp/clvit-dm-XXXXXX", root[64], out[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(root, sizeof root, "%s/data", dir);
    snprintf(out, sizeof out, "%s/run", dir);
    cr_assert_eq(mkdir(root, 0755), 0);
    cr_assert_eq(mkdir(out, 0755), 0);
    clv_err err = {{0}};
    cr_assert_eq(write_run(root, out, &err), 0, "%s", err.msg);
    cJSON *j = read_run(out);
    cr_expect_null(cJSON_GetObjectItemCaseSensitive(j, "data_manifest"), "no manifest.json");
    cJSON_Delete(j);
    put(root, "manifest.json", "{\"files\": [\"a.png\"]}");
    cr_assert_eq(write_run(root, out, &err), 0, "%s", err.msg);
    j = read_run(out);
    cr_expect_null(cJSON_GetObjectItemCaseSensitive(j, "data_manifest"), "another format");
    cJSON_Delete(j);
    cr_assert_eq(write_run("", out, &err), 0, "%s", err.msg);
    tmp_tree_remove(dir);
}

Test(data_manifest, a_study_manifest_without_its_checksum_is_an_error_naming_the_file)
{
    char dir[] = "/tmp/clvit-dm-XXXXXX", root[64], out[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(root, sizeof root, "%s/data", dir);
    snprintf(out, sizeof out, "%s/run", dir);
    cr_assert_eq(mkdir(root, 0755), 0);
    cr_assert_eq(mkdir(out, 0755), 0);
    put(root, "manifest.json",
        "{\"format\": \"clvit-study-manifest-1\", \"name\": \"glyphs100\", \"generator_version\": \"1\", \"seed\": 0}");
    clv_err err = {{0}};
    cr_assert_neq(write_run(root, out, &err), 0);
    cr_expect(strstr(err.msg, "/data/manifest.json") && strstr(err.msg, "checksum"), "%s", err.msg);
    tmp_tree_remove(dir);
}
