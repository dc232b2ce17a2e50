/* bf16 conversion, the per-model compute context and bf16 GEMM (see clvit/precision.h).
 *
 * With the oneDNN backend a bf16 GEMM is a dnnl matmul (bf16 src and
 * weights, f32 dst; transposes as strides, alpha as an output scale, beta as
 * a sum post-op). The context keeps the engine, the stream and the primitives
 * of the shapes it has seen (a model has a few dozen), so a step creates none.
 * Where oneDNN offers only its reference matmul for bf16 (CPUs before
 * AVX-512) or another backend is built, the bf16 operands go back to fp32 and
 * through clv_gemm: the same products (exact in fp32), another summation order. */
#include "clvit/precision.h"
#include "clvit/gemm.h"
#include "clvit/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(CLV_GEMM_dnnl)
#include <oneapi/dnnl/dnnl.h>
#define CACHE_SIZE 256 /* a model has a few dozen shapes (train, inference slices); Swin more */
typedef struct {
    int ta, tb, bias;
    int dst_bf16, gelu; /* a bf16 destination; erf GELU as a post-op */
    int res;                     /* a residual [M x N] (row stride ldc) added as a post-op */
    int bpack;                   /* B comes in fp32 (row stride ldb) and is reordered to the matmul's own layout */
    int64_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
} mm_key;
/* a batched product over a [nb x nh] grid: every operand a 4-d strided view */
/* the attention's few shapes, or a ResNet's bf16 Winograd chunks (forward, backward data and
 * weights per stage, short last chunks) */
#define BMM_CACHE_SIZE 64
typedef struct {
    int64_t nb, nh, M, N, K;
    int64_t as[4], bs[4], cs[4];
    float alpha;
    int dst_bf16, accumulate;
} bmm_key;
typedef struct {
    bmm_key key;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
} bmm_entry;
typedef struct {
    mm_key key;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c, bias, res;
    dnnl_primitive_t reorder; /* bpack: fp32 B (b_src) to bf16 in the matmul's layout (b) */
    dnnl_memory_t b_src;
    size_t b_bytes;
} mm_entry;
#endif

struct clv_compute {
    clv_precision precision;
    int use_dnnl; /* bf16 GEMMs on oneDNN's matmul (else the converting path) */
    char impl[96];  /* oneDNN's implementation of a probe matmul, or why not */
    /* grow-only scratch: the two converted operands, and fp32 copies for the converting path */
    clv_bf16 *h[2];
    size_t h_cap[2];
    void *packed; /* B in a packed matmul's own layout */
    size_t packed_cap;
    /* clv_compute_fix_weights: each weight packed once while fixed, in a buffer of its own */
    int weights_fixed;
#if defined(CLV_GEMM_dnnl)
    struct fixed_pack {
        const float *src;       /* the fp32 weight */
        dnnl_memory_desc_t md;  /* the layout it was packed into */
        void *buf;
    } *packs;
    int n_packs, packs_cap;
#endif
    float *f[2];
    size_t f_cap[2];
    /* clv_compute_hold: a converted block reused by the GEMMs that read it */
    const float *held_src;
    int64_t held_rows, held_cols;
    clv_bf16 *held;
    size_t held_cap;
    /* clv_compute_shadow: copies their producers write, for the GEMMs that read those blocks */
    struct {
        const float *src;
        int64_t rows, cols;
        clv_bf16 *h;
        size_t cap;
        const clv_bf16 *lent; /* the caller's copy (clv_compute_lend), read instead of h */
    } shadow[CLV_COMPUTE_SHADOWS];
#if defined(CLV_GEMM_dnnl)
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    mm_entry cache[CACHE_SIZE];
    int n_cached, next_evict;
    bmm_entry bcache[BMM_CACHE_SIZE];
    int n_bcached, next_bevict;
#endif
};

const char *clv_precision_name(clv_precision p) { return p == CLV_PRECISION_BF16 ? "bf16" : "fp32"; }

int clv_precision_parse(const char *s, clv_precision *p, clv_err *err)
{
    if (!strcmp(s, "fp32"))
        *p = CLV_PRECISION_FP32;
    else if (!strcmp(s, "bf16"))
        *p = CLV_PRECISION_BF16;
    else
        return clv_errf(err, "precision '%s' is not one of fp32|bf16", s);
    return 0;
}

void clv_bf16_from_floats(clv_bf16 *restrict dst, const float *restrict src, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        dst[i] = clv_bf16_from_float(src[i]);
}

void clv_bf16_to_floats(float *restrict dst, const clv_bf16 *restrict src, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        dst[i] = clv_bf16_to_float(src[i]);
}

/* fp32 -> fp32 rounded to bf16: the converting path's operands in one pass (in place allowed) */
void clv_bf16_round_floats(float *dst, const float *src, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        dst[i] = clv_bf16_to_float(clv_bf16_from_float(src[i]));
}

static int grow(void **p, size_t *cap, size_t n, size_t elem, clv_err *err)
{
    if (clv_scratch_reserve(p, cap, n, elem))
        return clv_errf(err, "out of memory for the bf16 GEMM's scratch (%zu values)", n);
    return 0;
}

#if defined(CLV_GEMM_dnnl)
static int key_eq(const mm_key *a, const mm_key *b)
{
    return a->ta == b->ta && a->tb == b->tb && a->bias == b->bias && a->dst_bf16 == b->dst_bf16 && a->gelu == b->gelu &&
           a->res == b->res && a->bpack == b->bpack && a->M == b->M && a->N == b->N && a->K == b->K && a->lda == b->lda && a->ldb == b->ldb &&
           a->ldc == b->ldc && a->alpha == b->alpha && a->beta == b->beta;
}

static void entry_destroy(mm_entry *e)
{
    dnnl_primitive_destroy(e->prim);
    dnnl_memory_destroy(e->a);
    dnnl_memory_destroy(e->b);
    dnnl_memory_destroy(e->c);
    if (e->bias)
        dnnl_memory_destroy(e->bias);
    if (e->res)
        dnnl_memory_destroy(e->res);
    if (e->reorder)
        dnnl_primitive_destroy(e->reorder);
    if (e->b_src)
        dnnl_memory_destroy(e->b_src);
    memset(e, 0, sizeof *e);
}

/* The matmul primitive descriptor for a key; impl (may be NULL) gets oneDNN's implementation name. */
static dnnl_primitive_desc_t make_pd(dnnl_engine_t engine, const mm_key *k, dnnl_memory_desc_t *a_md,
                                     dnnl_memory_desc_t *b_md, dnnl_memory_desc_t *c_md, dnnl_memory_desc_t *bias_md)
{
    dnnl_dims_t biasd = {1, k->N}, biass = {k->N, 1};
    dnnl_dims_t ad = {k->M, k->K}, bd = {k->K, k->N}, cd = {k->M, k->N};
    dnnl_dims_t as = {k->ta ? 1 : k->lda, k->ta ? k->lda : 1};
    dnnl_dims_t bs = {k->tb ? 1 : k->ldb, k->tb ? k->ldb : 1};
    dnnl_dims_t cs = {k->ldc, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_memory_desc_init_by_strides(a_md, 2, ad, dnnl_bf16, as) != dnnl_success ||
        (k->bpack ? dnnl_memory_desc_init_by_tag(b_md, 2, bd, dnnl_bf16, dnnl_format_tag_any)
                  : dnnl_memory_desc_init_by_strides(b_md, 2, bd, dnnl_bf16, bs)) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(c_md, 2, cd, k->dst_bf16 ? dnnl_bf16 : dnnl_f32, cs) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(bias_md, 2, biasd, dnnl_f32, biass) != dnnl_success ||
        dnnl_matmul_desc_init(&md, a_md, b_md, k->bias ? bias_md : NULL, c_md) != dnnl_success ||
        dnnl_primitive_attr_create(&attr) != dnnl_success)
        return NULL;
    int ok = 1;
    if (k->alpha != 1.0f)
        ok = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &k->alpha) == dnnl_success;
    if (ok && (k->beta != 0.0f || k->gelu || k->res)) {
        dnnl_post_ops_t po;
        ok = dnnl_post_ops_create(&po) == dnnl_success;
        if (ok) {
            if (k->beta != 0.0f)
                ok = dnnl_post_ops_append_sum(po, k->beta) == dnnl_success;
            if (ok && k->res) /* post-op 0 (a residual never comes with beta or GELU) */
                ok = dnnl_post_ops_append_binary(po, dnnl_binary_add, c_md) == dnnl_success;
            if (ok && k->gelu)
                ok = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f) == dnnl_success;
            ok = ok && dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
            dnnl_post_ops_destroy(po);
        }
    }
    if (ok && dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL) != dnnl_success)
        pd = NULL;
    dnnl_primitive_attr_destroy(attr);
    return pd;
}

static const char *pd_impl(dnnl_primitive_desc_t pd)
{
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl)
        return "?";
    return impl;
}

static mm_entry *lookup(clv_compute *c, const mm_key *k)
{
    for (int i = 0; i < c->n_cached; i++)
        if (key_eq(&c->cache[i].key, k))
            return &c->cache[i];
    dnnl_memory_desc_t a_md, b_md, c_md, bias_md;
    dnnl_primitive_desc_t pd = make_pd(c->engine, k, &a_md, &b_md, &c_md, &bias_md);
    if (!pd)
        return NULL;
    mm_entry e = {.key = *k};
    int ok = dnnl_primitive_create(&e.prim, pd) == dnnl_success;
    if (ok && k->bpack) { /* the layout oneDNN chose for B, and the reorder from fp32 into it */
        b_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        e.b_bytes = dnnl_memory_desc_get_size(&b_md);
        dnnl_memory_desc_t src_md;
        dnnl_dims_t bd = {k->K, k->N}, bs = {k->tb ? 1 : k->ldb, k->tb ? k->ldb : 1};
        dnnl_primitive_desc_t rpd = NULL;
        ok = dnnl_memory_desc_init_by_strides(&src_md, 2, bd, dnnl_f32, bs) == dnnl_success &&
             dnnl_reorder_primitive_desc_create(&rpd, &src_md, c->engine, &b_md, c->engine, NULL) == dnnl_success &&
             dnnl_primitive_create(&e.reorder, rpd) == dnnl_success &&
             dnnl_memory_create(&e.b_src, &src_md, c->engine, DNNL_MEMORY_NONE) == dnnl_success;
        if (rpd)
            dnnl_primitive_desc_destroy(rpd);
    }
    dnnl_primitive_desc_destroy(pd);
    ok = ok && dnnl_memory_create(&e.a, &a_md, c->engine, DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&e.b, &b_md, c->engine, DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&e.c, &c_md, c->engine, DNNL_MEMORY_NONE) == dnnl_success &&
         (!k->bias || dnnl_memory_create(&e.bias, &bias_md, c->engine, DNNL_MEMORY_NONE) == dnnl_success) &&
         (!k->res || dnnl_memory_create(&e.res, &c_md, c->engine, DNNL_MEMORY_NONE) == dnnl_success);
    if (!ok) {
        entry_destroy(&e);
        return NULL;
    }
    int slot = c->n_cached < CACHE_SIZE ? c->n_cached++ : c->next_evict++ % CACHE_SIZE;
    if (c->cache[slot].prim)
        entry_destroy(&c->cache[slot]);
    c->cache[slot] = e;
    return &c->cache[slot];
}

/* Where B (fp32) goes packed for entry e: 1 (pack it into *buf), 0 (*buf holds it packed already:
 * weights fixed and B packed into this layout since), -1 out of memory. While weights are fixed each
 * weight keeps its packed copy; otherwise all share one buffer. */
static int packed_buffer(clv_compute *c, const mm_entry *e, const void *B, void **buf)
{
    if (c->weights_fixed) {
        const dnnl_memory_desc_t *md;
        if (dnnl_memory_get_memory_desc(e->b, &md) == dnnl_success) {
            for (int i = 0; i < c->n_packs; i++)
                if (c->packs[i].src == B && dnnl_memory_desc_equal(&c->packs[i].md, md)) {
                    *buf = c->packs[i].buf;
                    return 0;
                }
            if (c->n_packs == c->packs_cap) {
                const int cap = c->packs_cap ? 2 * c->packs_cap : 64;
                struct fixed_pack *p = realloc(c->packs, (size_t)cap * sizeof *p);
                if (p)
                    c->packs = p, c->packs_cap = cap;
            }
            void *b = c->n_packs < c->packs_cap ? clv_alloc(e->b_bytes) : NULL;
            if (b) {
                c->packs[c->n_packs++] = (struct fixed_pack){.src = B, .md = *md, .buf = b};
                *buf = b;
                return 1;
            }
        } /* no room for one more: the shared buffer, packed each time */
    }
    if (grow(&c->packed, &c->packed_cap, e->b_bytes, 1, NULL))
        return -1;
    *buf = c->packed;
    return 1;
}

/* A fixed pack whose packing failed is no pack */
static void drop_fixed_pack(clv_compute *c, const void *buf)
{
    if (c->n_packs && c->packs[c->n_packs - 1].buf == buf) {
        clv_free(c->packs[--c->n_packs].buf);
    }
}

static int dnnl_run(clv_compute *c, const mm_key *k, const clv_bf16 *A, const void *B, const float *bias,
                    const float *res, void *C)
{
    mm_entry *e = lookup(c, k);
    if (!e)
        return -1;
    dnnl_memory_set_data_handle(e->a, (void *)A);
    if (k->bpack) { /* B is fp32: reordered into the packed buffer first, or packed already */
        void *buf = NULL;
        const int fresh = packed_buffer(c, e, B, &buf);
        if (fresh < 0)
            return -1;
        dnnl_memory_set_data_handle(e->b, buf);
        if (fresh) {
            dnnl_memory_set_data_handle(e->b_src, (void *)B);
            dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, e->b_src}, {DNNL_ARG_TO, e->b}};
            if (dnnl_primitive_execute(e->reorder, c->stream, 2, rargs) != dnnl_success) {
                drop_fixed_pack(c, buf);
                return -1;
            }
        }
    } else
        dnnl_memory_set_data_handle(e->b, (void *)B);
    dnnl_memory_set_data_handle(e->c, C);
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
    int n = 3;
    if (bias) {
        dnnl_memory_set_data_handle(e->bias, (void *)bias);
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, e->bias};
    }
    if (res) {
        dnnl_memory_set_data_handle(e->res, (void *)res);
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, e->res};
    }
    if (dnnl_primitive_execute(e->prim, c->stream, n, args) != dnnl_success)
        return -1;
    return dnnl_stream_wait(c->stream) == dnnl_success ? 0 : -1;
}

static void bmm_entry_destroy(bmm_entry *e)
{
    dnnl_primitive_destroy(e->prim);
    dnnl_memory_destroy(e->a);
    dnnl_memory_destroy(e->b);
    dnnl_memory_destroy(e->c);
    memset(e, 0, sizeof *e);
}

static bmm_entry *bmm_lookup(clv_compute *c, const bmm_key *k)
{
    for (int i = 0; i < c->n_bcached; i++)
        if (!memcmp(&c->bcache[i].key, k, sizeof *k))
            return &c->bcache[i];
    dnnl_memory_desc_t a_md, b_md, c_md;
    dnnl_dims_t ad = {k->nb, k->nh, k->M, k->K}, bd = {k->nb, k->nh, k->K, k->N}, cd = {k->nb, k->nh, k->M, k->N};
    dnnl_dims_t as, bs, cs;
    for (int i = 0; i < 4; i++)
        as[i] = k->as[i], bs[i] = k->bs[i], cs[i] = k->cs[i];
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    bmm_entry e = {.key = *k};
    int ok = dnnl_memory_desc_init_by_strides(&a_md, 4, ad, dnnl_bf16, as) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&b_md, 4, bd, dnnl_bf16, bs) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&c_md, 4, cd, k->dst_bf16 ? dnnl_bf16 : dnnl_f32, cs) == dnnl_success &&
             dnnl_matmul_desc_init(&md, &a_md, &b_md, NULL, &c_md) == dnnl_success &&
             dnnl_primitive_attr_create(&attr) == dnnl_success &&
             (k->alpha == 1.0f || dnnl_primitive_attr_set_output_scales(attr, 1, 0, &k->alpha) == dnnl_success) &&
             (!k->accumulate ||
              (dnnl_post_ops_create(&po) == dnnl_success && dnnl_post_ops_append_sum(po, 1.0f) == dnnl_success &&
               dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success)) &&
             dnnl_primitive_desc_create(&pd, &md, attr, c->engine, NULL) == dnnl_success &&
             dnnl_primitive_create(&e.prim, pd) == dnnl_success &&
             dnnl_memory_create(&e.a, &a_md, c->engine, DNNL_MEMORY_NONE) == dnnl_success &&
             dnnl_memory_create(&e.b, &b_md, c->engine, DNNL_MEMORY_NONE) == dnnl_success &&
             dnnl_memory_create(&e.c, &c_md, c->engine, DNNL_MEMORY_NONE) == dnnl_success;
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (!ok) {
        if (e.prim)
            bmm_entry_destroy(&e);
        return NULL;
    }
    int slot = c->n_bcached < BMM_CACHE_SIZE ? c->n_bcached++ : c->next_bevict++ % BMM_CACHE_SIZE;
    if (c->bcache[slot].prim)
        bmm_entry_destroy(&c->bcache[slot]);
    c->bcache[slot] = e;
    return &c->bcache[slot];
}

/* Does oneDNN run a bf16 matmul here with more than its reference code? */
static void probe(clv_compute *c)
{
    if (dnnl_engine_create(&c->engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags) != dnnl_success) {
        snprintf(c->impl, sizeof c->impl, "oneDNN has no CPU engine");
        return;
    }
    mm_key k = {.M = 64, .N = 64, .K = 64, .lda = 64, .ldb = 64, .ldc = 64, .alpha = 1.0f};
    dnnl_memory_desc_t a_md, b_md, c_md, bias_md;
    dnnl_primitive_desc_t pd = make_pd(c->engine, &k, &a_md, &b_md, &c_md, &bias_md);
    if (!pd) {
        snprintf(c->impl, sizeof c->impl, "oneDNN has no bf16 matmul on this CPU");
        return;
    }
    snprintf(c->impl, sizeof c->impl, "%s", pd_impl(pd));
    c->use_dnnl = strncmp(c->impl, "ref", 3) != 0;
    dnnl_primitive_desc_destroy(pd);
}
#endif

clv_compute *clv_compute_create(clv_precision p, int emulate, clv_err *err)
{
    clv_compute *c = calloc(1, sizeof *c);
    if (!c) {
        clv_errf(err, "out of memory");
        return NULL;
    }
    c->precision = p;
    snprintf(c->impl, sizeof c->impl, "%s", emulate ? "emulation requested" : "no oneDNN backend built");
#if defined(CLV_GEMM_dnnl)
    if (p == CLV_PRECISION_BF16 && !emulate)
        probe(c);
#endif
    return c;
}

void clv_compute_free(clv_compute *c)
{
    if (!c)
        return;
#if defined(CLV_GEMM_dnnl)
    for (int i = 0; i < c->n_cached; i++)
        entry_destroy(&c->cache[i]);
    for (int i = 0; i < c->n_bcached; i++)
        bmm_entry_destroy(&c->bcache[i]);
    if (c->stream)
        dnnl_stream_destroy(c->stream);
    if (c->engine)
        dnnl_engine_destroy(c->engine);
#endif
    clv_free(c->held);
    for (int i = 0; i < CLV_COMPUTE_SHADOWS; i++)
        clv_free(c->shadow[i].h);
    for (int i = 0; i < 2; i++) {
        clv_free(c->h[i]);
        clv_free(c->f[i]);
    }
    clv_compute_fix_weights(c, 0);
#if defined(CLV_GEMM_dnnl)
    free(c->packs);
#endif
    clv_free(c->packed);
    free(c);
}

void clv_compute_fix_weights(clv_compute *c, int fixed)
{
    if (!c)
        return;
    c->weights_fixed = !!fixed;
#if defined(CLV_GEMM_dnnl)
    if (!fixed) {
        for (int i = 0; i < c->n_packs; i++)
            clv_free(c->packs[i].buf);
        c->n_packs = 0;
    }
#endif
}

clv_precision clv_compute_precision(const clv_compute *c) { return c ? c->precision : CLV_PRECISION_FP32; }

static int cpu_has_bf16(void)
{
#if defined(CLV_GEMM_dnnl)
    const unsigned need = (unsigned)dnnl_cpu_isa_avx512_core_bf16;
    return ((unsigned)dnnl_get_effective_cpu_isa() & need) == need;
#else
    return 0;
#endif
}

int clv_compute_bf16_native(const clv_compute *c) { return c && c->use_dnnl && cpu_has_bf16(); }

const char *clv_bf16_support(char *buf, size_t len)
{
    clv_compute *c = clv_compute_create(CLV_PRECISION_BF16, 0, NULL);
    if (!c)
        snprintf(buf, len, "unknown (out of memory)");
    else if (clv_compute_bf16_native(c))
        snprintf(buf, len, "native (oneDNN bf16 matmul, %s)", c->impl);
    else if (c->use_dnnl)
        snprintf(buf, len, "emulated by oneDNN (%s; this CPU lacks avx512_bf16)", c->impl);
    else
        snprintf(buf, len, "emulated: bf16-rounded inputs through the fp32 GEMM (%s)", c->impl);
    clv_compute_free(c);
    return buf;
}

/* The stored block of op(X) (rows x cols with row stride ld) as packed fp32 in f[slot]. */
static const float *widen(clv_compute *c, int slot, const clv_bf16 *X, int64_t rows, int64_t cols, int64_t ld,
                          clv_err *err)
{
    if (grow((void **)&c->f[slot], &c->f_cap[slot], (size_t)(rows * cols), sizeof(float), err))
        return NULL;
    for (int64_t r = 0; r < rows; r++)
        clv_bf16_to_floats(c->f[slot] + r * cols, X + r * ld, (size_t)cols);
    return c->f[slot];
}

/* C [M x N] (row stride ldc) += bias [N] on every row, then += res [M x N] (stride ldc); either
 * may be NULL: where oneDNN's matmul does not add them (the epilogue's order, bias first) */
static void add_bias_residual(float *C, int64_t ldc, int64_t M, int64_t N, const float *bias, const float *res)
{
    if (!bias && !res)
        return;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            if (bias)
                C[i * ldc + j] += bias[j];
            if (res)
                C[i * ldc + j] += res[i * ldc + j];
        }
}

/* clv_gemm_bf16 with bias [N] added to every row of C and res [M x N] (row stride ldc) to C (both
 * may be NULL; only with alpha 1, beta 0) */
static int gemm_bf16_bias(clv_compute *c, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const clv_bf16 *A, int64_t lda, const clv_bf16 *B, int64_t ldb, const float *bias,
                          const float *res, float beta, float *C, int64_t ldc, clv_err *err)
{
    if (M <= 0 || N <= 0)
        return 0;
    if (K <= 0) { /* no products: C = beta C */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return 0;
    }
#if defined(CLV_GEMM_dnnl)
    if (c->use_dnnl) {
        mm_key k = {.ta = !!trans_a, .tb = !!trans_b, .bias = bias != NULL, .res = res != NULL, .M = M, .N = N, .K = K,
                    .lda = lda, .ldb = ldb, .ldc = ldc, .alpha = alpha, .beta = beta};
        if (!dnnl_run(c, &k, A, B, bias, res, C))
            return 0; /* a shape oneDNN refuses falls through to the converting path */
    }
#endif
    const float *Af = widen(c, 0, A, trans_a ? K : M, trans_a ? M : K, lda, err);
    const float *Bf = Af ? widen(c, 1, B, trans_b ? N : K, trans_b ? K : N, ldb, err) : NULL;
    if (!Bf)
        return -1;
    clv_gemm(trans_a, trans_b, M, N, K, alpha, Af, trans_a ? M : K, Bf, trans_b ? K : N, beta, C, ldc);
    add_bias_residual(C, ldc, M, N, bias, res);
    return 0;
}

int clv_gemm_bf16(clv_compute *c, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const clv_bf16 *A, int64_t lda, const clv_bf16 *B, int64_t ldb, float beta, float *C,
                  int64_t ldc, clv_err *err)
{
    return gemm_bf16_bias(c, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, NULL, NULL, beta, C, ldc, err);
}

/* h = bf16(X) and colsum += the column sums of X in one streaming pass over
 * X: fixed groups of HOLD_ROWS rows in parallel, each summing its rows in
 * order into its own partial (parts [groups x cols]), then the partials added
 * in group order. The grouping does not depend on the thread count, so
 * neither do the sums. */
#define HOLD_ROWS 64

/* colsum [cols] += the groups' partial sums (parts [groups x cols]), in group order */
static void add_parts(float *restrict colsum, const float *restrict parts, int64_t groups, int64_t cols)
{
    for (int64_t g = 0; g < groups; g++)
        for (int64_t j = 0; j < cols; j++)
            colsum[j] += parts[g * cols + j];
}
static void convert_colsum(clv_bf16 *restrict h, const float *restrict X, int64_t rows, int64_t cols,
                           float *restrict colsum, float *restrict parts)
{
    const int64_t groups = (rows + HOLD_ROWS - 1) / HOLD_ROWS;
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
    for (int64_t g = 0; g < groups; g++) {
        float *restrict part = parts + g * cols;
        const int64_t r1 = (g + 1) * HOLD_ROWS < rows ? (g + 1) * HOLD_ROWS : rows;
        for (int64_t j = 0; j < cols; j++)
            part[j] = 0.0f;
        for (int64_t n = g * HOLD_ROWS; n < r1; n++) {
            const float *restrict xr = X + n * cols;
            clv_bf16 *restrict hr = h + n * cols;
#pragma omp simd
            for (int64_t j = 0; j < cols; j++) {
                part[j] += xr[j];
                hr[j] = clv_bf16_from_float(xr[j]);
            }
        }
    }
    add_parts(colsum, parts, groups, cols);
}

int clv_compute_hold(clv_compute *c, const float *X, int64_t rows, int64_t cols, float *colsum, clv_err *err)
{
    if (!c || c->precision == CLV_PRECISION_FP32 || !c->use_dnnl || rows <= 0 || cols <= 0) {
        if (colsum)
            clv_colsum_add(colsum, X, rows, cols);
        return 0;
    }
    c->held_src = NULL;
    if (grow((void **)&c->held, &c->held_cap, (size_t)(rows * cols), sizeof(clv_bf16), err))
        return -1;
    if (colsum) {
        const int64_t groups = (rows + HOLD_ROWS - 1) / HOLD_ROWS;
        if (grow((void **)&c->f[0], &c->f_cap[0], (size_t)(groups * cols), sizeof(float), err))
            return -1;
        convert_colsum(c->held, X, rows, cols, colsum, c->f[0]);
    } else
        clv_bf16_from_floats(c->held, X, (size_t)(rows * cols));
    c->held_src = X;
    c->held_rows = rows;
    c->held_cols = cols;
    return 0;
}

/* convert_colsum with the scale's two sums: parts [groups x 2 cols] */
static void convert_scale_sums(clv_bf16 *restrict h, const float *restrict dy, const float *restrict z,
                               const float *restrict sdiv, int64_t rows, int64_t cols, float *restrict ds,
                               float *restrict dsum, float *restrict parts)
{
    const int64_t groups = (rows + HOLD_ROWS - 1) / HOLD_ROWS;
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
    for (int64_t g = 0; g < groups; g++) {
        float *restrict pz = parts + g * 2 * cols, *restrict ps = pz + cols;
        const int64_t r1 = (g + 1) * HOLD_ROWS < rows ? (g + 1) * HOLD_ROWS : rows;
        for (int64_t j = 0; j < 2 * cols; j++)
            pz[j] = 0.0f;
        for (int64_t n = g * HOLD_ROWS; n < r1; n++) {
            const float *restrict dr = dy + n * cols, *restrict zr = z + n * cols;
            clv_bf16 *restrict hr = h + n * cols;
#pragma omp simd
            for (int64_t j = 0; j < cols; j++) {
                pz[j] += dr[j] * zr[j];
                ps[j] += dr[j];
                hr[j] = clv_bf16_from_float(dr[j]);
            }
        }
    }
    for (int64_t j = 0; j < cols; j++)
        ds[j] = dsum[j] = 0.0f;
    for (int64_t g = 0; g < groups; g++)
        for (int64_t j = 0; j < cols; j++) {
            ds[j] += parts[g * 2 * cols + j];
            dsum[j] += parts[g * 2 * cols + cols + j];
        }
    if (sdiv)
        for (int64_t j = 0; j < cols; j++)
            ds[j] /= sdiv[j];
}

int clv_compute_hold_scaled(clv_compute *c, const float *dy, const float *z, const float *sdiv, int64_t rows,
                            int64_t cols, float *ds, float *dsum, clv_err *err)
{
    if (!c || c->precision == CLV_PRECISION_FP32 || !c->use_dnnl || rows <= 0 || cols <= 0) {
        clv_scale_columns_backward(ds, dsum, dy, z, sdiv, rows, cols);
        return 0;
    }
    c->held_src = NULL;
    const int64_t groups = (rows + HOLD_ROWS - 1) / HOLD_ROWS;
    if (grow((void **)&c->held, &c->held_cap, (size_t)(rows * cols), sizeof(clv_bf16), err) ||
        grow((void **)&c->f[0], &c->f_cap[0], (size_t)(groups * 2 * cols), sizeof(float), err))
        return -1;
    convert_scale_sums(c->held, dy, z, sdiv, rows, cols, ds, dsum, c->f[0]);
    c->held_src = dy;
    c->held_rows = rows;
    c->held_cols = cols;
    return 0;
}

int clv_compute_gelu_backward(clv_compute *c, int g_slot, const float *g, int dh_slot, const float *dh,
                              const float *h, const float *dg, int64_t rows, int64_t cols, float *colsum, clv_err *err)
{
    clv_bf16 *gh, *dhh;
    const int64_t groups = (rows + HOLD_ROWS - 1) / HOLD_ROWS;
    if (!clv_compute_bf16_onednn(c) || g_slot == dh_slot)
        return clv_errf(err, "GELU's fused backward needs bf16 on oneDNN and two shadow slots");
    if (clv_compute_shadow(c, g_slot, g, rows, cols, &gh, err) ||
        clv_compute_shadow(c, dh_slot, dh, rows, cols, &dhh, err) ||
        grow((void **)&c->f[0], &c->f_cap[0], (size_t)(groups * cols), sizeof(float), err))
        return -1;
    if (!gh || !dhh)
        return 0; /* empty */
    clv_gelu_backward_bf16(gh, dhh, c->f[0], h, dg, rows, cols, HOLD_ROWS);
    if (colsum)
        add_parts(colsum, c->f[0], groups, cols);
    return 0;
}

int clv_compute_shadow(clv_compute *c, int slot, const float *X, int64_t rows, int64_t cols, clv_bf16 **h,
                       clv_err *err)
{
    *h = NULL;
    if (!clv_compute_bf16_onednn(c) || slot < 0 || slot >= CLV_COMPUTE_SHADOWS || rows <= 0 || cols <= 0)
        return 0;
    c->shadow[slot].src = NULL;
    c->shadow[slot].lent = NULL;
    if (grow((void **)&c->shadow[slot].h, &c->shadow[slot].cap, (size_t)(rows * cols), sizeof(clv_bf16), err))
        return -1;
    c->shadow[slot].src = X;
    c->shadow[slot].rows = rows;
    c->shadow[slot].cols = cols;
    *h = c->shadow[slot].h;
    return 0;
}

void clv_compute_unshadow(clv_compute *c, int slot)
{
    if (c && slot >= 0 && slot < CLV_COMPUTE_SHADOWS)
        c->shadow[slot].src = NULL, c->shadow[slot].lent = NULL;
}

void clv_compute_lend(clv_compute *c, int slot, const float *X, int64_t rows, int64_t cols, const clv_bf16 *h)
{
    if (!clv_compute_bf16_onednn(c) || slot < 0 || slot >= CLV_COMPUTE_SHADOWS || !h)
        return;
    c->shadow[slot].src = X;
    c->shadow[slot].rows = rows;
    c->shadow[slot].cols = cols;
    c->shadow[slot].lent = h;
}

void clv_compute_unhold(clv_compute *c)
{
    if (c)
        c->held_src = NULL;
}

/* X (rows x cols, row stride ld) in bf16: the held copy when it is that block, else converted into h[slot]. */
/* X's held or shadow copy when one is that block, else NULL */
static const clv_bf16 *copy_of(const clv_compute *c, const float *X, int64_t rows, int64_t cols, int64_t ld)
{
    if (X == c->held_src && rows == c->held_rows && cols == c->held_cols && ld == cols)
        return c->held;
    for (int i = 0; i < CLV_COMPUTE_SHADOWS; i++)
        if (X == c->shadow[i].src && rows == c->shadow[i].rows && cols == c->shadow[i].cols && ld == cols)
            return c->shadow[i].lent ? c->shadow[i].lent : c->shadow[i].h;
    return NULL;
}

static const clv_bf16 *to_bf16(clv_compute *c, int slot, const float *X, int64_t rows, int64_t cols, int64_t ld,
                               clv_err *err)
{
    const clv_bf16 *h = copy_of(c, X, rows, cols, ld);
    if (h)
        return h;
    if (grow((void **)&c->h[slot], &c->h_cap[slot], (size_t)(rows * cols), sizeof(clv_bf16), err))
        return NULL;
    if (ld == cols)
        clv_bf16_from_floats(c->h[slot], X, (size_t)(rows * cols));
    else
        for (int64_t r = 0; r < rows; r++)
            clv_bf16_from_floats(c->h[slot] + r * cols, X + r * ld, (size_t)cols);
    return c->h[slot];
}

/* A weight layer's forward and input-gradient GEMMs read the weight as B, the smallest operand
 * against the batch's many rows. oneDNN's bf16 matmul (brg:avx512_core_bf16, 2.6.3) runs 8-20%
 * faster on a B in the layout it picks itself than on a plain one (AMD EPYC Zen 4, 2 threads,
 * 8320 x 768 x 192: 6.2 against 7.1 ms; 8320 x 192 x 192: 1.35 against 1.62), and one reorder
 * from fp32 writes that layout in the pass a conversion to plain bf16 would take. The same
 * products and the same rounding of B (to nearest even). So when B (fp32, row stride ldb) is that
 * operand and no bf16 copy of it is at hand, B goes that way; k is the plain path's key (B's
 * stride as converted). 1: not taken (the caller converts B itself). */
static int packed_b_gemm(clv_compute *c, const mm_key *k, const clv_bf16 *Ah, const float *B, int64_t ldb,
                         const float *bias, const float *res, void *C)
{
#if defined(CLV_GEMM_dnnl)
    if (k->M < k->N || k->M < k->K || copy_of(c, B, k->tb ? k->N : k->K, k->tb ? k->K : k->N, ldb))
        return 1;
    mm_key kp = *k;
    kp.bpack = 1;
    kp.ldb = ldb;
    return dnnl_run(c, &kp, Ah, B, bias, res, C) ? 1 : 0;
#else
    return 1;
#endif
}

int clv_compute_gemm(clv_compute *c, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
                     clv_err *err)
{
    if (!c || c->precision == CLV_PRECISION_FP32) {
        clv_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return 0;
    }
    if (M <= 0 || N <= 0 || K <= 0)
        return clv_gemm_bf16(c, trans_a, trans_b, M, N, K, alpha, NULL, lda, NULL, ldb, beta, C, ldc, err);
    const int64_t ar = trans_a ? K : M, ac = trans_a ? M : K, br = trans_b ? N : K, bc = trans_b ? K : N;
    if (!c->use_dnnl) { /* round in one pass straight to fp32 */
        if (grow((void **)&c->f[0], &c->f_cap[0], (size_t)(ar * ac), sizeof(float), err) ||
            grow((void **)&c->f[1], &c->f_cap[1], (size_t)(br * bc), sizeof(float), err))
            return -1;
        for (int64_t r = 0; r < ar; r++)
            clv_bf16_round_floats(c->f[0] + r * ac, A + r * lda, (size_t)ac);
        for (int64_t r = 0; r < br; r++)
            clv_bf16_round_floats(c->f[1] + r * bc, B + r * ldb, (size_t)bc);
        clv_gemm(trans_a, trans_b, M, N, K, alpha, c->f[0], ac, c->f[1], bc, beta, C, ldc);
        return 0;
    }
    const clv_bf16 *Ah = to_bf16(c, 0, A, ar, ac, lda, err);
    if (!Ah)
        return -1;
    const mm_key k = {.ta = !!trans_a, .tb = !!trans_b, .M = M, .N = N, .K = K, .lda = ac, .ldb = bc, .ldc = ldc,
                      .alpha = alpha, .beta = beta};
    if (!packed_b_gemm(c, &k, Ah, B, ldb, NULL, NULL, C))
        return 0;
    const clv_bf16 *Bh = to_bf16(c, 1, B, br, bc, ldb, err);
    if (!Bh)
        return -1;
    return clv_gemm_bf16(c, trans_a, trans_b, M, N, K, alpha, Ah, ac, Bh, bc, beta, C, ldc, err);
}

int clv_compute_gemm_bias(clv_compute *c, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                          const float *B, int64_t ldb, const float *bias, const float *res, float *C, int64_t ldc,
                          clv_err *err)
{
    if (!clv_compute_bf16_onednn(c) || M <= 0 || N <= 0 || K <= 0) {
        if (clv_compute_gemm(c, 0, 1, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, err))
            return -1;
        add_bias_residual(C, ldc, M, N, bias, res);
        return 0;
    }
    const clv_bf16 *Ah = to_bf16(c, 0, A, M, K, lda, err);
    if (!Ah)
        return -1;
    const mm_key k = {.tb = 1, .bias = bias != NULL, .res = res != NULL, .M = M, .N = N, .K = K, .lda = K, .ldb = K,
                      .ldc = ldc, .alpha = 1.0f};
    if (!packed_b_gemm(c, &k, Ah, B, ldb, bias, res, C))
        return 0;
    const clv_bf16 *Bh = to_bf16(c, 1, B, N, K, ldb, err);
    if (!Bh)
        return -1;
    return gemm_bf16_bias(c, 0, 1, M, N, K, 1.0f, Ah, K, Bh, K, bias, res, 0.0f, C, ldc, err);
}

int clv_compute_bf16_onednn(const clv_compute *c) { return c && c->precision == CLV_PRECISION_BF16 && c->use_dnnl; }

const clv_bf16 *clv_compute_bf16_scratch(clv_compute *c, int slot, const float *X, size_t n, clv_err *err)
{
    if (grow((void **)&c->h[slot], &c->h_cap[slot], n, sizeof(clv_bf16), err))
        return NULL;
    clv_bf16_from_floats(c->h[slot], X, n);
    return c->h[slot];
}

clv_bf16 *clv_compute_bf16_slot(clv_compute *c, int slot, size_t n, clv_err *err)
{
    if (grow((void **)&c->h[slot], &c->h_cap[slot], n, sizeof(clv_bf16), err))
        return NULL;
    return c->h[slot];
}

const float *clv_compute_round_scratch(clv_compute *c, int slot, const float *X, size_t n, clv_err *err)
{
    if (grow((void **)&c->f[slot], &c->f_cap[slot], n, sizeof(float), err))
        return NULL;
    clv_bf16_round_floats(c->f[slot], X, n);
    return c->f[slot];
}

/* Ch [M x N] = bf16([GELU](A B^T + bias)) in one matmul with a bf16 destination */
static int gemm_bias_to_bf16(clv_compute *c, int gelu, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                             const float *B, int64_t ldb, const float *bias, clv_bf16 *Ch, clv_err *err)
{
    if (!clv_compute_bf16_onednn(c))
        return clv_errf(err, "a GEMM with a bf16 output needs bf16 on oneDNN");
    if (M <= 0 || N <= 0 || K <= 0)
        return clv_errf(err, "a GEMM with a bf16 output over an empty shape (%lld x %lld x %lld)", (long long)M,
                        (long long)N, (long long)K);
    const clv_bf16 *Ah = to_bf16(c, 0, A, M, K, lda, err);
    if (!Ah)
        return -1;
    const mm_key k = {.tb = 1, .bias = bias != NULL, .dst_bf16 = 1, .gelu = gelu, .M = M, .N = N, .K = K, .lda = K,
                      .ldb = K, .ldc = N, .alpha = 1.0f};
    if (!packed_b_gemm(c, &k, Ah, B, ldb, bias, NULL, Ch))
        return 0;
    const clv_bf16 *Bh = to_bf16(c, 1, B, N, K, ldb, err);
    if (!Bh)
        return -1;
#if defined(CLV_GEMM_dnnl)
    if (!dnnl_run(c, &k, Ah, Bh, bias, NULL, Ch))
        return 0;
#endif
    return clv_errf(err, "oneDNN refused a %lld x %lld x %lld matmul with a bf16 output", (long long)M, (long long)N,
                    (long long)K);
}

int clv_compute_gemm_bias_gelu(clv_compute *c, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                               const float *B, int64_t ldb, const float *bias, clv_bf16 *Ch, clv_err *err)
{
    return gemm_bias_to_bf16(c, 1, M, N, K, A, lda, B, ldb, bias, Ch, err);
}

int clv_compute_gemm_bias_to_bf16(clv_compute *c, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                                  const float *B, int64_t ldb, const float *bias, clv_bf16 *Ch, clv_err *err)
{
    return gemm_bias_to_bf16(c, 0, M, N, K, A, lda, B, ldb, bias, Ch, err);
}

int clv_compute_bmm(clv_compute *c, const clv_bmm_shape *sh, float alpha, const clv_bf16 *A, const clv_bf16 *B,
                    void *C, int c_bf16, clv_err *err)
{
    if (!clv_compute_bf16_onednn(c))
        return clv_errf(err, "a batched bf16 product needs bf16 on oneDNN");
#if defined(CLV_GEMM_dnnl)
    bmm_key k;
    memset(&k, 0, sizeof k); /* compared with memcmp: no stray padding bytes */
    k.nb = sh->nb, k.nh = sh->nh, k.M = sh->M, k.N = sh->N, k.K = sh->K, k.alpha = alpha, k.dst_bf16 = !!c_bf16;
    k.accumulate = !!sh->accumulate;
    for (int i = 0; i < 4; i++)
        k.as[i] = sh->as[i], k.bs[i] = sh->bs[i], k.cs[i] = sh->cs[i];
    bmm_entry *e = bmm_lookup(c, &k);
    if (e) {
        dnnl_memory_set_data_handle(e->a, (void *)A);
        dnnl_memory_set_data_handle(e->b, (void *)B);
        dnnl_memory_set_data_handle(e->c, C);
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
        if (dnnl_primitive_execute(e->prim, c->stream, 3, args) == dnnl_success &&
            dnnl_stream_wait(c->stream) == dnnl_success)
            return 0;
    }
#endif
    return clv_errf(err, "oneDNN refused a batched %lld x %lld x %lld bf16 product over %lld x %lld", (long long)sh->M,
                    (long long)sh->N, (long long)sh->K, (long long)sh->nb, (long long)sh->nh);
}

float *clv_compute_float_slot(clv_compute *c, int slot, size_t n, clv_err *err)
{
    if (grow((void **)&c->f[slot], &c->f_cap[slot], n, sizeof(float), err))
        return NULL;
    return c->f[slot];
}
