/* Optimizers, clipping and schedules against PyTorch's numbers (printed by
 * tools/make_optim_fixtures.py with Debian's python3-torch 1.13). */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "clvit/optim.h"
#include "clvit/trainer.h"

/* tools/make_optim_fixtures.py */
static const float sgd_expected[5] = {0.522105336f, -1.21285939f, 1.96760356f, 0.060268037f, -0.952116191f};
static const float nesterov_expected[5] = {0.533387065f, -1.20794582f, 1.99506867f, 0.0640205443f, -1.05934525f};
static const float adamw_expected[5] = {0.492730737f, -1.23742533f, 1.98575449f, 0.0114812413f, -0.763771236f};
static const float adamw_nodecay_expected[5] = {0.497716904f, -1.23672271f, 1.9866997f, 0.0132772587f,
                                                -0.772615433f};

static const float W0[5] = {0.5f, -1.25f, 2.0f, 0.0f, -0.75f};
static const float GRADS[3][5] = {
    {0.1f, -0.2f, 0.3f, -0.4f, 0.5f}, {-0.3f, 0.1f, 0.0f, 0.2f, -0.1f}, {0.05f, 0.05f, -0.6f, 0.1f, 0.9f}};

/* Three steps on one 5-element parameter (plus a frozen one that must not move). */
static void run(clv_optim_config c, float lr, const float factors[3], int no_decay, float out[5])
{
    clv_params ps;
    clv_params_init(&ps);
    clv_err err = {{0}};
    int64_t shape[1] = {5};
    clv_param *p = clv_params_add(&ps, "w", 1, shape, &err);
    clv_param *frozen = clv_params_add(&ps, "frozen", 1, shape, &err);
    cr_assert(p && frozen);
    cr_assert_eq(clv_param_set_trainable(p, 1, &err), 0);
    p->lr_scale = lr;
    p->no_decay = no_decay;
    for (int i = 0; i < 5; i++)
        p->data[i] = frozen->data[i] = W0[i];
    clv_optim *o = clv_optim_create(&c, &err);
    cr_assert_not_null(o, "%s", err.msg);
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < 5; i++)
            p->grad[i] = GRADS[s][i];
        cr_assert_eq(clv_optim_step(o, &ps, factors ? factors[s] : 1.0f, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(clv_optim_get_step(o), 3);
    for (int i = 0; i < 5; i++) {
        out[i] = p->data[i];
        cr_assert_eq(frozen->data[i], W0[i], "a frozen parameter does not move");
    }
    clv_optim_free(o);
    clv_params_free(&ps);
}

static void expect_close(const float *got, const float *want, const char *what)
{
    for (int i = 0; i < 5; i++)
        cr_expect(fabsf(got[i] - want[i]) <= 1e-6f * fmaxf(1.0f, fabsf(want[i])), "%s[%d]: %.9g, torch %.9g", what,
                  i, got[i], want[i]);
}

Test(optim, sgd_momentum_matches_torch)
{
    clv_optim_config c = clv_optim_defaults();
    c.kind = CLV_OPTIM_SGD;
    c.momentum = 0.9f;
    c.weight_decay = 0.01f;
    float w[5];
    run(c, 0.1f, NULL, 0, w);
    expect_close(w, sgd_expected, "sgd");
    c.nesterov = 1;
    run(c, 0.1f, NULL, 0, w);
    expect_close(w, nesterov_expected, "nesterov");
}

Test(optim, adamw_matches_torch)
{
    clv_optim_config c = clv_optim_defaults();
    c.weight_decay = 0.05f;
    const float factors[3] = {1.0f, 0.5f, 0.25f}; /* the schedule's factor scales lr_scale */
    float w[5];
    run(c, 0.01f, factors, 0, w);
    expect_close(w, adamw_expected, "adamw");
    run(c, 0.01f, NULL, 1, w); /* no_decay: as weight_decay 0 */
    expect_close(w, adamw_nodecay_expected, "adamw no_decay");
}

Test(optim, clip_grad_norm_matches_torch)
{
    clv_params ps;
    clv_params_init(&ps);
    clv_err err = {{0}};
    int64_t s2[1] = {2}, s1[1] = {1};
    clv_param *a = clv_params_add(&ps, "a", 1, s2, &err), *b = clv_params_add(&ps, "b", 1, s1, &err);
    clv_param_set_trainable(a, 1, &err);
    clv_param_set_trainable(b, 1, &err);
    a->grad[0] = 3, a->grad[1] = 4, b->grad[0] = 12;
    cr_assert_float_eq(clv_clip_grad_norm(&ps, 100.0), 13.0, 1e-9, "under the limit");
    cr_assert_eq(b->grad[0], 12.0f, "nothing scaled below the limit");
    cr_assert_float_eq(clv_clip_grad_norm(&ps, 6.5), 13.0, 1e-9);
    /* torch: [[1.4999998807907104, 1.9999998807907104], [5.999999523162842]] */
    cr_expect_float_eq(a->grad[0], 1.4999998807907104f, 1e-7);
    cr_expect_float_eq(a->grad[1], 1.9999998807907104f, 1e-7);
    cr_expect_float_eq(b->grad[0], 5.999999523162842f, 1e-7);
    clv_params_free(&ps);
}

/* The norm of large gradients: the same bits on 1 and 3 threads (fixed chunks summed in order),
 * and the double sum's value */
Test(optim, clip_grad_norm_is_thread_count_independent)
{
    clv_params ps;
    clv_params_init(&ps);
    clv_err err = {{0}};
    int64_t shape[1] = {3000017};
    clv_param *a = clv_params_add(&ps, "a", 1, shape, &err);
    cr_assert_not_null(a, "%s", err.msg);
    clv_param_set_trainable(a, 1, &err);
    uint32_t x = 12345;
    long double ref = 0;
    for (int64_t k = 0; k < shape[0]; k++) {
        x = x * 1664525u + 1013904223u;
        a->grad[k] = (float)((x >> 8) / 16777216.0 - 0.5) * (k % 7 ? 1.0f : 1e3f);
        ref += (long double)a->grad[k] * a->grad[k];
    }
    const int saved = omp_get_max_threads();
    double norm[2];
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t ? 3 : 1);
        norm[t] = clv_clip_grad_norm(&ps, 0.0); /* 0: no clipping */
    }
    omp_set_num_threads(saved);
    cr_expect(norm[0] == norm[1], "1 thread %.17g, 3 threads %.17g", norm[0], norm[1]);
    cr_expect(fabsl(norm[0] - sqrtl(ref)) <= 1e-12 * sqrtl(ref), "%.17g against %.17Lg", norm[0], sqrtl(ref));
    clv_params_free(&ps);
}

Test(optim, cosine_schedule_with_warmup_matches_lambda_lr)
{
    clv_schedule s = {.kind = CLV_SCHED_COSINE, .total_steps = 100, .warmup_steps = 10, .min_factor = 0.1f};
    /* torch LambdaLR with the same lambda: 0: 0.1, 9: 1, 10: 1, 55: 0.55, 99: 0.100274128 */
    cr_expect_float_eq(clv_schedule_factor(&s, 0), 0.1f, 1e-7);
    cr_expect_float_eq(clv_schedule_factor(&s, 9), 1.0f, 1e-7);
    cr_expect_float_eq(clv_schedule_factor(&s, 10), 1.0f, 1e-7);
    cr_expect_float_eq(clv_schedule_factor(&s, 55), 0.55f, 1e-6);
    cr_expect_float_eq(clv_schedule_factor(&s, 99), 0.100274128f, 1e-7);
    for (int64_t k = 10; k < 99; k++)
        cr_assert_geq(clv_schedule_factor(&s, k), clv_schedule_factor(&s, k + 1), "decreasing after warmup");
    clv_schedule c = {.kind = CLV_SCHED_CONSTANT, .total_steps = 100};
    cr_assert_eq(clv_schedule_factor(&c, 50), 1.0f);
}

Test(optim, step_schedule_decays_every_n_epochs_like_steplr)
{
    /* PyTorch StepLR(step_size = 15 epochs, gamma = 0.1), stepped per epoch, 4 steps an epoch */
    clv_schedule s = {.kind = CLV_SCHED_STEP, .total_steps = 30 * 4, .step_every = 15 * 4, .gamma = 0.1f};
    for (int64_t k = 0; k < 120; k++) {
        float want = k < 60 ? 1.0f : 0.1f;
        cr_assert_float_eq(clv_schedule_factor(&s, k), want, 1e-7, "step %lld", (long long)k);
    }
    cr_assert_float_eq(clv_schedule_sum(&s), 60 + 6.0, 1e-5, "60 steps at 1, 60 at 0.1");
    s.gamma = 0.5f;
    s.total_steps = 400;
    s.step_every = 100;
    cr_assert_float_eq(clv_schedule_factor(&s, 399), 0.125f, 1e-7, "three decays by 399");
    /* warmup only when asked, then the decay counts from step 0 */
    s.warmup_steps = 10;
    cr_assert_float_eq(clv_schedule_factor(&s, 4), 0.5f, 1e-7, "warmup (4 + 1) / 10");
    cr_assert_float_eq(clv_schedule_factor(&s, 10), 1.0f, 1e-7);
    cr_assert_float_eq(clv_schedule_factor(&s, 150), 0.5f, 1e-7);
}

Test(optim, task_schedule_follows_the_settings)
{
    clv_config c;
    clv_config_defaults(&c);
    clv_schedule cos = clv_task_schedule(&c, 10);
    cr_assert_eq(cos.kind, CLV_SCHED_COSINE, "cosine by default");
    cr_assert_eq(cos.total_steps, 10);
    cr_assert_eq(cos.warmup_steps, 1, "0.1 epoch of 10 steps");
    c.epochs = 30;
    c.warmup_epochs = 0;
    c.schedule = CLV_SCHEDULE_STEP;
    clv_schedule st = clv_task_schedule(&c, 10);
    cr_assert_eq(st.kind, CLV_SCHED_STEP);
    cr_assert_eq(st.total_steps, 300);
    cr_assert_float_eq(clv_schedule_factor(&st, 149), 1.0f, 1e-7, "epoch 15 still at the peak");
    cr_assert_float_eq(clv_schedule_factor(&st, 150), 0.1f, 1e-7, "epoch 16 at x 0.1");
    cr_assert_float_eq(clv_schedule_factor(&st, 299), 0.1f, 1e-7);
    c.lr_step_epochs = 10;
    c.lr_step_gamma = 0.5f;
    st = clv_task_schedule(&c, 10);
    cr_assert_float_eq(clv_schedule_factor(&st, 250), 0.25f, 1e-7, "x 0.5 at epochs 11 and 21");
    cr_assert_eq(clv_steps_per_epoch(100, 32), 3, "the ragged batch is dropped");
    cr_assert_eq(clv_steps_per_epoch(10, 32), 1, "unless it is the only one");
}

Test(optim, the_factor_scales_every_group_by_its_own_rate)
{
    /* plain SGD: each parameter moves by its own rate x the schedule's factor x its gradient */
    clv_params ps;
    clv_params_init(&ps);
    clv_err err = {{0}};
    int64_t shape[1] = {1};
    const char *names[4] = {"backbone", "head", "scores", "adapter"};
    const float rates[4] = {1e-3f, 1e-4f, 1e-2f, 3e-3f};
    for (int i = 0; i < 4; i++) {
        clv_param *p = clv_params_add(&ps, names[i], 1, shape, &err);
        cr_assert(p && clv_param_set_trainable(p, 1, &err) == 0);
        p->lr_scale = rates[i];
        p->grad[0] = 1.0f;
    }
    clv_optim_config oc = clv_optim_defaults();
    oc.kind = CLV_OPTIM_SGD;
    oc.momentum = 0;
    oc.weight_decay = 0;
    clv_optim *o = clv_optim_create(&oc, &err);
    clv_schedule s = {.kind = CLV_SCHED_STEP, .total_steps = 100, .step_every = 50, .gamma = 0.1f};
    cr_assert_eq(clv_optim_step(o, &ps, clv_schedule_factor(&s, 75), &err), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(ps.items[i]->data[0], -0.1f * rates[i], 1e-9, "%s", names[i]);
    clv_optim_free(o);
    clv_params_free(&ps);
}

Test(optim, invalid_settings_are_refused)
{
    clv_optim_config c = clv_optim_defaults();
    c.momentum = 1.5f;
    clv_err err = {{0}};
    cr_assert_null(clv_optim_create(&c, &err));
    cr_assert(strstr(err.msg, "momentum"), "%s", err.msg);
}

Test(optim, reset_state_gives_a_fresh_start)
{
    /* a second task's optimizer must not inherit the first task's moments */
    clv_optim_config c = clv_optim_defaults();
    c.weight_decay = 0.05f;
    const float factors[3] = {1.0f, 0.5f, 0.25f};
    clv_params ps;
    clv_params_init(&ps);
    clv_err err = {{0}};
    int64_t shape[1] = {5};
    clv_param *p = clv_params_add(&ps, "w", 1, shape, &err);
    clv_param_set_trainable(p, 1, &err);
    p->lr_scale = 0.01f;
    for (int task = 0; task < 2; task++) {
        for (int i = 0; i < 5; i++)
            p->data[i] = W0[i];
        clv_optim *o = clv_optim_create(&c, &err);
        clv_optim_reset_state(&ps);
        for (int s = 0; s < 3; s++) {
            for (int i = 0; i < 5; i++)
                p->grad[i] = GRADS[s][i];
            clv_optim_step(o, &ps, factors[s], &err);
        }
        expect_close(p->data, adamw_expected, task ? "second task" : "first task");
        clv_optim_free(o);
    }
    clv_params_free(&ps);
}
