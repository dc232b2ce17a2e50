/* A path where a regular file is expected (config, weights, IDX, CIFAR,
 * images, run.json) that names a directory, a FIFO or a device is refused
 * with a message naming it, and a FIFO is never opened: opening one waited
 * for a writer forever, and a --config naming a directory was ignored. The
 * timeouts turn such a hang into a failure. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clvit/config.h"
#include "clvit/data.h"
#include "clvit/input_file.h"
#include "clvit/run_record.h"
#include "clvit/safetensors.h"
#include "tmp_tree.h"

typedef struct {
    char root[64], dir[96], fifo[96], file[96];
} places;

static void make_places(places *p)
{
    snprintf(p->root, sizeof p->root, "/tmp/clvit-input-XXXXXX");
    cr_assert_not_null(mkdtemp(p->root));
    snprintf(p->dir, sizeof p->dir, "%s/a_directory", p->root);
    snprintf(p->fifo, sizeof p->fifo, "%s/a_fifo", p->root);
    snprintf(p->file, sizeof p->file, "%s/a_file", p->root);
    cr_assert_eq(mkdir(p->dir, 0700), 0);
    cr_assert_eq(mkfifo(p->fifo, 0600), 0);
    FILE *f = fopen(p->file, "w");
    cr_assert_not_null(f);
    fputs("[train]\nepochs = 3\n", f);
    fclose(f);
}

/* what each path is called in the message */
static const char *const kinds[3] = {"a directory", "a FIFO", "a character device"};

static void paths_of(const places *p, const char *out[3])
{
    out[0] = p->dir;
    out[1] = p->fifo;
    out[2] = "/dev/null";
}

static void expect_refused(int rc, const clv_err *err, const char *path, const char *kind, const char *reader)
{
    cr_expect_neq(rc, 0, "%s accepts %s", reader, path);
    cr_expect(strstr(err->msg, path) && strstr(err->msg, kind), "%s on %s: %s", reader, kind, err->msg);
}

Test(input_file, only_regular_files_are_opened, .timeout = 20)
{
    places p;
    make_places(&p);
    const char *paths[3];
    paths_of(&p, paths);
    clv_err err = {{0}};
    cr_expect_eq(clv_input_check(p.file, &err), 0, "%s", err.msg);
    FILE *f = clv_input_fopen(p.file, &err);
    cr_assert_not_null(f, "%s", err.msg);
    fclose(f);
    cr_expect_eq(clv_input_check("/nonexistent/x", &err), -1);
    cr_expect(strstr(err.msg, "/nonexistent/x") && strstr(err.msg, "No such file"), "%s", err.msg);
    for (int k = 0; k < 3; k++) {
        expect_refused(clv_input_check(paths[k], &err), &err, paths[k], kinds[k], "clv_input_check");
        expect_refused(clv_input_open(paths[k], &err) < 0 ? -1 : 0, &err, paths[k], kinds[k], "clv_input_open");
    }
    tmp_tree_remove(p.root);
}

Test(input_file, every_reader_refuses_what_is_not_a_file, .timeout = 20)
{
    places p;
    make_places(&p);
    const char *paths[3];
    paths_of(&p, paths);
    clv_err err = {{0}};
    clv_config c;
    clv_config_defaults(&c);
    cr_assert_eq(clv_config_load_ini(&c, p.file, &err), 0, "a config file reads: %s", err.msg);
    cr_expect_eq(c.epochs, 3);
    for (int k = 0; k < 3; k++) {
        const char *path = paths[k];
        expect_refused(clv_config_load_ini(&c, path, &err), &err, path, kinds[k], "--config");
        clv_safetensors st;
        expect_refused(clv_st_open(&st, path, &err), &err, path, kinds[k], "safetensors");
        uint8_t *px = NULL;
        int h, w, ch;
        expect_refused(clv_image_read(path, &px, &h, &w, &ch, &err), &err, path, kinds[k], "images");
        clv_dataset *ds = NULL;
        expect_refused(clv_idx_open(path, p.file, "idx", &ds, &err), &err, path, kinds[k], "IDX");
        const char *cifar[1] = {path};
        expect_refused(clv_cifar_open(cifar, 1, 0, "cifar", &ds, &err), &err, path, kinds[k], "CIFAR");
    }
    /* run.json of a run directory */
    char run[128], json[160];
    snprintf(run, sizeof run, "%s/run", p.root);
    snprintf(json, sizeof json, "%s/run.json", run);
    cr_assert_eq(mkdir(run, 0700), 0);
    cr_assert_eq(mkfifo(json, 0600), 0);
    clv_run_record rec;
    clv_config saved;
    expect_refused(clv_run_record_read(&rec, &saved, run, &err), &err, json, "a FIFO", "run.json");
    tmp_tree_remove(p.root);
}
