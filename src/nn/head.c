/* The task head: Linear(feat_dim -> classes), one per task, parameters
 * head.weight [classes x feat_dim] and head.bias [classes] in its own list
 * (timm's names, so a task file holds them as a timm head would). */
#include "clvit/kernels.h"
#include "clvit/model.h"

#include <string.h>

int clv_head_init(clv_head *h, int feat_dim, int classes, uint64_t seed, int task, clv_err *err)
{
    memset(h, 0, sizeof *h);
    clv_params_init(&h->params);
    if (feat_dim <= 0 || classes <= 0 || task < 0)
        return clv_errf(err, "head: feat_dim %d, classes %d, task %d", feat_dim, classes, task);
    const int64_t wshape[2] = {classes, feat_dim}, bshape[1] = {classes};
    clv_param *w = clv_params_add(&h->params, "head.weight", 2, wshape, err);
    clv_param *b = w ? clv_params_add(&h->params, "head.bias", 1, bshape, err) : NULL;
    /* a fresh head exists to be trained */
    if (!b || clv_param_set_trainable(w, 1, err) || clv_param_set_trainable(b, 1, err)) {
        clv_params_free(&h->params);
        return -1;
    }
    b->no_decay = 1;
    const uint64_t key = clv_rng_key(seed, CLV_STREAM_INIT, 1000000u + (uint64_t)task, 0);
    for (int64_t i = 0; i < w->numel; i++)
        w->data[i] = clv_rng_trunc_normal(key, (uint64_t)i, 0.02f);
    h->classes = classes;
    h->feat_dim = feat_dim;
    return 0;
}

void clv_head_free(clv_head *h)
{
    clv_params_free(&h->params);
    h->classes = h->feat_dim = 0;
}

void clv_head_forward(const clv_head *h, float *logits, const float *feats, int64_t B)
{
    const clv_param *w = h->params.items[0], *b = h->params.items[1];
    clv_linear_forward(logits, feats, w->data, b->data, B, h->feat_dim, h->classes);
}

void clv_head_backward(clv_head *h, float *dfeats, const float *dlogits, const float *feats, int64_t B)
{
    clv_param *w = h->params.items[0], *b = h->params.items[1];
    clv_linear_backward(dfeats, w->trainable ? w->grad : NULL, b->trainable ? b->grad : NULL, dlogits, feats, w->data,
                        B, h->feat_dim, h->classes);
}
