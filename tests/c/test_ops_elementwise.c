/* The elementwise ops: infer (dtypes, broadcast shapes, error messages) and the CPU kernels,
 * compared element by element with a plain scalar reference written here, on odd shapes that
 * hit every path of the broadcast walker (same shape, scalar, row vector, per-channel, rank 0)
 * and on outputs large enough to run in parallel. */
#include "ophelp.h"

#include "backend/cpu/families.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "graph/network.h"
#include "ops/families.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- harness ---- */

static int layer_counter;

/* A layer with inputs named a, b, c, ... (NULL where omitted[i]) and up to 2 attributes. */
static ductile_layer *make_layer(const char *op, int opset, int n_in, int n_attr)
{
    char name[64];
    snprintf(name, sizeof name, "%s_%d", op, layer_counter++);
    ductile_layer *L = dt_network_add_layer(net, op, name, n_in, 1, n_attr);
    for (int i = 0; i < n_in; i++) {
        char tn[80];
        snprintf(tn, sizeof tn, "%s_%c", name, 'a' + i);
        L->in[i] = dt_network_add_tensor(net, tn);
    }
    char on[80];
    snprintf(on, sizeof on, "%s_out", name);
    L->out[0] = dt_network_add_tensor(net, on);
    L->opset = opset;
    return L;
}

static void set_float_attr(ductile_layer *L, int i, const char *name, float v)
{
    L->attrs[i].name = name;
    L->attrs[i].type = DT_ATTR_FLOAT;
    L->attrs[i].f = v;
}

static void set_int_attr(ductile_layer *L, int i, const char *name, int64_t v)
{
    L->attrs[i].name = name;
    L->attrs[i].type = DT_ATTR_INT;
    L->attrs[i].i = v;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double urand(double lo, double hi) { return lo + (hi - lo) * (double)(rng() >> 11) / 9007199254740992.0; }

/* A view of the given shape with random data: floats in [lo, hi], ints in [lo, hi], bools. */
static dt_view make_view(int dtype, int rank, const int64_t *dims, double lo, double hi)
{
    dt_view v;
    memset(&v, 0, sizeof v);
    v.dtype = dtype;
    v.rank = rank;
    for (int i = 0; i < rank; i++) v.dims[i] = dims[i];
    int64_t n = dt_view_count(&v);
    size_t es = ductile_dtype_size((ductile_dtype)dtype);
    v.data = calloc((size_t)(n ? n : 1), es);
    for (int64_t i = 0; i < n; i++) {
        switch (dtype) {
        case DUCTILE_FLOAT32: ((float *)v.data)[i] = (float)urand(lo, hi); break;
        case DUCTILE_FLOAT64: ((double *)v.data)[i] = urand(lo, hi); break;
        case DUCTILE_INT32: ((int32_t *)v.data)[i] = (int32_t)floor(urand(lo, hi + 1)); break;
        case DUCTILE_INT64: ((int64_t *)v.data)[i] = (int64_t)floor(urand(lo, hi + 1)); break;
        case DUCTILE_INT8: ((int8_t *)v.data)[i] = (int8_t)floor(urand(lo, hi + 1)); break;
        case DUCTILE_INT16: ((int16_t *)v.data)[i] = (int16_t)floor(urand(lo, hi + 1)); break;
        case DUCTILE_UINT8: ((uint8_t *)v.data)[i] = (uint8_t)floor(urand(lo, hi + 1)); break;
        case DUCTILE_UINT16: ((uint16_t *)v.data)[i] = (uint16_t)floor(urand(lo, hi + 1)); break;
        case DUCTILE_UINT32: ((uint32_t *)v.data)[i] = (uint32_t)floor(urand(lo, hi + 1)); break;
        case DUCTILE_UINT64: ((uint64_t *)v.data)[i] = (uint64_t)floor(urand(lo, hi + 1)); break;
        case DUCTILE_BOOL: ((bool *)v.data)[i] = rng() & 1; break;
        default: break;
        }
    }
    return v;
}

static double get_f(const dt_view *v, int64_t i)
{
    switch (v->dtype) {
    case DUCTILE_FLOAT32: return ((const float *)v->data)[i];
    case DUCTILE_FLOAT64: return ((const double *)v->data)[i];
    case DUCTILE_INT32: return ((const int32_t *)v->data)[i];
    case DUCTILE_INT64: return (double)((const int64_t *)v->data)[i];
    case DUCTILE_INT8: return ((const int8_t *)v->data)[i];
    case DUCTILE_INT16: return ((const int16_t *)v->data)[i];
    case DUCTILE_UINT8: return ((const uint8_t *)v->data)[i];
    case DUCTILE_UINT16: return ((const uint16_t *)v->data)[i];
    case DUCTILE_UINT32: return ((const uint32_t *)v->data)[i];
    case DUCTILE_UINT64: return (double)((const uint64_t *)v->data)[i];
    case DUCTILE_BOOL: return ((const uint8_t *)v->data)[i];
    default: return NAN;
    }
}

static int64_t get_i(const dt_view *v, int64_t i)
{
    switch (v->dtype) {
    case DUCTILE_INT32: return ((const int32_t *)v->data)[i];
    case DUCTILE_INT64: return ((const int64_t *)v->data)[i];
    case DUCTILE_INT8: return ((const int8_t *)v->data)[i];
    case DUCTILE_INT16: return ((const int16_t *)v->data)[i];
    case DUCTILE_UINT8: return ((const uint8_t *)v->data)[i];
    case DUCTILE_UINT16: return ((const uint16_t *)v->data)[i];
    case DUCTILE_UINT32: return ((const uint32_t *)v->data)[i];
    case DUCTILE_UINT64: return (int64_t)((const uint64_t *)v->data)[i];
    case DUCTILE_BOOL: return ((const uint8_t *)v->data)[i];
    default: return (int64_t)get_f(v, i);
    }
}

static bool is_int_type(int t)
{
    return t == DUCTILE_INT8 || t == DUCTILE_INT16 || t == DUCTILE_INT32 || t == DUCTILE_INT64 ||
           t == DUCTILE_UINT8 || t == DUCTILE_UINT16 || t == DUCTILE_UINT32 || t == DUCTILE_UINT64;
}

/* w wrapped to an integer dtype, as stored (and read back by get_i). */
static int64_t wrap_to(int t, int64_t w)
{
    switch (t) {
    case DUCTILE_INT8: return (int8_t)w;
    case DUCTILE_INT16: return (int16_t)w;
    case DUCTILE_INT32: return (int32_t)w;
    case DUCTILE_UINT8: return (uint8_t)w;
    case DUCTILE_UINT16: return (uint16_t)w;
    case DUCTILE_UINT32: return (uint32_t)w;
    default: return w;
    }
}

/* The flat index into v of output element `flat`, with numpy broadcasting. */
static int64_t bcast_index(const dt_view *v, const dt_view *out, int64_t flat)
{
    int64_t idx = 0, stride = 1;
    for (int d = out->rank - 1; d >= 0; d--) {
        int64_t od = out->dims[d];
        int64_t c = flat % od;
        flat /= od;
        int vd = d - (out->rank - v->rank);
        if (vd < 0) continue;
        if (v->dims[vd] != 1) idx += c * stride;
        stride *= v->dims[vd];
    }
    return idx;
}

/* Runs infer and the kernel; returns the status and fills *out (data allocated here). */
static ductile_status run_op(ductile_layer *L, const dt_view *in, dt_view *out, dt_pool *p)
{
    const dt_opdef *def = opdef(L->op_type);
    dt_cpu_run_fn run = kernel(L->op_type);
    if (!def || !run) return DUCTILE_ERR_INTERNAL;
    memset(out, 0, sizeof *out);
    ductile_status s = def->infer(L, in, out);
    if (s) return s;
    int64_t n = dt_view_count(out);
    size_t es = ductile_dtype_size((ductile_dtype)out->dtype);
    /* A sentinel byte pattern after the buffer catches overruns. */
    size_t bytes = (size_t)n * es;
    unsigned char *buf = malloc(bytes + 64);
    memset(buf, 0xA5, bytes + 64);
    out->data = buf;
    dt_exec ex = {.pool = p};
    s = run(L, in, out, &ex);
    for (int i = 0; i < 64; i++)
        if (buf[bytes + i] != 0xA5) {
            CHECK(!"kernel wrote past the end of its output");
            break;
        }
    if (s) { /* the caller frees the output only on success */
        free(buf);
        out->data = NULL;
    }
    return s;
}

static void free_views(dt_view *v, int n)
{
    for (int i = 0; i < n; i++) free(v[i].data);
}

static bool close_enough(double got, double want, double tol)
{
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= tol * (1.0 + fabs(want));
}

/* ---- unary ---- */

static double ref_unary(const char *op, double x, float alpha, float beta)
{
    if (!strcmp(op, "Relu")) return x > 0 ? x : 0;
    if (!strcmp(op, "Sigmoid")) return 1.0 / (1.0 + exp(-x));
    if (!strcmp(op, "Tanh")) return tanh(x);
    if (!strcmp(op, "Erf")) return erf(x);
    if (!strcmp(op, "Exp")) return exp(x);
    if (!strcmp(op, "Log")) return log(x);
    if (!strcmp(op, "Sqrt")) return sqrt(x);
    if (!strcmp(op, "Neg")) return -x;
    if (!strcmp(op, "Abs")) return fabs(x);
    if (!strcmp(op, "Reciprocal")) return 1.0 / x;
    if (!strcmp(op, "Floor")) return floor(x);
    if (!strcmp(op, "Ceil")) return ceil(x);
    if (!strcmp(op, "HardSigmoid")) return fmax(0, fmin(1, alpha * x + beta));
    if (!strcmp(op, "HardSwish")) return x * fmax(0, fmin(1, x / 6 + 0.5));
    if (!strcmp(op, "LeakyRelu")) return x >= 0 ? x : alpha * x;
    if (!strcmp(op, "Elu")) return x >= 0 ? x : alpha * (exp(x) - 1);
    if (!strcmp(op, "Softplus")) return log(1 + exp(x));
    if (!strcmp(op, "Identity")) return x;
    return NAN;
}

static void test_unary_float_ops_match_reference(void)
{
    static const char *ops[] = {"Relu", "Sigmoid", "Tanh", "Erf", "Exp", "Log", "Sqrt", "Neg",
                                "Abs", "Reciprocal", "Floor", "Ceil", "HardSigmoid",
                                "HardSwish", "LeakyRelu", "Elu", "Softplus", "Identity"};
    static const int64_t shapes[][3] = {{3, 5, 7}, {1, 1, 1}, {7, 128, 41}};
    static const int ranks[] = {3, 0, 3};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        for (int s = 0; s < 3; s++) {
            bool positive = !strcmp(ops[o], "Log") || !strcmp(ops[o], "Sqrt");
            ductile_layer *L = make_layer(ops[o], 13, 1, 2);
            float alpha = 0.0f, beta = 0.0f;
            if (!strcmp(ops[o], "HardSigmoid")) {
                alpha = 1.0f / 6.0f;
                beta = 0.4f;
                set_float_attr(L, 0, "alpha", alpha);
                set_float_attr(L, 1, "beta", beta);
            } else if (!strcmp(ops[o], "LeakyRelu")) {
                alpha = 0.1f;
                set_float_attr(L, 0, "alpha", alpha);
            } else if (!strcmp(ops[o], "Elu")) {
                alpha = 1.0f; /* the default, left unset */
            }
            dt_view in = make_view(DUCTILE_FLOAT32, ranks[s], shapes[s], positive ? 0.01 : -6,
                                   6);
            dt_view out;
            ductile_status st = run_op(L, &in, &out, s == 2 ? pool : NULL);
            CHECK_EQ_INT(st, DUCTILE_OK);
            CHECK_EQ_INT(out.dtype, DUCTILE_FLOAT32);
            CHECK_EQ_INT(out.rank, ranks[s]);
            int64_t n = dt_view_count(&in), bad = 0;
            for (int64_t i = 0; st == DUCTILE_OK && i < n; i++) {
                double want = ref_unary(ops[o], get_f(&in, i), alpha, beta);
                if (!close_enough(get_f(&out, i), want, 2e-6)) {
                    if (!bad)
                        fprintf(stderr, "%s element %lld: got %.9g want %.9g (x %.9g)\n", ops[o],
                                (long long)i, get_f(&out, i), want, get_f(&in, i));
                    bad++;
                }
            }
            CHECK_EQ_INT(bad, 0);
            free_views(&in, 1);
            free_views(&out, 1);
        }
    }
}

/* Sigmoid, Tanh and Erf use polynomial forms: sweep magnitudes from denormals to overflow,
 * both signs, and hold them to a few ulp (absolute 1e-7 where the value is tiny). */
static void test_polynomial_activations_stay_accurate_everywhere(void)
{
    static const char *ops[] = {"Sigmoid", "Tanh", "Erf"};
    int64_t n = 4 * 2000 + 4;
    dt_view in = make_view(DUCTILE_FLOAT32, 1, &n, 0, 0);
    float *x = in.data;
    for (int i = 0; i < 2000; i++) {
        float m = powf(10.0f, -40.0f + 42.0f * (float)i / 2000.0f); /* 1e-40 .. 1e2 */
        float lin = 6.0f * (float)i / 2000.0f;                        /* 0 .. 6, densely */
        x[4 * i] = m;
        x[4 * i + 1] = -m;
        x[4 * i + 2] = lin;
        x[4 * i + 3] = -lin;
    }
    x[n - 4] = INFINITY;
    x[n - 3] = -INFINITY;
    x[n - 2] = NAN;
    x[n - 1] = 0.0f;
    for (int o = 0; o < 3; o++) {
        ductile_layer *L = make_layer(ops[o], 13, 1, 0);
        dt_view out;
        CHECK_EQ_INT(run_op(L, &in, &out, NULL), DUCTILE_OK);
        int64_t bad = 0;
        for (int64_t i = 0; i < n; i++) {
            double want = ref_unary(ops[o], x[i], 0, 0), got = ((float *)out.data)[i];
            bool ok = isnan(want) ? isnan(got)
                                  : fabs(got - want) <= 1e-7 || fabs(got - want) <= 4e-7 * fabs(want);
            if (!ok && !bad++)
                fprintf(stderr, "%s(%.9g): got %.9g want %.9g\n", ops[o], x[i], got, want);
        }
        CHECK_EQ_INT(bad, 0);
        free(out.data);
    }
    free(in.data);
}

static void test_unary_integer_and_bool_ops(void)
{
    int64_t d[1] = {5};
    ductile_layer *L = make_layer("Neg", 13, 1, 0);
    dt_view in = make_view(DUCTILE_INT64, 1, d, 0, 0), out;
    int64_t vals[5] = {3, -4, 0, INT64_MIN, INT64_MAX};
    memcpy(in.data, vals, sizeof vals);
    CHECK_EQ_INT(run_op(L, &in, &out, NULL), DUCTILE_OK);
    CHECK_EQ_INT(((int64_t *)out.data)[0], -3);
    CHECK_EQ_INT(((int64_t *)out.data)[1], 4);
    CHECK_EQ_INT(((int64_t *)out.data)[3], INT64_MIN); /* wraps, as onnxruntime does */
    CHECK_EQ_INT(((int64_t *)out.data)[4], -INT64_MAX);
    free(out.data);

    L = make_layer("Abs", 13, 1, 0);
    in.dtype = DUCTILE_INT32;
    int32_t v32[5] = {3, -4, 0, -7, 9};
    memcpy(in.data, v32, sizeof v32);
    CHECK_EQ_INT(run_op(L, &in, &out, NULL), DUCTILE_OK);
    CHECK_EQ_INT(((int32_t *)out.data)[1], 4);
    CHECK_EQ_INT(((int32_t *)out.data)[3], 7);
    free(out.data);

    L = make_layer("IsNaN", 13, 1, 0);
    in.dtype = DUCTILE_FLOAT32;
    float f[5] = {1.0f, NAN, -INFINITY, 0.0f, -NAN};
    memcpy(in.data, f, sizeof f);
    CHECK_EQ_INT(run_op(L, &in, &out, NULL), DUCTILE_OK);
    CHECK_EQ_INT(out.dtype, DUCTILE_BOOL);
    bool *b = out.data;
    CHECK(!b[0] && b[1] && !b[2] && !b[3] && b[4]);
    free(out.data);

    L = make_layer("Not", 13, 1, 0);
    in.dtype = DUCTILE_BOOL;
    memcpy(in.data, (bool[5]){true, false, true, true, false}, 5);
    CHECK_EQ_INT(run_op(L, &in, &out, NULL), DUCTILE_OK);
    b = out.data;
    CHECK(!b[0] && b[1] && !b[2] && !b[3] && b[4]);
    free(out.data);

    L = make_layer("Identity", 13, 1, 0);
    in.dtype = DUCTILE_INT64;
    memcpy(in.data, vals, sizeof vals);
    CHECK_EQ_INT(run_op(L, &in, &out, NULL), DUCTILE_OK);
    CHECK(memcmp(out.data, vals, sizeof vals) == 0);
    free(out.data);

    L = make_layer("Sigmoid", 13, 1, 0);
    in.dtype = DUCTILE_INT64;
    CHECK_EQ_INT(run_op(L, &in, &out, NULL), DUCTILE_ERR_UNSUPPORTED);
    CHECK(strstr(dt_last_error(), "input 0 ('Sigmoid_") != NULL);
    CHECK(strstr(dt_last_error(), "has dtype int64; Sigmoid supports float32") != NULL);
    free(in.data);
}

/* ---- binary ---- */

static const struct { int rank_a; int64_t a[4]; int rank_b; int64_t b[4]; } pairs[] = {
    {3, {3, 5, 7}, 3, {3, 5, 7}},
    {3, {3, 5, 7}, 2, {5, 1}},
    {3, {3, 5, 7}, 1, {1}},
    {3, {3, 5, 7}, 0, {0}},
    {0, {0}, 3, {3, 5, 7}},
    {0, {0}, 0, {0}},
    {3, {2, 1, 4}, 2, {3, 1}},
    {2, {5, 1}, 3, {3, 1, 7}},
    {4, {2, 3, 40, 50}, 4, {2, 3, 1, 1}},   /* squeeze-excite: per-channel scale */
    {3, {4, 37, 256}, 1, {256}},            /* bias over the last dim */
    {4, {1, 8, 99, 101}, 4, {1, 8, 99, 101}},
    {4, {2, 1, 9, 1}, 4, {1, 3, 1, 11}},
    {2, {0, 3}, 1, {3}},                     /* empty output */
};
#define N_PAIRS (int)(sizeof pairs / sizeof pairs[0])

static double ref_binary_f(const char *op, double x, double y)
{
    if (!strcmp(op, "Add")) return x + y;
    if (!strcmp(op, "Sub")) return x - y;
    if (!strcmp(op, "Mul")) return x * y;
    if (!strcmp(op, "Div")) return x / y;
    if (!strcmp(op, "Pow")) return pow(x, y);
    if (!strcmp(op, "Max")) return x > y ? x : y;
    if (!strcmp(op, "Min")) return x < y ? x : y;
    if (!strcmp(op, "Equal")) return x == y;
    if (!strcmp(op, "Less")) return x < y;
    if (!strcmp(op, "LessOrEqual")) return x <= y;
    if (!strcmp(op, "Greater")) return x > y;
    if (!strcmp(op, "GreaterOrEqual")) return x >= y;
    if (!strcmp(op, "And")) return x && y;
    if (!strcmp(op, "Or")) return x || y;
    if (!strcmp(op, "Xor")) return (x != 0) != (y != 0);
    return NAN;
}

static int64_t ref_binary_i(const char *op, int64_t x, int64_t y)
{
    if (!strcmp(op, "Add")) return x + y;
    if (!strcmp(op, "Sub")) return x - y;
    if (!strcmp(op, "Mul")) return x * y;
    if (!strcmp(op, "Div")) return x / y; /* C truncates toward zero, as onnxruntime */
    if (!strcmp(op, "Pow")) {
        int64_t r = 1;
        for (int64_t k = 0; k < y; k++) r *= x;
        return r;
    }
    return (int64_t)ref_binary_f(op, (double)x, (double)y);
}

/* Runs op on every shape pair for one dtype and compares with the reference. */
static void check_binary(const char *op, int dtype, double lo, double hi, bool nonzero_b)
{
    for (int p = 0; p < N_PAIRS; p++) {
        ductile_layer *L = make_layer(op, 13, 2, 0);
        dt_view in[2];
        in[0] = make_view(dtype, pairs[p].rank_a, pairs[p].a, lo, hi);
        in[1] = make_view(dtype, pairs[p].rank_b, pairs[p].b, lo, hi);
        if (nonzero_b) {
            int64_t n = dt_view_count(&in[1]);
            for (int64_t i = 0; i < n; i++) {
                if (dtype == DUCTILE_INT64 && ((int64_t *)in[1].data)[i] == 0) ((int64_t *)in[1].data)[i] = 3;
                if (dtype == DUCTILE_INT32 && ((int32_t *)in[1].data)[i] == 0) ((int32_t *)in[1].data)[i] = -3;
                if (dtype == DUCTILE_INT8 && ((int8_t *)in[1].data)[i] == 0) ((int8_t *)in[1].data)[i] = -3;
                if (dtype == DUCTILE_UINT16 && ((uint16_t *)in[1].data)[i] == 0) ((uint16_t *)in[1].data)[i] = 3;
            }
        }
        dt_view out;
        ductile_status st = run_op(L, in, &out, p % 2 ? pool : NULL);
        CHECK_EQ_INT(st, DUCTILE_OK);
        if (st) {
            fprintf(stderr, "%s %s pair %d: %s\n", op, ductile_dtype_name((ductile_dtype)dtype), p,
                    dt_last_error());
            free_views(in, 2);
            continue;
        }
        dt_view want_shape;
        CHECK_EQ_INT(dt_broadcast(&in[0], &in[1], &want_shape), DUCTILE_OK);
        CHECK_EQ_INT(out.rank, want_shape.rank);
        for (int d = 0; d < out.rank; d++) CHECK_EQ_INT(out.dims[d], want_shape.dims[d]);
        int64_t n = dt_view_count(&out), bad = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t ia = bcast_index(&in[0], &out, i), ib = bcast_index(&in[1], &out, i);
            bool ok;
            double got = get_f(&out, i), want;
            if (is_int_type(dtype)) {
                int64_t w = ref_binary_i(op, get_i(&in[0], ia), get_i(&in[1], ib));
                if (out.dtype == dtype) w = wrap_to(dtype, w);
                ok = get_i(&out, i) == w;
                want = (double)w;
            } else {
                want = ref_binary_f(op, get_f(&in[0], ia), get_f(&in[1], ib));
                if (dtype == DUCTILE_FLOAT32 && out.dtype == DUCTILE_FLOAT32) want = (float)want;
                ok = close_enough(got, want, dtype == DUCTILE_FLOAT32 ? 1e-6 : 1e-12);
            }
            if (!ok) {
                if (!bad)
                    fprintf(stderr, "%s %s pair %d element %lld: got %.17g want %.17g\n", op,
                            ductile_dtype_name((ductile_dtype)dtype), p, (long long)i, got, want);
                bad++;
            }
        }
        CHECK_EQ_INT(bad, 0);
        free_views(in, 2);
        free(out.data);
    }
}

static void test_binary_arithmetic_broadcasts_like_numpy(void)
{
    static const char *ops[] = {"Add", "Sub", "Mul", "Div", "Max", "Min"};
    static const int types[] = {DUCTILE_FLOAT32, DUCTILE_FLOAT64, DUCTILE_INT32, DUCTILE_INT64};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
            check_binary(ops[o], types[t], -50, 50, true);
    check_binary("Pow", DUCTILE_FLOAT32, 0.1, 3, false);
    check_binary("Pow", DUCTILE_FLOAT64, 0.1, 3, false);
    check_binary("Pow", DUCTILE_INT64, 0, 5, false);
    check_binary("Pow", DUCTILE_INT32, 0, 5, false);
    /* the narrow and unsigned integer types (Mul and Add wrap) */
    static const char *iops[] = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Less", "Equal"};
    for (size_t o = 0; o < sizeof iops / sizeof iops[0]; o++) {
        check_binary(iops[o], DUCTILE_INT8, -100, 100, true);
        check_binary(iops[o], DUCTILE_UINT16, 0, 65535, true);
    }
    check_binary("Add", DUCTILE_UINT8, 0, 255, false);
    check_binary("Mul", DUCTILE_INT16, -30000, 30000, false);
    check_binary("Max", DUCTILE_UINT32, 0, 4e9, false);
    check_binary("Greater", DUCTILE_UINT64, 0, 1e18, false);
}

static void test_comparisons_and_logic_give_bool(void)
{
    static const char *cmp[] = {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"};
    static const int types[] = {DUCTILE_FLOAT32, DUCTILE_FLOAT64, DUCTILE_INT32, DUCTILE_INT64};
    for (size_t o = 0; o < sizeof cmp / sizeof cmp[0]; o++)
        for (size_t t = 0; t < 4; t++) check_binary(cmp[o], types[t], -3, 3, false);
    check_binary("Equal", DUCTILE_BOOL, 0, 1, false);
    check_binary("And", DUCTILE_BOOL, 0, 1, false);
    check_binary("Or", DUCTILE_BOOL, 0, 1, false);
    check_binary("Xor", DUCTILE_BOOL, 0, 1, false);
}

static dt_view vec_i64(int n, const int64_t *v)
{
    int64_t d[1] = {n};
    dt_view x = make_view(DUCTILE_INT64, 1, d, 0, 0);
    memcpy(x.data, v, sizeof *v * (size_t)n);
    return x;
}

static void test_integer_div_truncates_and_refuses_zero(void)
{
    ductile_layer *L = make_layer("Div", 13, 2, 0);
    dt_view in[2] = {vec_i64(5, (int64_t[]){7, -7, 7, -7, INT64_MIN}),
                     vec_i64(5, (int64_t[]){2, 2, -2, -2, -1})};
    dt_view out;
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    int64_t *o = out.data;
    CHECK(o[0] == 3 && o[1] == -3 && o[2] == -3 && o[3] == 3);
    CHECK_EQ_INT(o[4], INT64_MIN); /* wraps instead of trapping */
    free(out.data);
    ((int64_t *)in[1].data)[3] = 0;
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dt_last_error(), "holds 0 at element 3: integer division by zero") != NULL);
    free(out.data);
    free_views(in, 2);
}

static void test_pow_with_other_exponent_types(void)
{
    /* float base, int64 exponent (ONNX Pow's T1 may differ from T) */
    ductile_layer *L = make_layer("Pow", 15, 2, 0);
    int64_t d3[1] = {3};
    dt_view in[2];
    in[0] = make_view(DUCTILE_FLOAT32, 1, d3, 0, 0);
    memcpy(in[0].data, (float[]){2.0f, -3.0f, 0.5f}, 3 * sizeof(float));
    in[1] = vec_i64(3, (int64_t[]){3, 2, -1});
    dt_view out;
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK_EQ_INT(out.dtype, DUCTILE_FLOAT32);
    float *o = out.data;
    CHECK(o[0] == 8.0f && o[1] == 9.0f && o[2] == 2.0f);
    free(out.data);
    free(in[1].data);
    /* scalar exponent 2 (the multiply path) */
    float two = 2.0f;
    in[1] = (dt_view){DUCTILE_FLOAT32, 0, {0}, &two};
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    o = out.data;
    CHECK(o[0] == 4.0f && o[1] == 9.0f && o[2] == 0.25f);
    free(out.data);
    free(in[0].data);
    /* integer powers: negative exponents truncate like onnxruntime */
    in[0] = vec_i64(5, (int64_t[]){2, 1, -1, -1, 3});
    in[1] = vec_i64(5, (int64_t[]){-1, -5, -3, 62, 40});
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    int64_t *oi = out.data;
    CHECK(oi[0] == 0 && oi[1] == 1 && oi[2] == -1 && oi[3] == 1);
    CHECK_EQ_INT(oi[4], (int64_t)12157665459056928801ull); /* 3^40 wraps mod 2^64 */
    free(out.data);
    free_views(in, 2);
}

static void test_max_min_propagate_nan(void)
{
    int64_t d[1] = {3};
    dt_view in[2] = {make_view(DUCTILE_FLOAT32, 1, d, 0, 0), make_view(DUCTILE_FLOAT32, 1, d, 0, 0)};
    memcpy(in[0].data, (float[]){NAN, 1.0f, NAN}, 3 * sizeof(float));
    memcpy(in[1].data, (float[]){1.0f, NAN, NAN}, 3 * sizeof(float));
    static const char *ops[] = {"Max", "Min"};
    for (int k = 0; k < 2; k++) {
        ductile_layer *L = make_layer(ops[k], 13, 2, 0);
        dt_view out;
        CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
        float *o = out.data;
        CHECK(isnan(o[0]) && isnan(o[1]) && isnan(o[2]));
        free(out.data);
    }
    free_views(in, 2);
}

/* ---- variadic ---- */

static void test_variadic_ops_with_one_to_four_inputs(void)
{
    static const char *ops[] = {"Sum", "Mean", "Max", "Min"};
    static const int64_t shapes[4][3] = {{4, 1, 6}, {5, 1}, {1}, {4, 5, 6}};
    static const int ranks[4] = {3, 2, 1, 3};
    for (int o = 0; o < 4; o++) {
        for (int n = 1; n <= 4; n++) {
            ductile_layer *L = make_layer(ops[o], 13, n, 0);
            dt_view in[4], out;
            for (int k = 0; k < n; k++) in[k] = make_view(DUCTILE_FLOAT32, ranks[k], shapes[k], -5, 5);
            CHECK_EQ_INT(run_op(L, in, &out, n == 3 ? pool : NULL), DUCTILE_OK);
            int64_t cnt = dt_view_count(&out), bad = 0;
            for (int64_t i = 0; i < cnt; i++) {
                double acc = get_f(&in[0], bcast_index(&in[0], &out, i));
                for (int k = 1; k < n; k++) {
                    double v = get_f(&in[k], bcast_index(&in[k], &out, i));
                    if (o <= 1) acc += v;
                    else if (o == 2) acc = v > acc ? v : acc;
                    else acc = v < acc ? v : acc;
                }
                if (o == 1) acc /= n;
                if (!close_enough(get_f(&out, i), acc, 1e-6)) bad++;
            }
            CHECK_EQ_INT(bad, 0);
            if (n == 4) CHECK_EQ_INT(cnt, 120);
            free_views(in, n);
            free(out.data);
        }
    }
}

/* ---- Where ---- */

static void test_where_broadcasts_three_ways(void)
{
    static const int types[] = {DUCTILE_FLOAT32, DUCTILE_INT64, DUCTILE_BOOL, DUCTILE_INT32};
    static const struct { int r[3]; int64_t d[3][4]; } cases[] = {
        {{3, 3, 3}, {{3, 5, 7}, {3, 5, 7}, {3, 5, 7}}},
        {{2, 3, 0}, {{5, 7}, {3, 1, 7}, {0}}},
        {{4, 0, 4}, {{2, 1, 1, 9}, {0}, {2, 3, 40, 9}}},
        {{1, 4, 1}, {{1}, {2, 4, 64, 64}, {64}}},
        {{4, 4, 4}, {{1, 1, 128, 128}, {1, 1, 1, 1}, {2, 4, 128, 128}}},
    };
    for (size_t t = 0; t < 4; t++) {
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            ductile_layer *L = make_layer("Where", 16, 3, 0);
            dt_view in[3], out;
            in[0] = make_view(DUCTILE_BOOL, cases[c].r[0], cases[c].d[0], 0, 1);
            in[1] = make_view(types[t], cases[c].r[1], cases[c].d[1], -100, 100);
            in[2] = make_view(types[t], cases[c].r[2], cases[c].d[2], -100, 100);
            CHECK_EQ_INT(run_op(L, in, &out, c % 2 ? pool : NULL), DUCTILE_OK);
            CHECK_EQ_INT(out.dtype, types[t]);
            int64_t n = dt_view_count(&out), bad = 0;
            size_t es = ductile_dtype_size((ductile_dtype)types[t]);
            for (int64_t i = 0; i < n; i++) {
                bool cond = ((bool *)in[0].data)[bcast_index(&in[0], &out, i)];
                const dt_view *src = cond ? &in[1] : &in[2];
                const char *want = (const char *)src->data + bcast_index(src, &out, i) * (int64_t)es;
                if (memcmp((char *)out.data + i * (int64_t)es, want, es) != 0) bad++;
            }
            CHECK_EQ_INT(bad, 0);
            free_views(in, 3);
            free(out.data);
        }
    }
    /* the condition must be bool, x and y must agree */
    int64_t d[1] = {3};
    ductile_layer *L = make_layer("Where", 16, 3, 0);
    dt_view in[3] = {make_view(DUCTILE_BOOL, 1, d, 0, 1), make_view(DUCTILE_FLOAT32, 1, d, 0, 1),
                     make_view(DUCTILE_INT64, 1, d, 0, 1)};
    dt_view out;
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_ERR_SHAPE);
    CHECK(strstr(dt_last_error(), "_b') is float32 but input 2 ('Where_") != NULL);
    free_views(in, 3);
}

/* ---- Clip ---- */

static void test_clip_bounds_from_attributes_and_inputs(void)
{
    int64_t d[1] = {6};
    float x[6] = {-10.0f, -1.0f, 0.0f, 2.5f, 9.0f, NAN};
    /* opset 6: attributes */
    ductile_layer *L = make_layer("Clip", 6, 1, 2);
    set_float_attr(L, 0, "min", -1.5f);
    set_float_attr(L, 1, "max", 3.0f);
    dt_view in[3], out;
    in[0] = make_view(DUCTILE_FLOAT32, 1, d, 0, 0);
    memcpy(in[0].data, x, sizeof x);
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    float *o = out.data;
    CHECK(o[0] == -1.5f && o[1] == -1.0f && o[2] == 0.0f && o[3] == 2.5f && o[4] == 3.0f);
    CHECK(isnan(o[5]));
    free(out.data);
    /* opset 13: rank-0 inputs, ReLU6 */
    float lo = 0.0f, hi = 6.0f;
    L = make_layer("Clip", 13, 3, 0);
    in[1] = (dt_view){DUCTILE_FLOAT32, 0, {0}, &lo};
    in[2] = (dt_view){DUCTILE_FLOAT32, 0, {0}, &hi};
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    o = out.data;
    CHECK(o[0] == 0.0f && o[1] == 0.0f && o[3] == 2.5f && o[4] == 6.0f);
    free(out.data);
    /* omitted min: only the max applies */
    L = make_layer("Clip", 13, 3, 0);
    L->in[1] = NULL;
    in[1] = (dt_view){0, -1, {0}, NULL};
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    o = out.data;
    CHECK(o[0] == -10.0f && o[4] == 6.0f);
    free(out.data);
    /* int64 */
    free(in[0].data);
    in[0] = vec_i64(4, (int64_t[]){-5, 0, 5, 50});
    int64_t ilo = -2, ihi = 10;
    in[1] = (dt_view){DUCTILE_INT64, 1, {1}, &ilo};
    in[2] = (dt_view){DUCTILE_INT64, 0, {0}, &ihi};
    L = make_layer("Clip", 13, 3, 0);
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    int64_t *oi = out.data;
    CHECK(oi[0] == -2 && oi[1] == 0 && oi[2] == 5 && oi[3] == 10);
    free(out.data);
    /* a bound that is not a scalar */
    int64_t two[2] = {1, 2};
    in[1] = (dt_view){DUCTILE_INT64, 1, {2}, two};
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_ERR_SHAPE);
    CHECK(strstr(dt_last_error(), "input 1 (min, 'Clip_") != NULL);
    CHECK(strstr(dt_last_error(), "has shape [2]; expected a scalar") != NULL);
    free(in[0].data);
}

/* ---- Cast ---- */

static void cast_f32(const float *x, int n, int to, void *want, size_t want_bytes)
{
    ductile_layer *L = make_layer("Cast", 13, 1, 1);
    set_int_attr(L, 0, "to", to);
    int64_t d[1] = {n};
    dt_view in = make_view(DUCTILE_FLOAT32, 1, d, 0, 0), out;
    memcpy(in.data, x, sizeof *x * (size_t)n);
    CHECK_EQ_INT(run_op(L, &in, &out, NULL), DUCTILE_OK);
    CHECK_EQ_INT(out.dtype, to);
    bool same = memcmp(out.data, want, want_bytes) == 0;
    if (!same) fprintf(stderr, "Cast float32 -> %s differs\n", ductile_dtype_name((ductile_dtype)to));
    CHECK(same);
    free(in.data);
    free(out.data);
}

static void test_cast_matches_onnxruntime(void)
{
    /* Expected values are onnxruntime 1.30's for the same inputs. */
    const float x[8] = {-2.7f, 2.7f, 300.5f, -300.5f, 1e10f, NAN, 0.4f, -0.0f};
    cast_f32(x, 8, DUCTILE_INT8, (int8_t[]){-2, 2, 44, -44, 0, 0, 0, 0}, 8);
    cast_f32(x, 8, DUCTILE_UINT8, (uint8_t[]){254, 2, 44, 212, 0, 0, 0, 0}, 8);
    cast_f32(x, 8, DUCTILE_INT16, (int16_t[]){-2, 2, 300, -300, 0, 0, 0, 0}, 16);
    cast_f32(x, 8, DUCTILE_INT32, (int32_t[]){-2, 2, 300, -300, INT32_MIN, INT32_MIN, 0, 0}, 32);
    cast_f32(x, 8, DUCTILE_INT64, (int64_t[]){-2, 2, 300, -300, 10000000000, INT64_MIN, 0, 0}, 64);
    cast_f32(x, 8, DUCTILE_BOOL, (bool[]){1, 1, 1, 1, 1, 1, 1, 0}, 8);
    /* float16: rounding to nearest even, overflow to inf, subnormals */
    const float h[8] = {1e5f, -1e5f, 65504.0f, 65520.0f, 1e-8f, 6e-8f, 1.0f / 3.0f, 2049.0f};
    cast_f32(h, 8, DUCTILE_FLOAT16,
             (uint16_t[]){0x7c00, 0xfc00, 0x7bff, 0x7c00, 0x0000, 0x0001, 0x3555, 0x6800}, 16);
    cast_f32(x, 8, DUCTILE_FLOAT64,
             (double[]){-2.7f, 2.7f, 300.5f, -300.5f, 1e10f, NAN, 0.4f, -0.0f}, 64);

    /* int64 -> float32, bool -> float32, int64 -> int32 (wraps), float16 -> float32 */
    ductile_layer *L = make_layer("Cast", 13, 1, 1);
    set_int_attr(L, 0, "to", DUCTILE_FLOAT32);
    dt_view in = vec_i64(3, (int64_t[]){-5, ((int64_t)1 << 40) + 1, 7}), out;
    CHECK_EQ_INT(run_op(L, &in, &out, NULL), DUCTILE_OK);
    float *o = out.data;
    CHECK(o[0] == -5.0f && o[1] == 1099511627776.0f && o[2] == 7.0f);
    free(out.data);
    in.dtype = DUCTILE_BOOL;
    memcpy(in.data, (uint8_t[]){1, 0, 2}, 3);
    CHECK_EQ_INT(run_op(L, &in, &out, NULL), DUCTILE_OK);
    o = out.data;
    CHECK(o[0] == 1.0f && o[1] == 0.0f && o[2] == 1.0f);
    free(out.data);
    in.dtype = DUCTILE_FLOAT16;
    memcpy(in.data, (uint16_t[]){0x3c00, 0xc000, 0x0001, 0x7c00, 0x7bff, 0x3555}, 12);
    in.dims[0] = 6;
    CHECK_EQ_INT(run_op(L, &in, &out, NULL), DUCTILE_OK);
    o = out.data;
    CHECK(o[0] == 1.0f && o[1] == -2.0f && o[2] == 5.9604644775390625e-8f && isinf(o[3]) &&
          o[4] == 65504.0f && o[5] == 0.333251953125f);
    free(out.data);
    free(in.data);

    L = make_layer("Cast", 13, 1, 1);
    set_int_attr(L, 0, "to", DUCTILE_INT32);
    in = vec_i64(2, (int64_t[]){((int64_t)1 << 32) + 5, -1});
    CHECK_EQ_INT(run_op(L, &in, &out, NULL), DUCTILE_OK);
    CHECK(((int32_t *)out.data)[0] == 5 && ((int32_t *)out.data)[1] == -1);
    free(out.data);
    free(in.data);

    /* a large float32 -> int64 cast runs in parallel and keeps every element */
    int64_t d[2] = {300, 301};
    L = make_layer("Cast", 13, 1, 1);
    set_int_attr(L, 0, "to", DUCTILE_INT64);
    in = make_view(DUCTILE_FLOAT32, 2, d, -1e6, 1e6);
    CHECK_EQ_INT(run_op(L, &in, &out, pool), DUCTILE_OK);
    int64_t bad = 0;
    for (int64_t i = 0; i < 300 * 301; i++)
        if (((int64_t *)out.data)[i] != (int64_t)((float *)in.data)[i]) bad++;
    CHECK_EQ_INT(bad, 0);
    free(out.data);
    free(in.data);
}

static void test_cast_check_refuses_unknown_targets_and_bitcast_to_string(void)
{
    /* Cast takes string targets (ops/strings.h); BitCast does not, nor does Cast take 14. */
    ductile_layer *L = make_layer("Cast", 13, 1, 1);
    set_int_attr(L, 0, "to", DUCTILE_STRING);
    CHECK_EQ_INT(opdef("Cast")->check(L), DUCTILE_OK);
    set_int_attr(L, 0, "to", 14);
    CHECK_EQ_INT(opdef("Cast")->check(L), DUCTILE_ERR_UNSUPPORTED);
    CHECK(strstr(dt_last_error(), "attribute 'to' = 14 (undefined) is not supported") != NULL);
    L = make_layer("BitCast", 26, 1, 1);
    set_int_attr(L, 0, "to", DUCTILE_STRING);
    CHECK_EQ_INT(opdef("BitCast")->check(L), DUCTILE_ERR_UNSUPPORTED);
    CHECK(strstr(dt_last_error(), "attribute 'to' = 8 (string) is not supported") != NULL);
    L = make_layer("Cast", 13, 1, 0);
    CHECK_EQ_INT(opdef("Cast")->check(L), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dt_last_error(), "attribute 'to'") != NULL);
}

/* ---- infer errors ---- */

static void test_infer_names_mismatched_inputs(void)
{
    ductile_layer *L = make_layer("Add", 13, 2, 0);
    int64_t d[1] = {3};
    dt_view in[2] = {make_view(DUCTILE_FLOAT32, 1, d, 0, 1), make_view(DUCTILE_INT64, 1, d, 0, 1)};
    dt_view out;
    CHECK_EQ_INT(opdef("Add")->infer(L, in, &out), DUCTILE_ERR_SHAPE);
    char want[200];
    snprintf(want, sizeof want, "input 0 ('%s') is float32 but input 1 ('%s') is int64",
             L->in[0]->name, L->in[1]->name);
    CHECK_EQ_STR(dt_last_error(), want);

    in[1].dtype = DUCTILE_FLOAT32;
    in[1].dims[0] = 4;
    CHECK_EQ_INT(opdef("Add")->infer(L, in, &out), DUCTILE_ERR_SHAPE);
    CHECK(strstr(dt_last_error(), "input 1 ('Add_") != NULL);
    CHECK(strstr(dt_last_error(), "shapes [3] and [4] cannot be broadcast") != NULL);

    L = make_layer("Mul", 13, 1, 0);
    CHECK_EQ_INT(opdef("Mul")->check(L), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(dt_last_error(), "expected 2 inputs, got 1");

    L = make_layer("And", 13, 2, 0);
    in[0].dtype = DUCTILE_FLOAT32;
    in[1].dims[0] = 3;
    CHECK_EQ_INT(opdef("And")->infer(L, in, &out), DUCTILE_ERR_UNSUPPORTED);
    CHECK(strstr(dt_last_error(), "has dtype float32; And supports bool") != NULL);
    free_views(in, 2);
}

/* ---- ops and dtypes added for ONNX's node tests ---- */

static void set_str_attr(ductile_layer *L, int i, const char *name, const char *v)
{
    L->attrs[i].name = name;
    L->attrs[i].type = DT_ATTR_STRING;
    L->attrs[i].s = v;
    L->attrs[i].s_len = strlen(v);
}

/* A rank-1 view of n elements copied from vals (of the dtype's C type). */
static dt_view vec_of(int dtype, int n, const void *vals)
{
    int64_t d[1] = {n};
    dt_view v = make_view(dtype, 1, d, 0, 0);
    memcpy(v.data, vals, (size_t)n * ductile_dtype_size((ductile_dtype)dtype));
    return v;
}

/* Runs a unary op on float32 and float64 inputs and compares with want(x) in double. */
static void check_unary_d(ductile_layer *L, const double *x, const double *want, int n, double tol)
{
    for (int t = 0; t < 2; t++) {
        int dtype = t ? DUCTILE_FLOAT64 : DUCTILE_FLOAT32;
        int64_t d[1] = {n};
        dt_view in = make_view(dtype, 1, d, 0, 0), out;
        for (int i = 0; i < n; i++) {
            if (t) ((double *)in.data)[i] = x[i];
            else ((float *)in.data)[i] = (float)x[i];
        }
        CHECK_EQ_INT(run_op(L, &in, &out, NULL), DUCTILE_OK);
        for (int i = 0; i < n; i++) {
            double w = t ? want[i] : (double)(float)want[i];
            if (!close_enough(get_f(&out, i), w, tol)) {
                fprintf(stderr, "%s(%g) as %s: got %.9g, want %.9g\n", L->op_type, x[i],
                        ductile_dtype_name((ductile_dtype)dtype), get_f(&out, i), w);
                CHECK(!"unary op differs from the reference");
            }
        }
        free(in.data);
        free(out.data);
    }
}

static void test_math_and_activation_ops_match_libm(void)
{
    enum { N = 9 };
    const double x[N] = {-3.5, -2.5, -1.0, -0.5, 0.0, 0.25, 0.5, 1.5, 2.5};
    const double u[N] = {-0.99, -0.7, -0.5, -0.1, 0.0, 0.2, 0.5, 0.8, 0.99}; /* |x| < 1 */
    static const struct { const char *op; double (*f)(double); bool unit; } libm[] = {
        {"Sin", sin, false}, {"Cos", cos, false}, {"Tan", tan, false}, {"Atan", atan, false},
        {"Sinh", sinh, false}, {"Cosh", cosh, false}, {"Asinh", asinh, false},
        {"Asin", asin, true}, {"Acos", acos, true}, {"Atanh", atanh, true},
    };
    double want[N];
    for (size_t k = 0; k < sizeof libm / sizeof libm[0]; k++) {
        const double *in = libm[k].unit ? u : x;
        for (int i = 0; i < N; i++) want[i] = libm[k].f(in[i]);
        check_unary_d(make_layer(libm[k].op, 22, 1, 0), in, want, N, 1e-6);
    }
    const double big[3] = {1.0, 2.0, 10.0};
    check_unary_d(make_layer("Acosh", 22, 1, 0), big, (double[]){0.0, acosh(2.0), acosh(10.0)}, 3, 1e-6);

    /* Round is half to even; Sign keeps 0 */
    check_unary_d(make_layer("Round", 22, 1, 0), x,
                  (double[]){-4, -2, -1, -0.0, 0, 0, 0, 2, 2}, N, 0);
    check_unary_d(make_layer("Sign", 13, 1, 0), x, (double[]){-1, -1, -1, -1, 0, 1, 1, 1, 1}, N, 0);

    ductile_layer *L = make_layer("Celu", 12, 1, 1);
    set_float_attr(L, 0, "alpha", 2.0f);
    for (int i = 0; i < N; i++) want[i] = fmax(0, x[i]) + fmin(0, 2.0 * expm1(x[i] / 2.0));
    check_unary_d(L, x, want, N, 1e-6);
    L = make_layer("Selu", 6, 1, 0);
    for (int i = 0; i < N; i++)
        want[i] = x[i] > 0 ? 1.0507009873554805 * x[i] : 1.0507009873554805 * 1.6732632423543772 * expm1(x[i]);
    check_unary_d(L, x, want, N, 1e-6);
    for (int i = 0; i < N; i++) want[i] = x[i] / (1 + fabs(x[i]));
    check_unary_d(make_layer("Softsign", 22, 1, 0), x, want, N, 1e-6);
    for (int i = 0; i < N; i++) want[i] = x[i] * tanh(log1p(exp(x[i])));
    check_unary_d(make_layer("Mish", 22, 1, 0), x, want, N, 1e-6);
    for (int i = 0; i < N; i++) want[i] = 0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0)));
    check_unary_d(make_layer("Gelu", 20, 1, 0), x, want, N, 1e-6);
    L = make_layer("Gelu", 20, 1, 1);
    set_str_attr(L, 0, "approximate", "tanh");
    for (int i = 0; i < N; i++)
        want[i] = 0.5 * x[i] * (1 + tanh(sqrt(2 / M_PI) * (x[i] + 0.044715 * pow(x[i], 3))));
    check_unary_d(L, x, want, N, 1e-6);
    L = make_layer("Swish", 24, 1, 1);
    set_float_attr(L, 0, "alpha", 0.5f);
    for (int i = 0; i < N; i++) want[i] = x[i] / (1 + exp(-0.5 * x[i]));
    check_unary_d(L, x, want, N, 1e-6);
    L = make_layer("ThresholdedRelu", 22, 1, 1);
    set_float_attr(L, 0, "alpha", 0.5f);
    check_unary_d(L, x, (double[]){0, 0, 0, 0, 0, 0, 0, 1.5, 2.5}, N, 0);
    L = make_layer("Shrink", 9, 1, 2);
    set_float_attr(L, 0, "lambd", 1.0f);
    set_float_attr(L, 1, "bias", 0.5f);
    check_unary_d(L, x, (double[]){-3, -2, 0, 0, 0, 0, 0, 1, 2}, N, 0);

    L = make_layer("Gelu", 20, 1, 1);
    set_str_attr(L, 0, "approximate", "erf");
    CHECK_EQ_INT(opdef("Gelu")->check(L), DUCTILE_ERR_UNSUPPORTED);
    CHECK(strstr(dt_last_error(), "attribute 'approximate' = 'erf' is not supported") != NULL);
}

/* float32 Gelu (the polynomial path) on a dense grid: relative error bounded where erf is
 * near -1 too (the tail that 1 + erf would cancel), and exact limits at the ends. */
static void test_gelu_float_dense_grid(void)
{
    enum { N = 2401 };
    int64_t d[1] = {N + 4};
    ductile_layer *L = make_layer("Gelu", 20, 1, 0);
    dt_view in = make_view(DUCTILE_FLOAT32, 1, d, 0, 0), out;
    float *x = in.data;
    for (int i = 0; i < N; i++) x[i] = -12.0f + (float)i * 0.01f;
    x[N] = INFINITY, x[N + 1] = NAN, x[N + 2] = 1e30f, x[N + 3] = -1e30f;
    CHECK_EQ_INT(run_op(L, &in, &out, NULL), DUCTILE_OK);
    const float *y = out.data;
    double worst_rel = 0, worst_abs = 0;
    for (int i = 0; i < N; i++) {
        double w = 0.5 * (double)x[i] * erfc(-(double)x[i] / sqrt(2.0)), e = fabs(y[i] - w);
        if (fabs((double)x[i]) < 5.6) worst_rel = fmax(worst_rel, e / fabs(w) * (w != 0));
        else worst_abs = fmax(worst_abs, e);
    }
    /* measured: 2.7e-6 and 6e-8 (two fits of erf, to session 18); one fit of log erfc since:
     * 3.2e-6 and 6e-8 (5.4e-6 over every float of [-12, 12]) */
    CHECK(worst_rel <= 1e-5);
    CHECK(worst_abs <= 1e-7);
    CHECK(y[N] == INFINITY);
    CHECK(isnan(y[N + 1]));
    CHECK(y[N + 2] == 1e30f);
    CHECK(y[N + 3] == 0.0f);
    /* Split over two threads (chunks of DT_EW_GRAIN_COSTLY, 2048: this grid is two, cut at
     * an odd element): the same bits. */
    dt_pool *two;
    dt_view out2;
    CHECK_EQ_INT(dt_pool_create(2, &two), DUCTILE_OK);
    CHECK_EQ_INT(run_op(L, &in, &out2, two), DUCTILE_OK);
    CHECK(memcmp(out.data, out2.data, sizeof(float) * (N + 4)) == 0);
    dt_pool_free(two);
    free(out2.data);
    free(in.data);
    free(out.data);
}

/* float32 Gelu on every 2039th float of [-12, 12] by bit pattern (~1M values, an odd count,
 * so no vector lane sees only one branch of the selects), both signs of every binade down to
 * denormals: relative error 1e-5 where Gelu is above 1e-30 in size, absolute 1e-7 in the left
 * tail, and |y| <= |x| with y of x's sign or 0 everywhere (Phi in [0, 1]). */
static void test_gelu_float_sweeps_the_floats(void)
{
    enum { STRIDE = 2039 };
    const uint32_t top = 0x41400000u; /* 12.0f */
    int64_t n = 2 * (int64_t)(top / STRIDE + 1);
    int64_t d[1] = {n};
    ductile_layer *L = make_layer("Gelu", 20, 1, 0);
    dt_view in = make_view(DUCTILE_FLOAT32, 1, d, 0, 0), out;
    float *x = in.data;
    int64_t k = 0;
    for (uint32_t u = 0; u <= top && k + 1 < n; u += STRIDE) {
        float f;
        memcpy(&f, &u, sizeof f);
        x[k++] = f;
        x[k++] = -f;
    }
    CHECK_EQ_INT(run_op(L, &in, &out, NULL), DUCTILE_OK);
    const float *y = out.data;
    int bad = 0;
    for (int64_t i = 0; i < k; i++) {
        double w = 0.5 * (double)x[i] * erfc(-(double)x[i] / sqrt(2.0)), e = fabs(y[i] - w);
        bool ok = fabs((double)y[i]) <= fabs((double)x[i]) && !(y[i] * x[i] < 0.0f);
        if (x[i] > -5.6f && fabs(w) > 1e-30) ok = ok && e <= 1e-5 * fabs(w);
        else if (fabs(w) > 1e-30) ok = ok && e <= 1e-7;
        if (!ok && bad++ < 3) fprintf(stderr, "Gelu(%.9g) = %.9g, want %.9g\n", (double)x[i], (double)y[i], w);
    }
    CHECK_EQ_INT(bad, 0);
    free(in.data);
    free(out.data);
}

static void test_isinf_detects_each_sign_on_request(void)
{
    const float f[5] = {1.0f, INFINITY, -INFINITY, NAN, 0.0f};
    for (int mode = 0; mode < 3; mode++) {
        ductile_layer *L = make_layer("IsInf", 20, 1, 2);
        set_int_attr(L, 0, "detect_positive", mode != 2);
        set_int_attr(L, 1, "detect_negative", mode != 1);
        dt_view in = vec_of(DUCTILE_FLOAT32, 5, f), out;
        CHECK_EQ_INT(run_op(L, &in, &out, NULL), DUCTILE_OK);
        CHECK_EQ_INT(out.dtype, DUCTILE_BOOL);
        bool *b = out.data;
        CHECK(!b[0] && b[1] == (mode != 2) && b[2] == (mode != 1) && !b[3] && !b[4]);
        free(in.data);
        free(out.data);
    }
}

static void test_narrow_integer_types_wrap_like_onnxruntime(void)
{
    ductile_layer *L = make_layer("Add", 14, 2, 0);
    dt_view in[2] = {vec_of(DUCTILE_INT8, 3, (int8_t[]){100, -100, 5}),
                     vec_of(DUCTILE_INT8, 3, (int8_t[]){100, -100, -7})};
    dt_view out;
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(memcmp(out.data, (int8_t[]){-56, 56, -2}, 3) == 0);
    free(out.data);
    free_views(in, 2);

    L = make_layer("Mul", 14, 2, 0);
    in[0] = vec_of(DUCTILE_UINT16, 2, (uint16_t[]){65535, 300});
    in[1] = vec_of(DUCTILE_UINT16, 2, (uint16_t[]){65535, 300});
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(((uint16_t *)out.data)[0] == 1 && ((uint16_t *)out.data)[1] == (uint16_t)90000);
    free(out.data);
    free_views(in, 2);

    L = make_layer("Div", 14, 2, 0);
    in[0] = vec_of(DUCTILE_INT8, 3, (int8_t[]){-128, 7, -7});
    in[1] = vec_of(DUCTILE_INT8, 3, (int8_t[]){-1, -2, 2});
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(memcmp(out.data, (int8_t[]){-128, -3, -3}, 3) == 0);
    free(out.data);
    ((int8_t *)in[1].data)[2] = 0;
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dt_last_error(), "holds 0 at element 2: integer division by zero") != NULL);
    free(out.data);
    free_views(in, 2);

    /* uint64 compares as unsigned, above INT64_MAX too */
    L = make_layer("Greater", 13, 2, 0);
    in[0] = vec_of(DUCTILE_UINT64, 2, (uint64_t[]){UINT64_MAX, 1});
    in[1] = vec_of(DUCTILE_UINT64, 2, (uint64_t[]){1, UINT64_MAX});
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(((bool *)out.data)[0] && !((bool *)out.data)[1]);
    free(out.data);
    free_views(in, 2);

    L = make_layer("Max", 13, 2, 0);
    in[0] = vec_of(DUCTILE_UINT32, 2, (uint32_t[]){4000000000u, 3});
    in[1] = vec_of(DUCTILE_UINT32, 2, (uint32_t[]){5, 4});
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(((uint32_t *)out.data)[0] == 4000000000u && ((uint32_t *)out.data)[1] == 4);
    free(out.data);
    free_views(in, 2);

    /* unary: Abs of int8 MIN wraps; Sign, BitwiseNot */
    L = make_layer("Abs", 13, 1, 0);
    in[0] = vec_of(DUCTILE_INT8, 3, (int8_t[]){-128, -5, 6});
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(memcmp(out.data, (int8_t[]){-128, 5, 6}, 3) == 0);
    free(out.data);
    L = make_layer("Sign", 13, 1, 0);
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(memcmp(out.data, (int8_t[]){-1, -1, 1}, 3) == 0);
    free(out.data);
    free(in[0].data);
    L = make_layer("BitwiseNot", 18, 1, 0);
    in[0] = vec_of(DUCTILE_UINT16, 2, (uint16_t[]){0, 0x00ff});
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(((uint16_t *)out.data)[0] == 0xffff && ((uint16_t *)out.data)[1] == 0xff00);
    free(out.data);
    free(in[0].data);

    /* Clip of int8 with only a max bound */
    L = make_layer("Clip", 13, 3, 0);
    in[0] = vec_of(DUCTILE_INT8, 3, (int8_t[]){-100, 0, 100});
    int8_t hi = 50;
    dt_view cin[3] = {in[0], {DUCTILE_INT8, -1, {0}, NULL}, {DUCTILE_INT8, 0, {0}, &hi}};
    CHECK_EQ_INT(run_op(L, cin, &out, NULL), DUCTILE_OK);
    CHECK(memcmp(out.data, (int8_t[]){-100, 0, 50}, 3) == 0);
    free(out.data);
    free(in[0].data);
}

static void test_mod_follows_numpy_and_c_sign_rules(void)
{
    const int64_t x[6] = {-4, 7, 5, 4, -7, 8}, y[6] = {2, -3, 8, -2, 3, 5};
    ductile_layer *L = make_layer("Mod", 13, 2, 1);
    set_int_attr(L, 0, "fmod", 0);
    dt_view in[2] = {vec_i64(6, x), vec_i64(6, y)}, out;
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(memcmp(out.data, (int64_t[]){0, -2, 5, 0, 2, 3}, 48) == 0);
    free(out.data);
    L = make_layer("Mod", 13, 2, 1);
    set_int_attr(L, 0, "fmod", 1);
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(memcmp(out.data, (int64_t[]){0, 1, 5, 0, -1, 3}, 48) == 0);
    free(out.data);
    free_views(in, 2);

    /* floats: fmod=1 is C's fmod; fmod=0 takes the divisor's sign, x mod inf of the other
     * sign is inf, anything mod 0 is NaN */
    const float fx[5] = {-4.5f, 7.25f, -3.0f, 3.0f, 1.0f}, fy[5] = {2.0f, -2.0f, INFINITY, -INFINITY, 0.0f};
    L = make_layer("Mod", 13, 2, 1);
    set_int_attr(L, 0, "fmod", 0);
    in[0] = vec_of(DUCTILE_FLOAT32, 5, fx);
    in[1] = vec_of(DUCTILE_FLOAT32, 5, fy);
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    float *o = out.data;
    CHECK(o[0] == 1.5f && o[1] == -0.75f && isinf(o[2]) && o[2] > 0 && isinf(o[3]) && o[3] < 0 &&
          isnan(o[4]));
    free(out.data);
    L = make_layer("Mod", 13, 2, 1);
    set_int_attr(L, 0, "fmod", 1);
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    o = out.data;
    CHECK(o[0] == -0.5f && o[1] == 1.25f && o[2] == -3.0f && o[3] == 3.0f && isnan(o[4]));
    free(out.data);
    free_views(in, 2);

    L = make_layer("Mod", 13, 2, 1);
    set_int_attr(L, 0, "fmod", 2);
    CHECK_EQ_INT(opdef("Mod")->check(L), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(dt_last_error(), "attribute 'fmod' = 2; expected 0 or 1");
}

static void test_bitshift_and_bitwise_ops(void)
{
    ductile_layer *L = make_layer("BitShift", 11, 2, 1);
    set_str_attr(L, 0, "direction", "LEFT");
    dt_view in[2] = {vec_of(DUCTILE_INT8, 4, (int8_t[]){1, 3, -1, 5}),
                     vec_of(DUCTILE_INT8, 4, (int8_t[]){7, 6, 8, -1})}, out;
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(memcmp(out.data, (int8_t[]){-128, -64, 0, 0}, 4) == 0); /* wraps; counts outside [0, 8) give 0 */
    free(out.data);
    L = make_layer("BitShift", 11, 2, 1);
    set_str_attr(L, 0, "direction", "RIGHT");
    ((int8_t *)in[0].data)[0] = -128;
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(memcmp(out.data, (int8_t[]){-1, 0, -1, 0}, 4) == 0); /* arithmetic; out of range: the sign */
    free(out.data);
    free_views(in, 2);
    L = make_layer("BitShift", 11, 2, 1);
    set_str_attr(L, 0, "direction", "UP");
    CHECK_EQ_INT(opdef("BitShift")->check(L), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dt_last_error(), "attribute 'direction' = 'UP'") != NULL);

    /* bitwise ops broadcast a [2] operand over [3,2] */
    static const char *ops[] = {"BitwiseAnd", "BitwiseOr", "BitwiseXor"};
    const uint64_t want[3][6] = {{0x0c, 0x00, 0x3c, 0x00, 0x0c, 0x00},
                                 {0xfc, 0xf1, 0xfc, 0xf1, 0xfe, 0xfe},
                                 {0xf0, 0xf1, 0xc0, 0xf1, 0xf2, 0xfe}};
    int64_t d2[2] = {3, 2};
    for (int k = 0; k < 3; k++) {
        L = make_layer(ops[k], 18, 2, 0);
        in[0] = make_view(DUCTILE_UINT64, 2, d2, 0, 0);
        memcpy(in[0].data, (uint64_t[]){0x0c, 0x01, 0x3c, 0x01, 0x0e, 0x0e}, 48);
        in[1] = vec_of(DUCTILE_UINT64, 2, (uint64_t[]){0xfc, 0xf0});
        CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
        CHECK(out.rank == 2 && memcmp(out.data, want[k], 48) == 0);
        free(out.data);
        free_views(in, 2);
    }
}

static void test_half_types_compute_through_float32(void)
{
    /* bfloat16 conversion rounds to nearest even and keeps NaN and infinities */
    extern float dt_bf16_to_float(uint16_t);
    extern uint16_t dt_float_to_bf16(float);
    CHECK_EQ_INT(dt_float_to_bf16(1.0f), 0x3f80);
    CHECK_EQ_INT(dt_float_to_bf16(0.47892547f), 16117);
    CHECK_EQ_INT(dt_float_to_bf16(1.00390625f), 0x3f80);  /* a tie: stays even */
    CHECK_EQ_INT(dt_float_to_bf16(1.01171875f), 0x3f82);  /* a tie: rounds up to even */
    CHECK_EQ_INT(dt_float_to_bf16(-INFINITY), 0xff80);
    CHECK(isnan(dt_bf16_to_float(dt_float_to_bf16(NAN))));

    ductile_layer *L = make_layer("Add", 14, 2, 0);
    dt_view in[2] = {vec_of(DUCTILE_FLOAT16, 3, (uint16_t[]){0x3c00, 0x4000, 0x7bff}),
                     vec_of(DUCTILE_FLOAT16, 1, (uint16_t[]){0x3800})}, out; /* + 0.5 */
    CHECK_EQ_INT(run_op(L, in, &out, pool), DUCTILE_OK);
    CHECK_EQ_INT(out.dtype, DUCTILE_FLOAT16);
    uint16_t *h = out.data;
    CHECK(h[0] == 0x3e00 && h[1] == 0x4100 && h[2] == 0x7bff); /* 1.5, 2.5, 65504 + 0.5 rounds back */
    free(out.data);
    free_views(in, 2);

    L = make_layer("Less", 13, 2, 0);
    in[0] = vec_of(DUCTILE_BFLOAT16, 2, (uint16_t[]){0x3f80, 0x4000}); /* 1, 2 */
    in[1] = vec_of(DUCTILE_BFLOAT16, 2, (uint16_t[]){0x4000, 0x3f80});
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK_EQ_INT(out.dtype, DUCTILE_BOOL);
    CHECK(((bool *)out.data)[0] && !((bool *)out.data)[1]);
    free(out.data);
    free_views(in, 2);

    /* a unary op and Clip with float16 bounds */
    L = make_layer("Celu", 12, 1, 0);
    in[0] = vec_of(DUCTILE_BFLOAT16, 2, (uint16_t[]){0x3f80, 0xbf80}); /* 1, -1 */
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(((uint16_t *)out.data)[0] == 0x3f80 &&
          ((uint16_t *)out.data)[1] == dt_float_to_bf16((float)expm1(-1.0)));
    free(out.data);
    free(in[0].data);
    L = make_layer("Clip", 13, 3, 0);
    uint16_t lo = 0x0000, hi = 0x3c00; /* [0, 1] */
    dt_view cin[3] = {vec_of(DUCTILE_FLOAT16, 3, (uint16_t[]){0xbc00, 0x3800, 0x4000}),
                      {DUCTILE_FLOAT16, 0, {0}, &lo}, {DUCTILE_FLOAT16, 0, {0}, &hi}};
    CHECK_EQ_INT(run_op(L, cin, &out, NULL), DUCTILE_OK);
    CHECK(memcmp(out.data, (uint16_t[]){0x0000, 0x3800, 0x3c00}, 6) == 0);
    free(out.data);
    free(cin[0].data);
}

static void test_castlike_takes_the_dtype_of_input_1(void)
{
    ductile_layer *L = make_layer("CastLike", 15, 2, 0);
    int64_t d0[1] = {0};
    dt_view in[2] = {vec_of(DUCTILE_FLOAT32, 3, (float[]){1.5f, -2.0f, 0.47892547f}),
                     make_view(DUCTILE_BFLOAT16, 1, d0, 0, 0)}, out;
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(out.dtype == DUCTILE_BFLOAT16 && out.rank == 1 && out.dims[0] == 3);
    CHECK(memcmp(out.data, (uint16_t[]){0x3fc0, 0xc000, 16117}, 6) == 0);
    free(out.data);
    in[1].dtype = DUCTILE_INT32;
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(memcmp(out.data, (int32_t[]){1, -2, 0}, 12) == 0);
    free(out.data);
    free_views(in, 2);
}

static void test_dropout_inference_and_training(void)
{
    ductile_layer *L = dt_network_add_layer(net, "Dropout", "dropout_2out", 3, 2, 0);
    for (int i = 0; i < 3; i++) L->in[i] = dt_network_add_tensor(net, i == 0 ? "dx" : i == 1 ? "dr" : "dt");
    L->out[0] = dt_network_add_tensor(net, "dy");
    L->out[1] = dt_network_add_tensor(net, "dmask");
    L->opset = 13;
    CHECK_EQ_INT(opdef("Dropout")->check(L), DUCTILE_OK);
    float ratio = 0.5f;
    bool training = false;
    dt_view in[3] = {vec_of(DUCTILE_FLOAT32, 3, (float[]){1, 2, 3}), {DUCTILE_FLOAT32, 0, {0}, &ratio},
                     {DUCTILE_BOOL, 0, {0}, &training}};
    dt_view out[2];
    memset(out, 0, sizeof out);
    CHECK_EQ_INT(opdef("Dropout")->infer(L, in, out), DUCTILE_OK);
    CHECK(out[0].dtype == DUCTILE_FLOAT32 && out[1].dtype == DUCTILE_BOOL && out[1].dims[0] == 3);
    float y[3];
    bool mask[3] = {false, false, false};
    out[0].data = y;
    out[1].data = mask;
    dt_exec ex = {.pool = NULL};
    CHECK_EQ_INT(kernel("Dropout")(L, in, out, &ex), DUCTILE_OK);
    CHECK(y[0] == 1 && y[1] == 2 && y[2] == 3 && mask[0] && mask[1] && mask[2]);
    /* Training mode (no seed: a fresh one per run): each element dropped or scaled by 2. */
    training = true;
    CHECK_EQ_INT(kernel("Dropout")(L, in, out, &ex), DUCTILE_OK);
    for (int i = 0; i < 3; i++) CHECK(mask[i] ? y[i] == 2.0f * (float)(i + 1) : y[i] == 0.0f);
    ratio = 1.0f;
    CHECK_EQ_INT(kernel("Dropout")(L, in, out, &ex), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(dt_last_error(), "ratio 1 is outside [0, 1) in training mode");
    ratio = 0.0f; /* nothing dropped: still the identity */
    CHECK_EQ_INT(kernel("Dropout")(L, in, out, &ex), DUCTILE_OK);
    free(in[0].data);
}

static void test_prelu_and_pow_type_mixes(void)
{
    ductile_layer *L = make_layer("PRelu", 16, 2, 0);
    int64_t d[2] = {2, 3};
    dt_view in[2] = {make_view(DUCTILE_FLOAT32, 2, d, 0, 0), vec_of(DUCTILE_FLOAT32, 3, (float[]){0.5f, 2, 0})};
    memcpy(in[0].data, (float[]){-2, -2, -2, 4, -1, 3}, 24);
    dt_view out;
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(memcmp(out.data, (float[]){-1, -4, -0.0f, 4, -2, 3}, 24) == 0);
    free(out.data);
    /* a slope larger than X is refused */
    free(in[1].data);
    int64_t d3[3] = {2, 2, 3};
    in[1] = make_view(DUCTILE_FLOAT32, 3, d3, 0, 1);
    CHECK_EQ_INT(opdef("PRelu")->infer(L, in, &out), DUCTILE_ERR_SHAPE);
    CHECK(strstr(dt_last_error(), "of shape [2,2,3] does not broadcast to X's shape [2,3]") != NULL);
    free_views(in, 2);

    /* int base, float exponent: computed in double and truncated, as numpy's power does */
    L = make_layer("Pow", 15, 2, 0);
    in[0] = vec_i64(3, (int64_t[]){2, 9, -8});
    in[1] = vec_of(DUCTILE_FLOAT32, 3, (float[]){0.5f, 0.5f, 2.0f});
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(out.dtype == DUCTILE_INT64 && memcmp(out.data, (int64_t[]){1, 3, 64}, 24) == 0);
    free(out.data);
    free(in[1].data);
    /* int32 base, uint8 exponent */
    free(in[0].data);
    in[0] = vec_of(DUCTILE_INT32, 2, (int32_t[]){3, -2});
    in[1] = vec_of(DUCTILE_UINT8, 2, (uint8_t[]){4, 3});
    CHECK_EQ_INT(run_op(L, in, &out, NULL), DUCTILE_OK);
    CHECK(memcmp(out.data, (int32_t[]){81, -8}, 8) == 0);
    free(out.data);
    free_views(in, 2);
}

int main(void)
{
    if (dt_network_new(&net) != DUCTILE_OK || dt_pool_create(3, &pool) != DUCTILE_OK) return 1;
    test_unary_float_ops_match_reference();
    test_polynomial_activations_stay_accurate_everywhere();
    test_unary_integer_and_bool_ops();
    test_binary_arithmetic_broadcasts_like_numpy();
    test_comparisons_and_logic_give_bool();
    test_integer_div_truncates_and_refuses_zero();
    test_pow_with_other_exponent_types();
    test_max_min_propagate_nan();
    test_variadic_ops_with_one_to_four_inputs();
    test_where_broadcasts_three_ways();
    test_clip_bounds_from_attributes_and_inputs();
    test_cast_matches_onnxruntime();
    test_cast_check_refuses_unknown_targets_and_bitcast_to_string();
    test_infer_names_mismatched_inputs();
    test_math_and_activation_ops_match_libm();
    test_gelu_float_dense_grid();
    test_gelu_float_sweeps_the_floats();
    test_isinf_detects_each_sign_on_request();
    test_narrow_integer_types_wrap_like_onnxruntime();
    test_mod_follows_numpy_and_c_sign_rules();
    test_bitshift_and_bitwise_ops();
    test_half_types_compute_through_float32();
    test_castlike_takes_the_dtype_of_input_1();
    test_dropout_inference_and_training();
    test_prelu_and_pow_type_mixes();
    ophelp_end();
    TEST_MAIN_END();
}
