/* NonMaxSuppression: dt_nms_run (src/ops/vision_nms.c) writes the triples infer counted. */
#include "backend/cpu/vision_kernels.h"
#include "ops/vision.h"
#include "core/status.h"

ductile_status dt_cpu_nms(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    dt_nms_params p;
    DT_TRY(dt_nms_params_get(L, in, &p));
    int64_t cap = out[0].dims[0];
    int64_t n = dt_nms_run(&p, in[0].data, in[1].data, out[0].data, cap);
    if (n < 0) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for %lld boxes",
                              (long long)p.boxes);
    if (n != cap)
        return dt_fail(DUCTILE_ERR_INTERNAL, "selected %lld boxes where infer counted %lld",
                       (long long)n, (long long)cap);
    return DUCTILE_OK;
}
