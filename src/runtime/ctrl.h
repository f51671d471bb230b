/* Running If, Loop and Scan: each subgraph of the layer gets a nested plan (made with the
 * engine's, once per engine), run eagerly, layer by layer, once per branch taken or per
 * iteration, with buffers of the run's own. Output shapes are known only after the run, so
 * engines with these layers run eagerly (dt_plan.eager) and the executor hands each output's
 * view to a callback that gives it a buffer. */
#ifndef DT_RUNTIME_CTRL_H
#define DT_RUNTIME_CTRL_H

#include "runtime/engine_impl.h"
#include "runtime/seqval.h"

typedef struct dt_ctrl dt_ctrl;

/* The nested plans of layer L's subgraphs (a control-flow op, or another op whose kernel runs
 * its GRAPH attributes through dt_exec.subgraph: dt_ctrl_kernel_run); refuses a capture that L does not list among its
 * inputs ("node '<name>' (<Op>, opset <N>): ..."). */
ductile_status dt_ctrl_make(const ductile_layer *L, dt_ctrl **out);
void dt_ctrl_free(dt_ctrl *c);

/* Gives output k, whose dtype, rank and dims are set in *v, a buffer: v->data. */
typedef ductile_status (*dt_ctrl_alloc_fn)(void *user, int k, dt_view *v);

/* Runs L (in: every input's view with data) and writes out[k] (dims and data, from alloc).
 * vals: per tensor of the enclosing graph, the value of a sequence or optional (NULL for
 * tensors); L's sequence and optional inputs are read there and its such outputs written
 * there (copies; out[k] then has the element dtype, rank 0, no data). Errors name the
 * subgraph and iteration; the caller prefixes the node. */
/* Per context: a subgraph run kept for each GRAPH attribute of each layer of plan p whose kernel
 * runs subgraphs (dt_plan_layer.graphs), with its buffers from one execute to the next
 * (dt_exec.subruns). *out is NULL when p has no such layer. */
typedef struct dt_subruns dt_subruns;
ductile_status dt_subruns_create(const dt_plan *p, dt_subruns **out);
void dt_subruns_free(dt_subruns *s);
/* The bytes of the buffers and scratch s holds (ductile_context_get_memory_size). */
uint64_t dt_subruns_bytes(const dt_subruns *s);

ductile_status dt_ctrl_run(const dt_ctrl *c, const ductile_layer *L, const dt_view *in, dt_seqval *const *vals,
                           dt_view *out, const dt_exec *ex, dt_ctrl_alloc_fn alloc, void *user);

#endif
