/* The CPU backend's kernels: one run function per op type. The CPU backend is the reference
 * for every op; other backends are tested against it. */
#ifndef DT_CPU_KERNELS_H
#define DT_CPU_KERNELS_H

#include "backend/backend.h"

/* A CPU kernel (see dt_kernel_fn in backend/backend.h). */
typedef dt_kernel_fn dt_cpu_run_fn;

/* The kernel for an op type, or NULL. */
dt_cpu_run_fn dt_cpu_kernel_find(const char *op_type);

/* Weight layouts of the CPU backend (a layer's `packed` attribute). */
enum { DT_CPU_PACK_GEMM_A = 1 };  /* conv weights as the GEMM's packed A, group by group */

/* dt_backend.prepack of the CPU backend (fused_conv.c). */
ductile_status dt_cpu_prepack(const ductile_layer *L, dt_prepacked *out);
/* dt_backend.tactics of the CPU backend (fused_conv.c): the conv algorithms (dt_conv_algo). */
int dt_cpu_tactics(const ductile_layer *L, const dt_view *in, int *ids, int cap);

#endif
