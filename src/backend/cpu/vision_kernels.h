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

/* Compiled (backend.h). */
extern const dt_kernel dt_cpu_gridsample_kernel, dt_cpu_affinegrid_kernel, dt_cpu_nms_kernel,
    dt_cpu_lrn_kernel, dt_cpu_groupnorm_kernel, dt_cpu_mvn_kernel, dt_cpu_maxunpool_kernel,
    dt_cpu_upsample_kernel, dt_cpu_lppool_kernel, dt_cpu_global_lppool_kernel;

extern const dt_kernel dt_cpu_roialign_kernel;  /* vision_roi.c */
extern const dt_kernel dt_cpu_deformconv_kernel; /* vision_deform.c */
extern const dt_kernel dt_cpu_image_decoder_kernel; /* vision_image.c */

#endif
