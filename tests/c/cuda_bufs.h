/* Host buffers of the CUDA kernel tests (test_cuda_dw.c, test_cuda_pw_mma.c): values rounded to
 * the device's element type as they are stored, a small deterministic generator, NCHW / NHWC
 * indexing and device copies. */
#ifndef DT_TEST_CUDA_BUFS_H
#define DT_TEST_CUDA_BUFS_H

#include "backend/cpu/elementwise_impl.h"
#include "backend/cuda/cuda.h"
#include "ductile.h"

#include <cuda_runtime_api.h>

#include <stdbool.h>
#include <math.h>
#include <stdint.h>

/* v rounded to dtype (what the device holds), stored into buf[i] in dtype. */
static inline float put(void *buf, int dtype, size_t i, float v)
{
    if (dtype == DUCTILE_FLOAT16) {
        uint16_t h = dt_float_to_half(v);
        ((uint16_t *)buf)[i] = h;
        return dt_half_to_float(h);
    }
    if (dtype == DUCTILE_BFLOAT16) {
        uint16_t h = dt_float_to_bf16(v);
        ((uint16_t *)buf)[i] = h;
        return dt_bf16_to_float(h);
    }
    ((float *)buf)[i] = v;
    return v;
}

static inline float get(const void *buf, int dtype, size_t i)
{
    if (dtype == DUCTILE_FLOAT16) return dt_half_to_float(((const uint16_t *)buf)[i]);
    if (dtype == DUCTILE_BFLOAT16) return dt_bf16_to_float(((const uint16_t *)buf)[i]);
    return ((const float *)buf)[i];
}

static unsigned seed = 12345;
static inline float rnd(void)
{
    seed = seed * 1103515245u + 12345u;
    return (float)((seed >> 8) % 2001) / 1000.0f - 1.0f;
}

/* Index of [n, c, h, w] in NCHW or NHWC. */
static inline size_t at(bool nhwc, int64_t n, int64_t c, int64_t h, int64_t w, int64_t C, int64_t H, int64_t W)
{
    return (size_t)(nhwc ? ((n * H + h) * W + w) * C + c : ((n * C + c) * H + h) * W + w);
}

/* A device buffer of `bytes`, holding host's bytes (host NULL: uninitialised). A failed call
 * would stay cudaGetLastError's answer and fail the next launch's check. */
static inline void *dev_copy(const void *host, size_t bytes)
{
    void *d = NULL;
    if (cudaMalloc(&d, bytes ? bytes : 1) != cudaSuccess) return NULL;
    if (host && bytes && cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice) != cudaSuccess) {
        cudaFree(d);
        return NULL;
    }
    return d;
}

/* The activations the tests give the kernels: Clip(-0.3, 0.6), HardSwish(1/6, 0.5) (dt_cu_conv's
 * p0, p1 as test_bufs_params sets them). */
static inline float act_ref(int op, float x)
{
    switch (op) {
    case DT_CU_RELU: return x > 0.f ? x : 0.f;
    case DT_CU_SIGMOID: return 1.f / (1.f + expf(-x));
    case DT_CU_CLIP: return fminf(fmaxf(x, -0.3f), 0.6f);
    case DT_CU_HARDSWISH: return x * fmaxf(0.f, fminf(1.f, x / 6.f + 0.5f));
    }
    return x;
}

/* p0, p1 of act for the kernels, as act_ref computes it. */
static inline void test_bufs_params(int act, float *p0, float *p1)
{
    *p0 = act == DT_CU_CLIP ? -0.3f : 1.f / 6.f;
    *p1 = act == DT_CU_CLIP ? 0.6f : 0.5f;
}

#endif
