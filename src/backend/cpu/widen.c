/* dt_cpu_via_f32 and dt_cpu_widen: see widen.h. */
#include "backend/cpu/widen.h"
#include "core/alloc.h"
#include "backend/cpu/elementwise_impl.h"
#include "core/status.h"

#include <stdlib.h>

static bool dt_not_f32(int dtype) { return dtype != DUCTILE_FLOAT32; }

ductile_status dt_cpu_via_f32(const ductile_layer *L, const dt_view *in, dt_view *out,
                              dt_exec *ex, uint32_t in_mask, dt_kernel_fn fn)
{
    return dt_cpu_widen(L, in, out, ex, in_mask, dt_not_f32, fn);
}

ductile_status dt_cpu_widen(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex,
                            uint32_t in_mask, bool (*widen)(int dtype), dt_kernel_fn fn)
{
    int n = L->n_in + L->n_out;
    dt_view *v = dt_calloc((size_t)n, sizeof *v);
    void **bufs = dt_calloc((size_t)n, sizeof *bufs);
    ductile_status s = DUCTILE_OK;
    if (!v || !bufs) {
        s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory widening %s's operands", L->op_type);
        goto done;
    }
    dt_view *win = v, *wout = v + L->n_in;
    for (int i = 0; i < L->n_in && !s; i++) {
        win[i] = in[i];
        if ((in_mask >> (i < 31 ? i : 31) & 1) && in[i].rank >= 0 && in[i].data &&
            widen(in[i].dtype))
            s = dt_ew_convert(&in[i], DUCTILE_FLOAT32, &win[i], &bufs[i], ex);
    }
    for (int i = 0; i < L->n_out && !s; i++) {
        wout[i] = out[i];
        if (!widen(out[i].dtype)) continue;
        int64_t cnt = dt_view_count(&out[i]);
        bufs[L->n_in + i] = dt_malloc((size_t)(cnt ? cnt : 1) * sizeof(float));
        if (!bufs[L->n_in + i]) {
            s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for %s's float32 output",
                        L->op_type);
            break;
        }
        wout[i].dtype = DUCTILE_FLOAT32;
        wout[i].data = bufs[L->n_in + i];
    }
    if (!s) s = fn(L, win, wout, ex);
    for (int i = 0; i < L->n_out && !s; i++)
        if (widen(out[i].dtype) && dt_view_count(&out[i]) > 0)
            s = dt_ew_cast_view(&wout[i], &out[i], ex);
done:
    if (bufs)
        for (int i = 0; i < n; i++) dt_free(bufs[i]);
    dt_free(bufs);
    dt_free(v);
    return s;
}
