/* If, Loop and Scan at run time (see ctrl.h). A subgraph runs like an eager engine without a
 * context: per tensor a view and a buffer of the run's own (dt_subrun), kernels compiled once
 * in the subgraph's plan. Loop-carried values are copied out of the body's buffers after each
 * iteration into state buffers of the loop's own (two sets, swapped), so the next iteration
 * may write any buffer it reads from, and a value may change its shape every iteration. Scan
 * outputs are gathered step by step and laid out at the end along their axis. */
#include "runtime/ctrl_internal.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "core/dtype.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "graph/subgraph.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

ductile_status dt_ctrl_oom(const char *what)
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
    if (!c) return dt_ctrl_oom("a control-flow layer");
    bool ctrl = !L->domain[0] && dt_ctrl_op(L->op_type);
    c->kind = !ctrl                                ? DT_CTRL_KERNEL
            : !strcmp(L->op_type, "If")            ? DT_CTRL_IF
            : !strcmp(L->op_type, "Loop")          ? DT_CTRL_LOOP
            : !strcmp(L->op_type, "SequenceMap")   ? DT_CTRL_SEQMAP
                                                   : DT_CTRL_SCAN;
    c->n_formal = dt_ctrl_formal_inputs(L);
    c->n_graphs = c->kind == DT_CTRL_IF ? 2 : 1;
    ductile_status s = DUCTILE_OK;
    if (c->kind == DT_CTRL_KERNEL) {
        /* Every GRAPH attribute, in order (the op's check has said which it takes). */
        c->n_graphs = 0;
        for (int k = 0; !s && k < L->n_attr; k++) {
            if (L->attrs[k].type != DT_ATTR_GRAPH) continue;
            if (c->n_graphs == (int)(sizeof c->g / sizeof c->g[0]))
                s = dt_fail(DUCTILE_ERR_UNSUPPORTED, "more than %d GRAPH attributes", c->n_graphs);
            else
                c->g[c->n_graphs++] = (dt_subgraph){.attr = L->attrs[k].name, .attr_index = k};
        }
    }
    static const char *const branch[2] = {"then_branch", "else_branch"};
    for (int i = 0; !s && i < c->n_graphs; i++) {
        dt_subgraph *sg = &c->g[i];
        if (c->kind != DT_CTRL_KERNEL) sg->attr = c->kind == DT_CTRL_IF ? branch[i] : "body";
        sg->net = dt_ctrl_graph(L, sg->attr);
        if (!sg->net) {
            s = dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute '%s' (a GRAPH) is required", sg->attr);
            break;
        }
        int fi = dt_graph_formal_inputs(sg->net);
        if (!(sg->capture = dt_calloc((size_t)sg->net->n_captured + 1, sizeof *sg->capture))) {
            s = dt_ctrl_oom("a control-flow layer");
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

/* ---- If and Loop (Scan: ctrl_scan.c) ---- */

static ductile_status dt_if_run(const dt_ctrl *c, const ductile_layer *L, const dt_view *in, dt_seqval *const *vals,
                                dt_view *out, const dt_exec *ex, dt_ctrl_alloc_fn alloc, void *user)
{
    bool cond;
    DT_TRY(dt_ctrl_bool(&in[0], "cond", &cond));
    const dt_subgraph *sg = &c->g[cond ? 0 : 1];
    dt_subrun r;
    DT_TRY(dt_subrun_init(&r, sg, in, vals, L));
    ductile_status s = dt_subrun_exec(&r, ex);
    for (int k = 0; !s && k < sg->net->n_outputs; k++)
        s = dt_ctrl_emit_any(L, k, dt_subrun_output(&r, k), dt_subrun_seq_output(&r, k), vals, out, alloc, user);
    dt_subrun_free(&r);
    return s ? dt_fail_prefix(s, "%s", sg->attr) : DUCTILE_OK;
}

static ductile_status dt_loop_run(const dt_ctrl *c, const ductile_layer *L, const dt_view *in, dt_seqval *const *vals,
                                  dt_view *out, const dt_exec *ex, dt_ctrl_alloc_fn alloc, void *user)
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
    if (L->in[1]) DT_TRY(dt_ctrl_bool(&in[1], "cond", &cond));
    dt_loopstate ls;
    dt_subrun r;
    /* The first values of loop-carried sequences and optionals. */
    dt_seqval **sinit = dt_calloc((size_t)n + 1, sizeof *sinit);
    if (!sinit) return dt_ctrl_oom("loop state");
    for (int j = 0; j < n; j++)
        if (L->in[2 + j] && L->in[2 + j]->kind != DUCTILE_VALUE_TENSOR) sinit[j] = vals ? vals[L->in[2 + j]->index] : NULL;
    ductile_status s = dt_loopstate_init(&ls, n, k, in + 2, sinit, b, 2);
    dt_free(sinit);
    if (!s) s = dt_subrun_init(&r, sg, in, vals, L);
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
        for (int j = 0; j < n; j++) {
            r.inputs[2 + j] = ls.state[j].v;
            r.seq_in[2 + j] = b->inputs[2 + j]->kind != DUCTILE_VALUE_TENSOR ? &ls.sstate[j] : NULL;
        }
        s = dt_subrun_exec(&r, ex);
        if (!s) s = dt_ctrl_bool(dt_subrun_output(&r, 0), "the body's condition output", &cond);
        if (!s) s = dt_loopstate_step(&ls, &r, 1, it);
        if (s) s = dt_fail_prefix(s, "body iteration %lld", (long long)it);
    }
    for (int j = 0; !s && j < n; j++)
        s = dt_ctrl_emit_any(L, j, &ls.state[j].v, ls.sstate[j].kind ? &ls.sstate[j] : NULL, vals, out, alloc, user);
    for (int j = 0; !s && j < k; j++)
        s = dt_steps_emit(&ls.stacks[j], b->outputs[1 + n + j], 0, "scan axis", n + j, j, false, out, alloc, user);
    if (r.sg) dt_subrun_free(&r);
    dt_loopstate_free(&ls);
    return s;
}

/* SequenceMap: the body runs once per position of the input sequences (every sequence input
 * has input 0's length; a tensor input goes to every run whole) and each output sequence
 * gets one item per run. */
static ductile_status dt_seqmap_run(const dt_ctrl *c, const ductile_layer *L, const dt_view *in, dt_seqval *const *vals,
                                    dt_view *out, const dt_exec *ex)
{
    const dt_subgraph *sg = &c->g[0];
    const ductile_network *b = sg->net;
    int m = c->n_formal;
    const dt_seqval *s0 = vals ? vals[L->in[0]->index] : NULL;
    if (!s0) return dt_fail(DUCTILE_ERR_INTERNAL, "input 0 ('%s') has no sequence value", L->in[0]->name);
    int64_t len = s0->n;
    for (int i = 1; i < m; i++) {
        const ductile_tensor *T = L->in[i];
        if (!T || T->kind == DUCTILE_VALUE_TENSOR) continue;
        const dt_seqval *si = vals ? vals[T->index] : NULL;
        if (!si) return dt_fail(DUCTILE_ERR_INTERNAL, "input %d ('%s') has no sequence value", i, T->name);
        if (si->n != len)
            return dt_fail(DUCTILE_ERR_SHAPE, "input %d ('%s') has %lld items but input 0 ('%s') has %lld; the sequences are read position by position",
                           i, T->name, (long long)si->n, L->in[0]->name, (long long)len);
    }
    for (int k = 0; k < L->n_out; k++) {
        dt_seqval *o = vals ? vals[L->out[k]->index] : NULL;
        if (!o) return dt_fail(DUCTILE_ERR_INTERNAL, "output %d ('%s') has no sequence value", k, L->out[k]->name);
        o->n = 0;
        o->present = o->set = true;
        /* An empty result holds the body's declared dtype (the builder's settling run too). */
        if (o->elem == DUCTILE_UNDEFINED) o->elem = b->outputs[k]->dtype;
        out[k] = (dt_view){.dtype = o->elem, .rank = 0};
    }
    dt_subrun r;
    DT_TRY(dt_subrun_init(&r, sg, in, vals, L));
    ductile_status s = DUCTILE_OK;
    for (int64_t p = 0; !s && p < len; p++) {
        for (int i = 0; i < m; i++) {
            const ductile_tensor *T = L->in[i];
            r.inputs[i] = !T ? (dt_view){.rank = -1}
                        : T->kind == DUCTILE_VALUE_TENSOR ? in[i] : vals[T->index]->items[p];
        }
        s = dt_subrun_exec(&r, ex);
        for (int k = 0; !s && k < L->n_out; k++) {
            dt_seqval *o = vals[L->out[k]->index];
            const dt_view *v = dt_subrun_output(&r, k);
            if (v->rank < 0 || (!v->data && dt_view_count(v) > 0))
                s = dt_fail(DUCTILE_ERR_SHAPE, "body output %d ('%s') has no value", k, b->outputs[k]->name);
            else if (o->elem == DUCTILE_UNDEFINED)
                o->elem = v->dtype;
            if (!s && v->dtype != o->elem)
                s = dt_fail(DUCTILE_ERR_FORMAT, "body output %d ('%s') is %s, but output %d ('%s') holds %s", k,
                            b->outputs[k]->name, ductile_dtype_name((ductile_dtype)v->dtype), k, L->out[k]->name,
                            ductile_dtype_name((ductile_dtype)o->elem));
            if (!s) s = dt_seqval_push(o, v);
            out[k].dtype = o->elem;
        }
        if (s) s = dt_fail_prefix(s, "body run for position %lld", (long long)p);
    }
    dt_subrun_free(&r);
    return s;
}

ductile_status dt_ctrl_run(const dt_ctrl *c, const ductile_layer *L, const dt_view *in, dt_seqval *const *vals,
                           dt_view *out, const dt_exec *ex, dt_ctrl_alloc_fn alloc, void *user)
{
    switch (c->kind) {
    case DT_CTRL_IF: return dt_if_run(c, L, in, vals, out, ex, alloc, user);
    case DT_CTRL_LOOP: return dt_loop_run(c, L, in, vals, out, ex, alloc, user);
    case DT_CTRL_SEQMAP: return dt_seqmap_run(c, L, in, vals, out, ex);
    case DT_CTRL_KERNEL:
        return dt_fail(DUCTILE_ERR_INTERNAL, "%s's subgraphs are run by its kernel (dt_ctrl_kernel_run)", L->op_type);
    default: return dt_ctrl_scan(c, L, in, vals, out, ex, alloc, user);
    }
}
