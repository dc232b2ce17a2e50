/* Checkpoint layouts (clvit/ckpt_layout.h): one small Swin saved by
 * tools/make_swin_layout_fixtures.py in timm 0.6's names and in timm >= 0.9's
 * loads from both files and gives PyTorch's logits within 1e-4; each
 * family's layout and head are recognised from the names; variants clvit
 * cannot compute are refused naming the tensor; a --weights base's
 * 1000-class head is dropped, a weights file's serves predict. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/checkpoint.h"
#include "clvit/ckpt_layout.h"
#include "clvit/model.h"
#include "clvit/predictor.h"
#include "clvit/safetensors.h"

#define DIR "tests/fixtures/layout"
static const clv_swin_config tiny_cfg = {16, 2, 3, 4, 4, 3, {2, 2, 2}, {1, 2, 4}};

static void logits_of(const char *path, const float *x, int64_t B, float *logits, int *classes)
{
    clv_err err = {{0}};
    clv_model *m = clv_swin_create("swin_layout_fixture", &tiny_cfg, &err);
    cr_assert_not_null(m, "%s", err.msg);
    m->training = 0;
    cr_assert_eq(clv_ckpt_load_backbone(path, m, &err), 0, "%s", err.msg);
    clv_safetensors st;
    cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
    clv_head h = {0};
    cr_assert_eq(clv_ckpt_layout_load_head(&st, NULL, m->info.feat_dim, &h, &err), 0, "%s", err.msg);
    clv_st_close(&st);
    float *feats = calloc((size_t)(B * m->info.feat_dim), sizeof *feats);
    cr_assert_eq(m->ops->forward(m, x, B, feats, &err), 0, "%s", err.msg);
    clv_head_forward(&h, logits, feats, B);
    *classes = h.classes;
    free(feats);
    clv_head_free(&h);
    clv_model_free(m);
}

Test(ckpt_layout, both_swin_layouts_load_and_agree_with_pytorch)
{
    clv_err err = {{0}};
    clv_safetensors ref;
    cr_assert_eq(clv_st_open(&ref, DIR "/expected.safetensors", &err), 0, "%s", err.msg);
    float x[3 * 3 * 16 * 16], want[15], got[15];
    cr_assert_eq(clv_st_read_f32(&ref, clv_st_find(&ref, "x"), x, 3 * 3 * 16 * 16, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_st_read_f32(&ref, clv_st_find(&ref, "logits"), want, 15, &err), 0, "%s", err.msg);
    clv_st_close(&ref);
    const char *files[] = {DIR "/swin_06.safetensors", DIR "/swin_09.safetensors"};
    for (int f = 0; f < 2; f++) {
        int classes = 0;
        logits_of(files[f], x, 3, got, &classes);
        cr_assert_eq(classes, 5, "%s: the head's class count", files[f]);
        for (int i = 0; i < 15; i++)
            cr_expect(fabsf(got[i] - want[i]) < 1e-4f, "%s: logit %d: %.6f, PyTorch %.6f", files[f], i, got[i],
                      want[i]);
    }
}

Test(ckpt_layout, swin_layouts_are_recognised_from_the_names)
{
    clv_err err = {{0}};
    clv_safetensors st;
    clv_ckpt_layout l;
    cr_assert_eq(clv_st_open(&st, DIR "/swin_06.safetensors", &err), 0, "%s", err.msg);
    clv_ckpt_layout_of_file(&st, &l);
    clv_st_close(&st);
    cr_assert_eq(l.kind, CLV_LAYOUT_SWIN_06);
    cr_assert_str_eq(l.head_weight, "head.weight");
    cr_assert_eq(l.swin_stages, 3);
    cr_assert_eq(l.n_buffers, 7, "6 relative_position_index + 1 attn_mask");
    cr_assert_eq(clv_st_open(&st, DIR "/swin_09.safetensors", &err), 0, "%s", err.msg);
    clv_ckpt_layout_of_file(&st, &l);
    clv_st_close(&st);
    cr_assert_eq(l.kind, CLV_LAYOUT_SWIN_09);
    cr_assert_str_eq(l.head_weight, "head.fc.weight");
    cr_assert_eq(l.head_classes, 5);
    cr_assert_eq(l.head_in, 16);
    /* the renaming between them, both ways */
    clv_ckpt_layout l06 = {.kind = CLV_LAYOUT_SWIN_06}, l09 = {.kind = CLV_LAYOUT_SWIN_09};
    char buf[64];
    cr_assert_str_eq(clv_ckpt_layout_rename(&l09, &l06, "layers.2.downsample.norm.bias", buf, sizeof buf),
                     "layers.3.downsample.norm.bias");
    cr_assert_str_eq(clv_ckpt_layout_rename(&l06, &l09, "layers.1.downsample.reduction.weight", buf, sizeof buf),
                     "layers.0.downsample.reduction.weight");
    cr_assert_str_eq(clv_ckpt_layout_rename(&l09, &l06, "layers.1.blocks.0.norm1.weight", buf, sizeof buf),
                     "layers.1.blocks.0.norm1.weight");
}

/* A file of zeros under the given names (shape [n] each, [classes, in] for *head*weight). */
static void write_names(const char *path, const char *const *names, int n, int64_t classes, int64_t in)
{
    clv_err err = {{0}};
    static float zeros[4096];
    clv_st_writer *w = clv_st_writer_new();
    cr_assert_not_null(w);
    for (int i = 0; i < n; i++) {
        int64_t shape[2] = {4, 0};
        int nd = 1;
        if (strstr(names[i], "weight") && (strstr(names[i], "head") || !strncmp(names[i], "fc.", 3)))
            shape[0] = classes, shape[1] = in, nd = 2;
        cr_assert_eq(clv_st_writer_add(w, names[i], CLV_DT_F32, nd, shape, zeros, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(clv_st_writer_write(w, path, &err), 0, "%s", err.msg);
    clv_st_writer_free(w);
}

static clv_ckpt_layout layout_of_names(const char *const *names, int n)
{
    char path[] = "/tmp/clvit-layout-XXXXXX.safetensors";
    int fd = mkstemps(path, 12);
    cr_assert_geq(fd, 0);
    close(fd);
    write_names(path, names, n, 10, 8);
    clv_err err = {{0}};
    clv_safetensors st;
    cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
    clv_ckpt_layout l;
    clv_ckpt_layout_of_file(&st, &l);
    clv_st_close(&st);
    unlink(path);
    return l;
}

Test(ckpt_layout, other_families_and_their_variants)
{
    const char *vit[] = {"cls_token", "pos_embed", "blocks.0.attn.qkv.weight", "norm.weight", "head.weight",
                         "head.bias"};
    clv_ckpt_layout l = layout_of_names(vit, 6);
    cr_assert_eq(l.kind, CLV_LAYOUT_VIT);
    cr_assert_str_eq(l.head_weight, "head.weight");
    cr_assert_eq(l.unsupported[0], 0, "%s", l.unsupported);

    const char *mae[] = {"cls_token", "pos_embed", "blocks.0.attn.qkv.weight", "fc_norm.weight", "head.weight"};
    l = layout_of_names(mae, 5);
    cr_assert(strstr(l.unsupported, "fc_norm") && strstr(l.unsupported, "avg"), "%s", l.unsupported);
    const char *deit3[] = {"cls_token", "pos_embed", "blocks.0.ls1.gamma", "norm.weight"};
    l = layout_of_names(deit3, 4);
    cr_assert(strstr(l.unsupported, "blocks.0.ls1.gamma"), "%s", l.unsupported);

    const char *tv[] = {"conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer1.0.bn1.num_batches_tracked",
                        "fc.weight", "fc.bias"};
    l = layout_of_names(tv, 6);
    cr_assert_eq(l.kind, CLV_LAYOUT_RESNET);
    cr_assert_str_eq(l.head_weight, "fc.weight");
    cr_assert_eq(l.n_buffers, 1);
    const char *r50[] = {"conv1.weight", "layer1.0.conv1.weight", "layer1.0.conv3.weight"};
    l = layout_of_names(r50, 3);
    cr_assert(strstr(l.unsupported, "bottleneck"), "%s", l.unsupported);

    const char *mixed[] = {"layers.0.blocks.0.norm1.weight", "layers.0.downsample.norm.weight",
                           "layers.1.blocks.0.norm1.weight", "head.fc.weight"};
    l = layout_of_names(mixed, 4);
    cr_assert(strstr(l.unsupported, "mixes"), "%s", l.unsupported);
    const char *v2[] = {"layers.0.blocks.0.attn.logit_scale", "layers.0.blocks.0.norm1.weight"};
    l = layout_of_names(v2, 2);
    cr_assert(strstr(l.unsupported, "Swin V2"), "%s", l.unsupported);
}

Test(ckpt_layout, unsupported_or_foreign_files_are_refused_naming_them)
{
    char path[] = "/tmp/clvit-layout-XXXXXX.safetensors";
    int fd = mkstemps(path, 12);
    cr_assert_geq(fd, 0);
    close(fd);
    const char *mae[] = {"cls_token", "pos_embed", "blocks.0.attn.qkv.weight", "fc_norm.weight"};
    write_names(path, mae, 4, 10, 8);
    clv_err err = {{0}};
    clv_model *m = clv_model_create("vit_nano_patch4_32", &err);
    cr_assert_not_null(m, "%s", err.msg);
    cr_assert_neq(clv_ckpt_load_backbone(path, m, &err), 0);
    cr_assert(strstr(err.msg, path) && strstr(err.msg, "fc_norm"), "%s", err.msg);
    clv_model_free(m);
    /* a Swin file into a ViT: the families are named */
    m = clv_model_create("vit_nano_patch4_32", &err);
    cr_assert_neq(clv_ckpt_load_backbone(DIR "/swin_09.safetensors", m, &err), 0);
    cr_assert(strstr(err.msg, "swin") && strstr(err.msg, "vit_nano_patch4_32 is a vit"), "%s", err.msg);
    clv_model_free(m);
    unlink(path);
}

/* swin_nano's random weights written under timm >= 0.9's names with a
 * 1000-class head.fc: a --weights base drops the head, predict uses it. */
Test(ckpt_layout, a_1000_class_timm09_head_serves_predict_and_is_dropped_from_a_base)
{
    clv_err err = {{0}};
    const char *name = "swin_nano_patch2_window4_32";
    clv_model *m = clv_model_create(name, &err);
    cr_assert_not_null(m, "%s", err.msg);
    m->ops->init(m, 11);
    clv_head h = {0};
    cr_assert_eq(clv_head_init(&h, m->info.feat_dim, 1000, 3, 0, &err), 0, "%s", err.msg);
    clv_ckpt_layout own, l09 = {.kind = CLV_LAYOUT_SWIN_09};
    clv_ckpt_layout_of_model(m, &own);
    cr_assert_eq(own.kind, CLV_LAYOUT_SWIN_06, "clvit's Swin keeps timm 0.6's names");
    clv_st_writer *w = clv_st_writer_new();
    char names[256][96];
    cr_assert_lt(m->params.count, 256);
    for (int i = 0; i < m->params.count; i++) {
        const clv_param *p = m->params.items[i];
        clv_ckpt_layout_rename(&l09, &own, p->name, names[i], sizeof names[i]);
        cr_assert_eq(clv_st_writer_add(w, names[i], CLV_DT_F32, p->ndim, p->shape, p->data, &err), 0, "%s", err.msg);
    }
    const clv_param *hw = h.params.items[0], *hb = h.params.items[1];
    cr_assert_eq(clv_st_writer_add(w, "head.fc.weight", CLV_DT_F32, 2, hw->shape, hw->data, &err), 0);
    cr_assert_eq(clv_st_writer_add(w, "head.fc.bias", CLV_DT_F32, 1, hb->shape, hb->data, &err), 0);
    char path[] = "/tmp/clvit-layout-XXXXXX.safetensors";
    int fd = mkstemps(path, 12);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(clv_st_writer_write(w, path, &err), 0, "%s", err.msg);
    clv_st_writer_free(w);

    /* a base: the backbone loads renamed, the head is not a parameter of it */
    clv_model *base = clv_model_create(name, &err);
    cr_assert_eq(clv_ckpt_load_weights(path, base, &err), 0, "%s", err.msg);
    for (int i = 0; i < m->params.count; i++)
        cr_assert_eq(memcmp(base->params.items[i]->data, m->params.items[i]->data,
                            (size_t)m->params.items[i]->numel * sizeof(float)),
                     0, "%s", m->params.items[i]->name);
    clv_model_free(base);

    /* predict: 1000 classes, logits = head(features) of the same weights */
    float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.25f, 0.25f, 0.25f};
    clv_predictor *p = clv_predictor_from_weights(name, path, mean, std, &err);
    cr_assert_not_null(p, "%s", err.msg);
    cr_assert_eq(clv_predictor_classes(p, 0), 1000);
    static float x[2 * 3 * 32 * 32], feats[2 * 256], want[2000], got[2000];
    for (int i = 0; i < 2 * 3 * 32 * 32; i++)
        x[i] = sinf(0.37f * (float)i);
    cr_assert_eq(clv_predictor_logits(p, 0, x, 2, got, &err), 0, "%s", err.msg);
    m->training = 0;
    cr_assert_leq(m->info.feat_dim, 256);
    cr_assert_eq(m->ops->forward(m, x, 2, feats, &err), 0, "%s", err.msg);
    clv_head_forward(&h, want, feats, 2);
    for (int i = 0; i < 2000; i++)
        cr_expect(fabsf(got[i] - want[i]) < 1e-4f, "logit %d: %.6f, want %.6f", i, got[i], want[i]);
    clv_predictor_free(p);
    clv_head_free(&h);
    clv_model_free(m);
    unlink(path);
}
