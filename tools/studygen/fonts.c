/* Which fonts the suite uses, and on which side of the split.
 *
 * Families are grouped by design lineage: metric clones of one design
 * (Arimo, Liberation Sans, Nimbus Sans, FreeSans) share a group, so a test
 * font's twin never sits in training. A group is train or val as a whole,
 * with every weight, width and slant of its families. A face is used only
 * when it comes from the Debian package named for its family (so a second
 * copy from another package never changes the data), its style is legible
 * at 32x32 (Thin and Hairline weights are left out) and, for a dataset, it
 * has a non-empty outline for every class. */
#include "studygen.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include FT_OUTLINE_H

typedef struct family_rule {
    const char *family;
    const char *group;
    const char *package;
} family_rule;

typedef struct group_rule {
    const char *group;
    int split;
} group_rule;

static const group_rule western_groups[] = {
    {"helvetica-arial", SG_TRAIN}, {"times", SG_VAL},           {"liberation-mono", SG_TRAIN},
    {"courier", SG_VAL},           {"dejavu", SG_TRAIN},        {"computer-modern", SG_TRAIN},
    {"open-sans-noto-sans", SG_TRAIN}, {"noto-serif", SG_VAL},  {"zapf-chancery", SG_TRAIN},
    {"go", SG_TRAIN},              {"comfortaa", SG_TRAIN},     {"garamond", SG_TRAIN},
    {"libertine", SG_TRAIN},       {"old-standard", SG_TRAIN},  {"century-schoolbook", SG_TRAIN},
    {"palatino", SG_VAL},          {"bookman", SG_TRAIN},       {"avant-garde", SG_VAL},
    {"carlito", SG_TRAIN},         {"roboto", SG_TRAIN},        {"tuffy", SG_TRAIN},
    {"cantarell", SG_TRAIN},       {"inter", SG_TRAIN},         {"jetbrains-mono", SG_VAL},
    {"lato", SG_VAL},              {"gentium", SG_TRAIN},       {"anonymous-pro", SG_TRAIN},
    {"charter", SG_TRAIN},         {"andika", SG_TRAIN},        {"paratype", SG_VAL},
    {"caladea", SG_TRAIN},         {"gfs-artemisia", SG_TRAIN}, {"gfs-neohellenic", SG_TRAIN},
};

static const family_rule western_families[] = {
    {"Arimo", "helvetica-arial", "fonts-croscore"},
    {"Liberation Sans", "helvetica-arial", "fonts-liberation2"},
    {"Nimbus Sans", "helvetica-arial", "fonts-urw-base35"},
    {"Nimbus Sans Narrow", "helvetica-arial", "fonts-urw-base35"},
    {"FreeSans", "helvetica-arial", "fonts-freefont-ttf"},
    {"Tinos", "times", "fonts-croscore"},
    {"Liberation Serif", "times", "fonts-liberation2"},
    {"Nimbus Roman", "times", "fonts-urw-base35"},
    {"FreeSerif", "times", "fonts-freefont-ttf"},
    {"STIXGeneral", "times", "fonts-stix"},
    {"STIX", "times", "fonts-stix"},
    {"Doulos SIL", "times", "fonts-sil-doulos"},
    {"Cousine", "liberation-mono", "fonts-croscore"},
    {"Liberation Mono", "liberation-mono", "fonts-liberation2"},
    {"Nimbus Mono PS", "courier", "fonts-urw-base35"},
    {"FreeMono", "courier", "fonts-freefont-ttf"},
    {"DejaVu Sans", "dejavu", "fonts-dejavu-core"},
    {"DejaVu Serif", "dejavu", "fonts-dejavu-core"},
    {"DejaVu Sans Mono", "dejavu", "fonts-dejavu-core"},
    {"DejaVu Sans", "dejavu", "fonts-dejavu-extra"},
    {"DejaVu Serif", "dejavu", "fonts-dejavu-extra"},
    {"DejaVu Sans Mono", "dejavu", "fonts-dejavu-extra"},
    {"CMU Serif", "computer-modern", "fonts-cmu"},
    {"CMU Sans Serif", "computer-modern", "fonts-cmu"},
    {"CMU Typewriter Text", "computer-modern", "fonts-cmu"},
    {"CMU Bright", "computer-modern", "fonts-cmu"},
    {"CMU Concrete", "computer-modern", "fonts-cmu"},
    {"CMU Classical Serif", "computer-modern", "fonts-cmu"},
    {"CMU Serif Extra", "computer-modern", "fonts-cmu"},
    {"CMU Serif Upright Italic", "computer-modern", "fonts-cmu"},
    {"CMU Sans Serif Demi Condensed", "computer-modern", "fonts-cmu"},
    {"Open Sans", "open-sans-noto-sans", "fonts-open-sans"},
    {"Open Sans Condensed", "open-sans-noto-sans", "fonts-open-sans"},
    {"Noto Sans", "open-sans-noto-sans", "fonts-noto-core"},
    {"Noto Sans Display", "open-sans-noto-sans", "fonts-noto-core"},
    {"Noto Serif", "noto-serif", "fonts-noto-core"},
    {"Noto Serif Display", "noto-serif", "fonts-noto-core"},
    {"Z003", "zapf-chancery", "fonts-urw-base35"},
    {"Go", "go", "fonts-go"},
    {"Go Medium", "go", "fonts-go"},
    {"Go Mono", "go", "fonts-go"},
    {"Comfortaa", "comfortaa", "fonts-comfortaa"},
    {"EB Garamond", "garamond", "fonts-ebgaramond"},
    {"Linux Libertine O", "libertine", "fonts-linuxlibertine"},
    {"Linux Libertine Display O", "libertine", "fonts-linuxlibertine"},
    {"Linux Libertine Mono O", "libertine", "fonts-linuxlibertine"},
    {"Linux Biolinum O", "libertine", "fonts-linuxlibertine"},
    {"Old Standard TT", "old-standard", "fonts-oldstandard"},
    {"C059", "century-schoolbook", "fonts-urw-base35"},
    {"P052", "palatino", "fonts-urw-base35"},
    {"URW Bookman", "bookman", "fonts-urw-base35"},
    {"URW Gothic", "avant-garde", "fonts-urw-base35"},
    {"Carlito", "carlito", "fonts-crosextra-carlito"},
    {"Caladea", "caladea", "fonts-crosextra-caladea"},
    {"Roboto", "roboto", "fonts-roboto-unhinted"},
    {"Roboto Condensed", "roboto", "fonts-roboto-unhinted"},
    {"Tuffy", "tuffy", "fonts-tuffy"},
    {"Cantarell", "cantarell", "fonts-cantarell"},
    {"Inter", "inter", "fonts-inter"},
    {"Inter Display", "inter", "fonts-inter"},
    {"JetBrains Mono", "jetbrains-mono", "fonts-jetbrains-mono"},
    {"Lato", "lato", "fonts-lato"},
    {"Gentium", "gentium", "fonts-sil-gentium"},
    {"GentiumAlt", "gentium", "fonts-sil-gentium"},
    {"Anonymous Pro", "anonymous-pro", "fonts-anonymous-pro"},
    {"Anonymous Pro Minus", "anonymous-pro", "fonts-anonymous-pro"},
    {"Charis SIL", "charter", "fonts-sil-charis"},
    {"Andika", "andika", "fonts-sil-andika"},
    {"PT Sans", "paratype", "fonts-paratype"},
    {"PT Sans Caption", "paratype", "fonts-paratype"},
    {"PT Sans Narrow", "paratype", "fonts-paratype"},
    {"PT Serif", "paratype", "fonts-paratype"},
    {"PT Serif Caption", "paratype", "fonts-paratype"},
    {"PT Mono", "paratype", "fonts-paratype"},
    {"GFS Artemisia", "gfs-artemisia", "fonts-gfs-artemisia"},
    {"GFS Neohellenic", "gfs-neohellenic", "fonts-gfs-neohellenic"},
};

/* Simplified-Chinese faces only: the other regional faces of a collection draw some characters differently. */
static const group_rule cjk_groups[] = {
    {"droid-microhei", SG_TRAIN}, {"wqy-zenhei", SG_VAL},      {"noto-sans-cjk", SG_TRAIN},
    {"noto-serif-cjk", SG_TRAIN}, {"arphic-kai", SG_TRAIN},    {"arphic-ming", SG_VAL},
    {"smiley-sans", SG_TRAIN},
};

static const family_rule cjk_families[] = {
    {"Droid Sans Fallback", "droid-microhei", "fonts-droid-fallback"},
    {"WenQuanYi Micro Hei", "droid-microhei", "fonts-wqy-microhei"},
    {"WenQuanYi Micro Hei Mono", "droid-microhei", "fonts-wqy-microhei"},
    {"WenQuanYi Zen Hei", "wqy-zenhei", "fonts-wqy-zenhei"},
    {"WenQuanYi Zen Hei Mono", "wqy-zenhei", "fonts-wqy-zenhei"},
    {"WenQuanYi Zen Hei Sharp", "wqy-zenhei", "fonts-wqy-zenhei"},
    {"Noto Sans CJK SC", "noto-sans-cjk", "fonts-noto-cjk"},
    {"Noto Sans Mono CJK SC", "noto-sans-cjk", "fonts-noto-cjk"},
    {"Noto Serif CJK SC", "noto-serif-cjk", "fonts-noto-cjk"},
    {"AR PL UKai CN", "arphic-kai", "fonts-arphic-ukai"},
    {"AR PL KaitiM GB", "arphic-kai", "fonts-arphic-gkai00mp"},
    {"AR PL UMing CN", "arphic-ming", "fonts-arphic-uming"},
    {"AR PL SungtiL GB", "arphic-ming", "fonts-arphic-gbsn00lp"},
    {"Smiley Sans", "smiley-sans", "fonts-smiley-sans"},
};

/* --quick: small packages only, both sides of the split present in each. */
static const char *const quick_western[] = {"fonts-dejavu-core", "fonts-liberation2", NULL};
static const char *const quick_cjk[] = {"fonts-wqy-microhei", "fonts-arphic-gbsn00lp", NULL};

static const char *const all_western[] = {
    "fonts-anonymous-pro", "fonts-cantarell", "fonts-cmu", "fonts-comfortaa", "fonts-crosextra-caladea",
    "fonts-crosextra-carlito", "fonts-croscore", "fonts-dejavu-core", "fonts-dejavu-extra", "fonts-ebgaramond",
    "fonts-freefont-ttf", "fonts-gfs-artemisia", "fonts-gfs-neohellenic", "fonts-go", "fonts-inter",
    "fonts-jetbrains-mono", "fonts-lato", "fonts-liberation2", "fonts-linuxlibertine", "fonts-noto-core",
    "fonts-oldstandard", "fonts-paratype", "fonts-roboto-unhinted", "fonts-sil-andika", "fonts-sil-charis",
    "fonts-sil-doulos", "fonts-sil-gentium", "fonts-stix", "fonts-tuffy", "fonts-urw-base35", NULL};
static const char *const all_cjk[] = {"fonts-arphic-gbsn00lp", "fonts-arphic-gkai00mp", "fonts-arphic-ukai",
                                      "fonts-arphic-uming", "fonts-droid-fallback", "fonts-noto-cjk",
                                      "fonts-smiley-sans", "fonts-wqy-microhei", "fonts-wqy-zenhei", NULL};

const char *const *sg_font_packages(int kind, int quick)
{
    if (kind == SG_FONTS_CJK)
        return quick ? quick_cjk : all_cjk;
    return quick ? quick_western : all_western;
}

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (!strcmp(*list, s))
            return 1;
    return 0;
}

/* ---- which package ships a file: /var/lib/dpkg/info/<pkg>.list ---- */
typedef struct pkgfiles {
    const char *pkg;
    char **paths; /* real paths of the font files the package lists */
    int n;
} pkgfiles;

static int is_font_name(const char *n)
{
    const char *dot = strrchr(n, '.');
    return dot && (!strcmp(dot, ".ttf") || !strcmp(dot, ".otf") || !strcmp(dot, ".ttc"));
}

static void pkgfiles_load(pkgfiles *p, const char *pkg)
{
    p->pkg = pkg;
    p->paths = NULL;
    p->n = 0;
    char path[SG_PATH], line[SG_PATH], real[PATH_MAX];
    snprintf(path, sizeof path, "/var/lib/dpkg/info/%s.list", pkg);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(path, sizeof path, "/var/lib/dpkg/info/%s:amd64.list", pkg);
        f = fopen(path, "r");
    }
    if (!f)
        return;
    int cap = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!is_font_name(line) || !realpath(line, real))
            continue;
        if (p->n == cap) {
            cap = cap ? 2 * cap : 64;
            char **v = realloc(p->paths, (size_t)cap * sizeof *v);
            if (!v)
                break;
            p->paths = v;
        }
        if (!(p->paths[p->n] = strdup(real)))
            break;
        p->n++;
    }
    fclose(f);
}

static int pkgfiles_has(const pkgfiles *p, const char *real)
{
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->paths[i], real))
            return 1;
    return 0;
}

static void pkgfiles_free(pkgfiles *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->paths[i]);
    free(p->paths);
}

/* ---- sorted walk of the fonts directory ---- */
typedef struct strlist {
    char **v;
    int n, cap;
} strlist;

static int strlist_add(strlist *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    return (l->v[l->n] = strdup(s)) ? (l->n++, 0) : -1;
}

static void strlist_free(strlist *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int walk(const char *dir, strlist *out, int depth)
{
    if (depth > 16)
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    strlist here = {0};
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            strlist_add(&here, e->d_name);
    closedir(d);
    qsort(here.v, (size_t)here.n, sizeof *here.v, cmp_str);
    char path[SG_PATH];
    for (int i = 0; i < here.n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, here.v[i]);
        struct stat st;
        if (stat(path, &st))
            continue;
        if (S_ISDIR(st.st_mode))
            walk(path, out, depth + 1);
        else if (S_ISREG(st.st_mode) && is_font_name(here.v[i]))
            strlist_add(out, path);
    }
    strlist_free(&here);
    return 0;
}

int sg_face_covers(FT_Face face, uint32_t cp)
{
    FT_UInt gi = FT_Get_Char_Index(face, cp);
    if (!gi || FT_Load_Glyph(face, gi, FT_LOAD_NO_SCALE | FT_LOAD_NO_HINTING | FT_LOAD_NO_BITMAP))
        return 0;
    return face->glyph->format == FT_GLYPH_FORMAT_OUTLINE && face->glyph->outline.n_points > 0;
}

static int illegible_style(const char *style)
{
    return strstr(style, "Thin") || strstr(style, "Hairline");
}

static int add_excluded(sg_fonts *f, const char *path, long index, const char *family, const char *style,
                        const char *reason)
{
    sg_excluded *x = realloc(f->x, (size_t)(f->nx + 1) * sizeof *x);
    if (!x)
        return -1;
    f->x = x;
    sg_excluded *e = &x[f->nx++];
    memset(e, 0, sizeof *e);
    snprintf(e->path, sizeof e->path, "%s", path);
    e->index = index;
    snprintf(e->family, sizeof e->family, "%s", family);
    snprintf(e->style, sizeof e->style, "%s", style);
    snprintf(e->reason, sizeof e->reason, "%s", reason);
    return 0;
}

int sg_fonts_find(const char *fonts_dir, int kind, int quick, const sg_classes *classes, int allow_missing,
                  sg_fonts *out, sg_err *err)
{
    memset(out, 0, sizeof *out);
    const family_rule *fam = kind == SG_FONTS_CJK ? cjk_families : western_families;
    const int n_fam = kind == SG_FONTS_CJK ? (int)(sizeof cjk_families / sizeof *fam)
                                           : (int)(sizeof western_families / sizeof *fam);
    const group_rule *grp = kind == SG_FONTS_CJK ? cjk_groups : western_groups;
    const int n_grp = kind == SG_FONTS_CJK ? (int)(sizeof cjk_groups / sizeof *grp)
                                           : (int)(sizeof western_groups / sizeof *grp);
    const char *const *allowed = sg_font_packages(kind, quick);
    int n_pkg = 0;
    while (allowed[n_pkg])
        n_pkg++;
    pkgfiles *pk = calloc((size_t)n_pkg, sizeof *pk);
    int *family_seen = calloc((size_t)n_fam, sizeof *family_seen);
    strlist files = {0};
    FT_Library lib = NULL;
    int rc = -1;
    if (!pk || !family_seen) {
        sg_errf(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < n_pkg; i++)
        pkgfiles_load(&pk[i], allowed[i]);
    if (FT_Init_FreeType(&lib)) {
        sg_errf(err, "FreeType does not initialize");
        goto done;
    }
    walk(fonts_dir, &files, 0);
    for (int i = 0; i < files.n; i++) {
        char real[PATH_MAX];
        if (!realpath(files.v[i], real))
            continue;
        FT_Face face;
        if (FT_New_Face(lib, files.v[i], -1, &face))
            continue;
        const long n_faces = face->num_faces;
        FT_Done_Face(face);
        for (long fi = 0; fi < n_faces; fi++) {
            if (FT_New_Face(lib, files.v[i], fi, &face))
                continue;
            const char *family = face->family_name ? face->family_name : "";
            const char *style = face->style_name ? face->style_name : "";
            int r = -1;
            for (int k = 0; k < n_fam && r < 0; k++) {
                if (strcmp(fam[k].family, family))
                    continue;
                for (int p = 0; p < n_pkg; p++)
                    if (!strcmp(pk[p].pkg, fam[k].package) && pkgfiles_has(&pk[p], real))
                        r = k;
            }
            if (r < 0) {
                FT_Done_Face(face);
                continue; /* not a listed family, or not from its own package */
            }
            family_seen[r] = 1;
            const char *why = NULL;
            char reason[128];
            if (illegible_style(style))
                why = "Thin and Hairline weights are not legible at 32x32";
            for (int k = 0; !why && k < out->n; k++)
                if (!strcmp(out->v[k].family, family) && !strcmp(out->v[k].style, style)) {
                    snprintf(reason, sizeof reason, "the same family and style as %.90s", out->v[k].path);
                    why = reason;
                }
            for (int c = 0; !why && classes && c < classes->n; c++)
                if (!sg_face_covers(face, classes->v[c].cp)) {
                    snprintf(reason, sizeof reason, "no outline for U+%04X (%s)", (unsigned)classes->v[c].cp,
                             classes->v[c].name);
                    why = reason;
                }
            if (why) {
                if (add_excluded(out, files.v[i], fi, family, style, why)) {
                    FT_Done_Face(face);
                    sg_errf(err, "out of memory");
                    goto done;
                }
                FT_Done_Face(face);
                continue;
            }
            sg_face *v = realloc(out->v, (size_t)(out->n + 1) * sizeof *v);
            if (!v) {
                FT_Done_Face(face);
                sg_errf(err, "out of memory");
                goto done;
            }
            out->v = v;
            sg_face *s = &v[out->n++];
            memset(s, 0, sizeof *s);
            snprintf(s->path, sizeof s->path, "%s", files.v[i]);
            s->index = fi;
            snprintf(s->family, sizeof s->family, "%s", family);
            snprintf(s->style, sizeof s->style, "%s", style);
            s->group = fam[r].group;
            s->package = fam[r].package;
            s->split = -1;
            for (int g = 0; g < n_grp; g++)
                if (!strcmp(grp[g].group, s->group))
                    s->split = grp[g].split;
            FT_Done_Face(face);
            if (s->split < 0) {
                sg_errf(err, "internal: font group %s has no split", s->group);
                goto done;
            }
        }
    }
    for (int k = 0; k < n_fam; k++) {
        if (family_seen[k] || !in_list(allowed, fam[k].package))
            continue;
        if (allow_missing)
            continue;
        sg_errf(err, "font family \"%s\" (Debian package %s) is not under %s: install it (tools/install-deps.sh --study) "
                     "or pass --allow-missing-fonts (the data then differs from a complete machine's)",
                fam[k].family, fam[k].package, fonts_dir);
        goto done;
    }
    int have[SG_SPLITS] = {0};
    for (int i = 0; i < out->n; i++)
        have[out->v[i].split]++;
    if (!have[SG_TRAIN] || !have[SG_VAL]) {
        sg_errf(err, "no usable %s fonts for the %s split under %s (Debian: %s ...)",
                kind == SG_FONTS_CJK ? "CJK" : "Latin", have[SG_TRAIN] ? "val" : "train", fonts_dir, allowed[0]);
        goto done;
    }
    rc = 0;
done:
    if (lib)
        FT_Done_FreeType(lib);
    strlist_free(&files);
    if (pk)
        for (int i = 0; i < n_pkg; i++)
            pkgfiles_free(&pk[i]);
    free(pk);
    free(family_seen);
    if (rc)
        sg_fonts_free(out);
    return rc;
}

void sg_fonts_free(sg_fonts *f)
{
    free(f->v);
    free(f->x);
    memset(f, 0, sizeof *f);
}
