/* The CUDA backend's host-side logic without a GPU (CI builds the backend but has no GPU):
 *   - the plan cache (backend.c, dt_cuda_plan_slot): plans hold only host memory until a
 *     kernel fills their descriptors. Each layer keeps its own DT_CUDA_WAYS plans: many layers
 *     never evict each other (the old direct-mapped table re-planned colliding layers on every
 *     run, ~1 ms each), a layer's shapes hit until it has seen more than DT_CUDA_WAYS of them,
 *     and the table grows, only to add a layer (a lookup at planned shapes never allocates);
 *     the library's refusals stay in it with their message;
 *   - the tactics offered per conv geometry and matmul (tactics.c, conv_own.c), and which one a
 *     run uses (the builder's, else the stored one of the context's profile);
 *   - the compiled layers (layers.h): what each prepare reads from its layer into the params
 *     its run reads instead (attribute defaults, op codes, Clip's constant bounds of every
 *     float type, the opset rules; Conv / FusedConv's conv attributes, auto_pad, epilogue,
 *     tactics and refusals), the cuBLASLt workspace and the split-K sums asked as scratch,
 *     and the layers supports() now sends to the host instead of failing at run;
 *   - fastdiv.h's division by a launch-fixed divisor, against '/', at every divisor below
 *     4096, powers of two and random ones up to 2^31, at the dividends where it could slip. */
#include "testutil.h"

#ifdef DT_WITH_CUDA
#include "backend/cuda/conv_own.h"
#include "backend/cuda/conv_tc_nhwc.h"
#include "backend/cuda/cuda.h"
#include "backend/cuda/fastdiv.h"
#include "backend/cuda/layers.h"
#include "core/alloc.h"
#include "core/status.h"
#include "graph/network.h"

#include <math.h>
#include <stdlib.h>

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
            for (int k = 0; k < nf; k++) CHECK(f32[k] < DT_CUDA_CONV_TC_POINTWISE || f32[k] == DT_CUDA_CONV_DW_TILED);
            CHECK(!has(ids, n, 8));
        }
        int n = conv_tactics_dt(dt, 1, 32, 112, 32, 32, 3, 1, 1, ids);
        CHECK(has(ids, n, DT_CUDA_CONV_DEPTHWISE) && has(ids, n, DT_CUDA_CONV_IGEMM32) && has(ids, n, 1));
        dt_conv_geom g = {.batch = 1, .c = 32, .m = 32, .group = 32, .in = {112, 112}, .out = {112, 112},
                          .k = {3, 3}, .s = {1, 1}, .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}};
        CHECK(dt_cuda_conv_own_applies(&g, DUCTILE_FLOAT32, DT_CUDA_CONV_DEPTHWISE));
        CHECK(dt_cuda_conv_own_applies(&g, dt, DT_CUDA_CONV_DEPTHWISE));
        CHECK(dt_cuda_conv_own_applies(&g, dt, DT_CUDA_CONV_DW_TILED));
        CHECK(dt_cuda_conv_own_applies(&g, dt, DT_CUDA_CONV_DW_TILED_NHWC));
        CHECK(dt_cuda_conv_own_applies(&g, dt, DT_CUDA_CONV_IGEMM32));
        /* The tiled kernels: a staged tile of at most 32 KiB; a dilation of 1000 needs more
         * even at one output per tile (the generic kernel takes it). */
        dt_conv_geom big = g;
        big.d[0] = big.d[1] = 1000, big.pb[0] = big.pb[1] = big.pe[0] = big.pe[1] = 1000;
        CHECK(dt_cuda_conv_own_applies(&big, dt, DT_CUDA_CONV_DEPTHWISE));
        CHECK(!dt_cuda_conv_own_applies(&big, dt, DT_CUDA_CONV_DW_TILED));
        CHECK(!dt_cuda_conv_own_applies(&big, dt, DT_CUDA_CONV_DW_TILED_NHWC));
        CHECK(!dt_cuda_conv_own_applies(&g, DUCTILE_FLOAT64, DT_CUDA_CONV_DEPTHWISE));
        CHECK(!dt_cuda_conv_own_applies(&g, DUCTILE_INT8, DT_CUDA_CONV_IGEMM32));
    }
}

/* Half convs with a bias time each cuDNN algorithm that takes the bias and activation in the
 * call (conv-bias-activation: ReLU, Clip(0, x), identity with IMPLICIT_PRECOMP_GEMM) also in
 * its plain form (the convolution, then the epilogue kernel); float32, and layers without a
 * bias or with another activation, get one form. Channels last too, within the 24 ids the
 * builder takes. */
static int biased_conv_tactics(int dtype, const char *act, bool bias, bool nhwc, int *ids)
{
    int64_t pads[4] = {1, 1, 1, 1};
    dt_attr attrs[3] = {
        {.name = "pads", .type = DT_ATTR_INTS, .n = 4, .ints = pads},
        {.name = "activation", .type = DT_ATTR_STRING, .s = act, .s_len = strlen(act)},
        {.name = "layout", .type = DT_ATTR_STRING, .s = nhwc ? "NHWC" : "", .s_len = nhwc ? 4 : 0},
    };
    ductile_tensor b = {.name = "b", .dtype = dtype, .rank = 1, .dims = {64}};
    ductile_tensor *ins[3] = {NULL, NULL, &b};
    ductile_layer L = {.name = "conv", .op_type = "FusedConv", .n_in = bias ? 3 : 2, .in = ins, .n_attr = 3, .attrs = attrs};
    dt_view in[3] = {{.dtype = dtype, .rank = 4, .dims = {1, 32, 28, 28}}, {.dtype = dtype, .rank = 4, .dims = {64, 32, 3, 3}},
                     {.dtype = dtype, .rank = 1, .dims = {64}}};
    if (nhwc) {
        int64_t x[4] = {1, 28, 28, 32}, w[4] = {64, 3, 3, 32};
        memcpy(in[0].dims, x, sizeof x);
        memcpy(in[1].dims, w, sizeof w);
    }
    return dt_cuda_tactics(&L, in, ids, 24);
}

static void check_plain_cudnn_tactics(void)
{
    int ids[24];
    for (int nhwc = 0; nhwc < 2; nhwc++) {
        int n = biased_conv_tactics(DUCTILE_FLOAT16, "Relu", true, nhwc, ids);
        CHECK(n < 24);
        /* 3x3, unit strides: IMPLICIT_GEMM, IMPLICIT_PRECOMP_GEMM, GEMM; FFT, FFT_TILING and
         * WINOGRAD only with DUCTILE_CUDA_CONV_MIXING=1 (dt_cudnn_algo_allowed: they spread a
         * NaN or an infinity over planes and tiles); never DIRECT or WINOGRAD_NONFUSED */
        static const int algos[] = {0, 1, 2, 4, 5, 6};
        for (int a = 0; a < 6; a++)
            CHECK(has(ids, n, DT_CUDA_CONV_CUDNN + algos[a]) == (algos[a] < 4) &&
                  has(ids, n, DT_CUDA_CONV_CUDNN_PLAIN + algos[a]) == (algos[a] < 4));
        setenv("DUCTILE_CUDA_CONV_MIXING", "1", 1);
        n = biased_conv_tactics(DUCTILE_FLOAT16, "Relu", true, nhwc, ids);
        unsetenv("DUCTILE_CUDA_CONV_MIXING");
        CHECK(n < 24);
        for (int a = 0; a < 6; a++)
            CHECK(has(ids, n, DT_CUDA_CONV_CUDNN + algos[a]) && has(ids, n, DT_CUDA_CONV_CUDNN_PLAIN + algos[a]));
        n = biased_conv_tactics(DUCTILE_BFLOAT16, "", true, nhwc, ids);
        CHECK(has(ids, n, DT_CUDA_CONV_CUDNN_PLAIN + 1) && !has(ids, n, DT_CUDA_CONV_CUDNN_PLAIN + 0));
        n = biased_conv_tactics(DUCTILE_FLOAT16, "HardSwish", true, nhwc, ids);
        for (int k = 0; k < n; k++) CHECK(!DT_CUDA_CONV_CUDNN_IS_PLAIN(ids[k]));
        n = biased_conv_tactics(DUCTILE_FLOAT16, "Relu", false, nhwc, ids);
        for (int k = 0; k < n; k++) CHECK(!DT_CUDA_CONV_CUDNN_IS_PLAIN(ids[k]));
        n = biased_conv_tactics(DUCTILE_FLOAT32, "Relu", true, nhwc, ids);
        CHECK(has(ids, n, DT_CUDA_CONV_CUDNN + 1));
        for (int k = 0; k < n; k++) CHECK(!DT_CUDA_CONV_CUDNN_IS_PLAIN(ids[k]));
    }
    CHECK_EQ_INT(DT_CUDA_CONV_CUDNN_ALGO(DT_CUDA_CONV_CUDNN_PLAIN + 6), 6);
    CHECK_EQ_INT(DT_CUDA_CONV_CUDNN_ALGO(DT_CUDA_CONV_CUDNN + 6), 6);
    CHECK(DT_CUDA_CONV_IS_CUDNN(DT_CUDA_CONV_CUDNN_PLAIN + 6) && !DT_CUDA_CONV_IS_CUDNN(DT_CUDA_CONV_DEPTHWISE));
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
    /* From the compiled params, as the profiler asks (none: no name). */
    void *params = NULL;
    CHECK_EQ_INT(dt_cuda_conv_kernel.prepare(&L, &params), DUCTILE_OK);
    tactic[0] = DT_CUDA_CONV_CUDNN + 7; /* after prepare: not what the run reads */
    const char *path = dt_cuda_kernel_path(&L, params, in, out, 0, DUCTILE_PROFILE_OPT, 1);
    CHECK(dt_cuda_kernel_path(&L, NULL, in, out, 0, DUCTILE_PROFILE_OPT, 1) == NULL);
    dt_free(params);
    return path;
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
    CHECK_EQ_STR(conv_path(DUCTILE_FLOAT16, 16, 64, 1, 3, 1, DT_CUDA_CONV_CUDNN_PLAIN + 1), "cudnn_algo1_plain");
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
    CHECK(dt_cuda_kernel_path(&relu, NULL, v, v, 0, DUCTILE_PROFILE_OPT, 1) == NULL);
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
    CHECK(has(ids, n, 1) && has(ids, n, 2) && has(ids, n, 3) && !has(ids, n, 5) && !has(ids, n, 6) && !has(ids, n, 7));
    CHECK(!has(ids, n, 8));
    setenv("DUCTILE_CUDA_CONV_MIXING", "1", 1);
    n = conv_tactics(1, 16, 112, 96, 1, 1, 1, 0, ids);
    unsetenv("DUCTILE_CUDA_CONV_MIXING");
    CHECK(has(ids, n, 5) && has(ids, n, 6) && has(ids, n, 7) && !has(ids, n, 8));
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
}

/* ---- compiled layers: prepare's params ---- */

static dt_attr a_int(const char *name, int64_t v) { return (dt_attr){.name = name, .type = DT_ATTR_INT, .i = v}; }
static dt_attr a_float(const char *name, float v) { return (dt_attr){.name = name, .type = DT_ATTR_FLOAT, .f = v}; }
static dt_attr a_str(const char *name, const char *v) { return (dt_attr){.name = name, .type = DT_ATTR_STRING, .s = v}; }
static dt_attr a_ints(const char *name, const int64_t *v, int64_t n)
{
    return (dt_attr){.name = name, .type = DT_ATTR_INTS, .n = n, .ints = v};
}

/* A layer of op at opset with attributes and n_in inputs (the tensors in[], NULL: omitted). */
static ductile_layer layer(const char *op, int opset, dt_attr *attrs, int n_attr, ductile_tensor **in, int n_in)
{
    return (ductile_layer){.name = "n", .op_type = op, .domain = "", .opset = opset, .n_in = n_in, .in = in,
                           .n_out = 1, .n_attr = n_attr, .attrs = attrs};
}

/* Runs the CUDA table's prepare for L; the params, to dt_free (NULL when it failed). */
static void *prepare(const ductile_layer *L)
{
    const dt_kernel *k = dt_cuda_kernel(L->op_type);
    CHECK(k != NULL && k->prepare != NULL);
    void *params = NULL;
    if (!k || !k->prepare) return NULL;
    ductile_status s = k->prepare(L, &params);
    if (s) fprintf(stderr, "prepare %s: %s\n", L->op_type, ductile_last_error());
    CHECK_EQ_INT(s, DUCTILE_OK);
    return s ? NULL : params;
}

static void check_unary(const char *op, int opset, dt_attr *attrs, int n_attr, ductile_tensor **in, int n_in, int code,
                        float p0, float p1)
{
    ductile_layer L = layer(op, opset, attrs, n_attr, in, n_in);
    dt_cu_unary_params *p = prepare(&L);
    if (!p) return;
    CHECK(p->L == &L);
    CHECK_EQ_INT(p->code, code);
    if (p->p0 != p0 || p->p1 != p1) fprintf(stderr, "%s: p0 %g p1 %g, expected %g %g\n", op, p->p0, p->p1, p0, p1);
    CHECK(p->p0 == p0 && p->p1 == p1);
    dt_free(p);
}

static void check_prepare_elementwise(void)
{
    dt_attr gelu[] = {a_str("approximate", "tanh")}, hs[] = {a_float("alpha", 0.3f), a_float("beta", 0.4f)};
    dt_attr lrelu[] = {a_float("alpha", 0.07f)}, clip6[] = {a_float("min", -0.2f), a_float("max", 0.3f)};
    check_unary("Relu", 14, NULL, 0, NULL, 1, DT_CU_RELU, 0, 0);
    check_unary("Gelu", 20, gelu, 1, NULL, 1, DT_CU_GELU_TANH, 0, 0);
    check_unary("Gelu", 20, NULL, 0, NULL, 1, DT_CU_GELU, 0, 0);
    check_unary("HardSigmoid", 6, hs, 2, NULL, 1, DT_CU_HARDSIGMOID, 0.3f, 0.4f);
    check_unary("HardSigmoid", 6, NULL, 0, NULL, 1, DT_CU_HARDSIGMOID, 0.2f, 0.5f);
    check_unary("HardSwish", 14, NULL, 0, NULL, 1, DT_CU_HARDSWISH, 1.f / 6.f, 0.5f);
    check_unary("LeakyRelu", 6, lrelu, 1, NULL, 1, DT_CU_LEAKYRELU, 0.07f, 0);
    check_unary("LeakyRelu", 6, NULL, 0, NULL, 1, DT_CU_LEAKYRELU, 0.01f, 0);
    check_unary("Elu", 6, NULL, 0, NULL, 1, DT_CU_ELU, 1.0f, 0);
    /* Clip: attributes before opset 11, constant inputs after, of the layer's float type. */
    check_unary("Clip", 6, clip6, 2, NULL, 1, DT_CU_CLIP, -0.2f, 0.3f);
    float lo32 = -0.5f, hi32 = 0.7f;
    uint16_t lo16 = 0xB800, hi16 = 0x3A00, lobf = 0xBF00; /* -0.5, 0.75 (float16); -0.5 (bfloat16) */
    ductile_tensor x = {.name = "x", .dtype = DUCTILE_FLOAT32, .rank = 2};
    ductile_tensor c32[2] = {{.name = "lo", .dtype = DUCTILE_FLOAT32, .data = &lo32, .nbytes = 4},
                             {.name = "hi", .dtype = DUCTILE_FLOAT32, .data = &hi32, .nbytes = 4}};
    ductile_tensor c16[2] = {{.name = "lo", .dtype = DUCTILE_FLOAT16, .data = &lo16, .nbytes = 2},
                             {.name = "hi", .dtype = DUCTILE_FLOAT16, .data = &hi16, .nbytes = 2}};
    ductile_tensor cbf = {.name = "lo", .dtype = DUCTILE_BFLOAT16, .data = &lobf, .nbytes = 2};
    ductile_tensor *in32[3] = {&x, &c32[0], &c32[1]}, *in16[3] = {&x, &c16[0], &c16[1]}, *inbf[2] = {&x, &cbf};
    check_unary("Clip", 13, NULL, 0, in32, 3, DT_CU_CLIP, -0.5f, 0.7f);
    check_unary("Clip", 13, NULL, 0, in16, 3, DT_CU_CLIP, -0.5f, 0.75f);
    check_unary("Clip", 13, NULL, 0, inbf, 2, DT_CU_CLIP, -0.5f, INFINITY);
    ductile_tensor *no_lo[3] = {&x, NULL, &c32[1]};
    check_unary("Clip", 13, NULL, 0, no_lo, 3, DT_CU_CLIP, -INFINITY, 0.7f);
    /* Bounds the kernel does not take (computed, or of another dtype: supports() sends the
     * layer to the host) leave the defaults, and prepare, which runs before supports(),
     * reads no byte past a 1-byte constant. */
    int8_t one = 1;
    ductile_tensor computed = {.name = "lo", .dtype = DUCTILE_FLOAT32}, i8 = {.name = "hi", .dtype = DUCTILE_INT8,
                                                                            .data = &one, .nbytes = 1};
    ductile_tensor *odd[3] = {&x, &computed, &i8};
    check_unary("Clip", 13, NULL, 0, odd, 3, DT_CU_CLIP, -INFINITY, INFINITY);

    static const struct { const char *op; int code; } codes[] = {
        {"Add", DT_CU_ADD}, {"Sub", DT_CU_SUB}, {"Pow", DT_CU_POW}, {"Min", DT_CU_MIN}, {"PRelu", DT_CU_PRELU},
        {"And", 0}, {"Or", 1}, {"Xor", 2},
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        ductile_layer L = layer(codes[i].op, 14, NULL, 0, NULL, 2);
        dt_cu_op_params *p = prepare(&L);
        if (p) CHECK_EQ_INT(p->code, codes[i].code);
        dt_free(p);
    }
}

static void check_prepare_nn(void)
{
    /* Softmax: opset 12 coerces at axis 1 by default, 13 normalizes the last axis. */
    ductile_layer sm12 = layer("Softmax", 12, NULL, 0, NULL, 1), sm13 = layer("LogSoftmax", 13, NULL, 0, NULL, 1);
    dt_cu_softmax_params *s = prepare(&sm12);
    if (s) CHECK(s->axis == 1 && s->coerce && !s->log);
    dt_free(s);
    s = prepare(&sm13);
    if (s) CHECK(s->axis == -1 && !s->coerce && s->log);
    dt_free(s);
    /* LayerNormalization: axis, epsilon and whether B is given. */
    ductile_tensor t = {.name = "t", .dtype = DUCTILE_FLOAT32};
    ductile_tensor *three[3] = {&t, &t, &t}, *no_b[3] = {&t, &t, NULL};
    dt_attr ln[] = {a_int("axis", -2), a_float("epsilon", 1e-3f)};
    ductile_layer l1 = layer("LayerNormalization", 17, ln, 2, three, 3), l2 = layer("LayerNormalization", 17, NULL, 0, no_b, 3);
    dt_cu_layernorm_params *n = prepare(&l1);
    if (n) CHECK(n->axis == -2 && n->eps == 1e-3f && n->has_bias);
    dt_free(n);
    n = prepare(&l2);
    if (n) CHECK(n->axis == -1 && n->eps == 1e-5f && !n->has_bias);
    dt_free(n);
    /* Pools: the shared reader's attributes and the kind. */
    int64_t k[2] = {3, 3}, pads[4] = {1, 0, 1, 2};
    dt_attr pa[] = {a_ints("kernel_shape", k, 2), a_ints("pads", pads, 4), a_int("count_include_pad", 1)};
    ductile_layer ap = layer("AveragePool", 19, pa, 3, three, 1), mp = layer("MaxPool", 12, pa, 2, three, 1);
    dt_cu_pool_params *pp = prepare(&ap);
    if (pp) CHECK(pp->avg && pp->a.nk == 2 && pp->a.count_include_pad && pp->a.has_p && pp->a.p[3] == 2);
    dt_free(pp);
    pp = prepare(&mp);
    if (pp) CHECK(!pp->avg && pp->a.nk == 2 && !pp->a.count_include_pad);
    dt_free(pp);
    /* Reductions: the op's code and the axes attribute (opset 13) or input (opset 18). */
    int64_t axes[1] = {1};
    dt_attr ra[] = {a_ints("axes", axes, 1)};
    ductile_layer r13 = layer("ReduceL2", 13, ra, 1, three, 1), r18 = layer("ReduceMean", 18, NULL, 0, three, 2);
    dt_cu_reduce_params *r = prepare(&r13);
    if (r) CHECK(r->code == DT_CU_RED_L2 && !r->a.from_input && r->a.n_axes == 1 && r->a.axes[0] == 1 && r->n_in == 1);
    dt_free(r);
    r = prepare(&r18);
    if (r) CHECK(r->code == DT_CU_RED_MEAN && r->a.from_input && r->n_in == 2);
    dt_free(r);
    /* What the shared reader refuses, prepare refuses at load, naming it (as the CPU does). */
    int64_t many[9] = {0};
    dt_attr rbad[] = {a_ints("axes", many, 9)};
    ductile_layer rb = layer("ReduceSum", 11, rbad, 1, three, 1);
    void *params = NULL;
    CHECK_EQ_INT(dt_cuda_kernel("ReduceSum")->prepare(&rb, &params), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "attribute 'axes' has 9 entries; a tensor has at most 8 dims");
    CHECK(params == NULL);
}

static void check_prepare_shape(void)
{
    int64_t perm[4] = {3, 1, 0, 2};
    dt_attr ta[] = {a_ints("perm", perm, 4)};
    ductile_layer t1 = layer("Transpose", 13, ta, 1, NULL, 1), t0 = layer("Transpose", 13, NULL, 0, NULL, 1);
    dt_cu_transpose_params *t = prepare(&t1);
    if (t) CHECK(t->n == 4 && t->perm[0] == 3 && t->perm[1] == 1 && t->perm[2] == 0 && t->perm[3] == 2);
    dt_free(t);
    t = prepare(&t0);
    if (t) CHECK(t->n == -1);
    dt_free(t);
    dt_attr ax[] = {a_int("axis", 1)};
    ductile_layer cc = layer("Concat", 13, ax, 1, NULL, 3), ga = layer("Gather", 13, NULL, 0, NULL, 2);
    dt_cu_axis_params *a = prepare(&cc);
    if (a) CHECK(a->axis == 1 && a->n_in == 3);
    dt_free(a);
    a = prepare(&ga);
    if (a) CHECK(a->axis == 0);
    dt_free(a);
    dt_attr crd[] = {a_int("blocksize", 2), a_str("mode", "CRD")}, dcr[] = {a_int("blocksize", 3)};
    ductile_layer d1 = layer("DepthToSpace", 13, crd, 2, NULL, 1), d2 = layer("DepthToSpace", 13, dcr, 1, NULL, 1);
    dt_cu_d2s_params *d = prepare(&d1);
    if (d) CHECK(d->block == 2 && d->crd);
    dt_free(d);
    d = prepare(&d2);
    if (d) CHECK(d->block == 3 && !d->crd);
    dt_free(d);
    /* Slice before opset 10: starts, ends, axes read once. */
    int64_t st[2] = {1, 0}, en[2] = {4, 2}, sa[2] = {0, 2};
    dt_attr sl[] = {a_ints("starts", st, 2), a_ints("ends", en, 2), a_ints("axes", sa, 2)};
    ductile_layer s9 = layer("Slice", 9, sl, 3, NULL, 1);
    dt_cu_slice_params *s = prepare(&s9);
    if (s) CHECK(!s->a.from_inputs && s->a.n[0] == 2 && s->a.v[1][0] == 4 && s->a.v[2][1] == 2);
    dt_free(s);
    /* The kernels that read nothing but the views keep the layer, for messages. */
    static const char *const plain[] = {"Cast", "Where", "IsNaN", "Not", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
                                        "Expand", "GlobalAveragePool"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        ductile_layer L = layer(plain[i], 13, NULL, 0, NULL, 1);
        dt_cu_layer_params *p = prepare(&L);
        if (p) CHECK(p->L == &L);
        dt_free(p);
    }
}

/* MatMul and Gemm: the attributes and the tactic per profile read once; the cuBLASLt
 * workspace is the context's scratch, asked only when there is a product to compute. */
static void check_prepare_matmul(void)
{
    ductile_tensor t = {.name = "t", .dtype = DUCTILE_FLOAT32};
    ductile_tensor *abc[3] = {&t, &t, &t};
    int64_t tactic[2] = {3, 0};
    dt_attr ga[] = {a_int("transA", 1), a_float("alpha", 0.5f), a_float("beta", 2.f), a_int("tf32", 1),
                    a_ints("tactic", tactic, 2)};
    ductile_layer gemm = layer("Gemm", 13, ga, 5, abc, 3), mm = layer("MatMul", 13, NULL, 0, abc, 2);
    dt_cu_matmul_params *g = prepare(&gemm);
    if (g) {
        CHECK(g->L == &gemm && g->ta && !g->tb && g->alpha == 0.5f && g->beta == 2.f && g->has_c && g->tf32);
        CHECK(g->n_tactic == 2 && g->tactic[0] == 3 && g->tactic[1] == 0 && g->tactic_points == 1);
        /* One id per profile (engines before per-point tactics): the same at every point. */
        for (int pt = DUCTILE_PROFILE_MIN; pt <= DUCTILE_PROFILE_MAX; pt++)
            CHECK_EQ_INT(dt_cuda_params_tactic(g->tactic, g->n_tactic, 1, &(dt_exec){.profile = 0, .point = pt}), 3);
        CHECK_EQ_INT(dt_cuda_params_tactic(g->tactic, g->n_tactic, g->tactic_points, &(dt_exec){.profile = 0}), 3);
        CHECK_EQ_INT(dt_cuda_params_tactic(g->tactic, g->n_tactic, g->tactic_points, &(dt_exec){.profile = 1}), 0);
        CHECK_EQ_INT(dt_cuda_params_tactic(g->tactic, g->n_tactic, g->tactic_points, &(dt_exec){.profile = 2}), 0);
        CHECK_EQ_INT(dt_cuda_params_tactic(g->tactic, g->n_tactic, g->tactic_points, &(dt_exec){.profile = 0, .tactic = 4}), 4);
        /* A [5,4] transposed, B [5,6]: M 4, N 6, K 5. */
        dt_view v[3] = {{.dtype = DUCTILE_FLOAT32, .rank = 2, .dims = {5, 4}},
                        {.dtype = DUCTILE_FLOAT32, .rank = 2, .dims = {5, 6}},
                        {.dtype = DUCTILE_FLOAT32, .rank = 1, .dims = {6}}};
        dt_view y = {.dtype = DUCTILE_FLOAT32, .rank = 2, .dims = {4, 6}};
        size_t bytes = 1;
        CHECK_EQ_INT(dt_cuda_gemm_kernel.scratch(g, v, &y, 1, &bytes), DUCTILE_OK);
        CHECK(bytes == 32u << 20);
        v[0].dims[0] = 0; /* K = 0: Y is C alone, no product */
        CHECK_EQ_INT(dt_cuda_gemm_kernel.scratch(g, v, &y, 1, &bytes), DUCTILE_OK);
        CHECK(bytes == 0);
        /* A rank the kernel does not take (supports() sends it to the host): refused at run,
         * before anything reaches the device. */
        v[0].rank = 3;
        CHECK_EQ_INT(dt_cuda_gemm_kernel.scratch(g, v, &y, 1, &bytes), DUCTILE_OK);
        CHECK(bytes == 0);
        CHECK_EQ_INT(dt_cuda_gemm_kernel.run(g, v, &y, &(dt_exec){.profile = 0}), DUCTILE_ERR_UNSUPPORTED);
        CHECK_EQ_STR(ductile_last_error(), "the cuda Gemm takes 2-D A and B (got ranks 3 and 2)");
    }
    dt_free(g);
    dt_cu_matmul_params *m = prepare(&mm);
    if (m) {
        CHECK(m->L == &mm && !m->ta && !m->tb && m->alpha == 1.f && !m->has_c && !m->tf32 && m->n_tactic == 0);
        CHECK_EQ_INT(dt_cuda_params_tactic(m->tactic, m->n_tactic, m->tactic_points, &(dt_exec){.profile = 0}), 0);
        dt_view v[2] = {{.dtype = DUCTILE_FLOAT32, .rank = 3, .dims = {2, 4, 5}},
                        {.dtype = DUCTILE_FLOAT32, .rank = 2, .dims = {5, 6}}};
        dt_view y = {.dtype = DUCTILE_FLOAT32, .rank = 3, .dims = {2, 4, 6}};
        size_t bytes = 0;
        CHECK_EQ_INT(dt_cuda_matmul_kernel.scratch(m, v, &y, 1, &bytes), DUCTILE_OK);
        CHECK(bytes == 32u << 20);
        v[1].dims[0] = 7; /* K disagrees: the run refuses; no scratch */
        CHECK_EQ_INT(dt_cuda_matmul_kernel.scratch(m, v, &y, 1, &bytes), DUCTILE_OK);
        CHECK(bytes == 0);
    }
    dt_free(m);
}

/* Conv and FusedConv, compiled: prepare reads the conv attributes (the reader the CPU's conv
 * uses), the epilogue, the TF32 mark and the tactics once; the run computes the geometry from
 * them per set of shapes (auto_pad's pads too). */
static dt_cu_conv_params *conv_prepare(const char *op, dt_attr *attrs, int n_attr, ductile_tensor **in, int n_in)
{
    ductile_layer *L = dt_calloc(1, sizeof *L); /* the params keep a pointer to it */
    if (!L) return NULL;
    *L = layer(op, 11, attrs, n_attr, in, n_in);
    dt_cu_conv_params *p = prepare(L);
    if (p) CHECK(p->L == L);
    else dt_free(L);
    return p;
}

static void conv_free(dt_cu_conv_params *p)
{
    if (p) dt_free((void *)p->L);
    dt_free(p);
}

/* prepare's refusal of op's layer with these attributes: the status and the whole message. */
static void check_conv_refused(const char *op, dt_attr *attrs, int n_attr, ductile_status want, const char *msg)
{
    ductile_tensor t = {.name = "t", .dtype = DUCTILE_FLOAT32};
    ductile_tensor *in[2] = {&t, &t};
    ductile_layer L = layer(op, 11, attrs, n_attr, in, 2);
    void *params = NULL;
    CHECK_EQ_INT(dt_cuda_conv_kernel.prepare(&L, &params), want);
    CHECK_EQ_STR(ductile_last_error(), msg);
    CHECK(params == NULL);
}

static void check_prepare_conv(void)
{
    ductile_tensor t = {.name = "t", .dtype = DUCTILE_FLOAT32};
    ductile_tensor *xwb[3] = {&t, &t, &t}, *xw[2] = {&t, &t}, *xwbr[4] = {&t, &t, &t, &t}, *xw_r[4] = {&t, &t, NULL, &t};
    /* Conv: the attributes as the shared reader keeps them; no epilogue but the bias; an
     * 'activation' attribute is FusedConv's, not Conv's. */
    int64_t k[2] = {3, 3}, st[2] = {2, 1}, dil[2] = {1, 2}, pads[4] = {1, 2, 1, 2}, tac[3] = {DT_CUDA_CONV_IGEMM32, 2, 0};
    dt_attr ca[] = {a_int("group", 2), a_ints("kernel_shape", k, 2), a_ints("strides", st, 2), a_ints("dilations", dil, 2),
                    a_ints("pads", pads, 4), a_int("tf32", 1), a_ints("tactic", tac, 3), a_str("activation", "Relu")};
    dt_cu_conv_params *p = conv_prepare("Conv", ca, 8, xwb, 3);
    if (p) {
        CHECK(p->conv.group == 2 && p->conv.auto_pad == DT_PAD_NOTSET);
        CHECK(p->conv.n_kernel == 2 && p->conv.kernel[0] == 3 && p->conv.kernel[1] == 3);
        CHECK(p->conv.n_strides == 2 && p->conv.strides[0] == 2 && p->conv.strides[1] == 1);
        CHECK(p->conv.n_dilations == 2 && p->conv.dilations[0] == 1 && p->conv.dilations[1] == 2);
        CHECK(p->conv.n_pads == 4 && p->conv.pads[0] == 1 && p->conv.pads[1] == 2 && p->conv.pads[3] == 2);
        CHECK(p->has_bias && !p->has_res && p->tf32);
        CHECK(p->epi.act == DT_CU_IDENTITY && p->epi.bias == NULL && p->epi.res == NULL);
        CHECK(p->n_tactic == 3 && p->tactic[0] == DT_CUDA_CONV_IGEMM32 && p->tactic[1] == 2 && p->tactic[2] == 0);
        /* Which kernel runs, per profile: the stored one where it applies (x [1,4,16,16],
         * w [8,2,3,3]: implicit GEMM applies, pointwise does not); none stored: cuDNN's
         * heuristic for a grouped (not depthwise) conv; the builder's tactic first. */
        dt_view v[2] = {{.dtype = DUCTILE_FLOAT32, .rank = 4, .dims = {1, 4, 16, 16}},
                        {.dtype = DUCTILE_FLOAT32, .rank = 4, .dims = {8, 2, 3, 3}}};
        dt_conv_geom g;
        CHECK_EQ_INT(dt_conv_geometry_of(&p->conv, &v[0], &v[1], &g), DUCTILE_OK);
        CHECK(g.s[0] == 2 && g.s[1] == 1 && g.d[1] == 2 && g.pb[1] == 2 && g.pe[1] == 2 && g.out[0] == 8 && g.out[1] == 16);
        CHECK_EQ_INT(dt_cuda_conv_choose(p, &g, DUCTILE_FLOAT32, &(dt_exec){.profile = 0}), DT_CUDA_CONV_IGEMM32);
        CHECK_EQ_INT(dt_cuda_conv_choose(p, &g, DUCTILE_FLOAT32, &(dt_exec){.profile = 1}), 2);
        CHECK_EQ_INT(dt_cuda_conv_choose(p, &g, DUCTILE_FLOAT32, &(dt_exec){.profile = 2}), 0);
        CHECK_EQ_INT(dt_cuda_conv_choose(p, &g, DUCTILE_FLOAT32, &(dt_exec){.profile = 3}), 0);
        CHECK_EQ_INT(dt_cuda_conv_choose(p, &g, DUCTILE_FLOAT32, &(dt_exec){.profile = 1, .tactic = 1}), 1);
        /* An own tactic that does not apply: the heuristic for a profile's choice (made at
         * other shapes), a refusal for the builder's (it skips the tactic). */
        CHECK_EQ_INT(dt_cuda_conv_choose(p, &g, DUCTILE_FLOAT32, &(dt_exec){.tactic = DT_CUDA_CONV_POINTWISE64}), -1);
        dt_exec ex = {.profile = 0, .tactic = DT_CUDA_CONV_POINTWISE64};
        dt_view y = {.dtype = DUCTILE_FLOAT32, .rank = 4, .dims = {1, 8, 8, 16}};
        dt_view in3[3] = {v[0], v[1], {.dtype = DUCTILE_FLOAT32, .rank = 1, .dims = {8}}};
        CHECK_EQ_INT(dt_cuda_conv_kernel.run(p, in3, &y, &ex), DUCTILE_ERR_UNSUPPORTED);
        CHECK_EQ_STR(ductile_last_error(), "tactic 17 does not apply to this convolution");
        /* Shapes the geometry refuses: the shared reader's message at run, no scratch. */
        in3[1].dims[1] = 3;
        size_t bytes = 1;
        CHECK_EQ_INT(dt_cuda_conv_kernel.scratch(p, in3, &y, 1, &bytes), DUCTILE_OK);
        CHECK(bytes == 0);
        CHECK_EQ_INT(dt_cuda_conv_kernel.run(p, in3, &y, &(dt_exec){.profile = 0}), DUCTILE_ERR_SHAPE);
        CHECK_EQ_STR(ductile_last_error(), "input 0 (X) [1,4,16,16] has 4 channels but input 1 (W) [8,3,3,3] with group 2 expects 6");
    }
    conv_free(p);

    /* FusedConv: the activation code and its parameters (given, or the CPU's defaults), the
     * residual given. */
    float inf = INFINITY;
    struct {
        dt_attr a[3];
        int n, act;
        float p0, p1;
    } acts[] = {
        {{a_str("activation", "")}, 1, DT_CU_IDENTITY, 0, 0},
        {{a_str("activation", "Relu")}, 1, DT_CU_RELU, 0, 0},
        {{a_str("activation", "Sigmoid")}, 1, DT_CU_SIGMOID, 0, 0},
        {{a_str("activation", "Clip"), a_float("act_min", 0.f), a_float("act_max", 6.f)}, 3, DT_CU_CLIP, 0.f, 6.f},
        {{a_str("activation", "Clip"), a_float("act_max", 6.f)}, 2, DT_CU_CLIP, -inf, 6.f},
        {{a_str("activation", "Clip")}, 1, DT_CU_CLIP, -inf, inf},
        {{a_str("activation", "HardSigmoid")}, 1, DT_CU_HARDSIGMOID, 0.2f, 0.5f},
        {{a_str("activation", "HardSigmoid"), a_float("act_alpha", 0.3f), a_float("act_beta", 0.4f)}, 3,
         DT_CU_HARDSIGMOID, 0.3f, 0.4f},
        {{a_str("activation", "HardSwish"), a_float("act_alpha", 1.f / 6.f), a_float("act_beta", 0.5f)}, 3,
         DT_CU_HARDSWISH, 1.f / 6.f, 0.5f},
    };
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        p = conv_prepare("FusedConv", acts[i].a, acts[i].n, xwbr, 4);
        if (!p) continue;
        if (p->epi.act != acts[i].act || p->epi.p0 != acts[i].p0 || p->epi.p1 != acts[i].p1)
            fprintf(stderr, "activation case %zu: act %d p0 %g p1 %g\n", i, p->epi.act, p->epi.p0, p->epi.p1);
        CHECK(p->epi.act == acts[i].act && p->epi.p0 == acts[i].p0 && p->epi.p1 == acts[i].p1);
        CHECK(p->has_bias && p->has_res && !p->tf32 && p->n_tactic == 0 && p->conv.group == 1);
        CHECK(p->conv.n_kernel == -1 && p->conv.n_strides == -1 && p->conv.n_pads == -1);
        conv_free(p);
    }
    /* Bias omitted, residual given; no residual without input 3. */
    p = conv_prepare("FusedConv", NULL, 0, xw_r, 4);
    if (p) CHECK(!p->has_bias && p->has_res && p->epi.act == DT_CU_IDENTITY);
    conv_free(p);
    p = conv_prepare("FusedConv", NULL, 0, xw, 2);
    if (p) CHECK(!p->has_bias && !p->has_res);
    conv_free(p);

    /* auto_pad: read once; the pads follow the shapes at run. SAME_UPPER, stride 2, 3x3: a
     * 7x7 map pads 1 and 1 (cuDNN's symmetric pads), an 8x8 map 0 and 1, which the run
     * refuses by name (supports() sends auto_pad layers to the host, so only a layer that
     * reached the kernel anyway sees it). */
    int64_t s2[2] = {2, 2};
    dt_attr same[] = {a_str("auto_pad", "SAME_UPPER"), a_ints("strides", s2, 2)};
    p = conv_prepare("Conv", same, 2, xw, 2);
    if (p) {
        CHECK(p->conv.auto_pad == DT_PAD_SAME_UPPER && p->conv.n_pads == -1);
        dt_view v[2] = {{.dtype = DUCTILE_FLOAT32, .rank = 4, .dims = {1, 3, 7, 7}},
                        {.dtype = DUCTILE_FLOAT32, .rank = 4, .dims = {8, 3, 3, 3}}};
        dt_conv_geom g;
        CHECK_EQ_INT(dt_conv_geometry_of(&p->conv, &v[0], &v[1], &g), DUCTILE_OK);
        CHECK(g.pb[0] == 1 && g.pe[0] == 1 && g.pb[1] == 1 && g.pe[1] == 1 && g.out[0] == 4 && g.out[1] == 4);
        v[0].dims[2] = v[0].dims[3] = 8;
        CHECK_EQ_INT(dt_conv_geometry_of(&p->conv, &v[0], &v[1], &g), DUCTILE_OK);
        CHECK(g.pb[0] == 0 && g.pe[0] == 1 && g.pb[1] == 0 && g.pe[1] == 1 && g.out[0] == 4);
        dt_view y = {.dtype = DUCTILE_FLOAT32, .rank = 4, .dims = {1, 8, 4, 4}};
        CHECK_EQ_INT(dt_cuda_conv_kernel.run(p, v, &y, &(dt_exec){.profile = 0}), DUCTILE_ERR_UNSUPPORTED);
        CHECK_EQ_STR(ductile_last_error(), "cuDNN needs symmetric pads (got begins 0, 0 and ends 1, 1)");
        size_t bytes = 1;
        CHECK_EQ_INT(dt_cuda_conv_kernel.scratch(p, v, &y, 1, &bytes), DUCTILE_OK);
        CHECK(bytes == 0);
        /* The run reads the params, never the layer: attributes changed after prepare change
         * nothing (the same refusal, from the auto_pad read at load). */
        same[0] = a_str("auto_pad", "NOTSET");
        same[1] = a_ints("strides", k, 2);
        CHECK_EQ_INT(dt_cuda_conv_kernel.run(p, v, &y, &(dt_exec){.profile = 0}), DUCTILE_ERR_UNSUPPORTED);
        CHECK_EQ_STR(ductile_last_error(), "cuDNN needs symmetric pads (got begins 0, 0 and ends 1, 1)");
        same[0] = a_str("auto_pad", "SAME_UPPER");
        same[1] = a_ints("strides", s2, 2);
        ductile_tensor x = {.name = "x", .dtype = DUCTILE_FLOAT32, .rank = 4}, w = {.name = "w", .dtype = DUCTILE_FLOAT32, .rank = 4};
        ductile_tensor *xw4[2] = {&x, &w};
        ductile_layer L = layer("Conv", 11, same, 2, xw4, 2);
        CHECK(!dt_cuda_supports(&L, v, &y));
    }
    conv_free(p);
    /* 3-D convs: the host's (supports), refused by name at run. */
    p = conv_prepare("Conv", NULL, 0, xw, 2);
    if (p) {
        dt_view v[2] = {{.dtype = DUCTILE_FLOAT32, .rank = 5, .dims = {1, 2, 4, 4, 4}},
                        {.dtype = DUCTILE_FLOAT32, .rank = 5, .dims = {2, 2, 1, 1, 1}}};
        dt_view y = {.dtype = DUCTILE_FLOAT32, .rank = 5, .dims = {1, 2, 4, 4, 4}};
        CHECK_EQ_INT(dt_cuda_conv_kernel.run(p, v, &y, &(dt_exec){.profile = 0}), DUCTILE_ERR_UNSUPPORTED);
        CHECK_EQ_STR(ductile_last_error(), "the cuda convolution takes 1-D and 2-D convs (got 3 spatial dims)");
    }
    conv_free(p);
    /* Packed (CPU layout) weights: prepare accepts the layer (the host runs it), supports()
     * sends it there. */
    dt_attr packed[] = {a_int("packed", 1)};
    p = conv_prepare("FusedConv", packed, 1, xw, 2);
    if (p) {
        ductile_layer L = layer("FusedConv", 1, packed, 1, xw, 2);
        dt_view v[2] = {{.dtype = DUCTILE_FLOAT32, .rank = 4, .dims = {1, 3, 7, 7}},
                        {.dtype = DUCTILE_FLOAT32, .rank = 1, .dims = {216}}};
        dt_view y = {.dtype = DUCTILE_FLOAT32, .rank = 4, .dims = {1, 8, 5, 5}};
        CHECK(!dt_cuda_supports(&L, v, &y));
    }
    conv_free(p);

    /* Refusals: what the host refuses too, word for word as the CPU's FusedConv, and tactics
     * no CUDA build stores. */
    dt_attr tanh_act[] = {a_str("activation", "Tanh")};
    check_conv_refused("FusedConv", tanh_act, 1, DUCTILE_ERR_UNSUPPORTED, "attribute 'activation' = 'Tanh' is not supported");
    int64_t bad1[2] = {DT_CUDA_CONV_DEPTHWISE, 39}, bad2[1] = {-1}, bad3[1] = {DT_CUDA_CONV_SMALLC_MMA + 1};
    dt_attr tb1[] = {a_ints("tactic", bad1, 2)}, tb2[] = {a_ints("tactic", bad2, 1)}, tb3[] = {a_ints("tactic", bad3, 1)};
    check_conv_refused("Conv", tb1, 1, DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic'[1] = 39 is not a CUDA conv tactic");
    check_conv_refused("FusedConv", tb2, 1, DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic'[0] = -1 is not a CUDA conv tactic");
    check_conv_refused("Conv", tb3, 1, DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic'[0] = 39 is not a CUDA conv tactic");
    int64_t bad4[1] = {DT_CUDA_CONV_LAST + 1};
    dt_attr tb4[] = {a_ints("tactic", bad4, 1)};
    check_conv_refused("FusedConv", tb4, 1, DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic'[0] = 46 is not a CUDA conv tactic");
    /* Every id the tactics list offers is accepted. */
    int64_t all[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    for (int i = 0; i < 7; i++) all[9 + i] = DT_CUDA_CONV_DEPTHWISE + i;
    dt_attr ta[] = {a_ints("tactic", all, 16)};
    p = conv_prepare("Conv", ta, 1, xw, 2);
    if (p) CHECK(p->n_tactic == 16 && p->tactic[15] == DT_CUDA_CONV_DEPTHWISE + 6);
    conv_free(p);
    int64_t tc[4] = {DT_CUDA_CONV_TC_POINTWISE, DT_CUDA_CONV_TC_IGEMM, DT_CUDA_CONV_TC_POINTWISE_SPLITK, DT_CUDA_CONV_TC_IGEMM_SPLITK};
    dt_attr tca[] = {a_ints("tactic", tc, 4)};
    p = conv_prepare("FusedConv", tca, 1, xw, 2);
    conv_free(p);
}

/* Tactics per profile and shape point (backend/tactic.h): a MatMul with two profiles of three
 * points each runs the id of its (profile, point); a profile past the stored ones or a point
 * out of range: the profile's opt one, or none; the builder's tactic first. Counts that do
 * not match tactic_points are refused by every kernel that reads them. */
static void check_tactic_points(void)
{
    ductile_tensor t = {.name = "t", .dtype = DUCTILE_FLOAT32};
    ductile_tensor *ab[2] = {&t, &t};
    int64_t ids[6] = {1, 2, 3, 4, 0, 2};
    dt_attr ma[] = {a_ints("tactic", ids, 6), a_int("tactic_points", 3)};
    ductile_layer mm = layer("MatMul", 13, ma, 2, ab, 2);
    dt_cu_matmul_params *m = prepare(&mm);
    if (m) {
        CHECK(m->n_tactic == 6 && m->tactic_points == 3);
        static const int want[2][3] = {{1, 2, 3}, {4, 0, 2}};
        for (int p = 0; p < 2; p++)
            for (int pt = 0; pt < 3; pt++)
                CHECK_EQ_INT(dt_cuda_params_tactic(m->tactic, m->n_tactic, m->tactic_points, &(dt_exec){.profile = p, .point = pt}),
                             want[p][pt]);
        CHECK_EQ_INT(dt_cuda_params_tactic(m->tactic, m->n_tactic, 3, &(dt_exec){.profile = 2, .point = 0}), 0);
        CHECK_EQ_INT(dt_cuda_params_tactic(m->tactic, m->n_tactic, 3, &(dt_exec){.profile = 0, .point = 7}), 2);
        CHECK_EQ_INT(dt_cuda_params_tactic(m->tactic, m->n_tactic, 3, &(dt_exec){.profile = 1, .point = 0, .tactic = 3}), 3);
    }
    dt_free(m);
    /* A conv stores them the same way: per point, what it runs (x [1,16,14,14], w [64,16,1,1]:
     * pointwise applies; a 3x3 tactic stored for max does too). */
    ductile_tensor *xw[2] = {&t, &t};
    int64_t cids[3] = {DT_CUDA_CONV_POINTWISE32, DT_CUDA_CONV_CUDNN + 1, DT_CUDA_CONV_IGEMM64};
    dt_attr ca[] = {a_ints("tactic", cids, 3), a_int("tactic_points", 3)};
    dt_cu_conv_params *p = conv_prepare("Conv", ca, 2, xw, 2);
    if (p) {
        dt_view v[2] = {{.dtype = DUCTILE_FLOAT32, .rank = 4, .dims = {1, 16, 14, 14}},
                        {.dtype = DUCTILE_FLOAT32, .rank = 4, .dims = {64, 16, 1, 1}}};
        dt_view y = {.dtype = DUCTILE_FLOAT32, .rank = 4, .dims = {1, 64, 14, 14}};
        dt_conv_geom g;
        CHECK_EQ_INT(dt_conv_geometry_of(&p->conv, &v[0], &v[1], &g), DUCTILE_OK);
        CHECK_EQ_INT(dt_cuda_conv_choose(p, &g, DUCTILE_FLOAT32, &(dt_exec){.point = DUCTILE_PROFILE_MIN}), DT_CUDA_CONV_POINTWISE32);
        CHECK_EQ_INT(dt_cuda_conv_choose(p, &g, DUCTILE_FLOAT32, &(dt_exec){.point = DUCTILE_PROFILE_OPT}), DT_CUDA_CONV_CUDNN + 1);
        CHECK_EQ_INT(dt_cuda_conv_choose(p, &g, DUCTILE_FLOAT32, &(dt_exec){.point = DUCTILE_PROFILE_MAX}), DT_CUDA_CONV_IGEMM64);
        /* The profiler names the kernel of the point. */
        CHECK_EQ_STR(dt_cuda_kernel_path(p->L, p, v, &y, 0, DUCTILE_PROFILE_MIN, 1), "own_pw32_f32");
        CHECK_EQ_STR(dt_cuda_kernel_path(p->L, p, v, &y, 0, DUCTILE_PROFILE_OPT, 1), "cudnn_algo1");
        CHECK_EQ_STR(dt_cuda_kernel_path(p->L, p, v, &y, 0, DUCTILE_PROFILE_MAX, 1), "own_igemm64_f32");
    }
    conv_free(p);
    dt_attr bad_points[] = {a_ints("tactic", ids, 6), a_int("tactic_points", 2)};
    dt_attr bad_count[] = {a_ints("tactic", ids, 4), a_int("tactic_points", 3)};
    check_conv_refused("Conv", bad_points, 2, DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic_points' = 2 (expected 1 or 3)");
    check_conv_refused("FusedConv", bad_count, 2, DUCTILE_ERR_INVALID_ARGUMENT,
                       "attribute 'tactic' has 4 values, not a multiple of tactic_points (3)");
    void *params = (void *)1;
    ductile_layer bm = layer("Gemm", 13, bad_count, 2, ab, 2);
    CHECK_EQ_INT(dt_cuda_gemm_kernel.prepare(&bm, &params), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "attribute 'tactic' has 4 values, not a multiple of tactic_points (3)");
}

/* Split K: the slices for a GPU of n multiprocessors, their sums' bytes, and the scratch the
 * kernel asks (the most of any split tactic that applies on this machine's GPU; none without
 * one), so the run keeps the sums in the context's scratch instead of growing a workspace. */
static void check_conv_scratch(void)
{
    /* Pointwise 320 -> 96 at 7x7, one image: 2 x 3 blocks of 32x32; an H200's 132
     * multiprocessors want 264 blocks: 44 slices, capped at K / 64 = 5. */
    dt_conv_geom g = {.spatial = 2, .batch = 1, .c = 320, .m = 96, .group = 1, .in = {7, 7}, .out = {7, 7},
                      .k = {1, 1}, .s = {1, 1}, .d = {1, 1}};
    CHECK_EQ_INT(dt_cuda_conv_splitk(&g, 32, 132), 5);
    CHECK_EQ_INT(dt_cuda_conv_splitk(&g, 32, 0), 1);
    /* 64x64 tiles: 1 x 2 blocks, 132 slices wanted, 5 by depth. */
    CHECK_EQ_INT(dt_cuda_conv_splitk(&g, 64, 132), 5);
    size_t bytes = 0;
    CHECK_EQ_INT(dt_cuda_conv_split_bytes(&g, 5, &bytes), DUCTILE_OK);
    CHECK(bytes == (size_t)5 * 96 * 49 * 4);
    /* A large map fills the GPU: no split. */
    dt_conv_geom big = g;
    big.in[0] = big.in[1] = big.out[0] = big.out[1] = 112;
    CHECK_EQ_INT(dt_cuda_conv_splitk(&big, 32, 132), 1);
    /* Sizes past size_t: named. */
    dt_conv_geom huge = g;
    huge.batch = INT64_C(1) << 40;
    huge.m = INT64_C(1) << 30;
    CHECK_EQ_INT(dt_cuda_conv_split_bytes(&huge, 2, &bytes), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(ductile_last_error(),
                 "split-K convolution: 2 slices of 1099511627776 x 1073741824 x 7 x 7 floats overflow size_t");
    /* The kernel's scratch at those shapes: the split sums where the GPU takes a split (a
     * multiple of one slice's floats), else none. */
    ductile_tensor t = {.name = "t", .dtype = DUCTILE_FLOAT32};
    ductile_tensor *xw[2] = {&t, &t};
    dt_cu_conv_params *p = conv_prepare("Conv", NULL, 0, xw, 2);
    if (!p) return;
    static const int dtypes[] = {DUCTILE_FLOAT32, DUCTILE_FLOAT16, DUCTILE_BFLOAT16};
    for (int i = 0; i < 3; i++) {
        int dt = dtypes[i];
        dt_view v[2] = {{.dtype = dt, .rank = 4, .dims = {1, 320, 7, 7}}, {.dtype = dt, .rank = 4, .dims = {96, 320, 1, 1}}};
        dt_view y = {.dtype = dt, .rank = 4, .dims = {1, 96, 7, 7}};
        bytes = 1;
        CHECK_EQ_INT(dt_cuda_conv_kernel.scratch(p, v, &y, 1, &bytes), DUCTILE_OK);
        bool split = dt_cuda_conv_own_applies(&g, dt, DT_CUDA_CONV_POINTWISE32_SPLITK);
        CHECK(split ? bytes > 0 && bytes % ((size_t)96 * 49 * 4) == 0 : bytes == 0);
        CHECK(bytes == dt_cuda_conv_own_scratch(&g, dt));
        v[0].dims[2] = v[0].dims[3] = y.dims[2] = y.dims[3] = 112; /* fills the GPU: none */
        CHECK_EQ_INT(dt_cuda_conv_kernel.scratch(p, v, &y, 1, &bytes), DUCTILE_OK);
        CHECK(bytes == 0);
    }
    conv_free(p);
}

/* supports(): pools the kernel cannot compute go to the host at load (they used to reach the
 * kernel and fail at run: "the cuda pooling kernel takes 1-D and 2-D windows"). */
static void check_pool_placement(void)
{
    ductile_tensor x = {.name = "x", .dtype = DUCTILE_FLOAT32};
    ductile_tensor *in[1] = {&x};
    int64_t k2[2] = {3, 3}, k3[3] = {3, 3, 3}, sym[4] = {1, 1, 1, 1}, asym[4] = {1, 0, 1, 2};
    dt_view v4 = {.dtype = DUCTILE_FLOAT32, .rank = 4, .dims = {1, 2, 9, 9}};
    dt_view v5 = {.dtype = DUCTILE_FLOAT32, .rank = 5, .dims = {1, 2, 9, 9, 9}};
    dt_view y4 = {.dtype = DUCTILE_FLOAT32, .rank = 4, .dims = {1, 2, 7, 7}};
    dt_view y5 = {.dtype = DUCTILE_FLOAT32, .rank = 5, .dims = {1, 2, 7, 7, 7}};
    dt_attr m2[] = {a_ints("kernel_shape", k2, 2)}, m3[] = {a_ints("kernel_shape", k3, 3)};
    ductile_layer mp2 = layer("MaxPool", 12, m2, 1, in, 1), mp3 = layer("MaxPool", 12, m3, 1, in, 1);
    CHECK(dt_cuda_supports(&mp2, &v4, &y4));
    CHECK(!dt_cuda_supports(&mp3, &v5, &y5));
    ductile_layer ap3 = layer("AveragePool", 19, m3, 1, in, 1);
    CHECK(!dt_cuda_supports(&ap3, &v5, &y5));
    dt_attr inc_sym[] = {a_ints("kernel_shape", k2, 2), a_ints("pads", sym, 4), a_int("count_include_pad", 1)};
    dt_attr inc_asym[] = {a_ints("kernel_shape", k2, 2), a_ints("pads", asym, 4), a_int("count_include_pad", 1)};
    dt_attr exc_asym[] = {a_ints("kernel_shape", k2, 2), a_ints("pads", asym, 4)};
    ductile_layer a1 = layer("AveragePool", 19, inc_sym, 3, in, 1), a2 = layer("AveragePool", 19, inc_asym, 3, in, 1);
    ductile_layer a3 = layer("AveragePool", 19, exc_asym, 2, in, 1);
    CHECK(dt_cuda_supports(&a1, &v4, &y4));
    CHECK(!dt_cuda_supports(&a2, &v4, &y4));
    CHECK(dt_cuda_supports(&a3, &v4, &y4));
}

static void free_state(dt_cuda_state *st)
{
    for (size_t i = 0; i < st->plans_cap; i++)
        for (int w = 0; w < DT_CUDA_WAYS; w++) dt_cuda_plan_release(&st->plans[i].way[w]);
    dt_free(st->plans);
    dt_free(st);
}

/* The table grows only to add a layer: with it exactly half full, a lookup of a layer it holds
 * (every run at planned shapes) neither grows nor moves it (it used to grow there, allocating
 * on the execute path). */
static void check_plan_lookup_never_grows(void)
{
    static ductile_layer layers[32];
    dt_cuda_state *st = dt_calloc(1, sizeof *st);
    CHECK(st != NULL);
    if (!st) return;
    int64_t key[DT_CUDA_KEY] = {7};
    bool hit;
    for (int i = 0; i < 32; i++) CHECK(dt_cuda_plan_slot(st, &layers[i], key, &hit) != NULL && !hit);
    CHECK_EQ_INT((int)st->plans_cap, 64);
    CHECK_EQ_INT((int)st->plans_used, 32);
    const dt_cuda_layer_plans *table = st->plans;
    for (int i = 0; i < 32; i++) CHECK(dt_cuda_plan_slot(st, &layers[i], key, &hit) != NULL && hit);
    CHECK_EQ_INT((int)st->plans_cap, 64);
    CHECK(st->plans == table);
    /* A new layer still grows it. */
    static ductile_layer extra;
    CHECK(dt_cuda_plan_slot(st, &extra, key, &hit) != NULL && !hit);
    CHECK_EQ_INT((int)st->plans_cap, 128);
    free_state(st);
}

/* A refusal (DUCTILE_ERR_UNSUPPORTED) stays in the cache with its message, so runs at that key
 * get it again without asking the library (a conv's stored algorithm at shapes where cuDNN
 * refuses it used to be planned again on every run); other failures empty the slot. */
static void check_plan_refusals_are_kept(void)
{
    static ductile_layer L;
    dt_cuda_state *st = dt_calloc(1, sizeof *st);
    CHECK(st != NULL);
    if (!st) return;
    int64_t key[DT_CUDA_KEY] = {1, 2, 3, 0, 0, 0, 0, 5};
    bool hit;
    dt_cuda_plan *p = dt_cuda_plan_slot(st, &L, key, &hit);
    CHECK(p != NULL && !hit);
    if (!p) return;
    const char *why = "cuDNN algorithm 5 needs 2147483648 bytes of workspace (over 1 GiB)";
    CHECK_EQ_INT(dt_cuda_plan_failed(p, dt_fail(DUCTILE_ERR_UNSUPPORTED, "%s", why)), DUCTILE_ERR_UNSUPPORTED);
    dt_fail(DUCTILE_ERR_INTERNAL, "something else");
    p = dt_cuda_plan_slot(st, &L, key, &hit);
    CHECK(p != NULL && hit);
    CHECK_EQ_INT(dt_cuda_plan_status(p), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(ductile_last_error(), why);
    /* Another key of the layer: a plan of its own, fine. */
    key[7] = -1;
    p = dt_cuda_plan_slot(st, &L, key, &hit);
    CHECK(p != NULL && !hit);
    CHECK_EQ_INT(dt_cuda_plan_status(p), DUCTILE_OK);
    /* Not a refusal: the slot is emptied, the next lookup plans again. */
    CHECK_EQ_INT(dt_cuda_plan_failed(p, dt_fail(DUCTILE_ERR_INTERNAL, "cuDNN descriptor: CUDNN_STATUS_INTERNAL_ERROR")),
                 DUCTILE_ERR_INTERNAL);
    p = dt_cuda_plan_slot(st, &L, key, &hit);
    CHECK(p != NULL && !hit);
    free_state(st);
}

/* FusedConv layout "NHWC" (builder/layout.c): X [1, 14, 14, c], W [m, k, k, c/group]. Its
 * tactics are cuDNN's algorithms and the NHWC depthwise kernel (never the channels-first own
 * kernels), its default path the NHWC depthwise kernel where it applies, else cuDNN's
 * heuristic; a channels-first layer never takes the NHWC kernel. And which layers the backend
 * wants channels last (prefers_nhwc): 2-D FusedConvs cuDNN runs, in FP16 or BF16 builds. */
static const char *nhwc_path(int dtype, int64_t c, int64_t m, int64_t group, int64_t k, int64_t pad, int64_t stored,
                             bool nhwc, int *ids, int *n_ids)
{
    int64_t pads[4] = {pad, pad, pad, pad}, tactic[1] = {stored};
    dt_attr attrs[4] = {
        {.name = "group", .type = DT_ATTR_INT, .i = group},
        {.name = "pads", .type = DT_ATTR_INTS, .n = 4, .ints = pads},
        {.name = "layout", .type = DT_ATTR_STRING, .s = nhwc ? "NHWC" : "", .s_len = nhwc ? 4 : 0},
        {.name = "tactic", .type = DT_ATTR_INTS, .n = 1, .ints = tactic},
    };
    ductile_layer L = {.name = "conv", .op_type = "FusedConv", .n_in = 2, .n_attr = stored ? 4 : 3, .attrs = attrs};
    dt_view in[2] = {{.dtype = dtype, .rank = 4, .dims = {1, 14, 14, c}}, {.dtype = dtype, .rank = 4, .dims = {m, k, k, c / group}}};
    dt_view out[1] = {{.dtype = dtype, .rank = 4, .dims = {1, 14, 14, m}}};
    if (!nhwc) {
        dt_view x = {.dtype = dtype, .rank = 4, .dims = {1, c, 14, 14}}, w = {.dtype = dtype, .rank = 4, .dims = {m, c / group, k, k}};
        in[0] = x, in[1] = w;
        out[0].dims[1] = m, out[0].dims[3] = 14;
    }
    *n_ids = dt_cuda_tactics(&L, in, ids, 16);
    void *params = NULL;
    CHECK_EQ_INT(dt_cuda_conv_kernel.prepare(&L, &params), DUCTILE_OK);
    const char *path = dt_cuda_kernel_path(&L, params, in, out, 0, DUCTILE_PROFILE_OPT, 1);
    if (params) {
        dt_conv_geom g;
        CHECK_EQ_INT(dt_cuda_conv_geometry(params, in, &g), DUCTILE_OK);
        CHECK(g.batch == 1 && g.c == c && g.m == m && g.group == group && g.in[0] == 14 && g.in[1] == 14 &&
              g.k[0] == k && g.k[1] == k && g.out[0] == 14 - k + 1 + 2 * pad);
    }
    dt_free(params);
    return path;
}

static void check_nhwc(void)
{
    int ids[16], n;
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 32, 32, 32, 3, 1, 0, true, ids, &n), "own_dw_nhwc_f16");
    CHECK(has(ids, n, DT_CUDA_CONV_DEPTHWISE_NHWC) && has(ids, n, DT_CUDA_CONV_DW_TILED_NHWC) && has(ids, n, 1) &&
          has(ids, n, 2));
    for (int i = 0; i < n; i++)
        CHECK(ids[i] < DT_CUDA_CONV_DEPTHWISE || ids[i] == DT_CUDA_CONV_DEPTHWISE_NHWC ||
              ids[i] == DT_CUDA_CONV_DW_TILED_NHWC);
    /* The tiled depthwise kernels: each in its own layout only. */
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 32, 32, 32, 3, 1, DT_CUDA_CONV_DW_TILED_NHWC, true, ids, &n),
                 "own_dw_tiled_nhwc_f16");
    CHECK_EQ_STR(nhwc_path(DUCTILE_BFLOAT16, 32, 32, 32, 3, 1, DT_CUDA_CONV_DW_TILED, true, ids, &n),
                 "cudnn_nhwc_heuristic");
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT32, 32, 32, 32, 3, 1, DT_CUDA_CONV_DW_TILED, false, ids, &n), "own_dw_tiled_f32");
    CHECK(has(ids, n, DT_CUDA_CONV_DW_TILED) && !has(ids, n, DT_CUDA_CONV_DW_TILED_NHWC));
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 32, 32, 32, 3, 1, DT_CUDA_CONV_DW_TILED_NHWC, false, ids, &n),
                 "cudnn_heuristic");
    /* Channel multiplier 2: the generic depthwise kernel only. */
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 16, 32, 16, 3, 1, DT_CUDA_CONV_DW_TILED, false, ids, &n), "cudnn_heuristic");
    CHECK(has(ids, n, DT_CUDA_CONV_DEPTHWISE) && !has(ids, n, DT_CUDA_CONV_DW_TILED));
    CHECK_EQ_STR(nhwc_path(DUCTILE_BFLOAT16, 32, 32, 32, 3, 1, DT_CUDA_CONV_CUDNN + 1, true, ids, &n), "cudnn_nhwc_algo1");
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 16, 64, 1, 1, 0, 0, true, ids, &n), "cudnn_nhwc_heuristic");
    CHECK(n > 0 && !has(ids, n, DT_CUDA_CONV_DEPTHWISE_NHWC) && has(ids, n, DT_CUDA_CONV_LT_NHWC));
    for (int i = 0; i < n; i++)
        CHECK(ids[i] < DT_CUDA_CONV_DEPTHWISE || ids[i] == DT_CUDA_CONV_LT_NHWC || DT_CUDA_CONV_IS_PW_MMA(ids[i]) ||
              DT_CUDA_CONV_IS_TC_NHWC(ids[i]) || ids[i] == DT_CUDA_CONV_PATCH_MMA);
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 16, 64, 1, 1, 0, DT_CUDA_CONV_LT_NHWC, true, ids, &n), "cublaslt_nhwc_f16");
    /* The 1x1 kernel on mma.sync: channels last, half, one group, C a multiple of 8, on sm_90
     * (where it is among the tactics, a stored one runs; else the heuristic); at 14x14 x 16 ->
     * 64 the grid fills no GPU, but 16 channels are one step of 32: no split tactic. A split
     * tactic stored at other shapes runs (unsplit); 3x3: not its shape. */
    bool mma = has(ids, n, DT_CUDA_CONV_PW_MMA64);
    CHECK(mma == has(ids, n, DT_CUDA_CONV_PW_MMA32) && mma == has(ids, n, DT_CUDA_CONV_PW_MMA128) &&
          !has(ids, n, DT_CUDA_CONV_PW_MMA64_SPLITK));
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 16, 64, 1, 1, 0, DT_CUDA_CONV_PW_MMA128, true, ids, &n),
                 mma ? "own_pw_mma128_nhwc_f16" : "cudnn_nhwc_heuristic");
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 16, 64, 1, 1, 0, DT_CUDA_CONV_PW_MMA64, true, ids, &n),
                 mma ? "own_pw_mma64_nhwc_f16" : "cudnn_nhwc_heuristic");
    CHECK_EQ_STR(nhwc_path(DUCTILE_BFLOAT16, 16, 64, 1, 1, 0, DT_CUDA_CONV_PW_MMA32_SPLITK, true, ids, &n),
                 mma ? "own_pw_mma32_splitk_nhwc_bf16" : "cudnn_nhwc_heuristic");
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 16, 64, 1, 3, 1, DT_CUDA_CONV_PW_MMA32, true, ids, &n),
                 "cudnn_nhwc_heuristic");
    CHECK(!has(ids, n, DT_CUDA_CONV_PW_MMA32));
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 16, 64, 1, 1, 0, DT_CUDA_CONV_PW_MMA32, false, ids, &n), "cudnn_heuristic");
    CHECK(!has(ids, n, DT_CUDA_CONV_PW_MMA32));
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 32, 32, 32, 3, 1, DT_CUDA_CONV_PW_MMA32, true, ids, &n),
                 "cudnn_nhwc_heuristic"); /* groups */
    CHECK(!has(ids, n, DT_CUDA_CONV_PW_MMA32));
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 12, 64, 1, 1, 0, DT_CUDA_CONV_PW_MMA32, true, ids, &n),
                 "cudnn_nhwc_heuristic"); /* C not a multiple of 8 */
    CHECK(!has(ids, n, DT_CUDA_CONV_PW_MMA32));
    /* cuBLASLt: 1x1 only; never for a channels-first layer. */
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 16, 64, 1, 3, 1, DT_CUDA_CONV_LT_NHWC, true, ids, &n), "cudnn_nhwc_heuristic");
    CHECK(!has(ids, n, DT_CUDA_CONV_LT_NHWC));
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 16, 64, 1, 1, 0, DT_CUDA_CONV_LT_NHWC, false, ids, &n), "cudnn_heuristic");
    CHECK(!has(ids, n, DT_CUDA_CONV_LT_NHWC));
    /* A channels-first tactic stored on a channels-last layer, and the other way round. */
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 16, 64, 1, 1, 0, DT_CUDA_CONV_POINTWISE64, true, ids, &n), "cudnn_nhwc_heuristic");
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 32, 32, 32, 3, 1, DT_CUDA_CONV_DEPTHWISE, true, ids, &n), "cudnn_nhwc_heuristic");
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 32, 32, 32, 3, 1, DT_CUDA_CONV_DEPTHWISE_NHWC, false, ids, &n), "cudnn_heuristic");
    CHECK(!has(ids, n, DT_CUDA_CONV_DEPTHWISE_NHWC) && has(ids, n, DT_CUDA_CONV_DEPTHWISE));
    CHECK_EQ_STR(nhwc_path(DUCTILE_FLOAT16, 32, 32, 32, 3, 1, 0, false, ids, &n), "own_dw_f16");

    unsigned fp16 = 1u << DUCTILE_FLAG_FP16, bf16 = 1u << DUCTILE_FLAG_BF16, tf32 = 1u << DUCTILE_FLAG_TF32;
    int64_t d4[4] = {8, 3, 3, 3}, d5[5] = {8, 3, 3, 3, 3}, sym[4] = {1, 1, 1, 1}, asym[4] = {1, 1, 0, 0};
    ductile_tensor w4 = {.rank = 4}, w5 = {.rank = 5};
    memcpy(w4.dims, d4, sizeof d4);
    memcpy(w5.dims, d5, sizeof d5);
    ductile_tensor *in4[2] = {NULL, &w4}, *in5[2] = {NULL, &w5};
    dt_attr ps[1] = {{.name = "pads", .type = DT_ATTR_INTS, .n = 4, .ints = sym}};
    dt_attr pa[1] = {{.name = "pads", .type = DT_ATTR_INTS, .n = 4, .ints = asym}};
    ductile_layer fc = {.name = "c", .op_type = "FusedConv", .domain = "ductile", .n_in = 2, .in = in4, .n_attr = 1, .attrs = ps};
    CHECK(dt_cuda_prefers_nhwc(&fc, fp16) && dt_cuda_prefers_nhwc(&fc, bf16) && dt_cuda_prefers_nhwc(&fc, fp16 | tf32));
    CHECK(!dt_cuda_prefers_nhwc(&fc, 0) && !dt_cuda_prefers_nhwc(&fc, tf32));
    fc.attrs = pa; /* cuDNN's pads are symmetric: the host's layer */
    CHECK(!dt_cuda_prefers_nhwc(&fc, fp16));
    fc.attrs = ps;
    fc.in = in5; /* 3-D */
    CHECK(!dt_cuda_prefers_nhwc(&fc, fp16));
    fc.in = in4;
    fc.op_type = "Conv";
    CHECK(!dt_cuda_prefers_nhwc(&fc, fp16));
}

/* The channels-last tensor-core kernel's host side (conv_tc_nhwc.h): the geometries it takes,
 * the tile a forced run picks, DUCTILE_CUDA_CONV's names. (Whether it is offered also needs
 * sm_80+: test_cuda_conv_tc.py on a GPU.) */
static void check_tc_nhwc(void)
{
    dt_conv_geom g = {.spatial = 2, .batch = 1, .c = 64, .m = 64, .group = 1, .in = {1024, 1024}, .out = {1024, 1024},
                      .k = {3, 3}, .s = {1, 1}, .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}};
    CHECK(dt_cuda_conv_tc_nhwc_applies(&g));
    dt_conv_geom c = g;
    c.c = 1; /* superres' first conv: no 16-byte copies of 8 channels */
    CHECK(!dt_cuda_conv_tc_nhwc_applies(&c));
    c.c = 12;
    CHECK(!dt_cuda_conv_tc_nhwc_applies(&c));
    c = g;
    c.group = 2;
    CHECK(!dt_cuda_conv_tc_nhwc_applies(&c));
    c = g;
    c.batch = 4096; /* 2^32 pixels: past the kernel's int pixel index */
    CHECK(!dt_cuda_conv_tc_nhwc_applies(&c));
    c = g;
    c.m = 9, c.s[0] = c.s[1] = 2, c.d[0] = c.d[1] = 2, c.k[0] = 5, c.k[1] = 1; /* any stride, dilation, kernel */
    CHECK(dt_cuda_conv_tc_nhwc_applies(&c));
    /* Tiles: 64 channels on a large map: 256x64; 256 channels: 128x128; 32 or 9 channels: 128x32
     * while the grid fills 132 SMs twice, else the smallest tile. */
    CHECK_EQ_INT(dt_cuda_conv_tc_nhwc_tile(&g, 132), DT_CU_TC_NHWC_256x64);
    /* Offered to the builder (64 channels): not 128x128 (half idle); 32 channels: only the
     * 32-wide tiles; 256 channels: not 256x64. */
    CHECK(dt_cuda_conv_tc_nhwc_offered(&g, DT_CU_TC_NHWC_256x64) && !dt_cuda_conv_tc_nhwc_offered(&g, DT_CU_TC_NHWC_128x128) &&
          dt_cuda_conv_tc_nhwc_offered(&g, DT_CU_TC_NHWC_64x64) && dt_cuda_conv_tc_nhwc_offered(&g, DT_CU_TC_NHWC_64x32));
    c = g;
    c.m = 256;
    CHECK_EQ_INT(dt_cuda_conv_tc_nhwc_tile(&c, 132), DT_CU_TC_NHWC_128x128);
    CHECK(dt_cuda_conv_tc_nhwc_offered(&c, DT_CU_TC_NHWC_128x128) && !dt_cuda_conv_tc_nhwc_offered(&c, DT_CU_TC_NHWC_256x64));
    c.m = 32;
    CHECK_EQ_INT(dt_cuda_conv_tc_nhwc_tile(&c, 132), DT_CU_TC_NHWC_128x32);
    CHECK(!dt_cuda_conv_tc_nhwc_offered(&c, DT_CU_TC_NHWC_128x64) && !dt_cuda_conv_tc_nhwc_offered(&c, DT_CU_TC_NHWC_64x64) &&
          dt_cuda_conv_tc_nhwc_offered(&c, DT_CU_TC_NHWC_128x32));
    c.m = 9;
    CHECK_EQ_INT(dt_cuda_conv_tc_nhwc_tile(&c, 132), DT_CU_TC_NHWC_128x32);
    c.in[0] = c.in[1] = c.out[0] = c.out[1] = 7, c.m = 512;   /* 49 pixels: the most blocks */
    CHECK_EQ_INT(dt_cuda_conv_tc_nhwc_tile(&c, 132), DT_CU_TC_NHWC_64x32);
    const char *old = getenv("DUCTILE_CUDA_CONV");
    setenv("DUCTILE_CUDA_CONV", "tc_nhwc", 1);
    CHECK_EQ_INT(dt_cuda_conv_tc_nhwc_forced(), DT_CUDA_CONV_TC_NHWC_AUTO);
    setenv("DUCTILE_CUDA_CONV", "tc_nhwc_64x32", 1);
    CHECK_EQ_INT(dt_cuda_conv_tc_nhwc_forced(), DT_CUDA_CONV_TC_NHWC + DT_CU_TC_NHWC_64x32);
    CHECK_EQ_INT(DT_CUDA_CONV_TC_NHWC + DT_CU_TC_NHWC_TILES, DT_CUDA_CONV_SMALLC_NHWC);
    setenv("DUCTILE_CUDA_CONV", "smallc_nhwc", 1);
    CHECK_EQ_INT(dt_cuda_conv_tc_nhwc_forced(), DT_CUDA_CONV_SMALLC_NHWC);
    setenv("DUCTILE_CUDA_CONV", "smallc_mma", 1);
    CHECK_EQ_INT(dt_cuda_conv_tc_nhwc_forced(), DT_CUDA_CONV_SMALLC_MMA);
    setenv("DUCTILE_CUDA_CONV", "patch_mma", 1);
    CHECK_EQ_INT(dt_cuda_conv_tc_nhwc_forced(), DT_CUDA_CONV_PATCH_MMA);
    setenv("DUCTILE_CUDA_CONV", "tc_nhwc_1x1", 1);
    CHECK_EQ_INT(dt_cuda_conv_tc_nhwc_forced(), 0);
    if (old) setenv("DUCTILE_CUDA_CONV", old, 1);
    else unsetenv("DUCTILE_CUDA_CONV");
    CHECK(old || dt_cuda_conv_tc_nhwc_forced() == 0);
    /* Offered to the builder's timer unless DUCTILE_CUDA_CONV_TC=0 (session 12's GPU check). */
    const char *tc = getenv("DUCTILE_CUDA_CONV_TC");
    setenv("DUCTILE_CUDA_CONV_TC", "1", 1);
    CHECK(dt_cuda_conv_tc_enabled());
    setenv("DUCTILE_CUDA_CONV_TC", "0", 1);
    CHECK(!dt_cuda_conv_tc_enabled());
    unsetenv("DUCTILE_CUDA_CONV_TC");
    CHECK(dt_cuda_conv_tc_enabled());
    if (tc) setenv("DUCTILE_CUDA_CONV_TC", tc, 1);
    /* The small-C direct kernel: superres' 1 -> 64 5x5 and ResNet's 3 -> 64 7x7 stride 2; not
     * where the tensor-core kernel takes it, nor a block's weights over 48 KiB as float or a
     * kernel row over DT_CU_SMALLC_ROW inputs. */
    c = g;
    c.c = 1, c.k[0] = c.k[1] = 5, c.pb[0] = c.pb[1] = c.pe[0] = c.pe[1] = 2;
    CHECK(dt_cuda_conv_smallc_nhwc_applies(&c) && !dt_cuda_conv_tc_nhwc_applies(&c));
    c.c = 3, c.k[0] = c.k[1] = 7, c.s[0] = c.s[1] = 2;
    CHECK(dt_cuda_conv_smallc_nhwc_applies(&c));
    c.m = 100;   /* a block's weights: 147 x 32 floats, 18 KiB */
    CHECK(dt_cuda_conv_smallc_nhwc_applies(&c));
    c.k[0] = 25;   /* 525 x 32 floats: 66 KiB */
    CHECK(!dt_cuda_conv_smallc_nhwc_applies(&c));
    c.k[0] = 7, c.k[1] = 9;   /* a kernel row of 27 inputs: over DT_CU_SMALLC_ROW */
    CHECK(!dt_cuda_conv_smallc_nhwc_applies(&c));
    CHECK(!dt_cuda_conv_smallc_nhwc_applies(&g));
    c = g;
    c.c = 3, c.group = 3, c.m = 3;
    CHECK(!dt_cuda_conv_smallc_nhwc_applies(&c));
    /* Its tensor-core form: K = C * KH * KW <= 64 (superres' 25, MobileNet's 27; not ResNet's
     * 147), C < 8, one group, the patch of an 8 x 32 output tile within 48 KiB. */
    c = g;
    c.c = 1, c.k[0] = c.k[1] = 5, c.pb[0] = c.pb[1] = c.pe[0] = c.pe[1] = 2;
    CHECK(dt_cuda_conv_smallc_mma_applies(&c));
    c.c = 3, c.k[0] = c.k[1] = 3, c.s[0] = c.s[1] = 2, c.m = 32;
    CHECK(dt_cuda_conv_smallc_mma_applies(&c));
    c.k[0] = c.k[1] = 7;   /* K = 147 */
    CHECK(!dt_cuda_conv_smallc_mma_applies(&c));
    c.c = 1, c.k[0] = c.k[1] = 8;   /* K = 64: four k-steps */
    CHECK(dt_cuda_conv_smallc_mma_applies(&c));
    c.d[0] = c.d[1] = 40;   /* patch 288 x 312 elements: 176 KiB */
    CHECK(!dt_cuda_conv_smallc_mma_applies(&c));
    c = g;
    c.c = 3, c.group = 3, c.m = 3;
    CHECK(!dt_cuda_conv_smallc_mma_applies(&c));
    CHECK(!dt_cuda_conv_smallc_mma_applies(&g));   /* C >= 8 */
    /* The staged-patch kernel: C a multiple of 16 (superres' 64 -> 64 and 32 -> 9 3x3), one
     * group, the patch of a 4 x 32 output tile and a 16 / 32 / 64-channel group's weights
     * within DT_CU_PATCH_MMA_SMEM. */
    c = g;
    c.c = 32, c.m = 9, c.k[0] = c.k[1] = 3, c.pb[0] = c.pb[1] = c.pe[0] = c.pe[1] = 1;
    CHECK(dt_cuda_conv_patch_mma_applies(&c));
    CHECK_EQ_INT(dt_cu_conv_patch_mma_nt(9), 2);
    CHECK_EQ_INT(dt_cu_conv_patch_mma_nt(17), 4);
    CHECK_EQ_INT(dt_cu_conv_patch_mma_nt(33), 8);
    CHECK_EQ_INT(dt_cu_conv_patch_mma_nt(300), 8);
    {
        /* 16 x (288 + 8) weights and 6 x 34 pixels of 40 elements, as half */
        dt_cu_conv cc = dt_cu_conv_of(&c, NULL);
        CHECK_EQ_INT((int)dt_cu_conv_patch_mma_smem(&cc), (16 * 296 + 6 * 34 * 40) * 2);
    }
    c.c = 64, c.m = 64;
    CHECK(dt_cuda_conv_patch_mma_applies(&c));
    c.c = 24;   /* not a multiple of 16 */
    CHECK(!dt_cuda_conv_patch_mma_applies(&c));
    c.c = 64, c.k[0] = c.k[1] = 5;   /* 64 x 1608 weights: 201 KiB */
    CHECK(!dt_cuda_conv_patch_mma_applies(&c));
    c.k[0] = c.k[1] = 3, c.group = 2;
    CHECK(!dt_cuda_conv_patch_mma_applies(&c));
}

static void check_fast_div(void)
{
    uint64_t seed = 12345;
    int bad = 0, checked = 0;
    for (int i = 0; i < 12000; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        uint32_t d = i < 4096 ? (uint32_t)i + 1 : i < 4128 ? UINT32_C(1) << (i - 4096) % 32 : (uint32_t)(seed >> 33) + 1;
        if (d > UINT32_C(1) << 31) d = UINT32_C(1) << 31;
        dt_fast_div f = dt_fast_div_make(d);
        uint32_t top = INT32_MAX, ns[8] = {0, 1, d - 1, d, top, top - 1, top / d * d, top / d * d - 1};
        for (int j = 0; j < 8; j++) {
            if (ns[j] > top) continue;
            bad += dt_fast_div_q_host(f, ns[j]) != ns[j] / d;
            checked++;
        }
        for (int j = 0; j < 16; j++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            uint32_t n = (uint32_t)(seed >> 33);
            bad += dt_fast_div_q_host(f, n) != n / d;
            checked++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(checked > 250000);
}

int main(void)
{
    check_fast_div();
    check_tc_nhwc();
    check_plan_lookup_never_grows();
    check_plan_refusals_are_kept();
    check_nhwc();
    check_tactics();
    check_half_tactics();
    check_plain_cudnn_tactics();
    check_prepare_elementwise();
    check_prepare_nn();
    check_prepare_shape();
    check_prepare_matmul();
    check_tactic_points();
    check_prepare_conv();
    check_conv_scratch();
    check_pool_placement();
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
