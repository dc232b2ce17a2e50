/* libFuzzer harness: safetensors files (src/io/safetensors.c) and the three
 * kinds a run directory holds (src/train/checkpoint.c). The input is read
 *  - as any safetensors file: every float tensor converted, the listing of
 *    clvit inspect (text and JSON), the mean/std metadata;
 *  - as a base file or --weights: loaded into a vit_nano_patch4_32 backbone;
 *  - as task files 1 to 3 of an rkr, a piggyback and two maskrkr runs
 *    (--maskrkr-source first: task 2 holds the shared LM, RM, F; random:
 *    every later task holds masks), as --resume and eval load them: head,
 *    norms, low-rank tensors, packed masks, then the task activated;
 *  - as state.safetensors: position, curve, parameters and optimizer
 *    moments, of a head only (the trainer's group "model." is a whole
 *    backbone, 830 KB, which the backbone load above covers already).
 * The model is built once; strategies and heads are fresh for every input. */
#include "fuzz_util.h"

#include "clvit/checkpoint.h"
#include "clvit/safetensors.h"

#define MODEL "vit_nano_patch4_32"
#define TASKS 3

static FILE *devnull;
static clv_model *model;
static clv_config cfg;

static void init_once(void)
{
    if (model)
        return;
    clv_err err = {{0}};
    fuzz_dir();
    if (!(devnull = fopen("/dev/null", "w")) || !(model = clv_model_create(MODEL, &err))) {
        fprintf(stderr, "fuzz: %s\n", err.msg);
        abort();
    }
    model->ops->init(model, 1);
    clv_config_defaults(&cfg);
    cfg.tasks = TASKS;
    snprintf(cfg.model, sizeof cfg.model, MODEL);
}

static void as_any_file(const char *path)
{
    clv_safetensors st;
    clv_err err = {{0}};
    int rc = clv_st_open(&st, path, &err);
    fuzz_check_err(rc, &err);
    if (rc)
        return;
    for (int i = 0; i < st.count; i++) {
        const clv_st_tensor *t = &st.tensors[i];
        if (t->numel < 0 || t->end < t->begin || t->end > st.data_len || clv_st_find(&st, t->name) == NULL)
            abort();
        if (t->dtype != CLV_DT_F32 && t->dtype != CLV_DT_F16 && t->dtype != CLV_DT_BF16 && t->dtype != CLV_DT_F64)
            continue;
        /* the reader proved numel x dtype size = the bytes in the file, so this is bounded by the input */
        float *v = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *v);
        if (!v)
            abort();
        rc = clv_st_read_f32(&st, t, v, t->numel, &err);
        fuzz_check_err(rc, &err);
        free(v);
    }
    clv_st_print(&st, devnull, 0);
    clv_st_print(&st, devnull, 1);
    clv_norm norm;
    rc = clv_ckpt_read_norm(&st, &norm, &err);
    fuzz_check_err(rc < 0, &err);
    clv_st_close(&st);
}

static void as_task_files(const char *dir, const char *method, const char *source)
{
    clv_err err = {{0}};
    clv_head heads[TASKS];
    memset(heads, 0, sizeof heads);
    clv_learner L = {.cfg = &cfg, .model = model, .heads = heads, .n_tasks = TASKS};
    snprintf(cfg.method, sizeof cfg.method, "%s", method);
    snprintf(cfg.maskrkr_source, sizeof cfg.maskrkr_source, "%s", source);
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
    static const char *const names[] = {"base", "task-01", "task-02", "task-03", "state"};
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, names[i]);
        fuzz_write(path, data, size);
    }
    snprintf(path, sizeof path, "%s/base.safetensors", dir);
    as_any_file(path);
    clv_err err = {{0}};
    int rc = clv_ckpt_load_backbone(path, model, &err);
    fuzz_check_err(rc, &err);
    as_task_files(dir, "rkr", "first");
    as_task_files(dir, "piggyback", "first");
    as_task_files(dir, "maskrkr", "first");
    as_task_files(dir, "maskrkr", "random");
    as_state(dir);
    return 0;
}
