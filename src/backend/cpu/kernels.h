/* The CPU backend's kernels: one run function per op type. The CPU backend is the reference
 * for every op; other backends are tested against it. */
#ifndef DT_CPU_KERNELS_H
#define DT_CPU_KERNELS_H

#include "backend/backend.h"

/* A CPU kernel (see dt_kernel_fn in backend/backend.h). */
typedef dt_kernel_fn dt_cpu_run_fn;

/* The kernel for an op type, or NULL. */
dt_cpu_run_fn dt_cpu_kernel_find(const char *op_type);

/* Layouts of conv weights packed at build time (FusedConv's `packed`):
 *   DT_CPU_PACK_GEMM_A: the GEMM's packed A, group by group (dt_cpu_conv_pack_weights);
 *   DT_CPU_PACK_GEMM_A_WINO: that, followed by the Winograd F(4x4, 3x3) transform
 *   (dt_cpu_wino_pack_weights), for convs where Winograd applies, so every tactic can run. */
enum { DT_CPU_PACK_GEMM_A = 1, DT_CPU_PACK_GEMM_A_WINO = 2 };
/* Layout of a constant B of MatMul (2-D B) and Gemm packed at build time (their `packed`):
 * op(B) as the GEMM's packed B over the whole K (dt_gemm_pack_b_full). */
enum { DT_CPU_PACK_GEMM_B = 3 };

/* dt_backend.prepack of the CPU backend (fused_conv.c; MatMul and Gemm: linalg.c). */
ductile_status dt_cpu_prepack(const ductile_layer *L, dt_prepacked *out);
ductile_status dt_cpu_prepack_gemm_b(const ductile_layer *L, dt_prepacked *out);
/* dt_backend.tactics of the CPU backend (fused_conv.c): the conv algorithms (dt_conv_algo). */
int dt_cpu_tactics(const ductile_layer *L, const dt_view *in, int *ids, int cap);

#endif
