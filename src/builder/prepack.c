/* Build-time weight packing: the backend rearranges a layer's constant weights into the
 * layout its kernels read (for the CPU GEMM: MR-row panels over the whole K), once; the
 * engine stores the packed blob like any constant, so neither a built nor a loaded engine
 * ever packs weights while running. */
#include "builder/optimize.h"
#include "core/alloc.h"
#include "core/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void dt_release_free(void *p, size_t n) { dt_free(p); }

/* Stores the backend's blob pk as a new constant named after the input it replaces (plus
 * `suffix`) and makes it L's input; *was: the replaced tensor. */
static ductile_status dt_replace_input(ductile_network *net, const dt_backend *be, ductile_layer *L,
                                       const dt_prepacked *pk, const char *suffix, const ductile_tensor **was)
{
    /* On failure dt_network_keep has released the blob already. */
    DT_TRY(dt_network_keep(net, pk->data, pk->nbytes, dt_release_free));
    if (pk->input < 0 || pk->input >= L->n_in || !L->in[pk->input] || L->in[pk->input]->rank < 0)
        return dt_fail(DUCTILE_ERR_INTERNAL, "node '%s': the %s backend packed input %d, which the layer lacks",
                       L->name, be->name, pk->input);
    const ductile_tensor *w = L->in[pk->input];
    char name[512];
    snprintf(name, sizeof name, "%s%s", w->name, suffix);
    /* Two layers sharing weights under two packings would need two names; a number keeps
     * them apart. */
    for (int k = 2; dt_network_find(net, name); k++) snprintf(name, sizeof name, "%s%s%d", w->name, suffix, k);
    ductile_tensor *t = dt_network_add_tensor(net, name);
    if (!t) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory packing the weights of node '%s'", L->name);
    t->dtype = w->dtype;
    t->rank = 1;
    t->dims[0] = (int64_t)(pk->nbytes / ductile_dtype_size((ductile_dtype)w->dtype));
    t->data = pk->data;
    t->nbytes = pk->nbytes;
    L->in[pk->input] = t;
    *was = w;
    return DUCTILE_OK;
}

static ductile_status dt_prepack_layer(ductile_network *net, const dt_backend *be, ductile_layer *L)
{
    dt_prepacked pk = {0};
    DT_TRY(be->prepack(L, &pk));
    if (!pk.data) return DUCTILE_OK;
    const ductile_tensor *w;
    DT_TRY(dt_replace_input(net, be, L, &pk, ".packed", &w));
    int64_t *shape = dt_arena_alloc(&net->arena, sizeof *shape * (size_t)(w->rank ? w->rank : 1));
    if (!shape) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory packing the weights of node '%s'", L->name);
    memcpy(shape, w->dims, sizeof *shape * (size_t)w->rank);
    dt_attr add[2] = {
        {.name = "packed", .type = DT_ATTR_INT, .i = pk.layout},
        {.name = "w_shape", .type = DT_ATTR_INTS, .n = w->rank, .ints = shape},
    };
    return dt_layer_add_attrs(net, L, add, 2);
}

ductile_status dt_pass_prepack(ductile_network *net, const dt_backend *backend)
{
    if (!backend->prepack) return DUCTILE_OK;
    for (int l = 0; l < net->n_layers; l++) DT_TRY(dt_prepack_layer(net, backend, net->layers[l]));
    return DUCTILE_OK;
}

ductile_status dt_pass_prune(ductile_network *net, const dt_backend *backend, bool *changed)
{
    *changed = false;
    if (!backend->prune) return DUCTILE_OK;
    for (int l = 0; l < net->n_layers; l++) {
        dt_prepacked pk = {0};
        DT_TRY(backend->prune(net->layers[l], &pk));
        if (!pk.data) continue;
        const ductile_tensor *w;
        DT_TRY(dt_replace_input(net, backend, net->layers[l], &pk, ".kept", &w));
        *changed = true;
    }
    return DUCTILE_OK;
}
