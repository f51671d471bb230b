/* The CUDA backend's table: device memory, copies and syncs on the caller's stream, the GPU
 * found lazily (never at library load: the library loads and runs on machines without a GPU
 * or even without a driver), and per-context cuDNN / cuBLASLt handles. */
#include "backend/cuda/conv_own.h"
#include "backend/cuda/cuda.h"
#include "core/alloc.h"
#include "core/status.h"

#include <cuda_runtime_api.h>
#include <cublasLt.h>
#include <cudnn.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ductile_status dt_cuda_check(int err, const char *what)
{
    if (err == cudaSuccess) return DUCTILE_OK;
    cudaGetLastError(); /* clear a sticky launch error so the next call starts clean */
    if (err == cudaErrorMemoryAllocation)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "%s: out of GPU memory", what);
    return dt_fail(DUCTILE_ERR_INTERNAL, "%s: CUDA error %d (%s)", what, err, cudaGetErrorString((cudaError_t)err));
}

/* ---- the device, found once ---- */

static pthread_once_t dt_cuda_once = PTHREAD_ONCE_INIT;
static bool dt_cuda_found;
static dt_device_info dt_cuda_dev;
static uint64_t dt_cuda_global_mem;

static void dt_cuda_probe(void)
{
    int n = 0;
    /* cudaErrorNoDevice, cudaErrorInsufficientDriver (no driver at all) and the like all mean
     * the same to a user: nothing to run on. */
    if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1) {
        cudaGetLastError();
        return;
    }
    struct cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
        cudaGetLastError();
        return;
    }
    snprintf(dt_cuda_dev.name, sizeof dt_cuda_dev.name, "%.95s", p.name);
    dt_cuda_dev.cc_major = p.major;
    dt_cuda_dev.cc_minor = p.minor;
    dt_cuda_global_mem = (uint64_t)p.totalGlobalMem;
    dt_cuda_found = true;
}

/* The first call that finds a GPU loads cuBLASLt and cuDNN (never without one: a CPU-only
 * process asking for "cuda" maps neither); both are needed before anything is built or run. */
static ductile_status dt_cuda_device(dt_device_info *info)
{
    pthread_once(&dt_cuda_once, dt_cuda_probe);
    if (!dt_cuda_found) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "no CUDA device found");
    DT_TRY(dt_cuda_libs_load());
    *info = dt_cuda_dev;
    return DUCTILE_OK;
}

/* The GPU's global memory: the builder's default workspace limit (0: no GPU, no bound). */
static uint64_t dt_cuda_memory_size(void)
{
    pthread_once(&dt_cuda_once, dt_cuda_probe);
    return dt_cuda_found ? dt_cuda_global_mem : 0;
}

/* ---- memory ---- */

static void *dt_cuda_alloc(size_t bytes)
{
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    return p;
}

static void dt_cuda_release(void *p) { cudaFree(p); }

/* cudaMemcpyDefault: the pointers say the direction (unified addressing), so host buffers of
 * the caller and the device's own go through one call. */
static ductile_status dt_cuda_copy(void *dst, const void *src, size_t bytes, void *stream)
{
    return dt_cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, (cudaStream_t)stream), "copy");
}

static ductile_status dt_cuda_sync(void *stream)
{
    return dt_cuda_check(cudaStreamSynchronize((cudaStream_t)stream), "stream synchronize");
}

static bool dt_cuda_owns_pointer(const void *p)
{
    struct cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

/* ---- per-context state ---- */

void dt_cuda_plan_release(dt_cuda_plan *p)
{
    if (p->kind == 1) {
        if (p->desc[0]) cudnnDestroyTensorDescriptor(p->desc[0]);
        if (p->desc[1]) cudnnDestroyTensorDescriptor(p->desc[1]);
        if (p->desc[2]) cudnnDestroyFilterDescriptor(p->desc[2]);
        if (p->desc[3]) cudnnDestroyConvolutionDescriptor(p->desc[3]);
        if (p->desc[4]) cudnnDestroyTensorDescriptor(p->desc[4]);
        if (p->desc[5]) cudnnDestroyActivationDescriptor(p->desc[5]);
    } else if (p->kind == 2) {
        if (p->desc[0]) cublasLtMatmulDescDestroy(p->desc[0]);
        for (int i = 1; i < 4; i++)
            if (p->desc[i]) cublasLtMatrixLayoutDestroy(p->desc[i]);
    }
    memset(p, 0, sizeof *p);
}

static size_t dt_plans_home(const ductile_layer *L, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)L * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (cap - 1);
}

/* The table's entry for L, or the empty entry where it would go. */
static dt_cuda_layer_plans *dt_plans_find(dt_cuda_layer_plans *t, size_t cap, const ductile_layer *L)
{
    size_t i = dt_plans_home(L, cap);
    while (t[i].layer && t[i].layer != L) i = (i + 1) & (cap - 1);
    return &t[i];
}

static bool dt_plans_grow(dt_cuda_state *st)
{
    size_t cap = st->plans_cap ? st->plans_cap * 2 : 64;
    dt_cuda_layer_plans *t = dt_calloc(cap, sizeof *t);
    if (!t) return false;
    for (size_t i = 0; i < st->plans_cap; i++)
        if (st->plans[i].layer) *dt_plans_find(t, cap, st->plans[i].layer) = st->plans[i];
    dt_free(st->plans);
    st->plans = t;
    st->plans_cap = cap;
    return true;
}

dt_cuda_plan *dt_cuda_plan_slot(dt_cuda_state *st, const ductile_layer *L, const int64_t *key, bool *hit)
{
    *hit = false;
    dt_cuda_layer_plans *lp = st->plans_cap ? dt_plans_find(st->plans, st->plans_cap, L) : NULL;
    if (!lp || !lp->layer) {
        /* Grows only to add a layer: a lookup of a layer the table holds never allocates. */
        if (2 * (st->plans_used + 1) > st->plans_cap) {
            if (!dt_plans_grow(st)) return NULL;
            lp = dt_plans_find(st->plans, st->plans_cap, L);
        }
        lp->layer = L;
        st->plans_used++;
    }
    for (int w = 0; w < DT_CUDA_WAYS; w++)
        if (lp->way[w].used && memcmp(lp->way[w].key, key, sizeof lp->way[w].key) == 0) {
            *hit = true;
            return &lp->way[w];
        }
    dt_cuda_plan *p = &lp->way[lp->next++ % DT_CUDA_WAYS];
    dt_cuda_plan_release(p);
    p->used = true;
    memcpy(p->key, key, sizeof p->key);
    return p;
}

ductile_status dt_cuda_plan_failed(dt_cuda_plan *p, ductile_status s)
{
    if (s != DUCTILE_ERR_UNSUPPORTED) {
        dt_cuda_plan_release(p);
        return s;
    }
    int64_t key[DT_CUDA_KEY];
    memcpy(key, p->key, sizeof key);
    dt_cuda_plan_release(p);
    p->used = true;
    p->refused = true;
    memcpy(p->key, key, sizeof key);
    snprintf(p->why, sizeof p->why, "%s", dt_last_error());
    return s;
}

ductile_status dt_cuda_plan_status(const dt_cuda_plan *p)
{
    return p->refused ? dt_fail(DUCTILE_ERR_UNSUPPORTED, "%s", p->why) : DUCTILE_OK;
}

static void dt_cuda_state_free(void *p)
{
    dt_cuda_state *st = p;
    if (!st) return;
    for (size_t i = 0; i < st->plans_cap; i++)
        for (int w = 0; w < DT_CUDA_WAYS; w++) dt_cuda_plan_release(&st->plans[i].way[w]);
    dt_free(st->plans);
    if (st->cudnn) cudnnDestroy((cudnnHandle_t)st->cudnn);
    if (st->lt) cublasLtDestroy((cublasLtHandle_t)st->lt);
    if (st->ws) cudaFree(st->ws);
    if (st->capture) cudaStreamDestroy((cudaStream_t)st->capture);
    dt_cuda_timer_free(st);
    dt_free(st);
}

static ductile_status dt_cuda_state_create(void **out)
{
    *out = NULL;
    DT_TRY(dt_cuda_libs_load());
    dt_cuda_state *st = dt_calloc(1, sizeof *st);
    if (!st || !dt_plans_grow(st)) {
        dt_free(st);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory creating a CUDA context");
    }
    cudnnHandle_t h = NULL;
    cublasLtHandle_t lt = NULL;
    cudnnStatus_t cs = cudnnCreate(&h);
    st->cudnn = h;
    if (cs != CUDNN_STATUS_SUCCESS) {
        dt_cuda_state_free(st);
        return dt_fail(DUCTILE_ERR_INTERNAL, "cuDNN: %s", cudnnGetErrorString(cs));
    }
    cublasStatus_t bs = cublasLtCreate(&lt);
    st->lt = lt;
    if (bs != CUBLAS_STATUS_SUCCESS) {
        dt_cuda_state_free(st);
        return dt_fail(DUCTILE_ERR_INTERNAL, "cuBLASLt: cannot create a handle (status %d)", (int)bs);
    }
    *out = st;
    return DUCTILE_OK;
}

ductile_status dt_cuda_workspace(dt_cuda_state *st, size_t bytes)
{
    if (st->ws_cap >= bytes) return DUCTILE_OK;
    void *p = dt_cuda_alloc(bytes);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of GPU memory (%zu bytes) for a workspace", bytes);
    /* The old workspace may still be read by queued work: free waits for nothing, so sync. */
    if (st->ws) {
        cudaDeviceSynchronize();
        cudaFree(st->ws);
    }
    st->ws = p;
    st->ws_cap = bytes;
    return DUCTILE_OK;
}

/* Reached through the registry (backend/backends.c). */
const dt_backend *dt_backend_cuda(void);
const dt_backend *dt_backend_cuda(void)
{
    static const dt_backend cuda = {
        .name = "cuda",
        .kernel = dt_cuda_kernel,
        .supports = dt_cuda_supports,
        .tactics = dt_cuda_tactics,
        .prefers_nhwc = dt_cuda_prefers_nhwc,
        .writes_d2s = dt_cuda_writes_d2s,
        .kernel_path = dt_cuda_kernel_path,
        .alloc = dt_cuda_alloc,
        .release = dt_cuda_release,
        .copy = dt_cuda_copy,
        .sync = dt_cuda_sync,
        .memory_size = dt_cuda_memory_size,
        .host_memory = false,
        .precisions = (1u << DUCTILE_FLAG_FP16) | (1u << DUCTILE_FLAG_BF16) | (1u << DUCTILE_FLAG_TF32),
        .device = dt_cuda_device,
        .owns_pointer = dt_cuda_owns_pointer,
        .state_create = dt_cuda_state_create,
        .state_free = dt_cuda_state_free,
        .state_memory = dt_cuda_state_memory,
        .capture_begin = dt_cuda_capture_begin,
        .capture_end = dt_cuda_capture_end,
        .graph_launch = dt_cuda_graph_launch,
        .graph_free = dt_cuda_graph_free,
        .timer_mark = dt_cuda_timer_mark,
        .timer_seconds = dt_cuda_timer_seconds,
    };
    return &cuda;
}
