/* clvit predict: classifies image files (PNG, JPEG) with a run's task or a
 * weights file, printing one line (or one JSON object) per image. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "clvit/predictor.h"

#define PREDICT_CHUNK 32

static void usage(FILE *out)
{
    fprintf(out,
            "usage: clvit predict --run DIR --task N [--json] IMAGE...\n"
            "       clvit predict --model NAME --weights FILE.safetensors [--mean a,b,c --std a,b,c] [--json] IMAGE...\n\n"
            "Classifies PNG or JPEG images. With a run, task N (1-based) is predicted with that task's\n"
            "head and backbone function and labels are the dataset's class ids; with a weights file the\n"
            "head is the file's head.weight/head.bias. Pixels are scaled to [0, 1] and normalized with the\n"
            "mean/std in the weights' metadata. --json prints an array of objects with image, task,\n"
            "logits, label and probability.\n");
}

static int parse_triple(const char *s, float out[3], const char *what, clv_err *err)
{
    char *end;
    for (int c = 0; c < 3; c++) {
        out[c] = strtof(s, &end);
        if (end == s || (c < 2 && *end != ',') || (c == 2 && *end))
            return clv_errf(err, "%s: '%s' is not three numbers a,b,c", what, s);
        s = end + 1;
    }
    return 0;
}

static void softmax_max(const float *logits, int k, int *label, double *prob)
{
    int best = 0;
    for (int i = 1; i < k; i++)
        if (logits[i] > logits[best])
            best = i;
    double sum = 0;
    for (int i = 0; i < k; i++)
        sum += exp((double)logits[i] - logits[best]);
    *label = best;
    *prob = 1.0 / sum;
}

/* Presents images [first, first+n) into x; 0, or -1 naming the bad file. */
static int load_chunk(const clv_present *pr, char **files, int n, float *x, clv_err *err)
{
    size_t per = (size_t)pr->out_c * pr->out_h * pr->out_w;
    for (int i = 0; i < n; i++) {
        uint8_t *px = NULL;
        int h, w, c;
        if (clv_image_read(files[i], &px, &h, &w, &c, err))
            return -1;
        int r = clv_present_image(pr, px, h, w, c, x + i * per, err);
        clv_free(px);
        if (r)
            return clv_err_prefix(err, "%s", files[i]);
    }
    return 0;
}

int clv_cmd_predict(int argc, char **argv)
{
    const char *run = NULL, *model = NULL, *weights = NULL;
    int task = 0, as_json = 0, has_mean = 0, has_std = 0;
    float mean[3], std[3];
    char **files = calloc((size_t)argc, sizeof *files);
    int nfiles = 0, status = 1;
    clv_err err = {{0}};
    clv_predictor *p = NULL;
    float *x = NULL, *logits = NULL;
    cJSON *arr = NULL;
    if (!files)
        return 1;
    for (int i = 1; i < argc; i++) {
        int failed = 0;
        const char *v;
        if (clv_cli_is_flag(argv[i], "help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            status = 0;
            goto done;
        } else if ((v = clv_cli_option(argc, argv, &i, "run", &err, &failed)) || failed) {
            if (failed)
                goto bad;
            run = v;
        } else if ((v = clv_cli_option(argc, argv, &i, "task", &err, &failed)) || failed) {
            if (failed || clv_cli_parse_int(v, "--task", 1, 1000000, &task, &err))
                goto bad;
        } else if ((v = clv_cli_option(argc, argv, &i, "model", &err, &failed)) || failed) {
            if (failed)
                goto bad;
            model = v;
        } else if ((v = clv_cli_option(argc, argv, &i, "weights", &err, &failed)) || failed) {
            if (failed)
                goto bad;
            weights = v;
        } else if ((v = clv_cli_option(argc, argv, &i, "mean", &err, &failed)) || failed) {
            if (failed || parse_triple(v, mean, "--mean", &err))
                goto bad;
            has_mean = 1;
        } else if ((v = clv_cli_option(argc, argv, &i, "std", &err, &failed)) || failed) {
            if (failed || parse_triple(v, std, "--std", &err))
                goto bad;
            has_std = 1;
        } else if (clv_cli_is_flag(argv[i], "json"))
            as_json = 1;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "clvit predict: unknown option '%s' (see clvit predict --help)\n", argv[i]);
            status = 2;
            goto done;
        } else
            files[nfiles++] = argv[i];
    }
    if (!!run == !!(model || weights)) {
        clv_errf(&err, "give either --run DIR --task N, or --model NAME --weights FILE");
        goto bad;
    }
    if (run && !task) {
        clv_errf(&err, "--run needs --task N (1-based)");
        goto bad;
    }
    if (!run && (!model || !weights)) {
        clv_errf(&err, "--model and --weights go together");
        goto bad;
    }
    if (!nfiles) {
        clv_errf(&err, "no image given");
        goto bad;
    }
    p = run ? clv_predictor_from_run(run, &err)
            : clv_predictor_from_weights(model, weights, has_mean ? mean : NULL, has_std ? std : NULL, &err);
    if (!p)
        goto fail;
    if (!run)
        task = 1;
    if (!clv_predictor_task_ready(p, task - 1)) {
        clv_errf(&err, "%s: task %d is not learned (the run has %d tasks)", run, task, clv_predictor_n_tasks(p));
        goto fail;
    }
    const clv_present *pr = clv_predictor_present(p);
    int K = clv_predictor_classes(p, task - 1);
    size_t per = (size_t)pr->out_c * pr->out_h * pr->out_w;
    x = clv_alloc_array(PREDICT_CHUNK * per, sizeof *x);
    logits = clv_alloc_array((size_t)PREDICT_CHUNK * K, sizeof *logits);
    arr = cJSON_CreateArray();
    if (!x || !logits || !arr) {
        clv_errf(&err, "out of memory");
        goto fail;
    }
    for (int first = 0; first < nfiles; first += PREDICT_CHUNK) {
        int n = nfiles - first < PREDICT_CHUNK ? nfiles - first : PREDICT_CHUNK;
        if (load_chunk(pr, files + first, n, x, &err) || clv_predictor_logits(p, task - 1, x, n, logits, &err))
            goto fail;
        for (int i = 0; i < n; i++) {
            const float *row = logits + (size_t)i * K;
            int local;
            double prob;
            softmax_max(row, K, &local, &prob);
            int label = clv_predictor_class_id(p, task - 1, local);
            if (!as_json) {
                printf("%s: task %d label %d (probability %.4f)\n", files[first + i], task, label, prob);
                continue;
            }
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToArray(arr, o);
            cJSON_AddStringToObject(o, "image", files[first + i]);
            cJSON_AddNumberToObject(o, "task", task);
            cJSON *lg = cJSON_AddArrayToObject(o, "logits");
            for (int k = 0; k < K; k++)
                cJSON_AddItemToArray(lg, cJSON_CreateNumber(row[k]));
            cJSON_AddNumberToObject(o, "label", label);
            cJSON_AddNumberToObject(o, "local_label", local);
            cJSON_AddNumberToObject(o, "probability", prob);
        }
    }
    if (as_json) {
        char *s = cJSON_Print(arr);
        if (!s) {
            clv_errf(&err, "out of memory");
            goto fail;
        }
        puts(s);
        free(s);
    }
    status = 0;
    goto done;
bad:
    fprintf(stderr, "clvit predict: %s\n", err.msg);
    status = 2;
    goto done;
fail:
    fprintf(stderr, "clvit predict: %s\n", err.msg);
    status = 1;
done:
    cJSON_Delete(arr);
    clv_free(x);
    clv_free(logits);
    clv_predictor_free(p);
    free(files);
    return status;
}
