/* Private to src/kernels: expf and erff written as plain arithmetic so that
 * loops calling them vectorize (glibc offers vector versions only under
 * -ffast-math). On this machine glibc 2.36's scalar expf costs ~5 ns and
 * erff 15-25 ns, which made GELU cost more than the MLP's GEMMs; these run
 * at memory speed. Accuracy (tests/test_kernels.c, kernels/vexp and
 * kernels/verf): exp within 1.5 ulp, erf within 4e-7 absolute. GCC if-converts its clamps only
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
    const float x_in = x;
    x = x < -87.33654f ? -87.33654f : x;
    x = x > 88.37626f ? 88.37626f : x;
    x = x == x ? x : 0.0f; /* NaN: computed as 0 (no float-to-int of NaN), returned as NaN below */
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
    const float y = x <= -87.33654f ? 0.0f : p * scale;
    return x_in == x_in ? y : x_in;
}

/* erf(x): odd rational approximation on [-4, 4] (erf is +-1 in float
 * outside), the minimax fit that Eigen and XLA use for float. */
static inline float clv_verff(float x)
{
    x = x < -4.0f ? -4.0f : x;
    x = x > 4.0f ? 4.0f : x;
    const float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return x * p / q;
}

/* GELU(x) = x Phi(x), exact (erf) form: the one expression every GELU kernel uses */
static inline float clv_gelu1(float x) { return 0.5f * x * (1.0f + clv_verff(x * 0.70710678118654752440f)); }

#endif
