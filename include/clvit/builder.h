/* Builders that register a backbone's layers under timm's names.
 *
 * A backbone is built in timm's state_dict order: each builder call appends
 * the parameters of one module ("<scope>.<name>.weight", ".bias") with the
 * init timm gives them, and a weight layer also joins the model's list of
 * adaptable layers (m->wlayers, in forward order). Scopes nest, so a model
 * spells only its own module names:
 *
 *   clv_builder b;
 *   clv_builder_init(&b, m, err);
 *   size_t at = clv_builder_push(&b, "blocks.%d", i);   // scope "blocks.3"
 *   clv_build_linear(&b, &qkv, "attn.qkv", 3 * D, D, 1); // blocks.3.attn.qkv.{weight,bias}
 *   clv_builder_pop(&b, at);
 *
 * Every call returns 0, or -1 with the builder's err naming the parameter. */
#ifndef CLVIT_BUILDER_H
#define CLVIT_BUILDER_H

#include "clvit/model.h"
#include "clvit/norm.h"

#ifdef __cplusplus
extern "C" {
#endif


typedef struct clv_builder {
    clv_model *m;
    clv_err *err;
    size_t wlayers_cap;
    char scope[CLV_NAME_LEN]; /* "" or "a.b", without a trailing dot */
    int failed;               /* a scope did not fit: every later call fails */
} clv_builder;

/* A model named `name` (checked: it must fit clv_model_info's name) of the
 * family's ops, in training mode, with no parameters yet and a zeroed
 * implementation of impl_size bytes at m->impl; NULL with err set. */
clv_model *clv_build_model(const char *family, const char *name, const clv_model_ops *ops, size_t impl_size,
                           clv_err *err);
/* Frees a model being built (m->ops->free; m may be NULL) and returns NULL. */
clv_model *clv_build_abandon(clv_model *m);
/* Frees what clv_build_model made: the implementation's block, the
 * parameters, the weight-layer list and the model (after the family freed
 * what its implementation points to). */
void clv_build_model_free(clv_model *m);
/* The parameter count as "5.4M" or "207K", for a summary line. */
const char *clv_build_count_str(const clv_model *m, char *buf, size_t len);

void clv_builder_init(clv_builder *b, clv_model *m, clv_err *err);
/* Appends ".<printf(fmt, ...)>" to the scope; returns what clv_builder_pop restores. */
size_t clv_builder_push(clv_builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void clv_builder_pop(clv_builder *b, size_t at);

/* "<scope>.<name>" with the given shape (ndim of d0..d3), init and decay. */
clv_param *clv_build_param(clv_builder *b, const char *name, clv_init_kind init, float scale, int no_decay, int ndim,
                           int64_t d0, int64_t d1, int64_t d2, int64_t d3);
/* timm's Linear: weight [out x in] truncated normal (std 0.02), bias (when
 * has_bias) zero; an adaptable weight layer named "<scope>.<name>". */
int clv_build_linear(clv_builder *b, clv_wlayer *l, const char *name, int64_t out, int64_t in, int has_bias);
/* A conv with kernel = stride = P as the weight layer out x (cin P P), its
 * weight [out x cin x P x P] and bias with PyTorch's default init
 * (uniform +-1/sqrt(fan_in); timm leaves patch projections to it). */
int clv_build_patch_proj(clv_builder *b, clv_wlayer *l, const char *name, int64_t out, int64_t cin, int64_t P);
/* A bias-free k x k conv as the weight layer out x (cin k k), its weight
 * [out x cin x k x k] with torchvision's ResNet init (kaiming normal,
 * fan_out, relu: std sqrt(2 / (out k k))). */
int clv_build_conv(clv_builder *b, clv_wlayer *l, const char *name, int64_t out, int64_t cin, int64_t k);
/* BatchNorm2d(C, eps): weight one, bias zero, running_mean zero and
 * running_var one as buffers; all four norm parameters without decay. */
int clv_build_batchnorm(clv_builder *b, clv_batchnorm *n, const char *name, int64_t C, float eps);
/* LayerNorm(C, eps): weight one, bias zero, both norm parameters without decay. */
int clv_build_norm(clv_builder *b, clv_norm *n, const char *name, int64_t C, float eps);
/* Every parameter from the init kind it was registered with, drawn from
 * (seed, CLV_STREAM_INIT); adapters re-form their weights: a model's init. */
void clv_build_initialize(clv_model *m, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
