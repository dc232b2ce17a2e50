/* Datasets of image files decoded on demand (image folders, the Visual
 * Decathlon): a list of paths and labels; get() decodes one file (PNG or
 * JPEG, by content) on the loader's thread. Internal to src/data. */
#ifndef CLVIT_DATA_DATASET_FILES_H
#define CLVIT_DATA_DATASET_FILES_H

#include "clvit/data.h"

typedef struct clv_file_list {
    char **paths;    /* n malloc'ed paths */
    int32_t *labels; /* n labels */
    int64_t n;
    size_t cap_paths, cap_labels;
} clv_file_list;

/* 1 if path (which exists) resolves, links followed, to a file inside the
 * directory root_real (itself already resolved by realpath), else 0. A name
 * read from a file (an annotation's file_name) must not reach outside the
 * data root. */
int clv_path_is_inside(const char *root_real, const char *path);

int clv_file_list_add(clv_file_list *fl, const char *path, int32_t label, clv_err *err);
void clv_file_list_free(clv_file_list *fl);

/* Takes the list over (freed with the dataset; on failure too). Images are
 * delivered with 3 channels (grayscale replicated). class_group may be NULL;
 * it is taken over too. */
clv_dataset *clv_file_dataset(const char *name, const char *path, clv_file_list *fl, int num_classes,
                              int32_t *class_group, int n_groups, clv_err *err);

#endif
