/* The fused-conv epilogue: residual add and activation over a row of output values. Rows are
 * short (a GEMM strip is at most DT_GEMM_NC wide) and hot in L1, so plain loops that the
 * vectorizer turns into AVX-512 code (a clone picked by CPU feature) are as fast as the
 * loads; every form is written to give the unfused kernels' exact values. */
#pragma GCC optimize("O3", "no-math-errno", "no-trapping-math")

#include "backend/cpu/epilogue.h"
#include "backend/cpu/exp_approx.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

__attribute__((target_clones("avx512f", "avx2", "default")))
static void dt_epilogue_row(dt_act act, float p0, float p1, float *restrict c, const float *restrict b,
                            const float *restrict r, int64_t n)
{
    if (b)
        for (int64_t j = 0; j < n; j++) c[j] = c[j] + b[j];
    if (r)
        for (int64_t j = 0; j < n; j++) c[j] = c[j] + r[j];
    switch (act) {
    case DT_ACT_NONE:
        break;
    case DT_ACT_RELU:
        for (int64_t j = 0; j < n; j++) c[j] = c[j] > 0.0f ? c[j] : 0.0f;
        break;
    case DT_ACT_CLIP:
        /* As the Clip kernel: a NaN stays NaN. */
        for (int64_t j = 0; j < n; j++) {
            float v = c[j] < p0 ? p0 : c[j];
            c[j] = v > p1 ? p1 : v;
        }
        break;
    case DT_ACT_HARDSIGMOID:
        for (int64_t j = 0; j < n; j++) {
            float v = p0 * c[j] + p1;
            v = v > 0.0f ? v : 0.0f;
            c[j] = v < 1.0f ? v : 1.0f;
        }
        break;
    case DT_ACT_HARDSWISH:
        for (int64_t j = 0; j < n; j++) {
            float x = c[j], v = p0 * x + p1;
            v = v > 0.0f ? v : 0.0f;
            v = v < 1.0f ? v : 1.0f;
            c[j] = x * v;
        }
        break;
    case DT_ACT_SIGMOID:
        /* Rare (one small gate in the suite): libm's expf, within an ulp or two of the
         * elementwise kernel's polynomial. */
        for (int64_t j = 0; j < n; j++) c[j] = 1.0f / (1.0f + expf(-c[j]));
        break;
    case DT_ACT_GELU:
        for (int64_t j = 0; j < n; j++) c[j] = dt_gelu_approx(c[j]);
        break;
    }
}

void dt_epilogue_apply_bias(const dt_epilogue *e, float *c, const float *b, const float *r, int64_t n)
{
    if (!e || (e->act == DT_ACT_NONE && !r && !b)) return;
    dt_epilogue_row(e->act, e->p0, e->p1, c, b, r, n);
}

void dt_epilogue_apply(const dt_epilogue *e, float *c, const float *r, int64_t n)
{
    dt_epilogue_apply_bias(e, c, NULL, r, n);
}

int dt_act_from_name(const char *name)
{
    static const char *const names[] = {"", "Relu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid", "Gelu"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i], name) == 0) return (int)i;
    return -1;
}
