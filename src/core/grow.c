/* Growable arrays (see clvit/core.h): one doubling rule, checked for overflow. */
#include "clvit/core.h"

#include <stdlib.h>

int clv_grow_array(void **items, size_t *cap, size_t need, size_t elem, size_t min_cap)
{
    if (need <= *cap && (*items || need == 0))
        return 0;
    size_t next = *cap > min_cap ? *cap : min_cap, bytes;
    while (next < need) {
        if (next > SIZE_MAX / 2)
            return -1;
        next *= 2;
    }
    if (clv_mul_overflow(next, elem, &bytes))
        return -1;
    void *grown = realloc(*items, bytes);
    if (!grown)
        return -1;
    *items = grown;
    *cap = next;
    return 0;
}
