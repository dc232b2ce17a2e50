/* safetensors: the official format read exactly (every float dtype
 * converted), malformed files rejected naming the file, atomic round trip,
 * parameter loading with its differences listed. Fixtures from
 * tools/make_safetensors_fixtures.py. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/safetensors.h"
#include "read_whole.h"

#define FIX "tests/fixtures/safetensors/"

Test(safetensors, reads_the_official_format)
{
    clv_safetensors st;
    clv_err err = {{0}};
    cr_assert_eq(clv_st_open(&st, FIX "good.safetensors", &err), 0, "%s", err.msg);
    cr_assert_eq(st.count, 7);
    cr_assert_str_eq(clv_st_meta(&st, "mean"), "[0.5, 0.25, 0.125]");
    cr_assert_str_eq(clv_st_meta(&st, "format"), "fixture");
    cr_assert_null(clv_st_meta(&st, "std"));

    const clv_st_tensor *a = clv_st_find(&st, "a");
    cr_assert_not_null(a);
    cr_assert(a->dtype == CLV_DT_F32 && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3);
    float v[6];
    cr_assert_eq(clv_st_read_f32(&st, a, v, 6, &err), 0, "%s", err.msg);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(v[i], 0.5f * i - 1, "a[%d] = %g", i, v[i]);

    const float h[4] = {1, -2, 0.5f, 65504}, b[2] = {1.5f, -3}, d[3] = {0.25f, 1, 1e10f};
    cr_assert_eq(clv_st_read_f32(&st, clv_st_find(&st, "h"), v, 4, &err), 0, "%s", err.msg);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(v[i], h[i], "F16 h[%d] = %g", i, v[i]);
    const float sub[3] = {0x1p-24f, 0x1p-14f - 0x1p-24f, INFINITY};
    cr_assert_eq(clv_st_read_f32(&st, clv_st_find(&st, "s"), v, 3, &err), 0, "%s", err.msg);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(v[i], sub[i], "F16 subnormal/inf s[%d] = %a", i, v[i]);
    cr_assert_eq(clv_st_read_f32(&st, clv_st_find(&st, "b"), v, 2, &err), 0, "%s", err.msg);
    cr_assert(v[0] == b[0] && v[1] == b[1], "BF16 %g %g", v[0], v[1]);
    cr_assert_eq(clv_st_read_f32(&st, clv_st_find(&st, "d"), v, 3, &err), 0, "%s", err.msg);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(v[i], d[i], "F64 d[%d] = %g", i, v[i]);

    const clv_st_tensor *n = clv_st_find(&st, "n");
    cr_assert_eq(n->dtype, CLV_DT_I64);
    int64_t iv[2];
    memcpy(iv, clv_st_tensor_data(&st, n), sizeof iv);
    cr_assert(iv[0] == 7 && iv[1] == -9);
    const uint8_t *u = clv_st_tensor_data(&st, clv_st_find(&st, "u"));
    cr_assert(u[0] == 0 && u[1] == 128 && u[2] == 255);
    cr_assert_eq(clv_st_read_f32(&st, n, v, 2, &err), -1, "integers are not read as float params");
    cr_assert(strstr(err.msg, "I64") && strstr(err.msg, "good.safetensors"), "%s", err.msg);
    cr_assert_eq(clv_st_read_f32(&st, a, v, 5, &err), -1, "wrong element count");
    clv_st_close(&st);
}

Test(safetensors, rejects_every_malformed_file)
{
    /* each fixture with a word its message must contain, so that a file
     * rejected for the wrong reason fails too */
    static const char *const bad[][2] = {
        {"truncated_data", "truncated"}, {"short", "truncated"},
        {"header_too_long", "exceeds"}, {"overlap", "overlap"},
        {"out_of_range", "ends at byte 16"}, {"hole", "hole"},
        {"size_mismatch", "bytes for"}, {"bad_json", "not valid JSON"},
        {"duplicate", "twice"},         {"unknown_dtype", "unknown dtype 'F8'"},
        {"negative_shape", "shape"},    {"meta_not_string", "not a string"},
        {"huge_shape", "overflows"},    {"trailing_garbage", "after its JSON"},
        {"missing_field", "lacks"},     {"fractional_shape", "not a non-negative integer"},
        {"empty_name", "empty"},        {"not_object", "not a JSON object"},
        {"trailing_data", "cover"},     {"offsets_not_pair", "[begin, end]"},
        {"meta_not_object", "__metadata__ is not an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, FIX "bad_%s.safetensors", bad[i][0]);
        clv_safetensors st;
        clv_err err = {{0}};
        cr_assert_eq(access(path, R_OK), 0, "fixture %s exists", path);
        cr_expect_eq(clv_st_open(&st, path, &err), CLV_ST_DAMAGED, "%s must be rejected as damaged", path);
        cr_expect(strstr(err.msg, path) != NULL, "the message names the file: %s", err.msg);
        cr_expect(strstr(err.msg, bad[i][1]) != NULL, "%s: expected '%s' in: %s", bad[i][0], bad[i][1], err.msg);
    }
    clv_safetensors st;
    clv_err err = {{0}};
    cr_assert_eq(clv_st_open(&st, FIX "does_not_exist.safetensors", &err), -1);
    cr_assert(strstr(err.msg, "does_not_exist"), "%s", err.msg);
}

static int count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

Test(safetensors, params_round_trip_atomically)
{
    char dir[] = "/tmp/clvit-st-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    FILE *f = fopen(path, "w");
    fputs("an older file that must be replaced", f);
    fclose(f);

    clv_params ps;
    clv_params_init(&ps);
    clv_err err = {{0}};
    int64_t s1[2] = {3, 5}, s2[1] = {7};
    clv_param *w = clv_params_add(&ps, "blocks.0.attn.qkv.weight", 2, s1, &err);
    clv_param *b = clv_params_add(&ps, "norm.bias", 1, s2, &err);
    for (int i = 0; i < 15; i++)
        w->data[i] = (float)i / 3;
    for (int i = 0; i < 7; i++)
        b->data[i] = -(float)i;
    clv_st_writer *wr = clv_st_writer_new();
    for (int i = 0; i < ps.count; i++)
        cr_assert_eq(clv_st_writer_add_param(wr, ps.items[i], "model.", &err), 0, "%s", err.msg);
    cr_assert_eq(clv_st_writer_meta(wr, "std", "[0.5, 0.5, 0.5]", &err), 0);
    cr_assert_eq(clv_st_writer_write(wr, path, &err), 0, "%s", err.msg);
    clv_st_writer_free(wr);
    cr_assert_eq(count_tmp_files(dir), 0, "no temporary file left");

    /* the data buffer starts 8-byte aligned */
    f = fopen(path, "rb");
    uint64_t hlen = 0;
    cr_assert_eq(fread(&hlen, 8, 1, f), 1);
    fclose(f);
    cr_assert_eq(hlen % 8, 0);

    clv_params back;
    clv_params_init(&back);
    clv_param *w2 = clv_params_add(&back, "blocks.0.attn.qkv.weight", 2, s1, &err);
    clv_param *b2 = clv_params_add(&back, "norm.bias", 1, s2, &err);
    clv_safetensors st;
    cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
    cr_assert_str_eq(clv_st_meta(&st, "std"), "[0.5, 0.5, 0.5]");
    cr_assert_eq(clv_st_load_params(&st, &back, "model.", 1, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(w2->data, w->data, 15 * sizeof(float)), 0);
    cr_assert_eq(memcmp(b2->data, b->data, 7 * sizeof(float)), 0);
    clv_st_close(&st);
    clv_params_free(&back);
    clv_params_free(&ps);
    unlink(path);
    rmdir(dir);
}

Test(safetensors, load_params_lists_the_differences)
{
    char path[] = "/tmp/clvit-st-diff-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    clv_err err = {{0}};
    float data[12] = {0};
    int64_t s_file[2] = {4, 3}, s_extra[1] = {2};
    clv_st_writer *wr = clv_st_writer_new();
    cr_assert_eq(clv_st_writer_add(wr, "fc.weight", CLV_DT_F32, 2, s_file, data, &err), 0);
    cr_assert_eq(clv_st_writer_add(wr, "extra", CLV_DT_F32, 1, s_extra, data, &err), 0);
    cr_assert_eq(clv_st_writer_write(wr, path, &err), 0, "%s", err.msg);
    clv_st_writer_free(wr);

    clv_params ps;
    clv_params_init(&ps);
    int64_t s_want[2] = {3, 4}, s_bias[1] = {3};
    clv_params_add(&ps, "fc.weight", 2, s_want, &err);
    clv_params_add(&ps, "fc.bias", 1, s_bias, &err);
    clv_safetensors st;
    cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_st_load_params(&st, &ps, NULL, 0, &err), -1);
    cr_assert(strstr(err.msg, path), "%s", err.msg);
    cr_assert(strstr(err.msg, "2 differences"), "%s", err.msg);
    cr_assert(strstr(err.msg, "fc.weight shape [4, 3] in file, [3, 4] expected"), "%s", err.msg);
    cr_assert(strstr(err.msg, "missing fc.bias"), "%s", err.msg);
    cr_assert_eq(clv_st_load_params(&st, &ps, NULL, 1, &err), -1);
    cr_assert(strstr(err.msg, "3 differences") && strstr(err.msg, "unexpected extra"), "strict: %s", err.msg);
    clv_st_close(&st);
    clv_params_free(&ps);
    unlink(path);
}

Test(safetensors, writer_matches_the_reference_layout)
{
    char path[] = "/tmp/clvit-st-ref-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    const float b[3] = {1, -2, 3}, w[4] = {0.5f, 0.25f, -1, 8}, z = 42;
    int64_t sb[1] = {3}, sw[2] = {2, 2};
    clv_err err = {{0}};
    clv_st_writer *wr = clv_st_writer_new();
    /* added out of order: the file lists names sorted */
    cr_assert_eq(clv_st_writer_add(wr, "z", CLV_DT_F32, 0, NULL, &z, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_st_writer_add(wr, "blocks.0.w", CLV_DT_F32, 2, sw, w, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_st_writer_add(wr, "b", CLV_DT_F32, 1, sb, b, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_st_writer_add(wr, "b", CLV_DT_F32, 1, sb, b, &err), -1, "a name twice is refused");
    cr_assert_eq(clv_st_writer_meta(wr, "task", "2", &err), 0);
    cr_assert_eq(clv_st_writer_meta(wr, "method", "rkr", &err), 0);
    cr_assert_eq(clv_st_writer_meta(wr, "task", "3", &err), 0, "a key set again is replaced");
    cr_assert_eq(clv_st_writer_write(wr, path, &err), 0, "%s", err.msg);
    clv_st_writer_free(wr);
    size_t n_ours, n_ref;
    char *ours = read_whole(path, &n_ours), *ref = read_whole(FIX "written.safetensors", &n_ref);
    cr_assert(ours && ref, "%s or the reference unreadable", path);
    cr_assert_eq(n_ours, n_ref, "%zu bytes written, reference %zu", n_ours, n_ref);
    cr_assert_eq(memcmp(ours, ref, n_ref), 0, "ours: %s\nref:  %s", ours + 8, ref + 8);
    free(ours);
    free(ref);
    unlink(path);
}

Test(safetensors, prints_a_table_and_json)
{
    clv_safetensors st;
    clv_err err = {{0}};
    cr_assert_eq(clv_st_open(&st, FIX "good.safetensors", &err), 0, "%s", err.msg);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    clv_st_print(&st, out, 0);
    fclose(out);
    cr_assert(strstr(text, "BF16") && strstr(text, "[2, 3]"), "%s", text);
    cr_assert(strstr(text, "7 tensors, 23 elements, 85 bytes of data"), "%s", text);
    cr_assert(strstr(text, "format = fixture"), "%s", text);
    cr_assert(strstr(text, "\na ") < strstr(text, "\nu "), "tensors in name order: %s", text);
    free(text);

    out = open_memstream(&text, &len);
    clv_st_print(&st, out, 1);
    fclose(out);
    cJSON *root = cJSON_Parse(text);
    cr_assert_not_null(root, "valid JSON: %s", text);
    const cJSON *ts = cJSON_GetObjectItem(root, "tensors");
    cr_assert_eq(cJSON_GetArraySize(ts), 7);
    const cJSON *a = cJSON_GetArrayItem(ts, 0);
    cr_assert_str_eq(cJSON_GetObjectItem(a, "name")->valuestring, "a");
    cr_assert_str_eq(cJSON_GetObjectItem(a, "dtype")->valuestring, "F32");
    cr_assert_eq(cJSON_GetObjectItem(a, "bytes")->valuedouble, 24);
    cr_assert_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(a, "shape"), 1)->valuedouble, 3);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "metadata"), "mean")->valuestring,
                     "[0.5, 0.25, 0.125]");
    cJSON_Delete(root);
    free(text);
    clv_st_close(&st);
}

/* Every file the writer makes carries a crc32 of its bytes: a flipped bit in
 * the data or the header, or a cut, is found on open and named as damage. */
static void flip_byte(const char *path, long at)
{
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    fseek(f, at, at < 0 ? SEEK_END : SEEK_SET);
    int c = fgetc(f);
    fseek(f, -1, SEEK_CUR);
    fputc(c ^ 0x10, f);
    fclose(f);
}

Test(safetensors, a_checksum_finds_damage)
{
    char dir[] = "/tmp/clvit-st-crc-XXXXXX", path[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/task-03.safetensors", dir);
    const float w[4] = {0.5f, 0.25f, -1, 8};
    int64_t sw[2] = {2, 2};
    clv_err err = {{0}};
    clv_st_writer *wr = clv_st_writer_new();
    cr_assert_eq(clv_st_writer_add(wr, "head.weight", CLV_DT_F32, 2, sw, w, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_st_writer_meta(wr, "task", "3", &err), 0);
    cr_assert_eq(clv_st_writer_meta(wr, CLV_ST_CRC_KEY, "00000000", &err), -1, "the key is the writer's own");
    cr_assert_eq(clv_st_writer_write(wr, path, &err), 0, "%s", err.msg);
    clv_st_writer_free(wr);

    clv_safetensors st;
    cr_assert_eq(clv_st_open(&st, path, &err), 0, "an untouched file opens: %s", err.msg);
    const char *crc = clv_st_meta(&st, CLV_ST_CRC_KEY);
    cr_assert(crc && strlen(crc) == 8, "the writer adds the checksum");
    clv_st_close(&st);

    size_t len;
    char *orig = read_whole(path, &len);
    cr_assert_not_null(orig, "%s", path);
    /* a byte of the data (the last float), of a metadata value, of a shape */
    const char *where[] = {NULL, "\"task\":\"3\"", "\"shape\":[2,2]"};
    for (int k = 0; k < 3; k++) {
        long at = -1;
        if (where[k])
            at = (long)(strstr(orig + 8, where[k]) - orig) + (long)strlen(where[k]) - 2;
        flip_byte(path, at);
        cr_expect_eq(clv_st_open(&st, path, &err), CLV_ST_DAMAGED, "flip %d is found", k);
        cr_expect(strstr(err.msg, path) && strstr(err.msg, "corrupted"), "flip %d: %s", k, err.msg);
        flip_byte(path, at);
        cr_assert_eq(clv_st_open(&st, path, &err), 0, "flipped back: %s", err.msg);
        clv_st_close(&st);
    }
    cr_assert_eq(truncate(path, (off_t)len - 3), 0);
    cr_expect_eq(clv_st_open(&st, path, &err), CLV_ST_DAMAGED);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "truncated"), "%s", err.msg);
    cr_assert_eq(truncate(path, 5), 0);
    cr_expect_eq(clv_st_open(&st, path, &err), CLV_ST_DAMAGED);
    cr_expect(strstr(err.msg, "truncated"), "%s", err.msg);
    cr_expect_eq(clv_st_open(&st, "/nonexistent/x.safetensors", &err), -1, "a missing file is not damage");

    /* a file of another tool, without the key, loads as before */
    cr_assert_eq(clv_st_open(&st, FIX "good.safetensors", &err), 0, "%s", err.msg);
    cr_expect_null(clv_st_meta(&st, CLV_ST_CRC_KEY));
    clv_st_close(&st);
    free(orig);
    unlink(path);
    rmdir(dir);
}
