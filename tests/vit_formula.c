/* The fixture weights formula (see vit_formula.h). */
#include "vit_formula.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void vit_formula_param(clv_param *p, int k)
{
    const size_t len = strlen(p->name);
    const int is_norm_w = strstr(p->name, "norm") && len > 7 && strcmp(p->name + len - 7, ".weight") == 0;
    for (int64_t i = 0; i < p->numel; i++) {
        const double di = (double)i;
        const double s = sin(0.0013 * di * di + 0.37 * di + 1.7 * (double)k);
        p->data[i] = (float)(is_norm_w ? 1.0 + 0.1 * s : 0.1 * s);
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(clv_param *const *)a)->name, (*(clv_param *const *)b)->name);
}

void vit_formula_fill(clv_model *m, clv_head *h)
{
    const int n = m->params.count + h->params.count;
    clv_param **all = malloc((size_t)n * sizeof *all);
    if (!all)
        abort();
    memcpy(all, m->params.items, (size_t)m->params.count * sizeof *all);
    memcpy(all + m->params.count, h->params.items, (size_t)h->params.count * sizeof *all);
    qsort(all, (size_t)n, sizeof *all, by_name);
    for (int k = 0; k < n; k++)
        vit_formula_param(all[k], k);
    free(all);
}
