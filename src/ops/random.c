/* The random generators whose output takes its shape from an input: RandomUniformLike and
 * Bernoulli (opsets 1 and 15 on). The CPU draws them from MT19937 seeded as numpy's
 * RandomState (backend/cpu/random.h): with the 'seed' attribute the output is reproducible
 * and equal to ONNX's reference; without it each run draws a fresh seed. */
#include "ops/families.h"
#include "ops/random.h"
#include "core/status.h"

#include <math.h>
#include <string.h>

static bool dt_random_float(int d)
{
    return d == DUCTILE_FLOAT32 || d == DUCTILE_FLOAT64 || d == DUCTILE_FLOAT16 || d == DUCTILE_BFLOAT16;
}

static ductile_status dt_random_check(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 1, 1, NULL));
    const dt_attr *s = dt_attr_find(L, "seed");
    if (s && !(isfinite(s->f) && s->f >= 0.0f && s->f < 4294967296.0f))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'seed' = %g; expected 0 to 2^32 - 1 (numpy's "
                       "RandomState range, which ONNX's reference uses)", (double)s->f);
    return DUCTILE_OK;
}

static ductile_status dt_random_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    bool bern = L->op_type[0] == 'B';
    int64_t dt = dt_attr_int(L, "dtype", 0);
    /* RandomUniformLike takes any input (only its shape counts); Bernoulli reads probabilities. */
    if (bern && !dt_random_float(in[0].dtype))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 (input) is %s; expected float16, bfloat16, float or double",
                       ductile_dtype_name(in[0].dtype));
    int to = dt ? (int)dt : in[0].dtype;
    bool ok = dt_random_float(to) || (bern && (to == DUCTILE_BOOL || to == DUCTILE_INT8 || to == DUCTILE_UINT8 ||
                                               to == DUCTILE_INT16 || to == DUCTILE_UINT16 || to == DUCTILE_INT32 ||
                                               to == DUCTILE_UINT32 || to == DUCTILE_INT64 || to == DUCTILE_UINT64));
    if (!ok)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "%s dtype %s is not supported (expected %s)",
                       dt ? "attribute 'dtype' =" : "the input's", ductile_dtype_name((ductile_dtype)to),
                       bern ? "a float, integer or bool type" : "float16, bfloat16, float or double");
    out[0] = in[0];
    out[0].dtype = to;
    out[0].data = NULL;
    return DUCTILE_OK;
}

bool dt_op_draws_random(const char *op_type)
{
    return !strcmp(op_type, "RandomUniformLike") || !strcmp(op_type, "Bernoulli");
}

const dt_opdef dt_ops_random[] = {
    {"RandomUniformLike", dt_random_check, dt_random_infer, 0},
    {"Bernoulli", dt_random_check, dt_random_infer, 0},
    {NULL, NULL, NULL, 0},
};
