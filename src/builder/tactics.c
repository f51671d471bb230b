/* Tactic selection: for each layer where the backend offers more than one tactic, run each on
 * random data at every profile's opt shapes (inputs and dims from the shape pass of the built
 * engine; the layer's real weights), and keep the fastest: median of a few runs after a
 * warm-up. Only layers with a choice are timed, so a build costs a few runs of the layers
 * that matter, not of the network.
 *
 * A device backend (host_memory false) is timed the way it runs: buffers from its alloc
 * (random data copied in), constants from the engine's device copies, the backend's
 * per-context state, its default stream (NULL), and the host clock between two syncs around
 * a batch of runs, so a time per run is the larger of the kernels' time and the host's cost
 * of queueing them. A tactic that does not apply at these shapes (DUCTILE_ERR_UNSUPPORTED)
 * is skipped. */
#include "builder/optimize.h"
#include "core/alloc.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "runtime/engine_impl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* DT_TACTIC_MAX: ids a backend may offer per layer; a device times up to DT_TACTIC_BATCH runs
 * between syncs (one launch alone is mostly launch latency). */
enum { DT_TACTIC_REPS = 3, DT_TACTIC_DEVICE_REPS = 5, DT_TACTIC_BATCH = 10, DT_TACTIC_MAX = 16 };
#define DT_TACTIC_BATCH_S 200e-6

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

/* What the timing runs of one layer own: buffers of the backend and host staging. */
typedef struct dt_tactic_bufs {
    const dt_backend *be;
    void *p[16];
    int n;
} dt_tactic_bufs;

static ductile_status dt_tactic_alloc(dt_tactic_bufs *b, size_t bytes, const char *node, void **out)
{
    void *p = b->n < 16 ? b->be->alloc(bytes) : NULL;
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) timing node '%s'", bytes, node);
    b->p[b->n++] = p;
    *out = p;
    return DUCTILE_OK;
}

/* A backend buffer holding `bytes` of host data (random when src is NULL). */
static ductile_status dt_tactic_fill(dt_tactic_bufs *b, size_t bytes, const void *src, const char *node, void **out)
{
    DT_TRY(dt_tactic_alloc(b, bytes, node, out));
    if (!bytes) return DUCTILE_OK;
    bool host = b->be->host_memory;
    void *h = host && !src ? *out : dt_malloc(bytes);
    if (!h) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) timing node '%s'", bytes, node);
    if (src) memcpy(h, src, bytes);
    else
        /* Small values of both signs: no denormals, no overflow, every activation branch. */
        for (size_t i = 0; i < bytes / sizeof(float); i++)
            ((float *)h)[i] = (float)((i * 2654435761u) % 2001) * 1e-3f - 1.0f;
    ductile_status s = DUCTILE_OK;
    if (h != *out) {
        s = b->be->copy ? b->be->copy(*out, h, bytes, NULL) : (memcpy(*out, h, bytes), DUCTILE_OK);
        if (!s && b->be->sync) s = b->be->sync(NULL);
        dt_free(h);
    }
    return s;
}

/* Seconds per run of one tactic: the median over reps of a batch of runs between syncs. On a
 * device, the batch is sized from a single timed run (about DT_TACTIC_BATCH_S of work, at
 * most DT_TACTIC_BATCH runs), and a tactic whose single run already takes over four times
 * the best so far (best > 0) is not timed further: slow algorithms at large shapes would
 * otherwise make the build take minutes. */
static ductile_status dt_time_tactic(const dt_backend *be, const dt_plan_layer *pl, const dt_view *in, dt_view *out,
                                     dt_exec *ex, double best, double *t)
{
    bool device = !be->host_memory;
    int reps = device ? DT_TACTIC_DEVICE_REPS : DT_TACTIC_REPS, batch = 1;
    double times[DT_TACTIC_DEVICE_REPS];
    /* The warm-up run makes what the tactic caches (plans, workspace) and its errors show. */
    DT_TRY(dt_plan_layer_run(pl, in, out, ex));
    if (be->sync) DT_TRY(be->sync(ex->stream));
    if (device) {
        double t0 = dt_now();
        DT_TRY(dt_plan_layer_run(pl, in, out, ex));
        if (be->sync) DT_TRY(be->sync(ex->stream));
        double one = dt_now() - t0;
        if (best > 0 && one > 4 * best) {
            *t = one;
            return DUCTILE_OK;
        }
        batch = one > 0 ? (int)(DT_TACTIC_BATCH_S / one) : DT_TACTIC_BATCH;
        batch = batch < 1 ? 1 : batch > DT_TACTIC_BATCH ? DT_TACTIC_BATCH : batch;
    }
    for (int r = 0; r < reps; r++) {
        double t0 = dt_now();
        for (int k = 0; k < batch; k++) DT_TRY(dt_plan_layer_run(pl, in, out, ex));
        if (be->sync) DT_TRY(be->sync(ex->stream));
        times[r] = (dt_now() - t0) / batch;
    }
    qsort(times, (size_t)reps, sizeof times[0], dt_cmp_double);
    *t = times[reps / 2];
    return DUCTILE_OK;
}

/* Times the tactics the backend offers for one layer at the shapes of st; *best: the fastest
 * (0: nothing to choose). state: the backend's per-context state (NULL on the CPU). */
static ductile_status dt_time_layer(const ductile_engine *e, const dt_plan_layer *pl, const dt_shape_state *st,
                                    dt_pool *pool, void *state, int profile, int *best)
{
    const ductile_layer *L = pl->layer;
    const dt_backend *be = e->backend;
    dt_view in[8], out[4], hin[8];
    dt_tactic_bufs bufs = {.be = be};
    int ids[DT_TACTIC_MAX];
    ductile_status s = DUCTILE_OK;
    *best = 0;
    /* A device backend's fallback layers run the host's kernel: nothing of the device's to time. */
    if (L->n_in > 8 || L->n_out > 4 || pl->fallback) return DUCTILE_OK;
    for (int k = 0; k < L->n_in; k++) {
        if (!L->in[k]) {
            memset(&in[k], 0, sizeof in[k]);
            in[k].rank = -1;
        } else {
            in[k] = st->views[L->in[k]->index];
        }
        hin[k] = in[k];
    }
    int n = be->tactics(L, in, ids, DT_TACTIC_MAX);
    if (n < 2) return DUCTILE_OK;
    for (int k = 0; k < L->n_in + L->n_out && !s; k++) {
        dt_view *v = k < L->n_in ? &in[k] : &out[k - L->n_in];
        if (k >= L->n_in) *v = st->views[L->out[k - L->n_in]->index];
        if (v->rank < 0) continue;
        size_t bytes;
        if (!dt_view_bytes(v, &bytes)) return dt_fail(DUCTILE_ERR_SHAPE, "node '%s': a tensor is too large to time", L->name);
        int t = k < L->n_in ? L->in[k]->index : -1;
        if (t >= 0 && v->data && !be->host_memory) {
            /* Constants: the engine's device copy; values of the shape pass: a copy of them. */
            if (e->plan.kind[t] == DT_TENSOR_CONSTANT && e->dconst && e->dconst[t]) v->data = e->dconst[t];
            else s = dt_tactic_fill(&bufs, bytes, v->data, L->name, &v->data);
        } else if (!v->data || k >= L->n_in) {
            s = dt_tactic_fill(&bufs, bytes, NULL, L->name, &v->data);
        }
    }
    /* Scratch as the context would give it (every tactic runs within the layer's size). */
    size_t scratch_bytes = 0;
    void *scratch = NULL;
    if (!s) s = dt_plan_layer_scratch(pl, in, out, dt_pool_threads(pool), &scratch_bytes);
    if (!s && scratch_bytes) s = dt_tactic_alloc(&bufs, scratch_bytes, L->name, &scratch);
    double best_t = 0;
    for (int t = 0; t < n && !s; t++) {
        dt_exec ex = {.pool = pool, .profile = profile, .tactic = ids[t], .state = state, .host_in = hin,
                      .scratch = scratch, .scratch_bytes = scratch_bytes};
        double time;
        s = dt_time_tactic(be, pl, in, out, &ex, *best ? best_t : 0, &time);
        if (s == DUCTILE_ERR_UNSUPPORTED) {
            s = DUCTILE_OK; /* not at these shapes */
            continue;
        }
        if (!s && (!*best || time < best_t)) {
            best_t = time;
            *best = ids[t];
        }
    }
    if (be->sync) be->sync(NULL);
    for (int i = 0; i < bufs.n; i++) be->release(bufs.p[i]);
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

/* Sets the layer's `tactic`: replaces the one a network built before may carry (the
 * first of a name is the one read), else adds it. */
static ductile_status dt_set_tactic_attr(ductile_network *net, ductile_layer *L, const dt_attr *a)
{
    for (int i = 0; i < L->n_attr; i++) {
        if (strcmp(L->attrs[i].name, "tactic")) continue;
        dt_attr *copy = dt_arena_alloc(&net->arena, sizeof *copy * (size_t)L->n_attr);
        if (!copy) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory choosing tactics");
        memcpy(copy, L->attrs, sizeof *copy * (size_t)L->n_attr);
        copy[i] = *a;
        L->attrs = copy;
        return DUCTILE_OK;
    }
    return dt_layer_add_attrs(net, L, a, 1);
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
    void *state = NULL;
    ductile_status s = choice ? dt_pool_create(threads, &pool)
                              : dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory choosing tactics");
    if (!s && e->backend->state_create) s = e->backend->state_create(&state);
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
                s = dt_time_layer(e, pl, &st, pool, state, p, &choice[l * e->n_profiles + p]);
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
        if (!s) s = dt_set_tactic_attr(net, net->layers[l], &a);
    }
    if (state) e->backend->state_free(state);
    dt_pool_free(pool);
    dt_free(choice);
    return s;
}
