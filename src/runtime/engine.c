/* Engines: loading (bytes -> network -> plan), saving, and the public queries. */
#include "runtime/engine_impl.h"
#include "core/alloc.h"
#include "runtime/engine_read.h"
#include "core/file.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void dt_free_aligned(void *p, size_t n) { dt_free(p); }

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
    ductile_status s = dt_engine_read(bytes, size, &e->net, &e->profiles, &e->n_profiles);
    e->backend = dt_backend_cpu();
    if (!s) s = dt_plan_make(e->net, e->backend, &e->plan);
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
