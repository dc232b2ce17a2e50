/* Arenas: one allocation carved into named buffers (see shared/STYLE.md,
 * ggml's context arena).
 *
 * A layout is a function that carves every buffer of a region, always in the
 * same order, from a clv_carver. It runs twice: once counting (the carver has
 * no memory: every carve returns NULL and only adds up the bytes), then
 * carving (the same calls hand out pointers into the arena). Sizes are
 * multiplied with overflow checks, and every buffer starts on a 64-byte
 * boundary, so SIMD kernels and GEMMs see the same alignment whatever the
 * layout around them.
 *
 *   static void layout(void *ctx, clv_carver *c) { m->x = clv_carve_floats(c, B, T, D); ... }
 *   if (clv_arena_lay_out(&m->arena, layout, m, "vit: activations", err)) return -1;
 *
 * An arena only grows (clv_arena_lay_out keeps memory that is big enough),
 * and a layout may be carved again into memory that fits it (e.g. an
 * inference layout borrowing an idle training arena). */
#ifndef CLVIT_ARENA_H
#define CLVIT_ARENA_H

#include "clvit/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CLV_ARENA_ALIGN 64

/* One pass over a layout. */
typedef struct clv_carver {
    unsigned char *base; /* NULL while counting */
    size_t cap;          /* bytes at base */
    size_t used;         /* bytes handed out so far, each buffer rounded up to CLV_ARENA_ALIGN */
    int failed;          /* a size was negative or overflowed, or a carve ran past cap */
} clv_carver;

/* n0 n1 n2 elements of elem bytes (any n may be 1): NULL while counting or after a failure. */
void *clv_carve(clv_carver *c, int64_t n0, int64_t n1, int64_t n2, size_t elem);
static inline float *clv_carve_floats(clv_carver *c, int64_t n0, int64_t n1, int64_t n2)
{
    return (float *)clv_carve(c, n0, n1, n2, sizeof(float));
}
static inline int32_t *clv_carve_i32(clv_carver *c, int64_t n0, int64_t n1, int64_t n2)
{
    return (int32_t *)clv_carve(c, n0, n1, n2, sizeof(int32_t));
}

typedef void (*clv_arena_layout)(void *ctx, clv_carver *c);

/* Owned memory that layouts are carved into. Zero-initialize; free with clv_arena_free. */
typedef struct clv_arena {
    void *mem;
    size_t bytes;
} clv_arena;

/* Bytes a layout needs into *bytes; -1 on overflow. Counting leaves the
 * layout's pointers NULL: carve it before using them. */
int clv_arena_measure(clv_arena_layout layout, void *ctx, size_t *bytes);
/* Grows a (zeroed, 64-byte aligned) to at least bytes, dropping its contents
 * when it must move; -1 with err naming what on failure (a is then empty). */
int clv_arena_reserve(clv_arena *a, size_t bytes, const char *what, clv_err *err);
/* Carves layout into a, which must hold it (clv_arena_measure); -1 if not. */
int clv_arena_carve(const clv_arena *a, clv_arena_layout layout, void *ctx);
/* Measure, reserve and carve: the layout's pointers point into a. */
int clv_arena_lay_out(clv_arena *a, clv_arena_layout layout, void *ctx, const char *what, clv_err *err);
void clv_arena_free(clv_arena *a);

#ifdef __cplusplus
}
#endif
#endif
