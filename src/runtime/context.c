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
#include "runtime/memplan.h"
#include "core/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ductile_context {
    const ductile_engine *e;
    int profile;
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
    void **snap;            /* per tensor: the shape input's bytes the shape pass last read */
    size_t *snap_size;
    int busy;               /* 1 while a call runs on this context (dt_enter/dt_leave) */
};

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
    dt_pool_free(c->pool);
    if (c->st.views) dt_shape_state_free(&c->st, c->e);
    if (c->own)
        for (int t = 0; t < c->e->net->n_tensors; t++)
            if (c->own[t]) c->e->backend->release(c->own[t]);
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
    v->rank = pi->rank;
    memcpy(v->dims, shape->d, sizeof(int64_t) * (size_t)pi->rank);
    c->shape_set[i] = true;
    c->inputs_ready = false;
    c->ready = false;
    return DUCTILE_OK;
}

const dt_view *dt_context_views(const ductile_context *c) { return c->st.views; }

/* Ensures `need` bytes in the context's own buffer of tensor t. A new buffer is zeroed, so
 * nothing ever reads what the allocator left there, and it has not been handed out yet. */
static ductile_status dt_own_buffer(ductile_context *c, int t, size_t need)
{
    if (need == 0) need = 1;
    if (c->own_cap[t] >= need) return DUCTILE_OK;
    void *p = c->e->backend->alloc(need);
    if (!p)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for tensor '%s'", need, c->e->net->tensors[t]->name);
    memset(p, 0, need);
    if (c->own[t]) c->e->backend->release(c->own[t]);
    c->own[t] = p;
    c->own_cap[t] = need;
    c->given[t] = false;
    return DUCTILE_OK;
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
    if (e->plan.eager) { /* shapes are inferred layer by layer in execute */
        c->ready = true;
        return DUCTILE_OK;
    }
    dt_exec ex = {.pool = c->pool, .profile = c->profile};
    DT_TRY(dt_shape_pass(e, &c->st, &ex));
    size_t arena = 0;
    DT_TRY(dt_memplan(e, c->st.views, c->offsets, &arena));
    if (arena > c->arena_cap) {
        void *p = e->backend->alloc(arena);
        if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for activations", arena);
        if (c->arena) e->backend->release(c->arena);
        c->arena = p;
        c->arena_cap = arena;
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

static ductile_status dt_ctx_get_tensor_shape(ductile_context *c, const char *name, ductile_dims *out)
{
    const ductile_tensor *T = dt_io_tensor(c->e->net, name);
    if (!T) return dt_not_io(c->e->net, name);
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

static ductile_status dt_ctx_set_tensor_address(ductile_context *c, const char *name, void *data)
{
    const ductile_tensor *T = dt_io_tensor(c->e->net, name);
    if (!T) return dt_not_io(c->e->net, name);
    c->bound[T->index] = data;
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
 * buffers; eager engines first give them a buffer of the size their view has. */
static ductile_status dt_copy_known_outputs(ductile_context *c)
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
    int t = T->index;
    if (T->is_input) {
        /* Only the buffer: the shape pass waits until the caller had a chance to write it. */
        DT_TRY(dt_prepare_inputs(c));
        if (!c->bound[t]) c->given[t] = true;
    } else {
        DT_TRY(dt_prepare(c));
    }
    *data = T->is_input ? dt_tensor_data(c, t) : dt_output_data(c, t);
    return DUCTILE_OK;
}

/* Eager execution: each layer's shapes are inferred with its inputs' data at hand, and every
 * tensor gets its own buffer (outputs included: they are the context's, see the header). */
static ductile_status dt_execute_eager(ductile_context *c)
{
    const ductile_engine *e = c->e;
    const dt_plan *p = &e->plan;
    dt_exec ex = {.pool = c->pool, .profile = c->profile};
    dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO];
    for (int i = 0; i < p->n_layers; i++) {
        const dt_plan_layer *pl = &p->layers[i];
        const ductile_layer *L = pl->layer;
        dt_layer_input_views(L, c->st.views, in);
        for (int k = 0; k < L->n_in; k++) {
            if (!L->in[k]) continue;
            int t = L->in[k]->index;
            in[k].data = e->plan.kind[t] == DT_TENSOR_CONSTANT ? (void *)L->in[k]->data
                       : e->plan.kind[t] == DT_TENSOR_INPUT && c->bound[t] ? c->bound[t]
                       : c->own[t];
        }
        memset(out, 0, sizeof out[0] * (size_t)(L->n_out ? L->n_out : 1));
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
        if (!s) s = pl->run(L, in, out, &ex);
        if (s) return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
    }
    DT_TRY(dt_copy_known_outputs(c));
    c->ran = true;
    return e->backend->sync ? e->backend->sync(ex.stream) : DUCTILE_OK;
}

static ductile_status dt_ctx_execute(ductile_context *c)
{
    const dt_plan *p = &c->e->plan;
    const ductile_network *net = c->e->net;
    DT_TRY(dt_prepare(c));
    for (int i = 0; i < net->n_inputs; i++)
        if (!dt_input_given(c, net->inputs[i]->index))
            return dt_fail(DUCTILE_ERR_STATE,
                           "input '%s' has no data: bind a buffer with set_tensor_address, or write into the buffer "
                           "get_tensor_address returns, before execute",
                           net->inputs[i]->name);
    if (p->eager) return dt_execute_eager(c);
    DT_TRY(dt_copy_known_outputs(c));
    dt_exec ex = {.pool = c->pool, .profile = c->profile};
    dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO];
    for (int i = 0; i < p->n_layers; i++) {
        const dt_plan_layer *pl = &p->layers[i];
        if (pl->value) continue;
        const ductile_layer *L = pl->layer;
        dt_layer_input_views(L, c->st.views, in);
        for (int k = 0; k < L->n_in; k++)
            if (L->in[k]) in[k].data = dt_tensor_data(c, L->in[k]->index);
        for (int k = 0; k < L->n_out; k++) {
            int t = L->out[k]->index;
            out[k] = c->st.views[t];
            out[k].data = dt_tensor_data(c, t);
        }
        ductile_status s = pl->run(L, in, out, &ex);
        if (s) return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
    }
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
    return dt_leave(c, dt_ctx_set_tensor_address(c, name, data));
}

ductile_status ductile_context_get_tensor_address(ductile_context *c, const char *name, void **data)
{
    if (!c || !name || !data) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "get_tensor_address: context, name or data is NULL");
    *data = NULL;
    DT_TRY(dt_enter(c, "get_tensor_address"));
    return dt_leave(c, dt_ctx_get_tensor_address(c, name, data));
}

ductile_status ductile_context_execute(ductile_context *c)
{
    if (!c) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "execute: context is NULL");
    DT_TRY(dt_enter(c, "execute"));
    return dt_leave(c, dt_ctx_execute(c));
}
