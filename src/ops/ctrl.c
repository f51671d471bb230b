/* If, Loop, Scan, SequenceMap: the checks of their subgraphs' arity against the node (the runtime runs
 * them: runtime/ctrl.c). Output shapes follow from running a subgraph, so infer refuses and
 * the plan runs engines with these layers eagerly. */
#include "graph/subgraph.h"
#include "ops/op.h"
#include "core/status.h"

#include <string.h>

static ductile_status dt_need_graph(const ductile_layer *L, const char *name, const ductile_network **g)
{
    *g = dt_ctrl_graph(L, name);
    if (!*g) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute '%s' (a GRAPH) is required", name);
    return DUCTILE_OK;
}

static ductile_status dt_if_check(const ductile_layer *L)
{
    DT_TRY(dt_graph_check_captures(L));
    const ductile_network *t, *e;
    DT_TRY(dt_need_graph(L, "then_branch", &t));
    DT_TRY(dt_need_graph(L, "else_branch", &e));
    int formal = dt_ctrl_formal_inputs(L);
    if (formal != 1 || !L->in[0])
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "expected 1 input (cond), got %d", formal);
    if (dt_graph_formal_inputs(t) || dt_graph_formal_inputs(e))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%s declares %d inputs; an If branch takes none",
                       dt_graph_formal_inputs(t) ? "then_branch" : "else_branch",
                       dt_graph_formal_inputs(t) ? dt_graph_formal_inputs(t) : dt_graph_formal_inputs(e));
    if (t->n_outputs != L->n_out || e->n_outputs != L->n_out)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "then_branch has %d outputs and else_branch %d; both must have the node's %d",
                       t->n_outputs, e->n_outputs, L->n_out);
    return DUCTILE_OK;
}

static ductile_status dt_loop_check(const ductile_layer *L)
{
    DT_TRY(dt_graph_check_captures(L));
    const ductile_network *b;
    DT_TRY(dt_need_graph(L, "body", &b));
    int formal = dt_ctrl_formal_inputs(L);
    if (formal < 2)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "expected at least 2 inputs (M, cond), got %d", formal);
    int n = formal - 2;
    if (L->n_out < n)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%d loop-carried inputs but only %d outputs", n, L->n_out);
    int k = L->n_out - n;
    if (dt_graph_formal_inputs(b) != 2 + n)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "body has %d inputs, expected %d (iteration number, condition and %d loop-carried values)",
                       dt_graph_formal_inputs(b), 2 + n, n);
    if (b->n_outputs != 1 + n + k)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "body has %d outputs, expected %d (condition, %d loop-carried values and %d scan outputs)",
                       b->n_outputs, 1 + n + k, n, k);
    return DUCTILE_OK;
}

static ductile_status dt_scan_check(const ductile_layer *L)
{
    DT_TRY(dt_graph_check_captures(L));
    const ductile_network *b;
    DT_TRY(dt_need_graph(L, "body", &b));
    /* Before opset 9, input 0 is sequence_lens (optional) and every tensor has a batch dim. */
    bool v8 = L->opset > 0 && L->opset < 9;
    int formal = dt_ctrl_formal_inputs(L) - v8;
    int64_t m = dt_attr_int(L, "num_scan_inputs", 0);
    if (m < 1 || m > formal)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "num_scan_inputs is %lld, expected 1..%d (the node's inputs)",
                       (long long)m, formal);
    int n = formal - (int)m;
    if (L->n_out < n)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%d state inputs but only %d outputs", n, L->n_out);
    if (dt_graph_formal_inputs(b) != formal)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "body has %d inputs, expected %d (%d state values and %lld scan inputs)",
                       dt_graph_formal_inputs(b), formal, n, (long long)m);
    if (b->n_outputs != L->n_out)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "body has %d outputs, expected the node's %d", b->n_outputs, L->n_out);
    static const struct { const char *name; int which; } lists[] = {
        {"scan_input_axes", 0}, {"scan_input_directions", 0}, {"scan_output_axes", 1}, {"scan_output_directions", 1},
        {"directions", 0}};
    for (size_t i = v8 ? 4 : 0; i < (v8 ? 5 : 4); i++) {
        int64_t cnt;
        const int64_t *v = dt_attr_ints(L, lists[i].name, &cnt);
        int64_t want = lists[i].which ? L->n_out - n : m;
        if (v && cnt != want)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%s has %lld values, expected %lld (one per scan %s)",
                           lists[i].name, (long long)cnt, (long long)want, lists[i].which ? "output" : "input");
        for (int64_t j = 0; v && strstr(lists[i].name, "directions") && j < cnt; j++)
            if (v[j] != 0 && v[j] != 1)
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%s[%lld] is %lld, expected 0 (forward) or 1 (reverse)",
                               lists[i].name, (long long)j, (long long)v[j]);
    }
    return DUCTILE_OK;
}

/* SequenceMap: the body takes one tensor per input (an item of a sequence input, or a tensor
 * input whole) and makes one item per output sequence (value kinds: ops/sequence.c). */
static ductile_status dt_seqmap_check(const ductile_layer *L)
{
    DT_TRY(dt_graph_check_captures(L));
    const ductile_network *b;
    DT_TRY(dt_need_graph(L, "body", &b));
    int formal = dt_ctrl_formal_inputs(L);
    if (formal < 1 || !L->in[0])
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "expected at least 1 input (input_sequence), got %d", formal);
    if (dt_graph_formal_inputs(b) != formal)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "body has %d inputs, expected the node's %d", dt_graph_formal_inputs(b),
                       formal);
    if (L->n_out < 1 || b->n_outputs != L->n_out)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "body has %d outputs, expected the node's %d (at least 1)", b->n_outputs,
                       L->n_out);
    return DUCTILE_OK;
}

static ductile_status dt_ctrl_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    (void)in;
    (void)out;
    return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the output shapes of %s follow from running its subgraph", L->op_type);
}

const dt_opdef dt_ops_ctrl[] = {
    {"If", dt_if_check, dt_ctrl_infer, 0},
    {"Loop", dt_loop_check, dt_ctrl_infer, 0},
    {"Scan", dt_scan_check, dt_ctrl_infer, 0},
    {"SequenceMap", dt_seqmap_check, dt_ctrl_infer, 0},
    {NULL, NULL, NULL, 0},
};
