/* Timing a whole engine for the layout choice (build.c): whether the channels-last engine the
 * layout pass made is faster than the channels-first one is a property of the whole network
 * (kernels on both sides of each transpose, the transposes themselves), so the two engines
 * are timed as they run, as TensorRT times its formats against the reformats they cost.
 *
 * One context on profile 0 at its opt shapes, the context's own input buffers (zeroed:
 * convolution time does not depend on values), the backend's default stream; three runs to
 * plan and record (CUDA graphs), then the best of three batches of DT_LAYOUT_RUNS runs
 * between two syncs, per run. */
#include "builder/optimize.h"
#include "core/status.h"
#include "runtime/engine_impl.h"

#include <time.h>

enum { DT_LAYOUT_WARMUP = 3, DT_LAYOUT_RUNS = 10, DT_LAYOUT_REPS = 3 };

static double dt_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static ductile_status dt_sync(const ductile_engine *e)
{
    return e->backend->sync ? e->backend->sync(NULL) : DUCTILE_OK;
}

ductile_status dt_engine_time(const ductile_engine *e, double *seconds)
{
    *seconds = 0;
    ductile_context *ctx = NULL;
    DT_TRY(ductile_context_create(e, &ctx));
    ductile_status s = DUCTILE_OK;
    int n = ductile_engine_num_io_tensors(e);
    for (int i = 0; !s && i < n; i++) {
        const char *name = ductile_engine_io_tensor_name(e, i);
        if (ductile_engine_is_input(e, name) != 1) continue;
        ductile_dims d;
        s = ductile_engine_get_profile_shape(e, 0, name, DUCTILE_PROFILE_OPT, &d);
        if (!s) s = ductile_context_set_input_shape(ctx, name, &d);
    }
    for (int i = 0; !s && i < n; i++) {
        const char *name = ductile_engine_io_tensor_name(e, i);
        void *data;
        if (ductile_engine_is_input(e, name) == 1) s = ductile_context_get_tensor_address(ctx, name, &data);
    }
    for (int i = 0; !s && i < DT_LAYOUT_WARMUP; i++) s = ductile_context_execute_async(ctx, NULL);
    if (!s) s = dt_sync(e);
    double best = 0;
    for (int r = 0; !s && r < DT_LAYOUT_REPS; r++) {
        double t0 = dt_seconds();
        for (int i = 0; !s && i < DT_LAYOUT_RUNS; i++) s = ductile_context_execute_async(ctx, NULL);
        if (!s) s = dt_sync(e);
        double t = (dt_seconds() - t0) / DT_LAYOUT_RUNS;
        if (!s && (r == 0 || t < best)) best = t;
    }
    ductile_context_free(ctx);
    *seconds = best;
    return s;
}
