/* safetensors read and write (https://huggingface.co/docs/safetensors).
 *
 * File: 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"k": "v", ...}, "name": {"dtype": "F32",
 *    "shape": [..], "data_offsets": [begin, end]}, ...}
 * then the data buffer; offsets are relative to the buffer's start.
 * The reader rejects what it cannot prove valid (header length beyond the
 * file, bad JSON, unknown dtype, offsets out of range, overlapping or
 * leaving holes, sizes that disagree with dtype x shape, duplicate names)
 * with a message naming the file and the problem, and never allocates more
 * than the file's own size. The writer is atomic: temporary file in the same
 * directory, fsync, rename, fsync of the directory.
 *
 * Checksum: every file the writer makes carries CLV_ST_CRC_KEY ("clvit.crc32")
 * in its metadata: zlib's crc32 of the whole file (header and data) as 8
 * lowercase hex digits, computed with those digits read as '0's. The
 * reader verifies it whenever the key is present (files of other tools have
 * none and load as before), so a flipped bit or a truncated file is an error
 * naming the file. In Python:
 *   b = open(f, "rb").read(); v = meta["clvit.crc32"].encode()
 *   k = b'"clvit.crc32":"'; z = b.replace(k + v + b'"', k + b'00000000"', 1)
 *   assert zlib.crc32(z) == int(v, 16) */
#ifndef CLVIT_SAFETENSORS_H
#define CLVIT_SAFETENSORS_H

#include "clvit/param.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CLV_DT_F32, CLV_DT_F16, CLV_DT_BF16, CLV_DT_F64,
    CLV_DT_U8, CLV_DT_I8, CLV_DT_I16, CLV_DT_I32, CLV_DT_I64, CLV_DT_BOOL
} clv_dtype;

const char *clv_dtype_name(clv_dtype dt); /* "F32" */
size_t clv_dtype_size(clv_dtype dt);

#define CLV_ST_MAX_DIMS 8

typedef struct clv_st_tensor {
    char *name;
    clv_dtype dtype;
    int ndim;
    int64_t shape[CLV_ST_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end; /* byte offsets into the data buffer */
} clv_st_tensor;

typedef struct clv_safetensors {
    char *path;
    clv_st_tensor *tensors; /* sorted by data offset */
    int count;
    char **meta_keys, **meta_vals;
    int n_meta;
    const uint8_t *data; /* the data buffer (inside the mapped file) */
    uint64_t data_len;
    void *map;
    size_t map_len;
} clv_safetensors;

#define CLV_ST_CRC_KEY "clvit.crc32"
/* clv_st_open's result when the file is there but its bytes are damaged
 * (truncated, a header that does not parse or fit the file, a checksum
 * that does not match); -1 for the rest (cannot open, not a regular file).
 * Callers that know what the file is add what to do about it. */
#define CLV_ST_DAMAGED (-2)

int clv_st_open(clv_safetensors *st, const char *path, clv_err *err);
void clv_st_close(clv_safetensors *st);
const clv_st_tensor *clv_st_find(const clv_safetensors *st, const char *name);
const char *clv_st_meta(const clv_safetensors *st, const char *key); /* NULL if absent */
const void *clv_st_tensor_data(const clv_safetensors *st, const clv_st_tensor *t);
/* Copies a tensor into dst as float32 (F32, F16, BF16, F64 converted).
 * numel must equal the tensor's element count. */
int clv_st_read_f32(const clv_safetensors *st, const clv_st_tensor *t, float *dst, int64_t numel, clv_err *err);

/* ---- writer ---- */
typedef struct clv_st_writer clv_st_writer;
clv_st_writer *clv_st_writer_new(void);
void clv_st_writer_free(clv_st_writer *w);
/* The data is referenced, not copied: it must stay valid until write. */
int clv_st_writer_add(clv_st_writer *w, const char *name, clv_dtype dtype, int ndim, const int64_t *shape,
                      const void *data, clv_err *err);
int clv_st_writer_add_param(clv_st_writer *w, const clv_param *p, const char *prefix, clv_err *err);
/* CLV_ST_CRC_KEY is the writer's own: it is refused here. */
int clv_st_writer_meta(clv_st_writer *w, const char *key, const char *value, clv_err *err);
int clv_st_writer_write(clv_st_writer *w, const char *path, clv_err *err);

/* ---- parameters ---- */
/* Loads every parameter of ps from the tensor named prefix + param name
 * (prefix may be NULL). Shape must match exactly. A missing or misshapen
 * tensor is an error listing the first few differences. When strict, a
 * tensor in the file (under prefix) that ps does not have is an error too. */
int clv_st_load_params(const clv_safetensors *st, clv_params *ps, const char *prefix, int strict, clv_err *err);

/* The same with the file's name of each parameter given by map (a checkpoint
 * layout's renaming, clvit/ckpt_layout.h): map writes it into buf (len
 * bytes) and returns it. When strict, a file tensor under prefix that no
 * parameter maps to is an error. */
typedef const char *(*clv_st_name_map)(void *ctx, const char *param, char *buf, size_t len);
int clv_st_load_params_mapped(const clv_safetensors *st, clv_params *ps, clv_st_name_map map, void *ctx,
                              const char *prefix, int strict, clv_err *err);

/* Prints name, dtype, shape of every tensor and the metadata (clvit inspect). */
void clv_st_print(const clv_safetensors *st, FILE *out, int as_json);
/* The same with n_extra key/value pairs (extra[2i], extra[2i+1]) first: top-level keys in JSON. */
void clv_st_print_with(const clv_safetensors *st, FILE *out, int as_json, const char *const *extra, int n_extra);

#ifdef __cplusplus
}
#endif
#endif
