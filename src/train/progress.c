/* Progress lines and the live bar (see progress.h). */
#include "train/progress.h"

#include <stdio.h>

#include "clvit/core.h"

/* piped output: at most one line a minute inside an epoch */
#define LOG_INTERVAL_S 60.0

void clv_progress_init(clv_progress *p, int mode, int task, int n_tasks, int epochs, int steps_per_epoch,
                       int64_t steps_after)
{
    *p = (clv_progress){.mode = mode, .task = task, .n_tasks = n_tasks, .epochs = epochs,
                        .steps_per_epoch = steps_per_epoch, .steps_after = steps_after};
}

void clv_progress_epoch_begin(clv_progress *p, int epoch, int64_t first_step)
{
    p->epoch = epoch;
    p->step_in_epoch = first_step;
    p->images = p->correct = p->loss_count = 0;
    p->loss_sum = 0;
    p->epoch_start = p->last_draw = clv_now();
}

void clv_progress_format(const clv_progress *p, double elapsed, char *buf, size_t len)
{
    double ips = elapsed > 0 ? (double)p->images / elapsed : 0;
    int64_t left = (int64_t)(p->epochs - p->epoch) * p->steps_per_epoch - p->step_in_epoch + p->steps_after;
    int n = snprintf(buf, len, "task %d/%d epoch %d/%d", p->task + 1, p->n_tasks, p->epoch + 1, p->epochs);
    if (p->step_in_epoch < p->steps_per_epoch && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, " step %lld/%d", (long long)p->step_in_epoch, p->steps_per_epoch);
    if (n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "  loss %.4f  acc %.2f%%  %.0f img/s",
                      p->loss_count ? p->loss_sum / (double)p->loss_count : 0.0,
                      p->images ? 100.0 * (double)p->correct / (double)p->images : 0.0, ips);
    if (left > 0 && p->loss_count && n >= 0 && (size_t)n < len) {
        int t = (int)(elapsed / (double)p->loss_count * (double)left + 0.5);
        if (t > 0) /* under half a second left is no news */
            snprintf(buf + n, len - (size_t)n, "  run left ~%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    }
}

void clv_progress_step(clv_progress *p, int64_t batch, float loss, int64_t correct)
{
    p->step_in_epoch++;
    p->images += batch;
    p->correct += correct;
    p->loss_sum += loss;
    p->loss_count++;
    if (!p->mode || p->step_in_epoch >= p->steps_per_epoch) /* the epoch's end has its own line */
        return;
    double now = clv_now();
    if (now - p->last_draw < (p->mode == 2 ? 0.25 : LOG_INTERVAL_S))
        return;
    p->last_draw = now;
    char line[256];
    clv_progress_format(p, now - p->epoch_start, line, sizeof line);
    if (p->mode == 1) {
        fprintf(stderr, "%s\n", line);
        return;
    }
    char bar[21];
    int filled = (int)(20 * p->step_in_epoch / (p->steps_per_epoch ? p->steps_per_epoch : 1));
    for (int i = 0; i < 20; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[20] = 0;
    fprintf(stderr, "\r[%s] %s\033[K", bar, line);
    fflush(stderr);
}

void clv_progress_epoch_end(clv_progress *p)
{
    if (!p->mode)
        return;
    char line[256];
    clv_progress_format(p, clv_now() - p->epoch_start, line, sizeof line);
    fprintf(stderr, p->mode == 2 ? "\r%s\033[K\n" : "%s\n", line);
}
