/* The task-by-task training loop (see clvit/trainer.h). */
#include "clvit/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clvit/dist.h"
#include "clvit/gemm.h"
#include "clvit/kernels.h"
#include "clvit/mask_density.h"
#include "clvit/metrics_log.h"
#include "clvit/optim.h"
#include "clvit/step.h"
#include "clvit/task_checks.h"
#include "train/progress.h"
#include "train/run_internal.h"

static int evaluate_row(clv_run *R, int row, clv_err *err)
{
    for (int j = 0; j <= row; j++) {
        double acc;
        if (clv_run_evaluate_task(R, j, &acc, err))
            return -1;
        R->rec.acc[row * R->rec.n_tasks + j] = acc;
    }
    return 0;
}

/* ---- one task: setup, resume, epochs of steps, end ---- */

typedef struct task_run {
    clv_run *R;
    int task;
    clv_step step;
    clv_schedule sched;
    clv_metrics_log metrics;
    clv_progress prog;
    int64_t n, spe, total; /* training images, steps per epoch, steps of the task */
    int64_t at;            /* steps taken */
    float last_loss;       /* for the message of a task whose weights diverged */
    int stopped;
} task_run;

static int save_state(task_run *T, clv_err *err)
{
    clv_run *R = T->R;
    clv_ckpt_position pos = {T->task, T->at, clv_optim_get_step(T->step.opt)};
    int rc = R->writer ? clv_ckpt_save_state(R->opts->out_dir, T->step.groups, T->step.n_groups, &pos, &R->curve, err)
                       : 0;
    clv_dist_barrier(R->dist);
    return rc;
}

/* The warnings of a task go to its record and, from the writing rank, to the log. */
static void log_new_warnings(const clv_run *R, const clv_warnings *w, int from)
{
    for (int i = from; R->writer && i < w->n; i++)
        clv_warn("%s", w->items[i]);
}

/* mask_budget_short: at the start of a task that trains mask scores. */
static int check_mask_budget(clv_run *R, int task, const clv_params *trainable, int64_t spe, clv_err *err)
{
    float lr = -1;
    for (int i = 0; i < trainable->count; i++)
        if (trainable->items[i]->mask_score && trainable->items[i]->lr_scale > lr)
            lr = trainable->items[i]->lr_scale;
    if (lr < 0)
        return 0; /* no scores train in this task (a base task, Mask-RKR's shared one, other methods) */
    clv_warnings *w = &R->rec.tasks[task].warnings;
    int before = w->n;
    if (clv_check_mask_budget(R->cfg, task, lr, spe, w) < 0)
        return clv_errf(err, "out of memory");
    log_new_warnings(R, w, before);
    return 0;
}

static int record_curve(clv_task_record *tr, const clv_task_curve *c, clv_err *err)
{
    double *loss = malloc(((size_t)c->epochs + 1) * sizeof *loss), *acc = malloc(((size_t)c->epochs + 1) * sizeof *acc);
    int rc = loss && acc ? 0 : clv_errf(err, "out of memory");
    for (int e = 0; !rc && e < c->epochs; e++) {
        loss[e] = clv_task_curve_loss(c, e);
        acc[e] = clv_task_curve_accuracy(c, e);
    }
    if (!rc)
        rc = clv_task_record_set_curves(tr, c->epochs, loss, acc, err);
    free(loss);
    free(acc);
    return rc;
}

/* The head, the strategy's begin_task, what trains, the schedule, the task's warnings and curve. */
static int task_setup(task_run *T, clv_err *err)
{
    clv_run *R = T->R;
    const clv_config *cfg = R->cfg;
    const int task = T->task;
    if (clv_step_begin(&T->step, cfg, &R->L, R->strategy, task, R->split.tasks[task].n_classes, R->dist, err))
        return -1;
    R->rec.tasks[task].trainable_params = clv_params_count(&T->step.trainable, 0);
    T->n = R->split.tasks[task].n_train; /* --train-limit applied to the split */
    if (T->n < 1)
        return clv_errf(err, "task %d has no training images", task + 1);
    T->spe = clv_steps_per_epoch(T->n, cfg->batch);
    T->total = T->spe * cfg->epochs;
    T->sched = clv_task_schedule(cfg, T->spe);
    T->last_loss = NAN;
    /* a resumed task's warnings are found again (they depend on the settings only) */
    clv_warnings_clear(&R->rec.tasks[task].warnings);
    if (check_mask_budget(R, task, &T->step.trainable, T->spe, err))
        return -1;
    clv_task_curve_free(&R->curve);
    return clv_task_curve_init(&R->curve, cfg->epochs, (int)T->spe, err);
}

/* A state file left by a stopped run of this task: parameters, optimizer, position. */
static int task_resume(task_run *T, clv_err *err)
{
    clv_run *R = T->R;
    clv_ckpt_position pos;
    int st = clv_ckpt_load_state(R->opts->out_dir, T->step.groups, T->step.n_groups, &pos, &R->curve, err);
    if (st < 0)
        return -1;
    if (st == 0) {
        if (pos.task != T->task || pos.step > T->total)
            return clv_errf(err, "%s/state.safetensors is for task %d step %lld, expected task %d", R->opts->out_dir,
                            pos.task + 1, (long long)pos.step, T->task + 1);
        T->at = pos.step;
        clv_optim_set_step(T->step.opt, pos.opt_t);
        clv_wlayers_invalidate(R->L.model->wlayers, R->L.model->n_wlayers);
        clv_info("resuming task %d at step %lld of %lld", T->task + 1, (long long)T->at, (long long)T->total);
    }
    return 0;
}

/* One optimizer step on a batch, its records, and a checkpoint when due or asked for. */
static int task_step(task_run *T, int epoch, const clv_batch *b, clv_err *err)
{
    clv_run *R = T->R;
    const clv_config *cfg = R->cfg;
    const float factor = clv_schedule_factor(&T->sched, T->at);
    clv_step_stats stats = {0};
    stats.stop = (R->opts->stop && *R->opts->stop) ||
                 (R->opts->stop_after_steps && R->opts->stop_after_steps == R->steps_run + 1);
    if (clv_step_run(&T->step, b->x, b->y, b->size, b->global_size, factor, &stats, err))
        return stats.diverged ? clv_err_prefix(err, "task %d step %lld", T->task + 1, (long long)T->at) : -1;
    clv_task_curve_step(&R->curve, epoch, T->at, stats.loss, stats.correct, b->global_size);
    clv_metrics_log_row(&T->metrics, epoch, T->at + 1, stats.loss, stats.correct, b->global_size, cfg->lr * factor);
    T->at++;
    R->steps_run++;
    T->last_loss = stats.loss;
    clv_progress_step(&T->prog, b->global_size, stats.loss, stats.correct);
    int periodic = cfg->checkpoint_every && T->at % cfg->checkpoint_every == 0 && T->at % T->spe != 0;
    if ((stats.stop || periodic) && save_state(T, err))
        return -1;
    T->stopped = stats.stop;
    return 0;
}

static int task_epoch(task_run *T, int epoch, clv_err *err)
{
    clv_run *R = T->R;
    clv_loader_config lc = clv_run_loader_config(R, T->task, epoch);
    lc.skip_batches = T->at - (int64_t)epoch * T->spe;
    clv_loader *ld = clv_loader_start(&lc, err);
    if (!ld)
        return -1;
    clv_progress_epoch_begin(&T->prog, epoch, T->at - (int64_t)epoch * T->spe);
    clv_batch b;
    int got = 0;
    while (!T->stopped && (got = clv_loader_next(ld, &b, err)) == 1)
        if (task_step(T, epoch, &b, err)) {
            got = -1;
            break;
        }
    clv_loader_stop(ld);
    if (got < 0)
        return -1;
    if (T->stopped)
        return 0;
    clv_progress_epoch_end(&T->prog);
    return save_state(T, err);
}

/* The last step's loss was finite, yet its update may not be: nothing
 * non-finite reaches a task file or is recorded as learned. */
static int check_finite(const task_run *T, clv_err *err)
{
    int64_t at = 0;
    const clv_param *bad = clv_params_first_nonfinite(&T->step.trainable, &at);
    if (!bad)
        return 0;
    return clv_errf(err,
                    "task %d diverged at its last steps: %s[%lld] is %g after step %lld (the last loss was %g); nothing "
                    "of this task was saved. Lower the learning rate (--lr, --lr-head, --lr-adapter, --lr-mask) and "
                    "resume with --force, or start afresh",
                    T->task + 1, bad->name, (long long)at, (double)bad->data[at], (long long)T->at,
                    (double)T->last_loss);
}

static int train_task(clv_run *R, int task, clv_err *err)
{
    const clv_config *cfg = R->cfg;
    task_run T;
    memset(&T, 0, sizeof T);
    T.R = R;
    T.task = task;
    double t0 = clv_now();
    int rc = -1;
    if (task_setup(&T, err) || task_resume(&T, err))
        goto done;
    if (R->writer &&
        clv_metrics_log_begin(&T.metrics, R->opts->out_dir, task, T.at, (int)T.spe, cfg->checkpoint_every, err))
        goto done;
    int64_t steps_after = 0; /* of the tasks still to learn: the run's time left */
    for (int t = task + 1; t < R->rec.n_tasks; t++)
        steps_after += R->rec.tasks[t].done ? 0 : clv_steps_per_epoch(R->split.tasks[t].n_train, cfg->batch) * cfg->epochs;
    clv_progress_init(&T.prog, R->opts->progress, task, R->rec.n_tasks, cfg->epochs, (int)T.spe, steps_after);
    for (int epoch = (int)(T.at / T.spe); epoch < cfg->epochs && !T.stopped; epoch++)
        if (task_epoch(&T, epoch, err))
            goto done;
    if (T.stopped) {
        rc = CLV_STOPPED;
        goto done;
    }
    if (check_finite(&T, err))
        goto done;
    R->rec.tasks[task].seconds += clv_now() - t0;
    if (record_curve(&R->rec.tasks[task], &R->curve, err))
        goto done;
    clv_task_pass pass = {R, &T.step, task};
    if (R->strategy->ops->consolidate && R->strategy->ops->consolidate(R->strategy, &R->L, task, &pass, err))
        goto done;
    if (R->strategy->ops->end_task(R->strategy, &R->L, task, err))
        goto done;
    clv_head *h = &R->L.heads[task];
    for (int i = 0; i < h->params.count; i++)
        clv_param_set_trainable(h->params.items[i], 0, NULL);
    rc = 0;
done:
    clv_metrics_log_end(&T.metrics);
    clv_step_end(&T.step);
    return rc;
}

/* ---- the run ---- */

static int make_dir(const char *dir, clv_err *err)
{
    if (mkdir(dir, 0777) && errno != EEXIST)
        return clv_errf(err, "%s: cannot create the run directory: %s", dir, strerror(errno));
    return 0;
}

static void thousands(int64_t v, char *buf, size_t len)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)v), o = 0;
    for (int i = 0; i < n && o + 2 < (int)len; i++) {
        if (i && digits[i - 1] != '-' && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
}

/* The 0 bits of the masks the task file stores, counted from the file. */
static int record_mask_density(clv_run *R, int task, clv_err *err)
{
    clv_task_record *tr = &R->rec.tasks[task];
    const clv_model *m = R->L.model;
    char path[CLV_PATH_LEN + 64];
    clv_ckpt_path(path, sizeof path, R->opts->out_dir, "task", task);
    const char **order = malloc(((size_t)m->n_wlayers + 1) * sizeof *order);
    if (!order)
        return clv_errf(err, "out of memory");
    for (int i = 0; i < m->n_wlayers; i++)
        order[i] = m->wlayers[i]->name;
    clv_safetensors st;
    int rc = clv_st_open(&st, path, err);
    if (!rc) {
        clv_mask_density_free(&tr->masks);
        rc = clv_mask_density_read(&st, order, m->n_wlayers, &tr->masks, err);
        clv_st_close(&st);
    }
    free(order);
    if (!rc && tr->masks.bits && R->opts->progress) {
        char bits[40];
        thousands(tr->masks.bits, bits, sizeof bits);
        clv_info("task %d: %.2f%% of %s mask bits are 0", task + 1,
                 100.0 * (double)tr->masks.zero_bits / (double)tr->masks.bits, bits);
    }
    return rc;
}

/* near_chance, loss_not_falling: once the task's own accuracy is measured. */
static int check_outcome(clv_run *R, int task, clv_err *err)
{
    clv_task_record *tr = &R->rec.tasks[task];
    int before = tr->warnings.n;
    if (clv_check_task_outcome(task, tr->n_classes, clv_run_record_acc(&R->rec, task, task), &R->curve,
                               &tr->warnings) < 0)
        return clv_errf(err, "out of memory");
    log_new_warnings(R, &tr->warnings, before);
    return 0;
}

static int finish_task(clv_run *R, int task, clv_err *err)
{
    const clv_task_info *ti = &R->split.tasks[task];
    clv_task_record *tr = &R->rec.tasks[task];
    const char *dir = R->opts->out_dir;
    /* files first, run.json last: run.json saying "done" implies the files are there */
    if (R->writer && (clv_ckpt_save_task(dir, task, &R->L, R->strategy, ti->classes, ti->n_classes, &R->norm, err) ||
                      clv_ckpt_save_base(dir, &R->L, R->strategy, &R->norm, err) ||
                      record_mask_density(R, task, err)))
        return -1;
    clv_storage st = {0};
    clv_storage_add_floats(&st, "head", clv_head_bits(&R->L.heads[task]) / 32);
    if (R->strategy->ops->task_storage)
        R->strategy->ops->task_storage(R->strategy, &R->L, task, &st);
    tr->storage = st;
    tr->head_bits = clv_storage_get(&st, "head");
    tr->stored_bits = clv_storage_total(&st);
    if (evaluate_row(R, task, err) || check_outcome(R, task, err))
        return -1;
    tr->done = 1;
    if (task == R->rec.n_tasks - 1)
        strcpy(R->rec.status, "complete");
    if (R->writer) {
        if (clv_run_record_write(&R->rec, R->cfg, dir, err))
            return -1;
        clv_ckpt_remove_state(dir);
    }
    clv_dist_barrier(R->dist);
    if (R->opts->progress) {
        /* "task 2/5 done in 41.0 s: test accuracy (%) task 1 51.85, task 2 96.95; average 74.40" */
        fprintf(stderr, "task %d/%d done in %.1f s: test accuracy (%%)", task + 1, R->rec.n_tasks, tr->seconds);
        double sum = 0;
        for (int j = 0; j <= task; j++) {
            sum += clv_run_record_acc(&R->rec, task, j);
            fprintf(stderr, "%s task %d %.2f", j ? "," : "", j + 1, clv_run_record_acc(&R->rec, task, j));
        }
        if (task)
            fprintf(stderr, "; average %.2f", sum / (task + 1));
        fprintf(stderr, "\n");
    }
    return 0;
}

/* A run killed after run.json recorded a task as learned, before the task's
 * checkpoint was removed, leaves that checkpoint: it is stale (finish_task). */
static int drop_stale_state(clv_run *R, clv_err *err)
{
    clv_ckpt_position pos;
    int st = clv_ckpt_state_position(R->opts->out_dir, &pos, err);
    if (st)
        return st < 0 ? -1 : 0;
    if (pos.task >= R->rec.n_tasks || !R->rec.tasks[pos.task].done)
        return 0; /* the task in progress: train_task resumes it (or says why not) */
    clv_info("removing %s/state.safetensors: its task %d is recorded as learned (a run stopped before removing it)",
             R->opts->out_dir, pos.task + 1);
    if (clv_ckpt_remove_state(R->opts->out_dir))
        return clv_errf(err, "%s/state.safetensors: cannot remove: %s", R->opts->out_dir, strerror(errno));
    return 0;
}

int clv_train_run(const clv_config *cfg, const clv_train_opts *opts, clv_err *err)
{
    clv_run R;
    memset(&R, 0, sizeof R);
    R.cfg = cfg;
    R.opts = opts;
    R.dir = opts->out_dir;
    R.dist = opts->dist;
    R.writer = !opts->dist || opts->dist->rank == 0;
    int rc = -1;
    clv_threads_set(cfg->threads);
    if (clv_config_validate(cfg, err))
        return -1;
    if (opts->dist && cfg->batch < opts->dist->size)
        return clv_errf(err, "a batch of %d cannot be shared by %d ranks", cfg->batch, opts->dist->size);

    char runjson[CLV_PATH_LEN + 32];
    snprintf(runjson, sizeof runjson, "%s/run.json", opts->out_dir);
    int exists = !access(runjson, F_OK);
    if (exists && !opts->resume && !opts->overwrite)
        return clv_errf(err, "%s already holds a run: continue it with --resume, or start afresh with --overwrite",
                        opts->out_dir);
    if (!exists && opts->resume)
        return clv_errf(err, "%s: nothing to resume (no run.json)", opts->out_dir);
    if (R.writer && make_dir(opts->out_dir, err))
        return -1;
    if (R.writer && !opts->resume)
        clv_ckpt_remove_state(opts->out_dir);
    clv_dist_barrier(R.dist);

    if (clv_run_open_data(&R, err))
        goto done;
    if (opts->resume) {
        clv_config saved;
        if (clv_run_record_read(&R.rec, &saved, opts->out_dir, err))
            goto done;
    } else if (clv_run_record_init(&R.rec, cfg->tasks, err))
        goto done;
    if (opts->argv && clv_run_record_add_command(&R.rec, opts->argc, opts->argv, err))
        goto done;
    clv_warnings_clear(&R.rec.warnings); /* found again from the settings */
    if (clv_check_run(cfg, &R.rec.warnings) < 0) {
        clv_errf(err, "out of memory");
        goto done;
    }
    log_new_warnings(&R, &R.rec.warnings, 0);
    snprintf(R.rec.gemm, sizeof R.rec.gemm, "%s", clv_gemm_backend());
    R.rec.threads = clv_threads_get();
    for (int t = 0; t < cfg->tasks; t++) {
        const clv_task_info *ti = &R.split.tasks[t];
        clv_task_record *tr = &R.rec.tasks[t];
        free(tr->classes);
        if (!(tr->classes = malloc((size_t)ti->n_classes * sizeof *tr->classes)))
            goto done;
        memcpy(tr->classes, ti->classes, (size_t)ti->n_classes * sizeof *tr->classes);
        tr->n_classes = ti->n_classes;
        if (clv_task_record_name_classes(tr, R.train->class_names, R.train->n_class_names, err))
            goto done;
        tr->train_images = ti->n_train;
        tr->test_images = ti->n_test;
    }
    if (clv_run_build_learner(&R, opts->resume, err))
        goto done;
    if (R.writer && opts->resume && drop_stale_state(&R, err))
        goto done;
    /* results.csv follows run.json: a run killed between the two by a
     * clvit that wrote run.json first left it a task behind */
    if (R.writer && opts->resume && clv_run_record_write_results(&R.rec, cfg, opts->out_dir, err))
        goto done;
    if (R.writer && !opts->resume && clv_run_record_write(&R.rec, cfg, opts->out_dir, err))
        goto done;
    clv_dist_barrier(R.dist);
    if (opts->progress) {
        char how[160] = "";
        if (cfg->precision == CLV_PRECISION_BF16)
            snprintf(how, sizeof how, ", bf16 GEMMs %s",
                     clv_compute_bf16_native(R.L.model->compute) ? "native" : "emulated (no native bf16 here)");
        clv_info("clvit: %s on %s (%d tasks), %s, %d threads, %s, precision %s%s", cfg->method, cfg->data,
                 cfg->tasks, cfg->model, clv_threads_get(), clv_gemm_backend(), clv_precision_name(cfg->precision),
                 how);
    }

    for (int t = 0; t < cfg->tasks; t++) {
        if (R.rec.tasks[t].done)
            continue;
        int r = train_task(&R, t, err);
        if (r) {
            rc = r;
            goto done;
        }
        if (finish_task(&R, t, err))
            goto done;
    }
    if (opts->progress)
        clv_run_record_print(&R.rec, cfg, stdout);
    rc = 0;
done:
    clv_run_free(&R);
    return rc;
}
