/* Parameters: named float tensors with a gradient and optimizer state.
 *
 * A model registers every parameter in one clv_params list; the optimizer,
 * the checkpoint writer and the MPI allreduce all walk that list. Data is
 * stored in PyTorch's layout (row-major, weight of a Linear is out x in, of a
 * conv Cout x Cin x kh x kw) under timm's names. */
#ifndef CLVIT_PARAM_H
#define CLVIT_PARAM_H

#include "clvit/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CLV_NAME_LEN 96
#define CLV_MAX_DIMS 4

/* How a model initializes a parameter (clv_params_initialize); scale is
 * the standard deviation of the normals, the bound of the uniform. */
typedef enum {
    CLV_INIT_ZERO = 0,
    CLV_INIT_ONE,
    CLV_INIT_TRUNC_NORMAL, /* N(0, scale^2) clipped to +-2 scale, as timm's trunc_normal_ */
    CLV_INIT_NORMAL,       /* scale N(0, 1) */
    CLV_INIT_UNIFORM       /* U(-scale, scale): scale (2 u - 1) */
} clv_init_kind;

typedef struct clv_param {
    char name[CLV_NAME_LEN];
    int ndim;
    int64_t shape[CLV_MAX_DIMS];
    int64_t numel;
    float *data;      /* owned by the list */
    float *grad;      /* allocated when trainable; the owner zeroes it each step */
    float *opt_m;     /* optimizer state (momentum / Adam first moment), lazily allocated */
    float *opt_v;     /* Adam second moment, lazily allocated */
    int trainable;    /* receives gradients and optimizer steps */
    int no_decay;     /* excluded from weight decay (biases, norms, embeddings) */
    float lr_scale;   /* multiplies the learning rate (1 by default) */
    int buffer;       /* saved and loaded but never trained (batch-norm running statistics) */
    int norm;         /* belongs to a normalization layer (affine or running statistics): --task-norms */
    int mask_score;   /* a score whose side of the threshold is a mask bit (piggyback, maskrkr): the
                         trainer checks that the schedule lets it cross (mask_budget_short) */
    clv_init_kind init; /* set by the model that registers it */
    float init_scale;
} clv_param;

typedef struct clv_params {
    clv_param **items;
    int count;
    size_t cap;
} clv_params;

void clv_params_init(clv_params *ps);
/* Frees every parameter and its buffers. */
void clv_params_free(clv_params *ps);
/* Allocates a zeroed parameter and appends it. shape has ndim entries.
 * Returns NULL on allocation failure (err set). */
clv_param *clv_params_add(clv_params *ps, const char *name, int ndim, const int64_t *shape, clv_err *err);
/* clv_params_add with the shape given inline (ndim of d0..d3), how the
 * model initializes it and whether weight decay skips it. */
clv_param *clv_params_add_init(clv_params *ps, const char *name, clv_init_kind init, float init_scale, int no_decay,
                               int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, clv_err *err);
/* Appends p to a list that does not own it (a view: free it with
 * clv_params_free_view). */
int clv_params_append(clv_params *ps, clv_param *p, clv_err *err);
void clv_params_free_view(clv_params *ps);
/* Sets every parameter of ps from its init kind: element j of parameter k
 * from the draws of clv_rng_key(seed, CLV_STREAM_INIT, k, 0). */
void clv_params_initialize(clv_params *ps, uint64_t seed);
clv_param *clv_params_find(const clv_params *ps, const char *name);
/* Marks a parameter (not) trainable, allocating or keeping its grad buffer;
 * buffers stay untrainable. */
int clv_param_set_trainable(clv_param *p, int trainable, clv_err *err);
void clv_params_zero_grad(clv_params *ps);
int64_t clv_params_count(const clv_params *ps, int trainable_only);
/* The first parameter of ps holding a NaN or an infinity (its index of the
 * first such value in *at), or NULL when all are finite. A step can leave
 * weights non-finite although the loss it measured was finite. */
const clv_param *clv_params_first_nonfinite(const clv_params *ps, int64_t *at);
/* "[192, 3, 4, 4]" into buf */
const char *clv_param_shape_str(const clv_param *p, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
