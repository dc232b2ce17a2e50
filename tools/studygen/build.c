/* One dataset's build: it is generated into <out>/.<name>.partial and moved
 * to <out>/<name> only once its manifest is written, so an interrupted run
 * leaves no half dataset behind; a dataset whose manifest records the same
 * inputs (generator version, seed, mode, fonts, sources and their versions,
 * libraries) and whose files still match it is skipped. */
#include "studygen.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static cJSON *read_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *t = n > 0 && n < (256L << 20) ? malloc((size_t)n + 1) : NULL;
    cJSON *j = NULL;
    if (t && fread(t, 1, (size_t)n, f) == (size_t)n) {
        t[n] = 0;
        j = cJSON_Parse(t);
    }
    free(t);
    fclose(f);
    return j;
}

static void inputs_checksum(const cJSON *inputs, char out[16])
{
    char *t = cJSON_PrintUnformatted(inputs);
    snprintf(out, 16, "%08lx", t ? crc32(0L, (const Bytef *)t, (uInt)strlen(t)) : 0UL);
    free(t);
}

int sg_build_begin(sg_build *b, const sg_opts *o, const char *name, cJSON *inputs, sg_err *err)
{
    memset(b, 0, sizeof *b);
    b->o = o;
    snprintf(b->name, sizeof b->name, "%s", name);
    snprintf(b->final_dir, sizeof b->final_dir, "%s/%s", o->out, name);
    snprintf(b->dir, sizeof b->dir, "%s/.%s.partial", o->out, name);
    char sum[16], path[SG_PATH + 32];
    /* what else the bytes depend on */
    cJSON_AddStringToObject(inputs, "generator_version", SG_VERSION);
    cJSON_AddNumberToObject(inputs, "seed", (double)o->seed);
    cJSON_AddBoolToObject(inputs, "quick", o->quick);
    inputs_checksum(inputs, sum);
    b->manifest = cJSON_CreateObject();
    cJSON_AddStringToObject(b->manifest, "format", "clvit-study-manifest-1");
    cJSON_AddStringToObject(b->manifest, "name", name);
    cJSON_AddStringToObject(b->manifest, "generator", "clvit-studygen");
    cJSON_AddStringToObject(b->manifest, "generator_version", SG_VERSION);
    cJSON_AddNumberToObject(b->manifest, "seed", (double)o->seed);
    cJSON_AddBoolToObject(b->manifest, "quick", o->quick);
    cJSON_AddStringToObject(b->manifest, "command", o->command);
    cJSON_AddStringToObject(b->manifest, "inputs_checksum", sum);
    /* the inputs at the top level, beside the results that follow */
    while (inputs->child) {
        cJSON *it = cJSON_DetachItemViaPointer(inputs, inputs->child);
        if (!cJSON_GetObjectItemCaseSensitive(b->manifest, it->string))
            cJSON_AddItemToObject(b->manifest, it->string, it);
        else
            cJSON_Delete(it);
    }
    cJSON_Delete(inputs);

    snprintf(path, sizeof path, "%s/manifest.json", b->final_dir);
    cJSON *old = o->force ? NULL : read_json(path);
    const cJSON *old_sum = old ? cJSON_GetObjectItemCaseSensitive(old, "inputs_checksum") : NULL;
    if (cJSON_IsString(old_sum) && !strcmp(old_sum->valuestring, sum)) {
        sg_err verr;
        const int ok = !sg_verify(b->final_dir, &verr);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(old, "checksum");
        if (ok) {
            printf("%s: up to date (checksum %s)\n", b->final_dir, cJSON_IsString(c) ? c->valuestring : "?");
            cJSON_Delete(old);
            return 1;
        }
        printf("%s: made from the same inputs but its files differ (%s): generating it again\n", b->final_dir, verr.msg);
    } else if (old) {
        printf("%s: made from other inputs (seed, mode, fonts or sources): generating it again\n", b->final_dir);
    }
    cJSON_Delete(old);
    if (sg_remove_tree(b->dir))
        return sg_errf(err, "%s: cannot remove the leftover partial directory", b->dir);
    return sg_mkdirs(b->dir, err);
}

int64_t sg_build_reserve(sg_build *b, int64_t n, sg_err *err)
{
    sg_record *r = realloc(b->rec, (size_t)(b->n_rec + n) * sizeof *r);
    if (!r)
        return sg_errf(err, "out of memory for %lld file records", (long long)(b->n_rec + n));
    memset(r + b->n_rec, 0, (size_t)n * sizeof *r);
    b->rec = r;
    int64_t first = b->n_rec;
    b->n_rec += n;
    return first;
}

static int cmp_rec(const void *a, const void *b) { return strcmp(((const sg_record *)a)->path, ((const sg_record *)b)->path); }

/* files.tsv: path, crc32, bytes, label, source; one row per file the records name. */
static int write_files_tsv(sg_build *b, sg_err *err)
{
    sg_filelist l;
    if (sg_list_files(b->dir, &l, err))
        return -1;
    qsort(b->rec, (size_t)b->n_rec, sizeof *b->rec, cmp_rec);
    size_t cap = 64 + (size_t)b->n_rec * 320, len = 0;
    char *t = malloc(cap);
    if (!t) {
        sg_filelist_free(&l);
        return sg_errf(err, "out of memory");
    }
    len += (size_t)snprintf(t, cap, "path\tcrc32\tbytes\tlabel\tsource\n");
    int rc = 0;
    for (int i = 0; i < l.n && !rc; i++) {
        sg_record key;
        snprintf(key.path, sizeof key.path, "%s", l.v[i].path);
        const sg_record *r = bsearch(&key, b->rec, (size_t)b->n_rec, sizeof *b->rec, cmp_rec);
        len += (size_t)snprintf(t + len, cap - len, "%s\t%08x\t%lld\t%d\t%s\n", l.v[i].path, l.v[i].crc,
                                (long long)l.v[i].bytes, r ? r->label : -1, r ? r->source : "");
        if (len >= cap)
            rc = sg_errf(err, "internal: files.tsv outgrew its buffer");
    }
    if (!rc && l.n < b->n_rec)
        rc = sg_errf(err, "%s: %lld records but only %d files", b->dir, (long long)b->n_rec, l.n);
    char path[SG_PATH + 16];
    snprintf(path, sizeof path, "%s/files.tsv", b->dir);
    if (!rc)
        rc = sg_write_file(path, t, len, err);
    free(t);
    sg_filelist_free(&l);
    return rc;
}

int sg_build_finish(sg_build *b, const char *const *split_names, const char *const *split_prefixes, int n_splits,
                    sg_err *err)
{
    if (write_files_tsv(b, err))
        return -1;
    sg_filelist l;
    if (sg_list_files(b->dir, &l, err))
        return -1;
    cJSON *sums = cJSON_AddObjectToObject(b->manifest, "checksums");
    char hex[16];
    for (int s = 0; s < n_splits; s++) {
        int64_t n;
        snprintf(hex, sizeof hex, "%08x", sg_checksum(&l, split_prefixes[s], &n));
        cJSON *o = cJSON_AddObjectToObject(sums, split_names[s]);
        cJSON_AddStringToObject(o, "prefix", split_prefixes[s]);
        cJSON_AddNumberToObject(o, "files", (double)n);
        cJSON_AddStringToObject(o, "crc32", hex);
    }
    int64_t n_all;
    int64_t bytes = 0;
    for (int i = 0; i < l.n; i++)
        bytes += l.v[i].bytes;
    snprintf(hex, sizeof hex, "%08x", sg_checksum(&l, "", &n_all));
    sg_filelist_free(&l);
    cJSON_AddStringToObject(b->manifest, "checksum_algorithm",
                            "zlib crc32 over each file's path relative to the dataset root, a NUL byte and its bytes, "
                            "files in byte order of path (manifest.json excluded); per file in files.tsv");
    cJSON_AddNumberToObject(b->manifest, "files", (double)n_all);
    cJSON_AddNumberToObject(b->manifest, "bytes", (double)bytes);
    cJSON_AddStringToObject(b->manifest, "checksum", hex);

    char *text = cJSON_Print(b->manifest);
    if (!text)
        return sg_errf(err, "out of memory");
    char path[SG_PATH + 32];
    snprintf(path, sizeof path, "%s/manifest.json", b->dir);
    size_t len = strlen(text);
    text[len] = '\n';
    int rc = sg_write_file(path, text, len + 1, err);
    free(text);
    if (rc)
        return -1;
    if (sg_remove_tree(b->final_dir))
        return sg_errf(err, "%s: cannot remove the older dataset", b->final_dir);
    if (rename(b->dir, b->final_dir))
        return sg_errf(err, "%s -> %s: cannot rename (%s)", b->dir, b->final_dir, strerror(errno));
    printf("%s: %lld files, %.1f MB, checksum %s\n", b->final_dir, (long long)n_all, bytes / 1e6, hex);
    return 0;
}

void sg_build_free(sg_build *b)
{
    cJSON_Delete(b->manifest);
    free(b->rec);
    memset(b, 0, sizeof *b);
}

void sg_add_debian_source(cJSON *arr, const char *pkg, const char *version, const char *copyright)
{
    char lic[1024];
    sg_copyright_licences(copyright, lic, sizeof lic);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "package", pkg);
    cJSON_AddStringToObject(o, "version", version);
    cJSON_AddStringToObject(o, "licence", *lic ? lic : "not in DEP-5 form: see the copyright file");
    cJSON_AddStringToObject(o, "copyright", copyright);
    cJSON_AddItemToArray(arr, o);
}
