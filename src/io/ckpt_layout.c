/* Checkpoint layouts, recognised from tensor names (see clvit/ckpt_layout.h).
 * Detection reads names only, so it applies to a file and to a model's own
 * parameter list alike; the one renaming in use (Swin's patch merging moved
 * from the end of stage i to the start of stage i+1) is index arithmetic. */
#include "clvit/ckpt_layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct names {
    const void *src;
    int count;
    const char *(*at)(const void *src, int i);
    const int64_t *(*shape)(const void *src, int i, int *ndim);
} names;

static const char *file_name_at(const void *src, int i) { return ((const clv_safetensors *)src)->tensors[i].name; }
static const int64_t *file_shape_at(const void *src, int i, int *ndim)
{
    const clv_st_tensor *t = &((const clv_safetensors *)src)->tensors[i];
    *ndim = t->ndim;
    return t->shape;
}
static const char *model_name_at(const void *src, int i) { return ((const clv_params *)src)->items[i]->name; }
static const int64_t *model_shape_at(const void *src, int i, int *ndim)
{
    const clv_param *p = ((const clv_params *)src)->items[i];
    *ndim = p->ndim;
    return p->shape;
}

static int find(const names *n, const char *name)
{
    for (int i = 0; i < n->count; i++)
        if (!strcmp(n->at(n->src, i), name))
            return i;
    return -1;
}

static int has(const names *n, const char *name) { return find(n, name) >= 0; }

/* any name containing part */
static const char *any_with(const names *n, const char *part)
{
    for (int i = 0; i < n->count; i++)
        if (strstr(n->at(n->src, i), part))
            return n->at(n->src, i);
    return NULL;
}

static int ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

static void set_head(const names *n, clv_ckpt_layout *l, const char *w, const char *b)
{
    int i = find(n, w), nd = 0;
    if (i < 0)
        return;
    const int64_t *shape = n->shape(n->src, i, &nd);
    if (nd != 2)
        return;
    snprintf(l->head_weight, sizeof l->head_weight, "%s", w);
    snprintf(l->head_bias, sizeof l->head_bias, "%s", b);
    l->head_classes = shape[0];
    l->head_in = shape[1];
}

static void refuse(clv_ckpt_layout *l, const char *fmt, const char *what)
{
    if (!l->unsupported[0])
        snprintf(l->unsupported, sizeof l->unsupported, fmt, what);
}

static void detect_vit(const names *n, clv_ckpt_layout *l)
{
    l->kind = CLV_LAYOUT_VIT;
    snprintf(l->family, sizeof l->family, "vit");
    set_head(n, l, "head.weight", "head.bias");
    const char *w;
    if (has(n, "fc_norm.weight") && !has(n, "norm.weight"))
        refuse(l, "%s: a norm after pooling (timm's global_pool='avg' ViTs, e.g. MAE fine-tunes), which clvit's "
                  "class-token ViT does not compute", "fc_norm");
    if (!has(n, "cls_token"))
        refuse(l, "no %s (class_token=False, average-pooled): clvit's ViT classifies the class token", "cls_token");
    if ((w = any_with(n, ".ls1.")))
        refuse(l, "%s: layer scale (DeiT III, CaiT-style init_values), not in clvit's ViT", w);
    if ((w = any_with(n, "reg_token")) || (w = any_with(n, "dist_token")) || (w = any_with(n, "head_dist")))
        refuse(l, "%s: extra tokens (registers or DeiT distillation), not in clvit's ViT", w);
    if ((w = any_with(n, "attn_pool.")) || (w = any_with(n, "pre_logits.")) || (w = any_with(n, "norm_pre.")))
        refuse(l, "%s: a layer clvit's ViT does not have (attention pooling, pre-logits or pre-norm)", w);
    if ((w = any_with(n, ".q_norm.")))
        refuse(l, "%s: query/key norms, not in clvit's ViT", w);
}

/* stage index i of "layers.<i>.<rest>", -1 otherwise; *rest set */
static int stage_of(const char *name, const char **rest)
{
    if (strncmp(name, "layers.", 7))
        return -1;
    char *end;
    long i = strtol(name + 7, &end, 10);
    if (end == name + 7 || *end != '.' || i < 0 || i > 64)
        return -1;
    *rest = end + 1;
    return (int)i;
}

static void detect_swin(const names *n, clv_ckpt_layout *l)
{
    snprintf(l->family, sizeof l->family, "swin");
    int stages = 0;
    unsigned merges = 0; /* bit i: layers.i.downsample present */
    for (int i = 0; i < n->count; i++) {
        const char *rest, *name = n->at(n->src, i);
        int s = stage_of(name, &rest);
        if (s < 0)
            continue;
        stages = s + 1 > stages ? s + 1 : stages;
        if (!strncmp(rest, "downsample.", 11) && s < 32)
            merges |= 1u << s;
        if (ends_with(name, "relative_position_index") || ends_with(name, "attn_mask"))
            l->n_buffers++;
    }
    l->swin_stages = stages;
    int old_head = has(n, "head.weight"), new_head = has(n, "head.fc.weight");
    int old_merge = merges & 1u, new_merge = stages > 1 && (merges & (1u << (stages - 1)));
    int is_old = old_head || old_merge, is_new = new_head || new_merge;
    l->kind = is_old && !is_new ? CLV_LAYOUT_SWIN_06 : CLV_LAYOUT_SWIN_09;
    if (is_old && is_new)
        refuse(l, "%s", "mixes timm 0.6's names (layers.0.downsample or head.weight) with timm 0.9's "
                        "(downsample in the last stage or head.fc.weight)");
    if (l->kind == CLV_LAYOUT_SWIN_06)
        set_head(n, l, "head.weight", "head.bias");
    else
        set_head(n, l, "head.fc.weight", "head.fc.bias");
    const char *w;
    if ((w = any_with(n, "logit_scale")) || (w = any_with(n, "cpb_mlp")))
        refuse(l, "%s: Swin V2 (swinv2_*), which clvit does not compute", w);
    if ((w = any_with(n, "absolute_pos_embed")))
        refuse(l, "%s: an absolute position embedding (ape=True), not in clvit's Swin", w);
}

static void detect_resnet(const names *n, clv_ckpt_layout *l)
{
    l->kind = CLV_LAYOUT_RESNET;
    snprintf(l->family, sizeof l->family, "resnet");
    set_head(n, l, "fc.weight", "fc.bias");
    for (int i = 0; i < n->count; i++)
        if (ends_with(n->at(n->src, i), "num_batches_tracked"))
            l->n_buffers++;
    const char *w;
    if ((w = any_with(n, "conv1.0.weight")) && !strncmp(w, "conv1.", 6))
        refuse(l, "%s: a deep stem (timm's resnet*d/c), clvit's ResNet has one stem conv", w);
    if ((w = any_with(n, ".conv3.")))
        refuse(l, "%s: bottleneck blocks (resnet50 and larger); clvit's ResNet has BasicBlocks", w);
}

static void detect(const names *n, clv_ckpt_layout *l)
{
    memset(l, 0, sizeof *l);
    const char *w = NULL;
    for (int i = 0; i < n->count && !w; i++) {
        const char *name = n->at(n->src, i), *rest;
        if (stage_of(name, &rest) >= 0 && !strncmp(rest, "blocks.", 7))
            w = "swin";
        else if (!strncmp(name, "blocks.", 7) || !strcmp(name, "cls_token") || !strcmp(name, "pos_embed"))
            w = "vit";
        else if (!strncmp(name, "layer1.", 7))
            w = "resnet";
    }
    if (!w) {
        if ((w = any_with(n, "vit.embeddings")) || (w = any_with(n, "swin.embeddings")))
            refuse(l, "%s: Hugging Face transformers' names; convert to timm's first", w);
        return;
    }
    if (!strcmp(w, "swin"))
        detect_swin(n, l);
    else if (!strcmp(w, "vit"))
        detect_vit(n, l);
    else
        detect_resnet(n, l);
}

void clv_ckpt_layout_of_file(const clv_safetensors *st, clv_ckpt_layout *l)
{
    names n = {st, st->count, file_name_at, file_shape_at};
    detect(&n, l);
}

void clv_ckpt_layout_of_model(const clv_model *m, clv_ckpt_layout *l)
{
    names n = {&m->params, m->params.count, model_name_at, model_shape_at};
    detect(&n, l);
}

const char *clv_ckpt_layout_name(const clv_ckpt_layout *l)
{
    switch (l->kind) {
    case CLV_LAYOUT_VIT: return "timm ViT";
    case CLV_LAYOUT_SWIN_06: return "timm 0.6 Swin";
    case CLV_LAYOUT_SWIN_09: return "timm >= 0.9 Swin";
    case CLV_LAYOUT_RESNET: return "torchvision/timm ResNet";
    default: return "unknown";
    }
}

void clv_ckpt_layout_describe(const clv_ckpt_layout *l, char *buf, size_t len)
{
    const char *what = "";
    switch (l->kind) {
    case CLV_LAYOUT_VIT: what = "cls_token, pos_embed, blocks.i, norm"; break;
    case CLV_LAYOUT_SWIN_06: what = "patch merging at the end of stages 0..S-2, layers.i.downsample"; break;
    case CLV_LAYOUT_SWIN_09: what = "patch merging at the start of stages 1..S-1, layers.i.downsample"; break;
    case CLV_LAYOUT_RESNET: what = "conv1, bn1, layer1-4, BasicBlocks"; break;
    default: what = "no known backbone names"; break;
    }
    size_t used = (size_t)snprintf(buf, len, "%s (%s", clv_ckpt_layout_name(l), what);
    if (l->swin_stages && used < len)
        used += (size_t)snprintf(buf + used, len - used, "; %d stages", l->swin_stages);
    if (l->head_weight[0] && used < len)
        used += (size_t)snprintf(buf + used, len - used, "; head %s: %lld classes from %lld features",
                                 l->head_weight, (long long)l->head_classes, (long long)l->head_in);
    else if (l->kind != CLV_LAYOUT_UNKNOWN && used < len)
        used += (size_t)snprintf(buf + used, len - used, "; no classifier head");
    if (l->n_buffers && used < len)
        used += (size_t)snprintf(buf + used, len - used, "; %d derived buffers, skipped", l->n_buffers);
    if (used < len)
        used += (size_t)snprintf(buf + used, len - used, ")");
    if (l->unsupported[0] && used < len)
        snprintf(buf + used, len - used, "; NOT loadable: %s", l->unsupported);
}

const char *clv_ckpt_layout_rename(const clv_ckpt_layout *file, const clv_ckpt_layout *model, const char *param,
                                   char *buf, size_t len)
{
    const char *rest;
    int s = stage_of(param, &rest);
    int shift = 0; /* 0.6's layers.i.downsample is 0.9's layers.i+1.downsample */
    if (file->kind == CLV_LAYOUT_SWIN_09 && model->kind == CLV_LAYOUT_SWIN_06)
        shift = 1;
    else if (file->kind == CLV_LAYOUT_SWIN_06 && model->kind == CLV_LAYOUT_SWIN_09)
        shift = -1;
    if (shift && s >= 0 && !strncmp(rest, "downsample.", 11))
        snprintf(buf, len, "layers.%d.%s", s + shift, rest);
    else
        snprintf(buf, len, "%s", param);
    return buf;
}

typedef struct rename_ctx {
    const clv_ckpt_layout *file, *model;
} rename_ctx;

static const char *rename_map(void *ctx, const char *param, char *buf, size_t len)
{
    const rename_ctx *r = ctx;
    return clv_ckpt_layout_rename(r->file, r->model, param, buf, len);
}

int clv_ckpt_layout_load(const clv_safetensors *st, const clv_ckpt_layout *file, clv_model *m, clv_err *err)
{
    clv_ckpt_layout own, found;
    if (!file) {
        clv_ckpt_layout_of_file(st, &found);
        file = &found;
    }
    clv_ckpt_layout_of_model(m, &own);
    if (file->unsupported[0])
        return clv_errf(err, "%s (%s layout): %s", st->path, clv_ckpt_layout_name(file), file->unsupported);
    if (file->kind != CLV_LAYOUT_UNKNOWN && own.kind != CLV_LAYOUT_UNKNOWN && strcmp(file->family, own.family))
        return clv_errf(err, "%s holds a %s (%s layout), but %s is a %s", st->path, file->family,
                        clv_ckpt_layout_name(file), m->info.name, own.family);
    rename_ctx r = {file, &own};
    return clv_st_load_params_mapped(st, &m->params, rename_map, &r, NULL, 0, err);
}

static const char *head_map(void *ctx, const char *param, char *buf, size_t len)
{
    const clv_ckpt_layout *l = ctx;
    snprintf(buf, len, "%s", ends_with(param, ".bias") ? l->head_bias : l->head_weight);
    return buf;
}

int clv_ckpt_layout_load_head(const clv_safetensors *st, const clv_ckpt_layout *file, int feat_dim, clv_head *h,
                              clv_err *err)
{
    clv_ckpt_layout found;
    if (!file) {
        clv_ckpt_layout_of_file(st, &found);
        file = &found;
    }
    if (!file->head_weight[0] || file->head_in != feat_dim || file->head_classes < 1 ||
        file->head_classes > 1000000)
        return clv_errf(err,
                        "%s: no classifier of shape [classes, %d] (head.weight, head.fc.weight or fc.weight; "
                        "%s layout): a classifier needs its head",
                        st->path, feat_dim, clv_ckpt_layout_name(file));
    if (clv_head_init(h, feat_dim, (int)file->head_classes, 0, 0, err))
        return -1;
    return clv_st_load_params_mapped(st, &h->params, head_map, (void *)file, NULL, 0, err);
}
