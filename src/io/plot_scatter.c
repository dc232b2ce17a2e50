/* accuracy-vs-bits: average accuracy (mean over seeds, ± sd as error bars)
 * against the marginal bits per task without heads (log scale), one point
 * per group of runs (clvit/report.h), the Pareto front as a dashed line and
 * a legend. A method has the same colour in every picture; groups of one
 * method differ by marker. Groups that add 0 bits per task (finetune,
 * linear) sit in a "0" column left of a break in the axis. */
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/plot_draw.h"

/* Okabe and Ito's colour-blind-safe palette, fixed per method. */
static void method_colour(const char *method, double rgb[3])
{
    static const struct {
        const char *method;
        double rgb[3];
    } fixed[] = {
        {"finetune", {0.60, 0.60, 0.60}}, {"linear", {0.90, 0.62, 0.00}},  {"independent", {0.00, 0.00, 0.00}},
        {"rkr", {0.00, 0.45, 0.70}},      {"piggyback", {0.00, 0.62, 0.45}}, {"maskrkr", {0.84, 0.37, 0.00}},
    };
    static const double other[3][3] = {{0.80, 0.47, 0.65}, {0.34, 0.71, 0.91}, {0.75, 0.70, 0.10}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(fixed[i].method, method)) {
            memcpy(rgb, fixed[i].rgb, sizeof fixed[i].rgb);
            return;
        }
    unsigned h = 5381; /* a method unknown here: a colour from its name, stable across pictures */
    for (const char *p = method; *p; p++)
        h = h * 33 + (unsigned char)*p;
    memcpy(rgb, other[h % 3], sizeof other[0]);
}

static void marker(cairo_t *cr, int shape, double x, double y, double r)
{
    switch (shape % 5) {
    case 0:
        cairo_arc(cr, x, y, r, 0, 2 * M_PI);
        break;
    case 1:
        cairo_rectangle(cr, x - r * 0.9, y - r * 0.9, 1.8 * r, 1.8 * r);
        break;
    case 2:
        cairo_move_to(cr, x, y - 1.2 * r);
        cairo_line_to(cr, x + 1.1 * r, y + 0.8 * r);
        cairo_line_to(cr, x - 1.1 * r, y + 0.8 * r);
        cairo_close_path(cr);
        break;
    case 3:
        cairo_move_to(cr, x, y - 1.3 * r);
        cairo_line_to(cr, x + 1.1 * r, y);
        cairo_line_to(cr, x, y + 1.3 * r);
        cairo_line_to(cr, x - 1.1 * r, y);
        cairo_close_path(cr);
        break;
    default:
        cairo_move_to(cr, x, y + 1.2 * r);
        cairo_line_to(cr, x + 1.1 * r, y - 0.8 * r);
        cairo_line_to(cr, x - 1.1 * r, y - 0.8 * r);
        cairo_close_path(cr);
    }
}

/* "500", "2k", "10k", "1M", "20M", "1G" (bits, powers of 1000). */
static void si_label(double v, char *buf, size_t len)
{
    static const char *suffix[] = {"", "k", "M", "G", "T"};
    int k = 0;
    while (v >= 1000 && k < 4) {
        v /= 1000;
        k++;
    }
    snprintf(buf, len, "%.*f%s", v < 10 && fabs(v - round(v)) > 1e-9 ? 1 : 0, v, suffix[k]);
}

typedef struct {
    const clv_report_run *runs;
    clv_report_group *g;
    int ng;
    int *shape; /* marker per group */
    double *dx; /* horizontal offset (pixels) of groups with the same bits, so they do not hide each other */
    int n_legend;
} scatter;

#define LEFT 84.0
#define TOP 44.0
#define BOTTOM 64.0
#define LEGEND_W 300.0
#define ZERO_W 46.0 /* the "0 bits" column */
#define LEGEND_ROW 18.0

static int plotted(const clv_report_group *g)
{
    return !isnan(g->accuracy.mean) && !isnan(g->marginal_bits.mean) && g->marginal_bits.mean >= 0;
}

static void draw(cairo_t *cr, const void *vctx, int w, int h)
{
    const scatter *c = vctx;
    double lo = INFINITY, hi = -INFINITY, alo = INFINITY, ahi = -INFINITY;
    int zero = 0;
    for (int k = 0; k < c->ng; k++) {
        const clv_report_group *g = &c->g[k];
        if (!plotted(g))
            continue;
        double sd = isnan(g->accuracy.sd) ? 0 : g->accuracy.sd, b = g->marginal_bits.mean;
        alo = fmin(alo, g->accuracy.mean - sd);
        ahi = fmax(ahi, g->accuracy.mean + sd);
        if (b > 0) {
            double bsd = isnan(g->marginal_bits.sd) ? 0 : g->marginal_bits.sd;
            lo = fmin(lo, log10(b - bsd > 0 ? b - bsd : b));
            hi = fmax(hi, log10(b + bsd));
        } else
            zero = 1;
    }
    if (!isfinite(lo)) {
        lo = 3;
        hi = 6;
    }
    /* a margin so that no point sits on the frame, and at least one power of 10 inside */
    double pad = fmax(0.15, 0.06 * (hi - lo));
    lo -= pad;
    hi += pad;
    if (floor(hi) < ceil(lo)) {
        lo = fmin(lo, floor(hi));
        hi = fmax(hi, ceil(lo));
    }
    if (!isfinite(alo)) {
        alo = 0;
        ahi = 100;
    }
    double span = fmax(ahi - alo, 1.0), step = 1;
    static const double steps[] = {0.5, 1, 2, 5, 10, 20};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if ((step = steps[i]) * 8 >= span + 2 * steps[i])
            break;
    alo = fmax(0, floor((alo - step * 0.5) / step) * step);
    ahi = fmin(100, ceil((ahi + step * 0.5) / step) * step);

    const double pw_all = w - LEFT - LEGEND_W, ph = h - TOP - BOTTOM;
    const double x0 = LEFT + (zero ? ZERO_W : 0), pw = pw_all - (zero ? ZERO_W : 0);
#define PX(lb) (x0 + ((lb) - lo) / (hi - lo) * pw)
#define PY(a) (TOP + ph - ((a) - alo) / (ahi - alo) * ph)
#define XOF(b) ((b) > 0 ? PX(log10(b)) : LEFT + (ZERO_W - 8) / 2)
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);

    /* grid and ticks */
    cairo_set_font_size(cr, 11);
    cairo_set_line_width(cr, 1);
    const int few = hi - lo <= 3.5; /* then also 2x and 5x */
    for (double e = floor(lo); e <= hi; e += 1)
        for (int m = 1; m <= 5; m++) {
            double v = pow(10, e) * m, lv = log10(v);
            if ((m != 1 && !(few && (m == 2 || m == 5))) || lv < lo || lv > hi)
                continue;
            double x = PX(lv);
            cairo_set_source_rgb(cr, m == 1 ? 0.85 : 0.93, m == 1 ? 0.85 : 0.93, m == 1 ? 0.85 : 0.93);
            cairo_move_to(cr, x, TOP);
            cairo_line_to(cr, x, TOP + ph);
            cairo_stroke(cr);
            char s[32];
            si_label(v, s, sizeof s);
            cairo_set_source_rgb(cr, 0, 0, 0);
            plot_text_centered(cr, x, TOP + ph + 14, s);
        }
    for (double a = alo; a <= ahi + 1e-9; a += step) {
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, LEFT, PY(a));
        cairo_line_to(cr, LEFT + pw_all, PY(a));
        cairo_stroke(cr);
        char s[32];
        snprintf(s, sizeof s, step < 1 ? "%.1f" : "%.0f", a);
        cairo_set_source_rgb(cr, 0, 0, 0);
        plot_text_centered(cr, LEFT - 20, PY(a), s);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    if (zero) { /* the "0" column and a break in the axis */
        plot_text_centered(cr, LEFT + (ZERO_W - 8) / 2, TOP + ph + 14, "0");
        cairo_rectangle(cr, LEFT, TOP, ZERO_W - 8, ph);
        cairo_stroke(cr);
        cairo_rectangle(cr, x0, TOP, pw, ph);
        cairo_stroke(cr);
        for (int i = 0; i < 2; i++) {
            double bx = LEFT + ZERO_W - 8 + i * 8;
            cairo_move_to(cr, bx - 3, TOP + ph + 4);
            cairo_line_to(cr, bx + 3, TOP + ph - 4);
            cairo_stroke(cr);
        }
    } else {
        cairo_rectangle(cr, LEFT, TOP, pw_all, ph);
        cairo_stroke(cr);
    }
    cairo_set_font_size(cr, 13);
    plot_text_centered(cr, LEFT + pw_all / 2, h - 18, "marginal bits per task, heads excluded (log scale)");
    plot_text_centered(cr, LEFT + pw_all / 2, 20, "average accuracy against marginal storage per task");
    cairo_save(cr);
    cairo_translate(cr, 20, TOP + ph / 2);
    cairo_rotate(cr, -M_PI / 2);
    plot_text_centered(cr, 0, 0, "average accuracy (%), mean ± sd over seeds");
    cairo_restore(cr);

    /* the Pareto front, by increasing bits */
    int *order = malloc((size_t)(c->ng ? c->ng : 1) * sizeof *order), nf = 0;
    if (order) {
        for (int k = 0; k < c->ng; k++)
            if (c->g[k].pareto && plotted(&c->g[k]))
                order[nf++] = k;
        for (int i = 1; i < nf; i++)
            for (int j = i; j > 0 && c->g[order[j]].marginal_bits.mean < c->g[order[j - 1]].marginal_bits.mean; j--) {
                int t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
        cairo_set_line_width(cr, 1.5);
        double dash[] = {6, 4};
        cairo_set_dash(cr, dash, 2, 0);
        for (int i = 0; i < nf; i++) {
            const clv_report_group *g = &c->g[order[i]];
            double x = XOF(g->marginal_bits.mean) + c->dx[order[i]], y = PY(g->accuracy.mean);
            if (i)
                cairo_line_to(cr, x, y);
            else
                cairo_move_to(cr, x, y);
        }
        if (nf > 1)
            cairo_stroke(cr);
        cairo_new_path(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        free(order);
    }

    /* points with error bars */
    for (int k = 0; k < c->ng; k++) {
        const clv_report_group *g = &c->g[k];
        if (!plotted(g))
            continue;
        double rgb[3];
        method_colour(c->runs[g->runs[0]].cfg.method, rgb);
        double b = g->marginal_bits.mean, x = XOF(b) + c->dx[k], y = PY(g->accuracy.mean);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_set_line_width(cr, 1.2);
        if (g->accuracy.sd > 0) {
            double y1 = PY(fmax(alo, g->accuracy.mean - g->accuracy.sd));
            double y2 = PY(fmin(ahi, g->accuracy.mean + g->accuracy.sd));
            cairo_move_to(cr, x, y1);
            cairo_line_to(cr, x, y2);
            cairo_move_to(cr, x - 4, y1);
            cairo_line_to(cr, x + 4, y1);
            cairo_move_to(cr, x - 4, y2);
            cairo_line_to(cr, x + 4, y2);
            cairo_stroke(cr);
        }
        if (b > 0 && g->marginal_bits.sd > 0 && b - g->marginal_bits.sd > 0) {
            cairo_move_to(cr, PX(log10(b - g->marginal_bits.sd)), y);
            cairo_line_to(cr, PX(log10(b + g->marginal_bits.sd)), y);
            cairo_stroke(cr);
        }
        marker(cr, c->shape[k], x, y, 5);
        cairo_fill_preserve(cr);
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_set_line_width(cr, 0.8);
        cairo_stroke(cr);
    }

    /* the legend */
    double lx = w - LEGEND_W + 16, ly = TOP + 8;
    cairo_set_font_size(cr, 11);
    for (int k = 0; k < c->ng; k++) {
        const clv_report_group *g = &c->g[k];
        if (!plotted(g))
            continue;
        double rgb[3];
        method_colour(c->runs[g->runs[0]].cfg.method, rgb);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        marker(cr, c->shape[k], lx + 6, ly, 5);
        cairo_fill(cr);
        char label[600], text[640];
        clv_report_group_label(c->runs, c->g, c->ng, k, label, sizeof label);
        snprintf(text, sizeof text, "%s%s (n=%d)", label, g->pareto ? " *" : "", g->n_runs);
        if (strlen(text) > 46)
            strcpy(text + 43, "...");
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_move_to(cr, lx + 18, ly + 4);
        cairo_show_text(cr, text);
        ly += LEGEND_ROW;
    }
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    cairo_set_line_width(cr, 1.5);
    double dash[] = {6, 4};
    cairo_set_dash(cr, dash, 2, 0);
    cairo_move_to(cr, lx, ly);
    cairo_line_to(cr, lx + 14, ly);
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_move_to(cr, lx + 18, ly + 4);
    cairo_show_text(cr, "Pareto front (*): no group has more");
    cairo_move_to(cr, lx + 18, ly + 4 + 14);
    cairo_show_text(cr, "accuracy with fewer bits");
#undef PX
#undef PY
#undef XOF
}

int plot_accuracy_vs_bits(const clv_report_run *runs, int n, const char *dir, clv_err *err)
{
    scatter c = {runs, NULL, 0, NULL, NULL, 0};
    if (clv_report_group_runs(runs, n, &c.g, &c.ng, err))
        return -1;
    int rc = -1;
    c.shape = calloc((size_t)(c.ng ? c.ng : 1), sizeof *c.shape);
    c.dx = calloc((size_t)(c.ng ? c.ng : 1), sizeof *c.dx);
    if (!c.shape || !c.dx) {
        clv_errf(err, "out of memory");
        goto done;
    }
    for (int k = 0; k < c.ng; k++) { /* the i-th group of a method gets the i-th marker */
        const char *m = runs[c.g[k].runs[0]].cfg.method;
        for (int j = 0; j < k; j++)
            c.shape[k] += !strcmp(runs[c.g[j].runs[0]].cfg.method, m);
        c.n_legend += plotted(&c.g[k]);
        int same = 0, before = 0;
        for (int j = 0; j < c.ng; j++)
            if (plotted(&c.g[j]) && c.g[j].marginal_bits.mean == c.g[k].marginal_bits.mean) {
                same++;
                before += j < k;
            }
        c.dx[k] = (before - (same - 1) / 2.0) * 9.0;
    }
    char base[CLV_PATH_LEN + 64];
    snprintf(base, sizeof base, "%s/accuracy-vs-bits", dir);
    double hgt = TOP + 8 + (c.n_legend + 2) * LEGEND_ROW + BOTTOM;
    rc = plot_render(base, 900, hgt > 500 ? (int)hgt : 500, draw, &c, err);
done:
    free(c.shape);
    free(c.dx);
    clv_report_groups_free(c.g, c.ng);
    return rc;
}
