/* Conv, Gemm and MatMul: checks, geometry and shapes. */
#include "ops/linalg.h"
#include "ops/families.h"
#include "core/checked.h"
#include "core/status.h"

#include <stdbool.h>
#include <string.h>

/* Input i is float32, float16, bfloat16 or float64 (the CPU computes the others in float32),
 * of the same dtype as input 0. */
static ductile_status dt_la_float(const dt_view *in, int i, const char *what)
{
    int t = in[i].dtype;
    if (t != DUCTILE_FLOAT32 && t != DUCTILE_FLOAT16 && t != DUCTILE_BFLOAT16 && t != DUCTILE_FLOAT64)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "input %d (%s) has dtype %s (supported: float32, float16, bfloat16, float64)",
                       i, what, ductile_dtype_name((ductile_dtype)t));
    if (t != in[0].dtype)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input %d (%s) has dtype %s; expected %s like "
                       "input 0", i, what, ductile_dtype_name((ductile_dtype)t),
                       ductile_dtype_name((ductile_dtype)in[0].dtype));
    return DUCTILE_OK;
}

static bool dt_la_present(const ductile_layer *L, const dt_view *in, int i)
{
    return i < L->n_in && L->in[i] && in[i].rank >= 0;
}

/* ---- Conv ---- */

static ductile_status dt_conv_ints_of(const char *name, int64_t n, const int64_t *vals, int64_t want,
                                      int64_t lo, const int64_t **v);

/* An INTS attribute that, when present, has `want` values each >= lo. */
static ductile_status dt_conv_ints(const ductile_layer *L, const char *name, int64_t want,
                                   int64_t lo, const int64_t **v)
{
    int64_t n = -1;
    const int64_t *vals = dt_attr_ints(L, name, &n);
    return dt_conv_ints_of(name, vals ? n : -1, vals, want, lo, v);
}

static ductile_status dt_conv_check(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 3, 1, 1, NULL));
    const char *ap;
    DT_TRY(dt_auto_pad(L, &ap));
    int64_t group = dt_attr_int(L, "group", 1);
    if (group < 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'group' = %lld; expected >= 1",
                       (long long)group);
    int64_t nk = 0;
    const int64_t *k = dt_attr_ints(L, "kernel_shape", &nk);
    if (k) {
        if (nk < 1 || nk > 3)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                           "attribute 'kernel_shape' has %lld values; only 1-D, 2-D and 3-D "
                           "convolutions are supported", (long long)nk);
        const int64_t *v;
        DT_TRY(dt_conv_ints(L, "kernel_shape", nk, 1, &v));
        DT_TRY(dt_conv_ints(L, "strides", nk, 1, &v));
        DT_TRY(dt_conv_ints(L, "dilations", nk, 1, &v));
        DT_TRY(dt_conv_ints(L, "pads", 2 * nk, 0, &v));
    }
    /* The dilated kernel, where its taps are known (kernel_shape or W's declared dims), must
     * have a size: caught here, before any shape, so the message names the model's Conv. */
    const ductile_tensor *w = L->n_in > 1 ? L->in[1] : NULL;
    int64_t nd;
    const int64_t *d = dt_attr_ints(L, "dilations", &nd);
    for (int64_t i = 0; d && i < nd; i++) {
        int64_t taps = k && i < nk ? k[i] : w && w->rank == nd + 2 ? w->dims[2 + i] : -1, ek;
        if (taps >= 1 && d[i] >= 1 && !dt_dilated_extent(taps, d[i], &ek))
            return dt_fail_dilated_extent(i, taps, d[i]);
    }
    return DUCTILE_OK;
}

/* Geometries run on every execute: the dims are formatted only for an error message. */
static const char *dt_la_dims(char buf[160], const dt_view *v)
{
    return dt_format_dims(buf, 160, v->dims, v->rank, NULL);
}

static void dt_conv_attr_ints(const ductile_layer *L, const char *name, int64_t *n, int64_t *v)
{
    const int64_t *p = dt_attr_ints(L, name, n);
    if (!p) *n = -1;
    for (int64_t i = 0; p && i < *n && i < 6; i++) v[i] = p[i];
}

void dt_conv_attrs_read(const ductile_layer *L, dt_conv_attrs *a)
{
    memset(a, 0, sizeof *a);
    a->group = dt_attr_int(L, "group", 1);
    a->auto_pad = dt_auto_pad_of(dt_attr_string(L, "auto_pad", "NOTSET"));
    dt_conv_attr_ints(L, "kernel_shape", &a->n_kernel, a->kernel);
    dt_conv_attr_ints(L, "strides", &a->n_strides, a->strides);
    dt_conv_attr_ints(L, "dilations", &a->n_dilations, a->dilations);
    dt_conv_attr_ints(L, "pads", &a->n_pads, a->pads);
}

/* dt_conv_ints over a read attribute. */
static ductile_status dt_conv_ints_of(const char *name, int64_t n, const int64_t *vals, int64_t want,
                                      int64_t lo, const int64_t **v)
{
    *v = n < 0 ? NULL : vals;
    if (!*v) return DUCTILE_OK;
    if (n != want)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attribute '%s' has %lld values; expected %lld (%s)", name, (long long)n,
                       (long long)want,
                       strcmp(name, "pads") == 0 ? "begins then ends of each spatial dim"
                                                 : "one per spatial dim");
    for (int64_t i = 0; i < n; i++)
        if ((*v)[i] < lo)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute '%s'[%lld] = %lld; expected >= %lld",
                           name, (long long)i, (long long)(*v)[i], (long long)lo);
    return DUCTILE_OK;
}

ductile_status dt_conv_geometry(const ductile_layer *L, const dt_view *x, const dt_view *w,
                                dt_conv_geom *g)
{
    dt_conv_attrs a;
    dt_conv_attrs_read(L, &a);
    return dt_conv_geometry_of(&a, x, w, g);
}

ductile_status dt_conv_geometry_of(const dt_conv_attrs *at, const dt_view *x, const dt_view *w,
                                   dt_conv_geom *g)
{
    char sx[160], sw[160];
    if (x->rank < 3 || x->rank > 5)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 0 (X) has shape %s; expected rank 3, 4 or 5 (N, C, spatial dims)", dt_la_dims(sx, x));
    if (w->rank != x->rank)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 1 (W) has shape %s; expected rank %d like input 0 (X) %s", dt_la_dims(sw, w),
                       x->rank, dt_la_dims(sx, x));
    int nk = x->rank - 2;
    int64_t nka = at->n_kernel;
    const int64_t *ka = nka < 0 ? NULL : at->kernel;
    const int64_t *s, *p, *d;
    if (ka && nka != nk)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "attribute 'kernel_shape' has %lld values but input 0 (X) %s has %d "
                       "spatial dims", (long long)nka, dt_la_dims(sx, x), nk);
    DT_TRY(dt_conv_ints_of("strides", at->n_strides, at->strides, nk, 1, &s));
    DT_TRY(dt_conv_ints_of("dilations", at->n_dilations, at->dilations, nk, 1, &d));
    DT_TRY(dt_conv_ints_of("pads", at->n_pads, at->pads, 2 * nk, 0, &p));
    memset(g, 0, sizeof *g);
    g->spatial = nk;
    g->batch = x->dims[0];
    g->c = x->dims[1];
    g->m = w->dims[0];
    g->group = at->group;
    if (g->group < 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'group' = %lld; expected >= 1",
                       (long long)g->group);
    int64_t want_c;
    if (!dt_mul_i64(w->dims[1], g->group, &want_c))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attribute 'group' = %lld: input 1 (W) %s with that group expects %lld*%lld "
                       "input channels, which overflows int64", (long long)g->group, dt_la_dims(sw, w),
                       (long long)w->dims[1], (long long)g->group);
    if (want_c != g->c)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 0 (X) %s has %lld channels but input 1 (W) %s with group %lld "
                       "expects %lld", dt_la_dims(sx, x), (long long)g->c, dt_la_dims(sw, w), (long long)g->group,
                       (long long)want_c);
    if (g->m % g->group != 0)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 1 (W) %s has %lld output channels, not a multiple of group %lld",
                       dt_la_dims(sw, w), (long long)g->m, (long long)g->group);
    dt_auto_pad_kind ap = at->auto_pad;
    for (int i = 0; i < 2; i++) {
        g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
        g->pb[i] = g->pe[i] = 0;
    }
    g->depth = (dt_conv_axis){1, 1, 1, 1, 1, 0, 0};
    for (int i = 0; i < nk; i++) {
        int j = nk == 3 ? i - 1 : 2 - nk + i;   /* -1: the depth axis */
        int64_t in = x->dims[2 + i], kk = w->dims[2 + i];
        int64_t ss = s ? s[i] : 1, dd = d ? d[i] : 1;
        if (ka && ka[i] != kk)
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "attribute 'kernel_shape'[%d] = %lld but input 1 (W) %s has %lld there",
                           i, (long long)ka[i], dt_la_dims(sw, w), (long long)kk);
        if (kk < 1)
            return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (W) %s has an empty kernel (dim %d)", dt_la_dims(sw, w),
                           2 + i);
        if (in < 1)
            return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (X) %s spatial dim %d is %lld; expected >= 1",
                           dt_la_dims(sx, x), 2 + i, (long long)in);
        int64_t ek, pb = 0, pe = 0, o;
        if (ap == DT_PAD_NOTSET && p) {
            pb = p[i];
            pe = p[nk + i];
        }
        DT_TRY(dt_window_dim_pad(i, in, kk, ss, dd, ap, false, &pb, &pe, &ek, &o));
        if (o < 1)
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "input 0 (X) %s spatial dim %d is %lld; with pads %lld+%lld it is "
                           "smaller than the dilated kernel %lld (%lld taps, dilations %lld) of "
                           "input 1 (W) %s", dt_la_dims(sx, x), 2 + i, (long long)in, (long long)pb,
                           (long long)pe, (long long)ek, (long long)kk, (long long)dd, dt_la_dims(sw, w));
        if (j < 0) {
            g->depth = (dt_conv_axis){in, o, kk, ss, dd, pb, pe};
            continue;
        }
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

void dt_conv_out_dims(const dt_conv_geom *g, int64_t *dims)
{
    int n = 0;
    if (g->spatial == 3) dims[n++] = g->depth.out;
    if (g->spatial >= 2) dims[n++] = g->out[0];
    dims[n] = g->out[1];
}

static ductile_status dt_conv_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_la_float(in, 0, "X"));
    DT_TRY(dt_la_float(in, 1, "W"));
    dt_conv_geom g;
    DT_TRY(dt_conv_geometry(L, &in[0], &in[1], &g));
    if (dt_la_present(L, in, 2)) {
        DT_TRY(dt_la_float(in, 2, "B"));
        if (in[2].rank != 1 || in[2].dims[0] != g.m) {
            char sb[160];
            dt_format_dims(sb, sizeof sb, in[2].dims, in[2].rank, NULL);
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "input 2 (B) has shape %s; expected [%lld] (one bias per output "
                           "channel of input 1 (W))", sb, (long long)g.m);
        }
    }
    out[0].dtype = in[0].dtype;
    out[0].rank = in[0].rank;
    out[0].dims[0] = g.batch;
    out[0].dims[1] = g.m;
    dt_conv_out_dims(&g, out[0].dims + 2);
    return DUCTILE_OK;
}

/* ---- Gemm ---- */

static ductile_status dt_gemm_check(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 3, 1, 1, NULL));
    const char *names[] = {"transA", "transB"};
    for (int i = 0; i < 2; i++) {
        int64_t v = dt_attr_int(L, names[i], 0);
        if (v != 0 && v != 1)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                           "attribute '%s' = %lld is not supported (supported: 0, 1)", names[i],
                           (long long)v);
    }
    return DUCTILE_OK;
}

static ductile_status dt_gemm_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_la_float(in, 0, "A"));
    DT_TRY(dt_la_float(in, 1, "B"));
    dt_view b;
    DT_TRY(dt_packed_weight_view(L, 1, &in[1], 2, 2, &b));
    char sa[160], sb[160];
    dt_format_dims(sa, sizeof sa, in[0].dims, in[0].rank, NULL);
    dt_format_dims(sb, sizeof sb, b.dims, b.rank, NULL);
    if (in[0].rank != 2)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (A) has shape %s; expected rank 2", sa);
    if (b.rank != 2)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (B) has shape %s; expected rank 2", sb);
    bool ta = dt_attr_int(L, "transA", 0) != 0, tb = dt_attr_int(L, "transB", 0) != 0;
    int64_t M = in[0].dims[ta ? 1 : 0], Ka = in[0].dims[ta ? 0 : 1];
    int64_t Kb = b.dims[tb ? 1 : 0], N = b.dims[tb ? 0 : 1];
    if (Ka != Kb)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 0 (A) %s with transA=%d has K = %lld but input 1 (B) %s with "
                       "transB=%d has K = %lld", sa, ta, (long long)Ka, sb, tb, (long long)Kb);
    if (dt_la_present(L, in, 2)) {
        DT_TRY(dt_la_float(in, 2, "C"));
        const dt_view *c = &in[2];
        char sc[160];
        dt_format_dims(sc, sizeof sc, c->dims, c->rank, NULL);
        int64_t want[2] = {M, N};
        bool ok = c->rank <= 2;
        for (int i = 0; ok && i < c->rank; i++) {
            int64_t dc = c->dims[c->rank - 1 - i], dy = want[1 - i];
            if (dc != 1 && dc != dy) ok = false;
        }
        if (!ok)
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "input 2 (C) has shape %s; it must broadcast to the output [%lld,%lld]",
                           sc, (long long)M, (long long)N);
    }
    out[0].dtype = in[0].dtype;
    out[0].rank = 2;
    out[0].dims[0] = M;
    out[0].dims[1] = N;
    return DUCTILE_OK;
}

/* ---- MatMul ---- */

ductile_status dt_matmul_geometry(const dt_view *a, const dt_view *b, dt_matmul_geom *g)
{
    char sa[160], sb[160];
    if (a->rank < 1)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (A) has shape %s; expected rank >= 1", dt_la_dims(sa, a));
    if (b->rank < 1)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (B) has shape %s; expected rank >= 1", dt_la_dims(sb, b));
    memset(g, 0, sizeof *g);
    g->M = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
    int64_t Ka = a->dims[a->rank - 1];
    int64_t Kb = b->rank >= 2 ? b->dims[b->rank - 2] : b->dims[0];
    g->N = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    if (Ka != Kb)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 0 (A) %s has K = %lld (its last dim) but input 1 (B) %s has K = "
                       "%lld (its %s dim)", dt_la_dims(sa, a), (long long)Ka, dt_la_dims(sb, b), (long long)Kb,
                       b->rank >= 2 ? "second-to-last" : "only");
    g->K = Ka;
    int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
    int r = ra > rb ? ra : rb;
    g->batch_rank = r;
    int64_t sa_run = g->M * g->K, sb_run = g->K * g->N;
    g->batch_count = 1;
    for (int i = r - 1; i >= 0; i--) {
        int ia = i - (r - ra), ib = i - (r - rb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "input 0 (A) %s and input 1 (B) %s cannot be broadcast: batch dim %d "
                           "is %lld and %lld", dt_la_dims(sa, a), dt_la_dims(sb, b), i, (long long)da, (long long)db);
        g->batch[i] = da == 1 ? db : da;
        g->a_stride[i] = da == 1 ? 0 : sa_run;
        g->b_stride[i] = db == 1 ? 0 : sb_run;
        sa_run *= da;
        sb_run *= db;
        g->batch_count *= g->batch[i];
    }
    g->out_rank = 0;
    for (int i = 0; i < r; i++) g->out[g->out_rank++] = g->batch[i];
    if (a->rank >= 2) g->out[g->out_rank++] = g->M;
    if (b->rank >= 2) g->out[g->out_rank++] = g->N;
    return DUCTILE_OK;
}

static ductile_status dt_matmul_check(const ductile_layer *L)
{
    return dt_check_arity(L, 2, 2, 1, 1, NULL);
}

static ductile_status dt_matmul_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_la_float(in, 0, "A"));
    DT_TRY(dt_la_float(in, 1, "B"));
    dt_view b;
    DT_TRY(dt_packed_weight_view(L, 1, &in[1], 2, 2, &b));
    dt_matmul_geom g;
    DT_TRY(dt_matmul_geometry(&in[0], &b, &g));
    out[0].dtype = in[0].dtype;
    out[0].rank = g.out_rank;
    for (int i = 0; i < g.out_rank; i++) out[0].dims[i] = g.out[i];
    return DUCTILE_OK;
}

const dt_opdef dt_ops_linalg[] = {
    {"Conv", dt_conv_check, dt_conv_infer, 0},
    {"Gemm", dt_gemm_check, dt_gemm_infer, 0},
    {"MatMul", dt_matmul_check, dt_matmul_infer, 0},
    {NULL, NULL, NULL, 0},
};
