/* Per-kind storage accounting (see clvit/storage.h). */
#include "clvit/storage.h"

#include <string.h>

static int find(const clv_storage *s, const char *kind)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->item[i].kind, kind) == 0)
            return i;
    return -1;
}

static int append(clv_storage *s, const char *kind)
{
    if (s->n == CLV_STORAGE_KINDS || strlen(kind) >= sizeof s->item[0].kind)
        return -1;
    strcpy(s->item[s->n].kind, kind);
    s->item[s->n].bits = 0;
    s->item[s->n].elements = 0;
    return s->n++;
}

int clv_storage_add(clv_storage *s, const char *kind, int64_t elements, int bits_each)
{
    if (elements == 0)
        return 0;
    int i = find(s, kind);
    if (i < 0 && (i = append(s, kind)) < 0)
        return -1;
    s->item[i].bits += elements * bits_each;
    s->item[i].elements += elements;
    return 0;
}

int clv_storage_set(clv_storage *s, const char *kind, int64_t bits, int64_t elements)
{
    if (bits < 0 || elements < 0)
        return -1;
    int i = find(s, kind);
    if (i < 0 && (i = append(s, kind)) < 0)
        return -1;
    s->item[i].bits = bits;
    s->item[i].elements = elements;
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
    int i = find(s, kind);
    return i < 0 ? 0 : s->item[i].bits;
}

int64_t clv_storage_get_elements(const clv_storage *s, const char *kind)
{
    int i = find(s, kind);
    return i < 0 ? 0 : s->item[i].elements;
}

int clv_storage_kind_is_one_time(const char *kind)
{
    return strncmp(kind, CLV_STORAGE_SHARED_PREFIX, strlen(CLV_STORAGE_SHARED_PREFIX)) == 0;
}
