/* GlobalAveragePool, GlobalMaxPool, AveragePool, MaxPool: checks, geometry and shapes. */
#include "ops/nn.h"
#include "core/checked.h"
#include "core/status.h"

#include <string.h>

ductile_status dt_nn_check_global_pool(const ductile_layer *L)
{
    return dt_check_arity(L, 1, 1, 1, 1, NULL);
}

ductile_status dt_nn_infer_global_pool(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_float(in, 0, "X", -1));
    if (in[0].rank < 3) {
        char s[160];
        dt_format_dims(s, sizeof s, in[0].dims, in[0].rank, NULL);
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 0 (X) has shape %s; expected rank 3 or more (N, C, spatial dims)", s);
    }
    out[0].dtype = in[0].dtype;
    out[0].rank = in[0].rank;
    out[0].dims[0] = in[0].dims[0];
    out[0].dims[1] = in[0].dims[1];
    for (int i = 2; i < in[0].rank; i++) out[0].dims[i] = 1;
    return DUCTILE_OK;
}

/* An INTS attribute that, when present, has one value per spatial dim. */
static ductile_status dt_pool_ints(const ductile_layer *L, const char *name, int64_t want,
                                   const int64_t **v)
{
    int64_t n;
    *v = dt_attr_ints(L, name, &n);
    if (*v && n != want)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attribute '%s' has %lld values; expected %lld (one per spatial dim%s)", name,
                       (long long)n, (long long)want,
                       strcmp(name, "pads") == 0 ? ", begins then ends" : "");
    return DUCTILE_OK;
}

ductile_status dt_nn_check_pool(const ductile_layer *L)
{
    bool is_max = strcmp(L->op_type, "MaxPool") == 0;
    DT_TRY(dt_check_arity(L, 1, 1, 1, is_max ? 2 : 1, NULL));
    int64_t order = dt_attr_int(L, "storage_order", 0);
    if (is_max && order != 0 && order != 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'storage_order' = %lld; expected 0 (row major) or 1 "
                       "(column major)", (long long)order);
    const char *ap;
    DT_TRY(dt_auto_pad(L, &ap));
    int64_t nk;
    const int64_t *k = dt_attr_ints(L, "kernel_shape", &nk);
    if (!k) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'kernel_shape' is required");
    if (nk < 1 || nk > 3)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'kernel_shape' has %lld values; 1 to 3 spatial dims are supported",
                       (long long)nk);
    const int64_t *s, *p, *d;
    DT_TRY(dt_pool_ints(L, "strides", nk, &s));
    DT_TRY(dt_pool_ints(L, "pads", 2 * nk, &p));
    DT_TRY(dt_pool_ints(L, "dilations", nk, &d));
    for (int64_t i = 0; i < nk; i++) {
        if (k[i] < 1)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "attribute 'kernel_shape'[%lld] = %lld; expected >= 1", (long long)i,
                           (long long)k[i]);
        if (s && s[i] < 1)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'strides'[%lld] = %lld; expected >= 1",
                           (long long)i, (long long)s[i]);
        if (d && d[i] < 1)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "attribute 'dilations'[%lld] = %lld; expected >= 1", (long long)i,
                           (long long)d[i]);
        int64_t ek;
        if (!dt_dilated_extent(k[i], d ? d[i] : 1, &ek)) return dt_fail_dilated_extent(i, k[i], d ? d[i] : 1);
    }
    for (int64_t i = 0; p && i < 2 * nk; i++) {
        int64_t ek = 1;
        dt_dilated_extent(k[i % nk], d ? d[i % nk] : 1, &ek);   /* checked above */
        /* A window lying wholly in the padding would have no input to pool. */
        if (p[i] < 0 || p[i] >= ek)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "attribute 'pads'[%lld] = %lld; expected 0 <= pad < %lld (the "
                           "dilated kernel size)", (long long)i, (long long)p[i], (long long)ek);
    }
    DT_TRY(dt_nn_check_int_range(L, "ceil_mode", 0, 0, 1));
    if (!is_max) DT_TRY(dt_nn_check_int_range(L, "count_include_pad", 0, 0, 1));
    const char *layout = dt_attr_string(L, "layout", "");
    if (strcmp(layout, "") && strcmp(layout, "NHWC"))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'layout' = '%s' is not supported (supported: '', NHWC)",
                       layout);
    if (layout[0] && (nk != 2 || (L->n_out == 2 && L->out[1])))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'layout' = 'NHWC' takes 2-D windows and no Indices output");
    return DUCTILE_OK;
}

/* Copies an INTS attribute of n values (checked by dt_pool_ints) into v. */
static void dt_pool_copy(const int64_t *src, int64_t n, int64_t *v, bool *has)
{
    *has = src != NULL;
    for (int64_t i = 0; src && i < n; i++) v[i] = src[i];
}

ductile_status dt_pool_attrs_read(const ductile_layer *L, dt_pool_attrs *a)
{
    memset(a, 0, sizeof *a);
    int64_t nk;
    const int64_t *k = dt_attr_ints(L, "kernel_shape", &nk);
    if (!k || nk < 1 || nk > 3)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'kernel_shape' is required (1 to 3 values)");
    const int64_t *s, *p, *d;
    DT_TRY(dt_pool_ints(L, "strides", nk, &s));
    DT_TRY(dt_pool_ints(L, "pads", 2 * nk, &p));
    DT_TRY(dt_pool_ints(L, "dilations", nk, &d));
    a->nk = (int)nk;
    memcpy(a->k, k, (size_t)nk * sizeof *k);
    dt_pool_copy(s, nk, a->s, &a->has_s);
    dt_pool_copy(p, 2 * nk, a->p, &a->has_p);
    dt_pool_copy(d, nk, a->d, &a->has_d);
    a->auto_pad = dt_auto_pad_of(dt_attr_string(L, "auto_pad", "NOTSET"));
    a->ceil_mode = dt_attr_int(L, "ceil_mode", 0) != 0;
    a->count_include_pad = dt_attr_int(L, "count_include_pad", 0) != 0;
    a->nhwc = nk == 2 && !strcmp(dt_attr_string(L, "layout", ""), "NHWC");
    return DUCTILE_OK;
}

ductile_status dt_pool_geometry(const ductile_layer *L, const dt_view *x, dt_pool_geom *g)
{
    dt_pool_attrs a;
    DT_TRY(dt_pool_attrs_read(L, &a));
    return dt_pool_geometry_of(&a, x, g);
}

ductile_status dt_pool_geometry_of(const dt_pool_attrs *a, const dt_view *xv, dt_pool_geom *g)
{
    int64_t nk = a->nk;
    dt_view xl;
    const dt_view *x = xv;
    if (a->nhwc && xv->rank == 4) {   /* [N, H, W, C] as [N, C, H, W] */
        xl = *xv;
        int64_t d[4] = {xv->dims[0], xv->dims[3], xv->dims[1], xv->dims[2]};
        memcpy(xl.dims, d, sizeof d);
        x = &xl;
    }
    if (x->rank != nk + 2) {
        char sx[160];
        dt_format_dims(sx, sizeof sx, x->dims, x->rank, NULL);
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 0 (X) has shape %s; expected rank %lld (N, C and the %lld spatial "
                       "dims of kernel_shape)", sx, (long long)(nk + 2), (long long)nk);
    }
    memset(g, 0, sizeof *g);
    g->spatial = (int)nk;
    g->count_include_pad = a->count_include_pad;
    for (int i = 0; i < 3; i++) {
        g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
        g->pb[i] = g->pe[i] = 0;
    }
    for (int i = 0; i < nk; i++) {
        int j = 3 - (int)nk + i;
        int64_t in = x->dims[2 + i];
        int64_t kk = a->k[i], ss = a->has_s ? a->s[i] : 1, dd = a->has_d ? a->d[i] : 1;
        int64_t ek, pb = 0, pe = 0, o;
        if (a->auto_pad == DT_PAD_NOTSET && a->has_p) {
            pb = a->p[i];
            pe = a->p[nk + i];
        }
        if (in < 1)
            return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (X) spatial dim %d is %lld; expected >= 1", i,
                           (long long)in);
        DT_TRY(dt_window_dim_pad(i, in, kk, ss, dd, a->auto_pad, a->ceil_mode, &pb, &pe, &ek, &o));
        if (o < 1)
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "input 0 (X) spatial dim %d is %lld, smaller than the dilated "
                           "kernel %lld (kernel_shape %lld, dilations %lld) minus the padding "
                           "%lld", i, (long long)in, (long long)ek, (long long)kk, (long long)dd,
                           (long long)(pb + pe));
        g->in[j] = in;
        g->out[j] = o;
        g->k[j] = kk;
        g->s[j] = ss;
        g->d[j] = dd;
        g->pb[j] = pb;
        g->pe[j] = pe;
    }
    return DUCTILE_OK;
}

/* The CPU pools in float32: exact for halves and, for MaxPool, 8-bit integers. */
static ductile_status dt_pool_dtype(const ductile_layer *L, int t)
{
    bool is_max = strcmp(L->op_type, "MaxPool") == 0;
    if (t == DUCTILE_FLOAT32 || t == DUCTILE_FLOAT16 || t == DUCTILE_BFLOAT16 ||
        t == DUCTILE_FLOAT64 || (is_max && (t == DUCTILE_INT8 || t == DUCTILE_UINT8)))
        return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 (X) has dtype %s (supported: float32, "
                   "float16, bfloat16, float64%s)", ductile_dtype_name((ductile_dtype)t),
                   is_max ? ", int8, uint8" : "");
}

ductile_status dt_nn_infer_pool(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_pool_dtype(L, in[0].dtype));
    dt_pool_geom g;
    DT_TRY(dt_pool_geometry(L, &in[0], &g));
    out[0].dtype = in[0].dtype;
    out[0].rank = in[0].rank;
    out[0].dims[0] = in[0].dims[0];
    out[0].dims[1] = in[0].dims[1];
    for (int i = 0; i < g.spatial; i++) out[0].dims[2 + i] = g.out[3 - g.spatial + i];
    if (in[0].rank == 4 && !strcmp(dt_attr_string(L, "layout", ""), "NHWC")) { /* [N, OH, OW, C] */
        out[0].dims[1] = g.out[1];
        out[0].dims[2] = g.out[2];
        out[0].dims[3] = in[0].dims[3];
    }
    if (L->n_out == 2 && L->out[1]) { /* MaxPool's Indices */
        if (in[0].dtype != DUCTILE_FLOAT32)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "output 1 (Indices) of MaxPool needs a float32 input 0 (X); it "
                           "has dtype %s", ductile_dtype_name((ductile_dtype)in[0].dtype));
        out[1] = out[0];
        out[1].dtype = DUCTILE_INT64;
    }
    return DUCTILE_OK;
}
