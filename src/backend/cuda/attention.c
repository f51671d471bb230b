/* FusedAttention on CUDA (ops/fused.h; the kernels: attention_kernels.cu), compiled
 * (layers.h): the attributes through the reader the CPU's kernel uses
 * (dt_fused_attention_attrs), the sizes of a run through its geometry
 * (dt_fused_attention_geometry), so the two backends cannot disagree about layouts or the
 * mask's broadcast. One launch, no scratch: the scores stay in the kernel's registers and
 * shared memory. Tactics (tactics.c) where the tensor-core kernels apply: 1 WMMA tensor
 * cores, 2 the float32 CUDA-core kernel, 3 mma.sync for short sequences, 4 mma.sync with the
 * keys split over a block's warps (head dims up to 64; cuda.h); the builder keeps the fastest
 * at each profile's shape points. DUCTILE_CUDA_ATTENTION=wmma|cores|mma|mma_split
 * (read when a layer is compiled) forces one for every shape: the tests' way to check each
 * kernel against the CPU whatever the timing picks. */
#include "backend/cuda/layers.h"
#include "core/alloc.h"
#include "core/dtype.h"
#include "core/status.h"
#include "ops/fused.h"

#include <cuda_runtime_api.h>

#include <stdlib.h>
#include <string.h>

static ductile_status dt_attention_prepare(const ductile_layer *L, void **out)
{
    int64_t n = 0;
    const int64_t *t;
    int points;
    DT_TRY(dt_tactic_attr(L, &t, &n, &points));
    dt_cu_attention_params *p = dt_malloc(sizeof *p + (size_t)n * sizeof p->tactic[0]);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling node '%s'", L->name);
    *p = (dt_cu_attention_params){.L = L, .tactic_points = points, .n_tactic = n};
    dt_fused_attention_attrs(L, &p->a);
    const char *force = getenv("DUCTILE_CUDA_ATTENTION");
    if (force)
        p->forced = !strcmp(force, "wmma") ? DT_CU_ATTN_WMMA : !strcmp(force, "cores") ? DT_CU_ATTN_CORES
                  : !strcmp(force, "mma")  ? DT_CU_ATTN_MMA : !strcmp(force, "mma_split") ? DT_CU_ATTN_MMA_SPLIT : 0;
    if (n) memcpy(p->tactic, t, (size_t)n * sizeof p->tactic[0]);
    *out = p;
    return DUCTILE_OK;
}

int dt_cuda_attention_kernel(const dt_cu_attention_params *p, const dt_view *in, int dtype, const dt_exec *ex)
{
    dt_fa_geom g;
    dt_fused_attention_geometry(&p->a, in, &g);
    if (!dt_cu_attention_tc(dtype, g.D, g.Dv)) return DT_CU_ATTN_CORES;
    int t = p->forced ? p->forced : dt_cuda_params_tactic(p->tactic, p->n_tactic, p->tactic_points, ex);
    /* The split-key kernel takes head dims up to 64; wider ones run the mma kernel. */
    if (t == DT_CU_ATTN_MMA_SPLIT) return dt_cu_attention_split_applies(dtype, g.D, g.Dv) ? t : DT_CU_ATTN_MMA;
    return t == DT_CU_ATTN_CORES || t == DT_CU_ATTN_MMA ? t : DT_CU_ATTN_WMMA;
}

static ductile_status dt_attention_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_attention_params *p = params;
    dt_fa_geom g;
    dt_fused_attention_geometry(&p->a, in, &g);
    if (g.count == 0 || g.S == 0 || g.Dv == 0) return DUCTILE_OK;
    int dt = out[0].dtype;
    if (g.L == 0)   /* a product over no keys (the CPU's GEMM with K = 0): zeros */
        return dt_cuda_check(cudaMemsetAsync(out[0].data, 0,
                                             (size_t)dt_cuda_count(&out[0]) * ductile_dtype_size((ductile_dtype)dt),
                                             (cudaStream_t)ex->stream),
                             "FusedAttention");
    if (g.rank < 2 || g.rank > DT_CU_MAX_RANK)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the cuda FusedAttention takes scores of rank 2 to %d (got %d)",
                       DT_CU_MAX_RANK, g.rank);
    int64_t blocks = (g.S + 15) / 16;
    if (g.count > INT32_MAX / blocks || (g.Dv + 127) / 128 > 65535)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "the cuda FusedAttention takes at most 2^31 blocks of 16 query rows and 65535 x 128 values per "
                       "row (got %lld items of %lld rows, %lld values)",
                       (long long)g.count, (long long)g.S, (long long)g.Dv);
    dt_cu_attn c = {
        .count = g.count, .S = g.S, .D = g.D, .L = g.L, .Dv = g.Dv, .H = g.H, .ldq = g.ldq, .ldk = g.ldk,
        .ldv = g.ldv, .bshd = p->a.bshd, .krows = p->a.krows,
        .nan_to_zero = p->a.nan_to_zero, .q_scale = p->a.q_scale, .k_scale = p->a.k_scale, .nbatch = g.rank - 2,
        .kernel = dt_cuda_attention_kernel(p, in, dt, ex),
    };
    for (int d = 0; d < g.rank - 2; d++) {
        c.batch[d] = g.batch[d];
        c.mstride[d] = g.mstride[d];
    }
    c.mi = g.mstride[g.rank - 2];
    c.mj = g.mstride[g.rank - 1];
    const void *mask = p->a.has_mask ? in[DT_FA_MASK].data : NULL;
    /* bshd_qkv: K and V are parts of Q's rows (g.koff, g.voff elements in). */
    const char *q = in[DT_FA_Q].data;
    size_t es = ductile_dtype_size((ductile_dtype)dt);
    const void *k = p->a.qkv ? q + (size_t)g.koff * es : in[DT_FA_KT].data;
    const void *v = p->a.qkv ? q + (size_t)g.voff * es : in[DT_FA_V].data;
    return dt_cuda_check(dt_cu_attention(dt, q, k, v, mask, out[0].data, &c, ex->stream), "FusedAttention");
}

const dt_kernel dt_cuda_fused_attention_kernel = {.prepare = dt_attention_prepare, .run = dt_attention_run};
