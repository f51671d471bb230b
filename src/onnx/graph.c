/* GraphProto -> network. The wire order (nodes before initializers and inputs) is not the
 * order names are defined in, so the graph's repeated fields are gathered first and then
 * read as: initializers, inputs, nodes, value_info hints, outputs. */
#include "onnx/onnx_internal.h"
#include "ops/sequence.h"
#include "core/alloc.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>

enum { G_NODE = 1, G_INITIALIZER = 5, G_INPUT = 11, G_OUTPUT = 12, G_VALUE_INFO = 13,
       G_SPARSE_INITIALIZER = 15 };

typedef struct dt_fields {
    pb_field *v;
    int n, cap;
} dt_fields;

static int dt_fields_push(dt_fields *a, const pb_field *f)
{
    if (a->n == a->cap) {
        if (a->cap > (1 << 28)) return 0;
        int cap = a->cap ? a->cap * 2 : 64;
        pb_field *v = dt_realloc(a->v, (size_t)cap * sizeof *v);
        if (!v) return 0;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = *f;
    return 1;
}

static ductile_status dt_initializer(dt_import *im, const pb_field *f, int index)
{
    ductile_tensor v = {0};
    DT_TRY(dt_onnx_tensor(im, f, NULL, &v));
    if (!v.name[0]) return dt_fail(DUCTILE_ERR_PARSE, "initializer %d has no name", index);
    if (dt_names_get(&im->names, v.name))
        return dt_fail(DUCTILE_ERR_PARSE, "initializer '%s' is defined twice", v.name);
    ductile_tensor *t = dt_network_add_tensor(im->net, v.name);
    if (!t || !dt_names_put(&im->names, t))
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "initializer '%s': out of memory", v.name);
    t->dtype = v.dtype;
    t->rank = v.rank;
    memcpy(t->dims, v.dims, sizeof t->dims);
    t->data = v.data;
    t->nbytes = v.nbytes;
    return DUCTILE_OK;
}

static void dt_apply_shape(ductile_tensor *t, const dt_vtype *vt)
{
    t->rank = vt->rank;
    for (int i = 0; i < vt->rank; i++) {
        t->dims[i] = vt->dims[i];
        t->dim_sym[i] = vt->dims[i] < 0 ? vt->syms[i] : NULL;
    }
}

static ductile_status dt_input(dt_import *im, const pb_field *f)
{
    dt_vtype vt;
    DT_TRY(dt_onnx_value_info(im, f, &vt));
    ductile_tensor *known = dt_names_get(&im->names, vt.name);
    /* Older exporters list initializers among the inputs: those are constants. */
    if (known && known->data && !known->is_input) return DUCTILE_OK;
    if (known) return dt_fail(DUCTILE_ERR_PARSE, "graph input '%s' is declared twice", vt.name);
    if (!vt.name[0]) return dt_fail(DUCTILE_ERR_PARSE, "a graph input has no name");
    /* A subgraph's input may leave its type to the node that feeds it (Loop bodies of
     * expanded functions do). */
    if (!vt.is_tensor && vt.kind <= 0 && !(im->parent && !vt.has_type))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "graph input '%s': only tensors, and sequences and optionals of tensors, are supported by ductile",
                       vt.name);
    if (vt.raw_rank > DT_MAX_DIMS)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "graph input '%s': rank %d is above the maximum of %d",
                       vt.name, vt.raw_rank, DT_MAX_DIMS);
    ductile_tensor *t = dt_network_add_tensor(im->net, vt.name);
    if (!t || !dt_names_put(&im->names, t))
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "graph input '%s': out of memory", vt.name);
    t->dtype = vt.elem;
    /* A sequence or optional is one value whose items get their shapes at run time: rank 0,
     * so profiles have no dims to set for it. */
    t->kind = vt.is_tensor ? DUCTILE_VALUE_TENSOR : vt.kind;
    if (vt.is_tensor) dt_apply_shape(t, &vt);
    else t->rank = 0;
    return dt_network_add_input(im->net, t);
}

/* A declared element type: taken where none is known yet, refused where another one is (a
 * constant's, a graph input's, or an earlier declaration's), as ONNX Runtime refuses it. A
 * layer's computed dtype is checked against the declaration at build time (builder/dtypes.c). */
static ductile_status dt_declare_dtype(ductile_tensor *t, const dt_vtype *vt, const char *what)
{
    if (!vt->is_tensor || !vt->elem) return DUCTILE_OK;
    if (!t->dtype) {
        t->dtype = vt->elem;
        return DUCTILE_OK;
    }
    if (t->dtype == vt->elem) return DUCTILE_OK;
    const char *known = t->data ? "it is a constant of dtype" : t->is_input ? "it is a graph input of dtype"
                      : t->is_output ? "an earlier graph output entry declares it" : "value_info declares it";
    return dt_fail(DUCTILE_ERR_PARSE, "%s '%s' is declared %s but %s %s", what, t->name,
                   ductile_dtype_name((ductile_dtype)vt->elem), known, ductile_dtype_name((ductile_dtype)t->dtype));
}

/* value_info: declared types of intermediate tensors, used only where nothing is known. */
static ductile_status dt_hint(dt_import *im, const pb_field *f)
{
    dt_vtype vt;
    DT_TRY(dt_onnx_value_info(im, f, &vt));
    ductile_tensor *t = dt_names_get(&im->names, vt.name);
    if (!t || !t->producer || !vt.is_tensor) return DUCTILE_OK;
    DT_TRY(dt_declare_dtype(t, &vt, "value_info"));
    if (t->rank < 0 && vt.rank >= 0 && vt.raw_rank <= DT_MAX_DIMS) dt_apply_shape(t, &vt);
    return DUCTILE_OK;
}

static ductile_status dt_output(dt_import *im, const pb_field *f)
{
    dt_vtype vt;
    DT_TRY(dt_onnx_value_info(im, f, &vt));
    bool oom;
    /* A subgraph may return an enclosing scope's tensor as it is. */
    ductile_tensor *t = dt_onnx_resolve(im, vt.name, &oom);
    if (oom) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "graph output '%s': out of memory", vt.name);
    if (!t)
        return dt_fail(DUCTILE_ERR_PARSE,
                       "graph output '%s' is not produced by any node, initializer or graph input", vt.name);
    int declared = vt.is_tensor ? DUCTILE_VALUE_TENSOR : vt.kind;
    if ((vt.is_tensor || vt.kind) && declared != t->kind)
        return dt_fail(DUCTILE_ERR_PARSE, "graph output '%s' is declared %s but it is %s", vt.name,
                       dt_value_kind_name(declared), dt_value_kind_name(t->kind));
    if (vt.kind > 0 && vt.elem && vt.elem != DUCTILE_STRING && !t->dtype) t->dtype = vt.elem;
    if (vt.is_tensor) {
        DT_TRY(dt_declare_dtype(t, &vt, "graph output"));
        if (t->rank < 0 && vt.rank >= 0 && vt.raw_rank <= DT_MAX_DIMS) dt_apply_shape(t, &vt);
    }
    return dt_network_add_output(im->net, t);
}

ductile_status dt_onnx_graph(dt_import *im, const pb_field *gf)
{
    dt_fields nodes = {0}, inits = {0}, inputs = {0}, outputs = {0}, hints = {0};
    pb_reader r;
    pb_field g;
    bool more;
    ductile_status s = pb_sub(gf, &dt_pb_graph, &r);
    while (s == DUCTILE_OK) {
        s = pb_next(&r, &g, &more);
        if (s || !more) break;
        dt_fields *dst = g.num == G_NODE ? &nodes : g.num == G_INITIALIZER ? &inits
                       : g.num == G_INPUT ? &inputs : g.num == G_OUTPUT ? &outputs
                       : g.num == G_VALUE_INFO ? &hints : NULL;
        if (g.num == G_SPARSE_INITIALIZER)
            s = dt_fail(DUCTILE_ERR_UNSUPPORTED, "graph: sparse initializers are not supported by ductile");
        else if (dst && (s = pb_expect(&g, PB_LEN)) == DUCTILE_OK && !dt_fields_push(dst, &g))
            s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory reading the graph");
    }
    for (int i = 0; s == DUCTILE_OK && i < inits.n; i++) s = dt_initializer(im, &inits.v[i], i);
    for (int i = 0; s == DUCTILE_OK && i < inputs.n; i++) s = dt_input(im, &inputs.v[i]);
    for (int i = 0; s == DUCTILE_OK && i < nodes.n; i++) s = dt_onnx_node(im, &nodes.v[i], i);
    for (int i = 0; s == DUCTILE_OK && i < hints.n; i++) s = dt_hint(im, &hints.v[i]);
    for (int i = 0; s == DUCTILE_OK && i < outputs.n; i++) s = dt_output(im, &outputs.v[i]);
    dt_free(nodes.v);
    dt_free(inits.v);
    dt_free(inputs.v);
    dt_free(outputs.v);
    dt_free(hints.v);
    return s;
}
