/* Mixed precision (DUCTILE_FLAG_FP16 / BF16 / TF32) for a backend that computes in half.
 *
 * TensorRT's model: the user asks for half; the builder picks, layer by layer, what runs in
 * it. Here a layer is lowered when its backend kernel has a half variant (the backend's
 * supports() asked with the half views) and it is not one of the layers kept in float32 for
 * accuracy; its float32 activations become float16 (bfloat16) tensors, its float32 constants
 * get a converted copy (the host's Cast: round to nearest even). Everything else keeps its
 * dtype, with Cast layers where a tensor crosses between the two:
 *
 *   - network inputs and outputs stay float32 (a Cast after an input, before an output), so
 *     what a caller allocates does not change with the flag;
 *   - a layer whose kernel has no half variant stays float32 between casts. Precision never
 *     sends a layer to the host: a layer is lowered only if it runs on the device in float32
 *     and also would in half;
 *   - shape-pass values, integer and bool tensors, inputs whose meaning is float32 (Resize's
 *     roi and scales) and layers reading weights packed in the backend's float32 layout are
 *     untouched;
 *   - kept in float32 for accuracy: Pow, ReduceSumSquare, ReduceL2, ReduceLogSumExp (squares
 *     and exponentials overflow float16's 65504: a decomposed LayerNorm's variance), and the
 *     model's own Cast layers (their `to` is the model's choice).
 * The half kernels themselves compute in float32: convolutions and matmuls accumulate in
 * float32 (cuDNN / cuBLASLt compute type FLOAT), Softmax, LayerNormalization and reductions
 * load half and compute and accumulate in float32, elementwise ops compute each element in
 * float32 and round once.
 *
 * TF32 is recorded per layer (attribute `tf32` on float32 Conv / FusedConv / MatMul / Gemm /
 * FusedMatMul), so an engine carries it and kernels read it from their layer, not from a global. */
#include "builder/optimize.h"
#include "builder/passes.h"
#include "core/alloc.h"
#include "core/status.h"
#include "runtime/engine_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Layers computed in float32 even when their kernel has a half variant. */
static bool dt_keep_f32(const char *op)
{
    static const char *const ops[] = {"Cast", "CastLike", "Pow", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp", NULL};
    for (int i = 0; ops[i]; i++)
        if (!strcmp(op, ops[i])) return true;
    return false;
}

/* Input slots whose float32 is part of the op's meaning, not the activation's precision. */
static bool dt_slot_kept(const ductile_layer *L, int k)
{
    if (!strcmp(L->op_type, "Resize") || !strcmp(L->op_type, "Upsample")) return k >= 1;
    return false;
}

static bool dt_is_tf32_op(const char *op)
{
    return !strcmp(op, "Conv") || !strcmp(op, "FusedConv") || !strcmp(op, "MatMul") || !strcmp(op, "Gemm") ||
           !strcmp(op, "FusedMatMul");
}

enum { DT_LOWERED = 1, DT_READS_HALF = 2 };

typedef struct dt_prec {
    ductile_network *net;
    int half;                   /* DUCTILE_FLOAT16 or DUCTILE_BFLOAT16 */
    int n;                      /* tensors before the pass */
    ductile_tensor **hv, **fv;  /* per tensor: its half / float32 version, or NULL */
    ductile_layer **order;      /* the new layer order */
    int n_order;
    int casts;
    int folded;                 /* Casts folded into a Transpose (dt_folds_cast) */
} dt_prec;

/* A new tensor like `like` (shape), of dtype `dtype`, named after it. */
static ductile_tensor *dt_like(dt_prec *p, const ductile_tensor *like, int dtype)
{
    const char *tag = dtype == DUCTILE_FLOAT32 ? "f32" : dtype == DUCTILE_FLOAT16 ? "f16" : "bf16";
    ductile_tensor *t = dt_network_add_named(p->net, like->name, tag);
    if (!t) return NULL;
    t->dtype = dtype;
    t->rank = like->rank;
    memcpy(t->dims, like->dims, sizeof t->dims);
    memcpy(t->dim_sym, like->dim_sym, sizeof t->dim_sym);
    return t;
}

/* Appends Cast(from) -> to to the new order. */
static ductile_status dt_cast(dt_prec *p, ductile_tensor *from, ductile_tensor *to)
{
    char name[512];
    snprintf(name, sizeof name, "%s/cast", to->name);
    ductile_layer *C = dt_network_add_layer(p->net, "Cast", name, 1, 1, 1);
    if (!C) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory adding a cast for '%s'", from->name);
    C->opset = 13;
    C->in[0] = from;
    C->out[0] = to;
    to->producer = C;
    memset(&C->attrs[0], 0, sizeof C->attrs[0]);
    C->attrs[0].name = "to";
    C->attrs[0].type = DT_ATTR_INT;
    C->attrs[0].i = to->dtype;
    p->order[p->n_order++] = C;
    p->casts++;
    return DUCTILE_OK;
}

/* The version of tensor T (float32 originally) in dtype `want`, made on first need. */
static ductile_status dt_version(dt_prec *p, ductile_tensor *T, int want, ductile_tensor **out)
{
    ductile_tensor **have = want == DUCTILE_FLOAT32 ? &p->fv[T->index] : &p->hv[T->index];
    if (!*have) {
        ductile_tensor *from = want == DUCTILE_FLOAT32 ? p->hv[T->index] : p->fv[T->index];
        ductile_tensor *t = dt_like(p, T, want);
        if (!t) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory converting '%s'", T->name);
        /* A constant's cast is folded at the end of the pass: the copy is converted once. */
        DT_TRY(dt_cast(p, from, t));
        *have = t;
    }
    *out = *have;
    return DUCTILE_OK;
}

/* Whether the op's inference takes the views (inputs already half where they would be) and
 * gives each output `want` (0: its dtype in views, unchanged): the lowered network must stay
 * one that every op admits, whatever a backend's supports() says. Data of half inputs is
 * withheld (it is float32 until converted); an op that needs it is not lowered. */
static bool dt_infers(const dt_plan_layer *pl, dt_view *in, const dt_view *views, int want)
{
    const ductile_layer *L = pl->layer;
    if (!pl->def || !pl->def->infer) return false;
    for (int k = 0; k < L->n_in; k++)
        if (L->in[k] && in[k].dtype != views[L->in[k]->index].dtype) in[k].data = NULL;
    dt_view out[DT_MAX_LAYER_IO];
    memset(out, 0, sizeof out[0] * (size_t)L->n_out);
    if (pl->def->infer(L, in, out) != DUCTILE_OK) return false;
    for (int k = 0; k < L->n_out; k++)
        if (out[k].dtype != (want ? want : views[L->out[k]->index].dtype)) return false;
    return true;
}

/* Layer L's input views with its float32 inputs that may turn half (not kept float32 by the
 * op, dt_slot_kept) in dtype `half`; *any: at least one did. False when the layer has more
 * operands than a view array holds (never lowered). */
static bool dt_half_inputs(const ductile_layer *L, const dt_view *views, int half, dt_view *in, bool *any)
{
    *any = false;
    if (L->n_in > DT_MAX_LAYER_IO || L->n_out > DT_MAX_LAYER_IO) return false;
    dt_layer_input_views(L, views, in);
    for (int k = 0; k < L->n_in; k++)
        if (L->in[k] && in[k].dtype == DUCTILE_FLOAT32 && !dt_slot_kept(L, k)) {
            in[k].dtype = half;
            *any = true;
        }
    return true;
}

/* Whether layer i is lowered; views are profile 0's opt shapes. */
static bool dt_lowers(const ductile_engine *e, const dt_backend *be, int i, const dt_view *views, int half)
{
    const dt_plan_layer *pl = &e->plan.layers[i];
    const ductile_layer *L = pl->layer;
    if (pl->value || pl->fallback || dt_keep_f32(L->op_type) || L->n_out < 1) return false;
    /* Weights the backend packed into its own float32 layout (dt_backend.prepack) stay so. */
    if (dt_attr_int(L, "packed", 0) != 0) return false;
    dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO];
    bool any;
    if (!dt_half_inputs(L, views, half, in, &any)) return false;
    for (int k = 0; k < L->n_out; k++) {
        out[k] = views[L->out[k]->index];
        if (out[k].dtype != DUCTILE_FLOAT32) return false;
        out[k].dtype = half;
    }
    return any && (!be->supports || be->supports(L, in, out)) && dt_infers(pl, in, views, half);
}

/* Whether layer i, not lowered, reads half inputs as they are (no cast back to float32):
 * Shape and Size read only dims; a device layer without float32 outputs (IsNaN) whose kernel
 * takes the half input. */
static bool dt_reads_half(const ductile_engine *e, const dt_backend *be, int i, const dt_view *views, int half)
{
    const dt_plan_layer *pl = &e->plan.layers[i];
    const ductile_layer *L = pl->layer;
    if (pl->value) return dt_op_reads_shape_only(L->op_type);
    if (pl->fallback || dt_keep_f32(L->op_type) || L->n_out < 1 || dt_attr_int(L, "packed", 0) != 0) return false;
    dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO];
    bool any;
    if (!dt_half_inputs(L, views, half, in, &any)) return false;
    for (int k = 0; k < L->n_out; k++) {
        out[k] = views[L->out[k]->index];
        if (out[k].dtype == DUCTILE_FLOAT32) return false;
    }
    return any && (!be->supports || be->supports(L, in, out)) && dt_infers(pl, in, views, 0);
}

/* Whether lowered layer i, a Transpose, reads its float32 input T as it is and converts while
 * it moves the elements (attribute `to`): the Cast into half that T would get (a network
 * input's, before the layout pass's Transpose into channels last) folded in, one kernel
 * instead of two. Only where T has no half version yet (else reading that is free), is not
 * a constant (whose cast is folded at build) and the backend's kernel converts;
 * DUCTILE_CAST_TRANSPOSE=0 turns it off. */
static bool dt_folds_cast(const dt_prec *p, const ductile_engine *e, const dt_backend *be, int i, const dt_view *views,
                          const ductile_tensor *T)
{
    const char *on = getenv("DUCTILE_CAST_TRANSPOSE");
    const ductile_layer *L = e->plan.layers[i].layer;
    if ((on && !strcmp(on, "0")) || strcmp(L->op_type, "Transpose") || strcmp(L->domain, "") || L->n_in != 1 ||
        L->n_out != 1 || !T || T->index >= p->n || p->hv[T->index] || !p->fv[T->index] ||
        e->plan.kind[T->index] == DT_TENSOR_CONSTANT || dt_attr_find(L, "to"))
        return false;
    dt_view in = views[L->in[0]->index], out = views[L->out[0]->index];
    if (in.dtype != DUCTILE_FLOAT32 || out.dtype != DUCTILE_FLOAT32) return false;
    out.dtype = p->half;
    return !be->supports || be->supports(L, &in, &out);
}

/* Whether lowered layer i, a Transpose or DepthToSpace whose output T is a network output,
 * writes T in float32 itself (attribute `to`) from its half input: the Cast back to float32
 * that T would get folded in (superres ends conv -> DepthToSpace -> Cast: one kernel less).
 * Where the backend's kernel converts; DUCTILE_CAST_OUTPUT=0 turns it off. */
static bool dt_folds_output_cast(const dt_prec *p, const ductile_engine *e, const dt_backend *be, int i,
                                 const dt_view *views, const ductile_tensor *T)
{
    const char *on = getenv("DUCTILE_CAST_OUTPUT");
    const ductile_layer *L = e->plan.layers[i].layer; /* the engine's: its tensors index views */
    if ((on && !strcmp(on, "0")) || (strcmp(L->op_type, "Transpose") && strcmp(L->op_type, "DepthToSpace")) ||
        strcmp(L->domain, "") || L->n_in != 1 || L->n_out != 1 || !L->in[0] || !T->is_output ||
        T->dtype != DUCTILE_FLOAT32 || T->index >= p->n || dt_attr_find(L, "to"))
        return false;
    dt_view in = views[L->in[0]->index], out = views[L->out[0]->index];
    if (in.dtype != DUCTILE_FLOAT32 || out.dtype != DUCTILE_FLOAT32) return false;
    in.dtype = p->half;
    return !be->supports || be->supports(L, &in, &out);
}

/* A FusedConv that stays float32 in a half engine (a depthwise: no half kernel) with a
 * Sigmoid or SiLU: `lean_act`, so that the CPU computes it in the lean form the half layers
 * use (relative error 1.3e-4, far inside what the half layers around it round away). */
static ductile_status dt_mark_lean(ductile_network *net)
{
    for (int i = 0; i < net->n_layers; i++) {
        ductile_layer *L = net->layers[i];
        if (strcmp(L->op_type, "FusedConv") || strcmp(L->domain, "ductile") || dt_attr_int(L, "bf16", 0) ||
            dt_attr_int(L, "fp16", 0))
            continue;
        const char *act = dt_attr_string(L, "activation", "");
        if (strcmp(act, "Sigmoid") && strcmp(act, "Silu")) continue;
        dt_attr a = {.name = "lean_act", .type = DT_ATTR_INT, .i = 1};
        DT_TRY(dt_layer_add_attrs(net, L, &a, 1));
    }
    return DUCTILE_OK;
}

ductile_status dt_pass_mark_bf16(ductile_network *net, const dt_backend *be, unsigned flags)
{
    /* bfloat16 first: with --bf16 and --fp16 a layer both could take is marked `bf16`. */
    static const struct { int flag; const char *attr; } kinds[] = {{DUCTILE_FLAG_BF16, "bf16"}, {DUCTILE_FLAG_FP16, "fp16"}};
    if (!be->bf16_in_kernel) return DUCTILE_OK;
    for (int k = 0; k < 2; k++) {
        unsigned bit = 1u << kinds[k].flag;
        if (!(flags & bit)) continue;
        for (int i = 0; i < net->n_layers; i++) {
            ductile_layer *L = net->layers[i];
            if (!L->n_out || dt_attr_int(L, "bf16", 0) || dt_attr_int(L, "fp16", 0) || !be->bf16_in_kernel(L, bit))
                continue;
            dt_attr a = {.name = kinds[k].attr, .type = DT_ATTR_INT, .i = 1};
            DT_TRY(dt_layer_add_attrs(net, L, &a, 1));
        }
    }
    if (be->bf16_in_kernel(NULL, flags & ((1u << DUCTILE_FLAG_BF16) | (1u << DUCTILE_FLAG_FP16)))) DT_TRY(dt_mark_lean(net));
    return DUCTILE_OK;
}

ductile_status dt_pass_precision(ductile_network *net, const ductile_engine *e, const dt_backend *be, unsigned flags,
                                 bool *changed)
{
    *changed = false;
    bool fp16 = (flags & be->precisions & (1u << DUCTILE_FLAG_FP16)) != 0;
    bool bf16 = (flags & be->precisions & (1u << DUCTILE_FLAG_BF16)) != 0;
    bool tf32 = (flags & be->precisions & (1u << DUCTILE_FLAG_TF32)) != 0;
    if (!fp16 && !bf16 && !tf32) return DUCTILE_OK;
    /* An eager engine runs on the host, all of it (runtime/engine.c): nothing to lower, and
     * its shapes follow from data, which the shape pass below does not have. */
    if (e->plan.eager) return DUCTILE_OK;
    int nl = net->n_layers, n = net->n_tensors;
    if (e->net->n_layers != nl || e->net->n_tensors != n)
        return dt_fail(DUCTILE_ERR_INTERNAL, "precision: the engine has %d layers and %d tensors, the network %d and %d",
                       e->net->n_layers, e->net->n_tensors, nl, n);
    dt_prec p = {.net = net, .half = fp16 ? DUCTILE_FLOAT16 : DUCTILE_BFLOAT16, .n = n};
    unsigned char *low = dt_calloc((size_t)nl + 1, sizeof *low);
    p.hv = dt_calloc((size_t)n + 1, sizeof *p.hv);
    p.fv = dt_calloc((size_t)n + 1, sizeof *p.fv);
    /* Each tensor gets at most two casts (to half, back to float32). */
    p.order = dt_malloc(((size_t)nl + 2 * (size_t)n + 1) * sizeof *p.order);
    dt_shape_state st;
    bool have_st = false;
    bool *reached = NULL; /* per tensor, with shape inputs: the shape pass computed its view */
    ductile_status s = low && p.hv && p.fv && p.order ? DUCTILE_OK
                     : dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for mixed precision");
    /* Half only where the device has the layer: dtypes and supports() need the views. */
    if (!s && (fp16 || bf16)) {
        s = dt_shape_state_init(&st, e);
        have_st = !s;
        for (int i = 0; !s && i < net->n_inputs; i++) {
            const dt_profile_input *pi = dt_profile_get(&e->profiles[0], e->net->inputs[i]->name);
            if (!pi) continue;
            dt_view *v = &st.views[e->net->inputs[i]->index];
            v->rank = pi->rank;
            memcpy(v->dims, pi->opt, sizeof(int64_t) * (size_t)pi->rank);
        }
        dt_exec ex = {.pool = NULL};
        /* Shape inputs have no values here: layers whose views follow from them (host
         * fallbacks on a device, runtime/engine.c) stay float32. */
        if (!s && e->plan.n_shape_inputs && !(reached = dt_calloc((size_t)n + 1, sizeof *reached)))
            s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for mixed precision");
        if (!s) s = reached ? dt_shape_pass_partial(e, &st, &ex, reached) : dt_shape_pass(e, &st, &ex);
        for (int i = 0; !s && i < nl; i++) {
            bool known = true;
            const ductile_layer *L = e->plan.layers[i].layer;
            for (int k = 0; reached && k < L->n_out; k++) known &= reached[L->out[k]->index];
            low[i] = !known ? 0
                   : dt_lowers(e, be, i, st.views, p.half) ? DT_LOWERED
                   : dt_reads_half(e, be, i, st.views, p.half) ? DT_READS_HALF : 0;
        }
    }
    /* Float32 tensors start as their own float32 version; a lowered layer's outputs become
     * half (a network output keeps its name and dtype: the layer writes a half twin that a
     * cast copies into it). */
    for (int t = 0; !s && t < n; t++)
        if (net->tensors[t]->dtype == DUCTILE_FLOAT32) p.fv[t] = net->tensors[t];
    for (int i = 0; !s && i < nl; i++) {
        ductile_layer *L = net->layers[i];
        if (low[i] == DT_READS_HALF) {
            for (int k = 0; k < L->n_in; k++)
                if (L->in[k] && L->in[k]->index < n && p.hv[L->in[k]->index]) L->in[k] = p.hv[L->in[k]->index];
        } else if (low[i] == DT_LOWERED && dt_folds_cast(&p, e, be, i, st.views, L->in[0])) {
            dt_attr a = {.name = "to", .type = DT_ATTR_INT, .i = p.half};
            s = dt_layer_add_attrs(net, L, &a, 1);
            p.folded++;
        } else if (low[i] == DT_LOWERED) {
            for (int k = 0; !s && k < L->n_in; k++) {
                ductile_tensor *T = L->in[k];
                if (!T || T->index >= n || (!p.fv[T->index] && !p.hv[T->index]) || dt_slot_kept(L, k)) continue;
                s = dt_version(&p, T, p.half, &L->in[k]);
            }
        } else {
            for (int k = 0; !s && k < L->n_in; k++) {
                ductile_tensor *T = L->in[k];
                if (!T || T->index >= n || !p.hv[T->index]) continue;
                s = dt_version(&p, T, DUCTILE_FLOAT32, &L->in[k]);
            }
        }
        if (s) break;
        p.order[p.n_order++] = L;
        if (low[i] != DT_LOWERED) continue;
        for (int k = 0; !s && k < L->n_out; k++) {
            ductile_tensor *T = L->out[k];
            if (dt_folds_output_cast(&p, e, be, i, st.views, T)) {
                dt_attr a = {.name = "to", .type = DT_ATTR_INT, .i = DUCTILE_FLOAT32};
                s = dt_layer_add_attrs(net, L, &a, 1);
                p.folded++;
                continue;
            }
            if (!T->is_output) {
                T->dtype = p.half;
                p.hv[T->index] = T;
                p.fv[T->index] = NULL;
                continue;
            }
            ductile_tensor *h = dt_like(&p, T, p.half);
            if (!h) {
                s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory converting '%s'", T->name);
                break;
            }
            h->producer = L;
            L->out[k] = h;
            p.hv[T->index] = h;
            s = dt_cast(&p, h, T);
        }
    }
    if (!s && (p.casts || p.folded)) {
        for (int i = 0; i < p.n_order; i++) {
            net->layers[i] = p.order[i];
            p.order[i]->index = i;
        }
        *changed = true;
    }
    for (int i = 0; !s && tf32 && i < net->n_layers; i++) {
        ductile_layer *L = net->layers[i];
        if (!dt_is_tf32_op(L->op_type) || !L->n_out || L->out[0]->dtype != DUCTILE_FLOAT32) continue;
        dt_attr a = {.name = "tf32", .type = DT_ATTR_INT, .i = 1};
        s = dt_layer_add_attrs(net, L, &a, 1);
        *changed = true;
    }
    /* Converted constants: their casts have constant inputs. */
    if (!s && p.casts) s = dt_pass_fold_constants(net);
    if (have_st) dt_shape_state_free(&st, e);
    dt_free(reached);
    dt_free(low);
    dt_free(p.hv);
    dt_free(p.fv);
    dt_free(p.order);
    return s;
}
