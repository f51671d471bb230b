/* Conv fusion, packed weights and tactics: the FusedConv kernel against a naive conv + residual
 * + activation (double accumulation) at odd sizes, for every activation, with and without a
 * residual, on raw and build-time-packed weights and under every applicable tactic; and the
 * fusion pass's rewrites of hand-built chains (and the chains it must leave alone). */
#include "testutil.h"
#include "refconv.h"
#include "netbuild.h"

#include "core/alloc.h"
#include "backend/cpu/conv.h"
#include "backend/cpu/epilogue.h"
#include "backend/cpu/families.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/winograd.h"
#include "builder/optimize.h"
#include "core/status.h"
#include "runtime/engine_impl.h"
#include "ops/families.h"
#include "ops/fused.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>



/* ---- the kernel against a naive reference ---- */

typedef struct conv_case {
    int64_t n, c, h, w, m, k, stride, pad, group;
} conv_case;

static double ref_act(const char *act, double x)
{
    if (!strcmp(act, "Relu")) return x > 0 ? x : 0;
    if (!strcmp(act, "Clip")) return x < -0.5 ? -0.5 : x > 0.75 ? 0.75 : x;
    if (!strcmp(act, "HardSigmoid")) return fmax(0, fmin(1, 0.2 * x + 0.5));
    if (!strcmp(act, "HardSwish")) return x * fmax(0, fmin(1, x / 6.0 + 0.5));
    if (!strcmp(act, "Sigmoid")) return 1 / (1 + exp(-x));
    return x;
}



/* Layers fused_layer makes are marked `bf16` (as the builder marks them under --bf16). */
static bool mark_bf16;
/* Where set, the 6 tactic ids (profiles 0 and 1, min / opt / max each) of the layers
 * fused_layer makes, and the point run_case runs them at. */
static const int64_t *point_tactics;
static int run_point;

/* A FusedConv layer over constants w and b; `tactic` < 0: none. */
static ductile_layer *fused_layer(const conv_case *cc, const float *w, const float *b, bool res,
                                  const char *act, int tactic)
{
    ductile_layer *L = layer("FusedConv", res ? 4 : 3, 12);
    int64_t wd[4] = {cc->m, cc->c / cc->group, cc->k, cc->k};
    L->in[0] = tensor(-1, NULL, NULL);
    L->in[1] = tensor(4, wd, w);
    L->in[2] = tensor(1, &cc->m, b);
    if (res) L->in[3] = tensor(-1, NULL, NULL);
    int64_t s[2] = {cc->stride, cc->stride}, p[4] = {cc->pad, cc->pad, cc->pad, cc->pad};
    set_ints(L, "strides", s, 2);
    set_ints(L, "pads", p, 4);
    attr(L, "group", DT_ATTR_INT)->i = cc->group;
    dt_attr *a = attr(L, "activation", DT_ATTR_STRING);
    a->s = act;
    a->s_len = strlen(act);
    bool clip = !strcmp(act, "Clip");
    attr(L, clip ? "act_min" : "act_alpha", DT_ATTR_FLOAT)->f = clip ? -0.5f : !strcmp(act, "HardSwish") ? 1.0f / 6.0f : 0.2f;
    attr(L, clip ? "act_max" : "act_beta", DT_ATTR_FLOAT)->f = clip ? 0.75f : 0.5f;
    if (mark_bf16) attr(L, "bf16", DT_ATTR_INT)->i = 1;
    if (point_tactics) {
        set_ints(L, "tactic", point_tactics, 6);
        attr(L, "tactic_points", DT_ATTR_INT)->i = 3;
    } else if (tactic >= 0) {
        int64_t t[2] = {DT_CONV_AUTO, tactic}; /* profile 1 gets the tactic under test */
        set_ints(L, "tactic", t, 2);
    }
    L->out[0] = tensor(-1, NULL, NULL);
    return L;
}

static const dt_opdef *find_def(const char *op)
{
    for (const dt_opdef *d = dt_ops_fused; d->op_type; d++)
        if (!strcmp(d->op_type, op)) return d;
    return NULL;
}

static dt_cpu_run_fn find_kernel(const char *op)
{
    for (const dt_cpu_kernel *k = dt_cpu_fused; k->op_type; k++)
        if (!strcmp(k->op_type, op)) return k->kernel ? dt_cpu_run_once : k->run;
    return NULL;
}

/* Runs one case and returns the relative error against the reference (or +inf on failure). */
static double run_case(const conv_case *cc, const char *act, bool res, bool pack, int tactic, dt_pool *pool)
{
    int64_t cg = cc->c / cc->group;
    int64_t xd[4] = {cc->n, cc->c, cc->h, cc->w};
    float *x = rand_buf(cc->n * cc->c * cc->h * cc->w), *w = rand_buf(cc->m * cg * cc->k * cc->k),
          *b = rand_buf(cc->m);
    ductile_layer *L = fused_layer(cc, w, b, res, act, tactic);
    double err = INFINITY;
    float *packed = NULL;
    if (pack) {
        dt_prepacked pk;
        if (dt_cpu_prepack(L, &pk) != DUCTILE_OK || !pk.data) goto out;
        packed = pk.data;
        int64_t nf = (int64_t)(pk.nbytes / sizeof(float));
        dt_attr add[2] = {{.name = "packed", .type = DT_ATTR_INT, .i = pk.layout},
                          {.name = "w_shape", .type = DT_ATTR_INTS, .n = 4, .ints = L->in[1]->dims}};
        if (dt_layer_add_attrs(net, L, add, 2) != DUCTILE_OK) goto out;
        L->in[1] = tensor(1, &nf, packed);
    }
    const dt_opdef *d = find_def("FusedConv");
    dt_view in[4] = {{DUCTILE_FLOAT32, 4, {0}, x}}, out = {0};
    memcpy(in[0].dims, xd, sizeof xd);
    for (int i = 1; i < 3; i++) {
        in[i].dtype = DUCTILE_FLOAT32;
        in[i].rank = L->in[i]->rank;
        memcpy(in[i].dims, L->in[i]->dims, sizeof in[i].dims);
        in[i].data = (void *)L->in[i]->data;
    }
    if (d->check(L) != DUCTILE_OK) goto out;
    /* infer needs R's shape: the output's; the first infer (without R) gives it. */
    int n_in = L->n_in;
    L->n_in = 3;
    ductile_status s = d->infer(L, in, &out);
    L->n_in = n_in;
    if (s != DUCTILE_OK) goto out;
    int64_t ny = dt_view_count(&out);
    float *r = res ? rand_buf(ny) : NULL;
    if (res) {
        in[3] = out;
        in[3].data = r;
        if (d->infer(L, in, &out) != DUCTILE_OK) {
            free(r);
            goto out;
        }
    }
    out.data = malloc(sizeof(float) * (size_t)ny);
    for (int64_t i = 0; i < ny; i++) ((float *)out.data)[i] = NAN;
    double *want = malloc(sizeof(double) * (size_t)ny);
    ref_conv(&(ref_conv_geom){.n = out.dims[0], .c = cc->c, .m = out.dims[1], .group = cc->group,
                              .h = cc->h, .w = cc->w, .oh = out.dims[2], .ow = out.dims[3],
                              .kh = cc->k, .kw = cc->k, .sh = cc->stride, .sw = cc->stride,
                              .dh = 1, .dw = 1, .pt = cc->pad, .pl = cc->pad},
             x, w, b, r, want);
    for (int64_t i = 0; i < ny; i++) want[i] = ref_act(act, want[i]);
    dt_exec ex = {.pool = pool, .profile = tactic >= 0 ? 1 : 0, .point = run_point};
    if (find_kernel("FusedConv")(L, in, &out, &ex) == DUCTILE_OK) err = rel_err(out.data, want, ny);
    free(out.data);
    free(want);
    free(r);
out:
    free(x), free(w), free(b);
    dt_free(packed); /* the backend's blob: core/alloc */
    return err;
}

static const conv_case cases[] = {
    {1, 5, 13, 17, 7, 3, 1, 1, 1},      /* 3x3 same: the padded path */
    {2, 6, 11, 9, 10, 3, 2, 1, 1},      /* stride 2: im2col */
    {1, 19, 7, 5, 13, 1, 1, 0, 1},      /* 1x1: B is the image */
    {2, 21, 9, 13, 17, 1, 1, 0, 1},     /* 1x1 over whole 48-column panels read in place + a tail */
    {1, 300, 7, 15, 10, 1, 1, 0, 1},    /* the same beyond one K block */
    {1, 8, 37, 41, 24, 3, 1, 1, 2},     /* grouped, wide enough for the padded path */
    {2, 12, 15, 33, 12, 3, 2, 1, 12},   /* depthwise, stride 2 */
    {1, 9, 21, 70, 9, 5, 1, 2, 9},      /* depthwise 5x5 */
    {1, 6, 7, 33, 6, 3, 1, 1, 6},       /* depthwise 3x3 in row blocks of 4 + 3, Relu/Clip in the store */
    {2, 5, 10, 19, 5, 3, 1, 1, 5},      /* ... 4 + 4 + 2 */
    {1, 4, 9, 40, 4, 3, 2, 1, 4},       /* ... stride 2: 2 + 2 + 1 */
    {5, 300, 7, 7, 37, 1, 1, 0, 1},     /* 1x1 over a batch of small images: one GEMM, epilogue per image */
};
static const char *const acts[] = {"", "Relu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid"};

static void test_fused_conv_matches_reference_for_every_activation_and_residual(dt_pool *pool)
{
    int bad = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++)
            for (int res = 0; res < 2; res++) {
                double e = run_case(&cases[c], acts[a], res, false, -1, pool);
                if (!(e <= 1e-4)) {
                    bad++;
                    fprintf(stderr, "case %zu act '%s' res %d: rel err %g\n", c, acts[a], res, e);
                }
            }
    CHECK_EQ_INT(bad, 0);
}

static void test_packed_weights_and_every_tactic_match_reference(dt_pool *pool)
{
    int bad = 0, ran = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const conv_case *cc = &cases[c];
        dt_conv_geom g = {.group = cc->group, .c = cc->c, .m = cc->m, .s = {cc->stride, cc->stride}};
        bool dw = dt_cpu_conv_is_depthwise(&g);
        for (int t = DT_CONV_IM2COL; t <= DT_CONV_WINOGRAD; t++) {
            if (!dt_cpu_conv_algo_applies(&g, (dt_conv_algo)t)) continue;
            for (int pack = 0; pack < 2; pack++) {
                if (pack && dw) continue;
                double e = run_case(cc, "HardSwish", true, pack, t, pool);
                ran++;
                if (!(e <= 1e-4)) {
                    bad++;
                    fprintf(stderr, "case %zu tactic %d packed %d: rel err %g\n", c, t, pack, e);
                }
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(ran >= 10);
}

/* A layer marked `bf16` packs its weights in bfloat16 and in float32 (layout
 * DT_CPU_PACK_GEMM_A_BF16*), offers each GEMM tactic on both (ids + DT_CONV_ON_F32 on the
 * float32 copy: the builder's timer keeps the faster), and those compute in float32: within
 * 1e-4 of the float64 reference like the float32 layer, where bfloat16's are within 3e-2.
 * Skipped, saying so, on a CPU without AVX512-BF16 (the layer refuses to load there). */
static void test_bf16_layer_offers_and_runs_float32_tactics(dt_pool *pool)
{
    if (!dt_cpu_has_bf16()) {
        fprintf(stderr, "skipped: this CPU lacks AVX512-BF16 (bf16 layers' float32 tactics)\n");
        return;
    }
    mark_bf16 = true;
    int bad = 0, ran = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const conv_case *cc = &cases[c];
        dt_conv_geom g = {.group = cc->group, .c = cc->c, .m = cc->m, .s = {cc->stride, cc->stride},
                          .spatial = 2, .k = {cc->k, cc->k}, .d = {1, 1}};
        if (dt_cpu_conv_is_depthwise(&g)) continue;
        static const int algos[] = {DT_CONV_IM2COL, DT_CONV_PADDED, DT_CONV_SMALLC};
        for (size_t i = 0; i < sizeof algos / sizeof algos[0]; i++) {
            if (!dt_cpu_conv_algo_applies(&g, (dt_conv_algo)algos[i])) continue;
            double e16 = run_case(cc, "HardSwish", true, true, algos[i], pool);
            double e32 = run_case(cc, "HardSwish", true, true, algos[i] + DT_CONV_ON_F32, pool);
            ran++;
            if (!(e32 <= 1e-4) || !(e16 <= 3e-2)) {
                bad++;
                fprintf(stderr, "bf16 case %zu tactic %d: rel err %g (bfloat16), %g (float32 copy)\n", c, algos[i],
                        e16, e32);
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(ran >= 5);
    /* The tactics offered: the bfloat16 ones, then the same on the float32 copy. */
    const conv_case *cc = &cases[0];
    float *w = rand_buf(cc->m * cc->c * 9), *b = rand_buf(cc->m);
    ductile_layer *L = fused_layer(cc, w, b, false, "Relu", -1);
    dt_prepacked pk;
    CHECK_EQ_INT(dt_cpu_prepack(L, &pk), DUCTILE_OK);
    CHECK_EQ_INT((int)pk.layout, DT_CPU_PACK_GEMM_A_BF16_WINO);
    int64_t nf = (int64_t)(pk.nbytes / sizeof(float));
    dt_attr add[2] = {{.name = "packed", .type = DT_ATTR_INT, .i = pk.layout},
                      {.name = "w_shape", .type = DT_ATTR_INTS, .n = 4, .ints = L->in[1]->dims}};
    CHECK_EQ_INT(dt_layer_add_attrs(net, L, add, 2), DUCTILE_OK);
    L->in[1] = tensor(1, &nf, pk.data);
    dt_view in[3] = {{DUCTILE_FLOAT32, 4, {cc->n, cc->c, cc->h, cc->w}, NULL},
                     {DUCTILE_FLOAT32, 1, {nf}, pk.data}, {DUCTILE_FLOAT32, 1, {cc->m}, b}};
    int ids[16], n = dt_cpu_tactics(L, in, ids, 16);
    bool f32[8] = {0}, half[8] = {0};
    for (int i = 0; i < n; i++) {
        if (ids[i] > DT_CONV_ON_F32 && ids[i] - DT_CONV_ON_F32 < 8) f32[ids[i] - DT_CONV_ON_F32] = true;
        if (ids[i] < 8) half[ids[i]] = true;
    }
    CHECK(half[DT_CONV_IM2COL] && half[DT_CONV_WINOGRAD]);
    CHECK(f32[DT_CONV_IM2COL] && f32[DT_CONV_PADDED] == half[DT_CONV_PADDED] && !f32[DT_CONV_WINOGRAD]);
    dt_free(pk.data);
    free(w), free(b);
    mark_bf16 = false;
}

static void test_prepack_skips_depthwise_and_rejects_wrong_tactic(void)
{
    const conv_case *dw = &cases[6];
    float *w = rand_buf(dw->m * 9), *b = rand_buf(dw->m);
    ductile_layer *L = fused_layer(dw, w, b, false, "Relu", DT_CONV_PADDED);
    dt_prepacked pk;
    CHECK_EQ_INT(dt_cpu_prepack(L, &pk), DUCTILE_OK);
    CHECK(pk.data == NULL);
    /* A tactic that cannot compute the layer is an error naming the attribute, not a crash. */
    int64_t xd[4] = {1, dw->c, 8, 8};
    float *x = rand_buf(dw->c * 64), *y = malloc(sizeof(float) * (size_t)(dw->c * 16));
    dt_view in[3] = {{DUCTILE_FLOAT32, 4, {0}, x}, {DUCTILE_FLOAT32, 4, {dw->m, 1, 3, 3}, w},
                     {DUCTILE_FLOAT32, 1, {dw->m}, b}};
    memcpy(in[0].dims, xd, sizeof xd);
    dt_view out = {DUCTILE_FLOAT32, 4, {1, dw->c, 4, 4}, y};
    dt_exec ex = {.profile = 1};
    CHECK_EQ_INT(find_kernel("FusedConv")(L, in, &out, &ex), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK(strstr(ductile_last_error(), "tactic") != NULL);
    free(w), free(b), free(x), free(y);
}

/* Per shape point (backend/tactic.h): with tactic_points 3 the kernel runs the id stored for
 * its profile and dt_exec.point, so an id that does not apply at one point fails there alone,
 * naming it; one id per profile (engines before points) serves every point. */
static void test_tactic_per_point(void)
{
    const conv_case *dw = &cases[6];
    float *w = rand_buf(dw->m * 9), *b = rand_buf(dw->m);
    ductile_layer *L = fused_layer(dw, w, b, false, "Relu", -1);
    int64_t t[6] = {DT_CONV_AUTO, DT_CONV_AUTO, DT_CONV_AUTO, DT_CONV_DEPTHWISE, DT_CONV_PADDED, DT_CONV_AUTO};
    set_ints(L, "tactic", t, 6);
    dt_attr *points = attr(L, "tactic_points", DT_ATTR_INT);
    points->i = 3;
    int64_t xd[4] = {1, dw->c, 8, 8};
    float *x = rand_buf(dw->c * 64), *y = malloc(sizeof(float) * (size_t)(dw->c * 16));
    dt_view in[3] = {{DUCTILE_FLOAT32, 4, {0}, x}, {DUCTILE_FLOAT32, 4, {dw->m, 1, 3, 3}, w},
                     {DUCTILE_FLOAT32, 1, {dw->m}, b}};
    memcpy(in[0].dims, xd, sizeof xd);
    dt_view out = {DUCTILE_FLOAT32, 4, {1, dw->c, 4, 4}, y};
    dt_cpu_run_fn run = find_kernel("FusedConv");
    CHECK_EQ_INT(run(L, in, &out, &(dt_exec){.profile = 1, .point = DUCTILE_PROFILE_MIN}), DUCTILE_OK);
    CHECK_EQ_INT(run(L, in, &out, &(dt_exec){.profile = 1, .point = DUCTILE_PROFILE_OPT}), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "attribute 'tactic' = 2 (profile 1) does not apply to this convolution");
    CHECK_EQ_INT(run(L, in, &out, &(dt_exec){.profile = 1, .point = DUCTILE_PROFILE_MAX}), DUCTILE_OK);
    CHECK_EQ_INT(run(L, in, &out, &(dt_exec){.profile = 0, .point = DUCTILE_PROFILE_OPT}), DUCTILE_OK);
    /* The same ids read as one per profile: profile 1's (AUTO) and profile 4's (PADDED) at
     * every point. */
    points->i = 1;
    for (int pt = DUCTILE_PROFILE_MIN; pt <= DUCTILE_PROFILE_MAX; pt++) {
        CHECK_EQ_INT(run(L, in, &out, &(dt_exec){.profile = 1, .point = pt}), DUCTILE_OK);
        CHECK_EQ_INT(run(L, in, &out, &(dt_exec){.profile = 4, .point = pt}), DUCTILE_ERR_INVALID_ARGUMENT);
        CHECK_EQ_STR(ductile_last_error(), "attribute 'tactic' = 2 (profile 4) does not apply to this convolution");
    }
    /* Counts that do not fit the points: refused when the kernel is compiled. */
    points->i = 4;
    CHECK_EQ_INT(run(L, in, &out, &(dt_exec){.profile = 0}), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "attribute 'tactic_points' = 4 (expected 1 or 3)");
    free(w), free(b), free(x), free(y);
}

/* A stored tactic whose kernel takes only some sizes of the layer runs, at a shape it does not
 * take, the like tactic that does (fused_conv.c: dt_fc_size_fallback), where it used to be
 * refused: a point's tactic serves every shape nearest to it (yolo --bf16 between min and opt).
 * The 16-channel depthwise (rows under 16) at rows of 40 -> the row kernels; bfloat16 F(2x2,
 * 3x3) (maps of at most 64 tiles) on a 24x24 map (144 tiles) -> F(4x4, 3x3) in float32, each
 * against the reference (float32's 1e-4: not the bfloat16 GEMMs of tactic 9), or, where another
 * point of the layer runs F(4x4) with bfloat16 GEMMs, -> that. A tactic the layer can never run stays an error
 * (test_prepack_skips_depthwise_and_rejects_wrong_tactic). */
static void test_size_bound_tactics_fall_back(dt_pool *pool)
{
    static const conv_case dw = {1, 16, 9, 40, 16, 3, 1, 1, 16}, full = {1, 8, 24, 24, 8, 3, 1, 1, 1};
    dt_conv_geom g = {.spatial = 2, .group = 16, .c = 16, .m = 16, .k = {3, 3}, .s = {1, 1}, .d = {1, 1}, .out = {9, 40}};
    CHECK(!dt_cpu_dw16_applies(&g));
    CHECK(run_case(&dw, "Relu", true, false, DT_CONV_DW16, pool) <= 1e-4);
    if (!dt_cpu_has_bf16()) {
        fprintf(stderr, "bfloat16 F(2x2, 3x3) fallback: this CPU lacks AVX512-BF16, skipped\n");
        return;
    }
    dt_conv_geom gf = {.spatial = 2, .group = 1, .c = 8, .m = 8, .k = {3, 3}, .s = {1, 1}, .d = {1, 1}, .out = {24, 24}};
    CHECK(dt_cpu_wino_applies(&gf) && !dt_cpu_wino2_offered(&gf));
    mark_bf16 = true;
    double e = run_case(&full, "Relu", false, true, DT_CONV_WINOGRAD2_BF16, pool);
    if (!(e <= 1e-4)) fprintf(stderr, "bfloat16 F(2x2, 3x3) on 24x24: rel err %g\n", e);
    CHECK(e <= 1e-4);
    /* F(2x2) at min and F(4x4) with bfloat16 GEMMs at opt and max (yolo --bf16's 3x3s): at min's
     * point on the 24x24 map, opt's bfloat16 F(4x4), whose transform the weights keep (a
     * bfloat16 error, not float32's 1e-4), with the same bits as opt's own run. */
    static const int64_t ids[6] = {DT_CONV_AUTO, DT_CONV_AUTO, DT_CONV_AUTO,
                                   DT_CONV_WINOGRAD2_BF16, DT_CONV_WINOGRAD_BF16, DT_CONV_WINOGRAD_BF16};
    point_tactics = ids;
    double at[2];
    for (int i = 0; i < 2; i++) {
        refconv_rng = 7;   /* the same x, w and b both times */
        run_point = i ? DUCTILE_PROFILE_OPT : DUCTILE_PROFILE_MIN;
        at[i] = run_case(&full, "Relu", false, true, DT_CONV_WINOGRAD2_BF16, pool);
    }
    point_tactics = NULL;
    run_point = 0;
    mark_bf16 = false;
    if (!(at[0] > 1e-4 && at[0] < 1e-1 && at[0] == at[1]))
        fprintf(stderr, "bfloat16 F(2x2) -> F(4x4) on 24x24: rel err %g at min, %g at opt\n", at[0], at[1]);
    CHECK(at[0] > 1e-4 && at[0] < 1e-1);   /* random 8-channel weights: 5e-2 (above) */
    CHECK(at[0] == at[1]);
}

/* ---- the pass ---- */

static const int64_t shp[4] = {1, 4, 6, 6};

static ductile_layer *conv_layer(ductile_tensor *x)
{
    static float w[4 * 4 * 9];
    int64_t wd[4] = {4, 4, 3, 3};
    ductile_layer *L = layer("Conv", 2, 2);
    int64_t p[4] = {1, 1, 1, 1};
    set_ints(L, "pads", p, 4);
    L->in[0] = x;
    L->in[1] = tensor(4, wd, w);
    L->out[0] = tensor(4, shp, NULL);
    return L;
}

static ductile_layer *unary(const char *op, ductile_tensor *x)
{
    ductile_layer *L = layer(op, 1, 2);
    L->in[0] = x;
    L->out[0] = tensor(4, shp, NULL);
    return L;
}

static ductile_layer *only_fused(void)
{
    int n = 0;
    ductile_layer *f = NULL;
    for (int l = 0; l < net->n_layers; l++)
        if (!strcmp(net->layers[l]->op_type, "FusedConv")) {
            n++;
            f = net->layers[l];
        }
    return n == 1 ? f : NULL;
}

static void test_pass_fuses_conv_add_relu_with_residual(void)
{
    new_net();
    ductile_tensor *x = tensor(4, shp, NULL), *r = tensor(4, shp, NULL);
    dt_network_add_input(net, x);
    dt_network_add_input(net, r);
    ductile_layer *C = conv_layer(x);
    ductile_layer *A = layer("Add", 2, 1);
    A->in[0] = r; /* residual first: either order fuses */
    A->in[1] = C->out[0];
    A->out[0] = tensor(4, shp, NULL);
    ductile_layer *R = unary("Relu", A->out[0]);
    dt_network_add_output(net, R->out[0]);
    CHECK_EQ_INT(dt_pass_fuse(net), DUCTILE_OK);
    CHECK_EQ_INT(net->n_layers, 1);
    ductile_layer *F = only_fused();
    CHECK(F != NULL);
    if (!F) return;
    CHECK_EQ_STR(F->domain, "ductile");
    CHECK_EQ_INT(F->n_in, 4);
    CHECK(F->in[DT_FC_R] == r);
    CHECK(F->out[0] == R->out[0]);
    CHECK_EQ_STR(dt_attr_string(F, "activation", "?"), "Relu");
}

static void test_pass_fuses_hardsigmoid_mul_as_hardswish(void)
{
    new_net();
    ductile_tensor *x = tensor(4, shp, NULL);
    dt_network_add_input(net, x);
    ductile_layer *C = conv_layer(x);
    ductile_layer *H = unary("HardSigmoid", C->out[0]);
    attr(H, "alpha", DT_ATTR_FLOAT)->f = 1.0f / 6.0f;
    ductile_layer *M = layer("Mul", 2, 1);
    M->in[0] = H->out[0];
    M->in[1] = C->out[0];
    M->out[0] = tensor(4, shp, NULL);
    ductile_layer *after = unary("Relu", M->out[0]); /* reads the fused output */
    dt_network_add_output(net, after->out[0]);
    CHECK_EQ_INT(dt_pass_fuse(net), DUCTILE_OK);
    CHECK_EQ_INT(net->n_layers, 2);
    ductile_layer *F = only_fused();
    CHECK(F != NULL);
    if (!F) return;
    CHECK_EQ_STR(dt_attr_string(F, "activation", "?"), "HardSwish");
    CHECK(fabsf(dt_attr_float(F, "act_alpha", 0) - 1.0f / 6.0f) < 1e-7f);
    CHECK(F->out[0] == M->out[0]);
    CHECK(net->layers[0] == F && net->layers[1] == after); /* order kept */
}

static void test_pass_leaves_shared_and_broadcast_intermediates(void)
{
    new_net();
    ductile_tensor *x = tensor(4, shp, NULL);
    dt_network_add_input(net, x);
    /* conv output read twice: the Relu stays a layer of its own */
    ductile_layer *C = conv_layer(x);
    ductile_layer *R = unary("Relu", C->out[0]);
    ductile_layer *S = unary("Sigmoid", C->out[0]);
    /* Add of a per-channel tensor broadcasts: not a residual */
    ductile_layer *C2 = conv_layer(R->out[0]);
    int64_t bd[4] = {1, 4, 1, 1};
    ductile_layer *A = layer("Add", 2, 1);
    A->in[0] = C2->out[0];
    A->in[1] = tensor(4, bd, NULL);
    dt_network_add_input(net, A->in[1]);
    A->out[0] = tensor(4, shp, NULL);
    dt_network_add_output(net, S->out[0]);
    dt_network_add_output(net, A->out[0]);
    CHECK_EQ_INT(dt_pass_fuse(net), DUCTILE_OK);
    CHECK_EQ_INT(net->n_layers, 5);
    CHECK_EQ_STR(net->layers[0]->op_type, "FusedConv");
    CHECK_EQ_STR(dt_attr_string(net->layers[0], "activation", "?"), "");
    CHECK_EQ_STR(net->layers[1]->op_type, "Relu");
    CHECK_EQ_STR(net->layers[4]->op_type, "Add");
}

/* ---- the fused activation's defaults against the unfused kernels ---- */

static dt_cpu_run_fn elementwise_kernel(const char *op)
{
    for (const dt_cpu_kernel *k = dt_cpu_elementwise; k->op_type; k++)
        if (!strcmp(k->op_type, op)) return k->kernel ? dt_cpu_run_once : k->run;
    return NULL;
}

/* Runs the elementwise kernel of L (its attributes and opset) on x[n] into y[n]; b: a second
 * input of the same shape (Mul) or NULL. */
static ductile_status run_elementwise(const ductile_layer *L, const float *x, const float *b,
                                      float *y, int64_t n)
{
    dt_view in[2] = {{DUCTILE_FLOAT32, 1, {n}, (void *)x}, {DUCTILE_FLOAT32, 1, {n}, (void *)b}};
    dt_view out = {DUCTILE_FLOAT32, 1, {n}, y};
    dt_exec ex = {0};
    return elementwise_kernel(L->op_type)(L, in, &out, &ex);
}

/* Each activation the pass fuses, with no attributes (every default in play): the FusedConv it
 * makes must apply what the unfused kernel computes. A default written differently in
 * builder/fuse.c and the elementwise kernel (HardSigmoid's alpha 0.2 vs 0.21) fails here. */
static void test_fused_activation_defaults_match_the_unfused_kernels(void)
{
    static const struct { const char *op; int opset; bool times_x; } cases[] = {
        {"HardSigmoid", 13, false}, {"HardSwish", 14, false}, {"HardSigmoid", 13, true},
        {"Clip", 6, false},         {"Clip", 13, false},      {"Relu", 13, false},
    };
    enum { N = 4096 };
    float *x = malloc(sizeof(float) * N), *y_fused = malloc(sizeof(float) * N),
          *y_ref = malloc(sizeof(float) * N), *h = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) x[i] = 8.0f * frand();   /* past every clamp: |x| up to 8 */
    x[0] = FLT_MAX, x[1] = -FLT_MAX, x[2] = 1e30f, x[3] = -1e30f;   /* the Clip-6 bounds */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        new_net();
        ductile_tensor *in = tensor(4, shp, NULL);
        dt_network_add_input(net, in);
        ductile_layer *C = conv_layer(in);
        ductile_layer *A = unary(cases[c].op, C->out[0]);
        A->opset = cases[c].opset;
        ductile_tensor *last = A->out[0];
        if (cases[c].times_x) {
            ductile_layer *M = layer("Mul", 2, 1);
            M->in[0] = C->out[0];
            M->in[1] = A->out[0];
            M->out[0] = last = tensor(4, shp, NULL);
        }
        dt_network_add_output(net, last);
        CHECK_EQ_INT(dt_pass_fuse(net), DUCTILE_OK);
        ductile_layer *F = only_fused();
        CHECK(F != NULL);
        if (!F) continue;
        dt_epilogue e = {.act = (dt_act)dt_act_from_name(dt_attr_string(F, "activation", "?"))};
        bool clip = e.act == DT_ACT_CLIP;
        e.p0 = dt_attr_float(F, clip ? "act_min" : "act_alpha", NAN);
        e.p1 = dt_attr_float(F, clip ? "act_max" : "act_beta", NAN);
        memcpy(y_fused, x, sizeof(float) * N);
        dt_epilogue_apply(&e, y_fused, NULL, N);

        /* The same activation as a layer of its own, run by its kernel. */
        ductile_layer *U = unary(cases[c].op, tensor(4, shp, NULL));
        U->opset = cases[c].opset;
        ductile_status st = run_elementwise(U, x, NULL, cases[c].times_x ? h : y_ref, N);
        if (st == DUCTILE_OK && cases[c].times_x) {
            ductile_layer *M = layer("Mul", 2, 1);
            st = run_elementwise(M, x, h, y_ref, N);
        }
        CHECK_EQ_INT(st, DUCTILE_OK);
        int bad = -1;
        for (int i = 0; i < N && bad < 0; i++)
            if (!(fabsf(y_fused[i] - y_ref[i]) <= 1e-6f * (1.0f + fabsf(y_ref[i])))) bad = i;
        if (bad >= 0)
            fprintf(stderr, "%s%s (opset %d): fused %.9g, unfused %.9g at x = %.9g\n",
                    cases[c].times_x ? "x * " : "", cases[c].op, cases[c].opset,
                    (double)y_fused[bad], (double)y_ref[bad], (double)x[bad]);
        CHECK(bad < 0);
    }
    free(x), free(y_fused), free(y_ref), free(h);
}

/* x -> Div(sqrt 2) -> Erf -> Add(1) -> Mul(x) -> Mul(half) -> Relu; half = 0.5 fuses into
 * Gelu, any other value leaves the six layers. */
static void gelu_chain(float half, ductile_tensor **x_out, ductile_layer **mul2, ductile_layer **relu)
{
    static float sqrt2 = 1.41421356f, one = 1.0f, h;
    h = half;
    new_net();
    ductile_tensor *x = tensor(4, shp, NULL);
    dt_network_add_input(net, x);
    ductile_layer *D = layer("Div", 2, 0);
    D->in[0] = x;
    D->in[1] = tensor(0, NULL, &sqrt2);
    D->out[0] = tensor(4, shp, NULL);
    ductile_layer *E = unary("Erf", D->out[0]);
    ductile_layer *A = layer("Add", 2, 0);
    A->in[0] = tensor(1, (int64_t[]){1}, &one); /* constant first: either order fuses */
    A->in[1] = E->out[0];
    A->out[0] = tensor(4, shp, NULL);
    ductile_layer *M1 = layer("Mul", 2, 0);
    M1->in[0] = x;
    M1->in[1] = A->out[0];
    M1->out[0] = tensor(4, shp, NULL);
    ductile_layer *M2 = layer("Mul", 2, 0);
    M2->in[0] = M1->out[0];
    M2->in[1] = tensor(0, NULL, &h);
    M2->out[0] = tensor(4, shp, NULL);
    ductile_layer *R = unary("Relu", M2->out[0]);
    dt_network_add_output(net, R->out[0]);
    *x_out = x;
    *mul2 = M2;
    *relu = R;
}

static void test_pass_fuses_gelu_chain(void)
{
    ductile_tensor *x;
    ductile_layer *M2, *R;
    gelu_chain(0.5f, &x, &M2, &R);
    CHECK_EQ_INT(dt_pass_fuse(net), DUCTILE_OK);
    CHECK_EQ_INT(net->n_layers, 2);
    ductile_layer *G = net->layers[0];
    CHECK_EQ_STR(G->op_type, "Gelu");
    CHECK_EQ_STR(G->domain, "");
    CHECK_EQ_INT(G->n_in, 1);
    CHECK(G->in[0] == x);
    CHECK(G->out[0] == M2->out[0] && M2->out[0]->producer == G);
    CHECK(net->layers[1] == R);

    gelu_chain(0.25f, &x, &M2, &R);
    CHECK_EQ_INT(dt_pass_fuse(net), DUCTILE_OK);
    CHECK_EQ_INT(net->n_layers, 6);
    CHECK_EQ_STR(net->layers[0]->op_type, "Div");
}

/* Llama's RMSNorm chain on x [2, 3, 8]: Pow(x, 2) -> ReduceMean(axes [-1]) -> Add(eps) ->
 * Sqrt -> Reciprocal -> Mul(x) -> Mul(w [8]) -> Relu, or a variant: the opset-18 axes input and
 * Div(1, .) with the weight first (fuses too), or a near miss that must stay seven layers. */
enum { RMS_PLAIN, RMS_DIV_AXES_INPUT, RMS_CUBE, RMS_MIDDLE_AXIS, RMS_OTHER_X, RMS_W_INPUT, RMS_SQRT_OUT };
static void rms_chain(int v, ductile_tensor **x_out, ductile_tensor **w_out, ductile_layer **mul2)
{
    static float two = 2.0f, three = 3.0f, eps = 1e-6f, one = 1.0f, w[8];
    static const int64_t axes_last = -1;
    static const int64_t xs[3] = {2, 3, 8}, ms[3] = {2, 3, 1}, ms1[3] = {2, 1, 8};
    for (int i = 0; i < 8; i++) w[i] = 1.0f + 0.125f * (float)i;
    new_net();
    ductile_tensor *x = tensor(3, xs, NULL), *x2 = tensor(3, xs, NULL);
    dt_network_add_input(net, x);
    dt_network_add_input(net, x2);
    ductile_layer *P = layer("Pow", 2, 0);
    P->in[0] = x;
    P->in[1] = tensor(0, NULL, v == RMS_CUBE ? &three : &two);
    P->out[0] = tensor(3, xs, NULL);
    ductile_layer *R = layer("ReduceMean", 2, 2);
    R->in[0] = P->out[0];
    R->n_in = 1;
    if (v == RMS_DIV_AXES_INPUT) {
        ductile_tensor *a = tensor(1, (int64_t[]){1}, NULL);
        a->dtype = DUCTILE_INT64;
        a->data = &axes_last;
        a->nbytes = sizeof axes_last;
        R->in[1] = a;
        R->n_in = 2;
    } else {
        set_ints(R, "axes", (int64_t[]){v == RMS_MIDDLE_AXIS ? 1 : -1}, 1);
    }
    R->out[0] = tensor(3, v == RMS_MIDDLE_AXIS ? ms1 : ms, NULL);
    ductile_layer *A = layer("Add", 2, 0);
    A->in[0] = R->out[0];
    A->in[1] = tensor(0, NULL, &eps);
    A->out[0] = tensor(3, R->out[0]->dims, NULL);
    ductile_layer *S = unary("Sqrt", A->out[0]);
    S->out[0] = tensor(3, A->out[0]->dims, NULL);
    if (v == RMS_SQRT_OUT) dt_network_add_output(net, S->out[0]);
    ductile_layer *V;
    if (v == RMS_DIV_AXES_INPUT) {
        V = layer("Div", 2, 0);
        V->in[0] = tensor(0, NULL, &one);
        V->in[1] = S->out[0];
        V->out[0] = tensor(3, S->out[0]->dims, NULL);
    } else {
        V = unary("Reciprocal", S->out[0]);
        V->out[0] = tensor(3, S->out[0]->dims, NULL);
    }
    ductile_layer *M1 = layer("Mul", 2, 0);
    M1->in[0] = v == RMS_OTHER_X ? x2 : x;
    M1->in[1] = V->out[0];
    M1->out[0] = tensor(3, xs, NULL);
    ductile_layer *M2 = layer("Mul", 2, 0);
    ductile_tensor *wt = tensor(1, (int64_t[]){8}, v == RMS_W_INPUT ? NULL : w);
    if (v == RMS_W_INPUT) dt_network_add_input(net, wt);
    M2->in[0] = v == RMS_DIV_AXES_INPUT ? wt : M1->out[0];
    M2->in[1] = v == RMS_DIV_AXES_INPUT ? M1->out[0] : wt;
    M2->out[0] = tensor(3, xs, NULL);
    ductile_layer *Re = unary("Relu", M2->out[0]);
    Re->out[0] = tensor(3, xs, NULL);
    dt_network_add_output(net, Re->out[0]);
    *x_out = x;
    *w_out = wt;
    *mul2 = M2;
}

/* The chain fuses into RMSNormalization(x, w, axis -1, epsilon) in the last Mul's place where
 * the backend has its kernel (the CPU; not without a backend), in either written form; each
 * near miss keeps its seven layers. */
static void test_pass_fuses_rmsnorm_chain(void)
{
    const dt_backend *cpu = dt_backend_host();
    for (int v = RMS_PLAIN; v <= RMS_SQRT_OUT; v++) {
        ductile_tensor *x, *w;
        ductile_layer *M2;
        rms_chain(v, &x, &w, &M2);
        CHECK_EQ_INT(dt_pass_fuse_for(net, cpu), DUCTILE_OK);
        bool fuses = v == RMS_PLAIN || v == RMS_DIV_AXES_INPUT;
        CHECK_EQ_INT(net->n_layers, fuses ? 2 : 8);
        CHECK_EQ_INT(count_op("RMSNormalization"), fuses ? 1 : 0);
        if (!fuses) continue;
        ductile_layer *N = net->layers[0];
        CHECK(N == M2 && N->n_in == 2 && N->in[0] == x && N->in[1] == w);
        CHECK_EQ_STR(N->op_type, "RMSNormalization");
        CHECK_EQ_INT((int)dt_attr_int(N, "axis", 0), -1);
        CHECK(dt_attr_float(N, "epsilon", 0.0f) == 1e-6f);
    }
    ductile_tensor *x, *w;
    ductile_layer *M2;
    rms_chain(RMS_PLAIN, &x, &w, &M2);
    CHECK_EQ_INT(dt_pass_fuse(net), DUCTILE_OK);   /* no backend: no RMSNormalization kernel known */
    CHECK_EQ_INT(net->n_layers, 8);
}

/* What a kernel refuses from the layer alone it refuses when the engine is loaded (its
 * prepare, run by dt_plan_make), so the build fails naming the node, not the first run. */
/* Expand to the shape its input has becomes Reshape to zeros (each zero copies its dim: a
 * view); one that broadcasts, or whose dims the symbols do not prove equal, stays. */
static void test_pass_makes_noop_expand_a_view(void)
{
    int64_t same[3] = {-1, 3, 5}, one[3] = {-1, 1, 5};
    static const int64_t target[3] = {1, 3, 5};
    for (int c = 0; c < 3; c++) {
        new_net();
        ductile_tensor *x = tensor(3, c == 1 ? one : same, NULL), *shape = tensor(1, (int64_t[]){3}, target);
        shape->dtype = DUCTILE_INT64, shape->nbytes = sizeof target;
        x->dim_sym[0] = "batch";
        dt_network_add_input(net, x);
        ductile_layer *E = layer("Expand", 2, 0);
        E->in[0] = x, E->in[1] = shape, E->out[0] = tensor(3, same, NULL);
        E->out[0]->dim_sym[0] = c == 2 ? "other" : "batch";
        ductile_layer *R = layer("Relu", 1, 0);
        R->in[0] = E->out[0], R->out[0] = tensor(3, same, NULL);
        dt_network_add_output(net, R->out[0]);
        CHECK_EQ_INT(dt_pass_fuse(net), DUCTILE_OK);
        CHECK_EQ_INT(net->n_layers, 2);
        CHECK_EQ_STR(E->op_type, c == 0 ? "Reshape" : "Expand");
        CHECK(E->in[0] == x && R->in[0] == E->out[0]);
        if (c == 0) {
            const ductile_tensor *z = E->in[1];
            static const int64_t zeros[3] = {0, 0, 0};
            CHECK(z->dtype == DUCTILE_INT64 && z->rank == 1 && z->dims[0] == 3 && z->nbytes == sizeof zeros &&
                  !memcmp(z->data, zeros, sizeof zeros));
            CHECK_EQ_INT(E->n_attr, 0);
        } else {
            CHECK(E->in[1] == shape);
        }
    }
}

static void test_unknown_weight_layout_is_refused_when_compiled(void)
{
    new_net();
    const conv_case *cc = &cases[0];
    float *w = rand_buf(cc->m * (cc->c / cc->group) * cc->k * cc->k), *b = rand_buf(cc->m);
    ductile_layer *L = fused_layer(cc, w, b, false, "Relu", -1);
    attr(L, "packed", DT_ATTR_INT)->i = 99;
    int64_t xd[4] = {cc->n, cc->c, cc->h, cc->w};
    ductile_tensor *x = tensor(4, xd, NULL);
    L->in[0] = x;
    dt_network_add_input(net, x);
    dt_network_add_output(net, L->out[0]);
    const dt_kernel *k = dt_cpu_kernel_compiled("FusedConv");
    void *params = NULL;
    CHECK(k != NULL);
    CHECK_EQ_INT(k->prepare(L, &params), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(ductile_last_error(), "attribute 'packed' = 99 is not a CPU weight layout");
    CHECK(params == NULL);
    dt_plan plan;
    CHECK_EQ_INT(dt_plan_make(net, dt_backend_host(), &plan), DUCTILE_ERR_UNSUPPORTED);
    char want[160];
    snprintf(want, sizeof want, "node '%s' (FusedConv, opset 13): attribute 'packed' = 99 is not a CPU weight layout", L->name);
    CHECK_EQ_STR(ductile_last_error(), want);
    free(w), free(b);
}

/* FusedConv's folded DepthToSpace (ops/fused.h: depth_to_space, d2s_mode, to; builder/fuse_d2s.c
 * makes it for a device backend): the shape it infers, the attributes it refuses, and the CPU's
 * refusal to run it. */
static void test_folded_depth_to_space_shape_and_refusals(void)
{
    new_net();
    conv_case cc = {.n = 2, .c = 4, .m = 18, .h = 7, .w = 5, .k = 3, .stride = 1, .pad = 1, .group = 1};
    float *w = rand_buf(cc.m * cc.c * cc.k * cc.k), *b = rand_buf(cc.m);
    ductile_layer *L = fused_layer(&cc, w, b, false, "", -1);
    dt_attr *r = attr(L, "depth_to_space", DT_ATTR_INT), *mode = attr(L, "d2s_mode", DT_ATTR_STRING),
            *to = attr(L, "to", DT_ATTR_INT);
    r->i = 3;
    mode->s = "CRD";
    mode->s_len = 3;
    to->i = DUCTILE_FLOAT16;
    const dt_opdef *d = find_def("FusedConv");
    dt_view in[3] = {{DUCTILE_FLOAT32, 4, {2, 4, 7, 5}, NULL}}, out = {0};
    for (int i = 1; i < 3; i++) {
        in[i].dtype = DUCTILE_FLOAT32;
        in[i].rank = L->in[i]->rank;
        memcpy(in[i].dims, L->in[i]->dims, sizeof in[i].dims);
    }
    CHECK_EQ_INT(d->check(L), DUCTILE_OK);
    CHECK_EQ_INT(d->infer(L, in, &out), DUCTILE_OK);
    /* [2, 18, 7, 5] -> [2, 2, 21, 15], in `to`'s type */
    CHECK(out.rank == 4 && out.dims[0] == 2 && out.dims[1] == 2 && out.dims[2] == 21 && out.dims[3] == 15);
    CHECK_EQ_INT(out.dtype, DUCTILE_FLOAT16);
    const dt_kernel *k = dt_cpu_kernel_compiled("FusedConv");
    void *params = NULL;
    CHECK(k != NULL);
    CHECK_EQ_INT(k->prepare(L, &params), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(ductile_last_error(), "attribute 'depth_to_space' = 3 is not supported on the CPU");
    CHECK(params == NULL);
    r->i = 4;   /* 18 channels do not divide by 16 */
    CHECK_EQ_INT(d->infer(L, in, &out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(ductile_last_error(),
                 "attribute 'depth_to_space' = 4 needs a 2-D conv whose 18 output channels divide by 16");
    r->i = 3;
    mode->s = "RDC";
    CHECK_EQ_INT(d->check(L), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(ductile_last_error(), "attribute 'd2s_mode' = 'RDC' is not supported (supported: DCR, CRD)");
    mode->s = "DCR";
    to->i = DUCTILE_INT32;
    CHECK_EQ_INT(d->check(L), DUCTILE_ERR_UNSUPPORTED);
    char want[128];
    snprintf(want, sizeof want, "attribute 'to' = %d is not a float type (float32, float16, bfloat16)", DUCTILE_INT32);
    CHECK_EQ_STR(ductile_last_error(), want);
    to->i = DUCTILE_FLOAT32;
    r->i = -1;
    CHECK_EQ_INT(d->check(L), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "attribute 'depth_to_space' = -1; expected 0 (none) to 65536");
    ductile_layer *R = fused_layer(&cc, w, b, true, "", -1);   /* with a residual */
    attr(R, "depth_to_space", DT_ATTR_INT)->i = 3;
    CHECK_EQ_INT(d->check(R), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(ductile_last_error(), "attribute 'depth_to_space' does not take input 3 (R)");
    free(w), free(b);
}

int main(void)
{
    refconv_rng = 0x2545f4914f6cdd1dull;   /* the sequence the cases were tuned on */
    layer_opset = 13;   /* the opset these layers were written for */
    dt_network_new(&net);
    dt_pool *pool = NULL;
    dt_pool_create(2, &pool);
    test_fused_conv_matches_reference_for_every_activation_and_residual(NULL);
    test_fused_conv_matches_reference_for_every_activation_and_residual(pool);
    test_packed_weights_and_every_tactic_match_reference(pool);
    test_bf16_layer_offers_and_runs_float32_tactics(pool);
    test_prepack_skips_depthwise_and_rejects_wrong_tactic();
    test_tactic_per_point();
    test_size_bound_tactics_fall_back(pool);
    test_pass_fuses_conv_add_relu_with_residual();
    test_pass_fuses_hardsigmoid_mul_as_hardswish();
    test_pass_leaves_shared_and_broadcast_intermediates();
    test_fused_activation_defaults_match_the_unfused_kernels();

    test_pass_fuses_gelu_chain();
    test_pass_fuses_rmsnorm_chain();
    test_pass_makes_noop_expand_a_view();

    test_unknown_weight_layout_is_refused_when_compiled();
    test_folded_depth_to_space_shape_and_refusals();
    dt_pool_free(pool);
    dt_network_delete(net);
    TEST_MAIN_END();
}
