/* The dtype of every tensor a layer computes, settled at build time.
 *
 * An ONNX file declares dtypes for its outputs (and, as hints, for intermediates); the
 * layers compute their own. The engine reports the computed one, so what a caller allocates
 * from ductile_engine_tensor_dtype is what the kernels write. A declared dtype that differs
 * is refused, naming the node, the tensor and both dtypes, rather than returned as the
 * computed one: the declaration is the model's contract with its callers (they allocate and
 * read the declared type, and ONNX Runtime refuses such a model at load), so silently
 * handing back another type would make the same file mean two things. An output that
 * declares nothing gets the computed dtype.
 *
 * The dtypes come from the ops' infer, through the shape pass at profile 0's opt shapes, on
 * an engine written with every computed tensor's dtype cleared (so no declaration is read
 * as an input to inference). The shape pass stops at the first layer whose shapes depend on
 * data computed at run time (eager engines, shape inputs); such engines are then run once
 * on zeros at profile 0's min shapes, since a dtype never depends on values or sizes. When
 * even that fails (zeros that make no valid shape), tensors it did not reach keep their
 * declared dtype, an output that declares none is refused, and the run-time shape pass and
 * eager execute check every declaration against infer in turn. */
#include "builder/engine_write.h"
#include "core/alloc.h"
#include "builder/passes.h"
#include "core/status.h"
#include "runtime/engine_impl.h"

#include <stdlib.h>
#include <string.h>

/* target NULL: the CPU backend. */
static ductile_status dt_write_load(const ductile_network *w, const ductile_profile *profiles,
                                    int n_profiles, const dt_engine_target *target, ductile_engine **e)
{
    void *bytes = NULL;
    size_t size = 0;
    DT_TRY(target ? dt_engine_write_target(w, profiles, n_profiles, target, &bytes, &size)
                  : dt_engine_write(w, profiles, n_profiles, &bytes, &size));
    return dt_engine_from_bytes(bytes, size, e); /* takes bytes */
}

/* Computed dtypes (0 where infer did not get that far) from the shape pass at profile 0's
 * opt shapes. Its failure is not this pass's to report: the profile checks run every corner
 * and name the dim at fault. */
static ductile_status dt_computed_dtypes(const ductile_engine *e, int *computed)
{
    dt_shape_state st;
    DT_TRY(dt_shape_state_init(&st, e));
    const ductile_network *net = e->net;
    for (int i = 0; i < net->n_inputs; i++) {
        dt_view *v = &st.views[net->inputs[i]->index];
        const dt_profile_input *pi = dt_profile_get(&e->profiles[0], net->inputs[i]->name);
        if (!pi) continue;
        v->rank = pi->rank;
        memcpy(v->dims, pi->opt, sizeof(int64_t) * (size_t)pi->rank);
    }
    dt_exec ex = {.pool = NULL};
    ductile_status s = dt_check_shared_symbols(e, st.views);
    if (!s) s = dt_shape_pass(e, &st, &ex);
    for (int t = 0; t < net->n_tensors; t++) computed[t] = net->tensors[t]->producer ? st.views[t].dtype : 0;
    dt_shape_state_free(&st, e);
    /* Out of memory, though, would leave dtypes unsettled that the shapes could settle. */
    return s == DUCTILE_ERR_OUT_OF_MEMORY ? dt_fail_prefix(s, "settling dtypes") : DUCTILE_OK;
}

/* The iterations a Loop may run in the builder's run on zeros before it gives up (dtypes
 * then come from the model's declarations). */
enum { DT_BUILD_MAX_ITERATIONS = 100000 };

/* Fills the computed dtypes still 0 by running e once on zeros at profile 0's min shapes.
 * A failure only leaves them 0. */
static ductile_status dt_dtypes_by_running(const ductile_engine *e, int *computed)
{
    const ductile_network *net = e->net;
    void **bufs = dt_calloc((size_t)net->n_inputs + 1, sizeof *bufs);
    ductile_context *c = NULL;
    ductile_status s = bufs ? ductile_context_create(e, &c)
                            : dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory settling dtypes");
    if (s == DUCTILE_ERR_OUT_OF_MEMORY) {
        dt_free(bufs);
        return s;
    }
    for (int i = 0; !s && i < net->n_inputs; i++) {
        const ductile_tensor *T = net->inputs[i];
        const dt_profile_input *pi = dt_profile_get(&e->profiles[0], T->name);
        if (!pi) { /* normalized profiles cover every input */
            s = DUCTILE_ERR_INTERNAL;
            break;
        }
        dt_view v = {.dtype = T->dtype, .rank = pi->rank};
        ductile_dims d = {.nb_dims = pi->rank};
        memcpy(v.dims, pi->min, sizeof(int64_t) * (size_t)pi->rank);
        memcpy(d.d, pi->min, sizeof(int64_t) * (size_t)pi->rank);
        size_t bytes;
        s = dt_view_bytes(&v, &bytes) ? DUCTILE_OK : DUCTILE_ERR_SHAPE;
        if (!s && !(bufs[i] = dt_calloc(bytes ? bytes : 1, 1))) s = DUCTILE_ERR_OUT_OF_MEMORY;
        if (!s) s = ductile_context_set_input_shape(c, T->name, &d);
        if (!s) s = ductile_context_set_tensor_address(c, T->name, bufs[i]);
    }
    /* Made-up inputs may keep a loop's condition true forever. */
    if (!s) dt_context_limit_iterations(c, DT_BUILD_MAX_ITERATIONS);
    if (!s) s = ductile_context_execute(c);
    if (!s) {
        const dt_view *views = dt_context_views(c);
        for (int t = 0; t < net->n_tensors; t++)
            if (!computed[t] && net->tensors[t]->producer) computed[t] = views[t].dtype;
    }
    ductile_context_free(c);
    for (int i = 0; i < net->n_inputs; i++) dt_free(bufs[i]);
    dt_free(bufs);
    return s == DUCTILE_ERR_OUT_OF_MEMORY ? dt_fail(s, "out of memory settling dtypes") : DUCTILE_OK;
}

/* Settles w's dtypes; *out is the engine written from w with them. */
ductile_status dt_pass_dtypes(ductile_network *w, const ductile_profile *profiles, int n_profiles,
                              const dt_engine_target *target, ductile_engine **out)
{
    *out = NULL;
    int n = w->n_tensors;
    int *declared = dt_malloc(((size_t)n + 1) * sizeof *declared);
    int *computed = dt_malloc(((size_t)n + 1) * sizeof *computed);
    ductile_engine *e = NULL;
    ductile_status s = declared && computed ? DUCTILE_OK
                     : dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for the dtypes of %d tensors", n);
    for (int t = 0; !s && t < n; t++) {
        ductile_tensor *T = w->tensors[t];
        declared[t] = T->dtype;
        if (T->producer) T->dtype = DUCTILE_UNDEFINED;
    }
    if (!s) s = dt_write_load(w, profiles, n_profiles, NULL, &e);
    /* The engine reader keeps the writer's tensor order. */
    if (!s && e->net->n_tensors != n)
        s = dt_fail(DUCTILE_ERR_INTERNAL, "dtypes: the engine has %d tensors, the network %d", e->net->n_tensors, n);
    if (!s) s = dt_computed_dtypes(e, computed);
    bool unknown = false;
    for (int t = 0; !s && t < n; t++) unknown |= w->tensors[t]->producer && !computed[t];
    if (!s && unknown && (e->plan.eager || e->plan.n_shape_inputs)) s = dt_dtypes_by_running(e, computed);
    for (int t = 0; !s && t < n; t++) {
        ductile_tensor *T = w->tensors[t];
        if (!T->producer) continue;
        T->dtype = computed[t] ? computed[t] : declared[t];
        s = dt_check_dtype(T->producer, T, declared[t], T->dtype, DUCTILE_ERR_INVALID_ARGUMENT);
        if (!s && T->is_output && !T->dtype && (e->plan.eager || e->plan.n_shape_inputs)) {
            const ductile_layer *C = e->plan.eager_cause;
            s = C ? dt_fail(DUCTILE_ERR_UNSUPPORTED,
                            "output '%s' declares no dtype, and ductile infers it only at run time (it follows node '%s' (%s), whose output shape depends on data): declare its element type in the model",
                            T->name, C->name, C->op_type)
                  : dt_fail(DUCTILE_ERR_UNSUPPORTED,
                            "output '%s' declares no dtype, and ductile infers it only at run time (its shape depends on the values of a shape input): declare its element type in the model",
                            T->name);
        }
    }
    ductile_engine_free(e);
    e = NULL;
    if (!s) s = dt_write_load(w, profiles, n_profiles, target, &e);
    if (s) {
        /* w keeps what it declared, as the user's network does. */
        for (int t = 0; declared && t < n; t++) w->tensors[t]->dtype = declared[t];
        ductile_engine_free(e);
        e = NULL;
    }
    dt_free(declared);
    dt_free(computed);
    *out = e;
    return s;
}
