/* Backbones behind one interface, and the registry of named configurations.
 *
 * A backbone maps images to features: x [B x C x H x W] (NCHW, normalized)
 * -> feats [B x feat_dim] (for ViT: the final-normed cls token). Task heads
 * are separate (clv_head, one per task), so the backbone is shared by every
 * task and a method adapts it only through its weight layers' adapter slots.
 *
 * Parameters use timm's names, so a timm checkpoint of the same shape loads
 * as it is. Activations for one step live in buffers owned by the model,
 * sized for the largest batch seen; forward saves what backward needs. */
#ifndef CLVIT_MODEL_H
#define CLVIT_MODEL_H

#include "clvit/adapter.h"
#include "clvit/param.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_model clv_model;

typedef struct clv_model_ops {
    /* Initializes every parameter as timm does, from (seed, CLV_STREAM_INIT). */
    void (*init)(clv_model *m, uint64_t seed);
    int (*forward)(clv_model *m, const float *x, int64_t B, float *feats, clv_err *err);
    /* dfeats [B x feat_dim] of the last forward; accumulates into trainable
     * parameters' grads; dx (may be NULL) += gradient of the input. At most
     * one backward per training forward: a backward may consume what the
     * forward saved (as PyTorch's does without retain_graph), and a second
     * one is then refused with an error. */
    int (*backward)(clv_model *m, const float *dfeats, float *dx, clv_err *err);
    void (*free)(clv_model *m);
} clv_model_ops;

typedef struct clv_model_info {
    char name[64];      /* registry name, e.g. "vit_tiny_patch4_32" */
    char family[16];    /* "vit" */
    int img_size;       /* input is in_chans x img_size x img_size */
    int in_chans;
    int feat_dim;       /* width of the features handed to the heads */
    double flops_per_image; /* forward FLOPs of the backbone (2 per multiply-add) */
    char summary[160];  /* one line for `clvit info` */
} clv_model_info;

struct clv_model {
    const clv_model_ops *ops;
    clv_model_info info;
    clv_params params;     /* backbone parameters, timm names */
    clv_wlayer **wlayers;  /* adaptable weight layers, in forward order */
    int n_wlayers;
    /* 1 (the default): forward saves what backward needs and batch norms
     * whose parameters are trainable use batch statistics; 0: inference
     * (no backward may follow; norms use their running statistics). */
    int training;
    clv_compute *compute; /* set by clv_model_set_precision (NULL: fp32); freed by clv_model_free */
    /* 0 (the default): a ResNet's fp32 3x3 stride-1 convolutions run oneDNN's Winograd primitives
     * where it has them; 1: direct ones only (the setting train.conv_algorithm) */
    int conv_direct;
    void *impl;
};

/* Registry. */
int clv_model_registry_count(void);
const char *clv_model_registry_name(int i);
/* One line describing entry i (shape, parameter count) without building it. */
const char *clv_model_registry_summary(int i);
/* Creates a backbone by registry name, parameters zeroed (call ops->init). */
clv_model *clv_model_create(const char *name, clv_err *err);
void clv_model_free(clv_model *m);
/* The precision of every weight layer's GEMMs (see clvit/precision.h); fp32
 * until called. emulate: bf16 through the converting path, never oneDNN's
 * bf16 matmul (tests). -1 (err set) only when out of memory. */
int clv_model_set_precision(clv_model *m, clv_precision p, int emulate, clv_err *err);

/* ---- ViT with explicit configuration (the registry entries use this) ---- */
typedef struct clv_vit_config {
    int img_size, patch_size, in_chans, embed_dim, depth, num_heads;
    int mlp_hidden; /* embed_dim * mlp_ratio */
    float ln_eps;   /* 1e-6 as in timm */
} clv_vit_config;
clv_model *clv_vit_create(const char *name, const clv_vit_config *cfg, clv_err *err);

/* ---- ResNet with BasicBlocks (torchvision/timm names: conv1, bn1, layerL.I.conv1,
 * layerL.I.downsample.0/1, ...; `fc` is the task head, outside the backbone) ---- */
typedef struct clv_resnet_config {
    int img_size, in_chans;
    int stem_kernel; /* 7: 7x7 stride 2 + 3x3 max-pool stride 2 (ImageNet); 3: 3x3 stride 1, no pool (CIFAR) */
    int widths[4];   /* channels of layer1..layer4 */
    int blocks[4];   /* BasicBlocks per layer */
    float bn_eps;    /* 1e-5 as in PyTorch */
} clv_resnet_config;
clv_model *clv_resnet_create(const char *name, const clv_resnet_config *cfg, clv_err *err);

/* ---- Swin Transformer (timm 0.6 names: patch_embed.*, layers.i.blocks.j.*,
 * layers.i.downsample.* at the end of every stage but the last, norm) ---- */
#define CLV_SWIN_MAX_STAGES 4
typedef struct clv_swin_config {
    int img_size, patch_size, in_chans, embed_dim;
    int window;                       /* window size (shrinks to the grid when the grid is smaller) */
    int n_stages;
    int depths[CLV_SWIN_MAX_STAGES];  /* blocks per stage */
    int heads[CLV_SWIN_MAX_STAGES];   /* attention heads per stage; dims double at each merge */
} clv_swin_config;
clv_model *clv_swin_create(const char *name, const clv_swin_config *cfg, clv_err *err);

/* ---- Task head: Linear(feat_dim -> classes), timm names head.weight / head.bias ---- */
typedef struct clv_head {
    clv_params params; /* "head.weight" [classes x feat_dim], "head.bias" [classes] */
    int classes, feat_dim;
} clv_head;
int clv_head_init(clv_head *h, int feat_dim, int classes, uint64_t seed, int task, clv_err *err);
void clv_head_free(clv_head *h);
void clv_head_forward(const clv_head *h, float *logits, const float *feats, int64_t B);
/* dfeats += dlogits W; head grads accumulated when trainable */
void clv_head_backward(clv_head *h, float *dfeats, const float *dlogits, const float *feats, int64_t B);

#ifdef __cplusplus
}
#endif
#endif
