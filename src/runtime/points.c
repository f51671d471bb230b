/* Profile shape points (points.h). */
#include "runtime/points.h"
#include "format/profile.h"

#include <math.h>
#include <string.h>

static const int64_t *dt_point_dims(const dt_profile_input *pi, int point)
{
    return point == DUCTILE_PROFILE_MIN ? pi->min : point == DUCTILE_PROFILE_MAX ? pi->max : pi->opt;
}

void dt_point_views(const ductile_engine *e, int p, int point, dt_view *views)
{
    const ductile_network *net = e->net;
    for (int i = 0; i < net->n_inputs; i++) {
        const ductile_tensor *t = net->inputs[i];
        dt_view *v = &views[t->index];
        const dt_profile_input *pi = dt_profile_get(&e->profiles[p], t->name);
        v->rank = pi ? pi->rank : t->rank;
        memcpy(v->dims, pi ? dt_point_dims(pi, point) : t->dims, sizeof(int64_t) * (size_t)v->rank);
    }
}

bool dt_points_same(const ductile_engine *e, int p, int a, int b)
{
    const ductile_profile *pr = &e->profiles[p];
    for (int i = 0; i < pr->n; i++)
        if (memcmp(dt_point_dims(&pr->inputs[i], a), dt_point_dims(&pr->inputs[i], b),
                   sizeof(int64_t) * (size_t)pr->inputs[i].rank))
            return false;
    return true;
}

/* Elements of a shape, in double so that no count overflows; a dim under 0 counts as 0. */
static double dt_count(int rank, const int64_t *dims)
{
    double n = 1;
    for (int d = 0; d < rank; d++) n *= dims[d] > 0 ? (double)dims[d] : 0.0;
    return n;
}

static double dt_log_at_least_1(double v) { return log(v < 1 ? 1 : v); }

int dt_point_nearest(const ductile_engine *e, int p, const dt_view *views)
{
    if (p < 0 || p >= e->n_profiles) return DUCTILE_PROFILE_OPT;
    const ductile_network *net = e->net;
    double at = 0;
    for (int i = 0; i < net->n_inputs; i++) {
        const dt_view *v = &views[net->inputs[i]->index];
        if (net->inputs[i]->kind == DUCTILE_VALUE_TENSOR) at += dt_count(v->rank, v->dims);
    }
    at = dt_log_at_least_1(at);
    static const int order[] = {DUCTILE_PROFILE_OPT, DUCTILE_PROFILE_MIN, DUCTILE_PROFILE_MAX};
    int best = DUCTILE_PROFILE_OPT;
    double best_d = INFINITY;
    for (int k = 0; k < 3; k++) {
        double total = 0;
        for (int i = 0; i < net->n_inputs; i++) {
            const ductile_tensor *t = net->inputs[i];
            if (t->kind != DUCTILE_VALUE_TENSOR) continue; /* sequences: no shape */
            const dt_profile_input *pi = dt_profile_get(&e->profiles[p], t->name);
            total += pi ? dt_count(pi->rank, dt_point_dims(pi, order[k])) : dt_count(t->rank, t->dims);
        }
        /* A tie (within rounding: volumes at the geometric mean of two points) keeps the
         * earlier point of the order. */
        double d = fabs(at - dt_log_at_least_1(total));
        if (d < best_d - 1e-9) {
            best_d = d;
            best = order[k];
        }
    }
    return best;
}
