/* Binary elementwise kernels with numpy broadcasting (arithmetic, comparisons, logic) and the
 * variadic Sum, Mean, Max, Min built on them. One small function per (op, dtype) keeps each
 * inner loop free of dispatch so that gcc vectorizes it. */
/* The build's -O2 vectorizes only loops whose trip count and aliasing are known; these
 * loops need the full vectorizer to run at memory speed. */
#pragma GCC optimize("O3", "no-trapping-math")

#include "backend/cpu/elementwise_impl.h"
#include "core/alloc.h"
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
#define SDIV(UW, T) (y == -1 ? (T)((UW)0 - (UW)x) : (T)(x / y))
/* numpy's mod takes the sign of the divisor, C's % (Mod with fmod=1) that of the dividend. */
#define SFMOD(T) (y == -1 ? (T)0 : (T)(x % y))
#define SMOD(T) dt_smod_##T(x, y)
#define DT_SMOD(T)                                                                           \
    static inline T dt_smod_##T(T x, T y)                                                    \
    {                                                                                        \
        T r = y == -1 ? (T)0 : (T)(x % y);                                                   \
        return (r != 0 && ((r < 0) != (y < 0))) ? (T)(r + y) : r;                            \
    }
DT_SMOD(int8_t)
DT_SMOD(int16_t)
DT_SMOD(int32_t)
DT_SMOD(int64_t)

static inline float dt_pymodf(float x, float y)
{
    float r = fmodf(x, y);
    if (r != 0.0f) return ((r < 0.0f) != (y < 0.0f)) ? r + y : r;
    return copysignf(0.0f, y);
}
static inline double dt_pymod(double x, double y)
{
    double r = fmod(x, y);
    if (r != 0.0) return ((r < 0.0) != (y < 0.0)) ? r + y : r;
    return copysign(0.0, y);
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

/* BitShift by a count outside [0, bits) gives 0 (and -1 for a negative value shifted right),
 * as ONNX's reference does; C leaves those shifts undefined. */
static inline bool dt_shift_ok(int64_t y, int bits) { return y >= 0 && y < bits; }
#define SHL(UW, T) (dt_shift_ok((int64_t)y, (int)sizeof(T) * 8) ? (T)((UW)x << y) : (T)0)
#define SHR_S(T) (dt_shift_ok((int64_t)y, (int)sizeof(T) * 8) ? (T)(x >> y) : (T)(x < 0 ? -1 : 0))
#define SHR_U(T) (dt_shift_ok((int64_t)y, (int)sizeof(T) * 8) ? (T)(x >> y) : (T)0)

/* Wrapping integer arithmetic: signed overflow is undefined in C, not in ONNX. UW is an
 * unsigned type at least as wide as int, so that narrow operands do not promote to int. */
#define WADD(UW, T) (T)((UW)x + (UW)y)
#define WSUB(UW, T) (T)((UW)x - (UW)y)
#define WMUL(UW, T) (T)((UW)x * (UW)y)

#define DT_BIN_FLOAT(T, sfx, POWF, FMODF, PYMOD)                                             \
    DT_BIN_FN(add_##sfx, T, T, x + y)                                                        \
    DT_BIN_FN(sub_##sfx, T, T, x - y)                                                        \
    DT_BIN_FN(mul_##sfx, T, T, x * y)                                                        \
    DT_BIN_FN(div_##sfx, T, T, x / y)                                                        \
    DT_BIN_FN(pow_##sfx, T, T, POWF(x, y))                                                   \
    DT_BIN_FN(max_##sfx, T, T, (x > y || x != x) ? x : y)                                    \
    DT_BIN_FN(min_##sfx, T, T, (x < y || x != x) ? x : y)                                    \
    DT_BIN_FN(mod_##sfx, T, T, PYMOD(x, y))                                                  \
    DT_BIN_FN(fmod_##sfx, T, T, FMODF(x, y))                                                 \
    DT_BIN_FN(prelu_##sfx, T, T, x < 0 ? x * y : x)
DT_BIN_FLOAT(float, f32, powf, fmodf, dt_pymodf)
DT_BIN_FLOAT(double, f64, pow, fmod, dt_pymod)
DT_BIN_FN(sq_f32, float, float, ((void)y, x * x))
DT_BIN_FN(sq_f64, double, double, ((void)y, x * x))

#define DT_BIN_INT_COMMON(T, UW, sfx)                                                        \
    DT_BIN_FN(add_##sfx, T, T, WADD(UW, T))                                                  \
    DT_BIN_FN(sub_##sfx, T, T, WSUB(UW, T))                                                  \
    DT_BIN_FN(mul_##sfx, T, T, WMUL(UW, T))                                                  \
    DT_BIN_FN(pow_##sfx, T, T, (T)dt_ipow64((int64_t)x, (int64_t)y))                        \
    DT_BIN_FN(max_##sfx, T, T, x > y ? x : y)                                                \
    DT_BIN_FN(min_##sfx, T, T, x < y ? x : y)                                                \
    DT_BIN_FN(shl_##sfx, T, T, SHL(UW, T))                                                   \
    DT_BIN_FN(bitand_##sfx, T, T, (T)(x & y))                                                \
    DT_BIN_FN(bitor_##sfx, T, T, (T)(x | y))                                                 \
    DT_BIN_FN(bitxor_##sfx, T, T, (T)(x ^ y))
#define DT_BIN_SINT(T, UW, sfx)                                                              \
    DT_BIN_INT_COMMON(T, UW, sfx)                                                            \
    DT_BIN_FN(div_##sfx, T, T, SDIV(UW, T))                                                  \
    DT_BIN_FN(mod_##sfx, T, T, SMOD(T))                                                      \
    DT_BIN_FN(fmod_##sfx, T, T, SFMOD(T))                                                    \
    DT_BIN_FN(shr_##sfx, T, T, SHR_S(T))                                                     \
    DT_BIN_FN(prelu_##sfx, T, T, x < 0 ? WMUL(UW, T) : x)
#define DT_BIN_UINT(T, UW, sfx)                                                              \
    DT_BIN_INT_COMMON(T, UW, sfx)                                                            \
    DT_BIN_FN(div_##sfx, T, T, (T)(x / y))                                                   \
    DT_BIN_FN(mod_##sfx, T, T, (T)(x % y))                                                   \
    DT_BIN_FN(shr_##sfx, T, T, SHR_U(T))                                                     \
    DT_BIN_FN(prelu_##sfx, T, T, ((void)y, x))
DT_BIN_SINT(int8_t, uint32_t, i8)
DT_BIN_SINT(int16_t, uint32_t, i16)
DT_BIN_SINT(int32_t, uint32_t, i32)
DT_BIN_SINT(int64_t, uint64_t, i64)
DT_BIN_UINT(uint8_t, uint32_t, u8)
DT_BIN_UINT(uint16_t, uint32_t, u16)
DT_BIN_UINT(uint32_t, uint32_t, u32)
DT_BIN_UINT(uint64_t, uint64_t, u64)
/* int32 keeps its own power: exponents beyond int32 never reach it (same dtype). */
DT_BIN_FN(pow32_i32, int32_t, int32_t, dt_ipow32(x, y))

#define DT_BIN_CMP(T, sfx)                                                                   \
    DT_BIN_FN(eq_##sfx, T, bool, x == y)                                                     \
    DT_BIN_FN(lt_##sfx, T, bool, x < y)                                                      \
    DT_BIN_FN(le_##sfx, T, bool, x <= y)                                                     \
    DT_BIN_FN(gt_##sfx, T, bool, x > y)                                                      \
    DT_BIN_FN(ge_##sfx, T, bool, x >= y)
DT_BIN_CMP(float, f32)
DT_BIN_CMP(double, f64)
DT_BIN_CMP(int8_t, i8)
DT_BIN_CMP(int16_t, i16)
DT_BIN_CMP(int32_t, i32)
DT_BIN_CMP(int64_t, i64)
DT_BIN_CMP(uint8_t, u8)
DT_BIN_CMP(uint16_t, u16)
DT_BIN_CMP(uint32_t, u32)
DT_BIN_CMP(uint64_t, u64)

/* Bools are read as bytes so that a caller's nonzero byte other than 1 still means true. */
DT_BIN_FN(eq_b, uint8_t, bool, (x != 0) == (y != 0))
DT_BIN_FN(and_b, uint8_t, bool, (x != 0) & (y != 0))
DT_BIN_FN(or_b, uint8_t, bool, (x != 0) | (y != 0))
DT_BIN_FN(xor_b, uint8_t, bool, (x != 0) != (y != 0))

#define DT_PICK_COMMON(sfx)                                                                  \
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
    case DT_BIN_MOD: return mod_##sfx;                                                       \
    case DT_BIN_PRELU: return prelu_##sfx;
#define DT_PICK_FLOAT(sfx)                                                                   \
    switch (op) {                                                                            \
    DT_PICK_COMMON(sfx)                                                                      \
    case DT_BIN_FMOD: return fmod_##sfx;                                                     \
    default: return NULL;                                                                    \
    }
#define DT_PICK_INT(sfx, FMOD)                                                               \
    switch (op) {                                                                            \
    DT_PICK_COMMON(sfx)                                                                      \
    case DT_BIN_FMOD: return FMOD;                                                           \
    case DT_BIN_SHL: return shl_##sfx;                                                       \
    case DT_BIN_SHR: return shr_##sfx;                                                       \
    case DT_BIN_BITAND: return bitand_##sfx;                                                 \
    case DT_BIN_BITOR: return bitor_##sfx;                                                   \
    case DT_BIN_BITXOR: return bitxor_##sfx;                                                 \
    default: return NULL;                                                                    \
    }

static dt_ew_run_fn dt_bin_pick(int op, int dtype)
{
    switch (dtype) {
    case DUCTILE_FLOAT32: DT_PICK_FLOAT(f32)
    case DUCTILE_FLOAT64: DT_PICK_FLOAT(f64)
    case DUCTILE_INT8: DT_PICK_INT(i8, fmod_i8)
    case DUCTILE_INT16: DT_PICK_INT(i16, fmod_i16)
    case DUCTILE_INT32:
        if (op == DT_BIN_POW) return pow32_i32;
        DT_PICK_INT(i32, fmod_i32)
    case DUCTILE_INT64: DT_PICK_INT(i64, fmod_i64)
    /* For unsigned values C's % and numpy's mod agree. */
    case DUCTILE_UINT8: DT_PICK_INT(u8, mod_u8)
    case DUCTILE_UINT16: DT_PICK_INT(u16, mod_u16)
    case DUCTILE_UINT32: DT_PICK_INT(u32, mod_u32)
    case DUCTILE_UINT64: DT_PICK_INT(u64, mod_u64)
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

/* Pow with an exponent of another dtype (ONNX's T1): a float base takes the exponent
 * converted to its type; an integer base is computed in int64 (integer exponent) or double
 * (float exponent, as numpy's power promotes) and cast back to the base's type. */

/* The bytes of n elements of 8 bytes (the widest a converted operand gets), rounded to 64. */
static size_t dt_pow_piece(const dt_view *v)
{
    int64_t n = dt_view_count(v);
    return ((size_t)(n > 0 ? n : 1) * 8 + 63) & ~(size_t)63;
}

/* The scratch dt_pow_mixed converts into: the exponent for a float base; base, exponent and
 * result for an integer one. Counted at 8 bytes an element whatever the base's type, so it
 * also holds when the base is widened to float32 first. */
static size_t dt_pow_mixed_bytes(const dt_view *a, const dt_view *b, const dt_view *out)
{
    if (dt_ew_is_float(a->dtype) || dt_ew_is_half(a->dtype)) return dt_pow_piece(b);
    return dt_pow_piece(a) + dt_pow_piece(b) + dt_pow_piece(out);
}

static ductile_status dt_pow_mixed(const dt_view *a, const dt_view *b, dt_view *out, dt_exec *ex)
{
    /* From the kernel's scratch (dt_binary_scratch reserved it); the heap only for a caller
     * that reserved none. */
    size_t need = dt_pow_mixed_bytes(a, b, out);
    char *heap = NULL, *cur = ex->scratch;
    if (!ex->scratch || ex->scratch_bytes < need) {
        if (!(cur = heap = dt_aligned_alloc(64, need)))
            return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) converting Pow's operands", need);
    }
    dt_view ca, cb, co;
    ductile_status s;
    if (dt_ew_is_float(a->dtype)) {
        s = dt_ew_convert(b, a->dtype, &cb, cur, ex);
        if (!s) s = dt_cpu_ew_apply_binary(DT_BIN_POW, a, &cb, out, ex);
    } else {
        int w = dt_ew_is_float(b->dtype) ? DUCTILE_FLOAT64 : DUCTILE_INT64;
        char *pb = cur + dt_pow_piece(a), *po = pb + dt_pow_piece(b);
        s = dt_ew_convert(a, w, &ca, cur, ex);
        if (!s) s = dt_ew_convert(b, w, &cb, pb, ex);
        if (!s) s = dt_ew_convert(out, w, &co, po, ex);
        if (!s) s = dt_cpu_ew_apply_binary(DT_BIN_POW, &ca, &cb, &co, ex);
        if (!s) s = dt_ew_cast_view(&co, out, ex);
    }
    dt_free(heap);
    return s;
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
    if (op == DT_BIN_POW && b->dtype != a->dtype) return dt_pow_mixed(a, b, out, ex);
    /* x^2 is the common Pow in exported graphs (variance); a multiply is exact and fast. */
    if (op == DT_BIN_POW && dt_is_scalar_value(b, 2.0))
        fn = a->dtype == DUCTILE_FLOAT32 ? sq_f32 : sq_f64;
    const dt_view *ins[2] = {a, b};
    dt_ew_iter it;
    dt_ew_iter_init(&it, out, ins, 2);
    dt_ew_iter_run(&it, ex, fn, NULL);
    return DUCTILE_OK;
}

static const struct { const char *name; int op; } dt_binary_ops[] = {
    {"Add", DT_BIN_ADD}, {"Sub", DT_BIN_SUB}, {"Mul", DT_BIN_MUL}, {"Div", DT_BIN_DIV},
    {"Pow", DT_BIN_POW}, {"Max", DT_BIN_MAX}, {"Min", DT_BIN_MIN}, {"Sum", DT_BIN_ADD},
    {"Mean", DT_BIN_ADD}, {"Equal", DT_BIN_EQ}, {"Less", DT_BIN_LT},
    {"LessOrEqual", DT_BIN_LE}, {"Greater", DT_BIN_GT}, {"GreaterOrEqual", DT_BIN_GE},
    {"And", DT_BIN_AND}, {"Or", DT_BIN_OR}, {"Xor", DT_BIN_XOR}, {"Mod", DT_BIN_MOD},
    {"BitShift", DT_BIN_SHL}, {"BitwiseAnd", DT_BIN_BITAND}, {"BitwiseOr", DT_BIN_BITOR},
    {"BitwiseXor", DT_BIN_BITXOR}, {"PRelu", DT_BIN_PRELU},
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
    if (!dt_ew_is_int(b->dtype)) return DUCTILE_OK;
    int64_t n = dt_view_count(b);
    for (int64_t i = 0; i < n; i++)
        if (dt_ew_get_i64(b, i) == 0)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "input 1 ('%s') holds 0 at element %lld: integer division by zero",
                           L->n_in > 1 && L->in[1] ? L->in[1]->name : "", (long long)i);
    return DUCTILE_OK;
}

/* A binary or variadic layer compiled: the op with its attributes applied (Mod's fmod,
 * BitShift's direction); L for float16/bfloat16 (widened through dt_ew_via_f32) and for
 * naming the divisor. */
typedef struct dt_binary_params {
    const ductile_layer *L;
    int op;
    bool mean;                  /* variadic Mean: the sum scaled by 1/n */
} dt_binary_params;

static ductile_status dt_binary_read(const ductile_layer *L, dt_binary_params *p)
{
    p->L = L;
    p->op = dt_binary_op(L->op_type);
    p->mean = strcmp(L->op_type, "Mean") == 0;
    if (p->op < 0) return dt_fail(DUCTILE_ERR_INTERNAL, "no binary CPU kernel for %s", L->op_type);
    if (p->op == DT_BIN_MOD && dt_attr_int(L, "fmod", 0) == 1) p->op = DT_BIN_FMOD;
    if (p->op == DT_BIN_SHL && strcmp(dt_attr_string(L, "direction", ""), "RIGHT") == 0) p->op = DT_BIN_SHR;
    return DUCTILE_OK;
}

static ductile_status dt_binary_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex);
static ductile_status dt_variadic_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex);

static ductile_status dt_binary_exec(const dt_binary_params *p, const dt_view *in, dt_view *out, dt_exec *ex)
{
    if (dt_ew_needs_f32(p->L, in, out)) return dt_ew_via_f32_run(p->L, p, dt_binary_run, in, out, ex);
    int op = p->op;
    if (op == DT_BIN_DIV || op == DT_BIN_MOD || op == DT_BIN_FMOD) DT_TRY(dt_check_divisor(p->L, &in[1]));
    dt_view slope;
    if (op == DT_BIN_PRELU && dt_prelu_channel_slope(p->L->opset, &in[0], &in[1], &slope))
        return dt_cpu_ew_apply_binary(op, &in[0], &slope, &out[0], ex);
    return dt_cpu_ew_apply_binary(op, &in[0], &in[1], &out[0], ex);
}

ductile_status dt_cpu_ew_binary(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_binary_params p;
    DT_TRY(dt_binary_read(L, &p));
    return dt_binary_exec(&p, in, out, ex);
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

static ductile_status dt_variadic_exec(const dt_binary_params *p, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const ductile_layer *L = p->L;
    if (dt_ew_needs_f32(L, in, out)) return dt_ew_via_f32_run(L, p, dt_variadic_run, in, out, ex);
    int op = p->op;
    if (L->n_in < 1) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "expected at least 1 input, got 0");
    if (L->n_in == 1) {
        size_t bytes = (size_t)dt_view_count(&out[0]) * ductile_dtype_size((ductile_dtype)out[0].dtype);
        memcpy(out[0].data, in[0].data, bytes);
        return DUCTILE_OK;
    }
    DT_TRY(dt_cpu_ew_apply_binary(op, &in[0], &in[1], &out[0], ex));
    for (int k = 2; k < L->n_in; k++) DT_TRY(dt_cpu_ew_apply_binary(op, &out[0], &in[k], &out[0], ex));
    if (p->mean) {
        if (out[0].dtype != DUCTILE_FLOAT32 && out[0].dtype != DUCTILE_FLOAT64)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "Mean supports float32 and float64, not %s",
                           ductile_dtype_name((ductile_dtype)out[0].dtype));
        dt_scale_job j = {out[0].data, out[0].dtype, 1.0 / L->n_in};
        dt_ew_parallel(ex, dt_view_count(&out[0]), dt_scale_range, &j);
    }
    return DUCTILE_OK;
}

ductile_status dt_cpu_ew_variadic(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_binary_params p;
    DT_TRY(dt_binary_read(L, &p));
    return dt_variadic_exec(&p, in, out, ex);
}

static ductile_status dt_binary_prepare(const ductile_layer *L, void **out)
{
    dt_binary_params *p = dt_malloc(sizeof *p);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling a %s", L->op_type);
    ductile_status s = dt_binary_read(L, p);
    if (s) {
        dt_free(p);
        return s;
    }
    *out = p;
    return DUCTILE_OK;
}

static ductile_status dt_binary_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    return dt_binary_exec(params, in, out, ex);
}

static ductile_status dt_variadic_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    return dt_variadic_exec(params, in, out, ex);
}

/* Scratch: Pow's converted operands, after the float16/bfloat16 widening when there is one. */
static ductile_status dt_binary_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                        size_t *bytes)
{
    const dt_binary_params *p = params;
    *bytes = p->op == DT_BIN_POW && in[1].dtype != in[0].dtype ? dt_pow_mixed_bytes(&in[0], &in[1], &out[0]) : 0;
    return dt_ew_via_f32_scratch(p->L, in, out, bytes);
}

static ductile_status dt_variadic_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                          size_t *bytes)
{
    const dt_binary_params *p = params;
    *bytes = 0;
    return dt_ew_via_f32_scratch(p->L, in, out, bytes);
}

const dt_kernel dt_cpu_ew_binary_kernel = {
    .prepare = dt_binary_prepare, .scratch = dt_binary_scratch, .run = dt_binary_run,
};
const dt_kernel dt_cpu_ew_variadic_kernel = {
    .prepare = dt_binary_prepare, .scratch = dt_variadic_scratch, .run = dt_variadic_run,
};
