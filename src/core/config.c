/* The settings table behind INI files, flags, --help, run.json and resume checks. */
#include "clvit/config.h"
#include "clvit/input_file.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* values: a string's closed set "a|b|c", or a number's interval "[lo, hi]"
 * ('(' or ')' excludes the bound): NaN, inf, negatives where they mean
 * nothing and absurd magnitudes (which overflowed integers or crashed
 * OpenMP) are refused by the table, not by scattered checks. */
/* S_ADDED: a setting added after runs were recorded without it, with the value those runs ran with */
#define S_ADDED(sec, key, flag, type, field, def, values, may_change, help, unrecorded)                                 \
    {sec, key, flag, type, offsetof(clv_config, field), sizeof(((clv_config *)0)->field), def, values, may_change, help, \
     unrecorded}
#define S_(sec, key, flag, type, field, def, values, may_change, help)                                                \
    S_ADDED(sec, key, flag, type, field, def, values, may_change, help, NULL)

static const clv_setting settings[] = {
    S_("data", "dataset", "data", CLV_SET_STR, data, "fashion-mnist",
       "fashion-mnist|mnist|cifar10|cifar100|imagefolder|decathlon", 0, "dataset to split into tasks"),
    S_("data", "domains", "domains", CLV_SET_STR, domains, "aircraft,cifar100,dtd,gtsrb,vgg-flowers", NULL, 0,
       "decathlon: the Visual Decathlon domains, one task each, in this order"),
    S_("data", "root", "data-root", CLV_SET_STR, data_root, "", NULL, 1,
       "directory of the dataset files (default: the Debian package's for fashion-mnist)"),
    S_("data", "tasks", "tasks", CLV_SET_INT, tasks, "5", "[1, 10000]", 0, "number of tasks T (classes split evenly)"),
    S_("data", "class_order", "class-order", CLV_SET_CHOICE, class_order, "natural", "natural|shuffled", 0,
       "class order before splitting: natural or shuffled by the seed"),
    S_("data", "fit", "fit", CLV_SET_CHOICE, fit, "pad", "pad|resize", 0,
       "how smaller images reach the model's size: zero-pad centered or resize"),
    S_("data", "augment", "augment", CLV_SET_BOOL, augment, "1", NULL, 0,
       "random crop with padding and horizontal flip (where it makes sense)"),
    S_("data", "crop_padding", "crop-padding", CLV_SET_INT, crop_padding, "4", "[0, 1024]", 0,
       "padding of the random crop"),
    S_("data", "train_limit", "train-limit", CLV_SET_I64, train_limit, "0", "[0, 1e12]", 0,
       "use at most this many training images per task (0: all)"),
    S_("data", "test_limit", "test-limit", CLV_SET_I64, test_limit, "0", "[0, 1e12]", 0,
       "evaluate on at most this many test images per task (0: all)"),
    S_("model", "name", "model", CLV_SET_STR, model, "vit_nano_patch4_32", NULL, 0, "backbone (see clvit info)"),
    S_("model", "weights", "weights", CLV_SET_STR, weights, "", NULL, 0,
       "pretrained base weights (safetensors, timm names); empty: train the base on task 1"),
    S_("method", "name", "method", CLV_SET_STR, method, "finetune", NULL, 0,
       "continual-learning method (see clvit info)"),
    S_("method", "rank", "rank", CLV_SET_INT, rank, "2", "[1, 4096]", 0,
       "rkr, maskrkr: rank K of the rectification LM RM"),
    S_("method", "rkr_init", "rkr-init", CLV_SET_CHOICE, rkr_init, "zero", "zero|random", 0,
       "rkr: RM = 0 (each task starts as the base) or random like LM"),
    S_("method", "mask_init", "mask-init", CLV_SET_FLOAT, mask_init, "1e-2", "[0, 1000]", 0,
       "piggyback, maskrkr: initial value of every score"),
    S_("method", "threshold", "threshold", CLV_SET_FLOAT, threshold, "5e-3", "[0, 1000]", 0,
       "piggyback, maskrkr: a mask bit is 1 where its score exceeds this"),
    S_("method", "lr_mask", "lr-mask", CLV_SET_FLOAT, lr_mask, "1e-4", "[0, 1000]", 0,
       "piggyback, maskrkr: peak learning rate of the scores"),
    S_("method", "task_norms", "task-norms", CLV_SET_BOOL, task_norms, "0", NULL, 0,
       "rkr, piggyback, maskrkr: each task trains and keeps its own norm layers (LayerNorm, BatchNorm)"),
    S_("method", "mask_on", "mask-on", CLV_SET_STR, mask_on, "lm,rm,f", NULL, 0,
       "maskrkr: which RKR tensors are masked, a comma list of lm, rm, f"),
    S_("method", "maskrkr_source", "maskrkr-source", CLV_SET_CHOICE, maskrkr_source, "first", "first|joint|random", 0,
       "maskrkr: LM, RM, F learned as RKR on the first adapted task (first), learned with the base on task 1 and "
       "stored with it (joint; a --weights base then trains on task 1 too), or LM, RM drawn from the seed at the "
       "size of a learned rectification, F = 1 (random)"),
    S_("method", "lr_adapter", "lr-adapter", CLV_SET_FLOAT, lr_adapter, "0", "[0, 1000]", 0,
       "rkr, maskrkr: peak learning rate of the real-valued LM, RM, F (0: the same as --lr)"),
    S_("method", "adapt", "adapt", CLV_SET_CHOICE, adapt, "patch-embed", "patch-embed|no-patch-embed", 0,
       "rkr, piggyback, maskrkr: also adapt the layer that reads the image (ViT, Swin: patch_embed.proj; "
       "ResNet: the stem conv1), or leave it as the base's"),
    S_("method", "conv_view", "conv-view", CLV_SET_CHOICE, conv_view, "ours", "ours|rkr", 0,
       "rkr, maskrkr: a conv weight (Cout, Cin, k, k) as the matrix Cout x (Cin k k) (ours) or, as RKR's paper, "
       "LM RM of (Cin k) x (Cout k) (rkr; see docs/methods.md)"),
    S_("method", "ewc_lambda", "ewc-lambda", CLV_SET_FLOAT, ewc_lambda, "5000", "[0, 1e12]", 0,
       "ewc: lambda of the penalty lambda/2 sum_i F_i (theta_i - theta*_i)^2 on the backbone (FACIL's default)"),
    S_("method", "ewc_decay", "ewc-decay", CLV_SET_FLOAT, ewc_decay, "1", "[0, 1]", 0,
       "ewc: the online Fisher after each task is decay x the previous one + the task's own (1: their sum)"),
    S_("method", "lwf_alpha", "lwf-alpha", CLV_SET_FLOAT, lwf_alpha, "1", "[0, 1e6]", 0,
       "lwf: weight of the old heads' distillation loss (Li and Hoiem's lambda_o)"),
    S_("method", "lwf_temperature", "lwf-temperature", CLV_SET_FLOAT, lwf_temperature, "2", "(0, 1000]", 0,
       "lwf: temperature T of the distillation's softmax(z / T) (no T^2 factor; docs/methods.md)"),
    S_("train", "epochs", "epochs", CLV_SET_INT, epochs, "1", "[1, 100000]", 0, "epochs per task"),
    S_("train", "batch", "batch", CLV_SET_INT, batch, "64", "[1, 1000000]", 0, "training batch size"),
    S_("train", "optimizer", "optimizer", CLV_SET_CHOICE, optimizer, "adamw", "adamw|sgd", 0, "optimizer"),
    S_("train", "lr", "lr", CLV_SET_FLOAT, lr, "1e-3", "[0, 1000]", 0, "peak learning rate of the backbone"),
    S_("train", "lr_head", "lr-head", CLV_SET_FLOAT, lr_head, "1e-3", "[0, 1000]", 0,
       "peak learning rate of the heads"),
    S_("train", "momentum", "momentum", CLV_SET_FLOAT, momentum, "0.9", "[0, 1]", 0, "SGD momentum"),
    S_("train", "weight_decay", "weight-decay", CLV_SET_FLOAT, weight_decay, "0.05", "[0, 100]", 0,
       "weight decay (decoupled for adamw; biases, norms and embeddings exempt)"),
    S_("train", "warmup_epochs", "warmup-epochs", CLV_SET_FLOAT, warmup_epochs, "0.1", "[0, 100000]", 0,
       "linear warmup at the start of each task, in epochs"),
    S_("train", "min_lr_ratio", "min-lr-ratio", CLV_SET_FLOAT, min_lr_ratio, "0.01", "[0, 1]", 0,
       "end of the cosine schedule as a fraction of the peak"),
    S_("train", "schedule", "schedule", CLV_SET_CHOICE, schedule, "cosine", "cosine|step", 0,
       "how every learning rate (backbone, heads, scores, adapters) decays over a task: cosine to min_lr_ratio, "
       "or step (x lr_step_gamma every lr_step_epochs epochs); both after warmup_epochs (0: none, as Piggyback)"),
    S_("train", "lr_step_epochs", "lr-step-epochs", CLV_SET_INT, lr_step_epochs, "15", "[1, 100000]", 0,
       "step schedule: multiply the rates by lr_step_gamma every this many epochs (Piggyback: 15)"),
    S_("train", "lr_step_gamma", "lr-step-gamma", CLV_SET_FLOAT, lr_step_gamma, "0.1", "(0, 1]", 0,
       "step schedule: the factor applied every lr_step_epochs epochs, in (0, 1] (Piggyback: 0.1)"),
    S_("train", "clip_norm", "clip-norm", CLV_SET_FLOAT, clip_norm, "1.0", "[0, 1e6]", 0,
       "clip the global gradient norm to this (0: off)"),
    S_("train", "label_smoothing", "label-smoothing", CLV_SET_FLOAT, label_smoothing, "0", "[0, 0]", 0,
       "reserved (must be 0)"),
    S_("train", "precision", "precision", CLV_SET_CHOICE, precision, "fp32", "fp32|bf16", 0,
       "GEMM inputs of the weight layers: fp32, or bf16 with fp32 accumulation (master weights, gradients, "
       "optimizer, norms, softmax and loss stay fp32); eval and predict default to the run's"),
    S_ADDED("train", "conv_algorithm", "conv-algorithm", CLV_SET_CHOICE, conv_algorithm, "winograd", "winograd|direct", 0,
            "ResNet's 3x3 stride-1 training convolutions: winograd (fp32: oneDNN's F(4x4, 3x3) where this CPU has "
            "it, about 1.4x the direct training step on resnet18_cifar, rounding errors about 3e-7 of sum |x w| "
            "against 2e-8 to 8e-8; bf16 with native bf16: clvit's F(2x2, 3x3) on bf16 batched matmuls; else "
            "direct) or direct only (docs/precision.md)",
            "direct"),
    S_("run", "seed", "seed", CLV_SET_U64, seed, "0", NULL, 0,
       "drives class order, initialization, shuffling and augmentation"),
    S_("run", "threads", "threads", CLV_SET_INT, threads, "0", "[0, 1024]", 1, "OpenMP threads (0: all cores)"),
    S_("run", "eval_batch", "eval-batch", CLV_SET_INT, eval_batch, "256", "[1, 1000000]", 1, "evaluation batch size"),
    S_("run", "checkpoint_every", "checkpoint-every", CLV_SET_INT, checkpoint_every, "0", "[0, 1e9]", 1,
       "also checkpoint every N steps inside an epoch (0: at epoch ends only)"),
};

#define N_SETTINGS ((int)(sizeof settings / sizeof settings[0]))

int clv_config_settings_count(void) { return N_SETTINGS; }
const clv_setting *clv_config_setting(int i) { return i >= 0 && i < N_SETTINGS ? &settings[i] : NULL; }

const clv_setting *clv_config_find(const char *section_dot_key)
{
    const char *dot = strchr(section_dot_key, '.');
    if (!dot)
        return NULL;
    size_t slen = (size_t)(dot - section_dot_key);
    for (int i = 0; i < N_SETTINGS; i++)
        if (strlen(settings[i].section) == slen && !strncmp(settings[i].section, section_dot_key, slen) &&
            !strcmp(settings[i].key, dot + 1))
            return &settings[i];
    return NULL;
}

const clv_setting *clv_config_find_flag(const char *flag)
{
    for (int i = 0; i < N_SETTINGS; i++)
        if (!strcmp(settings[i].flag, flag))
            return &settings[i];
    return NULL;
}

static int choice_ok(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, v, n))
            return 1;
        if (!bar)
            break;
        p = bar + 1;
    }
    return 0;
}

/* The position of v in choices "a|b|c", or -1. */
static int choice_index(const char *choices, const char *v)
{
    size_t n = strlen(v);
    int k = 0;
    for (const char *p = choices;; k++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, v, n))
            return k;
        if (!bar)
            return -1;
        p = bar + 1;
    }
}

/* The k-th name of choices "a|b|c" (its length in *len), or NULL. */
static const char *choice_at(const char *choices, int k, size_t *len)
{
    const char *p = choices;
    for (int i = 0; i < k && p; i++)
        p = strchr(p, '|') ? strchr(p, '|') + 1 : NULL;
    if (k < 0 || !p)
        return NULL;
    *len = strcspn(p, "|");
    return p;
}

/* CLV_SET_CHOICE fields are enums written through an int */
_Static_assert(sizeof(clv_fit) == sizeof(int) && sizeof(clv_maskrkr_source) == sizeof(int), "enum size");

typedef struct {
    double lo, hi;
    int lo_open, hi_open;
} interval;

static interval interval_of(const clv_setting *s)
{
    interval r = {-INFINITY, INFINITY, 0, 0};
    char open = '[', close = ']';
    if (s->values && sscanf(s->values, " %c %lf , %lf %c", &open, &r.lo, &r.hi, &close) != 4)
        abort(); /* a malformed interval in the table is a programming error */
    r.lo_open = open == '(';
    r.hi_open = close == ')';
    return r;
}

static int in_interval(const interval *r, double v)
{
    return (r->lo_open ? v > r->lo : v >= r->lo) && (r->hi_open ? v < r->hi : v <= r->hi); /* NaN: never */
}

/* "must be between 1 and 1024", "must be above 0 and at most 1", "must be 0" */
static void describe(const interval *r, char *buf, size_t len)
{
    if (r->lo == r->hi)
        snprintf(buf, len, "must be %g", r->lo);
    else if (!r->lo_open && !r->hi_open)
        snprintf(buf, len, "must be between %g and %g", r->lo, r->hi);
    else
        snprintf(buf, len, "must be %s %g and %s %g", r->lo_open ? "above" : "at least", r->lo,
                 r->hi_open ? "below" : "at most", r->hi);
}

static int out_of_range(const clv_setting *s, const char *value, clv_err *err)
{
    interval r = interval_of(s);
    char rule[96];
    describe(&r, rule, sizeof rule);
    return clv_errf(err, "%s.%s (--%s): '%s' is out of range: it %s", s->section, s->key, s->flag, value, rule);
}

static int numeric(const clv_setting *s)
{
    return s->type == CLV_SET_INT || s->type == CLV_SET_I64 || s->type == CLV_SET_FLOAT;
}

int clv_config_set(clv_config *c, const clv_setting *s, const char *value, clv_err *err)
{
    char *field = (char *)c + s->offset;
    char *end = NULL;
    interval r = numeric(s) ? interval_of(s) : (interval){0, 0, 0, 0};
    errno = 0;
    switch (s->type) {
    case CLV_SET_INT:
    case CLV_SET_I64: {
        long long v = strtoll(value, &end, 10);
        if (end == value || *end || errno)
            return clv_errf(err, "%s.%s (--%s): '%s' is not an integer", s->section, s->key, s->flag, value);
        if (!in_interval(&r, (double)v) || (s->type == CLV_SET_INT && (v < INT_MIN || v > INT_MAX)))
            return out_of_range(s, value, err);
        if (s->type == CLV_SET_INT)
            *(int *)field = (int)v;
        else
            *(int64_t *)field = (int64_t)v;
        break;
    }
    case CLV_SET_U64: {
        if (value[0] == '-')
            return clv_errf(err, "%s.%s (--%s): '%s' is not a non-negative integer", s->section, s->key, s->flag,
                            value);
        unsigned long long v = strtoull(value, &end, 10);
        if (end == value || *end || errno)
            return clv_errf(err, "%s.%s (--%s): '%s' is not a non-negative integer", s->section, s->key, s->flag,
                            value);
        *(uint64_t *)field = (uint64_t)v;
        break;
    }
    case CLV_SET_FLOAT: {
        float v = strtof(value, &end);
        if (end == value || *end || (errno && errno != ERANGE))
            return clv_errf(err, "%s.%s (--%s): '%s' is not a number", s->section, s->key, s->flag, value);
        if (!isfinite(v))
            return clv_errf(err, "%s.%s (--%s): '%s' is not a finite number", s->section, s->key, s->flag, value);
        if (!in_interval(&r, (double)v))
            return out_of_range(s, value, err);
        *(float *)field = v;
        break;
    }
    case CLV_SET_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on"))
            *(int *)field = 1;
        else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off"))
            *(int *)field = 0;
        else
            return clv_errf(err, "%s.%s (--%s): '%s' is not a boolean (true/false, 1/0)", s->section, s->key,
                            s->flag, value);
        break;
    case CLV_SET_CHOICE: {
        int k = choice_index(s->values, value);
        if (k < 0)
            return clv_errf(err, "%s.%s (--%s): '%s' is not one of %s", s->section, s->key, s->flag, value,
                            s->values);
        *(int *)field = k;
        break;
    }
    case CLV_SET_STR:
        if (s->values && !choice_ok(s->values, value))
            return clv_errf(err, "%s.%s (--%s): '%s' is not one of %s", s->section, s->key, s->flag, value,
                            s->values);
        if (strlen(value) >= s->size)
            return clv_errf(err, "%s.%s (--%s): value too long (%zu characters, at most %zu)", s->section, s->key,
                            s->flag, strlen(value), s->size - 1);
        strcpy(field, value);
        break;
    }
    return 0;
}

void clv_config_defaults(clv_config *c)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < N_SETTINGS; i++)
        if (clv_config_set(c, &settings[i], settings[i].defval, NULL))
            abort(); /* a bad default is a programming error */
}

int clv_config_set_assignment(clv_config *c, const char *assignment, clv_err *err)
{
    const char *eq = strchr(assignment, '=');
    if (!eq)
        return clv_errf(err, "--set %s: expected section.key=value", assignment);
    char key[128];
    size_t klen = (size_t)(eq - assignment);
    if (klen >= sizeof key)
        return clv_errf(err, "--set: key too long");
    memcpy(key, assignment, klen);
    key[klen] = 0;
    const clv_setting *s = clv_config_find(key);
    if (!s)
        return clv_errf(err, "--set: unknown setting '%s' (see clvit train --help)", key);
    return clv_config_set(c, s, eq + 1, err);
}

typedef struct {
    clv_config *c;
    clv_err *err;
    const char *path;
    int failed;
} ini_ctx;

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    ini_ctx *ctx = user;
    if (ctx->failed)
        return 0;
    if (!*section) {
        clv_errf(ctx->err, "%s: '%s' is outside any [section] (or a section line above it is malformed)", ctx->path,
                 name);
        ctx->failed = 1;
        return 0;
    }
    char key[256];
    snprintf(key, sizeof key, "%s.%s", section, name);
    const clv_setting *s = clv_config_find(key);
    if (!s) {
        clv_errf(ctx->err, "%s: unknown setting [%s] %s", ctx->path, section, name);
        ctx->failed = 1;
        return 0;
    }
    if (clv_config_set(ctx->c, s, value, ctx->err)) {
        clv_err_prefix(ctx->err, "%s", ctx->path);
        ctx->failed = 1;
        return 0;
    }
    return 1;
}

int clv_config_load_ini(clv_config *c, const char *path, clv_err *err)
{
    ini_ctx ctx = {c, err, path, 0};
    FILE *f = clv_input_fopen(path, err);
    if (!f)
        return -1;
    int rc = ini_parse_file(f, on_ini, &ctx);
    fclose(f);
    if (ctx.failed)
        return -1;
    if (rc == -2)
        return clv_errf(err, "%s: out of memory while parsing", path);
    if (rc > 0)
        return clv_errf(err, "%s: line %d: syntax error", path, rc);
    return 0;
}

int clv_config_mask_on(const char *list, clv_err *err)
{
    int flags = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        int f = n == 2 && !strncmp(p, "lm", 2) ? 1 : n == 2 && !strncmp(p, "rm", 2) ? 2 : n == 1 && *p == 'f' ? 4 : 0;
        if (!f || (flags & f))
            return clv_errf(err, "method.mask_on (--mask-on '%s'): expected a comma list of lm, rm, f without repeats",
                            list);
        flags |= f;
        p += n;
        if (*p == ',' && !*++p)
            return clv_errf(err, "method.mask_on (--mask-on '%s'): trailing comma", list);
    }
    if (!flags)
        return clv_errf(err, "method.mask_on (--mask-on): name at least one of lm, rm, f");
    return flags;
}

/* A numeric field's value, for the interval check of a config built in code. */
static double field_value(const clv_config *c, const clv_setting *s)
{
    const char *field = (const char *)c + s->offset;
    switch (s->type) {
    case CLV_SET_INT:
        return *(const int *)field;
    case CLV_SET_I64:
        return (double)*(const int64_t *)field;
    default:
        return *(const float *)field;
    }
}

int clv_config_validate(const clv_config *c, clv_err *err)
{
    for (int i = 0; i < N_SETTINGS; i++) { /* a choice set in code: one of its names */
        size_t n;
        const int k = *(const int *)((const char *)c + settings[i].offset);
        if (settings[i].type == CLV_SET_CHOICE && !choice_at(settings[i].values, k, &n))
            return clv_errf(err, "%s.%s (--%s): %d is not one of %s", settings[i].section, settings[i].key,
                            settings[i].flag, k, settings[i].values);
    }
    /* every row's interval: a config filled in by code or read from run.json */
    for (int i = 0; i < N_SETTINGS; i++) {
        const clv_setting *s = &settings[i];
        if (!numeric(s) || !s->values)
            continue;
        interval r = interval_of(s);
        double v = field_value(c, s);
        if (!in_interval(&r, v)) {
            char text[64];
            snprintf(text, sizeof text, "%g", v);
            return out_of_range(s, text, err);
        }
    }
    if (!(c->warmup_epochs <= (float)c->epochs))
        return clv_errf(err, "train.warmup_epochs (--warmup-epochs %g) must be at most train.epochs (%d)",
                        (double)c->warmup_epochs, c->epochs);
    if (!(c->mask_init > c->threshold))
        return clv_errf(err, "method.threshold (--threshold %g) must be below method.mask_init (--mask-init %g): "
                             "every mask would start empty",
                        c->threshold, c->mask_init);
    if (clv_config_mask_on(c->mask_on, err) < 0)
        return -1;
    if (c->task_norms && strcmp(c->method, "rkr") && strcmp(c->method, "piggyback") && strcmp(c->method, "maskrkr"))
        return clv_errf(err, "method.task_norms (--task-norms) applies to rkr, piggyback and maskrkr, not %s",
                        c->method);
    return 0;
}

void clv_config_format(const clv_config *c, const clv_setting *s, char *buf, size_t len)
{
    const char *field = (const char *)c + s->offset;
    switch (s->type) {
    case CLV_SET_INT:
        snprintf(buf, len, "%d", *(const int *)field);
        break;
    case CLV_SET_I64:
        snprintf(buf, len, "%lld", (long long)*(const int64_t *)field);
        break;
    case CLV_SET_U64:
        snprintf(buf, len, "%llu", (unsigned long long)*(const uint64_t *)field);
        break;
    case CLV_SET_FLOAT: {
        /* the shortest text that reads back as the same float: 0.003, not 0.00300000003 */
        const float v = *(const float *)field;
        for (int digits = 1; digits <= 9; digits++) {
            snprintf(buf, len, "%.*g", digits, (double)v);
            if (strtof(buf, NULL) == v)
                break;
        }
        break;
    }
    case CLV_SET_BOOL:
        snprintf(buf, len, "%s", *(const int *)field ? "true" : "false");
        break;
    case CLV_SET_STR:
        snprintf(buf, len, "%s", field);
        break;
    case CLV_SET_CHOICE: {
        size_t n = 0;
        const char *name = choice_at(s->values, *(const int *)field, &n);
        snprintf(buf, len, "%.*s", (int)n, name ? name : "?");
        break;
    }
    }
}

int clv_config_diff(const clv_config *a, const clv_config *b, char *buf, size_t len)
{
    int n = 0;
    size_t off = 0;
    if (len)
        buf[0] = 0;
    for (int i = 0; i < N_SETTINGS; i++) {
        const clv_setting *s = &settings[i];
        if (s->resume_may_change)
            continue;
        char va[CLV_PATH_LEN], vb[CLV_PATH_LEN];
        clv_config_format(a, s, va, sizeof va);
        clv_config_format(b, s, vb, sizeof vb);
        if (strcmp(va, vb)) {
            if (off < len)
                off += (size_t)snprintf(buf + off, len - off, "%s%s.%s ('%s' vs '%s')", n ? ", " : "", s->section,
                                        s->key, va, vb);
            n++;
        }
    }
    return n;
}

void clv_config_print_help(FILE *out)
{
    const char *section = "";
    for (int i = 0; i < N_SETTINGS; i++) {
        const clv_setting *s = &settings[i];
        if (strcmp(section, s->section)) {
            section = s->section;
            fprintf(out, "\n  [%s]\n", section);
        }
        char flag[64];
        snprintf(flag, sizeof flag, s->type == CLV_SET_BOOL ? "--[no-]%s" : "--%s", s->flag);
        const char *values = !s->values                                          ? ""
                             : s->type == CLV_SET_STR || s->type == CLV_SET_CHOICE ? "; one of "
                                                                                   : "; range ";
        fprintf(out, "  %-20s %-22s %s (default: %s%s%s)\n", flag, "", s->help, *s->defval ? s->defval : "none",
                values, s->values ? s->values : "");
        fprintf(out, "  %-20s %s.%s\n", "", s->section, s->key);
    }
}
