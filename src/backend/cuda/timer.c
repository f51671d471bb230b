/* Device time for the builder's tactic timing (dt_backend.timer_mark, timer_seconds): one
 * CUDA event per mark, made on the first mark and kept by the state. Events, not the host
 * clock: the builder replays a tactic's recorded runs (a CUDA graph) and wants what that
 * replay costs the GPU, as it will inside the engine's own graph, without the host's time
 * to queue it. */
#include "backend/cuda/cuda.h"
#include "core/status.h"

#include <cuda_runtime_api.h>

ductile_status dt_cuda_timer_mark(void *state, void *stream, int i)
{
    dt_cuda_state *st = state;
    if (i < 0 || i >= DT_TIMER_MARKS) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "timer mark %d: not in 0..%d", i, DT_TIMER_MARKS - 1);
    if (!st->marks[i]) {
        cudaEvent_t ev = NULL;
        DT_TRY(dt_cuda_check(cudaEventCreate(&ev), "timer event"));
        st->marks[i] = ev;
    }
    return dt_cuda_check(cudaEventRecord((cudaEvent_t)st->marks[i], (cudaStream_t)stream), "timer mark");
}

ductile_status dt_cuda_timer_seconds(void *state, int i, int j, double *seconds)
{
    dt_cuda_state *st = state;
    *seconds = 0;
    if (i < 0 || j < 0 || i >= DT_TIMER_MARKS || j >= DT_TIMER_MARKS || !st->marks[i] || !st->marks[j])
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "timer marks %d, %d: not both queued", i, j);
    DT_TRY(dt_cuda_check(cudaEventSynchronize((cudaEvent_t)st->marks[j]), "timer wait"));
    float ms = 0;
    DT_TRY(dt_cuda_check(cudaEventElapsedTime(&ms, (cudaEvent_t)st->marks[i], (cudaEvent_t)st->marks[j]), "timer read"));
    *seconds = 1e-3 * (double)ms;
    return DUCTILE_OK;
}

void dt_cuda_timer_free(dt_cuda_state *st)
{
    for (int i = 0; i < DT_TIMER_MARKS; i++)
        if (st->marks[i]) cudaEventDestroy((cudaEvent_t)st->marks[i]);
}
