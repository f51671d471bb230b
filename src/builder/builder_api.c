/* The public builder, profile and config calls: argument checks and bookkeeping. */
#include "builder/config.h"
#include "backend/backend.h"
#include "core/alloc.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ductile_status ductile_builder_create(ductile_builder **out)
{
    if (!out) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "ductile_builder_create: out is NULL");
    *out = dt_calloc(1, sizeof **out);
    if (!*out) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory creating a builder");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    (*out)->threads = n < 1 ? 1 : n > 64 ? 64 : (int)n;
    return DUCTILE_OK;
}

void ductile_builder_free(ductile_builder *b) { dt_free(b); }

ductile_status ductile_profile_create(ductile_builder *b, ductile_profile **out)
{
    if (!out) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "ductile_profile_create: out is NULL");
    *out = NULL;
    if (!b) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "ductile_profile_create: builder is NULL");
    *out = dt_calloc(1, sizeof **out);
    return *out ? DUCTILE_OK : dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory creating a profile");
}

void ductile_profile_free(ductile_profile *p)
{
    if (!p) return;
    dt_profile_clear(p);
    dt_free(p);
}

static const char *const dt_which[3] = {"min", "opt", "max"};

ductile_status ductile_profile_set_shape(ductile_profile *p, const char *name, const ductile_dims *min,
                                         const ductile_dims *opt, const ductile_dims *max)
{
    if (!p || !name || !min || !opt || !max)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_shape: profile, input name, min, opt or max is NULL");
    const ductile_dims *d[3] = {min, opt, max};
    for (int k = 0; k < 3; k++)
        if (d[k]->nb_dims < 0 || d[k]->nb_dims > DUCTILE_MAX_DIMS)
            return dt_fail(DUCTILE_ERR_PROFILE, "input '%s': %s shape has %d dims (expected 0..%d)",
                           name, dt_which[k], d[k]->nb_dims, DUCTILE_MAX_DIMS);
    if (min->nb_dims != opt->nb_dims || min->nb_dims != max->nb_dims)
        return dt_fail(DUCTILE_ERR_PROFILE, "input '%s': min, opt and max have %d, %d and %d dims; they must have the same number",
                       name, min->nb_dims, opt->nb_dims, max->nb_dims);
    for (int i = 0; i < min->nb_dims; i++) {
        if (min->d[i] < 0)
            return dt_fail(DUCTILE_ERR_PROFILE, "input '%s' dimension %d: min %lld is negative",
                           name, i, (long long)min->d[i]);
        if (min->d[i] > opt->d[i] || opt->d[i] > max->d[i])
            return dt_fail(DUCTILE_ERR_PROFILE,
                           "input '%s' dimension %d: min %lld, opt %lld, max %lld; expected min <= opt <= max",
                           name, i, (long long)min->d[i], (long long)opt->d[i], (long long)max->d[i]);
    }
    return dt_profile_set(p, name, min->nb_dims, min->d, opt->d, max->d);
}

ductile_status ductile_config_create(ductile_builder *b, ductile_config **out)
{
    if (!out) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "ductile_config_create: out is NULL");
    *out = NULL;
    if (!b) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "ductile_config_create: builder is NULL");
    *out = dt_calloc(1, sizeof **out);
    return *out ? DUCTILE_OK : dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory creating a config");
}

void ductile_config_free(ductile_config *c)
{
    if (!c) return;
    for (int i = 0; i < c->n_profiles; i++) dt_profile_clear(&c->profiles[i]);
    dt_free(c->profiles);
    dt_free(c);
}

ductile_status ductile_config_add_profile(ductile_config *c, const ductile_profile *p, int32_t *index)
{
    if (!c || !p) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "add_profile: config or profile is NULL");
    if (c->n_profiles == c->cap_profiles) {
        int nc = c->cap_profiles ? c->cap_profiles * 2 : 4;
        ductile_profile *np = dt_realloc(c->profiles, (size_t)nc * sizeof *np);
        if (!np) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory adding a profile");
        c->profiles = np;
        c->cap_profiles = nc;
    }
    ductile_profile *dst = &c->profiles[c->n_profiles];
    memset(dst, 0, sizeof *dst);
    DT_TRY(dt_profile_copy(dst, p));
    if (index) *index = c->n_profiles;
    c->n_profiles++;
    return DUCTILE_OK;
}

ductile_status ductile_config_set_workspace(ductile_config *c, uint64_t bytes)
{
    if (!c) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_workspace: config is NULL");
    c->workspace = bytes;
    return DUCTILE_OK;
}

ductile_status ductile_config_set_threads(ductile_config *c, int32_t threads)
{
    if (!c) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_threads: config is NULL");
    if (threads < 0 || threads > 64)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "set_threads: %d threads is out of range (expected 1..64, or 0 for the online CPUs)", (int)threads);
    c->threads = threads;
    return DUCTILE_OK;
}

ductile_status ductile_config_set_device(ductile_config *c, const char *device)
{
    if (!c || !device) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_device: config or device is NULL");
    if (strcmp(device, "cpu") && strcmp(device, "cuda"))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_device: '%s' is not a device (expected cpu or cuda)", device);
    const dt_backend *be;
    DT_TRY(dt_backend_require(device, "set_device:", &be));
    c->device = be->name;
    return DUCTILE_OK;
}

ductile_status ductile_config_set_flag(ductile_config *c, ductile_builder_flag flag, int on)
{
    if (!c) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_flag: config is NULL");
    if ((unsigned)flag > DUCTILE_FLAG_TF32)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_flag: flag %d is not one of FP16 (0), BF16 (1), TF32 (2)", (int)flag);
    if (on) c->flags |= 1u << flag;
    else c->flags &= ~(1u << flag);
    return DUCTILE_OK;
}

int ductile_config_has_precision(const ductile_config *c, ductile_builder_flag flag)
{
    if (!c || (unsigned)flag > DUCTILE_FLAG_TF32) return 0;
    const dt_backend *be = dt_backend_find(c->device ? c->device : "cpu");
    if (!be) return 0;
    if (be->precisions & (1u << flag)) return 1;
    return (flag == DUCTILE_FLAG_BF16 || flag == DUCTILE_FLAG_FP16) && be->bf16_in_kernel &&
           be->bf16_in_kernel(NULL, 1u << flag);
}

ductile_status ductile_config_set_progress(ductile_config *c, ductile_progress_fn fn, void *user)
{
    if (!c) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "set_progress: config is NULL");
    c->progress = fn;
    c->progress_user = user;
    return DUCTILE_OK;
}
