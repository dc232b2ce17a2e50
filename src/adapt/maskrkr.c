/* Mask-RKR on one weight layer (the paper's method): the real-valued RKR
 * tensors LM, RM, F are learned once (or drawn from a seed) and shared;
 * every later task learns binary masks over them,
 *   W_t = W + (LM * M^LM_t)(RM * M^RM_t),   output scaled by F * M^F_t,
 * by the straight-through estimator, and keeps only the masks' bits. The
 * tensors not named in mask_on are used unmasked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapt/task_adapter.h"
#include "clvit/gemm.h"

enum { LM, RM, F, N_KINDS };
static const int kind_flag[N_KINDS] = {CLV_MASK_LM, CLV_MASK_RM, CLV_MASK_F};
static const char *const score_name[N_KINDS] = {"s_lm", "s_rm", "s_f"};

typedef struct {
    task_adapter ta;
    int K, mask_on, shared_task; /* shared_task -2: drawn from a seed, every task masks */
    float tau;
    clv_param *shared[N_KINDS];  /* lm, rm, f */
    clv_params own;              /* the shared tensors when drawn from a seed */
    clv_param **scores[N_KINDS]; /* per task, while it trains (the strategy's lists own them) */
    uint8_t **bits[N_KINDS];     /* per task, after it */
    float *eff[N_KINDS];         /* the active task's masked tensors */
    float *dfactors;             /* the backward's gradients of the masked LM and RM, [rows K + K cols] */
    int formed;
} maskrkr;

static int64_t kind_numel(const maskrkr *m, int k) { return m->shared[k] ? m->shared[k]->numel : 0; }

static int task_has_state(const maskrkr *m, int t)
{
    if (t == m->shared_task)
        return 1;
    for (int k = 0; k < N_KINDS; k++)
        if ((m->mask_on & kind_flag[k]) && (m->scores[k][t] || m->bits[k][t]))
            return 1;
    return 0;
}

/* The active task's LM, RM, F after masking (pointers valid until the next change). */
static void form(maskrkr *m, const float **out)
{
    int t = m->ta.active;
    for (int k = 0; k < N_KINDS; k++) {
        const float *v = m->shared[k]->data;
        out[k] = v;
        if (t == m->shared_task || !(m->mask_on & kind_flag[k]))
            continue;
        const int64_t n = kind_numel(m, k);
        if (!m->formed) {
            if (m->scores[k][t]) {
                const float *s = m->scores[k][t]->data;
                for (int64_t i = 0; i < n; i++)
                    m->eff[k][i] = s[i] > m->tau ? v[i] : 0.0f;
            } else if (m->bits[k][t])
                clv_mask_apply(m->eff[k], v, m->bits[k][t], n);
            else
                memcpy(m->eff[k], v, (size_t)n * sizeof(float));
        }
        out[k] = m->eff[k];
    }
    m->formed = 1;
}

static int adapted(const maskrkr *m) { return m->ta.active >= 0 && m->shared[LM] && task_has_state(m, m->ta.active); }

static const float *mr_weight(clv_adapter *a, const clv_wlayer *l)
{
    maskrkr *m = a->state;
    if (!adapted(m))
        return l->weight->data;
    if (!m->ta.weff_valid) {
        const float *e[N_KINDS];
        form(m, e);
        task_adapter_form_lowrank(&m->ta, l, e[LM], e[RM], m->K);
        m->ta.weff_valid = 1;
    }
    return m->ta.weff;
}

static const float *mr_scale(clv_adapter *a, const clv_wlayer *l)
{
    maskrkr *m = a->state;
    if (!adapted(m))
        return NULL;
    const float *e[N_KINDS];
    form(m, e);
    return e[F];
}

static int mr_grads(clv_adapter *a, const clv_wlayer *l, const ta_grad *src, const float *ds, clv_err *err)
{
    maskrkr *m = a->state;
    if (!adapted(m))
        return task_adapter_identity_backward(&m->ta, l, src, err);
    const int t = m->ta.active, K = m->K;
    const float *e[N_KINDS];
    form(m, e);
    if (t == m->shared_task) { /* plain RKR on the shared tensors (and the base weight, when it trains with them) */
        if (task_adapter_identity_backward(&m->ta, l, src, err))
            return -1;
        return task_adapter_rkr_backward(&m->ta, l, m->shared[LM], m->shared[RM], m->shared[F], K, src, ds, err);
    }
    /* straight-through: dS = d(masked tensor) * tensor */
    clv_param *s_lm = m->scores[LM][t], *s_rm = m->scores[RM][t], *s_f = m->scores[F][t];
    const int64_t nA = m->ta.rows * K, nB = K * m->ta.cols;
    float *dA = m->dfactors;
    memset(dA, 0, (size_t)(nA + nB) * sizeof(float));
    float *dB = dA + nA;
    if (task_adapter_lowrank_backward(&m->ta, l, e[LM], e[RM], K, src, s_lm && s_lm->trainable ? dA : NULL,
                                      s_rm && s_rm->trainable ? dB : NULL, err))
        return -1;
    if (s_lm && s_lm->trainable)
        for (int64_t i = 0; i < nA; i++)
            s_lm->grad[i] += dA[i] * m->shared[LM]->data[i];
    if (s_rm && s_rm->trainable)
        for (int64_t i = 0; i < nB; i++)
            s_rm->grad[i] += dB[i] * m->shared[RM]->data[i];
    if (ds && s_f && s_f->trainable)
        for (int64_t c = 0; c < l->out; c++)
            s_f->grad[c] += ds[c] * m->shared[F]->data[c];
    return 0;
}

static void mr_invalidate(clv_adapter *a)
{
    maskrkr *m = a->state;
    m->ta.weff_valid = 0;
    m->formed = 0;
}

static void mr_free(clv_adapter *a)
{
    maskrkr *m = a->state;
    task_adapter_release(&m->ta);
    for (int k = 0; k < N_KINDS; k++) {
        for (int t = 0; m->bits[k] && t < m->ta.n_tasks; t++)
            free(m->bits[k][t]);
        free(m->bits[k]);
        free(m->scores[k]);
        clv_free(m->eff[k]);
    }
    clv_free(m->dfactors);
    clv_params_free(&m->own);
    free(m);
}

static int mr_backward(clv_adapter *a, const clv_wlayer *l, const float *x, const float *dy, const float *s,
                       int64_t N, const float *ds, clv_err *err)
{
    const ta_grad src = ta_grad_rows(x, dy, s, N);
    return mr_grads(a, l, &src, ds, err);
}

static int mr_backward_dweight(clv_adapter *a, const clv_wlayer *l, const float *dw, const float *ds, clv_err *err)
{
    const ta_grad src = ta_grad_dweight(dw);
    return mr_grads(a, l, &src, ds, err);
}

/* the active task's masked factors, for a layer that adds their product beside its GEMM */
static int mr_lowrank(clv_adapter *a, const clv_wlayer *l, const float **A, const float **B)
{
    (void)l;
    maskrkr *m = a->state;
    if (!adapted(m) || m->ta.conv_k)
        return 0;
    const float *e[N_KINDS];
    form(m, e);
    *A = e[LM];
    *B = e[RM];
    return m->K;
}

static const clv_adapter_ops mr_ops = {"maskrkr", mr_weight, mr_scale, mr_backward, mr_invalidate, mr_free,
                                       mr_backward_dweight, mr_lowrank, NULL};

clv_adapter *clv_maskrkr_create(const clv_wlayer *l, int n_tasks, int rank, float threshold, int mask_on,
                                clv_conv_view view, clv_err *err)
{
    if (rank < 1) {
        clv_errf(err, "%s: rank %d must be at least 1", l->name, rank);
        return NULL;
    }
    maskrkr *m = calloc(1, sizeof *m);
    if (!m) {
        clv_errf(err, "out of memory");
        return NULL;
    }
    clv_params_init(&m->own);
    m->K = rank;
    m->tau = threshold;
    m->mask_on = mask_on;
    m->shared_task = -2;
    m->ta.n_tasks = n_tasks;
    int ok = !task_adapter_init(&m->ta, &mr_ops, l, n_tasks, view, err);
    if (ok && rank > task_adapter_max_rank(&m->ta)) /* a rank beyond the layer's is the layer's */
        m->K = rank = (int)task_adapter_max_rank(&m->ta);
    const int64_t sizes[N_KINDS] = {m->ta.rows * rank, rank * m->ta.cols, l->out};
    for (int k = 0; ok && k < N_KINDS; k++) {
        m->scores[k] = calloc((size_t)n_tasks, sizeof *m->scores[k]);
        m->bits[k] = calloc((size_t)n_tasks, sizeof *m->bits[k]);
        m->eff[k] = clv_alloc_array((size_t)sizes[k], sizeof(float));
        ok = m->scores[k] && m->bits[k] && m->eff[k];
    }
    if (ok)
        ok = (m->dfactors = clv_alloc_array((size_t)(sizes[LM] + sizes[RM]), sizeof(float))) != NULL;
    return task_adapter_made(&m->ta, m, ok, mr_free, err);
}

/* LM, RM standard normal from key, then both times c so that
 * ||LM RM||_F = ratio ||W||_F (c^2 ||LM0 RM0|| = ratio ||W||). In RKR's conv
 * view the placement only permutes entries: the norms are the same. */
static void draw_scaled(maskrkr *m, const clv_wlayer *l, clv_param *lm, clv_param *rm, uint64_t key, float ratio)
{
    for (int64_t i = 0; i < lm->numel; i++)
        lm->data[i] = clv_rng_normal(key, (uint64_t)i);
    for (int64_t i = 0; i < rm->numel; i++)
        rm->data[i] = clv_rng_normal(key, (uint64_t)(lm->numel + i));
    /* the product in weff's buffer (rows x cols = out x in floats), which is re-formed before any use */
    float *p = m->ta.weff;
    clv_gemm(0, 0, m->ta.rows, m->ta.cols, m->K, 1.0f, lm->data, m->K, rm->data, m->ta.cols, 0.0f, p, m->ta.cols);
    double pn = 0, wn = 0;
    for (int64_t i = 0; i < m->ta.rows * m->ta.cols; i++)
        pn += (double)p[i] * p[i];
    for (int64_t i = 0; i < l->out * l->in; i++)
        wn += (double)l->weight->data[i] * l->weight->data[i];
    const float c = pn > 0 ? (float)sqrt((double)ratio * sqrt(wn) / sqrt(pn)) : 0.0f;
    for (int64_t i = 0; i < lm->numel; i++)
        lm->data[i] *= c;
    for (int64_t i = 0; i < rm->numel; i++)
        rm->data[i] *= c;
    m->ta.weff_valid = 0;
}

int clv_maskrkr_add_shared(clv_adapter *a, const clv_wlayer *l, int shared_task, int learn, uint64_t key, float ratio,
                           float lr, clv_params *ps, clv_err *err)
{
    maskrkr *m = a->state;
    if (m->shared[LM])
        return clv_errf(err, "%s: the shared RKR tensors exist already", l->name);
    clv_params *dst = learn ? ps : &m->own;
    clv_param *lm = task_adapter_param(dst, l, "lm", 2, m->ta.rows, m->K, learn, lr, err);
    clv_param *rm = lm ? task_adapter_param(dst, l, "rm", 2, m->K, m->ta.cols, learn, lr, err) : NULL;
    clv_param *f = rm ? task_adapter_param(dst, l, "f", 1, l->out, 0, learn, lr, err) : NULL;
    if (!f)
        return -1;
    if (learn) { /* as RKR: RM = 0 so the task starts as the base */
        for (int64_t i = 0; i < lm->numel; i++)
            lm->data[i] = 0.02f * clv_rng_normal(key, (uint64_t)i);
        memset(rm->data, 0, (size_t)rm->numel * sizeof(float));
    } else
        draw_scaled(m, l, lm, rm, key, ratio);
    for (int64_t i = 0; i < f->numel; i++)
        f->data[i] = 1.0f;
    m->shared[LM] = lm;
    m->shared[RM] = rm;
    m->shared[F] = f;
    m->shared_task = learn ? shared_task : -2;
    mr_invalidate(a);
    return 0;
}

clv_param *clv_maskrkr_shared(const clv_adapter *a, int which)
{
    const maskrkr *m = a->state;
    int k = which == CLV_MASK_LM ? LM : which == CLV_MASK_RM ? RM : F;
    return m->shared[k];
}

int clv_maskrkr_add_task(clv_adapter *a, const clv_wlayer *l, int task, float init, float lr, clv_params *ps,
                         clv_err *err)
{
    maskrkr *m = a->state;
    if (!m->shared[LM] || task < 0 || task >= m->ta.n_tasks || task == m->shared_task)
        return clv_errf(err, "%s: Mask-RKR task %d has no shared tensors to mask", l->name, task + 1);
    for (int k = 0; k < N_KINDS; k++) {
        if (!(m->mask_on & kind_flag[k]))
            continue;
        if (m->scores[k][task] || m->bits[k][task])
            return clv_errf(err, "%s: Mask-RKR task %d exists", l->name, task + 1);
        const clv_param *s = m->shared[k];
        clv_param *p = task_adapter_param(ps, l, score_name[k], s->ndim, s->shape[0], s->ndim > 1 ? s->shape[1] : 0,
                                          1, lr, err);
        if (!p)
            return -1;
        for (int64_t i = 0; i < p->numel; i++)
            p->data[i] = init;
        p->mask_score = 1;
        m->scores[k][task] = p;
    }
    mr_invalidate(a);
    return 0;
}

int clv_maskrkr_freeze(clv_adapter *a, int task, clv_err *err)
{
    maskrkr *m = a->state;
    for (int k = 0; k < N_KINDS; k++) {
        clv_param *s = m->scores[k][task];
        if (!s)
            continue;
        if (!(m->bits[k][task] = malloc((size_t)clv_mask_bytes(s->numel))))
            return clv_errf(err, "out of memory");
        clv_mask_pack(m->bits[k][task], s->data, s->numel, m->tau);
        m->scores[k][task] = NULL;
    }
    mr_invalidate(a);
    return 0;
}

static int kind_of(int which) { return which == CLV_MASK_LM ? LM : which == CLV_MASK_RM ? RM : which == CLV_MASK_F ? F : -1; }

const uint8_t *clv_maskrkr_mask(const clv_adapter *a, int task, int which, int64_t *n)
{
    const maskrkr *m = a->state;
    int k = kind_of(which);
    if (k < 0 || task < 0 || task >= m->ta.n_tasks)
        return NULL;
    *n = kind_numel(m, k);
    return m->bits[k][task];
}

static int set_mask(clv_adapter *a, int task, int which, const uint8_t *bits, clv_err *err)
{
    maskrkr *m = a->state;
    int k = kind_of(which);
    if (k < 0 || task < 0 || task >= m->ta.n_tasks || !m->shared[k])
        return clv_errf(err, "Mask-RKR: no tensor to mask for task %d", task + 1);
    size_t bytes = (size_t)clv_mask_bytes(kind_numel(m, k));
    uint8_t *b = malloc(bytes);
    if (!b)
        return clv_errf(err, "out of memory");
    memcpy(b, bits, bytes);
    free(m->bits[k][task]);
    m->bits[k][task] = b;
    m->scores[k][task] = NULL;
    mr_invalidate(a);
    return 0;
}

int64_t clv_maskrkr_task_bits(const clv_adapter *a, int task)
{
    const maskrkr *m = a->state;
    if (task < 0 || task >= m->ta.n_tasks || task == m->shared_task || !m->shared[LM])
        return 0;
    int64_t bits = 0;
    for (int k = 0; k < N_KINDS; k++)
        if (m->mask_on & kind_flag[k])
            bits += kind_numel(m, k);
    return bits;
}

/* ---- the lifecycle (clv_adapter_method) ----
 * The shared task (settings' shared_task) learns LM, RM, F as plain RKR and
 * keeps them as floats; every other task keeps 1 bit per masked element.
 * Drawn tensors (shared_task -2) are made at the first task that masks
 * them, once the base is final. */

#define FILE_PREFIX "maskrkr."
static const char *const kind_name[N_KINDS] = {"lm", "rm", "f"};

static clv_adapter *life_create(const clv_wlayer *l, const clv_adapter_settings *set, clv_err *err)
{
    return task_adapter_with_settings(
        clv_maskrkr_create(l, set->n_tasks, set->rank, set->threshold, set->mask_on, set->view, err), set);
}

static int is_shared_task(const maskrkr *m, int task) { return task == m->ta.set.shared_task; }

/* LM, RM, F learned in task's list ps, or drawn from the seed (not trainable). */
static int add_shared(clv_adapter *a, const clv_wlayer *l, clv_params *ps, clv_err *err)
{
    const maskrkr *m = a->state;
    const clv_adapter_settings *set = &m->ta.set;
    const int learn = set->shared_task != -2;
    return clv_maskrkr_add_shared(a, l, set->shared_task, learn, task_adapter_key(&m->ta, 0), set->random_ratio,
                                  set->lr, ps, err);
}

/* Before a masking task: the shared tensors exist (drawn now, when they are drawn). */
static int need_shared(clv_adapter *a, const clv_wlayer *l, int task, clv_err *err)
{
    const maskrkr *m = a->state;
    if (m->shared[LM])
        return 0;
    if (m->ta.set.shared_task == -2)
        return add_shared(a, l, NULL, err);
    return clv_errf(err, "maskrkr: task %d has no shared LM, RM, F to mask (the base file did not keep them?)",
                    task + 1);
}

static int life_add_task(clv_adapter *a, const clv_wlayer *l, int task, clv_params *ps, clv_err *err)
{
    const maskrkr *m = a->state;
    if (is_shared_task(m, task))
        return add_shared(a, l, ps, err);
    if (need_shared(a, l, task, err))
        return -1;
    return clv_maskrkr_add_task(a, l, task, m->ta.set.mask_init, m->ta.set.lr_mask, ps, err);
}

static int life_end_task(clv_adapter *a, const clv_wlayer *l, int task, clv_err *err)
{
    if (is_shared_task(a->state, task))
        return 0; /* LM, RM, F are kept (frozen) */
    return clv_maskrkr_freeze(a, task, err) ? -1 : 1; /* the scores: only the bits are kept */
}

static int life_has_task(const clv_adapter *a, int task)
{
    const maskrkr *m = a->state;
    return task >= 0 && task < m->ta.n_tasks && m->shared[LM] && task_has_state(m, task);
}

static void life_storage(const clv_adapter *a, const clv_wlayer *l, int task, clv_storage *out)
{
    const maskrkr *m = a->state;
    const int shared = is_shared_task(m, task);
    if (shared) /* learned once and used by every later task */
        out->one_time_task = 1;
    for (int k = 0; k < N_KINDS; k++) {
        char kind[24];
        if (shared) { /* the real-valued LM, RM, F: "shared_lm" ... */
            snprintf(kind, sizeof kind, CLV_STORAGE_SHARED_PREFIX "%s", kind_name[k]);
            clv_storage_add_floats(out, kind, kind_numel(m, k));
        } else if (m->mask_on & kind_flag[k]) {
            snprintf(kind, sizeof kind, "%s_mask", kind_name[k]);
            clv_storage_add_bits(out, kind, kind_numel(m, k));
        }
    }
}

static int life_save(const clv_adapter *a, const clv_wlayer *l, int task, clv_st_writer *w, clv_err *err)
{
    const maskrkr *m = a->state;
    if (is_shared_task(m, task)) {
        if (!m->shared[LM])
            return clv_errf(err, "%s: no shared LM, RM, F to save", l->name);
        return task_adapter_save_params(m->shared, N_KINDS, FILE_PREFIX, w, err);
    }
    for (int k = 0; k < N_KINDS; k++)
        if ((m->mask_on & kind_flag[k]) &&
            task_adapter_save_mask(w, l, kind_name[k], task >= 0 && task < m->ta.n_tasks ? m->bits[k][task] : NULL,
                                   kind_numel(m, k), err))
            return -1;
    return 1;
}

static int life_load(clv_adapter *a, const clv_wlayer *l, int task, const clv_safetensors *st, clv_params *ps,
                     clv_err *err)
{
    maskrkr *m = a->state;
    if (is_shared_task(m, task))
        return add_shared(a, l, ps, err) || task_adapter_load_params(st, m->shared, N_KINDS, FILE_PREFIX, err) ? -1 : 0;
    if (need_shared(a, l, task, err))
        return -1;
    for (int k = 0; k < N_KINDS; k++) {
        if (!(m->mask_on & kind_flag[k]))
            continue;
        const uint8_t *bits = task_adapter_find_mask(st, l, kind_name[k], kind_numel(m, k), err);
        if (!bits || set_mask(a, task, kind_flag[k], bits, err))
            return -1;
    }
    return 0;
}

/* name, create, add_task, end_task, has_task, task_storage, save_task, load_task, mask_note */
const clv_adapter_method clv_adapter_maskrkr = {
    "maskrkr", life_create, life_add_task, life_end_task, life_has_task, life_storage, life_save, life_load,
    "1 bit per masked element, row-major, least significant bit first"};

