/* clvit core: error reporting, logging, checked allocation, deterministic RNG.
 *
 * Errors: library functions return 0 on success and -1 on failure, after
 * writing a one-line reason into a caller-owned clv_err. Only the CLI prints
 * and exits. There is no global error state.
 *
 * RNG: counter-based (splitmix64 over a 64-bit key), so a random number is a
 * pure function of (seed, stream, index): results do not depend on thread
 * count or on the order in which work items are visited, and a resumed run
 * draws exactly what the uninterrupted run would have drawn. */
#ifndef CLVIT_CORE_H
#define CLVIT_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CLV_ERR_LEN 512

typedef struct clv_err {
    char msg[CLV_ERR_LEN];
} clv_err;

/* Formats a reason into err (err may be NULL) and returns -1, so that
 * `return clv_errf(err, "%s: truncated", path);` reads naturally. */
int clv_errf(clv_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes an existing message: "ctx: old message". Returns -1. */
int clv_err_prefix(clv_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- logging: the only global mutable state (a level) ---- */
typedef enum { CLV_LOG_ERROR = 0, CLV_LOG_WARN = 1, CLV_LOG_INFO = 2, CLV_LOG_DEBUG = 3 } clv_log_level;
void clv_log_set_level(clv_log_level level);
/* "error", "warning" (or "warn"), "info", "debug" into *level: 0, or -1 for any other name */
int clv_log_level_parse(const char *name, clv_log_level *level);
clv_log_level clv_log_get_level(void);
void clv_log(clv_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define clv_info(...) clv_log(CLV_LOG_INFO, __VA_ARGS__)
#define clv_warn(...) clv_log(CLV_LOG_WARN, __VA_ARGS__)
#define clv_debug(...) clv_log(CLV_LOG_DEBUG, __VA_ARGS__)

/* ---- allocation: 64-byte aligned, zeroed, NULL on failure or overflow ---- */
void *clv_alloc(size_t nbytes);
void *clv_alloc_array(size_t count, size_t elem_size); /* overflow-checked count*elem */
void clv_free(void *p);
/* a*b into *out; returns 0, or -1 on overflow of size_t */
int clv_mul_overflow(size_t a, size_t b, size_t *out);
/* Scratch that only grows: room for n items of elem bytes in *p (capacity *cap items). When it
 * must grow, the old block is freed first (contents dropped, the new one zeroed and aligned as
 * clv_alloc's), so peak memory holds one block. Returns 0, or -1 out of memory (*p NULL, *cap 0). */
int clv_scratch_reserve(void **p, size_t *cap, size_t n, size_t elem);

/* ---- growable arrays ----
 * Makes room for need items of elem bytes in *items, whose capacity is *cap
 * items: the capacity at least doubles (min_cap the first time). Returns 0,
 * or -1 on overflow or out of memory, leaving *items and *cap as they were.
 * Use the macro: `if (clv_grow(&v->items, &v->cap, v->count + 1)) ...` */
int clv_grow_array(void **items, size_t *cap, size_t need, size_t elem, size_t min_cap);
#define clv_grow(items_ptr, cap_ptr, need) \
    clv_grow_array((void **)(items_ptr), (cap_ptr), (size_t)(need), sizeof **(items_ptr), 16)

/* ---- deterministic RNG ---- */
uint64_t clv_splitmix64(uint64_t x);
/* A key for a named stream: hash of (seed, stream id, sub ids). */
uint64_t clv_rng_key(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b);
/* The i-th 64-bit draw of a key. */
static inline uint64_t clv_rng_u64(uint64_t key, uint64_t i) { return clv_splitmix64(key ^ clv_splitmix64(i + 0x9E3779B97F4A7C15ull)); }
/* Uniform in [0, 1) with 24 random bits (exact in float). */
static inline float clv_rng_uniform(uint64_t key, uint64_t i) { return (float)(clv_rng_u64(key, i) >> 40) * (1.0f / 16777216.0f); }
/* Uniform integer in [0, n). */
static inline uint64_t clv_rng_below(uint64_t key, uint64_t i, uint64_t n) { return (uint64_t)(((unsigned __int128)clv_rng_u64(key, i) * n) >> 64); }
/* Standard normal (Box-Muller on draws 2i, 2i+1). */
float clv_rng_normal(uint64_t key, uint64_t i);
/* Truncated normal N(0, std^2) clipped to [-2 std, 2 std] by resampling, like timm's trunc_normal_. */
float clv_rng_trunc_normal(uint64_t key, uint64_t i, float std);
/* Fisher-Yates permutation of 0..n-1 drawn from key. */
void clv_rng_permutation(uint64_t key, int64_t *perm, int64_t n);

/* Streams: fixed ids so that every consumer of randomness has its own. */
enum {
    CLV_STREAM_INIT = 1,     /* parameter initialization */
    CLV_STREAM_SHUFFLE = 2,  /* epoch order */
    CLV_STREAM_AUGMENT = 3,  /* crops and flips */
    CLV_STREAM_CLASSES = 4,  /* class order of the task split */
    CLV_STREAM_ADAPTER = 5,  /* adapter initialization */
    CLV_STREAM_BENCH = 6     /* synthetic benchmark inputs */
};

/* ---- time ---- */
double clv_now(void); /* monotonic seconds */

/* ---- threads: the one OpenMP pool ---- */
int clv_threads_get(void);
void clv_threads_set(int n); /* n <= 0: leave OpenMP's default */
/* With a binding asked for (OMP_PROC_BIND or OMP_PLACES), libgomp binds the process's first thread
 * to the first place before main, and every thread that thread creates inherits that one place.
 * For a thread that is not OpenMP's (the data loader's, the process clvit restarts as): lets the
 * calling thread run on the union of OpenMP's places, which is what libgomp made of the CPUs the
 * process was started with (a taskset's too). 1 when it did, 0 without binding (nothing to undo),
 * -1 when the system refused (the thread keeps its CPUs: slower, not wrong). */
int clv_thread_spread_over_places(void);
/* The CPUs the calling thread may run on, as a list ("0-3,6"), into buf (cut to n); returns buf. */
const char *clv_thread_cpus(char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
