/* MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv: checks and shapes. The geometry is
 * the float ops' (ops/linalg.h), so the integer kernels agree with MatMul and Conv. */
#include "ops/quant.h"
#include "ops/linalg.h"
#include "core/status.h"

#include <string.h>

static const char *dt_qi_name(int dtype)
{
    return ductile_dtype_name((ductile_dtype)dtype);
}

/* Input i is int8 or uint8; its zero point (input zi, when given) has the same type. */
static ductile_status dt_qi_int8(const ductile_layer *L, const dt_view *in, int i, const char *what,
                                 int zi, const char *zwhat)
{
    if (in[i].dtype != DUCTILE_INT8 && in[i].dtype != DUCTILE_UINT8)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input %d (%s) has dtype %s (supported: int8, uint8)",
                       i, what, dt_qi_name(in[i].dtype));
    if (zi >= 0 && dt_quant_present(L, in, zi) && in[zi].dtype != in[i].dtype)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "input %d (%s) has dtype %s; expected %s like input %d (%s)", zi, zwhat,
                       dt_qi_name(in[zi].dtype), dt_qi_name(in[i].dtype), i, what);
    return DUCTILE_OK;
}

static ductile_status dt_qi_float(const dt_view *in, int i, const char *what)
{
    if (in[i].dtype != DUCTILE_FLOAT32 && in[i].dtype != DUCTILE_FLOAT16 &&
        in[i].dtype != DUCTILE_BFLOAT16)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "input %d (%s) has dtype %s (supported: float32, float16, bfloat16)", i,
                       what, dt_qi_name(in[i].dtype));
    return DUCTILE_OK;
}

/* ---- MatMulInteger: A, B, a_zero_point?, b_zero_point? ---- */

ductile_status dt_matmulint_check(const ductile_layer *L)
{
    return dt_check_arity(L, 2, 4, 1, 1, NULL);
}

ductile_status dt_matmulint_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_qi_int8(L, in, 0, "A", 2, "a_zero_point"));
    DT_TRY(dt_qi_int8(L, in, 1, "B", 3, "b_zero_point"));
    dt_matmul_geom g;
    DT_TRY(dt_matmul_geometry(&in[0], &in[1], &g));
    bool per;
    DT_TRY(dt_quant_vec(L, in, 2, "a_zero_point", g.M, "one per row of A", &per));
    DT_TRY(dt_quant_vec(L, in, 3, "b_zero_point", g.N, "one per column of B", &per));
    out[0].dtype = DUCTILE_INT32;
    out[0].rank = g.out_rank;
    for (int i = 0; i < g.out_rank; i++) out[0].dims[i] = g.out[i];
    return DUCTILE_OK;
}

/* ---- QLinearMatMul: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp ---- */

ductile_status dt_qlmatmul_check(const ductile_layer *L)
{
    return dt_check_arity(L, 8, 8, 1, 1, NULL);
}

ductile_status dt_qlmatmul_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_qi_int8(L, in, 0, "a", 2, "a_zero_point"));
    DT_TRY(dt_qi_int8(L, in, 3, "b", 5, "b_zero_point"));
    DT_TRY(dt_qi_int8(L, in, 7, "y_zero_point", -1, NULL));
    DT_TRY(dt_qi_float(in, 1, "a_scale"));
    DT_TRY(dt_qi_float(in, 4, "b_scale"));
    DT_TRY(dt_qi_float(in, 6, "y_scale"));
    dt_matmul_geom g;
    DT_TRY(dt_matmul_geometry(&in[0], &in[3], &g));
    bool per;
    DT_TRY(dt_quant_vec(L, in, 1, "a_scale", g.M, "one per row of a", &per));
    DT_TRY(dt_quant_vec(L, in, 2, "a_zero_point", g.M, "one per row of a", &per));
    DT_TRY(dt_quant_vec(L, in, 4, "b_scale", g.N, "one per column of b", &per));
    DT_TRY(dt_quant_vec(L, in, 5, "b_zero_point", g.N, "one per column of b", &per));
    DT_TRY(dt_quant_vec(L, in, 6, "y_scale", 1, "a single value", &per));
    DT_TRY(dt_quant_vec(L, in, 7, "y_zero_point", 1, "a single value", &per));
    out[0].dtype = in[7].dtype;
    out[0].rank = g.out_rank;
    for (int i = 0; i < g.out_rank; i++) out[0].dims[i] = g.out[i];
    return DUCTILE_OK;
}

/* ---- ConvInteger, QLinearConv ---- */

static ductile_status dt_qi_conv_attrs(const ductile_layer *L)
{
    const char *ap;
    DT_TRY(dt_auto_pad(L, &ap));
    int64_t nk = 0;
    if (dt_attr_ints(L, "kernel_shape", &nk) && (nk < 1 || nk > 2))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'kernel_shape' has %lld values; only 1-D and 2-D "
                       "convolutions are supported", (long long)nk);
    return DUCTILE_OK;
}

/* The integer convolutions run 1-D and 2-D only (Conv's geometry also reads 3-D). */
static ductile_status dt_qi_conv_geometry(const ductile_layer *L, const dt_view *x, const dt_view *w,
                                          dt_conv_geom *g)
{
    if (x->rank == 5)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 (x) has rank 5; 3-D integer convolution is not supported");
    return dt_conv_geometry(L, x, w, g);
}

static void dt_qi_conv_out(const dt_view *x, const dt_conv_geom *g, int dtype, dt_view *out)
{
    out->dtype = dtype;
    out->rank = x->rank;
    out->dims[0] = g->batch;
    out->dims[1] = g->m;
    dt_conv_out_dims(g, out->dims + 2);
}

/* x, w, x_zero_point?, w_zero_point? */
ductile_status dt_convint_check(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 4, 1, 1, NULL));
    return dt_qi_conv_attrs(L);
}

ductile_status dt_convint_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_qi_int8(L, in, 0, "x", 2, "x_zero_point"));
    DT_TRY(dt_qi_int8(L, in, 1, "w", 3, "w_zero_point"));
    dt_conv_geom g;
    DT_TRY(dt_qi_conv_geometry(L, &in[0], &in[1], &g));
    bool per;
    DT_TRY(dt_quant_vec(L, in, 2, "x_zero_point", 1, "a single value", &per));
    DT_TRY(dt_quant_vec(L, in, 3, "w_zero_point", g.m, "one per output channel", &per));
    dt_qi_conv_out(&in[0], &g, DUCTILE_INT32, &out[0]);
    return DUCTILE_OK;
}

/* x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B? */
ductile_status dt_qlconv_check(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 8, 9, 1, 1, NULL));
    return dt_qi_conv_attrs(L);
}

ductile_status dt_qlconv_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_qi_int8(L, in, 0, "x", 2, "x_zero_point"));
    DT_TRY(dt_qi_int8(L, in, 3, "w", 5, "w_zero_point"));
    DT_TRY(dt_qi_int8(L, in, 7, "y_zero_point", -1, NULL));
    DT_TRY(dt_qi_float(in, 1, "x_scale"));
    DT_TRY(dt_qi_float(in, 4, "w_scale"));
    DT_TRY(dt_qi_float(in, 6, "y_scale"));
    dt_conv_geom g;
    DT_TRY(dt_qi_conv_geometry(L, &in[0], &in[3], &g));
    bool per;
    DT_TRY(dt_quant_vec(L, in, 1, "x_scale", 1, "a single value", &per));
    DT_TRY(dt_quant_vec(L, in, 2, "x_zero_point", 1, "a single value", &per));
    DT_TRY(dt_quant_vec(L, in, 4, "w_scale", g.m, "one per output channel", &per));
    DT_TRY(dt_quant_vec(L, in, 5, "w_zero_point", g.m, "one per output channel", &per));
    DT_TRY(dt_quant_vec(L, in, 6, "y_scale", 1, "a single value", &per));
    DT_TRY(dt_quant_vec(L, in, 7, "y_zero_point", 1, "a single value", &per));
    if (dt_quant_present(L, in, 8)) {
        if (in[8].dtype != DUCTILE_INT32 || in[8].rank != 1 || in[8].dims[0] != g.m) {
            char sb[160];
            dt_format_dims(sb, sizeof sb, in[8].dims, in[8].rank, NULL);
            return dt_fail(DUCTILE_ERR_SHAPE, "input 8 (B) is %s %s; expected int32 [%lld] (one "
                           "bias per output channel)", dt_qi_name(in[8].dtype), sb,
                           (long long)g.m);
        }
    }
    dt_qi_conv_out(&in[0], &g, in[7].dtype, &out[0]);
    return DUCTILE_OK;
}
