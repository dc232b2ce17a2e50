/* Pictures of `clvit report --plot`, drawn with Cairo as PNG and SVG:
 * each run's accuracy matrix as a heatmap with its values in the cells, and
 * average accuracy against stored bits per task (log scale), one point per
 * run. */
#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "clvit/report.h"

typedef void (*draw_fn)(cairo_t *cr, const void *ctx, int w, int h);

/* Draws the same picture into path.png and path.svg. */
static int render(const char *base, int w, int h, draw_fn draw, const void *ctx, clv_err *err)
{
    char path[CLV_PATH_LEN + 256];
    snprintf(path, sizeof path, "%s.png", base);
    cairo_surface_t *png = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
    cairo_t *cr = cairo_create(png);
    draw(cr, ctx, w, h);
    cairo_destroy(cr);
    cairo_status_t st = cairo_surface_write_to_png(png, path);
    cairo_surface_destroy(png);
    if (st != CAIRO_STATUS_SUCCESS)
        return clv_errf(err, "%s: cannot write: %s", path, cairo_status_to_string(st));
    snprintf(path, sizeof path, "%s.svg", base);
    cairo_surface_t *svg = cairo_svg_surface_create(path, w, h);
    cr = cairo_create(svg);
    draw(cr, ctx, w, h);
    cairo_destroy(cr);
    cairo_surface_finish(svg);
    st = cairo_surface_status(svg);
    cairo_surface_destroy(svg);
    if (st != CAIRO_STATUS_SUCCESS)
        return clv_errf(err, "%s: cannot write: %s", path, cairo_status_to_string(st));
    return 0;
}

/* A perceptually ordered ramp (viridis' end points and middle). */
static void ramp(double t, double rgb[3])
{
    static const double c[3][3] = {{0.267, 0.005, 0.329}, {0.128, 0.567, 0.551}, {0.993, 0.906, 0.144}};
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    int k = t < 0.5 ? 0 : 1;
    double u = t < 0.5 ? t * 2 : (t - 0.5) * 2;
    for (int i = 0; i < 3; i++)
        rgb[i] = c[k][i] + (c[k + 1][i] - c[k][i]) * u;
}

static void text_centered(cairo_t *cr, double x, double y, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - e.width / 2 - e.x_bearing, y - e.height / 2 - e.y_bearing);
    cairo_show_text(cr, s);
}

#define CELL 56
#define MARGIN 70

static void draw_matrix(cairo_t *cr, const void *ctx, int w, int h)
{
    const clv_report_run *r = ctx;
    int T = r->rec.n_tasks;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 13);
    cairo_set_source_rgb(cr, 0, 0, 0);
    char title[256];
    snprintf(title, sizeof title, "%s, %s: accuracy (%%)", r->cfg.method, r->cfg.model);
    text_centered(cr, w / 2.0, 22, title);
    cairo_set_font_size(cr, 11);
    text_centered(cr, MARGIN + T * CELL / 2.0, 46, "evaluated task");
    for (int i = 0; i < T; i++) {
        char s[16];
        snprintf(s, sizeof s, "%d", i + 1);
        text_centered(cr, MARGIN + (i + 0.5) * CELL, MARGIN - 10, s);
        text_centered(cr, MARGIN - 14, MARGIN + (i + 0.5) * CELL, s);
    }
    cairo_save(cr);
    cairo_translate(cr, 18, MARGIN + T * CELL / 2.0);
    cairo_rotate(cr, -M_PI / 2);
    text_centered(cr, 0, 0, "after learning task");
    cairo_restore(cr);
    for (int i = 0; i < T; i++)
        for (int j = 0; j <= i; j++) {
            double a = clv_run_record_acc(&r->rec, i, j), rgb[3];
            if (isnan(a))
                continue;
            ramp(a / 100.0, rgb);
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            cairo_rectangle(cr, MARGIN + j * CELL, MARGIN + i * CELL, CELL - 1, CELL - 1);
            cairo_fill(cr);
            double lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
            cairo_set_source_rgb(cr, lum < 0.5 ? 1 : 0, lum < 0.5 ? 1 : 0, lum < 0.5 ? 1 : 0);
            char s[16];
            snprintf(s, sizeof s, "%.1f", a);
            text_centered(cr, MARGIN + (j + 0.5) * CELL, MARGIN + (i + 0.5) * CELL, s);
        }
    (void)h;
}

typedef struct {
    const clv_report_run *runs;
    int n;
} scatter_ctx;

static void draw_scatter(cairo_t *cr, const void *vctx, int w, int h)
{
    const scatter_ctx *c = vctx;
    const double L = 80, R = 200, Tm = 40, B = 60;
    double lo = INFINITY, hi = -INFINITY, alo = 100, ahi = 0;
    for (int i = 0; i < c->n; i++) {
        double b = clv_report_bits_per_task(&c->runs[i]), a = clv_run_record_average_accuracy(&c->runs[i].rec);
        if (!(b > 0) || isnan(a))
            continue;
        lo = fmin(lo, log10(b));
        hi = fmax(hi, log10(b));
        alo = fmin(alo, a);
        ahi = fmax(ahi, a);
    }
    if (!isfinite(lo)) {
        lo = 3;
        hi = 6;
    }
    lo = floor(lo);
    hi = ceil(hi) > lo ? ceil(hi) : lo + 1;
    alo = fmax(0, floor(alo / 10) * 10 - 5);
    ahi = fmin(100, ceil(ahi / 10) * 10 + 5);
    if (ahi <= alo)
        ahi = alo + 10;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    double pw = w - L - R, ph = h - Tm - B;
#define PX(v) (L + ((v) - lo) / (hi - lo) * pw)
#define PY(v) (Tm + ph - ((v) - alo) / (ahi - alo) * ph)
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, L, Tm, pw, ph);
    cairo_stroke(cr);
    cairo_set_font_size(cr, 11);
    for (double e = lo; e <= hi + 1e-9; e += 1) {
        char s[32];
        snprintf(s, sizeof s, "1e%.0f", e);
        text_centered(cr, PX(e), Tm + ph + 14, s);
    }
    for (double a = alo; a <= ahi + 1e-9; a += (ahi - alo) / 5) {
        char s[32];
        snprintf(s, sizeof s, "%.0f", a);
        text_centered(cr, L - 18, PY(a), s);
    }
    cairo_set_font_size(cr, 13);
    text_centered(cr, L + pw / 2, h - 16, "stored bits per task (log scale)");
    text_centered(cr, L + pw / 2, 20, "average accuracy against storage per task");
    cairo_save(cr);
    cairo_translate(cr, 22, Tm + ph / 2);
    cairo_rotate(cr, -M_PI / 2);
    text_centered(cr, 0, 0, "average accuracy (%)");
    cairo_restore(cr);
    cairo_set_font_size(cr, 11);
    for (int i = 0; i < c->n; i++) {
        double b = clv_report_bits_per_task(&c->runs[i]), a = clv_run_record_average_accuracy(&c->runs[i].rec);
        if (!(b > 0) || isnan(a))
            continue;
        double rgb[3];
        ramp(c->n > 1 ? (double)i / (c->n - 1) : 0.5, rgb);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_arc(cr, PX(log10(b)), PY(a), 5, 0, 2 * M_PI);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        char s[160];
        snprintf(s, sizeof s, "%s (%s)", c->runs[i].cfg.method, c->runs[i].cfg.model);
        cairo_move_to(cr, PX(log10(b)) + 8, PY(a) + 4);
        cairo_show_text(cr, s);
    }
#undef PX
#undef PY
}

int clv_report_plot(const clv_report_run *runs, int n, const char *dir, clv_err *err)
{
    char base[CLV_PATH_LEN + 128];
    for (int i = 0; i < n; i++) {
        int T = runs[i].rec.n_tasks, side = 2 * MARGIN + T * CELL;
        snprintf(base, sizeof base, "%s/matrix-%d-%s", dir, i + 1, runs[i].cfg.method);
        if (render(base, side > 360 ? side : 360, side, draw_matrix, &runs[i], err))
            return -1;
    }
    scatter_ctx c = {runs, n};
    snprintf(base, sizeof base, "%s/accuracy-vs-bits", dir);
    return render(base, 760, 460, draw_scatter, &c, err);
}
