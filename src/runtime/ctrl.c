/* If, Loop and Scan at run time (see ctrl.h). A subgraph runs like an eager engine without a
 * context: per tensor a view and a buffer of the run's own (dt_subrun), kernels compiled once
 * in the subgraph's plan. Loop-carried values are copied out of the body's buffers after each
 * iteration into state buffers of the loop's own (two sets, swapped), so the next iteration
 * may write any buffer it reads from, and a value may change its shape every iteration. Scan
 * outputs are gathered step by step and laid out at the end along their axis. */
#include "runtime/ctrl.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "core/dtype.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "graph/subgraph.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { DT_CTRL_IF, DT_CTRL_LOOP, DT_CTRL_SCAN };

typedef struct dt_subgraph {
    const ductile_network *net;
    const char *attr;         /* then_branch, else_branch, body */
    dt_plan plan;
    int *capture;             /* per captured input j: the layer input that feeds it */
} dt_subgraph;

struct dt_ctrl {
    int kind;
    int n_formal;             /* the layer's inputs before the implicit ones */
    int n_graphs;
    dt_subgraph g[2];
};

static ductile_status dt_oom(const char *what)
{
    return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for %s", what);
}

void dt_ctrl_free(dt_ctrl *c)
{
    if (!c) return;
    for (int i = 0; i < c->n_graphs; i++) {
        dt_plan_free(&c->g[i].plan);
        dt_free(c->g[i].capture);
    }
    dt_free(c);
}

ductile_status dt_ctrl_make(const ductile_layer *L, dt_ctrl **out)
{
    *out = NULL;
    dt_ctrl *c = dt_calloc(1, sizeof *c);
    if (!c) return dt_oom("a control-flow layer");
    c->kind = !strcmp(L->op_type, "If") ? DT_CTRL_IF : !strcmp(L->op_type, "Loop") ? DT_CTRL_LOOP : DT_CTRL_SCAN;
    c->n_formal = dt_ctrl_formal_inputs(L);
    c->n_graphs = c->kind == DT_CTRL_IF ? 2 : 1;
    static const char *const branch[2] = {"then_branch", "else_branch"};
    ductile_status s = DUCTILE_OK;
    for (int i = 0; !s && i < c->n_graphs; i++) {
        dt_subgraph *sg = &c->g[i];
        sg->attr = c->kind == DT_CTRL_IF ? branch[i] : "body";
        sg->net = dt_ctrl_graph(L, sg->attr);
        if (!sg->net) {
            s = dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute '%s' (a GRAPH) is required", sg->attr);
            break;
        }
        int fi = dt_graph_formal_inputs(sg->net);
        if (!(sg->capture = dt_calloc((size_t)sg->net->n_captured + 1, sizeof *sg->capture))) {
            s = dt_oom("a control-flow layer");
            break;
        }
        for (int j = 0; !s && j < sg->net->n_captured; j++)
            if ((sg->capture[j] = dt_ctrl_capture_input(L, sg->net, j)) < 0)
                s = dt_fail(DUCTILE_ERR_FORMAT, "%s reads '%s' from the enclosing graph, but the node does not list it among its inputs",
                            sg->attr, sg->net->inputs[fi + j]->name);
        if (!s && (s = dt_plan_make(sg->net, dt_backend_host(), &sg->plan))) s = dt_fail_prefix(s, "%s", sg->attr);
    }
    if (s) {
        dt_ctrl_free(c);
        return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
    }
    *out = c;
    return DUCTILE_OK;
}

/* ---- one run of a subgraph ---- */

typedef struct dt_subrun {
    const dt_subgraph *sg;
    dt_view *views;           /* per tensor */
    void **bufs;              /* per tensor: the run's buffer for a layer output */
    size_t *caps;
    void *scratch;
    size_t scratch_cap;
    dt_view *inputs;          /* the subgraph's inputs, filled by the caller per run */
} dt_subrun;

static void dt_subrun_free(dt_subrun *r)
{
    for (int t = 0; r->bufs && t < r->sg->net->n_tensors; t++) dt_free(r->bufs[t]);
    dt_free(r->views);
    dt_free(r->bufs);
    dt_free(r->caps);
    dt_free(r->scratch);
    dt_free(r->inputs);
}

/* in: the layer's inputs, for the captured ones. */
static ductile_status dt_subrun_init(dt_subrun *r, const dt_subgraph *sg, const dt_view *in)
{
    memset(r, 0, sizeof *r);
    r->sg = sg;
    size_t n = (size_t)sg->net->n_tensors + 1;
    r->views = dt_calloc(n, sizeof *r->views);
    r->bufs = dt_calloc(n, sizeof *r->bufs);
    r->caps = dt_calloc(n, sizeof *r->caps);
    r->inputs = dt_calloc((size_t)sg->net->n_inputs + 1, sizeof *r->inputs);
    if (!r->views || !r->bufs || !r->caps || !r->inputs) {
        dt_subrun_free(r);
        memset(r, 0, sizeof *r);
        return dt_oom(sg->attr);
    }
    int fi = dt_graph_formal_inputs(sg->net);
    for (int j = 0; j < sg->net->n_captured; j++) r->inputs[fi + j] = in[sg->capture[j]];
    return DUCTILE_OK;
}

/* A buffer for v (dims set) in tensor t's slot: v->data. */
static ductile_status dt_subrun_buffer(dt_subrun *r, int t, dt_view *v)
{
    size_t bytes;
    if (v->rank < 0 || v->rank > DT_MAX_DIMS || !dt_view_bytes(v, &bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "tensor '%s' has an invalid shape", r->sg->net->tensors[t]->name);
    if (!r->bufs[t] || r->caps[t] < bytes) {
        void *p = dt_aligned_alloc(64, bytes ? bytes : 1);
        if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for tensor '%s'", bytes,
                               r->sg->net->tensors[t]->name);
        dt_free(r->bufs[t]);
        r->bufs[t] = p;
        r->caps[t] = bytes;
    }
    v->data = r->bufs[t];
    return DUCTILE_OK;
}

typedef struct dt_subrun_out {
    dt_subrun *r;
    const ductile_layer *L;
} dt_subrun_out;

static ductile_status dt_subrun_alloc(void *user, int k, dt_view *v)
{
    dt_subrun_out *o = user;
    return dt_subrun_buffer(o->r, o->L->out[k]->index, v);
}

static ductile_status dt_subrun_layer(dt_subrun *r, const dt_plan_layer *pl, dt_view *in, dt_view *out, dt_exec *ex)
{
    const ductile_layer *L = pl->layer;
    if (pl->ctrl) {
        dt_subrun_out o = {r, L};
        return dt_ctrl_run(pl->ctrl, L, in, out, ex, dt_subrun_alloc, &o);
    }
    DT_TRY(pl->def->infer(L, in, out));
    for (int k = 0; k < L->n_out; k++) DT_TRY(dt_subrun_buffer(r, L->out[k]->index, &out[k]));
    size_t scratch = 0;
    if (pl->kernel && pl->kernel->scratch)
        DT_TRY(pl->kernel->scratch(pl->params, in, out, dt_pool_threads(ex->pool), &scratch));
    if (scratch > r->scratch_cap) {
        void *p = dt_aligned_alloc(64, scratch);
        if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for kernel scratch", scratch);
        dt_free(r->scratch);
        r->scratch = p;
        r->scratch_cap = scratch;
    }
    ex->scratch = r->scratch;
    ex->scratch_bytes = r->scratch_cap;
    return dt_plan_layer_run(pl, in, out, ex);
}

/* Runs the subgraph on r->inputs; its outputs are then r->views[net->outputs[k]->index]. */
static ductile_status dt_subrun_exec(dt_subrun *r, const dt_exec *outer)
{
    const ductile_network *net = r->sg->net;
    const dt_plan *p = &r->sg->plan;
    for (int t = 0; t < net->n_tensors; t++) {
        const ductile_tensor *T = net->tensors[t];
        dt_view *v = &r->views[t];
        memset(v, 0, sizeof *v);
        v->rank = -1;
        if (!T->data) continue;
        v->dtype = T->dtype;
        v->rank = T->rank;
        memcpy(v->dims, T->dims, sizeof v->dims);
        v->data = (void *)T->data;
    }
    for (int i = 0; i < net->n_inputs; i++) r->views[net->inputs[i]->index] = r->inputs[i];
    dt_exec ex = {.pool = outer->pool, .profile = outer->profile, .max_iterations = outer->max_iterations};
    dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO];
    for (int i = 0; i < p->n_layers; i++) {
        const dt_plan_layer *pl = &p->layers[i];
        const ductile_layer *L = pl->layer;
        dt_layer_input_views(L, r->views, in);
        memset(out, 0, sizeof out[0] * (size_t)(L->n_out ? L->n_out : 1));
        ductile_status s = dt_subrun_layer(r, pl, in, out, &ex);
        if (s) return dt_fail_prefix(s, "node '%s' (%s, opset %d)", L->name, L->op_type, L->opset);
        for (int k = 0; k < L->n_out; k++) {
            DT_TRY(dt_check_dtype(L, L->out[k], L->out[k]->dtype, out[k].dtype, DUCTILE_ERR_FORMAT));
            r->views[L->out[k]->index] = out[k];
        }
    }
    return DUCTILE_OK;
}

static const dt_view *dt_subrun_output(const dt_subrun *r, int k)
{
    return &r->views[r->sg->net->outputs[k]->index];
}

/* ---- helpers ---- */

static ductile_status dt_scalar_bool(const dt_view *v, const char *what, bool *out)
{
    if (v->rank < 0 || !v->data) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%s has no value", what);
    int64_t n = dt_view_count(v);
    if (n != 1) return dt_fail(DUCTILE_ERR_SHAPE, "%s has %lld elements, expected 1", what, (long long)n);
    switch (v->dtype) {
    case DUCTILE_BOOL:
    case DUCTILE_UINT8:
    case DUCTILE_INT8: *out = *(const uint8_t *)v->data != 0; return DUCTILE_OK;
    case DUCTILE_INT32:
    case DUCTILE_INT64: *out = dt_view_int(v, 0) != 0; return DUCTILE_OK;
    case DUCTILE_FLOAT32: *out = *(const float *)v->data != 0; return DUCTILE_OK;
    default:
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "%s is %s, expected bool", what, ductile_dtype_name((ductile_dtype)v->dtype));
    }
}

/* Gives out[k] v's dtype and dims, a buffer from alloc, and v's bytes. */
static ductile_status dt_emit(const dt_view *v, int k, dt_view *out, dt_ctrl_alloc_fn alloc, void *user)
{
    size_t bytes;
    if (v->rank < 0 || !dt_view_bytes(v, &bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "output %d has no shape", k);
    out[k] = *v;
    out[k].data = NULL;
    DT_TRY(alloc(user, k, &out[k]));
    if (bytes && out[k].data != v->data) memmove(out[k].data, v->data, bytes);
    return DUCTILE_OK;
}

/* A value held across iterations in a buffer of the loop's own. */
typedef struct dt_held {
    dt_view v;
    size_t cap;
} dt_held;

static ductile_status dt_hold(dt_held *h, const dt_view *v, const char *what)
{
    size_t bytes;
    if (v->rank < 0 || !dt_view_bytes(v, &bytes)) return dt_fail(DUCTILE_ERR_SHAPE, "%s has no shape", what);
    if (!h->v.data || h->cap < bytes) {
        void *p = dt_aligned_alloc(64, bytes ? bytes : 1);
        if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for %s", bytes, what);
        dt_free(h->v.data);
        h->v.data = p;
        h->cap = bytes;
    }
    void *data = h->v.data;
    h->v = *v;
    h->v.data = data;
    if (bytes) memcpy(data, v->data, bytes);
    return DUCTILE_OK;
}

/* Per-iteration values of a scan output, one after the other. */
typedef struct dt_stack {
    unsigned char *data;
    size_t cap, step;
    dt_view first;            /* dtype, rank, dims of one step */
    int64_t n;
} dt_stack;

static ductile_status dt_stack_push(dt_stack *st, const dt_view *v, int k, const char *name, int64_t it)
{
    if (v->rank < 0) return dt_fail(DUCTILE_ERR_SHAPE, "scan output %d ('%s') has no shape", k, name);
    if (st->n == 0) {
        st->first = *v;
        st->first.data = NULL;
        if (!dt_view_bytes(v, &st->step)) return dt_fail(DUCTILE_ERR_SHAPE, "scan output %d ('%s') is too large", k, name);
    } else if (v->dtype != st->first.dtype || v->rank != st->first.rank ||
               memcmp(v->dims, st->first.dims, sizeof(int64_t) * (size_t)v->rank)) {
        char a[160], b[160];
        dt_format_dims(a, sizeof a, v->dims, v->rank, NULL);
        dt_format_dims(b, sizeof b, st->first.dims, st->first.rank, NULL);
        return dt_fail(DUCTILE_ERR_SHAPE, "scan output %d ('%s') is %s at iteration %lld but was %s at iteration 0; a scan output keeps one shape",
                       k, name, a, (long long)it, b);
    }
    size_t need;
    if (!dt_mul_size((size_t)st->n + 1, st->step, &need))
        return dt_fail(DUCTILE_ERR_SHAPE, "scan output %d ('%s') is too large", k, name);
    if (need > st->cap) {
        size_t cap = st->cap ? st->cap : 256;
        while (cap < need)
            if (!dt_mul_size(cap, 2, &cap)) return dt_fail(DUCTILE_ERR_SHAPE, "scan output %d ('%s') is too large", k, name);
        unsigned char *p = dt_realloc(st->data, cap);
        if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for scan output %d ('%s')", cap, k, name);
        st->data = p;
        st->cap = cap;
    }
    if (st->step) memcpy(st->data + (size_t)st->n * st->step, v->data, st->step);
    st->n++;
    return DUCTILE_OK;
}

/* Lays the steps out along axis (of the output, rank + 1), last step first when reverse.
 * decl: the body's output tensor, for the shape of a scan output without steps. */
static ductile_status dt_stack_emit(dt_stack *st, const ductile_tensor *decl, int64_t axis, const char *axis_attr,
                                    int kout, int k, bool reverse, dt_view *out, dt_ctrl_alloc_fn alloc, void *user)
{
    if (st->n == 0) {
        /* No step ran: the body's declared shape, unknown dims as 0. */
        if (!decl->dtype)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "scan output %d ('%s') has no steps and the body declares no dtype for it",
                           k, decl->name);
        memset(&st->first, 0, sizeof st->first);
        st->first.dtype = decl->dtype;
        st->first.rank = decl->rank < 0 ? 0 : decl->rank;   /* unknown: [0], as onnxruntime */
        for (int d = 0; d < decl->rank; d++) st->first.dims[d] = decl->dims[d] < 0 ? 0 : decl->dims[d];
        st->step = 0;
    }
    int r = st->first.rank;
    if (r + 1 > DT_MAX_DIMS)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "scan output %d ('%s') would have rank %d, above the maximum of %d", k,
                       decl->name, r + 1, DT_MAX_DIMS);
    if (axis < -(r + 1) || axis > r)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%s[%d] is %lld, out of range for scan output %d ('%s') of rank %d",
                       axis_attr, k, (long long)axis, k, decl->name, r + 1);
    int a = (int)(axis < 0 ? axis + r + 1 : axis);
    dt_view o = st->first;
    o.rank = r + 1;
    for (int d = r; d > a; d--) o.dims[d] = o.dims[d - 1];
    o.dims[a] = st->n;
    out[kout] = o;
    DT_TRY(alloc(user, kout, &out[kout]));
    size_t outer = 1;
    for (int d = 0; d < a; d++) outer *= (size_t)st->first.dims[d];
    if (!outer || !st->step) return DUCTILE_OK;
    size_t inner = st->step / outer, n = (size_t)st->n;
    unsigned char *dst = out[kout].data;
    for (size_t t = 0; t < n; t++) {
        size_t p = reverse ? n - 1 - t : t;
        for (size_t q = 0; q < outer; q++) memcpy(dst + (q * n + p) * inner, st->data + t * st->step + q * inner, inner);
    }
    return DUCTILE_OK;
}

/* ---- the three ops ---- */

static ductile_status dt_if_run(const dt_ctrl *c, const dt_view *in, dt_view *out, const dt_exec *ex,
                                dt_ctrl_alloc_fn alloc, void *user)
{
    bool cond;
    DT_TRY(dt_scalar_bool(&in[0], "cond", &cond));
    const dt_subgraph *sg = &c->g[cond ? 0 : 1];
    dt_subrun r;
    DT_TRY(dt_subrun_init(&r, sg, in));
    ductile_status s = dt_subrun_exec(&r, ex);
    for (int k = 0; !s && k < sg->net->n_outputs; k++) s = dt_emit(dt_subrun_output(&r, k), k, out, alloc, user);
    dt_subrun_free(&r);
    return s ? dt_fail_prefix(s, "%s", sg->attr) : DUCTILE_OK;
}

typedef struct dt_loopstate {
    int n, k;                 /* loop-carried values, scan outputs */
    dt_held *state, *next;
    dt_stack *stacks;
} dt_loopstate;

static void dt_loopstate_free(dt_loopstate *ls)
{
    for (int j = 0; ls->state && j < ls->n; j++) dt_free(ls->state[j].v.data);
    for (int j = 0; ls->next && j < ls->n; j++) dt_free(ls->next[j].v.data);
    for (int j = 0; ls->stacks && j < ls->k; j++) dt_free(ls->stacks[j].data);
    dt_free(ls->state);
    dt_free(ls->next);
    dt_free(ls->stacks);
}

static ductile_status dt_loopstate_init(dt_loopstate *ls, int n, int k, const dt_view *init)
{
    memset(ls, 0, sizeof *ls);
    ls->n = n;
    ls->k = k;
    ls->state = dt_calloc((size_t)n + 1, sizeof *ls->state);
    ls->next = dt_calloc((size_t)n + 1, sizeof *ls->next);
    ls->stacks = dt_calloc((size_t)k + 1, sizeof *ls->stacks);
    if (!ls->state || !ls->next || !ls->stacks) return dt_oom("loop state");
    for (int j = 0; j < n; j++) {
        char what[48];
        snprintf(what, sizeof what, "loop-carried value %d", j);
        DT_TRY(dt_hold(&ls->state[j], &init[j], what));
    }
    return DUCTILE_OK;
}

/* After an iteration: body outputs [first, first + n) are the next state, the k after them
 * scan outputs. */
static ductile_status dt_loopstate_step(dt_loopstate *ls, const dt_subrun *r, int first, int64_t it)
{
    for (int j = 0; j < ls->n; j++) {
        char what[48];
        snprintf(what, sizeof what, "loop-carried value %d", j);
        DT_TRY(dt_hold(&ls->next[j], dt_subrun_output(r, first + j), what));
    }
    dt_held *t = ls->state;
    ls->state = ls->next;
    ls->next = t;
    const ductile_network *b = r->sg->net;
    for (int j = 0; j < ls->k; j++)
        DT_TRY(dt_stack_push(&ls->stacks[j], dt_subrun_output(r, first + ls->n + j), j,
                             b->outputs[first + ls->n + j]->name, it));
    return DUCTILE_OK;
}

static ductile_status dt_loop_run(const dt_ctrl *c, const ductile_layer *L, const dt_view *in, dt_view *out,
                                  const dt_exec *ex, dt_ctrl_alloc_fn alloc, void *user)
{
    const dt_subgraph *sg = &c->g[0];
    const ductile_network *b = sg->net;
    int n = c->n_formal - 2, k = L->n_out - n;
    int64_t max = INT64_MAX;
    if (L->in[0]) {
        if (in[0].rank < 0 || !in[0].data || dt_view_count(&in[0]) != 1 ||
            (in[0].dtype != DUCTILE_INT64 && in[0].dtype != DUCTILE_INT32))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "M (the trip count) must be one int64 value");
        max = dt_view_int(&in[0], 0);
    }
    bool cond = true;
    if (L->in[1]) DT_TRY(dt_scalar_bool(&in[1], "cond", &cond));
    dt_loopstate ls;
    dt_subrun r;
    ductile_status s = dt_loopstate_init(&ls, n, k, in + 2);
    if (!s) s = dt_subrun_init(&r, sg, in);
    else memset(&r, 0, sizeof r);
    int64_t it = 0;
    for (; !s && it < max && cond; it++) {
        if (ex->max_iterations > 0 && it >= ex->max_iterations) {
            s = dt_fail(DUCTILE_ERR_UNSUPPORTED, "stopped after %lld iterations, the limit of this run", (long long)it);
            break;
        }
        int64_t iter = it;
        uint8_t cond_in = 1;
        r.inputs[0] = (dt_view){.dtype = DUCTILE_INT64, .rank = 0, .data = &iter};
        r.inputs[1] = (dt_view){.dtype = DUCTILE_BOOL, .rank = 0, .data = &cond_in};
        for (int j = 0; j < n; j++) r.inputs[2 + j] = ls.state[j].v;
        s = dt_subrun_exec(&r, ex);
        if (!s) s = dt_scalar_bool(dt_subrun_output(&r, 0), "the body's condition output", &cond);
        if (!s) s = dt_loopstate_step(&ls, &r, 1, it);
        if (s) s = dt_fail_prefix(s, "body iteration %lld", (long long)it);
    }
    for (int j = 0; !s && j < n; j++) s = dt_emit(&ls.state[j].v, j, out, alloc, user);
    for (int j = 0; !s && j < k; j++)
        s = dt_stack_emit(&ls.stacks[j], b->outputs[1 + n + j], 0, "scan axis", n + j, j, false, out, alloc, user);
    if (r.sg) dt_subrun_free(&r);
    dt_loopstate_free(&ls);
    return s;
}

static int64_t dt_attr_at(const ductile_layer *L, const char *name, int i)
{
    int64_t n;
    const int64_t *v = dt_attr_ints(L, name, &n);
    return v && i < n ? v[i] : 0;
}

/* What differs between Scan 9+ and Scan 8 (one batch element at a time). */
typedef struct dt_scan_args {
    const dt_view *vals;      /* n states, then m scan inputs */
    int base;                 /* the layer input of vals[0], for names */
    bool opset8;              /* axes 0 and forward outputs; directions from 'directions' */
    int64_t limit;            /* steps to run (Scan 8's sequence_lens), -1: all */
} dt_scan_args;

static ductile_status dt_scan_steps(const dt_ctrl *c, const ductile_layer *L, const dt_view *in, const dt_scan_args *a,
                                    int m, dt_view *out, const dt_exec *ex, dt_ctrl_alloc_fn alloc, void *user)
{
    const dt_subgraph *sg = &c->g[0];
    const ductile_network *b = sg->net;
    int n = dt_graph_formal_inputs(b) - m, k = L->n_out - n;
    const char *dir_attr = a->opset8 ? "directions" : "scan_input_directions";
    int axes[DT_MAX_LAYER_IO];
    int64_t len = -1;
    for (int j = 0; j < m; j++) {
        const dt_view *v = &a->vals[n + j];
        int64_t ax = a->opset8 ? 0 : dt_attr_at(L, "scan_input_axes", j);
        if (ax < -v->rank || ax >= v->rank)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "scan_input_axes[%d] is %lld, out of range for scan input %d ('%s') of rank %d",
                           j, (long long)ax, j, L->in[a->base + n + j]->name, v->rank);
        axes[j] = (int)(ax < 0 ? ax + v->rank : ax);
        int64_t steps = v->dims[axes[j]];
        if (len >= 0 && steps != len)
            return dt_fail(DUCTILE_ERR_SHAPE, "scan input %d ('%s') has %lld steps along axis %d, scan input 0 has %lld",
                           j, L->in[a->base + n + j]->name, (long long)steps, axes[j], (long long)len);
        len = steps;
    }
    int64_t steps = a->limit >= 0 && a->limit < len ? a->limit : len;
    dt_loopstate ls;
    dt_subrun r;
    ductile_status s = dt_loopstate_init(&ls, n, k, a->vals);
    if (!s) s = dt_subrun_init(&r, sg, in);
    else memset(&r, 0, sizeof r);
    /* Slices of the scan inputs, one step each. */
    dt_held *slices = s ? NULL : dt_calloc((size_t)m + 1, sizeof *slices);
    if (!s && !slices) s = dt_oom("scan slices");
    for (int j = 0; !s && j < m; j++) {
        dt_view sv = a->vals[n + j];
        for (int d = axes[j]; d + 1 < sv.rank; d++) sv.dims[d] = sv.dims[d + 1];
        sv.rank--;
        size_t bytes;
        dt_view_bytes(&sv, &bytes);
        slices[j].v = sv;
        if (!(slices[j].v.data = dt_aligned_alloc(64, bytes ? bytes : 1))) s = dt_oom("scan slices");
    }
    for (int64_t t = 0; !s && t < steps; t++) {
        for (int j = 0; j < m; j++) {
            const dt_view *v = &a->vals[n + j];
            size_t es = ductile_dtype_size((ductile_dtype)v->dtype), outer = 1, inner = es;
            for (int d = 0; d < axes[j]; d++) outer *= (size_t)v->dims[d];
            for (int d = axes[j] + 1; d < v->rank; d++) inner *= (size_t)v->dims[d];
            int64_t idx = dt_attr_at(L, dir_attr, j) ? steps - 1 - t : t;
            const unsigned char *src = v->data;
            unsigned char *dst = slices[j].v.data;
            for (size_t q = 0; q < outer && inner; q++)
                memcpy(dst + q * inner, src + (q * (size_t)len + (size_t)idx) * inner, inner);
            r.inputs[n + j] = slices[j].v;
        }
        for (int j = 0; j < n; j++) r.inputs[j] = ls.state[j].v;
        s = dt_subrun_exec(&r, ex);
        if (!s) s = dt_loopstate_step(&ls, &r, 0, t);
        if (s) s = dt_fail_prefix(s, "body iteration %lld", (long long)t);
    }
    for (int j = 0; !s && j < n; j++) s = dt_emit(&ls.state[j].v, j, out, alloc, user);
    for (int j = 0; !s && j < k; j++)
        s = dt_stack_emit(&ls.stacks[j], b->outputs[n + j], a->opset8 ? 0 : dt_attr_at(L, "scan_output_axes", j),
                          "scan_output_axes", n + j, j, !a->opset8 && dt_attr_at(L, "scan_output_directions", j) != 0,
                          out, alloc, user);
    for (int j = 0; slices && j < m; j++) dt_free(slices[j].v.data);
    dt_free(slices);
    if (r.sg) dt_subrun_free(&r);
    dt_loopstate_free(&ls);
    return s;
}

/* Scan 8: every input and output has a batch dim first; each batch element is scanned on its
 * own (along its dim 0, its scan dim 1 of the whole), for sequence_lens[b] steps when that
 * input is given, and lands in its block of the outputs (scan outputs zero-padded). */
typedef struct dt_scan8 {
    dt_view *out;             /* the layer's outputs */
    dt_ctrl_alloc_fn alloc;
    void *user;
    int64_t b, batch, len;
    int n;                    /* states; outputs from n on are scan outputs */
    size_t block[DT_MAX_LAYER_IO];
} dt_scan8;

static ductile_status dt_scan8_alloc(void *user, int k, dt_view *v)
{
    dt_scan8 *u = user;
    bool scan = k >= u->n;
    if (u->b == 0) {
        if (v->rank + 1 > DT_MAX_DIMS)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "output %d would have rank %d, above the maximum of %d", k, v->rank + 1,
                           DT_MAX_DIMS);
        dt_view full = *v;
        full.rank = v->rank + 1;
        for (int d = v->rank; d > 0; d--) full.dims[d] = v->dims[d - 1];
        full.dims[0] = u->batch;
        if (scan) full.dims[1] = u->len;
        u->out[k] = full;
        DT_TRY(u->alloc(u->user, k, &u->out[k]));
        size_t bytes;
        dt_view_bytes(&full, &bytes);
        if (bytes) memset(u->out[k].data, 0, bytes);
        u->block[k] = u->batch ? bytes / (size_t)u->batch : 0;
    } else {
        const dt_view *f = &u->out[k];
        bool same = v->rank + 1 == f->rank && v->dtype == f->dtype;
        for (int d = scan ? 1 : 0; same && d < v->rank; d++) same = v->dims[d] == f->dims[d + 1];
        if (!same) {
            char a[160], b[160];
            dt_format_dims(a, sizeof a, v->dims, v->rank, NULL);
            dt_format_dims(b, sizeof b, f->dims + 1, f->rank - 1, NULL);
            return dt_fail(DUCTILE_ERR_SHAPE, "output %d is %s for batch element %lld but %s for batch element 0", k, a,
                           (long long)u->b, b);
        }
    }
    v->data = (unsigned char *)u->out[k].data + (size_t)u->b * u->block[k];
    return DUCTILE_OK;
}

static ductile_status dt_scan8_run(const dt_ctrl *c, const ductile_layer *L, const dt_view *in, dt_view *out,
                                   const dt_exec *ex, dt_ctrl_alloc_fn alloc, void *user)
{
    int m = (int)dt_attr_int(L, "num_scan_inputs", 0), n = c->n_formal - 1 - m;
    dt_scan8 u = {.out = out, .alloc = alloc, .user = user, .n = n, .batch = -1, .len = -1};
    for (int j = 0; j < n + m; j++) {
        const dt_view *v = &in[1 + j];
        int need = j < n ? 1 : 2;
        if (v->rank < need || (u.batch >= 0 && v->dims[0] != u.batch) || (j >= n && u.len >= 0 && v->dims[1] != u.len))
            return dt_fail(DUCTILE_ERR_SHAPE, "input %d ('%s') must have rank >= %d, the batch size %lld first%s", 1 + j,
                           L->in[1 + j]->name, need, (long long)u.batch, j >= n ? " and the sequence length second" : "");
        u.batch = v->dims[0];
        if (j >= n) u.len = v->dims[1];
    }
    const dt_view *lens = L->in[0] ? &in[0] : NULL;
    if (lens && (lens->rank != 1 || lens->dims[0] != u.batch || (lens->dtype != DUCTILE_INT64 && lens->dtype != DUCTILE_INT32)))
        return dt_fail(DUCTILE_ERR_SHAPE, "sequence_lens must be %lld integers, one per batch element", (long long)u.batch);
    dt_view vals[DT_MAX_LAYER_IO], bout[DT_MAX_LAYER_IO];
    size_t block[DT_MAX_LAYER_IO];
    for (int j = 0; j < n + m; j++) {
        size_t bytes;
        dt_view_bytes(&in[1 + j], &bytes);
        block[j] = u.batch ? bytes / (size_t)u.batch : 0;
    }
    for (u.b = 0; u.b < u.batch; u.b++) {
        for (int j = 0; j < n + m; j++) {
            vals[j] = in[1 + j];
            vals[j].rank--;
            memmove(vals[j].dims, vals[j].dims + 1, sizeof(int64_t) * (size_t)vals[j].rank);
            vals[j].data = (unsigned char *)in[1 + j].data + (size_t)u.b * block[j];
        }
        int64_t limit = lens ? dt_view_int(lens, u.b) : -1;
        if (lens && (limit < 0 || limit > u.len))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "sequence_lens[%lld] is %lld, expected 0..%lld", (long long)u.b,
                           (long long)limit, (long long)u.len);
        dt_scan_args a = {.vals = vals, .base = 1, .opset8 = true, .limit = limit};
        ductile_status s = dt_scan_steps(c, L, in, &a, m, bout, ex, dt_scan8_alloc, &u);
        if (s) return dt_fail_prefix(s, "batch element %lld", (long long)u.b);
    }
    return DUCTILE_OK;
}

static ductile_status dt_scan_run(const dt_ctrl *c, const ductile_layer *L, const dt_view *in, dt_view *out,
                                  const dt_exec *ex, dt_ctrl_alloc_fn alloc, void *user)
{
    if (L->opset > 0 && L->opset < 9) return dt_scan8_run(c, L, in, out, ex, alloc, user);
    dt_scan_args a = {.vals = in, .base = 0, .limit = -1};
    return dt_scan_steps(c, L, in, &a, (int)dt_attr_int(L, "num_scan_inputs", 0), out, ex, alloc, user);
}

ductile_status dt_ctrl_run(const dt_ctrl *c, const ductile_layer *L, const dt_view *in, dt_view *out,
                           const dt_exec *ex, dt_ctrl_alloc_fn alloc, void *user)
{
    switch (c->kind) {
    case DT_CTRL_IF: return dt_if_run(c, in, out, ex, alloc, user);
    case DT_CTRL_LOOP: return dt_loop_run(c, L, in, out, ex, alloc, user);
    default: return dt_scan_run(c, L, in, out, ex, alloc, user);
    }
}
