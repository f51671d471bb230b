/* The backend interface: where a context's buffers live and what runs its layers. The
 * builder and runtime know a backend only through this table; a GPU backend (src/backend/cuda)
 * fills one of its own. Backends never include each other. */
#ifndef DT_BACKEND_H
#define DT_BACKEND_H

#include "ductile.h"
#include "core/arena.h"
#include "core/threadpool.h"
#include "ops/op.h"

#include <stdbool.h>
#include <stddef.h>

/* What a kernel runs with. */
typedef struct dt_exec {
    dt_pool *pool;      /* CPU worker threads; may be NULL: run single-threaded */
    void *stream;       /* a device backend's stream (cudaStream_t); NULL on the CPU */
    int profile;        /* the context's optimization profile: indexes a layer's `tactic` */
    int point;          /* the profile's shape point (ductile_profile_selector) nearest the
                           context's shapes: with profile, picks the stored tactic (tactic.h) */
    int tactic;         /* > 0: run this tactic instead of the layer's (builder timing runs) */
    void *state;        /* the backend's per-context state (dt_backend.state_create); NULL on
                           the CPU */
    const dt_view *host_in; /* device backends: the layer's inputs with host data where the
                           host has it (constants, shape-pass values), else NULL data: what
                           a kernel reads parameters from (Resize's sizes, Slice's starts) */
    /* Scratch for the layer being run: at least the bytes its kernel's `scratch` asked for
     * at these shapes and this pool's thread count, 64-byte aligned, shared by the layers of
     * a context (they run one at a time), contents undefined. NULL when none was asked for. */
    void *scratch;
    size_t scratch_bytes;
    /* Where kernels that make string bytes put them: the context's, emptied
     * when an execute starts, so an output's views live until the next one. NULL where no
     * bytes may be made (constant folding, the shape pass): such kernels refuse. */
    dt_arena *strings;
    /* > 0: a Loop stops with an error after this many iterations (the builder's runs on
     * made-up inputs, where a loop's condition may never turn false); 0: no limit. */
    int64_t max_iterations;
    /* Set by the runtime while a layer with GRAPH attributes runs (FlexAttention's score_mod,
     * prob_mod), NULL otherwise: runs the subgraph of the layer's attribute attrs[attr] on its
     * formal inputs in[] (the tensors it captures come from the layer's inputs) and writes
     * its outputs into out[], whose dtype, rank, dims and data the kernel sets: an output of
     * another dtype or shape is refused, naming both. out may share in's bytes. */
    ductile_status (*subgraph)(void *user, int attr, const dt_view *in, dt_view *out);
    void *subgraph_user;
    /* The runtime's own (runtime/ctrl.h): the context's kept subgraph runs, so a steady run
     * of such a layer allocates nothing; NULL: each run allocates its own. Backends ignore it. */
    struct dt_subruns *subruns;
} dt_exec;

/* The device a backend runs on, as an engine records it (format: TARGET section). */
typedef struct dt_device_info {
    char name[96];      /* "NVIDIA H200"; "" for the host */
    int cc_major, cc_minor;   /* compute capability; 0.0 for the host */
} dt_device_info;

/* Weights a backend packed at build time (see dt_backend.prepack). */
typedef struct dt_prepacked {
    int input;          /* which input of the layer the blob replaces */
    void *data;         /* dt_aligned_alloc(64); the builder takes ownership (dt_free) */
    size_t nbytes;
    int64_t layout;     /* the backend's layout id, stored in the layer's `packed` attribute */
} dt_prepacked;

/* The adapter's (old) kernel signature: reads the layer's attributes on every run.
 * Computes out[] from in[]. Output views arrive with dtype, rank and dims set by the op's
 * infer and data pointing at buffers of the right size (never aliasing an input). */
typedef ductile_status (*dt_kernel_fn)(const ductile_layer *L, const dt_view *in, dt_view *out,
                                       dt_exec *ex);

/* Marks a state holds for dt_backend.timer_mark. */
enum { DT_TIMER_MARKS = 8 };

/* ---- compiled layers -------------------------------------------------------------------
 *
 * A kernel is compiled once per layer, when an engine is loaded (dt_plan_make; a build loads
 * the engine it wrote, so it sees the same refusals):
 *
 *   1. prepare(L, &params): reads everything the run needs from the layer (op, attributes,
 *      constant inputs, declared dims) into one blob of the kernel's own layout, and refuses
 *      whatever can be refused from those alone (DUCTILE_ERR_UNSUPPORTED / _INVALID_ARGUMENT;
 *      the plan prefixes the node). The plan owns the blob and frees it with dt_free() (so prepare allocates it with dt_malloc).
 *   2. scratch(params, in, out, threads, &bytes): the scratch bytes the run needs at these
 *      shapes with a pool of `threads` threads. Views have dims; data only where the shape
 *      pass knows it (constants, values computed from shapes such as Resize's scales).
 *      Called by the context whenever shapes or the thread count change; the context
 *      reserves the maximum over its layers next to the activation arena, so the run path
 *      never allocates. Shapes the run would refuse may report 0: the run names the fault.
 *   3. plan_shapes(params, in, out, ex, &bytes): optional, for kernels whose run needs
 *      objects made per set of shapes with the device (a device backend's library
 *      descriptors and algorithm choice: cuDNN, cuBLASLt). Called by the context's shape
 *      planning (dt_prepare, next to scratch) for every layer the backend runs, with views
 *      as scratch gets them and ex holding the context's backend state (ex->state) and
 *      profile (ex->profile, for the tactic); no stream, no scratch, no host_in. It makes
 *      those objects in ex->state, where the run at these shapes finds them, and reports in
 *      *bytes the workspace the run will take from ex->scratch (the context reserves the
 *      most of scratch and plan_shapes over its layers). Why not scratch: the objects need
 *      the backend's per-context handles, which scratch (params and views only, called by
 *      the builder and the subgraph runner too) does not get, and their workspace is known
 *      only once they are made. Shapes the run would refuse may report 0 and make nothing:
 *      the run names the fault. Runs that were not planned (the builder's tactic timing,
 *      shapes evicted from the backend's cache) make what they need themselves.
 *   4. run(params, in, out, ex): computes out[] from in[] (as dt_kernel_fn above) with
 *      ex->scratch. No attribute lookups, no string compares, no allocation: what it reads
 *      is params, the views, ex and what plan_shapes made.
 *
 * Why prepare does not see the profiles' shapes: dims vary inside a profile, so whatever
 * depends on them is computed per set of shapes (scratch, and the geometry at run); what
 * depends on the profile (the tactic) goes into params per profile and shape point and is
 * picked with ex->profile and ex->point. Why one scratch per context, sized by the largest
 * layer: layers of a context run one at a time, so one region serves all; placing each
 * layer's scratch in the arena with a one-layer lifetime would let it share memory with dead
 * activations (later).
 *
 * params is immutable after prepare: contexts on several threads share it.
 *
 * Migration: kernels not yet compiled stay on the old signature through the adapter
 * (dt_backend.find_kernel); the plan runs them with the layer itself as their params.
 * test_kernels_compiled lists the CPU ops still there. */
typedef ductile_status (*dt_kernel_prepare_fn)(const ductile_layer *L, void **params);
typedef ductile_status (*dt_kernel_scratch_fn)(const void *params, const dt_view *in,
                                               const dt_view *out, int threads, size_t *bytes);
typedef ductile_status (*dt_kernel_run_fn)(const void *params, const dt_view *in, dt_view *out,
                                           dt_exec *ex);
typedef ductile_status (*dt_kernel_plan_shapes_fn)(const void *params, const dt_view *in,
                                                   const dt_view *out, const dt_exec *ex,
                                                   size_t *bytes);

typedef struct dt_kernel {
    dt_kernel_prepare_fn prepare;   /* optional (NULL: params = NULL) */
    dt_kernel_scratch_fn scratch;   /* optional (NULL: no scratch) */
    dt_kernel_run_fn run;
    dt_kernel_plan_shapes_fn plan_shapes;   /* optional (NULL: nothing made per shapes) */
} dt_kernel;

typedef struct dt_backend {
    const char *name;                                   /* "cpu", "cuda" */
    /* The compiled kernel (dt_kernel above) for an op type, or NULL. Optional; the plan
     * asks it first. */
    const dt_kernel *(*kernel)(const char *op_type);
    /* The adapter: a function that runs one layer of an op type (the old signature), or NULL.
     * The plan falls back to it when `kernel` has none and then runs it with the layer itself
     * as params (attributes read on every run, scratch allocated by the kernel). Constant
     * folding and device backends' kernels that defer to the host call it too, so the CPU
     * answers for every op: for a compiled one with dt_cpu_run_once (prepare, run, free). */
    dt_kernel_fn (*find_kernel)(const char *op_type);
    /* Optional (NULL: every layer whose op has a kernel). Whether the kernel runs this layer;
     * false makes a device backend's layer a host fallback. Called once when the engine is
     * loaded, with the views (dtype, rank, dims; no data) of profile 0's opt shapes: it must
     * decide on what does not change with shapes (dtypes, ranks, attributes, constants). */
    bool (*supports)(const ductile_layer *L, const dt_view *in, const dt_view *out);
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
    /* Optional. Called by the builder once the layer's tactics are stored (its `tactic`
     * attribute, after the precision check): where its packed weights carry parts that none
     * of those tactics reads (the CPU's optional Winograd transforms), a smaller packing in
     * *out as prepack gives one (the same layout attribute); out->data == NULL: keep them. */
    ductile_status (*prune)(const ductile_layer *L, dt_prepacked *out);
    /* Optional (NULL: every layer channels first, as ONNX lays it out). Whether layer L, a
     * FusedConv with constant 4-D weights, runs faster channels last (NHWC) when built with
     * `flags` (bits 1u << ductile_builder_flag): the builder's layout pass (builder/layout.c)
     * then makes it FusedConv layout "NHWC" with the layers around it that do not care about
     * layout. Asked before precision lowers anything (the layer is still float32), so it
     * decides on the flags, attributes and ranks. Every backend must run what the pass makes
     * (the CPU runs layout "NHWC" as a reference). */
    bool (*prefers_nhwc)(const ductile_layer *L, unsigned flags);
    /* Optional (NULL: never). Whether the kernel of F, a channels-last FusedConv the precision
     * pass lowered, also writes D, the DepthToSpace (attribute layout "NHWC") that alone reads
     * F's output: the builder then folds D into F (builder/fuse_d2s.c: FusedConv attributes
     * depth_to_space, d2s_mode, to), one layer and one pass over the output less. */
    bool (*writes_d2s)(const ductile_layer *F, const ductile_layer *D);
    /* Optional. The tactics (ids > 0) that can run layer L on inputs of these dims, into
     * ids[0..cap); returns how many. Fewer than two: nothing to choose. The builder times
     * each (dt_exec.tactic) at every profile's min, opt and max shapes and stores the fastest
     * per profile and point in the layer's `tactic` attribute (backend/tactic.h). */
    int (*tactics)(const ductile_layer *L, const dt_view *in, int *ids, int cap);
    /* Optional (NULL: none). For a tactic of L whose reduced precision may pass the --bf16 /
     * --fp16 budget (rel L2 1e-2 against float32) on one network and not on another (bfloat16
     * F(4x4) Winograd: 3e-3 on resnet50, 1.9e-2 on superres), the id of the precise tactic
     * that stands in for it; 0 for a tactic whose error is bounded per layer. Where the timer
     * chose such tactics, the builder runs the engine at the profile points where they were
     * chosen with and without them and keeps them only when the outputs agree within its budget
     * (builder/precision_check.c). */
    int (*tactic_precise)(const ductile_layer *L, int tactic);
    /* Optional (NULL: no bound). The most bytes its buffers can take in all (the CPU: the
     * machine's physical memory; a GPU: its global memory); 0 when unknown. The builder's
     * limit for a profile's activation memory when the config sets none, as TensorRT's
     * workspace defaults to the device's memory. */
    uint64_t (*memory_size)(void);
    /* true: alloc returns host memory that the CPU kernels read directly. false: device
     * memory; layers without a kernel here run on the host backend with copies. */
    bool host_memory;
    /* true: its Concat and Split kernels skip a part whose bytes are already where the
     * copy would put them, so the plan may place parts as slices of the whole (runtime/plan.c
     * dt_plan_slices): no copy at shapes where they are contiguous. */
    bool joins_in_place;
    /* Optional (NULL: always there). Finds the device, lazily (never at library load), and
     * describes it; fails with a message ("no CUDA device found") when there is none. */
    ductile_status (*device)(dt_device_info *info);
    /* Optional. Whether a caller's pointer is this backend's memory (false: host memory, which
     * the context copies through its own buffers). */
    bool (*owns_pointer)(const void *ptr);
    /* The builder flags (bits 1u << DUCTILE_FLAG_FP16 / BF16 / TF32) this backend computes
     * with; 0: float32 only (the flags are accepted and change nothing). With FP16/BF16 the
     * builder lowers the layers whose kernel takes half views (`supports` asked with them;
     * builder/precision.c); TF32 marks float32 convolutions and matmuls (attribute `tf32`). */
    unsigned precisions;
    /* Optional (NULL: none). Whether layer L (float32) computes in bfloat16 inside its kernel
     * when built with `flags` (bits 1u << ductile_builder_flag): its tensors stay float32, its
     * weights are packed in bfloat16 and its products accumulate in float32 (the CPU with
     * AVX512-BF16 and flag BF16: the GEMM convolutions; no Cast layers, so the elementwise
     * layers around it stay as they are). The builder marks such a layer with attribute
     * `bf16` = 1 before packing weights (builder/precision.c), so prepack and the kernel read
     * the choice from the layer and an engine carries it. The kernel refuses to load where
     * the device lacks what the mark needs. L NULL: whether this device computes any layer so
     * (ductile_config_has_precision). Asked as well with flag FP16 alone: float16 inside the
     * kernel the same way (the CPU with AVX512-FP16), attribute `fp16`. */
    bool (*bf16_in_kernel)(const ductile_layer *L, unsigned flags);
    /* Optional. Per-context state (library handles, a workspace) handed to kernels in
     * dt_exec.state. */
    ductile_status (*state_create)(void **out);
    void (*state_free)(void *state);
    /* Optional (NULL: none). The backend memory a state holds (its workspace) in *bytes, and
     * in *stamp a value that changes whenever that memory moves (the workspace's address):
     * a recorded graph that addressed the old memory must not be replayed. */
    void (*state_memory)(const void *state, size_t *bytes, uint64_t *stamp);
    /* ---- optional: recorded runs (CUDA graphs); all four or none ----
     * The runtime records the work of a run's layers once per execution key and replays the
     * record after (runtime/graphs.h says when):
     *   1. capture_begin(state, stream, &cap): starts recording on *cap, a stream of the
     *      state's own (the legacy default stream cannot be recorded, and the caller's may be
     *      it). The layers then run with dt_exec.stream = cap: their work is recorded, not run.
     *      DUCTILE_ERR_UNSUPPORTED, with no message: not now (the caller's stream is itself
     *      being recorded by the caller); the runtime runs the layers on `stream` instead.
     *   2. capture_end(state, &graph): ends the recording begun on this state, also after a
     *      layer failed, and makes the record replayable; fails when the work could not be
     *      recorded (a kernel that waited on the host or allocated): the runtime then runs
     *      the layers unrecorded and never records at that key again.
     *   3. graph_launch(graph, stream): queues the recorded work on the caller's stream, in
     *      order with what the caller queued before; DUCTILE_ERR_UNSUPPORTED (no message) as
     *      in 1.
     *   4. graph_free(graph).
     * A kernel that waits on the host, reads device memory on the host or allocates makes
     * recording fail: correct, but never replayed. What a kernel makes per set of shapes it
     * makes in plan_shapes, before any run at those shapes. */
    ductile_status (*capture_begin)(void *state, void *stream, void **cap);
    ductile_status (*capture_end)(void *state, void **graph);
    ductile_status (*graph_launch)(void *graph, void *stream);
    void (*graph_free)(void *graph);
    /* ---- optional: device time (both or none; NULL: the builder times with the host clock) ----
     * For the builder's tactic timing (builder/tactics.c), which replays the runs of a tactic
     * recorded as above and needs the device's time of that replay alone, without the host's
     * cost of queueing it. timer_mark(state, stream, i) queues mark i (0 <= i <
     * DT_TIMER_MARKS) on stream, reached when the work queued there before is done; marking
     * i again moves it. timer_seconds(state, i, j, &s) waits for mark j and gives in *s the
     * device's seconds from mark i to mark j (>= 0 when j was queued after i); fails when a
     * mark was never queued. Marks belong to the state (one per context, one thread). */
    ductile_status (*timer_mark)(void *state, void *stream, int i);
    ductile_status (*timer_seconds)(void *state, int i, int j, double *seconds);
    /* Optional (NULL: one path per kernel). For profiles: the path the compiled kernel of
     * layer L (its params) takes at these shapes, profile, shape point (dt_exec.point) and
     * thread count ("winograd", "tall.packed_b"), a static string, or NULL where it has one.
     * Called only while a context profiles. */
    const char *(*kernel_path)(const ductile_layer *L, const void *params, const dt_view *in,
                               const dt_view *out, int profile, int point, int threads);
} dt_backend;

/* ---- the registry: the only way to reach a backend (backends.c) ---- */

/* The backend of that name built into this library ("cpu", "cuda"), or NULL. */
const dt_backend *dt_backend_find(const char *name);
/* Like dt_backend_find, with a message when the build lacks it: "engine was built for backend
 * 'cuda', which this build of ductile lacks (built with CUDA=0)" (`what` = "engine was built
 * for"). */
ductile_status dt_backend_require(const char *name, const char *what, const dt_backend **out);
/* Where value layers (the shape pass), constant folding and a device backend's fallback layers
 * run: the CPU backend, the reference for every op. */
const dt_backend *dt_backend_host(void);

#endif
