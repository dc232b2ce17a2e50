/* safetensors reader and writer (see clvit/safetensors.h).
 *
 * The reader maps the file and validates the whole header before anything
 * is used: every claim of the header (lengths, shapes, offsets) is checked
 * against the file's real size, so a lying header is an error, never a big
 * allocation or an out-of-range read. */
#include "clvit/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "clvit/atomic_file.h"
#include "clvit/input_file.h"

#define ST_MAX_HEADER (100u << 20) /* the reference implementation's limit */
#define ST_MAX_NAME 4096

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [CLV_DT_F32] = {"F32", 4}, [CLV_DT_F16] = {"F16", 2}, [CLV_DT_BF16] = {"BF16", 2}, [CLV_DT_F64] = {"F64", 8},
    [CLV_DT_U8] = {"U8", 1},   [CLV_DT_I8] = {"I8", 1},   [CLV_DT_I16] = {"I16", 2},   [CLV_DT_I32] = {"I32", 4},
    [CLV_DT_I64] = {"I64", 8}, [CLV_DT_BOOL] = {"BOOL", 1},
};
#define N_DTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

const char *clv_dtype_name(clv_dtype dt) { return (int)dt >= 0 && (int)dt < N_DTYPES ? dtypes[dt].name : "?"; }
size_t clv_dtype_size(clv_dtype dt) { return (int)dt >= 0 && (int)dt < N_DTYPES ? dtypes[dt].size : 0; }

static int dtype_parse(const char *s, clv_dtype *dt)
{
    for (int i = 0; i < N_DTYPES; i++)
        if (!strcmp(s, dtypes[i].name)) {
            *dt = (clv_dtype)i;
            return 0;
        }
    return -1;
}

/* ---- reader ---- */

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_u64(const cJSON *n, uint64_t *out)
{
    if (!cJSON_IsNumber(n))
        return -1;
    double v = n->valuedouble;
    if (!(v >= 0) || v > 9007199254740992.0 || floor(v) != v)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int by_offset(const void *a, const void *b)
{
    const clv_st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int by_name_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int parse_tensor(clv_safetensors *st, const cJSON *e, clv_st_tensor *t, clv_err *err)
{
    const char *path = st->path, *name = e->string;
    if (!cJSON_IsObject(e))
        return clv_errf(err, "%s: tensor '%s' is not an object", path, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs))
        return clv_errf(err, "%s: tensor '%s' lacks dtype, shape or data_offsets", path, name);
    if (dtype_parse(dt->valuestring, &t->dtype))
        return clv_errf(err, "%s: tensor '%s' has unknown dtype '%s'", path, name, dt->valuestring);
    int nd = cJSON_GetArraySize(shape);
    if (nd > CLV_ST_MAX_DIMS)
        return clv_errf(err, "%s: tensor '%s' has %d dimensions (at most %d)", path, name, nd, CLV_ST_MAX_DIMS);
    t->ndim = nd;
    uint64_t numel = 1;
    for (int d = 0; d < nd; d++) {
        uint64_t v;
        if (json_u64(cJSON_GetArrayItem(shape, d), &v))
            return clv_errf(err, "%s: tensor '%s': shape dimension %d is not a non-negative integer", path, name, d);
        if (v && numel > UINT64_MAX / v)
            return clv_errf(err, "%s: tensor '%s': shape overflows", path, name);
        numel *= v;
        t->shape[d] = (int64_t)v;
    }
    uint64_t b, en;
    if (cJSON_GetArraySize(offs) != 2 || json_u64(cJSON_GetArrayItem(offs, 0), &b) ||
        json_u64(cJSON_GetArrayItem(offs, 1), &en))
        return clv_errf(err, "%s: tensor '%s': data_offsets is not [begin, end]", path, name);
    if (b <= en && en > st->data_len)
        return clv_errf(err, "%s: truncated: tensor '%s' ends at byte %llu of the data, the file holds %llu", path,
                        name, (unsigned long long)en, (unsigned long long)st->data_len);
    if (b > en)
        return clv_errf(err, "%s: tensor '%s': data_offsets [%llu, %llu] outside the data (%llu bytes)", path, name,
                        (unsigned long long)b, (unsigned long long)en, (unsigned long long)st->data_len);
    size_t es = clv_dtype_size(t->dtype);
    if (numel > UINT64_MAX / es || numel * es != en - b)
        return clv_errf(err, "%s: tensor '%s': %llu bytes for %s x %llu elements", path, name,
                        (unsigned long long)(en - b), dt->valuestring, (unsigned long long)numel);
    t->numel = (int64_t)numel;
    t->begin = b;
    t->end = en;
    if (!(t->name = strdup(name)))
        return clv_errf(err, "out of memory");
    return 0;
}

static int parse_metadata(clv_safetensors *st, const cJSON *m, clv_err *err)
{
    if (!cJSON_IsObject(m))
        return clv_errf(err, "%s: __metadata__ is not an object", st->path);
    int n = cJSON_GetArraySize(m);
    st->meta_keys = calloc((size_t)n + 1, sizeof *st->meta_keys);
    st->meta_vals = calloc((size_t)n + 1, sizeof *st->meta_vals);
    if (!st->meta_keys || !st->meta_vals)
        return clv_errf(err, "out of memory");
    for (const cJSON *e = m->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return clv_errf(err, "%s: metadata '%s' is not a string", st->path, e->string);
        st->meta_keys[st->n_meta] = strdup(e->string);
        st->meta_vals[st->n_meta] = strdup(e->valuestring);
        if (!st->meta_keys[st->n_meta] || !st->meta_vals[st->n_meta])
            return clv_errf(err, "out of memory");
        st->n_meta++;
    }
    return 0;
}

static int parse_header(clv_safetensors *st, const char *json, size_t len, clv_err *err)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root)
        return clv_errf(err, "%s: the header is not valid JSON", st->path);
    /* the reference parser refuses anything but the spaces of padding after the object */
    for (; end < json + len; end++)
        if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
            cJSON_Delete(root);
            return clv_errf(err, "%s: the header has bytes after its JSON object", st->path);
        }
    int rc = -1;
    char **names = NULL;
    if (!cJSON_IsObject(root)) {
        clv_errf(err, "%s: the header is not a JSON object", st->path);
        goto done;
    }
    int n = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!e->string || !*e->string || strlen(e->string) > ST_MAX_NAME) {
            clv_errf(err, "%s: a tensor name is empty or longer than %d bytes", st->path, ST_MAX_NAME);
            goto done;
        }
        n += strcmp(e->string, "__metadata__") != 0;
    }
    st->tensors = calloc((size_t)n + 1, sizeof *st->tensors);
    names = calloc((size_t)n + 1, sizeof *names);
    if (!st->tensors || !names) {
        clv_errf(err, "out of memory");
        goto done;
    }
    int seen_meta = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if (seen_meta++) {
                clv_errf(err, "%s: __metadata__ appears twice", st->path);
                goto done;
            }
            if (parse_metadata(st, e, err))
                goto done;
            continue;
        }
        if (parse_tensor(st, e, &st->tensors[st->count], err))
            goto done;
        names[st->count] = st->tensors[st->count].name;
        st->count++;
    }
    qsort(names, (size_t)st->count, sizeof *names, by_name_ptr);
    for (int i = 1; i < st->count; i++)
        if (!strcmp(names[i - 1], names[i])) {
            clv_errf(err, "%s: tensor '%s' appears twice", st->path, names[i]);
            goto done;
        }
    /* the data buffer must be covered exactly: no overlap, no hole, nothing after */
    qsort(st->tensors, (size_t)st->count, sizeof *st->tensors, by_offset);
    uint64_t pos = 0;
    for (int i = 0; i < st->count; i++) {
        const clv_st_tensor *t = &st->tensors[i];
        if (t->begin != pos) {
            clv_errf(err, "%s: tensor '%s' starts at byte %llu of the data, expected %llu (%s)", st->path, t->name,
                     (unsigned long long)t->begin, (unsigned long long)pos, t->begin < pos ? "overlap" : "hole");
            goto done;
        }
        pos = t->end;
    }
    if (pos != st->data_len) {
        clv_errf(err, "%s: the tensors cover %llu bytes of data, the file has %llu", st->path,
                 (unsigned long long)pos, (unsigned long long)st->data_len);
        goto done;
    }
    rc = 0;
done:
    free(names);
    cJSON_Delete(root);
    return rc;
}

/* ---- checksum ----
 * CLV_ST_CRC_KEY in __metadata__: zlib's crc32 of the whole file, as 8
 * lowercase hex digits, computed with those 8 digits read as '0's (a
 * checksum cannot cover itself). It covers the header (names, shapes,
 * offsets, the other metadata) and the data. The writer puts it last in
 * the metadata, spelled "clvit.crc32":"xxxxxxxx" with no spaces, which is
 * how the reader finds the digits; files of other tools have no such key. */

static const char crc_zeros[8] = {'0', '0', '0', '0', '0', '0', '0', '0'};

/* crc32 of len bytes at p with the 8 bytes at digits read as '0's */
static uint32_t crc_with_zeroed(const uint8_t *p, size_t len, size_t digits)
{
    uLong c = crc32_z(0L, Z_NULL, 0);
    c = crc32_z(c, p, digits);
    c = crc32_z(c, (const Bytef *)crc_zeros, 8);
    return (uint32_t)crc32_z(c, p + digits + 8, len - digits - 8);
}

/* Offset of needle's first byte in hay (n bytes), or -1; *count gets how many times it occurs. */
static long find_all(const uint8_t *hay, size_t n, const char *needle, int *count)
{
    size_t k = strlen(needle);
    long first = -1;
    *count = 0;
    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (hay[i] == (uint8_t)needle[0] && !memcmp(hay + i, needle, k)) {
            if (first < 0)
                first = (long)i;
            (*count)++;
        }
    return first;
}

/* Checks the checksum before the header is parsed, so that a flipped byte
 * of the header is reported as damage too. Returns 0 when the file has no
 * checksum or it matches (*present says which), 1 when it does not match
 * (*stored and *now filled in), -1 with err set when the key is there but
 * malformed. */
static int check_raw_checksum(const clv_safetensors *st, uint64_t hlen, int *present, char stored[9], uint32_t *now,
                              clv_err *err)
{
    static const char key[] = "\"" CLV_ST_CRC_KEY "\":\"";
    int count;
    const uint8_t *h = (const uint8_t *)st->map + 8;
    long at = find_all(h, (size_t)hlen, key, &count);
    *present = count > 0;
    if (!count)
        return 0;
    size_t digits = (size_t)at + strlen(key); /* within the header */
    int ok = count == 1 && digits + 9 <= hlen && h[digits + 8] == '"';
    for (int i = 0; ok && i < 8; i++)
        ok = (h[digits + i] >= '0' && h[digits + i] <= '9') || (h[digits + i] >= 'a' && h[digits + i] <= 'f');
    if (!ok)
        return clv_errf(err, "%s: corrupted: its %s metadata is not one string of 8 hex digits", st->path,
                        CLV_ST_CRC_KEY);
    memcpy(stored, h + digits, 8);
    stored[8] = 0;
    *now = crc_with_zeroed(st->map, st->map_len, 8 + digits);
    return strtoul(stored, NULL, 16) != *now;
}

int clv_st_open(clv_safetensors *st, const char *path, clv_err *err)
{
    int damaged = 0;
    memset(st, 0, sizeof *st);
    if (!(st->path = strdup(path)))
        return clv_errf(err, "out of memory");
    int fd = clv_input_open(path, err);
    if (fd < 0)
        goto fail;
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        close(fd);
        clv_errf(err, "%s: not a regular file", path);
        goto fail;
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        clv_errf(err, "%s: truncated (%zu bytes; a safetensors file starts with an 8-byte header length)", path,
                 size);
        damaged = 1;
        goto fail;
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        clv_errf(err, "%s: cannot map: %s", path, strerror(errno));
        goto fail;
    }
    st->map = map;
    st->map_len = size;
    damaged = 1; /* the file is there: from here on, what fails is its content */
    const uint8_t *p = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | p[i];
    if (hlen > size - 8) {
        clv_errf(err, "%s: truncated: header length %llu exceeds the file (%zu bytes)", path,
                 (unsigned long long)hlen, size);
        goto fail;
    }
    if (hlen > ST_MAX_HEADER) {
        clv_errf(err, "%s: header length %llu is beyond the format's limit of %u bytes", path,
                 (unsigned long long)hlen, ST_MAX_HEADER);
        goto fail;
    }
    st->data = p + 8 + hlen;
    st->data_len = size - 8 - hlen;
    int has_crc;
    char stored[9];
    uint32_t now = 0;
    int crc = check_raw_checksum(st, hlen, &has_crc, stored, &now, err);
    if (crc < 0)
        goto fail;
    if (parse_header(st, (const char *)p + 8, (size_t)hlen, err)) {
        if (crc && err) {
            size_t used = strlen(err->msg);
            snprintf(err->msg + used, sizeof err->msg - used, " (corrupted: its checksum does not match)");
        }
        goto fail;
    }
    if (crc) {
        clv_errf(err, "%s: corrupted: its bytes do not match the checksum it was written with (%s %s, now %08x)",
                 path, CLV_ST_CRC_KEY, stored, (unsigned)now);
        goto fail;
    }
    if (!has_crc && clv_st_meta(st, CLV_ST_CRC_KEY)) {
        clv_errf(err, "%s: corrupted: its header does not spell %s as clvit writes it", path, CLV_ST_CRC_KEY);
        goto fail;
    }
    return 0;
fail:
    clv_st_close(st);
    return damaged ? CLV_ST_DAMAGED : -1;
}

void clv_st_close(clv_safetensors *st)
{
    for (int i = 0; st->tensors && i < st->count; i++)
        free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_vals[i]);
    }
    free(st->meta_keys);
    free(st->meta_vals);
    if (st->map)
        munmap(st->map, st->map_len);
    free(st->path);
    memset(st, 0, sizeof *st);
}

const clv_st_tensor *clv_st_find(const clv_safetensors *st, const char *name)
{
    for (int i = 0; i < st->count; i++)
        if (!strcmp(st->tensors[i].name, name))
            return &st->tensors[i];
    return NULL;
}

const char *clv_st_meta(const clv_safetensors *st, const char *key)
{
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_keys[i], key))
            return st->meta_vals[i];
    return NULL;
}

const void *clv_st_tensor_data(const clv_safetensors *st, const clv_st_tensor *t) { return st->data + t->begin; }

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f)
        bits = sign | 0x7f800000u | (man << 13); /* inf, nan */
    else if (exp)
        bits = sign | ((exp + 112) << 23) | (man << 13);
    else if (!man)
        bits = sign;
    else { /* subnormal: normalize */
        exp = 113;
        while (!(man & 0x400)) {
            man <<= 1;
            exp--;
        }
        bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int clv_st_read_f32(const clv_safetensors *st, const clv_st_tensor *t, float *dst, int64_t numel, clv_err *err)
{
    if (numel != t->numel)
        return clv_errf(err, "%s: tensor '%s' has %lld elements, %lld expected", st->path, t->name,
                        (long long)t->numel, (long long)numel);
    const uint8_t *src = st->data + t->begin;
    switch (t->dtype) {
    case CLV_DT_F32:
        memcpy(dst, src, (size_t)numel * 4);
        return 0;
    case CLV_DT_F16:
        for (int64_t i = 0; i < numel; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = half_to_float(h);
        }
        return 0;
    case CLV_DT_BF16:
        for (int64_t i = 0; i < numel; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return 0;
    case CLV_DT_F64:
        for (int64_t i = 0; i < numel; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
        }
        return 0;
    default:
        return clv_errf(err, "%s: tensor '%s' is %s, a float tensor (F32, F16, BF16, F64) is expected", st->path,
                        t->name, clv_dtype_name(t->dtype));
    }
}

/* ---- writer ---- */

typedef struct {
    char *name;
    clv_dtype dtype;
    int ndim;
    int64_t shape[CLV_ST_MAX_DIMS];
    const void *data;
    size_t bytes;
} w_entry;

struct clv_st_writer {
    w_entry *e;
    int n;
    size_t cap;
    char **keys, **vals;
    int n_meta;
    size_t cap_keys, cap_vals;
};

clv_st_writer *clv_st_writer_new(void) { return calloc(1, sizeof(clv_st_writer)); }

void clv_st_writer_free(clv_st_writer *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++)
        free(w->e[i].name);
    for (int i = 0; i < w->n_meta; i++) {
        free(w->keys[i]);
        free(w->vals[i]);
    }
    free(w->e);
    free(w->keys);
    free(w->vals);
    free(w);
}

int clv_st_writer_add(clv_st_writer *w, const char *name, clv_dtype dtype, int ndim, const int64_t *shape,
                      const void *data, clv_err *err)
{
    if (!name || !*name || !strcmp(name, "__metadata__") || strlen(name) > ST_MAX_NAME)
        return clv_errf(err, "invalid tensor name '%s'", name ? name : "");
    if (ndim < 0 || ndim > CLV_ST_MAX_DIMS || !clv_dtype_size(dtype))
        return clv_errf(err, "tensor '%s': invalid dtype or %d dimensions", name, ndim);
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->e[i].name, name))
            return clv_errf(err, "tensor '%s' added twice", name);
    size_t bytes = clv_dtype_size(dtype);
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0 || clv_mul_overflow(bytes, (size_t)shape[d], &bytes))
            return clv_errf(err, "tensor '%s': invalid shape", name);
    if (clv_grow(&w->e, &w->cap, (size_t)w->n + 1))
        return clv_errf(err, "out of memory");
    w_entry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name)))
        return clv_errf(err, "out of memory");
    e->dtype = dtype;
    e->ndim = ndim;
    if (ndim) /* a scalar may come with shape NULL, which memcpy must not get */
        memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
    e->data = data;
    e->bytes = bytes;
    w->n++;
    return 0;
}

int clv_st_writer_add_param(clv_st_writer *w, const clv_param *p, const char *prefix, clv_err *err)
{
    char name[ST_MAX_NAME + 1];
    snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", p->name);
    return clv_st_writer_add(w, name, CLV_DT_F32, p->ndim, p->shape, p->data, err);
}

int clv_st_writer_meta(clv_st_writer *w, const char *key, const char *value, clv_err *err)
{
    if (!strcmp(key, CLV_ST_CRC_KEY))
        return clv_errf(err, "metadata key %s is the writer's own", CLV_ST_CRC_KEY);
    for (int i = 0; i < w->n_meta; i++)
        if (!strcmp(w->keys[i], key)) {
            char *v = strdup(value);
            if (!v)
                return clv_errf(err, "out of memory");
            free(w->vals[i]);
            w->vals[i] = v;
            return 0;
        }
    if (clv_grow(&w->keys, &w->cap_keys, (size_t)w->n_meta + 1) ||
        clv_grow(&w->vals, &w->cap_vals, (size_t)w->n_meta + 1))
        return clv_errf(err, "out of memory");
    w->keys[w->n_meta] = strdup(key);
    w->vals[w->n_meta] = strdup(value);
    if (!w->keys[w->n_meta] || !w->vals[w->n_meta])
        return clv_errf(err, "out of memory");
    w->n_meta++;
    return 0;
}

static int entry_by_name(const void *a, const void *b)
{
    return strcmp(((const w_entry *)a)->name, ((const w_entry *)b)->name);
}

int clv_st_writer_write(clv_st_writer *w, const char *path, clv_err *err)
{
    qsort(w->e, (size_t)w->n, sizeof *w->e, entry_by_name);
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return clv_errf(err, "out of memory");
    cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
    for (int i = 0; m && i < w->n_meta; i++)
        cJSON_AddStringToObject(m, w->keys[i], w->vals[i]);
    if (m) /* last, as zeros: the digits are filled in once the file's crc is known */
        cJSON_AddStringToObject(m, CLV_ST_CRC_KEY, "00000000");
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        cJSON *t = cJSON_AddObjectToObject(root, w->e[i].name);
        if (!t)
            break;
        cJSON_AddStringToObject(t, "dtype", clv_dtype_name(w->e[i].dtype));
        cJSON *shape = cJSON_AddArrayToObject(t, "shape");
        for (int d = 0; d < w->e[i].ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)w->e[i].shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        off += w->e[i].bytes;
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json)
        return clv_errf(err, "out of memory");
    size_t hlen = strlen(json), padded = (hlen + 7) / 8 * 8; /* data starts 8-byte aligned */
    /* the metadata object comes first and keys and values are escaped, so
     * the first match is the key added above */
    char *digits = strstr(json, "\"" CLV_ST_CRC_KEY "\":\"00000000\"");
    if (!digits) {
        free(json);
        return clv_errf(err, "%s: cannot place the checksum in the header", path);
    }
    digits += strlen("\"" CLV_ST_CRC_KEY "\":\"");
    uint8_t lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    uLong crc = crc32_z(0L, Z_NULL, 0);
    crc = crc32_z(crc, lenbuf, 8);
    crc = crc32_z(crc, (const Bytef *)json, hlen);
    for (size_t i = hlen; i < padded; i++)
        crc = crc32_z(crc, (const Bytef *)" ", 1);
    for (int i = 0; i < w->n; i++)
        if (w->e[i].bytes)
            crc = crc32_z(crc, w->e[i].data, w->e[i].bytes);
    char hex[9];
    snprintf(hex, sizeof hex, "%08lx", (unsigned long)(crc & 0xffffffffu));
    memcpy(digits, hex, 8);
    clv_atomic_file f;
    if (clv_atomic_open(&f, path, err)) {
        free(json);
        return -1;
    }
    int bad = fwrite(lenbuf, 1, 8, f.fp) != 8 || fwrite(json, 1, hlen, f.fp) != hlen;
    for (size_t i = hlen; i < padded && !bad; i++)
        bad = fputc(' ', f.fp) == EOF;
    for (int i = 0; i < w->n && !bad; i++)
        bad = w->e[i].bytes && fwrite(w->e[i].data, 1, w->e[i].bytes, f.fp) != w->e[i].bytes;
    free(json);
    if (bad) {
        int saved = errno;
        clv_atomic_abort(&f);
        return clv_errf(err, "%s: write failed: %s", path, strerror(saved));
    }
    return clv_atomic_commit(&f, err);
}

/* ---- parameters ---- */

#define MAX_LISTED 4

static void note(char *buf, size_t len, int *n, const char *fmt, const char *a, const char *b, const char *c)
{
    if (*n < MAX_LISTED) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s", used ? "; " : "");
        used = strlen(buf);
        snprintf(buf + used, len - used, fmt, a, b, c);
    }
    (*n)++;
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < ndim && used < len; d++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
}

/* the file's name of a parameter: prefix + its own name */
static const char *prefixed(void *ctx, const char *param, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", ctx ? (const char *)ctx : "", param);
    return buf;
}

int clv_st_load_params(const clv_safetensors *st, clv_params *ps, const char *prefix, int strict, clv_err *err)
{
    return clv_st_load_params_mapped(st, ps, prefixed, (void *)prefix, prefix, strict, err);
}

int clv_st_load_params_mapped(const clv_safetensors *st, clv_params *ps, clv_st_name_map map, void *ctx,
                              const char *prefix, int strict, clv_err *err)
{
    char list[400] = "";
    int ndiff = 0;
    size_t plen = prefix ? strlen(prefix) : 0;
    char buf[ST_MAX_NAME + CLV_NAME_LEN];
    for (int i = 0; i < ps->count; i++) {
        const clv_param *p = ps->items[i];
        const char *name = map(ctx, p->name, buf, sizeof buf);
        const clv_st_tensor *t = clv_st_find(st, name);
        char fs[128], es[128];
        if (!t) {
            note(list, sizeof list, &ndiff, "missing %.160s%s%s", name, "", "");
            continue;
        }
        int same = t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++)
            same = t->shape[d] == p->shape[d];
        if (!same) {
            shape_str(fs, sizeof fs, t->ndim, t->shape);
            shape_str(es, sizeof es, p->ndim, p->shape);
            note(list, sizeof list, &ndiff, "%.160s shape %.60s in file, %.60s expected", name, fs, es);
        } else if (t->dtype != CLV_DT_F32 && t->dtype != CLV_DT_F16 && t->dtype != CLV_DT_BF16 &&
                   t->dtype != CLV_DT_F64)
            note(list, sizeof list, &ndiff, "%.160s is %s, not a float type%s", name, clv_dtype_name(t->dtype), "");
    }
    if (strict)
        for (int i = 0; i < st->count; i++) {
            const char *n = st->tensors[i].name;
            if (plen && strncmp(n, prefix, plen))
                continue;
            int known = 0; /* some parameter's file name is n */
            for (int k = 0; k < ps->count && !known; k++)
                known = !strcmp(map(ctx, ps->items[k]->name, buf, sizeof buf), n);
            if (!known)
                note(list, sizeof list, &ndiff, "unexpected %.160s%s%s", n, "", "");
        }
    if (ndiff)
        return clv_errf(err, "%s: %d difference%s: %s%s", st->path, ndiff, ndiff > 1 ? "s" : "", list,
                        ndiff > MAX_LISTED ? "; ..." : "");
    for (int i = 0; i < ps->count; i++) {
        clv_param *p = ps->items[i];
        if (clv_st_read_f32(st, clv_st_find(st, map(ctx, p->name, buf, sizeof buf)), p->data, p->numel, err))
            return -1;
    }
    return 0;
}

void clv_st_print(const clv_safetensors *st, FILE *out, int as_json) { clv_st_print_with(st, out, as_json, NULL, 0); }

void clv_st_print_with(const clv_safetensors *st, FILE *out, int as_json, const char *const *extra, int n_extra)
{
    /* tensors in name order, as people look them up */
    const clv_st_tensor **order = malloc((size_t)(st->count ? st->count : 1) * sizeof *order);
    if (!order)
        return;
    for (int i = 0; i < st->count; i++)
        order[i] = &st->tensors[i];
    for (int i = 1; i < st->count; i++)
        for (int j = i; j > 0 && strcmp(order[j - 1]->name, order[j]->name) > 0; j--) {
            const clv_st_tensor *t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    char shape[256];
    if (as_json) {
        cJSON *root = cJSON_CreateObject(), *ts = cJSON_AddArrayToObject(root, "tensors");
        cJSON_AddStringToObject(root, "file", st->path);
        for (int i = 0; i + 1 < 2 * n_extra; i += 2)
            cJSON_AddStringToObject(root, extra[i], extra[i + 1]);
        for (int i = 0; i < st->count; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", order[i]->name);
            cJSON_AddStringToObject(o, "dtype", clv_dtype_name(order[i]->dtype));
            cJSON *s = cJSON_AddArrayToObject(o, "shape");
            for (int d = 0; d < order[i]->ndim; d++)
                cJSON_AddItemToArray(s, cJSON_CreateNumber((double)order[i]->shape[d]));
            cJSON_AddNumberToObject(o, "bytes", (double)(order[i]->end - order[i]->begin));
            cJSON_AddItemToArray(ts, o);
        }
        cJSON *m = cJSON_AddObjectToObject(root, "metadata");
        for (int i = 0; i < st->n_meta; i++)
            cJSON_AddStringToObject(m, st->meta_keys[i], st->meta_vals[i]);
        char *s = cJSON_Print(root);
        if (s)
            fprintf(out, "%s\n", s);
        free(s);
        cJSON_Delete(root);
    } else {
        int64_t total = 0;
        for (int i = 0; i + 1 < 2 * n_extra; i += 2)
            fprintf(out, "%s: %s\n", extra[i], extra[i + 1]);
        fprintf(out, "%-48s %-5s %-22s %12s\n", "tensor", "dtype", "shape", "bytes");
        for (int i = 0; i < st->count; i++) {
            shape_str(shape, sizeof shape, order[i]->ndim, order[i]->shape);
            fprintf(out, "%-48s %-5s %-22s %12llu\n", order[i]->name, clv_dtype_name(order[i]->dtype), shape,
                    (unsigned long long)(order[i]->end - order[i]->begin));
            total += order[i]->numel;
        }
        fprintf(out, "%d tensors, %lld elements, %llu bytes of data\n", st->count, (long long)total,
                (unsigned long long)st->data_len);
        if (st->n_meta)
            fprintf(out, "metadata:\n");
        for (int i = 0; i < st->n_meta; i++)
            fprintf(out, "  %s = %s\n", st->meta_keys[i], st->meta_vals[i]);
    }
    free(order);
}
