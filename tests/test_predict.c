/* predict agrees with PyTorch: timm-named weights written to a safetensors
 * file (mean/std in its metadata), PNG images decoded, padded, normalized,
 * classified; logits within 1e-4 of tools/make_predict_fixtures.py's. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clvit/predictor.h"
#include "clvit/safetensors.h"
#include "vit_formula.h"

#define DIR "tests/fixtures/predict"

static void write_weights(const char *path, int with_norm, int with_head)
{
    clv_err err = {{0}};
    clv_model *m = clv_model_create("vit_nano_patch4_32", &err);
    cr_assert_not_null(m, "%s", err.msg);
    clv_head h;
    cr_assert_eq(clv_head_init(&h, 64, 10, 0, 0, &err), 0, "%s", err.msg);
    vit_formula_fill(m, &h);
    clv_st_writer *w = clv_st_writer_new();
    cr_assert_not_null(w);
    for (int i = 0; i < m->params.count; i++)
        cr_assert_eq(clv_st_writer_add_param(w, m->params.items[i], NULL, &err), 0, "%s", err.msg);
    for (int i = 0; with_head && i < h.params.count; i++)
        cr_assert_eq(clv_st_writer_add_param(w, h.params.items[i], NULL, &err), 0, "%s", err.msg);
    if (with_norm) {
        cr_assert_eq(clv_st_writer_meta(w, "mean", "[0.5071, 0.4865, 0.4409]", &err), 0);
        cr_assert_eq(clv_st_writer_meta(w, "std", "[0.2673, 0.2564, 0.2762]", &err), 0);
    }
    cr_assert_eq(clv_st_writer_write(w, path, &err), 0, "%s", err.msg);
    clv_st_writer_free(w);
    clv_head_free(&h);
    clv_model_free(m);
}

static void present_file(const clv_present *pr, const char *path, float *x)
{
    clv_err err = {{0}};
    uint8_t *px = NULL;
    int h, w, c;
    cr_assert_eq(clv_image_read(path, &px, &h, &w, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_present_image(pr, px, h, w, c, x, &err), 0, "%s", err.msg);
    clv_free(px);
}

Test(predict, weights_file_agrees_with_pytorch)
{
    char path[] = "/tmp/clvit-predict-XXXXXX.safetensors";
    int fd = mkstemps(path, 12);
    cr_assert_geq(fd, 0);
    close(fd);
    write_weights(path, 1, 1);

    clv_err err = {{0}};
    clv_predictor *p = clv_predictor_from_weights("vit_nano_patch4_32", path, NULL, NULL, &err);
    cr_assert_not_null(p, "%s", err.msg);
    cr_assert_eq(clv_predictor_classes(p, 0), 10, "classes from head.weight's shape");
    const clv_present *pr = clv_predictor_present(p);
    cr_assert_float_eq(pr->mean[1], 0.4865f, 1e-7, "mean from the metadata");
    cr_assert_float_eq(pr->std[2], 0.2762f, 1e-7, "std from the metadata");
    static float x[2 * 3 * 32 * 32];
    present_file(pr, DIR "/gray28.png", x);
    present_file(pr, DIR "/rgb32.png", x + 3 * 32 * 32);
    float logits[20];
    cr_assert_eq(clv_predictor_logits(p, 0, x, 2, logits, &err), 0, "%s", err.msg);

    clv_safetensors st;
    cr_assert_eq(clv_st_open(&st, DIR "/expected.safetensors", &err), 0, "%s", err.msg);
    const clv_st_tensor *t = clv_st_find(&st, "logits");
    cr_assert_not_null(t);
    float ref[20];
    cr_assert_eq(clv_st_read_f32(&st, t, ref, 20, &err), 0, "%s", err.msg);
    for (int i = 0; i < 20; i++)
        cr_expect(fabsf(logits[i] - ref[i]) < 1e-4f, "logit %d: %.6f, PyTorch %.6f", i, logits[i], ref[i]);
    clv_st_close(&st);
    clv_predictor_free(p);
    unlink(path);
}

Test(predict, weights_without_head_are_refused)
{
    char path[] = "/tmp/clvit-predict-XXXXXX.safetensors";
    int fd = mkstemps(path, 12);
    cr_assert_geq(fd, 0);
    close(fd);
    write_weights(path, 0, 0);
    clv_err err = {{0}};
    clv_predictor *p = clv_predictor_from_weights("vit_nano_patch4_32", path, NULL, NULL, &err);
    cr_assert_null(p);
    cr_assert(strstr(err.msg, path) && strstr(err.msg, "head.weight"), "%s", err.msg);
    p = clv_predictor_from_weights("vit_tiny_patch4_32", path, NULL, NULL, &err);
    cr_assert_null(p, "a nano file does not load into a tiny model");
    cr_assert(strstr(err.msg, path), "names the file: %s", err.msg);
    unlink(path);
}

Test(predict, missing_run_is_an_error)
{
    clv_err err = {{0}};
    clv_predictor *p = clv_predictor_from_run("/nonexistent/run", &err);
    cr_assert_null(p);
    cr_assert(strstr(err.msg, "/nonexistent/run"), "%s", err.msg);
}
