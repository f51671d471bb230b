/* Packed Q, K, V (builder/fuse_qkv.c, layout "bshd_qkv" in ops/fused.h): the CPU kernel on a
 * packed [B, S, 3, H, D] input equals the three-input "bshd" kernel on the same Q, K and V bit
 * for bit at odd sizes, serial and on a pool; infer's shapes and refusals; and the pass on
 * hand-built projections: it merges three FusedMatMul + Reshape feeding one bshd attention
 * (weights and biases concatenated in Q, K, V order, symbolic batch and sequence), and leaves
 * the near misses (another A, weights of another shape, a bias missing on one, a residual or
 * an activation on one, a projection read elsewhere, packed weights, an unpermuted attention,
 * DUCTILE_FUSE_QKV=0). */
#include "testutil.h"
#include "refconv.h"
#include "netbuild.h"

#include "backend/cpu/kernels.h"
#include "builder/optimize.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "ops/families.h"
#include "ops/fused.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static dt_view view(int rank, const int64_t *dims, void *data)
{
    dt_view v = {DUCTILE_FLOAT32, rank, {0}, data};
    for (int i = 0; i < rank; i++) v.dims[i] = dims[i];
    return v;
}

static const dt_opdef *fa_def(void)
{
    for (const dt_opdef *e = dt_ops_fused; e->op_type; e++)
        if (!strcmp(e->op_type, "FusedAttention")) return e;
    return NULL;
}

static ductile_layer *attention_layer(const char *layout, int n_in)
{
    ductile_layer *L = layer("FusedAttention", n_in, 4);
    L->domain = "ductile";
    L->attrs[L->n_attr++] = (dt_attr){.name = "q_scale", .type = DT_ATTR_FLOAT, .f = 0.35f};
    L->attrs[L->n_attr++] = (dt_attr){.name = "k_scale", .type = DT_ATTR_FLOAT, .f = 0.5f};
    L->attrs[L->n_attr++] = (dt_attr){.name = "nan_to_zero", .type = DT_ATTR_INT, .i = 1};
    set_string(L, "layout", layout);
    return L;
}

/* ---- the kernel ---- */

typedef struct qkv_case {
    int64_t b, s, h, d;
    bool mask;
} qkv_case;

static const qkv_case cases[] = {
    {1, 16, 4, 64, true},   /* bert_small at seq 16 */
    {3, 7, 3, 5, true},     /* odd everything */
    {2, 37, 2, 16, false},  /* more than 32 rows, no mask */
    {1, 1, 1, 3, true},     /* one of everything */
    {4, 33, 4, 24, true},   /* enough work for one product per thread */
    {2, 53, 3, 8, true},    /* 53 keys: a full 48-key panel and a 5-key one */
};

static ductile_status run_fa(const char *layout, const dt_view *in, dt_view *out, dt_pool *pool)
{
    ductile_layer *L = attention_layer(layout, 4);
    for (int i = 0; i < 4; i++) L->in[i] = in[i].rank >= 0 ? tensor(in[i].rank, in[i].dims, NULL) : NULL;
    const dt_opdef *d = fa_def();
    ductile_status s = d->check(L);
    dt_view o = {0};
    if (!s) s = d->infer(L, in, &o);
    if (s) return s;
    if (o.rank != out->rank || memcmp(o.dims, out->dims, sizeof o.dims)) return DUCTILE_ERR_SHAPE;
    dt_exec ex = {.pool = pool};
    return dt_cpu_kernel_find("FusedAttention")(L, in, out, &ex);
}

static bool run_case(const qkv_case *c, dt_pool *pool)
{
    int64_t B = c->b, S = c->s, H = c->h, D = c->d, hd = H * D;
    int64_t pd[5] = {B, S, 3, H, D}, xd[4] = {B, S, H, D}, md[4] = {B, 1, 1, S};
    int64_t n = B * S * hd;
    float *packed = rand_buf(3 * n), *parts[3], *mask = c->mask ? rand_buf(B * S) : NULL;
    float *y = malloc(sizeof(float) * (size_t)n), *want = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < 3; i++) {
        parts[i] = malloc(sizeof(float) * (size_t)n);
        for (int64_t r = 0; r < B * S; r++) memcpy(parts[i] + r * hd, packed + (r * 3 + i) * hd, sizeof(float) * (size_t)hd);
    }
    for (int64_t i = 0; c->mask && i < B * S; i++) mask[i] = mask[i] < -0.3f ? -INFINITY : 0.0f;
    if (c->mask && B > 1)   /* a fully masked sequence: NaN rows made 0 */
        for (int64_t t = 0; t < S; t++) mask[t] = -INFINITY;
    new_net();
    dt_view mv = c->mask ? view(4, md, mask) : (dt_view){.rank = -1};
    dt_view sep[4] = {view(4, xd, parts[0]), view(4, xd, parts[1]), view(4, xd, parts[2]), mv};
    dt_view pk[4] = {view(5, pd, packed), {.rank = -1}, {.rank = -1}, mv};
    dt_view out = view(4, xd, want);
    bool ok = false;
    if (run_fa("bshd", sep, &out, pool)) {
        fprintf(stderr, "bshd: %s\n", ductile_last_error());
        goto done;
    }
    for (int64_t i = 0; i < n; i++) y[i] = NAN;
    out.data = y;
    if (run_fa("bshd_qkv", pk, &out, pool)) {
        fprintf(stderr, "bshd_qkv: %s\n", ductile_last_error());
        goto done;
    }
    ok = !memcmp(y, want, sizeof(float) * (size_t)n);
    if (!ok) fprintf(stderr, "case b%lld s%lld h%lld d%lld pool %d: packed differs\n", (long long)B, (long long)S,
                     (long long)H, (long long)D, pool != NULL);
done:
    free(packed), free(mask), free(y), free(want);
    for (int i = 0; i < 3; i++) free(parts[i]);
    return ok;
}

static void test_packed_kernel_equals_three_inputs(dt_pool *pool)
{
    int bad = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) bad += !run_case(&cases[c], pool);
    CHECK_EQ_INT(bad, 0);
}

static void test_packed_infer_and_refusals(void)
{
    new_net();
    const dt_opdef *d = fa_def();
    int64_t pd[5] = {2, 7, 3, 4, 8}, md[4] = {2, 1, 1, 7};
    ductile_layer *L = attention_layer("bshd_qkv", 4);
    L->in[0] = tensor(5, pd, NULL), L->in[3] = tensor(4, md, NULL);
    dt_view in[4] = {view(5, pd, NULL), {.rank = -1}, {.rank = -1}, view(4, md, NULL)}, out = {0};
    CHECK_EQ_INT(d->check(L), DUCTILE_OK);
    CHECK_EQ_INT(d->infer(L, in, &out), DUCTILE_OK);
    CHECK(out.rank == 4 && out.dims[0] == 2 && out.dims[1] == 7 && out.dims[2] == 4 && out.dims[3] == 8);
    in[0].dims[2] = 2;
    CHECK_EQ_INT(d->infer(L, in, &out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(ductile_last_error(), "input 0 (QKV) has shape [2,7,2,4,8]; layout 'bshd_qkv' needs [B, S, 3, H, D]");
    in[0].dims[2] = 3;
    in[3].dims[3] = 6;      /* a mask over 6 keys: the keys are the 7 positions */
    CHECK_EQ_INT(d->infer(L, in, &out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(ductile_last_error(), "input 3 (mask) of shape [2,1,1,6] does not broadcast to the scores");
    L->in[1] = L->in[0];
    CHECK_EQ_INT(d->check(L), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(),
                 "input 1 (Kt) must be omitted with layout 'bshd_qkv' (Q, K and V are input 0)");
    ductile_layer *one = attention_layer("bshd_qkv", 1);     /* no mask, K and V not even listed */
    one->in[0] = L->in[0];
    CHECK_EQ_INT(d->check(one), DUCTILE_OK);
    ductile_layer *bad = attention_layer("bhsd", 4);
    CHECK_EQ_INT(d->check(bad), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(ductile_last_error(), "attribute 'layout' = 'bhsd' is not supported (supported: '', bshd, bshd_qkv, krows)");
}

/* ---- the pass ---- */

enum { K = 6, H = 2, D = 4, N = H * D };

typedef struct proj_case {
    bool other_a;       /* K's projection reads another activation */
    bool wide_v;        /* V's weight [K, 2N] (V heads of 2D) */
    bool v_no_bias;     /* V's projection without a bias */
    bool no_bias;       /* none of the three has one: merges, no bias */
    bool k_residual;    /* K's projection adds a residual */
    bool q_gelu;        /* Q's projection ends in Gelu */
    bool q_read_twice;  /* Q's heads are a network output too */
    bool packed_w;      /* K's weight already packed for a backend */
    bool plain;         /* the attention's layout is "" */
} proj_case;

static float weights[3][K * 2 * N], biases[3][2 * N];
static ductile_tensor *x, *x2, *mask_t;
static ductile_layer *mm[3], *rs[3], *fa, *after;

static ductile_tensor *sym_tensor(int rank, const int64_t *dims)
{
    ductile_tensor *t = tensor(rank, dims, NULL);
    t->dtype = DUCTILE_UNDEFINED;   /* activations before the dtypes pass */
    t->dim_sym[0] = "batch", t->dim_sym[1] = "seq";
    return t;
}

/* What dt_pass_fuse_for makes of BERT's block before the projections merge: per projection
 * FusedMatMul(x, W, b) -> Reshape [batch, seq, H, D], into one FusedAttention "bshd". */
static void build_projections(const proj_case *c)
{
    new_net();
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < K * 2 * N; j++) weights[i][j] = (float)(100 * i + j);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2 * N; j++) biases[i][j] = (float)(-100 * i - j);
    int64_t ad[3] = {-1, -1, K}, md[4] = {-1, 1, 1, -1};
    x = sym_tensor(3, ad), x2 = sym_tensor(3, ad), mask_t = sym_tensor(4, md);
    mask_t->dim_sym[1] = NULL, mask_t->dim_sym[3] = "seq";
    dt_network_add_input(net, x), dt_network_add_input(net, x2), dt_network_add_input(net, mask_t);
    static const int64_t split[4] = {0, 0, H, D}, split_wide[4] = {0, 0, H, 2 * D};
    fa = NULL;
    ductile_tensor *heads[3];
    for (int i = 0; i < 3; i++) {
        bool wide = c->wide_v && i == 2;
        int64_t n = wide ? 2 * N : N, wd[2] = {K, n}, bd[1] = {n}, od[3] = {-1, -1, n}, hd[4] = {-1, -1, H, wide ? 2 * D : D},
                sd[1] = {4};
        bool bias = !c->no_bias && !(c->v_no_bias && i == 2);
        mm[i] = layer("FusedMatMul", bias ? 3 : 2, 2);
        mm[i]->domain = "ductile";
        mm[i]->in[0] = c->other_a && i == 1 ? x2 : x;
        mm[i]->in[1] = tensor(2, wd, weights[i]);
        if (bias) mm[i]->in[2] = tensor(1, bd, biases[i]);
        if (c->k_residual && i == 1) {
            mm[i]->n_in = 4;
            mm[i]->in = dt_arena_alloc(&net->arena, sizeof *mm[i]->in * 4);
            mm[i]->in[0] = x, mm[i]->in[1] = tensor(2, wd, weights[i]), mm[i]->in[2] = tensor(1, bd, biases[i]);
            mm[i]->in[3] = x;
        }
        set_string(mm[i], "activation", c->q_gelu && i == 0 ? "Gelu" : "");
        if (c->packed_w && i == 1) attr(mm[i], "packed", DT_ATTR_INT)->i = 3;
        mm[i]->out[0] = sym_tensor(3, od);
        ductile_tensor *shape = tensor(1, sd, wide ? split_wide : split);
        shape->dtype = DUCTILE_INT64;
        shape->nbytes = sizeof split;
        rs[i] = layer("Reshape", 2, 0);
        rs[i]->in[0] = mm[i]->out[0], rs[i]->in[1] = shape;
        rs[i]->out[0] = heads[i] = sym_tensor(4, hd);
    }
    fa = attention_layer(c->plain ? "" : "bshd", 4);
    for (int i = 0; i < 3; i++) fa->in[i] = heads[i];
    fa->in[3] = mask_t;
    int64_t yd[4] = {-1, -1, H, c->wide_v ? 2 * D : D};
    fa->out[0] = sym_tensor(4, yd);
    after = layer("Relu", 1, 0);
    after->in[0] = fa->out[0], after->out[0] = sym_tensor(4, yd);
    dt_network_add_output(net, after->out[0]);
    if (c->q_read_twice) dt_network_add_output(net, heads[0]);
}

static void test_pass_merges_the_projections(void)
{
    build_projections(&(proj_case){0});
    ductile_tensor *y = fa->out[0];
    CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
    CHECK_EQ_INT(net->n_layers, 4);
    CHECK_EQ_INT(count_op("FusedMatMul"), 1);
    CHECK_EQ_INT(count_op("Reshape"), 1);
    ductile_layer *M = net->layers[0], *R = net->layers[1], *F = net->layers[2];
    CHECK_EQ_STR(M->op_type, "FusedMatMul");
    CHECK_EQ_STR(R->op_type, "Reshape");
    CHECK_EQ_STR(F->op_type, "FusedAttention");
    CHECK(net->layers[3] == after);
    /* [K, 3N]: row k = Wq[k], Wk[k], Wv[k]; bias bq, bk, bv. */
    const ductile_tensor *w = M->in[DT_FM_B], *b = M->in[DT_FM_BIAS];
    CHECK(M->in[DT_FM_A] == x && w->rank == 2 && w->dims[0] == K && w->dims[1] == 3 * N && w->dtype == DUCTILE_FLOAT32);
    CHECK(b && b->rank == 1 && b->dims[0] == 3 * N);
    int bad = 0;
    for (int k = 0; k < K; k++)
        for (int j = 0; j < 3 * N; j++) bad += ((const float *)w->data)[k * 3 * N + j] != weights[j / N][k * N + j % N];
    for (int j = 0; j < 3 * N; j++) bad += ((const float *)b->data)[j] != biases[j / N][j % N];
    CHECK_EQ_INT(bad, 0);
    /* Reshape to [batch, seq, 3, H, D] by the shape {0, 0, 3, H, D}, the attention reading it. */
    const ductile_tensor *t = M->out[0], *s = R->in[1], *h = R->out[0];
    CHECK(R->in[0] == t && t->producer == M && t->rank == 3 && t->dims[2] == 3 * N);
    CHECK(t->dim_sym[0] && !strcmp(t->dim_sym[0], "batch") && t->dim_sym[1] && !strcmp(t->dim_sym[1], "seq"));
    CHECK(s->dtype == DUCTILE_INT64 && s->rank == 1 && s->dims[0] == 5);
    static const int64_t want_shape[5] = {0, 0, 3, H, D};
    CHECK(s->data && !memcmp(s->data, want_shape, sizeof want_shape));
    CHECK(h->rank == 5 && h->dims[2] == 3 && h->dims[3] == H && h->dims[4] == D && h->producer == R);
    CHECK_EQ_INT((int)dt_attr_int(R, "allowzero", 0), 0);
    CHECK_EQ_STR(dt_attr_string(F, "layout", "?"), "bshd_qkv");
    CHECK(F->in[DT_FA_Q] == h && !F->in[DT_FA_KT] && !F->in[DT_FA_V] && F->in[DT_FA_MASK] == mask_t && F->out[0] == y);
    CHECK(dt_attr_float(F, "q_scale", 0) == 0.35f && dt_attr_float(F, "k_scale", 0) == 0.5f);
    CHECK_EQ_INT(fa_def()->check(F), DUCTILE_OK);

    build_projections(&(proj_case){.no_bias = true});     /* no biases at all: merged, none */
    CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
    CHECK_EQ_INT(count_op("FusedMatMul"), 1);
    CHECK(net->layers[0]->n_in == 2 || !net->layers[0]->in[DT_FM_BIAS]);
}

static void test_pass_leaves_projection_near_misses(void)
{
    static const proj_case misses[] = {
        {.other_a = true}, {.wide_v = true}, {.v_no_bias = true}, {.k_residual = true},
        {.q_gelu = true},  {.q_read_twice = true}, {.packed_w = true}, {.plain = true},
    };
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++) {
        build_projections(&misses[i]);
        int n = net->n_layers;
        CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
        if (count_op("FusedMatMul") != 3) fprintf(stderr, "near miss %zu merged\n", i);
        CHECK_EQ_INT(count_op("FusedMatMul"), 3);
        CHECK_EQ_INT(net->n_layers, n);
        CHECK_EQ_STR(dt_attr_string(fa, "layout", "?"), misses[i].plain ? "" : "bshd");
    }
    build_projections(&(proj_case){0});
    setenv("DUCTILE_FUSE_QKV", "0", 1);
    CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
    unsetenv("DUCTILE_FUSE_QKV");
    CHECK_EQ_INT(count_op("FusedMatMul"), 3);
    build_projections(&(proj_case){0});
    CHECK_EQ_INT(dt_pass_fuse(net), DUCTILE_OK);     /* no backend: no transformer fusions */
    CHECK_EQ_INT(count_op("FusedMatMul"), 3);
}

int main(void)
{
    refconv_rng = 0x13198a2e03707344ull;
    dt_network_new(&net);
    dt_pool *pool = NULL;
    dt_pool_create(2, &pool);
    test_packed_kernel_equals_three_inputs(NULL);
    test_packed_kernel_equals_three_inputs(pool);
    test_packed_infer_and_refusals();
    test_pass_merges_the_projections();
    test_pass_leaves_projection_near_misses();
    dt_pool_free(pool);
    dt_network_delete(net);
    TEST_MAIN_END();
}
