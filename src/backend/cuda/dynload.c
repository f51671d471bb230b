/* cuBLASLt and cuDNN, loaded with dlopen on the CUDA backend's first use (a GPU found), not
 * at library load: a program that only runs CPU engines never maps them (about 150 MB of
 * resident memory and their load time). This file DEFINES every cuBLASLt / cuDNN function the
 * backend calls, with the headers' names and signatures (the compiler checks them against the
 * headers), each forwarding through a pointer that dt_cuda_libs_load resolves once; so the
 * call sites stay plain cuDNN / cuBLASLt. The library links neither, so a call added elsewhere
 * without a line here fails at link time (-Wl,-z,defs), not at run time. */
#include "backend/cuda/cuda.h"
#include "core/status.h"

#include <cublasLt.h>
#include <cudnn.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DT_STR_(x) #x
#define DT_STR(x) DT_STR_(x)

/* X(return type, name, (parameters), (arguments)): the functions of each library used. */
#define DT_CUBLASLT_FUNCS(X)                                                                                           \
    X(cublasStatus_t, cublasLtCreate, (cublasLtHandle_t * h), (h))                                                     \
    X(cublasStatus_t, cublasLtDestroy, (cublasLtHandle_t h), (h))                                                      \
    X(cublasStatus_t, cublasLtMatmul,                                                                                  \
      (cublasLtHandle_t h, cublasLtMatmulDesc_t op, const void *alpha, const void *A, cublasLtMatrixLayout_t Adesc,    \
       const void *B, cublasLtMatrixLayout_t Bdesc, const void *beta, const void *C, cublasLtMatrixLayout_t Cdesc,      \
       void *D, cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t *algo, void *ws, size_t ws_bytes,             \
       cudaStream_t stream),                                                                                           \
      (h, op, alpha, A, Adesc, B, Bdesc, beta, C, Cdesc, D, Ddesc, algo, ws, ws_bytes, stream))                        \
    X(cublasStatus_t, cublasLtMatmulAlgoGetHeuristic,                                                                  \
      (cublasLtHandle_t h, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,        \
       cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc, cublasLtMatmulPreference_t pref, int requested,     \
       cublasLtMatmulHeuristicResult_t results[], int *returned),                                                      \
      (h, op, Adesc, Bdesc, Cdesc, Ddesc, pref, requested, results, returned))                                         \
    X(cublasStatus_t, cublasLtMatmulDescCreate, (cublasLtMatmulDesc_t * d, cublasComputeType_t c, cudaDataType_t s),  \
      (d, c, s))                                                                                                       \
    X(cublasStatus_t, cublasLtMatmulDescDestroy, (cublasLtMatmulDesc_t d), (d))                                        \
    X(cublasStatus_t, cublasLtMatmulDescSetAttribute,                                                                  \
      (cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void *buf, size_t n), (d, a, buf, n))           \
    X(cublasStatus_t, cublasLtMatmulPreferenceCreate, (cublasLtMatmulPreference_t * p), (p))                           \
    X(cublasStatus_t, cublasLtMatmulPreferenceDestroy, (cublasLtMatmulPreference_t p), (p))                            \
    X(cublasStatus_t, cublasLtMatmulPreferenceSetAttribute,                                                            \
      (cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t a, const void *buf, size_t n),               \
      (p, a, buf, n))                                                                                                  \
    X(cublasStatus_t, cublasLtMatrixLayoutCreate,                                                                      \
      (cublasLtMatrixLayout_t * l, cudaDataType t, uint64_t rows, uint64_t cols, int64_t ld), (l, t, rows, cols, ld))  \
    X(cublasStatus_t, cublasLtMatrixLayoutDestroy, (cublasLtMatrixLayout_t l), (l))                                    \
    X(cublasStatus_t, cublasLtMatrixLayoutSetAttribute,                                                                \
      (cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t a, const void *buf, size_t n), (l, a, buf, n))

#define DT_CUDNN_FUNCS(X)                                                                                              \
    X(cudnnStatus_t, cudnnConvolutionBiasActivationForward,                                                            \
      (cudnnHandle_t h, const void *alpha1, const cudnnTensorDescriptor_t xd, const void *x,                           \
       const cudnnFilterDescriptor_t wd, const void *w, const cudnnConvolutionDescriptor_t cd,                         \
       cudnnConvolutionFwdAlgo_t algo, void *ws, size_t ws_bytes, const void *alpha2, const cudnnTensorDescriptor_t zd, \
       const void *z, const cudnnTensorDescriptor_t bd, const void *bias, const cudnnActivationDescriptor_t ad,         \
       const cudnnTensorDescriptor_t yd, void *y),                                                                     \
      (h, alpha1, xd, x, wd, w, cd, algo, ws, ws_bytes, alpha2, zd, z, bd, bias, ad, yd, y))                           \
    X(cudnnStatus_t, cudnnConvolutionForward,                                                                          \
      (cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd, const void *x,                            \
       const cudnnFilterDescriptor_t wd, const void *w, const cudnnConvolutionDescriptor_t cd,                         \
       cudnnConvolutionFwdAlgo_t algo, void *ws, size_t ws_bytes, const void *beta, const cudnnTensorDescriptor_t yd,  \
       void *y),                                                                                                       \
      (h, alpha, xd, x, wd, w, cd, algo, ws, ws_bytes, beta, yd, y))                                                   \
    X(cudnnStatus_t, cudnnCreate, (cudnnHandle_t * h), (h))                                                            \
    X(cudnnStatus_t, cudnnCreateActivationDescriptor, (cudnnActivationDescriptor_t * d), (d))                          \
    X(cudnnStatus_t, cudnnCreateConvolutionDescriptor, (cudnnConvolutionDescriptor_t * d), (d))                        \
    X(cudnnStatus_t, cudnnCreateFilterDescriptor, (cudnnFilterDescriptor_t * d), (d))                                  \
    X(cudnnStatus_t, cudnnCreateTensorDescriptor, (cudnnTensorDescriptor_t * d), (d))                                  \
    X(cudnnStatus_t, cudnnDestroy, (cudnnHandle_t h), (h))                                                             \
    X(cudnnStatus_t, cudnnDestroyActivationDescriptor, (cudnnActivationDescriptor_t d), (d))                           \
    X(cudnnStatus_t, cudnnDestroyConvolutionDescriptor, (cudnnConvolutionDescriptor_t d), (d))                         \
    X(cudnnStatus_t, cudnnDestroyFilterDescriptor, (cudnnFilterDescriptor_t d), (d))                                   \
    X(cudnnStatus_t, cudnnDestroyTensorDescriptor, (cudnnTensorDescriptor_t d), (d))                                   \
    X(cudnnStatus_t, cudnnGetConvolutionForwardAlgorithm_v7,                                                           \
      (cudnnHandle_t h, const cudnnTensorDescriptor_t xd, const cudnnFilterDescriptor_t wd,                            \
       const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t yd, const int requested, int *returned,    \
       cudnnConvolutionFwdAlgoPerf_t *perf),                                                                           \
      (h, xd, wd, cd, yd, requested, returned, perf))                                                                  \
    X(cudnnStatus_t, cudnnGetConvolutionForwardWorkspaceSize,                                                          \
      (cudnnHandle_t h, const cudnnTensorDescriptor_t xd, const cudnnFilterDescriptor_t wd,                            \
       const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t yd, cudnnConvolutionFwdAlgo_t algo,        \
       size_t *bytes),                                                                                                 \
      (h, xd, wd, cd, yd, algo, bytes))                                                                                \
    X(cudnnStatus_t, cudnnSetActivationDescriptor,                                                                     \
      (cudnnActivationDescriptor_t d, cudnnActivationMode_t mode, cudnnNanPropagation_t nan, double coef),             \
      (d, mode, nan, coef))                                                                                            \
    X(cudnnStatus_t, cudnnSetConvolution2dDescriptor,                                                                  \
      (cudnnConvolutionDescriptor_t d, int ph, int pw, int u, int v, int dh, int dw, cudnnConvolutionMode_t mode,      \
       cudnnDataType_t compute),                                                                                       \
      (d, ph, pw, u, v, dh, dw, mode, compute))                                                                        \
    X(cudnnStatus_t, cudnnSetConvolutionGroupCount, (cudnnConvolutionDescriptor_t d, int groups), (d, groups))        \
    X(cudnnStatus_t, cudnnSetConvolutionMathType, (cudnnConvolutionDescriptor_t d, cudnnMathType_t m), (d, m))        \
    X(cudnnStatus_t, cudnnSetFilter4dDescriptor,                                                                       \
      (cudnnFilterDescriptor_t d, cudnnDataType_t t, cudnnTensorFormat_t f, int k, int c, int h, int w),               \
      (d, t, f, k, c, h, w))                                                                                           \
    X(cudnnStatus_t, cudnnSetStream, (cudnnHandle_t h, cudaStream_t s), (h, s))                                        \
    X(cudnnStatus_t, cudnnSetTensor4dDescriptor,                                                                       \
      (cudnnTensorDescriptor_t d, cudnnTensorFormat_t f, cudnnDataType_t t, int n, int c, int h, int w),               \
      (d, f, t, n, c, h, w))
/* The one that answers a string, not a status. */
#define DT_CUDNN_STRING_FUNCS(X) X(const char *, cudnnGetErrorString, (cudnnStatus_t s), (s))

/* The pointers, set once under dt_dl_once and read only after it (pthread_once orders them). */
#define DT_DL_POINTER(ret, name, params, args) static ret(*dt_dl_##name) params;
DT_CUBLASLT_FUNCS(DT_DL_POINTER)
DT_CUDNN_FUNCS(DT_DL_POINTER)
DT_CUDNN_STRING_FUNCS(DT_DL_POINTER)

static pthread_once_t dt_dl_once = PTHREAD_ONCE_INIT;
static char dt_dl_error[512]; /* empty: both libraries loaded and every function found */

/* $DUCTILE_<LIB>_LIBRARY (a name or path), else the soname of the headers built against. */
static const char *dt_dl_name(const char *env, const char *soname)
{
    const char *s = getenv(env);
    return s && *s ? s : soname;
}

static void *dt_dl_open(const char *name)
{
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!h) snprintf(dt_dl_error, sizeof dt_dl_error, "CUDA backend: cannot load %s: %s", name, dlerror());
    return h;
}

/* dlsym's object pointer copied into a function pointer (ISO C has no cast between them). */
static bool dt_dl_sym(void *h, const char *lib, const char *name, void *slot)
{
    void *s = dlsym(h, name);
    if (!s) {
        snprintf(dt_dl_error, sizeof dt_dl_error, "CUDA backend: %s has no %s: %s", lib, name, dlerror());
        return false;
    }
    memcpy(slot, &s, sizeof s);
    return true;
}

#define DT_DL_RESOLVE(ret, name, params, args) ok = ok && dt_dl_sym(h, lib, #name, &dt_dl_##name);

/* On a failure the handles stay open (dlclose of a half-used cuDNN is not worth the risk) and
 * the pointers of the failing library stay NULL; every stub checks dt_dl_ready first. */
static void dt_dl_load(void)
{
    bool ok = true;
    const char *lib = dt_dl_name("DUCTILE_CUBLASLT_LIBRARY", "libcublasLt.so." DT_STR(CUBLAS_VER_MAJOR));
    void *h = dt_dl_open(lib);
    if (!h) return;
    DT_CUBLASLT_FUNCS(DT_DL_RESOLVE)
    if (!ok) return;
    lib = dt_dl_name("DUCTILE_CUDNN_LIBRARY", "libcudnn.so." DT_STR(CUDNN_MAJOR));
    h = dt_dl_open(lib);
    if (!h) return;
    DT_CUDNN_FUNCS(DT_DL_RESOLVE)
    DT_CUDNN_STRING_FUNCS(DT_DL_RESOLVE)
}

static bool dt_dl_ready(void)
{
    pthread_once(&dt_dl_once, dt_dl_load);
    return !dt_dl_error[0];
}

ductile_status dt_cuda_libs_load(void)
{
    return dt_dl_ready() ? DUCTILE_OK : dt_fail(DUCTILE_ERR_UNSUPPORTED, "%s", dt_dl_error);
}

/* The stubs: a call before a successful load (the backend loads first, so only a bug gets
 * here) answers NOT_INITIALIZED rather than jumping through NULL. */
#define DT_DL_STUB(fail, ret, name, params, args)                                                                      \
    ret name params                                                                                                    \
    {                                                                                                                  \
        return dt_dl_ready() ? dt_dl_##name args : (fail);                                                             \
    }
#define DT_DL_STUB_CUBLASLT(ret, name, params, args) DT_DL_STUB(CUBLAS_STATUS_NOT_INITIALIZED, ret, name, params, args)
#define DT_DL_STUB_CUDNN(ret, name, params, args) DT_DL_STUB(CUDNN_STATUS_NOT_INITIALIZED, ret, name, params, args)
#define DT_DL_STUB_STRING(ret, name, params, args) DT_DL_STUB("cuDNN is not loaded", ret, name, params, args)
DT_CUBLASLT_FUNCS(DT_DL_STUB_CUBLASLT)
DT_CUDNN_FUNCS(DT_DL_STUB_CUDNN)
DT_CUDNN_STRING_FUNCS(DT_DL_STUB_STRING)
