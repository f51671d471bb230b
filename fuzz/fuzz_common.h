/* Shared by the fuzz harnesses: running a loaded engine once at its profile's min shapes.
 * A harness checks the library's promise that no bytes make it abort, crash, leak or read
 * out of bounds; a refused input (any status but DUCTILE_OK) is a correct outcome. */
#ifndef DT_FUZZ_COMMON_H
#define DT_FUZZ_COMMON_H

#include "ductile.h"

#include <stdint.h>

/* Runs stay small: inputs of more elements than this are not executed. */
#define FUZZ_MAX_INPUT_ELEMENTS (1 << 16)
/* Nor engines whose context plans more activation memory than this at those shapes: small
 * inputs and outputs can still hide a huge layer (a mutated pad of 16 million rows made a 1 GB
 * convolution output that took minutes: valid, but no finding). */
#define FUZZ_MAX_CONTEXT_BYTES ((uint64_t)64 << 20)

/* Elements of dims, or -1 when negative or above FUZZ_MAX_INPUT_ELEMENTS. */
static inline int64_t fuzz_volume(const ductile_dims *d)
{
    int64_t v = 1;
    for (int i = 0; i < d->nb_dims; i++) {
        if (d->d[i] < 0 || d->d[i] > FUZZ_MAX_INPUT_ELEMENTS) return -1;
        v *= d->d[i];
        if (v > FUZZ_MAX_INPUT_ELEMENTS) return -1;
    }
    return v;
}

/* Creates a context, sets every input to profile 0's min shape, executes, frees. Statuses
 * are not checked: refusing is allowed, crashing is not. Execution is skipped when an input
 * would be large. The context's own buffers hold the inputs. */
static inline void fuzz_run_engine(const ductile_engine *engine)
{
    ductile_context *ctx = NULL;
    if (ductile_context_create(engine, &ctx) != DUCTILE_OK) return;
    ductile_context_set_threads(ctx, 1);
    int ok = ductile_engine_num_profiles(engine) > 0;
    int32_t n = ductile_engine_num_io_tensors(engine);
    for (int32_t i = 0; ok && i < n; i++) {
        const char *name = ductile_engine_io_tensor_name(engine, i);
        if (ductile_engine_is_input(engine, name) != 1) continue;
        ductile_dims min;
        if (ductile_engine_get_profile_shape(engine, 0, name, DUCTILE_PROFILE_MIN, &min) != DUCTILE_OK ||
            fuzz_volume(&min) < 0 ||
            ductile_context_set_input_shape(ctx, name, &min) != DUCTILE_OK)
            ok = 0;
    }
    /* Output shapes come from the shape program; a huge output is not run either. An engine
     * whose output shapes depend on data (STATE before execute) still runs. */
    for (int32_t i = 0; ok && i < n; i++) {
        const char *name = ductile_engine_io_tensor_name(engine, i);
        ductile_dims d;
        ductile_status s = ductile_context_get_tensor_shape(ctx, name, &d);
        if (s == DUCTILE_ERR_STATE && ductile_engine_is_input(engine, name) == 0) continue;
        if (s != DUCTILE_OK || fuzz_volume(&d) < 0) ok = 0;
    }
    /* Inputs hold 1.0f (as float32; other types see the same bytes), not whatever the
     * context's buffers held. */
    for (int32_t i = 0; ok && i < n; i++) {
        const char *name = ductile_engine_io_tensor_name(engine, i);
        ductile_dims d;
        void *buf = NULL;
        size_t bytes = ductile_dtype_size(ductile_engine_tensor_dtype(engine, name));
        if (ductile_engine_is_input(engine, name) != 1) continue;
        if (ductile_context_get_tensor_shape(ctx, name, &d) != DUCTILE_OK ||
            ductile_context_get_tensor_address(ctx, name, &buf) != DUCTILE_OK) {
            ok = 0;
            break;
        }
        bytes *= (size_t)fuzz_volume(&d);
        for (size_t k = 0; buf && k < bytes; k++)
            ((unsigned char *)buf)[k] = (k & 3) == 3 ? 0x3f : (k & 3) == 2 ? 0x80 : 0;
    }
    /* get_tensor_address above sized the context's memory for these shapes. */
    uint64_t held = 0;
    if (ok && (ductile_context_get_memory_size(ctx, &held) != DUCTILE_OK || held > FUZZ_MAX_CONTEXT_BYTES)) ok = 0;
    if (ok) ductile_context_execute(ctx);
    ductile_context_free(ctx);
}

#endif
