/* The engine as it lives in memory, and the execution plan derived from it at load.
 *
 * An engine is its serialized bytes plus what is derived from them, so a built engine and the
 * same engine saved and loaded run the same code on the same data: outputs are bitwise equal. */
#ifndef DT_ENGINE_IMPL_H
#define DT_ENGINE_IMPL_H

#include "ductile.h"
#include "backend/backend.h"
#include "format/profile.h"
#include "graph/network.h"
#include "ops/op.h"

#include <stdbool.h>

/* How a tensor gets its bytes at run time. */
typedef enum dt_tensor_kind {
    DT_TENSOR_CONSTANT = 0,   /* data in the engine */
    DT_TENSOR_INPUT = 1,      /* the caller's buffer or the context's own */
    DT_TENSOR_VALUE = 2,      /* computed from shapes alone, in the shape pass */
    DT_TENSOR_ACTIVATION = 3, /* computed by execute, placed in the activation arena */
    DT_TENSOR_OUTPUT = 4      /* a network output computed by execute: its own buffer.
                                 A constant or value that is an output keeps its kind and
                                 is copied into the output's buffer by execute. */
} dt_tensor_kind;

typedef struct dt_plan_layer {
    const ductile_layer *layer;
    const dt_opdef *def;
    /* Value layers: the CPU's kernel (the shape pass runs on the host); others: the engine
     * backend's. Compiled (kernel, with the params its prepare made; see backend.h) or, for
     * kernels not migrated yet, through the adapter (legacy, with the layer as params). */
    const dt_kernel *kernel;
    void *params;             /* owned by the plan */
    dt_kernel_fn legacy;
    bool value;               /* runs in the shape pass (all inputs known from shapes) */
    bool fallback;            /* a device backend lacks the op: runs on the host, its inputs
                                 copied from the device and its outputs back */
    bool alias;               /* a view layer (dt_layer_is_view) whose output shares its input's
                                 bytes (dt_plan.alias_of): execute does not run it */
    bool seq;                 /* moves sequences or optionals: the runtime runs it
                                 (runtime/seqval.h) with params from dt_seq_prepare, no kernel;
                                 the plan is eager */
    struct dt_ctrl *ctrl;     /* If, Loop, Scan: the nested plans (runtime/ctrl.h), run by
                                 the eager executors instead of a kernel; owned */
    struct dt_ctrl *graphs;   /* another op with GRAPH attributes (FlexAttention's modifiers):
                                 the nested plans its kernel runs through dt_exec.subgraph;
                                 owned */
} dt_plan_layer;

/* Runs pl's kernel with dt_exec.subgraph bound to pl->graphs (runtime/ctrl_kernel.c). */
ductile_status dt_ctrl_kernel_run(const dt_plan_layer *pl, const dt_view *in, dt_view *out, dt_exec *ex);

/* Runs a plan layer (ex->scratch holds what dt_plan_layer_scratch asked for). */
static inline ductile_status dt_plan_layer_run(const dt_plan_layer *pl, const dt_view *in, dt_view *out,
                                               dt_exec *ex)
{
    if (pl->graphs) return dt_ctrl_kernel_run(pl, in, out, ex);
    return pl->kernel ? pl->kernel->run(pl->params, in, out, ex) : pl->legacy(pl->layer, in, out, ex);
}

/* Finds layer pl's kernel on backend b and compiles it (backend.h): attributes the kernel
 * refuses fail here, at load, so a build fails too, naming the node. Frees params a previous
 * compile left (a device layer made a host fallback). */
ductile_status dt_plan_compile(dt_plan_layer *pl, const dt_backend *b);

/* The scratch bytes layer pl needs at these shapes with `threads` threads (0 for none). */
ductile_status dt_plan_layer_scratch(const dt_plan_layer *pl, const dt_view *in, const dt_view *out,
                                     int threads, size_t *bytes);

typedef struct dt_plan {
    int n_tensors, n_layers;
    dt_tensor_kind *kind;     /* per tensor */
    bool *shape_input;        /* per tensor: an INPUT whose values the shape pass reads (a
                                 "shape tensor"); its host data must be bound for the pass */
    int n_shape_inputs;
    /* Some layer's output shape depends on data computed at run time (NonZero, Unique, a
     * Reshape fed by computed values): the context runs such engines eagerly, inferring
     * each layer's shapes right before running it, with every input's data at hand. */
    bool eager;
    const ductile_layer *eager_cause;   /* the first such layer, for messages */
    int *last_use;            /* per tensor: index of the last layer reading it, -1 if none */
    /* Activation lifetimes, planned once per engine (runtime/memplan.h): block b is tensor
     * mem_tensor[b]; offsets are planned per set of shapes from these. */
    struct dt_memlife *mem;
    int *mem_tensor;
    int n_mem;
    /* Per tensor: the ACTIVATION whose bytes it is a view of (the output of an alias layer,
     * through chains of them: always the first tensor, which has the block), else -1; and
     * the block of each tensor that has one, else -1. */
    int *alias_of;
    int *mem_block;
    /* Per tensor: the ACTIVATION it is a slice of where contiguous (dt_plan_slices), else
     * -1: a Concat's part in its whole, or a Split's part in its input; slice_layer is that
     * Concat or Split and slice_pos the part's index among its inputs (outputs). Whether a
     * slice is placed so depends on the shapes (dt_memplan). */
    int *slice_of;
    int *slice_layer;
    int *slice_pos;
    dt_plan_layer *layers;    /* in execution order */
} dt_plan;

struct ductile_engine {
    void *bytes;              /* serialized engine, 64-byte aligned, owned */
    size_t size;
    ductile_network *net;     /* read from bytes; constants point into bytes */
    ductile_profile *profiles;
    int n_profiles;
    const dt_backend *backend;  /* runs the execute layers and holds the context's buffers */
    dt_device_info device;    /* what the engine was built for (TARGET section) */
    void **dconst;            /* device backends: per tensor, the device copy of a constant
                                 that a device kernel reads (NULL otherwise) */
    dt_plan plan;
    char *layer_info;         /* JSON for ductile_engine_layer_info, made at load */
};

/* Device backends: places the layers (host fallbacks; every layer of an eager plan, which
 * runs on the host) and copies the constants that device kernels read to the device
 * (dconst). Nothing for the CPU. */
ductile_status dt_engine_upload(ductile_engine *e);

/* Whether tensor t's buffers are host memory (ductile_engine_tensor_location): every tensor
 * on a host backend; on a device backend, every tensor of an eager engine (it runs on the
 * host), shape inputs (the shape pass reads them), strings (views of host bytes), sequences
 * and optionals (runtime/seqval.h). */
bool dt_engine_host_tensor(const ductile_engine *e, int t);

/* Takes ownership of bytes (dt_aligned_alloc'd, 64-byte aligned) on success and on failure. */
ductile_status dt_engine_from_bytes(void *bytes, size_t size, ductile_engine **out);

/* The plan for a network in execution order; DUCTILE_ERR_UNSUPPORTED for an op without a
 * definition, or without a kernel on the backend that must run it. */
ductile_status dt_plan_make(const ductile_network *net, const dt_backend *backend, dt_plan *plan);
void dt_plan_free(dt_plan *plan);
/* Ops that read only their input's dims, never its data (Shape, Size): value layers. */
bool dt_op_reads_shape_only(const char *op);
/* Ops whose output holds input 0's bytes unchanged in the same order (Reshape, Flatten,
 * Squeeze, Unsqueeze, Identity): where input and output are both activations of a
 * non-eager engine, the output is planned as a view of the input's bytes (no copy). */
bool dt_op_is_view(const char *op);
/* A layer whose output is its input's bytes: a view op, a Cast to the dtype its input has, or a
 * Transpose that moves only dims fixed at 1 (the plan aliases those between activations). */
bool dt_layer_is_view(const ductile_layer *L);
/* The most scratch any layer that execute runs needs at the shapes in views (per tensor):
 * of the host fallback layers of a device engine when `fallback` (host memory), else of the
 * others (the engine backend's memory). */
ductile_status dt_plan_scratch_max(const dt_plan *p, const dt_view *views, int threads, bool fallback,
                                   size_t *bytes);
/* Runs the plan_shapes hook (backend.h) of every layer that execute runs on the engine's
 * backend (not values, host fallbacks or views) at the shapes in views (per tensor), with the
 * context's backend state and profile in ex; *bytes: the most workspace any reported, which
 * the context's kernel scratch must hold. */
ductile_status dt_plan_shapes(const dt_plan *p, const dt_view *views, const dt_exec *ex, size_t *bytes);
/* The layer-info JSON (dt_malloc'd), or NULL when out of memory. */
char *dt_layer_info_make(const ductile_engine *e);

/* ---- shape pass (shared by the context and the builder's profile checks) ---- */

/* Per-tensor run-time state for one set of input shapes. */
typedef struct dt_shape_state {
    dt_view *views;           /* per tensor: dtype, rank, dims; data for constants and values */
    void **value_bufs;        /* per tensor: owned buffer of a VALUE tensor */
    size_t *value_caps;
    void *scratch;            /* value layers' kernel scratch (host memory, 64-byte aligned) */
    size_t scratch_cap;
} dt_shape_state;

ductile_status dt_shape_state_init(dt_shape_state *st, const ductile_engine *e);
void dt_shape_state_free(dt_shape_state *st, const ductile_engine *e);
/* Input views (rank, dims) must be set; infers every tensor's dims and computes VALUE tensors.
 * Errors are prefixed with the node: "node '<name>' (<Op>, opset <N>): ...". */
ductile_status dt_shape_pass(const ductile_engine *e, dt_shape_state *st, dt_exec *ex);
/* The pass as far as it goes: reached[t] (per tensor, set here) says whether tensor t's view
 * was computed. A layer with an input not reached, or whose infer or value kernel fails (the
 * values of a shape input not at hand), leaves its outputs not reached; the others go on.
 * Fails only when out of memory. For placing layers at load, before any input value exists. */
ductile_status dt_shape_pass_partial(const ductile_engine *e, dt_shape_state *st, dt_exec *ex, bool *reached);
/* Checks that dims sharing a symbol agree across the inputs (views of inputs set). */
ductile_status dt_check_shared_symbols(const ductile_engine *e, const dt_view *views);

/* The context's per-tensor views (dtype, rank, dims) as the last shape pass or eager
 * execute left them; for the builder, which learns eager engines' dtypes by running one. */
const dt_view *dt_context_views(const ductile_context *c);
/* Loops of c's runs stop with an error after n iterations (dt_exec.max_iterations). */
void dt_context_limit_iterations(ductile_context *c, int64_t n);

/* The most inputs or outputs a layer may have; dt_plan_make refuses more, so every run
 * path can keep a layer's views on the stack. */
#define DT_MAX_LAYER_IO 64

/* in[k] = views[L->in[k]] for every input; an omitted input gets rank -1 and no data. */
void dt_layer_input_views(const ductile_layer *L, const dt_view *views, dt_view *in);

/* The dtype layer L computed for its output T against the dtype T declares (0: none):
 * DUCTILE_OK when they agree or T declares none, else `code` with "node '<name>' (<Op>,
 * opset <N>): output '<T>' is declared <d> but the node computes <c>" ("tensor" for a tensor
 * that is not a network output). Every place that runs infer checks it, so the dtype an
 * engine reports is the one its kernels write. */
ductile_status dt_check_dtype(const ductile_layer *L, const ductile_tensor *T, int declared,
                              int computed, ductile_status code);

/* ---- per-layer profiling (ductile_context_set_profiler; runtime/profile.c) ---- */

/* A monotonic clock in milliseconds. */
double dt_now_ms(void);
/* Reports layer pl (index `index` among the layers execute runs) to fn: its name, op type,
 * the kernel and path that ran at these shapes, profile, shape point and thread count
 * ("cpu.FusedConv.winograd"), ms, and its FLOPs (ops/flops.h). */
void dt_profile_report(const ductile_engine *e, const dt_plan_layer *pl, int index, const dt_view *in,
                       const dt_view *out, int profile, int point, int threads, double ms, ductile_profiler_fn fn,
                       void *user);
/* The same for a layer that ran on other views than in, out (a group of the batch's images,
 * runtime/depth_first.h): the path is the one for ran_in, ran_out, the FLOPs in, out's. */
void dt_profile_report_ran(const ductile_engine *e, const dt_plan_layer *pl, int index, const dt_view *in,
                           const dt_view *out, const dt_view *ran_in, const dt_view *ran_out, int profile, int point,
                           int threads, double ms, ductile_profiler_fn fn, void *user);

/* Bytes of a view's data (dims known); false on overflow. */
bool dt_view_bytes(const dt_view *v, size_t *out);

#endif
