/* ductile_network_set_input_dims: TensorRT's ITensor::setDimensions on a network input.
 *
 * A dim the model fixes stays fixed at build time (a profile that ranges it is refused), so
 * making it dynamic is a decision the caller writes down here. The model's value is kept
 * (ductile_tensor.declared) for the build's tie check, which moves the dim away from it to
 * find constants in the model that still hold it (builder/dim_ties.c). */
#include "graph/network.h"
#include "core/status.h"
#include "graph/symbolic.h"

#include <stdio.h>
#include <string.h>

static bool dt_symbol_taken(const ductile_network *n, const char *name)
{
    for (int i = 0; i < n->n_inputs; i++)
        for (int d = 0; d < n->inputs[i]->rank; d++)
            if (n->inputs[i]->dim_sym[d] && !strcmp(n->inputs[i]->dim_sym[d], name)) return true;
    return false;
}

/* "<input>_dim<i>", with characters that dt_sd_parse would not read as an identifier
 * replaced by '_', and a suffix when an input already uses that symbol. */
static const char *dt_new_symbol(ductile_network *n, const ductile_tensor *t, int i)
{
    char base[160], name[200];
    size_t k = 0;
    if (!((t->name[0] >= 'A' && t->name[0] <= 'Z') || (t->name[0] >= 'a' && t->name[0] <= 'z') || t->name[0] == '_'))
        base[k++] = '_';
    for (const char *p = t->name; *p && k < 120; p++) {
        char ch = *p;
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
        base[k++] = ok ? ch : '_';
    }
    base[k] = 0;
    snprintf(name, sizeof name, "%s_dim%d", base, i);
    for (int suffix = 2; dt_symbol_taken(n, name); suffix++) snprintf(name, sizeof name, "%s_dim%d_%d", base, i, suffix);
    return dt_arena_strdup(&n->arena, name);
}

ductile_status ductile_network_set_input_dims(ductile_network *n, ductile_tensor *t, const ductile_dims *dims)
{
    if (!n || !t || !dims) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_input_dims: network, tensor or dims is NULL");
    bool owned = t->index >= 0 && t->index < n->n_tensors && n->tensors[t->index] == t;
    if (!owned) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_input_dims: tensor '%s' does not belong to this network", t->name);
    if (!t->is_input) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_input_dims: tensor '%s' is not a network input", t->name);
    if (dims->nb_dims < 0 || dims->nb_dims > DT_MAX_DIMS || (t->rank >= 0 && dims->nb_dims != t->rank))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_input_dims: input '%s' has rank %d but %d dims were given",
                       t->name, t->rank, dims->nb_dims);
    for (int i = 0; i < dims->nb_dims; i++)
        if (dims->d[i] < -1)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_input_dims: input '%s' dimension %d is %lld (expected -1 for dynamic, or >= 0)",
                           t->name, i, (long long)dims->d[i]);
    /* Names first, so that running out of memory leaves the tensor as it was. */
    const char *sym[DT_MAX_DIMS] = {0};
    for (int i = 0; i < dims->nb_dims; i++) {
        bool was_fixed = t->rank >= 0 && t->dims[i] >= 0;
        if (dims->d[i] >= 0 || !was_fixed) continue;
        if (!(sym[i] = dt_new_symbol(n, t, i)))
            return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory naming dimension %d of '%s'", i, t->name);
    }
    bool unknown_rank = t->rank < 0;
    t->rank = dims->nb_dims;
    for (int i = 0; i < dims->nb_dims; i++) {
        if (!t->overridden[i]) {   /* the first override keeps what the model declared */
            t->overridden[i] = true;
            t->declared[i] = unknown_rank ? -1 : t->dims[i];
        }
        if (dims->d[i] < 0) {
            if (sym[i]) t->dim_sym[i] = sym[i];   /* a dim already dynamic keeps its symbol */
            t->dims[i] = -1;
        } else {
            t->dims[i] = dims->d[i];
            t->dim_sym[i] = NULL;
        }
    }
    /* What the file declared for the layers' outputs was worked out for the old input shape:
     * drop it, so that the symbolic pass does not leave a stale size where it infers nothing. */
    for (int k = 0; k < n->n_tensors; k++) {
        ductile_tensor *x = n->tensors[k];
        if (x->is_input || !x->producer) continue;
        for (int i = 0; i < x->rank && i < DT_MAX_DIMS; i++) {
            x->dims[i] = -1;
            x->dim_sym[i] = NULL;
        }
    }
    return dt_symbolic_infer(n);
}
