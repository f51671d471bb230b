/* Subgraphs (GRAPH attributes of If, Loop, Scan) -> nested networks.
 *
 * A subgraph is parsed like the model's graph, into a network of its own, by an import whose
 * parent is the enclosing graph's. ONNX lets a subgraph's nodes read any tensor of an
 * enclosing scope by name; such a name becomes a "capture": a tensor of the same name in the
 * subgraph, appended to its inputs after the formal ones (net->n_captured counts them), and
 * the layer that owns the subgraph lists the enclosing tensor among its own inputs after the
 * formal ones (dt_onnx_implicit_inputs). So a subgraph is a closed network that an executor
 * feeds, and the enclosing graph's order, liveness and memory planning see every read. An
 * enclosing constant is copied in as a constant instead: nothing to feed. Captures chain
 * through every graph in between, each capturing from its parent. */
#include "onnx/onnx_internal.h"
#include "core/alloc.h"
#include "core/status.h"

#include <string.h>

/* Deeper nesting is not a real model; the bound keeps a crafted file off the C stack. */
enum { DT_MAX_SUBGRAPH_DEPTH = 32 };

static void dt_release_network(void *p, size_t n)
{
    (void)n;
    dt_network_delete(p);
}

/* A capture of outer in im's graph: a constant copy or a new captured input. */
static ductile_tensor *dt_capture(dt_import *im, const ductile_tensor *outer, bool *oom)
{
    ductile_network *net = im->net;
    ductile_tensor *t = dt_network_add_tensor(net, outer->name);
    if (!t || !dt_names_put(&im->names, t)) {
        *oom = true;
        return NULL;
    }
    t->dtype = outer->dtype;
    t->kind = outer->kind;    /* a sequence or optional read from outside stays one */
    t->rank = outer->rank;
    memcpy(t->dims, outer->dims, sizeof t->dims);
    for (int i = 0; i < DT_MAX_DIMS; i++)
        if (outer->dim_sym[i] && !(t->dim_sym[i] = dt_arena_strdup(&net->arena, outer->dim_sym[i]))) {
            *oom = true;
            return NULL;
        }
    if (outer->data) {
        /* The bytes live in the root network's mappings, which outlive every subgraph. */
        t->data = outer->data;
        t->nbytes = outer->nbytes;
        return t;
    }
    if (dt_network_add_input(net, t) != DUCTILE_OK) {
        *oom = true;
        return NULL;
    }
    net->n_captured++;
    return t;
}

ductile_tensor *dt_onnx_resolve(dt_import *im, const char *name, bool *oom)
{
    *oom = false;
    ductile_tensor *t = dt_names_get(&im->names, name);
    if (t || !im->parent) return t;
    /* The name may be im->scratch of this import; the parent has its own scratch. */
    ductile_tensor *outer = dt_onnx_resolve(im->parent, name, oom);
    if (!outer) return NULL;
    return dt_capture(im, outer, oom);
}

ductile_status dt_onnx_subgraph(dt_import *im, const pb_field *gf, dt_attr *a)
{
    if (im->depth >= DT_MAX_SUBGRAPH_DEPTH)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute '%s': subgraphs nested deeper than %d levels are not supported by ductile",
                       a->name, DT_MAX_SUBGRAPH_DEPTH);
    ductile_network *sub = NULL;
    DT_TRY(dt_network_new(&sub));
    DT_TRY(dt_network_keep(im->net, sub, 0, dt_release_network)); /* deletes sub on failure */
    sub->opset = im->net->opset;
    dt_import si = {0};
    si.net = sub;
    si.dir = im->dir;
    si.opsets = im->opsets;
    si.n_opsets = im->n_opsets;
    si.parent = im;
    si.depth = im->depth + 1;
    ductile_status s = dt_onnx_graph(&si, gf);
    /* External files the subgraph opened stay with the network that keeps sub. */
    dt_names_free(&si.names);
    dt_free(si.scratch);
    if (s) return dt_fail_prefix(s, "attribute '%s'", a->name);
    a->type = DT_ATTR_GRAPH;
    a->g = sub;
    return DUCTILE_OK;
}

ductile_status dt_onnx_implicit_inputs(dt_import *im, ductile_layer *L)
{
    int extra = 0;
    for (int k = 0; k < L->n_attr; k++)
        if (L->attrs[k].type == DT_ATTR_GRAPH) extra += L->attrs[k].g->n_captured;
    if (!extra) return DUCTILE_OK;
    ductile_tensor **in = dt_arena_alloc(&im->net->arena, ((size_t)L->n_in + (size_t)extra) * sizeof *in);
    if (!in) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "node '%s': out of memory", L->name);
    memcpy(in, L->in, (size_t)L->n_in * sizeof *in);
    int n = L->n_in, formal = L->n_in;
    for (int k = 0; k < L->n_attr; k++) {
        const ductile_network *g = L->attrs[k].g;
        if (L->attrs[k].type != DT_ATTR_GRAPH) continue;
        for (int i = g->n_inputs - g->n_captured; i < g->n_inputs; i++) {
            const char *name = g->inputs[i]->name;
            bool dup = false;
            for (int j = formal; j < n && !dup; j++) dup = !strcmp(in[j]->name, name);
            if (dup) continue;
            bool oom;
            ductile_tensor *t = dt_onnx_resolve(im, name, &oom);
            if (!t)
                return oom ? dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "node '%s': out of memory", L->name)
                           : dt_fail(DUCTILE_ERR_INTERNAL, "node '%s': captured '%s' is not in scope", L->name, name);
            in[n++] = t;
        }
    }
    L->in = in;
    L->n_in = n;
    return DUCTILE_OK;
}
