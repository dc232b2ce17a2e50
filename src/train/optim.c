/* SGD with momentum and AdamW with PyTorch's update rules, and global-norm
 * gradient clipping (see clvit/optim.h). */
#include "clvit/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct clv_optim {
    clv_optim_config cfg;
    int64_t t; /* steps taken */
};

clv_optim_config clv_optim_defaults(void)
{
    return (clv_optim_config){.kind = CLV_OPTIM_ADAMW,
                              .momentum = 0.9f,
                              .nesterov = 0,
                              .weight_decay = 0.05f,
                              .beta1 = 0.9f,
                              .beta2 = 0.999f,
                              .eps = 1e-8f};
}

clv_optim *clv_optim_create(const clv_optim_config *cfg, clv_err *err)
{
    if (cfg->kind != CLV_OPTIM_SGD && cfg->kind != CLV_OPTIM_ADAMW) {
        clv_errf(err, "unknown optimizer kind %d", (int)cfg->kind);
        return NULL;
    }
    if (!(cfg->momentum >= 0 && cfg->momentum < 1) || !(cfg->weight_decay >= 0) || !(cfg->beta1 >= 0 && cfg->beta1 < 1) ||
        !(cfg->beta2 >= 0 && cfg->beta2 < 1) || !(cfg->eps > 0)) {
        clv_errf(err, "optimizer: momentum and betas must be in [0, 1), weight decay >= 0, eps > 0");
        return NULL;
    }
    clv_optim *o = calloc(1, sizeof *o);
    if (!o) {
        clv_errf(err, "out of memory");
        return NULL;
    }
    o->cfg = *cfg;
    return o;
}

void clv_optim_free(clv_optim *opt) { free(opt); }
int64_t clv_optim_get_step(const clv_optim *opt) { return opt->t; }

void clv_optim_reset_state(clv_params *ps)
{
    for (int i = 0; i < ps->count; i++) {
        clv_param *p = ps->items[i];
        if (p->opt_m)
            memset(p->opt_m, 0, (size_t)p->numel * sizeof(float));
        if (p->opt_v)
            memset(p->opt_v, 0, (size_t)p->numel * sizeof(float));
    }
}
void clv_optim_set_step(clv_optim *opt, int64_t t) { opt->t = t; }

static int ensure_state(clv_param *p, int need_v, clv_err *err)
{
    if (!p->opt_m && !(p->opt_m = clv_alloc_array((size_t)p->numel, sizeof(float))))
        return clv_errf(err, "out of memory for the optimizer state of %s", p->name);
    if (need_v && !p->opt_v && !(p->opt_v = clv_alloc_array((size_t)p->numel, sizeof(float))))
        return clv_errf(err, "out of memory for the optimizer state of %s", p->name);
    return 0;
}

/* torch.optim.SGD: g += wd p; buf = mu buf + g (buf = g at the first step);
 * p -= lr (nesterov ? g + mu buf : buf). */
static void sgd_param(const clv_optim_config *c, clv_param *p, float lr, int first)
{
    const float wd = p->no_decay ? 0.0f : c->weight_decay, mu = c->momentum;
    float *w = p->data, *m = p->opt_m;
    const float *g = p->grad;
    const int64_t n = p->numel;
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        if (mu == 0.0f) {
            w[i] -= lr * gi;
            continue;
        }
        float b = first ? gi : mu * m[i] + gi;
        m[i] = b;
        w[i] -= lr * (c->nesterov ? gi + mu * b : b);
    }
}

/* torch.optim.AdamW: p *= 1 - lr wd; m, v moments; p -= lr m_hat / (sqrt(v_hat) + eps),
 * computed as torch does: step = lr / bc1, denom = sqrt(v) / sqrt(bc2) + eps. */
static void adamw_param(const clv_optim_config *c, clv_param *p, float lr, int64_t t)
{
    const float wd = p->no_decay ? 0.0f : c->weight_decay, b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    /* torch computes the bias corrections in double and hands them over as float scalars */
    const double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    const float step = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2), decay = 1.0f - lr * wd;
    float *w = p->data, *m = p->opt_m, *v = p->opt_v;
    const float *g = p->grad;
    const int64_t n = p->numel;
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        w[i] *= decay;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        w[i] -= step * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
}

int clv_optim_step(clv_optim *opt, clv_params *ps, float lr_factor, clv_err *err)
{
    const int adam = opt->cfg.kind == CLV_OPTIM_ADAMW;
    const int first = opt->t == 0;
    opt->t++;
    for (int i = 0; i < ps->count; i++) {
        clv_param *p = ps->items[i];
        if (!p->trainable || !p->grad)
            continue;
        if ((adam || opt->cfg.momentum != 0.0f) && ensure_state(p, adam, err))
            return -1;
        float lr = lr_factor * p->lr_scale;
        if (adam)
            adamw_param(&opt->cfg, p, lr, opt->t);
        else
            sgd_param(&opt->cfg, p, lr, first);
    }
    return 0;
}

/* The sum of g's squares in double over fixed chunks (at most SQ_CHUNKS, each summed in order), the
 * chunks then in order: the same bits on any thread count, as OpenMP's reduction is not */
#define SQ_CHUNKS 256
static double sum_squares(const float *g, int64_t n)
{
    const int64_t min_chunk = 32768, chunk = n / SQ_CHUNKS + 1 > min_chunk ? n / SQ_CHUNKS + 1 : min_chunk;
    const int64_t chunks = (n + chunk - 1) / chunk;
    double part[SQ_CHUNKS];
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t end = (c + 1) * chunk < n ? (c + 1) * chunk : n;
        double s = 0;
        for (int64_t k = c * chunk; k < end; k++)
            s += (double)g[k] * g[k];
        part[c] = s;
    }
    double s = 0;
    for (int64_t c = 0; c < chunks; c++)
        s += part[c];
    return s;
}

double clv_clip_grad_norm(clv_params *ps, double max_norm)
{
    double sq = 0;
    for (int i = 0; i < ps->count; i++) {
        const clv_param *p = ps->items[i];
        if (!p->trainable || !p->grad)
            continue;
        sq += sum_squares(p->grad, p->numel);
    }
    double norm = sqrt(sq);
    if (max_norm > 0 && norm > max_norm) {
        /* torch: clip_coef = max_norm / (total_norm + 1e-6), applied when < 1 */
        float coef = (float)(max_norm / (norm + 1e-6));
        for (int i = 0; i < ps->count; i++) {
            clv_param *p = ps->items[i];
            if (!p->trainable || !p->grad)
                continue;
            float *g = p->grad;
#pragma omp parallel for simd schedule(static) if (p->numel > 32768)
            for (int64_t k = 0; k < p->numel; k++)
                g[k] *= coef;
        }
    }
    return norm;
}
