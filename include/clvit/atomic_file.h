/* Atomic file replacement: write "path.tmp.<pid>" in the same directory,
 * fsync it, rename it over path, fsync the directory. A reader (or a run
 * killed at any moment) sees either the old file or the new one, whole. */
#ifndef CLVIT_ATOMIC_FILE_H
#define CLVIT_ATOMIC_FILE_H

#include <stdio.h>

#include "clvit/core.h"

#ifdef __cplusplus
extern "C" {
#endif

int clv_atomic_write(const char *path, const void *data, size_t len, clv_err *err);

/* Streaming variant: write into f->fp, then commit (or abort). */
typedef struct clv_atomic_file {
    FILE *fp;
    char path[1024];
    char tmp[1100];
} clv_atomic_file;

int clv_atomic_open(clv_atomic_file *f, const char *path, clv_err *err);
int clv_atomic_commit(clv_atomic_file *f, clv_err *err);
void clv_atomic_abort(clv_atomic_file *f);

#ifdef __cplusplus
}
#endif
#endif
