/* clvit report: table values computed from run.json files, CSV, pictures. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/report.h"

/* A finished 2-task run: A = [[90, -], [80, 96]], stored bits per task given. */
static void make_run(const char *dir, const char *method, const char *model, int64_t bits0, int64_t bits1)
{
    clv_config cfg;
    clv_config_defaults(&cfg);
    cfg.tasks = 2;
    snprintf(cfg.method, sizeof cfg.method, "%s", method);
    snprintf(cfg.model, sizeof cfg.model, "%s", model);
    clv_run_record r;
    clv_err err = {{0}};
    cr_assert_eq(clv_run_record_init(&r, 2, &err), 0);
    r.acc[0] = 90;
    r.acc[2] = 80;
    r.acc[3] = 96;
    r.base_bits = 32 * 1000;
    int64_t bits[2] = {bits0, bits1};
    for (int t = 0; t < 2; t++) {
        r.tasks[t].done = 1;
        r.tasks[t].stored_bits = bits[t];
        r.tasks[t].n_classes = 1;
        r.tasks[t].classes = malloc(sizeof(int32_t));
        r.tasks[t].classes[0] = t;
    }
    strcpy(r.status, "complete");
    cr_assert_eq(clv_run_record_write(&r, &cfg, dir, &err), 0, "%s", err.msg);
    clv_run_record_free(&r);
}

static char *capture(void (*fn)(const clv_report_run *, int, FILE *), const clv_report_run *runs, int n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    fn(runs, n, f);
    fclose(f);
    return buf;
}

Test(report, table_and_pictures)
{
    char a[] = "/tmp/clvit-report-a-XXXXXX", b[] = "/tmp/clvit-report-b-XXXXXX", pics[] = "/tmp/clvit-pics-XXXXXX";
    cr_assert(mkdtemp(a) && mkdtemp(b) && mkdtemp(pics));
    /* 2^23 bits = 1 MiB per task for rkr; piggyback 4 MiB and 2 MiB */
    make_run(a, "rkr", "vit_nano_patch4_32", 1 << 23, 1 << 23);
    make_run(b, "piggyback", "vit_tiny_patch4_32", 4 << 23, 2 << 23);
    clv_report_run runs[2];
    clv_err err = {{0}};
    cr_assert_eq(clv_report_run_read(&runs[0], a, &err), 0, "%s", err.msg);
    cr_assert_eq(clv_report_run_read(&runs[1], b, &err), 0, "%s", err.msg);
    cr_assert_float_eq(clv_report_bits_per_task(&runs[1]), 3.0 * (1 << 23), 1e-6);

    char *md = capture(clv_report_markdown, runs, 2);
    /* average of the last row (80 + 96) / 2 = 88, forgetting 90 - 80 = 10, 1 MiB = 262144 params */
    cr_assert(strstr(md, "| rkr | vit_nano_patch4_32 | fashion-mnist | 2/2 | 88.00 | 10.00 | 262144 | 1.0000 | 2.0000 |"),
              "%s", md);
    cr_assert(strstr(md, "| piggyback | vit_tiny_patch4_32 |") && strstr(md, "| 3.0000 | 6.0000 |"), "%s", md);
    cr_assert(strstr(md, "method x backbone"), "two backbones make a grid: %s", md);
    cr_assert(strstr(md, "| 2 | 80.00 | 96.00 |"), "the matrix rows: %s", md);
    free(md);

    char *csv = capture(clv_report_csv, runs, 2);
    cr_assert(strstr(csv, ",rkr,vit_nano_patch4_32,fashion-mnist,2,2,88.0000,10.0000,8388608,262144.0,1.000000,"),
              "%s", csv);
    free(csv);

    cr_assert_eq(clv_report_plot(runs, 2, pics, &err), 0, "%s", err.msg);
    const char *files[] = {"matrix-1-rkr.png", "matrix-2-piggyback.svg", "accuracy-vs-bits.png",
                           "accuracy-vs-bits.svg"};
    for (int i = 0; i < 4; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", pics, files[i]);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s written", files[i]);
        unsigned char head[8] = {0};
        cr_assert_eq(fread(head, 1, 8, f), 8);
        fclose(f);
        if (strstr(files[i], ".png"))
            cr_assert_eq(memcmp(head, "\x89PNG\r\n\x1a\n", 8), 0, "%s is a PNG", files[i]);
        else
            cr_assert(head[0] == '<', "%s is SVG text", files[i]);
    }
    clv_report_run_free(&runs[0]);
    clv_report_run_free(&runs[1]);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s %s", a, b, pics);
    cr_assert_eq(system(cmd), 0);
}

Test(report, missing_run_names_the_directory)
{
    clv_report_run r;
    clv_err err = {{0}};
    cr_assert_eq(clv_report_run_read(&r, "/nonexistent/run-x", &err), -1);
    cr_assert(strstr(err.msg, "/nonexistent/run-x"), "%s", err.msg);
}
