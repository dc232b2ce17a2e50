/* metrics.csv, the per-step training curve (see clvit/metrics_log.h). */
#include "clvit/metrics_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/atomic_file.h"
#include "clvit/config.h"
#include "clvit/input_file.h"

#define HEADER "task,epoch,step,loss,train_accuracy,lr,images_per_s\n"

/* The rows worth keeping: whole lines of tasks before `task` (1-based) and of
 * task up to `step`. */
static size_t keep_rows(char *text, size_t len, int task, int64_t step)
{
    size_t out = 0;
    char *line = text, *end = text + len;
    while (line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            break; /* half written when the process died */
        int t, e;
        long long s;
        if (sscanf(line, "%d,%d,%lld,", &t, &e, &s) == 3 && (t < task || (t == task && s <= step))) {
            size_t n = (size_t)(nl + 1 - line);
            memmove(text + out, line, n);
            out += n;
        }
        line = nl + 1;
    }
    return out;
}

int clv_metrics_log_begin(clv_metrics_log *m, const char *dir, int task, int64_t done_steps, int steps_per_epoch,
                          int checkpoint_every, clv_err *err)
{
    memset(m, 0, sizeof *m);
    char path[CLV_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    size_t len = 0, kept = 0;
    char *text = NULL;
    FILE *old = fopen(path, "rb");
    if (old) {
        text = clv_read_stream(old, &len);
        fclose(old);
        if (!text)
            return clv_errf(err, "%s: out of memory reading it", path);
        kept = keep_rows(text, len, task + 1, done_steps);
    }
    if (kept != len || !old) { /* rewrite only when something goes */
        size_t hl = strlen(HEADER);
        char *body = malloc(hl + kept + 1);
        if (!body) {
            free(text);
            return clv_errf(err, "out of memory");
        }
        memcpy(body, HEADER, hl);
        memcpy(body + hl, text ? text : "", kept);
        int rc = clv_atomic_write(path, body, hl + kept, err);
        free(body);
        if (rc) {
            free(text);
            return -1;
        }
    }
    free(text);
    if (!(m->f = fopen(path, "a")))
        return clv_errf(err, "%s: cannot append: %s", path, strerror(errno));
    m->task = task;
    m->steps_per_epoch = steps_per_epoch;
    m->checkpoint_every = checkpoint_every;
    m->last_time = clv_now();
    return 0;
}

void clv_metrics_log_row(clv_metrics_log *m, int epoch, int64_t step, double loss, int64_t correct, int64_t images,
                         double lr)
{
    if (!m->f)
        return;
    double now = clv_now(), dt = now - m->last_time;
    m->last_time = now;
    fprintf(m->f, "%d,%d,%lld,%.6g,%.4f,%.6g,%.1f\n", m->task + 1, epoch + 1, (long long)step, loss,
            images ? 100.0 * (double)correct / (double)images : 0.0, lr, dt > 0 ? (double)images / dt : 0.0);
    /* on disk whenever a checkpoint is: a resumed run then finds every row before its point */
    if ((m->steps_per_epoch && step % m->steps_per_epoch == 0) ||
        (m->checkpoint_every && step % m->checkpoint_every == 0))
        fflush(m->f);
}

void clv_metrics_log_end(clv_metrics_log *m)
{
    if (m->f)
        fclose(m->f);
    m->f = NULL;
}

int clv_metrics_read(const char *path, clv_metrics_row **rows, int *n, clv_err *err)
{
    *rows = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? 1 : clv_errf(err, "%s: cannot open: %s", path, strerror(errno));
    size_t len;
    char *text = clv_read_stream(f, &len);
    fclose(f);
    if (!text)
        return clv_errf(err, "%s: out of memory reading it", path);
    if (strncmp(text, HEADER, strlen(HEADER))) {
        free(text);
        return clv_errf(err, "%s: not a clvit metrics.csv (its first line is not %.*s)", path,
                        (int)strlen(HEADER) - 1, HEADER);
    }
    size_t cap = 0;
    int line_no = 1;
    for (char *line = text + strlen(HEADER), *nl; *line; line = nl + 1) {
        line_no++;
        if (!(nl = strchr(line, '\n')))
            break; /* a half-written last line: the run is still writing, or died */
        clv_metrics_row r;
        long long step;
        int used = 0;
        if (sscanf(line, "%d,%d,%lld,%lf,%lf,%lf,%lf%n", &r.task, &r.epoch, &step, &r.loss, &r.train_accuracy, &r.lr,
                   &r.images_per_s, &used) != 7 ||
            line + used != nl || r.task < 1 || r.epoch < 1 || step < 1) {
            free(text);
            free(*rows);
            *rows = NULL;
            *n = 0;
            return clv_errf(err, "%s: line %d is not task,epoch,step,loss,train_accuracy,lr,images_per_s", path,
                            line_no);
        }
        r.step = step;
        if (clv_grow(rows, &cap, *n + 1)) {
            free(text);
            free(*rows);
            *rows = NULL;
            *n = 0;
            return clv_errf(err, "out of memory");
        }
        (*rows)[(*n)++] = r;
    }
    free(text);
    return 0;
}
