/* Execution contexts: per-thread run state on a shared, immutable engine.
 *
 * Life of a run: set_profile -> set_input_shape (each input) -> [input buffers] -> [shape
 * pass + memory plan, once per new set of shapes and shape-input values] -> execute (the
 * kernels of the non-value layers, in order).
 *
 * The context's own buffer of an input is never read before the caller could have written
 * it: an input's values count as given once a buffer is bound or once get_tensor_address
 * handed out the context's own buffer. Shape inputs are read by the shape pass, so output
 * shapes wait for their values; every input is read by execute. */
#include "runtime/engine_impl.h"
#include "core/alloc.h"
#include "runtime/ctrl.h"
#include "runtime/depth_first.h"
#include "runtime/graphs.h"
#include "runtime/memplan.h"
#include "runtime/points.h"
#include "runtime/seqval.h"
#include "ops/sequence.h"
#include "core/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ductile_context {
    const ductile_engine *e;
    int profile;
    int point;              /* the profile's shape point nearest the planned shapes
                               (runtime/points.h): picks the kernels' stored tactics */
    int threads;
    dt_pool *pool;
    dt_shape_state st;
    bool *shape_set;        /* per network input */
    bool inputs_ready;      /* input shapes complete and input buffers sized */
    bool ready;             /* shape pass and memory plan done for the current shapes */
    bool ran;               /* eager engines: execute ran for the current shapes, so the
                               output shapes are known */
    void **bound;           /* per tensor: the caller's buffer (I/O tensors) */
    void **own;             /* per tensor: the context's buffer for an I/O tensor */
    size_t *own_cap;
    bool *given;            /* per tensor: get_tensor_address handed out own[t] since it was
                               allocated, so the caller may have written it */
    size_t *offsets;        /* per tensor: activation offset in the arena */
    void *arena;
    size_t arena_cap;
    void *scratch;          /* kernels' scratch (dt_exec.scratch), shared by the layers */
    size_t scratch_cap;
    void **snap;            /* per tensor: the shape input's bytes the shape pass last read */
    size_t *snap_size;
    int busy;               /* 1 while a call runs on this context (dt_enter/dt_leave) */
    /* Device backends (engine backend without host memory), see dt_execute_device: */
    void *bstate;           /* the backend's per-context state (handles, workspace) */
    void **dval;            /* per tensor: device copy of a value tensor a device kernel reads */
    size_t *dval_cap;
    void **hbuf;            /* per tensor: host copy for a fallback layer's input or output */
    size_t *hbuf_cap;
    void *hscratch;         /* fallback layers' kernel scratch (host memory) */
    size_t hscratch_cap;
    bool *hostb;            /* per tensor: the caller bound host memory to this I/O tensor */
    int graphs_max;         /* ductile_context_set_cuda_graphs */
    bool graphable;         /* the backend records runs and no layer runs on the host */
    dt_graphs graphs;       /* records per execution key (runtime/graphs.h) */
    ductile_profiler_fn prof;   /* ductile_context_set_profiler: NULL when off */
    void *prof_user;
    dt_arena strings;       /* bytes string kernels made in the last execute (dt_exec.strings) */
    dt_seqval **vals;       /* per tensor: the value of a sequence or optional (runtime/seqval.h),
                               NULL for tensors; NULL when the network has none */
    int64_t max_iterations;     /* dt_context_limit_iterations; 0: none */
    dt_subruns *subruns;    /* subgraph runs kept for kernels that run subgraphs (dt_exec.subruns) */
    dt_depth_first df;      /* the batch's first layers run a group of images at a time (host) */
};

void dt_context_limit_iterations(ductile_context *c, int64_t n) { c->max_iterations = n; }

/* Whether runs on e can be recorded: the backend records (backend.h), and no layer of the
 * run is a host fallback (it waits for the stream and runs on the host in the middle); an
 * alias runs nothing, wherever it was placed. */
static bool dt_graphable(const ductile_engine *e)
{
    const dt_backend *be = e->backend;
    if (!be->capture_begin || !be->capture_end || !be->graph_launch || !be->graph_free) return false;
    for (int i = 0; i < e->plan.n_layers; i++) {
        const dt_plan_layer *pl = &e->plan.layers[i];
        if (!pl->value && pl->fallback && !pl->alias) return false;
    }
    return true;
}

static ductile_status dt_not_tensor(const ductile_tensor *T);
static void dt_own_release(ductile_context *c, int t, void *p);

/* A value for every sequence or optional tensor. */
static ductile_status dt_seqvals_create(ductile_context *c)
{
    const ductile_network *net = c->e->net;
    for (int t = 0; t < net->n_tensors; t++) {
        const ductile_tensor *T = net->tensors[t];
        if (T->kind == DUCTILE_VALUE_TENSOR) continue;
        if (!c->vals && !(c->vals = dt_calloc((size_t)net->n_tensors + 1, sizeof *c->vals)))
            return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory creating a context");
        if (!(c->vals[t] = dt_calloc(1, sizeof *c->vals[t])))
            return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory creating a context");
        c->vals[t]->kind = T->kind;
        c->vals[t]->elem = T->dtype;
    }
    return DUCTILE_OK;
}

static int dt_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

ductile_status ductile_context_create(const ductile_engine *e, ductile_context **out)
{
    if (!out) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "context_create: out is NULL");
    *out = NULL;
    if (!e) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "context_create: engine is NULL");
    ductile_context *c = dt_calloc(1, sizeof *c);
    if (!c) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory creating a context");
    c->e = e;
    size_t nt = (size_t)e->net->n_tensors + 1;
    c->shape_set = dt_calloc((size_t)e->net->n_inputs + 1, sizeof *c->shape_set);
    c->bound = dt_calloc(nt, sizeof *c->bound);
    c->own = dt_calloc(nt, sizeof *c->own);
    c->own_cap = dt_calloc(nt, sizeof *c->own_cap);
    c->given = dt_calloc(nt, sizeof *c->given);
    c->offsets = dt_calloc(nt, sizeof *c->offsets);
    c->snap = dt_calloc(nt, sizeof *c->snap);
    c->snap_size = dt_calloc(nt, sizeof *c->snap_size);
    ductile_status s = DUCTILE_OK;
    if (!c->shape_set || !c->bound || !c->own || !c->own_cap || !c->given || !c->offsets || !c->snap || !c->snap_size)
        s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory creating a context");
    if (!s) s = dt_shape_state_init(&c->st, e);
    c->threads = dt_default_threads();
    if (!s) s = dt_pool_create(c->threads, &c->pool);
    if (!s && !e->backend->host_memory) {
        c->dval = dt_calloc(nt, sizeof *c->dval);
        c->dval_cap = dt_calloc(nt, sizeof *c->dval_cap);
        c->hbuf = dt_calloc(nt, sizeof *c->hbuf);
        c->hbuf_cap = dt_calloc(nt, sizeof *c->hbuf_cap);
        c->hostb = dt_calloc(nt, sizeof *c->hostb);
        if (!c->dval || !c->dval_cap || !c->hbuf || !c->hbuf_cap || !c->hostb)
            s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory creating a context");
    }
    if (!s) s = dt_seqvals_create(c);
    if (!s) s = dt_subruns_create(&e->plan, &c->subruns);
    if (!s && e->backend->state_create) s = e->backend->state_create(&c->bstate);
    c->graphs_max = DT_GRAPHS_DEFAULT;
    c->graphable = dt_graphable(e);
    if (!s && c->graphable) s = dt_graphs_set_max(&c->graphs, c->graphs_max, e->backend);
    if (s) {
        ductile_context_free(c);
        return s;
    }
    *out = c;
    return DUCTILE_OK;
}

void ductile_context_free(ductile_context *c)
{
    if (!c) return;
    dt_arena_release(&c->strings);
    dt_subruns_free(c->subruns);
    dt_df_free(&c->df);
    dt_pool_free(c->pool);
    if (c->st.views) dt_shape_state_free(&c->st, c->e);
    if (c->own)
        for (int t = 0; t < c->e->net->n_tensors; t++)
            if (c->own[t]) dt_own_release(c, t, c->own[t]);
    dt_free(c->shape_set);
    dt_free(c->bound);
    dt_free(c->own);
    dt_free(c->own_cap);
    dt_free(c->given);
    dt_free(c->offsets);
    if (c->snap)
        for (int t = 0; t < c->e->net->n_tensors; t++) dt_free(c->snap[t]);
    dt_free(c->snap);
    dt_free(c->snap_size);
    if (c->arena) c->e->backend->release(c->arena);
    for (int t = 0; c->dval && t < c->e->net->n_tensors; t++)
        if (c->dval[t]) c->e->backend->release(c->dval[t]);
    for (int t = 0; c->hbuf && t < c->e->net->n_tensors; t++) dt_free(c->hbuf[t]);
    dt_free(c->dval);
    dt_free(c->dval_cap);
    dt_free(c->hbuf);
    dt_free(c->hbuf_cap);
    dt_free(c->hostb);
    dt_graphs_free(&c->graphs, c->e->backend);
    if (c->bstate) c->e->backend->state_free(c->bstate);
    if (c->scratch) c->e->backend->release(c->scratch);
    dt_free(c->hscratch);
    for (int t = 0; c->vals && t < c->e->net->n_tensors; t++) {
        dt_seqval_free(c->vals[t]);
        dt_free(c->vals[t]);
    }
    dt_free(c->vals);
    dt_free(c);
}

static ductile_status dt_ctx_set_threads(ductile_context *c, int32_t threads)
{
    if (threads < 1 || threads > 64)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_threads: %d threads; expected 1..64", threads);
    dt_pool *p;
    DT_TRY(dt_pool_create(threads, &p));
    dt_pool_free(c->pool);
    c->pool = p;
    c->threads = threads;
    c->ready = false;   /* kernels' scratch depends on the thread count */
    return DUCTILE_OK;
}

static ductile_status dt_ctx_set_profile(ductile_context *c, int32_t profile)
{
    if (profile < 0 || profile >= c->e->n_profiles)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "profile %d does not exist: the engine has %d profile%s (0..%d)",
                       profile, c->e->n_profiles, c->e->n_profiles == 1 ? "" : "s", c->e->n_profiles - 1);
    c->profile = profile;
    memset(c->shape_set, 0, sizeof *c->shape_set * (size_t)c->e->net->n_inputs);
    c->inputs_ready = false;
    c->ready = false;
    return DUCTILE_OK;
}

int32_t ductile_context_get_profile(const ductile_context *c) { return c ? c->profile : -1; }

/* Comma-separated input names, for "not an input" messages. */
static void dt_input_names(const ductile_network *net, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < net->n_inputs && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s'%s'", i ? ", " : "", net->inputs[i]->name);
}

static int dt_input_index(const ductile_network *net, const char *name)
{
    for (int i = 0; i < net->n_inputs; i++)
        if (!strcmp(net->inputs[i]->name, name)) return i;
    return -1;
}

static ductile_status dt_ctx_set_input_shape(ductile_context *c, const char *name, const ductile_dims *shape)
{
    const ductile_network *net = c->e->net;
    int i = dt_input_index(net, name);
    if (i < 0) {
        char names[512];
        dt_input_names(net, names, sizeof names);
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "'%s' is not an input of the engine (inputs: %s)", name, names);
    }
    const ductile_tensor *T = net->inputs[i];
    if (T->kind) return dt_not_tensor(T);
    const dt_profile_input *pi = dt_profile_get(&c->e->profiles[c->profile], name);
    if (!pi) return dt_fail(DUCTILE_ERR_INTERNAL, "profile %d has no range for input '%s'", c->profile, name);
    if (shape->nb_dims != pi->rank)
        return dt_fail(DUCTILE_ERR_SHAPE, "input '%s' has rank %d but the shape given has %d dimensions",
                       name, pi->rank, shape->nb_dims);
    for (int d = 0; d < pi->rank; d++) {
        if (shape->d[d] >= pi->min[d] && shape->d[d] <= pi->max[d]) continue;
        char sym[80] = "";
        if (T->dim_sym[d]) snprintf(sym, sizeof sym, " (%s)", T->dim_sym[d]);
        return dt_fail(DUCTILE_ERR_SHAPE, "input '%s' dimension %d%s is %lld, outside the range %lld..%lld of profile %d",
                       name, d, sym, (long long)shape->d[d], (long long)pi->min[d], (long long)pi->max[d], c->profile);
    }
    dt_view *v = &c->st.views[T->index];
    c->ran = false; /* new inputs: data-dependent output shapes are unknown until execute */
    /* The shape it already has: nothing to plan again. TensorRT code and the Python binding's
     * run() set every input's shape before every execute; re-running the shape pass, the
     * memory plan and the scratch sizing each time cost bert_small at sequence 16 about a
     * fifth of its run. */
    if (c->shape_set[i] && v->rank == pi->rank && !memcmp(v->dims, shape->d, sizeof(int64_t) * (size_t)pi->rank))
        return DUCTILE_OK;
    v->rank = pi->rank;
    memcpy(v->dims, shape->d, sizeof(int64_t) * (size_t)pi->rank);
    c->shape_set[i] = true;
    c->inputs_ready = false;
    c->ready = false;
    return DUCTILE_OK;
}

const dt_view *dt_context_views(const ductile_context *c) { return c->st.views; }

/* Zeroes `bytes` of the backend's memory at p: memset for host memory; a device's is
 * written from a block of zeros through the backend's copy (the host cannot touch it). */
static ductile_status dt_zero_buffer(const dt_backend *be, void *p, size_t bytes)
{
    if (be->host_memory) {
        memset(p, 0, bytes);
        return DUCTILE_OK;
    }
    static const unsigned char zeros[65536];
    for (size_t at = 0; at < bytes; at += sizeof zeros) {
        size_t n = bytes - at < sizeof zeros ? bytes - at : sizeof zeros;
        DT_TRY(be->copy((char *)p + at, zeros, n, NULL));
    }
    return be->sync ? be->sync(NULL) : DUCTILE_OK;
}

/* Whether the context's own buffer of tensor t is host memory on a device backend
 * (dt_engine_host_tensor):
 *   1. a shape input's, since the shape pass reads its values on the host (TensorRT's rule:
 *      shape tensors live in host memory); device kernels that read it get a device copy (dval);
 *   2. a string tensor's: its elements are views of host bytes, and string layers run on the
 *      host;
 *   3. every tensor of an eager engine: it runs on the host (dt_engine_upload), inputs bound
 *      to device memory copied in first (dt_eager_stage_inputs). */
static bool dt_own_on_host(const ductile_context *c, int t)
{
    return !c->e->backend->host_memory && dt_engine_host_tensor(c->e, t);
}

static void dt_own_release(ductile_context *c, int t, void *p)
{
    if (dt_own_on_host(c, t)) dt_free(p);
    else c->e->backend->release(p);
}

/* Ensures `need` bytes in the context's own buffer of tensor t. A new buffer is zeroed, so
 * nothing ever reads what the allocator left there, and it has not been handed out yet. */
static ductile_status dt_own_buffer(ductile_context *c, int t, size_t need)
{
    if (need == 0) need = 1;
    if (c->own_cap[t] >= need) return DUCTILE_OK;
    bool host = dt_own_on_host(c, t);
    void *p = host ? dt_aligned_alloc(64, need) : c->e->backend->alloc(need);
    if (!p)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for tensor '%s'", need, c->e->net->tensors[t]->name);
    ductile_status s = host ? (memset(p, 0, need), DUCTILE_OK) : dt_zero_buffer(c->e->backend, p, need);
    if (s) {
        dt_own_release(c, t, p);
        return s;
    }
    if (c->own[t]) dt_own_release(c, t, c->own[t]);
    c->own[t] = p;
    c->own_cap[t] = need;
    c->given[t] = false;
    return DUCTILE_OK;
}

/* Device backends: value tensors (computed on the host by the shape pass) and shape inputs
 * (host memory) that device kernels read get a device copy, once per set of shapes and
 * shape-input values: a shape input's is of the values the shape pass read (c->snap), which
 * a change to the caller's buffer makes the next execute plan and upload again. */
static ductile_status dt_upload_values(ductile_context *c)
{
    const ductile_engine *e = c->e;
    const dt_backend *be = e->backend;
    for (int i = 0; i < e->plan.n_layers; i++) {
        const dt_plan_layer *pl = &e->plan.layers[i];
        if (pl->value || pl->fallback) continue;
        for (int k = 0; k < pl->layer->n_in; k++) {
            const ductile_tensor *T = pl->layer->in[k];
            if (!T || (e->plan.kind[T->index] != DT_TENSOR_VALUE && !e->plan.shape_input[T->index])) continue;
            int t = T->index;
            size_t bytes;
            if (!dt_view_bytes(&c->st.views[t], &bytes))
                return dt_fail(DUCTILE_ERR_SHAPE, "tensor '%s' is too large", T->name);
            if (c->dval_cap[t] < bytes || !c->dval[t]) {
                void *p = be->alloc(bytes ? bytes : 1);
                if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of %s memory (%zu bytes) for tensor '%s'", be->name, bytes, T->name);
                if (c->dval[t]) be->release(c->dval[t]);
                c->dval[t] = p;
                c->dval_cap[t] = bytes;
            }
            const void *src = e->plan.shape_input[t] ? c->snap[t] : c->st.views[t].data;
            if (bytes) DT_TRY(be->copy(c->dval[t], src, bytes, NULL));
        }
    }
    return be->sync ? be->sync(NULL) : DUCTILE_OK;
}

/* The buffer execute reads for input t: the caller's if bound, else the context's own. */
static void *dt_input_data(const ductile_context *c, int t) { return c->bound[t] ? c->bound[t] : c->own[t]; }

/* Whether the caller can have written input t's values (see the opening comment). */
static bool dt_input_given(const ductile_context *c, int t)
{
    size_t bytes;
    return c->bound[t] || c->given[t] || (dt_view_bytes(&c->st.views[t], &bytes) && bytes == 0);
}

/* Completes the input shapes (fixed inputs take their only shape) and sizes the inputs'
 * buffers: all that get_tensor_address needs for an input. Reads no input values. */
static ductile_status dt_prepare_inputs(ductile_context *c)
{
    if (c->inputs_ready) return DUCTILE_OK;
    const ductile_engine *e = c->e;
    const ductile_network *net = e->net;
    for (int i = 0; i < net->n_inputs; i++) {
        if (c->shape_set[i]) continue;
        const dt_profile_input *pi = dt_profile_get(&e->profiles[c->profile], net->inputs[i]->name);
        bool fixed = pi != NULL;
        for (int d = 0; fixed && d < pi->rank; d++) fixed = pi->min[d] == pi->max[d];
        if (!fixed)
            return dt_fail(DUCTILE_ERR_STATE, "the shape of input '%s' is not set (call set_input_shape for every dynamic input)",
                           net->inputs[i]->name);
        dt_view *v = &c->st.views[net->inputs[i]->index];
        v->rank = pi->rank;
        memcpy(v->dims, pi->min, sizeof(int64_t) * (size_t)pi->rank);
        c->shape_set[i] = true;
    }
    DT_TRY(dt_check_shared_symbols(e, c->st.views));
    for (int i = 0; i < net->n_inputs; i++) {
        int t = net->inputs[i]->index;
        size_t bytes;
        if (!dt_view_bytes(&c->st.views[t], &bytes))
            return dt_fail(DUCTILE_ERR_SHAPE, "input '%s' is too large", net->tensors[t]->name);
        DT_TRY(dt_own_buffer(c, t, bytes));
    }
    c->inputs_ready = true;
    return DUCTILE_OK;
}

/* New values in a shape input (written into the buffer or bound anew) mean new shapes. */
static void dt_check_shape_values(ductile_context *c)
{
    const dt_plan *p = &c->e->plan;
    const ductile_network *net = c->e->net;
    for (int i = 0; c->ready && p->n_shape_inputs && i < net->n_inputs; i++) {
        int t = net->inputs[i]->index;
        if (p->shape_input[t] && memcmp(dt_input_data(c, t), c->snap[t], c->snap_size[t]) != 0) c->ready = false;
    }
}

/* Ensures `bytes` of kernel scratch, next to the arena and sized with it: the most any
 * layer asks for at the current shapes, so execute never allocates. */
static ductile_status dt_scratch_reserve(ductile_context *c, size_t bytes)
{
    if (bytes <= c->scratch_cap) return DUCTILE_OK;
    void *p = c->e->backend->alloc(bytes);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for kernel scratch", bytes);
    if (c->scratch) c->e->backend->release(c->scratch);
    c->scratch = p;
    c->scratch_cap = bytes;
    return DUCTILE_OK;
}

static ductile_status dt_host_buffer(ductile_context *c, int t, size_t bytes);

/* Device engines: the host copies the fallback layers' tensors go through (dt_run_fallback),
 * sized for the current shapes, so the run finds them. */
static ductile_status dt_fallback_buffers(ductile_context *c)
{
    const dt_plan *p = &c->e->plan;
    for (int i = 0; i < p->n_layers; i++) {
        const dt_plan_layer *pl = &p->layers[i];
        if (pl->value || !pl->fallback || pl->alias) continue;
        const ductile_layer *L = pl->layer;
        for (int k = 0; k < L->n_in + L->n_out; k++) {
            const ductile_tensor *T = k < L->n_in ? L->in[k] : L->out[k - L->n_in];
            if (!T) continue;
            int t = T->index;
            /* What dt_run_fallback reads in place: constants, values and shape inputs. */
            if (k < L->n_in && (p->kind[t] == DT_TENSOR_CONSTANT || p->kind[t] == DT_TENSOR_VALUE || p->shape_input[t]))
                continue;
            size_t bytes;
            if (!dt_view_bytes(&c->st.views[t], &bytes))
                return dt_fail(DUCTILE_ERR_SHAPE, "tensor '%s' is too large", T->name);
            DT_TRY(dt_host_buffer(c, t, bytes));
        }
    }
    return DUCTILE_OK;
}

/* Ensures `bytes` of host scratch for layers that run on the host on a device backend
 * (fallbacks, eager engines). */
static ductile_status dt_host_scratch_reserve(ductile_context *c, size_t bytes)
{
    if (bytes <= c->hscratch_cap) return DUCTILE_OK;
    void *p = dt_aligned_alloc(64, bytes);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for kernel scratch", bytes);
    dt_free(c->hscratch);
    c->hscratch = p;
    c->hscratch_cap = bytes;
    return DUCTILE_OK;
}

/* Runs the shape program and plans memory, once per new set of shapes and shape-input
 * values. The shape pass reads the shape inputs' values, so they must have been given. */
static ductile_status dt_prepare(ductile_context *c)
{
    dt_check_shape_values(c);
    if (c->ready) return DUCTILE_OK;
    DT_TRY(dt_prepare_inputs(c));
    const ductile_engine *e = c->e;
    const ductile_network *net = e->net;
    for (int i = 0; i < net->n_inputs; i++) {
        int t = net->inputs[i]->index;
        if (!e->plan.shape_input[t]) continue;
        if (!dt_input_given(c, t))
            return dt_fail(DUCTILE_ERR_STATE,
                           "the values of shape input '%s' decide shapes but were not given: bind them with set_tensor_address, "
                           "or write them into the buffer get_tensor_address returns, first",
                           net->tensors[t]->name);
        size_t bytes;
        dt_view_bytes(&c->st.views[t], &bytes); /* checked by dt_prepare_inputs */
        void *src = dt_input_data(c, t);
        c->st.views[t].data = src;
        if (c->snap_size[t] < bytes || !c->snap[t]) {
            void *p = dt_realloc(c->snap[t], bytes ? bytes : 1);
            if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for input '%s'", net->tensors[t]->name);
            c->snap[t] = p;
        }
        memcpy(c->snap[t], src, bytes);
        c->snap_size[t] = bytes;
    }
    c->ran = false;
    c->point = dt_point_nearest(e, c->profile, c->st.views);
    if (e->plan.eager) { /* shapes are inferred layer by layer in execute */
        c->ready = true;
        return DUCTILE_OK;
    }
    dt_exec ex = {.pool = c->pool, .profile = c->profile, .point = c->point};
    DT_TRY(dt_shape_pass(e, &c->st, &ex));
    if (!e->backend->host_memory) DT_TRY(dt_upload_values(c));
    size_t arena = 0;
    DT_TRY(dt_memplan(e, c->st.views, c->offsets, &arena));
    DT_TRY(dt_df_choose(&c->df, e, c->st.views, dt_pool_threads(c->pool), c->offsets, &arena));
    if (arena > c->arena_cap) {
        void *p = e->backend->alloc(arena);
        if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for activations", arena);
        if (c->arena) e->backend->release(c->arena);
        c->arena = p;
        c->arena_cap = arena;
    }
    size_t scratch = 0, planned = 0;
    DT_TRY(dt_plan_scratch_max(&e->plan, c->st.views, dt_pool_threads(c->pool), false, &scratch));
    if (c->df.k) {
        size_t groups;
        DT_TRY(dt_df_scratch(&c->df, e, dt_pool_threads(c->pool), &groups));
        if (groups > scratch) scratch = groups;
    }
    /* What the kernels make per set of shapes with the backend's state (library descriptors,
     * their workspace: backend.h, plan_shapes), made here so that execute finds it. */
    dt_exec pex = {.pool = c->pool, .profile = c->profile, .point = c->point, .state = c->bstate};
    DT_TRY(dt_plan_shapes(&e->plan, c->st.views, &pex, &planned));
    DT_TRY(dt_scratch_reserve(c, scratch > planned ? scratch : planned));
    if (!e->backend->host_memory) {
        DT_TRY(dt_fallback_buffers(c));
        /* Fallback layers run compiled host kernels: their scratch is host memory. */
        DT_TRY(dt_plan_scratch_max(&e->plan, c->st.views, dt_pool_threads(c->pool), true, &scratch));
        DT_TRY(dt_host_scratch_reserve(c, scratch));
    }
    for (int i = 0; i < net->n_outputs; i++) {
        int t = net->outputs[i]->index;
        if (e->plan.kind[t] == DT_TENSOR_INPUT) continue; /* the builder refuses these */
        size_t bytes;
        if (!dt_view_bytes(&c->st.views[t], &bytes))
            return dt_fail(DUCTILE_ERR_SHAPE, "tensor '%s' is too large", net->tensors[t]->name);
        DT_TRY(dt_own_buffer(c, t, bytes));
    }
    c->ready = true;
    return DUCTILE_OK;
}

static const ductile_tensor *dt_io_tensor(const ductile_network *net, const char *name)
{
    for (int i = 0; i < net->n_inputs; i++)
        if (!strcmp(net->inputs[i]->name, name)) return net->inputs[i];
    for (int i = 0; i < net->n_outputs; i++)
        if (!strcmp(net->outputs[i]->name, name)) return net->outputs[i];
    return NULL;
}

static ductile_status dt_not_io(const ductile_network *net, const char *name)
{
    char names[512];
    size_t used = 0;
    names[0] = 0;
    for (int i = 0; i < net->n_inputs + net->n_outputs && used < sizeof names; i++) {
        const ductile_tensor *t = i < net->n_inputs ? net->inputs[i] : net->outputs[i - net->n_inputs];
        used += (size_t)snprintf(names + used, sizeof names - used, "%s'%s'", i ? ", " : "", t->name);
    }
    return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "'%s' is not an input or output of the engine (tensors: %s)", name, names);
}

/* Tensor calls on a sequence or optional: say which calls it takes. */
static ductile_status dt_not_tensor(const ductile_tensor *T)
{
    return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "'%s' is %s, not a tensor: use set_sequence / get_sequence", T->name,
                   dt_value_kind_name(T->kind));
}

static ductile_status dt_ctx_get_tensor_shape(ductile_context *c, const char *name, ductile_dims *out)
{
    const ductile_tensor *T = dt_io_tensor(c->e->net, name);
    if (!T) return dt_not_io(c->e->net, name);
    if (T->kind) return dt_not_tensor(T);
    if (T->is_input) {
        int i = dt_input_index(c->e->net, name);
        if (!c->shape_set[i]) {
            DT_TRY(dt_prepare_inputs(c)); /* fills fixed inputs, or says which shape is missing */
        }
    } else {
        DT_TRY(dt_prepare(c));
        if (c->e->plan.eager && !c->ran)
            return dt_fail(DUCTILE_ERR_STATE,
                           "the shape of output '%s' depends on data computed at run time (node '%s' (%s)); it is known after execute",
                           name, c->e->plan.eager_cause->name, c->e->plan.eager_cause->op_type);
    }
    const dt_view *v = &c->st.views[T->index];
    memset(out, 0, sizeof *out);
    out->nb_dims = v->rank;
    memcpy(out->d, v->dims, sizeof(int64_t) * (size_t)v->rank);
    return DUCTILE_OK;
}

/* Tensors whose bytes a device engine reads or writes on the host take no device buffer
 * (dt_own_on_host says which): a device pointer bound to one is refused, naming it. Inputs of
 * an eager engine are the exception: it copies a device input to the host before it runs. */
static ductile_status dt_check_host_binding(const ductile_context *c, const ductile_tensor *T, const void *data)
{
    const ductile_engine *e = c->e;
    const dt_backend *be = e->backend;
    int t = T->index;
    /* An eager engine's inputs take device memory too (dt_eager_stage_inputs). */
    bool host = dt_engine_host_tensor(e, t) && !(e->plan.eager && T->is_input && !e->plan.shape_input[t] &&
                                                 T->dtype != DUCTILE_STRING);
    if (!data || be->host_memory || !host || !be->owns_pointer || !be->owns_pointer(data)) return DUCTILE_OK;
    if (e->plan.shape_input[t])
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "input '%s' is a shape tensor (its values decide shapes, and the shapes are computed on the host): "
                       "bind host memory to it, not %s device memory",
                       T->name, be->name);
    if (T->dtype == DUCTILE_STRING)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "%s '%s' is a string tensor (its elements are views of host bytes, and string layers run on the "
                       "host): bind host memory to it, not %s device memory",
                       T->is_input ? "input" : "output", T->name, be->name);
    return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                   "output '%s': the engine runs on the host (output shapes depend on data computed by node '%s' (%s)), "
                   "and execute leaves its outputs in the context's own host buffers (get_tensor_address after execute): "
                   "a %s device buffer cannot be bound to one",
                   T->name, e->plan.eager_cause->name, e->plan.eager_cause->op_type, be->name);
}

static ductile_status dt_ctx_set_tensor_address(ductile_context *c, const char *name, void *data)
{
    const ductile_tensor *T = dt_io_tensor(c->e->net, name);
    if (!T) return dt_not_io(c->e->net, name);
    if (T->kind && data) return dt_not_tensor(T);
    DT_TRY(dt_check_host_binding(c, T, data));
    c->bound[T->index] = data;
    if (T->is_input && data) c->ran = false; /* new values; unbinding leaves the last run's outputs */
    return DUCTILE_OK;
}

/* The buffer layers read tensor t from in this run. */
static void *dt_tensor_data(ductile_context *c, int t)
{
    switch (c->e->plan.kind[t]) {
    case DT_TENSOR_CONSTANT:
    case DT_TENSOR_VALUE: return c->st.views[t].data;
    case DT_TENSOR_ACTIVATION: return c->arena ? (char *)c->arena + c->offsets[t] : NULL; /* no arena: all empty */
    case DT_TENSOR_INPUT: return dt_input_data(c, t);
    case DT_TENSOR_OUTPUT: return c->bound[t] && !c->e->plan.eager ? c->bound[t] : c->own[t];
    }
    return NULL;
}

/* Where execute leaves a network output: the caller's buffer, else the context's (eager
 * engines always use their own). For a constant or value output this is not where layers
 * read it from: execute copies it here. */
static void *dt_output_data(ductile_context *c, int t)
{
    return c->bound[t] && !c->e->plan.eager ? c->bound[t] : c->own[t];
}

/* Copies the outputs that are constants or values (known before execute) into their output
 * buffers; eager engines first give them a buffer of the size their view has. Device engines
 * (host_bound: dt_execute_device's per-tensor flags, NULL for a host backend) copy on the
 * stream into the device buffer the output leaves from (the context's own when the caller's
 * is host memory: dt_execute_device copies that back at the end). */
static ductile_status dt_copy_known_outputs(ductile_context *c, const bool *host_bound, void *stream)
{
    const ductile_network *net = c->e->net;
    for (int i = 0; i < net->n_outputs; i++) {
        int t = net->outputs[i]->index;
        dt_tensor_kind k = c->e->plan.kind[t];
        if (k != DT_TENSOR_CONSTANT && k != DT_TENSOR_VALUE) continue;
        const dt_view *v = &c->st.views[t];
        size_t bytes;
        if (!dt_view_bytes(v, &bytes))
            return dt_fail(DUCTILE_ERR_SHAPE, "output '%s' is too large", net->tensors[t]->name);
        if (k == DT_TENSOR_CONSTANT && bytes > net->tensors[t]->nbytes)
            return dt_fail(DUCTILE_ERR_FORMAT, "constant output '%s' holds %zu bytes but its shape needs %zu",
                           net->tensors[t]->name, net->tensors[t]->nbytes, bytes);
        if (c->e->plan.eager) DT_TRY(dt_own_buffer(c, t, bytes));
        if (host_bound && !dt_own_on_host(c, t)) {
            void *dst = c->bound[t] && !host_bound[t] ? c->bound[t] : c->own[t];
            if (bytes) DT_TRY(c->e->backend->copy(dst, v->data, bytes, stream));
            continue;
        }
        void *dst = dt_output_data(c, t);
        if (bytes && dst != v->data) memcpy(dst, v->data, bytes);
    }
    return DUCTILE_OK;
}

static ductile_status dt_ctx_get_tensor_address(ductile_context *c, const char *name, void **data)
{
    *data = NULL;
    const ductile_tensor *T = dt_io_tensor(c->e->net, name);
    if (!T) return dt_not_io(c->e->net, name);
    if (T->kind) return dt_not_tensor(T);
    int t = T->index;
    if (T->is_input) {
        /* Only the buffer: the shape pass waits until the caller had a chance to write it. */
        DT_TRY(dt_prepare_inputs(c));
        if (!c->bound[t]) c->given[t] = true;
        c->ran = false; /* the caller may write new values into it */
    } else {
        DT_TRY(dt_prepare(c));
    }
    *data = T->is_input ? dt_tensor_data(c, t) : dt_output_data(c, t);
    return DUCTILE_OK;
}

/* A tensor output of a sequence layer (runtime/seqval.h): its own buffer, as eager outputs
 * have, checked against the dtype the engine stores for it. */
static ductile_status dt_seq_out(void *ctx, int t, dt_view *v)
{
    ductile_context *c = ctx;
    const ductile_tensor *T = c->e->net->tensors[t];
    DT_TRY(dt_check_dtype(T->producer, T, T->dtype, v->dtype, DUCTILE_ERR_FORMAT));
    size_t bytes;
    if (v->rank < 0 || v->rank > DT_MAX_DIMS || !dt_view_bytes(v, &bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "output '%s' has an invalid shape", T->name);
    DT_TRY(dt_own_buffer(c, t, bytes));
    v->data = c->own[t];
    c->st.views[t] = *v;
    return DUCTILE_OK;
}

typedef struct dt_ctrl_out {
    ductile_context *c;
    const ductile_layer *L;
} dt_ctrl_out;

/* Output k of a control-flow layer: the context's own buffer of the view's size. */
static ductile_status dt_ctrl_alloc(void *user, int k, dt_view *v)
{
    dt_ctrl_out *o = user;
    int t = o->L->out[k]->index;
    size_t bytes;
    if (v->rank < 0 || v->rank > DT_MAX_DIMS || !dt_view_bytes(v, &bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "output %d ('%s') has an invalid shape", k, o->L->out[k]->name);
    DT_TRY(dt_own_buffer(o->c, t, bytes));
    v->data = o->c->own[t];
    o->c->st.views[t] = *v;
    return DUCTILE_OK;
}

/* If, Loop, Scan: the subgraphs run and give the outputs their shapes (runtime/ctrl.h). */
static ductile_status dt_eager_ctrl(ductile_context *c, const dt_plan_layer *pl, const dt_view *in, dt_view *out,
                                    dt_exec *ex)
{
    const ductile_layer *L = pl->layer;
    dt_ctrl_out o = {c, L};
    double t0 = c->prof ? dt_now_ms() : 0;
    ductile_status s = dt_ctrl_run(pl->ctrl, L, in, c->vals, out, ex, dt_ctrl_alloc, &o);
    if (s) return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
    for (int k = 0; k < L->n_out; k++)
        DT_TRY(dt_check_dtype(L, L->out[k], L->out[k]->dtype, out[k].dtype, DUCTILE_ERR_FORMAT));
    if (c->prof)
        dt_profile_report(c->e, pl, (int)(pl - c->e->plan.layers), in, out, c->profile, c->point, dt_pool_threads(c->pool),
                          dt_now_ms() - t0, c->prof, c->prof_user);
    return DUCTILE_OK;
}

static ductile_status dt_host_buffer(ductile_context *c, int t, size_t bytes);

/* Eager engines on a device backend run on the host (dt_engine_upload): an input bound to
 * device memory is copied into a host buffer (hbuf) on the caller's stream, and the stream
 * is waited for, since the first layers read it on the host. hostb[t] says, as on the device
 * path, that the caller bound host memory; an unbound input is the context's own, in host
 * memory (dt_own_on_host). */
static ductile_status dt_eager_stage_inputs(ductile_context *c, void *stream)
{
    const ductile_engine *e = c->e;
    const dt_backend *be = e->backend;
    if (be->host_memory) return DUCTILE_OK;
    bool copied = false;
    for (int i = 0; i < e->net->n_inputs; i++) {
        int t = e->net->inputs[i]->index;
        c->hostb[t] = c->bound[t] && !(be->owns_pointer && be->owns_pointer(c->bound[t]));
        if (!c->bound[t] || c->hostb[t]) continue;
        size_t bytes;
        if (!dt_view_bytes(&c->st.views[t], &bytes))
            return dt_fail(DUCTILE_ERR_SHAPE, "input '%s' is too large", e->net->tensors[t]->name);
        DT_TRY(dt_host_buffer(c, t, bytes));
        if (bytes) DT_TRY(be->copy(c->hbuf[t], c->bound[t], bytes, stream));
        copied |= bytes > 0;
    }
    return copied && be->sync ? be->sync(stream) : DUCTILE_OK;
}

/* The host bytes an eager run reads for input tensor t (dt_eager_stage_inputs). */
static void *dt_eager_input_data(const ductile_context *c, int t)
{
    if (!c->bound[t]) return c->own[t];
    return c->hostb && !c->hostb[t] ? c->hbuf[t] : c->bound[t];
}

/* Eager execution: each layer's shapes are inferred with its inputs' data at hand, and every
 * tensor gets its own buffer (outputs included: they are the context's, see the header).
 * On a device backend everything here is host memory; stream is the caller's, used only to
 * copy device inputs in (dt_eager_stage_inputs). */
static ductile_status dt_execute_eager(ductile_context *c, void *stream)
{
    const ductile_engine *e = c->e;
    const dt_plan *p = &e->plan;
    bool device = !e->backend->host_memory;
    dt_exec ex = {.pool = c->pool, .profile = c->profile, .point = c->point, .strings = &c->strings, .max_iterations = c->max_iterations,
                  .subruns = c->subruns};
    dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO];
    DT_TRY(dt_eager_stage_inputs(c, stream));
    /* Sequences computed by an earlier execute are not this one's values: a run that fails
     * leaves those of the layers after the failure unset (get_sequence refuses them). */
    for (int t = 0; c->vals && t < e->net->n_tensors; t++)
        if (c->vals[t] && !e->net->tensors[t]->is_input) c->vals[t]->set = false;
    for (int i = 0; i < p->n_layers; i++) {
        const dt_plan_layer *pl = &p->layers[i];
        const ductile_layer *L = pl->layer;
        dt_layer_input_views(L, c->st.views, in);
        for (int k = 0; k < L->n_in; k++) {
            if (!L->in[k]) continue;
            int t = L->in[k]->index;
            in[k].data = e->plan.kind[t] == DT_TENSOR_CONSTANT ? (void *)L->in[k]->data
                       : e->plan.kind[t] == DT_TENSOR_INPUT ? dt_eager_input_data(c, t)
                       : c->own[t];
        }
        memset(out, 0, sizeof out[0] * (size_t)(L->n_out ? L->n_out : 1));
        if (pl->seq) {
            double t0 = c->prof ? dt_now_ms() : 0;
            ductile_status s = dt_seq_run(L, pl->params, in, c->vals, dt_seq_out, c);
            if (s) return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
            for (int k = 0; k < L->n_out; k++) out[k] = c->st.views[L->out[k]->index];
            if (c->prof) dt_profile_report(e, pl, i, in, out, c->profile, c->point, dt_pool_threads(c->pool), dt_now_ms() - t0, c->prof, c->prof_user);
            continue;
        }
        if (pl->ctrl) {
            DT_TRY(dt_eager_ctrl(c, pl, in, out, &ex));
            continue;
        }
        ductile_status s = pl->def->infer(L, in, out);
        for (int k = 0; !s && k < L->n_out; k++)
            if ((s = dt_check_dtype(L, L->out[k], L->out[k]->dtype, out[k].dtype, DUCTILE_ERR_FORMAT))) return s;
        for (int k = 0; !s && k < L->n_out; k++) {
            size_t bytes;
            int t = L->out[k]->index;
            if (out[k].rank < 0 || out[k].rank > DT_MAX_DIMS || !dt_view_bytes(&out[k], &bytes))
                s = dt_fail(DUCTILE_ERR_SHAPE, "output %d ('%s') has an invalid shape", k, L->out[k]->name);
            else
                s = dt_own_buffer(c, t, bytes);
            if (!s) {
                out[k].data = c->own[t];
                c->st.views[t] = out[k];
            }
        }
        size_t scratch = 0;
        if (!s) s = dt_plan_layer_scratch(pl, in, out, dt_pool_threads(c->pool), &scratch);
        if (!s) s = device ? dt_host_scratch_reserve(c, scratch) : dt_scratch_reserve(c, scratch);
        ex.scratch = device ? c->hscratch : c->scratch;
        ex.scratch_bytes = device ? c->hscratch_cap : c->scratch_cap;
        double t0 = c->prof ? dt_now_ms() : 0;
        if (!s) s = dt_plan_layer_run(pl, in, out, &ex);
        if (s) return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
        if (c->prof) dt_profile_report(e, pl, i, in, out, c->profile, c->point, dt_pool_threads(c->pool), dt_now_ms() - t0, c->prof, c->prof_user);
    }
    DT_TRY(dt_copy_known_outputs(c, NULL, NULL));
    c->ran = true;
    /* A device backend queued nothing after the input copies it waited for. */
    return !device && e->backend->sync ? e->backend->sync(ex.stream) : DUCTILE_OK;
}

/* ---- device backends ----
 * Buffers live on the device: the arena, the context's own I/O buffers, the engine's device
 * copies of constants (dconst) and the context's of value tensors (dval). A caller buffer in
 * host memory (a numpy array) is copied through the context's own device buffer. A layer
 * without a device kernel ("cpu fallback") runs on the host: its device inputs are copied into
 * host buffers (constants and values are read in place), the stream is waited for, the host
 * kernel runs, and its outputs are copied back. Everything else is queued on the stream. */

/* The device address of tensor t for this run. */
static void *dt_device_data(ductile_context *c, int t, const bool *host_bound)
{
    switch (c->e->plan.kind[t]) {
    case DT_TENSOR_CONSTANT: return c->e->dconst[t];
    case DT_TENSOR_VALUE: return c->dval[t];
    case DT_TENSOR_ACTIVATION: return c->arena ? (char *)c->arena + c->offsets[t] : NULL;
    case DT_TENSOR_INPUT:
        if (c->e->plan.shape_input[t]) return c->dval[t]; /* host memory: its device copy */
        return c->bound[t] && !host_bound[t] ? c->bound[t] : c->own[t];
    case DT_TENSOR_OUTPUT: return c->bound[t] && !host_bound[t] ? c->bound[t] : c->own[t];
    }
    return NULL;
}

/* A network output whose buffers are host memory on this device backend (a string's):
 * host layers write it in place, the caller's buffer or the context's own. */
static bool dt_host_output(const ductile_context *c, int t)
{
    return c->e->plan.kind[t] == DT_TENSOR_OUTPUT && dt_own_on_host(c, t);
}

static ductile_status dt_host_buffer(ductile_context *c, int t, size_t bytes)
{
    if (c->hbuf_cap[t] >= bytes && c->hbuf[t]) return DUCTILE_OK;
    void *p = dt_aligned_alloc(64, bytes ? bytes : 1);
    if (!p)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for a host copy of '%s'", bytes,
                       c->e->net->tensors[t]->name);
    dt_free(c->hbuf[t]);
    c->hbuf[t] = p;
    c->hbuf_cap[t] = bytes;
    return DUCTILE_OK;
}

/* One fallback layer: device -> host, the host kernel, host -> device. */
static ductile_status dt_run_fallback(ductile_context *c, const dt_plan_layer *pl, dt_view *in, dt_view *out,
                                      const bool *host_bound, void *stream)
{
    const ductile_engine *e = c->e;
    const dt_backend *be = e->backend;
    const ductile_layer *L = pl->layer;
    for (int k = 0; k < L->n_in; k++) {
        const ductile_tensor *T = L->in[k];
        if (!T) continue;
        int t = T->index;
        dt_tensor_kind kind = e->plan.kind[t];
        if (kind == DT_TENSOR_CONSTANT) in[k].data = (void *)T->data;
        else if (kind == DT_TENSOR_VALUE) in[k].data = c->st.views[t].data;
        else if (e->plan.shape_input[t]) in[k].data = c->snap[t]; /* the values the shapes are of */
        else if ((kind == DT_TENSOR_INPUT || kind == DT_TENSOR_OUTPUT) && c->bound[t] && host_bound[t]) in[k].data = c->bound[t];
        else if ((kind == DT_TENSOR_INPUT || kind == DT_TENSOR_OUTPUT) && dt_own_on_host(c, t)) in[k].data = c->own[t];
        else {
            size_t bytes;
            if (!dt_view_bytes(&in[k], &bytes)) return dt_fail(DUCTILE_ERR_SHAPE, "input %d is too large", k);
            DT_TRY(dt_host_buffer(c, t, bytes));
            if (bytes) DT_TRY(be->copy(c->hbuf[t], dt_device_data(c, t, host_bound), bytes, stream));
            in[k].data = c->hbuf[t];
        }
    }
    for (int k = 0; k < L->n_out; k++) {
        int t = L->out[k]->index;
        size_t bytes;
        if (!dt_view_bytes(&out[k], &bytes)) return dt_fail(DUCTILE_ERR_SHAPE, "output %d is too large", k);
        if (dt_host_output(c, t)) {
            out[k].data = dt_output_data(c, t);
            continue;
        }
        DT_TRY(dt_host_buffer(c, t, bytes));
        out[k].data = c->hbuf[t];
    }
    DT_TRY(be->sync(stream));
    dt_exec hx = {.pool = c->pool, .profile = c->profile, .point = c->point, .scratch = c->hscratch, .scratch_bytes = c->hscratch_cap,
                  .strings = &c->strings, .subruns = c->subruns};
    DT_TRY(dt_plan_layer_run(pl, in, out, &hx));
    for (int k = 0; k < L->n_out; k++) {
        int t = L->out[k]->index;
        size_t bytes;
        if (!dt_host_output(c, t) && dt_view_bytes(&out[k], &bytes) && bytes)
            DT_TRY(be->copy(dt_device_data(c, t, host_bound), c->hbuf[t], bytes, stream));
    }
    return DUCTILE_OK;
}

/* The layers of a run, one by one, queued on `stream` (fallback layers wait for it). */
static ductile_status dt_run_device_layers(ductile_context *c, void *stream, const bool *hb)
{
    const ductile_engine *e = c->e;
    const dt_backend *be = e->backend;
    const dt_plan *p = &e->plan;
    ductile_status s = DUCTILE_OK;
    dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO], hin[DT_MAX_LAYER_IO];
    dt_exec ex = {.pool = c->pool, .profile = c->profile, .point = c->point, .stream = stream, .state = c->bstate, .host_in = hin,
                  .scratch = c->scratch, .scratch_bytes = c->scratch_cap};
    /* Profiling: the stream is drained before each layer starts and after it ends, so the
     * time is the layer's own (ductile.h). */
    if (!s && c->prof) s = be->sync(stream);
    for (int i = 0, ran = 0; !s && i < p->n_layers; i++) {
        const dt_plan_layer *pl = &p->layers[i];
        if (pl->value) continue;
        const ductile_layer *L = pl->layer;
        dt_layer_input_views(L, c->st.views, in);
        for (int k = 0; k < L->n_out; k++) out[k] = c->st.views[L->out[k]->index];
        double t0 = c->prof ? dt_now_ms() : 0;
        if (pl->fallback && !pl->alias) {
            s = dt_run_fallback(c, pl, in, out, hb, stream);
        } else {
            for (int k = 0; k < L->n_in; k++) {
                hin[k] = in[k];
                if (!L->in[k]) continue;
                int t = L->in[k]->index;
                hin[k].data = p->kind[t] == DT_TENSOR_CONSTANT || p->kind[t] == DT_TENSOR_VALUE ? in[k].data
                            : p->shape_input[t] ? c->snap[t] : NULL;
                in[k].data = dt_device_data(c, t, hb);
            }
            for (int k = 0; k < L->n_out; k++) out[k].data = dt_device_data(c, L->out[k]->index, hb);
            /* A view's output is its input's bytes (dt_plan.alias_of): nothing to launch. */
            if (!pl->alias) s = dt_plan_layer_run(pl, in, out, &ex);
        }
        if (!s && c->prof && !(s = be->sync(stream)))
            dt_profile_report(e, pl, ran++, in, out, c->profile, c->point, dt_pool_threads(c->pool), dt_now_ms() - t0, c->prof, c->prof_user);
        if (s) s = dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
    }
    return s;
}

/* The execution key of this run (runtime/graphs.h): what decides the work the layers queue.
 * Shapes and shape-input values decide every tensor's dims, the arena offsets and what
 * kernels read on the host (Resize's sizes, Slice's starts); the addresses are every buffer
 * a layer reads or writes: the arena, the kernels' scratch, the backend's workspace, each
 * I/O tensor's device buffer (the caller's, or the context's own when the caller's is host
 * memory) and the device copies of values. The engine's device constants (dconst) never move.
 * Buffers only grow, so an address that comes back holds at least what the record needs. */
static void dt_graph_key(ductile_context *c, const bool *hb)
{
    const ductile_network *net = c->e->net;
    dt_graphs *g = &c->graphs;
    dt_graphs_key_reset(g);
    dt_graphs_key_add(g, &c->profile, sizeof c->profile);
    for (int i = 0; i < net->n_inputs; i++) {
        const dt_view *v = &c->st.views[net->inputs[i]->index];
        dt_graphs_key_add(g, &v->rank, sizeof v->rank);
        dt_graphs_key_add(g, v->dims, sizeof v->dims[0] * (size_t)(v->rank > 0 ? v->rank : 0));
        if (c->e->plan.shape_input[net->inputs[i]->index]) {
            int t = net->inputs[i]->index;
            dt_graphs_key_add(g, &c->snap_size[t], sizeof c->snap_size[t]);
            dt_graphs_key_add(g, c->snap[t], c->snap_size[t]);
        }
    }
    const void *at[2] = {c->arena, c->scratch};
    uint64_t stamp = 0;
    size_t ws = 0;
    if (c->e->backend->state_memory) c->e->backend->state_memory(c->bstate, &ws, &stamp);
    dt_graphs_key_add(g, at, sizeof at);
    dt_graphs_key_add(g, &stamp, sizeof stamp);
    for (int i = 0; i < net->n_inputs + net->n_outputs; i++) {
        int t = (i < net->n_inputs ? net->inputs[i] : net->outputs[i - net->n_inputs])->index;
        void *d = dt_device_data(c, t, hb);
        dt_graphs_key_add(g, &d, sizeof d);
    }
    for (int t = 0; c->dval && t < net->n_tensors; t++)
        if (c->dval[t]) {
            dt_graphs_key_add(g, &t, sizeof t);
            dt_graphs_key_add(g, &c->dval[t], sizeof c->dval[t]);
        }
}

/* The layers of a run through the records (runtime/graphs.h): replayed at a key recorded
 * before, recorded at the second run at a key, else run one by one. Recording that fails
 * (the backend could not record some kernel's work) is never an error: the layers run one
 * by one instead, and a real error shows there. */
static ductile_status dt_device_layers(ductile_context *c, void *stream, const bool *hb)
{
    const dt_backend *be = c->e->backend;
    /* A profiler waits for the stream after every layer (ductile.h), which a recording
     * cannot hold: profiled runs go kernel by kernel, and neither record nor replay. */
    if (!c->graphable || !c->graphs_max || c->prof) return dt_run_device_layers(c, stream, hb);
    dt_graph_key(c, hb);
    dt_graph_entry *g = dt_graphs_find(&c->graphs);
    if (!g) {
        dt_graphs_remember(&c->graphs);
        return dt_run_device_layers(c, stream, hb);
    }
    if (g->failed) return dt_run_device_layers(c, stream, hb);
    if (!g->graph) {
        void *cap = NULL, *graph = NULL;
        ductile_status s = be->capture_begin(c->bstate, stream, &cap);
        if (s) {
            g->failed = s != DUCTILE_ERR_UNSUPPORTED;
            return dt_run_device_layers(c, stream, hb);
        }
        s = dt_run_device_layers(c, cap, hb);
        ductile_status end = be->capture_end(c->bstate, &graph);
        if (s || end) {
            if (!end) be->graph_free(graph);
            g->failed = true;
            return dt_run_device_layers(c, stream, hb);
        }
        dt_graphs_store(&c->graphs, g, graph, be);
    }
    ductile_status s = be->graph_launch(g->graph, stream);
    return s == DUCTILE_ERR_UNSUPPORTED ? dt_run_device_layers(c, stream, hb) : s;
}

static ductile_status dt_execute_device(ductile_context *c, void *stream, bool wait)
{
    const ductile_engine *e = c->e;
    const dt_backend *be = e->backend;
    const ductile_network *net = e->net;
    bool *hb = c->hostb;
    ductile_status s = DUCTILE_OK;
    /* Caller buffers in host memory go through the context's own device buffers. */
    for (int i = 0; i < net->n_inputs + net->n_outputs; i++) {
        const ductile_tensor *T = i < net->n_inputs ? net->inputs[i] : net->outputs[i - net->n_inputs];
        int t = T->index;
        hb[t] = c->bound[t] && !(be->owns_pointer && be->owns_pointer(c->bound[t]));
        size_t bytes;
        /* Shape inputs: their device copy was made when the shapes were (dt_upload_values);
         * host tensors (strings) are read in place by host layers. */
        if (!s && hb[t] && T->is_input && !dt_own_on_host(c, t) && dt_view_bytes(&c->st.views[t], &bytes) && bytes)
            s = be->copy(c->own[t], c->bound[t], bytes, stream);
    }
    /* Outputs that are constants or values of the model (copies from host memory: queued
     * here, outside any record). */
    if (!s) s = dt_copy_known_outputs(c, hb, stream);
    if (!s) s = dt_device_layers(c, stream, hb);
    /* Outputs bound to host memory: copied back, and waited for (the caller reads them when
     * the call returns, as with pageable memory cudaMemcpyAsync may return early). */
    bool host_out = false;
    for (int i = 0; !s && i < net->n_outputs; i++) {
        int t = net->outputs[i]->index;
        size_t bytes;
        if (dt_own_on_host(c, t)) continue; /* written in place (dt_host_output, dt_copy_known_outputs) */
        host_out |= hb[t];
        if (hb[t] && dt_view_bytes(&c->st.views[t], &bytes) && bytes) s = be->copy(c->bound[t], c->own[t], bytes, stream);
    }
    if (!s && (wait || host_out || c->prof)) s = be->sync(stream);
    return s;
}

/* Layer L's operand views with their buffers; with df, cut to images [first, first + count). */
static void dt_host_views(ductile_context *c, const ductile_layer *L, const dt_depth_first *df, int64_t first,
                          int64_t count, dt_view *in, dt_view *out)
{
    dt_layer_input_views(L, c->st.views, in);
    for (int k = 0; k < L->n_in; k++) {
        if (!L->in[k]) continue;
        in[k].data = dt_tensor_data(c, L->in[k]->index);
        if (df) dt_df_cut(df, L->in[k]->index, first, count, &in[k]);
    }
    for (int k = 0; k < L->n_out; k++) {
        int t = L->out[k]->index;
        out[k] = c->st.views[t];
        out[k].data = dt_tensor_data(c, t);
        if (df) dt_df_cut(df, t, first, count, &out[k]);
    }
}

/* Layer pl on the host backend; with df, on images [first, first + count) of the batch
 * (runtime/depth_first.h), timed into df->ms instead of reported. */
static ductile_status dt_host_layer(ductile_context *c, const dt_plan_layer *pl, dt_exec *ex, dt_depth_first *df,
                                    int64_t first, int64_t count, int *ran)
{
    const ductile_layer *L = pl->layer;
    dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO];
    dt_host_views(c, L, df, first, count, in, out);
    double t0 = c->prof ? dt_now_ms() : 0;
    /* A view's output is its input's bytes (dt_plan.alias_of): nothing to copy. */
    ductile_status s = pl->alias ? DUCTILE_OK : dt_plan_layer_run(pl, in, out, ex);
    if (s && df)
        return dt_fail_prefix(s, "node '%s' (%s, opset %d), images %lld..%lld of %lld", L->name, L->op_type, L->opset,
                              (long long)first, (long long)(first + count - 1), (long long)df->n);
    if (s) return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
    if (c->prof && df) df->ms[pl - c->e->plan.layers] += dt_now_ms() - t0;
    else if (c->prof) dt_profile_report(c->e, pl, (*ran)++, in, out, c->profile, c->point, dt_pool_threads(c->pool), dt_now_ms() - t0, c->prof, c->prof_user);
    return DUCTILE_OK;
}

/* The prefix of depth first over the batch: each group of images through its layers, then
 * the next group. A profiler hears of each layer once, with its time over all groups. */
static ductile_status dt_run_groups(ductile_context *c, dt_exec *ex, int *ran)
{
    dt_depth_first *df = &c->df;
    const dt_plan *p = &c->e->plan;
    for (int i = 0; i < df->k; i++) df->ms[i] = 0;
    for (int64_t first = 0; first < df->n; first += df->g) {
        int64_t count = df->n - first < df->g ? df->n - first : df->g;
        for (int i = 0; i < df->k; i++)
            if (!p->layers[i].value) DT_TRY(dt_host_layer(c, &p->layers[i], ex, df, first, count, ran));
    }
    for (int i = 0; c->prof && i < df->k; i++) {
        const dt_plan_layer *pl = &p->layers[i];
        if (pl->value) continue;
        dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO], gin[DT_MAX_LAYER_IO], gout[DT_MAX_LAYER_IO];
        dt_host_views(c, pl->layer, NULL, 0, 0, in, out);
        dt_host_views(c, pl->layer, df, 0, df->g, gin, gout);
        dt_profile_report_ran(c->e, pl, (*ran)++, in, out, gin, gout, c->profile, c->point, dt_pool_threads(c->pool), df->ms[i],
                              c->prof, c->prof_user);
    }
    return DUCTILE_OK;
}

/* stream, wait: device engines only (dt_execute_device); a host backend runs synchronously. */
static ductile_status dt_ctx_execute(ductile_context *c, void *stream, bool wait)
{
    const dt_plan *p = &c->e->plan;
    const ductile_network *net = c->e->net;
    DT_TRY(dt_prepare(c));
    for (int i = 0; i < net->n_inputs; i++) {
        int t = net->inputs[i]->index;
        if (c->vals && c->vals[t] && !c->vals[t]->set)
            return dt_fail(DUCTILE_ERR_STATE, "input '%s' (%s) has no value: set it with set_sequence before execute",
                           net->inputs[i]->name, dt_value_kind_name(net->inputs[i]->kind));
        if (c->vals && c->vals[t]) continue;
        if (!dt_input_given(c, t))
            return dt_fail(DUCTILE_ERR_STATE,
                           "input '%s' has no data: bind a buffer with set_tensor_address, or write into the buffer "
                           "get_tensor_address returns, before execute",
                           net->inputs[i]->name);
    }
    /* The last run's string bytes go: the header gives output views until the next execute. */
    dt_arena_release(&c->strings);
    dt_arena_init(&c->strings);
    /* Eager engines run on the host on every backend (dt_engine_upload). */
    if (p->eager) return dt_execute_eager(c, stream);
    if (!c->e->backend->host_memory) return dt_execute_device(c, stream, wait);
    DT_TRY(dt_copy_known_outputs(c, NULL, NULL));
    dt_exec ex = {.pool = c->pool, .profile = c->profile, .point = c->point, .scratch = c->scratch, .scratch_bytes = c->scratch_cap,
                  .strings = &c->strings, .subruns = c->subruns};
    int ran = 0;
    if (c->df.k) DT_TRY(dt_run_groups(c, &ex, &ran));
    for (int i = c->df.k; i < p->n_layers; i++)
        if (!p->layers[i].value) DT_TRY(dt_host_layer(c, &p->layers[i], &ex, NULL, 0, 0, &ran));
    return c->e->backend->sync ? c->e->backend->sync(ex.stream) : DUCTILE_OK;
}

/* ---- the public calls: each holds the context while it runs ---------------------------- */

/* A context belongs to one thread at a time (ductile.h). Two threads inside one context at
 * once would free and reuse each other's buffers, so every call takes the context with one
 * atomic exchange and a second, overlapping caller is refused. This catches overlapping
 * calls, not every misuse: calls from two threads that merely interleave still race on the
 * shapes and buffers they set. */
static ductile_status dt_enter(ductile_context *c, const char *call)
{
    if (__atomic_exchange_n(&c->busy, 1, __ATOMIC_ACQUIRE) == 0) return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_STATE,
                   "%s: the context is in use by another thread; a context belongs to one thread at a time "
                   "(create one context per thread)",
                   call);
}

/* An input's shape or buffer being set means an execute is likely to follow: sleeping
 * workers start waking now, while the caller binds the rest, instead of at execute (a
 * parked vCPU takes tens of microseconds to milliseconds to run again). Not for a device
 * engine, whose executes leave the pool asleep (ductile_context_execute). */
static void dt_ctx_prime(ductile_context *c)
{
    if (c->e->backend->host_memory) dt_pool_prime(c->pool);
}

static ductile_status dt_leave(ductile_context *c, ductile_status s)
{
    __atomic_store_n(&c->busy, 0, __ATOMIC_RELEASE);
    return s;
}

ductile_status ductile_context_set_threads(ductile_context *c, int32_t threads)
{
    if (!c) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_threads: context is NULL");
    DT_TRY(dt_enter(c, "set_threads"));
    return dt_leave(c, dt_ctx_set_threads(c, threads));
}

ductile_status ductile_context_set_profile(ductile_context *c, int32_t profile)
{
    if (!c) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_profile: context is NULL");
    DT_TRY(dt_enter(c, "set_profile"));
    return dt_leave(c, dt_ctx_set_profile(c, profile));
}

ductile_status ductile_context_set_input_shape(ductile_context *c, const char *name, const ductile_dims *shape)
{
    if (!c || !name || !shape) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_input_shape: context, name or shape is NULL");
    DT_TRY(dt_enter(c, "set_input_shape"));
    dt_ctx_prime(c);
    return dt_leave(c, dt_ctx_set_input_shape(c, name, shape));
}

ductile_status ductile_context_get_tensor_shape(ductile_context *c, const char *name, ductile_dims *out)
{
    if (!c || !name || !out) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "get_tensor_shape: context, name or out is NULL");
    DT_TRY(dt_enter(c, "get_tensor_shape"));
    return dt_leave(c, dt_ctx_get_tensor_shape(c, name, out));
}

ductile_status ductile_context_set_tensor_address(ductile_context *c, const char *name, void *data)
{
    if (!c || !name) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_tensor_address: context or name is NULL");
    DT_TRY(dt_enter(c, "set_tensor_address"));
    dt_ctx_prime(c);
    return dt_leave(c, dt_ctx_set_tensor_address(c, name, data));
}

ductile_status ductile_context_get_tensor_address(ductile_context *c, const char *name, void **data)
{
    if (!c || !name || !data) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "get_tensor_address: context, name or data is NULL");
    *data = NULL;
    DT_TRY(dt_enter(c, "get_tensor_address"));
    return dt_leave(c, dt_ctx_get_tensor_address(c, name, data));
}

static ductile_status dt_ctx_sequence_of(ductile_context *c, const char *name, dt_seqval **v)
{
    const ductile_tensor *T = dt_io_tensor(c->e->net, name);
    if (!T) return dt_not_io(c->e->net, name);
    if (!T->kind)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "'%s' is a tensor, not a sequence or optional: use the tensor calls",
                       name);
    *v = c->vals[T->index];
    return DUCTILE_OK;
}

/* Sequences and optionals live in host memory on every backend (set_sequence copies the
 * items on the host, their layers run on the host): an item in device memory is refused. */
static ductile_status dt_check_host_items(const ductile_context *c, const char *name, const ductile_item *items,
                                          int64_t n)
{
    const dt_backend *be = c->e->backend;
    if (be->host_memory || !be->owns_pointer || !items) return DUCTILE_OK;
    for (int64_t j = 0; j < n; j++)
        if (items[j].data && be->owns_pointer(items[j].data))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "set_sequence: item %lld of input '%s' is %s device memory; sequence and optional items are "
                           "host memory (set_sequence copies them)",
                           (long long)j, name, be->name);
    return DUCTILE_OK;
}

ductile_status ductile_context_set_sequence(ductile_context *c, const char *name, const ductile_item *items, int64_t n)
{
    if (!c || !name) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_sequence: context or name is NULL");
    DT_TRY(dt_enter(c, "set_sequence"));
    dt_seqval *v = NULL;
    ductile_status s = dt_ctx_sequence_of(c, name, &v);
    const ductile_tensor *T = dt_io_tensor(c->e->net, name);
    if (!s && !T->is_input) s = dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_sequence: '%s' is an output, not an input", name);
    if (!s) s = dt_check_host_items(c, name, items, n);
    char what[300];
    snprintf(what, sizeof what, "input '%s'", name);
    if (!s) s = dt_seqval_assign(v, items, n, what);
    if (!s) c->ran = false;
    return dt_leave(c, s);
}

ductile_status ductile_context_get_sequence(ductile_context *c, const char *name, const ductile_item **items, int64_t *n)
{
    if (!c || !name || !items || !n) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "get_sequence: context, name, items or n is NULL");
    *items = NULL;
    *n = 0;
    DT_TRY(dt_enter(c, "get_sequence"));
    dt_seqval *v = NULL;
    ductile_status s = dt_ctx_sequence_of(c, name, &v);
    if (!s && !v->set)
        s = dt_fail(DUCTILE_ERR_STATE, "'%s' has no value yet: %s", name,
                    dt_io_tensor(c->e->net, name)->is_input ? "set it with set_sequence" : "it is known after execute");
    if (!s) dt_seqval_public(v, items, n);
    return dt_leave(c, s);
}

ductile_status ductile_context_set_profiler(ductile_context *c, ductile_profiler_fn fn, void *user)
{
    if (!c) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_profiler: context is NULL");
    DT_TRY(dt_enter(c, "set_profiler"));
    c->prof = fn;
    c->prof_user = fn ? user : NULL;
    return dt_leave(c, DUCTILE_OK);
}

ductile_status ductile_context_execute(ductile_context *c)
{
    if (!c) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "execute: context is NULL");
    DT_TRY(dt_enter(c, "execute"));
    /* Workers wake now, while the shape pass runs, and spin between layers until the end.
     * Not for a device engine: they would spin through its waits on the GPU (its fallback
     * layers still use the pool, whose workers then wake per loop). */
    bool host = c->e->backend->host_memory;
    if (host) dt_pool_wake(c->pool);
    ductile_status s = dt_ctx_execute(c, NULL, true);
    if (host) dt_pool_rest(c->pool);
    return dt_leave(c, s);
}

ductile_status ductile_context_execute_async(ductile_context *c, void *stream)
{
    if (!c) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "execute_async: context is NULL");
    if (c->e->backend->host_memory) return ductile_context_execute(c);
    DT_TRY(dt_enter(c, "execute_async"));
    return dt_leave(c, dt_ctx_execute(c, stream, false));
}

ductile_status ductile_context_set_cuda_graphs(ductile_context *c, int32_t max_graphs)
{
    if (!c) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_cuda_graphs: context is NULL");
    if (max_graphs < 0 || max_graphs > DT_GRAPHS_MAX)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_cuda_graphs: %d graphs; expected 0..%d (0: off)", max_graphs,
                       DT_GRAPHS_MAX);
    DT_TRY(dt_enter(c, "set_cuda_graphs"));
    ductile_status s = c->graphable ? dt_graphs_set_max(&c->graphs, max_graphs, c->e->backend) : DUCTILE_OK;
    if (!s) c->graphs_max = max_graphs;
    return dt_leave(c, s);
}

int32_t ductile_context_get_cuda_graphs(const ductile_context *c) { return c ? c->graphs_max : -1; }

/* Everything the context allocated through its backend, by capacity (buffers grow to the
 * largest shapes run and are kept), and the backend state's workspace. */
ductile_status ductile_context_get_memory_size(const ductile_context *c, uint64_t *bytes)
{
    if (!c || !bytes) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "get_memory_size: context or bytes is NULL");
    uint64_t n = (uint64_t)c->arena_cap + c->scratch_cap + dt_subruns_bytes(c->subruns);
    for (int t = 0; t < c->e->net->n_tensors; t++) {
        if (!dt_own_on_host(c, t)) n += c->own_cap[t];
        if (c->dval_cap) n += c->dval_cap[t];
        for (int64_t j = 0; c->vals && c->vals[t] && j < c->vals[t]->cap; j++) n += c->vals[t]->caps[j];
    }
    if (c->bstate && c->e->backend->state_memory) {
        size_t ws = 0;
        uint64_t stamp;
        c->e->backend->state_memory(c->bstate, &ws, &stamp);
        n += ws;
    }
    *bytes = n;
    return DUCTILE_OK;
}
