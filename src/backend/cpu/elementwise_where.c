/* Where(cond, x, y) with three-way broadcasting. Only the element size matters for the
 * selection, so one loop per size serves every dtype. */
/* The build's -O2 vectorizes only loops whose trip count and aliasing are known; these
 * loops need the full vectorizer to run at memory speed. */
#pragma GCC optimize("O3", "no-trapping-math")

#include "backend/cpu/elementwise_impl.h"
#include "core/status.h"

#include <stdint.h>

#define DT_WHERE_FN(name, T)                                                                \
    static void name(const void *ctx, char *const p[], const int st[], int64_t n)          \
    {                                                                                       \
        T *o = (T *)p[0];                                                                   \
        const uint8_t *c = (const uint8_t *)p[1];                                           \
        const T *x = (const T *)p[2], *y = (const T *)p[3];                                 \
        if (st[1] && st[2] && st[3]) {                                                      \
            for (int64_t i = 0; i < n; i++) o[i] = c[i] ? x[i] : y[i];                      \
        } else if (!st[1]) {                                                                \
            /* One condition for the whole stretch: a plain copy of x or y. */              \
            const T *src = c[0] ? x : y;                                                    \
            int64_t s = c[0] ? st[2] : st[3];                                               \
            for (int64_t i = 0; i < n; i++) o[i] = src[i * s];                              \
        } else {                                                                            \
            const int64_t sx = st[2], sy = st[3];                                           \
            for (int64_t i = 0; i < n; i++) o[i] = c[i] ? x[i * sx] : y[i * sy];            \
        }                                                                                   \
    }
DT_WHERE_FN(where_1, uint8_t)
DT_WHERE_FN(where_2, uint16_t)
DT_WHERE_FN(where_4, uint32_t)
DT_WHERE_FN(where_8, uint64_t)

/* No attributes: nothing to prepare. */
static ductile_status dt_where_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_ew_run_fn fn;
    switch (ductile_dtype_size((ductile_dtype)out[0].dtype)) {
    case 1: fn = where_1; break;
    case 2: fn = where_2; break;
    case 4: fn = where_4; break;
    case 8: fn = where_8; break;
    default:
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "Where: output dtype %s is not supported",
                       ductile_dtype_name((ductile_dtype)out[0].dtype));
    }
    if (in[0].dtype != DUCTILE_BOOL)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 (condition) has dtype %s; expected bool",
                       ductile_dtype_name((ductile_dtype)in[0].dtype));
    if (dt_view_count(&out[0]) == 0) return DUCTILE_OK;
    const dt_view *ins[3] = {&in[0], &in[1], &in[2]};
    dt_ew_iter it;
    dt_ew_iter_init(&it, &out[0], ins, 3);
    dt_ew_iter_run(&it, ex, fn, NULL);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_ew_where_kernel = {.run = dt_where_run};
