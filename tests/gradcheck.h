/* Finite-difference gradient checks for the test suite (kernels, layers,
 * the model, adapters). Not part of the library.
 *
 * Usage: write a loss closure that runs your forward on the CURRENT contents
 * of the arrays it points at and returns a scalar, usually
 * gradcheck_dot(y, r, n) for a fixed random r (so that dL/dy = r and the
 * analytic gradient is your backward run once with dy = r, from zeroed
 * gradients). Then
 *
 *     gradcheck_result res;
 *     gradcheck_run(x, dx, n, loss_fn, ctx, NULL, &res);
 *     cr_expect(res.max_rel < 1e-2, "dx: %s", gradcheck_str(&res, buf, sizeof buf));
 *
 * perturbs each x[i] (or a deterministic sample of them) by +-eps in place,
 * restores it, and compares the central difference
 *     (L(x + h e_i) - L(x - h e_i)) / (2h)
 * with dx[i]; h is the step actually representable in float at x[i].
 * The relative error of one entry is
 *     |analytic - numeric| / max(|analytic|, |numeric|, floor * max_j |dx_j|)
 * so entries whose true gradient is ~0 are judged against the scale of the
 * whole gradient rather than against themselves.
 *
 * Float forwards: eps 1e-2..1e-3 and a tolerance of 1e-2 are sensible; keep
 * inputs away from kinks (ReLU at 0, max ties) by at least eps. Compute the
 * loss in double (gradcheck_dot does) so that its own rounding stays below
 * the differences being measured. */
#ifndef CLVIT_TESTS_GRADCHECK_H
#define CLVIT_TESTS_GRADCHECK_H

#include <stddef.h>
#include <stdint.h>

typedef double (*gradcheck_loss_fn)(void *ctx);

typedef struct gradcheck_opts {
    float eps;          /* step (absolute); default 1e-2 */
    double floor;       /* fraction of max |analytic| used as the smallest denominator; default 1e-2 */
    int64_t max_probes; /* check at most this many entries (evenly spread, deterministic); 0 = all */
} gradcheck_opts;

typedef struct gradcheck_result {
    double max_rel;      /* worst relative error as defined above */
    double max_abs;      /* worst |analytic - numeric| */
    int64_t worst;       /* index of the worst entry (by relative error), -1 if none probed */
    double analytic;     /* dx[worst] */
    double numeric;      /* central difference at worst */
    int64_t probed;      /* entries checked */
} gradcheck_result;

/* Defaults for a NULL opts: eps 1e-2, floor 1e-2, all entries. */
gradcheck_opts gradcheck_defaults(void);

/* Compares grad[0..n) with central differences of loss() in x[0..n).
 * x is modified during the call and restored bit-exactly. Returns 0, or -1
 * if a loss evaluation was not finite (res->worst then names the entry). */
int gradcheck_run(float *x, const float *grad, int64_t n, gradcheck_loss_fn loss, void *ctx,
                  const gradcheck_opts *opts, gradcheck_result *res);

/* "max_rel 3.1e-04 at [17]: analytic 0.1234 numeric 0.1235 (probed 40)" */
const char *gradcheck_str(const gradcheck_result *res, char *buf, size_t len);

/* sum a[i] * b[i] in double */
double gradcheck_dot(const float *a, const float *b, int64_t n);

/* Fills a[0..n) with uniform values in [lo, hi) drawn from seed (clv_rng). */
void gradcheck_fill(float *a, int64_t n, uint64_t seed, float lo, float hi);

/* max_i |a[i] - b[i]| / max(|b|_inf, floor): for comparing outputs with a
 * double reference (b = reference). */
double gradcheck_max_rel_diff(const float *a, const double *b, int64_t n, double floor);

#endif
