/* The CPU's instruction sets, as the kernels choose by them (cpu_isa.h). */
#include "backend/cpu/cpu_isa.h"

bool dt_cpu_has_avx2_fma(void)
{
    static int has;   /* 0: not asked yet, 1: no, 2: yes (relaxed atomics: every thread computes the same) */
    int h = __atomic_load_n(&has, __ATOMIC_RELAXED);
    if (!h) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 2 : 1;
        __atomic_store_n(&has, h, __ATOMIC_RELAXED);
    }
    return h == 2;
}
