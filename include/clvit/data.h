/* Datasets, presentation at the model's input, augmentation and the
 * prefetching batch loader.
 *
 * A dataset hands out uint8 HWC images and int32 labels. In-memory readers
 * (IDX, CIFAR binary) hold the pixels once; lazily decoded sets (image
 * folders, Visual Decathlon) implement the same interface later. The loader
 * turns a list of sample indices into float NCHW batches at the model's size
 * and channel count, prepared one batch ahead on its own thread. All
 * randomness is keyed by (seed, stream, task, epoch) and the sample's
 * position in the epoch, so batches do not depend on thread count and a
 * resumed epoch reproduces exactly. */
#ifndef CLVIT_DATA_H
#define CLVIT_DATA_H

#include "clvit/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_dataset clv_dataset;

typedef struct clv_dataset_ops {
    /* Writes image i as uint8 HWC into out (h*w*channels bytes, capacity
     * out_cap) and its size into *h, *w. Thread-safe. */
    int (*get)(const clv_dataset *ds, int64_t i, uint8_t *out, size_t out_cap, int *h, int *w, clv_err *err);
    void (*free)(clv_dataset *ds);
} clv_dataset_ops;

struct clv_dataset {
    const clv_dataset_ops *ops;
    char name[64];      /* "fashion-mnist train" */
    char path[512];     /* the file or directory it came from (for messages) */
    int64_t n;          /* number of samples */
    int num_classes;
    const int32_t *labels; /* n labels in [0, num_classes) */
    int channels;       /* 1 or 3 */
    int height, width;  /* native size; 0 when it varies per image */
    /* Classes that come in groups (the domains of the Visual Decathlon):
     * class_group[c] in [0, n_groups), each group one task. NULL: none. */
    const int32_t *class_group;
    int n_groups;
    /* Names of classes 0 .. n_class_names-1 ("Dress", an image folder's
     * folder name); NULL when the data names none. Owned: set with
     * clv_dataset_set_class_names, freed by clv_dataset_free. */
    char **class_names;
    int n_class_names;
    void *impl;
};

/* Dataset kinds: "mnist", "fashion-mnist", "cifar10", "cifar100".
 * root NULL means the kind's default location (fashion-mnist and mnist: the
 * Debian packages' /usr/share/datasets/...). Missing files are an error
 * naming the path and the files expected. */
int clv_dataset_open_pair(const char *kind, const char *root, clv_dataset **train, clv_dataset **test,
                          clv_err *err);
/* Names of the supported kinds, NULL-terminated. */
const char *const *clv_dataset_kinds(void);
/* The kind's customary normalization (3 channels; grayscale replicated).
 * Unknown kinds get mean 0.5, std 0.5. */
void clv_dataset_default_norm(const char *kind, float mean[3], float std[3]);
/* Whether a horizontal flip keeps the class (not for digits). */
int clv_dataset_flip_ok(const clv_dataset *ds);
void clv_dataset_free(clv_dataset *ds);
/* Copies n names into ds->class_names (replacing any). */
int clv_dataset_set_class_names(clv_dataset *ds, const char *const *names, int n, clv_err *err);

/* Individual readers (paths of the two files / of one file). */
int clv_idx_open(const char *images_path, const char *labels_path, const char *name, clv_dataset **out,
                 clv_err *err);
/* CIFAR binary: cifar100 = 0 for CIFAR-10 records (label, 3072 bytes),
 * 1 for CIFAR-100 records (coarse, fine, 3072 bytes; the fine label is used). */
int clv_cifar_open(const char *const *paths, int n_paths, int cifar100, const char *name, clv_dataset **out,
                   clv_err *err);

/* Image folders (ImageNet layout): root/train/<class>/<image> (JPEG, PNG) and
 * root/val/<class>/...; classes are train/'s sorted sub-folders, images
 * are decoded when the loader asks for them. */
int clv_imagefolder_open(const char *root, clv_dataset **train, clv_dataset **test, clv_err *err);
/* Visual Decathlon: the comma-separated domains, each one task (see
 * class_group), from root/annotations/<domain>_{train,val}.json. */
int clv_decathlon_open(const char *root, const char *domains, clv_dataset **train, clv_dataset **test, clv_err *err);

/* ---- presentation ---- */

/* How an image is brought to the model's input. */
typedef struct clv_present {
    int out_c, out_h, out_w; /* the model's channels and size */
    int fit_resize;          /* smaller images: 0 = zero-pad centered (default), 1 = bilinear resize */
    float mean[3], std[3];   /* applied after scaling pixels to [0, 1] */
} clv_present;

/* One uint8 HWC image (c = 1 or 3 channels) into out_c x out_h x out_w floats
 * (CHW): grayscale replicated, padded or resized, scaled, normalized.
 * Larger images: bilinear resize of the shorter side + center crop. */
int clv_present_image(const clv_present *p, const uint8_t *hwc, int h, int w, int c, float *out, clv_err *err);

/* A rectangle of the source image, in pixels (fractional allowed). */
typedef struct clv_crop_box {
    double y, x, h, w;
} clv_crop_box;
/* The box of hwc resized (bilinear, half-pixel centers) to the model's size,
 * then scaled and normalized as clv_present_image does. */
int clv_present_crop(const clv_present *p, const uint8_t *hwc, int h, int w, int c, const clv_crop_box *box,
                     float *out, clv_err *err);
/* Evaluation of photographs (timm's default): the center square of
 * crop_pct of the shorter side (0.875: resize the shorter side to
 * size / 0.875, center-crop size). */
clv_crop_box clv_center_crop_box(int h, int w, int out_h, int out_w, double crop_pct);
/* torchvision's RandomResizedCrop box (scale 0.08..1, ratio 3/4..4/3, 10
 * attempts, then the central crop of the nearest allowed ratio), drawn from
 * key and the sample's position. */
clv_crop_box clv_random_resized_crop_box(int h, int w, uint64_t key, int64_t position);

/* ---- image files (for predict) ---- */

/* Decodes a PNG or JPEG file (by content) into a malloc'ed uint8 HWC buffer
 * with 1 or 3 channels (alpha dropped, palettes expanded, 16-bit reduced).
 * Free with clv_free. */
int clv_image_read(const char *path, uint8_t **pixels, int *h, int *w, int *c, clv_err *err);

/* ---- loader ---- */

typedef struct clv_loader_config {
    const clv_dataset *dataset;
    const int64_t *indices; /* samples of this set, in natural order */
    const int32_t *labels;  /* label to deliver for indices[k] (task-local) */
    int64_t count;          /* number of indices */
    int batch;
    int drop_last;          /* drop a last partial batch */
    int shuffle;            /* permute indices per (seed, task, epoch) */
    int augment;            /* random crop with padding */
    int flip;               /* random horizontal flip, p = 0.5 (only with augment) */
    int crop_padding;       /* pixels of zero padding for the random crop */
    uint64_t seed;
    int task, epoch;
    int64_t skip_batches;   /* start this many batches into the epoch (resume) */
    int out_c, out_h, out_w;
    int fit_resize;
    float mean[3], std[3];
    /* data-parallel: deliver only this rank's contiguous share of every
     * batch (as clv_dist_shard splits it); 0 ranks = the whole batch. The
     * samples and their augmentation are those of the single-process run. */
    int shard_rank, shard_count;
} clv_loader_config;

/* Defaults: batch 128, no shuffle, no augmentation, padding 4, mean 0, std 1. */
clv_loader_config clv_loader_defaults(void);

typedef struct clv_batch {
    const float *x;   /* size x out_c x out_h x out_w, valid until the next call */
    const int32_t *y; /* size labels */
    int64_t size;     /* this rank's share (the whole batch without sharding) */
    int64_t first;    /* position of its first sample in the epoch's order */
    int64_t global_size; /* the whole batch over all ranks */
} clv_batch;

typedef struct clv_loader clv_loader;

/* Starts the worker thread, which prepares the first batch at once. */
clv_loader *clv_loader_start(const clv_loader_config *cfg, clv_err *err);
/* 1 and a batch, 0 at the end of the epoch, -1 on error (also errors of the
 * worker, e.g. an unreadable image). */
int clv_loader_next(clv_loader *ld, clv_batch *batch, clv_err *err);
/* Number of batches in the epoch (counting skipped ones). */
int64_t clv_loader_batches(const clv_loader *ld);
/* Stops the worker and frees everything; safe at any point and on NULL. */
void clv_loader_stop(clv_loader *ld);

#ifdef __cplusplus
}
#endif
#endif
