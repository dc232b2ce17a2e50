/* The Visual Decathlon: per domain, COCO-style annotation files
 * root/annotations/<domain>_{train,val}.json ("images": [{id, file_name}],
 * "annotations": [{image_id, category_id}], "categories": [{id, name}]) and
 * the images they name, relative to root (the devkit's file_name values
 * start with "data/"; a root holding the data/ folder's contents works too).
 * Each domain is one task: its classes are its categories in increasing id
 * order, numbered after the previous domains' (class_group says which
 * domain). The val split serves as the test set, as the public test
 * annotations carry no labels. */
#include "clvit/config.h"
#include "data/dataset_files.h"
#include "clvit/input_file.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_JSON_BYTES (1 << 28)

static cJSON *read_json(const char *path, clv_err *err)
{
    FILE *f = clv_input_fopen(path, err);
    if (!f) {
        clv_err_prefix(err, "the annotation file");
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (len < 0 || len > MAX_JSON_BYTES) {
        fclose(f);
        clv_errf(err, "%s: unreadable or larger than %d bytes", path, MAX_JSON_BYTES);
        return NULL;
    }
    char *text = malloc((size_t)len + 1);
    size_t got = text ? fread(text, 1, (size_t)len, f) : 0;
    fclose(f);
    if (!text || got != (size_t)len) {
        free(text);
        clv_errf(err, "%s: cannot read the file", path);
        return NULL;
    }
    text[len] = 0;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j)
        clv_errf(err, "%s: not valid JSON", path);
    return j;
}

static int cmp_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Category ids of a domain's train file, sorted. */
static int domain_categories(const cJSON *j, const char *path, int **ids, int *n, clv_err *err)
{
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(j, "categories");
    if (!cJSON_IsArray(cats) || cJSON_GetArraySize(cats) < 1)
        return clv_errf(err, "%s: no \"categories\" array", path);
    *n = cJSON_GetArraySize(cats);
    if (!(*ids = malloc((size_t)*n * sizeof **ids)))
        return clv_errf(err, "out of memory");
    int k = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cats)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");
        if (!cJSON_IsNumber(id)) {
            free(*ids);
            *ids = NULL; /* the caller frees what it gets back */
            return clv_errf(err, "%s: category %d has no numeric \"id\"", path, k + 1);
        }
        (*ids)[k++] = id->valueint;
    }
    qsort(*ids, (size_t)*n, sizeof **ids, cmp_int);
    for (int i = 1; i < *n; i++)
        if ((*ids)[i] == (*ids)[i - 1]) {
            clv_errf(err, "%s: category id %d appears twice", path, (*ids)[i]);
            free(*ids);
            *ids = NULL;
            return -1;
        }
    return 0;
}

/* Appends "domain/name" for each of a domain's category ids (sorted, as
 * domain_categories gives them) to names: the category's "name", or its id
 * when it has none. */
static int add_class_names(const cJSON *j, const char *domain, const int *ids, int n, char ***names, size_t *cap,
                           int *n_names, clv_err *err)
{
    if (clv_grow(names, cap, (size_t)*n_names + (size_t)n))
        return clv_errf(err, "out of memory");
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(j, "categories");
    for (int i = 0; i < n; i++) {
        const char *name = NULL;
        const cJSON *c;
        cJSON_ArrayForEach(c, cats)
        {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(c, "name");
            if (cJSON_IsNumber(id) && id->valueint == ids[i] && cJSON_IsString(nm) && nm->valuestring[0]) {
                name = nm->valuestring;
                break;
            }
        }
        char buf[256];
        if (name)
            snprintf(buf, sizeof buf, "%s/%s", domain, name);
        else
            snprintf(buf, sizeof buf, "%s/%d", domain, ids[i]);
        if (!((*names)[*n_names] = strdup(buf)))
            return clv_errf(err, "out of memory");
        (*n_names)++;
    }
    return 0;
}

/* Adds the images of one annotation file with labels offset + category rank. */
static int add_split(const char *root, const char *root_real, const char *path, const cJSON *j, const int *cat_ids, int n_cats, int offset,
                     clv_file_list *fl, clv_err *err)
{
    const cJSON *images = cJSON_GetObjectItemCaseSensitive(j, "images");
    const cJSON *anns = cJSON_GetObjectItemCaseSensitive(j, "annotations");
    if (!cJSON_IsArray(images) || !cJSON_IsArray(anns))
        return clv_errf(err, "%s: needs \"images\" and \"annotations\" arrays", path);
    /* image id -> category, through a sorted (image id, category) table */
    const int na = cJSON_GetArraySize(anns);
    int *pairs = malloc((size_t)(na > 0 ? na : 1) * 2 * sizeof *pairs);
    if (!pairs)
        return clv_errf(err, "out of memory");
    int k = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, anns)
    {
        const cJSON *im = cJSON_GetObjectItemCaseSensitive(a, "image_id");
        const cJSON *cat = cJSON_GetObjectItemCaseSensitive(a, "category_id");
        if (!cJSON_IsNumber(im) || !cJSON_IsNumber(cat)) {
            free(pairs);
            return clv_errf(err, "%s: annotation %d lacks a numeric image_id or category_id", path, k + 1);
        }
        pairs[2 * k] = im->valueint;
        pairs[2 * k + 1] = cat->valueint;
        k++;
    }
    qsort(pairs, (size_t)na, 2 * sizeof *pairs, cmp_int);
    char full[CLV_PATH_LEN + 512];
    int rc = -1, i = 0;
    const cJSON *img;
    cJSON_ArrayForEach(img, images)
    {
        i++;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(img, "id");
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(img, "file_name");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(fn)) {
            clv_errf(err, "%s: image %d lacks a numeric id or a file_name", path, i);
            goto done;
        }
        int key[2] = {id->valueint, 0};
        const int *hit = bsearch(key, pairs, (size_t)na, 2 * sizeof *pairs, cmp_int);
        if (!hit) {
            clv_errf(err, "%s: image %d (%s) has no annotation", path, id->valueint, fn->valuestring);
            goto done;
        }
        const int *rank = bsearch(&hit[1], cat_ids, (size_t)n_cats, sizeof *cat_ids, cmp_int);
        if (!rank) {
            clv_errf(err, "%s: image %s has category %d, not among the domain's categories", path, fn->valuestring,
                     hit[1]);
            goto done;
        }
        const char *name = fn->valuestring;
        if (name[0] == '/' || !strcmp(name, "..") || !strncmp(name, "../", 3) || strstr(name, "/../") ||
            (strlen(name) >= 3 && !strcmp(name + strlen(name) - 3, "/.."))) {
            clv_errf(err, "%s: image %d's file_name %s leaves the data root %s (absolute or with ..)", path, i, name,
                     root);
            goto done;
        }
        snprintf(full, sizeof full, "%s/%s", root, fn->valuestring);
        if (access(full, R_OK)) {
            snprintf(full, sizeof full, "%s/data/%s", root, fn->valuestring);
            if (access(full, R_OK)) {
                clv_errf(err, "%s: image file %s/%s does not exist", path, root, fn->valuestring);
                goto done;
            }
        }
        if (!clv_path_is_inside(root_real, full)) {
            clv_errf(err, "%s: image %d's file %s is a link to outside the data root %s", path, i, full, root);
            goto done;
        }
        if (clv_file_list_add(fl, full, offset + (int32_t)(rank - cat_ids), err))
            goto done;
    }
    rc = 0;
done:
    free(pairs);
    return rc;
}

int clv_decathlon_open(const char *root, const char *domains, clv_dataset **train, clv_dataset **test, clv_err *err)
{
    *train = *test = NULL;
    clv_file_list ftr = {0}, fte = {0};
    int32_t *group = NULL, *group2 = NULL;
    size_t group_cap = 0, names_cap = 0;
    char **names = NULL; /* "domain/category" in label order */
    int n_names = 0;
    int n_groups = 0, n_classes = 0, rc = -1;
    char list[512], path[CLV_PATH_LEN + 128], root_real[PATH_MAX];
    if (!realpath(root, root_real))
        return clv_errf(err, "%s: the Visual Decathlon's root directory does not exist", root);
    snprintf(list, sizeof list, "%s", domains);
    for (char *save = NULL, *d = strtok_r(list, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
        while (*d == ' ')
            d++;
        if (!*d)
            continue;
        snprintf(path, sizeof path, "%s/annotations/%s_train.json", root, d);
        cJSON *jt = read_json(path, err);
        if (!jt)
            goto done;
        int *cats = NULL, nc = 0;
        if (domain_categories(jt, path, &cats, &nc, err) ||
            add_split(root, root_real, path, jt, cats, nc, n_classes, &ftr, err) ||
            add_class_names(jt, d, cats, nc, &names, &names_cap, &n_names, err)) {
            free(cats);
            cJSON_Delete(jt);
            goto done;
        }
        cJSON_Delete(jt);
        snprintf(path, sizeof path, "%s/annotations/%s_val.json", root, d);
        cJSON *jv = read_json(path, err);
        if (!jv || add_split(root, root_real, path, jv, cats, nc, n_classes, &fte, err)) {
            free(cats);
            cJSON_Delete(jv);
            goto done;
        }
        cJSON_Delete(jv);
        free(cats);
        if (clv_grow(&group, &group_cap, (size_t)n_classes + (size_t)nc)) {
            clv_errf(err, "out of memory");
            goto done;
        }
        for (int c = 0; c < nc; c++)
            group[n_classes + c] = n_groups;
        n_classes += nc;
        n_groups++;
    }
    if (!n_groups) {
        clv_errf(err, "decathlon: no domains given (e.g. aircraft,cifar100,dtd,gtsrb,vgg-flowers)");
        goto done;
    }
    if (!(group2 = malloc((size_t)n_classes * sizeof *group2))) {
        clv_errf(err, "out of memory");
        goto done;
    }
    memcpy(group2, group, (size_t)n_classes * sizeof *group2);
    snprintf(path, sizeof path, "%s/annotations", root);
    *train = clv_file_dataset("decathlon train", path, &ftr, n_classes, group, n_groups, err);
    group = NULL;
    if (!*train)
        goto done;
    *test = clv_file_dataset("decathlon val", path, &fte, n_classes, group2, n_groups, err);
    group2 = NULL;
    if (!*test || clv_dataset_set_class_names(*train, (const char *const *)names, n_classes, err) ||
        clv_dataset_set_class_names(*test, (const char *const *)names, n_classes, err))
        goto done;
    rc = 0;
done:
    for (int c = 0; c < n_names; c++)
        free(names[c]);
    free(names);
    clv_file_list_free(&ftr);
    clv_file_list_free(&fte);
    free(group);
    free(group2);
    if (rc) {
        clv_dataset_free(*train);
        clv_dataset_free(*test);
        *train = *test = NULL;
    }
    return rc;
}
