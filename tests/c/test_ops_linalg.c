/* Conv, Gemm and MatMul: the fast CPU kernels against naive loops (double accumulation) on
 * random data at odd sizes, single-threaded and on a 2-thread pool; and the shape and
 * attribute errors that infer and check report. */
#include "ophelp.h"

#include "core/alloc.h"
#include "backend/cpu/families.h"
#include "backend/cpu/conv.h"
#include "backend/cpu/exp_approx.h"
#include "backend/cpu/gemm.h"
#include "core/status.h"
#include "graph/network.h"
#include "ops/families.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>




/* ---- layers built by hand ---- */

static int name_counter;

static ductile_layer *make_layer(const char *op, int n_in, int n_attr)
{
    char name[32];
    snprintf(name, sizeof name, "l%d", name_counter++);
    ductile_layer *L = dt_network_add_layer(net, op, name, n_in, 1, n_attr);
    for (int i = 0; i < n_in; i++) {
        snprintf(name, sizeof name, "t%d", name_counter++);
        L->in[i] = dt_network_add_tensor(net, name);
    }
    snprintf(name, sizeof name, "t%d", name_counter++);
    L->out[0] = dt_network_add_tensor(net, name);
    L->opset = 13;
    L->n_attr = 0; /* filled by the set_* helpers up to the capacity given */
    return L;
}

static void set_int(ductile_layer *L, const char *name, int64_t v)
{
    dt_attr *a = &L->attrs[L->n_attr++];
    a->name = name;
    a->type = DT_ATTR_INT;
    a->i = v;
}

static void set_float(ductile_layer *L, const char *name, float v)
{
    dt_attr *a = &L->attrs[L->n_attr++];
    a->name = name;
    a->type = DT_ATTR_FLOAT;
    a->f = v;
}

static void set_str(ductile_layer *L, const char *name, const char *s)
{
    dt_attr *a = &L->attrs[L->n_attr++];
    a->name = name;
    a->type = DT_ATTR_STRING;
    a->s = s;
    a->s_len = strlen(s);
}

static void set_ints(ductile_layer *L, const char *name, const int64_t *v, int n)
{
    dt_attr *a = &L->attrs[L->n_attr++];
    a->name = name;
    a->type = DT_ATTR_INTS;
    a->n = n;
    a->ints = dt_arena_memdup(&net->arena, v, sizeof *v * (size_t)n);
}

static dt_view view(int rank, const int64_t *dims, float *data)
{
    dt_view v = {DUCTILE_FLOAT32, rank, {0}, data};
    for (int i = 0; i < rank; i++) v.dims[i] = dims[i];
    return v;
}

static const dt_view absent = {DUCTILE_FLOAT32, -1, {0}, NULL};

/* check + infer + run; the output buffer is malloc'd into out->data (caller frees). */
static ductile_status run_layer(ductile_layer *L, const dt_view *in, dt_view *out, dt_pool *pool)
{
    const dt_opdef *d = opdef(L->op_type);
    if (!d) return DUCTILE_ERR_INTERNAL;
    DT_TRY(d->check(L));
    memset(out, 0, sizeof *out);
    DT_TRY(d->infer(L, in, out));
    int64_t n = dt_view_count(out);
    out->data = malloc(sizeof(float) * (size_t)(n ? n : 1));
    /* NaN in the output buffer: a kernel that reads it instead of writing fails the test. */
    for (int64_t i = 0; i < n; i++) ((float *)out->data)[i] = NAN;
    dt_exec ex = {.pool = pool};
    ductile_status s = kernel(L->op_type)(L, in, out, &ex);
    if (s) { /* the caller frees the output only on success */
        free(out->data);
        out->data = NULL;
    }
    return s;
}

/* ---- sgemm ---- */

static void ref_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                     const float *A, const float *B, double *C)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += (double)(ta ? A[k * M + i] : A[i * K + k]) *
                     (double)(tb ? B[j * K + k] : B[k * N + j]);
            C[i * N + j] = alpha * s;
        }
}

static void test_sgemm_odd_sizes_match_reference(dt_pool *pool)
{
    static const int64_t sz[] = {1, 3, 17, 63, 100, 129};
    int bad = 0;
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++)
            for (int c = 0; c < 6; c++) {
                int64_t M = sz[a], N = sz[b], K = sz[c];
                bool ta = (a + c) & 1, tb = (b + c) & 1;
                float *A = rand_buf(M * K), *B = rand_buf(K * N), *C = rand_buf(M * N);
                double *R = malloc(sizeof(double) * (size_t)(M * N));
                ref_gemm(ta, tb, M, N, K, 1.0, A, B, R);
                dt_gemm g = {.M = M, .N = N, .K = K, .alpha = 1, .beta = 0, .A = A,
                             .lda = ta ? M : K, .trans_a = ta, .B = B, .ldb = tb ? K : N,
                             .trans_b = tb, .C = C, .ldc = N};
                CHECK_EQ_INT(dt_sgemm(&g, pool), DUCTILE_OK);
                double e = rel_err(C, R, M * N);
                if (!(e <= 1e-4)) {
                    bad++;
                    fprintf(stderr, "sgemm %lldx%lldx%lld ta=%d tb=%d: rel err %g\n",
                            (long long)M, (long long)N, (long long)K, ta, tb, e);
                }
                free(A), free(B), free(C), free(R);
            }
    CHECK_EQ_INT(bad, 0);
}

/* Sizes past every cache block (KC, NC, MC), with a leading dim wider than the matrix, beta
 * and a row bias: the block loops and the epilogue. */
static void test_sgemm_large_blocks_beta_bias(dt_pool *pool)
{
    int64_t M = 530, N = 1001, K = 300, ldc = N + 5;
    float *A = rand_buf(M * K), *B = rand_buf(K * N), *C = rand_buf(M * ldc), *bias = rand_buf(M);
    double *R = malloc(sizeof(double) * (size_t)(M * N));
    ref_gemm(false, false, M, N, K, 0.5, A, B, R);
    float *got = malloc(sizeof(float) * (size_t)(M * N));
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) R[i * N + j] += 2.0 * C[i * ldc + j] + bias[i];
    float pad_before = C[ldc - 1];
    dt_gemm g = {.M = M, .N = N, .K = K, .alpha = 0.5f, .beta = 2.0f, .A = A, .lda = K, .B = B,
                 .ldb = N, .C = C, .ldc = ldc, .bias = bias};
    CHECK_EQ_INT(dt_sgemm(&g, pool), DUCTILE_OK);
    for (int64_t i = 0; i < M; i++) memcpy(got + i * N, C + i * ldc, sizeof(float) * (size_t)N);
    CHECK(rel_err(got, R, M * N) <= 1e-4);
    CHECK(C[ldc - 1] == pad_before); /* columns past N are not written */
    free(A), free(B), free(C), free(bias), free(R), free(got);
}

/* ---- Gemm op ---- */

static void test_gemm_op_trans_alpha_beta_broadcast(dt_pool *pool)
{
    int64_t M = 17, N = 63, K = 100;
    /* C shapes: none, scalar, [N], [1,N], [M,1], [M,N] */
    static const int crank[] = {-1, 0, 1, 2, 2, 2};
    static const int64_t cdims[][2] = {{0, 0}, {0, 0}, {63, 0}, {1, 63}, {17, 1}, {17, 63}};
    for (int ci = 0; ci < 6; ci++)
        for (int t = 0; t < 4; t++) {
            bool ta = t & 1, tb = t & 2;
            ductile_layer *L = make_layer("Gemm", crank[ci] < 0 ? 2 : 3, 4);
            set_int(L, "transA", ta);
            set_int(L, "transB", tb);
            set_float(L, "alpha", 0.75f);
            set_float(L, "beta", -1.5f);
            float *A = rand_buf(M * K), *B = rand_buf(K * N), *C = rand_buf(M * N);
            int64_t ad[2] = {ta ? K : M, ta ? M : K}, bd[2] = {tb ? N : K, tb ? K : N};
            dt_view in[3] = {view(2, ad, A), view(2, bd, B), view(crank[ci], cdims[ci], C)};
            dt_view out;
            CHECK_EQ_INT(run_layer(L, in, &out, pool), DUCTILE_OK);
            CHECK_EQ_INT(out.rank, 2);
            CHECK_EQ_INT(out.dims[0], M);
            CHECK_EQ_INT(out.dims[1], N);
            double *R = malloc(sizeof(double) * (size_t)(M * N));
            ref_gemm(ta, tb, M, N, K, 0.75, A, B, R);
            if (crank[ci] >= 0) {
                int64_t cm = crank[ci] == 2 ? cdims[ci][0] : 1;
                int64_t cn = crank[ci] == 2 ? cdims[ci][1] : crank[ci] == 1 ? cdims[ci][0] : 1;
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++)
                        R[i * N + j] += -1.5 * C[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
            }
            double e = rel_err(out.data, R, M * N);
            if (!(e <= 1e-4)) fprintf(stderr, "Gemm C case %d trans %d: rel err %g\n", ci, t, e);
            CHECK(e <= 1e-4);
            free(A), free(B), free(C), free(R), free(out.data);
        }
}

static void test_gemm_errors_name_inputs(void)
{
    ductile_layer *L = make_layer("Gemm", 2, 1);
    set_int(L, "transA", 2);
    CHECK_EQ_INT(opdef("Gemm")->check(L), DUCTILE_ERR_UNSUPPORTED);
    CHECK(strstr(dt_last_error(), "'transA' = 2") != NULL);

    L = make_layer("Gemm", 3, 0);
    int64_t ad[2] = {4, 5}, bd[2] = {6, 7}, cd[2] = {4, 3};
    dt_view in[3] = {view(2, ad, NULL), view(2, bd, NULL), view(2, cd, NULL)}, out;
    CHECK_EQ_INT(opdef("Gemm")->infer(L, in, &out), DUCTILE_ERR_SHAPE);
    CHECK(strstr(dt_last_error(), "input 0 (A) [4,5]") && strstr(dt_last_error(), "K = 6"));
    bd[0] = 5;
    in[1] = view(2, bd, NULL);
    CHECK_EQ_INT(opdef("Gemm")->infer(L, in, &out), DUCTILE_ERR_SHAPE);
    CHECK(strstr(dt_last_error(), "input 2 (C) has shape [4,3]") != NULL);
}

/* ---- MatMul op ---- */

static void test_matmul_broadcast_and_1d(dt_pool *pool)
{
    static const struct { int ra; int64_t a[4]; int rb; int64_t b[4]; int ro; int64_t o[4]; } cs[] = {
        {3, {2, 17, 63}, 2, {63, 100}, 3, {2, 17, 100}},          /* stacked A, shared B */
        {4, {2, 4, 13, 16}, 4, {2, 4, 16, 13}, 4, {2, 4, 13, 13}}, /* attention scores */
        {4, {2, 3, 5, 4}, 3, {1, 4, 6}, 4, {2, 3, 5, 6}},
        {2, {5, 4}, 4, {2, 3, 4, 6}, 4, {2, 3, 5, 6}},            /* A broadcast over B */
        {3, {3, 1, 4}, 4, {2, 1, 4, 9}, 4, {2, 3, 1, 9}},
        {1, {4}, 1, {4}, 0, {0}},                                  /* dot product */
        {1, {7}, 3, {2, 7, 6}, 2, {2, 6}},
        {3, {2, 5, 7}, 1, {7}, 2, {2, 5}},
        {2, {1, 129}, 2, {129, 1}, 2, {1, 1}},
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        ductile_layer *L = make_layer("MatMul", 2, 0);
        dt_view a = view(cs[c].ra, cs[c].a, NULL), b = view(cs[c].rb, cs[c].b, NULL);
        a.data = rand_buf(dt_view_count(&a));
        b.data = rand_buf(dt_view_count(&b));
        dt_view in[2] = {a, b}, out;
        CHECK_EQ_INT(run_layer(L, in, &out, pool), DUCTILE_OK);
        CHECK_EQ_INT(out.rank, cs[c].ro);
        for (int i = 0; i < cs[c].ro && i == 0; i++)
            for (int k = 0; k < cs[c].ro; k++) CHECK_EQ_INT(out.dims[k], cs[c].o[k]);
        /* Reference: promote 1-D, broadcast batch by index arithmetic. */
        int64_t M = a.rank >= 2 ? a.dims[a.rank - 2] : 1, K = a.dims[a.rank - 1];
        int64_t N = b.rank >= 2 ? b.dims[b.rank - 1] : 1;
        int ra = a.rank > 2 ? a.rank - 2 : 0, rb = b.rank > 2 ? b.rank - 2 : 0;
        int r = ra > rb ? ra : rb;
        int64_t bat[8], nb = 1;
        for (int i = 0; i < r; i++) {
            int ia = i - (r - ra), ib = i - (r - rb);
            int64_t da = ia >= 0 ? a.dims[ia] : 1, db = ib >= 0 ? b.dims[ib] : 1;
            bat[i] = da > db ? da : db;
            nb *= bat[i];
        }
        double *R = malloc(sizeof(double) * (size_t)(nb * M * N));
        for (int64_t bi = 0; bi < nb; bi++) {
            int64_t rest = bi, ao = 0, bo = 0, as = M * K, bs = K * N;
            for (int i = r - 1; i >= 0; i--) {
                int64_t idx = rest % bat[i];
                rest /= bat[i];
                int ia = i - (r - ra), ib = i - (r - rb);
                int64_t da = ia >= 0 ? a.dims[ia] : 1, db = ib >= 0 ? b.dims[ib] : 1;
                if (da > 1) ao += idx * as;
                if (db > 1) bo += idx * bs;
                as *= da;
                bs *= db;
            }
            ref_gemm(false, false, M, N, K, 1.0, (float *)a.data + ao, (float *)b.data + bo,
                     R + bi * M * N);
        }
        double e = rel_err(out.data, R, nb * M * N);
        if (!(e <= 1e-4)) fprintf(stderr, "MatMul case %zu: rel err %g\n", c, e);
        CHECK(e <= 1e-4);
        free(a.data), free(b.data), free(out.data), free(R);
    }
}

static void test_matmul_errors_name_inputs(void)
{
    ductile_layer *L = make_layer("MatMul", 2, 0);
    int64_t ad[3] = {2, 5, 4}, bd[3] = {3, 4, 6};
    dt_view in[2] = {view(3, ad, NULL), view(3, bd, NULL)}, out;
    CHECK_EQ_INT(opdef("MatMul")->infer(L, in, &out), DUCTILE_ERR_SHAPE);
    CHECK(strstr(dt_last_error(), "batch dim 0 is 2 and 3") != NULL);
    bd[0] = 2;
    bd[1] = 5;
    in[1] = view(3, bd, NULL);
    CHECK_EQ_INT(opdef("MatMul")->infer(L, in, &out), DUCTILE_ERR_SHAPE);
    CHECK(strstr(dt_last_error(), "input 0 (A) [2,5,4] has K = 4") != NULL);
}

/* ---- B packed at build time (MatMul and Gemm with a constant B) ---- */

/* dt_gemm_pack_b_full + B_packed against the reference at odd sizes, past KC (300) and NC
 * (1001 columns), both storage orders of B: the panel offsets of every K block. */
static void test_sgemm_packed_b_matches_reference(dt_pool *pool)
{
    static const int64_t ms[] = {1, 3, 17, 100}, ns[] = {1, 17, 63, 1001}, ks[] = {3, 100, 300};
    int bad = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 3; c++) {
                int64_t M = ms[a], N = ns[b], K = ks[c];
                bool tb = (a + b + c) & 1;
                float *A = rand_buf(M * K), *B = rand_buf(K * N), *C = rand_buf(M * N);
                float *P = malloc(sizeof(float) * (size_t)dt_gemm_packed_b_floats(N, K));
                dt_gemm_pack_b_full(B, tb ? K : N, tb, K, N, P);
                double *R = malloc(sizeof(double) * (size_t)(M * N));
                /* alpha 1 reads A in place under a packed B; else A is packed */
                float alpha = c == 1 ? 1.0f : 0.75f;
                ref_gemm(false, tb, M, N, K, alpha, A, B, R);
                dt_gemm g = {.M = M, .N = N, .K = K, .alpha = alpha, .beta = 0, .A = A, .lda = K,
                             .B_packed = P, .C = C, .ldc = N};
                CHECK_EQ_INT(dt_sgemm(&g, pool), DUCTILE_OK);
                double e = rel_err(C, R, M * N);
                if (!(e <= 1e-4)) {
                    bad++;
                    fprintf(stderr, "packed-B sgemm %lldx%lldx%lld tb=%d: rel err %g\n",
                            (long long)M, (long long)N, (long long)K, tb, e);
                }
                free(A), free(B), free(C), free(P), free(R);
            }
    CHECK_EQ_INT(bad, 0);
}

/* A FusedMatMul-shaped product's operands at random: A [M, K], B [K, N] and B packed at
 * build time (P), two outputs, the column bias and the residual. */
typedef struct {
    float *A, *B, *P, *C1, *C2, *bias, *res;
} fm_operands;

static fm_operands fm_operands_new(int64_t M, int64_t N, int64_t K)
{
    fm_operands o = {rand_buf(M * K), rand_buf(K * N), malloc(sizeof(float) * (size_t)dt_gemm_packed_b_floats(N, K)),
                     rand_buf(M * N), rand_buf(M * N), rand_buf(N), rand_buf(M * N)};
    dt_gemm_pack_b_full(o.B, N, false, K, N, o.P);
    return o;
}

static void fm_operands_free(fm_operands *o)
{
    free(o->A), free(o->B), free(o->P), free(o->C1), free(o->C2), free(o->bias), free(o->res);
}

/* 1 (and the case named) where two M x N outputs differ in any bit. */
static int fm_bits_differ(const float *x, const float *y, int64_t M, int64_t N, int64_t K, const char *what)
{
    if (!memcmp(x, y, sizeof(float) * (size_t)(M * N))) return 0;
    fprintf(stderr, "%s %lldx%lldx%lld: bits differ\n", what, (long long)M, (long long)N, (long long)K);
    return 1;
}

/* Under a B packed at build time, A is read in place at any number of rows (alpha 1): the
 * same bits as the same product with B unpacked (A packed, B packed per block, the narrow
 * kernel for a last panel of few columns), with FusedMatMul's epilogue (column bias, residual,
 * Gelu) in the store, at odd sizes past one MC block (512 rows) and KC, and on a pool. */
static void test_packed_b_in_place_a_same_bits(dt_pool *pool)
{
    static const int64_t ms[] = {33, 77, 530}, ns[] = {17, 63, 257}, ks[] = {7, 300};
    int bad = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 2; c++) {
                int64_t M = ms[a], N = ns[b], K = ks[c];
                fm_operands o = fm_operands_new(M, N, K);
                dt_act act = (a + b + c) & 1 ? DT_ACT_GELU : DT_ACT_NONE;
                dt_epilogue epi = {.act = act, .res = o.res, .col_bias = o.bias};
                dt_gemm g = {.M = M, .N = N, .K = K, .alpha = 1, .beta = 0, .A = o.A, .lda = K, .B = o.B, .ldb = N,
                             .C = o.C1, .ldc = N, .epi = &epi};
                CHECK_EQ_INT(dt_sgemm(&g, pool), DUCTILE_OK);
                g.B = NULL, g.B_packed = o.P, g.C = o.C2;
                CHECK_EQ_INT(dt_sgemm(&g, pool), DUCTILE_OK);
                bad += fm_bits_differ(o.C1, o.C2, M, N, K, "in-place A under packed B");
                fm_operands_free(&o);
            }
    CHECK_EQ_INT(bad, 0);
}

/* Under a B packed at build time, A read in place sums K in blocks of 512 (DT_GEMM_KC_DEEP)
 * from K = 512: each element is the k-ordered fused multiply-add chain of each block, the
 * blocks added in order onto C, then FusedMatMul's epilogue (column bias, residual, Gelu) as
 * the unfused kernels would apply it; computed here the same way, bit for bit, at odd sizes
 * (M past one 512-row block, a partial strip and panel, a short last K block). */
static void test_packed_b_deep_k_blocks_of_512(dt_pool *pool)
{
    static const int64_t cases[][3] = {{530, 63, 1030}, {13, 257, 512}, {9, 50, 777}};
    int bad = 0;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int64_t M = cases[t][0], N = cases[t][1], K = cases[t][2];
        fm_operands o = fm_operands_new(M, N, K);
        dt_epilogue epi = {.act = t & 1 ? DT_ACT_NONE : DT_ACT_GELU, .res = o.res, .col_bias = o.bias};
        dt_gemm g = {.M = M, .N = N, .K = K, .alpha = 1, .beta = 0, .A = o.A, .lda = K, .B_packed = o.P, .C = o.C1,
                     .ldc = N, .epi = &epi};
        CHECK_EQ_INT(dt_sgemm(&g, pool), DUCTILE_OK);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                float c = 0.0f;
                for (int64_t k0 = 0; k0 < K; k0 += 512) {
                    float acc = 0.0f;
                    for (int64_t k = k0; k < K && k < k0 + 512; k++) acc = fmaf(o.A[i * K + k], o.B[k * N + j], acc);
                    c = k0 == 0 ? acc + 0.0f : acc + c;
                }
                o.C2[i * N + j] = (c + o.bias[j]) + o.res[i * N + j];
            }
        if (epi.act == DT_ACT_GELU) {
            dt_epilogue gelu = {.act = DT_ACT_GELU};
            dt_epilogue_apply(&gelu, o.C2, NULL, M * N);
        }
        bad += fm_bits_differ(o.C1, o.C2, M, N, K, "in-place A, packed B, K blocks of 512,");
        fm_operands_free(&o);
    }
    CHECK_EQ_INT(bad, 0);
}

/* dt_gemm_pack_a_full (which packs through dt_gemm_pack_a8 where the CPU has AVX2) writes
 * exactly alpha * A[i][k] at [panel][k][i], zeros past M, at every size class: rows that fill
 * whole 8-row panels and a partial one, K with and without a tail past whole 8-column blocks,
 * a row stride wider than K, alpha 1 and not, both storage orders. */
static void test_pack_a_full_exact(void)
{
    static const int64_t ms[] = {1, 8, 13, 24}, ks[] = {1, 8, 21, 64};
    static const float alphas[] = {1.0f, 0.3f};
    int bad = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int t = 0; t < 2; t++)
                for (int al = 0; al < 2; al++) {
                    int64_t M = ms[a], K = ks[b], ld = (t ? M : K) + 3;
                    float *A = rand_buf((t ? K : M) * ld);
                    int64_t nf = dt_gemm_packed_a_floats(M, K);
                    float *P = malloc(sizeof(float) * (size_t)nf);
                    dt_gemm_pack_a_full(A, ld, t, alphas[al], M, K, P);
                    for (int64_t i = 0; i < (M + 7) / 8 * 8; i++)
                        for (int64_t k = 0; k < K; k++) {
                            float want = i < M ? alphas[al] * A[t ? k * ld + i : i * ld + k] : 0.0f;
                            float got = P[i / 8 * 8 * K + k * 8 + i % 8];
                            if (memcmp(&want, &got, sizeof want) && bad++ < 3)
                                fprintf(stderr, "pack A %lldx%lld trans %d alpha %g: [%lld][%lld] %.9g, want %.9g\n",
                                        (long long)M, (long long)K, t, (double)alphas[al], (long long)i, (long long)k,
                                        (double)got, (double)want);
                        }
                    free(A), free(P);
                }
    CHECK_EQ_INT(bad, 0);
}

/* An activation in the kernel's store (dt_gemm_kernel_avx512_epi) against the plain kernel
 * then the epilogue pass (dt_epilogue_apply): the values special[] first, then a sweep of
 * [lo, hi] over `blocks` rows of 48. The tile is a 1 x 48 row times one A value of 1, so C holds
 * the values exactly. Returns the count of values whose bits differ; with any_nan a NaN matches
 * any NaN (counted in *nans). */
static int store_vs_pass(dt_gemm_kernel_epi_fn kepi, dt_act act, const float *special, int n_special, float lo, float hi,
                         int blocks, bool any_nan, int *nans)
{
    enum { NV = 3, NRW = 48 };
    int bad = 0;
    float a[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    dt_epilogue epi = {.act = act};
    for (int blk = 0; blk < blocks; blk++) {
        float b[NRW], c1[8 * NRW], c2[8 * NRW];
        for (int j = 0; j < NRW; j++) {
            int idx = blk * NRW + j;
            b[j] = idx < n_special ? special[idx] : lo + (hi - lo) * (float)(idx - n_special) / ((float)blocks * NRW);
        }
        dt_gemm_kernel_select()(1, a, b, NRW, NV, c1, NRW, 1, NRW, true, 0.0f, NULL);
        dt_epilogue_apply(&epi, c1, NULL, NRW);
        kepi(1, a, b, NRW, NV, c2, NRW, 1, NRW, true, 0.0f, NULL, &epi, NULL);
        for (int j = 0; j < NRW; j++) {
            if (any_nan && isnan(c1[j]) && isnan(c2[j])) {
                ++*nans;
                continue;
            }
            if (memcmp(&c1[j], &c2[j], sizeof(float)) && bad++ < 3)
                fprintf(stderr, "activation %d in store at %.9g: %.9g, the pass %.9g\n", (int)act, (double)b[j],
                        (double)c2[j], (double)c1[j]);
        }
    }
    return bad;
}

/* Gelu (dt_gelu_approx's lane copy): the same bits over a dense sweep of both branches and the
 * tails, and at +-0, +-inf, NaN, the largest floats and denormals. */
static void test_gelu_in_store_matches_pass(void)
{
    dt_gemm_kernel_epi_fn kepi = dt_gemm_kernel_epi_select();
    if (!kepi) return;   /* no epilogue kernel here (no AVX-512): the pass runs everywhere */
    static const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 3.4e38f, -3.4e38f, 1e-40f, -1e-40f,
                                    5.656854f, -5.656854f, 1.3037f, -1.3037f, 0.921875f * 1.41421356f};
    int nans = 0;
    CHECK_EQ_INT(store_vs_pass(kepi, DT_ACT_GELU, special, (int)(sizeof special / sizeof special[0]), -12.0f, 12.0f,
                               700, false, &nans),
                 0);
}

/* Sigmoid and Silu (dt_sigmoid_vecs, which the direct convolutions' lanes run too) give the
 * pass's bits, whose forms are the Sigmoid kernel's and the Mul after it: over specials (zeros,
 * infinities, a NaN, the exponential's clamps at -87 and 88, subnormals) and a sweep of
 * [-100, 100]. A NaN must stay a NaN (its sign is the compiler's). */
static void test_sigmoid_silu_in_store_match_pass(void)
{
    dt_gemm_kernel_epi_fn kepi = dt_gemm_kernel_epi_select();
    if (!kepi) return;
    static const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 3.4e38f, -3.4e38f, 1e-40f, -1e-40f,
                                    87.0f, -87.0f, 88.0f, -88.0f, 87.5f, -87.5f, 103.0f, -103.0f, 1e-7f, 0.5f};
    int n = (int)(sizeof special / sizeof special[0]), nans = 0;
    CHECK_EQ_INT(store_vs_pass(kepi, DT_ACT_SIGMOID, special, n, -100.0f, 100.0f, 400, true, &nans), 0);
    CHECK_EQ_INT(store_vs_pass(kepi, DT_ACT_SILU, special, n, -100.0f, 100.0f, 400, true, &nans), 0);
    CHECK_EQ_INT(nans, 2);
}

/* The lean sigmoid (dt_sigmoid_lean_vecs through dt_epilogue_apply) within 1.5e-4 of
 * 1 / (1 + exp(-x)) in double, relative, Sigmoid and Silu, over every 64th float of
 * [-126 ln 2, 126 ln 2] (where the sigmoid is a normal float) and the limits past it: 0 and 1
 * (Silu: 0 and x) within 1.5e-4 of the value too; an infinite x gives 0 or 1 (Silu: -inf, as
 * the exact form's x * tiny, and inf), a NaN a NaN. */
static void test_lean_sigmoid_error(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) return;   /* never chosen without AVX-512 */
    enum { CHUNK = 4096 };
    float *x = malloc(sizeof(float) * CHUNK), *s = malloc(sizeof(float) * CHUNK), *u = malloc(sizeof(float) * CHUNK);
    dt_epilogue sig = {.act = DT_ACT_SIGMOID_LEAN}, silu = {.act = DT_ACT_SILU_LEAN};
    double worst_s = 0, worst_u = 0;
    int64_t count = 0;
    float top = 87.3f;   /* 126 ln 2: past it the sigmoid's 2^y is clamped */
    uint32_t last;
    memcpy(&last, &top, 4);
    for (uint32_t bits = 0; bits <= last;) {
        int k = 0;
        for (; k + 2 <= CHUNK && bits <= last; bits += 64) {
            float v;
            memcpy(&v, &bits, 4);
            x[k++] = v;
            x[k++] = -v;
        }
        memcpy(s, x, sizeof(float) * (size_t)k);
        memcpy(u, x, sizeof(float) * (size_t)k);
        dt_epilogue_apply(&sig, s, NULL, k);
        dt_epilogue_apply(&silu, u, NULL, k);
        for (int i = 0; i < k; i++) {
            double ref = 1.0 / (1.0 + exp(-(double)x[i]));
            double es = fabs(s[i] - ref) / ref, eu = x[i] == 0 ? fabs(u[i]) : fabs(u[i] - x[i] * ref) / fabs(x[i] * ref);
            if (es > worst_s) worst_s = es;
            if (eu > worst_u) worst_u = eu;
        }
        count += k;
    }
    fprintf(stderr, "lean sigmoid: %lld values, worst relative error %.3g (Silu %.3g)\n", (long long)count, worst_s,
            worst_u);
    CHECK(count > 2000000);
    CHECK(worst_s <= 1.5e-4 && worst_u <= 1.5e-4);
    float sp[] = {INFINITY, -INFINITY, NAN, 1e30f, -1e30f, 0.0f, -0.0f};
    float ss[7], su[7];
    memcpy(ss, sp, sizeof sp);
    memcpy(su, sp, sizeof sp);
    dt_epilogue_apply(&sig, ss, NULL, 7);
    dt_epilogue_apply(&silu, su, NULL, 7);
    CHECK(ss[0] == 1.0f && ss[1] >= 0.0f && ss[1] < 1e-37f && isnan(ss[2]) && ss[3] == 1.0f && ss[4] < 1e-37f);
    CHECK(fabsf(ss[5] - 0.5f) < 1e-4f && fabsf(ss[6] - 0.5f) < 1e-4f);
    CHECK(su[0] == INFINITY && su[1] == -INFINITY && isnan(su[2]) && su[3] == 1e30f && su[4] > -1e-6f && su[4] <= 0.0f);
    CHECK(su[5] == 0.0f && su[6] == 0.0f);
    free(x), free(s), free(u);
}

/* The exact Sigmoid and Silu of dt_epilogue_apply_bias (four vectors at a time and the tail
 * in up to four masked vectors on AVX-512, a value at a time elsewhere) give the scalar
 * dt_sigmoid_approx's bits after the unfused adds' roundings, at every row length 1..140 (the
 * Winograd and smallc output passes hand over rows of 11, 44, 16), with and without bias and
 * residual, special values included. */
static void test_exact_sigmoid_rows_scalar_bits(void)
{
    enum { N = 140 };
    static const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 88.5f, -88.5f, 1e-40f, 1e-7f, -17.0f};
    float x[N], b[N], r[N], y[N];
    int bad = 0;
    for (int n = 1; n <= N; n++)
        for (int act = 0; act < 2; act++)
            for (int v = 0; v < 4; v++) {
                for (int i = 0; i < n; i++) {
                    x[i] = (i % 10 == 7) ? special[(i / 10 + n) % 10] : (float)((i * 37 + n * 11) % 401) * 0.05f - 10.0f;
                    b[i] = (float)((i * 13) % 7) * 0.3f - 1.0f;
                    r[i] = (float)((i * 5 + n) % 9) * 0.25f - 1.0f;
                }
                memcpy(y, x, sizeof(float) * (size_t)n);
                dt_epilogue e = {.act = act ? DT_ACT_SILU : DT_ACT_SIGMOID};
                const float *bb = v & 1 ? b : NULL, *rr = v & 2 ? r : NULL;
                dt_epilogue_apply_bias(&e, y, bb, rr, n);
                for (int i = 0; i < n; i++) {
                    float t = x[i];
                    if (bb) t = t + bb[i];
                    if (rr) t = t + rr[i];
                    float want = act ? t * dt_sigmoid_approx(t) : dt_sigmoid_approx(t);
                    if (memcmp(&want, &y[i], sizeof want) && !(isnan(want) && isnan(y[i]))) bad++;
                }
            }
    CHECK_EQ_INT(bad, 0);
}

/* Products of a transformer at a short sequence (few rows, B packed at build, 0.4M..8M
 * multiply-adds, or fewer rows than a micro-tile and under 0.4M multiply-adds but bound by
 * streaming B: bert_small at one token) are split over the threads, by columns (each thread
 * streams its own part of B), and give the same bits as on one thread. */
static void test_small_products_split_by_columns_same_bits(void)
{
    static const int64_t cases[][3] = {{13, 300, 300}, {1, 1001, 700}, {32, 97, 1025}, {5, 49, 2000}, {16, 256, 256},
                                       {1, 768, 256}, {1, 1024, 256}, {3, 256, 1024}, {7, 333, 257}};
    dt_pool *two;
    CHECK_EQ_INT(dt_pool_create(2, &two), DUCTILE_OK);
    dt_pool_wake(two);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t M = cases[c][0], N = cases[c][1], K = cases[c][2];
        float *A = rand_buf(M * K), *B = rand_buf(K * N), *C1 = rand_buf(M * N), *C2 = rand_buf(M * N);
        float *P = malloc(sizeof(float) * (size_t)dt_gemm_packed_b_floats(N, K));
        dt_gemm_pack_b_full(B, N, false, K, N, P);
        dt_gemm g = {.M = M, .N = N, .K = K, .alpha = 1, .beta = 0, .A = A, .lda = K, .B_packed = P,
                     .C = C1, .ldc = N};
        /* Split: one set of packing buffers per part. */
        size_t one = dt_sgemm_scratch_bytes(&g, 1), split = dt_sgemm_scratch_bytes(&g, 2);
        CHECK(split == 2 * one);
        CHECK_EQ_INT(dt_sgemm(&g, NULL), DUCTILE_OK);
        g.C = C2;
        CHECK_EQ_INT(dt_sgemm(&g, two), DUCTILE_OK);
        CHECK(memcmp(C1, C2, sizeof(float) * (size_t)(M * N)) == 0);
        double *R = malloc(sizeof(double) * (size_t)(M * N));
        ref_gemm(false, false, M, N, K, 1.0, A, B, R);
        double e = rel_err(C2, R, M * N);
        if (!(e <= 1e-4)) fprintf(stderr, "split sgemm %lldx%lldx%lld: rel err %g\n", (long long)M, (long long)N, (long long)K, e);
        CHECK(e <= 1e-4);
        free(A), free(B), free(C1), free(C2), free(P), free(R);
    }
    dt_pool_rest(two);
    dt_pool_free(two);
}

/* The fine split (DT_GEMM_FINE parts per thread, claimed as threads come free, buffers per
 * thread): split N under an A packed at build time (a convolution's weights) and under an A
 * read in place (few rows, B packed), split M under a B packed at build time, with a bias and
 * an epilogue, at odd sizes (partial micro-panels, past KC and MC), on 2 and 3 threads through
 * the caller's scratch of dt_sgemm_scratch_bytes: the same bits as on one thread, and the
 * reference's values. */
static void test_fine_split_same_bits(void)
{
    /* M, N, K, which operand is packed: 1 A, 2 B */
    static const int64_t cases[][4] = {{64, 785, 147, 1}, {37, 3001, 300, 1}, {530, 1000, 29, 1},
                                       {13, 1001, 700, 2}, {30, 2000, 65, 2},
                                       {1003, 40, 301, 2}, {700, 97, 64, 2}};
    dt_pool *pools[2];
    CHECK_EQ_INT(dt_pool_create(2, &pools[0]), DUCTILE_OK);
    CHECK_EQ_INT(dt_pool_create(3, &pools[1]), DUCTILE_OK);
    int bad = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t M = cases[c][0], N = cases[c][1], K = cases[c][2];
        float *A = rand_buf(M * K), *B = rand_buf(K * N), *C1 = rand_buf(M * N), *C2 = rand_buf(M * N);
        float *bias = rand_buf(M), *res = rand_buf(M * N);
        float *PA = malloc(sizeof(float) * (size_t)dt_gemm_packed_a_floats(M, K));
        float *PB = malloc(sizeof(float) * (size_t)dt_gemm_packed_b_floats(N, K));
        dt_gemm_pack_a_full(A, K, false, 1.0f, M, K, PA);
        dt_gemm_pack_b_full(B, N, false, K, N, PB);
        dt_epilogue epi = {.act = c & 1 ? DT_ACT_RELU : DT_ACT_NONE, .res = res};
        dt_gemm g = {.M = M, .N = N, .K = K, .alpha = 1, .beta = 0, .A = A, .lda = K, .B = B, .ldb = N,
                     .C = C1, .ldc = N, .bias = bias, .epi = &epi};
        if (cases[c][3] == 1) g.A_packed = PA;
        else g.B_packed = PB, g.B = NULL;
        CHECK_EQ_INT(dt_sgemm(&g, NULL), DUCTILE_OK);
        for (int p = 0; p < 2; p++) {
            size_t bytes = dt_sgemm_scratch_bytes(&g, dt_pool_threads(pools[p]));
            void *scratch = dt_aligned_alloc(64, bytes ? bytes : 64);
            for (int rep = 0; rep < 3; rep++) {
                memcpy(C2, res, sizeof(float) * (size_t)(M * N)); /* garbage in C (beta 0) */
                g.C = C2;
                if (rep == 1) dt_pool_wake(pools[p]);
                CHECK_EQ_INT(dt_sgemm_in(&g, pools[p], scratch), DUCTILE_OK);
                if (rep == 1) dt_pool_rest(pools[p]);
                if (memcmp(C1, C2, sizeof(float) * (size_t)(M * N))) {
                    bad++;
                    fprintf(stderr, "fine split %lldx%lldx%lld packed %s, %d threads: bits differ\n", (long long)M,
                            (long long)N, (long long)K, cases[c][3] == 1 ? "A" : "B", dt_pool_threads(pools[p]));
                }
            }
            dt_free(scratch);
        }
        g.C = C1;
        /* the values: C1 against a reference product with the bias, the residual and the act */
        double *R = malloc(sizeof(double) * (size_t)(M * N));
        ref_gemm(false, false, M, N, K, 1.0, A, B, R);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double v = R[i * N + j] + bias[i] + res[i * N + j];
                if (c & 1) v = v > 0 ? v : 0;
                R[i * N + j] = v;
            }
        double e = rel_err(C1, R, M * N);
        if (!(e <= 1e-4)) {
            bad++;
            fprintf(stderr, "fine split %lldx%lldx%lld: rel err %g\n", (long long)M, (long long)N, (long long)K, e);
        }
        free(A), free(B), free(C1), free(C2), free(bias), free(res), free(PA), free(PB), free(R);
    }
    CHECK_EQ_INT(bad, 0);
    dt_pool_free(pools[0]);
    dt_pool_free(pools[1]);
}

/* The in-place-A micro-kernels (plain C, and AVX-512 where the CPU has it) on one tile of
 * every height and width class, first block (beta, bias) and accumulating block. */
static void test_rows_kernels_match_naive(void)
{
    int64_t kc = 37, lda = 41, ldb = 48, ldc = 50;
    float *A = rand_buf(8 * lda), *B = rand_buf(kc * ldb), *bias = rand_buf(8), *C0 = rand_buf(8 * ldc);
    float *C = malloc(sizeof(float) * (size_t)(8 * ldc));
    __builtin_cpu_init();
    dt_gemm_kernel_rows_fn ks[3] = {dt_gemm_kernel_rows_ref,
                                    __builtin_cpu_supports("avx512f") ? dt_gemm_kernel_rows_avx512 : NULL,
                                    dt_cpu_has_avx2_fma() ? dt_gemm_kernel_rows_avx2 : NULL};
    int bad = 0;
    for (int kf = 0; kf < 3; kf++)
        for (int m = 1; m <= 8; m++)
            for (int n = 1; n <= 48; n += 5)
                for (int first = 0; first < 2; first++) {
                    if (!ks[kf]) continue;
                    memcpy(C, C0, sizeof(float) * (size_t)(8 * ldc));
                    int nv = (n + 15) / 16;
                    ks[kf](kc, A, lda, B, ldb, nv, C, ldc, m, n, first, 0.5f, bias);
                    for (int i = 0; i < 8; i++)
                        for (int j = 0; j < ldc; j++) {
                            double s = 0;   /* only inside the m x n tile: B has ldb < ldc columns */
                            for (int64_t k = 0; i < m && j < n && k < kc; k++) s += (double)A[i * lda + k] * B[k * ldb + j];
                            double want = i >= m || j >= n ? C0[i * ldc + j]
                                          : first ? s + 0.5 * C0[i * ldc + j] + bias[i]
                                                  : s + C0[i * ldc + j];
                            if (!(fabs(C[i * ldc + j] - want) <= 1e-4 * (1 + fabs(want)))) bad++;
                        }
                }
    CHECK_EQ_INT(bad, 0);
    free(A), free(B), free(bias), free(C0), free(C);
}

/* The AVX2 micro-kernel (4 x 24 sub-tiles) on the packed layout: every height 1..8, widths
 * 1..48 of each vector count, first block (with and without beta and bias) and accumulating
 * block, against a double sum; nothing outside the m x n tile written; and the AVX-512
 * kernel's bits where the CPU has both. */
static void test_avx2_kernel_matches_naive(void)
{
    if (!dt_cpu_has_avx2_fma()) {
        fprintf(stderr, "AVX2 GEMM kernel: not on this CPU, skipped\n");
        return;
    }
    enum { KC = 29, LDB = 53, LDC = 51 };
    float *A = rand_buf(KC * DT_GEMM_MR), *B = rand_buf(KC * LDB), *bias = rand_buf(8), *C0 = rand_buf(8 * LDC);
    float C[8 * LDC], C5[8 * LDC];
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f");
    int bad = 0, checked = 0;
    for (int m = 1; m <= 8; m++)
        for (int n = 1; n <= 48; n += 3)
            for (int mode = 0; mode < 4; mode++) {
                bool first = mode < 3;
                float beta = mode == 1 ? 0.5f : 0.0f;
                const float *bs = mode == 2 ? NULL : bias;
                int nv = (n + 15) / 16;
                memcpy(C, C0, sizeof C);
                dt_gemm_kernel_avx2(KC, A, B, LDB, nv, C, LDC, m, n, first, beta, bs);
                for (int i = 0; i < 8; i++)
                    for (int j = 0; j < LDC; j++) {
                        double s = 0, c0 = C0[i * LDC + j];
                        for (int k = 0; i < m && j < n && k < KC; k++)
                            s += (double)A[k * DT_GEMM_MR + i] * B[k * LDB + j];
                        double want = i >= m || j >= n ? c0 : first ? s + beta * c0 + (bs ? bs[i] : 0) : s + c0;
                        if (!(fabs(C[i * LDC + j] - want) <= 1e-5 * (1 + fabs(want)))) bad++;
                        checked++;
                    }
                if (avx512) {
                    memcpy(C5, C0, sizeof C5);
                    dt_gemm_kernel_avx512(KC, A, B, LDB, nv, C5, LDC, m, n, first, beta, bs);
                    if (memcmp(C, C5, sizeof C)) {
                        bad++;
                        fprintf(stderr, "AVX2 kernel m=%d n=%d mode %d: not the AVX-512 kernel's bits\n", m, n, mode);
                    }
                }
            }
    CHECK_EQ_INT(bad, 0);
    CHECK(checked == 8 * 16 * 4 * 8 * LDC);
    free(A), free(B), free(bias), free(C0);
}

/* The narrow-tile kernel (1..4 columns, 8 rows in the lanes) gives the 16-lane kernel's bits
 * for every height, first block with and without beta and bias, and accumulating blocks. */
static void test_narrow_kernel_matches_wide_bit_for_bit(void)
{
    dt_gemm_kernel_fn narrow = dt_gemm_kernel_narrow_select(), wide = dt_gemm_kernel_select();
    if (!narrow) {
        fprintf(stderr, "narrow GEMM kernel: not on this CPU (neither AVX-512 nor AVX2), skipped\n");
        return;
    }
    enum { KC = 37, LDC = 7 };
    float *A = rand_buf(KC * DT_GEMM_MR), *B = rand_buf(KC * 16), *bias = rand_buf(8), *C0 = rand_buf(8 * LDC);
    float Cw[8 * LDC], Cn[8 * LDC];
    int bad = 0;
    for (int m = 1; m <= 8; m++)
        for (int n = 1; n <= DT_GEMM_NARROW; n++)
            for (int mode = 0; mode < 4; mode++) {
                bool first = mode < 3;
                float beta = mode == 1 ? 0.5f : 0.0f;
                const float *bs = mode == 2 ? NULL : bias;
                memcpy(Cw, C0, sizeof Cw);
                memcpy(Cn, C0, sizeof Cn);
                wide(KC, A, B, 16, 1, Cw, LDC, m, n, first, beta, bs);
                narrow(KC, A, B, 16, 1, Cn, LDC, m, n, first, beta, bs);
                if (memcmp(Cw, Cn, sizeof Cw)) {
                    bad++;
                    fprintf(stderr, "narrow kernel m=%d n=%d mode %d differs from the wide one\n", m, n, mode);
                }
            }
    CHECK_EQ_INT(bad, 0);
    free(A), free(B), free(bias), free(C0);
}

/* The narrow kernel over many A panels at once (groups of 8, 4, 2 and 1 panels, a last panel
 * of 1..8 rows) gives the 16-lane kernel's bits panel by panel. */
static void test_narrow_panels_kernel_matches_wide_bit_for_bit(void)
{
    dt_gemm_kernel_narrow_panels_fn narrow = dt_gemm_kernel_narrow_panels_select();
    dt_gemm_kernel_fn wide = dt_gemm_kernel_select();
    if (!narrow) {
        fprintf(stderr, "narrow GEMM kernel: not on this CPU (neither AVX-512 nor AVX2), skipped\n");
        return;
    }
    enum { KC = 29, LDA = KC * DT_GEMM_MR + 5, LDC = 6, MAXM = 8 * 19 };
    float *A = rand_buf(LDA * 19), *B = rand_buf(KC * 16), *bias = rand_buf(MAXM), *C0 = rand_buf(MAXM * LDC);
    float *Cw = malloc(sizeof(float) * MAXM * LDC), *Cn = malloc(sizeof(float) * MAXM * LDC);
    int bad = 0;
    static const int ms[] = {1, 7, 8, 9, 17, 31, 40, 57, 64, 65, 71, 100, 127, MAXM};
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
        for (int n = 1; n <= DT_GEMM_NARROW; n++)
            for (int mode = 0; mode < 4; mode++) {
                int m = ms[mi];
                bool first = mode < 3;
                float beta = mode == 1 ? 0.5f : 0.0f;
                const float *bs = mode == 2 ? NULL : bias;
                memcpy(Cw, C0, sizeof(float) * MAXM * LDC);
                memcpy(Cn, C0, sizeof(float) * MAXM * LDC);
                for (int p = 0; p * 8 < m; p++)
                    wide(KC, A + p * LDA, B, 16, 1, Cw + p * 8 * LDC, LDC, m - p * 8 < 8 ? m - p * 8 : 8, n, first,
                         beta, bs ? bs + p * 8 : NULL);
                narrow(KC, A, LDA, B, 16, Cn, LDC, m, n, first, beta, bs);
                if (memcmp(Cw, Cn, sizeof(float) * MAXM * LDC)) {
                    bad++;
                    fprintf(stderr, "narrow panels kernel m=%d n=%d mode %d differs from the wide one\n", m, n, mode);
                }
            }
    CHECK_EQ_INT(bad, 0);
    free(A), free(B), free(bias), free(C0), free(Cw), free(Cn);
}

/* Products whose last panel is narrow (N = 49, 196, 961: 7x7 and 14x14 images, a column past
 * an NC block) with A and B packed or not, B read in place, several M blocks and K blocks:
 * against the reference, and with a residual and an activation against the plain product
 * with the same epilogue applied after (the narrow columns must be done before a strip's
 * epilogue; Relu and Clip are applied in the kernel's store). */
static void test_sgemm_narrow_last_panel_and_epilogue(dt_pool *pool)
{
    static const int64_t ms[] = {1, 9, 75, 530}, ns[] = {49, 196, 961, 3}, ks[] = {7, 300};
    int bad = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 2; c++)
                for (int v = 0; v < 4; v++) {
                    int64_t M = ms[a], N = ns[b], K = ks[c];
                    float *A = rand_buf(M * K), *B = rand_buf(K * N), *bias = rand_buf(M), *res = rand_buf(M * N);
                    float *C = rand_buf(M * N), *E = rand_buf(M * N);
                    float *PA = malloc(sizeof(float) * (size_t)dt_gemm_packed_a_floats(M, K));
                    float *PB = malloc(sizeof(float) * (size_t)dt_gemm_packed_b_floats(N, K));
                    dt_gemm_pack_a_full(A, K, false, 0.5f, M, K, PA);
                    dt_gemm_pack_b_full(B, N, false, K, N, PB);
                    double *R = malloc(sizeof(double) * (size_t)(M * N));
                    ref_gemm(false, false, M, N, K, 0.5, A, B, R);
                    for (int64_t i = 0; i < M; i++)
                        for (int64_t j = 0; j < N; j++) R[i * N + j] += bias[i];
                    dt_gemm g = {.M = M, .N = N, .K = K, .alpha = 0.5f, .beta = 0, .A = A, .lda = K, .B = B,
                                 .ldb = N, .C = C, .ldc = N, .bias = bias};
                    if (v & 1) g.A_packed = PA;
                    if (v == 2) g.B_packed = PB;
                    if (v == 3) g.direct_b = g.prefetch_b = true;
                    CHECK_EQ_INT(dt_sgemm(&g, pool), DUCTILE_OK);
                    double e = rel_err(C, R, M * N);
                    /* Relu, Clip, HardSwish, HardSigmoid (in the kernel's store), Sigmoid (a
                     * pass after) and a residual alone, each against the plain product with
                     * dt_epilogue_apply run over it: the same bits. */
                    static const dt_epilogue epis[] = {{DT_ACT_RELU, 0, 0, NULL, NULL},
                                                       {DT_ACT_CLIP, -0.5f, 0.7f, NULL, NULL},
                                                       {DT_ACT_HARDSWISH, 1.0f / 6, 0.5f, NULL, NULL},
                                                       {DT_ACT_NONE, 0, 0, NULL, NULL},
                                                       {DT_ACT_HARDSIGMOID, 0.2f, 0.5f, NULL, NULL},
                                                       {DT_ACT_SIGMOID, 0, 0, NULL, NULL}};
                    dt_epilogue epi = epis[(a + b + c + v) % 6];
                    epi.res = res;
                    g.C = E;
                    g.epi = &epi;
                    CHECK_EQ_INT(dt_sgemm(&g, pool), DUCTILE_OK);
                    for (int64_t i = 0; i < M; i++) dt_epilogue_apply(&epi, C + i * N, res + i * N, N);
                    int diff = 0;
                    for (int64_t i = 0; i < M * N; i++)
                        if (memcmp(&C[i], &E[i], sizeof *C)) diff++;
                    if (!(e <= 1e-4) || diff) {
                        bad++;
                        fprintf(stderr, "sgemm %lldx%lldx%lld variant %d: rel err %g, %d epilogue values differ\n",
                                (long long)M, (long long)N, (long long)K, v, e, diff);
                    }
                    free(A), free(B), free(bias), free(res), free(C), free(E), free(PA), free(PB), free(R);
                }
    CHECK_EQ_INT(bad, 0);
}

/* Gives L's input 1 the constant B (as the builder sees it), packs it with the backend's
 * prepack and returns a second layer of the same op reading the blob, as the builder leaves
 * it: attributes `packed` and `w_shape` after L's own. */
static ductile_layer *packed_twin(ductile_layer *L, int rank_b, const int64_t *bd, float *B,
                                  dt_prepacked *pk)
{
    ductile_tensor *w = L->in[1];
    w->dtype = DUCTILE_FLOAT32;
    w->rank = rank_b;
    for (int i = 0; i < rank_b; i++) w->dims[i] = bd[i];
    w->data = B;
    w->nbytes = sizeof(float) * (size_t)dt_tensor_count(w);
    CHECK_EQ_INT(dt_cpu_prepack(L, pk), DUCTILE_OK);
    w->data = NULL;
    if (!pk->data) return NULL;
    ductile_layer *P = make_layer(L->op_type, L->n_in, L->n_attr + 2);
    for (int i = 0; i < L->n_attr; i++) P->attrs[P->n_attr++] = L->attrs[i];
    set_int(P, "packed", pk->layout);
    set_ints(P, "w_shape", bd, rank_b);
    return P;
}

static void test_packed_matmul_and_gemm_match_unpacked(dt_pool *pool)
{
    /* MatMul: stacked A [2,17,63] x B [63,100], and a 1-D A [300] x B [300,1001]. */
    static const struct { int ra; int64_t a[3]; int64_t b[2]; } mm[] = {
        {3, {2, 17, 63}, {63, 100}}, {1, {300}, {300, 1001}}, {2, {5, 129}, {129, 33}}};
    for (size_t c = 0; c < sizeof mm / sizeof mm[0]; c++) {
        ductile_layer *L = make_layer("MatMul", 2, 0);
        dt_view a = view(mm[c].ra, mm[c].a, NULL), b = view(2, mm[c].b, NULL);
        a.data = rand_buf(dt_view_count(&a));
        b.data = rand_buf(dt_view_count(&b));
        dt_prepacked pk;
        ductile_layer *P = packed_twin(L, 2, mm[c].b, b.data, &pk);
        CHECK(P != NULL);
        CHECK_EQ_INT(pk.layout, DT_CPU_PACK_GEMM_B);
        CHECK_EQ_INT(pk.input, 1);
        if (!P) continue;
        int64_t nf = (int64_t)(pk.nbytes / sizeof(float));
        dt_view in[2] = {a, b}, inp[2] = {a, view(1, &nf, pk.data)}, out, outp;
        CHECK_EQ_INT(run_layer(L, in, &out, pool), DUCTILE_OK);
        CHECK_EQ_INT(run_layer(P, inp, &outp, pool), DUCTILE_OK);
        CHECK_EQ_INT(outp.rank, out.rank);
        for (int i = 0; i < out.rank; i++) CHECK_EQ_INT(outp.dims[i], out.dims[i]);
        int64_t n = dt_view_count(&out);
        double *R = malloc(sizeof(double) * (size_t)n);
        int64_t M = n / mm[c].b[1];
        ref_gemm(false, false, M, mm[c].b[1], mm[c].b[0], 1.0, a.data, b.data, R);
        CHECK(rel_err(outp.data, R, n) <= 1e-4);
        CHECK(rel_err(out.data, R, n) <= 1e-4);
        free(a.data), free(b.data), dt_free(pk.data), free(out.data), free(outp.data), free(R);
    }
    /* Gemm: both transB, alpha, beta and a bias C [N]; M = 1 (a classifier) and M = 17. */
    for (int t = 0; t < 4; t++) {
        bool tb = t & 1;
        int64_t M = t & 2 ? 17 : 1, N = 1001, K = 130;
        ductile_layer *L = make_layer("Gemm", 3, 3);
        set_int(L, "transB", tb);
        set_float(L, "alpha", 0.5f);
        set_float(L, "beta", 2.0f);
        int64_t ad[2] = {M, K}, bd[2] = {tb ? N : K, tb ? K : N}, cd[1] = {N};
        float *A = rand_buf(M * K), *B = rand_buf(K * N), *C = rand_buf(N);
        dt_prepacked pk;
        ductile_layer *P = packed_twin(L, 2, bd, B, &pk);
        CHECK(P != NULL);
        if (!P) continue;
        int64_t nf = (int64_t)(pk.nbytes / sizeof(float));
        dt_view inp[3] = {view(2, ad, A), view(1, &nf, pk.data), view(1, cd, C)}, out;
        CHECK_EQ_INT(run_layer(P, inp, &out, pool), DUCTILE_OK);
        CHECK_EQ_INT(out.dims[0], M);
        CHECK_EQ_INT(out.dims[1], N);
        double *R = malloc(sizeof(double) * (size_t)(M * N));
        ref_gemm(false, tb, M, N, K, 0.5, A, B, R);
        for (int64_t i = 0; i < M * N; i++) R[i] += 2.0 * C[i % N];
        CHECK(rel_err(out.data, R, M * N) <= 1e-4);
        free(A), free(B), free(C), dt_free(pk.data), free(out.data), free(R);
    }
}

/* Not packed: a constant A (folded, not packed), a 3-D B, a float16 B. */
static void test_prepack_leaves_other_matmuls(void)
{
    ductile_layer *L = make_layer("MatMul", 2, 0);
    float B[24] = {0};
    int64_t b3[3] = {2, 3, 4}, b2[2] = {4, 6};
    dt_prepacked pk;
    CHECK(packed_twin(L, 3, b3, B, &pk) == NULL);
    L->in[0]->data = B;
    CHECK(packed_twin(L, 2, b2, B, &pk) == NULL);
    L->in[0]->data = NULL;
    L->in[1]->dtype = DUCTILE_FLOAT16;
    L->in[1]->data = B;
    L->in[1]->nbytes = 48;
    CHECK_EQ_INT(dt_cpu_prepack(L, &pk), DUCTILE_OK);
    CHECK(pk.data == NULL);
}

/* A packed layer whose blob or attributes do not fit: named, never read out of bounds. */
static void test_packed_b_errors(void)
{
    int64_t ad[2] = {3, 4}, wrong = 20, ws[2] = {4, 5}, ws3[3] = {1, 4, 5};
    float A[12] = {0}, Bp[32] = {0}, Y[15];
    int64_t yd[2] = {3, 5};
    dt_view in[2] = {view(2, ad, A), view(1, &wrong, Bp)}, out = view(2, yd, Y);
    dt_exec ex = {0};
    for (int op = 0; op < 2; op++) {
        const char *name = op ? "Gemm" : "MatMul";
        ductile_layer *L = make_layer(name, 2, 2);
        set_int(L, "packed", DT_CPU_PACK_GEMM_B);
        set_ints(L, "w_shape", ws, 2);
        dt_view o;
        CHECK_EQ_INT(opdef(name)->infer(L, in, &o), DUCTILE_OK);
        CHECK_EQ_INT(o.dims[0], 3);
        CHECK_EQ_INT(o.dims[1], 5);
        /* 4 x 5 packs to 16 columns x 4 rows = 64 floats, not 20. */
        CHECK_EQ_INT(kernel(name)(L, in, &out, &ex), DUCTILE_ERR_INVALID_ARGUMENT);
        CHECK_EQ_STR(dt_last_error(), "input 1 (B) holds 20 packed floats; layout 3 of a 4x5 B needs 64");

        L = make_layer(name, 2, 2);
        set_int(L, "packed", 7);
        set_ints(L, "w_shape", ws, 2);
        CHECK_EQ_INT(kernel(name)(L, in, &out, &ex), DUCTILE_ERR_UNSUPPORTED);
        CHECK_EQ_STR(dt_last_error(), "attribute 'packed' = 7 is not a CPU layout of B");

        L = make_layer(name, 2, 2);
        set_int(L, "packed", DT_CPU_PACK_GEMM_B);
        set_ints(L, "w_shape", ws3, 3);
        CHECK_EQ_INT(opdef(name)->infer(L, in, &o), DUCTILE_ERR_INVALID_ARGUMENT);
        CHECK_EQ_STR(dt_last_error(), "attribute 'w_shape' must hold the 2 dims of the packed weights (input 1)");
    }
}

/* ---- Conv op ---- */

typedef struct conv_case {
    int64_t n, c, h, w, m, kh, kw, group;
    int64_t sh, sw, dh, dw, pt, pl, pb, pr;
    const char *auto_pad;   /* NULL: NOTSET with explicit pads */
    bool bias;
    bool one_d;             /* h == 1 and kh == 1, given as a rank-3 conv */
} conv_case;


static void run_conv_case(const conv_case *cc, dt_pool *pool)
{
    ductile_layer *L = make_layer("Conv", cc->bias ? 3 : 2, 6);
    int sp = cc->one_d ? 1 : 2;
    int64_t ks[2] = {cc->kh, cc->kw}, st[2] = {cc->sh, cc->sw}, di[2] = {cc->dh, cc->dw};
    int64_t pads[4] = {cc->pt, cc->pl, cc->pb, cc->pr};
    int64_t pads1[2] = {cc->pl, cc->pr};
    set_ints(L, "kernel_shape", ks + 2 - sp, sp);
    set_ints(L, "strides", st + 2 - sp, sp);
    set_ints(L, "dilations", di + 2 - sp, sp);
    set_int(L, "group", cc->group);
    if (cc->auto_pad)
        set_str(L, "auto_pad", cc->auto_pad);
    else
        set_ints(L, "pads", sp == 2 ? pads : pads1, 2 * sp);
    int64_t xd[4] = {cc->n, cc->c, cc->h, cc->w}, wd[4] = {cc->m, cc->c / cc->group, cc->kh, cc->kw};
    if (sp == 1) xd[2] = cc->w, wd[2] = cc->kw;
    int64_t bd[1] = {cc->m};
    float *x = rand_buf(cc->n * cc->c * cc->h * cc->w);
    float *w = rand_buf(cc->m * (cc->c / cc->group) * cc->kh * cc->kw);
    float *b = cc->bias ? rand_buf(cc->m) : NULL;
    dt_view in[3] = {view(sp + 2, xd, x), view(sp + 2, wd, w), cc->bias ? view(1, bd, b) : absent};
    dt_view out;
    ductile_status st_run = run_layer(L, in, &out, pool);
    CHECK_EQ_INT(st_run, DUCTILE_OK);
    if (st_run != DUCTILE_OK) {
        fprintf(stderr, "  %s\n", dt_last_error());
        free(x), free(w), free(b);
        return;
    }
    /* Expected output size and padding, worked out independently of the op's code. */
    int64_t eh = cc->dh * (cc->kh - 1) + 1, ew = cc->dw * (cc->kw - 1) + 1;
    int64_t oh, ow, pt = cc->pt, pl = cc->pl;
    if (!cc->auto_pad) {
        oh = (cc->h + cc->pt + cc->pb - eh) / cc->sh + 1;
        ow = (cc->w + cc->pl + cc->pr - ew) / cc->sw + 1;
    } else if (strcmp(cc->auto_pad, "VALID") == 0) {
        oh = (cc->h - eh) / cc->sh + 1;
        ow = (cc->w - ew) / cc->sw + 1;
        pt = pl = 0;
    } else {
        oh = (cc->h + cc->sh - 1) / cc->sh;
        ow = (cc->w + cc->sw - 1) / cc->sw;
        int64_t th = (oh - 1) * cc->sh + eh - cc->h, tw = (ow - 1) * cc->sw + ew - cc->w;
        th = th < 0 ? 0 : th;
        tw = tw < 0 ? 0 : tw;
        bool upper = strcmp(cc->auto_pad, "SAME_UPPER") == 0;
        pt = upper ? th / 2 : th - th / 2;
        pl = upper ? tw / 2 : tw - tw / 2;
    }
    if (sp == 1) oh = 1, pt = 0;
    CHECK_EQ_INT(out.rank, sp + 2);
    CHECK_EQ_INT(out.dims[1], cc->m);
    CHECK_EQ_INT(out.dims[sp + 1], ow);
    if (sp == 2) CHECK_EQ_INT(out.dims[2], oh);
    double *R = malloc(sizeof(double) * (size_t)(cc->n * cc->m * oh * ow));
    ref_conv(&(ref_conv_geom){.n = cc->n, .c = cc->c, .m = cc->m, .group = cc->group, .h = cc->h,
                              .w = cc->w, .oh = oh, .ow = ow, .kh = cc->kh, .kw = cc->kw,
                              .sh = cc->sh, .sw = cc->sw, .dh = cc->dh, .dw = cc->dw, .pt = pt,
                              .pl = pl},
             x, w, b, NULL, R);
    double e = rel_err(out.data, R, cc->n * cc->m * oh * ow);
    if (!(e <= 1e-4))
        fprintf(stderr, "Conv c=%lld m=%lld %lldx%lld k=%lldx%lld g=%lld s=%lld,%lld d=%lld: rel err %g\n",
                (long long)cc->c, (long long)cc->m, (long long)cc->h, (long long)cc->w,
                (long long)cc->kh, (long long)cc->kw, (long long)cc->group, (long long)cc->sh,
                (long long)cc->sw, (long long)cc->dh, e);
    CHECK(e <= 1e-4);
    free(x), free(w), free(b), free(R), free(out.data);
}

static void test_conv_matches_reference(dt_pool *pool)
{
    static const int64_t ks[] = {1, 3, 5};
    for (int c = 3; c <= 5; c += 2)
        for (int ki = 0; ki < 3; ki++)
            for (int s = 1; s <= 2; s++)
                for (int d = 1; d <= 2; d++) {
                    conv_case cc = {2, c, 11, 13, 7, ks[ki], ks[ki], 1, s, s, d, d,
                                    ki, 0, 1, ki + 1, NULL, (s + d) % 2 == 0, false};
                    run_conv_case(&cc, pool);
                }
    /* non-square kernel, mixed strides */
    run_conv_case(&(conv_case){1, 5, 13, 11, 7, 3, 5, 1, 2, 1, 1, 2, 2, 1, 0, 3, NULL, true, false}, pool);
    /* 1x1 stride 1 (the direct GEMM path) with batch */
    run_conv_case(&(conv_case){3, 5, 11, 13, 7, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, NULL, true, false}, pool);
    /* ... over images under 128 pixels: one GEMM over the batch's pixels (K past one block,
     * a last panel of 8 columns), copied out image by image; 12x11 images do not batch */
    run_conv_case(&(conv_case){8, 300, 7, 7, 37, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, NULL, true, false}, pool);
    run_conv_case(&(conv_case){3, 17, 9, 13, 50, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, NULL, false, false}, pool);
    run_conv_case(&(conv_case){2, 9, 12, 11, 11, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, NULL, true, false}, pool);
    /* groups */
    run_conv_case(&(conv_case){2, 6, 11, 13, 8, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, NULL, true, false}, pool);
    run_conv_case(&(conv_case){1, 6, 13, 11, 9, 3, 3, 3, 2, 2, 1, 1, 0, 1, 2, 0, NULL, false, false}, pool);
    /* depthwise 3x3 and 5x5, strides 1 and 2, dilation 2; and one with a channel multiplier */
    for (int k = 3; k <= 5; k += 2)
        for (int s = 1; s <= 2; s++) {
            run_conv_case(&(conv_case){2, 5, 11, 13, 5, k, k, 5, s, s, 1, 1, k / 2, k / 2, k / 2, k / 2, NULL, true, false}, pool);
            run_conv_case(&(conv_case){1, 7, 13, 40, 7, k, k, 7, s, s, 2, 2, 1, 2, 0, 3, NULL, s == 1, false}, pool);
        }
    run_conv_case(&(conv_case){1, 4, 11, 13, 4, 3, 3, 4, 3, 3, 1, 1, 1, 1, 1, 1, NULL, true, false}, pool);
    /* depthwise rows at the edges of the one- and two-vector steps: 16, 17, 32, 33, 48 outputs
     * (and 7, 9, 17, 24 at stride 2) */
    static const int64_t dw_w[] = {16, 17, 32, 33, 48, 7};
    for (int i = 0; i < 6; i++)
        for (int s = 1; s <= 2; s++)
            run_conv_case(&(conv_case){1, 3, 5, dw_w[i], 3, 3, 3, 3, s, s, 1, 1, 1, 1, 1, 1, NULL, true, false}, pool);
    /* 3x3 depthwise in blocks of output rows (4 at stride 1, 2 at stride 2): every remainder
     * of the block, asymmetric pads, a plane with no padding */
    for (int h = 5; h <= 12; h++)
        for (int s = 1; s <= 2; s++)
            run_conv_case(&(conv_case){2, 4, h, 9 + 7 * s, 4, 3, 3, 4, s, s, 1, 1, h % 2, 1, 1, h % 3, NULL, true, false},
                          pool);
    run_conv_case(&(conv_case){1, 3, 6, 20, 3, 3, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, NULL, false, false}, pool);
    run_conv_case(&(conv_case){1, 3, 11, 13, 6, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, NULL, true, false}, pool);
    /* stride 2 along rows through im2col (a mobile net's stem: 3 channels): interiors of
     * 1..51 outputs with zero borders on either side, dilation 2, and a stride of 3 */
    for (int w = 1; w <= 103; w += 17)
        run_conv_case(&(conv_case){2, 3, 9, w, 8, 3, 3, 1, 2, 2, 1, 1, 1, 1, 1, w % 2, NULL, true, false}, pool);
    run_conv_case(&(conv_case){1, 3, 11, 70, 5, 3, 3, 1, 2, 2, 2, 2, 0, 2, 1, 0, NULL, true, false}, pool);
    run_conv_case(&(conv_case){1, 2, 7, 50, 4, 3, 3, 1, 3, 3, 1, 1, 1, 1, 1, 1, NULL, false, false}, pool);
    /* auto_pad */
    static const char *ap[] = {"SAME_UPPER", "SAME_LOWER", "VALID"};
    for (int i = 0; i < 3; i++)
        for (int s = 1; s <= 2; s++) {
            run_conv_case(&(conv_case){1, 3, 11, 12, 7, 4, 3, 1, s, s, 1, 1, 0, 0, 0, 0, ap[i], true, false}, pool);
            run_conv_case(&(conv_case){1, 5, 11, 12, 5, 4, 3, 5, s, s, 1, 1, 0, 0, 0, 0, ap[i], true, false}, pool);
        }
    /* 1-D */
    run_conv_case(&(conv_case){2, 5, 1, 37, 7, 1, 5, 1, 1, 2, 1, 1, 0, 2, 0, 1, NULL, true, true}, pool);
    run_conv_case(&(conv_case){1, 5, 1, 37, 5, 1, 3, 5, 1, 1, 1, 2, 0, 1, 0, 1, NULL, true, true}, pool);
    /* stride 1 over images wide enough for the padded-width path: asymmetric pads, dilation,
     * groups, batch, 1-D */
    run_conv_case(&(conv_case){1, 5, 9, 40, 7, 3, 3, 1, 1, 1, 1, 1, 1, 2, 0, 1, NULL, true, false}, pool);
    run_conv_case(&(conv_case){2, 3, 6, 70, 7, 5, 5, 1, 1, 1, 2, 2, 2, 2, 2, 2, NULL, true, false}, pool);
    run_conv_case(&(conv_case){2, 6, 7, 50, 8, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, NULL, false, false}, pool);
    run_conv_case(&(conv_case){1, 3, 11, 64, 7, 3, 3, 1, 1, 1, 1, 1, 0, 0, 0, 0, "SAME_LOWER", true, false}, pool);
    run_conv_case(&(conv_case){1, 5, 1, 100, 7, 1, 3, 1, 1, 1, 1, 1, 0, 1, 0, 1, NULL, true, true}, pool);
    /* mobilenet-sized depthwise and superres-like 3x3 (several threads' worth of work) */
    run_conv_case(&(conv_case){1, 32, 28, 28, 32, 3, 3, 32, 2, 2, 1, 1, 1, 1, 1, 1, NULL, true, false}, pool);
    run_conv_case(&(conv_case){1, 16, 30, 30, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, NULL, true, false}, pool);
}

/* The GEMM conv paths with the weights packed as the builder packs them (and raw), bias,
 * residual and Relu, at the brief's odd sizes: 3, 17, 33 channels; 7x9, 7x7, 14x14, 10x5
 * and 1x1 images (output widths of 48k + 1..4 run the narrow kernel), 40x37 (1480 pixels: a
 * 1x1 conv of few output channels, or of more than 64 over few input channels (17 -> 72),
 * reads B in place, over two NC blocks); strides 1 and 2;
 * padding; groups; batch 2. Against the double reference, with the epilogue applied to it. */
static void test_conv_paths_packed_odd_sizes(dt_pool *pool)
{
    static const int64_t hw[][2] = {{7, 9}, {7, 7}, {14, 14}, {10, 5}, {1, 1}, {40, 37}};
    static const int64_t cm[][3] = {{3, 17, 1}, {17, 33, 1}, {33, 33, 3}, {33, 17, 1}, {17, 72, 1}};
    static const dt_conv_algo algos[] = {DT_CONV_IM2COL, DT_CONV_PADDED};
    int bad = 0;
    for (size_t si = 0; si < sizeof hw / sizeof hw[0]; si++)
        for (size_t ci = 0; ci < sizeof cm / sizeof cm[0]; ci++)
            for (int k = 1; k <= 3; k += 2)
                for (int s = 1; s <= 2; s++)
                    for (int packed = 0; packed < 2; packed++) {
                        int64_t c = cm[ci][0], m = cm[ci][1], group = cm[ci][2], pad = k / 2;
                        int64_t h = hw[si][0], w = hw[si][1];
                        dt_conv_geom g = {.spatial = 2, .batch = 2, .c = c, .m = m, .group = group, .in = {h, w},
                                          .k = {k, k}, .s = {s, s}, .d = {1, 1}, .pb = {pad, pad},
                                          .pe = {pad, pad}};
                        for (int i = 0; i < 2; i++) g.out[i] = (g.in[i] + 2 * pad - k) / s + 1;
                        int64_t nx = 2 * c * h * w, nw = m * (c / group) * k * k, ny = 2 * m * g.out[0] * g.out[1];
                        float *x = rand_buf(nx), *wt = rand_buf(nw), *b = rand_buf(m), *res = rand_buf(ny);
                        float *y = malloc(sizeof(float) * (size_t)ny);
                        float *wp = malloc(sizeof(float) * (size_t)dt_cpu_conv_packed_floats(&g));
                        dt_cpu_conv_pack_weights(&g, wt, wp);
                        double *R = malloc(sizeof(double) * (size_t)ny);
                        ref_conv(&(ref_conv_geom){.n = 2, .c = c, .m = m, .group = group, .h = h, .w = w,
                                                  .oh = g.out[0], .ow = g.out[1], .kh = k, .kw = k, .sh = s,
                                                  .sw = s, .dh = 1, .dw = 1, .pt = pad, .pl = pad},
                                 x, wt, b, res, R);
                        for (int64_t i = 0; i < ny; i++) R[i] = R[i] > 0 ? R[i] : 0;
                        dt_epilogue epi = {.act = DT_ACT_RELU, .res = res};
                        for (size_t ai = 0; ai < sizeof algos / sizeof algos[0]; ai++) {
                            if (!dt_cpu_conv_algo_applies(&g, algos[ai])) continue;
                            dt_conv_args a = {.x = x, .bias = b, .epi = &epi, .y = y};
                            if (packed)
                                a.w_packed = wp;
                            else
                                a.w = wt;
                            for (int64_t i = 0; i < ny; i++) y[i] = NAN;
                            CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &a, algos[ai], pool), DUCTILE_OK);
                            double e = rel_err(y, R, ny);
                            if (!(e <= 1e-4)) {
                                bad++;
                                fprintf(stderr, "conv c=%lld m=%lld g=%lld %lldx%lld k=%d s=%d packed=%d algo %d: rel err %g\n",
                                        (long long)c, (long long)m, (long long)group, (long long)h, (long long)w, k, s,
                                        packed, (int)algos[ai], e);
                            }
                        }
                        free(x), free(wt), free(b), free(res), free(y), free(wp), free(R);
                    }
    CHECK_EQ_INT(bad, 0);
}

/* 1x1 convs whose B is far (conv.c: read in place with prefetches, where they were packed):
 * K of two blocks (260 input channels) over 40x37, and 20 input channels over 130x131
 * (17030 pixels), 72 output channels, batch 2, bias, residual and Relu; against the double
 * reference. */
static void test_conv_1x1_far_b(dt_pool *pool)
{
    static const int64_t cases[][3] = {{260, 40, 37}, {20, 130, 131}};
    for (int ci = 0; ci < 2; ci++) {
        int64_t c = cases[ci][0], h = cases[ci][1], w = cases[ci][2], m = 72;
        dt_conv_geom g = {.spatial = 2, .batch = 2, .c = c, .m = m, .group = 1, .in = {h, w}, .out = {h, w},
                          .k = {1, 1}, .s = {1, 1}, .d = {1, 1}};
        int64_t nx = 2 * c * h * w, ny = 2 * m * h * w;
        float *x = rand_buf(nx), *wt = rand_buf(m * c), *b = rand_buf(m), *res = rand_buf(ny);
        float *y = malloc(sizeof(float) * (size_t)ny), *wp = malloc(sizeof(float) * (size_t)dt_cpu_conv_packed_floats(&g));
        double *R = malloc(sizeof(double) * (size_t)ny);
        dt_cpu_conv_pack_weights(&g, wt, wp);
        ref_conv(&(ref_conv_geom){.n = 2, .c = c, .m = m, .group = 1, .h = h, .w = w, .oh = h, .ow = w, .kh = 1,
                                  .kw = 1, .sh = 1, .sw = 1, .dh = 1, .dw = 1},
                 x, wt, b, res, R);
        for (int64_t i = 0; i < ny; i++) R[i] = R[i] > 0 ? R[i] : 0;
        dt_epilogue epi = {.act = DT_ACT_RELU, .res = res};
        dt_conv_args a = {.x = x, .w_packed = wp, .bias = b, .epi = &epi, .y = y};
        for (int64_t i = 0; i < ny; i++) y[i] = NAN;
        CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &a, DT_CONV_IM2COL, pool), DUCTILE_OK);
        double e = rel_err(y, R, ny);
        if (!(e <= 1e-4)) fprintf(stderr, "1x1 conv c=%lld m=%lld %lldx%lld: rel err %g\n", (long long)c, (long long)m,
                                  (long long)h, (long long)w, e);
        CHECK(e <= 1e-4);
        free(x), free(wt), free(b), free(res), free(y), free(wp), free(R);
    }
}

/* The im2col path's strided gather with its prefetch of the rows a few channels ahead
 * (conv.c: DT_IM2COL_PF_C), over K of two blocks, where the prefetch stops at the block's
 * last channel: 1x1 stride 2 over 261 channels of 15x13 and 3x3 stride 2 pad 1 over 33
 * channels of 17x11 (K 297: a block ends inside a channel's taps), 37 output channels,
 * batch 2, bias, residual and Relu; against the double reference. */
static void test_conv_strided_two_k_blocks(dt_pool *pool)
{
    /* and rows long enough for the vectorized stride-2 gather (8 or 16 a step, then a tail:
     * AVX2's and AVX-512's), 3x3 over 9x61 and a 7x7 stem over 3 channels of 21x83 */
    static const int64_t cases[][4] = {{261, 15, 13, 1}, {33, 17, 11, 3}, {5, 9, 61, 3}, {3, 21, 83, 7}};
    for (int ci = 0; ci < 4; ci++) {
        int64_t c = cases[ci][0], h = cases[ci][1], w = cases[ci][2], k = cases[ci][3], pad = k / 2, m = 37;
        dt_conv_geom g = {.spatial = 2, .batch = 2, .c = c, .m = m, .group = 1, .in = {h, w}, .k = {k, k},
                          .s = {2, 2}, .d = {1, 1}, .pb = {pad, pad}, .pe = {pad, pad}};
        for (int i = 0; i < 2; i++) g.out[i] = (g.in[i] + 2 * pad - k) / 2 + 1;
        int64_t nx = 2 * c * h * w, nw = m * c * k * k, ny = 2 * m * g.out[0] * g.out[1];
        float *x = rand_buf(nx), *wt = rand_buf(nw), *b = rand_buf(m), *res = rand_buf(ny);
        float *y = malloc(sizeof(float) * (size_t)ny), *wp = malloc(sizeof(float) * (size_t)dt_cpu_conv_packed_floats(&g));
        double *R = malloc(sizeof(double) * (size_t)ny);
        dt_cpu_conv_pack_weights(&g, wt, wp);
        ref_conv(&(ref_conv_geom){.n = 2, .c = c, .m = m, .group = 1, .h = h, .w = w, .oh = g.out[0], .ow = g.out[1],
                                  .kh = k, .kw = k, .sh = 2, .sw = 2, .dh = 1, .dw = 1, .pt = pad, .pl = pad},
                 x, wt, b, res, R);
        for (int64_t i = 0; i < ny; i++) R[i] = R[i] > 0 ? R[i] : 0;
        dt_epilogue epi = {.act = DT_ACT_RELU, .res = res};
        for (int packed = 0; packed < 2; packed++) {
            dt_conv_args a = {.x = x, .bias = b, .epi = &epi, .y = y};
            if (packed)
                a.w_packed = wp;
            else
                a.w = wt;
            for (int64_t i = 0; i < ny; i++) y[i] = NAN;
            CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &a, DT_CONV_IM2COL, pool), DUCTILE_OK);
            double e = rel_err(y, R, ny);
            if (!(e <= 1e-4))
                fprintf(stderr, "strided conv c=%lld k=%lld %lldx%lld packed=%d: rel err %g\n", (long long)c,
                        (long long)k, (long long)h, (long long)w, packed, e);
            CHECK(e <= 1e-4);
        }
        free(x), free(wt), free(b), free(res), free(y), free(wp), free(R);
    }
}

static void test_conv_errors_name_inputs(void)
{
    ductile_layer *L = make_layer("Conv", 2, 1);
    int64_t xd[4] = {1, 3, 8, 8}, wd[4] = {64, 1, 5, 5};
    dt_view in[2] = {view(4, xd, NULL), view(4, wd, NULL)}, out;
    CHECK_EQ_INT(opdef("Conv")->infer(L, in, &out), DUCTILE_ERR_SHAPE);
    CHECK(strstr(dt_last_error(),
                 "input 0 (X) [1,3,8,8] has 3 channels but input 1 (W) [64,1,5,5] with group 1 "
                 "expects 1") != NULL);

    L = make_layer("Conv", 2, 1);
    set_str(L, "auto_pad", "SAME_MIDDLE");
    CHECK_EQ_INT(opdef("Conv")->check(L), DUCTILE_ERR_UNSUPPORTED);
    CHECK(strstr(dt_last_error(), "'auto_pad' = 'SAME_MIDDLE'") != NULL);

    L = make_layer("Conv", 2, 1);
    int64_t k4[4] = {3, 3, 3, 3};
    set_ints(L, "kernel_shape", k4, 4);
    CHECK_EQ_INT(opdef("Conv")->check(L), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(dt_last_error(),
                 "attribute 'kernel_shape' has 4 values; only 1-D, 2-D and 3-D convolutions are supported");
    L = make_layer("Conv", 2, 1);
    int64_t k3[3] = {3, 3, 3};
    set_ints(L, "kernel_shape", k3, 3);
    CHECK_EQ_INT(opdef("Conv")->check(L), DUCTILE_OK);

    L = make_layer("Conv", 2, 0);
    int64_t xs[4] = {1, 3, 2, 2}, ws[4] = {4, 3, 3, 3};
    dt_view small[2] = {view(4, xs, NULL), view(4, ws, NULL)};
    CHECK_EQ_INT(opdef("Conv")->infer(L, small, &out), DUCTILE_ERR_SHAPE);
    CHECK(strstr(dt_last_error(), "smaller than the dilated kernel") != NULL);

    L = make_layer("Conv", 3, 0);
    int64_t xb[4] = {1, 3, 8, 8}, wb[4] = {4, 3, 3, 3}, bb[1] = {5};
    dt_view wbias[3] = {view(4, xb, NULL), view(4, wb, NULL), view(1, bb, NULL)};
    CHECK_EQ_INT(opdef("Conv")->infer(L, wbias, &out), DUCTILE_ERR_SHAPE);
    CHECK(strstr(dt_last_error(), "input 2 (B) has shape [5]; expected [4]") != NULL);
}

int main(void)
{
    if (ophelp_begin()) return 1;
    dt_pool *pools[2] = {NULL, pool};
    for (int p = 0; p < 2; p++) {
        test_sgemm_odd_sizes_match_reference(pools[p]);
        test_sgemm_large_blocks_beta_bias(pools[p]);
        test_gemm_op_trans_alpha_beta_broadcast(pools[p]);
        test_matmul_broadcast_and_1d(pools[p]);
        test_sgemm_packed_b_matches_reference(pools[p]);
        test_packed_b_in_place_a_same_bits(pools[p]);
        test_packed_b_deep_k_blocks_of_512(pools[p]);
        test_sgemm_narrow_last_panel_and_epilogue(pools[p]);
        test_packed_matmul_and_gemm_match_unpacked(pools[p]);
        test_conv_matches_reference(pools[p]);
        test_conv_paths_packed_odd_sizes(pools[p]);
        test_conv_1x1_far_b(pools[p]);
        test_conv_strided_two_k_blocks(pools[p]);
    }
    test_gemm_errors_name_inputs();
    test_matmul_errors_name_inputs();
    test_prepack_leaves_other_matmuls();
    test_rows_kernels_match_naive();
    test_avx2_kernel_matches_naive();
    test_narrow_kernel_matches_wide_bit_for_bit();
    test_narrow_panels_kernel_matches_wide_bit_for_bit();
    test_small_products_split_by_columns_same_bits();
    test_fine_split_same_bits();
    test_pack_a_full_exact();
    test_gelu_in_store_matches_pass();
    test_sigmoid_silu_in_store_match_pass();
    test_lean_sigmoid_error();
    test_exact_sigmoid_rows_scalar_bits();
    test_packed_b_errors();
    test_conv_errors_name_inputs();
    ophelp_end();
    TEST_MAIN_END();
}
