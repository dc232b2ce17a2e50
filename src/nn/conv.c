/* A convolution on oneDNN's primitives with the adapter seam of a weight
 * layer (see clvit/conv.h). */
#include "clvit/conv.h"
#include "clvit/gemm.h"
#include "clvit/kernels.h"
#include "clvit/kernels_cnn.h"
#include "clvit/precision.h"
#include "clvit/winograd_bf16.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A forward primitive and how the weight reaches it. */
typedef struct fwd_prim {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
    dnnl_memory_desc_t wmd;   /* the weight layout it reads */
    dnnl_primitive_t reorder; /* oihw -> wmd; NULL when wmd is oihw itself */
} fwd_prim;

/* Forward variants: the training one (no epilogue), and inference ones with a
 * bias (a fixed batch norm's shift), [sum of the residual], [relu]. */
enum { FWD_PLAIN = 0, FWD_FUSED = 1, N_FWD = 5 };

/* How the weight layer's compute precision runs: fp32; bf16 on oneDNN's bf16
 * convolutions (bf16 src, weights and diff_dst; f32 dst, diff_src and
 * diff_weights; f32 accumulation); or bf16 by rounding the operands to bf16
 * values in fp32 and running the fp32 primitives (where oneDNN has no bf16
 * convolution but its reference one): the same products, exact in fp32. */
typedef enum { CONV_FP32 = 0, CONV_BF16, CONV_ROUND } conv_mode;

struct clv_conv_prims {
    int64_t B;
    conv_mode mode;
    int want; /* the layer's precision the primitives are for: 0 fp32, 1 bf16 on oneDNN, 2 converting */
    int winograd; /* the handle's winograd setting they were made under */
    dnnl_data_type_t dt; /* of src, weights and diff_dst: f32, or bf16 in CONV_BF16 */
    /* src_md, dst_md: the activations as stored (f32: dst, diff_src, the low-rank convs);
     * csrc_md, cdst_md: the same in dt (src of forward and backward weights, diff_dst) */
    dnnl_memory_desc_t src_md, dst_md, csrc_md, cdst_md, w_user_md, bias_md;
    fwd_prim fwd[N_FWD];
    dnnl_primitive_desc_t bwd_d_pd, bwd_w_pd;
    dnnl_primitive_t bwd_d, bwd_w;
    dnnl_memory_desc_t bwd_d_wmd, dw_md;
    dnnl_primitive_t bwd_d_reorder; /* oihw -> bwd_d_wmd, NULL when oihw */
    dnnl_primitive_t dw_reorder;     /* dw_md -> oihw, NULL when oihw */
    dnnl_primitive_t dw_reorder_sum; /* dw_md -> oihw accumulating (dst += ), for the base weight's grad */
    /* fp32 Winograd (wino_fwd: the training forward, wino_bwd: backward data and weights), on
     * oneDNN's blocked activation layouts bsrc_md, bdst_md, reached from and back to nhwc */
    int wino_fwd, wino_bwd;
    dnnl_memory_desc_t bsrc_md, bdst_md;
    dnnl_primitive_t src_in, dst_in, src_out, dst_out; /* nhwc -> blocked, blocked -> nhwc */
    float *wbuf, *wbuf_bd, *dwbuf, *wtmp, *bias; /* owned; wtmp: a folded weight or dW_eff, oihw */
    size_t wbuf_cap, wbuf_bd_cap, dwbuf_cap;
    /* a low-rank adapter's K-channel convolutions: x * B (forward) and (dz A)^T x (backward weights) */
    int64_t lr_K;
    fwd_prim fwd_k;
    dnnl_memory_desc_t k_dst_md, k_w_user_md, dwk_md;
    dnnl_primitive_desc_t bwd_wk_pd;
    dnnl_primitive_t bwd_wk, dwk_reorder; /* dwk_reorder: dwk_md -> oihw, NULL when oihw */
    float *kbuf, *dwkbuf, *ubuf; /* ubuf: x * B of a bf16 training forward [B Ho Wo x K] */
    size_t kbuf_cap, dwkbuf_cap, ubuf_cap;
    const float *u_of; /* the x whose x * B ubuf holds (for the backward), NULL: none */
    int wfresh; /* wbuf holds the unfolded W_eff in fwd[FWD_PLAIN]'s layout from the last forward */
    /* bf16 on oneDNN, training: the input x converted once, kept from the forward for the
     * backward weights (the conv's own, not the shared scratch, which later layers overwrite) */
    clv_bf16 *xh;
    size_t xh_cap;       /* values */
    const float *xh_of;  /* the x that xh holds (the last training forward's), NULL: none */
    const float *xh_set; /* a producer filled xh from this x for the next forward (clv_conv_input_ready) */
    const float *dyh_of; /* a producer wrote this dy in bf16 into dyh instead (clv_conv_dy_ready) */
    const clv_bf16 *dyh; /* the compute scratch's slot 0 (until the backward that reads it) */
    /* bf16 Winograd F(2x2, 3x3) for a 3x3 stride-1 pad-1 conv in bf16 (forward, backward data and
     * weights; working memory: the handle's), on fp32 x and dy: the direct bf16 primitives take
     * 1.3-1.7x its time */
    int wino_h;
};

#define CK(call, what)                                                                                                \
    do {                                                                                                              \
        dnnl_status_t st_ = (call);                                                                                   \
        if (st_ != dnnl_success)                                                                                      \
            return clv_errf(err, "%s: oneDNN %s failed (status %d)", c->l->name, what, (int)st_);                     \
    } while (0)

int clv_dnnl_open(clv_dnnl *d, clv_err *err)
{
    dnnl_engine_t e = NULL;
    dnnl_stream_t s = NULL;
    memset(d, 0, sizeof *d);
    if (dnnl_engine_create(&e, dnnl_cpu, 0) != dnnl_success)
        return clv_errf(err, "oneDNN: cannot create a CPU engine");
    if (dnnl_stream_create(&s, e, dnnl_stream_default_flags) != dnnl_success) {
        dnnl_engine_destroy(e);
        return clv_errf(err, "oneDNN: cannot create a stream");
    }
    d->engine = e;
    d->stream = s;
    d->winograd = 1;
    if (!(d->blocked = calloc(1, sizeof *d->blocked)) || !(d->wino = calloc(1, sizeof *d->wino))) {
        clv_dnnl_close(d);
        return clv_errf(err, "oneDNN: out of memory");
    }
    return 0;
}

void clv_dnnl_close(clv_dnnl *d)
{
    if (d->stream)
        dnnl_stream_destroy(d->stream);
    if (d->engine)
        dnnl_engine_destroy(d->engine);
    if (d->blocked) {
        clv_free(d->blocked->buf[0]);
        clv_free(d->blocked->buf[1]);
        free(d->blocked);
    }
    if (d->wino) {
        clv_wino_bf16_free(d->wino);
        free(d->wino);
    }
    d->engine = d->stream = NULL;
    d->blocked = NULL;
    d->wino = NULL;
}

static void destroy_fwd(fwd_prim *f)
{
    if (f->reorder)
        dnnl_primitive_destroy(f->reorder);
    if (f->p)
        dnnl_primitive_destroy(f->p);
    if (f->pd)
        dnnl_primitive_desc_destroy(f->pd);
    memset(f, 0, sizeof *f);
}

static void destroy_lowrank(clv_conv_prims *pr)
{
    destroy_fwd(&pr->fwd_k);
    if (pr->bwd_wk)
        dnnl_primitive_destroy(pr->bwd_wk);
    if (pr->dwk_reorder)
        dnnl_primitive_destroy(pr->dwk_reorder);
    if (pr->bwd_wk_pd)
        dnnl_primitive_desc_destroy(pr->bwd_wk_pd);
    pr->bwd_wk = pr->dwk_reorder = NULL;
    pr->bwd_wk_pd = NULL;
    pr->lr_K = 0;
}

static void destroy_prims(clv_conv_prims *pr)
{
    destroy_lowrank(pr);
    for (int i = 0; i < N_FWD; i++)
        destroy_fwd(&pr->fwd[i]);
    dnnl_primitive_t ps[] = {pr->bwd_d,  pr->bwd_w,  pr->bwd_d_reorder, pr->dw_reorder, pr->dw_reorder_sum,
                             pr->src_in, pr->dst_in, pr->src_out,       pr->dst_out};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        if (ps[i])
            dnnl_primitive_destroy(ps[i]);
    if (pr->bwd_d_pd)
        dnnl_primitive_desc_destroy(pr->bwd_d_pd);
    if (pr->bwd_w_pd)
        dnnl_primitive_desc_destroy(pr->bwd_w_pd);
    pr->bwd_d = pr->bwd_w = pr->bwd_d_reorder = pr->dw_reorder = pr->dw_reorder_sum = NULL;
    pr->src_in = pr->dst_in = pr->src_out = pr->dst_out = NULL;
    pr->wino_fwd = pr->wino_bwd = 0;
    pr->bwd_d_pd = pr->bwd_w_pd = NULL;
    pr->wfresh = 0;
    pr->xh_of = pr->xh_set = NULL;
    pr->dyh_of = NULL;
}

void clv_conv_release(clv_conv *c)
{
    clv_conv_prims *pr = c->pr;
    if (!pr)
        return;
    destroy_prims(pr);
    clv_free(pr->wbuf);
    clv_free(pr->wbuf_bd);
    clv_free(pr->dwbuf);
    clv_free(pr->wtmp);
    clv_free(pr->bias);
    clv_free(pr->kbuf);
    clv_free(pr->dwkbuf);
    clv_free(pr->ubuf);
    clv_free(pr->xh);
    free(pr);
    c->pr = NULL;
}

int clv_conv_init(clv_conv *c, clv_wlayer *l, int64_t cin, int64_t cout, int64_t k, int64_t s, int64_t p, int64_t H,
                  int64_t W, clv_err *err)
{
    memset(c, 0, sizeof *c);
    c->l = l;
    c->cin = cin, c->cout = cout, c->k = k, c->s = s, c->p = p, c->H = H, c->W = W;
    c->Ho = clv_conv_out_size(H, k, s, p);
    c->Wo = clv_conv_out_size(W, k, s, p);
    if (k < 1 || s < 1 || p < 0 || c->Ho < 1 || c->Wo < 1)
        return clv_errf(err, "%s gets a %lldx%lld input, too small for its %lldx%lld stride %lld kernel", l->name,
                        (long long)H, (long long)W, (long long)k, (long long)k, (long long)s);
    if (l->out != cout || l->in != cin * k * k)
        return clv_errf(err, "%s: a %lld x %lld weight layer is not a %lld x (%lld x %lld x %lld) convolution", l->name,
                        (long long)l->out, (long long)l->in, (long long)cout, (long long)cin, (long long)k,
                        (long long)k);
    return 0;
}

/* floats of a buffer for md, grown into *buf (cap in bytes) */
static int grow(float **buf, size_t *cap, const dnnl_memory_desc_t *md, const clv_conv *c, clv_err *err)
{
    const size_t n = dnnl_memory_desc_get_size(md);
    if (clv_scratch_reserve((void **)buf, cap, n, 1))
        return clv_errf(err, "%s: out of memory for its oneDNN weights (%zu bytes)", c->l->name, n);
    return 0;
}

static void conv_geometry(const clv_conv *c, dnnl_dims_t strides, dnnl_dims_t pad_l, dnnl_dims_t pad_r)
{
    strides[0] = strides[1] = c->s;
    pad_l[0] = pad_l[1] = c->p;
    /* the right padding that makes (H + pl + pr - k) / s + 1 = Ho exactly (may be below p) */
    pad_r[0] = (c->Ho - 1) * c->s + c->k - c->H - c->p;
    pad_r[1] = (c->Wo - 1) * c->s + c->k - c->W - c->p;
}

/* A reorder from one weight layout to another, or NULL (*r) when equal. */
static int make_reorder(clv_conv *c, const clv_dnnl *d, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                        int accumulate, dnnl_primitive_t *r, clv_err *err)
{
    *r = NULL;
    if (!accumulate && dnnl_memory_desc_equal(from, to))
        return 0;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if (accumulate) {
        CK(dnnl_primitive_attr_create(&attr), "attribute");
        CK(dnnl_post_ops_create(&po), "post-ops");
        CK(dnnl_post_ops_append_sum(po, 1.0f), "sum post-op");
        CK(dnnl_primitive_attr_set_post_ops(attr, po), "post-ops");
    }
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, from, d->engine, to, d->engine, attr);
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    CK(st, "weight reorder");
    st = dnnl_primitive_create(r, pd);
    dnnl_primitive_desc_destroy(pd);
    CK(st, "weight reorder");
    return 0;
}

/* csrc_md and cdst_md for batch B in dt */
static int desc_by_dt(clv_conv *c, int64_t B, dnnl_data_type_t dt, clv_err *err)
{
    clv_conv_prims *pr = c->pr;
    const dnnl_dims_t src = {B, c->cin, c->H, c->W}, dst = {B, c->cout, c->Ho, c->Wo};
    pr->dt = dt;
    CK(dnnl_memory_desc_init_by_tag(&pr->csrc_md, 4, src, dt, dnnl_nhwc), "source descriptor");
    CK(dnnl_memory_desc_init_by_tag(&pr->cdst_md, 4, dst, dt, dnnl_nhwc), "destination descriptor");
    return 0;
}

/* Does oneDNN make a primitive descriptor for cd (hint may be NULL) with
 * more than its reference code? *keep (may be NULL) gets it, else it is destroyed. */
static int fast_impl(const clv_dnnl *d, const dnnl_convolution_desc_t *cd, dnnl_primitive_desc_t hint,
                     dnnl_primitive_desc_t *keep)
{
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_primitive_desc_create(&pd, cd, NULL, d->engine, hint) != dnnl_success)
        return 0;
    const char *impl = NULL;
    const int ok = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
                   strncmp(impl, "ref", 3) != 0;
    if (ok && keep)
        *keep = pd;
    else
        dnnl_primitive_desc_destroy(pd);
    return ok;
}

/* Does oneDNN have bf16 convolutions of this shape (forward, backward data
 * and weights) beyond its reference code? The descriptors are set for bf16. */
static int bf16_convs_here(clv_conv *c, const clv_dnnl *d, int64_t B)
{
    clv_conv_prims *pr = c->pr;
    clv_err ignored = {{0}};
    if (desc_by_dt(c, B, dnnl_bf16, &ignored))
        return 0;
    dnnl_dims_t strides, pl, pr_;
    conv_geometry(c, strides, pl, pr_);
    const dnnl_dims_t wts = {c->cout, c->cin, c->k, c->k};
    dnnl_memory_desc_t wany, dwany;
    dnnl_convolution_desc_t fd, bd, wd;
    dnnl_primitive_desc_t fpd = NULL;
    if (dnnl_memory_desc_init_by_tag(&wany, 4, wts, dnnl_bf16, dnnl_format_tag_any) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&dwany, 4, wts, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &pr->csrc_md, &wany,
                                           NULL, &pr->dst_md, strides, pl, pr_) != dnnl_success ||
        dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &pr->src_md, &wany, &pr->cdst_md,
                                                 strides, pl, pr_) != dnnl_success ||
        dnnl_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct, &pr->csrc_md, &dwany, NULL,
                                                    &pr->cdst_md, strides, pl, pr_) != dnnl_success ||
        !fast_impl(d, &fd, NULL, &fpd))
        return 0;
    const int ok = fast_impl(d, &bd, fpd, NULL) && fast_impl(d, &wd, fpd, NULL);
    dnnl_primitive_desc_destroy(fpd);
    return ok;
}

/* Primitives for batch B in the layer's precision (all dropped when either
 * changes; forward variants and the backward made when first needed). */
static int ensure_batch(clv_conv *c, const clv_dnnl *d, int64_t B, clv_err *err)
{
    if (!c->pr && !(c->pr = calloc(1, sizeof *c->pr)))
        return clv_errf(err, "%s: out of memory", c->l->name);
    clv_conv_prims *pr = c->pr;
    const clv_compute *cc = c->l->compute;
    /* what the layer asks for: fp32, bf16 on oneDNN if it can, or the converting path */
    const int want = clv_compute_precision(cc) == CLV_PRECISION_FP32 ? 0 : clv_compute_bf16_onednn(cc) ? 1 : 2;
    if (pr->B == B && pr->want == want && pr->winograd == d->winograd)
        return 0;
    destroy_prims(pr);
    pr->B = 0;
    const dnnl_dims_t src = {B, c->cin, c->H, c->W}, dst = {B, c->cout, c->Ho, c->Wo},
                      wts = {c->cout, c->cin, c->k, c->k}, bias = {c->cout};
    CK(dnnl_memory_desc_init_by_tag(&pr->src_md, 4, src, dnnl_f32, dnnl_nhwc), "source descriptor");
    CK(dnnl_memory_desc_init_by_tag(&pr->dst_md, 4, dst, dnnl_f32, dnnl_nhwc), "destination descriptor");
    CK(dnnl_memory_desc_init_by_tag(&pr->w_user_md, 4, wts, dnnl_f32, dnnl_oihw), "weight descriptor");
    CK(dnnl_memory_desc_init_by_tag(&pr->bias_md, 1, bias, dnnl_f32, dnnl_x), "bias descriptor");
    pr->mode = want == 0 ? CONV_FP32 : want == 1 && bf16_convs_here(c, d, B) ? CONV_BF16 : CONV_ROUND;
    pr->wino_h = pr->mode == CONV_BF16 && d->winograd && c->k == 3 && c->s == 1 && c->p == 1 &&
                 clv_compute_bf16_native(cc);
    if (desc_by_dt(c, B, pr->mode == CONV_BF16 ? dnnl_bf16 : dnnl_f32, err))
        return -1;
    pr->B = B;
    pr->want = want;
    pr->winograd = d->winograd;
    return 0;
}

/* the shared blocked buffer i grown to md's size */
static float *blocked_buf(clv_conv *c, const clv_dnnl *d, int i, const dnnl_memory_desc_t *md, clv_err *err)
{
    clv_dnnl_blocked *b = d->blocked;
    if (!b) {
        clv_errf(err, "%s: oneDNN handle without its blocked buffers", c->l->name);
        return NULL;
    }
    const size_t n = dnnl_memory_desc_get_size(md);
    if (n > b->cap[i]) {
        clv_free(b->buf[i]);
        b->cap[i] = 0;
        if (!(b->buf[i] = clv_alloc_array(n, 1))) {
            clv_errf(err, "%s: out of memory for a blocked activation (%zu bytes)", c->l->name, n);
            return NULL;
        }
        b->cap[i] = n;
    }
    return b->buf[i];
}

/* The training forward of an fp32 3x3 stride-1 conv on oneDNN's Winograd primitive (F(4x4, 3x3):
 * about half the direct kernels' time on resnet18_cifar's shapes, errors of about 3e-7 of
 * sum |x w| against 2e-8 to 8e-8 for the direct ones). It reads and writes oneDNN's blocked
 * layouts, reached from nhwc by reorders. 1: f->pd made, 0: not here (direct), -1: error. */
static int wino_fwd_pd(clv_conv *c, const clv_dnnl *d, fwd_prim *f, clv_err *err)
{
    clv_conv_prims *pr = c->pr;
    if (!d->winograd || pr->mode != CONV_FP32 || c->k != 3 || c->s != 1)
        return 0;
    dnnl_dims_t strides, pl, pr_;
    conv_geometry(c, strides, pl, pr_);
    const dnnl_dims_t src = {pr->B, c->cin, c->H, c->W}, dst = {pr->B, c->cout, c->Ho, c->Wo},
                      wts = {c->cout, c->cin, c->k, c->k};
    dnnl_memory_desc_t sany, wany, dany;
    dnnl_convolution_desc_t cd;
    if (dnnl_memory_desc_init_by_tag(&sany, 4, src, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&wany, 4, wts, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&dany, 4, dst, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_winograd, &sany, &wany, NULL,
                                           &dany, strides, pl, pr_) != dnnl_success ||
        dnnl_primitive_desc_create(&f->pd, &cd, NULL, d->engine, NULL) != dnnl_success) {
        f->pd = NULL;
        return 0;
    }
    pr->bsrc_md = *dnnl_primitive_desc_query_md(f->pd, dnnl_query_src_md, 0);
    pr->bdst_md = *dnnl_primitive_desc_query_md(f->pd, dnnl_query_dst_md, 0);
    if (make_reorder(c, d, &pr->src_md, &pr->bsrc_md, 0, &pr->src_in, err) ||
        make_reorder(c, d, &pr->bdst_md, &pr->dst_md, 0, &pr->dst_out, err) ||
        make_reorder(c, d, &pr->dst_md, &pr->bdst_md, 0, &pr->dst_in, err) ||
        make_reorder(c, d, &pr->bsrc_md, &pr->src_md, 0, &pr->src_out, err))
        return -1;
    pr->wino_fwd = 1;
    return 1;
}

static int make_fwd(clv_conv *c, const clv_dnnl *d, int v, clv_err *err)
{
    clv_conv_prims *pr = c->pr;
    fwd_prim *f = &pr->fwd[v];
    if (f->p)
        return 0;
    const int wino = v == FWD_PLAIN ? wino_fwd_pd(c, d, f, err) : 0;
    if (wino < 0)
        return -1;
    if (wino)
        goto made;
    const int fused = v >= FWD_FUSED, sum = fused && ((v - FWD_FUSED) & 2), relu = fused && ((v - FWD_FUSED) & 1);
    dnnl_dims_t strides, pl, pr_;
    conv_geometry(c, strides, pl, pr_);
    dnnl_memory_desc_t wany;
    const dnnl_dims_t wts = {c->cout, c->cin, c->k, c->k};
    CK(dnnl_memory_desc_init_by_tag(&wany, 4, wts, pr->dt, dnnl_format_tag_any), "weight descriptor");
    dnnl_convolution_desc_t cd;
    CK(dnnl_convolution_forward_desc_init(&cd, fused ? dnnl_forward_inference : dnnl_forward_training,
                                          dnnl_convolution_direct, &pr->csrc_md, &wany, fused ? &pr->bias_md : NULL,
                                          &pr->dst_md, strides, pl, pr_),
       "forward descriptor");
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if (sum || relu) {
        CK(dnnl_primitive_attr_create(&attr), "attribute");
        CK(dnnl_post_ops_create(&po), "post-ops");
        if (sum)
            CK(dnnl_post_ops_append_sum(po, 1.0f), "sum post-op");
        if (relu)
            CK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f), "relu post-op");
        CK(dnnl_primitive_attr_set_post_ops(attr, po), "post-ops");
    }
    dnnl_status_t st = dnnl_primitive_desc_create(&f->pd, &cd, attr, d->engine, NULL);
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    CK(st, "forward primitive descriptor");
made:
    CK(dnnl_primitive_create(&f->p, f->pd), "forward primitive");
    f->wmd = *dnnl_primitive_desc_query_md(f->pd, dnnl_query_weights_md, 0);
    if (make_reorder(c, d, &pr->w_user_md, &f->wmd, 0, &f->reorder, err) ||
        grow(&pr->wbuf, &pr->wbuf_cap, &f->wmd, c, err))
        return -1;
    return 0;
}

/* oneDNN 2.6.3's 1x1 backward weights below AVX-512 ("jit_1x1:avx2") writes past the end of its
 * scratchpad when a strided 1x1 convolution has fewer than 8 input channels (its copy of the
 * strided input to unit stride): heap corruption and wrong, run-to-run different gradients
 * (found under ONEDNN_MAX_CPU_ISA=AVX2 on the test fixtures' 4-channel downsamples; 8, 12, 20
 * or more channels are fine). Such a convolution takes oneDNN's next implementation. */
static int faulty_backward_weights(const clv_conv *c, dnnl_primitive_desc_t pd)
{
    const char *impl = NULL;
    if (c->k != 1 || c->s == 1 || c->cin >= 8 ||
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl)
        return 0;
    return !strncmp(impl, "jit_1x1:", 8) && !strstr(impl, "avx512");
}

/* The backward-weights primitive descriptor of cd: oneDNN's first implementation that is not
 * faulty_backward_weights */
static int backward_weights_pd(clv_conv *c, const clv_dnnl *d, const dnnl_convolution_desc_t *cd,
                               dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd, clv_err *err)
{
    dnnl_primitive_desc_iterator_t it;
    CK(dnnl_primitive_desc_iterator_create(&it, cd, NULL, d->engine, hint), "backward-weights descriptor");
    *pd = NULL;
    do {
        dnnl_primitive_desc_t cand = dnnl_primitive_desc_iterator_fetch(it);
        if (cand && !faulty_backward_weights(c, cand)) {
            *pd = cand;
            break;
        }
        if (cand)
            dnnl_primitive_desc_destroy(cand);
    } while (dnnl_primitive_desc_iterator_next(it) == dnnl_success);
    dnnl_primitive_desc_iterator_destroy(it);
    return *pd ? 0 : clv_errf(err, "%s: oneDNN has no backward-weights implementation for it", c->l->name);
}

static int make_bwd(clv_conv *c, const clv_dnnl *d, clv_err *err)
{
    clv_conv_prims *pr = c->pr;
    if (pr->bwd_d)
        return 0;
    if (make_fwd(c, d, FWD_PLAIN, err))
        return -1;
    dnnl_dims_t strides, pl, pr_;
    conv_geometry(c, strides, pl, pr_);
    dnnl_memory_desc_t wany;
    const dnnl_dims_t wts = {c->cout, c->cin, c->k, c->k};
    CK(dnnl_memory_desc_init_by_tag(&wany, 4, wts, pr->dt, dnnl_format_tag_any), "weight descriptor");
    dnnl_convolution_desc_t cd, wd;
    /* Winograd's backward (data and weights) on the forward's blocked layouts when it has both,
     * else the direct ones on nhwc (a Winograd forward is no hint for those) */
    pr->wino_bwd = 0;
    if (pr->wino_fwd) {
        dnnl_memory_desc_t dwany;
        dnnl_primitive_desc_t bd = NULL, bw = NULL;
        if (dnnl_memory_desc_init_by_tag(&dwany, 4, wts, dnnl_f32, dnnl_format_tag_any) == dnnl_success &&
            dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_winograd, &pr->bsrc_md, &wany,
                                                     &pr->bdst_md, strides, pl, pr_) == dnnl_success &&
            dnnl_convolution_backward_weights_desc_init(&wd, dnnl_convolution_winograd, &pr->bsrc_md, &dwany, NULL,
                                                        &pr->bdst_md, strides, pl, pr_) == dnnl_success &&
            dnnl_primitive_desc_create(&bd, &cd, NULL, d->engine, pr->fwd[FWD_PLAIN].pd) == dnnl_success &&
            dnnl_primitive_desc_create(&bw, &wd, NULL, d->engine, pr->fwd[FWD_PLAIN].pd) == dnnl_success) {
            pr->bwd_d_pd = bd;
            pr->bwd_w_pd = bw;
            pr->wino_bwd = 1;
        } else if (bd)
            dnnl_primitive_desc_destroy(bd);
    }
    const dnnl_primitive_desc_t hint = pr->wino_fwd ? NULL : pr->fwd[FWD_PLAIN].pd;
    if (!pr->wino_bwd) {
        CK(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &pr->src_md, &wany, &pr->cdst_md,
                                                    strides, pl, pr_),
           "backward-data descriptor");
        CK(dnnl_primitive_desc_create(&pr->bwd_d_pd, &cd, NULL, d->engine, hint),
           "backward-data primitive descriptor");
    }
    CK(dnnl_primitive_create(&pr->bwd_d, pr->bwd_d_pd), "backward-data primitive");
    pr->bwd_d_wmd = *dnnl_primitive_desc_query_md(pr->bwd_d_pd, dnnl_query_weights_md, 0);
    if (make_reorder(c, d, &pr->w_user_md, &pr->bwd_d_wmd, 0, &pr->bwd_d_reorder, err) ||
        grow(&pr->wbuf_bd, &pr->wbuf_bd_cap, &pr->bwd_d_wmd, c, err))
        return -1;
    if (!pr->wino_bwd) {
        CK(dnnl_memory_desc_init_by_tag(&wany, 4, wts, dnnl_f32, dnnl_format_tag_any), "weight descriptor"); /* dW */
        CK(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &pr->csrc_md, &wany, NULL,
                                                       &pr->cdst_md, strides, pl, pr_),
           "backward-weights descriptor");
        if (backward_weights_pd(c, d, &cd, hint, &pr->bwd_w_pd, err))
            return -1;
    }
    CK(dnnl_primitive_create(&pr->bwd_w, pr->bwd_w_pd), "backward-weights primitive");
    pr->dw_md = *dnnl_primitive_desc_query_md(pr->bwd_w_pd, dnnl_query_diff_weights_md, 0);
    if (make_reorder(c, d, &pr->dw_md, &pr->w_user_md, 0, &pr->dw_reorder, err) ||
        make_reorder(c, d, &pr->dw_md, &pr->w_user_md, 1, &pr->dw_reorder_sum, err) ||
        grow(&pr->dwbuf, &pr->dwbuf_cap, &pr->dw_md, c, err))
        return -1;
    return 0;
}

/* The K-channel convolutions of a low-rank adapter's backward, for the batch's shapes. */
static int make_lowrank(clv_conv *c, const clv_dnnl *d, int64_t K, clv_err *err)
{
    clv_conv_prims *pr = c->pr;
    if (pr->lr_K == K && pr->bwd_wk)
        return 0;
    destroy_lowrank(pr);
    dnnl_dims_t strides, pl, pr_;
    conv_geometry(c, strides, pl, pr_);
    const dnnl_dims_t dst = {pr->B, K, c->Ho, c->Wo}, wts = {K, c->cin, c->k, c->k};
    dnnl_memory_desc_t wany;
    /* fp32 in every precision: the K-channel products are small (as RKR's low-rank GEMMs) */
    CK(dnnl_memory_desc_init_by_tag(&pr->k_dst_md, 4, dst, dnnl_f32, dnnl_nhwc), "low-rank descriptor");
    CK(dnnl_memory_desc_init_by_tag(&pr->k_w_user_md, 4, wts, dnnl_f32, dnnl_oihw), "low-rank descriptor");
    CK(dnnl_memory_desc_init_by_tag(&wany, 4, wts, dnnl_f32, dnnl_format_tag_any), "low-rank descriptor");
    dnnl_convolution_desc_t cd;
    CK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &pr->src_md, &wany,
                                          NULL, &pr->k_dst_md, strides, pl, pr_),
       "low-rank forward descriptor");
    fwd_prim *f = &pr->fwd_k;
    CK(dnnl_primitive_desc_create(&f->pd, &cd, NULL, d->engine, NULL), "low-rank forward primitive descriptor");
    CK(dnnl_primitive_create(&f->p, f->pd), "low-rank forward primitive");
    f->wmd = *dnnl_primitive_desc_query_md(f->pd, dnnl_query_weights_md, 0);
    if (make_reorder(c, d, &pr->k_w_user_md, &f->wmd, 0, &f->reorder, err) ||
        grow(&pr->kbuf, &pr->kbuf_cap, &f->wmd, c, err))
        return -1;
    CK(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &pr->src_md, &wany, NULL,
                                                   &pr->k_dst_md, strides, pl, pr_),
       "low-rank backward-weights descriptor");
    if (backward_weights_pd(c, d, &cd, f->pd, &pr->bwd_wk_pd, err))
        return -1;
    CK(dnnl_primitive_create(&pr->bwd_wk, pr->bwd_wk_pd), "low-rank backward-weights primitive");
    pr->dwk_md = *dnnl_primitive_desc_query_md(pr->bwd_wk_pd, dnnl_query_diff_weights_md, 0);
    if (make_reorder(c, d, &pr->dwk_md, &pr->k_w_user_md, 0, &pr->dwk_reorder, err) ||
        grow(&pr->dwkbuf, &pr->dwkbuf_cap, &pr->dwk_md, c, err))
        return -1;
    pr->lr_K = K;
    return 0;
}

/* Runs p with n (argument, descriptor, pointer) triples; memory objects are made per call. */
typedef struct arg {
    int what;
    const dnnl_memory_desc_t *md;
    const void *ptr;
} arg;

static int run(clv_conv *c, const clv_dnnl *d, dnnl_primitive_t p, const arg *as, int n, const char *what,
               clv_err *err)
{
    dnnl_exec_arg_t ex[8];
    dnnl_memory_t mem[8] = {0};
    dnnl_status_t st = dnnl_success;
    int made = 0;
    for (; made < n && st == dnnl_success; made++) {
        st = dnnl_memory_create(&mem[made], as[made].md, d->engine, (void *)as[made].ptr);
        ex[made].arg = as[made].what;
        ex[made].memory = mem[made];
    }
    if (st == dnnl_success)
        st = dnnl_primitive_execute(p, d->stream, n, ex);
    if (st == dnnl_success)
        st = dnnl_stream_wait(d->stream);
    for (int i = 0; i < made; i++)
        if (mem[i])
            dnnl_memory_destroy(mem[i]);
    CK(st, what);
    return 0;
}

static int reorder(clv_conv *c, const clv_dnnl *d, dnnl_primitive_t r, const dnnl_memory_desc_t *from_md,
                   const void *from, const dnnl_memory_desc_t *to_md, void *to, clv_err *err)
{
    const arg as[2] = {{DNNL_ARG_FROM, from_md, from}, {DNNL_ARG_TO, to_md, to}};
    return run(c, d, r, as, 2, "reorder", err);
}

/* X (nhwc, from_md) reordered into the shared blocked buffer i (to_md); NULL on error */
static float *into_blocked(clv_conv *c, const clv_dnnl *d, int i, dnnl_primitive_t r, const dnnl_memory_desc_t *from_md,
                           const void *X, const dnnl_memory_desc_t *to_md, clv_err *err)
{
    float *b = blocked_buf(c, d, i, to_md, err);
    return b && !reorder(c, d, r, from_md, X, to_md, b, err) ? b : NULL;
}

/* the weight in f's layout: W itself when that is oihw, else reordered into wbuf */
static int place_weight(clv_conv *c, const clv_dnnl *d, const fwd_prim *f, const float *W, const float **out,
                        clv_err *err)
{
    clv_conv_prims *pr = c->pr;
    *out = W;
    if (!f->reorder)
        return 0;
    if (reorder(c, d, f->reorder, &pr->w_user_md, W, &f->wmd, pr->wbuf, err))
        return -1;
    *out = pr->wbuf;
    return 0;
}

static int ensure_wtmp(clv_conv *c, clv_err *err)
{
    clv_conv_prims *pr = c->pr;
    if (!pr->wtmp && !(pr->wtmp = clv_alloc_array((size_t)(c->l->out * c->l->in), sizeof(float))))
        return clv_errf(err, "%s: out of memory for its folded weight", c->l->name);
    if (!pr->bias && !(pr->bias = clv_alloc_array((size_t)c->cout, sizeof(float))))
        return clv_errf(err, "%s: out of memory for its folded bias", c->l->name);
    return 0;
}

/* X [n] as a primitive's source or diff_dst in the layer's precision: X
 * itself in fp32, else converted into the compute context's scratch slot
 * (x in slot 1, dz in slot 0, so the backward weights reads both). */
static const void *operand(clv_conv *c, int slot, const float *X, int64_t n, clv_err *err)
{
    if (c->pr->mode == CONV_BF16)
        return clv_compute_bf16_scratch(c->l->compute, slot, X, (size_t)n, err);
    if (c->pr->mode == CONV_ROUND)
        return clv_compute_round_scratch(c->l->compute, slot, X, (size_t)n, err);
    return X;
}

/* The weight as the fp32 primitives of the converting path read it: rounded
 * to bf16 values into wtmp (W may be wtmp). In bf16 the reorder converts. */
static const float *round_weight(clv_conv *c, const float *W, clv_err *err)
{
    if (c->pr->mode != CONV_ROUND)
        return W;
    if (ensure_wtmp(c, err))
        return NULL;
    clv_bf16_round_floats(c->pr->wtmp, W, (size_t)(c->l->out * c->l->in));
    return c->pr->wtmp;
}

/* The forward's source: in bf16 on oneDNN in training, x converted into the
 * conv's own xh (unless a producer already filled it from x) and kept for
 * the backward weights; else as operand(). */
static const void *forward_input(clv_conv *c, const float *x, clv_wl_mode mode, clv_err *err)
{
    clv_conv_prims *pr = c->pr;
    const int64_t n = pr->B * c->H * c->W * c->cin;
    if (pr->mode != CONV_BF16 || mode == CLV_WL_INFER) {
        pr->xh_of = NULL;
        return operand(c, 1, x, n, err);
    }
    if (pr->xh_of == x)
        return pr->xh;
    clv_bf16 *h;
    if (clv_conv_input_bf16(c, NULL, pr->B, &h, err))
        return NULL;
    clv_bf16_from_floats(h, x, (size_t)n);
    pr->xh_of = x;
    return h;
}

int clv_conv_input_bf16(clv_conv *c, const clv_dnnl *d, int64_t B, clv_bf16 **h, clv_err *err)
{
    *h = NULL;
    if (d && ensure_batch(c, d, B, err))
        return -1;
    clv_conv_prims *pr = c->pr;
    if (!pr || pr->B != B || pr->mode != CONV_BF16 || pr->wino_h) /* Winograd transforms fp32 x */
        return 0;
    const size_t n = (size_t)(B * c->H * c->W * c->cin);
    if (n > pr->xh_cap)
        pr->xh_of = pr->xh_set = NULL; /* a new block holds no input yet */
    if (clv_scratch_reserve((void **)&pr->xh, &pr->xh_cap, n, sizeof(clv_bf16)))
        return clv_errf(err, "%s: out of memory for its bf16 input (%zu values)", c->l->name, n);
    *h = pr->xh;
    return 0;
}

void clv_conv_input_ready(clv_conv *c, const float *x)
{
    if (c->pr)
        c->pr->xh_set = x;
}

/* the adapter's low-rank K (0: none), which reads dz in fp32 */
static int64_t lowrank_k(const clv_wlayer *l, const float **A, const float **Bf)
{
    const clv_adapter_ops *ops = l->adapter ? l->adapter->ops : NULL;
    *A = *Bf = NULL;
    return ops && ops->lowrank && ops->backward_lowrank ? ops->lowrank(l->adapter, (clv_wlayer *)l, A, Bf) : 0;
}

int clv_conv_dy_bf16(clv_conv *c, int64_t B, clv_bf16 **h, clv_err *err)
{
    *h = NULL;
    clv_conv_prims *pr = c->pr;
    const float *A, *Bf;
    if (!pr || pr->B != B || pr->mode != CONV_BF16 || pr->wino_h || clv_wlayer_scale(c->l) ||
        lowrank_k(c->l, &A, &Bf) > 0)
        return 0;
    if (!(*h = clv_compute_bf16_slot(c->l->compute, 0, (size_t)(B * c->Ho * c->Wo * c->cout), err)))
        return clv_err_prefix(err, "%s", c->l->name);
    pr->dyh = *h;
    return 0;
}

void clv_conv_dy_ready(clv_conv *c, const float *dy)
{
    if (c->pr)
        c->pr->dyh_of = dy;
}

/* The handle's bf16 Winograd working memory; NULL (err set) for a handle without it */
static clv_wino_bf16 *wino_of(const clv_conv *c, const clv_dnnl *d, clv_err *err)
{
    if (!d->wino)
        clv_errf(err, "%s: oneDNN handle without its Winograd buffers", c->l->name);
    return d->wino;
}

/* y [N x cout] = conv(x, W) by bf16 Winograd (U for the forward), then ep (may be NULL) */
static int wino_forward(clv_conv *c, const clv_dnnl *d, float *y, const float *x, const float *W,
                        const clv_wino_epilogue *ep, clv_err *err)
{
    clv_wino_bf16 *w = wino_of(c, d, err);
    if (!w || clv_wino_bf16_weight(w, W, c->cout, c->cin, 0, err) ||
        clv_wino_bf16_conv(c->l->compute, w, y, x, c->pr->B, c->H, c->W, c->cin, c->cout, ep, err))
        return clv_err_prefix(err, "%s", c->l->name);
    return 0;
}

static int forward_fused(clv_conv *c, const clv_dnnl *d, float *y, const float *x, const clv_conv_fuse *fu,
                         clv_err *err)
{
    clv_conv_prims *pr = c->pr;
    const int v = FWD_FUSED + (fu->res ? 2 : 0) + (fu->relu ? 1 : 0);
    if ((!pr->wino_h && make_fwd(c, d, v, err)) || ensure_wtmp(c, err))
        return -1;
    const float *W = clv_wlayer_weight(c->l), *s = clv_wlayer_scale(c->l);
    const int64_t in = c->l->in, N = pr->B * c->Ho * c->Wo;
    if (s || fu->mul) { /* (conv(x, W) s) mul = conv(x, diag(s mul) W) */
        for (int64_t o = 0; o < c->cout; o++) {
            const float m = (s ? s[o] : 1.0f) * (fu->mul ? fu->mul[o] : 1.0f);
            for (int64_t i = 0; i < in; i++)
                pr->wtmp[o * in + i] = W[o * in + i] * m;
        }
        W = pr->wtmp;
    }
    for (int64_t o = 0; o < c->cout; o++)
        pr->bias[o] = fu->add ? fu->add[o] : 0.0f;
    pr->wfresh = 0;
    if (pr->wino_h) { /* the norm, residual and ReLU in Winograd's output transform */
        const clv_wino_epilogue ep = {.bias = pr->bias, .res = fu->res, .relu = fu->relu};
        return wino_forward(c, d, y, x, W, &ep, err);
    }
    const float *wp;
    const void *xs = operand(c, 1, x, pr->B * c->H * c->W * c->cin, err);
    if (!xs || !(W = round_weight(c, W, err)) || place_weight(c, d, &pr->fwd[v], W, &wp, err))
        return -1;
    if (fu->res && fu->res != y)
        memcpy(y, fu->res, (size_t)(N * c->cout) * sizeof(float));
    const arg as[4] = {{DNNL_ARG_SRC, &pr->csrc_md, xs},
                       {DNNL_ARG_WEIGHTS, &pr->fwd[v].wmd, wp},
                       {DNNL_ARG_BIAS, &pr->bias_md, pr->bias},
                       {DNNL_ARG_DST, &pr->dst_md, y}};
    return run(c, d, pr->fwd[v].p, as, 4, "fused forward", err);
}

/* U [B Ho Wo x K] = x * B, the K-channel fp32 conv of a low-rank adapter's factor B [K x (cin k k)] */
static int lowrank_conv(clv_conv *c, const clv_dnnl *d, float *U, const float *x, const float *Bf, clv_err *err)
{
    clv_conv_prims *pr = c->pr;
    const float *bp = Bf;
    if (pr->fwd_k.reorder) {
        if (reorder(c, d, pr->fwd_k.reorder, &pr->k_w_user_md, Bf, &pr->fwd_k.wmd, pr->kbuf, err))
            return -1;
        bp = pr->kbuf;
    }
    const arg fa[3] = {{DNNL_ARG_SRC, &pr->src_md, x},
                       {DNNL_ARG_WEIGHTS, &pr->fwd_k.wmd, bp},
                       {DNNL_ARG_DST, &pr->k_dst_md, U}};
    return run(c, d, pr->fwd_k.p, fa, 3, "low-rank forward", err);
}

/* A bf16 training forward with a low-rank adapter (W_eff = W + A B) runs the bf16 conv on the base W
 * and adds the rectification in fp32 here, z += (x * B) A^T, keeping x * B for the backward:
 * rounded into W_eff, an early update of A B (1e-5 against half a bf16 step of W, 1e-4) would vanish
 * from the forward, as for RKR's linear layers (docs/precision.md). */
static int lowrank_beside(clv_conv *c, const clv_dnnl *d, float *z, const float *x, const float *A, const float *Bf,
                          int64_t K, clv_err *err)
{
    clv_conv_prims *pr = c->pr;
    if (grow(&pr->ubuf, &pr->ubuf_cap, &pr->k_dst_md, c, err) || lowrank_conv(c, d, pr->ubuf, x, Bf, err))
        return -1;
    clv_gemm(0, 1, pr->B * c->Ho * c->Wo, c->cout, K, 1.0f, pr->ubuf, K, A, K, 1.0f, z, c->cout);
    pr->u_of = x;
    return 0;
}

static int conv_forward_onednn(clv_conv *c, const clv_dnnl *d, float *z, const float *x, clv_wl_mode mode, int64_t K,
                               clv_err *err);

int clv_conv_forward(clv_conv *c, const clv_dnnl *d, float *y, const float *x, int64_t B, clv_wl_mode mode,
                     const clv_conv_fuse *fuse, clv_err *err)
{
    clv_wlayer *l = c->l;
    if (B <= 0)
        return clv_errf(err, "%s: batch size %lld", l->name, (long long)B);
    if (ensure_batch(c, d, B, err))
        return -1;
    clv_conv_prims *pr = c->pr;
    const int64_t N = B * c->Ho * c->Wo;
    const float *ready = pr->xh_set;
    pr->xh_set = pr->xh_of = NULL;
    if (ready == x)
        pr->xh_of = x; /* a producer filled xh from x (read by forward_input) */
    l->saved = CLV_WL_SAVED_NONE;
    l->saved_rows = mode == CLV_WL_INFER ? 0 : N;
    pr->u_of = NULL;
    if (fuse && mode == CLV_WL_INFER)
        return forward_fused(c, d, y, x, fuse, err);
    if (fuse)
        return clv_errf(err, "%s: a fused epilogue only in inference", l->name);
    if (!pr->wino_h && make_fwd(c, d, FWD_PLAIN, err))
        return -1;
    const float *s = clv_wlayer_scale(l);
    float *z = y;
    if (s && mode != CLV_WL_INFER && !(z = clv_wlayer_keep_z(l, N, err)))
        return -1;
    const float *A = NULL, *Bf = NULL; /* bf16 training: a low-rank rectification beside the base W */
    const int64_t K = pr->mode != CONV_FP32 && mode != CLV_WL_INFER ? lowrank_k(l, &A, &Bf) : 0;
    if (K > 0 && make_lowrank(c, d, K, err))
        return -1;
    if (pr->wino_h) {
        pr->wfresh = 0;
        pr->xh_of = NULL;
        if (wino_forward(c, d, z, x, K > 0 ? l->weight->data : clv_wlayer_weight(l), NULL, err))
            return -1;
    } else if (conv_forward_onednn(c, d, z, x, mode, K, err))
        return -1;
    if (K > 0 && lowrank_beside(c, d, z, x, A, Bf, K, err))
        return -1;
    if (s) {
        const int64_t C = c->cout;
#pragma omp parallel for schedule(static) if (N * C > 65536)
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < C; o++)
                y[n * C + o] = z[n * C + o] * s[o];
    }
    return 0;
}

/* The forward's convolution on oneDNN's primitive into z (K: a low-rank rectification beside) */
static int conv_forward_onednn(clv_conv *c, const clv_dnnl *d, float *z, const float *x, clv_wl_mode mode, int64_t K,
                               clv_err *err)
{
    clv_wlayer *l = c->l;
    clv_conv_prims *pr = c->pr;
    const float *wp, *W = round_weight(c, K > 0 ? l->weight->data : clv_wlayer_weight(l), err);
    const void *xs = W ? forward_input(c, x, mode, err) : NULL;
    if (!xs || place_weight(c, d, &pr->fwd[FWD_PLAIN], W, &wp, err))
        return -1;
    pr->wfresh = K == 0; /* with the rectification beside, wbuf holds the base W, not W_eff */
    arg as[3] = {{DNNL_ARG_SRC, &pr->csrc_md, xs},
                 {DNNL_ARG_WEIGHTS, &pr->fwd[FWD_PLAIN].wmd, wp},
                 {DNNL_ARG_DST, &pr->dst_md, z}};
    if (pr->wino_fwd) { /* x to the blocked layout; the output comes back to nhwc below */
        as[0] = (arg){DNNL_ARG_SRC, &pr->bsrc_md, into_blocked(c, d, 0, pr->src_in, &pr->src_md, xs, &pr->bsrc_md, err)};
        as[2] = (arg){DNNL_ARG_DST, &pr->bdst_md, as[0].ptr ? blocked_buf(c, d, 1, &pr->bdst_md, err) : NULL};
        if (!as[2].ptr)
            return -1;
    }
    return run(c, d, pr->fwd[FWD_PLAIN].p, as, 3, "forward", err) ||
                   (pr->wino_fwd && reorder(c, d, pr->dst_out, &pr->bdst_md, as[2].ptr, &pr->dst_md, z, err))
               ? -1
               : 0;
}

/* 64-byte aligned pieces of the shared scratch */
static size_t up64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Backward weights at small outputs in bf16: oneDNN 2.6.3's AMX backward-weights kernel takes
 * about 2.5x the time of its forward on the same FLOPs there (resnet18_cifar's 4x4 stage: 34 ms
 * against 13 ms). im2col of the bf16 input and one bf16 matmul give the same products with fp32
 * sums (in another order); at these sizes the columns are small. */
#define WGRAD_IM2COL_MAX_PIXELS 64           /* output pixels per image */
#define WGRAD_IM2COL_MAX_BYTES (256ull << 20) /* of columns: beyond, the primitive (no scratch) */

static int wgrad_by_im2col(const clv_conv *c)
{
    const clv_conv_prims *pr = c->pr;
    return pr && pr->mode == CONV_BF16 && !pr->wino_h && c->Ho * c->Wo <= WGRAD_IM2COL_MAX_PIXELS &&
           (unsigned long long)(pr->B * c->Ho * c->Wo * c->l->in) * sizeof(clv_bf16) <= WGRAD_IM2COL_MAX_BYTES;
}

/* col [B Ho Wo x (k k cin)] = the input patches of x (bf16 NHWC), (kh, kw, i) order, zeros for padding */
static void im2col_bf16(const clv_conv *c, clv_bf16 *col, const clv_bf16 *xh, int64_t B)
{
    const int64_t k = c->k, cin = c->cin, HWo = c->Ho * c->Wo, P = B * HWo, K2 = k * k * cin;
#pragma omp parallel for schedule(static) if (P * K2 > 65536)
    for (int64_t p = 0; p < P; p++) {
        const int64_t n = p / HWo, oh = p % HWo / c->Wo, ow = p % c->Wo;
        clv_bf16 *dst = col + p * K2;
        for (int64_t a = 0; a < k; a++) {
            const int64_t ih = oh * c->s - c->p + a;
            for (int64_t b = 0; b < k; b++, dst += cin) {
                const int64_t iw = ow * c->s - c->p + b;
                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W)
                    memset(dst, 0, (size_t)cin * sizeof(clv_bf16));
                else
                    memcpy(dst, xh + ((n * c->H + ih) * c->W + iw) * cin, (size_t)cin * sizeof(clv_bf16));
            }
        }
    }
}

/* W [o][i][kh][kw] (+)= dw [o][kh][kw][i] */
static void ohwi_to_oihw(float *W, const float *dw, int64_t cout, int64_t cin, int64_t k, int accumulate)
{
    const int64_t kk = k * k;
#pragma omp parallel for schedule(static) if (cout * cin * kk > 65536)
    for (int64_t o = 0; o < cout; o++)
        for (int64_t i = 0; i < cin; i++)
            for (int64_t t = 0; t < kk; t++) {
                const float v = dw[(o * kk + t) * cin + i];
                float *w = W + (o * cin + i) * kk + t;
                *w = accumulate ? *w + v : v;
            }
}

/* A full weight gradient dw (oihw) handed to the layer's adapter, or the error when it takes none */
static int dweight_to_adapter(clv_wlayer *l, const float *dw, float *ds, clv_err *err)
{
    const clv_adapter_ops *ops = l->adapter->ops;
    if (!ops->backward_dweight)
        return clv_errf(err, "%s: its %s adapter takes no full weight gradient", l->name, ops->kind);
    return ops->backward_dweight(l->adapter, l, dw, ds, err);
}

int clv_conv_backward(clv_conv *c, const clv_dnnl *d, float *dx, int accumulate, const float *dy, const float *x,
                      int64_t B, clv_arena *scratch, clv_err *err)
{
    clv_wlayer *l = c->l;
    clv_conv_prims *pr = c->pr;
    const int64_t N = B * c->Ho * c->Wo, C = c->cout, nx = B * c->H * c->W * c->cin;
    if (!pr || pr->B != B)
        return clv_errf(err, "%s: backward over batch %lld without its forward", l->name, (long long)B);
    const float *s = clv_wlayer_scale(l);
    const int dy_given = dy && pr->dyh_of == dy; /* dy itself was not written, only its bf16 copy */
    pr->dyh_of = NULL;
    if (clv_wlayer_check_saved(l, N, err))
        return -1;
    const int wgrad = l->adapter != NULL || l->weight->trainable;
    if (!dx && !wgrad)
        return 0;
    if (!pr->wino_h && make_bwd(c, d, err))
        return -1;
    const clv_adapter_ops *ops = l->adapter ? l->adapter->ops : NULL;
    const float *A = NULL, *Bf = NULL;
    const int64_t K = lowrank_k(l, &A, &Bf);
    if (K > 0 && make_lowrank(c, d, K, err))
        return -1;
    if (dy_given && (s || K > 0 || pr->mode != CONV_BF16))
        return clv_errf(err, "%s: given dy in bf16 only, but its backward reads it in fp32", l->name);
    const size_t b_dz = s ? up64((size_t)(N * C) * sizeof(float)) : 0,
                 b_ds = s ? up64((size_t)(2 * C) * sizeof(float)) : 0,
                 b_dx = dx && accumulate ? up64((size_t)nx * sizeof(float)) : 0,
                 b_uv = K > 0 ? up64((size_t)(N * K) * sizeof(float)) : 0,
                 b_da = K > 0 ? up64((size_t)(C * K) * sizeof(float)) : 0,
                 b_db = K > 0 ? up64((size_t)(K * l->in) * sizeof(float)) : 0;
    const int im2col = wgrad && K == 0 && wgrad_by_im2col(c);
    const size_t b_col = im2col ? up64((size_t)(N * l->in) * sizeof(clv_bf16)) : 0,
                 b_dwo = im2col ? up64((size_t)(C * l->in) * sizeof(float)) : 0;
    if (clv_arena_reserve(scratch, b_dz + b_ds + b_dx + 2 * b_uv + b_da + b_db + b_col + b_dwo,
                          "convolutions' scratch", err))
        return -1;
    unsigned char *mem = scratch->mem;
    const float *dz = dy;
    float *ds = NULL;
    if (s) { /* ds = column sums of dy z; dz = dy s per column */
        float *dzs = (float *)mem;
        ds = (float *)(mem + b_dz);
        clv_scale_columns_backward(ds, ds + C, dy, l->zsave, NULL, N, C);
#pragma omp parallel for schedule(static) if (N * C > 65536)
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < C; o++)
                dzs[n * C + o] = dy[n * C + o] * s[o];
        dz = dzs;
    }
    const float *W = clv_wlayer_weight(l);
    const void *dzc = dy_given ? (const void *)pr->dyh : NULL; /* dz in the primitives' precision */
    float *bdz = NULL;                                           /* Winograd: dz in the blocked layout */
    if (dx) {
        float *out = accumulate ? (float *)(mem + b_dz + b_ds) : dx;
        if (pr->wino_h) { /* dx = the convolution of dz with W rotated, in and out swapped */
            clv_wino_bf16 *w = wino_of(c, d, err);
            if (!w || clv_wino_bf16_weight(w, W, c->cout, c->cin, 1, err) ||
                clv_wino_bf16_conv(l->compute, w, out, dz, B, c->H, c->W, c->cout, c->cin, NULL, err))
                return clv_err_prefix(err, "%s", l->name);
        } else {
            const float *wp = W;
            if (pr->wfresh && pr->fwd[FWD_PLAIN].reorder &&
                dnnl_memory_desc_equal(&pr->fwd[FWD_PLAIN].wmd, &pr->bwd_d_wmd))
                wp = pr->wbuf; /* the forward's reordered (converted, rounded) W_eff, still current */
            else if (!(wp = round_weight(c, W, err)))
                return -1;
            else if (pr->bwd_d_reorder) {
                if (reorder(c, d, pr->bwd_d_reorder, &pr->w_user_md, wp, &pr->bwd_d_wmd, pr->wbuf_bd, err))
                    return -1;
                wp = pr->wbuf_bd;
            }
            if (!dzc && !(dzc = operand(c, 0, dz, N * C, err)))
                return -1;
            arg as[3] = {{DNNL_ARG_DIFF_DST, &pr->cdst_md, dzc},
                         {DNNL_ARG_WEIGHTS, &pr->bwd_d_wmd, wp},
                         {DNNL_ARG_DIFF_SRC, &pr->src_md, out}};
            if (pr->wino_bwd) { /* dz to the blocked layout (kept there for the weights); dx comes back to nhwc */
                if (!(bdz = into_blocked(c, d, 1, pr->dst_in, &pr->cdst_md, dzc, &pr->bdst_md, err)) ||
                    !(as[2].ptr = blocked_buf(c, d, 0, &pr->bsrc_md, err)))
                    return -1;
                as[0] = (arg){DNNL_ARG_DIFF_DST, &pr->bdst_md, bdz};
                as[2].md = &pr->bsrc_md;
            }
            if (run(c, d, pr->bwd_d, as, 3, "backward data", err) ||
                (pr->wino_bwd && reorder(c, d, pr->src_out, &pr->bsrc_md, as[2].ptr, &pr->src_md, out, err)))
                return -1;
        }
        if (accumulate) {
#pragma omp parallel for simd schedule(static) if (nx > 65536)
            for (int64_t i = 0; i < nx; i++)
                dx[i] += out[i];
        }
    }
    if (!wgrad)
        return 0;
    if (K > 0) { /* dA = dz^T (x * B), dB = (dz A)^T x: two K-channel convolutions and two thin GEMMs */
        unsigned char *at = mem + b_dz + b_ds + b_dx;
        float *V = (float *)(at + b_uv), *dA = (float *)(at + 2 * b_uv), *dB = (float *)(at + 2 * b_uv + b_da);
        const float *U = pr->ubuf; /* x * B from the bf16 forward on this x (the same floats), else here */
        if (pr->u_of != x) {
            if (lowrank_conv(c, d, (float *)at, x, Bf, err))
                return -1;
            U = (float *)at;
        }
        clv_gemm(1, 0, C, K, N, 1.0f, dz, C, U, K, 0.0f, dA, K);
        clv_gemm(0, 0, N, K, C, 1.0f, dz, C, A, K, 0.0f, V, K);
        const arg wa[3] = {{DNNL_ARG_SRC, &pr->src_md, x},
                           {DNNL_ARG_DIFF_DST, &pr->k_dst_md, V},
                           {DNNL_ARG_DIFF_WEIGHTS, &pr->dwk_md, pr->dwk_reorder ? pr->dwkbuf : dB}};
        if (run(c, d, pr->bwd_wk, wa, 3, "low-rank backward weights", err))
            return -1;
        if (pr->dwk_reorder && reorder(c, d, pr->dwk_reorder, &pr->dwk_md, pr->dwkbuf, &pr->k_w_user_md, dB, err))
            return -1;
        return ops->backward_lowrank(l->adapter, l, dA, dB, ds, err);
    }
    if (pr->wino_h) { /* dW in oihw into wtmp, then into the gradient or to the adapter */
        clv_wino_bf16 *w = wino_of(c, d, err);
        if (!w || ensure_wtmp(c, err))
            return -1;
        if (clv_wino_bf16_dweight(l->compute, w, pr->wtmp, x, dz, B, c->H, c->W, c->cin, c->cout, err))
            return clv_err_prefix(err, "%s", l->name);
        if (!l->adapter) {
            float *g = l->weight->grad;
            const float *dw = pr->wtmp;
            const int64_t n = c->l->out * c->l->in;
#pragma omp parallel for simd schedule(static) if (n > 65536)
            for (int64_t i = 0; i < n; i++)
                g[i] += dw[i];
            return 0;
        }
        return dweight_to_adapter(l, pr->wtmp, ds, err);
    }
    const void *xs = pr->mode == CONV_BF16 && pr->xh_of == x ? (const void *)pr->xh : operand(c, 1, x, nx, err);
    if (!xs || (!dzc && !(dzc = operand(c, 0, dz, N * C, err))))
        return -1;
    if (im2col) { /* dw [cout x (k k cin)] = dz^T im2col(x), then to oihw */
        clv_bf16 *col = (clv_bf16 *)(mem + b_dz + b_ds + b_dx);
        float *dwo = (float *)(mem + b_dz + b_ds + b_dx + b_col);
        im2col_bf16(c, col, xs, B);
        if (clv_gemm_bf16(l->compute, 1, 0, C, l->in, N, 1.0f, dzc, C, col, l->in, 0.0f, dwo, l->in, err))
            return clv_err_prefix(err, "%s", l->name);
        if (!l->adapter) {
            ohwi_to_oihw(l->weight->grad, dwo, C, c->cin, c->k, 1);
            return 0;
        }
        if (ensure_wtmp(c, err))
            return -1;
        ohwi_to_oihw(pr->wtmp, dwo, C, c->cin, c->k, 0);
        return dweight_to_adapter(l, pr->wtmp, ds, err);
    }
    arg as[3] = {{DNNL_ARG_SRC, &pr->csrc_md, xs},
                 {DNNL_ARG_DIFF_DST, &pr->cdst_md, dzc},
                 {DNNL_ARG_DIFF_WEIGHTS, &pr->dw_md, pr->dwbuf}};
    if (pr->wino_bwd) { /* x to the blocked layout, dz too unless the backward data left it there */
        if (!(as[0].ptr = into_blocked(c, d, 0, pr->src_in, &pr->csrc_md, xs, &pr->bsrc_md, err)) ||
            (!bdz && !(bdz = into_blocked(c, d, 1, pr->dst_in, &pr->cdst_md, dzc, &pr->bdst_md, err))))
            return -1;
        as[0].md = &pr->bsrc_md;
        as[1] = (arg){DNNL_ARG_DIFF_DST, &pr->bdst_md, bdz};
    }
    if (run(c, d, pr->bwd_w, as, 3, "backward weights", err))
        return -1;
    if (!l->adapter) /* the base weight's gradient: accumulated by the reorder back to oihw */
        return reorder(c, d, pr->dw_reorder_sum, &pr->dw_md, pr->dwbuf, &pr->w_user_md, l->weight->grad, err);
    const float *dw = pr->dwbuf;
    if (pr->dw_reorder) {
        if (ensure_wtmp(c, err) || reorder(c, d, pr->dw_reorder, &pr->dw_md, pr->dwbuf, &pr->w_user_md, pr->wtmp, err))
            return -1;
        dw = pr->wtmp;
    }
    return dweight_to_adapter(l, dw, ds, err);
}

static const char *impl_of(dnnl_primitive_desc_t pd)
{
    const char *s = NULL;
    if (!pd || dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s)
        return "-";
    return s;
}

const char *clv_conv_impl(const clv_conv *c, char *buf, size_t len)
{
    const clv_conv_prims *pr = c->pr;
    int n = pr && pr->wino_h ? snprintf(buf, len, "winograd_bf16 F(2x2,3x3) on oneDNN's batched matmul")
                             : snprintf(buf, len, "%s / %s / %s", impl_of(pr ? pr->fwd[FWD_PLAIN].pd : NULL),
                                        impl_of(pr ? pr->bwd_d_pd : NULL), impl_of(pr ? pr->bwd_w_pd : NULL));
    if (pr && pr->mode == CONV_ROUND && n > 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, " (bf16 as rounded fp32)");
    if (wgrad_by_im2col(c) && n > 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, " (backward weights: im2col + bf16 matmul)");
    if (pr && pr->bwd_wk && n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, "; low-rank K=%lld: %s / %s", (long long)pr->lr_K, impl_of(pr->fwd_k.pd),
                 impl_of(pr->bwd_wk_pd));
    return buf;
}
