/* Execute on the CUDA backend allocates nothing once the context planned its shapes (GPU only;
 * skips with "no CUDA device found"; suite models from $DUCTILE_MODELS, skipped when absent).
 * The workflow is TensorRT's: set_input_shape, get_tensor_shape of every output (which plans:
 * shape pass, arena, scratch, and the kernels' plan_shapes, which make the cuDNN / cuBLASLt
 * descriptors and algorithms in the context's state and size their workspace into the
 * context's scratch: backend.h), then execute. Engines in float32 and FP16, CUDA graphs off:
 *   (i) the first execute after planning, (ii) the next executes, (iii) a shape change back and
 *   forth between two sets of shapes of the profile (planned by get_tensor_shape each time;
 *   each execute counted);
 * and graphs on: replays after the record (recording a new execution key is the documented
 * exception: the first run at a key remembers it and the second captures, which allocates in
 * CUDA and in ductile; runtime/graphs.h).
 *
 * What is counted, by interposing symbols in this binary (libductile.a is linked statically,
 * so the library's calls land here; this test links the shared libcudart, whose functions
 * these forward to with dlsym(RTLD_NEXT), and wraps ductile's calls of cuDNN and cuBLASLt,
 * which reach them through the stubs of backend/cuda/dynload.c):
 *   - malloc, calloc, realloc, free, posix_memalign, aligned_alloc, memalign called from
 *     ductile's code (the return address lies in this binary's text): must be 0;
 *   - cudaMalloc, cudaMallocAsync, cudaMallocHost, cudaHostAlloc, cudaMallocManaged called
 *     from ductile's code: must be 0;
 *   - library objects and heuristics the CUDA kernels make when planning (cuDNN descriptors and
 *     its algorithm query, cuBLASLt descriptors, preferences and heuristic): must be 0; these
 *     allocate inside the libraries, where the return address does not tell ductile's calls;
 *   - every allocator call of the process while execute runs (CUDA's driver and the libraries
 *     included: the driver loads a kernel's module on its first launch): printed, not
 *     asserted, since it is not ductile's to change.
 * Not built with sanitizers, which own malloc. */
#include "cuda_probe.h"
#include "testutil.h"

#include "ductile.h"
#include "backend/backend.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DT_NO_INTERPOSE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define DT_NO_INTERPOSE 1
#endif
#endif

#if defined(DT_WITH_CUDA) && !defined(DT_NO_INTERPOSE)
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <dlfcn.h>

/* ---- counting ---- */

enum { C_ALL, C_OWN, C_DEV, C_OBJ, C_N };
static const char *const count_names[C_N] = {"allocator calls (process)", "allocator calls (ductile)",
                                             "device allocations (ductile)", "library objects made (ductile)"};
static atomic_int counting;
static atomic_long counts[C_N];

/* This binary's text: ductile's code (and the test's, which allocates nothing while counting). */
extern char __executable_start[], etext[];
static bool from_ductile(const void *ra) { return (const char *)ra >= __executable_start && (const char *)ra < etext; }

static void count_alloc(const void *ra)
{
    if (!atomic_load_explicit(&counting, memory_order_relaxed)) return;
    atomic_fetch_add(&counts[C_ALL], 1);
    if (from_ductile(ra)) atomic_fetch_add(&counts[C_OWN], 1);
}

static void count_as(int what, const void *ra)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed) && from_ductile(ra)) atomic_fetch_add(&counts[what], 1);
}

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

void *malloc(size_t n)
{
    count_alloc(__builtin_return_address(0));
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    count_alloc(__builtin_return_address(0));
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    count_alloc(__builtin_return_address(0));
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (p) count_alloc(__builtin_return_address(0));
    __libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    count_alloc(__builtin_return_address(0));
    void *p = __libc_memalign(align, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    count_alloc(__builtin_return_address(0));
    return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
    count_alloc(__builtin_return_address(0));
    return __libc_memalign(align, n);
}

/* A function of a shared library, counted as `what` when ductile calls it, then forwarded.
 * The first call of each (resolving it) happens while building, before anything counts. */
#define FORWARD(what, ret, name, params, args)                               \
    ret name params                                                          \
    {                                                                        \
        count_as(what, __builtin_return_address(0));                         \
        static ret(*real) params;                                            \
        if (!real) *(void **)&real = dlsym(RTLD_NEXT, #name);                \
        return real args;                                                    \
    }

FORWARD(C_DEV, cudaError_t, cudaMalloc, (void **p, size_t n), (p, n))
FORWARD(C_DEV, cudaError_t, cudaMallocAsync, (void **p, size_t n, cudaStream_t s), (p, n, s))
FORWARD(C_DEV, cudaError_t, cudaMallocHost, (void **p, size_t n), (p, n))
FORWARD(C_DEV, cudaError_t, cudaHostAlloc, (void **p, size_t n, unsigned int f), (p, n, f))
FORWARD(C_DEV, cudaError_t, cudaMallocManaged, (void **p, size_t n, unsigned int f), (p, n, f))

/* A cuDNN / cuBLASLt function, counted as `what` when ductile calls it, then passed to its
 * stub (dynload.c): the Makefile links this test with -Wl,--wrap=NAME for each WRAP(C_OBJ,
 * line below, so ductile's calls of NAME reach __wrap_NAME and __real_NAME is the stub. */
#define WRAP(what, ret, name, params, args)                                  \
    ret __real_##name params;                                                \
    ret __wrap_##name params                                                 \
    {                                                                        \
        count_as(what, __builtin_return_address(0));                         \
        return __real_##name args;                                           \
    }

WRAP(C_OBJ, cudnnStatus_t, cudnnCreateTensorDescriptor, (cudnnTensorDescriptor_t * d), (d))
WRAP(C_OBJ, cudnnStatus_t, cudnnCreateFilterDescriptor, (cudnnFilterDescriptor_t * d), (d))
WRAP(C_OBJ, cudnnStatus_t, cudnnCreateConvolutionDescriptor, (cudnnConvolutionDescriptor_t * d), (d))
WRAP(C_OBJ, cudnnStatus_t, cudnnCreateActivationDescriptor, (cudnnActivationDescriptor_t * d), (d))
WRAP(C_OBJ, cudnnStatus_t, cudnnGetConvolutionForwardAlgorithm_v7,
     (cudnnHandle_t h, const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
      const cudnnConvolutionDescriptor_t c, const cudnnTensorDescriptor_t y, const int n, int *got,
      cudnnConvolutionFwdAlgoPerf_t *perf),
     (h, x, w, c, y, n, got, perf))
WRAP(C_OBJ, cublasStatus_t, cublasLtMatmulDescCreate,
     (cublasLtMatmulDesc_t * d, cublasComputeType_t c, cudaDataType_t s), (d, c, s))
WRAP(C_OBJ, cublasStatus_t, cublasLtMatrixLayoutCreate,
     (cublasLtMatrixLayout_t * l, cudaDataType t, uint64_t r, uint64_t c, int64_t ld), (l, t, r, c, ld))
WRAP(C_OBJ, cublasStatus_t, cublasLtMatmulPreferenceCreate, (cublasLtMatmulPreference_t * p), (p))
WRAP(C_OBJ, cublasStatus_t, cublasLtMatmulAlgoGetHeuristic,
     (cublasLtHandle_t h, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
      cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d, cublasLtMatmulPreference_t pref, int n,
      cublasLtMatmulHeuristicResult_t *res, int *got),
     (h, op, a, b, c, d, pref, n, res, got))

static void count_start(void)
{
    for (int i = 0; i < C_N; i++) atomic_store(&counts[i], 0);
    atomic_store(&counting, 1);
}

/* Stops counting; checks ductile's counts are 0 and prints the process's. */
static void count_check(const char *model, const char *what)
{
    atomic_store(&counting, 0);
    long n[C_N];
    for (int i = 0; i < C_N; i++) n[i] = atomic_load(&counts[i]);
    printf("%-32s %-44s process allocator calls %ld\n", model, what, n[C_ALL]);
    for (int i = C_OWN; i < C_N; i++) {
        if (n[i]) fprintf(stderr, "%s, %s: %ld %s\n", model, what, n[i], count_names[i]);
        CHECK_EQ_INT(n[i], 0);
    }
}

/* ---- the models ---- */

typedef struct cuda_case {
    const char *file;
    int n_in;
    const char *names[2];
    ductile_dims a[2], b[2];    /* the two sets of shapes: the profile's min (and opt) and max */
} cuda_case;

static const cuda_case cases[] = {
    {"mobilenet_v2.onnx", 1, {"input"}, {{4, {1, 3, 224, 224}}}, {{4, {4, 3, 224, 224}}}},
    {"bert_small.onnx", 2, {"input_ids", "attention_mask"}, {{2, {1, 16}}, {2, {1, 16}}}, {{2, {2, 48}}, {2, {2, 48}}}},
    {"superres.onnx", 1, {"input"}, {{4, {1, 1, 64, 64}}}, {{4, {1, 1, 96, 120}}}},
};

/* flag: -1 float32, else a ductile_builder_flag (FP16). */
static ductile_engine *build(const char *dir, const cuda_case *mc, int flag)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, mc->file);
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_profile *p = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    bool ok = !ductile_builder_create(&b) && !ductile_network_create(b, &net) && !ductile_onnx_parse_file(net, path) &&
              !ductile_profile_create(b, &p) && !ductile_config_create(b, &cfg);
    for (int i = 0; ok && i < mc->n_in; i++) ok = !ductile_profile_set_shape(p, mc->names[i], &mc->a[i], &mc->a[i], &mc->b[i]);
    ok = ok && (flag < 0 || !ductile_config_set_flag(cfg, (ductile_builder_flag)flag, 1)) &&
         !ductile_config_set_device(cfg, "cuda") && !ductile_config_add_profile(cfg, p, NULL) &&
         !ductile_builder_build(b, net, cfg, &e);
    if (!ok) fprintf(stderr, "%s: %s\n", mc->file, ductile_last_error());
    ductile_config_free(cfg);
    ductile_profile_free(p);
    ductile_network_free(net);
    ductile_builder_free(b);
    return ok ? e : NULL;
}

/* Plans the shapes (set_input_shape, get_tensor_shape of every output) and zeroes the inputs
 * (their device buffers may have moved: a larger set of shapes grows them). Not counted. */
static void plan(ductile_engine *e, ductile_context *c, const cuda_case *mc, const ductile_dims *dims)
{
    for (int i = 0; i < mc->n_in; i++) CHECK_EQ_INT(ductile_context_set_input_shape(c, mc->names[i], &dims[i]), DUCTILE_OK);
    for (int32_t i = 0; i < ductile_engine_num_io_tensors(e); i++) {
        const char *name = ductile_engine_io_tensor_name(e, i);
        if (ductile_engine_is_input(e, name) != 0) continue;
        ductile_dims d;
        CHECK_EQ_INT(ductile_context_get_tensor_shape(c, name, &d), DUCTILE_OK);
    }
    for (int i = 0; i < mc->n_in; i++) {
        void *p = NULL;
        CHECK_EQ_INT(ductile_context_get_tensor_address(c, mc->names[i], &p), DUCTILE_OK);
        size_t bytes = ductile_dtype_size(ductile_engine_tensor_dtype(e, mc->names[i]));
        for (int d = 0; d < dims[i].nb_dims; d++) bytes *= (size_t)dims[i].d[d];
        CHECK(p != NULL && cudaMemset(p, 0, bytes) == cudaSuccess);
    }
    CHECK(cudaDeviceSynchronize() == cudaSuccess);
}

static void counted_executes(ductile_context *c, const char *model, const char *what, int n)
{
    ductile_status s = DUCTILE_OK;
    count_start();
    for (int i = 0; i < n && !s; i++) s = ductile_context_execute(c);
    count_check(model, what);
    if (s) fprintf(stderr, "%s, %s: %s\n", model, what, ductile_last_error());
    CHECK_EQ_INT(s, DUCTILE_OK);
}

static void uncounted_executes(ductile_context *c, int n)
{
    for (int i = 0; i < n; i++) CHECK_EQ_INT(ductile_context_execute(c), DUCTILE_OK);
}

static void check_model(const char *dir, const cuda_case *mc, int flag)
{
    ductile_engine *e = build(dir, mc, flag);
    CHECK(e != NULL);
    if (!e) return;
    char model[80];
    snprintf(model, sizeof model, "%s %s", mc->file, flag == DUCTILE_FLAG_FP16 ? "fp16" : "fp32");
    /* Graphs off: every execute runs the kernels one by one. */
    ductile_context *c = NULL;
    CHECK_EQ_INT(ductile_context_create(e, &c), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_cuda_graphs(c, 0), DUCTILE_OK);
    plan(e, c, mc, mc->a);
    counted_executes(c, model, "graphs off: first execute after planning", 1);
    counted_executes(c, model, "graphs off: next two executes", 2);
    plan(e, c, mc, mc->b);
    counted_executes(c, model, "graphs off: execute at the other shapes", 1);
    plan(e, c, mc, mc->a);
    counted_executes(c, model, "graphs off: execute back at the first", 1);
    plan(e, c, mc, mc->b);
    counted_executes(c, model, "graphs off: execute at the other again", 1);
    ductile_context_free(c);
    /* Graphs on: two runs at a new key record it (not counted), then replays. */
    c = NULL;
    CHECK_EQ_INT(ductile_context_create(e, &c), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_cuda_graphs(c, 16), DUCTILE_OK);
    const ductile_dims *sets[3] = {mc->a, mc->b, mc->a};
    for (int k = 0; k < 3; k++) {
        plan(e, c, mc, sets[k]);
        uncounted_executes(c, 2);
        counted_executes(c, model, k == 1 ? "graphs on: replays at the other shapes" : "graphs on: replays", 2);
    }
    ductile_context_free(c);
    ductile_engine_free(e);
}

int main(void)
{
    if (!test_cuda_device_found()) {
        fprintf(stderr, "skipped: no CUDA device found\n");
        TEST_MAIN_END();
    }
    const char *dir = getenv("DUCTILE_MODELS");
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/mobilenet_v2.onnx", dir ? dir : "../shared/models");
    FILE *f = fopen(probe, "rb");
    if (!f) {
        fprintf(stderr, "skipped: the model suite is not at %s (set DUCTILE_MODELS)\n", probe);
        TEST_MAIN_END();
    }
    fclose(f);
    for (size_t m = 0; m < sizeof cases / sizeof cases[0]; m++) {
        /* a suite model missing from the folder (a partial copy) skips, saying so */
        snprintf(probe, sizeof probe, "%s/%s", dir ? dir : "../shared/models", cases[m].file);
        if (!(f = fopen(probe, "rb"))) {
            fprintf(stderr, "skipped %s: not found\n", probe);
            continue;
        }
        fclose(f);
        check_model(dir ? dir : "../shared/models", &cases[m], -1);
        check_model(dir ? dir : "../shared/models", &cases[m], DUCTILE_FLAG_FP16);
    }
    TEST_MAIN_END();
}

#else

int main(void)
{
#ifdef DT_NO_INTERPOSE
    printf("SKIP: a sanitizer owns malloc\n");
#else
    fprintf(stderr, "skipped: no CUDA device found (this build has no CUDA backend)\n");
#endif
    TEST_MAIN_END();
}

#endif
