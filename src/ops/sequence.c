/* Sequences and optionals: the family's table, the value kinds of each op's inputs and
 * outputs, and the arithmetic the runtime shares (sequence.h).
 *
 * infer (the shape pass) gives a sequence or optional output its element dtype and rank 0:
 * the items' shapes are known only when execute makes them, so engines with these values
 * are eager (runtime/plan.c) and the runtime computes the items (runtime/seqval.c). A tensor
 * read out of a sequence depends on its data: infer says so, as NonZero's does. */
#include "ops/sequence.h"
#include "ops/families.h"
#include "graph/subgraph.h"
#include "core/checked.h"
#include "core/status.h"

#include <string.h>

static const char *const dt_seq_ops[] = {"SequenceEmpty",   "SequenceConstruct",  "SequenceInsert",
                                         "SequenceAt",      "SequenceErase",      "SequenceLength",
                                         "SplitToSequence", "ConcatFromSequence", "Optional",
                                         "OptionalHasElement", "OptionalGetElement", NULL};

const char *dt_value_kind_name(int kind)
{
    switch (kind) {
    case DUCTILE_VALUE_TENSOR: return "a tensor";
    case DUCTILE_VALUE_SEQUENCE: return "a sequence";
    case DUCTILE_VALUE_OPTIONAL_TENSOR: return "an optional tensor";
    case DUCTILE_VALUE_OPTIONAL_SEQUENCE: return "an optional sequence";
    }
    return "an unknown kind";
}

static int dt_in_kind(const ductile_layer *L, int k)
{
    return k < L->n_in && L->in[k] ? L->in[k]->kind : -1;
}

bool dt_layer_is_sequence(const ductile_layer *L)
{
    if (L->domain && L->domain[0]) return false;
    /* Control flow moves sequences itself (runtime/ctrl.c), between its subgraphs. */
    if (dt_ctrl_op(L->op_type)) return false;
    for (int i = 0; dt_seq_ops[i]; i++)
        if (!strcmp(L->op_type, dt_seq_ops[i])) return true;
    for (int k = 0; k < L->n_in; k++)
        if (L->in[k] && L->in[k]->kind != DUCTILE_VALUE_TENSOR) return true;
    for (int k = 0; k < L->n_out; k++)
        if (L->out[k] && L->out[k]->kind != DUCTILE_VALUE_TENSOR) return true;
    return false;
}

static ductile_status dt_want_kind(const ductile_layer *L, int k, int kind)
{
    int have = dt_in_kind(L, k);
    if (have < 0 || have == kind) return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input %d ('%s') is %s; %s takes %s there", k, L->in[k]->name,
                   dt_value_kind_name(have), L->op_type, dt_value_kind_name(kind));
}

/* The kind of L's output 0 (every other output is a tensor). */
static ductile_status dt_out_kind(const ductile_layer *L, int *kind)
{
    const char *op = L->op_type;
    bool onnx = !L->domain || !L->domain[0];
    *kind = DUCTILE_VALUE_TENSOR;
    if (onnx && !strcmp(op, "Identity")) {
        if (dt_in_kind(L, 0) >= 0) *kind = dt_in_kind(L, 0);
        return DUCTILE_OK;
    }
    if (onnx && (!strcmp(op, "OptionalGetElement") || !strcmp(op, "Optional"))) {
        int in = dt_in_kind(L, 0);
        int64_t nt;
        const int64_t *type = dt_attr_ints(L, "type", &nt);
        if (in < 0 && op[8] != 'G' && type && nt == 2) {
            /* Optional without an input: the kind its `type` names (onnx/attr.c: {kind, dtype}). */
            *kind = type[0] == DUCTILE_VALUE_TENSOR     ? DUCTILE_VALUE_OPTIONAL_TENSOR
                  : type[0] == DUCTILE_VALUE_SEQUENCE   ? DUCTILE_VALUE_OPTIONAL_SEQUENCE
                                                        : DUCTILE_VALUE_TENSOR;
            return DUCTILE_OK;
        }
        if (in < 0) return DUCTILE_OK;  /* check refuses it */
        bool get = op[8] == 'G';
        *kind = get ? (in == DUCTILE_VALUE_OPTIONAL_TENSOR ? DUCTILE_VALUE_TENSOR
                       : in == DUCTILE_VALUE_OPTIONAL_SEQUENCE ? DUCTILE_VALUE_SEQUENCE : in)
                    : (in == DUCTILE_VALUE_TENSOR ? DUCTILE_VALUE_OPTIONAL_TENSOR
                       : in == DUCTILE_VALUE_SEQUENCE ? DUCTILE_VALUE_OPTIONAL_SEQUENCE : -1);
        if (*kind < 0)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 ('%s') is %s; an optional of an optional is not supported by ductile",
                           L->in[0]->name, dt_value_kind_name(in));
        return DUCTILE_OK;
    }
    if (onnx && !strcmp(op, "OptionalHasElement")) return DUCTILE_OK;
    bool seq_in = onnx && (!strcmp(op, "SequenceInsert") || !strcmp(op, "SequenceAt") || !strcmp(op, "SequenceErase") ||
                           !strcmp(op, "SequenceLength") || !strcmp(op, "ConcatFromSequence"));
    bool seq_out = onnx && (!strcmp(op, "SequenceEmpty") || !strcmp(op, "SequenceConstruct") || !strcmp(op, "SequenceInsert") ||
                            !strcmp(op, "SequenceErase") || !strcmp(op, "SplitToSequence"));
    for (int k = 0; k < L->n_in; k++)
        DT_TRY(dt_want_kind(L, k, seq_in && k == 0 ? DUCTILE_VALUE_SEQUENCE : DUCTILE_VALUE_TENSOR));
    if (seq_out) *kind = DUCTILE_VALUE_SEQUENCE;
    return DUCTILE_OK;
}

/* If, Loop, Scan: output k has the kind of the subgraph output that makes it (If: both
 * branches agree; Loop: a loop-carried value has one kind in the layer's input, the body's
 * input and the body's output, except that an optional may become what it holds). Scan and
 * Loop scan outputs stay tensors. The kind of output q; checks them all. */
static ductile_status dt_ctrl_kind(const ductile_layer *L, int q, int *kind)
{
    *kind = DUCTILE_VALUE_TENSOR;
    if (!strcmp(L->op_type, "If")) {
        const ductile_network *t = dt_ctrl_graph(L, "then_branch"), *e = dt_ctrl_graph(L, "else_branch");
        for (int k = 0; t && e && k < L->n_out && k < t->n_outputs && k < e->n_outputs; k++) {
            int a = t->outputs[k]->kind, b = e->outputs[k]->kind;
            if (a != b)
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "output %d ('%s') is %s in then_branch but %s in else_branch", k,
                               L->out[k]->name, dt_value_kind_name(a), dt_value_kind_name(b));
            if (k == q) *kind = a;
        }
        return DUCTILE_OK;
    }
    const ductile_network *b = dt_ctrl_graph(L, "body");
    if (!strcmp(L->op_type, "SequenceMap")) {
        /* Input 0 a sequence, the others sequences or tensors; the body sees tensors and
         * makes tensors, one item of each output sequence per position. */
        DT_TRY(dt_want_kind(L, 0, DUCTILE_VALUE_SEQUENCE));
        int formal = dt_ctrl_formal_inputs(L);
        for (int k = 1; k < formal && k < L->n_in; k++)
            if (L->in[k] && L->in[k]->kind != DUCTILE_VALUE_TENSOR && L->in[k]->kind != DUCTILE_VALUE_SEQUENCE)
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input %d ('%s') is %s; SequenceMap takes a sequence or a tensor there",
                               k, L->in[k]->name, dt_value_kind_name(L->in[k]->kind));
        for (int i = 0; b && i < dt_graph_formal_inputs(b); i++)
            if (b->inputs[i]->kind != DUCTILE_VALUE_TENSOR)
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "body input %d ('%s') is %s; SequenceMap's body takes tensors", i,
                               b->inputs[i]->name, dt_value_kind_name(b->inputs[i]->kind));
        for (int i = 0; b && i < b->n_outputs; i++)
            if (b->outputs[i]->kind != DUCTILE_VALUE_TENSOR)
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "body output %d ('%s') is %s; SequenceMap's body makes tensors", i,
                               b->outputs[i]->name, dt_value_kind_name(b->outputs[i]->kind));
        *kind = DUCTILE_VALUE_SEQUENCE;
        return DUCTILE_OK;
    }
    for (int k = 0; k < L->n_in && k < 2; k++) DT_TRY(dt_want_kind(L, k, DUCTILE_VALUE_TENSOR));
    if (!b) return DUCTILE_OK;  /* ops/ctrl.c refuses it */
    if (!strcmp(L->op_type, "Scan")) {
        for (int k = 0; k < L->n_in; k++) DT_TRY(dt_want_kind(L, k, DUCTILE_VALUE_TENSOR));
        for (int i = 0; i < b->n_inputs; i++)
            if (b->inputs[i]->kind != DUCTILE_VALUE_TENSOR)
                return dt_fail(DUCTILE_ERR_UNSUPPORTED, "body input %d ('%s') is %s; Scan carries tensors only in ductile", i,
                               b->inputs[i]->name, dt_value_kind_name(b->inputs[i]->kind));
        for (int i = 0; i < b->n_outputs; i++)
            if (b->outputs[i]->kind != DUCTILE_VALUE_TENSOR)
                return dt_fail(DUCTILE_ERR_UNSUPPORTED, "body output %d ('%s') is %s; Scan carries tensors only in ductile", i,
                               b->outputs[i]->name, dt_value_kind_name(b->outputs[i]->kind));
        return DUCTILE_OK;
    }
    int n = dt_ctrl_formal_inputs(L) - 2;
    for (int j = 0; j < n && 2 + j < b->n_inputs && 1 + j < b->n_outputs && j < L->n_out; j++) {
        int in = dt_in_kind(L, 2 + j), bi = b->inputs[2 + j]->kind, bo = b->outputs[1 + j]->kind;
        bool tin = in == DUCTILE_VALUE_TENSOR, tbi = bi == DUCTILE_VALUE_TENSOR, tbo = bo == DUCTILE_VALUE_TENSOR;
        if (in >= 0 && (tin != tbi || tbi != tbo))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "loop-carried value %d is %s in input %d ('%s'), %s in body input '%s' and %s in body output '%s'",
                           j, dt_value_kind_name(in), 2 + j, L->in[2 + j]->name, dt_value_kind_name(bi), b->inputs[2 + j]->name,
                           dt_value_kind_name(bo), b->outputs[1 + j]->name);
        if (j == q) *kind = bo;
    }
    for (int j = n; j < b->n_outputs - 1 && j < L->n_out; j++)
        if (b->outputs[1 + j]->kind != DUCTILE_VALUE_TENSOR)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "body output %d ('%s') is %s; a scan output is a tensor", 1 + j,
                           b->outputs[1 + j]->name, dt_value_kind_name(b->outputs[1 + j]->kind));
    return DUCTILE_OK;
}

ductile_status dt_value_kinds(const ductile_layer *L, bool set)
{
    int kind = DUCTILE_VALUE_TENSOR;
    bool ctrl = (!L->domain || !L->domain[0]) && dt_ctrl_op(L->op_type);
    if (!ctrl) DT_TRY(dt_out_kind(L, &kind));
    for (int k = 0; k < L->n_out; k++) {
        ductile_tensor *T = L->out[k];
        int want = k == 0 ? kind : DUCTILE_VALUE_TENSOR;
        if (ctrl) DT_TRY(dt_ctrl_kind(L, k, &want));
        if (set) {
            T->kind = want;
            if (want != DUCTILE_VALUE_TENSOR) T->rank = 0;
        } else if (T->kind != want) {
            return dt_fail(DUCTILE_ERR_FORMAT, "output %d ('%s') is stored as %s but the node makes %s", k, T->name,
                           dt_value_kind_name(T->kind), dt_value_kind_name(want));
        }
    }
    return DUCTILE_OK;
}

void dt_seq_attrs_read(const ductile_layer *L, dt_seq_attrs *a)
{
    static const struct { const char *name; dt_seq_op op; } ops[] = {
        {"SequenceEmpty", DT_SEQ_EMPTY},     {"SequenceConstruct", DT_SEQ_CONSTRUCT},
        {"SequenceInsert", DT_SEQ_INSERT},   {"SequenceAt", DT_SEQ_AT},
        {"SequenceErase", DT_SEQ_ERASE},     {"SequenceLength", DT_SEQ_LENGTH},
        {"SplitToSequence", DT_SEQ_SPLIT},   {"ConcatFromSequence", DT_SEQ_CONCAT},
        {"Optional", DT_SEQ_OPTIONAL},       {"OptionalHasElement", DT_SEQ_HAS_ELEMENT},
        {"OptionalGetElement", DT_SEQ_GET_ELEMENT}};
    a->op = DT_SEQ_IDENTITY;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(L->op_type, ops[i].name)) a->op = ops[i].op;
    a->axis = dt_attr_int(L, "axis", 0);
    a->keepdims = dt_attr_int(L, "keepdims", 1) != 0;
    a->new_axis = dt_attr_int(L, "new_axis", 0) != 0;
    a->dtype = (int)dt_attr_int(L, "dtype", DUCTILE_FLOAT32);
}

static ductile_status dt_want_position(const dt_view *in, int i, const char *what);

ductile_status dt_seq_position(const dt_view *in, int i, int64_t n, bool insert, int64_t *out)
{
    DT_TRY(dt_want_position(in, i, "position"));
    int64_t p = dt_view_int(&in[i], 0);
    int64_t hi = insert ? n : n - 1;
    if (p < -n || p > hi)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "position %lld is out of range for a sequence of length %lld (expected %lld..%lld)",
                       (long long)p, (long long)n, (long long)-n, (long long)hi);
    *out = p < 0 ? p + n : p;
    return DUCTILE_OK;
}

static ductile_status dt_want_position(const dt_view *in, int i, const char *what)
{
    if (in[i].rank < 0) return DUCTILE_OK;  /* omitted: the op's default */
    if (in[i].dtype != DUCTILE_INT32 && in[i].dtype != DUCTILE_INT64)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input %d (%s) has dtype %s; expected int32 or int64", i, what,
                       ductile_dtype_name((ductile_dtype)in[i].dtype));
    /* A scalar by the spec; ONNX's own tests (and onnxruntime) also pass a one-element 1-D. */
    if (dt_view_count(&in[i]) != 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input %d (%s) has %lld elements; expected one", i, what,
                       (long long)dt_view_count(&in[i]));
    return DUCTILE_OK;
}

ductile_status dt_split_seq_of(const dt_seq_attrs *a, const dt_view *x, const dt_view *split, dt_split_seq *s)
{
    memset(s, 0, sizeof *s);
    int64_t axis = a->axis;
    if (x->rank < 1 || dt_norm_axis(axis, x->rank, &s->axis))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "axis %lld is out of range for input 0 of rank %d", (long long)axis,
                       x->rank);
    int64_t dim = x->dims[s->axis];
    if (!split || split->rank < 0) {
        s->keepdims = a->keepdims;
        s->squeeze = !s->keepdims;
        s->n = dim;
        s->equal = 1;
        return DUCTILE_OK;
    }
    if (split->dtype != DUCTILE_INT32 && split->dtype != DUCTILE_INT64)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 1 (split) has dtype %s; expected int32 or int64",
                       ductile_dtype_name((ductile_dtype)split->dtype));
    if (!split->data) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the output depends on the data of input 1 (split)");
    if (split->rank == 0) {
        int64_t k = dt_view_int(split, 0);
        if (k < 1) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 1 (split) is %lld; expected a size >= 1", (long long)k);
        s->equal = k;
        s->n = dim / k + (dim % k != 0);
        return DUCTILE_OK;
    }
    if (split->rank != 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 1 (split) has rank %d; expected a scalar or 1-D", split->rank);
    int64_t sum = 0;
    for (int64_t j = 0; j < split->dims[0]; j++) {
        int64_t v = dt_view_int(split, j);
        if (v < 0 || v > dim - sum)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 1 (split) entry %lld is %lld; the sizes must be >= 0 and sum to %lld (axis %d)",
                           (long long)j, (long long)v, (long long)dim, s->axis);
        sum += v;
    }
    if (sum != dim)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 1 (split) sums to %lld; expected %lld (input 0 dimension %d)",
                       (long long)sum, (long long)dim, s->axis);
    s->n = split->dims[0];
    s->sizes = split;
    return DUCTILE_OK;
}

int64_t dt_split_seq_size(const dt_split_seq *s, const dt_view *x, int64_t j)
{
    if (s->sizes) return dt_view_int(s->sizes, j);
    int64_t dim = x->dims[s->axis], at = j * s->equal;
    return dim - at < s->equal ? dim - at : s->equal;
}

ductile_status dt_concat_seq_dims(const dt_seq_attrs *at, const dt_view *items, int64_t n, dt_view *out, int *axis)
{
    bool new_axis = at->new_axis;
    const dt_view *a = &items[0];
    int r = a->rank + (new_axis ? 1 : 0);
    int64_t ax = at->axis;
    if (r < 1 || r > DT_MAX_DIMS || dt_norm_axis(ax, r, axis))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "axis %lld is out of range for items of rank %d%s", (long long)ax, a->rank,
                       new_axis ? " with new_axis=1" : "");
    for (int64_t j = 1; j < n; j++) {
        const dt_view *b = &items[j];
        bool same = b->rank == a->rank && b->dtype == a->dtype;
        for (int d = 0; same && d < a->rank; d++) same = b->dims[d] == a->dims[d] || (!new_axis && d == *axis);
        if (!same) {
            char sa[160], sb[160];
            dt_format_dims(sa, sizeof sa, a->dims, a->rank, NULL);
            dt_format_dims(sb, sizeof sb, b->dims, b->rank, NULL);
            return dt_fail(DUCTILE_ERR_SHAPE, "item %lld has shape %s of %s but item 0 has %s of %s; they may differ only in dimension %d",
                           (long long)j, sb, ductile_dtype_name((ductile_dtype)b->dtype), sa,
                           ductile_dtype_name((ductile_dtype)a->dtype), *axis);
        }
    }
    *out = *a;
    out->data = NULL;
    out->rank = r;
    if (new_axis) {
        for (int d = r - 1; d > *axis; d--) out->dims[d] = a->dims[d - 1];
        out->dims[*axis] = n;
        return DUCTILE_OK;
    }
    int64_t sum = 0;
    for (int64_t j = 0; j < n; j++)
        if (!dt_add_i64(sum, items[j].dims[*axis], &sum))
            return dt_fail(DUCTILE_ERR_SHAPE, "the items' dimension %d sums to more than int64 holds", *axis);
    out->dims[*axis] = sum;
    return DUCTILE_OK;
}

ductile_status dt_seq_construct_dtypes(const ductile_layer *L, const dt_view *in)
{
    for (int k = 1; k < L->n_in; k++)
        if (in[k].dtype != in[0].dtype)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input %d ('%s') has dtype %s but input 0 has %s; a sequence holds one dtype",
                           k, L->in[k]->name, ductile_dtype_name((ductile_dtype)in[k].dtype),
                           ductile_dtype_name((ductile_dtype)in[0].dtype));
    return DUCTILE_OK;
}

/* ---- check and infer ---- */

static ductile_status dt_seq_arity(const ductile_layer *L)
{
    const char *op = L->op_type;
    if (!strcmp(op, "SequenceEmpty")) return dt_check_arity(L, 0, 0, 1, 1, NULL);
    if (!strcmp(op, "SequenceConstruct")) return dt_check_arity(L, 1, 1 << 30, 1, 1, NULL);
    if (!strcmp(op, "SequenceInsert")) return dt_check_arity(L, 2, 3, 1, 1, DT_INPUT_NAMES("input_sequence", "tensor"));
    if (!strcmp(op, "SequenceAt")) return dt_check_arity(L, 2, 2, 1, 1, DT_INPUT_NAMES("input_sequence", "position"));
    if (!strcmp(op, "SequenceErase")) return dt_check_arity(L, 1, 2, 1, 1, DT_INPUT_NAMES("input_sequence"));
    if (!strcmp(op, "SequenceLength")) return dt_check_arity(L, 1, 1, 1, 1, DT_INPUT_NAMES("input_sequence"));
    if (!strcmp(op, "SplitToSequence")) return dt_check_arity(L, 1, 2, 1, 1, DT_INPUT_NAMES("input"));
    if (!strcmp(op, "ConcatFromSequence")) return dt_check_arity(L, 1, 1, 1, 1, DT_INPUT_NAMES("input_sequence"));
    if (!strcmp(op, "OptionalHasElement")) return dt_check_arity(L, 0, 1, 1, 1, NULL);
    if (!strcmp(op, "Optional") && (L->n_in == 0 || !L->in[0])) {
        /* No input: an empty optional of the kind and dtype `type` gives (a TYPE_PROTO,
         * read into INTS {kind, dtype} by onnx/attr.c; an engine stores the INTS). */
        DT_TRY(dt_check_arity(L, 0, 1, 1, 1, NULL));
        int64_t nt;
        const int64_t *type = dt_attr_ints(L, "type", &nt);
        if (!type) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'type' is required when the node has no input");
        if (nt != 2 || (type[0] != DUCTILE_VALUE_TENSOR && type[0] != DUCTILE_VALUE_SEQUENCE) || type[1] < 1 ||
            type[1] > 26 || !ductile_dtype_size((ductile_dtype)type[1]))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'type' is not a tensor or sequence type ductile supports");
        return DUCTILE_OK;
    }
    return dt_check_arity(L, 1, 1, 1, 1, DT_INPUT_NAMES("input"));   /* OptionalGetElement, Optional */
}

static ductile_status dt_seq_check(const ductile_layer *L)
{
    DT_TRY(dt_seq_arity(L));
    if (!strcmp(L->op_type, "ConcatFromSequence") && !dt_attr_find(L, "axis"))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'axis' is required");
    if (!strcmp(L->op_type, "SequenceEmpty")) {
        int64_t d = dt_attr_int(L, "dtype", DUCTILE_FLOAT32);
        if (d < 1 || d > 26 || !ductile_dtype_size((ductile_dtype)d))
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'dtype' is %lld, not a dtype ductile supports", (long long)d);
    }
    int kind;
    return dt_out_kind(L, &kind);
}

static ductile_status dt_seq_data_dependent(const ductile_layer *L)
{
    return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the output shape depends on the data of input 0 ('%s')",
                   L->n_in && L->in[0] ? L->in[0]->name : "");
}

/* Sequence and optional outputs: the element dtype and rank 0; tensors read out of a sequence
 * depend on its data. */
static ductile_status dt_seq_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    const char *op = L->op_type;
    out[0].rank = 0;
    if (!strcmp(op, "SequenceEmpty")) {
        out[0].dtype = (int)dt_attr_int(L, "dtype", DUCTILE_FLOAT32);
        return DUCTILE_OK;
    }
    if (!strcmp(op, "SequenceConstruct")) {
        DT_TRY(dt_seq_construct_dtypes(L, in));
        out[0].dtype = in[0].dtype;
        return DUCTILE_OK;
    }
    if (!strcmp(op, "SequenceInsert")) {
        if (in[1].dtype != in[0].dtype)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 1 ('%s') has dtype %s but the sequence holds %s", L->in[1]->name,
                           ductile_dtype_name((ductile_dtype)in[1].dtype), ductile_dtype_name((ductile_dtype)in[0].dtype));
        if (L->n_in > 2) DT_TRY(dt_want_position(in, 2, "position"));
        out[0].dtype = in[0].dtype;
        return DUCTILE_OK;
    }
    if (!strcmp(op, "SequenceErase")) {
        if (L->n_in > 1) DT_TRY(dt_want_position(in, 1, "position"));
        out[0].dtype = in[0].dtype;
        return DUCTILE_OK;
    }
    if (!strcmp(op, "SequenceLength") || !strcmp(op, "OptionalHasElement")) {
        out[0].dtype = op[0] == 'S' ? DUCTILE_INT64 : DUCTILE_BOOL;
        return DUCTILE_OK;
    }
    if (!strcmp(op, "SplitToSequence")) {
        if (L->n_in > 1 && L->in[1] && in[1].dtype != DUCTILE_INT32 && in[1].dtype != DUCTILE_INT64)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 1 (split) has dtype %s; expected int32 or int64",
                           ductile_dtype_name((ductile_dtype)in[1].dtype));
        out[0].dtype = in[0].dtype;
        return DUCTILE_OK;
    }
    if (!strcmp(op, "SequenceAt")) {
        DT_TRY(dt_want_position(in, 1, "position"));
        out[0].dtype = in[0].dtype;
        return dt_seq_data_dependent(L);
    }
    if (!strcmp(op, "Optional") && (L->n_in == 0 || !L->in[0])) {
        out[0].dtype = (int)dt_attr_ints(L, "type", &(int64_t){0})[1];   /* check: {kind, dtype} */
        return DUCTILE_OK;
    }
    /* ConcatFromSequence; Optional, OptionalGetElement: the same value, another kind. */
    out[0].dtype = in[0].dtype;
    if (L->out[0]->kind == DUCTILE_VALUE_TENSOR) return dt_seq_data_dependent(L);
    return DUCTILE_OK;
}

#define DT_SEQ_OP(name) {name, dt_seq_check, dt_seq_infer, 0}

const dt_opdef dt_ops_sequence[] = {
    DT_SEQ_OP("SequenceEmpty"),      DT_SEQ_OP("SequenceConstruct"),  DT_SEQ_OP("SequenceInsert"),
    DT_SEQ_OP("SequenceAt"),         DT_SEQ_OP("SequenceErase"),      DT_SEQ_OP("SequenceLength"),
    DT_SEQ_OP("SplitToSequence"),    DT_SEQ_OP("ConcatFromSequence"), DT_SEQ_OP("Optional"),
    DT_SEQ_OP("OptionalHasElement"), DT_SEQ_OP("OptionalGetElement"), {NULL, NULL, NULL, 0}};
