/* The task router (train/router.h). One batch goes through every learned
 * task; a task's backbone forward is shared with an earlier task whose
 * backbone function is the same, known when activating it attaches no
 * adapter and leaves every backbone weight as the earlier one had it (the
 * crc32 of the weights): finetune's and linear's tasks differ only in
 * their heads, so T tasks cost one forward there. */
#include "train/router.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "clvit/kernels.h"

static int has_adapters(const clv_model *m)
{
    for (int i = 0; i < m->n_wlayers; i++)
        if (m->wlayers[i]->adapter)
            return 1;
    return 0;
}

static uint32_t weights_crc(const clv_model *m)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < m->params.count; i++) {
        const clv_param *p = m->params.items[i];
        const unsigned char *b = (const unsigned char *)p->data;
        size_t left = (size_t)p->numel * sizeof(float);
        while (left) { /* zlib takes uInt lengths */
            uInt n = left > (1u << 30) ? (1u << 30) : (uInt)left;
            crc = crc32(crc, b, n);
            b += n;
            left -= n;
        }
    }
    return (uint32_t)crc;
}

int clv_router_init(clv_router *r, clv_run *R, clv_err *err)
{
    memset(r, 0, sizeof *r);
    r->active = -1;
    int T = R->rec.n_tasks;
    r->task = calloc((size_t)(T > 0 ? T : 1), sizeof *r->task);
    r->group = calloc((size_t)(T > 0 ? T : 1), sizeof *r->group);
    r->logits = calloc((size_t)(T > 0 ? T : 1), sizeof *r->logits);
    uint32_t *crc = calloc((size_t)(T > 0 ? T : 1), sizeof *crc);
    int *adapted = calloc((size_t)(T > 0 ? T : 1), sizeof *adapted);
    int rc = -1;
    if (!r->task || !r->group || !r->logits || !crc || !adapted) {
        clv_errf(err, "out of memory");
        goto done;
    }
    for (int t = 0; t < T; t++)
        if (R->rec.tasks[t].done && t < R->L.n_heads && R->L.heads[t].classes > 0)
            r->task[r->n++] = t;
    if (!r->n) {
        clv_errf(err, "%s: no task is learned yet", R->dir ? R->dir : "the weights");
        goto done;
    }
    for (int i = 0; i < r->n; i++) {
        if (clv_run_activate(R, r->task[i], err))
            goto done;
        r->active = r->task[i];
        adapted[i] = has_adapters(R->L.model);
        crc[i] = adapted[i] ? 0 : weights_crc(R->L.model);
        r->group[i] = i;
        for (int j = 0; j < i && !adapted[i]; j++)
            if (!adapted[j] && crc[j] == crc[i] && r->group[j] == j) {
                r->group[i] = j;
                break;
            }
        r->groups += r->group[i] == i;
    }
    rc = 0;
done:
    free(crc);
    free(adapted);
    if (rc)
        clv_router_free(r);
    return rc;
}

static int ensure_logits(clv_router *r, clv_run *R, int64_t B, clv_err *err)
{
    if (B <= r->cap_B)
        return 0;
    for (int i = 0; i < r->n; i++) {
        clv_free(r->logits[i]);
        if (!(r->logits[i] = clv_alloc_array((size_t)B * (size_t)R->L.heads[r->task[i]].classes, sizeof(float))))
            return clv_errf(err, "out of memory for a batch of %lld", (long long)B);
    }
    r->cap_B = B;
    return 0;
}

int clv_router_route(clv_router *r, clv_run *R, clv_task_select sel, const float *x, int64_t B, clv_route *out,
                     clv_err *err)
{
    if (ensure_logits(r, R, B, err))
        return -1;
    /* the task already active first: one switch fewer per batch */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < r->n; i++) {
            if (r->group[i] != i || (r->task[i] == r->active) != (pass == 0))
                continue;
            const int t = r->task[i];
            if (r->active != t) {
                if (clv_run_activate(R, t, err))
                    return -1;
                r->active = t;
            }
            if (clv_run_logits(R, t, x, B, err))
                return -1;
            /* every task of the group: its own head on these features */
            for (int j = i; j < r->n; j++) {
                if (r->group[j] != i)
                    continue;
                const clv_head *h = &R->L.heads[r->task[j]];
                clv_head_forward(h, r->logits[j], R->eval.feats, B);
                for (int64_t k = 0; k < B * h->classes; k++)
                    if (!isfinite(r->logits[j][k]))
                        return clv_errf(err, "%s%stask %d: its weights give a non-finite logit (image %lld of the "
                                             "batch): this task cannot classify",
                                        R->dir ? R->dir : "", R->dir ? ": " : "", r->task[j] + 1,
                                        (long long)(k / h->classes));
            }
        }
    for (int64_t b = 0; b < B; b++) {
        clv_route best = {-1, 0, 0, 0};
        for (int i = 0; i < r->n; i++) {
            const int K = R->L.heads[r->task[i]].classes;
            clv_route c = {r->task[i], 0, 0, 0};
            clv_task_scores(r->logits[i] + b * K, K, &c.label, &c.maxprob, &c.entropy);
            if (best.task < 0 || clv_task_scores_better(sel, c.maxprob, c.entropy, best.maxprob, best.entropy))
                best = c;
        }
        out[b] = best;
    }
    return 0;
}

void clv_router_free(clv_router *r)
{
    for (int i = 0; r->logits && i < r->n; i++)
        clv_free(r->logits[i]);
    free(r->logits);
    free(r->task);
    free(r->group);
    memset(r, 0, sizeof *r);
}
