/* A run's storage split into one-time, heads and marginal (see clvit/storage_summary.h). */
#include "clvit/storage_summary.h"

#include <math.h>
#include <string.h>

void clv_storage_split_task(const clv_storage *s, clv_task_split *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < s->n; i++) {
        const char *kind = s->item[i].kind;
        int64_t b = s->item[i].bits, e = s->item[i].elements;
        if (!strcmp(kind, "head")) {
            out->head_bits += b;
            out->head_elements += e;
        } else if (clv_storage_kind_is_one_time(kind)) {
            out->one_time_bits += b;
            out->one_time_elements += e;
        } else {
            out->marginal_bits += b;
            out->marginal_elements += e;
        }
    }
}

int clv_storage_task_is_marginal(const clv_task_record *tr) { return tr->done && !tr->storage.one_time_task; }

/* For the by-kind table only (the totals are summed directly): kinds are few. */
static void accumulate(clv_storage *s, const char *kind, int64_t bits, int64_t elements)
{
    (void)clv_storage_set(s, kind, clv_storage_get(s, kind) + bits, clv_storage_get_elements(s, kind) + elements);
}

void clv_storage_summarize(const clv_run_record *r, clv_storage_summary *out)
{
    memset(out, 0, sizeof *out);
    out->base_bits = r->base_bits;
    out->base_elements = r->base_bits / 32;
    clv_storage_set(&out->one_time, "base", out->base_bits, out->base_elements);
    out->one_time_bits = out->base_bits;
    out->one_time_elements = out->base_elements;
    int64_t counted_bits = 0, counted_elements = 0;
    for (int t = 0; t < r->n_tasks; t++) {
        const clv_task_record *tr = &r->tasks[t];
        if (!tr->done)
            continue;
        clv_task_split sp;
        clv_storage_split_task(&tr->storage, &sp);
        out->n_done++;
        out->one_time_bits += sp.one_time_bits;
        out->one_time_elements += sp.one_time_elements;
        out->head_bits += sp.head_bits;
        out->head_elements += sp.head_elements;
        out->marginal_bits += sp.marginal_bits;
        out->marginal_elements += sp.marginal_elements;
        out->total_bits += tr->stored_bits;
        for (int k = 0; k < tr->storage.n; k++)
            if (clv_storage_kind_is_one_time(tr->storage.item[k].kind))
                accumulate(&out->one_time, tr->storage.item[k].kind, tr->storage.item[k].bits,
                           tr->storage.item[k].elements);
        if (clv_storage_task_is_marginal(tr)) {
            out->n_marginal++;
            counted_bits += sp.marginal_bits;
            counted_elements += sp.marginal_elements;
        }
    }
    out->total_bits += out->base_bits;
    out->total_elements = out->one_time_elements + out->head_elements + out->marginal_elements;
    out->head_bits_per_task = out->n_done ? (double)out->head_bits / out->n_done : NAN;
    out->head_elements_per_task = out->n_done ? (double)out->head_elements / out->n_done : NAN;
    out->marginal_bits_per_task = out->n_marginal ? (double)counted_bits / out->n_marginal : NAN;
    out->marginal_elements_per_task = out->n_marginal ? (double)counted_elements / out->n_marginal : NAN;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

void clv_storage_infer_elements(clv_storage *s)
{
    for (int i = 0; i < s->n; i++)
        s->item[i].elements = ends_with(s->item[i].kind, "_mask") ? s->item[i].bits : s->item[i].bits / 32;
}

void clv_storage_infer_one_time_tasks(clv_run_record *r, const char *method)
{
    static const char *const rkr_kinds[3] = {"lm", "rm", "f"};
    for (int t = 0; t < r->n_tasks; t++) {
        clv_storage *s = &r->tasks[t].storage;
        if (!strcmp(method, "maskrkr"))
            for (int i = 0; i < s->n; i++)
                for (int k = 0; k < 3; k++)
                    if (!strcmp(s->item[i].kind, rkr_kinds[k]))
                        snprintf(s->item[i].kind, sizeof s->item[i].kind, CLV_STORAGE_SHARED_PREFIX "%s",
                                 rkr_kinds[k]);
        s->one_time_task = 0;
        for (int i = 0; i < s->n; i++)
            s->one_time_task |= clv_storage_kind_is_one_time(s->item[i].kind);
    }
    if (r->n_tasks < 1 || !r->tasks[0].done)
        return;
    const clv_task_record *first = &r->tasks[0];
    if (first->stored_bits != first->head_bits)
        return;
    for (int t = 1; t < r->n_tasks; t++)
        if (r->tasks[t].done && r->tasks[t].stored_bits > r->tasks[t].head_bits) {
            r->tasks[0].storage.one_time_task = 1;
            return;
        }
}
