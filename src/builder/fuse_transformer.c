/* Transformer fusions (the fusion pass's driver is fuse.c), for backends with the fused
 * layers' kernels. MatMul(constant B) -> Add(bias) [-> Add(residual)] [-> Gelu] becomes one
 * FusedMatMul (a transformer's projections: per encoder layer, six bias Adds, two residual
 * Adds and the Gelu stop being layers), and BERT's attention block one FusedAttention
 * (src/ops/fused.h has both contracts). Each matches only the exact pattern: every constant,
 * attribute, shape and reader checked; anything else stays as it was. */
#include "builder/fuse_impl.h"
#include "builder/optimize.h"
#include "core/status.h"
#include "ops/fused.h"

#include <math.h>
#include <string.h>

/* A constant float32 tensor of this rank whose bytes hold all its elements. */
static bool dt_const_f32(const ductile_tensor *t, int rank)
{
    if (!t || !t->data || t->dtype != DUCTILE_FLOAT32 || t->rank != rank) return false;
    for (int i = 0; i < rank; i++)
        if (t->dims[i] < 1) return false;
    return (size_t)dt_tensor_count(t) * sizeof(float) == t->nbytes;
}

/* MatMul(x, constant 2-D B [K, N]) [-> Add(constant bias [N])] [-> Add(residual of the Add's
 * shape)] [-> Gelu(approximate none) or SiLU (Mul(t, Sigmoid(t)), as PyTorch exports it)], at
 * least one of them, each intermediate read only by the next and not a network output: one
 * FusedMatMul in the last absorbed layer's place. Bias-free projections (Llama's) take the
 * residual Add or the SiLU alone. Anything else (a bias of another shape, which would
 * broadcast; a residual that broadcasts; a tanh Gelu; another activation) stays. */
ductile_status dt_fuse_matmul(dt_fuse *f, ductile_layer *Mm)
{
    ductile_network *net = f->net;
    if (Mm->n_in != 2 || Mm->n_out != 1 || !dt_fuse_is_float(Mm->in[0]) || Mm->in[0]->data || !dt_const_f32(Mm->in[1], 2))
        return DUCTILE_OK;
    ductile_tensor *t = Mm->out[0], *bias = NULL, *res = NULL;
    ductile_layer *last = Mm, *A = NULL, *R = NULL, *G = NULL;
    ductile_layer *A0 = dt_fuse_sole_op(f, t, "Add", 2);
    if (A0) {
        ductile_tensor *b = A0->in[A0->in[0] == t ? 1 : 0];
        if (b != t && dt_const_f32(b, 1) && b->dims[0] == Mm->in[1]->dims[1]) {
            A = last = A0;
            bias = b;
            t = A0->out[0];
        }
    }
    ductile_layer *R0 = dt_fuse_sole_op(f, t, "Add", 2);
    if (R0) {
        ductile_tensor *r = R0->in[R0->in[0] == t ? 1 : 0];
        if (r != t && dt_fuse_is_float(r) && dt_fuse_same_shape(r, t) && dt_fuse_same_shape(R0->out[0], t)) {
            R = last = R0;
            res = r;
            t = R0->out[0];
        }
    }
    const char *act = "";
    dt_act_match silu = {0};
    ductile_layer *G0 = dt_fuse_sole_op(f, t, "Gelu", 1);
    if (G0 && !strcmp(dt_attr_string(G0, "approximate", "none"), "none")) {
        G = last = G0;
        t = G0->out[0];
        act = "Gelu";
    } else if (dt_fuse_match_act(f, t, &silu) && !strcmp(silu.name, "Silu")) {
        last = silu.layers[1];
        t = silu.out;
        act = "Silu";
    } else {
        memset(&silu, 0, sizeof silu);
    }
    if (last == Mm) return DUCTILE_OK;   /* nothing to absorb: it stays a MatMul */
    ductile_tensor **in = dt_arena_alloc(&net->arena, sizeof *in * 4);
    if (!in) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory fusing node '%s'", Mm->name);
    in[DT_FM_A] = Mm->in[0];
    in[DT_FM_B] = Mm->in[1];
    in[DT_FM_BIAS] = bias;
    in[DT_FM_R] = res;
    dt_attr a = {.name = "activation", .type = DT_ATTR_STRING, .s = act, .s_len = strlen(act)};
    DT_TRY(dt_layer_add_attrs(net, Mm, &a, 1));
    Mm->op_type = "FusedMatMul";
    Mm->domain = "ductile";
    Mm->in = in;
    Mm->n_in = res ? 4 : 3;
    Mm->out[0] = t;
    t->producer = Mm;
    f->producer[t->index] = Mm;
    if (bias) f->reader[bias->index] = Mm;
    if (res) f->reader[res->index] = Mm;
    dt_fuse_kill(f, A);
    dt_fuse_kill(f, R);
    dt_fuse_kill(f, G);
    dt_fuse_kill(f, silu.layers[0]);
    dt_fuse_kill(f, silu.layers[1]);
    dt_fuse_move_to_last(f, Mm, last);
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
        if (!dt_fuse_const_scalar(M, 1 - i, NAN, &v) || c->nbytes != sizeof(float) || !dt_fuse_same_shape(x, t)) continue;
        *mul = M;
        *scale = v;
        return x;
    }
    return t;
}

/* The scores scaled after their product, as Hugging Face's eager attention writes it:
 * MatMul(Q, Kt) -> Div(sqrt(d)) or Mul(1 / sqrt(d)), the product read only by P. Taken only
 * where the factor is a power of two (head sizes 4, 16, 64, 256): scaling K by it before the
 * product then gives the unfused chain's bits (every product and partial sum scaled by 2^-p,
 * exactly, short of subnormals), so the fused attention's k_scale absorbs it. Returns the
 * MatMul and sets *factor, else NULL. */
static ductile_layer *dt_score_scale(const dt_fuse *f, const ductile_layer *P, float *factor)
{
    bool div = !strcmp(P->op_type, "Div");
    if ((!div && strcmp(P->op_type, "Mul")) || strcmp(P->domain, "") || P->n_in != 2 || P->n_out != 1) return NULL;
    for (int i = 0; i < (div ? 1 : 2); i++) {
        ductile_tensor *x = P->in[i], *c = P->in[1 - i];
        ductile_layer *M = x ? f->producer[x->index] : NULL;
        float v;
        int e;
        if (!M || f->dead[M->index] || strcmp(M->op_type, "MatMul") || dt_fuse_sole_reader(f, x) != P || !c ||
            !c->data || c->nbytes != sizeof(float) || !dt_fuse_const_scalar(P, 1 - i, NAN, &v) ||
            !dt_fuse_same_shape(x, P->out[0]) || !(v > 0.0f) || isinf(v) || frexpf(v, &e) != 0.5f)
            continue;
        *factor = div ? 1.0f / v : v;
        return M;
    }
    return NULL;
}

/* IsNaN(p) -> Where(., 0, p): the only two layers reading p, with the Where's output read by
 * one layer only; sets *isnan_l and *where, else returns false. */
static bool dt_match_nan_to_zero(const dt_fuse *f, ductile_tensor *p, ductile_layer **isnan_l, ductile_layer **where)
{
    if (p->is_output || f->uses[p->index] != 2) return false;
    for (int l = 0; l < f->net->n_layers; l++) {
        ductile_layer *I = f->net->layers[l];
        if (f->dead[l] || strcmp(I->op_type, "IsNaN") || strcmp(I->domain, "") || I->n_in != 1 || I->in[0] != p ||
            I->n_out != 1)
            continue;
        ductile_layer *W = dt_fuse_sole_reader(f, I->out[0]);
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
        T->n_out != 1 || !T->in[0] || T->in[0]->rank != 4 || dt_fuse_sole_reader(f, t) != reader)
        return NULL;
    int64_t n;
    const int64_t *p = dt_attr_ints(T, "perm", &n);
    if (!p || n != 4) return NULL;
    for (int i = 0; i < 4; i++)
        if (p[i] != perm[i]) return NULL;
    return T;
}

/* Mul(Q, a) and Mul(Kt, b) -> MatMul [-> Div or Mul by a power of two] -> Add(mask) ->
 * Softmax(last axis) [-> IsNaN + Where(0)] -> MatMul(V), each intermediate read only by the
 * next: one FusedAttention in the second MatMul's place (or, with the heads' Transposes
 * absorbed, the output Transpose's; or with K's Transpose to Kt absorbed, layout "krows"). Q, Kt and V must have one rank and the same batch dims
 * (the fused kernel does not broadcast them), and the mask must not grow the scores. */
ductile_status dt_fuse_attention(dt_fuse *f, ductile_layer *Sm)
{
    ductile_network *net = f->net;
    ductile_tensor *x = Sm->in[0];
    if (Sm->n_in != 1 || Sm->n_out != 1 || Sm->opset < 13 || !x || x->rank < 2) return DUCTILE_OK;
    int64_t axis = dt_attr_int(Sm, "axis", -1);
    if (axis != -1 && axis != x->rank - 1) return DUCTILE_OK;
    ductile_layer *Ad = f->producer[x->index];
    if (!Ad || f->dead[Ad->index] || strcmp(Ad->op_type, "Add") || strcmp(Ad->domain, "") || Ad->n_in != 2 ||
        dt_fuse_sole_reader(f, x) != Sm)
        return DUCTILE_OK;
    ductile_layer *Mm1 = NULL, *Sc = NULL;
    ductile_tensor *mask = NULL, *s = NULL;
    float s_scale = 1.0f;
    for (int i = 0; i < 2 && !Mm1; i++) {
        ductile_tensor *c = Ad->in[i];
        ductile_layer *P = c ? f->producer[c->index] : NULL;
        if (!P || f->dead[P->index] || dt_fuse_sole_reader(f, c) != Ad || Ad->in[1 - i] == c) continue;
        float factor = 1.0f;
        ductile_layer *S = dt_score_scale(f, P, &factor), *M = S ? S : P;
        if (!strcmp(M->op_type, "MatMul") && !strcmp(M->domain, "") && M->n_in == 2 && M->n_out == 1) {
            Mm1 = M;
            Sc = S ? P : NULL;
            s_scale = factor;
            s = M->out[0];
            mask = Ad->in[1 - i];
        }
    }
    if (!Mm1 || !dt_fuse_is_float(mask) || !dt_fuse_same_shape(x, s) || mask->rank < 0 || mask->rank > s->rank)
        return DUCTILE_OK;
    ductile_layer *mq, *mk, *I = NULL, *W = NULL;
    float qs, ks;
    ductile_tensor *q = dt_scaled(f, Mm1->in[0], &mq, &qs), *kt = dt_scaled(f, Mm1->in[1], &mk, &ks);
    ks *= s_scale;   /* a power of two: exact */
    ductile_tensor *p = Sm->out[0];
    bool nan0 = dt_match_nan_to_zero(f, p, &I, &W);
    if (nan0) p = W->out[0];
    ductile_layer *Mm2 = dt_fuse_sole_reader(f, p);
    if (!Mm2 || strcmp(Mm2->op_type, "MatMul") || strcmp(Mm2->domain, "") || Mm2->n_in != 2 || Mm2->n_out != 1 ||
        Mm2->in[0] != p || Mm2->in[1] == p)
        return DUCTILE_OK;
    ductile_tensor *v = Mm2->in[1];
    /* The kernel is float32's; activations may carry no dtype yet, so one float32 tensor or
     * constant in the chain must prove it (MatMul, Add, Softmax and Where keep one type). A
     * float16 attention stays unfused rather than fail to build. */
    const ductile_tensor *known[] = {q, kt, v, mask, s, x, Sm->out[0]};
    bool f32 = mq || mk || nan0 || Sc;   /* their float32 constants type the chain */
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) f32 |= known[i] && known[i]->dtype == DUCTILE_FLOAT32;
    if (!f32) return DUCTILE_OK;
    int r = q->rank;
    if (r < 2 || kt->rank != r || !v || v->rank != r || s->rank != r || !dt_fuse_is_float(q) || !dt_fuse_is_float(kt) ||
        !dt_fuse_is_float(v) || !dt_same_prefix(q, kt, r - 2) || !dt_same_prefix(q, v, r - 2))
        return DUCTILE_OK;
    /* The heads' Transposes around it (BERT's: [B, S, H, D] -> [B, H, S, D], K to
     * [B, H, D, L], and the output back), all four or none: layout "bshd". */
    static const int64_t p0213[4] = {0, 2, 1, 3}, p0231[4] = {0, 2, 3, 1};
    ductile_layer *tq = NULL, *tk = NULL, *tv = NULL, *ty = NULL, *last = Mm2;
    if (r == 4 && (tq = dt_transpose_into(f, q, p0213, mq ? mq : Mm1)) &&
        (tk = dt_transpose_into(f, kt, p0231, mk ? mk : Mm1)) && (tv = dt_transpose_into(f, v, p0213, Mm2))) {
        ty = dt_fuse_sole_reader(f, Mm2->out[0]);
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
    /* Else K's own Transpose to Kt (Hugging Face's decoders: K [B, H, L, D], rotated, then
     * transposed for the product): layout "krows", the kernel packs Kt from K's rows. */
    static const int64_t p0132[4] = {0, 1, 3, 2};
    ductile_layer *tkr = !bshd && r == 4 ? dt_transpose_into(f, kt, p0132, mk ? mk : Mm1) : NULL;
    if (tkr) kt = tkr->in[0];
    const char *layout = bshd ? "bshd" : tkr ? "krows" : "";
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
        {.name = "layout", .type = DT_ATTR_STRING, .s = layout, .s_len = strlen(layout)},
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
    dt_fuse_kill(f, mq);
    dt_fuse_kill(f, mk);
    dt_fuse_kill(f, Sc);
    dt_fuse_kill(f, Ad);
    dt_fuse_kill(f, Sm);
    dt_fuse_kill(f, I);
    dt_fuse_kill(f, W);
    dt_fuse_kill(f, Mm2);
    dt_fuse_kill(f, tkr);
    if (bshd) {
        dt_fuse_kill(f, tq);
        dt_fuse_kill(f, tk);
        dt_fuse_kill(f, tv);
        dt_fuse_kill(f, ty);
    }
    dt_fuse_move_to_last(f, Mm1, last);
    return DUCTILE_OK;
}
