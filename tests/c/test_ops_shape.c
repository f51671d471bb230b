/* The shape and data-movement ops: each op's check, infer and CPU kernel on small odd shapes.
 * Expected arrays were computed with onnxruntime 1.30 for the same single-node models; the
 * larger copies (tiled transposes, DepthToSpace, Expand, Tile) are compared with a naive
 * index-by-index reference written here, run with a 2-thread pool. Output buffers carry
 * sentinels to catch overruns. */
#include "ophelp.h"
#include "backend/cpu/families.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "ops/families.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SENTINEL = 64 };

/* ---- building layers ---- */

static void rename_in(ductile_layer *L, int i, const char *name)
{
    L->in[i]->name = dt_arena_strdup(&net->arena, name);
}

static void attr_i(ductile_layer *L, const char *name, int64_t v) { a_int(L, name, v); }

static void attr_f(ductile_layer *L, const char *name, float v) { a_float(L, name, v); }

static void attr_s(ductile_layer *L, const char *name, const char *v) { a_str(L, name, v); }

static void attr_ints(ductile_layer *L, const char *name, int n, ...)
{
    int64_t v[DT_MAX_DIMS * 2 + 8];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n && i < (int)(sizeof v / sizeof v[0]); i++) v[i] = va_arg(ap, int64_t);
    va_end(ap);
    a_ints(L, name, v, n);
}

/* ---- views ---- */

/* dims[0] is padding so that rank-0 views can be written F32(data, 0). */
static dt_view view(int dtype, const void *data, int rank, const int64_t *dims)
{
    dt_view v = {.dtype = dtype, .rank = rank, .data = (void *)data};
    for (int i = 0; i < rank; i++) v.dims[i] = dims[i + 1];
    return v;
}

#define F32(data, rank, ...) view(DUCTILE_FLOAT32, data, rank, (const int64_t[]){0, __VA_ARGS__})
#define I64(data, rank, ...) view(DUCTILE_INT64, data, rank, (const int64_t[]){0, __VA_ARGS__})
#define I32(data, rank, ...) view(DUCTILE_INT32, data, rank, (const int64_t[]){0, __VA_ARGS__})
#define I16(data, rank, ...) view(DUCTILE_INT16, data, rank, (const int64_t[]){0, __VA_ARGS__})
#define NONE ((dt_view){.rank = -1})

static float *iota(int64_t n)
{
    float *x = malloc((size_t)(n ? n : 1) * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = (float)i;
    return x;
}

/* ---- running ---- */

/* check, infer (value inputs keep their data), allocate outputs with sentinels, run. */
static ductile_status run(const ductile_layer *L, dt_view *in, dt_view *out)
{
    dt_cpu_run_fn k = kernel(L->op_type);
    if (!k) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "no op %s", L->op_type);
    DT_TRY(build(L, in, out));
    for (int i = 0; i < L->n_out; i++) {
        size_t bytes = (size_t)dt_view_count(&out[i]) * ductile_dtype_size((ductile_dtype)out[i].dtype);
        unsigned char *b = malloc(bytes + SENTINEL);
        memset(b, 0xAB, bytes + SENTINEL);
        out[i].data = b;
    }
    dt_exec ex = {.pool = pool};
    ductile_status s = k(L, in, out, &ex);
    if (s) /* the caller frees outputs only on success */
        for (int i = 0; i < L->n_out; i++) {
            free(out[i].data);
            out[i].data = NULL;
        }
    return s;
}

static bool sentinel_ok(const dt_view *v)
{
    size_t bytes = (size_t)dt_view_count(v) * ductile_dtype_size((ductile_dtype)v->dtype);
    for (int i = 0; i < SENTINEL; i++)
        if (((unsigned char *)v->data)[bytes + i] != 0xAB) return false;
    return true;
}

static void check_dims(const dt_view *v, int rank, const int64_t *dims, int line)
{
    bool ok = v->rank == rank;
    for (int i = 0; ok && i < rank; i++) ok = v->dims[i] == dims[i];
    test_checks++;
    if (!ok) {
        char a[160], b[160];
        test_failures++;
        fprintf(stderr, "%s:%d: shape %s, expected %s\n", __FILE__, line,
                dt_format_dims(a, sizeof a, v->dims, v->rank, NULL), dt_format_dims(b, sizeof b, dims, rank, NULL));
    }
}

/* Compares output v (float32 or int64, by its dtype) with expected values and frees it. */
static void check_out(dt_view *v, const double *expect, int64_t n, int line)
{
    test_checks++;
    int64_t count = dt_view_count(v);
    bool ok = count == n;
    for (int64_t i = 0; ok && i < n; i++) {
        double got = v->dtype == DUCTILE_FLOAT32 ? ((float *)v->data)[i]
                   : v->dtype == DUCTILE_INT32 ? ((int32_t *)v->data)[i]
                   : (double)((int64_t *)v->data)[i];
        if (got != expect[i] && !(v->dtype == DUCTILE_FLOAT32 && got - expect[i] < 1e-6 && expect[i] - got < 1e-6)) {
            fprintf(stderr, "%s:%d: element %lld is %g, expected %g\n", __FILE__, line, (long long)i, got, expect[i]);
            ok = false;
        }
    }
    if (count != n) fprintf(stderr, "%s:%d: %lld elements, expected %lld\n", __FILE__, line, (long long)count, (long long)n);
    if (!sentinel_ok(v)) {
        fprintf(stderr, "%s:%d: output overrun\n", __FILE__, line);
        ok = false;
    }
    if (!ok) test_failures++;
    free(v->data);
    v->data = NULL;
}

#undef DIMS /* ophelp.h's gives the array alone; here it is the array and its count */
#define DIMS(...) (const int64_t[]){__VA_ARGS__}, (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define CHECK_DIMS(v, ...) check_dims(&(v), (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}, __LINE__)
#define CHECK_DIMS0(v) check_dims(&(v), 0, NULL, __LINE__)
#define EXPECT(v, ...) check_out(&(v), (const double[]){__VA_ARGS__}, (int64_t)(sizeof((const double[]){__VA_ARGS__}) / sizeof(double)), __LINE__)
#define CHECK_OK(expr)                                                                       \
    do {                                                                                     \
        ductile_status s_ = (expr);                                                          \
        if (s_) fprintf(stderr, "  error: %s\n", dt_last_error());                           \
        CHECK_EQ_INT(s_, DUCTILE_OK);                                                        \
    } while (0)

static void free_outs(dt_view *out, int n)
{
    for (int i = 0; i < n; i++) {
        free(out[i].data);
        out[i].data = NULL;
    }
}

/* ---- naive reference for strided copies ---- */

/* Rank-r tensor of dims `od`: element at out multi-index m reads in[sum m[k] * st[k] + base]. */
static bool same_as_map(const float *out, const float *in, int r, const int64_t *od, const int64_t *st, int64_t base)
{
    int64_t m[16] = {0}, n = 1;
    for (int k = 0; k < r; k++) n *= od[k];
    for (int64_t e = 0; e < n; e++) {
        int64_t off = base;
        for (int k = 0; k < r; k++) off += m[k] * st[k];
        if (out[e] != in[off]) {
            fprintf(stderr, "  mismatch at output element %lld: %g vs %g\n", (long long)e, out[e], in[off]);
            return false;
        }
        for (int k = r - 1; k >= 0; k--) {
            if (++m[k] < od[k]) break;
            m[k] = 0;
        }
    }
    return true;
}

/* ---- tests ---- */

static void test_shape_size(void)
{
    dt_view in[1] = {F32(NULL, 4, 2, 3, 5, 7)}, out[1];
    ductile_layer *L = layer("Shape", 13, 1, NULL, 1);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 4);
    EXPECT(out[0], 2, 3, 5, 7);

    L = layer("Shape", 15, 1, NULL, 1);
    attr_i(L, "start", -3);
    attr_i(L, "end", -1);
    CHECK_OK(run(L, in, out));
    EXPECT(out[0], 3, 5);

    L = layer("Shape", 15, 1, NULL, 1);
    attr_i(L, "start", 3);
    attr_i(L, "end", 1);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 0);
    free_outs(out, 1);

    L = layer("Size", 13, 1, NULL, 1);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS0(out[0]);
    EXPECT(out[0], 210);
}

static void test_gather(void)
{
    float *x = iota(12);
    int32_t idx32[] = {-1, 0, 2};
    dt_view in[2] = {F32(x, 2, 3, 4), I32(idx32, 1, 3)}, out[1];
    ductile_layer *L = layer("Gather", 13, 2, NULL, 1);
    attr_i(L, "axis", -1);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 3, 3);
    EXPECT(out[0], 3, 0, 2, 7, 4, 6, 11, 8, 10);

    /* A scalar index on int64 data: the Shape -> Gather pattern; rank drops by one. */
    int64_t shape[] = {7, 5, 9}, i1 = -2;
    dt_view s[2] = {I64(shape, 1, 3), I64(&i1, 0)};
    L = layer("Gather", 11, 2, NULL, 1);
    CHECK_OK(run(L, s, out));
    CHECK_DIMS0(out[0]);
    EXPECT(out[0], 5);

    /* 2-D indices on axis 0. */
    int64_t idx2[] = {1, 0, 1, 1};
    dt_view in2[2] = {F32(x, 2, 2, 6), I64(idx2, 2, 2, 2)};
    L = layer("Gather", 13, 2, NULL, 1);
    CHECK_OK(run(L, in2, out));
    CHECK_DIMS(out[0], 2, 2, 6);
    EXPECT(out[0], 6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 6, 7, 8, 9, 10, 11);

    int64_t bad[] = {0, 3};
    dt_view in3[2] = {F32(x, 2, 4, 3), I64(bad, 1, 2)};
    L = layer("Gather", 13, 2, NULL, 1);
    rename_in(L, 0, "data");
    rename_in(L, 1, "ids");
    attr_i(L, "axis", 1);
    CHECK_EQ_INT(run(L, in3, out), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(dt_last_error(), "input 1 ('ids') holds the index 3 at position 1, out of range for dimension 1 of input 0 ('data'), which has size 3 (expected -3..2)");
    free_outs(out, 1);
    free(x);
}

static void test_gather_elements(void)
{
    float y[] = {1, 2, 3, 4, 5, 6};
    int64_t idx[] = {-1, 0, 1, 2};
    dt_view in[2] = {F32(y, 2, 2, 3), I64(idx, 2, 2, 2)}, out[1];
    ductile_layer *L = layer("GatherElements", 13, 2, NULL, 1);
    attr_i(L, "axis", 1);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 2, 2);
    EXPECT(out[0], 3, 1, 5, 6);

    int64_t idx0[] = {1, 0, 1};
    dt_view in0[2] = {F32(y, 2, 2, 3), I64(idx0, 2, 1, 3)};
    L = layer("GatherElements", 13, 2, NULL, 1);
    CHECK_OK(run(L, in0, out));
    EXPECT(out[0], 4, 2, 6);
}

static void test_unsqueeze_squeeze(void)
{
    float x[6] = {1, 2, 3, 4, 5, 6};
    dt_view out[1];
    /* Opset 11: axes is an attribute. */
    dt_view in11[1] = {F32(x, 2, 2, 3)};
    ductile_layer *L = layer("Unsqueeze", 11, 1, NULL, 1);
    attr_ints(L, "axes", 2, (int64_t)0, (int64_t)-1);
    CHECK_OK(run(L, in11, out));
    CHECK_DIMS(out[0], 1, 2, 3, 1);
    EXPECT(out[0], 1, 2, 3, 4, 5, 6);

    /* Opset 13: axes is input 1, and a node with an axes attribute but no input is refused. */
    int64_t axes[] = {-1, 1};
    dt_view in13[2] = {F32(x, 2, 2, 3), I64(axes, 1, 2)};
    L = layer("Unsqueeze", 13, 2, NULL, 1);
    CHECK_OK(run(L, in13, out));
    CHECK_DIMS(out[0], 2, 1, 3, 1);
    free_outs(out, 1);
    L = layer("Unsqueeze", 13, 1, NULL, 1);
    attr_ints(L, "axes", 1, (int64_t)0);
    CHECK_EQ_INT(run(L, in11, out), DUCTILE_ERR_INVALID_ARGUMENT);

    /* Axes of unknown value: the shape depends on data. */
    dt_view unk[2] = {F32(x, 2, 2, 3), I64(NULL, 1, 1)};
    L = layer("Unsqueeze", 13, 2, NULL, 1);
    rename_in(L, 1, "ax");
    CHECK_EQ_INT(opdef("Unsqueeze")->infer(L, unk, out), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(dt_last_error(), "the output shape depends on the data of input 1 ('ax')");
    CHECK(opdef("Unsqueeze")->value_inputs == 2u);

    /* Scalar to [1]. */
    int64_t zero = 0;
    dt_view sc[2] = {F32(x, 0), I64(&zero, 1, 1)};
    L = layer("Unsqueeze", 13, 2, NULL, 1);
    CHECK_OK(run(L, sc, out));
    CHECK_DIMS(out[0], 1);
    EXPECT(out[0], 1);

    dt_view sq[2] = {F32(x, 4, 1, 2, 1, 3), I64(axes, 1, 1)};
    int64_t m2 = -2;
    sq[1].data = &m2;
    L = layer("Squeeze", 13, 2, NULL, 1);
    CHECK_OK(run(L, sq, out));
    CHECK_DIMS(out[0], 1, 2, 3);
    EXPECT(out[0], 1, 2, 3, 4, 5, 6);

    L = layer("Squeeze", 11, 1, NULL, 1);
    CHECK_OK(run(L, sq, out));
    CHECK_DIMS(out[0], 2, 3);
    free_outs(out, 1);

    L = layer("Squeeze", 11, 1, NULL, 1);
    rename_in(L, 0, "x");
    attr_ints(L, "axes", 2, (int64_t)2, (int64_t)-3);
    CHECK_EQ_INT(run(L, sq, out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(dt_last_error(), "cannot squeeze dimension 1 of input 0 ('x') of shape [1,2,1,3] named by axes: it is 2, not 1");
}

static void test_concat(void)
{
    float a[] = {1, 2, 3, 4}, b[] = {5, 6}, c[] = {7, 8, 9, 10, 11, 12};
    dt_view in[3] = {F32(a, 2, 2, 2), F32(b, 2, 2, 1), F32(c, 2, 2, 3)}, out[1];
    ductile_layer *L = layer("Concat", 13, 3, NULL, 1);
    attr_i(L, "axis", -1);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 2, 6);
    EXPECT(out[0], 1, 2, 5, 7, 8, 9, 3, 4, 6, 10, 11, 12);

    dt_view in0[2] = {F32(a, 2, 2, 2), F32(c, 2, 3, 2)};
    L = layer("Concat", 13, 2, NULL, 1);
    attr_i(L, "axis", 0);
    CHECK_OK(run(L, in0, out));
    CHECK_DIMS(out[0], 5, 2);
    EXPECT(out[0], 1, 2, 3, 4, 7, 8, 9, 10, 11, 12);

    /* int64 shape pieces, the Shape -> Concat -> Reshape pattern. */
    int64_t s1[] = {1}, s2[] = {-1, 7};
    dt_view ins[2] = {I64(s1, 1, 1), I64(s2, 1, 2)};
    L = layer("Concat", 11, 2, NULL, 1);
    attr_i(L, "axis", 0);
    CHECK_OK(run(L, ins, out));
    EXPECT(out[0], 1, -1, 7);

    dt_view bad[3] = {F32(NULL, 3, 1, 4, 5), F32(NULL, 3, 1, 4, 5), F32(NULL, 3, 1, 3, 5)};
    L = layer("Concat", 13, 3, NULL, 1);
    rename_in(L, 0, "y");
    rename_in(L, 2, "x");
    attr_i(L, "axis", 0);
    CHECK_EQ_INT(run(L, bad, out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(dt_last_error(), "input 2 ('x') has shape [1,3,5] but input 0 ('y') has [1,4,5]: dimension 1 differs (3 vs 4); all dims but axis 0 must match");
}

static void test_slice(void)
{
    float *x = iota(35);
    int64_t st[] = {-1, 1}, en[] = {INT64_MIN, INT64_MAX}, ax[] = {0, -1}, sp[] = {-2, 3};
    dt_view in[5] = {F32(x, 2, 5, 7), I64(st, 1, 2), I64(en, 1, 2), I64(ax, 1, 2), I64(sp, 1, 2)}, out[1];
    ductile_layer *L = layer("Slice", 13, 5, NULL, 1);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 3, 2);
    EXPECT(out[0], 29, 32, 15, 18, 1, 4);

    /* Out-of-range starts and ends clamp; a backwards step over axis 1. */
    int64_t st2[] = {10, -100}, en2[] = {-100, 5}, ax2[] = {1, 0}, sp2[] = {-3, 2};
    dt_view in2[5] = {F32(x, 2, 5, 7), I64(st2, 1, 2), I64(en2, 1, 2), I64(ax2, 1, 2), I64(sp2, 1, 2)};
    L = layer("Slice", 13, 5, NULL, 1);
    CHECK_OK(run(L, in2, out));
    CHECK_DIMS(out[0], 3, 3);
    EXPECT(out[0], 6, 3, 0, 20, 17, 14, 34, 31, 28);

    /* Omitted axes and steps; int32 starts/ends. */
    int32_t st3[] = {1}, en3[] = {-1};
    dt_view in3[3] = {F32(x, 2, 5, 7), I32(st3, 1, 1), I32(en3, 1, 1)};
    L = layer("Slice", 11, 3, NULL, 1);
    CHECK_OK(run(L, in3, out));
    CHECK_DIMS(out[0], 3, 7);
    free_outs(out, 1);

    /* Opset 9: attributes. */
    dt_view in9[1] = {F32(x, 2, 5, 7)};
    L = layer("Slice", 9, 1, NULL, 1);
    attr_ints(L, "starts", 1, (int64_t)2);
    attr_ints(L, "ends", 1, (int64_t)4);
    attr_ints(L, "axes", 1, (int64_t)1);
    CHECK_OK(run(L, in9, out));
    CHECK_DIMS(out[0], 5, 2);
    EXPECT(out[0], 2, 3, 9, 10, 16, 17, 23, 24, 30, 31);

    /* An empty result. */
    int64_t st4[] = {3}, en4[] = {3};
    dt_view in4[3] = {F32(x, 2, 5, 7), I64(st4, 1, 1), I64(en4, 1, 1)};
    L = layer("Slice", 13, 3, NULL, 1);
    CHECK_OK(run(L, in4, out));
    CHECK_DIMS(out[0], 0, 7);
    free_outs(out, 1);

    int64_t zero[] = {0};
    dt_view in5[5] = {F32(x, 2, 5, 7), I64(st4, 1, 1), I64(en4, 1, 1), NONE, I64(zero, 1, 1)};
    L = layer("Slice", 13, 5, NULL, 1);
    L->in[3] = NULL;
    CHECK_EQ_INT(run(L, in5, out), DUCTILE_ERR_SHAPE);
    free(x);
}

static void test_reshape(void)
{
    float *x = iota(24);
    int64_t s1[] = {0, -1};
    dt_view in[2] = {F32(x, 3, 2, 3, 4), I64(s1, 1, 2)}, out[1];
    ductile_layer *L = layer("Reshape", 13, 2, NULL, 1);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 2, 12);
    CHECK(((float *)out[0].data)[23] == 23.0f && sentinel_ok(&out[0]));
    free_outs(out, 1);

    int64_t s2[] = {-1, 0, 2};
    dt_view in2[2] = {F32(x, 3, 2, 3, 4), I64(s2, 1, 3)};
    L = layer("Reshape", 13, 2, NULL, 1);
    CHECK_OK(run(L, in2, out));
    CHECK_DIMS(out[0], 4, 3, 2);
    free_outs(out, 1);

    /* allowzero=1: a 0 is a real zero dim. */
    int64_t s3[] = {0, 5};
    dt_view in3[2] = {F32(NULL, 2, 0, 5), I64(s3, 1, 2)};
    L = layer("Reshape", 14, 2, NULL, 1);
    attr_i(L, "allowzero", 1);
    CHECK_OK(run(L, in3, out));
    CHECK_DIMS(out[0], 0, 5);
    free_outs(out, 1);

    int64_t s4[] = {-1, 1, 3, 3, 224, 224};
    dt_view in4[2] = {F32(NULL, 4, 1, 9, 64, 64), I64(s4, 1, 6)};
    L = layer("Reshape", 10, 2, NULL, 1);
    rename_in(L, 0, "input");
    rename_in(L, 1, "onnx::Reshape_15");
    CHECK_EQ_INT(run(L, in4, out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(dt_last_error(), "cannot reshape 'input' of shape [1,9,64,64] (36864 elements) to 'onnx::Reshape_15' = [-1,1,3,3,224,224]: the known dims give 451584 elements, which does not divide 36864");

    int64_t s5[] = {1, 1, 3, 3, 224, 224};
    dt_view in5[2] = {F32(NULL, 4, 1, 9, 64, 64), I64(s5, 1, 6)};
    L = layer("Reshape", 10, 2, NULL, 1);
    rename_in(L, 0, "x");
    rename_in(L, 1, "s");
    CHECK_EQ_INT(run(L, in5, out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(dt_last_error(), "cannot reshape 'x' of shape [1,9,64,64] (36864 elements) to 's' = [1,1,3,3,224,224]: that is 451584 elements");

    int64_t s6[] = {-1, 4, -1};
    dt_view in6[2] = {F32(NULL, 2, 4, 4), I64(s6, 1, 3)};
    L = layer("Reshape", 13, 2, NULL, 1);
    rename_in(L, 0, "x");
    rename_in(L, 1, "s");
    CHECK_EQ_INT(run(L, in6, out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(dt_last_error(), "cannot reshape 'x' of shape [4,4] (16 elements) to 's' = [-1,4,-1]: more than one dim is -1 (positions 0 and 2)");

    int64_t s7[] = {4, 2, 0, 1};
    dt_view in7[2] = {F32(NULL, 2, 4, 2), I64(s7, 1, 4)};
    L = layer("Reshape", 13, 2, NULL, 1);
    rename_in(L, 0, "x");
    rename_in(L, 1, "s");
    CHECK_EQ_INT(run(L, in7, out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(dt_last_error(), "cannot reshape 'x' of shape [4,2] (8 elements) to 's' = [4,2,0,1]: the 0 at position 2 copies dimension 2 of the input, which has only 2 dims");

    int64_t s8[] = {-2, 4};
    dt_view in8[2] = {F32(NULL, 2, 4, 2), I64(s8, 1, 2)};
    L = layer("Reshape", 13, 2, NULL, 1);
    rename_in(L, 0, "x");
    rename_in(L, 1, "s");
    CHECK_EQ_INT(run(L, in8, out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(dt_last_error(), "cannot reshape 'x' of shape [4,2] (8 elements) to 's' = [-2,4]: the value -2 at position 0 is invalid (expected -1, 0 or a positive dim)");

    dt_view in9[2] = {F32(NULL, 2, 4, 2), I64(NULL, 1, 2)};
    L = layer("Reshape", 13, 2, NULL, 1);
    rename_in(L, 1, "shape_in");
    CHECK_EQ_INT(run(L, in9, out), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(dt_last_error(), "the output shape depends on the data of input 1 ('shape_in')");

    dt_view fl[1] = {F32(x, 4, 2, 3, 2, 2)};
    L = layer("Flatten", 13, 1, NULL, 1);
    attr_i(L, "axis", -1);
    CHECK_OK(run(L, fl, out));
    CHECK_DIMS(out[0], 12, 2);
    free_outs(out, 1);
    L = layer("Flatten", 13, 1, NULL, 1);
    attr_i(L, "axis", 0);
    CHECK_OK(run(L, fl, out));
    CHECK_DIMS(out[0], 1, 24);
    CHECK(((float *)out[0].data)[17] == 17.0f);
    free_outs(out, 1);
    free(x);
}

static void test_transpose(void)
{
    float *x = iota(2 * 3 * 5 * 7);
    dt_view in[1] = {F32(x, 4, 2, 3, 5, 7)}, out[1];
    static const int perms[][4] = {{0, 2, 1, 3}, {3, 1, 0, 2}, {2, 3, 0, 1}, {3, 2, 1, 0}, {0, 1, 2, 3}};
    const int64_t st[4] = {105, 35, 7, 1};
    for (int p = 0; p < 5; p++) {
        ductile_layer *L = layer("Transpose", 13, 1, NULL, 1);
        if (p < 4) attr_ints(L, "perm", 4, (int64_t)perms[p][0], (int64_t)perms[p][1], (int64_t)perms[p][2], (int64_t)perms[p][3]);
        else attr_ints(L, "perm", 4, (int64_t)0, (int64_t)1, (int64_t)2, (int64_t)3);
        CHECK_OK(run(L, in, out));
        int64_t od[4], os[4];
        for (int k = 0; k < 4; k++) {
            od[k] = in[0].dims[perms[p][k]];
            os[k] = st[perms[p][k]];
        }
        check_dims(&out[0], 4, od, __LINE__);
        CHECK(same_as_map(out[0].data, x, 4, od, os, 0));
        CHECK(sentinel_ok(&out[0]));
        free_outs(out, 1);
    }
    /* No perm: reversed dims. */
    ductile_layer *L = layer("Transpose", 13, 1, NULL, 1);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 7, 5, 3, 2);
    CHECK(same_as_map(out[0].data, x, 4, (int64_t[]){7, 5, 3, 2}, (int64_t[]){1, 7, 35, 105}, 0));
    free_outs(out, 1);
    free(x);

    /* Large and odd: the memcpy-rows path and the tiled path, on int16 and float data. */
    x = iota(8 * 37 * 4 * 64);
    dt_view big[1] = {F32(x, 4, 8, 37, 4, 64)};
    L = layer("Transpose", 13, 1, NULL, 1);
    attr_ints(L, "perm", 4, (int64_t)0, (int64_t)2, (int64_t)1, (int64_t)3);
    CHECK_OK(run(L, big, out));
    CHECK(same_as_map(out[0].data, x, 4, (int64_t[]){8, 4, 37, 64}, (int64_t[]){37 * 256, 64, 256, 1}, 0));
    CHECK(sentinel_ok(&out[0]));
    free_outs(out, 1);
    dt_view nhwc[1] = {F32(x, 4, 2, 37, 33, 31)};
    L = layer("Transpose", 13, 1, NULL, 1);
    attr_ints(L, "perm", 4, (int64_t)0, (int64_t)2, (int64_t)3, (int64_t)1);
    CHECK_OK(run(L, nhwc, out));
    CHECK(same_as_map(out[0].data, x, 4, (int64_t[]){2, 33, 31, 37}, (int64_t[]){37 * 33 * 31, 31, 1, 33 * 31}, 0));
    CHECK(sentinel_ok(&out[0]));
    free_outs(out, 1);
    free(x);

    int16_t h[15];
    for (int i = 0; i < 15; i++) h[i] = (int16_t)i;
    dt_view hv[1] = {I16(h, 2, 3, 5)};
    L = layer("Transpose", 13, 1, NULL, 1);
    CHECK_OK(run(L, hv, out));
    int16_t *ho = out[0].data;
    CHECK(ho[0] == 0 && ho[1] == 5 && ho[2] == 10 && ho[3] == 1 && ho[14] == 14 && sentinel_ok(&out[0]));
    free_outs(out, 1);

    L = layer("Transpose", 13, 1, NULL, 1);
    attr_ints(L, "perm", 2, (int64_t)0, (int64_t)0);
    CHECK_EQ_INT(run(L, hv, out), DUCTILE_ERR_SHAPE);
}

static void test_expand_tile(void)
{
    float a[] = {1, 2, 3};
    int64_t shp[] = {2, 1, 4};
    dt_view in[2] = {F32(a, 2, 3, 1), I64(shp, 1, 3)}, out[1];
    ductile_layer *L = layer("Expand", 13, 2, NULL, 1);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 2, 3, 4);
    EXPECT(out[0], 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);

    int64_t shp2[] = {2, 5};
    dt_view in2[2] = {F32(a, 2, 3, 1), I64(shp2, 1, 2)};
    L = layer("Expand", 13, 2, NULL, 1);
    rename_in(L, 0, "a");
    rename_in(L, 1, "s");
    CHECK_EQ_INT(run(L, in2, out), DUCTILE_ERR_SHAPE);
    CHECK(strstr(dt_last_error(), "cannot expand input 0 ('a') to input 1 ('s') = [2,5]: shapes [3,1] and [2,5] cannot be broadcast: dimension 0 is 3 and 2") != NULL);

    float *x = iota(1 * 37 * 1);
    int64_t shp3[] = {5, 37, 33};
    dt_view in3[2] = {F32(x, 3, 1, 37, 1), I64(shp3, 1, 3)};
    L = layer("Expand", 13, 2, NULL, 1);
    CHECK_OK(run(L, in3, out));
    CHECK(same_as_map(out[0].data, x, 3, shp3, (int64_t[]){0, 1, 0}, 0));
    CHECK(sentinel_ok(&out[0]));
    free_outs(out, 1);
    free(x);

    float y[] = {1, 2, 3, 4, 5, 6};
    int64_t rep[] = {2, 1};
    dt_view t[2] = {F32(y, 2, 2, 3), I64(rep, 1, 2)};
    L = layer("Tile", 13, 2, NULL, 1);
    CHECK_OK(run(L, t, out));
    CHECK_DIMS(out[0], 4, 3);
    EXPECT(out[0], 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6);
    int64_t rep2[] = {1, 3};
    t[1].data = rep2;
    L = layer("Tile", 13, 2, NULL, 1);
    CHECK_OK(run(L, t, out));
    CHECK_DIMS(out[0], 2, 9);
    EXPECT(out[0], 1, 2, 3, 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6, 4, 5, 6);
}

static void test_constant_range(void)
{
    int64_t shp[] = {2, 3};
    dt_view in[1] = {I64(shp, 1, 2)}, out[1];
    ductile_layer *L = layer("ConstantOfShape", 13, 1, NULL, 1);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 2, 3);
    CHECK_EQ_INT(out[0].dtype, DUCTILE_FLOAT32);
    EXPECT(out[0], 0, 0, 0, 0, 0, 0);

    ductile_tensor *vt = dt_arena_alloc(&net->arena, sizeof *vt);
    static const int64_t seven = 7;
    vt->dtype = DUCTILE_INT64;
    vt->rank = 1;
    vt->dims[0] = 1;
    vt->data = &seven;
    vt->nbytes = 8;
    L = layer("ConstantOfShape", 13, 1, NULL, 1);
    attr(L, "value", DT_ATTR_TENSOR)->t = vt;
    CHECK_OK(run(L, in, out));
    CHECK_EQ_INT(out[0].dtype, DUCTILE_INT64);
    EXPECT(out[0], 7, 7, 7, 7, 7, 7);

    float f0 = 0, f1 = 1, f3 = 0.3f;
    dt_view rf[3] = {F32(&f0, 0), F32(&f1, 0), F32(&f3, 0)};
    L = layer("Range", 11, 3, NULL, 1);
    CHECK_OK(run(L, rf, out));
    CHECK_DIMS(out[0], 4);
    EXPECT(out[0], 0, 0.3f, 0.6f, 0.90000004f);

    int64_t i10 = 10, i1 = 1, im3 = -3;
    dt_view ri[3] = {I64(&i10, 0), I64(&i1, 0), I64(&im3, 0)};
    L = layer("Range", 11, 3, NULL, 1);
    CHECK_OK(run(L, ri, out));
    EXPECT(out[0], 10, 7, 4);

    int32_t a = 5, b = 5, c = 1;
    dt_view re[3] = {I32(&a, 0), I32(&b, 0), I32(&c, 0)};
    L = layer("Range", 11, 3, NULL, 1);
    CHECK_OK(run(L, re, out));
    CHECK_DIMS(out[0], 0);
    free_outs(out, 1);

    c = 0;
    L = layer("Range", 11, 3, NULL, 1);
    CHECK_EQ_INT(run(L, re, out), DUCTILE_ERR_INVALID_ARGUMENT);
}

/* DepthToSpace on [1, 8, 2, 3] with blocksize 2 (values from onnxruntime). */
static const double exp_d2s_dcr[] = {0, 12, 1, 13, 2, 14, 24, 36, 25, 37, 26, 38, 3, 15, 4, 16, 5, 17, 27, 39, 28, 40, 29, 41, 6, 18, 7, 19, 8, 20, 30, 42, 31, 43, 32, 44, 9, 21, 10, 22, 11, 23, 33, 45, 34, 46, 35, 47};
static const double exp_d2s_crd[] = {0, 6, 1, 7, 2, 8, 12, 18, 13, 19, 14, 20, 3, 9, 4, 10, 5, 11, 15, 21, 16, 22, 17, 23, 24, 30, 25, 31, 26, 32, 36, 42, 37, 43, 38, 44, 27, 33, 28, 34, 29, 35, 39, 45, 40, 46, 41, 47};
/* SpaceToDepth on [1, 2, 4, 6] with blocksize 2. */
static const double exp_s2d[] = {0, 2, 4, 12, 14, 16, 24, 26, 28, 36, 38, 40, 1, 3, 5, 13, 15, 17, 25, 27, 29, 37, 39, 41, 6, 8, 10, 18, 20, 22, 30, 32, 34, 42, 44, 46, 7, 9, 11, 19, 21, 23, 31, 33, 35, 43, 45, 47};

static void test_depth_space(void)
{
    float *x = iota(48);
    dt_view in[1] = {F32(x, 4, 1, 8, 2, 3)}, out[1];
    ductile_layer *L = layer("DepthToSpace", 13, 1, NULL, 1);
    attr_i(L, "blocksize", 2);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 1, 2, 4, 6);
    check_out(&out[0], exp_d2s_dcr, 48, __LINE__);
    L = layer("DepthToSpace", 13, 1, NULL, 1);
    attr_i(L, "blocksize", 2);
    attr_s(L, "mode", "CRD");
    CHECK_OK(run(L, in, out));
    check_out(&out[0], exp_d2s_crd, 48, __LINE__);

    dt_view s[1] = {F32(x, 4, 1, 2, 4, 6)};
    L = layer("SpaceToDepth", 13, 1, NULL, 1);
    attr_i(L, "blocksize", 2);
    CHECK_OK(run(L, s, out));
    CHECK_DIMS(out[0], 1, 8, 2, 3);
    check_out(&out[0], exp_s2d, 48, __LINE__);
    free(x);

    /* Larger, blocksize 3 as in the super-resolution model: DCR against the index formula,
     * and SpaceToDepth undoing it. */
    int64_t N = 2, C = 9 * 2, H = 37, W = 45;
    x = iota(N * C * H * W);
    dt_view big[1] = {F32(x, 4, N, C, H, W)};
    L = layer("DepthToSpace", 11, 1, NULL, 1);
    attr_i(L, "blocksize", 3);
    CHECK_OK(run(L, big, out));
    int64_t C2 = C / 9, HW = H * W;
    CHECK(same_as_map(out[0].data, x, 6, (int64_t[]){N, C2, H, 3, W, 3},
                      (int64_t[]){C * HW, HW, W, 3 * C2 * HW, 1, C2 * HW}, 0));
    CHECK(sentinel_ok(&out[0]));
    dt_view back[1] = {out[0]}, out2[1];
    L = layer("SpaceToDepth", 11, 1, NULL, 1);
    attr_i(L, "blocksize", 3);
    CHECK_OK(run(L, back, out2));
    CHECK(memcmp(out2[0].data, x, (size_t)(N * C * HW) * sizeof(float)) == 0);
    free_outs(out2, 1);
    free_outs(out, 1);
    free(x);
    /* Blocksizes 2 and 4 in both modes at odd sizes (the interleave of 2..4 rows). */
    for (int64_t bs = 2; bs <= 4; bs += 2)
        for (int crd = 0; crd < 2; crd++) {
            int64_t Cb = bs * bs * 3, Hb = 11, Wb = 53, c2 = 3, hw = Hb * Wb;
            x = iota(Cb * hw);
            dt_view xb[1] = {F32(x, 4, 1, Cb, Hb, Wb)};
            L = layer("DepthToSpace", 13, 1, NULL, 1);
            attr_i(L, "blocksize", bs);
            if (crd) attr_s(L, "mode", "CRD");
            CHECK_OK(run(L, xb, out));
            int64_t dcr[6] = {Cb * hw, hw, Wb, bs * c2 * hw, 1, c2 * hw};
            int64_t crds[6] = {Cb * hw, bs * bs * hw, Wb, bs * hw, 1, hw};
            CHECK(same_as_map(out[0].data, x, 6, (int64_t[]){1, c2, Hb, bs, Wb, bs}, crd ? crds : dcr, 0));
            CHECK(sentinel_ok(&out[0]));
            free_outs(out, 1);
            free(x);
        }

    dt_view bad[1] = {F32(NULL, 4, 1, 6, 2, 2)};
    L = layer("DepthToSpace", 13, 1, NULL, 1);
    attr_i(L, "blocksize", 2);
    CHECK_EQ_INT(run(L, bad, out), DUCTILE_ERR_SHAPE);
}

static void test_split(void)
{
    float *x = iota(14);
    dt_view in[1] = {F32(x, 2, 2, 7)}, out[3];
    ductile_layer *L = layer("Split", 11, 1, NULL, 3);
    attr_i(L, "axis", -1);
    attr_ints(L, "split", 3, (int64_t)2, (int64_t)4, (int64_t)1);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 2, 2);
    CHECK_DIMS(out[1], 2, 4);
    EXPECT(out[0], 0, 1, 7, 8);
    EXPECT(out[1], 2, 3, 4, 5, 9, 10, 11, 12);
    EXPECT(out[2], 6, 13);

    int64_t sp[] = {1, 6};
    dt_view in13[2] = {F32(x, 2, 2, 7), I64(sp, 1, 2)};
    L = layer("Split", 13, 2, NULL, 2);
    attr_i(L, "axis", 1);
    CHECK_OK(run(L, in13, out));
    EXPECT(out[0], 0, 7);
    EXPECT(out[1], 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13);

    L = layer("Split", 13, 1, NULL, 2);
    CHECK_OK(run(L, in, out));
    EXPECT(out[0], 0, 1, 2, 3, 4, 5, 6);
    EXPECT(out[1], 7, 8, 9, 10, 11, 12, 13);

    /* Uneven: refused before opset 18, rounded-up chunks from 18. */
    L = layer("Split", 13, 1, NULL, 3);
    attr_i(L, "axis", 1);
    CHECK_EQ_INT(run(L, in, out), DUCTILE_ERR_SHAPE);
    L = layer("Split", 18, 1, NULL, 3);
    attr_i(L, "axis", 1);
    attr_i(L, "num_outputs", 3);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 2, 3);
    CHECK_DIMS(out[2], 2, 1);
    EXPECT(out[2], 6, 13);
    free_outs(out, 2);
    free(x);
}

static void test_pad(void)
{
    float y[] = {1, 2, 3, 4, 5, 6};
    int64_t p1[] = {1, 2, 0, 1};
    dt_view in[3] = {F32(y, 2, 2, 3), I64(p1, 1, 4), NONE}, out[1];
    ductile_layer *L = layer("Pad", 11, 2, NULL, 1);
    attr_s(L, "mode", "reflect");
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 3, 6);
    EXPECT(out[0], 6, 5, 4, 5, 6, 5, 3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5);

    int64_t p2[] = {0, -1, 1, 2};
    in[1].data = p2;
    L = layer("Pad", 11, 2, NULL, 1);
    attr_s(L, "mode", "edge");
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 3, 4);
    EXPECT(out[0], 2, 3, 3, 3, 5, 6, 6, 6, 5, 6, 6, 6);

    int64_t p3[] = {1, 0, 0, -1};
    float nine = 9;
    dt_view in3[3] = {F32(y, 2, 2, 3), I64(p3, 1, 4), F32(&nine, 0)};
    L = layer("Pad", 11, 3, NULL, 1);
    CHECK_OK(run(L, in3, out));
    CHECK_DIMS(out[0], 3, 2);
    EXPECT(out[0], 9, 9, 1, 2, 4, 5);

    float *x = iota(12);
    int64_t p4[] = {0, -1, 0, 2};
    dt_view in4[2] = {F32(x, 2, 3, 4), I64(p4, 1, 4)};
    L = layer("Pad", 11, 2, NULL, 1);
    attr_s(L, "mode", "reflect");
    CHECK_OK(run(L, in4, out));
    CHECK_DIMS(out[0], 3, 5);
    EXPECT(out[0], 1, 2, 3, 2, 1, 5, 6, 7, 6, 5, 9, 10, 11, 10, 9);
    free(x);

    /* Opset 2: pads and value are attributes. */
    dt_view in2[1] = {F32(y, 2, 2, 3)};
    L = layer("Pad", 2, 1, NULL, 1);
    attr_ints(L, "pads", 4, (int64_t)0, (int64_t)1, (int64_t)1, (int64_t)0);
    attr_f(L, "value", -1.5f);
    CHECK_OK(run(L, in2, out));
    CHECK_DIMS(out[0], 3, 4);
    EXPECT(out[0], -1.5, 1, 2, 3, -1.5, 4, 5, 6, -1.5, -1.5, -1.5, -1.5);

    int64_t p5[] = {0, 3, 0, 0};
    dt_view in5[2] = {F32(y, 2, 2, 3), I64(p5, 1, 4)};
    L = layer("Pad", 11, 2, NULL, 1);
    attr_s(L, "mode", "reflect");
    CHECK_EQ_INT(run(L, in5, out), DUCTILE_ERR_SHAPE);
    L = layer("Pad", 11, 2, NULL, 1);
    attr_s(L, "mode", "wrap");
    CHECK_OK(run(L, in5, out));
    CHECK_DIMS(out[0], 2, 6);
    EXPECT(out[0], 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6);
    L = layer("Pad", 11, 2, NULL, 1);
    attr_s(L, "mode", "circular");
    CHECK_EQ_INT(run(L, in5, out), DUCTILE_ERR_UNSUPPORTED);
}

/* Not a check: prints how long the big copies take, to spot a slow path. */
static void time_big_copies(void)
{
    dt_view out[1];
    float *x = iota(8 * 512 * 4 * 64);
    dt_view in[1] = {F32(x, 4, 8, 512, 4, 64)};
    ductile_layer *L = layer("Transpose", 13, 1, NULL, 1);
    attr_ints(L, "perm", 4, (int64_t)0, (int64_t)2, (int64_t)1, (int64_t)3);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_OK(run(L, in, out));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "transpose [8,512,4,64] -> [8,4,512,64]: %.2f ms\n",
            (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    free_outs(out, 1);
    free(x);
}

static void test_trilu_eye_reverse(void)
{
    float *x = iota(12);
    int64_t k1 = 1, km1 = -1;
    dt_view in[2] = {F32(x, 2, 3, 4), I64(&k1, 0)}, out[1];
    ductile_layer *L = layer("Trilu", 14, 2, NULL, 1);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 3, 4);
    EXPECT(out[0], 0, 1, 2, 3, 0, 0, 6, 7, 0, 0, 0, 11);
    in[1].data = &km1;
    L = layer("Trilu", 14, 2, NULL, 1);
    attr_i(L, "upper", 0);
    CHECK_OK(run(L, in, out));
    EXPECT(out[0], 0, 0, 0, 0, 4, 0, 0, 0, 8, 9, 0, 0);

    /* EyeLike with k = 1 and int32 output. */
    dt_view e[1] = {F32(x, 2, 3, 4)};
    L = layer("EyeLike", 22, 1, NULL, 1);
    attr_i(L, "k", 1);
    attr_i(L, "dtype", DUCTILE_INT32);
    CHECK_OK(run(L, e, out));
    CHECK_EQ_INT(out[0].dtype, DUCTILE_INT32);
    EXPECT(out[0], 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1);

    /* ReverseSequence, time axis 0: batch 0 reverses 3 steps, batch 1 one. */
    int64_t lens[] = {3, 1}, bad[] = {3, 5};
    dt_view r[2] = {F32(x, 2, 4, 2), I64(lens, 1, 2)};
    L = layer("ReverseSequence", 10, 2, NULL, 1);
    attr_i(L, "batch_axis", 1);
    attr_i(L, "time_axis", 0);
    CHECK_OK(run(L, r, out));
    EXPECT(out[0], 4, 1, 2, 3, 0, 5, 6, 7);
    r[1].data = bad;
    L = layer("ReverseSequence", 10, 2, NULL, 1);
    rename_in(L, 0, "x");
    rename_in(L, 1, "lens");
    attr_i(L, "batch_axis", 1);
    attr_i(L, "time_axis", 0);
    CHECK_EQ_INT(run(L, r, out), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(dt_last_error(), "input 1 ('lens') holds the length 5 at position 1; expected 0..4 (the time dimension of input 0 ('x'))");
    free_outs(out, 1);
    free(x);
}

static void test_gather_scatter_nd(void)
{
    float *d = iota(8);
    int64_t idx[] = {1, 0};
    dt_view in[2] = {F32(d, 3, 2, 2, 2), I64(idx, 2, 2, 1)}, out[1];
    ductile_layer *L = layer("GatherND", 13, 2, NULL, 1);
    attr_i(L, "batch_dims", 1);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 2, 2);
    EXPECT(out[0], 2, 3, 4, 5);

    /* ScatterElements with add: duplicate indices accumulate. */
    int64_t si[] = {2, 2};
    float up[] = {10, 20};
    dt_view s[3] = {F32(d, 2, 2, 3), I64(si, 2, 1, 2), F32(up, 2, 1, 2)};
    L = layer("ScatterElements", 18, 3, NULL, 1);
    attr_i(L, "axis", 1);
    attr_s(L, "reduction", "add");
    CHECK_OK(run(L, s, out));
    EXPECT(out[0], 0, 1, 32, 3, 4, 5);

    int64_t oob[] = {2, 3};
    s[1].data = oob;
    L = layer("ScatterElements", 18, 3, NULL, 1);
    rename_in(L, 0, "data");
    rename_in(L, 1, "ids");
    attr_i(L, "axis", 1);
    CHECK_EQ_INT(run(L, s, out), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(dt_last_error(), "input 1 ('ids') holds the index 3 at position 1, out of range for dimension 1 of input 0 ('data'), which has size 3 (expected -3..2)");

    int64_t ni[] = {2, 0};
    float nu[] = {7, 8, 9, 10};
    dt_view n[3] = {F32(d, 2, 3, 2), I64(ni, 2, 2, 1), F32(nu, 2, 2, 2)};
    L = layer("ScatterND", 18, 3, NULL, 1);
    CHECK_OK(run(L, n, out));
    EXPECT(out[0], 9, 10, 2, 3, 7, 8);

    dt_view bad[3] = {F32(d, 2, 3, 2), I64(ni, 2, 2, 1), F32(nu, 2, 2, 1)};
    L = layer("ScatterND", 18, 3, NULL, 1);
    CHECK_EQ_INT(run(L, bad, out), DUCTILE_ERR_SHAPE);
    free_outs(out, 1);
    free(d);
}

static void test_conv_transpose_col2im(void)
{
    float *x = iota(12), *w = iota(8), *c = iota(16);
    dt_view in[3] = {F32(x, 4, 1, 1, 2, 3), F32(w, 4, 1, 2, 2, 2), NONE}, out[1];
    ductile_layer *L = layer("ConvTranspose", 22, 2, NULL, 1);
    attr_ints(L, "strides", 2, (int64_t)2, (int64_t)1);
    attr_ints(L, "pads", 4, (int64_t)0, (int64_t)1, (int64_t)1, (int64_t)0);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 1, 2, 3, 3);
    EXPECT(out[0], 0, 1, 2, 2, 7, 6, 3, 4, 5, 4, 13, 10, 6, 19, 14, 31, 40, 25);

    /* Two groups with a bias. */
    float b[] = {1, -1};
    dt_view g[3] = {F32(x, 4, 1, 2, 2, 3), F32(w, 4, 2, 1, 2, 2), F32(b, 1, 2)};
    L = layer("ConvTranspose", 22, 3, NULL, 1);
    attr_i(L, "group", 2);
    CHECK_OK(run(L, g, out));
    CHECK_DIMS(out[0], 1, 2, 3, 4);
    EXPECT(out[0], 1, 1, 2, 3, 1, 6, 12, 12, 7, 18, 23, 16, 23, 57, 66, 39, 71, 168, 190, 110, 53, 122, 135, 76);

    int64_t img[] = {3, 3}, blk[] = {2, 2};
    dt_view ci[3] = {F32(c, 3, 1, 4, 4), I64(img, 1, 2), I64(blk, 1, 2)};
    L = layer("Col2Im", 18, 3, NULL, 1);
    CHECK_OK(run(L, ci, out));
    CHECK_DIMS(out[0], 1, 1, 3, 3);
    EXPECT(out[0], 0, 5, 5, 10, 30, 20, 10, 25, 15);

    /* image_shape is a value input: without its value the shape is unknown. */
    dt_view nv[3] = {F32(c, 3, 1, 4, 4), I64(NULL, 1, 2), I64(blk, 1, 2)};
    L = layer("Col2Im", 18, 3, NULL, 1);
    rename_in(L, 1, "image_shape");
    CHECK_EQ_INT(run(L, nv, out), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(dt_last_error(), "the output shape depends on the data of input 1 ('image_shape')");
    free_outs(out, 1);
    free(x);
    free(w);
    free(c);
}

static void test_crop_compress_unique(void)
{
    float *x = iota(12);
    int64_t shape[] = {2, 7};
    dt_view in[2] = {F32(x, 2, 3, 4), I64(shape, 1, 2)}, out[4];
    ductile_layer *L = layer("CenterCropPad", 18, 2, NULL, 1);
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 2, 7);
    EXPECT(out[0], 0, 0, 1, 2, 3, 0, 0, 0, 4, 5, 6, 7, 0, 0);

    bool cond[] = {false, true, true}, flat[] = {false, true, false, false, true};
    dt_view c[2] = {F32(x, 2, 3, 4), view(DUCTILE_BOOL, cond, 1, (const int64_t[]){0, 3})};
    L = layer("Compress", 11, 2, NULL, 1);
    attr_i(L, "axis", 0);
    CHECK_OK(run(L, c, out));
    CHECK_DIMS(out[0], 2, 4);
    EXPECT(out[0], 4, 5, 6, 7, 8, 9, 10, 11);
    dt_view c2[2] = {F32(x, 2, 3, 4), view(DUCTILE_BOOL, flat, 1, (const int64_t[]){0, 5})};
    L = layer("Compress", 11, 2, NULL, 1);
    CHECK_OK(run(L, c2, out));
    CHECK_DIMS(out[0], 2);
    EXPECT(out[0], 1, 4);
    c2[1].data = NULL;
    L = layer("Compress", 11, 2, NULL, 1);
    rename_in(L, 1, "keep");
    CHECK_EQ_INT(run(L, c2, out), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(dt_last_error(), "the output shape depends on the data of input 1 ('keep')");

    float nz[] = {1, 0, 2, 0, -0.0f, 3};
    dt_view z[1] = {F32(nz, 2, 2, 3)};
    L = layer("NonZero", 13, 1, NULL, 1);
    CHECK_OK(run(L, z, out));
    CHECK_DIMS(out[0], 2, 3);
    EXPECT(out[0], 0, 0, 1, 0, 2, 2);

    float u[] = {2, 1, 1, 3, 4, 3};
    dt_view uv[1] = {F32(u, 1, 6)};
    L = layer("Unique", 11, 1, NULL, 4);
    attr_i(L, "sorted", 0);
    CHECK_OK(run(L, uv, out));
    EXPECT(out[0], 2, 1, 3, 4);
    EXPECT(out[1], 0, 1, 3, 4);
    EXPECT(out[2], 0, 1, 1, 2, 3, 2);
    EXPECT(out[3], 1, 2, 2, 1);

    float m[] = {1, 0, 0, 1, 0, 0, 2, 3, 4};
    dt_view mv[1] = {F32(m, 2, 3, 3)};
    L = layer("Unique", 11, 1, NULL, 4);
    attr_i(L, "axis", 0);
    CHECK_OK(run(L, mv, out));
    CHECK_DIMS(out[0], 2, 3);
    EXPECT(out[0], 1, 0, 0, 2, 3, 4);
    EXPECT(out[1], 0, 2);
    EXPECT(out[2], 0, 0, 1);
    EXPECT(out[3], 2, 1);
    free(x);
}

static void test_pad_wrap_space_to_depth_crd(void)
{
    float *x = iota(16);
    int64_t p[] = {0, 2, 1, 1};
    dt_view in[2] = {F32(x, 2, 2, 3), I64(p, 1, 4)}, out[1];
    ductile_layer *L = layer("Pad", 19, 2, NULL, 1);
    attr_s(L, "mode", "wrap");
    CHECK_OK(run(L, in, out));
    CHECK_DIMS(out[0], 3, 6);
    EXPECT(out[0], 1, 2, 0, 1, 2, 0, 4, 5, 3, 4, 5, 3, 1, 2, 0, 1, 2, 0);

    dt_view s[1] = {F32(x, 4, 1, 1, 4, 4)};
    L = layer("SpaceToDepth", 13, 1, NULL, 1);
    attr_i(L, "blocksize", 2);
    attr_s(L, "mode", "CRD");
    CHECK_OK(run(L, s, out));
    CHECK_DIMS(out[0], 1, 4, 2, 2);
    EXPECT(out[0], 0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15);
    free(x);
}

int main(void)
{
    if (ophelp_begin()) return 1;
    test_shape_size();
    test_gather();
    test_gather_elements();
    test_unsqueeze_squeeze();
    test_concat();
    test_slice();
    test_reshape();
    test_transpose();
    test_expand_tile();
    test_constant_range();
    test_depth_space();
    test_split();
    test_pad();
    test_trilu_eye_reverse();
    test_gather_scatter_nd();
    test_conv_transpose_col2im();
    test_crop_compress_unique();
    test_pad_wrap_space_to_depth_crd();
    time_big_copies();
    ophelp_end();
    TEST_MAIN_END();
}
