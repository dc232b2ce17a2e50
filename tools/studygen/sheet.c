/* A contact sheet of an image-folder dataset, to look at the data: rows are
 * classes (evenly spaced over the sorted class folders), columns the first
 * images of each, every pixel drawn 2x2, a gap of 2 pixels between cells.
 * The class of each row is printed. */
#include "studygen.h"

#include <dirent.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int sorted_entries(const char *dir, char ***out, int *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int cap = 0;
    *out = NULL;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **v = realloc(*out, (size_t)cap * sizeof *v);
            if (!v)
                break;
            *out = v;
        }
        (*out)[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(*out, (size_t)*n, sizeof **out, cmp_str);
    return 0;
}

static void free_entries(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int sg_contact_sheet(const char *root, const char *split, int n_classes, int n_samples, const char *png, sg_err *err)
{
    char dir[SG_PATH + 64], path[SG_PATH + 512];
    snprintf(dir, sizeof dir, "%s/%s", root, split);
    char **classes;
    int nc;
    if (sorted_entries(dir, &classes, &nc) || nc == 0)
        return sg_errf(err, "%s: no class folders (an image-folder dataset's split?)", dir);
    if (n_classes > nc)
        n_classes = nc;
    const int cell = 2 * SG_GLYPH_SIZE + 2, W = n_samples * cell + 2, H = n_classes * cell + 2;
    uint8_t *sheet = calloc((size_t)W * (size_t)H, 1);
    if (!sheet) {
        free_entries(classes, nc);
        return sg_errf(err, "out of memory");
    }
    memset(sheet, 96, (size_t)W * (size_t)H);
    int rc = 0;
    for (int r = 0; r < n_classes && !rc; r++) {
        const char *cname = classes[(int64_t)r * nc / n_classes];
        char cdir[SG_PATH + 320];
        snprintf(cdir, sizeof cdir, "%s/%s", dir, cname);
        char **files;
        int nf;
        if (sorted_entries(cdir, &files, &nf)) {
            rc = sg_errf(err, "%s: cannot list", cdir);
            break;
        }
        printf("row %2d: %s\n", r + 1, cname);
        for (int k = 0; k < n_samples && k < nf; k++) {
            snprintf(path, sizeof path, "%s/%s", cdir, files[k]);
            png_image im;
            memset(&im, 0, sizeof im);
            im.version = PNG_IMAGE_VERSION;
            if (!png_image_begin_read_from_file(&im, path)) {
                rc = sg_errf(err, "%s: %s", path, im.message);
                break;
            }
            im.format = PNG_FORMAT_GRAY;
            uint8_t *px = malloc(PNG_IMAGE_SIZE(im));
            if (!px || !png_image_finish_read(&im, NULL, px, 0, NULL)) {
                free(px);
                png_image_free(&im);
                rc = sg_errf(err, "%s: cannot decode", path);
                break;
            }
            const int w = (int)im.width, h = (int)im.height, ox = (SG_GLYPH_SIZE - w) / 2, oy = (SG_GLYPH_SIZE - h) / 2;
            for (int y = 0; y < 2 * SG_GLYPH_SIZE; y++)
                for (int x = 0; x < 2 * SG_GLYPH_SIZE; x++) {
                    const int sx = x / 2 - ox, sy = y / 2 - oy;
                    const uint8_t v = sx >= 0 && sy >= 0 && sx < w && sy < h ? px[sy * w + sx] : 0;
                    sheet[(size_t)(2 + r * cell + y) * (size_t)W + (size_t)(2 + k * cell + x)] = v;
                }
            free(px);
        }
        free_entries(files, nf);
    }
    free_entries(classes, nc);
    if (!rc)
        rc = sg_write_png_gray(png, sheet, W, H, err);
    free(sheet);
    if (!rc)
        printf("%s: %d classes x %d samples of %s\n", png, n_classes, n_samples, dir);
    return rc;
}
