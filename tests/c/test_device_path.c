/* The runtime's device path (buffers in a backend's own memory, per-layer host fallback with
 * copies, device copies of constants and shape-pass values, caller buffers in host memory
 * staged through the context's own) checked without a GPU: a fake device backend whose
 * "device memory" is host memory it tracks, whose kernels are the CPU's behind a check that
 * every pointer they get is its own memory, and which lacks half the ops (those run as
 * fallbacks). Outputs must equal the CPU engine's bit for bit: the same kernels run on the
 * same data, only the memory and the copies differ. Also checks the fallback count and the
 * "cpu fallback" placement of --dumpLayerInfo. */
#include "testutil.h"

#include "ductile.h"
#include "backend/backend.h"
#include "runtime/engine_impl.h"
#include "builder/optimize.h"
#include "core/alloc.h"
#include "core/status.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fake device ---- */

enum { MAX_BLOCKS = 4096 };
static struct { char *p; size_t n; } blocks[MAX_BLOCKS];
static int n_blocks, bad_pointers, copies, syncs;

static void *fake_alloc(size_t bytes)
{
    if (n_blocks == MAX_BLOCKS) return NULL;
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

static ductile_status fake_copy(void *dst, const void *src, size_t bytes, void *stream)
{
    copies++;
    memcpy(dst, src, bytes);
    return DUCTILE_OK;
}

static ductile_status fake_sync(void *stream)
{
    syncs++;
    return DUCTILE_OK;
}

/* Tactics of the fake (FusedConv: 1, 2, 3): 2 never applies, 3 runs the kernel four times
 * (the slow one), so the builder must keep 1. Runs per tactic, and timing runs whose input
 * was never written (the alloc's NaN fill) or that lack the host views. */
static int tactic_runs[4], tactic_unwritten;

static int fake_tactics(const ductile_layer *L, const dt_view *in, int *ids, int cap)
{
    if (strcmp(L->op_type, "FusedConv") || cap < 3) return 0;
    for (int i = 0; i < 3; i++) ids[i] = i + 1;
    return 3;
}

/* The fake's kernels: the CPU's, after checking that every operand is device memory. */
static ductile_status fake_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    for (int k = 0; k < L->n_in; k++)
        if (L->in[k] && in[k].data && !fake_owns(in[k].data)) bad_pointers++;
    for (int k = 0; k < L->n_out; k++)
        if (!fake_owns(out[k].data)) bad_pointers++;
    if (ex->state != (void *)&n_blocks) bad_pointers++;
    int reps = 1;
    if (ex->tactic > 0 && ex->tactic < 4) {
        tactic_runs[ex->tactic]++;
        tactic_unwritten += !ex->host_in || isnan(((const float *)in[0].data)[0]);
        if (ex->tactic == 2) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "tactic 2 does not apply");
        if (ex->tactic == 3) reps = 4;
    }
    dt_exec hx = *ex;
    hx.stream = NULL;
    hx.tactic = 0; /* the fake's ids are not the CPU's */
    ductile_status s = DUCTILE_OK;
    for (int r = 0; r < reps && !s; r++) s = dt_backend_host()->find_kernel(L->op_type)(L, in, out, &hx);
    return s;
}

/* Half the ops: the rest are fallbacks. */
static const char *const fake_ops[] = {"FusedConv", "MatMul", "Add", "Softmax", "Transpose", "Gather", "Mul",
                                       "LayerNormalization", "Gemm", "Reshape", "Concat", "Resize", NULL};

/* Set: the fake also lacks the ops with the largest kernel scratch, so they run as host
 * fallbacks through their compiled CPU kernels (the conv's im2col, the GEMM's packing, a
 * MatMul's B packed at build time). */
static bool fake_lacks_gemm;

static dt_kernel_fn fake_find(const char *op)
{
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
    .tactics = fake_tactics,
};

/* ---- the check ---- */

/* extra_outputs: NULL, or NULL-terminated names of tensors to mark as outputs as well. */
static ductile_engine *build(const char *file, const char *const *names, const ductile_dims *lo,
                             const ductile_dims *hi, int n_in, const char *const *extra_outputs)
{
    char path[1024];
    const char *dir = getenv("DUCTILE_MODELS");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "../shared/models", file);
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
    for (int i = 0; i < n_in; i++) CHECK_EQ_INT(ductile_profile_set_shape(p, names[i], &lo[i], &hi[i], &hi[i]), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_add_profile(cfg, p, NULL), DUCTILE_OK);
    CHECK_EQ_INT(ductile_builder_build(b, net, cfg, &e), DUCTILE_OK);
    ductile_config_free(cfg);
    ductile_profile_free(p);
    ductile_network_free(net);
    ductile_builder_free(b);
    return e;
}

/* The same engine (its bytes: builds may time different tactics) turned into a fake-device
 * one, as dt_engine_from_bytes does for a real one. */
static ductile_engine *as_fake(const ductile_engine *cpu, int *fallbacks)
{
    void *bytes = NULL;
    size_t n = 0;
    ductile_engine *e = NULL;
    CHECK_EQ_INT(ductile_engine_serialize(cpu, &bytes, &n), DUCTILE_OK);
    CHECK_EQ_INT(ductile_engine_load_memory(bytes, n, &e), DUCTILE_OK);
    ductile_free(bytes);
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
        gemm_fallbacks += !strcmp(op, "FusedConv") || !strcmp(op, "MatMul") || !strcmp(op, "Gemm");
    }
    CHECK(!fake_lacks_gemm || gemm_fallbacks > 0);
    CHECK(strstr(ductile_engine_layer_info(dev), "\"Placement\": \"cpu fallback\"") != NULL);
    CHECK(strstr(ductile_engine_layer_info(dev), "\"Kernel\": \"fake.") != NULL);
    fprintf(stderr, "%s: %d fallback layers of %d\n", file, fallbacks, dev->plan.n_layers);
    compare(cpu, dev, names, lo, n_in, file);
    compare(cpu, dev, names, hi, n_in, file);
    ductile_engine_free(dev);
    ductile_engine_free(cpu);
    CHECK_EQ_INT(n_blocks, 0); /* every device buffer released */
}

static void count_progress(void *user, int32_t profile, int32_t n_profiles, int32_t done, int32_t total)
{
    (*(int *)user)++;
}

/* The builder's tactic timing (builder/tactics.c) on a device backend: buffers from the
 * backend's alloc with data written through its copy, constants from the engine's device
 * copies, the backend's state, a tactic that does not apply skipped, the fastest stored. */
static void check_tactics(void)
{
    const char *sr[] = {"input"};
    ductile_dims lo[] = {{4, {1, 1, 16, 16}}}, hi[] = {{4, {2, 1, 40, 24}}};
    ductile_engine *cpu = build("superres.onnx", sr, lo, hi, 1, NULL);
    int fallbacks = 0;
    ductile_engine *dev = cpu ? as_fake(cpu, &fallbacks) : NULL;
    if (!dev) {
        ductile_engine_free(cpu);
        return;
    }
    int progress = 0, bad_before = bad_pointers, convs = 0;
    bool changed = false;
    CHECK_EQ_INT(dt_pass_tactics(dev, dev->net, 1, count_progress, &progress, &changed), DUCTILE_OK);
    CHECK(changed);
    CHECK(progress > 0);
    CHECK_EQ_INT(bad_pointers, bad_before);
    CHECK_EQ_INT(tactic_unwritten, 0);
    CHECK(tactic_runs[1] > 0 && tactic_runs[2] > 0 && tactic_runs[3] > 0);
    for (int i = 0; i < dev->net->n_layers; i++) {
        const ductile_layer *L = dev->net->layers[i];
        if (strcmp(L->op_type, "FusedConv")) continue;
        int64_t n = 0;
        const int64_t *t = dt_attr_ints(L, "tactic", &n);
        CHECK(t != NULL && n == 1);
        if (t && n == 1) CHECK_EQ_INT(t[0], 1);
        convs++;
    }
    CHECK(convs >= 4);
    ductile_engine_free(dev);
    ductile_engine_free(cpu);
    CHECK_EQ_INT(n_blocks, 0);
}

int main(void)
{
    check_tactics();
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
    TEST_MAIN_END();
}
