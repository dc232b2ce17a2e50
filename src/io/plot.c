/* Pictures of `clvit report --plot`, drawn with Cairo as PNG and SVG:
 * each run's accuracy matrix as a heatmap with its values in the cells, and
 * (plot_scatter.c) average accuracy against marginal bits per task. */
#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/plot_draw.h"

int plot_render(const char *base, int w, int h, plot_draw_fn draw, const void *ctx, clv_err *err)
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

void plot_text_centered(cairo_t *cr, double x, double y, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - e.width / 2 - e.x_bearing, y - e.height / 2 - e.y_bearing);
    cairo_show_text(cr, s);
}

#define CELL 56
#define MARGIN 70
#define BAR_W 16  /* the colour bar right of the matrix */
#define BAR_GAP 24

/* The colour scale of a run's matrix: chance (of its task with the most
 * classes) to 100, so that 97 and 99.8 differ visibly where 0-100 made them alike. */
static double chance_floor(const clv_report_run *r)
{
    int most = 2;
    for (int t = 0; t < r->rec.n_tasks; t++)
        if (r->rec.tasks[t].n_classes > most)
            most = r->rec.tasks[t].n_classes;
    return 100.0 / most;
}

static void colour_bar(cairo_t *cr, double x, double y, double hgt, double lo)
{
    double rgb[3];
    for (int k = 0; k < (int)hgt; k++) {
        ramp(1.0 - k / hgt, rgb);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_rectangle(cr, x, y + k, BAR_W, 1.5);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x, y, BAR_W, hgt);
    cairo_stroke(cr);
    cairo_set_font_size(cr, 10);
    /* round ticks: every 10 points from the first multiple of 10 above chance, and chance itself */
    for (double v = ceil(lo / 10 + 1e-9) * 10; v <= 100; v += 10) {
        double ty = y + (100 - v) / (100 - lo) * hgt;
        char s[16];
        snprintf(s, sizeof s, "%.0f", v);
        cairo_move_to(cr, x + BAR_W, ty);
        cairo_line_to(cr, x + BAR_W + 4, ty);
        cairo_stroke(cr);
        cairo_move_to(cr, x + BAR_W + 6, ty + 3.5);
        cairo_show_text(cr, s);
    }
    char s[32];
    snprintf(s, sizeof s, "%.4g chance", lo);
    cairo_move_to(cr, x + BAR_W + 6, y + hgt + 3.5);
    cairo_show_text(cr, s);
}

static void draw_matrix(cairo_t *cr, const void *ctx, int w, int h)
{
    const clv_report_run *r = ctx;
    int T = r->rec.n_tasks;
    const double lo = chance_floor(r);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 12);
    cairo_set_source_rgb(cr, 0, 0, 0);
    char title[CLV_PATH_LEN + 256];
    snprintf(title, sizeof title, "%.200s: %s, %s on %s", r->dir, r->cfg.method, r->cfg.model, r->cfg.data);
    plot_text_centered(cr, w / 2.0, 16, title);
    double avg = clv_run_record_average_accuracy(&r->rec), fg = clv_run_record_forgetting(&r->rec);
    if (isnan(avg))
        snprintf(title, sizeof title, "test accuracy (%%); no task finished");
    else
        snprintf(title, sizeof title, "test accuracy (%%): average %.2f, forgetting %.2f points after task %d", avg, fg,
                 clv_run_record_last_row(&r->rec) + 1);
    plot_text_centered(cr, w / 2.0, 32, title);
    cairo_set_font_size(cr, 11);
    plot_text_centered(cr, MARGIN + T * CELL / 2.0, 50, "evaluated task");
    for (int i = 0; i < T; i++) {
        char s[16];
        snprintf(s, sizeof s, "%d", i + 1);
        plot_text_centered(cr, MARGIN + (i + 0.5) * CELL, MARGIN - 8, s);
        plot_text_centered(cr, MARGIN - 14, MARGIN + (i + 0.5) * CELL, s);
    }
    cairo_save(cr);
    cairo_translate(cr, 18, MARGIN + T * CELL / 2.0);
    cairo_rotate(cr, -M_PI / 2);
    plot_text_centered(cr, 0, 0, "after learning task");
    cairo_restore(cr);
    for (int i = 0; i < T; i++)
        for (int j = 0; j <= i; j++) {
            double a = clv_run_record_acc(&r->rec, i, j), rgb[3];
            if (isnan(a))
                continue;
            ramp((a - lo) / (100 - lo), rgb);
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            cairo_rectangle(cr, MARGIN + j * CELL, MARGIN + i * CELL, CELL - 1, CELL - 1);
            cairo_fill(cr);
            double lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
            cairo_set_source_rgb(cr, lum < 0.5 ? 1 : 0, lum < 0.5 ? 1 : 0, lum < 0.5 ? 1 : 0);
            char s[16];
            snprintf(s, sizeof s, "%.1f", a);
            plot_text_centered(cr, MARGIN + (j + 0.5) * CELL, MARGIN + (i + 0.5) * CELL, s);
        }
    colour_bar(cr, MARGIN + T * CELL + BAR_GAP, MARGIN, T * CELL - 1, lo);
    (void)h;
}

int clv_report_plot(const clv_report_run *runs, int n, const char *dir, clv_err *err)
{
    char base[CLV_PATH_LEN + 128];
    for (int i = 0; i < n; i++) {
        int T = runs[i].rec.n_tasks, side = 2 * MARGIN + T * CELL, wide = side + BAR_GAP + BAR_W + 60;
        snprintf(base, sizeof base, "%s/matrix-%d-%s", dir, i + 1, runs[i].cfg.method);
        if (plot_render(base, wide > 480 ? wide : 480, side, draw_matrix, &runs[i], err))
            return -1;
    }
    return plot_accuracy_vs_bits(runs, n, dir, err) || plot_curves(runs, n, dir, err) ? -1 : 0;
}
