/* NodeProto -> layer (or, for Constant, a constant tensor). Inputs resolve by name against
 * what came before: ONNX graphs are topologically sorted. */
#include "onnx/onnx_internal.h"
#include "ops/sequence.h"
#include "onnx/attr.h"
#include "onnx/domains.h"
#include "onnx/gradient.h"
#include "core/status.h"
#include "graph/subgraph.h"
#include "ops/op.h"

#include <stdio.h>
#include <string.h>

enum { DT_MAX_NODE_IO = 1 << 20 };
enum { N_INPUT = 1, N_OUTPUT = 2, N_NAME = 3, N_OP_TYPE = 4, N_ATTRIBUTE = 5, N_DOMAIN = 7 };

typedef struct dt_node_info {
    const char *name, *op_type, *domain;
    int opset, n_in, n_out, n_attr;
} dt_node_info;

/* A new tensor for an output name; refuses a name already in use. */
static ductile_status dt_new_output(dt_import *im, const dt_node_info *n, const char *name,
                                    ductile_tensor **out)
{
    if (dt_names_get(&im->names, name))
        return dt_fail(DUCTILE_ERR_PARSE,
                       "node '%s' (%s): output '%s' is already defined by an earlier node, initializer or graph input",
                       n->name, n->op_type, name);
    ductile_tensor *t = dt_network_add_tensor(im->net, name);
    if (!t || !dt_names_put(&im->names, t))
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "node '%s': out of memory", n->name);
    *out = t;
    return DUCTILE_OK;
}

/* Constant: its value becomes a constant tensor named after its output; no layer. */
static ductile_status dt_constant(dt_import *im, const pb_field *f, const dt_node_info *n)
{
    dt_arena *arena = &im->net->arena;
    pb_reader r;
    pb_field g;
    bool more;
    const char *out_name = NULL;
    dt_attr a;
    ductile_tensor v = {0};
    bool have = false;

    if (n->n_out != 1)
        return dt_fail(DUCTILE_ERR_PARSE, "node '%s' (Constant, opset %d): has %d outputs, expected 1",
                       n->name, n->opset, n->n_out);
    DT_TRY(pb_sub(f, &dt_pb_node, &r));
    for (;;) {
        DT_TRY(pb_next(&r, &g, &more));
        if (!more) break;
        if (g.num == N_OUTPUT && !(out_name = dt_onnx_str(im, &g))) goto oom;
        if (g.num != N_ATTRIBUTE) continue;
        ductile_status s = dt_onnx_attr(im, &g, &a);
        if (s) return dt_fail_prefix(s, "node '%s' (Constant, opset %d)", n->name, n->opset);
        if (have)
            return dt_fail(DUCTILE_ERR_PARSE, "node '%s' (Constant, opset %d): more than one value attribute",
                           n->name, n->opset);
        have = true;
        if (strcmp(a.name, "value") == 0 && a.type == DT_ATTR_TENSOR) {
            v = *a.t;
        } else if ((strcmp(a.name, "value_float") == 0 && a.type == DT_ATTR_FLOAT) ||
                   (strcmp(a.name, "value_int") == 0 && a.type == DT_ATTR_INT)) {
            bool is_f = a.type == DT_ATTR_FLOAT;
            void *p = dt_arena_alloc(arena, 8);
            if (!p) goto oom;
            if (is_f) memcpy(p, &a.f, 4);
            else memcpy(p, &a.i, 8);
            v.dtype = is_f ? DUCTILE_FLOAT32 : DUCTILE_INT64;
            v.rank = 0;
            v.data = p;
            v.nbytes = is_f ? 4 : 8;
        } else if ((strcmp(a.name, "value_floats") == 0 && a.type == DT_ATTR_FLOATS) ||
                   (strcmp(a.name, "value_ints") == 0 && a.type == DT_ATTR_INTS)) {
            bool is_f = a.type == DT_ATTR_FLOATS;
            v.dtype = is_f ? DUCTILE_FLOAT32 : DUCTILE_INT64;
            v.rank = 1;
            v.dims[0] = a.n;
            v.data = is_f ? (const void *)a.floats : (const void *)a.ints;
            v.nbytes = (size_t)a.n * (is_f ? 4 : 8);
        } else {
            return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                           "node '%s' (Constant, opset %d): attribute '%s' is not supported by ductile",
                           n->name, n->opset, a.name);
        }
    }
    if (!have)
        return dt_fail(DUCTILE_ERR_PARSE, "node '%s' (Constant, opset %d): no value attribute", n->name,
                       n->opset);
    if (!out_name[0])
        return dt_fail(DUCTILE_ERR_PARSE, "node '%s' (Constant, opset %d): output name is empty", n->name,
                       n->opset);
    ductile_tensor *t = NULL;
    DT_TRY(dt_new_output(im, n, out_name, &t));
    t->dtype = v.dtype;
    t->rank = v.rank;
    memcpy(t->dims, v.dims, sizeof t->dims);
    t->nbytes = v.nbytes;
    /* Every constant has non-NULL data, even with zero elements: NULL means "not constant". */
    t->data = v.data ? v.data : dt_arena_alloc(arena, 16);
    if (!t->data) goto oom;
    return DUCTILE_OK;
oom:
    return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "node '%s': out of memory", n->name);
}

static ductile_status dt_layer(dt_import *im, const pb_field *f, const dt_node_info *n)
{
    ductile_network *net = im->net;
    /* Besides the default domain: the ops of other domains listed in domains.c. */
    const char *own = dt_onnx_op_domain(n->op_type);
    bool other = !dt_onnx_default_domain(n->domain);
    if (other && dt_onnx_domain_known(n->domain) && (!own || strcmp(own, n->domain) != 0))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "node '%s' (%s.%s, opset %d): op type '%s' of domain '%s' is not supported by ductile",
                       n->name, n->domain, n->op_type, n->opset, n->op_type, n->domain);
    if (other && !own)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "node '%s' (%s.%s, opset %d): domain '%s' is not supported by ductile", n->name,
                       n->domain, n->op_type, n->opset, n->domain);
    if (!other && own)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "node '%s' (%s, opset %d): op type '%s' is not in the default domain (ai.onnx); "
                       "ductile runs it from domain '%s'", n->name, n->op_type, n->opset, n->op_type, own);
    /* 0 would read as "the newest opset" in the op rules: a model must say which it uses. */
    bool ml = other && !strcmp(n->domain, "ai.onnx.ml");
    if (n->opset < 1 && (!other || ml))
        return dt_fail(DUCTILE_ERR_PARSE,
                       "node '%s' (%s): the model's opset_import has no entry for the %s "
                       "domain (%s)", n->name, n->op_type, ml ? "ai.onnx.ml" : "default", ml ? "ai.onnx.ml" : "ai.onnx");
    const dt_opdef *def = dt_opdef_find(n->op_type);
    if (!def)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "node '%s' (%s, opset %d): op type '%s' is not supported by ductile", n->name,
                       n->op_type, n->opset, n->op_type);
    ductile_layer *L = dt_network_add_layer(net, n->op_type, n->name, n->n_in, n->n_out, n->n_attr);
    if (!L) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "node '%s': out of memory", n->name);
    L->domain = other ? n->domain : "";
    L->opset = n->opset;

    pb_reader r;
    pb_field g;
    bool more;
    int ki = 0, ko = 0, ka = 0;
    DT_TRY(pb_sub(f, &dt_pb_node, &r));
    for (;;) {
        DT_TRY(pb_next(&r, &g, &more));
        if (!more) break;
        if (g.num == N_INPUT) {
            const char *name = dt_onnx_tmpstr(im, &g);
            if (!name) goto oom;
            if (!name[0]) {
                L->in[ki++] = NULL;   /* an omitted optional input */
                continue;
            }
            bool oom;
            ductile_tensor *t = dt_onnx_resolve(im, name, &oom);
            if (oom) goto oom;
            if (!t)
                return dt_fail(DUCTILE_ERR_PARSE,
                               "node '%s' (%s): input '%s' is not produced by any earlier node, initializer or graph input",
                               n->name, n->op_type, name);
            L->in[ki++] = t;
        } else if (g.num == N_OUTPUT) {
            const char *name = dt_onnx_tmpstr(im, &g);
            if (!name) goto oom;
            char gen[512];
            if (!name[0]) {
                /* Unused outputs still get a tensor: kernels write every output. */
                snprintf(gen, sizeof gen, "%s:out%d", n->name, ko);
                name = gen;
            }
            ductile_tensor *t = NULL;
            DT_TRY(dt_new_output(im, n, name, &t));
            t->producer = L;
            L->out[ko++] = t;
        } else if (g.num == N_ATTRIBUTE) {
            ductile_status s = dt_onnx_attr(im, &g, &L->attrs[ka++]);
            if (s) return dt_fail_prefix(s, "node '%s' (%s, opset %d)", n->name, n->op_type, n->opset);
            /* Subgraphs are run by the control-flow ops and FlexAttention (graph/subgraph.h). */
            if (L->attrs[ka - 1].type == DT_ATTR_GRAPH &&
                !dt_graph_attr_supported(n->domain, n->op_type, L->attrs[ka - 1].name))
                return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                               "node '%s' (%s, opset %d): attribute '%s' of type GRAPH is not supported by ductile",
                               n->name, n->op_type, n->opset, L->attrs[ka - 1].name);
        }
    }
    /* Outer-scope tensors the subgraphs read become inputs after the formal ones. */
    DT_TRY(dt_onnx_implicit_inputs(im, L));
    if (def->check) {
        ductile_status s = def->check(L);
        if (s) return dt_fail_prefix(s, "node '%s' (%s, opset %d)", n->name, n->op_type, n->opset);
    }
    /* Sequences and optionals: the outputs' kinds follow from the inputs' (ops/sequence.h). */
    ductile_status ks = dt_value_kinds(L, true);
    if (ks) return dt_fail_prefix(ks, "node '%s' (%s, opset %d)", n->name, n->op_type, n->opset);
    return DUCTILE_OK;
oom:
    return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "node '%s': out of memory", n->name);
}

ductile_status dt_onnx_node(dt_import *im, const pb_field *f, int index)
{
    pb_reader r;
    pb_field g, name = {0}, op = {0}, dom = {0};
    bool more, has_name = false, has_op = false, has_dom = false;
    dt_node_info n = {0};

    DT_TRY(pb_sub(f, &dt_pb_node, &r));
    for (;;) {
        DT_TRY(pb_next(&r, &g, &more));
        if (!more) break;
        switch (g.num) {
        case N_INPUT: DT_TRY(pb_expect(&g, PB_LEN)); n.n_in += n.n_in <= DT_MAX_NODE_IO; break;
        case N_OUTPUT: DT_TRY(pb_expect(&g, PB_LEN)); n.n_out += n.n_out <= DT_MAX_NODE_IO; break;
        case N_ATTRIBUTE: DT_TRY(pb_expect(&g, PB_LEN)); n.n_attr += n.n_attr <= DT_MAX_NODE_IO; break;
        case N_NAME: DT_TRY(pb_expect(&g, PB_LEN)); name = g; has_name = true; break;
        case N_OP_TYPE: DT_TRY(pb_expect(&g, PB_LEN)); op = g; has_op = true; break;
        case N_DOMAIN: DT_TRY(pb_expect(&g, PB_LEN)); dom = g; has_dom = true; break;
        default: break;
        }
    }
    /* Counts are ints in the IR; a node this wide is not a real model. */
    if (n.n_in > DT_MAX_NODE_IO || n.n_out > DT_MAX_NODE_IO || n.n_attr > DT_MAX_NODE_IO)
        return dt_fail(DUCTILE_ERR_PARSE, "node %d: %d inputs, %d outputs, %d attributes; at most %d of each",
                       index, n.n_in, n.n_out, n.n_attr, DT_MAX_NODE_IO);
    if (!has_op || !op.len)
        return dt_fail(DUCTILE_ERR_PARSE, "node %d%s%s%s: op_type is missing", index,
                       has_name ? " '" : "", has_name ? dt_onnx_tmpstr(im, &name) : "", has_name ? "'" : "");
    n.op_type = dt_onnx_str(im, &op);
    n.domain = has_dom ? dt_onnx_str(im, &dom) : "";
    n.name = has_name && name.len ? dt_onnx_str(im, &name) : NULL;
    if (!n.op_type || !n.domain || (has_name && name.len && !n.name))
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory reading node %d", index);
    if (!n.name) {
        char gen[320];
        snprintf(gen, sizeof gen, "%.256s_%d", n.op_type, index);
        if (!(n.name = dt_arena_strdup(&im->net->arena, gen)))
            return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory reading node %d", index);
    }
    if (dt_onnx_default_domain(n.domain)) n.domain = "";
    n.opset = dt_onnx_opset(im, n.domain);
    if (!n.domain[0] && strcmp(n.op_type, "Constant") == 0) return dt_constant(im, f, &n);
    if (!strcmp(n.domain, "ai.onnx.preview.training") && !strcmp(n.op_type, "Gradient"))
        return dt_onnx_gradient(im, f, n.name, n.opset, n.n_in, n.n_out, n.n_attr);
    return dt_layer(im, f, &n);
}
