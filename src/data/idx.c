/* IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed (zlib reads
 * both). Images: magic 0x00000803, count, rows, cols, bytes. Labels: magic
 * 0x00000801, count, bytes. */
#include <errno.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/dataset_memory.h"
#include "clvit/input_file.h"

#define IDX_MAX_ITEMS (1 << 26)
#define IDX_MAX_SIDE 4096

static int read_exact(gzFile f, void *buf, size_t len, const char *path, const char *what, clv_err *err)
{
    uint8_t *p = buf;
    while (len) {
        unsigned chunk = len > (1u << 30) ? (1u << 30) : (unsigned)len;
        int got = gzread(f, p, chunk);
        if (got < 0) {
            int code;
            const char *msg = gzerror(f, &code);
            return clv_errf(err, "%s: corrupt gzip data while reading %s: %s", path, what, msg);
        }
        if (got == 0)
            return clv_errf(err, "%s: truncated (file ends inside %s)", path, what);
        p += got;
        len -= (size_t)got;
    }
    return 0;
}

static uint32_t be32(const uint8_t *b) { return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]; }

/* Reads a whole IDX file of the given magic; dims[0] = count. */
static int read_idx(const char *path, uint32_t magic, int ndims_expected, uint32_t *dims, uint8_t **data,
                    clv_err *err)
{
    int fd = clv_input_open(path, err);
    if (fd < 0)
        return -1;
    gzFile f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return clv_errf(err, "%s: cannot open: out of memory", path);
    }
    int rc = -1;
    uint8_t head[4 + 4 * 3];
    *data = NULL;
    if (read_exact(f, head, 4, path, "the header", err))
        goto done;
    if (be32(head) != magic) {
        clv_errf(err, "%s: not an IDX %s file (magic 0x%08x, expected 0x%08x)", path,
                 ndims_expected == 3 ? "image" : "label", be32(head), magic);
        goto done;
    }
    if (read_exact(f, head + 4, 4 * (size_t)ndims_expected, path, "the header", err))
        goto done;
    size_t total = 1;
    for (int d = 0; d < ndims_expected; d++) {
        dims[d] = be32(head + 4 + 4 * d);
        uint32_t limit = d == 0 ? IDX_MAX_ITEMS : IDX_MAX_SIDE;
        if (dims[d] == 0 || dims[d] > limit) {
            clv_errf(err, "%s: dimension %d is %u (expected 1..%u)", path, d, dims[d], limit);
            goto done;
        }
        total *= dims[d];
    }
    /* The header's claim is not trusted with memory: the buffer grows as data
     * arrives (at most twice what the file holds), so a 16-byte file that
     * claims 10 GB fails as truncated instead of asking malloc for 10 GB. */
    size_t cap = total < ((size_t)1 << 20) ? total : ((size_t)1 << 20), have = 0;
    if (!(*data = malloc(cap))) {
        clv_errf(err, "%s: out of memory for %zu bytes", path, cap);
        goto done;
    }
    while (have < total) {
        if (have == cap) {
            size_t next = cap * 2 < total ? cap * 2 : total;
            uint8_t *grown = realloc(*data, next);
            if (!grown) {
                clv_errf(err, "%s: out of memory for %zu bytes", path, next);
                goto done;
            }
            *data = grown;
            cap = next;
        }
        if (read_exact(f, *data + have, cap - have, path, "the data", err))
            goto done;
        have = cap;
    }
    uint8_t extra;
    if (gzread(f, &extra, 1) != 0) {
        clv_errf(err, "%s: trailing bytes after %zu bytes of data", path, total);
        goto done;
    }
    rc = 0;
done:
    if (rc) {
        free(*data);
        *data = NULL;
    }
    gzclose(f);
    return rc;
}

int clv_idx_open(const char *images_path, const char *labels_path, const char *name, clv_dataset **out, clv_err *err)
{
    *out = NULL;
    uint32_t idims[3] = {0}, ldims[1] = {0};
    uint8_t *pixels = NULL, *lbytes = NULL;
    if (read_idx(images_path, 0x00000803u, 3, idims, &pixels, err))
        return -1;
    if (read_idx(labels_path, 0x00000801u, 1, ldims, &lbytes, err)) {
        free(pixels);
        return -1;
    }
    if (idims[0] != ldims[0]) {
        free(pixels);
        free(lbytes);
        return clv_errf(err, "%s: %u labels for %u images in %s", labels_path, ldims[0], idims[0], images_path);
    }
    int32_t *labels = malloc((size_t)ldims[0] * sizeof *labels);
    if (!labels) {
        free(pixels);
        free(lbytes);
        return clv_errf(err, "out of memory");
    }
    for (uint32_t i = 0; i < ldims[0]; i++) {
        if (lbytes[i] > 99) {
            clv_errf(err, "%s: label %u of item %u is out of range", labels_path, lbytes[i], i);
            free(pixels);
            free(lbytes);
            free(labels);
            return -1;
        }
        labels[i] = lbytes[i];
    }
    free(lbytes);
    *out = clv_memory_dataset(name, images_path, idims[0], (int)idims[1], (int)idims[2], 1, pixels, labels, err);
    return *out ? 0 : -1;
}
