/* Per-layer profiling: what a context reports after each layer while a profiler is set
 * (ductile_context_set_profiler). Only called while profiling, so building the tactic string
 * and counting FLOPs here costs nothing otherwise. */
#include "runtime/engine_impl.h"
#include "ops/flops.h"

#include <stdio.h>
#include <time.h>

double dt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

void dt_profile_report(const ductile_engine *e, const dt_plan_layer *pl, int index, const dt_view *in,
                       const dt_view *out, int profile, int point, int threads, double ms, ductile_profiler_fn fn,
                       void *user)
{
    dt_profile_report_ran(e, pl, index, in, out, in, out, profile, point, threads, ms, fn, user);
}

void dt_profile_report_ran(const ductile_engine *e, const dt_plan_layer *pl, int index, const dt_view *in,
                           const dt_view *out, const dt_view *ran_in, const dt_view *ran_out, int profile, int point,
                           int threads, double ms, ductile_profiler_fn fn, void *user)
{
    const ductile_layer *L = pl->layer;
    /* The backend that ran it, as the layer info names kernels ("cpu.FusedConv"). */
    const dt_backend *b = pl->value || pl->fallback ? dt_backend_host() : e->backend;
    const char *be = pl->seq ? "runtime" : b->name;
    /* A view layer whose output aliases its input ran nothing: "alias". Legacy kernels are
     * asked with NULL params (the CUDA backend names its convs' tactic from their params). */
    const char *path = pl->alias         ? "alias"
                       : pl->seq         ? NULL
                       : b->kernel_path ? b->kernel_path(L, pl->kernel ? pl->params : NULL, ran_in, ran_out, profile, point, threads)
                                        : NULL;
    char tactic[160];
    if (path) snprintf(tactic, sizeof tactic, "%s.%s.%s", be, L->op_type, path);
    else snprintf(tactic, sizeof tactic, "%s.%s", be, L->op_type);
    ductile_layer_timing t = {
        .layer = L->name,
        .op_type = L->op_type,
        .tactic = tactic,
        .ms = ms,
        .flops = dt_layer_flops(L, in, out),
        .index = index,
    };
    fn(user, &t);
}
