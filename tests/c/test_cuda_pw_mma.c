/* The channels-last 1x1 conv on mma.sync (conv_pw_mma.cu, DT_CUDA_CONV_PW_MMA*), called
 * directly (a build times it against cuBLASLt and cuDNN and keeps the fastest, so an engine
 * test cannot tell which ran): at odd sizes (channels 8 to 1448, output channels 2 to 130,
 * maps 1x1 to 29x31, strides 1, 2 and 3, batch 1 and 3; tiles that end inside a block in
 * pixels, output channels and channels), the three tiles, unsplit and split over 2, 3 and 8
 * blocks of a cluster, with and without bias, residual and each activation, float16 and
 * bfloat16, against a double reference on the same (rounded) inputs: rel-L2 <= 1e-2. GPU
 * only (skips with "no CUDA device found"). And, without a GPU, what it refuses (C not a
 * multiple of 8, odd M, groups, 3x3, pads, float32, split over 8) and the split it picks. */
#include "cuda_probe.h"
#include "testutil.h"

#ifdef DT_WITH_CUDA
#include "backend/cuda/conv_own.h"
#include "cuda_bufs.h"

#include <cuda_runtime_api.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct mma_case {
    int64_t n, c, m, h, w, s;
    bool bias, res;
    int act;
} mma_case;

static dt_cu_conv geom_of(const mma_case *k)
{
    dt_cu_conv g = {.n = k->n, .c = k->c, .m = k->m, .ih = k->h, .iw = k->w, .kh = 1, .kw = 1, .sh = k->s, .sw = k->s,
                    .dh = 1, .dw = 1, .group = 1, .act = k->act};
    g.oh = (k->h - 1) / k->s + 1;
    g.ow = (k->w - 1) / k->s + 1;
    test_bufs_params(k->act, &g.p0, &g.p1);
    return g;
}

/* Runs case k in dtype with the tile and split given; returns rel-L2 against the reference. */
static double run_case(const mma_case *k, int dtype, int tile, int split)
{
    dt_cu_conv g = geom_of(k);
    conv_bufs t;
    conv_bufs_alloc(&t, dtype, (size_t)(k->n * k->h * k->w * k->c), (size_t)(k->m * k->c), (size_t)k->m,
                    (size_t)(k->n * g.oh * g.ow * k->m));
    /* Everything NHWC (weights [m, 1, 1, c]), as the kernel reads it. */
    for (size_t i = 0; i < t.nx; i++) t.x[i] = put(t.hx, dtype, i, rnd());
    for (size_t i = 0; i < t.nw; i++) t.w[i] = put(t.hw, dtype, i, 0.3f * rnd());
    for (size_t i = 0; i < t.nb; i++) t.b[i] = put(t.hb, dtype, i, rnd());
    for (size_t i = 0; i < t.ny; i++) t.r[i] = put(t.hr, dtype, i, rnd());
    double err = INFINITY;
    bool up = conv_bufs_upload(&t);
    CHECK(up);
    if (up) {
        int rc = dt_cu_conv_pw_mma(dtype, t.dx, t.dw, k->bias ? t.db : NULL, k->res ? t.dr : NULL, t.dy, &g, tile, split, NULL);
        CHECK_EQ_INT(rc, 0);
        CHECK_EQ_INT(conv_bufs_download(&t), 0);
        rel_err e = {0, 0};
        for (int64_t n = 0; n < k->n; n++)
            for (int64_t h = 0; h < g.oh; h++)
                for (int64_t q = 0; q < g.ow; q++)
                    for (int64_t o = 0; o < k->m; o++) {
                        double acc = 0;
                        for (int64_t c = 0; c < k->c; c++)
                            acc += (double)t.x[at(true, n, c, h * k->s, q * k->s, k->c, k->h, k->w)] * t.w[o * k->c + c];
                        size_t yi = at(true, n, o, h, q, k->m, g.oh, g.ow);
                        if (k->bias) acc += t.b[o];
                        if (k->res) acc += t.r[yi];
                        rel_err_add(&e, get(t.hy, dtype, yi), act_ref(k->act, (float)acc));
                    }
        err = rel_err_of(&e);
    }
    conv_bufs_free(&t);
    return err;
}

static const mma_case cases[] = {
    /* n, c, m, h, w, s, bias, res, act */
    {1, 8, 2, 1, 1, 1, true, false, DT_CU_RELU},          /* one pixel, one step of channels */
    {1, 16, 24, 7, 7, 1, true, true, DT_CU_IDENTITY},     /* 49 pixels: tiles end inside */
    {1, 264, 34, 7, 7, 1, true, true, DT_CU_CLIP},        /* 264 channels: a partial step */
    {3, 40, 130, 13, 11, 1, true, false, DT_CU_HARDSWISH},
    {1, 24, 96, 29, 31, 2, false, true, DT_CU_RELU},       /* stride 2, odd map */
    {3, 16, 6, 13, 11, 3, true, false, DT_CU_SIGMOID},     /* stride 3 */
    {1, 960, 160, 7, 7, 1, true, true, DT_CU_IDENTITY},    /* mobilenet's 7x7 projection */
    {1, 1448, 66, 2, 3, 1, true, true, DT_CU_CLIP},        /* 6 pixels, 1448 channels */
    {2, 64, 384, 14, 14, 1, true, false, DT_CU_CLIP},      /* an expand 1x1 (ReLU6-like clip) */
};

/* Host-side: what the kernel refuses and the split it picks, without a GPU. */
static void check_host(void)
{
    mma_case base = {1, 16, 32, 7, 7, 1, true, false, DT_CU_RELU};
    dt_cu_conv g = geom_of(&base);
    CHECK(dt_cu_conv_pw_mma_applies(&g));
    dt_cu_conv c3 = g, odd = g, grp = g, k3 = g, pad = g;
    c3.c = 3, odd.m = 31, grp.group = 2, k3.kh = k3.kw = 3, pad.ph = pad.pw = 1, pad.oh = pad.ow = 9;
    CHECK(!dt_cu_conv_pw_mma_applies(&c3) && !dt_cu_conv_pw_mma_applies(&odd) && !dt_cu_conv_pw_mma_applies(&grp));
    CHECK(!dt_cu_conv_pw_mma_applies(&k3) && !dt_cu_conv_pw_mma_applies(&pad));
    CHECK_EQ_INT(dt_cu_conv_pw_mma(DUCTILE_FLOAT16, NULL, NULL, NULL, NULL, NULL, &c3, 64, 1, NULL), (int)cudaErrorInvalidValue);
    CHECK_EQ_INT(dt_cu_conv_pw_mma(DUCTILE_FLOAT32, NULL, NULL, NULL, NULL, NULL, &g, 64, 1, NULL), (int)cudaErrorInvalidValue);
    CHECK_EQ_INT(dt_cu_conv_pw_mma(DUCTILE_FLOAT16, NULL, NULL, NULL, NULL, NULL, &g, 64, 9, NULL), (int)cudaErrorInvalidValue);
    /* 7x7 x 960 -> 160 at 32 x 32 tiles: 10 blocks on 132 multiprocessors, 30 steps of 32
     * channels: split 7 (4 steps a slice at least); 16 channels in: one step, no split; a grid
     * that fills the GPU: no split. */
    dt_cu_conv deep = g;
    deep.c = 960, deep.m = 160;
    CHECK_EQ_INT(dt_cu_conv_pw_mma_split(&deep, 32, 132), 7);
    CHECK_EQ_INT(dt_cu_conv_pw_mma_split(&g, 32, 132), 1);
    dt_cu_conv big = deep;
    big.ih = big.iw = big.oh = big.ow = 112;
    CHECK_EQ_INT(dt_cu_conv_pw_mma_split(&big, 32, 132), 1);
    CHECK_EQ_INT(dt_cu_conv_pw_mma_split(&deep, 32, 0), 1);
}

int main(void)
{
    check_host();
    if (!test_cuda_device_found()) {
        fprintf(stderr, "skipped: no CUDA device found\n");
        TEST_MAIN_END();
    }
    static const int dtypes[] = {DUCTILE_FLOAT16, DUCTILE_BFLOAT16};
    static const char *const names[] = {"f16", "bf16"};
    static const int splits[] = {1, 2, 3, 8};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int t = 0; t < 2; t++)
            for (int tile = 128; tile >= 32; tile /= 2)
                for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
                    double err = run_case(&cases[i], dtypes[t], tile, splits[s]);
                    if (!(err <= 1e-2))
                        fprintf(stderr, "case %zu %s tile %d split %d: rel-L2 %.3e\n", i, names[t], tile, splits[s], err);
                    CHECK(err <= 1e-2);
                }
    TEST_MAIN_END();
}
#else
int main(void)
{
    fprintf(stderr, "skipped: no CUDA device found (CPU-only build)\n");
    TEST_MAIN_END();
}
#endif
