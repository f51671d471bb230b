/* Every tactic of the CUDA backend's convolutions and matmuls, forced, against the CPU engine
 * on suite models (GPU only; skips with "no CUDA device found"): the engine built for CUDA
 * stores tactics per layer and shape point; the test overwrites every conv's stored tactics with one id
 * (layers where it does not apply fall back to the backend's default) and every matmul's
 * with one heuristic rank, compiles those layers again (the run reads the tactic from its
 * params), runs, and compares with the CPU engine (rel-L2 <= 1e-4). The
 * convolutions again in FP16 / BF16 engines (half tensors, float32 I/O; the own kernels'
 * half instantiations, cuDNN's half algorithms and, where the engine is channels last,
 * cuBLASLt's and the own mma kernels for 1x1 convs), against the CPU's float32 (rel-L2 <= 1e-2,
 * test_cuda.py's bound for half engines). And an engine with distinct min, opt and max: its
 * tactics per shape point, and runs at each against the CPU engine. */
#include "cuda_probe.h"
#include "testutil.h"

#include "ductile.h"
#include "backend/cuda/conv_own.h"
#include "backend/cuda/layers.h"
#include "backend/backend.h"
#include "runtime/engine_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* flag: -1 none, else a ductile_builder_flag (FP16, BF16). One profile: lo, opt, hi. */
static ductile_engine *build_range(const char *file, const char *input, const ductile_dims *lo, const ductile_dims *opt,
                                   const ductile_dims *hi, const char *device, int flag)
{
    char path[1024];
    const char *dir = getenv("DUCTILE_MODELS");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "../shared/models", file);
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_profile *p = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    ductile_builder_create(&b);
    ductile_network_create(b, &net);
    if (ductile_onnx_parse_file(net, path) == DUCTILE_OK && ductile_profile_create(b, &p) == DUCTILE_OK &&
        ductile_profile_set_shape(p, input, lo, opt, hi) == DUCTILE_OK && ductile_config_create(b, &cfg) == DUCTILE_OK &&
        (flag < 0 || ductile_config_set_flag(cfg, (ductile_builder_flag)flag, 1) == DUCTILE_OK) &&
        ductile_config_set_device(cfg, device) == DUCTILE_OK && ductile_config_add_profile(cfg, p, NULL) == DUCTILE_OK &&
        ductile_builder_build(b, net, cfg, &e) != DUCTILE_OK)
        e = NULL;
    if (!e) fprintf(stderr, "%s on %s: %s\n", file, device, ductile_last_error());
    ductile_config_free(cfg);
    ductile_profile_free(p);
    ductile_network_free(net);
    ductile_builder_free(b);
    return e;
}

static ductile_engine *build(const char *file, const char *input, const ductile_dims *shape, const char *device, int flag)
{
    return build_range(file, input, shape, shape, shape, device, flag);
}

static float *run(ductile_engine *e, const char *input, const ductile_dims *shape, const float *x, size_t nx,
                  const char *output, size_t *ny)
{
    ductile_context *c = NULL;
    float *y = NULL;
    ductile_dims od;
    if (ductile_context_create(e, &c) != DUCTILE_OK) return NULL;
    if (ductile_context_set_input_shape(c, input, shape) == DUCTILE_OK &&
        ductile_context_set_tensor_address(c, input, (void *)x) == DUCTILE_OK &&
        ductile_context_get_tensor_shape(c, output, &od) == DUCTILE_OK) {
        *ny = 1;
        for (int i = 0; i < od.nb_dims; i++) *ny *= (size_t)od.d[i];
        y = calloc(*ny, sizeof *y);
        if (ductile_context_set_tensor_address(c, output, y) != DUCTILE_OK || ductile_context_execute(c) != DUCTILE_OK) {
            fprintf(stderr, "run: %s\n", ductile_last_error());
            free(y);
            y = NULL;
        }
    }
    (void)nx;
    ductile_context_free(c);
    return y;
}

static double rel_l2(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Sets the stored tactic (profile 0, every point) of every layer of those ops to id and compiles the
 * layer again (the kernels read their tactic from the params prepare made at load, never
 * from the attribute: without the new prepare the run would keep the built one); returns
 * how many. */
static int force(ductile_engine *e, const char *op1, const char *op2, int64_t id)
{
    int n = 0;
    for (int i = 0; i < e->net->n_layers; i++) {
        ductile_layer *L = e->net->layers[i];
        dt_plan_layer *pl = &e->plan.layers[i];
        if ((strcmp(L->op_type, op1) && strcmp(L->op_type, op2)) || pl->value || pl->fallback) continue;
        for (int a = 0; a < L->n_attr; a++)
            if (!strcmp(L->attrs[a].name, "tactic") && L->attrs[a].n >= 1) {
                /* Every profile and shape point (backend/tactic.h): the context runs the
                 * point nearest its shapes. */
                for (int64_t k = 0; k < L->attrs[a].n; k++) ((int64_t *)L->attrs[a].ints)[k] = id;
                CHECK(pl->layer == L);
                CHECK_EQ_INT(dt_plan_compile(pl, e->backend), DUCTILE_OK);
                /* What the run reads now, at each point. */
                bool conv = !strcmp(L->op_type, "Conv") || !strcmp(L->op_type, "FusedConv");
                const dt_cu_conv_params *cp = pl->params;
                const dt_cu_matmul_params *mp = pl->params;
                CHECK(pl->params != NULL);
                for (int pt = DUCTILE_PROFILE_MIN; pl->params && pt <= DUCTILE_PROFILE_MAX; pt++) {
                    dt_exec ex = {.profile = 0, .point = pt};
                    CHECK_EQ_INT(conv ? dt_cuda_params_tactic(cp->tactic, cp->n_tactic, cp->tactic_points, &ex)
                                      : dt_cuda_params_tactic(mp->tactic, mp->n_tactic, mp->tactic_points, &ex),
                                 (int)id);
                }
                n++;
                break;
            }
    }
    return n;
}

static void check(const char *file, const char *input, ductile_dims shape, const char *output, bool conv, int flag)
{
    ductile_engine *cpu = build(file, input, &shape, "cpu", -1), *gpu = build(file, input, &shape, "cuda", flag);
    double tol = flag < 0 ? 1e-4 : 1e-2;
    if (!cpu || !gpu) {
        CHECK(cpu != NULL);
        ductile_engine_free(cpu);
        ductile_engine_free(gpu);
        return;
    }
    size_t nx = 1, ny = 0, ng = 0;
    for (int i = 0; i < shape.nb_dims; i++) nx *= (size_t)shape.d[i];
    float *x = malloc(nx * sizeof *x);
    unsigned seed = 7;
    for (size_t i = 0; i < nx; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 8) % 2001) / 1000.0f - 1.0f;
    }
    float *want = run(cpu, input, &shape, x, nx, output, &ny);
    CHECK(want != NULL);
    static const int64_t conv_ids[] = {DT_CUDA_CONV_DEPTHWISE, DT_CUDA_CONV_DW_TILED, DT_CUDA_CONV_POINTWISE64, DT_CUDA_CONV_POINTWISE32,
                                       DT_CUDA_CONV_IGEMM64, DT_CUDA_CONV_IGEMM32, DT_CUDA_CONV_POINTWISE32_SPLITK,
                                       DT_CUDA_CONV_IGEMM32_SPLITK, DT_CUDA_CONV_TC_POINTWISE, DT_CUDA_CONV_TC_IGEMM,
                                       DT_CUDA_CONV_TC_POINTWISE_SPLITK, DT_CUDA_CONV_TC_IGEMM_SPLITK,
                                       DT_CUDA_CONV_LT_NHWC, DT_CUDA_CONV_PW_MMA64, DT_CUDA_CONV_PW_MMA32,
                                       DT_CUDA_CONV_PW_MMA64_SPLITK, DT_CUDA_CONV_PW_MMA32_SPLITK, DT_CUDA_CONV_PW_MMA128,
                                       DT_CUDA_CONV_SMALLC_NHWC, DT_CUDA_CONV_SMALLC_MMA, DT_CUDA_CONV_PATCH_MMA,
                                       1, 2, 3, 5, 6, 7,
                                       /* the same cuDNN algorithms in their plain form (conv, then the epilogue kernel) */
                                       DT_CUDA_CONV_CUDNN_PLAIN + 0, DT_CUDA_CONV_CUDNN_PLAIN + 1, DT_CUDA_CONV_CUDNN_PLAIN + 2,
                                       DT_CUDA_CONV_CUDNN_PLAIN + 4, DT_CUDA_CONV_CUDNN_PLAIN + 5, DT_CUDA_CONV_CUDNN_PLAIN + 6};
    static const int64_t mm_ids[] = {1, 2, 3, 4};
    const int64_t *ids = conv ? conv_ids : mm_ids;
    int n = conv ? (int)(sizeof conv_ids / sizeof conv_ids[0]) : 4;
    for (int k = 0; k < n && want; k++) {
        int forced = conv ? force(gpu, "Conv", "FusedConv", ids[k]) : force(gpu, "MatMul", "Gemm", ids[k]);
        CHECK(forced > 0);
        float *got = run(gpu, input, &shape, x, nx, output, &ng);
        CHECK(got != NULL && ng == ny);
        if (got && ng == ny) {
            double err = rel_l2(got, want, ny);
            fprintf(stderr, "%s%s tactic %lld on %d layers: rel-L2 %.3e\n", file,
                    flag == DUCTILE_FLAG_FP16 ? " fp16" : flag == DUCTILE_FLAG_BF16 ? " bf16" : "", (long long)ids[k],
                    forced, err);
            CHECK(err <= tol);
        }
        free(got);
    }
    free(want);
    free(x);
    ductile_engine_free(cpu);
    ductile_engine_free(gpu);
}

/* Tactics per shape point (backend/tactic.h) on the GPU: an engine whose profile has distinct
 * min, opt and max stores three ids per profile for every conv and matmul it timed
 * (tactic_points 3), and runs at min, opt, max and an odd shape (each the stored tactics of
 * the nearest point) match the CPU engine (rel-L2 <= 1e-4). Prints the ids per point. */
static void check_points(const char *file, const char *input, ductile_dims lo, ductile_dims opt, ductile_dims hi,
                         ductile_dims odd, const char *output)
{
    ductile_engine *cpu = build_range(file, input, &lo, &opt, &hi, "cpu", -1),
                   *gpu = build_range(file, input, &lo, &opt, &hi, "cuda", -1);
    CHECK(cpu != NULL && gpu != NULL);
    int stored = 0;
    for (int i = 0; gpu && i < gpu->net->n_layers; i++) {
        const ductile_layer *L = gpu->net->layers[i];
        int64_t n = 0;
        const int64_t *t = dt_attr_ints(L, "tactic", &n);
        if (!t) continue;
        CHECK_EQ_INT(n, 3);
        CHECK_EQ_INT(dt_attr_int(L, "tactic_points", 1), 3);
        if (n == 3)
            fprintf(stderr, "%s %s '%s': tactic min %lld, opt %lld, max %lld\n", file, L->op_type, L->name, (long long)t[0],
                    (long long)t[1], (long long)t[2]);
        stored++;
    }
    CHECK(!gpu || stored > 0);
    const ductile_dims shapes[4] = {lo, opt, hi, odd};
    for (int k = 0; cpu && gpu && k < 4; k++) {
        size_t nx = 1, ny = 0, ng = 0;
        for (int d = 0; d < shapes[k].nb_dims; d++) nx *= (size_t)shapes[k].d[d];
        float *x = malloc(nx * sizeof *x);
        unsigned seed = 11;
        for (size_t i = 0; x && i < nx; i++) {
            seed = seed * 1103515245u + 12345u;
            x[i] = (float)((seed >> 8) % 2001) / 1000.0f - 1.0f;
        }
        float *want = x ? run(cpu, input, &shapes[k], x, nx, output, &ny) : NULL;
        float *got = x ? run(gpu, input, &shapes[k], x, nx, output, &ng) : NULL;
        CHECK(want != NULL && got != NULL && ng == ny);
        if (want && got && ng == ny) {
            double err = rel_l2(got, want, ny);
            fprintf(stderr, "%s per-point tactics at shape %d: rel-L2 %.3e\n", file, k, err);
            CHECK(err <= 1e-4);
        }
        free(want);
        free(got);
        free(x);
    }
    ductile_engine_free(cpu);
    ductile_engine_free(gpu);
}

int main(void)
{
    if (!test_cuda_device_found()) {
        fprintf(stderr, "skipped: no CUDA device found\n");
        TEST_MAIN_END();
    }
    dt_device_info dev;
    if (dt_backend_find("cuda")->device(&dev) != DUCTILE_OK) {
        fprintf(stderr, "skipped: %s\n", ductile_last_error());
        TEST_MAIN_END();
    }
    const char *dir = getenv("DUCTILE_MODELS");
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/superres.onnx", dir ? dir : "../shared/models");
    FILE *f = fopen(probe, "rb");
    if (!f) {
        fprintf(stderr, "skipped: the model suite is not at %s (set DUCTILE_MODELS)\n", probe);
        TEST_MAIN_END();
    }
    fclose(f);
    check_points("superres.onnx", "input", (ductile_dims){4, {1, 1, 16, 16}}, (ductile_dims){4, {1, 1, 64, 64}},
                 (ductile_dims){4, {2, 1, 128, 128}}, (ductile_dims){4, {1, 1, 37, 29}}, "output");
    check("mobilenet_v2.onnx", "input", (ductile_dims){4, {2, 3, 224, 224}}, "output", true, -1);
    check("superres.onnx", "input", (ductile_dims){4, {1, 1, 37, 29}}, "output", true, -1);
    check("mobilenet_v2.onnx", "input", (ductile_dims){4, {3, 3, 224, 224}}, "output", false, -1); /* its Gemm */
    /* Half: superres in both; mobilenet_v2 in bfloat16 only (its random weights shrink the
     * activations below float16's normals, test_cuda.py). */
    check("superres.onnx", "input", (ductile_dims){4, {1, 1, 37, 29}}, "output", true, DUCTILE_FLAG_FP16);
    check("superres.onnx", "input", (ductile_dims){4, {2, 1, 40, 36}}, "output", true, DUCTILE_FLAG_BF16);
    check("mobilenet_v2.onnx", "input", (ductile_dims){4, {2, 3, 224, 224}}, "output", true, DUCTILE_FLAG_BF16);
    TEST_MAIN_END();
}
