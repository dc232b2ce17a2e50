/* PNG (libpng's simplified API) and JPEG (libjpeg-turbo) files to uint8
 * HWC with 1 or 3 channels. A corrupt or truncated file is an error naming
 * it; libjpeg's default handler would exit() the process, so ours jumps
 * back instead. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* jpeglib.h needs stdio.h first */
#include <jpeglib.h>
#include <png.h>

#include "clvit/data.h"
#include "clvit/input_file.h"

#define IMAGE_MAX_SIDE 16384
/* Checked on the header, before any pixel is decoded or allocated: a few
 * hundred bytes can claim 16000 x 16000 pixels, and a progressive JPEG
 * decoder would then hold 1.5 GB of coefficients. 8192 x 8192 is more than
 * any classifier here needs. */
#define IMAGE_MAX_PIXELS ((uint64_t)1 << 26)
/* libjpeg-turbo's own allocations beyond this fail (it has no backing store),
 * as an error naming the file, instead of growing without bound */
#define JPEG_MAX_MEMORY ((long)768 << 20)

static int too_large(uint64_t w, uint64_t h) { return w * h > IMAGE_MAX_PIXELS; }

static int read_png(const char *path, uint8_t **pixels, int *h, int *w, int *c, clv_err *err)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path))
        return clv_errf(err, "%s: not a readable PNG: %s", path, img.message);
    if (img.width < 1 || img.height < 1 || img.width > IMAGE_MAX_SIDE || img.height > IMAGE_MAX_SIDE) {
        png_image_free(&img);
        return clv_errf(err, "%s: PNG of %ux%u pixels is outside 1..%d", path, img.width, img.height, IMAGE_MAX_SIDE);
    }
    if (too_large(img.width, img.height)) {
        png_image_free(&img);
        return clv_errf(err, "%s: PNG of %ux%u pixels is larger than the %llu pixels clvit decodes", path, img.width,
                        img.height, (unsigned long long)IMAGE_MAX_PIXELS);
    }
    /* gray stays gray, everything else becomes RGB; alpha is composited on black.
     * 16-bit files are read as they are (libpng's 8-bit output would
     * gamma-encode them as if linear) and reduced to their high byte. */
    int color = (img.format & PNG_FORMAT_FLAG_COLOR) != 0, wide = (img.format & PNG_FORMAT_FLAG_LINEAR) != 0;
    img.format = wide ? (color ? PNG_FORMAT_LINEAR_RGB : PNG_FORMAT_LINEAR_Y) : (color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY);
    size_t size = PNG_IMAGE_SIZE(img);
    uint8_t *buf = clv_alloc(size);
    if (!buf) {
        png_image_free(&img);
        return clv_errf(err, "%s: out of memory", path);
    }
    png_color black = {0, 0, 0};
    if (!png_image_finish_read(&img, wide ? NULL : &black, buf, 0, NULL)) {
        clv_free(buf);
        return clv_errf(err, "%s: corrupt PNG: %s", path, img.message);
    }
    if (wide) {
        const uint16_t *src = (const uint16_t *)buf;
        size_t n = size / 2;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)(src[i] >> 8);
    }
    *pixels = buf;
    *h = (int)img.height;
    *w = (int)img.width;
    *c = color ? 3 : 1;
    return 0;
}

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_failure;

static void jpeg_fail(j_common_ptr cinfo)
{
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, f->msg);
    longjmp(f->jump, 1);
}

static void jpeg_quiet(j_common_ptr cinfo, int level) { (void)cinfo, (void)level; }

static int read_jpeg(const char *path, uint8_t **pixels, int *h, int *w, int *c, clv_err *err)
{
    FILE *fp = clv_input_fopen(path, err);
    if (!fp)
        return -1;
    struct jpeg_decompress_struct cinfo;
    jpeg_failure fail;
    /* volatile: modified between setjmp and longjmp */
    uint8_t *volatile buf = NULL;
    cinfo.err = jpeg_std_error(&fail.mgr);
    fail.mgr.error_exit = jpeg_fail;
    fail.mgr.emit_message = jpeg_quiet;
    fail.msg[0] = 0;
    if (setjmp(fail.jump)) {
        jpeg_destroy_decompress(&cinfo);
        fclose(fp);
        clv_free(buf);
        return clv_errf(err, "%s: corrupt JPEG: %s", path, fail.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, fp);
    cinfo.mem->max_memory_to_use = JPEG_MAX_MEMORY;
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.image_width < 1 || cinfo.image_height < 1 || cinfo.image_width > IMAGE_MAX_SIDE ||
        cinfo.image_height > IMAGE_MAX_SIDE || too_large(cinfo.image_width, cinfo.image_height)) {
        snprintf(fail.msg, sizeof fail.msg, "%ux%u pixels is outside 1..%d a side or above %llu pixels",
                 cinfo.image_width, cinfo.image_height, IMAGE_MAX_SIDE, (unsigned long long)IMAGE_MAX_PIXELS);
        longjmp(fail.jump, 1);
    }
    int gray = cinfo.jpeg_color_space == JCS_GRAYSCALE;
    cinfo.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_width < 1 || cinfo.output_height < 1 || cinfo.output_width > IMAGE_MAX_SIDE ||
        cinfo.output_height > IMAGE_MAX_SIDE) {
        snprintf(fail.msg, sizeof fail.msg, "%ux%u pixels is outside 1..%d", cinfo.output_width, cinfo.output_height,
                 IMAGE_MAX_SIDE);
        longjmp(fail.jump, 1);
    }
    int ch = cinfo.output_components;
    size_t stride = (size_t)cinfo.output_width * ch;
    buf = clv_alloc(stride * cinfo.output_height);
    if (!buf) {
        snprintf(fail.msg, sizeof fail.msg, "out of memory");
        longjmp(fail.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = buf + (size_t)cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    /* libjpeg pads a truncated file with gray and only warns: refuse it */
    if (fail.mgr.num_warnings) {
        (*fail.mgr.format_message)((j_common_ptr)&cinfo, fail.msg);
        longjmp(fail.jump, 1);
    }
    jpeg_finish_decompress(&cinfo);
    *h = (int)cinfo.output_height;
    *w = (int)cinfo.output_width;
    *c = ch;
    jpeg_destroy_decompress(&cinfo);
    fclose(fp);
    *pixels = buf;
    return 0;
}

int clv_image_read(const char *path, uint8_t **pixels, int *h, int *w, int *c, clv_err *err)
{
    *pixels = NULL;
    FILE *fp = clv_input_fopen(path, err);
    if (!fp)
        return -1;
    uint8_t magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, fp);
    fclose(fp);
    if (got >= 8 && !memcmp(magic, "\x89PNG\r\n\x1a\n", 8))
        return read_png(path, pixels, h, w, c, err);
    if (got >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF)
        return read_jpeg(path, pixels, h, w, c, err);
    return clv_errf(err, "%s: not a PNG or JPEG file", path);
}
