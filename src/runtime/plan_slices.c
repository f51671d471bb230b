/* Concat and Split parts placed as slices of the whole (dt_plan.slice_of), so that where a
 * part is contiguous in the whole (every dim before the axis 1, as at batch 1 in channels-first
 * layouts) its producer writes it straight into the Concat's output, or a Split's consumers
 * read it straight from the Split's input, and the Concat or Split copies nothing (its kernel
 * skips a part already in place: dt_backend.joins_in_place).
 *
 * Why: yolo's C2f blocks are Split -> bottlenecks -> Concat of the halves and the bottlenecks'
 * outputs -> 1x1 conv, and its SPPF a Concat of a map and three pools of it: at batch 1 those
 * copies were 2.0 ms of 41.6 (--bf16) and 2.4 of 62.8 (float32) at 640x640, one thread.
 *
 * Here, once per engine, which parts may be slices (the relation is static); dt_memplan decides
 * per set of shapes whether each is contiguous and 64-byte aligned there (else it keeps its
 * own block and the kernel copies it) and dt_memplan_lifetimes makes the whole's block live
 * over every part's lifetime. A part is an ACTIVATION written by a layer, not a view of another
 * (alias_of) and a slice of at most one whole: the first Concat (in network order) that takes
 * it, else the Split that makes it. Where a Concat takes all the outputs of one Split in order,
 * the Split's input becomes the slice of the Concat and the outputs slices of it (the C2f
 * pattern: both copies go). */
#include "runtime/memplan.h"
#include "backend/backend.h"
#include "core/alloc.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>

static bool dt_slice_op(const ductile_layer *L, const char *op)
{
    return !strcmp(L->op_type, op) && !strcmp(L->domain, "");
}

/* Tensor t may become a slice: written at run time by a layer, its own bytes, no whole yet. */
static bool dt_slice_free(const ductile_network *net, const dt_plan *p, const ductile_tensor *t)
{
    if (!t) return false;
    int i = t->index;
    return p->kind[i] == DT_TENSOR_ACTIVATION && net->tensors[i]->producer && p->alias_of[i] < 0 &&
           p->slice_of[i] < 0 && !p->layers[net->tensors[i]->producer->index].value;
}

static void dt_slice_set(dt_plan *p, const ductile_tensor *part, const ductile_tensor *whole, int layer, int pos)
{
    p->slice_of[part->index] = whole->index;
    p->slice_layer[part->index] = layer;
    p->slice_pos[part->index] = pos;
}

/* The Split whose n outputs are L's inputs k .. k + n - 1 in order, else NULL. */
static const ductile_layer *dt_slice_split_run(const ductile_layer *L, int k)
{
    const ductile_layer *S = L->in[k] ? L->in[k]->producer : NULL;
    if (!S || !dt_slice_op(S, "Split") || S->n_out < 1 || S->out[0] != L->in[k] || k + S->n_out > L->n_in) return NULL;
    for (int i = 0; i < S->n_out; i++)
        if (!S->out[i] || L->in[k + i] != S->out[i]) return NULL;
    return S;
}

static void dt_slice_concat(const ductile_network *net, dt_plan *p, const ductile_layer *L)
{
    const ductile_tensor *whole = L->out[0];
    if (L->n_out != 1 || !whole || p->kind[whole->index] != DT_TENSOR_ACTIVATION || p->alias_of[whole->index] >= 0)
        return;
    for (int k = 0; k < L->n_in; k++) {
        const ductile_layer *S = dt_slice_split_run(L, k);
        if (S && S->n_in >= 1 && S->in[0] != whole && dt_slice_free(net, p, S->in[0]) && !p->layers[S->index].value) {
            dt_slice_set(p, S->in[0], whole, L->index, k);
            for (int i = 0; i < S->n_out; i++)
                if (dt_slice_free(net, p, S->out[i])) dt_slice_set(p, S->out[i], S->in[0], S->index, i);
            k += S->n_out - 1;
            continue;
        }
        if (L->in[k] != whole && dt_slice_free(net, p, L->in[k])) dt_slice_set(p, L->in[k], whole, L->index, k);
    }
}

static void dt_slice_split(const ductile_network *net, dt_plan *p, const ductile_layer *S)
{
    const ductile_tensor *whole = S->n_in >= 1 ? S->in[0] : NULL;
    if (!whole || p->kind[whole->index] != DT_TENSOR_ACTIVATION || !whole->producer || p->alias_of[whole->index] >= 0)
        return;
    for (int i = 0; i < S->n_out; i++)
        if (S->out[i] != whole && dt_slice_free(net, p, S->out[i])) dt_slice_set(p, S->out[i], whole, S->index, i);
}

ductile_status dt_plan_slices(const ductile_network *net, const dt_backend *b, dt_plan *p)
{
    size_t n = (size_t)net->n_tensors + 1;
    p->slice_of = dt_malloc(n * sizeof *p->slice_of);
    p->slice_layer = dt_malloc(n * sizeof *p->slice_layer);
    p->slice_pos = dt_malloc(n * sizeof *p->slice_pos);
    if (!p->slice_of || !p->slice_layer || !p->slice_pos)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory planning %d tensors", net->n_tensors);
    for (int t = 0; t < net->n_tensors; t++) p->slice_of[t] = p->slice_layer[t] = p->slice_pos[t] = -1;
    const char *env = getenv("DUCTILE_JOINS_IN_PLACE");
    if (p->eager || !b->joins_in_place || (env && !strcmp(env, "0"))) return DUCTILE_OK;
    for (int i = 0; i < net->n_layers; i++)
        if (!p->layers[i].value && dt_slice_op(net->layers[i], "Concat")) dt_slice_concat(net, p, net->layers[i]);
    for (int i = 0; i < net->n_layers; i++)
        if (!p->layers[i].value && dt_slice_op(net->layers[i], "Split")) dt_slice_split(net, p, net->layers[i]);
    return DUCTILE_OK;
}
