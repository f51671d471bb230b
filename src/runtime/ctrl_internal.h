/* What the files of the control-flow runtime share (runtime/ctrl.h is the door): the nested
 * plans of a layer (ctrl.c), one run of a subgraph (ctrl_subrun.c), values held across
 * iterations and scan outputs gathered step by step (ctrl_state.c), Scan (ctrl_scan.c). */
#ifndef DT_RUNTIME_CTRL_INTERNAL_H
#define DT_RUNTIME_CTRL_INTERNAL_H

#include "runtime/ctrl.h"

#include <stdbool.h>
#include <stdint.h>

/* DT_CTRL_KERNEL: an op whose kernel calls its subgraphs (ctrl_kernel.c). */
enum { DT_CTRL_IF, DT_CTRL_LOOP, DT_CTRL_SCAN, DT_CTRL_SEQMAP, DT_CTRL_KERNEL };

typedef struct dt_subgraph {
    const ductile_network *net;
    const char *attr;         /* then_branch, else_branch, body, score_mod, ... */
    int attr_index;           /* its attribute: L->attrs[attr_index] */
    dt_plan plan;
    int *capture;             /* per captured input j: the layer input that feeds it */
} dt_subgraph;

struct dt_ctrl {
    int kind;
    int n_formal;             /* the layer's inputs before the implicit ones */
    int n_graphs;
    dt_subgraph g[2];
};

ductile_status dt_ctrl_oom(const char *what);

/* ---- one run of a subgraph (ctrl_subrun.c) ---- */

typedef struct dt_subrun {
    const dt_subgraph *sg;
    dt_view *views;           /* per tensor */
    void **bufs;              /* per tensor: the run's buffer for a layer output */
    size_t *caps;
    void *scratch;
    size_t scratch_cap;
    dt_view *inputs;          /* the subgraph's inputs, filled by the caller per run */
    dt_seqval **seq_in;       /* per input of sequence or optional kind: its value, set by
                                 the caller per run (read only) */
    dt_seqval **vals;         /* per tensor: its sequence or optional value (inputs: seq_in;
                                 layer outputs: own), NULL for tensors */
    dt_seqval *own;           /* per tensor: the run's values of sequence layer outputs */
} dt_subrun;

/* in, vals: the layer's inputs and the enclosing values, for the captured ones (r->inputs,
 * r->seq_in); r is zeroed on failure. */
ductile_status dt_subrun_init(dt_subrun *r, const dt_subgraph *sg, const dt_view *in, dt_seqval *const *vals,
                              const ductile_layer *L);
/* Points r's captured inputs at in (and vals) again: a run kept across executes (ctrl_kernel.c). */
void dt_subrun_bind(dt_subrun *r, const dt_view *in, dt_seqval *const *vals, const ductile_layer *L);
/* The value of sequence or optional output k (NULL for a tensor output). */
dt_seqval *dt_subrun_seq_output(const dt_subrun *r, int k);
/* Output k of L gets the value src: a copy into vals[out k] (sequence or optional outputs),
 * else dt_ctrl_emit of v. */
ductile_status dt_ctrl_emit_any(const ductile_layer *L, int k, const dt_view *v, const dt_seqval *src,
                                dt_seqval *const *vals, dt_view *out, dt_ctrl_alloc_fn alloc, void *user);
void dt_subrun_free(dt_subrun *r);
/* Runs the subgraph on r->inputs; its outputs are then dt_subrun_output(r, k). */
ductile_status dt_subrun_exec(dt_subrun *r, const dt_exec *outer);
const dt_view *dt_subrun_output(const dt_subrun *r, int k);

/* ---- values across iterations (ctrl_state.c) ---- */

/* A one-element value (bool, integers, float32) as a condition; `what` names it. */
ductile_status dt_ctrl_bool(const dt_view *v, const char *what, bool *out);
/* Gives out[k] v's dtype and dims, a buffer from alloc, and v's bytes. */
ductile_status dt_ctrl_emit(const dt_view *v, int k, dt_view *out, dt_ctrl_alloc_fn alloc, void *user);
/* Element i of INTS attribute name, 0 when absent. */
int64_t dt_ctrl_attr_at(const ductile_layer *L, const char *name, int i);

/* A value held across iterations in a buffer of the loop's own. */
typedef struct dt_held {
    dt_view v;
    size_t cap;
} dt_held;

/* Copies v into h's own buffer (grown as needed). */
ductile_status dt_held_set(dt_held *h, const dt_view *v, const char *what);

/* Per-iteration values of a scan output, one after the other. */
typedef struct dt_stack {
    unsigned char *data;
    size_t cap, step;
    dt_view first;            /* dtype, rank, dims of one step */
    int64_t n;
} dt_stack;

ductile_status dt_steps_push(dt_stack *st, const dt_view *v, int k, const char *name, int64_t it);
/* Lays the steps out along axis (of the output, rank + 1), last step first when reverse, into
 * out[kout]; decl: the body's output tensor, for the shape of a scan output without steps. */
ductile_status dt_steps_emit(dt_stack *st, const ductile_tensor *decl, int64_t axis, const char *axis_attr, int kout,
                             int k, bool reverse, dt_view *out, dt_ctrl_alloc_fn alloc, void *user);

typedef struct dt_loopstate {
    int n, k;                 /* loop-carried values, scan outputs */
    dt_held *state, *next;
    dt_seqval *sstate, *snext;  /* the loop-carried sequences and optionals (state[j] unused) */
    dt_stack *stacks;
} dt_loopstate;

/* init: the tensors' first values; sinit[j]: the first value of a sequence or optional j
 * (body input first_in + j has that kind). */
ductile_status dt_loopstate_init(dt_loopstate *ls, int n, int k, const dt_view *init, dt_seqval *const *sinit,
                                 const ductile_network *body, int first_in);
void dt_loopstate_free(dt_loopstate *ls);
/* After an iteration: body outputs [first, first + n) are the next state, the k after them
 * scan outputs. */
ductile_status dt_loopstate_step(dt_loopstate *ls, const dt_subrun *r, int first, int64_t it);

/* ---- Scan (ctrl_scan.c) ---- */

ductile_status dt_ctrl_scan(const dt_ctrl *c, const ductile_layer *L, const dt_view *in, dt_seqval *const *vals, dt_view *out,
                            const dt_exec *ex, dt_ctrl_alloc_fn alloc, void *user);

#endif
