/* The quant ops (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger,
 * QLinearMatMul, ConvInteger, QLinearConv): check, infer and CPU kernel at small shapes with
 * per-axis, blocked and per-channel parameters, against onnx's reference implementation
 * (onnx/reference/ops) on the same inputs. Inputs come from formulas repeated here and in the
 * generator: x[i] = ((i * 7919 + seed * 31) % 23 - 11) / 4 for floats, (i * k) % 256 for
 * 8-bit integers. */
#include "testutil.h"
#include "ops/quant.h"
#include "ops/families.h"
#include "backend/cpu/families.h"
#include "backend/cpu/elementwise_impl.h"
#include "core/status.h"
#include "core/threadpool.h"

#include <math.h>
#include <stdlib.h>

/* [2, 3, 4] uint8 */
static const double exp_q_axis[] = {124.0, 134.0, 144.0, 120.0, 12.0, 17.0, 5.0, 10.0, 253.0, 247.0, 249.0, 252.0, 112.0, 122.0, 132.0, 143.0, 6.0, 11.0, 16.0, 4.0, 250.0, 252.0, 246.0, 249.0};
/* [2, 3, 4] int16 */
static const double exp_q_block[] = {-4.0, 6.0, 16.0, -2.0, 2.0, 7.0, -5.0, 0.0, 3.0, -3.0, -1.0, 1.0, -11.0, -4.0, 3.0, 6.0, -1.0, 0.0, 2.0, -12.0, -1.0, 4.0, -8.0, -2.0};
/* [2, 3, 4] float32 */
static const double exp_dq_axis[] = {-64.0, -58.5, -53.0, -47.5, 34.0, 45.0, 56.0, 67.0, -324.0, -302.0, -280.0, -258.0, 2.0, 7.5, 13.0, 18.5, 166.0, 177.0, 188.0, 199.0, -60.0, -38.0, -16.0, 6.0};
/* [2, 3, 4] float32 */
static const double exp_dq_block[] = {-63.0, -44.5, -26.0, -24.0, 20.0, 57.0, 94.0, -31.5, -180.0, -106.0, -32.0, 75.0, 45.75, 73.5, -90.75, -106.25, -196.0, -48.0, 100.0, 30.5, 102.0, -117.0, -80.0, -44.0};
/* [10] uint8 */
static const double exp_dyn_y[] = {0.0, 85.0, 170.0, 255.0, 60.0, 145.0, 230.0, 36.0, 121.0, 206.0};
/* [] float32 */
static const double exp_dyn_s[] = {0.020588235929608345};
/* [] uint8 */
static const double exp_dyn_z[] = {121.0};
/* [2, 3, 4] int32 */
static const double exp_mmi[] = {13958.0, 12614.0, 3914.0, -11416.0, 55103.0, 47519.0, 29329.0, -57176.0, 96248.0, 82424.0, 54744.0, -102936.0, 137393.0, 117329.0, 80159.0, -148696.0, 16490.0, 14762.0, 5478.0, -14232.0, 57635.0, 49667.0, 30893.0, -59992.0};
/* [2, 4] int8 */
static const double exp_qlmm[] = {30.0, 59.0, 53.0, 5.0, 34.0, 24.0, -22.0, -5.0};
/* [2, 4, 4, 3] int32 */
static const double exp_convi[] = {4346.0, 6572.0, 2090.0, 10029.0, 12423.0, 3570.0, 16014.0, 18408.0, 5040.0, 7241.0, 8207.0, 1725.0, 10280.0, 16370.0, 6000.0, 26175.0, 34365.0, 11850.0, 46650.0, 54840.0, 18150.0, 32495.0, 37325.0, 12075.0, 112847.0, 122549.0, 40595.0, 177348.0, 190956.0, 62850.0, 178600.0, 130512.0, 43457.0, 111594.0, 66020.0, 22122.0, 149669.0, 162563.0, 54465.0, 238566.0, 256962.0, 85650.0, 242060.0, 179304.0, 60519.0, 154648.0, 92810.0, 31584.0, 8162.0, 10388.0, 3122.0, 14133.0, 16527.0, 4578.0, 20118.0, 22512.0, 6048.0, 8897.0, 9863.0, 2037.0, 20720.0, 26810.0, 9240.0, 40215.0, 48405.0, 16170.0, 60690.0, 68880.0, 22470.0, 40775.0, 45605.0, 14595.0, 129479.0, 139181.0, 45899.0, 200676.0, 181516.0, 40058.0, 140232.0, 124912.0, 24505.0, 72050.0, 55404.0, 4178.0, 171773.0, 184667.0, 61593.0, 270102.0, 246002.0, 55866.0, 192444.0, 172184.0, 34575.0, 101120.0, 77938.0, 5736.0};
/* [2, 4, 4, 3] uint8 */
static const double exp_qlconv[] = {102.0, 103.0, 101.0, 104.0, 105.0, 101.0, 106.0, 107.0, 102.0, 103.0, 103.0, 101.0, 108.0, 113.0, 105.0, 121.0, 127.0, 109.0, 137.0, 144.0, 114.0, 126.0, 130.0, 109.0, 239.0, 251.0, 152.0, 255.0, 255.0, 179.0, 255.0, 255.0, 156.0, 238.0, 183.0, 130.0, 130.0, 133.0, 111.0, 148.0, 151.0, 117.0, 148.0, 136.0, 112.0, 131.0, 119.0, 106.0, 103.0, 104.0, 101.0, 106.0, 107.0, 102.0, 108.0, 109.0, 102.0, 104.0, 104.0, 101.0, 116.0, 121.0, 107.0, 132.0, 139.0, 113.0, 148.0, 155.0, 118.0, 132.0, 136.0, 112.0, 255.0, 255.0, 159.0, 255.0, 255.0, 152.0, 255.0, 253.0, 133.0, 190.0, 170.0, 109.0, 134.0, 137.0, 112.0, 154.0, 149.0, 111.0, 138.0, 134.0, 107.0, 120.0, 116.0, 101.0};
/* [6] int8 */
static const double exp_q_half[] = {12.0, -28.0, -11.0, 7.0, 25.0, -15.0};

static ductile_network *net;
static dt_pool *pool;
static int n_names;
static void *allocs[256];
static int n_allocs;

static void *keep(void *p)
{
    if (n_allocs < 256) allocs[n_allocs++] = p;
    return p;
}

/* A view of n elements of dtype, filled by f(i) converted with Cast's rules. */
static dt_view mk(int dtype, int rank, const int64_t *dims, double (*f)(int64_t, int), int arg)
{
    dt_view v = {.dtype = dtype, .rank = rank};
    for (int i = 0; i < rank; i++) v.dims[i] = dims[i];
    int64_t n = dt_view_count(&v);
    double *d = keep(malloc((size_t)(n ? n : 1) * sizeof *d));
    for (int64_t i = 0; i < n; i++) d[i] = f(i, arg);
    dt_view src = v;
    src.dtype = DUCTILE_FLOAT64;
    src.data = d;
    v.data = keep(malloc((size_t)(n ? n : 1) * 8));
    dt_exec ex = {0};
    if (n) dt_ew_cast_view(&src, &v, &ex);
    return v;
}

static double f_gen(int64_t i, int seed) { return (double)((i * 7919 + seed * 31) % 23 - 11) / 4.0; }
static double f_gen3(int64_t i, int seed) { return 3.0 * f_gen(i, seed); }
static double f_u8(int64_t i, int k) { return (double)(i * k % 256); }
static double f_i8(int64_t i, int k) { return (double)(i * k % 256 - 128); }
static double f_mod5(int64_t i, int k) { return (double)(i % 5 - 2); }

static const double *vals;
static double f_vals(int64_t i, int k) { return vals[i]; }

/* A view holding the given values. */
static dt_view lit(int dtype, int rank, const int64_t *dims, const double *v)
{
    vals = v;
    return mk(dtype, rank, dims, f_vals, 0);
}

static ductile_tensor *tensor(void)
{
    char name[32];
    snprintf(name, sizeof name, "t%d", n_names++);
    return dt_network_add_tensor(net, name);
}

static ductile_layer *layer(const char *op, int opset, int n_in, const dt_view *in, int n_out)
{
    ductile_layer *L = dt_network_add_layer(net, op, NULL, n_in, n_out, 8);
    L->opset = opset;
    L->n_attr = 0;
    for (int i = 0; i < n_in; i++) L->in[i] = in[i].rank >= 0 ? tensor() : NULL;
    for (int i = 0; i < n_out; i++) L->out[i] = tensor();
    return L;
}

static dt_attr *attr(ductile_layer *L, const char *name, int type)
{
    dt_attr *a = &L->attrs[L->n_attr++];
    a->name = name;
    a->type = type;
    return a;
}

static void a_int(ductile_layer *L, const char *name, int64_t v) { attr(L, name, DT_ATTR_INT)->i = v; }

static void a_ints(ductile_layer *L, const char *name, const int64_t *v, int64_t n)
{
    dt_attr *a = attr(L, name, DT_ATTR_INTS);
    a->ints = v;
    a->n = n;
}

static ductile_status build(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    const dt_opdef *d = NULL;
    for (const dt_opdef *o = dt_ops_quant; o->op_type; o++)
        if (strcmp(o->op_type, L->op_type) == 0) d = o;
    if (!d) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "no definition");
    if (d->check) DT_TRY(d->check(L));
    return d->infer(L, in, out);
}

static dt_cpu_run_fn kernel(const char *op)
{
    for (const dt_cpu_kernel *k = dt_cpu_quant; k->op_type; k++)
        if (strcmp(k->op_type, op) == 0) return k->kernel ? dt_cpu_run_once : k->run;
    return NULL;
}

/* check + infer + kernel, inline and on the pool; output o must have dtype, dims and values. */
static void expect(const ductile_layer *L, const dt_view *in, int o, int dtype, int rank,
                   const int64_t *dims, const double *exp)
{
    for (int threaded = 0; threaded < 2; threaded++) {
        dt_view out[3] = {{0}};
        ductile_status st = build(L, in, out);
        if (st != DUCTILE_OK) {
            fprintf(stderr, "%s: %s\n", L->op_type, dt_last_error());
            CHECK_EQ_INT(st, DUCTILE_OK);
            return;
        }
        CHECK_EQ_INT(out[o].dtype, dtype);
        CHECK_EQ_INT(out[o].rank, rank);
        bool same = out[o].rank == rank;
        for (int i = 0; same && i < rank; i++) same = out[o].dims[i] == dims[i];
        CHECK(same);
        if (!same || out[o].dtype != dtype) return;
        for (int i = 0; i < L->n_out; i++)
            out[i].data = keep(calloc((size_t)dt_view_count(&out[i]) + 1, 8));
        dt_exec ex = {.pool = threaded ? pool : NULL};
        CHECK_EQ_INT(kernel(L->op_type)(L, in, out, &ex), DUCTILE_OK);
        int64_t n = dt_view_count(&out[o]), bad = -1;
        for (int64_t i = 0; i < n && bad < 0; i++) {
            double y = dt_ew_get_f64(&out[o], i);
            if (!(fabs(y - exp[i]) <= 1e-6 * (1 + fabs(exp[i])))) bad = i;
        }
        if (bad >= 0)
            fprintf(stderr, "%s (%s): output %d element %lld is %.9g, expected %.9g\n", L->op_type,
                    threaded ? "pool" : "inline", o, (long long)bad,
                    dt_ew_get_f64(&out[o], bad), exp[bad]);
        CHECK(bad < 0);
    }
}

static const dt_view omitted = {.rank = -1};

static void test_quantize(void)
{
    const int64_t d234[] = {2, 3, 4}, d3[] = {3}, d232[] = {2, 3, 2};
    const double sc[] = {0.5, 1.0, 2.0}, zp[] = {128, 10, 250};
    dt_view in[3] = {mk(DUCTILE_FLOAT32, 3, d234, f_gen3, 1), lit(DUCTILE_FLOAT32, 1, d3, sc),
                     lit(DUCTILE_UINT8, 1, d3, zp)};
    ductile_layer *L = layer("QuantizeLinear", 21, 3, in, 1);
    a_int(L, "axis", 1);
    expect(L, in, 0, DUCTILE_UINT8, 3, d234, exp_q_axis);

    /* Blocked along the last axis: blocks of 3 over 4 elements, the last one short. */
    const double bs[] = {0.5, 1.5, 1.0, 0.25, 2.0, 3.0, 0.75, 1.25, 4, 0.5, 1, 1};
    dt_view bin[2] = {in[0], lit(DUCTILE_FLOAT32, 3, d232, bs)};
    L = layer("QuantizeLinear", 21, 2, bin, 1);
    a_int(L, "axis", 2);
    a_int(L, "block_size", 3);
    a_int(L, "output_dtype", DUCTILE_INT16);
    expect(L, bin, 0, DUCTILE_INT16, 3, d234, exp_q_block);

    /* float16 x / float16 scale rounds the quotient to float16 before rounding to int. */
    const int64_t d6[] = {6};
    const double hs = 0.3, hz = -3;
    dt_view hin[3] = {mk(DUCTILE_FLOAT16, 1, d6, f_gen3, 5), lit(DUCTILE_FLOAT16, 0, NULL, &hs),
                      lit(DUCTILE_INT8, 0, NULL, &hz)};
    L = layer("QuantizeLinear", 21, 3, hin, 1);
    expect(L, hin, 0, DUCTILE_INT8, 1, d6, exp_q_half);

    /* A block scale whose blocked dim is wrong is a shape error naming the scale. */
    const int64_t d233[] = {2, 3, 3};
    dt_view wrong[2] = {in[0], mk(DUCTILE_FLOAT32, 3, d233, f_gen, 2)};
    L = layer("QuantizeLinear", 21, 2, wrong, 1);
    a_int(L, "axis", 2);
    a_int(L, "block_size", 3);
    dt_view out[1];
    CHECK_EQ_INT(build(L, wrong, out), DUCTILE_ERR_SHAPE);
    CHECK(strstr(dt_last_error(), "input 1 (scale)") != NULL);

    /* Types ductile does not quantize to are refused at check time, by name. */
    L = layer("QuantizeLinear", 21, 2, bin, 1);
    a_int(L, "output_dtype", DUCTILE_INT32);
    CHECK_EQ_INT(build(L, bin, out), DUCTILE_ERR_UNSUPPORTED);
    CHECK(strstr(dt_last_error(), "output_dtype") != NULL);
}

static void test_dequantize(void)
{
    const int64_t d234[] = {2, 3, 4}, d3[] = {3}, d232[] = {2, 3, 2};
    const double sc[] = {0.5, 1.0, 2.0}, zp[] = {128, 10, 250};
    dt_view in[3] = {mk(DUCTILE_UINT8, 3, d234, f_u8, 11), lit(DUCTILE_FLOAT32, 1, d3, sc),
                     lit(DUCTILE_UINT8, 1, d3, zp)};
    ductile_layer *L = layer("DequantizeLinear", 21, 3, in, 1);
    expect(L, in, 0, DUCTILE_FLOAT32, 3, d234, exp_dq_axis);

    const double bs[] = {0.5, 1.5, 1.0, 0.25, 2.0, 3.0, 0.75, 1.25, 4, 0.5, 1, 1};
    dt_view bin[3] = {mk(DUCTILE_INT8, 3, d234, f_i8, 37), lit(DUCTILE_FLOAT32, 3, d232, bs),
                      mk(DUCTILE_INT8, 3, d232, f_mod5, 0)};
    L = layer("DequantizeLinear", 21, 3, bin, 1);
    a_int(L, "axis", 2);
    a_int(L, "block_size", 3);
    expect(L, bin, 0, DUCTILE_FLOAT32, 3, d234, exp_dq_block);

    /* The zero point must have x's type. */
    dt_view mixed[3] = {bin[0], bin[1], in[2]};
    L = layer("DequantizeLinear", 21, 3, mixed, 1);
    dt_view out[1];
    CHECK_EQ_INT(build(L, mixed, out), DUCTILE_ERR_INVALID_ARGUMENT);
}

static void test_dynamic_quantize(void)
{
    const int64_t d10[] = {10};
    dt_view in[1] = {mk(DUCTILE_FLOAT32, 1, d10, f_gen, 3)};
    ductile_layer *L = layer("DynamicQuantizeLinear", 11, 1, in, 3);
    expect(L, in, 0, DUCTILE_UINT8, 1, d10, exp_dyn_y);
    expect(L, in, 1, DUCTILE_FLOAT32, 0, NULL, exp_dyn_s);
    expect(L, in, 2, DUCTILE_UINT8, 0, NULL, exp_dyn_z);
}

static void test_integer_matmul(void)
{
    const int64_t d235[] = {2, 3, 5}, d54[] = {5, 4}, d4[] = {4}, d234[] = {2, 3, 4};
    const double az = 12, bz[] = {3, 0, 7, 255};
    dt_view in[4] = {mk(DUCTILE_UINT8, 3, d235, f_u8, 13), mk(DUCTILE_UINT8, 2, d54, f_u8, 29),
                     lit(DUCTILE_UINT8, 0, NULL, &az), lit(DUCTILE_UINT8, 1, d4, bz)};
    ductile_layer *L = layer("MatMulInteger", 10, 4, in, 1);
    expect(L, in, 0, DUCTILE_INT32, 3, d234, exp_mmi);

    const int64_t d23[] = {2, 3}, d34[] = {3, 4}, d24[] = {2, 4};
    const double as = 0.05, a0 = 3, bs = 0.02, b0 = -5, ys = 0.3, y0 = 10;
    dt_view q[8] = {mk(DUCTILE_INT8, 2, d23, f_i8, 41), lit(DUCTILE_FLOAT32, 0, NULL, &as),
                    lit(DUCTILE_INT8, 0, NULL, &a0), mk(DUCTILE_INT8, 2, d34, f_i8, 53),
                    lit(DUCTILE_FLOAT32, 0, NULL, &bs), lit(DUCTILE_INT8, 0, NULL, &b0),
                    lit(DUCTILE_FLOAT32, 0, NULL, &ys), lit(DUCTILE_INT8, 0, NULL, &y0)};
    L = layer("QLinearMatMul", 21, 8, q, 1);
    expect(L, q, 0, DUCTILE_INT8, 2, d24, exp_qlmm);

    /* A zero point per column must have one value per column. */
    const double bad[] = {1, 2, 3};
    const int64_t d3[] = {3};
    dt_view wrong[4] = {in[0], in[1], omitted, lit(DUCTILE_UINT8, 1, d3, bad)};
    L = layer("MatMulInteger", 10, 4, wrong, 1);
    dt_view out[1];
    CHECK_EQ_INT(build(L, wrong, out), DUCTILE_ERR_SHAPE);
    CHECK(strstr(dt_last_error(), "b_zero_point") != NULL);
}

static void test_integer_conv(void)
{
    const int64_t dx[] = {2, 2, 4, 5}, dw[] = {4, 1, 3, 3}, d4[] = {4}, dy[] = {2, 4, 4, 3};
    static const int64_t pads[] = {1, 0, 1, 2}, strides[] = {1, 2};
    const double xz = 3, wz[] = {1, 0, 2, 9};
    dt_view in[4] = {mk(DUCTILE_UINT8, 4, dx, f_u8, 7), mk(DUCTILE_UINT8, 4, dw, f_u8, 5),
                     lit(DUCTILE_UINT8, 0, NULL, &xz), lit(DUCTILE_UINT8, 1, d4, wz)};
    ductile_layer *L = layer("ConvInteger", 10, 4, in, 1);
    a_int(L, "group", 2);
    a_ints(L, "pads", pads, 4);
    a_ints(L, "strides", strides, 2);
    expect(L, in, 0, DUCTILE_INT32, 4, dy, exp_convi);

    const double xs = 0.02, ws[] = {0.01, 0.02, 0.03, 0.005}, ys = 0.5, yz = 100;
    const double bias[] = {100, -200, 3000, -7};
    dt_view q[9] = {in[0], lit(DUCTILE_FLOAT32, 0, NULL, &xs), in[2], in[1],
                    lit(DUCTILE_FLOAT32, 1, d4, ws), in[3], lit(DUCTILE_FLOAT32, 0, NULL, &ys),
                    lit(DUCTILE_UINT8, 0, NULL, &yz), lit(DUCTILE_INT32, 1, d4, bias)};
    L = layer("QLinearConv", 10, 9, q, 1);
    a_int(L, "group", 2);
    a_ints(L, "pads", pads, 4);
    a_ints(L, "strides", strides, 2);
    expect(L, q, 0, DUCTILE_UINT8, 4, dy, exp_qlconv);

    /* 3-D kernels are refused at check time. */
    static const int64_t k3[] = {1, 1, 1};
    L = layer("ConvInteger", 10, 2, in, 1);
    a_ints(L, "kernel_shape", k3, 3);
    dt_view out[1];
    CHECK_EQ_INT(build(L, in, out), DUCTILE_ERR_UNSUPPORTED);
}

int main(void)
{
    if (dt_network_new(&net) != DUCTILE_OK || dt_pool_create(2, &pool) != DUCTILE_OK) return 1;
    test_quantize();
    test_dequantize();
    test_dynamic_quantize();
    test_integer_matmul();
    test_integer_conv();
    dt_pool_free(pool);
    dt_network_delete(net);
    for (int i = 0; i < n_allocs; i++) free(allocs[i]);
    TEST_MAIN_END();
}
