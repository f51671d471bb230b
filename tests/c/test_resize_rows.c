/* The Resize row loops on AVX-512 (backend/cpu/nn_resize_avx512.c) against the scalar loops they
 * stand in for, bit for bit: each output of a row lerped from its two input columns (a + (c -
 * a) w), gathered (nearest) and lerped between two rows. The column tables are made as the
 * kernel makes them for half_pixel and align_corners at upscales (x2 of 64, 5 -> 11, 7 -> 16, 1
 * -> 7, 3 -> 2048), downscales (13 -> 5, 40 -> 17: vectors within 32 inputs) and strong ones
 * (100 -> 9: vectors wider than 32 inputs, the scalar fallback), rows narrower than a vector and
 * a masked tail; each row is its own allocation of exactly its length, so that a load past its
 * end would show under the sanitizers. The planned columns must stay inside the row. */
#include "ophelp.h"
#include "backend/cpu/nn_resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Columns and weights of output ox of a row of iw inputs resized to ow, as dt_resize_axis_fill
 * makes them (linear; nearest takes i0). */
static void make_table(int64_t iw, int64_t ow, bool align, int64_t *i0, int64_t *i1, float *w)
{
    float scale = (float)ow / (float)iw;
    for (int64_t x = 0; x < ow; x++) {
        float s = align ? (ow == 1 ? 0.0f : (float)x * (float)(iw - 1) / (float)(ow - 1))
                        : ((float)x + 0.5f) / scale - 0.5f;
        s = s < 0.0f ? 0.0f : s > (float)(iw - 1) ? (float)(iw - 1) : s;
        i0[x] = (int64_t)s;
        i1[x] = i0[x] + 1 < iw ? i0[x] + 1 : iw - 1;
        w[x] = i1[x] == i0[x] ? 0.0f : s - (float)i0[x];
    }
}

static int check_row(int64_t iw, int64_t ow, bool align)
{
    int64_t *i0 = malloc(sizeof(int64_t) * (size_t)ow), *i1 = malloc(sizeof(int64_t) * (size_t)ow);
    int64_t *base = malloc(sizeof(int64_t) * (size_t)dt_resize_vecs(ow));
    int32_t *rel = malloc(sizeof(int32_t) * (size_t)(32 * dt_resize_vecs(ow)));
    float *w = malloc(sizeof(float) * (size_t)ow), *r = malloc(sizeof(float) * (size_t)iw);
    float *r2 = malloc(sizeof(float) * (size_t)ow), *got = malloc(sizeof(float) * (size_t)ow);
    float *want = malloc(sizeof(float) * (size_t)ow);
    int bad = 0;
    make_table(iw, ow, align, i0, i1, w);
    for (int64_t i = 0; i < iw; i++) r[i] = (float)((i * 7919) % 1000) / 97.0f - 5.0f;
    for (int64_t i = 0; i < ow; i++) r2[i] = (float)((i * 104729) % 997) / 31.0f - 16.0f;
    dt_resize_plan_row(i0, i1, ow, rel, base);
    int64_t ow16 = 16 * dt_resize_vecs(ow);
    for (int64_t v = 0; v < dt_resize_vecs(ow); v++)
        for (int64_t k = v * 16; k < v * 16 + 16 && k < ow && base[v] >= 0; k++)
            if (base[v] + rel[k] != i0[k] || base[v] + rel[ow16 + k] != i1[k] || rel[k] < 0 || rel[k] > 31) bad++;
    dt_resize_hline_avx512(r, iw, i0, i1, w, rel, base, ow, got);
    for (int64_t x = 0; x < ow; x++) want[x] = r[i0[x]] + (r[i1[x]] - r[i0[x]]) * w[x];
    bad += memcmp(got, want, sizeof(float) * (size_t)ow) != 0;
    dt_resize_plan_row(i0, NULL, ow, rel, base);
    dt_resize_gather_avx512(r, iw, i0, rel, base, ow, got);
    for (int64_t x = 0; x < ow; x++) want[x] = r[i0[x]];
    bad += memcmp(got, want, sizeof(float) * (size_t)ow) != 0;
    float wy = w[ow / 2] + 0.125f;
    dt_resize_vlerp_avx512(want, r2, wy, ow, got);
    for (int64_t x = 0; x < ow; x++) {
        float t = want[x] + (r2[x] - want[x]) * wy;
        bad += memcmp(&t, &got[x], sizeof t) != 0;
    }
    if (bad) fprintf(stderr, "resize row %lld -> %lld (%s): %d differences\n", (long long)iw, (long long)ow,
                     align ? "align_corners" : "half_pixel", bad);
    free(i0), free(i1), free(base), free(rel), free(w), free(r), free(r2), free(got), free(want);
    return bad;
}

static void test_vector_rows_match_scalar_rows(void)
{
    if (!dt_resize_avx512_ok()) {
        fprintf(stderr, "skip: this CPU has no AVX-512 (the scalar loops run)\n");
        return;
    }
    static const int64_t sizes[][2] = {{64, 128}, {5, 11}, {7, 16}, {1, 7}, {3, 2048}, {13, 5}, {40, 17},
                                       {100, 9}, {2, 3}, {16, 16}, {33, 65}, {128, 1024}, {49, 98}};
    int bad = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int a = 0; a < 2; a++) bad += check_row(sizes[i][0], sizes[i][1], a);
    CHECK_EQ_INT(bad, 0);
}

/* A strong downscale leaves vectors whose columns span more than 32 inputs to the scalar loop;
 * an upscale plans every vector. */
static void test_plan_falls_back_only_where_columns_spread(void)
{
    int64_t i0[64], i1[64], base[4];
    int32_t rel[128];
    float w[64];
    make_table(100, 9, false, i0, i1, w);
    dt_resize_plan_row(i0, i1, 9, rel, base);
    CHECK(base[0] == -1);
    make_table(30, 64, false, i0, i1, w);
    dt_resize_plan_row(i0, i1, 64, rel, base);
    for (int v = 0; v < 4; v++) CHECK(base[v] >= 0);
}

int main(void)
{
    if (ophelp_begin()) return 1;
    test_vector_rows_match_scalar_rows();
    test_plan_falls_back_only_where_columns_spread();
    ophelp_end();
    TEST_MAIN_END();
}
