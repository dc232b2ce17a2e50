/* Patch embedding (see clvit/patch_embed.h). */
#include "clvit/patch_embed.h"
#include "clvit/kernels.h"

#include <string.h>

int clv_patch_embed_forward(clv_patch_embed *pe, float *y, float *patches, const float *img, int64_t B,
                            clv_wl_mode mode, clv_err *err)
{
    const int64_t np = (pe->img / pe->P) * (pe->img / pe->P);
    clv_patchify(patches, img, B, pe->cin, pe->img, pe->img, pe->P);
    return clv_wlayer_forward(&pe->proj, y, patches, B * np, mode, err);
}

int clv_patch_embed_backward(clv_patch_embed *pe, float *dimg, float *dpatches, const float *dy, const float *patches,
                             int64_t B, clv_arena *scratch, clv_err *err)
{
    const int64_t rows = B * (pe->img / pe->P) * (pe->img / pe->P);
    if (dimg)
        memset(dpatches, 0, (size_t)(rows * pe->proj.in) * sizeof(float));
    if (clv_wlayer_backward(&pe->proj, dimg ? dpatches : NULL, dy, patches, NULL, rows, scratch, err))
        return -1;
    if (dimg)
        clv_patchify_backward(dimg, dpatches, B, pe->cin, pe->img, pe->img, pe->P);
    return 0;
}
