/* Sequences and optionals: the value kinds beside tensors (ductile_value_kind), and the rules
 * of the ops that make and read them (SequenceConstruct/Insert/At/Erase/Length/Empty,
 * SplitToSequence, ConcatFromSequence, Optional, OptionalHasElement, OptionalGetElement, and
 * Identity of a sequence or optional). The runtime moves the items (runtime/seqval.h); these
 * are the checks and the shape arithmetic, so build-time checks and the run agree. */
#ifndef DT_OPS_SEQUENCE_H
#define DT_OPS_SEQUENCE_H

#include "ops/op.h"

/* "a tensor", "a sequence", "an optional tensor", "an optional sequence". */
const char *dt_value_kind_name(int kind);

/* The kinds of L's outputs follow from its inputs' kinds. set: gives them to the outputs
 * (the importer; rank 0 for a sequence or optional); else checks the kinds stored (an engine:
 * DUCTILE_ERR_FORMAT naming the output). An input of a kind the op does not take is
 * DUCTILE_ERR_INVALID_ARGUMENT: "input 0 ('x') is a tensor; SequenceAt takes a sequence
 * there" (the caller prefixes the node). */
ductile_status dt_value_kinds(const ductile_layer *L, bool set);

/* Whether layer L moves sequences or optionals (it has such an input or output, or it is a
 * sequence op): the runtime runs it (runtime/seqval.c), not a backend kernel. */
bool dt_layer_is_sequence(const ductile_layer *L);

/* What a sequence layer does, read once from its op type and attributes (the runtime keeps
 * it as the layer's params; runs never look attributes up). */
typedef enum dt_seq_op {
    DT_SEQ_EMPTY, DT_SEQ_CONSTRUCT, DT_SEQ_INSERT, DT_SEQ_AT, DT_SEQ_ERASE, DT_SEQ_LENGTH, DT_SEQ_SPLIT,
    DT_SEQ_CONCAT, DT_SEQ_OPTIONAL, DT_SEQ_HAS_ELEMENT, DT_SEQ_GET_ELEMENT, DT_SEQ_IDENTITY
} dt_seq_op;
typedef struct dt_seq_attrs {
    dt_seq_op op;
    int64_t axis;           /* SplitToSequence (default 0), ConcatFromSequence (required) */
    bool keepdims;          /* SplitToSequence, default 1 */
    bool new_axis;          /* ConcatFromSequence, default 0 */
    int dtype;              /* SequenceEmpty, default float32 */
} dt_seq_attrs;
/* L is a sequence layer (dt_layer_is_sequence) that its op's check accepted. */
void dt_seq_attrs_read(const ductile_layer *L, dt_seq_attrs *a);

/* The position in[i] of SequenceAt/Insert/Erase (a scalar int32/int64, given) normalized
 * against a sequence of n items: [-n, n-1] (insert: [-n, n]). DUCTILE_ERR_INVALID_ARGUMENT
 * for another dtype or rank, and naming the position and the length when out of range. */
ductile_status dt_seq_position(const dt_view *in, int i, int64_t n, bool insert, int64_t *out);

/* SequenceConstruct: every input has input 0's dtype (DUCTILE_ERR_INVALID_ARGUMENT naming the
 * first that differs). */
ductile_status dt_seq_construct_dtypes(const ductile_layer *L, const dt_view *in);

/* SplitToSequence: the number of items and the size along the axis of item j
 * (dt_split_seq_size). x: the input's view; split: input 1 or NULL. */
typedef struct dt_split_seq {
    int axis;
    bool keepdims;      /* only without a split input and with keepdims=1 does an item keep it */
    bool squeeze;       /* the items drop the axis (no split input and keepdims=0) */
    int64_t n;          /* items */
    int64_t equal;      /* size of every item but maybe the last (split scalar, or 1) */
    const dt_view *sizes;   /* split as a 1-D tensor: one size per item; else NULL */
} dt_split_seq;
ductile_status dt_split_seq_of(const dt_seq_attrs *a, const dt_view *x, const dt_view *split, dt_split_seq *s);
int64_t dt_split_seq_size(const dt_split_seq *s, const dt_view *x, int64_t j);

/* ConcatFromSequence: the output dims from the n items (n >= 1): items agree on every dim but
 * the axis (new_axis: on every dim). DUCTILE_ERR_SHAPE naming the item and dim that differ. */
ductile_status dt_concat_seq_dims(const dt_seq_attrs *a, const dt_view *items, int64_t n, dt_view *out,
                                  int *axis);

#endif
