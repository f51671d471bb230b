#include "format/profile.h"
#include "core/alloc.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>

const dt_profile_input *dt_profile_get(const ductile_profile *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->inputs[i].name, name) == 0) return &p->inputs[i];
    return NULL;
}

ductile_status dt_profile_set(ductile_profile *p, const char *name, int rank, const int64_t *min,
                              const int64_t *opt, const int64_t *max)
{
    dt_profile_input *e = (dt_profile_input *)dt_profile_get(p, name);
    if (!e) {
        if (p->n == p->cap) {
            int nc = p->cap ? p->cap * 2 : 4;
            dt_profile_input *ni = dt_realloc(p->inputs, (size_t)nc * sizeof *ni);
            if (!ni) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory adding input '%s' to a profile", name);
            p->inputs = ni;
            p->cap = nc;
        }
        e = &p->inputs[p->n];
        memset(e, 0, sizeof *e);
        e->name = dt_strdup(name);
        if (!e->name) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory adding input '%s' to a profile", name);
        p->n++;
    }
    e->rank = rank;
    for (int i = 0; i < rank; i++) {
        e->min[i] = min[i];
        e->opt[i] = opt[i];
        e->max[i] = max[i];
    }
    return DUCTILE_OK;
}

ductile_status dt_profile_copy(ductile_profile *dst, const ductile_profile *src)
{
    for (int i = 0; i < src->n; i++) {
        const dt_profile_input *e = &src->inputs[i];
        ductile_status s = dt_profile_set(dst, e->name, e->rank, e->min, e->opt, e->max);
        if (s) {
            dt_profile_clear(dst);
            return s;
        }
    }
    return DUCTILE_OK;
}

void dt_profile_clear(ductile_profile *p)
{
    for (int i = 0; i < p->n; i++) dt_free(p->inputs[i].name);
    dt_free(p->inputs);
    p->inputs = NULL;
    p->n = p->cap = 0;
}
