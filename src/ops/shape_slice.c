/* Slice: starts/ends/axes as attributes before opset 10, as inputs (with steps) from 10. */
#include "ops/shape.h"
#include "core/status.h"

#include <string.h>

static bool dt_slice_from_inputs(const ductile_layer *L) { return L->opset == 0 || L->opset >= 10; }

ductile_status dt_shape_check_slice(const ductile_layer *L)
{
    if (!dt_slice_from_inputs(L)) {
        DT_TRY(dt_check_arity(L, 1, 1, 1, 1, NULL));
        int64_t n;
        if (!dt_attr_ints(L, "starts", &n) || !dt_attr_ints(L, "ends", &n))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attributes 'starts' and 'ends' are required before opset 10");
        return DUCTILE_OK;
    }
    return dt_check_arity(L, 3, 5, 1, 1, DT_INPUT_NAMES("data", "starts", "ends"));
}

ductile_status dt_slice_attrs_read(const ductile_layer *L, dt_slice_attrs *a)
{
    static const char *const names[3] = {"starts", "ends", "axes"};
    a->from_inputs = dt_slice_from_inputs(L);
    for (int k = 0; k < 3; k++) {
        a->n[k] = -1;
        if (a->from_inputs) continue;
        int64_t na;
        const int64_t *v = dt_attr_ints(L, names[k], &na);
        if (!v) continue;
        if (na > DT_MAX_DIMS)
            return dt_fail(DUCTILE_ERR_SHAPE, "attribute '%s' has %lld values; at most %d are supported",
                           names[k], (long long)na, DT_MAX_DIMS);
        memcpy(a->v[k], v, (size_t)na * sizeof *v);
        a->n[k] = (int)na;
    }
    return DUCTILE_OK;
}

/* One of starts/ends/axes/steps (input 1..4): *n = -1 when absent. */
static ductile_status dt_slice_list(const ductile_layer *L, const dt_slice_attrs *a, const dt_view *in,
                                    int input, int64_t *v, int *n)
{
    *n = -1;
    if (!a->from_inputs) {
        if (input < 4 && a->n[input - 1] >= 0) {
            *n = a->n[input - 1];
            memcpy(v, a->v[input - 1], (size_t)*n * sizeof *v);
        }
        return DUCTILE_OK;
    }
    if (!dt_shape_has(L, in, input)) return DUCTILE_OK;
    return dt_shape_read_ints(L, in, input, v, DT_MAX_DIMS, n);
}

static int64_t dt_clamp(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

ductile_status dt_slice_plan_get(const ductile_layer *L, const dt_view *in, dt_slice_plan *p)
{
    dt_slice_attrs a;
    DT_TRY(dt_slice_attrs_read(L, &a));
    return dt_slice_plan_of(L, &a, in, p);
}

ductile_status dt_slice_plan_of(const ductile_layer *L, const dt_slice_attrs *a, const dt_view *in,
                                dt_slice_plan *p)
{
    static const char *const names[5] = {"", "starts", "ends", "axes", "steps"};
    int64_t v[5][DT_MAX_DIMS];
    int n[5];
    for (int k = 1; k < 5; k++) DT_TRY(dt_slice_list(L, a, in, k, v[k], &n[k]));
    int r = in[0].rank;
    for (int i = 0; i < r; i++) {
        p->start[i] = 0;
        p->step[i] = 1;
        p->len[i] = in[0].dims[i];
    }
    for (int k = 2; k < 5; k++)
        if (n[k] >= 0 && n[k] != n[1])
            return dt_fail(DUCTILE_ERR_SHAPE, "%s has %d values but starts has %d", names[k], n[k], n[1]);
    bool seen[DT_MAX_DIMS] = {false};
    for (int i = 0; i < n[1]; i++) {
        int64_t a = n[3] >= 0 ? v[3][i] : i;
        if (a < -r || a >= r)
            return dt_fail(DUCTILE_ERR_SHAPE, "axes[%d] = %lld is out of range for input 0 ('%s') of rank %d (expected %d..%d)",
                           i, (long long)a, dt_shape_name(L, 0), r, -r, r - 1);
        if (a < 0) a += r;
        if (seen[a])
            return dt_fail(DUCTILE_ERR_SHAPE, "axes[%d] = %lld repeats axis %lld", i,
                           (long long)(n[3] >= 0 ? v[3][i] : i), (long long)a);
        seen[a] = true;
        int64_t step = n[4] >= 0 ? v[4][i] : 1;
        if (step == 0) return dt_fail(DUCTILE_ERR_SHAPE, "steps[%d] is 0", i);
        int64_t d = in[0].dims[a], s = v[1][i], e = v[2][i], len;
        /* Negative positions count from the end; then positions clamp to the dim (one before
         * it when stepping backwards, where -1 means "through element 0"). */
        if (s < 0) s += d;
        if (e < 0) e += d;
        if (step > 0) {
            s = dt_clamp(s, 0, d);
            e = dt_clamp(e, 0, d);
            len = e > s ? (e - s - 1) / step + 1 : 0;
        } else {
            s = dt_clamp(s, 0, d - 1);
            e = dt_clamp(e, -1, d - 1);
            uint64_t back = (uint64_t)0 - (uint64_t)step;
            len = s > e ? (int64_t)((uint64_t)(s - e - 1) / back) + 1 : 0;
        }
        p->start[a] = s;
        p->step[a] = step;
        p->len[a] = len;
    }
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_slice(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    dt_slice_plan p;
    DT_TRY(dt_slice_plan_get(L, in, &p));
    dt_shape_same(&in[0], &out[0]);
    for (int i = 0; i < in[0].rank; i++) out[0].dims[i] = p.len[i];
    return DUCTILE_OK;
}
