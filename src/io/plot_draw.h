/* What the pictures of `clvit report` share: drawing one picture into
 * PNG and SVG, centered text. Internal to src/io. */
#ifndef CLVIT_IO_PLOT_DRAW_H
#define CLVIT_IO_PLOT_DRAW_H

#include <cairo.h>

#include "clvit/report.h"

typedef void (*plot_draw_fn)(cairo_t *cr, const void *ctx, int w, int h);

/* Draws the same picture into base.png and base.svg. */
int plot_render(const char *base, int w, int h, plot_draw_fn draw, const void *ctx, clv_err *err);
void plot_text_centered(cairo_t *cr, double x, double y, const char *s);

/* accuracy-vs-bits.png/.svg in dir: one point per group of runs. */
int plot_accuracy_vs_bits(const clv_report_run *runs, int n, const char *dir, clv_err *err);

/* curves-<i>-<method>.png/.svg in dir: loss and training accuracy per step
 * of each run with a metrics.csv (plot_curves.c). */
int plot_curves(const clv_report_run *runs, int n, const char *dir, clv_err *err);

#endif
