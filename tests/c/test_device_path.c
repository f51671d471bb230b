/* The runtime's device path (buffers in a backend's own memory, per-layer host fallback with
 * copies, device copies of constants and shape-pass values, caller buffers in host memory
 * staged through the context's own) checked without a GPU: a fake device backend whose
 * "device memory" is host memory it tracks, whose kernels are the CPU's behind a check that
 * every pointer they get is its own memory, and which lacks half the ops (those run as
 * fallbacks). Outputs must equal the CPU engine's bit for bit: the same kernels run on the
 * same data, only the memory and the copies differ. Also checks the fallback count and the
 * "cpu fallback" placement of --dumpLayerInfo.
 *
 * Recorded runs (CUDA graphs, runtime/graphs.h): the fake records a run as the list of its
 * launches (layer, views, exec) and a graph launch runs the list, so a replay that used the
 * wrong record (another shape, an old buffer) writes the wrong output and the comparison
 * with the CPU engine fails. check_graphs pins when runs are recorded and replayed, the keys,
 * the LRU bound, the switch, failed recordings, and that nothing leaks; check_memory the
 * context's memory report against the fake's own count of its blocks. The fake also marks
 * "device" time (dt_backend.timer_mark: the host clock, as its launches run when queued), so
 * check_tactics' builds time tactics as a graph replays (records, replays between marks) and,
 * with recording made to fail, by the host clock: the same choices either way.
 *
 * Eager engines (If, Loop/Scan, sequences, StringSplit, NonZero: eager_models.h) run on the
 * host on the fake, all of them, device inputs copied in; check_eager compares them with the
 * CPU engine, and check_string_io a string engine that is not eager (string I/O in host
 * memory). tests/conformance/fake_device.c is a simpler fake for the ONNX node tests. */
#include "testutil.h"
#include "eager_models.h"

#include "ductile.h"
#include "backend/backend.h"
#include "backend/tactic.h"
#include "builder/engine_write.h"
#include "runtime/engine_impl.h"
#include "runtime/memplan.h"
#include "builder/optimize.h"
#include "core/alloc.h"
#include "core/status.h"
#include "graph/network.h"
#include "onnx_writer.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the fake device ---- */

enum { MAX_BLOCKS = 4096 };
static struct { char *p; size_t n; } blocks[MAX_BLOCKS];
static int n_blocks, bad_pointers, copies, syncs;
static size_t fake_alloc_limit; /* > 0: larger allocations fail (the device is full) */

static void *fake_alloc(size_t bytes)
{
    if (n_blocks == MAX_BLOCKS || (fake_alloc_limit && bytes > fake_alloc_limit)) return NULL;
    char *p = malloc(bytes ? bytes : 1);
    if (!p) return NULL;
    memset(p, 0xff, bytes); /* NaN floats: a read of memory nothing wrote shows */
    blocks[n_blocks].p = p;
    blocks[n_blocks++].n = bytes ? bytes : 1;
    return p;
}

static void fake_release(void *p)
{
    for (int i = 0; i < n_blocks; i++)
        if (blocks[i].p == p) {
            blocks[i] = blocks[--n_blocks];
            break;
        }
    free(p);
}

static bool fake_owns(const void *p)
{
    for (int i = 0; i < n_blocks; i++)
        if ((const char *)p >= blocks[i].p && (const char *)p < blocks[i].p + blocks[i].n) return true;
    return false;
}

/* ---- the fake's recorded runs ---- */

typedef struct fake_rec {
    const ductile_layer *L;
    dt_view *in, *out;
    dt_exec ex;
} fake_rec;

typedef struct fake_graph {
    fake_rec *r;
    int n, cap;
} fake_graph;

static fake_graph *recording;           /* the capture under way, or NULL */
static char fake_capture_stream;        /* its address is the capture stream */
static char fake_recorded_stream;       /* a caller stream the caller records itself */
static int captures, capture_begins, launches, live_graphs, in_capture_bad;
static bool fake_capture_fail;          /* capture_end fails: work that cannot be recorded */
static uint64_t fake_stamp;             /* the fake workspace's "address" */
static size_t fake_ws_bytes = 4096;

static void fake_graph_free(void *p)
{
    fake_graph *g = p;
    if (!g) return;
    for (int i = 0; i < g->n; i++) {
        free(g->r[i].in);
        free(g->r[i].out);
    }
    free(g->r);
    free(g);
    live_graphs--;
}

static ductile_status fake_capture_begin(void *state, void *stream, void **cap)
{
    if (stream == &fake_recorded_stream) return DUCTILE_ERR_UNSUPPORTED;
    if (recording) bad_pointers++; /* a capture left open */
    capture_begins++;
    recording = calloc(1, sizeof *recording);
    live_graphs++;
    *cap = &fake_capture_stream;
    return recording ? DUCTILE_OK : DUCTILE_ERR_OUT_OF_MEMORY;
}

static ductile_status fake_capture_end(void *state, void **graph)
{
    fake_graph *g = recording;
    recording = NULL;
    *graph = NULL;
    if (fake_capture_fail) {
        fake_graph_free(g);
        return dt_fail(DUCTILE_ERR_INTERNAL, "fake: the work could not be recorded");
    }
    captures++;
    *graph = g;
    return DUCTILE_OK;
}

static ductile_status fake_exec(const ductile_layer *L, const dt_view *in, dt_view *out, const dt_exec *ex)
{
    dt_exec hx = *ex;
    hx.stream = NULL;
    hx.host_in = NULL; /* the CPU's kernels read their operands, never host_in */
    return dt_backend_host()->find_kernel(L->op_type)(L, in, out, &hx);
}

static ductile_status fake_launch(const ductile_layer *L, const dt_view *in, dt_view *out, const dt_exec *ex);

static ductile_status fake_graph_launch(void *p, void *stream)
{
    if (stream == &fake_recorded_stream) return DUCTILE_ERR_UNSUPPORTED;
    if (recording) in_capture_bad++;
    launches++;
    fake_graph *g = p;
    for (int i = 0; i < g->n; i++) DT_TRY(fake_launch(g->r[i].L, g->r[i].in, g->r[i].out, &g->r[i].ex));
    return DUCTILE_OK;
}

/* The fake's device timer (dt_backend.timer_mark): its "device" runs launches as they are
 * queued, so a mark is the host clock when it is queued. */
static double fake_marks[DT_TIMER_MARKS];
static bool fake_marked[DT_TIMER_MARKS];
static int timer_marks;

static ductile_status fake_timer_mark(void *state, void *stream, int i)
{
    if (recording) in_capture_bad++;
    if (i < 0 || i >= DT_TIMER_MARKS) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "fake: mark %d", i);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    fake_marks[i] = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    fake_marked[i] = true;
    timer_marks++;
    return DUCTILE_OK;
}

static ductile_status fake_timer_seconds(void *state, int i, int j, double *seconds)
{
    if (i < 0 || j < 0 || i >= DT_TIMER_MARKS || j >= DT_TIMER_MARKS || !fake_marked[i] || !fake_marked[j])
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "fake: marks %d, %d not queued", i, j);
    *seconds = fake_marks[j] - fake_marks[i];
    return DUCTILE_OK;
}

/* What the capture records of a launch: what CUDA would bake into the kernel's parameters. */
static ductile_status fake_record(const ductile_layer *L, const dt_view *in, const dt_view *out, const dt_exec *ex)
{
    fake_graph *g = recording;
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 64;
        fake_rec *r = realloc(g->r, sizeof *r * (size_t)cap);
        if (!r) return DUCTILE_ERR_OUT_OF_MEMORY;
        g->r = r;
        g->cap = cap;
    }
    fake_rec *r = &g->r[g->n];
    r->L = L;
    r->in = malloc(sizeof *in * (size_t)(L->n_in + 1));
    r->out = malloc(sizeof *out * (size_t)(L->n_out + 1));
    if (!r->in || !r->out) {
        free(r->in);
        free(r->out);
        return DUCTILE_ERR_OUT_OF_MEMORY;
    }
    memcpy(r->in, in, sizeof *in * (size_t)L->n_in);
    memcpy(r->out, out, sizeof *out * (size_t)L->n_out);
    r->ex = *ex;
    g->n++;
    return DUCTILE_OK;
}

static void fake_state_memory(const void *state, size_t *bytes, uint64_t *stamp)
{
    *bytes = fake_ws_bytes;
    *stamp = fake_stamp;
}

static ductile_status fake_copy(void *dst, const void *src, size_t bytes, void *stream)
{
    if (recording) in_capture_bad++; /* copies of host memory stay outside a record */
    copies++;
    memcpy(dst, src, bytes);
    return DUCTILE_OK;
}

static ductile_status fake_sync(void *stream)
{
    if (recording) in_capture_bad++;
    syncs++;
    return DUCTILE_OK;
}

/* Tactics of the fake (FusedConv: 1 to 4): 2 never applies; 1 is fast at the min shapes of
 * check_tactics' profile, 3 at its opt, 4 at its max, and each is slow elsewhere (the kernel
 * three times and a sleep of FAKE_SLOW_MS), so the builder must store 1, 3, 4 per point. The
 * point a timing run is at comes from the conv input's N*H*W (superres keeps them through its
 * convs). Runs per tactic,
 * timing runs per point, timing runs whose dt_exec.point is not that point, timing runs whose
 * input was never written (the alloc's NaN fill) or that lack the host views; and, for runs
 * of a context (no ex->tactic), the stored tactic each FusedConv run read for its profile and
 * point. fake_slow_opt: at opt every tactic is slow (3 less so), so that opt's time, scaled
 * to max, is over the builder's bound: max is not timed and takes opt's choice. */
enum { FAKE_SLOW_MS = 8 };
static int tactic_runs[5], tactic_unwritten, tactic_point_runs[3], tactic_point_bad, ran_tactic[5], ran_point;
static int tactic_exec_runs[3]; /* timing runs per dt_exec.point */
static int64_t tactic_point_nhw[3]; /* N*H*W at min, opt, max (ductile_profile_selector) */
static bool fake_slow_opt;
/* Set while layers store the fake's ids (check_tactics) instead of the CPU engine's. */
static bool fake_ids_stored;

static int fake_tactics(const ductile_layer *L, const dt_view *in, int *ids, int cap)
{
    if (strcmp(L->op_type, "FusedConv") || cap < 4) return 0;
    for (int i = 0; i < 4; i++) ids[i] = i + 1;
    return 4;
}

static void fake_sleep_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    while (nanosleep(&ts, &ts)) {}
}

/* A timing run of the fake's tactic: the kernel's time, plus where it is slow a sleep and
 * *reps kernel runs instead of one (a loaded machine slows both alike). */
static ductile_status fake_tactic_cost(const dt_view *x, const dt_exec *ex, int *reps)
{
    *reps = 1;
    if (ex->point >= 0 && ex->point < 3) tactic_exec_runs[ex->point]++;
    if (ex->tactic == 2) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "tactic 2 does not apply");
    int64_t nhw = x->rank == 4 ? x->dims[0] * x->dims[2] * x->dims[3] : -1;
    int point = -1;
    for (int k = 0; k < 3; k++)
        if (nhw == tactic_point_nhw[k]) point = k;
    if (point < 0) return DUCTILE_OK;
    tactic_point_runs[point]++;
    tactic_point_bad += ex->point != point;
    static const int fast_at[5] = {-1, DUCTILE_PROFILE_MIN, -1, DUCTILE_PROFILE_OPT, DUCTILE_PROFILE_MAX};
    int ms = fast_at[ex->tactic] == point ? 0 : FAKE_SLOW_MS;
    if (fake_slow_opt && point == DUCTILE_PROFILE_OPT) ms = ex->tactic == 3 ? 10 : 15;
    if (ms) fake_sleep_ms(ms);
    if (ms) *reps = 3;
    return DUCTILE_OK;
}

/* Launches of view ops (Reshape, Squeeze...) on the fake, and, while seen is set, the
 * address each tensor had in the last launch that read or wrote it (check_alias). */
static int view_runs;
static void **seen;
static int seen_n;

/* The fake's kernels: the CPU's, after checking that every operand is device memory. */
static int fake_kernel_runs; /* every launch of a fake kernel */

static ductile_status fake_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    fake_kernel_runs++;
    view_runs += dt_layer_is_view(L);
    for (int k = 0; seen && k < L->n_in; k++)
        if (L->in[k] && L->in[k]->index < seen_n) seen[L->in[k]->index] = in[k].data;
    for (int k = 0; seen && k < L->n_out; k++)
        if (L->out[k]->index < seen_n) seen[L->out[k]->index] = out[k].data;
    for (int k = 0; k < L->n_in; k++)
        if (L->in[k] && in[k].data && !fake_owns(in[k].data)) bad_pointers++;
    for (int k = 0; k < L->n_out; k++)
        if (!fake_owns(out[k].data)) bad_pointers++;
    if (ex->state != (void *)&n_blocks) bad_pointers++;
    /* Recording: the work goes to the capture stream and is recorded, not run. */
    if ((ex->stream == &fake_capture_stream) != (recording != NULL)) bad_pointers++;
    if (recording) return fake_record(L, in, out, ex);
    return fake_launch(L, in, out, ex);
}

/* A launch the fake runs, now or in a replay: a timing run of its tactic costs what
 * fake_tactic_cost says; a context's conv run counts the stored tactic it read. */
static ductile_status fake_launch(const ductile_layer *L, const dt_view *in, dt_view *out, const dt_exec *ex)
{
    int reps = 1;
    if (ex->tactic > 0 && ex->tactic < 5) {
        tactic_runs[ex->tactic]++;
        tactic_unwritten += !ex->host_in || isnan(((const float *)in[0].data)[0]);
        DT_TRY(fake_tactic_cost(&in[0], ex, &reps));
    } else if (!strcmp(L->op_type, "FusedConv")) {
        const int64_t *ids;
        int64_t n;
        int points;
        DT_TRY(dt_tactic_attr(L, &ids, &n, &points));
        int64_t id = dt_tactic_at(ids, n, points, ex->profile, ex->point);
        if (id >= 0 && id < 5) ran_tactic[id]++;
        ran_point = ex->point;
    }
    dt_exec hx = *ex;
    hx.tactic = 0; /* the fake's ids are not the CPU's */
    if (fake_ids_stored) hx.profile = -1; /* nor are those it stored: the CPU's heuristic */
    ductile_status s = DUCTILE_OK;
    for (int r = 0; r < reps && !s; r++) s = fake_exec(L, in, out, &hx);
    return s;
}

/* Half the ops: the rest are fallbacks. */
static const char *const fake_ops[] = {"FusedConv", "MatMul", "Add", "Softmax", "Transpose", "Gather", "Mul",
                                       "LayerNormalization", "Gemm", "Reshape", "Concat", "Resize", NULL};

/* Set: the fake also lacks the ops with the largest kernel scratch, so they run as host
 * fallbacks through their compiled CPU kernels (the conv's im2col, the GEMM's packing, a
 * MatMul's B packed at build time). */
static bool fake_lacks_gemm;
/* Set: the fake has every op the CPU has (no fallbacks), so its runs can be recorded. */
static bool fake_all_ops;

static dt_kernel_fn fake_find(const char *op)
{
    if (fake_all_ops) return dt_backend_host()->find_kernel(op) ? fake_run : NULL;
    if (fake_lacks_gemm && (!strcmp(op, "FusedConv") || !strcmp(op, "MatMul") || !strcmp(op, "Gemm"))) return NULL;
    for (int i = 0; fake_ops[i]; i++)
        if (!strcmp(fake_ops[i], op)) return fake_run;
    return NULL;
}

static ductile_status fake_state_create(void **out)
{
    *out = &n_blocks;
    return DUCTILE_OK;
}
static void fake_state_free(void *p) {}

static const dt_backend fake = {
    .name = "fake",
    .find_kernel = fake_find,
    .alloc = fake_alloc,
    .release = fake_release,
    .copy = fake_copy,
    .sync = fake_sync,
    .host_memory = false,
    .owns_pointer = fake_owns,
    .state_create = fake_state_create,
    .state_free = fake_state_free,
    .state_memory = fake_state_memory,
    .capture_begin = fake_capture_begin,
    .capture_end = fake_capture_end,
    .graph_launch = fake_graph_launch,
    .graph_free = fake_graph_free,
    .tactics = fake_tactics,
    .timer_mark = fake_timer_mark,
    .timer_seconds = fake_timer_seconds,
};

/* ---- the check ---- */

/* extra_outputs: NULL, or NULL-terminated names of tensors to mark as outputs as well. opt:
 * the profile's opt shapes (NULL: hi). */
static ductile_engine *build_opt(const char *file, const char *const *names, const ductile_dims *lo,
                                 const ductile_dims *opt, const ductile_dims *hi, int n_in,
                                 const char *const *extra_outputs)
{
    char path[1024];
    const char *dir = getenv("DUCTILE_MODELS");
    /* An absolute path: a model written by the test. */
    if (file[0] == '/') snprintf(path, sizeof path, "%s", file);
    else snprintf(path, sizeof path, "%s/%s", dir ? dir : "../shared/models", file);
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_profile *p = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    if (ductile_onnx_parse_file(net, path) != DUCTILE_OK) {
        fprintf(stderr, "skipped %s: %s\n", file, ductile_last_error());
        ductile_network_free(net);
        ductile_builder_free(b);
        return NULL;
    }
    for (int i = 0; extra_outputs && extra_outputs[i]; i++) {
        ductile_tensor *t = ductile_network_find_tensor(net, extra_outputs[i]);
        CHECK(t != NULL);
        if (t) CHECK_EQ_INT(ductile_network_mark_output(net, t), DUCTILE_OK);
    }
    CHECK_EQ_INT(ductile_profile_create(b, &p), DUCTILE_OK);
    for (int i = 0; i < n_in; i++) CHECK_EQ_INT(ductile_profile_set_shape(p, names[i], &lo[i], opt ? &opt[i] : &hi[i], &hi[i]), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_add_profile(cfg, p, NULL), DUCTILE_OK);
    CHECK_EQ_INT(ductile_builder_build(b, net, cfg, &e), DUCTILE_OK);
    ductile_config_free(cfg);
    ductile_profile_free(p);
    ductile_network_free(net);
    ductile_builder_free(b);
    return e;
}

static ductile_engine *build(const char *file, const char *const *names, const ductile_dims *lo,
                             const ductile_dims *hi, int n_in, const char *const *extra_outputs)
{
    return build_opt(file, names, lo, NULL, hi, n_in, extra_outputs);
}

/* The same engine (its bytes: builds may time different tactics) turned into a fake-device
 * one, as dt_engine_from_bytes does for a real one. */
static ductile_engine *fake_load(const void *bytes, size_t n, int *fallbacks)
{
    ductile_engine *e = NULL;
    CHECK_EQ_INT(ductile_engine_load_memory(bytes, n, &e), DUCTILE_OK);
    if (!e) return NULL;
    dt_plan_free(&e->plan);
    e->backend = &fake;
    CHECK_EQ_INT(dt_plan_make(e->net, &fake, &e->plan), DUCTILE_OK);
    CHECK_EQ_INT(dt_engine_upload(e), DUCTILE_OK);
    *fallbacks = 0;
    for (int i = 0; i < e->plan.n_layers; i++) *fallbacks += e->plan.layers[i].fallback;
    dt_free(e->layer_info);
    e->layer_info = dt_layer_info_make(e);
    return e;
}

static ductile_engine *as_fake(const ductile_engine *cpu, int *fallbacks)
{
    void *bytes = NULL;
    size_t n = 0;
    CHECK_EQ_INT(ductile_engine_serialize(cpu, &bytes, &n), DUCTILE_OK);
    ductile_engine *e = bytes ? fake_load(bytes, n, fallbacks) : NULL;
    ductile_free(bytes);
    return e;
}

/* Fills an input with values from a fixed generator (ints: small valid ids / 0-1 masks). */
static void fill(void *p, ductile_dtype dt, size_t n, unsigned seed, int is_mask)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        if (dt == DUCTILE_FLOAT32) ((float *)p)[i] = (float)((seed >> 8) % 2001) / 1000.0f - 1.0f;
        else if (dt == DUCTILE_INT64) ((int64_t *)p)[i] = is_mask ? (i % 5 != 3) : (int64_t)((seed >> 8) % 2000);
    }
}

/* Runs both engines at `shape` with host buffers bound (fake: staged) and compares outputs;
 * then the fake again with its own "device" buffers, read through get_tensor_address. */
static void compare(ductile_engine *cpu, ductile_engine *dev, const char *const *names, const ductile_dims *shape,
                    int n_in, const char *what)
{
    ductile_context *cc = NULL, *dc = NULL;
    CHECK_EQ_INT(ductile_context_create(cpu, &cc), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_create(dev, &dc), DUCTILE_OK);
    void *bufs[8] = {0};
    for (int i = 0; i < n_in; i++) {
        CHECK_EQ_INT(ductile_context_set_input_shape(cc, names[i], &shape[i]), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_input_shape(dc, names[i], &shape[i]), DUCTILE_OK);
        size_t n = 1;
        for (int d = 0; d < shape[i].nb_dims; d++) n *= (size_t)shape[i].d[d];
        ductile_dtype dt = ductile_engine_tensor_dtype(cpu, names[i]);
        bufs[i] = malloc(n * ductile_dtype_size(dt));
        fill(bufs[i], dt, n, 7u + (unsigned)i, strstr(names[i], "mask") != NULL);
        CHECK_EQ_INT(ductile_context_set_tensor_address(cc, names[i], bufs[i]), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(dc, names[i], bufs[i]), DUCTILE_OK);
    }
    CHECK_EQ_INT(ductile_context_execute(cc), DUCTILE_OK);
    int before = bad_pointers;
    CHECK_EQ_INT(ductile_context_execute(dc), DUCTILE_OK);
    CHECK_EQ_INT(bad_pointers, before);
    int32_t nio = ductile_engine_num_io_tensors(cpu);
    for (int32_t i = 0; i < nio; i++) {
        const char *name = ductile_engine_io_tensor_name(cpu, i);
        if (ductile_engine_is_input(cpu, name)) continue;
        ductile_dims d;
        CHECK_EQ_INT(ductile_context_get_tensor_shape(cc, name, &d), DUCTILE_OK);
        size_t n = ductile_dtype_size(ductile_engine_tensor_dtype(cpu, name));
        for (int k = 0; k < d.nb_dims; k++) n *= (size_t)d.d[k];
        void *want = NULL, *got = NULL;
        CHECK_EQ_INT(ductile_context_get_tensor_address(cc, name, &want), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_get_tensor_address(dc, name, &got), DUCTILE_OK);
        CHECK(fake_owns(got)); /* the context's own output buffer is device memory */
        int same = memcmp(want, got, n) == 0;
        if (!same) fprintf(stderr, "%s: output '%s' differs from the CPU engine\n", what, name);
        CHECK(same);
        /* A host buffer bound to the output: the context copies into it. */
        void *host = malloc(n);
        memset(host, 0xff, n);
        CHECK_EQ_INT(ductile_context_set_tensor_address(dc, name, host), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_execute_async(dc, NULL), DUCTILE_OK);
        CHECK(memcmp(want, host, n) == 0);
        CHECK_EQ_INT(ductile_context_set_tensor_address(dc, name, NULL), DUCTILE_OK);
        free(host);
    }
    ductile_context_free(cc);
    ductile_context_free(dc);
    for (int i = 0; i < n_in; i++) free(bufs[i]);
}

static void check_model(const char *file, const char *const *names, const ductile_dims *lo, const ductile_dims *hi,
                        int n_in, int want_fallbacks_min, const char *const *extra_outputs)
{
    ductile_engine *cpu = build(file, names, lo, hi, n_in, extra_outputs);
    int fallbacks = 0;
    ductile_engine *dev = cpu ? as_fake(cpu, &fallbacks) : NULL;
    if (!cpu || !dev) {
        ductile_engine_free(cpu);
        ductile_engine_free(dev);
        return;
    }
    CHECK(fallbacks >= want_fallbacks_min);
    /* A fallback runs what the CPU engine runs: the compiled CPU kernel where the op has one
     * (prepared at load, scratch from the context's host scratch), else the adapter. */
    int gemm_fallbacks = 0;
    for (int i = 0; i < dev->plan.n_layers; i++) {
        const dt_plan_layer *pl = &dev->plan.layers[i];
        if (!pl->fallback) continue;
        const char *op = pl->layer->op_type;
        CHECK(pl->kernel == dt_backend_host()->kernel(op));
        CHECK(pl->kernel != NULL || pl->legacy != NULL);
        gemm_fallbacks += !strcmp(op, "FusedConv") || !strcmp(op, "MatMul") || !strcmp(op, "Gemm") ||
                          !strcmp(op, "FusedMatMul") || !strcmp(op, "FusedAttention");
    }
    CHECK(!fake_lacks_gemm || gemm_fallbacks > 0);
    CHECK(strstr(ductile_engine_layer_info(dev), "\"Placement\": \"cpu fallback\"") != NULL);
    CHECK(strstr(ductile_engine_layer_info(dev), "\"Kernel\": \"fake.") != NULL);
    /* The suite models' I/O is device memory (no shape inputs, strings or sequences). */
    for (int32_t i = 0; i < ductile_engine_num_io_tensors(dev); i++)
        CHECK_EQ_INT(ductile_engine_tensor_location(dev, ductile_engine_io_tensor_name(dev, i)), DUCTILE_LOCATION_DEVICE);
    fprintf(stderr, "%s: %d fallback layers of %d\n", file, fallbacks, dev->plan.n_layers);
    compare(cpu, dev, names, lo, n_in, file);
    compare(cpu, dev, names, hi, n_in, file);
    ductile_engine_free(dev);
    ductile_engine_free(cpu);
    CHECK_EQ_INT(n_blocks, 0); /* every device buffer released */
}

/* ---- FlexAttention's modifiers on a host fallback ----
 * The fake has no FlexAttention: the layer runs on the host between copies, and its
 * modifiers' subgraphs with it; score_mod captures m = ReduceMax(K), an activation in device
 * memory the fallback copies to the host like any input. Y = FlexAttention(Q, K, V) + Q (the
 * Add runs on the fake). */
static pbw flex_graph_attr(const char *name, pbw g)
{
    pbw a = {0};
    w_str(&a, 1, name);
    w_msg(&a, 6, g);
    w_int(&a, 20, 5); /* GRAPH */
    return a;
}

static void check_flex_modifiers_fall_back(void)
{
    pbw sm = {0}, pm = {0}, g = {0};
    w_msg(&sm, 1, node("scale", "Mul", NULL, S("s", "m"), S("s2"), NULL, 0));
    w_str(&sm, 2, "score_mod");
    w_msg(&sm, 11, value_info("s", DUCTILE_FLOAT32, -1, NULL, NULL));
    w_msg(&sm, 12, value_info("s2", DUCTILE_FLOAT32, -1, NULL, NULL));
    w_msg(&pm, 1, node("twice", "Add", NULL, S("p", "p"), S("p2"), NULL, 0));
    w_str(&pm, 2, "prob_mod");
    w_msg(&pm, 11, value_info("p", DUCTILE_FLOAT32, -1, NULL, NULL));
    w_msg(&pm, 12, value_info("p2", DUCTILE_FLOAT32, -1, NULL, NULL));
    pbw mods[2] = {flex_graph_attr("score_mod", sm), flex_graph_attr("prob_mod", pm)};
    w_msg(&g, 1, node("max", "ReduceMax", NULL, S("K"), S("m"), NULL, 0));
    w_msg(&g, 1, node("flex", "FlexAttention", "ai.onnx.preview", S("Q", "K", "V"), S("a"), mods, 2));
    w_msg(&g, 1, node("add", "Add", NULL, S("a", "Q"), S("Y"), NULL, 0));
    w_str(&g, 2, "flex");
    int64_t d[4] = {-1, -1, -1, -1};
    for (int i = 0; i < 3; i++)
        w_msg(&g, 11, value_info(i == 0 ? "Q" : i == 1 ? "K" : "V", DUCTILE_FLOAT32, 4, d, S("b", "h", "l", "e")));
    w_msg(&g, 12, value_info("Y", DUCTILE_FLOAT32, -1, NULL, NULL));
    pbw m = model(g, "ai.onnx.preview", 1);
    char path[] = "/tmp/ductile_flex_fallback_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    CHECK(f && fwrite(m.p, 1, m.n, f) == m.n);
    if (f) fclose(f);
    free(m.p);
    const char *names[] = {"Q", "K", "V"};
    ductile_dims lo[3], hi[3];
    for (int i = 0; i < 3; i++) {
        lo[i] = (ductile_dims){4, {1, 2, 5, 4}};
        hi[i] = (ductile_dims){4, {2, 3, 9, 4}};
    }
    check_model(path, names, lo, hi, 3, 2, NULL);
    remove(path);
}

/* ---- views without copies ----
 * A view op (Reshape, Flatten, Squeeze, Unsqueeze, Identity, a Cast to its input's dtype:
 * bert_small's bool mask cast to bool) between two activations is an
 * alias layer: its output is planned as its input's bytes and nothing is launched for it.
 * One whose input is a network input, or whose output is a network output, still copies
 * (those tensors live in the caller's buffers). Checks the plan's choice per layer, that a
 * run launches exactly the non-alias view layers, that every view is read at its first
 * tensor's address, that the planned offsets agree, and outputs against the CPU engine bit
 * for bit; then again with an aliased tensor marked as a network output (it copies now). */
/* Profiler of check_alias_engine: alias layers report the tactic "<backend>.<op>.alias". */
typedef struct alias_prof {
    const ductile_engine *e;
    int alias_rows, bad;
} alias_prof;

static void alias_report(void *user, const ductile_layer_timing *t)
{
    alias_prof *ap = user;
    for (int i = 0; i < ap->e->plan.n_layers; i++) {
        const dt_plan_layer *pl = &ap->e->plan.layers[i];
        if (strcmp(pl->layer->name, t->layer)) continue;
        char want[160];
        snprintf(want, sizeof want, "fake.%s.alias", t->op_type);
        bool is_alias = !strcmp(t->tactic, want);
        ap->alias_rows += is_alias;
        ap->bad += is_alias != pl->alias;
    }
}

static int check_alias_engine(ductile_engine *cpu, ductile_engine *dev, const char *const *names,
                              const ductile_dims *shape, int n_in, const char *what, const char **first_alias)
{
    const dt_plan *p = &dev->plan;
    int aliased = 0, copied = 0;
    for (int i = 0; i < p->n_layers; i++) {
        const dt_plan_layer *pl = &p->layers[i];
        const ductile_layer *L = pl->layer;
        if (!dt_layer_is_view(L) || pl->value) {
            CHECK(!pl->alias);
            continue;
        }
        int a = L->in[0]->index, o = L->out[0]->index;
        bool want = p->kind[a] == DT_TENSOR_ACTIVATION && p->kind[o] == DT_TENSOR_ACTIVATION;
        CHECK_EQ_INT(pl->alias, want);
        CHECK_EQ_INT(p->alias_of[o] >= 0, want);
        if (want) {
            int r = p->alias_of[o];
            CHECK(r >= 0 && p->alias_of[r] < 0 && p->mem_block[r] >= 0 && p->mem_block[o] < 0);
            if (!*first_alias) *first_alias = L->out[0]->name;
        }
        aliased += want;
        copied += !want;
    }
    /* The CPU engine plans the same aliases. */
    for (int i = 0; i < p->n_layers; i++) CHECK_EQ_INT(cpu->plan.layers[i].alias, p->layers[i].alias);
    ductile_context *dc = NULL;
    CHECK_EQ_INT(ductile_context_create(dev, &dc), DUCTILE_OK);
    void *bufs[8] = {0};
    for (int i = 0; i < n_in; i++) {
        CHECK_EQ_INT(ductile_context_set_input_shape(dc, names[i], &shape[i]), DUCTILE_OK);
        size_t n = 1;
        for (int d = 0; d < shape[i].nb_dims; d++) n *= (size_t)shape[i].d[d];
        ductile_dtype dt = ductile_engine_tensor_dtype(cpu, names[i]);
        bufs[i] = malloc(n * ductile_dtype_size(dt));
        fill(bufs[i], dt, n, 7u + (unsigned)i, strstr(names[i], "mask") != NULL);
        CHECK_EQ_INT(ductile_context_set_tensor_address(dc, names[i], bufs[i]), DUCTILE_OK);
    }
    seen_n = p->n_tensors;
    seen = calloc((size_t)seen_n + 1, sizeof *seen);
    int runs0 = view_runs;
    CHECK_EQ_INT(ductile_context_execute(dc), DUCTILE_OK);
    CHECK_EQ_INT(view_runs - runs0, copied);
    int read_at_root = 0;
    for (int t = 0; t < p->n_tensors; t++) {
        int r = p->alias_of[t];
        if (r < 0 || !seen[t]) continue;
        CHECK(seen[t] == seen[r]);
        read_at_root++;
    }
    CHECK(aliased == 0 || read_at_root > 0);
    /* Profiled: the alias layers say so in their tactic, the others do not. */
    alias_prof ap = {.e = dev};
    CHECK_EQ_INT(ductile_context_set_profiler(dc, alias_report, &ap), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(dc), DUCTILE_OK);
    CHECK_EQ_INT(ap.alias_rows, aliased);
    CHECK_EQ_INT(ap.bad, 0);
    CHECK_EQ_INT(ductile_context_set_profiler(dc, NULL, NULL), DUCTILE_OK);
    /* The planned offsets: a view at its first tensor's. */
    size_t *off = calloc((size_t)p->n_tensors + 1, sizeof *off), arena = 0;
    CHECK_EQ_INT(dt_memplan(dev, dt_context_views(dc), off, &arena), DUCTILE_OK);
    for (int t = 0; t < p->n_tensors; t++)
        if (p->alias_of[t] >= 0) CHECK(off[t] == off[p->alias_of[t]]);
    free(off);
    free(seen);
    seen = NULL;
    ductile_context_free(dc);
    for (int i = 0; i < n_in; i++) free(bufs[i]);
    compare(cpu, dev, names, shape, n_in, what);
    fprintf(stderr, "%s: %d view layers alias their input, %d copy\n", what, aliased, copied);
    return aliased;
}

static void check_alias(const char *file, const char *const *names, const ductile_dims *lo, const ductile_dims *hi,
                        int n_in)
{
    fake_all_ops = true; /* every view op on the fake: its launches are counted */
    ductile_engine *cpu = build(file, names, lo, hi, n_in, NULL);
    int fallbacks = 0;
    ductile_engine *dev = cpu ? as_fake(cpu, &fallbacks) : NULL;
    const char *first = NULL;
    char name[256] = "";
    if (cpu && dev) {
        CHECK(check_alias_engine(cpu, dev, names, hi, n_in, file, &first) > 0);
        CHECK(first != NULL);
        if (first) snprintf(name, sizeof name, "%s", first);
        /* bert_small casts its bool mask to bool: that Cast is a view too. */
        int cast_views = 0;
        for (int i = 0; i < dev->plan.n_layers; i++)
            cast_views += dev->plan.layers[i].alias && !strcmp(dev->plan.layers[i].layer->op_type, "Cast");
        CHECK_EQ_INT(cast_views, strstr(file, "bert") ? 1 : 0);
    }
    ductile_engine_free(dev);
    ductile_engine_free(cpu);
    if (name[0]) {
        const char *outs[] = {name, NULL};
        cpu = build(file, names, lo, hi, n_in, outs);
        dev = cpu ? as_fake(cpu, &fallbacks) : NULL;
        if (cpu && dev) {
            const char *ignored = NULL;
            check_alias_engine(cpu, dev, names, lo, n_in, file, &ignored);
            /* The marked tensor is an output now: its layer copies into the output's buffer. */
            for (int i = 0; i < dev->plan.n_layers; i++) {
                const ductile_layer *L = dev->plan.layers[i].layer;
                if (L->n_out == 1 && !strcmp(L->out[0]->name, name)) {
                    CHECK(!dev->plan.layers[i].alias);
                    CHECK_EQ_INT(dev->plan.kind[L->out[0]->index], DT_TENSOR_OUTPUT);
                }
            }
        }
        ductile_engine_free(dev);
        ductile_engine_free(cpu);
    }
    fake_all_ops = false;
    CHECK_EQ_INT(n_blocks, 0);
}

/* ---- recorded runs ---- */

static size_t fake_bytes(void)
{
    size_t n = 0;
    for (int i = 0; i < n_blocks; i++) n += blocks[i].n;
    return n;
}

/* Bytes of output k (in I/O order) of a context, at its current shapes. */
static size_t output_bytes(ductile_context *c, const ductile_engine *e, const char *name)
{
    ductile_dims d;
    CHECK_EQ_INT(ductile_context_get_tensor_shape(c, name, &d), DUCTILE_OK);
    size_t n = ductile_dtype_size(ductile_engine_tensor_dtype(e, name));
    for (int k = 0; k < d.nb_dims; k++) n *= (size_t)d.d[k];
    return n;
}

/* One run of both engines at `shape` on new input values (seed), outputs compared bit for
 * bit. The fake's outputs: its own buffers, or out_dev[k] ("device" memory) bound to output
 * k. Returns the number of outputs. */
static int graph_step(ductile_context *cc, ductile_context *dc, const ductile_engine *cpu, const char *const *names,
                      const ductile_dims *shape, int n_in, unsigned seed, void *const *out_dev, void *stream)
{
    void *bufs[8] = {0};
    for (int i = 0; i < n_in; i++) {
        CHECK_EQ_INT(ductile_context_set_input_shape(cc, names[i], &shape[i]), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_input_shape(dc, names[i], &shape[i]), DUCTILE_OK);
        size_t n = 1;
        for (int d = 0; d < shape[i].nb_dims; d++) n *= (size_t)shape[i].d[d];
        ductile_dtype dt = ductile_engine_tensor_dtype(cpu, names[i]);
        bufs[i] = malloc(n * ductile_dtype_size(dt));
        fill(bufs[i], dt, n, seed * 31u + (unsigned)i, strstr(names[i], "mask") != NULL);
        CHECK_EQ_INT(ductile_context_set_tensor_address(cc, names[i], bufs[i]), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(dc, names[i], bufs[i]), DUCTILE_OK);
    }
    int32_t nio = ductile_engine_num_io_tensors(cpu);
    int k = 0;
    for (int32_t i = 0; i < nio; i++) {
        const char *name = ductile_engine_io_tensor_name(cpu, i);
        if (ductile_engine_is_input(cpu, name)) continue;
        CHECK_EQ_INT(ductile_context_set_tensor_address(dc, name, out_dev ? out_dev[k] : NULL), DUCTILE_OK);
        k++;
    }
    CHECK_EQ_INT(ductile_context_execute(cc), DUCTILE_OK);
    int before = bad_pointers;
    CHECK_EQ_INT(ductile_context_execute_async(dc, stream), DUCTILE_OK);
    CHECK_EQ_INT(bad_pointers, before);
    k = 0;
    for (int32_t i = 0; i < nio; i++) {
        const char *name = ductile_engine_io_tensor_name(cpu, i);
        if (ductile_engine_is_input(cpu, name)) continue;
        size_t n = output_bytes(cc, cpu, name);
        void *want = NULL, *got = out_dev ? out_dev[k] : NULL;
        CHECK_EQ_INT(ductile_context_get_tensor_address(cc, name, &want), DUCTILE_OK);
        if (!out_dev) CHECK_EQ_INT(ductile_context_get_tensor_address(dc, name, &got), DUCTILE_OK);
        int same = want && got && memcmp(want, got, n) == 0;
        if (!same) fprintf(stderr, "graph step (seed %u): output '%s' differs from the CPU engine\n", seed, name);
        CHECK(same);
        k++;
    }
    for (int i = 0; i < n_in; i++) free(bufs[i]);
    return k;
}

static void count_report(void *user, const ductile_layer_timing *t)
{
    (*(int *)user)++;
}

/* Runs one step and checks how many recordings and graph launches it added. */
#define STEP(shape, out_dev, stream, want_captures, want_launches)                                      \
    do {                                                                                                \
        int c0_ = captures, l0_ = launches;                                                             \
        graph_step(cc, dc, cpu, names, shape, n_in, ++seed, out_dev, stream);                           \
        CHECK_EQ_INT(captures - c0_, want_captures);                                                    \
        CHECK_EQ_INT(launches - l0_, want_launches);                                                    \
    } while (0)

static void check_graphs(const char *file, const char *const *names, const ductile_dims *lo, const ductile_dims *hi,
                         int n_in)
{
    ductile_engine *cpu = build(file, names, lo, hi, n_in, NULL);
    int fallbacks = -1;
    fake_all_ops = true;
    ductile_engine *dev = cpu ? as_fake(cpu, &fallbacks) : NULL;
    fake_all_ops = false;
    if (!cpu || !dev) {
        ductile_engine_free(cpu);
        ductile_engine_free(dev);
        return;
    }
    CHECK_EQ_INT(fallbacks, 0);
    ductile_context *cc = NULL, *dc = NULL;
    CHECK_EQ_INT(ductile_context_create(cpu, &cc), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_create(dev, &dc), DUCTILE_OK);
    unsigned seed = 0;
    int bad0 = bad_pointers;
    CHECK_EQ_INT(ductile_context_get_cuda_graphs(dc), 16);
    /* The CPU takes the setting and records nothing. */
    CHECK_EQ_INT(ductile_context_set_cuda_graphs(cc, 3), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_get_cuda_graphs(cc), 3);
    CHECK_EQ_INT(ductile_context_set_cuda_graphs(dc, -1), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "set_cuda_graphs: -1 graphs; expected 0..4096 (0: off)");
    CHECK_EQ_INT(ductile_context_set_cuda_graphs(dc, 4097), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(ductile_context_get_cuda_graphs(dc), 16);

    /* B (the largest) first, so A's runs find the buffers B grew and keep their addresses;
     * then A, B, A, B: each key runs kernel by kernel once, is recorded at its second run and
     * replayed after, and each replay picks its own shape's record. */
    STEP(hi, NULL, NULL, 0, 0);
    STEP(lo, NULL, NULL, 0, 0);
    STEP(hi, NULL, NULL, 1, 1);
    STEP(lo, NULL, NULL, 1, 1);
    STEP(hi, NULL, NULL, 0, 1);
    STEP(lo, NULL, NULL, 0, 1);
    CHECK_EQ_INT(live_graphs, 2);

    /* Device buffers bound to the outputs: each buffer is a key of its own. */
    int n_out = 0;
    void *out1[8] = {0}, *out2[8] = {0};
    for (int32_t i = 0; i < ductile_engine_num_io_tensors(cpu); i++) {
        const char *name = ductile_engine_io_tensor_name(cpu, i);
        if (ductile_engine_is_input(cpu, name) || n_out == 8) continue;
        for (int k = 0; k < n_in; k++) CHECK_EQ_INT(ductile_context_set_input_shape(cc, names[k], &hi[k]), DUCTILE_OK);
        size_t n = output_bytes(cc, cpu, name);
        out1[n_out] = fake_alloc(n);
        out2[n_out++] = fake_alloc(n);
    }
    STEP(lo, out1, NULL, 0, 0);
    STEP(lo, out1, NULL, 1, 1);
    STEP(lo, out2, NULL, 0, 0);
    STEP(lo, out1, NULL, 0, 1);   /* out1's record, not out2's: the output lands in out1 */
    STEP(lo, out2, NULL, 1, 1);
    STEP(lo, NULL, NULL, 0, 1);   /* the context's own buffers again: the first record */

    /* The workspace moved: records that addressed it are not replayed. */
    fake_stamp++;
    STEP(lo, NULL, NULL, 0, 0);
    STEP(lo, NULL, NULL, 1, 1);

    /* A stream the caller is recording itself: kernel by kernel, and recorded later. */
    STEP(hi, NULL, &fake_recorded_stream, 0, 0);
    STEP(hi, NULL, &fake_recorded_stream, 0, 0);
    STEP(hi, NULL, NULL, 1, 1);

    /* At most one record: the least recently used one goes. */
    CHECK_EQ_INT(ductile_context_set_cuda_graphs(dc, 1), DUCTILE_OK);
    CHECK_EQ_INT(live_graphs, 0);
    STEP(hi, NULL, NULL, 0, 0);
    STEP(hi, NULL, NULL, 1, 1);
    STEP(lo, NULL, NULL, 0, 0);
    STEP(lo, NULL, NULL, 1, 1);
    CHECK_EQ_INT(live_graphs, 1);
    STEP(lo, NULL, NULL, 0, 1);
    STEP(hi, NULL, NULL, 0, 0);   /* hi's record was freed */
    STEP(hi, NULL, NULL, 1, 1);
    CHECK_EQ_INT(live_graphs, 1);

    /* Off: kernel by kernel, the records freed, the outputs the same. */
    CHECK_EQ_INT(ductile_context_set_cuda_graphs(dc, 0), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_get_cuda_graphs(dc), 0);
    CHECK_EQ_INT(live_graphs, 0);
    for (int i = 0; i < 3; i++) STEP(lo, NULL, NULL, 0, 0);

    /* Work that cannot be recorded: tried once, then kernel by kernel for good; never an
     * error. */
    CHECK_EQ_INT(ductile_context_set_cuda_graphs(dc, 16), DUCTILE_OK);
    fake_capture_fail = true;
    int b0 = capture_begins;
    STEP(lo, NULL, NULL, 0, 0);
    STEP(lo, NULL, NULL, 0, 0);
    CHECK_EQ_INT(capture_begins - b0, 1);
    STEP(lo, NULL, NULL, 0, 0);
    CHECK_EQ_INT(capture_begins - b0, 1);
    fake_capture_fail = false;
    STEP(hi, NULL, NULL, 0, 0);
    STEP(hi, NULL, NULL, 1, 1);

    /* A profiler waits for the stream after each layer, which a record cannot: while it is
     * set, runs neither record nor replay, and every layer is reported; hi's record is kept
     * and replayed again once it is off. */
    int run_layers = 0;
    for (int i = 0; i < dev->plan.n_layers; i++) run_layers += !dev->plan.layers[i].value;
    int reports = 0;
    CHECK_EQ_INT(ductile_context_set_profiler(dc, count_report, &reports), DUCTILE_OK);
    STEP(hi, NULL, NULL, 0, 0);
    STEP(hi, NULL, NULL, 0, 0);
    CHECK_EQ_INT(reports, 2 * run_layers);
    CHECK(run_layers > 0);
    CHECK_EQ_INT(ductile_context_set_profiler(dc, NULL, NULL), DUCTILE_OK);
    STEP(hi, NULL, NULL, 0, 1);
    CHECK_EQ_INT(reports, 2 * run_layers);

    CHECK_EQ_INT(in_capture_bad, 0);
    CHECK_EQ_INT(bad_pointers, bad0);
    CHECK(recording == NULL);
    ductile_context_free(dc);
    CHECK_EQ_INT(live_graphs, 0); /* freed with the context */
    for (int k = 0; k < n_out; k++) {
        fake_release(out1[k]);
        fake_release(out2[k]);
    }
    ductile_context_free(cc);
    ductile_engine_free(dev);
    ductile_engine_free(cpu);
    CHECK_EQ_INT(n_blocks, 0);
}

/* Runs a fresh context of e once at `shape` (inputs from fill) and returns its memory report. */
static uint64_t memory_at(const ductile_engine *e, const char *const *names, const ductile_dims *shape, int n_in,
                          size_t *fake_delta)
{
    size_t before = fake_bytes();
    ductile_context *c = NULL;
    uint64_t bytes = 0;
    CHECK_EQ_INT(ductile_context_create(e, &c), DUCTILE_OK);
    void *bufs[8] = {0};
    for (int i = 0; i < n_in; i++) {
        CHECK_EQ_INT(ductile_context_set_input_shape(c, names[i], &shape[i]), DUCTILE_OK);
        size_t n = 1;
        for (int d = 0; d < shape[i].nb_dims; d++) n *= (size_t)shape[i].d[d];
        ductile_dtype dt = ductile_engine_tensor_dtype(e, names[i]);
        bufs[i] = malloc(n * ductile_dtype_size(dt));
        fill(bufs[i], dt, n, 5u + (unsigned)i, strstr(names[i], "mask") != NULL);
        CHECK_EQ_INT(ductile_context_set_tensor_address(c, names[i], bufs[i]), DUCTILE_OK);
    }
    CHECK_EQ_INT(ductile_context_get_memory_size(c, &bytes), DUCTILE_OK);
    /* Before the first run only the workspace (the fake's; the CPU has none). */
    CHECK_EQ_INT(bytes, fake_delta ? fake_ws_bytes : 0);
    CHECK_EQ_INT(ductile_context_execute(c), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_get_memory_size(c, &bytes), DUCTILE_OK);
    if (fake_delta) *fake_delta = fake_bytes() - before;
    ductile_context_free(c);
    for (int i = 0; i < n_in; i++) free(bufs[i]);
    return bytes;
}

/* The memory report: on the fake, exactly the blocks the context took plus its workspace;
 * planned for the shapes run, so a fresh context at the smallest shapes reports less than
 * one at the largest, on the fake and on the CPU. */
static void check_memory(const char *file, const char *const *names, const ductile_dims *lo, const ductile_dims *hi,
                         int n_in)
{
    ductile_engine *cpu = build(file, names, lo, hi, n_in, NULL);
    int fallbacks = 0;
    ductile_engine *dev = cpu ? as_fake(cpu, &fallbacks) : NULL;
    if (!cpu || !dev) {
        ductile_engine_free(cpu);
        ductile_engine_free(dev);
        return;
    }
    size_t took_lo = 0, took_hi = 0;
    uint64_t dlo = memory_at(dev, names, lo, n_in, &took_lo), dhi = memory_at(dev, names, hi, n_in, &took_hi);
    CHECK_EQ_INT(dlo, took_lo + fake_ws_bytes);
    CHECK_EQ_INT(dhi, took_hi + fake_ws_bytes);
    CHECK(dlo < dhi);
    uint64_t clo = memory_at(cpu, names, lo, n_in, NULL), chi = memory_at(cpu, names, hi, n_in, NULL);
    CHECK(clo > 0 && clo < chi);
    fprintf(stderr, "%s: context memory %llu / %llu bytes (fake), %llu / %llu (cpu) at min / max\n", file,
            (unsigned long long)dlo, (unsigned long long)dhi, (unsigned long long)clo, (unsigned long long)chi);
    uint64_t none = 0;
    CHECK_EQ_INT(ductile_context_get_memory_size(NULL, &none), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "get_memory_size: context or bytes is NULL");
    ductile_engine_free(dev);
    ductile_engine_free(cpu);
    CHECK_EQ_INT(n_blocks, 0);
}

static void count_progress(void *user, int32_t profile, int32_t n_profiles, int32_t done, int32_t total)
{
    (*(int *)user)++;
}

/* Whether every FusedConv of e stores `want` (3 ids: min, opt, max); no CHECK. */
static bool stored_is(const ductile_engine *e, const int64_t *want)
{
    for (int i = 0; i < e->net->n_layers; i++) {
        const ductile_layer *L = e->net->layers[i];
        if (strcmp(L->op_type, "FusedConv")) continue;
        int64_t n = 0;
        const int64_t *t = dt_attr_ints(L, "tactic", &n);
        if (!t || n != 3 || t[0] != want[0] || t[1] != want[1] || t[2] != want[2]) return false;
    }
    return true;
}

/* The builder's tactic pass over dev, timed again (at most twice more) while the stored choices
 * are not `want`: the choices are timings, and on a loaded machine under ASan one noisy median
 * can rank a slow tactic first (session 12's and 13's CI: opt stored 4 for /c2/Conv). A
 * systematic error fails all three times. */
static void time_until(ductile_engine *dev, const int64_t *want, const char *what)
{
    bool changed = false;
    CHECK_EQ_INT(dt_pass_tactics(dev, dev->net, 1, NULL, NULL, &changed), DUCTILE_OK);
    for (int again = 0; again < 2 && !stored_is(dev, want); again++) {
        fprintf(stderr, "%s: choices differ from %lld %lld %lld: timing again\n", what, (long long)want[0],
                (long long)want[1], (long long)want[2]);
        CHECK_EQ_INT(dt_pass_tactics(dev, dev->net, 1, NULL, NULL, &changed), DUCTILE_OK);
    }
}

/* The stored tactics of every FusedConv of e, which must be `want` (3 ids: min, opt, max) with
 * tactic_points 3; returns how many convs. */
static int check_stored(const ductile_engine *e, const int64_t *want)
{
    int convs = 0;
    for (int i = 0; i < e->net->n_layers; i++) {
        const ductile_layer *L = e->net->layers[i];
        if (strcmp(L->op_type, "FusedConv")) continue;
        int64_t n = 0;
        const int64_t *t = dt_attr_ints(L, "tactic", &n);
        CHECK(t != NULL && n == 3);
        CHECK_EQ_INT(dt_attr_int(L, "tactic_points", 1), 3);
        for (int k = 0; t && n == 3 && k < 3; k++) CHECK_EQ_INT(t[k], want[k]);
        if (t && n == 3 && (t[0] != want[0] || t[1] != want[1] || t[2] != want[2]))
            fprintf(stderr, "layer '%s' stores %lld %lld %lld\n", L->name, (long long)t[0], (long long)t[1], (long long)t[2]);
        convs++;
    }
    return convs;
}

/* A context of e at `shape`: every FusedConv run reads the stored tactic `want` and the
 * context's point is `point`. */
static void run_at(ductile_engine *e, ductile_dims shape, int convs, int want, int point)
{
    ductile_context *c = NULL;
    CHECK_EQ_INT(ductile_context_create(e, &c), DUCTILE_OK);
    if (!c) return;
    size_t n = 1;
    for (int d = 0; d < shape.nb_dims; d++) n *= (size_t)shape.d[d];
    float *x = malloc(n * sizeof *x);
    fill(x, DUCTILE_FLOAT32, n, 5u, 0);
    memset(ran_tactic, 0, sizeof ran_tactic);
    ran_point = -1;
    CHECK_EQ_INT(ductile_context_set_input_shape(c, "input", &shape), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(c, "input", x), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(c), DUCTILE_OK);
    for (int id = 0; id < 5; id++) CHECK_EQ_INT(ran_tactic[id], id == want ? convs : 0);
    CHECK_EQ_INT(ran_point, point);
    ductile_context_free(c);
    free(x);
}

/* A profile whose min is its opt: min is not timed again (no timing run at point min) and
 * stores opt's choice; max is timed. */
static void check_tactics_same_points(void)
{
    const char *sr[] = {"input"};
    ductile_dims lo[] = {{4, {1, 1, 12, 10}}}, hi[] = {{4, {2, 1, 20, 12}}};
    tactic_point_nhw[DUCTILE_PROFILE_MIN] = tactic_point_nhw[DUCTILE_PROFILE_OPT] = 1 * 12 * 10;
    tactic_point_nhw[DUCTILE_PROFILE_MAX] = 2 * 20 * 12;
    ductile_engine *cpu = build_opt("superres.onnx", sr, lo, lo, hi, 1, NULL);
    int fallbacks = 0;
    ductile_engine *dev = cpu ? as_fake(cpu, &fallbacks) : NULL;
    if (dev) {
        memset(tactic_exec_runs, 0, sizeof tactic_exec_runs);
        tactic_point_bad = 0;
        fake_ids_stored = true;
        static const int64_t want[3] = {3, 3, 4};
        dt_tactic_point_s = 10.0; /* max timed however slow the runs (ASan, a loaded machine) */
        time_until(dev, want, "same points");
        dt_tactic_point_s = 20e-3;
        fake_ids_stored = false;
        CHECK_EQ_INT(tactic_exec_runs[DUCTILE_PROFILE_MIN], 0);
        CHECK(tactic_exec_runs[DUCTILE_PROFILE_OPT] > 0 && tactic_exec_runs[DUCTILE_PROFILE_MAX] > 0);
        CHECK_EQ_INT(tactic_point_bad, 0);
        CHECK(check_stored(dev, want) >= 4);
    }
    ductile_engine_free(dev);
    ductile_engine_free(cpu);
    CHECK_EQ_INT(n_blocks, 0);
}

/* Whether dev's convs store 1 3 4, max 3 where a 64-channel buffer does not fit the fake's
 * memory (all but /c4/Conv); *full: how many did not fit. */
static bool limited_choices(const ductile_engine *dev, int *full)
{
    bool ok = true;
    *full = 0;
    for (int i = 0; i < dev->net->n_layers; i++) {
        const ductile_layer *L = dev->net->layers[i];
        int64_t n = 0;
        const int64_t *t = dt_attr_ints(L, "tactic", &n);
        if (strcmp(L->op_type, "FusedConv") || !t || n != 3) continue;
        bool fits = !strcmp(L->name, "/c4/Conv");
        ok = ok && t[0] == 1 && t[1] == 3 && t[2] == (fits ? 4 : 3);
        *full += !fits;
    }
    return ok;
}

/* The builder's tactic timing (builder/tactics.c) on a device backend: buffers from the
 * backend's alloc with data written through its copy, constants from the engine's device
 * copies, the backend's state, a tactic that does not apply skipped, the fastest stored per
 * profile and shape point (min, opt, max: each timed, runs counted per point), the engine
 * written and loaded again keeping them, and contexts running the stored tactic of the
 * point nearest their shapes (runtime/points.h: total input volume, log scale), the min and
 * max winners at min and max, an odd shape's nearest point between. A point whose run opt's
 * time says is too long is not timed: opt's choice. The CPU engine it starts from stores
 * its own (timed) choices per point too. */
static void check_tactics(void)
{
    const char *sr[] = {"input"};
    ductile_dims lo[] = {{4, {1, 1, 8, 8}}}, opt[] = {{4, {1, 1, 12, 10}}}, hi[] = {{4, {2, 1, 20, 12}}};
    tactic_point_nhw[DUCTILE_PROFILE_MIN] = 1 * 8 * 8;
    tactic_point_nhw[DUCTILE_PROFILE_OPT] = 1 * 12 * 10;
    tactic_point_nhw[DUCTILE_PROFILE_MAX] = 2 * 20 * 12;
    ductile_engine *cpu = build_opt("superres.onnx", sr, lo, opt, hi, 1, NULL);
    int fallbacks = 0, cpu_convs = 0;
    for (int i = 0; cpu && i < cpu->net->n_layers; i++) {
        const ductile_layer *L = cpu->net->layers[i];
        int64_t n = 0;
        if (strcmp(L->op_type, "FusedConv") || !dt_attr_ints(L, "tactic", &n)) continue;
        CHECK_EQ_INT(n, 3);
        CHECK_EQ_INT(dt_attr_int(L, "tactic_points", 1), 3);
        cpu_convs++;
    }
    CHECK(!cpu || cpu_convs >= 3); /* the CPU times im2col against padded for each 3x3 / 5x5 conv */
    ductile_engine *dev = cpu ? as_fake(cpu, &fallbacks) : NULL;
    if (!dev) {
        ductile_engine_free(cpu);
        return;
    }
    int progress = 0, bad_before = bad_pointers, layers = 0, begins = capture_begins, ends = captures;
    int in_capture_before = in_capture_bad;
    for (int l = 0; l < dev->plan.n_layers; l++) layers += !dev->plan.layers[l].value;
    bool changed = false;
    fake_ids_stored = true;
    timer_marks = 0;
    /* Replay timing: the default (builder/tactics.c); DUCTILE_TACTIC_TIMING=wall turns it off. */
    unsetenv("DUCTILE_TACTIC_TIMING");
    /* Min and max timed however slow the runs are (ASan on a loaded machine: opt's run scaled to
     * max went over the default 20 ms, and max kept opt's choice); the bound's own check is
     * below, with the default. */
    dt_tactic_point_s = 10.0;
    CHECK_EQ_INT(dt_pass_tactics(dev, dev->net, 1, count_progress, &progress, &changed), DUCTILE_OK);
    CHECK(changed);
    /* The choices are timings: on a loaded machine under ASan one noisy measurement can rank
     * a FAKE_SLOW_MS-slower tactic first (session 12's CI: max kept 3). Timed again, at most twice,
     * without the progress count; a systematic error fails every time. */
    static const int64_t expect[3] = {1, 3, 4};
    for (int again = 0; again < 2 && !stored_is(dev, expect); again++) {
        fprintf(stderr, "replay-timed choices differ from 1 3 4: timing again\n");
        CHECK_EQ_INT(dt_pass_tactics(dev, dev->net, 1, NULL, NULL, &changed), DUCTILE_OK);
    }
    /* Timed as a graph replays: runs recorded (two records per tactic and point: one run,
     * then the batch), replays between the device's marks; nothing copied, synced or marked
     * while recording; every record freed. */
    CHECK(capture_begins - begins > 0 && captures - ends == capture_begins - begins);
    CHECK(timer_marks > 0);
    CHECK_EQ_INT(in_capture_bad, in_capture_before);
    CHECK_EQ_INT(live_graphs, 0);
    CHECK_EQ_INT(progress, layers); /* once per layer, all its points timed */
    CHECK_EQ_INT(bad_pointers, bad_before);
    CHECK_EQ_INT(tactic_unwritten, 0);
    CHECK(tactic_runs[1] > 0 && tactic_runs[2] > 0 && tactic_runs[3] > 0 && tactic_runs[4] > 0);
    CHECK(tactic_point_runs[0] > 0 && tactic_point_runs[1] > 0 && tactic_point_runs[2] > 0);
    CHECK_EQ_INT(tactic_point_bad, 0);
    static const int64_t per_point[3] = {1, 3, 4};
    int convs = check_stored(dev, per_point);
    CHECK(convs >= 4);
    /* Written and loaded again, as the builder does: the ids per point stay, the layer info
     * shows them, and contexts run them. */
    void *bytes = NULL;
    size_t size = 0;
    CHECK_EQ_INT(dt_engine_write(dev->net, dev->profiles, dev->n_profiles, &bytes, &size), DUCTILE_OK);
    ductile_engine *dev2 = bytes ? fake_load(bytes, size, &fallbacks) : NULL;
    dt_free(bytes);
    CHECK(dev2 != NULL);
    if (dev2) {
        CHECK_EQ_INT(check_stored(dev2, per_point), convs);
        CHECK(strstr(ductile_engine_layer_info(dev2), "\"Tactics\": [{ \"min\": 1, \"opt\": 3, \"max\": 4 }]") != NULL);
        run_at(dev2, lo[0], convs, 1, DUCTILE_PROFILE_MIN);
        run_at(dev2, opt[0], convs, 3, DUCTILE_PROFILE_OPT);
        run_at(dev2, hi[0], convs, 4, DUCTILE_PROFILE_MAX);
        /* Volumes 80, 168, 384 against 64, 120, 480: nearest in log scale (168 is nearer 120
         * than 480 by ratio, not by difference). */
        run_at(dev2, (ductile_dims){4, {1, 1, 10, 8}}, convs, 1, DUCTILE_PROFILE_MIN);
        run_at(dev2, (ductile_dims){4, {1, 1, 14, 12}}, convs, 3, DUCTILE_PROFILE_OPT);
        run_at(dev2, (ductile_dims){4, {2, 1, 16, 12}}, convs, 4, DUCTILE_PROFILE_MAX);
        /* 240: the geometric mean of opt and max, a tie: opt. */
        run_at(dev2, (ductile_dims){4, {2, 1, 12, 10}}, convs, 3, DUCTILE_PROFILE_OPT);
        ductile_engine_free(dev2);
    }
    /* Runs that cannot be recorded (capture_end fails): timed by the host clock, the same
     * choices, no marks. */
    fake_capture_fail = true;
    timer_marks = 0;
    memset(tactic_point_runs, 0, sizeof tactic_point_runs);
    time_until(dev, expect, "host-timed");
    fake_capture_fail = false;
    CHECK_EQ_INT(timer_marks, 0);
    CHECK(tactic_point_runs[0] > 0 && tactic_point_runs[1] > 0 && tactic_point_runs[2] > 0);
    CHECK_EQ_INT(check_stored(dev, per_point), convs);
    CHECK_EQ_INT(live_graphs, 0);
    /* The bound and allocation checks below, and the last one, time by the host clock
     * (DUCTILE_TACTIC_TIMING=wall), as they were written: the fake's replays of slow runs
     * ranked tactic 1 over 3 for /c4/Conv under load (session 12's CI). */
    setenv("DUCTILE_TACTIC_TIMING", "wall", 1);
    /* Opt's runs take over 10 ms, and max has 4x opt's activation elements per conv: over the
     * 20 ms bound, so max is not timed and keeps opt's choice; min (fewer elements) is timed. */
    dt_tactic_point_s = 20e-3;
    fake_slow_opt = true;
    memset(tactic_point_runs, 0, sizeof tactic_point_runs);
    static const int64_t max_as_opt[3] = {1, 3, 3};
    time_until(dev, max_as_opt, "opt slow");
    fake_slow_opt = false;
    CHECK(tactic_point_runs[DUCTILE_PROFILE_MIN] > 0 && tactic_point_runs[DUCTILE_PROFILE_OPT] > 0);
    CHECK_EQ_INT(tactic_point_runs[DUCTILE_PROFILE_MAX], 0);
    CHECK_EQ_INT(check_stored(dev, max_as_opt), convs);
    /* A device that cannot hold a conv's buffers at max (a 64-channel input or output: 120
     * KiB there, 30 KiB at opt): max keeps opt's choice, and the build goes on; the last conv
     * (32 channels in, 9 out) fits and is timed. */
    fake_alloc_limit = 64 << 10;
    memset(tactic_point_runs, 0, sizeof tactic_point_runs);
    int full = 0;
    CHECK_EQ_INT(dt_pass_tactics(dev, dev->net, 1, NULL, NULL, &changed), DUCTILE_OK);
    for (int again = 0; again < 2 && !limited_choices(dev, &full); again++) /* as time_until */
        CHECK_EQ_INT(dt_pass_tactics(dev, dev->net, 1, NULL, NULL, &changed), DUCTILE_OK);
    fake_alloc_limit = 0;
    CHECK(tactic_point_runs[0] > 0 && tactic_point_runs[1] > 0 && tactic_point_runs[2] > 0);
    CHECK(limited_choices(dev, &full));
    CHECK_EQ_INT(full, 3);
    /* DUCTILE_TACTIC_TIMING=wall (set above): the host clock around plain launches, no marks;
     * the same choices. Max timed however slow (ASan: opt scaled to max passes 20 ms). */
    dt_tactic_point_s = 10.0;
    timer_marks = 0;
    time_until(dev, per_point, "wall");
    CHECK_EQ_INT(timer_marks, 0);
    CHECK_EQ_INT(check_stored(dev, per_point), convs);
    unsetenv("DUCTILE_TACTIC_TIMING");
    dt_tactic_point_s = 20e-3;
    fake_ids_stored = false;
    ductile_engine_free(dev);
    ductile_engine_free(cpu);
    CHECK_EQ_INT(n_blocks, 0);
    check_tactics_same_points();
}

/* ---- shape inputs (TensorRT's shape tensors) ----
 * Their values decide shapes, and shapes are computed on the host: on a device backend a
 * shape input is host memory (the caller's host buffer, or the context's own buffer, which is
 * host memory for it), a device pointer bound to one is refused, and a device kernel that
 * reads one as data gets a device copy of the values the shapes were computed from. Layers
 * whose views follow from those values are not known at load: they run as host fallbacks. */

static ductile_tensor *sh_tensor(ductile_network *net, const char *name, ductile_dtype dt, int rank)
{
    ductile_tensor *t = dt_network_add_tensor(net, name);
    t->dtype = dt;
    t->rank = rank;
    for (int d = 0; d < rank; d++) t->dims[d] = -1;
    return t;
}

static ductile_layer *sh_layer(ductile_network *net, const char *op, const char *name, ductile_tensor *a,
                               ductile_tensor *b, ductile_tensor *y)
{
    ductile_layer *L = dt_network_add_layer(net, op, name, 2, 1, 0);
    L->domain = "";
    L->opset = 17;
    L->in[0] = a;
    L->in[1] = b;
    L->out[0] = y;
    y->producer = L;
    return L;
}

/* x float32 [a, b], rshape int64 [2] and eshape int64 [3] (shape inputs), idx int64 [3]:
 *   sum = Add(x, x); r = Reshape(sum, rshape); e = Expand(r, eshape); z = Mul(e, e);
 *   w = Add(eshape, idx) (a device kernel reading a shape input as data). Outputs z, w, sum. */
static ductile_engine *shape_input_engine(void)
{
    ductile_network *net = NULL;
    CHECK_EQ_INT(dt_network_new(&net), DUCTILE_OK);
    if (!net) return NULL;
    net->opset = 17;
    ductile_tensor *x = sh_tensor(net, "x", DUCTILE_FLOAT32, 2), *rs = sh_tensor(net, "rshape", DUCTILE_INT64, 1),
                   *es = sh_tensor(net, "eshape", DUCTILE_INT64, 1), *idx = sh_tensor(net, "idx", DUCTILE_INT64, 1);
    rs->dims[0] = 2;
    es->dims[0] = idx->dims[0] = 3;
    dt_network_add_input(net, x);
    dt_network_add_input(net, rs);
    dt_network_add_input(net, es);
    dt_network_add_input(net, idx);
    ductile_tensor *sum = sh_tensor(net, "sum", DUCTILE_FLOAT32, 2), *r = sh_tensor(net, "r", DUCTILE_FLOAT32, 2),
                   *e = sh_tensor(net, "e", DUCTILE_FLOAT32, 3), *z = sh_tensor(net, "z", DUCTILE_FLOAT32, 3),
                   *w = sh_tensor(net, "w", DUCTILE_INT64, 1);
    sh_layer(net, "Add", "add", x, x, sum);
    sh_layer(net, "Reshape", "reshape", sum, rs, r);
    sh_layer(net, "Expand", "expand", r, es, e);
    sh_layer(net, "Mul", "mul", e, e, z);
    sh_layer(net, "Add", "add_shape", es, idx, w);
    dt_network_add_output(net, z);
    dt_network_add_output(net, w);
    dt_network_add_output(net, sum);
    ductile_builder *b = NULL;
    ductile_profile *p = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *eng = NULL;
    ductile_dims xlo = {2, {1, 1}}, xhi = {2, {8, 8}}, two = {1, {2}}, three = {1, {3}};
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_create(b, &p), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "x", &xlo, &xhi, &xhi), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "rshape", &two, &two, &two), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "eshape", &three, &three, &three), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "idx", &three, &three, &three), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_add_profile(cfg, p, NULL), DUCTILE_OK);
    ductile_status s = ductile_builder_build(b, net, cfg, &eng);
    if (s) fprintf(stderr, "shape inputs: build: %s\n", ductile_last_error());
    CHECK_EQ_INT(s, DUCTILE_OK);
    ductile_config_free(cfg);
    ductile_profile_free(p);
    ductile_builder_free(b);
    dt_network_delete(net);
    return eng;
}

static bool placed_on_host(const ductile_engine *e, const char *name)
{
    for (int i = 0; i < e->plan.n_layers; i++)
        if (!strcmp(e->plan.layers[i].layer->name, name)) return e->plan.layers[i].fallback;
    CHECK(!"layer not found");
    return false;
}

/* One run of both engines at x [xd0, xd1] (values 1..n) with these shape values and idx:
 * the CPU engine's inputs bound; the fake's x and idx bound (host), its shape inputs bound
 * to host arrays (own == false) or written into the context's own buffers (own == true).
 * Every output equal to the CPU engine's, shapes and bytes. */
static void shape_run(ductile_context *cc, ductile_context *dc, int64_t xd0, int64_t xd1, const int64_t *rv,
                      const int64_t *ev, bool own, int64_t *rbuf, int64_t *ebuf)
{
    static float x[64];
    static int64_t idx[3] = {10, 20, 30};
    for (int i = 0; i < 64; i++) x[i] = (float)(i + 1) * 0.5f;
    ductile_dims xd = {2, {xd0, xd1}}, two = {1, {2}}, three = {1, {3}};
    ductile_context *ctx[2] = {cc, dc};
    for (int c = 0; c < 2; c++) {
        CHECK_EQ_INT(ductile_context_set_input_shape(ctx[c], "x", &xd), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_input_shape(ctx[c], "rshape", &two), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_input_shape(ctx[c], "eshape", &three), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_input_shape(ctx[c], "idx", &three), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(ctx[c], "x", x), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(ctx[c], "idx", idx), DUCTILE_OK);
    }
    memcpy(rbuf, rv, 2 * sizeof *rv);
    memcpy(ebuf, ev, 3 * sizeof *ev);
    CHECK_EQ_INT(ductile_context_set_tensor_address(cc, "rshape", rbuf), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(cc, "eshape", ebuf), DUCTILE_OK);
    if (own) {
        void *rp = NULL, *ep = NULL;
        CHECK_EQ_INT(ductile_context_set_tensor_address(dc, "rshape", NULL), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(dc, "eshape", NULL), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_get_tensor_address(dc, "rshape", &rp), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_get_tensor_address(dc, "eshape", &ep), DUCTILE_OK);
        CHECK(rp != NULL && ep != NULL && !fake_owns(rp) && !fake_owns(ep)); /* host buffers */
        if (!rp || !ep) return;
        memcpy(rp, rv, 2 * sizeof *rv);
        memcpy(ep, ev, 3 * sizeof *ev);
    } else {
        CHECK_EQ_INT(ductile_context_set_tensor_address(dc, "rshape", rbuf), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(dc, "eshape", ebuf), DUCTILE_OK);
    }
    CHECK_EQ_INT(ductile_context_execute(cc), DUCTILE_OK);
    int before = bad_pointers;
    ductile_status s = ductile_context_execute(dc);
    if (s) fprintf(stderr, "shape inputs: fake execute: %s\n", ductile_last_error());
    CHECK_EQ_INT(s, DUCTILE_OK);
    CHECK_EQ_INT(bad_pointers, before);
    const char *outs[] = {"z", "w", "sum"};
    for (int o = 0; o < 3; o++) {
        ductile_dims dw, dg;
        CHECK_EQ_INT(ductile_context_get_tensor_shape(cc, outs[o], &dw), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_get_tensor_shape(dc, outs[o], &dg), DUCTILE_OK);
        CHECK_EQ_INT(dg.nb_dims, dw.nb_dims);
        size_t n = o == 1 ? 8 : 4;
        for (int d = 0; d < dw.nb_dims; d++) {
            CHECK_EQ_INT(dg.d[d], dw.d[d]);
            n *= (size_t)dw.d[d];
        }
        void *want = NULL, *got = NULL;
        CHECK_EQ_INT(ductile_context_get_tensor_address(cc, outs[o], &want), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_get_tensor_address(dc, outs[o], &got), DUCTILE_OK);
        CHECK(want && got && memcmp(want, got, n) == 0);
    }
}

static void check_shape_inputs(void)
{
    ductile_engine *cpu = shape_input_engine();
    int fallbacks = 0;
    ductile_engine *dev = cpu ? as_fake(cpu, &fallbacks) : NULL;
    if (!dev) {
        ductile_engine_free(cpu);
        return;
    }
    /* Reshape and what follows it take their dims from shape values: host; the rest: the
     * device (Expand the fake lacks anyway). */
    CHECK(!placed_on_host(dev, "add"));
    CHECK(!placed_on_host(dev, "add_shape"));
    CHECK(placed_on_host(dev, "reshape"));
    CHECK(placed_on_host(dev, "mul"));
    CHECK_EQ_INT(fallbacks, 3);
    /* Where buffers are (ductile_engine_tensor_location): shape inputs on the host. */
    static const char *const io[] = {"x", "rshape", "eshape", "idx", "z", "w", "sum"};
    for (int i = 0; i < 7; i++) {
        bool shape = i == 1 || i == 2;
        CHECK_EQ_INT(ductile_engine_tensor_location(dev, io[i]), shape ? DUCTILE_LOCATION_HOST : DUCTILE_LOCATION_DEVICE);
        CHECK_EQ_INT(ductile_engine_tensor_location(cpu, io[i]), DUCTILE_LOCATION_HOST);
    }
    CHECK_EQ_INT(ductile_engine_tensor_location(dev, "nope"), -1);
    CHECK_EQ_INT(ductile_engine_tensor_location(dev, NULL), -1);
    CHECK_EQ_INT(ductile_engine_tensor_location(NULL, "x"), -1);
    ductile_context *cc = NULL, *dc = NULL;
    CHECK_EQ_INT(ductile_context_create(cpu, &cc), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_create(dev, &dc), DUCTILE_OK);
    if (!cc || !dc) {
        ductile_context_free(cc);
        ductile_context_free(dc);
        ductile_engine_free(dev);
        ductile_engine_free(cpu);
        return;
    }
    int64_t rbuf[2], ebuf[3];
    /* x [2, 6]: r [3, 4], e [2, 3, 4]; then r [6, 2], e [2, 6, 2] (new values only, same
     * shapes: the next execute plans and uploads again); then own buffers, x [4, 4]. */
    const int64_t r1[] = {3, 4}, e1[] = {2, 1, 4}, r2[] = {6, -1}, e2[] = {2, 6, 1}, r3[] = {-1, 8}, e3[] = {3, 2, 8};
    shape_run(cc, dc, 2, 6, r1, e1, false, rbuf, ebuf);
    shape_run(cc, dc, 2, 6, r2, e2, false, rbuf, ebuf);
    ductile_dims zd;
    CHECK_EQ_INT(ductile_context_get_tensor_shape(dc, "z", &zd), DUCTILE_OK);
    CHECK(zd.nb_dims == 3 && zd.d[0] == 2 && zd.d[1] == 6 && zd.d[2] == 2);
    shape_run(cc, dc, 4, 4, r3, e3, true, rbuf, ebuf);
    CHECK_EQ_INT(ductile_context_get_tensor_shape(dc, "z", &zd), DUCTILE_OK);
    CHECK(zd.nb_dims == 3 && zd.d[0] == 3 && zd.d[1] == 2 && zd.d[2] == 8);
    /* A device pointer for a shape input: refused, naming it; the binding stays as it was. */
    void *d = fake_alloc(16);
    CHECK_EQ_INT(ductile_context_set_tensor_address(dc, "rshape", d), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(),
                 "input 'rshape' is a shape tensor (its values decide shapes, and the shapes are computed on the host): "
                 "bind host memory to it, not fake device memory");
    CHECK_EQ_INT(ductile_context_execute(dc), DUCTILE_OK);
    /* Other inputs still take device memory. */
    void *dx = fake_alloc(64 * sizeof(float));
    CHECK_EQ_INT(ductile_context_set_tensor_address(dc, "x", dx), DUCTILE_OK);
    fake_release(dx);
    fake_release(d);
    ductile_context_free(cc);
    ductile_context_free(dc);
    ductile_engine_free(dev);
    ductile_engine_free(cpu);
    CHECK_EQ_INT(n_blocks, 0);
}

/* ---- eager engines (shapes that follow from computed data) on the device ----
 * They run on the host, all of them (dt_engine_upload): no fake kernel launches, every
 * execute layer placed "cpu fallback" with the reason in "HostEngine", the context's own
 * buffers in host memory, inputs bound to device memory copied in first (counted copies and
 * one wait), outputs equal to the CPU engine's bit for bit, and device pointers refused
 * where the host must hold the bytes (outputs, strings, sequence items). */

typedef struct eager_in {
    const char *name;
    ductile_dims lo, hi;       /* the profile's range */
    ductile_dims shape[2];     /* per run */
    const void *data[2];
} eager_in;

static ductile_engine *eager_build(pbw m, const eager_in *ins, int n)
{
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_profile *p = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_memory(net, m.p, m.n), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_create(b, &p), DUCTILE_OK);
    for (int i = 0; i < n; i++) CHECK_EQ_INT(ductile_profile_set_shape(p, ins[i].name, &ins[i].lo, &ins[i].hi, &ins[i].hi), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_add_profile(cfg, p, NULL), DUCTILE_OK);
    ductile_status s = ductile_builder_build(b, net, cfg, &e);
    if (s) fprintf(stderr, "build: %s\n", ductile_last_error());
    CHECK_EQ_INT(s, DUCTILE_OK);
    ductile_config_free(cfg);
    ductile_profile_free(p);
    ductile_network_free(net);
    ductile_builder_free(b);
    free(m.p);
    return e;
}

static size_t dims_count(const ductile_dims *d)
{
    size_t n = 1;
    for (int k = 0; k < d->nb_dims; k++) n *= (size_t)d->d[k];
    return n;
}

static bool same_strings(const ductile_string *a, const ductile_string *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].length != b[i].length || (a[i].length && memcmp(a[i].data, b[i].data, a[i].length))) return false;
    return true;
}

/* Every output of both contexts after a run: same shape and bytes (strings: same text);
 * the device context's in host memory. */
static void eager_compare_outputs(ductile_context *cc, ductile_context *dc, const ductile_engine *cpu, const char *what)
{
    int32_t nio = ductile_engine_num_io_tensors(cpu);
    for (int32_t i = 0; i < nio; i++) {
        const char *name = ductile_engine_io_tensor_name(cpu, i);
        if (ductile_engine_is_input(cpu, name)) continue;
        bool same = true;
        if (ductile_engine_tensor_kind(cpu, name) != DUCTILE_VALUE_TENSOR) {
            const ductile_item *a = NULL, *b = NULL;
            int64_t na = 0, nb = 0;
            CHECK_EQ_INT(ductile_context_get_sequence(cc, name, &a, &na), DUCTILE_OK);
            CHECK_EQ_INT(ductile_context_get_sequence(dc, name, &b, &nb), DUCTILE_OK);
            same = na == nb;
            for (int64_t j = 0; same && j < na; j++) {
                same = a[j].dtype == b[j].dtype && !memcmp(&a[j].dims, &b[j].dims, sizeof a[j].dims) &&
                       !memcmp(a[j].data, b[j].data, dims_count(&a[j].dims) * ductile_dtype_size(a[j].dtype));
                CHECK(!fake_owns(b[j].data));
            }
        } else {
            ductile_dims da, db;
            void *want = NULL, *got = NULL;
            CHECK_EQ_INT(ductile_context_get_tensor_shape(cc, name, &da), DUCTILE_OK);
            CHECK_EQ_INT(ductile_context_get_tensor_shape(dc, name, &db), DUCTILE_OK);
            CHECK_EQ_INT(ductile_context_get_tensor_address(cc, name, &want), DUCTILE_OK);
            CHECK_EQ_INT(ductile_context_get_tensor_address(dc, name, &got), DUCTILE_OK);
            CHECK(got && !fake_owns(got)); /* the engine ran on the host: its outputs are there */
            ductile_dtype dt = ductile_engine_tensor_dtype(cpu, name);
            size_t n = dims_count(&da);
            same = !memcmp(&da, &db, sizeof da) && want && got &&
                   (dt == DUCTILE_STRING ? same_strings(want, got, n) : !memcmp(want, got, n * ductile_dtype_size(dt)));
        }
        if (!same) fprintf(stderr, "%s: output '%s' differs from the CPU engine\n", what, name);
        CHECK(same);
    }
}

/* Runs the model on the CPU and on the fake twice (ins' two runs; seq, when given, is set on
 * the sequence input "s"): first with host buffers bound, then with device ones (a copy in
 * fake memory of each non-string input), on a caller stream. */
static void eager_case(pbw m, const eager_in *ins, int n_in, const ductile_item *seq, int64_t n_seq, const char *cause,
                       const char *what)
{
    ductile_engine *cpu = eager_build(m, ins, n_in);
    int fallbacks = 0;
    ductile_engine *dev = cpu ? as_fake(cpu, &fallbacks) : NULL;
    ductile_context *cc = NULL, *dc = NULL;
    if (dev) {
        CHECK_EQ_INT(ductile_context_create(cpu, &cc), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_create(dev, &dc), DUCTILE_OK);
        /* Where each layer runs: all on the host, and why. */
        const char *info = ductile_engine_layer_info(dev);
        char reason[300];
        snprintf(reason, sizeof reason, "\"HostEngine\": { \"Reason\": \"output shapes depend on data computed at run time\", %s }",
                 cause);
        CHECK(strstr(info, reason) != NULL);
        int execute = 0, host = 0;
        for (const char *q = info; (q = strstr(q, "\"Stage\": \"execute\"")); q++) execute++;
        for (const char *q = info; (q = strstr(q, "\"Placement\": \"cpu fallback\"")); q++) host++;
        CHECK(execute > 0 && execute == host && fallbacks == execute);
        fprintf(stderr, "%s: %d layers, all on the host\n", what, execute);
        CHECK(!strstr(info, "\"Kernel\": \"fake."));
        /* Every I/O tensor is host memory (ductile_engine_tensor_location). */
        for (int32_t i = 0; i < ductile_engine_num_io_tensors(dev); i++)
            CHECK_EQ_INT(ductile_engine_tensor_location(dev, ductile_engine_io_tensor_name(dev, i)), DUCTILE_LOCATION_HOST);
    }
    if (!cc || !dc) goto done;
    char stream; /* a caller stream: the fake ignores it */
    for (int round = 0; round < 4; round++) {
        int r = round % 2;
        bool dev_mem = round >= 2;
        void *dbuf[8] = {0};
        int staged = 0;
        for (int i = 0; i < n_in; i++) {
            CHECK_EQ_INT(ductile_context_set_input_shape(cc, ins[i].name, &ins[i].shape[r]), DUCTILE_OK);
            CHECK_EQ_INT(ductile_context_set_input_shape(dc, ins[i].name, &ins[i].shape[r]), DUCTILE_OK);
            ductile_dtype dt = ductile_engine_tensor_dtype(cpu, ins[i].name);
            size_t bytes = dims_count(&ins[i].shape[r]) * ductile_dtype_size(dt);
            void *d = (void *)ins[i].data[r];
            if (dev_mem && dt != DUCTILE_STRING) {
                d = fake_alloc(bytes);
                memcpy(d, ins[i].data[r], bytes);
                dbuf[i] = d;
                staged += bytes > 0;
            }
            CHECK_EQ_INT(ductile_context_set_tensor_address(cc, ins[i].name, (void *)ins[i].data[r]), DUCTILE_OK);
            CHECK_EQ_INT(ductile_context_set_tensor_address(dc, ins[i].name, d), DUCTILE_OK);
        }
        if (seq) {
            CHECK_EQ_INT(ductile_context_set_sequence(cc, "s", seq, n_seq - r), DUCTILE_OK);
            CHECK_EQ_INT(ductile_context_set_sequence(dc, "s", seq, n_seq - r), DUCTILE_OK);
        }
        int runs = fake_kernel_runs, c0 = copies, s0 = syncs;
        CHECK_EQ_INT(ductile_context_execute(cc), DUCTILE_OK);
        ductile_status st = ductile_context_execute_async(dc, &stream);
        if (st) fprintf(stderr, "%s: %s\n", what, ductile_last_error());
        CHECK_EQ_INT(st, DUCTILE_OK);
        CHECK_EQ_INT(fake_kernel_runs, runs);
        /* One copy per device input, then one wait for the stream: nothing else. */
        CHECK_EQ_INT(copies - c0, staged);
        CHECK_EQ_INT(syncs - s0, staged ? 1 : 0);
        eager_compare_outputs(cc, dc, cpu, what);
        for (int i = 0; i < n_in; i++) {
            CHECK_EQ_INT(ductile_context_set_tensor_address(dc, ins[i].name, NULL), DUCTILE_OK);
            if (dbuf[i]) fake_release(dbuf[i]);
        }
    }
    /* Outputs stay in the context's host buffers: a device buffer bound to one is refused. */
    int32_t nio = ductile_engine_num_io_tensors(dev);
    for (int32_t i = 0; i < nio; i++) {
        const char *name = ductile_engine_io_tensor_name(dev, i);
        if (ductile_engine_is_input(dev, name) || ductile_engine_tensor_kind(dev, name) != DUCTILE_VALUE_TENSOR) continue;
        void *d = fake_alloc(64);
        char want[600];
        if (ductile_engine_tensor_dtype(dev, name) == DUCTILE_STRING)
            snprintf(want, sizeof want,
                     "output '%s' is a string tensor (its elements are views of host bytes, and string layers run on the "
                     "host): bind host memory to it, not fake device memory", name);
        else
            snprintf(want, sizeof want,
                     "output '%s': the engine runs on the host (output shapes depend on data computed by node '%s' (%s)), "
                     "and execute leaves its outputs in the context's own host buffers (get_tensor_address after "
                     "execute): a fake device buffer cannot be bound to one",
                     name, dev->plan.eager_cause->name, dev->plan.eager_cause->op_type);
        CHECK_EQ_INT(ductile_context_set_tensor_address(dc, name, d), DUCTILE_ERR_INVALID_ARGUMENT);
        CHECK_EQ_STR(ductile_last_error(), want);
        fake_release(d);
        break;
    }
done:
    ductile_context_free(cc);
    ductile_context_free(dc);
    ductile_engine_free(dev);
    ductile_engine_free(cpu);
}

#define DIMS1(a) {1, {a}}

static void check_eager(void)
{
    int n0 = n_blocks;
    static const float x0[6] = {0, 1.5f, 0, -2, 3, 0}, x1[6] = {4, 0, 0, 0, 0, 7};
    eager_in nz[] = {{"x", DIMS1(1), DIMS1(8), {DIMS1(6), DIMS1(6)}, {x0, x1}}};
    eager_case(em_nonzero_model(), nz, 1, NULL, 0, "\"Node\": \"nz0\", \"LayerType\": \"NonZero\"", "NonZero");

    static const float ix0[2] = {-1, 2}, ix1[2] = {3, -4};
    static const bool c0 = true, c1 = false;
    eager_in iff[] = {{"x", DIMS1(2), DIMS1(2), {DIMS1(2), DIMS1(2)}, {ix0, ix1}},
                      {"c", {0, {0}}, {0, {0}}, {{0, {0}}, {0, {0}}}, {&c0, &c1}}};
    eager_case(em_if_model(), iff, 2, NULL, 0, "\"Node\": \"if0\", \"LayerType\": \"If\"", "If");

    static const int64_t m0 = 3, m1 = 0;
    static const float s0 = 2, lx = 1.5f, xs[3] = {1, 10, 100};
    ductile_dims one = DIMS1(1), sc = {0, {0}}, x31 = {2, {3, 1}};
    eager_in loop[] = {{"M", sc, sc, {sc, sc}, {&m0, &m1}},
                       {"s0", one, one, {one, one}, {&s0, &s0}},
                       {"x", one, one, {one, one}, {&lx, &lx}},
                       {"xs", x31, x31, {x31, x31}, {xs, xs}}};
    eager_case(em_loop_scan_model(), loop, 4, NULL, 0, "\"Node\": \"loop0\", \"LayerType\": \"Loop\"", "Loop/Scan");

    static const float X[6] = {1, 2, 3, 4, 5, 6}, X2[6] = {-6, -5, -4, -3, -2, -1}, A[2] = {-1, -2}, B[3] = {7, 8, 9};
    static const int64_t at0 = 1, at1 = -1;
    ductile_dims d23 = {2, {2, 3}};
    eager_in seqin[] = {{"x", d23, d23, {d23, d23}, {X, X2}}, {"at", sc, sc, {sc, sc}, {&at0, &at1}}};
    const ductile_item items[2] = {{DUCTILE_FLOAT32, DIMS1(2), A}, {DUCTILE_FLOAT32, DIMS1(3), B}};
    eager_case(em_seq_model(), seqin, 2, items, 2, "\"Node\": \"ins\", \"LayerType\": \"SequenceInsert\"", "sequences");

    static const ductile_string sx0[3] = {{"a-b", 3}, {NULL, 0}, {"\xe7\x9a\x84", 3}}, sx1[3] = {{"x", 1}, {"--", 2}, {"q", 1}};
    eager_in strs[] = {{"x", DIMS1(3), DIMS1(3), {DIMS1(3), DIMS1(3)}, {sx0, sx1}}};
    eager_case(em_strings_model(1), strs, 1, NULL, 0, "\"Node\": \"split\", \"LayerType\": \"StringSplit\"", "strings");

    /* --fp16 on a device: an eager engine keeps float32 (it runs on the host) and builds;
     * the precision pass failed on its data-dependent shapes. */
    ductile_engine *nzc = eager_build(em_nonzero_model(), nz, 1);
    int nfb = 0;
    ductile_engine *nzd = nzc ? as_fake(nzc, &nfb) : NULL;
    if (nzd) {
        dt_backend half = fake;
        half.precisions = 1u << DUCTILE_FLAG_FP16;
        pbw m = em_nonzero_model();
        ductile_network *net = NULL;
        CHECK_EQ_INT(dt_network_new(&net), DUCTILE_OK);
        CHECK_EQ_INT(ductile_onnx_parse_memory(net, m.p, m.n), DUCTILE_OK);
        bool changed = true;
        ductile_status st = dt_pass_precision(net, nzd, &half, 1u << DUCTILE_FLAG_FP16, &changed);
        if (st) fprintf(stderr, "precision: %s\n", ductile_last_error());
        CHECK_EQ_INT(st, DUCTILE_OK);
        CHECK(!changed);
        dt_network_delete(net);
        free(m.p);
    }
    ductile_engine_free(nzd);
    ductile_engine_free(nzc);

    /* Host memory where the host must read it: a sequence item and a string input. */
    ductile_engine *cpu = eager_build(em_seq_model(), seqin, 2);
    int fb = 0;
    ductile_engine *dev = cpu ? as_fake(cpu, &fb) : NULL;
    ductile_context *dc = NULL;
    if (dev) CHECK_EQ_INT(ductile_context_create(dev, &dc), DUCTILE_OK);
    if (dc) {
        void *d = fake_alloc(sizeof B);
        ductile_item bad[2] = {items[0], {DUCTILE_FLOAT32, DIMS1(3), d}};
        CHECK_EQ_INT(ductile_context_set_sequence(dc, "s", bad, 2), DUCTILE_ERR_INVALID_ARGUMENT);
        CHECK_EQ_STR(ductile_last_error(), "set_sequence: item 1 of input 's' is fake device memory; sequence and optional "
                                           "items are host memory (set_sequence copies them)");
        fake_release(d);
    }
    ductile_context_free(dc);
    ductile_engine_free(dev);
    ductile_engine_free(cpu);
    CHECK_EQ_INT(n_blocks, n0);
}

/* A string engine that is not eager (StringConcat: shapes from shapes) on the device: its
 * string layer is a host fallback, and its string I/O is host memory: bound in place, the
 * context's own buffers on the host, device memory refused. */
static void check_string_io(void)
{
    int n0 = n_blocks;
    static const ductile_string sx0[3] = {{"a-b", 3}, {NULL, 0}, {"\xe7\x9a\x84", 3}};
    eager_in strs[] = {{"x", DIMS1(3), DIMS1(3), {DIMS1(3), DIMS1(3)}, {sx0, sx0}}};
    ductile_engine *cpu = eager_build(em_strings_model(0), strs, 1);
    int fb = 0;
    ductile_engine *dev = cpu ? as_fake(cpu, &fb) : NULL;
    ductile_context *cc = NULL, *dc = NULL;
    if (dev) {
        CHECK(!dev->plan.eager);
        CHECK_EQ_INT(fb, 1);
        CHECK_EQ_INT(ductile_engine_tensor_location(dev, "x"), DUCTILE_LOCATION_HOST);
        CHECK_EQ_INT(ductile_engine_tensor_location(dev, "y"), DUCTILE_LOCATION_HOST);
        CHECK_EQ_INT(ductile_context_create(cpu, &cc), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_create(dev, &dc), DUCTILE_OK);
    }
    for (int round = 0; cc && dc && round < 2; round++) {
        ductile_dims d3 = DIMS1(3);
        CHECK_EQ_INT(ductile_context_set_input_shape(cc, "x", &d3), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_input_shape(dc, "x", &d3), DUCTILE_OK);
        ductile_string y[3] = {{0}}, yc[3] = {{0}};
        CHECK_EQ_INT(ductile_context_set_tensor_address(cc, "x", (void *)sx0), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(cc, "y", yc), DUCTILE_OK);
        if (round == 0) { /* bound host buffers, read and written in place */
            CHECK_EQ_INT(ductile_context_set_tensor_address(dc, "x", (void *)sx0), DUCTILE_OK);
            CHECK_EQ_INT(ductile_context_set_tensor_address(dc, "y", y), DUCTILE_OK);
        } else { /* the context's own buffers: host memory */
            void *xp = NULL;
            CHECK_EQ_INT(ductile_context_set_tensor_address(dc, "x", NULL), DUCTILE_OK);
            CHECK_EQ_INT(ductile_context_set_tensor_address(dc, "y", NULL), DUCTILE_OK);
            CHECK_EQ_INT(ductile_context_get_tensor_address(dc, "x", &xp), DUCTILE_OK);
            CHECK(xp && !fake_owns(xp));
            if (xp) memcpy(xp, sx0, sizeof sx0);
        }
        CHECK_EQ_INT(ductile_context_execute(cc), DUCTILE_OK);
        ductile_status st = ductile_context_execute(dc);
        if (st) fprintf(stderr, "string io: %s\n", ductile_last_error());
        CHECK_EQ_INT(st, DUCTILE_OK);
        void *yp = y;
        if (round == 1) CHECK_EQ_INT(ductile_context_get_tensor_address(dc, "y", &yp), DUCTILE_OK);
        CHECK(yp && !fake_owns(yp) && same_strings(yc, yp, 3));
    }
    if (dc) {
        void *d = fake_alloc(64);
        CHECK_EQ_INT(ductile_context_set_tensor_address(dc, "x", d), DUCTILE_ERR_INVALID_ARGUMENT);
        CHECK_EQ_STR(ductile_last_error(), "input 'x' is a string tensor (its elements are views of host bytes, and string "
                                           "layers run on the host): bind host memory to it, not fake device memory");
        fake_release(d);
    }
    ductile_context_free(cc);
    ductile_context_free(dc);
    ductile_engine_free(dev);
    ductile_engine_free(cpu);
    CHECK_EQ_INT(n_blocks, n0);
}

int main(void)
{
    check_eager();
    check_string_io();
    check_tactics();
    check_shape_inputs();
    int timing_captures = capture_begins; /* the builder's tactic timing records runs */
    const char *sr[] = {"input"};
    ductile_dims sr_lo[] = {{4, {1, 1, 16, 16}}}, sr_hi[] = {{4, {2, 1, 40, 24}}};
    check_model("superres.onnx", sr, sr_lo, sr_hi, 1, 1, NULL);
    const char *bert[] = {"input_ids", "attention_mask"};
    ductile_dims b_lo[] = {{2, {1, 5}}, {2, {1, 5}}}, b_hi[] = {{2, {2, 17}}, {2, {2, 17}}};
    check_model("bert_small.onnx", bert, b_lo, b_hi, 2, 1, NULL);
    const char *seg[] = {"input_1"};
    ductile_dims s_lo[] = {{4, {1, 3, 64, 64}}}, s_hi[] = {{4, {1, 3, 96, 80}}};
    check_model("seg_lraspp.onnx", seg, s_lo, s_hi, 1, 1, NULL);
    /* Outputs known before execute keep their kind (a constant, values of the shape pass,
     * one of them also read by a device kernel: Resize's sizes) and reach the output buffer
     * through the device: the context's own, or a host buffer bound to it. */
    const char *known[] = {"/m/classifier/Constant_output_0", "/m/Shape_output_0", "/m/classifier/Concat_1_output_0",
                           NULL};
    check_model("seg_lraspp.onnx", seg, s_lo, s_hi, 1, 1, known);
    fake_lacks_gemm = true;
    check_model("seg_lraspp.onnx", seg, s_lo, s_hi, 1, 1, NULL);
    check_model("bert_small.onnx", bert, b_lo, b_hi, 2, 1, NULL);
    fake_lacks_gemm = false;
    CHECK(copies > 0 && syncs > 0);
    /* Engines with fallback layers are never recorded. */
    CHECK_EQ_INT(capture_begins, timing_captures);
    check_alias("bert_small.onnx", bert, b_lo, b_hi, 2);
    const char *mb[] = {"input"};
    ductile_dims m_lo[] = {{4, {1, 3, 224, 224}}}, m_hi[] = {{4, {2, 3, 224, 224}}};
    check_alias("mobilenet_v2.onnx", mb, m_lo, m_hi, 1); /* its Flatten before the Gemm */
    check_graphs("superres.onnx", sr, sr_lo, sr_hi, 1);
    check_graphs("bert_small.onnx", bert, b_lo, b_hi, 2);
    check_memory("superres.onnx", sr, sr_lo, sr_hi, 1);
    check_memory("bert_small.onnx", bert, b_lo, b_hi, 2);
    check_flex_modifiers_fall_back();
    TEST_MAIN_END();
}
