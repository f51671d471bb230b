#include "ops/op.h"
#include "core/status.h"

#include <stdio.h>

int64_t dt_view_count(const dt_view *v)
{
    int64_t n = 1;
    for (int i = 0; i < v->rank; i++) n *= v->dims[i];
    return n;
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

ductile_status dt_norm_axis(int64_t axis, int rank, int *out)
{
    if (axis < -rank || axis >= rank || (rank == 0 && axis != 0))
        return dt_fail(DUCTILE_ERR_SHAPE, "axis %lld is out of range for rank %d (expected %d..%d)",
                       (long long)axis, rank, -rank, rank - 1);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return DUCTILE_OK;
}
