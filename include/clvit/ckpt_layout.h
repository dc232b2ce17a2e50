/* Checkpoint layouts: which naming of which family a weights file uses,
 * recognised from its tensor names, and the renaming between a file's
 * layout and a model's own.
 *
 * Layouts known (timm = huggingface/pytorch-image-models):
 *   vit        timm's VisionTransformer (the same names in 0.6 and >= 0.9):
 *              cls_token, pos_embed, patch_embed.proj, blocks.i.*, norm, head
 *   swin-0.6   timm <= 0.8.13 (and Microsoft's original checkpoints): patch
 *              merging at the END of stages 0..S-2 (layers.i.downsample),
 *              head.weight; buffers relative_position_index and attn_mask
 *              saved (derived, skipped)
 *   swin-0.9   timm >= 0.8.17.dev0 (every swin_* on the hub since 0.9):
 *              patch merging at the START of stages 1..S-1
 *              (layers.i.downsample = 0.6's layers.i-1.downsample), head.fc;
 *              the buffers saved up to 0.9.2, not from 0.9.5 on. The merge's
 *              2x2 concatenation order (x0, x1, x2, x3) did not change.
 *   resnet     torchvision's ResNet and timm's (the same names): conv1, bn1,
 *              layerL.I.*, fc; num_batches_tracked skipped
 * Variants of these families that clvit's models do not compute (ViT with
 * fc_norm/average pooling, layer scale, register tokens, ...; Swin V2;
 * deep-stem or bottleneck ResNets) are recognised and refused by name.
 *
 * The head (a classifier of any class count) is found under the layout's
 * name: a weights file's head serves `clvit predict`; a --weights base's is
 * dropped (every task trains its own). */
#ifndef CLVIT_CKPT_LAYOUT_H
#define CLVIT_CKPT_LAYOUT_H

#include "clvit/model.h"
#include "clvit/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CLV_LAYOUT_UNKNOWN = 0,
    CLV_LAYOUT_VIT,
    CLV_LAYOUT_SWIN_06,
    CLV_LAYOUT_SWIN_09,
    CLV_LAYOUT_RESNET
} clv_layout_kind;

typedef struct clv_ckpt_layout {
    clv_layout_kind kind;
    char family[16];         /* "vit", "swin", "resnet" or "" */
    int swin_stages;         /* swin: stages in the file (layers.0 .. layers.S-1) */
    char head_weight[32];    /* the classifier's tensors in the file, "" when it has none */
    char head_bias[32];
    int64_t head_classes, head_in; /* head_weight's shape */
    int n_buffers;           /* derived buffers the loader skips */
    char unsupported[240];   /* non-empty: a variant clvit cannot compute, and why */
} clv_ckpt_layout;

/* The layout of a file, from its names alone (never fails: unknown is a kind). */
void clv_ckpt_layout_of_file(const clv_safetensors *st, clv_ckpt_layout *l);
/* The layout of a model's own parameter names (clvit's models use timm's). */
void clv_ckpt_layout_of_model(const clv_model *m, clv_ckpt_layout *l);
/* A short name ("timm >= 0.9 Swin") and one line describing it for `clvit inspect`. */
const char *clv_ckpt_layout_name(const clv_ckpt_layout *l);
void clv_ckpt_layout_describe(const clv_ckpt_layout *l, char *buf, size_t len);

/* The name in a file of layout `file` of the tensor a model of layout
 * `model` calls `param`; written into buf and returned. */
const char *clv_ckpt_layout_rename(const clv_ckpt_layout *file, const clv_ckpt_layout *model, const char *param,
                                   char *buf, size_t len);

/* Loads m's parameters from st, renaming from the file's layout to m's.
 * A file of another family, or of a variant clvit cannot compute, is an
 * error saying so; tensors the model does not have (the head, buffers,
 * a strategy's own tensors) are left alone. file may be NULL (detected). */
int clv_ckpt_layout_load(const clv_safetensors *st, const clv_ckpt_layout *file, clv_model *m, clv_err *err);
/* Loads the file's classifier into h (initialized here with the file's
 * class count and h's feat_dim = feat_dim); an error when it has none. */
int clv_ckpt_layout_load_head(const clv_safetensors *st, const clv_ckpt_layout *file, int feat_dim, clv_head *h,
                              clv_err *err);

#ifdef __cplusplus
}
#endif
#endif
