/* Finite-difference gradient checker shared by the tests (see gradcheck.h). */
#include "gradcheck.h"

#include "clvit/core.h"

#include <math.h>
#include <stdio.h>

gradcheck_opts gradcheck_defaults(void)
{
    gradcheck_opts o = {.eps = 1e-2f, .floor = 1e-2, .max_probes = 0};
    return o;
}

int gradcheck_run(float *x, const float *grad, int64_t n, gradcheck_loss_fn loss, void *ctx,
                  const gradcheck_opts *opts, gradcheck_result *res)
{
    const gradcheck_opts o = opts ? *opts : gradcheck_defaults();
    gradcheck_result r = {.max_rel = 0, .max_abs = 0, .worst = -1, .analytic = 0, .numeric = 0, .probed = 0};
    double gmax = 0;
    for (int64_t i = 0; i < n; i++)
        gmax = fmax(gmax, fabs((double)grad[i]));
    /* a gradient that is zero everywhere is still judged: floor of 1e-6 */
    const double floor_abs = fmax(o.floor * gmax, 1e-6);
    const int64_t probes = (o.max_probes > 0 && o.max_probes < n) ? o.max_probes : n;
    int rc = 0;
    for (int64_t k = 0; k < probes; k++) {
        /* evenly spread, and never only the first rows */
        const int64_t i = probes == n ? k : (int64_t)(((double)k + 0.5) * (double)n / (double)probes);
        const float x0 = x[i];
        const float xp = x0 + o.eps, xm = x0 - o.eps;
        x[i] = xp;
        const double lp = loss(ctx);
        x[i] = xm;
        const double lm = loss(ctx);
        x[i] = x0;
        const double num = (lp - lm) / ((double)xp - (double)xm);
        const double ana = grad[i];
        r.probed++;
        if (!isfinite(num)) {
            r.worst = i;
            r.numeric = num;
            r.analytic = ana;
            r.max_rel = INFINITY;
            rc = -1;
            break;
        }
        const double ad = fabs(ana - num);
        const double den = fmax(fmax(fabs(ana), fabs(num)), floor_abs);
        if (ad > r.max_abs)
            r.max_abs = ad;
        if (ad / den > r.max_rel || r.worst < 0) {
            r.max_rel = ad / den;
            r.worst = i;
            r.analytic = ana;
            r.numeric = num;
        }
    }
    if (res)
        *res = r;
    return rc;
}

const char *gradcheck_str(const gradcheck_result *res, char *buf, size_t len)
{
    snprintf(buf, len, "max_rel %.3g at [%lld]: analytic %.6g numeric %.6g (probed %lld, max_abs %.3g)", res->max_rel,
             (long long)res->worst, res->analytic, res->numeric, (long long)res->probed, res->max_abs);
    return buf;
}

double gradcheck_dot(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)a[i] * (double)b[i];
    return s;
}

void gradcheck_fill(float *a, int64_t n, uint64_t seed, float lo, float hi)
{
    const uint64_t key = clv_rng_key(seed, CLV_STREAM_BENCH, 0x67726164, 0);
    for (int64_t i = 0; i < n; i++)
        a[i] = lo + (hi - lo) * clv_rng_uniform(key, (uint64_t)i);
}

double gradcheck_max_rel_diff(const float *a, const double *b, int64_t n, double floor)
{
    double bmax = floor, d = 0;
    for (int64_t i = 0; i < n; i++)
        bmax = fmax(bmax, fabs(b[i]));
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs((double)a[i] - b[i]);
        if (!(e <= d)) /* catches NaN too */
            d = isnan(e) ? INFINITY : e;
    }
    return d / bmax;
}
