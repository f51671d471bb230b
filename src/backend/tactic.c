/* Reading a layer's stored tactics (tactic.h). */
#include "backend/tactic.h"
#include "core/status.h"

ductile_status dt_tactic_attr(const ductile_layer *L, const int64_t **ids, int64_t *n, int *points)
{
    *n = 0;
    *ids = dt_attr_ints(L, "tactic", n);
    if (!*ids) *n = 0;
    int64_t p = dt_attr_int(L, "tactic_points", 1);
    if (p != 1 && p != DT_TACTIC_POINTS)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic_points' = %lld (expected 1 or %d)", (long long)p,
                       DT_TACTIC_POINTS);
    if (*n % p)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attribute 'tactic' has %lld values, not a multiple of tactic_points (%lld)", (long long)*n,
                       (long long)p);
    *points = (int)p;
    return DUCTILE_OK;
}
