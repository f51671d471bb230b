#include "builder/profile_check.h"
#include "builder/dim_ties.h"
#include "core/alloc.h"
#include "core/status.h"
#include "runtime/memplan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool dt_tensor_dynamic(const ductile_tensor *t)
{
    if (t->rank < 0) return true;
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] < 0) return true;
    return false;
}

static void dt_free_profiles(ductile_profile *p, int n)
{
    for (int i = 0; i < n; i++) dt_profile_clear(&p[i]);
    dt_free(p);
}

static ductile_status dt_check_symbols(const ductile_network *net, const ductile_profile *p, int pi)
{
    for (int a = 0; a < net->n_inputs; a++) {
        const ductile_tensor *A = net->inputs[a];
        const dt_profile_input *ea = dt_profile_get(p, A->name);
        for (int i = 0; i < A->rank; i++) {
            if (!A->dim_sym[i]) continue;
            for (int b = a + 1; b < net->n_inputs; b++) {
                const ductile_tensor *B = net->inputs[b];
                const dt_profile_input *eb = dt_profile_get(p, B->name);
                for (int j = 0; j < B->rank; j++) {
                    if (!B->dim_sym[j] || strcmp(A->dim_sym[i], B->dim_sym[j])) continue;
                    if (ea->min[i] == eb->min[j] && ea->opt[i] == eb->opt[j] && ea->max[i] == eb->max[j]) continue;
                    return dt_fail(DUCTILE_ERR_PROFILE,
                                   "profile %d: inputs '%s' and '%s' share the dimension '%s' (dimension %d of '%s', dimension %d of '%s') "
                                   "but their ranges differ: min %lld, opt %lld, max %lld vs min %lld, opt %lld, max %lld",
                                   pi, A->name, B->name, A->dim_sym[i], i, A->name, j, B->name,
                                   (long long)ea->min[i], (long long)ea->opt[i], (long long)ea->max[i],
                                   (long long)eb->min[j], (long long)eb->opt[j], (long long)eb->max[j]);
                }
            }
        }
    }
    return DUCTILE_OK;
}

ductile_status dt_profiles_normalize(const ductile_network *net, const ductile_config *cfg,
                                     ductile_profile **out, int *n_out)
{
    int n = cfg->n_profiles ? cfg->n_profiles : 1;
    ductile_profile *ps = dt_calloc((size_t)n, sizeof *ps);
    if (!ps) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory copying profiles");
    ductile_status s = DUCTILE_OK;
    for (int p = 0; p < n && !s; p++) {
        const ductile_profile *src = cfg->n_profiles ? &cfg->profiles[p] : NULL;
        for (int k = 0; src && k < src->n && !s; k++) {
            const dt_profile_input *e = &src->inputs[k];
            const ductile_tensor *t = dt_network_find(net, e->name);
            if (!t || !t->is_input) {
                char names[512];
                size_t used = 0;
                names[0] = 0;
                for (int i = 0; i < net->n_inputs && used < sizeof names; i++)
                    used += (size_t)snprintf(names + used, sizeof names - used, "%s'%s'", i ? ", " : "", net->inputs[i]->name);
                s = dt_fail(DUCTILE_ERR_PROFILE, "profile %d names '%s', which is not an input of the network (inputs: %s)",
                            p, e->name, names);
            } else if (t->rank >= 0 && t->rank != e->rank) {
                s = dt_fail(DUCTILE_ERR_PROFILE, "profile %d: input '%s' has rank %d but the profile gives %d dimensions",
                            p, e->name, t->rank, e->rank);
            } else {
                s = dt_profile_set(&ps[p], e->name, e->rank, e->min, e->opt, e->max);
            }
        }
        for (int i = 0; i < net->n_inputs && !s; i++) {
            const ductile_tensor *t = net->inputs[i];
            if (dt_profile_get(&ps[p], t->name)) continue;
            if (dt_tensor_dynamic(t)) {
                char dims[256];
                dt_format_dims(dims, sizeof dims, t->dims, t->rank, t->dim_sym);
                s = cfg->n_profiles
                        ? dt_fail(DUCTILE_ERR_PROFILE, "profile %d does not cover input '%s', whose shape %s has dynamic dimensions",
                                  p, t->name, dims)
                        : dt_fail(DUCTILE_ERR_PROFILE, "input '%s' has dynamic dimensions (%s): add an optimization profile that covers it",
                                  t->name, dims);
            } else {
                s = dt_profile_set(&ps[p], t->name, t->rank, t->dims, t->dims, t->dims);
            }
        }
        if (!s) s = dt_check_symbols(net, &ps[p], p);
    }
    if (s) {
        dt_free_profiles(ps, n);
        return s;
    }
    *out = ps;
    *n_out = n;
    return DUCTILE_OK;
}

ductile_status dt_profile_point(const ductile_engine *e, const ductile_profile *prof,
                                int64_t (*point)[DUCTILE_MAX_DIMS], dt_shape_state *st)
{
    DT_TRY(dt_shape_state_init(st, e));
    const ductile_network *net = e->net;
    for (int i = 0; i < net->n_inputs; i++) {
        dt_view *v = &st->views[net->inputs[i]->index];
        v->rank = net->inputs[i]->rank;
        const dt_profile_input *pi = dt_profile_get(prof, net->inputs[i]->name);
        if (pi) v->rank = pi->rank;
        memcpy(v->dims, point[i], sizeof point[i]);
    }
    dt_exec ex = {.pool = NULL};
    ductile_status s = dt_check_shared_symbols(e, st->views);
    if (!s) s = dt_shape_pass(e, st, &ex);
    return s;
}

/* Infers shapes with every input at `point` (per input, rank dims); with arena, also plans
 * the activation memory there. */
static ductile_status dt_try_point_arena(const ductile_engine *e, const ductile_profile *prof,
                                         int64_t (*point)[DUCTILE_MAX_DIMS], size_t *arena)
{
    const ductile_network *net = e->net;
    dt_shape_state st;
    ductile_status s = dt_profile_point(e, prof, point, &st);
    for (int i = 0; !s && arena && i < net->n_inputs; i++) {
        const dt_view *v = &st.views[net->inputs[i]->index];
        size_t bytes;
        if (dt_view_bytes(v, &bytes)) continue;
        char dims[256];
        dt_format_dims(dims, sizeof dims, v->dims, v->rank, NULL);
        s = dt_fail(DUCTILE_ERR_PROFILE, "input '%s' has shape %s of %s: more than %zu bytes", net->inputs[i]->name, dims,
                    ductile_dtype_name((ductile_dtype)v->dtype), (size_t)SIZE_MAX);
    }
    if (!s && arena) {
        size_t *offsets = dt_calloc((size_t)net->n_tensors + 1, sizeof *offsets);
        s = offsets ? dt_memplan(e, st.views, offsets, arena)
                    : dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory planning activation memory");
        dt_free(offsets);
    }
    dt_shape_state_free(&st, e);
    return s;
}

static ductile_status dt_try_point(const ductile_engine *e, const ductile_profile *prof,
                                   int64_t (*point)[DUCTILE_MAX_DIMS])
{
    return dt_try_point_arena(e, prof, point, NULL);
}

static void dt_format_point(char *buf, size_t cap, const ductile_network *net, int64_t (*point)[DUCTILE_MAX_DIMS],
                            const ductile_profile *p)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < net->n_inputs && used < cap; i++) {
        const dt_profile_input *pi = dt_profile_get(p, net->inputs[i]->name);
        char d[200];
        dt_format_dims(d, sizeof d, point[i], pi ? pi->rank : 0, NULL);
        used += (size_t)snprintf(buf + used, cap - used, "%s'%s' %s", i ? ", " : "", net->inputs[i]->name, d);
    }
}

static ductile_status dt_verify_profile(const ductile_engine *e, const dt_input_decl *decl, int p)
{
    const ductile_network *net = e->net;
    const ductile_profile *prof = &e->profiles[p];
    int n = net->n_inputs;
    int64_t(*base)[DUCTILE_MAX_DIMS] = dt_calloc((size_t)n + 1, sizeof *base);
    int64_t(*pt)[DUCTILE_MAX_DIMS] = dt_calloc((size_t)n + 1, sizeof *pt);
    if (!base || !pt) {
        dt_free(base);
        dt_free(pt);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory checking profile %d", p);
    }
    /* The base point keeps the sizes the file declares where the profile allows them, so a
     * failure when one dim moves away from it points at that dim. */
    for (int i = 0; i < n; i++) {
        const ductile_tensor *t = net->inputs[i];
        const dt_profile_input *pi = dt_profile_get(prof, t->name);
        for (int d = 0; d < pi->rank; d++) {
            int64_t model = t->rank == pi->rank ? decl[i].dims[d] : -1;
            base[i][d] = model >= pi->min[d] && model <= pi->max[d] ? model : pi->opt[d];
        }
    }
    ductile_status s = DUCTILE_OK;
    static const char *const corner_name[3] = {"min", "opt", "max"};
    for (int c = -1; c < 3 && !s; c++) {
        for (int i = 0; i < n; i++) {
            const dt_profile_input *pi = dt_profile_get(prof, net->inputs[i]->name);
            const int64_t *src = c < 0 ? base[i] : c == 0 ? pi->min : c == 1 ? pi->opt : pi->max;
            memcpy(pt[i], src, sizeof pt[i]);
        }
        ductile_status st = dt_try_point(e, prof, pt);
        if (!st) continue;
        char where[1024];
        dt_format_point(where, sizeof where, net, pt, prof);
        /* Running out of memory says nothing about the profile: report it as it is. */
        if (st == DUCTILE_ERR_OUT_OF_MEMORY) {
            s = dt_fail_prefix(st, "profile %d at shapes %s", p, where);
            break;
        }
        if (c < 0) {
            s = dt_fail_prefix(DUCTILE_ERR_PROFILE, "profile %d at shapes %s", p, where);
            break;
        }
        /* Move one dim (with every dim sharing its symbol) from the base to min or max. */
        for (int i = 0; i < n && !s; i++) {
            const ductile_tensor *t = net->inputs[i];
            const dt_profile_input *pi = dt_profile_get(prof, t->name);
            for (int d = 0; d < pi->rank && !s; d++) {
                if (pi->min[d] == pi->max[d]) continue;
                const int64_t vals[2] = {pi->min[d], pi->max[d]};
                for (int v = 0; v < 2 && !s; v++) {
                    memcpy(pt, base, sizeof *pt * (size_t)n);
                    pt[i][d] = vals[v];
                    const char *sym = t->rank == pi->rank ? t->dim_sym[d] : NULL;
                    for (int j = 0; sym && j < n; j++)
                        for (int k = 0; k < net->inputs[j]->rank; k++)
                            if (net->inputs[j]->dim_sym[k] && !strcmp(net->inputs[j]->dim_sym[k], sym)) pt[j][k] = vals[v];
                    st = dt_try_point(e, prof, pt);
                    if (!st) continue;
                    if (st == DUCTILE_ERR_OUT_OF_MEMORY) {
                        dt_format_point(where, sizeof where, net, pt, prof);
                        s = dt_fail_prefix(st, "profile %d at shapes %s", p, where);
                        break;
                    }
                    char symtxt[80] = "";
                    if (sym) snprintf(symtxt, sizeof symtxt, " (%s)", sym);
                    s = dt_fail_prefix(DUCTILE_ERR_PROFILE,
                                       "profile %d: input '%s' dimension %d%s ranges over %lld..%lld but the model fails at %lld",
                                       p, t->name, d, symtxt, (long long)pi->min[d], (long long)pi->max[d], (long long)vals[v]);
                }
            }
        }
        if (!s) { /* no single dim explains it: report the corner itself */
            for (int i = 0; i < n; i++) {
                const dt_profile_input *pi = dt_profile_get(prof, net->inputs[i]->name);
                memcpy(pt[i], c == 0 ? pi->min : c == 1 ? pi->opt : pi->max, sizeof pt[i]);
            }
            st = dt_try_point(e, prof, pt);
            s = dt_fail_prefix(st == DUCTILE_ERR_OUT_OF_MEMORY ? st : DUCTILE_ERR_PROFILE,
                               "profile %d at its %s shapes %s", p, corner_name[c], where);
        }
    }
    dt_free(base);
    dt_free(pt);
    return s;
}

ductile_status dt_profiles_verify(const ductile_engine *e, const dt_input_decl *decl)
{
    /* Shapes that follow from an input's values (shape inputs) are unknown until run time;
     * they are checked when the context runs the shape program. A fixed dim that a profile
     * ranges is refused all the same, only without the search for the nodes that tie it. */
    bool search = !e->plan.n_shape_inputs && !e->plan.eager;
    for (int p = 0; p < e->n_profiles; p++) DT_TRY(dt_fixed_dims_check(e, decl, p, search));
    if (!search) return DUCTILE_OK;
    for (int p = 0; p < e->n_profiles; p++) {
        DT_TRY(dt_verify_profile(e, decl, p));
        DT_TRY(dt_ties_check(e, decl, p));
    }
    return DUCTILE_OK;
}

/* "536870912 bytes (512.0 MiB)" */
static void dt_format_bytes(char *buf, size_t cap, uint64_t bytes)
{
    static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    int u = -1;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u < 0) snprintf(buf, cap, "%llu bytes", (unsigned long long)bytes);
    else snprintf(buf, cap, "%llu bytes (%.1f %s)", (unsigned long long)bytes, v, unit[u]);
}

/* The activation memory is planned at min, opt and max: the largest is what a context may
 * need (max is not always it: a dim can shrink as an input grows). */
static ductile_status dt_check_profile_memory(const ductile_engine *e, int p, uint64_t limit, bool configured)
{
    const ductile_network *net = e->net;
    const ductile_profile *prof = &e->profiles[p];
    int n = net->n_inputs;
    int64_t(*pt)[DUCTILE_MAX_DIMS] = dt_calloc((size_t)n + 1, sizeof *pt);
    if (!pt) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory checking profile %d", p);
    static const char *const corner_name[3] = {"min", "opt", "max"};
    ductile_status s = DUCTILE_OK;
    size_t worst = 0;
    int worst_c = 0;
    for (int c = 2; c >= 0 && !s; c--) {
        for (int i = 0; i < n; i++) {
            const dt_profile_input *pi = dt_profile_get(prof, net->inputs[i]->name);
            memcpy(pt[i], c == 0 ? pi->min : c == 1 ? pi->opt : pi->max, sizeof pt[i]);
        }
        size_t arena = 0;
        s = dt_try_point_arena(e, prof, pt, &arena);
        if (s) {
            char where[1024];
            dt_format_point(where, sizeof where, net, pt, prof);
            s = dt_fail_prefix(s, "profile %d at its %s shapes %s", p, corner_name[c], where);
        } else if (arena > worst) {
            worst = arena;
            worst_c = c;
        }
    }
    if (!s && worst > limit) {
        for (int i = 0; i < n; i++) {
            const dt_profile_input *pi = dt_profile_get(prof, net->inputs[i]->name);
            memcpy(pt[i], worst_c == 0 ? pi->min : worst_c == 1 ? pi->opt : pi->max, sizeof pt[i]);
        }
        char where[1024], need[64], have[64];
        dt_format_point(where, sizeof where, net, pt, prof);
        dt_format_bytes(need, sizeof need, worst);
        dt_format_bytes(have, sizeof have, limit);
        s = configured
                ? dt_fail(DUCTILE_ERR_PROFILE,
                          "profile %d needs %s of activation memory at its %s shapes %s, more than the workspace limit of %s "
                          "(ductile_config_set_workspace; --memPoolSize=workspace:N in the CLI; set_memory_pool_limit in Python): "
                          "raise the limit or shrink the profile",
                          p, need, corner_name[worst_c], where, have)
                : dt_fail(DUCTILE_ERR_PROFILE,
                          "profile %d needs %s of activation memory at its %s shapes %s, more than the %s of memory of the %s backend "
                          "(the limit when no workspace limit is set): shrink the profile",
                          p, need, corner_name[worst_c], where, have, e->backend->name);
    }
    dt_free(pt);
    return s;
}

ductile_status dt_profiles_check_memory(const ductile_engine *e, uint64_t workspace)
{
    /* Engines with shape inputs or data-dependent shapes learn their shapes at run time. */
    if (e->plan.n_shape_inputs || e->plan.eager) return DUCTILE_OK;
    uint64_t limit = workspace;
    if (!limit && e->backend->memory_size) limit = e->backend->memory_size();
    if (!limit) return DUCTILE_OK;
    for (int p = 0; p < e->n_profiles; p++) DT_TRY(dt_check_profile_memory(e, p, limit, workspace != 0));
    return DUCTILE_OK;
}
