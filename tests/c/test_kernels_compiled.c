/* Which CPU kernels are compiled (backend.h: prepare once, scratch planned, run without
 * attribute lookups or allocation) and which still run through the adapter with the old
 * signature. The list below is the work left: migrating a kernel removes its op here, and a
 * kernel that falls back to the adapter fails this test. */
#include "testutil.h"

#include "backend/cpu/kernels.h"

#include <stdbool.h>
#include <string.h>

static const char *const still_adapted[] = {
    "Where", "Dropout", "Shape", "Size", "ConstantOfShape",
    "Range", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Expand", "GatherElements", "Split",
    "Slice", "Tile", "Pad", "GatherND",
    "ScatterElements", "Scatter", "ScatterND", "Trilu", "EyeLike", "ReverseSequence",
    "ConvTranspose", "Col2Im", "CenterCropPad", "Compress", "NonZero", "Unique",
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
    "MatMulInteger", "QLinearMatMul", "ConvInteger", "QLinearConv", "DFT",
    "STFT", "HannWindow", "HammingWindow", "BlackmanWindow", "MelWeightMatrix", "Einsum",
    "OneHot", "Det", "TensorScatter", "SwiGLU", "RotaryEmbedding", "LinearAttention",
    "CausalConvWithState",
};

static void test_adapter_runs_exactly_the_listed_ops(void)
{
    const char *ops[512];
    int n = dt_cpu_adapter_ops(ops, 512);
    int want = (int)(sizeof still_adapted / sizeof still_adapted[0]);
    CHECK_EQ_INT(n, want);
    for (int i = 0; i < n && i < want; i++) CHECK_EQ_STR(ops[i], still_adapted[i]);
}

static void test_every_op_has_one_kind_of_kernel(void)
{
    static const char *const compiled[] = {"FusedConv", "Conv", "Gemm", "MatMul", "Relu", "Clip", "Add",
                                           "Mul", "Sum", "Softmax", "LayerNormalization", "MaxPool",
                                           "GlobalAveragePool", "Resize", "Gather", "Concat", "LSTM", "Cast",
                                           "Transpose"};
    for (size_t i = 0; i < sizeof compiled / sizeof compiled[0]; i++) {
        CHECK(dt_cpu_kernel_compiled(compiled[i]) != NULL);
        CHECK(dt_cpu_kernel_legacy(compiled[i]) == NULL);
        CHECK(dt_cpu_kernel_find(compiled[i]) == dt_cpu_run_once);
    }
    for (size_t i = 0; i < sizeof still_adapted / sizeof still_adapted[0]; i++) {
        CHECK(dt_cpu_kernel_compiled(still_adapted[i]) == NULL);
        CHECK(dt_cpu_kernel_legacy(still_adapted[i]) != NULL);
    }
    CHECK(dt_cpu_kernel_compiled("NoSuchOp") == NULL);
    CHECK(dt_cpu_kernel_legacy("NoSuchOp") == NULL);
    CHECK(dt_cpu_kernel_find("NoSuchOp") == NULL);
}

int main(void)
{
    test_adapter_runs_exactly_the_listed_ops();
    test_every_op_has_one_kind_of_kernel();
    TEST_MAIN_END();
}
