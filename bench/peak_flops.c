/* The machine's peak single-precision FLOP/s on N threads: independent FMA
 * chains in registers (no memory traffic), AVX2 (8 lanes) and, where the
 * CPU and the build have it, AVX-512 (16 lanes). Prints one JSON object. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 12 /* enough independent accumulators to hide the FMA latency */
#define ITERS 20000000L

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Twelve named accumulators: an array would be kept in memory at -O2 and
 * the loop would measure store forwarding instead of the FMA units. */
#define FMA12(F, a, b)                                                                                              \
    c0 = F(c0, a, b), c1 = F(c1, a, b), c2 = F(c2, a, b), c3 = F(c3, a, b), c4 = F(c4, a, b), c5 = F(c5, a, b),     \
    c6 = F(c6, a, b), c7 = F(c7, a, b), c8 = F(c8, a, b), c9 = F(c9, a, b), c10 = F(c10, a, b), c11 = F(c11, a, b)

__attribute__((target("avx2,fma"))) static float run_avx2(long iters)
{
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    __m256 c0 = _mm256_set1_ps(0), c1 = _mm256_set1_ps(1), c2 = _mm256_set1_ps(2), c3 = _mm256_set1_ps(3),
           c4 = _mm256_set1_ps(4), c5 = _mm256_set1_ps(5), c6 = _mm256_set1_ps(6), c7 = _mm256_set1_ps(7),
           c8 = _mm256_set1_ps(8), c9 = _mm256_set1_ps(9), c10 = _mm256_set1_ps(10), c11 = _mm256_set1_ps(11);
    for (long i = 0; i < iters; i++)
        FMA12(_mm256_fmadd_ps, a, b);
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

#ifdef __AVX512F__
static float run_avx512(long iters)
{
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    __m512 c0 = _mm512_set1_ps(0), c1 = _mm512_set1_ps(1), c2 = _mm512_set1_ps(2), c3 = _mm512_set1_ps(3),
           c4 = _mm512_set1_ps(4), c5 = _mm512_set1_ps(5), c6 = _mm512_set1_ps(6), c7 = _mm512_set1_ps(7),
           c8 = _mm512_set1_ps(8), c9 = _mm512_set1_ps(9), c10 = _mm512_set1_ps(10), c11 = _mm512_set1_ps(11);
    for (long i = 0; i < iters; i++)
        FMA12(_mm512_fmadd_ps, a, b);
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    return _mm512_reduce_add_ps(s);
}
#endif

/* Best of 3 of a parallel run: FLOP/s over all threads. */
static double measure(int lanes, float (*fn)(long), int threads, long iters)
{
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += fn(iters);
        double t = now() - t0;
        double flops = 2.0 * lanes * CHAINS * (double)iters * threads / t;
        if (flops > best)
            best = flops;
    }
    return best;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : omp_get_max_threads();
    long iters = argc > 2 ? atol(argv[2]) : ITERS;
    __builtin_cpu_init();
    double avx2 = __builtin_cpu_supports("fma") ? measure(8, run_avx2, threads, iters) : 0, avx512 = 0;
#ifdef __AVX512F__
    if (__builtin_cpu_supports("avx512f"))
        avx512 = measure(16, run_avx512, threads, iters);
#endif
    double peak = avx512 > avx2 ? avx512 : avx2;
    printf("{\"threads\": %d, \"peak_gflops\": %.1f, \"avx2_fma_gflops\": %.1f, \"avx512_gflops\": %.1f}\n", threads,
           peak / 1e9, avx2 / 1e9, avx512 / 1e9);
    return 0;
}
