/* The record of a run: run.json and results.csv in the run directory.
 *
 * run.json holds the full config (as written by the settings table), the
 * accuracy matrix (T x T, row i = after learning task i, entry j = test
 * accuracy in percent on task j, null where j > i or not yet measured),
 * average accuracy (mean of the last finished row), forgetting, and per
 * task: classes, image counts, stored bits, trainable parameters, seconds,
 * the density of its masks ("masks"), its training curve ("epoch_loss",
 * "epoch_train_accuracy") and its "warnings"; the run's own "warnings";
 * for methods with a rank, rank_caps: the layers whose rank was capped.
 * Both files are written atomically; run.json is read back on --resume. */
#ifndef CLVIT_RUN_RECORD_H
#define CLVIT_RUN_RECORD_H

#include "clvit/config.h"
#include "clvit/mask_density.h"
#include "clvit/param.h"
#include "clvit/storage.h"
#include "clvit/warnings.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_task_record {
    int n_classes;
    int32_t *classes;         /* global class ids, in local label order */
    char **class_names;       /* their names (n_classes; malloc'd), NULL when the data names none */
    int64_t train_images, test_images;
    int64_t stored_bits;      /* everything the task adds: its own tensors + head */
    int64_t head_bits;
    clv_storage storage;      /* stored_bits by kind ("head", "lm", "weight_mask", ...) */
    int64_t trainable_params;
    double seconds;           /* training time of the task */
    int done;
    clv_mask_density masks;   /* 0 bits of the masks its file stores (bits 0: none) */
    clv_warnings warnings;    /* near_chance, loss_not_falling, mask_budget_short */
    int n_epochs;             /* length of the curves below */
    double *epoch_loss;       /* mean training loss per epoch (NAN: no step ran) */
    double *epoch_train_accuracy; /* training accuracy per epoch, percent */
} clv_task_record;

/* A layer whose rank (rkr, maskrkr) was capped at the largest its
 * rectification has, min(rows, cols). */
typedef struct clv_rank_cap {
    char layer[CLV_NAME_LEN];
    int rank;
} clv_rank_cap;

typedef struct clv_run_record {
    int n_tasks;
    double *acc;              /* n_tasks x n_tasks, NAN where undefined */
    clv_task_record *tasks;
    int64_t base_bits;        /* the shared base network */
    char status[16];          /* running | complete */
    char gemm[64];
    int threads;
    int has_rank_caps;        /* the method has a rank: run.json lists rank_caps (maybe empty) */
    clv_rank_cap *rank_caps;  /* n_rank_caps of them (malloc'd) */
    int n_rank_caps;
    clv_warnings warnings;    /* run level: no_pretrained_base */
    int n_commands;           /* the command lines that made and resumed the run, first one first */
    char **commands;          /* each shell-quoted on one line (malloc'd) */
} clv_run_record;

int clv_run_record_init(clv_run_record *r, int n_tasks, clv_err *err);
void clv_run_record_free(clv_run_record *r);
double clv_run_record_acc(const clv_run_record *r, int after, int task);
/* Last row in which every defined entry is measured; -1 if none. */
int clv_run_record_last_row(const clv_run_record *r);
double clv_run_record_average_accuracy(const clv_run_record *r);
/* Mean over j < last of max_{i<last} A[i][j] - A[last][j]; 0 with one row. */
double clv_run_record_forgetting(const clv_run_record *r);

/* Appends a command line (argv[0..argc-1], shell-quoted) to r->commands. */
int clv_run_record_add_command(clv_run_record *r, int argc, char *const *argv, clv_err *err);
/* Writes dir/results.csv, then dir/run.json (each atomically; run.json
 * last, as the record a resume trusts). run.json's "config"
 * holds each setting with its type (numbers, booleans, strings; a float as
 * the shortest text that reads back the same), "commands" the command
 * lines and "clvit_version" the writer's version. */
int clv_run_record_write(const clv_run_record *r, const clv_config *cfg, const char *dir, clv_err *err);
/* Writes dir/results.csv alone (atomically), the accuracy matrix of r. */
int clv_run_record_write_results(const clv_run_record *r, const clv_config *cfg, const char *dir, clv_err *err);
/* Reads dir/run.json: the record and the config it was made with. Settings
 * written as text (before they were typed) read the same. */
int clv_run_record_read(clv_run_record *r, clv_config *cfg, const char *dir, clv_err *err);
/* Sets key to the JSON text json in dir/run.json, keeping the rest as it
 * is (atomically; the caller holds the run's lock). Evaluations after
 * training use it ("task_agnostic"); the trainer's next write of run.json
 * drops such keys, since more tasks make them stale. */
int clv_run_record_put(const char *dir, const char *key, const char *json, clv_err *err);
/* Sets a task's curves (copies of n values each; NAN where undefined). */
int clv_task_record_set_curves(clv_task_record *tr, int n, const double *loss, const double *accuracy, clv_err *err);
/* Names tr's classes (set first) from the dataset's names of global class
 * ids (names[id], n_names of them); no names, or an id beyond them, leaves
 * tr->class_names NULL. */
int clv_task_record_name_classes(clv_task_record *tr, char *const *names, int n_names, clv_err *err);
/* Frees what a task record owns (classes, masks, warnings, curves). */
void clv_task_record_free(clv_task_record *tr);
/* Prints the accuracy matrix as a table. */
void clv_run_record_print(const clv_run_record *r, const clv_config *cfg, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
