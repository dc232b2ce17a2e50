/* The files of a run directory (all safetensors, all written atomically):
 *
 *   base.safetensors     the shared backbone, timm names (and tensors a
 *                        strategy keeps with it, e.g. maskrkr.*); metadata:
 *                        model, mean, std (JSON arrays as strings), format
 *   task-NN.safetensors  task NN's head (head.weight, head.bias) and the
 *                        strategy's per-task tensors; metadata: task,
 *                        classes, method, model, mean, std
 *   state.safetensors    the checkpoint inside a task: parameters
 *                        (model.*, head.*, task.*), optimizer moments
 *                        (opt_m.*, opt_v.*), the training curve so far
 *                        (curve.*) and the position (task, step,
 *                        optimizer step) in its metadata
 * A base or task file is a complete set of weights for `clvit predict`. */
#ifndef CLVIT_CHECKPOINT_H
#define CLVIT_CHECKPOINT_H

#include "clvit/strategy.h"
#include "clvit/task_checks.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_norm {
    float mean[3], std[3];
} clv_norm;

/* Groups of parameters saved under a prefix ("model.", "head.", "task."). */
typedef struct clv_param_group {
    const char *prefix;
    clv_params *params;
} clv_param_group;

typedef struct clv_ckpt_position {
    int task;
    int64_t step;     /* optimizer steps done in this task */
    int64_t opt_t;    /* the optimizer's own step count (bias correction) */
} clv_ckpt_position;

void clv_ckpt_path(char *buf, size_t len, const char *dir, const char *what, int task);

/* Every file above carries a checksum (see clvit/safetensors.h). A damaged
 * one is an error naming it and saying what to do, which depends on what
 * it is (what: "base", "task" or "state"): a state file can be deleted (the
 * task in progress restarts), a base or task file cannot be remade by
 * --resume. clv_ckpt_open is clv_st_open plus that advice;
 * clv_ckpt_explain_damage appends it to err's message and returns -1. */
int clv_ckpt_open(clv_safetensors *st, const char *path, const char *what, clv_err *err);
int clv_ckpt_explain_damage(clv_err *err, const char *what);

/* The learner's backbone, and the strategy's tensors kept with it (its
 * save_base hook; s may be NULL). */
int clv_ckpt_save_base(const char *dir, clv_learner *L, clv_strategy *s, const clv_norm *norm, clv_err *err);
/* Loads a backbone from a safetensors file with timm names (a base file or a
 * timm checkpoint in any layout of clvit/ckpt_layout.h, renamed to the
 * model's; the head and other tensors are ignored). CLV_ST_DAMAGED when the
 * file is damaged (the caller knows what it is). */
int clv_ckpt_load_backbone(const char *path, clv_model *m, clv_err *err);
/* The same for a --weights base: notes the layout and that the file's own
 * head (a 1000-class ImageNet classifier, say) is dropped. */
int clv_ckpt_load_weights(const char *path, clv_model *m, clv_err *err);
/* Writes path: the run's backbone (base file) and the head of its task 1,
 * under timm's names, with the base's metadata: a pretrained network for
 * --weights (heads are ignored there) and for `clvit predict`. */
int clv_ckpt_export_pretrained(const char *run_dir, const char *path, clv_err *err);
/* Reads mean/std metadata; 0 if found, 1 if absent (norm untouched), -1 if malformed. */
int clv_ckpt_read_norm(const clv_safetensors *st, clv_norm *norm, clv_err *err);

int clv_ckpt_save_task(const char *dir, int task, clv_learner *L, clv_strategy *s, const int32_t *classes,
                       int n_classes, const clv_norm *norm, clv_err *err);
/* Loads task's head (creating it with the file's class count) and the strategy's tensors. */
int clv_ckpt_load_task(const char *dir, int task, clv_learner *L, clv_strategy *s, clv_err *err);

/* curve (may be NULL) is the task's training curve so far: a resumed task
 * reports the curve the uninterrupted one would have. */
int clv_ckpt_save_state(const char *dir, const clv_param_group *groups, int n_groups, const clv_ckpt_position *pos,
                        const clv_task_curve *curve, clv_err *err);
/* Returns 1 if there is no state file, 0 when loaded, -1 on error. curve
 * (may be NULL; initialized for the task's epochs) receives the saved curve;
 * a state file without one leaves it as it is. */
int clv_ckpt_load_state(const char *dir, const clv_param_group *groups, int n_groups, clv_ckpt_position *pos,
                        clv_task_curve *curve, clv_err *err);
/* The position of the state file alone (its tensors unread): 1 if there
 * is none, 0 when read, -1 on error. */
int clv_ckpt_state_position(const char *dir, clv_ckpt_position *pos, clv_err *err);
int clv_ckpt_remove_state(const char *dir);

#ifdef __cplusplus
}
#endif
#endif
