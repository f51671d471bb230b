/* Common subexpressions (passes.h): layers that compute the same thing twice become one.
 * Exporters repeat work per block: BERT's exports compute the additive attention mask
 * Where(mask, 0, -inf) once per layer from the same inputs and constants of equal value, four
 * layers where one does. A later layer is the same as an earlier one when it has the same op
 * (type, domain, opset), the same attributes (by value) and the same inputs: the same tensor,
 * or constants of equal dtype, dims and bytes. Its readers then read the earlier one's
 * outputs and it leaves the network. Layers are visited in execution order with their inputs
 * already rewritten, so a repeated chain merges whole, one layer after the other.
 *
 * Never merged: layers whose result is not a function of their inputs (the random ops,
 * Dropout unless training_mode is absent or a constant false), layers with subgraphs (their
 * bodies may hold either), ops of other domains (their side effects are unknown here), layers
 * already folded to constants, and a layer with an output that is a network output or that a
 * layer with a subgraph reads (the body captures outer tensors by name). */
#include "builder/passes.h"
#include "core/alloc.h"
#include "core/status.h"
#include "ops/random.h"

#include <stdint.h>
#include <string.h>

static bool dt_cse_is_const(const ductile_tensor *t) { return t->data && !t->producer && !t->is_input; }

/* Constants of equal value (a network input with a default is the caller's: never). */
static bool dt_cse_same_tensor(const ductile_tensor *a, const ductile_tensor *b)
{
    if (a == b) return true;
    if (!a || !b || !dt_cse_is_const(a) || !dt_cse_is_const(b)) return false;
    if (a->dtype != b->dtype || a->rank != b->rank || a->kind != b->kind || a->nbytes != b->nbytes) return false;
    for (int d = 0; d < a->rank && d < DT_MAX_DIMS; d++)
        if (a->dims[d] != b->dims[d]) return false;
    return !memcmp(a->data, b->data, a->nbytes);
}

static bool dt_cse_same_attr(const dt_attr *a, const dt_attr *b)
{
    if (strcmp(a->name, b->name) || a->type != b->type) return false;
    switch (a->type) {
    case DT_ATTR_FLOAT: return !memcmp(&a->f, &b->f, sizeof a->f);
    case DT_ATTR_INT: return a->i == b->i;
    case DT_ATTR_STRING: return a->s_len == b->s_len && (!a->s_len || !memcmp(a->s, b->s, a->s_len));
    case DT_ATTR_TENSOR: return a->t && b->t && dt_cse_same_tensor(a->t, b->t);
    case DT_ATTR_FLOATS: return a->n == b->n && (!a->n || !memcmp(a->floats, b->floats, (size_t)a->n * sizeof *a->floats));
    case DT_ATTR_INTS: return a->n == b->n && (!a->n || !memcmp(a->ints, b->ints, (size_t)a->n * sizeof *a->ints));
    case DT_ATTR_STRINGS:
        if (a->n != b->n) return false;
        for (int64_t i = 0; i < a->n; i++)
            if (strcmp(a->strings[i], b->strings[i])) return false;
        return true;
    default: return false;   /* graphs: never merged */
    }
}

static bool dt_cse_same_layer(const ductile_layer *a, const ductile_layer *b)
{
    if (strcmp(a->op_type, b->op_type) || strcmp(a->domain, b->domain) || a->opset != b->opset ||
        a->n_in != b->n_in || a->n_out != b->n_out || a->n_attr != b->n_attr)
        return false;
    for (int k = 0; k < a->n_in; k++)
        if ((a->in[k] == NULL) != (b->in[k] == NULL) || (a->in[k] && !dt_cse_same_tensor(a->in[k], b->in[k])))
            return false;
    for (int k = 0; k < a->n_out; k++)
        if ((a->out[k] == NULL) != (b->out[k] == NULL)) return false;
    for (int i = 0; i < a->n_attr; i++) {
        const dt_attr *x = &b->attrs[i];
        if (strcmp(a->attrs[i].name, x->name)) {   /* another order: by name */
            x = NULL;
            for (int j = 0; j < b->n_attr && !x; j++)
                if (!strcmp(b->attrs[j].name, a->attrs[i].name)) x = &b->attrs[j];
            if (!x) return false;
        }
        if (!dt_cse_same_attr(&a->attrs[i], x)) return false;
    }
    return true;
}

static bool dt_cse_has_graph(const ductile_layer *L)
{
    for (int i = 0; i < L->n_attr; i++)
        if (L->attrs[i].type == DT_ATTR_GRAPH) return true;
    return false;
}

/* The layer's outputs are a function of its inputs and attributes alone. */
static bool dt_cse_pure(const ductile_layer *L)
{
    /* The ones ductile runs (ops/random.h) and the rest of ONNX's. */
    static const char *const random[] = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                                         "Bernoulli", "Multinomial"};
    if (strcmp(L->domain, "") && strcmp(L->domain, "ai.onnx")) return false;
    if (dt_op_draws_random(L->op_type)) return false;
    for (size_t i = 0; i < sizeof random / sizeof random[0]; i++)
        if (!strcmp(L->op_type, random[i])) return false;
    if (!strcmp(L->op_type, "Dropout") && L->n_in >= 3 && L->in[2]) {
        const ductile_tensor *t = L->in[2];   /* training_mode: random unless a constant false */
        if (!dt_cse_is_const(t) || t->nbytes < 1 || ((const uint8_t *)t->data)[0]) return false;
    }
    return !dt_cse_has_graph(L);
}

static uint64_t dt_cse_mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 1099511628211ull;   /* FNV-1a */
    return h;
}

/* Equal layers hash equal: op, input count, and per input its identity or, for a constant,
 * its dtype, size and first bytes. */
static uint64_t dt_cse_hash(const ductile_layer *L)
{
    uint64_t h = dt_cse_mix(14695981039346656037ull, L->op_type, strlen(L->op_type));
    h = dt_cse_mix(h, &L->n_in, sizeof L->n_in);
    for (int k = 0; k < L->n_in; k++) {
        const ductile_tensor *t = L->in[k];
        if (!t) {
            h = dt_cse_mix(h, "-", 1);
        } else if (dt_cse_is_const(t)) {
            h = dt_cse_mix(h, &t->dtype, sizeof t->dtype);
            h = dt_cse_mix(h, &t->nbytes, sizeof t->nbytes);
            h = dt_cse_mix(h, t->data, t->nbytes < 64 ? t->nbytes : 64);
        } else {
            h = dt_cse_mix(h, &t, sizeof t);
        }
    }
    return h;
}

ductile_status dt_pass_cse(ductile_network *net, int *merged)
{
    if (merged) *merged = 0;
    size_t nt = (size_t)net->n_tensors + 1, cap = 16;
    while (cap < 2 * (size_t)net->n_layers) cap *= 2;
    ductile_tensor **repl = dt_calloc(nt, sizeof *repl);
    bool *pinned = dt_calloc(nt, sizeof *pinned);   /* a network output, or read by a subgraph layer */
    bool *dead = dt_calloc((size_t)net->n_layers + 1, sizeof *dead);
    int *table = dt_malloc(cap * sizeof *table);
    uint64_t *hashes = dt_calloc((size_t)net->n_layers + 1, sizeof *hashes);
    ductile_status s = DUCTILE_OK;
    if (!repl || !pinned || !dead || !table || !hashes) {
        s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory in the common-subexpression pass");
        goto done;
    }
    for (size_t i = 0; i < cap; i++) table[i] = -1;
    for (int i = 0; i < net->n_outputs; i++) pinned[net->outputs[i]->index] = true;
    for (int l = 0; l < net->n_layers; l++) {
        const ductile_layer *L = net->layers[l];
        if (!dt_cse_has_graph(L)) continue;
        for (int k = 0; k < L->n_in; k++)
            if (L->in[k] && L->in[k]->index >= 0) pinned[L->in[k]->index] = true;
    }
    int n_merged = 0;
    for (int l = 0; l < net->n_layers; l++) {
        ductile_layer *L = net->layers[l];
        for (int k = 0; k < L->n_in; k++)
            if (L->in[k] && L->in[k]->index >= 0 && repl[L->in[k]->index]) L->in[k] = repl[L->in[k]->index];
        /* ok: L can stand for later layers; removable: later layers' readers can do without it. */
        bool ok = L->n_out > 0 && dt_cse_pure(L), removable = true;
        for (int k = 0; k < L->n_out && ok; k++) {
            ok = L->out[k] && L->out[k]->index >= 0 && !L->out[k]->data;
            removable = removable && ok && !pinned[L->out[k]->index];
        }
        for (int k = 0; k < L->n_in && ok; k++) ok = !L->in[k] || L->in[k]->index >= 0;
        if (!ok) continue;
        uint64_t h = dt_cse_hash(L);
        size_t slot = (size_t)h & (cap - 1);
        int same = -1;
        for (; table[slot] >= 0; slot = (slot + 1) & (cap - 1)) {
            int e = table[slot];
            if (hashes[e] == h && dt_cse_same_layer(net->layers[e], L)) {
                same = e;
                break;
            }
        }
        if (same < 0) {
            table[slot] = l;
            hashes[l] = h;
            continue;
        }
        if (!removable) continue;
        const ductile_layer *E = net->layers[same];
        for (int k = 0; k < L->n_out; k++) repl[L->out[k]->index] = E->out[k];
        dead[l] = true;
        n_merged++;
    }
    if (n_merged) {
        int n = 0;
        for (int l = 0; l < net->n_layers; l++) {
            if (dead[l]) continue;
            net->layers[n] = net->layers[l];
            net->layers[n]->index = n;
            n++;
        }
        net->n_layers = n;
    }
    if (merged) *merged = n_merged;
done:
    dt_free(repl);
    dt_free(pinned);
    dt_free(dead);
    dt_free(table);
    dt_free(hashes);
    return s;
}
