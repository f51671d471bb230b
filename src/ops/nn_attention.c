/* Attention (opsets 23-25): scaled dot-product attention with grouped KV heads, a KV cache
 * (past in, present out), masks (additive float, boolean, causal, sliding window, per-batch
 * key padding) and soft-capping. The semantics follow onnx's reference (op_attention.py),
 * which generated the conformance data. */
#include "ops/nn.h"
#include "core/checked.h"
#include "core/status.h"

#include <math.h>
#include <stdio.h>

enum { DT_ATT_Q, DT_ATT_K, DT_ATT_V, DT_ATT_MASK, DT_ATT_PAST_K, DT_ATT_PAST_V, DT_ATT_NONPAD };

static bool dt_att_given(const ductile_layer *L, int i) { return i < L->n_in && L->in[i]; }

ductile_status dt_nn_check_attention(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 3, L->opset >= 24 ? 7 : 6, 1, 4, NULL));
    if (!L->in[1] || !L->in[2])
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "inputs 1 (K) and 2 (V) are required");
    if (dt_att_given(L, DT_ATT_PAST_K) != dt_att_given(L, DT_ATT_PAST_V))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "inputs 4 (past_key) and 5 (past_value) must be given together");
    if (dt_att_given(L, DT_ATT_NONPAD) && dt_att_given(L, DT_ATT_PAST_K))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "input 6 (nonpad_kv_seqlen) cannot be combined with a past cache (inputs 4, 5)");
    DT_TRY(dt_nn_check_int_range(L, "is_causal", 0, 0, 1));
    DT_TRY(dt_nn_check_int_range(L, "qk_matmul_output_mode", 0, 0, 3));
    DT_TRY(dt_nn_check_int_range(L, "left_window_size", -1, -1, INT64_MAX));
    DT_TRY(dt_nn_check_int_range(L, "right_window_size", -1, -1, INT64_MAX));
    /* A precision hint for the softmax; ductile computes it in float32 for every one. */
    int64_t sp = dt_attr_int(L, "softmax_precision", DUCTILE_FLOAT32);
    if (sp != DUCTILE_FLOAT32 && sp != DUCTILE_FLOAT16 && sp != DUCTILE_FLOAT64 && sp != 16)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attribute 'softmax_precision' = %lld is not a floating-point type",
                       (long long)sp);
    return DUCTILE_OK;
}

static ductile_status dt_att_bad(int i, const char *what, const dt_view *v, const char *expected)
{
    char s[160];
    dt_format_dims(s, sizeof s, v->dims, v->rank, NULL);
    return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) has shape %s; expected %s", i, what, s,
                   expected);
}

/* A 4-D input [B, H, S, D] with B, H and D fixed (-1: any). */
static ductile_status dt_att_4d(const dt_view *in, int i, const char *what, int64_t b, int64_t h,
                                int64_t d)
{
    const dt_view *v = &in[i];
    if (v->rank == 4 && (b < 0 || v->dims[0] == b) && (h < 0 || v->dims[1] == h) &&
        (d < 0 || v->dims[3] == d))
        return DUCTILE_OK;
    char e[128];
    snprintf(e, sizeof e, "[%lld, %lld, seq, %lld]", (long long)b, (long long)h, (long long)d);
    return dt_att_bad(i, what, v, e);
}

/* Heads of a 3-D input [B, S, H * D]: D from the attribute H (its value `heads`). */
static ductile_status dt_att_heads(int64_t heads, const dt_view *in, int i, const char *what,
                                   const char *attr, int64_t *out_heads, int64_t *d)
{
    *out_heads = heads;
    if (heads <= 0)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attribute '%s' = %lld; 3-D inputs need a positive head count", attr,
                       (long long)heads);
    if (in[i].dims[2] % heads != 0) {
        char e[128];
        snprintf(e, sizeof e, "a last dim divisible by %s = %lld", attr, (long long)heads);
        return dt_att_bad(i, what, &in[i], e);
    }
    *d = in[i].dims[2] / heads;
    return DUCTILE_OK;
}

/* Q, K, V and the past cache share one float type: float32, or float16 / bfloat16, which
 * the kernel widens to float32. */
static ductile_status dt_att_float(const dt_view *in, int i, const char *what)
{
    int t = in[i].dtype;
    if (t != DUCTILE_FLOAT32 && t != DUCTILE_FLOAT16 && t != DUCTILE_BFLOAT16)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "input %d (%s) has dtype %s; supported: float32, float16, bfloat16", i, what,
                       ductile_dtype_name((ductile_dtype)t));
    if (t != in[0].dtype)
        return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) has dtype %s; expected %s like Q", i, what,
                       ductile_dtype_name((ductile_dtype)t),
                       ductile_dtype_name((ductile_dtype)in[0].dtype));
    return DUCTILE_OK;
}

static ductile_status dt_att_mask(const dt_view *in, dt_attention_params *p)
{
    const dt_view *m = &in[DT_ATT_MASK];
    if (m->dtype != in[0].dtype && m->dtype != DUCTILE_BOOL)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 3 (attn_mask) has dtype %s; expected bool or %s like Q",
                       ductile_dtype_name((ductile_dtype)m->dtype),
                       ductile_dtype_name((ductile_dtype)in[0].dtype));
    /* Right-aligned broadcast to [B, Hq, Sq, <= Stotal]. */
    const int64_t target[4] = {p->B, p->Hq, p->Sq, p->Stotal};
    bool ok = m->rank >= 1 && m->rank <= 4;
    int64_t stride = 1;
    for (int k = 3; ok && k >= 0; k--) {
        int a = m->rank - 4 + k;
        int64_t d = a >= 0 ? m->dims[a] : 1;
        if (k == 3) {
            ok = d <= target[3];
            p->mask_len = d;
        } else {
            ok = d == 1 || d == target[k];
        }
        p->mask_stride[k] = d == 1 && k < 3 ? 0 : stride;
        stride *= d;
    }
    if (!ok) {
        char e[200];
        snprintf(e, sizeof e,
                 "a shape that broadcasts to [%lld, %lld, %lld, %lld] (the last dim may be shorter)",
                 (long long)p->B, (long long)p->Hq, (long long)p->Sq, (long long)p->Stotal);
        return dt_att_bad(DT_ATT_MASK, "attn_mask", m, e);
    }
    p->has_mask = true;
    p->mask_bool = m->dtype == DUCTILE_BOOL;
    return DUCTILE_OK;
}

void dt_attention_attrs_read(const ductile_layer *L, dt_attention_attrs *a)
{
    *a = (dt_attention_attrs){
        .q_heads = dt_attr_int(L, "q_num_heads", 0),
        .kv_heads = dt_attr_int(L, "kv_num_heads", 0),
        .has_scale = dt_attr_find(L, "scale") != NULL,
        .scale = dt_attr_float(L, "scale", 0.0f),
        .softcap = dt_attr_float(L, "softcap", 0.0f),
        .causal = dt_attr_int(L, "is_causal", 0) != 0,
        .mode = (int)dt_attr_int(L, "qk_matmul_output_mode", 0),
        .left = dt_attr_int(L, "left_window_size", -1),
        .right = dt_attr_int(L, "right_window_size", -1),
    };
}

ductile_status dt_attention_params_get(const ductile_layer *L, const dt_view *in,
                                       dt_attention_params *p)
{
    dt_attention_attrs a;
    dt_attention_attrs_read(L, &a);
    return dt_attention_params_of(&a, L->n_in, in, p);
}

ductile_status dt_attention_params_of(const dt_attention_attrs *a, int n_in, const dt_view *in,
                                      dt_attention_params *p)
{
    *p = (dt_attention_params){0};
    DT_TRY(dt_att_float(in, DT_ATT_Q, "Q"));
    DT_TRY(dt_att_float(in, DT_ATT_K, "K"));
    DT_TRY(dt_att_float(in, DT_ATT_V, "V"));
    const dt_view *q = &in[DT_ATT_Q], *k = &in[DT_ATT_K], *v = &in[DT_ATT_V];
    if (q->rank != 3 && q->rank != 4) return dt_att_bad(0, "Q", q, "rank 3 or 4");
    if (k->rank != q->rank) return dt_att_bad(1, "K", k, q->rank == 3 ? "rank 3 like Q" : "rank 4 like Q");
    if (v->rank != q->rank) return dt_att_bad(2, "V", v, q->rank == 3 ? "rank 3 like Q" : "rank 4 like Q");
    p->B = q->dims[0];
    if (q->rank == 3) {
        p->rank3 = true;
        int64_t hk, hv;
        DT_TRY(dt_att_heads(a->q_heads, in, 0, "Q", "q_num_heads", &p->Hq, &p->Dh));
        DT_TRY(dt_att_heads(a->kv_heads, in, 1, "K", "kv_num_heads", &hk, &p->Dv));
        if (p->Dv != p->Dh) {
            char e[128];
            snprintf(e, sizeof e, "[%lld, seq, %lld] (head size %lld like Q)", (long long)p->B,
                     (long long)(hk * p->Dh), (long long)p->Dh);
            return dt_att_bad(1, "K", k, e);
        }
        DT_TRY(dt_att_heads(a->kv_heads, in, 2, "V", "kv_num_heads", &hv, &p->Dv));
        p->Hkv = hk;
        p->Sq = q->dims[1];
        p->Skv = k->dims[1];
        if (k->dims[0] != p->B || v->dims[0] != p->B || v->dims[1] != p->Skv) {
            char e[128];
            snprintf(e, sizeof e, "[%lld, %lld, ...] (batch of Q, sequence of K)", (long long)p->B,
                     (long long)p->Skv);
            return dt_att_bad(k->dims[0] != p->B ? 1 : 2, k->dims[0] != p->B ? "K" : "V",
                              k->dims[0] != p->B ? k : v, e);
        }
    } else {
        p->Hq = q->dims[1];
        p->Sq = q->dims[2];
        p->Dh = q->dims[3];
        DT_TRY(dt_att_4d(in, 1, "K", p->B, -1, p->Dh));
        p->Hkv = k->dims[1];
        p->Skv = k->dims[2];
        DT_TRY(dt_att_4d(in, 2, "V", p->B, p->Hkv, -1));
        p->Dv = v->dims[3];
        if (v->dims[2] != p->Skv) return dt_att_bad(2, "V", v, "the sequence length of K");
    }
    if (p->Hkv <= 0 || p->Hq % p->Hkv != 0)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "%lld query heads cannot be grouped over %lld key/value heads (must divide)",
                       (long long)p->Hq, (long long)p->Hkv);
    bool past_k = n_in > DT_ATT_PAST_K && in[DT_ATT_PAST_K].rank >= 0;
    bool past_v = n_in > DT_ATT_PAST_V && in[DT_ATT_PAST_V].rank >= 0;
    if (past_k != past_v)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "inputs 4 (past_key) and 5 (past_value) must be given together");
    if (past_k) {
        DT_TRY(dt_att_float(in, DT_ATT_PAST_K, "past_key"));
        DT_TRY(dt_att_float(in, DT_ATT_PAST_V, "past_value"));
        DT_TRY(dt_att_4d(in, DT_ATT_PAST_K, "past_key", p->B, p->Hkv, p->Dh));
        p->Spast = in[DT_ATT_PAST_K].dims[2];
        DT_TRY(dt_att_4d(in, DT_ATT_PAST_V, "past_value", p->B, p->Hkv, p->Dv));
        if (in[DT_ATT_PAST_V].dims[2] != p->Spast)
            return dt_att_bad(DT_ATT_PAST_V, "past_value", &in[DT_ATT_PAST_V],
                              "the sequence length of past_key");
    }
    if (!dt_add_i64(p->Spast, p->Skv, &p->Stotal))
        return dt_fail(DUCTILE_ERR_SHAPE, "past and new sequence lengths overflow");
    if (n_in > DT_ATT_MASK && in[DT_ATT_MASK].rank >= 0) DT_TRY(dt_att_mask(in, p));
    if (n_in > DT_ATT_NONPAD && in[DT_ATT_NONPAD].rank >= 0) {
        const dt_view *n = &in[DT_ATT_NONPAD];
        if (n->dtype != DUCTILE_INT64 || n->rank != 1 || n->dims[0] != p->B) {
            char e[64];
            snprintf(e, sizeof e, "int64 [%lld] (one length per batch)", (long long)p->B);
            return dt_att_bad(DT_ATT_NONPAD, "nonpad_kv_seqlen", n, e);
        }
        p->has_nonpad = true;
    }
    float scale = a->has_scale ? a->scale : 1.0f / sqrtf((float)(p->Dh > 0 ? p->Dh : 1));
    p->sqrt_scale = sqrtf(scale);
    p->softcap = a->softcap;
    p->causal = a->causal;
    p->mode = a->mode;
    p->left = a->left;
    p->right = a->right;
    return DUCTILE_OK;
}

static void dt_att_out(dt_view *o, int dtype, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                       int rank)
{
    *o = (dt_view){.dtype = dtype, .rank = rank, .dims = {d0, d1, d2, d3}};
}

ductile_status dt_nn_infer_attention(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    dt_attention_params p;
    DT_TRY(dt_attention_params_get(L, in, &p));
    int64_t hd, n;
    const int64_t qk[4] = {p.B, p.Hq, p.Sq, p.Stotal};
    if (!dt_mul_i64(p.Hq, p.Dv, &hd) || !dt_dims_product(qk, 4, &n))
        return dt_fail(DUCTILE_ERR_SHAPE, "the output sizes overflow");
    if (p.rank3)
        dt_att_out(&out[0], in[0].dtype, p.B, p.Sq, hd, 0, 3);
    else
        dt_att_out(&out[0], in[0].dtype, p.B, p.Hq, p.Sq, p.Dv, 4);
    if (L->n_out > 1) dt_att_out(&out[1], in[0].dtype, p.B, p.Hkv, p.Stotal, p.Dh, 4);
    if (L->n_out > 2) dt_att_out(&out[2], in[0].dtype, p.B, p.Hkv, p.Stotal, p.Dv, 4);
    if (L->n_out > 3) dt_att_out(&out[3], in[0].dtype, p.B, p.Hq, p.Sq, p.Stotal, 4);
    return DUCTILE_OK;
}
