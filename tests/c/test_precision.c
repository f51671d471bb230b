/* The mixed-precision pass (builder/precision.c) on the CPU, with a fake device backend that
 * claims half kernels for every op it has except Softmax and lacks Sigmoid: which tensors
 * become float16 / bfloat16, where the casts go (one per tensor and direction), that
 * constants are converted once with round to nearest even, that Pow stays float32, that
 * integer tensors and network inputs and outputs keep their dtypes, and TF32 marks only
 * float32 matmuls. A backend without half kernels (the CPU) is left alone, through the
 * public build too. */
#include "testutil.h"

#include "ductile.h"
#include "backend/backend.h"
#include "builder/optimize.h"
#include "builder/passes.h"
#include "builder/engine_write.h"
#include "builder/profile_check.h"
#include "runtime/engine_impl.h"
#include "core/alloc.h"

#include "onnx_writer.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fake device: the CPU's kernels; Softmax has no half variant, Sigmoid no kernel ---- */

static ductile_status fake_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    return dt_backend_host()->find_kernel(L->op_type)(L, in, out, ex);
}

static dt_kernel_fn fake_find(const char *op)
{
    static const char *const ops[] = {"MatMul", "Add", "Softmax", "Relu", "Pow", "Mul", "Neg", "Reshape", "Cast",
                                      "IsNaN", NULL};
    for (int i = 0; ops[i]; i++)
        if (!strcmp(ops[i], op)) return fake_run;
    return NULL;
}

static int half_asks;

static bool fake_supports(const ductile_layer *L, const dt_view *in, const dt_view *out)
{
    bool half = out[0].dtype == DUCTILE_FLOAT16 || out[0].dtype == DUCTILE_BFLOAT16;
    half_asks += half;
    return !(half && !strcmp(L->op_type, "Softmax"));
}

static void *fake_alloc(size_t n) { return malloc(n ? n : 1); }
static void fake_release(void *p) { free(p); }

static const dt_backend fake = {
    .name = "fake",
    .find_kernel = fake_find,
    .supports = fake_supports,
    .alloc = fake_alloc,
    .release = fake_release,
    .host_memory = false,
    .precisions = (1u << DUCTILE_FLAG_FP16) | (1u << DUCTILE_FLAG_BF16) | (1u << DUCTILE_FLAG_TF32),
};

/* ---- the model ----
 *   a = MatMul(x, W)  b = Add(a, B)  c = Softmax(b)  d = Relu(c)  e = Pow(d, two)
 *   f = Mul(e, x)     y = Sigmoid(f) y2 = Neg(f)     y3 = Reshape(f, shp)
 *   y4 = IsNaN(f)     y5 = Shape(b)
 * x: float [N, 4], B [4, 1, 4] (b: [4, N, 4]); outputs y, y2, y3, y4, y5. */
static const float B[16] = {0.1f, 1.0f / 3.0f, -2.5f, 65520.0f, 1e-8f, 0.5f, 3.0f, -0.1f,
                            0.25f, 0.75f, -1.0f, 2.0f, 1.5f, -0.5f, 0.125f, 4.0f};
/* B in float16 and bfloat16, rounded to nearest even (65520 overflows float16 to inf; 1e-8
 * is below float16's smallest subnormal, 2^-24). */
static const uint16_t B16[16] = {0x2E66, 0x3555, 0xC100, 0x7C00, 0x0000, 0x3800, 0x4200, 0xAE66,
                                 0x3400, 0x3A00, 0xBC00, 0x4000, 0x3E00, 0xB800, 0x3000, 0x4400};
static const uint16_t BB16[16] = {0x3DCD, 0x3EAB, 0xC020, 0x4780, 0x322C, 0x3F00, 0x4040, 0xBDCD,
                                  0x3E80, 0x3F40, 0xBF80, 0x4000, 0x3FC0, 0xBF00, 0x3E00, 0x4080};

static pbw the_model(void)
{
    pbw g = {0};
    int64_t d44[2] = {4, 4}, d414[3] = {4, 1, 4}, d1 = 1;
    const float W[16] = {1, 0, 0, 0, 0, 2, 0, 0, 0, 0, -1, 0, 0.5f, 0, 0, 1}, two = 2.0f;
    const int64_t shp = -1;
    w_msg(&g, 1, node("mm", "MatMul", NULL, S("x", "W"), S("a"), NULL, 0));
    w_msg(&g, 1, node("add", "Add", NULL, S("a", "B"), S("b"), NULL, 0));
    w_msg(&g, 1, node("sm", "Softmax", NULL, S("b"), S("c"), NULL, 0));
    w_msg(&g, 1, node("relu", "Relu", NULL, S("c"), S("d"), NULL, 0));
    w_msg(&g, 1, node("pow", "Pow", NULL, S("d", "two"), S("e"), NULL, 0));
    w_msg(&g, 1, node("mul", "Mul", NULL, S("e", "x"), S("f"), NULL, 0));
    w_msg(&g, 1, node("sig", "Sigmoid", NULL, S("f"), S("y"), NULL, 0));
    w_msg(&g, 1, node("neg", "Neg", NULL, S("f"), S("y2"), NULL, 0));
    w_msg(&g, 1, node("rs", "Reshape", NULL, S("f", "shp"), S("y3"), NULL, 0));
    w_msg(&g, 1, node("nan", "IsNaN", NULL, S("f"), S("y4"), NULL, 0));
    w_msg(&g, 1, node("shape", "Shape", NULL, S("b"), S("y5"), NULL, 0));
    w_str(&g, 2, "g");
    w_msg(&g, 5, tensor_raw("W", DUCTILE_FLOAT32, 2, d44, W, sizeof W));
    w_msg(&g, 5, tensor_raw("B", DUCTILE_FLOAT32, 3, d414, B, sizeof B));
    w_msg(&g, 5, tensor_raw("two", DUCTILE_FLOAT32, 0, NULL, &two, sizeof two));
    w_msg(&g, 5, tensor_raw("shp", DUCTILE_INT64, 1, &d1, &shp, sizeof shp));
    int64_t xd[2] = {-1, 4}, yd[3] = {4, -1, 4}, yd3 = -1;
    const char *syms[2] = {"N", NULL}, *ysyms[3] = {NULL, "N", NULL};
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 2, xd, syms));
    w_msg(&g, 12, value_info("y", DUCTILE_FLOAT32, 3, yd, ysyms));
    w_msg(&g, 12, value_info("y2", DUCTILE_FLOAT32, 3, yd, ysyms));
    w_msg(&g, 12, value_info("y3", DUCTILE_FLOAT32, 1, &yd3, NULL));
    w_msg(&g, 12, value_info("y4", DUCTILE_BOOL, 3, yd, ysyms));
    int64_t d3 = 3;
    w_msg(&g, 12, value_info("y5", DUCTILE_INT64, 1, &d3, NULL));
    return model(g, NULL, 0);
}

static ductile_engine *build_cpu(unsigned flags)
{
    pbw m = the_model();
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_profile *p = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_memory(net, m.p, m.n), DUCTILE_OK);
    free(m.p);
    ductile_dims lo = {2, {1, 4}}, opt = {2, {2, 4}}, hi = {2, {4, 4}};
    CHECK_EQ_INT(ductile_profile_create(b, &p), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "x", &lo, &opt, &hi), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_add_profile(cfg, p, NULL), DUCTILE_OK);
    for (int f = 0; f < 3; f++)
        if (flags & (1u << f)) CHECK_EQ_INT(ductile_config_set_flag(cfg, (ductile_builder_flag)f, 1), DUCTILE_OK);
    if (ductile_builder_build(b, net, cfg, &e) != DUCTILE_OK) {
        fprintf(stderr, "build: %s\n", ductile_last_error());
        CHECK(0);
    }
    ductile_config_free(cfg);
    ductile_profile_free(p);
    ductile_network_free(net);
    ductile_builder_free(b);
    return e;
}

/* The CPU engine's bytes loaded for the fake device (as dt_engine_from_bytes does for a real
 * one), then the pass on a copy of its network; *out: that copy after the pass, with the
 * folded casts and unused constants extracted away. */
static ductile_network *lower(const ductile_engine *cpu, unsigned flags, ductile_network **keep, bool *changed)
{
    void *bytes = NULL;
    size_t n = 0;
    ductile_engine *e = NULL;
    ductile_network *w = NULL, *out = NULL;
    CHECK_EQ_INT(ductile_engine_serialize(cpu, &bytes, &n), DUCTILE_OK);
    CHECK_EQ_INT(ductile_engine_load_memory(bytes, n, &e), DUCTILE_OK);
    ductile_free(bytes);
    dt_plan_free(&e->plan);
    e->backend = &fake;
    CHECK_EQ_INT(dt_plan_make(e->net, &fake, &e->plan), DUCTILE_OK);
    CHECK_EQ_INT(dt_pass_extract(e->net, &w), DUCTILE_OK);
    CHECK_EQ_INT(dt_pass_precision(w, e, &fake, flags, changed), DUCTILE_OK);
    CHECK_EQ_INT(dt_pass_extract(w, &out), DUCTILE_OK);
    /* w's constants point into e's bytes: the engine goes once the caller is done. */
    keep[0] = w;
    keep[1] = (ductile_network *)e;
    return out;
}

static void release(ductile_network *out, ductile_network **keep)
{
    dt_network_delete(out);
    dt_network_delete(keep[0]);
    ductile_engine_free((ductile_engine *)keep[1]);
}

static const ductile_tensor *find(const ductile_network *net, const char *name)
{
    const ductile_tensor *t = dt_network_find(net, name);
    CHECK(t != NULL);
    if (!t) fprintf(stderr, "  no tensor '%s'\n", name);
    return t;
}

static int dtype_of(const ductile_network *net, const char *name)
{
    const ductile_tensor *t = find(net, name);
    return t ? t->dtype : -1;
}

/* "Cast(x)->x/f16 MatMul(...)..." for the layer sequence, into buf. */
static void describe(const ductile_network *net, char *buf, size_t cap)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < net->n_layers && at < cap; i++) {
        const ductile_layer *L = net->layers[i];
        at += (size_t)snprintf(buf + at, cap - at, "%s%s(", i ? " " : "", L->op_type);
        for (int k = 0; k < L->n_in && at < cap; k++)
            at += (size_t)snprintf(buf + at, cap - at, "%s%s", k ? "," : "", L->in[k] ? L->in[k]->name : "");
        if (at < cap) at += (size_t)snprintf(buf + at, cap - at, ")->%s", L->out[0]->name);
    }
}

static void check_half(const ductile_engine *cpu, int half)
{
    ductile_network *keep[2];
    bool changed = false;
    unsigned flag = half == DUCTILE_FLOAT16 ? 1u << DUCTILE_FLAG_FP16 : 1u << DUCTILE_FLAG_BF16;
    half_asks = 0;
    ductile_network *w = lower(cpu, flag, keep, &changed);
    CHECK(changed);
    CHECK(half_asks > 0);
    if (!w) return;
    const char *t = half == DUCTILE_FLOAT16 ? "f16" : "bf16";
    char want[2048], got[2048];
    /* The MatMul reads W packed in the CPU's float32 layout: it stays float32. Softmax (no half
     * kernel) and Pow (kept float32) run between casts; one cast of x to half (for Mul);
     * Sigmoid, a host fallback, reads float32; outputs written by lowered layers get a cast
     * into the float32 output; B is a half constant. IsNaN (its kernel takes half) and Shape
     * (reads dims only) read the half tensors as they are. */
    snprintf(want, sizeof want,
             "MatMul(x,W.packed)->a Cast(a)->a/%s Add(a/%s,B/%s)->b Cast(b)->b/f32 Softmax(b/f32)->c Cast(c)->c/%s "
             "Relu(c/%s)->d Cast(d)->d/f32 Pow(d/f32,two)->e Cast(e)->e/%s Cast(x)->x/%s Mul(e/%s,x/%s)->f "
             "Cast(f)->f/f32 Sigmoid(f/f32)->y Neg(f)->y2/%s Cast(y2/%s)->y2 Reshape(f,shp)->y3/%s Cast(y3/%s)->y3 "
             "IsNaN(f)->y4 Shape(b)->y5",
             t, t, t, t, t, t, t, t, t, t, t, t, t);
    describe(w, got, sizeof got);
    CHECK_EQ_STR(got, want);
    CHECK_EQ_INT(dtype_of(w, "x"), DUCTILE_FLOAT32);
    CHECK_EQ_INT(dtype_of(w, "a"), DUCTILE_FLOAT32);
    CHECK_EQ_INT(dtype_of(w, "b"), half);
    CHECK_EQ_INT(dtype_of(w, "f"), half);
    CHECK_EQ_INT(dtype_of(w, "c"), DUCTILE_FLOAT32);
    CHECK_EQ_INT(dtype_of(w, "e"), DUCTILE_FLOAT32);
    CHECK_EQ_INT(dtype_of(w, "two"), DUCTILE_FLOAT32);
    CHECK_EQ_INT(dtype_of(w, "shp"), DUCTILE_INT64);
    CHECK_EQ_INT(dtype_of(w, "y4"), DUCTILE_BOOL);
    CHECK_EQ_INT(dtype_of(w, "y5"), DUCTILE_INT64);
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(w->outputs[i]->dtype, DUCTILE_FLOAT32);
    char wname[16];
    snprintf(wname, sizeof wname, "B/%s", t);
    const ductile_tensor *wt = find(w, wname);
    if (wt) {
        CHECK(wt->data != NULL && wt->producer == NULL && wt->dtype == half && wt->nbytes == sizeof B16);
        CHECK(wt->data && memcmp(wt->data, half == DUCTILE_FLOAT16 ? B16 : BB16, sizeof B16) == 0);
        for (int i = 0; wt->data && i < 16; i++) {
            uint16_t h = ((const uint16_t *)wt->data)[i], e = half == DUCTILE_FLOAT16 ? B16[i] : BB16[i];
            if (h != e) fprintf(stderr, "  B[%d]: got 0x%04X, want 0x%04X\n", i, h, e);
        }
    }
    CHECK(dt_network_find(w, "B") == NULL); /* read only by Add: its float32 original is dropped */
    /* The lowered network is a valid engine: every dtype agrees with the ops' inference. */
    void *bytes = NULL;
    size_t n = 0;
    ductile_engine *e = NULL;
    CHECK_EQ_INT(dt_engine_write(w, cpu->profiles, cpu->n_profiles, &bytes, &n), DUCTILE_OK);
    CHECK_EQ_INT(dt_engine_from_bytes(bytes, n, &e), DUCTILE_OK);
    if (e) CHECK_EQ_INT(ductile_engine_tensor_dtype(e, "y2"), DUCTILE_FLOAT32);
    ductile_engine_free(e);
    release(w, keep);
}

static void check_tf32(const ductile_engine *cpu)
{
    ductile_network *keep[2];
    bool changed = false;
    ductile_network *w = lower(cpu, 1u << DUCTILE_FLAG_TF32, keep, &changed);
    CHECK(changed);
    if (!w) return;
    int casts = 0, marked = 0;
    for (int i = 0; i < w->n_layers; i++) {
        const ductile_layer *L = w->layers[i];
        casts += !strcmp(L->op_type, "Cast");
        marked += dt_attr_int(L, "tf32", 0) != 0;
        if (!strcmp(L->op_type, "MatMul")) CHECK_EQ_INT((int)dt_attr_int(L, "tf32", 0), 1);
    }
    CHECK_EQ_INT(casts, 0);
    CHECK_EQ_INT(marked, 1);
    /* --dumpLayerInfo shows it. */
    void *bytes = NULL;
    size_t n = 0;
    ductile_engine *e = NULL;
    CHECK_EQ_INT(dt_engine_write(w, cpu->profiles, cpu->n_profiles, &bytes, &n), DUCTILE_OK);
    CHECK_EQ_INT(dt_engine_from_bytes(bytes, n, &e), DUCTILE_OK);
    const char *info = e ? ductile_engine_layer_info(e) : "";
    const char *mm = strstr(info, "\"LayerType\": \"MatMul\"");
    const char *tf = strstr(info, "\"TF32\": true"), *next = mm ? strstr(mm + 1, "\"LayerType\"") : NULL;
    /* Once, in the MatMul's entry. */
    CHECK(mm && tf && tf > mm && (!next || tf < next));
    CHECK(tf && !strstr(tf + 5, "TF32"));
    if (tf && strstr(tf + 5, "TF32")) fprintf(stderr, "%s\n", info);
    ductile_engine_free(e);
    release(w, keep);

}

/* The CPU backend computes in float32: the flags change nothing, in the pass or the build. */
static void check_cpu_unchanged(const ductile_engine *cpu)
{
    bool changed = true;
    ductile_network *w = NULL;
    CHECK_EQ_INT(dt_pass_extract(cpu->net, &w), DUCTILE_OK);
    CHECK_EQ_INT(dt_pass_precision(w, cpu, dt_backend_host(), 7u, &changed), DUCTILE_OK);
    CHECK(!changed);
    dt_network_delete(w);
    ductile_engine *h = build_cpu(7u);
    if (!h) return;
    CHECK_EQ_INT(h->net->n_layers, cpu->net->n_layers);
    CHECK(strstr(ductile_engine_layer_info(h), "float16") == NULL);
    CHECK(strstr(ductile_engine_layer_info(h), "bfloat16") == NULL);
    CHECK(strstr(ductile_engine_layer_info(h), "\"Dtype\": \"float32\"") != NULL);
    for (int i = 0; i < h->net->n_layers; i++) CHECK_EQ_INT((int)dt_attr_int(h->net->layers[i], "tf32", 0), 0);
    ductile_engine_free(h);
}

/* Ops that admit half for the CUDA backend's kernels (LayerNormalization, GlobalAveragePool,
 * Resize, FusedConv) are refused by the CPU's float32 kernels when the engine is loaded, with
 * the tensor named, never run on half data as if it were float32. */
static void check_cpu_refuses_half_layers(void)
{
    pbw g = {0};
    int64_t d[2] = {2, 4}, d4 = 4;
    const uint16_t scale[4] = {0x3C00, 0x3C00, 0x3C00, 0x3C00};
    pbw ln[1] = {attr_float("epsilon", 1e-5f)};
    w_msg(&g, 1, node("ln", "LayerNormalization", NULL, S("x", "scale"), S("y"), ln, 1));
    w_str(&g, 2, "g");
    w_msg(&g, 5, tensor_raw("scale", DUCTILE_FLOAT16, 1, &d4, scale, sizeof scale));
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT16, 2, d, NULL));
    w_msg(&g, 12, value_info("y", DUCTILE_FLOAT16, 2, d, NULL));
    /* model()'s opset 13 lacks LayerNormalization: an opset 17 ModelProto. */
    pbw m = {0}, o = {0};
    w_int(&m, 1, 8);
    w_msg(&m, 7, g);
    w_str(&o, 1, "");
    w_int(&o, 2, 17);
    w_msg(&m, 8, o);
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_memory(net, m.p, m.n), DUCTILE_OK);
    free(m.p);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_set_flag(cfg, DUCTILE_FLAG_FP16, 1), DUCTILE_OK);
    CHECK_EQ_INT(ductile_builder_build(b, net, cfg, &e), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(ductile_last_error(),
                 "node 'ln' (LayerNormalization, opset 17): input 0 ('x') has dtype float16; the cpu kernel computes float32 only");
    CHECK(e == NULL);
    ductile_config_free(cfg);
    ductile_network_free(net);
    ductile_builder_free(b);
}

/* ---- the suite models through the CUDA backend's supports() (pure logic, no GPU needed) ----
 * The lowered network must pass the shape pass (every op admits its dtypes) and keep every
 * layer the device ran in float32 on the device. */
static const dt_backend *cuda;
static const dt_kernel *fcuda_kernel(const char *op) { return cuda->kernel ? cuda->kernel(op) : NULL; }
static bool fcuda_supports(const ductile_layer *L, const dt_view *in, const dt_view *out)
{
    return cuda->supports(L, in, out);
}

static dt_backend fcuda = {
    .name = "fake-cuda",
    .kernel = fcuda_kernel, /* every CUDA kernel is compiled: no adapter */
    .supports = fcuda_supports,
    .alloc = fake_alloc,
    .release = fake_release,
    .host_memory = false,
};

/* Marks fallbacks as dt_engine_upload does, from the shape pass at profile 0's opt shapes;
 * returns how many execute layers are fallbacks, -1 when the shape pass fails. */
static int place(ductile_engine *e)
{
    dt_shape_state st;
    CHECK_EQ_INT(dt_shape_state_init(&st, e), DUCTILE_OK);
    for (int i = 0; i < e->net->n_inputs; i++) {
        const dt_profile_input *pi = dt_profile_get(&e->profiles[0], e->net->inputs[i]->name);
        dt_view *v = &st.views[e->net->inputs[i]->index];
        v->rank = pi->rank;
        memcpy(v->dims, pi->opt, sizeof(int64_t) * (size_t)pi->rank);
    }
    dt_exec ex = {.pool = NULL};
    ductile_status s = dt_shape_pass(e, &st, &ex);
    if (s) fprintf(stderr, "  shape pass: %s\n", ductile_last_error());
    int fallbacks = 0;
    dt_view in[DT_MAX_LAYER_IO], out[DT_MAX_LAYER_IO];
    for (int i = 0; !s && i < e->plan.n_layers; i++) {
        dt_plan_layer *pl = &e->plan.layers[i];
        const ductile_layer *L = pl->layer;
        if (pl->value) continue;
        dt_layer_input_views(L, st.views, in);
        for (int k = 0; k < L->n_out; k++) out[k] = st.views[L->out[k]->index];
        if (!pl->fallback && !fcuda.supports(L, in, out)) pl->fallback = true;
        fallbacks += pl->fallback;
    }
    dt_shape_state_free(&st, e);
    return s ? -1 : fallbacks;
}

static void check_suite_model(const char *file, const char *const *names, const ductile_dims *lo,
                              const ductile_dims *hi, int n_in, int half)
{
    char path[1024];
    const char *dir = getenv("DUCTILE_MODELS");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "../shared/models", file);
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_profile *p = NULL;
    ductile_config *cfg = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    if (ductile_onnx_parse_file(net, path) != DUCTILE_OK) {
        fprintf(stderr, "skipped %s: %s\n", file, ductile_last_error());
        ductile_network_free(net);
        ductile_builder_free(b);
        return;
    }
    CHECK_EQ_INT(ductile_profile_create(b, &p), DUCTILE_OK);
    for (int i = 0; i < n_in; i++) CHECK_EQ_INT(ductile_profile_set_shape(p, names[i], &lo[i], &hi[i], &hi[i]), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_add_profile(cfg, p, NULL), DUCTILE_OK);
    /* The build's passes without the CPU's packing (the CUDA backend packs nothing; a layer
     * reading weights packed for the CPU stays float32), written for the CPU and re-planned
     * for the fake: a CUDA engine without a GPU. */
    ductile_network *w0 = NULL, *w1 = NULL;
    ductile_profile *profiles = NULL;
    int n_profiles = 0;
    dt_engine_target tgt;
    memset(&tgt, 0, sizeof tgt);
    strcpy(tgt.backend, "cpu");
    ductile_engine *e = NULL;
    CHECK_EQ_INT(dt_pass_extract(net, &w0), DUCTILE_OK);
    CHECK_EQ_INT(dt_pass_fold_constants(w0), DUCTILE_OK);
    CHECK_EQ_INT(dt_pass_fuse(w0), DUCTILE_OK);
    CHECK_EQ_INT(dt_pass_extract(w0, &w1), DUCTILE_OK);
    CHECK_EQ_INT(dt_profiles_normalize(w1, cfg, &profiles, &n_profiles), DUCTILE_OK);
    CHECK_EQ_INT(dt_pass_dtypes(w1, profiles, n_profiles, &tgt, &e), DUCTILE_OK);
    ductile_config_free(cfg);
    ductile_profile_free(p);
    if (!e) return;
    dt_plan_free(&e->plan);
    e->backend = &fcuda;
    CHECK_EQ_INT(dt_plan_make(e->net, &fcuda, &e->plan), DUCTILE_OK);
    int before = place(e);
    ductile_network *w = NULL, *w2 = NULL;
    bool changed = false;
    CHECK_EQ_INT(dt_pass_extract(e->net, &w), DUCTILE_OK);
    ductile_layer **orig = malloc(sizeof *orig * (size_t)(w->n_layers + 1));
    memcpy(orig, w->layers, sizeof *orig * (size_t)w->n_layers);
    unsigned flag = half == DUCTILE_FLOAT16 ? 1u << DUCTILE_FLAG_FP16 : 1u << DUCTILE_FLAG_BF16;
    CHECK_EQ_INT(dt_pass_precision(w, e, &fcuda, flag, &changed), DUCTILE_OK);
    CHECK(changed);
    CHECK_EQ_INT(dt_pass_extract(w, &w2), DUCTILE_OK);
    int lowered = 0, casts = 0, layers = w2 ? w2->n_layers : 0;
    char kept[512] = "";
    for (int l = 0; l < layers; l++) {
        const ductile_layer *L = w2->layers[l];
        casts += !strcmp(L->op_type, "Cast") && (L->out[0]->dtype == half || L->in[0]->dtype == half);
        lowered += strcmp(L->op_type, "Cast") && L->out[0]->dtype == half;
    }
    /* Every layer the device computed in float32 is lowered, but those kept for accuracy (a
     * DepthToSpace or Transpose reading half and writing a network output in float32 itself,
     * the output's Cast folded in, is lowered). */
    for (int l = 0; l < e->plan.n_layers; l++) {
        const dt_plan_layer *pl = &e->plan.layers[l];
        const ductile_layer *L = orig[l]; /* the same layer, after the pass */
        bool converts = L->n_in == 1 && L->in[0] && L->in[0]->dtype == half && dt_attr_find(L, "to");
        if (pl->value || pl->fallback || L->out[0]->dtype == half || converts || !strcmp(L->op_type, "Cast") ||
            !strcmp(L->op_type, "Pow") || pl->layer->out[0]->dtype != DUCTILE_FLOAT32)
            continue;
        if (strlen(kept) + strlen(L->op_type) + 2 < sizeof kept) strcat(strcat(kept, " "), L->op_type);
    }
    CHECK_EQ_STR(kept, "");
    free(orig);
    /* The lowered network as an engine for the fake: the shape pass and the placement. */
    ductile_engine *h = dt_calloc(1, sizeof *h);
    int after = -2;
    if (h && w2) {
        h->net = w2;
        h->profiles = e->profiles;
        h->n_profiles = e->n_profiles;
        h->backend = &fcuda;
        CHECK_EQ_INT(dt_plan_make(w2, &fcuda, &h->plan), DUCTILE_OK);
        after = place(h);
        dt_plan_free(&h->plan);
    }
    dt_free(h);
    fprintf(stderr, "%s %s: %d layers, %d lowered, %d casts, fallbacks %d -> %d\n", file,
            ductile_dtype_name((ductile_dtype)half), layers, lowered, casts, before, after);
    CHECK(after >= 0 && after == before);
    CHECK(lowered > 0);
    dt_network_delete(w2);
    dt_network_delete(w);
    ductile_engine_free(e);
    for (int i = 0; i < n_profiles; i++) dt_profile_clear(&profiles[i]);
    dt_free(profiles);
    dt_network_delete(w1);
    dt_network_delete(w0);
    ductile_network_free(net);
    ductile_builder_free(b);
}

static void check_suite(void)
{
    cuda = dt_backend_find("cuda");
    if (!cuda) {
        fprintf(stderr, "skipped the suite models: built with CUDA=0\n");
        return;
    }
    fcuda.precisions = cuda->precisions;
    for (int h = 0; h < 2; h++) {
        int half = h ? DUCTILE_BFLOAT16 : DUCTILE_FLOAT16;
        const char *sr[] = {"input"};
        ductile_dims sr_lo[] = {{4, {1, 1, 16, 16}}}, sr_hi[] = {{4, {2, 1, 40, 24}}};
        check_suite_model("superres.onnx", sr, sr_lo, sr_hi, 1, half);
        check_suite_model("superres_op10_dynbatch.onnx", sr, (ductile_dims[]){{4, {1, 1, 224, 224}}},
                          (ductile_dims[]){{4, {2, 1, 224, 224}}}, 1, half);
        const char *mn[] = {"input"};
        ductile_dims mn_lo[] = {{4, {1, 3, 224, 224}}}, mn_hi[] = {{4, {2, 3, 224, 224}}};
        check_suite_model("mobilenet_v2.onnx", mn, mn_lo, mn_hi, 1, half);
        const char *bert[] = {"input_ids", "attention_mask"};
        ductile_dims b_lo[] = {{2, {1, 5}}, {2, {1, 5}}}, b_hi[] = {{2, {2, 17}}, {2, {2, 17}}};
        check_suite_model("bert_small.onnx", bert, b_lo, b_hi, 2, half);
        const char *seg[] = {"input_1"};
        ductile_dims s_lo[] = {{4, {1, 3, 64, 64}}}, s_hi[] = {{4, {1, 3, 96, 80}}};
        check_suite_model("seg_lraspp.onnx", seg, s_lo, s_hi, 1, half);
    }
}

/* Shape inputs: the pass's shape pass has no values for them, so it goes as far as it can
 * (dt_shape_pass_partial); a layer whose views follow from their values (Reshape by a shape
 * input, and what reads its output) stays float32, the others are lowered.
 *   a = Add(x, x)  y = Neg(a)  r = Reshape(a, shp)  m = Mul(r, r); outputs y, m. */
static void check_shape_input(void)
{
    pbw g = {0};
    w_msg(&g, 1, node("add", "Add", NULL, S("x", "x"), S("a"), NULL, 0));
    w_msg(&g, 1, node("neg", "Neg", NULL, S("a"), S("y"), NULL, 0));
    w_msg(&g, 1, node("rs", "Reshape", NULL, S("a", "shp"), S("r"), NULL, 0));
    w_msg(&g, 1, node("mul", "Mul", NULL, S("r", "r"), S("m"), NULL, 0));
    w_str(&g, 2, "g");
    int64_t xd[2] = {-1, 4}, sd = 2, md[2] = {-1, -1};
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 2, xd, NULL));
    w_msg(&g, 11, value_info("shp", DUCTILE_INT64, 1, &sd, NULL));
    w_msg(&g, 12, value_info("y", DUCTILE_FLOAT32, 2, xd, NULL));
    w_msg(&g, 12, value_info("m", DUCTILE_FLOAT32, 2, md, NULL));
    pbw m = model(g, NULL, 0);
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_profile *p = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *cpu = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_memory(net, m.p, m.n), DUCTILE_OK);
    free(m.p);
    ductile_dims lo = {2, {1, 4}}, hi = {2, {4, 4}}, two = {1, {2}};
    CHECK_EQ_INT(ductile_profile_create(b, &p), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "x", &lo, &hi, &hi), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "shp", &two, &two, &two), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_add_profile(cfg, p, NULL), DUCTILE_OK);
    CHECK_EQ_INT(ductile_builder_build(b, net, cfg, &cpu), DUCTILE_OK);
    ductile_config_free(cfg);
    ductile_profile_free(p);
    ductile_network_free(net);
    ductile_builder_free(b);
    if (!cpu) return;
    CHECK_EQ_INT(cpu->plan.n_shape_inputs, 1);
    ductile_network *keep[2];
    bool changed = false;
    ductile_network *w = lower(cpu, 1u << DUCTILE_FLAG_FP16, keep, &changed);
    CHECK(changed);
    if (w) {
        char got[2048];
        describe(w, got, sizeof got);
        CHECK_EQ_STR(got, "Cast(x)->x/f16 Add(x/f16,x/f16)->a Neg(a)->y/f16 Cast(y/f16)->y Cast(a)->a/f32 "
                          "Reshape(a/f32,shp)->r Mul(r,r)->m");
        CHECK_EQ_INT(dtype_of(w, "a"), DUCTILE_FLOAT16);
        CHECK_EQ_INT(dtype_of(w, "r"), DUCTILE_FLOAT32);
        CHECK_EQ_INT(dtype_of(w, "m"), DUCTILE_FLOAT32);
        release(w, keep);
    }
    ductile_engine_free(cpu);
}

int main(void)
{
    check_suite();
    check_shape_input();
    check_cpu_refuses_half_layers();
    ductile_engine *cpu = build_cpu(0);
    CHECK(cpu != NULL);
    if (cpu) {
        check_half(cpu, DUCTILE_FLOAT16);
        check_half(cpu, DUCTILE_BFLOAT16);
        check_tf32(cpu);
        check_cpu_unchanged(cpu);
    }
    ductile_engine_free(cpu);
    TEST_MAIN_END();
}
