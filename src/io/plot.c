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
    plot_text_centered(cr, w / 2.0, 22, title);
    cairo_set_font_size(cr, 11);
    plot_text_centered(cr, MARGIN + T * CELL / 2.0, 46, "evaluated task");
    for (int i = 0; i < T; i++) {
        char s[16];
        snprintf(s, sizeof s, "%d", i + 1);
        plot_text_centered(cr, MARGIN + (i + 0.5) * CELL, MARGIN - 10, s);
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
            ramp(a / 100.0, rgb);
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            cairo_rectangle(cr, MARGIN + j * CELL, MARGIN + i * CELL, CELL - 1, CELL - 1);
            cairo_fill(cr);
            double lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
            cairo_set_source_rgb(cr, lum < 0.5 ? 1 : 0, lum < 0.5 ? 1 : 0, lum < 0.5 ? 1 : 0);
            char s[16];
            snprintf(s, sizeof s, "%.1f", a);
            plot_text_centered(cr, MARGIN + (j + 0.5) * CELL, MARGIN + (i + 0.5) * CELL, s);
        }
    (void)h;
}

int clv_report_plot(const clv_report_run *runs, int n, const char *dir, clv_err *err)
{
    char base[CLV_PATH_LEN + 128];
    for (int i = 0; i < n; i++) {
        int T = runs[i].rec.n_tasks, side = 2 * MARGIN + T * CELL;
        snprintf(base, sizeof base, "%s/matrix-%d-%s", dir, i + 1, runs[i].cfg.method);
        if (plot_render(base, side > 360 ? side : 360, side, draw_matrix, &runs[i], err))
            return -1;
    }
    return plot_accuracy_vs_bits(runs, n, dir, err) || plot_curves(runs, n, dir, err) ? -1 : 0;
}
