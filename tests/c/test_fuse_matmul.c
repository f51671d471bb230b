/* MatMul fusion: the FusedMatMul kernel against the unfused MatMul, Add, Add and Gelu kernels
 * (bit for bit) and against a double reference, at odd sizes, on raw and build-time-packed B,
 * with and without bias, residual and Gelu or SiLU, serial and on a pool; its shape errors; and the
 * fusion pass on hand-built chains, including the near misses it must leave alone. */
#include "testutil.h"
#include "refconv.h"
#include "netbuild.h"

#include "backend/cpu/families.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels.h"
#include "builder/optimize.h"
#include "core/alloc.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "ops/families.h"
#include "ops/fused.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const dt_opdef *fused_def(const char *op)
{
    for (const dt_opdef *d = dt_ops_fused; d->op_type; d++)
        if (!strcmp(d->op_type, op)) return d;
    return NULL;
}

static dt_view view_of(const ductile_tensor *t, const void *data)
{
    dt_view v = {DUCTILE_FLOAT32, t->rank, {0}, (void *)data};
    for (int i = 0; i < t->rank; i++) v.dims[i] = t->dims[i];
    return v;
}

/* ---- the kernel ---- */

typedef struct mm_case {
    int rank;           /* of A */
    int64_t a[3];       /* A's dims (last = K) */
    int64_t n;
} mm_case;

static const mm_case mm_cases[] = {
    {3, {1, 16, 64}, 48},       /* bert at seq 16: rows read in place, one panel */
    {3, {3, 7, 37}, 53},        /* odd everything, a 5-column tail */
    {2, {5, 300}, 70},          /* K past one 256 block: the epilogue after the last */
    {3, {2, 40, 19}, 97},       /* 80 rows: packed A, a partial 8-row strip */
    {1, {33}, 20},              /* a vector A */
    {2, {9, 8}, 1000},          /* more than one NC block of columns */
    {2, {64, 300}, 70},         /* packed A, two K blocks, bias/residual in the kernel's store */
    {2, {40, 8}, 1000},         /* packed A past one NC block: the column bias at jc + jp */
};

/* Runs layer L's kernel once (compiled: prepare, scratch, run). */
static ductile_status run_kernel(const char *op, const ductile_layer *L, const dt_view *in, dt_view *out, dt_pool *pool)
{
    dt_exec ex = {.pool = pool};
    dt_cpu_run_fn fn = dt_cpu_kernel_find(op);
    if (!fn) return DUCTILE_ERR_INTERNAL;
    return fn(L, in, out, &ex);
}

enum { ACT_NONE, ACT_GELU, ACT_SILU, ACTS };
static const char *const act_names[ACTS] = {"", "Gelu", "Silu"};

/* The unfused chain by its own kernels: MatMul, Add(bias), Add(R), Gelu or Sigmoid and Mul
 * (SiLU as PyTorch exports it), into y. */
static ductile_status run_unfused(const mm_case *c, const float *a, const float *b, const float *bias,
                                  const float *r, int act, float *y, dt_pool *pool)
{
    new_net();
    int64_t bd[2] = {c->a[c->rank - 1], c->n};
    ductile_tensor *ta = tensor(c->rank, c->a, NULL), *tb = tensor(2, bd, b);
    ductile_layer *M = layer("MatMul", 2, 0);
    M->in[0] = ta, M->in[1] = tb;
    dt_view in[2] = {view_of(ta, a), view_of(tb, b)}, out = {0};
    DT_TRY(dt_opdef_find("MatMul")->infer(M, in, &out));
    out.data = y;
    DT_TRY(run_kernel("MatMul", M, in, &out, pool));
    ductile_layer *A = layer("Add", 2, 0);
    dt_view ai[2] = {out, {DUCTILE_FLOAT32, 1, {c->n}, (void *)bias}};
    if (bias) DT_TRY(run_kernel("Add", A, ai, &out, pool));
    dt_view ri[2] = {out, out};
    ri[1].data = (void *)r;
    if (r) DT_TRY(run_kernel("Add", A, ri, &out, pool));
    ductile_layer *G = layer("Gelu", 1, 0);
    if (act == ACT_GELU) DT_TRY(run_kernel("Gelu", G, &out, &out, pool));
    if (act == ACT_SILU) {
        dt_view sig = out, mi[2] = {out, out};
        sig.data = malloc(sizeof(float) * (size_t)dt_view_count(&out));
        if (!sig.data) return DUCTILE_ERR_OUT_OF_MEMORY;
        ductile_status s = run_kernel("Sigmoid", layer("Sigmoid", 1, 0), &out, &sig, pool);
        mi[1] = sig;
        if (!s) s = run_kernel("Mul", layer("Mul", 2, 0), mi, &out, pool);
        free(sig.data);
        DT_TRY(s);
    }
    return DUCTILE_OK;
}

static double ref_gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

/* Packed layers are marked `bf16` (B in bfloat16 and float32) and run their tactic
 * DT_GEMM_ON_F32: the float32 copy, so the same bits as float32. */
static bool bf16_on_f32;

/* One case: FusedMatMul (B raw or packed) equals the unfused kernels exactly and the double
 * reference within 1e-5. Returns false on any difference, naming it. */
static bool run_fused_case(const mm_case *c, bool bias_on, bool res, int act, bool pack, dt_pool *pool)
{
    int64_t K = c->a[c->rank - 1], N = c->n, M = 1;
    for (int i = 0; i < c->rank - 1; i++) M *= c->a[i];
    float *a = rand_buf(M * K), *b = rand_buf(K * N), *bias = bias_on ? rand_buf(N) : NULL;
    float *r = res ? rand_buf(M * N) : NULL;
    float *y = malloc(sizeof(float) * (size_t)(M * N)), *want = malloc(sizeof(float) * (size_t)(M * N));
    double *ref = malloc(sizeof(double) * (size_t)(M * N));
    bool ok = false;
    float *packed = NULL;
    if (run_unfused(c, a, b, bias, r, act, want, pool) != DUCTILE_OK) {
        fprintf(stderr, "unfused chain failed: %s\n", ductile_last_error());
        goto out;
    }
    new_net();
    int64_t bd[2] = {K, N};
    ductile_layer *L = layer("FusedMatMul", 4, 4);
    L->domain = "ductile";
    L->in[0] = tensor(c->rank, c->a, NULL);
    L->in[1] = tensor(2, bd, b);
    L->in[2] = bias_on ? tensor(1, &N, bias) : NULL;
    L->in[3] = NULL;
    L->n_in = res ? 4 : 3;
    set_string(L, "activation", act_names[act]);
    dt_view in[4] = {view_of(L->in[0], a), view_of(L->in[1], b), {.rank = -1}, {.rank = -1}}, out = {0};
    if (bias_on) in[2] = view_of(L->in[2], bias);
    if (pack && bf16_on_f32) {
        static int64_t on32 = DT_GEMM_ON_F32;   /* the attribute keeps the pointer */
        dt_attr add[2] = {{.name = "bf16", .type = DT_ATTR_INT, .i = 1},
                          {.name = "tactic", .type = DT_ATTR_INTS, .n = 1, .ints = &on32}};
        if (dt_layer_add_attrs(net, L, add, 2) != DUCTILE_OK) goto out;
    }
    if (pack) {
        dt_prepacked pk;
        int64_t want_layout = bf16_on_f32 ? DT_CPU_PACK_GEMM_B_BF16 : DT_CPU_PACK_GEMM_B;
        if (dt_cpu_prepack(L, &pk) != DUCTILE_OK || !pk.data || pk.layout != want_layout) {
            fprintf(stderr, "prepack gave nothing\n");
            goto out;
        }
        packed = pk.data;
        int64_t nf = (int64_t)(pk.nbytes / sizeof(float));
        dt_attr add[2] = {{.name = "packed", .type = DT_ATTR_INT, .i = pk.layout},
                          {.name = "w_shape", .type = DT_ATTR_INTS, .n = 2, .ints = L->in[1]->dims}};
        if (dt_layer_add_attrs(net, L, add, 2) != DUCTILE_OK) goto out;
        L->in[1] = tensor(1, &nf, packed);
        in[1] = view_of(L->in[1], packed);
        int ids[4];
        if (bf16_on_f32 && (dt_cpu_tactics(L, in, ids, 4) != 2 || ids[0] != DT_GEMM_AS_PACKED || ids[1] != DT_GEMM_ON_F32)) {
            fprintf(stderr, "a bfloat16 FusedMatMul's tactics are not {as packed, float32}\n");
            goto out;
        }
    }
    const dt_opdef *d = fused_def("FusedMatMul");
    int n_in = L->n_in;
    L->n_in = 3;    /* R's shape is the output's, which the first infer gives */
    ductile_status s = d->check(L);
    if (!s) s = d->infer(L, in, &out);
    L->n_in = n_in;
    if (res) {
        L->in[3] = tensor(out.rank, out.dims, NULL);
        in[3] = out;
        in[3].data = r;
        if (!s) s = d->infer(L, in, &out);
    }
    if (s) {
        fprintf(stderr, "FusedMatMul check/infer: %s\n", ductile_last_error());
        goto out;
    }
    for (int64_t i = 0; i < M * N; i++) y[i] = NAN;
    out.data = y;
    if (run_kernel("FusedMatMul", L, in, &out, pool) != DUCTILE_OK) {
        fprintf(stderr, "FusedMatMul run: %s\n", ductile_last_error());
        goto out;
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++) acc += (double)a[i * K + k] * b[k * N + j];
            if (bias) acc += bias[j];
            if (r) acc += r[i * N + j];
            ref[i * N + j] = act == ACT_GELU ? ref_gelu(acc) : act == ACT_SILU ? acc / (1.0 + exp(-acc)) : acc;
        }
    double e = rel_err(y, ref, M * N);
    int64_t diff = -1;
    for (int64_t i = 0; i < M * N && diff < 0; i++)
        if (memcmp(&y[i], &want[i], sizeof(float))) diff = i;
    ok = e <= 1e-5 && diff < 0;
    if (!ok)
        fprintf(stderr, "A rank %d [%lld..] N %lld bias %d res %d act '%s' packed %d pool %d: rel err %g, first bit "
                        "difference from unfused at %lld (%.9g vs %.9g)\n",
                c->rank, (long long)c->a[0], (long long)N, bias_on, res, act_names[act], pack, pool != NULL, e,
                (long long)diff, diff >= 0 ? (double)y[diff] : 0.0, diff >= 0 ? (double)want[diff] : 0.0);
out:
    free(a), free(b), free(bias), free(r), free(y), free(want), free(ref);
    dt_free(packed);
    return ok;
}

static void test_fused_matmul_equals_unfused_kernels(dt_pool *pool)
{
    int bad = 0, ran = 0;
    for (size_t c = 0; c < sizeof mm_cases / sizeof mm_cases[0]; c++)
        for (int v = 0; v < 8 * ACTS; v++) {
            bool bias = v & 1, res = v & 2, pack = v & 4;
            bad += !run_fused_case(&mm_cases[c], bias, res, v / 8, pack, pool);
            ran++;
        }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(ran, 192);
}

/* A FusedMatMul marked `bf16` packs B in bfloat16 and float32, offers both as tactics, and
 * its float32 one gives the float32 bits (the builder's timer keeps it where bfloat16 is
 * slower: vdpbf16ps on some Xeons). Skipped, saying so, without AVX512-BF16. */
static void test_bf16_fused_matmul_runs_its_float32_copy(dt_pool *pool)
{
    if (!dt_cpu_has_bf16()) {
        fprintf(stderr, "skipped: this CPU lacks AVX512-BF16 (bf16 FusedMatMul's float32 tactic)\n");
        return;
    }
    bf16_on_f32 = true;
    int bad = 0;
    for (size_t c = 0; c < sizeof mm_cases / sizeof mm_cases[0]; c++)
        for (int v = 0; v < 4 * ACTS; v++) bad += !run_fused_case(&mm_cases[c], v & 1, v & 2, v / 4, true, pool);
    bf16_on_f32 = false;
    CHECK_EQ_INT(bad, 0);
}

/* Shapes and attributes the layer refuses, with the whole message. */
static void test_fused_matmul_refusals(void)
{
    new_net();
    static float b[6 * 4], bias[5];
    int64_t ad[2] = {3, 6}, bd[2] = {6, 4}, n5 = 5, rd[2] = {3, 5};
    ductile_layer *L = layer("FusedMatMul", 4, 2);
    L->domain = "ductile";
    L->in[0] = tensor(2, ad, NULL);
    L->in[1] = tensor(2, bd, b);
    L->in[2] = tensor(1, &n5, bias);
    L->in[3] = NULL;
    L->n_in = 3;
    const dt_opdef *d = fused_def("FusedMatMul");
    CHECK(d != NULL);
    if (!d) return;
    dt_view in[4] = {view_of(L->in[0], NULL), view_of(L->in[1], b), view_of(L->in[2], bias), {.rank = -1}}, out;
    CHECK_EQ_INT(d->infer(L, in, &out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(ductile_last_error(), "input 2 (bias) must be [4], one bias per output column");
    in[2].dims[0] = 4;
    L->in[3] = tensor(2, rd, NULL);
    L->n_in = 4;
    in[3] = view_of(L->in[3], NULL);
    CHECK_EQ_INT(d->infer(L, in, &out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(ductile_last_error(), "input 3 (R) has shape [3,5]; the residual must have the output's shape [3,4]");
    set_string(L, "activation", "Relu");
    CHECK_EQ_INT(d->check(L), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(ductile_last_error(), "attribute 'activation' = 'Relu' is not supported (supported: '', Gelu, Silu)");
}

/* ---- the pass ---- */

enum { S = 5, K = 8, N = 12 };
static float wb[K * N], wbias[N], wbias2[2 * N];
static const int64_t xs[3] = {2, S, K}, ys[3] = {2, S, N};

/* x -> MatMul(W) -> Add(bias) -> Add(residual x2) -> Gelu -> Relu, with variations. */
typedef struct chain {
    bool b_input;        /* B a network input, not a constant */
    bool bias_2d;        /* bias [1, N]: broadcasts, not a per-column bias */
    bool res_broadcast;  /* residual of shape [N] */
    bool tanh_gelu;
    bool mm_out_read_twice;
    bool no_bias;
} chain;

static ductile_layer *mm, *badd, *radd, *gelu, *relu;
static ductile_tensor *x, *x2;

static void build_chain(const chain *c)
{
    new_net();
    x = tensor(3, xs, NULL);
    x2 = c->res_broadcast ? tensor(1, (int64_t[]){N}, NULL) : tensor(3, ys, NULL);
    dt_network_add_input(net, x);
    dt_network_add_input(net, x2);
    int64_t bd[2] = {K, N};
    mm = layer("MatMul", 2, 0);
    mm->in[0] = x;
    mm->in[1] = tensor(2, bd, c->b_input ? NULL : wb);
    if (c->b_input) dt_network_add_input(net, mm->in[1]);
    mm->out[0] = tensor(3, ys, NULL);
    ductile_tensor *t = mm->out[0];
    badd = NULL;
    if (!c->no_bias) {
        badd = layer("Add", 2, 0);
        badd->in[0] = c->bias_2d ? tensor(2, (int64_t[]){1, N}, wbias2) : tensor(1, (int64_t[]){N}, wbias);
        badd->in[1] = t; /* bias first, as exporters write it */
        badd->out[0] = tensor(3, ys, NULL);
        t = badd->out[0];
    }
    radd = layer("Add", 2, 0);
    radd->in[0] = t;
    radd->in[1] = x2;
    radd->out[0] = tensor(3, ys, NULL);
    gelu = layer("Gelu", 1, 1);
    gelu->in[0] = radd->out[0];
    gelu->out[0] = tensor(3, ys, NULL);
    if (c->tanh_gelu) set_string(gelu, "approximate", "tanh");
    relu = layer("Relu", 1, 0);
    relu->in[0] = gelu->out[0];
    relu->out[0] = tensor(3, ys, NULL);
    dt_network_add_output(net, relu->out[0]);
    if (c->mm_out_read_twice) dt_network_add_output(net, mm->out[0]);
}

static void test_pass_fuses_matmul_bias_residual_gelu(void)
{
    build_chain(&(chain){0});
    ductile_tensor *bias = badd->in[0], *w = mm->in[1], *y = gelu->out[0];
    CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
    CHECK_EQ_INT(net->n_layers, 2);
    ductile_layer *F = net->layers[0];
    CHECK_EQ_STR(F->op_type, "FusedMatMul");
    CHECK_EQ_STR(F->domain, "ductile");
    CHECK_EQ_INT(F->n_in, 4);
    CHECK(F->in[DT_FM_A] == x && F->in[DT_FM_B] == w && F->in[DT_FM_BIAS] == bias && F->in[DT_FM_R] == x2);
    CHECK(F->out[0] == y && y->producer == F);
    CHECK_EQ_STR(dt_attr_string(F, "activation", "?"), "Gelu");
    CHECK(net->layers[1] == relu);
}

/* Bias-free (Llama's projections): the residual Add is no bias, and fuses as the residual; a
 * SiLU (Sigmoid and Mul of the product) fuses as the activation; a Sigmoid alone stays. */
static void test_pass_fuses_bias_free_residual_and_silu(void)
{
    build_chain(&(chain){.no_bias = true});
    ductile_tensor *w = mm->in[1], *y = gelu->out[0];
    CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
    CHECK_EQ_INT(net->n_layers, 2);
    ductile_layer *F = net->layers[0];
    CHECK_EQ_STR(F->op_type, "FusedMatMul");
    CHECK_EQ_INT(F->n_in, 4);
    CHECK(F->in[DT_FM_A] == x && F->in[DT_FM_B] == w && !F->in[DT_FM_BIAS] && F->in[DT_FM_R] == x2);
    CHECK(F->out[0] == y && y->producer == F);
    CHECK_EQ_STR(dt_attr_string(F, "activation", "?"), "Gelu");

    for (int gate_only = 0; gate_only < 2; gate_only++) {
        new_net();
        x = tensor(3, xs, NULL);
        dt_network_add_input(net, x);
        mm = layer("MatMul", 2, 0);
        mm->in[0] = x;
        mm->in[1] = tensor(2, (int64_t[]){K, N}, wb);
        mm->out[0] = tensor(3, ys, NULL);
        ductile_layer *sg = layer("Sigmoid", 1, 0);
        sg->in[0] = mm->out[0];
        sg->out[0] = tensor(3, ys, NULL);
        ductile_tensor *o = sg->out[0];
        if (!gate_only) {
            ductile_layer *mul = layer("Mul", 2, 0);
            mul->in[0] = sg->out[0];   /* Sigmoid first: either order is x * Sigmoid(x) */
            mul->in[1] = mm->out[0];
            mul->out[0] = o = tensor(3, ys, NULL);
        }
        dt_network_add_output(net, o);
        CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
        CHECK_EQ_INT(net->n_layers, gate_only ? 2 : 1);
        CHECK_EQ_STR(net->layers[0]->op_type, gate_only ? "MatMul" : "FusedMatMul");
        if (!gate_only) {
            F = net->layers[0];
            CHECK(F->n_in == 3 && !F->in[DT_FM_BIAS] && F->out[0] == o && o->producer == F);
            CHECK_EQ_STR(dt_attr_string(F, "activation", "?"), "Silu");
        }
    }
}

static void test_pass_without_backend_kernel_leaves_matmul(void)
{
    build_chain(&(chain){0});
    CHECK_EQ_INT(dt_pass_fuse(net), DUCTILE_OK);
    CHECK_EQ_INT(count_op("FusedMatMul"), 0);
    CHECK_EQ_INT(net->n_layers, 5);
}

/* Each near miss: what stays a layer of its own. */
static void test_pass_leaves_near_misses(void)
{
    const dt_backend *cpu = dt_backend_host();
    build_chain(&(chain){.b_input = true});   /* B not a constant: nothing to pack, no fusion */
    CHECK_EQ_INT(dt_pass_fuse_for(net, cpu), DUCTILE_OK);
    CHECK_EQ_INT(count_op("FusedMatMul"), 0);
    CHECK_EQ_INT(net->n_layers, 5);

    build_chain(&(chain){.bias_2d = true});   /* a [1, N] bias would broadcast the rank */
    CHECK_EQ_INT(dt_pass_fuse_for(net, cpu), DUCTILE_OK);
    CHECK_EQ_INT(count_op("FusedMatMul"), 0);

    build_chain(&(chain){.mm_out_read_twice = true});   /* the product is a network output */
    CHECK_EQ_INT(dt_pass_fuse_for(net, cpu), DUCTILE_OK);
    CHECK_EQ_INT(count_op("FusedMatMul"), 0);

    build_chain(&(chain){.res_broadcast = true});   /* bias fuses; the broadcast Add stays */
    CHECK_EQ_INT(dt_pass_fuse_for(net, cpu), DUCTILE_OK);
    CHECK_EQ_INT(net->n_layers, 4);
    CHECK_EQ_STR(net->layers[0]->op_type, "FusedMatMul");
    CHECK_EQ_INT(net->layers[0]->n_in, 3);
    CHECK_EQ_STR(dt_attr_string(net->layers[0], "activation", "?"), "");
    CHECK(net->layers[1] == radd && radd->in[0] == net->layers[0]->out[0]);

    build_chain(&(chain){.tanh_gelu = true});   /* the epilogue's Gelu is erf's only */
    CHECK_EQ_INT(dt_pass_fuse_for(net, cpu), DUCTILE_OK);
    CHECK_EQ_INT(net->n_layers, 3);
    CHECK_EQ_STR(dt_attr_string(net->layers[0], "activation", "?"), "");
    CHECK(net->layers[1] == gelu);
}

int main(void)
{
    refconv_rng = 0x9e3779b97f4a7c15ull;
    dt_network_new(&net);
    dt_pool *pool = NULL;
    dt_pool_create(2, &pool);
    test_fused_matmul_equals_unfused_kernels(NULL);
    test_fused_matmul_equals_unfused_kernels(pool);
    test_bf16_fused_matmul_runs_its_float32_copy(pool);
    test_fused_matmul_refusals();
    test_pass_fuses_matmul_bias_residual_gelu();
    test_pass_fuses_bias_free_residual_and_silu();
    test_pass_without_backend_kernel_leaves_matmul();
    test_pass_leaves_near_misses();
    dt_pool_free(pool);
    dt_network_delete(net);
    TEST_MAIN_END();
}
