/* Private to the CPU Resize kernel (nn_resize.c): the 2-D kernel's row loops 16 outputs a
 * vector where AVX-512 is (nn_resize_avx512.c).
 *
 * Along a row, output ox reads input columns i0[ox] and i1[ox] (nearest: i0 only). The scalar
 * loop reads them one value at a time. For a vector of 16 outputs whose columns all lie in 32
 * consecutive inputs [base, base + 32) (any upscale, and a downscale to at least half the
 * width), two loads of 16 inputs and one permute per column set give the 16 values; a plan
 * made once per call holds each vector's base and its lanes' columns relative to it. Each lane
 * then does the scalar loop's float operations (a + (c - a) * w, no fused multiply-add), so the
 * vector path gives the scalar path's bits. */
#ifndef DT_CPU_NN_RESIZE_H
#define DT_CPU_NN_RESIZE_H

#include <stdbool.h>
#include <stdint.h>

/* Whether this CPU runs the functions below. */
bool dt_resize_avx512_ok(void);

/* Vectors of a row of ow outputs. */
static inline int64_t dt_resize_vecs(int64_t ow) { return (ow + 15) / 16; }

/* The plan of a row of ow outputs: rel[ox] = i0[ox] - base[v] and rel[ow16 + ox] = i1[ox] -
 * base[v] for output ox of vector v, where ow16 = 16 * dt_resize_vecs(ow); base[v] = -1 where
 * the vector's columns span more than 32 inputs (that vector runs the scalar loop). rel holds
 * 2 * ow16 entries, base dt_resize_vecs(ow); i1 may be NULL (nearest: rel's second half unset). */
void dt_resize_plan_row(const int64_t *i0, const int64_t *i1, int64_t ow, int32_t *rel, int64_t *base);

/* h[ox] = r[i0] + (r[i1] - r[i0]) * w[ox] for ox < ow (r: an input row of iw values). */
void dt_resize_hline_avx512(const float *r, int64_t iw, const int64_t *i0, const int64_t *i1, const float *w,
                            const int32_t *rel, const int64_t *base, int64_t ow, float *h);

/* y[ox] = r[i0[ox]] for ox < ow (nearest along the row). */
void dt_resize_gather_avx512(const float *r, int64_t iw, const int64_t *i0, const int32_t *rel, const int64_t *base,
                             int64_t ow, float *y);

/* y[ox] = top[ox] + (bot[ox] - top[ox]) * wy for ox < ow. */
void dt_resize_vlerp_avx512(const float *top, const float *bot, float wy, int64_t ow, float *y);

#endif
