/* Checksums of a dataset tree, what Debian says about a package, and the
 * check of a tree against its manifest.
 *
 * A checksum is zlib's crc32 over, for each file in byte order of its path
 * relative to the dataset root, the path, one NUL byte and the file's bytes.
 * A split's checksum takes the files under its prefix; the dataset's
 * "checksum" takes every file but manifest.json. */
#include "studygen.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static int add_file(sg_filelist *l, const char *rel, uint32_t crc, int64_t bytes)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 1024;
        sg_file *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n].path = strdup(rel)))
        return -1;
    l->v[l->n].crc = crc;
    l->v[l->n].bytes = bytes;
    l->n++;
    return 0;
}

int sg_file_crc(const char *path, uint32_t *crc, int64_t *bytes)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    unsigned char buf[1 << 16];
    uLong c = crc32(0L, Z_NULL, 0);
    int64_t n = 0;
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        c = crc32(c, buf, (uInt)got);
        n += (int64_t)got;
    }
    int bad = ferror(f);
    fclose(f);
    *crc = (uint32_t)c;
    *bytes = n;
    return bad ? -1 : 0;
}

static int walk(const char *root, const char *rel, sg_filelist *out, sg_err *err)
{
    char dir[2 * SG_PATH + 2], path[2 * SG_PATH + 2], sub[SG_PATH];
    snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d)
        return sg_errf(err, "%s: cannot open the directory", dir);
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        snprintf(path, sizeof path, "%s/%s", root, sub);
        struct stat st;
        if (lstat(path, &st)) {
            rc = sg_errf(err, "%s: cannot stat", path);
        } else if (S_ISDIR(st.st_mode)) {
            rc = walk(root, sub, out, err);
        } else if (S_ISREG(st.st_mode)) {
            if (!*rel && !strcmp(e->d_name, "manifest.json"))
                continue;
            uint32_t crc;
            int64_t bytes;
            if (sg_file_crc(path, &crc, &bytes))
                rc = sg_errf(err, "%s: cannot read", path);
            else if (add_file(out, sub, crc, bytes))
                rc = sg_errf(err, "out of memory");
        } else {
            rc = sg_errf(err, "%s: neither a file nor a directory (a link?)", path);
        }
    }
    closedir(d);
    return rc;
}

static int cmp_file(const void *a, const void *b) { return strcmp(((const sg_file *)a)->path, ((const sg_file *)b)->path); }

int sg_list_files(const char *root, sg_filelist *out, sg_err *err)
{
    memset(out, 0, sizeof *out);
    if (walk(root, "", out, err)) {
        sg_filelist_free(out);
        return -1;
    }
    qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_file);
    return 0;
}

void sg_filelist_free(sg_filelist *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i].path);
    free(l->v);
    memset(l, 0, sizeof *l);
}

uint32_t sg_checksum(const sg_filelist *l, const char *prefix, int64_t *n_files)
{
    uLong c = crc32(0L, Z_NULL, 0);
    const size_t plen = strlen(prefix);
    int64_t n = 0;
    for (int i = 0; i < l->n; i++) {
        if (strncmp(l->v[i].path, prefix, plen))
            continue;
        c = crc32(c, (const Bytef *)l->v[i].path, (uInt)strlen(l->v[i].path) + 1);
        c = crc32_combine(c, l->v[i].crc, (z_off_t)l->v[i].bytes);
        n++;
    }
    if (n_files)
        *n_files = n;
    return (uint32_t)c;
}

static int package_name_ok(const char *p)
{
    if (!*p)
        return 0;
    for (; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || strchr(".+-", *p)))
            return 0;
    return 1;
}

void sg_debian_sources(cJSON *debian, const char *const *pkgs, int n)
{
    /* one dpkg-query for all: versions of the installed ones */
    char (*ver)[128] = calloc((size_t)(n > 0 ? n : 1), sizeof *ver);
    size_t cap = 128, len = 0;
    for (int i = 0; i < n; i++)
        cap += strlen(pkgs[i]) + 1;
    char *cmd = malloc(cap);
    if (!ver || !cmd) {
        free(ver);
        free(cmd);
        return;
    }
    len = (size_t)snprintf(cmd, cap, "dpkg-query -W -f='${Package} ${db:Status-Abbrev}|${Version}\\n'");
    for (int i = 0; i < n; i++)
        if (package_name_ok(pkgs[i])) /* nothing else reaches the shell */
            len += (size_t)snprintf(cmd + len, cap - len, " %s", pkgs[i]);
    snprintf(cmd + len, cap - len, " 2>/dev/null");
    FILE *f = popen(cmd, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *sp = strchr(line, ' '), *bar = strchr(line, '|');
        if (!sp || !bar || strncmp(sp + 1, "ii", 2))
            continue;
        *sp = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(pkgs[i], line))
                snprintf(ver[i], sizeof ver[i], "%.120s", bar + 1);
    }
    if (f)
        pclose(f);
    free(cmd);
    for (int i = 0; i < n; i++) {
        int dup = 0;
        for (int k = 0; k < i; k++)
            dup |= !strcmp(pkgs[k], pkgs[i]);
        if (dup)
            continue;
        char copyright[SG_PATH];
        snprintf(copyright, sizeof copyright, "/usr/share/doc/%s/copyright", pkgs[i]);
        sg_add_debian_source(debian, pkgs[i], ver[i], copyright);
    }
    free(ver);
}

void sg_copyright_licences(const char *path, char *out, size_t cap)
{
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024], seen[32][96];
    int n_seen = 0;
    size_t len = 0;
    while (fgets(line, sizeof line, f) && n_seen < 32) {
        if (strncmp(line, "License:", 8))
            continue;
        char *v = line + 8;
        while (*v == ' ' || *v == '\t')
            v++;
        v[strcspn(v, "\r\n")] = 0;
        if (!*v)
            continue;
        int dup = 0;
        for (int i = 0; i < n_seen; i++)
            dup |= !strncmp(seen[i], v, sizeof seen[i] - 1);
        if (dup)
            continue;
        snprintf(seen[n_seen++], sizeof seen[0], "%.95s", v);
        int put = snprintf(out + len, cap - len, "%s%s", len ? ", " : "", v);
        if (put < 0 || (size_t)put >= cap - len) {
            out[len] = 0;
            break;
        }
        len += (size_t)put;
    }
    if (!n_seen) { /* not DEP-5: the licences named in the text */
        static const char *const known[][2] = {{"open font license, version 1.1", "OFL-1.1"},
                                               {"open font license, version 1.0", "OFL-1.0"},
                                               {"arphic public license", "Arphic-1999"},
                                               {"gnu general public license", "GPL"}};
        int found[4] = {0};
        rewind(f);
        while (fgets(line, sizeof line, f))
            for (int k = 0; k < 4; k++) {
                for (char *p = line; *p; p++)
                    *p = (char)tolower((unsigned char)*p);
                found[k] |= strstr(line, known[k][0]) != NULL;
            }
        for (int k = 0; k < 4; k++)
            if (found[k]) {
                int put = snprintf(out + len, cap - len, "%s%s", len ? ", " : "", known[k][1]);
                if (put > 0 && (size_t)put < cap - len)
                    len += (size_t)put;
            }
    }
    fclose(f);
}

/* "; first difference: <file> ..." from files.tsv's per-file crc32, or "", into msg. */
static const char *first_changed(const char *root, const sg_filelist *l, const char *prefix, char msg[SG_PATH + 96])
{
    char path[SG_PATH + 16], line[SG_PATH + 256];
    snprintf(path, sizeof path, "%s/files.tsv", root);
    msg[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return msg;
    int i = 0;
    const size_t plen = strlen(prefix);
    while (fgets(line, sizeof line, f) && !msg[0]) {
        char *tab = strchr(line, '\t');
        if (!tab || strncmp(line, prefix, plen))
            continue;
        *tab = 0;
        while (i < l->n && strcmp(l->v[i].path, line) < 0)
            i++;
        if (i == l->n || strcmp(l->v[i].path, line))
            snprintf(msg, SG_PATH + 96, "; first difference: %.*s is missing", SG_PATH - 8, line);
        else if (strtoul(tab + 1, NULL, 16) != l->v[i].crc)
            snprintf(msg, SG_PATH + 96, "; first difference: %.*s has crc32 %08x, files.tsv says %.8s", SG_PATH - 64, line,
                     l->v[i].crc, tab + 1);
    }
    fclose(f);
    return msg;
}

int sg_verify(const char *root, sg_err *err)
{
    char path[SG_PATH];
    snprintf(path, sizeof path, "%s/manifest.json", root);
    FILE *f = fopen(path, "rb");
    if (!f)
        return sg_errf(err, "%s: no manifest", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *t = n > 0 && n < (64L << 20) ? malloc((size_t)n + 1) : NULL;
    if (!t || fread(t, 1, (size_t)n, f) != (size_t)n) {
        free(t);
        fclose(f);
        return sg_errf(err, "%s: unreadable", path);
    }
    fclose(f);
    t[n] = 0;
    cJSON *m = cJSON_Parse(t);
    free(t);
    const cJSON *sums = m ? cJSON_GetObjectItemCaseSensitive(m, "checksums") : NULL;
    const cJSON *total = m ? cJSON_GetObjectItemCaseSensitive(m, "checksum") : NULL;
    const cJSON *nfiles = m ? cJSON_GetObjectItemCaseSensitive(m, "files") : NULL;
    if (!cJSON_IsObject(sums) || !cJSON_IsString(total) || !cJSON_IsNumber(nfiles)) {
        cJSON_Delete(m);
        return sg_errf(err, "%s: not a studygen manifest (no checksums, checksum or files)", path);
    }
    sg_filelist l;
    if (sg_list_files(root, &l, err)) {
        cJSON_Delete(m);
        return -1;
    }
    int rc = 0;
    char got[16], diff[SG_PATH + 96];
    int64_t count;
    const cJSON *s;
    cJSON_ArrayForEach(s, sums)
    {
        const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(s, "prefix");
        const cJSON *crc = cJSON_GetObjectItemCaseSensitive(s, "crc32");
        const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(s, "files");
        if (!cJSON_IsString(prefix) || !cJSON_IsString(crc) || !cJSON_IsNumber(cnt)) {
            rc = sg_errf(err, "%s: checksums.%s needs prefix, crc32 and files", path, s->string);
            break;
        }
        snprintf(got, sizeof got, "%08x", sg_checksum(&l, prefix->valuestring, &count));
        if (count != (int64_t)cnt->valuedouble || strcmp(got, crc->valuestring)) {
            rc = sg_errf(err, "%s: split %s: %lld files with checksum %s on disk, the manifest says %lld with %s%s", root,
                         s->string, (long long)count, got, (long long)cnt->valuedouble, crc->valuestring,
                         first_changed(root, &l, prefix->valuestring, diff));
            break;
        }
    }
    snprintf(got, sizeof got, "%08x", sg_checksum(&l, "", &count));
    if (!rc && (count != (int64_t)nfiles->valuedouble || strcmp(got, total->valuestring)))
        rc = sg_errf(err, "%s: %lld files with checksum %s on disk, the manifest says %lld with %s%s", root,
                     (long long)count, got, (long long)nfiles->valuedouble, total->valuestring, first_changed(root, &l, "", diff));
    sg_filelist_free(&l);
    cJSON_Delete(m);
    return rc;
}
