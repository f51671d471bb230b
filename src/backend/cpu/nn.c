/* The CPU nn kernel table and the reductions the kernels share. */
#include "backend/cpu/nn_kernels.h"
#include "backend/cpu/families.h"

#include <math.h>
#include <string.h>

/* The exported functions below call static clones: clang 14 leaves a target_clones function's
 * ifunc out of the object unless the translation unit itself calls it, and the other files'
 * calls then fail to link (`make fuzz` builds with clang). */

/* Clones as dt_cpu_max_f32's below: the 16 partial sums fix the order of the additions, so
 * every clone gives the same sum. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static float dt_sum_f32_clones(const float *x, int64_t n)
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

float dt_cpu_sum_f32(const float *x, int64_t n) { return dt_sum_f32_clones(x, n); }

/* The global pools' plane sums: 64 partial sums (four vectors of 16), so a long plane's adds
 * overlap instead of waiting out each add's latency on one chain of 16 (EfficientNet's
 * squeeze-excite pools over 112x112 planes read ~53 GB/s so, from L2). Then the four
 * vectors added lane by lane, the lanes in order: the same sum in every clone. Not
 * dt_cpu_sum_f32's order past 64 floats (LayerNorm's row kernels repeat that one bit for
 * bit). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static float dt_plane_sum_clones(const float *x, int64_t n)
{
    /* Vector types, as dt_max_f32_clones': an array of 64 sums was kept on the stack (7x7
     * planes 2.2x slower than one chain). Under 64 floats the sum is dt_cpu_sum_f32's. */
    typedef float v16 __attribute__((vector_size(64)));
    v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, v;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        memcpy(&v, x + i, sizeof v);
        a0 += v;
        memcpy(&v, x + i + 16, sizeof v);
        a1 += v;
        memcpy(&v, x + i + 32, sizeof v);
        a2 += v;
        memcpy(&v, x + i + 48, sizeof v);
        a3 += v;
    }
    for (; i + 16 <= n; i += 16) {
        memcpy(&v, x + i, sizeof v);
        a0 += v;
    }
    a0 = (a0 + a1) + (a2 + a3);
    float s = 0.0f;
    for (int k = 0; k < 16; k++) s += a0[k];
    for (; i < n; i++) s += x[i];
    return s;
}

float dt_cpu_plane_sum_f32(const float *x, int64_t n) { return dt_plane_sum_clones(x, n); }

/* AVX-512 and AVX2 clones: softmax runs it on every line of attention scores. A max is
 * exact, so the clones agree with the baseline build. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static float dt_max_f32_clones(const float *x, int64_t n)
{
    /* 16 lanes as one vector type: gcc 12 left the array form's selects scalar (a maxss a
     * float; FusedAttention's mask rows, 512 keys a row, spent 0.7 cycles a key here). */
    typedef float v16 __attribute__((vector_size(64)));
    typedef int32_t v16i __attribute__((vector_size(64)));
    v16 acc;
    for (int k = 0; k < 16; k++) acc[k] = -INFINITY;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v16 v;
        memcpy(&v, x + i, sizeof v);
        v16i gt = (v > acc) | (v != v);   /* dt_max_keep_nan in lanes */
        acc = (v16)((gt & (v16i)v) | (~gt & (v16i)acc));
    }
    float m = -INFINITY;
    for (int k = 0; k < 16; k++) m = dt_max_keep_nan(acc[k], m);
    for (; i < n; i++) m = dt_max_keep_nan(x[i], m);
    return m;
}

float dt_cpu_max_f32(const float *x, int64_t n) { return dt_max_f32_clones(x, n); }

const dt_cpu_kernel dt_cpu_nn[] = {
    {"GlobalAveragePool", NULL, &dt_cpu_global_avg_pool_kernel},
    {"GlobalMaxPool", NULL, &dt_cpu_global_max_pool_kernel},
    {"AveragePool", NULL, &dt_cpu_avg_pool_kernel},
    {"MaxPool", NULL, &dt_cpu_max_pool_kernel},
    {"Resize", NULL, &dt_cpu_resize_kernel},
    {"Softmax", NULL, &dt_cpu_softmax_kernel},
    {"LogSoftmax", NULL, &dt_cpu_log_softmax_kernel},
    {"LayerNormalization", NULL, &dt_cpu_layernorm_kernel},
    {"RMSNormalization", NULL, &dt_cpu_layernorm_kernel},
    {"FusedLayerNorm", NULL, &dt_cpu_fused_layernorm_kernel},   /* domain ductile (ops/fused.h) */
    {"BatchNormalization", NULL, &dt_cpu_batchnorm_kernel},
    {"InstanceNormalization", NULL, &dt_cpu_instancenorm_kernel},
    {"ReduceMean", NULL, &dt_cpu_reduce_kernel},
    {"ReduceSum", NULL, &dt_cpu_reduce_kernel},
    {"ReduceMax", NULL, &dt_cpu_reduce_kernel},
    {"ReduceMin", NULL, &dt_cpu_reduce_kernel},
    {"ReduceL1", NULL, &dt_cpu_reduce_kernel},
    {"ReduceL2", NULL, &dt_cpu_reduce_kernel},
    {"ReduceSumSquare", NULL, &dt_cpu_reduce_kernel},
    {"ReduceLogSum", NULL, &dt_cpu_reduce_kernel},
    {"ReduceLogSumExp", NULL, &dt_cpu_reduce_kernel},
    {"ReduceProd", NULL, &dt_cpu_reduce_kernel},
    {"Attention", NULL, &dt_cpu_attention_kernel},
    {"FlexAttention", NULL, &dt_cpu_flex_attention_kernel},
    {"ArgMax", NULL, &dt_cpu_argmax_kernel},
    {"ArgMin", NULL, &dt_cpu_argmax_kernel},
    {"Hardmax", NULL, &dt_cpu_hardmax_kernel},
    {"CumSum", NULL, &dt_cpu_cum_kernel},
    {"CumProd", NULL, &dt_cpu_cum_kernel},
    {"LpNormalization", NULL, &dt_cpu_lpnorm_kernel},
    {"TopK", NULL, &dt_cpu_topk_kernel},
    {"NegativeLogLikelihoodLoss", NULL, &dt_cpu_loss_kernel},
    {"SoftmaxCrossEntropyLoss", NULL, &dt_cpu_loss_kernel},
    {NULL, NULL, NULL},
};
