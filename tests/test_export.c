/* clvit export (clvit/export.h): a task exported from a tiny run, loaded
 * back as a plain weights file (no adapter, no method), gives the logits
 * of the run's own task within 1e-4: every method on ViT, and rkr,
 * piggyback and maskrkr on Swin and ResNet (also with task norms); the
 * names are today's timm's (Swin: head.fc and patch merging opening stages
 * 1..S-1; ResNet: fc and num_batches_tracked). PyTorch's side, the strict
 * load into the reference modules, is tools/check_export_vs_torch.py
 * (make check-torch). */
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/export.h"
#include "clvit/predictor.h"
#include "clvit/safetensors.h"
#include "clvit/trainer.h"
#include "tmp_tree.h"
#include "tiny_run.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

static void logits_of(clv_predictor *p, int task, const float *x, int64_t B, float *out)
{
    clv_err err = {{0}};
    cr_assert_eq(clv_predictor_logits(p, task, x, B, out, &err), 0, "%s", err.msg);
}

static void has_tensor(const clv_safetensors *st, const char *name, int want)
{
    cr_assert_eq(clv_st_find(st, name) != NULL, want, "%s: %s %s", st->path, name, want ? "missing" : "unexpected");
}

static void round_trip(const char *method, const char *model, int task_norms)
{
    if (access(FMNIST, R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    char dir[] = "/tmp/clvit-export-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char run[64], file[96];
    snprintf(run, sizeof run, "%s/run", dir);
    clv_config c;
    tiny_run_config(&c, method, 2);
    snprintf(c.model, sizeof c.model, "%s", model);
    c.task_norms = task_norms;
    clv_train_opts o = {.out_dir = run, .overwrite = 1};
    clv_err err = {{0}};
    cr_assert_eq(clv_train_run(&c, &o, &err), 0, "%s on %s: %s", method, model, err.msg);
    clv_predictor *p = clv_predictor_from_run(run, &err);
    cr_assert_not_null(p, "%s", err.msg);
    const clv_present *pr = clv_predictor_present(p);
    const int64_t B = 3, per = (int64_t)pr->out_c * pr->out_h * pr->out_w;
    float *x = malloc((size_t)(B * per) * sizeof *x), want[3 * 16], got[3 * 16];
    for (int64_t i = 0; i < B * per; i++)
        x[i] = sinf(0.011f * (float)i) + 0.3f * cosf(0.17f * (float)(i % 97));
    for (int t = 0; t < 2; t++) {
        snprintf(file, sizeof file, "%s/task%d.safetensors", dir, t + 1);
        clv_export_info info;
        cr_assert_eq(clv_export_task(run, t, file, &info, &err), 0, "%s", err.msg);
        cr_assert_eq(info.classes, clv_predictor_classes(p, t));
        const int adapts = strcmp(method, "finetune") && strcmp(method, "linear") && strcmp(method, "independent");
        cr_assert_eq(info.adapted > 0, adapts, "%s: %d layers adapted", method, info.adapted);
        logits_of(p, t, x, B, want);
        clv_predictor *q = clv_predictor_from_weights(model, file, NULL, NULL, &err);
        cr_assert_not_null(q, "%s", err.msg);
        cr_assert_eq(clv_predictor_classes(q, 0), info.classes);
        logits_of(q, 0, x, B, got);
        for (int i = 0; i < B * info.classes; i++)
            cr_expect(fabsf(got[i] - want[i]) < 1e-4f, "%s on %s%s, task %d, logit %d: exported %.6f, run %.6f",
                      method, model, task_norms ? " (task norms)" : "", t + 1, i, got[i], want[i]);
        clv_predictor_free(q);
        clv_safetensors st;
        cr_assert_eq(clv_st_open(&st, file, &err), 0, "%s", err.msg);
        cr_assert_str_eq(clv_st_meta(&st, "method"), method);
        cr_assert_not_null(clv_st_meta(&st, "mean"));
        cr_assert_not_null(clv_st_meta(&st, "class_names"), "Fashion-MNIST's names");
        if (!strncmp(model, "swin", 4)) {
            has_tensor(&st, "head.fc.weight", 1);
            has_tensor(&st, "layers.1.downsample.reduction.weight", 1);
            has_tensor(&st, "layers.0.downsample.reduction.weight", 0);
        } else if (!strncmp(model, "resnet", 6)) {
            has_tensor(&st, "fc.weight", 1);
            has_tensor(&st, "layer1.0.bn1.num_batches_tracked", 1);
        } else {
            has_tensor(&st, "head.weight", 1);
            has_tensor(&st, "cls_token", 1);
        }
        clv_st_close(&st);
    }
    free(x);
    clv_predictor_free(p);
    tmp_tree_remove(dir);
}

Test(export, vit_every_method, .timeout = 300)
{
    static const char *methods[] = {"finetune", "linear", "independent", "rkr", "piggyback", "maskrkr"};
    for (int i = 0; i < 6; i++)
        round_trip(methods[i], "vit_nano_patch4_32", 0);
}

Test(export, swin_rkr_piggyback_maskrkr, .timeout = 300)
{
    round_trip("rkr", "swin_nano_patch2_window4_32", 0);
    round_trip("piggyback", "swin_nano_patch2_window4_32", 0);
    round_trip("maskrkr", "swin_nano_patch2_window4_32", 0);
}

Test(export, resnet_rkr_piggyback_maskrkr_and_task_norms, .timeout = 300)
{
    round_trip("rkr", "resnet_nano_cifar", 0);
    round_trip("piggyback", "resnet_nano_cifar", 0);
    round_trip("maskrkr", "resnet_nano_cifar", 1);
}

Test(export, an_unlearned_task_or_missing_run_is_an_error)
{
    clv_err err = {{0}};
    cr_assert_neq(clv_export_task("/nonexistent/run", 0, "/tmp/x.safetensors", NULL, &err), 0);
    cr_assert(strstr(err.msg, "/nonexistent/run"), "%s", err.msg);
}
