/* The CPU backend's table: host memory and the CPU kernels. */
#include "backend/cpu/kernels.h"

#include <stdlib.h>

static void *dt_cpu_alloc(size_t bytes)
{
    void *p = NULL;
    return posix_memalign(&p, 64, bytes ? bytes : 1) == 0 ? p : NULL;
}

static void dt_cpu_release(void *p) { free(p); }

/* Reached through the registry (backend/backends.c). */
const dt_backend *dt_backend_cpu(void);
const dt_backend *dt_backend_cpu(void)
{
    static const dt_backend cpu = {
        .name = "cpu",
        .find_kernel = dt_cpu_kernel_find,
        .alloc = dt_cpu_alloc,
        .release = dt_cpu_release,
        .prepack = dt_cpu_prepack,
        .tactics = dt_cpu_tactics,
        .host_memory = true,
    };
    return &cpu;
}
