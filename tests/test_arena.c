/* The count-then-carve arena, a backbone's activation arenas and the growable-array helper. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "clvit/activations.h"
#include "clvit/arena.h"

typedef struct demo {
    int64_t n0, n1;
    float *a, *b;
    int32_t *idx;
} demo;

static void demo_layout(void *ctx, clv_carver *c)
{
    demo *d = ctx;
    d->a = clv_carve_floats(c, d->n0, d->n1, 1);
    d->idx = clv_carve_i32(c, d->n0, 1, 3);
    d->b = clv_carve_floats(c, 5, 1, 1);
}

Test(arena, counts_then_carves_aligned_disjoint_buffers)
{
    demo d = {.n0 = 3, .n1 = 7};
    size_t bytes;
    cr_assert_eq(clv_arena_measure(demo_layout, &d, &bytes), 0);
    /* 21 floats -> 128 bytes, 9 ints -> 64, 5 floats -> 64 */
    cr_assert_eq(bytes, 256);
    cr_assert_null(d.a, "counting hands out no memory");
    clv_arena ar = {0};
    clv_err err = {{0}};
    cr_assert_eq(clv_arena_lay_out(&ar, demo_layout, &d, "demo", &err), 0, "%s", err.msg);
    cr_assert_eq((uintptr_t)d.a % 64, 0);
    cr_assert_eq((uintptr_t)d.idx % 64, 0);
    cr_assert_eq((uintptr_t)d.b % 64, 0);
    cr_assert_eq((char *)d.idx - (char *)d.a, 128);
    cr_assert_eq((char *)d.b - (char *)d.idx, 64);
    for (int i = 0; i < 21; i++)
        cr_assert_eq(d.a[i], 0.0f, "fresh memory is zeroed");
    /* a smaller layout reuses the memory; a larger one moves it */
    void *mem = ar.mem;
    d.n1 = 2;
    cr_assert_eq(clv_arena_lay_out(&ar, demo_layout, &d, "demo", &err), 0);
    cr_assert_eq(ar.mem, mem);
    d.n1 = 1000;
    cr_assert_eq(clv_arena_lay_out(&ar, demo_layout, &d, "demo", &err), 0);
    cr_assert_geq(ar.bytes, 4000);
    clv_arena_free(&ar);
    cr_assert_null(ar.mem);
}

Test(arena, refuses_overflow_and_layouts_that_do_not_fit)
{
    demo d = {.n0 = INT64_MAX / 2, .n1 = 4};
    size_t bytes;
    cr_assert_eq(clv_arena_measure(demo_layout, &d, &bytes), -1);
    clv_arena ar = {0};
    clv_err err = {{0}};
    cr_assert_eq(clv_arena_lay_out(&ar, demo_layout, &d, "demo buffers", &err), -1);
    cr_assert(strstr(err.msg, "demo buffers") && strstr(err.msg, "overflow"), "%s", err.msg);
    d.n0 = -1;
    cr_assert_eq(clv_arena_measure(demo_layout, &d, &bytes), -1, "a negative size is refused");
    d = (demo){.n0 = 2, .n1 = 2};
    cr_assert_eq(clv_arena_lay_out(&ar, demo_layout, &d, "demo", &err), 0);
    d.n1 = 100; /* no longer fits the memory laid out for n1 = 2 */
    cr_assert_eq(clv_arena_carve(&ar, demo_layout, &d), -1);
    cr_assert_null(d.b, "the carve past the end hands out nothing");
    clv_arena_free(&ar);
    cr_assert_eq(clv_arena_carve(&ar, demo_layout, &d), -1, "an empty arena carves nothing");
}

/* ---- a backbone's activation arenas (clvit/activations.h) ---- */

typedef struct two_layouts {
    clv_activations *acts;
    int64_t train_floats, infer_floats; /* per image */
    float *x;
} two_layouts;

static void train_layout(void *ctx, clv_carver *c)
{
    two_layouts *t = ctx;
    t->x = clv_carve_floats(c, t->acts->lay_B, t->train_floats, 1);
}

static void infer_layout(void *ctx, clv_carver *c)
{
    two_layouts *t = ctx;
    t->x = clv_carve_floats(c, t->acts->lay_B, t->infer_floats, 1);
}

Test(activations, inference_and_training_share_one_arena_of_the_larger_size)
{
    clv_activations a = {0};
    two_layouts t = {.acts = &a, .train_floats = 1024, .infer_floats = 512};
    a.model = "two_layouts", a.train = train_layout, a.infer = infer_layout, a.ctx = &t;
    clv_err err = {{0}};
    cr_assert_eq(clv_activations_forward(&a, 4, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(a.fwd.bytes, 4 * 1024 * sizeof(float));
    /* an inference batch whose buffers outgrow the training ones grows the same arena */
    cr_assert_eq(clv_activations_forward(&a, 16, 0, &err), 0, "%s", err.msg);
    cr_expect_eq(a.fwd.bytes, 16 * 512 * sizeof(float), "inference took memory beside training's");
    cr_expect_eq((void *)t.x, a.fwd.mem);
    /* and training fits in it again without growing */
    cr_assert_eq(clv_activations_forward(&a, 4, 1, &err), 0, "%s", err.msg);
    cr_expect_eq(a.fwd.bytes, 16 * 512 * sizeof(float));
    cr_expect_eq((void *)t.x, a.fwd.mem);
    clv_activations_free(&a);
}

Test(grow, doubles_keeps_contents_and_refuses_overflow)
{
    int *v = NULL;
    size_t cap = 0;
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(clv_grow(&v, &cap, (size_t)i + 1), 0);
        v[i] = i;
    }
    cr_assert_geq(cap, 1000);
    cr_assert_lt(cap, 2048, "capacity doubles from 16: %zu", cap);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(v[i], i);
    int *before = v;
    size_t cap_before = cap;
    cr_assert_eq(clv_grow(&v, &cap, SIZE_MAX / 2), -1);
    cr_assert_eq(v, before, "a failed grow leaves the array");
    cr_assert_eq(cap, cap_before);
    free(v);
}

Test(grow, scratch_reserve_grows_only_zeroed_aligned)
{
    float *s = NULL;
    size_t cap = 0;
    cr_assert_eq(clv_scratch_reserve((void **)&s, &cap, 100, sizeof(float)), 0);
    cr_assert_not_null(s);
    cr_assert_eq(cap, 100);
    cr_assert_eq((uintptr_t)s % 64, 0, "aligned as clv_alloc's");
    for (int i = 0; i < 100; i++)
        cr_assert_eq(s[i], 0.0f, "a new block is zeroed");
    s[7] = 3.0f;
    float *before = s;
    cr_assert_eq(clv_scratch_reserve((void **)&s, &cap, 50, sizeof(float)), 0);
    cr_assert_eq(s, before, "room enough: the same block");
    cr_assert_eq(cap, 100, "never shrinks");
    cr_assert_eq(s[7], 3.0f, "and its contents stay");
    cr_assert_eq(clv_scratch_reserve((void **)&s, &cap, 1000, sizeof(float)), 0);
    cr_assert_eq(cap, 1000, "grown to exactly what was asked");
    cr_assert_eq(s[7], 0.0f, "contents dropped on growing");
    cr_assert_eq(clv_scratch_reserve((void **)&s, &cap, SIZE_MAX / 2, sizeof(float)), -1);
    cr_assert_null(s, "a failed reserve leaves no block");
    cr_assert_eq(cap, 0);
    cr_assert_eq(clv_scratch_reserve((void **)&s, &cap, 0, sizeof(float)), 0, "nothing asked: nothing to do");
}
