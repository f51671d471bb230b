/* The CPU backend's kernels: one run function per op type. The CPU backend is the reference
 * for every op; other backends are tested against it. */
#ifndef DT_CPU_KERNELS_H
#define DT_CPU_KERNELS_H

#include "ductile.h"
#include "core/threadpool.h"
#include "ops/op.h"

typedef struct dt_exec {
    dt_pool *pool;      /* may be NULL: run single-threaded */
} dt_exec;

/* Computes out[] from in[]. Output views arrive with dtype, rank and dims set by the op's
 * infer and data pointing at buffers of the right size (never aliasing an input). */
typedef ductile_status (*dt_cpu_run_fn)(const ductile_layer *L, const dt_view *in, dt_view *out,
                                        dt_exec *ex);

/* The kernel for an op type, or NULL. */
dt_cpu_run_fn dt_cpu_kernel_find(const char *op_type);

#endif
