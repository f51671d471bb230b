/* Unary elementwise kernels (activations, math, IsNaN, IsInf, Not, BitwiseNot, Identity),
 * Clip and Dropout. Inputs and outputs are contiguous and of one shape, so each op is one flat
 * loop per parallel chunk. float16/bfloat16 run through float32 (dt_ew_via_f32). */
/* The build's -O2 vectorizes only loops whose trip count and aliasing are known; these
 * loops need the full vectorizer to run at memory speed. */
#pragma GCC optimize("O3", "no-math-errno", "no-trapping-math")

#include "backend/cpu/random.h"
#include "backend/cpu/elementwise_impl.h"
#include "core/alloc.h"
#include "backend/cpu/exp_approx.h"
#include "core/status.h"
#include "ops/defaults.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum {
    U_RELU, U_SIGMOID, U_TANH, U_ERF, U_EXP, U_LOG, U_SQRT, U_NEG, U_ABS, U_RECIP, U_FLOOR,
    U_CEIL, U_HARDSIGMOID, U_HARDSWISH, U_LEAKYRELU, U_ELU, U_SOFTPLUS, U_ISNAN, U_NOT,
    U_IDENTITY, U_GELU,
    /* Ops from here on compute in double, element by element (dt_unary_d): they are rare in
     * exported models, so accuracy comes before speed. */
    U_FIRST_SCALAR,
    U_SIGN = U_FIRST_SCALAR, U_ROUND, U_SIN, U_COS, U_TAN, U_ASIN, U_ACOS, U_ATAN, U_SINH,
    U_COSH, U_ASINH, U_ACOSH, U_ATANH, U_CELU, U_SELU, U_SOFTSIGN, U_MISH, U_GELU_TANH,
    U_SWISH, U_THRESHOLDEDRELU, U_SHRINK, U_ISINF, U_BITNOT
};

static const struct { const char *name; int op; } dt_unary_ops[] = {
    {"Relu", U_RELU}, {"Sigmoid", U_SIGMOID}, {"Tanh", U_TANH}, {"Erf", U_ERF},
    {"Exp", U_EXP}, {"Log", U_LOG}, {"Sqrt", U_SQRT}, {"Neg", U_NEG}, {"Abs", U_ABS},
    {"Reciprocal", U_RECIP}, {"Floor", U_FLOOR}, {"Ceil", U_CEIL},
    {"HardSigmoid", U_HARDSIGMOID}, {"HardSwish", U_HARDSWISH}, {"LeakyRelu", U_LEAKYRELU},
    {"Elu", U_ELU}, {"Softplus", U_SOFTPLUS}, {"IsNaN", U_ISNAN}, {"Not", U_NOT},
    {"Identity", U_IDENTITY}, {"Sign", U_SIGN}, {"Round", U_ROUND}, {"Sin", U_SIN},
    {"Cos", U_COS}, {"Tan", U_TAN}, {"Asin", U_ASIN}, {"Acos", U_ACOS}, {"Atan", U_ATAN},
    {"Sinh", U_SINH}, {"Cosh", U_COSH}, {"Asinh", U_ASINH}, {"Acosh", U_ACOSH},
    {"Atanh", U_ATANH}, {"Celu", U_CELU}, {"Selu", U_SELU}, {"Softsign", U_SOFTSIGN},
    {"Mish", U_MISH}, {"Gelu", U_GELU}, {"Swish", U_SWISH},
    {"ThresholdedRelu", U_THRESHOLDEDRELU}, {"Shrink", U_SHRINK}, {"IsInf", U_ISINF},
    {"BitwiseNot", U_BITNOT},
};

/* Sigmoid, Tanh and Erf dominate the activations of exported transformers and mobile nets;
 * libm's scalar calls cost 5-10 ns an element, so these use polynomial forms the vectorizer
 * turns into SIMD code, within 3 ulp of the true value (coefficients fitted on Chebyshev
 * nodes for this file). Exp and Log keep libm: users compare them bit for bit. */
static inline __attribute__((always_inline)) float dt_tanh_approx(float x)
{
    float a = fabsf(x);
    /* small |x|: x * P(x^2), free of the cancellation in 1 - 2 / (e^2x + 1) */
    float z = x * x;
    float p = 2.146922946e-03f;
    p = p * z - 8.181583351e-03f;
    p = p * z + 2.170223366e-02f;
    p = p * z - 5.394696744e-02f;
    p = p * z + 1.333320599e-01f;
    p = p * z - 3.333333064e-01f;
    p = p * z + 1.0f;
    float small = x * p;
    float big = 1.0f - 2.0f / (dt_exp_approx(2.0f * a) + 1.0f);
    big = x < 0.0f ? -big : big;
    return a < 0.625f ? small : big;
}

static inline __attribute__((always_inline)) float dt_erf_approx(float x)
{
    float a = fabsf(x);
    /* small |x|: x * P(x^2) */
    float z = x * x;
    float p = dt_erf_small_poly(z);
    float small = x * p;
    /* larger |x|: 1 - exp(Q(|x|)), Q fitting log(erfc(|x|)) on [0.92, 4]; erf is 1 beyond */
    float b = a < 4.0f ? a : 4.0f;
    float q = dt_erfc_log_poly(b);
    float big = 1.0f - dt_exp_approx(q);
    big = a >= 4.0f ? 1.0f : big;
    big = x < 0.0f ? -big : big;
    big = x != x ? x : big;
    return a < 0.921875f ? small : big;
}

typedef struct {
    int op;
    int dtype;
    const void *x;
    void *y;
    float alpha, beta, gamma;
} dt_unary_job;

static inline double dt_softplus_d(double x)
{
    return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

/* max(0, min(1, v)) with a NaN kept (fmin and fmax would return the bound): as the float
 * kernels' v < 0 ? 0 : v, v > 1 ? 1 : v, and onnxruntime's. */
static double dt_unit_clamp_d(double v) { return v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v; }

/* The float ops on one element, in double. */

static double dt_unary_d(const dt_unary_job *j, double x)
{
    const double alpha = j->alpha, beta = j->beta;
    switch (j->op) {
    case U_RELU: return x < 0.0 ? 0.0 : x;   /* a NaN stays NaN, as below */
    case U_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case U_TANH: return tanh(x);
    case U_ERF: return erf(x);
    case U_EXP: return exp(x);
    case U_LOG: return log(x);
    case U_SQRT: return sqrt(x);
    case U_NEG: return -x;
    case U_ABS: return fabs(x);
    case U_RECIP: return 1.0 / x;
    case U_FLOOR: return floor(x);
    case U_CEIL: return ceil(x);
    case U_HARDSIGMOID: return dt_unit_clamp_d(alpha * x + beta);
    case U_HARDSWISH: return x * dt_unit_clamp_d(x / 6.0 + 0.5);
    case U_LEAKYRELU: return x >= 0.0 ? x : alpha * x;
    case U_ELU: return x >= 0.0 ? x : alpha * expm1(x);
    case U_SOFTPLUS: return dt_softplus_d(x);
    case U_SIGN: return x > 0.0 ? 1.0 : x < 0.0 ? -1.0 : x; /* keeps 0 and NaN */
    case U_ROUND: return nearbyint(x);                      /* half to even */
    case U_SIN: return sin(x);
    case U_COS: return cos(x);
    case U_TAN: return tan(x);
    case U_ASIN: return asin(x);
    case U_ACOS: return acos(x);
    case U_ATAN: return atan(x);
    case U_SINH: return sinh(x);
    case U_COSH: return cosh(x);
    case U_ASINH: return asinh(x);
    case U_ACOSH: return acosh(x);
    case U_ATANH: return atanh(x);
    case U_CELU: return isnan(x) ? x : fmax(0.0, x) + fmin(0.0, alpha * expm1(x / alpha));
    case U_SELU: return x > 0.0 ? j->gamma * x : j->gamma * alpha * expm1(x);
    case U_SOFTSIGN: return x / (1.0 + fabs(x));
    case U_MISH: return x * tanh(dt_softplus_d(x));
    case U_GELU: return 0.5 * x * (1.0 + erf(x * M_SQRT1_2));
    case U_GELU_TANH:
        return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case U_SWISH: return x / (1.0 + exp(-alpha * x));
    case U_THRESHOLDEDRELU: return x > alpha ? x : 0.0;
    case U_SHRINK: return x < -alpha ? x + beta : x > alpha ? x - beta : 0.0;
    default: return NAN;
    }
}

/* Float ops in double for float32 (the ops past U_FIRST_SCALAR) and float64 (every op). */
static void dt_unary_scalar(const dt_unary_job *j, int64_t b, int64_t e)
{
    if (j->op == U_ISNAN || j->op == U_ISINF) {
        bool *o = (bool *)j->y;
        bool pos = j->alpha != 0.0f, neg = j->beta != 0.0f;
        for (int64_t i = b; i < e; i++) {
            double x = j->dtype == DUCTILE_FLOAT32 ? ((const float *)j->x)[i] : ((const double *)j->x)[i];
            o[i] = j->op == U_ISNAN ? isnan(x) : (isinf(x) && (x > 0 ? pos : neg));
        }
    } else if (j->dtype == DUCTILE_FLOAT32) {
        const float *x = (const float *)j->x;
        float *y = (float *)j->y;
        for (int64_t i = b; i < e; i++) y[i] = (float)dt_unary_d(j, x[i]);
    } else {
        const double *x = (const double *)j->x;
        double *y = (double *)j->y;
        for (int64_t i = b; i < e; i++) y[i] = dt_unary_d(j, x[i]);
    }
}

/* The polynomial activations are compute-bound: an AVX2 clone, picked at load time by CPU
 * feature, runs them about twice as fast as the baseline SSE2 build. The clones are x86-64
 * levels 4 and 3 (AVX-512 and AVX2, each with FMA) so Gelu's fused steps are instructions,
 * as in the FusedMatMul epilogue's clones (epilogue.c), which must give the same bits. */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
static void dt_unary_f32(const dt_unary_job *j, int64_t b, int64_t e)
{
    const float *restrict x = (const float *)j->x;
    float *restrict y = (float *)j->y;
    const float alpha = j->alpha, beta = j->beta;
    switch (j->op) {
    case U_RELU:
        for (int64_t i = b; i < e; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
        break;
    case U_SIGMOID:
        for (int64_t i = b; i < e; i++) y[i] = dt_sigmoid_approx(x[i]);
        break;
    case U_TANH:
        for (int64_t i = b; i < e; i++) y[i] = dt_tanh_approx(x[i]);
        break;
    case U_ERF:
        for (int64_t i = b; i < e; i++) y[i] = dt_erf_approx(x[i]);
        break;
    case U_GELU:
        for (int64_t i = b; i < e; i++) y[i] = dt_gelu_approx(x[i]);
        break;
    case U_EXP:
        for (int64_t i = b; i < e; i++) y[i] = expf(x[i]);
        break;
    case U_LOG:
        for (int64_t i = b; i < e; i++) y[i] = logf(x[i]);
        break;
    case U_SQRT:
        for (int64_t i = b; i < e; i++) y[i] = sqrtf(x[i]);
        break;
    case U_NEG:
        for (int64_t i = b; i < e; i++) y[i] = -x[i];
        break;
    case U_ABS:
        for (int64_t i = b; i < e; i++) y[i] = fabsf(x[i]);
        break;
    case U_RECIP:
        for (int64_t i = b; i < e; i++) y[i] = 1.0f / x[i];
        break;
    case U_FLOOR:
        for (int64_t i = b; i < e; i++) y[i] = floorf(x[i]);
        break;
    case U_CEIL:
        for (int64_t i = b; i < e; i++) y[i] = ceilf(x[i]);
        break;
    case U_HARDSIGMOID:
        for (int64_t i = b; i < e; i++) {
            float v = alpha * x[i] + beta;
            v = v < 0.0f ? 0.0f : v;
            y[i] = v > 1.0f ? 1.0f : v;
        }
        break;
    case U_HARDSWISH:
        for (int64_t i = b; i < e; i++) {
            float xi = x[i], v = xi * DT_HARDSWISH_ALPHA + DT_HARDSWISH_BETA;
            v = v < 0.0f ? 0.0f : v;
            v = v > 1.0f ? 1.0f : v;
            y[i] = xi * v;
        }
        break;
    case U_LEAKYRELU:
        for (int64_t i = b; i < e; i++) y[i] = x[i] >= 0.0f ? x[i] : alpha * x[i];
        break;
    case U_ELU:
        for (int64_t i = b; i < e; i++) y[i] = x[i] >= 0.0f ? x[i] : alpha * (expf(x[i]) - 1.0f);
        break;
    case U_SOFTPLUS:
        /* log(1 + e^x) without overflow: for x > 0 it equals x + log(1 + e^-x). */
        for (int64_t i = b; i < e; i++)
            y[i] = x[i] > 0.0f ? x[i] + log1pf(expf(-x[i])) : log1pf(expf(x[i]));
        break;
    case U_ISNAN: {
        bool *o = (bool *)j->y;
        for (int64_t i = b; i < e; i++) o[i] = isnan(x[i]);
        break;
    }
    default:
        break;
    }
}

/* UW: an unsigned type at least as wide as int, so that -MIN wraps as in onnxruntime. */
#define DT_UNARY_INT(T, UW, suffix, NEGATIVE)                                            \
    static void dt_unary_##suffix(const dt_unary_job *j, int64_t b, int64_t e)           \
    {                                                                                    \
        const T *x = (const T *)j->x;                                                    \
        T *y = (T *)j->y;                                                                \
        switch (j->op) {                                                                 \
        case U_RELU:                                                                     \
            for (int64_t i = b; i < e; i++) y[i] = NEGATIVE(x[i]) ? 0 : x[i];            \
            break;                                                                       \
        case U_NEG:                                                                      \
            for (int64_t i = b; i < e; i++) y[i] = (T)((UW)0 - (UW)x[i]);                \
            break;                                                                       \
        case U_ABS:                                                                      \
            for (int64_t i = b; i < e; i++)                                              \
                y[i] = NEGATIVE(x[i]) ? (T)((UW)0 - (UW)x[i]) : x[i];                    \
            break;                                                                       \
        case U_SIGN:                                                                     \
            for (int64_t i = b; i < e; i++)                                              \
                y[i] = NEGATIVE(x[i]) ? (T)-1 : x[i] != 0 ? (T)1 : (T)0;                 \
            break;                                                                       \
        case U_BITNOT:                                                                   \
            for (int64_t i = b; i < e; i++) y[i] = (T)~x[i];                             \
            break;                                                                       \
        default:                                                                         \
            break;                                                                       \
        }                                                                                \
    }
#define DT_SNEG(v) ((v) < 0)
#define DT_UNEG(v) ((void)(v), 0)
DT_UNARY_INT(int8_t, uint32_t, i8, DT_SNEG)
DT_UNARY_INT(int16_t, uint32_t, i16, DT_SNEG)
DT_UNARY_INT(int32_t, uint32_t, i32, DT_SNEG)
DT_UNARY_INT(int64_t, uint64_t, i64, DT_SNEG)
DT_UNARY_INT(uint8_t, uint32_t, u8, DT_UNEG)
DT_UNARY_INT(uint16_t, uint32_t, u16, DT_UNEG)
DT_UNARY_INT(uint32_t, uint32_t, u32, DT_UNEG)
DT_UNARY_INT(uint64_t, uint64_t, u64, DT_UNEG)

static void dt_unary_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_unary_job *j = arg;
    if (j->op == U_IDENTITY) {
        size_t es = ductile_dtype_size((ductile_dtype)j->dtype);
        memcpy((char *)j->y + (size_t)b * es, (const char *)j->x + (size_t)b * es,
               (size_t)(e - b) * es);
    } else if (j->op == U_NOT) {
        const bool *x = j->x;
        bool *y = j->y;
        for (int64_t i = b; i < e; i++) y[i] = !x[i];
    } else if (j->dtype == DUCTILE_FLOAT32 && j->op < U_FIRST_SCALAR) {
        dt_unary_f32(j, b, e);
    } else if (j->dtype == DUCTILE_FLOAT32 || j->dtype == DUCTILE_FLOAT64) {
        dt_unary_scalar(j, b, e);
    } else {
        switch (j->dtype) {
        case DUCTILE_INT8: dt_unary_i8(j, b, e); break;
        case DUCTILE_INT16: dt_unary_i16(j, b, e); break;
        case DUCTILE_INT32: dt_unary_i32(j, b, e); break;
        case DUCTILE_INT64: dt_unary_i64(j, b, e); break;
        case DUCTILE_UINT8: dt_unary_u8(j, b, e); break;
        case DUCTILE_UINT16: dt_unary_u16(j, b, e); break;
        case DUCTILE_UINT32: dt_unary_u32(j, b, e); break;
        default: dt_unary_u64(j, b, e); break;
        }
    }
}

/* The CPU unary kernels' dtypes. */
static bool dt_unary_supports(int op, int t)
{
    bool is_f = t == DUCTILE_FLOAT32 || t == DUCTILE_FLOAT64;
    bool int_op = op == U_RELU || op == U_NEG || op == U_ABS || op == U_SIGN || op == U_BITNOT;
    return op == U_IDENTITY || (op == U_NOT && t == DUCTILE_BOOL) ||
           (is_f && op != U_NOT && op != U_BITNOT) || (int_op && dt_ew_is_int(t));
}

/* A unary layer compiled: the op and its attributes; L only for float16/bfloat16, which
 * widen through dt_ew_via_f32_run into the scratch. */
typedef struct dt_unary_params {
    const ductile_layer *L;
    dt_unary_job job;           /* x, y and dtype set per run */
} dt_unary_params;

static ductile_status dt_unary_read(const ductile_layer *L, dt_unary_params *p)
{
    int op = -1;
    for (size_t i = 0; i < sizeof dt_unary_ops / sizeof dt_unary_ops[0]; i++)
        if (strcmp(dt_unary_ops[i].name, L->op_type) == 0) op = dt_unary_ops[i].op;
    if (op < 0) return dt_fail(DUCTILE_ERR_INTERNAL, "no unary CPU kernel for %s", L->op_type);
    dt_unary_job j = {op, 0, NULL, NULL, 0.0f, 0.0f, 0.0f};
    switch (op) {
    case U_HARDSIGMOID:
        j.alpha = dt_attr_float(L, "alpha", DT_HARDSIGMOID_ALPHA);
        j.beta = dt_attr_float(L, "beta", DT_HARDSIGMOID_BETA);
        break;
    case U_LEAKYRELU: j.alpha = dt_attr_float(L, "alpha", DT_LEAKYRELU_ALPHA); break;
    case U_ELU: case U_CELU: case U_THRESHOLDEDRELU: case U_SWISH:
        j.alpha = dt_attr_float(L, "alpha", 1.0f);
        break;
    case U_SELU:
        j.alpha = dt_attr_float(L, "alpha", 1.67326319217681884765625f);
        j.gamma = dt_attr_float(L, "gamma", 1.05070102214813232421875f);
        break;
    case U_SHRINK:
        j.alpha = dt_attr_float(L, "lambd", 0.5f);
        j.beta = dt_attr_float(L, "bias", 0.0f);
        break;
    case U_ISINF:
        j.alpha = (float)dt_attr_int(L, "detect_positive", 1);
        j.beta = (float)dt_attr_int(L, "detect_negative", 1);
        break;
    case U_GELU:
        if (strcmp(dt_attr_string(L, "approximate", "none"), "tanh") == 0) j.op = U_GELU_TANH;
        break;
    default: break;
    }
    p->L = L;
    p->job = j;
    return DUCTILE_OK;
}

static ductile_status dt_unary_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex);

static ductile_status dt_unary_exec(const dt_unary_params *p, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int t = in[0].dtype;
    if (p->job.op != U_IDENTITY && dt_ew_needs_f32(p->L, in, out))
        return dt_ew_via_f32_run(p->L, p, dt_unary_run, in, out, ex);
    if (!dt_unary_supports(p->job.op, t))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 has dtype %s; the CPU %s kernel does not support it",
                       ductile_dtype_name((ductile_dtype)t), p->L->op_type);
    dt_unary_job j = p->job;
    j.dtype = t;
    j.x = in[0].data;
    j.y = out[0].data;
    int op = j.op;
    bool costly = op == U_SIGMOID || op == U_TANH || op == U_ERF || op == U_GELU || op == U_EXP || op == U_LOG ||
                  op >= U_FIRST_SCALAR || t == DUCTILE_FLOAT64;
    dt_ew_parallel_grain(ex, dt_view_count(&out[0]), costly ? DT_EW_GRAIN_COSTLY : DT_EW_GRAIN, dt_unary_range, &j);
    return DUCTILE_OK;
}

ductile_status dt_cpu_ew_unary(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_unary_params p;
    DT_TRY(dt_unary_read(L, &p));
    return dt_unary_exec(&p, in, out, ex);
}

static ductile_status dt_unary_prepare(const ductile_layer *L, void **out)
{
    dt_unary_params p;
    DT_TRY(dt_unary_read(L, &p));
    /* Dtypes are settled at build: a dtype this kernel lacks fails the build, not a run. */
    int t = L->n_in > 0 && L->in[0] ? L->in[0]->dtype : 0;
    if (t && !dt_ew_is_half(t) && !dt_unary_supports(p.job.op, t))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 has dtype %s; the CPU %s kernel does not support it",
                       ductile_dtype_name((ductile_dtype)t), L->op_type);
    dt_unary_params *b = dt_malloc(sizeof *b);
    if (!b) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling a %s", L->op_type);
    *b = p;
    *out = b;
    return DUCTILE_OK;
}

static ductile_status dt_unary_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    return dt_unary_exec(params, in, out, ex);
}

/* Scratch: the float16/bfloat16 widening (widen.h), nothing else. */
static ductile_status dt_unary_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                       size_t *bytes)
{
    *bytes = 0;
    return dt_ew_via_f32_scratch(((const dt_unary_params *)params)->L, in, out, bytes);
}

const dt_kernel dt_cpu_ew_unary_kernel = {
    .prepare = dt_unary_prepare, .scratch = dt_unary_scratch, .run = dt_unary_run,
};

/* ---- Clip ---- */

typedef struct {
    int dtype;
    const void *x;
    void *y;
    float flo, fhi;
    unsigned char lo[8], hi[8];  /* bounds of other dtypes, in the input's type */
    bool has_lo, has_hi;
} dt_clip_job;

/* Written so a NaN input stays NaN, as in onnxruntime; lo > hi gives hi, as ONNX says. */
#define DT_CLIP_FN(T, sfx)                                                                  \
    static void dt_clip_##sfx(const dt_clip_job *j, int64_t b, int64_t e)                  \
    {                                                                                       \
        const T *x = (const T *)j->x;                                                       \
        T *y = (T *)j->y;                                                                   \
        T lo, hi;                                                                           \
        memcpy(&lo, j->lo, sizeof lo);                                                      \
        memcpy(&hi, j->hi, sizeof hi);                                                      \
        for (int64_t i = b; i < e; i++) {                                                   \
            T v = x[i];                                                                     \
            if (j->has_lo && v < lo) v = lo;                                                \
            if (j->has_hi && v > hi) v = hi;                                                \
            y[i] = v;                                                                       \
        }                                                                                   \
    }
DT_CLIP_FN(double, f64)
DT_CLIP_FN(int8_t, i8)
DT_CLIP_FN(int16_t, i16)
DT_CLIP_FN(int32_t, i32)
DT_CLIP_FN(int64_t, i64)
DT_CLIP_FN(uint8_t, u8)
DT_CLIP_FN(uint16_t, u16)
DT_CLIP_FN(uint32_t, u32)
DT_CLIP_FN(uint64_t, u64)

static void dt_clip_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_clip_job *j = arg;
    switch (j->dtype) {
    case DUCTILE_FLOAT32: {
        const float *x = j->x;
        float *y = j->y;
        const float lo = j->flo, hi = j->fhi;
        for (int64_t i = b; i < e; i++) {
            float v = x[i] < lo ? lo : x[i];
            y[i] = v > hi ? hi : v;
        }
        break;
    }
    case DUCTILE_FLOAT64: dt_clip_f64(j, b, e); break;
    case DUCTILE_INT8: dt_clip_i8(j, b, e); break;
    case DUCTILE_INT16: dt_clip_i16(j, b, e); break;
    case DUCTILE_INT32: dt_clip_i32(j, b, e); break;
    case DUCTILE_INT64: dt_clip_i64(j, b, e); break;
    case DUCTILE_UINT8: dt_clip_u8(j, b, e); break;
    case DUCTILE_UINT16: dt_clip_u16(j, b, e); break;
    case DUCTILE_UINT32: dt_clip_u32(j, b, e); break;
    default: dt_clip_u64(j, b, e); break;
    }
}

/* A Clip compiled: before opset 11 the bounds are attributes (float32 only). */
typedef struct dt_clip_params {
    const ductile_layer *L;     /* float16/bfloat16 only (dt_ew_via_f32) */
    bool attrs;
    float flo, fhi;
} dt_clip_params;

static void dt_clip_read(const ductile_layer *L, dt_clip_params *p)
{
    p->L = L;
    p->attrs = L->opset < 11;
    p->flo = p->attrs ? dt_attr_float(L, "min", DT_CLIP6_MIN) : DT_CLIP_NO_MIN;
    p->fhi = p->attrs ? dt_attr_float(L, "max", DT_CLIP6_MAX) : DT_CLIP_NO_MAX;
}

static ductile_status dt_clip_refuse_old(int t)
{
    return dt_fail(DUCTILE_ERR_UNSUPPORTED, "Clip before opset 11 supports float32 here, not %s",
                   ductile_dtype_name((ductile_dtype)t));
}

/* The bound in input i when given (an omitted or empty input keeps the default). */
static bool dt_clip_bound(const dt_view *in, int i)
{
    return in[i].rank >= 0 && in[i].data && dt_view_count(&in[i]) > 0;
}

static ductile_status dt_clip_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex);

static ductile_status dt_clip_exec(const dt_clip_params *p, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int t = in[0].dtype;
    if (dt_ew_needs_f32(p->L, in, out))
        return dt_ew_via_f32_run(p->L, p, dt_clip_run, in, out, ex);
    dt_clip_job j;
    memset(&j, 0, sizeof j);
    j.dtype = t;
    j.x = in[0].data;
    j.y = out[0].data;
    j.flo = p->flo;
    j.fhi = p->fhi;
    if (t != DUCTILE_FLOAT32 && t != DUCTILE_FLOAT64 && !dt_ew_is_int(t))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 has dtype %s; the CPU Clip kernel supports the float and integer types",
                       ductile_dtype_name((ductile_dtype)t));
    if (p->attrs) {
        if (t != DUCTILE_FLOAT32) return dt_clip_refuse_old(t);
    } else {
        size_t es = ductile_dtype_size((ductile_dtype)t);
        for (int i = 1; i <= 2 && i < p->L->n_in; i++) {
            if (!dt_clip_bound(in, i)) continue;
            if (in[i].dtype != t)
                return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) has dtype %s; expected %s like input 0",
                               i, i == 1 ? "min" : "max", ductile_dtype_name((ductile_dtype)in[i].dtype),
                               ductile_dtype_name((ductile_dtype)t));
            if (t == DUCTILE_FLOAT32) {
                float v = *(const float *)in[i].data;
                if (i == 1) j.flo = v;
                else j.fhi = v;
            } else {
                memcpy(i == 1 ? j.lo : j.hi, in[i].data, es);
                if (i == 1) j.has_lo = true;
                else j.has_hi = true;
            }
        }
    }
    dt_ew_parallel(ex, dt_view_count(&out[0]), dt_clip_range, &j);
    return DUCTILE_OK;
}

ductile_status dt_cpu_ew_clip(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_clip_params p;
    dt_clip_read(L, &p);
    return dt_clip_exec(&p, in, out, ex);
}

static ductile_status dt_clip_prepare(const ductile_layer *L, void **out)
{
    dt_clip_params p;
    dt_clip_read(L, &p);
    /* Dtypes are settled at build: refused there, naming the node, not on the first run. */
    int t = L->n_in > 0 && L->in[0] ? L->in[0]->dtype : 0;
    if (p.attrs && t && t != DUCTILE_FLOAT32 && !dt_ew_is_half(t)) return dt_clip_refuse_old(t);
    dt_clip_params *b = dt_malloc(sizeof *b);
    if (!b) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling a Clip");
    *b = p;
    *out = b;
    return DUCTILE_OK;
}

static ductile_status dt_clip_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    return dt_clip_exec(params, in, out, ex);
}

static ductile_status dt_clip_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                      size_t *bytes)
{
    *bytes = 0;
    return dt_ew_via_f32_scratch(((const dt_clip_params *)params)->L, in, out, bytes);
}

const dt_kernel dt_cpu_ew_clip_kernel = {.prepare = dt_clip_prepare, .scratch = dt_clip_scratch, .run = dt_clip_run};

/* ---- Dropout ---- */

/* Inference (training_mode false or ratio 0): the output is the input and the mask all true.
 * Training mode keeps an element where a uniform draw in [0, 1) is >= ratio and scales it by
 * 1 / (1 - ratio), drawn in order by MT19937 seeded as numpy's RandomState(seed) (random.h):
 * with the 'seed' attribute (its low 32 bits) the mask is the same on every run and equal to
 * ONNX's reference; without it each run draws a fresh seed. */
/* Dropout compiled: before opset 12 the ratio is the attribute, read once; from 12 it is
 * input 1, read (with training_mode) on each run since either may be a runtime input. */
typedef struct dt_dropout_params {
    bool ratio_attr;    /* opset < 12 */
    double ratio;       /* the attribute's value, or 0.5 (the default) */
    int n_in, n_out;
    bool has_seed;
    uint32_t seed;
} dt_dropout_params;

static ductile_status dt_dropout_prepare(const ductile_layer *L, void **out)
{
    dt_dropout_params p = {.ratio_attr = L->opset < 12, .ratio = 0.5, .n_in = L->n_in, .n_out = L->n_out,
                           .has_seed = dt_attr_find(L, "seed") != NULL,
                           .seed = (uint32_t)dt_attr_int(L, "seed", 0)};
    if (p.ratio_attr) p.ratio = dt_attr_float(L, "ratio", 0.5f);
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static void dt_dropout_store(dt_view *y, int64_t i, double v)
{
    switch (y->dtype) {
    case DUCTILE_FLOAT64: ((double *)y->data)[i] = v; break;
    case DUCTILE_FLOAT16: ((uint16_t *)y->data)[i] = dt_float_to_half((float)v); break;
    case DUCTILE_BFLOAT16: ((uint16_t *)y->data)[i] = dt_float_to_bf16((float)v); break;
    default: ((float *)y->data)[i] = (float)v; break;
    }
}

/* Training mode: y = mask * x * scale, with scale computed in the ratio's precision as the
 * reference does (a float32 ratio gives a float32 scale). */
static ductile_status dt_dropout_train(const dt_dropout_params *p, const dt_view *in, dt_view *out, double ratio,
                                       bool ratio_f32)
{
    if (!(ratio >= 0.0 && ratio < 1.0))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "ratio %g is outside [0, 1) in training mode", ratio);
    double scale = ratio_f32 ? (double)(1.0f / (1.0f - (float)ratio)) : 1.0 / (1.0 - ratio);
    dt_mt19937 mt;
    dt_mt_seed(&mt, p->has_seed ? p->seed : dt_random_seed());
    int64_t n = dt_view_count(&out[0]);
    bool *mask = p->n_out > 1 && out[1].data ? out[1].data : NULL;
    bool single = out[0].dtype != DUCTILE_FLOAT64;
    for (int64_t i = 0; i < n; i++) {
        bool keep = dt_mt_double(&mt) >= ratio;
        double x = dt_ew_get_f64(&in[0], i);
        double y = !keep ? 0.0 * x : single ? (double)((float)x * (float)scale) : x * scale;
        dt_dropout_store(&out[0], i, y);
        if (mask) mask[i] = keep;
    }
    return DUCTILE_OK;
}

static ductile_status dt_dropout_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_dropout_params *p = params;
    bool training = p->n_in > 2 && in[2].rank >= 0 && in[2].data && dt_view_count(&in[2]) > 0 &&
                    dt_ew_get_i64(&in[2], 0) != 0;
    double ratio = p->ratio;
    bool ratio_f32 = true;
    if (!p->ratio_attr && p->n_in > 1 && in[1].rank >= 0 && in[1].data && dt_view_count(&in[1]) > 0) {
        ratio = dt_ew_get_f64(&in[1], 0);
        ratio_f32 = in[1].dtype != DUCTILE_FLOAT64;
    }
    if (training && ratio != 0.0) return dt_dropout_train(p, in, out, ratio, ratio_f32);
    int64_t n = dt_view_count(&out[0]);
    /* an empty tensor may have no bytes at all (NULL data) */
    if (n > 0) memcpy(out[0].data, in[0].data, (size_t)n * ductile_dtype_size((ductile_dtype)out[0].dtype));
    if (p->n_out > 1 && out[1].data && dt_view_count(&out[1]) > 0)
        memset(out[1].data, 1, (size_t)dt_view_count(&out[1]));
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_ew_dropout_kernel = {.prepare = dt_dropout_prepare, .run = dt_dropout_run};
