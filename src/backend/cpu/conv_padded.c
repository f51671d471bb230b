/* Stride-1 convolution over a zero-padded copy of the image, computed over the padded width.
 *
 * With the image padded to Hp x Wp and outputs taken at every padded column, row
 * (c, ky, kx) of im2col is one contiguous run of the padded image starting at
 * c*Hp*Wp + ky*dh*Wp + kx*dw. Packing B is then a straight copy of 48-float runs, with none
 * of the per-segment clipping of the general im2col, which costs more than the GEMM itself
 * when M (output channels) is small. The price: Wp - OW garbage columns per output row
 * (computed, then dropped when the rows are copied out) and one copy of the image. */
#include "backend/cpu/conv.h"
#include "core/alloc.h"
#include "backend/cpu/gemm.h"
#include "core/checked.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>

/* Output rows per GEMM: enough columns for both threads to get whole cache blocks, few
 * enough that the staging buffer stays a couple of MB. */
enum { DT_PADDED_COLS = 6 * DT_GEMM_NC };

bool dt_cpu_conv_padded_applies(const dt_conv_geom *g)
{
    int64_t wp = g->in[1] + g->pb[1] + g->pe[1];
    int64_t K = g->c / g->group * g->k[0] * g->k[1], M = g->m / g->group;
    /* The rows copied out cost ~M per pixel, the im2col clipping saved ~K per pixel. */
    return g->s[0] == 1 && g->s[1] == 1 && g->out[1] >= 32 && wp * 8 <= g->out[1] * 9 &&
           2 * K >= M;
}

typedef struct dt_padded {
    const float *xp;        /* padded image of this group */
    int64_t plane, wp, kh, kw, dh, dw;
    int64_t col0;           /* padded-grid column of the GEMM's column 0 */
} dt_padded;

static void dt_padded_pack(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc,
                           float *dst)
{
    const dt_padded *p = ctx;
    int64_t ksz = p->kh * p->kw;
    int64_t c = k0 / ksz, r = k0 % ksz, ky = r / p->kw, kx = r % p->kw;
    for (int64_t kk = 0; kk < kc; kk++) {
        const float *src = p->xp + c * p->plane + ky * p->dh * p->wp + kx * p->dw + p->col0 + n0;
        dt_gemm_scatter_row(src, nc, kk, kc, dst);
        if (++kx == p->kw) {
            kx = 0;
            if (++ky == p->kh) {
                ky = 0;
                c++;
            }
        }
    }
}

typedef struct dt_padded_out {
    const float *stage;
    float *y;
    const dt_epilogue *epi;     /* res offset like y */
    int64_t ldc, wp, ow, out_px, row0, rows;
} dt_padded_out;

/* Copies the valid columns of the staged rows into y, output channels split over threads. */
static void dt_padded_copy_out(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_padded_out *o = arg;
    for (int64_t m = begin; m < end; m++)
        for (int64_t r = 0; r < o->rows; r++) {
            int64_t off = m * o->out_px + (o->row0 + r) * o->ow;
            memcpy(o->y + off, o->stage + m * o->ldc + r * o->wp, (size_t)o->ow * sizeof(float));
            if (o->epi)
                dt_epilogue_apply(o->epi, o->y + off, o->epi->res ? o->epi->res + off : NULL, o->ow);
        }
}

/* The padded copy's and the staging rows' floats, rows of output per GEMM, and the GEMM
 * scratch (the most of a full and the last, shorter, band). */
static ductile_status dt_padded_sizes(const dt_conv_geom *g, const dt_conv_args *a, int threads, size_t *nxp,
                                      size_t *nstage, int64_t *rows, size_t *gemm)
{
    int64_t cg = g->c / g->group, mg = g->m / g->group;
    int64_t hp = g->in[0] + g->pb[0] + g->pe[0], wp = g->in[1] + g->pb[1] + g->pe[1];
    int64_t K = cg * g->k[0] * g->k[1];
    *rows = (DT_PADDED_COLS + wp - 1) / wp;
    if (*rows > g->out[0]) *rows = g->out[0];
    /* The last garbage column of the last channel reads (kw-1)*dw past the plane. */
    if (!dt_mul_size((size_t)(cg * hp), (size_t)wp, nxp) ||
        !dt_add_size(*nxp, (size_t)((g->k[1] - 1) * g->d[1] + 16), nxp) ||
        !dt_mul_size((size_t)mg, (size_t)(*rows * wp), nstage))
        return dt_fail(DUCTILE_ERR_SHAPE, "conv scratch for input of %lld channels of %lldx%lld is too large",
                       (long long)cg, (long long)hp, (long long)wp);
    *nxp = (*nxp + 15) & ~(size_t)15;       /* the stage starts 64-byte aligned */
    *nstage = (*nstage + 15) & ~(size_t)15;
    dt_gemm gm = {.M = mg, .N = *rows * wp, .K = K, .A_packed = a->w_packed, .A_bf16 = a->w_bf16};
    *gemm = dt_sgemm_scratch_bytes(&gm, threads);
    int64_t last = g->out[0] % *rows;
    if (last) {
        gm.N = last * wp;
        size_t b = dt_sgemm_scratch_bytes(&gm, threads);
        if (b > *gemm) *gemm = b;
    }
    return DUCTILE_OK;
}

ductile_status dt_cpu_conv_padded_scratch(const dt_conv_geom *g, const dt_conv_args *a, int threads, size_t *bytes)
{
    size_t nxp = 0, nstage = 0, gemm = 0;
    int64_t rows;
    DT_TRY(dt_padded_sizes(g, a, threads, &nxp, &nstage, &rows, &gemm));
    if (!dt_add_size(nxp, nstage, bytes) || !dt_mul_size(*bytes, sizeof(float), bytes) || !dt_add_size(*bytes, gemm, bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "conv scratch of %zu + %zu floats is too large", nxp, nstage);
    return DUCTILE_OK;
}

ductile_status dt_cpu_conv_padded(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool)
{
    if (!a->scratch) return dt_cpu_conv_run_algo(g, a, DT_CONV_PADDED, pool); /* allocates it */
    const float *x = a->x, *bias = a->bias;
    float *y = a->y;
    int64_t cg = g->c / g->group, mg = g->m / g->group;
    int64_t hp = g->in[0] + g->pb[0] + g->pe[0], wp = g->in[1] + g->pb[1] + g->pe[1];
    int64_t in_px = g->in[0] * g->in[1], out_px = g->out[0] * g->out[1];
    int64_t K = cg * g->k[0] * g->k[1];
    size_t nxp = 0, nstage = 0, gemm = 0;
    int64_t rows;
    DT_TRY(dt_padded_sizes(g, a, dt_pool_threads(pool), &nxp, &nstage, &rows, &gemm));
    float *xp = a->scratch, *stage = xp + nxp;
    void *gs = stage + nstage;
    memset(xp, 0, nxp * sizeof *xp);
    ductile_status st = DUCTILE_OK;
    for (int64_t b = 0; b < g->batch && st == DUCTILE_OK; b++) {
        for (int64_t gi = 0; gi < g->group && st == DUCTILE_OK; gi++) {
            const float *xg = x + (b * g->c + gi * cg) * in_px;
            /* Borders stay zero from the memset; only the interior changes between groups. */
            for (int64_t c = 0; c < cg; c++)
                for (int64_t r = 0; r < g->in[0]; r++)
                    memcpy(xp + c * hp * wp + (r + g->pb[0]) * wp + g->pb[1],
                           xg + c * in_px + r * g->in[1], (size_t)g->in[1] * sizeof(float));
            int64_t yoff = (b * g->m + gi * mg) * out_px;
            float *yg = y + yoff;
            dt_epilogue epi;
            if (a->epi) {
                epi = *a->epi;
                if (epi.res) epi.res += yoff;
            }
            for (int64_t r0 = 0; r0 < g->out[0] && st == DUCTILE_OK; r0 += rows) {
                int64_t nr = g->out[0] - r0 < rows ? g->out[0] - r0 : rows;
                dt_padded pk = {xp, hp * wp, wp, g->k[0], g->k[1], g->d[0], g->d[1], r0 * wp};
                dt_gemm gm = {
                    .M = mg, .N = nr * wp, .K = K, .alpha = 1.0f, .beta = 0.0f,
                    .A = a->w ? a->w + gi * mg * K : NULL, .lda = K,
                    .A_packed = a->w_packed ? a->w_packed + gi * dt_gemm_packed_a_floats(mg, K) : NULL,
                    .A_bf16 = a->w_bf16 ? a->w_bf16 + gi * dt_gemm_packed_a_bf16_elems(mg, K) : NULL,
                    .fp16 = a->w_fp16,
                    .pack_b = dt_padded_pack, .pack_b_ctx = &pk,
                    .C = stage, .ldc = nr * wp,
                    .bias = bias ? bias + gi * mg : NULL,
                };
                st = dt_sgemm_in(&gm, pool, gs);
                dt_padded_out o = {stage, yg, a->epi ? &epi : NULL, nr * wp, wp, g->out[1], out_px, r0, nr};
                if (st == DUCTILE_OK) dt_parallel_for(pool, mg, 4, dt_padded_copy_out, &o);
            }
        }
    }
    return st;
}
