/* Files out: directories, 8-bit gray PNGs written the same way every time
 * (fixed zlib level and filters, no time or text chunks), plain files, and
 * the removal of a stale dataset tree. */
#define _XOPEN_SOURCE 700
#include "studygen.h"

#include <errno.h>
#include <ftw.h>
#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const sg_split_name[SG_SPLITS] = {"train", "val"};

int sg_errf(sg_err *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int sg_mkdirs(const char *path, sg_err *err)
{
    char p[SG_PATH];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0755) && errno != EEXIST)
                return sg_errf(err, "%s: cannot create the directory (%s)", p, strerror(errno));
            *s = '/';
        }
    if (mkdir(p, 0755) && errno != EEXIST)
        return sg_errf(err, "%s: cannot create the directory (%s)", p, strerror(errno));
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int sg_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st))
        return 0;
    return nftw(path, remove_one, 32, FTW_DEPTH | FTW_PHYS);
}

int sg_write_file(const char *path, const void *data, size_t n, sg_err *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return sg_errf(err, "%s: cannot create (%s)", path, strerror(errno));
    size_t put = fwrite(data, 1, n, f);
    if (fclose(f) || put != n)
        return sg_errf(err, "%s: write failed (disk full?)", path);
    return 0;
}

typedef struct membuf {
    unsigned char *p;
    size_t n, cap;
    int failed;
} membuf;

static void mem_write(png_structp png, png_bytep data, png_size_t len)
{
    membuf *m = png_get_io_ptr(png);
    if (m->n + len > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 4096;
        while (cap < m->n + len)
            cap *= 2;
        unsigned char *p = realloc(m->p, cap);
        if (!p) {
            m->failed = 1;
            return;
        }
        m->p = p;
        m->cap = cap;
    }
    memcpy(m->p + m->n, data, len);
    m->n += len;
}

static void mem_flush(png_structp png) { (void)png; }

int sg_write_png_gray(const char *path, const uint8_t *px, int w, int h, sg_err *err)
{
    membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return sg_errf(err, "libpng: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(m.p);
        return sg_errf(err, "%s: libpng failed to encode the image", path);
    }
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_compression_level(png, 9);
    png_set_filter(png, 0, PNG_ALL_FILTERS);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(px + (size_t)y * (size_t)w));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    int rc = m.failed ? sg_errf(err, "%s: out of memory encoding the image", path) : sg_write_file(path, m.p, m.n, err);
    free(m.p);
    return rc;
}
