/* Division by a divisor fixed for a launch, as a multiply-high, an add and a shift (the
 * index arithmetic of the strided kernels: a 6-D DepthToSpace read did six 64-bit divisions
 * per element, ~0.1 ms on superres' 1024x1024 output where the copy takes ~0.01 ms).
 * Granlund and Montgomery's round-up method for 31-bit dividends: with l = ceil(log2 d) and
 * m = floor(2^32 (2^l - d) / d) + 1, n / d == (mulhi(n, m) + n) >> l for every n < 2^31 (the
 * sum stays below 2^32 since mulhi(n, m) < n). The host makes it (plain C: test_cuda_host
 * checks it against '/'); kernels apply it with dt_fast_div_q (fastdiv.cuh). */
#ifndef DT_CUDA_FASTDIV_H
#define DT_CUDA_FASTDIV_H

#include <stdint.h>

typedef struct dt_fast_div {
    uint32_t d, m, s;
} dt_fast_div;

/* d in [1, 2^31]. */
static inline dt_fast_div dt_fast_div_make(uint32_t d)
{
    uint32_t l = 0;
    while (l < 32 && (UINT64_C(1) << l) < d) l++;
    dt_fast_div f = {d, (uint32_t)(((UINT64_C(1) << 32) * ((UINT64_C(1) << l) - d)) / d + 1), l};
    return f;
}

/* The quotient on the host, as the device computes it (for tests). */
static inline uint32_t dt_fast_div_q_host(dt_fast_div f, uint32_t n)
{
    return (uint32_t)(((uint32_t)(((uint64_t)n * f.m) >> 32) + n) >> f.s);
}

#endif
