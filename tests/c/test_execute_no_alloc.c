/* Execute allocates nothing once a context has planned its shapes: kernels are compiled at
 * load (backend.h) and take their scratch from the memory the context reserved with its
 * activation arena. The test binary interposes malloc and its siblings (the library is linked
 * statically, so its calls land here) and counts every call made while execute runs, on the
 * calling thread and the pool's workers alike, for each model of the suite
 * ($DUCTILE_MODELS; skipped when absent), and for models written here: float16 layers that
 * compute in float32 (their widened copies come from the scratch too), the seq and quant
 * ops, and FlexAttention's modifier subgraphs (runs the context keeps). Not built with sanitizers, which own malloc. */
#include "ductile.h"
#include "onnx_writer.h"
#include "testutil.h"
#include "core/threadpool.h"

#include "backend/cpu/elementwise_impl.h"

#include <math.h>
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
    /* Layers that run subgraphs (FlexAttention's modifiers) size the kept subgraph runs'
     * buffers on the first execute at new shapes: a subgraph's inner shapes are known only by
     * running it, as in eager engines. From the second execute on nothing is allocated. */
    bool subgraph_buffers_at_first_execute;
} model_case;

static const model_case cases[] = {
    {"superres.onnx", 1, {"input"}, {{4, {1, 1, 64, 64}}}, false},
    {"mobilenet_v2.onnx", 1, {"input"}, {{4, {1, 3, 224, 224}}}, false},
    {"bert_small.onnx", 2, {"input_ids", "attention_mask"}, {{2, {1, 16}}, {2, {1, 16}}}, false},
    {"superres_op10_dynbatch.onnx", 1, {"input"}, {{4, {1, 1, 224, 224}}}, false},
    {"seg_lraspp.onnx", 1, {"input_1"}, {{4, {1, 3, 512, 512}}}, false},
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

/* The TensorRT workflow: set the input shapes, ask every output's shape (which plans the
 * shapes: shape pass, arena, kernels' scratch and, on device backends, their plan_shapes),
 * execute. Counted from the FIRST execute: everything it needs was planned before it. */
static void expect_first_execute_allocates_nothing(ductile_engine *e, const model_case *mc, int threads)
{
    ductile_context *c = NULL;
    CHECK_EQ_INT(ductile_context_create(e, &c), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_threads(c, threads), DUCTILE_OK);
    fill(c, mc);
    int outputs = 0;
    for (int32_t i = 0; i < ductile_engine_num_io_tensors(e); i++) {
        const char *name = ductile_engine_io_tensor_name(e, i);
        if (ductile_engine_is_input(e, name) != 0) continue;
        ductile_dims d;
        CHECK_EQ_INT(ductile_context_get_tensor_shape(c, name, &d), DUCTILE_OK);
        outputs++;
    }
    CHECK(outputs > 0);
    atomic_store(&calls, 0);
    atomic_store(&counting, 1);
    ductile_status s = ductile_context_execute(c);
    atomic_store(&counting, 0);
    CHECK_EQ_INT(s, DUCTILE_OK);
    long n = atomic_load(&calls);
    if (n) fprintf(stderr, "%s, %d thread(s): %ld allocator calls in the first execute after get_tensor_shape\n", mc->file,
                   threads, n);
    CHECK_EQ_INT(n, 0);
    ductile_context_free(c);
}

/* Builds the model at path for mc's shapes and counts allocator calls in the first execute
 * after the outputs' shapes were asked, in two executes after the first, then in setting the
 * same shapes again and executing, with 1 and 2 threads. */
static void expect_no_alloc(const char *path, const model_case *mc)
{
    ductile_engine *e = build(path, mc);
    CHECK(e != NULL);
    if (!e) return;
    for (int threads = 1; threads <= 2; threads++) {
        if (!mc->subgraph_buffers_at_first_execute) expect_first_execute_allocates_nothing(e, mc, threads);
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

/* ---- models written here (onnx_writer.h) ---- */

/* A graph under construction: nodes, initializers, inputs and outputs. */
typedef struct graph_w {
    pbw g;
} graph_w;

static void g_init(graph_w *w, const char *name, int dtype, int rank, const int64_t *dims, const void *raw,
                   size_t n)
{
    w_msg(&w->g, 5, tensor_raw(name, dtype, rank, dims, raw, n));
}

static void g_input(graph_w *w, const char *name, int dtype, int rank, const int64_t *dims)
{
    w_msg(&w->g, 11, value_info(name, dtype, rank, dims, NULL));
}

static void g_output(graph_w *w, const char *name, int dtype)
{
    w_msg(&w->g, 12, value_info(name, dtype, -1, NULL, NULL));
}

/* AttributeProto of type INTS. */
static pbw attr_ints_w(const char *name, const int64_t *v, int n)
{
    pbw a = {0};
    w_str(&a, 1, name);
    for (int i = 0; i < n; i++) w_int(&a, 8, v[i]);
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
    const model_case mc = {"shape_ops", 1, {"x"}, {{4, {2, 2, 4, 4}}}, false};
    expect_no_alloc(path, &mc);
    remove(path);
}

/* The model around it with default-domain opset `opset`. */
static pbw g_model(graph_w *w, int opset)
{
    pbw m = {0}, o = {0};
    w_str(&w->g, 2, "g");
    w_int(&m, 1, 8);
    w_str(&m, 2, "ductile-test");
    w_msg(&m, 7, w->g);
    w_str(&o, 1, "");
    w_int(&o, 2, opset);
    w_msg(&m, 8, o);
    return m;
}

static ductile_engine *build_mem(pbw m)
{
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    bool ok = !ductile_builder_create(&b) && !ductile_network_create(b, &net) &&
              !ductile_onnx_parse_memory(net, m.p, m.n) && !ductile_config_create(b, &cfg) &&
              !ductile_builder_build(b, net, cfg, &e);
    if (!ok) fprintf(stderr, "build: %s\n", ductile_last_error());
    free(m.p);
    ductile_config_free(cfg);
    ductile_network_free(net);
    ductile_builder_free(b);
    return e;
}

/* Runs a planned context twice while counting allocator calls; returns them. */
static long count_two_executes(ductile_context *c)
{
    atomic_store(&calls, 0);
    atomic_store(&counting, 1);
    ductile_status s1 = ductile_context_execute(c);
    ductile_status s2 = ductile_context_execute(c);
    atomic_store(&counting, 0);
    CHECK_EQ_INT(s1, DUCTILE_OK);
    CHECK_EQ_INT(s2, DUCTILE_OK);
    if (s1 || s2) fprintf(stderr, "execute: %s\n", ductile_last_error());
    return atomic_load(&calls);
}

/* Conv -> MaxPool -> Softmax -> Add -> MatMul -> Pow (int32 exponent) -> Relu in `dtype`
 * (float16 or float32), weights given as floats (rounded to float16 first by the caller). */
static pbw widen_model(int dtype, const float *wc, const float *bc, const float *wm)
{
    graph_w w = {0};
    size_t es = dtype == DUCTILE_FLOAT16 ? 2 : 4;
    uint8_t buf[4 * 64];
    const struct { const char *name; const float *v; int rank; int64_t dims[4]; int n; } inits[] = {
        {"W", wc, 4, {3, 2, 3, 3}, 54}, {"B", bc, 1, {3}, 3}, {"M", wm, 2, {3, 4}, 12}};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < inits[k].n; i++) {
            if (dtype == DUCTILE_FLOAT16) {
                uint16_t h = dt_float_to_half(inits[k].v[i]);
                memcpy(buf + (size_t)i * es, &h, es);
            } else {
                memcpy(buf + (size_t)i * es, &inits[k].v[i], es);
            }
        }
        g_init(&w, inits[k].name, dtype, inits[k].rank, inits[k].dims, buf, (size_t)inits[k].n * es);
    }
    int32_t three = 3;
    g_init(&w, "E", DUCTILE_INT32, 0, NULL, &three, sizeof three);
    int64_t pads[4] = {1, 1, 1, 1};
    pbw conv_attrs[] = {attr_ints_w("pads", pads, 4)};
    w_msg(&w.g, 1, node("conv", "Conv", NULL, S("x", "W", "B"), S("c"), conv_attrs, 1));
    int64_t two[2] = {2, 2};
    pbw pool_attrs[] = {attr_ints_w("kernel_shape", two, 2), attr_ints_w("strides", two, 2)};
    w_msg(&w.g, 1, node("pool", "MaxPool", NULL, S("c"), S("p"), pool_attrs, 2));
    w_msg(&w.g, 1, node("softmax", "Softmax", NULL, S("p"), S("s"), NULL, 0));
    w_msg(&w.g, 1, node("add", "Add", NULL, S("s", "p"), S("a"), NULL, 0));
    w_msg(&w.g, 1, node("matmul", "MatMul", NULL, S("a", "M"), S("m"), NULL, 0));
    w_msg(&w.g, 1, node("pow", "Pow", NULL, S("m", "E"), S("q"), NULL, 0));
    w_msg(&w.g, 1, node("relu", "Relu", NULL, S("q"), S("y"), NULL, 0));
    int64_t xd[4] = {1, 2, 6, 6};
    g_input(&w, "x", dtype, 4, xd);
    g_output(&w, "y", dtype);
    return g_model(&w, 13);
}

/* A float16 model whose layers compute in float32 (Conv, MaxPool, Softmax, MatMul through
 * dt_cpu_via_f32; Add, Relu and the mixed-dtype Pow through dt_ew_via_f32) executes without an
 * allocator call, and matches the same model in float32 within float16's rounding. */
static void test_float16_layers_widen_in_scratch(void)
{
    float wc[54], bc[3], wm[12], x[72];
    for (int i = 0; i < 54; i++) wc[i] = dt_half_to_float(dt_float_to_half((float)((i * 7) % 11 - 5) / 20.0f));
    for (int i = 0; i < 3; i++) bc[i] = dt_half_to_float(dt_float_to_half(0.1f * (float)(i + 1)));
    for (int i = 0; i < 12; i++) wm[i] = dt_half_to_float(dt_float_to_half((float)((i * 5) % 7 - 3) / 4.0f));
    for (int i = 0; i < 72; i++) x[i] = dt_half_to_float(dt_float_to_half((float)((i * 13) % 17 - 8) / 8.0f));
    ductile_engine *e16 = build_mem(widen_model(DUCTILE_FLOAT16, wc, bc, wm));
    ductile_engine *e32 = build_mem(widen_model(DUCTILE_FLOAT32, wc, bc, wm));
    CHECK(e16 != NULL);
    CHECK(e32 != NULL);
    if (!e16 || !e32) {
        ductile_engine_free(e16);
        ductile_engine_free(e32);
        return;
    }
    for (int threads = 1; threads <= 2; threads++) {
        ductile_context *c16 = NULL, *c32 = NULL;
        CHECK_EQ_INT(ductile_context_create(e16, &c16), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_create(e32, &c32), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_threads(c16, threads), DUCTILE_OK);
        uint16_t *x16 = NULL, *y16 = NULL;
        float *x32 = NULL, *y32 = NULL;
        CHECK_EQ_INT(ductile_context_get_tensor_address(c16, "x", (void **)&x16), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_get_tensor_address(c32, "x", (void **)&x32), DUCTILE_OK);
        for (int i = 0; i < 72; i++) x16[i] = dt_float_to_half(x[i]), x32[i] = x[i];
        CHECK_EQ_INT(ductile_context_execute(c16), DUCTILE_OK);   /* plans the shapes */
        CHECK_EQ_INT(ductile_context_execute(c32), DUCTILE_OK);
        long n = count_two_executes(c16);
        if (n) fprintf(stderr, "float16 model, %d thread(s): %ld allocator calls in two executes\n", threads, n);
        CHECK_EQ_INT(n, 0);
        CHECK_EQ_INT(ductile_context_get_tensor_address(c16, "y", (void **)&y16), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_get_tensor_address(c32, "y", (void **)&y32), DUCTILE_OK);
        int bad = 0;
        double maxref = 0;
        for (int i = 0; i < 3 * 3 * 4; i++) {
            double got = dt_half_to_float(y16[i]), want = y32[i];
            maxref = fabs(want) > maxref ? fabs(want) : maxref;
            if (!(fabs(got - want) <= 1e-3 + 1e-2 * fabs(want))) {
                if (bad++ < 4) fprintf(stderr, "y[%d] = %g in float16, %g in float32\n", i, got, want);
            }
        }
        CHECK_EQ_INT(bad, 0);
        CHECK(maxref > 0.1);    /* the comparison is not over zeros */
        ductile_context_free(c16);
        ductile_context_free(c32);
    }
    ductile_engine_free(e16);
    ductile_engine_free(e32);
}

/* The seq and quant ops, compiled, take their double and int32 copies from the scratch:
 * DynamicQuantizeLinear, MatMulInteger, DequantizeLinear, QuantizeLinear, QLinearMatMul,
 * ConvInteger, QLinearConv, Einsum, Det, DFT, STFT, OneHot, SwiGLU, RotaryEmbedding,
 * TensorScatter, CausalConvWithState and LinearAttention in one model execute with no allocator
 * call, and give the same outputs every run. (Windows and MelWeightMatrix take only sizes:
 * they run in the shape pass or are folded, never in execute.) */
static void test_seq_and_quant_ops_execute_in_scratch(void)
{
    graph_w w = {0};
    uint8_t wq[32], wc[18];
    for (int i = 0; i < 32; i++) wq[i] = (uint8_t)(100 + (i * 37) % 60);
    for (int i = 0; i < 18; i++) wc[i] = (uint8_t)(120 + (i * 11) % 17);
    int64_t d84[2] = {8, 4}, dc[4] = {2, 1, 3, 3}, d2[1] = {2}, d1[1] = {1}, d8[1] = {8}, d122[3] = {1, 2, 2},
            d213[3] = {2, 1, 3};
    g_init(&w, "Wq", DUCTILE_UINT8, 2, d84, wq, sizeof wq);
    g_init(&w, "Wc", DUCTILE_UINT8, 4, dc, wc, sizeof wc);
    float s1 = 0.05f, ws = 0.02f, ys = 0.5f;
    uint8_t z1 = 128, wz = 130, yz = 100;
    g_init(&w, "s1", DUCTILE_FLOAT32, 0, NULL, &s1, 4);
    g_init(&w, "ws", DUCTILE_FLOAT32, 0, NULL, &ws, 4);
    g_init(&w, "ys", DUCTILE_FLOAT32, 0, NULL, &ys, 4);
    g_init(&w, "z1", DUCTILE_UINT8, 0, NULL, &z1, 1);
    g_init(&w, "wz", DUCTILE_UINT8, 0, NULL, &wz, 1);
    g_init(&w, "yz", DUCTILE_UINT8, 0, NULL, &yz, 1);
    int64_t step = 4, depth = 4;
    g_init(&w, "step", DUCTILE_INT64, 0, NULL, &step, 8);
    g_init(&w, "depth", DUCTILE_INT64, 1, d1, &depth, 8);
    float win[8], onoff[2] = {0.0f, 3.0f}, cs[4], sn[4], cw[6];
    for (int i = 0; i < 8; i++) win[i] = 0.5f - 0.5f * cosf(2.0f * 3.14159265f * (float)i / 8.0f);
    for (int i = 0; i < 4; i++) cs[i] = cosf(0.3f * (float)i), sn[i] = sinf(0.3f * (float)i);
    for (int i = 0; i < 6; i++) cw[i] = 0.25f * (float)(i - 2);
    g_init(&w, "win", DUCTILE_FLOAT32, 1, d8, win, sizeof win);
    g_init(&w, "onoff", DUCTILE_FLOAT32, 1, d2, onoff, sizeof onoff);
    g_init(&w, "cos", DUCTILE_FLOAT32, 3, d122, cs, sizeof cs);
    g_init(&w, "sin", DUCTILE_FLOAT32, 3, d122, sn, sizeof sn);
    g_init(&w, "cw", DUCTILE_FLOAT32, 3, d213, cw, sizeof cw);
    w_msg(&w.g, 1, node("dq", "DynamicQuantizeLinear", NULL, S("x"), S("xq", "xs", "xz"), NULL, 0));
    w_msg(&w.g, 1, node("mmi", "MatMulInteger", NULL, S("xq", "Wq", "xz", "wz"), S("mi"), NULL, 0));
    w_msg(&w.g, 1, node("deq", "DequantizeLinear", NULL, S("xq", "xs", "xz"), S("xd"), NULL, 0));
    w_msg(&w.g, 1, node("q", "QuantizeLinear", NULL, S("xd", "s1", "z1"), S("q2"), NULL, 0));
    w_msg(&w.g, 1, node("qlmm", "QLinearMatMul", NULL, S("q2", "s1", "z1", "Wq", "ws", "wz", "ys", "yz"), S("qm"),
                        NULL, 0));
    pbw eq[] = {attr_str("equation", "ij,kj->ik", 3)};
    w_msg(&w.g, 1, node("einsum", "Einsum", NULL, S("xd", "xd"), S("gram"), eq, 1));
    w_msg(&w.g, 1, node("det", "Det", NULL, S("gram"), S("det"), NULL, 0));
    w_msg(&w.g, 1, node("dft", "DFT", NULL, S("sig"), S("spec"), NULL, 0));
    w_msg(&w.g, 1, node("stft", "STFT", NULL, S("sig", "step", "win"), S("st"), NULL, 0));
    w_msg(&w.g, 1, node("onehot", "OneHot", NULL, S("idx", "depth", "onoff"), S("oh"), NULL, 0));
    w_msg(&w.g, 1, node("qi", "QuantizeLinear", NULL, S("img", "s1", "z1"), S("imq"), NULL, 0));
    w_msg(&w.g, 1, node("ci", "ConvInteger", NULL, S("imq", "Wc", "z1"), S("ci"), NULL, 0));
    w_msg(&w.g, 1, node("qlc", "QLinearConv", NULL, S("imq", "s1", "z1", "Wc", "ws", "wz", "ys", "yz"), S("qc"),
                        NULL, 0));
    w_msg(&w.g, 1, node("swiglu", "SwiGLU", NULL, S("x", "xd"), S("sw"), NULL, 0));
    w_msg(&w.g, 1, node("rope", "RotaryEmbedding", NULL, S("rq", "cos", "sin"), S("ro"), NULL, 0));
    w_msg(&w.g, 1, node("tscatter", "TensorScatter", NULL, S("past", "upd"), S("ts"), NULL, 0));
    w_msg(&w.g, 1, node("cconv", "CausalConvWithState", NULL, S("cx", "cw"), S("cc"), NULL, 0));
    pbw la[] = {attr_str("update_rule", "linear", 3), attr_int("q_num_heads", 1), attr_int("kv_num_heads", 1)};
    w_msg(&w.g, 1, node("linattn", "LinearAttention", NULL, S("lq", "lq", "lq"), S("la"), la, 3));
    const struct { const char *name; int dtype, rank; int64_t dims[4]; } ins[] = {
        {"x", DUCTILE_FLOAT32, 2, {2, 8}},      {"sig", DUCTILE_FLOAT32, 3, {1, 16, 1}},
        {"idx", DUCTILE_INT64, 1, {3}},         {"img", DUCTILE_FLOAT32, 4, {1, 1, 4, 4}},
        {"rq", DUCTILE_FLOAT32, 4, {1, 2, 2, 4}}, {"past", DUCTILE_FLOAT32, 3, {1, 4, 3}},
        {"upd", DUCTILE_FLOAT32, 3, {1, 2, 3}}, {"cx", DUCTILE_FLOAT32, 3, {1, 2, 5}},
        {"lq", DUCTILE_FLOAT32, 3, {1, 2, 4}},
    };
    enum { N_IN = sizeof ins / sizeof ins[0] };
    for (int i = 0; i < N_IN; i++) g_input(&w, ins[i].name, ins[i].dtype, ins[i].rank, ins[i].dims);
    static const char *const outs[] = {"mi", "qm", "det", "spec", "st", "oh", "ci", "qc", "sw", "ro", "ts", "cc", "la"};
    static const int out_types[] = {DUCTILE_INT32, DUCTILE_UINT8, DUCTILE_FLOAT32, DUCTILE_FLOAT32, DUCTILE_FLOAT32,
                                    DUCTILE_FLOAT32, DUCTILE_INT32, DUCTILE_UINT8, DUCTILE_FLOAT32, DUCTILE_FLOAT32,
                                    DUCTILE_FLOAT32, DUCTILE_FLOAT32, DUCTILE_FLOAT32};
    enum { N_OUT = sizeof outs / sizeof outs[0] };
    for (int i = 0; i < N_OUT; i++) g_output(&w, outs[i], out_types[i]);
    ductile_engine *e = build_mem(g_model(&w, 24));
    CHECK(e != NULL);
    if (!e) return;
    for (int threads = 1; threads <= 2; threads++) {
        ductile_context *c = NULL;
        CHECK_EQ_INT(ductile_context_create(e, &c), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_threads(c, threads), DUCTILE_OK);
        for (int i = 0; i < N_IN; i++) {
            void *p = NULL;
            CHECK_EQ_INT(ductile_context_get_tensor_address(c, ins[i].name, &p), DUCTILE_OK);
            int64_t n = 1;
            for (int d = 0; d < ins[i].rank; d++) n *= ins[i].dims[d];
            for (int64_t k = 0; k < n && p; k++) {
                if (ins[i].dtype == DUCTILE_INT64) ((int64_t *)p)[k] = (k * 3) % 5 - 1;
                else ((float *)p)[k] = (float)((k * 7 + i) % 13 - 6) / 4.0f;
            }
        }
        CHECK_EQ_INT(ductile_context_execute(c), DUCTILE_OK);   /* plans the shapes */
        /* What the planning run wrote, to compare the counted runs with. */
        void *first[N_OUT];
        size_t bytes[N_OUT];
        for (int i = 0; i < N_OUT; i++) {
            void *p = NULL;
            ductile_dims d;
            CHECK_EQ_INT(ductile_context_get_tensor_address(c, outs[i], &p), DUCTILE_OK);
            CHECK_EQ_INT(ductile_context_get_tensor_shape(c, outs[i], &d), DUCTILE_OK);
            size_t n = 1;
            for (int k = 0; k < d.nb_dims; k++) n *= (size_t)d.d[k];
            bytes[i] = n * (out_types[i] == DUCTILE_UINT8 ? 1 : 4);
            first[i] = malloc(bytes[i] + 1);
            if (first[i] && p) memcpy(first[i], p, bytes[i]);
        }
        long n = count_two_executes(c);
        if (n) fprintf(stderr, "seq/quant model, %d thread(s): %ld allocator calls in two executes\n", threads, n);
        CHECK_EQ_INT(n, 0);
        for (int i = 0; i < N_OUT; i++) {
            void *p = NULL;
            CHECK_EQ_INT(ductile_context_get_tensor_address(c, outs[i], &p), DUCTILE_OK);
            CHECK(p && first[i] && memcmp(p, first[i], bytes[i]) == 0);
            free(first[i]);
        }
        ductile_context_free(c);
    }
    ductile_engine_free(e);
}

/* ---- the nn and vision kernels, and the pool ---- */

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

/* Writes model m to a temporary file and checks executes of it allocate nothing. */
static void expect_no_alloc_model(pbw m, const model_case *mc)
{
    char path[] = "/tmp/ductile_no_alloc_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) {
        free(m.p);
        return;
    }
    FILE *f = fdopen(fd, "wb");
    CHECK(f != NULL && fwrite(m.p, 1, m.n, f) == m.n);
    if (f) fclose(f);
    free(m.p);
    expect_no_alloc(path, mc);
    remove(path);
}

/* FlexAttention with modifiers: the subgraph runs are the context's, kept from one execute to
 * the next (runtime/ctrl_kernel.c). score_mod is a causal mask built from the scores' own
 * shape (Shape, Gather, Range, Reshape, GreaterOrEqual, Where: shapes computed in the
 * subgraph each run); prob_mod scales the probabilities. */
static pbw graph_attr(const char *name, pbw g)
{
    pbw a = {0};
    w_str(&a, 1, name);
    w_msg(&a, 6, g);
    w_int(&a, 20, 5); /* GRAPH */
    return a;
}

static pbw flex_mods_model(void)
{
    pbw sm = {0}, pm = {0}, g = {0};
    static const int64_t two = 2, three = 3, zero = 0, one = 1, qs[2] = {-1, 1}, ks[2] = {1, -1};
    static const float ninf = -INFINITY, half = 0.5f;
    int64_t n2 = 2;
    w_msg(&sm, 5, tensor_raw("i2", DUCTILE_INT64, 0, NULL, &two, sizeof two));
    w_msg(&sm, 5, tensor_raw("i3", DUCTILE_INT64, 0, NULL, &three, sizeof three));
    w_msg(&sm, 5, tensor_raw("zero", DUCTILE_INT64, 0, NULL, &zero, sizeof zero));
    w_msg(&sm, 5, tensor_raw("one", DUCTILE_INT64, 0, NULL, &one, sizeof one));
    w_msg(&sm, 5, tensor_raw("qs", DUCTILE_INT64, 1, &n2, qs, sizeof qs));
    w_msg(&sm, 5, tensor_raw("ks", DUCTILE_INT64, 1, &n2, ks, sizeof ks));
    w_msg(&sm, 5, tensor_raw("ninf", DUCTILE_FLOAT32, 0, NULL, &ninf, sizeof ninf));
    pbw ax = attr_int("axis", 0);
    add_node(&sm, "Shape", S("s"), S("shape"), NULL, 0);
    add_node(&sm, "Gather", S("shape", "i2"), S("L"), &ax, 1);
    ax = attr_int("axis", 0);
    add_node(&sm, "Gather", S("shape", "i3"), S("S"), &ax, 1);
    add_node(&sm, "Range", S("zero", "L", "one"), S("qr"), NULL, 0);
    add_node(&sm, "Reshape", S("qr", "qs"), S("q_idx"), NULL, 0);
    add_node(&sm, "Range", S("zero", "S", "one"), S("kr"), NULL, 0);
    add_node(&sm, "Reshape", S("kr", "ks"), S("kv_idx"), NULL, 0);
    add_node(&sm, "GreaterOrEqual", S("q_idx", "kv_idx"), S("keep"), NULL, 0);
    add_node(&sm, "Where", S("keep", "s", "ninf"), S("masked"), NULL, 0);
    w_str(&sm, 2, "score_mod");
    w_msg(&sm, 11, value_info("s", DUCTILE_FLOAT32, -1, NULL, NULL));
    w_msg(&sm, 12, value_info("masked", DUCTILE_FLOAT32, -1, NULL, NULL));
    w_msg(&pm, 5, tensor_raw("half", DUCTILE_FLOAT32, 0, NULL, &half, sizeof half));
    add_node(&pm, "Mul", S("p", "half"), S("scaled"), NULL, 0);
    w_str(&pm, 2, "prob_mod");
    w_msg(&pm, 11, value_info("p", DUCTILE_FLOAT32, -1, NULL, NULL));
    w_msg(&pm, 12, value_info("scaled", DUCTILE_FLOAT32, -1, NULL, NULL));
    pbw mods[2] = {graph_attr("score_mod", sm), graph_attr("prob_mod", pm)};
    w_msg(&g, 1, node("flex", "FlexAttention", "ai.onnx.preview", S("x", "x", "x"), S("y"), mods, 2));
    w_str(&g, 2, "flex_mods");
    int64_t xd[4] = {1, 3, 7, 4};
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 4, xd, NULL));
    w_msg(&g, 12, value_info("y", DUCTILE_FLOAT32, -1, NULL, NULL));
    return model(g, "ai.onnx.preview", 1);
}

static void test_execute_allocates_nothing_with_flex_modifiers(void)
{
    static const model_case mc = {"flex_mods (built in the test)", 1, {"x"}, {{4, {1, 3, 7, 4}}}, true};
    expect_no_alloc_model(flex_mods_model(), &mc);
}

static void test_execute_allocates_nothing_with_the_nn_ops(void)
{
    static const model_case mc = {"nn_ops (built in the test)", 1, {"x"}, {{3, {2, 4, 128}}}, false};
    expect_no_alloc_model(nn_ops_model(), &mc);
}

static void test_execute_allocates_nothing_with_the_vision_ops(void)
{
    static const model_case mc = {"vision_ops (built in the test)", 1, {"x"}, {{4, {1, 4, 8, 8}}}, false};
    expect_no_alloc_model(vision_ops_model(), &mc);
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
    test_execute_allocates_nothing_with_flex_modifiers();
    test_execute_allocates_nothing_on_the_shape_kernels();
    test_float16_layers_widen_in_scratch();
    test_seq_and_quant_ops_execute_in_scratch();
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
