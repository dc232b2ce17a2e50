/* Image folders and the Visual Decathlon on small trees in their real
 * layouts (tools/make_data_fixtures.py): classes, labels, decoded pixels,
 * task splits (one task per decathlon domain), batches through the loader,
 * and clear errors for a missing class folder, a corrupt image, a missing
 * file and broken JSON. */
#include <criterion/criterion.h>

#include "clvit/data.h"
#include "clvit/tasks.h"
#include "tmp_tree.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <limits.h>
#include <stdio.h>

#define FIX "tests/fixtures/data"

static uint8_t px[64 * 64 * 3];

Test(imagefolder, classes_labels_and_pixels)
{
    clv_dataset *tr, *va;
    clv_err err = {{0}};
    cr_assert_eq(clv_dataset_open_pair("imagefolder", FIX "/imagefolder", &tr, &va, &err), 0, "%s", err.msg);
    cr_expect_eq(tr->num_classes, 3);
    cr_expect_eq(va->num_classes, 3);
    cr_assert(tr->n_class_names == 3 && va->n_class_names == 3, "a class is named after its folder");
    cr_expect(!strcmp(tr->class_names[0], "ant") && !strcmp(tr->class_names[2], "cat") &&
              !strcmp(va->class_names[1], "bee"));
    cr_assert_eq(tr->n, 8, "2 ant + 3 bee (one JPEG) + 3 cat (one gray); notes.txt is not an image");
    cr_expect_eq(va->n, 3);
    const int32_t want[8] = {0, 0, 1, 1, 1, 2, 2, 2};
    for (int i = 0; i < 8; i++)
        cr_expect_eq(tr->labels[i], want[i], "label of image %d", i);
    cr_expect_eq(tr->channels, 3);
    int h, w;
    cr_assert_eq(tr->ops->get(tr, 0, px, sizeof px, &h, &w, &err), 0, "%s", err.msg);
    cr_expect(h == 3 && w == 4, "ant/0.png is 4x3, got %dx%d", w, h);
    /* pixel (0, 1): (0 * 37 + 0 * 11 + 1 * 5 + c * 60) % 256 */
    cr_expect(px[3] == 5 && px[4] == 65 && px[5] == 125, "%d %d %d", px[3], px[4], px[5]);
    cr_assert_eq(tr->ops->get(tr, 7, px, sizeof px, &h, &w, &err), 0, "%s", err.msg);
    cr_expect(h == 2 && w == 2 && px[9] == 150 && px[10] == 150 && px[11] == 150, "gray replicated to RGB");
    cr_assert_eq(tr->ops->get(tr, 4, px, sizeof px, &h, &w, &err), 0, "the JPEG: %s", err.msg);
    cr_expect(h == 16 && w == 16);
    cr_expect_neq(tr->ops->get(tr, 0, px, 10, &h, &w, &err), 0, "a buffer too small is an error, not an overflow");
    clv_dataset_free(tr);
    clv_dataset_free(va);
}

Test(imagefolder, a_batch_through_the_task_split_and_loader)
{
    clv_dataset *tr, *va;
    clv_err err = {{0}};
    cr_assert_eq(clv_dataset_open_pair("imagefolder", FIX "/imagefolder", &tr, &va, &err), 0, "%s", err.msg);
    clv_task_split split;
    cr_assert_neq(clv_task_split_make(&split, tr, va, 2, 0, 1, &err), 0, "3 classes do not split into 2 tasks");
    cr_assert_eq(clv_task_split_make(&split, tr, va, 3, 0, 1, &err), 0, "%s", err.msg);
    const clv_task_info *t = &split.tasks[1];
    cr_expect_eq(t->n_train, 3);
    clv_loader_config lc = clv_loader_defaults();
    lc.dataset = tr;
    lc.indices = t->train_indices;
    lc.labels = t->train_labels;
    lc.count = t->n_train;
    lc.batch = 3;
    lc.out_c = 3, lc.out_h = 8, lc.out_w = 8;
    clv_loader *ld = clv_loader_start(&lc, &err);
    cr_assert(ld, "%s", err.msg);
    clv_batch b;
    cr_assert_eq(clv_loader_next(ld, &b, &err), 1, "%s", err.msg);
    cr_expect_eq(b.size, 3);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(b.y[i], 0, "task-local label");
    clv_loader_stop(ld);
    clv_task_split_free(&split);
    clv_dataset_free(tr);
    clv_dataset_free(va);
}

Test(imagefolder, clear_errors)
{
    clv_dataset *tr, *va;
    clv_err err = {{0}};
    cr_assert_neq(clv_dataset_open_pair("imagefolder", FIX "/imagefolder_missing", &tr, &va, &err), 0);
    cr_expect(strstr(err.msg, "val") && strstr(err.msg, "'bee'"), "%s", err.msg);
    cr_assert_neq(clv_dataset_open_pair("imagefolder", FIX "/no_such_dir", &tr, &va, &err), 0);
    cr_expect(strstr(err.msg, "no_such_dir") && strstr(err.msg, "train/"), "%s", err.msg);
    /* corrupt images are found when read (decoding is lazy), naming the file */
    cr_assert_eq(clv_dataset_open_pair("imagefolder", FIX "/imagefolder_corrupt", &tr, &va, &err), 0, "%s", err.msg);
    int h, w;
    cr_expect_neq(tr->ops->get(tr, 0, px, sizeof px, &h, &w, &err), 0);
    cr_expect(strstr(err.msg, "imagefolder_corrupt/train/ant/0.jpg") != NULL, "%s", err.msg);
    clv_dataset_free(tr);
    clv_dataset_free(va);
}

Test(decathlon, domains_are_tasks)
{
    clv_dataset *tr, *va;
    clv_err err = {{0}};
    cr_assert_eq(clv_decathlon_open(FIX "/decathlon", "alpha,beta", &tr, &va, &err), 0, "%s", err.msg);
    cr_expect_eq(tr->num_classes, 3, "alpha's two categories, then beta's one");
    cr_expect_eq(tr->n_groups, 2);
    cr_expect(tr->class_group[0] == 0 && tr->class_group[1] == 0 && tr->class_group[2] == 1);
    /* class names: "domain/category name", in label order (ids 10001 "one", 10002 "two"; beta's "only") */
    static const char *const names[3] = {"alpha/one", "alpha/two", "beta/only"};
    cr_assert_eq(tr->n_class_names, 3);
    cr_assert_eq(va->n_class_names, 3);
    for (int c = 0; c < 3; c++) {
        cr_expect_str_eq(tr->class_names[c], names[c]);
        cr_expect_str_eq(va->class_names[c], names[c]);
    }
    cr_assert_eq(tr->n, 6);
    cr_assert_eq(va->n, 4);
    /* alpha's categories in id order: 10001 -> 0, 10002 -> 1; its images are 10002, 10001, 10002 */
    const int32_t want[6] = {1, 0, 1, 2, 2, 2};
    for (int i = 0; i < 6; i++)
        cr_expect_eq(tr->labels[i], want[i], "label of image %d", i);
    int h, w;
    cr_assert_eq(tr->ops->get(tr, 3, px, sizeof px, &h, &w, &err), 0, "%s", err.msg);
    cr_expect(h == 4 && w == 6);

    clv_task_split split;
    cr_assert_neq(clv_task_split_make(&split, tr, va, 3, 0, 1, &err), 0);
    cr_expect(strstr(err.msg, "2 domains") != NULL, "%s", err.msg);
    cr_assert_eq(clv_task_split_make(&split, tr, va, 2, 0, 1, &err), 0, "%s", err.msg);
    cr_expect_eq(split.tasks[0].n_classes, 2);
    cr_expect_eq(split.tasks[1].n_classes, 1, "each domain keeps its own class count");
    cr_expect_eq(split.tasks[1].classes[0], 2);
    cr_expect_eq(split.tasks[1].n_train, 3);
    for (int64_t i = 0; i < split.tasks[1].n_train; i++)
        cr_expect_eq(split.tasks[1].train_labels[i], 0);
    cr_expect_eq(split.tasks[0].n_test, 2);
    clv_task_split_free(&split);
    clv_dataset_free(tr);
    clv_dataset_free(va);
}

Test(decathlon, clear_errors)
{
    clv_dataset *tr, *va;
    clv_err err = {{0}};
    cr_assert_neq(clv_decathlon_open(FIX "/decathlon", "alpha,gone", &tr, &va, &err), 0);
    cr_expect(strstr(err.msg, "data/gone/train/0000001.png") && strstr(err.msg, "does not exist"), "%s", err.msg);
    cr_assert_neq(clv_decathlon_open(FIX "/decathlon", "broken", &tr, &va, &err), 0);
    cr_expect(strstr(err.msg, "broken_train.json") && strstr(err.msg, "JSON"), "%s", err.msg);
    cr_assert_neq(clv_decathlon_open(FIX "/decathlon", "nosuch", &tr, &va, &err), 0);
    cr_expect(strstr(err.msg, "nosuch_train.json") != NULL, "%s", err.msg);
    cr_assert_neq(clv_decathlon_open(FIX "/decathlon", " , ", &tr, &va, &err), 0);
    cr_expect(strstr(err.msg, "no domains") != NULL, "%s", err.msg);
}

/* Once a double free (the ids freed, printed, then freed again by the caller). */
Test(decathlon, category_without_or_with_repeated_id)
{
    clv_dataset *tr, *va;
    clv_err err = {{0}};
    cr_assert_neq(clv_decathlon_open(FIX "/decathlon", "noid", &tr, &va, &err), 0);
    cr_expect(strstr(err.msg, "noid_train.json") && strstr(err.msg, "category 1 has no numeric \"id\""), "%s",
              err.msg);
    cr_assert_neq(clv_decathlon_open(FIX "/decathlon", "alpha,dupid", &tr, &va, &err), 0);
    cr_expect(strstr(err.msg, "dupid_train.json") && strstr(err.msg, "category id 7 appears twice"), "%s", err.msg);
}

Test(decathlon, file_names_stay_inside_the_root)
{
    clv_dataset *tr, *va;
    clv_err err = {{0}};
    cr_assert_neq(clv_decathlon_open(FIX "/decathlon", "escape", &tr, &va, &err), 0, "../ read outside the root");
    cr_expect(strstr(err.msg, "../imagefolder/train/ant/0.png") && strstr(err.msg, "leaves the data root"), "%s",
              err.msg);
    cr_assert_neq(clv_decathlon_open(FIX "/decathlon", "absolute", &tr, &va, &err), 0);
    cr_expect(strstr(err.msg, "/etc/passwd") && strstr(err.msg, "leaves the data root"), "%s", err.msg);

    /* a link inside the tree that points outside it */
    char root[] = "/tmp/clvit-dec-XXXXXX", path[256], target[PATH_MAX];
    cr_assert_not_null(mkdtemp(root));
    snprintf(path, sizeof path, "%s/annotations", root);
    cr_assert_eq(mkdir(path, 0700), 0);
    cr_assert_not_null(realpath(FIX "/decathlon/data/alpha/train/0000000.png", target));
    snprintf(path, sizeof path, "%s/outside.png", root);
    cr_assert_eq(symlink(target, path), 0);
    const char *doc = "{\"images\": [{\"id\": 1, \"file_name\": \"outside.png\"}], \"annotations\": [{\"id\": 1, "
                      "\"image_id\": 1, \"category_id\": 7}], \"categories\": [{\"id\": 7, \"name\": \"x\"}]}";
    for (int split = 0; split < 2; split++) {
        snprintf(path, sizeof path, "%s/annotations/link_%s.json", root, split ? "val" : "train");
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(doc, f);
        fclose(f);
    }
    cr_expect_neq(clv_decathlon_open(root, "link", &tr, &va, &err), 0, "a link to outside the root is refused");
    cr_expect(strstr(err.msg, "outside.png") && strstr(err.msg, "outside the data root"), "%s", err.msg);
    tmp_tree_remove(root);
}

/* ---- photographs: 0.875 center crop for evaluation, random resized crop for training ---- */

Test(imagefolder, crop_boxes)
{
    clv_crop_box b = clv_center_crop_box(300, 400, 224, 224, 0.875);
    cr_expect(fabs(b.h - 262.5) < 1e-9 && fabs(b.w - 262.5) < 1e-9, "the shorter side x 0.875");
    cr_expect(fabs(b.y - 18.75) < 1e-9 && fabs(b.x - 68.75) < 1e-9, "centered");
    int differ = 0;
    for (int64_t pos = 0; pos < 300; pos++) {
        clv_crop_box r = clv_random_resized_crop_box(120, 200, 77, pos), again = clv_random_resized_crop_box(120, 200, 77, pos);
        cr_assert(r.y == again.y && r.x == again.x && r.h == again.h && r.w == again.w, "a function of key and position");
        cr_assert(r.y >= 0 && r.x >= 0 && r.y + r.h <= 120 && r.x + r.w <= 200, "inside the image");
        const double area = r.h * r.w / (120.0 * 200.0), ratio = r.w / r.h;
        cr_assert(area >= 0.08 - 0.01 && area <= 1.0, "area fraction %g", area);
        cr_assert(ratio >= 0.75 - 0.02 && ratio <= 4.0 / 3.0 + 0.02, "aspect ratio %g", ratio);
        clv_crop_box n = clv_random_resized_crop_box(120, 200, 77, pos + 1);
        differ += n.y != r.y || n.x != r.x || n.h != r.h;
    }
    cr_expect_gt(differ, 250, "positions draw different boxes");
    /* a sliver: after 10 failed attempts, the central crop of the nearest allowed ratio */
    clv_crop_box f = clv_random_resized_crop_box(1, 100, 5, 0);
    cr_expect(f.h == 1 && f.w <= 2, "1 x 100 falls back to 1 x %g", f.w);
}

Test(imagefolder, present_crop_is_exact_on_whole_pixels)
{
    uint8_t img[4 * 4];
    for (int i = 0; i < 16; i++)
        img[i] = (uint8_t)(10 * i);
    clv_present pr = {1, 2, 2, 0, {0, 0, 0}, {1.0f / 255.0f, 1, 1}}; /* values stay in 0..255 */
    float out[4];
    clv_err err = {{0}};
    clv_crop_box box = {1, 1, 2, 2};
    cr_assert_eq(clv_present_crop(&pr, img, 4, 4, 1, &box, out, &err), 0, "%s", err.msg);
    cr_expect(fabsf(out[0] - 50) < 1e-4 && fabsf(out[1] - 60) < 1e-4 && fabsf(out[2] - 90) < 1e-4 &&
                  fabsf(out[3] - 100) < 1e-4,
              "%g %g %g %g", out[0], out[1], out[2], out[3]);
    /* the 4x4 box to 2x2: each output samples between 4 pixels (half-pixel centers) */
    box = (clv_crop_box){0, 0, 4, 4};
    cr_assert_eq(clv_present_crop(&pr, img, 4, 4, 1, &box, out, &err), 0, "%s", err.msg);
    cr_expect(fabsf(out[0] - (0 + 10 + 40 + 50) / 4.0f) < 1e-3, "%g", out[0]);
    box = (clv_crop_box){2, 2, 3, 3};
    cr_expect_neq(clv_present_crop(&pr, img, 4, 4, 1, &box, out, &err), 0, "a box outside the image");
}
