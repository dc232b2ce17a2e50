/* clvit bench: times a training step (forward, cross-entropy, backward,
 * AdamW, zeroing) and an inference step of a registry model on synthetic
 * data; medians over the timed steps. */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/bench_turns.h"
#include "cli/cli_args.h"
#include "cli/commands.h"
#include "clvit/config.h"
#include "clvit/dist.h"
#include "clvit/gemm.h"
#include "clvit/model.h"
#include "clvit/step.h"
#include "clvit/strategy.h"

#define BENCH_CLASSES 10

static void usage(FILE *out)
{
    fprintf(out, "usage: clvit bench [--model NAME] [--batch B] [--infer-batch B] [--threads N] [--steps S]\n"
                 "                   [--warmup W] [--method finetune|linear|rkr|piggyback|maskrkr|independent|ewc|lwf]\n"
                 "                   [--rank K] [--precision fp32|bf16] [--conv-algorithm winograd|direct] [--json]\n"
                 "                   [--turns R,W]\n\n"
                 "Times S training steps at batch B and S inference steps at the inference batch, after W\n"
                 "untimed ones, on synthetic images; prints the medians as images/s and GFLOP/s. A training step\n"
                 "is the trainer's own (forward, loss, backward, clip, optimizer step) in the second task of a\n"
                 "run with the settings' defaults: --method linear trains the head only; rkr (rank --rank, 4),\n"
                 "piggyback and maskrkr train their adapters on every weight layer of a frozen backbone;\n"
                 "ewc and lwf train the backbone like finetune (lwf also runs its frozen teacher; ewc's\n"
                 "penalty is zero in a bench, which has no Fisher yet).\n"
                 "FLOPs per training image: 3x the forward (a full weight gradient: finetune, independent,\n"
                 "piggyback, ewc), 4x (lwf: 3x and the teacher's forward), 2x (forward and input gradients:\n"
                 "rkr, maskrkr), 1x (linear). Defaults:\n"
                 "vit_tiny_patch4_32, finetune, batch 128, inference batch 256, 5 steps, 2 warmup, OpenMP's\n"
                 "threads, fp32. --precision bf16: the weight layers' GEMMs take bf16 inputs (see clvit info for\n"
                 "whether this CPU runs them natively). --conv-algorithm: ResNet's fp32 3x3 stride-1\n"
                 "convolutions (train.conv_algorithm; winograd counts the direct FLOPs, so its GFLOP/s are\n"
                 "nominal). --method full is finetune's older name. --turns R,W: before each step (warmup or\n"
                 "timed, training or inference) write \"r\" to descriptor W and wait for \"g\" on R, so that\n"
                 "bench/lockstep.py can run this bench step for step with another (an A/B of two builds).\n");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct {
    const char *model, *method;
    clv_precision precision;
    int batch, infer_batch, threads, steps, warmup, json, rank;
    const char *conv_algorithm; /* --conv-algorithm (NULL: train.conv_algorithm's default) */
    clv_bench_turns turns;      /* --turns: step for step with another bench (bench/lockstep.py) */
} bench_opts;

static int parse(int argc, char **argv, bench_opts *o, clv_err *err)
{
    for (int i = 1; i < argc; i++) {
        int failed = 0;
        const char *v;
        struct {
            const char *name;
            int *dst, lo, hi;
        } ints[] = {{"batch", &o->batch, 1, 65536},    {"infer-batch", &o->infer_batch, 1, 65536},
                    {"threads", &o->threads, 1, 1024}, {"steps", &o->steps, 1, 100000},
                    {"warmup", &o->warmup, 0, 100000}, {"rank", &o->rank, 1, 4096}};
        int matched = 0;
        for (size_t k = 0; k < sizeof ints / sizeof ints[0] && !matched; k++)
            if ((v = clv_cli_option(argc, argv, &i, ints[k].name, err, &failed)) || failed) {
                char what[32];
                snprintf(what, sizeof what, "--%s", ints[k].name);
                if (failed || clv_cli_parse_int(v, what, ints[k].lo, ints[k].hi, ints[k].dst, err))
                    return -1;
                matched = 1;
            }
        if (matched)
            continue;
        if ((v = clv_cli_option(argc, argv, &i, "model", err, &failed)) || failed) {
            if (failed)
                return -1;
            o->model = v;
        } else if ((v = clv_cli_option(argc, argv, &i, "method", err, &failed)) || failed) {
            if (failed)
                return -1;
            if (!strcmp(v, "full")) /* the older name: the whole network trains */
                v = "finetune";
            o->method = v;
        } else if ((v = clv_cli_option(argc, argv, &i, "precision", err, &failed)) || failed) {
            if (failed || clv_precision_parse(v, &o->precision, err))
                return clv_err_prefix(err, "--precision");
        } else if ((v = clv_cli_option(argc, argv, &i, "conv-algorithm", err, &failed)) || failed) {
            if (failed)
                return -1;
            o->conv_algorithm = v;
        } else if ((v = clv_cli_option(argc, argv, &i, "turns", err, &failed)) || failed) {
            if (failed || clv_bench_turns_parse(&o->turns, v, err))
                return -1;
            signal(SIGPIPE, SIG_IGN); /* a runner gone is an error from write(), not a kill */
        } else if (clv_cli_is_flag(argv[i], "json"))
            o->json = 1;
        else
        {
            static const char *const own[] = {"batch", "infer-batch", "threads", "steps", "warmup", "rank",
                                              "model", "method", "precision", "conv-algorithm", "json", "help",
                                              "turns", NULL};
            char hint[160];
            return clv_errf(err, "unknown option '%s'%s (see clvit bench --help)", argv[i],
                            clv_cli_suggest(argv[i], own, 0, hint, sizeof hint));
        }
    }
    return 0;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

int clv_cmd_bench(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (clv_cli_is_flag(argv[i], "help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    bench_opts o = {"vit_tiny_patch4_32", "finetune", CLV_PRECISION_FP32, 128, 256, 0, 5, 2, 0, 4, NULL, {-1, -1}};
    clv_err err = {{0}};
    clv_config cfg;
    clv_config_defaults(&cfg);
    if (parse(argc, argv, &o, &err) ||
        (o.conv_algorithm && clv_config_set(&cfg, clv_config_find("train.conv_algorithm"), o.conv_algorithm, &err))) {
        fprintf(stderr, "clvit bench: %s\n", err.msg);
        return 2;
    }
    const int conv_direct = cfg.conv_algorithm == CLV_CONV_DIRECT;
    if (o.threads)
        clv_threads_set(o.threads);
    /* under mpirun (make MPI=1): each rank steps on its share of every batch and the gradients are
     * summed, as in training; rank 0 reports the whole batch's images/s */
    clv_dist dist;
    if (clv_dist_init(&dist, NULL, NULL, &err)) {
        fprintf(stderr, "clvit bench: %s\n", err.msg);
        return 1;
    }
    if (o.turns.rfd >= 0 && dist.size > 1) { /* one runner, one process: ranks would wait on each other */
        fprintf(stderr, "clvit bench: --turns takes one process, not %d MPI ranks\n", dist.size);
        clv_dist_finalize(&dist);
        return 2;
    }
    int64_t b0, b1, i0, i1;
    clv_dist_shard(&dist, o.batch, &b0, &b1);
    clv_dist_shard(&dist, o.infer_batch, &i0, &i1);
    /* the learner and the task as the trainer makes them, from the settings'
     * defaults: task 2 of 2, so that every method's adapters train over a base */
    snprintf(cfg.model, sizeof cfg.model, "%s", o.model);
    snprintf(cfg.method, sizeof cfg.method, "%s", o.method);
    cfg.rank = o.rank;
    cfg.precision = o.precision;
    cfg.tasks = 2;
    cfg.seed = 0;
    clv_learner L;
    clv_strategy *strategy = NULL;
    clv_step step;
    memset(&step, 0, sizeof step);
    const int task = 1;
    clv_model *m = NULL;
    clv_head *h = NULL;
    int64_t img = 0;
    const int64_t Bmax = o.batch > o.infer_batch ? o.batch : o.infer_batch;
    float *x = NULL, *feats = NULL, *logits = NULL; /* feats and logits of the inference steps */
    int32_t *y = NULL;
    double *t_train = calloc((size_t)o.steps, sizeof(double)), *t_infer = calloc((size_t)o.steps, sizeof(double));
    int status = 1;
    if (clv_learner_build(&L, &strategy, &cfg, &err) ||
        clv_step_begin(&step, &cfg, &L, strategy, task, BENCH_CLASSES, &dist, &err))
        goto fail;
    m = L.model;
    h = &L.heads[task];
    img = (int64_t)m->info.in_chans * m->info.img_size * m->info.img_size;
    x = clv_alloc_array((size_t)(Bmax * img), sizeof(float));
    y = clv_alloc_array((size_t)o.batch, sizeof(int32_t));
    feats = clv_alloc_array((size_t)(o.infer_batch * m->info.feat_dim), sizeof(float));
    logits = clv_alloc_array((size_t)o.infer_batch * BENCH_CLASSES, sizeof(float));
    if (!x || !y || !feats || !logits || !t_train || !t_infer) {
        clv_errf(&err, "out of memory");
        goto fail;
    }
    const uint64_t key = clv_rng_key(0, CLV_STREAM_BENCH, 0, 0);
    for (int64_t i = 0; i < Bmax * img; i++)
        x[i] = clv_rng_normal(key, (uint64_t)i);
    for (int i = 0; i < o.batch; i++)
        y[i] = (int32_t)clv_rng_below(key, (uint64_t)(Bmax * img + i), BENCH_CLASSES);
    for (int s = 0; s < o.warmup + o.steps; s++) {
        if (clv_bench_turn(&o.turns, &err))
            goto fail;
        clv_dist_barrier(&dist);
        double t0 = clv_now();
        clv_step_stats stats = {0};
        if (clv_step_run(&step, x + b0 * img, y + b0, b1 - b0, o.batch, 1.0f, &stats, &err))
            goto fail;
        if (s >= o.warmup)
            t_train[s - o.warmup] = clv_now() - t0;
    }
    m->training = 0;
    for (int s = 0; s < o.warmup + o.steps; s++) {
        if (clv_bench_turn(&o.turns, &err))
            goto fail;
        clv_dist_barrier(&dist);
        double t0 = clv_now();
        if (m->ops->forward(m, x + i0 * img, i1 - i0, feats, &err))
            goto fail;
        clv_head_forward(h, logits, feats, i1 - i0);
        clv_dist_barrier(&dist); /* the batch is done when every rank is */
        if (s >= o.warmup)
            t_infer[s - o.warmup] = clv_now() - t0;
    }
    double tt = median(t_train, o.steps), ti = median(t_infer, o.steps);
    double fpi = (double)m->info.flops_per_image;
    double train_ips = o.batch / tt, infer_ips = o.infer_batch / ti;
    /* a full weight gradient (finetune, piggyback, independent, ewc; lwf also runs its teacher's
     * forward), input gradients only (low-rank methods), none (linear) */
    const int lowrank = !strcmp(o.method, "rkr") || !strcmp(o.method, "maskrkr");
    const double mult = !strcmp(o.method, "linear") ? 1.0 : lowrank ? 2.0 : !strcmp(o.method, "lwf") ? 4.0 : 3.0;
    double train_gf = mult * fpi * o.batch / tt / 1e9, infer_gf = fpi * o.infer_batch / ti / 1e9;
    if (dist.rank != 0) {
        status = 0;
        goto done;
    }
    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", o.model);
        cJSON_AddStringToObject(j, "method", o.method);
        cJSON_AddNumberToObject(j, "batch", o.batch);
        cJSON_AddNumberToObject(j, "infer_batch", o.infer_batch);
        cJSON_AddNumberToObject(j, "threads", clv_threads_get());
        cJSON_AddNumberToObject(j, "ranks", dist.size);
        cJSON_AddStringToObject(j, "gemm", clv_gemm_backend());
        cJSON_AddStringToObject(j, "precision", clv_precision_name(o.precision));
        cJSON_AddStringToObject(j, "conv_algorithm", conv_direct ? "direct" : "winograd");
        if (o.precision == CLV_PRECISION_BF16)
            cJSON_AddBoolToObject(j, "bf16_native", clv_compute_bf16_native(m->compute));
        cJSON_AddNumberToObject(j, "steps", o.steps);
        if (lowrank)
            cJSON_AddNumberToObject(j, "rank", o.rank);
        cJSON_AddNumberToObject(j, "train_images_per_s", train_ips);
        cJSON_AddNumberToObject(j, "infer_images_per_s", infer_ips);
        cJSON_AddNumberToObject(j, "train_gflops", train_gf);
        cJSON_AddNumberToObject(j, "infer_gflops", infer_gf);
        cJSON_AddNumberToObject(j, "train_step_s_median", tt);
        cJSON_AddNumberToObject(j, "infer_step_s_median", ti);
        /* the fastest step (median() sorted them): a steadier figure on a shared machine */
        cJSON_AddNumberToObject(j, "train_step_s_min", t_train[0]);
        cJSON_AddNumberToObject(j, "infer_step_s_min", t_infer[0]);
        cJSON_AddNumberToObject(j, "flops_per_image", fpi);
        cJSON_AddNumberToObject(j, "peak_rss_mb", peak_rss_mb());
        char *s = cJSON_PrintUnformatted(j);
        puts(s ? s : "{}");
        free(s);
        cJSON_Delete(j);
    } else {
        printf("%s, %s, %s%s%s, %d rank%s x %d threads, %s\n", o.model, o.method, clv_precision_name(o.precision),
               o.precision == CLV_PRECISION_FP32            ? ""
               : clv_compute_bf16_native(m->compute) ? " (native)"
                                                      : " (emulated)",
               conv_direct ? ", direct convolutions" : "", dist.size, dist.size > 1 ? "s" : "", clv_threads_get(),
               clv_gemm_backend());
        printf("train  batch %4d: %8.2f images/s  %7.1f GFLOP/s  (median of %d steps: %.3f s)\n", o.batch, train_ips,
               train_gf, o.steps, tt);
        printf("infer  batch %4d: %8.2f images/s  %7.1f GFLOP/s  (median of %d steps: %.3f s)\n", o.infer_batch,
               infer_ips, infer_gf, o.steps, ti);
        printf("peak resident memory: %.0f MB\n", peak_rss_mb());
    }
    status = 0;
    goto done;
fail:
    fprintf(stderr, "clvit bench: %s\n", err.msg);
done:
    clv_step_end(&step);
    clv_learner_free(&L, strategy);
    clv_free(x);
    clv_free(y);
    clv_free(feats);
    clv_free(logits);
    free(t_train);
    free(t_infer);
    clv_dist_finalize(&dist);
    return status;
}
