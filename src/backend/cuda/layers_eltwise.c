/* The CUDA backend's elementwise layers, compiled (layers.h): binary ops with broadcasting,
 * unary ops with their attributes read once, Where, And / Or / Xor, IsNaN, Not, Cast. */
#include "backend/cuda/layers.h"
#include "core/status.h"

#include <math.h>
#include <string.h>

typedef struct dt_cu_name {
    const char *op;
    int code;
} dt_cu_name;

static const dt_cu_name dt_binary_ops[] = {
    {"Add", DT_CU_ADD}, {"Sub", DT_CU_SUB}, {"Mul", DT_CU_MUL}, {"Div", DT_CU_DIV},
    {"Pow", DT_CU_POW}, {"Max", DT_CU_MAX}, {"Min", DT_CU_MIN}, {"PRelu", DT_CU_PRELU},
    {NULL, 0},
};

static const dt_cu_name dt_unary_ops[] = {
    {"Identity", DT_CU_IDENTITY}, {"Relu", DT_CU_RELU}, {"Sigmoid", DT_CU_SIGMOID}, {"Tanh", DT_CU_TANH},
    {"Erf", DT_CU_ERF}, {"Sqrt", DT_CU_SQRT}, {"Exp", DT_CU_EXP}, {"Log", DT_CU_LOG}, {"Neg", DT_CU_NEG},
    {"Abs", DT_CU_ABS}, {"Reciprocal", DT_CU_RECIPROCAL}, {"HardSigmoid", DT_CU_HARDSIGMOID},
    {"HardSwish", DT_CU_HARDSWISH}, {"Clip", DT_CU_CLIP}, {"LeakyRelu", DT_CU_LEAKYRELU}, {"Elu", DT_CU_ELU},
    {"Softplus", DT_CU_SOFTPLUS}, {"Gelu", DT_CU_GELU}, {"Floor", DT_CU_FLOOR}, {"Ceil", DT_CU_CEIL},
    {NULL, 0},
};

/* dt_cu_logic's op codes. */
static const dt_cu_name dt_logic_ops[] = {{"And", 0}, {"Or", 1}, {"Xor", 2}, {NULL, 0}};

static int dt_code_of(const dt_cu_name *t, const char *op)
{
    for (; t->op; t++)
        if (!strcmp(t->op, op)) return t->code;
    return -1;
}

int dt_cuda_binary_code(const char *op) { return dt_code_of(dt_binary_ops, op); }
int dt_cuda_unary_code(const char *op) { return dt_code_of(dt_unary_ops, op); }
int dt_cuda_logic_code(const char *op) { return dt_code_of(dt_logic_ops, op); }

/* A kernel of a family found for an op type the family lacks: a defect of the table. */
static ductile_status dt_not_in_family(const ductile_layer *L, const char *family)
{
    return dt_fail(DUCTILE_ERR_INTERNAL, "the cuda %s kernel has no code for op '%s'", family, L->op_type);
}

/* ---- binary ---- */

static ductile_status dt_binary_prepare(const ductile_layer *L, void **out)
{
    dt_cu_op_params p = {L, dt_cuda_binary_code(L->op_type)};
    if (p.code < 0) return dt_not_in_family(L, "binary");
    return dt_cuda_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_binary_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_op_params *p = params;
    dt_cu_bcast g;
    memset(&g, 0, sizeof g);
    g.rank = out[0].rank;
    g.n = dt_cuda_count(&out[0]);
    memcpy(g.dims, out[0].dims, sizeof g.dims[0] * (size_t)g.rank);
    dt_cuda_bcast_strides(&in[0], &out[0], g.sa);
    dt_cuda_bcast_strides(&in[1], &out[0], g.sb);
    return dt_cuda_check(dt_cu_binary(p->code, out[0].dtype, in[0].data, in[1].data, out[0].data, &g, ex->stream),
                         p->L->op_type);
}

const dt_kernel dt_cuda_binary_kernel = {.prepare = dt_binary_prepare, .run = dt_binary_run};

/* ---- unary ---- */

/* A constant float scalar of a float type the kernels take, into *f; false (and *f kept) for
 * another dtype or no data: supports() sends such a layer to the host, and prepare, which
 * runs before it, must not read past the constant. Half bits are widened here rather than
 * with the CPU backend's helpers: backends never include each other. */
static bool dt_scalar(const ductile_tensor *T, float *f)
{
    uint16_t h;
    uint32_t x;
    if (!T || !T->data) return false;
    switch (T->dtype) {
    case DUCTILE_FLOAT32:
        if (T->nbytes < 4) return false;
        memcpy(f, T->data, 4);
        return true;
    case DUCTILE_FLOAT16: {
        if (T->nbytes < 2) return false;
        memcpy(&h, T->data, 2);
        uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
        if (e == 0) {
            *f = (h & 0x8000 ? -1.f : 1.f) * (float)m * (1.0f / 16777216.0f);
            return true;
        }
        x = e == 31 ? sign | 0x7f800000u | (m << 13) : sign | ((e + 112) << 23) | (m << 13);
        break;
    }
    case DUCTILE_BFLOAT16:
        if (T->nbytes < 2) return false;
        memcpy(&h, T->data, 2);
        x = (uint32_t)h << 16;
        break;
    default: return false;
    }
    memcpy(f, &x, sizeof *f);
    return true;
}

/* Clip's bounds: attributes before opset 11, constant inputs after (supports checks them). */
static void dt_clip_bounds(const ductile_layer *L, float *lo, float *hi)
{
    *lo = -INFINITY;
    *hi = INFINITY;
    if (L->opset < 11) {
        *lo = dt_attr_float(L, "min", -INFINITY);
        *hi = dt_attr_float(L, "max", INFINITY);
        return;
    }
    if (L->n_in > 1) dt_scalar(L->in[1], lo);
    if (L->n_in > 2) dt_scalar(L->in[2], hi);
}

static ductile_status dt_unary_prepare(const ductile_layer *L, void **out)
{
    dt_cu_unary_params p = {.L = L, .code = dt_cuda_unary_code(L->op_type)};
    switch (p.code) {
    case -1: return dt_not_in_family(L, "unary");
    case DT_CU_HARDSIGMOID:
        p.p0 = dt_attr_float(L, "alpha", 0.2f);
        p.p1 = dt_attr_float(L, "beta", 0.5f);
        break;
    case DT_CU_HARDSWISH:
        p.p0 = 1.f / 6.f;
        p.p1 = 0.5f;
        break;
    case DT_CU_CLIP: dt_clip_bounds(L, &p.p0, &p.p1); break;
    case DT_CU_LEAKYRELU: p.p0 = dt_attr_float(L, "alpha", 0.01f); break;
    case DT_CU_ELU: p.p0 = dt_attr_float(L, "alpha", 1.0f); break;
    case DT_CU_GELU:
        if (!strcmp(dt_attr_string(L, "approximate", "none"), "tanh")) p.code = DT_CU_GELU_TANH;
        break;
    }
    return dt_cuda_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_unary_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_unary_params *p = params;
    return dt_cuda_check(dt_cu_unary(p->code, out[0].dtype, in[0].data, out[0].data, dt_cuda_count(&out[0]), p->p0, p->p1,
                                     ex->stream), p->L->op_type);
}

const dt_kernel dt_cuda_unary_kernel = {.prepare = dt_unary_prepare, .run = dt_unary_run};

/* ---- Where, logic, IsNaN, Not, Cast ---- */

static ductile_status dt_where_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_layer_params *p = params;
    int64_t sc[DT_MAX_DIMS], sx[DT_MAX_DIMS], sy[DT_MAX_DIMS];
    dt_cuda_bcast_strides(&in[0], &out[0], sc);
    dt_cuda_bcast_strides(&in[1], &out[0], sx);
    dt_cuda_bcast_strides(&in[2], &out[0], sy);
    return dt_cuda_check(dt_cu_where(out[0].dtype, in[0].data, in[1].data, in[2].data, out[0].data, out[0].rank,
                                     dt_cuda_count(&out[0]), out[0].dims, sc, sx, sy, ex->stream), p->L->op_type);
}

const dt_kernel dt_cuda_where_kernel = {.prepare = dt_cuda_layer_prepare, .run = dt_where_run};

static ductile_status dt_logic_prepare(const ductile_layer *L, void **out)
{
    dt_cu_op_params p = {L, dt_cuda_logic_code(L->op_type)};
    if (p.code < 0) return dt_not_in_family(L, "logic");
    return dt_cuda_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_logic_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_op_params *p = params;
    int64_t sa[DT_MAX_DIMS], sb[DT_MAX_DIMS];
    dt_cuda_bcast_strides(&in[0], &out[0], sa);
    dt_cuda_bcast_strides(&in[1], &out[0], sb);
    return dt_cuda_check(dt_cu_logic(p->code, in[0].data, in[1].data, out[0].data, out[0].rank, dt_cuda_count(&out[0]),
                                     out[0].dims, sa, sb, ex->stream), p->L->op_type);
}

const dt_kernel dt_cuda_logic_kernel = {.prepare = dt_logic_prepare, .run = dt_logic_run};

static ductile_status dt_isnan_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_layer_params *p = params;
    return dt_cuda_check(dt_cu_isnan(in[0].dtype, in[0].data, out[0].data, dt_cuda_count(&out[0]), ex->stream),
                         p->L->op_type);
}

const dt_kernel dt_cuda_isnan_kernel = {.prepare = dt_cuda_layer_prepare, .run = dt_isnan_run};

static ductile_status dt_not_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_layer_params *p = params;
    return dt_cuda_check(dt_cu_not(in[0].data, out[0].data, dt_cuda_count(&out[0]), ex->stream), p->L->op_type);
}

const dt_kernel dt_cuda_not_kernel = {.prepare = dt_cuda_layer_prepare, .run = dt_not_run};

/* The dtypes are the views' (infer set the output's from 'to'). */
static ductile_status dt_cast_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_layer_params *p = params;
    return dt_cuda_check(dt_cu_cast(in[0].data, in[0].dtype, out[0].data, out[0].dtype, dt_cuda_count(&out[0]), ex->stream),
                         p->L->op_type);
}

const dt_kernel dt_cuda_cast_kernel = {.prepare = dt_cuda_layer_prepare, .run = dt_cast_run};
