/* MaxPool and AveragePool (channels first) against a reference written here, on random inputs
 * at odd sizes: channels 3, 5, 17, 33; maps 7x9, 13x11 and rows wide enough for whole vectors
 * and a masked tail (40x57, 112x112: resnet50's MaxPool); batch 1 and 3; kernels 2x2, 3x3 and
 * 3x2; strides 1 and 2; no, symmetric and asymmetric padding; ceil_mode; count_include_pad.
 * The reference does the ONNX definition's float operations in the order the kernels
 * promise (taps row by row; max keeping the first of equal values, and a NaN once met; a sum
 * from 0 divided by the count), so outputs must match bit for bit, inline and on 1, 2 and 3
 * threads (the interior windows go through the AVX-512 row, nn_pool_avx512.c, or without
 * AVX-512 the AVX2 row, nn_pool_avx2.c; the AVX-512 row's 3-tap
 * stride-2 form included, the borders through the scalar loop, or for MaxPool's 3 taps at x
 * stride 2 through the vector row too; 2-D MaxPools at stride 1 by planes, separably). A NaN, infinities and signed zeros are planted in the input. */
#include "ophelp.h"
#include "core/threadpool.h"

#include <math.h>
#include <stdio.h>

typedef struct pool_case {
    int is_max;
    int64_t n, c, h, w, kh, kw, sh, sw;
    int64_t pt, pl, pb, pr;  /* pads: top, left, bottom, right */
    int ceil_mode, incl;
    int zeros;   /* the input drawn from +0, -0, -1 and NaN (which of equal maxima is kept) */
} pool_case;

static int64_t out_dim(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int ceil_mode)
{
    int64_t span = in + p0 + p1 - k;
    int64_t o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    /* ceil_mode: the last window must start inside the input or the leading padding */
    if (ceil_mode && (o - 1) * s >= in + p0) o--;
    return o;
}

/* y[n, c, oy, ox] in the ONNX definition's terms, float operations in the kernels' order. */
static void ref_pool(const pool_case *pc, const float *x, int64_t oh, int64_t ow, float *y)
{
    for (int64_t pl = 0; pl < pc->n * pc->c; pl++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                float acc = pc->is_max ? -INFINITY : 0.0f;
                int64_t inside = 0, padded = 0;
                for (int64_t ty = 0; ty < pc->kh; ty++)
                    for (int64_t tx = 0; tx < pc->kw; tx++) {
                        int64_t iy = oy * pc->sh - pc->pt + ty, ix = ox * pc->sw - pc->pl + tx;
                        if (iy < pc->h + pc->pb && ix < pc->w + pc->pr) padded++;
                        if (iy < 0 || iy >= pc->h || ix < 0 || ix >= pc->w) continue;
                        float v = x[(pl * pc->h + iy) * pc->w + ix];
                        inside++;
                        if (pc->is_max)
                            acc = v > acc || v != v ? v : acc;
                        else
                            acc += v;
                    }
                if (!pc->is_max) acc /= (float)(pc->incl ? padded : inside);
                y[(pl * oh + oy) * ow + ox] = acc;
            }
}

/* Runs the case inline and on the pools; returns the number of runs whose output differs. */
static int run_case(const pool_case *pc, dt_pool *const *pools, int n_pools)
{
    int64_t nx = pc->n * pc->c * pc->h * pc->w;
    float *x = keep(rand_buf(nx));
    if (pc->zeros)
        for (int64_t i = 0; i < nx; i++) {
            static const float pick[4] = {0.0f, -0.0f, -1.0f, NAN};
            x[i] = pick[(int)((x[i] + 1.0f) * 2.0f) & 3];
        }
    x[nx / 3] = NAN;
    x[nx / 2] = INFINITY;
    x[nx / 5] = -INFINITY;
    x[nx / 7] = -0.0f;
    x[nx / 7 + 1] = 0.0f;
    dt_view in[1] = {fview(4, DIMS(pc->n, pc->c, pc->h, pc->w), x)};
    ductile_layer *L = layer(pc->is_max ? "MaxPool" : "AveragePool", 19, 1, in, 1);
    a_ints(L, "kernel_shape", DIMS(pc->kh, pc->kw), 2);
    a_ints(L, "strides", DIMS(pc->sh, pc->sw), 2);
    a_ints(L, "pads", DIMS(pc->pt, pc->pl, pc->pb, pc->pr), 4);
    a_int(L, "ceil_mode", pc->ceil_mode);
    if (!pc->is_max) a_int(L, "count_include_pad", pc->incl);
    int64_t oh = out_dim(pc->h, pc->kh, pc->sh, pc->pt, pc->pb, pc->ceil_mode);
    int64_t ow = out_dim(pc->w, pc->kw, pc->sw, pc->pl, pc->pr, pc->ceil_mode);
    int64_t ny = pc->n * pc->c * oh * ow;
    float *want = keep(malloc(sizeof(float) * (size_t)ny));
    ref_pool(pc, x, oh, ow, want);
    int bad = 0;
    for (int pi = -1; pi < n_pools; pi++) {
        dt_view out[2];
        ductile_status st = build(L, in, out);
        CHECK_EQ_INT(st, DUCTILE_OK);
        if (st != DUCTILE_OK) return 1;
        CHECK(out[0].dims[2] == oh && out[0].dims[3] == ow);
        if (out[0].dims[2] != oh || out[0].dims[3] != ow) return 1;
        dt_cpu_run_fn k = kernel(L->op_type);
        out[0].data = keep(calloc((size_t)ny + 1, sizeof(float)));
        dt_exec ex = {.pool = pi < 0 ? NULL : pools[pi]};
        CHECK_EQ_INT(k(L, in, out, &ex), DUCTILE_OK);
        const float *got = out[0].data;
        for (int64_t i = 0; i < ny; i++)
            if (memcmp(&got[i], &want[i], sizeof(float))) {
                fprintf(stderr,
                        "%s n%lld c%lld %lldx%lld k%lldx%lld s%lldx%lld pads %lld,%lld,%lld,%lld ceil %d incl %d "
                        "threads %d: output %lld is %.9g, expected %.9g\n",
                        L->op_type, (long long)pc->n, (long long)pc->c, (long long)pc->h, (long long)pc->w,
                        (long long)pc->kh, (long long)pc->kw, (long long)pc->sh, (long long)pc->sw,
                        (long long)pc->pt, (long long)pc->pl, (long long)pc->pb, (long long)pc->pr, pc->ceil_mode,
                        pc->incl, pi < 0 ? 0 : dt_pool_threads(pools[pi]), (long long)i, (double)got[i],
                        (double)want[i]);
                bad++;
                break;
            }
    }
    return bad;
}

static void test_pools_match_reference(dt_pool *const *pools, int n_pools)
{
    static const int64_t chans[] = {3, 5, 17, 33}, maps[][2] = {{7, 9}, {13, 11}, {40, 57}};
    static const int64_t kernels[][2] = {{2, 2}, {3, 3}, {3, 2}};
    static const int64_t pads[][4] = {{0, 0, 0, 0}, {1, 1, 1, 1}, {0, 1, 1, 0}};
    int bad = 0, ran = 0, i = 0;
    for (size_t ci = 0; ci < 4; ci++)
        for (size_t mi = 0; mi < 3; mi++)
            for (size_t ki = 0; ki < 3; ki++)
                for (int64_t s = 1; s <= 2; s++)
                    for (size_t pi = 0; pi < 3; pi++, i++) {
                        /* ONNX: a pad must be smaller than the kernel */
                        if (pads[pi][0] >= kernels[ki][0] || pads[pi][1] >= kernels[ki][1]) continue;
                        pool_case pc = {.is_max = i % 2, .n = i % 4 == 1 ? 3 : 1, .c = chans[ci],
                                        .h = maps[mi][0], .w = maps[mi][1], .kh = kernels[ki][0],
                                        .kw = kernels[ki][1], .sh = s, .sw = s, .pt = pads[pi][0],
                                        .pl = pads[pi][1], .pb = pads[pi][2], .pr = pads[pi][3],
                                        .ceil_mode = i % 3 == 2, .incl = i % 5 >= 3};
                        bad += run_case(&pc, pools, n_pools);
                        pc.is_max = !pc.is_max;
                        bad += run_case(&pc, pools, n_pools);
                        ran += 2;
                    }
    /* resnet50's MaxPool and a stride-1 3x3 average, batch 3 */
    bad += run_case(&(pool_case){1, 1, 5, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 0}, pools, n_pools);
    /* fewer images than threads: bands of rows of every plane (3 threads: 1 and 2 images) */
    bad += run_case(&(pool_case){1, 1, 7, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 0}, pools, n_pools);
    bad += run_case(&(pool_case){0, 2, 4, 113, 111, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0}, pools, n_pools);
    bad += run_case(&(pool_case){0, 3, 3, 29, 35, 3, 3, 1, 1, 1, 1, 1, 1, 0, 1, 0}, pools, n_pools);
    /* stride 2 along y only, stride 1 along x; and a row narrower than the kernel's reach */
    bad += run_case(&(pool_case){1, 1, 17, 13, 11, 3, 3, 2, 1, 1, 1, 1, 1, 0, 0, 0}, pools, n_pools);
    bad += run_case(&(pool_case){0, 1, 3, 5, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 0}, pools, n_pools);
    /* 3 taps at x stride 2 (the three-load row, nn_pool_avx512.c): interior runs of 1 to 35
     * outputs (a masked tail of every parity), asymmetric pads, max and average */
    for (int64_t w = 3; w <= 73; w += 5) {
        bad += run_case(&(pool_case){1, 2, 3, 9, w, 3, 3, 2, 2, 0, 1, 1, 0, 0, 0, 0}, pools, n_pools);
        bad += run_case(&(pool_case){0, 1, 5, 7, w, 3, 3, 2, 2, 1, 0, 0, 1, 0, 1, 0}, pools, n_pools);
    }
    /* MaxPool's 3 taps at x stride 2 take the border windows in the vector row too (taps
     * outside the row load -inf): rows of 1 to 40 pixels, left and right pads up to 2,
     * ceil_mode's last window reaching past the right pad */
    for (int64_t w = 1; w <= 40; w++) {
        bad += run_case(&(pool_case){1, 1, 3, 5, w, 3, 3, 2, 2, 1, 1, 1, 1, (int)(w % 2), 0, 0}, pools, n_pools);
        bad += run_case(&(pool_case){1, 2, 2, 6, w, 3, 3, 2, 2, 0, 2, 2, 0, (int)(w % 3 == 0), 0, 0}, pools, n_pools);
        bad += run_case(&(pool_case){1, 1, 2, 4, w, 3, 3, 1, 2, 2, 0, 0, 2, 1, 0, 0}, pools, n_pools);
    }
    /* 2-D MaxPool 3x3 stride 2 by planes (dt_pool_max3s2_plane, each input row's maxima
     * kept for the next output row): tops padded 0-2, odd heights, ceil_mode's last row past
     * the bottom, rows wider than it takes (1025 outputs: the row loop), and inputs of signed
     * zeros and NaNs, where the first of equal maxima in the window's row order must win */
    for (int64_t h = 3; h <= 12; h++) {
        int64_t pt = h % 3, w = 9 + 4 * h;
        bad += run_case(&(pool_case){1, 1, 2, h, w, 3, 3, 2, 2, pt, 1, pt == 2 ? 0 : 1, 1, (int)(h % 2), 0, 0},
                        pools, n_pools);
        bad += run_case(&(pool_case){1, 2, 3, h, w, 3, 3, 2, 2, pt, (h / 3) % 3, 1, 0, (int)(h % 2), 0, 1},
                        pools, n_pools);
    }
    /* 2-D MaxPool at stride 1 by planes (dt_pool_maxs1_plane: each input row's maxima once,
     * in a ring of ky rows): yolo's SPPF 5x5 pads 2 on 20x20, 15x11 and 1-, 2-row maps;
     * kernels 1x1 to 8x8 with every pad below them, asymmetric; rows up to 512 outputs and
     * past it (516: the row loop); 9x9 (the row loop); signed zeros and NaNs */
    bad += run_case(&(pool_case){1, 1, 32, 20, 20, 5, 5, 1, 1, 2, 2, 2, 2, 0, 0, 0}, pools, n_pools);
    bad += run_case(&(pool_case){1, 1, 7, 15, 11, 5, 5, 1, 1, 2, 2, 2, 2, 0, 0, 1}, pools, n_pools);
    bad += run_case(&(pool_case){1, 2, 3, 1, 23, 5, 5, 1, 1, 2, 2, 2, 2, 0, 0, 0}, pools, n_pools);
    bad += run_case(&(pool_case){1, 1, 3, 2, 40, 5, 3, 1, 1, 4, 1, 4, 2, 0, 0, 1}, pools, n_pools);
    for (int64_t k = 1; k <= 8; k++)
        for (int64_t pad = 0; pad < k; pad++) {
            /* maps down to a row narrower than the window (at least one output) */
            int64_t h = 3 + (k * 5 + pad) % 19, w = 1 + (k * 7 + pad * 3) % 37;
            pool_case a = {1, 1 + pad % 2, 3, h, w, k, k, 1, 1, pad, pad, pad, pad, 0, 0, (int)(k % 2)};
            pool_case b = {1, 1, 2, w, h, k, 9 - k, 1, 1, pad, (9 - k) / 2, k - 1 - pad, (8 - k) / 3, 0, 0,
                           (int)(pad % 2)};
            for (pool_case *pc = &a; pc; pc = pc == &a ? &b : NULL) {
                if (pc->h + pc->pt + pc->pb < pc->kh || pc->w + pc->pl + pc->pr < pc->kw) continue;
                bad += run_case(pc, pools, n_pools);
                ran++;
            }
        }
    bad += run_case(&(pool_case){1, 1, 2, 6, 515, 5, 5, 1, 1, 2, 1, 2, 0, 0, 0, 1}, pools, n_pools);
    bad += run_case(&(pool_case){1, 1, 2, 6, 516, 5, 5, 1, 1, 2, 2, 2, 2, 0, 0, 1}, pools, n_pools);
    bad += run_case(&(pool_case){1, 1, 2, 12, 13, 9, 9, 1, 1, 4, 4, 4, 4, 0, 0, 0}, pools, n_pools);
    bad += run_case(&(pool_case){1, 1, 2, 5, 2049, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 1}, pools, n_pools);
    bad += run_case(&(pool_case){1, 1, 2, 5, 2047, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 1}, pools, n_pools);
    bad += run_case(&(pool_case){1, 1, 64, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 1}, pools, n_pools);
    CHECK(ran > 300);
    CHECK_EQ_INT(bad, 0);
}

int main(void)
{
    if (ophelp_begin()) return 1;
    dt_pool *pools[3] = {NULL, NULL, NULL};
    for (int t = 1; t <= 3; t++) CHECK_EQ_INT(dt_pool_create(t, &pools[t - 1]), DUCTILE_OK);
    test_pools_match_reference(pools, 3);
    for (int t = 0; t < 3; t++) dt_pool_free(pools[t]);
    ophelp_end();
    TEST_MAIN_END();
}
