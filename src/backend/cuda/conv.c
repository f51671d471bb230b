/* Conv and FusedConv on cuDNN: the convolution by cuDNN (float32: FMA math, TF32 only where the
 * builder marked the layer `tf32`; float16 / bfloat16 tensors: tensor cores, float32 compute), bias, residual
 * and activation in one pass of the project's epilogue kernel (cuDNN's fused
 * conv-bias-activation takes only ReLU, and FusedConv has six activations and a residual).
 * Descriptors and cuDNN's heuristic algorithm are made once per layer and shapes (the
 * context's plan cache); timing algorithms as tactics at build time is the next step. */
#include "backend/cuda/cuda.h"
#include "core/status.h"
#include "ops/fused.h"
#include "ops/linalg.h"

#include <cudnn.h>

#include <math.h>
#include <string.h>

static ductile_status dt_cudnn(cudnnStatus_t s, const char *what)
{
    if (s == CUDNN_STATUS_SUCCESS) return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_INTERNAL, "cuDNN %s: %s", what, cudnnGetErrorString(s));
}

/* cuDNN pads symmetrically: explicit pads must be, and auto_pad is left to the host. */
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
    const char *act = dt_attr_string(L, "activation", "");
    return !act[0] || !strcmp(act, "Relu") || !strcmp(act, "Clip") || !strcmp(act, "HardSigmoid") ||
           !strcmp(act, "HardSwish") || !strcmp(act, "Sigmoid");
}

static int dt_act_code(const ductile_layer *L, float *p0, float *p1)
{
    const char *a = dt_attr_string(L, "activation", "");
    *p0 = *p1 = 0.f;
    if (!a[0]) return DT_CU_IDENTITY;
    if (!strcmp(a, "Relu")) return DT_CU_RELU;
    if (!strcmp(a, "Sigmoid")) return DT_CU_SIGMOID;
    if (!strcmp(a, "Clip")) {
        *p0 = dt_attr_float(L, "act_min", -INFINITY);
        *p1 = dt_attr_float(L, "act_max", INFINITY);
        return DT_CU_CLIP;
    }
    *p0 = dt_attr_float(L, "act_alpha", 0.2f);
    *p1 = dt_attr_float(L, "act_beta", 0.5f);
    return !strcmp(a, "HardSwish") ? DT_CU_HARDSWISH : DT_CU_HARDSIGMOID;
}

/* The cuDNN data type of a layer's tensors (supports() admits these three). */
static cudnnDataType_t dt_cudnn_type(int dtype)
{
    return dtype == DUCTILE_FLOAT16 ? CUDNN_DATA_HALF : dtype == DUCTILE_BFLOAT16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

/* Descriptors and the algorithm for one geometry, into an empty plan slot. Half data runs on
 * tensor cores with float32 accumulation; float32 keeps FMA math unless the layer allows
 * TF32 (ductile_builder_flag TF32). */
static ductile_status dt_conv_plan(dt_cuda_state *st, const dt_conv_geom *g, int dtype, bool tf32, dt_cuda_plan *p)
{
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
    if (!s) s = dt_cudnn(cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, dt, (int)g->batch, (int)g->c,
                                                    (int)g->in[0], (int)g->in[1]), "input descriptor");
    if (!s) s = dt_cudnn(cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NCHW, dt, (int)g->batch, (int)g->m,
                                                    (int)g->out[0], (int)g->out[1]), "output descriptor");
    if (!s) s = dt_cudnn(cudnnSetFilter4dDescriptor(wd, dt, CUDNN_TENSOR_NCHW, (int)g->m,
                                                    (int)(g->c / g->group), (int)g->k[0], (int)g->k[1]), "filter descriptor");
    if (!s) s = dt_cudnn(cudnnSetConvolution2dDescriptor(cd, (int)g->pb[0], (int)g->pb[1], (int)g->s[0], (int)g->s[1],
                                                         (int)g->d[0], (int)g->d[1], CUDNN_CROSS_CORRELATION,
                                                         CUDNN_DATA_FLOAT), "convolution descriptor");
    if (!s) s = dt_cudnn(cudnnSetConvolutionGroupCount(cd, (int)g->group), "group count");
    if (!s) s = dt_cudnn(cudnnSetConvolutionMathType(cd, math), "math type");
    cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    if (!s) {
        cudnnConvolutionFwdAlgoPerf_t perf[8];
        int got = 0;
        s = dt_cudnn(cudnnGetConvolutionForwardAlgorithm_v7(h, xd, wd, cd, yd, 8, &got, perf), "algorithm");
        for (int i = 0; !s && i < got; i++) {
            /* Heuristic order; skip what needs over 1 GB of workspace or computes in TF32. */
            if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > ((size_t)1 << 30) ||
                perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION ||
                (math == CUDNN_FMA_MATH && perf[i].mathType != CUDNN_FMA_MATH))
                continue;
            algo = perf[i].algo;
            s = dt_cudnn(cudnnSetConvolutionMathType(cd, perf[i].mathType), "math type");
            break;
        }
    }
    size_t ws = 0;
    if (!s) s = dt_cudnn(cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, cd, yd, algo, &ws), "workspace size");
    p->algo = (int)algo;
    p->ws = ws;
    return s;
}

ductile_status dt_cuda_conv_run(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_cuda_state *st = ex->state;
    bool fused = !strcmp(L->op_type, "FusedConv");
    dt_conv_geom g;
    DT_TRY(dt_conv_geometry(L, &in[DT_FC_X], &in[DT_FC_W], &g));
    if (g.pb[0] != g.pe[0] || g.pb[1] != g.pe[1])
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "cuDNN needs symmetric pads");
    /* Attributes are fixed per layer: the input dims and the channel count decide the rest. */
    int64_t key[DT_CUDA_KEY] = {g.batch, g.c, g.in[0], g.in[1], g.m, g.k[0], g.k[1]};
    bool hit;
    dt_cuda_plan *p = dt_cuda_plan_slot(st, L, key, &hit);
    ductile_status s = hit ? DUCTILE_OK : dt_conv_plan(st, &g, out[0].dtype, dt_attr_int(L, "tf32", 0) != 0, p);
    if (s) {
        dt_cuda_plan_release(p);
        return s;
    }
    if (p->ws) DT_TRY(dt_cuda_workspace(st, p->ws));
    DT_TRY(dt_cudnn(cudnnSetStream(st->cudnn, (cudaStream_t)ex->stream), "set stream"));
    const float one = 1.f, zero = 0.f;
    DT_TRY(dt_cudnn(cudnnConvolutionForward(st->cudnn, &one, p->desc[0], in[DT_FC_X].data, p->desc[2], in[DT_FC_W].data,
                                            p->desc[3], (cudnnConvolutionFwdAlgo_t)p->algo, st->ws, p->ws, &zero, p->desc[1],
                                            out[0].data), "convolution"));
    const void *bias = L->n_in > DT_FC_B && L->in[DT_FC_B] ? in[DT_FC_B].data : NULL;
    const void *res = fused && L->n_in > DT_FC_R && L->in[DT_FC_R] ? in[DT_FC_R].data : NULL;
    float p0 = 0.f, p1 = 0.f;
    int act = fused ? dt_act_code(L, &p0, &p1) : DT_CU_IDENTITY;
    if (!bias && !res && act == DT_CU_IDENTITY) return DUCTILE_OK;
    return dt_cuda_check(dt_cu_epilogue(out[0].dtype, out[0].data, bias, res, g.batch, g.m, g.out[0] * g.out[1], act, p0, p1, ex->stream),
                         "conv epilogue");
}
