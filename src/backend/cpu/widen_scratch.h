/* dt_cpu_via_f32 (widen.h) for compiled kernels: the same conversions, with the float32
 * copies carved from the layer's planned scratch (dt_exec.scratch) instead of the heap, so
 * a kernel that computes other dtypes in float32 allocates nothing at run time. The kernel's
 * scratch function adds dt_cpu_widen_bytes to its own need and its run places its own
 * scratch after the widened copies. */
#ifndef DT_CPU_WIDEN_SCRATCH_H
#define DT_CPU_WIDEN_SCRATCH_H

#include "backend/backend.h"

#include <stddef.h>
#include <stdint.h>

/* The bytes that the copies of these views take: input i when bit min(i, 31) of in_mask is
 * set, it is given (rank >= 0) and not float32; every output not float32. Each copy is
 * rounded up to 64 bytes. DUCTILE_ERR_SHAPE when the sum overflows. */
ductile_status dt_cpu_widen_bytes(const dt_view *in, int n_in, const dt_view *out, int n_out,
                                  uint32_t in_mask, size_t *bytes);
/* Fills win[0..n_in) and wout[0..n_out): float32 copies of the inputs chosen as above
 * (converted), the others as given; float32 buffers for the outputs not float32. The copies
 * take the first bytes of scratch (at most dt_cpu_widen_bytes of them, checked against
 * scratch_bytes); *used says how many. */
ductile_status dt_cpu_widen_in(const dt_view *in, int n_in, const dt_view *out, int n_out,
                               uint32_t in_mask, void *scratch, size_t scratch_bytes,
                               dt_view *win, dt_view *wout, size_t *used, dt_exec *ex);
/* Converts the float32 results in wout back into the outputs that are not float32. */
ductile_status dt_cpu_widen_out(const dt_view *wout, dt_view *out, int n_out, dt_exec *ex);

#endif
