/* Running a float32 kernel on other dtypes: the chosen inputs are converted to float32, the
 * kernel runs, and its outputs are converted back with Cast's rules. For ops whose float16,
 * bfloat16, float64, integer or bool variants ductile computes in float32 (MatMul, Conv, Gemm,
 * reductions, Softmax): exact for halves, within float32 rounding for float64 and for integers
 * beyond 2^24. */
#ifndef DT_CPU_WIDEN_H
#define DT_CPU_WIDEN_H

#include "backend/backend.h"

#include <stdbool.h>
#include <stdint.h>

/* Bit i of in_mask: convert input i (when given and not float32); outputs of another dtype are
 * computed in float32 buffers and converted. */
ductile_status dt_cpu_via_f32(const ductile_layer *L, const dt_view *in, dt_view *out,
                              dt_exec *ex, uint32_t in_mask, dt_kernel_fn fn);
/* The one widening loop, under dt_cpu_via_f32 and the elementwise kernels' dt_ew_via_f32
 * (which widens only the half types): input i is converted when bit min(i, 31) of in_mask is set
 * and widen(its dtype); an output is computed in a float32 buffer when widen(its dtype). */
ductile_status dt_cpu_widen(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex,
                            uint32_t in_mask, bool (*widen)(int dtype), dt_kernel_fn fn);

#endif
