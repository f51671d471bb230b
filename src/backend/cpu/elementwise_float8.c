/* Conversions for the 8-, 4- and 2-bit types. Every rule here is onnx's reference Cast
 * (onnx.reference.ops.op_cast with ml_dtypes underneath): float8 and float4e2m1 round to nearest
 * even; with saturate, out-of-range values clip to the largest finite value first
 * (onnx.numpy_helper.saturate_cast); without it, ml_dtypes' overflow rules apply. Encodings that
 * have no counterpart in a format (NaN in float4e2m1, -0 in the FNUZ formats) follow ml_dtypes,
 * so ductile's bytes are the bytes numpy users compare against. */
#include "backend/cpu/elementwise_float8.h"
#include "ductile.h"

#include <float.h>
#include <math.h>
#include <string.h>

typedef struct {
    int mbits, bias;   /* mantissa bits, exponent bias; the minimum normal exponent is 1 - bias */
    double max;        /* largest finite value */
    uint8_t max_code;  /* its encoding (positive) */
    int kind;          /* DT_FN, DT_FNUZ, DT_IEEE, DT_SAT (see below) */
    uint8_t sign;      /* the sign bit */
} dt_minifloat;

enum {
    DT_FN,    /* no infinity; NaN is all ones below the sign (e4m3fn) */
    DT_FNUZ,  /* no infinity, no -0; NaN is the sign bit alone (e4m3fnuz, e5m2fnuz) */
    DT_IEEE,  /* infinity and NaN as in IEEE 754 (e5m2) */
    DT_SAT,   /* no infinity, no NaN (float4e2m1) */
};

static const dt_minifloat *dt_minifloat_of(int dtype)
{
    static const dt_minifloat e4m3fn = {3, 7, 448.0, 0x7e, DT_FN, 0x80};
    static const dt_minifloat e4m3fnuz = {3, 8, 240.0, 0x7f, DT_FNUZ, 0x80};
    static const dt_minifloat e5m2 = {2, 15, 57344.0, 0x7b, DT_IEEE, 0x80};
    static const dt_minifloat e5m2fnuz = {2, 16, 57344.0, 0x7f, DT_FNUZ, 0x80};
    static const dt_minifloat e2m1 = {1, 1, 6.0, 0x7, DT_SAT, 0x8};
    switch (dtype) {
    case DUCTILE_FLOAT8E4M3FN: return &e4m3fn;
    case DUCTILE_FLOAT8E4M3FNUZ: return &e4m3fnuz;
    case DUCTILE_FLOAT8E5M2: return &e5m2;
    case DUCTILE_FLOAT8E5M2FNUZ: return &e5m2fnuz;
    case DUCTILE_FLOAT4E2M1: return &e2m1;
    default: return NULL;
    }
}

bool dt_lowp_is_float(int t)
{
    return dt_minifloat_of(t) != NULL || t == DUCTILE_FLOAT8E8M0;
}

bool dt_lowp_is_int(int t)
{
    return t == DUCTILE_UINT4 || t == DUCTILE_INT4 || t == DUCTILE_UINT2 || t == DUCTILE_INT2;
}

double dt_lowp_to_f64(int dtype, uint8_t b)
{
    if (dtype == DUCTILE_FLOAT8E8M0) return b == 0xff ? NAN : ldexp(1.0, (int)b - 127);
    const dt_minifloat *f = dt_minifloat_of(dtype);
    if (!f) return 0.0;
    int mbits = f->mbits;
    uint8_t mag = b & (uint8_t)(f->sign - 1);
    bool neg = (b & f->sign) != 0;
    switch (f->kind) {
    case DT_FN: if (mag == 0x7f) return neg ? -NAN : NAN; break;
    case DT_FNUZ: if (b == 0x80) return NAN; break;
    case DT_IEEE:
        if ((mag >> mbits) == 0x1f) return (mag & 3) ? (neg ? -NAN : NAN) : (neg ? -INFINITY : INFINITY);
        break;
    default: break;
    }
    int e = mag >> mbits, m = mag & ((1 << mbits) - 1);
    double v = e == 0 ? ldexp((double)m, 1 - f->bias - mbits)
                      : ldexp((double)((1 << mbits) + m), e - f->bias - mbits);
    return neg ? -v : v;
}

uint8_t dt_f64_to_lowp(int dtype, double v, bool saturate, int e8m0_round)
{
    if (dtype == DUCTILE_FLOAT8E8M0) return dt_f32_to_e8m0((float)v, saturate, e8m0_round);
    const dt_minifloat *f = dt_minifloat_of(dtype);
    if (!f) return 0;
    /* Through float32 first, as ml_dtypes and onnxruntime convert float64 (and int64): the
     * double rounding is theirs, and ductile's results are kept identical to theirs. */
    if (fabs(v) <= FLT_MAX) v = (double)(float)v;   /* beyond it: out of range either way */
    bool neg = signbit(v) != 0;
    uint8_t sign = neg ? f->sign : 0;
    if (isnan(v)) {
        switch (f->kind) {
        case DT_FN: return sign | 0x7f;
        case DT_FNUZ: return 0x80;
        case DT_IEEE: return sign | 0x7e;
        default: return neg ? 0 : f->sign;   /* ml_dtypes: NaN -> -0, -NaN -> +0 */
        }
    }
    double a = fabs(v);
    /* Past max before rounding (infinity too): saturate clips to max, as saturate_cast's
     * np.clip does. */
    if ((saturate || f->kind == DT_SAT) && a > f->max) return sign | f->max_code;
    if (isinf(a)) {
        switch (f->kind) {
        case DT_FN: return sign | 0x7f;
        case DT_FNUZ: return 0x80;
        case DT_IEEE: return sign | 0x7c;
        default: return sign | f->max_code;
        }
    }
    int mbits = f->mbits, emin = 1 - f->bias, k;
    if (a == 0.0) return f->kind == DT_FNUZ ? 0 : sign;
    frexp(a, &k);
    int e = k - 1 < emin ? emin : k - 1;   /* below the normal range: the subnormal quantum */
    double n = nearbyint(ldexp(a, mbits - e));   /* the default rounding mode: nearest even */
    if (n == 0.0) return f->kind == DT_FNUZ ? 0 : sign;
    if (ldexp(n, e - mbits) > f->max) {
        /* Rounded past max: without saturate, NaN (FN, FNUZ) or infinity (e5m2). */
        switch (f->kind) {
        case DT_FN: return sign | 0x7f;
        case DT_FNUZ: return 0x80;
        case DT_IEEE: return sign | 0x7c;
        default: return sign | f->max_code;
        }
    }
    int m = (int)n;
    if (m == 2 << mbits) {   /* rounded up into the next binade */
        m = 1 << mbits;
        e++;
    }
    uint8_t code;
    if (m < (1 << mbits)) code = (uint8_t)m;   /* subnormal: exponent field 0 */
    else code = (uint8_t)(((e + f->bias) << mbits) | (m - (1 << mbits)));
    return sign | code;
}

uint8_t dt_f32_to_e8m0(float v, bool saturate, int round_mode)
{
    uint32_t x;
    memcpy(&x, &v, sizeof x);
    unsigned e = (x >> 23) & 0xff;
    if (e == 0xff) return 0xff;
    bool up;
    if (round_mode == DT_E8M0_NEAREST) {
        /* to_float8e8m0's rule, kept verbatim: guard bit, and round, sticky or a nonzero
         * exponent. */
        bool g = x & 0x400000u, r = x & 0x200000u, s = x & 0x1fffffu;
        up = g && (r || s || e > 0);
    } else if (round_mode == DT_E8M0_UP) {
        up = (x & 0x7fffffu) != 0;
    } else {
        up = false;
    }
    if (up && saturate && e == 0xfe) up = false;
    return (uint8_t)(e + up);
}

int64_t dt_lowp_int_load(int dtype, uint8_t b)
{
    switch (dtype) {
    case DUCTILE_UINT4: return b & 0xf;
    case DUCTILE_INT4: return (int64_t)((b & 0xf) ^ 0x8) - 0x8;
    case DUCTILE_UINT2: return b & 0x3;
    case DUCTILE_INT2: return (int64_t)((b & 0x3) ^ 0x2) - 0x2;
    default: return b;
    }
}

uint8_t dt_lowp_int_store(int dtype, int64_t v)
{
    return (uint8_t)((uint64_t)v & (dtype == DUCTILE_UINT4 || dtype == DUCTILE_INT4 ? 0xfu : 0x3u));
}
