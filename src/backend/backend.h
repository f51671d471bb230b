/* The backend interface: where a context's buffers live and what runs its layers. The
 * builder and runtime know a backend only through this table; a GPU backend (src/backend/cuda)
 * fills one of its own. Backends never include each other. */
#ifndef DT_BACKEND_H
#define DT_BACKEND_H

#include "ductile.h"
#include "core/threadpool.h"
#include "ops/op.h"

#include <stddef.h>

/* What a kernel runs with. */
typedef struct dt_exec {
    dt_pool *pool;      /* CPU worker threads; may be NULL: run single-threaded */
    void *stream;       /* a device backend's stream (cudaStream_t); NULL on the CPU */
    int profile;        /* the context's optimization profile: indexes a layer's `tactic` */
    int tactic;         /* > 0: run this tactic instead of the layer's (builder timing runs) */
} dt_exec;

/* Weights a backend packed at build time (see dt_backend.prepack). */
typedef struct dt_prepacked {
    int input;          /* which input of the layer the blob replaces */
    void *data;         /* dt_aligned_alloc(64); the builder takes ownership (dt_free) */
    size_t nbytes;
    int64_t layout;     /* the backend's layout id, stored in the layer's `packed` attribute */
} dt_prepacked;

/* Computes out[] from in[]. Output views arrive with dtype, rank and dims set by the op's
 * infer and data pointing at buffers of the right size (never aliasing an input). */
typedef ductile_status (*dt_kernel_fn)(const ductile_layer *L, const dt_view *in, dt_view *out,
                                       dt_exec *ex);

typedef struct dt_backend {
    const char *name;                                   /* "cpu", "cuda" */
    /* The kernel for an op type, or NULL when this backend lacks it. */
    dt_kernel_fn (*find_kernel)(const char *op_type);
    /* Buffers for activations and I/O: 64-byte aligned; NULL when out of memory. */
    void *(*alloc)(size_t bytes);
    void (*release)(void *ptr);
    /* Optional (NULL: memcpy). Copies between host and backend memory on a stream. */
    ductile_status (*copy)(void *dst, const void *src, size_t bytes, void *stream);
    /* Optional (NULL: nothing to wait for). Waits for the work queued on a stream. */
    ductile_status (*sync)(void *stream);
    /* Optional. Called by the builder once per layer: when the backend has a faster layout
     * for one of the layer's constant inputs, it fills *out (data owned by the caller from
     * then on) and returns DUCTILE_OK; out->data == NULL: nothing to pack. The builder stores
     * the blob as a constant of the engine, so the run path never packs weights. */
    ductile_status (*prepack)(const ductile_layer *L, dt_prepacked *out);
    /* Optional. The tactics (ids > 0) that can run layer L on inputs of these dims, into
     * ids[0..cap); returns how many. Fewer than two: nothing to choose. The builder times
     * each (dt_exec.tactic) at every profile's opt shapes and stores the fastest in the
     * layer's `tactic` attribute, one id per profile. */
    int (*tactics)(const ductile_layer *L, const dt_view *in, int *ids, int cap);
    /* Optional (NULL: no bound). The most bytes its buffers can take in all (the CPU: the
     * machine's physical memory; a GPU: its global memory); 0 when unknown. The builder's
     * limit for a profile's activation memory when the config sets none, as TensorRT's
     * workspace defaults to the device's memory. */
    uint64_t (*memory_size)(void);
} dt_backend;

/* The CPU backend: the reference for every op. */
const dt_backend *dt_backend_cpu(void);

#endif
