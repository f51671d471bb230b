/* Sequences and optionals at run time: the values a context holds for tensors of those kinds
 * (ductile_value_kind), and the layers that make and read them (ops/sequence.h has their
 * rules).
 *
 * Memory: each value belongs to the context and keeps its items' buffers from one execute to
 * the next (an item slot reuses its buffer when the new item fits), so a steady run reuses
 * them; a longer sequence or larger item allocates, through the library's allocator. These
 * engines are always eager (runtime/plan.c), and the eager path allocates as its shapes
 * require; the static path's no-allocation rule (tests/c/test_execute_no_alloc.c) is about
 * engines without them. */
#ifndef DT_SEQVAL_H
#define DT_SEQVAL_H

#include "ops/op.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct dt_seqval {
    int kind;               /* ductile_value_kind of the tensor (never TENSOR) */
    int elem;               /* element dtype */
    bool set;               /* inputs: given by the caller; others: computed by an execute */
    bool present;           /* optionals: holds a value (sequences: always) */
    int64_t n, cap;         /* items: n in use, cap slots (each slot owns its buffer) */
    dt_view *items;         /* item j: dtype, rank, dims; data (caps[j] bytes) */
    size_t *caps;
    ductile_item *pub;      /* the items as ductile_context_get_sequence hands them out */
} dt_seqval;

void dt_seqval_free(dt_seqval *v);
/* Copies items[0..n) (each of dtype elem, data NULL only when empty) into v: a sequence, or
 * an optional holding them (n == -1: an empty optional). `what` names the value in messages
 * ("input 'x'"): DUCTILE_ERR_INVALID_ARGUMENT names the item whose dtype or rank is wrong. */
ductile_status dt_seqval_assign(dt_seqval *v, const ductile_item *items, int64_t n, const char *what);
/* dst becomes a copy of src's items (elem, present; set), plus one free slot (callers
 * insert into it); dst keeps its kind and its slots' buffers. */
ductile_status dt_seqval_copy(dt_seqval *dst, const dt_seqval *src);
/* Appends a copy of item (dtype, rank, dims, data) to v's items (a slot's buffer reused). */
ductile_status dt_seqval_push(dt_seqval *v, const dt_view *item);
/* The public items of v (v->pub refreshed); *n = -1 for an empty optional. */
void dt_seqval_public(dt_seqval *v, const ductile_item **items, int64_t *n);

/* Gives tensor output t of a sequence layer its buffer for view *v (dtype, rank, dims set):
 * the context sizes its own buffer, sets v->data and records the view. */
typedef ductile_status (*dt_seq_out_fn)(void *ctx, int t, dt_view *v);

/* The params of sequence layer L (dt_plan_layer.seq): its op and attributes, read once at
 * load (ops/sequence.h's dt_seq_attrs); dt_malloc'd, the plan frees them. */
ductile_status dt_seq_prepare(const ductile_layer *L, void **params);
/* Runs sequence layer L with its params: in holds its inputs' views (tensor inputs with
 * data); vals[t] is the value of every sequence or optional tensor t (vals NULL: none). Errors
 * name what is at fault; the caller prefixes the node. */
ductile_status dt_seq_run(const ductile_layer *L, const void *params, const dt_view *in, dt_seqval *const *vals,
                          dt_seq_out_fn out, void *ctx);

#endif
