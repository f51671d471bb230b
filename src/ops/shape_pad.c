/* Pad: pads and value as attributes before opset 11, as inputs from 11 (axes from 18). */
#include "ops/shape.h"
#include "core/checked.h"
#include "core/status.h"

#include <string.h>

static bool dt_pad_from_inputs(const ductile_layer *L) { return L->opset == 0 || L->opset >= 11; }

static int dt_pad_mode(const char *m)
{
    if (strcmp(m, "constant") == 0) return DT_PAD_CONSTANT;
    if (strcmp(m, "reflect") == 0) return DT_PAD_REFLECT;
    if (strcmp(m, "edge") == 0) return DT_PAD_EDGE;
    if (strcmp(m, "wrap") == 0) return DT_PAD_WRAP;
    return -1;
}

ductile_status dt_shape_check_pad(const ductile_layer *L)
{
    if (dt_pad_from_inputs(L)) {
        DT_TRY(dt_check_arity(L, 2, 4, 1, 1, DT_INPUT_NAMES("data", "pads")));
    } else {
        DT_TRY(dt_check_arity(L, 1, 1, 1, 1, NULL));
        int64_t n;
        if (!dt_attr_ints(L, "pads", &n))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'pads' is required before opset 11");
    }
    const char *m = dt_attr_string(L, "mode", "constant");
    if (dt_pad_mode(m) < 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'mode' = '%s' is not supported (supported: constant, reflect, edge, wrap)", m);
    return DUCTILE_OK;
}

ductile_status dt_pad_attrs_read(const ductile_layer *L, dt_pad_attrs *a)
{
    a->mode = dt_pad_mode(dt_attr_string(L, "mode", "constant"));
    if (a->mode < 0) return dt_shape_check_pad(L);
    a->from_inputs = dt_pad_from_inputs(L);
    a->n_pads = 0;
    a->value = 0.0f;
    if (a->from_inputs) return DUCTILE_OK;
    int64_t n64;
    const int64_t *v = dt_attr_ints(L, "pads", &n64);
    if (n64 > 2 * DT_MAX_DIMS)
        return dt_fail(DUCTILE_ERR_SHAPE, "attribute 'pads' has %lld values; at most %d are supported",
                       (long long)n64, 2 * DT_MAX_DIMS);
    if (v) memcpy(a->pads, v, (size_t)n64 * sizeof *v);
    a->n_pads = (int)n64;
    a->value = dt_attr_float(L, "value", 0.0f);
    return DUCTILE_OK;
}

ductile_status dt_pad_plan_get(const ductile_layer *L, const dt_view *in, dt_pad_plan *p)
{
    dt_pad_attrs a;
    DT_TRY(dt_pad_attrs_read(L, &a));
    return dt_pad_plan_of(L, &a, in, p);
}

ductile_status dt_pad_plan_of(const ductile_layer *L, const dt_pad_attrs *a, const dt_view *in, dt_pad_plan *p)
{
    int r = in[0].rank, n;
    int64_t pads[2 * DT_MAX_DIMS], axes[DT_MAX_DIMS];
    int na = r;
    const char *src = "attribute 'pads'";
    p->mode = a->mode;
    for (int i = 0; i < r; i++) axes[i] = i;
    if (a->from_inputs) {
        src = "input 1 (pads)";
        DT_TRY(dt_shape_read_ints(L, in, 1, pads, 2 * DT_MAX_DIMS, &n));
        if (dt_shape_has(L, in, 3)) DT_TRY(dt_shape_read_ints(L, in, 3, axes, DT_MAX_DIMS, &na));
    } else {
        memcpy(pads, a->pads, (size_t)a->n_pads * sizeof *pads);
        n = a->n_pads;
    }
    if (n != 2 * na)
        return dt_fail(DUCTILE_ERR_SHAPE, "%s has %d values; expected %d (a begin and an end for each of %d axes)",
                       src, n, 2 * na, na);
    for (int i = 0; i < r; i++) p->begin[i] = p->end[i] = 0;
    bool seen[DT_MAX_DIMS] = {false};
    for (int i = 0; i < na; i++) {
        int64_t ax = axes[i];
        if (ax < -r || ax >= r)
            return dt_fail(DUCTILE_ERR_SHAPE, "input 3 (axes)[%d] = %lld is out of range for rank %d", i,
                           (long long)ax, r);
        if (ax < 0) ax += r;
        if (seen[ax]) return dt_fail(DUCTILE_ERR_SHAPE, "input 3 (axes)[%d] repeats axis %lld", i, (long long)ax);
        seen[ax] = true;
        p->begin[ax] = pads[i];
        p->end[ax] = pads[na + i];
    }
    for (int i = 0; i < r; i++) {
        int64_t d = in[0].dims[i], o;
        if (!dt_add_i64(d, p->begin[i], &o) || !dt_add_i64(o, p->end[i], &o) || o < 0)
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "pads %lld and %lld on dimension %d of size %lld of input 0 ('%s') give an invalid size",
                           (long long)p->begin[i], (long long)p->end[i], i, (long long)d, dt_shape_name(L, 0));
        if (p->mode == DT_PAD_CONSTANT) continue;
        /* Negative pads crop first; edge and reflect then read the cropped extent. */
        int64_t lo = p->begin[i] < 0 ? -p->begin[i] : 0, hi = d - (p->end[i] < 0 ? -p->end[i] : 0);
        int64_t size = hi - lo, pb = p->begin[i] > 0 ? p->begin[i] : 0, pe = p->end[i] > 0 ? p->end[i] : 0;
        if ((pb || pe) && size < 1)
            return dt_fail(DUCTILE_ERR_SHAPE, "%s mode cannot pad dimension %d of input 0 ('%s'), which is empty",
                           p->mode == DT_PAD_EDGE ? "edge" : p->mode == DT_PAD_WRAP ? "wrap" : "reflect", i, dt_shape_name(L, 0));
        if (p->mode == DT_PAD_REFLECT && (pb >= size || pe >= size))
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "reflect mode pads dimension %d of input 0 ('%s') by %lld and %lld, but it has only %lld elements (pads must be smaller)",
                           i, dt_shape_name(L, 0), (long long)pb, (long long)pe, (long long)size);
    }
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_pad(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    dt_pad_plan p;
    DT_TRY(dt_pad_plan_get(L, in, &p));
    dt_shape_same(&in[0], &out[0]);
    for (int i = 0; i < in[0].rank; i++) out[0].dims[i] += p.begin[i] + p.end[i];
    return DUCTILE_OK;
}

/* ---- CenterCropPad: a constant-zero Pad whose begin is -floor(crop/2) or floor(pad/2) ---- */

ductile_status dt_shape_check_center_crop_pad(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 2, 1, 1, DT_INPUT_NAMES("input_data", "shape")));
    return DUCTILE_OK;
}

ductile_status dt_center_crop_pad_attrs_read(const ductile_layer *L, dt_crop_attrs *a)
{
    int64_t n64;
    const int64_t *v = dt_attr_ints(L, "axes", &n64);
    a->n_axes = -1;
    if (!v) return DUCTILE_OK;
    if (n64 > DT_MAX_DIMS)
        return dt_fail(DUCTILE_ERR_SHAPE, "attribute 'axes' has %lld values; at most %d are supported",
                       (long long)n64, DT_MAX_DIMS);
    memcpy(a->axes, v, (size_t)n64 * sizeof *v);
    a->n_axes = (int)n64;
    return DUCTILE_OK;
}

ductile_status dt_center_crop_pad_plan(const ductile_layer *L, const dt_view *in, dt_pad_plan *p)
{
    dt_crop_attrs a;
    DT_TRY(dt_center_crop_pad_attrs_read(L, &a));
    return dt_center_crop_pad_plan_of(L, &a, in, p);
}

ductile_status dt_center_crop_pad_plan_of(const ductile_layer *L, const dt_crop_attrs *a, const dt_view *in,
                                          dt_pad_plan *p)
{
    int r = in[0].rank, n, na = r;
    int64_t shape[DT_MAX_DIMS], axes[DT_MAX_DIMS];
    DT_TRY(dt_shape_read_ints(L, in, 1, shape, DT_MAX_DIMS, &n));
    if (a->n_axes >= 0) {
        memcpy(axes, a->axes, (size_t)a->n_axes * sizeof *axes);
        na = a->n_axes;
    } else {
        for (int i = 0; i < r; i++) axes[i] = i;
    }
    char sv[200];
    if (n != na)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (shape, '%s') = %s has %d values; expected %d (one per axis)",
                       dt_shape_name(L, 1), dt_shape_format_values(sv, sizeof sv, shape, n), n, na);
    p->mode = DT_PAD_CONSTANT;
    for (int i = 0; i < r; i++) p->begin[i] = p->end[i] = 0;
    bool seen[DT_MAX_DIMS] = {false};
    for (int i = 0; i < na; i++) {
        int64_t ax = axes[i];
        if (ax < -r || ax >= r)
            return dt_fail(DUCTILE_ERR_SHAPE, "attribute 'axes'[%d] = %lld is out of range for rank %d", i, (long long)ax, r);
        if (ax < 0) ax += r;
        if (seen[ax]) return dt_fail(DUCTILE_ERR_SHAPE, "attribute 'axes'[%d] repeats axis %lld", i, (long long)ax);
        seen[ax] = true;
        int64_t dim = in[0].dims[ax], want = shape[i];
        if (want < 0 || want > ((int64_t)1 << 40))
            return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (shape, '%s') = %s: value %d (%lld) is out of range",
                           dt_shape_name(L, 1), dt_shape_format_values(sv, sizeof sv, shape, n), i, (long long)want);
        int64_t d = want - dim, half = (d < 0 ? -d : d) / 2;
        p->begin[ax] = d < 0 ? -half : half;
        p->end[ax] = d - p->begin[ax];
    }
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_center_crop_pad(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    dt_pad_plan p;
    DT_TRY(dt_center_crop_pad_plan(L, in, &p));
    dt_shape_same(&in[0], &out[0]);
    for (int i = 0; i < in[0].rank; i++) out[0].dims[i] += p.begin[i] + p.end[i];
    return DUCTILE_OK;
}
