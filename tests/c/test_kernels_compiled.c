/* Every CPU kernel is compiled (backend.h: prepare once, scratch planned, run without
 * attribute lookups or allocation): the adapter (old signature) runs no CPU op any more, and
 * every op that ductile defines and the CPU runs is found as a compiled kernel. A kernel added
 * on the old signature fails this test. The CUDA backend's table likewise, with no adapter at
 * all (its twin below: the table is data, found without a GPU; skipped in a build without the
 * backend). */
#include "testutil.h"
#include "onnx_writer.h"

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "ops/families.h"

#include <stdbool.h>
#include <string.h>

static void test_the_adapter_runs_no_cpu_op(void)
{
    const char *ops[512];
    int n = dt_cpu_adapter_ops(ops, 512);
    for (int i = 0; i < n && i < 512; i++) fprintf(stderr, "still on the adapter: %s\n", ops[i]);
    CHECK_EQ_INT(n, 0);
}

static void test_every_op_has_a_compiled_kernel(void)
{
    const dt_opdef *const families[] = {dt_ops_elementwise, dt_ops_shape, dt_ops_linalg, dt_ops_nn,
                                        dt_ops_fused,       dt_ops_quant, dt_ops_seq,    dt_ops_vision};
    int ops = 0;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const dt_opdef *d = families[f]; d->op_type; d++) {
            if (!dt_cpu_kernel_find(d->op_type)) continue; /* ops run only by the shape pass or folded */
            ops++;
            if (!dt_cpu_kernel_compiled(d->op_type)) fprintf(stderr, "not compiled: %s\n", d->op_type);
            CHECK(dt_cpu_kernel_compiled(d->op_type) != NULL);
            CHECK(dt_cpu_kernel_legacy(d->op_type) == NULL);
            CHECK(dt_cpu_kernel_find(d->op_type) == dt_cpu_run_once);
        }
    CHECK(ops > 170);
    CHECK(dt_cpu_kernel_compiled("NoSuchOp") == NULL);
    CHECK(dt_cpu_kernel_legacy("NoSuchOp") == NULL);
    CHECK(dt_cpu_kernel_find("NoSuchOp") == NULL);
}

/* ---- the CUDA backend's table ---- */

/* Every op with a CUDA kernel: each is compiled (the convolutions were the last on the
 * adapter). An op added on the old signature, or a compiled one dropped, fails. */
static const char *const cuda_compiled_ops[] = {
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "PRelu", "Identity", "Relu", "Sigmoid", "Tanh", "Erf", "Sqrt",
    "Exp", "Log", "Neg", "Abs", "Reciprocal", "HardSigmoid", "HardSwish", "Clip", "LeakyRelu", "Elu", "Softplus",
    "Gelu", "Floor", "Ceil", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSumSquare", "ReduceL1",
    "ReduceL2", "MatMul", "Gemm", "Softmax", "LogSoftmax", "LayerNormalization", "GlobalAveragePool", "MaxPool",
    "AveragePool", "Transpose", "Gather", "Concat", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Expand", "Slice",
    "DepthToSpace", "Resize", "Cast", "Where", "IsNaN", "Not", "And", "Or", "Xor", "Conv", "FusedConv",
    "FusedMatMul", "FusedAttention", "FusedLayerNorm", "FusedSqueezeExcite",
};

static void test_every_cuda_op_is_compiled(void)
{
    const dt_backend *cuda = dt_backend_find("cuda");
    if (!cuda) {
        fprintf(stderr, "skipped the CUDA table: built without the CUDA backend (CUDA=0)\n");
        return;
    }
    CHECK(cuda->kernel != NULL);
    if (!cuda->kernel) return;
    const dt_opdef *const families[] = {dt_ops_elementwise, dt_ops_shape, dt_ops_linalg, dt_ops_nn,
                                        dt_ops_fused,       dt_ops_quant, dt_ops_seq,    dt_ops_vision};
    int compiled = 0, adapter = 0;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const dt_opdef *d = families[f]; d->op_type; d++) {
            const dt_kernel *k = cuda->kernel(d->op_type);
            dt_kernel_fn old = cuda->find_kernel ? cuda->find_kernel(d->op_type) : NULL;
            if (k) {
                compiled++;
                CHECK(k->run != NULL);
            }
            if (old) {
                adapter++;
                fprintf(stderr, "cuda: still on the adapter: %s\n", d->op_type);
            }
        }
    for (size_t i = 0; i < sizeof cuda_compiled_ops / sizeof cuda_compiled_ops[0]; i++) {
        if (!cuda->kernel(cuda_compiled_ops[i])) fprintf(stderr, "cuda: not compiled: %s\n", cuda_compiled_ops[i]);
        CHECK(cuda->kernel(cuda_compiled_ops[i]) != NULL);
    }
    CHECK_EQ_INT(compiled, (int)(sizeof cuda_compiled_ops / sizeof cuda_compiled_ops[0]));
    CHECK_EQ_INT(adapter, 0);
    /* No adapter at all: the plan can only compile a CUDA layer. */
    CHECK(cuda->find_kernel == NULL);
    CHECK(cuda->kernel("NoSuchOp") == NULL);
    /* The convolutions: one kernel, with a prepare (attributes) and a scratch (split-K sums). */
    const dt_kernel *conv = cuda->kernel("Conv");
    CHECK(conv != NULL && conv == cuda->kernel("FusedConv"));
    if (conv) CHECK(conv->prepare != NULL && conv->scratch != NULL);
}

/* FusedAttention's tactics on CUDA (data, no GPU needed): WMMA tensor cores (1), CUDA cores
 * (2) and mma.sync for short sequences (3) where the tensor-core ones apply (float16 /
 * bfloat16, head dims multiples of 16 up to 128), and the split-key mma kernel (4) too where
 * both head dims are at most 64; else none (the CUDA-core kernel, the only one). FusedMatMul's: cuBLASLt's
 * heuristic ranks, as MatMul's. */
static void test_cuda_fused_layer_tactics(void)
{
    const dt_backend *cuda = dt_backend_find("cuda");
    if (!cuda || !cuda->tactics) return;
    ductile_tensor t[3];
    memset(t, 0, sizeof t);
    ductile_tensor *ins[3] = {&t[0], &t[1], &t[2]};
    dt_attr layout = {.name = "layout", .type = DT_ATTR_STRING, .s = "bshd", .s_len = 4};
    ductile_layer L = {.name = "att", .op_type = "FusedAttention", .domain = "ductile", .n_in = 3, .in = ins, .n_out = 1,
                       .n_attr = 1, .attrs = &layout};
    static const struct { int dtype; int64_t d, dv; int want; } cases[] = {
        {DUCTILE_FLOAT16, 64, 64, 4}, {DUCTILE_BFLOAT16, 128, 16, 3}, {DUCTILE_FLOAT32, 64, 64, 0},
        {DUCTILE_FLOAT16, 24, 24, 0}, {DUCTILE_FLOAT16, 144, 64, 0},  {DUCTILE_BFLOAT16, 64, 8, 0},
        {DUCTILE_BFLOAT16, 16, 48, 4}, {DUCTILE_FLOAT16, 64, 80, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* bshd: Q [B, S, H, D], K [B, L, H, D], V [B, L, H, Dv] */
        dt_view in[3] = {
            {.dtype = cases[i].dtype, .rank = 4, .dims = {2, 7, 3, cases[i].d}},
            {.dtype = cases[i].dtype, .rank = 4, .dims = {2, 9, 3, cases[i].d}},
            {.dtype = cases[i].dtype, .rank = 4, .dims = {2, 9, 3, cases[i].dv}},
        };
        int ids[8] = {0};
        int n = cuda->tactics(&L, in, ids, 8);
        CHECK_EQ_INT(n, cases[i].want);
        if (n >= 3) CHECK(ids[0] == 1 && ids[1] == 2 && ids[2] == 3);
        if (n == 4) CHECK(ids[3] == 4);
    }
    L.op_type = "FusedMatMul";
    L.n_attr = 0;
    dt_view mm[3] = {{.dtype = DUCTILE_FLOAT16, .rank = 3, .dims = {2, 7, 24}},
                     {.dtype = DUCTILE_FLOAT16, .rank = 2, .dims = {24, 70}},
                     {.dtype = DUCTILE_FLOAT16, .rank = 1, .dims = {70}}};
    int ids[8] = {0};
    CHECK_EQ_INT(cuda->tactics(&L, mm, ids, 8), 4);
    CHECK(ids[0] == 1 && ids[3] == 4);
}

/* ---- refusals that prepare moved from the first execute to the build ---- */

/* One node x -> y at a default-domain opset: x [2,2] of dtype tx, y [2,2] of dtype ty. */
static pbw one_node_at(pbw n, int opset, int tx, int ty)
{
    pbw g = {0}, m = {0}, o = {0};
    int64_t d[2] = {2, 2};
    w_msg(&g, 1, n);
    w_str(&g, 2, "g");
    w_msg(&g, 11, value_info("x", tx, 2, d, NULL));
    w_msg(&g, 12, value_info("y", ty, 2, d, NULL));
    w_int(&m, 1, 8);
    w_msg(&m, 7, g);
    w_str(&o, 1, "");
    w_int(&o, 2, opset);
    w_msg(&m, 8, o);
    return m;
}

/* Builds m (x fixed at [2,2]); returns the status, the message in ductile_last_error(). */
static ductile_status build_model(pbw m)
{
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    ductile_status s = ductile_builder_create(&b);
    if (!s) s = ductile_network_create(b, &net);
    if (!s) s = ductile_onnx_parse_memory(net, m.p, m.n);
    if (!s) s = ductile_config_create(b, &cfg);
    if (!s) s = ductile_builder_build(b, net, cfg, &e);
    ductile_engine_free(e);
    ductile_config_free(cfg);
    ductile_network_free(net);
    ductile_builder_free(b);
    free(m.p);
    return s;
}

static void test_eye_like_of_a_dtype_without_one_is_refused_at_build(void)
{
    pbw a[] = {attr_int("dtype", DUCTILE_FLOAT8E4M3FN)};
    ductile_status s = build_model(one_node_at(node("eye", "EyeLike", NULL, S("x"), S("y"), a, 1), 13,
                                               DUCTILE_FLOAT32, DUCTILE_FLOAT8E4M3FN));
    CHECK_EQ_INT(s, DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(ductile_last_error(), "node 'eye' (EyeLike, opset 13): EyeLike of dtype float8e4m3fn is not supported");
}

static void test_pad_value_the_data_cannot_hold_is_refused_at_build(void)
{
    pbw pads = {0};
    const int64_t p[4] = {0, 0, 0, 0};
    w_str(&pads, 1, "pads");
    w_packed(&pads, 8, p, 4);
    w_int(&pads, 20, 7);
    pbw a[] = {pads, attr_float("value", 1.5f)};
    ductile_status s = build_model(one_node_at(node("pad", "Pad", NULL, S("x"), S("y"), a, 2), 2,
                                               DUCTILE_FLOAT16, DUCTILE_FLOAT16));
    CHECK_EQ_INT(s, DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(ductile_last_error(), "node 'pad' (Pad, opset 2): attribute 'value' = 1.5 for float16 data is not supported");
}

int main(void)
{
    test_the_adapter_runs_no_cpu_op();
    test_every_op_has_a_compiled_kernel();
    test_every_cuda_op_is_compiled();
    test_cuda_fused_layer_tactics();
    test_eye_like_of_a_dtype_without_one_is_refused_at_build();
    test_pad_value_the_data_cannot_hold_is_refused_at_build();
    TEST_MAIN_END();
}
