/* One engine shared by several threads, each with its own context, running different shapes
 * at the same time (ductile.h: "an engine is immutable ... any number of threads may share
 * it"). Every output is compared with a reference computed by one thread beforehand.
 *   1. A network made with the public API: a, b [batch, seq]; out = tanh(max(a * b, a) - b).
 *   2. superres.onnx from $DUCTILE_MODELS at small shapes (skipped when the suite is absent).
 * Run it under ThreadSanitizer with `make tsan-test`. */
#include "ductile.h"
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N_THREADS = 4, MAX_IO = 4, MAX_SHAPES = 8 };

/* A test case: the engine, the shapes to run, and per shape the reference outputs. */
typedef struct shape_case {
    ductile_dims in[MAX_IO];        /* per input */
    float *ref[MAX_IO];             /* per output, computed single-threaded */
    ductile_dims ref_dims[MAX_IO];
} shape_case;

typedef struct suite {
    const char *label;
    const ductile_engine *engine;
    int n_in, n_out;
    const char *in_names[MAX_IO], *out_names[MAX_IO];
    shape_case cases[MAX_SHAPES];
    int n_cases;
    int iterations;                 /* per thread */
} suite;

typedef struct worker {
    const suite *s;
    int id;
    int failures;                   /* counted here, added up by the main thread */
    char first_error[512];
} worker;

static int64_t volume(const ductile_dims *d)
{
    int64_t v = 1;
    for (int i = 0; i < d->nb_dims; i++) v *= d->d[i];
    return v;
}

/* Input values depend on the input index, the element and the shape, so two shapes never
 * give the same numbers by accident. */
static void fill_input(float *x, int64_t n, int input, const ductile_dims *d)
{
    for (int64_t k = 0; k < n; k++)
        x[k] = (float)sin(0.37 * (double)k + 1.3 * input + 0.11 * (double)volume(d)) * 2.0f;
}

/* Sets the case's input shapes and data and executes. When own_buffers, inputs and outputs
 * live in caller buffers bound with set_tensor_address; otherwise in the context's. On
 * success *out[i] points at output i (its shape in out_dims[i]); free what *owned holds. */
static ductile_status run_case(ductile_context *ctx, const suite *s, const shape_case *c, int own_buffers,
                               float *out[MAX_IO], ductile_dims out_dims[MAX_IO], void *owned[2 * MAX_IO])
{
    ductile_status st;
    memset(owned, 0, sizeof(void *) * 2 * MAX_IO);
    for (int i = 0; i < s->n_in; i++)
        if ((st = ductile_context_set_input_shape(ctx, s->in_names[i], &c->in[i]))) return st;
    for (int i = 0; i < s->n_in; i++) {
        int64_t n = volume(&c->in[i]);
        void *buf = NULL;
        if (own_buffers) {
            buf = owned[i] = malloc(sizeof(float) * (size_t)(n ? n : 1));
            if (!buf) return DUCTILE_ERR_OUT_OF_MEMORY;
            if ((st = ductile_context_set_tensor_address(ctx, s->in_names[i], buf))) return st;
        } else {
            if ((st = ductile_context_set_tensor_address(ctx, s->in_names[i], NULL))) return st;
            if ((st = ductile_context_get_tensor_address(ctx, s->in_names[i], &buf))) return st;
        }
        fill_input(buf, n, i, &c->in[i]);
    }
    for (int i = 0; i < s->n_out; i++) {
        if ((st = ductile_context_get_tensor_shape(ctx, s->out_names[i], &out_dims[i]))) return st;
        void *buf = NULL;
        if (own_buffers) {
            int64_t n = volume(&out_dims[i]);
            buf = owned[MAX_IO + i] = malloc(sizeof(float) * (size_t)(n ? n : 1));
            if (!buf) return DUCTILE_ERR_OUT_OF_MEMORY;
            if ((st = ductile_context_set_tensor_address(ctx, s->out_names[i], buf))) return st;
        } else {
            if ((st = ductile_context_set_tensor_address(ctx, s->out_names[i], NULL))) return st;
        }
    }
    if ((st = ductile_context_execute(ctx))) return st;
    for (int i = 0; i < s->n_out; i++) {
        void *buf = NULL;
        if ((st = ductile_context_get_tensor_address(ctx, s->out_names[i], &buf))) return st;
        out[i] = buf;
    }
    return DUCTILE_OK;
}

static void free_owned(void *owned[2 * MAX_IO])
{
    for (int i = 0; i < 2 * MAX_IO; i++) free(owned[i]);
}

/* Kernels may split work differently with another thread count, so sums can round
 * differently: equal within a relative 1e-5. */
static int outputs_match(const float *got, const float *ref, int64_t n, int64_t *at)
{
    for (int64_t k = 0; k < n; k++)
        if (!(fabsf(got[k] - ref[k]) <= 1e-5f * (1.0f + fabsf(ref[k])))) {
            *at = k;
            return 0;
        }
    return 1;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    const suite *s = w->s;
    ductile_context *ctx = NULL;
    if (ductile_context_create(s->engine, &ctx) != DUCTILE_OK) {
        snprintf(w->first_error, sizeof w->first_error, "context_create: %s", ductile_last_error());
        w->failures++;
        return NULL;
    }
    /* Contexts with one and with two pool threads run side by side. */
    ductile_context_set_threads(ctx, 1 + w->id % 2);
    for (int it = 0; it < s->iterations; it++) {
        /* Threads walk the shapes from different starting points: different shapes at once. */
        const shape_case *c = &s->cases[(it + w->id) % s->n_cases];
        float *out[MAX_IO];
        ductile_dims od[MAX_IO];
        void *owned[2 * MAX_IO];
        ductile_status st = run_case(ctx, s, c, (it + w->id) % 3 == 0, out, od, owned);
        for (int i = 0; !st && i < s->n_out; i++) {
            int64_t at = -1;
            if (memcmp(&od[i], &c->ref_dims[i], sizeof od[i]) != 0 ||
                !outputs_match(out[i], c->ref[i], volume(&od[i]), &at)) {
                if (!w->failures)
                    snprintf(w->first_error, sizeof w->first_error,
                             "thread %d iteration %d: output '%s' differs from the reference at element %lld",
                             w->id, it, s->out_names[i], (long long)at);
                w->failures++;
            }
        }
        if (st) {
            if (!w->failures)
                snprintf(w->first_error, sizeof w->first_error, "thread %d iteration %d: %s: %s", w->id, it,
                         ductile_status_name(st), ductile_last_error());
            w->failures++;
        }
        free_owned(owned);
    }
    ductile_context_free(ctx);
    return NULL;
}

/* Computes the references with one context, then runs N_THREADS workers at once. */
static void run_suite(suite *s)
{
    ductile_context *ctx = NULL;
    CHECK_EQ_INT(ductile_context_create(s->engine, &ctx), DUCTILE_OK);
    if (!ctx) return;
    for (int k = 0; k < s->n_cases; k++) {
        shape_case *c = &s->cases[k];
        float *out[MAX_IO];
        void *owned[2 * MAX_IO];
        ductile_status st = run_case(ctx, s, c, 1, out, c->ref_dims, owned);
        CHECK_EQ_INT(st, DUCTILE_OK);
        for (int i = 0; !st && i < s->n_out; i++) {
            size_t bytes = sizeof(float) * (size_t)volume(&c->ref_dims[i]);
            c->ref[i] = malloc(bytes ? bytes : 1);
            if (c->ref[i]) memcpy(c->ref[i], out[i], bytes);
        }
        free_owned(owned);
    }
    ductile_context_free(ctx);

    pthread_t tid[N_THREADS];
    worker w[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].s = s;
        w[t].id = t;
        CHECK_EQ_INT(pthread_create(&tid[t], NULL, worker_main, &w[t]), 0);
    }
    int failures = 0;
    for (int t = 0; t < N_THREADS; t++) {
        pthread_join(tid[t], NULL);
        if (w[t].failures) fprintf(stderr, "%s: %d failures, first: %s\n", s->label, w[t].failures, w[t].first_error);
        failures += w[t].failures;
    }
    CHECK_EQ_INT(failures, 0);
    printf("%s: %d threads x %d runs over %d shapes, %d mismatches\n", s->label, N_THREADS, s->iterations,
           s->n_cases, failures);
    for (int k = 0; k < s->n_cases; k++)
        for (int i = 0; i < s->n_out; i++) free(s->cases[k].ref[i]);
}

static ductile_dims D2(int64_t a, int64_t b) { ductile_dims d = {2, {a, b}}; return d; }
static ductile_dims D4(int64_t a, int64_t b, int64_t c, int64_t e) { ductile_dims d = {4, {a, b, c, e}}; return d; }

static void test_api_network_shared_by_threads(ductile_builder *b)
{
    ductile_network *n = NULL;
    CHECK_EQ_INT(ductile_network_create(b, &n), DUCTILE_OK);
    const char *syms[2] = {"batch", "seq"};
    ductile_dims dyn = D2(-1, -1);
    ductile_tensor *ta = NULL, *tb = NULL;
    ductile_layer *mul = NULL, *mx = NULL, *sub = NULL, *th = NULL;
    CHECK_EQ_INT(ductile_network_add_input(n, "a", DUCTILE_FLOAT32, &dyn, syms, &ta), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_input(n, "b", DUCTILE_FLOAT32, &dyn, syms, &tb), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_elementwise(n, ta, tb, DUCTILE_ELEMENTWISE_PROD, &mul), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_elementwise(n, ductile_layer_get_output(mul, 0), ta, DUCTILE_ELEMENTWISE_MAX, &mx),
                 DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_elementwise(n, ductile_layer_get_output(mx, 0), tb, DUCTILE_ELEMENTWISE_SUB, &sub),
                 DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_activation(n, ductile_layer_get_output(sub, 0), DUCTILE_ACTIVATION_TANH, &th),
                 DUCTILE_OK);
    if (!th) {
        ductile_network_free(n);
        return;
    }
    CHECK_EQ_INT(ductile_network_mark_output(n, ductile_layer_get_output(th, 0)), DUCTILE_OK);

    ductile_profile *p = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    ductile_dims mn = D2(1, 1), op = D2(4, 16), mxd = D2(8, 300);
    CHECK_EQ_INT(ductile_profile_create(b, &p), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "a", &mn, &op, &mxd), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "b", &mn, &op, &mxd), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_add_profile(cfg, p, NULL), DUCTILE_OK);
    CHECK_EQ_INT(ductile_builder_build(b, n, cfg, &e), DUCTILE_OK);
    if (e) {
        suite s;
        memset(&s, 0, sizeof s);
        s.label = "api network";
        s.engine = e;
        s.n_in = 2;
        s.n_out = 1;
        s.in_names[0] = "a";
        s.in_names[1] = "b";
        s.out_names[0] = ductile_tensor_name(ductile_layer_get_output(th, 0));
        const int64_t shapes[][2] = {{1, 1}, {2, 7}, {8, 300}, {3, 64}, {5, 33}, {1, 257}};
        s.n_cases = (int)(sizeof shapes / sizeof shapes[0]);
        for (int k = 0; k < s.n_cases; k++)
            s.cases[k].in[0] = s.cases[k].in[1] = D2(shapes[k][0], shapes[k][1]);
        s.iterations = 150;
        run_suite(&s);
    }
    ductile_engine_free(e);
    ductile_config_free(cfg);
    ductile_profile_free(p);
    ductile_network_free(n);
}

static void test_superres_shared_by_threads(ductile_builder *b)
{
    const char *dir = getenv("DUCTILE_MODELS");
    char path[4096];
    snprintf(path, sizeof path, "%s/superres.onnx", dir ? dir : "");
    FILE *f = dir ? fopen(path, "rb") : NULL;
    if (!f) {
        printf("SKIP: superres.onnx not found; set DUCTILE_MODELS to the model suite's folder\n");
        return;
    }
    fclose(f);
    ductile_network *n = NULL;
    ductile_profile *p = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    CHECK_EQ_INT(ductile_network_create(b, &n), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_file(n, path), DUCTILE_OK);
    ductile_dims mn = D4(1, 1, 4, 4), op = D4(1, 1, 16, 16), mxd = D4(2, 1, 24, 24);
    CHECK_EQ_INT(ductile_profile_create(b, &p), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "input", &mn, &op, &mxd), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_add_profile(cfg, p, NULL), DUCTILE_OK);
    CHECK_EQ_INT(ductile_builder_build(b, n, cfg, &e), DUCTILE_OK);
    if (e) {
        suite s;
        memset(&s, 0, sizeof s);
        s.label = "superres.onnx";
        s.engine = e;
        s.n_in = 1;
        s.n_out = 1;
        s.in_names[0] = "input";
        s.out_names[0] = "output";
        const int64_t shapes[][3] = {{1, 4, 4}, {2, 9, 13}, {1, 24, 24}, {2, 16, 5}, {1, 11, 20}};
        s.n_cases = (int)(sizeof shapes / sizeof shapes[0]);
        for (int k = 0; k < s.n_cases; k++)
            s.cases[k].in[0] = D4(shapes[k][0], 1, shapes[k][1], shapes[k][2]);
        s.iterations = 10;
        run_suite(&s);
    }
    ductile_engine_free(e);
    ductile_config_free(cfg);
    ductile_profile_free(p);
    ductile_network_free(n);
}

int main(void)
{
    ductile_builder *b = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    test_api_network_shared_by_threads(b);
    test_superres_shared_by_threads(b);
    ductile_builder_free(b);
    TEST_MAIN_END();
}
