/* The batch loader: one worker thread prepares batch k+1 while the caller
 * trains on batch k (two slots). Which samples form a batch, and how each is
 * augmented, depends only on (seed, task, epoch) and positions, never on
 * timing or thread count. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/data.h"
#include "data/augment.h"

enum { SLOT_FREE, SLOT_READY, SLOT_ERROR };

typedef struct {
    float *x;
    int32_t *y;
    int64_t size, first, global_size, batch_index;
    int state;
} slot;

struct clv_loader {
    clv_loader_config cfg;
    int64_t *order; /* position -> index into cfg.indices */
    int64_t n_batches, next_batch;
    slot slots[2];
    int held;        /* slot handed to the caller, -1 none */
    pthread_t worker;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    clv_err worker_err;
    size_t image_floats, pixel_cap;
};

clv_loader_config clv_loader_defaults(void)
{
    clv_loader_config c;
    memset(&c, 0, sizeof c);
    c.batch = 128;
    c.crop_padding = 4;
    c.out_c = 3;
    c.out_h = c.out_w = 32;
    for (int k = 0; k < 3; k++)
        c.std[k] = 1.0f;
    return c;
}

/* Fills s with batch b; 0 or -1 (err set). Runs on the worker thread. */
static int prepare(clv_loader *ld, slot *s, int64_t b, uint8_t *pixels, float *tmp, clv_err *err)
{
    const clv_loader_config *c = &ld->cfg;
    const int64_t start = b * c->batch;
    const int64_t global = c->count - start < c->batch ? c->count - start : c->batch;
    int64_t first = start, size = global;
    if (c->shard_count > 1) { /* this rank's contiguous share, as clv_dist_shard splits it */
        int64_t q = global / c->shard_count, r = global % c->shard_count, k = c->shard_rank;
        first = start + k * q + (k < r ? k : r);
        size = q + (k < r);
    }
    clv_present pr = {c->out_c, c->out_h, c->out_w, c->fit_resize, {0}, {0}};
    memcpy(pr.mean, c->mean, sizeof pr.mean);
    memcpy(pr.std, c->std, sizeof pr.std);
    float fill[3];
    for (int k = 0; k < 3; k++)
        fill[k] = c->std[k] > 0 ? -c->mean[k] / c->std[k] : 0;
    const uint64_t akey = clv_rng_key(c->seed, CLV_STREAM_AUGMENT, (uint64_t)c->task, (uint64_t)c->epoch);
    const int photos = c->dataset->height == 0; /* image files of varying sizes */
    for (int64_t i = 0; i < size; i++) {
        int64_t pos = first + i, k = ld->order[pos], idx = c->indices[k];
        int h, w;
        if (c->dataset->ops->get(c->dataset, idx, pixels, ld->pixel_cap, &h, &w, err))
            return -1;
        float *img = s->x + (size_t)i * ld->image_floats;
        int rc;
        if (photos) { /* files of any size: random resized crop + flip to train, the 0.875 center crop to test */
            const clv_crop_box box = c->augment ? clv_random_resized_crop_box(h, w, akey, pos)
                                                : clv_center_crop_box(h, w, c->out_h, c->out_w, 0.875);
            rc = clv_present_crop(&pr, pixels, h, w, c->dataset->channels, &box, img, err);
        } else {
            rc = clv_present_image(&pr, pixels, h, w, c->dataset->channels, img, err);
        }
        if (rc)
            return clv_err_prefix(err, "%s image %lld", c->dataset->path, (long long)idx);
        if (c->augment)
            clv_augment_image(img, tmp, c->out_c, c->out_h, c->out_w, photos ? 0 : c->crop_padding, c->flip, fill,
                              akey, pos);
        s->y[i] = c->labels[k];
    }
    s->size = size;
    s->first = first;
    s->global_size = global;
    s->batch_index = b;
    return 0;
}

static void *worker_main(void *arg)
{
    clv_loader *ld = arg;
    /* it was created by the main thread, which a binding asked of OpenMP ties to one CPU: without
     * this it would share that CPU with OpenMP's first thread while the other CPUs wait on it */
    if (clv_thread_spread_over_places() < 0)
        clv_debug("loader: its thread could not leave the CPUs of the thread that started it");
    if (clv_log_get_level() >= CLV_LOG_DEBUG) {
        char cpus[128];
        clv_debug("loader: its thread runs on CPUs %s", clv_thread_cpus(cpus, sizeof cpus));
    }
    uint8_t *pixels = malloc(ld->pixel_cap);
    float *tmp = malloc(ld->image_floats * sizeof *tmp);
    int64_t b = ld->cfg.skip_batches;
    int turn = 0;
    pthread_mutex_lock(&ld->mu);
    if (!pixels || !tmp) {
        clv_errf(&ld->worker_err, "out of memory in the loader");
        ld->slots[0].state = SLOT_ERROR;
        pthread_cond_broadcast(&ld->cv);
        b = ld->n_batches;
    }
    while (b < ld->n_batches && !ld->stop) {
        slot *s = &ld->slots[turn];
        while (!ld->stop && (s->state != SLOT_FREE || ld->held == turn))
            pthread_cond_wait(&ld->cv, &ld->mu);
        if (ld->stop)
            break;
        pthread_mutex_unlock(&ld->mu);
        clv_err err = {{0}};
        int rc = prepare(ld, s, b, pixels, tmp, &err);
        pthread_mutex_lock(&ld->mu);
        if (rc) {
            ld->worker_err = err;
            s->state = SLOT_ERROR;
            pthread_cond_broadcast(&ld->cv);
            break;
        }
        s->state = SLOT_READY;
        pthread_cond_broadcast(&ld->cv);
        b++;
        turn ^= 1;
    }
    pthread_mutex_unlock(&ld->mu);
    free(pixels);
    free(tmp);
    return NULL;
}

clv_loader *clv_loader_start(const clv_loader_config *cfg, clv_err *err)
{
    const clv_dataset *ds = cfg->dataset;
    if (!ds || cfg->count < 0 || (cfg->count && (!cfg->indices || !cfg->labels)) || cfg->batch < 1 ||
        cfg->out_c < 1 || cfg->out_h < 1 || cfg->out_w < 1 || cfg->skip_batches < 0 || cfg->crop_padding < 0 ||
        cfg->shard_count < 0 || (cfg->shard_count > 0 && (cfg->shard_rank < 0 || cfg->shard_rank >= cfg->shard_count))) {
        clv_errf(err, "loader: invalid configuration");
        return NULL;
    }
    for (int64_t k = 0; k < cfg->count; k++)
        if (cfg->indices[k] < 0 || cfg->indices[k] >= ds->n) {
            clv_errf(err, "loader: sample %lld is not in %s (%lld images)", (long long)cfg->indices[k], ds->path,
                     (long long)ds->n);
            return NULL;
        }
    clv_loader *ld = calloc(1, sizeof *ld);
    if (!ld) {
        clv_errf(err, "out of memory");
        return NULL;
    }
    ld->cfg = *cfg;
    ld->held = -1;
    ld->n_batches = cfg->drop_last ? cfg->count / cfg->batch : (cfg->count + cfg->batch - 1) / cfg->batch;
    ld->next_batch = cfg->skip_batches;
    ld->image_floats = (size_t)cfg->out_c * cfg->out_h * cfg->out_w;
    /* variable-size sets (image folders) size their buffer by their largest image */
    int h = ds->height ? ds->height : 4096, w = ds->width ? ds->width : 4096;
    ld->pixel_cap = (size_t)h * w * (size_t)ds->channels;
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->cv, NULL);
    ld->order = malloc((size_t)(cfg->count ? cfg->count : 1) * sizeof *ld->order);
    for (int s = 0; s < 2; s++) {
        ld->slots[s].x = clv_alloc_array((size_t)cfg->batch * ld->image_floats, sizeof(float));
        ld->slots[s].y = clv_alloc_array((size_t)cfg->batch, sizeof(int32_t));
    }
    if (!ld->order || !ld->slots[0].x || !ld->slots[1].x || !ld->slots[0].y || !ld->slots[1].y) {
        clv_errf(err, "out of memory for batches of %d", cfg->batch);
        clv_loader_stop(ld);
        return NULL;
    }
    if (cfg->shuffle)
        clv_rng_permutation(clv_rng_key(cfg->seed, CLV_STREAM_SHUFFLE, (uint64_t)cfg->task, (uint64_t)cfg->epoch),
                            ld->order, cfg->count);
    else
        for (int64_t k = 0; k < cfg->count; k++)
            ld->order[k] = k;
    if (ld->next_batch < ld->n_batches) {
        if (pthread_create(&ld->worker, NULL, worker_main, ld)) {
            clv_errf(err, "loader: cannot start its thread");
            clv_loader_stop(ld);
            return NULL;
        }
        ld->started = 1;
    }
    return ld;
}

int clv_loader_next(clv_loader *ld, clv_batch *batch, clv_err *err)
{
    pthread_mutex_lock(&ld->mu);
    if (ld->held >= 0) { /* the caller is done with the previous batch */
        ld->slots[ld->held].state = SLOT_FREE;
        ld->held = -1;
        pthread_cond_broadcast(&ld->cv);
    }
    if (ld->next_batch >= ld->n_batches) {
        pthread_mutex_unlock(&ld->mu);
        return 0;
    }
    int turn = (int)((ld->next_batch - ld->cfg.skip_batches) & 1);
    slot *s = &ld->slots[turn];
    while (s->state == SLOT_FREE && ld->slots[turn ^ 1].state != SLOT_ERROR)
        pthread_cond_wait(&ld->cv, &ld->mu);
    if (s->state != SLOT_READY) { /* the worker failed on this batch (or could not start) */
        if (err)
            *err = ld->worker_err;
        pthread_mutex_unlock(&ld->mu);
        return -1;
    }
    ld->held = turn;
    ld->next_batch++;
    batch->x = s->x;
    batch->y = s->y;
    batch->size = s->size;
    batch->first = s->first;
    batch->global_size = s->global_size;
    pthread_mutex_unlock(&ld->mu);
    return 1;
}

int64_t clv_loader_batches(const clv_loader *ld) { return ld->n_batches; }

void clv_loader_stop(clv_loader *ld)
{
    if (!ld)
        return;
    if (ld->started) {
        pthread_mutex_lock(&ld->mu);
        ld->stop = 1;
        pthread_cond_broadcast(&ld->cv);
        pthread_mutex_unlock(&ld->mu);
        pthread_join(ld->worker, NULL);
    }
    pthread_mutex_destroy(&ld->mu);
    pthread_cond_destroy(&ld->cv);
    for (int s = 0; s < 2; s++) {
        clv_free(ld->slots[s].x);
        clv_free(ld->slots[s].y);
    }
    free(ld->order);
    free(ld);
}
