/* Execute allocates nothing once a context has planned its shapes: kernels are compiled at
 * load (backend.h) and take their scratch from the memory the context reserved with its
 * activation arena. The test binary interposes malloc and its siblings (the library is linked
 * statically, so its calls land here) and counts every call made while execute runs, on the
 * calling thread and the pool's workers alike, for each model of the suite
 * ($DUCTILE_MODELS; skipped when absent). Not built with sanitizers, which own malloc. */
#include "ductile.h"
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

static atomic_int counting;
static atomic_long calls;

static void dt_count(void)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed)) atomic_fetch_add(&calls, 1);
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

static ductile_engine *build(const char *path, const model_case *mc)
{
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_profile *prof = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    bool ok = !ductile_builder_create(&b) && !ductile_network_create(b, &net) &&
              !ductile_onnx_parse_file(net, path) && !ductile_profile_create(b, &prof) &&
              !ductile_config_create(b, &cfg);
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

/* Builds the model at path for mc's shapes and counts allocator calls in two executes after
 * the first, with 1 and 2 threads. */
static void expect_no_alloc(const char *path, const model_case *mc)
{
    ductile_engine *e = build(path, mc);
    CHECK(e != NULL);
    if (!e) return;
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
    ductile_engine_free(e);
}

static void test_execute_allocates_nothing_on_the_suite(const char *dir)
{
    for (size_t m = 0; m < sizeof cases / sizeof cases[0]; m++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, cases[m].file);
        expect_no_alloc(path, &cases[m]);
    }
}

/* ---- the shape kernels, in one model of the ops the suite leaves out ---- */

static pbw int64_init(const char *name, const int64_t *v, int64_t n)
{
    return tensor_raw(name, DUCTILE_INT64, 1, &n, v, (size_t)n * sizeof *v);
}

static pbw ints_attr(const char *name, const int64_t *v, int n)
{
    pbw a = {0};
    w_str(&a, 1, name);
    w_packed(&a, 8, v, n);
    w_int(&a, 20, 7);
    return a;
}

/* x [N,2,4,4] -> ConvTranspose (stride 2) -> Pad -> Slice -> Split -> Expand, Greater,
 * Where -> Trilu, Reshape -> Dropout -> Unsqueeze; Shape -> ConstantOfShape beside them; N
 * dynamic, so the shape pass feeds Reshape, Expand, Slice, Pad and Split their values. */
static pbw shape_ops_model(void)
{
    pbw g = {0};
    static float W[2 * 3 * 3 * 3], B[3] = {0.1f, -0.2f, 0.3f};
    for (int i = 0; i < 54; i++) W[i] = (float)((i * 7919) % 23 - 11) / 8.0f;
    int64_t wd[4] = {2, 3, 3, 3}, bd = 3;
    static const int64_t pads[8] = {0, 0, 1, 1, 0, 0, 1, 1}, starts[2] = {1, 1}, ends[2] = {10, 10},
                         axes[2] = {2, 3}, split[2] = {1, 2}, eshape[4] = {1, 2, 1, 1}, rshape[2] = {0, -1},
                         uaxes[1] = {1}, strides[2] = {2, 2};
    w_msg(&g, 5, tensor_raw("W", DUCTILE_FLOAT32, 4, wd, W, sizeof W));
    w_msg(&g, 5, tensor_raw("B", DUCTILE_FLOAT32, 1, &bd, B, sizeof B));
    w_msg(&g, 5, int64_init("pads", pads, 8));
    w_msg(&g, 5, int64_init("starts", starts, 2));
    w_msg(&g, 5, int64_init("ends", ends, 2));
    w_msg(&g, 5, int64_init("axes", axes, 2));
    w_msg(&g, 5, int64_init("split", split, 2));
    w_msg(&g, 5, int64_init("eshape", eshape, 4));
    w_msg(&g, 5, int64_init("rshape", rshape, 2));
    w_msg(&g, 5, int64_init("uaxes", uaxes, 1));
    pbw ct[] = {ints_attr("strides", strides, 2)};
    w_msg(&g, 1, node("ct", "ConvTranspose", NULL, S("x", "W", "B"), S("y1"), ct, 1));
    w_msg(&g, 1, node("pad", "Pad", NULL, S("y1", "pads"), S("y2"), NULL, 0));
    w_msg(&g, 1, node("slice", "Slice", NULL, S("y2", "starts", "ends", "axes"), S("y3"), NULL, 0));
    pbw sp[] = {attr_int("axis", 1)};
    w_msg(&g, 1, node("split", "Split", NULL, S("y3", "split"), S("a", "b"), sp, 1));
    w_msg(&g, 1, node("expand", "Expand", NULL, S("a", "eshape"), S("c"), NULL, 0));
    w_msg(&g, 1, node("gt", "Greater", NULL, S("b", "c"), S("cond"), NULL, 0));
    w_msg(&g, 1, node("where", "Where", NULL, S("cond", "b", "c"), S("w"), NULL, 0));
    w_msg(&g, 1, node("trilu", "Trilu", NULL, S("w"), S("t"), NULL, 0));
    w_msg(&g, 1, node("reshape", "Reshape", NULL, S("w", "rshape"), S("r"), NULL, 0));
    w_msg(&g, 1, node("dropout", "Dropout", NULL, S("r"), S("d"), NULL, 0));
    w_msg(&g, 1, node("unsq", "Unsqueeze", NULL, S("d", "uaxes"), S("u"), NULL, 0));
    w_msg(&g, 1, node("shape", "Shape", NULL, S("x"), S("s"), NULL, 0));
    w_msg(&g, 1, node("cos", "ConstantOfShape", NULL, S("s"), S("z"), NULL, 0));
    w_str(&g, 2, "shape_ops");
    int64_t xd[4] = {-1, 2, 4, 4}, td[4] = {-1, 2, 9, 9}, ud[3] = {-1, 1, 162};
    const char *sym[4] = {"N", NULL, NULL, NULL};
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 4, xd, sym));
    w_msg(&g, 12, value_info("t", DUCTILE_FLOAT32, 4, td, sym));
    w_msg(&g, 12, value_info("u", DUCTILE_FLOAT32, 3, ud, sym));
    w_msg(&g, 12, value_info("z", DUCTILE_FLOAT32, 4, xd, sym));
    return model(g, NULL, 0);
}

static void test_execute_allocates_nothing_on_the_shape_kernels(void)
{
    char path[] = "/tmp/ductile_shape_ops_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    pbw m = shape_ops_model();
    FILE *f = fdopen(fd, "wb");
    CHECK(f != NULL && fwrite(m.p, 1, m.n, f) == m.n);
    if (f) fclose(f);
    free(m.p);
    const model_case mc = {"shape_ops", 1, {"x"}, {{4, {2, 2, 4, 4}}}};
    expect_no_alloc(path, &mc);
    remove(path);
}
#endif

int main(void)
{
#ifdef DT_NO_INTERPOSE
    printf("SKIP: a sanitizer owns malloc\n");
#else
    test_execute_allocates_nothing_on_the_shape_kernels();
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
