/* FlexAttention (see nn_flex.h). The semantics follow ONNX's reference (op_flex_attention.py),
 * which generated the conformance data: scores = (Q * sqrt(scale)) (K * sqrt(scale))^T, softmax
 * over the keys, times V; query head h reads KV head h / (Hq / Hkv). */
#include "ops/nn_flex.h"
#include "core/checked.h"
#include "core/status.h"

#include <math.h>
#include <stdio.h>

ductile_status dt_nn_check_flex(const ductile_layer *L)
{
    if (L->opset < 1)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the model imports no opset of domain 'ai.onnx.preview'; expected 1");
    /* The modifiers are subgraphs run on the scores / probabilities; ductile has no subgraph
     * support for this op yet (the importer may refuse the GRAPH attribute first). */
    static const char *const mods[] = {"score_mod", "prob_mod"};
    for (int k = 0; k < 2; k++)
        if (dt_attr_find(L, mods[k]))
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute '%s' (a modifier subgraph) is not supported by ductile",
                           mods[k]);
    DT_TRY(dt_check_arity(L, 3, 3, 1, 1, DT_INPUT_NAMES("Q", "K", "V")));
    int64_t sp = dt_attr_int(L, "softmax_precision", DUCTILE_FLOAT32);
    if (sp != DUCTILE_FLOAT32 && sp != DUCTILE_FLOAT16 && sp != DUCTILE_FLOAT64 && sp != DUCTILE_BFLOAT16)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attribute 'softmax_precision' = %lld; expected float (1), float16 (10), double (11) or "
                       "bfloat16 (16)", (long long)sp);
    return DUCTILE_OK;
}

static ductile_status dt_flex_shape(const dt_view *in, int i, const char *what, const char *expected)
{
    char s[160];
    dt_format_dims(s, sizeof s, in[i].dims, in[i].rank, NULL);
    return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) has shape %s; expected %s", i, what, s, expected);
}

ductile_status dt_flex_params_of(bool has_scale, float scale, const dt_view *in, dt_flex_params *p)
{
    static const char *const names[] = {"Q", "K", "V"};
    for (int i = 0; i < 3; i++) {
        int t = in[i].dtype;
        if (t != DUCTILE_FLOAT32 && t != DUCTILE_FLOAT64 && t != DUCTILE_FLOAT16 && t != DUCTILE_BFLOAT16)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input %d (%s) has dtype %s; supported: float32, float64, "
                           "float16, bfloat16", i, names[i], ductile_dtype_name((ductile_dtype)t));
        if (t != in[0].dtype)
            return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) has dtype %s; expected %s like Q", i, names[i],
                           ductile_dtype_name((ductile_dtype)t), ductile_dtype_name((ductile_dtype)in[0].dtype));
        if (in[i].rank != 4) return dt_flex_shape(in, i, names[i], "rank 4 ([batch, heads, sequence, head size])");
    }
    const dt_view *q = &in[0], *k = &in[1], *v = &in[2];
    *p = (dt_flex_params){.B = q->dims[0], .Hq = q->dims[1], .L = q->dims[2], .E = q->dims[3],
                          .Hkv = k->dims[1], .S = k->dims[2], .Ev = v->dims[3]};
    char e[160];
    snprintf(e, sizeof e, "[%lld, kv heads, kv sequence, %lld] (Q's batch and head size)", (long long)p->B,
             (long long)p->E);
    if (k->dims[0] != p->B || k->dims[3] != p->E) return dt_flex_shape(in, 1, "K", e);
    snprintf(e, sizeof e, "[%lld, %lld, %lld, v head size] (K's batch, heads and sequence)", (long long)p->B,
             (long long)p->Hkv, (long long)p->S);
    if (v->dims[0] != p->B || v->dims[1] != p->Hkv || v->dims[2] != p->S) return dt_flex_shape(in, 2, "V", e);
    if (p->Hkv < 1 || p->Hq % p->Hkv != 0)
        return dt_fail(DUCTILE_ERR_SHAPE, "Q has %lld heads and K %lld; Q's must be a multiple of K's",
                       (long long)p->Hq, (long long)p->Hkv);
    double s = has_scale ? (double)scale : 1.0 / sqrt((double)p->E);
    /* The reference takes sqrt of the scale in float32. */
    p->sqrt_scale = (double)sqrtf((float)s);
    return DUCTILE_OK;
}

ductile_status dt_nn_infer_flex(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    dt_flex_params p;
    DT_TRY(dt_flex_params_of(dt_attr_find(L, "scale") != NULL, dt_attr_float(L, "scale", 0.0f), in, &p));
    const int64_t dims[4] = {p.B, p.Hq, p.L, p.Ev}, scores[4] = {p.B, p.Hq, p.L, p.S};
    int64_t n;
    if (!dt_dims_product(dims, 4, &n) || !dt_dims_product(scores, 4, &n))
        return dt_fail(DUCTILE_ERR_SHAPE, "the output sizes overflow");
    out[0] = (dt_view){.dtype = in[0].dtype, .rank = 4, .dims = {p.B, p.Hq, p.L, p.Ev}};
    return DUCTILE_OK;
}
