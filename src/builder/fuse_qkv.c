/* Packed Q, K, V projections (the fusion pass's last step; driver: fuse.c). A self-attention
 * layer's three projections read the same activation with three weights of one shape:
 *
 *   FusedMatMul(x, Wq, bq) -> Reshape [B, S, H, D] --Q--\
 *   FusedMatMul(x, Wk, bk) -> Reshape [B, S, H, D] --K---> FusedAttention (layout "bshd")
 *   FusedMatMul(x, Wv, bv) -> Reshape [B, S, H, D] --V--/
 *
 * becomes one FusedMatMul(x, [Wq Wk Wv], [bq bk bv]) writing [B, S, 3 N], one Reshape to
 * [B, S, 3, H, D] (a view: no copy) and FusedAttention layout "bshd_qkv" reading Q, K and V
 * from it (ops/fused.h). One GEMM of N = 3 H D instead of three of H D: a third of the
 * launches on a GPU, where bert_small's projections at 8x128 are each too small to fill the
 * device, and on the CPU the activation is packed once instead of three times. Each output
 * element is the same dot product with the same bias as before; only the GEMM's blocking of
 * the columns changes (float32: the same sums on the CPU's column panels, which never split K).
 *
 * Matched exactly: the three Reshapes each read only by the attention, their FusedMatMuls
 * each read only by their Reshape, the same A, raw (not packed) float32 weights of one shape
 * [K, N] with N = H D, biases on all three or on none, no residual, no activation, and shapes
 * the dims prove ([B, S, N] to [B, S, H, D], the same B and S). Every backend that runs
 * FusedAttention runs the packed layout, so the pass needs nothing more than the fusions it
 * follows; DUCTILE_FUSE_QKV=0 leaves the projections apart (tests of the three-input layout,
 * A/B timing in one build). */
#include "builder/fuse_impl.h"
#include "builder/optimize.h"
#include "core/alloc.h"
#include "core/status.h"
#include "ops/fused.h"

#include <string.h>

/* The FusedMatMul behind input `i` of the attention Fa through a Reshape, each read by the
 * next only; *R its Reshape. NULL where anything differs. */
static ductile_layer *dt_qkv_projection(const dt_fuse *f, ductile_layer *Fa, int i, ductile_layer **R)
{
    ductile_tensor *x4 = Fa->in[i];
    *R = x4 ? f->producer[x4->index] : NULL;
    ductile_layer *r = *R;
    if (!r || f->dead[r->index] || strcmp(r->op_type, "Reshape") || strcmp(r->domain, "") || r->n_in != 2 ||
        r->n_out != 1 || dt_fuse_sole_reader(f, x4) != Fa || !r->in[0] || r->in[0]->data)
        return NULL;
    ductile_tensor *t = r->in[0];
    ductile_layer *M = f->producer[t->index];
    if (!M || f->dead[M->index] || strcmp(M->op_type, "FusedMatMul") || strcmp(M->domain, "ductile") ||
        M->n_out != 1 || dt_fuse_sole_reader(f, t) != r || (M->n_in > DT_FM_R && M->in[DT_FM_R]) ||
        strcmp(dt_attr_string(M, "activation", ""), "") || dt_attr_int(M, "packed", 0) != 0)
        return NULL;
    return M;
}

/* The same dim: equal sizes, or the same symbol. */
static bool dt_qkv_same_dim(const ductile_tensor *a, int i, const ductile_tensor *b, int j)
{
    if (a->dims[i] >= 0 || b->dims[j] >= 0) return a->dims[i] == b->dims[j];
    return a->dim_sym[i] && b->dim_sym[j] && !strcmp(a->dim_sym[i], b->dim_sym[j]);
}

/* M's weight and bias as the pass needs them: B float32 [K, N] in full, bias (if any) [N]. */
static bool dt_qkv_weights(const ductile_layer *M, int64_t K, int64_t N, bool bias)
{
    const ductile_tensor *b = M->in[DT_FM_B], *c = M->n_in > DT_FM_BIAS ? M->in[DT_FM_BIAS] : NULL;
    if (!b || !b->data || b->dtype != DUCTILE_FLOAT32 || b->rank != 2 || b->dims[0] != K || b->dims[1] != N ||
        b->nbytes != (size_t)(K * N) * sizeof(float))
        return false;
    if ((c != NULL) != bias) return false;
    return !c || (c->data && c->dtype == DUCTILE_FLOAT32 && c->rank == 1 && c->dims[0] == N &&
                  c->nbytes == (size_t)N * sizeof(float));
}

static void dt_qkv_free(void *p, size_t n) { (void)n; dt_free(p); }

/* A new constant (data: then the network's, kept until it is freed) or activation named
 * after Fa; NULL when out of memory, data then still the caller's. */
static ductile_tensor *dt_qkv_tensor(ductile_network *net, const ductile_layer *Fa, const char *suffix, int dtype,
                                     int rank, const int64_t *dims, void *data, size_t nbytes)
{
    ductile_tensor *t = dt_network_add_named(net, Fa->name, suffix);
    if (!t || (data && dt_network_keep(net, data, nbytes, dt_qkv_free))) return NULL;   /* data still the caller's */
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    t->data = data;
    t->nbytes = data ? nbytes : 0;
    return t;
}

ductile_status dt_fuse_qkv(dt_fuse *f, ductile_layer *Fa)
{
    ductile_network *net = f->net;
    if (!dt_fused_attention_bshd(Fa) || dt_fused_attention_qkv(Fa) || Fa->n_in < 3) return DUCTILE_OK;
    ductile_layer *R[3], *M[3];
    for (int i = 0; i < 3; i++)
        if (!(M[i] = dt_qkv_projection(f, Fa, i, &R[i]))) return DUCTILE_OK;
    const ductile_tensor *a = M[0]->in[DT_FM_A], *t = M[0]->out[0], *x4 = Fa->in[DT_FA_Q];
    if (M[0] == M[1] || M[1] == M[2] || M[0] == M[2] || M[1]->in[DT_FM_A] != a || M[2]->in[DT_FM_A] != a)
        return DUCTILE_OK;
    /* [B, S, N] -> [B, S, H, D] for all three, N = H D known. */
    if (a->rank != 3 || t->rank != 3 || x4->rank != 4 || x4->dims[2] < 1 || x4->dims[3] < 1 || t->dims[2] < 1 ||
        t->dims[2] != x4->dims[2] * x4->dims[3] || !dt_qkv_same_dim(t, 0, x4, 0) || !dt_qkv_same_dim(t, 1, x4, 1) ||
        a->dims[2] < 1)
        return DUCTILE_OK;
    for (int i = 1; i < 3; i++)
        if (!dt_fuse_same_shape(M[i]->out[0], t) || !dt_fuse_same_shape(Fa->in[i], x4)) return DUCTILE_OK;
    int64_t K = a->dims[2], N = t->dims[2], H = x4->dims[2], D = x4->dims[3];
    bool bias = M[0]->n_in > DT_FM_BIAS && M[0]->in[DT_FM_BIAS];
    for (int i = 0; i < 3; i++)
        if (!dt_qkv_weights(M[i], K, N, bias)) return DUCTILE_OK;

    /* [K, 3N]: row k is Wq's row k, then Wk's, then Wv's; the biases one after the other. */
    size_t wbytes = (size_t)(K * 3 * N) * sizeof(float), bbytes = (size_t)(3 * N) * sizeof(float);
    float *w = dt_malloc(wbytes), *b = bias ? dt_malloc(bbytes) : NULL;
    int64_t *shape = dt_malloc(5 * sizeof *shape);
    if (!w || (bias && !b) || !shape) {
        dt_free(w), dt_free(b), dt_free(shape);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory packing the projections of node '%s'", Fa->name);
    }
    for (int i = 0; i < 3; i++) {
        const float *wi = M[i]->in[DT_FM_B]->data;
        for (int64_t k = 0; k < K; k++) memcpy(w + k * 3 * N + i * N, wi + k * N, (size_t)N * sizeof(float));
        if (b) memcpy(b + i * N, M[i]->in[DT_FM_BIAS]->data, (size_t)N * sizeof(float));
    }
    /* 0: Reshape copies the dim (B and S may be symbols). */
    shape[0] = 0, shape[1] = 0, shape[2] = 3, shape[3] = H, shape[4] = D;
    int64_t wd[2] = {K, 3 * N}, bd[1] = {3 * N}, sd[1] = {5}, td[3] = {t->dims[0], t->dims[1], 3 * N},
            xd[5] = {x4->dims[0], x4->dims[1], 3, H, D};
    ductile_tensor *wt = dt_qkv_tensor(net, Fa, "qkv_weight", DUCTILE_FLOAT32, 2, wd, w, wbytes);
    ductile_tensor *bt = wt && b ? dt_qkv_tensor(net, Fa, "qkv_bias", DUCTILE_FLOAT32, 1, bd, b, bbytes) : NULL;
    ductile_tensor *st = wt && (bt || !b) ? dt_qkv_tensor(net, Fa, "qkv_shape", DUCTILE_INT64, 1, sd, shape, 5 * sizeof *shape) : NULL;
    ductile_tensor *tq = st ? dt_qkv_tensor(net, Fa, "qkv", t->dtype, 3, td, NULL, 0) : NULL;
    ductile_tensor *xq = tq ? dt_qkv_tensor(net, Fa, "qkv_heads", x4->dtype, 5, xd, NULL, 0) : NULL;
    ductile_tensor **rin = xq ? dt_arena_alloc(&net->arena, sizeof *rin * 2) : NULL;
    dt_attr *attrs = rin ? dt_arena_alloc(&net->arena, sizeof *attrs * (size_t)Fa->n_attr) : NULL;
    if (!attrs) {
        /* What was made before the failure is the network's (kept): only what was not yet given
         * to it is freed here. */
        if (!wt) dt_free(w);
        if (!bt && b) dt_free(b);
        if (!st) dt_free(shape);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory packing the projections of node '%s'", Fa->name);
    }
    for (int d = 0; d < 2; d++) {
        tq->dim_sym[d] = t->dim_sym[d];
        xq->dim_sym[d] = x4->dim_sym[d];
    }
    /* Q's FusedMatMul computes all three (it runs first of the three, after A) and Q's Reshape
     * (after it) splits them; the attention reads the split. */
    M[0]->in[DT_FM_B] = wt;
    if (bias) M[0]->in[DT_FM_BIAS] = bt;
    M[0]->out[0] = tq;
    tq->producer = M[0];
    rin[0] = tq;
    rin[1] = st;
    R[0]->in = rin;
    R[0]->n_attr = 0;       /* allowzero 0: the zeros copy B and S */
    R[0]->out[0] = xq;
    xq->producer = R[0];
    memcpy(attrs, Fa->attrs, sizeof *attrs * (size_t)Fa->n_attr);
    for (int i = 0; i < Fa->n_attr; i++)
        if (!strcmp(attrs[i].name, "layout")) attrs[i].s = "bshd_qkv", attrs[i].s_len = 8;
    Fa->attrs = attrs;
    Fa->in[DT_FA_Q] = xq;
    Fa->in[DT_FA_KT] = Fa->in[DT_FA_V] = NULL;
    for (int i = 1; i < 3; i++) {
        dt_fuse_kill(f, M[i]);
        dt_fuse_kill(f, R[i]);
    }
    return DUCTILE_OK;
}
