/* LayerNorm layer (see clvit/norm.h). */
#include "clvit/norm.h"
#include "clvit/kernels.h"

#include <string.h>

void clv_norm_forward(const clv_norm *n, float *y, float *mean, float *rstd, const float *x, int64_t N, int64_t C)
{
    clv_layernorm_forward(y, mean, rstd, x, n->w->data, n->b->data, N, C, n->eps);
}

void clv_norm_forward_bf16(const clv_norm *n, float *y, clv_bf16 *yh, float *mean, float *rstd, const float *x,
                           int64_t N, int64_t C)
{
    clv_layernorm_forward_bf16(y, yh, mean, rstd, x, n->w->data, n->b->data, N, C, n->eps);
}

void clv_norm_backward(clv_norm *n, float *dx, const float *dy, const float *x, const float *mean, const float *rstd,
                       int64_t N, int64_t C)
{
    clv_layernorm_backward(dx, n->w->trainable ? n->w->grad : NULL, n->b->trainable ? n->b->grad : NULL, dy, x,
                           n->w->data, mean, rstd, N, C);
}

void clv_norm_backward_into(clv_norm *n, float *dx, const float *dy, const float *x, const float *mean,
                            const float *rstd, int64_t N, int64_t C)
{
    if (dx)
        memset(dx, 0, (size_t)(N * C) * sizeof(float));
    clv_norm_backward(n, dx, dy, x, mean, rstd, N, C);
}
