/* dt_cpu_widen_in / _out: see widen_scratch.h. */
#include "backend/cpu/widen_scratch.h"
#include "backend/cpu/elementwise_impl.h"
#include "core/status.h"

static bool dt_ws_input(const dt_view *v, int i, uint32_t mask)
{
    return (mask >> (i < 31 ? i : 31) & 1) && v->rank >= 0 && v->dtype != DUCTILE_FLOAT32;
}

/* 64-byte rounded float32 bytes of v; false on overflow. */
static bool dt_ws_size(const dt_view *v, size_t *bytes)
{
    int64_t n = dt_view_count(v);
    size_t b;
    if (n < 0 || __builtin_mul_overflow((size_t)(n ? n : 1), sizeof(float), &b) || b > SIZE_MAX - 63)
        return false;
    *bytes = (b + 63) & ~(size_t)63;
    return true;
}

static bool dt_ws_add(size_t *total, const dt_view *v)
{
    size_t b;
    return dt_ws_size(v, &b) && !__builtin_add_overflow(*total, b, total);
}

ductile_status dt_cpu_widen_bytes(const dt_view *in, int n_in, const dt_view *out, int n_out,
                                  uint32_t in_mask, size_t *bytes)
{
    size_t total = 0;
    bool ok = true;
    for (int i = 0; ok && i < n_in; i++)
        if (dt_ws_input(&in[i], i, in_mask)) ok = dt_ws_add(&total, &in[i]);
    for (int i = 0; ok && i < n_out; i++)
        if (out[i].dtype != DUCTILE_FLOAT32) ok = dt_ws_add(&total, &out[i]);
    if (!ok) return dt_fail(DUCTILE_ERR_SHAPE, "float32 copies of the operands overflow the address space");
    *bytes = total;
    return DUCTILE_OK;
}

/* The next float32 copy of v from the scratch. */
static ductile_status dt_ws_take(const dt_view *v, char *scratch, size_t scratch_bytes, size_t *used,
                                 dt_view *w)
{
    size_t b;
    if (!dt_ws_size(v, &b) || b > scratch_bytes - *used)
        return dt_fail(DUCTILE_ERR_INTERNAL, "%zu bytes of scratch given, more needed to widen to float32",
                       scratch_bytes);
    *w = *v;
    w->dtype = DUCTILE_FLOAT32;
    w->data = scratch + *used;
    *used += b;
    return DUCTILE_OK;
}

ductile_status dt_cpu_widen_in(const dt_view *in, int n_in, const dt_view *out, int n_out,
                               uint32_t in_mask, void *scratch, size_t scratch_bytes,
                               dt_view *win, dt_view *wout, size_t *used, dt_exec *ex)
{
    *used = 0;
    for (int i = 0; i < n_in; i++) {
        win[i] = in[i];
        if (!dt_ws_input(&in[i], i, in_mask) || !in[i].data) continue;
        DT_TRY(dt_ws_take(&in[i], scratch, scratch_bytes, used, &win[i]));
        if (dt_view_count(&in[i]) > 0) DT_TRY(dt_ew_cast_view(&in[i], &win[i], ex));
    }
    for (int i = 0; i < n_out; i++) {
        wout[i] = out[i];
        if (out[i].dtype != DUCTILE_FLOAT32) DT_TRY(dt_ws_take(&out[i], scratch, scratch_bytes, used, &wout[i]));
    }
    return DUCTILE_OK;
}

ductile_status dt_cpu_widen_out(const dt_view *wout, dt_view *out, int n_out, dt_exec *ex)
{
    for (int i = 0; i < n_out; i++)
        if (out[i].dtype != DUCTILE_FLOAT32 && dt_view_count(&out[i]) > 0)
            DT_TRY(dt_ew_cast_view(&wout[i], &out[i], ex));
    return DUCTILE_OK;
}
