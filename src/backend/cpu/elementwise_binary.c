/* Binary elementwise kernels with numpy broadcasting (arithmetic, comparisons, logic) and the
 * variadic Sum, Mean, Max, Min built on them. One small function per (op, dtype) keeps each
 * inner loop free of dispatch so that gcc vectorizes it. */
/* The build's -O2 vectorizes only loops whose trip count and aliasing are known; these
 * loops need the full vectorizer to run at memory speed. */
#pragma GCC optimize("O3", "no-trapping-math")

#include "backend/cpu/elementwise_impl.h"
#include "core/status.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The three shapes of a stretch: both operands advance, or one of them is broadcast. The
 * output may be operand a itself (variadic accumulation), which ivdep allows: each element is
 * read before it is written, at the same index. */
#define DT_BIN_FN(name, T, TO, EXPR)                                                        \
    static void name(const void *ctx, char *const p[], const int st[], int64_t n)          \
    {                                                                                       \
        TO *o = (TO *)p[0];                                                                 \
        const T *a = (const T *)p[1], *b = (const T *)p[2];                                 \
        if (st[1] && st[2]) {                                                               \
            _Pragma("GCC ivdep") for (int64_t i = 0; i < n; i++) {                          \
                const T x = a[i], y = b[i];                                                 \
                o[i] = (EXPR);                                                              \
            }                                                                               \
        } else if (st[1]) {                                                                 \
            const T y = b[0];                                                               \
            _Pragma("GCC ivdep") for (int64_t i = 0; i < n; i++) {                          \
                const T x = a[i];                                                           \
                o[i] = (EXPR);                                                              \
            }                                                                               \
        } else if (st[2]) {                                                                 \
            const T x = a[0];                                                               \
            _Pragma("GCC ivdep") for (int64_t i = 0; i < n; i++) {                          \
                const T y = b[i];                                                           \
                o[i] = (EXPR);                                                              \
            }                                                                               \
        } else {                                                                            \
            const T x = a[0], y = b[0];                                                     \
            const TO v = (EXPR);                                                            \
            for (int64_t i = 0; i < n; i++) o[i] = v;                                       \
        }                                                                                   \
    }

/* Integer division truncates toward zero like onnxruntime; zero divisors are refused before
 * the kernel runs, and MIN / -1 wraps instead of trapping. */
static inline int64_t dt_idiv64(int64_t x, int64_t y)
{
    return y == -1 ? (int64_t)(0 - (uint64_t)x) : x / y;
}
static inline int32_t dt_idiv32(int32_t x, int32_t y)
{
    return y == -1 ? (int32_t)(0 - (uint32_t)x) : x / y;
}

/* Integer power by squaring, wrapping on overflow. A negative exponent gives 1/x^-y truncated:
 * 0 unless |x| == 1; 0^-y is the type's minimum, as onnxruntime's cast of inf gives. */
static inline uint64_t dt_ipow_u(uint64_t x, int64_t y)
{
    uint64_t r = 1;
    while (y > 0) {
        if (y & 1) r *= x;
        x *= x;
        y >>= 1;
    }
    return r;
}
static inline int64_t dt_ipow64(int64_t x, int64_t y)
{
    if (y >= 0) return (int64_t)dt_ipow_u((uint64_t)x, y);
    if (x == 1) return 1;
    if (x == -1) return (y & 1) ? -1 : 1;
    return x == 0 ? INT64_MIN : 0;
}
static inline int32_t dt_ipow32(int32_t x, int32_t y)
{
    if (y >= 0) return (int32_t)(uint32_t)dt_ipow_u((uint64_t)(int64_t)x, y);
    if (x == 1) return 1;
    if (x == -1) return (y & 1) ? -1 : 1;
    return x == 0 ? INT32_MIN : 0;
}

/* Wrapping integer arithmetic: signed overflow is undefined in C, not in ONNX. */
#define WADD(UT, T) (T)((UT)x + (UT)y)
#define WSUB(UT, T) (T)((UT)x - (UT)y)
#define WMUL(UT, T) (T)((UT)x * (UT)y)

#define DT_BIN_FLOAT(T, sfx, POWF)                                                           \
    DT_BIN_FN(add_##sfx, T, T, x + y)                                                        \
    DT_BIN_FN(sub_##sfx, T, T, x - y)                                                        \
    DT_BIN_FN(mul_##sfx, T, T, x * y)                                                        \
    DT_BIN_FN(div_##sfx, T, T, x / y)                                                        \
    DT_BIN_FN(pow_##sfx, T, T, POWF(x, y))                                                   \
    DT_BIN_FN(max_##sfx, T, T, (x > y || x != x) ? x : y)                                    \
    DT_BIN_FN(min_##sfx, T, T, (x < y || x != x) ? x : y)
DT_BIN_FLOAT(float, f32, powf)
DT_BIN_FLOAT(double, f64, pow)
DT_BIN_FN(sq_f32, float, float, ((void)y, x * x))
DT_BIN_FN(sq_f64, double, double, ((void)y, x * x))

#define DT_BIN_INT(T, UT, sfx, IDIV, IPOW)                                                   \
    DT_BIN_FN(add_##sfx, T, T, WADD(UT, T))                                                  \
    DT_BIN_FN(sub_##sfx, T, T, WSUB(UT, T))                                                  \
    DT_BIN_FN(mul_##sfx, T, T, WMUL(UT, T))                                                  \
    DT_BIN_FN(div_##sfx, T, T, IDIV(x, y))                                                   \
    DT_BIN_FN(pow_##sfx, T, T, IPOW(x, y))                                                   \
    DT_BIN_FN(max_##sfx, T, T, x > y ? x : y)                                                \
    DT_BIN_FN(min_##sfx, T, T, x < y ? x : y)
DT_BIN_INT(int32_t, uint32_t, i32, dt_idiv32, dt_ipow32)
DT_BIN_INT(int64_t, uint64_t, i64, dt_idiv64, dt_ipow64)

#define DT_BIN_CMP(T, sfx)                                                                   \
    DT_BIN_FN(eq_##sfx, T, bool, x == y)                                                     \
    DT_BIN_FN(lt_##sfx, T, bool, x < y)                                                      \
    DT_BIN_FN(le_##sfx, T, bool, x <= y)                                                     \
    DT_BIN_FN(gt_##sfx, T, bool, x > y)                                                      \
    DT_BIN_FN(ge_##sfx, T, bool, x >= y)
DT_BIN_CMP(float, f32)
DT_BIN_CMP(double, f64)
DT_BIN_CMP(int32_t, i32)
DT_BIN_CMP(int64_t, i64)

/* Bools are read as bytes so that a caller's nonzero byte other than 1 still means true. */
DT_BIN_FN(eq_b, uint8_t, bool, (x != 0) == (y != 0))
DT_BIN_FN(and_b, uint8_t, bool, (x != 0) & (y != 0))
DT_BIN_FN(or_b, uint8_t, bool, (x != 0) | (y != 0))
DT_BIN_FN(xor_b, uint8_t, bool, (x != 0) != (y != 0))

#define DT_PICK(sfx)                                                                         \
    switch (op) {                                                                            \
    case DT_BIN_ADD: return add_##sfx;                                                       \
    case DT_BIN_SUB: return sub_##sfx;                                                       \
    case DT_BIN_MUL: return mul_##sfx;                                                       \
    case DT_BIN_DIV: return div_##sfx;                                                       \
    case DT_BIN_POW: return pow_##sfx;                                                       \
    case DT_BIN_MAX: return max_##sfx;                                                       \
    case DT_BIN_MIN: return min_##sfx;                                                       \
    case DT_BIN_EQ: return eq_##sfx;                                                         \
    case DT_BIN_LT: return lt_##sfx;                                                         \
    case DT_BIN_LE: return le_##sfx;                                                         \
    case DT_BIN_GT: return gt_##sfx;                                                         \
    case DT_BIN_GE: return ge_##sfx;                                                         \
    default: return NULL;                                                                    \
    }

static dt_ew_run_fn dt_bin_pick(int op, int dtype)
{
    switch (dtype) {
    case DUCTILE_FLOAT32: DT_PICK(f32)
    case DUCTILE_FLOAT64: DT_PICK(f64)
    case DUCTILE_INT32: DT_PICK(i32)
    case DUCTILE_INT64: DT_PICK(i64)
    case DUCTILE_BOOL:
        switch (op) {
        case DT_BIN_EQ: return eq_b;
        case DT_BIN_AND: return and_b;
        case DT_BIN_OR: return or_b;
        case DT_BIN_XOR: return xor_b;
        default: return NULL;
        }
    default: return NULL;
    }
}

/* A Pow exponent converted to the base's dtype (ONNX lets its type differ). */
static ductile_status dt_pow_exponent(const dt_view *b, int dtype, dt_view *conv, void **buf)
{
    bool float_base = dtype == DUCTILE_FLOAT32 || dtype == DUCTILE_FLOAT64;
    if (!float_base && (b->dtype == DUCTILE_FLOAT32 || b->dtype == DUCTILE_FLOAT64))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "Pow of an integer base needs an integer exponent, got %s",
                       ductile_dtype_name((ductile_dtype)b->dtype));
    int64_t n = dt_view_count(b);
    size_t es = ductile_dtype_size((ductile_dtype)dtype);
    *buf = malloc((size_t)(n ? n : 1) * es);
    if (!*buf) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory converting the Pow exponent");
    *conv = *b;
    conv->dtype = dtype;
    conv->data = *buf;
    for (int64_t i = 0; i < n; i++) {
        double v;
        switch (b->dtype) {
        case DUCTILE_FLOAT32: v = ((const float *)b->data)[i]; break;
        case DUCTILE_FLOAT64: v = ((const double *)b->data)[i]; break;
        default: v = (double)dt_view_int(b, i); break;
        }
        switch (dtype) {
        case DUCTILE_FLOAT32: ((float *)*buf)[i] = (float)v; break;
        case DUCTILE_FLOAT64: ((double *)*buf)[i] = v; break;
        case DUCTILE_INT32: {
            int64_t e = dt_view_int(b, i);
            /* Clamped, keeping the parity that decides the sign of (-1)^e. */
            if (e > INT32_MAX) e = INT32_MAX - 1 + (e & 1);
            if (e < INT32_MIN) e = INT32_MIN + (e & 1);
            ((int32_t *)*buf)[i] = (int32_t)e;
            break;
        }
        default: ((int64_t *)*buf)[i] = dt_view_int(b, i); break;
        }
    }
    return DUCTILE_OK;
}

static bool dt_is_scalar_value(const dt_view *b, double want)
{
    if (dt_view_count(b) != 1) return false;
    if (b->dtype == DUCTILE_FLOAT32) return *(const float *)b->data == (float)want;
    if (b->dtype == DUCTILE_FLOAT64) return *(const double *)b->data == want;
    return false;
}

ductile_status dt_cpu_ew_apply_binary(int op, const dt_view *a, const dt_view *b, dt_view *out,
                                      dt_exec *ex)
{
    dt_ew_run_fn fn = dt_bin_pick(op, a->dtype);
    if (!fn)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the CPU kernel does not support dtype %s for this op",
                       ductile_dtype_name((ductile_dtype)a->dtype));
    if (dt_view_count(out) == 0) return DUCTILE_OK;
    dt_view conv;
    void *buf = NULL;
    if (op == DT_BIN_POW && b->dtype != a->dtype) {
        DT_TRY(dt_pow_exponent(b, a->dtype, &conv, &buf));
        b = &conv;
    }
    /* x^2 is the common Pow in exported graphs (variance); a multiply is exact and fast. */
    if (op == DT_BIN_POW && dt_is_scalar_value(b, 2.0))
        fn = a->dtype == DUCTILE_FLOAT32 ? sq_f32 : sq_f64;
    const dt_view *ins[2] = {a, b};
    dt_ew_iter it;
    dt_ew_iter_init(&it, out, ins, 2);
    dt_ew_iter_run(&it, ex, fn, NULL);
    free(buf);
    return DUCTILE_OK;
}

static const struct { const char *name; int op; } dt_binary_ops[] = {
    {"Add", DT_BIN_ADD}, {"Sub", DT_BIN_SUB}, {"Mul", DT_BIN_MUL}, {"Div", DT_BIN_DIV},
    {"Pow", DT_BIN_POW}, {"Max", DT_BIN_MAX}, {"Min", DT_BIN_MIN}, {"Sum", DT_BIN_ADD},
    {"Mean", DT_BIN_ADD}, {"Equal", DT_BIN_EQ}, {"Less", DT_BIN_LT},
    {"LessOrEqual", DT_BIN_LE}, {"Greater", DT_BIN_GT}, {"GreaterOrEqual", DT_BIN_GE},
    {"And", DT_BIN_AND}, {"Or", DT_BIN_OR}, {"Xor", DT_BIN_XOR},
};

static int dt_binary_op(const char *op_type)
{
    for (size_t i = 0; i < sizeof dt_binary_ops / sizeof dt_binary_ops[0]; i++)
        if (strcmp(dt_binary_ops[i].name, op_type) == 0) return dt_binary_ops[i].op;
    return -1;
}

/* Integer division by zero would trap the process; it is refused as bad input instead. */
static ductile_status dt_check_divisor(const ductile_layer *L, const dt_view *b)
{
    if (b->dtype != DUCTILE_INT32 && b->dtype != DUCTILE_INT64) return DUCTILE_OK;
    int64_t n = dt_view_count(b);
    for (int64_t i = 0; i < n; i++)
        if (dt_view_int(b, i) == 0)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "input 1 ('%s') holds 0 at element %lld: integer division by zero",
                           L->n_in > 1 && L->in[1] ? L->in[1]->name : "", (long long)i);
    return DUCTILE_OK;
}

ductile_status dt_cpu_ew_binary(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int op = dt_binary_op(L->op_type);
    if (op < 0) return dt_fail(DUCTILE_ERR_INTERNAL, "no binary CPU kernel for %s", L->op_type);
    if (op == DT_BIN_DIV) DT_TRY(dt_check_divisor(L, &in[1]));
    return dt_cpu_ew_apply_binary(op, &in[0], &in[1], &out[0], ex);
}

typedef struct {
    void *y;
    int dtype;
    double scale;
} dt_scale_job;

static void dt_scale_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_scale_job *j = arg;
    if (j->dtype == DUCTILE_FLOAT32) {
        float *y = j->y;
        const float s = (float)j->scale;
        for (int64_t i = b; i < e; i++) y[i] *= s;
    } else {
        double *y = j->y;
        for (int64_t i = b; i < e; i++) y[i] *= j->scale;
    }
}

ductile_status dt_cpu_ew_variadic(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int op = dt_binary_op(L->op_type);
    if (op < 0) return dt_fail(DUCTILE_ERR_INTERNAL, "no variadic CPU kernel for %s", L->op_type);
    if (L->n_in < 1) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "expected at least 1 input, got 0");
    if (L->n_in == 1) {
        size_t bytes = (size_t)dt_view_count(&out[0]) * ductile_dtype_size((ductile_dtype)out[0].dtype);
        memcpy(out[0].data, in[0].data, bytes);
        return DUCTILE_OK;
    }
    DT_TRY(dt_cpu_ew_apply_binary(op, &in[0], &in[1], &out[0], ex));
    for (int k = 2; k < L->n_in; k++) DT_TRY(dt_cpu_ew_apply_binary(op, &out[0], &in[k], &out[0], ex));
    if (strcmp(L->op_type, "Mean") == 0) {
        if (out[0].dtype != DUCTILE_FLOAT32 && out[0].dtype != DUCTILE_FLOAT64)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "Mean supports float32 and float64, not %s",
                           ductile_dtype_name((ductile_dtype)out[0].dtype));
        dt_scale_job j = {out[0].data, out[0].dtype, 1.0 / L->n_in};
        dt_ew_parallel(ex, dt_view_count(&out[0]), dt_scale_range, &j);
    }
    return DUCTILE_OK;
}
