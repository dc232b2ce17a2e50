/* Datasets of image files decoded on demand (see dataset_files.h). */
#include "data/dataset_files.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

int clv_path_is_inside(const char *root_real, const char *path)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return 0;
    const size_t n = strlen(root_real);
    if (n == 1 && root_real[0] == '/')
        return 1;
    return !strncmp(real, root_real, n) && real[n] == '/';
}

int clv_file_list_add(clv_file_list *fl, const char *path, int32_t label, clv_err *err)
{
    if (clv_grow(&fl->paths, &fl->cap_paths, fl->n + 1) || clv_grow(&fl->labels, &fl->cap_labels, fl->n + 1))
        return clv_errf(err, "out of memory listing images");
    if (!(fl->paths[fl->n] = strdup(path)))
        return clv_errf(err, "out of memory listing images");
    fl->labels[fl->n++] = label;
    return 0;
}

void clv_file_list_free(clv_file_list *fl)
{
    for (int64_t i = 0; i < fl->n; i++)
        free(fl->paths[i]);
    free(fl->paths);
    free(fl->labels);
    memset(fl, 0, sizeof *fl);
}

typedef struct files_impl {
    clv_file_list fl;
    int32_t *class_group;
} files_impl;

static int files_get(const clv_dataset *ds, int64_t i, uint8_t *out, size_t out_cap, int *h, int *w, clv_err *err)
{
    const files_impl *f = ds->impl;
    if (i < 0 || i >= ds->n)
        return clv_errf(err, "%s: no image %lld", ds->path, (long long)i);
    uint8_t *px;
    int c;
    if (clv_image_read(f->fl.paths[i], &px, h, w, &c, err))
        return -1;
    const size_t n = (size_t)*h * (size_t)*w;
    if (n * 3 > out_cap) {
        clv_free(px);
        return clv_errf(err, "%s: %dx%d pixels is larger than the loader's %zu-byte image buffer", f->fl.paths[i],
                        *h, *w, out_cap);
    }
    if (c == 3)
        memcpy(out, px, n * 3);
    else
        for (size_t k = 0; k < n; k++)
            out[3 * k] = out[3 * k + 1] = out[3 * k + 2] = px[k];
    clv_free(px);
    return 0;
}

static void files_free(clv_dataset *ds)
{
    files_impl *f = ds->impl;
    if (f) {
        clv_file_list_free(&f->fl);
        free(f->class_group);
        free(f);
    }
    free(ds);
}

static const clv_dataset_ops files_ops = {.get = files_get, .free = files_free};

clv_dataset *clv_file_dataset(const char *name, const char *path, clv_file_list *fl, int num_classes,
                              int32_t *class_group, int n_groups, clv_err *err)
{
    clv_dataset *ds = calloc(1, sizeof *ds);
    files_impl *f = calloc(1, sizeof *f);
    if (!ds || !f) {
        free(ds);
        free(f);
        clv_file_list_free(fl);
        free(class_group);
        clv_errf(err, "out of memory");
        return NULL;
    }
    f->fl = *fl;
    memset(fl, 0, sizeof *fl);
    f->class_group = class_group;
    ds->ops = &files_ops;
    ds->impl = f;
    snprintf(ds->name, sizeof ds->name, "%s", name);
    snprintf(ds->path, sizeof ds->path, "%s", path);
    ds->n = f->fl.n;
    ds->labels = f->fl.labels;
    ds->num_classes = num_classes;
    ds->channels = 3;
    ds->class_group = class_group;
    ds->n_groups = n_groups;
    return ds;
}
