/* The CPU kernel of FusedInvertedResidual (src/ops/fused.h): MobileNet's expand 1x1 ->
 * depthwise -> project 1x1 block, a strip of output rows at a time.
 *
 * Why: over large planes these blocks are bound by memory, not arithmetic: the expand conv
 * writes 6x the block's channels to memory and the depthwise reads them back (seg_lraspp's
 * 389x278 block: a 28 MB tensor; bench/results/cpu-dw-2026-12-02-s7.md). Here, per image and
 * strip of R depthwise output rows, the expand GEMM computes just the input rows the strip
 * reads into a ring of rows sized for L2 (rows shared with the previous strip stay, not
 * recomputed), the depthwise row kernel (conv_dw.c) reads them from
 * there, and the project GEMM turns the strip's depthwise output (also in L2) into the
 * block's output rows, residual and activation in its store.
 *
 * Bits: the same GEMM (K blocks of the same size: the sums of an element do not depend on N
 * or on which columns a call covers), the same depthwise kernels on the same padded rows and
 * the same epilogues as the unfused FusedConvs: the output equals the unfused chain's bit for
 * bit (tests/c/test_fuse_irb.c).
 *
 * Smaller expanded tensors (they stay in L3: dt_cpu_irb_min_bytes, dt_cpu_irb_min_batch_bytes) and blocks whose weights
 * are large beside a strip run the unfused chain, stage by stage through the scratch: there
 * the strips cost more than they save, and the unfused convs split each product over the
 * threads, image by image. */
#include "backend/cpu/conv.h"
#include "backend/cpu/families.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels.h"
#include "backend/tactic.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "core/status.h"
#include "ops/defaults.h"
#include "ops/fused.h"
#include "ops/linalg.h"

#include <string.h>

/* An expanded tensor (the whole batch's, as the unfused expand conv writes it) of at least
 * this many bytes runs in strips; below, the unfused chain. Below it the round trip stays
 * in L3 and costs less than the strips' overheads: with 1 MB, mobilenet_v2's 56x56 blocks
 * (1.8 MB) ran 9-18% slower in strips, while seg_lraspp's 389x278 and 195x139 ones (28 and
 * 7.8 MB) ran 35-45% faster (per-layer profiler, 1 thread, Zen 4 with 1 MB of L2 and 32 MB
 * of L3 per core complex). */
int64_t dt_cpu_irb_min_bytes = 4 << 20;
/* The same over a batch of more than one image but fewer than the threads (the convs of the
 * chain split over the threads run each stage over the whole batch). With at least as many
 * images as threads, each thread runs whole images' chains one after another through one
 * image's E and D (session 13), so the rule above is per image: mobilenet_v2 at batch 8 on 1
 * thread, blocks 3-7 (expanded images of 1.8, 0.6 and 0.6 MB, 2-6 MB a batch) ran the strips
 * 0.03-0.20 ms per block slower than the chains once the depthwise kernel had become cheaper
 * (session 19: blocks 5, 6 1.07 -> 0.87 ms, 7 0.73 -> 0.65, 3 2.36 -> 2.25; batch 2: block 3
 * 0.59 -> 0.55; layer minima, alternating processes). Before session 13 the chain ran each
 * stage over the whole batch at any thread count, where the batch's round trip cost what one
 * image's did not: mobilenet_v2 at batch 2 in strips, blocks 1, 3 and 4 (1.6-1.8
 * MB an image) 0.81 -> 0.68, 1.45 -> 1.15 and 0.81 -> 0.74 ms on 1 thread, 0.64 -> 0.48 and
 * 1.11 -> 0.89 (blocks 1, 3) on 2; at batch 4 blocks 5, 6 (0.6 MB an image) 1.07 -> 0.91 and
 * 0.96 -> 0.90 (per-layer minima, 3 alternating rounds, load 3-4;
 * bench/results/cpu-cpumnv-2026-12-03-s11.md). At batch 1 the 4 MB stays: there 1 MB took
 * mobilenet_v2's block 1 from 0.28 to 0.32 ms, and 2 MB seg_lraspp's backbone.11 (777x555)
 * from 1.46 to 1.72. */
int64_t dt_cpu_irb_min_batch_bytes = 2 << 20;
/* The same for blocks without an expand, on one thread: their strips read X's rows in place
 * (no ring to fill), so the unfused chain's only gain, no copy, is gone. mobilenet_v2's block 1
 * (112x112, 32 channels, 1.6 MB an image) in strips at batch 1: 0.275 -> 0.248 and 0.277 ->
 * 0.248 ms (per-layer minima, 5 alternating rounds, load 3.1-4.0). On 2 threads at batch 1
 * (5 strips: 3 and 2 a thread, against the unfused chain's even split) three sets at load 4
 * gave -0.03 to +0.02 ms, so there the 4 MB stays; bench/results/cpu-cpumnv2-2026-12-03-s11.md. */
int64_t dt_cpu_irb_min_noexpand_bytes = 1 << 20;
/* Bytes of a strip's expanded rows and depthwise output: three quarters of that L2 (the
 * rest for the GEMM's packed panels and the input rows). seg_lraspp's 98x70 blocks (120
 * expanded channels, 5x5; with a 1 MB threshold) ran 13-24% slower than unfused with 384 KB (strips of 4 rows,
 * each reading its 4 halo rows again and the weights again) and 5-8% faster with 768 KB
 * (per-layer profiler, 1 thread, one noisy run each). */
int64_t dt_cpu_irb_strip_bytes = 768 << 10;
/* Strips run only where a strip's expanded rows are at least this many times the weights'
 * bytes (expand and project together). */
int64_t dt_cpu_irb_weight_ratio = 4;
/* Blocks without a project (their depthwise output leaves for an SE block) run the unfused
 * chain where a strip's expanded rows pass this many bytes (the L2 of a core): the strip then
 * overflows L2 (its rows are at least the kernel's reach plus 4 rows of wide planes, so the
 * budget above cannot hold them), and without a project to keep hot there is nothing
 * for the strips to save. 1.75 MB and 1 thread only at first (session 15: seg_lraspp
 * 1024x1024's 960-channel 5x5 dilation-2 blocks, 2.9 MB strips); at 777x555 (49x35 maps) the
 * same blocks' 1.6 MB strips (1.1 MB for the 672-channel one) passed, and with --bf16, whose
 * halved weights pass the weight rule, they ran in strips: backbone.13 / .14 / .15 1.92 / 3.19 /
 * 3.16 ms in strips against 1.40 / 2.32 / 2.32 unfused on 1 thread (whole model 28.8 -> 27.0
 * ms), 2.03 / 3.44 / 3.47 against 1.06 / 2.19 / 1.92 on 2 (per-layer minima, session 21). */
int64_t dt_cpu_irb_max_strip_bytes = 1 << 20;
/* ... and this many where the expanded tensor has at least dt_cpu_irb_far_bytes (an L3): the
 * unfused chain's round trip then goes to memory, and strips that overflow L2 a little still
 * save it. seg_lraspp 1600x1600, 1 thread, per-layer minima: backbone.4 (72 channels at
 * 400x400, 46 MB expanded, 1.3 MB strips) 5.8 ms in strips, 10.5 unfused; .14 and .15 (38 MB,
 * 4.6 MB strips) 21.6 unfused, 24.2 in strips; .11 and .12 (19 and 27 MB, under the L3)
 * 6.1 -> 5.0 and 10.1 -> 8.9 ms unfused (session 21). */
int64_t dt_cpu_irb_max_far_strip_bytes = 1792 << 10;
int64_t dt_cpu_irb_far_bytes = 32 << 20;

typedef struct dt_irb_params {
    dt_conv_attrs dw;
    dt_epilogue e_epi, d_epi, p_epi;
    bool expand, project, has_res, has_be, has_bd, has_bp;
    bool pooled;                /* a second output: Y's GlobalAveragePool (conv_pool.c) */
    int64_t c, ce, cp;
    const float *we, *wp;      /* inside this blob: packed for the GEMM (dt_gemm_pack_a_full) */
    /* Instead, for a layer marked `bf16` / `fp16`: packed in bfloat16 / float16
     * (dt_gemm_pack_a_half); we, wp NULL. A `bf16` layer keeps we, wp too: its tactics past
     * DT_CONV_ON_F32 run on them (dt_irb_variant; the builder's timer keeps the faster). */
    const uint16_t *we16, *wp16;
    bool fp16;                  /* we16, wp16 hold float16 (dt_gemm.fp16) */
    int64_t we_floats, wp_floats;   /* the packed weights' bytes / 4 (those a run reads) */
    int64_t we32_floats, wp32_floats;   /* a `bf16` layer's float32 ones, else 0 */
    /* The unfused chain's depthwise algorithm per profile and point (backend/tactic.h):
     * DT_CONV_DEPTHWISE or DT_CONV_DW16, 0 = heuristic; inside this blob, after the weights. */
    const int64_t *tactic;
    int64_t n_tactic;
    int tactic_points;
    float data[];
} dt_irb_params;

/* Whether a run takes the bfloat16 weights of a `bf16` layer (dt_irb_variant): its depthwise
 * may then round to bfloat16 too (dt_conv_args.dw_bf16). */
static inline bool dt_irb_dw_bf16(const dt_irb_params *p) { return !p->fp16 && (p->we16 || p->wp16); }

/* The block's output channels: the project's, or without one the depthwise's. */
static inline int64_t dt_irb_out_channels(const dt_irb_params *p) { return p->project ? p->cp : p->ce; }

/* A constant 1x1 weight [M, K, 1, 1] of input i. */
static ductile_status dt_irb_weight(const ductile_layer *L, int i, const char *name, const ductile_tensor **w)
{
    const ductile_tensor *t = L->n_in > i ? L->in[i] : NULL;
    if (!t || !t->data || t->dtype != DUCTILE_FLOAT32 || t->rank != 4 || t->dims[0] < 1 || t->dims[1] < 1 ||
        t->dims[2] != 1 || t->dims[3] != 1 || (size_t)dt_tensor_count(t) * sizeof(float) != t->nbytes)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input %d (%s) must be a float32 constant of shape [M, K, 1, 1]", i, name);
    *w = t;
    return DUCTILE_OK;
}

/* Floats' worth of M x K weights packed in bfloat16, 64-byte multiples so the project
 * weights after the expand ones start aligned as the float32 ones do. */
static int64_t dt_irb_bf16_floats(int64_t M, int64_t K)
{
    return (dt_gemm_packed_a_bf16_elems(M, K) + 31) / 32 * 16;
}

static ductile_status dt_irb_prepare(const ductile_layer *L, void **out)
{
    DT_TRY(dt_cpu_want_f32(L));
    dt_irb_params p = {0};
    /* The depthwise's activation keeps FusedConv's attribute names. */
    bool dw_clip = !strcmp(dt_attr_string(L, "activation", ""), "Clip");
    DT_TRY(dt_epilogue_act_read(L, "activation", dw_clip ? "act_min" : "act_alpha", dw_clip ? "act_max" : "act_beta", &p.d_epi));
    DT_TRY(dt_epilogue_act_read(L, "expand_activation", "expand_p0", "expand_p1", &p.e_epi));
    DT_TRY(dt_epilogue_act_read(L, "project_activation", "project_p0", "project_p1", &p.p_epi));
    dt_epilogue_lean(L, &p.d_epi);
    dt_epilogue_lean(L, &p.e_epi);
    dt_epilogue_lean(L, &p.p_epi);
    dt_conv_attrs_read(L, &p.dw);
    if (L->n_in <= DT_IRB_WD || !L->in[DT_IRB_WD])
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 3 (Wd) is required but was omitted");
    const ductile_tensor *we = NULL, *wp = NULL;
    /* No expand (We absent): the depthwise reads X, whose channels are its own. */
    p.expand = L->n_in > DT_IRB_WE && L->in[DT_IRB_WE];
    if (p.expand) {
        DT_TRY(dt_irb_weight(L, DT_IRB_WE, "We", &we));
        p.ce = we->dims[0];
        p.c = we->dims[1];
    } else {
        const ductile_tensor *wd = L->in[DT_IRB_WD];
        if (wd->rank != 4 || wd->dims[0] < 1)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 3 (Wd) must be a constant of shape [C, 1, KH, KW]");
        p.c = p.ce = wd->dims[0];
    }
    p.project = L->n_in > DT_IRB_WP && L->in[DT_IRB_WP];
    if (p.project) {
        DT_TRY(dt_irb_weight(L, DT_IRB_WP, "Wp", &wp));
        if (wp->dims[1] != p.ce)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 5 (Wp) has %lld input channels; We makes %lld",
                           (long long)wp->dims[1], (long long)p.ce);
        p.cp = wp->dims[0];
    }
    p.has_res = L->n_in > DT_IRB_R && L->in[DT_IRB_R];
    p.has_be = p.expand && L->n_in > DT_IRB_BE && L->in[DT_IRB_BE];
    p.has_bd = L->n_in > DT_IRB_BD && L->in[DT_IRB_BD];
    p.has_bp = p.project && L->n_in > DT_IRB_BP && L->in[DT_IRB_BP];
    p.pooled = L->n_out == 2;
    p.fp16 = dt_attr_int(L, "fp16", 0) != 0;
    bool bf16 = !p.fp16 && dt_attr_int(L, "bf16", 0) != 0, half = bf16 || p.fp16;
    if (bf16) DT_TRY(dt_cpu_bf16_check());
    if (p.fp16) DT_TRY(dt_cpu_fp16_check());
    int64_t e32 = p.expand ? dt_gemm_packed_a_floats(p.ce, p.c) : 0, p32 = p.project ? dt_gemm_packed_a_floats(p.cp, p.ce) : 0;
    p.we_floats = !p.expand ? 0 : half ? dt_irb_bf16_floats(p.ce, p.c) : e32;
    p.wp_floats = !p.project ? 0 : half ? dt_irb_bf16_floats(p.cp, p.ce) : p32;
    p.we32_floats = bf16 ? e32 : 0;
    p.wp32_floats = bf16 ? p32 : 0;
    const int64_t *tactic;
    DT_TRY(dt_tactic_attr(L, &tactic, &p.n_tactic, &p.tactic_points));
    for (int64_t i = 0; i < p.n_tactic; i++) {
        int64_t t = bf16 && tactic[i] > DT_CONV_ON_F32 ? tactic[i] - DT_CONV_ON_F32 : tactic[i];
        if (t != DT_CONV_AUTO && t != DT_CONV_DEPTHWISE && t != DT_CONV_DW16)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic'[%lld] = %lld is not a depthwise algorithm",
                           (long long)i, (long long)tactic[i]);
    }
    /* the tactic ids after the weights, at the next 8-byte boundary (data itself may sit 4
     * bytes past one: one float of room for it) */
    size_t bytes, wfloats = (size_t)(p.we_floats + p.wp_floats + p.we32_floats + p.wp32_floats);
    if (!dt_add_size(wfloats + 1, 2 * (size_t)p.n_tactic, &bytes) || !dt_mul_size(bytes, sizeof(float), &bytes) ||
        !dt_add_size(bytes, sizeof p, &bytes))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "the packed weights of %lld and %lld floats overflow size_t",
                       (long long)p.we_floats, (long long)p.wp_floats);
    dt_irb_params *q = dt_malloc(bytes);
    if (!q) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling a FusedInvertedResidual");
    *q = p;
    int64_t *ids = (int64_t *)(((uintptr_t)(q->data + wfloats) + 7) & ~(uintptr_t)7);
    if (p.n_tactic) memcpy(ids, tactic, (size_t)p.n_tactic * sizeof *ids);
    q->tactic = ids;
    if (half) {
        dt_half_round_fn round = p.fp16 ? dt_fp16_round : dt_bf16_round;
        if (p.expand) {
            dt_gemm_pack_a_half(we->data, p.c, p.ce, p.c, round, (uint16_t *)(void *)q->data);
            q->we16 = (const uint16_t *)(const void *)q->data;
        }
        if (p.project) {
            dt_gemm_pack_a_half(wp->data, p.ce, p.cp, p.ce, round, (uint16_t *)(void *)(q->data + p.we_floats));
            q->wp16 = (const uint16_t *)(const void *)(q->data + p.we_floats);
        }
    }
    if (!p.fp16) {
        float *w32 = q->data + (bf16 ? p.we_floats + p.wp_floats : 0);
        if (p.expand) {
            dt_gemm_pack_a_full(we->data, p.c, false, 1.0f, p.ce, p.c, w32);
            q->we = w32;
        }
        if (p.project) {
            dt_gemm_pack_a_full(wp->data, p.ce, false, 1.0f, p.cp, p.ce, w32 + e32);
            q->wp = w32 + e32;
        }
    }
    *out = q;
    return DUCTILE_OK;
}

/* Everything a run derives from the shapes. */
typedef struct dt_irb_plan {
    dt_conv_geom gd;            /* the depthwise conv */
    bool strips;                /* else the unfused chain */
    dt_conv_algo dw;            /* the unfused chain's depthwise algorithm */
    int64_t rows, n_strips;     /* output rows per strip; strips per image */
    int64_t in_rows;            /* the most input rows a strip reads */
    /* The pooled output's blocks of rows: the strips' rows, in strips or not, so that its
     * sums take one order whichever runs (conv_pool.c). */
    int64_t pool_rows;
    size_t e_off, pad_off, d_off, gemm_off, per_thread;   /* strips: one thread's scratch */
    /* strips with a pooled output: each strip's sums of its rows per output channel, after
     * the threads' scratch */
    size_t pool_off, pool_bytes;
    size_t unfused_e, unfused_d, conv_bytes;              /* unfused: E, D, the convs' scratch */
    /* unfused, on more than one thread: one thread's scratch for its images' convs
     * (conv_bytes holds `threads` of them); else 0 */
    size_t thread_conv_bytes;
} dt_irb_plan;

static size_t dt_irb_align(size_t n) { return (n + 63) & ~(size_t)63; }

static int64_t dt_irb_in_rows(const dt_conv_geom *g, int64_t rows)
{
    int64_t n = (rows - 1) * g->s[0] + (g->k[0] - 1) * g->d[0] + 1;
    return n < g->in[0] ? n : g->in[0];
}

/* The 1x1 convs of the unfused chain as geometries. */
static dt_conv_geom dt_irb_1x1(int64_t batch, int64_t c, int64_t m, int64_t h, int64_t w)
{
    dt_conv_geom g = {.spatial = 2, .batch = batch, .c = c, .m = m, .group = 1};
    g.in[0] = g.out[0] = h;
    g.in[1] = g.out[1] = w;
    for (int i = 0; i < 2; i++) g.k[i] = g.s[i] = g.d[i] = 1;
    return g;
}

/* The most scratch either depthwise algorithm needs for g (the builder times both within the
 * layer's scratch). */
static ductile_status dt_irb_dw_scratch(const dt_conv_geom *g, const dt_conv_args *a, int threads, size_t *bytes)
{
    size_t b;
    DT_TRY(dt_cpu_conv_scratch(g, a, DT_CONV_DEPTHWISE, threads, bytes));
    DT_TRY(dt_cpu_conv_scratch(g, a, DT_CONV_DW16, threads, &b));
    if (b > *bytes) *bytes = b;
    return DUCTILE_OK;
}

/* The tactic a run takes: the one the builder is timing (tactic > 0), else the stored one for
 * (profile, point). */
static int64_t dt_irb_tactic(const dt_irb_params *p, int profile, int point, int tactic)
{
    return tactic > 0 ? tactic : dt_tactic_at(p->tactic, p->n_tactic, p->tactic_points, profile, point);
}

/* The params a run of tactic t reads: a `bf16` layer's float32 weights for t past
 * DT_CONV_ON_F32, else its bfloat16 ones (we, wp or we16, wp16 NULL); *dw: t's depthwise id. */
static dt_irb_params dt_irb_variant(const dt_irb_params *p, int64_t t, int64_t *dw)
{
    dt_irb_params v = *p;   /* the header: the weights stay in p's blob */
    bool f32 = p->we32_floats + p->wp32_floats > 0 && t > DT_CONV_ON_F32;
    *dw = f32 ? t - DT_CONV_ON_F32 : t;
    if (f32) {
        v.e_epi.act = dt_act_exact(v.e_epi.act);
        v.d_epi.act = dt_act_exact(v.d_epi.act);
        v.p_epi.act = dt_act_exact(v.p_epi.act);
        v.we16 = v.wp16 = NULL;
        v.we_floats = p->we32_floats;
        v.wp_floats = p->wp32_floats;
    } else if (p->we16 || p->wp16) {
        v.we = v.wp = NULL;
    }
    return v;
}

/* The depthwise algorithm of the unfused chain for the depthwise id t (0: the heuristic). */
static dt_conv_algo dt_irb_dw_algo(const dt_conv_geom *g, int64_t t)
{
    if (t == DT_CONV_DW16 && dt_cpu_dw16_applies(g)) return DT_CONV_DW16;
    if (t == DT_CONV_DEPTHWISE) return DT_CONV_DEPTHWISE;
    return dt_cpu_dw16_pays(g) ? DT_CONV_DW16 : DT_CONV_DEPTHWISE;
}

/* The most output rows a strip holds (a multiple of 4, the depthwise kernel's row block, or
 * all) whose expanded input rows and depthwise output fit the strip budget; of the geometry
 * alone. */
static int64_t dt_irb_strip_rows(const dt_irb_params *p, const dt_conv_geom *g)
{
    int64_t per_row_e = p->ce * g->in[1] * (int64_t)sizeof(float) * g->s[0];
    int64_t per_row_d = p->project ? p->ce * g->out[1] * (int64_t)sizeof(float) : 0;
    int64_t halo = p->ce * g->in[1] * (int64_t)sizeof(float) * ((g->k[0] - 1) * g->d[0] + 1);
    int64_t r = (dt_cpu_irb_strip_bytes - halo) / (per_row_e + per_row_d);
    r = r < 4 ? 4 : r / 4 * 4;
    return r > g->out[0] ? g->out[0] : r;
}

static ductile_status dt_irb_make_plan(const dt_irb_params *p, const dt_view *in, int threads, dt_irb_plan *pl)
{
    memset(pl, 0, sizeof *pl);
    const dt_view *x = &in[DT_IRB_X];
    if (x->rank != 4 || x->dims[1] != p->c)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (X) must be [N, %lld, H, W]", (long long)p->c);
    dt_view xd = *x, wd = in[DT_IRB_WD];
    xd.dims[1] = p->ce;
    DT_TRY(dt_conv_geometry_of(&p->dw, &xd, &wd, &pl->gd));
    const dt_conv_geom *g = &pl->gd;
    if (!dt_cpu_conv_is_depthwise(g) || g->spatial != 2)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 3 (Wd) is not a 2-D depthwise conv of the %lld expanded channels",
                       (long long)p->ce);
    size_t eimg;
    if (!dt_mul_size((size_t)p->ce, (size_t)g->in[0], &eimg) || !dt_mul_size(eimg, (size_t)g->in[1], &eimg) ||
        !dt_mul_size(eimg, sizeof(float), &eimg))
        return dt_fail(DUCTILE_ERR_SHAPE, "the expanded image of %lld channels overflows size_t", (long long)p->ce);
    size_t etotal;
    /* the images a chain's stages run over at once: one where the threads take whole images */
    int64_t chain_images = g->batch >= threads ? 1 : g->batch;
    int64_t min_bytes = chain_images > 1 ? dt_cpu_irb_min_batch_bytes : dt_cpu_irb_min_bytes;
    if (!p->expand && threads == 1 && dt_cpu_irb_min_noexpand_bytes < min_bytes) min_bytes = dt_cpu_irb_min_noexpand_bytes;
    pl->strips = dt_mul_size(eimg, (size_t)chain_images, &etotal) && etotal >= (size_t)min_bytes && g->out[0] > 1;
    pl->pool_rows = dt_irb_strip_rows(p, g);
    if (pl->strips) {
        pl->rows = pl->pool_rows;
        pl->in_rows = dt_irb_in_rows(g, pl->rows);
        pl->n_strips = (g->out[0] + pl->rows - 1) / pl->rows;
        /* Every strip reads the weights again (from L2 at best): where they are not small
         * beside a strip's expanded rows, strips lose more than they save (seg_lraspp's
         * 960-channel blocks at 49x35: 1.2 MB of weights, 17% slower in strips). */
        int64_t wbytes = (p->we_floats + p->wp_floats) * (int64_t)sizeof(float);
        int64_t sbytes = p->ce * pl->in_rows * g->in[1] * (int64_t)sizeof(float);
        pl->strips = wbytes * dt_cpu_irb_weight_ratio <= sbytes;
        int64_t most = etotal >= (size_t)dt_cpu_irb_far_bytes ? dt_cpu_irb_max_far_strip_bytes : dt_cpu_irb_max_strip_bytes;
        if (!p->project && sbytes > most) pl->strips = false;
    }
    if (!pl->strips) {
        size_t ne, nd = 0, b;
        if (!dt_mul_size(eimg, (size_t)g->batch, &ne))
            return dt_fail(DUCTILE_ERR_SHAPE, "the expanded tensor overflows size_t");
        if (p->project && (!dt_mul_size((size_t)(g->batch * p->ce), (size_t)(g->out[0] * g->out[1]), &nd) ||
                           !dt_mul_size(nd, sizeof(float), &nd)))
            return dt_fail(DUCTILE_ERR_SHAPE, "the depthwise output overflows size_t");
        pl->unfused_e = p->expand ? dt_irb_align(ne) : 0;   /* no expand: the depthwise reads X */
        pl->unfused_d = dt_irb_align(nd);
        /* each conv's scratch with its own weights (float32 or bfloat16 GEMM buffers), for
         * one image (the chain runs image by image), on the pool's threads (the images left
         * over after the threads' shares) and, on more than one thread, on one thread (each
         * thread's images: dt_irb_side; or its channels of one image: dt_irb_expand_dw) */
        dt_conv_args a = {.w_packed = p->we, .w_bf16 = p->we16, .w_fp16 = p->fp16},
                     ap = {.w_packed = p->wp, .w_bf16 = p->wp16, .w_fp16 = p->fp16};
        dt_conv_geom ge = dt_irb_1x1(1, p->c, p->ce, g->in[0], g->in[1]), g1 = *g;
        dt_conv_geom gp = dt_irb_1x1(1, p->ce, p->cp, g->out[0], g->out[1]);
        g1.batch = 1;
        size_t m[2] = {0, 0};
        for (int k = 0; k < (threads > 1 ? 2 : 1); k++) {
            int t = k ? 1 : threads;
            if (p->expand) DT_TRY(dt_cpu_conv_scratch(&ge, &a, DT_CONV_IM2COL, t, &m[k]));
            DT_TRY(dt_irb_dw_scratch(&g1, &a, t, &b));
            if (b > m[k]) m[k] = b;
            if (p->project) DT_TRY(dt_cpu_conv_scratch(&gp, &ap, DT_CONV_IM2COL, t, &b));
            if (p->project && b > m[k]) m[k] = b;
        }
        pl->conv_bytes = m[0];
        if (threads > 1) {
            pl->thread_conv_bytes = dt_irb_align(m[1] ? m[1] : 64);
            if (!dt_mul_size(pl->thread_conv_bytes, (size_t)threads, &b))
                return dt_fail(DUCTILE_ERR_SHAPE, "FusedInvertedResidual scratch overflows size_t");
            if (b > pl->conv_bytes) pl->conv_bytes = b;
        }
        return DUCTILE_OK;
    }
    int64_t r = pl->rows;
    size_t ebytes = p->expand ? dt_irb_align((size_t)(p->ce * pl->in_rows * g->in[1]) * sizeof(float)) : 0;
    size_t pbytes = dt_irb_align(dt_cpu_dw_strip_pad_bytes(g, r));
    size_t dbytes = p->project ? dt_irb_align((size_t)(p->ce * r * g->out[1]) * sizeof(float)) : 0;
    dt_gemm ge = {.M = p->ce, .N = pl->in_rows * g->in[1], .K = p->c, .A_packed = p->we, .A_bf16 = p->we16};
    size_t gb = p->expand ? dt_gemm_serial_scratch_bytes(&ge) : 0;
    if (p->project) {
        dt_gemm gp = {.M = p->cp, .N = r * g->out[1], .K = p->ce, .A_packed = p->wp, .A_bf16 = p->wp16};
        size_t b = dt_gemm_serial_scratch_bytes(&gp);
        if (b > gb) gb = b;
    }
    pl->e_off = 0;
    pl->pad_off = ebytes;
    pl->d_off = pl->pad_off + pbytes;
    pl->gemm_off = pl->d_off + dbytes;
    pl->per_thread = pl->gemm_off + dt_irb_align(gb);
    if (p->pooled) {
        size_t n;
        if (!dt_mul_size((size_t)(g->batch * pl->n_strips), (size_t)dt_irb_out_channels(p), &n) ||
            !dt_mul_size(n, sizeof(float), &n) || !dt_mul_size(pl->per_thread, (size_t)threads, &pl->pool_off))
            return dt_fail(DUCTILE_ERR_SHAPE, "FusedInvertedResidual's pooled sums overflow size_t");
        pl->pool_bytes = dt_irb_align(n);
    }
    return DUCTILE_OK;
}

static ductile_status dt_irb_bytes(const dt_irb_plan *pl, int threads, size_t *bytes)
{
    bool ok = pl->strips ? dt_mul_size(pl->per_thread, (size_t)threads, bytes) && dt_add_size(*bytes, pl->pool_bytes, bytes)
                         : dt_add_size(pl->unfused_e, pl->unfused_d, bytes) && dt_add_size(*bytes, pl->conv_bytes, bytes);
    if (!ok) return dt_fail(DUCTILE_ERR_SHAPE, "FusedInvertedResidual scratch overflows size_t");
    return DUCTILE_OK;
}

static ductile_status dt_irb_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                     size_t *bytes)
{
    (void)out;
    const dt_irb_params *p = params;
    *bytes = 0;
    /* Either weights of a `bf16` layer (the builder times both). */
    for (int f32 = 0; f32 < (p->we32_floats + p->wp32_floats > 0 ? 2 : 1); f32++) {
        int64_t dw;
        dt_irb_params v = dt_irb_variant(p, f32 ? DT_CONV_ON_F32 + DT_CONV_DEPTHWISE : 0, &dw);
        dt_irb_plan pl;
        size_t b;
        if (dt_irb_make_plan(&v, in, threads, &pl)) return DUCTILE_OK;  /* the run names the fault */
        DT_TRY(dt_irb_bytes(&pl, threads, &b));
        if (b > *bytes) *bytes = b;
    }
    return DUCTILE_OK;
}

typedef struct dt_irb_job {
    const dt_irb_params *p;
    const dt_irb_plan *pl;
    const float *x, *be, *wd, *bd, *bp, *res;
    float *y;
    char *scratch;
    float *sums;    /* with a pooled output: the strips' sums (dt_irb_plan.pool_off), else NULL */
} dt_irb_job;

/* With a pooled output: strip `it`'s sums of its output rows [oy0, oy1), per output channel,
 * while they are in cache. */
static void dt_irb_strip_sums(const dt_irb_job *j, int64_t it, int64_t oy0, int64_t oy1)
{
    if (!j->sums) return;
    const dt_conv_geom *g = &j->pl->gd;
    int64_t m_out = dt_irb_out_channels(j->p), b = it / j->pl->n_strips, ow = g->out[1];
    for (int64_t m = 0; m < m_out; m++)
        j->sums[it * m_out + m] = dt_cpu_pool_block(j->y + ((b * m_out + m) * g->out[0] + oy0) * ow, (oy1 - oy0) * ow);
}

/* Items [begin, end): strip i % n_strips of image i / n_strips. Consecutive strips of an
 * image keep the expanded rows they share. */
static void dt_irb_part(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_irb_job *j = arg;
    const dt_irb_params *p = j->p;
    const dt_irb_plan *pl = j->pl;
    const dt_conv_geom *g = &pl->gd;
    char *s = j->scratch + (size_t)tid * pl->per_thread;
    float *ebuf = (float *)(s + pl->e_off), *pad = (float *)(s + pl->pad_off), *dbuf = (float *)(s + pl->d_off);
    void *gs = s + pl->gemm_off;
    int64_t ih = g->in[0], iw = g->in[1], oh = g->out[0], ow = g->out[1];
    int64_t ld = pl->in_rows * iw, kk = g->k[0] * g->k[1];
    int64_t m_out = dt_irb_out_channels(p);
    /* Rows of the expanded image held in ebuf: [have_lo, have_hi) of image have_img. */
    int64_t have_img = -1, have_lo = 0, have_hi = 0;
    memset(pad, 0, pl->d_off - pl->pad_off);
    for (int64_t it = begin; it < end; it++) {
        int64_t b = it / pl->n_strips, oy0 = it % pl->n_strips * pl->rows;
        int64_t oy1 = oy0 + pl->rows < oh ? oy0 + pl->rows : oh;
        int64_t lo = oy0 * g->s[0] - g->pb[0], hi = (oy1 - 1) * g->s[0] - g->pb[0] + (g->k[0] - 1) * g->d[0] + 1;
        if (lo < 0) lo = 0;
        if (hi > ih) hi = ih;
        if (hi < lo) hi = lo;
        /* Rows live in a ring of in_rows rows per channel (row r at r % in_rows): the rows
         * this strip shares with the previous one stay where they are. */
        int64_t from = b == have_img && lo >= have_lo && lo <= have_hi && hi >= have_hi ? have_hi : lo;
        while (p->expand && from < hi) {
            int64_t slot = from % pl->in_rows, n = pl->in_rows - slot < hi - from ? pl->in_rows - slot : hi - from;
            dt_gemm gm = {
                .M = p->ce, .N = n * iw, .K = p->c, .alpha = 1.0f, .beta = 0.0f,
                .A_packed = p->we, .A_bf16 = p->we16, .fp16 = p->fp16, .lda = p->c,
                .B = j->x + (b * p->c * ih + from) * iw, .ldb = ih * iw,
                .C = ebuf + slot * iw, .ldc = ld,
                .bias = j->be, .epi = &p->e_epi,
            };
            dt_sgemm_serial_in(&gm, gs);
            from += n;
        }
        have_img = b, have_lo = lo, have_hi = hi;
        int64_t px = (oy1 - oy0) * ow;
        for (int64_t c = 0; c < p->ce; c++) {
            float *dst = p->project ? dbuf + c * px : j->y + ((b * p->ce + c) * oh + oy0) * ow;
            /* Without an expand the depthwise reads X's plane in place (a ring of all its rows). */
            const float *src = p->expand ? ebuf + c * ld : j->x + (b * p->c + c) * ih * iw;
            dt_cpu_dw_strip(g, src, p->expand ? pl->in_rows : ih, j->wd + c * kk, j->bd ? j->bd[c] : 0.0f, &p->d_epi,
                            NULL, dst, oy0, oy1, pad);
        }
        if (!p->project) {
            dt_irb_strip_sums(j, it, oy0, oy1);
            continue;
        }
        int64_t yoff = (b * m_out * oh + oy0) * ow;
        dt_epilogue epi = p->p_epi;
        epi.res = j->res ? j->res + yoff : NULL;
        /* B is the strip's depthwise output, rows px apart in this thread's scratch (in L2):
         * read in place, as a packed copy would be (mobilenet_v2's first block: -5%). */
        dt_gemm gm = {
            .M = p->cp, .N = px, .K = p->ce, .alpha = 1.0f, .beta = 0.0f,
            .A_packed = p->wp, .A_bf16 = p->wp16, .fp16 = p->fp16, .lda = p->ce,
            .B = dbuf, .ldb = px, .direct_b = true,
            .C = j->y + yoff, .ldc = oh * ow,
            .bias = j->bp, .epi = &epi,
        };
        dt_sgemm_serial_in(&gm, gs);
        dt_irb_strip_sums(j, it, oy0, oy1);
    }
}

typedef struct dt_irb_ed_job {
    const dt_irb_params *p;
    const dt_irb_plan *pl;
    const float *x, *wd, *be, *bd;  /* the image, the depthwise weights, the biases (or NULL) */
    float *e, *d;                   /* the image's expanded tensor and depthwise output */
    float *pool;                    /* the image's pooled depthwise output (no project), or NULL */
    char *cs;                       /* thread t's convs' scratch at t * thread_conv_bytes */
    int status;                     /* the first failure, or DUCTILE_OK */
    /* Channels a unit of the loop: 8 (a panel of the packed weights), or 16 where the
     * depthwise rounds to bfloat16 (dt_irb_dw_bf16): its 16-channel kernel rounds the channels
     * of whole blocks of 16 and the row kernels take the rest in float32, so a part must start
     * on a block, or the thread count would change which channels round. */
    int64_t unit;
} dt_irb_ed_job;

/* Expanded channels [unit begin, unit end) of one image: their rows of the expand GEMM (whole
 * 8-row panels of the packed weights), then their depthwise planes, which read only those
 * rows: no join between the two, and each thread's rows stay in its core's cache. */
static void dt_irb_expand_dw(void *arg, int64_t begin, int64_t end, int tid)
{
    dt_irb_ed_job *j = arg;
    const dt_irb_params *p = j->p;
    const dt_conv_geom *g = &j->pl->gd;
    int64_t c0 = begin * j->unit, c1 = end * j->unit < p->ce ? end * j->unit : p->ce;
    int64_t ipx = g->in[0] * g->in[1], opx = g->out[0] * g->out[1], kk = g->k[0] * g->k[1];
    char *cs = j->cs + (size_t)tid * j->pl->thread_conv_bytes;
    dt_conv_geom ge = dt_irb_1x1(1, p->c, c1 - c0, g->in[0], g->in[1]), gd = *g;
    gd.batch = 1;
    gd.c = gd.m = gd.group = c1 - c0;
    dt_epilogue ee = p->e_epi, de = p->d_epi;
    /* rows c0.. of the packed weights: float32 panels of c floats a row, bfloat16 ones of c
     * rounded up to pairs */
    dt_conv_args a = {.x = j->x, .w_packed = p->we ? p->we + c0 * p->c : NULL,
                      .w_bf16 = p->we ? NULL : p->we16 + c0 * ((p->c + 1) & ~(int64_t)1),
                      .bias = j->be ? j->be + c0 : NULL, .epi = &ee, .y = j->e + c0 * ipx, .scratch = cs};
    ductile_status st = dt_cpu_conv_run_algo(&ge, &a, DT_CONV_IM2COL, NULL);
    a = (dt_conv_args){.x = j->e + c0 * ipx, .w = j->wd + c0 * kk, .bias = j->bd ? j->bd + c0 : NULL, .epi = &de,
                       .y = j->d + c0 * opx, .pool = j->pool ? j->pool + c0 : NULL, .pool_rows = j->pl->pool_rows,
                       .scratch = cs, .dw_bf16 = dt_irb_dw_bf16(p)};
    if (st == DUCTILE_OK) st = dt_cpu_conv_run_algo(&gd, &a, j->pl->dw, NULL);
    if (st != DUCTILE_OK) __atomic_store_n(&j->status, (int)st, __ATOMIC_RELAXED);
}

/* Image b of the unfused chain: the unfused FusedConvs' convs, one after another, through E
 * and D at image `slot`'s offset in the whole batch's (slot <= b) and the convs' scratch cs,
 * on `pool` (NULL: on this thread). On a pool (float32 or bfloat16 weights; float16 untested
 * here, no AVX512-FP16): expand and depthwise in one loop over the expanded channels
 * (dt_irb_expand_dw), then the project split over the threads. */
static ductile_status dt_irb_image(const dt_irb_params *p, const dt_irb_plan *pl, const dt_view *in, dt_view *out,
                                   char *s, int64_t b, int64_t slot, void *cs, dt_pool *pool)
{
    dt_conv_geom g = pl->gd;
    g.batch = 1;
    int64_t ipx = g.in[0] * g.in[1], opx = g.out[0] * g.out[1];
    int64_t yo = b * dt_irb_out_channels(p) * opx;
    const float *x = (const float *)in[DT_IRB_X].data + b * p->c * ipx;
    float *e = p->expand ? (float *)s + slot * p->ce * ipx : NULL;
    float *y = (float *)out[0].data + yo;
    float *d = p->project ? (float *)(s + pl->unfused_e) + slot * p->ce * opx : y;
    /* the image's pooled output, taken by the chain's last conv */
    float *pooled = p->pooled ? (float *)out[1].data + b * dt_irb_out_channels(p) : NULL;
    dt_conv_geom ge = dt_irb_1x1(1, p->c, p->ce, g.in[0], g.in[1]);
    dt_conv_geom gp = dt_irb_1x1(1, p->ce, p->cp, g.out[0], g.out[1]);
    dt_epilogue ee = p->e_epi, de = p->d_epi;
    const float *be = p->has_be ? in[DT_IRB_BE].data : NULL, *bd = p->has_bd ? in[DT_IRB_BD].data : NULL;
    /* (A last part of one channel would not be a depthwise conv: ce = unit k + 1 keeps the split.) */
    int64_t unit = dt_irb_dw_bf16(p) ? 16 : DT_GEMM_MR;
    if ((p->we || (p->we16 && !p->fp16)) && dt_pool_threads(pool) > 1 && p->ce % unit != 1) {
        dt_irb_ed_job j = {p, pl, x, in[DT_IRB_WD].data, be, bd, e, d, p->project ? NULL : pooled, cs, DUCTILE_OK,
                           unit};
        dt_parallel_for(pool, (p->ce + unit - 1) / unit, 1, dt_irb_expand_dw, &j);
        if (j.status != DUCTILE_OK)
            return dt_fail((ductile_status)j.status, "FusedInvertedResidual: the expand or depthwise conv failed");
    } else {
        dt_conv_args a = {.x = x, .w_packed = p->we, .w_bf16 = p->we16, .w_fp16 = p->fp16, .bias = be, .epi = &ee,
                          .y = e, .scratch = cs};
        if (p->expand) DT_TRY(dt_cpu_conv_run_algo(&ge, &a, DT_CONV_IM2COL, pool));
        a = (dt_conv_args){.x = p->expand ? e : x, .w = in[DT_IRB_WD].data, .bias = bd, .epi = &de, .y = d,
                           .pool = p->project ? NULL : pooled, .pool_rows = pl->pool_rows, .scratch = cs,
                           .dw_bf16 = dt_irb_dw_bf16(p)};
        DT_TRY(dt_cpu_conv_run_algo(&g, &a, pl->dw, pool));
    }
    if (!p->project) return DUCTILE_OK;
    dt_epilogue pe = p->p_epi;
    pe.res = p->has_res ? (const float *)in[DT_IRB_R].data + yo : NULL;
    dt_conv_args a = {.x = d, .w_packed = p->wp, .w_bf16 = p->wp16, .w_fp16 = p->fp16,
                      .bias = p->has_bp ? in[DT_IRB_BP].data : NULL, .epi = &pe, .y = y, .pool = pooled,
                      .pool_rows = pl->pool_rows, .scratch = cs};
    return dt_cpu_conv_run_algo(&gp, &a, DT_CONV_IM2COL, pool);
}

/* Images [b0, b0 + nb) of the unfused chain, one after another, all through image b0's E and D:
 * one image's E and D stay in L2 between the stages and for the next image. Not one product
 * over the images' pixels (batch 2, 1 thread, against the 1x1s batched over both images at
 * 14x14 and 7x7: blocks 7-17 -0.008 to -0.050 ms each, 0.2-0.25 ms in all; batch 8: the 7x7
 * blocks 14-17 -1.06 ms in all; bench/results/cpu-cpumnv3-2026-12-03-s13.md): the batched
 * product's E and D over the images no longer fit in L2 beside the weights. Each conv
 * computes every value as it does alone: the same bits either way. */
static ductile_status dt_irb_chain(const dt_irb_params *p, const dt_irb_plan *pl, const dt_view *in, dt_view *out,
                                   char *s, int64_t b0, int64_t nb, void *cs, dt_pool *pool)
{
    for (int64_t b = b0; b < b0 + nb; b++) DT_TRY(dt_irb_image(p, pl, in, out, s, b, b0, cs, pool));
    return DUCTILE_OK;
}

typedef struct dt_irb_side_job {
    const dt_irb_params *p;
    const dt_irb_plan *pl;
    const dt_view *in;
    dt_view *out;
    char *s;
    int status;             /* the first failure, or DUCTILE_OK */
} dt_irb_side_job;

/* Images [begin, end) as one chain on this thread, with this thread's convs' scratch. */
static void dt_irb_side(void *arg, int64_t begin, int64_t end, int tid)
{
    dt_irb_side_job *j = arg;
    const dt_irb_plan *pl = j->pl;
    char *cs = j->s + pl->unfused_e + pl->unfused_d + (size_t)tid * pl->thread_conv_bytes;
    ductile_status st = dt_irb_chain(j->p, pl, j->in, j->out, j->s, begin, end - begin, cs, NULL);
    if (st != DUCTILE_OK) __atomic_store_n(&j->status, (int)st, __ATOMIC_RELAXED);
}

/* Small planes: the unfused chain. With at least as many images as threads, whole images'
 * chains run side by side, the same number on each thread (one fork per layer instead of
 * one per conv and image, and each image's expanded tensor stays in its core's cache); the
 * images left over run one conv at a time, each conv split over the threads. Either way each
 * conv computes every value as it does alone (the GEMM's sums do not depend on the columns a
 * call covers): the bits do not depend on the thread count (test_fuse_irb). */
static ductile_status dt_irb_unfused(const dt_irb_params *p, const dt_irb_plan *pl, const dt_view *in, dt_view *out,
                                     dt_exec *ex)
{
    int threads = dt_pool_threads(ex->pool);
    int64_t batch = pl->gd.batch, side = threads > 1 ? batch / threads * threads : 0;
    if (side > 0) {
        dt_irb_side_job j = {p, pl, in, out, ex->scratch, DUCTILE_OK};
        dt_parallel_for(ex->pool, side, side / threads, dt_irb_side, &j);
        if (j.status != DUCTILE_OK)
            return dt_fail((ductile_status)j.status, "FusedInvertedResidual: an image's unfused chain failed");
    }
    if (side == batch) return DUCTILE_OK;
    char *s = ex->scratch;
    return dt_irb_chain(p, pl, in, out, s, side, batch - side, s + pl->unfused_e + pl->unfused_d, ex->pool);
}

static ductile_status dt_irb_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int64_t dw;
    dt_irb_params v = dt_irb_variant(params, dt_irb_tactic(params, ex->profile, ex->point, ex->tactic), &dw);
    const dt_irb_params *p = &v;
    int threads = dt_pool_threads(ex->pool);
    dt_irb_plan pl;
    size_t bytes;
    DT_TRY(dt_irb_make_plan(p, in, threads, &pl));
    DT_TRY(dt_irb_bytes(&pl, threads, &bytes));
    pl.dw = dt_irb_dw_algo(&pl.gd, dw);
    if (!ex->scratch || ex->scratch_bytes < bytes)
        return dt_fail(DUCTILE_ERR_INTERNAL, "FusedInvertedResidual: %zu bytes of scratch, %zu needed", ex->scratch_bytes,
                       bytes);
    if (!pl.strips) return dt_irb_unfused(p, &pl, in, out, ex);
    dt_irb_job j = {
        .p = p, .pl = &pl, .x = in[DT_IRB_X].data, .be = p->has_be ? in[DT_IRB_BE].data : NULL,
        .wd = in[DT_IRB_WD].data, .bd = p->has_bd ? in[DT_IRB_BD].data : NULL,
        .bp = p->has_bp ? in[DT_IRB_BP].data : NULL,
        .res = p->has_res ? in[DT_IRB_R].data : NULL, .y = out[0].data, .scratch = ex->scratch,
        .sums = p->pooled ? (float *)(ex->scratch + pl.pool_off) : NULL,
    };
    dt_parallel_for(ex->pool, pl.gd.batch * pl.n_strips, 1, dt_irb_part, &j);
    if (!p->pooled) return DUCTILE_OK;
    int64_t m_out = dt_irb_out_channels(p), per_image = pl.n_strips * m_out;
    float *pool = out[1].data;
    for (int64_t b = 0; b < pl.gd.batch; b++)
        for (int64_t m = 0; m < m_out; m++)
            pool[b * m_out + m] = dt_cpu_pool_blocks(j.sums + b * per_image + m, pl.n_strips, m_out,
                                                     pl.gd.out[0] * pl.gd.out[1]);
    return DUCTILE_OK;
}

/* The path dt_irb_run takes, for profiles (backend.h: dt_backend.kernel_path). */
const char *dt_cpu_fused_irb_path(const void *params, const dt_view *in, int profile, int point, int threads)
{
    int64_t dw;
    dt_irb_params v = dt_irb_variant(params, dt_irb_tactic(params, profile, point, 0), &dw);
    const dt_irb_params *p = &v;
    dt_irb_plan pl;
    if (dt_irb_make_plan(p, in, threads, &pl)) return NULL;
    bool f16 = p->fp16 && (p->we16 || p->wp16), b16 = !f16 && (p->we16 || p->wp16);
    if (pl.strips) return f16 ? "strips.fp16" : b16 ? "strips.bf16" : "strips";
    bool dw16 = dt_irb_dw_algo(&pl.gd, dw) == DT_CONV_DW16;
    if (f16) return dw16 ? "unfused.dw16.fp16" : "unfused.fp16";
    if (b16) return dw16 ? "unfused.dw16.bf16" : "unfused.bf16";
    return dw16 ? "unfused.dw16" : "unfused";
}

int dt_cpu_fused_irb_tactics(const ductile_layer *L, const dt_view *in, int *ids, int cap)
{
    if (L->n_in <= DT_IRB_WD || cap < 2) return 0;
    dt_conv_attrs at;
    dt_conv_attrs_read(L, &at);
    dt_view xd = in[DT_IRB_X];
    xd.dims[1] = in[DT_IRB_WD].dims[0];
    dt_conv_geom g;
    if (xd.rank != 4 || dt_conv_geometry_of(&at, &xd, &in[DT_IRB_WD], &g)) return 0;
    /* Timed only where no measurement decided it: dt_cpu_dw16_pays takes rows of up to 8
     * outputs (1.6x faster on 7x7), the row kernels were 10-30% faster from 14 (mobilenet_v2's
     * 14x14, 28x28) but not always on 5x5 (dt_cpu_dw16_applies: rows up to 47 timed). The
     * layer's time is mostly its 1x1s: on a loaded machine 3 timed runs of it picked either
     * algorithm on the 14x14 blocks, 0.01 ms a block slower with dw16. */
    int n = 0;
    if (dt_cpu_dw16_applies(&g) && g.out[1] > 8 && (g.out[1] < 14 || g.k[0] == 5)) {
        ids[n++] = DT_CONV_DEPTHWISE;
        ids[n++] = DT_CONV_DW16;
    }
    /* A `bf16` layer: each (or the heuristic's) on the float32 weights too. */
    if (dt_attr_int(L, "bf16", 0) && !dt_attr_int(L, "fp16", 0)) {
        if (!n) ids[n++] = dt_irb_dw_algo(&g, 0);
        for (int i = 0, nb = n; i < nb && n < cap; i++) ids[n++] = ids[i] + DT_CONV_ON_F32;
    }
    return n;
}

const dt_kernel dt_cpu_fused_irb_kernel = {.prepare = dt_irb_prepare, .scratch = dt_irb_scratch, .run = dt_irb_run};
