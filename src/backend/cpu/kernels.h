/* The CPU backend's kernels: one run function per op type. The CPU backend is the reference
 * for every op; other backends are tested against it. */
#ifndef DT_CPU_KERNELS_H
#define DT_CPU_KERNELS_H

#include "backend/backend.h"

/* A CPU kernel (see dt_kernel_fn in backend/backend.h). */
typedef dt_kernel_fn dt_cpu_run_fn;

/* The compiled kernel of an op type (dt_backend.kernel), or NULL: none, or not migrated. */
const dt_kernel *dt_cpu_kernel_compiled(const char *op_type);
/* The adapter (dt_backend.find_kernel): the old run function of an op type not migrated. */
dt_cpu_run_fn dt_cpu_kernel_legacy(const char *op_type);
/* A function that runs one layer of this op type once, or NULL: the old run function, or for
 * a compiled kernel dt_cpu_run_once. For constant folding and tests, which run a layer once;
 * the execute path runs plans (runtime/plan.c). */
dt_cpu_run_fn dt_cpu_kernel_find(const char *op_type);
/* Runs layer L through its compiled kernel: prepare, scratch from the heap, run, free. */
ductile_status dt_cpu_run_once(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
/* For the prepares of kernels computing float32 only whose ops also admit float16 / bfloat16
 * (the CUDA backend's half kernels, builder/precision.c): refuses a layer with a half input,
 * naming it, so such an engine fails at load rather than reading half as float32. */
ductile_status dt_cpu_want_f32(const ductile_layer *L);
/* The end of most prepares: a dt_malloc'd copy of the kernel's params (bytes of src) in *out. */
ductile_status dt_cpu_params_copy(const void *src, size_t bytes, const ductile_layer *L, void **out);

/* The op types still running through the adapter, in table order, into ops[0..cap); returns
 * how many there are (test_kernels_compiled keeps the list). */
int dt_cpu_adapter_ops(const char **ops, int cap);

/* Layouts of conv weights packed at build time (FusedConv's `packed`):
 *   DT_CPU_PACK_GEMM_A: the GEMM's packed A, group by group (dt_cpu_conv_pack_weights);
 *   DT_CPU_PACK_GEMM_A_WINO: that, followed by the Winograd F(4x4, 3x3) transform
 *   (dt_cpu_wino_pack_weights), for convs where Winograd applies, so every tactic can run;
 *   DT_CPU_PACK_GEMM_A_BF16, _BF16_WINO: the same with the GEMM's A in bfloat16
 *   (dt_cpu_conv_pack_weights_bf16, padded to 64 bytes), then the float32 packed A (the
 *   tactics DT_CONV_ON_F32 run on it; since session 13: older engines fail the size check),
 *   then with _WINO Winograd's float32 transform and, where the layer's map may take it,
 *   F(2x2, 3x3)'s bfloat16 one (dt_cpu_wino2_pack_weights; since session 20, optional: the
 *   size tells), then, where DT_CONV_WINOGRAD_BF16 may be chosen, F(4x4, 3x3)'s bfloat16 one
 *   (dt_cpu_wino_bf16_pack_weights; since session 21, optional likewise), for layers the
 *   builder marked `bf16`. They load only on a CPU with
 *   AVX512-BF16. */
enum { DT_CPU_PACK_GEMM_A = 1, DT_CPU_PACK_GEMM_A_WINO = 2, DT_CPU_PACK_GEMM_A_BF16 = 4, DT_CPU_PACK_GEMM_A_BF16_WINO = 5 };
/* DT_CPU_PACK_GEMM_A_FP16, _FP16_WINO: as the bfloat16 ones in IEEE float16 (the same pair
 * layout, dt_gemm.fp16), for layers the builder marked `fp16`; only on a CPU with AVX512-FP16. */
enum { DT_CPU_PACK_GEMM_A_FP16 = 7, DT_CPU_PACK_GEMM_A_FP16_WINO = 8 };
/* The refusal of a bf16 layer (attribute `bf16`) on a CPU without AVX512-BF16, else OK. */
ductile_status dt_cpu_bf16_check(void);
/* The same for a layer marked `fp16` on a CPU without AVX512-FP16. */
ductile_status dt_cpu_fp16_check(void);
/* dt_backend.bf16_in_kernel of the CPU backend (fused_conv.c). */
bool dt_cpu_bf16_in_kernel(const ductile_layer *L, unsigned flags);
/* Layout of a constant B of MatMul (2-D B) and Gemm packed at build time (their `packed`):
 * op(B) as the GEMM's packed B over the whole K (dt_gemm_pack_b_full); _BF16: in bfloat16
 * (dt_gemm_pack_b_bf16; a float32 tensor of half as many elements), then (since session 13)
 * the float32 packing, for layers marked `bf16`, loading only on a CPU with AVX512-BF16.
 * FusedMatMul's tactic DT_GEMM_ON_F32 runs the float32 copy, DT_GEMM_AS_PACKED the bfloat16
 * (the builder's timer keeps the faster); MatMul and Gemm run the bfloat16. */
enum { DT_CPU_PACK_GEMM_B = 3, DT_CPU_PACK_GEMM_B_BF16 = 6 };
/* DT_CPU_PACK_GEMM_B_FP16: as _BF16 in IEEE float16 (layers marked `fp16`, AVX512-FP16). */
enum { DT_CPU_PACK_GEMM_B_FP16 = 9 };
/* The path name of a GEMM by its B layout ("packed_b", ".bf16", ".fp16"; NULL for 0). */
const char *dt_cpu_gemm_b_path(int64_t packed);
struct dt_gemm;
/* Hands B's packed blob (dt_cpu_gemm_b; NULL: B in place) to g in its layout: B_packed, or
 * B_bf16 for DT_CPU_PACK_GEMM_B_BF16. */
void dt_cpu_gemm_use_b(struct dt_gemm *g, int64_t layout, const float *packed);

/* dt_backend.prepack of the CPU backend (fused_conv.c; MatMul and Gemm: linalg.c). */
ductile_status dt_cpu_prepack(const ductile_layer *L, dt_prepacked *out);
ductile_status dt_cpu_prepack_gemm_b(const ductile_layer *L, dt_prepacked *out);
/* Whether dt_cpu_prepack_gemm_b packs L's B (a MatMul, Gemm or FusedMatMul with a constant
 * float32 2-D B, not yet packed); *K, *N (may be NULL): op(B)'s dims. */
bool dt_cpu_gemm_b_packable(const ductile_layer *L, int64_t *K, int64_t *N);
/* A `packed` value of B that the GEMM reads (0 or DT_CPU_PACK_GEMM_B), else the refusal. */
ductile_status dt_cpu_gemm_layout_check(int64_t layout);
/* B of a MatMul, Gemm or FusedMatMul as the GEMM reads it: in place (*packed NULL), or the
 * blob packed in `layout`, checked against the size that layout has for K x N (linalg.c). */
ductile_status dt_cpu_gemm_b(int64_t layout, const dt_view *b, int64_t K, int64_t N, const float **packed);
enum { DT_GEMM_AS_PACKED = 1, DT_GEMM_ON_F32 = 17 };
/* With a bfloat16 B (*layout DT_CPU_PACK_GEMM_B_BF16, *packed from dt_cpu_gemm_b) and tactic
 * DT_GEMM_ON_F32: its float32 copy, as layout DT_CPU_PACK_GEMM_B; else unchanged. */
void dt_cpu_gemm_b_tactic(int64_t *layout, const float **packed, int64_t K, int64_t N, int64_t tactic);
/* dt_backend.tactics of the CPU backend (fused_conv.c): the conv algorithms (dt_conv_algo). */
int dt_cpu_tactics(const ductile_layer *L, const dt_view *in, int *ids, int cap);
/* dt_backend.tactic_precise of the CPU backend (fused_conv.c): for FusedConv's
 * DT_CONV_WINOGRAD_BF16, F(4x4, 3x3) in float32 on the same weights (DT_CONV_WINOGRAD); else 0. */
int dt_cpu_tactic_precise(const ductile_layer *L, int tactic);
/* dt_backend.prune: a bfloat16 Winograd layer's weights without the optional transforms that
 * none of its stored tactics runs (fused_conv.c). */
ductile_status dt_cpu_prune(const ductile_layer *L, dt_prepacked *out);
/* dt_backend.kernel_path: the CPU kernels with more than one path (FusedConv's algorithms,
 * MatMul's and Gemm's ways, FusedInvertedResidual's strips or not), each next to its kernel. */
const char *dt_cpu_kernel_path(const ductile_layer *L, const void *params, const dt_view *in, const dt_view *out,
                               int profile, int point, int threads);
const char *dt_cpu_fused_conv_path(const void *params, const dt_view *in, const dt_view *out, int profile, int point,
                                   int threads);
const char *dt_cpu_gemm_path(const void *params, const dt_view *in, const dt_view *out, int profile, int threads);
const char *dt_cpu_fused_irb_path(const void *params, const dt_view *in, int profile, int point, int threads);
const char *dt_cpu_concat_path(const void *params, const dt_view *in, const dt_view *out);
const char *dt_cpu_split_path(const void *params, const dt_view *in, const dt_view *out);
/* FusedInvertedResidual's tactics (fused_irb.c): its unfused chain's depthwise algorithm,
 * and for a `bf16` block each again + DT_CONV_ON_F32 (its float32 1x1 weights). */
int dt_cpu_fused_irb_tactics(const ductile_layer *L, const dt_view *in, int *ids, int cap);
const char *dt_cpu_matmul_path(const void *params, const dt_view *in, const dt_view *out, int profile, int threads);
const char *dt_cpu_fused_matmul_path(const void *params, const dt_view *in, const dt_view *out, int profile,
                                     int threads);
/* FusedMatMul's tactics (fused_matmul.c): on a bfloat16 B, DT_GEMM_AS_PACKED and DT_GEMM_ON_F32. */
int dt_cpu_fused_matmul_tactics(const ductile_layer *L, int *ids, int cap);
/* LayerNormalization of `rows` contiguous rows of d floats from x into y (may be x: each
 * element is read before it is written), Scale and B (may be NULL) of d values: the
 * LayerNormalization kernel's rows (nn_norm.c), for FusedMatMul's norm = 1. */
void dt_cpu_layernorm_rows(const float *x, const float *scale, const float *bias, float *y, int64_t rows, int64_t d,
                           float eps, dt_pool *pool);
/* FusedMatMul's compiled kernel (fused_matmul.c), in dt_cpu_fused's table. */
extern const dt_kernel dt_cpu_fused_matmul_kernel;
extern const dt_kernel dt_cpu_fused_irb_kernel;     /* fused_irb.c */
extern const dt_kernel dt_cpu_fused_se_kernel;      /* fused_se.c */
/* fused_irb.c's choices, variables for the tests (which set them to run every path at small
 * sizes): the expanded tensor's bytes from which strips run (one image; a batch of more; a
 * block without an expand), a strip's byte budget, how many times the weights' bytes a
 * strip's expanded rows must be, the most bytes of a strip of a block without a project
 * (where its expanded tensor stays in L3; where it has dt_cpu_irb_far_bytes and more). */
extern int64_t dt_cpu_irb_min_bytes, dt_cpu_irb_min_batch_bytes, dt_cpu_irb_min_noexpand_bytes, dt_cpu_irb_strip_bytes,
    dt_cpu_irb_weight_ratio, dt_cpu_irb_max_strip_bytes, dt_cpu_irb_max_far_strip_bytes, dt_cpu_irb_far_bytes;
/* FusedAttention's (fused_attention.c). */
extern const dt_kernel dt_cpu_fused_attention_kernel;
extern const dt_kernel dt_cpu_fused_rotary_kernel;

#endif
