/* Execute allocates nothing once a context has planned its shapes: kernels are compiled at
 * load (backend.h) and take their scratch from the memory the context reserved with its
 * activation arena. The test binary interposes malloc and its siblings (the library is linked
 * statically, so its calls land here) and counts every call made while execute runs, on the
 * calling thread and the pool's workers alike, for each model of the suite
 * ($DUCTILE_MODELS; skipped when absent). Not built with sanitizers, which own malloc. */
#include "ductile.h"
#include "core/threadpool.h"
#include "onnx_writer.h"
#include "testutil.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DT_NO_INTERPOSE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define DT_NO_INTERPOSE 1
#endif
#endif

#ifndef DT_NO_INTERPOSE
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_int counting, workers_only;
static atomic_long calls;
static _Thread_local int main_thread;

static void dt_count(void)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed) &&
        !(main_thread && atomic_load_explicit(&workers_only, memory_order_relaxed)))
        atomic_fetch_add(&calls, 1);
}

void *malloc(size_t n)
{
    dt_count();
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    dt_count();
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    dt_count();
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (p) dt_count();
    __libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    dt_count();
    void *p = __libc_memalign(align, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    dt_count();
    return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
    dt_count();
    return __libc_memalign(align, n);
}

typedef struct model_case {
    const char *file;
    int n_in;
    const char *names[2];
    ductile_dims shape[2];
} model_case;

static const model_case cases[] = {
    {"superres.onnx", 1, {"input"}, {{4, {1, 1, 64, 64}}}},
    {"mobilenet_v2.onnx", 1, {"input"}, {{4, {1, 3, 224, 224}}}},
    {"bert_small.onnx", 2, {"input_ids", "attention_mask"}, {{2, {1, 16}}, {2, {1, 16}}}},
    {"superres_op10_dynbatch.onnx", 1, {"input"}, {{4, {1, 1, 224, 224}}}},
    {"seg_lraspp.onnx", 1, {"input_1"}, {{4, {1, 3, 512, 512}}}},
};

/* From a file (path) or from bytes (path NULL). */
static ductile_engine *build(const char *path, const void *bytes, size_t size, const model_case *mc)
{
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_profile *prof = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    bool ok = !ductile_builder_create(&b) && !ductile_network_create(b, &net) &&
              !(path ? ductile_onnx_parse_file(net, path) : ductile_onnx_parse_memory(net, bytes, size)) &&
              !ductile_profile_create(b, &prof) && !ductile_config_create(b, &cfg);
    for (int i = 0; ok && i < mc->n_in; i++)
        ok = !ductile_profile_set_shape(prof, mc->names[i], &mc->shape[i], &mc->shape[i], &mc->shape[i]);
    ok = ok && !ductile_config_add_profile(cfg, prof, NULL) && !ductile_builder_build(b, net, cfg, &e);
    if (!ok) fprintf(stderr, "%s: %s\n", mc->file, ductile_last_error());
    ductile_config_free(cfg);
    ductile_profile_free(prof);
    ductile_network_free(net);
    ductile_builder_free(b);
    return e;
}

/* Inputs: ids and masks 1, floats 0.5; whatever the values, the kernels run the same way. */
static void fill(ductile_context *c, const model_case *mc)
{
    for (int i = 0; i < mc->n_in; i++) {
        void *p = NULL;
        CHECK_EQ_INT(ductile_context_set_input_shape(c, mc->names[i], &mc->shape[i]), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_get_tensor_address(c, mc->names[i], &p), DUCTILE_OK);
        int64_t n = 1;
        for (int d = 0; d < mc->shape[i].nb_dims; d++) n *= mc->shape[i].d[d];
        if (!p) continue;
        if (!strcmp(mc->names[i], "input_ids") || !strcmp(mc->names[i], "attention_mask"))
            for (int64_t k = 0; k < n; k++) ((int64_t *)p)[k] = 1;
        else
            for (int64_t k = 0; k < n; k++) ((float *)p)[k] = 0.5f;
    }
}

/* A pool's workers allocate and free nothing of their own, not even at start: a worker the
 * machine starts late (under load) would otherwise free its start-up data inside an execute
 * (test_execute_allocates_nothing_on_the_suite failed now and then, under make test).
 * Counted on the workers only, from the pool's creation to its free, which joins them. */
static void test_pool_workers_allocate_nothing(void)
{
    main_thread = 1;
    atomic_store(&calls, 0);
    atomic_store(&workers_only, 1);
    atomic_store(&counting, 1);
    dt_pool *p = NULL;
    CHECK_EQ_INT(dt_pool_create(4, &p), DUCTILE_OK);
    dt_pool_free(p);
    atomic_store(&counting, 0);
    atomic_store(&workers_only, 0);
    CHECK_EQ_INT((int)atomic_load(&calls), 0);
}

/* Two executes after the first, with 1 and 2 threads: no allocator call. */
static void check_executes_allocate_nothing(ductile_engine *e, const model_case *mc)
{
    for (int threads = 1; threads <= 2; threads++) {
        ductile_context *c = NULL;
        CHECK_EQ_INT(ductile_context_create(e, &c), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_threads(c, threads), DUCTILE_OK);
        fill(c, mc);
        /* The first run plans the shapes: shape pass, arena and scratch. */
        CHECK_EQ_INT(ductile_context_execute(c), DUCTILE_OK);
        atomic_store(&calls, 0);
        atomic_store(&counting, 1);
        ductile_status s1 = ductile_context_execute(c);
        ductile_status s2 = ductile_context_execute(c);
        atomic_store(&counting, 0);
        CHECK_EQ_INT(s1, DUCTILE_OK);
        CHECK_EQ_INT(s2, DUCTILE_OK);
        long n = atomic_load(&calls);
        if (n) fprintf(stderr, "%s, %d thread(s): %ld allocator calls in two executes\n", mc->file, threads, n);
        CHECK_EQ_INT(n, 0);
        ductile_context_free(c);
    }
}

static void test_execute_allocates_nothing_on_the_suite(const char *dir)
{
    for (size_t m = 0; m < sizeof cases / sizeof cases[0]; m++) {
        const model_case *mc = &cases[m];
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, mc->file);
        ductile_engine *e = build(path, NULL, 0, mc);
        CHECK(e != NULL);
        if (!e) continue;
        check_executes_allocate_nothing(e, mc);
        ductile_engine_free(e);
    }
}

static void add_node(pbw *g, const char *op, const char *const *ins, const char *const *outs, pbw *attrs,
                     int n_attrs)
{
    w_msg(g, 1, node(NULL, op, NULL, ins, outs, attrs, n_attrs));
}

/* ModelProto around graph g, default domain at this opset. */
static pbw opset_model(pbw g, int opset)
{
    pbw m = {0}, o = {0};
    w_int(&m, 1, 8);
    w_str(&m, 2, "ductile-test");
    w_msg(&m, 7, g);
    w_str(&o, 1, "");
    w_int(&o, 2, opset);
    w_msg(&m, 8, o);
    return m;
}

/* Opset 23: the reductions (axes as input 1), Attention in float32 and float16 (widened on
 * the scratch), TopK over 128 (a sort larger than glibc's qsort sorts without malloc),
 * ArgMax, CumSum, LpNormalization, Hardmax, LRN, MeanVarianceNormalization and
 * SoftmaxCrossEntropyLoss without its log-probabilities output (computed in the scratch). */
static pbw nn_ops_model(void)
{
    pbw g = {0};
    int64_t xd[3] = {2, 4, 128}, one = 1, last = -1, k = 100;
    w_msg(&g, 5, tensor_raw("axes", DUCTILE_INT64, 1, &one, &last, sizeof last));
    w_msg(&g, 5, tensor_raw("k", DUCTILE_INT64, 1, &one, &k, sizeof k));
    w_msg(&g, 5, tensor_raw("axis1", DUCTILE_INT64, 0, NULL, &one, sizeof one));
    pbw a[2];
    a[0] = attr_int("q_num_heads", 2);
    a[1] = attr_int("kv_num_heads", 2);
    add_node(&g, "Attention", S("x", "x", "x"), S("att"), a, 2);
    static const char *const reds[] = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceL1", "ReduceL2",
                                       "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp", "ReduceProd"};
    char names[10][24];
    for (int i = 0; i < 10; i++) {
        snprintf(names[i], sizeof names[i], "red%d", i);
        w_msg(&g, 1, node(NULL, reds[i], NULL, S("att", "axes"), (const char *const[]){names[i], NULL}, NULL, 0));
    }
    a[0] = attr_int("to", DUCTILE_FLOAT16);
    add_node(&g, "Cast", S("x"), S("xh"), a, 1);
    add_node(&g, "ReduceSum", S("xh", "axes"), S("redh"), NULL, 0);
    a[0] = attr_int("q_num_heads", 2);
    a[1] = attr_int("kv_num_heads", 2);
    add_node(&g, "Attention", S("xh", "xh", "xh"), S("atth"), a, 2);
    add_node(&g, "TopK", S("att", "k"), S("topv", "topi"), NULL, 0);
    a[0] = attr_int("axis", 1);
    a[1] = attr_int("keepdims", 0);
    add_node(&g, "ArgMax", S("att"), S("target"), a, 2);
    add_node(&g, "CumSum", S("att", "axis1"), S("cum"), NULL, 0);
    add_node(&g, "LpNormalization", S("att"), S("lpn"), NULL, 0);
    add_node(&g, "Hardmax", S("att"), S("hard"), NULL, 0);
    a[0] = attr_int("size", 3);
    add_node(&g, "LRN", S("att"), S("lrn"), a, 1);
    a[0] = (pbw){0};
    int64_t mvn_axes[2] = {0, 2};
    w_str(&a[0], 1, "axes");
    w_packed(&a[0], 8, mvn_axes, 2);
    w_int(&a[0], 20, 7); /* INTS */
    add_node(&g, "MeanVarianceNormalization", S("att"), S("mvn"), a, 1);
    add_node(&g, "SoftmaxCrossEntropyLoss", S("att", "target"), S("loss"), NULL, 0);
    w_str(&g, 2, "nn_ops");
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 3, xd, NULL));
    static const char *const outs[] = {"redh", "atth", "topv", "topi", "cum", "lpn", "hard", "lrn", "mvn", "loss"};
    for (int i = 0; i < 10; i++) w_msg(&g, 12, value_info(names[i], DUCTILE_FLOAT32, -1, NULL, NULL));
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        int t = !strcmp(outs[i], "topi") ? DUCTILE_INT64 : outs[i][3] == 'h' ? DUCTILE_FLOAT16 : DUCTILE_FLOAT32;
        w_msg(&g, 12, value_info(outs[i], t, -1, NULL, NULL));
    }
    return opset_model(g, 23);
}

static void test_execute_allocates_nothing_with_the_nn_ops(void)
{
    static const model_case mc = {"nn_ops (built in the test)", 1, {"x"}, {{3, {2, 4, 128}}}};
    pbw m = nn_ops_model();
    ductile_engine *e = build(NULL, m.p, m.n, &mc);
    free(m.p);
    CHECK(e != NULL);
    if (!e) return;
    check_executes_allocate_nothing(e, &mc);
    ductile_engine_free(e);
}
/* Opset 20: GridSample over AffineGrid's grid, LpPool, GlobalLpPool, GroupNormalization,
 * LRN and MeanVarianceNormalization (its group sums in the scratch). */
static pbw vision_ops_model(void)
{
    pbw g = {0};
    int64_t xd[4] = {1, 4, 8, 8}, td[3] = {1, 2, 3}, four = 4, two = 2;
    static const float theta[6] = {1, 0, 0, 0, 1, 0}, gscale[2] = {1.0f, 0.5f}, gbias[2] = {0.0f, 0.25f};
    w_msg(&g, 5, tensor_raw("theta", DUCTILE_FLOAT32, 3, td, theta, sizeof theta));
    w_msg(&g, 5, tensor_raw("size", DUCTILE_INT64, 1, &four, xd, sizeof xd));
    w_msg(&g, 5, tensor_raw("gscale", DUCTILE_FLOAT32, 1, &two, gscale, sizeof gscale));
    w_msg(&g, 5, tensor_raw("gbias", DUCTILE_FLOAT32, 1, &two, gbias, sizeof gbias));
    pbw a[2];
    add_node(&g, "AffineGrid", S("theta", "size"), S("grid"), NULL, 0);
    add_node(&g, "GridSample", S("x", "grid"), S("gs"), NULL, 0);
    a[0] = (pbw){0};
    w_str(&a[0], 1, "kernel_shape");
    w_packed(&a[0], 8, (const int64_t[]){2, 2}, 2);
    w_int(&a[0], 20, 7); /* INTS */
    add_node(&g, "LpPool", S("x"), S("lp"), a, 1);
    add_node(&g, "GlobalLpPool", S("x"), S("glp"), NULL, 0);
    a[0] = attr_int("num_groups", 2);
    add_node(&g, "GroupNormalization", S("x", "gscale", "gbias"), S("gn"), a, 1);
    a[0] = attr_int("size", 3);
    add_node(&g, "LRN", S("x"), S("lrn"), a, 1);
    add_node(&g, "MeanVarianceNormalization", S("x"), S("mvn"), NULL, 0);
    w_str(&g, 2, "vision_ops");
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 4, xd, NULL));
    static const char *const outs[] = {"gs", "lp", "glp", "gn", "lrn", "mvn"};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
        w_msg(&g, 12, value_info(outs[i], DUCTILE_FLOAT32, -1, NULL, NULL));
    return opset_model(g, 20);
}

static void test_execute_allocates_nothing_with_the_vision_ops(void)
{
    static const model_case mc = {"vision_ops (built in the test)", 1, {"x"}, {{4, {1, 4, 8, 8}}}};
    pbw m = vision_ops_model();
    ductile_engine *e = build(NULL, m.p, m.n, &mc);
    free(m.p);
    CHECK(e != NULL);
    if (!e) return;
    check_executes_allocate_nothing(e, &mc);
    ductile_engine_free(e);
}
#endif

int main(void)
{
#ifdef DT_NO_INTERPOSE
    printf("SKIP: a sanitizer owns malloc\n");
#else
    test_pool_workers_allocate_nothing();
    test_execute_allocates_nothing_with_the_nn_ops();
    test_execute_allocates_nothing_with_the_vision_ops();
    const char *dir = getenv("DUCTILE_MODELS");
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/superres.onnx", dir ? dir : "");
    FILE *f = dir ? fopen(probe, "rb") : NULL;
    if (f) {
        fclose(f);
        test_execute_allocates_nothing_on_the_suite(dir);
    } else {
        printf("SKIP: the model suite is absent; set DUCTILE_MODELS to its folder\n");
    }
#endif
    TEST_MAIN_END();
}
