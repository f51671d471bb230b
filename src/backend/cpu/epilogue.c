/* The fused-conv epilogue: residual add and activation over a row of output values. Rows are
 * short (a GEMM strip is at most DT_GEMM_NC wide) and hot in L1, so plain loops that the
 * vectorizer turns into AVX-512 code (a clone picked by CPU feature) are as fast as the
 * loads; every form is written to give the unfused kernels' exact values. */
#pragma GCC optimize("O3", "no-math-errno", "no-trapping-math")

#include "backend/cpu/cpu_isa.h"
#include "backend/cpu/epilogue.h"
#include "backend/cpu/exp_approx.h"
#include "core/status.h"
#include "ops/defaults.h"
#include "ops/op.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Clip as the Clip kernel and max(0, min(1, p0 * x + p1)), in the unfused kernels' operation
 * order; a NaN stays NaN in each (and in Relu below), as onnxruntime and onnx.reference keep
 * it: the comparisons are false for it, so it is the value returned. */
static inline __attribute__((always_inline)) float dt_epi_clip(float x, float lo, float hi)
{
    float v = x < lo ? lo : x;
    return v > hi ? hi : v;
}

static inline __attribute__((always_inline)) float dt_epi_hardsigmoid(float x, float p0, float p1)
{
    float v = p0 * x + p1;
    v = v < 0.0f ? 0.0f : v;
    return v > 1.0f ? 1.0f : v;
}

/* One pass over the row: bias, residual and activation of an element while it is in a
 * register (three passes, each a load and a store of the row, cost as much as the activation
 * itself for the cheap ones). has_b and has_r are constants at each call below, so each use
 * compiles to its own loop without tests inside. */
static inline __attribute__((always_inline)) void dt_epilogue_pass(dt_act act, float p0, float p1, float *restrict c,
                                                                   const float *restrict b, const float *restrict r,
                                                                   int64_t n, const bool has_b, const bool has_r)
{
#define DT_EPI_LOOP(F)                                                                                             \
    for (int64_t j = 0; j < n; j++) {                                                                              \
        float x = c[j];                                                                                            \
        if (has_b) x = x + b[j];                                                                                   \
        if (has_r) x = x + r[j];                                                                                   \
        c[j] = F;                                                                                                  \
    }
    switch (act) {
    case DT_ACT_NONE:
        DT_EPI_LOOP(x)
        break;
    case DT_ACT_RELU:
        DT_EPI_LOOP(x < 0.0f ? 0.0f : x)
        break;
    case DT_ACT_CLIP:
        DT_EPI_LOOP(dt_epi_clip(x, p0, p1))
        break;
    case DT_ACT_HARDSIGMOID:
        DT_EPI_LOOP(dt_epi_hardsigmoid(x, p0, p1))
        break;
    case DT_ACT_HARDSWISH:
        DT_EPI_LOOP(x * dt_epi_hardsigmoid(x, p0, p1))
        break;
    case DT_ACT_SIGMOID:
        /* The Sigmoid kernel's form (elementwise_unary.c): the unfused layers' bits. */
        DT_EPI_LOOP(dt_sigmoid_approx(x))
        break;
    case DT_ACT_SILU:
        /* Mul(x, Sigmoid(x)) with the Sigmoid kernel's form: the unfused layers' bits. */
        DT_EPI_LOOP(x * dt_sigmoid_approx(x))
        break;
    case DT_ACT_GELU:
        DT_EPI_LOOP(dt_gelu_approx(x))
        break;
    case DT_ACT_SIGMOID_LEAN:
    case DT_ACT_SILU_LEAN:
        /* the adds only: dt_epilogue_apply_bias runs the lean sigmoid after (AVX-512) */
        DT_EPI_LOOP(x)
        break;
    }
#undef DT_EPI_LOOP
}

/* x86-64 levels 4 and 3: AVX-512 or AVX2, with FMA for Gelu's fused steps (exp_approx.h),
 * the clones of the Gelu kernel's (elementwise_unary.c) so both give the same bits. */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
static void dt_epilogue_row(dt_act act, float p0, float p1, float *restrict c, const float *restrict b,
                            const float *restrict r, int64_t n)
{
    if (b && r)
        dt_epilogue_pass(act, p0, p1, c, b, r, n, true, true);
    else if (b)
        dt_epilogue_pass(act, p0, p1, c, b, r, n, true, false);
    else if (r)
        dt_epilogue_pass(act, p0, p1, c, b, r, n, false, true);
    else
        dt_epilogue_pass(act, p0, p1, c, b, r, n, false, false);
}

/* A row's sigmoids (times the values: silu) in place, four vectors at a time and a masked
 * tail: dt_sigmoid_lean_vecs where lean, else dt_sigmoid_vecs, which gives dt_sigmoid_approx's
 * bits (the vectorized loop of dt_epilogue_row ran one vector at a time and the tails of the
 * short rows that the Winograd and smallc output passes hand over, 11 or 44 values, a value at
 * a time: YOLO's float32 Silu was 11% of its run, half of it in those tails). AVX-512 only.
 * The lean form needs AVX512DQ (exp_approx.h) and the exact one must not use it, so the body is
 * a macro over the function of R vectors, compiled once per form with its own target. */
#define DT_EPI_SIG_ROW(name, target_isa, vecs, silu)                                            \
    __attribute__((target(target_isa))) static void name(float *c, int64_t n)                \
    {                                                                                         \
        int64_t j = 0;                                                                        \
        for (; j + 64 <= n; j += 64) {                                                        \
            __m512 v[4];                                                                      \
            for (int i = 0; i < 4; i++) v[i] = _mm512_loadu_ps(c + j + 16 * i);               \
            vecs(v, 4, silu);                                                                 \
            for (int i = 0; i < 4; i++) _mm512_storeu_ps(c + j + 16 * i, v[i]);               \
        }                                                                                     \
        if (j == n) return;                                                                   \
        /* the last 1-63 values as up to four vectors together, masked */                     \
        __m512 v[4];                                                                          \
        __mmask16 m[4];                                                                       \
        int nv = (int)((n - j + 15) / 16);                                                    \
        for (int i = 0; i < nv; i++) {                                                        \
            int64_t left = n - j - 16 * i;                                                    \
            m[i] = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);            \
            v[i] = _mm512_maskz_loadu_ps(m[i], c + j + 16 * i);                               \
        }                                                                                     \
        switch (nv) {                                                                         \
        case 1: vecs(v, 1, silu); break;                                                      \
        case 2: vecs(v, 2, silu); break;                                                      \
        case 3: vecs(v, 3, silu); break;                                                      \
        default: vecs(v, 4, silu); break;                                                     \
        }                                                                                     \
        for (int i = 0; i < nv; i++) _mm512_mask_storeu_ps(c + j + 16 * i, m[i], v[i]);       \
    }

DT_EPI_SIG_ROW(dt_epilogue_sigmoid_row, "avx512f,fma", dt_sigmoid_vecs, false)
DT_EPI_SIG_ROW(dt_epilogue_silu_row, "avx512f,fma", dt_sigmoid_vecs, true)
DT_EPI_SIG_ROW(dt_epilogue_sigmoid_lean_row, "avx512f,avx512dq,fma", dt_sigmoid_lean_vecs, false)
DT_EPI_SIG_ROW(dt_epilogue_silu_lean_row, "avx512f,avx512dq,fma", dt_sigmoid_lean_vecs, true)

/* The exact Sigmoid or Silu over a row on AVX2 (dt_sigmoid_vecs8): four vectors at a time,
 * the last 1-31 values as up to four masked vectors. */
__attribute__((target("avx2,fma"))) static void dt_epilogue_sig_row_avx2(float *c, int64_t n, bool silu)
{
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m256 v[4];
        for (int i = 0; i < 4; i++) v[i] = _mm256_loadu_ps(c + j + 8 * i);
        if (silu)
            dt_sigmoid_vecs8(v, 4, true);
        else
            dt_sigmoid_vecs8(v, 4, false);
        for (int i = 0; i < 4; i++) _mm256_storeu_ps(c + j + 8 * i, v[i]);
    }
    if (j == n) return;
    __m256 v[4];
    __m256i m[4];
    int nv = (int)((n - j + 7) / 8);
    for (int i = nv; i < 4; i++) v[i] = _mm256_setzero_ps();   /* computed, never stored */
    for (int i = 0; i < nv; i++) {
        int64_t left = n - j - 8 * i;
        m[i] = _mm256_cmpgt_epi32(_mm256_set1_epi32(left >= 8 ? 8 : (int)left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        v[i] = _mm256_maskload_ps(c + j + 8 * i, m[i]);
    }
    if (silu)
        dt_sigmoid_vecs8(v, 4, true);
    else
        dt_sigmoid_vecs8(v, 4, false);
    for (int i = 0; i < nv; i++) _mm256_maskstore_ps(c + j + 8 * i, m[i], v[i]);
}

static void dt_epilogue_sig_row(float *c, int64_t n, dt_act act)
{
    switch (act) {
    case DT_ACT_SIGMOID: dt_epilogue_sigmoid_row(c, n); break;
    case DT_ACT_SILU: dt_epilogue_silu_row(c, n); break;
    case DT_ACT_SIGMOID_LEAN: dt_epilogue_sigmoid_lean_row(c, n); break;
    default: dt_epilogue_silu_lean_row(c, n); break;
    }
}

static bool dt_epilogue_is_sig(dt_act a)
{
    return a == DT_ACT_SIGMOID || a == DT_ACT_SILU || a == DT_ACT_SIGMOID_LEAN || a == DT_ACT_SILU_LEAN;
}

void dt_epilogue_apply_bias(const dt_epilogue *e, float *c, const float *b, const float *r, int64_t n)
{
    if (!e || (e->act == DT_ACT_NONE && !r && !b)) return;
    __builtin_cpu_init();
    if ((e->act == DT_ACT_SIGMOID || e->act == DT_ACT_SILU) && !__builtin_cpu_supports("avx512f") &&
        dt_cpu_has_avx2_fma()) {
        if (b || r) dt_epilogue_row(DT_ACT_NONE, 0.0f, 0.0f, c, b, r, n);
        dt_epilogue_sig_row_avx2(c, n, e->act == DT_ACT_SILU);
        return;
    }
    if (!dt_epilogue_is_sig(e->act) || !__builtin_cpu_supports("avx512f")) {
        /* the lean forms never get here without AVX-512 (dt_epilogue_lean): the exact ones */
        dt_epilogue_row(dt_act_exact(e->act), e->p0, e->p1, c, b, r, n);
        return;
    }
    /* the adds as dt_epilogue_row rounds them, stored, then the sigmoid of the stored sums */
    if (b || r) dt_epilogue_row(DT_ACT_NONE, 0.0f, 0.0f, c, b, r, n);
    dt_epilogue_sig_row(c, n, e->act);
}

void dt_epilogue_lean(const ductile_layer *L, dt_epilogue *e)
{
    if (e->act != DT_ACT_SIGMOID && e->act != DT_ACT_SILU) return;
    if (!dt_attr_int(L, "bf16", 0) && !dt_attr_int(L, "fp16", 0) && !dt_attr_int(L, "lean_act", 0)) return;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512dq")) return;
    e->act = e->act == DT_ACT_SILU ? DT_ACT_SILU_LEAN : DT_ACT_SIGMOID_LEAN;
}

void dt_epilogue_apply(const dt_epilogue *e, float *c, const float *r, int64_t n)
{
    dt_epilogue_apply_bias(e, c, NULL, r, n);
}

int dt_act_from_name(const char *name)
{
    static const char *const names[] = {"", "Relu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid", "Gelu", "Silu"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i], name) == 0) return (int)i;
    return -1;
}

/* An activation from its name and parameters: Clip's default bounds where absent. */
ductile_status dt_epilogue_act_read(const ductile_layer *L, const char *name_attr, const char *p0, const char *p1,
                                    dt_epilogue *e)
{
    const char *name = dt_attr_string(L, name_attr, "");
    int act = dt_act_from_name(name);
    if (act < 0 || act == DT_ACT_GELU)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute '%s' = '%s' is not supported", name_attr, name);
    e->act = (dt_act)act;
    bool clip = act == DT_ACT_CLIP;
    e->p0 = dt_attr_float(L, p0, clip ? DT_CLIP_NO_MIN : DT_HARDSIGMOID_ALPHA);
    e->p1 = dt_attr_float(L, p1, clip ? DT_CLIP_NO_MAX : DT_HARDSIGMOID_BETA);
    return DUCTILE_OK;
}
