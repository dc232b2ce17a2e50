/* Convolutional-network kernels, forward and backward, same conventions as
 * clvit/kernels.h (row-major, backward ACCUMULATES, NULL gradient = not
 * needed, results independent of the thread count).
 *
 * Activations are NHWC: a batch of B images of H x W pixels with C channels
 * is the [B*H*W x C] matrix whose rows are pixels. A convolution is then
 * im2col + the weight layer's GEMM (clv_wlayer_forward), with the weight in
 * PyTorch's layout [Cout x Cin x k x k] viewed as the matrix Cout x (Cin k k):
 * im2col's columns are ordered (c, ky, kx) to match, so every adapter works
 * on convolutions unchanged. Per-channel operations (batch norm) act on the
 * columns. */
#ifndef CLVIT_KERNELS_CNN_H
#define CLVIT_KERNELS_CNN_H

#include "clvit/precision.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Output size of a convolution or pooling along one axis. */
static inline int64_t clv_conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad)
{
    return (in + 2 * pad - k) / stride + 1;
}

/* ---- layout: images NCHW [B x C x H x W] <-> NHWC rows [B*H*W x C] ---- */
void clv_nchw_to_nhwc(float *y, const float *x, int64_t B, int64_t C, int64_t H, int64_t W);
/* dx (NCHW) += dy (NHWC) transposed back */
void clv_nchw_to_nhwc_backward(float *dx, const float *dy, int64_t B, int64_t C, int64_t H, int64_t W);

/* ---- im2col for a k x k convolution with stride s and zero padding p ----
 * x [B*H*W x C] -> cols [B*Ho*Wo x C*k*k], column c*k*k + ky*k + kx holds
 * x[b, oy*s - p + ky, ox*s - p + kx, c] (0 outside the image). */
void clv_im2col(float *cols, const float *x, int64_t B, int64_t H, int64_t W, int64_t C, int64_t k, int64_t s,
                int64_t p);
/* dx += the scatter of dcols (the adjoint of clv_im2col). */
void clv_col2im(float *dx, const float *dcols, int64_t B, int64_t H, int64_t W, int64_t C, int64_t k, int64_t s,
                int64_t p);

/* ---- batch norm over the columns of x [N x C] ----
 * clv_batchnorm_stats and clv_batchnorm_backward take a caller-owned
 * scratch of clv_batchnorm_scratch_doubles(N, C) doubles. */
int64_t clv_batchnorm_scratch_doubles(int64_t N, int64_t C);
/* Batch statistics: mean and biased variance per channel, accumulated in
 * double over fixed row blocks (the same numbers whatever the threads). */
void clv_batchnorm_stats(float *mean, float *var, const float *x, int64_t N, int64_t C, double *scratch);
/* running = (1 - momentum) running + momentum batch, with the unbiased
 * variance var N / (N - 1), as PyTorch does. */
void clv_batchnorm_update_running(float *run_mean, float *run_var, const float *mean, const float *var, int64_t N,
                                  int64_t C, float momentum);
/* rstd[c] = 1 / sqrt(var[c] + eps) */
void clv_batchnorm_rstd(float *rstd, const float *var, int64_t C, float eps);
/* y = (x - mean) rstd gamma + beta per column, then max(0, .) when relu. */
void clv_batchnorm_apply(float *y, const float *x, const float *mean, const float *rstd, const float *gamma,
                         const float *beta, int64_t N, int64_t C, int relu);
/* clv_batchnorm_apply that also writes y rounded to bf16 into yh (the next
 * convolution's input in bf16) in the same pass: y is bit for bit the same,
 * yh[i] = clv_bf16_from_float(y[i]). */
void clv_batchnorm_apply_bf16(float *y, clv_bf16 *yh, const float *x, const float *mean, const float *rstd,
                              const float *gamma, const float *beta, int64_t N, int64_t C, int relu);
/* y = max(0, y + a) in place, and yh (may be NULL) = y rounded to bf16: a
 * residual block's output and its next convolution's bf16 input in one pass. */
void clv_add_relu(float *y, clv_bf16 *yh, const float *a, int64_t n);
/* Gradients of clv_batchnorm_apply without relu. batch_stats: mean and rstd
 * were computed from this x (training mode), so dx includes their
 * dependence on x; otherwise they are constants (running statistics). */
void clv_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean,
                            const float *rstd, const float *gamma, int64_t N, int64_t C, int batch_stats,
                            double *scratch);
/* clv_batchnorm_backward with dx written, not accumulated: what dx holds
 * after clv_batchnorm_backward into a zeroed dx, without the zeroing pass. */
void clv_batchnorm_backward_into(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                                 const float *mean, const float *rstd, const float *gamma, int64_t N, int64_t C,
                                 int batch_stats, double *scratch);
/* clv_batchnorm_backward into a zeroed dx, written as bf16 instead (the
 * gradient a bf16 convolution reads next): dxh[i] = bf16 of what dx[i]
 * would hold. dgamma and dbeta as there. */
void clv_batchnorm_backward_bf16(clv_bf16 *dxh, float *dgamma, float *dbeta, const float *dy, const float *x,
                                 const float *mean, const float *rstd, const float *gamma, int64_t N, int64_t C,
                                 int batch_stats, double *scratch);

/* ---- ReLU: dy[i] = 0 where y[i] <= 0 (y the ReLU's output), in place ---- */
void clv_relu_mask(float *dy, const float *y, int64_t n);

/* ---- max pooling k x k, stride s, padding p (padding never wins), NHWC ----
 * argmax [B*Ho*Wo x C] saves the winning input row (pixel) index within the
 * batch; ties go to the first in (ky, kx) order, as in PyTorch. */
void clv_maxpool_forward(float *y, int32_t *argmax, const float *x, int64_t B, int64_t H, int64_t W, int64_t C,
                         int64_t k, int64_t s, int64_t p);
void clv_maxpool_backward(float *dx, const float *dy, const int32_t *argmax, int64_t B, int64_t Ho, int64_t Wo,
                          int64_t C);

/* ---- global average pooling: x [B*HW x C] -> y [B x C] ---- */
void clv_avgpool_forward(float *y, const float *x, int64_t B, int64_t HW, int64_t C);
void clv_avgpool_backward(float *dx, const float *dy, int64_t B, int64_t HW, int64_t C);

#ifdef __cplusplus
}
#endif
#endif
