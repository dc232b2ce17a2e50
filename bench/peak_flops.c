/* The machine's peak FLOP/s on N threads, per precision: independent chains
 * in registers (no memory traffic), chosen at run time from what the CPU has,
 * so the file builds with any x86-64 gcc (each kernel has its own target
 * attribute) and runs on an AVX2-only machine. Prints one JSON object:
 *   fp32   FMA: AVX2 (8 lanes x 2 FLOP) and AVX-512 (16 lanes x 2 FLOP);
 *   bf16   AVX512_BF16 vdpbf16ps (16 fp32 lanes, each += 2 bf16 products:
 *          64 FLOP per instruction) and AMX tdpbf16ps (a 16x16 fp32 tile
 *          += 16x32 bf16 times 32x16 bf16: 16*16*32*2 = 16384 FLOP).
 * peak_gflops is the fp32 peak, bf16_peak_gflops the best bf16 one (0 when
 * the CPU has no bf16 dot product) and bf16_peak_source which unit gave it. */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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

__attribute__((target("avx512f"))) static float run_avx512(long iters)
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

/* vdpbf16ps: each fp32 lane of the accumulator += a[2i]*b[2i] + a[2i+1]*b[2i+1] */
__attribute__((target("avx512f,avx512bf16"))) static float run_avx512_bf16(long iters)
{
    const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380); /* 1, ~6e-8 */
    __m512 c0 = _mm512_set1_ps(0), c1 = _mm512_set1_ps(1), c2 = _mm512_set1_ps(2), c3 = _mm512_set1_ps(3),
           c4 = _mm512_set1_ps(4), c5 = _mm512_set1_ps(5), c6 = _mm512_set1_ps(6), c7 = _mm512_set1_ps(7),
           c8 = _mm512_set1_ps(8), c9 = _mm512_set1_ps(9), c10 = _mm512_set1_ps(10), c11 = _mm512_set1_ps(11);
    for (long i = 0; i < iters; i++)
        FMA12(_mm512_dpbf16_ps, a, b);
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    return _mm512_reduce_add_ps(s);
}

/* AMX: 8 tile registers. tmm0-3 accumulate (16 rows x 16 fp32), tmm4-5 are A
 * (16 rows x 32 bf16), tmm6-7 are B (16 rows of 16 bf16 pairs); the 2x2
 * blocking of a real GEMM gives 4 independent accumulators per round. The
 * tile instructions are written as asm (gcc 12's _tile_loadconfig tells the
 * compiler it reads 8 bytes of the 64-byte configuration). */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

#define AMX_FLOP_PER_OP (16.0 * 16 * 32 * 2)
#define AMX_OPS_PER_ITER 4
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

/* Linux hands out the AMX state only to a process that asks for it. */
static int amx_permitted(void) { return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0; }

__attribute__((target("amx-tile,amx-bf16"))) static float run_amx_bf16(long iters)
{
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    static const uint16_t ones[16 * 32] = {[0 ... 16 * 32 - 1] = 0x3c00}; /* bf16 ~0.0078 */
    float out[16 * 16];
    __asm__ volatile("ldtilecfg %0" ::"m"(cfg));
    __asm__ volatile("tilezero %%tmm0\n\ttilezero %%tmm1\n\ttilezero %%tmm2\n\ttilezero %%tmm3\n\t"
                     "tileloadd (%0,%1,1), %%tmm4\n\ttileloadd (%0,%1,1), %%tmm5\n\t"
                     "tileloadd (%0,%1,1), %%tmm6\n\ttileloadd (%0,%1,1), %%tmm7" ::"r"(ones),
                     "r"((long)64)
                     : "memory");
    for (long i = 0; i < iters; i++)
        __asm__ volatile("tdpbf16ps %%tmm6, %%tmm4, %%tmm0\n\ttdpbf16ps %%tmm7, %%tmm4, %%tmm1\n\t"
                         "tdpbf16ps %%tmm6, %%tmm5, %%tmm2\n\ttdpbf16ps %%tmm7, %%tmm5, %%tmm3" ::);
    __asm__ volatile("tilestored %%tmm0, (%0,%1,1)\n\ttilerelease" ::"r"(out), "r"((long)64) : "memory");
    return out[0];
}

/* Best of 3 of a parallel run: FLOP/s over all threads. */
static double measure(double flop_per_iter, float (*fn)(long), int threads, long iters)
{
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += fn(iters);
        double t = now() - t0;
        double flops = flop_per_iter * (double)iters * threads / t;
        if (flops > best)
            best = flops;
    }
    return best;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : omp_get_max_threads();
    long iters = argc > 2 ? atol(argv[2]) : ITERS;
    if (threads < 1 || iters < 1) {
        fprintf(stderr, "usage: peak_flops [THREADS >= 1] [ITERATIONS >= 1]\n");
        return 2;
    }
    __builtin_cpu_init();
    const double fma_iter = 2.0 * CHAINS; /* FLOP per lane per iteration */
    double avx2 = __builtin_cpu_supports("fma") ? measure(8 * fma_iter, run_avx2, threads, iters) : 0;
    double avx512 = __builtin_cpu_supports("avx512f") ? measure(16 * fma_iter, run_avx512, threads, iters) : 0;
    double dp = 0, amx = 0;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16"))
        dp = measure(16 * 2 * fma_iter, run_avx512_bf16, threads, iters);
    const int has_amx = __builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-bf16");
    const int amx_ok = has_amx && amx_permitted();
    /* a round of 4 tile ops takes about as long as 8 rounds of 12 FMAs: the same run time */
    if (amx_ok)
        amx = measure(AMX_FLOP_PER_OP * AMX_OPS_PER_ITER, run_amx_bf16, threads, iters / 8 + 1);
    double peak = avx512 > avx2 ? avx512 : avx2, bf16 = amx > dp ? amx : dp;
    const char *src = amx > dp ? "amx tdpbf16ps" : dp > 0 ? "avx512_bf16 vdpbf16ps" : "none";
    printf("{\"threads\": %d, \"peak_gflops\": %.1f, \"avx2_fma_gflops\": %.1f, \"avx512_gflops\": %.1f, "
           "\"avx512_bf16_gflops\": %.1f, \"amx_bf16_gflops\": %.1f, \"bf16_peak_gflops\": %.1f, "
           "\"bf16_peak_source\": \"%s\"%s}\n",
           threads, peak / 1e9, avx2 / 1e9, avx512 / 1e9, dp / 1e9, amx / 1e9, bf16 / 1e9, src,
           has_amx && !amx_ok ? ", \"amx_note\": \"the kernel refused AMX (arch_prctl ARCH_REQ_XCOMP_PERM)\"" : "");
    return 0;
}
