/* Private to the CPU shape kernels: the kernels that src/backend/cpu/shape.c lists. */
#ifndef DT_CPU_SHAPE_KERNELS_H
#define DT_CPU_SHAPE_KERNELS_H

#include "backend/cpu/kernels.h"

/* Compiled kernels (backend.h), by file. */
extern const dt_kernel dt_cpu_transpose_kernel, dt_cpu_depth_to_space_kernel, dt_cpu_space_to_depth_kernel,
    dt_cpu_slice_kernel, dt_cpu_expand_kernel, dt_cpu_tile_kernel;                   /* shape_layout.c */
extern const dt_kernel dt_cpu_gather_kernel, dt_cpu_gather_elements_kernel;         /* shape_gather.c */
extern const dt_kernel dt_cpu_concat_kernel, dt_cpu_split_kernel;                   /* shape_concat.c */
extern const dt_kernel dt_cpu_pad_kernel, dt_cpu_center_crop_pad_kernel;            /* shape_pad.c */
extern const dt_kernel dt_cpu_gather_nd_kernel, dt_cpu_scatter_elements_kernel,
    dt_cpu_scatter_nd_kernel;                                                       /* shape_scatter.c */
extern const dt_kernel dt_cpu_trilu_kernel, dt_cpu_eye_like_kernel,
    dt_cpu_reverse_sequence_kernel;                                                 /* shape_pattern.c */
extern const dt_kernel dt_cpu_conv_transpose_kernel, dt_cpu_col2im_kernel;          /* convtranspose.c */
extern const dt_kernel dt_cpu_compress_kernel, dt_cpu_non_zero_kernel,
    dt_cpu_unique_kernel;                                                           /* shape_select.c */

#endif
