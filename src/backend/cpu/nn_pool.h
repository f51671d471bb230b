/* Private to the CPU pooling kernels (nn_pool.c): the vectorized row of a windowed pool. */
#ifndef DT_CPU_NN_POOL_H
#define DT_CPU_NN_POOL_H

#include <stdbool.h>
#include <stdint.h>

/* The most window rows (z taps times y taps) the vectorized row takes. */
#define DT_POOL_ROW_MAX_ROWS 64

/* Whether this CPU runs dt_pool_row_avx512. */
bool dt_pool_row_avx512_ok(void);

/* Outputs [ox0, ox1) of one output row: y[ox] = the max, or the sum divided by count, of
 * rows[r][ox * sx - px + tx] over the nrows window rows r (in the scalar loop's order) and
 * tx < kx. sx is 1 or 2; every tap read must lie inside its row (interior windows), except
 * where dt_pool_row_borders says the row takes border windows too: then w is the rows'
 * length and taps outside [0, w) are skipped (w is ignored elsewhere). */
void dt_pool_row_avx512(const float *const *rows, int nrows, int64_t kx, int64_t sx, int64_t px, int64_t w,
                        bool is_max, float count, int64_t ox0, int64_t ox1, float *y);

/* dt_pool_row_avx512 for CPUs with AVX2 and FMA (nn_pool_avx2.c; cpu_isa.h's dt_cpu_has_avx2_fma),
 * 8 outputs a vector: interior windows only (every tap inside its row). */
void dt_pool_row_avx2(const float *const *rows, int nrows, int64_t kx, int64_t sx, int64_t px, bool is_max,
                      float count, int64_t ox0, int64_t ox1, float *y);
/* Whether dt_pool_row_avx512 takes the border windows along x too: MaxPool's 3 taps at x
 * stride 2 (resnet50's), whose skipped taps need no per-window count. */
static inline bool dt_pool_row_borders(int64_t kx, int64_t sx, bool is_max) { return is_max && kx == 3 && sx == 2; }

/* The widest output row dt_pool_max3s2_plane takes (its row of window maxima lives on the
 * stack). */
#define DT_POOL_MAX3S2_WIDTH 1024

/* How many output rows ahead a 3x3 stride-2 MaxPool prefetches its input rows: resnet50's
 * at b8 (its input from memory) 1.64-1.68 ms with 2, 1.53-1.54 with 4, 1.66-1.78 with 8 (the
 * row loop, session 8); dt_pool_max3s2_plane at b1 alone (from L3) 0.075 ms with none, 0.064
 * with 2 or 4, 0.066 with 8. */
#ifndef DT_POOL_AHEAD
#define DT_POOL_AHEAD 4
#endif

/* MaxPool 3x3, stride 2, no dilation, one 2-D plane x of h rows of w (channels first): output
 * rows [oy0, oy1) of ow values into y (the plane's output, row oy at y + oy ow), pads py, px
 * on top and left (windows past the bottom or right end clipped). Each input row's three-tap
 * maxima are computed once and kept for the next output row (windows overlap by a row); the
 * same bits as the scalar loop's taps row by row (see nn_pool_avx512.c). ow <=
 * DT_POOL_MAX3S2_WIDTH. */
void dt_pool_max3s2_plane(const float *x, int64_t h, int64_t w, int64_t py, int64_t px, int64_t ow, int64_t oy0,
                          int64_t oy1, float *y);

/* The largest window (either dim) and widest output row dt_pool_maxs1_plane takes (its ring
 * of row maxima, ky rows of the row's width, lives on the stack: 16 KiB). */
#define DT_POOL_S1_MAX_K 8
#define DT_POOL_S1_WIDTH 512

/* MaxPool ky x kx, stride 1, no dilation, one 2-D plane x of h rows of w (channels first;
 * yolo's SPPF: 5x5, pads 2, on 20x20 maps at 640): output rows [oy0, oy1) of ow values into y
 * (row oy at y + oy ow), pads py, px on top and left. Separable: each input row's kx-tap
 * maxima once (taps outside the row -inf), kept in a ring of ky rows, then each output the
 * maximum of its window's ky row maxima; the same bits as the scalar loop (see
 * nn_pool_avx512.c). ky, kx <= DT_POOL_S1_MAX_K, ow <= DT_POOL_S1_WIDTH. */
void dt_pool_maxs1_plane(const float *x, int64_t h, int64_t w, int64_t ky, int64_t kx, int64_t py, int64_t px,
                         int64_t ow, int64_t oy0, int64_t oy1, float *y);

#endif
