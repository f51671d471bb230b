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

/* Whether dt_pool_row_avx512 takes the border windows along x too: MaxPool's 3 taps at x
 * stride 2 (resnet50's), whose skipped taps need no per-window count. */
static inline bool dt_pool_row_borders(int64_t kx, int64_t sx, bool is_max) { return is_max && kx == 3 && sx == 2; }

#endif
