/* Data-parallel primitives in a single process: shards cover every item
 * exactly once and collectives on one rank are the identity. (The 2-rank
 * equivalence runs under mpirun in tests/mpi_check.sh.) */
#include <criterion/criterion.h>

#include "clvit/dist.h"

Test(dist, shards_partition_the_items)
{
    for (int size = 1; size <= 5; size++)
        for (int64_t n = 0; n <= 13; n++) {
            int64_t next = 0;
            for (int r = 0; r < size; r++) {
                clv_dist d = {.rank = r, .size = size};
                int64_t b, e;
                clv_dist_shard(&d, n, &b, &e);
                cr_assert_eq(b, next, "size %d n %lld rank %d starts where the previous ended", size, (long long)n, r);
                cr_assert(e - b == n / size || e - b == n / size + 1, "balanced");
                next = e;
            }
            cr_assert_eq(next, n, "all items covered");
        }
}

Test(dist, single_rank_collectives_are_identity)
{
    clv_dist d = clv_dist_single();
    cr_assert_eq(d.rank, 0);
    cr_assert_eq(d.size, 1);
    clv_params ps;
    clv_params_init(&ps);
    clv_err err = {{0}};
    int64_t shape[1] = {3};
    clv_param *p = clv_params_add(&ps, "w", 1, shape, &err);
    cr_assert_not_null(p);
    cr_assert_eq(clv_param_set_trainable(p, 1, &err), 0);
    p->grad[0] = 1.5f, p->grad[1] = -2, p->grad[2] = 0.25f;
    cr_assert_eq(clv_dist_allreduce_grads(&d, &ps, &err), 0);
    cr_assert_eq(p->grad[1], -2.0f);
    double v[2] = {1, 2};
    int64_t k[1] = {7};
    cr_assert_eq(clv_dist_allreduce_f64(&d, v, 2, &err), 0);
    cr_assert_eq(clv_dist_allreduce_i64(&d, k, 1, &err), 0);
    cr_assert(v[1] == 2 && k[0] == 7);
    clv_params_free(&ps);
}
