/* The backend registry: every backend this build of the library has, by name. The builder
 * and runtime reach kernels only through it (and the table it returns). */
#include "backend/backend.h"
#include "core/status.h"

#include <string.h>

/* Each backend's own entry point; declared here only, so nothing else names them. */
const dt_backend *dt_backend_cpu(void);
#if DT_WITH_CUDA
const dt_backend *dt_backend_cuda(void);
#endif

/* Tests only: a stand-in device linked into a test build of the library answers for
 * "cuda" (tests/conformance/fake_device.c, build/libductile_fakedev.so: the ONNX node tests
 * through the device path without a GPU). Weak, so NULL in the library itself. */
const dt_backend *dt_backend_test_device(void) __attribute__((weak, visibility("hidden")));

const dt_backend *dt_backend_host(void) { return dt_backend_cpu(); }

const dt_backend *dt_backend_find(const char *name)
{
    if (!name) return NULL;
    if (!strcmp(name, "cpu")) return dt_backend_cpu();
    if (!strcmp(name, "cuda") && dt_backend_test_device) return dt_backend_test_device();
#if DT_WITH_CUDA
    if (!strcmp(name, "cuda")) return dt_backend_cuda();
#endif
    return NULL;
}

ductile_status dt_backend_require(const char *name, const char *what, const dt_backend **out)
{
    *out = dt_backend_find(name);
    if (*out) return DUCTILE_OK;
    if (!strcmp(name, "cuda"))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "%s backend 'cuda', which this build of ductile lacks (built with CUDA=0)", what);
#if DT_WITH_CUDA
    const char *have = "cpu, cuda";
#else
    const char *have = "cpu";
#endif
    return dt_fail(DUCTILE_ERR_UNSUPPORTED, "%s backend '%s', which this build of ductile lacks (it has: %s)", what, name, have);
}
