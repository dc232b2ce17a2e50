/* Patch embedding: a conv with kernel = stride = P, as clv_patchify then a
 * weight layer of D x (Cin P P) (clv_build_patch_proj), forward and backward.
 * img [B x Cin x S x S] (NCHW) -> y [B (S/P)^2 x D], rows (b, py, px). */
#ifndef CLVIT_PATCH_EMBED_H
#define CLVIT_PATCH_EMBED_H

#include "clvit/adapter.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_patch_embed {
    clv_wlayer proj;
    int64_t cin, P, img; /* input channels, patch size, image side */
} clv_patch_embed;

/* patches [B (S/P)^2 x Cin P P] is kept for the backward. */
int clv_patch_embed_forward(clv_patch_embed *pe, float *y, float *patches, const float *img, int64_t B,
                            clv_wl_mode mode, clv_err *err);
/* dy [B (S/P)^2 x D]; dimg (may be NULL) += the image's gradient, through
 * dpatches (scratch of the patches' size, needed only with dimg). */
int clv_patch_embed_backward(clv_patch_embed *pe, float *dimg, float *dpatches, const float *dy, const float *patches,
                             int64_t B, clv_arena *scratch, clv_err *err);

#ifdef __cplusplus
}
#endif
#endif
