/* CUDA graphs for the runtime's recorded runs (backend.h, runtime/graphs.h): stream capture
 * on a stream of the context's own, instantiated once, launched on the caller's stream.
 *
 * Why a stream of our own: the caller's may be the legacy default stream, which cannot be
 * captured. Capturing records without running anything, so the capture stream needs no order
 * against the caller's: the launch on the caller's stream is what runs the work, after what
 * the caller queued before. The stream is non-blocking (the legacy stream's implicit waits
 * would break the capture), and the capture mode thread-local: other threads may allocate
 * (their contexts, cudaMalloc) while this one records; this thread may not, and a kernel
 * that allocates, waits or copies to pageable host memory makes the capture fail cleanly. */
#include "backend/cuda/cuda.h"
#include "core/status.h"

#include <cuda_runtime_api.h>

bool dt_cuda_stream_capturing(void *stream, bool unknown)
{
    enum cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing((cudaStream_t)stream, &cs) != cudaSuccess) {
        cudaGetLastError();
        return unknown;
    }
    return cs != cudaStreamCaptureStatusNone;
}

/* Whether the caller is recording `stream` into a graph of its own: then our work joins
 * theirs kernel by kernel (a capture of ours or a graph launch would not). Where it cannot
 * tell: yes, the safe answer. */
static bool dt_cuda_stream_recorded(void *stream) { return dt_cuda_stream_capturing(stream, true); }

ductile_status dt_cuda_capture_begin(void *state, void *stream, void **cap)
{
    dt_cuda_state *st = state;
    *cap = NULL;
    if (dt_cuda_stream_recorded(stream)) return DUCTILE_ERR_UNSUPPORTED;
    if (!st->capture) {
        cudaStream_t s = NULL;
        DT_TRY(dt_cuda_check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "capture stream"));
        st->capture = s;
    }
    DT_TRY(dt_cuda_check(cudaStreamBeginCapture((cudaStream_t)st->capture, cudaStreamCaptureModeThreadLocal),
                         "begin capture"));
    *cap = st->capture;
    return DUCTILE_OK;
}

ductile_status dt_cuda_capture_end(void *state, void **graph)
{
    dt_cuda_state *st = state;
    *graph = NULL;
    cudaGraph_t g = NULL;
    /* Ends the capture whatever happened in it: an invalidated one answers an error here. */
    cudaError_t err = cudaStreamEndCapture((cudaStream_t)st->capture, &g);
    if (err != cudaSuccess || !g) {
        if (g) cudaGraphDestroy(g);
        return dt_cuda_check(err != cudaSuccess ? err : cudaErrorStreamCaptureInvalidated, "end capture");
    }
    cudaGraphExec_t x = NULL;
    err = cudaGraphInstantiate(&x, g, 0);
    cudaGraphDestroy(g);
    DT_TRY(dt_cuda_check(err, "graph instantiate"));
    *graph = x;
    return DUCTILE_OK;
}

ductile_status dt_cuda_graph_launch(void *graph, void *stream)
{
    if (dt_cuda_stream_recorded(stream)) return DUCTILE_ERR_UNSUPPORTED;
    return dt_cuda_check(cudaGraphLaunch((cudaGraphExec_t)graph, (cudaStream_t)stream), "graph launch");
}

void dt_cuda_graph_free(void *graph) { cudaGraphExecDestroy((cudaGraphExec_t)graph); }

void dt_cuda_state_memory(const void *state, size_t *bytes, uint64_t *stamp)
{
    const dt_cuda_state *st = state;
    *bytes = st->ws_cap;
    *stamp = (uint64_t)(uintptr_t)st->ws;
}
