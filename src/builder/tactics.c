/* Tactic selection: for each layer where the backend offers more than one tactic, run each on
 * random data at every profile's min, opt and max shapes (inputs and dims from the shape pass
 * of the built engine at each point; the layer's real weights), and keep the fastest per
 * point: median of a few runs after a warm-up. Only layers with a choice are timed, so a
 * build costs a few runs of the layers that matter, not of the network. The choices go into
 * the layer's `tactic` (backend/tactic.h: profiles x DT_TACTIC_POINTS ids, min/opt/max), and
 * a context runs those of the point nearest its shapes (runtime/points.h).
 *
 * Opt is timed first; min and max take opt's choice where they have opt's shapes (not timed
 * twice), where their shape pass fails, where a run would take over dt_tactic_point_s by
 * opt's time scaled by the layer's activations (a CPU build at batch 128 would otherwise take
 * minutes), and where a device backend cannot allocate the layer's buffers at that point
 * (its memory is the device's, shared with whatever else runs there). The workspace limit
 * needs no check here: the builder refused profiles whose activations at min, opt or max
 * exceed it (profile_check.c), and one layer's tensors are fewer. A host allocation that
 * fails fails the build, as everywhere (test_alloc: no failure is swallowed).
 *
 * A device backend (host_memory false) is timed the way it runs: buffers from its alloc
 * (random data copied in), constants from the engine's device copies, the backend's
 * per-context state and its default stream (NULL). Where it records runs (CUDA graphs, as a
 * device context replays a network) and marks device time, a batch of runs is recorded and
 * its replays timed by the device's marks: what the engine's graph pays per run, the kernels
 * and the gaps between them, not the host's cost of launching each (dt_time_replay). Else,
 * and for runs that cannot be recorded, the host clock between two syncs around a batch of
 * runs, so a time per run is the larger of the kernels' time and the host's cost of queueing
 * them. A tactic that does not apply at these shapes (DUCTILE_ERR_UNSUPPORTED) is skipped. */
#include "builder/optimize.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "backend/tactic.h"
#include "runtime/engine_impl.h"
#include "runtime/points.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* DT_TACTIC_MAX: ids a backend may offer per layer; a device times up to DT_TACTIC_BATCH runs
 * between syncs (one launch alone is mostly launch latency), or DT_TACTIC_GRAPH_BATCH recorded
 * runs per replay (enough work that the host queues the next replay before this one ends). */
enum { DT_TACTIC_REPS = 3, DT_TACTIC_DEVICE_REPS = 5, DT_TACTIC_BATCH = 10, DT_TACTIC_GRAPH_BATCH = 32, DT_TACTIC_MAX = 24 };
_Static_assert((int)DT_TACTIC_DEVICE_REPS < (int)DT_TIMER_MARKS, "a replay's marks: reps + 1");
#define DT_TACTIC_BATCH_S 200e-6
/* What the host's queueing may add to the device time of one replay of a single short run. */
#define DT_TACTIC_QUEUE_S 20e-6
/* A point (min, max) whose layer run is estimated to take longer is not timed: opt's choice. */
double dt_tactic_point_s = 20e-3;

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
    bool device_full;   /* a device backend's alloc failed (host allocations fail the build) */
} dt_tactic_bufs;

static ductile_status dt_tactic_alloc(dt_tactic_bufs *b, size_t bytes, const char *node, void **out)
{
    void *p = b->n < 16 ? b->be->alloc(bytes) : NULL;
    b->device_full |= !p && b->n < 16 && !b->be->host_memory;
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

/* Records `runs` runs of the tactic (the backend's capture, on its own stream) into *graph.
 * false: the runs could not be recorded (a kernel that waits on the host or allocates; the
 * runtime then never replays that network either); *graph NULL. */
static bool dt_record_runs(const dt_backend *be, const dt_plan_layer *pl, const dt_view *in, dt_view *out, dt_exec *ex,
                           int runs, void **graph)
{
    void *cap = NULL, *stream = ex->stream;
    *graph = NULL;
    if (be->capture_begin(ex->state, stream, &cap)) return false;
    ex->stream = cap;
    ductile_status s = DUCTILE_OK;
    for (int k = 0; k < runs && !s; k++) s = dt_plan_layer_run(pl, in, out, ex);
    ex->stream = stream;
    ductile_status e = be->capture_end(ex->state, graph);
    if (!s && !e && *graph) return true;
    if (*graph) be->graph_free(*graph);
    *graph = NULL;
    return false;
}

/* Seconds of `reps` replays of graph (times[0..reps)), by the device's marks between them:
 * one launch first (it uploads the record), then each launch followed by a mark, queued
 * back to back, so the host queues ahead while the device replays and each interval is one
 * replay's device time (plus the host's queueing only where a replay is shorter than it). */
static ductile_status dt_replay_seconds(const dt_backend *be, void *state, void *stream, void *graph, int reps,
                                        double *times)
{
    DT_TRY(be->graph_launch(graph, stream));
    DT_TRY(be->timer_mark(state, stream, 0));
    for (int r = 0; r < reps; r++) {
        DT_TRY(be->graph_launch(graph, stream));
        DT_TRY(be->timer_mark(state, stream, r + 1));
    }
    for (int r = 0; r < reps; r++) DT_TRY(be->timer_seconds(state, r, r + 1, &times[r]));
    return DUCTILE_OK;
}

/* A device backend's time per run as the engine's CUDA graph pays it: the device's time of
 * a replay of recorded runs, without the host's cost of launching each (which a replay does
 * not have, and which misranked small kernels when they were timed as plain launches). One
 * run recorded and replayed first: its time sizes the batch (about DT_TACTIC_BATCH_S of
 * work, at most DT_TACTIC_GRAPH_BATCH runs) and gives the early-out of a tactic slower than
 * four times the best (plus DT_TACTIC_QUEUE_S: a replay of one short run may include the
 * host's queueing). *recorded false: the runs could not be recorded; nothing timed. */
static ductile_status dt_time_replay(const dt_backend *be, const dt_plan_layer *pl, const dt_view *in, dt_view *out,
                                     dt_exec *ex, double best, double *t, bool *recorded)
{
    double times[DT_TACTIC_DEVICE_REPS], one;
    void *graph = NULL;
    *recorded = dt_record_runs(be, pl, in, out, ex, 1, &graph);
    if (!*recorded) return DUCTILE_OK;
    ductile_status s = dt_replay_seconds(be, ex->state, ex->stream, graph, 1, &one);
    be->graph_free(graph);
    DT_TRY(s);
    if (best > 0 && one > 4 * best + DT_TACTIC_QUEUE_S) {
        *t = one;
        return DUCTILE_OK;
    }
    int batch = one > 0 ? (int)(DT_TACTIC_BATCH_S / one) : DT_TACTIC_GRAPH_BATCH;
    batch = batch < 1 ? 1 : batch > DT_TACTIC_GRAPH_BATCH ? DT_TACTIC_GRAPH_BATCH : batch;
    *recorded = dt_record_runs(be, pl, in, out, ex, batch, &graph);
    if (!*recorded) return DUCTILE_OK;
    s = dt_replay_seconds(be, ex->state, ex->stream, graph, DT_TACTIC_DEVICE_REPS, times);
    be->graph_free(graph);
    DT_TRY(s);
    qsort(times, DT_TACTIC_DEVICE_REPS, sizeof times[0], dt_cmp_double);
    *t = times[DT_TACTIC_DEVICE_REPS / 2] / batch;
    return DUCTILE_OK;
}

/* Seconds per run of one tactic: the median over reps of a batch of runs between syncs. A
 * device backend that records runs and marks device time is timed by dt_time_replay; one
 * that does not (or runs that cannot be recorded) by the host clock: the batch is sized from
 * a single timed run (about DT_TACTIC_BATCH_S of work, at most DT_TACTIC_BATCH runs), and a
 * tactic whose single run already takes over four times the best so far (best > 0) is not
 * timed further: slow algorithms at large shapes would otherwise make the build take
 * minutes. */
/* DUCTILE_TACTIC_TIMING=replay: time device tactics as replays of recorded runs. Off by
 * default until a GPU run checks it (session 10: the device timer passed test_cuda_timer on
 * the H200, the recorded-replay timing itself never ran there); the host clock around plain
 * launches meanwhile, as before. */
static bool dt_tactic_replay_timing(void)
{
    const char *v = getenv("DUCTILE_TACTIC_TIMING");
    return !v || strcmp(v, "wall");
}

/* DUCTILE_TACTIC_LOG=1: each tactic's time per layer and point on stderr (for developers:
 * why the timer picked what it did). */
bool dt_tactic_log(void)
{
    const char *v = getenv("DUCTILE_TACTIC_LOG");
    return v && !strcmp(v, "1");
}

/* DUCTILE_TACTIC_PREFER=<id>: a layer offered that tactic takes it wherever it runs, whatever
 * the times (tests that need a tactic chosen; developers comparing one); 0 where unset or
 * not among ids[0..n). A list of <id> or <id>@<point> (0 min, 1 opt, 2 max), comma
 * separated: the first entry that applies at this point and is offered wins (tests of a
 * choice made at one point only: "9@0,4"). */
static int dt_tactic_prefer(const int *ids, int n, int point)
{
    const char *v = getenv("DUCTILE_TACTIC_PREFER");
    while (v && *v) {
        char *end;
        long id = strtol(v, &end, 10), at = -1;
        if (*end == '@') at = strtol(end + 1, &end, 10);
        for (int i = 0; id > 0 && (at < 0 || at == point) && i < n; i++)
            if (ids[i] == id) return (int)id;
        v = *end == ',' ? end + 1 : NULL;
    }
    return 0;
}

static ductile_status dt_time_tactic(const dt_backend *be, const dt_plan_layer *pl, const dt_view *in, dt_view *out,
                                     dt_exec *ex, double best, double *t)
{
    bool device = !be->host_memory;
    int reps = device ? DT_TACTIC_DEVICE_REPS : DT_TACTIC_REPS, batch = 1;
    double times[DT_TACTIC_DEVICE_REPS];
    /* The warm-up run makes what the tactic caches (plans, workspace) and its errors show:
     * what cannot be recorded is made before recording. */
    DT_TRY(dt_plan_layer_run(pl, in, out, ex));
    if (be->sync) DT_TRY(be->sync(ex->stream));
    if (device && be->timer_mark && be->capture_begin && ex->state && dt_tactic_replay_timing()) {
        bool recorded;
        DT_TRY(dt_time_replay(be, pl, in, out, ex, best, t, &recorded));
        if (recorded) return DUCTILE_OK;
    }
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

/* A host backend's tactics for one layer: each run once (a warm-up; one that does not apply
 * at these shapes, DUCTILE_ERR_UNSUPPORTED, drops out), then timed in rounds, one run of each
 * tactic per round in an order rotating round by round, and ranked by their fastest run. On a
 * shared machine other processes only ever add to a run's time, and in bursts: the minimum is
 * the run that met none, and interleaving gives every tactic the same chances of meeting one.
 * Session 11: a median of 3 consecutive runs per tactic, at load 5 on 2 cores, picked
 * resnet50's 56x56 3x3 conv's padded GEMM (2.0 ms) over its Winograd (1.0 ms). Rounds:
 * DT_TACTIC_HOST_ROUNDS, more (to DT_TACTIC_HOST_MAX_ROUNDS) while a round costs under
 * DT_TACTIC_HOST_ROUND_S. */
enum { DT_TACTIC_HOST_ROUNDS = 3, DT_TACTIC_HOST_MAX_ROUNDS = 7 };
#define DT_TACTIC_HOST_ROUND_S 5e-3

static ductile_status dt_time_host(const dt_plan_layer *pl, const dt_view *in, dt_view *out, dt_pool *pool,
                                   void *state, int profile, int point, const dt_view *hin, void *scratch,
                                   size_t scratch_bytes, const int *ids, int n, int *best, double *best_t)
{
    double t_min[DT_TACTIC_MAX];
    bool live[DT_TACTIC_MAX];
    dt_exec ex[DT_TACTIC_MAX];
    for (int t = 0; t < n; t++) {
        ex[t] = (dt_exec){.pool = pool, .profile = profile, .point = point, .tactic = ids[t], .state = state,
                          .host_in = hin, .scratch = scratch, .scratch_bytes = scratch_bytes};
        ductile_status s = dt_plan_layer_run(pl, in, out, &ex[t]);
        if (s && s != DUCTILE_ERR_UNSUPPORTED) return s;
        live[t] = !s;
        t_min[t] = 0;
    }
    for (int r = 0; r < DT_TACTIC_HOST_MAX_ROUNDS; r++) {
        double round = 0;
        for (int i = 0; i < n; i++) {
            int t = (i + r) % n;
            if (!live[t]) continue;
            double t0 = dt_now();
            DT_TRY(dt_plan_layer_run(pl, in, out, &ex[t]));
            double dt = dt_now() - t0;
            round += dt;
            if (r == 0 || dt < t_min[t]) t_min[t] = dt;
        }
        if (r + 1 >= DT_TACTIC_HOST_ROUNDS && round >= DT_TACTIC_HOST_ROUND_S) break;
    }
    *best = 0;
    for (int t = 0; t < n; t++) {
        if (live[t] && dt_tactic_log())
            fprintf(stderr, "tactic: node '%s' profile %d point %d tactic %d: %.2f us (host, best of rounds)\n",
                    pl->layer->name, profile, point, ids[t], t_min[t] * 1e6);
        if (live[t] && (!*best || t_min[t] < *best_t)) {
            *best = ids[t];
            *best_t = t_min[t];
        }
    }
    return DUCTILE_OK;
}

/* Times the tactics the backend offers for one layer at the shapes of st; *best: the fastest
 * (0: nothing to choose), *best_s its seconds per run. state: the backend's per-context state
 * (NULL on the CPU). *device_full: failed (out of memory) because a device backend's memory
 * could not hold the layer's buffers at these shapes. */
static ductile_status dt_time_layer(const ductile_engine *e, const dt_plan_layer *pl, const dt_shape_state *st,
                                    dt_pool *pool, void *state, int profile, int point, int *best, double *best_s,
                                    bool *device_full)
{
    const ductile_layer *L = pl->layer;
    const dt_backend *be = e->backend;
    dt_view in[8], out[4], hin[8];
    dt_tactic_bufs bufs = {.be = be};
    int ids[DT_TACTIC_MAX];
    ductile_status s = DUCTILE_OK;
    *best = 0;
    *best_s = 0;
    *device_full = false;
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
    int prefer = dt_tactic_prefer(ids, n, point);
    if (prefer) ids[0] = prefer, n = 1;
    else if (n < 2) return DUCTILE_OK;
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
    if (be->host_memory && !s) {
        s = dt_time_host(pl, in, out, pool, state, profile, point, hin, scratch, scratch_bytes, ids, n, best, &best_t);
        n = 0;
    }
    for (int t = 0; t < n && !s; t++) {
        dt_exec ex = {.pool = pool, .profile = profile, .point = point, .tactic = ids[t], .state = state, .host_in = hin,
                      .scratch = scratch, .scratch_bytes = scratch_bytes};
        double time;
        s = dt_time_tactic(be, pl, in, out, &ex, *best ? best_t : 0, &time);
        if (s == DUCTILE_ERR_UNSUPPORTED) {
            s = DUCTILE_OK; /* not at these shapes */
            continue;
        }
        if (!s && dt_tactic_log()) fprintf(stderr, "tactic: node '%s' profile %d point %d tactic %d: %.2f us\n", L->name, profile, point, ids[t], time * 1e6);
        if (!s && (!*best || time < best_t)) {
            best_t = time;
            *best = ids[t];
        }
    }
    if (be->sync) be->sync(NULL);
    for (int i = 0; i < bufs.n; i++) be->release(bufs.p[i]);
    *best_s = best_t;
    *device_full = bufs.device_full;
    if (s) return dt_fail_prefix(s, "timing node '%s' (%s)", L->name, L->op_type);
    return DUCTILE_OK;
}

/* The shape pass at profile p's shapes at `point` (fixed inputs at their declared dims). */
static ductile_status dt_point_pass(const ductile_engine *e, int p, int point, dt_shape_state *st)
{
    dt_point_views(e, p, point, st->views);
    dt_exec ex = {.profile = p, .point = point};
    DT_TRY(dt_check_shared_symbols(e, st->views));
    return dt_shape_pass(e, st, &ex);
}

/* Elements of the layer's activations (inputs and outputs but its constants, whose size no
 * shape changes) at the shapes of st: what the work of a run scales with. */
static double dt_layer_elements(const ductile_engine *e, const dt_plan_layer *pl, const dt_shape_state *st)
{
    const ductile_layer *L = pl->layer;
    double n = 0;
    for (int k = 0; k < L->n_in + L->n_out; k++) {
        const ductile_tensor *t = k < L->n_in ? L->in[k] : L->out[k - L->n_in];
        if (!t || e->plan.kind[t->index] == DT_TENSOR_CONSTANT) continue;
        const dt_view *v = &st->views[t->index];
        double c = 1;
        for (int d = 0; d < v->rank; d++) c *= (double)v->dims[d];
        n += c;
    }
    return n;
}

/* Sets attribute a on L: replaces one of that name a network built before may carry (the
 * first of a name is the one read), else adds it. */
static ductile_status dt_set_attr(ductile_network *net, ductile_layer *L, const dt_attr *a)
{
    for (int i = 0; i < L->n_attr; i++) {
        if (strcmp(L->attrs[i].name, a->name)) continue;
        dt_attr *copy = dt_arena_alloc(&net->arena, sizeof *copy * (size_t)L->n_attr);
        if (!copy) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory choosing tactics");
        memcpy(copy, L->attrs, sizeof *copy * (size_t)L->n_attr);
        copy[i] = *a;
        L->attrs = copy;
        return DUCTILE_OK;
    }
    return dt_layer_add_attrs(net, L, a, 1);
}

/* The points in the order they are timed: opt first, whose choice the others may take. */
static const int dt_points[DT_TACTIC_POINTS] = {DUCTILE_PROFILE_OPT, DUCTILE_PROFILE_MIN, DUCTILE_PROFILE_MAX};

/* One profile: the shape pass at each distinct point, then every layer timed at each.
 * choice[l * DT_TACTIC_POINTS + point]: the layer's id per point. */
static ductile_status dt_tactics_profile(const ductile_engine *e, int p, dt_pool *pool, void *state,
                                         ductile_progress_fn progress, void *user, int *choice)
{
    const dt_plan *plan = &e->plan;
    dt_shape_state st[DT_TACTIC_POINTS];
    bool live[DT_TACTIC_POINTS] = {false}, ok[DT_TACTIC_POINTS] = {false};
    int same[DT_TACTIC_POINTS]; /* the point whose shapes (and so choices) this one shares */
    ductile_status s = DUCTILE_OK;
    for (int k = 0; k < DT_TACTIC_POINTS && !s; k++) {
        int pt = dt_points[k];
        same[pt] = pt;
        for (int j = 0; j < k; j++)
            if (dt_points_same(e, p, dt_points[j], pt)) {
                same[pt] = dt_points[j];
                break;
            }
        if (same[pt] != pt) continue;
        s = dt_shape_state_init(&st[pt], e);
        if (s) break;
        live[pt] = true;
        /* A point whose shapes cannot be evaluated keeps opt's choice (opt: the heuristic,
         * 0); running out of memory there is a failure of the build, not a property of the
         * profile. */
        ductile_status ps = dt_point_pass(e, p, pt, &st[pt]);
        if (ps == DUCTILE_ERR_OUT_OF_MEMORY) s = dt_fail_prefix(ps, "choosing tactics for profile %d", p);
        ok[pt] = ps == DUCTILE_OK;
    }
    int total = 0, done = 0;
    for (int l = 0; l < plan->n_layers; l++) total += !plan->layers[l].value;
    for (int l = 0; l < plan->n_layers && !s; l++) {
        const dt_plan_layer *pl = &plan->layers[l];
        if (pl->value) continue;
        int *c = &choice[l * DT_TACTIC_POINTS];
        double opt_s = 0, opt_n = 0;
        for (int k = 0; k < DT_TACTIC_POINTS && !s; k++) {
            int pt = dt_points[k];
            c[pt] = c[DUCTILE_PROFILE_OPT];
            if (same[pt] != pt) {
                c[pt] = c[same[pt]];
                continue;
            }
            if (!ok[pt]) continue;
            double n = dt_layer_elements(e, pl, &st[pt]);
            if (pt == DUCTILE_PROFILE_OPT) opt_n = n;
            else if (opt_s > 0 && opt_n > 0 && opt_s * (n / opt_n) > dt_tactic_point_s) continue;
            double t;
            int best;
            bool full;
            s = dt_time_layer(e, pl, &st[pt], pool, state, p, pt, &best, &t, &full);
            if (s == DUCTILE_ERR_OUT_OF_MEMORY && full && pt != DUCTILE_PROFILE_OPT) {
                s = DUCTILE_OK; /* the device cannot hold this point's buffers: opt's choice */
                continue;
            }
            if (s) break;
            c[pt] = best;
            if (pt == DUCTILE_PROFILE_OPT) opt_s = t;
        }
        if (!s && progress) progress(user, p, e->n_profiles, ++done, total);
    }
    for (int pt = 0; pt < DT_TACTIC_POINTS; pt++)
        if (live[pt]) dt_shape_state_free(&st[pt], e);
    return s;
}

ductile_status dt_pass_tactics(const ductile_engine *e, ductile_network *net, int threads,
                               ductile_progress_fn progress, void *user, bool *changed)
{
    *changed = false;
    if (!e->backend->tactics || e->n_profiles < 1) return DUCTILE_OK;
    const dt_plan *plan = &e->plan;
    if (plan->n_layers != net->n_layers)
        return dt_fail(DUCTILE_ERR_INTERNAL, "tactics: the engine has %d layers, the network %d", plan->n_layers, net->n_layers);
    /* choice[(p * n_layers + l) * DT_TACTIC_POINTS + point] */
    size_t per = (size_t)plan->n_layers * DT_TACTIC_POINTS, count = 0;
    int *choice = dt_mul_size(per, (size_t)e->n_profiles, &count) ? dt_calloc(count + 1, sizeof *choice) : NULL;
    dt_pool *pool = NULL;
    void *state = NULL;
    ductile_status s = choice ? dt_pool_create(threads, &pool)
                              : dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory choosing tactics");
    if (!s && e->backend->state_create) s = e->backend->state_create(&state);
    for (int p = 0; p < e->n_profiles && !s; p++)
        s = dt_tactics_profile(e, p, pool, state, progress, user, choice + (size_t)p * per);
    for (size_t i = 0; i < count && !s; i++) *changed |= choice[i] != 0;
    int np = e->n_profiles;
    for (int l = 0; l < plan->n_layers && !s && *changed; l++) {
        int64_t *ids = dt_arena_alloc(&net->arena, sizeof *ids * (size_t)np * DT_TACTIC_POINTS);
        bool any = false;
        if (!ids) {
            s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory choosing tactics");
            break;
        }
        for (int p = 0; p < np; p++)
            for (int pt = 0; pt < DT_TACTIC_POINTS; pt++)
                any |= (ids[p * DT_TACTIC_POINTS + pt] = choice[(size_t)p * per + (size_t)l * DT_TACTIC_POINTS + pt]) != 0;
        if (!any) continue;
        if (strcmp(net->layers[l]->name, plan->layers[l].layer->name))
            s = dt_fail(DUCTILE_ERR_INTERNAL, "tactics: layer %d is '%s' in the engine, '%s' in the network", l,
                        plan->layers[l].layer->name, net->layers[l]->name);
        dt_attr a = {.name = "tactic", .type = DT_ATTR_INTS, .n = (int64_t)np * DT_TACTIC_POINTS, .ints = ids};
        dt_attr b = {.name = "tactic_points", .type = DT_ATTR_INT, .i = DT_TACTIC_POINTS};
        if (!s) s = dt_set_attr(net, net->layers[l], &a);
        if (!s) s = dt_set_attr(net, net->layers[l], &b);
    }
    if (state) e->backend->state_free(state);
    dt_pool_free(pool);
    dt_free(choice);
    return s;
}
