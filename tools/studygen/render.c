/* One glyph image: the FreeType outline in font units (no hinting, no
 * embedded bitmaps), centred on its exact bounding box, scaled so its longer
 * side spans a random 17-25 px, stretched, sheared, rotated and shifted,
 * filled (and sometimes stroked, to thicken it) by Cairo on a 32x32 A8
 * surface; then blurred, given a random dark background and light ink, and
 * noise. Every random number is draw i of the image's key, so an image is a
 * pure function of (seed, dataset, split, class, font, index). */
#include "studygen.h"

#include <cairo.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include FT_OUTLINE_H
#include FT_BBOX_H

#include "clvit/core.h"

/* Ranges of the augmentation (uniform unless said). */
#define INK_MIN 17.0       /* longer side of the ink box before warping, px */
#define INK_MAX 25.0
#define ASPECT_LOG 0.15    /* log(x scale / y scale) in +-ASPECT_LOG */
#define ROTATE_DEG 12.0
#define SHEAR 0.20
#define SHIFT 2.5          /* px, each axis */
#define STROKE_P 0.35      /* probability of an extra stroke that thickens the glyph */
#define STROKE_MAX 1.4     /* px */
#define BLUR_MAX 1.1       /* Gaussian sigma, px; none below 0.3 */
#define BG_MAX 0.25        /* background level in [0, BG_MAX] */
#define FG_MIN 0.65        /* ink level in [FG_MIN, 1] */
#define NOISE_MAX 0.07     /* Gaussian noise sigma in [0, NOISE_MAX] */

const char *sg_render_description(void)
{
    return "{\"size\": 32, \"ink_box_px\": [17, 25], \"aspect_log\": 0.15, \"rotate_deg\": 12, \"shear\": 0.2, "
           "\"shift_px\": 2.5, \"stroke_probability\": 0.35, \"stroke_px\": [0, 1.4], \"blur_sigma_px\": [0, 1.1], "
           "\"background\": [0, 0.25], \"ink\": [0.65, 1], \"noise_sigma\": [0, 0.07], "
           "\"outline\": \"FreeType, font units, unhinted; filled by Cairo (grey antialiasing)\"}";
}

int sg_ftcache_init(sg_ftcache *c, int n_faces, sg_err *err)
{
    memset(c, 0, sizeof *c);
    if (FT_Init_FreeType(&c->lib))
        return sg_errf(err, "FreeType does not initialize");
    c->faces = calloc((size_t)n_faces, sizeof *c->faces);
    c->n = n_faces;
    return c->faces ? 0 : sg_errf(err, "out of memory");
}

FT_Face sg_ftcache_face(sg_ftcache *c, const sg_fonts *fonts, int i, sg_err *err)
{
    if (!c->faces[i] && FT_New_Face(c->lib, fonts->v[i].path, fonts->v[i].index, &c->faces[i])) {
        c->faces[i] = NULL;
        sg_errf(err, "%s: FreeType cannot open face %ld", fonts->v[i].path, fonts->v[i].index);
    }
    return c->faces[i];
}

void sg_ftcache_free(sg_ftcache *c)
{
    for (int i = 0; i < c->n; i++)
        if (c->faces[i])
            FT_Done_Face(c->faces[i]);
    free(c->faces);
    if (c->lib)
        FT_Done_FreeType(c->lib);
    memset(c, 0, sizeof *c);
}

/* ---- outline -> Cairo path (user space = font units) ---- */
typedef struct path_state {
    cairo_t *cr;
    double x, y; /* current point, for quadratic -> cubic */
} path_state;

static int move_to(const FT_Vector *to, void *u)
{
    path_state *s = u;
    cairo_close_path(s->cr);
    s->x = to->x;
    s->y = to->y;
    cairo_move_to(s->cr, s->x, s->y);
    return 0;
}

static int line_to(const FT_Vector *to, void *u)
{
    path_state *s = u;
    s->x = to->x;
    s->y = to->y;
    cairo_line_to(s->cr, s->x, s->y);
    return 0;
}

static int conic_to(const FT_Vector *c, const FT_Vector *to, void *u)
{
    path_state *s = u;
    /* the cubic with the same curve: control points 2/3 of the way to c */
    const double c1x = s->x + 2.0 / 3.0 * ((double)c->x - s->x), c1y = s->y + 2.0 / 3.0 * ((double)c->y - s->y);
    const double c2x = to->x + 2.0 / 3.0 * ((double)c->x - to->x), c2y = to->y + 2.0 / 3.0 * ((double)c->y - to->y);
    s->x = to->x;
    s->y = to->y;
    cairo_curve_to(s->cr, c1x, c1y, c2x, c2y, s->x, s->y);
    return 0;
}

static int cubic_to(const FT_Vector *c1, const FT_Vector *c2, const FT_Vector *to, void *u)
{
    path_state *s = u;
    s->x = to->x;
    s->y = to->y;
    cairo_curve_to(s->cr, c1->x, c1->y, c2->x, c2->y, s->x, s->y);
    return 0;
}

static float uni(uint64_t key, uint64_t i, double lo, double hi)
{
    return (float)(lo + (hi - lo) * clv_rng_uniform(key, i));
}

/* Separable Gaussian blur of a size x size image, zero outside. */
static void blur(float *img, float *tmp, int size, float sigma)
{
    int r = (int)ceilf(3.0f * sigma);
    if (r > 8)
        r = 8;
    float k[17], sum = 0;
    for (int i = -r; i <= r; i++)
        sum += k[i + r] = expf(-(float)(i * i) / (2.0f * sigma * sigma));
    for (int i = 0; i <= 2 * r; i++)
        k[i] /= sum;
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            float a = 0;
            for (int i = -r; i <= r; i++)
                if (x + i >= 0 && x + i < size)
                    a += k[i + r] * img[y * size + x + i];
            tmp[y * size + x] = a;
        }
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            float a = 0;
            for (int i = -r; i <= r; i++)
                if (y + i >= 0 && y + i < size)
                    a += k[i + r] * tmp[(y + i) * size + x];
            img[y * size + x] = a;
        }
}

int sg_render_glyph(FT_Face face, uint32_t cp, uint64_t key, uint8_t *out, sg_err *err)
{
    const int S = SG_GLYPH_SIZE;
    FT_UInt gi = FT_Get_Char_Index(face, cp);
    if (!gi || FT_Load_Glyph(face, gi, FT_LOAD_NO_SCALE | FT_LOAD_NO_HINTING | FT_LOAD_NO_BITMAP) ||
        face->glyph->format != FT_GLYPH_FORMAT_OUTLINE || face->glyph->outline.n_points == 0)
        return sg_errf(err, "%s %s: no outline for U+%04X", face->family_name, face->style_name, (unsigned)cp);
    FT_Outline *ol = &face->glyph->outline;
    FT_BBox bb;
    FT_Outline_Get_BBox(ol, &bb);
    const double w = (double)(bb.xMax - bb.xMin), h = (double)(bb.yMax - bb.yMin);
    const double cx = 0.5 * (double)(bb.xMin + bb.xMax), cy = 0.5 * (double)(bb.yMin + bb.yMax);
    const double longer = w > h ? w : h;
    if (longer <= 0)
        return sg_errf(err, "%s %s: U+%04X has an empty box", face->family_name, face->style_name, (unsigned)cp);

    /* the draws, by number: the same draw always means the same thing */
    const double ink = uni(key, 0, INK_MIN, INK_MAX);
    const double aspect = uni(key, 1, -ASPECT_LOG, ASPECT_LOG);
    const double angle = uni(key, 2, -ROTATE_DEG, ROTATE_DEG) * M_PI / 180.0;
    const double shear = uni(key, 3, -SHEAR, SHEAR);
    const double dx = uni(key, 4, -SHIFT, SHIFT), dy = uni(key, 5, -SHIFT, SHIFT);
    const int stroke = clv_rng_uniform(key, 6) < STROKE_P;
    const double stroke_w = uni(key, 7, 0.0, STROKE_MAX);
    const float sigma = uni(key, 8, 0.0, BLUR_MAX);
    const float bg = uni(key, 9, 0.0, BG_MAX), fg = uni(key, 10, FG_MIN, 1.0);
    const float noise = uni(key, 11, 0.0, NOISE_MAX);

    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_A8, S, S);
    cairo_t *cr = cairo_create(surf);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        cairo_destroy(cr);
        cairo_surface_destroy(surf);
        return sg_errf(err, "cairo cannot create a %dx%d surface", S, S);
    }
    const double s = ink / longer, ea = exp(0.5 * aspect);
    cairo_translate(cr, 0.5 * S + dx, 0.5 * S + dy);
    cairo_rotate(cr, angle);
    cairo_matrix_t sh;
    cairo_matrix_init(&sh, 1, 0, shear, 1, 0, 0);
    cairo_transform(cr, &sh);
    cairo_scale(cr, s * ea, -s / ea); /* font y points up */
    cairo_translate(cr, -cx, -cy);
    path_state ps = {cr, 0, 0};
    const FT_Outline_Funcs funcs = {move_to, line_to, conic_to, cubic_to, 0, 0};
    cairo_new_path(cr);
    FT_Outline_Decompose(ol, &funcs, &ps);
    cairo_close_path(cr);
    cairo_set_fill_rule(cr, (ol->flags & FT_OUTLINE_EVEN_ODD_FILL) ? CAIRO_FILL_RULE_EVEN_ODD : CAIRO_FILL_RULE_WINDING);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_GRAY);
    cairo_set_source_rgba(cr, 0, 0, 0, 1);
    if (stroke) {
        cairo_fill_preserve(cr);
        cairo_identity_matrix(cr); /* the width in pixels */
        cairo_set_line_width(cr, stroke_w);
        cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
        cairo_stroke(cr);
    } else {
        cairo_fill(cr);
    }
    cairo_surface_flush(surf);
    const unsigned char *a8 = cairo_image_surface_get_data(surf);
    const int stride = cairo_image_surface_get_stride(surf);
    float img[SG_GLYPH_SIZE * SG_GLYPH_SIZE], tmp[SG_GLYPH_SIZE * SG_GLYPH_SIZE];
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            img[y * S + x] = (float)a8[y * stride + x] * (1.0f / 255.0f);
    cairo_destroy(cr);
    cairo_surface_destroy(surf);

    if (sigma >= 0.3f)
        blur(img, tmp, S, sigma);
    const uint64_t noise_key = clv_splitmix64(key ^ 0x6E6F697365ull); /* "noise" */
    for (int p = 0; p < S * S; p++) {
        float v = bg + (fg - bg) * img[p] + noise * clv_rng_normal(noise_key, (uint64_t)p);
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        out[p] = (uint8_t)(v * 255.0f + 0.5f);
    }
    return 0;
}
