/* ConvTranspose and Col2Im: both fold columns back into images (dt_col2im_geom). The
 * output size rules follow the ONNX reference implementation: an explicit output_shape is
 * the output's size with the given (or zero) pads; auto_pad SAME_* derives the pads from it. */
#include "ops/shape.h"
#include "core/checked.h"
#include "core/status.h"

#include <string.h>

/* The values of an INTS attribute as read (n -1: absent; only the first DT_MAX_DIMS * 2 are
 * kept, and more is refused below, since no geometry here has that many). */
static void dt_ints_read(const ductile_layer *L, const char *name, int64_t *n, int64_t *v, int cap)
{
    int64_t cnt;
    const int64_t *a = dt_attr_ints(L, name, &cnt);
    *n = a ? cnt : -1;
    if (a) memcpy(v, a, (size_t)(cnt < cap ? cnt : cap) * sizeof *v);
}

ductile_status dt_fold_attrs_read(const ductile_layer *L, dt_fold_attrs *a)
{
    memset(a, 0, sizeof *a);
    dt_ints_read(L, "strides", &a->n_strides, a->strides, DT_MAX_DIMS);
    dt_ints_read(L, "dilations", &a->n_dil, a->dil, DT_MAX_DIMS);
    dt_ints_read(L, "pads", &a->n_pads, a->pads, 2 * DT_MAX_DIMS);
    dt_ints_read(L, "output_padding", &a->n_out_pad, a->out_pad, DT_MAX_DIMS);
    dt_ints_read(L, "kernel_shape", &a->n_kernel, a->kernel, DT_MAX_DIMS);
    dt_ints_read(L, "output_shape", &a->n_out_shape, a->out_shape, DT_MAX_DIMS);
    a->group = dt_attr_int(L, "group", 1);
    a->auto_pad = dt_auto_pad_of(dt_attr_string(L, "auto_pad", "NOTSET"));
    return DUCTILE_OK;
}

/* An INTS attribute of n values (cnt, src as read), or dflt for each when absent. */
static ductile_status dt_ints_n(const char *name, int64_t cnt, const int64_t *src, int n, int64_t dflt,
                                int64_t *v)
{
    if (cnt < 0) {
        for (int i = 0; i < n; i++) v[i] = dflt;
        return DUCTILE_OK;
    }
    if (cnt != n)
        return dt_fail(DUCTILE_ERR_SHAPE, "attribute '%s' has %lld values; expected %d", name, (long long)cnt, n);
    memcpy(v, src, (size_t)n * sizeof *v);
    return DUCTILE_OK;
}

/* Strides and dilations at least 1, pads at least 0, into g (pads: begin only; end in *pad_end). */
static ductile_status dt_geom_attrs(const dt_fold_attrs *a, int n, dt_col2im_geom *g, int64_t *pad_end,
                                    bool want_pads)
{
    int64_t pads[2 * DT_MAX_DIMS];
    g->nsp = n;
    DT_TRY(dt_ints_n("strides", a->n_strides, a->strides, n, 1, g->stride));
    DT_TRY(dt_ints_n("dilations", a->n_dil, a->dil, n, 1, g->dil));
    for (int i = 0; i < n; i++) {
        if (g->stride[i] < 1 || g->stride[i] > (1 << 20))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'strides'[%d] = %lld; expected 1..%d", i,
                           (long long)g->stride[i], 1 << 20);
        if (g->dil[i] < 1 || g->dil[i] > (1 << 20))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'dilations'[%d] = %lld; expected 1..%d", i,
                           (long long)g->dil[i], 1 << 20);
    }
    if (want_pads) {
        DT_TRY(dt_ints_n("pads", a->n_pads, a->pads, 2 * n, 0, pads));
        for (int i = 0; i < 2 * n; i++)
            if (pads[i] < 0 || pads[i] > (1 << 30))
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'pads'[%d] = %lld; expected 0..%d", i,
                               (long long)pads[i], 1 << 30);
        for (int i = 0; i < n; i++) {
            g->pad[i] = pads[i];
            pad_end[i] = pads[n + i];
        }
    }
    return DUCTILE_OK;
}

/* ---- ConvTranspose ---- */

ductile_status dt_shape_check_conv_transpose(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 3, 1, 1, DT_INPUT_NAMES("X", "W")));
    const char *ap;
    DT_TRY(dt_auto_pad(L, &ap));
    if (dt_attr_int(L, "group", 1) < 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'group' = %lld; expected 1 or more",
                       (long long)dt_attr_int(L, "group", 1));
    return DUCTILE_OK;
}

ductile_status dt_convt_plan_get(const ductile_layer *L, const dt_view *in, dt_convt_plan *p)
{
    dt_fold_attrs a;
    DT_TRY(dt_fold_attrs_read(L, &a));
    return dt_convt_plan_of(L, &a, in, p);
}

ductile_status dt_convt_plan_of(const ductile_layer *L, const dt_fold_attrs *a, const dt_view *in, dt_convt_plan *p)
{
    const dt_view *x = &in[0], *w = &in[1];
    char sx[160], sw[160];
    dt_format_dims(sx, sizeof sx, x->dims, x->rank, NULL);
    dt_format_dims(sw, sizeof sw, w->dims, w->rank, NULL);
    if (x->dtype != DUCTILE_FLOAT32 || w->dtype != DUCTILE_FLOAT32)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 ('%s') has dtype %s and input 1 ('%s') %s; only float32 is supported",
                       dt_shape_name(L, 0), ductile_dtype_name((ductile_dtype)x->dtype), dt_shape_name(L, 1),
                       ductile_dtype_name((ductile_dtype)w->dtype));
    if (x->rank < 3 || w->rank != x->rank)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 0 ('%s') has shape %s and input 1 ('%s') %s; expected equal ranks of 3 or more (N, C, spatial...)",
                       dt_shape_name(L, 0), sx, dt_shape_name(L, 1), sw);
    int n = x->rank - 2;
    dt_col2im_geom *g = &p->g;
    int64_t pad_end[DT_MAX_DIMS], out_pad[DT_MAX_DIMS], ks[DT_MAX_DIMS];
    DT_TRY(dt_geom_attrs(a, n, g, pad_end, true));
    DT_TRY(dt_ints_n("output_padding", a->n_out_pad, a->out_pad, n, 0, out_pad));
    p->group = a->group;
    p->batch = x->dims[0];
    p->in_ch = x->dims[1];
    if (p->group < 1 || p->in_ch % p->group != 0 || w->dims[0] != p->in_ch)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 0 ('%s') has shape %s and input 1 ('%s') %s: W's first dimension must equal X's channels, a multiple of group (%lld)",
                       dt_shape_name(L, 0), sx, dt_shape_name(L, 1), sw, (long long)p->group);
    if (!dt_mul_i64(w->dims[1], p->group, &p->out_ch))
        return dt_fail(DUCTILE_ERR_SHAPE, "the output channels overflow int64");
    for (int i = 0; i < n; i++) g->kernel[i] = w->dims[2 + i];
    if (a->n_kernel >= 0) {
        DT_TRY(dt_ints_n("kernel_shape", a->n_kernel, a->kernel, n, 0, ks));
        for (int i = 0; i < n; i++)
            if (ks[i] != g->kernel[i])
                return dt_fail(DUCTILE_ERR_SHAPE, "attribute 'kernel_shape'[%d] = %lld but input 1 ('%s') has shape %s",
                               i, (long long)ks[i], dt_shape_name(L, 1), sw);
    }
    bool same = a->auto_pad == DT_PAD_SAME_UPPER || a->auto_pad == DT_PAD_SAME_LOWER;
    int64_t os[DT_MAX_DIMS], nos = a->n_out_shape;
    const int64_t *osa = nos >= 0 ? a->out_shape : NULL;
    if (osa && nos != n && nos != n + 2)
        return dt_fail(DUCTILE_ERR_SHAPE, "attribute 'output_shape' has %lld values; expected %d (or %d with N and C)",
                       (long long)nos, n, n + 2);
    for (int i = 0; i < n; i++)
        if (out_pad[i] < 0 || (out_pad[i] >= g->stride[i] && out_pad[i] >= g->dil[i]))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "attribute 'output_padding'[%d] = %lld; expected 0 or more and less than the stride or the dilation",
                           i, (long long)out_pad[i]);
    for (int i = 0; i < n; i++) {
        int64_t d = x->dims[2 + i], k = g->kernel[i], full;
        g->in[i] = d;
        /* The span the input covers: stride*(d-1) + output_padding + dil*(k-1) + 1. Dims,
         * strides, dilations and pads are bounded (checked dims, 2^20 attributes), so only
         * the products need checking. */
        int64_t span_in, span_k;
        if (d < 1 || k < 1 || !dt_mul_i64(g->stride[i], d - 1, &span_in) || !dt_mul_i64(g->dil[i], k - 1, &span_k) ||
            !dt_add_i64(span_in, span_k, &full) || !dt_add_i64(full, out_pad[i] + 1, &full))
            return dt_fail(DUCTILE_ERR_SHAPE, "spatial axis %d: input size %lld and kernel size %lld give no valid output",
                           i, (long long)d, (long long)k);
        if (osa) {
            os[i] = osa[nos - n + i];
            if (os[i] < 0)
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'output_shape'[%lld] = %lld; expected >= 0",
                               (long long)(nos - n + i), (long long)os[i]);
        } else if (same && !dt_mul_i64(d, g->stride[i], &os[i]))
            return dt_fail(DUCTILE_ERR_SHAPE, "the output dims overflow int64");
        if (same) {
            int64_t total = full - os[i];   /* both >= 0 */
            int64_t pe;
            dt_same_split(total, a->auto_pad == DT_PAD_SAME_UPPER, &g->pad[i], &pe);
            g->out[i] = os[i];
        } else if (osa) {
            g->out[i] = os[i];
        } else {
            g->out[i] = full - g->pad[i] - pad_end[i];
        }
        if (g->out[i] < 0)
            return dt_fail(DUCTILE_ERR_SHAPE, "spatial axis %d of the output would have size %lld", i,
                           (long long)g->out[i]);
    }
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_conv_transpose(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    dt_convt_plan p;
    DT_TRY(dt_convt_plan_get(L, in, &p));
    if (dt_shape_has(L, in, 2) && (in[2].rank != 1 || in[2].dims[0] != p.out_ch || in[2].dtype != DUCTILE_FLOAT32)) {
        char s[160];
        return dt_fail(DUCTILE_ERR_SHAPE, "input 2 (B, '%s') has shape %s and dtype %s; expected [%lld] float32",
                       dt_shape_name(L, 2), dt_format_dims(s, sizeof s, in[2].dims, in[2].rank, NULL),
                       ductile_dtype_name((ductile_dtype)in[2].dtype), (long long)p.out_ch);
    }
    out[0].dtype = DUCTILE_FLOAT32;
    out[0].rank = in[0].rank;
    out[0].dims[0] = p.batch;
    out[0].dims[1] = p.out_ch;
    for (int i = 0; i < p.g.nsp; i++) out[0].dims[2 + i] = p.g.out[i];
    int64_t total;
    if (!dt_dims_product(out[0].dims, out[0].rank, &total)) {
        char s[200];
        dt_format_dims(s, sizeof s, out[0].dims, out[0].rank, NULL);
        return dt_fail(DUCTILE_ERR_SHAPE, "the output %s%s has an element count that overflows int64", s,
                       dt_attr_find(L, "output_shape") ? " (from attribute 'output_shape')" : "");
    }
    return DUCTILE_OK;
}

/* ---- Col2Im ---- */

ductile_status dt_shape_check_col2im(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 3, 3, 1, 1, NULL));
    if (!L->in[1] || !L->in[2])
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "inputs 1 (image_shape) and 2 (block_shape) are required");
    return DUCTILE_OK;
}

ductile_status dt_col2im_plan_get(const ductile_layer *L, const dt_view *in, dt_col2im_geom *g, int64_t *channels)
{
    dt_fold_attrs a;
    DT_TRY(dt_fold_attrs_read(L, &a));
    return dt_col2im_plan_of(L, &a, in, g, channels);
}

ductile_status dt_col2im_plan_of(const ductile_layer *L, const dt_fold_attrs *a, const dt_view *in,
                                 dt_col2im_geom *g, int64_t *channels)
{
    int64_t img[DT_MAX_DIMS], blk[DT_MAX_DIMS], pad_end[DT_MAX_DIMS];
    int ni, nb;
    DT_TRY(dt_shape_read_ints(L, in, 1, img, DT_MAX_DIMS, &ni));
    DT_TRY(dt_shape_read_ints(L, in, 2, blk, DT_MAX_DIMS, &nb));
    char si[200], sb[200], sx[160];
    dt_shape_format_values(si, sizeof si, img, ni);
    dt_shape_format_values(sb, sizeof sb, blk, nb);
    dt_format_dims(sx, sizeof sx, in[0].dims, in[0].rank, NULL);
    if (ni != nb || ni < 1 || ni + 2 > DT_MAX_DIMS)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (image_shape) = %s and input 2 (block_shape) = %s; expected the same number (1..%d) of values",
                       si, sb, DT_MAX_DIMS - 2);
    DT_TRY(dt_geom_attrs(a, ni, g, pad_end, true));
    if (in[0].dtype != DUCTILE_FLOAT32)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 ('%s') has dtype %s; only float32 is supported",
                       dt_shape_name(L, 0), ductile_dtype_name((ductile_dtype)in[0].dtype));
    if (in[0].rank != 3)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 ('%s') has shape %s; expected rank 3 (N, C * prod(block_shape), L)",
                       dt_shape_name(L, 0), sx);
    int64_t kprod = 1, blocks = 1;
    for (int i = 0; i < ni; i++) {
        if (img[i] < 0 || img[i] > ((int64_t)1 << 40) || blk[i] < 1 || blk[i] > (1 << 20))
            return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (image_shape) = %s and input 2 (block_shape) = %s: value %d is out of range",
                           si, sb, i);
        g->out[i] = img[i];
        g->kernel[i] = blk[i];
        int64_t span = img[i] + g->pad[i] + pad_end[i] - g->dil[i] * (blk[i] - 1) - 1;
        g->in[i] = span < 0 ? 0 : span / g->stride[i] + 1;
        if (!dt_mul_i64(kprod, blk[i], &kprod) || !dt_mul_i64(blocks, g->in[i], &blocks))
            return dt_fail(DUCTILE_ERR_SHAPE, "the block counts overflow int64");
    }
    if (in[0].dims[1] % kprod != 0 || in[0].dims[2] != blocks)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 0 ('%s') has shape %s; expected dimension 1 to be a multiple of %lld (the block size) and dimension 2 to be %lld (the sliding blocks) for input 1 (image_shape) = %s and input 2 (block_shape) = %s",
                       dt_shape_name(L, 0), sx, (long long)kprod, (long long)blocks, si, sb);
    *channels = in[0].dims[1] / kprod;
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_col2im(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    dt_col2im_geom g;
    int64_t c, total;
    DT_TRY(dt_col2im_plan_get(L, in, &g, &c));
    out[0].dtype = DUCTILE_FLOAT32;
    out[0].rank = g.nsp + 2;
    out[0].dims[0] = in[0].dims[0];
    out[0].dims[1] = c;
    for (int i = 0; i < g.nsp; i++) out[0].dims[2 + i] = g.out[i];
    if (!dt_dims_product(out[0].dims, out[0].rank, &total))
        return dt_fail(DUCTILE_ERR_SHAPE, "the output's element count overflows int64");
    return DUCTILE_OK;
}
