/* OneHot, Det, TensorScatter, SwiGLU, RotaryEmbedding, LinearAttention, CausalConvWithState:
 * attributes and output shapes. */
#include "ops/seq.h"
#include "core/status.h"

#include <math.h>
#include <string.h>

static ductile_status same_dims(const dt_view *a, const dt_view *b, const char *what)
{
    bool ok = a->rank == b->rank;
    for (int i = 0; ok && i < a->rank; i++) ok = a->dims[i] == b->dims[i];
    if (!ok) {
        char x[96], y[96];
        dt_format_dims(x, sizeof x, a->dims, a->rank, NULL);
        dt_format_dims(y, sizeof y, b->dims, b->rank, NULL);
        return dt_fail(DUCTILE_ERR_SHAPE, "%s: shapes %s and %s differ", what, x, y);
    }
    return DUCTILE_OK;
}

static ductile_status copy_shape(const dt_view *in, dt_view *out)
{
    *out = *in;
    out->data = NULL;
    return DUCTILE_OK;
}

/* OneHot: depth (input 1) decides the output shape. */

ductile_status dt_seq_check_onehot(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 3, 3, 1, 1, NULL));
    if (!L->in[1] || !L->in[2]) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "inputs 1 (depth) and 2 (values) are required");
    return DUCTILE_OK;
}

ductile_status dt_seq_infer_onehot(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    int64_t depth;
    DT_TRY(dt_seq_scalar(L, in, 1, "depth", &depth));
    if (depth < 1) return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (depth) = %lld; expected at least 1", (long long)depth);
    if (dt_view_count(&in[2]) != 2 || in[2].rank != 1)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 2 (values) must be [off_value, on_value]");
    if (in[0].rank >= DT_MAX_DIMS) return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (indices) has too high a rank");
    int64_t a = dt_attr_int(L, "axis", -1);
    int r = in[0].rank + 1;
    if (a < -r || a >= r) return dt_fail(DUCTILE_ERR_SHAPE, "attribute 'axis' = %lld is outside [-%d, %d)", (long long)a, r, r);
    if (a < 0) a += r;
    memset(&out[0], 0, sizeof out[0]);
    out[0].dtype = in[2].dtype;
    out[0].rank = r;
    for (int i = 0, j = 0; i < r; i++) out[0].dims[i] = i == a ? depth : in[0].dims[j++];
    return DUCTILE_OK;
}

/* Det */

ductile_status dt_seq_check_det(const ductile_layer *L) { return dt_check_arity(L, 1, 1, 1, 1, NULL); }

ductile_status dt_seq_infer_det(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    (void)L;
    DT_TRY(dt_seq_want_float(in, 0, "X"));
    int r = in[0].rank;
    if (r < 2 || in[0].dims[r - 1] != in[0].dims[r - 2])
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (X) must be [..., M, M]");
    copy_shape(&in[0], &out[0]);
    out[0].rank = r - 2;
    return DUCTILE_OK;
}

/* TensorScatter */

ductile_status dt_seq_check_tscatter(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 3, 1, 1, NULL));
    const char *m = dt_attr_string(L, "mode", "linear");
    if (strcmp(m, "linear") != 0 && strcmp(m, "circular") != 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'mode' = '%s' is not supported (supported: linear, circular)", m);
    return DUCTILE_OK;
}

ductile_status dt_seq_infer_tscatter(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    const dt_view *c = &in[0], *u = &in[1];
    int axis;
    if (c->rank < 2) return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (past_cache) must have rank >= 2");
    DT_TRY(dt_norm_axis(dt_attr_int(L, "axis", -2), c->rank, &axis));
    if (axis == 0) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'axis' = 0 (the batch axis) is not supported");
    if (u->rank != c->rank || u->dtype != c->dtype)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (update) must have the rank and dtype of input 0");
    for (int i = 0; i < c->rank; i++)
        if (i == axis ? u->dims[i] > c->dims[i] : u->dims[i] != c->dims[i])
            return dt_fail(DUCTILE_ERR_SHAPE, "dim %d of input 1 (update) is %lld; input 0 (past_cache) has %lld", i,
                           (long long)u->dims[i], (long long)c->dims[i]);
    if (dt_seq_given(L, in, 2)) {
        DT_TRY(dt_seq_want_int(in, 2, "write_indices"));
        if (in[2].rank != 1 || in[2].dims[0] != c->dims[0])
            return dt_fail(DUCTILE_ERR_SHAPE, "input 2 (write_indices) must be [%lld]", (long long)c->dims[0]);
    }
    return copy_shape(c, &out[0]);
}

/* SwiGLU */

ductile_status dt_seq_check_swiglu(const ductile_layer *L) { return dt_check_arity(L, 2, 2, 1, 1, NULL); }

ductile_status dt_seq_infer_swiglu(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    (void)L;
    DT_TRY(dt_seq_want_float(in, 0, "A"));
    if (in[1].dtype != in[0].dtype) return dt_fail(DUCTILE_ERR_SHAPE, "inputs 0 (A) and 1 (B) have different dtypes");
    DT_TRY(same_dims(&in[0], &in[1], "inputs 0 (A) and 1 (B)"));
    return copy_shape(&in[0], &out[0]);
}

/* RotaryEmbedding */

ductile_status dt_seq_check_rope(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 3, 4, 1, 1, NULL));
    int64_t v = dt_attr_int(L, "interleaved", 0);
    if (v != 0 && v != 1) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'interleaved' = %lld is not supported (supported: 0, 1)", (long long)v);
    return DUCTILE_OK;
}

void dt_rope_attrs_read(const ductile_layer *L, dt_rope_attrs *a)
{
    a->interleaved = dt_attr_int(L, "interleaved", 0);
    a->num_heads = dt_attr_int(L, "num_heads", 0);
    a->rot = dt_attr_int(L, "rotary_embedding_dim", 0);
}

ductile_status dt_rope_params_get(const ductile_layer *L, const dt_view *in, dt_rope_params *p)
{
    dt_rope_attrs a;
    dt_rope_attrs_read(L, &a);
    return dt_rope_params_of(&a, L, in, p);
}

ductile_status dt_rope_params_of(const dt_rope_attrs *a, const ductile_layer *L, const dt_view *in, dt_rope_params *p)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < 3; i++) DT_TRY(dt_seq_want_float(in, i, i == 0 ? "input" : i == 1 ? "cos_cache" : "sin_cache"));
    const dt_view *x = &in[0];
    p->interleaved = a->interleaved;
    if (x->rank == 4) {
        p->four_d = true;
        p->B = x->dims[0], p->H = x->dims[1], p->S = x->dims[2], p->D = x->dims[3];
    } else if (x->rank == 3) {
        int64_t nh = a->num_heads;
        if (nh <= 0 || x->dims[2] % nh)
            return dt_fail(DUCTILE_ERR_SHAPE, "a 3-D input needs attribute 'num_heads' dividing its last dim %lld", (long long)x->dims[2]);
        p->B = x->dims[0], p->S = x->dims[1], p->H = nh, p->D = x->dims[2] / nh;
    } else {
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (input) must have rank 3 or 4, got %d", x->rank);
    }
    p->rot = a->rot;
    if (p->rot == 0) p->rot = p->D;
    if (p->rot < 0 || p->rot > p->D || p->rot % 2)
        return dt_fail(DUCTILE_ERR_SHAPE, "rotary_embedding_dim %lld must be even and at most the head size %lld", (long long)p->rot, (long long)p->D);
    p->pos_ids = dt_seq_given(L, in, 3);
    const dt_view *c = &in[1], *s = &in[2];
    DT_TRY(same_dims(c, s, "inputs 1 (cos_cache) and 2 (sin_cache)"));
    if (p->pos_ids) {
        DT_TRY(dt_seq_want_int(in, 3, "position_ids"));
        if (in[3].rank != 2 || in[3].dims[0] != p->B || in[3].dims[1] != p->S)
            return dt_fail(DUCTILE_ERR_SHAPE, "input 3 (position_ids) must be [%lld, %lld]", (long long)p->B, (long long)p->S);
        if (c->rank != 2 || c->dims[1] != p->rot / 2)
            return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (cos_cache) must be [max_position, %lld]", (long long)(p->rot / 2));
        p->max_pos = c->dims[0];
    } else if (c->rank != 3 || c->dims[0] != p->B || c->dims[1] != p->S || c->dims[2] != p->rot / 2) {
        return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (cos_cache) must be [%lld, %lld, %lld] without position_ids",
                       (long long)p->B, (long long)p->S, (long long)(p->rot / 2));
    }
    return DUCTILE_OK;
}

ductile_status dt_seq_infer_rope(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    dt_rope_params p;
    DT_TRY(dt_rope_params_get(L, in, &p));
    return copy_shape(&in[0], &out[0]);
}

/* LinearAttention */

ductile_status dt_seq_check_linattn(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 3, 6, 1, 2, NULL));
    const char *r = dt_attr_string(L, "update_rule", "gated_delta");
    if (strcmp(r, "linear") && strcmp(r, "gated") && strcmp(r, "delta") && strcmp(r, "gated_delta"))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'update_rule' = '%s' is not supported (supported: linear, gated, delta, gated_delta)", r);
    int64_t q = dt_attr_int(L, "q_num_heads", 0), kv = dt_attr_int(L, "kv_num_heads", 0);
    if (q <= 0 || kv <= 0 || q % kv)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attributes 'q_num_heads' (%lld) and 'kv_num_heads' (%lld) must be positive, q a multiple of kv",
                       (long long)q, (long long)kv);
    return DUCTILE_OK;
}

void dt_linattn_attrs_read(const ductile_layer *L, dt_linattn_attrs *a)
{
    a->rule = dt_attr_string(L, "update_rule", "gated_delta");
    a->gating = strcmp(a->rule, "gated") == 0 || strcmp(a->rule, "gated_delta") == 0;
    a->delta = strcmp(a->rule, "delta") == 0 || strcmp(a->rule, "gated_delta") == 0;
    a->Hq = dt_attr_int(L, "q_num_heads", 1), a->Hkv = dt_attr_int(L, "kv_num_heads", 1);
    a->scale = dt_attr_float(L, "scale", 0.0f);
}

ductile_status dt_linattn_params_get(const ductile_layer *L, const dt_view *in, dt_linattn_params *p)
{
    dt_linattn_attrs a;
    dt_linattn_attrs_read(L, &a);
    return dt_linattn_params_of(&a, L, in, p);
}

ductile_status dt_linattn_params_of(const dt_linattn_attrs *a, const ductile_layer *L, const dt_view *in,
                                    dt_linattn_params *p)
{
    memset(p, 0, sizeof *p);
    const char *r = a->rule;
    p->gating = a->gating;
    p->delta = a->delta;
    p->Hq = a->Hq, p->Hkv = a->Hkv;
    for (int i = 0; i < 3; i++) {
        DT_TRY(dt_seq_want_float(in, i, i == 0 ? "query" : i == 1 ? "key" : "value"));
        if (in[i].rank != 3) return dt_fail(DUCTILE_ERR_SHAPE, "input %d must have rank 3 (B, T, H*D)", i);
    }
    p->B = in[0].dims[0], p->T = in[0].dims[1];
    if (in[0].dims[2] % p->Hq || in[2].dims[2] % p->Hkv)
        return dt_fail(DUCTILE_ERR_SHAPE, "the last dims of query and value must divide by q_num_heads and kv_num_heads");
    p->dk = in[0].dims[2] / p->Hq, p->dv = in[2].dims[2] / p->Hkv;
    for (int i = 1; i < 3; i++)
        if (in[i].dims[0] != p->B || in[i].dims[1] != p->T)
            return dt_fail(DUCTILE_ERR_SHAPE, "input %d must share batch and time dims with query", i);
    if (in[1].dims[2] != p->Hkv * p->dk)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (key) last dim %lld; expected %lld", (long long)in[1].dims[2], (long long)(p->Hkv * p->dk));
    if (dt_seq_given(L, in, 3)) {
        const dt_view *s = &in[3];
        if (s->rank != 4 || s->dims[0] != p->B || s->dims[1] != p->Hkv || s->dims[2] != p->dk || s->dims[3] != p->dv)
            return dt_fail(DUCTILE_ERR_SHAPE, "input 3 (past_state) must be [%lld, %lld, %lld, %lld]", (long long)p->B,
                           (long long)p->Hkv, (long long)p->dk, (long long)p->dv);
    }
    if (p->gating != dt_seq_given(L, in, 4))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "update_rule '%s' %s input 4 (decay)", r, p->gating ? "requires" : "forbids");
    if (p->delta != dt_seq_given(L, in, 5))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "update_rule '%s' %s input 5 (beta)", r, p->delta ? "requires" : "forbids");
    if (p->gating) {
        const dt_view *d = &in[4];
        p->decay_last = d->rank == 3 ? d->dims[2] : -1;
        if (d->rank != 3 || d->dims[0] != p->B || d->dims[1] != p->T || (p->decay_last != p->Hkv && p->decay_last != p->Hkv * p->dk))
            return dt_fail(DUCTILE_ERR_SHAPE, "input 4 (decay) must be [B, T, kv_num_heads] or [B, T, kv_num_heads * d_k]");
    }
    if (p->delta) {
        const dt_view *b = &in[5];
        p->beta_last = b->rank == 3 ? b->dims[2] : -1;
        if (b->rank != 3 || b->dims[0] != p->B || b->dims[1] != p->T || (p->beta_last != p->Hkv && p->beta_last != 1))
            return dt_fail(DUCTILE_ERR_SHAPE, "input 5 (beta) must be [B, T, kv_num_heads] or [B, T, 1]");
    }
    float sc = a->scale;
    p->scale = sc == 0.0f ? (float)(1.0 / sqrt((double)p->dk)) : sc;
    return DUCTILE_OK;
}

ductile_status dt_seq_infer_linattn(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    dt_linattn_params p;
    DT_TRY(dt_linattn_params_get(L, in, &p));
    memset(out, 0, sizeof out[0] * (size_t)L->n_out);
    out[0].dtype = in[0].dtype;
    out[0].rank = 3;
    out[0].dims[0] = p.B, out[0].dims[1] = p.T, out[0].dims[2] = p.Hq * p.dv;
    if (L->n_out > 1) {
        out[1].dtype = dt_seq_given(L, in, 3) ? in[3].dtype : in[0].dtype;
        out[1].rank = 4;
        out[1].dims[0] = p.B, out[1].dims[1] = p.Hkv, out[1].dims[2] = p.dk, out[1].dims[3] = p.dv;
    }
    return DUCTILE_OK;
}

/* CausalConvWithState */

ductile_status dt_seq_check_cconv(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 4, 1, 2, DT_INPUT_NAMES("input", "weight")));
    const char *a = dt_attr_string(L, "activation", "none");
    if (strcmp(a, "none") && strcmp(a, "silu") && strcmp(a, "swish"))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'activation' = '%s' is not supported (supported: none, silu, swish)", a);
    return DUCTILE_OK;
}

ductile_status dt_seq_infer_cconv(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_seq_want_float(in, 0, "input"));
    const dt_view *x = &in[0], *w = &in[1];
    if (x->rank != 3 || w->rank != 3 || w->dims[0] != x->dims[1] || w->dims[1] != 1 || w->dims[2] < 1)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 must be [B, C, L] and input 1 (weight) [C, 1, K]");
    int64_t C = x->dims[1], K = w->dims[2];
    if (dt_seq_given(L, in, 2) && (in[2].rank != 1 || in[2].dims[0] != C))
        return dt_fail(DUCTILE_ERR_SHAPE, "input 2 (bias) must be [%lld]", (long long)C);
    if (dt_seq_given(L, in, 3) &&
        (in[3].rank != 3 || in[3].dims[0] != x->dims[0] || in[3].dims[1] != C || in[3].dims[2] != K - 1))
        return dt_fail(DUCTILE_ERR_SHAPE, "input 3 (past_state) must be [%lld, %lld, %lld]", (long long)x->dims[0],
                       (long long)C, (long long)(K - 1));
    copy_shape(x, &out[0]);
    if (L->n_out > 1) {
        copy_shape(x, &out[1]);
        out[1].dims[2] = K - 1;
    }
    return DUCTILE_OK;
}
