/* Private to the CPU shape kernels (src/backend/cpu/shape*.c): one strided-copy engine that
 * Transpose, Slice, Expand, Tile, DepthToSpace and SpaceToDepth all reduce to, so the effort
 * of making data movement fast (memcpy of contiguous runs, cache tiling, threads) is spent
 * once. */
#ifndef DT_CPU_SHAPE_COPY_H
#define DT_CPU_SHAPE_COPY_H

#include "backend/cpu/kernels.h"

#include <stddef.h>
#include <stdint.h>

/* Tile views a rank-r tensor as 2r dims. */
#define DT_STRIDED_MAX (2 * DT_MAX_DIMS)

/* out[i0, i1, ...] = in[i0 * stride[0] + i1 * stride[1] + ...], the output dense and
 * row-major. Strides count elements of the input and may be 0 (broadcast) or negative. */
typedef struct dt_strided {
    int rank;
    int64_t dims[DT_STRIDED_MAX];
    int64_t stride[DT_STRIDED_MAX];
} dt_strided;

/* Runs the copy; `in` points at the element that output index 0 reads. */
void dt_cpu_strided_copy(dt_exec *ex, void *out, const void *in, size_t esize, const dt_strided *s);

/* Dense row-major strides of a view, in elements. */
void dt_cpu_dense_strides(const dt_view *v, int64_t strides[DT_MAX_DIMS]);

/* memcpy, split over the pool's threads when large. */
void dt_cpu_copy_bytes(dt_exec *ex, void *dst, const void *src, size_t n);

/* Writes count copies of the esize-byte element at elem. */
void dt_cpu_fill(void *dst, const void *elem, size_t esize, int64_t count);

/* Byte size of a view's data (views hold checked dims, so this cannot overflow). */
size_t dt_cpu_view_bytes(const dt_view *v);

#endif
