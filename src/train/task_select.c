/* Task-agnostic inference: the confidence scores, the choice between
 * tasks, and the task-agnostic evaluation of a run (clvit/task_select.h). */
#include "clvit/task_select.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/run_lock.h"
#include "train/router.h"

int clv_task_select_parse(const char *s, clv_task_select *out, clv_err *err)
{
    if (s && !strcmp(s, "maxprob"))
        *out = CLV_SELECT_MAXPROB;
    else if (s && !strcmp(s, "entropy"))
        *out = CLV_SELECT_ENTROPY;
    else
        return clv_errf(err, "--task-select: '%s' is not maxprob or entropy", s ? s : "");
    return 0;
}

const char *clv_task_select_name(clv_task_select sel) { return sel == CLV_SELECT_ENTROPY ? "entropy" : "maxprob"; }

void clv_task_scores(const float *logits, int K, int *label, double *maxprob, double *entropy)
{
    int best = 0;
    for (int i = 1; i < K; i++)
        if (logits[i] > logits[best])
            best = i;
    /* softmax relative to the largest logit: p_i = e^(z_i - z_max) / s */
    double s = 0, ez = 0;
    for (int i = 0; i < K; i++) {
        double d = (double)logits[i] - logits[best], e = exp(d);
        s += e;
        ez += e * d;
    }
    *label = best;
    *maxprob = 1.0 / s;
    /* H = -sum p_i ln p_i = ln s - sum p_i (z_i - z_max), over ln K to compare heads of any size */
    double h = log(s) - ez / s;
    *entropy = K > 1 ? fmax(0.0, h / log((double)K)) : 0.0;
}

int clv_task_scores_better(clv_task_select sel, double a_maxprob, double a_entropy, double c_maxprob,
                           double c_entropy)
{
    return sel == CLV_SELECT_ENTROPY ? a_entropy < c_entropy : a_maxprob > c_maxprob;
}

void clv_agnostic_free(clv_agnostic *a)
{
    free(a->images);
    free(a->routed);
    free(a->correct);
    memset(a, 0, sizeof *a);
}

double clv_agnostic_routing(const clv_agnostic *a, int t)
{
    return a->images[t] ? 100.0 * (double)a->routed[(size_t)t * a->n_tasks + t] / (double)a->images[t] : NAN;
}

double clv_agnostic_accuracy(const clv_agnostic *a, int t)
{
    return a->images[t] ? 100.0 * (double)a->correct[t] / (double)a->images[t] : NAN;
}

static double mean_over_tasks(const clv_agnostic *a, double (*f)(const clv_agnostic *, int))
{
    double s = 0;
    int n = 0;
    for (int t = 0; t < a->n_tasks; t++)
        if (a->images[t]) {
            s += f(a, t);
            n++;
        }
    return n ? s / n : NAN;
}

double clv_agnostic_mean_routing(const clv_agnostic *a) { return mean_over_tasks(a, clv_agnostic_routing); }
double clv_agnostic_mean_accuracy(const clv_agnostic *a) { return mean_over_tasks(a, clv_agnostic_accuracy); }

/* Routes task t's test images among all learned tasks, counting into a. */
static int route_task(clv_run *R, clv_router *ro, int t, clv_agnostic *a, clv_route *routes, clv_err *err)
{
    clv_loader_config lc = clv_run_test_loader_config(R, t);
    clv_loader *ld = clv_loader_start(&lc, err);
    if (!ld)
        return -1;
    clv_batch b;
    int rc;
    while ((rc = clv_loader_next(ld, &b, err)) == 1) {
        if (!b.size)
            continue;
        if (clv_router_route(ro, R, a->select, b.x, b.size, routes, err)) {
            rc = -1;
            break;
        }
        for (int64_t i = 0; i < b.size; i++) {
            a->routed[(size_t)t * a->n_tasks + routes[i].task]++;
            a->correct[t] += routes[i].task == t && routes[i].label == b.y[i];
        }
        a->images[t] += b.size;
    }
    clv_loader_stop(ld);
    return rc < 0 ? -1 : 0;
}

static cJSON *agnostic_json(const clv_agnostic *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "select", clv_task_select_name(a->select));
    cJSON_AddStringToObject(o, "definition",
                            "each learned task's test images routed among all learned tasks by the most confident "
                            "head; routing: percent routed to their own task; accuracy: percent with both task "
                            "and class right (over the union of all tasks' classes)");
    cJSON *ts = cJSON_AddArrayToObject(o, "tasks");
    for (int t = 0; t < a->n_tasks; t++) {
        if (!a->images[t])
            continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "task", t + 1);
        cJSON_AddNumberToObject(e, "images", (double)a->images[t]);
        cJSON_AddNumberToObject(e, "routed_here", (double)a->routed[(size_t)t * a->n_tasks + t]);
        cJSON_AddNumberToObject(e, "correct", (double)a->correct[t]);
        cJSON_AddNumberToObject(e, "routing", clv_agnostic_routing(a, t));
        cJSON_AddNumberToObject(e, "accuracy", clv_agnostic_accuracy(a, t));
        cJSON *to = cJSON_AddArrayToObject(e, "routed_to");
        for (int u = 0; u < a->n_tasks; u++)
            cJSON_AddItemToArray(to, cJSON_CreateNumber((double)a->routed[(size_t)t * a->n_tasks + u]));
        cJSON_AddItemToArray(ts, e);
    }
    cJSON_AddNumberToObject(o, "routing", clv_agnostic_mean_routing(a));
    cJSON_AddNumberToObject(o, "accuracy", clv_agnostic_mean_accuracy(a));
    cJSON_AddNumberToObject(o, "forwards_per_image", a->groups);
    cJSON_AddNumberToObject(o, "seconds", a->seconds);
    return o;
}

int clv_eval_task_agnostic(const char *run_dir, int threads, int precision, clv_task_select sel, int write, clv_agnostic *out,
                           clv_err *err)
{
    clv_run R;
    clv_config cfg;
    clv_router ro = {0};
    clv_route *routes = NULL;
    int rc = -1, lock = -1;
    memset(&R, 0, sizeof R);
    memset(out, 0, sizeof *out);
    out->select = sel;
    if (clv_run_record_read(&R.rec, &cfg, run_dir, err))
        goto done;
    if (write && (lock = clv_run_lock(run_dir, err)) < 0)
        goto done;
    if (threads > 0)
        cfg.threads = threads;
    if (precision >= 0)
        cfg.precision = (clv_precision)precision;
    clv_threads_set(cfg.threads);
    R.cfg = &cfg;
    R.dir = run_dir;
    double t0 = clv_now();
    if (clv_run_open_data(&R, err) || clv_run_build_learner(&R, 1, err) || clv_router_init(&ro, &R, err))
        goto done;
    const int T = R.rec.n_tasks;
    out->n_tasks = T;
    out->groups = ro.groups;
    out->images = calloc((size_t)T, sizeof *out->images);
    out->correct = calloc((size_t)T, sizeof *out->correct);
    out->routed = calloc((size_t)T * T, sizeof *out->routed);
    routes = malloc((size_t)cfg.eval_batch * sizeof *routes);
    if (!out->images || !out->correct || !out->routed || !routes) {
        clv_errf(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < ro.n; i++)
        if (route_task(&R, &ro, ro.task[i], out, routes, err))
            goto done;
    out->seconds = clv_now() - t0;
    if (write) {
        cJSON *o = agnostic_json(out);
        char *text = o ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        int w = !text ? clv_errf(err, "out of memory") : clv_run_record_put(run_dir, "task_agnostic", text, err);
        free(text);
        if (w)
            goto done;
    }
    rc = 0;
done:
    if (rc)
        clv_agnostic_free(out);
    free(routes);
    clv_router_free(&ro);
    clv_run_free(&R);
    clv_run_unlock(lock);
    return rc;
}
