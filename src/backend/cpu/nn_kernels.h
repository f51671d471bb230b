/* Private to the CPU nn kernels: one compiled kernel per op family, the table is in nn.c. */
#ifndef DT_CPU_NN_KERNELS_H
#define DT_CPU_NN_KERNELS_H

#include "backend/cpu/kernels.h"

/* Compiled (backend.h). */
extern const dt_kernel dt_cpu_softmax_kernel, dt_cpu_log_softmax_kernel, dt_cpu_layernorm_kernel,
    dt_cpu_fused_layernorm_kernel,
    dt_cpu_batchnorm_kernel, dt_cpu_instancenorm_kernel, dt_cpu_global_avg_pool_kernel,
    dt_cpu_global_max_pool_kernel, dt_cpu_avg_pool_kernel, dt_cpu_max_pool_kernel,
    dt_cpu_resize_kernel, dt_cpu_reduce_kernel, dt_cpu_attention_kernel, dt_cpu_argmax_kernel,
    dt_cpu_hardmax_kernel, dt_cpu_cum_kernel, dt_cpu_lpnorm_kernel, dt_cpu_topk_kernel, dt_cpu_loss_kernel;
extern const dt_kernel dt_cpu_flex_attention_kernel; /* nn_flex.c */

/* Sum and max of n contiguous floats with several independent accumulators, which keeps
 * the rounding error of long sums small and lets the compiler vectorize. */
float dt_cpu_sum_f32(const float *x, int64_t n);
/* The sum of a plane for the global pools (GlobalAveragePool, FusedSqueezeExcite). */
float dt_cpu_plane_sum_f32(const float *x, int64_t n);
float dt_cpu_max_f32(const float *x, int64_t n);
/* The max and min that keep a NaN (PyTorch's pools and amax do; onnx.reference's reductions
 * do): v if it is larger (smaller) or NaN, else acc, which then stays NaN once it is. Without
 * a NaN, `v > acc ? v : acc`: the first of equal values, signed zeros included. The pools,
 * the reductions and dt_cpu_max_f32 all fold with these. DESIGN "Non-finite inputs". */
static inline float dt_max_keep_nan(float v, float acc) { return v > acc || v != v ? v : acc; }
static inline float dt_min_keep_nan(float v, float acc) { return v < acc || v != v ? v : acc; }
/* Softmax of one contiguous line of n >= 1 floats into y: the line form whose bits the 8-row
 * kernel below gives (the Softmax op and FusedAttention run that one; test_ops_nn compares). */
void dt_cpu_softmax_line(const float *x, float *y, int64_t n);
/* Softmax of s + mask over n >= 1 floats into y, for rows rows (row r: scores s + r * lds,
 * mask + r * mi, out y + r * ldy), where a row's mask is mask[t], or mask[0] for every t when
 * mj is 0, none when mask is NULL; NaN made 0 when nan_to_zero: FusedAttention's rows, the
 * bits of Add, dt_cpu_softmax_line and Where(IsNaN, 0). */
void dt_cpu_softmax_masked_rows(const float *s, int64_t lds, const float *mask, int64_t mi, int64_t mj, float *y,
                                int64_t ldy, int64_t n, int rows, bool nan_to_zero);

/* Items per parallel task so that each moves roughly 16K elements: enough to amortize the
 * hand-off to a worker without starving threads on small tensors. */
static inline int64_t dt_cpu_grain(int64_t work_per_item)
{
    int64_t g = work_per_item > 0 ? 16384 / work_per_item : 16384;
    return g < 1 ? 1 : g;
}

#endif
