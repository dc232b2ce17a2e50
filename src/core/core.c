/* Error messages, logging, aligned allocation, counter-based RNG, time and
 * the OpenMP thread count. See include/clvit/core.h. */
#include "clvit/core.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

int clv_errf(clv_err *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int clv_err_prefix(clv_err *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char prefix[CLV_ERR_LEN], old[CLV_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%.200s: %.300s", prefix, old);
    return -1;
}

static clv_log_level g_log_level = CLV_LOG_INFO;

void clv_log_set_level(clv_log_level level) { g_log_level = level; }
clv_log_level clv_log_get_level(void) { return g_log_level; }

int clv_log_level_parse(const char *name, clv_log_level *level)
{
    static const struct {
        const char *name;
        clv_log_level level;
    } names[] = {{"error", CLV_LOG_ERROR}, {"warning", CLV_LOG_WARN}, {"warn", CLV_LOG_WARN},
                 {"info", CLV_LOG_INFO},   {"debug", CLV_LOG_DEBUG}};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i].name)) {
            *level = names[i].level;
            return 0;
        }
    return -1;
}

void clv_log(clv_log_level level, const char *fmt, ...)
{
    if (level > g_log_level)
        return;
    static const char *tags[] = {"error", "warning", "", "debug"};
    if (level != CLV_LOG_INFO)
        fprintf(stderr, "clvit: %s: ", tags[level]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int clv_mul_overflow(size_t a, size_t b, size_t *out)
{
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}

void *clv_alloc(size_t nbytes)
{
    if (nbytes == 0)
        nbytes = 1;
    size_t rounded = (nbytes + 63) & ~(size_t)63;
    if (rounded < nbytes)
        return NULL;
    void *p = aligned_alloc(64, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

void *clv_alloc_array(size_t count, size_t elem_size)
{
    size_t n;
    if (clv_mul_overflow(count, elem_size, &n))
        return NULL;
    return clv_alloc(n);
}

void clv_free(void *p) { free(p); }

int clv_scratch_reserve(void **p, size_t *cap, size_t n, size_t elem)
{
    if (n <= *cap && (*p || n == 0))
        return 0;
    clv_free(*p);
    *cap = 0;
    if (!(*p = clv_alloc_array(n, elem)))
        return -1;
    *cap = n;
    return 0;
}

uint64_t clv_splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t clv_rng_key(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b)
{
    uint64_t k = clv_splitmix64(seed);
    k = clv_splitmix64(k ^ stream);
    k = clv_splitmix64(k ^ a);
    return clv_splitmix64(k ^ b);
}

float clv_rng_normal(uint64_t key, uint64_t i)
{
    /* u1 in (0, 1] so the log is finite */
    double u1 = ((double)(clv_rng_u64(key, 2 * i) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(clv_rng_u64(key, 2 * i + 1) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

float clv_rng_trunc_normal(uint64_t key, uint64_t i, float std)
{
    /* resample on a sub-key until inside [-2, 2]; 95% accept on the first draw */
    uint64_t sub = clv_splitmix64(key ^ (i * 0xD1B54A32D192ED03ull));
    for (uint64_t j = 0;; j++) {
        float z = clv_rng_normal(sub, j);
        if (z >= -2.0f && z <= 2.0f)
            return z * std;
    }
}

void clv_rng_permutation(uint64_t key, int64_t *perm, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)clv_rng_below(key, (uint64_t)i, (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

double clv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int clv_threads_get(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void clv_threads_set(int n)
{
#ifdef _OPENMP
    if (n > 0)
        omp_set_num_threads(n);
#else
    (void)n;
#endif
}
