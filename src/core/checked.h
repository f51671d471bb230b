/* Checked arithmetic for every size and offset that comes from a file or a caller. */
#ifndef DT_CHECKED_H
#define DT_CHECKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Each returns false on overflow (and leaves *out unspecified). */
static inline bool dt_add_size(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }
static inline bool dt_mul_size(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool dt_add_i64(int64_t a, int64_t b, int64_t *out) { return !__builtin_add_overflow(a, b, out); }
static inline bool dt_mul_i64(int64_t a, int64_t b, int64_t *out) { return !__builtin_mul_overflow(a, b, out); }

/* The extent of a kernel of k >= 1 taps dilated by d >= 1: (k - 1)*d + 1. */
static inline bool dt_dilated_extent(int64_t k, int64_t d, int64_t *out)
{
    return k >= 1 && d >= 1 && dt_mul_i64(k - 1, d, out) && dt_add_i64(*out, 1, out);
}

/* ceil(a/b) for a >= 0, b >= 1, without forming a + b - 1 (which overflows for a huge b). */
static inline int64_t dt_ceildiv_nonneg(int64_t a, int64_t b) { return a / b + (a % b != 0); }

/* Product of n non-negative dims; false if any is negative or the product overflows int64. */
static inline bool dt_dims_product(const int64_t *d, int n, int64_t *out)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++) {
        if (d[i] < 0 || __builtin_mul_overflow(p, d[i], &p)) return false;
    }
    *out = p;
    return true;
}

#endif
