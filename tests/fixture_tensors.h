/* Reading PyTorch/reference fixtures in the tests (test_vit, test_swin,
 * test_resnet, test_block): one tensor out of a safetensors file, and the
 * relative difference the comparisons assert on. Header-only, like
 * gradcheck.h. */
#ifndef CLVIT_TESTS_FIXTURE_TENSORS_H
#define CLVIT_TESTS_FIXTURE_TENSORS_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "clvit/safetensors.h"

/* The tensor `name` of st as numel floats (the caller frees); the test fails
 * when it is missing or has another size. */
static inline float *read_tensor(const clv_safetensors *st, const char *name, int64_t numel)
{
    clv_err err = {{0}};
    const clv_st_tensor *t = clv_st_find(st, name);
    cr_assert(t, "%s: no tensor %s", st->path, name);
    cr_assert_eq(t->numel, numel, "%s: %s has %lld elements, want %lld", st->path, name, (long long)t->numel,
                 (long long)numel);
    float *p = malloc((size_t)numel * sizeof(float));
    cr_assert(p);
    cr_assert_eq(clv_st_read_f32(st, t, p, numel, &err), 0, "%s", err.msg);
    return p;
}

/* max |a - b| / max(max |b|, floor); a NaN difference counts as infinite */
static inline double rel_diff(const float *a, const float *b, int64_t n, double floor)
{
    double bmax = floor, d = 0;
    for (int64_t i = 0; i < n; i++)
        bmax = fmax(bmax, fabs((double)b[i]));
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= d))
            d = isnan(e) ? INFINITY : e;
    }
    return d / bmax;
}

#endif
