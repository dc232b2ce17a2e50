/* libFuzzer harness: the task and state files of a run directory
 * (src/train/checkpoint.c, the strategies' load hooks; the safetensors
 * reader itself has fuzz_safetensors.c, faster). The input is read
 *  - as task files 1 to 3 of an rkr, a piggyback and two maskrkr runs
 *    (--maskrkr-source first: task 2 holds the shared LM, RM, F; random:
 *    every later task holds masks), as --resume and eval load them: head,
 *    norms, low-rank tensors, packed masks, then the task activated;
 *  - as state.safetensors: position, curve, parameters and optimizer
 *    moments, of a head only (the trainer's group "model." is a whole
 *    backbone, 830 KB, whose loading fuzz_safetensors.c covers).
 * The model is built once; strategies and heads are fresh for every input. */
#include "fuzz_util.h"

#include "clvit/checkpoint.h"
#include "clvit/safetensors.h"

#define MODEL "vit_nano_patch4_32"
#define TASKS 3

static clv_model *model;
static clv_config cfg;

static void init_once(void)
{
    if (model)
        return;
    clv_err err = {{0}};
    fuzz_dir();
    if (!(model = clv_model_create(MODEL, &err))) {
        fprintf(stderr, "fuzz: %s\n", err.msg);
        abort();
    }
    model->ops->init(model, 1);
    clv_config_defaults(&cfg);
    cfg.tasks = TASKS;
    snprintf(cfg.model, sizeof cfg.model, MODEL);
}

static void as_task_files(const char *dir, const char *method, const char *source)
{
    clv_err err = {{0}};
    clv_head heads[TASKS];
    memset(heads, 0, sizeof heads);
    clv_learner L = {.cfg = &cfg, .model = model, .heads = heads, .n_tasks = TASKS};
    snprintf(cfg.method, sizeof cfg.method, "%s", method);
    if (clv_config_set(&cfg, clv_config_find("method.maskrkr_source"), source, NULL))
        abort();
    clv_strategy *s = clv_strategy_create(method, &L, &err);
    if (!s) {
        fprintf(stderr, "fuzz: %s\n", err.msg);
        abort();
    }
    for (int t = 0; t < TASKS; t++) {
        int rc = clv_ckpt_load_task(dir, t, &L, s, &err);
        fuzz_check_err(rc, &err);
        if (rc)
            break;
        rc = s->ops->activate(s, &L, t, &err);
        fuzz_check_err(rc, &err);
    }
    clv_strategy_free(s);
    for (int t = 0; t < TASKS; t++)
        clv_head_free(&heads[t]);
}

static void as_state(const char *dir)
{
    clv_err err = {{0}};
    clv_head head;
    memset(&head, 0, sizeof head);
    if (clv_head_init(&head, model->info.feat_dim, 5, 1, 0, &err))
        abort();
    clv_param_group groups[1] = {{"", &head.params}};
    clv_ckpt_position pos = {0};
    clv_task_curve curve = {0};
    if (clv_task_curve_init(&curve, 3, 10, &err))
        abort();
    int rc = clv_ckpt_load_state(dir, groups, 1, &pos, &curve, &err);
    fuzz_check_err(rc < 0, &err);
    clv_task_curve_free(&curve);
    clv_head_free(&head);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    const char *dir = fuzz_dir();
    char path[512];
    static const char *const names[] = {"task-01", "task-02", "task-03", "state"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, names[i]);
        fuzz_write(path, data, size);
    }
    as_task_files(dir, "rkr", "first");
    as_task_files(dir, "piggyback", "first");
    as_task_files(dir, "maskrkr", "first");
    as_task_files(dir, "maskrkr", "random");
    as_state(dir);
    return 0;
}
