/* Kernels of the Swin Transformer, same conventions as clvit/kernels.h.
 *
 * Token matrices are [rows x C] with one row per token; for an image grid
 * the rows are (b, y, x) in row-major order. Cyclic shifts, window
 * partitions and patch merging are all row gathers by an index computed
 * once per model (clv_swin_*_index), so one gather/scatter pair serves
 * them, forward and backward. */
#ifndef CLVIT_KERNELS_SWIN_H
#define CLVIT_KERNELS_SWIN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- row gathers: y[r] = x[idx[r]], r < R, rows of C floats ---- */
void clv_rows_gather(float *y, const float *x, const int32_t *idx, int64_t R, int64_t C);
/* the backward of a gather whose idx never repeats a row: dx[idx[r]] += dy[r] */
void clv_rows_scatter_add(float *dx, const float *dy, const int32_t *idx, int64_t R, int64_t C);

/* ---- indices (per image; `B` images repeat them with offsets) ----
 * Shifted windows: idx[B nW N] for the window tokens of a B x H x W grid
 * rolled by -shift on both axes (torch.roll(x, (-s, -s), (1, 2))) and cut
 * into ws x ws windows ordered (b, wy, wx), tokens (iy, ix) inside each.
 * The reverse (window_reverse then roll by +s) is the scatter by the same
 * index. H and W must be multiples of ws. */
void clv_swin_window_index(int32_t *idx, int64_t B, int64_t H, int64_t W, int64_t ws, int64_t shift);
/* Patch merging: idx[(B H/2 W/2) 4] so that the gathered [B H/2 W/2 x 4C]
 * rows are timm's cat([x0, x1, x2, x3], -1) with x0 = x[0::2, 0::2],
 * x1 = x[1::2, 0::2], x2 = x[0::2, 1::2], x3 = x[1::2, 1::2]. */
void clv_swin_merge_index(int32_t *idx, int64_t B, int64_t H, int64_t W);
/* relative_position_index [N N] (N = ws ws) of timm's WindowAttention. */
void clv_swin_relative_index(int32_t *idx, int64_t ws);
/* The shifted-window attention mask [nW x N x N]: 0 within a region of the
 * shifted image, -100 across regions (timm's). */
void clv_swin_attention_mask(float *mask, int64_t H, int64_t W, int64_t ws, int64_t shift);

/* ---- windowed attention with an additive bias ----
 * Window w of Bw (image w / nW, its window w % nW of nW per image of
 * L = nW N tokens) holds the rows b L + idx[(w % nW) N + i], i < N, of the
 * token matrices (idx NULL: rows w N + i, windows already contiguous), so
 * the roll and the partition are the index (clv_swin_window_index of one
 * image) and the token matrices stay in image order.
 * qkv [Bw N x 3C] (timm's (3, H, hd) layout, as in clv_attention_forward),
 * scores S = scale q k^T + bias[h] + mask[w % nW] (mask NULL: none),
 * att [Bw x H x N x N] the softmax (NULL: not kept, e.g. in inference),
 * out [Bw N x C] overwritten. scratch holds
 * clv_window_attention_scratch_floats(N, C, H) floats; none of these
 * kernels allocates, and their results do not depend on the thread count. */
int64_t clv_window_attention_scratch_floats(int64_t N, int64_t C, int64_t H);
void clv_window_attention_forward(float *out, float *att, const float *qkv, const float *bias, const float *mask,
                                  const int32_t *idx, int64_t nW, int64_t Bw, int64_t N, int64_t C, int64_t H,
                                  float *scratch);
/* out = att V again, the same floats as the forward's: for a backward that
 * keeps the probabilities rather than the output. */
void clv_window_attention_output(float *out, const float *att, const float *qkv, const int32_t *idx, int64_t nW,
                                 int64_t Bw, int64_t N, int64_t C, int64_t H, float *scratch);
/* dqkv overwritten (every row belongs to one window); dS (may be NULL, or
 * att itself, whose probabilities the backward then consumes) receives the
 * scores' gradient [Bw x H x N x N] (for the bias: clv_window_bias_backward). */
void clv_window_attention_backward(float *dqkv, float *dS, const float *dout, const float *qkv, const float *att,
                                   const int32_t *idx, int64_t nW, int64_t Bw, int64_t N, int64_t C, int64_t H,
                                   float *scratch);
/* bias [H x N x N] = table[idx[i N + j] H + h] (table [(2ws-1)^2 x H]) */
void clv_window_bias_forward(float *bias, const float *table, const int32_t *idx, int64_t N, int64_t H);
/* dtable += the gradient through the gather, from dS summed over the windows;
 * scratch holds H N N doubles (the caller's: the kernel never allocates) */
void clv_window_bias_backward(float *dtable, const float *dS, const int32_t *idx, int64_t Bw, int64_t N, int64_t H,
                              double *scratch);

#ifdef __cplusplus
}
#endif
#endif
