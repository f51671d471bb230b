/* Pieces the GEMM tests share (test_gemm_bf16.c, test_gemm_fp16.c): a seeded uniform source
 * in [-1, 1) and a virtual B (a pack_b over a stored K x N matrix, as conv's packers are). */
#ifndef DT_TEST_GEMM_TESTUTIL_H
#define DT_TEST_GEMM_TESTUTIL_H

#include "backend/cpu/gemm.h"

#include <stdint.h>

static uint32_t rng_state = 12345u;
static float frand(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

typedef struct virt_b {
    const float *B;
    int64_t N;
} virt_b;

/* A pack_b of a stored K x N matrix, through dt_gemm_scatter_row. */
static void virt_pack(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float *dst)
{
    const virt_b *v = ctx;
    for (int64_t kk = 0; kk < kc; kk++) dt_gemm_scatter_row(v->B + (k0 + kk) * v->N + n0, nc, kk, kc, dst);
}

#endif
