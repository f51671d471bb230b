/* The CPU kernel of FusedConv (src/ops/fused.h) and the CPU backend's weight packing.
 *
 * The kernel picks the conv algorithm from the layer's `tactic` for the context's profile and
 * shape point (chosen by timing at build time; backend/tactic.h) or by heuristic, and hands
 * bias, residual and activation to the conv's epilogue. Packed weights (layout DT_CPU_PACK_GEMM_A) go straight to the GEMM
 * as its packed A. */
#include "backend/cpu/conv.h"
#include "core/alloc.h"
#include "backend/cpu/families.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/winograd.h"
#include "backend/tactic.h"
#include "core/checked.h"
#include "core/status.h"
#include "ops/defaults.h"
#include "ops/fused.h"
#include "ops/linalg.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* What the run reads: the layer compiled (backend.h). */
typedef struct dt_fc_params {
    dt_conv_attrs conv;
    dt_epilogue epi;            /* activation; res set per run */
    int64_t packed;             /* 0 or a DT_CPU_PACK_* layout */
    bool has_bias, has_res;
    int w_rank;                 /* packed: the raw weights' dims (w_shape) */
    int64_t w_dims[4];
    int tactic_points;          /* ids per profile (backend/tactic.h) */
    int64_t n_tactic;
    int64_t tactic[];           /* per profile and point (dt_conv_algo) */
} dt_fc_params;

static ductile_status dt_fc_prepare(const ductile_layer *L, void **out)
{
    DT_TRY(dt_cpu_want_f32(L));
    const char *name = dt_attr_string(L, "activation", "");
    int act = dt_act_from_name(name);
    if (act < 0) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'activation' = '%s' is not supported", name);
    int64_t packed = dt_attr_int(L, "packed", 0);
    if (packed != 0 && packed != DT_CPU_PACK_GEMM_A && packed != DT_CPU_PACK_GEMM_A_WINO)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'packed' = %lld is not a CPU weight layout", (long long)packed);
    int64_t nt = 0;
    const int64_t *tactic;
    int points;
    DT_TRY(dt_tactic_attr(L, &tactic, &nt, &points));
    for (int64_t i = 0; i < nt; i++)
        if (tactic[i] < DT_CONV_AUTO || tactic[i] > DT_CONV_WINOGRAD)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic'[%lld] = %lld is not a CPU conv algorithm",
                           (long long)i, (long long)tactic[i]);
    dt_view w = {0};
    if (L->n_in > DT_FC_W && L->in[DT_FC_W]) {
        const ductile_tensor *t = L->in[DT_FC_W];
        w.rank = t->rank;
        for (int i = 0; i < t->rank && i < DT_MAX_DIMS; i++) w.dims[i] = t->dims[i];
    }
    dt_view wraw;
    DT_TRY(dt_fused_conv_weight(L, &w, &wraw));
    size_t bytes;
    if (!dt_mul_size((size_t)nt, sizeof(int64_t), &bytes) || !dt_add_size(bytes, sizeof(dt_fc_params), &bytes))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic' has %lld values", (long long)nt);
    dt_fc_params *p = dt_calloc(1, bytes);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling a FusedConv");
    dt_conv_attrs_read(L, &p->conv);
    p->epi.act = (dt_act)act;
    if (act == DT_ACT_CLIP) {
        p->epi.p0 = dt_attr_float(L, "act_min", DT_CLIP_NO_MIN);
        p->epi.p1 = dt_attr_float(L, "act_max", DT_CLIP_NO_MAX);
    } else {
        p->epi.p0 = dt_attr_float(L, "act_alpha", DT_HARDSIGMOID_ALPHA);
        p->epi.p1 = dt_attr_float(L, "act_beta", DT_HARDSIGMOID_BETA);
    }
    p->packed = packed;
    p->has_bias = L->n_in > DT_FC_B && L->in[DT_FC_B];
    p->has_res = L->n_in > DT_FC_R && L->in[DT_FC_R];
    if (packed) {
        p->w_rank = wraw.rank;
        for (int i = 0; i < wraw.rank && i < 4; i++) p->w_dims[i] = wraw.dims[i];
    }
    p->tactic_points = points;
    p->n_tactic = nt;
    if (nt) memcpy(p->tactic, tactic, (size_t)nt * sizeof *tactic);
    *out = p;
    return DUCTILE_OK;
}

/* The geometry at these shapes and the conv's operands, weights checked against the layout. */
static ductile_status dt_fc_operands(const dt_fc_params *p, const dt_view *in, dt_view *out, dt_conv_geom *g,
                                     dt_conv_args *a, dt_epilogue *epi)
{
    dt_view w = in[DT_FC_W];
    if (p->packed) {
        w.rank = p->w_rank;
        memcpy(w.dims, p->w_dims, sizeof p->w_dims);
        w.data = NULL;
    }
    DT_TRY(dt_conv_geometry_of(&p->conv, &in[DT_FC_X], &w, g));
    *epi = p->epi;
    epi->res = p->has_res ? in[DT_FC_R].data : NULL;
    *a = (dt_conv_args){
        .x = in[DT_FC_X].data,
        .bias = p->has_bias ? in[DT_FC_B].data : NULL,
        .epi = epi,
        .y = out ? out[0].data : NULL,
    };
    if (p->packed == 0) {
        a->w = in[DT_FC_W].data;
    } else if (p->packed == DT_CPU_PACK_GEMM_A) {
        if (dt_view_count(&in[DT_FC_W]) != dt_cpu_conv_packed_floats(g))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "input 1 (W) holds %lld packed floats; layout %lld of these weights needs %lld",
                           (long long)dt_view_count(&in[DT_FC_W]), (long long)p->packed,
                           (long long)dt_cpu_conv_packed_floats(g));
        a->w_packed = in[DT_FC_W].data;
    } else if (dt_cpu_wino_applies(g)) {
        int64_t ng = dt_cpu_conv_packed_floats(g), nw = dt_cpu_wino_floats(g);
        if (dt_view_count(&in[DT_FC_W]) != ng + nw)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "input 1 (W) holds %lld packed floats; layout %lld of these weights needs %lld",
                           (long long)dt_view_count(&in[DT_FC_W]), (long long)p->packed, (long long)(ng + nw));
        a->w_packed = in[DT_FC_W].data;
        a->w_wino = a->w_packed + ng;
    } else {
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'packed' = %lld is not a CPU weight layout", (long long)p->packed);
    }
    return DUCTILE_OK;
}

/* The most any algorithm that may run this layer needs: the profile, and so the tactic, is
 * the context's to choose, and the builder's timing runs each. */
static ductile_status dt_fc_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                    size_t *bytes)
{
    (void)out;
    const dt_fc_params *p = params;
    dt_conv_geom g;
    dt_conv_args a;
    dt_epilogue epi;
    *bytes = 0;
    /* Shapes the run will refuse need nothing; the run names the fault. */
    if (dt_fc_operands(p, in, NULL, &g, &a, &epi)) return DUCTILE_OK;
    static const dt_conv_algo algos[] = {DT_CONV_IM2COL, DT_CONV_PADDED, DT_CONV_DEPTHWISE, DT_CONV_WINOGRAD};
    for (size_t i = 0; i < sizeof algos / sizeof algos[0]; i++) {
        size_t b;
        DT_TRY(dt_cpu_conv_scratch(&g, &a, algos[i], threads, &b));
        if (b > *bytes) *bytes = b;
    }
    return DUCTILE_OK;
}

static ductile_status dt_fc_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_fc_params *p = params;
    dt_conv_geom g;
    dt_conv_args a;
    dt_epilogue epi;
    DT_TRY(dt_fc_operands(p, in, out, &g, &a, &epi));
    dt_conv_algo algo = (dt_conv_algo)dt_tactic_at(p->tactic, p->n_tactic, p->tactic_points, ex->profile, ex->point);
    if (ex->tactic > 0) algo = (dt_conv_algo)ex->tactic;
    if (!dt_cpu_conv_algo_applies(&g, algo) || (a.w_packed && algo == DT_CONV_DEPTHWISE) ||
        (a.w_packed && !a.w_wino && algo == DT_CONV_WINOGRAD))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic' = %lld (profile %d) does not apply to this convolution",
                       (long long)algo, ex->profile);
    if (a.w_packed && dt_cpu_conv_is_depthwise(&g))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "a depthwise convolution cannot run on packed weights");
    a.scratch = ex->scratch;
    return dt_cpu_conv_run_algo(&g, &a, algo, ex->pool);
}

/* The algorithm dt_fc_run takes, for profiles (backend.h: dt_backend.kernel_path). */
const char *dt_cpu_fused_conv_path(const void *params, const dt_view *in, const dt_view *out, int profile, int point,
                                   int threads)
{
    (void)out, (void)threads;
    const dt_fc_params *p = params;
    dt_conv_geom g;
    dt_conv_args a;
    dt_epilogue epi;
    if (dt_fc_operands(p, in, NULL, &g, &a, &epi)) return NULL;
    dt_conv_algo algo = (dt_conv_algo)dt_tactic_at(p->tactic, p->n_tactic, p->tactic_points, profile, point);
    if (algo == DT_CONV_AUTO) algo = dt_cpu_conv_auto(&g);
    bool one = g.k[0] == 1 && g.k[1] == 1 && g.s[0] == 1 && g.s[1] == 1;
    switch (algo) {
    case DT_CONV_PADDED: return "padded";
    case DT_CONV_DEPTHWISE: return "depthwise";
    case DT_CONV_WINOGRAD: return "winograd";
    default: return one ? "gemm1x1" : "im2col";
    }
}

static const dt_kernel dt_fc_kernel = {dt_fc_prepare, dt_fc_scratch, dt_fc_run};

ductile_status dt_cpu_prepack(const ductile_layer *L, dt_prepacked *out)
{
    memset(out, 0, sizeof *out);
    if (!strcmp(L->op_type, "MatMul") || !strcmp(L->op_type, "Gemm") || !strcmp(L->op_type, "FusedMatMul"))
        return dt_cpu_prepack_gemm_b(L, out);
    if (strcmp(L->op_type, "FusedConv") || dt_attr_int(L, "packed", 0) != 0 || L->n_in < 2) return DUCTILE_OK;
    const ductile_tensor *w = L->in[DT_FC_W];
    if (!w || !w->data || w->dtype != DUCTILE_FLOAT32 || (w->rank != 3 && w->rank != 4)) return DUCTILE_OK;
    /* What the geometry needs of W alone: channels per group, kernel size, group. */
    dt_conv_geom g = {.group = dt_attr_int(L, "group", 1), .m = w->dims[0]};
    /* A group that overflows the channel count is left for the layer's shape check to name. */
    if (g.group < 1 || !dt_mul_i64(w->dims[1], g.group, &g.c)) return DUCTILE_OK;
    g.k[0] = w->rank == 4 ? w->dims[2] : 1;
    g.k[1] = w->dims[w->rank - 1];
    if (g.m % g.group || dt_cpu_conv_is_depthwise(&g)) return DUCTILE_OK;
    /* Winograd needs stride and dilation 1 too; the input's size does not matter. */
    g.spatial = w->rank - 2;
    for (int i = 0; i < 2; i++) g.s[i] = g.d[i] = 1;
    int64_t ns, nd;
    const int64_t *s = dt_attr_ints(L, "strides", &ns), *d = dt_attr_ints(L, "dilations", &nd);
    for (int i = 0; i < ns && i < 2; i++) g.s[i] = s[i];
    for (int i = 0; i < nd && i < 2; i++) g.d[i] = d[i];
    /* Below 4 channels either way the GEMMs are too thin for the transforms to pay. */
    bool wino = dt_cpu_wino_applies(&g) && g.c >= 4 && g.m >= 4;
    int64_t ng = dt_cpu_conv_packed_floats(&g), n = ng + (wino ? dt_cpu_wino_floats(&g) : 0);
    if ((size_t)dt_tensor_count(w) * sizeof(float) != w->nbytes) return DUCTILE_OK;
    void *buf = dt_aligned_alloc(64, (size_t)n * sizeof(float));
    if (!buf)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory packing the weights of node '%s' (%lld floats)",
                       L->name, (long long)n);
    dt_cpu_conv_pack_weights(&g, w->data, buf);
    ductile_status st = wino ? dt_cpu_wino_pack_weights(&g, w->data, (float *)buf + ng) : DUCTILE_OK;
    if (st) {
        dt_free(buf);
        return dt_fail_prefix(st, "node '%s'", L->name);
    }
    *out = (dt_prepacked){.input = DT_FC_W, .data = buf, .nbytes = (size_t)n * sizeof(float),
                          .layout = wino ? DT_CPU_PACK_GEMM_A_WINO : DT_CPU_PACK_GEMM_A};
    return DUCTILE_OK;
}

int dt_cpu_tactics(const ductile_layer *L, const dt_view *in, int *ids, int cap)
{
    if (strcmp(L->op_type, "FusedConv")) return 0;
    dt_view w;
    dt_conv_geom g;
    if (dt_fused_conv_weight(L, &in[DT_FC_W], &w) || dt_conv_geometry(L, &in[DT_FC_X], &w, &g)) return 0;
    bool one = g.k[0] == 1 && g.k[1] == 1 && g.s[0] == 1 && g.s[1] == 1 && g.pb[0] == 0 &&
               g.pb[1] == 0 && g.pe[0] == 0 && g.pe[1] == 0;
    int n = 0;
    /* A 1x1 stride-1 conv reads the image as B directly; padding it cannot win. */
    static const dt_conv_algo all[] = {DT_CONV_IM2COL, DT_CONV_PADDED};
    for (size_t i = 0; i < sizeof all / sizeof all[0] && n < cap; i++)
        if (dt_cpu_conv_algo_applies(&g, all[i]) && !(one && all[i] == DT_CONV_PADDED)) ids[n++] = (int)all[i];
    /* Winograd only where its weights were transformed at build time. */
    if (n < cap && dt_attr_int(L, "packed", 0) == DT_CPU_PACK_GEMM_A_WINO && dt_cpu_wino_applies(&g))
        ids[n++] = DT_CONV_WINOGRAD;
    return n;
}

const dt_cpu_kernel dt_cpu_fused[] = {
    {"FusedConv", NULL, &dt_fc_kernel},
    {"FusedMatMul", NULL, &dt_cpu_fused_matmul_kernel},
    {"FusedAttention", NULL, &dt_cpu_fused_attention_kernel},
    {NULL, NULL, NULL},
};
