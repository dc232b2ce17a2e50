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

__attribute__((target("avx2,fma"))) static float run_avx2(long iters)
{
    __m256 acc[CHAINS];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++)
        acc[k] = _mm256_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < CHAINS; k++)
            acc[k] = _mm256_fmadd_ps(acc[k], a, b);
    __m256 s = acc[0];
    for (int k = 1; k < CHAINS; k++)
        s = _mm256_add_ps(s, acc[k]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

#ifdef __AVX512F__
static float run_avx512(long iters)
{
    __m512 acc[CHAINS];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++)
        acc[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < CHAINS; k++)
            acc[k] = _mm512_fmadd_ps(acc[k], a, b);
    __m512 s = acc[0];
    for (int k = 1; k < CHAINS; k++)
        s = _mm512_add_ps(s, acc[k]);
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
