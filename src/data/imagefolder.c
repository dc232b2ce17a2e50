/* Image folders in the ImageNet layout: root/train/<class>/<image> and
 * root/val/<class>/<image>, JPEG or PNG. Classes are the sorted sub-folder
 * names of train/ (val/ must have the same ones), images are sorted by name
 * and decoded on demand. */
#include "clvit/config.h"
#include "data/dataset_files.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

typedef struct names {
    char **v;
    int n;
    size_t cap;
} names;

static void names_free(names *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_image_name(const char *n)
{
    const char *dot = strrchr(n, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

/* Sorted entries of dir that are directories (want_dirs) or image files. */
static int list(const char *dir, int want_dirs, names *out, clv_err *err)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d)
        return clv_errf(err, "%s: cannot open the directory", dir);
    struct dirent *e;
    char path[CLV_PATH_LEN + 256];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st))
            continue;
        if (want_dirs ? !S_ISDIR(st.st_mode) : !(S_ISREG(st.st_mode) && is_image_name(e->d_name)))
            continue;
        if (clv_grow(&out->v, &out->cap, (size_t)out->n + 1) || !(out->v[out->n] = strdup(e->d_name)))
            break;
        out->n++;
    }
    int failed = e != NULL;
    closedir(d);
    if (failed) {
        names_free(out);
        return clv_errf(err, "%s: out of memory listing the directory", dir);
    }
    if (out->n) /* an empty folder leaves v NULL, which qsort must not get */
        qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return 0;
}

static int open_split(const char *root, const char *split, const names *classes, clv_dataset **out, clv_err *err)
{
    char dir[CLV_PATH_LEN + 16], cdir[CLV_PATH_LEN + 300], path[CLV_PATH_LEN + 600], name[64];
    snprintf(dir, sizeof dir, "%s/%s", root, split);
    clv_file_list fl = {0};
    for (int c = 0; c < classes->n; c++) {
        snprintf(cdir, sizeof cdir, "%s/%s", dir, classes->v[c]);
        names files;
        if (list(cdir, 0, &files, err))
            goto fail;
        if (!files.n) {
            names_free(&files);
            clv_errf(err, "%s: no JPEG or PNG images in class folder %s", dir, classes->v[c]);
            goto fail;
        }
        for (int i = 0; i < files.n; i++) {
            snprintf(path, sizeof path, "%s/%s", cdir, files.v[i]);
            if (clv_file_list_add(&fl, path, c, err)) {
                names_free(&files);
                goto fail;
            }
        }
        names_free(&files);
    }
    snprintf(name, sizeof name, "imagefolder %s", split);
    return (*out = clv_file_dataset(name, dir, &fl, classes->n, NULL, 0, err)) ? 0 : -1;
fail:
    clv_file_list_free(&fl);
    return -1;
}

int clv_imagefolder_open(const char *root, clv_dataset **train, clv_dataset **test, clv_err *err)
{
    *train = *test = NULL;
    char dir[CLV_PATH_LEN + 16];
    names tr = {0}, va = {0};
    int rc = -1;
    snprintf(dir, sizeof dir, "%s/train", root);
    if (list(dir, 1, &tr, err)) {
        clv_err_prefix(err, "image folder %s needs train/ and val/ with one sub-folder per class", root);
        goto done;
    }
    snprintf(dir, sizeof dir, "%s/val", root);
    if (list(dir, 1, &va, err)) {
        clv_err_prefix(err, "image folder %s needs train/ and val/ with one sub-folder per class", root);
        goto done;
    }
    if (!tr.n) {
        clv_errf(err, "%s/train: no class folders", root);
        goto done;
    }
    /* the same classes on both sides, named */
    for (int i = 0, j = 0; i < tr.n || j < va.n;) {
        int c = i == tr.n ? 1 : j == va.n ? -1 : strcmp(tr.v[i], va.v[j]);
        if (c < 0) {
            clv_errf(err, "%s/val has no folder for class '%s' of train/", root, tr.v[i]);
            goto done;
        }
        if (c > 0) {
            clv_errf(err, "%s/val has a folder '%s' that train/ does not", root, va.v[j]);
            goto done;
        }
        i++, j++;
    }
    if (open_split(root, "train", &tr, train, err) || open_split(root, "val", &tr, test, err))
        goto done;
    /* a class is its folder's name */
    if (clv_dataset_set_class_names(*train, (const char *const *)tr.v, tr.n, err) ||
        clv_dataset_set_class_names(*test, (const char *const *)tr.v, tr.n, err))
        goto done;
    rc = 0;
done:
    if (rc) {
        clv_dataset_free(*train);
        clv_dataset_free(*test);
        *train = *test = NULL;
    }
    names_free(&tr);
    names_free(&va);
    return rc;
}
