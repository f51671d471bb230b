/* The CPU backend's table: host memory and the CPU kernels. */
#include "backend/cpu/kernels.h"
#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *dt_cpu_alloc(size_t bytes)
{
    return dt_aligned_alloc(64, bytes ? bytes : 1);
}

static void dt_cpu_release(void *p) { dt_free(p); }

static uint64_t dt_cpu_memory_size(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t bytes;
    if (pages <= 0 || page <= 0 || __builtin_mul_overflow((uint64_t)pages, (uint64_t)page, &bytes)) return 0;
    return bytes;
}

const char *dt_cpu_kernel_path(const ductile_layer *L, const void *params, const dt_view *in, const dt_view *out,
                               int profile, int point, int threads)
{
    if (!params) return NULL; /* a legacy kernel: one path */
    if (!strcmp(L->op_type, "FusedConv")) return dt_cpu_fused_conv_path(params, in, out, profile, point, threads);
    if (!strcmp(L->op_type, "MatMul")) return dt_cpu_matmul_path(params, in, out, profile, threads);
    if (!strcmp(L->op_type, "FusedMatMul")) return dt_cpu_fused_matmul_path(params, in, out, profile, threads);
    if (!strcmp(L->op_type, "Gemm")) return dt_cpu_gemm_path(params, in, out, profile, threads);
    if (!strcmp(L->op_type, "FusedInvertedResidual")) return dt_cpu_fused_irb_path(params, in, profile, point, threads);
    if (!strcmp(L->op_type, "Concat") && !strcmp(L->domain, "")) return dt_cpu_concat_path(params, in, out);
    if (!strcmp(L->op_type, "Split") && !strcmp(L->domain, "")) return dt_cpu_split_path(params, in, out);
    return NULL;
}

/* Reached through the registry (backend/backends.c). */
const dt_backend *dt_backend_cpu(void);
const dt_backend *dt_backend_cpu(void)
{
    static const dt_backend cpu = {
        .name = "cpu",
        .kernel = dt_cpu_kernel_compiled,
        .find_kernel = dt_cpu_kernel_find,
        .alloc = dt_cpu_alloc,
        .release = dt_cpu_release,
        .prepack = dt_cpu_prepack,
        .bf16_in_kernel = dt_cpu_bf16_in_kernel,
        .tactics = dt_cpu_tactics,
        .tactic_precise = dt_cpu_tactic_precise,
        .prune = dt_cpu_prune,
        .kernel_path = dt_cpu_kernel_path,
        .memory_size = dt_cpu_memory_size,
        .host_memory = true,
        .joins_in_place = true,
    };
    return &cpu;
}
