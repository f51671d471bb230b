/* ductile_set_allocator: every allocation of the library goes through the caller's allocator,
 * and a failed allocation anywhere in the workflow (parse from bytes and from a file, build
 * with a profile, serialize, save, load from bytes and from a file, context creation, shapes,
 * execute) gives DUCTILE_ERR_OUT_OF_MEMORY with a message, leaks nothing (the counting
 * allocator's live bytes come back to zero after every run), and leaves the objects that
 * existed before the failure working: the failed call is retried on them and the workflow
 * must end with the right outputs. */
#include "ductile.h"
#include "core/alloc.h"
#include "runtime/memplan.h"
#include "onnx_writer.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------- */
/* A counting allocator that fails its Nth call (once; the calls after it succeed again).     */
/* ---------------------------------------------------------------------------------------- */

typedef struct counting {
    long calls;       /* alloc calls so far */
    long fail_at;     /* the call that returns NULL; 0: none */
    long failed;      /* calls that returned NULL */
    long live_blocks;
    long long live_bytes;
} counting;

static counting cnt;

/* Each block gets a header of `alignment` bytes whose last 16 hold its size and alignment. */
static void *count_alloc(void *user, size_t size, size_t alignment)
{
    counting *c = user;
    long n = __atomic_add_fetch(&c->calls, 1, __ATOMIC_RELAXED);
    if (n == __atomic_load_n(&c->fail_at, __ATOMIC_RELAXED)) {
        __atomic_add_fetch(&c->failed, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    if (alignment < 16 || (alignment & (alignment - 1))) {
        fprintf(stderr, "test_alloc: alignment %zu asked for\n", alignment);
        abort();
    }
    unsigned char *base = NULL;
    if (posix_memalign((void **)&base, alignment, size + alignment) != 0) return NULL;
    unsigned char *p = base + alignment;
    size_t rec[2] = {size, alignment};
    memcpy(p - sizeof rec, rec, sizeof rec);
    __atomic_add_fetch(&c->live_blocks, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&c->live_bytes, (long long)size, __ATOMIC_RELAXED);
    /* Garbage, not zeros: the library must not rely on fresh memory being zero. */
    memset(p, 0xa5, size);
    return p;
}

static void count_free(void *user, void *ptr)
{
    counting *c = user;
    if (!ptr) {
        fprintf(stderr, "test_alloc: free(NULL) reached the allocator\n");
        abort();
    }
    unsigned char *p = ptr;
    size_t rec[2];
    memcpy(rec, p - sizeof rec, sizeof rec);
    __atomic_sub_fetch(&c->live_blocks, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&c->live_bytes, (long long)rec[0], __ATOMIC_RELAXED);
    free(p - rec[1]);
}

static const ductile_allocator counting_allocator = {count_alloc, count_free, &cnt};

/* ---------------------------------------------------------------------------------------- */
/* The workflow                                                                              */
/* ---------------------------------------------------------------------------------------- */

/* A model exercising the importer (initializers, symbolic dims), fusion and prepacking
 * (Conv + Relu with constant weights) and the shape pass (Shape -> Slice -> Concat ->
 * Reshape): y = reshape(relu(conv(x, w, b)), [N, -1]), x: float [N, 2, H, W]. */
enum { CI = 2, CO = 3, K = 3 };
static float tiny_w[CO * CI * K * K], tiny_b[CO];

static pbw tiny_model(void)
{
    for (int i = 0; i < CO * CI * K * K; i++) tiny_w[i] = (float)(i % 7 - 3) * 0.125f;
    for (int i = 0; i < CO; i++) tiny_b[i] = 0.25f - 0.375f * (float)i;
    pbw g = {0};
    int64_t wd[4] = {CO, CI, K, K}, bd = CO, one = 1, zero = 0, minus1 = -1;
    w_msg(&g, 1, node("conv", "Conv", NULL, S("x", "w", "b"), S("c"), NULL, 0));
    w_msg(&g, 1, node("relu", "Relu", NULL, S("c"), S("r"), NULL, 0));
    w_msg(&g, 1, node("shape", "Shape", NULL, S("r"), S("s"), NULL, 0));
    w_msg(&g, 1, node("slice", "Slice", NULL, S("s", "zero", "one"), S("n"), NULL, 0));
    pbw axis = attr_int("axis", 0);
    w_msg(&g, 1, node("concat", "Concat", NULL, S("n", "minus1"), S("shp"), &axis, 1));
    w_msg(&g, 1, node("reshape", "Reshape", NULL, S("r", "shp"), S("y"), NULL, 0));
    w_str(&g, 2, "tiny");
    w_msg(&g, 5, tensor_raw("w", DUCTILE_FLOAT32, 4, wd, tiny_w, sizeof tiny_w));
    w_msg(&g, 5, tensor_raw("b", DUCTILE_FLOAT32, 1, &bd, tiny_b, sizeof tiny_b));
    w_msg(&g, 5, tensor_raw("zero", DUCTILE_INT64, 1, &one, &zero, sizeof zero));
    w_msg(&g, 5, tensor_raw("one", DUCTILE_INT64, 1, &one, &one, sizeof one));
    w_msg(&g, 5, tensor_raw("minus1", DUCTILE_INT64, 1, &one, &minus1, sizeof minus1));
    int64_t xd[4] = {-1, CI, -1, -1}, yd[2] = {-1, -1};
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 4, xd, S("N", NULL, "H", "W")));
    w_msg(&g, 12, value_info("y", DUCTILE_FLOAT32, 2, yd, S("N", NULL)));
    return model(g, NULL, 0);
}

/* FlexAttention with both modifiers (runtime/ctrl_kernel.c: a subgraph run inside a compiled
 * kernel, per execute): Q, K inputs float [1, 2, 5, 4], V a constant [1, 2, 5, 3];
 * score_mod = scores * m, m = ReduceMax(Q) an activation it captures; prob_mod = p + p. */
static float flex_v[2 * 5 * 3];

static pbw attr_graph(const char *name, pbw g)
{
    pbw a = {0};
    w_str(&a, 1, name);
    w_msg(&a, 6, g);
    w_int(&a, 20, 5);
    return a;
}

static pbw flex_model(void)
{
    for (int i = 0; i < 30; i++) flex_v[i] = (float)(i % 7 - 3) * 0.25f;
    pbw sg = {0}, pg = {0}, g = {0};
    w_msg(&sg, 1, node("scale", "Mul", NULL, S("s", "m"), S("s2"), NULL, 0));
    w_str(&sg, 2, "score_mod");
    w_msg(&sg, 11, value_info("s", DUCTILE_FLOAT32, -1, NULL, NULL));
    w_msg(&sg, 12, value_info("s2", DUCTILE_FLOAT32, -1, NULL, NULL));
    w_msg(&pg, 1, node("twice", "Add", NULL, S("p", "p"), S("p2"), NULL, 0));
    w_str(&pg, 2, "prob_mod");
    w_msg(&pg, 11, value_info("p", DUCTILE_FLOAT32, -1, NULL, NULL));
    w_msg(&pg, 12, value_info("p2", DUCTILE_FLOAT32, -1, NULL, NULL));
    pbw mods[2] = {attr_graph("score_mod", sg), attr_graph("prob_mod", pg)};
    w_msg(&g, 1, node("max", "ReduceMax", NULL, S("Q"), S("m"), NULL, 0));
    w_msg(&g, 1, node("flex", "FlexAttention", "ai.onnx.preview", S("Q", "K", "V"), S("Y"), mods, 2));
    w_str(&g, 2, "flex");
    int64_t vd[4] = {1, 2, 5, 3}, qd[4] = {1, 2, 5, 4};
    w_msg(&g, 5, tensor_raw("V", DUCTILE_FLOAT32, 4, vd, flex_v, sizeof flex_v));
    w_msg(&g, 11, value_info("Q", DUCTILE_FLOAT32, 4, qd, NULL));
    w_msg(&g, 11, value_info("K", DUCTILE_FLOAT32, 4, qd, NULL));
    w_msg(&g, 12, value_info("Y", DUCTILE_FLOAT32, -1, NULL, NULL));
    return model(g, "ai.onnx.preview", 1);
}

/* Y of flex_model for Q = K = x (the workflow's input values), computed here. */
static void flex_reference(const float *x, float *y)
{
    float m = x[0];
    for (int i = 1; i < 40; i++) m = x[i] > m ? x[i] : m;
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 5; l++) {
            double sc[5], mx = -INFINITY, sum = 0;
            for (int t = 0; t < 5; t++) {
                double acc = 0;
                for (int d = 0; d < 4; d++) acc += (double)x[(h * 5 + l) * 4 + d] * x[(h * 5 + t) * 4 + d];
                sc[t] = acc * 0.5 * m;   /* scale 1/sqrt(4), then score_mod */
                mx = sc[t] > mx ? sc[t] : mx;
            }
            for (int t = 0; t < 5; t++) sum += sc[t] = exp(sc[t] - mx);
            for (int d = 0; d < 3; d++) {
                double acc = 0;
                for (int t = 0; t < 5; t++) acc += 2 * sc[t] / sum * flex_v[(h * 5 + t) * 3 + d]; /* prob_mod */
                y[(h * 5 + l) * 3 + d] = (float)acc;
            }
        }
}

/* y for x of [n, CI, h, w], computed here. */
static void tiny_reference(const float *x, int64_t n, int64_t h, int64_t w, float *y)
{
    int64_t ho = h - K + 1, wo = w - K + 1;
    for (int64_t b = 0; b < n; b++)
        for (int co = 0; co < CO; co++)
            for (int64_t i = 0; i < ho; i++)
                for (int64_t j = 0; j < wo; j++) {
                    float acc = tiny_b[co];
                    for (int ci = 0; ci < CI; ci++)
                        for (int ki = 0; ki < K; ki++)
                            for (int kj = 0; kj < K; kj++)
                                acc += tiny_w[((co * CI + ci) * K + ki) * K + kj] *
                                       x[((b * CI + ci) * h + i + ki) * w + j + kj];
                    y[((b * CO + co) * ho + i) * wo + j] = acc > 0 ? acc : 0;
                }
}

typedef struct workload {
    const char *what;
    const void *bytes;          /* the model */
    size_t size;
    const char *model_path;     /* the same bytes in a file */
    const char *engine_path;    /* where the engine is saved */
    const char *input;
    ductile_dims min, opt, max, run;
    float *expected;            /* the output at `run` (NULL: the first clean run sets it) */
    int64_t out_count;
    const char *input2;         /* a second input with the same shapes, or NULL */
    int threads;                /* the contexts' threads (0: 2) */
} workload;

typedef struct run_result {
    int failures;       /* calls that failed (under injection) */
    int wrong;          /* checks that failed in this run */
} run_result;

/* A failed call: it must be the injected failure, reported as out of memory with a message.
 * Injection then stops, so the retry of the same call on the same objects must succeed. */
static void failed_call(const workload *w, long n, ductile_status s, const char *call, int line,
                        run_result *r)
{
    const char *msg = ductile_last_error();
    /* ... and the message says what was being allocated, not only "out of memory". */
    int ok = cnt.failed == 1 && s == DUCTILE_ERR_OUT_OF_MEMORY && msg && strstr(msg, "out of memory") &&
             strcmp(msg, "out of memory") != 0;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "  %s, failing allocation %ld: %s (line %d) gave %s: \"%s\"\n", w->what, n,
                call, line, ductile_status_name(s), msg ? msg : "(null)");
    r->failures++;
    __atomic_store_n(&cnt.fail_at, 0, __ATOMIC_RELAXED);
}

#define STEP(call)                                                                          \
    do {                                                                                    \
        ductile_status s_ = (call);                                                         \
        if (s_ != DUCTILE_OK) {                                                             \
            failed_call(w, n, s_, #call, __LINE__, &r);                                     \
            s_ = (call);                                                                    \
            CHECK_EQ_INT(s_, DUCTILE_OK);                                                   \
            if (s_ != DUCTILE_OK) {                                                         \
                fprintf(stderr, "  %s, failing allocation %ld: retry of %s: %s\n", w->what, \
                        n, #call, ductile_last_error());                                    \
                goto done;                                                                  \
            }                                                                               \
        }                                                                                   \
    } while (0)

static int64_t dims_count(const ductile_dims *d)
{
    int64_t c = 1;
    for (int i = 0; i < d->nb_dims; i++) c *= d->d[i];
    return c;
}

/* The whole workflow with allocation n failing (0: none). Frees everything it made. */
static run_result workflow(workload *w, long n)
{
    run_result r = {0, 0};
    int failures_before = test_failures;
    ductile_builder *b = NULL;
    ductile_network *net = NULL, *net_file = NULL;
    ductile_profile *p = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *built = NULL, *from_mem = NULL, *from_file = NULL;
    ductile_context *ctx = NULL, *ctx2 = NULL;
    void *ser = NULL;
    size_t ser_size = 0;
    float *out = NULL;
    cnt.calls = 0;
    cnt.failed = 0;
    cnt.fail_at = n;

    STEP(ductile_builder_create(&b));
    STEP(ductile_network_create(b, &net));
    STEP(ductile_onnx_parse_memory(net, w->bytes, w->size));
    STEP(ductile_network_create(b, &net_file));
    STEP(ductile_onnx_parse_file(net_file, w->model_path));
    STEP(ductile_profile_create(b, &p));
    STEP(ductile_profile_set_shape(p, w->input, &w->min, &w->opt, &w->max));
    if (w->input2) STEP(ductile_profile_set_shape(p, w->input2, &w->min, &w->opt, &w->max));
    STEP(ductile_config_create(b, &cfg));
    STEP(ductile_config_add_profile(cfg, p, NULL));
    STEP(ductile_builder_build(b, net_file, cfg, &built));
    STEP(ductile_engine_serialize(built, &ser, &ser_size));
    STEP(ductile_engine_load_memory(ser, ser_size, &from_mem));
    STEP(ductile_engine_save(from_mem, w->engine_path));
    STEP(ductile_engine_load_file(w->engine_path, &from_file));
    CHECK(ductile_engine_layer_info(from_file) != NULL);

    /* A context on the built engine, one on the loaded one: both must compute the output. */
    const ductile_engine *engines[2] = {built, from_file};
    ductile_context **ctxs[2] = {&ctx, &ctx2};
    for (int k = 0; k < 2; k++) {
        const ductile_engine *e = engines[k];
        STEP(ductile_context_create(e, ctxs[k]));
        ductile_context *c = *ctxs[k];
        STEP(ductile_context_set_threads(c, w->threads ? w->threads : 2));
        STEP(ductile_context_set_input_shape(c, w->input, &w->run));
        if (w->input2) STEP(ductile_context_set_input_shape(c, w->input2, &w->run));
        const char *oname = ductile_engine_io_tensor_name(e, ductile_engine_num_io_tensors(e) - 1);
        ductile_dims od;
        STEP(ductile_context_get_tensor_shape(c, oname, &od));
        int64_t oc = dims_count(&od);
        CHECK_EQ_INT(oc, w->out_count);
        if (oc != w->out_count) goto done;
        for (int j = 0; j < (w->input2 ? 2 : 1); j++) {
            const char *iname = j ? w->input2 : w->input;
            void *xin = NULL;
            STEP(ductile_context_get_tensor_address(c, iname, &xin));
            for (int64_t i = 0; i < dims_count(&w->run); i++) {
                if (ductile_engine_tensor_dtype(e, iname) == DUCTILE_INT64)
                    ((int64_t *)xin)[i] = 1 + (i * 37) % 11; /* token ids, a mask */
                else
                    ((float *)xin)[i] = (float)((i * 37) % 11 - 5) * 0.1f;
            }
        }
        if (!out) out = calloc((size_t)oc, sizeof *out);
        STEP(ductile_context_set_tensor_address(c, oname, out));
        STEP(ductile_context_execute(c));
        if (!w->expected) {
            w->expected = malloc((size_t)oc * sizeof *out);
            memcpy(w->expected, out, (size_t)oc * sizeof *out);
        }
        int bad = 0;
        for (int64_t i = 0; i < oc; i++)
            if (!(fabsf(out[i] - w->expected[i]) <= 1e-4f * (1 + fabsf(w->expected[i])))) bad++;
        CHECK_EQ_INT(bad, 0);
        memset(out, 0, (size_t)oc * sizeof *out);
        /* A context made before the failure still runs. */
        if (k == 1) {
            STEP(ductile_context_execute(ctx));
            bad = 0;
            for (int64_t i = 0; i < oc; i++)
                if (!(fabsf(out[i] - w->expected[i]) <= 1e-4f * (1 + fabsf(w->expected[i])))) bad++;
            CHECK_EQ_INT(bad, 0);
        }
    }
done:
    ductile_context_free(ctx);
    ductile_context_free(ctx2);
    ductile_engine_free(built);
    ductile_engine_free(from_mem);
    ductile_engine_free(from_file);
    ductile_free(ser);
    ductile_config_free(cfg);
    ductile_profile_free(p);
    ductile_network_free(net);
    ductile_network_free(net_file);
    ductile_builder_free(b);
    free(out);
    /* The leak check: every block the library took is back. */
    CHECK_EQ_INT(cnt.live_blocks, 0);
    CHECK_EQ_INT(cnt.live_bytes, 0);
    if (cnt.live_blocks || cnt.live_bytes)
        fprintf(stderr, "  %s, failing allocation %ld: %ld blocks (%lld bytes) leaked\n", w->what, n,
                cnt.live_blocks, cnt.live_bytes);
    /* A failure injected and not reported would leave the workflow succeeding on garbage: the
     * output checks above catch that; here, each injected failure was reported exactly once. */
    if (n && n <= cnt.calls) CHECK(r.failures == 1 || cnt.failed == 1);
    r.wrong = test_failures - failures_before;
    return r;
}

/* The objects of one small workflow run (workflow_api, _dynamic, _sequence, _external): made
 * by the run, each freed by wf_end whether the run got through or stopped at `done`. */
typedef struct wf {
    ductile_builder *b;
    ductile_network *net;
    ductile_profile *p;
    ductile_config *cfg;
    ductile_engine *e;
    ductile_context *ctx;
} wf;

/* Starts a run with allocation n failing (0: none). */
static wf wf_begin(long n)
{
    cnt.calls = 0;
    cnt.failed = 0;
    cnt.fail_at = n;
    return (wf){0};
}

/* Frees the run's objects, then checks that every block the library took is back. */
static void wf_end(wf *o, const workload *w, long n, run_result *r, int failures_before)
{
    ductile_context_free(o->ctx);
    ductile_engine_free(o->e);
    ductile_config_free(o->cfg);
    ductile_profile_free(o->p);
    ductile_network_free(o->net);
    ductile_builder_free(o->b);
    CHECK_EQ_INT(cnt.live_blocks, 0);
    CHECK_EQ_INT(cnt.live_bytes, 0);
    if (cnt.live_blocks || cnt.live_bytes)
        fprintf(stderr, "  %s, failing allocation %ld: %ld blocks (%lld bytes) leaked\n", w->what, n,
                cnt.live_blocks, cnt.live_bytes);
    r->wrong = test_failures - failures_before;
}

/* A network made with the editing API (out = sigmoid(a + b), a and b float [batch, seq]):
 * build, context, bound input buffers, the output in the context's own buffer. */
static run_result workflow_api(workload *w, long n)
{
    run_result r = {0, 0};
    int failures_before = test_failures;
    wf o = wf_begin(n);

    const char *syms[2] = {"batch", "seq"};
    ductile_dims dyn = {2, {-1, -1}}, mn = {2, {1, 1}}, opt = {2, {2, 3}}, mx = {2, {4, 8}}, run = {2, {2, 5}};
    ductile_tensor *ta = NULL, *tb = NULL;
    ductile_layer *add = NULL, *sig = NULL;
    STEP(ductile_builder_create(&o.b));
    STEP(ductile_network_create(o.b, &o.net));
    STEP(ductile_network_add_input(o.net, "a", DUCTILE_FLOAT32, &dyn, syms, &ta));
    STEP(ductile_network_add_input(o.net, "b", DUCTILE_FLOAT32, &dyn, syms, &tb));
    STEP(ductile_network_add_elementwise(o.net, ta, tb, DUCTILE_ELEMENTWISE_SUM, &add));
    STEP(ductile_network_add_activation(o.net, ductile_layer_get_output(add, 0), DUCTILE_ACTIVATION_SIGMOID, &sig));
    ductile_tensor *to = ductile_layer_get_output(sig, 0);
    STEP(ductile_network_mark_output(o.net, to));
    STEP(ductile_profile_create(o.b, &o.p));
    STEP(ductile_profile_set_shape(o.p, "a", &mn, &opt, &mx));
    STEP(ductile_profile_set_shape(o.p, "b", &mn, &opt, &mx));
    STEP(ductile_config_create(o.b, &o.cfg));
    STEP(ductile_config_add_profile(o.cfg, o.p, NULL));
    STEP(ductile_builder_build(o.b, o.net, o.cfg, &o.e));
    STEP(ductile_context_create(o.e, &o.ctx));
    float xa[10], xb[10];
    for (int i = 0; i < 10; i++) {
        xa[i] = (float)i * 0.25f - 1;
        xb[i] = 0.5f - (float)(i % 3) * 0.375f;
    }
    STEP(ductile_context_set_input_shape(o.ctx, "a", &run));
    STEP(ductile_context_set_input_shape(o.ctx, "b", &run));
    STEP(ductile_context_set_tensor_address(o.ctx, "a", xa));
    STEP(ductile_context_set_tensor_address(o.ctx, "b", xb));
    STEP(ductile_context_execute(o.ctx));
    void *yv = NULL;
    STEP(ductile_context_get_tensor_address(o.ctx, ductile_tensor_name(to), &yv));
    const float *y = yv;
    int bad = 0;
    for (int i = 0; i < 10; i++) {
        float want = 1 / (1 + expf(-(xa[i] + xb[i])));
        if (!(fabsf(y[i] - want) <= 1e-6f)) bad++;
    }
    CHECK_EQ_INT(bad, 0);
done:
    wf_end(&o, w, n, &r, failures_before);
    return r;
}

/* A model whose shapes follow from values: a shape input (r = Reshape(x, s), s an int64
 * input) and a data-dependent output (nz = NonZero(x)), so the context runs eagerly and keeps
 * a snapshot of s. x: float [N]. */
static pbw dynamic_model(void)
{
    pbw g = {0};
    w_msg(&g, 1, node("reshape", "Reshape", NULL, S("x", "s"), S("r"), NULL, 0));
    w_msg(&g, 1, node("nonzero", "NonZero", NULL, S("x"), S("nz"), NULL, 0));
    w_str(&g, 2, "dynamic");
    int64_t xd = -1, sd = 2, rd[2] = {-1, -1}, nd[2] = {1, -1};
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 1, &xd, S("N")));
    w_msg(&g, 11, value_info("s", DUCTILE_INT64, 1, &sd, NULL));
    w_msg(&g, 12, value_info("r", DUCTILE_FLOAT32, 2, rd, NULL));
    w_msg(&g, 12, value_info("nz", DUCTILE_INT64, 2, nd, NULL));
    return model(g, NULL, 0);
}

static run_result workflow_dynamic(workload *w, long n)
{
    run_result r = {0, 0};
    int failures_before = test_failures;
    wf o = wf_begin(n);

    ductile_dims xmin = {1, {1}}, xopt = {1, {6}}, xmax = {1, {12}}, s2 = {1, {2}}, xrun = {1, {6}};
    STEP(ductile_builder_create(&o.b));
    STEP(ductile_network_create(o.b, &o.net));
    STEP(ductile_onnx_parse_memory(o.net, w->bytes, w->size));
    STEP(ductile_profile_create(o.b, &o.p));
    STEP(ductile_profile_set_shape(o.p, "x", &xmin, &xopt, &xmax));
    STEP(ductile_profile_set_shape(o.p, "s", &s2, &s2, &s2));
    STEP(ductile_config_create(o.b, &o.cfg));
    STEP(ductile_config_add_profile(o.cfg, o.p, NULL));
    STEP(ductile_builder_build(o.b, o.net, o.cfg, &o.e));
    STEP(ductile_context_create(o.e, &o.ctx));
    float x[6] = {0, 1.5f, 0, -2, 3, 0};
    STEP(ductile_context_set_input_shape(o.ctx, "x", &xrun));
    STEP(ductile_context_set_input_shape(o.ctx, "s", &s2));
    STEP(ductile_context_set_tensor_address(o.ctx, "x", x));
    void *sv = NULL;
    STEP(ductile_context_get_tensor_address(o.ctx, "s", &sv));
    /* Two runs with different values in the shape input: [2, 3], then [3, 2]. */
    for (int k = 0; k < 2; k++) {
        int64_t *sh = sv;
        sh[0] = k ? 3 : 2;
        sh[1] = k ? 2 : 3;
        /* An eager engine: every output's shape is known after execute. */
        STEP(ductile_context_execute(o.ctx));
        ductile_dims rd;
        STEP(ductile_context_get_tensor_shape(o.ctx, "r", &rd));
        CHECK(rd.nb_dims == 2 && rd.d[0] == sh[0] && rd.d[1] == sh[1]);
        void *rv = NULL, *nv = NULL;
        STEP(ductile_context_get_tensor_address(o.ctx, "r", &rv));
        CHECK(rv && memcmp(rv, x, sizeof x) == 0);
        ductile_dims nd;
        STEP(ductile_context_get_tensor_shape(o.ctx, "nz", &nd));
        CHECK(nd.nb_dims == 2 && nd.d[0] == 1 && nd.d[1] == 3);
        STEP(ductile_context_get_tensor_address(o.ctx, "nz", &nv));
        const int64_t want[3] = {1, 3, 4};
        CHECK(nv && memcmp(nv, want, sizeof want) == 0);
    }
done:
    wf_end(&o, w, n, &r, failures_before);
    return r;
}

/* Sequences (runtime/seqval.c): a sequence input s of float, x float [2];
 * out = SequenceInsert(s, x) (a sequence output), len = SequenceLength(out). */
static pbw sequence_model(void)
{
    pbw g = {0}, tt = {0}, inner = {0}, wrap = {0}, type = {0}, vs = {0}, vo = {0};
    w_msg(&g, 1, node("ins", "SequenceInsert", NULL, S("s", "x"), S("out"), NULL, 0));
    w_msg(&g, 1, node("len", "SequenceLength", NULL, S("out"), S("len"), NULL, 0));
    w_str(&g, 2, "sequences");
    int64_t xd = 2;
    w_int(&tt, 1, DUCTILE_FLOAT32);
    w_msg(&inner, 1, tt);
    w_msg(&wrap, 1, inner);
    w_msg(&type, 4, wrap);
    pbw type2 = {0};
    w_raw(&type2, type.p, type.n);
    w_str(&vs, 1, "s");
    w_msg(&vs, 2, type);
    w_str(&vo, 1, "out");
    w_msg(&vo, 2, type2);
    w_msg(&g, 11, vs);
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 1, &xd, NULL));
    w_msg(&g, 12, vo);
    w_msg(&g, 12, value_info("len", DUCTILE_INT64, 0, NULL, NULL));
    return model(g, NULL, 0);
}

static run_result workflow_sequence(workload *w, long n)
{
    run_result r = {0, 0};
    int failures_before = test_failures;
    wf o = wf_begin(n);

    ductile_dims x2 = {1, {2}};
    STEP(ductile_builder_create(&o.b));
    STEP(ductile_network_create(o.b, &o.net));
    STEP(ductile_onnx_parse_memory(o.net, w->bytes, w->size));
    STEP(ductile_profile_create(o.b, &o.p));
    STEP(ductile_profile_set_shape(o.p, "x", &x2, &x2, &x2));
    STEP(ductile_config_create(o.b, &o.cfg));
    STEP(ductile_config_add_profile(o.cfg, o.p, NULL));
    STEP(ductile_builder_build(o.b, o.net, o.cfg, &o.e));
    STEP(ductile_context_create(o.e, &o.ctx));
    const float x[2] = {1.5f, -2}, a[3] = {4, 5, 6}, big[40] = {7};
    STEP(ductile_context_set_input_shape(o.ctx, "x", &x2));
    STEP(ductile_context_set_tensor_address(o.ctx, "x", (void *)x));
    /* One item, then five (the slots grow and a larger item takes a new buffer). */
    for (int k = 0; k < 2; k++) {
        ductile_item items[5];
        for (int j = 0; j < 5; j++) items[j] = (ductile_item){DUCTILE_FLOAT32, {1, {j == 4 ? 40 : 3}}, j == 4 ? big : a};
        int64_t ns = k ? 5 : 1;
        STEP(ductile_context_set_sequence(o.ctx, "s", items, ns));
        STEP(ductile_context_execute(o.ctx));
        const ductile_item *out = NULL;
        int64_t no = 0;
        STEP(ductile_context_get_sequence(o.ctx, "out", &out, &no));
        CHECK(no == ns + 1 && out && out[ns].dims.d[0] == 2 && !memcmp(out[ns].data, x, sizeof x));
        CHECK(no == ns + 1 && out && !memcmp(out[0].data, a, sizeof a));
        void *lv = NULL;
        STEP(ductile_context_get_tensor_address(o.ctx, "len", &lv));
        CHECK(lv && *(int64_t *)lv == ns + 1);
    }
done:
    wf_end(&o, w, n, &r, failures_before);
    return r;
}

/* A model whose weight lives in an external data file next to it (the importer's mapping,
 * the folder walk and the file watch): y = x + w, x and w float [3], no profile. */
static const float ext_w[3] = {0.5f, -1.25f, 2};

static pbw external_model(void)
{
    pbw g = {0};
    int64_t d = 3;
    w_msg(&g, 1, node("add", "Add", NULL, S("x", "w"), S("y"), NULL, 0));
    w_str(&g, 2, "external");
    w_msg(&g, 5, tensor_external("w", "w.bin", NULL, NULL));
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 1, &d, NULL));
    w_msg(&g, 12, value_info("y", DUCTILE_FLOAT32, 1, &d, NULL));
    return model(g, NULL, 0);
}

static run_result workflow_external(workload *w, long n)
{
    run_result r = {0, 0};
    int failures_before = test_failures;
    wf o = wf_begin(n);

    STEP(ductile_builder_create(&o.b));
    STEP(ductile_network_create(o.b, &o.net));
    STEP(ductile_onnx_parse_file(o.net, w->model_path));
    STEP(ductile_config_create(o.b, &o.cfg));
    STEP(ductile_builder_build(o.b, o.net, o.cfg, &o.e));
    STEP(ductile_context_create(o.e, &o.ctx));
    ductile_dims d3 = {1, {3}};
    float x[3] = {1, 2, 3}, y[3] = {0};
    STEP(ductile_context_set_input_shape(o.ctx, "x", &d3));
    STEP(ductile_context_set_tensor_address(o.ctx, "x", x));
    STEP(ductile_context_set_tensor_address(o.ctx, "y", y));
    STEP(ductile_context_execute(o.ctx));
    for (int i = 0; i < 3; i++) CHECK(y[i] == x[i] + ext_w[i]);
done:
    wf_end(&o, w, n, &r, failures_before);
    return r;
}

/* Runs the workflow clean (counting its allocations), then with each of the first `every`
 * allocations failing, then about `extra` more spread evenly over the rest. */
static void fail_each_allocation(run_result (*workflow)(workload *, long), workload *w, long every,
                                 long extra)
{
    run_result clean = workflow(w, 0);
    long total = cnt.calls;
    CHECK_EQ_INT(clean.failures, 0);
    CHECK(total > 0);
    long stride = total > every && extra > 0 ? (total - every) / extra : 1;
    if (stride < 1) stride = 1;
    long runs = 0, failed_runs = 0;
    for (long n = 1; n <= total; n += n < every ? 1 : stride) {
        run_result r = workflow(w, n);
        /* Tactic timing may pick another kernel than the clean run did, so a workflow can
         * make fewer allocations: a run whose allocation n never came has nothing to say. */
        if (!cnt.failed) continue;
        runs++;
        if (r.failures) failed_runs++;
        else fprintf(stderr, "  %s: failing allocation %ld went unreported\n", w->what, n);
        if (r.wrong > 20) {
            fprintf(stderr, "  %s: stopping after allocation %ld\n", w->what, n);
            break;
        }
    }
    /* Every allocation is a call that can fail and must say so (none is swallowed). */
    CHECK_EQ_INT(failed_runs, runs);
    CHECK(runs > 0);
    fprintf(stderr, "%s: %ld allocations in the workflow; %ld runs, each failing one of them\n", w->what,
            total, runs);
}

/* ---------------------------------------------------------------------------------------- */
/* ductile_set_allocator's own rules                                                         */
/* ---------------------------------------------------------------------------------------- */

static void *null_alloc(void *user, size_t size, size_t alignment) { return NULL; }

static void test_set_allocator_rules(const workload *w)
{
    ductile_allocator half = {count_alloc, NULL, &cnt};
    CHECK_EQ_INT(ductile_set_allocator(&half), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(),
                 "ductile_set_allocator: alloc and free must both be set (NULL restores the default allocator)");

    /* While an object lives the allocator stays; the message counts the live blocks. */
    ductile_builder *b = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK(cnt.live_blocks > 0);
    char want[512];
    snprintf(want, sizeof want,
             "ductile_set_allocator: %ld block%s allocated by ductile %s still live; free every "
             "ductile object (and every buffer from ductile_engine_serialize) before changing the "
             "allocator",
             cnt.live_blocks, cnt.live_blocks == 1 ? "" : "s", cnt.live_blocks == 1 ? "is" : "are");
    CHECK_EQ_INT(ductile_set_allocator(NULL), DUCTILE_ERR_STATE);
    CHECK_EQ_STR(ductile_last_error(), want);

    /* A serialized engine is the library's memory until ductile_free. */
    ductile_network *net = NULL;
    ductile_config *cfg = NULL;
    ductile_profile *p = NULL;
    ductile_engine *e = NULL;
    void *ser = NULL;
    size_t size = 0;
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_memory(net, w->bytes, w->size), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_create(b, &p), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_set_shape(p, w->input, &w->min, &w->opt, &w->max), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_add_profile(cfg, p, NULL), DUCTILE_OK);
    CHECK_EQ_INT(ductile_builder_build(b, net, cfg, &e), DUCTILE_OK);
    CHECK_EQ_INT(ductile_engine_serialize(e, &ser, &size), DUCTILE_OK);
    CHECK((uintptr_t)ser % 16 == 0);
    ductile_engine_free(e);
    ductile_config_free(cfg);
    ductile_profile_free(p);
    ductile_network_free(net);
    ductile_builder_free(b);
    CHECK_EQ_INT(cnt.live_blocks, 1);
    CHECK_EQ_INT(ductile_set_allocator(NULL), DUCTILE_ERR_STATE);
    CHECK_EQ_STR(ductile_last_error(),
                 "ductile_set_allocator: 1 block allocated by ductile is still live; free every ductile "
                 "object (and every buffer from ductile_engine_serialize) before changing the allocator");
    ductile_free(ser);
    CHECK_EQ_INT(cnt.live_blocks, 0);
    CHECK_EQ_INT(cnt.live_bytes, 0);

    /* Nothing live: the allocator may change, and every call then goes through the new one. */
    ductile_allocator none = {null_alloc, count_free, &cnt};
    CHECK_EQ_INT(ductile_set_allocator(&none), DUCTILE_OK);
    b = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_ERR_OUT_OF_MEMORY);
    CHECK_EQ_STR(ductile_last_error(), "out of memory creating a builder");
    CHECK(b == NULL);
    CHECK_EQ_INT(ductile_set_allocator(&counting_allocator), DUCTILE_OK);
}

/* The internal calls over the counting allocator: alignment kept through realloc, sizes
 * that overflow refused before the allocator is asked, free(NULL) never reaching it. */

static size_t last_alignment;
static void *spy_alloc(void *user, size_t size, size_t alignment)
{
    last_alignment = alignment;
    return count_alloc(user, size, alignment);
}

/* 1 when the mapping holding address a has VmFlags "hg" (madvise(MADV_HUGEPAGE) applied),
 * 0 when not, -1 when /proc/self/smaps cannot say. */
static int smaps_hugepage_advised(uintptr_t a)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int inside = 0, found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            inside = a >= lo && a < hi;
        else if (inside && !strncmp(line, "VmFlags:", 8))
            found = strstr(line, " hg") != NULL;
    }
    fclose(f);
    return found;
}

/* The default allocator advises blocks of DT_ALLOC_HUGE_MIN bytes and more for transparent
 * huge pages (the whole 2 MiB pages inside them) and leaves smaller ones alone. */
static void test_default_alloc_huge_pages(void)
{
    if (access("/sys/kernel/mm/transparent_hugepage/enabled", R_OK) != 0) {
        fprintf(stderr, "test_default_alloc_huge_pages: skipped (no transparent huge pages here)\n");
        return;
    }
    const uintptr_t huge = (uintptr_t)2 << 20;
    size_t big_n = DT_ALLOC_HUGE_MIN + (3u << 20), small_n = DT_ALLOC_HUGE_MIN / 4;
    unsigned char *big = dt_aligned_alloc(64, big_n), *small = dt_aligned_alloc(64, small_n);
    CHECK(big && small);
    if (!big || !small) return;
    uintptr_t inner = ((uintptr_t)big + huge - 1) & ~(huge - 1);
    CHECK(inner + huge <= (uintptr_t)big + big_n);
    CHECK_EQ_INT(smaps_hugepage_advised(inner), 1);
    CHECK_EQ_INT(smaps_hugepage_advised(inner + huge), 1);
    CHECK_EQ_INT(smaps_hugepage_advised((uintptr_t)small + small_n / 2), 0);
    memset(big, 1, big_n);   /* still ordinary memory */
    CHECK(big[big_n - 1] == 1);
    dt_free(big);
    dt_free(small);
}

static void test_alloc_primitives(void)
{
    ductile_allocator spy = {spy_alloc, count_free, &cnt};
    CHECK_EQ_INT(ductile_set_allocator(&spy), DUCTILE_OK);
    cnt.calls = 0;
    cnt.fail_at = 0;
    unsigned char *p = dt_aligned_alloc(256, 100);
    CHECK(p && (uintptr_t)p % 256 == 0 && last_alignment == 256);
    for (int i = 0; i < 100; i++) p[i] = (unsigned char)i;
    unsigned char *q = dt_realloc(p, 5000);
    CHECK(q && (uintptr_t)q % 256 == 0 && last_alignment == 256);
    int same = 1;
    for (int i = 0; q && i < 100; i++) same &= q[i] == (unsigned char)i;
    CHECK(same);
    /* A failed realloc leaves the block as it was. */
    cnt.fail_at = cnt.calls + 1;
    CHECK(dt_realloc(q, 10000) == NULL);
    CHECK(q[99] == 99);
    cnt.fail_at = 0;
    q = dt_realloc(q, 10);
    CHECK(q && q[9] == 9);
    dt_free(q);
    long calls = cnt.calls;
    CHECK(dt_calloc(SIZE_MAX / 2, 4) == NULL);
    CHECK(dt_malloc(SIZE_MAX - 8) == NULL);
    CHECK(dt_aligned_alloc(48, 16) == NULL); /* not a power of two */
    CHECK_EQ_INT(cnt.calls, calls);
    dt_free(NULL);
    int *z = dt_calloc(1000, sizeof *z);
    int zero = z != NULL;
    for (int i = 0; z && i < 1000; i++) zero &= z[i] == 0; /* the allocator fills with 0xa5 */
    CHECK(zero);
    dt_free(z);
    char *s = dt_strndup("allocator", 5);
    CHECK_EQ_STR(s, "alloc");
    dt_free(s);
    CHECK_EQ_INT(cnt.live_blocks, 0);
    CHECK_EQ_INT(dt_alloc_live(), 0);
    CHECK_EQ_INT(ductile_set_allocator(&counting_allocator), DUCTILE_OK);
}

/* The memory planner's lifetimes and placement, including blocks with more neighbours than
 * the budget lists (the skyline path), with each allocation failing: out of memory, nothing
 * leaked, and the clean plan unchanged. */
static void test_memplan_each_allocation(void)
{
    enum { NB = 64, STEPS = 40 };
    int first[NB], last[NB];
    size_t size[NB], off[NB], ref[NB], arena = 0, ref_arena = 0;
    for (int b = 0; b < NB; b++) {
        first[b] = (b * 7) % STEPS;
        last[b] = first[b] + (b % 5 == 0 ? STEPS - 1 - first[b] : (b * 3) % 6);
        if (last[b] >= STEPS) last[b] = STEPS - 1;
        size[b] = (size_t)(64 * (1 + (b * 13) % 9));
    }
    long total = 0;
    for (long n = 0; n == 0 || n <= total; n++) {
        cnt.calls = 0;
        cnt.failed = 0;
        cnt.fail_at = n;
        dt_memlife *m = NULL;
        ductile_status s = dt_memlife_make(NB, first, last, STEPS, 16, &m);
        dt_memplan_work work = {0, 0};
        if (!s) s = dt_memlife_place(m, size, n ? off : ref, n ? &arena : &ref_arena, &work);
        dt_memlife_free(m);
        if (n == 0) {
            total = cnt.calls;
            CHECK_EQ_INT(s, DUCTILE_OK);
            CHECK(work.stacked > 0); /* the budget is small enough to take the skyline path */
            continue;
        }
        CHECK_EQ_INT(s, cnt.failed ? DUCTILE_ERR_OUT_OF_MEMORY : DUCTILE_OK);
        if (s) CHECK(strstr(ductile_last_error(), "out of memory planning") != NULL);
        else CHECK(arena == ref_arena && memcmp(off, ref, sizeof off) == 0);
        CHECK_EQ_INT(cnt.live_blocks, 0);
    }
    CHECK(total > 5);
    cnt.fail_at = 0;
}

static int write_file(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(d, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static void *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *d = malloc(n > 0 ? (size_t)n : 1);
    if (d && fread(d, 1, (size_t)n, f) != (size_t)n) {
        free(d);
        d = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return d;
}

static ductile_dims D4(int64_t a, int64_t b, int64_t c, int64_t d)
{
    ductile_dims r = {4, {a, b, c, d}};
    return r;
}

/* A model of the suite (DUCTILE_MODELS) through the workflow, its output checked against the
 * clean run's. */
static void run_suite_model(const char *models, const char *dir, const char *file, const char *input,
                            const char *input2, ductile_dims min, ductile_dims opt, ductile_dims max, ductile_dims run,
                            int64_t out_count, long every, long extra)
{
    char path[1024], engine[1024];
    snprintf(path, sizeof path, "%s/%s", models, file);
    snprintf(engine, sizeof engine, "%s/%s.engine", dir, file);
    size_t size = 0;
    void *bytes = read_file(path, &size);
    CHECK(bytes != NULL);
    if (!bytes) return;
    workload w = {file, bytes, size, path, engine, input, min, opt, max, run, NULL, out_count, input2, 0};
    fail_each_allocation(workflow, &w, every, extra);
    free(w.expected);
    free(bytes);
    unlink(engine);
}

int main(void)
{
    test_default_alloc_huge_pages();   /* before any allocator is set */
    /* Before any object exists. */
    CHECK_EQ_INT(ductile_set_allocator(&counting_allocator), DUCTILE_OK);
    char dir[] = "/tmp/ductile_alloc_XXXXXX";
    if (!mkdtemp(dir)) return 2;
    char model_path[128], engine_path[128];
    snprintf(model_path, sizeof model_path, "%s/tiny.onnx", dir);
    snprintf(engine_path, sizeof engine_path, "%s/tiny.engine", dir);

    pbw m = tiny_model();
    if (!write_file(model_path, m.p, m.n)) return 2;
    workload tiny = {"tiny model", m.p, m.n, model_path, engine_path, "x",
                     D4(1, CI, 3, 3), D4(1, CI, 4, 4), D4(2, CI, 6, 6), D4(2, CI, 4, 5), NULL,
                     2 * CO * 2 * 3, NULL, 0};
    /* The first clean run's output must be the convolution computed here. */
    float x[2 * CI * 4 * 5], ref[2 * CO * 2 * 3];
    for (int i = 0; i < 2 * CI * 4 * 5; i++) x[i] = (float)((i * 37) % 11 - 5) * 0.1f;
    tiny_reference(x, 2, 4, 5, ref);
    tiny.expected = ref;

    test_alloc_primitives();
    test_memplan_each_allocation();
    test_set_allocator_rules(&tiny);
    fail_each_allocation(workflow, &tiny, 1L << 30, 0);
    /* The same on one thread with every layer it can in the batch's depth-first prefix
     * (runtime/depth_first.h): its roles, group views, lifetimes and memory plan. */
    workload tiny_df = tiny;
    tiny_df.what = "tiny model, depth first over the batch";
    tiny_df.threads = 1;
    setenv("DUCTILE_DEPTH_FIRST_BYTES", "1", 1);
    fail_each_allocation(workflow, &tiny_df, 1L << 30, 0);
    /* ... and on two threads, where a group holds as many images as threads (the batch of 2
     * here would be one group: groups of one image make it cut) */
    tiny_df.what = "tiny model, depth first over the batch on 2 threads";
    tiny_df.threads = 2;
    setenv("DUCTILE_DEPTH_FIRST_GROUP", "1", 1);
    fail_each_allocation(workflow, &tiny_df, 1L << 30, 0);
    unsetenv("DUCTILE_DEPTH_FIRST_GROUP");
    unsetenv("DUCTILE_DEPTH_FIRST_BYTES");
    workload api = {.what = "network made with the API"};
    fail_each_allocation(workflow_api, &api, 1L << 30, 0);
    pbw dm = dynamic_model();
    workload dyn = {.what = "model with a shape input and NonZero", .bytes = dm.p, .size = dm.n};
    fail_each_allocation(workflow_dynamic, &dyn, 1L << 30, 0);
    free(dm.p);
    pbw sm = sequence_model();
    workload seqw = {.what = "model with a sequence input and output", .bytes = sm.p, .size = sm.n};
    fail_each_allocation(workflow_sequence, &seqw, 1L << 30, 0);
    free(sm.p);

    char flex_path[128], flex_engine[128];
    snprintf(flex_path, sizeof flex_path, "%s/flex.onnx", dir);
    snprintf(flex_engine, sizeof flex_engine, "%s/flex.engine", dir);
    pbw fm = flex_model();
    if (!write_file(flex_path, fm.p, fm.n)) return 2;
    workload flex = {"FlexAttention with score_mod and prob_mod", fm.p, fm.n, flex_path, flex_engine, "Q",
                     D4(1, 2, 5, 4), D4(1, 2, 5, 4), D4(1, 2, 5, 4), D4(1, 2, 5, 4), NULL, 2 * 5 * 3, "K", 0};
    float fx[40], fref[30];
    for (int i = 0; i < 40; i++) fx[i] = (float)((i * 37) % 11 - 5) * 0.1f;
    flex_reference(fx, fref);
    flex.expected = fref;
    fail_each_allocation(workflow, &flex, 1L << 30, 0);
    free(fm.p);
    unlink(flex_path);
    unlink(flex_engine);

    char ext_path[128], ext_bin[128];
    snprintf(ext_path, sizeof ext_path, "%s/external.onnx", dir);
    snprintf(ext_bin, sizeof ext_bin, "%s/w.bin", dir);
    pbw em = external_model();
    if (!write_file(ext_path, em.p, em.n) || !write_file(ext_bin, ext_w, sizeof ext_w)) return 2;
    free(em.p);
    workload ext = {.what = "model with external data", .model_path = ext_path};
    fail_each_allocation(workflow_external, &ext, 1L << 30, 0);
    unlink(ext_path);
    unlink(ext_bin);

    const char *models = getenv("DUCTILE_MODELS");
    const char *suite = getenv("DUCTILE_ALLOC_SUITE");
    long all = suite && !strcmp(suite, "all") ? 1L << 30 : 0;
    if (models) {
        /* The first 60 allocations (the parse), then 30 more spread over the build, load,
         * contexts and execute: each run builds (and times tactics), so each run costs. */
        run_suite_model(models, dir, "superres.onnx", "input", NULL, D4(1, 1, 8, 8), D4(1, 1, 16, 16),
                        D4(1, 1, 32, 32), D4(1, 1, 12, 10), 1 * 1 * 36 * 30, all ? all : 60, 30);
        /* A bigger network (233 layers: fusion with residuals, hard-swish, resize), run by hand:
         * DUCTILE_ALLOC_SUITE=1 (DUCTILE_ALLOC_SUITE=all: every allocation of both models). */
        if (suite)
            run_suite_model(models, dir, "seg_lraspp.onnx", "input_1", NULL, D4(1, 3, 32, 32), D4(1, 3, 64, 64),
                            D4(1, 3, 96, 96), D4(1, 3, 64, 64), 64 * 64, all ? all : 60, 60);
        /* Attention, layer norm, Gather on token ids: two int64 inputs [batch, seq]. */
        if (suite) {
            ductile_dims mn = {2, {1, 1}}, op = {2, {1, 8}}, mx = {2, {2, 16}}, rn = {2, {2, 5}};
            run_suite_model(models, dir, "bert_small.onnx", "input_ids", "attention_mask", mn, op, mx, rn,
                            2 * 5 * 256, all ? all : 60, 60);
        }
    } else {
        printf("SKIP: superres.onnx not found; set DUCTILE_MODELS\n");
    }

    CHECK_EQ_INT(ductile_set_allocator(NULL), DUCTILE_OK);
    free(m.p);
    unlink(model_path);
    unlink(tiny.engine_path);
    rmdir(dir);
    TEST_MAIN_END();
}
