/* LpPool and GlobalLpPool: the window geometry is the nn family's (dt_pool_geometry), so
 * padding, dilation and ceil_mode agree with AveragePool and MaxPool. */
#include "ops/vision.h"
#include "ops/nn.h"
#include "core/status.h"

ductile_status dt_vision_check_lppool(const ductile_layer *L)
{
    DT_TRY(dt_nn_check_pool(L));
    if (dt_attr_find(L, "count_include_pad"))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'count_include_pad' is not part of LpPool");
    return dt_nn_check_int_range(L, "p", 2, 1, 64);
}

ductile_status dt_vision_check_global_lppool(const ductile_layer *L)
{
    DT_TRY(dt_nn_check_global_pool(L));
    return dt_nn_check_int_range(L, "p", 2, 1, 64);
}

ductile_status dt_vision_infer_lppool(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_float32(in, 0, "X"));
    if (L->op_type[0] == 'G') return dt_nn_infer_global_pool(L, in, out);
    return dt_nn_infer_pool(L, in, out);
}
