/* The glyph datasets: glyphs100 and cjk1000 (image folders), and the glyph
 * renderer shared with domains5's latin and cyrillic domains.
 *
 * An image of class c, split s, number i: its font group is the split's
 * groups in turn from a random start per class (so groups are balanced in
 * every class), its face is drawn from the group, and its warp from the key
 * (seed, dataset, split, class, face, i). */
#include "studygen.h"

#include <cairo.h>
#include <cjson/cJSON.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "clvit/core.h"

static uint64_t class_id(int dataset, int split, int c) { return (uint64_t)dataset << 40 | (uint64_t)split << 32 | (uint64_t)c; }

typedef struct group_faces {
    const char *name;
    int *face; /* indices into fonts */
    int n;
} group_faces;

static int cmp_group(const void *a, const void *b) { return strcmp(((const group_faces *)a)->name, ((const group_faces *)b)->name); }

/* The groups of one split, sorted by name, each with its faces in font order. */
static group_faces *split_groups(const sg_fonts *f, int split, int *n_out)
{
    group_faces *g = calloc((size_t)f->n, sizeof *g);
    int n = 0;
    if (!g)
        return NULL;
    for (int i = 0; i < f->n; i++) {
        if (f->v[i].split != split)
            continue;
        int k = 0;
        while (k < n && strcmp(g[k].name, f->v[i].group))
            k++;
        if (k == n) {
            g[n].name = f->v[i].group;
            if (!(g[n].face = calloc((size_t)f->n, sizeof *g[n].face)))
                return NULL;
            n++;
        }
        g[k].face[g[k].n++] = i;
    }
    qsort(g, (size_t)n, sizeof *g, cmp_group);
    *n_out = n;
    return g;
}

static void groups_free(group_faces *g, int n)
{
    for (int i = 0; g && i < n; i++)
        free(g[i].face);
    free(g);
}

int sg_render_set(sg_build *b, const sg_glyph_job *j, cJSON *images[SG_SPLITS], cJSON *anns[SG_SPLITS], sg_err *err)
{
    const sg_classes *cl = j->classes;
    for (int s = 0; s < SG_SPLITS; s++) {
        const int per = j->per_class[s];
        int n_groups = 0;
        group_faces *groups = split_groups(j->fonts, s, &n_groups);
        if (!groups || !n_groups) {
            groups_free(groups, n_groups);
            return sg_errf(err, "%s: no fonts for the %s split", b->name, sg_split_name[s]);
        }
        const int64_t first = sg_build_reserve(b, (int64_t)cl->n * per, err);
        if (first < 0) {
            groups_free(groups, n_groups);
            return -1;
        }
        char dir[SG_PATH + 160];
        for (int c = 0; c < cl->n; c++) {
            if (j->domain)
                snprintf(dir, sizeof dir, "%s/data/%s/%s", b->dir, j->domain, sg_split_name[s]);
            else
                snprintf(dir, sizeof dir, "%s/%s/%s", b->dir, sg_split_name[s], cl->v[c].name);
            if (sg_mkdirs(dir, err)) {
                groups_free(groups, n_groups);
                return -1;
            }
        }
        int failed = 0;
        sg_err first_err = {{0}};
#pragma omp parallel
        {
            sg_ftcache cache;
            sg_err terr = {{0}};
            int ok = !sg_ftcache_init(&cache, j->fonts->n, &terr);
            uint8_t px[SG_GLYPH_SIZE * SG_GLYPH_SIZE];
            char path[SG_PATH + 256];
#pragma omp for schedule(dynamic, 1)
            for (int c = 0; c < cl->n; c++) {
                const uint64_t cid = class_id(j->dataset, s, c);
                const int start = (int)clv_rng_below(clv_rng_key(b->o->seed, SG_STREAM_GROUP, cid, 0), 0, (uint64_t)n_groups);
                const uint64_t face_key = clv_rng_key(b->o->seed, SG_STREAM_FACE, cid, 0);
                for (int i = 0; ok && i < per; i++) {
                    const group_faces *g = &groups[(start + i) % n_groups];
                    const int fi = g->face[clv_rng_below(face_key, (uint64_t)i, (uint64_t)g->n)];
                    const uint64_t key = clv_rng_key(b->o->seed, SG_STREAM_AUG, cid, (uint64_t)fi << 32 | (uint64_t)i);
                    FT_Face face = sg_ftcache_face(&cache, j->fonts, fi, &terr);
                    sg_record *r = &b->rec[first + (int64_t)c * per + i];
                    if (j->domain)
                        snprintf(r->path, sizeof r->path, "data/%s/%s/%07d.png", j->domain, sg_split_name[s], c * per + i);
                    else
                        snprintf(r->path, sizeof r->path, "%s/%s/%05d.png", sg_split_name[s], cl->v[c].name, i);
                    snprintf(path, sizeof path, "%s/%s", b->dir, r->path);
                    ok = face && !sg_render_glyph(face, cl->v[c].cp, key, px, &terr) &&
                         !sg_write_png_gray(path, px, SG_GLYPH_SIZE, SG_GLYPH_SIZE, &terr);
                    r->label = c;
                    snprintf(r->source, sizeof r->source, "%.70s|%.50s|%.30s", j->fonts->v[fi].family, j->fonts->v[fi].style,
                             j->fonts->v[fi].group);
                }
            }
            if (!ok) {
#pragma omp critical(sg_render_err)
                {
                    if (!failed)
                        first_err = terr;
                    failed = 1;
                }
            }
            sg_ftcache_free(&cache);
        }
        groups_free(groups, n_groups);
        if (failed) {
            *err = first_err;
            return -1;
        }
        if (images && anns) /* Decathlon entries, in file order */
            for (int c = 0; c < cl->n; c++)
                for (int i = 0; i < per; i++) {
                    const int k = c * per + i;
                    const double id = (double)(j->id_base + (int64_t)s * 1000000 + k);
                    cJSON *im = cJSON_CreateObject();
                    cJSON_AddNumberToObject(im, "id", id);
                    cJSON_AddStringToObject(im, "file_name", b->rec[first + k].path);
                    cJSON_AddNumberToObject(im, "width", SG_GLYPH_SIZE);
                    cJSON_AddNumberToObject(im, "height", SG_GLYPH_SIZE);
                    cJSON_AddItemToArray(images[s], im);
                    cJSON *an = cJSON_CreateObject();
                    cJSON_AddNumberToObject(an, "id", id);
                    cJSON_AddNumberToObject(an, "image_id", id);
                    cJSON_AddNumberToObject(an, "category_id", (double)(j->cat_base + c + 1));
                    cJSON_AddItemToArray(anns[s], an);
                }
    }
    return 0;
}

/* ---- manifest pieces ---- */
void sg_fonts_to_json(cJSON *parent, const sg_fonts *f)
{
    cJSON *fonts = cJSON_AddObjectToObject(parent, "fonts");
    cJSON *groups = cJSON_AddObjectToObject(parent, "font_groups");
    for (int s = 0; s < SG_SPLITS; s++) {
        cJSON *arr = cJSON_AddArrayToObject(fonts, sg_split_name[s]);
        cJSON *garr = cJSON_AddArrayToObject(groups, sg_split_name[s]);
        int n_groups = 0;
        group_faces *g = split_groups(f, s, &n_groups);
        for (int k = 0; g && k < n_groups; k++)
            cJSON_AddItemToArray(garr, cJSON_CreateString(g[k].name));
        groups_free(g, n_groups);
        for (int i = 0; i < f->n; i++) {
            if (f->v[i].split != s)
                continue;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "file", f->v[i].path);
            cJSON_AddNumberToObject(o, "face", (double)f->v[i].index);
            cJSON_AddStringToObject(o, "family", f->v[i].family);
            cJSON_AddStringToObject(o, "style", f->v[i].style);
            cJSON_AddStringToObject(o, "group", f->v[i].group);
            cJSON_AddStringToObject(o, "package", f->v[i].package);
            cJSON_AddItemToArray(arr, o);
        }
    }
    cJSON *x = cJSON_AddArrayToObject(parent, "fonts_excluded");
    for (int i = 0; i < f->nx; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", f->x[i].path);
        cJSON_AddNumberToObject(o, "face", (double)f->x[i].index);
        cJSON_AddStringToObject(o, "family", f->x[i].family);
        cJSON_AddStringToObject(o, "style", f->x[i].style);
        cJSON_AddStringToObject(o, "reason", f->x[i].reason);
        cJSON_AddItemToArray(x, o);
    }
}

static void utf8(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        out[3] = 0;
    } else {
        out[0] = (char)(0xF0 | cp >> 18);
        out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        out[4] = 0;
    }
}

cJSON *sg_classes_to_json(const sg_classes *c)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < c->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "label", i);
        cJSON_AddStringToObject(o, "name", c->v[i].name);
        if (c->v[i].cp) {
            char cp[16], ch[8];
            snprintf(cp, sizeof cp, "U+%04X", (unsigned)c->v[i].cp);
            utf8(c->v[i].cp, ch);
            cJSON_AddStringToObject(o, "code_point", cp);
            cJSON_AddStringToObject(o, "char", ch);
        }
        if (c->v[i].extra[0])
            cJSON_AddStringToObject(o, "position", c->v[i].extra);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

cJSON *sg_libraries_json(void)
{
    cJSON *o = cJSON_CreateObject();
    char ft[32];
    FT_Library lib;
    FT_Int a = 0, b = 0, c = 0;
    if (!FT_Init_FreeType(&lib)) {
        FT_Library_Version(lib, &a, &b, &c);
        FT_Done_FreeType(lib);
    }
    snprintf(ft, sizeof ft, "%d.%d.%d", a, b, c);
    cJSON_AddStringToObject(o, "cairo", cairo_version_string());
    cJSON_AddStringToObject(o, "freetype", ft);
    cJSON_AddStringToObject(o, "libpng", png_get_libpng_ver(NULL));
    cJSON_AddStringToObject(o, "zlib", zlibVersion());
    return o;
}

int sg_font_packages_used(const sg_fonts *f, const char **list, int n, int cap)
{
    for (int i = 0; i < f->n && n < cap; i++) {
        int seen = 0;
        for (int k = 0; k < n; k++)
            seen |= !strcmp(list[k], f->v[i].package);
        if (!seen)
            list[n++] = f->v[i].package;
    }
    return n;
}

static cJSON *counts_json(int n_classes, const int per_class[SG_SPLITS])
{
    cJSON *o = cJSON_CreateObject();
    for (int s = 0; s < SG_SPLITS; s++) {
        cJSON *c = cJSON_AddObjectToObject(o, sg_split_name[s]);
        cJSON_AddNumberToObject(c, "total", (double)n_classes * per_class[s]);
        cJSON_AddNumberToObject(c, "per_class", per_class[s]);
    }
    return o;
}

/* An image-folder glyph dataset from classes and fonts. */
static int make_folder(const sg_opts *o, const char *name, int dataset, const sg_classes *cl, const sg_fonts *fonts,
                       const int per_class[SG_SPLITS], const char *note, const char *use, sg_err *err)
{
    cJSON *in = cJSON_CreateObject();
    cJSON_AddStringToObject(in, "layout", "imagefolder: <split>/<class>/<NNNNN>.png, 32x32 8-bit gray");
    cJSON_AddStringToObject(in, "use", use);
    cJSON_AddStringToObject(in, "split_by", "font group (design lineage): no face of a val group is in train");
    if (note)
        cJSON_AddStringToObject(in, "note", note);
    cJSON_AddItemToObject(in, "classes", sg_classes_to_json(cl));
    cJSON_AddItemToObject(in, "counts", counts_json(cl->n, per_class));
    cJSON_AddItemToObject(in, "augmentation", cJSON_Parse(sg_render_description()));
    sg_fonts_to_json(in, fonts);
    cJSON *src = cJSON_AddObjectToObject(in, "sources");
    const char *pkgs[64];
    const int n_pkgs = sg_font_packages_used(fonts, pkgs, 0, 64);
    sg_debian_sources(cJSON_AddArrayToObject(src, "debian"), pkgs, n_pkgs);
    cJSON_AddItemToObject(in, "libraries", sg_libraries_json());

    sg_build b;
    int rc = sg_build_begin(&b, o, name, in, err);
    if (rc == 0) {
        sg_glyph_job j = {.dataset = dataset, .classes = cl, .fonts = fonts, .per_class = {per_class[0], per_class[1]}};
        const char *names[SG_SPLITS] = {"train", "val"}, *prefixes[SG_SPLITS] = {"train/", "val/"};
        rc = sg_render_set(&b, &j, NULL, NULL, err) || sg_build_finish(&b, names, prefixes, SG_SPLITS, err) ? -1 : 0;
    }
    sg_build_free(&b);
    return rc < 0 ? -1 : 0;
}

int sg_make_glyphs100(const sg_opts *o, sg_err *err)
{
    sg_classes cl = {0};
    sg_fonts fonts = {0};
    int rc = -1;
    if (sg_classes_glyphs100(&cl, err) ||
        sg_fonts_find(o->fonts_dir, SG_FONTS_WESTERN, o->quick, &cl, o->allow_missing, &fonts, err))
        goto done;
    const int per[SG_SPLITS] = {o->quick ? 2 : 300, o->quick ? 1 : 100};
    char use[SG_PATH + 128];
    snprintf(use, sizeof use, "clvit train --data imagefolder --data-root %s/glyphs100 --tasks 10", o->out);
    rc = make_folder(o, "glyphs100", SG_DS_GLYPHS100, &cl, &fonts, per,
                     "100 distinct shapes: Latin, digits, Greek, Cyrillic and symbols, look-alikes dropped "
                     "(tools/studygen/classes.c); labels in name order",
                     use, err);
done:
    sg_fonts_free(&fonts);
    sg_classes_free(&cl);
    return rc;
}

int sg_make_cjk1000(const sg_opts *o, sg_err *err)
{
    sg_classes all = {0}, cl = {0};
    sg_fonts fonts = {0};
    int rc = -1;
    if (sg_classes_gb2312_level1(&all, err) ||
        sg_fonts_find(o->fonts_dir, SG_FONTS_CJK, o->quick, NULL, o->allow_missing, &fonts, err))
        goto done;
    /* the characters every face draws, then every (n/want)-th of them in GB2312 (pinyin) order */
    FT_Library lib;
    if (FT_Init_FreeType(&lib)) {
        sg_errf(err, "FreeType does not initialize");
        goto done;
    }
    int n_ok = 0;
    for (int f = 0; f < fonts.n; f++) {
        FT_Face face;
        if (FT_New_Face(lib, fonts.v[f].path, fonts.v[f].index, &face)) {
            FT_Done_FreeType(lib);
            sg_errf(err, "%s: FreeType cannot open face %ld", fonts.v[f].path, fonts.v[f].index);
            goto done;
        }
        for (int c = 0; c < all.n; c++)
            if (all.v[c].cp && !sg_face_covers(face, all.v[c].cp))
                all.v[c].cp = 0;
        FT_Done_Face(face);
    }
    FT_Done_FreeType(lib);
    for (int c = 0; c < all.n; c++)
        if (all.v[c].cp)
            all.v[n_ok++] = all.v[c];
    const int want = o->quick ? 30 : 1000;
    if (n_ok < want) {
        sg_errf(err, "only %d GB2312 level-1 characters have an outline in every CJK face, %d wanted", n_ok, want);
        goto done;
    }
    cl.n = want;
    if (!(cl.v = calloc((size_t)want, sizeof *cl.v))) {
        sg_errf(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < want; i++)
        cl.v[i] = all.v[(int64_t)i * n_ok / want];
    const int per[SG_SPLITS] = {o->quick ? 3 : 100, o->quick ? 1 : 10};
    char note[256], use[SG_PATH + 128];
    snprintf(note, sizeof note,
             "GB2312 level 1 (3755 characters, pinyin order): the %d with an outline in every chosen face, "
             "then every %.3fth; disjoint from every task's classes",
             n_ok, (double)n_ok / want);
    snprintf(use, sizeof use, "clvit pretrain --data imagefolder --data-root %s/cjk1000", o->out);
    rc = make_folder(o, "cjk1000", SG_DS_CJK1000, &cl, &fonts, per, note, use, err);
done:
    sg_fonts_free(&fonts);
    sg_classes_free(&all);
    sg_classes_free(&cl);
    return rc;
}
