/* Conv and FusedConv on cuDNN: the convolution by cuDNN (float32: FMA math, TF32 only where the
 * builder marked the layer `tf32`; float16 / bfloat16 tensors: tensor cores, float32 compute),
 * bias, residual and activation by cuDNN's conv-bias-activation where it computes them
 * (a bias; ReLU, Clip(0, max) as its clipped ReLU, or none with the one algorithm that takes
 * identity; half data since session 13), else in one pass of the project's epilogue kernel
 * (FusedConv has six activations). Descriptors and the algorithm are made once per layer,
 * shapes and tactic (the context's plan cache). The layer's tactic (timed by the builder,
 * conv_own.h) picks a cuDNN algorithm or one of the project's own kernels (conv_own.c, float32,
 * float16 and bfloat16); without one, depthwise convs run on the own kernel and the rest on
 * cuDNN's heuristic algorithm.
 * Layout "NHWC" (FusedConv made channels last by the builder's layout pass, which this backend
 * asks for with half precision: dt_cuda_prefers_nhwc) runs on cuDNN alone, with NHWC tensor
 * and filter (KRSC) descriptors: its tensor-core kernels read that layout as it is, where
 * given NCHW half they transpose in and out inside every call. The epilogue kernel takes the
 * NHWC output as [N*OH*OW, M] rows. Of the own kernels only the NHWC depthwise ones run it
 * (the others are channels first).
 * Compiled (layers.h): prepare reads the attributes (the conv reader the CPU uses), the
 * activation and its parameters, the TF32 mark and the tactics once; the run computes the
 * geometry from them and the views (auto_pad's pads follow the shapes). plan_shapes makes the
 * cuDNN plan (descriptors, algorithm) when the context plans a set of shapes and reports its
 * workspace, which the run then takes from the context's scratch, as the own kernels' split-K
 * sums: the run allocates nothing. Only runs the context did not plan (the builder's tactic
 * timing) make their plan and grow the state's workspace (dt_cuda_workspace) themselves. */
#include "backend/cuda/conv_own.h"
#include "backend/cuda/conv_tc_nhwc.h"
#include "backend/cuda/cuda.h"
#include "backend/cuda/layers.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "core/env.h"
#include "core/status.h"
#include "ops/defaults.h"
#include "ops/fused.h"
#include "ops/linalg.h"

#include <cudnn.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

static ductile_status dt_cudnn(cudnnStatus_t s, const char *what)
{
    if (s == CUDNN_STATUS_SUCCESS) return DUCTILE_OK;
    /* An algorithm that does not apply to these shapes: a tactic to skip, not a fault. */
    return dt_fail(s == CUDNN_STATUS_NOT_SUPPORTED ? DUCTILE_ERR_UNSUPPORTED : DUCTILE_ERR_INTERNAL, "cuDNN %s: %s", what, cudnnGetErrorString(s));
}

/* cuDNN pads symmetrically: explicit pads must be, and auto_pad is left to the host. */
bool dt_cuda_prefers_nhwc(const ductile_layer *L, unsigned flags)
{
    unsigned half = (1u << DUCTILE_FLAG_FP16) | (1u << DUCTILE_FLAG_BF16);
    return (flags & half) && !strcmp(L->op_type, "FusedConv") && L->n_in > DT_FC_W && L->in[DT_FC_W] &&
           L->in[DT_FC_W]->rank == 4 && dt_cuda_conv_supports(L);
}

bool dt_cuda_conv_supports(const ductile_layer *L)
{
    if (strcmp(dt_attr_string(L, "auto_pad", "NOTSET"), "NOTSET")) return false;
    if (dt_attr_int(L, "packed", 0) != 0) return false;
    int64_t n = 0;
    const int64_t *pads = dt_attr_ints(L, "pads", &n);
    if (pads && n % 2 == 0)
        for (int64_t i = 0; i < n / 2; i++)
            if (pads[i] != pads[i + n / 2]) return false;
    if (L->in[1] && L->in[1]->rank > 4) return false; /* 3-D convs: host */
    if (L->n_out > 1) return false;                   /* a pooled output (ops/fused.h): host */
    const char *act = dt_attr_string(L, "activation", "");
    return !act[0] || !strcmp(act, "Relu") || !strcmp(act, "Clip") || !strcmp(act, "HardSigmoid") ||
           !strcmp(act, "HardSwish") || !strcmp(act, "Sigmoid") || !strcmp(act, "Silu");
}

/* Whether half data (float16, bfloat16) tries cuDNN's conv-bias-activation too: on by
 * default since session 13 (the FP16 engines' separate epilogue kernel after each cuDNN conv
 * was 19 of resnet50's 77 kernels at batch 1 and a third of superres' GPU time at 1024x1024);
 * DUCTILE_CUDNN_FUSED_HALF=0 turns it off. Its bias is in the data type, as the layer's. */
static bool dt_cudnn_fused_half(void)
{
    static int on = -1;
    return dt_env_switch(&on, "DUCTILE_CUDNN_FUSED_HALF", true);
}

/* Read at each call, not cached: test_cuda_host turns DUCTILE_CUDA_CONV_MIXING on and off. */
bool dt_cudnn_algo_allowed(int algo)
{
    bool mixes = algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT || algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
                 algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
    const char *v = getenv("DUCTILE_CUDA_CONV_MIXING");
    return !mixes || (v && !strcmp(v, "1"));
}

/* The activation mode of cuDNN's conv-bias-activation for this epilogue, or -1 where it cannot
 * compute it (no bias, another activation, identity with another algorithm). An algorithm
 * that refuses the call at run time falls back to the plain convolution and the epilogue
 * kernel (dt_conv_cudnn). */
static int dt_cudnn_fused_mode(const dt_cu_conv_epi *e, bool bias, int dtype, cudnnConvolutionFwdAlgo_t algo)
{
    if (!bias || (dtype != DUCTILE_FLOAT32 && !dt_cudnn_fused_half())) return -1;
    if (e->act == DT_CU_RELU) return CUDNN_ACTIVATION_RELU;
    if (e->act == DT_CU_CLIP && e->p0 == 0.f && isfinite(e->p1) && e->p1 > 0.f) return CUDNN_ACTIVATION_CLIPPED_RELU;
    if (e->act == DT_CU_IDENTITY && algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) return CUDNN_ACTIVATION_IDENTITY;
    return -1;
}

/* The cuDNN data type of a layer's tensors (supports() admits these three). */
static cudnnDataType_t dt_cudnn_type(int dtype)
{
    return dtype == DUCTILE_FLOAT16 ? CUDNN_DATA_HALF : dtype == DUCTILE_BFLOAT16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

/* Descriptors and the algorithm (algo >= 0: that one; else cuDNN's heuristic) for one
 * geometry, into an empty plan slot; with the bias and activation descriptors (desc[4], [5])
 * when conv-bias-activation computes the epilogue. Half data runs on tensor cores with
 * float32 accumulation; float32 keeps FMA math unless the layer allows TF32
 * (ductile_builder_flag TF32). */
static ductile_status dt_conv_plan(dt_cuda_state *st, const dt_conv_geom *g, int dtype, bool tf32, bool nhwc,
                                   int algo_forced, bool plain, const dt_cu_conv_epi *epi, bool bias, dt_cuda_plan *p)
{
    cudnnTensorFormat_t fmt = nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    cudnnDataType_t dt = dt_cudnn_type(dtype);
    cudnnMathType_t math = dtype != DUCTILE_FLOAT32 || tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
    cudnnHandle_t h = st->cudnn;
    cudnnTensorDescriptor_t xd = NULL, yd = NULL;
    cudnnFilterDescriptor_t wd = NULL;
    cudnnConvolutionDescriptor_t cd = NULL;
    p->kind = 1;
    ductile_status s = dt_cudnn(cudnnCreateTensorDescriptor(&xd), "descriptor");
    p->desc[0] = xd;
    if (!s) s = dt_cudnn(cudnnCreateTensorDescriptor(&yd), "descriptor");
    p->desc[1] = yd;
    if (!s) s = dt_cudnn(cudnnCreateFilterDescriptor(&wd), "descriptor");
    p->desc[2] = wd;
    if (!s) s = dt_cudnn(cudnnCreateConvolutionDescriptor(&cd), "descriptor");
    p->desc[3] = cd;
    if (!s) s = dt_cudnn(cudnnSetTensor4dDescriptor(xd, fmt, dt, (int)g->batch, (int)g->c,
                                                    (int)g->in[0], (int)g->in[1]), "input descriptor");
    if (!s) s = dt_cudnn(cudnnSetTensor4dDescriptor(yd, fmt, dt, (int)g->batch, (int)g->m,
                                                    (int)g->out[0], (int)g->out[1]), "output descriptor");
    if (!s) s = dt_cudnn(cudnnSetFilter4dDescriptor(wd, dt, fmt, (int)g->m,
                                                    (int)(g->c / g->group), (int)g->k[0], (int)g->k[1]), "filter descriptor");
    if (!s) s = dt_cudnn(cudnnSetConvolution2dDescriptor(cd, (int)g->pb[0], (int)g->pb[1], (int)g->s[0], (int)g->s[1],
                                                         (int)g->d[0], (int)g->d[1], CUDNN_CROSS_CORRELATION,
                                                         CUDNN_DATA_FLOAT), "convolution descriptor");
    if (!s) s = dt_cudnn(cudnnSetConvolutionGroupCount(cd, (int)g->group), "group count");
    if (!s) s = dt_cudnn(cudnnSetConvolutionMathType(cd, math), "math type");
    cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    if (!s && algo_forced >= 0) algo = (cudnnConvolutionFwdAlgo_t)algo_forced;
    if (!s && algo_forced < 0) {
        cudnnConvolutionFwdAlgoPerf_t perf[8];
        int got = 0;
        s = dt_cudnn(cudnnGetConvolutionForwardAlgorithm_v7(h, xd, wd, cd, yd, 8, &got, perf), "algorithm");
        for (int i = 0; !s && i < got; i++) {
            /* Heuristic order; skip what needs over 1 GB of workspace or computes in TF32. */
            if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > ((size_t)1 << 30) ||
                perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION ||
                perf[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED || /* float32 error over 1e-4 */
                !dt_cudnn_algo_allowed(perf[i].algo) ||
                (math == CUDNN_FMA_MATH && perf[i].mathType != CUDNN_FMA_MATH))
                continue;
            algo = perf[i].algo;
            s = dt_cudnn(cudnnSetConvolutionMathType(cd, perf[i].mathType), "math type");
            break;
        }
    }
    size_t ws = 0;
    if (!s) s = dt_cudnn(cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, cd, yd, algo, &ws), "workspace size");
    if (!s && ws > ((size_t)1 << 30))
        s = dt_fail(DUCTILE_ERR_UNSUPPORTED, "cuDNN algorithm %d needs %zu bytes of workspace (over 1 GiB)", (int)algo, ws);
    int mode = s || plain ? -1 : dt_cudnn_fused_mode(epi, bias, dtype, algo);
    if (mode >= 0) {
        cudnnTensorDescriptor_t bd = NULL;
        cudnnActivationDescriptor_t ad = NULL;
        s = dt_cudnn(cudnnCreateTensorDescriptor(&bd), "descriptor");
        p->desc[4] = bd;
        if (!s) s = dt_cudnn(cudnnCreateActivationDescriptor(&ad), "descriptor");
        p->desc[5] = ad;
        if (!s) s = dt_cudnn(cudnnSetTensor4dDescriptor(bd, CUDNN_TENSOR_NCHW, dt, 1, (int)g->m, 1, 1),
                             "bias descriptor");
        /* PROPAGATE_NAN: NOT_PROPAGATE made a NaN 0 (IMPLICIT_GEMM and GEMM with RELU,
         * test_cuda_nonfinite.py, session 44) */
        if (!s) s = dt_cudnn(cudnnSetActivationDescriptor(ad, (cudnnActivationMode_t)mode, CUDNN_PROPAGATE_NAN,
                                                          mode == CUDNN_ACTIVATION_CLIPPED_RELU ? (double)epi->p1 : 0.0),
                             "activation descriptor");
    }
    p->algo = (int)algo;
    p->ws = ws;
    return s;
}

/* A cuDNN plan's key word for algorithm `algo` (< 0: the heuristic's) in its plain form or not. */
static int64_t dt_conv_plan_algo_key(int algo, bool plain) { return algo < 0 ? algo : algo + (plain ? 16 : 0); }

/* The context's plan for this geometry and algorithm (< 0: the heuristic's; plain: without
 * conv-bias-activation), made when missing; a refusal kept there comes back as
 * DUCTILE_ERR_UNSUPPORTED. Attributes are fixed per layer: the input dims and the channel
 * count decide the rest. */
static ductile_status dt_conv_plan_get(const dt_cu_conv_params *cp, dt_cuda_state *st, const dt_conv_geom *g, int dtype,
                                       int algo, bool plain, dt_cuda_plan **out)
{
    int64_t key[DT_CUDA_KEY] = {g->batch, g->c, g->in[0], g->in[1], g->m, g->k[0], g->k[1],
                                dt_conv_plan_algo_key(algo, plain)};
    bool hit;
    dt_cuda_plan *p = dt_cuda_plan_slot(st, cp->L, key, &hit);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for a cuDNN plan");
    *out = p;
    if (hit) return dt_cuda_plan_status(p);
    ductile_status s = dt_conv_plan(st, g, dtype, cp->tf32, cp->nhwc, algo, plain, &cp->epi, cp->has_bias, p);
    return s ? dt_cuda_plan_failed(p, s) : DUCTILE_OK;
}

/* The plan a run at these shapes takes for cuDNN tactic `tactic` (0: the heuristic's): the
 * stored algorithm may not apply at shapes other than the profile's opt, where the heuristic's
 * plan serves instead (not while the builder times that algorithm: `timing`). */
static ductile_status dt_conv_cudnn_plan(const dt_cu_conv_params *cp, dt_cuda_state *st, const dt_conv_geom *g, int dtype,
                                         int tactic, bool timing, dt_cuda_plan **out)
{
    int algo = tactic ? DT_CUDA_CONV_CUDNN_ALGO(tactic) : -1;
    ductile_status s = dt_conv_plan_get(cp, st, g, dtype, algo, DT_CUDA_CONV_CUDNN_IS_PLAIN(tactic), out);
    if (s == DUCTILE_ERR_UNSUPPORTED && algo >= 0 && !timing) s = dt_conv_plan_get(cp, st, g, dtype, -1, false, out);
    return s;
}

/* Half data takes conv-bias-activation only while a graph records (the runtime's CUDA graphs,
 * the builder's replay timing; dt_cuda_stream_capturing): on H200 each direct call of it with
 * half NHWC tensors cost ~1.5 ms of host time (mobilenet_v2 b1 without graphs 0.27 -> 1.9 ms),
 * a recording pays that once. Kernel-by-kernel runs of half data (a shape's first run, graphs
 * off) keep the plain convolution and the epilogue kernel: the same values up to the rounding
 * of the convolution's result to half before the bias. Where CUDA cannot tell: the direct
 * path. */

/* The convolution on cuDNN with plan p; *done: the epilogue too (conv-bias-activation). The
 * workspace is the context's scratch, which plan_shapes sized; only runs the context did not
 * plan (the builder's timing, with the layer's scratch alone) grow the state's. */
static ductile_status dt_conv_cudnn(dt_cuda_state *st, dt_cuda_plan *p, const dt_cu_conv_epi *epi, const dt_view *in,
                                    dt_view *out, dt_exec *ex, bool *done)
{
    *done = false;
    void *ws = ex->scratch;
    if (p->ws && (!ex->scratch || ex->scratch_bytes < p->ws)) {
        DT_TRY(dt_cuda_workspace(st, p->ws));
        ws = st->ws;
    }
    DT_TRY(dt_cudnn(cudnnSetStream(st->cudnn, (cudaStream_t)ex->stream), "set stream"));
    const float one = 1.f, zero = 0.f;
    if (p->desc[5] && (in[DT_FC_X].dtype == DUCTILE_FLOAT32 || dt_cuda_stream_capturing(ex->stream, false))) {
        /* y = act(conv + alpha2 * z + bias): z is the residual, or y itself with alpha2 0. */
        cudnnStatus_t cs = cudnnConvolutionBiasActivationForward(
            st->cudnn, &one, p->desc[0], in[DT_FC_X].data, p->desc[2], in[DT_FC_W].data, p->desc[3],
            (cudnnConvolutionFwdAlgo_t)p->algo, ws, p->ws, epi->res ? &one : &zero, p->desc[1],
            epi->res ? (const void *)epi->res : out[0].data, p->desc[4], epi->bias, p->desc[5], p->desc[1], out[0].data);
        *done = cs == CUDNN_STATUS_SUCCESS;
        /* A refusal of half data's configuration may come as a bad parameter too. */
        bool refused = cs == CUDNN_STATUS_NOT_SUPPORTED ||
                       (cs == CUDNN_STATUS_BAD_PARAM && in[DT_FC_X].dtype != DUCTILE_FLOAT32);
        if (!refused) return dt_cudnn(cs, "convolution with bias and activation");
        /* Not with this algorithm after all: the plain convolution and the epilogue kernel. */
        cudnnDestroyTensorDescriptor(p->desc[4]);
        cudnnDestroyActivationDescriptor(p->desc[5]);
        p->desc[4] = p->desc[5] = NULL;
    }
    return dt_cudnn(cudnnConvolutionForward(st->cudnn, &one, p->desc[0], in[DT_FC_X].data, p->desc[2], in[DT_FC_W].data,
                                            p->desc[3], (cudnnConvolutionFwdAlgo_t)p->algo, ws, p->ws, &zero, p->desc[1],
                                            out[0].data), "convolution");
}

/* ---- the compiled layer ---- */

ductile_status dt_cuda_act_read(const ductile_layer *L, const char *attr, const char *const params[4], int *act,
                                float *p0, float *p1)
{
    const char *a = dt_attr_string(L, attr, "");
    *act = !a[0] ? DT_CU_IDENTITY
         : !strcmp(a, "Relu") ? DT_CU_RELU
         : !strcmp(a, "Sigmoid") ? DT_CU_SIGMOID
         : !strcmp(a, "Clip") ? DT_CU_CLIP
         : !strcmp(a, "HardSigmoid") ? DT_CU_HARDSIGMOID
         : !strcmp(a, "HardSwish") ? DT_CU_HARDSWISH
         : !strcmp(a, "Silu") ? DT_CU_SILU
         : -1;
    if (*act < 0) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute '%s' = '%s' is not supported", attr, a);
    if (*act == DT_CU_CLIP) {
        *p0 = dt_attr_float(L, params[0], DT_CLIP_NO_MIN);
        *p1 = dt_attr_float(L, params[1], DT_CLIP_NO_MAX);
    } else if (*act == DT_CU_HARDSIGMOID || *act == DT_CU_HARDSWISH) {
        *p0 = dt_attr_float(L, params[2], DT_HARDSIGMOID_ALPHA);
        *p1 = dt_attr_float(L, params[3], DT_HARDSIGMOID_BETA);
    }
    return DUCTILE_OK;
}

/* FusedConv's activation as the epilogue kernels take it. */
static ductile_status dt_conv_act_read(const ductile_layer *L, dt_cu_conv_epi *e)
{
    static const char *const params[4] = {"act_min", "act_max", "act_alpha", "act_beta"};
    return dt_cuda_act_read(L, "activation", params, &e->act, &e->p0, &e->p1);
}

bool dt_cuda_conv_fuses_cudnn(const ductile_layer *L, int dtype, int algo)
{
    dt_cu_conv_epi e = {.act = DT_CU_IDENTITY};
    if (!strcmp(L->op_type, "FusedConv") && dt_conv_act_read(L, &e)) return false;
    bool bias = L->n_in > DT_FC_B && L->in[DT_FC_B];
    return dt_cudnn_fused_mode(&e, bias, dtype, (cudnnConvolutionFwdAlgo_t)algo) >= 0;
}

/* A stored tactic: 0 (none), a cuDNN algorithm or an own kernel (conv_own.h). */
static bool dt_conv_tactic_known(int64_t t)
{
    return t == 0 || DT_CUDA_CONV_IS_CUDNN(t) ||
           (t >= DT_CUDA_CONV_DEPTHWISE && t <= DT_CUDA_CONV_SMALLC_MMA) || DT_CUDA_CONV_IS_PW_MMA(t) ||
           t == DT_CUDA_CONV_PATCH_MMA;
}

/* Refuses only what the host refuses too (layers.h): an activation no kernel computes, and
 * tactics that no CUDA build stores (a damaged engine). What the CUDA kernels cannot run
 * (auto_pad, packed weights, asymmetric pads, 3-D) is dt_cuda_conv_supports's: the host's. */
static ductile_status dt_conv_prepare(const ductile_layer *L, void **out)
{
    bool fused = !strcmp(L->op_type, "FusedConv"), d2s_crd = false;
    int d2s = fused ? (int)dt_fused_conv_d2s(L, &d2s_crd) : 0;
    dt_cu_conv_epi epi = {.act = DT_CU_IDENTITY};
    if (fused) DT_TRY(dt_conv_act_read(L, &epi));
    int64_t n = 0;
    const int64_t *t;
    int points;
    DT_TRY(dt_tactic_attr(L, &t, &n, &points));
    for (int64_t i = 0; i < n; i++)
        if (!dt_conv_tactic_known(t[i]))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic'[%lld] = %lld is not a CUDA conv tactic",
                           (long long)i, (long long)t[i]);
    size_t bytes;
    if (!dt_mul_size((size_t)n, sizeof(int64_t), &bytes) || !dt_add_size(bytes, sizeof(dt_cu_conv_params), &bytes))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic' has %lld values", (long long)n);
    dt_cu_conv_params *p = dt_malloc(bytes);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling node '%s'", L->name);
    *p = (dt_cu_conv_params){
        .L = L,
        .epi = epi,
        .has_bias = L->n_in > DT_FC_B && L->in[DT_FC_B],
        .has_res = fused && L->n_in > DT_FC_R && L->in[DT_FC_R],
        .tf32 = dt_attr_int(L, "tf32", 0) != 0,
        .tactic_points = points,
        .nhwc = fused && dt_fused_conv_nhwc(L),
        .forced = dt_cuda_conv_tc_nhwc_forced(),
        .d2s = d2s,
        .d2s_crd = d2s_crd,
        .n_tactic = n,
    };
    dt_conv_attrs_read(L, &p->conv);
    if (n) memcpy(p->tactic, t, (size_t)n * sizeof p->tactic[0]);
    *out = p;
    return DUCTILE_OK;
}

int dt_cuda_conv_choose(const dt_cu_conv_params *p, const dt_conv_geom *g, int dtype, const dt_exec *ex)
{
    /* A folded DepthToSpace: the one kernel that writes it (builder/fuse_d2s.c asked). */
    if (p->d2s) return p->nhwc && dt_cuda_conv_own_applies(g, dtype, DT_CUDA_CONV_PATCH_MMA) ? DT_CUDA_CONV_PATCH_MMA : -1;
    int tactic = dt_cuda_params_tactic(p->tactic, p->n_tactic, p->tactic_points, ex);
    /* DUCTILE_CUDA_CONV's tensor-core kernel wherever it applies (conv_tc_nhwc.h). */
    if (p->forced && p->nhwc) {
        int f = p->forced;
        if (f == DT_CUDA_CONV_TC_NHWC_AUTO) {
            f = DT_CUDA_CONV_TC_NHWC + dt_cuda_conv_tc_nhwc_tile(g, dt_cuda_sm_count());
            if (!dt_cuda_conv_own_applies(g, dtype, f)) f = DT_CUDA_CONV_SMALLC_NHWC;
        }
        if (dt_cuda_conv_own_applies(g, dtype, f)) return f;
    }
    if (tactic == DT_CUDA_CONV_LT_NHWC) return p->nhwc && dt_cuda_conv_lt_applies(g) ? tactic : ex->tactic ? -1 : 0;
    /* Each layout has its own kernels: channels last only the NHWC depthwise ones. */
    int dw = p->nhwc ? DT_CUDA_CONV_DEPTHWISE_NHWC : DT_CUDA_CONV_DEPTHWISE;
    if (tactic >= DT_CUDA_CONV_DEPTHWISE && p->nhwc != DT_CUDA_CONV_IS_NHWC(tactic)) return ex->tactic ? -1 : 0;
    if (!tactic && dt_cuda_conv_own_applies(g, dtype, dw)) return dw;
    if (tactic >= DT_CUDA_CONV_DEPTHWISE && !dt_cuda_conv_own_applies(g, dtype, tactic)) return ex->tactic ? -1 : 0;
    if (tactic < DT_CUDA_CONV_DEPTHWISE && !DT_CUDA_CONV_IS_CUDNN(tactic)) return 0;
    return tactic;
}

/* The geometry at these shapes, of the convs the kernels compute: 1-D and 2-D, symmetric pads
 * (cuDNN's; dt_cuda_conv_supports sends the others to the host, so these refusals name a
 * layer that reached the kernel anyway). */
static ductile_status dt_conv_geom_at(const dt_cu_conv_params *p, const dt_view *in, dt_conv_geom *g)
{
    DT_TRY(dt_cuda_conv_geometry(p, in, g));
    if (g->spatial > 2)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the cuda convolution takes 1-D and 2-D convs (got %d spatial dims)",
                       g->spatial);
    if (g->pb[0] != g->pe[0] || g->pb[1] != g->pe[1])
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "cuDNN needs symmetric pads (got begins %lld, %lld and ends %lld, %lld)",
                       (long long)g->pb[0], (long long)g->pb[1], (long long)g->pe[0], (long long)g->pe[1]);
    return DUCTILE_OK;
}

bool dt_cuda_conv_lt_applies(const dt_conv_geom *g)
{
    return g->spatial <= 2 && g->group == 1 && g->k[0] == 1 && g->k[1] == 1 && g->s[0] == 1 && g->s[1] == 1 &&
           g->pb[0] == 0 && g->pb[1] == 0 && g->pe[0] == 0 && g->pe[1] == 0;
}

ductile_status dt_cuda_conv_geometry(const dt_cu_conv_params *p, const dt_view *in, dt_conv_geom *g)
{
    if (!p->nhwc) return dt_conv_geometry_of(&p->conv, &in[DT_FC_X], &in[DT_FC_W], g);
    dt_view x, w;
    DT_TRY(dt_fused_conv_nchw_views(&in[DT_FC_X], &in[DT_FC_W], &x, &w));
    return dt_conv_geometry_of(&p->conv, &x, &w, g);
}

/* The own kernels' split-K sums (the most of any split tactic that applies here); shapes the
 * run refuses: none. */
static ductile_status dt_conv_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                      size_t *bytes)
{
    (void)threads;
    dt_conv_geom g;
    *bytes = 0;
    const dt_cu_conv_params *p = params;
    if (dt_conv_geom_at(p, in, &g) != DUCTILE_OK) return DUCTILE_OK;
    /* Channels last: cuBLASLt's workspace where the product applies; channels first: the
     * own kernels' split-K sums. */
    if (p->nhwc) *bytes = dt_cuda_conv_lt_applies(&g) ? DT_CUDA_LT_WORKSPACE : 0;
    else *bytes = dt_cuda_conv_own_scratch(&g, out[0].dtype);
    return DUCTILE_OK;
}

/* Whether cuBLASLt's RELU epilogue computes a 1x1 conv's ReLU: not unless
 * DUCTILE_CUDA_LT_RELU=1 (session 44). Whether it keeps a NaN is unmeasured (cuDNN's RELU
 * with NOT_PROPAGATE_NAN made it 0); the epilogue kernel after keeps it, and resnet50 FP16
 * ran as fast either way (DESIGN "Non-finite inputs"). */
static bool dt_conv_lt_relu(void)
{
    static int on = -1;
    return dt_env_switch(&on, "DUCTILE_CUDA_LT_RELU", false);
}

/* Whether cuBLASLt's call computes the epilogue act (bias and residual too). */
static bool dt_conv_lt_act(int act) { return act == DT_CU_IDENTITY || (act == DT_CU_RELU && dt_conv_lt_relu()); }

/* Whether cuBLASLt computes this epilogue in the product: no activation or ReLU where
 * dt_conv_lt_relu allows it (its RELU epilogues; not Clip: they cannot clip at 6), and a bias
 * (if any) that its BIAS epilogue can read (vector loads: 16-byte aligned). */
static bool dt_conv_lt_fuses(const dt_cu_conv_epi *e)
{
    return dt_conv_lt_act(e->act) && (!e->bias || (uintptr_t)e->bias % 16 == 0);
}

static ductile_status dt_conv_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_conv_params *p = params;
    dt_conv_geom g;
    DT_TRY(dt_conv_geom_at(p, in, &g));
    dt_cu_conv_epi epi = p->epi;
    epi.bias = p->has_bias ? in[DT_FC_B].data : NULL;
    epi.res = p->has_res ? in[DT_FC_R].data : NULL;
    int tactic = dt_cuda_conv_choose(p, &g, in[DT_FC_X].dtype, ex);
    if (tactic < 0 && p->d2s)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the folded DepthToSpace (blocksize %d) needs the staged-patch kernel, "
                       "which does not take this convolution", p->d2s);
    if (tactic < 0) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "tactic %d does not apply to this convolution", ex->tactic);
    if (p->d2s) return dt_cuda_conv_d2s_run(&g, &epi, p->d2s, p->d2s_crd, in, out, ex);
    if (tactic >= DT_CUDA_CONV_DEPTHWISE && tactic != DT_CUDA_CONV_LT_NHWC)
        return dt_cuda_conv_own_run(&g, tactic, &epi, in, out, ex);
    dt_cuda_state *st = ex->state;
    dt_cuda_plan *plan = NULL;
    bool done = false;
    ductile_status s;
    if (tactic == DT_CUDA_CONV_LT_NHWC) {
        /* Without an activation or with ReLU, bias, residual and ReLU go into cuBLASLt's call
         * (its epilogue and C): no epilogue kernel. */
        bool fuse = dt_conv_lt_fuses(&epi);
        s = dt_cuda_lt_product(p->L, ex, out[0].dtype, in[DT_FC_X].data, in[DT_FC_W].data, out[0].data,
                               fuse ? epi.bias : NULL, fuse ? epi.res : NULL, fuse && epi.act == DT_CU_RELU,
                               g.batch * g.out[0] * g.out[1], g.m, g.c);
        done = !s && fuse;
        /* No cuBLASLt algorithm at these shapes (a stored choice): cuDNN's heuristic. */
        if (s == DUCTILE_ERR_UNSUPPORTED && !ex->tactic) {
            s = dt_conv_cudnn_plan(p, st, &g, out[0].dtype, 0, false, &plan);
            if (!s) s = dt_conv_cudnn(st, plan, &epi, in, out, ex, &done);
        }
    } else {
        int algo = tactic ? DT_CUDA_CONV_CUDNN_ALGO(tactic) : -1;
        bool plain = DT_CUDA_CONV_CUDNN_IS_PLAIN(tactic);
        s = dt_conv_cudnn_plan(p, st, &g, out[0].dtype, tactic, ex->tactic != 0, &plan);
        if (!s) s = dt_conv_cudnn(st, plan, &epi, in, out, ex, &done);
        /* cuDNN refused the stored algorithm only when called: kept as a refusal, so later runs
         * at these shapes take the heuristic's plan at once (made here, this once). */
        if (s == DUCTILE_ERR_UNSUPPORTED && algo >= 0 && !ex->tactic && plan &&
            plan->key[7] == dt_conv_plan_algo_key(algo, plain)) {
            dt_cuda_plan_failed(plan, s);
            s = dt_conv_plan_get(p, st, &g, out[0].dtype, -1, false, &plan);
            if (!s) s = dt_conv_cudnn(st, plan, &epi, in, out, ex, &done);
        }
    }
    if (s || done) return s;
    if (!epi.bias && !epi.res && epi.act == DT_CU_IDENTITY) return DUCTILE_OK;
    /* NCHW: n planes of m channels of oh*ow; NHWC: n*oh*ow pixels of m channels. */
    int64_t pixels = g.out[0] * g.out[1];
    return dt_cuda_check(dt_cu_epilogue(out[0].dtype, out[0].data, epi.bias, epi.res, p->nhwc ? g.batch * pixels : g.batch,
                                        g.m, p->nhwc ? 1 : pixels, epi.act, epi.p0, epi.p1, ex->stream),
                         "conv epilogue");
}

/* The cuDNN plan the run at these shapes takes (dt_conv_run's choice), made in the context's
 * state; *bytes: its workspace. The own kernels make nothing (their scratch is dt_conv_scratch's). */
static ductile_status dt_conv_plan_shapes(const void *params, const dt_view *in, const dt_view *out, const dt_exec *ex,
                                          size_t *bytes)
{
    const dt_cu_conv_params *p = params;
    dt_conv_geom g;
    *bytes = 0;
    if (dt_conv_geom_at(p, in, &g) != DUCTILE_OK) return DUCTILE_OK; /* the run names the fault */
    int tactic = dt_cuda_conv_choose(p, &g, in[DT_FC_X].dtype, ex);
    if (tactic == DT_CUDA_CONV_LT_NHWC) {
        /* The run's bias and ReLU flags (dt_conv_lt_fuses): the constants are 16-byte aligned. */
        bool fuse = dt_conv_lt_act(p->epi.act);
        ductile_status s = dt_cuda_lt_product_plan(p->L, ex, out[0].dtype, g.batch * g.out[0] * g.out[1], g.m, g.c,
                                                   p->has_bias && fuse, fuse && p->epi.act == DT_CU_RELU);
        /* No cuBLASLt algorithm here: the run takes cuDNN's heuristic, planned below. */
        if (s != DUCTILE_ERR_UNSUPPORTED) {
            *bytes = DT_CUDA_LT_WORKSPACE;
            return s;
        }
        tactic = 0;
    }
    if (tactic < 0 || tactic >= DT_CUDA_CONV_DEPTHWISE) return DUCTILE_OK;
    dt_cuda_plan *plan = NULL;
    DT_TRY(dt_conv_cudnn_plan(p, ex->state, &g, out[0].dtype, tactic, ex->tactic != 0, &plan));
    *bytes = plan->ws;
    return DUCTILE_OK;
}

const dt_kernel dt_cuda_conv_kernel = {
    .prepare = dt_conv_prepare, .scratch = dt_conv_scratch, .run = dt_conv_run, .plan_shapes = dt_conv_plan_shapes,
};
