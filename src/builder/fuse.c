/* Conv fusion: Conv [-> Add(residual)] [-> activation] becomes one FusedConv layer, so the
 * residual and the activation are applied while the conv's output is still in cache instead
 * of in two more passes over memory (src/ops/fused.h has the layer's contract). MatMul
 * fusion, for backends with a FusedMatMul kernel: MatMul(constant B) -> Add(bias)
 * [-> Add(residual)] [-> Gelu] becomes one FusedMatMul (a transformer's projections: per
 * encoder layer, six bias Adds, two residual Adds and the Gelu stop being layers).
 *
 * Activations: Relu, Clip (constant bounds), HardSigmoid, Sigmoid, HardSwish, and HardSwish as
 * opset-11 exporters write it: Mul(x, HardSigmoid(x)) (seg_lraspp has 24 of them). */
#include "builder/optimize.h"
#include "core/alloc.h"
#include "core/status.h"
#include "ops/defaults.h"
#include "ops/fused.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct dt_fuse {
    ductile_network *net;
    int *uses;          /* per tensor: how many layer inputs read it */
    ductile_layer **reader;  /* per tensor: the (last) layer reading it */
    ductile_layer **producer; /* per tensor: the layer writing it (set here, not trusted from the tensor) */
    bool *dead;         /* per layer: absorbed into a FusedConv */
} dt_fuse;

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
static ductile_layer *dt_sole_reader(const dt_fuse *f, const ductile_tensor *t)
{
    if (t->is_output || f->uses[t->index] != 1) return NULL;
    ductile_layer *r = f->reader[t->index];
    return r && !f->dead[r->index] ? r : NULL;
}

/* Equal shapes as far as the declared/inferred dims prove it. */
static bool dt_same_shape(const ductile_tensor *a, const ductile_tensor *b)
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
static bool dt_is_float(const ductile_tensor *t)
{
    return t && (t->dtype == DUCTILE_FLOAT32 || (t->dtype == DUCTILE_UNDEFINED && !t->data));
}

/* A scalar float constant input i of L, or the default when omitted or empty. */
static bool dt_const_scalar(const ductile_layer *L, int i, float dflt, float *v)
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

typedef struct dt_act_match {
    const char *name;
    float p0, p1;
    ductile_layer *layers[2];   /* absorbed layers, in order; [1] may be NULL */
    ductile_tensor *out;        /* the activation's output */
} dt_act_match;

/* An activation reading t (t's only reader, or the HardSigmoid + Mul pair reading it). */
static bool dt_match_act(const dt_fuse *f, ductile_tensor *t, dt_act_match *m)
{
    memset(m, 0, sizeof *m);
    if (t->is_output) return false;
    ductile_layer *A = dt_sole_reader(f, t);
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
            return dt_const_scalar(A, 1, DT_CLIP_NO_MIN, &m->p0) &&
                   dt_const_scalar(A, 2, DT_CLIP_NO_MAX, &m->p1);
        }
        return false;
    }
    /* x * HardSigmoid(x): t read twice, by the HardSigmoid and by the Mul of both. */
    if (f->uses[t->index] != 2) return false;
    for (int l = 0; l < f->net->n_layers; l++) {
        ductile_layer *H = f->net->layers[l];
        if (f->dead[l] || strcmp(H->op_type, "HardSigmoid") || strcmp(H->domain, "") || H->n_in != 1 ||
            H->in[0] != t || H->n_out != 1)
            continue;
        ductile_layer *M = dt_sole_reader(f, H->out[0]);
        if (!M || strcmp(M->op_type, "Mul") || M->n_in != 2 || M->n_out != 1) return false;
        if (!((M->in[0] == t && M->in[1] == H->out[0]) || (M->in[1] == t && M->in[0] == H->out[0])))
            return false;
        m->name = "HardSwish";
        m->p0 = dt_attr_float(H, "alpha", DT_HARDSIGMOID_ALPHA);
        m->p1 = dt_attr_float(H, "beta", DT_HARDSIGMOID_BETA);
        m->layers[0] = H;
        m->layers[1] = M;
        m->out = M->out[0];
        return true;
    }
    return false;
}

static void dt_kill(dt_fuse *f, ductile_layer *L)
{
    if (L) f->dead[L->index] = true;
}

/* The fused layer C runs where the last absorbed layer ran: every input (a residual
 * included) is computed by then. */
static void dt_move_to_last(dt_fuse *f, ductile_layer *C, ductile_layer *last)
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
    if (C->n_in < 2 || C->n_in > 3 || C->n_out != 1 || !dt_is_float(C->in[0]) || !C->in[1] ||
        C->in[1]->dtype != DUCTILE_FLOAT32 || !C->in[1]->data)
        return DUCTILE_OK;
    ductile_tensor *t = C->out[0], *res = NULL;
    ductile_layer *add = NULL, *last = C;
    /* Conv -> Add(residual of the same shape) */
    ductile_layer *A = dt_sole_reader(f, t);
    if (A && !strcmp(A->op_type, "Add") && !strcmp(A->domain, "") && A->n_in == 2 && A->n_out == 1) {
        ductile_tensor *r = A->in[0] == t ? A->in[1] : A->in[0];
        if (r != t && dt_is_float(r) && dt_same_shape(r, t) && dt_same_shape(A->out[0], t)) {
            add = A;
            res = r;
            last = A;
            t = A->out[0];
        }
    }
    dt_act_match act;
    bool has_act = dt_match_act(f, t, &act);
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
    dt_kill(f, add);
    if (has_act) {
        dt_kill(f, act.layers[0]);
        dt_kill(f, act.layers[1]);
    }
    dt_move_to_last(f, C, last);
    return DUCTILE_OK;
}

/* The layer of op `op` (domain "") that alone reads t, with t among its inputs, else NULL. */
static ductile_layer *dt_sole_op(const dt_fuse *f, ductile_tensor *t, const char *op, int n_in)
{
    ductile_layer *L = dt_sole_reader(f, t);
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
    return dt_const_scalar(L, i, NAN, &cv) && fabsf(cv - v) <= 1e-6f * fabsf(v);
}

/* Gelu as exporters write it: Div(x, sqrt 2) -> Erf -> Add(1) -> Mul(x, .) -> Mul(0.5), each
 * intermediate read only by the next, becomes one Gelu layer (approximate "none") in the
 * Div's place: five passes over the widest activation of a transformer become one. */
static void dt_fuse_gelu(dt_fuse *f, ductile_layer *D)
{
    if (D->n_in != 2 || D->n_out != 1 || !dt_is_float(D->in[0]) || D->in[0]->data) return;
    ductile_tensor *x = D->in[0];
    if (D->in[1] == x || !dt_other_is(D, x, x, 1.41421356f)) return;
    ductile_layer *E = dt_sole_op(f, D->out[0], "Erf", 1);
    ductile_layer *A = E ? dt_sole_op(f, E->out[0], "Add", 2) : NULL;
    if (!A || !dt_other_is(A, E->out[0], x, 1.0f)) return;
    ductile_layer *M1 = dt_sole_op(f, A->out[0], "Mul", 2);
    if (!M1 || M1->in[M1->in[0] == A->out[0] ? 1 : 0] != x) return;
    ductile_layer *M2 = dt_sole_op(f, M1->out[0], "Mul", 2);
    if (!M2 || !dt_other_is(M2, M1->out[0], x, 0.5f)) return;
    D->op_type = "Gelu";
    D->n_in = 1;
    D->out[0] = M2->out[0];
    D->out[0]->producer = D;
    f->producer[D->out[0]->index] = D;
    f->uses[x->index]--;    /* M1's read of x is gone */
    f->reader[x->index] = D;
    dt_kill(f, E);
    dt_kill(f, A);
    dt_kill(f, M1);
    dt_kill(f, M2);
}

/* A constant float32 tensor of this rank whose bytes hold all its elements. */
static bool dt_const_f32(const ductile_tensor *t, int rank)
{
    if (!t || !t->data || t->dtype != DUCTILE_FLOAT32 || t->rank != rank) return false;
    for (int i = 0; i < rank; i++)
        if (t->dims[i] < 1) return false;
    return (size_t)dt_tensor_count(t) * sizeof(float) == t->nbytes;
}

/* MatMul(x, constant 2-D B [K, N]) -> Add(constant bias [N]) [-> Add(residual of the Add's
 * shape)] [-> Gelu(approximate none)], each intermediate read only by the next and not a
 * network output: one FusedMatMul in the last absorbed layer's place. Anything else (a bias
 * of another shape, which would broadcast; a residual that broadcasts; a tanh Gelu) stays. */
static ductile_status dt_fuse_matmul(dt_fuse *f, ductile_layer *Mm)
{
    ductile_network *net = f->net;
    if (Mm->n_in != 2 || Mm->n_out != 1 || !dt_is_float(Mm->in[0]) || Mm->in[0]->data || !dt_const_f32(Mm->in[1], 2))
        return DUCTILE_OK;
    ductile_tensor *t = Mm->out[0];
    ductile_layer *A = dt_sole_op(f, t, "Add", 2);
    if (!A) return DUCTILE_OK;
    ductile_tensor *bias = A->in[A->in[0] == t ? 1 : 0];
    if (bias == t || !dt_const_f32(bias, 1) || bias->dims[0] != Mm->in[1]->dims[1]) return DUCTILE_OK;
    ductile_layer *last = A, *R = NULL, *G = NULL;
    ductile_tensor *res = NULL;
    t = A->out[0];
    ductile_layer *R0 = dt_sole_op(f, t, "Add", 2);
    if (R0) {
        ductile_tensor *r = R0->in[R0->in[0] == t ? 1 : 0];
        if (r != t && dt_is_float(r) && dt_same_shape(r, t) && dt_same_shape(R0->out[0], t)) {
            R = last = R0;
            res = r;
            t = R0->out[0];
        }
    }
    ductile_layer *G0 = dt_sole_op(f, t, "Gelu", 1);
    if (G0 && !strcmp(dt_attr_string(G0, "approximate", "none"), "none")) {
        G = last = G0;
        t = G0->out[0];
    }
    ductile_tensor **in = dt_arena_alloc(&net->arena, sizeof *in * 4);
    if (!in) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory fusing node '%s'", Mm->name);
    in[DT_FM_A] = Mm->in[0];
    in[DT_FM_B] = Mm->in[1];
    in[DT_FM_BIAS] = bias;
    in[DT_FM_R] = res;
    dt_attr act = {.name = "activation", .type = DT_ATTR_STRING, .s = G ? "Gelu" : "", .s_len = G ? 4 : 0};
    DT_TRY(dt_layer_add_attrs(net, Mm, &act, 1));
    Mm->op_type = "FusedMatMul";
    Mm->domain = "ductile";
    Mm->in = in;
    Mm->n_in = res ? 4 : 3;
    Mm->out[0] = t;
    t->producer = Mm;
    f->producer[t->index] = Mm;
    f->reader[bias->index] = Mm;
    if (res) f->reader[res->index] = Mm;
    dt_kill(f, A);
    dt_kill(f, R);
    dt_kill(f, G);
    dt_move_to_last(f, Mm, last);
    return DUCTILE_OK;
}

/* The first n dims of a and b are the same (known equal, or the same symbol). */
static bool dt_same_prefix(const ductile_tensor *a, const ductile_tensor *b, int n)
{
    for (int i = 0; i < n; i++) {
        if (a->dims[i] >= 0 || b->dims[i] >= 0) {
            if (a->dims[i] != b->dims[i]) return false;
        } else if (!a->dim_sym[i] || !b->dim_sym[i] || strcmp(a->dim_sym[i], b->dim_sym[i])) {
            return false;
        }
    }
    return true;
}

/* An operand of the scores' MatMul: x itself, or Mul(x, scalar constant) read only by the
 * MatMul, which *mul and *scale then hold. */
static ductile_tensor *dt_scaled(const dt_fuse *f, ductile_tensor *t, ductile_layer **mul, float *scale)
{
    *mul = NULL;
    *scale = 1.0f;
    ductile_layer *M = f->producer[t->index];
    if (!M || f->dead[M->index] || strcmp(M->op_type, "Mul") || strcmp(M->domain, "") || M->n_in != 2 ||
        M->n_out != 1 || M->out[0] != t || t->is_output || f->uses[t->index] != 1)
        return t;
    for (int i = 0; i < 2; i++) {
        ductile_tensor *x = M->in[i], *c = M->in[1 - i];
        float v;
        if (!x || x->data || !c || !c->data || (c->rank > 0 && c->rank > x->rank) || x->rank < 0) continue;
        if (!dt_const_scalar(M, 1 - i, NAN, &v) || c->nbytes != sizeof(float) || !dt_same_shape(x, t)) continue;
        *mul = M;
        *scale = v;
        return x;
    }
    return t;
}

/* IsNaN(p) -> Where(., 0, p): the two layers reading p besides nothing else, with the Where's
 * output read only by one layer; *isnan and *where, else false. */
static bool dt_match_nan_to_zero(const dt_fuse *f, ductile_tensor *p, ductile_layer **isnan_l, ductile_layer **where)
{
    if (p->is_output || f->uses[p->index] != 2) return false;
    for (int l = 0; l < f->net->n_layers; l++) {
        ductile_layer *I = f->net->layers[l];
        if (f->dead[l] || strcmp(I->op_type, "IsNaN") || strcmp(I->domain, "") || I->n_in != 1 || I->in[0] != p ||
            I->n_out != 1)
            continue;
        ductile_layer *W = dt_sole_reader(f, I->out[0]);
        if (!W || strcmp(W->op_type, "Where") || strcmp(W->domain, "") || W->n_in != 3 || W->n_out != 1 ||
            W->in[0] != I->out[0] || W->in[2] != p)
            return false;
        const ductile_tensor *z = W->in[1];
        float zero = 0.0f;
        if (!z || !z->data || z->dtype != DUCTILE_FLOAT32 || z->nbytes != sizeof(float) || z->rank > p->rank ||
            memcmp(z->data, &zero, sizeof zero))
            return false;
        *isnan_l = I;
        *where = W;
        return true;
    }
    return false;
}

/* The Transpose of perm `perm` (4 dims) writing t, which only `reader` reads, else NULL. */
static ductile_layer *dt_transpose_into(const dt_fuse *f, ductile_tensor *t, const int64_t *perm,
                                        const ductile_layer *reader)
{
    ductile_layer *T = f->producer[t->index];
    if (!T || f->dead[T->index] || strcmp(T->op_type, "Transpose") || strcmp(T->domain, "") || T->n_in != 1 ||
        T->n_out != 1 || !T->in[0] || T->in[0]->rank != 4 || dt_sole_reader(f, t) != reader)
        return NULL;
    int64_t n;
    const int64_t *p = dt_attr_ints(T, "perm", &n);
    if (!p || n != 4) return NULL;
    for (int i = 0; i < 4; i++)
        if (p[i] != perm[i]) return NULL;
    return T;
}

/* Mul(Q, a) and Mul(Kt, b) -> MatMul -> Add(mask) -> Softmax(last axis) [-> IsNaN + Where(0)]
 * -> MatMul(V), each intermediate read only by the next: one FusedAttention in the second
 * MatMul's place (or, with the heads' Transposes absorbed, the output Transpose's). Q, Kt and V must have one rank and the same batch dims (the fused kernel
 * does not broadcast them), and the mask must not grow the scores. */
static ductile_status dt_fuse_attention(dt_fuse *f, ductile_layer *Sm)
{
    ductile_network *net = f->net;
    ductile_tensor *x = Sm->in[0];
    if (Sm->n_in != 1 || Sm->n_out != 1 || Sm->opset < 13 || !x || x->rank < 2) return DUCTILE_OK;
    int64_t axis = dt_attr_int(Sm, "axis", -1);
    if (axis != -1 && axis != x->rank - 1) return DUCTILE_OK;
    ductile_layer *Ad = f->producer[x->index];
    if (!Ad || f->dead[Ad->index] || strcmp(Ad->op_type, "Add") || strcmp(Ad->domain, "") || Ad->n_in != 2 ||
        dt_sole_reader(f, x) != Sm)
        return DUCTILE_OK;
    ductile_layer *Mm1 = NULL;
    ductile_tensor *mask = NULL, *s = NULL;
    for (int i = 0; i < 2 && !Mm1; i++) {
        ductile_tensor *c = Ad->in[i];
        ductile_layer *P = c ? f->producer[c->index] : NULL;
        if (P && !f->dead[P->index] && !strcmp(P->op_type, "MatMul") && !strcmp(P->domain, "") && P->n_in == 2 &&
            P->n_out == 1 && dt_sole_reader(f, c) == Ad && Ad->in[1 - i] != c) {
            Mm1 = P;
            s = c;
            mask = Ad->in[1 - i];
        }
    }
    if (!Mm1 || !dt_is_float(mask) || !dt_same_shape(x, s) || mask->rank < 0 || mask->rank > s->rank)
        return DUCTILE_OK;
    ductile_layer *mq, *mk, *I = NULL, *W = NULL;
    float qs, ks;
    ductile_tensor *q = dt_scaled(f, Mm1->in[0], &mq, &qs), *kt = dt_scaled(f, Mm1->in[1], &mk, &ks);
    ductile_tensor *p = Sm->out[0];
    bool nan0 = dt_match_nan_to_zero(f, p, &I, &W);
    if (nan0) p = W->out[0];
    ductile_layer *Mm2 = dt_sole_reader(f, p);
    if (!Mm2 || strcmp(Mm2->op_type, "MatMul") || strcmp(Mm2->domain, "") || Mm2->n_in != 2 || Mm2->n_out != 1 ||
        Mm2->in[0] != p || Mm2->in[1] == p)
        return DUCTILE_OK;
    ductile_tensor *v = Mm2->in[1];
    /* The kernel is float32's; activations may carry no dtype yet, so one float32 tensor or
     * constant in the chain must prove it (MatMul, Add, Softmax and Where keep one type). A
     * float16 attention stays unfused rather than fail to build. */
    const ductile_tensor *known[] = {q, kt, v, mask, s, x, Sm->out[0]};
    bool f32 = mq || mk || nan0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) f32 |= known[i] && known[i]->dtype == DUCTILE_FLOAT32;
    if (!f32) return DUCTILE_OK;
    int r = q->rank;
    if (r < 2 || kt->rank != r || !v || v->rank != r || s->rank != r || !dt_is_float(q) || !dt_is_float(kt) ||
        !dt_is_float(v) || !dt_same_prefix(q, kt, r - 2) || !dt_same_prefix(q, v, r - 2))
        return DUCTILE_OK;
    /* The heads' Transposes around it (BERT's: [B, S, H, D] -> [B, H, S, D], K to
     * [B, H, D, L], and the output back), all four or none: layout "bshd". */
    static const int64_t p0213[4] = {0, 2, 1, 3}, p0231[4] = {0, 2, 3, 1};
    ductile_layer *tq = NULL, *tk = NULL, *tv = NULL, *ty = NULL, *last = Mm2;
    if (r == 4 && (tq = dt_transpose_into(f, q, p0213, mq ? mq : Mm1)) &&
        (tk = dt_transpose_into(f, kt, p0231, mk ? mk : Mm1)) && (tv = dt_transpose_into(f, v, p0213, Mm2))) {
        ty = dt_sole_reader(f, Mm2->out[0]);
        int64_t n;
        const int64_t *p = ty && !strcmp(ty->op_type, "Transpose") && !strcmp(ty->domain, "") && ty->n_in == 1 &&
                                   ty->n_out == 1 ? dt_attr_ints(ty, "perm", &n) : NULL;
        if (!p || n != 4 || memcmp(p, p0213, sizeof p0213)) ty = NULL;
    }
    bool bshd = tq && tk && tv && ty;
    if (bshd) {
        q = tq->in[0];
        kt = tk->in[0];
        v = tv->in[0];
        last = ty;
    }
    ductile_tensor **in = dt_arena_alloc(&net->arena, sizeof *in * 4);
    if (!in) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory fusing node '%s'", Mm1->name);
    in[DT_FA_Q] = q;
    in[DT_FA_KT] = kt;
    in[DT_FA_V] = v;
    in[DT_FA_MASK] = mask;
    dt_attr add[4] = {
        {.name = "q_scale", .type = DT_ATTR_FLOAT, .f = qs},
        {.name = "k_scale", .type = DT_ATTR_FLOAT, .f = ks},
        {.name = "nan_to_zero", .type = DT_ATTR_INT, .i = nan0},
        {.name = "layout", .type = DT_ATTR_STRING, .s = bshd ? "bshd" : "", .s_len = bshd ? 4 : 0},
    };
    DT_TRY(dt_layer_add_attrs(net, Mm1, add, 4));
    Mm1->op_type = "FusedAttention";
    Mm1->domain = "ductile";
    Mm1->in = in;
    Mm1->n_in = 4;
    Mm1->out[0] = last->out[0];
    Mm1->out[0]->producer = Mm1;
    f->producer[Mm1->out[0]->index] = Mm1;
    f->reader[q->index] = f->reader[kt->index] = f->reader[v->index] = f->reader[mask->index] = Mm1;
    dt_kill(f, mq);
    dt_kill(f, mk);
    dt_kill(f, Ad);
    dt_kill(f, Sm);
    dt_kill(f, I);
    dt_kill(f, W);
    dt_kill(f, Mm2);
    if (bshd) {
        dt_kill(f, tq);
        dt_kill(f, tk);
        dt_kill(f, tv);
        dt_kill(f, ty);
    }
    dt_move_to_last(f, Mm1, last);
    return DUCTILE_OK;
}

ductile_status dt_pass_fuse(ductile_network *net) { return dt_pass_fuse_for(net, NULL); }

ductile_status dt_pass_fuse_for(ductile_network *net, const dt_backend *backend)
{
    /* Fusions into layers only some backends run (a device backend would run them on the
     * host, with copies): only where the backend has the fused layer's kernel. */
    bool matmul = backend && backend->kernel && backend->kernel("FusedMatMul");
    bool attention = backend && backend->kernel && backend->kernel("FusedAttention");
    size_t nt = (size_t)net->n_tensors + 1, nl = (size_t)net->n_layers + 1;
    dt_fuse f = {net, dt_calloc(nt, sizeof(int)), dt_calloc(nt, sizeof(ductile_layer *)),
                 dt_calloc(nt, sizeof(ductile_layer *)), dt_calloc(nl, sizeof(bool))};
    ductile_status s = DUCTILE_OK;
    if (!f.uses || !f.reader || !f.producer || !f.dead) {
        s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory in the fusion pass");
        goto done;
    }
    for (int l = 0; l < net->n_layers; l++) {
        ductile_layer *L = net->layers[l];
        L->index = l;
        for (int k = 0; k < L->n_in; k++) {
            if (!L->in[k]) continue;
            f.uses[L->in[k]->index]++;
            f.reader[L->in[k]->index] = L;
        }
        for (int k = 0; k < L->n_out; k++)
            if (L->out[k]) f.producer[L->out[k]->index] = L;
    }
    for (int l = 0; l < net->n_layers; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && !strcmp(L->op_type, "Div") && !strcmp(L->domain, "")) dt_fuse_gelu(&f, L);
    }
    for (int l = 0; l < net->n_layers && !s; l++) {
        ductile_layer *L = net->layers[l];
        if (!f.dead[l] && !strcmp(L->op_type, "Conv") && !strcmp(L->domain, "")) s = dt_fuse_conv(&f, L);
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
    if (s) goto done;
    int n = 0;
    for (int l = 0; l < net->n_layers; l++) {
        if (f.dead[l]) continue;
        net->layers[n] = net->layers[l];
        net->layers[n]->index = n;
        n++;
    }
    net->n_layers = n;
done:
    dt_free(f.uses);
    dt_free(f.reader);
    dt_free(f.producer);
    dt_free(f.dead);
    return s;
}
