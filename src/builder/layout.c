/* The layout pass: channels-last (NHWC) regions for backends whose convolutions are faster
 * on them (the CUDA backend's half convolutions: cuDNN's tensor-core kernels read NHWC, and
 * given NCHW they transpose internally, once per layer). TensorRT and onnxruntime do the same
 * at graph level: one transpose at each border of a region instead of two per conv.
 *
 * 1. Anchors: FusedConv layers (2-D, constant 4-D weights, not packed) that the backend
 *    wants channels last (dt_backend.prefers_nhwc), or every one with DT_LAYOUT_ALL.
 * 2. The region grows forward, in layer order, through layers that do not care about the
 *    layout once their operands are permuted alike: elementwise unary ops (constant scalar
 *    extras, as Clip's bounds) and binary ones whose activation operands all come from the
 *    region (rank 4; constants of rank <= 4 are permuted too, so [1, C, 1, 1] becomes
 *    [1, 1, 1, C]), MaxPool / AveragePool with 2-D windows (attribute `layout` "NHWC", as
 *    FusedConv's: every backend's pool reads it), GlobalAveragePool, which becomes
 *    ReduceMean over axes 1, 2 with keepdims (its output [N, 1, 1, C]), and
 *    FusedSqueezeExcite (layout "NHWC": X channels last, its weights unchanged). A binary op with an operand from outside stays
 *    outside: joining would cost a transpose in and one out instead of one.
 * 3. Rewrite: every tensor a region layer writes gets a channels-last twin
 *    ("<name>/nhwc", dims permuted, symbolic dims too) that the region reads; the tensor
 *    itself is computed by Transpose(perm 0,3,1,2) of the twin, placed before its first
 *    reader outside the region (right after the layer for a network output), and only if
 *    it has one,
 *    so outputs keep their names and dims. A region layer's operand from outside goes
 *    through one Transpose(perm 0,2,3,1) per tensor, shared by its readers; constants get a
 *    permuted twin (W [M, C/group, KH, KW] becomes KRSC [M, KH, KW, C/group]). Each tensor has
 *    at most one transpose each way and region layers read twins directly, so no
 *    back-to-back inverse transposes arise (nothing to cancel afterwards).
 * Ops it does not know (Resize, Concat, Reshape, ...) end the region. A DepthToSpace right
 * after it reads the channels-last twin itself (attribute `layout` "NHWC"; its output is
 * channels first), so no Transpose back is placed for it.
 * Runs after fusion and before packing and precision: a region's convs keep raw weights
 * (packing is channels-first), and precision then lowers the region's layers to half as any
 * other (the Transposes too). The pass only permutes dims, so symbolic dims stay right. */
#include "builder/optimize.h"
#include "core/alloc.h"
#include "core/permute.h"
#include "core/status.h"
#include "ops/fused.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool dt_is(const ductile_layer *L, const char *op) { return !strcmp(L->op_type, op) && !strcmp(L->domain, ""); }

static bool dt_in_list(const char *op, const char *const *ops)
{
    for (int i = 0; ops[i]; i++)
        if (!strcmp(op, ops[i])) return true;
    return false;
}

/* Elementwise ops of one activation input (extras: constant scalars). */
static const char *const dt_unary_ops[] = {
    "Relu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Selu", "Celu", "Softplus",
    "Softsign", "Exp", "Log", "Neg", "Abs", "Sqrt", "Reciprocal", "Erf", "Gelu", "Mish", "Floor", "Ceil",
    "Round", "Sign", "Sin", "Cos", "ThresholdedRelu", "Clip", "Cast", NULL};
/* Elementwise ops of two operands that broadcast numpy-style. */
static const char *const dt_binary_ops[] = {"Add", "Sub", "Mul", "Div", "Max", "Min", NULL};

typedef struct dt_layout {
    ductile_network *net;
    int n;                      /* tensors before the pass */
    bool *in_region;            /* per layer */
    ductile_tensor **twin;      /* per tensor: its channels-last version, or NULL */
    bool *restored;             /* per tensor: its Transpose back is placed */
    ductile_layer **order;
    int n_order;
} dt_layout;

static bool dt_const(const ductile_tensor *t) { return t && t->data; }

/* Written by a region layer (so it has a twin by the time a later layer reads it). */
static bool dt_from_region(const dt_layout *p, const ductile_tensor *t)
{
    return t && !t->data && t->index < p->n && p->twin[t->index];
}

static bool dt_anchor(const ductile_layer *L, const dt_backend *be, unsigned flags, dt_layout_mode mode)
{
    if (strcmp(L->op_type, "FusedConv") || strcmp(L->domain, "ductile") || dt_fused_conv_nhwc(L) ||
        dt_attr_int(L, "packed", 0) != 0 || L->n_in < 2 || L->n_out != 1 || (L->n_in > DT_FC_S && L->in[DT_FC_S]))
        return false;
    const ductile_tensor *x = L->in[DT_FC_X], *w = L->in[DT_FC_W], *y = L->out[0];
    if (!x || x->rank != 4 || !w || !dt_const(w) || w->rank != 4 || y->rank != 4) return false;
    if (L->n_in > DT_FC_R && L->in[DT_FC_R] && L->in[DT_FC_R]->rank != 4) return false;
    if (mode == DT_LAYOUT_ALL) return true;
    return be && be->prefers_nhwc && be->prefers_nhwc(L, flags);
}

/* Whether layer L joins the region (anchors are decided by the caller). */
static bool dt_joins(const dt_layout *p, const ductile_layer *L)
{
    if (L->n_out != 1 || L->out[0]->rank != 4) return false;
    if (dt_is(L, "GlobalAveragePool")) return L->n_in == 1 && dt_from_region(p, L->in[0]);
    if (!strcmp(L->op_type, "FusedSqueezeExcite") && !strcmp(L->domain, "ductile"))
        return dt_from_region(p, L->in[DT_FSE_X]) && !dt_attr_find(L, "layout");
    if (dt_is(L, "MaxPool") || dt_is(L, "AveragePool")) {
        int64_t nk = 0;
        dt_attr_ints(L, "kernel_shape", &nk);
        return L->n_in == 1 && dt_from_region(p, L->in[0]) && nk == 2 && !dt_attr_int(L, "storage_order", 0) &&
               !dt_attr_find(L, "layout");
    }
    if (dt_in_list(L->op_type, dt_unary_ops) && !strcmp(L->domain, "")) {
        if (L->n_in < 1 || !dt_from_region(p, L->in[0])) return false;
        for (int k = 1; k < L->n_in; k++)
            if (L->in[k] && (!dt_const(L->in[k]) || dt_tensor_count(L->in[k]) > 1)) return false;
        return true;
    }
    bool binary = dt_in_list(L->op_type, dt_binary_ops) || (dt_is(L, "PRelu") && L->opset >= 7);
    if (!binary || strcmp(L->domain, "") || L->n_in != 2 || !L->in[0] || !L->in[1]) return false;
    bool any = false;
    for (int k = 0; k < 2; k++) {
        const ductile_tensor *t = L->in[k];
        if (dt_const(t)) {
            if (t->rank < 0 || t->rank > 4 || dt_tensor_count(t) < 0) return false;
        } else if (dt_from_region(p, t)) {
            any = true;
        } else {
            return false;
        }
    }
    return any;
}

/* A new tensor named after `like` with `suffix` (made unique). */
static ductile_tensor *dt_named_like(ductile_network *net, const ductile_tensor *like, const char *suffix)
{
    ductile_tensor *t = dt_network_add_named(net, like->name, suffix);
    if (t) t->dtype = like->dtype;
    return t;
}

/* dst takes src's 4-D shape permuted (dims, symbols, overrides alike). */
static void dt_permute_shape(ductile_tensor *dst, const ductile_tensor *src, const int *perm)
{
    dst->rank = 4;
    for (int k = 0; k < 4; k++) {
        dst->dims[k] = src->dims[perm[k]];
        dst->dim_sym[k] = src->dim_sym[perm[k]];
        dst->overridden[k] = false;
        dst->declared[k] = -1;
    }
}

static const int64_t dt_perm64_to_nhwc[4] = {0, 2, 3, 1}, dt_perm64_to_nchw[4] = {0, 3, 1, 2};

/* Appends Transpose(from) -> to with perm to the new order. */
static ductile_status dt_transpose(dt_layout *p, ductile_tensor *from, ductile_tensor *to, bool to_nhwc)
{
    char name[512];
    snprintf(name, sizeof name, "%s/%s", from->name, to_nhwc ? "to_nhwc" : "to_nchw");
    ductile_layer *T = dt_network_add_layer(p->net, "Transpose", name, 1, 1, 1);
    if (!T) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory adding a transpose for '%s'", from->name);
    T->opset = 13;
    T->in[0] = from;
    T->out[0] = to;
    to->producer = T;
    memset(&T->attrs[0], 0, sizeof T->attrs[0]);
    T->attrs[0].name = "perm";
    T->attrs[0].type = DT_ATTR_INTS;
    T->attrs[0].n = 4;
    T->attrs[0].ints = to_nhwc ? dt_perm64_to_nhwc : dt_perm64_to_nchw;
    p->order[p->n_order++] = T;
    return DUCTILE_OK;
}

static void dt_release_free(void *ptr, size_t n)
{
    (void)n;
    dt_free(ptr);
}

/* The channels-last twin of a constant of rank <= 4: dims right-aligned to rank 4 (as
 * broadcasting aligns them), then permuted with its data. */
static ductile_status dt_const_twin(dt_layout *p, ductile_tensor *c, ductile_tensor **out)
{
    ductile_tensor *tw = p->twin[c->index];
    if (!tw) {
        int64_t d4[4] = {1, 1, 1, 1};
        ductile_tensor padded = {.rank = 4};
        for (int k = 0; k < c->rank; k++) d4[4 - c->rank + k] = c->dims[k];
        memcpy(padded.dims, d4, sizeof d4);
        tw = dt_named_like(p->net, c, "nhwc");
        void *buf = tw ? dt_aligned_alloc(64, c->nbytes ? c->nbytes : 1) : NULL;
        if (!buf) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory permuting constant '%s'", c->name);
        ductile_status s = dt_network_keep(p->net, buf, c->nbytes, dt_release_free);
        if (s) {
            dt_free(buf);
            return s;
        }
        int64_t count = dt_tensor_count(c);
        size_t es = count > 0 ? c->nbytes / (size_t)count : 0;
        if (count > 0) dt_permute(c->data, buf, 4, d4, dt_perm_to_nhwc, es);
        dt_permute_shape(tw, &padded, dt_perm_to_nhwc);
        tw->data = buf;
        tw->nbytes = c->nbytes;
        p->twin[c->index] = tw;
    }
    *out = tw;
    return DUCTILE_OK;
}

/* The channels-last version of input t of a region layer. */
static ductile_status dt_nhwc_of(dt_layout *p, ductile_tensor *t, ductile_tensor **out)
{
    if (dt_const(t)) return dt_const_twin(p, t, out);
    if (!p->twin[t->index]) {
        /* From outside the region: one Transpose in, shared by every region reader. */
        ductile_tensor *tw = dt_named_like(p->net, t, "nhwc");
        if (!tw) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory adding a transpose for '%s'", t->name);
        dt_permute_shape(tw, t, dt_perm_to_nhwc);
        DT_TRY(dt_transpose(p, t, tw, true));
        p->twin[t->index] = tw;
        p->restored[t->index] = true; /* t itself is computed outside */
    }
    *out = p->twin[t->index];
    return DUCTILE_OK;
}

/* Rewrites region layer L to read and write channels-last tensors. */
static ductile_status dt_rewrite(dt_layout *p, ductile_layer *L)
{
    bool conv = !strcmp(L->op_type, "FusedConv"), se = !strcmp(L->op_type, "FusedSqueezeExcite");
    for (int k = 0; k < L->n_in; k++) {
        ductile_tensor *t = L->in[k];
        if (!t || (conv && k == DT_FC_B) || (se && k != DT_FSE_X)) continue; /* SE: weights as they are */
        if (!conv && k > 0 && dt_in_list(L->op_type, dt_unary_ops)) continue; /* scalar extras */
        DT_TRY(dt_nhwc_of(p, t, &L->in[k]));
    }
    ductile_tensor *y = L->out[0];
    ductile_tensor *tw = dt_named_like(p->net, y, "nhwc");
    if (!tw) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory rewriting node '%s'", L->name);
    dt_permute_shape(tw, y, dt_perm_to_nhwc);
    tw->producer = L;
    L->out[0] = tw;
    p->twin[y->index] = tw;
    if (conv || se || !strcmp(L->op_type, "MaxPool") || !strcmp(L->op_type, "AveragePool")) {
        dt_attr a = {.name = "layout", .type = DT_ATTR_STRING, .s = "NHWC", .s_len = 4};
        DT_TRY(dt_layer_add_attrs(p->net, L, &a, 1));
    } else if (!strcmp(L->op_type, "GlobalAveragePool")) {
        static const int64_t axes[2] = {1, 2};
        dt_attr *a = dt_arena_alloc(&p->net->arena, sizeof *a * 2);
        if (!a) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory rewriting node '%s'", L->name);
        memset(a, 0, sizeof *a * 2);
        a[0] = (dt_attr){.name = "axes", .type = DT_ATTR_INTS, .n = 2, .ints = axes};
        a[1] = (dt_attr){.name = "keepdims", .type = DT_ATTR_INT, .i = 1};
        L->op_type = "ReduceMean";
        L->opset = 13;  /* axes as an attribute */
        L->attrs = a;
        L->n_attr = 2;
    }
    return DUCTILE_OK;
}

/* Whether layer L, outside the region, reads its input's channels-last twin as it is: a
 * DepthToSpace (any backend's reads attribute layout "NHWC") whose input the region wrote and
 * nothing restored yet. Its output is channels first either way, so the region's Transpose
 * back (superres: conv -> Transpose -> DepthToSpace, two passes over the largest tensor) goes. */
static bool dt_reads_twin(const dt_layout *p, const ductile_layer *L)
{
    const char *on = getenv("DUCTILE_LAYOUT_D2S");
    if ((on && !strcmp(on, "0")) || !dt_is(L, "DepthToSpace") || L->n_in != 1 || L->n_out != 1 ||
        dt_attr_find(L, "layout"))
        return false;
    const ductile_tensor *t = L->in[0];
    return dt_from_region(p, t) && t->rank == 4 && !p->restored[t->index];
}

/* Tensor t (written by the region) in its channels-first form for a reader outside. */
static ductile_status dt_restore(dt_layout *p, ductile_tensor *t)
{
    if (t->data || t->index >= p->n || !p->twin[t->index] || p->restored[t->index]) return DUCTILE_OK;
    p->restored[t->index] = true;
    return dt_transpose(p, p->twin[t->index], t, false);
}

ductile_status dt_pass_layout(ductile_network *net, const dt_backend *be, unsigned flags, dt_layout_mode mode,
                              int *converted)
{
    *converted = 0;
    if (mode == DT_LAYOUT_NONE || (mode == DT_LAYOUT_BACKEND && (!be || !be->prefers_nhwc))) return DUCTILE_OK;
    int nl = net->n_layers, n = net->n_tensors;
    dt_layout p = {.net = net, .n = n};
    p.in_region = dt_calloc((size_t)nl + 1, sizeof *p.in_region);
    p.twin = dt_calloc((size_t)n + 1, sizeof *p.twin);
    p.restored = dt_calloc((size_t)n + 1, sizeof *p.restored);
    /* Each tensor gets at most one transpose each way. */
    p.order = dt_malloc(((size_t)nl + 2 * (size_t)n + 1) * sizeof *p.order);
    ductile_status s = p.in_region && p.twin && p.restored && p.order
                     ? DUCTILE_OK : dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory in the layout pass");
    /* Which layers: in order, so a layer sees whether its inputs come from the region. A
     * placeholder twin marks the region's tensors until the rewrite makes the real ones. */
    int anchors = 0;
    for (int i = 0; !s && i < nl; i++) {
        ductile_layer *L = net->layers[i];
        bool anchor = dt_anchor(L, be, flags, mode);
        p.in_region[i] = anchor || (anchors && dt_joins(&p, L));
        anchors += anchor;
        if (p.in_region[i]) p.twin[L->out[0]->index] = L->out[0];
    }
    if (!s) memset(p.twin, 0, sizeof *p.twin * (size_t)(n + 1));
    for (int i = 0; !s && anchors && i < nl; i++) {
        ductile_layer *L = net->layers[i];
        ductile_tensor *y = L->n_out ? L->out[0] : NULL;
        if (p.in_region[i]) {
            s = dt_rewrite(&p, L);
            (*converted)++;
        } else if (dt_reads_twin(&p, L)) {
            dt_attr a = {.name = "layout", .type = DT_ATTR_STRING, .s = "NHWC", .s_len = 4};
            L->in[0] = p.twin[L->in[0]->index];
            s = dt_layer_add_attrs(net, L, &a, 1);
        } else {
            for (int k = 0; !s && k < L->n_in; k++)
                if (L->in[k]) s = dt_restore(&p, L->in[k]);
        }
        if (!s) p.order[p.n_order++] = L;
        /* A network output right away: its twin need not live to the end. */
        if (!s && p.in_region[i] && y->is_output) s = dt_restore(&p, y);
    }
    if (!s && anchors) {
        if (p.n_order != net->n_layers)
            s = dt_fail(DUCTILE_ERR_INTERNAL, "layout: %d layers placed of %d", p.n_order, net->n_layers);
        for (int i = 0; !s && i < p.n_order; i++) {
            net->layers[i] = p.order[i];
            p.order[i]->index = i;
        }
    }
    dt_free(p.in_region);
    dt_free(p.twin);
    dt_free(p.restored);
    dt_free(p.order);
    return s;
}
