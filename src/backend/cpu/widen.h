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
 * computed in float32 buffers and converted. The float32 copies come from ex->scratch when it
 * holds them (compiled kernels reserve them with dt_cpu_via_f32_scratch; fn then gets the
 * scratch past them), else from the heap (adapter kernels). */
ductile_status dt_cpu_via_f32(const ductile_layer *L, const dt_view *in, dt_view *out,
                              dt_exec *ex, uint32_t in_mask, dt_kernel_fn fn);
/* The same for a compiled kernel: runs run(params, ...) on the float32 views, so nothing is
 * read from the layer (L gives only the operand counts and names in messages). A run that
 * widens when its operands are not float32 passes itself. */
ductile_status dt_cpu_via_f32_run(const ductile_layer *L, const void *params, dt_kernel_run_fn run,
                                  const dt_view *in, dt_view *out, dt_exec *ex, uint32_t in_mask);
/* For the scratch function of a compiled kernel whose run calls dt_cpu_via_f32 with this
 * in_mask: adds to *bytes the float32 copies the widening takes at these views (nothing when
 * every operand is float32). The run then takes them from ex->scratch and hands the kernel
 * the rest, so what the kernel reserved for itself stays its own. */
ductile_status dt_cpu_via_f32_scratch(const ductile_layer *L, const dt_view *in, const dt_view *out,
                                      uint32_t in_mask, size_t *bytes);
/* The same rule for dt_cpu_widen's predicate (dt_ew_via_f32_scratch uses it). */
ductile_status dt_cpu_widen_scratch(const ductile_layer *L, const dt_view *in, const dt_view *out,
                                    uint32_t in_mask, bool (*widen)(int dtype), size_t *bytes);
/* The one widening loop, under dt_cpu_via_f32 and the elementwise kernels' dt_ew_via_f32
 * (which widens only the half types): input i is converted when bit min(i, 31) of in_mask is set
 * and widen(its dtype); an output is computed in a float32 buffer when widen(its dtype). */
ductile_status dt_cpu_widen(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex,
                            uint32_t in_mask, bool (*widen)(int dtype), dt_kernel_fn fn);
ductile_status dt_cpu_widen_run(const ductile_layer *L, const void *params, dt_kernel_run_fn run, const dt_view *in,
                                dt_view *out, dt_exec *ex, uint32_t in_mask, bool (*widen)(int dtype));

#endif
