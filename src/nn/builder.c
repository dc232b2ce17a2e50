/* Layer builders under timm's names (see clvit/builder.h). */
#include "clvit/builder.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

clv_model *clv_build_model(const char *family, const char *name, const clv_model_ops *ops, size_t impl_size,
                           clv_err *err)
{
    if (!name || strlen(name) >= sizeof(((clv_model_info *)0)->name)) {
        clv_errf(err, "%s: missing or too long model name", family);
        return NULL;
    }
    clv_model *m = calloc(1, sizeof *m);
    void *impl = calloc(1, impl_size);
    if (!m || !impl) {
        free(m);
        free(impl);
        clv_errf(err, "%s: out of memory", name);
        return NULL;
    }
    m->ops = ops;
    m->impl = impl;
    m->training = 1;
    clv_params_init(&m->params);
    snprintf(m->info.name, sizeof m->info.name, "%s", name);
    snprintf(m->info.family, sizeof m->info.family, "%s", family);
    return m;
}

clv_model *clv_build_abandon(clv_model *m)
{
    if (m)
        m->ops->free(m);
    return NULL;
}

void clv_build_model_free(clv_model *m)
{
    free(m->impl);
    clv_params_free(&m->params);
    free(m->wlayers);
    free(m);
}

const char *clv_build_count_str(const clv_model *m, char *buf, size_t len)
{
    const double np = (double)clv_params_count(&m->params, 0);
    if (np >= 1e6)
        snprintf(buf, len, "%.1fM", np / 1e6);
    else
        snprintf(buf, len, "%.0fK", np / 1e3);
    return buf;
}

void clv_builder_init(clv_builder *b, clv_model *m, clv_err *err)
{
    memset(b, 0, sizeof *b);
    b->m = m;
    b->err = err;
    b->wlayers_cap = (size_t)m->n_wlayers;
}

size_t clv_builder_push(clv_builder *b, const char *fmt, ...)
{
    const size_t at = strlen(b->scope);
    char part[CLV_NAME_LEN];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(part, sizeof part, fmt, ap);
    va_end(ap);
    const int w = snprintf(b->scope + at, sizeof b->scope - at, "%s%s", at ? "." : "", part);
    if (n < 0 || (size_t)n >= sizeof part || w < 0 || (size_t)w >= sizeof b->scope - at) {
        clv_errf(b->err, "%s: module name '%s.%s' longer than %d characters", b->m->info.name, b->scope, part,
                 CLV_NAME_LEN - 1);
        b->failed = 1;
    }
    return at;
}

void clv_builder_pop(clv_builder *b, size_t at)
{
    if (at < sizeof b->scope)
        b->scope[at] = '\0';
}

/* "<scope>.<name>" into out; -1 (err set) when it does not fit */
static int full_name(clv_builder *b, char *out, size_t len, const char *name)
{
    if (b->failed)
        return -1;
    const int n = snprintf(out, len, "%s%s%s", b->scope, b->scope[0] ? "." : "", name);
    if (n < 0 || (size_t)n >= len)
        return clv_errf(b->err, "%s: parameter name '%s.%s' longer than %d characters", b->m->info.name, b->scope,
                        name, CLV_NAME_LEN - 1);
    return 0;
}

clv_param *clv_build_param(clv_builder *b, const char *name, clv_init_kind init, float scale, int no_decay, int ndim,
                           int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    char full[CLV_NAME_LEN];
    if (full_name(b, full, sizeof full, name))
        return NULL;
    return clv_params_add_init(&b->m->params, full, init, scale, no_decay, ndim, d0, d1, d2, d3, b->err);
}

/* "<name>.<suffix>" into out [CLV_NAME_LEN]; -1 (err set) when it does not fit */
static int suffixed(clv_builder *b, char *out, const char *name, const char *suffix)
{
    const int n = snprintf(out, CLV_NAME_LEN, "%s.%s", name, suffix);
    if (n < 0 || n >= CLV_NAME_LEN)
        return clv_errf(b->err, "%s: parameter name '%s.%s' longer than %d characters", b->m->info.name, name, suffix,
                        CLV_NAME_LEN - 1);
    return 0;
}

/* names the layer "<scope>.<name>" and appends it to the model's weight layers */
static int add_wlayer(clv_builder *b, clv_wlayer *l, const char *name, int64_t out, int64_t in)
{
    if (full_name(b, l->name, sizeof l->name, name))
        return -1;
    l->out = out;
    l->in = in;
    clv_model *m = b->m;
    if (clv_grow(&m->wlayers, &b->wlayers_cap, m->n_wlayers + 1))
        return clv_errf(b->err, "%s: out of memory for its weight layers", m->info.name);
    m->wlayers[m->n_wlayers++] = l;
    return 0;
}

int clv_build_linear(clv_builder *b, clv_wlayer *l, const char *name, int64_t out, int64_t in, int has_bias)
{
    char pname[CLV_NAME_LEN];
    if (suffixed(b, pname, name, "weight") ||
        !(l->weight = clv_build_param(b, pname, CLV_INIT_TRUNC_NORMAL, 0.02f, 0, 2, out, in, 0, 0)))
        return -1;
    if (has_bias && (suffixed(b, pname, name, "bias") ||
                     !(l->bias = clv_build_param(b, pname, CLV_INIT_ZERO, 0.0f, 1, 1, out, 0, 0, 0))))
        return -1;
    return add_wlayer(b, l, name, out, in);
}

int clv_build_patch_proj(clv_builder *b, clv_wlayer *l, const char *name, int64_t out, int64_t cin, int64_t P)
{
    char pname[CLV_NAME_LEN];
    const int64_t fan_in = cin * P * P;
    const float bound = 1.0f / sqrtf((float)fan_in);
    if (suffixed(b, pname, name, "weight") ||
        !(l->weight = clv_build_param(b, pname, CLV_INIT_UNIFORM, bound, 0, 4, out, cin, P, P)))
        return -1;
    if (suffixed(b, pname, name, "bias") ||
        !(l->bias = clv_build_param(b, pname, CLV_INIT_UNIFORM, bound, 1, 1, out, 0, 0, 0)))
        return -1;
    return add_wlayer(b, l, name, out, fan_in);
}

int clv_build_conv(clv_builder *b, clv_wlayer *l, const char *name, int64_t out, int64_t cin, int64_t k)
{
    char pname[CLV_NAME_LEN];
    const float std = sqrtf(2.0f / (float)(out * k * k));
    if (suffixed(b, pname, name, "weight") ||
        !(l->weight = clv_build_param(b, pname, CLV_INIT_NORMAL, std, 0, 4, out, cin, k, k)))
        return -1;
    return add_wlayer(b, l, name, out, cin * k * k);
}

int clv_build_batchnorm(clv_builder *b, clv_batchnorm *n, const char *name, int64_t C, float eps)
{
    static const char *const what[4] = {"weight", "bias", "running_mean", "running_var"};
    static const clv_init_kind kinds[4] = {CLV_INIT_ONE, CLV_INIT_ZERO, CLV_INIT_ZERO, CLV_INIT_ONE};
    clv_param **slot[4] = {&n->w, &n->b, &n->running_mean, &n->running_var};
    char pname[CLV_NAME_LEN];
    n->eps = eps;
    for (int i = 0; i < 4; i++) {
        if (suffixed(b, pname, name, what[i]) ||
            !(*slot[i] = clv_build_param(b, pname, kinds[i], 0.0f, 1, 1, C, 0, 0, 0)))
            return -1;
        (*slot[i])->buffer = i >= 2;
        (*slot[i])->norm = 1;
    }
    return 0;
}

int clv_build_norm(clv_builder *b, clv_norm *n, const char *name, int64_t C, float eps)
{
    n->eps = eps;
    char pname[CLV_NAME_LEN];
    if (suffixed(b, pname, name, "weight") ||
        !(n->w = clv_build_param(b, pname, CLV_INIT_ONE, 0.0f, 1, 1, C, 0, 0, 0)))
        return -1;
    if (suffixed(b, pname, name, "bias") ||
        !(n->b = clv_build_param(b, pname, CLV_INIT_ZERO, 0.0f, 1, 1, C, 0, 0, 0)))
        return -1;
    n->w->norm = n->b->norm = 1;
    return 0;
}

void clv_build_initialize(clv_model *m, uint64_t seed)
{
    clv_params_initialize(&m->params, seed);
    clv_wlayers_invalidate(m->wlayers, m->n_wlayers);
}
