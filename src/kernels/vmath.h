/* Private to src/kernels: expf written as plain arithmetic so that loops
 * calling it vectorize (glibc offers a vector expf only under -ffast-math);
 * about 6x faster than glibc's scalar expf in softmax loops, within 1.5 ulp
 * (tests/test_kernels.c, kernels/vexp). GCC if-converts its clamps only
 * without -ftrapping-math, so including this header turns that off for the
 * rest of the file (kernels never inspect floating-point exception flags). */
#ifndef CLVIT_KERNELS_VMATH_H
#define CLVIT_KERNELS_VMATH_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

/* exp(x): x = n ln2 + r with |r| <= ln2/2, exp(r) by a degree-6 polynomial
 * (Cephes expf), 2^n put straight into the exponent bits. Inputs below -87.3
 * give 0 (flush instead of denormals), above 88.7 give FLT_MAX-ish 2^127 * e^r. */
static inline float clv_vexpf(float x)
{
    x = x < -87.33654f ? -87.33654f : x;
    x = x > 88.37626f ? 88.37626f : x;
    const float fx = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    /* ln2 split in two so that n*ln2_hi is exact */
    float r = x - fx * 0.693359375f;
    r = r + fx * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t n = (int32_t)fx;
    const int32_t bits = (n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x <= -87.33654f ? 0.0f : p * scale;
}

#endif
