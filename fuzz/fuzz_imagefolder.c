/* libFuzzer harness: image folders (src/data/imagefolder.c: the listing of
 * root/{train,val}/<class>/<image>). The input describes a tree, one entry
 * a line: a kind letter, then a path relative to the root:
 *   d train/ant         a folder (parents made as needed)
 *   p train/ant/0.png   a valid 3x2 PNG
 *   t train/ant/x.jpg   a file of text (a corrupt image)
 *   l train/ant/1.png   a symbolic link to a PNG outside the root
 *   L train/cat         a symbolic link to a folder outside the root
 * "." and ".." components are dropped, so the tree stays inside this
 * process's directory. The tree is rebuilt for every input and opened; an
 * accepted one has every image fetched through the dataset interface. The
 * images' bytes are the PNG and JPEG harnesses' business. */
#include "fuzz_dataset.h"
#include "fuzz_tiny_png.h"

#include <errno.h>
#include <sys/stat.h>

#include "clvit/data.h"

#define MAX_ENTRIES 64

static char root[512], outside_png[512], outside_dir[512];

static void make_outside(void)
{
    snprintf(root, sizeof root, "%s/tree", fuzz_dir());
    snprintf(outside_png, sizeof outside_png, "%s/outside.png", fuzz_dir());
    fuzz_write(outside_png, fuzz_tiny_png, sizeof fuzz_tiny_png);
    snprintf(outside_dir, sizeof outside_dir, "%s/outside", fuzz_dir());
    char path[600];
    snprintf(path, sizeof path, "%s/0.png", outside_dir);
    if (mkdir(outside_dir, 0700))
        abort();
    fuzz_write(path, fuzz_tiny_png, sizeof fuzz_tiny_png);
}

/* Writes a new file of the tree; it may fail, as when an earlier entry made
 * a file where this one wants a folder, or the name exists (never written
 * through a link, so the files outside stay as they are): the tree then
 * lacks it. */
static void try_write(const char *path, const void *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        if (write(fd, data, size) != (ssize_t)size)
            perror(path);
        close(fd);
    }
}

/* mkdir -p of every folder above path (and path itself when last). */
static void make_parents(char *path, int last)
{
    for (char *p = path + strlen(root) + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0700);
            *p = '/';
        }
    if (last)
        mkdir(path, 0700);
}

static void make_entry(char kind, const char *rel)
{
    char path[2048];
    size_t n = (size_t)snprintf(path, sizeof path, "%s", root);
    char *copy = strdup(rel);
    if (!copy)
        return;
    for (char *save = NULL, *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save))
        if (strcmp(c, ".") && strcmp(c, "..") && n + strlen(c) + 2 < sizeof path)
            n += (size_t)snprintf(path + n, sizeof path - n, "/%s", c);
    free(copy);
    if (n == strlen(root))
        return; /* the root itself */
    make_parents(path, kind == 'd');
    switch (kind) {
    case 'p':
        try_write(path, fuzz_tiny_png, sizeof fuzz_tiny_png);
        break;
    case 't':
        try_write(path, "not an image\n", 13);
        break;
    case 'l':
        (void)symlink(outside_png, path);
        break;
    case 'L':
        (void)symlink(outside_dir, path);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!root[0])
        make_outside();
    fuzz_rm_tree(root);
    if (mkdir(root, 0700))
        abort();
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    int entries = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line && entries < MAX_ENTRIES;
         line = strtok_r(NULL, "\n", &save), entries++)
        if (line[0] && line[1] == ' ')
            make_entry(line[0], line + 2);
    free(text);
    clv_dataset *tr = NULL, *va = NULL;
    clv_err err = {{0}};
    int rc = clv_imagefolder_open(root, &tr, &va, &err);
    fuzz_check_err(rc, &err);
    if (rc)
        return 0;
    for (int s = 0; s < 2; s++)
        if ((s ? va : tr)->n < 1 || (s ? va : tr)->num_classes < 1 || tr->num_classes != va->num_classes)
            abort();
    fuzz_fetch_all_and_free(tr, va);
    return 0;
}
