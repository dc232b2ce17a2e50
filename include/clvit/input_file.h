/* Opening a file that a user named, for reading. The path is checked with
 * stat before it is opened: a directory, a FIFO, a device or a socket is
 * refused with a message naming it and what it is, and is never opened
 * (opening a FIFO waits for a writer forever; a directory opened with
 * fopen reads as empty, so a --config naming one was silently ignored).
 * The open is non-blocking and checked again with fstat, in case the path
 * changed in between; the descriptor is blocking again when returned. */
#ifndef CLVIT_INPUT_FILE_H
#define CLVIT_INPUT_FILE_H

#include <stdio.h>

#include "clvit/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 0 if path is a regular file (symbolic links followed); -1 with err set
 * otherwise, errno kept from stat when it failed (ENOENT: no such file). */
int clv_input_check(const char *path, clv_err *err);
/* A read-only descriptor of a regular file, or -1 with err set. */
int clv_input_open(const char *path, clv_err *err);
/* The same as a stdio stream ("rb"), or NULL with err set. */
FILE *clv_input_fopen(const char *path, clv_err *err);
/* The rest of stream f as one NUL-terminated buffer (the caller frees it),
 * its length without the NUL in *len; NULL when out of memory or on a read
 * error. For text files of unknown size (metrics.csv, run.json). */
char *clv_read_stream(FILE *f, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
