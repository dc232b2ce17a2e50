/* clvit predict: classifies image files (PNG, JPEG) with a run's task or a
 * weights file, printing one line (or one JSON object) per image. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "clvit/ckpt_layout.h"
#include "clvit/model.h"
#include "clvit/predictor.h"
#include "clvit/safetensors.h"

#define PREDICT_CHUNK 32

static void usage(FILE *out)
{
    fprintf(out,
            "usage: clvit predict --run DIR --task N|auto [--task-select maxprob|entropy] [--topk K] [--json] IMAGE...\n"
            "       clvit predict [--model NAME] --weights FILE.safetensors [--mean a,b,c --std a,b,c] [--topk K]\n"
            "                     [--json] IMAGE...\n\n"
            "Classifies PNG or JPEG images. With a run, task N (1-based) is predicted with that task's\n"
            "head and backbone function; labels are the dataset's class ids and, where the run recorded\n"
            "them, its class names. With a weights file the head is the file's head.weight/head.bias and\n"
            "the model is the one its metadata names unless --model is given. Pixels are scaled to [0, 1]\n"
            "and normalized with the mean/std in the weights' metadata. --topk K gives the K most likely\n"
            "labels (default 1). --json prints an array of objects with image, task, logits, label, name,\n"
            "probability and top. An image that cannot be read gets a line (an object with \"error\") and\n"
            "the others are still classified; the exit status is then 1. --precision fp32|bf16: the\n"
            "weight layers' GEMM inputs (default: the run's train.precision; fp32 with --weights).\n\n"
            "--task auto predicts without a task id: every learned task classifies the image (one backbone\n"
            "forward per task, shared by tasks whose backbone is the same, as finetune's and linear's), and\n"
            "the most confident head wins: --task-select maxprob (the default: the largest softmax\n"
            "probability) or entropy (the lowest softmax entropy over ln(classes)). The line gives the task,\n"
            "its label and both scores; --json adds select, maxprob, entropy and task_scores (every task's).\n");
}

static const char *layout_name(const clv_safetensors *st)
{
    clv_ckpt_layout l;
    clv_ckpt_layout_of_file(st, &l);
    return clv_ckpt_layout_name(&l);
}

/* The model a weights file names in its metadata ("model", written by clvit's base and pretrained files). */
static int model_from_file(const char *weights, char *model, size_t len, clv_err *err)
{
    clv_safetensors st;
    if (clv_st_open(&st, weights, err))
        return -1;
    const char *m = clv_st_meta(&st, "model");
    int known = 0;
    for (int i = 0; m && i < clv_model_registry_count(); i++)
        known |= !strcmp(m, clv_model_registry_name(i));
    int rc = known ? (snprintf(model, len, "%s", m), 0)
             : m   ? clv_errf(err, "%s: its metadata names the model '%.200s', which clvit does not know: give "
                                   "--model NAME (see clvit info)", weights, m)
                   : clv_errf(err, "%s names no model in its metadata (its names: %s layout): give --model NAME "
                                   "(see clvit info)", weights, layout_name(&st));
    clv_st_close(&st);
    return rc;
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

/* Probabilities of the logits and the order of the labels, most likely first. */
static void rank_labels(const float *logits, int k, double *prob, int *order)
{
    int best = 0;
    for (int i = 1; i < k; i++)
        if (logits[i] > logits[best])
            best = i;
    double sum = 0;
    for (int i = 0; i < k; i++)
        sum += prob[i] = exp((double)logits[i] - logits[best]);
    for (int i = 0; i < k; i++) {
        prob[i] /= sum;
        int j = i;
        for (; j > 0 && prob[order[j - 1]] < prob[i]; j--) /* insertion sort: stable, k is small */
            order[j] = order[j - 1];
        order[j] = i;
    }
}

/* Presents the chunk's readable images into x (packed) and lists their
 * indices in ok; an unreadable one gets its message in errors[i]. */
static int load_chunk(const clv_present *pr, char **files, int n, float *x, int *ok, char **errors)
{
    size_t per = (size_t)pr->out_c * pr->out_h * pr->out_w;
    int good = 0;
    for (int i = 0; i < n; i++) {
        uint8_t *px = NULL;
        int h, w, c;
        clv_err err = {{0}};
        int r = clv_image_read(files[i], &px, &h, &w, &c, &err);
        if (!r && (r = clv_present_image(pr, px, h, w, c, x + good * per, &err)))
            clv_err_prefix(&err, "%s", files[i]);
        clv_free(px);
        if (r)
            errors[i] = strdup(err.msg);
        else
            ok[good++] = i;
    }
    return good;
}

int clv_cmd_predict(int argc, char **argv)
{
    const char *run = NULL, *model = NULL, *weights = NULL;
    int precision = -1; /* -1: the run's train.precision (fp32 for --weights) */
    int task = 0, automatic = 0, select_given = 0, as_json = 0, has_mean = 0, has_std = 0, topk = 1, unreadable = 0;
    float mean[3], std[3];
    char model_buf[64];
    char **files = calloc((size_t)argc, sizeof *files);
    int nfiles = 0, status = 1;
    clv_err err = {{0}};
    clv_predictor *p = NULL;
    float *x = NULL, *logits = NULL;
    double *prob = NULL;
    int *order = NULL, ok[PREDICT_CHUNK];
    clv_task_select select = CLV_SELECT_MAXPROB;
    clv_route routes[PREDICT_CHUNK];
    char *errors[PREDICT_CHUNK] = {0};
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
            if (failed)
                goto bad;
            if (!strcmp(v, "auto"))
                automatic = 1, task = 0;
            else if (clv_cli_parse_int(v, "--task", 1, 1000000, &task, &err))
                goto bad;
            else
                automatic = 0;
        } else if ((v = clv_cli_option(argc, argv, &i, "task-select", &err, &failed)) || failed) {
            if (failed || clv_task_select_parse(v, &select, &err))
                goto bad;
            select_given = 1;
        } else if ((v = clv_cli_option(argc, argv, &i, "topk", &err, &failed)) || failed) {
            if (failed || clv_cli_parse_int(v, "--topk", 1, 1000000, &topk, &err))
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
        } else if ((v = clv_cli_option(argc, argv, &i, "precision", &err, &failed)) || failed) {
            clv_precision pr;
            if (failed || clv_precision_parse(v, &pr, &err))
                goto bad;
            precision = (int)pr;
        } else if (clv_cli_is_flag(argv[i], "json"))
            as_json = 1;
        else if (argv[i][0] == '-' && argv[i][1]) {
            static const char *const own[] = {"run",  "task", "task-select", "topk", "model", "weights",
                                              "mean", "std",  "json",        "precision", "help", NULL};
            char hint[160];
            fprintf(stderr, "clvit predict: unknown option '%s'%s (see clvit predict --help)\n", argv[i],
                    clv_cli_suggest(argv[i], own, 0, hint, sizeof hint));
            status = 2;
            goto done;
        } else
            files[nfiles++] = argv[i];
    }
    if (!!run == !!(model || weights)) {
        clv_errf(&err, "give either --run DIR --task N, or --weights FILE [--model NAME]");
        goto bad;
    }
    if (run && !task && !automatic) {
        clv_errf(&err, "--run needs --task N (1-based) or --task auto");
        goto bad;
    }
    if (select_given && !automatic) {
        clv_errf(&err, "--task-select chooses among tasks for --task auto; give --task auto too");
        goto bad;
    }
    if (!run && !weights) {
        clv_errf(&err, "--model needs --weights FILE");
        goto bad;
    }
    if (!nfiles) {
        clv_errf(&err, "no image given");
        goto bad;
    }
    if (!run && !model) {
        if (model_from_file(weights, model_buf, sizeof model_buf, &err))
            goto fail;
        model = model_buf;
    }
    p = run ? clv_predictor_from_run(run, &err)
            : clv_predictor_from_weights(model, weights, has_mean ? mean : NULL, has_std ? std : NULL, &err);
    if (!p || (precision >= 0 && clv_predictor_set_precision(p, (clv_precision)precision, &err)))
        goto fail;
    if (!run)
        task = 1;
    if (automatic)
        task = 0;
    if (!automatic && !clv_predictor_task_ready(p, task - 1)) {
        clv_errf(&err, "%s: task %d is not learned (the run has %d tasks)", run, task, clv_predictor_n_tasks(p));
        goto fail;
    }
    const clv_present *pr = clv_predictor_present(p);
    /* the widest head of the tasks that may answer */
    int K = 0;
    for (int t = 0; t < clv_predictor_n_tasks(p); t++)
        if ((automatic || t == task - 1) && clv_predictor_task_ready(p, t) && clv_predictor_classes(p, t) > K)
            K = clv_predictor_classes(p, t);
    if (!K) {
        clv_errf(&err, "%s: no task is learned yet", run ? run : weights);
        goto fail;
    }
    size_t per = (size_t)pr->out_c * pr->out_h * pr->out_w;
    x = clv_alloc_array(PREDICT_CHUNK * per, sizeof *x);
    logits = clv_alloc_array((size_t)PREDICT_CHUNK * K, sizeof *logits);
    prob = malloc((size_t)K * sizeof *prob);
    order = malloc((size_t)K * sizeof *order);
    arr = cJSON_CreateArray();
    if (!x || !logits || !prob || !order || !arr) {
        clv_errf(&err, "out of memory");
        goto fail;
    }
    for (int first = 0; first < nfiles; first += PREDICT_CHUNK) {
        int n = nfiles - first < PREDICT_CHUNK ? nfiles - first : PREDICT_CHUNK;
        int good = load_chunk(pr, files + first, n, x, ok, errors);
        if (good && (automatic ? clv_predictor_route(p, select, x, good, routes, &err)
                               : clv_predictor_logits(p, task - 1, x, good, logits, &err)))
            goto fail;
        for (int i = 0, g = 0; i < n; i++) {
            const char *file = files[first + i];
            if (errors[i] || g == good || ok[g] != i) {
                unreadable++;
                const char *msg = errors[i] ? errors[i] : "out of memory";
                if (as_json) {
                    cJSON *o = cJSON_CreateObject();
                    cJSON_AddItemToArray(arr, o);
                    cJSON_AddStringToObject(o, "image", file);
                    cJSON_AddStringToObject(o, "error", msg);
                } else
                    printf("%s: error: %s\n", file, msg);
                free(errors[i]);
                errors[i] = NULL;
                continue;
            }
            /* the answering task t (0-based), its row of logits and class count */
            const int t = automatic ? routes[g].task : task - 1;
            const int Kt = clv_predictor_classes(p, t);
            const float *row = automatic ? clv_predictor_routed_logits(p, t, g) : logits + (size_t)g * Kt;
            const int topk_t = topk < Kt ? topk : Kt;
            g++;
            rank_labels(row, Kt, prob, order);
            int local = order[0];
            int label = clv_predictor_class_id(p, t, local);
            const char *name = clv_predictor_class_name(p, t, local);
            if (!as_json) {
                printf("%s: task %d", file, t + 1);
                if (automatic)
                    printf(" (chosen by %s: maxprob %.4f, entropy %.4f)", clv_task_select_name(select),
                           routes[g - 1].maxprob, routes[g - 1].entropy);
                printf(" label %d%s%s%s probability %.4f", label, name ? " (" : "", name ? name : "",
                       name ? ")" : "", prob[local]);
                for (int r = 1; r < topk_t; r++) {
                    const char *nm = clv_predictor_class_name(p, t, order[r]);
                    printf("%s %d%s%s%s %.4f", r == 1 ? "; then" : ",", clv_predictor_class_id(p, t, order[r]),
                           nm ? " (" : "", nm ? nm : "", nm ? ")" : "", prob[order[r]]);
                }
                printf("\n");
                continue;
            }
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToArray(arr, o);
            cJSON_AddStringToObject(o, "image", file);
            cJSON_AddNumberToObject(o, "task", t + 1);
            if (automatic) {
                cJSON_AddStringToObject(o, "select", clv_task_select_name(select));
                cJSON_AddNumberToObject(o, "maxprob", routes[g - 1].maxprob);
                cJSON_AddNumberToObject(o, "entropy", routes[g - 1].entropy);
                cJSON *sc = cJSON_AddArrayToObject(o, "task_scores");
                for (int u = 0; u < clv_predictor_n_tasks(p); u++) {
                    const float *ru = clv_predictor_routed_logits(p, u, g - 1);
                    if (!ru)
                        continue;
                    int lu;
                    double mp, en;
                    clv_task_scores(ru, clv_predictor_classes(p, u), &lu, &mp, &en);
                    cJSON *e = cJSON_CreateObject();
                    cJSON_AddNumberToObject(e, "task", u + 1);
                    cJSON_AddNumberToObject(e, "maxprob", mp);
                    cJSON_AddNumberToObject(e, "entropy", en);
                    cJSON_AddItemToArray(sc, e);
                }
            }
            cJSON *lg = cJSON_AddArrayToObject(o, "logits");
            for (int k = 0; k < Kt; k++)
                cJSON_AddItemToArray(lg, cJSON_CreateNumber(row[k]));
            cJSON_AddNumberToObject(o, "label", label);
            cJSON_AddNumberToObject(o, "local_label", local);
            if (name)
                cJSON_AddStringToObject(o, "name", name);
            cJSON_AddNumberToObject(o, "probability", prob[local]);
            cJSON *top = cJSON_AddArrayToObject(o, "top");
            for (int r = 0; r < topk_t; r++) {
                cJSON *tp = cJSON_CreateObject();
                const char *nm = clv_predictor_class_name(p, t, order[r]);
                cJSON_AddNumberToObject(tp, "label", clv_predictor_class_id(p, t, order[r]));
                if (nm)
                    cJSON_AddStringToObject(tp, "name", nm);
                cJSON_AddNumberToObject(tp, "probability", prob[order[r]]);
                cJSON_AddItemToArray(top, tp);
            }
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
    if (unreadable)
        fprintf(stderr, "clvit predict: %d of %d images could not be read\n", unreadable, nfiles);
    status = unreadable ? 1 : 0;
    goto done;
bad:
    fprintf(stderr, "clvit predict: %s\n", err.msg);
    status = 2;
    goto done;
fail:
    fprintf(stderr, "clvit predict: %s\n", err.msg);
    status = 1;
done:
    for (int i = 0; i < PREDICT_CHUNK; i++)
        free(errors[i]);
    cJSON_Delete(arr);
    clv_free(x);
    clv_free(logits);
    free(prob);
    free(order);
    clv_predictor_free(p);
    free(files);
    return status;
}
