/* FlexAttention (see nn_flex.h). The semantics follow ONNX's reference (op_flex_attention.py),
 * which generated the conformance data: scores = (Q * sqrt(scale)) (K * sqrt(scale))^T, softmax
 * over the keys, times V; query head h reads KV head h / (Hq / Hkv). */
#include "ops/nn_flex.h"
#include "core/checked.h"
#include "core/status.h"
#include "graph/subgraph.h"
#include "ops/sequence.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const dt_flex_mods[2] = {"score_mod", "prob_mod"};
static const char *const dt_flex_what[2] = {"the scores", "the probabilities"};

/* A modifier: one tensor in (its formal input; captures may follow), one tensor out. */
static ductile_status dt_flex_check_mod(const ductile_layer *L, int m)
{
    const dt_attr *a = dt_attr_find(L, dt_flex_mods[m]);
    if (!a) return DUCTILE_OK;
    if (a->type != DT_ATTR_GRAPH || !a->g)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute '%s' must be a GRAPH (a modifier subgraph)",
                       dt_flex_mods[m]);
    const ductile_network *g = a->g;
    int fi = dt_graph_formal_inputs(g);
    if (fi != 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute '%s' has %d inputs; expected 1 (%s, [batch, heads, "
                       "query, key])", dt_flex_mods[m], fi, dt_flex_what[m]);
    if (g->n_outputs != 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute '%s' has %d outputs; expected 1 (%s, modified)",
                       dt_flex_mods[m], g->n_outputs, dt_flex_what[m]);
    const ductile_tensor *io[2] = {g->inputs[0], g->outputs[0]};
    for (int k = 0; k < 2; k++)
        if (io[k]->kind != DUCTILE_VALUE_TENSOR)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute '%s': %s '%s' is %s; expected a tensor",
                           dt_flex_mods[m], k ? "output" : "input", io[k]->name, dt_value_kind_name(io[k]->kind));
    return DUCTILE_OK;
}

ductile_status dt_nn_check_flex(const ductile_layer *L)
{
    if (L->opset < 1)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the model imports no opset of domain 'ai.onnx.preview'; expected 1");
    /* An engine's bytes are checked like a model's: no GRAPH but the two modifiers. */
    for (int k = 0; k < L->n_attr; k++)
        if (L->attrs[k].type == DT_ATTR_GRAPH && strcmp(L->attrs[k].name, dt_flex_mods[0]) &&
            strcmp(L->attrs[k].name, dt_flex_mods[1]))
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute '%s' of type GRAPH is not supported by ductile",
                           L->attrs[k].name);
    DT_TRY(dt_graph_check_captures(L));
    /* The inputs after Q, K, V are the tensors the modifiers capture. */
    ductile_layer formal = *L;
    formal.n_in = dt_ctrl_formal_inputs(L);
    DT_TRY(dt_check_arity(&formal, 3, 3, 1, 1, DT_INPUT_NAMES("Q", "K", "V")));
    for (int k = 0; k < L->n_in; k++)
        if (L->in[k] && L->in[k]->kind != DUCTILE_VALUE_TENSOR)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input %d ('%s') is %s; FlexAttention and its modifiers read tensors",
                           k, L->in[k]->name, dt_value_kind_name(L->in[k]->kind));
    int64_t sp = dt_attr_int(L, "softmax_precision", DUCTILE_FLOAT32);
    if (sp != DUCTILE_FLOAT32 && sp != DUCTILE_FLOAT16 && sp != DUCTILE_FLOAT64 && sp != DUCTILE_BFLOAT16)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attribute 'softmax_precision' = %lld; expected float (1), float16 (10), double (11) or "
                       "bfloat16 (16)", (long long)sp);
    for (int m = 0; m < 2; m++) DT_TRY(dt_flex_check_mod(L, m));
    return DUCTILE_OK;
}

/* What a modifier declares against what it will be given: the softmax dtype, rank 4. */
static ductile_status dt_flex_infer_mod(const ductile_layer *L, int m, int dtype)
{
    const ductile_network *g = dt_ctrl_graph(L, dt_flex_mods[m]);
    if (!g) return DUCTILE_OK;
    const ductile_tensor *io[2] = {g->inputs[0], g->outputs[0]};
    for (int k = 0; k < 2; k++) {
        const ductile_tensor *T = io[k];
        if (T->dtype && T->dtype != dtype)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute '%s': %s '%s' is declared %s; expected %s (the "
                           "softmax dtype: softmax_precision, else float64 for float64 inputs and float32 for others)",
                           dt_flex_mods[m], k ? "output" : "input", T->name, ductile_dtype_name((ductile_dtype)T->dtype),
                           ductile_dtype_name((ductile_dtype)dtype));
        if (T->rank >= 0 && T->rank != 4)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute '%s': %s '%s' is declared with rank %d; expected "
                           "4 ([batch, heads, query, key])", dt_flex_mods[m], k ? "output" : "input", T->name, T->rank);
    }
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
    int sd = dt_flex_softmax_dtype(dt_attr_int(L, "softmax_precision", 0), in[0].dtype);
    for (int m = 0; m < 2; m++) DT_TRY(dt_flex_infer_mod(L, m, sd));
    const int64_t dims[4] = {p.B, p.Hq, p.L, p.Ev}, scores[4] = {p.B, p.Hq, p.L, p.S};
    int64_t n;
    if (!dt_dims_product(dims, 4, &n) || !dt_dims_product(scores, 4, &n))
        return dt_fail(DUCTILE_ERR_SHAPE, "the output sizes overflow");
    out[0] = (dt_view){.dtype = in[0].dtype, .rank = 4, .dims = {p.B, p.Hq, p.L, p.Ev}};
    return DUCTILE_OK;
}
