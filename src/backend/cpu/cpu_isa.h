/* Which x86-64 instruction sets this CPU has, for the CPU kernels' run-time choice (internal to
 * the CPU backend). The AVX-512 paths still ask __builtin_cpu_supports where they choose. */
#ifndef DT_CPU_ISA_H
#define DT_CPU_ISA_H

#include <stdbool.h>

/* Whether this CPU has AVX2 and FMA (the AVX2 kernels' CPUs, where it lacks AVX-512F), asked
 * once: the one check of every AVX2 path (GEMM, depthwise, pools, epilogue, im2col gather),
 * cheap enough for their per-row calls. */
bool dt_cpu_has_avx2_fma(void);

#endif
