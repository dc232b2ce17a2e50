/* In-memory datasets: the pixels of every image in one buffer. */
#include "data/dataset_memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *pixels;
    int32_t *labels;
    size_t image_bytes;
} memory_impl;

static int memory_get(const clv_dataset *ds, int64_t i, uint8_t *out, size_t cap, int *h, int *w, clv_err *err)
{
    const memory_impl *m = ds->impl;
    if (i < 0 || i >= ds->n)
        return clv_errf(err, "%s: image %lld out of range (%lld images)", ds->path, (long long)i, (long long)ds->n);
    if (cap < m->image_bytes)
        return clv_errf(err, "%s: a buffer of %zu bytes is too small for an image of %zu", ds->path, cap,
                        m->image_bytes);
    memcpy(out, m->pixels + (size_t)i * m->image_bytes, m->image_bytes);
    *h = ds->height;
    *w = ds->width;
    return 0;
}

static void memory_free(clv_dataset *ds)
{
    memory_impl *m = ds->impl;
    if (m) {
        free(m->pixels);
        free(m->labels);
        free(m);
    }
    free(ds);
}

static const clv_dataset_ops memory_ops = {memory_get, memory_free};

clv_dataset *clv_memory_dataset(const char *name, const char *path, int64_t n, int h, int w, int c, uint8_t *pixels,
                                int32_t *labels, clv_err *err)
{
    clv_dataset *ds = calloc(1, sizeof *ds);
    memory_impl *m = calloc(1, sizeof *m);
    if (!ds || !m) {
        free(ds);
        free(m);
        free(pixels);
        free(labels);
        clv_errf(err, "out of memory");
        return NULL;
    }
    m->pixels = pixels;
    m->labels = labels;
    m->image_bytes = (size_t)h * (size_t)w * (size_t)c;
    ds->ops = &memory_ops;
    ds->impl = m;
    snprintf(ds->name, sizeof ds->name, "%s", name);
    snprintf(ds->path, sizeof ds->path, "%s", path);
    ds->n = n;
    ds->labels = labels;
    ds->channels = c;
    ds->height = h;
    ds->width = w;
    int32_t mx = -1;
    for (int64_t i = 0; i < n; i++)
        if (labels[i] > mx)
            mx = labels[i];
    ds->num_classes = mx + 1;
    return ds;
}
