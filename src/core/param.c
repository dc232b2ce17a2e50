/* The parameter list: one place that owns every trainable tensor of a model. */
#include "clvit/param.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void clv_params_init(clv_params *ps) { memset(ps, 0, sizeof *ps); }

static void param_free(clv_param *p)
{
    if (!p)
        return;
    clv_free(p->data);
    clv_free(p->grad);
    clv_free(p->opt_m);
    clv_free(p->opt_v);
    free(p);
}

void clv_params_free(clv_params *ps)
{
    for (int i = 0; i < ps->count; i++)
        param_free(ps->items[i]);
    free(ps->items);
    memset(ps, 0, sizeof *ps);
}

clv_param *clv_params_add(clv_params *ps, const char *name, int ndim, const int64_t *shape, clv_err *err)
{
    if (ndim < 1 || ndim > CLV_MAX_DIMS) {
        clv_errf(err, "parameter %s: %d dimensions (1 to %d allowed)", name, ndim, CLV_MAX_DIMS);
        return NULL;
    }
    if (strlen(name) >= CLV_NAME_LEN) {
        clv_errf(err, "parameter name too long: %s", name);
        return NULL;
    }
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] <= 0 || clv_mul_overflow(numel, (size_t)shape[d], &numel)) {
            clv_errf(err, "parameter %s: invalid shape", name);
            return NULL;
        }
    }
    if (clv_grow(&ps->items, &ps->cap, (size_t)ps->count + 1)) {
        clv_errf(err, "out of memory");
        return NULL;
    }
    clv_param *p = calloc(1, sizeof *p);
    if (!p || !(p->data = clv_alloc_array(numel, sizeof(float)))) {
        free(p);
        clv_errf(err, "out of memory allocating %s (%zu floats)", name, numel);
        return NULL;
    }
    strcpy(p->name, name);
    p->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        p->shape[d] = shape[d];
    p->numel = (int64_t)numel;
    p->lr_scale = 1.0f;
    ps->items[ps->count++] = p;
    return p;
}

clv_param *clv_params_add_init(clv_params *ps, const char *name, clv_init_kind init, float init_scale, int no_decay,
                               int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, clv_err *err)
{
    const int64_t shape[CLV_MAX_DIMS] = {d0, d1, d2, d3};
    clv_param *p = clv_params_add(ps, name, ndim, shape, err);
    if (p) {
        p->init = init;
        p->init_scale = init_scale;
        p->no_decay = no_decay;
    }
    return p;
}

int clv_params_append(clv_params *ps, clv_param *p, clv_err *err)
{
    if (clv_grow(&ps->items, &ps->cap, (size_t)ps->count + 1))
        return clv_errf(err, "out of memory");
    ps->items[ps->count++] = p;
    return 0;
}

void clv_params_free_view(clv_params *ps)
{
    free(ps->items);
    memset(ps, 0, sizeof *ps);
}

static float init_value(const clv_param *p, uint64_t key, int64_t j)
{
    switch (p->init) {
    case CLV_INIT_ZERO: return 0.0f;
    case CLV_INIT_ONE: return 1.0f;
    case CLV_INIT_TRUNC_NORMAL: return clv_rng_trunc_normal(key, (uint64_t)j, p->init_scale);
    case CLV_INIT_NORMAL: return p->init_scale * clv_rng_normal(key, (uint64_t)j);
    case CLV_INIT_UNIFORM: return p->init_scale * (2.0f * clv_rng_uniform(key, (uint64_t)j) - 1.0f);
    }
    return 0.0f;
}

void clv_params_initialize(clv_params *ps, uint64_t seed)
{
    for (int k = 0; k < ps->count; k++) {
        clv_param *p = ps->items[k];
        const uint64_t key = clv_rng_key(seed, CLV_STREAM_INIT, (uint64_t)k, 0);
        for (int64_t j = 0; j < p->numel; j++)
            p->data[j] = init_value(p, key, j);
    }
}

clv_param *clv_params_find(const clv_params *ps, const char *name)
{
    for (int i = 0; i < ps->count; i++)
        if (strcmp(ps->items[i]->name, name) == 0)
            return ps->items[i];
    return NULL;
}

int clv_param_set_trainable(clv_param *p, int trainable, clv_err *err)
{
    if (p->buffer)
        trainable = 0;
    p->trainable = trainable;
    if (trainable && !p->grad) {
        p->grad = clv_alloc_array((size_t)p->numel, sizeof(float));
        if (!p->grad)
            return clv_errf(err, "out of memory allocating the gradient of %s", p->name);
    }
    return 0;
}

void clv_params_zero_grad(clv_params *ps)
{
    for (int i = 0; i < ps->count; i++) {
        clv_param *p = ps->items[i];
        if (p->grad)
            memset(p->grad, 0, (size_t)p->numel * sizeof(float));
    }
}

int64_t clv_params_count(const clv_params *ps, int trainable_only)
{
    int64_t n = 0;
    for (int i = 0; i < ps->count; i++)
        if (!trainable_only || ps->items[i]->trainable)
            n += ps->items[i]->numel;
    return n;
}

const char *clv_param_shape_str(const clv_param *p, char *buf, size_t len)
{
    size_t off = 0;
    off += (size_t)snprintf(buf + off, len - off, "[");
    for (int d = 0; d < p->ndim && off < len; d++)
        off += (size_t)snprintf(buf + off, len - off, d ? ", %lld" : "%lld", (long long)p->shape[d]);
    if (off < len)
        snprintf(buf + off, len - off, "]");
    return buf;
}

const clv_param *clv_params_first_nonfinite(const clv_params *ps, int64_t *at)
{
    for (int i = 0; i < ps->count; i++) {
        const clv_param *p = ps->items[i];
        for (int64_t k = 0; k < p->numel; k++)
            if (!isfinite(p->data[k])) {
                if (at)
                    *at = k;
                return p;
            }
    }
    return NULL;
}
