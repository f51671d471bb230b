/* dt_cpu_via_f32 and dt_cpu_widen: see widen.h. */
#include "backend/cpu/widen.h"
#include "core/alloc.h"
#include "backend/cpu/elementwise_impl.h"
#include "core/checked.h"
#include "core/status.h"

#include <stdlib.h>

/* Views kept on the stack; plans refuse layers with more than 64 inputs or outputs, so only a
 * layer run outside a plan (dt_cpu_run_once on an odd network) takes the heap for them. */
enum { DT_WIDEN_STACK_VIEWS = 64 };

static bool dt_not_f32(int dtype) { return dtype != DUCTILE_FLOAT32; }

/* The bytes of v's float32 copy: at least one element, rounded up to 64 so that every copy
 * (and what follows them) stays 64-byte aligned. */
static size_t dt_widen_piece(const dt_view *v)
{
    int64_t n = dt_view_count(v);
    return ((size_t)(n > 0 ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
}

/* Whether input i is converted. At scratch time data is often unknown, so an input counts
 * whenever it is present; at run one without data (omitted) stays as it is. */
static bool dt_widen_input(const dt_view *v, int i, uint32_t in_mask, bool (*widen)(int dtype), bool at_run)
{
    return (in_mask >> (i < 31 ? i : 31) & 1) && v->rank >= 0 && (!at_run || v->data) && widen(v->dtype);
}

/* The one rule for the widening's bytes, at scratch time and at run (at run it can only be
 * smaller: fewer inputs have data). */
static size_t dt_widen_total(const ductile_layer *L, const dt_view *in, const dt_view *out, uint32_t in_mask,
                             bool (*widen)(int dtype), bool at_run)
{
    size_t n = 0;
    for (int i = 0; i < L->n_in; i++)
        if (dt_widen_input(&in[i], i, in_mask, widen, at_run)) n += dt_widen_piece(&in[i]);
    for (int i = 0; i < L->n_out; i++)
        if (widen(out[i].dtype)) n += dt_widen_piece(&out[i]);
    return n;
}

ductile_status dt_cpu_widen_scratch(const ductile_layer *L, const dt_view *in, const dt_view *out,
                                    uint32_t in_mask, bool (*widen)(int dtype), size_t *bytes)
{
    size_t w = dt_widen_total(L, in, out, in_mask, widen, false);
    if (!dt_add_size(*bytes, w, bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "%s: scratch of %zu bytes plus %zu widening them is too large",
                       L->op_type, *bytes, w);
    return DUCTILE_OK;
}

ductile_status dt_cpu_via_f32_scratch(const ductile_layer *L, const dt_view *in, const dt_view *out,
                                      uint32_t in_mask, size_t *bytes)
{
    return dt_cpu_widen_scratch(L, in, out, in_mask, dt_not_f32, bytes);
}

/* The loop under both kinds of kernels: fn(L, ...) for the adapter's, run(params, ...) for a
 * compiled one. */
static ductile_status dt_widen(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex,
                               uint32_t in_mask, bool (*widen)(int dtype), dt_kernel_fn fn, dt_kernel_run_fn run,
                               const void *params)
{
    int n = L->n_in + L->n_out;
    dt_view stack[DT_WIDEN_STACK_VIEWS];
    dt_view *v = n <= DT_WIDEN_STACK_VIEWS ? stack : dt_calloc((size_t)n, sizeof *v);
    if (!v) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory widening %s's operands", L->op_type);
    /* The copies come first in the scratch (the kernel's scratch function added them with
     * dt_cpu_widen_scratch); fn gets the rest for its own. A caller that reserved none (an
     * adapter kernel) gets them from the heap. */
    size_t need = dt_widen_total(L, in, out, in_mask, widen, true);
    dt_exec e = *ex;
    char *cur = NULL, *heap = NULL;
    ductile_status s = DUCTILE_OK;
    if (need && ex->scratch && ex->scratch_bytes >= need) {
        cur = ex->scratch;
        e.scratch_bytes -= need;
        e.scratch = e.scratch_bytes ? cur + need : NULL;
    } else if (need && !(cur = heap = dt_aligned_alloc(64, need))) {
        s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) widening %s's operands", need, L->op_type);
    }
    dt_view *win = v, *wout = v + L->n_in;
    for (int i = 0; i < L->n_in && !s; i++) {
        win[i] = in[i];
        if (!dt_widen_input(&in[i], i, in_mask, widen, true)) continue;
        s = dt_ew_convert(&in[i], DUCTILE_FLOAT32, &win[i], cur, ex);
        cur += dt_widen_piece(&in[i]);
    }
    for (int i = 0; i < L->n_out && !s; i++) {
        wout[i] = out[i];
        if (!widen(out[i].dtype)) continue;
        wout[i].dtype = DUCTILE_FLOAT32;
        wout[i].data = cur;
        cur += dt_widen_piece(&out[i]);
    }
    if (!s) s = run ? run(params, win, wout, &e) : fn(L, win, wout, &e);
    for (int i = 0; i < L->n_out && !s; i++)
        if (widen(out[i].dtype) && dt_view_count(&out[i]) > 0)
            s = dt_ew_cast_view(&wout[i], &out[i], ex);
    dt_free(heap);
    if (v != stack) dt_free(v);
    return s;
}

ductile_status dt_cpu_widen(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex,
                            uint32_t in_mask, bool (*widen)(int dtype), dt_kernel_fn fn)
{
    return dt_widen(L, in, out, ex, in_mask, widen, fn, NULL, NULL);
}

ductile_status dt_cpu_widen_run(const ductile_layer *L, const void *params, dt_kernel_run_fn run, const dt_view *in,
                                dt_view *out, dt_exec *ex, uint32_t in_mask, bool (*widen)(int dtype))
{
    return dt_widen(L, in, out, ex, in_mask, widen, NULL, run, params);
}

ductile_status dt_cpu_via_f32(const ductile_layer *L, const dt_view *in, dt_view *out,
                              dt_exec *ex, uint32_t in_mask, dt_kernel_fn fn)
{
    return dt_widen(L, in, out, ex, in_mask, dt_not_f32, fn, NULL, NULL);
}

ductile_status dt_cpu_via_f32_run(const ductile_layer *L, const void *params, dt_kernel_run_fn run,
                                  const dt_view *in, dt_view *out, dt_exec *ex, uint32_t in_mask)
{
    return dt_widen(L, in, out, ex, in_mask, dt_not_f32, NULL, run, params);
}
