/* Inputs the fuzzers found (fuzz/, docs/fuzzing.md), one test each: the
 * reader must refuse the input with a message that names what is wrong,
 * never crash. The inputs are in tests/fixtures/fuzz/ (the harness's name
 * first) and in the harness's seed corpus, so fuzzing retries them too.
 * Undefined behaviour that a plain build survives by luck (a NULL handed to
 * qsort) fails these tests in the sanitizer build: make SANITIZE=address,undefined. */
#include <criterion/criterion.h>

#include "clvit/data.h"
#include "clvit/run_record.h"
#include "tmp_tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* fuzz/corpus/imagefolder/crash-empty-train: train/ holds no class folder
 * (and val/ one): list() handed qsort the NULL array of an empty folder. The
 * same for a class folder without images. */
Test(fuzz_found, imagefolder_with_an_empty_folder)
{
    char root[64] = "/tmp/clvit-fuzz-found-XXXXXX", path[128];
    cr_assert(mkdtemp(root));
    const char *dirs[] = {"train", "val", "val/ant"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", root, dirs[i]);
        cr_assert_eq(mkdir(path, 0700), 0);
    }
    clv_dataset *tr, *va;
    clv_err err = {{0}};
    cr_assert_eq(clv_imagefolder_open(root, &tr, &va, &err), -1);
    cr_expect(strstr(err.msg, "no class folders"), "%s", err.msg);
    snprintf(path, sizeof path, "%s/train/ant", root);
    cr_assert_eq(mkdir(path, 0700), 0);
    cr_assert_eq(clv_imagefolder_open(root, &tr, &va, &err), -1);
    cr_expect(strstr(err.msg, "no JPEG or PNG images in class folder ant"), "%s", err.msg);
    tmp_tree_remove(root);
}

/* run.json numbers that become integers (tests/fixtures/fuzz/run_json/<case>/,
 * a real run's file with one number changed; also in fuzz/corpus/run_json/):
 * converting 1e30 to int64_t or int is undefined behaviour (UBSan:
 * "outside the range of representable values"), so each is refused, naming
 * the field. */
Test(fuzz_found, run_json_numbers_out_of_integer_range)
{
    static const struct {
        const char *dir, *says;
    } cases[] = {
        {"base_bits_1e30", "base_bits"},
        {"class_1e30", "task 1: class 1"},
        {"train_images_-1e300", "task 2: train_images"},
        {"rank_cap_1e30", "rank_caps"},
        {"storage_bits_1e300", "task 3: storage_bits"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char dir[256];
        snprintf(dir, sizeof dir, "tests/fixtures/fuzz/run_json/%s", cases[i].dir);
        clv_run_record r;
        clv_config cfg;
        clv_err err = {{0}};
        cr_assert_eq(clv_run_record_read(&r, &cfg, dir, &err), -1, "%s was accepted", dir);
        cr_expect(strstr(err.msg, cases[i].says) && strstr(err.msg, dir), "%s: %s", dir, err.msg);
    }
}
