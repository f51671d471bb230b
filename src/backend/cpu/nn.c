/* The CPU nn kernel table and the reductions the kernels share. */
#include "backend/cpu/nn_kernels.h"
#include "backend/cpu/families.h"

#include <math.h>

float dt_cpu_sum_f32(const float *x, int64_t n)
{
    float acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) acc[k] += x[i + k];
    float s = 0.0f;
    for (int k = 0; k < 16; k++) s += acc[k];
    for (; i < n; i++) s += x[i];
    return s;
}

float dt_cpu_max_f32(const float *x, int64_t n)
{
    float acc[16];
    for (int k = 0; k < 16; k++) acc[k] = -INFINITY;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) acc[k] = x[i + k] > acc[k] ? x[i + k] : acc[k];
    float m = -INFINITY;
    for (int k = 0; k < 16; k++) m = acc[k] > m ? acc[k] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

const dt_cpu_kernel dt_cpu_nn[] = {
    {"GlobalAveragePool", dt_cpu_global_avg_pool},
    {"GlobalMaxPool", dt_cpu_global_max_pool},
    {"AveragePool", dt_cpu_avg_pool},
    {"MaxPool", dt_cpu_max_pool},
    {"Resize", dt_cpu_resize},
    {"Softmax", dt_cpu_softmax},
    {"LogSoftmax", dt_cpu_log_softmax},
    {"LayerNormalization", dt_cpu_layernorm},
    {"RMSNormalization", dt_cpu_layernorm},
    {"BatchNormalization", dt_cpu_batchnorm},
    {"InstanceNormalization", dt_cpu_instancenorm},
    {"ReduceMean", dt_cpu_reduce},
    {"ReduceSum", dt_cpu_reduce},
    {"ReduceMax", dt_cpu_reduce},
    {"ReduceMin", dt_cpu_reduce},
    {"ReduceL1", dt_cpu_reduce},
    {"ReduceL2", dt_cpu_reduce},
    {"ReduceSumSquare", dt_cpu_reduce},
    {"ReduceLogSum", dt_cpu_reduce},
    {"ReduceLogSumExp", dt_cpu_reduce},
    {"ReduceProd", dt_cpu_reduce},
    {"Attention", dt_cpu_attention},
    {"ArgMax", dt_cpu_argmax},
    {"ArgMin", dt_cpu_argmax},
    {"Hardmax", dt_cpu_hardmax},
    {"CumSum", dt_cpu_cum},
    {"CumProd", dt_cpu_cum},
    {"LpNormalization", dt_cpu_lpnorm},
    {"TopK", dt_cpu_topk},
    {"NegativeLogLikelihoodLoss", dt_cpu_loss},
    {"SoftmaxCrossEntropyLoss", dt_cpu_loss},
    {NULL, NULL},
};
