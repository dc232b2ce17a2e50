/* Count-then-carve arenas. See include/clvit/arena.h. */
#include "clvit/arena.h"

#include <string.h>

void *clv_carve(clv_carver *c, int64_t n0, int64_t n1, int64_t n2, size_t elem)
{
    size_t n, bytes, end;
    if (c->failed || n0 < 0 || n1 < 0 || n2 < 0 || clv_mul_overflow((size_t)n0, (size_t)n1, &n) ||
        clv_mul_overflow(n, (size_t)n2, &n) || clv_mul_overflow(n, elem, &bytes) ||
        bytes > SIZE_MAX - (CLV_ARENA_ALIGN - 1) - c->used) {
        c->failed = 1;
        return NULL;
    }
    bytes = (bytes + CLV_ARENA_ALIGN - 1) & ~(size_t)(CLV_ARENA_ALIGN - 1);
    end = c->used + bytes;
    if (c->base && end > c->cap) {
        c->failed = 1;
        return NULL;
    }
    void *p = c->base ? c->base + c->used : NULL;
    c->used = end;
    return p;
}

int clv_arena_measure(clv_arena_layout layout, void *ctx, size_t *bytes)
{
    clv_carver c = {0};
    layout(ctx, &c);
    *bytes = c.used;
    return c.failed ? -1 : 0;
}

int clv_arena_reserve(clv_arena *a, size_t bytes, const char *what, clv_err *err)
{
    if (a->mem && bytes <= a->bytes)
        return 0;
    clv_arena_free(a);
    if (!(a->mem = clv_alloc(bytes)))
        return clv_errf(err, "%s: out of memory (%.0f MiB)", what, (double)bytes / 1048576.0);
    a->bytes = bytes;
    return 0;
}

int clv_arena_carve(const clv_arena *a, clv_arena_layout layout, void *ctx)
{
    clv_carver c = {.base = a->mem, .cap = a->mem ? a->bytes : 0};
    if (!c.base) {
        layout(ctx, &c); /* leave the pointers NULL rather than stale */
        return -1;
    }
    layout(ctx, &c);
    return c.failed ? -1 : 0;
}

int clv_arena_lay_out(clv_arena *a, clv_arena_layout layout, void *ctx, const char *what, clv_err *err)
{
    size_t bytes;
    if (clv_arena_measure(layout, ctx, &bytes))
        return clv_errf(err, "%s: the buffers' size overflows", what);
    if (clv_arena_reserve(a, bytes, what, err))
        return -1;
    if (clv_arena_carve(a, layout, ctx))
        return clv_errf(err, "%s: the layout changed between counting and carving", what);
    return 0;
}

void clv_arena_free(clv_arena *a)
{
    clv_free(a->mem);
    a->mem = NULL;
    a->bytes = 0;
}
