/* Per-kind storage accounting (see clvit/storage.h). */
#include "clvit/storage.h"

#include <string.h>

int clv_storage_add(clv_storage *s, const char *kind, int64_t bits)
{
    if (bits == 0)
        return 0;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->item[i].kind, kind) == 0) {
            s->item[i].bits += bits;
            return 0;
        }
    if (s->n == CLV_STORAGE_KINDS || strlen(kind) >= sizeof s->item[0].kind)
        return -1;
    strcpy(s->item[s->n].kind, kind);
    s->item[s->n].bits = bits;
    s->n++;
    return 0;
}

int64_t clv_storage_total(const clv_storage *s)
{
    int64_t t = 0;
    for (int i = 0; i < s->n; i++)
        t += s->item[i].bits;
    return t;
}

int64_t clv_storage_get(const clv_storage *s, const char *kind)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->item[i].kind, kind) == 0)
            return s->item[i].bits;
    return 0;
}
