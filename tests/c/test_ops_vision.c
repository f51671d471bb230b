/* The vision ops (GridSample, AffineGrid, NonMaxSuppression, LRN, GroupNormalization,
 * MeanVarianceNormalization, MaxUnpool, Upsample, LpPool, GlobalLpPool) and the nn gaps they
 * came with (Resize cubic/antialias/tf_crop_and_resize/axes, AveragePool dilations): each
 * op's check, infer and CPU kernel at small odd shapes, against values computed with the ONNX
 * reference (onnx.reference) for the same single-node model. Inputs are generated here and in
 * the generator by one formula, x[i] = ((i * 7919 + seed * 31) % 23 - 11) / div, so only the
 * expected outputs are embedded. */
#include "ophelp.h"
#include "ops/vision.h"
#include "ops/families.h"
#include "backend/cpu/families.h"
#include "core/status.h"
#include "core/threadpool.h"

#include <math.h>
#include <stdlib.h>

/* [1, 2, 2, 3] */
static const float exp_gs_linear[] = {0.26249998807907104f, 0.47625014185905457f, -0.5625f, -0.8200000524520874f, 0.28124988079071045f, -0.02500009536743164f, 0.5687499642372131f, 0.2874999940395355f, 1.0250000953674316f, -1.0400004386901855f, -1.5187499523162842f, 0.9875000715255737f};
/* [1, 2, 2, 3] */
static const float exp_gs_nearest_border[] = {2.75f, 2.25f, -1.25f, -0.5f, 0.5f, 2.75f, 0.75f, 0.25f, 2.5f, -2.5f, -1.5f, 0.75f};
/* [1, 2, 2, 3] */
static const float exp_gs_cubic_refl[] = {1.2833054065704346f, 0.8285681009292603f, -1.8175318241119385f, -1.445299506187439f, 0.08911637961864471f, 0.06604990363121033f, 2.066328287124634f, 0.5325455069541931f, 2.3550047874450684f, -1.917812705039978f, -1.879336953163147f, 2.6373915672302246f};
/* [1, 1, 2, 2, 2] */
static const float exp_gs_3d[] = {-0.09259269386529922f, 0.24305549263954163f, 0.7129629254341125f, 0.7407405972480774f, 0.4745368957519531f, -0.027777746319770813f, 0.1041666641831398f, 0.24305550754070282f};
/* [2, 3, 4, 2] */
static const float exp_ag[] = {-0.1041666641831398f, -1.9166666269302368f, 0.2708333432674408f, -1.6666666269302368f, 0.6458333134651184f, -1.4166666269302368f, 1.0208333730697632f, -1.1666666269302368f, -0.9375f, -1.0f, -0.5625f, -0.75f, -0.1875f, -0.5f, 0.1875f, -0.25f, -1.7708333730697632f, -0.0833333358168602f, -1.3958333730697632f, 0.1666666716337204f, -1.0208333730697632f, 0.4166666567325592f, -0.6458333134651184f, 0.6666666865348816f, -1.8125f, -1.7083333730697632f, -1.6875f, -1.7083333730697632f, -1.5625f, -1.7083333730697632f, -1.4375f, -1.7083333730697632f, -1.0625f, -1.125f, -0.9375f, -1.125f, -0.8125f, -1.125f, -0.6875f, -1.125f, -0.3125f, -0.5416666865348816f, -0.1875f, -0.5416666865348816f, -0.0625f, -0.5416666865348816f, 0.0625f, -0.5416666865348816f};
/* [4, 3] */
static const int64_t exp_nms[] = {0, 0, 3, 0, 0, 0, 0, 1, 5, 0, 1, 4};
/* [1, 5, 2, 2], by the ONNX test generator's formula (onnx.reference's LRN loops over N, not C) */
static const float exp_lrn[] = {-1.75001060962677f, -0.3916022777557373f, 0.9699965715408325f, -2.128418445587158f, -0.7777185440063477f, 0.5842982530593872f, 1.9298937320709229f, -1.1608607769012451f, 0.19515250623226166f, 1.5459243059158325f, -1.5459243059158325f, -0.19515250623226166f, 1.1608607769012451f, -1.9298937320709229f, -0.5842982530593872f, 0.7777185440063477f, 2.128418445587158f, -0.9699965715408325f, 0.3916022777557373f, 1.75001060962677f};
/* [2, 4, 3] */
static const float exp_gn[] = {-2.56013822555542f, -0.7504608631134033f, -4.886866569519043f, 1.134957194328308f, -1.1917709112167358f, -3.5184988975524902f, 2.016913652420044f, 1.4138476848602295f, 0.8107817769050598f, -4.223045349121094f, -2.7153806686401367f, -1.2077158689498901f, -3.8091979026794434f, -1.6984670162200928f, 0.4122638702392578f, 2.8514819145202637f, 0.13768523931503296f, -2.576111316680908f, 0.7957119345664978f, 2.0030629634857178f, 1.4748468399047852f, -1.116576910018921f, -4.134954452514648f, -2.8144142627716064f};
/* [2, 3, 2, 2] */
static const float exp_mvn[] = {0.3476635217666626f, 1.492908000946045f, -1.1247937679290771f, 0.02045079506933689f, 0.7647191286087036f, -1.6823821067810059f, -0.6117753386497498f, 0.4588314890861511f, 1.2884000539779663f, -1.3293017148971558f, -0.18405716121196747f, 0.9611873626708984f, -0.9611873626708984f, 0.18405716121196747f, 1.3293017148971558f, -1.2884000539779663f, -0.4588314890861511f, 0.6117753386497498f, 1.6823821067810059f, -0.7647191286087036f, -0.02045079506933689f, 1.1247937679290771f, -1.492908000946045f, -0.3476635217666626f};
/* [1, 1, 5, 5] */
static const float exp_unpool[] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 2.0f, 0.0f, -2.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, -0.25f, 0.0f, 1.5f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
/* [1, 1, 4, 4] */
static const float exp_ups_linear[] = {-1.75f, -0.5833333134651184f, 0.5833333134651184f, 1.75f, -2.0f, -0.8333333134651184f, 0.3333333432674408f, 1.5f, -2.25f, -1.0833333730697632f, 0.0833333358168602f, 1.25f, -2.25f, -1.0833333730697632f, 0.0833333358168602f, 1.25f};
/* [1, 2, 2, 2] */
static const float exp_lppool[] = {3.2095580101013184f, 3.2754414081573486f, 3.1190552711486816f, 3.25443172454834f, 3.1350343227386475f, 3.1350343227386475f, 3.25443172454834f, 3.1190552711486816f};
/* [1, 2] */
static const float exp_glp[] = {7.361216068267822f, 7.288690090179443f};
/* [1, 1, 3, 6] */
static const float exp_rs_cubic[] = {1.9444023370742798f, 0.046885065734386444f, -1.6170971393585205f, -0.18422715365886688f, 0.8115909695625305f, 1.2963767051696777f, -2.1231491565704346f, -1.1158088445663452f, 0.5555918216705322f, 2.277958393096924f, -0.13970588147640228f, -2.7948179244995117f, 0.006313490681350231f, 1.1417819261550903f, 1.5573084354400635f, -1.1147178411483765f, -1.0910027027130127f, -0.3064679503440857f};
/* [1, 1, 2, 2] */
static const float exp_rs_aa[] = {-0.2656249701976776f, 0.1423610895872116f, 0.12499997764825821f, 0.09375007450580597f};
/* [1, 1, 3, 3] */
static const float exp_rs_crop[] = {-0.6150000691413879f, 0.5800001621246338f, 7.0f, -0.9124999642372131f, 1.6625003814697266f, 7.0f, 0.4000000059604645f, -0.6474999785423279f, 7.0f};
/* [1, 1, 3, 5] */
static const float exp_ap_dil[] = {-0.625f, 0.1875f, -0.375f, 0.5f, 0.25f, 0.1875f, 0.375f, -0.75f, 1.0f, -0.9375f, -0.625f, 0.1875f, -0.375f, 0.5f, 0.25f};

/* A float view of generated data. */
static dt_view gview(int rank, const int64_t *dims, int seed, float div)
{
    dt_view v = fview(rank, dims, NULL);
    v.data = gen(dt_view_count(&v), seed, div);
    return v;
}

static dt_view iview(int rank, const int64_t *dims, const int64_t *data)
{
    return view_of(DUCTILE_INT64, rank, dims, data);
}

/* check + infer + kernel, inline and on the pool; output 0 must match exp (float) or iexp
 * (int64). */
static void expect_any(const ductile_layer *L, const dt_view *in, int rank, const int64_t *dims,
                       const float *exp, const int64_t *iexp)
{
    expect_want(L, in, &(want){.dtype = -1, .rank = rank, .dims = dims, .f = exp, .i = iexp,
                               .atol = 1e-4, .rtol = 1e-4});
}

static void expect(const ductile_layer *L, const dt_view *in, int rank, const int64_t *dims,
                   const float *exp)
{
    expect_any(L, in, rank, dims, exp, NULL);
}

static void test_gridsample(void)
{
    static const int64_t dx[4] = {1, 2, 3, 4}, dg[4] = {1, 2, 3, 2}, dy[4] = {1, 2, 2, 3};
    dt_view in[2] = {gview(4, dx, 1, 4.0f), gview(4, dg, 2, 10.0f)};
    ductile_layer *L = layer("GridSample", 20, 2, in, 1);
    a_str(L, "mode", "linear");
    expect(L, in, 4, dy, exp_gs_linear);
    L = layer("GridSample", 20, 2, in, 1);
    a_str(L, "mode", "nearest");
    a_str(L, "padding_mode", "border");
    a_int(L, "align_corners", 1);
    expect(L, in, 4, dy, exp_gs_nearest_border);
    L = layer("GridSample", 20, 2, in, 1);
    a_str(L, "mode", "cubic");
    a_str(L, "padding_mode", "reflection");
    expect(L, in, 4, dy, exp_gs_cubic_refl);
    /* Opset 16 spells the same mode 'bicubic'. */
    L = layer("GridSample", 16, 2, in, 1);
    a_str(L, "mode", "bicubic");
    a_str(L, "padding_mode", "reflection");
    expect(L, in, 4, dy, exp_gs_cubic_refl);

    static const int64_t dx3[5] = {1, 1, 2, 3, 3}, dg3[5] = {1, 2, 2, 2, 3}, dy3[5] = {1, 1, 2, 2, 2};
    dt_view v3[2] = {gview(5, dx3, 3, 4.0f), gview(5, dg3, 4, 9.0f)};
    L = layer("GridSample", 20, 2, v3, 1);
    expect(L, v3, 5, dy3, exp_gs_3d);

    L = layer("GridSample", 20, 2, in, 1);
    a_str(L, "mode", "area");
    expect_error(L, in, DUCTILE_ERR_UNSUPPORTED, "'mode' = 'area'");
    static const int64_t bad[4] = {1, 2, 3, 3};
    dt_view wrong[2] = {in[0], gview(4, bad, 2, 10.0f)};
    L = layer("GridSample", 20, 2, wrong, 1);
    expect_error(L, wrong, DUCTILE_ERR_SHAPE, "input 1 (grid)");
}

static void test_affinegrid(void)
{
    static const int64_t dt[3] = {2, 2, 3}, ds[1] = {4}, dy[4] = {2, 3, 4, 2};
    static const int64_t size[4] = {2, 1, 3, 4};
    dt_view in[2] = {gview(3, dt, 5, 8.0f), iview(1, ds, size)};
    ductile_layer *L = layer("AffineGrid", 20, 2, in, 1);
    a_int(L, "align_corners", 0);
    expect(L, in, 4, dy, exp_ag);
    dt_view unknown[2] = {in[0], iview(1, ds, NULL)};
    L = layer("AffineGrid", 20, 2, unknown, 1);
    expect_error(L, unknown, DUCTILE_ERR_UNSUPPORTED, "depends on the data of input 1");
}

static void test_nms(void)
{
    static const float boxes[24] = {0, 0, 1, 1, 0, 0.1f, 1, 1.1f, 0, -0.1f, 1, 0.9f,
                                    0, 10, 1, 11, 0, 10.1f, 1, 11.1f, 0, 100, 1, 101};
    static const float scores[12] = {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f,
                                     0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
    static const int64_t maxo[1] = {2};
    static const float iou[1] = {0.5f}, thr[1] = {0.25f};
    static const int64_t db[3] = {1, 6, 4}, dsc[3] = {1, 2, 6}, d1[1] = {1}, dy[2] = {4, 3};
    dt_view in[5] = {fview(3, db, boxes), fview(3, dsc, scores), iview(1, d1, maxo),
                     fview(1, d1, iou), fview(1, d1, thr)};
    ductile_layer *L = layer("NonMaxSuppression", 11, 5, in, 1);
    expect_any(L, in, 2, dy, NULL, exp_nms);
    /* Without the data (a static build), the shape cannot be known. */
    dt_view unknown[5] = {fview(3, db, NULL), fview(3, dsc, NULL), in[2], in[3], in[4]};
    L = layer("NonMaxSuppression", 11, 5, unknown, 1);
    expect_error(L, unknown, DUCTILE_ERR_UNSUPPORTED, "depends on the data of input 0");
    L = layer("NonMaxSuppression", 11, 5, in, 1);
    a_int(L, "center_point_box", 2);
    expect_error(L, in, DUCTILE_ERR_UNSUPPORTED, "'center_point_box' = 2");
}

static void test_norms(void)
{
    static const int64_t dl[4] = {1, 5, 2, 2};
    dt_view in[1] = {gview(4, dl, 6, 4.0f)};
    ductile_layer *L = layer("LRN", 13, 1, in, 1);
    a_int(L, "size", 3);
    a_float(L, "alpha", 0.01f);
    a_float(L, "beta", 0.6f);
    a_float(L, "bias", 1.5f);
    expect(L, in, 4, dl, exp_lrn);
    L = layer("LRN", 13, 1, in, 1);
    expect_error(L, in, DUCTILE_ERR_INVALID_ARGUMENT, "'size'");

    static const int64_t dg[3] = {2, 4, 3}, dc[1] = {4};
    dt_view g[3] = {gview(3, dg, 7, 4.0f), gview(1, dc, 8, 4.0f), gview(1, dc, 9, 4.0f)};
    L = layer("GroupNormalization", 21, 3, g, 1);
    a_int(L, "num_groups", 2);
    a_float(L, "epsilon", 1e-3f);
    expect(L, g, 3, dg, exp_gn);
    L = layer("GroupNormalization", 21, 3, g, 1);
    a_int(L, "num_groups", 3);
    expect_error(L, g, DUCTILE_ERR_SHAPE, "does not divide");

    static const int64_t dm[4] = {2, 3, 2, 2};
    dt_view m[1] = {gview(4, dm, 10, 4.0f)};
    L = layer("MeanVarianceNormalization", 13, 1, m, 1);
    expect(L, m, 4, dm, exp_mvn);
}

static void test_unpool_upsample(void)
{
    static const int64_t dx[4] = {1, 1, 2, 2}, idx[4] = {5, 7, 13, 15}, d4[1] = {4};
    static const int64_t oshape[4] = {1, 1, 5, 5}, k[2] = {2, 2};
    dt_view in[3] = {gview(4, dx, 11, 4.0f), iview(4, dx, idx), iview(1, d4, oshape)};
    ductile_layer *L = layer("MaxUnpool", 22, 3, in, 1);
    a_ints(L, "kernel_shape", k, 2);
    a_ints(L, "strides", k, 2);
    expect(L, in, 4, oshape, exp_unpool);

    static const int64_t ds[4] = {1, 1, 2, 3}, dy[4] = {1, 1, 4, 4};
    static const float scales[4] = {1, 1, 2, 1.5f};
    dt_view u[2] = {gview(4, ds, 12, 4.0f), fview(1, d4, scales)};
    L = layer("Upsample", 9, 2, u, 1);
    a_str(L, "mode", "linear");
    expect(L, u, 4, dy, exp_ups_linear);
    L = layer("Upsample", 9, 2, u, 1);
    a_str(L, "mode", "cubic");
    expect_error(L, u, DUCTILE_ERR_UNSUPPORTED, "'mode' = 'cubic'");
}

static void test_lppool(void)
{
    static const int64_t dx[4] = {1, 2, 4, 5}, k[2] = {2, 3}, s[2] = {2, 2};
    static const int64_t dy[4] = {1, 2, 2, 2}, dg[4] = {1, 2, 1, 1};
    dt_view in[1] = {gview(4, dx, 13, 4.0f)};
    ductile_layer *L = layer("LpPool", 22, 1, in, 1);
    a_ints(L, "kernel_shape", k, 2);
    a_ints(L, "strides", s, 2);
    a_int(L, "p", 3);
    expect(L, in, 4, dy, exp_lppool);
    L = layer("GlobalLpPool", 2, 1, in, 1);
    expect(L, in, 4, dg, exp_glp);
}

static void test_resize_more(void)
{
    static const int64_t dx[4] = {1, 1, 4, 4}, d4[1] = {4}, d2[1] = {2};
    static const float sc_cubic[4] = {1, 1, 0.75f, 1.5f}, sc_aa[4] = {1, 1, 0.5f, 0.6f};
    static const float roi[4] = {0.2f, 0.1f, 0.9f, 1.3f};
    static const int64_t sizes[2] = {3, 3}, axes[2] = {2, 3};
    static const int64_t dyc[4] = {1, 1, 3, 6}, dya[4] = {1, 1, 2, 2}, dyr[4] = {1, 1, 3, 3};
    dt_view x = gview(4, dx, 14, 4.0f);
    dt_view c[3] = {x, omitted, fview(1, d4, sc_cubic)};
    ductile_layer *L = layer("Resize", 19, 3, c, 1);
    a_str(L, "mode", "cubic");
    a_int(L, "exclude_outside", 1);
    a_float(L, "cubic_coeff_a", -0.5f);
    expect(L, c, 4, dyc, exp_rs_cubic);
    dt_view a[3] = {x, omitted, fview(1, d4, sc_aa)};
    L = layer("Resize", 19, 3, a, 1);
    a_str(L, "mode", "linear");
    a_int(L, "antialias", 1);
    expect(L, a, 4, dya, exp_rs_aa);
    static const int64_t d4r[1] = {4};
    dt_view r[4] = {x, fview(1, d4r, roi), omitted, iview(1, d2, sizes)};
    L = layer("Resize", 19, 4, r, 1);
    a_str(L, "mode", "linear");
    a_str(L, "coordinate_transformation_mode", "tf_crop_and_resize");
    a_ints(L, "axes", axes, 2);
    a_float(L, "extrapolation_value", 7.0f);
    expect(L, r, 4, dyr, exp_rs_crop);
    L = layer("Resize", 19, 3, a, 1);
    a_str(L, "mode", "nearest");
    a_int(L, "antialias", 1);
    expect_error(L, a, DUCTILE_ERR_UNSUPPORTED, "'antialias' = 1");
}

static void test_avgpool_dilations(void)
{
    static const int64_t dx[4] = {1, 1, 3, 5}, k[2] = {2, 2}, p[4] = {1, 1, 1, 1};
    dt_view in[1] = {gview(4, dx, 15, 4.0f)};
    ductile_layer *L = layer("AveragePool", 22, 1, in, 1);
    a_ints(L, "kernel_shape", k, 2);
    a_ints(L, "dilations", k, 2);
    a_ints(L, "pads", p, 4);
    a_int(L, "count_include_pad", 1);
    expect(L, in, 4, dx, exp_ap_dil);
}

/* Refusals from the attributes alone happen in the kernels' prepare, once per layer. */
static void test_compiled_refusals(void)
{
    ductile_layer *L = layer("GridSample", 20, 2, NULL, 1);
    a_str(L, "mode", "area");
    expect_prepare_error(L, DUCTILE_ERR_UNSUPPORTED,
                         "attribute 'mode' = 'area' is not supported (supported: nearest, linear, cubic, bilinear, bicubic)");
    L = layer("GridSample", 20, 2, NULL, 1);
    a_str(L, "padding_mode", "wrap");
    expect_prepare_error(L, DUCTILE_ERR_UNSUPPORTED,
                         "attribute 'padding_mode' = 'wrap' is not supported (supported: zeros, border, reflection)");
    L = layer("MaxUnpool", 11, 2, NULL, 1);
    expect_prepare_error(L, DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'kernel_shape' with 1 to 3 values is required");
    L = layer("MaxUnpool", 11, 2, NULL, 1);
    a_ints(L, "kernel_shape", DIMS(2, 2), 2);
    a_ints(L, "strides", DIMS(2), 1);
    expect_prepare_error(L, DUCTILE_ERR_INVALID_ARGUMENT, "attributes 'strides' and 'pads' need 2 and 4 values");
    L = layer("MeanVarianceNormalization", 13, 1, NULL, 1);
    a_ints(L, "axes", DIMS(0, 9), 2);
    expect_prepare_error(L, DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'axes': axes[1] = 9 is outside -8..7");
    L = layer("LpPool", 18, 1, NULL, 1);
    expect_prepare_error(L, DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'kernel_shape' is required (1 to 3 values)");
}

int main(void)
{
    if (ophelp_begin()) return 1;
    test_compiled_refusals();
    test_gridsample();
    test_affinegrid();
    test_nms();
    test_norms();
    test_unpool_upsample();
    test_lppool();
    test_resize_more();
    test_avgpool_dilations();
    ophelp_end();
    TEST_MAIN_END();
}
