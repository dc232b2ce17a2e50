/* The method adapters on one weight layer: forwards against their
 * definitions, finite-difference gradient checks of RKR's LM, RM, F (also
 * as Mask-RKR's shared tensors), the straight-through gradients of the
 * Piggyback and Mask-RKR scores against their formulas, the low-rank path
 * against the full dW, and bit-packed masks. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/adapters.h"
#include "clvit/gemm.h"
#include "clvit/kernels.h"
#include "clvit/precision.h"
#include "adapt/task_adapter.h"
#include "gradcheck.h"

enum { OUT = 6, IN = 7, N = 5, K = 2 };

typedef struct {
    clv_wlayer l;
    clv_params base;
    float x[N * IN], y[N * OUT], r[N * OUT], dx[N * IN];
    clv_arena scratch; /* the weight layers' backward scratch */
} layer_fixture;

static void fixture_init(layer_fixture *f, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    clv_params_init(&f->base);
    clv_err err = {{0}};
    int64_t ws[2] = {OUT, IN}, bs[1] = {OUT};
    snprintf(f->l.name, sizeof f->l.name, "blocks.0.mlp.fc1");
    f->l.out = OUT;
    f->l.in = IN;
    f->l.weight = clv_params_add(&f->base, "blocks.0.mlp.fc1.weight", 2, ws, &err);
    f->l.bias = clv_params_add(&f->base, "blocks.0.mlp.fc1.bias", 1, bs, &err);
    gradcheck_fill(f->l.weight->data, OUT * IN, seed, -1, 1);
    gradcheck_fill(f->l.bias->data, OUT, seed + 1, -0.5f, 0.5f);
    gradcheck_fill(f->x, N * IN, seed + 2, -1, 1);
    gradcheck_fill(f->r, N * OUT, seed + 3, -1, 1);
}

static void fixture_free(layer_fixture *f)
{
    clv_wlayer_release(&f->l);
    clv_arena_free(&f->scratch);
    clv_params_free(&f->base);
}

static double loss(void *ctx)
{
    layer_fixture *f = ctx;
    if (f->l.adapter)
        f->l.adapter->ops->invalidate(f->l.adapter);
    clv_err err = {{0}};
    cr_assert_eq(clv_wlayer_forward(&f->l, f->y, f->x, N, CLV_WL_TRAIN, &err), 0, "%s", err.msg);
    return gradcheck_dot(f->y, f->r, N * OUT);
}

static void backward(layer_fixture *f)
{
    loss(f);
    memset(f->dx, 0, sizeof f->dx);
    clv_err err = {{0}};
    cr_assert_eq(clv_wlayer_backward(&f->l, f->dx, f->r, f->x, NULL, N, &f->scratch, &err), 0, "%s", err.msg);
}

static void check(float *x, const float *g, int64_t n, layer_fixture *f, const char *what)
{
    gradcheck_opts o = gradcheck_defaults();
    o.eps = 1e-2f;
    gradcheck_result res;
    char buf[160];
    cr_assert_eq(gradcheck_run(x, g, n, loss, f, &o, &res), 0);
    cr_expect_lt(res.max_rel, 1e-2, "%s: %s", what, gradcheck_str(&res, buf, sizeof buf));
}

/* y = (x W_eff^T + b) * s computed directly, in double */
static void reference_forward(const layer_fixture *f, const float *weff, const float *s, double *y)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            double a = f->l.bias->data[o];
            for (int i = 0; i < IN; i++)
                a += (double)f->x[n * IN + i] * weff[o * IN + i];
            y[n * OUT + o] = a * (s ? s[o] : 1.0);
        }
}

/* The base network's weight gradient under a scale (dz = dy * s, never
 * formed): the same as the product with dz formed, to float rounding. */
Test(adapters, identity_backward_with_scale)
{
    layer_fixture f;
    fixture_init(&f, 60);
    clv_err err = {{0}};
    cr_assert_eq(clv_param_set_trainable(f.l.weight, 1, &err), 0, "%s", err.msg);
    float s[OUT], dz[N * OUT], want[OUT * IN];
    gradcheck_fill(s, OUT, 61, 0.5f, 1.5f);
    gradcheck_fill(f.l.weight->grad, OUT * IN, 62, -1, 1);
    memcpy(want, f.l.weight->grad, sizeof want);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++)
            dz[n * OUT + o] = f.r[n * OUT + o] * s[o];
    clv_gemm(1, 0, OUT, IN, N, 1.0f, dz, OUT, f.x, IN, 1.0f, want, IN);
    task_adapter ta = {0};
    const ta_grad src = ta_grad_rows(f.x, f.r, s, N);
    cr_assert_eq(task_adapter_identity_backward(&ta, &f.l, &src, NULL), 0);
    for (int i = 0; i < OUT * IN; i++)
        cr_assert_float_eq(f.l.weight->grad[i], want[i], 1e-5f, "dW[%d]", i);
    task_adapter_release(&ta);
    fixture_free(&f);
}

Test(adapters, mask_bits_round_trip)
{
    const int64_t sizes[] = {1, 7, 8, 9, 63, 64, 65, 1001};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int64_t n = sizes[k];
        float *s = malloc((size_t)n * sizeof *s), *out = malloc((size_t)n * sizeof *out);
        uint8_t *bits = malloc((size_t)clv_mask_bytes(n));
        gradcheck_fill(s, n, 40 + (uint64_t)k, -1, 1);
        clv_mask_pack(bits, s, n, 0.1f);
        int64_t ones = 0;
        for (int64_t i = 0; i < n; i++) {
            cr_assert_eq(clv_mask_bit(bits, i), s[i] > 0.1f, "n %lld bit %lld", (long long)n, (long long)i);
            ones += s[i] > 0.1f;
        }
        cr_assert_eq(clv_mask_count(bits, n), ones);
        if (n % 8)
            cr_assert_eq(bits[n / 8] >> (n % 8), 0, "padding bits are zero");
        clv_mask_apply(out, s, bits, n);
        for (int64_t i = 0; i < n; i++)
            cr_assert_eq(out[i], s[i] > 0.1f ? s[i] : 0.0f);
        /* bit i is bit i % 8 of byte i / 8 */
        if (n >= 9)
            cr_assert_eq((bits[1] & 1) != 0, s[8] > 0.1f);
        free(s);
        free(out);
        free(bits);
    }
}

/* An RKR adapter for 3 tasks on f's layer, task 1 added (rank K) into ps: its LM, RM and F. */
static clv_adapter *rkr_on(layer_fixture *f, clv_params *ps, clv_param **lm, clv_param **rm, clv_param **fs)
{
    clv_err err = {{0}};
    clv_adapter *a = clv_rkr_create(&f->l, 3, CLV_VIEW_OURS, &err);
    cr_assert_not_null(a, "%s", err.msg);
    clv_params_init(ps);
    cr_assert_eq(clv_rkr_add_task(a, &f->l, 1, K, 0, 7, 1e-3f, ps, &err), 0, "%s", err.msg);
    *lm = clv_params_find(ps, "blocks.0.mlp.fc1.lm"), *rm = clv_params_find(ps, "blocks.0.mlp.fc1.rm"),
    *fs = clv_params_find(ps, "blocks.0.mlp.fc1.f");
    cr_assert(*lm && *rm && *fs);
    return a;
}

/* A Mask-RKR adapter for 3 tasks on f's layer (masks on LM, RM and F), its shared task 1 added
 * into shared: the shared LM, RM and F. */
static clv_adapter *maskrkr_on(layer_fixture *f, clv_params *shared, clv_param **lm, clv_param **rm, clv_param **fs)
{
    clv_err err = {{0}};
    clv_adapter *a = clv_maskrkr_create(&f->l, 3, K, 5e-3f, CLV_MASK_LM | CLV_MASK_RM | CLV_MASK_F, CLV_VIEW_OURS, &err);
    cr_assert_not_null(a, "%s", err.msg);
    clv_params_init(shared);
    cr_assert_eq(clv_maskrkr_add_shared(a, &f->l, 1, 1, 9, 0.0f, 1e-3f, shared, &err), 0, "%s", err.msg);
    *lm = clv_maskrkr_shared(a, CLV_MASK_LM), *rm = clv_maskrkr_shared(a, CLV_MASK_RM),
    *fs = clv_maskrkr_shared(a, CLV_MASK_F);
    return a;
}

Test(adapters, rkr_forward_and_gradients)
{
    layer_fixture f;
    fixture_init(&f, 100);
    clv_err err = {{0}};
    clv_params ps;
    clv_param *lm, *rm, *fs;
    clv_adapter *a = rkr_on(&f, &ps, &lm, &rm, &fs);
    cr_assert_eq(ps.count, 3);
    f.l.adapter = a;
    clv_task_adapter_select(a, 1);
    /* as initialized, the task computes exactly the base */
    float base_y[N * OUT];
    clv_linear_forward(base_y, f.x, f.l.weight->data, f.l.bias->data, N, IN, OUT);
    loss(&f);
    cr_assert_eq(memcmp(f.y, base_y, sizeof base_y), 0, "RM = 0, F = 1: the base network");

    gradcheck_fill(lm->data, OUT * K, 1, -0.5f, 0.5f);
    gradcheck_fill(rm->data, K * IN, 2, -0.5f, 0.5f);
    gradcheck_fill(fs->data, OUT, 3, 0.5f, 1.5f);
    loss(&f);
    float weff[OUT * IN];
    for (int o = 0; o < OUT; o++)
        for (int i = 0; i < IN; i++) {
            double v = f.l.weight->data[o * IN + i];
            for (int k = 0; k < K; k++)
                v += (double)lm->data[o * K + k] * rm->data[k * IN + i];
            weff[o * IN + i] = (float)v;
        }
    double ref[N * OUT];
    reference_forward(&f, weff, fs->data, ref);
    for (int i = 0; i < N * OUT; i++)
        cr_assert_float_eq(f.y[i], ref[i], 1e-5, "y[%d]", i);

    clv_params_zero_grad(&ps);
    backward(&f);
    check(lm->data, lm->grad, lm->numel, &f, "dLM");
    check(rm->data, rm->grad, rm->numel, &f, "dRM");
    check(fs->data, fs->grad, fs->numel, &f, "dF");
    check(f.x, f.dx, N * IN, &f, "dx");
    /* a trainable bias under the scale (its gradient is s times dy's column sums) */
    clv_err berr = {{0}};
    cr_assert_eq(clv_param_set_trainable(f.l.bias, 1, &berr), 0, "%s", berr.msg);
    memset(f.l.bias->grad, 0, OUT * sizeof(float));
    backward(&f);
    check(f.l.bias->data, f.l.bias->grad, OUT, &f, "db under the scale");
    cr_assert_eq(clv_param_set_trainable(f.l.bias, 0, &berr), 0, "%s", berr.msg);
    /* _into overwrites dx: the same floats over garbage as the accumulating call over zeros */
    float dx_into[N * IN];
    for (int i = 0; i < N * IN; i++)
        dx_into[i] = 1e30f;
    cr_assert_eq(clv_wlayer_backward_into(&f.l, dx_into, f.r, f.x, NULL, N, &f.scratch, &berr), 0, "%s", berr.msg);
    cr_assert_eq(memcmp(dx_into, f.dx, sizeof dx_into), 0, "clv_wlayer_backward_into overwrites dx");
    clv_params_zero_grad(&ps);
    backward(&f);

    /* the low-rank path equals dW RM^T and LM^T dW with the full dW = dz^T x */
    float dz[N * OUT], dW[OUT * IN];
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++)
            dz[n * OUT + o] = f.r[n * OUT + o] * fs->data[o];
    clv_gemm(1, 0, OUT, IN, N, 1.0f, dz, OUT, f.x, IN, 0.0f, dW, IN);
    for (int o = 0; o < OUT; o++)
        for (int k = 0; k < K; k++) {
            double v = 0;
            for (int i = 0; i < IN; i++)
                v += (double)dW[o * IN + i] * rm->data[k * IN + i];
            cr_assert_float_eq(lm->grad[o * K + k], v, 1e-4, "dLM[%d,%d]", o, k);
        }
    cr_assert_eq(f.l.weight->grad, NULL, "the frozen base gets no gradient buffer");
    cr_assert_eq(clv_rkr_task_floats(a, 1), OUT * K + K * IN + OUT);
    cr_assert_eq(clv_rkr_task_floats(a, 0), 0);
    /* task -1 is the base */
    clv_task_adapter_select(a, -1);
    loss(&f);
    cr_assert_eq(memcmp(f.y, base_y, sizeof base_y), 0);
    cr_assert_eq(clv_rkr_add_task(a, &f.l, 2, 0, 0, 7, 1e-3f, &ps, &err), -1, "rank 0 refused");
    cr_assert(strstr(err.msg, "rank"), "%s", err.msg);
    a->ops->free(a);
    clv_params_free(&ps);
    fixture_free(&f);
}

Test(adapters, piggyback_masks_and_straight_through)
{
    layer_fixture f;
    fixture_init(&f, 200);
    clv_err err = {{0}};
    clv_adapter *a = clv_piggyback_create(&f.l, 2, 5e-3f, &err);
    cr_assert_not_null(a, "%s", err.msg);
    clv_params ps;
    clv_params_init(&ps);
    cr_assert_eq(clv_piggyback_add_task(a, &f.l, 1, 1e-2f, 1e-4f, &ps, &err), 0, "%s", err.msg);
    clv_param *S = ps.items[0];
    cr_assert_str_eq(S->name, "blocks.0.mlp.fc1.scores");
    f.l.adapter = a;
    clv_task_adapter_select(a, 1);
    float base_y[N * OUT];
    clv_linear_forward(base_y, f.x, f.l.weight->data, f.l.bias->data, N, IN, OUT);
    loss(&f);
    cr_assert_eq(memcmp(f.y, base_y, sizeof base_y), 0, "scores at 1e-2 > 5e-3: nothing masked");

    gradcheck_fill(S->data, OUT * IN, 5, -1e-2f, 2e-2f);
    loss(&f);
    float weff[OUT * IN];
    for (int i = 0; i < OUT * IN; i++)
        weff[i] = S->data[i] > 5e-3f ? f.l.weight->data[i] : 0.0f;
    double ref[N * OUT];
    reference_forward(&f, weff, NULL, ref);
    for (int i = 0; i < N * OUT; i++)
        cr_assert_float_eq(f.y[i], ref[i], 1e-5, "y[%d]", i);

    clv_params_zero_grad(&ps);
    backward(&f);
    /* straight-through: dS = dW_t * W, dW_t = dy^T x */
    for (int o = 0; o < OUT; o++)
        for (int i = 0; i < IN; i++) {
            double dw = 0;
            for (int n = 0; n < N; n++)
                dw += (double)f.r[n * OUT + o] * f.x[n * IN + i];
            cr_assert_float_eq(S->grad[o * IN + i], dw * f.l.weight->data[o * IN + i], 1e-5, "dS[%d,%d]", o, i);
        }
    check(f.x, f.dx, N * IN, &f, "dx through the masked weight");

    /* after the task only the bits remain, and they give the same function */
    float before[N * OUT];
    loss(&f);
    memcpy(before, f.y, sizeof before);
    cr_assert_eq(clv_piggyback_freeze(a, &f.l, 1, &err), 0, "%s", err.msg);
    const uint8_t *bits = clv_piggyback_mask(a, 1);
    cr_assert_not_null(bits);
    for (int i = 0; i < OUT * IN; i++)
        cr_assert_eq(clv_mask_bit(bits, i), S->data[i] > 5e-3f);
    loss(&f);
    cr_assert_eq(memcmp(f.y, before, sizeof before), 0, "bit-identical from the packed mask");
    a->ops->free(a);
    clv_params_free(&ps);
    fixture_free(&f);
}

Test(adapters, maskrkr_shared_learning_and_mask_gradients)
{
    layer_fixture f;
    fixture_init(&f, 300);
    clv_err err = {{0}};
    clv_params shared, task2;
    clv_param *lm, *rm, *fs;
    clv_adapter *a = maskrkr_on(&f, &shared, &lm, &rm, &fs);
    clv_params_init(&task2);
    f.l.adapter = a;
    /* task 1 learns the shared tensors as plain RKR: finite differences */
    clv_task_adapter_select(a, 1);
    gradcheck_fill(lm->data, OUT * K, 11, -0.5f, 0.5f);
    gradcheck_fill(rm->data, K * IN, 12, -0.5f, 0.5f);
    gradcheck_fill(fs->data, OUT, 13, 0.5f, 1.5f);
    clv_params_zero_grad(&shared);
    backward(&f);
    check(lm->data, lm->grad, lm->numel, &f, "shared dLM");
    check(rm->data, rm->grad, rm->numel, &f, "shared dRM");
    check(fs->data, fs->grad, fs->numel, &f, "shared dF");
    for (int i = 0; i < shared.count; i++)
        clv_param_set_trainable(shared.items[i], 0, &err);

    /* task 2 masks them */
    cr_assert_eq(clv_maskrkr_add_task(a, &f.l, 2, 1e-2f, 1e-4f, &task2, &err), 0, "%s", err.msg);
    cr_assert_eq(task2.count, 3);
    clv_param *slm = task2.items[0], *srm = task2.items[1], *sf = task2.items[2];
    cr_assert_str_eq(slm->name, "blocks.0.mlp.fc1.s_lm");
    gradcheck_fill(slm->data, slm->numel, 21, -1e-2f, 2e-2f);
    gradcheck_fill(srm->data, srm->numel, 22, -1e-2f, 2e-2f);
    gradcheck_fill(sf->data, sf->numel, 23, -1e-2f, 2e-2f);
    clv_task_adapter_select(a, 2);
    float A[OUT * K], B[K * IN], Fm[OUT];
    for (int i = 0; i < OUT * K; i++)
        A[i] = slm->data[i] > 5e-3f ? lm->data[i] : 0;
    for (int i = 0; i < K * IN; i++)
        B[i] = srm->data[i] > 5e-3f ? rm->data[i] : 0;
    for (int i = 0; i < OUT; i++)
        Fm[i] = sf->data[i] > 5e-3f ? fs->data[i] : 0;
    float weff[OUT * IN];
    for (int o = 0; o < OUT; o++)
        for (int i = 0; i < IN; i++) {
            double v = f.l.weight->data[o * IN + i];
            for (int k = 0; k < K; k++)
                v += (double)A[o * K + k] * B[k * IN + i];
            weff[o * IN + i] = (float)v;
        }
    loss(&f);
    double ref[N * OUT];
    reference_forward(&f, weff, Fm, ref);
    for (int i = 0; i < N * OUT; i++)
        cr_assert_float_eq(f.y[i], ref[i], 1e-5, "y[%d]", i);
    clv_params_zero_grad(&task2);
    float lm_grad_before = lm->grad ? lm->grad[0] : 0.0f;
    backward(&f);
    /* straight-through: dS_lm = (dW_t B^T) * LM, dS_rm = (A^T dW_t) * RM, dS_f = ds * F */
    double dW[OUT * IN], dz[N * OUT];
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++)
            dz[n * OUT + o] = (double)f.r[n * OUT + o] * Fm[o];
    for (int o = 0; o < OUT; o++)
        for (int i = 0; i < IN; i++) {
            dW[o * IN + i] = 0;
            for (int n = 0; n < N; n++)
                dW[o * IN + i] += dz[n * OUT + o] * f.x[n * IN + i];
        }
    for (int o = 0; o < OUT; o++)
        for (int k = 0; k < K; k++) {
            double v = 0;
            for (int i = 0; i < IN; i++)
                v += dW[o * IN + i] * B[k * IN + i];
            cr_assert_float_eq(slm->grad[o * K + k], v * lm->data[o * K + k], 1e-5, "dS_lm[%d,%d]", o, k);
        }
    for (int k = 0; k < K; k++)
        for (int i = 0; i < IN; i++) {
            double v = 0;
            for (int o = 0; o < OUT; o++)
                v += A[o * K + k] * dW[o * IN + i];
            cr_assert_float_eq(srm->grad[k * IN + i], v * rm->data[k * IN + i], 1e-5, "dS_rm[%d,%d]", k, i);
        }
    for (int o = 0; o < OUT; o++) {
        double ds = 0;
        for (int n = 0; n < N; n++) {
            double z = f.l.bias->data[o];
            for (int i = 0; i < IN; i++)
                z += (double)f.x[n * IN + i] * weff[o * IN + i];
            ds += f.r[n * OUT + o] * z;
        }
        cr_assert_float_eq(sf->grad[o], ds * fs->data[o], 1e-4, "dS_f[%d]", o);
    }
    cr_assert(!lm->trainable && (!lm->grad || lm->grad[0] == lm_grad_before), "the shared tensors are frozen");
    cr_assert_eq(clv_maskrkr_task_bits(a, 2), OUT * K + K * IN + OUT, "1 bit per masked element");
    cr_assert_eq(clv_maskrkr_task_bits(a, 1), 0, "the shared task stores floats, counted by the strategy");

    float before[N * OUT];
    loss(&f);
    memcpy(before, f.y, sizeof before);
    cr_assert_eq(clv_maskrkr_freeze(a, 2, &err), 0, "%s", err.msg);
    loss(&f);
    cr_assert_eq(memcmp(f.y, before, sizeof before), 0, "bit-identical from the packed masks");
    int64_t n = 0;
    cr_assert_not_null(clv_maskrkr_mask(a, 2, CLV_MASK_RM, &n));
    cr_assert_eq(n, K * IN);
    a->ops->free(a);
    clv_params_free(&shared);
    clv_params_free(&task2);
    fixture_free(&f);
}

static float bf16_value(float v) { return clv_bf16_to_float(clv_bf16_from_float(v)); }

/* In bf16 a rectification W + A B is added beside the GEMM in fp32. With x
 * and dy bf16 values, y and dx are then the products with bf16(W) (under a
 * scale s, bf16(s W) for dx) plus the exact rectification, to fp32 rounding.
 * A B here is about 1e-4, below half a bf16 step of W's entries: rounded
 * into W_eff it would mostly vanish and y would miss it by about 1e-3. */
static void rectification_beside_bf16(layer_fixture *f, const float *A, const float *B, const float *s, int emulate)
{
    clv_err err = {{0}};
    clv_compute *c = clv_compute_create(CLV_PRECISION_BF16, emulate, &err);
    cr_assert_not_null(c, "%s", err.msg);
    f->l.compute = c;
    for (int i = 0; i < N * IN; i++)
        f->x[i] = bf16_value(f->x[i]);
    for (int i = 0; i < N * OUT; i++)
        f->r[i] = bf16_value(f->r[i]);
    double rect[OUT * IN];
    for (int o = 0; o < OUT; o++)
        for (int i = 0; i < IN; i++) {
            rect[o * IN + i] = 0;
            for (int k = 0; k < K; k++)
                rect[o * IN + i] += (double)A[o * K + k] * B[k * IN + i];
        }
    loss(f);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            double z = f->l.bias->data[o];
            for (int i = 0; i < IN; i++)
                z += (double)f->x[n * IN + i] * (bf16_value(f->l.weight->data[o * IN + i]) + rect[o * IN + i]);
            cr_assert_float_eq(f->y[n * OUT + o], z * (s ? s[o] : 1.0), 1e-5, "y[%d,%d] (emulate %d)", n, o,
                               emulate);
        }
    backward(f);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < IN; i++) {
            double v = 0;
            for (int o = 0; o < OUT; o++) {
                const float so = s ? s[o] : 1.0f, w = f->l.weight->data[o * IN + i];
                v += (double)f->r[n * OUT + o] * (bf16_value(s ? so * w : w) + so * rect[o * IN + i]);
            }
            cr_assert_float_eq(f->dx[n * IN + i], v, 1e-5, "dx[%d,%d] (emulate %d)", n, i, emulate);
        }
    f->l.compute = NULL;
    clv_compute_free(c);
}

Test(adapters, rkr_rectification_stays_fp32_in_bf16)
{
    for (int emulate = 0; emulate < 2; emulate++) {
        layer_fixture f;
        fixture_init(&f, 500);
        clv_params ps;
        clv_param *lm, *rm, *fs;
        clv_adapter *a = rkr_on(&f, &ps, &lm, &rm, &fs);
        gradcheck_fill(lm->data, OUT * K, 51, -1e-2f, 1e-2f);
        gradcheck_fill(rm->data, K * IN, 52, -1e-2f, 1e-2f);
        gradcheck_fill(fs->data, OUT, 53, 0.5f, 1.5f);
        f.l.adapter = a;
        clv_task_adapter_select(a, 1);
        rectification_beside_bf16(&f, lm->data, rm->data, fs->data, emulate);
        a->ops->free(a);
        clv_params_free(&ps);
        fixture_free(&f);
    }
}

Test(adapters, maskrkr_masked_rectification_stays_fp32_in_bf16)
{
    for (int emulate = 0; emulate < 2; emulate++) {
        layer_fixture f;
        fixture_init(&f, 600);
        clv_err err = {{0}};
        clv_params shared, task2;
        clv_param *lm, *rm, *fs;
        clv_adapter *a = maskrkr_on(&f, &shared, &lm, &rm, &fs);
        clv_params_init(&task2);
        gradcheck_fill(lm->data, OUT * K, 61, -1e-2f, 1e-2f);
        gradcheck_fill(rm->data, K * IN, 62, -1e-2f, 1e-2f);
        gradcheck_fill(fs->data, OUT, 63, 0.5f, 1.5f);
        cr_assert_eq(clv_maskrkr_add_task(a, &f.l, 2, 1e-2f, 1e-4f, &task2, &err), 0, "%s", err.msg);
        clv_param *slm = task2.items[0], *srm = task2.items[1], *sf = task2.items[2];
        gradcheck_fill(slm->data, slm->numel, 71, -1e-2f, 2e-2f);
        gradcheck_fill(srm->data, srm->numel, 72, -1e-2f, 2e-2f);
        gradcheck_fill(sf->data, sf->numel, 73, -1e-2f, 2e-2f);
        float A[OUT * K], B[K * IN], Fm[OUT];
        for (int i = 0; i < OUT * K; i++)
            A[i] = slm->data[i] > 5e-3f ? lm->data[i] : 0;
        for (int i = 0; i < K * IN; i++)
            B[i] = srm->data[i] > 5e-3f ? rm->data[i] : 0;
        for (int i = 0; i < OUT; i++)
            Fm[i] = sf->data[i] > 5e-3f ? fs->data[i] : 0;
        f.l.adapter = a;
        clv_task_adapter_select(a, 2);
        rectification_beside_bf16(&f, A, B, Fm, emulate);
        clv_task_adapter_select(a, 1); /* the shared task: the unmasked tensors */
        rectification_beside_bf16(&f, lm->data, rm->data, fs->data, emulate);
        a->ops->free(a);
        clv_params_free(&shared);
        clv_params_free(&task2);
        fixture_free(&f);
    }
}

Test(adapters, maskrkr_mask_on_subset)
{
    layer_fixture f;
    fixture_init(&f, 400);
    clv_err err = {{0}};
    clv_adapter *a = clv_maskrkr_create(&f.l, 2, K, 5e-3f, CLV_MASK_F, CLV_VIEW_OURS, &err);
    clv_params own, t1;
    clv_params_init(&own);
    clv_params_init(&t1);
    /* drawn from a seed: nothing learned, every task masks */
    cr_assert_eq(clv_maskrkr_add_shared(a, &f.l, 0, 0, 5, 0.05f, 1e-3f, &own, &err), 0, "%s", err.msg);
    cr_assert_eq(own.count, 0, "a drawn tensor is not the caller's to train or save");
    /* drawn at the size of a learned rectification: ||LM RM||_F = 0.05 ||W||_F, F = 1 */
    const clv_param *lm = clv_maskrkr_shared(a, CLV_MASK_LM), *rm = clv_maskrkr_shared(a, CLV_MASK_RM),
                    *fs = clv_maskrkr_shared(a, CLV_MASK_F);
    double pn = 0, wn = 0;
    for (int o = 0; o < OUT; o++)
        for (int i = 0; i < IN; i++) {
            double v = 0;
            for (int k = 0; k < K; k++)
                v += (double)lm->data[o * K + k] * rm->data[k * IN + i];
            pn += v * v;
            wn += (double)f.l.weight->data[o * IN + i] * f.l.weight->data[o * IN + i];
        }
    cr_assert_float_eq(sqrt(pn / wn), 0.05, 1e-6, "||LM RM|| / ||W|| = %g", sqrt(pn / wn));
    for (int o = 0; o < OUT; o++)
        cr_assert_eq(fs->data[o], 1.0f);
    double ln = 0, rn = 0; /* one factor for both: their sizes stay balanced as drawn */
    for (int i = 0; i < OUT * K; i++)
        ln += (double)lm->data[i] * lm->data[i];
    for (int i = 0; i < K * IN; i++)
        rn += (double)rm->data[i] * rm->data[i];
    cr_assert(ln > 0 && rn > 0 && ln / (OUT * K) < 10 * rn / (K * IN) && rn / (K * IN) < 10 * ln / (OUT * K));
    cr_assert_eq(clv_maskrkr_add_task(a, &f.l, 0, 1e-2f, 1e-4f, &t1, &err), 0, "%s", err.msg);
    cr_assert_eq(t1.count, 1, "only F is masked");
    cr_assert_str_eq(t1.items[0]->name, "blocks.0.mlp.fc1.s_f");
    cr_assert_eq(clv_maskrkr_task_bits(a, 0), OUT);
    a->ops->free(a);
    clv_params_free(&own);
    clv_params_free(&t1);
    fixture_free(&f);
}

/* The layer keeps what its backward needs: z under a scale (CLV_WL_TRAIN), nothing when the caller keeps
 * y and the scale is invertible (CLV_WL_TRAIN_KEEPS_Y), nothing in inference; and it refuses a backward
 * the forward did not prepare for, naming itself. */
Test(adapters, wlayer_keeps_its_saved_output)
{
    layer_fixture f;
    fixture_init(&f, 500);
    clv_err err = {{0}};
    clv_adapter *a = clv_rkr_create(&f.l, 1, CLV_VIEW_OURS, &err);
    cr_assert_not_null(a, "%s", err.msg);
    clv_params ps;
    clv_params_init(&ps);
    cr_assert_eq(clv_rkr_add_task(a, &f.l, 0, K, 1, 7, 1e-3f, &ps, &err), 0, "%s", err.msg);
    clv_param *fs = clv_params_find(&ps, "blocks.0.mlp.fc1.f");
    gradcheck_fill(fs->data, OUT, 3, 0.5f, 1.5f);
    f.l.adapter = a;
    clv_task_adapter_select(a, 0);

    /* from the saved z */
    cr_assert_eq(clv_wlayer_forward(&f.l, f.y, f.x, N, CLV_WL_TRAIN, &err), 0, "%s", err.msg);
    cr_assert(f.l.saved == CLV_WL_SAVED_Z && f.l.zsave && f.l.saved_rows == N);
    cr_assert(!clv_wlayer_reads_output(&f.l));
    clv_params_zero_grad(&ps);
    cr_assert_eq(clv_wlayer_backward(&f.l, NULL, f.r, f.x, NULL, N, &f.scratch, &err), 0, "%s", err.msg);
    float df_z[OUT];
    memcpy(df_z, fs->grad, sizeof df_z);
    /* over fewer rows than the forward: refused */
    cr_assert_eq(clv_wlayer_backward(&f.l, NULL, f.r, f.x, NULL, N - 1, &f.scratch, &err), -1);
    cr_assert(strstr(err.msg, "blocks.0.mlp.fc1"), "%s", err.msg);

    /* from the kept output y: nothing saved, the same gradient to float rounding */
    cr_assert_eq(clv_wlayer_forward(&f.l, f.y, f.x, N, CLV_WL_TRAIN_KEEPS_Y, &err), 0, "%s", err.msg);
    cr_assert(f.l.saved == CLV_WL_SAVED_Y && clv_wlayer_reads_output(&f.l));
    cr_assert_eq(clv_wlayer_backward(&f.l, NULL, f.r, f.x, NULL, N, &f.scratch, &err), -1, "y is needed");
    clv_params_zero_grad(&ps);
    cr_assert_eq(clv_wlayer_backward(&f.l, NULL, f.r, f.x, f.y, N, &f.scratch, &err), 0, "%s", err.msg);
    for (int o = 0; o < OUT; o++)
        cr_assert_float_eq(fs->grad[o], df_z[o], 1e-5f * (1 + fabsf(df_z[o])), "dF[%d] from y", o);
    /* a zero entry: y / s is impossible, so the layer keeps z after all; zeroed after the forward: refused */
    fs->data[2] = 0.0f;
    clv_task_adapter_select(a, 0);
    a->ops->invalidate(a);
    cr_assert_eq(clv_wlayer_forward(&f.l, f.y, f.x, N, CLV_WL_TRAIN_KEEPS_Y, &err), 0, "%s", err.msg);
    cr_assert(f.l.saved == CLV_WL_SAVED_Z);
    fs->data[2] = 1.0f;
    a->ops->invalidate(a);
    cr_assert_eq(clv_wlayer_forward(&f.l, f.y, f.x, N, CLV_WL_TRAIN_KEEPS_Y, &err), 0, "%s", err.msg);
    fs->data[2] = 0.0f;
    a->ops->invalidate(a);
    cr_assert_eq(clv_wlayers_check_saved((clv_wlayer *[]){&f.l}, 1, &err), -1);
    cr_assert(strstr(err.msg, "blocks.0.mlp.fc1") && strstr(err.msg, "changed"), "%s", err.msg);

    /* inference keeps nothing, so no backward may follow under a scale */
    cr_assert_eq(clv_wlayer_forward(&f.l, f.y, f.x, N, CLV_WL_INFER, &err), 0, "%s", err.msg);
    cr_assert(f.l.saved == CLV_WL_SAVED_NONE && f.l.saved_rows == 0);
    cr_assert_eq(clv_wlayer_backward(&f.l, NULL, f.r, f.x, NULL, N, &f.scratch, &err), -1);
    cr_assert(strstr(err.msg, "blocks.0.mlp.fc1"), "%s", err.msg);
    a->ops->free(a);
    clv_params_free(&ps);
    fixture_free(&f);
}

/* ---- the lifecycle (clv_adapter_method): what a task's file keeps makes
 * the same layer again in a fresh adapter ---- */

/* Trains nothing, but moves every trainable tensor of ps off its initial value. */
static void perturb(clv_params *ps, int from, uint64_t seed)
{
    for (int i = from; i < ps->count; i++)
        gradcheck_fill(ps->items[i]->data, ps->items[i]->numel, seed + (uint64_t)i, -0.02f, 0.03f);
}

static void save_task_file(const clv_adapter_method *m, clv_adapter *a, const clv_wlayer *l, int task,
                           const char *path)
{
    clv_err err = {{0}};
    clv_st_writer *w = clv_st_writer_new();
    cr_assert_geq(m->save_task(a, l, task, w, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_st_writer_write(w, path, &err), 0, "%s", err.msg);
    clv_st_writer_free(w);
}

static void round_trip(const clv_adapter_method *m, int shared_task)
{
    layer_fixture f;
    fixture_init(&f, 41);
    clv_err err = {{0}};
    clv_adapter_settings set = {.n_tasks = 3, .layer = 4, .seed = 9, .view = CLV_VIEW_OURS, .rank = K, .lr = 1e-3f,
                                .threshold = 5e-3f, .mask_init = 1e-2f, .lr_mask = 1e-3f,
                                .mask_on = CLV_MASK_LM | CLV_MASK_RM | CLV_MASK_F, .shared_task = shared_task};
    clv_adapter *a = m->create(&f.l, &set, &err);
    cr_assert_not_null(a, "%s", err.msg);
    f.l.adapter = a;
    clv_params ps[2];
    char path[2][64];
    for (int t = 0; t < 2; t++) { /* maskrkr: task 0 learns LM, RM, F, task 1 masks them */
        clv_params_init(&ps[t]);
        snprintf(path[t], sizeof path[t], "/tmp/clvit-test-life-%d-%d.safetensors", (int)getpid(), t);
        cr_assert_eq(m->add_task(a, &f.l, t, &ps[t], &err), 0, "%s", err.msg);
        cr_assert(m->has_task(a, t));
        perturb(&ps[t], 0, 100 + (uint64_t)t);
        int r = m->end_task(a, &f.l, t, &err);
        cr_assert_geq(r, 0, "%s", err.msg);
        save_task_file(m, a, &f.l, t, path[t]);
    }
    clv_storage kept = {0};
    m->task_storage(a, &f.l, 1, &kept);
    cr_expect_gt(clv_storage_total(&kept), 0);
    clv_task_adapter_select(a, 1);
    loss(&f);
    float y1[N * OUT];
    memcpy(y1, f.y, sizeof y1);

    clv_adapter *b = m->create(&f.l, &set, &err);
    cr_assert_not_null(b, "%s", err.msg);
    f.l.adapter = b;
    clv_params loaded;
    clv_params_init(&loaded);
    for (int t = 0; t < 2; t++) {
        clv_safetensors st;
        cr_assert_eq(clv_st_open(&st, path[t], &err), 0, "%s", err.msg);
        cr_assert_eq(m->load_task(b, &f.l, t, &st, &loaded, &err), 0, "%s", err.msg);
        clv_st_close(&st);
        cr_expect(m->has_task(b, t));
        remove(path[t]);
    }
    clv_storage again = {0};
    m->task_storage(b, &f.l, 1, &again);
    cr_expect_eq(clv_storage_total(&again), clv_storage_total(&kept));
    clv_task_adapter_select(b, 1);
    loss(&f);
    cr_expect_eq(memcmp(y1, f.y, sizeof y1), 0, "%s: task 2 computes otherwise after its file is read back", m->name);
    a->ops->free(a);
    b->ops->free(b);
    f.l.adapter = NULL;
    clv_params_free(&loaded);
    for (int t = 0; t < 2; t++)
        clv_params_free(&ps[t]);
    fixture_free(&f);
}

Test(adapters, rkr_task_files_make_the_same_layer) { round_trip(&clv_adapter_rkr, -2); }
Test(adapters, piggyback_task_files_make_the_same_layer) { round_trip(&clv_adapter_piggyback, -2); }
Test(adapters, maskrkr_task_files_make_the_same_layer) { round_trip(&clv_adapter_maskrkr, 0); }
Test(adapters, maskrkr_drawn_task_files_make_the_same_layer) { round_trip(&clv_adapter_maskrkr, -2); }
