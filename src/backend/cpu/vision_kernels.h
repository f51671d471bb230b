/* Private to the CPU vision kernels (src/backend/cpu/vision*.c). */
#ifndef DT_CPU_VISION_KERNELS_H
#define DT_CPU_VISION_KERNELS_H

#include "backend/cpu/kernels.h"

/* Items per parallel task so that each does roughly 16K units of work. */
static inline int64_t dt_cpu_grain(int64_t work_per_item)
{
    int64_t g = work_per_item > 0 ? 16384 / work_per_item : 16384;
    return g < 1 ? 1 : g;
}

ductile_status dt_cpu_gridsample(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
ductile_status dt_cpu_affinegrid(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
ductile_status dt_cpu_nms(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
ductile_status dt_cpu_lrn(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
ductile_status dt_cpu_groupnorm(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
ductile_status dt_cpu_mvn(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
ductile_status dt_cpu_maxunpool(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
ductile_status dt_cpu_upsample(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
ductile_status dt_cpu_lppool(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
ductile_status dt_cpu_global_lppool(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);

extern const dt_kernel dt_cpu_roialign_kernel;  /* vision_roi.c */
extern const dt_kernel dt_cpu_deformconv_kernel; /* vision_deform.c */

#endif
