/* A fake device that stands in for the CUDA backend in a test build of the library
 * (build/libductile_fakedev.so, `make fakedev`), so the ONNX node tests run through the
 * runtime's device path on a machine without a GPU: run_conformance.py --device=FAKE.
 *
 * Its "device memory" is host memory it tracks, so a pointer can be told to be the device's
 * or not; new blocks are filled with 0xff (NaN floats), so a read of bytes nothing wrote shows.
 * Its kernels are the CPU's, after checking that every operand a kernel gets is device memory:
 * a host pointer reaching a device kernel (or a device pointer a host layer) fails the run
 * with a message naming the node and the operand. It has every op the CPU has except layers
 * touching strings (as the CUDA backend, which leaves those to the host), or with
 * DUCTILE_FAKE_OPS=Op1,Op2,... only those, the other layers running as host fallbacks.
 * It answers for "cuda" (engines record that backend name), and copies and waits like a
 * device backend. Not part of the library: backends.c reaches it through a weak symbol. */
#include "backend/backend.h"
#include "core/status.h"
#include "graph/network.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct fake_block {
    char *p;
    size_t n;
} fake_block;

static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static fake_block *blocks;
static size_t n_blocks, cap_blocks;

static void *fake_alloc(size_t bytes)
{
    size_t n = bytes ? bytes : 1;
    char *p = NULL;
    if (posix_memalign((void **)&p, 64, n)) return NULL;
    memset(p, 0xff, n);
    pthread_mutex_lock(&fake_lock);
    if (n_blocks == cap_blocks) {
        size_t cap = cap_blocks ? cap_blocks * 2 : 256;
        fake_block *nb = realloc(blocks, cap * sizeof *nb);
        if (!nb) {
            pthread_mutex_unlock(&fake_lock);
            free(p);
            return NULL;
        }
        blocks = nb;
        cap_blocks = cap;
    }
    blocks[n_blocks++] = (fake_block){p, n};
    pthread_mutex_unlock(&fake_lock);
    return p;
}

static void fake_release(void *p)
{
    if (!p) return;
    pthread_mutex_lock(&fake_lock);
    for (size_t i = 0; i < n_blocks; i++)
        if (blocks[i].p == p) {
            blocks[i] = blocks[--n_blocks];
            break;
        }
    pthread_mutex_unlock(&fake_lock);
    free(p);
}

static bool fake_owns(const void *p)
{
    bool found = false;
    pthread_mutex_lock(&fake_lock);
    for (size_t i = 0; i < n_blocks && !found; i++)
        found = (const char *)p >= blocks[i].p && (const char *)p < blocks[i].p + blocks[i].n;
    pthread_mutex_unlock(&fake_lock);
    return found;
}

static ductile_status fake_copy(void *dst, const void *src, size_t bytes, void *stream)
{
    memcpy(dst, src, bytes);
    return DUCTILE_OK;
}

static ductile_status fake_sync(void *stream) { return DUCTILE_OK; }

static bool fake_has_op(const char *op)
{
    const char *list = getenv("DUCTILE_FAKE_OPS");
    if (!list || !*list) return true;
    size_t n = strlen(op);
    for (const char *q = list; (q = strstr(q, op)); q += n)
        if ((q == list || q[-1] == ',') && (q[n] == ',' || q[n] == 0)) return true;
    return false;
}

/* Every operand must be the device's; the CPU kernel then runs on it. A view the kernel
 * gets with no data (an omitted input, an empty tensor's) is not checked. */
static ductile_status fake_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    for (int k = 0; k < L->n_in; k++)
        if (L->in[k] && in[k].data && !fake_owns(in[k].data))
            return dt_fail(DUCTILE_ERR_INTERNAL, "fake device: input %d ('%s') of a device kernel is not device memory", k,
                           L->in[k]->name);
    for (int k = 0; k < L->n_out; k++)
        if (out[k].data && !fake_owns(out[k].data))
            return dt_fail(DUCTILE_ERR_INTERNAL, "fake device: output %d ('%s') of a device kernel is not device memory", k,
                           L->out[k]->name);
    dt_exec hx = *ex;
    hx.stream = NULL;
    hx.host_in = NULL; /* the CPU's kernels read their operands, never host_in */
    hx.tactic = 0;
    return dt_backend_host()->find_kernel(L->op_type)(L, in, out, &hx);
}

static dt_kernel_fn fake_find(const char *op)
{
    return fake_has_op(op) && dt_backend_host()->find_kernel(op) ? fake_run : NULL;
}

/* As the CUDA backend: string views point into host memory, so their layers stay there. */
static bool fake_supports(const ductile_layer *L, const dt_view *in, const dt_view *out)
{
    for (int k = 0; k < L->n_in; k++)
        if (L->in[k] && in[k].dtype == DUCTILE_STRING) return false;
    for (int k = 0; k < L->n_out; k++)
        if (out[k].dtype == DUCTILE_STRING) return false;
    return true;
}

static ductile_status fake_state_create(void **out)
{
    *out = &fake_lock;
    return DUCTILE_OK;
}

static void fake_state_free(void *p) {}

static const dt_backend fake = {
    .name = "cuda",
    .find_kernel = fake_find,
    .supports = fake_supports,
    .alloc = fake_alloc,
    .release = fake_release,
    .copy = fake_copy,
    .sync = fake_sync,
    .host_memory = false,
    .owns_pointer = fake_owns,
    .state_create = fake_state_create,
    .state_free = fake_state_free,
};

const dt_backend *dt_backend_test_device(void) { return &fake; }
