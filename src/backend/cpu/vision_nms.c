/* NonMaxSuppression: dt_nms_run_in (src/ops/vision_nms.c) writes the triples infer counted.
 * Its output shape depends on the data, so it runs eagerly; the eager path plans the
 * scratch (dt_plan_layer_scratch) for the candidates and the kept indices. */
#include "backend/cpu/vision_kernels.h"
#include "ops/vision.h"
#include "core/status.h"

static ductile_status dt_nms_prepare(const ductile_layer *L, void **out)
{
    dt_nms_attrs a;
    dt_nms_attrs_read(L, &a);
    return dt_cpu_params_copy(&a, sizeof a, L, out);
}

static ductile_status dt_nms_scratch(const void *params, const dt_view *in, const dt_view *out,
                                     int threads, size_t *bytes)
{
    *bytes = 0;
    int64_t boxes = in[0].rank == 3 ? in[0].dims[1] : 0;
    if (!dt_nms_work_bytes(boxes, bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "NonMaxSuppression: %lld boxes overflow", (long long)boxes);
    return DUCTILE_OK;
}

static ductile_status dt_nms_layer_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_nms_params p;
    DT_TRY(dt_nms_params_of(params, in, &p));
    size_t need;
    if (!dt_nms_work_bytes(p.boxes, &need) || (need && (!ex->scratch || ex->scratch_bytes < need)))
        return dt_fail(DUCTILE_ERR_INTERNAL, "NonMaxSuppression: %zu bytes of scratch given for %lld boxes",
                       ex->scratch_bytes, (long long)p.boxes);
    int64_t cap = out[0].dims[0];
    int64_t n = dt_nms_run_in(&p, in[0].data, in[1].data, out[0].data, cap, ex->scratch);
    if (n != cap)
        return dt_fail(DUCTILE_ERR_INTERNAL, "selected %lld boxes where infer counted %lld",
                       (long long)n, (long long)cap);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_nms_kernel = {.prepare = dt_nms_prepare, .scratch = dt_nms_scratch, .run = dt_nms_layer_run};
