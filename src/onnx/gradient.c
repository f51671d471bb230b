/* Gradient (ai.onnx.preview.training, opset 1), rewritten at import into ordinary ops:
 * reverse-mode differentiation over the layers already imported, from the node's xs to its y.
 *
 * ONNX defines the outputs as dY/dX_i, where a non-scalar Y counts as the sum of its elements
 * (the seed is a tensor of ones shaped like Y). The rewrite happens here rather than in the
 * builder because the forward layers are all known at this point (ONNX graphs are sorted, so
 * y's producer comes before the node) and the result is an ordinary network: every backend,
 * the editing API and the engine file see only Add, Mul, ReduceSum..., never Gradient.
 *
 * Shapes are not known at import (they may be dynamic), so summing a broadcast operand's
 * gradient back to its shape is emitted as a small shape computation: the operand's shape,
 * left-padded with ones to the gradient's rank, marks with its ones the axes to sum
 * (NonZero), then ReduceSum(keepdims) and Reshape to the operand's shape. Summing an axis
 * where the gradient's size is 1 too changes nothing, so no comparison with the gradient's
 * dims is needed. */
#include "onnx/gradient.h"
#include "onnx/attr.h"
#include "core/alloc.h"
#include "core/status.h"
#include "ops/op.h"
#include "ops/sequence.h"

#include <stdio.h>
#include <string.h>

enum { N_INPUT = 1, N_OUTPUT = 2, N_ATTRIBUTE = 5 };

/* Opset of the emitted layers: ReduceSum takes axes as an input from 13, CastLike is 15. */
enum { DT_GRAD_MIN_OPSET = 15 };

typedef struct dt_grad {
    dt_import *im;
    const char *node;   /* the Gradient node's name */
    int node_opset;
    int opset;          /* of the emitted layers */
    int serial;         /* for generated names */
} dt_grad;

static ductile_status dt_g_oom(const dt_grad *g)
{
    return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "node '%s' (ai.onnx.preview.training.Gradient, opset %d): out of memory",
                   g->node, g->node_opset);
}

/* A new tensor with a generated name free in this scope and in the network. */
static ductile_tensor *dt_g_tensor(dt_grad *g)
{
    char buf[600];
    do snprintf(buf, sizeof buf, "%.500s/grad_%d", g->node, g->serial++);
    while (dt_names_get(&g->im->names, buf) || dt_network_find(g->im->net, buf));
    ductile_tensor *t = dt_network_add_tensor(g->im->net, buf);
    if (!t || !dt_names_put(&g->im->names, t)) return NULL;
    return t;
}

/* An int64 constant of rank 0 (n == 1, scalar) or 1. */
static ductile_tensor *dt_g_i64(dt_grad *g, const int64_t *v, int n, int rank)
{
    ductile_tensor *t = dt_g_tensor(g);
    void *p = t ? dt_arena_memdup(&g->im->net->arena, v, sizeof *v * (size_t)n) : NULL;
    if (!p) return NULL;
    t->dtype = DUCTILE_INT64;
    t->rank = rank;
    t->dims[0] = n;
    t->data = p;
    t->nbytes = sizeof *v * (size_t)n;
    return t;
}

/* A value attribute of ConstantOfShape: one element of dtype with the given bytes. */
static ductile_status dt_g_value_attr(dt_grad *g, int dtype, const void *bytes, size_t size, dt_attr *a)
{
    ductile_tensor *t = dt_arena_alloc(&g->im->net->arena, sizeof *t);
    void *p = t ? dt_arena_memdup(&g->im->net->arena, bytes, size) : NULL;
    if (!p) return dt_g_oom(g);
    t->name = "value";
    t->dtype = dtype;
    t->rank = 1;
    t->dims[0] = 1;
    t->data = p;
    t->nbytes = size;
    t->index = -1;
    memset(a, 0, sizeof *a);
    a->name = "value";
    a->type = DT_ATTR_TENSOR;
    a->t = t;
    return DUCTILE_OK;
}

/* Appends one layer op(in...) with one new output tensor. */
static ductile_status dt_g_op(dt_grad *g, const char *op, ductile_tensor *const *in, int n_in,
                              const dt_attr *attrs, int n_attr, ductile_tensor **out)
{
    char name[600];
    snprintf(name, sizeof name, "%.500s/%s_%d", g->node, op, g->serial++);
    ductile_layer *L = dt_network_add_layer(g->im->net, op, name, n_in, 1, n_attr);
    ductile_tensor *t = L ? dt_g_tensor(g) : NULL;
    if (!t) return dt_g_oom(g);
    L->opset = g->opset;
    for (int i = 0; i < n_in; i++) L->in[i] = in[i];
    if (n_attr) memcpy(L->attrs, attrs, sizeof *attrs * (size_t)n_attr);
    L->out[0] = t;
    t->producer = L;
    const dt_opdef *def = dt_opdef_find(op);
    ductile_status s = def && def->check ? def->check(L) : DUCTILE_OK;
    if (!s) s = dt_value_kinds(L, true);
    if (s)
        return dt_fail_prefix(s, "node '%s' (ai.onnx.preview.training.Gradient, opset %d): emitted %s", g->node,
                              g->node_opset, op);
    *out = t;
    return DUCTILE_OK;
}

static ductile_status dt_g_un(dt_grad *g, const char *op, ductile_tensor *a, ductile_tensor **out)
{
    return dt_g_op(g, op, &a, 1, NULL, 0, out);
}

static ductile_status dt_g_bin(dt_grad *g, const char *op, ductile_tensor *a, ductile_tensor *b,
                               ductile_tensor **out)
{
    ductile_tensor *in[2] = {a, b};
    return dt_g_op(g, op, in, 2, NULL, 0, out);
}

/* ConstantOfShape(Shape(like)) filled with v (0 or 1), cast to like's dtype. */
static ductile_status dt_g_fill(dt_grad *g, ductile_tensor *like, float v, ductile_tensor **out)
{
    ductile_tensor *shape, *filled;
    dt_attr a;
    DT_TRY(dt_g_un(g, "Shape", like, &shape));
    DT_TRY(dt_g_value_attr(g, DUCTILE_FLOAT32, &v, sizeof v, &a));
    DT_TRY(dt_g_op(g, "ConstantOfShape", &shape, 1, &a, 1, &filled));
    return dt_g_bin(g, "CastLike", filled, like, out);
}

/* grad (shaped like the broadcast result) summed back to x's shape. */
static ductile_status dt_g_sum_to(dt_grad *g, ductile_tensor *grad, ductile_tensor *x, ductile_tensor **out)
{
    static const int64_t one = 1, minus_one = -1;
    ductile_tensor *sx, *sg, *rx, *rg, *d, *d1, *pad, *xp, *mask, *nz, *axes, *red, *c;
    dt_attr a[2];
    DT_TRY(dt_g_un(g, "Shape", x, &sx));
    DT_TRY(dt_g_un(g, "Shape", grad, &sg));
    DT_TRY(dt_g_un(g, "Size", sx, &rx));
    DT_TRY(dt_g_un(g, "Size", sg, &rg));
    DT_TRY(dt_g_bin(g, "Sub", rg, rx, &d));
    if (!(c = dt_g_i64(g, &one, 1, 1))) return dt_g_oom(g);
    DT_TRY(dt_g_bin(g, "Reshape", d, c, &d1));
    DT_TRY(dt_g_value_attr(g, DUCTILE_INT64, &one, sizeof one, &a[0]));
    DT_TRY(dt_g_op(g, "ConstantOfShape", &d1, 1, a, 1, &pad));
    memset(a, 0, sizeof a);
    a[0].name = "axis";
    a[0].type = DT_ATTR_INT;
    a[0].i = 0;
    ductile_tensor *cat[2] = {pad, sx};
    DT_TRY(dt_g_op(g, "Concat", cat, 2, a, 1, &xp));
    if (!(c = dt_g_i64(g, &one, 1, 0))) return dt_g_oom(g);
    DT_TRY(dt_g_bin(g, "Equal", xp, c, &mask));
    DT_TRY(dt_g_un(g, "NonZero", mask, &nz));
    if (!(c = dt_g_i64(g, &minus_one, 1, 1))) return dt_g_oom(g);
    DT_TRY(dt_g_bin(g, "Reshape", nz, c, &axes));
    memset(a, 0, sizeof a);
    a[0].name = "keepdims";
    a[0].type = DT_ATTR_INT;
    a[0].i = 1;
    a[1].name = "noop_with_empty_axes";
    a[1].type = DT_ATTR_INT;
    a[1].i = 1;
    ductile_tensor *rin[2] = {grad, axes};
    DT_TRY(dt_g_op(g, "ReduceSum", rin, 2, a, 2, &red));
    return dt_g_bin(g, "Reshape", red, sx, out);
}

static bool dt_g_differentiable(const char *op)
{
    static const char *const ops[] = {"Add", "Sub", "Mul", "Div", "Neg", "Identity", "Relu", "Sigmoid", "Tanh"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(op, ops[i])) return true;
    return false;
}

/* The contribution of layer L's output gradient gz to the gradient of its input k. */
static ductile_status dt_g_input_grad(dt_grad *g, const ductile_layer *L, int k, ductile_tensor *gz,
                                      ductile_tensor **out)
{
    const char *op = L->op_type;
    ductile_tensor *z = L->out[0], *t, *u;
    if (!strcmp(op, "Identity")) {
        *out = gz;
        return DUCTILE_OK;
    }
    if (!strcmp(op, "Neg")) return dt_g_un(g, "Neg", gz, out);
    if (!strcmp(op, "Relu")) { /* z is 0 or positive: Sign(z) is the step */
        DT_TRY(dt_g_un(g, "Sign", z, &t));
        return dt_g_bin(g, "Mul", gz, t, out);
    }
    if (!strcmp(op, "Sigmoid")) { /* z (1 - z) */
        DT_TRY(dt_g_bin(g, "Mul", z, z, &t));
        DT_TRY(dt_g_bin(g, "Sub", z, t, &u));
        return dt_g_bin(g, "Mul", gz, u, out);
    }
    if (!strcmp(op, "Tanh")) { /* 1 - z^2 */
        DT_TRY(dt_g_bin(g, "Mul", z, z, &t));
        DT_TRY(dt_g_bin(g, "Mul", gz, t, &u));
        return dt_g_bin(g, "Sub", gz, u, out);
    }
    /* Binary, broadcasting. */
    ductile_tensor *x = L->in[k], *other = L->in[1 - k], *local = gz;
    if (!strcmp(op, "Sub") && k == 1) {
        DT_TRY(dt_g_un(g, "Neg", gz, &local));
    } else if (!strcmp(op, "Mul")) {
        DT_TRY(dt_g_bin(g, "Mul", gz, other, &local));
    } else if (!strcmp(op, "Div") && k == 0) {
        DT_TRY(dt_g_bin(g, "Div", gz, other, &local));
    } else if (!strcmp(op, "Div")) { /* d(a/b)/db = -(a/b)/b; x is b here */
        DT_TRY(dt_g_bin(g, "Div", z, x, &t));
        DT_TRY(dt_g_bin(g, "Mul", gz, t, &u));
        DT_TRY(dt_g_un(g, "Neg", u, &local));
    }
    return dt_g_sum_to(g, local, x, out);
}

/* The node's xs and y attributes, input and output names, checked against each other. */
typedef struct dt_grad_node {
    const dt_attr *xs, *zs, *y;
    const char **in, **out;
    int n_in, n_out;
} dt_grad_node;

static ductile_status dt_g_read(dt_grad *g, const pb_field *f, int n_in, int n_out, int n_attr,
                                dt_grad_node *n)
{
    dt_import *im = g->im;
    dt_arena *arena = &im->net->arena;
    dt_attr *attrs = dt_arena_alloc(arena, sizeof *attrs * (size_t)(n_attr ? n_attr : 1));
    n->in = dt_arena_alloc(arena, sizeof *n->in * (size_t)(n_in ? n_in : 1));
    n->out = dt_arena_alloc(arena, sizeof *n->out * (size_t)(n_out ? n_out : 1));
    if (!attrs || !n->in || !n->out) return dt_g_oom(g);
    pb_reader r;
    pb_field fld;
    bool more;
    int ka = 0;
    DT_TRY(pb_sub(f, &dt_pb_node, &r));
    for (;;) {
        DT_TRY(pb_next(&r, &fld, &more));
        if (!more) break;
        if (fld.num == N_INPUT || fld.num == N_OUTPUT) {
            const char *s = dt_onnx_str(im, &fld);
            if (!s) return dt_g_oom(g);
            if (fld.num == N_INPUT) n->in[n->n_in++] = s;
            else n->out[n->n_out++] = s;
        } else if (fld.num == N_ATTRIBUTE) {
            ductile_status s = dt_onnx_attr(im, &fld, &attrs[ka]);
            if (s)
                return dt_fail_prefix(s, "node '%s' (ai.onnx.preview.training.Gradient, opset %d)", g->node,
                                      g->node_opset);
            const dt_attr *a = &attrs[ka++];
            bool strings = a->type == DT_ATTR_STRINGS, string = a->type == DT_ATTR_STRING;
            const char *want = NULL;
            if (!strcmp(a->name, "xs")) n->xs = a, want = strings ? NULL : "STRINGS";
            else if (!strcmp(a->name, "zs")) n->zs = a, want = strings ? NULL : "STRINGS";
            else if (!strcmp(a->name, "y")) n->y = a, want = string ? NULL : "STRING";
            else
                return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                               "node '%s' (ai.onnx.preview.training.Gradient, opset %d): attribute '%s' is not supported by ductile",
                               g->node, g->node_opset, a->name);
            if (want)
                return dt_fail(DUCTILE_ERR_PARSE,
                               "node '%s' (ai.onnx.preview.training.Gradient, opset %d): attribute '%s' must be of type %s",
                               g->node, g->node_opset, a->name, want);
        }
    }
    if (!n->xs || !n->y)
        return dt_fail(DUCTILE_ERR_PARSE,
                       "node '%s' (ai.onnx.preview.training.Gradient, opset %d): attribute '%s' is missing", g->node,
                       g->node_opset, !n->xs ? "xs" : "y");
    int64_t nx = n->xs->n, nz = n->zs ? n->zs->n : 0;
    if (nx < 1 || n->n_in != nx + nz || n->n_out != nx)
        return dt_fail(DUCTILE_ERR_PARSE,
                       "node '%s' (ai.onnx.preview.training.Gradient, opset %d): has %d inputs and %d outputs; "
                       "expected the %lld xs then the %lld zs as inputs and one output per x (xs is not empty)",
                       g->node, g->node_opset, n->n_in, n->n_out, (long long)nx, (long long)nz);
    for (int i = 0; i < n->n_in; i++) {
        const char *want = i < nx ? n->xs->strings[i] : n->zs->strings[i - nx];
        if (strcmp(n->in[i], want))
            return dt_fail(DUCTILE_ERR_PARSE,
                           "node '%s' (ai.onnx.preview.training.Gradient, opset %d): input %d is '%s' but %s[%lld] is '%s'",
                           g->node, g->node_opset, i, n->in[i], i < nx ? "xs" : "zs",
                           (long long)(i < nx ? i : i - nx), want);
    }
    return DUCTILE_OK;
}

/* The reverse sweep, once the node is read: grads[t] is the gradient of tensor index t. */
static ductile_status dt_g_build(dt_grad *g, const dt_grad_node *n, ductile_tensor **x, ductile_tensor *y,
                                 bool *from_x, bool *to_y, ductile_tensor **grads)
{
    ductile_network *net = g->im->net;
    int n_layers = net->n_layers, nx = n->n_out;
    /* Tensors that depend on some x (forward), then those of them y depends on (backward). */
    for (int i = 0; i < nx; i++) from_x[x[i]->index] = true;
    for (int l = 0; l < n_layers; l++) {
        const ductile_layer *L = net->layers[l];
        bool dep = false;
        for (int k = 0; k < L->n_in; k++) dep |= L->in[k] && from_x[L->in[k]->index];
        for (int k = 0; dep && k < L->n_out; k++) from_x[L->out[k]->index] = true;
    }
    to_y[y->index] = from_x[y->index];
    for (int l = n_layers - 1; l >= 0; l--) {
        const ductile_layer *L = net->layers[l];
        bool on = false;
        for (int k = 0; k < L->n_out; k++) on |= to_y[L->out[k]->index];
        if (!on) continue;
        if (!dt_g_differentiable(L->op_type))
            return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                           "node '%s' (ai.onnx.preview.training.Gradient, opset %d): cannot differentiate node '%s' (%s) "
                           "on the path from xs to y '%s'; ductile differentiates Add, Sub, Mul, Div, Neg, Identity, "
                           "Relu, Sigmoid and Tanh",
                           g->node, g->node_opset, L->name, L->op_type, y->name);
        for (int k = 0; k < L->n_in; k++)
            if (L->in[k] && from_x[L->in[k]->index]) to_y[L->in[k]->index] = true;
    }
    if (to_y[y->index]) DT_TRY(dt_g_fill(g, y, 1.0f, &grads[y->index]));
    for (int l = n_layers - 1; l >= 0; l--) {
        const ductile_layer *L = net->layers[l];
        if (!to_y[L->out[0]->index] || !grads[L->out[0]->index]) continue;
        for (int k = 0; k < L->n_in; k++) {
            ductile_tensor *in = L->in[k];
            if (!in || !to_y[in->index]) continue;
            ductile_tensor *c, **acc = &grads[in->index];
            DT_TRY(dt_g_input_grad(g, L, k, grads[L->out[0]->index], &c));
            if (*acc) DT_TRY(dt_g_bin(g, "Add", *acc, c, acc));
            else *acc = c;
        }
    }
    /* The outputs: Identity of each x's gradient, or zeros where y does not depend on x. */
    for (int i = 0; i < nx; i++) {
        ductile_tensor *gx = grads[x[i]->index];
        if (!gx) DT_TRY(dt_g_fill(g, x[i], 0.0f, &gx));
        const char *name = n->out[i];
        char gen[512];
        if (!name[0]) {
            snprintf(gen, sizeof gen, "%.400s:out%d", g->node, i);
            name = gen;
        }
        if (dt_names_get(&g->im->names, name))
            return dt_fail(DUCTILE_ERR_PARSE,
                           "node '%s' (ai.onnx.preview.training.Gradient, opset %d): output '%s' is already defined by an earlier node, initializer or graph input",
                           g->node, g->node_opset, name);
        char lname[600];
        snprintf(lname, sizeof lname, "%.500s/Identity_%d", g->node, g->serial++);
        ductile_layer *L = dt_network_add_layer(net, "Identity", lname, 1, 1, 0);
        ductile_tensor *t = L ? dt_network_add_tensor(net, name) : NULL;
        if (!t || !dt_names_put(&g->im->names, t)) return dt_g_oom(g);
        L->opset = g->opset;
        L->in[0] = gx;
        L->out[0] = t;
        t->producer = L;
    }
    return DUCTILE_OK;
}

ductile_status dt_onnx_gradient(dt_import *im, const pb_field *f, const char *name, int opset, int n_in,
                                int n_out, int n_attr)
{
    int dflt = dt_onnx_opset(im, "");
    dt_grad g = {im, name, opset, dflt > DT_GRAD_MIN_OPSET ? dflt : DT_GRAD_MIN_OPSET, 0};
    dt_grad_node n;
    memset(&n, 0, sizeof n);
    DT_TRY(dt_g_read(&g, f, n_in, n_out, n_attr, &n));
    ductile_tensor **x = dt_calloc((size_t)n.n_out, sizeof *x);
    if (!x) return dt_g_oom(&g);
    ductile_status s = DUCTILE_OK;
    for (int i = 0; !s && i < n.n_out; i++) {
        bool oom;
        x[i] = dt_onnx_resolve(im, n.in[i], &oom);
        if (oom) s = dt_g_oom(&g);
        else if (!x[i])
            s = dt_fail(DUCTILE_ERR_PARSE,
                        "node '%s' (ai.onnx.preview.training.Gradient, opset %d): input '%s' is not produced by any earlier node, initializer or graph input",
                        name, opset, n.in[i]);
    }
    bool oom = false;
    ductile_tensor *y = s ? NULL : dt_onnx_resolve(im, n.y->s, &oom);
    if (!s && oom) s = dt_g_oom(&g);
    else if (!s && !y)
        s = dt_fail(DUCTILE_ERR_PARSE,
                    "node '%s' (ai.onnx.preview.training.Gradient, opset %d): y '%s' is not computed by any earlier node, initializer or graph input",
                    name, opset, n.y->s);
    /* Sized before the sweep adds tensors: only the forward tensors are looked up by index. */
    size_t nt = (size_t)im->net->n_tensors;
    bool *from_x = s ? NULL : dt_calloc(nt, sizeof *from_x), *to_y = s ? NULL : dt_calloc(nt, sizeof *to_y);
    ductile_tensor **grads = s ? NULL : dt_calloc(nt, sizeof *grads);
    if (!s && (!from_x || !to_y || !grads)) s = dt_g_oom(&g);
    if (!s) s = dt_g_build(&g, &n, x, y, from_x, to_y, grads);
    dt_free(x);
    dt_free(from_x);
    dt_free(to_y);
    dt_free(grads);
    return s;
}
