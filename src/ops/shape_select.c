/* Ops whose output shape depends on the input's data: Compress, NonZero, Unique. Their infer
 * computes the shape from the data when it is known (eager mode, constants) and otherwise
 * says which input's data it needs. The counting and grouping live here so that the kernels
 * produce exactly the shapes infer announced. */
#include "ops/shape.h"
#include "core/alloc.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>

/* ---- element tests and comparisons by dtype ---- */

static double dt_half_bits_to_double(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? m * (1.0 / (1 << 24)) : e == 31 ? (m ? __builtin_nan("") : __builtin_inf())
                                                         : (1024 + m) * (double)(1ll << e) / (1ll << 25);
    return h & 0x8000 ? -v : v;
}

/* Element i of v as a double (floats) or exactly (integers: *as_int set). */
static double dt_elem(const dt_view *v, int64_t i, int64_t *as_int, uint64_t *as_u, int *kind)
{
    const char *p = v->data;
    switch (v->dtype) {
    case DUCTILE_FLOAT32: { float x; memcpy(&x, p + i * 4, 4); *kind = 0; return x; }
    case DUCTILE_FLOAT64: { double x; memcpy(&x, p + i * 8, 8); *kind = 0; return x; }
    case DUCTILE_FLOAT16: { uint16_t x; memcpy(&x, p + i * 2, 2); *kind = 0; return dt_half_bits_to_double(x); }
    case DUCTILE_BFLOAT16: {
        uint16_t x;
        memcpy(&x, p + i * 2, 2);
        uint32_t b = (uint32_t)x << 16;
        float f;
        memcpy(&f, &b, 4);
        *kind = 0;
        return f;
    }
    case DUCTILE_INT8: *kind = 1; *as_int = ((const int8_t *)p)[i]; return 0;
    case DUCTILE_INT16: { int16_t x; memcpy(&x, p + i * 2, 2); *kind = 1; *as_int = x; return 0; }
    case DUCTILE_INT32: { int32_t x; memcpy(&x, p + i * 4, 4); *kind = 1; *as_int = x; return 0; }
    case DUCTILE_INT64: memcpy(as_int, p + i * 8, 8); *kind = 1; return 0;
    case DUCTILE_UINT8: case DUCTILE_BOOL: *kind = 2; *as_u = ((const uint8_t *)p)[i]; return 0;
    case DUCTILE_UINT16: { uint16_t x; memcpy(&x, p + i * 2, 2); *kind = 2; *as_u = x; return 0; }
    case DUCTILE_UINT32: { uint32_t x; memcpy(&x, p + i * 4, 4); *kind = 2; *as_u = x; return 0; }
    case DUCTILE_UINT64: memcpy(as_u, p + i * 8, 8); *kind = 2; return 0;
    /* The 1-byte float8/int4/int2/float4 codes: compared by their stored byte, never read
     * past it (their element size is 1). */
    default: *kind = 2; *as_u = ((const uint8_t *)p)[i]; return 0;
    }
}

bool dt_select_nonzero(const dt_view *v, int64_t i)
{
    int64_t si = 0;
    uint64_t su = 0;
    int kind;
    double d = dt_elem(v, i, &si, &su, &kind);
    return kind == 0 ? d != 0 : kind == 1 ? si != 0 : su != 0;
}

static int dt_elem_cmp(const dt_view *v, int64_t a, int64_t b)
{
    int64_t ia = 0, ib = 0;
    uint64_t ua = 0, ub = 0;
    int kind;
    double da = dt_elem(v, a, &ia, &ua, &kind), db = dt_elem(v, b, &ib, &ub, &kind);
    if (kind == 0) return da < db ? -1 : da > db ? 1 : 0;
    if (kind == 1) return ia < ib ? -1 : ia > ib ? 1 : 0;
    return ua < ub ? -1 : ua > ub ? 1 : 0;
}

static ductile_status dt_want_selectable(const ductile_layer *L, const dt_view *in, int i)
{
    int t = in[i].dtype;
    if (t == DUCTILE_STRING || ductile_dtype_size((ductile_dtype)t) == 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input %d ('%s') has dtype %s, which is not supported", i,
                       dt_shape_name(L, i), ductile_dtype_name((ductile_dtype)t));
    return DUCTILE_OK;
}

/* ---- Compress ---- */

ductile_status dt_shape_check_compress(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 2, 1, 1, DT_INPUT_NAMES("input", "condition")));
    return DUCTILE_OK;
}

ductile_status dt_compress_plan(const ductile_layer *L, const dt_view *in, int *axis, int64_t *kept)
{
    const dt_attr *a = dt_attr_find(L, "axis");
    return dt_compress_plan_of(L, a != NULL, dt_attr_int(L, "axis", 0), in, axis, kept);
}

ductile_status dt_compress_plan_of(const ductile_layer *L, bool has_axis, int64_t axis_attr, const dt_view *in,
                                   int *axis, int64_t *kept)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    DT_TRY(dt_want_selectable(L, in, 1));
    char sc[160];
    dt_format_dims(sc, sizeof sc, in[1].dims, in[1].rank, NULL);
    if (in[1].rank != 1)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (condition, '%s') has shape %s; expected a 1-D tensor",
                       dt_shape_name(L, 1), sc);
    int64_t dim;
    if (has_axis) {
        if (dt_norm_axis(axis_attr, in[0].rank, axis) != DUCTILE_OK)
            return dt_fail_prefix(DUCTILE_ERR_SHAPE, "attribute 'axis' for input 0 ('%s')", dt_shape_name(L, 0));
        dim = in[0].dims[*axis];
    } else {
        *axis = -1;
        dim = dt_view_count(&in[0]);
    }
    DT_TRY(dt_shape_need_value(L, in, 1));
    int64_t n = in[1].dims[0];
    *kept = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!dt_select_nonzero(&in[1], i)) continue;
        if (i >= dim)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "input 1 (condition, '%s') selects position %lld, but the axis has only %lld elements",
                           dt_shape_name(L, 1), (long long)i, (long long)dim);
        (*kept)++;
    }
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_compress(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    int axis = -1;
    int64_t kept = 0;
    DT_TRY(dt_compress_plan(L, in, &axis, &kept));
    if (axis < 0) {
        out[0].dtype = in[0].dtype;
        out[0].rank = 1;
        out[0].dims[0] = kept;
    } else {
        dt_shape_same(&in[0], &out[0]);
        out[0].dims[axis] = kept;
    }
    return DUCTILE_OK;
}

/* ---- NonZero ---- */

ductile_status dt_shape_check_non_zero(const ductile_layer *L) { return dt_check_arity(L, 1, 1, 1, 1, NULL); }

ductile_status dt_shape_infer_non_zero(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_selectable(L, in, 0));
    DT_TRY(dt_shape_need_value(L, in, 0));
    int64_t n = dt_view_count(&in[0]), nnz = 0;
    for (int64_t i = 0; i < n; i++) nnz += dt_select_nonzero(&in[0], i);
    out[0].dtype = DUCTILE_INT64;
    out[0].rank = 2;
    out[0].dims[0] = in[0].rank;
    out[0].dims[1] = nnz;
    return DUCTILE_OK;
}

/* ---- Unique ---- */

ductile_status dt_shape_check_unique(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 1, 4, NULL));
    int64_t s = dt_attr_int(L, "sorted", 1);
    if (s != 0 && s != 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'sorted' = %lld; expected 0 or 1", (long long)s);
    return DUCTILE_OK;
}

typedef struct dt_unique_ctx {
    const dt_view *v;
    int64_t item, stride_outer, stride_axis, inner; /* item a's element e is at
                                                       (e / inner) * stride_outer + a * stride_axis + e % inner */
} dt_unique_ctx;

static int dt_item_cmp(const dt_unique_ctx *c, int64_t a, int64_t b)
{
    for (int64_t e = 0; e < c->item; e++) {
        int64_t base = (e / c->inner) * c->stride_outer + e % c->inner;
        int r = dt_elem_cmp(c->v, base + a * c->stride_axis, base + b * c->stride_axis);
        if (r) return r;
    }
    return 0;
}

/* Stable merge sort of idx[0..n) by item value. */
static void dt_item_sort(const dt_unique_ctx *c, int64_t *idx, int64_t *tmp, int64_t n)
{
    if (n < 2) return;
    int64_t h = n / 2;
    dt_item_sort(c, idx, tmp, h);
    dt_item_sort(c, idx + h, tmp, n - h);
    int64_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = dt_item_cmp(c, idx[j], idx[i]) < 0 ? idx[j++] : idx[i++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

void dt_unique_free(dt_unique_result *r)
{
    dt_free(r->work);
    memset(r, 0, sizeof *r);
}

void dt_unique_attrs_read(const ductile_layer *L, dt_unique_attrs *a)
{
    a->has_axis = dt_attr_find(L, "axis") != NULL;
    a->axis = dt_attr_int(L, "axis", 0);
    a->sorted = dt_attr_int(L, "sorted", 1) != 0;
}

size_t dt_unique_work(const dt_unique_attrs *a, const dt_view *in)
{
    int axis;
    int64_t n = dt_view_count(&in[0]);
    if (a->has_axis && dt_norm_axis(a->axis, in[0].rank, &axis) == DUCTILE_OK) n = in[0].dims[axis];
    /* Saturates rather than wraps: an impossible size then fails to allocate. */
    if ((uint64_t)n > SIZE_MAX / 64) return SIZE_MAX / 8;
    return 7 * (size_t)(n > 0 ? n : 1);
}

ductile_status dt_unique_get(const ductile_layer *L, const dt_view *in, dt_unique_result *r)
{
    memset(r, 0, sizeof *r);
    dt_unique_attrs a;
    dt_unique_attrs_read(L, &a);
    size_t words = dt_unique_work(&a, in);
    int64_t *work = dt_malloc(words * sizeof(int64_t));
    if (!work)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for Unique over %lld items", (long long)(words / 7));
    ductile_status s = dt_unique_group(L, &a, in, work, r);
    if (s) {
        dt_free(work);
        return s;
    }
    r->work = work;
    return DUCTILE_OK;
}

ductile_status dt_unique_group(const ductile_layer *L, const dt_unique_attrs *a, const dt_view *in, int64_t *work,
                               dt_unique_result *r)
{
    memset(r, 0, sizeof *r);
    DT_TRY(dt_want_selectable(L, in, 0));
    dt_unique_ctx c = {.v = &in[0]};
    if (a->has_axis) {
        if (dt_norm_axis(a->axis, in[0].rank, &r->axis) != DUCTILE_OK)
            return dt_fail_prefix(DUCTILE_ERR_SHAPE, "attribute 'axis' for input 0 ('%s')", dt_shape_name(L, 0));
        int64_t outer = 1, inner = 1;
        for (int i = 0; i < r->axis; i++) outer *= in[0].dims[i];
        for (int i = r->axis + 1; i < in[0].rank; i++) inner *= in[0].dims[i];
        r->n_items = in[0].dims[r->axis];
        c.inner = inner ? inner : 1;
        c.item = outer * inner;
        c.stride_axis = inner;
        c.stride_outer = r->n_items * inner;
    } else {
        r->axis = -1;
        r->n_items = dt_view_count(&in[0]);
        c.item = c.inner = 1;
        c.stride_axis = 1;
    }
    r->item = c.item;
    DT_TRY(dt_shape_need_value(L, in, 0));
    int64_t n = r->n_items;
    int64_t m = n ? n : 1; /* work holds 7 arrays of m (dt_unique_work) */
    int64_t *idx = work, *tmp = work + m;
    r->first = work + 2 * m;
    r->inverse = work + 3 * m;
    r->counts = work + 4 * m;
    int64_t *first2 = work + 5 * m, *counts2 = work + 6 * m;
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    dt_item_sort(&c, idx, tmp, n);
    /* Groups of equal items in sorted order; stability puts each group's first occurrence first.
     * tmp[i] = group of item idx[i]. */
    int64_t u = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || dt_item_cmp(&c, idx[i - 1], idx[i]) != 0) {
            r->first[u] = idx[i];
            r->counts[u] = 0;
            u++;
        }
        r->counts[u - 1]++;
        r->inverse[idx[i]] = u - 1;
    }
    r->n_unique = u;
    if (!a->sorted) {
        /* Order groups by first occurrence: rank[g] = position of group g in that order. */
        int64_t *order = idx, *rank = tmp;
        for (int64_t g = 0; g < u; g++) order[g] = g;
        /* Sort group ids by first index (insertion-free: counting through the items). */
        int64_t k = 0;
        for (int64_t i = 0; i < u; i++) rank[i] = -1;
        for (int64_t i = 0; i < n; i++) {
            int64_t g = r->inverse[i];
            if (rank[g] < 0) order[k] = g, rank[g] = k++;
        }
        for (int64_t j = 0; j < u; j++) {
            first2[j] = r->first[order[j]];
            counts2[j] = r->counts[order[j]];
        }
        for (int64_t i = 0; i < n; i++) r->inverse[i] = rank[r->inverse[i]];
        r->first = first2;
        r->counts = counts2;
    }
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_unique(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    dt_unique_result r;
    DT_TRY(dt_unique_get(L, in, &r));
    if (r.axis < 0) {
        out[0].rank = 1;
        out[0].dims[0] = r.n_unique;
    } else {
        dt_shape_same(&in[0], &out[0]);
        out[0].dims[r.axis] = r.n_unique;
    }
    out[0].dtype = in[0].dtype;
    int64_t len[4] = {0, r.n_unique, r.n_items, r.n_unique};
    for (int k = 1; k < L->n_out; k++) {
        out[k].dtype = DUCTILE_INT64;
        out[k].rank = 1;
        out[k].dims[0] = len[k];
    }
    dt_unique_free(&r);
    return DUCTILE_OK;
}
