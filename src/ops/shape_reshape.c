/* Ops that change a tensor's shape but not its element order: Reshape, Flatten, Squeeze,
 * Unsqueeze; and Expand, which broadcasts. */
#include "ops/shape.h"
#include "core/checked.h"
#include "core/status.h"

#include <stdio.h>
#include <string.h>

ductile_status dt_shape_check_reshape(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 2, 1, 1, DT_INPUT_NAMES("data", "shape")));
    if (L->opset > 0 && L->opset < 5)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "Reshape before opset 5 (shape as an attribute) is not supported");
    int64_t az = dt_attr_int(L, "allowzero", 0);
    if (az != 0 && az != 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'allowzero' = %lld; expected 0 or 1",
                       (long long)az);
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_reshape(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    int64_t v[DT_MAX_DIMS];
    int n;
    DT_TRY(dt_shape_read_ints(L, in, 1, v, DT_MAX_DIMS, &n));
    bool allowzero = dt_attr_int(L, "allowzero", 0) != 0;
    int64_t count = dt_view_count(&in[0]);

    /* Every failure names both tensors, the input shape and the requested one: the builder
     * relies on this message to explain shapes baked into a model. */
    char head[640], sin[160], sv[200];
    snprintf(head, sizeof head, "cannot reshape '%s' of shape %s (%lld elements) to '%s' = %s",
             dt_shape_name(L, 0), dt_format_dims(sin, sizeof sin, in[0].dims, in[0].rank, NULL),
             (long long)count, dt_shape_name(L, 1), dt_shape_format_values(sv, sizeof sv, v, n));

    int infer_at = -1;
    bool has_zero = false;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
        int64_t d = v[i];
        if (d == -1) {
            if (infer_at >= 0)
                return dt_fail(DUCTILE_ERR_SHAPE, "%s: more than one dim is -1 (positions %d and %d)",
                               head, infer_at, i);
            infer_at = i;
            continue;
        }
        if (d < -1)
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "%s: the value %lld at position %d is invalid (expected -1, 0 or a "
                           "positive dim)", head, (long long)d, i);
        if (d == 0 && !allowzero) {
            if (i >= in[0].rank)
                return dt_fail(DUCTILE_ERR_SHAPE,
                               "%s: the 0 at position %d copies dimension %d of the input, which "
                               "has only %d dims", head, i, i, in[0].rank);
            d = in[0].dims[i];
        }
        if (v[i] == 0) has_zero = true;
        out[0].dims[i] = d;
        if (!dt_mul_i64(known, d, &known))
            return dt_fail(DUCTILE_ERR_SHAPE, "%s: the element count overflows int64", head);
    }
    if (allowzero && has_zero && infer_at >= 0)
        return dt_fail(DUCTILE_ERR_SHAPE, "%s: with allowzero=1 the shape cannot hold both 0 and -1",
                       head);
    if (infer_at >= 0) {
        if (known == 0 && count == 0)
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "%s: the known dims give 0 elements, so the -1 is ambiguous", head);
        if (known == 0 || count % known != 0)
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "%s: the known dims give %lld elements, which does not divide %lld",
                           head, (long long)known, (long long)count);
        out[0].dims[infer_at] = count / known;
    } else if (known != count) {
        return dt_fail(DUCTILE_ERR_SHAPE, "%s: that is %lld elements", head, (long long)known);
    }
    out[0].dtype = in[0].dtype;
    out[0].rank = n;
    return DUCTILE_OK;
}

ductile_status dt_shape_check_flatten(const ductile_layer *L) { return dt_check_arity(L, 1, 1, 1, 1, NULL); }

ductile_status dt_shape_infer_flatten(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    int r = in[0].rank;
    int64_t axis = dt_attr_int(L, "axis", 1);
    if (axis < -r || axis > r)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "attribute 'axis' = %lld is out of range for input 0 ('%s') of rank %d "
                       "(expected %d..%d)", (long long)axis, dt_shape_name(L, 0), r, -r, r);
    if (axis < 0) axis += r;
    int64_t a = 1, b = 1;
    for (int i = 0; i < r; i++) {
        if (i < axis) a *= in[0].dims[i];
        else b *= in[0].dims[i];
    }
    out[0].dtype = in[0].dtype;
    out[0].rank = 2;
    out[0].dims[0] = a;
    out[0].dims[1] = b;
    return DUCTILE_OK;
}

/* Squeeze and Unsqueeze take axes as an attribute before opset 13 and as input 1 from 13. */
static bool dt_axes_from_input(const ductile_layer *L) { return L->opset == 0 || L->opset >= 13; }

ductile_status dt_shape_check_squeeze(const ductile_layer *L)
{
    if (!dt_axes_from_input(L)) return dt_check_arity(L, 1, 1, 1, 1, NULL);
    return dt_check_arity(L, 1, 2, 1, 1, NULL);
}

ductile_status dt_shape_check_unsqueeze(const ductile_layer *L)
{
    if (!dt_axes_from_input(L)) {
        DT_TRY(dt_check_arity(L, 1, 1, 1, 1, NULL));
        int64_t n;
        if (!dt_attr_ints(L, "axes", &n))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'axes' is required before opset 13");
        return DUCTILE_OK;
    }
    DT_TRY(dt_check_arity(L, 2, 2, 1, 1, DT_INPUT_NAMES("data", "axes")));
    return DUCTILE_OK;
}

/* The axes of Squeeze/Unsqueeze: *n = -1 when none are given (Squeeze: all unit dims). */
static ductile_status dt_read_axes(const ductile_layer *L, const dt_view *in, int64_t *axes, int *n)
{
    if (!dt_axes_from_input(L)) {
        int64_t na;
        const int64_t *a = dt_attr_ints(L, "axes", &na);
        if (!a) {
            *n = -1;
            return DUCTILE_OK;
        }
        if (na > DT_MAX_DIMS)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'axes' has %lld values; at most %d are supported",
                           (long long)na, DT_MAX_DIMS);
        memcpy(axes, a, (size_t)na * sizeof *axes);
        *n = (int)na;
        return DUCTILE_OK;
    }
    if (!dt_shape_has(L, in, 1)) {
        *n = -1;
        return DUCTILE_OK;
    }
    return dt_shape_read_ints(L, in, 1, axes, DT_MAX_DIMS, n);
}

/* Normalizes axes against rank r and refuses duplicates; marks them in hit[]. */
static ductile_status dt_mark_axes(const ductile_layer *L, const int64_t *axes, int n, int r,
                                   bool hit[DT_MAX_DIMS])
{
    const char *src = dt_axes_from_input(L) ? "input 1 (axes)" : "attribute 'axes'";
    memset(hit, 0, DT_MAX_DIMS * sizeof hit[0]);
    for (int i = 0; i < n; i++) {
        int64_t a = axes[i];
        if (a < -r || a >= r)
            return dt_fail(DUCTILE_ERR_SHAPE, "%s[%d] = %lld is out of range for rank %d (expected %d..%d)",
                           src, i, (long long)a, r, -r, r - 1);
        if (a < 0) a += r;
        if (hit[a])
            return dt_fail(DUCTILE_ERR_SHAPE, "%s[%d] = %lld repeats axis %lld", src, i,
                           (long long)axes[i], (long long)a);
        hit[a] = true;
    }
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_squeeze(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    int64_t axes[DT_MAX_DIMS];
    int n;
    bool hit[DT_MAX_DIMS];
    int r = in[0].rank;
    DT_TRY(dt_read_axes(L, in, axes, &n));
    if (n <= 0) {
        /* onnxruntime treats an empty axes input like an absent one. */
        for (int i = 0; i < DT_MAX_DIMS; i++) hit[i] = i < r && in[0].dims[i] == 1;
    } else {
        DT_TRY(dt_mark_axes(L, axes, n, r, hit));
    }
    int o = 0;
    for (int i = 0; i < r; i++) {
        if (!hit[i]) {
            out[0].dims[o++] = in[0].dims[i];
            continue;
        }
        if (in[0].dims[i] != 1) {
            char s[160];
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "cannot squeeze dimension %d of input 0 ('%s') of shape %s named by axes: it is %lld, not 1",
                           i, dt_shape_name(L, 0),
                           dt_format_dims(s, sizeof s, in[0].dims, r, NULL), (long long)in[0].dims[i]);
        }
    }
    out[0].dtype = in[0].dtype;
    out[0].rank = o;
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_unsqueeze(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    int64_t axes[DT_MAX_DIMS];
    int n;
    bool hit[DT_MAX_DIMS];
    DT_TRY(dt_read_axes(L, in, axes, &n));
    if (n < 0) n = 0;
    int r = in[0].rank + n;
    if (r > DT_MAX_DIMS)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "unsqueezing input 0 ('%s') of rank %d by %d axes gives rank %d; at most %d is supported",
                       dt_shape_name(L, 0), in[0].rank, n, r, DT_MAX_DIMS);
    DT_TRY(dt_mark_axes(L, axes, n, r, hit));
    for (int i = 0, k = 0; i < r; i++) out[0].dims[i] = hit[i] ? 1 : in[0].dims[k++];
    out[0].dtype = in[0].dtype;
    out[0].rank = r;
    return DUCTILE_OK;
}

ductile_status dt_shape_check_expand(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 2, 1, 1, DT_INPUT_NAMES("input", "shape")));
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_expand(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    dt_view shape = {.dtype = DUCTILE_INT64};
    int n;
    DT_TRY(dt_shape_read_ints(L, in, 1, shape.dims, DT_MAX_DIMS, &n));
    shape.rank = n;
    char sv[200];
    for (int i = 0; i < n; i++)
        if (shape.dims[i] < 0)
            return dt_fail(DUCTILE_ERR_SHAPE, "input 1 ('%s') = %s has the negative dim %lld at position %d",
                           dt_shape_name(L, 1), dt_shape_format_values(sv, sizeof sv, shape.dims, n),
                           (long long)shape.dims[i], i);
    if (dt_broadcast(&in[0], &shape, &out[0]) != DUCTILE_OK)
        return dt_fail_prefix(DUCTILE_ERR_SHAPE, "cannot expand input 0 ('%s') to input 1 ('%s') = %s",
                              dt_shape_name(L, 0), dt_shape_name(L, 1),
                              dt_shape_format_values(sv, sizeof sv, shape.dims, n));
    out[0].dtype = in[0].dtype;
    return DUCTILE_OK;
}
