/* Shared by the libFuzzer harnesses (fuzz/fuzz_*.c): a private temporary
 * directory per fuzzing process ($TMPDIR, else /dev/shm, else /tmp), where
 * readers that take a path find the input as a file, rewritten on every
 * run. Header-only (static functions), so each harness stays one file plus
 * this. */
#ifndef CLVIT_FUZZ_UTIL_H
#define CLVIT_FUZZ_UTIL_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/core.h"

static char fuzz_dir_path[256];

static int fuzz_rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    remove(path);
    return 0;
}

/* Removes everything under path (depth first, symbolic links not followed). */
static void fuzz_rm_tree(const char *path) { nftw(path, fuzz_rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void fuzz_cleanup(void)
{
    if (fuzz_dir_path[0])
        fuzz_rm_tree(fuzz_dir_path);
}

/* The process's own directory, made on first use and removed at exit. */
static const char *fuzz_dir(void)
{
    if (!fuzz_dir_path[0]) {
        /* memory rather than disk: inputs are rewritten thousands of times a minute */
        const char *tmp = getenv("TMPDIR");
        if (!tmp || !*tmp)
            tmp = access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm";
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/clvit-fuzz-XXXXXX", tmp);
        if (!mkdtemp(fuzz_dir_path)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_cleanup);
        clv_log_set_level(CLV_LOG_ERROR); /* the readers' warnings would drown libFuzzer's output */
    }
    return fuzz_dir_path;
}

/* Writes size bytes to path (replacing it); aborts if it cannot, since a
 * harness that silently tested an old file would test nothing. */
static void fuzz_write(const char *path, const uint8_t *data, size_t size)
{
    /* a new file, not the old one truncated: ext4 flushes a file truncated
     * to zero on close (auto_da_alloc), which made every input wait for the disk */
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
        perror(path);
        abort();
    }
}

/* fuzz_dir()/name holding the input. */
__attribute__((unused)) static const char *fuzz_input_file(const char *name, const uint8_t *data, size_t size)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    fuzz_write(path, data, size);
    return path;
}

/* A reader's error message must be a non-empty, terminated string. */
static void fuzz_check_err(int rc, const clv_err *err)
{
    if (rc && (!memchr(err->msg, 0, sizeof err->msg) || !err->msg[0])) {
        fprintf(stderr, "fuzz: a reader failed without a message\n");
        abort();
    }
}

#endif
