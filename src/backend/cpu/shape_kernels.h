/* Private to the CPU shape kernels: the run functions that src/backend/cpu/shape.c lists. */
#ifndef DT_CPU_SHAPE_KERNELS_H
#define DT_CPU_SHAPE_KERNELS_H

#include "backend/cpu/kernels.h"

#define DT_CPU_SHAPE_KERNEL(name)                                                           \
    ductile_status dt_cpu_##name(const ductile_layer *L, const dt_view *in, dt_view *out,  \
                                 dt_exec *ex)
DT_CPU_SHAPE_KERNEL(gather_elements); /* shape_gather.c */
DT_CPU_SHAPE_KERNEL(gather_nd);       /* shape_scatter.c */
DT_CPU_SHAPE_KERNEL(scatter_elements);
DT_CPU_SHAPE_KERNEL(scatter_nd);
DT_CPU_SHAPE_KERNEL(trilu);           /* shape_pattern.c */
DT_CPU_SHAPE_KERNEL(eye_like);
DT_CPU_SHAPE_KERNEL(reverse_sequence);
DT_CPU_SHAPE_KERNEL(compress);        /* shape_select.c */
DT_CPU_SHAPE_KERNEL(non_zero);
DT_CPU_SHAPE_KERNEL(unique);
#undef DT_CPU_SHAPE_KERNEL

/* Compiled (backend.h): Transpose, DepthToSpace, SpaceToDepth, Slice, Expand, Tile
 * (shape_layout.c), Gather (shape_gather.c), Concat, Split (shape_concat.c), Pad,
 * CenterCropPad (shape_pad.c), ConvTranspose, Col2Im (convtranspose.c). */
extern const dt_kernel dt_cpu_transpose_kernel, dt_cpu_depth_to_space_kernel, dt_cpu_space_to_depth_kernel,
    dt_cpu_slice_kernel, dt_cpu_expand_kernel, dt_cpu_tile_kernel, dt_cpu_gather_kernel, dt_cpu_concat_kernel,
    dt_cpu_split_kernel, dt_cpu_pad_kernel, dt_cpu_center_crop_pad_kernel, dt_cpu_conv_transpose_kernel,
    dt_cpu_col2im_kernel;

#endif
