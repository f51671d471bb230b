/* Definitions of the private layers of domain "ductile" (see fused.h). */
#include "ops/fused.h"
#include "ops/families.h"
#include "ops/linalg.h"
#include "core/status.h"

#include <string.h>

static const char *const dt_fc_acts[] = {"", "Relu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid", "Silu"};

ductile_status dt_fused_act_known(const ductile_layer *L, const char *attr)
{
    const char *act = dt_attr_string(L, attr, "");
    for (size_t i = 0; i < sizeof dt_fc_acts / sizeof dt_fc_acts[0]; i++)
        if (!strcmp(act, dt_fc_acts[i])) return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                   "attribute '%s' = '%s' is not supported (supported: '', Relu, Clip, HardSigmoid, HardSwish, Sigmoid, Silu)",
                   attr, act);
}

ductile_status dt_fused_conv_weight(const ductile_layer *L, const dt_view *w, dt_view *out)
{
    return dt_packed_weight_view(L, DT_FC_W, w, 3, 4, out);
}

bool dt_fused_conv_nhwc(const ductile_layer *L) { return !strcmp(dt_attr_string(L, "layout", ""), "NHWC"); }

int64_t dt_fused_conv_d2s(const ductile_layer *L, bool *crd)
{
    if (crd) *crd = !strcmp(dt_attr_string(L, "d2s_mode", "DCR"), "CRD");
    return dt_attr_int(L, "depth_to_space", 0);
}

ductile_status dt_fused_conv_nchw_views(const dt_view *x, const dt_view *w, dt_view *lx, dt_view *lw)
{
    if (x->rank != 4)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (X) has rank %d; layout 'NHWC' needs 4 ([N, H, W, C])", x->rank);
    if (w->rank != 4)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (W) has rank %d; layout 'NHWC' needs 4 ([M, KH, KW, C/group])",
                       w->rank);
    *lx = *x;
    *lw = *w;
    const int64_t *a = x->dims, *b = w->dims;
    int64_t dx[4] = {a[0], a[3], a[1], a[2]}, dw[4] = {b[0], b[3], b[1], b[2]};
    memcpy(lx->dims, dx, sizeof dx);
    memcpy(lw->dims, dw, sizeof dw);
    return DUCTILE_OK;
}

ductile_status dt_fused_conv_geometry(const ductile_layer *L, const dt_view *x, const dt_view *w, dt_conv_geom *g)
{
    dt_view wr, lx, lw;
    DT_TRY(dt_fused_conv_weight(L, w, &wr));
    if (!dt_fused_conv_nhwc(L)) return dt_conv_geometry(L, x, &wr, g);
    DT_TRY(dt_fused_conv_nchw_views(x, &wr, &lx, &lw));
    return dt_conv_geometry(L, &lx, &lw, g);
}

/* Output 1 (P, optional): the GlobalAveragePool of output 0, [N, M, 1, 1] (builder/fuse_pool.c);
 * of a channels-first 2-D output only. */
static ductile_status dt_fused_pool_out(const ductile_layer *L, dt_view *out)
{
    if (L->n_out < 2) return DUCTILE_OK;
    if (out[0].rank != 4)
        return dt_fail(DUCTILE_ERR_SHAPE, "output 1 (P) pools a 2-D conv's output; output 0 has rank %d", out[0].rank);
    out[1].dtype = out[0].dtype;
    out[1].rank = 4;
    out[1].dims[0] = out[0].dims[0];
    out[1].dims[1] = out[0].dims[1];
    out[1].dims[2] = out[1].dims[3] = 1;
    return DUCTILE_OK;
}

static ductile_status dt_fc_check(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 5, 1, 2, DT_INPUT_NAMES("X", "W")));
    if (L->n_out == 2 && (dt_fused_conv_nhwc(L) || dt_fused_conv_d2s(L, NULL) ||
                          dt_attr_int(L, "to", DUCTILE_FLOAT32) != DUCTILE_FLOAT32))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "output 1 (P) is not supported with attribute 'layout' = 'NHWC', "
                                                "'depth_to_space' or 'to'");
    DT_TRY(dt_fused_act_known(L, "activation"));
    const char *layout = dt_attr_string(L, "layout", "");
    if (strcmp(layout, "") && strcmp(layout, "NHWC"))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'layout' = '%s' is not supported (supported: '', NHWC)",
                       layout);
    if (dt_fused_conv_nhwc(L) && dt_attr_int(L, "packed", 0) != 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'layout' = 'NHWC' takes raw weights (attribute 'packed' = %lld)",
                       (long long)dt_attr_int(L, "packed", 0));
    if (dt_attr_int(L, "group", 1) < 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'group' = %lld; expected >= 1",
                       (long long)dt_attr_int(L, "group", 1));
    int64_t r = dt_fused_conv_d2s(L, NULL);
    const char *mode = dt_attr_string(L, "d2s_mode", "DCR");
    if (r < 0 || r > (1 << 16))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'depth_to_space' = %lld; expected 0 (none) to 65536",
                       (long long)r);
    if (strcmp(mode, "DCR") && strcmp(mode, "CRD"))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'd2s_mode' = '%s' is not supported (supported: DCR, CRD)", mode);
    for (int i = DT_FC_R; r && i < L->n_in; i++)
        if (L->in[i])
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'depth_to_space' does not take input %d (%s)", i,
                           i == DT_FC_R ? "R" : "S");
    int64_t to = dt_attr_int(L, "to", DUCTILE_FLOAT32);
    if (to != DUCTILE_FLOAT32 && to != DUCTILE_FLOAT16 && to != DUCTILE_BFLOAT16)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'to' = %lld is not a float type (float32, float16, bfloat16)",
                       (long long)to);
    return DUCTILE_OK;
}

/* A residual must have exactly the output's shape (no broadcasting: the epilogue reads it
 * with the output's offsets). */
static ductile_status dt_fused_want_residual(int i, const dt_view *r, const dt_view *out)
{
    bool same = r->rank == out->rank;
    for (int k = 0; same && k < r->rank; k++) same = r->dims[k] == out->dims[k];
    if (same) return DUCTILE_OK;
    char sr[160], so[160];
    dt_format_dims(sr, sizeof sr, r->dims, r->rank, NULL);
    dt_format_dims(so, sizeof so, out->dims, out->rank, NULL);
    return dt_fail(DUCTILE_ERR_SHAPE, "input %d (R) has shape %s; the residual must have the output's shape %s", i,
                   sr, so);
}

/* S scales X's channels per image: [N or 1, C, 1, 1] of X [N, C, ...], channels first. */
static ductile_status dt_fused_want_scale(const ductile_layer *L, const dt_view *x, const dt_view *s)
{
    if (dt_fused_conv_nhwc(L))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 4 (S) is not supported with attribute 'layout' = 'NHWC'");
    bool ok = x->rank >= 3 && s->rank == x->rank && (s->dims[0] == 1 || s->dims[0] == x->dims[0]) &&
              s->dims[1] == x->dims[1];
    for (int k = 2; ok && k < s->rank; k++) ok = s->dims[k] == 1;
    if (ok) return DUCTILE_OK;
    char ss[160], sx[160];
    dt_format_dims(ss, sizeof ss, s->dims, s->rank, NULL);
    dt_format_dims(sx, sizeof sx, x->dims, x->rank, NULL);
    return dt_fail(DUCTILE_ERR_SHAPE, "input 4 (S) has shape %s; the channel scale of X %s must be [N or 1, C, 1, ...]",
                   ss, sx);
}

static ductile_status dt_fc_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    /* float32, or half where a backend lowered the layer (builder/precision.c); one dtype. */
    static const char *const names[] = {"X", "W", "B", "residual", "S"};
    for (int i = 0; i < L->n_in; i++)
        if (L->in[i] && in[i].rank >= 0) DT_TRY(dt_want_float(in, i, i < 5 ? names[i] : "input", i ? 0 : -1));
    dt_conv_geom g;
    DT_TRY(dt_fused_conv_geometry(L, &in[DT_FC_X], &in[DT_FC_W], &g));
    if (L->n_in > DT_FC_B && L->in[DT_FC_B] && (in[DT_FC_B].rank != 1 || in[DT_FC_B].dims[0] != g.m))
        return dt_fail(DUCTILE_ERR_SHAPE, "input 2 (B) must be [%lld], one bias per output channel",
                       (long long)g.m);
    out[0].dtype = (int)dt_attr_int(L, "to", in[DT_FC_X].dtype);
    out[0].rank = in[DT_FC_X].rank;
    out[0].dims[0] = g.batch;
    out[0].dims[1] = g.m;
    dt_conv_out_dims(&g, out[0].dims + 2);
    int64_t r = dt_fused_conv_d2s(L, NULL);
    if (r) {    /* [N, M, OH, OW] -> [N, M / r^2, OH r, OW r], channels first in either layout */
        if (g.spatial != 2 || g.m % (r * r))
            return dt_fail(DUCTILE_ERR_SHAPE, "attribute 'depth_to_space' = %lld needs a 2-D conv whose %lld output "
                           "channels divide by %lld", (long long)r, (long long)g.m, (long long)(r * r));
        out[0].dims[1] = g.m / (r * r);
        out[0].dims[2] *= r;
        out[0].dims[3] *= r;
        return DUCTILE_OK;
    }
    if (dt_fused_conv_nhwc(L)) {    /* [N, M, OH, OW] -> [N, OH, OW, M] */
        int64_t *d = out[0].dims, m = d[1];
        d[1] = d[2];
        d[2] = d[3];
        d[3] = m;
    }
    if (L->n_in > DT_FC_R && L->in[DT_FC_R]) DT_TRY(dt_fused_want_residual(DT_FC_R, &in[DT_FC_R], &out[0]));
    if (L->n_in > DT_FC_S && L->in[DT_FC_S]) DT_TRY(dt_fused_want_scale(L, &in[DT_FC_X], &in[DT_FC_S]));
    return dt_fused_pool_out(L, out);
}

ductile_status dt_fused_matmul_weight(const ductile_layer *L, const dt_view *b, dt_view *out)
{
    return dt_packed_weight_view(L, DT_FM_B, b, 2, 2, out);
}

ductile_status dt_fused_matmul_act(const ductile_layer *L, dt_fm_act *act)
{
    const char *a = dt_attr_string(L, "activation", "");
    *act = !strcmp(a, "Gelu") ? DT_FM_ACT_GELU : !strcmp(a, "Silu") ? DT_FM_ACT_SILU : DT_FM_ACT_NONE;
    if (strcmp(a, "") && *act == DT_FM_ACT_NONE)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'activation' = '%s' is not supported (supported: '', Gelu, Silu)", a);
    return DUCTILE_OK;
}

static ductile_status dt_fm_check(const ductile_layer *L)
{
    bool norm = dt_attr_int(L, "norm", 0) != 0;
    DT_TRY(dt_check_arity(L, 2, norm ? 6 : 4, 1, 1, DT_INPUT_NAMES("A", "B")));
    if (norm && (L->n_in <= DT_FM_SCALE || !L->in[DT_FM_SCALE]))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 4 (Scale) is required with attribute norm = 1 but was omitted");
    dt_fm_act act;
    return dt_fused_matmul_act(L, &act);
}

static ductile_status dt_fm_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    /* float32, or half where a backend lowered the layer (builder/precision.c); one dtype. */
    static const char *const names[] = {"A", "B", "bias", "R", "Scale", "LB"};
    for (int i = 0; i < L->n_in && i < 6; i++)
        if (L->in[i] && in[i].rank >= 0) DT_TRY(dt_want_float(in, i, names[i], i ? DT_FM_A : -1));
    dt_view b;
    DT_TRY(dt_fused_matmul_weight(L, &in[DT_FM_B], &b));
    if (b.rank != 2)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (B) has rank %d; expected 2", b.rank);
    dt_matmul_geom g;
    DT_TRY(dt_matmul_geometry(&in[DT_FM_A], &b, &g));
    out[0].dtype = in[DT_FM_A].dtype;
    out[0].rank = g.out_rank;
    for (int i = 0; i < g.out_rank; i++) out[0].dims[i] = g.out[i];
    if (L->n_in > DT_FM_BIAS && L->in[DT_FM_BIAS] && (in[DT_FM_BIAS].rank != 1 || in[DT_FM_BIAS].dims[0] != g.N))
        return dt_fail(DUCTILE_ERR_SHAPE, "input 2 (bias) must be [%lld], one bias per output column", (long long)g.N);
    if (L->n_in > DT_FM_R && L->in[DT_FM_R]) DT_TRY(dt_fused_want_residual(DT_FM_R, &in[DT_FM_R], &out[0]));
    /* The LayerNorm's Scale and B: one per output column. */
    for (int i = DT_FM_SCALE; i < L->n_in; i++)
        if (L->in[i] && (in[i].rank != 1 || in[i].dims[0] != g.N))
            return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) must be [%lld], one per output column", i, names[i],
                           (long long)g.N);
    return DUCTILE_OK;
}

bool dt_fused_attention_qkv(const ductile_layer *L) { return !strcmp(dt_attr_string(L, "layout", ""), "bshd_qkv"); }

bool dt_fused_attention_bshd(const ductile_layer *L)
{
    return !strcmp(dt_attr_string(L, "layout", ""), "bshd") || dt_fused_attention_qkv(L);
}

void dt_fused_attention_attrs(const ductile_layer *L, dt_fa_attrs *a)
{
    *a = (dt_fa_attrs){
        .q_scale = dt_attr_float(L, "q_scale", 1.0f),
        .k_scale = dt_attr_float(L, "k_scale", 1.0f),
        .nan_to_zero = dt_attr_int(L, "nan_to_zero", 0) != 0,
        .has_mask = L->n_in > DT_FA_MASK && L->in[DT_FA_MASK],
        .bshd = dt_fused_attention_bshd(L),
        .qkv = dt_fused_attention_qkv(L),
        .krows = !strcmp(dt_attr_string(L, "layout", ""), "krows"),
    };
}

void dt_fused_attention_geometry(const dt_fa_attrs *a, const dt_view *in, dt_fa_geom *g)
{
    memset(g, 0, sizeof *g);
    const dt_view *q = &in[DT_FA_Q];
    int r = g->rank = q->rank;
    if (a->qkv) {    /* [B, S, 3, H, D]: items (b, h) */
        g->rank = 4;
        g->batch[0] = q->dims[0];
        g->batch[1] = g->H = q->dims[3];
        g->count = q->dims[0] * q->dims[3];
        g->S = g->L = q->dims[1];
        g->D = g->Dv = q->dims[4];
        g->ldq = g->ldk = g->ldv = 3 * g->H * g->D;
        g->koff = g->H * g->D;
        g->voff = 2 * g->H * g->D;
        r = 4;
    } else if (a->bshd) {   /* [B, S, H, D]: items (b, h) */
        g->batch[0] = q->dims[0];
        g->batch[1] = g->H = q->dims[2];
        g->count = q->dims[0] * q->dims[2];
        g->S = q->dims[1];
        g->D = q->dims[3];
        g->L = in[DT_FA_KT].dims[1];
        g->Dv = in[DT_FA_V].dims[3];
        g->ldq = g->ldk = g->H * g->D;
        g->ldv = g->H * g->Dv;
    } else {
        g->count = 1;
        for (int i = 0; i < r - 2; i++) {
            g->batch[i] = q->dims[i];
            g->count *= q->dims[i];
        }
        g->S = q->dims[r - 2];
        g->D = q->dims[r - 1];
        g->L = in[DT_FA_KT].dims[a->krows ? r - 2 : r - 1];
        g->Dv = in[DT_FA_V].dims[r - 1];
        if (a->krows) g->ldk = g->D;
    }
    if (!a->has_mask) return;
    const dt_view *m = &in[DT_FA_MASK];
    int64_t st = 1;
    for (int i = m->rank - 1; i >= 0; i--) {
        int d = r - m->rank + i;
        g->mstride[d] = m->dims[i] == 1 ? 0 : st;
        st *= m->dims[i];
    }
}

/* Q, K and V of layout "bshd" as the logical [B, H, S, D], [B, H, D, L], [B, H, L, Dv]
 * ("bshd_qkv": the three parts of input 0). */
static ductile_status dt_fa_logical(const dt_view *in, bool qkv, dt_view *lq, dt_view *lk, dt_view *lv)
{
    static const char *const names[] = {"Q", "K", "V"};
    const int64_t *q = in[DT_FA_Q].dims, *k, *v;
    int64_t parts[4];
    if (qkv) {
        if (in[DT_FA_Q].rank != 5 || q[2] != 3) {
            char sq[160];
            dt_format_dims(sq, sizeof sq, q, in[DT_FA_Q].rank, NULL);
            return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (QKV) has shape %s; layout 'bshd_qkv' needs [B, S, 3, H, D]", sq);
        }
        parts[0] = q[0], parts[1] = q[1], parts[2] = q[3], parts[3] = q[4];
        q = k = v = parts;
        *lq = *lk = *lv = in[DT_FA_Q];
        lq->rank = lk->rank = lv->rank = 4;
    } else {
        for (int i = 0; i < 3; i++)
            if (in[i].rank != 4)
                return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) has rank %d; layout 'bshd' needs 4", i, names[i],
                               in[i].rank);
        *lq = in[DT_FA_Q], *lk = in[DT_FA_KT], *lv = in[DT_FA_V];
        k = in[DT_FA_KT].dims, v = in[DT_FA_V].dims;
    }
    int64_t dq[4] = {q[0], q[2], q[1], q[3]}, dk[4] = {k[0], k[2], k[3], k[1]}, dv[4] = {v[0], v[2], v[1], v[3]};
    memcpy(lq->dims, dq, sizeof dq);
    memcpy(lk->dims, dk, sizeof dk);
    memcpy(lv->dims, dv, sizeof dv);
    return DUCTILE_OK;
}

static ductile_status dt_fa_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    /* float32, or half where a backend lowered the layer (builder/precision.c); one dtype. */
    static const char *const names[] = {"Q", "Kt", "V", "mask"};
    for (int i = 0; i < L->n_in; i++)
        if (L->in[i] && in[i].rank >= 0) DT_TRY(dt_want_float(in, i, names[i], i ? DT_FA_Q : -1));
    bool bshd = dt_fused_attention_bshd(L), krows = !strcmp(dt_attr_string(L, "layout", ""), "krows");
    dt_view lq = {0}, lk = {0}, lv = {0};
    if (bshd) DT_TRY(dt_fa_logical(in, dt_fused_attention_qkv(L), &lq, &lk, &lv));
    if (krows) {   /* K [..., L, D] as the logical Kt [..., D, L] */
        lk = in[DT_FA_KT];
        if (lk.rank >= 2) {
            int64_t t = lk.dims[lk.rank - 1];
            lk.dims[lk.rank - 1] = lk.dims[lk.rank - 2];
            lk.dims[lk.rank - 2] = t;
        }
    }
    const dt_view *q = bshd ? &lq : &in[DT_FA_Q], *k = bshd || krows ? &lk : &in[DT_FA_KT],
                  *v = bshd ? &lv : &in[DT_FA_V];
    int r = q->rank;
    if (r < 2 || k->rank != r || v->rank != r)
        return dt_fail(DUCTILE_ERR_SHAPE, "inputs Q, Kt and V have ranks %d, %d and %d; expected one rank >= 2", r,
                       k->rank, v->rank);
    for (int i = 0; i < r - 2; i++)
        if (k->dims[i] != q->dims[i] || v->dims[i] != q->dims[i])
            return dt_fail(DUCTILE_ERR_SHAPE, "dim %d: Q has %lld, Kt %lld and V %lld; the batch dims must be equal", i,
                           (long long)q->dims[i], (long long)k->dims[i], (long long)v->dims[i]);
    if (k->dims[r - 2] != q->dims[r - 1])
        return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (Kt) has %lld rows; Q's rows have %lld values", (long long)k->dims[r - 2],
                       (long long)q->dims[r - 1]);
    if (v->dims[r - 2] != k->dims[r - 1])
        return dt_fail(DUCTILE_ERR_SHAPE, "input 2 (V) has %lld rows; Kt has %lld keys", (long long)v->dims[r - 2],
                       (long long)k->dims[r - 1]);
    if (L->n_in > DT_FA_MASK && L->in[DT_FA_MASK]) {
        const dt_view *m = &in[DT_FA_MASK];
        bool ok = m->rank <= r;
        for (int i = 0; ok && i < m->rank; i++) {
            int d = r - m->rank + i;
            int64_t want = d == r - 1 ? k->dims[r - 1] : q->dims[d];
            ok = m->dims[i] == want || m->dims[i] == 1;
        }
        if (!ok) {
            char sm[160];
            dt_format_dims(sm, sizeof sm, m->dims, m->rank, NULL);
            return dt_fail(DUCTILE_ERR_SHAPE, "input 3 (mask) of shape %s does not broadcast to the scores", sm);
        }
    }
    out[0].dtype = in[DT_FA_Q].dtype;
    out[0].rank = r;
    for (int i = 0; i < r - 1; i++) out[0].dims[i] = q->dims[i];
    out[0].dims[r - 1] = v->dims[r - 1];
    if (bshd) {   /* [B, H, S, Dv] -> [B, S, H, Dv] */
        int64_t h = out[0].dims[1];
        out[0].dims[1] = out[0].dims[2];
        out[0].dims[2] = h;
    }
    return DUCTILE_OK;
}

static ductile_status dt_fa_check(const ductile_layer *L)
{
    const char *layout = dt_attr_string(L, "layout", "");
    if (strcmp(layout, "") && strcmp(layout, "bshd") && strcmp(layout, "bshd_qkv") && strcmp(layout, "krows"))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'layout' = '%s' is not supported (supported: '', bshd, bshd_qkv, krows)", layout);
    if (!dt_fused_attention_qkv(L)) return dt_check_arity(L, 3, 4, 1, 1, DT_INPUT_NAMES("Q", "Kt", "V"));
    /* Packed: K and V are parts of input 0, so inputs 1 and 2 are omitted. */
    DT_TRY(dt_check_arity(L, 1, 4, 1, 1, DT_INPUT_NAMES("QKV")));
    for (int i = DT_FA_KT; i <= DT_FA_V && i < L->n_in; i++)
        if (L->in[i])
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "input %d (%s) must be omitted with layout 'bshd_qkv' (Q, K and V are input 0)", i,
                           i == DT_FA_KT ? "Kt" : "V");
    return DUCTILE_OK;
}


/* FusedInvertedResidual: the shapes of its weights checked against X and each other, each
 * fault naming the input and dim; *gd: the depthwise conv's geometry. */
static ductile_status dt_irb_want_1x1(const dt_view *in, int i, const char *name, int64_t m, int64_t c)
{
    const dt_view *w = &in[i];
    bool ok = w->rank == 4 && (m < 0 || w->dims[0] == m) && w->dims[1] == c && w->dims[2] == 1 && w->dims[3] == 1;
    if (ok) return DUCTILE_OK;
    char sw[160];
    dt_format_dims(sw, sizeof sw, w->dims, w->rank, NULL);
    return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) has shape %s; expected [%s, %lld, 1, 1]", i, name, sw,
                   m < 0 ? "M" : "Ce", (long long)c);
}

static ductile_status dt_irb_want_bias(const dt_view *in, int i, const char *name, int64_t m)
{
    if (in[i].rank == 1 && in[i].dims[0] == m) return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) must be [%lld], one bias per output channel", i, name,
                   (long long)m);
}

static ductile_status dt_irb_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    static const char *const names[] = {"X", "We", "Be", "Wd", "Bd", "Wp", "Bp", "R"};
    for (int i = 0; i < L->n_in && i < 8; i++)
        if (L->in[i] && in[i].rank >= 0) DT_TRY(dt_want_float(in, i, names[i], i ? 0 : -1));
    const dt_view *x = &in[DT_IRB_X];
    if (x->rank != 4) return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (X) has rank %d; expected 4 ([N, C, H, W])", x->rank);
    /* We absent: no expand, the depthwise reads X (and Be must be absent too). */
    bool expand = L->in[DT_IRB_WE] != NULL;
    if (expand) DT_TRY(dt_irb_want_1x1(in, DT_IRB_WE, "We", -1, x->dims[1]));
    int64_t ce = expand ? in[DT_IRB_WE].dims[0] : x->dims[1];
    if (L->in[DT_IRB_BE] && !expand)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 2 (Be) is given without input 1 (We)");
    if (L->in[DT_IRB_BE]) DT_TRY(dt_irb_want_bias(in, DT_IRB_BE, "Be", ce));
    dt_view xd = *x;
    xd.dims[1] = ce;
    dt_conv_geom g;
    DT_TRY(dt_conv_geometry(L, &xd, &in[DT_IRB_WD], &g));
    if (!(g.spatial == 2 && g.group == ce && g.c == ce && g.m == ce))
        return dt_fail(DUCTILE_ERR_SHAPE, "input 3 (Wd) with group %lld is not a depthwise conv of the %lld expanded channels",
                       (long long)g.group, (long long)ce);
    if (L->in[DT_IRB_BD]) DT_TRY(dt_irb_want_bias(in, DT_IRB_BD, "Bd", ce));
    bool project = L->n_in > DT_IRB_WP && L->in[DT_IRB_WP];
    int64_t m = ce;
    if (project) {
        DT_TRY(dt_irb_want_1x1(in, DT_IRB_WP, "Wp", -1, ce));
        m = in[DT_IRB_WP].dims[0];
        if (L->n_in > DT_IRB_BP && L->in[DT_IRB_BP]) DT_TRY(dt_irb_want_bias(in, DT_IRB_BP, "Bp", m));
    }
    out[0].dtype = x->dtype;
    out[0].rank = 4;
    out[0].dims[0] = g.batch;
    out[0].dims[1] = m;
    dt_conv_out_dims(&g, out[0].dims + 2);
    if (L->n_in > DT_IRB_R && L->in[DT_IRB_R]) DT_TRY(dt_fused_want_residual(DT_IRB_R, &in[DT_IRB_R], &out[0]));
    return dt_fused_pool_out(L, out);
}

static ductile_status dt_irb_check(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 8, 1, 2, DT_INPUT_NAMES("X")));
    /* We (with Be), Bd may be omitted; the depthwise weights may not. */
    if (L->n_in < 5 || !L->in[DT_IRB_WD])
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 3 (Wd) is required but was omitted");
    static const char *const attrs[] = {"activation", "expand_activation", "project_activation"};
    for (int a = 0; a < 3; a++) DT_TRY(dt_fused_act_known(L, attrs[a]));
    return DUCTILE_OK;
}

const dt_opdef dt_ops_fused[] = {
    {"FusedAttention", dt_fa_check, dt_fa_infer, 0},
    {"FusedConv", dt_fc_check, dt_fc_infer, 0},
    {"FusedInvertedResidual", dt_irb_check, dt_irb_infer, 0},
    {"FusedLayerNorm", dt_fln_check, dt_fln_infer, 0},
    {"FusedMatMul", dt_fm_check, dt_fm_infer, 0},
    {"FusedRotary", dt_frot_check, dt_frot_infer, 0},
    {"FusedSqueezeExcite", dt_fse_check, dt_fse_infer, 0},
    {NULL, NULL, NULL, 0},
};
