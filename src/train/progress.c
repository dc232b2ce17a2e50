/* Progress lines and the live bar (see progress.h). */
#include "train/progress.h"

#include <stdio.h>

#include "clvit/core.h"

void clv_progress_init(clv_progress *p, int mode, int task, int n_tasks, int epochs, int steps_per_epoch)
{
    *p = (clv_progress){.mode = mode, .task = task, .n_tasks = n_tasks, .epochs = epochs,
                        .steps_per_epoch = steps_per_epoch};
}

void clv_progress_epoch_begin(clv_progress *p, int epoch, int64_t first_step)
{
    p->epoch = epoch;
    p->step_in_epoch = first_step;
    p->images = p->correct = p->loss_count = 0;
    p->loss_sum = 0;
    p->epoch_start = p->last_draw = clv_now();
}

static void fmt_eta(double s, char *buf, size_t len)
{
    int t = (int)(s + 0.5);
    snprintf(buf, len, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
}

static void summary(const clv_progress *p, char *buf, size_t len)
{
    double el = clv_now() - p->epoch_start;
    double ips = el > 0 ? (double)p->images / el : 0;
    int64_t left = (int64_t)(p->epochs - p->epoch) * p->steps_per_epoch - p->step_in_epoch;
    double per_step = p->loss_count ? el / (double)p->loss_count : 0;
    char eta[32];
    fmt_eta(per_step * (double)left, eta, sizeof eta);
    snprintf(buf, len, "task %d/%d epoch %d/%d  loss %.4f  acc %.2f%%  %.0f img/s  ETA %s", p->task + 1, p->n_tasks,
             p->epoch + 1, p->epochs, p->loss_count ? p->loss_sum / (double)p->loss_count : 0.0,
             p->images ? 100.0 * (double)p->correct / (double)p->images : 0.0, ips, eta);
}

void clv_progress_step(clv_progress *p, int64_t batch, float loss, int64_t correct)
{
    p->step_in_epoch++;
    p->images += batch;
    p->correct += correct;
    p->loss_sum += loss;
    p->loss_count++;
    if (p->mode < 2)
        return;
    double now = clv_now();
    if (now - p->last_draw < 0.25 && p->step_in_epoch < p->steps_per_epoch)
        return;
    p->last_draw = now;
    char line[256], bar[21];
    int filled = (int)(20 * p->step_in_epoch / (p->steps_per_epoch ? p->steps_per_epoch : 1));
    for (int i = 0; i < 20; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[20] = 0;
    summary(p, line, sizeof line);
    fprintf(stderr, "\r[%s] %s\033[K", bar, line);
    fflush(stderr);
}

void clv_progress_epoch_end(clv_progress *p)
{
    if (!p->mode)
        return;
    char line[256];
    summary(p, line, sizeof line);
    fprintf(stderr, p->mode == 2 ? "\r%s\033[K\n" : "%s\n", line);
}
