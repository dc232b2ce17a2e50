/* Image folders and the Visual Decathlon on small trees in their real
 * layouts (tools/make_data_fixtures.py): classes, labels, decoded pixels,
 * task splits (one task per decathlon domain), batches through the loader,
 * and clear errors for a missing class folder, a corrupt image, a missing
 * file and broken JSON. */
#include <criterion/criterion.h>

#include "clvit/data.h"
#include "clvit/tasks.h"

#include <stdlib.h>
#include <string.h>

#define FIX "tests/fixtures/data"

static uint8_t px[64 * 64 * 3];

Test(imagefolder, classes_labels_and_pixels)
{
    clv_dataset *tr, *va;
    clv_err err = {{0}};
    cr_assert_eq(clv_dataset_open_pair("imagefolder", FIX "/imagefolder", &tr, &va, &err), 0, "%s", err.msg);
    cr_expect_eq(tr->num_classes, 3);
    cr_expect_eq(va->num_classes, 3);
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
