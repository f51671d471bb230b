/* Conv and FusedConv on the CUDA backend's own kernels (conv_own.h): the checks of which
 * geometry each kernel computes, the split-K sums they keep in the context's scratch, and the
 * launch with the layer's bias, residual and activation fused. */
#include "backend/cuda/conv_own.h"
#include "backend/cuda/conv_tc_nhwc.h"
#include "core/checked.h"
#include "core/status.h"
#include "ops/fused.h"

#include <cuda_runtime_api.h>

#include <stdint.h>

int dt_cuda_sm_count(void)
{
    static int sms = -1;
    if (sms < 0) {
        int v = 0;
        if (cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, 0) != cudaSuccess) {
            cudaGetLastError();
            v = 0;
        }
        sms = v;
    }
    return sms;
}

/* The GPU's compute capability major (0: no GPU), read once. */
static int dt_cc_major(void)
{
    static int major = -1;
    if (major < 0) {
        int v = 0;
        if (cudaDeviceGetAttribute(&v, cudaDevAttrComputeCapabilityMajor, 0) != cudaSuccess) {
            cudaGetLastError();
            v = 0;
        }
        major = v;
    }
    return major;
}

/* Tensor cores with bfloat16 WMMA: compute capability 8.0+. */
static bool dt_tensor_cores(void) { return dt_cc_major() >= 8; }

int dt_cuda_conv_splitk(const dt_conv_geom *g, int tile, int sms)
{
    int64_t P = g->out[0] * g->out[1], K = g->c / g->group * g->k[0] * g->k[1];
    int64_t blocks = (P + tile - 1) / tile * ((g->m / g->group + tile - 1) / tile) * g->batch * g->group;
    int64_t want = 2 * (int64_t)sms;
    if (blocks <= 0 || blocks * 2 > want) return 1;
    int64_t s = (want + blocks - 1) / blocks, most = K / 64;
    if (s > most) s = most;
    if (s > 64) s = 64;
    if (g->batch * g->group * s > 65535) return 1;
    return s < 2 ? 1 : (int)s;
}

ductile_status dt_cuda_conv_split_bytes(const dt_conv_geom *g, int split, size_t *bytes)
{
    size_t elems = 0;
    *bytes = 0;
    if (!dt_mul_size((size_t)split, (size_t)g->batch, &elems) || !dt_mul_size(elems, (size_t)g->m, &elems) ||
        !dt_mul_size(elems, (size_t)g->out[0], &elems) || !dt_mul_size(elems, (size_t)g->out[1], &elems) ||
        !dt_mul_size(elems, sizeof(float), bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "split-K convolution: %d slices of %lld x %lld x %lld x %lld floats overflow size_t",
                       split, (long long)g->batch, (long long)g->m, (long long)g->out[0], (long long)g->out[1]);
    return DUCTILE_OK;
}

static bool dt_is_tc(int tactic)
{
    return (tactic >= DT_CUDA_CONV_TC_POINTWISE && tactic <= DT_CUDA_CONV_TC_IGEMM_SPLITK) ||
           DT_CUDA_CONV_IS_TC_NHWC(tactic);
}

static bool dt_is_split(int tactic)
{
    return tactic == DT_CUDA_CONV_POINTWISE32_SPLITK || tactic == DT_CUDA_CONV_IGEMM32_SPLITK ||
           tactic == DT_CUDA_CONV_TC_POINTWISE_SPLITK || tactic == DT_CUDA_CONV_TC_IGEMM_SPLITK;
}

dt_cu_conv dt_cu_conv_of(const dt_conv_geom *g, const dt_cu_conv_epi *e)
{
    return (dt_cu_conv){
        .n = g->batch, .c = g->c, .m = g->m, .ih = g->in[0], .iw = g->in[1], .oh = g->out[0], .ow = g->out[1],
        .kh = g->k[0], .kw = g->k[1], .sh = g->s[0], .sw = g->s[1], .ph = g->pb[0], .pw = g->pb[1],
        .dh = g->d[0], .dw = g->d[1], .group = g->group, .act = e ? e->act : DT_CU_IDENTITY,
        .p0 = e ? e->p0 : 0.f, .p1 = e ? e->p1 : 0.f,
    };
}

int dt_cuda_conv_pw_mma_split(const dt_conv_geom *g, int tactic)
{
    if (tactic != DT_CUDA_CONV_PW_MMA64_SPLITK && tactic != DT_CUDA_CONV_PW_MMA32_SPLITK) return 1;
    dt_cu_conv c = dt_cu_conv_of(g, NULL);
    return dt_cu_conv_pw_mma_split(&c, tactic == DT_CUDA_CONV_PW_MMA64_SPLITK ? 64 : 32, dt_cuda_sm_count());
}

bool dt_cuda_conv_own_applies(const dt_conv_geom *g, int dtype, int tactic)
{
    /* The kernels' element types (conv_own.h). */
    if (dtype != DUCTILE_FLOAT32 && dtype != DUCTILE_FLOAT16 && dtype != DUCTILE_BFLOAT16) return false;
    /* The implicit GEMM's grid: images x groups in z, output channels in y (each at most
     * 65535 blocks). */
    bool grid = g->batch * g->group <= 65535 && g->m / g->group <= 65535 * 32;
    /* ... and its gather's 32-bit index arithmetic. */
    bool idx32 = g->out[0] * g->out[1] < INT32_MAX && (g->c / g->group) * g->k[0] * g->k[1] < INT32_MAX &&
                 g->in[0] < (1 << 28) && g->in[1] < (1 << 28) && g->k[0] * g->d[0] < (1 << 28) &&
                 g->k[1] * g->d[1] < (1 << 28) && g->s[0] < (1 << 12) && g->s[1] < (1 << 12);
    if (dt_is_tc(tactic) && (dtype == DUCTILE_FLOAT32 || !dt_tensor_cores())) return false;
    if (dt_is_split(tactic) && dt_cuda_conv_splitk(g, dt_is_tc(tactic) ? 64 : 32, dt_cuda_sm_count()) < 2) return false;
    switch (tactic) {
    case DT_CUDA_CONV_DEPTHWISE:
    case DT_CUDA_CONV_DEPTHWISE_NHWC: return g->group == g->c && g->group > 1;
    case DT_CUDA_CONV_DW_TILED:
    case DT_CUDA_CONV_DW_TILED_NHWC: {
        /* Symmetric pads (the kernel reads the begins) and the tile planner's bounds. */
        dt_cu_conv c = dt_cu_conv_of(g, NULL);
        return g->group == g->c && g->group > 1 && g->pb[0] == g->pe[0] && g->pb[1] == g->pe[1] &&
               dt_cu_conv_dw_tiled_applies(&c, tactic == DT_CUDA_CONV_DW_TILED_NHWC);
    }
    case DT_CUDA_CONV_POINTWISE64:
    case DT_CUDA_CONV_POINTWISE32:
    case DT_CUDA_CONV_POINTWISE32_SPLITK:
    case DT_CUDA_CONV_TC_POINTWISE:
    case DT_CUDA_CONV_TC_POINTWISE_SPLITK:
        return grid && g->group == 1 && g->k[0] == 1 && g->k[1] == 1 && g->s[0] == 1 && g->s[1] == 1 &&
               g->pb[0] == 0 && g->pb[1] == 0 && g->pe[0] == 0 && g->pe[1] == 0;
    case DT_CUDA_CONV_IGEMM64:
    case DT_CUDA_CONV_IGEMM32:
    case DT_CUDA_CONV_IGEMM32_SPLITK:
    case DT_CUDA_CONV_TC_IGEMM:
    case DT_CUDA_CONV_TC_IGEMM_SPLITK: return grid && idx32;
    case DT_CUDA_CONV_PW_MMA64:
    case DT_CUDA_CONV_PW_MMA32:
    case DT_CUDA_CONV_PW_MMA64_SPLITK:
    case DT_CUDA_CONV_PW_MMA32_SPLITK:
    case DT_CUDA_CONV_PW_MMA128: {
        /* cp.async, mma.sync and clusters: sm_90 (the only machine code built). A split
         * tactic applies wherever the kernel does (it runs unsplit where the grid fills the
         * GPU at these shapes); the builder times it only where it splits (tactics.c). */
        dt_cu_conv c = dt_cu_conv_of(g, NULL);
        return dtype != DUCTILE_FLOAT32 && dt_cc_major() >= 9 && g->spatial <= 2 && g->pe[0] == 0 && g->pe[1] == 0 &&
               dt_cu_conv_pw_mma_applies(&c);
    }
    }
    if (DT_CUDA_CONV_IS_TC_NHWC(tactic)) return dt_cuda_conv_tc_nhwc_applies(g);
    if (tactic == DT_CUDA_CONV_SMALLC_NHWC) return dtype != DUCTILE_FLOAT32 && dt_cuda_conv_smallc_nhwc_applies(g);
    if (tactic == DT_CUDA_CONV_SMALLC_MMA)
        return dtype != DUCTILE_FLOAT32 && dt_tensor_cores() && dt_cuda_conv_smallc_mma_applies(g);
    if (tactic == DT_CUDA_CONV_PATCH_MMA)
        return dtype != DUCTILE_FLOAT32 && dt_tensor_cores() && dt_cuda_conv_patch_mma_applies(g);
    return false;
}

size_t dt_cuda_conv_own_scratch(const dt_conv_geom *g, int dtype)
{
    static const int split[] = {DT_CUDA_CONV_POINTWISE32_SPLITK, DT_CUDA_CONV_IGEMM32_SPLITK,
                                DT_CUDA_CONV_TC_POINTWISE_SPLITK, DT_CUDA_CONV_TC_IGEMM_SPLITK};
    size_t most = 0;
    for (size_t i = 0; i < sizeof split / sizeof split[0]; i++) {
        size_t bytes = 0;
        if (!dt_cuda_conv_own_applies(g, dtype, split[i]) ||
            dt_cuda_conv_split_bytes(g, dt_cuda_conv_splitk(g, dt_is_tc(split[i]) ? 64 : 32, dt_cuda_sm_count()), &bytes))
            continue; /* sizes that overflow: the run names them */
        if (bytes > most) most = bytes;
    }
    return most;
}

ductile_status dt_cuda_conv_own_run(const dt_conv_geom *g, int tactic, const dt_cu_conv_epi *e, const dt_view *in,
                                    dt_view *out, dt_exec *ex)
{
    int dtype = out[0].dtype;
    /* One element type for every operand: the kernels read them all as dtype. */
    static const char *const slot[] = {"input", "weights", "bias", "residual"};
    for (int k = 0; k < 4; k++) {
        bool used = k < DT_FC_B || (k == DT_FC_B && e->bias) || (k == DT_FC_R && e->res);
        if (used && in[k].dtype != dtype)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "own convolution kernel %d: the %s is %s, the output %s", tactic,
                           slot[k], ductile_dtype_name((ductile_dtype)in[k].dtype),
                           ductile_dtype_name((ductile_dtype)dtype));
    }
    dt_cu_conv c = dt_cu_conv_of(g, e);
    if (tactic == DT_CUDA_CONV_DEPTHWISE)
        return dt_cuda_check(dt_cu_conv_depthwise(dtype, in[DT_FC_X].data, in[DT_FC_W].data, e->bias, e->res, out[0].data,
                                                  &c, ex->stream), "depthwise convolution");
    if (tactic == DT_CUDA_CONV_DEPTHWISE_NHWC)
        return dt_cuda_check(dt_cu_conv_depthwise_nhwc(dtype, in[DT_FC_X].data, in[DT_FC_W].data, e->bias, e->res,
                                                       out[0].data, &c, ex->stream), "depthwise convolution (NHWC)");
    if (tactic == DT_CUDA_CONV_DW_TILED || tactic == DT_CUDA_CONV_DW_TILED_NHWC)
        return dt_cuda_check(dt_cu_conv_dw_tiled(dtype, in[DT_FC_X].data, in[DT_FC_W].data, e->bias, e->res, out[0].data,
                                                 &c, tactic == DT_CUDA_CONV_DW_TILED_NHWC, ex->stream),
                             "tiled depthwise convolution");
    if (DT_CUDA_CONV_IS_PW_MMA(tactic)) {
        int tile = tactic == DT_CUDA_CONV_PW_MMA128                                               ? 128
                 : tactic == DT_CUDA_CONV_PW_MMA64 || tactic == DT_CUDA_CONV_PW_MMA64_SPLITK ? 64
                                                                                             : 32;
        int split = dt_cuda_conv_pw_mma_split(g, tactic);
        int rc = dt_cu_conv_pw_mma(dtype, in[DT_FC_X].data, in[DT_FC_W].data, e->bias, e->res, out[0].data, &c, tile, split,
                                   ex->stream);
        /* A cluster the GPU cannot place (a launch refused, not a fault): a tactic to skip. */
        if (rc == cudaErrorInvalidClusterSize) {
            cudaGetLastError();
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "1x1 mma convolution: a cluster of %d blocks cannot be launched", split);
        }
        return dt_cuda_check(rc, "1x1 convolution (NHWC, mma)");
    }
    if (DT_CUDA_CONV_IS_TC_NHWC(tactic))
        return dt_cuda_check(dt_cu_conv_tc_nhwc(dtype, in[DT_FC_X].data, in[DT_FC_W].data, e->bias, e->res, out[0].data,
                                                &c, tactic - DT_CUDA_CONV_TC_NHWC, ex->stream),
                             "tensor-core convolution (NHWC)");
    if (tactic == DT_CUDA_CONV_SMALLC_NHWC)
        return dt_cuda_check(dt_cu_conv_smallc_nhwc(dtype, in[DT_FC_X].data, in[DT_FC_W].data, e->bias, e->res,
                                                    out[0].data, &c, ex->stream),
                             "small-channel convolution (NHWC)");
    if (tactic == DT_CUDA_CONV_SMALLC_MMA)
        return dt_cuda_check(dt_cu_conv_smallc_mma(dtype, in[DT_FC_X].data, in[DT_FC_W].data, e->bias, e->res, out[0].data,
                                                   &c, ex->stream),
                             "small-channel convolution (NHWC, mma)");
    if (tactic == DT_CUDA_CONV_PATCH_MMA)
        return dt_cuda_check(dt_cu_conv_patch_mma(dtype, in[DT_FC_X].data, in[DT_FC_W].data, e->bias, e->res, out[0].data,
                                                  &c, ex->stream),
                             "staged-patch convolution (NHWC, mma)");
    int tile = dt_is_tc(tactic) ? 0 : tactic == DT_CUDA_CONV_POINTWISE64 || tactic == DT_CUDA_CONV_IGEMM64 ? 64 : 32;
    bool pw = tactic == DT_CUDA_CONV_POINTWISE64 || tactic == DT_CUDA_CONV_POINTWISE32 ||
              tactic == DT_CUDA_CONV_POINTWISE32_SPLITK || tactic == DT_CUDA_CONV_TC_POINTWISE ||
              tactic == DT_CUDA_CONV_TC_POINTWISE_SPLITK;
    int split = 1;
    float *part = NULL;
    if (dt_is_split(tactic)) {
        /* The slices' float32 sums in the context's scratch, which dt_cuda_conv_own_scratch
         * sized at these shapes: the run allocates nothing. */
        size_t bytes = 0;
        split = dt_cuda_conv_splitk(g, tile ? 32 : 64, dt_cuda_sm_count());
        DT_TRY(dt_cuda_conv_split_bytes(g, split, &bytes));
        if (!ex->scratch || ex->scratch_bytes < bytes)
            return dt_fail(DUCTILE_ERR_INTERNAL, "split-K convolution: %d slices need %zu bytes of scratch; the context gave %zu",
                           split, bytes, ex->scratch ? ex->scratch_bytes : (size_t)0);
        part = ex->scratch;
    }
    return dt_cuda_check(dt_cu_conv_igemm(dtype, in[DT_FC_X].data, in[DT_FC_W].data, e->bias, e->res, out[0].data, &c, tile,
                                          pw, part, split, ex->stream), "implicit GEMM convolution");
}

ductile_status dt_cuda_conv_d2s_run(const dt_conv_geom *g, const dt_cu_conv_epi *e, int r, bool crd, const dt_view *in,
                                    dt_view *out, dt_exec *ex)
{
    int dtype = in[DT_FC_X].dtype;
    if (in[DT_FC_W].dtype != dtype || (e->bias && in[DT_FC_B].dtype != dtype) ||
        (out[0].dtype != dtype && out[0].dtype != DUCTILE_FLOAT32))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "convolution with a folded DepthToSpace: X is %s, W %s, Y %s",
                       ductile_dtype_name((ductile_dtype)dtype), ductile_dtype_name((ductile_dtype)in[DT_FC_W].dtype),
                       ductile_dtype_name((ductile_dtype)out[0].dtype));
    if (g->m > 16 || r < 1 || g->m % ((int64_t)r * r) || e->res)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "convolution with a folded DepthToSpace (blocksize %d): the kernel takes "
                       "at most 16 output channels, a multiple of %d, and no residual (got %lld channels%s)", r, r * r,
                       (long long)g->m, e->res ? " and a residual" : "");
    dt_cu_conv c = dt_cu_conv_of(g, e);
    return dt_cuda_check(dt_cu_conv_patch_mma_d2s(dtype, in[DT_FC_X].data, in[DT_FC_W].data, e->bias, NULL, out[0].data,
                                                  out[0].dtype, &c, r, crd, ex->stream),
                         "staged-patch convolution with DepthToSpace (NHWC, mma)");
}

bool dt_cuda_writes_d2s(const ductile_layer *F, const ductile_layer *D)
{
    int64_t r = dt_attr_int(D, "blocksize", 0);
    const ductile_tensor *x = F->n_in > DT_FC_X ? F->in[DT_FC_X] : NULL, *w = F->n_in > DT_FC_W ? F->in[DT_FC_W] : NULL;
    if (r < 1 || r > 16 || !x || !w || !w->data || w->rank != 4 || (F->n_in > DT_FC_R && F->in[DT_FC_R]) ||
        (F->n_in > DT_FC_S && F->in[DT_FC_S]) || !dt_fused_conv_nhwc(F) || dt_attr_int(F, "packed", 0) ||
        (x->dtype != DUCTILE_FLOAT16 && x->dtype != DUCTILE_BFLOAT16) || w->dtype != x->dtype ||
        (dt_attr_int(D, "to", x->dtype) != x->dtype && dt_attr_int(D, "to", x->dtype) != DUCTILE_FLOAT32))
        return false;
    int64_t m = w->dims[0];
    if (m > 16 || m % (r * r) || !dt_cuda_conv_supports(F)) return false;
    /* The geometry at a map of 64 x 64 (the kernel's limits do not depend on the map's size but
     * through the grid, which the run checks). */
    dt_view xv = {.dtype = x->dtype, .rank = 4, .dims = {1, 64, 64, w->dims[3]}};
    dt_view wv = {.dtype = w->dtype, .rank = 4, .dims = {w->dims[0], w->dims[1], w->dims[2], w->dims[3]}};
    dt_conv_geom g;
    if (dt_fused_conv_geometry(F, &xv, &wv, &g) != DUCTILE_OK) return false;
    return dt_cuda_conv_own_applies(&g, x->dtype, DT_CUDA_CONV_PATCH_MMA);
}
