/* The CPU shape kernels' table, and the kernels that only copy or generate: Shape, Size,
 * ConstantOfShape, Range, and the reshapes (Reshape, Flatten, Squeeze, Unsqueeze), which
 * copy because outputs never alias inputs. */
#include "backend/cpu/families.h"
#include "backend/cpu/shape_copy.h"
#include "backend/cpu/shape_kernels.h"
#include "backend/cpu/elementwise_impl.h"
#include "core/status.h"
#include "ops/shape.h"

/* Shape compiled: 'start' and 'end' read once (end INT64_MAX when absent: the rank). */
typedef struct dt_shape_params {
    int64_t start, end;
} dt_shape_params;

static ductile_status dt_shape_prepare(const ductile_layer *L, void **out)
{
    dt_shape_params p = {dt_attr_int(L, "start", 0), dt_attr_int(L, "end", INT64_MAX)};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_shape_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_shape_params *p = params;
    int s, e;
    dt_shape_bounds_of(p->start, p->end, in[0].rank, &s, &e);
    int64_t *o = out[0].data;
    for (int i = s; i < e; i++) o[i - s] = in[0].dims[i];
    return DUCTILE_OK;
}

static ductile_status dt_size_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    *(int64_t *)out[0].data = dt_view_count(&in[0]);
    return DUCTILE_OK;
}

/* ConstantOfShape compiled: the value's bytes (the attribute tensor lives as long as the
 * engine's network, which outlives the plan), or float 0 when absent. */
typedef struct dt_cos_params {
    const void *value;
} dt_cos_params;

static ductile_status dt_cos_prepare(const ductile_layer *L, void **out)
{
    static const float zero = 0.0f;
    const dt_attr *a = dt_attr_find(L, "value");
    dt_cos_params p = {a && a->t ? a->t->data : &zero};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_cos_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cos_params *p = params;
    dt_cpu_fill(out[0].data, p->value, ductile_dtype_size((ductile_dtype)out[0].dtype), dt_view_count(&out[0]));
    return DUCTILE_OK;
}

#define DT_RANGE_FILL(T, start, delta)                                                       \
    do {                                                                                     \
        T *o_ = out[0].data;                                                                 \
        for (int64_t i = 0; i < n; i++) o_[i] = (T)((start) + (delta) * i);                  \
    } while (0)

static ductile_status dt_range_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int64_t n = out[0].dims[0];
    switch (out[0].dtype) {
    case DUCTILE_FLOAT32: DT_RANGE_FILL(float, dt_range_f(&in[0]), dt_range_f(&in[2])); break;
    case DUCTILE_FLOAT64: DT_RANGE_FILL(double, dt_range_f(&in[0]), dt_range_f(&in[2])); break;
    case DUCTILE_FLOAT16:
    case DUCTILE_BFLOAT16: {
        double start = dt_range_f(&in[0]), delta = dt_range_f(&in[2]);
        bool bf = out[0].dtype == DUCTILE_BFLOAT16;
        uint16_t *o = out[0].data;
        for (int64_t i = 0; i < n; i++) {
            float v = (float)(start + delta * (double)i);
            o[i] = bf ? dt_float_to_bf16(v) : dt_float_to_half(v);
        }
        break;
    }
    case DUCTILE_INT16: DT_RANGE_FILL(int16_t, dt_range_i(&in[0]), dt_range_i(&in[2])); break;
    case DUCTILE_INT32: DT_RANGE_FILL(int32_t, dt_range_i(&in[0]), dt_range_i(&in[2])); break;
    case DUCTILE_INT64: DT_RANGE_FILL(int64_t, dt_range_i(&in[0]), dt_range_i(&in[2])); break;
    default:
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "Range of dtype %s is not supported",
                       ductile_dtype_name((ductile_dtype)out[0].dtype));
    }
    return DUCTILE_OK;
}

/* Reshape, Flatten, Squeeze, Unsqueeze: the output's dims come from infer; the data is copied
 * because outputs never alias inputs. */
static ductile_status dt_reshape_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_cpu_copy_bytes(ex, out[0].data, in[0].data, dt_cpu_view_bytes(&out[0]));
    return DUCTILE_OK;
}

static const dt_kernel dt_cpu_shape_of_kernel = {.prepare = dt_shape_prepare, .run = dt_shape_run};
static const dt_kernel dt_cpu_size_kernel = {.run = dt_size_run};
static const dt_kernel dt_cpu_constant_of_shape_kernel = {.prepare = dt_cos_prepare, .run = dt_cos_run};
static const dt_kernel dt_cpu_range_kernel = {.run = dt_range_run};
static const dt_kernel dt_cpu_reshape_kernel = {.run = dt_reshape_run};

const dt_cpu_kernel dt_cpu_shape[] = {
    {"Shape", NULL, &dt_cpu_shape_of_kernel},
    {"Size", NULL, &dt_cpu_size_kernel},
    {"ConstantOfShape", NULL, &dt_cpu_constant_of_shape_kernel},
    {"Range", NULL, &dt_cpu_range_kernel},
    {"Reshape", NULL, &dt_cpu_reshape_kernel},
    {"Flatten", NULL, &dt_cpu_reshape_kernel},
    {"Squeeze", NULL, &dt_cpu_reshape_kernel},
    {"Unsqueeze", NULL, &dt_cpu_reshape_kernel},
    {"Expand", NULL, &dt_cpu_expand_kernel},
    {"Gather", NULL, &dt_cpu_gather_kernel},
    {"GatherElements", NULL, &dt_cpu_gather_elements_kernel},
    {"Concat", NULL, &dt_cpu_concat_kernel},
    {"Split", NULL, &dt_cpu_split_kernel},
    {"Slice", NULL, &dt_cpu_slice_kernel},
    {"Transpose", NULL, &dt_cpu_transpose_kernel},
    {"DepthToSpace", NULL, &dt_cpu_depth_to_space_kernel},
    {"SpaceToDepth", NULL, &dt_cpu_space_to_depth_kernel},
    {"Tile", NULL, &dt_cpu_tile_kernel},
    {"Pad", NULL, &dt_cpu_pad_kernel},
    {"GatherND", NULL, &dt_cpu_gather_nd_kernel},
    {"ScatterElements", NULL, &dt_cpu_scatter_elements_kernel},
    {"Scatter", NULL, &dt_cpu_scatter_elements_kernel},
    {"ScatterND", NULL, &dt_cpu_scatter_nd_kernel},
    {"Trilu", NULL, &dt_cpu_trilu_kernel},
    {"EyeLike", NULL, &dt_cpu_eye_like_kernel},
    {"ReverseSequence", NULL, &dt_cpu_reverse_sequence_kernel},
    {"ConvTranspose", NULL, &dt_cpu_conv_transpose_kernel},
    {"Col2Im", NULL, &dt_cpu_col2im_kernel},
    {"CenterCropPad", NULL, &dt_cpu_center_crop_pad_kernel},
    {"Compress", NULL, &dt_cpu_compress_kernel},
    {"NonZero", NULL, &dt_cpu_non_zero_kernel},
    {"Unique", NULL, &dt_cpu_unique_kernel},
    {NULL, NULL, NULL},
};
