/* Training curves of `clvit report --plot`: for each run with a metrics.csv
 * (clvit/metrics_log.h), the loss and the training accuracy over the run's
 * steps, one colour per task, a vertical line where a task begins. Each
 * step's batch figure is drawn faintly, its running mean over about a
 * fiftieth of the task boldly: one batch is noisy. */
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/metrics_log.h"
#include "io/plot_draw.h"

#define W 760
#define PANEL_H 220
#define LEFT 70
#define RIGHT 20
#define TOP 50
#define GAP 50

typedef struct {
    const clv_report_run *run;
    const clv_metrics_row *rows;
    int n;
} curves_ctx;

/* Okabe-Ito colours, repeated past eight tasks. */
static void task_colour(int task, double rgb[3])
{
    static const double c[8][3] = {{0.00, 0.45, 0.70}, {0.84, 0.37, 0.00}, {0.00, 0.62, 0.45}, {0.80, 0.47, 0.65},
                                   {0.90, 0.62, 0.00}, {0.34, 0.71, 0.91}, {0.94, 0.89, 0.26}, {0.00, 0.00, 0.00}};
    memcpy(rgb, c[(task - 1) % 8], sizeof c[0]);
}

/* A round step (1, 2 or 5 times a power of ten) giving about `want` ticks over span. */
static double tick_step(double span, int want)
{
    double raw = span / want, p = pow(10, floor(log10(raw))), m = raw / p;
    return p * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10);
}

static double row_value(const clv_metrics_row *r, int accuracy) { return accuracy ? r->train_accuracy : r->loss; }

static void panel(cairo_t *cr, const curves_ctx *c, int accuracy, double y0)
{
    const double x0 = LEFT, pw = W - LEFT - RIGHT, ph = PANEL_H;
    double lo = accuracy ? 0 : INFINITY, hi = accuracy ? 100 : -INFINITY;
    for (int i = 0; !accuracy && i < c->n; i++) {
        lo = fmin(lo, c->rows[i].loss);
        hi = fmax(hi, c->rows[i].loss);
    }
    if (!accuracy) {
        lo = fmin(0, lo);
        hi = hi > lo ? hi : lo + 1;
        double round_to = tick_step(hi - lo, 5);
        hi = ceil(hi / round_to) * round_to; /* the frame on a tick */
    }
    const double n = c->n > 1 ? c->n - 1 : 1;
#define PX(i) (x0 + (double)(i) / n * pw)
#define PY(v) (y0 + ph - ((v) - lo) / (hi - lo) * ph)
    /* axes, round ticks, grid */
    cairo_set_line_width(cr, 1);
    cairo_set_font_size(cr, 10);
    double st = tick_step(hi - lo, 5);
    for (double v = ceil(lo / st) * st; v <= hi + 1e-9; v += st) {
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, x0, PY(v));
        cairo_line_to(cr, x0 + pw, PY(v));
        cairo_stroke(cr);
        char s[32];
        snprintf(s, sizeof s, "%g", v);
        cairo_set_source_rgb(cr, 0, 0, 0);
        plot_text_centered(cr, x0 - 22, PY(v), s);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_rectangle(cr, x0, y0, pw, ph);
    cairo_stroke(cr);
    cairo_save(cr);
    cairo_translate(cr, 16, y0 + ph / 2);
    cairo_rotate(cr, -M_PI / 2);
    plot_text_centered(cr, 0, 0, accuracy ? "training accuracy (%)" : "training loss");
    cairo_restore(cr);
    cairo_save(cr);
    cairo_rectangle(cr, x0, y0 - 20, pw, ph + 20);
    cairo_clip(cr);
    /* per task: where it begins, its steps faintly, their running mean boldly */
    for (int a = 0; a < c->n;) {
        int b = a, task = c->rows[a].task;
        while (b < c->n && c->rows[b].task == task)
            b++;
        double rgb[3];
        task_colour(task, rgb);
        if (a) {
            cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
            cairo_move_to(cr, PX(a), y0);
            cairo_line_to(cr, PX(a), y0 + ph);
            cairo_stroke(cr);
        }
        if (!accuracy) {
            char s[32];
            snprintf(s, sizeof s, "task %d", task);
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            plot_text_centered(cr, (PX(a) + PX(b - 1)) / 2, y0 - 8, s);
        }
        cairo_set_source_rgba(cr, rgb[0], rgb[1], rgb[2], 0.25);
        for (int i = a; i < b; i++)
            (i == a ? cairo_move_to : cairo_line_to)(cr, PX(i), PY(row_value(&c->rows[i], accuracy)));
        cairo_stroke(cr);
        int win = (b - a) / 50 > 1 ? (b - a) / 50 : 1;
        double sum = 0;
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_set_line_width(cr, 2);
        for (int i = a; i < b; i++) {
            sum += row_value(&c->rows[i], accuracy);
            if (i - a >= win)
                sum -= row_value(&c->rows[i - win], accuracy);
            int k = i - a + 1 < win ? i - a + 1 : win;
            (i == a ? cairo_move_to : cairo_line_to)(cr, PX(i), PY(sum / k));
        }
        cairo_stroke(cr);
        cairo_set_line_width(cr, 1);
        a = b;
    }
    cairo_restore(cr);
#undef PX
#undef PY
}

static void draw_curves(cairo_t *cr, const void *vctx, int w, int h)
{
    const curves_ctx *c = vctx;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_font_size(cr, 13);
    char title[CLV_PATH_LEN + 256];
    snprintf(title, sizeof title, "%.200s: %s, %s on %s (per step; bold: running mean)", c->run->dir, c->run->cfg.method,
             c->run->cfg.model, c->run->cfg.data);
    plot_text_centered(cr, w / 2.0, 18, title);
    panel(cr, c, 0, TOP);
    panel(cr, c, 1, TOP + PANEL_H + GAP);
    cairo_set_font_size(cr, 11);
    cairo_set_source_rgb(cr, 0, 0, 0);
    char s[96];
    snprintf(s, sizeof s, "optimizer step of the run (%d in all)", c->n);
    plot_text_centered(cr, LEFT + (W - LEFT - RIGHT) / 2.0, h - 14, s);
}

int plot_curves(const clv_report_run *runs, int n, const char *dir, clv_err *err)
{
    for (int i = 0; i < n; i++) {
        char path[CLV_PATH_LEN + 32], base[CLV_PATH_LEN + 128];
        snprintf(path, sizeof path, "%s/metrics.csv", runs[i].dir);
        curves_ctx c = {&runs[i], NULL, 0};
        clv_metrics_row *rows = NULL;
        int rc = clv_metrics_read(path, &rows, &c.n, err);
        if (rc < 0)
            return -1;
        if (rc == 1 || c.n == 0) { /* a run made before metrics.csv, or one that has not stepped yet */
            free(rows);
            continue;
        }
        c.rows = rows;
        snprintf(base, sizeof base, "%s/curves-%d-%s", dir, i + 1, runs[i].cfg.method);
        rc = plot_render(base, W, TOP + 2 * PANEL_H + GAP + 40, draw_curves, &c, err);
        free(rows);
        if (rc)
            return -1;
    }
    return 0;
}
