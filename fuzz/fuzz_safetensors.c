/* libFuzzer harness: safetensors files (src/io/safetensors.c). The input is
 * read as any safetensors file (every float tensor converted, the listing
 * of clvit inspect in text and JSON, the mean/std metadata), then as a base
 * file or --weights: loaded into a vit_nano_patch4_32 backbone (built once).
 * Task and state files: fuzz_checkpoint.c. */
#include "fuzz_util.h"

#include "clvit/checkpoint.h"
#include "clvit/safetensors.h"

#define MODEL "vit_nano_patch4_32"

static FILE *devnull;
static clv_model *model;

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    const char *dir = fuzz_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/base.safetensors", dir);
    fuzz_write(path, data, size);
    as_any_file(path);
    clv_err err = {{0}};
    int rc = clv_ckpt_load_backbone(path, model, &err);
    fuzz_check_err(rc, &err);
    return 0;
}
