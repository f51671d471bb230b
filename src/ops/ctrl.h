/* Control flow: If, Loop, Scan. Their subgraphs are nested networks (dt_attr.g, see
 * graph/network.h); the runtime runs them (runtime/ctrl.h). What the ops and the runtime share
 * about the layer's inputs lives here. */
#ifndef DT_OPS_CTRL_H
#define DT_OPS_CTRL_H

#include "graph/network.h"

#include <stdbool.h>

/* If, Loop or Scan in the default domain. */
bool dt_ctrl_op(const char *op_type);
/* The layer's formal (ONNX) inputs: those before the implicit ones, the outer-scope tensors
 * its subgraphs capture (one input per distinct captured name). */
int dt_ctrl_formal_inputs(const ductile_layer *L);
/* The GRAPH attribute `name`, or NULL. */
const ductile_network *dt_ctrl_graph(const ductile_layer *L, const char *name);
/* The number of formal inputs of subgraph g (its inputs before the captured ones). */
static inline int dt_graph_formal_inputs(const ductile_network *g) { return g->n_inputs - g->n_captured; }

#endif
