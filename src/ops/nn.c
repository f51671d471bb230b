/* The nn op family's table and the checks its ops share. */
#include "ops/nn.h"
#include "ops/nn_flex.h"
#include "ops/families.h"
#include "core/status.h"

ductile_status dt_nn_check_int_range(const ductile_layer *L, const char *name, int64_t dflt,
                                     int64_t lo, int64_t hi)
{
    int64_t v = dt_attr_int(L, name, dflt);
    if (v < lo || v > hi) {
        if (hi - lo == 1)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                           "attribute '%s' = %lld is not supported (supported: %lld, %lld)", name,
                           (long long)v, (long long)lo, (long long)hi);
        if (lo == hi)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                           "attribute '%s' = %lld is not supported (supported: %lld)", name,
                           (long long)v, (long long)lo);
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute '%s' = %lld is not supported (supported: %lld..%lld)", name,
                       (long long)v, (long long)lo, (long long)hi);
    }
    return DUCTILE_OK;
}

bool dt_nn_present(const ductile_layer *L, const dt_view *in, int i)
{
    return i < L->n_in && in[i].rank >= 0 && dt_view_count(&in[i]) > 0;
}

const dt_opdef dt_ops_nn[] = {
    {"GlobalAveragePool", dt_nn_check_global_pool, dt_nn_infer_global_pool, 0},
    {"GlobalMaxPool", dt_nn_check_global_pool, dt_nn_infer_global_pool, 0},
    {"AveragePool", dt_nn_check_pool, dt_nn_infer_pool, 0},
    {"MaxPool", dt_nn_check_pool, dt_nn_infer_pool, 0},
    /* Bit 1 is scales for opset 10; for opset 11+ it is roi, which infer never reads (only
     * tf_crop_and_resize uses it, and that mode is refused), so an unknown roi is fine. */
    {"Resize", dt_nn_check_resize, dt_nn_infer_resize, (1u << 1) | (1u << 2) | (1u << 3)},
    {"Softmax", dt_nn_check_softmax, dt_nn_infer_softmax, 0},
    {"LogSoftmax", dt_nn_check_softmax, dt_nn_infer_softmax, 0},
    {"LayerNormalization", dt_nn_check_layernorm, dt_nn_infer_layernorm, 0},
    {"RMSNormalization", dt_nn_check_rmsnorm, dt_nn_infer_layernorm, 0},
    {"BatchNormalization", dt_nn_check_batchnorm, dt_nn_infer_batchnorm, 0},
    {"InstanceNormalization", dt_nn_check_instancenorm, dt_nn_infer_instancenorm, 0},
    /* axes is input 1 for ReduceSum from opset 13 and for the others from opset 18. */
    {"ReduceMean", dt_nn_check_reduce, dt_nn_infer_reduce, 1u << 1},
    {"ReduceSum", dt_nn_check_reduce, dt_nn_infer_reduce, 1u << 1},
    {"ReduceMax", dt_nn_check_reduce, dt_nn_infer_reduce, 1u << 1},
    {"ReduceMin", dt_nn_check_reduce, dt_nn_infer_reduce, 1u << 1},
    {"ReduceL1", dt_nn_check_reduce, dt_nn_infer_reduce, 1u << 1},
    {"ReduceL2", dt_nn_check_reduce, dt_nn_infer_reduce, 1u << 1},
    {"ReduceSumSquare", dt_nn_check_reduce, dt_nn_infer_reduce, 1u << 1},
    {"ReduceLogSum", dt_nn_check_reduce, dt_nn_infer_reduce, 1u << 1},
    {"ReduceLogSumExp", dt_nn_check_reduce, dt_nn_infer_reduce, 1u << 1},
    {"ReduceProd", dt_nn_check_reduce, dt_nn_infer_reduce, 1u << 1},
    {"Attention", dt_nn_check_attention, dt_nn_infer_attention, 0},
    {"FlexAttention", dt_nn_check_flex, dt_nn_infer_flex, 0},
    {"ArgMax", dt_nn_check_argmax, dt_nn_infer_argmax, 0},
    {"ArgMin", dt_nn_check_argmax, dt_nn_infer_argmax, 0},
    {"Hardmax", dt_nn_check_hardmax, dt_nn_infer_hardmax, 0},
    /* The axis (input 1) does not change the shape; the kernel reads it. */
    {"CumSum", dt_nn_check_cum, dt_nn_infer_cum, 0},
    {"CumProd", dt_nn_check_cum, dt_nn_infer_cum, 0},
    {"LpNormalization", dt_nn_check_lpnorm, dt_nn_infer_lpnorm, 0},
    {"TopK", dt_nn_check_topk, dt_nn_infer_topk, 1u << 1},
    {"NegativeLogLikelihoodLoss", dt_nn_check_loss, dt_nn_infer_loss, 0},
    {"SoftmaxCrossEntropyLoss", dt_nn_check_loss, dt_nn_infer_loss, 0},
    {NULL, NULL, NULL, 0},
};
