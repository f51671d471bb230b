/* The rotary position embedding as Hugging Face's rotate_half writes it (Llama, Mistral, Qwen,
 * Phi exports), for backends with the FusedRotary kernel (ops/fused.h):
 *     x1 = Slice(x, 0, D/2), x2 = Slice(x, D/2, end) over the last axis
 *     y  = Add(Mul(x, cos), Mul(Concat(Neg(x2), x1, last axis), sin))
 * each intermediate read only by the next, becomes FusedRotary(x, cos, sin) in the Add's place:
 * seven passes over a head's rows (two per query and key of each layer) become one, with the
 * same products and sum (the same bits). Anything else stays. */
#include "builder/fuse_impl.h"
#include "builder/optimize.h"
#include "core/arena.h"
#include "core/status.h"
#include "ops/fused.h"

#include <stdint.h>
#include <string.h>

/* Input i of L is a one-element integer constant (int64 or int32): *v. */
static bool dt_const_int(const ductile_layer *L, int i, int64_t *v)
{
    const ductile_tensor *t = i < L->n_in ? L->in[i] : NULL;
    if (!t || !t->data) return false;
    if (t->dtype == DUCTILE_INT64 && t->nbytes == sizeof(int64_t)) {
        memcpy(v, t->data, sizeof *v);
        return true;
    }
    if (t->dtype == DUCTILE_INT32 && t->nbytes == sizeof(int32_t)) {
        int32_t w;
        memcpy(&w, t->data, sizeof w);
        *v = w;
        return true;
    }
    return false;
}

/* t is Slice(x, start, end) over x's last axis (step 1, opset 10's inputs), read only by
 * `reader`: x, with *start and *end, else NULL. */
static ductile_tensor *dt_last_axis_slice(const dt_fuse *f, ductile_tensor *t, const ductile_layer *reader,
                                          int64_t *start, int64_t *end)
{
    ductile_layer *S = f->producer[t->index];
    int64_t axis, step = 1;
    if (!S || f->dead[S->index] || strcmp(S->op_type, "Slice") || strcmp(S->domain, "") || S->n_in < 4 || S->n_out != 1 ||
        dt_fuse_sole_reader(f, t) != reader)
        return NULL;
    ductile_tensor *x = S->in[0];
    if (!x || x->rank < 1 || !dt_const_int(S, 1, start) || !dt_const_int(S, 2, end) || !dt_const_int(S, 3, &axis) ||
        (S->n_in > 4 && S->in[4] && !dt_const_int(S, 4, &step)) || step != 1 || (axis != -1 && axis != x->rank - 1))
        return NULL;
    return x;
}

/* The Mul of t and one other tensor, read only by `reader`: that other tensor, else NULL. */
static ductile_tensor *dt_mul_by(const dt_fuse *f, ductile_layer *M, const ductile_tensor *t, const ductile_layer *reader)
{
    if (!M || f->dead[M->index] || strcmp(M->op_type, "Mul") || strcmp(M->domain, "") || M->n_in != 2 || M->n_out != 1 ||
        dt_fuse_sole_reader(f, M->out[0]) != reader)
        return NULL;
    return M->in[0] == t || M->in[1] == t ? dt_fuse_other_in(M, t) : NULL;
}

/* A table (cos or sin) FusedRotary takes: float, not a network input's x, its last dim D. */
static bool dt_rotary_table(const ductile_tensor *c, const ductile_tensor *x, int64_t D)
{
    return c && c != x && dt_fuse_is_float(c) && c->rank >= 1 && c->rank <= x->rank && c->dims[c->rank - 1] == D;
}

ductile_status dt_fuse_rotary(dt_fuse *f, ductile_layer *C)
{
    if (C->n_in != 2 || C->n_out != 1 || !C->in[0] || !C->in[1] || C->in[0] == C->in[1]) return DUCTILE_OK;
    ductile_layer *N = f->producer[C->in[0]->index];
    if (!N || f->dead[N->index] || strcmp(N->op_type, "Neg") || strcmp(N->domain, "") || N->n_in != 1 || N->n_out != 1 ||
        dt_fuse_sole_reader(f, N->out[0]) != C)
        return DUCTILE_OK;
    int64_t s2, e2, s1, e1;
    ductile_tensor *x = dt_last_axis_slice(f, N->in[0], N, &s2, &e2);
    if (!x || dt_last_axis_slice(f, C->in[1], C, &s1, &e1) != x || x->data || !dt_fuse_is_float(x)) return DUCTILE_OK;
    int64_t D = x->dims[x->rank - 1], axis = dt_attr_int(C, "axis", 0);
    if (D < 2 || D % 2 || (axis != -1 && axis != x->rank - 1) || s1 != 0 || e1 != D / 2 || s2 != D / 2 || e2 < D)
        return DUCTILE_OK;
    /* rot = C's output, times sin, added to x times cos */
    ductile_layer *M2 = dt_fuse_sole_reader(f, C->out[0]);
    ductile_layer *A = M2 ? dt_fuse_sole_reader(f, M2->out[0]) : NULL;
    if (!A || strcmp(A->op_type, "Add") || strcmp(A->domain, "") || A->n_in != 2 || A->n_out != 1) return DUCTILE_OK;
    ductile_tensor *sin = dt_mul_by(f, M2, C->out[0], A);
    ductile_tensor *m1out = dt_fuse_other_in(A, M2->out[0]);
    ductile_layer *M1 = m1out ? f->producer[m1out->index] : NULL;
    ductile_tensor *cos = M1 && M1 != M2 ? dt_mul_by(f, M1, x, A) : NULL;
    if (!sin || !cos || !dt_rotary_table(sin, x, D) || !dt_rotary_table(cos, x, D) ||
        !dt_fuse_same_shape(A->out[0], x))
        return DUCTILE_OK;
    ductile_tensor **in = dt_arena_alloc(&f->net->arena, sizeof *in * 3);
    if (!in) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory fusing node '%s'", A->name);
    in[DT_FROT_X] = x;
    in[DT_FROT_COS] = cos;
    in[DT_FROT_SIN] = sin;
    A->op_type = "FusedRotary";
    A->domain = "ductile";
    A->in = in;
    A->n_in = 3;
    A->n_attr = 0;
    f->uses[x->index] -= 2;     /* two Slices' and M1's reads of x are A's one */
    f->reader[x->index] = A;
    f->reader[cos->index] = A;
    f->reader[sin->index] = A;
    dt_fuse_kill(f, f->producer[N->in[0]->index]);
    dt_fuse_kill(f, f->producer[C->in[1]->index]);
    dt_fuse_kill(f, N);
    dt_fuse_kill(f, C);
    dt_fuse_kill(f, M1);
    dt_fuse_kill(f, M2);
    return DUCTILE_OK;
}
