/* Data-parallel training across processes (Open MPI).
 *
 * Every rank holds the whole model and reads its own contiguous shard of
 * every global batch; gradients are summed across ranks with one
 * MPI_Allreduce per step (each rank scales its loss by its share of the
 * global batch, so the sum is the global batch's mean gradient). Rank 0
 * writes the run directory. Built without MPI (make MPI=1 not given), or run
 * without mpirun, everything here is a no-op on rank 0 of 1. */
#ifndef CLVIT_DIST_H
#define CLVIT_DIST_H

#include "clvit/param.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_dist {
    int rank, size;
    int owns_mpi; /* this process called MPI_Init and must finalize */
} clv_dist;

/* Rank 0 of 1 (the single-process default). */
clv_dist clv_dist_single(void);
/* Joins the MPI job when built with MPI (initializing it if needed). */
int clv_dist_init(clv_dist *d, int *argc, char ***argv, clv_err *err);
void clv_dist_finalize(clv_dist *d);
int clv_dist_built_with_mpi(void);

/* This rank's contiguous share [*begin, *end) of n items (balanced: the
 * first n % size ranks get one more). */
void clv_dist_shard(const clv_dist *d, int64_t n, int64_t *begin, int64_t *end);
/* Sums the gradients of the trainable params of ps across ranks, in place. */
int clv_dist_allreduce_grads(const clv_dist *d, clv_params *ps, clv_err *err);
int clv_dist_allreduce_f64(const clv_dist *d, double *v, int n, clv_err *err);
int clv_dist_allreduce_i64(const clv_dist *d, int64_t *v, int n, clv_err *err);
/* Every rank gets rank 0's values (e.g. parameters after initialization). */
int clv_dist_broadcast_params(const clv_dist *d, clv_params *ps, clv_err *err);
void clv_dist_barrier(const clv_dist *d);
/* Ends every rank of the job (after an error on one of them). */
void clv_dist_abort(const clv_dist *d, int code);

#ifdef __cplusplus
}
#endif
#endif
