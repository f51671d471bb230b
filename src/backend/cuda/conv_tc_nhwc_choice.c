/* The channels-last tensor-core convolution's layer side (conv_tc_nhwc.h): the geometries its
 * kernel (and the small-C direct one) takes and the tile of a forced run (DUCTILE_CUDA_CONV).
 * conv_own.c launches it as it does the other own kernels; the builder times its tiles
 * (tactics.c). */
#include "backend/cuda/conv_tc_nhwc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool dt_cuda_conv_tc_nhwc_applies(const dt_conv_geom *g)
{
    /* 16-byte copies of 8 channels inside one pixel; the kernel's int pixel, channel and
     * position arithmetic (the tap offsets of padded rows stay below 2^30); grid y. */
    int64_t pixels = g->batch * g->out[0] * g->out[1];
    return g->spatial <= 2 && g->group == 1 && g->c % 8 == 0 && g->c > 0 && g->m > 0 && pixels > 0 &&
           pixels < INT32_MAX - 256 && g->c < (1 << 24) && g->m <= 65535 * 32 && g->in[0] < (1 << 24) &&
           g->in[1] < (1 << 24) && g->k[0] * g->d[0] < (1 << 24) && g->k[1] * g->d[1] < (1 << 24) &&
           g->s[0] < (1 << 12) && g->s[1] < (1 << 12) && g->pb[0] < (1 << 24) && g->pb[1] < (1 << 24) &&
           g->k[0] * g->k[1] * ((g->c + 31) / 32) < INT32_MAX;
}

bool dt_cuda_conv_smallc_nhwc_applies(const dt_conv_geom *g)
{
    /* A block's weights as float in 48 KiB of shared memory, a kernel row's inputs in
     * registers; int positions and pixels per image; the channel blocks in a grid's y. */
    int64_t k = g->c * g->k[0] * g->k[1];
    return g->spatial <= 2 && g->group == 1 && g->c > 0 && g->c < 8 && g->m > 0 &&
           k * DT_CU_SMALLC_CHANNELS * 4 <= 48 * 1024 && g->k[1] * g->c <= DT_CU_SMALLC_ROW &&
           g->m <= (int64_t)DT_CU_SMALLC_CHANNELS * 65535 &&
           g->out[0] * g->out[1] < INT32_MAX && g->in[0] < (1 << 24) && g->in[1] < (1 << 24) &&
           g->k[0] * g->d[0] < (1 << 24) && g->k[1] * g->d[1] < (1 << 24) && g->s[0] < (1 << 12) &&
           g->s[1] < (1 << 12) && g->pb[0] < (1 << 24) && g->pb[1] < (1 << 24);
}

bool dt_cuda_conv_smallc_mma_applies(const dt_conv_geom *g)
{
    /* K in at most four k-steps of 16; the patch of an output tile in 48 KiB (with the k
     * table); int patch offsets and positions; the blocks of a grid's x, the 64-channel
     * groups in its y. */
    if (g->spatial > 2 || g->group != 1 || g->c <= 0 || g->c >= 8 || g->m <= 0 || g->c * g->k[0] * g->k[1] > 64 ||
        g->s[0] >= (1 << 12) || g->s[1] >= (1 << 12) || g->d[0] >= (1 << 12) || g->d[1] >= (1 << 12) ||
        g->in[0] >= (1 << 24) || g->in[1] >= (1 << 24) || g->pb[0] >= (1 << 24) || g->pb[1] >= (1 << 24) ||
        g->m > 64 * 65535)
        return false;
    dt_cu_conv c = dt_cu_conv_of(g, NULL);
    int64_t tiles = ((g->out[0] + DT_CU_SMALLC_MMA_TH - 1) / DT_CU_SMALLC_MMA_TH) *
                    ((g->out[1] + DT_CU_SMALLC_MMA_TW - 1) / DT_CU_SMALLC_MMA_TW);
    return dt_cu_conv_smallc_mma_smem(&c) <= 48 * 1024 && tiles > 0 && g->batch <= INT32_MAX / tiles;
}

bool dt_cuda_conv_patch_mma_applies(const dt_conv_geom *g)
{
    /* k-steps of 16 channels inside one tap; the patch and weights within
     * DT_CU_PATCH_MMA_SMEM; int patch offsets, positions and channels; the blocks of a grid's x,
     * the channel groups in its y. */
    if (g->spatial > 2 || g->group != 1 || g->c <= 0 || g->c % 16 || g->m <= 0 || g->c >= (1 << 16) ||
        g->s[0] >= (1 << 12) || g->s[1] >= (1 << 12) || g->d[0] >= (1 << 12) || g->d[1] >= (1 << 12) ||
        g->k[0] >= (1 << 12) || g->k[1] >= (1 << 12) || g->in[0] >= (1 << 24) || g->in[1] >= (1 << 24) ||
        g->pb[0] >= (1 << 24) || g->pb[1] >= (1 << 24) || g->m > 64 * 65535 || g->out[0] >= (1 << 24) ||
        g->out[1] >= (1 << 24))
        return false;
    dt_cu_conv c = dt_cu_conv_of(g, NULL);
    int64_t tiles = ((g->out[0] + DT_CU_PATCH_MMA_TH - 1) / DT_CU_PATCH_MMA_TH) *
                    ((g->out[1] + DT_CU_PATCH_MMA_TW - 1) / DT_CU_PATCH_MMA_TW);
    return dt_cu_conv_patch_mma_smem(&c) <= DT_CU_PATCH_MMA_SMEM && tiles > 0 && g->batch <= INT32_MAX / tiles;
}

int dt_cuda_conv_tc_nhwc_forced(void)
{
    static const char *const names[DT_CU_TC_NHWC_TILES] = {"tc_nhwc_256x64", "tc_nhwc_128x128", "tc_nhwc_128x64",
                                                           "tc_nhwc_64x64", "tc_nhwc_128x32", "tc_nhwc_64x32"};
    const char *v = getenv("DUCTILE_CUDA_CONV");
    if (!v) return 0;
    if (!strcmp(v, "tc_nhwc")) return DT_CUDA_CONV_TC_NHWC_AUTO;
    if (!strcmp(v, "smallc_nhwc")) return DT_CUDA_CONV_SMALLC_NHWC;
    if (!strcmp(v, "smallc_mma")) return DT_CUDA_CONV_SMALLC_MMA;
    if (!strcmp(v, "patch_mma")) return DT_CUDA_CONV_PATCH_MMA;
    for (int t = 0; t < DT_CU_TC_NHWC_TILES; t++)
        if (!strcmp(v, names[t])) return DT_CUDA_CONV_TC_NHWC + t;
    return 0;
}

bool dt_cuda_smallc_mma_enabled(void)
{
    const char *v = getenv("DUCTILE_CUDA_SMALLC_MMA");
    return !v || strcmp(v, "0");
}

bool dt_cuda_patch_mma_enabled(void)
{
    const char *v = getenv("DUCTILE_CUDA_PATCH_MMA");
    return !v || strcmp(v, "0");
}

bool dt_cuda_conv_tc_enabled(void)
{
    const char *v = getenv("DUCTILE_CUDA_CONV_TC");
    return !v || strcmp(v, "0");
}

static const int dt_tc_bm[DT_CU_TC_NHWC_TILES] = {256, 128, 128, 64, 128, 64},
                 dt_tc_bn[DT_CU_TC_NHWC_TILES] = {64, 128, 64, 64, 32, 32};

bool dt_cuda_conv_tc_nhwc_offered(const dt_conv_geom *g, int tile)
{
    if (dt_tc_bn[tile] > 32 && g->m <= dt_tc_bn[tile] / 2) return false;   /* half the tile's channels idle */
    return !(dt_tc_bm[tile] > 128 && g->m > dt_tc_bn[tile]);               /* wider channel tiles first */
}

int dt_cuda_conv_tc_nhwc_tile(const dt_conv_geom *g, int sms)
{
    const int *bm = dt_tc_bm, *bn = dt_tc_bn;
    int64_t pixels = g->batch * g->out[0] * g->out[1], best = 0;
    int pick = DT_CU_TC_NHWC_64x32;
    for (int t = 0; t < DT_CU_TC_NHWC_TILES; t++) {
        if (!dt_cuda_conv_tc_nhwc_offered(g, t)) continue;
        int64_t blocks = (pixels + bm[t] - 1) / bm[t] * ((g->m + bn[t] - 1) / bn[t]);
        if (blocks >= 2 * (int64_t)sms) return t;   /* tiles in order of size */
        if (blocks >= best) {   /* ties: the smaller tile */
            best = blocks;
            pick = t;
        }
    }
    return pick;
}
