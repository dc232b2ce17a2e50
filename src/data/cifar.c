/* CIFAR binary files. CIFAR-10: records of 1 label byte + 3072 pixel bytes
 * (1024 red, 1024 green, 1024 blue, row-major 32x32); CIFAR-100: coarse
 * label, fine label, 3072 bytes (the fine label, 0..99, is used). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset_memory.h"
#include "clvit/input_file.h"

#define CIFAR_PIXELS 3072

int clv_cifar_open(const char *const *paths, int n_paths, int cifar100, const char *name, clv_dataset **out,
                   clv_err *err)
{
    *out = NULL;
    const size_t label_bytes = cifar100 ? 2 : 1, rec = label_bytes + CIFAR_PIXELS;
    const int max_label = cifar100 ? 99 : 9;
    int64_t n = 0;
    for (int f = 0; f < n_paths; f++) {
        struct stat sb;
        if (clv_input_check(paths[f], err) || stat(paths[f], &sb))
            return -1;
        if (sb.st_size == 0 || (size_t)sb.st_size % rec)
            return clv_errf(err, "%s: %lld bytes is not a whole number of %zu-byte CIFAR-%d records", paths[f],
                            (long long)sb.st_size, rec, cifar100 ? 100 : 10);
        n += (int64_t)((size_t)sb.st_size / rec);
    }
    uint8_t *pixels = malloc((size_t)n * CIFAR_PIXELS), *buf = malloc(rec);
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    if (!pixels || !labels || !buf) {
        free(pixels);
        free(labels);
        free(buf);
        return clv_errf(err, "out of memory for %lld CIFAR images", (long long)n);
    }
    int64_t i = 0;
    for (int f = 0; f < n_paths; f++) {
        FILE *fp = clv_input_fopen(paths[f], err);
        if (!fp)
            goto fail;
        int bad = 0;
        while (!bad && fread(buf, 1, rec, fp) == rec) {
            int label = buf[label_bytes - 1];
            if (label > max_label) {
                clv_errf(err, "%s: record %lld has label %d (at most %d)", paths[f], (long long)i, label, max_label);
                bad = 1;
                break;
            }
            labels[i] = label;
            uint8_t *dst = pixels + (size_t)i * CIFAR_PIXELS; /* CHW planar -> HWC */
            const uint8_t *src = buf + label_bytes;
            for (int p = 0; p < 1024; p++)
                for (int c = 0; c < 3; c++)
                    dst[p * 3 + c] = src[c * 1024 + p];
            i++;
        }
        fclose(fp);
        if (bad)
            goto fail;
    }
    free(buf);
    if (i != n) {
        free(pixels);
        free(labels);
        return clv_errf(err, "%s: changed while being read", paths[0]);
    }
    *out = clv_memory_dataset(name, paths[0], n, 32, 32, 3, pixels, labels, err);
    return *out ? 0 : -1;
fail:
    free(buf);
    free(pixels);
    free(labels);
    return -1;
}
