/* The 0 bits of a task file's packed masks (see clvit/mask_density.h). */
#include "clvit/mask_density.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/adapters.h"

void clv_mask_bits_key(char *buf, size_t len, const char *mask_tensor_name)
{
    const char *rest = !strncmp(mask_tensor_name, "mask.", 5) ? mask_tensor_name + 5 : mask_tensor_name;
    snprintf(buf, len, "mask_bits.%s", rest);
}

typedef struct {
    const clv_st_tensor *t;
    int layer, kind, file_index;
} found_mask;

/* Index of the layer in order whose name the tensor "mask.<layer>.<tensor>" carries, or n_order. */
static int layer_of(const char *name, const char *const *order, int n_order, int *kind)
{
    static const char *const kinds[] = {"lm", "rm", "f", "weight"};
    const char *rest = name + 5, *dot = strrchr(rest, '.');
    *kind = 4;
    for (int k = 0; dot && k < 4; k++)
        if (!strcmp(dot + 1, kinds[k]))
            *kind = k;
    for (int i = 0; dot && order && i < n_order; i++)
        if (strlen(order[i]) == (size_t)(dot - rest) && !strncmp(order[i], rest, (size_t)(dot - rest)))
            return i;
    *kind = 0; /* a layer not listed: the file's order */
    return n_order;
}

static int by_position(const void *a, const void *b)
{
    const found_mask *x = a, *y = b;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return x->file_index < y->file_index ? -1 : x->file_index > y->file_index;
}

static int bit_count(const clv_safetensors *st, const clv_st_tensor *t, int64_t *n, clv_err *err)
{
    char key[CLV_NAME_LEN + 64];
    clv_mask_bits_key(key, sizeof key, t->name);
    const char *v = clv_st_meta(st, key);
    if (!v)
        return clv_errf(err, "%s: mask %s has no bit count (metadata %s)", st->path, t->name, key);
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno || x < 1 || t->dtype != CLV_DT_U8 || t->ndim != 1 ||
        clv_mask_bytes(x) != t->shape[0])
        return clv_errf(err, "%s: mask %s: %s = '%s' bits do not fit a U8 tensor of %lld bytes", st->path, t->name,
                        key, v, (long long)t->shape[0]);
    *n = x;
    return 0;
}

int clv_mask_density_read(const clv_safetensors *st, const char *const *layer_order, int n_order,
                          clv_mask_density *out, clv_err *err)
{
    memset(out, 0, sizeof *out);
    found_mask *found = calloc((size_t)st->count + 1, sizeof *found);
    if (!found)
        return clv_errf(err, "out of memory");
    int n = 0;
    for (int i = 0; i < st->count; i++)
        if (!strncmp(st->tensors[i].name, "mask.", 5)) {
            found[n] = (found_mask){&st->tensors[i], 0, 0, i};
            found[n].layer = layer_of(st->tensors[i].name, layer_order, n_order, &found[n].kind);
            n++;
        }
    qsort(found, (size_t)n, sizeof *found, by_position);
    int rc = -1;
    if (n && !(out->layers = calloc((size_t)n, sizeof *out->layers))) {
        clv_errf(err, "out of memory");
        goto done;
    }
    for (int k = 0; k < n; k++) {
        const clv_st_tensor *t = found[k].t;
        clv_mask_layer *ml = &out->layers[k];
        if (bit_count(st, t, &ml->bits, err))
            goto done;
        snprintf(ml->name, sizeof ml->name, "%s", t->name + 5);
        ml->zero_bits = ml->bits - clv_mask_count(clv_st_tensor_data(st, t), ml->bits);
        out->bits += ml->bits;
        out->zero_bits += ml->zero_bits;
        out->n_layers++;
    }
    rc = 0;
done:
    free(found);
    if (rc)
        clv_mask_density_free(out);
    return rc;
}

void clv_mask_density_free(clv_mask_density *d)
{
    free(d->layers);
    memset(d, 0, sizeof *d);
}
