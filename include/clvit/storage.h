/* What a task stores, by kind: the exact bits, and the elements they hold,
 * of each kind of tensor a task adds beyond the shared base ("head", "lm",
 * "rm", "f", "weight_mask", "lm_mask", "backbone", "norms", ...). Written to
 * run.json per task.
 *
 * Kinds whose name starts with "shared_" (Mask-RKR's real-valued LM, RM, F,
 * learned once) are one-time costs, not what the task adds at the margin;
 * "head" is the task's classifier; every other kind is marginal. A strategy
 * marks a task with one_time_task when the task exists to pay a one-time cost
 * (it trains the shared base, or learns Mask-RKR's shared tensors): its bits
 * still count in every total, but the task is left out of the mean marginal
 * cost per task (clvit/storage_summary.h). */
#ifndef CLVIT_STORAGE_H
#define CLVIT_STORAGE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CLV_STORAGE_KINDS 12
#define CLV_STORAGE_SHARED_PREFIX "shared_"

typedef struct clv_storage {
    int n;
    struct {
        char kind[24];
        int64_t bits;
        int64_t elements;
    } item[CLV_STORAGE_KINDS];
    int one_time_task; /* see above */
} clv_storage;

/* Adds elements of bits_each bits to kind (created on first use, in order of
 * first use); zero elements are not recorded. Returns -1 when the table is
 * full or kind too long. */
int clv_storage_add(clv_storage *s, const char *kind, int64_t elements, int bits_each);
/* Floats are stored as 32 bits each. */
static inline int clv_storage_add_floats(clv_storage *s, const char *kind, int64_t floats)
{
    return clv_storage_add(s, kind, floats, 32);
}
/* Mask bits: 1 bit each. */
static inline int clv_storage_add_bits(clv_storage *s, const char *kind, int64_t bits)
{
    return clv_storage_add(s, kind, bits, 1);
}
/* Sets a kind's bits and elements as read from a file (no bits-per-element
 * rule); -1 when full, too long or negative. */
int clv_storage_set(clv_storage *s, const char *kind, int64_t bits, int64_t elements);
int64_t clv_storage_total(const clv_storage *s);
int64_t clv_storage_get(const clv_storage *s, const char *kind);
int64_t clv_storage_get_elements(const clv_storage *s, const char *kind);
/* 1 when kind is a one-time cost ("shared_..."). */
int clv_storage_kind_is_one_time(const char *kind);

#ifdef __cplusplus
}
#endif
#endif
