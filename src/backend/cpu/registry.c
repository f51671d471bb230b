#include "backend/cpu/kernels.h"
#include "core/alloc.h"
#include "backend/cpu/families.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>

static const dt_cpu_kernel *const dt_cpu_families[] = {
    dt_cpu_elementwise,
    dt_cpu_shape,
    dt_cpu_linalg,
    dt_cpu_nn,
    dt_cpu_fused,
    dt_cpu_quant,
    dt_cpu_seq,
    dt_cpu_vision,
    dt_cpu_strings,
    dt_cpu_ml,
    dt_cpu_random,
};

static const dt_cpu_kernel *dt_cpu_entry(const char *op_type)
{
    for (size_t f = 0; f < sizeof dt_cpu_families / sizeof dt_cpu_families[0]; f++)
        for (const dt_cpu_kernel *k = dt_cpu_families[f]; k->op_type; k++)
            if (strcmp(k->op_type, op_type) == 0) return k;
    return NULL;
}

const dt_kernel *dt_cpu_kernel_compiled(const char *op_type)
{
    const dt_cpu_kernel *k = dt_cpu_entry(op_type);
    return k ? k->kernel : NULL;
}

dt_cpu_run_fn dt_cpu_kernel_legacy(const char *op_type)
{
    const dt_cpu_kernel *k = dt_cpu_entry(op_type);
    return k && !k->kernel ? k->run : NULL;
}

dt_cpu_run_fn dt_cpu_kernel_find(const char *op_type)
{
    const dt_cpu_kernel *k = dt_cpu_entry(op_type);
    return !k ? NULL : k->kernel ? dt_cpu_run_once : k->run;
}

ductile_status dt_cpu_run_once(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_kernel *k = dt_cpu_kernel_compiled(L->op_type);
    if (!k) return dt_fail(DUCTILE_ERR_INTERNAL, "no compiled CPU kernel for '%s'", L->op_type);
    void *params = NULL;
    if (k->prepare) DT_TRY(k->prepare(L, &params));
    size_t bytes = 0;
    ductile_status s = k->scratch ? k->scratch(params, in, out, dt_pool_threads(ex->pool), &bytes) : DUCTILE_OK;
    void *scratch = NULL;
    if (!s && bytes && !(scratch = dt_aligned_alloc(64, bytes))) {
        scratch = NULL;
        s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for a kernel's scratch", bytes);
    }
    if (!s) {
        dt_exec e = *ex;
        e.scratch = scratch;
        e.scratch_bytes = bytes;
        s = k->run(params, in, out, &e);
    }
    dt_free(scratch);
    dt_free(params);
    return s;
}

ductile_status dt_cpu_params_copy(const void *src, size_t bytes, const ductile_layer *L, void **out)
{
    void *p = dt_malloc(bytes ? bytes : 1);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling node '%s'", L->name);
    memcpy(p, src, bytes);
    *out = p;
    return DUCTILE_OK;
}

int dt_cpu_adapter_ops(const char **ops, int cap)
{
    int n = 0;
    for (size_t f = 0; f < sizeof dt_cpu_families / sizeof dt_cpu_families[0]; f++)
        for (const dt_cpu_kernel *k = dt_cpu_families[f]; k->op_type; k++)
            if (!k->kernel) {
                if (n < cap) ops[n] = k->op_type;
                n++;
            }
    return n;
}

ductile_status dt_cpu_want_f32(const ductile_layer *L)
{
    for (int k = 0; k < L->n_in; k++) {
        const ductile_tensor *T = L->in[k];
        if (T && (T->dtype == DUCTILE_FLOAT16 || T->dtype == DUCTILE_BFLOAT16))
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input %d ('%s') has dtype %s; the cpu kernel computes float32 only",
                           k, T->name, ductile_dtype_name((ductile_dtype)T->dtype));
    }
    return DUCTILE_OK;
}
