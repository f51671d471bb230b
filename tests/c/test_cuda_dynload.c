/* cuBLASLt and cuDNN are opened on the CUDA backend's first use (backend/cuda/dynload.c):
 *   - a process that builds and runs a CPU engine, and even asks for the CUDA device on a
 *     machine without a GPU ("no CUDA device found", unchanged), maps neither library; with a
 *     GPU, the device probe maps both;
 *   - a library that cannot be opened, or lacks a function, gives DUCTILE_ERR_UNSUPPORTED with
 *     a message naming the library and dlerror()'s words, the same on every later call, and
 *     the stubs answer NOT_INITIALIZED instead of crashing; with a GPU, the device probe
 *     itself reports it;
 *   - the installed libraries load and the stubs reach them.
 * Each case runs in a child process: the libraries are loaded once per process. Runs without
 * a GPU (the GPU branches are checked on the H200). */
#include "testutil.h"

#ifdef DT_WITH_CUDA
#include "ductile.h"
#include "backend/backend.h"
#include "backend/cuda/cuda.h"
#include "cuda_probe.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* Whether a library whose path contains `name` is mapped into this process. */
static bool mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, name) != NULL;
    fclose(f);
    return found;
}

/* Whether the CUDA runtime sees a GPU (asked directly: the backend's probe is under test). */
static bool gpu_present(void)
{
    int n = 0;
    bool found = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
    cudaGetLastError();
    return found;
}

/* msg is want, or starts with it where want ends with "...". */
static bool message_is(const char *msg, const char *want)
{
    size_t n = strlen(want);
    if (n > 3 && !strcmp(want + n - 3, "...")) return msg && !strncmp(msg, want, n - 3);
    return msg && !strcmp(msg, want);
}

/* x [2, 3] -> Relu -> y built for the CPU and run once (y checked). */
static void run_cpu_engine(void)
{
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    ductile_context *ctx = NULL;
    ductile_tensor *x = NULL;
    ductile_layer *l = NULL;
    ductile_dims d = {.nb_dims = 2, .d = {2, 3}};
    float in[6] = {-1, 2, -3, 4, -5, 6}, out[6] = {0};
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_input(net, "x", DUCTILE_FLOAT32, &d, NULL, &x), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_activation(net, x, DUCTILE_ACTIVATION_RELU, &l), DUCTILE_OK);
    ductile_tensor *y = ductile_layer_get_output(l, 0);
    CHECK_EQ_INT(ductile_network_mark_output(net, y), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    CHECK_EQ_INT(ductile_builder_build(b, net, cfg, &e), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_create(e, &ctx), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "x", in), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, ductile_tensor_name(y), out), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_OK);
    CHECK(out[0] == 0 && out[1] == 2 && out[4] == 0 && out[5] == 6);
    ductile_context_free(ctx);
    ductile_engine_free(e);
    ductile_config_free(cfg);
    ductile_network_free(net);
    ductile_builder_free(b);
}

static void cpu_engine_maps_no_gpu_library(void)
{
    run_cpu_engine();
    CHECK(!mapped("libcublasLt"));
    CHECK(!mapped("libcudnn"));
    bool gpu = test_cuda_device_found(); /* config.device = "cuda", then the device probe */
    if (!gpu) CHECK_EQ_STR(ductile_last_error(), "no CUDA device found");
    CHECK_EQ_INT(mapped("libcublasLt"), gpu);
    CHECK_EQ_INT(mapped("libcudnn"), gpu);
}

/* $env names `lib`, which fails to load with the message `want` (message_is). */
static void missing_library_is_reported(const char *env, const char *lib, const char *want)
{
    setenv(env, lib, 1);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(dt_cuda_libs_load(), DUCTILE_ERR_UNSUPPORTED);
        CHECK(message_is(ductile_last_error(), want));
        if (!message_is(ductile_last_error(), want)) fprintf(stderr, "got: %s\n", ductile_last_error());
    }
    cudnnHandle_t h = NULL;
    cublasLtHandle_t lt = NULL;
    CHECK_EQ_INT(cudnnCreate(&h), CUDNN_STATUS_NOT_INITIALIZED);
    CHECK_EQ_INT(cublasLtCreate(&lt), CUBLAS_STATUS_NOT_INITIALIZED);
    CHECK_EQ_STR(cudnnGetErrorString(CUDNN_STATUS_SUCCESS), "cuDNN is not loaded");
    CHECK(h == NULL && lt == NULL);
    /* The device probe: without a GPU its message is unchanged; with one it reports the
     * library, so nothing gets built for the GPU. */
    dt_device_info info;
    CHECK_EQ_INT(dt_backend_find("cuda")->device(&info), DUCTILE_ERR_UNSUPPORTED);
    if (gpu_present()) CHECK(message_is(ductile_last_error(), want));
    else CHECK_EQ_STR(ductile_last_error(), "no CUDA device found");
}

static void missing_cudnn(void)
{
    missing_library_is_reported("DUCTILE_CUDNN_LIBRARY", "/nonexistent/libcudnn.so.9",
                                "CUDA backend: cannot load /nonexistent/libcudnn.so.9: /nonexistent/libcudnn.so.9: "
                                "cannot open shared object file: No such file or directory");
}

static void missing_cublaslt(void)
{
    missing_library_is_reported("DUCTILE_CUBLASLT_LIBRARY", "libcublasLt.so.0",
                                "CUDA backend: cannot load libcublasLt.so.0: libcublasLt.so.0: "
                                "cannot open shared object file: No such file or directory");
}

/* A library that opens but is not cuDNN: the first function missing is named. */
static void wrong_library(void)
{
    missing_library_is_reported("DUCTILE_CUDNN_LIBRARY", "libm.so.6",
                                "CUDA backend: libm.so.6 has no cudnnConvolutionBiasActivationForward: ...");
}

/* Where the toolkit's libraries are installed (this project's build machines, the GPU host)
 * the stubs reach them; elsewhere the message says which one is missing. */
static void installed_libraries_load(void)
{
    if (dt_cuda_libs_load() != DUCTILE_OK) {
        CHECK(!strncmp(ductile_last_error(), "CUDA backend: cannot load ", 26));
        fprintf(stderr, "note: %s\n", ductile_last_error());
        return;
    }
    CHECK(mapped("libcublasLt"));
    CHECK(mapped("libcudnn"));
    CHECK_EQ_STR(cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM), "CUDNN_STATUS_BAD_PARAM");
    cudnnTensorDescriptor_t t = NULL;
    CHECK_EQ_INT(cudnnCreateTensorDescriptor(&t), CUDNN_STATUS_SUCCESS);
    CHECK_EQ_INT(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 5, 7), CUDNN_STATUS_SUCCESS);
    CHECK_EQ_INT(cudnnDestroyTensorDescriptor(t), CUDNN_STATUS_SUCCESS);
    cublasLtMatrixLayout_t m = NULL;
    CHECK_EQ_INT(cublasLtMatrixLayoutCreate(&m, CUDA_R_32F, 3, 5, 3), CUBLAS_STATUS_SUCCESS);
    CHECK_EQ_INT(cublasLtMatrixLayoutDestroy(m), CUBLAS_STATUS_SUCCESS);
}

/* Runs `fn` in a child process; its failed checks come back as its exit status. */
static void in_child(const char *name, void (*fn)(void))
{
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        test_checks = test_failures = 0;
        fn();
        fprintf(stderr, "  %s: %d checks, %d failed\n", name, test_checks, test_failures);
        fflush(stderr);
        _exit(test_failures ? 1 : 0);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fprintf(stderr, "case failed: %s\n", name);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    in_child("cpu_engine_maps_no_gpu_library", cpu_engine_maps_no_gpu_library);
    in_child("missing_cudnn", missing_cudnn);
    in_child("missing_cublaslt", missing_cublaslt);
    in_child("wrong_library", wrong_library);
    in_child("installed_libraries_load", installed_libraries_load);
    TEST_MAIN_END();
}
#else
int main(void)
{
    fprintf(stderr, "skipped: built without the CUDA backend (CUDA=0)\n");
    TEST_MAIN_END();
}
#endif
