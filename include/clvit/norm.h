/* A LayerNorm layer over the last dimension: its affine parameters and the
 * kernels of clvit/kernels.h applied with them. Also the parameters of a
 * BatchNorm2d (clv_batchnorm), whose kernels are in clvit/kernels_cnn.h. */
#ifndef CLVIT_NORM_H
#define CLVIT_NORM_H

#include "clvit/param.h"
#include "clvit/precision.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_norm {
    clv_param *w, *b;
    float eps;
} clv_norm;

/* BatchNorm2d(C, eps): the affine weight and bias, and the running
 * statistics as registered buffers (saved and loaded with the weights under
 * PyTorch's names, never trained). */
typedef struct clv_batchnorm {
    clv_param *w, *b, *running_mean, *running_var;
    float eps;
} clv_batchnorm;

static inline int clv_norm_trains(const clv_norm *n) { return n->w->trainable || n->b->trainable; }
/* y [N x C] = LayerNorm(x); mean and rstd [N] saved. */
void clv_norm_forward(const clv_norm *n, float *y, float *mean, float *rstd, const float *x, int64_t N, int64_t C);
/* The same, with y's bf16 copy yh written in the same pass (y or yh may be NULL). */
void clv_norm_forward_bf16(const clv_norm *n, float *y, clv_bf16 *yh, float *mean, float *rstd, const float *x,
                           int64_t N, int64_t C);
/* dx (NULL: not needed) += the input gradient; the affine gradients
 * accumulate into the trainable ones. */
void clv_norm_backward(clv_norm *n, float *dx, const float *dy, const float *x, const float *mean, const float *rstd,
                       int64_t N, int64_t C);
/* The same with dx overwritten (=). */
void clv_norm_backward_into(clv_norm *n, float *dx, const float *dy, const float *x, const float *mean,
                            const float *rstd, int64_t N, int64_t C);

#ifdef __cplusplus
}
#endif
#endif
