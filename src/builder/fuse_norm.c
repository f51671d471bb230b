/* Add [-> Add] -> LayerNormalization as one FusedLayerNorm (ops/fused.h has the contract), for
 * backends with its kernel: the sums are formed while a row is loaded for its statistics
 * instead of each Add writing the tensor and the next layer reading it back. BERT's
 * embeddings (word + token type + position, then the LayerNorm) lose three launches on a GPU:
 * the word embeddings' Gather (x's producer, a constant table read by ids) is absorbed too.
 * The sums keep the chain's order ((x + r1) + r2 in float32), so a float32 engine computes what
 * the unfused layers compute, bit for bit. */
#include "builder/fuse_impl.h"
#include "builder/optimize.h"
#include "core/status.h"
#include "ops/fused.h"

#include <math.h>
#include <string.h>

/* Two dims proved equal (the same known size, or the same symbol). */
static bool dt_same_dim(const ductile_tensor *a, int i, const ductile_tensor *b, int j)
{
    if (a->dims[i] >= 0 || b->dims[j] >= 0) return a->dims[i] == b->dims[j];
    return a->dim_sym[i] && b->dim_sym[j] && !strcmp(a->dim_sym[i], b->dim_sym[j]);
}

/* r is an addend FusedLayerNorm takes against the sum y (normalized from axis on): y's
 * normalized dims proved equal in r; r's other dims are the Add's business (it broadcast r to
 * y, whose shape the other operand has: dt_split_sum), checked again by infer at each shape. */
static bool dt_row_addend(const ductile_tensor *y, int axis, const ductile_tensor *r)
{
    if (!dt_fuse_is_float(r) || r->rank < 0 || r->rank > y->rank || r->rank < y->rank - axis) return false;
    for (int d = axis; d < y->rank; d++)
        if (!dt_same_dim(r, d - (y->rank - r->rank), y, d)) return false;
    return true;
}

/* The Add writing t, when t is read only by `reader` and the Add is alive, else NULL. */
static ductile_layer *dt_add_into(const dt_fuse *f, ductile_tensor *t, const ductile_layer *reader)
{
    ductile_layer *A = f->producer[t->index];
    if (!A || f->dead[A->index] || strcmp(A->op_type, "Add") || strcmp(A->domain, "") || A->n_in != 2 ||
        A->n_out != 1 || !A->in[0] || !A->in[1] || A->in[0] == A->in[1] || dt_fuse_sole_reader(f, t) != reader)
        return NULL;
    return A;
}

/* Orders a + b as (x, r): x the operand of the sum's full shape, r one that broadcasts by rows;
 * false when neither order fits (Add is commutative in float, so either is the Add's value). */
static bool dt_split_sum(const ductile_layer *A, int axis, ductile_tensor **x, ductile_tensor **r)
{
    const ductile_tensor *y = A->out[0];
    for (int i = 0; i < 2; i++) {
        ductile_tensor *a = A->in[i], *b = A->in[1 - i];
        if (dt_fuse_is_float(a) && !a->data && dt_fuse_same_shape(a, y) && dt_row_addend(y, axis, b)) {
            *x = a;
            *r = b;
            return true;
        }
    }
    return false;
}

/* The Gather(constant float32 table [V, E], integer ids, axis 0) writing x, read only by
 * `reader`, else NULL. */
static ductile_layer *dt_table_gather(const dt_fuse *f, ductile_tensor *x, const ductile_layer *reader)
{
    ductile_layer *G = f->producer[x->index];
    if (!G || f->dead[G->index] || strcmp(G->op_type, "Gather") || strcmp(G->domain, "") || G->n_in != 2 ||
        G->n_out != 1 || dt_fuse_sole_reader(f, x) != reader || dt_attr_int(G, "axis", 0) != 0)
        return NULL;
    const ductile_tensor *t = G->in[0], *ids = G->in[1];
    if (!t || !t->data || t->dtype != DUCTILE_FLOAT32 || t->rank != 2 || !ids || ids->data ||
        (ids->dtype != DUCTILE_INT64 && ids->dtype != DUCTILE_INT32) || ids->rank < 0 || ids->rank + 1 != x->rank)
        return NULL;
    return G;
}

/* LayerNormalization(Add(Add(x, r1), r2)) or LayerNormalization(Add(x, r1)), each sum read only
 * by the next layer, one output (no Mean / InvStdDev), float32 as far as known: one
 * FusedLayerNorm in the LayerNorm's place. */
ductile_status dt_fuse_layernorm(dt_fuse *f, ductile_layer *Ln)
{
    ductile_network *net = f->net;
    if (Ln->n_in < 2 || Ln->n_in > 3 || Ln->n_out != 1 || !Ln->in[0] || !Ln->in[1] || Ln->in[0]->rank < 1 ||
        !dt_fuse_is_float(Ln->in[0]))
        return DUCTILE_OK;
    ductile_tensor *y = Ln->in[0];
    int64_t axis = dt_attr_int(Ln, "axis", -1);
    if (axis < 0) axis += y->rank;
    if (axis < 0 || axis >= y->rank) return DUCTILE_OK;
    ductile_layer *A1 = dt_add_into(f, y, Ln);
    ductile_tensor *x, *r1, *r2 = NULL;
    if (!A1 || !dt_split_sum(A1, (int)axis, &x, &r1)) return DUCTILE_OK;
    /* One more Add before: (x0 + r0) + r1, with x its full-shape operand. */
    ductile_layer *A0 = dt_add_into(f, x, A1);
    ductile_tensor *x0, *r0;
    if (A0 && dt_split_sum(A0, (int)axis, &x0, &r0)) {
        r2 = r1;
        r1 = r0;
        x = x0;
    } else {
        A0 = NULL;
    }
    /* x gathered from a table (word embeddings) by ids: the rows are read where the sums are
     * formed. LayerNorm over the last axis only, so a row of x is a row of the table. */
    ductile_layer *G = axis == y->rank - 1 ? dt_table_gather(f, x, A0 ? A0 : A1) : NULL;
    ductile_tensor **in = dt_arena_alloc(&net->arena, sizeof *in * 6);
    if (!in) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory fusing node '%s'", Ln->name);
    in[DT_FLN_X] = G ? G->in[0] : x;
    in[DT_FLN_SCALE] = Ln->in[1];
    in[DT_FLN_B] = Ln->n_in > 2 ? Ln->in[2] : NULL;
    in[DT_FLN_R1] = r1;
    in[DT_FLN_R2] = r2;
    in[DT_FLN_IDS] = G ? G->in[1] : NULL;
    Ln->op_type = "FusedLayerNorm";
    Ln->domain = "ductile";
    Ln->in = in;
    Ln->n_in = G ? 6 : r2 ? 5 : 4;
    f->reader[in[DT_FLN_X]->index] = f->reader[r1->index] = Ln;
    if (r2) f->reader[r2->index] = Ln;
    if (G) f->reader[G->in[1]->index] = Ln;
    dt_fuse_kill(f, A1);
    dt_fuse_kill(f, A0);
    dt_fuse_kill(f, G);
    return DUCTILE_OK;
}

/* Input i of L is a one-element float32 constant equal to v. */
static bool dt_const_is(const ductile_layer *L, int i, float v)
{
    float c;
    return L->in[i] && L->in[i]->data && dt_fuse_const_scalar(L, i, NAN, &c) && c == v;
}

/* ReduceMean R reduces x's last axis only, keeping it (axes [-1] or [rank - 1], by attribute
 * or, from opset 18, by a constant input). */
static bool dt_mean_of_last_axis(const ductile_layer *R, const ductile_tensor *x)
{
    if (dt_attr_int(R, "keepdims", 1) != 1 || x->rank < 1) return false;
    int64_t n = 0;
    const int64_t *axes = dt_attr_ints(R, "axes", &n);
    if (R->n_in == 2 && R->in[1]) {
        const ductile_tensor *a = R->in[1];
        if (!a->data || a->dtype != DUCTILE_INT64 || a->nbytes != sizeof(int64_t)) return false;
        axes = a->data;
        n = 1;
    }
    return axes && n == 1 && (axes[0] == -1 || axes[0] == x->rank - 1);
}

/* Llama's RMSNorm as PyTorch exports it: Pow(x, 2) -> ReduceMean(last axis, keepdims) ->
 * Add(eps) -> Sqrt -> Reciprocal (or Div(1, .)) -> Mul(x, .) -> Mul(., w [D]), either
 * operand order, each intermediate read only by the next: one RMSNormalization(x, w, axis -1,
 * epsilon eps) in the last Mul's place, for backends with its kernel. Seven passes over the
 * row become one; the kernel's operations are the chain's (x * (1 / sqrt(mean + eps)), then
 * times w), the sum of squares in its own order. */
ductile_status dt_fuse_rmsnorm(dt_fuse *f, ductile_layer *P)
{
    ductile_tensor *x = P->in[0];
    if (P->n_in != 2 || P->n_out != 1 || !x || x->data || !dt_fuse_is_float(x) || x->rank < 1 || x->dims[x->rank - 1] < 1 ||
        !dt_const_is(P, 1, 2.0f))
        return DUCTILE_OK;
    ductile_layer *R = dt_fuse_sole_reader(f, P->out[0]);
    if (!R || strcmp(R->op_type, "ReduceMean") || strcmp(R->domain, "") || R->in[0] != P->out[0] || R->n_out != 1 ||
        !dt_mean_of_last_axis(R, x))
        return DUCTILE_OK;
    ductile_layer *A = dt_fuse_sole_op(f, R->out[0], "Add", 2);
    float eps;
    if (!A) return DUCTILE_OK;
    int ei = A->in[0] == R->out[0] ? 1 : 0;
    if (!A->in[ei] || !A->in[ei]->data || !dt_fuse_const_scalar(A, ei, NAN, &eps) || !(eps >= 0.0f)) return DUCTILE_OK;
    ductile_layer *S = dt_fuse_sole_op(f, A->out[0], "Sqrt", 1);
    ductile_layer *V = S ? dt_fuse_sole_reader(f, S->out[0]) : NULL;
    if (!V || strcmp(V->domain, "") || V->n_out != 1) return DUCTILE_OK;
    bool recip = !strcmp(V->op_type, "Reciprocal") && V->n_in == 1;
    bool div = !strcmp(V->op_type, "Div") && V->n_in == 2 && V->in[1] == S->out[0] && dt_const_is(V, 0, 1.0f);
    if (!recip && !div) return DUCTILE_OK;
    ductile_layer *M1 = dt_fuse_sole_op(f, V->out[0], "Mul", 2);
    if (!M1 || dt_fuse_other_in(M1, V->out[0]) != x || !dt_fuse_same_shape(M1->out[0], x)) return DUCTILE_OK;
    ductile_layer *M2 = dt_fuse_sole_op(f, M1->out[0], "Mul", 2);
    ductile_tensor *w = M2 ? dt_fuse_other_in(M2, M1->out[0]) : NULL;
    if (!w || !w->data || w->dtype != DUCTILE_FLOAT32 || w->rank != 1 || w->dims[0] != x->dims[x->rank - 1] ||
        w->nbytes != (size_t)w->dims[0] * sizeof(float) || !dt_fuse_same_shape(M2->out[0], x))
        return DUCTILE_OK;
    dt_attr attrs[2] = {{.name = "axis", .type = DT_ATTR_INT, .i = -1}, {.name = "epsilon", .type = DT_ATTR_FLOAT, .f = eps}};
    M2->n_attr = 0;
    DT_TRY(dt_layer_add_attrs(f->net, M2, attrs, 2));
    M2->op_type = "RMSNormalization";
    M2->in[0] = x;
    M2->in[1] = w;
    f->uses[x->index]--;    /* Pow's and M1's reads of x are M2's one */
    f->reader[x->index] = M2;
    dt_fuse_kill(f, P);
    dt_fuse_kill(f, R);
    dt_fuse_kill(f, A);
    dt_fuse_kill(f, S);
    dt_fuse_kill(f, V);
    dt_fuse_kill(f, M1);
    return DUCTILE_OK;
}
