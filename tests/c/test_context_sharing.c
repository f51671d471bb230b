/* A context shared by two threads at once (ductile.h forbids it) is refused, not corrupted:
 * every call either works or fails with DUCTILE_ERR_STATE and the message naming the rule,
 * and overlapping calls are seen. A context handed from one thread to another, one at a
 * time, keeps working. */
#include "ductile.h"
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { COLS = 1 << 14, MAX_SECONDS = 20 };

typedef struct shared {
    ductile_context *ctx;
    const char *out_name;
    int stop;                 /* set once both threads were refused at least once */
    int refused[2];           /* per thread: calls refused with the rule's message */
    int worked[2];
    int unexpected;           /* any other status or message */
    char first_unexpected[512];
} shared;

typedef struct worker {
    shared *sh;
    int id;
} worker;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Counts one call's outcome; the message must name the call and the rule exactly. */
static void tally(shared *sh, int id, const char *call, ductile_status s)
{
    char want[256];
    snprintf(want, sizeof want,
             "%s: the context is in use by another thread; a context belongs to one thread at a time "
             "(create one context per thread)",
             call);
    if (s == DUCTILE_OK) {
        __atomic_add_fetch(&sh->worked[id], 1, __ATOMIC_RELAXED);
    } else if (s == DUCTILE_ERR_STATE && strcmp(ductile_last_error(), want) == 0) {
        __atomic_add_fetch(&sh->refused[id], 1, __ATOMIC_RELAXED);
    } else if (__atomic_add_fetch(&sh->unexpected, 1, __ATOMIC_RELAXED) == 1) {
        snprintf(sh->first_unexpected, sizeof sh->first_unexpected, "%s: %s: %s", call, ductile_status_name(s),
                 ductile_last_error());
    }
}

static void *hammer(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;
    ductile_dims d = {2, {1, COLS}}, got;
    double end = now_s() + MAX_SECONDS;
    while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE) && now_s() < end) {
        void *buf = NULL;
        tally(sh, w->id, "set_input_shape", ductile_context_set_input_shape(sh->ctx, "a", &d));
        ductile_status given = ductile_context_get_tensor_address(sh->ctx, "a", &buf);
        tally(sh, w->id, "get_tensor_address", given);
        tally(sh, w->id, "get_tensor_shape", ductile_context_get_tensor_shape(sh->ctx, sh->out_name, &got));
        /* Only after this thread's get_tensor_address worked: until some call hands the input's
         * buffer out, execute rightly refuses it ("input 'a' has no data"), and a refused
         * get_tensor_address of the first round left it so (a flake of the test, not of the
         * context: session 17's CI run met it once). */
        if (given == DUCTILE_OK) tally(sh, w->id, "execute", ductile_context_execute(sh->ctx));
        tally(sh, w->id, "set_tensor_address", ductile_context_set_tensor_address(sh->ctx, sh->out_name, NULL));
        if (__atomic_load_n(&sh->refused[0], __ATOMIC_RELAXED) && __atomic_load_n(&sh->refused[1], __ATOMIC_RELAXED))
            __atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

/* out = tanh(a + a), a [1, COLS]: long enough per execute that the threads overlap. */
static ductile_engine *make_engine(ductile_builder *b, const char **out_name)
{
    ductile_network *n = NULL;
    ductile_tensor *a = NULL;
    ductile_layer *add = NULL, *th = NULL;
    ductile_dims dims = {2, {1, COLS}};
    CHECK_EQ_INT(ductile_network_create(b, &n), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_input(n, "a", DUCTILE_FLOAT32, &dims, NULL, &a), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_elementwise(n, a, a, DUCTILE_ELEMENTWISE_SUM, &add), DUCTILE_OK);
    if (add) CHECK_EQ_INT(ductile_network_add_activation(n, ductile_layer_get_output(add, 0), DUCTILE_ACTIVATION_TANH, &th),
                          DUCTILE_OK);
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    if (th) {
        CHECK_EQ_INT(ductile_network_mark_output(n, ductile_layer_get_output(th, 0)), DUCTILE_OK);
        CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
        CHECK_EQ_INT(ductile_builder_build(b, n, cfg, &e), DUCTILE_OK);
    }
    if (e) *out_name = ductile_engine_io_tensor_name(e, 1);
    ductile_config_free(cfg);
    ductile_network_free(n);
    return e;
}

static void test_two_threads_in_one_context_are_refused(ductile_engine *e, const char *out_name)
{
    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.out_name = out_name;
    CHECK_EQ_INT(ductile_context_create(e, &sh.ctx), DUCTILE_OK);
    if (!sh.ctx) return;
    CHECK_EQ_INT(ductile_context_set_threads(sh.ctx, 1), DUCTILE_OK);
    worker w[2] = {{&sh, 0}, {&sh, 1}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) CHECK_EQ_INT(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    CHECK_EQ_INT(sh.unexpected, 0);
    if (sh.unexpected) fprintf(stderr, "first unexpected: %s\n", sh.first_unexpected);
    CHECK(sh.refused[0] > 0 && sh.refused[1] > 0);
    CHECK(sh.worked[0] > 0 && sh.worked[1] > 0);
    fprintf(stderr, "two threads, one context: %d/%d calls worked, %d/%d refused\n", sh.worked[0], sh.worked[1],
            sh.refused[0], sh.refused[1]);

    /* After the threads are gone the context is whole: one thread runs it and gets the
     * right answer. */
    ductile_dims d = {2, {1, COLS}};
    static float a[COLS], out[COLS];
    for (int i = 0; i < COLS; i++) a[i] = (float)sin(0.01 * i);
    CHECK_EQ_INT(ductile_context_set_input_shape(sh.ctx, "a", &d), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(sh.ctx, "a", a), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(sh.ctx, out_name, out), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(sh.ctx), DUCTILE_OK);
    int bad = 0;
    for (int i = 0; i < COLS; i++) bad += fabsf(out[i] - tanhf(a[i] + a[i])) > 1e-6f;
    CHECK_EQ_INT(bad, 0);
    ductile_context_free(sh.ctx);
}

/* "One thread at a time": a context created here and used by another thread afterwards. */
static void *use_once(void *arg)
{
    shared *sh = arg;
    ductile_dims d = {2, {1, COLS}};
    void *buf = NULL;
    ductile_status s = ductile_context_set_input_shape(sh->ctx, "a", &d);
    if (!s) s = ductile_context_get_tensor_address(sh->ctx, "a", &buf);
    if (!s) s = ductile_context_execute(sh->ctx);
    sh->unexpected = s;
    return NULL;
}

static void test_context_handed_over_between_threads_works(ductile_engine *e, const char *out_name)
{
    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.out_name = out_name;
    CHECK_EQ_INT(ductile_context_create(e, &sh.ctx), DUCTILE_OK);
    if (!sh.ctx) return;
    for (int round = 0; round < 3; round++) {
        pthread_t t;
        sh.unexpected = -1;
        CHECK_EQ_INT(pthread_create(&t, NULL, use_once, &sh), 0);
        pthread_join(t, NULL);
        CHECK_EQ_INT(sh.unexpected, DUCTILE_OK);
    }
    ductile_context_free(sh.ctx);
}

int main(void)
{
    ductile_builder *b = NULL;
    const char *out_name = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    ductile_engine *e = make_engine(b, &out_name);
    if (e) {
        test_two_threads_in_one_context_are_refused(e, out_name);
        test_context_handed_over_between_threads_works(e, out_name);
    }
    ductile_engine_free(e);
    ductile_builder_free(b);
    TEST_MAIN_END();
}
