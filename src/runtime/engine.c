/* Engines: loading (bytes -> network -> plan), saving, and the public queries. */
#include "runtime/engine_impl.h"
#include "core/alloc.h"
#include "runtime/engine_read.h"
#include "core/file.h"
#include "core/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void dt_free_aligned(void *p, size_t n) { dt_free(p); }

/* The engine's backend, present in this build and on this machine (its device of the compute
 * capability the engine was tuned for). */
static ductile_status dt_engine_backend(ductile_engine *e, const dt_engine_target *t)
{
    DT_TRY(dt_backend_require(t->backend, "engine was built for", &e->backend));
    snprintf(e->device.name, sizeof e->device.name, "%s", t->device);
    e->device.cc_major = (int)t->cc_major;
    e->device.cc_minor = (int)t->cc_minor;
    if (!e->backend->device) return DUCTILE_OK;
    dt_device_info have;
    DT_TRY(e->backend->device(&have));
    if (have.cc_major != e->device.cc_major || have.cc_minor != e->device.cc_minor)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "engine was built for %s (compute capability %d.%d); this GPU is %s (compute capability %d.%d): rebuild the engine on it",
                       e->device.name, e->device.cc_major, e->device.cc_minor, have.name, have.cc_major, have.cc_minor);
    return DUCTILE_OK;
}

/* Device backends: the constants that device kernels read get one device copy per engine
 * (fallback and value layers read the engine bytes in place). */
/* Layers whose dtypes or attributes the device kernel refuses become host fallbacks. Tensor
 * dtypes are known only from inference, so the shape pass runs once at profile 0's opt
 * shapes. Shape inputs have no values at load: the pass goes as far as it can without them,
 * and a layer it did not reach (its views follow from those values) runs on the host, which
 * runs every op at every dtype; ranks and dtypes there would need the values (TensorRT's
 * profiles carry shape values for this; ductile's do not yet). */
static ductile_status dt_engine_place_layers(ductile_engine *e)
{
    const dt_backend *be = e->backend;
    if (e->n_profiles < 1 || (!be->supports && !e->plan.n_shape_inputs)) return DUCTILE_OK;
    const ductile_network *net = e->net;
    dt_shape_state st;
    DT_TRY(dt_shape_state_init(&st, e));
    bool *reached = NULL;
    if (e->plan.n_shape_inputs && !(reached = dt_calloc((size_t)net->n_tensors + 1, sizeof *reached))) {
        dt_shape_state_free(&st, e);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory placing %d layers", e->plan.n_layers);
    }
    for (int i = 0; i < net->n_inputs; i++) {
        const dt_profile_input *pi = dt_profile_get(&e->profiles[0], net->inputs[i]->name);
        if (!pi) continue;
        dt_view *v = &st.views[net->inputs[i]->index];
        v->rank = pi->rank;
        memcpy(v->dims, pi->opt, sizeof(int64_t) * (size_t)pi->rank);
    }
    dt_exec ex = {.pool = NULL};
    ductile_status s = reached ? dt_shape_pass_partial(e, &st, &ex, reached) : dt_shape_pass(e, &st, &ex);
    dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO];
    for (int i = 0; !s && i < e->plan.n_layers; i++) {
        dt_plan_layer *pl = &e->plan.layers[i];
        const ductile_layer *L = pl->layer;
        if (pl->value || pl->fallback) continue;
        bool known = true;
        for (int k = 0; reached && k < L->n_out; k++) known &= reached[L->out[k]->index];
        if (known && !be->supports) continue;
        if (known) {
            dt_layer_input_views(L, st.views, in);
            for (int k = 0; k < L->n_out; k++) out[k] = st.views[L->out[k]->index];
            if (be->supports(L, in, out)) continue;
        }
        const dt_backend *host = dt_backend_host();
        pl->fallback = true;
        if (!(host->kernel && host->kernel(L->op_type)) && !host->find_kernel(L->op_type))
            s = dt_fail(DUCTILE_ERR_UNSUPPORTED, "node '%s' (%s, opset %d): neither the %s nor the %s backend runs it",
                        L->name, L->op_type, L->opset, be->name, host->name);
        else
            s = dt_plan_compile(pl, host);
    }
    dt_shape_state_free(&st, e);
    dt_free(reached);
    return s;
}

/* An eager plan infers each layer's shapes from the data of the layers before it, on the
 * host, between layers: on a device backend the whole engine runs on the host (every layer a
 * host layer, marked fallback so the layer info and profiles name the CPU), and its context
 * keeps its tensors in host memory, copying inputs bound to device memory in at the start
 * (runtime/context.c, dt_execute_eager). Device kernels with host copies per layer would need
 * each layer's output size before it runs, which is what these engines lack. Value, sequence
 * and control-flow layers are the host's already. */
static ductile_status dt_engine_place_on_host(ductile_engine *e)
{
    const dt_backend *host = dt_backend_host();
    for (int i = 0; i < e->plan.n_layers; i++) {
        dt_plan_layer *pl = &e->plan.layers[i];
        if (pl->value) continue;
        pl->fallback = true;
        if (pl->seq || pl->ctrl) continue;
        DT_TRY(dt_plan_compile(pl, host));
    }
    return DUCTILE_OK;
}

ductile_status dt_engine_upload(ductile_engine *e)
{
    const dt_backend *be = e->backend;
    if (be->host_memory) return DUCTILE_OK;
    const ductile_network *net = e->net;
    if (e->plan.eager) return dt_engine_place_on_host(e);
    DT_TRY(dt_engine_place_layers(e));
    e->dconst = dt_calloc((size_t)net->n_tensors + 1, sizeof *e->dconst);
    if (!e->dconst) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory loading an engine");
    for (int i = 0; i < e->plan.n_layers; i++) {
        const dt_plan_layer *pl = &e->plan.layers[i];
        if (pl->value || pl->fallback) continue;
        for (int k = 0; k < pl->layer->n_in; k++) {
            const ductile_tensor *T = pl->layer->in[k];
            if (!T || e->plan.kind[T->index] != DT_TENSOR_CONSTANT || e->dconst[T->index]) continue;
            void *d = be->alloc(T->nbytes);
            if (!d)
                return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of %s memory (%zu bytes) for constant '%s'", be->name,
                               T->nbytes, T->name);
            e->dconst[T->index] = d;
            if (T->nbytes) DT_TRY(be->copy(d, T->data, T->nbytes, NULL));
        }
    }
    return be->sync ? be->sync(NULL) : DUCTILE_OK;
}

ductile_status dt_engine_from_bytes(void *bytes, size_t size, ductile_engine **out)
{
    *out = NULL;
    ductile_engine *e = dt_calloc(1, sizeof *e);
    if (!e) {
        dt_free(bytes);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory loading an engine");
    }
    e->bytes = bytes;
    e->size = size;
    dt_engine_target target;
    ductile_status s = dt_engine_read_target(bytes, size, 0, &e->net, &e->profiles, &e->n_profiles, &target);
    if (!s) s = dt_engine_backend(e, &target);
    if (!s) s = dt_plan_make(e->net, e->backend, &e->plan);
    if (!s) s = dt_engine_upload(e);
    if (!s && !(e->layer_info = dt_layer_info_make(e)))
        s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory describing the engine's layers");
    if (s) {
        ductile_engine_free(e);
        return s;
    }
    *out = e;
    return DUCTILE_OK;
}

void ductile_engine_free(ductile_engine *e)
{
    if (!e) return;
    if (e->dconst)
        for (int t = 0; t < e->net->n_tensors; t++)
            if (e->dconst[t]) e->backend->release(e->dconst[t]);
    dt_free(e->dconst);
    dt_plan_free(&e->plan);
    dt_network_delete(e->net);
    for (int i = 0; i < e->n_profiles; i++) dt_profile_clear(&e->profiles[i]);
    dt_free(e->profiles);
    dt_free_aligned(e->bytes, e->size);
    dt_free(e->layer_info);
    dt_free(e);
}

void ductile_free(void *p) { dt_free(p); }

ductile_status ductile_engine_load_memory(const void *data, size_t size, ductile_engine **out)
{
    if (!out) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "load_memory: out is NULL");
    *out = NULL;
    if (!data && size) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "load_memory: data is NULL");
    void *copy = dt_aligned_alloc(64, size ? size : 1);
    if (!copy)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) loading an engine", size);
    if (size) memcpy(copy, data, size);
    return dt_engine_from_bytes(copy, size, out);
}

ductile_status ductile_engine_load_file(const char *path, ductile_engine **out)
{
    if (!out) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "load_file: out is NULL");
    *out = NULL;
    if (!path) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "load_file: path is NULL");
    /* Read, not mapped: the engine owns its bytes, so the file may change once loaded. */
    int fd;
    struct stat st;
    DT_TRY(dt_file_open_read(path, NULL, &fd, &st));
    size_t len = (size_t)st.st_size;
    if (len == 0) {
        close(fd);
        return dt_fail(DUCTILE_ERR_FORMAT, "'%s' is empty (0 bytes), not an engine file", path);
    }
    void *buf = dt_aligned_alloc(64, len);
    if (!buf) {
        close(fd);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) reading '%s'", len, path);
    }
    ductile_status s = dt_file_read_all(fd, buf, len, path, NULL);
    close(fd);
    if (s) {
        dt_free(buf);
        return s;
    }
    s = dt_engine_from_bytes(buf, len, out);
    if (s) dt_fail_prefix(s, "%s", path);
    return s;
}

ductile_status ductile_engine_serialize(const ductile_engine *e, void **data, size_t *size)
{
    if (!e || !data || !size) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "serialize: engine, data or size is NULL");
    *data = dt_malloc(e->size ? e->size : 1);
    if (!*data) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) serializing the engine", e->size);
    memcpy(*data, e->bytes, e->size);
    *size = e->size;
    return DUCTILE_OK;
}

ductile_status ductile_engine_save(const ductile_engine *e, const char *path)
{
    if (!e || !path) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "save: engine or path is NULL");
    int fd;
    DT_TRY(dt_file_create(path, NULL, &fd));
    return dt_file_write_close(fd, e->bytes, e->size, path, NULL);
}

int32_t ductile_engine_num_io_tensors(const ductile_engine *e)
{
    return e ? e->net->n_inputs + e->net->n_outputs : 0;
}

const char *ductile_engine_io_tensor_name(const ductile_engine *e, int32_t i)
{
    if (!e || i < 0) return NULL;
    if (i < e->net->n_inputs) return e->net->inputs[i]->name;
    i -= e->net->n_inputs;
    return i < e->net->n_outputs ? e->net->outputs[i]->name : NULL;
}

/* The I/O tensor of that name, or NULL. */
static const ductile_tensor *dt_engine_io(const ductile_engine *e, const char *name)
{
    for (int i = 0; i < e->net->n_inputs; i++)
        if (!strcmp(e->net->inputs[i]->name, name)) return e->net->inputs[i];
    for (int i = 0; i < e->net->n_outputs; i++)
        if (!strcmp(e->net->outputs[i]->name, name)) return e->net->outputs[i];
    return NULL;
}

int ductile_engine_is_input(const ductile_engine *e, const char *name)
{
    const ductile_tensor *t = e && name ? dt_engine_io(e, name) : NULL;
    return t ? t->is_input : -1;
}

ductile_dtype ductile_engine_tensor_dtype(const ductile_engine *e, const char *name)
{
    const ductile_tensor *t = e && name ? dt_engine_io(e, name) : NULL;
    return t ? (ductile_dtype)t->dtype : DUCTILE_UNDEFINED;
}

int ductile_engine_tensor_kind(const ductile_engine *e, const char *name)
{
    const ductile_tensor *t = e && name ? dt_engine_io(e, name) : NULL;
    return t ? t->kind : -1;
}

ductile_status ductile_engine_get_tensor_dims(const ductile_engine *e, const char *name, ductile_dims *out)
{
    if (!e || !name || !out) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "get_tensor_dims: engine, name or out is NULL");
    const ductile_tensor *t = dt_engine_io(e, name);
    if (!t) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "'%s' is not an I/O tensor of the engine", name);
    *out = ductile_tensor_dims(t);
    return DUCTILE_OK;
}

const char *ductile_engine_device(const ductile_engine *e) { return e ? e->backend->name : NULL; }

bool dt_engine_host_tensor(const ductile_engine *e, int t)
{
    const ductile_tensor *T = e->net->tensors[t];
    return e->backend->host_memory || e->plan.eager || e->plan.shape_input[t] || T->dtype == DUCTILE_STRING ||
           T->kind != DUCTILE_VALUE_TENSOR;
}

int ductile_engine_tensor_location(const ductile_engine *e, const char *name)
{
    const ductile_tensor *t = e && name ? dt_engine_io(e, name) : NULL;
    if (!t) return -1;
    return dt_engine_host_tensor(e, t->index) ? DUCTILE_LOCATION_HOST : DUCTILE_LOCATION_DEVICE;
}

int32_t ductile_engine_num_profiles(const ductile_engine *e) { return e ? e->n_profiles : 0; }

ductile_status ductile_engine_get_profile_shape(const ductile_engine *e, int32_t profile, const char *name,
                                                ductile_profile_selector which, ductile_dims *out)
{
    if (!e || !name || !out) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "get_profile_shape: engine, name or out is NULL");
    if (profile < 0 || profile >= e->n_profiles)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "profile %d does not exist (the engine has %d)", profile, e->n_profiles);
    if ((unsigned)which > DUCTILE_PROFILE_MAX)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "get_profile_shape: selector %d is not MIN (0), OPT (1) or MAX (2)", (int)which);
    const dt_profile_input *pi = dt_profile_get(&e->profiles[profile], name);
    if (!pi) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "'%s' is not an input of the engine", name);
    const int64_t *src = which == DUCTILE_PROFILE_MIN ? pi->min : which == DUCTILE_PROFILE_OPT ? pi->opt : pi->max;
    memset(out, 0, sizeof *out);
    out->nb_dims = pi->rank;
    memcpy(out->d, src, sizeof(int64_t) * (size_t)pi->rank);
    return DUCTILE_OK;
}
