/* Host buffers of the CUDA kernel tests (test_cuda_dw.c, test_cuda_pw_mma.c): values rounded to
 * the device's element type as they are stored, a small deterministic generator, NCHW / NHWC
 * indexing, device copies, a conv's operands and the rel-L2 against a reference. */
#ifndef DT_TEST_CUDA_BUFS_H
#define DT_TEST_CUDA_BUFS_H

#include "backend/cpu/elementwise_impl.h"
#include "backend/cuda/cuda.h"
#include "ductile.h"

#include <cuda_runtime_api.h>

#include <stdbool.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

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

/* The operands of a conv kernel test: float copies of x, w, bias, residual (the values the
 * device holds, as the reference reads them), their dtype images on the host (hy receives the
 * output) and on the device. conv_bufs_upload copies them over and fills dy with NaN (a missed
 * output shows); false when the device refused memory. */
typedef struct conv_bufs {
    size_t nx, nw, nb, ny, es;
    float *x, *w, *b, *r;
    void *hx, *hw, *hb, *hr, *hy;
    void *dx, *dw, *db, *dr, *dy;
} conv_bufs;

static inline void conv_bufs_alloc(conv_bufs *t, int dtype, size_t nx, size_t nw, size_t nb, size_t ny)
{
    size_t es = dtype == DUCTILE_FLOAT32 ? 4 : 2;
    *t = (conv_bufs){.nx = nx, .nw = nw, .nb = nb, .ny = ny, .es = es};
    t->x = malloc(nx * sizeof(float)), t->w = malloc(nw * sizeof(float)), t->b = malloc(nb * sizeof(float));
    t->r = malloc(ny * sizeof(float));
    t->hx = malloc(nx * es), t->hw = malloc(nw * es), t->hb = malloc(nb * es), t->hr = malloc(ny * es);
    t->hy = malloc(ny * es);
}

static inline bool conv_bufs_upload(conv_bufs *t)
{
    t->dx = dev_copy(t->hx, t->nx * t->es), t->dw = dev_copy(t->hw, t->nw * t->es);
    t->db = dev_copy(t->hb, t->nb * t->es), t->dr = dev_copy(t->hr, t->ny * t->es), t->dy = dev_copy(NULL, t->ny * t->es);
    if (!t->dx || !t->dw || !t->db || !t->dr || !t->dy) return false;
    cudaMemset(t->dy, 0xff, t->ny * t->es);
    return true;
}

/* hy <- dy after the kernel (waits for the device). cudaError_t of the wait. */
static inline int conv_bufs_download(conv_bufs *t)
{
    int rc = (int)cudaDeviceSynchronize();
    cudaMemcpy(t->hy, t->dy, t->ny * t->es, cudaMemcpyDeviceToHost);
    return rc;
}

static inline void conv_bufs_free(conv_bufs *t)
{
    cudaFree(t->dx), cudaFree(t->dw), cudaFree(t->db), cudaFree(t->dr), cudaFree(t->dy);
    free(t->x), free(t->w), free(t->b), free(t->r), free(t->hx), free(t->hw), free(t->hb), free(t->hr), free(t->hy);
}

/* rel-L2 of outputs against a reference, summed one element at a time (NaN stays NaN: fails). */
typedef struct rel_err {
    double num, den;
} rel_err;

static inline void rel_err_add(rel_err *e, double got, double want)
{
    e->num += (got - want) * (got - want);
    e->den += want * want;
}

static inline double rel_err_of(const rel_err *e) { return e->den > 0 ? sqrt(e->num / e->den) : sqrt(e->num); }

#endif
