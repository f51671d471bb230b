/* The elementwise op family: unary math, trigonometry and activations, binary arithmetic,
 * Mod, bit ops, comparisons and logic with numpy broadcasting, variadic Sum/Mean/Max/Min,
 * Where, Clip, Cast, CastLike, BitCast and Dropout (inference: the identity).
 *
 * The dtypes each op accepts are listed once here; the CPU kernels implement exactly these,
 * so a model that passes infer never reaches a kernel with a type it cannot compute. */
#include "ops/op.h"
#include "ops/families.h"
#include "ops/strings.h"
#include "core/dtype.h"
#include "core/status.h"

#include <stdio.h>
#include <string.h>

/* Dtype sets, as bit masks over ductile_dtype values. */
#define M(t) (1u << (t))
#define F32 M(DUCTILE_FLOAT32)
#define F64 M(DUCTILE_FLOAT64)
#define I32 M(DUCTILE_INT32)
#define I64 M(DUCTILE_INT64)
#define BOOL M(DUCTILE_BOOL)
/* float16 and bfloat16 are computed through float32 (one rounding per result). */
#define FLT (F32 | F64 | M(DUCTILE_FLOAT16) | M(DUCTILE_BFLOAT16))
#define SINT (M(DUCTILE_INT8) | M(DUCTILE_INT16) | I32 | I64)
#define INT (SINT | M(DUCTILE_UINT8) | M(DUCTILE_UINT16) | M(DUCTILE_UINT32) | M(DUCTILE_UINT64))
#define NUM (FLT | INT)
/* The 8-, 4- and 2-bit types (one byte each in memory) only cast; no other op computes on them. */
#define LOWP (M(DUCTILE_FLOAT8E4M3FN) | M(DUCTILE_FLOAT8E4M3FNUZ) | M(DUCTILE_FLOAT8E5M2) |           \
              M(DUCTILE_FLOAT8E5M2FNUZ) | M(DUCTILE_UINT4) | M(DUCTILE_INT4) | M(DUCTILE_FLOAT4E2M1) |   \
              M(DUCTILE_FLOAT8E8M0) | M(DUCTILE_UINT2) | M(DUCTILE_INT2))
#define CAST_TYPES (NUM | BOOL | LOWP)
/* Cast and CastLike also take strings (ops/strings.h says to and from which types). */
#define CAST_STR (CAST_TYPES | M(DUCTILE_STRING))
#define ANY 0xffffffffu

typedef struct dt_ew_sig {
    const char *op_type;
    int min_in, max_in;   /* max_in -1: variadic */
    uint32_t types;       /* accepted dtypes of input 0 (and of the inputs that must match) */
    int out_dtype;        /* 0: same as input 0 */
} dt_ew_sig;

static const dt_ew_sig dt_ew_sigs[] = {
    {"Relu", 1, 1, FLT | SINT, 0},
    {"Sigmoid", 1, 1, FLT, 0},
    {"Tanh", 1, 1, FLT, 0},
    {"Erf", 1, 1, FLT, 0},
    {"Exp", 1, 1, FLT, 0},
    {"Log", 1, 1, FLT, 0},
    {"Sqrt", 1, 1, FLT, 0},
    {"Neg", 1, 1, FLT | SINT, 0},
    {"Abs", 1, 1, NUM, 0},
    {"Sign", 1, 1, NUM, 0},
    {"Reciprocal", 1, 1, FLT, 0},
    {"Floor", 1, 1, FLT, 0},
    {"Ceil", 1, 1, FLT, 0},
    {"Round", 1, 1, FLT, 0},
    {"Sin", 1, 1, FLT, 0},
    {"Cos", 1, 1, FLT, 0},
    {"Tan", 1, 1, FLT, 0},
    {"Asin", 1, 1, FLT, 0},
    {"Acos", 1, 1, FLT, 0},
    {"Atan", 1, 1, FLT, 0},
    {"Sinh", 1, 1, FLT, 0},
    {"Cosh", 1, 1, FLT, 0},
    {"Asinh", 1, 1, FLT, 0},
    {"Acosh", 1, 1, FLT, 0},
    {"Atanh", 1, 1, FLT, 0},
    {"HardSigmoid", 1, 1, FLT, 0},
    {"HardSwish", 1, 1, FLT, 0},
    {"LeakyRelu", 1, 1, FLT, 0},
    {"Elu", 1, 1, FLT, 0},
    {"Celu", 1, 1, FLT, 0},
    {"Selu", 1, 1, FLT, 0},
    {"Softplus", 1, 1, FLT, 0},
    {"Softsign", 1, 1, FLT, 0},
    {"Mish", 1, 1, FLT, 0},
    {"Gelu", 1, 1, FLT, 0},
    {"Swish", 1, 1, FLT, 0},
    {"ThresholdedRelu", 1, 1, FLT, 0},
    {"Shrink", 1, 1, FLT, 0},
    {"Identity", 1, 1, ANY, 0},
    {"Dropout", 1, 3, FLT, 0},
    {"IsNaN", 1, 1, FLT, DUCTILE_BOOL},
    {"IsInf", 1, 1, FLT, DUCTILE_BOOL},
    {"Not", 1, 1, BOOL, 0},
    {"BitwiseNot", 1, 1, INT, 0},
    {"Clip", 1, 3, NUM, 0},
    {"Add", 2, 2, NUM, 0},
    {"Sub", 2, 2, NUM, 0},
    {"Mul", 2, 2, NUM, 0},
    {"Div", 2, 2, NUM, 0},
    {"Mod", 2, 2, NUM, 0},
    {"Pow", 2, 2, NUM, 0},
    {"PRelu", 2, 2, FLT | SINT, 0},
    {"BitShift", 2, 2, INT, 0},
    {"BitwiseAnd", 2, 2, INT, 0},
    {"BitwiseOr", 2, 2, INT, 0},
    {"BitwiseXor", 2, 2, INT, 0},
    {"Max", 1, -1, NUM, 0},
    {"Min", 1, -1, NUM, 0},
    {"Sum", 1, -1, NUM, 0},
    {"Mean", 1, -1, FLT, 0},
    {"Equal", 2, 2, NUM | BOOL | M(DUCTILE_STRING), DUCTILE_BOOL},
    {"Less", 2, 2, NUM, DUCTILE_BOOL},
    {"LessOrEqual", 2, 2, NUM, DUCTILE_BOOL},
    {"Greater", 2, 2, NUM, DUCTILE_BOOL},
    {"GreaterOrEqual", 2, 2, NUM, DUCTILE_BOOL},
    {"And", 2, 2, BOOL, DUCTILE_BOOL},
    {"Or", 2, 2, BOOL, DUCTILE_BOOL},
    {"Xor", 2, 2, BOOL, DUCTILE_BOOL},
    {"Where", 3, 3, BOOL, 0},
    {"Cast", 1, 1, CAST_STR, 0},
    {"CastLike", 2, 2, CAST_STR, 0},
    {"BitCast", 1, 1, CAST_TYPES, 0},
};

static const dt_ew_sig *dt_ew_sig_find(const char *op_type)
{
    for (size_t i = 0; i < sizeof dt_ew_sigs / sizeof dt_ew_sigs[0]; i++)
        if (strcmp(dt_ew_sigs[i].op_type, op_type) == 0) return &dt_ew_sigs[i];
    return NULL;
}

static const char *dt_ew_in_name(const ductile_layer *L, int i)
{
    return i < L->n_in && L->in[i] ? L->in[i]->name : "";
}

/* "float32, int32, int64" for a mask. */
static void dt_ew_types_str(uint32_t mask, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = 0;
    for (int t = 0; t < 32 && used < cap; t++) {
        if (!(mask & M(t)) || ductile_dtype_size((ductile_dtype)t) == 0) continue;
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", used ? ", " : "",
                                 ductile_dtype_name((ductile_dtype)t));
    }
}

static ductile_status dt_ew_want_type(const ductile_layer *L, const dt_view *in, int i,
                                      uint32_t mask)
{
    int t = in[i].dtype;
    if (t >= 0 && t < 32 && (mask & M(t)) && ductile_dtype_size((ductile_dtype)t)) return DUCTILE_OK;
    char list[200];
    dt_ew_types_str(mask, list, sizeof list);
    return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input %d ('%s') has dtype %s; %s supports %s", i,
                   dt_ew_in_name(L, i), ductile_dtype_name((ductile_dtype)t), L->op_type, list);
}

static ductile_status dt_ew_same_type(const ductile_layer *L, const dt_view *in, int i, int j)
{
    if (in[i].dtype == in[j].dtype) return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_SHAPE, "input %d ('%s') is %s but input %d ('%s') is %s", i,
                   dt_ew_in_name(L, i), ductile_dtype_name((ductile_dtype)in[i].dtype), j,
                   dt_ew_in_name(L, j), ductile_dtype_name((ductile_dtype)in[j].dtype));
}

static ductile_status dt_ew_present(const ductile_layer *L, const dt_view *in, int i)
{
    if (in[i].rank >= 0) return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input %d is required but was omitted", i);
}

/* Broadcasts out (already holding some shape) with input i, naming the input on failure. */
static ductile_status dt_ew_broadcast_into(const ductile_layer *L, const dt_view *in, int i,
                                           dt_view *out)
{
    dt_view acc = *out;
    ductile_status s = dt_broadcast(&acc, &in[i], out);
    if (s) return dt_fail_prefix(s, "input %d ('%s')", i, dt_ew_in_name(L, i));
    return DUCTILE_OK;
}

static ductile_status dt_ew_check(const ductile_layer *L)
{
    const dt_ew_sig *sig = dt_ew_sig_find(L->op_type);
    if (!sig) return dt_fail(DUCTILE_ERR_INTERNAL, "elementwise op %s has no signature", L->op_type);
    int hi = sig->max_in < 0 ? 64 : sig->max_in;
    DT_TRY(dt_check_arity(L, sig->min_in, hi, 1, strcmp(L->op_type, "Dropout") == 0 ? 2 : 1,
                          NULL));
    for (int i = 0; i < L->n_out; i++)
        if (!L->out[i])
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "output %d is omitted; ductile needs every output named", i);
    if (strcmp(L->op_type, "Cast") == 0 || strcmp(L->op_type, "BitCast") == 0) {
        const dt_attr *a = dt_attr_find(L, "to");
        if (!a || a->type != DT_ATTR_INT)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'to' (an int) is required");
        uint32_t to_types = strcmp(L->op_type, "Cast") == 0 ? CAST_STR : CAST_TYPES;
        if (a->i < 0 || a->i >= 32 || !(to_types & M(a->i))) {
            char list[400];
            dt_ew_types_str(to_types, list, sizeof list);
            return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                           "attribute 'to' = %lld (%s) is not supported (supported: %s)",
                           (long long)a->i, ductile_dtype_name((ductile_dtype)a->i), list);
        }
    }
    if (strcmp(L->op_type, "Cast") == 0 || strcmp(L->op_type, "CastLike") == 0) {
        /* saturate (opset 19+) only matters for float8 targets, round_mode (opset 24+) only
         * for float8e8m0; both are checked for every target so a typo never passes silently. */
        int64_t sat = dt_attr_int(L, "saturate", 1);
        if (sat != 0 && sat != 1)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'saturate' = %lld; expected 0 or 1",
                           (long long)sat);
        const char *rm = dt_attr_string(L, "round_mode", "up");
        if (strcmp(rm, "up") != 0 && strcmp(rm, "down") != 0 && strcmp(rm, "nearest") != 0)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "attribute 'round_mode' = '%s'; expected \"up\", \"down\" or \"nearest\"", rm);
    }
    if (strcmp(L->op_type, "Mod") == 0) {
        int64_t f = dt_attr_int(L, "fmod", 0);
        if (f != 0 && f != 1)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'fmod' = %lld; expected 0 or 1",
                           (long long)f);
    }
    if (strcmp(L->op_type, "BitShift") == 0) {
        const char *d = dt_attr_string(L, "direction", NULL);
        if (!d || (strcmp(d, "LEFT") != 0 && strcmp(d, "RIGHT") != 0))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "attribute 'direction' = '%s'; expected \"LEFT\" or \"RIGHT\"", d ? d : "(missing)");
    }
    if (strcmp(L->op_type, "Gelu") == 0) {
        const char *a = dt_attr_string(L, "approximate", "none");
        if (strcmp(a, "none") != 0 && strcmp(a, "tanh") != 0)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'approximate' = '%s' is not supported (none, tanh)", a);
    }
    if (strcmp(L->op_type, "Dropout") == 0 && L->opset < 7 && dt_attr_int(L, "is_test", 0) == 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'is_test' = 0 (training) is not supported; ductile runs inference only");
    if (strcmp(L->op_type, "Clip") == 0 && L->opset < 11 && L->n_in > 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "Clip before opset 11 takes min and max as attributes, not inputs; got %d inputs",
                       L->n_in);
    return DUCTILE_OK;
}

static ductile_status dt_ew_infer_clip(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    static const char *const names[] = {"input", "min", "max"};
    for (int i = 1; i < L->n_in; i++) {
        if (in[i].rank < 0) continue;
        DT_TRY(dt_ew_same_type(L, in, 0, i));
        if (dt_view_count(&in[i]) != 1) {
            char s[160];
            dt_format_dims(s, sizeof s, in[i].dims, in[i].rank, NULL);
            return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s, '%s') has shape %s; expected a scalar",
                           i, names[i], dt_ew_in_name(L, i), s);
        }
    }
    out[0] = in[0];
    out[0].data = NULL;
    return DUCTILE_OK;
}

static ductile_status dt_ew_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    const dt_ew_sig *sig = dt_ew_sig_find(L->op_type);
    if (!sig) return dt_fail(DUCTILE_ERR_INTERNAL, "elementwise op %s has no signature", L->op_type);
    DT_TRY(dt_ew_check(L));
    for (int i = 0; i < sig->min_in; i++) DT_TRY(dt_ew_present(L, in, i));
    DT_TRY(dt_ew_want_type(L, in, 0, sig->types));

    if (strcmp(L->op_type, "Clip") == 0) return dt_ew_infer_clip(L, in, out);
    if (strcmp(L->op_type, "CastLike") == 0) {
        DT_TRY(dt_ew_present(L, in, 1));
        DT_TRY(dt_ew_want_type(L, in, 1, CAST_STR));
        if (in[0].dtype == DUCTILE_STRING || in[1].dtype == DUCTILE_STRING)
            DT_TRY(dt_strings_cast_pair(in[0].dtype, in[1].dtype));
        out[0] = in[0];
        out[0].dtype = in[1].dtype;
        out[0].data = NULL;
        return DUCTILE_OK;
    }
    if (strcmp(L->op_type, "BitCast") == 0) {
        /* Bit widths as ONNX counts them: int4 and uint4 are 4 bits though ductile holds each
         * in a byte, so int4 -> uint8 is refused as the spec asks. */
        int to = (int)dt_attr_int(L, "to", 0), from = in[0].dtype;
        if (dt_dtype_file_bits(to) != dt_dtype_file_bits(from))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "BitCast from %s (%d bits) to %s (%d bits): the bit widths must be equal",
                           ductile_dtype_name((ductile_dtype)from), dt_dtype_file_bits(from),
                           ductile_dtype_name((ductile_dtype)to), dt_dtype_file_bits(to));
        out[0] = in[0];
        out[0].dtype = to;
        out[0].data = NULL;
        return DUCTILE_OK;
    }
    if (strcmp(L->op_type, "Dropout") == 0) {
        out[0] = in[0];
        out[0].data = NULL;
        if (L->n_out > 1) {
            out[1] = out[0];
            out[1].dtype = DUCTILE_BOOL;
        }
        return DUCTILE_OK;
    }

    bool is_where = strcmp(L->op_type, "Where") == 0;
    bool is_pow = strcmp(L->op_type, "Pow") == 0;
    if (is_where) {
        DT_TRY(dt_ew_present(L, in, 1));
        DT_TRY(dt_ew_present(L, in, 2));
        DT_TRY(dt_ew_want_type(L, in, 1, ANY));
        DT_TRY(dt_ew_same_type(L, in, 1, 2));
    } else if (is_pow) {
        /* The exponent may have its own type (ONNX's T1); the result has the base's. */
        DT_TRY(dt_ew_present(L, in, 1));
        DT_TRY(dt_ew_want_type(L, in, 1, NUM));
    } else {
        for (int i = 1; i < L->n_in; i++) {
            DT_TRY(dt_ew_present(L, in, i));
            DT_TRY(dt_ew_same_type(L, in, 0, i));
        }
    }

    dt_view o;
    memset(&o, 0, sizeof o);
    o.rank = in[0].rank;
    memcpy(o.dims, in[0].dims, sizeof o.dims);
    dt_view slope;
    if (L->n_in == 2 && !strcmp(L->op_type, "PRelu") && dt_prelu_channel_slope(L->opset, &in[0], &in[1], &slope)) {
        dt_view pair[2] = {in[0], slope};
        DT_TRY(dt_ew_broadcast_into(L, pair, 1, &o));
    } else {
        for (int i = 1; i < L->n_in; i++) DT_TRY(dt_ew_broadcast_into(L, in, i, &o));
    }
    if (strcmp(L->op_type, "PRelu") == 0 &&
        (o.rank != in[0].rank || memcmp(o.dims, in[0].dims, sizeof(int64_t) * (size_t)o.rank) != 0)) {
        char a[160], b[160];
        dt_format_dims(a, sizeof a, in[0].dims, in[0].rank, NULL);
        dt_format_dims(b, sizeof b, in[1].dims, in[1].rank, NULL);
        return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (slope, '%s') of shape %s does not broadcast to X's shape %s",
                       dt_ew_in_name(L, 1), b, a);
    }

    if (strcmp(L->op_type, "Cast") == 0) {
        o.dtype = (int)dt_attr_int(L, "to", 0);
        if (in[0].dtype == DUCTILE_STRING || o.dtype == DUCTILE_STRING) DT_TRY(dt_strings_cast_pair(in[0].dtype, o.dtype));
    }
    else if (is_where) o.dtype = in[1].dtype;
    else o.dtype = sig->out_dtype ? sig->out_dtype : in[0].dtype;
    out[0] = o;
    return DUCTILE_OK;
}

const dt_opdef dt_ops_elementwise[] = {
#define DT_EW(name) {name, dt_ew_check, dt_ew_infer, 0}
    DT_EW("Relu"), DT_EW("Sigmoid"), DT_EW("Tanh"), DT_EW("Erf"), DT_EW("Exp"),
    DT_EW("Log"), DT_EW("Sqrt"), DT_EW("Neg"), DT_EW("Abs"), DT_EW("Reciprocal"),
    DT_EW("Floor"), DT_EW("Ceil"), DT_EW("HardSigmoid"), DT_EW("HardSwish"),
    DT_EW("LeakyRelu"), DT_EW("Elu"), DT_EW("Softplus"), DT_EW("Identity"), DT_EW("IsNaN"),
    DT_EW("Not"), DT_EW("Clip"), DT_EW("Add"), DT_EW("Sub"), DT_EW("Mul"), DT_EW("Div"),
    DT_EW("Pow"), DT_EW("Max"), DT_EW("Min"), DT_EW("Sum"), DT_EW("Mean"), DT_EW("Equal"),
    DT_EW("Less"), DT_EW("LessOrEqual"), DT_EW("Greater"), DT_EW("GreaterOrEqual"),
    DT_EW("And"), DT_EW("Or"), DT_EW("Xor"), DT_EW("Where"), DT_EW("Cast"),
    DT_EW("CastLike"), DT_EW("BitCast"), DT_EW("Sign"), DT_EW("Round"), DT_EW("Sin"), DT_EW("Cos"), DT_EW("Tan"),
    DT_EW("Asin"), DT_EW("Acos"), DT_EW("Atan"), DT_EW("Sinh"), DT_EW("Cosh"), DT_EW("Asinh"),
    DT_EW("Acosh"), DT_EW("Atanh"), DT_EW("Celu"), DT_EW("Selu"), DT_EW("Softsign"),
    DT_EW("Mish"), DT_EW("Gelu"), DT_EW("Swish"), DT_EW("ThresholdedRelu"), DT_EW("Shrink"),
    DT_EW("IsInf"), DT_EW("BitwiseNot"), DT_EW("Dropout"), DT_EW("Mod"), DT_EW("BitShift"),
    DT_EW("BitwiseAnd"), DT_EW("BitwiseOr"), DT_EW("BitwiseXor"), DT_EW("PRelu"),
#undef DT_EW
    {NULL, NULL, NULL, 0},
};
