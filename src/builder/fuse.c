/* The fusion pass: its driver, Conv fusion, Gelu fusion and Expands that change nothing made
 * views (the transformer fusions into FusedMatMul and FusedAttention are in
 * fuse_transformer.c, the packed projections in fuse_qkv.c). Conv [-> Add(residual)]
 * [-> activation] becomes one FusedConv layer, so the residual and the activation are applied
 * while the conv's output is still in cache instead of in two more passes over memory
 * (src/ops/fused.h has the layer's contract).
 *
 * Activations: Relu, Clip (constant bounds), HardSigmoid, Sigmoid, HardSwish, HardSwish as
 * opset-11 exporters write it: Mul(x, HardSigmoid(x)) (seg_lraspp has 24 of them), and SiLU
 * as PyTorch writes it: Mul(x, Sigmoid(x)) (EfficientNet's every conv, YOLO's). */
#include "builder/fuse_impl.h"
#include "builder/optimize.h"
#include "core/alloc.h"
#include "core/status.h"
#include "ops/defaults.h"
#include "ops/fused.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>


ductile_status dt_layer_add_attrs(ductile_network *net, ductile_layer *L, const dt_attr *add, int n)
{
    dt_attr *a = dt_arena_alloc(&net->arena, sizeof *a * (size_t)(L->n_attr + n));
    if (!a) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory adding attributes to node '%s'", L->name);
    memcpy(a, L->attrs, sizeof *a * (size_t)L->n_attr);
    memcpy(a + L->n_attr, add, sizeof *a * (size_t)n);
    L->attrs = a;
    L->n_attr += n;
    return DUCTILE_OK;
}

/* t feeds exactly one layer and is an intermediate: that layer, else NULL. */
ductile_layer *dt_fuse_sole_reader(const dt_fuse *f, const ductile_tensor *t)
{
    if (t->is_output || f->uses[t->index] != 1) return NULL;
    ductile_layer *r = f->reader[t->index];
    return r && !f->dead[r->index] ? r : NULL;
}

/* Equal shapes as far as the declared/inferred dims prove it. */
bool dt_fuse_same_shape(const ductile_tensor *a, const ductile_tensor *b)
{
    if (a->rank < 0 || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++) {
        if (a->dims[i] >= 0 || b->dims[i] >= 0) {
            if (a->dims[i] != b->dims[i]) return false;
        } else if (!a->dim_sym[i] || !b->dim_sym[i] || strcmp(a->dim_sym[i], b->dim_sym[i])) {
            return false;
        }
    }
    return true;
}

/* Activations may carry no dtype before the engine's shape pass; FusedConv's infer checks
 * float32 at build time either way. */
bool dt_fuse_is_float(const ductile_tensor *t)
{
    return t && (t->dtype == DUCTILE_FLOAT32 || (t->dtype == DUCTILE_UNDEFINED && !t->data));
}

/* A scalar float constant input i of L, or the default when omitted or empty. */
bool dt_fuse_const_scalar(const ductile_layer *L, int i, float dflt, float *v)
{
    *v = dflt;
    if (i >= L->n_in || !L->in[i]) return true;
    const ductile_tensor *t = L->in[i];
    if (!t->data || t->dtype != DUCTILE_FLOAT32) return false;
    if (t->nbytes == 0) return true;
    if (t->nbytes != sizeof(float)) return false;
    memcpy(v, t->data, sizeof *v);
    return true;
}

bool dt_fuse_match_act(const dt_fuse *f, ductile_tensor *t, dt_act_match *m)
{
    memset(m, 0, sizeof *m);
    if (t->is_output) return false;
    ductile_layer *A = dt_fuse_sole_reader(f, t);
    if (A && A->n_out == 1 && A->n_in >= 1 && A->in[0] == t && !strcmp(A->domain, "")) {
        m->layers[0] = A;
        m->out = A->out[0];
        if (!strcmp(A->op_type, "Relu")) {
            m->name = "Relu";
            return true;
        }
        if (!strcmp(A->op_type, "Sigmoid")) {
            m->name = "Sigmoid";
            return true;
        }
        if (!strcmp(A->op_type, "HardSigmoid") || !strcmp(A->op_type, "HardSwish")) {
            bool hs = !strcmp(A->op_type, "HardSwish");
            m->name = hs ? "HardSwish" : "HardSigmoid";
            m->p0 = hs ? DT_HARDSWISH_ALPHA : dt_attr_float(A, "alpha", DT_HARDSIGMOID_ALPHA);
            m->p1 = hs ? DT_HARDSWISH_BETA : dt_attr_float(A, "beta", DT_HARDSIGMOID_BETA);
            return true;
        }
        if (!strcmp(A->op_type, "Clip")) {
            m->name = "Clip";
            if (A->opset < 11) {
                m->p0 = dt_attr_float(A, "min", DT_CLIP6_MIN);
                m->p1 = dt_attr_float(A, "max", DT_CLIP6_MAX);
                return true;
            }
            return dt_fuse_const_scalar(A, 1, DT_CLIP_NO_MIN, &m->p0) &&
                   dt_fuse_const_scalar(A, 2, DT_CLIP_NO_MAX, &m->p1);
        }
        return false;
    }
    /* x * HardSigmoid(x) and x * Sigmoid(x) (SiLU as PyTorch exports it): t read twice, by
     * the gate and by the Mul of both. */
    if (f->uses[t->index] != 2) return false;
    for (int l = 0; l < f->net->n_layers; l++) {
        ductile_layer *H = f->net->layers[l];
        bool hard = !strcmp(H->op_type, "HardSigmoid");
        if (f->dead[l] || (!hard && strcmp(H->op_type, "Sigmoid")) || strcmp(H->domain, "") || H->n_in != 1 ||
            H->in[0] != t || H->n_out != 1)
            continue;
        ductile_layer *M = dt_fuse_sole_reader(f, H->out[0]);
        if (!M || strcmp(M->op_type, "Mul") || strcmp(M->domain, "") || M->n_in != 2 || M->n_out != 1) return false;
        if (!((M->in[0] == t && M->in[1] == H->out[0]) || (M->in[1] == t && M->in[0] == H->out[0])))
            return false;
        m->name = hard ? "HardSwish" : "Silu";
        m->p0 = hard ? dt_attr_float(H, "alpha", DT_HARDSIGMOID_ALPHA) : 0.0f;
        m->p1 = hard ? dt_attr_float(H, "beta", DT_HARDSIGMOID_BETA) : 0.0f;
        m->layers[0] = H;
        m->layers[1] = M;
        m->out = M->out[0];
        return true;
    }
    return false;
}

ductile_tensor *dt_fuse_other_in(const ductile_layer *L, const ductile_tensor *t)
{
    ductile_tensor *o = L->in[L->in[0] == t ? 1 : 0];
    return o == t ? NULL : o;
}

void dt_fuse_kill(dt_fuse *f, ductile_layer *L)
{
    if (L) f->dead[L->index] = true;
}

/* The fused layer C runs where the last absorbed layer ran: every input (a residual
 * included) is computed by then. */
void dt_fuse_move_to_last(dt_fuse *f, ductile_layer *C, ductile_layer *last)
{
    if (last == C) return;
    int at = last->index, from = C->index;
    f->net->layers[at] = C;
    f->net->layers[from] = last;
    last->index = from;
    C->index = at;
    f->dead[from] = true;
    f->dead[at] = false;
}

static ductile_status dt_fuse_conv(dt_fuse *f, ductile_layer *C)
{
    ductile_network *net = f->net;
    if (C->n_in < 2 || C->n_in > 3 || C->n_out != 1 || !dt_fuse_is_float(C->in[0]) || !C->in[1] ||
        C->in[1]->dtype != DUCTILE_FLOAT32 || !C->in[1]->data)
        return DUCTILE_OK;
    ductile_tensor *t = C->out[0], *res = NULL;
    ductile_layer *add = NULL, *last = C;
    /* Conv -> Add(residual of the same shape) */
    ductile_layer *A = dt_fuse_sole_reader(f, t);
    if (A && !strcmp(A->op_type, "Add") && !strcmp(A->domain, "") && A->n_in == 2 && A->n_out == 1) {
        ductile_tensor *r = A->in[0] == t ? A->in[1] : A->in[0];
        if (r != t && dt_fuse_is_float(r) && dt_fuse_same_shape(r, t) && dt_fuse_same_shape(A->out[0], t)) {
            add = A;
            res = r;
            last = A;
            t = A->out[0];
        }
    }
    dt_act_match act;
    bool has_act = dt_fuse_match_act(f, t, &act);
    if (has_act) {
        last = act.layers[1] ? act.layers[1] : act.layers[0];
        t = act.out;
    }
    ductile_tensor **in = dt_arena_alloc(&net->arena, sizeof *in * 4);
    if (!in) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory fusing node '%s'", C->name);
    in[DT_FC_X] = C->in[0];
    in[DT_FC_W] = C->in[1];
    in[DT_FC_B] = C->n_in > 2 ? C->in[2] : NULL;
    in[DT_FC_R] = res;
    dt_attr extra[3] = {
        {.name = "activation", .type = DT_ATTR_STRING, .s = has_act ? act.name : "",
         .s_len = has_act ? strlen(act.name) : 0},
        {.name = !has_act ? "act_alpha" : !strcmp(act.name, "Clip") ? "act_min" : "act_alpha",
         .type = DT_ATTR_FLOAT, .f = has_act ? act.p0 : 0.0f},
        {.name = !has_act ? "act_beta" : !strcmp(act.name, "Clip") ? "act_max" : "act_beta",
         .type = DT_ATTR_FLOAT, .f = has_act ? act.p1 : 0.0f},
    };
    DT_TRY(dt_layer_add_attrs(net, C, extra, 3));
    C->op_type = "FusedConv";
    C->domain = "ductile";
    C->in = in;
    C->n_in = res ? 4 : 3;
    C->out[0] = t;
    t->producer = C;
    f->producer[t->index] = C;
    if (res) f->reader[res->index] = C;
    dt_fuse_kill(f, add);
    if (has_act) {
        dt_fuse_kill(f, act.layers[0]);
        dt_fuse_kill(f, act.layers[1]);
    }
    dt_fuse_move_to_last(f, C, last);
    return DUCTILE_OK;
}

/* The layer of op `op` (domain "") that alone reads t, with t among its inputs, else NULL. */
ductile_layer *dt_fuse_sole_op(const dt_fuse *f, ductile_tensor *t, const char *op, int n_in)
{
    ductile_layer *L = dt_fuse_sole_reader(f, t);
    if (!L || strcmp(L->op_type, op) || strcmp(L->domain, "") || L->n_in != n_in || L->n_out != 1) return NULL;
    for (int k = 0; k < n_in; k++)
        if (L->in[k] == t) return L;
    return NULL;
}

/* The input of L other than t is a one-element constant equal to v (to float precision) of
 * no higher rank than x, so that broadcasting it leaves x's shape. */
static bool dt_other_is(const ductile_layer *L, const ductile_tensor *t, const ductile_tensor *x, float v)
{
    int i = L->in[0] == t ? 1 : 0;
    const ductile_tensor *c = L->in[i];
    float cv;
    if (c == t || !c || !c->data || (c->rank > 0 && c->rank > x->rank)) return false;
    return dt_fuse_const_scalar(L, i, NAN, &cv) && fabsf(cv - v) <= 1e-6f * fabsf(v);
}

/* Gelu as exporters write it: Div(x, sqrt 2) -> Erf -> Add(1) -> Mul(x, .) -> Mul(0.5), each
 * intermediate read only by the next, becomes one Gelu layer (approximate "none") in the
 * Div's place: five passes over the widest activation of a transformer become one. */
static void dt_fuse_gelu(dt_fuse *f, ductile_layer *D)
{
    if (D->n_in != 2 || D->n_out != 1 || !dt_fuse_is_float(D->in[0]) || D->in[0]->data) return;
    ductile_tensor *x = D->in[0];
    if (D->in[1] == x || !dt_other_is(D, x, x, 1.41421356f)) return;
    ductile_layer *E = dt_fuse_sole_op(f, D->out[0], "Erf", 1);
    ductile_layer *A = E ? dt_fuse_sole_op(f, E->out[0], "Add", 2) : NULL;
    if (!A || !dt_other_is(A, E->out[0], x, 1.0f)) return;
    ductile_layer *M1 = dt_fuse_sole_op(f, A->out[0], "Mul", 2);
    if (!M1 || M1->in[M1->in[0] == A->out[0] ? 1 : 0] != x) return;
    ductile_layer *M2 = dt_fuse_sole_op(f, M1->out[0], "Mul", 2);
    if (!M2 || !dt_other_is(M2, M1->out[0], x, 0.5f)) return;
    D->op_type = "Gelu";
    D->n_in = 1;
    D->out[0] = M2->out[0];
    D->out[0]->producer = D;
    f->producer[D->out[0]->index] = D;
    f->uses[x->index]--;    /* M1's read of x is gone */
    f->reader[x->index] = D;
    dt_fuse_kill(f, E);
    dt_fuse_kill(f, A);
    dt_fuse_kill(f, M1);
    dt_fuse_kill(f, M2);
}

/* Expand to the shape its input already has (BERT exports expand their [B, 1, S, S] mask to
 * [B, 1, S, S]) copies it: the layer becomes Reshape to the same dims (a shape of zeros, each
 * copying its dim), which the runtime plans as a view, so nothing is launched. The dims must
 * prove it (equal sizes or the same symbols, every dim). */
static ductile_status dt_fuse_noop_expand(dt_fuse *f, ductile_layer *E)
{
    ductile_tensor *x = E->in[0], *y = E->out[0];
    if (E->n_in != 2 || E->n_out != 1 || !x || !y || y->data || E->opset < 5 || x->rank < 1 ||
        !dt_fuse_same_shape(x, y))
        return DUCTILE_OK;
    ductile_network *net = f->net;
    ductile_tensor *zeros = dt_network_add_named(net, E->name, "same_shape");
    int64_t *z = zeros ? dt_arena_alloc(&net->arena, sizeof *z * (size_t)x->rank) : NULL;
    if (!z) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory simplifying node '%s'", E->name);
    zeros->dtype = DUCTILE_INT64;
    zeros->rank = 1;
    zeros->dims[0] = x->rank;
    zeros->data = z;
    zeros->nbytes = sizeof *z * (size_t)x->rank;
    E->op_type = "Reshape";
    E->in[1] = zeros;
    E->n_attr = 0;          /* allowzero 0: a zero copies the input's dim */
    return DUCTILE_OK;
}

/* A FusedConv's activation as the fused layer's attributes prefix_activation, prefix_p0,
 * prefix_p1. */
void dt_fuse_act_attrs(const ductile_layer *C, const char *names[3], dt_attr out[3])
{
    const char *act = dt_attr_string(C, "activation", "");
    bool clip = !strcmp(act, "Clip");
    out[0] = (dt_attr){.name = names[0], .type = DT_ATTR_STRING, .s = act, .s_len = strlen(act)};
    out[1] = (dt_attr){.name = names[1], .type = DT_ATTR_FLOAT,
                       .f = clip ? dt_attr_float(C, "act_min", DT_CLIP_NO_MIN)
                                 : dt_attr_float(C, "act_alpha", DT_HARDSIGMOID_ALPHA)};
    out[2] = (dt_attr){.name = names[2], .type = DT_ATTR_FLOAT,
                       .f = clip ? dt_attr_float(C, "act_max", DT_CLIP_NO_MAX)
                                 : dt_attr_float(C, "act_beta", DT_HARDSIGMOID_BETA)};
}

ductile_status dt_pass_fuse(ductile_network *net) { return dt_pass_fuse_for(net, NULL); }

/* f's tables of net's layers and tensors (indices set). */
static ductile_status dt_fuse_begin(ductile_network *net, dt_fuse *f)
{
    size_t nt = (size_t)net->n_tensors + 1, nl = (size_t)net->n_layers + 1;
    *f = (dt_fuse){net, dt_calloc(nt, sizeof(int)), dt_calloc(nt, sizeof(ductile_layer *)),
                   dt_calloc(nt, sizeof(ductile_layer *)), dt_calloc(nl, sizeof(bool))};
    if (!f->uses || !f->reader || !f->producer || !f->dead)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory in the fusion pass");
    for (int l = 0; l < net->n_layers; l++) {
        ductile_layer *L = net->layers[l];
        L->index = l;
        for (int k = 0; k < L->n_in; k++) {
            if (!L->in[k]) continue;
            f->uses[L->in[k]->index]++;
            f->reader[L->in[k]->index] = L;
        }
        for (int k = 0; k < L->n_out; k++)
            if (L->out[k]) f->producer[L->out[k]->index] = L;
    }
    return DUCTILE_OK;
}

/* The dead layers dropped (after a pass that succeeded) and f's tables freed; returns s. */
static ductile_status dt_fuse_end(dt_fuse *f, ductile_status s)
{
    ductile_network *net = f->net;
    if (!s) {
        int n = 0;
        for (int l = 0; l < net->n_layers; l++) {
            if (f->dead[l]) continue;
            net->layers[n] = net->layers[l];
            net->layers[n]->index = n;
            n++;
        }
        net->n_layers = n;
    }
    dt_free(f->uses);
    dt_free(f->reader);
    dt_free(f->producer);
    dt_free(f->dead);
    return s;
}

ductile_status dt_pass_fuse_for(ductile_network *net, const dt_backend *backend)
{
    /* Fusions into layers only some backends run (a device backend would run them on the
     * host, with copies): only where the backend has the fused layer's kernel. */
    bool matmul = backend && backend->kernel && backend->kernel("FusedMatMul");
    bool attention = backend && backend->kernel && backend->kernel("FusedAttention");
    bool irb = backend && backend->kernel && backend->kernel("FusedInvertedResidual");
    bool rms = backend && backend->kernel && backend->kernel("RMSNormalization");
    bool rotary = backend && backend->kernel && backend->kernel("FusedRotary");
    /* DUCTILE_FUSE_NORM=0 keeps the sums apart (tests, A/B timing in one build), as _QKV. */
    const char *env_norm = getenv("DUCTILE_FUSE_NORM");
    bool norm = backend && backend->kernel && backend->kernel("FusedLayerNorm") && !(env_norm && !strcmp(env_norm, "0"));
    /* Squeeze-excite's pool and FCs as one layer (fuse_se_pool.c): only when
     * DUCTILE_FUSE_SE_POOL=1 asks, wherever the backend has the kernel. Measured on the H200
     * (session 15): the CUDA cluster kernel made seg_lraspp's FP16 graphs 1-3% slower than the
     * four launches it replaces (docs/DESIGN.md), so no build makes it by itself; the CPU takes
     * the scale into its conv instead (fuse_se.c). */
    const char *env_se = getenv("DUCTILE_FUSE_SE_POOL");
    bool se_pool = backend && backend->kernel && backend->kernel("FusedSqueezeExcite") && env_se && !strcmp(env_se, "1");
    /* DUCTILE_FUSE_MATMUL_NORM=0 keeps a LayerNorm after a FusedMatMul its own layer. */
    const char *env_mn = getenv("DUCTILE_FUSE_MATMUL_NORM");
    bool matmul_norm = matmul && !(env_mn && !strcmp(env_mn, "0"));
    const char *env_qkv = getenv("DUCTILE_FUSE_QKV");
    bool qkv = matmul && attention && !(env_qkv && !strcmp(env_qkv, "0"));
    dt_fuse f;
    ductile_status s = dt_fuse_begin(net, &f);
    for (int l = 0; !s && l < net->n_layers; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && !strcmp(L->op_type, "Div") && !strcmp(L->domain, "")) dt_fuse_gelu(&f, L);
    }
    for (int l = 0; l < net->n_layers && !s; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && !strcmp(L->op_type, "Expand") && !strcmp(L->domain, "")) s = dt_fuse_noop_expand(&f, L);
    }
    for (int l = 0; rms && l < net->n_layers && !s; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && !strcmp(L->op_type, "Pow") && !strcmp(L->domain, "")) s = dt_fuse_rmsnorm(&f, L);
    }
    for (int l = 0; rotary && l < net->n_layers && !s; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && !strcmp(L->op_type, "Concat") && !strcmp(L->domain, "")) s = dt_fuse_rotary(&f, L);
    }
    for (int l = 0; l < net->n_layers && !s; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && !strcmp(L->op_type, "Conv") && !strcmp(L->domain, "")) s = dt_fuse_conv(&f, L);
    }
    /* After the Conv fusion: it matches the FusedConvs that one makes. */
    for (int l = 0; irb && l < net->n_layers && !s; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && !strcmp(L->op_type, "FusedConv")) s = dt_fuse_irb(&f, L);
    }
    for (int l = 0; irb && l < net->n_layers && !s; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && !strcmp(L->op_type, "FusedConv")) s = dt_fuse_irb_dw(&f, L);
    }
    /* FusedConv's S: the backends with the inverted-residual kernel (the CPU) take it too. */
    for (int l = 0; irb && l < net->n_layers && !s; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && !strcmp(L->op_type, "FusedConv")) s = dt_fuse_se(&f, L);
    }
    for (int l = 0; se_pool && l < net->n_layers && !s; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && !strcmp(L->op_type, "GlobalAveragePool")) s = dt_fuse_se_pool(&f, L);
    }
    for (int l = 0; attention && l < net->n_layers && !s; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && !strcmp(L->op_type, "Softmax") && !strcmp(L->domain, "")) s = dt_fuse_attention(&f, L);
    }
    /* After Gelu's: the Gelu it makes is what a MatMul's epilogue may absorb. */
    for (int l = 0; matmul && l < net->n_layers && !s; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && !strcmp(L->op_type, "MatMul") && !strcmp(L->domain, "")) s = dt_fuse_matmul(&f, L);
    }
    /* After FusedMatMul's, which absorbs a residual Add into its product where it can. */
    for (int l = 0; norm && l < net->n_layers && !s; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && !strcmp(L->op_type, "LayerNormalization") && !strcmp(L->domain, "")) s = dt_fuse_layernorm(&f, L);
    }
    /* After the sums' fusion (a LayerNorm that took its Adds stays), on FusedMatMul's products. */
    for (int l = 0; matmul_norm && l < net->n_layers && !s; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && !strcmp(L->op_type, "LayerNormalization")) s = dt_fuse_matmul_layernorm(&f, L);
    }
    /* After the attention and matmul fusions: it merges the FusedMatMuls feeding a
     * FusedAttention. The tensors it adds are past f's arrays, which nothing reads after it. */
    for (int l = 0; qkv && l < net->n_layers && !s; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && !strcmp(L->op_type, "FusedAttention")) s = dt_fuse_qkv(&f, L);
    }
    return dt_fuse_end(&f, s);
}

ductile_status dt_pass_fuse_pool(ductile_network *net, const dt_backend *backend)
{
    const char *env = getenv("DUCTILE_FUSE_POOL");
    if (!backend || !backend->kernel || !backend->kernel("FusedInvertedResidual") || (env && !strcmp(env, "0")))
        return DUCTILE_OK;
    dt_fuse f;
    ductile_status s = dt_fuse_begin(net, &f);
    for (int l = 0; l < net->n_layers && !s; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && (!strcmp(L->op_type, "GlobalAveragePool") || !strcmp(L->op_type, "ReduceMean")))
            s = dt_fuse_pool(&f, L);
    }
    return dt_fuse_end(&f, s);
}
