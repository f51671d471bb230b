/* Private to the CPU shape kernels: the run functions that src/backend/cpu/shape.c lists. */
#ifndef DT_CPU_SHAPE_KERNELS_H
#define DT_CPU_SHAPE_KERNELS_H

#include "backend/cpu/kernels.h"

#define DT_CPU_SHAPE_KERNEL(name)                                                           \
    ductile_status dt_cpu_##name(const ductile_layer *L, const dt_view *in, dt_view *out,  \
                                 dt_exec *ex)
DT_CPU_SHAPE_KERNEL(expand);          /* shape_layout.c */
DT_CPU_SHAPE_KERNEL(slice);
DT_CPU_SHAPE_KERNEL(tile);
DT_CPU_SHAPE_KERNEL(gather_elements); /* shape_gather.c */
DT_CPU_SHAPE_KERNEL(split);           /* shape_concat.c */
DT_CPU_SHAPE_KERNEL(pad);             /* shape_pad.c */
DT_CPU_SHAPE_KERNEL(center_crop_pad);
DT_CPU_SHAPE_KERNEL(gather_nd);       /* shape_scatter.c */
DT_CPU_SHAPE_KERNEL(scatter_elements);
DT_CPU_SHAPE_KERNEL(scatter_nd);
DT_CPU_SHAPE_KERNEL(trilu);           /* shape_pattern.c */
DT_CPU_SHAPE_KERNEL(eye_like);
DT_CPU_SHAPE_KERNEL(reverse_sequence);
DT_CPU_SHAPE_KERNEL(conv_transpose);  /* convtranspose.c */
DT_CPU_SHAPE_KERNEL(col2im);
DT_CPU_SHAPE_KERNEL(compress);        /* shape_select.c */
DT_CPU_SHAPE_KERNEL(non_zero);
DT_CPU_SHAPE_KERNEL(unique);
#undef DT_CPU_SHAPE_KERNEL

/* Compiled (backend.h): Transpose, DepthToSpace, SpaceToDepth (shape_layout.c), Gather
 * (shape_gather.c), Concat (shape_concat.c). */
extern const dt_kernel dt_cpu_transpose_kernel, dt_cpu_depth_to_space_kernel, dt_cpu_space_to_depth_kernel,
    dt_cpu_gather_kernel, dt_cpu_concat_kernel;

#endif
