/* The registry of named backbone configurations (clv_model_create).
 *
 * One table row per name: its one-line summary, the family's constructor and
 * the family's own configuration struct. A new family (Swin, ResNet) is a new
 * file with a constructor plus its rows here; nothing else changes. The
 * summaries are written out so that listing models builds none of them;
 * tests/test_vit.c checks each against the summary of the built model. */
#include "clvit/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    const char *name;
    const char *summary;
    clv_model *(*create)(const char *name, const void *cfg, clv_err *err);
    const void *cfg;
} entry;

static clv_model *make_vit(const char *name, const void *cfg, clv_err *err) { return clv_vit_create(name, cfg, err); }
static clv_model *make_resnet(const char *name, const void *cfg, clv_err *err)
{
    return clv_resnet_create(name, cfg, err);
}

/*                                        img patch in  dim depth heads mlp  ln_eps */
static const clv_vit_config vit_nano_p4_32 = {32, 4, 3, 64, 4, 2, 256, 1e-6f};
static const clv_vit_config vit_tiny_p4_32 = {32, 4, 3, 192, 12, 3, 768, 1e-6f};
static const clv_vit_config vit_tiny_p16_224 = {224, 16, 3, 192, 12, 3, 768, 1e-6f};
static const clv_vit_config vit_small_p16_224 = {224, 16, 3, 384, 12, 6, 1536, 1e-6f};
static const clv_vit_config vit_base_p16_224 = {224, 16, 3, 768, 12, 12, 3072, 1e-6f};

/*                                          img in stem widths                blocks      bn_eps */
static const clv_resnet_config resnet18_224 = {224, 3, 7, {64, 128, 256, 512}, {2, 2, 2, 2}, 1e-5f};
static const clv_resnet_config resnet18_c32 = {32, 3, 3, {64, 128, 256, 512}, {2, 2, 2, 2}, 1e-5f};
static const clv_resnet_config resnet_nano_c32 = {32, 3, 3, {16, 32, 64, 128}, {1, 1, 1, 1}, 1e-5f};

/*                                        img patch in dim window stages depths        heads */
static const clv_swin_config swin_tiny_p4_w7_224 = {224, 4, 3, 96, 7, 4, {2, 2, 6, 2}, {3, 6, 12, 24}};
static const clv_swin_config swin_nano_p2_w4_32 = {32, 2, 3, 32, 4, 3, {2, 2, 2, 0}, {2, 4, 8, 0}};

static clv_model *make_swin(const char *name, const void *cfg, clv_err *err) { return clv_swin_create(name, cfg, err); }

static const entry entries[] = {
    {"vit_nano_patch4_32", "ViT dim 64 depth 4 heads 2 patch 4 32x32, 207K params", make_vit, &vit_nano_p4_32},
    {"vit_tiny_patch4_32", "ViT dim 192 depth 12 heads 3 patch 4 32x32, 5.4M params", make_vit, &vit_tiny_p4_32},
    {"vit_tiny_patch16_224", "ViT dim 192 depth 12 heads 3 patch 16 224x224, 5.5M params", make_vit,
     &vit_tiny_p16_224},
    {"vit_small_patch16_224", "ViT dim 384 depth 12 heads 6 patch 16 224x224, 21.7M params", make_vit,
     &vit_small_p16_224},
    {"vit_base_patch16_224", "ViT dim 768 depth 12 heads 12 patch 16 224x224, 85.8M params", make_vit,
     &vit_base_p16_224},
    {"swin_nano_patch2_window4_32", "Swin dim 32 depths 2-2-2 heads 2-4-8 window 4 patch 2 32x32, 566K params",
     make_swin, &swin_nano_p2_w4_32},
    {"swin_tiny_patch4_window7_224",
     "Swin dim 96 depths 2-2-6-2 heads 3-6-12-24 window 7 patch 4 224x224, 27.5M params", make_swin,
     &swin_tiny_p4_w7_224},
    {"resnet_nano_cifar", "ResNet 3x3 stem, widths 16-32-64-128, blocks 1-1-1-1, 32x32, 308K params", make_resnet,
     &resnet_nano_c32},
    {"resnet18_cifar", "ResNet 3x3 stem, widths 64-128-256-512, blocks 2-2-2-2, 32x32, 11.2M params", make_resnet,
     &resnet18_c32},
    {"resnet18", "ResNet 7x7+pool stem, widths 64-128-256-512, blocks 2-2-2-2, 224x224, 11.2M params",
     make_resnet, &resnet18_224},
};

#define N_ENTRIES ((int)(sizeof entries / sizeof entries[0]))

int clv_model_registry_count(void) { return N_ENTRIES; }

const char *clv_model_registry_name(int i) { return i >= 0 && i < N_ENTRIES ? entries[i].name : NULL; }

const char *clv_model_registry_summary(int i) { return i >= 0 && i < N_ENTRIES ? entries[i].summary : NULL; }

clv_model *clv_model_create(const char *name, clv_err *err)
{
    for (int i = 0; name && i < N_ENTRIES; i++)
        if (strcmp(entries[i].name, name) == 0) {
            clv_model *m = entries[i].create(name, entries[i].cfg, err);
            if (m)
                m->training = 1;
            return m;
        }
    char known[CLV_ERR_LEN / 2];
    size_t len = 0;
    known[0] = '\0';
    for (int i = 0; i < N_ENTRIES && len < sizeof known; i++) {
        int n = snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", entries[i].name);
        if (n < 0)
            break;
        len += (size_t)n;
    }
    clv_errf(err, "unknown model '%s' (known: %s)", name ? name : "(null)", known);
    return NULL;
}

void clv_model_free(clv_model *m)
{
    if (!m)
        return;
    clv_compute *c = m->compute; /* the family's free frees m */
    m->ops->free(m);
    clv_compute_free(c);
}

int clv_model_set_precision(clv_model *m, clv_precision p, int emulate, clv_err *err)
{
    clv_compute *c = NULL;
    if (p != CLV_PRECISION_FP32 && !(c = clv_compute_create(p, emulate, err)))
        return -1;
    clv_compute_free(m->compute);
    m->compute = c;
    for (int i = 0; i < m->n_wlayers; i++)
        m->wlayers[i]->compute = c;
    return 0;
}
