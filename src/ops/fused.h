/* Private layers that builder passes create (domain "ductile"); never in an ONNX file.
 *
 * FusedConv: Conv [-> Add(residual)] [-> activation] as one layer (src/builder/fuse.c).
 *   inputs   X, W, B (optional), R (optional: same shape as the output, added after B),
 *            S (optional: [N or 1, C, 1, 1], float32, channels first only): the conv reads
 *            X * S (broadcast), squeeze-excite's Mul absorbed (builder/fuse_se.c)
 *   attrs    Conv's (auto_pad, dilations, group, kernel_shape, pads, strides), plus
 *            activation  STRING  "", "Relu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid",
 *                        "Silu" (x * Sigmoid(x))
 *            act_alpha, act_beta  FLOAT  HardSigmoid / HardSwish: max(0, min(1, a*x + b))
 *            act_min, act_max     FLOAT  Clip bounds
 *            packed   INT   0: W is [M, C/group, KH, KW]; else the layout id of a backend's
 *                           pre-packed W (a flat tensor) and w_shape holds W's dims
 *            w_shape  INTS  W's dims when packed
 *            tactic   INTS  optional: the backend's algorithm per optimization profile and
 *                           shape point, tactic_points INT per profile (backend/tactic.h)
 *            layout   STRING  "" (default: ONNX's channels first), or "NHWC": a 2-D conv on
 *                     channels-last tensors (builder/layout.c): X [N, H, W, C], W [M, KH, KW,
 *                     C/group] (KRSC), R and Y [N, OH, OW, M]; geometry and attributes as the
 *                     channels-first conv of the same tensors permuted
 *            depth_to_space  INT  r >= 1 (0: none): Y is DepthToSpace(blocksize r, mode
 *                     d2s_mode) of the conv's result (after residual and activation) taken
 *                     channels first: Y [N, M / r^2, OH r, OW r] whatever the layout (the
 *                     DepthToSpace after a channels-last conv folded in, builder/fuse_d2s.c,
 *                     for backends that say their kernel writes it)
 *            d2s_mode STRING  "DCR" (default) or "CRD", as DepthToSpace's mode
 *            to       INT  Y's dtype where it differs from X's (a float32 network output
 *                     written from half inputs: the folded DepthToSpace's `to`)
 *            lean_act INT  1: a Sigmoid or Silu activation may be computed in the lean form
 *                     of half layers (the CPU's dt_epilogue_lean); set by the builder on the
 *                     float32 FusedConvs of a half engine (builder/precision.c)
 *   outputs  Y; P (optional, channels first, 2-D, without depth_to_space or to): Y's
 *            GlobalAveragePool [N, M, 1, 1], the pool that read Y back (squeeze-excite's)
 *            taken while the kernel has Y in cache (builder/fuse_pool.c)
 *
 * FusedMatMul: MatMul(A, constant 2-D B) [-> Add(constant bias [N])] [-> Add(residual)]
 *   [-> Gelu or SiLU] as one layer (at least one of them) (src/builder/fuse.c), for backends with a kernel for it: the bias,
 *   residual and activation are applied to each strip of the product while it is in cache.
 *   Y = act((A @ B + bias) + R), with MatMul's shapes (A [..., M, K] or [K]; Y A's dims with K
 *   replaced by N).
 *   inputs   A, B (2-D [K, N]), bias ([N], optional), R (optional: Y's shape),
 *            Scale, LB ([N] each, LB optional): with attribute norm = 1, Y is
 *            LayerNormalization(act((A @ B + bias) + R)) over the last axis with this Scale and
 *            B (builder/fuse_matmul_norm.c): a transformer's residual LayerNorm in the
 *            product's epilogue, one layer (and on a GPU one launch) less per LayerNorm
 *   attrs    activation  STRING  "", "Gelu" (approximate "none") or "Silu" (Mul(x, Sigmoid(x)),
 *                                 as PyTorch exports SiLU: a Llama MLP's gate projection)
 *            packed, w_shape     as FusedConv's, for B
 *            norm     INT    0 (default) or 1: the LayerNorm above, whose epsilon is
 *            epsilon  FLOAT  (default 1e-5)
 *
 * FusedAttention: Mul(Q, q_scale) and Mul(Kt, k_scale) -> MatMul -> Add(mask) -> Softmax(last
 *   axis) [-> IsNaN + Where(0, .)] -> MatMul(V) as one layer (src/builder/fuse.c): the scores
 *   of one (batch, head) stay in cache from the product through the softmax to the second
 *   product, instead of five to eight layers each writing the [..., S, L] tensor.
 *   Y = P @ V with P = softmax((Q * q_scale) @ (Kt * k_scale) + M) along the last axis, and
 *   NaN entries of P (rows whose every score is -inf) made 0 when nan_to_zero.
 *   inputs   Q [..., S, D], Kt [..., D, L], V [..., L, Dv] (the same batch dims, no
 *            broadcasting), M (optional: broadcasts to [..., S, L] without growing it)
 *   attrs    q_scale, k_scale  FLOAT (default 1); nan_to_zero  INT (default 0)
 *            layout  STRING  "" (default), or "bshd": the heads' Transposes absorbed too, so
 *                    Q is [B, S, H, D], Kt is given as K [B, L, H, D], V as [B, L, H, Dv], and
 *                    Y is [B, S, H, Dv] (what the Transposes around attention in BERT exports
 *                    read and write); the mask still broadcasts to the scores [B, H, S, L]
 *                    "bshd_qkv": self-attention on packed projections (builder/fuse_qkv.c):
 *                    Q is [B, S, 3, H, D], the rows of Q, K and V side by side as one
 *                    FusedMatMul with the three weights concatenated writes them; Kt and V
 *                    are omitted (L = S, Dv = D), and Y is [B, S, H, D] as with "bshd"
 *                    "krows": K's Transpose to Kt absorbed (Hugging Face's decoders transpose
 *                    K's last two dims after the rotary embedding): input 1 is K [..., L, D]
 *   Y        [..., S, Dv]
 *
 * FusedInvertedResidual: FusedConv(1x1 expand) -> FusedConv(depthwise) [-> FusedConv(1x1
 *   project) [+ residual]] as one layer (src/builder/fuse_irb.c), for backends with a kernel for
 *   it (the CPU): MobileNet's inverted-residual block computed a strip of output rows at a
 *   time, so the expanded tensor (6x the block's channels) lives in cache instead of going to
 *   memory and back. Y is what the chain of FusedConvs computes, bit for bit on the CPU.
 *   inputs   X [N, C, H, W]; We [Ce, C, 1, 1], Be [Ce] (expand); Wd [Ce, 1, KH, KW], Bd [Ce]
 *            (depthwise); Wp [Cp, Ce, 1, 1], Bp [Cp] (project: absent, Y is the depthwise's
 *            output); R (optional: Y's shape, added after Bp). Biases may be absent (empty).
 *            We and Be absent: no expand, the depthwise reads X (Ce = C; MobileNet's first
 *            block, depthwise -> project).
 *   attrs    the depthwise conv's (auto_pad, dilations, group, kernel_shape, pads, strides)
 *            and activation (FusedConv's attributes), plus
 *            expand_activation, project_activation  STRING  as FusedConv's activation
 *            expand_p0, expand_p1, project_p0, project_p1  FLOAT  the activations' parameters
 *                     (Clip: min, max; HardSigmoid / HardSwish: alpha, beta)
 *   Y        [N, Cp (or Ce), OH, OW]; P (optional): Y's GlobalAveragePool, as FusedConv's
 *
 * FusedLayerNorm: Add(x, r1) [-> Add(., r2)] -> LayerNormalization as one layer
 *   (src/builder/fuse_norm.c): Y = LayerNormalization((X + R1) + R2) with LayerNormalization's
 *   Scale, B, axis and epsilon, one output. The sums are formed in float32 in that order.
 *   inputs   X, Scale, B (optional), R1, R2 (optional): R1 and R2 of X's dtype, each
 *            broadcasting to X (ONNX's rules) with the normalized dims (axis on) equal to X's:
 *            a row of X adds a whole row of R (BERT's position embeddings [1, S, E] against
 *            [B, S, E]); X has the sum's shape
 *            IDS (optional, int32/int64): X is then Gather(table = input 0 [V, E], IDS, axis
 *            0), rows of the table picked by the ids (negative ones wrap; the CPU refuses one
 *            out of range as Gather does, the CUDA kernel reads a zero row as its Gather), and
 *            the LayerNorm is over E (axis the last): BERT's word embeddings
 *   attrs    axis, epsilon  as LayerNormalization's
 *   Y        X's shape and dtype *
 * FusedRotary: the rotary position embedding as Hugging Face's rotate_half writes it, Slice,
 *   Slice, Neg, Concat, Mul, Mul and Add as one layer (src/builder/fuse_rotary.c), for backends
 *   with its kernel (the CPU): Y = X * COS + concat(-X[..., D/2:], X[..., :D/2]) * SIN, each
 *   product and the sum rounded as the unfused Mul, Mul and Add (the same bits).
 *   inputs   X [..., D], D even; COS, SIN broadcasting to X with their last dim D
 *   Y        X's shape and dtype
 *
 * FusedSqueezeExcite: GlobalAveragePool(X) -> FusedConv 1x1 (fc1) -> FusedConv 1x1 (fc2) as one
 *   layer (src/builder/fuse_se_pool.c), for backends where each of the three is a launch of its
 *   own (the CUDA backend): squeeze-excite's channel scale S = act2(W2 act1(W1 mean(X) + B1) + B2)
 *   of each image. The Mul of X by S stays a layer (the CPU takes S into its conv instead:
 *   fuse_se.c, and does not make this layer).
 *   inputs   X [N, C, H, W] (layout "NHWC": [N, H, W, C]); W1 [Cr, C, 1, 1], B1 [Cr] (optional),
 *            W2 [C, Cr, 1, 1], B2 [C] (optional): the weights stay channels first in either
 *            layout (a 1x1 conv's [M, K, 1, 1] and its KRSC [M, 1, 1, K] are the same bytes)
 *   attrs    hidden_activation, hidden_p0, hidden_p1  fc1's activation as FusedInvertedResidual's
 *            expand_* (names as FusedConv's activation; p0, p1: Clip's min, max, HardSigmoid's
 *            and HardSwish's alpha, beta)
 *            scale_activation, scale_p0, scale_p1  fc2's
 *            layout  STRING  "" or "NHWC" (builder/layout.c: X channels last, Y [N, 1, 1, C])
 *   Y        [N, C, 1, 1] ([N, 1, 1, C] with layout "NHWC": the same bytes), X's dtype */
#ifndef DT_OPS_FUSED_H
#define DT_OPS_FUSED_H

#include "ops/linalg.h"
#include "ops/op.h"

/* Input indices. */
enum { DT_FC_X = 0, DT_FC_W = 1, DT_FC_B = 2, DT_FC_R = 3, DT_FC_S = 4 };
enum { DT_FM_A = 0, DT_FM_B = 1, DT_FM_BIAS = 2, DT_FM_R = 3, DT_FM_SCALE = 4, DT_FM_LB = 5 };
enum { DT_IRB_X = 0, DT_IRB_WE = 1, DT_IRB_BE = 2, DT_IRB_WD = 3, DT_IRB_BD = 4, DT_IRB_WP = 5, DT_IRB_BP = 6,
       DT_IRB_R = 7 };
enum { DT_FA_Q = 0, DT_FA_KT = 1, DT_FA_V = 2, DT_FA_MASK = 3 };
enum { DT_FSE_X = 0, DT_FSE_W1 = 1, DT_FSE_B1 = 2, DT_FSE_W2 = 3, DT_FSE_B2 = 4 };
enum { DT_FLN_X = 0, DT_FLN_SCALE = 1, DT_FLN_B = 2, DT_FLN_R1 = 3, DT_FLN_R2 = 4, DT_FLN_IDS = 5 };
enum { DT_FROT_X = 0, DT_FROT_COS = 1, DT_FROT_SIN = 2 };

/* The view of W that the conv geometry reads: W itself, or (packed) a view with W's original
 * dims from w_shape and data NULL. DUCTILE_ERR_INVALID_ARGUMENT when w_shape is malformed. */
ductile_status dt_fused_conv_weight(const ductile_layer *L, const dt_view *w, dt_view *out);

/* FusedConv's layout is "NHWC" (channels last). */
bool dt_fused_conv_nhwc(const ductile_layer *L);
/* FusedConv's folded DepthToSpace: its blocksize (0: none) and whether the mode is "CRD". */
int64_t dt_fused_conv_d2s(const ductile_layer *L, bool *crd);
/* The channels-first views of an NHWC FusedConv's X ([N, H, W, C] as [N, C, H, W]) and W
 * ([M, KH, KW, C/group] as [M, C/group, KH, KW]), dims only (data kept): what the conv geometry
 * reads. DUCTILE_ERR_SHAPE naming the input when X or W is not 4-D. */
ductile_status dt_fused_conv_nchw_views(const dt_view *x, const dt_view *w, dt_view *lx, dt_view *lw);
/* FusedConv's geometry at these views, whatever its layout and packing (infer, tactics). */
ductile_status dt_fused_conv_geometry(const ductile_layer *L, const dt_view *x, const dt_view *w, dt_conv_geom *g);

/* FusedSqueezeExcite's layout is "NHWC" (X channels last). */
bool dt_fused_se_nhwc(const ductile_layer *L);
/* FusedSqueezeExcite's sizes at these views: images n, channels c, hidden cr, pixels hw. */
void dt_fused_se_sizes(const ductile_layer *L, const dt_view *in, int64_t *n, int64_t *c, int64_t *cr, int64_t *hw);

/* FusedAttention's layout is "bshd" or "bshd_qkv" (the heads' Transposes absorbed). */
bool dt_fused_attention_bshd(const ductile_layer *L);
/* FusedAttention's layout is "bshd_qkv": Q, K and V packed in input 0 as [B, S, 3, H, D]. */
bool dt_fused_attention_qkv(const ductile_layer *L);

/* FusedAttention's attributes as every backend's prepare reads them. */
typedef struct dt_fa_attrs {
    float q_scale, k_scale;
    bool nan_to_zero, has_mask;
    bool bshd;              /* Q, K, V and Y as [B, S, H, D] */
    bool qkv;               /* bshd, with Q, K and V packed in input 0 ([B, S, 3, H, D]) */
    bool krows;             /* layout "krows": input 1 is K [..., L, D], not Kt */
} dt_fa_attrs;
void dt_fused_attention_attrs(const ductile_layer *L, dt_fa_attrs *a);

/* The sizes of one FusedAttention run: `count` (batch, head) items, each softmax(Q Kt + M) V
 * with Q [S, D], Kt [D, L], V [L, Dv]. The shapes were checked by infer when the engine was
 * built and at every new input shape; only what the kernels' loops need is derived. */
typedef struct dt_fa_geom {
    int rank;               /* of the scores [batch..., S, L] (bshd: 4, [B, H, S, L]) */
    int64_t count, S, D, L, Dv;
    int64_t H;              /* bshd: heads (rows of Y are H heads apart) */
    /* bshd: elements from one row (sequence position) of Q, K and V to the next (H * D and
     * H * Dv; qkv: 3 * H * D for all three), and where K and V start after Q's first element
     * (qkv: H * D and 2 * H * D; else 0: they are inputs of their own). */
    int64_t ldq, ldk, ldv, koff, voff;
    /* Mask: element strides per dim of the scores (0 where it broadcasts); batch dims. */
    int64_t mstride[DT_MAX_DIMS];
    int64_t batch[DT_MAX_DIMS];
} dt_fa_geom;
void dt_fused_attention_geometry(const dt_fa_attrs *a, const dt_view *in, dt_fa_geom *g);

/* FusedLayerNorm's addend r against X (normalized from axis on): st[d] for each of X's row
 * dims d < axis, r's element stride along it (0 where r broadcasts); false where r does not
 * broadcast to X with the normalized dims equal (infer refuses it). */
bool dt_fused_layernorm_strides(const dt_view *x, int axis, const dt_view *r, int64_t *st);
/* Where row `row` of X (rows of the normalized block) starts in such an r. */
int64_t dt_fused_layernorm_row_offset(const dt_view *x, int axis, const int64_t *st, int64_t row);
/* FusedLayerNorm's X as the LayerNorm sees it: input 0, or with IDS the gathered rows
 * (IDS's dims and the table's row length; data NULL). */
bool dt_fused_layernorm_gathers(const ductile_layer *L);
void dt_fused_layernorm_x(const dt_view *in, bool gathers, dt_view *x);

/* FusedMatMul's activation; DUCTILE_ERR_UNSUPPORTED for others. */
typedef enum { DT_FM_ACT_NONE, DT_FM_ACT_GELU /* erf Gelu */, DT_FM_ACT_SILU /* x * Sigmoid(x) */ } dt_fm_act;
ductile_status dt_fused_matmul_act(const ductile_layer *L, dt_fm_act *act);

/* The same for FusedMatMul's B: [K, N]. */
ductile_status dt_fused_matmul_weight(const ductile_layer *L, const dt_view *b, dt_view *out);

#endif
