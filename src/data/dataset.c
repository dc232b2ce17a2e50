/* Dataset kinds: where their files are, their class count, normalization
 * and whether a horizontal flip keeps the class. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/data.h"

typedef struct {
    const char *kind;
    const char *default_root; /* NULL: --data-root is required */
    int classes;
    float mean[3], std[3];
    int flip_ok;
} kind_info;

static const kind_info kinds[] = {
    {"fashion-mnist", "/usr/share/datasets/fashion-mnist", 10, {0.2860f, 0.2860f, 0.2860f},
     {0.3530f, 0.3530f, 0.3530f}, 1},
    {"mnist", "/usr/share/datasets/mnist", 10, {0.1307f, 0.1307f, 0.1307f}, {0.3081f, 0.3081f, 0.3081f}, 0},
    {"cifar10", NULL, 10, {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}, 1},
    {"cifar100", NULL, 100, {0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}, 1},
    /* photographs: ImageNet's statistics, as timm's pretrained models expect; classes from the files */
    {"imagefolder", NULL, 0, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}, 1},
    {"decathlon", NULL, 0, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}, 1},
};
#define N_KINDS ((int)(sizeof kinds / sizeof kinds[0]))

static const kind_info *find_kind(const char *kind)
{
    for (int i = 0; i < N_KINDS; i++)
        if (!strcmp(kinds[i].kind, kind))
            return &kinds[i];
    return NULL;
}

const char *const *clv_dataset_kinds(void)
{
    static const char *const names[] = {"fashion-mnist", "mnist", "cifar10", "cifar100", "imagefolder", "decathlon",
                                        NULL};
    return names;
}

void clv_dataset_default_norm(const char *kind, float mean[3], float std[3])
{
    const kind_info *k = find_kind(kind);
    for (int c = 0; c < 3; c++) {
        mean[c] = k ? k->mean[c] : 0.5f;
        std[c] = k ? k->std[c] : 0.5f;
    }
}

int clv_dataset_flip_ok(const clv_dataset *ds)
{
    /* the kind is the first word of the dataset's name ("mnist train") */
    for (int i = 0; i < N_KINDS; i++) {
        size_t n = strlen(kinds[i].kind);
        if (!strncmp(ds->name, kinds[i].kind, n) && (ds->name[n] == ' ' || !ds->name[n]))
            return kinds[i].flip_ok;
    }
    return 1;
}

static void free_names(char **names, int n)
{
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

void clv_dataset_free(clv_dataset *ds)
{
    if (!ds)
        return;
    char **names = ds->class_names;
    int n = ds->n_class_names;
    ds->ops->free(ds); /* frees ds itself */
    free_names(names, n);
}

int clv_dataset_set_class_names(clv_dataset *ds, const char *const *names, int n, clv_err *err)
{
    char **copy = calloc((size_t)n + 1, sizeof *copy);
    for (int i = 0; copy && i < n; i++)
        if (!(copy[i] = strdup(names[i]))) {
            free_names(copy, i);
            copy = NULL;
        }
    if (!copy)
        return clv_errf(err, "out of memory");
    free_names(ds->class_names, ds->n_class_names);
    ds->class_names = copy;
    ds->n_class_names = n;
    return 0;
}

/* The names the datasets' authors give their classes, in label order. */
static const char *const fashion_mnist_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
static const char *const mnist_names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
static const char *const cifar10_names[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                              "dog",      "frog",       "horse", "ship", "truck"};

/* CIFAR-100's binary archive names its classes in fine_label_names.txt, one a line; 0 if absent. */
static int read_names_file(const char *path, int want, char ***names)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char **v = calloc((size_t)want + 1, sizeof *v), line[256];
    int n = 0;
    while (v && n < want && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (*line && !(v[n++] = strdup(line)))
            break;
    }
    fclose(f);
    if (!v || n != want || !v[n - 1]) {
        free_names(v, n);
        return 0;
    }
    *names = v;
    return want;
}

static int name_classes(const char *kind, const char *dir, clv_dataset *train, clv_dataset *test, clv_err *err)
{
    const char *const *names = NULL;
    char **owned = NULL;
    int n = 0;
    if (!strcmp(kind, "fashion-mnist"))
        names = fashion_mnist_names, n = 10;
    else if (!strcmp(kind, "mnist"))
        names = mnist_names, n = 10;
    else if (!strcmp(kind, "cifar10"))
        names = cifar10_names, n = 10;
    else if (!strcmp(kind, "cifar100")) {
        char path[1100];
        snprintf(path, sizeof path, "%s/fine_label_names.txt", dir);
        if ((n = read_names_file(path, 100, &owned)))
            names = (const char *const *)owned;
    }
    int rc = 0;
    if (n)
        rc = clv_dataset_set_class_names(train, names, n, err) || clv_dataset_set_class_names(test, names, n, err);
    free_names(owned, n);
    return rc ? -1 : 0;
}

/* dir/name, or dir/name.gz when only that exists; NULL if neither. */
static int find_file(char *buf, size_t len, const char *dir, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
    if (!access(buf, R_OK))
        return 0;
    snprintf(buf, len, "%s/%s.gz", dir, name);
    return access(buf, R_OK);
}

static int open_idx_pair(const kind_info *k, const char *root, clv_dataset **train, clv_dataset **test, clv_err *err)
{
    static const char *const files[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    char path[4][1100];
    for (int i = 0; i < 4; i++)
        if (find_file(path[i], sizeof path[i], root, files[i]))
            return clv_errf(err, "%s: %s not found: expected train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                                 "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each possibly .gz)%s",
                            root, files[i],
                            !strcmp(k->kind, "fashion-mnist") ? " (Debian: apt-get install dataset-fashion-mnist)" : "");
    char name[64];
    snprintf(name, sizeof name, "%s train", k->kind);
    if (clv_idx_open(path[0], path[1], name, train, err))
        return -1;
    snprintf(name, sizeof name, "%s test", k->kind);
    if (clv_idx_open(path[2], path[3], name, test, err)) {
        clv_dataset_free(*train);
        *train = NULL;
        return -1;
    }
    return 0;
}

static int open_cifar_pair(const kind_info *k, const char *root, clv_dataset **train, clv_dataset **test,
                           clv_err *err)
{
    int c100 = !strcmp(k->kind, "cifar100");
    /* the archives unpack into a folder of their own; accept root or root/that folder */
    const char *sub = c100 ? "cifar-100-binary" : "cifar-10-batches-bin";
    const char *probe = c100 ? "train.bin" : "data_batch_1.bin";
    char dir[1024], tmp[1100];
    snprintf(tmp, sizeof tmp, "%s/%s/%s", root, sub, probe);
    if (!access(tmp, R_OK))
        snprintf(dir, sizeof dir, "%s/%s", root, sub);
    else
        snprintf(dir, sizeof dir, "%s", root);
    char train_paths[5][1100], test_path[1100];
    const char *tp[5];
    int nt = c100 ? 1 : 5;
    for (int i = 0; i < nt; i++) {
        if (c100)
            snprintf(train_paths[i], sizeof train_paths[i], "%s/train.bin", dir);
        else
            snprintf(train_paths[i], sizeof train_paths[i], "%s/data_batch_%d.bin", dir, i + 1);
        tp[i] = train_paths[i];
    }
    snprintf(test_path, sizeof test_path, "%s/%s", dir, c100 ? "test.bin" : "test_batch.bin");
    for (int i = 0; i <= nt; i++) {
        const char *p = i < nt ? tp[i] : test_path;
        if (access(p, R_OK))
            return clv_errf(err, "%s not found: --data-root must hold the binary version of %s (%s)", p,
                            c100 ? "CIFAR-100" : "CIFAR-10",
                            c100 ? "train.bin, test.bin" : "data_batch_1.bin .. data_batch_5.bin, test_batch.bin");
    }
    char name[64];
    snprintf(name, sizeof name, "%s train", k->kind);
    if (clv_cifar_open(tp, nt, c100, name, train, err))
        return -1;
    snprintf(name, sizeof name, "%s test", k->kind);
    const char *one[1] = {test_path};
    if (clv_cifar_open(one, 1, c100, name, test, err) || name_classes(k->kind, dir, *train, *test, err)) {
        clv_dataset_free(*train);
        clv_dataset_free(*test);
        *train = *test = NULL;
        return -1;
    }
    return 0;
}

int clv_dataset_open_pair(const char *kind, const char *root, clv_dataset **train, clv_dataset **test,
                          clv_err *err)
{
    *train = *test = NULL;
    const kind_info *k = find_kind(kind);
    if (!k)
        return clv_errf(err, "unknown dataset '%s' (known: fashion-mnist, mnist, cifar10, cifar100, imagefolder, decathlon)",
                        kind);
    if (!root || !*root)
        root = k->default_root;
    if (!root)
        return clv_errf(err, "%s needs --data-root DIR (the directory of its files)", kind);
    if (!strcmp(kind, "imagefolder"))
        return clv_imagefolder_open(root, train, test, err);
    if (!strcmp(kind, "decathlon")) /* the default five domains; clvit train takes --domains */
        return clv_decathlon_open(root, "aircraft,cifar100,dtd,gtsrb,vgg-flowers", train, test, err);
    int rc = !strncmp(kind, "cifar", 5) ? open_cifar_pair(k, root, train, test, err)
                                        : open_idx_pair(k, root, train, test, err);
    if (rc)
        return -1;
    /* the kind's class count, even when a small file lacks some classes */
    if ((*train)->num_classes > k->classes || (*test)->num_classes > k->classes) {
        clv_errf(err, "%s: labels beyond the %d classes of %s", (*train)->path, k->classes, kind);
        clv_dataset_free(*train);
        clv_dataset_free(*test);
        *train = *test = NULL;
        return -1;
    }
    (*train)->num_classes = (*test)->num_classes = k->classes;
    if (strncmp(kind, "cifar", 5) && name_classes(kind, root, *train, *test, err)) {
        clv_dataset_free(*train);
        clv_dataset_free(*test);
        *train = *test = NULL;
        return -1;
    }
    return 0;
}
