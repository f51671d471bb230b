/* The CPU kernel of FusedConv (src/ops/fused.h) and the CPU backend's weight packing.
 *
 * The kernel picks the conv algorithm from the layer's `tactic` for the context's profile and
 * shape point (chosen by timing at build time; backend/tactic.h) or by heuristic, and hands
 * bias, residual and activation to the conv's epilogue. Packed weights (layout DT_CPU_PACK_GEMM_A) go straight to the GEMM
 * as its packed A; in bfloat16 (layouts DT_CPU_PACK_GEMM_A_BF16*, layers marked `bf16` by
 * the builder under --bf16 where the CPU has AVX512-BF16) as its A_bf16.
 *
 * Layout "NHWC" (channels last, made by the builder's layout pass for backends that ask for
 * it, builder/layout.c) is a reference on the CPU, which never asks for it: the operands are
 * permuted to channels first in the scratch, the channels-first kernel runs, and the result is
 * permuted back. Its weights are permuted back once, in prepare. */
#include "backend/cpu/conv.h"
#include "core/alloc.h"
#include "backend/cpu/families.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/winograd.h"
#include "backend/tactic.h"
#include "core/checked.h"
#include "core/permute.h"
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
    bool has_bias, has_res, has_scale;
    bool pooled;                /* a second output: Y's GlobalAveragePool (conv_pool.c) */
    int w_rank;                 /* packed: the raw weights' dims (w_shape) */
    int64_t w_dims[4];
    int tactic_points;          /* ids per profile (backend/tactic.h) */
    bool nhwc;                  /* layout "NHWC": w_nchw holds W as [M, C/group, KH, KW] */
    const float *w_nchw;        /* inside this blob, after tactic[] */
    int64_t n_tactic;
    int64_t tactic[];           /* per profile and point (dt_conv_algo) */
} dt_fc_params;

/* The algorithms DT_CONV_ON_F32 may take: those that run the GEMM on packed weights. */
static bool dt_fc_on_f32_algo(int64_t algo)
{
    return algo == DT_CONV_IM2COL || algo == DT_CONV_PADDED || algo == DT_CONV_SMALLC;
}

static ductile_status dt_fc_prepare(const ductile_layer *L, void **out)
{
    DT_TRY(dt_cpu_want_f32(L));
    const char *name = dt_attr_string(L, "activation", "");
    int act = dt_act_from_name(name);
    if (act < 0) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'activation' = '%s' is not supported", name);
    /* The folded DepthToSpace is a device backend's (builder/fuse_d2s.c asks the backend). */
    if (dt_fused_conv_d2s(L, NULL))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'depth_to_space' = %lld is not supported on the CPU",
                       (long long)dt_fused_conv_d2s(L, NULL));
    int64_t packed = dt_attr_int(L, "packed", 0);
    if (packed != 0 && packed != DT_CPU_PACK_GEMM_A && packed != DT_CPU_PACK_GEMM_A_WINO &&
        packed != DT_CPU_PACK_GEMM_A_BF16 && packed != DT_CPU_PACK_GEMM_A_BF16_WINO &&
        packed != DT_CPU_PACK_GEMM_A_FP16 && packed != DT_CPU_PACK_GEMM_A_FP16_WINO)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'packed' = %lld is not a CPU weight layout", (long long)packed);
    if (packed == DT_CPU_PACK_GEMM_A_BF16 || packed == DT_CPU_PACK_GEMM_A_BF16_WINO) DT_TRY(dt_cpu_bf16_check());
    if (packed == DT_CPU_PACK_GEMM_A_FP16 || packed == DT_CPU_PACK_GEMM_A_FP16_WINO) DT_TRY(dt_cpu_fp16_check());
    int64_t nt = 0;
    const int64_t *tactic;
    int points;
    DT_TRY(dt_tactic_attr(L, &tactic, &nt, &points));
    bool bf16 = packed == DT_CPU_PACK_GEMM_A_BF16 || packed == DT_CPU_PACK_GEMM_A_BF16_WINO;
    for (int64_t i = 0; i < nt; i++) {
        /* On bfloat16 weights, a GEMM algorithm may run on their float32 copy. */
        int64_t t = bf16 && tactic[i] > DT_CONV_ON_F32 ? tactic[i] - DT_CONV_ON_F32 : tactic[i];
        if (t < DT_CONV_AUTO || t > DT_CONV_S2_BF16 || t == DT_CONV_DIRECT || (t != tactic[i] && !dt_fc_on_f32_algo(t)) ||
            ((t == DT_CONV_WINOGRAD2_BF16 || t == DT_CONV_WINOGRAD_BF16) && packed != DT_CPU_PACK_GEMM_A_BF16_WINO) ||
            (t == DT_CONV_S2 && packed != DT_CPU_PACK_GEMM_A) || (t == DT_CONV_S2_BF16 && packed != DT_CPU_PACK_GEMM_A_BF16))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic'[%lld] = %lld is not a CPU conv algorithm",
                           (long long)i, (long long)tactic[i]);
    }
    dt_view w = {0};
    if (L->n_in > DT_FC_W && L->in[DT_FC_W]) {
        const ductile_tensor *t = L->in[DT_FC_W];
        w.rank = t->rank;
        for (int i = 0; i < t->rank && i < DT_MAX_DIMS; i++) w.dims[i] = t->dims[i];
    }
    dt_view wraw;
    DT_TRY(dt_fused_conv_weight(L, &w, &wraw));
    bool nhwc = dt_fused_conv_nhwc(L);
    const ductile_tensor *wt = L->n_in > DT_FC_W ? L->in[DT_FC_W] : NULL;
    int64_t wn = 0;
    if (nhwc) {
        /* The reference permutes its weights once, here: they must be a constant. */
        if (!wt || !wt->data || wt->rank != 4 || (wn = dt_tensor_count(wt)) < 0 ||
            (size_t)wn * sizeof(float) != wt->nbytes)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                           "layout 'NHWC' needs input 1 (W) to be a constant of 4 dims [M, KH, KW, C/group]");
    }
    size_t bytes, wbytes = 0;
    if (!dt_mul_size((size_t)nt, sizeof(int64_t), &bytes) || !dt_add_size(bytes, sizeof(dt_fc_params), &bytes) ||
        !dt_mul_size((size_t)wn, sizeof(float), &wbytes) || !dt_add_size(bytes, wbytes, &bytes))
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
    dt_epilogue_lean(L, &p->epi);
    p->packed = packed;
    p->has_bias = L->n_in > DT_FC_B && L->in[DT_FC_B];
    p->has_res = L->n_in > DT_FC_R && L->in[DT_FC_R];
    p->has_scale = L->n_in > DT_FC_S && L->in[DT_FC_S];
    p->pooled = L->n_out == 2;
    if (packed) {
        p->w_rank = wraw.rank;
        for (int i = 0; i < wraw.rank && i < 4; i++) p->w_dims[i] = wraw.dims[i];
    }
    p->tactic_points = points;
    p->n_tactic = nt;
    if (nt) memcpy(p->tactic, tactic, (size_t)nt * sizeof *tactic);
    if (nhwc) {
        float *wc = (float *)(p->tactic + nt);
        dt_permute(wt->data, wc, 4, wt->dims, dt_perm_to_nchw, sizeof(float));
        p->nhwc = true;
        p->w_nchw = wc;
    }
    *out = p;
    return DUCTILE_OK;
}

/* Floats of layout DT_CPU_PACK_GEMM_A_BF16_WINO with its optional bfloat16 transforms after
 * the float32 one, in this order: F(2x2, 3x3)'s (wino2) and F(4x4, 3x3)'s (wino4). */
static int64_t dt_fc_bf16_wino_floats(const dt_conv_geom *g, bool wino2, bool wino4)
{
    return dt_cpu_conv_packed_bf16_bytes(g) / (int64_t)sizeof(float) + dt_cpu_conv_packed_floats(g) +
           dt_cpu_wino_floats(g) + (wino2 ? dt_cpu_wino2_floats(g) : 0) + (wino4 ? dt_cpu_wino_bf16_floats(g) : 0);
}

/* Which of those a W of `have` floats in that layout holds; false: it is none of the sizes. */
static bool dt_fc_bf16_wino_tails(const dt_conv_geom *g, int64_t have, bool *wino2, bool *wino4)
{
    for (int i = 0; i < 4; i++)
        if (have == dt_fc_bf16_wino_floats(g, i & 1, i & 2)) {
            *wino2 = i & 1;
            *wino4 = i & 2;
            return true;
        }
    return false;
}

/* Floats of the direct stride-2 conv's bfloat16 weights (conv_s2_bf16.c) that layout
 * DT_CPU_PACK_GEMM_A_BF16 carries after its two packings where the conv is 3x3 stride 2 (the
 * builder drops them where no point of the layer runs it: dt_cpu_prune); 0 elsewhere. */
static int64_t dt_fc_s2_bf16_floats(const dt_conv_geom *g)
{
    return dt_cpu_conv_s2_bf16_applies(g) ? dt_cpu_conv_s2_bf16_floats(g) : 0;
}

/* Floats of layout DT_CPU_PACK_GEMM_A_BF16's two packings (bfloat16, then float32). */
static int64_t dt_fc_bf16_floats(const dt_conv_geom *g)
{
    return dt_cpu_conv_packed_bf16_bytes(g) / (int64_t)sizeof(float) + dt_cpu_conv_packed_floats(g);
}

/* Whether a W of `have` floats in that layout carries the direct stride-2 conv's weights. */
static bool dt_fc_has_s2_bf16(const dt_conv_geom *g, int64_t have)
{
    int64_t ns = dt_fc_s2_bf16_floats(g);
    return ns && have == dt_fc_bf16_floats(g) + ns;
}

/* Whether bfloat16 layers pack F(4x4, 3x3)'s bfloat16 weights and the builder times
 * DT_CONV_WINOGRAD_BF16: unless DUCTILE_WINO_BF16=0 (smaller engines: the tail stays in the
 * engine even where the tactic is not chosen). Its error passes the --bf16 budget on resnet50
 * and not on superres (winograd.h): the builder keeps it only where the whole network's
 * outputs agree with the precise tactic's (dt_backend.tactic_precise, builder/
 * precision_check.c). */
static bool dt_fc_wino_bf16_wanted(void)
{
    const char *v = getenv("DUCTILE_WINO_BF16");
    return !v || strcmp(v, "0");
}

/* The geometry at these shapes and the conv's operands, weights checked against the layout. */
static ductile_status dt_fc_operands(const dt_fc_params *p, const dt_view *in, dt_view *out, dt_conv_geom *g,
                                     dt_conv_args *a, dt_epilogue *epi)
{
    dt_view w = in[DT_FC_W], x = in[DT_FC_X];
    if (p->packed) {
        w.rank = p->w_rank;
        memcpy(w.dims, p->w_dims, sizeof p->w_dims);
        w.data = NULL;
    }
    if (p->nhwc) DT_TRY(dt_fused_conv_nchw_views(&in[DT_FC_X], &in[DT_FC_W], &x, &w));
    DT_TRY(dt_conv_geometry_of(&p->conv, &x, &w, g));
    *epi = p->epi;
    epi->res = p->has_res ? in[DT_FC_R].data : NULL;
    epi->res_far = p->has_res && in[DT_FC_R].dtype == DUCTILE_FLOAT32 &&
                   (size_t)dt_view_count(&in[DT_FC_R]) >= DT_CPU_RES_FAR_BYTES / sizeof(float);
    epi->c_far = out && out[0].dtype == DUCTILE_FLOAT32 &&
                 (size_t)dt_view_count(&out[0]) >= DT_CPU_C_FAR_BYTES / sizeof(float);
    *a = (dt_conv_args){
        .x = in[DT_FC_X].data,
        .bias = p->has_bias ? in[DT_FC_B].data : NULL,
        .epi = epi,
        .y = out ? out[0].data : NULL,
        .pool = out && p->pooled ? out[1].data : NULL,
    };
    if (p->nhwc) {
        a->w = p->w_nchw;
    } else if (p->packed == 0) {
        a->w = in[DT_FC_W].data;
    } else if (p->packed == DT_CPU_PACK_GEMM_A) {
        if (dt_view_count(&in[DT_FC_W]) != dt_cpu_conv_packed_floats(g))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "input 1 (W) holds %lld packed floats; layout %lld of these weights needs %lld",
                           (long long)dt_view_count(&in[DT_FC_W]), (long long)p->packed,
                           (long long)dt_cpu_conv_packed_floats(g));
        a->w_packed = in[DT_FC_W].data;
    } else if (p->packed == DT_CPU_PACK_GEMM_A_BF16 || p->packed == DT_CPU_PACK_GEMM_A_BF16_WINO ||
               p->packed == DT_CPU_PACK_GEMM_A_FP16 || p->packed == DT_CPU_PACK_GEMM_A_FP16_WINO) {
        /* bfloat16 or float16 panels padded to 64 bytes (a float32 tensor of a quarter as many
         * elements), with bfloat16 the float32 packed copy, then, with Winograd, its float32
         * transform, and with bfloat16 maybe F(2x2, 3x3)'s bfloat16 one (dt_fc_wants_wino2) and
         * F(4x4, 3x3)'s (dt_fc_wino_bf16_wanted) */
        bool bf16 = p->packed == DT_CPU_PACK_GEMM_A_BF16 || p->packed == DT_CPU_PACK_GEMM_A_BF16_WINO;
        int64_t nh = dt_cpu_conv_packed_bf16_bytes(g) / (int64_t)sizeof(float);
        int64_t ng = nh + (bf16 ? dt_cpu_conv_packed_floats(g) : 0);
        bool want_wino = p->packed == DT_CPU_PACK_GEMM_A_BF16_WINO || p->packed == DT_CPU_PACK_GEMM_A_FP16_WINO;
        bool wino = want_wino && dt_cpu_wino_applies(g);
        int64_t nw = wino ? dt_cpu_wino_floats(g) : 0;
        if (want_wino && !wino)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'packed' = %lld is not a CPU weight layout", (long long)p->packed);
        int64_t have = dt_view_count(&in[DT_FC_W]);
        bool tails = wino && bf16, t2 = false, t4 = false;
        /* bfloat16 stride-2 3x3s: maybe the direct conv's weights after the two packings */
        int64_t ns = bf16 && !want_wino ? dt_fc_s2_bf16_floats(g) : 0;
        bool s2 = ns && have == ng + ns;
        if (s2) a->w_s2_bf16 = (const uint16_t *)((const float *)in[DT_FC_W].data + ng);
        if (tails ? !dt_fc_bf16_wino_tails(g, have, &t2, &t4) : have != ng + nw && !s2)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "input 1 (W) holds %lld packed floats; layout %lld of these weights needs %lld%s",
                           (long long)have, (long long)p->packed, (long long)(ng + nw),
                           tails ? " (or that plus the bfloat16 F(2x2, 3x3) or F(4x4, 3x3) transforms)"
                           : ns  ? " (or that plus the direct stride-2 conv's bfloat16 weights)"
                                 : "");
        a->w_bf16 = in[DT_FC_W].data;
        a->w_fp16 = p->packed == DT_CPU_PACK_GEMM_A_FP16 || p->packed == DT_CPU_PACK_GEMM_A_FP16_WINO;
        /* Both: the run keeps the one its tactic takes (dt_fc_weights_for). */
        if (bf16) a->w_packed = (const float *)in[DT_FC_W].data + nh;
        if (wino) a->w_wino = (const float *)in[DT_FC_W].data + ng;
        if (t2) a->w_wino2 = (const uint16_t *)(a->w_wino + nw);
        if (t4) a->w_wino_bf16 = (const uint16_t *)(a->w_wino + nw + (t2 ? dt_cpu_wino2_floats(g) : 0));
    } else if (p->packed == DT_CPU_PACK_GEMM_A_WINO && dt_cpu_wino_applies(g)) {
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

/* Keeps in a the weights a run of `tactic` (a stored id or the timer's) takes: on bfloat16
 * weights with their float32 copy, the copy for ids past DT_CONV_ON_F32, else the bfloat16
 * panels (and the Winograd ids the copy too: their exact rerun's, winograd.h). Returns the
 * algorithm the id names. */
static dt_conv_algo dt_fc_weights_for(dt_conv_args *a, int64_t tactic)
{
    if (!a->w_bf16 || !a->w_packed) return (dt_conv_algo)tactic;
    if (tactic != DT_CONV_WINOGRAD2_BF16) a->w_wino2 = NULL;
    if (tactic != DT_CONV_WINOGRAD_BF16) a->w_wino_bf16 = NULL;
    if (tactic != DT_CONV_S2_BF16) a->w_s2_bf16 = NULL;
    if (tactic <= DT_CONV_ON_F32) {
        bool wino = tactic == DT_CONV_WINOGRAD || tactic == DT_CONV_WINOGRAD_BF16 || tactic == DT_CONV_WINOGRAD2_BF16;
        if (!wino) a->w_packed = NULL;
        return (dt_conv_algo)tactic;
    }
    a->w_bf16 = NULL;
    return (dt_conv_algo)(tactic - DT_CONV_ON_F32);
}

/* Layout "NHWC" on the CPU: channels-first copies of X, Y and R in the scratch, then the
 * channels-first kernel's own (AUTO) scratch. off (may be NULL): where each starts. */
static ductile_status dt_fc_nhwc_scratch(const dt_fc_params *p, const dt_conv_geom *g, const dt_conv_args *a,
                                         int threads, size_t off[4], size_t *bytes)
{
    size_t nx = (size_t)g->batch * (size_t)g->c * (size_t)g->in[0] * (size_t)g->in[1];
    size_t ny = (size_t)g->batch * (size_t)g->m * (size_t)g->out[0] * (size_t)g->out[1];
    size_t inner = 0, at[4] = {0}, sz[3] = {nx, ny, p->has_res ? ny : 0}, total = 0;
    DT_TRY(dt_cpu_conv_scratch(g, a, DT_CONV_AUTO, threads, &inner));
    for (int i = 0; i < 3; i++) {
        at[i] = total;
        size_t b;
        /* 64-byte steps keep the conv's own scratch aligned. */
        if (!dt_mul_size(sz[i], sizeof(float), &b) || !dt_add_size(b, 63, &b) || !dt_add_size(total, b & ~(size_t)63, &total))
            return dt_fail(DUCTILE_ERR_SHAPE, "layout 'NHWC': the channels-first copies overflow size_t");
    }
    at[3] = total;
    if (!dt_add_size(total, inner, bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "layout 'NHWC': the channels-first copies overflow size_t");
    if (off) memcpy(off, at, sizeof at);
    return DUCTILE_OK;
}

/* Input S (squeeze-excite's channel scale, builder/fuse_se.c): the images run one at a time,
 * each on its own copy of what S scales. A 1x1 conv on float32 packed weights over at least
 * M pixels scales its weights' columns (M x C multiplies: conv(X * S) = (W * S) conv X, a
 * rounding apart); one on
 * bfloat16 weights scales X's rows as its GEMM converts them to bfloat16 (the unfused Mul's
 * bits, no copy: dt_cpu_conv_takes_x_scale); any other path scales the image's channels into
 * the scratch (C x H x W multiplies, the unfused Mul's bits). That copy's bytes, 64-byte
 * multiple: the larger of the two. */
static ductile_status dt_fc_scale_bytes(const dt_conv_geom *g, size_t *bytes)
{
    size_t nx, nw = (size_t)dt_cpu_conv_packed_floats(g);
    if (!dt_mul_size((size_t)g->c, (size_t)g->in[0], &nx) || !dt_mul_size(nx, (size_t)g->in[1], &nx) ||
        !dt_mul_size(nx > nw ? nx : nw, sizeof(float), bytes) || !dt_add_size(*bytes, 63, bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "FusedConv: the scaled copy of X overflows size_t");
    *bytes &= ~(size_t)63;
    return DUCTILE_OK;
}

/* Whether the run scales the packed weights rather than X: a 1x1 conv of one group, stride 1,
 * unpadded, on float32 packed weights, run as the GEMM, with at least as many pixels as
 * output channels. Scaling the weights writes M x K floats, a scaled copy of X K x pixels:
 * EfficientNet's 7x7 projections (1152 -> 192 and 320 over 49 pixels) scaled 221-369 K
 * weights a run for 56 K inputs (dt_fc_scale_packed was 2.9% of the float32 model, perf). */
static bool dt_fc_scale_weights(const dt_conv_geom *g, const dt_conv_args *a, dt_conv_algo algo)
{
    bool one = g->spatial == 2 && g->k[0] == 1 && g->k[1] == 1 && g->s[0] == 1 && g->s[1] == 1 && g->pb[0] == 0 &&
               g->pb[1] == 0 && g->pe[0] == 0 && g->pe[1] == 0;
    return one && g->group == 1 && a->w_packed && !a->w_bf16 && (algo == DT_CONV_IM2COL || algo == DT_CONV_AUTO) &&
           g->in[0] * g->in[1] >= g->m;
}

/* Column k of packed weights (dt_gemm_pack_a_full's panels: per k, 8 rows) times s[k], panels
 * [p0, p1): an 8-float row of a panel per k, one AVX2 vector (a clone per ISA; the scalar SSE
 * loop was 3.5% of EfficientNet-B0 on 1 thread, perf, whose 16 projections scale 1.5 M weights
 * a run), the panels split over the threads. */
typedef struct dt_fc_wscale_job {
    const float *w, *s;
    float *dst;
    int64_t k;
} dt_fc_wscale_job;

__attribute__((target_clones("avx512f", "avx2", "default"))) static void dt_fc_scale_packed(void *arg, int64_t p0,
                                                                                           int64_t p1, int tid)
{
    (void)tid;
    const dt_fc_wscale_job *j = arg;
    const float *restrict s = j->s;
    for (int64_t p = p0; p < p1; p++) {
        const float *restrict w = j->w + p * j->k * DT_GEMM_MR;
        float *restrict d = j->dst + p * j->k * DT_GEMM_MR;
        for (int64_t c = 0; c < j->k; c++)
#pragma GCC unroll 8
            for (int i = 0; i < DT_GEMM_MR; i++) d[c * DT_GEMM_MR + i] = w[c * DT_GEMM_MR + i] * s[c];
    }
}

/* Channels [c0, c1) of an image times their scales into dst: the unfused Mul's products. The
 * float32 layers scale their packed weights instead; the half ones (bfloat16 / float16
 * weights) scale X here, seg_lraspp's 960-channel SE convs 1.6 M products a layer: an AVX-512
 * clone, and the channels split over the threads (was one thread's SSE loop: 1.9% of the
 * --bf16 model on 1 thread, perf). */
typedef struct dt_fc_scale_job {
    const float *x, *s;
    float *dst;
    int64_t px;
} dt_fc_scale_job;

__attribute__((target_clones("avx512f", "avx2", "default"))) static void dt_fc_scale_part(void *arg, int64_t c0,
                                                                                         int64_t c1, int tid)
{
    (void)tid;
    const dt_fc_scale_job *j = arg;
    for (int64_t c = c0; c < c1; c++) {
        const float *restrict x = j->x + c * j->px;
        float *restrict d = j->dst + c * j->px;
        float sc = j->s[c];
        for (int64_t i = 0; i < j->px; i++) d[i] = x[i] * sc;
    }
}

/* Image b of the conv of X * S (S's row b, or its only row) on `pool` (NULL: this thread
 * alone), with the scaled weights or the scaled image at the front of `scratch` (`front`
 * bytes) and the conv's buffers after them. */
static ductile_status dt_fc_scaled_image(const dt_conv_geom *g, const dt_conv_args *a, dt_conv_algo algo,
                                         const float *s, int64_t s_rows, int64_t b, dt_pool *pool, void *scratch,
                                         size_t front)
{
    dt_conv_geom g1 = *g;
    g1.batch = 1;
    int64_t ipx = g->in[0] * g->in[1], opx = g->out[0] * g->out[1];
    bool sw = dt_fc_scale_weights(g, a, algo), sx = !sw && dt_cpu_conv_takes_x_scale(&g1, a, algo);
    float *copy = scratch;
    const float *sb = s + (s_rows == 1 ? 0 : b) * g->c;
    dt_conv_args ab = *a;
    dt_epilogue epi = a->epi ? *a->epi : (dt_epilogue){0};
    if (a->epi) {
        if (epi.res) epi.res += b * g->m * opx;
        ab.epi = &epi;
    }
    ab.x = a->x + b * g->c * ipx;
    ab.y = a->y + b * g->m * opx;
    ab.pool = a->pool ? a->pool + b * g->m : NULL;
    ab.scratch = (char *)scratch + front;
    if (sw) {
        dt_fc_wscale_job j = {a->w_packed, sb, copy, g->c};
        dt_parallel_for(pool, (g->m + DT_GEMM_MR - 1) / DT_GEMM_MR, (4096 + 8 * g->c - 1) / (8 * g->c),
                        dt_fc_scale_packed, &j);
        ab.w_packed = copy;
    } else if (sx) {
        ab.x_scale = sb;
    } else {
        dt_fc_scale_job j = {ab.x, sb, copy, ipx};
        dt_parallel_for(pool, g->c, (4096 + ipx - 1) / ipx, dt_fc_scale_part, &j);
        ab.x = copy;
    }
    return dt_cpu_conv_run_algo(&g1, &ab, algo, pool);
}

/* The whole-image split of a scaled conv (dt_cpu_conv_image_threads): part p runs its images
 * one after another on its thread, in the scratch slice at p * slice. */
typedef struct dt_fc_images_job {
    const dt_conv_geom *g;
    const dt_conv_args *a;
    dt_conv_algo algo;
    const float *s;
    int64_t s_rows;
    char *scratch;
    size_t front, slice;
    ductile_status status[64];   /* per part (a pool has at most 64 threads) */
} dt_fc_images_job;

static void dt_fc_scaled_images(void *arg, int64_t b0, int64_t b1, int part)
{
    dt_fc_images_job *j = arg;
    ductile_status st = DUCTILE_OK;
    for (int64_t b = b0; b < b1 && st == DUCTILE_OK; b++)
        st = dt_fc_scaled_image(j->g, j->a, j->algo, j->s, j->s_rows, b, NULL, j->scratch + (size_t)part * j->slice,
                                j->front);
    j->status[part] = st;
}

/* Bytes of one thread's slice in the whole-image split of a scaled conv: its scaled copy
 * (front) and a one-thread conv's buffers (conv), 64-byte multiple. */
static ductile_status dt_fc_image_slice(size_t front, size_t conv, size_t *slice)
{
    if (!dt_add_size(front, conv, slice) || !dt_add_size(*slice, 63, slice))
        return dt_fail(DUCTILE_ERR_SHAPE, "FusedConv scratch overflows size_t");
    *slice &= ~(size_t)63;
    return DUCTILE_OK;
}

/* The conv of X * S: with at least as many images as threads, whole images per thread first,
 * each thread's in a scratch slice of its own (dt_fc_image_slice), as the inverted-residual
 * chains before these convs and the layers after them take whole images per thread: each
 * image's activations stay on the core that wrote them. Split image by image across the
 * threads, every conv read half its input from the other core and wrote half its output for
 * it; with the two vCPUs on two core complexes (bench x-core ~350 ns) EfficientNet at batch 4
 * on 2 threads took 32.8 ms (1 thread 42.2, onnxruntime 29.4). The images left over run one at
 * a time, each split over the threads. */
static ductile_status dt_fc_run_scaled(const dt_conv_geom *g, const dt_conv_args *a, dt_conv_algo algo,
                                       const float *s, int64_t s_rows, dt_exec *ex)
{
    size_t front = 0;
    DT_TRY(dt_fc_scale_bytes(g, &front));
    int it = dt_cpu_conv_image_threads(g, dt_pool_threads(ex->pool));
    int64_t split = it ? g->batch - g->batch % it : 0;
    dt_fc_images_job j = {g, a, algo, s, s_rows, ex->scratch, front, 0, {DUCTILE_OK}};
    if (split) {
        /* the slice this algorithm needs (dt_fc_scratch planned the most any may need) */
        dt_conv_geom g1 = *g;
        g1.batch = 1;
        size_t conv = 0;
        DT_TRY(dt_cpu_conv_scratch(&g1, a, algo, 1, &conv));
        DT_TRY(dt_fc_image_slice(front, conv, &j.slice));
    }
    /* (a scratch sized for fewer threads than the pool has: image by image) */
    if (split && j.slice <= ex->scratch_bytes / (size_t)it) {
        dt_parallel_for(ex->pool, split, split / it, dt_fc_scaled_images, &j);
        for (int p = 0; p < it; p++) DT_TRY(j.status[p]);
    } else {
        split = 0;
    }
    for (int64_t b = split; b < g->batch; b++)
        DT_TRY(dt_fc_scaled_image(g, a, algo, s, s_rows, b, ex->pool, ex->scratch, front));
    return DUCTILE_OK;
}

/* The most scratch any algorithm that may run g (on a's weights) needs on `threads` threads. */
static ductile_status dt_fc_algos_scratch(const dt_conv_geom *g, const dt_conv_args *a, int threads, size_t *bytes)
{
    static const dt_conv_algo algos[] = {DT_CONV_IM2COL, DT_CONV_PADDED, DT_CONV_DEPTHWISE, DT_CONV_WINOGRAD,
                                         DT_CONV_DW16, DT_CONV_SMALLC, DT_CONV_WINOGRAD2_BF16, DT_CONV_WINOGRAD_BF16,
                                         DT_CONV_S2, DT_CONV_S2_BF16};
    *bytes = 0;
    /* On bfloat16 weights with a float32 copy, each algorithm on either. */
    for (int f32 = 0; f32 < 2; f32++) {
        dt_conv_args v = *a;
        if (f32 && !(a->w_bf16 && a->w_packed)) break;
        dt_fc_weights_for(&v, f32 ? DT_CONV_ON_F32 + DT_CONV_IM2COL : DT_CONV_AUTO);
        for (size_t i = 0; i < sizeof algos / sizeof algos[0]; i++) {
            size_t b;
            /* no weights: never runs */
            if ((algos[i] == DT_CONV_WINOGRAD_BF16 && !a->w_wino_bf16) || (algos[i] == DT_CONV_S2_BF16 && !a->w_s2_bf16))
                continue;
            DT_TRY(dt_cpu_conv_scratch(g, &v, algos[i], threads, &b));
            if (b > *bytes) *bytes = b;
        }
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
    if (p->nhwc) return dt_fc_nhwc_scratch(p, &g, &a, threads, NULL, bytes);
    if (!p->has_scale) return dt_fc_algos_scratch(&g, &a, threads, bytes);
    /* dt_fc_run_scaled: the images one at a time on all threads after the copy, and where
     * there are as many images as threads, a slice per thread before that */
    size_t front = 0, one = 0, slices = 0;
    DT_TRY(dt_fc_scale_bytes(&g, &front));
    int it = dt_cpu_conv_image_threads(&g, threads > 64 ? 64 : threads);
    dt_conv_geom g1 = g;
    g1.batch = 1;
    DT_TRY(dt_fc_algos_scratch(&g1, &a, threads, &one));
    if (!dt_add_size(one, front, bytes)) return dt_fail(DUCTILE_ERR_SHAPE, "FusedConv scratch overflows size_t");
    if (it) {
        size_t conv = 0;
        DT_TRY(dt_fc_algos_scratch(&g1, &a, 1, &conv));
        DT_TRY(dt_fc_image_slice(front, conv, &slices));
        if (!dt_mul_size(slices, (size_t)it, &slices))
            return dt_fail(DUCTILE_ERR_SHAPE, "FusedConv scratch overflows size_t");
        if (slices > *bytes) *bytes = slices;
    }
    return DUCTILE_OK;
}

static ductile_status dt_fc_nhwc_run(const dt_fc_params *p, const dt_conv_geom *g, dt_conv_args *a, dt_epilogue *epi,
                                     const dt_view *in, dt_view *out, dt_exec *ex)
{
    size_t off[4], bytes;
    DT_TRY(dt_fc_nhwc_scratch(p, g, a, dt_pool_threads(ex->pool), off, &bytes));
    if (!ex->scratch || ex->scratch_bytes < bytes)
        return dt_fail(DUCTILE_ERR_INTERNAL, "layout 'NHWC': %zu bytes of scratch, %zu needed", ex->scratch_bytes, bytes);
    char *s = ex->scratch;
    float *x = (float *)(s + off[0]), *y = (float *)(s + off[1]), *r = (float *)(s + off[2]);
    dt_permute(in[DT_FC_X].data, x, 4, in[DT_FC_X].dims, dt_perm_to_nchw, sizeof(float));
    if (epi->res) {
        dt_permute(epi->res, r, 4, out[0].dims, dt_perm_to_nchw, sizeof(float));
        epi->res = r;
    }
    a->x = x;
    a->y = y;
    a->scratch = s + off[3];
    DT_TRY(dt_cpu_conv_run_algo(g, a, DT_CONV_AUTO, ex->pool));
    int64_t yd[4] = {g->batch, g->m, g->out[0], g->out[1]};
    dt_permute(y, out[0].data, 4, yd, dt_perm_to_nhwc, sizeof(float));
    return DUCTILE_OK;
}

/* Whether algo computes g on the weights a keeps for it (dt_fc_weights_for). */
static bool dt_fc_takes(const dt_conv_geom *g, const dt_conv_args *a, dt_conv_algo algo)
{
    bool packed = a->w_packed || a->w_bf16;
    return dt_cpu_conv_algo_applies(g, algo) && !(packed && (algo == DT_CONV_DEPTHWISE || algo == DT_CONV_DW16)) &&
           !(packed && !a->w_wino && algo == DT_CONV_WINOGRAD) && !(!a->w_wino2 && algo == DT_CONV_WINOGRAD2_BF16) &&
           !(!a->w_wino_bf16 && algo == DT_CONV_WINOGRAD_BF16) && !(!a->w_packed && algo == DT_CONV_S2) &&
           !(!a->w_s2_bf16 && algo == DT_CONV_S2_BF16);
}

/* The tactic a shape runs where the stored one's kernel takes only some sizes of the layer
 * and not this one: the 16-channel depthwise (output rows under 16, 5x5 under 48) -> the row
 * kernels; bfloat16 F(2x2, 3x3) (maps of at most 64 tiles) -> F(4x4, 3x3) with bfloat16 GEMMs
 * where another point of the profile runs them (there the build's precision check let them
 * stay), else F(4x4, 3x3) in float32 (the transform every bfloat16 Winograd layout carries;
 * not bfloat16 GEMMs the build did not check for this layer: 6e-2 on an 8-channel layer where
 * F(2x2) keeps 1e-2). A profile's point keeps the tactic timed there for every shape nearest
 * to it: yolo --bf16 at 480x352, between min 320x320 and opt 640x640, runs min's F(2x2) on
 * maps of more than 64 tiles (refused before session 20), and nine of its 3x3 layers ran
 * float32 F(4x4) there (before session 29) where opt runs them with bfloat16 GEMMs. Any other
 * id is returned as is (and refused if it cannot run). */
static int64_t dt_fc_size_fallback(const dt_fc_params *p, int profile, const dt_conv_geom *g,
                                   const dt_conv_args *all, int64_t t)
{
    bool wino4 = false;   /* another point of the profile runs bfloat16 F(4x4) */
    for (int pt = DUCTILE_PROFILE_MIN; pt <= DUCTILE_PROFILE_MAX; pt++)
        wino4 |= dt_tactic_at(p->tactic, p->n_tactic, p->tactic_points, profile, pt) == DT_CONV_WINOGRAD_BF16;
    if (t == DT_CONV_DW16 && dt_cpu_conv_is_depthwise(g) && !(all->w_packed || all->w_bf16)) return DT_CONV_DEPTHWISE;
    if (t == DT_CONV_WINOGRAD2_BF16 && dt_cpu_wino_applies(g) && wino4 && all->w_wino_bf16) return DT_CONV_WINOGRAD_BF16;
    if (t == DT_CONV_WINOGRAD2_BF16 && dt_cpu_wino_applies(g) && all->w_wino) return DT_CONV_WINOGRAD;
    return t;
}

/* The algorithm a run of stored tactic t takes, with a keeping its weights for it: t's, or at
 * a shape t's kernel does not take, dt_fc_size_fallback's. */
static dt_conv_algo dt_fc_stored_algo(const dt_fc_params *p, int profile, const dt_conv_geom *g, dt_conv_args *a,
                                      int64_t t)
{
    dt_conv_args all = *a;
    dt_conv_algo algo = dt_fc_weights_for(a, t);
    if (dt_fc_takes(g, a, algo)) return algo;
    *a = all;
    return dt_fc_weights_for(a, dt_fc_size_fallback(p, profile, g, &all, t));
}

static ductile_status dt_fc_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_fc_params *p = params;
    dt_conv_geom g;
    dt_conv_args a;
    dt_epilogue epi;
    DT_TRY(dt_fc_operands(p, in, out, &g, &a, &epi));
    if (p->nhwc) return dt_fc_nhwc_run(p, &g, &a, &epi, in, out, ex);
    int64_t t = dt_tactic_at(p->tactic, p->n_tactic, p->tactic_points, ex->profile, ex->point);
    bool half = a.w_bf16 != NULL;
    /* The timer's tactic as it is; a stored one (chosen at the point nearest to this shape,
     * runtime: dt_point_nearest) may fall back where its kernel does not take this shape. */
    dt_conv_algo algo = ex->tactic > 0 ? dt_fc_weights_for(&a, ex->tactic) : dt_fc_stored_algo(p, ex->profile, &g, &a, t);
    if (half && !a.w_bf16) epi.act = dt_act_exact(epi.act);   /* the float32 copy: float32's bits */
    if (!dt_fc_takes(&g, &a, algo))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic' = %lld (profile %d) does not apply to this convolution",
                       (long long)algo, ex->profile);
    if ((a.w_packed || a.w_bf16) && dt_cpu_conv_is_depthwise(&g))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "a depthwise convolution cannot run on packed weights");
    if (p->has_scale) return dt_fc_run_scaled(&g, &a, algo, in[DT_FC_S].data, in[DT_FC_S].dims[0], ex);
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
    if (p->nhwc) return "nhwc_reference";
    dt_conv_algo algo =
        dt_fc_stored_algo(p, profile, &g, &a, dt_tactic_at(p->tactic, p->n_tactic, p->tactic_points, profile, point));
    if (algo == DT_CONV_AUTO) algo = dt_cpu_conv_auto(&g);
    bool one = g.k[0] == 1 && g.k[1] == 1 && g.s[0] == 1 && g.s[1] == 1;
    bool fp16 = a.w_fp16, bf16 = a.w_bf16 && !fp16;
    switch (algo) {
    case DT_CONV_PADDED: return fp16 ? "padded.fp16" : bf16 ? "padded.bf16" : "padded";
    case DT_CONV_DEPTHWISE: return "depthwise";
    case DT_CONV_DW16: return "depthwise16";
    case DT_CONV_SMALLC: return fp16 ? "im2col.fp16" : bf16 ? "smallc.bf16" : "smallc";
    case DT_CONV_WINOGRAD: return "winograd";
    case DT_CONV_WINOGRAD2_BF16: return "winograd2.bf16";
    case DT_CONV_WINOGRAD_BF16: return "winograd.bf16";
    case DT_CONV_S2: return "direct_s2";
    case DT_CONV_S2_BF16: return "direct_s2.bf16";
    default:
        if (one) return fp16 ? "gemm1x1.fp16" : bf16 ? "gemm1x1.bf16" : "gemm1x1";
        return fp16 ? "im2col.fp16" : bf16 ? "im2col.bf16" : "im2col";
    }
}

static const dt_kernel dt_fc_kernel = {.prepare = dt_fc_prepare, .scratch = dt_fc_scratch, .run = dt_fc_run};

/* Whether a bfloat16 Winograd layer packs F(2x2, 3x3)'s weights too: where its input's map
 * is not fixed, or its output map is one the tactic is offered for (16 x M x C bfloat16 more:
 * resnet50's 7x7 layers, where it never wins, would carry 8 MB each). */
static bool dt_fc_wants_wino2(const ductile_layer *L, const dt_conv_geom *g)
{
    const ductile_tensor *x = L->in[DT_FC_X];
    int64_t np = 0;
    const int64_t *pads = dt_attr_ints(L, "pads", &np);
    if (!x || x->rank != 4 || x->dims[2] < 1 || x->dims[3] < 1 || strcmp(dt_attr_string(L, "auto_pad", "NOTSET"), "NOTSET") ||
        (pads && np != 4))
        return true;
    dt_conv_geom at = *g;
    at.batch = 1;
    at.in[0] = x->dims[2], at.in[1] = x->dims[3];
    at.out[0] = x->dims[2] + (pads ? pads[0] + pads[2] : 0) - 2;
    at.out[1] = x->dims[3] + (pads ? pads[1] + pads[3] : 0) - 2;
    return at.out[0] < 1 || at.out[1] < 1 || dt_cpu_wino2_offered(&at);
}

/* What the packings need of the geometry, from W's dims (rank 3 or 4) and L's attributes:
 * channels per group, kernel size, group, strides and dilations; false for a W the layer's
 * shape check will refuse (a group that overflows the channel count) or a depthwise one. */
static bool dt_fc_weight_geom(const ductile_layer *L, const int64_t *wd, int rank, dt_conv_geom *g)
{
    *g = (dt_conv_geom){.group = dt_attr_int(L, "group", 1), .m = wd[0]};
    if (g->group < 1 || !dt_mul_i64(wd[1], g->group, &g->c)) return false;
    g->k[0] = rank == 4 ? wd[2] : 1;
    g->k[1] = wd[rank - 1];
    if (g->m % g->group || dt_cpu_conv_is_depthwise(g)) return false;
    /* Winograd needs stride and dilation 1 too; the input's size does not matter. */
    g->spatial = rank - 2;
    for (int i = 0; i < 2; i++) g->s[i] = g->d[i] = 1;
    int64_t ns, nd;
    const int64_t *s = dt_attr_ints(L, "strides", &ns), *d = dt_attr_ints(L, "dilations", &nd);
    for (int i = 0; i < ns && i < 2; i++) g->s[i] = s[i];
    for (int i = 0; i < nd && i < 2; i++) g->d[i] = d[i];
    return true;
}

ductile_status dt_cpu_prepack(const ductile_layer *L, dt_prepacked *out)
{
    memset(out, 0, sizeof *out);
    if (!strcmp(L->op_type, "MatMul") || !strcmp(L->op_type, "Gemm") || !strcmp(L->op_type, "FusedMatMul"))
        return dt_cpu_prepack_gemm_b(L, out);
    if (strcmp(L->op_type, "FusedConv") || dt_attr_int(L, "packed", 0) != 0 || L->n_in < 2 || dt_fused_conv_nhwc(L))
        return DUCTILE_OK;
    const ductile_tensor *w = L->in[DT_FC_W];
    if (!w || !w->data || w->dtype != DUCTILE_FLOAT32 || (w->rank != 3 && w->rank != 4)) return DUCTILE_OK;
    dt_conv_geom g;
    if (!dt_fc_weight_geom(L, w->dims, w->rank, &g)) return DUCTILE_OK;
    /* Below 4 channels either way the GEMMs are too thin for the transforms to pay. */
    bool wino = dt_cpu_wino_applies(&g) && g.c >= 4 && g.m >= 4;
    /* A layer marked `bf16` / `fp16` (dt_cpu_bf16_in_kernel) gets its GEMM weights in
     * bfloat16 / float16. */
    bool fp16 = dt_attr_int(L, "fp16", 0) != 0, bf16 = !fp16 && dt_attr_int(L, "bf16", 0) != 0;
    /* bfloat16 layers carry the float32 packing too (DT_CONV_ON_F32), after the half one. */
    int64_t nh = bf16 || fp16 ? dt_cpu_conv_packed_bf16_bytes(&g) / (int64_t)sizeof(float) : 0;
    int64_t ng = nh + (fp16 ? 0 : dt_cpu_conv_packed_floats(&g));
    bool wino2 = wino && bf16 && dt_fc_wants_wino2(L, &g), wino4 = wino && bf16 && dt_fc_wino_bf16_wanted();
    int64_t nw = wino ? dt_cpu_wino_floats(&g) : 0, n2 = wino2 ? dt_cpu_wino2_floats(&g) : 0;
    /* bfloat16 3x3 stride-2 layers: the direct conv's weights after (dt_fc_s2_bf16_floats) */
    int64_t ns = bf16 ? dt_fc_s2_bf16_floats(&g) : 0;
    int64_t n = ng + nw + n2 + (wino4 ? dt_cpu_wino_bf16_floats(&g) : 0) + ns;
    if ((size_t)dt_tensor_count(w) * sizeof(float) != w->nbytes) return DUCTILE_OK;
    void *buf = dt_aligned_alloc(64, (size_t)n * sizeof(float));
    if (!buf)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory packing the weights of node '%s' (%lld floats)",
                       L->name, (long long)n);
    if (bf16 || fp16) dt_cpu_conv_pack_weights_half(&g, w->data, fp16 ? dt_fp16_round : dt_bf16_round, buf);
    if (!fp16) dt_cpu_conv_pack_weights(&g, w->data, (float *)buf + nh);
    ductile_status st = wino ? dt_cpu_wino_pack_weights(&g, w->data, (float *)buf + ng) : DUCTILE_OK;
    if (!st && wino2) st = dt_cpu_wino2_pack_weights(&g, w->data, (uint16_t *)((float *)buf + ng + nw));
    if (!st && wino4) st = dt_cpu_wino_bf16_pack_weights(&g, w->data, (uint16_t *)((float *)buf + ng + nw + n2));
    if (ns) dt_cpu_conv_s2_bf16_pack_weights(&g, w->data, (uint16_t *)((float *)buf + ng));
    if (st) {
        dt_free(buf);
        return dt_fail_prefix(st, "node '%s'", L->name);
    }
    *out = (dt_prepacked){.input = DT_FC_W, .data = buf, .nbytes = (size_t)n * sizeof(float),
                          .layout = fp16 ? (wino ? DT_CPU_PACK_GEMM_A_FP16_WINO : DT_CPU_PACK_GEMM_A_FP16)
                                  : bf16 ? (wino ? DT_CPU_PACK_GEMM_A_BF16_WINO : DT_CPU_PACK_GEMM_A_BF16)
                                         : (wino ? DT_CPU_PACK_GEMM_A_WINO : DT_CPU_PACK_GEMM_A)};
    return DUCTILE_OK;
}

int dt_cpu_tactics(const ductile_layer *L, const dt_view *in, int *ids, int cap)
{
    if (!strcmp(L->op_type, "FusedInvertedResidual")) return dt_cpu_fused_irb_tactics(L, in, ids, cap);
    if (!strcmp(L->op_type, "FusedMatMul")) return dt_cpu_fused_matmul_tactics(L, ids, cap);
    if (strcmp(L->op_type, "FusedConv") || dt_fused_conv_nhwc(L)) return 0;
    dt_view w;
    dt_conv_geom g;
    if (dt_fused_conv_weight(L, &in[DT_FC_W], &w) || dt_conv_geometry(L, &in[DT_FC_X], &w, &g)) return 0;
    int n = 0;
    int64_t layout = dt_attr_int(L, "packed", 0);
    bool wino = (layout == DT_CPU_PACK_GEMM_A_WINO || layout == DT_CPU_PACK_GEMM_A_BF16_WINO ||
                 layout == DT_CPU_PACK_GEMM_A_FP16_WINO) &&
                dt_cpu_wino_applies(&g);
    /* The padded GEMM where it can win (conv.h: dt_cpu_conv_padded_offered). */
    static const dt_conv_algo all[] = {DT_CONV_IM2COL, DT_CONV_PADDED};
    for (size_t i = 0; i < sizeof all / sizeof all[0] && n < cap; i++)
        if (dt_cpu_conv_algo_applies(&g, all[i]) && !(all[i] == DT_CONV_PADDED && !dt_cpu_conv_padded_offered(&g, wino)))
            ids[n++] = (int)all[i];
    /* Depthwise: the row kernels or 16 channels per vector (the same bits), where rows of
     * outputs leave the row kernels' lanes idle. */
    if (dt_cpu_dw16_applies(&g) && n + 2 <= cap) {
        ids[n++] = DT_CONV_DEPTHWISE;
        ids[n++] = DT_CONV_DW16;
    }
    /* The few-channel direct conv on float32 weights, and on bfloat16 ones in vdpbf16ps
     * (conv_smallc_bf16.c; float16 ones would run the GEMM). */
    if (n < cap && dt_cpu_conv_smallc_applies(&g) && layout != DT_CPU_PACK_GEMM_A_FP16 &&
        (layout != DT_CPU_PACK_GEMM_A_BF16 || dt_cpu_has_bf16()))
        ids[n++] = DT_CONV_SMALLC;
    /* The direct stride-2 3x3 on packed float32 weights with AVX-512 (conv_s2.c), for output
     * rows of at least 16 pixels: on narrower ones every tile is an edge tile and each row
     * reads all the weights again (resnet50's 14x14 -> 7x7: timed faster alone, 1.04 -> 1.19
     * ms in the network, where its 9.4 MB of weights come from memory). */
    if (n < cap && layout == DT_CPU_PACK_GEMM_A && dt_cpu_conv_s2_applies(&g) && g.out[1] >= 16 && dt_cpu_conv_s2_cpu())
        ids[n++] = DT_CONV_S2;
    /* On bfloat16 weights, the same GEMM algorithms (and the direct one) on their float32
     * copy: the timer keeps the layer float32 where that is faster. */
    if (layout == DT_CPU_PACK_GEMM_A_BF16 || layout == DT_CPU_PACK_GEMM_A_BF16_WINO) {
        int nb = n;
        for (int i = 0; i < nb && n < cap; i++)
            if (ids[i] == DT_CONV_IM2COL || ids[i] == DT_CONV_PADDED) ids[n++] = ids[i] + DT_CONV_ON_F32;
        if (n < cap && dt_cpu_conv_smallc_applies(&g)) ids[n++] = DT_CONV_SMALLC + DT_CONV_ON_F32;
    }
    /* Winograd only where its weights were transformed at build time; on bfloat16 ones also
     * F(2x2, 3x3) in bfloat16 where it may win and F(4x4, 3x3) with bfloat16 GEMMs where
     * allowed (winograd.h), where the weights carry their transforms. */
    if (n < cap && wino) ids[n++] = DT_CONV_WINOGRAD;
    bool t2 = false, t4 = false;
    if (wino && layout == DT_CPU_PACK_GEMM_A_BF16_WINO && L->in[DT_FC_W])
        dt_fc_bf16_wino_tails(&g, (int64_t)(L->in[DT_FC_W]->nbytes / sizeof(float)), &t2, &t4);
    if (n < cap && t2 && dt_cpu_wino2_offered(&g)) ids[n++] = DT_CONV_WINOGRAD2_BF16;
    if (n < cap && t4 && dt_fc_wino_bf16_wanted()) ids[n++] = DT_CONV_WINOGRAD_BF16;
    /* The direct bfloat16 stride-2 3x3 where the weights carry its packing (bench_conv_layers,
     * 1 thread, against the padded GEMM: 320x320 -> 160x160 16 -> 32 channels 0.65 ms against
     * 0.93, 56x56 -> 28x28 128 -> 128 0.54 against 0.62, 40x40 -> 20x20 128 -> 256 0.58
     * against 0.62, 14x14 -> 7x7 512 -> 512 0.66 against 0.58: the timer decides). Not for
     * the stems the few-channel conv takes: timed alone, yolo's 3 -> 16 at 640x640 ran 0.51 ms
     * against its 0.52, in the network 0.86 against 0.68 (its input comes from memory, and
     * with 3 channels a tile's 18 k steps are few beside its store). */
    if (n < cap && layout == DT_CPU_PACK_GEMM_A_BF16 && !dt_cpu_conv_smallc_applies(&g) && L->in[DT_FC_W] &&
        dt_fc_has_s2_bf16(&g, (int64_t)(L->in[DT_FC_W]->nbytes / sizeof(float))))
        ids[n++] = DT_CONV_S2_BF16;
    return n;
}

/* Layout DT_CPU_PACK_GEMM_A_BF16 without the direct stride-2 conv's weights where every
 * point of the layer timed another tactic. */
static ductile_status dt_fc_prune_s2(const ductile_layer *L, const ductile_tensor *w, dt_prepacked *out)
{
    const int64_t *ids, *ws;
    int64_t n, nws;
    int points;
    if (dt_tactic_attr(L, &ids, &n, &points) || n == 0) return DUCTILE_OK;
    for (int64_t i = 0; i < n; i++)
        if (ids[i] <= 0 || ids[i] == DT_CONV_S2_BF16) return DUCTILE_OK;
    dt_conv_geom g;
    if (!(ws = dt_attr_ints(L, "w_shape", &nws)) || (nws != 3 && nws != 4) || !dt_fc_weight_geom(L, ws, (int)nws, &g))
        return DUCTILE_OK;
    if (!dt_fc_has_s2_bf16(&g, (int64_t)(w->nbytes / sizeof(float)))) return DUCTILE_OK;
    int64_t keep = dt_fc_bf16_floats(&g);
    float *buf = dt_aligned_alloc(64, (size_t)keep * sizeof(float));
    if (!buf)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory repacking the weights of node '%s' (%lld floats)",
                       L->name, (long long)keep);
    memcpy(buf, w->data, (size_t)keep * sizeof(float));
    *out = (dt_prepacked){.input = DT_FC_W, .data = buf, .nbytes = (size_t)keep * sizeof(float),
                          .layout = DT_CPU_PACK_GEMM_A_BF16};
    return DUCTILE_OK;
}

ductile_status dt_cpu_prune(const ductile_layer *L, dt_prepacked *out)
{
    memset(out, 0, sizeof *out);
    const ductile_tensor *w = L->n_in > DT_FC_W ? L->in[DT_FC_W] : NULL;
    if (strcmp(L->op_type, "FusedConv") || !w || !w->data) return DUCTILE_OK;
    if (dt_attr_int(L, "packed", 0) == DT_CPU_PACK_GEMM_A_BF16) return dt_fc_prune_s2(L, w, out);
    if (dt_attr_int(L, "packed", 0) != DT_CPU_PACK_GEMM_A_BF16_WINO) return DUCTILE_OK;
    const int64_t *ids;
    int64_t n, nws;
    int points;
    if (dt_tactic_attr(L, &ids, &n, &points) || n == 0) return DUCTILE_OK;
    /* A point the timer left to the heuristic (0) keeps every transform. */
    bool need2 = false, need4 = false;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] <= 0) return DUCTILE_OK;
        need2 |= ids[i] == DT_CONV_WINOGRAD2_BF16;
        need4 |= ids[i] == DT_CONV_WINOGRAD_BF16;
    }
    const int64_t *ws = dt_attr_ints(L, "w_shape", &nws);
    dt_conv_geom g;
    bool t2, t4;
    if (!ws || (nws != 3 && nws != 4) || !dt_fc_weight_geom(L, ws, (int)nws, &g) ||
        !dt_fc_bf16_wino_tails(&g, (int64_t)(w->nbytes / sizeof(float)), &t2, &t4) ||
        ((!t2 || need2) && (!t4 || need4)))
        return DUCTILE_OK;
    bool k2 = t2 && need2, k4 = t4 && need4;
    int64_t base = dt_fc_bf16_wino_floats(&g, false, false), n2 = dt_cpu_wino2_floats(&g);
    int64_t keep = dt_fc_bf16_wino_floats(&g, k2, k4);
    float *buf = dt_aligned_alloc(64, (size_t)keep * sizeof(float));
    if (!buf)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory repacking the weights of node '%s' (%lld floats)",
                       L->name, (long long)keep);
    const float *src = w->data;
    memcpy(buf, src, (size_t)base * sizeof(float));
    if (k2) memcpy(buf + base, src + base, (size_t)n2 * sizeof(float));
    if (k4)
        memcpy(buf + base + (k2 ? n2 : 0), src + base + (t2 ? n2 : 0),
               (size_t)dt_cpu_wino_bf16_floats(&g) * sizeof(float));
    *out = (dt_prepacked){.input = DT_FC_W, .data = buf, .nbytes = (size_t)keep * sizeof(float),
                          .layout = DT_CPU_PACK_GEMM_A_BF16_WINO};
    return DUCTILE_OK;
}

int dt_cpu_tactic_precise(const ductile_layer *L, int tactic)
{
    /* Plain DT_CONV_WINOGRAD on bfloat16 weights runs F(4x4, 3x3) in float32 on the float32
     * transform layout DT_CPU_PACK_GEMM_A_BF16_WINO always carries (dt_fc_weights_for). */
    return tactic == DT_CONV_WINOGRAD_BF16 && !strcmp(L->op_type, "FusedConv") ? DT_CONV_WINOGRAD : 0;
}

ductile_status dt_cpu_bf16_check(void)
{
    if (dt_cpu_has_bf16()) return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                   "the layer computes in bfloat16 (built with --bf16), which needs AVX512-BF16; this CPU lacks it: "
                   "rebuild the engine on this machine");
}

ductile_status dt_cpu_fp16_check(void)
{
    if (dt_cpu_has_fp16()) return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                   "the layer computes in float16 (built with --fp16), which needs AVX512-FP16; this CPU lacks it: "
                   "rebuild the engine on this machine");
}

/* Float16 weights are packed unscaled (gemm.h, "float16 products"): a layer takes them where
 * its largest |w| is within [2^-8, 4], so that chunk sums against activations scaled into
 * [32, 64) stay finite and the weights keep their precision; else it stays float32. */
static bool dt_fp16_weights_fit(const ductile_tensor *w)
{
    if (!w->data || w->dtype != DUCTILE_FLOAT32) return false;
    float mx = 0.0f;
    int64_t n = dt_tensor_count(w);
    for (int64_t i = 0; i < n; i++) {
        float v = fabsf(((const float *)w->data)[i]);
        if (!(v <= 4.0f)) return false;   /* a NaN too */
        mx = v > mx ? v : mx;
    }
    return mx >= 1.0f / 256;
}

bool dt_cpu_bf16_in_kernel(const ductile_layer *L, unsigned flags)
{
    /* Asked for one flag at a time (dt_pass_mark_bf16): bfloat16 where --bf16 and the CPU
     * has AVX512-BF16, float16 where --fp16 and AVX512-FP16. */
    bool bf16 = (flags & (1u << DUCTILE_FLAG_BF16)) && dt_cpu_has_bf16();
    bool fp16 = (flags & (1u << DUCTILE_FLAG_FP16)) && dt_cpu_has_fp16();
    if (!bf16 && !fp16) return false;
    if (!L) return true;
    /* The inverted-residual block packs its 1x1 weights itself, in prepare. */
    if (!strcmp(L->op_type, "FusedInvertedResidual"))
        return bf16 || ((L->n_in <= DT_IRB_WE || !L->in[DT_IRB_WE] || dt_fp16_weights_fit(L->in[DT_IRB_WE])) &&
                        (L->n_in <= DT_IRB_WP || !L->in[DT_IRB_WP] || dt_fp16_weights_fit(L->in[DT_IRB_WP])));
    /* MatMul, Gemm, FusedMatMul with a constant B that the packer packs. */
    if (dt_cpu_gemm_b_packable(L, NULL, NULL)) return bf16 || dt_fp16_weights_fit(L->in[1]);
    /* The GEMM convolutions: not channels last (the CPU's NHWC is a reference), and only
     * where the packer will pack (float32 constant weights), not depthwise (its own kernel,
     * float32, as Winograd's). */
    if (strcmp(L->op_type, "FusedConv") || dt_fused_conv_nhwc(L) || L->n_in <= DT_FC_W) return false;
    const ductile_tensor *w = L->in[DT_FC_W];
    return w && w->data && w->dtype == DUCTILE_FLOAT32 && (w->rank == 3 || w->rank == 4) &&
           !(w->dims[1] == 1 && dt_attr_int(L, "group", 1) == w->dims[0] && w->dims[0] > 1) &&
           (bf16 || dt_fp16_weights_fit(w));
}

const dt_cpu_kernel dt_cpu_fused[] = {
    {"FusedConv", NULL, &dt_fc_kernel},
    {"FusedMatMul", NULL, &dt_cpu_fused_matmul_kernel},
    {"FusedInvertedResidual", NULL, &dt_cpu_fused_irb_kernel},
    {"FusedSqueezeExcite", NULL, &dt_cpu_fused_se_kernel},
    {"FusedAttention", NULL, &dt_cpu_fused_attention_kernel},
    {"FusedRotary", NULL, &dt_cpu_fused_rotary_kernel},
    {NULL, NULL, NULL},
};
