/* Tactic selection: for each layer where the backend offers more than one tactic, run each on
 * random data at every profile's opt shapes (inputs and dims from the shape pass of the built
 * engine; the layer's real weights), and keep the fastest: median of a few runs after a
 * warm-up. Only layers with a choice are timed, so a build costs a few runs of the layers
 * that matter, not of the network. */
#include "builder/optimize.h"
#include "core/alloc.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "runtime/engine_impl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { DT_TACTIC_REPS = 3, DT_TACTIC_MAX = 8 };

static double dt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int dt_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Buffers of random data for the layer's non-constant inputs and its outputs; NULL views
 * stay as the shape pass left them. */
static ductile_status dt_time_layer(const ductile_engine *e, const dt_plan_layer *pl, const dt_shape_state *st,
                                    dt_pool *pool, int profile, int *best)
{
    const ductile_layer *L = pl->layer;
    dt_view in[8], out[4];
    void *bufs[12] = {0};
    int nb = 0, ids[DT_TACTIC_MAX];
    ductile_status s = DUCTILE_OK;
    *best = 0;
    if (L->n_in > 8 || L->n_out > 4) return DUCTILE_OK;
    for (int k = 0; k < L->n_in && k < 8; k++) {
        if (!L->in[k]) {
            memset(&in[k], 0, sizeof in[k]);
            in[k].rank = -1;
            continue;
        }
        in[k] = st->views[L->in[k]->index];
    }
    int n = e->backend->tactics(L, in, ids, DT_TACTIC_MAX);
    if (n < 2) return DUCTILE_OK;
    for (int k = 0; k < L->n_in + L->n_out && !s; k++) {
        dt_view *v = k < L->n_in ? &in[k] : &out[k - L->n_in];
        if (k >= L->n_in) *v = st->views[L->out[k - L->n_in]->index];
        if (v->rank < 0 || (k < L->n_in && v->data)) continue;
        size_t bytes;
        if (!dt_view_bytes(v, &bytes)) return dt_fail(DUCTILE_ERR_SHAPE, "node '%s': a tensor is too large to time", L->name);
        float *p = e->backend->alloc(bytes);
        if (!p) {
            s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) timing node '%s'", bytes, L->name);
            break;
        }
        bufs[nb++] = p;
        /* Small values of both signs: no denormals, no overflow, every activation branch. */
        for (size_t i = 0; i < bytes / sizeof(float); i++) p[i] = (float)((i * 2654435761u) % 2001) * 1e-3f - 1.0f;
        v->data = p;
    }
    /* Scratch as the context would give it (every tactic runs within the layer's size). */
    size_t scratch_bytes = 0;
    void *scratch = NULL;
    if (!s) s = dt_plan_layer_scratch(pl, in, out, dt_pool_threads(pool), &scratch_bytes);
    if (!s && scratch_bytes && !(scratch = e->backend->alloc(scratch_bytes)))
        s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) timing node '%s'", scratch_bytes, L->name);
    double best_t = 0;
    for (int t = 0; t < n && !s; t++) {
        dt_exec ex = {.pool = pool, .profile = profile, .tactic = ids[t], .scratch = scratch, .scratch_bytes = scratch_bytes};
        double times[DT_TACTIC_REPS];
        for (int r = -1; r < DT_TACTIC_REPS && !s; r++) {
            double t0 = dt_now();
            s = dt_plan_layer_run(pl, in, out, &ex);
            if (r >= 0) times[r] = dt_now() - t0;
        }
        if (s) break;
        qsort(times, DT_TACTIC_REPS, sizeof times[0], dt_cmp_double);
        if (t == 0 || times[DT_TACTIC_REPS / 2] < best_t) {
            best_t = times[DT_TACTIC_REPS / 2];
            *best = ids[t];
        }
    }
    for (int i = 0; i < nb; i++) e->backend->release(bufs[i]);
    if (scratch) e->backend->release(scratch);
    if (s) return dt_fail_prefix(s, "timing node '%s' (%s)", L->name, L->op_type);
    return DUCTILE_OK;
}

/* The shape pass at profile p's opt shapes (fixed inputs at their declared dims). */
static ductile_status dt_opt_point(const ductile_engine *e, int p, dt_shape_state *st)
{
    const ductile_network *net = e->net;
    for (int i = 0; i < net->n_inputs; i++) {
        const ductile_tensor *t = net->inputs[i];
        dt_view *v = &st->views[t->index];
        const dt_profile_input *pi = dt_profile_get(&e->profiles[p], t->name);
        v->rank = pi ? pi->rank : t->rank;
        memcpy(v->dims, pi ? pi->opt : t->dims, sizeof(int64_t) * (size_t)v->rank);
    }
    dt_exec ex = {.profile = p};
    DT_TRY(dt_check_shared_symbols(e, st->views));
    return dt_shape_pass(e, st, &ex);
}

ductile_status dt_pass_tactics(const ductile_engine *e, ductile_network *net, int threads,
                               ductile_progress_fn progress, void *user, bool *changed)
{
    *changed = false;
    if (!e->backend->tactics || e->n_profiles < 1) return DUCTILE_OK;
    const dt_plan *plan = &e->plan;
    if (plan->n_layers != net->n_layers)
        return dt_fail(DUCTILE_ERR_INTERNAL, "tactics: the engine has %d layers, the network %d", plan->n_layers, net->n_layers);
    int *choice = dt_calloc((size_t)plan->n_layers * (size_t)e->n_profiles + 1, sizeof *choice);
    dt_pool *pool = NULL;
    ductile_status s = choice ? dt_pool_create(threads, &pool)
                              : dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory choosing tactics");
    for (int p = 0; p < e->n_profiles && !s; p++) {
        dt_shape_state st;
        s = dt_shape_state_init(&st, e);
        if (s) break;
        /* A profile whose opt point cannot be evaluated keeps the heuristic (0); running
         * out of memory there is a failure of the build, not a property of the profile. */
        ductile_status opt = dt_opt_point(e, p, &st);
        if (opt == DUCTILE_ERR_OUT_OF_MEMORY) s = dt_fail_prefix(opt, "choosing tactics for profile %d", p);
        if (opt == DUCTILE_OK) {
            int total = 0, done = 0;
            for (int l = 0; l < plan->n_layers; l++) total += !plan->layers[l].value;
            for (int l = 0; l < plan->n_layers && !s; l++) {
                const dt_plan_layer *pl = &plan->layers[l];
                if (pl->value) continue;
                s = dt_time_layer(e, pl, &st, pool, p, &choice[l * e->n_profiles + p]);
                *changed |= choice[l * e->n_profiles + p] != 0;
                if (!s && progress) progress(user, p, e->n_profiles, ++done, total);
            }
        }
        dt_shape_state_free(&st, e);
    }
    for (int l = 0; l < plan->n_layers && !s && *changed; l++) {
        int64_t *ids = dt_arena_alloc(&net->arena, sizeof *ids * (size_t)e->n_profiles);
        bool any = false;
        if (!ids) {
            s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory choosing tactics");
            break;
        }
        for (int p = 0; p < e->n_profiles; p++) any |= (ids[p] = choice[l * e->n_profiles + p]) != 0;
        if (!any) continue;
        if (strcmp(net->layers[l]->name, plan->layers[l].layer->name))
            s = dt_fail(DUCTILE_ERR_INTERNAL, "tactics: layer %d is '%s' in the engine, '%s' in the network", l,
                        plan->layers[l].layer->name, net->layers[l]->name);
        dt_attr a = {.name = "tactic", .type = DT_ATTR_INTS, .n = e->n_profiles, .ints = ids};
        if (!s) s = dt_layer_add_attrs(net, net->layers[l], &a, 1);
    }
    dt_pool_free(pool);
    dt_free(choice);
    return s;
}
