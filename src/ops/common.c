#include "ops/op.h"
#include "core/checked.h"
#include "core/status.h"

#include <stdio.h>
#include <string.h>

int64_t dt_view_count(const dt_view *v)
{
    int64_t n = 1;
    for (int i = 0; i < v->rank; i++) n *= v->dims[i];
    return n;
}

ductile_status dt_packed_weight_view(const ductile_layer *L, int input, const dt_view *w, int rmin,
                                     int rmax, dt_view *out)
{
    *out = *w;
    if (dt_attr_int(L, "packed", 0) == 0) return DUCTILE_OK;
    int64_t n;
    const int64_t *shape = dt_attr_ints(L, "w_shape", &n);
    if (!shape || n < rmin || n > rmax) {
        char ranks[32];
        if (rmin == rmax) snprintf(ranks, sizeof ranks, "%d", rmin);
        else snprintf(ranks, sizeof ranks, "%d or %d", rmin, rmax);
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attribute 'w_shape' must hold the %s dims of the packed weights (input %d)",
                       ranks, input);
    }
    out->rank = (int)n;
    for (int i = 0; i < n; i++) {
        if (shape[i] < 1)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'w_shape'[%d] = %lld; expected >= 1",
                           i, (long long)shape[i]);
        out->dims[i] = shape[i];
    }
    out->data = NULL;
    return DUCTILE_OK;
}

ductile_status dt_broadcast(const dt_view *a, const dt_view *b, dt_view *out)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1;
        int64_t db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[160], sb[160];
            dt_format_dims(sa, sizeof sa, a->dims, a->rank, NULL);
            dt_format_dims(sb, sizeof sb, b->dims, b->rank, NULL);
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "shapes %s and %s cannot be broadcast: dimension %d is %lld and %lld",
                           sa, sb, i, (long long)da, (long long)db);
        }
        out->dims[i] = da == 1 ? db : da;
    }
    out->rank = r;
    return DUCTILE_OK;
}

int64_t dt_view_int(const dt_view *v, int64_t i)
{
    if (v->dtype == DUCTILE_INT32) return ((const int32_t *)v->data)[i];
    return ((const int64_t *)v->data)[i];
}

ductile_status dt_check_arity(const ductile_layer *L, int lo, int hi, int olo, int ohi,
                              const char *const *names)
{
    if (L->n_in < lo || L->n_in > hi) {
        if (lo == hi)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "expected %d input%s, got %d", lo,
                           lo == 1 ? "" : "s", L->n_in);
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "expected %d to %d inputs, got %d", lo, hi,
                       L->n_in);
    }
    for (int i = 0; i < lo; i++) {
        if (L->in[i]) continue;
        if (names)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "input %d (%s) is required but was omitted", i, names[i]);
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input %d is required but was omitted", i);
    }
    if (L->n_out < olo || L->n_out > ohi) {
        if (olo == ohi)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "expected %d output%s, got %d", olo,
                           olo == 1 ? "" : "s", L->n_out);
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "expected %d to %d outputs, got %d", olo,
                       ohi, L->n_out);
    }
    return DUCTILE_OK;
}

ductile_status dt_want_float32(const dt_view *in, int i, const char *what)
{
    if (in[i].dtype != DUCTILE_FLOAT32)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input %d (%s) has dtype %s; only float32 is supported",
                       i, what, ductile_dtype_name((ductile_dtype)in[i].dtype));
    return DUCTILE_OK;
}

ductile_status dt_want_float(const dt_view *in, int i, const char *what, int same)
{
    int t = in[i].dtype;
    if (t != DUCTILE_FLOAT32 && t != DUCTILE_FLOAT16 && t != DUCTILE_BFLOAT16)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input %d (%s) has dtype %s; expected float32, float16 or bfloat16",
                       i, what, ductile_dtype_name((ductile_dtype)t));
    if (same >= 0 && t != in[same].dtype)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input %d (%s) has dtype %s and input %d %s; expected the same",
                       i, what, ductile_dtype_name((ductile_dtype)t), same,
                       ductile_dtype_name((ductile_dtype)in[same].dtype));
    return DUCTILE_OK;
}

ductile_status dt_norm_axis(int64_t axis, int rank, int *out)
{
    if (axis < -rank || axis >= rank || (rank == 0 && axis != 0))
        return dt_fail(DUCTILE_ERR_SHAPE, "axis %lld is out of range for rank %d (expected %d..%d)",
                       (long long)axis, rank, -rank, rank - 1);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return DUCTILE_OK;
}

ductile_status dt_fail_dilated_extent(int64_t i, int64_t k, int64_t d)
{
    return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                   "attribute 'dilations'[%lld] = %lld: the dilated kernel (%lld - 1)*%lld + 1 "
                   "overflows int64", (long long)i, (long long)d, (long long)k, (long long)d);
}

ductile_status dt_auto_pad(const ductile_layer *L, const char **ap)
{
    *ap = dt_attr_string(L, "auto_pad", "NOTSET");
    if (strcmp(*ap, "NOTSET") && strcmp(*ap, "SAME_UPPER") && strcmp(*ap, "SAME_LOWER") &&
        strcmp(*ap, "VALID"))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'auto_pad' = '%s' is not supported (supported: NOTSET, "
                       "SAME_UPPER, SAME_LOWER, VALID)", *ap);
    return DUCTILE_OK;
}

dt_auto_pad_kind dt_auto_pad_of(const char *auto_pad)
{
    return !strcmp(auto_pad, "SAME_UPPER") ? DT_PAD_SAME_UPPER
         : !strcmp(auto_pad, "SAME_LOWER") ? DT_PAD_SAME_LOWER
         : !strcmp(auto_pad, "VALID")      ? DT_PAD_VALID
                                           : DT_PAD_NOTSET;
}

/* The one split of a SAME padding (dt_same_pads). */
void dt_same_split(int64_t total, bool upper, int64_t *pb, int64_t *pe)
{
    /* floor(total / 2), also for a negative total (ConvTranspose with a larger output_shape). */
    int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
    /* SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the beginning. */
    *pb = upper ? half : total - half;
    *pe = total - *pb;
}

void dt_same_pads(int64_t total, const char *auto_pad, int64_t *pb, int64_t *pe)
{
    dt_same_split(total, strcmp(auto_pad, "SAME_UPPER") == 0, pb, pe);
}

ductile_status dt_window_dim(int i, int n, int64_t in, int64_t k, int64_t s, int64_t d,
                             const char *auto_pad, const int64_t *pads, bool ceil_mode,
                             int64_t *pb, int64_t *pe, int64_t *ek, int64_t *out)
{
    dt_auto_pad_kind m = dt_auto_pad_of(auto_pad);
    bool explicit_pads = pads && m == DT_PAD_NOTSET;
    *pb = explicit_pads ? pads[i] : 0;
    *pe = explicit_pads ? pads[n + i] : 0;
    return dt_window_dim_pad(i, in, k, s, d, m, ceil_mode, pb, pe, ek, out);
}

ductile_status dt_window_dim_pad(int i, int64_t in, int64_t k, int64_t s, int64_t d, dt_auto_pad_kind auto_pad,
                                 bool ceil_mode, int64_t *pb, int64_t *pe, int64_t *ek, int64_t *out)
{
    if (!dt_dilated_extent(k, d, ek)) return dt_fail_dilated_extent(i, k, d);
    if (auto_pad == DT_PAD_SAME_UPPER || auto_pad == DT_PAD_SAME_LOWER) {
        const char *name = auto_pad == DT_PAD_SAME_UPPER ? "SAME_UPPER" : "SAME_LOWER";
        *out = dt_ceildiv_nonneg(in, s);
        /* (out - 1)*s <= in - 1, so only adding the kernel can overflow. */
        int64_t total;
        if (!dt_add_i64((*out - 1) * s, *ek - in, &total))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "attribute 'dilations'[%d] = %lld: the padding of auto_pad %s "
                           "overflows int64", i, (long long)d, name);
        dt_same_split(total < 0 ? 0 : total, auto_pad == DT_PAD_SAME_UPPER, pb, pe);
        return DUCTILE_OK;
    }
    if (auto_pad == DT_PAD_VALID) *pb = *pe = 0;
    int64_t padded;
    if (!dt_add_i64(in, *pb, &padded) || !dt_add_i64(padded, *pe, &padded))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attribute 'pads' = %lld, %lld at spatial dim %d: the padded size "
                       "%lld + %lld + %lld overflows int64", (long long)*pb, (long long)*pe, i,
                       (long long)in, (long long)*pb, (long long)*pe);
    int64_t span = padded - *ek;   /* both >= 0: cannot overflow */
    if (span < 0) {
        *out = 0;
        return DUCTILE_OK;
    }
    *out = (ceil_mode ? dt_ceildiv_nonneg(span, s) : span / s) + 1;
    /* The last window must start inside the input or the leading padding. */
    int64_t last;
    if (ceil_mode && (!dt_mul_i64(*out - 1, s, &last) || last >= in + *pb)) (*out)--;
    return DUCTILE_OK;
}

bool dt_prelu_channel_slope(int opset, const dt_view *x, const dt_view *slope, dt_view *as)
{
    if (opset >= 7 || slope->rank != 1 || x->rank < 3 ||
        slope->dims[0] != x->dims[1] || slope->dims[0] == 1)
        return false;
    *as = *slope;
    as->rank = x->rank - 1;
    for (int d = 1; d < as->rank; d++) as->dims[d] = 1;
    return true;
}
