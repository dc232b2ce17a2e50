/* What a task stores, by kind: the exact bits of each kind of tensor a task
 * adds beyond the shared base ("head", "lm", "rm", "f", "weight_mask",
 * "lm_mask", "backbone", "norms", ...). Written to run.json per task. */
#ifndef CLVIT_STORAGE_H
#define CLVIT_STORAGE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CLV_STORAGE_KINDS 12

typedef struct clv_storage {
    int n;
    struct {
        char kind[24];
        int64_t bits;
    } item[CLV_STORAGE_KINDS];
} clv_storage;

/* Adds bits to kind (created on first use, in order of first use); zero bits
 * are not recorded. Returns -1 when the table is full or kind too long. */
int clv_storage_add(clv_storage *s, const char *kind, int64_t bits);
/* Floats are stored as 32 bits each. */
static inline int clv_storage_add_floats(clv_storage *s, const char *kind, int64_t floats)
{
    return clv_storage_add(s, kind, floats * 32);
}
int64_t clv_storage_total(const clv_storage *s);
int64_t clv_storage_get(const clv_storage *s, const char *kind);

#ifdef __cplusplus
}
#endif
#endif
