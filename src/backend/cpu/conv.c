/* Convolution as GEMM: per image and group, Y[M, OH*OW] = W[M, C*KH*KW] * col[C*KH*KW, OH*OW].
 * col is never stored: the GEMM's B packer reads it straight from the image (im2col done
 * panel by panel), so the packed panel (in L2) is the only copy. A 1x1, stride-1, unpadded
 * conv needs no im2col at all: B is the image itself. */
#include "backend/cpu/conv.h"
#include "core/alloc.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/winograd.h"
#include "core/status.h"

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <cpuid.h>
#include <string.h>

/* Every 1x1 conv (stride 1, unpadded) reads B, the image, in place (dt_gemm.direct_b), with
 * no help ("near" B) over images of at most this many pixels: a K block of a panel then
 * spans few pages; over larger images the strided rows cost more (TLB, prefetch) than
 * packing saves... */
enum { DT_CONV_DIRECT_B_PX = 1024 };
/* ... except for few output channels (at most DT_CONV_DIRECT_B_M per group) over images up
 * to DT_CONV_DIRECT_B_M_PX: packing B copies the whole image for only that many rows of A
 * to reuse. Measured (bench/bench_conv_layers.c, 1 thread, best of runs): mobilenet's
 * projections 144->24 and 96->24 at 56x56 77 -> 97..107 GFLOP/s, 32->16 at 112x112
 * 62..74 -> 78..92, resnet50's 256->64 at 56x56 86..88 -> 100..107; 128 and more rows gained
 * nothing, and a 195x195 image (38k pixels) lost 5..30%. */
enum { DT_CONV_DIRECT_B_M = 64, DT_CONV_DIRECT_B_M_PX = 16384 };
/* ... and for any number of output channels where the input channels fit one K block of the
 * GEMM (K <= 256: each thread reads each B element from memory once, the other row strips
 * find it in L2) over images up to DT_CONV_DIRECT_B_K_PX. */
enum { DT_CONV_DIRECT_B_K = DT_GEMM_KC, DT_CONV_DIRECT_B_K_PX = 8192 };
/* The rest read B in place too, with the first row strip prefetching the next panel
 * (dt_gemm.prefetch_b): in place alone, the strided rows lost to packing (5-30% at 195x195),
 * prefetched they beat it. Measured against packing (bench_conv_layers, 1 thread, best of 3
 * interleaved runs on a loaded machine), the two rules above this one together:
 * seg_lraspp's 64->24 at 195x195 73 -> 92 GFLOP/s, 960->128 and 960->160 at 41x41 92 -> 109
 * and 97 -> 102, 40->120 at 83x83 93 -> 95; resnet50's 256->128 and 64->256 at 56x56 105 ->
 * 108 and 101 -> 102; mobilenet's 24->144 at 56x56 and 16->96 at 112x112 84 -> 86 and 74 ->
 * 75; 64->256 at 120x120 unchanged. Not the prefetches for the near ones above: there they
 * only cost (144->24 at 56x56: -5%). */

/* Whether the CPU takes the rules measured on AMD's Zen 5 (family 0x1A) and later. There,
 * none of the "near" rules above: every 1x1 reads B
 * in place with the prefetch (and so panel by panel, gemm.c). Measured there
 * (bench_conv_layers, 1 thread, Relu, session 30), near -> prefetched: resnet50's 64->256 and
 * 64->64 at 56x56 209 -> 252 and 208 -> 249 GFLOP/s, 128->512 at 28x28 216 -> 262, 1024->256
 * at 14x14 253 -> 271; mobilenet_v2's 96->24 at 56x56 216 -> 254, 96->576 at 14x14 218 -> 256;
 * EfficientNet's 80->480 at 14x14 220 -> 255; 7x7 layers within 1-2% either way; in the
 * networks, 1 thread: mobilenet_v2 b2 6.50 -> 6.25 ms, EfficientNet b1 5.15 -> 5.03, resnet50
 * b1 29.59 -> 29.17. The rules were measured on Zen 4, where the prefetch cost the near ones
 * (144->24 at 56x56: -5%), and stay there and on other CPUs. The same bits either way (the K
 * blocks do not depend on the prefetch: gemm.c, dt_gemm_kc). The cpuid is read once (a VM
 * exit each time) and kept. */
static bool dt_conv_zen5_rules(void)
{
    static int known = -1;  /* -1 unknown, else 0 or 1; relaxed atomics: any thread may set it */
    int v = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (v >= 0) return v;
    unsigned a = 0, b = 0, c = 0, d = 0;
    v = 0;
    if (__get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u && /* AuthenticAMD */
        __get_cpuid(1, &a, &b, &c, &d)) {
        unsigned family = (a >> 8) & 0xf;
        if (family == 0xf) family += (a >> 20) & 0xff;
        v = family >= 0x1a;
    }
    __atomic_store_n(&known, v, __ATOMIC_RELAXED);
    return v;
}

typedef struct dt_im2col {
    const float *x;         /* this image and group: c channels of ih x iw */
    int64_t ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
    bool avx512;            /* the CPU has AVX-512F (dt_im2col_gather) */
} dt_im2col;

/* Copies len values of a col row (or zeros when src is NULL) to columns [j, j+len) of row kk
 * of the packed panels, splitting at panel boundaries. */
static void dt_im2col_put(float *dst, int64_t kc, int64_t nc, int64_t kk, int64_t j,
                          const float *src, int64_t len)
{
    enum { NR = DT_GEMM_NR };
    while (len > 0) {
        int64_t p0 = j - j % NR, w = nc - p0 < NR ? nc - p0 : NR;
        int64_t ld = (w + 15) & ~(int64_t)15, off = j - p0;
        int64_t n = w - off < len ? w - off : len;
        float *d = dst + dt_gemm_panel(p0, kc) + kk * ld + off;
        if (src) {
            dt_gemm_copy(d, src, n);
            src += n;
        } else {
            memset(d, 0, (size_t)n * sizeof *d);
        }
        j += n;
        len -= n;
    }
}

/* d[t] = s[2t] for t < n, 16 at a time from the even lanes of two loads; masked loads for
 * the tail, so nothing past s[2n-2] is read. */
__attribute__((target("avx512f"))) static void dt_gather2_avx512(float *d, const float *s, int64_t n)
{
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    int64_t t = 0;
    for (; t + 16 <= n && 2 * t + 32 <= 2 * n - 1; t += 16)
        _mm512_storeu_ps(d + t, _mm512_permutex2var_ps(_mm512_loadu_ps(s + 2 * t), even,
                                                       _mm512_loadu_ps(s + 2 * t + 16)));
    for (; t < n; t += 16) {
        int64_t in = 2 * (n - t) - 1;   /* floats this step may read: s[2t] .. s[2n-2] */
        __mmask16 m0 = in >= 16 ? 0xffff : (__mmask16)((1u << in) - 1);
        __mmask16 m1 = in >= 32 ? 0xffff : in > 16 ? (__mmask16)((1u << (in - 16)) - 1) : 0;
        __m512 v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m0, s + 2 * t), even,
                                          _mm512_maskz_loadu_ps(m1, s + 2 * t + 16));
        int64_t out = n - t < 16 ? n - t : 16;
        _mm512_mask_storeu_ps(d + t, (__mmask16)((1u << out) - 1), v);
    }
}

/* The same on AVX2: 8 at a time from the even lanes of two loads (a shuffle, then the 64-bit
 * pairs in order), the tail scalar, nothing past s[2n-2] read. Without it the stride-2 convs
 * of a CPU without AVX-512 gathered a float at a time (session 45, Zen 3: resnet50's 7x7
 * stem 4.1-4.5 ms against onnxruntime's 2.7). */
__attribute__((target("avx2"))) static void dt_gather2_avx2(float *d, const float *s, int64_t n)
{
    int64_t t = 0;
    for (; t + 8 <= n && 2 * t + 16 <= 2 * n - 1; t += 8) {
        __m256 e = _mm256_shuffle_ps(_mm256_loadu_ps(s + 2 * t), _mm256_loadu_ps(s + 2 * t + 8), _MM_SHUFFLE(2, 0, 2, 0));
        _mm256_storeu_ps(d + t, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0))));
    }
    for (; t < n; t++) d[t] = s[2 * t];
}

/* line[t] = row[x0 + t*sw] for t < seg, 0 where that falls outside [0, iw): the zero borders
 * and the interior found once, the interior of stride 2 vectorized (the stem convs of mobile
 * nets: 3 channels, so most of their time is this gather). The borders are a float or two:
 * stored in loops, not by calls to memset. */
__attribute__((optimize("no-tree-loop-distribute-patterns"))) static void
dt_im2col_gather(float *line, const float *row, int64_t x0, int64_t seg, int64_t sw, int64_t iw, bool avx512)
{
    /* interior: lo = first t with x >= 0, hi = first t with x >= iw; ceilings written as
     * (n - 1) / sw + 1 so that a stride near INT64_MAX cannot overflow them */
    int64_t lo = x0 < 0 ? (-x0 - 1) / sw + 1 : 0;
    int64_t hi = x0 >= iw ? 0 : (iw - x0 - 1) / sw + 1;
    if (lo > seg) lo = seg;
    if (hi > seg) hi = seg;
    if (hi < lo) hi = lo;
    for (int64_t t = 0; t < lo; t++) line[t] = 0.0f;
    if (sw == 2 && avx512 && hi > lo) {
        dt_gather2_avx512(line + lo, row + x0 + lo * 2, hi - lo);
    } else if (sw == 2 && hi > lo && dt_cpu_has_avx2_fma()) {
        dt_gather2_avx2(line + lo, row + x0 + lo * 2, hi - lo);
    } else {
        for (int64_t t = lo; t < hi; t++) line[t] = row[x0 + t * sw];
    }
    for (int64_t t = hi; t < seg; t++) line[t] = 0.0f;
}

/* Row k of col is (channel, kernel row, kernel col); column n is output pixel (n / ow, n % ow).
 * With stride 1 and output rows of at least DT_IM2COL_PUT_OW pixels a row is runs of an input
 * row, copied straight into the panels; other strides, and narrow rows, gather a line first
 * and scatter it to the panels once: the three calls per run that put one into the panels
 * cost a 7x7 image's 3x3 conv (K = 4608 rows of 7 runs of 7) 7% of its time, a 14x14 one 9%
 * (bench_conv_layers, 1 thread: 2.23 -> 2.07 and 1.99 -> 1.81 ms); at 56x56 no difference. */
enum { DT_IM2COL_PUT_OW = 32 };

/* Gathered rows (strided, or narrow) are prefetched this many channels ahead: a stride-2
 * gather reads every other input row, a pattern the hardware prefetcher does not follow, so
 * without it resnet50's 1x1 stride-2 downsamples at batch 8 (input from memory) spent 23% of
 * their time in the gather (perf, bench_conv_layers BATCH=8 RES=1). */
enum { DT_IM2COL_PF_C = 2 };

/* Prefetches the lines of row[x0 + t*sw], t < seg, clamped to [0, iw). */
static void dt_im2col_prefetch(const float *row, int64_t x0, int64_t seg, int64_t sw, int64_t iw)
{
    int64_t a = x0 < 0 ? 0 : x0, b = x0 + (seg - 1) * sw + 1;
    if (b > iw) b = iw;
    if (b <= a) return;
    for (uintptr_t q = (uintptr_t)(row + a) & ~(uintptr_t)63, e = (uintptr_t)(row + b); q < e; q += 64)
        __builtin_prefetch((const void *)q);
}

static void dt_im2col_pack(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc,
                           float *dst)
{
    const dt_im2col *p = ctx;
    float line[DT_GEMM_NC];
    int64_t ksz = p->kh * p->kw;
    int64_t c = k0 / ksz, r = k0 % ksz, ky = r / p->kw, kx = r % p->kw;
    int64_t oy0 = n0 / p->ow, ox0 = n0 % p->ow;
    int64_t last = nc - (nc - 1) % DT_GEMM_NR - 1;  /* first column of the last panel */
    int64_t last_w = nc - last, last_ld = (last_w + 15) & ~(int64_t)15;
    bool put = p->sw == 1 && p->ow >= DT_IM2COL_PUT_OW;
    int64_t c_end = (k0 + kc - 1) / ksz + 1;   /* one past the block's last channel */
    for (int64_t kk = 0; kk < kc; kk++) {
        const float *plane = p->x + c * p->ih * p->iw;
        /* the same rows DT_IM2COL_PF_C channels ahead, within this K block */
        const float *pf_plane = c + DT_IM2COL_PF_C < c_end ? plane + DT_IM2COL_PF_C * p->ih * p->iw : NULL;
        int64_t oy = oy0, ox = ox0, j = 0;
        while (j < nc) {
            int64_t seg = p->ow - ox;
            if (seg > nc - j) seg = nc - j;
            int64_t y = oy * p->sh - p->ph + ky * p->dh;
            int64_t x0 = ox * p->sw - p->pw + kx * p->dw;
            if (y < 0 || y >= p->ih) {
                if (put)
                    dt_im2col_put(dst, kc, nc, kk, j, NULL, seg);
                else
                    memset(line + j, 0, (size_t)seg * sizeof *line);
            } else if (put) {
                const float *row = plane + y * p->iw;
                int64_t lo = x0 < 0 ? -x0 : 0, hi = p->iw - x0;
                if (hi > seg) hi = seg;
                if (lo > seg) lo = seg;
                if (hi < lo) hi = lo;
                dt_im2col_put(dst, kc, nc, kk, j, NULL, lo);
                dt_im2col_put(dst, kc, nc, kk, j + lo, row + x0 + lo, hi - lo);
                dt_im2col_put(dst, kc, nc, kk, j + hi, NULL, seg - hi);
            } else {
                if (pf_plane && kx == 0) dt_im2col_prefetch(pf_plane + y * p->iw, x0, seg, p->sw, p->iw);
                dt_im2col_gather(line + j, plane + y * p->iw, x0, seg, p->sw, p->iw, p->avx512);
            }
            j += seg;
            ox = 0;
            oy++;
        }
        if (!put) {
            dt_gemm_scatter_row(line, nc, kk, kc, dst);
        } else {
            float *d = dst + dt_gemm_panel(last, kc) + kk * last_ld;
            for (int64_t t = last_w; t < last_ld; t++) d[t] = 0.0f;
        }
        if (++kx == p->kw) {
            kx = 0;
            if (++ky == p->kh) {
                ky = 0;
                c++;
            }
        }
    }
}

/* The weights of group gi as the GEMM reads them: packed at build time, or raw. */
static void dt_conv_group_a(const dt_conv_geom *g, const dt_conv_args *a, int64_t gi, dt_gemm *gm)
{
    int64_t mg = g->m / g->group, K = g->c / g->group * g->k[0] * g->k[1];
    gm->A = a->w ? a->w + gi * mg * K : NULL;
    gm->lda = K;
    gm->A_packed = a->w_packed ? a->w_packed + gi * dt_gemm_packed_a_floats(mg, K) : NULL;
    gm->A_bf16 = a->w_bf16 ? a->w_bf16 + gi * dt_gemm_packed_a_bf16_elems(mg, K) : NULL;
    gm->fp16 = a->w_fp16;
}

int64_t dt_cpu_conv_packed_bf16_bytes(const dt_conv_geom *g)
{
    int64_t mg = g->m / g->group, K = g->c / g->group * g->k[0] * g->k[1];
    return (g->group * dt_gemm_packed_a_bf16_elems(mg, K) * (int64_t)sizeof(uint16_t) + 63) & ~(int64_t)63;
}

void dt_cpu_conv_pack_weights_bf16(const dt_conv_geom *g, const float *w, uint16_t *dst)
{
    dt_cpu_conv_pack_weights_half(g, w, dt_bf16_round, dst);
}

void dt_cpu_conv_pack_weights_half(const dt_conv_geom *g, const float *w, dt_half_round_fn round, uint16_t *dst)
{
    int64_t mg = g->m / g->group, K = g->c / g->group * g->k[0] * g->k[1];
    int64_t n = g->group * dt_gemm_packed_a_bf16_elems(mg, K);
    for (int64_t gi = 0; gi < g->group; gi++)
        dt_gemm_pack_a_half(w + gi * mg * K, K, mg, K, round, dst + gi * dt_gemm_packed_a_bf16_elems(mg, K));
    memset(dst + n, 0, (size_t)(dt_cpu_conv_packed_bf16_bytes(g) - n * (int64_t)sizeof(uint16_t)));
}

int64_t dt_cpu_conv_packed_floats(const dt_conv_geom *g)
{
    int64_t mg = g->m / g->group, K = g->c / g->group * g->k[0] * g->k[1];
    return g->group * dt_gemm_packed_a_floats(mg, K);
}

void dt_cpu_conv_pack_weights(const dt_conv_geom *g, const float *w, float *dst)
{
    int64_t mg = g->m / g->group, K = g->c / g->group * g->k[0] * g->k[1];
    for (int64_t gi = 0; gi < g->group; gi++)
        dt_gemm_pack_a_full(w + gi * mg * K, K, false, 1.0f, mg, K,
                            dst + gi * dt_gemm_packed_a_floats(mg, K));
}

/* 1x1 convs (stride 1, unpadded, one group) over a batch of images smaller than this many
 * pixels run as one GEMM over the pixels of every image: per image, a 7x7 image's 49
 * columns fill one 48-column panel and a 16-lane one for a single column, and the whole
 * weight matrix streams through the cache again for each image; together, 8 images' 392
 * columns fill 8 panels and one narrow one, and the weights stream once. The product goes to
 * scratch and is copied out image by image, with the epilogue. Measured on mobilenet_v2 at
 * batch 8: the 7x7 layers gain 15-25%; at 14x14 (196 pixels: the narrow panel is 2% of the
 * work) the copy out costs about what the panels save, so they stay per image. */
enum { DT_CONV_BATCH_PX = 128 };

/* ... except (by default) where one image's columns are whole 48-column panels and at most
 * DT_GEMM_NARROW more, which the GEMM runs fused with the last whole panel
 * (dt_gemm_kernel_x_fn: a 7x7 image's 49 = 48 + 1): then each image's product wastes
 * nothing, writes the output in place with the epilogue (residual included) in its store,
 * and the weights streamed again per image come from L3. Session 17, resnet50's 7x7 1x1s at
 * batch 8, 1 thread (bench/bench_conv_layers.c, RES=1 HUGE=1): 512->2048 3.93-4.13 ->
 * 3.51-3.57 ms, 2048->512 3.91-4.07 -> 3.45-3.48 (the batched product's copy-out and
 * separate residual pass cost more than streaming the weights once saves). */
static bool dt_conv_px_fits_panels(int64_t px)
{
    return px >= DT_GEMM_NR && px % DT_GEMM_NR <= DT_GEMM_NARROW;
}

/* A 1x1 conv of stride 1, unpadded: B is the image itself. */
static bool dt_conv_is_pointwise(const dt_conv_geom *g)
{
    return g->k[0] == 1 && g->k[1] == 1 && g->s[0] == 1 && g->s[1] == 1 && g->pb[0] == 0 && g->pb[1] == 0 &&
           g->pe[0] == 0 && g->pe[1] == 0;
}

/* A 1x1 conv of a stride above 1, unpadded, of at least DT_GEMM_KC_DEEP input channels a
 * group (resnet50's 28x28 and 14x14 downsamples): its B is the image subsampled, which
 * dt_im2col_image copies out once (prefetching the rows it skips to, which the hardware
 * prefetcher does not follow) and then reads in place as a stride-1 1x1's image: B not
 * packed, K blocks of DT_GEMM_KC_DEEP. im2col's strided gather into the panels held these
 * convs to 222 GFLOP/s where the stride-1 1x1s of the same sizes run at 245-252
 * (bench_conv_layers, 1 thread). resnet50 layer minima: 512 -> 1024 at 28x28 0.915 -> 0.845 ms
 * at batch 1 (batch 8 7.34 -> 6.77; 2 threads, batch 1, 0.527 -> 0.454), 1024 -> 2048 at
 * 14x14 0.935 -> 0.867 (7.44 -> 6.94; 0.519 -> 0.456). With 256 channels (56x56: no deeper K
 * blocks) it was even on 1 thread (0.922 -> 0.896 at batch 1, 7.40 -> 7.42 at batch 8) and
 * lost on 2 (0.486 -> 0.524: the product then splits by rows, each thread reading the whole
 * copy, half of it written by the other core); without the prefetch the copy, a pass of its
 * own over an input from memory, lost at batch 8 (56x56 alone 7.37 -> 7.95 ms). That was Zen 4;
 * on Zen 5 (dt_conv_zen5_rules) 256 channels a group suffice: resnet50's 256 -> 512 at
 * 56x56 (bench_conv_layers, session 31) 0.995 -> 0.808 ms on 1 thread, 0.488 -> 0.407 on 2,
 * 0.550 -> 0.459 with its input from memory. */
static bool dt_conv_is_subsampled(const dt_conv_geom *g)
{
    return g->k[0] == 1 && g->k[1] == 1 && (g->s[0] > 1 || g->s[1] > 1) && g->pb[0] == 0 && g->pb[1] == 0 &&
           g->pe[0] == 0 && g->pe[1] == 0 && g->c / g->group >= (dt_conv_zen5_rules() ? DT_GEMM_KC : DT_GEMM_KC_DEEP);
}

/* Bytes of one image's subsampled channels of a group (0 unless dt_conv_is_subsampled),
 * 64-byte multiple. */
static size_t dt_conv_sub_bytes(const dt_conv_geom *g)
{
    if (!dt_conv_is_subsampled(g)) return 0;
    return ((size_t)(g->c / g->group) * (size_t)(g->out[0] * g->out[1]) * sizeof(float) + 63) & ~(size_t)63;
}

enum { DT_CONV_SUB_PF_C = 2 };

typedef struct dt_conv_sub {
    const dt_conv_geom *g;
    const float *x;     /* the group's first channel */
    float *dst;         /* [channel][out pixel] */
    bool avx512;
} dt_conv_sub;

static void dt_conv_subsample(void *arg, int64_t c0, int64_t c1, int tid)
{
    (void)tid;
    const dt_conv_sub *j = arg;
    const dt_conv_geom *g = j->g;
    int64_t ih = g->in[0], iw = g->in[1], oh = g->out[0], ow = g->out[1];
    for (int64_t c = c0; c < c1; c++)
        for (int64_t oy = 0; oy < oh; oy++) {
            const float *src = j->x + (c * ih + oy * g->s[0]) * iw;
            float *d = j->dst + (c * oh + oy) * ow;
            /* the rows read skip rows, which the hardware prefetcher does not follow: the
             * same row DT_CONV_SUB_PF_C channels on (as the padded conv's fill) */
            if (c + DT_CONV_SUB_PF_C < c1)
                for (int64_t q = 0; q < iw; q += 16) __builtin_prefetch(src + DT_CONV_SUB_PF_C * ih * iw + q);
            if (g->s[1] == 2 && j->avx512)
                dt_cpu_deint2(d, ow, NULL, 0, src, iw);
            else
                for (int64_t ox = 0; ox < ow; ox++) d[ox] = src[ox * g->s[1]];
        }
}

bool dt_cpu_conv_is_batched(const dt_conv_geom *g, const dt_conv_args *a)
{
    int64_t px = g->out[0] * g->out[1];
    bool one = dt_conv_is_pointwise(g);
    bool small = a->batch_px ? px < a->batch_px : px < DT_CONV_BATCH_PX && !dt_conv_px_fits_panels(px);
    return one && g->group == 1 && g->batch > 1 && small;
}

/* The GEMM of one image and group (every one has the same sizes), or of the whole batch. */
static dt_gemm dt_conv_im2col_gemm(const dt_conv_geom *g, const dt_conv_args *a)
{
    int64_t cg = g->c / g->group, mg = g->m / g->group;
    int64_t n = g->out[0] * g->out[1] * (dt_cpu_conv_is_batched(g, a) ? g->batch : 1);
    dt_gemm gm = {.M = mg, .N = n, .K = cg * g->k[0] * g->k[1]};
    dt_conv_group_a(g, a, 0, &gm);
    return gm;
}

/* Bytes of the batched product (M x batch*pixels floats), 64-byte multiple; 0 unbatched. */
static size_t dt_conv_batched_bytes(const dt_conv_geom *g, const dt_conv_args *a)
{
    if (!dt_cpu_conv_is_batched(g, a)) return 0;
    size_t n = (size_t)g->m * (size_t)g->batch * (size_t)(g->out[0] * g->out[1]) * sizeof(float);
    return (n + 63) & ~(size_t)63;
}

typedef struct dt_batch_b {
    const float *x;         /* [batch, c, px] */
    int64_t c, px;
} dt_batch_b;

/* B of the batched product: row k is channel k, column j pixel j % px of image j / px. */
static void dt_batch_pack(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float *dst)
{
    const dt_batch_b *p = ctx;
    float line[DT_GEMM_NC];
    for (int64_t kk = 0; kk < kc; kk++) {
        for (int64_t j = 0; j < nc;) {
            int64_t img = (n0 + j) / p->px, px = (n0 + j) % p->px;
            int64_t run = p->px - px < nc - j ? p->px - px : nc - j;
            dt_gemm_copy(line + j, p->x + (img * p->c + k0 + kk) * p->px + px, run);
            j += run;
        }
        dt_gemm_scatter_row(line, nc, kk, kc, dst);
    }
}

static ductile_status dt_cpu_conv_batched(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool)
{
    int64_t px = g->out[0] * g->out[1], n = g->batch * px;
    dt_batch_b bb = {a->x, g->c, px};
    dt_gemm gm = {
        .M = g->m, .N = n, .K = g->c, .alpha = 1.0f, .beta = 0.0f,
        .pack_b = dt_batch_pack, .pack_b_ctx = &bb,
        .bias = a->bias, .ldc = n,
    };
    if (a->x_cs) {
        /* x is the product's B already ([C][N][px]): read in place, as an image's 1x1 is */
        gm.pack_b = NULL;
        gm.B = a->x;
        gm.ldb = n;
        gm.direct_b = true;
    }
    dt_conv_group_a(g, a, 0, &gm);
    /* Without a residual (laid out as y, not as the product) the activation goes in the
     * GEMM's store, the same float operations as the pass: the copy-out is then a copy. */
    bool epi_in_gemm = a->epi && (!a->epi->res || a->y_cs);
    /* the product in scratch is read straight back: not written past the cache */
    dt_epilogue near_epi = a->epi ? *a->epi : (dt_epilogue){0};
    near_epi.c_far = near_epi.c_far && a->y_cs;
    if (epi_in_gemm) gm.epi = &near_epi;
    if (a->y_cs) {
        /* y is the product ([M][N][px]): no copy-out at all */
        gm.C = a->y;
        return dt_sgemm_in(&gm, pool, (char *)a->scratch + dt_conv_batched_bytes(g, a));
    }
    /* scratch: the product, then the GEMM's packing buffers (dt_cpu_conv_scratch) */
    float *c = a->scratch;
    gm.C = c;
    DT_TRY(dt_sgemm_in(&gm, pool, (char *)a->scratch + dt_conv_batched_bytes(g, a)));
    for (int64_t b = 0; b < g->batch; b++)
        for (int64_t m = 0; m < g->m; m++) {
            int64_t yoff = (b * g->m + m) * px;
            memcpy(a->y + yoff, c + m * n + b * px, (size_t)px * sizeof(float));
            if (a->epi && !epi_in_gemm) dt_epilogue_apply(a->epi, a->y + yoff, a->epi->res + yoff, px);
        }
    return DUCTILE_OK;
}

int dt_cpu_conv_image_threads(const dt_conv_geom *g, int threads)
{
    return threads > 1 && g->batch >= threads ? threads : 0;
}

/* Image b, every group, on `pool` (NULL: this thread alone) with the subsampled image
 * (dt_conv_sub_bytes), then the GEMM's buffers, in scratch. */
static ductile_status dt_im2col_image(const dt_conv_geom *g, const dt_conv_args *a, int64_t b, dt_pool *pool,
                                      void *scratch)
{
    int64_t cg = g->c / g->group, mg = g->m / g->group;
    int64_t in_px = g->in[0] * g->in[1], out_px = g->out[0] * g->out[1];
    int64_t K = cg * g->k[0] * g->k[1];
    bool sub = dt_conv_is_subsampled(g);
    bool direct = dt_conv_is_pointwise(g) || sub;
    /* B's plane: the image's, or the subsampled one's */
    int64_t b_px = sub ? out_px : in_px;
    bool near_b = !dt_conv_zen5_rules() &&
                  (b_px <= DT_CONV_DIRECT_B_PX || (mg <= DT_CONV_DIRECT_B_M && b_px <= DT_CONV_DIRECT_B_M_PX) ||
                   (K <= DT_CONV_DIRECT_B_K && b_px <= DT_CONV_DIRECT_B_K_PX));
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f");
    float *subx = scratch;
    scratch = (char *)scratch + dt_conv_sub_bytes(g);
    for (int64_t gi = 0; gi < g->group; gi++) {
        const float *xg = a->x + (b * g->c + gi * cg) * in_px;
        if (sub) {
            dt_conv_sub sj = {g, xg, subx, avx512};
            dt_parallel_for(pool, cg, 16, dt_conv_subsample, &sj);
            xg = subx;
        }
        int64_t yoff = (b * g->m + gi * mg) * out_px;
        dt_im2col col = {xg, g->in[0], g->in[1], g->out[0], g->out[1], g->k[0], g->k[1],
                         g->s[0], g->s[1], g->d[0], g->d[1], g->pb[0], g->pb[1], avx512};
        dt_epilogue epi;
        if (a->epi) {
            epi = *a->epi;
            if (epi.res) epi.res += yoff;
        }
        dt_gemm gm = {
            .M = mg, .N = out_px, .K = K, .alpha = 1.0f, .beta = 0.0f,
            .B = xg, .ldb = b_px,
            .pack_b = direct ? NULL : dt_im2col_pack, .pack_b_ctx = &col,
            .direct_b = direct, .prefetch_b = direct && !near_b, .deep_k = direct,
            .C = a->y + yoff, .ldc = out_px,
            .bias = a->bias ? a->bias + gi * mg : NULL,
            .epi = a->epi ? &epi : NULL,
            .b_scale = a->x_scale ? a->x_scale + gi * cg : NULL,
        };
        dt_conv_group_a(g, a, gi, &gm);
        DT_TRY(dt_sgemm_in(&gm, pool, scratch));
    }
    return DUCTILE_OK;
}

/* The image split (dt_cpu_conv_image_threads): part p's GEMM buffers at scratch + p * bytes. */
typedef struct dt_im2col_split {
    const dt_conv_geom *g;
    const dt_conv_args *a;
    size_t bytes;
    ductile_status status[64];  /* per part */
} dt_im2col_split;

/* The GEMM buffers of one image's product on one thread, 64-byte multiple. */
static size_t dt_im2col_serial_bytes(const dt_conv_geom *g, const dt_conv_args *a)
{
    dt_gemm gm = dt_conv_im2col_gemm(g, a);
    gm.direct_b = gm.deep_k = dt_conv_is_pointwise(g) || dt_conv_is_subsampled(g);
    return ((dt_sgemm_scratch_bytes(&gm, 1) + 63) & ~(size_t)63) + dt_conv_sub_bytes(g);
}

/* Images [b0, b1), one after another on this thread, in part `part`'s buffers. */
static void dt_im2col_images(void *arg, int64_t b0, int64_t b1, int part)
{
    dt_im2col_split *sp = arg;
    ductile_status st = DUCTILE_OK;
    for (int64_t b = b0; b < b1 && st == DUCTILE_OK; b++)
        st = dt_im2col_image(sp->g, sp->a, b, NULL, (char *)sp->a->scratch + (size_t)part * sp->bytes);
    sp->status[part] = st;
}

static ductile_status dt_cpu_conv_im2col(const dt_conv_geom *g, const dt_conv_args *a,
                                         dt_pool *pool)
{
    if (dt_cpu_conv_is_batched(g, a)) return dt_cpu_conv_batched(g, a, pool);
    /* Whole images per thread first (each thread's products on buffers of its own), the
     * images left over split within each product. */
    int it = dt_cpu_conv_image_threads(g, dt_pool_threads(pool));
    int64_t split = it ? g->batch - g->batch % it : 0;
    if (split) {
        dt_im2col_split sp = {g, a, dt_im2col_serial_bytes(g, a), {DUCTILE_OK}};
        dt_parallel_for(pool, split, split / it, dt_im2col_images, &sp);
        for (int p = 0; p < it; p++) DT_TRY(sp.status[p]);
    }
    for (int64_t b = split; b < g->batch; b++) DT_TRY(dt_im2col_image(g, a, b, pool, a->scratch));
    return DUCTILE_OK;
}

bool dt_cpu_conv_takes_x_scale(const dt_conv_geom *g, const dt_conv_args *a, dt_conv_algo algo)
{
    return (algo == DT_CONV_IM2COL || algo == DT_CONV_AUTO) && g->spatial == 2 && dt_conv_is_pointwise(g) &&
           g->group == 1 && a->w_bf16 && !a->w_fp16 && !dt_cpu_conv_is_batched(g, a);
}

bool dt_cpu_conv_algo_applies(const dt_conv_geom *g, dt_conv_algo algo)
{
    /* The 2-D paths read only rows and columns: a 3-D conv takes the direct loops. */
    if (g->spatial == 3) return algo == DT_CONV_AUTO || algo == DT_CONV_DIRECT;
    switch (algo) {
    case DT_CONV_DIRECT: return true;
    case DT_CONV_AUTO: return true;
    case DT_CONV_IM2COL: return !dt_cpu_conv_is_depthwise(g);
    case DT_CONV_PADDED: return !dt_cpu_conv_is_depthwise(g) && dt_cpu_conv_padded_strides_fit(g);
    case DT_CONV_DEPTHWISE: return dt_cpu_conv_is_depthwise(g);
    case DT_CONV_DW16: return dt_cpu_dw16_applies(g);
    case DT_CONV_SMALLC: return dt_cpu_conv_smallc_applies(g);
    case DT_CONV_WINOGRAD: return dt_cpu_wino_applies(g);
    case DT_CONV_WINOGRAD2_BF16: return dt_cpu_wino2_offered(g);
    case DT_CONV_WINOGRAD_BF16: return dt_cpu_wino_applies(g);
    case DT_CONV_S2: return dt_cpu_conv_s2_applies(g);
    case DT_CONV_S2_BF16: return dt_cpu_conv_s2_bf16_applies(g);
    }
    return false;
}

dt_conv_algo dt_cpu_conv_auto(const dt_conv_geom *g)
{
    if (g->spatial == 3) return DT_CONV_DIRECT;
    bool one = dt_conv_is_pointwise(g);
    __builtin_cpu_init();
    /* the few-channel direct conv: 5-25% faster than im2col on the 3x3 stems, 15% on resnet50's
     * 7x7 (conv_smallc.c) */
    if (dt_cpu_conv_smallc_applies(g) && __builtin_cpu_supports("avx512f")) return DT_CONV_SMALLC;
    return dt_cpu_dw16_pays(g)                          ? DT_CONV_DW16
         : dt_cpu_conv_is_depthwise(g)                  ? DT_CONV_DEPTHWISE
         : !one && dt_cpu_conv_padded_applies(g)         ? DT_CONV_PADDED
                                                         : DT_CONV_IM2COL;
}

/* The im2col GEMM's scratch (the batched product's C included). */
static size_t dt_conv_gemm_scratch(const dt_conv_geom *g, const dt_conv_args *a, int threads)
{
    dt_gemm gm = dt_conv_im2col_gemm(g, a);
    bool batched = dt_cpu_conv_is_batched(g, a);
    gm.pack_b = batched ? dt_batch_pack : NULL;
    /* sized for the K block an image's 1x1 product runs (dt_gemm.deep_k) */
    gm.direct_b = gm.deep_k = !batched && (dt_conv_is_pointwise(g) || dt_conv_is_subsampled(g));
    size_t bytes = dt_sgemm_scratch_bytes(&gm, threads) + dt_conv_batched_bytes(g, a) + dt_conv_sub_bytes(g);
    /* whole images per thread (dt_cpu_conv_im2col), each with one thread's buffers */
    int it = batched ? 0 : dt_cpu_conv_image_threads(g, threads);
    if (it && dt_im2col_serial_bytes(g, a) * (size_t)it > bytes) bytes = dt_im2col_serial_bytes(g, a) * (size_t)it;
    return bytes;
}

ductile_status dt_cpu_conv_scratch(const dt_conv_geom *g, const dt_conv_args *a, dt_conv_algo algo,
                                   int threads, size_t *bytes)
{
    *bytes = 0;
    if (algo == DT_CONV_AUTO) algo = dt_cpu_conv_auto(g);
    if (!dt_cpu_conv_algo_applies(g, algo)) return DUCTILE_OK;
    switch (algo) {
    case DT_CONV_DEPTHWISE: return dt_cpu_conv_depthwise_scratch(g, threads, bytes);
    case DT_CONV_DW16: return dt_cpu_conv_dw16_scratch(g, threads, bytes);
    case DT_CONV_SMALLC: {
        /* it runs the GEMM without AVX-512 or on bfloat16 weights */
        size_t b = dt_conv_gemm_scratch(g, a, threads);
        DT_TRY(dt_cpu_conv_smallc_scratch(g, threads, bytes));
        if (b > *bytes) *bytes = b;
        return DUCTILE_OK;
    }
    case DT_CONV_PADDED: return dt_cpu_conv_padded_scratch(g, a, threads, bytes);
    case DT_CONV_WINOGRAD: return dt_cpu_wino_scratch(g, a, threads, bytes);
    case DT_CONV_WINOGRAD2_BF16: return dt_cpu_wino2_scratch(g, threads, bytes);
    case DT_CONV_WINOGRAD_BF16: return dt_cpu_wino_bf16_scratch(g, threads, bytes);
    case DT_CONV_DIRECT: return DUCTILE_OK;
    case DT_CONV_S2_BF16: *bytes = dt_cpu_conv_s2_bf16_scratch(g, threads); return DUCTILE_OK;
    default:
        *bytes = dt_conv_gemm_scratch(g, a, threads);
        return DUCTILE_OK;
    }
}

ductile_status dt_cpu_conv_run_algo(const dt_conv_geom *g, const dt_conv_args *a, dt_conv_algo algo,
                               dt_pool *pool)
{
    if (algo == DT_CONV_AUTO) algo = dt_cpu_conv_auto(g);
    if (!dt_cpu_conv_algo_applies(g, algo))
        return dt_fail(DUCTILE_ERR_INTERNAL, "conv algorithm %d does not apply to this convolution",
                       (int)algo);
    if (a->x_scale && !dt_cpu_conv_takes_x_scale(g, a, algo))
        return dt_fail(DUCTILE_ERR_INTERNAL, "conv algorithm %d does not take a scale of X's channels", (int)algo);
    bool dw = algo == DT_CONV_DEPTHWISE || algo == DT_CONV_DW16;
    bool batched = algo == DT_CONV_IM2COL && dt_cpu_conv_is_batched(g, a);
    if ((a->x_cs && !dw && !(batched && a->x_cs == g->batch)) || (a->y_cs && !dw && !(batched && a->y_cs == g->batch)))
        return dt_fail(DUCTILE_ERR_INTERNAL, "conv algorithm %d does not take these plane strides", (int)algo);
    if (!a->scratch) {
        size_t bytes;
        DT_TRY(dt_cpu_conv_scratch(g, a, algo, dt_pool_threads(pool), &bytes));
        dt_conv_args b = *a;
        if (!(b.scratch = dt_aligned_alloc(64, bytes ? bytes : 64)))
            return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for conv scratch (%zu bytes)", bytes);
        ductile_status s = dt_cpu_conv_run_algo(g, &b, algo, pool);
        dt_free(b.scratch);
        return s;
    }
    if (a->pool && g->spatial != 2)
        return dt_fail(DUCTILE_ERR_INTERNAL, "a conv's pooled output needs a 2-D conv, not %d-D", g->spatial);
    if (algo == DT_CONV_DEPTHWISE) return dt_cpu_conv_depthwise(g, a, pool); /* these two pool as they go */
    if (algo == DT_CONV_DW16) return dt_cpu_conv_dw16(g, a, pool);
    /* The others without the pool, taken here after them: those that fall back to another
     * algorithm through this function would pool twice. */
    dt_conv_args b = *a;
    b.pool = NULL;
    ductile_status s;
    switch (algo) {
    case DT_CONV_SMALLC: s = dt_cpu_conv_smallc(g, &b, pool); break;
    case DT_CONV_PADDED: s = dt_cpu_conv_padded(g, &b, pool); break;
    case DT_CONV_WINOGRAD: s = dt_cpu_conv_winograd(g, &b, pool); break;
    case DT_CONV_WINOGRAD2_BF16: s = dt_cpu_conv_winograd2(g, &b, pool); break;
    case DT_CONV_WINOGRAD_BF16: s = dt_cpu_conv_winograd_bf16(g, &b, pool); break;
    case DT_CONV_DIRECT: s = dt_cpu_conv_direct(g, &b, pool); break;
    case DT_CONV_S2: s = dt_cpu_conv_s2(g, &b, pool); break;
    case DT_CONV_S2_BF16: s = dt_cpu_conv_s2_bf16(g, &b, pool); break;
    default: s = dt_cpu_conv_im2col(g, &b, pool); break;
    }
    if (s == DUCTILE_OK) dt_cpu_conv_pool_after(g, a, pool);
    return s;
}

ductile_status dt_cpu_conv(const dt_conv_geom *g, const float *x, const float *w,
                           const float *bias, float *y, dt_pool *pool)
{
    dt_conv_args a = {.x = x, .w = w, .bias = bias, .y = y};
    return dt_cpu_conv_run_algo(g, &a, DT_CONV_AUTO, pool);
}
