/* Sequence and optional values of a context, and the layers that move them (seqval.h).
 * The layers only copy bytes (whole items, or slabs along an axis for SplitToSequence and
 * ConcatFromSequence), so they live here rather than as backend kernels. */
#include "runtime/seqval.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "core/status.h"
#include "ops/sequence.h"
#include "runtime/engine_impl.h"

#include <stdint.h>
#include <string.h>

void dt_seqval_free(dt_seqval *v)
{
    if (!v) return;
    for (int64_t j = 0; j < v->cap; j++) dt_free(v->items[j].data);
    dt_free(v->items);
    dt_free(v->caps);
    dt_free(v->pub);
    memset(v, 0, sizeof *v);
}

/* Room for n items (slots keep their buffers). */
static ductile_status dt_seqval_reserve(dt_seqval *v, int64_t n)
{
    if (n <= v->cap) return DUCTILE_OK;
    int64_t cap = v->cap < 4 ? 4 : v->cap;
    while (cap < n && cap <= INT64_MAX / 2) cap *= 2;
    size_t bi, bc, bp;
    if (cap < n || (uint64_t)cap > SIZE_MAX || !dt_mul_size((size_t)cap, sizeof *v->items, &bi) ||
        !dt_mul_size((size_t)cap, sizeof *v->caps, &bc) ||
        !dt_mul_size((size_t)cap, sizeof *v->pub, &bp))
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "a sequence of %lld items is too large", (long long)n);
    dt_view *items = dt_realloc(v->items, bi);
    if (items) v->items = items;
    size_t *caps = items ? dt_realloc(v->caps, bc) : NULL;
    if (caps) v->caps = caps;
    ductile_item *pub = caps ? dt_realloc(v->pub, bp) : NULL;
    if (!pub) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for a sequence of %lld items", (long long)n);
    v->pub = pub;
    for (int64_t j = v->cap; j < cap; j++) {
        memset(&v->items[j], 0, sizeof v->items[j]);
        v->caps[j] = 0;
    }
    v->cap = cap;
    return DUCTILE_OK;
}

/* Item j takes shape *shape; its buffer grows to fit. *bytes: its size. */
static ductile_status dt_seqval_shape(dt_seqval *v, int64_t j, const dt_view *shape, size_t *bytes)
{
    if (!dt_view_bytes(shape, bytes)) return dt_fail(DUCTILE_ERR_SHAPE, "item %lld is too large", (long long)j);
    if (v->caps[j] < *bytes || !v->items[j].data) {
        void *p = dt_aligned_alloc(64, *bytes ? *bytes : 1);
        if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for item %lld", *bytes, (long long)j);
        dt_free(v->items[j].data);
        v->items[j].data = p;
        v->caps[j] = *bytes;
    }
    void *data = v->items[j].data;
    v->items[j] = *shape;
    v->items[j].data = data;
    return DUCTILE_OK;
}

/* Item j becomes a copy of src. */
static ductile_status dt_seqval_put(dt_seqval *v, int64_t j, const dt_view *src)
{
    size_t bytes;
    DT_TRY(dt_seqval_shape(v, j, src, &bytes));
    if (bytes) memcpy(v->items[j].data, src->data, bytes);
    return DUCTILE_OK;
}

ductile_status dt_seqval_push(dt_seqval *v, const dt_view *item)
{
    DT_TRY(dt_seqval_reserve(v, v->n + 1));
    DT_TRY(dt_seqval_put(v, v->n, item));
    v->n++;
    return DUCTILE_OK;
}

ductile_status dt_seqval_copy(dt_seqval *dst, const dt_seqval *src)
{
    DT_TRY(dt_seqval_reserve(dst, src->n + 1));
    for (int64_t j = 0; j < src->n; j++) DT_TRY(dt_seqval_put(dst, j, &src->items[j]));
    dst->n = src->n;
    dst->elem = src->elem;
    dst->present = src->present;
    dst->set = true;
    return DUCTILE_OK;
}

ductile_status dt_seqval_assign(dt_seqval *v, const ductile_item *items, int64_t n, const char *what)
{
    bool optional = v->kind == DUCTILE_VALUE_OPTIONAL_TENSOR || v->kind == DUCTILE_VALUE_OPTIONAL_SEQUENCE;
    if (n < -1 || (n == -1 && !optional) || (v->kind == DUCTILE_VALUE_OPTIONAL_TENSOR && n != 1 && n != -1))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%s is %s: %lld items given; expected %s", what,
                       dt_value_kind_name(v->kind), (long long)n,
                       v->kind == DUCTILE_VALUE_OPTIONAL_TENSOR ? "1, or -1 for an empty optional"
                       : optional ? "0 or more, or -1 for an empty optional" : "0 or more");
    if (n > 0 && !items) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%s: items is NULL", what);
    for (int64_t j = 0; j < n; j++) {
        const ductile_item *it = &items[j];
        if ((int)it->dtype != v->elem)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%s: item %lld has dtype %s; expected %s", what, (long long)j,
                           ductile_dtype_name(it->dtype), ductile_dtype_name((ductile_dtype)v->elem));
        if (it->dims.nb_dims < 0 || it->dims.nb_dims > DT_MAX_DIMS)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%s: item %lld has rank %d; expected 0..%d", what, (long long)j,
                           it->dims.nb_dims, DT_MAX_DIMS);
        dt_view view = {.dtype = v->elem, .rank = it->dims.nb_dims, .data = (void *)it->data};
        for (int d = 0; d < view.rank; d++) {
            if (it->dims.d[d] < 0)
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%s: item %lld dimension %d is %lld", what, (long long)j, d,
                               (long long)it->dims.d[d]);
            view.dims[d] = it->dims.d[d];
        }
        size_t bytes;
        if (!dt_view_bytes(&view, &bytes))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%s: item %lld is too large", what, (long long)j);
        if (bytes && !it->data) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%s: item %lld has no data", what, (long long)j);
    }
    v->set = false;
    DT_TRY(dt_seqval_reserve(v, n > 0 ? n : 1));
    for (int64_t j = 0; j < n; j++) {
        dt_view view = {.dtype = v->elem, .rank = items[j].dims.nb_dims, .data = (void *)items[j].data};
        memcpy(view.dims, items[j].dims.d, sizeof(int64_t) * (size_t)view.rank);
        DT_TRY(dt_seqval_put(v, j, &view));
    }
    v->n = n > 0 ? n : 0;
    v->present = n >= 0;
    v->set = true;
    return DUCTILE_OK;
}

void dt_seqval_public(dt_seqval *v, const ductile_item **items, int64_t *n)
{
    for (int64_t j = 0; j < v->n; j++) {
        ductile_item *p = &v->pub[j];
        memset(p, 0, sizeof *p);
        p->dtype = (ductile_dtype)v->items[j].dtype;
        p->dims.nb_dims = v->items[j].rank;
        memcpy(p->dims.d, v->items[j].dims, sizeof(int64_t) * (size_t)v->items[j].rank);
        p->data = v->items[j].data;
    }
    *items = v->pub;
    *n = v->present ? v->n : -1;
}

/* ---- the layers ---- */

/* The tensor output: a copy of src. */
static ductile_status dt_out_copy(const ductile_layer *L, const dt_view *src, dt_seq_out_fn out, void *ctx)
{
    dt_view v = *src;
    v.data = NULL;
    DT_TRY(out(ctx, L->out[0]->index, &v));
    size_t bytes;
    if (dt_view_bytes(src, &bytes) && bytes) memcpy(v.data, src->data, bytes);
    return DUCTILE_OK;
}

static ductile_status dt_out_scalar(const ductile_layer *L, int dtype, int64_t value, dt_seq_out_fn out, void *ctx)
{
    dt_view v = {.dtype = dtype, .rank = 0};
    DT_TRY(out(ctx, L->out[0]->index, &v));
    if (dtype == DUCTILE_BOOL) *(uint8_t *)v.data = value != 0;
    else *(int64_t *)v.data = value;
    return DUCTILE_OK;
}

static ductile_status dt_want_items(const ductile_layer *L, const dt_seqval *s, const char *need)
{
    if (s->present && s->n > 0) return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 0 ('%s') is %s; %s needs %s", L->in[0]->name,
                   s->present ? "an empty sequence" : "an empty optional", L->op_type, need);
}

/* Bytes of dims [from, rank) of v times its element size, and the product of dims [0, to). */
static size_t dt_inner_bytes(const dt_view *v, int from)
{
    size_t b = ductile_dtype_size((ductile_dtype)v->dtype);
    for (int d = from; d < v->rank; d++) b *= (size_t)v->dims[d];
    return b;
}
static size_t dt_outer(const dt_view *v, int to)
{
    size_t n = 1;
    for (int d = 0; d < to; d++) n *= (size_t)v->dims[d];
    return n;
}

static ductile_status dt_split_to_sequence(const ductile_layer *L, const dt_seq_attrs *a, const dt_view *in, dt_seqval *o)
{
    const dt_view *x = &in[0];
    dt_split_seq sp;
    DT_TRY(dt_split_seq_of(a, x, L->n_in > 1 && L->in[1] ? &in[1] : NULL, &sp));
    DT_TRY(dt_seqval_reserve(o, sp.n > 0 ? sp.n : 1));
    size_t outer = dt_outer(x, sp.axis), row = dt_inner_bytes(x, sp.axis + 1);
    size_t xrow = row * (size_t)x->dims[sp.axis];
    int64_t at = 0;
    for (int64_t j = 0; j < sp.n; j++) {
        int64_t size = dt_split_seq_size(&sp, x, j);
        dt_view shape = *x;
        shape.data = NULL;
        if (sp.squeeze) {
            for (int d = sp.axis; d + 1 < x->rank; d++) shape.dims[d] = x->dims[d + 1];
            shape.rank--;
        } else {
            shape.dims[sp.axis] = size;
        }
        size_t bytes;
        DT_TRY(dt_seqval_shape(o, j, &shape, &bytes));
        size_t chunk = row * (size_t)size;
        for (size_t i = 0; i < outer && chunk; i++)
            memcpy((char *)o->items[j].data + i * chunk, (const char *)x->data + i * xrow + (size_t)at * row, chunk);
        at += size;
    }
    o->n = sp.n;
    o->elem = x->dtype;
    o->present = o->set = true;
    return DUCTILE_OK;
}

static ductile_status dt_concat_from_sequence(const ductile_layer *L, const dt_seq_attrs *a, const dt_seqval *s,
                                              dt_seq_out_fn out, void *ctx)
{
    DT_TRY(dt_want_items(L, s, "at least one tensor"));
    dt_view v;
    int axis;
    DT_TRY(dt_concat_seq_dims(a, s->items, s->n, &v, &axis));
    if (v.dtype != s->elem)
        return dt_fail(DUCTILE_ERR_FORMAT, "input 0 holds %s but its items are %s", ductile_dtype_name((ductile_dtype)s->elem),
                       ductile_dtype_name((ductile_dtype)v.dtype));
    DT_TRY(out(ctx, L->out[0]->index, &v));
    size_t outer = dt_outer(&v, axis), orow = dt_inner_bytes(&v, axis);
    size_t at = 0;
    for (int64_t j = 0; j < s->n; j++) {
        const dt_view *it = &s->items[j];
        /* Item j's part of one output row: its dims from the axis on (new_axis: the axis is
         * the output's new dim of size 1 per item, so the same count). */
        size_t chunk = dt_inner_bytes(it, axis);
        for (size_t i = 0; i < outer && chunk; i++)
            memcpy((char *)v.data + i * orow + at, (const char *)it->data + i * chunk, chunk);
        at += chunk;
    }
    return DUCTILE_OK;
}

ductile_status dt_seq_prepare(const ductile_layer *L, void **params)
{
    dt_seq_attrs *a = dt_malloc(sizeof *a);
    if (!a) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory preparing a sequence layer");
    dt_seq_attrs_read(L, a);
    *params = a;
    return DUCTILE_OK;
}

ductile_status dt_seq_run(const ductile_layer *L, const void *params, const dt_view *in, dt_seqval *const *vals,
                          dt_seq_out_fn out, void *ctx)
{
    const dt_seq_attrs *a = params;
    dt_seq_op op = a->op;
    /* vals is NULL when the network holds no sequence or optional (OptionalGetElement of a
     * tensor); NULL entries are tensors. */
    const dt_seqval *s = vals && L->n_in > 0 && L->in[0] ? vals[L->in[0]->index] : NULL;
    dt_seqval *o = vals && L->n_out > 0 ? vals[L->out[0]->index] : NULL;
    if (op == DT_SEQ_OPTIONAL && (L->n_in == 0 || !L->in[0])) {
        /* Optional without an input (its `type` attribute): an empty optional. */
        if (!o) return dt_fail(DUCTILE_ERR_INTERNAL, "output 0 ('%s') has no optional value", L->out[0]->name);
        o->n = 0;
        o->present = false;
        o->set = true;
        return DUCTILE_OK;
    }
    if (s && !s->set)
        return dt_fail(DUCTILE_ERR_STATE, "input 0 ('%s') has no value", L->in[0]->name);
    if (op == DT_SEQ_EMPTY) {
        o->n = 0;
        o->elem = a->dtype;
        o->present = o->set = true;
        return DUCTILE_OK;
    }
    if (op == DT_SEQ_CONSTRUCT) {
        DT_TRY(dt_seq_construct_dtypes(L, in));
        DT_TRY(dt_seqval_reserve(o, L->n_in));
        for (int k = 0; k < L->n_in; k++) DT_TRY(dt_seqval_put(o, k, &in[k]));
        o->n = L->n_in;
        o->elem = in[0].dtype;
        o->present = o->set = true;
        return DUCTILE_OK;
    }
    if (op == DT_SEQ_SPLIT) return dt_split_to_sequence(L, a, in, o);
    if (op == DT_SEQ_HAS_ELEMENT) {
        bool has = s ? s->present : L->n_in > 0 && L->in[0] != NULL;
        return dt_out_scalar(L, DUCTILE_BOOL, has, out, ctx);
    }
    /* Every other op reads input 0; a plain tensor there (Optional, OptionalGetElement). */
    if (!s) {
        if (o) {
            DT_TRY(dt_seqval_reserve(o, 1));
            DT_TRY(dt_seqval_put(o, 0, &in[0]));
            o->n = 1;
            o->elem = in[0].dtype;
            o->present = o->set = true;
            return DUCTILE_OK;
        }
        return dt_out_copy(L, &in[0], out, ctx);
    }
    if (op == DT_SEQ_LENGTH) return dt_out_scalar(L, DUCTILE_INT64, s->n, out, ctx);
    if (op == DT_SEQ_CONCAT) return dt_concat_from_sequence(L, a, s, out, ctx);
    if (op == DT_SEQ_AT) {
        int64_t p;
        DT_TRY(dt_seq_position(in, 1, s->n, false, &p));
        return dt_out_copy(L, &s->items[p], out, ctx);
    }
    if (op == DT_SEQ_INSERT) {
        if (in[1].dtype != s->elem)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 1 ('%s') has dtype %s but the sequence holds %s", L->in[1]->name,
                           ductile_dtype_name((ductile_dtype)in[1].dtype), ductile_dtype_name((ductile_dtype)s->elem));
        int64_t p = s->n;
        if (L->n_in > 2 && L->in[2]) DT_TRY(dt_seq_position(in, 2, s->n, true, &p));
        DT_TRY(dt_seqval_copy(o, s));
        /* Slot n (free, with its buffer) moves to p; the items from p move up one. */
        dt_view slot = o->items[o->n];
        size_t cap = o->caps[o->n];
        memmove(&o->items[p + 1], &o->items[p], sizeof *o->items * (size_t)(o->n - p));
        memmove(&o->caps[p + 1], &o->caps[p], sizeof *o->caps * (size_t)(o->n - p));
        o->items[p] = slot;
        o->caps[p] = cap;
        o->n++;
        return dt_seqval_put(o, p, &in[1]);
    }
    if (op == DT_SEQ_ERASE) {
        int64_t p = s->n - 1;
        if (L->n_in > 1 && L->in[1]) DT_TRY(dt_seq_position(in, 1, s->n, false, &p));
        else if (s->n == 0) DT_TRY(dt_want_items(L, s, "an item to erase"));
        DT_TRY(dt_seqval_copy(o, s));
        dt_view slot = o->items[p];
        size_t cap = o->caps[p];
        memmove(&o->items[p], &o->items[p + 1], sizeof *o->items * (size_t)(o->n - p - 1));
        memmove(&o->caps[p], &o->caps[p + 1], sizeof *o->caps * (size_t)(o->n - p - 1));
        o->items[o->n - 1] = slot;
        o->caps[o->n - 1] = cap;
        o->n--;
        return DUCTILE_OK;
    }
    /* Identity, Optional, OptionalGetElement of a sequence or optional. */
    bool get = op == DT_SEQ_GET_ELEMENT;
    if (get && !s->present)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 0 ('%s') is an empty optional; OptionalGetElement needs a value",
                       L->in[0]->name);
    if (!o) return dt_out_copy(L, &s->items[0], out, ctx);  /* the tensor of an optional */
    DT_TRY(dt_seqval_copy(o, s));
    if (get || op == DT_SEQ_OPTIONAL) o->present = true;
    return DUCTILE_OK;
}
