/* Execute allocates nothing once a context has planned its shapes: kernels are compiled at
 * load (backend.h) and take their scratch from the memory the context reserved with its
 * activation arena. The test binary interposes malloc and its siblings (the library is linked
 * statically, so its calls land here) and counts every call made while execute runs, on the
 * calling thread and the pool's workers alike, for each model of the suite
 * ($DUCTILE_MODELS; skipped when absent). Not built with sanitizers, which own malloc. */
#include "ductile.h"
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

static void test_execute_allocates_nothing_on_the_suite(const char *dir)
{
    for (size_t m = 0; m < sizeof cases / sizeof cases[0]; m++) {
        const model_case *mc = &cases[m];
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, mc->file);
        ductile_engine *e = build(path, mc);
        CHECK(e != NULL);
        if (!e) continue;
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
            /* Setting the shapes the inputs already have before each execute (as TensorRT
             * code and Python's run() do) plans nothing again. */
            atomic_store(&calls, 0);
            atomic_store(&counting, 1);
            ductile_status s3 = DUCTILE_OK;
            for (int i = 0; i < mc->n_in && !s3; i++) s3 = ductile_context_set_input_shape(c, mc->names[i], &mc->shape[i]);
            if (!s3) s3 = ductile_context_execute(c);
            atomic_store(&counting, 0);
            CHECK_EQ_INT(s3, DUCTILE_OK);
            n = atomic_load(&calls);
            if (n) fprintf(stderr, "%s, %d thread(s): %ld allocator calls in set_input_shape (same shapes) + execute\n",
                           mc->file, threads, n);
            CHECK_EQ_INT(n, 0);
            ductile_context_free(c);
        }
        ductile_engine_free(e);
    }
}
#endif

int main(void)
{
#ifdef DT_NO_INTERPOSE
    printf("SKIP: a sanitizer owns malloc\n");
#else
    const char *dir = getenv("DUCTILE_MODELS");
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/superres.onnx", dir ? dir : "");
    FILE *f = dir ? fopen(probe, "rb") : NULL;
    if (!f) {
        printf("SKIP: the model suite is absent; set DUCTILE_MODELS to its folder\n");
        return 0;
    }
    fclose(f);
    test_execute_allocates_nothing_on_the_suite(dir);
#endif
    TEST_MAIN_END();
}
