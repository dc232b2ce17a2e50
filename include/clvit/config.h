/* Run configuration: one table of settings, two spellings.
 *
 * Every setting has an INI spelling (section.key, read with inih) and a
 * command-line flag; `--set section.key=value` reaches any of them. The
 * table also produces --help and the "config" object of run.json, and
 * tells which differences forbid resuming a run.
 * Precedence: built-in defaults < --config FILE < flags, in the order given. */
#ifndef CLVIT_CONFIG_H
#define CLVIT_CONFIG_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "clvit/core.h"
#include "clvit/precision.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CLV_PATH_LEN 1024

/* The closed-set settings, parsed once by the table (CLV_SET_CHOICE): the
 * library reads these, never the names; each enum's order is its row's
 * "a|b|c" list, and run.json records the name. */
typedef enum { CLV_CLASS_ORDER_NATURAL, CLV_CLASS_ORDER_SHUFFLED } clv_class_order;
typedef enum { CLV_FIT_PAD, CLV_FIT_RESIZE } clv_fit;
typedef enum { CLV_RKR_INIT_ZERO, CLV_RKR_INIT_RANDOM } clv_rkr_init;
typedef enum { CLV_MASKRKR_FIRST, CLV_MASKRKR_JOINT, CLV_MASKRKR_RANDOM } clv_maskrkr_source;
typedef enum { CLV_ADAPT_PATCH_EMBED, CLV_ADAPT_NO_PATCH_EMBED } clv_adapt_scope;
typedef enum { CLV_CONV_VIEW_OURS, CLV_CONV_VIEW_RKR } clv_conv_view_setting;
typedef enum { CLV_OPTIMIZER_ADAMW, CLV_OPTIMIZER_SGD } clv_optimizer_setting;
typedef enum { CLV_SCHEDULE_COSINE, CLV_SCHEDULE_STEP } clv_schedule_setting;
typedef enum { CLV_CONV_WINOGRAD, CLV_CONV_DIRECT } clv_conv_algorithm_setting;

typedef struct clv_config {
    /* [data] */
    char data[32];            /* fashion-mnist, mnist, cifar10, cifar100, imagefolder, decathlon */
    char data_root[CLV_PATH_LEN];
    int tasks;                /* T: the classes split into T tasks */
    clv_class_order class_order; /* natural | shuffled (by seed) */
    char domains[256];
    int task_norms;           /* rkr, piggyback, maskrkr: each task its own norm layers */        /* decathlon: comma-separated domains, one task each */
    clv_fit fit;              /* pad | resize: how a smaller image reaches the model's size */
    int augment;              /* random crop with padding + flip where it makes sense */
    int crop_padding;
    int64_t train_limit;      /* at most this many training images per task (0: all) */
    int64_t test_limit;       /* at most this many test images per task (0: all) */
    /* [model] */
    char model[64];
    char weights[CLV_PATH_LEN]; /* pretrained base (safetensors); empty: train from scratch */
    /* [method] */
    char method[32];          /* finetune | linear | independent | rkr | piggyback | maskrkr | ewc | lwf */
    int rank;                 /* rkr, maskrkr: rank K of LM RM */
    clv_rkr_init rkr_init;    /* zero (RM = 0: start as the base) | random (RM random too) */
    float mask_init;          /* piggyback, maskrkr: initial score */
    float threshold;          /* mask = score > threshold */
    float lr_mask;            /* learning rate of the scores */
    char mask_on[16];         /* maskrkr: which of lm, rm, f are masked (clv_config_mask_on: flags) */
    clv_maskrkr_source maskrkr_source; /* first (learned on the first adapted task) | joint (with the base) |
                                          random (seed) */
    float lr_adapter;         /* rkr, maskrkr: learning rate of LM, RM, F (0: lr) */
    clv_adapt_scope adapt;    /* patch-embed | no-patch-embed: is the layer reading the image adapted */
    clv_conv_view_setting conv_view; /* ours (Cout x Cin k k) | rkr ((Cin k) x (Cout k), RKR's paper) */
    float ewc_lambda;         /* ewc: weight of the penalty lambda/2 sum F (theta - theta*)^2 */
    float ewc_decay;          /* ewc: F = decay F + F_new after each task */
    float lwf_alpha;          /* lwf: weight of the distillation term */
    float lwf_temperature;    /* lwf: T of softmax(z / T) */
    /* [train] */
    int epochs;
    int batch;
    clv_optimizer_setting optimizer; /* adamw | sgd */
    float lr;                 /* backbone learning rate */
    float lr_head;            /* head learning rate */
    float momentum;           /* sgd */
    float weight_decay;
    float warmup_epochs;
    float min_lr_ratio;       /* cosine floor as a fraction of lr */
    clv_schedule_setting schedule; /* cosine | step: how every learning rate decays over a task */
    int lr_step_epochs;       /* step: the rates are multiplied by lr_step_gamma every this many epochs */
    float lr_step_gamma;      /* step: the factor, in (0, 1] */
    float clip_norm;          /* 0: no clipping */
    float label_smoothing;    /* reserved: must be 0 for now */
    clv_precision precision;  /* fp32 | bf16: the weight layers' GEMM inputs (clvit/precision.h) */
    clv_conv_algorithm_setting conv_algorithm; /* winograd | direct: ResNet's fp32 3x3 stride-1 convolutions */
    /* [run] */
    uint64_t seed;
    int threads;              /* 0: OpenMP's default */
    int eval_batch;
    int checkpoint_every;     /* steps between mid-epoch checkpoints (0: epoch ends only) */
} clv_config;

typedef enum {
    CLV_SET_INT,
    CLV_SET_I64,
    CLV_SET_U64,
    CLV_SET_FLOAT,
    CLV_SET_STR,
    CLV_SET_BOOL,
    CLV_SET_CHOICE /* one of values "a|b|c", held as its index (an enum above); written as its name */
} clv_setting_type;

typedef struct clv_setting {
    const char *section, *key; /* INI spelling: [section] key = value */
    const char *flag;          /* command line: --flag value */
    clv_setting_type type;
    size_t offset, size;       /* where in clv_config */
    const char *defval;
    const char *values;        /* the valid values, or NULL for any: strings, a closed set "a|b|c";
                                  numbers, an interval "[lo, hi]" where '(' or ')' excludes its bound
                                  (clv_config_set and clv_config_validate both enforce it) */
    int resume_may_change;     /* 1: may differ when resuming (threads, eval batch ...) */
    const char *help;
    const char *unrecorded;    /* what a run recorded before this setting existed ran with, when that is
                                  not defval (its run.json lacks the key); NULL: defval */
} clv_setting;

int clv_config_settings_count(void);
const clv_setting *clv_config_setting(int i);
const clv_setting *clv_config_find(const char *section_dot_key);
const clv_setting *clv_config_find_flag(const char *flag);

void clv_config_defaults(clv_config *c);
/* Sets one setting from text, validating type, range and choices. */
int clv_config_set(clv_config *c, const clv_setting *s, const char *value, clv_err *err);
/* "section.key=value" */
int clv_config_set_assignment(clv_config *c, const char *assignment, clv_err *err);
int clv_config_load_ini(clv_config *c, const char *path, clv_err *err);
/* Flags of a mask_on list (1 lm, 2 rm, 4 f), or -1 with err set. */
int clv_config_mask_on(const char *list, clv_err *err);
/* Cross-field checks (tasks >= 1, batch >= 1, known method ...). */
int clv_config_validate(const clv_config *c, clv_err *err);
/* The value as text (for run.json and diffs). */
void clv_config_format(const clv_config *c, const clv_setting *s, char *buf, size_t len);
/* Lists settings that differ (ignoring those that may change on resume)
 * into buf as "train.epochs (3 vs 5), ..."; returns how many differ. */
int clv_config_diff(const clv_config *a, const clv_config *b, char *buf, size_t len);
void clv_config_print_help(FILE *out);

#ifdef __cplusplus
}
#endif
#endif
