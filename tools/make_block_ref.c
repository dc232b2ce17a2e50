/* Writes tests/fixtures/block_ref.safetensors: the features, every parameter
 * gradient and the input gradient of two small ViTs and Swins as the
 * hand-written drivers computed them before the shared transformer block
 * (main at c553e80, built with `make BUILD=build-main`), so test_block.c can
 * hold the shared block to them. Run once against that build:
 *   gcc -std=gnu11 -O2 -fopenmp -Iinclude tools/make_block_ref.c build-main/libclvit.a \
 *       -ldnnl -lcjson -linih -lpng16 -lz -ljpeg -lcairo -lpthread -lm -o /tmp/make_block_ref
 *   OMP_NUM_THREADS=1 /tmp/make_block_ref tests/fixtures/block_ref.safetensors
 * Regenerating it with a later build only restates that build's numbers. */
#include "clvit/model.h"
#include "clvit/safetensors.h"

#include <stdio.h>
#include <stdlib.h>

/* a fixed pseudo-random sequence in [-1, 1) (no dependence on the library's RNG) */
static void fill(float *p, int64_t n, uint32_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 8) / 8388608.0 - 1.0);
    }
}

static int dump(clv_st_writer *w, clv_model *m, const char *tag, int64_t B, clv_err *err)
{
    char name[256];
    const int64_t nx = B * m->info.in_chans * m->info.img_size * m->info.img_size, F = B * m->info.feat_dim;
    float *x = malloc((size_t)nx * sizeof *x), *dx = calloc((size_t)nx, sizeof *dx);
    float *feats = malloc((size_t)F * sizeof *feats), *df = malloc((size_t)F * sizeof *df);
    float *inf = malloc((size_t)F * sizeof *inf);
    fill(x, nx, 1), fill(df, F, 2);
    m->ops->init(m, 7);
    for (int i = 0; i < m->params.count; i++)
        if (clv_param_set_trainable(m->params.items[i], 1, err))
            return -1;
    clv_params_zero_grad(&m->params);
    m->training = 1;
    if (m->ops->forward(m, x, B, feats, err) || m->ops->backward(m, df, dx, err))
        return -1;
    m->training = 0;
    if (m->ops->forward(m, x, B, inf, err))
        return -1;
    const int64_t sx[1] = {nx}, sf[1] = {F};
    snprintf(name, sizeof name, "%s.feats", tag);
    if (clv_st_writer_add(w, name, CLV_DT_F32, 1, sf, feats, err))
        return -1;
    snprintf(name, sizeof name, "%s.infer_feats", tag);
    if (clv_st_writer_add(w, name, CLV_DT_F32, 1, sf, inf, err))
        return -1;
    snprintf(name, sizeof name, "%s.grad.x", tag);
    if (clv_st_writer_add(w, name, CLV_DT_F32, 1, sx, dx, err))
        return -1;
    for (int i = 0; i < m->params.count; i++) {
        const clv_param *p = m->params.items[i];
        snprintf(name, sizeof name, "%s.grad.%s", tag, p->name);
        if (clv_st_writer_add(w, name, CLV_DT_F32, p->ndim, p->shape, p->grad, err))
            return -1;
    }
    return 0; /* the writer copies nothing: the buffers stay alive until the file is written */
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT.safetensors\n", argv[0]);
        return 2;
    }
    clv_err err = {{0}};
    /* keep in step with test_block.c */
    const clv_vit_config vc = {8, 2, 3, 16, 3, 2, 32, 1e-6f};
    const clv_swin_config sc = {16, 2, 3, 8, 2, 3, {2, 2, 1, 0}, {2, 2, 4, 0}};
    clv_model *v = clv_vit_create("vit_ref", &vc, &err), *s = v ? clv_swin_create("swin_ref", &sc, &err) : NULL;
    clv_st_writer *w = clv_st_writer_new();
    if (!v || !s || !w || dump(w, v, "vit", 3, &err) || dump(w, s, "swin", 2, &err) ||
        clv_st_writer_write(w, argv[1], &err)) {
        fprintf(stderr, "make_block_ref: %s\n", err.msg);
        return 1;
    }
    return 0;
}
