/* Scan (ctrl_internal.h): opset 9 and later, and opset 8 (batched) through it. */
#include "runtime/ctrl_internal.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "core/dtype.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "graph/subgraph.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* What differs between Scan 9+ and Scan 8 (one batch element at a time). */
typedef struct dt_scan_args {
    const dt_view *vals;      /* n states, then m scan inputs */
    int base;                 /* the layer input of vals[0], for names */
    bool opset8;              /* axes 0 and forward outputs; directions from 'directions' */
    int64_t limit;            /* steps to run (Scan 8's sequence_lens), -1: all */
    dt_seqval *const *seqs;   /* the enclosing values, for captured sequences (dt_ctrl_run) */
} dt_scan_args;

static ductile_status dt_scan_steps(const dt_ctrl *c, const ductile_layer *L, const dt_view *in, const dt_scan_args *a,
                                    int m, dt_view *out, const dt_exec *ex, dt_ctrl_alloc_fn alloc, void *user)
{
    const dt_subgraph *sg = &c->g[0];
    const ductile_network *b = sg->net;
    int n = dt_graph_formal_inputs(b) - m, k = L->n_out - n;
    const char *dir_attr = a->opset8 ? "directions" : "scan_input_directions";
    int axes[DT_MAX_LAYER_IO];
    int64_t len = -1;
    for (int j = 0; j < m; j++) {
        const dt_view *v = &a->vals[n + j];
        int64_t ax = a->opset8 ? 0 : dt_ctrl_attr_at(L, "scan_input_axes", j);
        if (ax < -v->rank || ax >= v->rank)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "scan_input_axes[%d] is %lld, out of range for scan input %d ('%s') of rank %d",
                           j, (long long)ax, j, L->in[a->base + n + j]->name, v->rank);
        axes[j] = (int)(ax < 0 ? ax + v->rank : ax);
        int64_t steps = v->dims[axes[j]];
        if (len >= 0 && steps != len)
            return dt_fail(DUCTILE_ERR_SHAPE, "scan input %d ('%s') has %lld steps along axis %d, scan input 0 has %lld",
                           j, L->in[a->base + n + j]->name, (long long)steps, axes[j], (long long)len);
        len = steps;
    }
    int64_t steps = a->limit >= 0 && a->limit < len ? a->limit : len;
    dt_loopstate ls;
    dt_subrun r;
    ductile_status s = dt_loopstate_init(&ls, n, k, a->vals, NULL, b, 0);
    if (!s) s = dt_subrun_init(&r, sg, in, a->seqs, L);
    else memset(&r, 0, sizeof r);
    /* Slices of the scan inputs, one step each. */
    dt_held *slices = s ? NULL : dt_calloc((size_t)m + 1, sizeof *slices);
    if (!s && !slices) s = dt_ctrl_oom("scan slices");
    for (int j = 0; !s && j < m; j++) {
        dt_view sv = a->vals[n + j];
        for (int d = axes[j]; d + 1 < sv.rank; d++) sv.dims[d] = sv.dims[d + 1];
        sv.rank--;
        size_t bytes;
        dt_view_bytes(&sv, &bytes);
        slices[j].v = sv;
        if (!(slices[j].v.data = dt_aligned_alloc(64, bytes ? bytes : 1))) s = dt_ctrl_oom("scan slices");
    }
    for (int64_t t = 0; !s && t < steps; t++) {
        for (int j = 0; j < m; j++) {
            const dt_view *v = &a->vals[n + j];
            size_t es = ductile_dtype_size((ductile_dtype)v->dtype), outer = 1, inner = es;
            for (int d = 0; d < axes[j]; d++) outer *= (size_t)v->dims[d];
            for (int d = axes[j] + 1; d < v->rank; d++) inner *= (size_t)v->dims[d];
            int64_t idx = dt_ctrl_attr_at(L, dir_attr, j) ? steps - 1 - t : t;
            const unsigned char *src = v->data;
            unsigned char *dst = slices[j].v.data;
            for (size_t q = 0; q < outer && inner; q++)
                memcpy(dst + q * inner, src + (q * (size_t)len + (size_t)idx) * inner, inner);
            r.inputs[n + j] = slices[j].v;
        }
        for (int j = 0; j < n; j++) r.inputs[j] = ls.state[j].v;
        s = dt_subrun_exec(&r, ex);
        if (!s) s = dt_loopstate_step(&ls, &r, 0, t);
        if (s) s = dt_fail_prefix(s, "body iteration %lld", (long long)t);
    }
    for (int j = 0; !s && j < n; j++) s = dt_ctrl_emit(&ls.state[j].v, j, out, alloc, user);
    for (int j = 0; !s && j < k; j++)
        s = dt_steps_emit(&ls.stacks[j], b->outputs[n + j], a->opset8 ? 0 : dt_ctrl_attr_at(L, "scan_output_axes", j),
                          "scan_output_axes", n + j, j, !a->opset8 && dt_ctrl_attr_at(L, "scan_output_directions", j) != 0,
                          out, alloc, user);
    for (int j = 0; slices && j < m; j++) dt_free(slices[j].v.data);
    dt_free(slices);
    if (r.sg) dt_subrun_free(&r);
    dt_loopstate_free(&ls);
    return s;
}

/* Scan 8: every input and output has a batch dim first; each batch element is scanned on its
 * own (along its dim 0, its scan dim 1 of the whole), for sequence_lens[b] steps when that
 * input is given, and lands in its block of the outputs (scan outputs zero-padded). */
typedef struct dt_scan8 {
    dt_view *out;             /* the layer's outputs */
    dt_ctrl_alloc_fn alloc;
    void *user;
    int64_t b, batch, len;
    int n;                    /* states; outputs from n on are scan outputs */
    size_t block[DT_MAX_LAYER_IO];
} dt_scan8;

static ductile_status dt_scan8_alloc(void *user, int k, dt_view *v)
{
    dt_scan8 *u = user;
    bool scan = k >= u->n;
    if (u->b == 0) {
        if (v->rank + 1 > DT_MAX_DIMS)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "output %d would have rank %d, above the maximum of %d", k, v->rank + 1,
                           DT_MAX_DIMS);
        dt_view full = *v;
        full.rank = v->rank + 1;
        for (int d = v->rank; d > 0; d--) full.dims[d] = v->dims[d - 1];
        full.dims[0] = u->batch;
        if (scan) full.dims[1] = u->len;
        u->out[k] = full;
        DT_TRY(u->alloc(u->user, k, &u->out[k]));
        size_t bytes;
        dt_view_bytes(&full, &bytes);
        if (bytes) memset(u->out[k].data, 0, bytes);
        u->block[k] = u->batch ? bytes / (size_t)u->batch : 0;
    } else {
        const dt_view *f = &u->out[k];
        bool same = v->rank + 1 == f->rank && v->dtype == f->dtype;
        for (int d = scan ? 1 : 0; same && d < v->rank; d++) same = v->dims[d] == f->dims[d + 1];
        if (!same) {
            char a[160], b[160];
            dt_format_dims(a, sizeof a, v->dims, v->rank, NULL);
            dt_format_dims(b, sizeof b, f->dims + 1, f->rank - 1, NULL);
            return dt_fail(DUCTILE_ERR_SHAPE, "output %d is %s for batch element %lld but %s for batch element 0", k, a,
                           (long long)u->b, b);
        }
    }
    v->data = (unsigned char *)u->out[k].data + (size_t)u->b * u->block[k];
    return DUCTILE_OK;
}

static ductile_status dt_scan8_run(const dt_ctrl *c, const ductile_layer *L, const dt_view *in, dt_seqval *const *seqs, dt_view *out,
                                   const dt_exec *ex, dt_ctrl_alloc_fn alloc, void *user)
{
    int m = (int)dt_attr_int(L, "num_scan_inputs", 0), n = c->n_formal - 1 - m;
    dt_scan8 u = {.out = out, .alloc = alloc, .user = user, .n = n, .batch = -1, .len = -1};
    for (int j = 0; j < n + m; j++) {
        const dt_view *v = &in[1 + j];
        int need = j < n ? 1 : 2;
        if (v->rank < need || (u.batch >= 0 && v->dims[0] != u.batch) || (j >= n && u.len >= 0 && v->dims[1] != u.len))
            return dt_fail(DUCTILE_ERR_SHAPE, "input %d ('%s') must have rank >= %d, the batch size %lld first%s", 1 + j,
                           L->in[1 + j]->name, need, (long long)u.batch, j >= n ? " and the sequence length second" : "");
        u.batch = v->dims[0];
        if (j >= n) u.len = v->dims[1];
    }
    const dt_view *lens = L->in[0] ? &in[0] : NULL;
    if (lens && (lens->rank != 1 || lens->dims[0] != u.batch || (lens->dtype != DUCTILE_INT64 && lens->dtype != DUCTILE_INT32)))
        return dt_fail(DUCTILE_ERR_SHAPE, "sequence_lens must be %lld integers, one per batch element", (long long)u.batch);
    dt_view vals[DT_MAX_LAYER_IO], bout[DT_MAX_LAYER_IO];
    size_t block[DT_MAX_LAYER_IO];
    for (int j = 0; j < n + m; j++) {
        size_t bytes;
        dt_view_bytes(&in[1 + j], &bytes);
        block[j] = u.batch ? bytes / (size_t)u.batch : 0;
    }
    for (u.b = 0; u.b < u.batch; u.b++) {
        for (int j = 0; j < n + m; j++) {
            vals[j] = in[1 + j];
            vals[j].rank--;
            memmove(vals[j].dims, vals[j].dims + 1, sizeof(int64_t) * (size_t)vals[j].rank);
            vals[j].data = (unsigned char *)in[1 + j].data + (size_t)u.b * block[j];
        }
        int64_t limit = lens ? dt_view_int(lens, u.b) : -1;
        if (lens && (limit < 0 || limit > u.len))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "sequence_lens[%lld] is %lld, expected 0..%lld", (long long)u.b,
                           (long long)limit, (long long)u.len);
        dt_scan_args a = {.vals = vals, .base = 1, .opset8 = true, .limit = limit, .seqs = seqs};
        ductile_status s = dt_scan_steps(c, L, in, &a, m, bout, ex, dt_scan8_alloc, &u);
        if (s) return dt_fail_prefix(s, "batch element %lld", (long long)u.b);
    }
    return DUCTILE_OK;
}

ductile_status dt_ctrl_scan(const dt_ctrl *c, const ductile_layer *L, const dt_view *in, dt_seqval *const *vals,
                            dt_view *out, const dt_exec *ex, dt_ctrl_alloc_fn alloc, void *user)
{
    if (L->opset > 0 && L->opset < 9) return dt_scan8_run(c, L, in, vals, out, ex, alloc, user);
    dt_scan_args a = {.vals = in, .base = 0, .limit = -1, .seqs = vals};
    return dt_scan_steps(c, L, in, &a, (int)dt_attr_int(L, "num_scan_inputs", 0), out, ex, alloc, user);
}
