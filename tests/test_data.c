/* Data: readers on files in the official formats (tools/make_data_fixtures.py
 * writes them from formulas repeated here), bad files rejected naming them,
 * presentation, augmentation, the loader and task splits. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/data.h"
#include "clvit/tasks.h"

#define FIX "tests/fixtures/data/"

static int idx_pixel(int n, int y, int x) { return (n * 31 + y * 7 + x * 3) % 256; }
static int cifar_pixel(int r, int c, int p) { return (r * 17 + c * 85 + p) % 256; }

Test(data, idx_gz_and_plain_read_exactly)
{
    clv_dataset *train, *test;
    clv_err err = {{0}};
    cr_assert_eq(clv_dataset_open_pair("mnist", FIX "idx", &train, &test, &err), 0, "%s", err.msg);
    cr_assert_eq(train->n, 20);
    cr_assert_eq(test->n, 10);
    cr_assert(train->height == 28 && train->width == 28 && train->channels == 1);
    cr_assert_eq(train->num_classes, 10);
    cr_assert(train->n_class_names == 10 && !strcmp(train->class_names[7], "7"), "MNIST's classes are digits");
    uint8_t px[28 * 28];
    int h, w;
    for (int n = 0; n < 20; n += 7) {
        cr_assert_eq(train->ops->get(train, n, px, sizeof px, &h, &w, &err), 0, "%s", err.msg);
        cr_assert_eq(train->labels[n], n % 10);
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++)
                cr_assert_eq(px[y * 28 + x], idx_pixel(n, y, x), "train %d (%d,%d)", n, y, x);
    }
    cr_assert_eq(test->ops->get(test, 9, px, sizeof px, &h, &w, &err), 0, "%s", err.msg);
    cr_assert_eq(px[27 * 28 + 27], idx_pixel(9, 27, 27));
    cr_assert_eq(train->ops->get(train, 20, px, sizeof px, &h, &w, &err), -1, "out of range");
    cr_assert_eq(clv_dataset_flip_ok(train), 0, "digits are not flipped");
    clv_dataset_free(train);
    clv_dataset_free(test);
}

Test(data, idx_bad_files_are_named)
{
    clv_dataset *ds = NULL;
    clv_err err = {{0}};
    struct {
        const char *images, *labels, *needle;
    } cases[] = {
        {FIX "idx/bad_magic-idx3-ubyte", FIX "idx/t10k-labels-idx1-ubyte", "magic"},
        {FIX "idx/truncated-idx3-ubyte.gz", FIX "idx/t10k-labels-idx1-ubyte", "truncated"},
        {FIX "idx/train-images-idx3-ubyte.gz", FIX "idx/short-labels-idx1-ubyte", "19 labels for 20 images"},
        {FIX "idx/missing-idx3-ubyte", FIX "idx/t10k-labels-idx1-ubyte", "cannot open"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(clv_idx_open(cases[i].images, cases[i].labels, "x", &ds, &err), -1, "%s", cases[i].images);
        cr_assert(strstr(err.msg, "idx/"), "names the file: %s", err.msg);
        cr_assert(strstr(err.msg, cases[i].needle), "says what is wrong (%s): %s", cases[i].needle, err.msg);
    }
    cr_assert_eq(clv_dataset_open_pair("fashion-mnist", "/nonexistent/dir", &ds, &ds, &err), -1);
    cr_assert(strstr(err.msg, "/nonexistent/dir") && strstr(err.msg, "train-images-idx3-ubyte"), "%s", err.msg);
    cr_assert_eq(clv_dataset_open_pair("cifar100", NULL, &ds, &ds, &err), -1);
    cr_assert(strstr(err.msg, "--data-root"), "%s", err.msg);
    cr_assert_eq(clv_dataset_open_pair("imagenet-21k", NULL, &ds, &ds, &err), -1);
    cr_assert(strstr(err.msg, "unknown dataset"), "%s", err.msg);
}

Test(data, cifar_binary_read_exactly)
{
    clv_dataset *train, *test;
    clv_err err = {{0}};
    cr_assert_eq(clv_dataset_open_pair("cifar10", FIX "cifar10", &train, &test, &err), 0, "%s", err.msg);
    cr_assert_eq(train->n, 5, "one record in each of the 5 batch files");
    cr_assert_eq(test->n, 2);
    cr_assert(train->channels == 3 && train->height == 32 && train->num_classes == 10);
    cr_assert(train->n_class_names == 10 && !strcmp(train->class_names[0], "airplane") &&
                  !strcmp(test->class_names[9], "truck"),
              "CIFAR-10's class names");
    uint8_t px[32 * 32 * 3];
    int h, w;
    for (int r = 0; r < 5; r++) {
        cr_assert_eq(train->ops->get(train, r, px, sizeof px, &h, &w, &err), 0, "%s", err.msg);
        cr_assert_eq(train->labels[r], r % 10);
        for (int p = 0; p < 1024; p += 97)
            for (int c = 0; c < 3; c++)
                cr_assert_eq(px[p * 3 + c], cifar_pixel(r, c, p), "record %d pixel %d channel %d (HWC)", r, p, c);
    }
    clv_dataset_free(train);
    clv_dataset_free(test);

    cr_assert_eq(clv_dataset_open_pair("cifar100", FIX "cifar100", &train, &test, &err), 0, "%s", err.msg);
    cr_assert(train->n == 2 && test->n == 1 && train->num_classes == 100);
    cr_assert_eq(train->labels[1], 7, "the fine label");
    cr_assert_eq(train->ops->get(train, 1, px, sizeof px, &h, &w, &err), 0, "%s", err.msg);
    cr_assert_eq(px[5 * 3 + 2], cifar_pixel(1, 2, 5));
    clv_dataset_free(train);
    clv_dataset_free(test);

    const char *bad[1] = {FIX "cifar10_bad/data_batch_1.bin"};
    clv_dataset *ds;
    cr_assert_eq(clv_cifar_open(bad, 1, 0, "bad", &ds, &err), -1);
    cr_assert(strstr(err.msg, "cifar10_bad/data_batch_1.bin") && strstr(err.msg, "record"), "%s", err.msg);
}

Test(data, real_fashion_mnist, .timeout = 60)
{
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK))
        cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    clv_dataset *train, *test;
    clv_err err = {{0}};
    cr_assert_eq(clv_dataset_open_pair("fashion-mnist", NULL, &train, &test, &err), 0, "%s", err.msg);
    cr_assert_eq(train->n, 60000);
    cr_assert_eq(test->n, 10000);
    cr_assert_eq(train->num_classes, 10);
    int count[10] = {0};
    for (int64_t i = 0; i < test->n; i++)
        count[test->labels[i]]++;
    for (int c = 0; c < 10; c++)
        cr_assert_eq(count[c], 1000, "class %d", c);
    cr_assert_eq(clv_dataset_flip_ok(train), 1);
    clv_dataset_free(train);
    clv_dataset_free(test);
}

/* ---- presentation ---- */

Test(data, gray_28_padded_to_rgb_32)
{
    uint8_t px[28 * 28];
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++)
            px[y * 28 + x] = (uint8_t)idx_pixel(3, y, x);
    clv_present pr = {3, 32, 32, 0, {0.1f, 0.2f, 0.3f}, {0.5f, 0.25f, 0.125f}};
    static float out[3 * 32 * 32];
    clv_err err = {{0}};
    cr_assert_eq(clv_present_image(&pr, px, 28, 28, 1, out, &err), 0, "%s", err.msg);
    for (int c = 0; c < 3; c++) {
        float pad = (0 - pr.mean[c]) / pr.std[c];
        cr_assert_float_eq(out[c * 1024 + 0], pad, 1e-6, "corner is padding");
        cr_assert_float_eq(out[c * 1024 + 1 * 32 + 31], pad, 1e-6);
        for (int y = 0; y < 28; y += 5)
            for (int x = 0; x < 28; x += 3) {
                float want = (idx_pixel(3, y, x) / 255.0f - pr.mean[c]) / pr.std[c];
                cr_assert_float_eq(out[c * 1024 + (y + 2) * 32 + x + 2], want, 1e-5, "c %d (%d,%d)", c, y, x);
            }
    }
}

Test(data, resize_is_bilinear_with_half_pixel_centers)
{
    /* 2x2 -> 4x4 (fit resize): torch.nn.functional.interpolate(bilinear, align_corners=False)
     * of the row [0, 100] is [0, 25, 75, 100] */
    const uint8_t px[4] = {0, 100, 0, 100};
    clv_present pr = {1, 4, 4, 1, {0}, {1.0f / 255, 1, 1}};
    float out[16];
    clv_err err = {{0}};
    cr_assert_eq(clv_present_image(&pr, px, 2, 2, 1, out, &err), 0, "%s", err.msg);
    const float want[4] = {0, 25, 75, 100};
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            cr_assert_float_eq(out[y * 4 + x], want[x], 1e-4, "(%d,%d) %f", y, x, out[y * 4 + x]);
    /* a larger image: shorter side to the target, center crop; a constant stays constant */
    static uint8_t big[40 * 64 * 3];
    memset(big, 51, sizeof big);
    clv_present p3 = {3, 32, 32, 0, {0, 0, 0}, {1, 1, 1}};
    static float o3[3 * 32 * 32];
    cr_assert_eq(clv_present_image(&p3, big, 40, 64, 3, o3, &err), 0, "%s", err.msg);
    for (int i = 0; i < 3 * 32 * 32; i += 37)
        cr_assert_float_eq(o3[i], 0.2f, 1e-6);
}

/* ---- loader ---- */

static clv_dataset *fixture_train(void)
{
    clv_dataset *train, *test;
    clv_err err = {{0}};
    cr_assert_eq(clv_dataset_open_pair("fashion-mnist", FIX "idx", &train, &test, &err), 0, "%s", err.msg);
    clv_dataset_free(test);
    return train;
}

static clv_loader_config loader_cfg(const clv_dataset *ds, int64_t *idx, int32_t *lab)
{
    for (int i = 0; i < 20; i++) {
        idx[i] = i;
        lab[i] = ds->labels[i];
    }
    clv_loader_config c = clv_loader_defaults();
    c.dataset = ds;
    c.indices = idx;
    c.labels = lab;
    c.count = 20;
    c.batch = 6;
    c.seed = 11;
    c.out_c = 3;
    c.out_h = c.out_w = 32;
    for (int k = 0; k < 3; k++)
        c.mean[k] = 0.5f, c.std[k] = 0.5f;
    return c;
}

/* All images of an epoch, in order, and their labels. */
static int64_t epoch_images(const clv_loader_config *c, float *x, int32_t *y)
{
    clv_err err = {{0}};
    clv_loader *ld = clv_loader_start(c, &err);
    cr_assert_not_null(ld, "%s", err.msg);
    clv_batch b;
    int64_t n = 0, per = 3 * 32 * 32;
    int rc;
    while ((rc = clv_loader_next(ld, &b, &err)) == 1) {
        cr_assert_eq(b.first, c->skip_batches * c->batch + n);
        memcpy(x + n * per, b.x, (size_t)(b.size * per) * sizeof(float));
        memcpy(y + n, b.y, (size_t)b.size * sizeof(int32_t));
        n += b.size;
    }
    cr_assert_eq(rc, 0, "%s", err.msg);
    clv_loader_stop(ld);
    return n;
}

Test(data, loader_yields_every_sample_once_as_presented)
{
    clv_dataset *ds = fixture_train();
    int64_t idx[20];
    int32_t lab[20];
    clv_loader_config c = loader_cfg(ds, idx, lab);
    c.shuffle = 1;
    static float x[20 * 3 * 32 * 32], ref[3 * 32 * 32];
    int32_t y[20];
    cr_assert_eq(epoch_images(&c, x, y), 20, "no drop_last: a last partial batch");
    /* each delivered image is the presentation of exactly one sample, with its label */
    int seen[20] = {0};
    clv_present pr = {3, 32, 32, 0, {0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}};
    uint8_t px[28 * 28];
    clv_err err = {{0}};
    int moved = 0;
    for (int k = 0; k < 20; k++) {
        int h, w, found = -1;
        for (int s = 0; s < 20 && found < 0; s++) {
            ds->ops->get(ds, s, px, sizeof px, &h, &w, &err);
            clv_present_image(&pr, px, 28, 28, 1, ref, &err);
            if (!memcmp(ref, x + k * 3072, sizeof ref))
                found = s;
        }
        cr_assert_geq(found, 0, "position %d is a presented sample", k);
        cr_assert_eq(y[k], lab[found]);
        seen[found]++;
        moved += found != k;
    }
    for (int s = 0; s < 20; s++)
        cr_assert_eq(seen[s], 1, "sample %d once", s);
    cr_assert_gt(moved, 0, "shuffled");
    c.drop_last = 1;
    cr_assert_eq(epoch_images(&c, x, y), 18, "drop_last drops the partial batch");
    clv_dataset_free(ds);
}

Test(data, augmentation_is_deterministic_and_resumable)
{
    clv_dataset *ds = fixture_train();
    int64_t idx[20];
    int32_t lab[20];
    clv_loader_config c = loader_cfg(ds, idx, lab);
    c.shuffle = 1;
    c.augment = 1;
    c.flip = 1;
    static float a[20 * 3072], b[20 * 3072], plain[20 * 3072];
    int32_t ya[20], yb[20];
    epoch_images(&c, a, ya);
    epoch_images(&c, b, yb);
    cr_assert_eq(memcmp(a, b, sizeof a), 0, "same seed and epoch: same batches");
    c.skip_batches = 2; /* resume at the third batch: the same tail */
    int64_t n = epoch_images(&c, b, yb);
    cr_assert_eq(n, 8);
    cr_assert_eq(memcmp(a + 12 * 3072, b, (size_t)n * 3072 * sizeof(float)), 0, "a resumed epoch reproduces");
    c.skip_batches = 0;
    c.epoch = 1;
    epoch_images(&c, b, yb);
    cr_assert_neq(memcmp(a, b, sizeof a), 0, "another epoch differs");
    c.epoch = 0;
    c.augment = 0;
    epoch_images(&c, plain, yb);
    cr_assert_neq(memcmp(a, plain, sizeof a), 0, "augmentation changes images");
    cr_assert_eq(memcmp(ya, yb, sizeof ya), 0, "but not the order or labels");
    clv_dataset_free(ds);
}

/* ---- task splits ---- */

Test(data, task_split_is_disjoint_and_complete)
{
    clv_dataset *train, *test;
    clv_err err = {{0}};
    cr_assert_eq(clv_dataset_open_pair("mnist", FIX "idx", &train, &test, &err), 0, "%s", err.msg);
    clv_task_split s, s2;
    cr_assert_eq(clv_task_split_make(&s, train, test, 5, 0, 3, &err), 0, "%s", err.msg);
    int owner[10];
    memset(owner, -1, sizeof owner);
    for (int t = 0; t < 5; t++) {
        const clv_task_info *ti = &s.tasks[t];
        cr_assert_eq(ti->n_classes, 2);
        cr_assert_eq(ti->classes[0], 2 * t, "natural order");
        cr_assert_eq(ti->n_train, 4, "20 images, labels n %% 10: 2 per class");
        cr_assert_eq(ti->n_test, 2);
        for (int k = 0; k < 2; k++) {
            cr_assert_eq(owner[ti->classes[k]], -1);
            owner[ti->classes[k]] = t;
        }
        for (int64_t i = 0; i < ti->n_train; i++)
            cr_assert_eq(ti->classes[ti->train_labels[i]], train->labels[ti->train_indices[i]], "local labels");
    }
    clv_task_split_free(&s);
    cr_assert_eq(clv_task_split_make(&s, train, test, 5, 1, 3, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_task_split_make(&s2, train, test, 5, 1, 3, &err), 0, "%s", err.msg);
    int differs = 0;
    for (int t = 0; t < 5; t++)
        for (int k = 0; k < 2; k++) {
            cr_assert_eq(s.tasks[t].classes[k], s2.tasks[t].classes[k], "same seed, same order");
            differs |= s.tasks[t].classes[k] != 2 * t + k;
        }
    cr_assert(differs, "shuffled");
    clv_task_split_free(&s);
    clv_task_split_free(&s2);
    cr_assert_eq(clv_task_split_make(&s, train, test, 3, 0, 3, &err), -1);
    cr_assert(strstr(err.msg, "cannot be split into 3"), "%s", err.msg);
    cr_assert_eq(clv_task_split_make(&s, train, test, 0, 0, 3, &err), -1);
    clv_dataset_free(train);
    clv_dataset_free(test);
}

Test(data, empty_task_is_an_error)
{
    clv_dataset *train, *test;
    clv_err err = {{0}};
    /* the CIFAR-10 fixture's test set has labels 0 and 1 only */
    cr_assert_eq(clv_dataset_open_pair("cifar10", FIX "cifar10", &train, &test, &err), 0, "%s", err.msg);
    clv_task_split s;
    cr_assert_eq(clv_task_split_make(&s, train, test, 5, 0, 0, &err), -1);
    cr_assert(strstr(err.msg, "task") && strstr(err.msg, "no"), "%s", err.msg);
    clv_dataset_free(train);
    clv_dataset_free(test);
}

/* ---- image files ---- */

static void read_ok(const char *name, int eh, int ew, int ec, const uint8_t *want)
{
    uint8_t *px = NULL;
    int h, w, c;
    clv_err err = {{0}};
    char path[256];
    snprintf(path, sizeof path, FIX "img/%s", name);
    cr_assert_eq(clv_image_read(path, &px, &h, &w, &c, &err), 0, "%s", err.msg);
    cr_assert(h == eh && w == ew && c == ec, "%s: %dx%dx%d", name, h, w, c);
    for (int i = 0; want && i < h * w * c; i++)
        cr_assert_eq(px[i], want[i], "%s byte %d: %d, expected %d", name, i, px[i], want[i]);
    clv_free(px);
}

Test(data, png_variants_decode_exactly)
{
    uint8_t gray[20], rgb[18];
    for (int i = 0; i < 20; i++)
        gray[i] = (uint8_t)(i * 12);
    for (int i = 0; i < 6; i++)
        for (int c = 0; c < 3; c++)
            rgb[i * 3 + c] = (uint8_t)(i * 10 + c);
    read_ok("gray.png", 4, 5, 1, gray);
    read_ok("rgb.png", 2, 3, 3, rgb);
    const uint8_t rgba[12] = {200, 100, 50, 10, 20, 30, 1, 2, 3, 0, 0, 0}; /* transparent -> black */
    read_ok("rgba.png", 2, 2, 3, rgba);
    const uint8_t pal[9] = {0, 0, 255, 255, 0, 0, 0, 255, 0};
    read_ok("palette.png", 1, 3, 3, pal);
    const uint8_t g16[2] = {0x12, 0xFF}; /* the high byte of 0x1234, 0xFFFF */
    read_ok("gray16.png", 1, 2, 1, g16);
}

Test(data, jpeg_decodes_closely)
{
    uint8_t *px = NULL;
    int h, w, c;
    clv_err err = {{0}};
    cr_assert_eq(clv_image_read(FIX "img/smooth.jpg", &px, &h, &w, &c, &err), 0, "%s", err.msg);
    cr_assert(h == 16 && w == 16 && c == 3);
    double worst = 0;
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++)
            for (int k = 0; k < 3; k++) {
                int want = k < 2 ? (x * 16 + k * 40 > 255 ? 255 : x * 16 + k * 40) : y * 16;
                worst = fmax(worst, fabs((double)px[(y * 16 + x) * 3 + k] - want));
            }
    cr_assert_leq(worst, 4.0, "quality-100 JPEG within a few levels (worst %g)", worst);
    clv_free(px);
}

Test(data, corrupt_images_are_rejected_by_name)
{
    const char *bad[] = {FIX "img/corrupt.jpg", FIX "img/truncated.png", FIX "img/not_an_image.png",
                         FIX "img/missing.png"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *px = NULL;
        int h, w, c;
        clv_err err = {{0}};
        cr_assert_eq(clv_image_read(bad[i], &px, &h, &w, &c, &err), -1, "%s", bad[i]);
        cr_assert_null(px);
        cr_assert(strstr(err.msg, bad[i]), "names the file: %s", err.msg);
    }
}

/* ---- sizes a file claims are checked before memory is spent on them ---- */

#include <stdio.h>
#include <sys/resource.h>
#include <zlib.h>

/* Caps this test process's address space at what it uses now plus extra
 * bytes (skipped under AddressSanitizer, which reserves terabytes). */
static void cap_address_space(size_t extra)
{
#if !defined(__SANITIZE_ADDRESS__)
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f && fscanf(f, "%lu", &pages) == 1) {
        struct rlimit r = {(rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + extra,
                           (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + extra};
        setrlimit(RLIMIT_AS, &r);
    }
    if (f)
        fclose(f);
#else
    (void)extra;
#endif
}

static void put_be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8), b[3] = (uint8_t)v;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

Test(data, idx_header_claims_are_not_trusted_with_memory)
{
    /* 16 bytes of header claim 60000 images of 4096 x 40: 9.8 GB (once malloc'ed whole) */
    uint8_t head[16 + 64];
    memset(head, 7, sizeof head);
    put_be32(head, 0x803), put_be32(head + 4, 60000), put_be32(head + 8, 4096), put_be32(head + 12, 40);
    char path[] = "/tmp/clvit-idx-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    write_bytes(path, head, sizeof head);
    cap_address_space((size_t)1 << 30);
    clv_dataset *ds = NULL;
    clv_err err = {{0}};
    cr_expect_eq(clv_idx_open(path, FIX "idx/t10k-labels-idx1-ubyte", "x", &ds, &err), -1);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "truncated"), "%s", err.msg);
    unlink(path);
}

Test(data, image_header_claims_are_checked_before_decoding)
{
    cap_address_space((size_t)1 << 30);
    uint8_t *px = NULL;
    int h, w, c;
    clv_err err = {{0}};
    /* a PNG whose header claims 16000 x 16000 gray pixels (256 M) over one row of data */
    uint8_t png[8 + 25 + 12 + 64 + 12];
    size_t n = 0;
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    n = 8;
    uint8_t ihdr[17] = {'I', 'H', 'D', 'R'};
    put_be32(ihdr + 4, 16000), put_be32(ihdr + 8, 16000);
    ihdr[12] = 8; /* bit depth; colour type 0 (gray), no interlace */
    put_be32(png + n, 13);
    memcpy(png + n + 4, ihdr, 17);
    put_be32(png + n + 21, (uint32_t)crc32(0, ihdr, 17));
    n += 25;
    uint8_t idat[4 + 64] = {'I', 'D', 'A', 'T'};
    uint8_t row[1 + 16] = {0};
    uLongf zlen = 64;
    cr_assert_eq(compress(idat + 4, &zlen, row, sizeof row), Z_OK);
    put_be32(png + n, (uint32_t)zlen);
    memcpy(png + n + 4, idat, 4 + zlen);
    put_be32(png + n + 8 + zlen, (uint32_t)crc32(0, idat, 4 + (uInt)zlen));
    n += 12 + zlen;
    uint8_t iend[4] = {'I', 'E', 'N', 'D'};
    put_be32(png + n, 0);
    memcpy(png + n + 4, iend, 4);
    put_be32(png + n + 8, (uint32_t)crc32(0, iend, 4));
    n += 12;
    char path[] = "/tmp/clvit-img-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    write_bytes(path, png, n);
    cr_expect_eq(clv_image_read(path, &px, &h, &w, &c, &err), -1);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "16000x16000") && strstr(err.msg, "larger than"), "%s",
              err.msg);

    /* the fixture JPEG with its frame header rewritten to claim 16000 x 16000 */
    FILE *f = fopen(FIX "img/smooth.jpg", "rb");
    cr_assert_not_null(f);
    uint8_t jpg[1 << 16];
    size_t len = fread(jpg, 1, sizeof jpg, f);
    fclose(f);
    int patched = 0;
    for (size_t i = 2; i + 9 < len && !patched; i++)
        if (jpg[i] == 0xFF && (jpg[i + 1] == 0xC0 || jpg[i + 1] == 0xC2)) {
            jpg[i + 5] = 16000 >> 8, jpg[i + 6] = 16000 & 255, jpg[i + 7] = 16000 >> 8, jpg[i + 8] = 16000 & 255;
            patched = 1;
        }
    cr_assert(patched, "the fixture has a frame header");
    write_bytes(path, jpg, len);
    cr_expect_eq(clv_image_read(path, &px, &h, &w, &c, &err), -1);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "16000x16000"), "%s", err.msg);
    unlink(path);
    clv_free(px);
}

/* Files list images class by class: a limit keeps an even spread of them, not
 * the first N (which kept 4 of 10 glyph classes at --train-limit 1000). */
Test(data, task_limits_keep_every_class)
{
    clv_dataset *train, *test;
    clv_err err = {{0}};
    cr_assert_eq(clv_dataset_open_pair("imagefolder", FIX "imagefolder", &train, &test, &err), 0, "%s", err.msg);
    clv_task_split s;
    cr_assert_eq(clv_task_split_make(&s, train, test, 1, 0, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(s.tasks[0].n_train, 8, "labels 0 0 1 1 1 2 2 2");
    const int64_t before[8] = {s.tasks[0].train_indices[0], s.tasks[0].train_indices[1], s.tasks[0].train_indices[2],
                               s.tasks[0].train_indices[3], s.tasks[0].train_indices[4], s.tasks[0].train_indices[5],
                               s.tasks[0].train_indices[6], s.tasks[0].train_indices[7]};
    clv_task_split_limit(&s, 3, 2);
    cr_assert_eq(s.tasks[0].n_train, 3);
    const int want[3] = {0, 2, 5}; /* floor(i 8 / 3) */
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(s.tasks[0].train_indices[i], before[want[i]], "kept image %d", i);
        cr_expect_eq(s.tasks[0].train_labels[i], i, "one image of each class, in order");
    }
    cr_expect_eq(s.tasks[0].n_test, 2);
    clv_task_split_limit(&s, 0, 0);
    cr_expect_eq(s.tasks[0].n_train, 3, "0: no limit");
    clv_task_split_limit(&s, 100, 100);
    cr_expect_eq(s.tasks[0].n_train, 3, "a limit above the count keeps all");
    clv_task_split_free(&s);
    clv_dataset_free(train);
    clv_dataset_free(test);
}
