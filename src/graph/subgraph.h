/* Subgraphs of control-flow layers (If, Loop, Scan, SequenceMap) and of ops whose kernel runs
 * them (FlexAttention's score_mod and prob_mod): nested networks (dt_attr.g, see
 * graph/network.h) whose last n_captured inputs are tensors of the enclosing graph, which the
 * layer lists after its formal inputs. What the importer, the ops, shape inference and the
 * runtime (runtime/ctrl.h) share about that lives here. */
#ifndef DT_GRAPH_SUBGRAPH_H
#define DT_GRAPH_SUBGRAPH_H

#include "graph/network.h"

#include <stdbool.h>

/* If, Loop, Scan or SequenceMap in the default domain. */
bool dt_ctrl_op(const char *op_type);
/* Whether ductile runs GRAPH attribute `attr` of an op (domain "" is ai.onnx): every one of
 * the control-flow ops; score_mod and prob_mod of ai.onnx.preview's FlexAttention. */
bool dt_graph_attr_supported(const char *domain, const char *op_type, const char *attr);
/* Whether L has a GRAPH attribute. */
bool dt_layer_has_graphs(const ductile_layer *L);
/* Every tensor L's subgraphs read from the enclosing graph is among L's inputs (engines are
 * checked like models): DUCTILE_ERR_INVALID_ARGUMENT naming the attribute and the tensor. */
ductile_status dt_graph_check_captures(const ductile_layer *L);
/* The layer's formal (ONNX) inputs: those before the implicit ones, the outer-scope tensors
 * its subgraphs capture (one input per distinct captured name). */
int dt_ctrl_formal_inputs(const ductile_layer *L);
/* The GRAPH attribute `name`, or NULL. */
const ductile_network *dt_ctrl_graph(const ductile_layer *L, const char *name);
/* The number of formal inputs of subgraph g (its inputs before the captured ones). */
static inline int dt_graph_formal_inputs(const ductile_network *g) { return g->n_inputs - g->n_captured; }
/* The input of L that feeds captured input j of its subgraph g (same name), or -1. */
int dt_ctrl_capture_input(const ductile_layer *L, const ductile_network *g, int j);

#endif
