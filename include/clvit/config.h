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

#ifdef __cplusplus
extern "C" {
#endif

#define CLV_PATH_LEN 1024

typedef struct clv_config {
    /* [data] */
    char data[32];            /* fashion-mnist, mnist, cifar10, cifar100, imagefolder, decathlon */
    char data_root[CLV_PATH_LEN];
    int tasks;                /* T: the classes split into T tasks */
    char class_order[16];     /* natural | shuffled (by seed) */
    char domains[256];
    int task_norms;           /* rkr, piggyback, maskrkr: each task its own norm layers */        /* decathlon: comma-separated domains, one task each */
    char fit[16];             /* pad | resize: how a smaller image reaches the model's size */
    int augment;              /* random crop with padding + flip where it makes sense */
    int crop_padding;
    int64_t train_limit;      /* at most this many training images per task (0: all) */
    int64_t test_limit;       /* at most this many test images per task (0: all) */
    /* [model] */
    char model[64];
    char weights[CLV_PATH_LEN]; /* pretrained base (safetensors); empty: train from scratch */
    /* [method] */
    char method[32];          /* finetune | linear | independent | rkr | piggyback | maskrkr */
    int rank;                 /* rkr, maskrkr: rank K of LM RM */
    char rkr_init[16];        /* zero (RM = 0: start as the base) | random (RM random too) */
    float mask_init;          /* piggyback, maskrkr: initial score */
    float threshold;          /* mask = score > threshold */
    float lr_mask;            /* learning rate of the scores */
    char mask_on[16];         /* maskrkr: which of lm, rm, f are masked */
    char maskrkr_source[16];  /* first (learned on the first adapted task) | joint (with the base) | random (seed) */
    float lr_adapter;         /* rkr, maskrkr: learning rate of LM, RM, F (0: lr) */
    char adapt[16];           /* patch-embed | no-patch-embed: is the layer reading the image adapted */
    char conv_view[8];        /* ours (Cout x Cin k k) | rkr ((Cin k) x (Cout k), RKR's paper) */
    /* [train] */
    int epochs;
    int batch;
    char optimizer[16];       /* adamw | sgd */
    float lr;                 /* backbone learning rate */
    float lr_head;            /* head learning rate */
    float momentum;           /* sgd */
    float weight_decay;
    float warmup_epochs;
    float min_lr_ratio;       /* cosine floor as a fraction of lr */
    char schedule[16];        /* cosine | step: how every learning rate decays over a task */
    int lr_step_epochs;       /* step: the rates are multiplied by lr_step_gamma every this many epochs */
    float lr_step_gamma;      /* step: the factor, in (0, 1] */
    float clip_norm;          /* 0: no clipping */
    float label_smoothing;    /* reserved: must be 0 for now */
    /* [run] */
    uint64_t seed;
    int threads;              /* 0: OpenMP's default */
    int eval_batch;
    int checkpoint_every;     /* steps between mid-epoch checkpoints (0: epoch ends only) */
} clv_config;

typedef enum { CLV_SET_INT, CLV_SET_I64, CLV_SET_U64, CLV_SET_FLOAT, CLV_SET_STR, CLV_SET_BOOL } clv_setting_type;

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
/* Cross-field checks (tasks >= 1, batch >= 1, known method ...). */
/* Flags of a mask_on list (1 lm, 2 rm, 4 f), or -1 with err set. */
int clv_config_mask_on(const char *list, clv_err *err);
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
