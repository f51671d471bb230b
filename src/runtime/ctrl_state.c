/* Values held across iterations, scan outputs gathered step by step (ctrl_internal.h). */
#include "runtime/ctrl_internal.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "core/dtype.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "graph/subgraph.h"
#include "ops/sequence.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

ductile_status dt_ctrl_bool(const dt_view *v, const char *what, bool *out)
{
    if (v->rank < 0 || !v->data) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%s has no value", what);
    int64_t n = dt_view_count(v);
    if (n != 1) return dt_fail(DUCTILE_ERR_SHAPE, "%s has %lld elements, expected 1", what, (long long)n);
    switch (v->dtype) {
    case DUCTILE_BOOL:
    case DUCTILE_UINT8:
    case DUCTILE_INT8: *out = *(const uint8_t *)v->data != 0; return DUCTILE_OK;
    case DUCTILE_INT32:
    case DUCTILE_INT64: *out = dt_view_int(v, 0) != 0; return DUCTILE_OK;
    case DUCTILE_FLOAT32: *out = *(const float *)v->data != 0; return DUCTILE_OK;
    default:
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "%s is %s, expected bool", what, ductile_dtype_name((ductile_dtype)v->dtype));
    }
}

/* Gives out[k] v's dtype and dims, a buffer from alloc, and v's bytes. */
ductile_status dt_ctrl_emit(const dt_view *v, int k, dt_view *out, dt_ctrl_alloc_fn alloc, void *user)
{
    size_t bytes;
    if (v->rank < 0 || !dt_view_bytes(v, &bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "output %d has no shape", k);
    out[k] = *v;
    out[k].data = NULL;
    DT_TRY(alloc(user, k, &out[k]));
    if (bytes && out[k].data != v->data) memmove(out[k].data, v->data, bytes);
    return DUCTILE_OK;
}

ductile_status dt_ctrl_emit_any(const ductile_layer *L, int k, const dt_view *v, const dt_seqval *src,
                                dt_seqval *const *vals, dt_view *out, dt_ctrl_alloc_fn alloc, void *user)
{
    const ductile_tensor *T = L->out[k];
    if (T->kind == DUCTILE_VALUE_TENSOR) return dt_ctrl_emit(v, k, out, alloc, user);
    dt_seqval *dst = vals ? vals[T->index] : NULL;
    if (!dst || !src) return dt_fail(DUCTILE_ERR_INTERNAL, "output %d ('%s') has no sequence value", k, T->name);
    /* A loop may carry an empty optional in that its body would turn into a sequence: with no
     * iteration run, the output has no value of its kind. */
    if (!src->present && dst->kind != DUCTILE_VALUE_OPTIONAL_TENSOR && dst->kind != DUCTILE_VALUE_OPTIONAL_SEQUENCE)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "output %d ('%s') is %s but its value is an empty optional", k, T->name,
                       dt_value_kind_name(dst->kind));
    /* An element dtype not yet known (the builder's dtype-settling run) is the items'. */
    if (dst->elem != DUCTILE_UNDEFINED && src->elem != dst->elem)
        return dt_fail(DUCTILE_ERR_FORMAT, "output %d ('%s') holds %s items, expected %s", k, T->name,
                       ductile_dtype_name((ductile_dtype)src->elem), ductile_dtype_name((ductile_dtype)dst->elem));
    DT_TRY(dt_seqval_copy(dst, src));
    out[k] = (dt_view){.dtype = src->elem, .rank = 0};
    return DUCTILE_OK;
}

ductile_status dt_held_set(dt_held *h, const dt_view *v, const char *what)
{
    size_t bytes;
    if (v->rank < 0 || !dt_view_bytes(v, &bytes)) return dt_fail(DUCTILE_ERR_SHAPE, "%s has no shape", what);
    if (!h->v.data || h->cap < bytes) {
        void *p = dt_aligned_alloc(64, bytes ? bytes : 1);
        if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for %s", bytes, what);
        dt_free(h->v.data);
        h->v.data = p;
        h->cap = bytes;
    }
    void *data = h->v.data;
    h->v = *v;
    h->v.data = data;
    if (bytes) memcpy(data, v->data, bytes);
    return DUCTILE_OK;
}

ductile_status dt_steps_push(dt_stack *st, const dt_view *v, int k, const char *name, int64_t it)
{
    if (v->rank < 0) return dt_fail(DUCTILE_ERR_SHAPE, "scan output %d ('%s') has no shape", k, name);
    if (st->n == 0) {
        st->first = *v;
        st->first.data = NULL;
        if (!dt_view_bytes(v, &st->step)) return dt_fail(DUCTILE_ERR_SHAPE, "scan output %d ('%s') is too large", k, name);
    } else if (v->dtype != st->first.dtype || v->rank != st->first.rank ||
               memcmp(v->dims, st->first.dims, sizeof(int64_t) * (size_t)v->rank)) {
        char a[160], b[160];
        dt_format_dims(a, sizeof a, v->dims, v->rank, NULL);
        dt_format_dims(b, sizeof b, st->first.dims, st->first.rank, NULL);
        return dt_fail(DUCTILE_ERR_SHAPE, "scan output %d ('%s') is %s at iteration %lld but was %s at iteration 0; a scan output keeps one shape",
                       k, name, a, (long long)it, b);
    }
    size_t need;
    if (!dt_mul_size((size_t)st->n + 1, st->step, &need))
        return dt_fail(DUCTILE_ERR_SHAPE, "scan output %d ('%s') is too large", k, name);
    if (need > st->cap) {
        size_t cap = st->cap ? st->cap : 256;
        while (cap < need)
            if (!dt_mul_size(cap, 2, &cap)) return dt_fail(DUCTILE_ERR_SHAPE, "scan output %d ('%s') is too large", k, name);
        unsigned char *p = dt_realloc(st->data, cap);
        if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for scan output %d ('%s')", cap, k, name);
        st->data = p;
        st->cap = cap;
    }
    if (st->step) memcpy(st->data + (size_t)st->n * st->step, v->data, st->step);
    st->n++;
    return DUCTILE_OK;
}

/* Lays the steps out along axis (of the output, rank + 1), last step first when reverse.
 * decl: the body's output tensor, for the shape of a scan output without steps. */
ductile_status dt_steps_emit(dt_stack *st, const ductile_tensor *decl, int64_t axis, const char *axis_attr,
                                    int kout, int k, bool reverse, dt_view *out, dt_ctrl_alloc_fn alloc, void *user)
{
    if (st->n == 0) {
        /* No step ran: the body's declared shape, unknown dims as 0. */
        if (!decl->dtype)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "scan output %d ('%s') has no steps and the body declares no dtype for it",
                           k, decl->name);
        memset(&st->first, 0, sizeof st->first);
        st->first.dtype = decl->dtype;
        st->first.rank = decl->rank < 0 ? 0 : decl->rank;   /* unknown: [0], as onnxruntime */
        for (int d = 0; d < decl->rank; d++) st->first.dims[d] = decl->dims[d] < 0 ? 0 : decl->dims[d];
        st->step = 0;
    }
    int r = st->first.rank;
    if (r + 1 > DT_MAX_DIMS)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "scan output %d ('%s') would have rank %d, above the maximum of %d", k,
                       decl->name, r + 1, DT_MAX_DIMS);
    if (axis < -(r + 1) || axis > r)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%s[%d] is %lld, out of range for scan output %d ('%s') of rank %d",
                       axis_attr, k, (long long)axis, k, decl->name, r + 1);
    int a = (int)(axis < 0 ? axis + r + 1 : axis);
    dt_view o = st->first;
    o.rank = r + 1;
    for (int d = r; d > a; d--) o.dims[d] = o.dims[d - 1];
    o.dims[a] = st->n;
    out[kout] = o;
    DT_TRY(alloc(user, kout, &out[kout]));
    size_t outer = 1;
    for (int d = 0; d < a; d++) outer *= (size_t)st->first.dims[d];
    if (!outer || !st->step) return DUCTILE_OK;
    size_t inner = st->step / outer, n = (size_t)st->n;
    unsigned char *dst = out[kout].data;
    for (size_t t = 0; t < n; t++) {
        size_t p = reverse ? n - 1 - t : t;
        for (size_t q = 0; q < outer; q++) memcpy(dst + (q * n + p) * inner, st->data + t * st->step + q * inner, inner);
    }
    return DUCTILE_OK;
}

void dt_loopstate_free(dt_loopstate *ls)
{
    for (int j = 0; ls->state && j < ls->n; j++) dt_free(ls->state[j].v.data);
    for (int j = 0; ls->next && j < ls->n; j++) dt_free(ls->next[j].v.data);
    for (int j = 0; ls->stacks && j < ls->k; j++) dt_free(ls->stacks[j].data);
    for (int j = 0; ls->sstate && j < ls->n; j++) dt_seqval_free(&ls->sstate[j]);
    for (int j = 0; ls->snext && j < ls->n; j++) dt_seqval_free(&ls->snext[j]);
    dt_free(ls->sstate);
    dt_free(ls->snext);
    dt_free(ls->state);
    dt_free(ls->next);
    dt_free(ls->stacks);
}

ductile_status dt_loopstate_init(dt_loopstate *ls, int n, int k, const dt_view *init, dt_seqval *const *sinit,
                                 const ductile_network *body, int first_in)
{
    memset(ls, 0, sizeof *ls);
    ls->n = n;
    ls->k = k;
    ls->state = dt_calloc((size_t)n + 1, sizeof *ls->state);
    ls->next = dt_calloc((size_t)n + 1, sizeof *ls->next);
    ls->stacks = dt_calloc((size_t)k + 1, sizeof *ls->stacks);
    ls->sstate = dt_calloc((size_t)n + 1, sizeof *ls->sstate);
    ls->snext = dt_calloc((size_t)n + 1, sizeof *ls->snext);
    if (!ls->state || !ls->next || !ls->stacks || !ls->sstate || !ls->snext) return dt_ctrl_oom("loop state");
    for (int j = 0; j < n; j++) {
        char what[48];
        snprintf(what, sizeof what, "loop-carried value %d", j);
        const ductile_tensor *bi = body->inputs[first_in + j];
        if (bi->kind == DUCTILE_VALUE_TENSOR) {
            DT_TRY(dt_held_set(&ls->state[j], &init[j], what));
            continue;
        }
        /* A sequence or optional: carried as a value of the loop's own, of the body input's
         * kind (an optional the body turns into what it holds stays one going in). */
        ls->sstate[j].kind = ls->snext[j].kind = bi->kind;
        ls->sstate[j].elem = ls->snext[j].elem = bi->dtype;
        if (!sinit || !sinit[j]) return dt_fail(DUCTILE_ERR_INTERNAL, "%s has no sequence value", what);
        DT_TRY(dt_seqval_copy(&ls->sstate[j], sinit[j]));
    }
    return DUCTILE_OK;
}

/* After an iteration: body outputs [first, first + n) are the next state, the k after them
 * scan outputs. */
ductile_status dt_loopstate_step(dt_loopstate *ls, const dt_subrun *r, int first, int64_t it)
{
    for (int j = 0; j < ls->n; j++) {
        char what[48];
        snprintf(what, sizeof what, "loop-carried value %d", j);
        dt_seqval *sv = dt_subrun_seq_output(r, first + j);
        if (sv) {
            if (ls->snext[j].elem != DUCTILE_UNDEFINED && sv->elem != ls->snext[j].elem)
                return dt_fail(DUCTILE_ERR_FORMAT, "%s holds %s items, expected %s", what,
                               ductile_dtype_name((ductile_dtype)sv->elem), ductile_dtype_name((ductile_dtype)ls->snext[j].elem));
            DT_TRY(dt_seqval_copy(&ls->snext[j], sv));
        } else {
            DT_TRY(dt_held_set(&ls->next[j], dt_subrun_output(r, first + j), what));
        }
    }
    dt_held *t = ls->state;
    ls->state = ls->next;
    ls->next = t;
    dt_seqval *u = ls->sstate;
    ls->sstate = ls->snext;
    ls->snext = u;
    const ductile_network *b = r->sg->net;
    for (int j = 0; j < ls->k; j++)
        DT_TRY(dt_steps_push(&ls->stacks[j], dt_subrun_output(r, first + ls->n + j), j,
                             b->outputs[first + ls->n + j]->name, it));
    return DUCTILE_OK;
}

int64_t dt_ctrl_attr_at(const ductile_layer *L, const char *name, int i)
{
    int64_t n;
    const int64_t *v = dt_attr_ints(L, name, &n);
    return v && i < n ? v[i] : 0;
}
