/* Evaluation: a task's test accuracy with its own head and backbone
 * function, and the re-evaluation of a finished run (`clvit eval`). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/kernels.h"
#include "train/run_internal.h"

int clv_run_activate(clv_run *R, int task, clv_err *err)
{
    if (R->strategy->ops->activate(R->strategy, &R->L, task, err))
        return -1;
    clv_wlayers_invalidate(R->L.model->wlayers, R->L.model->n_wlayers);
    return 0;
}

int clv_run_logits(clv_run *R, int task, const float *x, int64_t B, clv_err *err)
{
    clv_head *h = &R->L.heads[task];
    R->L.model->training = 0;
    if (clv_batch_bufs_ensure(&R->eval, B, h->classes, R->L.model->info.feat_dim, err) || R->L.model->ops->forward(R->L.model, x, B, R->eval.feats, err))
        return -1;
    clv_head_forward(h, R->eval.logits, R->eval.feats, B);
    /* weights can be finite yet overflow inside the network (1e30 passes
     * every check of a file): no score, accuracy or probability is made of
     * an inf or a NaN */
    const char *source = R->dir ? R->dir : R->cfg && R->cfg->weights[0] ? R->cfg->weights : NULL;
    for (int64_t i = 0; i < B * h->classes; i++)
        if (!isfinite(R->eval.logits[i]))
            return clv_errf(err,
                            "%s%stask %d: its weights give a non-finite logit (%g for class %lld of image %lld of "
                            "the batch): they overflow the network's float arithmetic, so this task cannot "
                            "classify; it diverged when it was trained (train it again with lower learning rates)",
                            source ? source : "", source ? ": " : "", task + 1, (double)R->eval.logits[i],
                            (long long)(i % h->classes), (long long)(i / h->classes));
    return 0;
}

static int argmax(const float *row, int k)
{
    int best = 0;
    for (int i = 1; i < k; i++)
        if (row[i] > row[best])
            best = i;
    return best;
}

int clv_run_evaluate_task(clv_run *R, int task, double *acc, clv_err *err)
{
    if (clv_run_activate(R, task, err))
        return -1;
    clv_loader_config lc = clv_run_test_loader_config(R, task);
    lc.shard_rank = R->dist ? R->dist->rank : 0;
    lc.shard_count = R->dist ? R->dist->size : 0;
    clv_loader *ld = clv_loader_start(&lc, err);
    if (!ld)
        return -1;
    int64_t correct = 0, seen = 0;
    int K = R->L.heads[task].classes, rc;
    clv_batch b;
    while ((rc = clv_loader_next(ld, &b, err)) == 1) {
        if (!b.size) /* more ranks than images in this batch */
            continue;
        if (clv_run_logits(R, task, b.x, b.size, err)) {
            rc = -1;
            break;
        }
        for (int64_t i = 0; i < b.size; i++)
            correct += argmax(R->eval.logits + i * K, K) == b.y[i];
        seen += b.size;
    }
    clv_loader_stop(ld);
    if (rc < 0)
        return -1;
    int64_t counts[2] = {correct, seen}; /* each rank saw its share of every batch */
    if (clv_dist_allreduce_i64(R->dist, counts, 2, err))
        return -1;
    correct = counts[0];
    seen = counts[1];
    if (!seen)
        return clv_errf(err, "task %d has no test images", task + 1);
    *acc = 100.0 * (double)correct / (double)seen;
    return 0;
}

int clv_eval_run(const char *run_dir, int threads, int precision, clv_run_record *rec, clv_config *cfg, double **acc_now,
                 clv_err *err)
{
    clv_run R;
    memset(&R, 0, sizeof R);
    memset(rec, 0, sizeof *rec);
    *acc_now = NULL;
    if (clv_run_record_read(&R.rec, cfg, run_dir, err))
        return -1;
    if (threads > 0)
        cfg->threads = threads;
    if (precision >= 0)
        cfg->precision = (clv_precision)precision;
    clv_threads_set(cfg->threads);
    R.cfg = cfg;
    R.dir = run_dir;
    int rc = -1;
    double *acc = malloc((size_t)R.rec.n_tasks * sizeof *acc);
    if (!acc) {
        clv_errf(err, "out of memory");
        goto done;
    }
    if (clv_run_open_data(&R, err) || clv_run_build_learner(&R, 1, err))
        goto done;
    for (int t = 0; t < R.rec.n_tasks; t++) {
        acc[t] = NAN;
        if (R.rec.tasks[t].done && clv_run_evaluate_task(&R, t, &acc[t], err))
            goto done;
    }
    *rec = R.rec;
    memset(&R.rec, 0, sizeof R.rec); /* handed to the caller */
    *acc_now = acc;
    acc = NULL;
    rc = 0;
done:
    free(acc);
    clv_run_free(&R);
    return rc;
}
