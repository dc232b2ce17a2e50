/* Data-parallel primitives over Open MPI (see clvit/dist.h); without MPI
 * every call is the identity on one rank. */
#include "clvit/dist.h"

#include <stdlib.h>
#include <string.h>

#if CLV_MPI
#include <mpi.h>
#endif

clv_dist clv_dist_single(void) { return (clv_dist){.rank = 0, .size = 1, .owns_mpi = 0}; }

int clv_dist_built_with_mpi(void) { return CLV_MPI; }

int clv_dist_init(clv_dist *d, int *argc, char ***argv, clv_err *err)
{
    *d = clv_dist_single();
#if CLV_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided;
        /* compute threads are OpenMP's; MPI is called from the main thread only */
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return clv_errf(err, "MPI_Init_thread failed");
        d->owns_mpi = 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
#else
    (void)argc, (void)argv, (void)err;
#endif
    return 0;
}

void clv_dist_finalize(clv_dist *d)
{
#if CLV_MPI
    if (d->owns_mpi)
        MPI_Finalize();
#endif
    d->owns_mpi = 0;
}

void clv_dist_shard(const clv_dist *d, int64_t n, int64_t *begin, int64_t *end)
{
    int64_t size = d && d->size > 0 ? d->size : 1, rank = d ? d->rank : 0;
    int64_t q = n / size, r = n % size;
    *begin = rank * q + (rank < r ? rank : r);
    *end = *begin + q + (rank < r);
}

#if CLV_MPI
/* MPI counts are int: reduce big buffers in pieces. */
static int allreduce_chunks(void *buf, int64_t n, MPI_Datatype type, size_t elem, clv_err *err)
{
    const int64_t chunk = 1 << 28;
    for (int64_t off = 0; off < n; off += chunk) {
        int c = (int)(n - off < chunk ? n - off : chunk);
        if (MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem, c, type, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return clv_errf(err, "MPI_Allreduce failed");
    }
    return 0;
}
#endif

int clv_dist_allreduce_grads(const clv_dist *d, clv_params *ps, clv_err *err)
{
    if (!d || d->size <= 1)
        return 0;
#if CLV_MPI
    /* one packed buffer: a single collective per step instead of one per tensor */
    int64_t total = 0;
    for (int i = 0; i < ps->count; i++)
        if (ps->items[i]->trainable && ps->items[i]->grad)
            total += ps->items[i]->numel;
    float *buf = clv_alloc_array((size_t)total, sizeof *buf);
    if (!buf)
        return clv_errf(err, "out of memory for the gradient buffer (%lld floats)", (long long)total);
    int64_t off = 0;
    for (int i = 0; i < ps->count; i++) {
        clv_param *p = ps->items[i];
        if (p->trainable && p->grad) {
            memcpy(buf + off, p->grad, (size_t)p->numel * sizeof *buf);
            off += p->numel;
        }
    }
    int rc = allreduce_chunks(buf, total, MPI_FLOAT, sizeof *buf, err);
    off = 0;
    for (int i = 0; !rc && i < ps->count; i++) {
        clv_param *p = ps->items[i];
        if (p->trainable && p->grad) {
            memcpy(p->grad, buf + off, (size_t)p->numel * sizeof *buf);
            off += p->numel;
        }
    }
    clv_free(buf);
    return rc;
#else
    (void)ps, (void)err;
    return 0;
#endif
}

int clv_dist_allreduce_f64(const clv_dist *d, double *v, int n, clv_err *err)
{
    if (!d || d->size <= 1)
        return 0;
#if CLV_MPI
    return allreduce_chunks(v, n, MPI_DOUBLE, sizeof *v, err);
#else
    (void)v, (void)n, (void)err;
    return 0;
#endif
}

int clv_dist_allreduce_i64(const clv_dist *d, int64_t *v, int n, clv_err *err)
{
    if (!d || d->size <= 1)
        return 0;
#if CLV_MPI
    return allreduce_chunks(v, n, MPI_INT64_T, sizeof *v, err);
#else
    (void)v, (void)n, (void)err;
    return 0;
#endif
}

int clv_dist_broadcast_params(const clv_dist *d, clv_params *ps, clv_err *err)
{
    if (!d || d->size <= 1)
        return 0;
#if CLV_MPI
    for (int i = 0; i < ps->count; i++) {
        clv_param *p = ps->items[i];
        for (int64_t off = 0; off < p->numel; off += 1 << 28) {
            int c = (int)(p->numel - off < (1 << 28) ? p->numel - off : (1 << 28));
            if (MPI_Bcast(p->data + off, c, MPI_FLOAT, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
                return clv_errf(err, "MPI_Bcast of %s failed", p->name);
        }
    }
    return 0;
#else
    (void)ps, (void)err;
    return 0;
#endif
}

void clv_dist_barrier(const clv_dist *d)
{
#if CLV_MPI
    if (d && d->size > 1)
        MPI_Barrier(MPI_COMM_WORLD);
#else
    (void)d;
#endif
}

void clv_dist_abort(const clv_dist *d, int code)
{
#if CLV_MPI
    if (d && d->size > 1)
        MPI_Abort(MPI_COMM_WORLD, code);
#else
    (void)d, (void)code;
#endif
}
