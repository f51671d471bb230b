/* The CUDA backend's host-side logic without a GPU (CI builds the backend but has no GPU):
 *   - the plan cache (backend.c, dt_cuda_plan_slot): plans hold only host memory until a
 *     kernel fills their descriptors. Each layer keeps its own DT_CUDA_WAYS plans: many layers
 *     never evict each other (the old direct-mapped table re-planned colliding layers on every
 *     run, ~1 ms each), a layer's shapes hit until it has seen more than DT_CUDA_WAYS of them,
 *     and the table grows;
 *   - the tactics offered per conv geometry and matmul (tactics.c, conv_own.c), and which one a
 *     run uses (the builder's, else the stored one of the context's profile). */
#include "testutil.h"

#ifdef DT_WITH_CUDA
#include "backend/cuda/conv_own.h"
#include "backend/cuda/cuda.h"
#include "core/alloc.h"
#include "graph/network.h"

enum { LAYERS = 3000 };

static bool has(const int *ids, int n, int id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

/* The tactics of a 2-D conv: x [n, c, h, w], w [m, c/group, k, k], tensors of `dtype`. */
static int conv_tactics_dt(int dtype, int64_t n, int64_t c, int64_t h, int64_t m, int64_t group, int64_t k,
                           int64_t stride, int64_t pad, int *ids)
{
    int64_t strides[2] = {stride, stride}, pads[4] = {pad, pad, pad, pad};
    dt_attr attrs[3] = {
        {.name = "group", .type = DT_ATTR_INT, .i = group},
        {.name = "strides", .type = DT_ATTR_INTS, .n = 2, .ints = strides},
        {.name = "pads", .type = DT_ATTR_INTS, .n = 4, .ints = pads},
    };
    ductile_layer L = {.name = "conv", .op_type = "Conv", .n_in = 2, .n_attr = 3, .attrs = attrs};
    dt_view in[2] = {{.dtype = dtype, .rank = 4, .dims = {n, c, h, h}},
                     {.dtype = dtype, .rank = 4, .dims = {m, c / group, k, k}}};
    return dt_cuda_tactics(&L, in, ids, 16);
}

static int conv_tactics(int64_t n, int64_t c, int64_t h, int64_t m, int64_t group, int64_t k, int64_t stride,
                        int64_t pad, int *ids)
{
    return conv_tactics_dt(DUCTILE_FLOAT32, n, c, h, m, group, k, stride, pad, ids);
}

/* The own conv kernels have float16 and bfloat16 instantiations: a half conv (builder
 * precision pass) is offered the same own kernels as a float32 one, next to cuDNN's
 * algorithms, and its default path (no tactic) is the own depthwise kernel. Other dtypes get
 * no own kernel. */
static void check_half_tactics(void)
{
    static const int halves[] = {DUCTILE_FLOAT16, DUCTILE_BFLOAT16};
    int ids[16], f32[16];
    struct { int64_t n, c, h, m, group, k, stride, pad; } cases[] = {
        {1, 32, 112, 32, 32, 3, 1, 1}, /* depthwise 3x3 */
        {1, 16, 112, 96, 1, 1, 1, 0},  /* pointwise */
        {2, 3, 224, 32, 1, 3, 2, 1},   /* strided 3x3 */
        {1, 320, 7, 96, 1, 1, 1, 0},   /* pointwise, deep at 7x7: split K */
    };
    for (int i = 0; i < 2; i++) {
        int dt = halves[i];
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            int n = conv_tactics_dt(dt, cases[c].n, cases[c].c, cases[c].h, cases[c].m, cases[c].group, cases[c].k,
                                    cases[c].stride, cases[c].pad, ids);
            int nf = conv_tactics_dt(DUCTILE_FLOAT32, cases[c].n, cases[c].c, cases[c].h, cases[c].m, cases[c].group,
                                     cases[c].k, cases[c].stride, cases[c].pad, f32);
            /* The same list, plus the tensor-core kernels where the GPU has them (sm_80+;
             * never for float32). */
            int m = 0;
            for (int k = 0; k < n; k++)
                if (ids[k] < DT_CUDA_CONV_TC_POINTWISE || ids[k] > DT_CUDA_CONV_TC_IGEMM_SPLITK) ids[m++] = ids[k];
            CHECK_EQ_INT(m, nf);
            for (int k = 0; k < m && k < nf; k++) CHECK_EQ_INT(ids[k], f32[k]);
            for (int k = 0; k < nf; k++) CHECK(f32[k] < DT_CUDA_CONV_TC_POINTWISE);
            CHECK(!has(ids, n, 8));
        }
        int n = conv_tactics_dt(dt, 1, 32, 112, 32, 32, 3, 1, 1, ids);
        CHECK(has(ids, n, DT_CUDA_CONV_DEPTHWISE) && has(ids, n, DT_CUDA_CONV_IGEMM32) && has(ids, n, 1));
        dt_conv_geom g = {.batch = 1, .c = 32, .m = 32, .group = 32, .in = {112, 112}, .out = {112, 112},
                          .k = {3, 3}, .s = {1, 1}, .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}};
        CHECK(dt_cuda_conv_own_applies(&g, DUCTILE_FLOAT32, DT_CUDA_CONV_DEPTHWISE));
        CHECK(dt_cuda_conv_own_applies(&g, dt, DT_CUDA_CONV_DEPTHWISE));
        CHECK(dt_cuda_conv_own_applies(&g, dt, DT_CUDA_CONV_IGEMM32));
        CHECK(!dt_cuda_conv_own_applies(&g, DUCTILE_FLOAT64, DT_CUDA_CONV_DEPTHWISE));
        CHECK(!dt_cuda_conv_own_applies(&g, DUCTILE_INT8, DT_CUDA_CONV_IGEMM32));
    }
}

/* What a profile calls the conv kernel a run takes (dt_cuda_kernel_path): the stored tactic,
 * the own depthwise kernel by default, cuDNN's heuristic otherwise. */
static const char *conv_path(int dtype, int64_t c, int64_t m, int64_t group, int64_t k, int64_t pad, int64_t stored)
{
    int64_t pads[4] = {pad, pad, pad, pad}, tactic[1] = {stored};
    dt_attr attrs[3] = {
        {.name = "group", .type = DT_ATTR_INT, .i = group},
        {.name = "pads", .type = DT_ATTR_INTS, .n = 4, .ints = pads},
        {.name = "tactic", .type = DT_ATTR_INTS, .n = 1, .ints = tactic},
    };
    ductile_layer L = {.name = "conv", .op_type = "FusedConv", .n_in = 2, .n_attr = stored ? 3 : 2, .attrs = attrs};
    dt_view in[2] = {{.dtype = dtype, .rank = 4, .dims = {1, c, 14, 14}}, {.dtype = dtype, .rank = 4, .dims = {m, c / group, k, k}}};
    dt_view out[1] = {{.dtype = dtype, .rank = 4, .dims = {1, m, 14, 14}}};
    return dt_cuda_kernel_path(&L, NULL, in, out, 0, 1);
}

static void check_kernel_paths(void)
{
    CHECK_EQ_STR(conv_path(DUCTILE_FLOAT16, 32, 32, 32, 3, 1, 0), "own_dw_f16");
    CHECK_EQ_STR(conv_path(DUCTILE_FLOAT32, 32, 32, 32, 3, 1, 0), "own_dw_f32");
    CHECK_EQ_STR(conv_path(DUCTILE_BFLOAT16, 16, 64, 1, 1, 0, DT_CUDA_CONV_POINTWISE64), "own_pw64_bf16");
    CHECK_EQ_STR(conv_path(DUCTILE_FLOAT16, 16, 64, 1, 3, 1, DT_CUDA_CONV_IGEMM32), "own_igemm32_f16");
    /* A pointwise tactic stored for a 3x3 conv does not apply: conv.c runs cuDNN's heuristic. */
    CHECK_EQ_STR(conv_path(DUCTILE_FLOAT32, 16, 64, 1, 3, 1, DT_CUDA_CONV_POINTWISE32), "cudnn_heuristic");
    CHECK_EQ_STR(conv_path(DUCTILE_FLOAT16, 16, 64, 1, 3, 1, DT_CUDA_CONV_CUDNN + 1), "cudnn_algo1");
    CHECK_EQ_STR(conv_path(DUCTILE_FLOAT32, 16, 64, 1, 1, 0, 0), "cudnn_heuristic");
    /* Tensor cores: never for float32; for half where the GPU has them (none without one). */
    CHECK_EQ_STR(conv_path(DUCTILE_FLOAT32, 16, 64, 1, 1, 0, DT_CUDA_CONV_TC_POINTWISE), "cudnn_heuristic");
    dt_conv_geom pw = {.batch = 1, .c = 16, .m = 64, .group = 1, .in = {14, 14}, .out = {14, 14},
                       .k = {1, 1}, .s = {1, 1}, .d = {1, 1}};
    bool tc = dt_cuda_conv_own_applies(&pw, DUCTILE_FLOAT16, DT_CUDA_CONV_TC_POINTWISE);
    CHECK(!dt_cuda_conv_own_applies(&pw, DUCTILE_FLOAT32, DT_CUDA_CONV_TC_POINTWISE));
    CHECK_EQ_STR(conv_path(DUCTILE_FLOAT16, 16, 64, 1, 1, 0, DT_CUDA_CONV_TC_POINTWISE), tc ? "own_tc_pw_f16" : "cudnn_heuristic");
    CHECK_EQ_STR(conv_path(DUCTILE_BFLOAT16, 16, 64, 1, 3, 1, DT_CUDA_CONV_TC_IGEMM), tc ? "own_tc_igemm_bf16" : "cudnn_heuristic");
    ductile_layer relu = {.name = "r", .op_type = "Relu", .n_in = 1};
    dt_view v[1] = {{.dtype = DUCTILE_FLOAT32, .rank = 1, .dims = {4}}};
    CHECK(dt_cuda_kernel_path(&relu, NULL, v, v, 0, 1) == NULL);
}

static void check_tactics(void)
{
    int ids[16];
    /* Depthwise 3x3: the own depthwise kernel and implicit GEMM, cuDNN's GEMM-based
     * algorithms; not FFT or Winograd (grouped), never WINOGRAD_NONFUSED (id 8). */
    int n = conv_tactics(1, 32, 112, 32, 32, 3, 1, 1, ids);
    CHECK(has(ids, n, DT_CUDA_CONV_DEPTHWISE) && has(ids, n, DT_CUDA_CONV_IGEMM64) && has(ids, n, DT_CUDA_CONV_IGEMM32));
    CHECK(has(ids, n, 1) && has(ids, n, 2) && has(ids, n, 3));
    CHECK(!has(ids, n, 5) && !has(ids, n, 6) && !has(ids, n, 7) && !has(ids, n, 8));
    CHECK(!has(ids, n, DT_CUDA_CONV_POINTWISE64));
    /* Pointwise at a large map: the pointwise kernels (the general GEMM is not offered), no
     * split (the grid fills any GPU), every cuDNN algorithm of a unit-stride conv. */
    n = conv_tactics(1, 16, 112, 96, 1, 1, 1, 0, ids);
    CHECK(has(ids, n, DT_CUDA_CONV_POINTWISE64) && has(ids, n, DT_CUDA_CONV_POINTWISE32));
    CHECK(!has(ids, n, DT_CUDA_CONV_IGEMM64) && !has(ids, n, DT_CUDA_CONV_IGEMM32) && !has(ids, n, DT_CUDA_CONV_DEPTHWISE));
    CHECK(!has(ids, n, DT_CUDA_CONV_POINTWISE32_SPLITK) && !has(ids, n, DT_CUDA_CONV_IGEMM32_SPLITK));
    CHECK(has(ids, n, 1) && has(ids, n, 2) && has(ids, n, 3) && has(ids, n, 5) && has(ids, n, 6) && has(ids, n, 7));
    CHECK(!has(ids, n, 8));
    /* A strided 3x3 conv: implicit GEMM and the GEMM-based cuDNN algorithms only. */
    n = conv_tactics(2, 3, 224, 32, 1, 3, 2, 1, ids);
    CHECK(has(ids, n, DT_CUDA_CONV_IGEMM64) && has(ids, n, DT_CUDA_CONV_IGEMM32));
    CHECK(has(ids, n, 1) && has(ids, n, 2) && has(ids, n, 3) && !has(ids, n, 5) && !has(ids, n, 7));
    CHECK(!has(ids, n, DT_CUDA_CONV_DEPTHWISE) && !has(ids, n, DT_CUDA_CONV_POINTWISE64));
    /* A 1x1 conv with pads is not pointwise. */
    n = conv_tactics(1, 8, 9, 8, 1, 1, 1, 1, ids);
    CHECK(!has(ids, n, DT_CUDA_CONV_POINTWISE64) && has(ids, n, DT_CUDA_CONV_IGEMM32));
    /* Shapes the geometry refuses: nothing to time. */
    CHECK_EQ_INT(conv_tactics(1, 8, 2, 8, 1, 5, 1, 0, ids), 0);
    /* MatMul and Gemm: cuBLASLt's first DT_CUDA_LT_TACTICS candidates; others: none. */
    ductile_layer mm = {.name = "mm", .op_type = "MatMul", .n_in = 2};
    dt_view v[2] = {{.dtype = DUCTILE_FLOAT32, .rank = 2, .dims = {4, 5}}, {.dtype = DUCTILE_FLOAT32, .rank = 2, .dims = {5, 6}}};
    n = dt_cuda_tactics(&mm, v, ids, 16);
    CHECK_EQ_INT(n, DT_CUDA_LT_TACTICS);
    CHECK(has(ids, n, 1) && has(ids, n, DT_CUDA_LT_TACTICS));
    ductile_layer relu = {.name = "r", .op_type = "Relu", .n_in = 1};
    CHECK_EQ_INT(dt_cuda_tactics(&relu, v, ids, 16), 0);
    /* The tactic a run uses: the builder's, else the profile's stored one, else 0. */
    int64_t stored[2] = {17, 3};
    dt_attr t = {.name = "tactic", .type = DT_ATTR_INTS, .n = 2, .ints = stored};
    ductile_layer L = {.name = "c", .op_type = "Conv", .n_in = 2, .n_attr = 1, .attrs = &t};
    CHECK_EQ_INT(dt_cuda_layer_tactic(&L, &(dt_exec){.profile = 0}), 17);
    CHECK_EQ_INT(dt_cuda_layer_tactic(&L, &(dt_exec){.profile = 1}), 3);
    CHECK_EQ_INT(dt_cuda_layer_tactic(&L, &(dt_exec){.profile = 2}), 0);
    CHECK_EQ_INT(dt_cuda_layer_tactic(&L, &(dt_exec){.profile = 1, .tactic = 16}), 16);
    CHECK_EQ_INT(dt_cuda_layer_tactic(&relu, &(dt_exec){.profile = 0}), 0);
}

int main(void)
{
    check_tactics();
    check_half_tactics();
    check_kernel_paths();
    static ductile_layer layers[LAYERS];
    dt_cuda_state *st = dt_calloc(1, sizeof *st);
    CHECK(st != NULL);
    if (!st) TEST_MAIN_END();
    int64_t key[DT_CUDA_KEY] = {0};
    bool hit = true;
    /* First pass: every (layer, shape) is new; its slot comes back empty with the key set. */
    int fresh = 0;
    for (int i = 0; i < LAYERS; i++) {
        key[0] = i % 7;
        dt_cuda_plan *p = dt_cuda_plan_slot(st, &layers[i], key, &hit);
        CHECK(p != NULL);
        if (!p) break;
        fresh += !hit && p->kind == 0 && p->key[0] == i % 7;
        p->kind = 1; /* as if planned (no descriptors: nothing for release to destroy) */
        p->algo = i;
    }
    CHECK_EQ_INT(fresh, LAYERS);
    CHECK(st->plans_cap >= 2 * LAYERS);
    /* Second pass: every one hits, with what was stored for that layer. */
    int hits = 0;
    for (int i = 0; i < LAYERS; i++) {
        key[0] = i % 7;
        dt_cuda_plan *p = dt_cuda_plan_slot(st, &layers[i], key, &hit);
        hits += hit && p && p->algo == i;
    }
    CHECK_EQ_INT(hits, LAYERS);
    /* One layer at DT_CUDA_WAYS shapes: all kept; one more replaces the oldest. */
    ductile_layer *L = &layers[5];
    for (int s = 1; s < DT_CUDA_WAYS; s++) {
        key[0] = 100 + s;
        dt_cuda_plan *p = dt_cuda_plan_slot(st, L, key, &hit);
        CHECK(p != NULL && !hit);
        if (p) p->algo = 100 + s;
    }
    key[0] = 5 % 7;
    dt_cuda_plan *p = dt_cuda_plan_slot(st, L, key, &hit);
    CHECK(hit && p && p->algo == 5);
    for (int s = 1; s < DT_CUDA_WAYS; s++) {
        key[0] = 100 + s;
        p = dt_cuda_plan_slot(st, L, key, &hit);
        CHECK(hit && p && p->algo == 100 + s);
    }
    key[0] = 999;
    p = dt_cuda_plan_slot(st, L, key, &hit);
    CHECK(p != NULL && !hit && p->algo == 0);
    key[0] = 5 % 7; /* the first one in was the one replaced */
    p = dt_cuda_plan_slot(st, L, key, &hit);
    CHECK(p != NULL && !hit);
    /* The tactic is part of the key (conv.c: key[7] the cuDNN algorithm). */
    int64_t k2[DT_CUDA_KEY] = {1, 2, 3};
    p = dt_cuda_plan_slot(st, &layers[9], k2, &hit);
    CHECK(p != NULL && !hit);
    k2[7] = 4;
    p = dt_cuda_plan_slot(st, &layers[9], k2, &hit);
    CHECK(p != NULL && !hit);
    k2[7] = 0;
    p = dt_cuda_plan_slot(st, &layers[9], k2, &hit);
    CHECK(p != NULL && hit);
    for (size_t i = 0; i < st->plans_cap; i++)
        for (int w = 0; w < DT_CUDA_WAYS; w++) dt_cuda_plan_release(&st->plans[i].way[w]);
    dt_free(st->plans);
    dt_free(st);
    TEST_MAIN_END();
}
#else
int main(void)
{
    fprintf(stderr, "skipped: built without the CUDA backend (CUDA=0)\n");
    TEST_MAIN_END();
}
#endif
