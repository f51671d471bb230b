/* The CPU backend's kernels: one run function per op type. The CPU backend is the reference
 * for every op; other backends are tested against it. */
#ifndef DT_CPU_KERNELS_H
#define DT_CPU_KERNELS_H

#include "backend/backend.h"

/* A CPU kernel (see dt_kernel_fn in backend/backend.h). */
typedef dt_kernel_fn dt_cpu_run_fn;

/* The kernel for an op type, or NULL. */
dt_cpu_run_fn dt_cpu_kernel_find(const char *op_type);

#endif
