/* Subgraph helpers (subgraph.h). */
#include "graph/subgraph.h"
#include "core/status.h"

#include <string.h>

bool dt_ctrl_op(const char *op)
{
    return !strcmp(op, "If") || !strcmp(op, "Loop") || !strcmp(op, "Scan") || !strcmp(op, "SequenceMap");
}

bool dt_graph_attr_supported(const char *domain, const char *op_type, const char *attr)
{
    if (!domain || !domain[0]) return dt_ctrl_op(op_type);
    return !strcmp(domain, "ai.onnx.preview") && !strcmp(op_type, "FlexAttention") &&
           (!strcmp(attr, "score_mod") || !strcmp(attr, "prob_mod"));
}

bool dt_layer_has_graphs(const ductile_layer *L)
{
    for (int k = 0; k < L->n_attr; k++)
        if (L->attrs[k].type == DT_ATTR_GRAPH) return true;
    return false;
}

ductile_status dt_graph_check_captures(const ductile_layer *L)
{
    int formal = dt_ctrl_formal_inputs(L);
    if (formal < 0)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "the node has %d inputs, fewer than the %d tensors of the enclosing graph its subgraphs read",
                       L->n_in, L->n_in - formal);
    for (int k = 0; k < L->n_attr; k++) {
        const ductile_network *g = L->attrs[k].type == DT_ATTR_GRAPH ? L->attrs[k].g : NULL;
        for (int j = 0; g && j < g->n_captured; j++)
            if (dt_ctrl_capture_input(L, g, j) < 0)
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                               "%s reads '%s' from the enclosing graph, but the node does not list it among its inputs",
                               L->attrs[k].name, g->inputs[dt_graph_formal_inputs(g) + j]->name);
    }
    return DUCTILE_OK;
}

const ductile_network *dt_ctrl_graph(const ductile_layer *L, const char *name)
{
    const dt_attr *a = dt_attr_find(L, name);
    return a && a->type == DT_ATTR_GRAPH ? a->g : NULL;
}

int dt_ctrl_formal_inputs(const ductile_layer *L)
{
    int implicit = 0;
    for (int k = 0; k < L->n_attr; k++) {
        const ductile_network *g = L->attrs[k].type == DT_ATTR_GRAPH ? L->attrs[k].g : NULL;
        if (!g) continue;
        for (int i = dt_graph_formal_inputs(g); i < g->n_inputs; i++) {
            /* Counted once across the layer's graphs: the first graph that captures it. */
            bool seen = false;
            for (int j = 0; j < k && !seen; j++) {
                const ductile_network *h = L->attrs[j].type == DT_ATTR_GRAPH ? L->attrs[j].g : NULL;
                for (int m = h ? dt_graph_formal_inputs(h) : 0; h && m < h->n_inputs && !seen; m++)
                    seen = !strcmp(h->inputs[m]->name, g->inputs[i]->name);
            }
            for (int m = dt_graph_formal_inputs(g); m < i && !seen; m++)
                seen = !strcmp(g->inputs[m]->name, g->inputs[i]->name);
            implicit += !seen;
        }
    }
    return L->n_in - implicit;
}

int dt_ctrl_capture_input(const ductile_layer *L, const ductile_network *g, int j)
{
    const char *name = g->inputs[dt_graph_formal_inputs(g) + j]->name;
    int formal = dt_ctrl_formal_inputs(L);
    for (int k = formal < 0 ? 0 : formal; k < L->n_in; k++)
        if (L->in[k] && !strcmp(L->in[k]->name, name)) return k;
    return -1;
}
