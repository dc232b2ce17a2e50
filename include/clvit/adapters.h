/* The adapters of the continual-learning methods, one per weight layer,
 * holding every task's state for that layer (see clvit/adapter.h for the
 * slot they plug into and shared/research-notes.md for the equations).
 *
 *   rkr        W_t = W + LM_t RM_t (rank K), output scaled by F_t
 *   piggyback  W_t = W * M_t, M_t = 1[S_t > tau]; only M_t's bits are kept
 *   maskrkr    W_t = W + (LM * M^LM_t)(RM * M^RM_t), scale F * M^F_t, with
 *              LM, RM, F real and shared (learned once), masks per task
 *
 * Each adapter has one active task (clv_task_adapter_select); task -1 is
 * the identity (the base network, whose weight then gets its ordinary
 * gradient when trainable). Trainable per-task tensors are clv_params
 * appended to a list the caller owns (the strategy's list for that task),
 * named "<layer>.<tensor>". Masks are bit-packed: bit i of a mask (row-major
 * over the tensor) is bit (i % 8) of byte i / 8, least significant first.
 *
 * Over a run, a method's adapters are driven through clv_adapter_method
 * (below): the one adapted strategy (src/cl/strategy_adapted.c) calls it
 * for every adapted layer, so a method's lifecycle (its tensors, what a
 * task keeps, its files) lives with its adapter. */
#ifndef CLVIT_ADAPTERS_H
#define CLVIT_ADAPTERS_H

#include "clvit/adapter.h"
#include "clvit/safetensors.h"
#include "clvit/storage.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- bit-packed masks ---- */
static inline int64_t clv_mask_bytes(int64_t n) { return (n + 7) / 8; }
static inline int clv_mask_bit(const uint8_t *bits, int64_t i) { return (bits[i >> 3] >> (i & 7)) & 1; }
/* bits[i] = scores[i] > threshold, for n scores (bits: clv_mask_bytes(n), padding bits 0). */
void clv_mask_pack(uint8_t *bits, const float *scores, int64_t n, float threshold);
/* out[i] = values[i] * bit i (values may be NULL: out[i] = bit i). */
void clv_mask_apply(float *out, const float *values, const uint8_t *bits, int64_t n);
int64_t clv_mask_count(const uint8_t *bits, int64_t n);

/* ---- the matrix a rectification LM RM lives in (rkr, maskrkr) ---- */
/* ours: every weight as its out x in matrix (a conv: Cout x (Cin k k)).
 * rkr: a conv weight (Cout, Cin, k, k) as RKR's paper reshapes it, (Cin k)
 * x (Cout k), entry (i k + a, o k + b) at W[o][i][a][b]; other layers as ours. */
typedef enum { CLV_VIEW_OURS, CLV_VIEW_RKR } clv_conv_view;
/* rows x cols of layer l's rectification in view; -1 with err for a
 * non-square kernel in the rkr view. Its largest rank is min(rows, cols). */
int clv_rect_shape(const clv_wlayer *l, clv_conv_view view, int64_t *rows, int64_t *cols, clv_err *err);

/* ---- a method's adapters over a run ---- */
/* What an adapter of a layer needs to know, from the run's settings. */
typedef struct clv_adapter_settings {
    int n_tasks;
    int layer;            /* the layer's index in the model: its draws use
                             clv_rng_key(seed, CLV_STREAM_ADAPTER, layer, task) */
    uint64_t seed;
    clv_conv_view view;
    int rank;             /* rkr, maskrkr: this layer's (capped) */
    float lr;             /* the real-valued tensors' learning rate (LM, RM, F) */
    int random_rm;        /* rkr: RM drawn too (RKR's own initialization) */
    float threshold;      /* masks: a score above it is a 1 bit */
    float mask_init;      /* masks: the scores' initial value */
    float lr_mask;        /* masks: the scores' learning rate */
    int mask_on;          /* maskrkr: the masked tensors (CLV_MASK_*) */
    int shared_task;      /* maskrkr: the task that learns LM, RM, F; -2: drawn from the seed */
    float random_ratio;   /* maskrkr, drawn: ||LM RM||_F / ||W||_F at the start */
} clv_adapter_settings;

/* The lifecycle of a method's adapter, one layer at a time. Task ids are
 * the run's; the base task (the backbone itself training) never reaches
 * these unless the method adapts it (maskrkr joint). */
typedef struct clv_adapter_method {
    const char *name;
    clv_adapter *(*create)(const clv_wlayer *l, const clv_adapter_settings *set, clv_err *err);
    /* Creates task's tensors; the trainable ones are appended to ps (the
     * caller's list for the task), named "<layer>.<tensor>". */
    int (*add_task)(clv_adapter *a, const clv_wlayer *l, int task, clv_params *ps, clv_err *err);
    /* After task trained: binarize and pack what it keeps. 1 when it keeps
     * bits only (the caller frees the task's trainable tensors), 0 when it
     * keeps them (frozen), -1 on error. */
    int (*end_task)(clv_adapter *a, const clv_wlayer *l, int task, clv_err *err);
    /* 1 when task has state in this layer (learning or learned). */
    int (*has_task)(const clv_adapter *a, int task);
    /* Adds the exact bits task stores in this layer to out, by kind (and
     * marks out->one_time_task for a task whose tensors every later task shares). */
    void (*task_storage)(const clv_adapter *a, const clv_wlayer *l, int task, clv_storage *out);
    /* Writes task's tensors: 1 when they are packed masks ("mask.<layer>.<what>",
     * U8, with their bit counts in the metadata), 0 otherwise, -1 on error. */
    int (*save_task)(const clv_adapter *a, const clv_wlayer *l, int task, clv_st_writer *w, clv_err *err);
    /* Reads back what save_task wrote; real-valued tensors are appended to ps. */
    int (*load_task)(clv_adapter *a, const clv_wlayer *l, int task, const clv_safetensors *st, clv_params *ps,
                     clv_err *err);
    const char *mask_note; /* a task file's "mask_bits" metadata when save_task wrote masks */
} clv_adapter_method;

extern const clv_adapter_method clv_adapter_rkr;
extern const clv_adapter_method clv_adapter_piggyback;
extern const clv_adapter_method clv_adapter_maskrkr;

/* ---- common to the three adapters ---- */
/* Switches the layer to task (-1: the base network). */
void clv_task_adapter_select(clv_adapter *a, int task);
int clv_task_adapter_selected(const clv_adapter *a);

/* ---- RKR ---- */
clv_adapter *clv_rkr_create(const clv_wlayer *l, int n_tasks, clv_conv_view view, clv_err *err);
/* Creates task's LM [rows x K], RM [K x cols], F [out] in ps ("<layer>.lm",
 * ".rm", ".f"; rows x cols as clv_rect_shape, out x in in our view):
 * F = 1, RM = 0 and LM ~ N(0, 0.02^2) drawn from key, so the task starts
 * as the base (random_rm: RM ~ N(0, 0.02^2) too, RKR's own
 * initialization). K = rank capped at min(rows, cols). Trainable,
 * lr_scale = lr. */
int clv_rkr_add_task(clv_adapter *a, const clv_wlayer *l, int task, int rank, int random_rm, uint64_t key, float lr,
                     clv_params *ps, clv_err *err);
/* Floats task stores in this layer (0 when it has none). */
int64_t clv_rkr_task_floats(const clv_adapter *a, int task);

/* ---- Piggyback ---- */
clv_adapter *clv_piggyback_create(const clv_wlayer *l, int n_tasks, float threshold, clv_err *err);
/* Creates task's real-valued scores [out x in] = init in ps ("<layer>.scores"). */
int clv_piggyback_add_task(clv_adapter *a, const clv_wlayer *l, int task, float init, float lr, clv_params *ps,
                           clv_err *err);
/* Binarizes task's scores into its mask and forgets the scores (the caller
 * frees them with its list). */
int clv_piggyback_freeze(clv_adapter *a, const clv_wlayer *l, int task, clv_err *err);
/* The mask of a frozen task (clv_mask_bytes(out * in) bytes), or NULL. */
const uint8_t *clv_piggyback_mask(const clv_adapter *a, int task);

/* ---- Mask-RKR ---- */
enum { CLV_MASK_LM = 1, CLV_MASK_RM = 2, CLV_MASK_F = 4 };
/* The rank is capped at min(rows, cols) of the view (clv_rect_shape). */
clv_adapter *clv_maskrkr_create(const clv_wlayer *l, int n_tasks, int rank, float threshold, int mask_on,
                                clv_conv_view view, clv_err *err);
/* The shared LM, RM, F: learned as plain RKR (trainable, in ps, initialized
 * as RKR's) when learn, or drawn from key otherwise (not trainable): F = 1,
 * LM and RM standard normal, both scaled by one factor so that
 * ||LM RM||_F = ratio ||W||_F for the layer's current base weight W.
 * Their task (the one that learns them) is shared_task; it uses them
 * unmasked. When the base weight trains in that task (learned jointly with
 * the base), it gets its ordinary gradient as well. */
int clv_maskrkr_add_shared(clv_adapter *a, const clv_wlayer *l, int shared_task, int learn, uint64_t key, float ratio,
                           float lr, clv_params *ps, clv_err *err);
/* The shared tensors (NULL before add_shared): lm, rm, f. */
clv_param *clv_maskrkr_shared(const clv_adapter *a, int which);
/* Creates task's scores over the masked tensors in ps ("<layer>.s_lm", ".s_rm", ".s_f"). */
int clv_maskrkr_add_task(clv_adapter *a, const clv_wlayer *l, int task, float init, float lr, clv_params *ps,
                         clv_err *err);
int clv_maskrkr_freeze(clv_adapter *a, int task, clv_err *err);
/* Packed mask of task over the tensor which (CLV_MASK_*), its length in
 * elements in *n; NULL if not masked or not frozen. */
const uint8_t *clv_maskrkr_mask(const clv_adapter *a, int task, int which, int64_t *n);
/* Bits task stores in this layer: 1 per masked element (the shared floats not included). */
int64_t clv_maskrkr_task_bits(const clv_adapter *a, int task);

#ifdef __cplusplus
}
#endif
#endif
