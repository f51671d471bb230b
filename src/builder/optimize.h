/* Builder passes that make the working network fast on a backend: fusion into private layers
 * (fuse.c), weights packed once into the backend's layout (prepack.c) and the per-profile
 * choice of kernel by timing (tactics.c). See docs/DESIGN.md, "Fusion, packed weights,
 * tactics". */
#ifndef DT_BUILDER_OPTIMIZE_H
#define DT_BUILDER_OPTIMIZE_H

#include "backend/backend.h"
#include "graph/network.h"

/* Rewrites Conv [-> Add(residual of the same shape)] [-> activation] chains whose
 * intermediate tensors have one consumer and are not network outputs into FusedConv layers
 * (src/ops/fused.h); a Conv with constant weights and nothing to fuse becomes a FusedConv
 * too, so packing and tactics apply to it. The absorbed layers are removed; run
 * dt_pass_extract afterwards to drop the tensors nobody uses. */
ductile_status dt_pass_fuse(ductile_network *net);
/* dt_pass_fuse plus the fusions into layers that only some backends run, where `backend` has
 * their kernel (builder/fuse_transformer.c): MatMul(constant 2-D B) -> Add(bias [N])
 * [-> Add(residual)] [-> Gelu] into FusedMatMul, and attention (scaled Q Kt, mask, Softmax,
 * NaN -> 0, times V, with the heads' Transposes when all four are there) into FusedAttention.
 * backend NULL: dt_pass_fuse. */
ductile_status dt_pass_fuse_for(ductile_network *net, const dt_backend *backend);
/* GlobalAveragePool of a channels-first FusedConv's or FusedInvertedResidual's output into that
 * layer's second output (fuse_pool.c), where `backend` has the inverted-residual kernel (the
 * CPU's convs pool as they write); after the layout pass, which leaves channels-last regions
 * their ReduceMean. DUCTILE_FUSE_POOL=0: nothing. */
ductile_status dt_pass_fuse_pool(ductile_network *net, const dt_backend *backend);

/* Resize (nearest or linear, spatial axes) -> Conv 1x1 of fewer output than input channels
 * becomes Conv 1x1 -> Resize (builder/commute_resize.c): the Resize then moves fewer channels
 * and an upscale leaves the conv fewer pixels. Before fusion, on ONNX layers. *moved: how
 * many pairs. */
ductile_status dt_pass_commute_resize(ductile_network *net, int *moved);

/* The layout pass (builder/layout.c): channels-last regions around the convolutions a backend
 * wants NHWC (dt_backend.prefers_nhwc with the builder's flags), Transposes at their borders,
 * layout-agnostic layers (elementwise, GlobalAveragePool as ReduceMean) inside. Run after
 * fusion, before packing; dt_pass_extract afterwards drops what it left unused.
 * DT_LAYOUT_ALL takes every 2-D FusedConv with constant weights whatever the backend says
 * (tests, and DUCTILE_LAYOUT=nhwc); DT_LAYOUT_NONE does nothing (DUCTILE_LAYOUT=nchw).
 * *converted: how many layers now compute channels last. */
typedef enum dt_layout_mode { DT_LAYOUT_BACKEND = 0, DT_LAYOUT_ALL = 1, DT_LAYOUT_NONE = 2 } dt_layout_mode;
ductile_status dt_pass_layout(ductile_network *net, const dt_backend *be, unsigned flags, dt_layout_mode mode,
                              int *converted);
/* Seconds per run of engine e at profile 0's opt shapes (layout_choice.c): the best of a few
 * batches of runs on the backend's default stream, after warm-up runs. For the builder's
 * choice between a channels-last engine and the channels-first one. */
struct ductile_engine;
ductile_status dt_engine_time(const struct ductile_engine *e, double *seconds);

/* Asks the backend to pack the constant weights of every layer it knows how to
 * (backend->prepack); each packed blob becomes a new constant "<weight>.packed" that replaces
 * the layer's input, with the layout recorded in the layer's attributes. No-op for a backend
 * without prepack. Run dt_pass_extract afterwards to drop the unpacked weights. */
ductile_status dt_pass_prepack(ductile_network *net, const dt_backend *backend);
/* After the tactics (and the precision check) are stored: asks the backend for smaller
 * packings without what no stored tactic reads (backend->prune) and makes each a new constant
 * in place of the layer's input. *changed: some input was replaced (run dt_pass_extract to
 * drop the old constants, then write the engine again). */
ductile_status dt_pass_prune(ductile_network *net, const dt_backend *backend, bool *changed);

/* Times the backend's tactics for every layer that has a choice at each profile's min, opt
 * and max shapes on engine e (built from net, layer for layer) and adds the fastest per point
 * to net's layers as attributes `tactic` (profiles x 3 ids, 0 = the kernel's heuristic) and
 * `tactic_points` (3): backend/tactic.h. *changed: some layer got one, so the engine must be
 * written again. */
struct ductile_engine;
/* progress (may be NULL) is called after each layer examined, per profile. */
ductile_status dt_pass_tactics(const struct ductile_engine *e, ductile_network *net, int threads,
                               ductile_progress_fn progress, void *user, bool *changed);
/* DUCTILE_TACTIC_LOG=1: the tactics pass and the precision check say on stderr what they
 * timed and chose (for developers). */
bool dt_tactic_log(void);
/* The whole-network precision check (precision_check.c): where net's stored tactics include
 * some that the backend's tactic_precise names, *e (written from net) is run at profile 0's
 * opt shapes against an engine with the precise tactics instead; unless every float output
 * agrees within rel L2 5e-3, *e is replaced by the engine that keeps the chosen tactics on the
 * most layers whose outputs then agree (none: the precise one), net's ids changed to match. */
struct dt_engine_target;
ductile_status dt_pass_precision_check(struct ductile_engine **e, ductile_network *net,
                                       const ductile_profile *profiles, int n_profiles,
                                       const struct dt_engine_target *target, int threads);
/* Seconds (20 ms): a min or max point whose layer run, estimated from opt's time scaled by
 * the activations, would take longer is not timed and keeps opt's choice. Tests whose timed
 * runs are slow by design (sanitizers, a loaded machine) raise it; not for concurrent builds. */
extern double dt_tactic_point_s;

/* Mixed precision (builder/precision.c) for the flags (bit per ductile_builder_flag) that the
 * backend computes with (dt_backend.precisions): FP16 / BF16 lower the layers whose kernel has
 * a half variant to float16 / bfloat16 tensors, with Cast layers where a tensor crosses to
 * float32 (network inputs and outputs stay float32) and half copies of their constants; TF32
 * adds attribute `tf32` to float32 Conv / FusedConv / MatMul / Gemm. e: the engine written
 * from net for the backend (net's layers and tensors, in order). *changed: net was edited;
 * run dt_pass_extract afterwards (the converted constants' float32 originals and their
 * folded casts are left unused). */
struct ductile_engine;
ductile_status dt_pass_precision(ductile_network *net, const struct ductile_engine *e, const dt_backend *be,
                                 unsigned flags, bool *changed);

/* Folds each DepthToSpace (attribute layout "NHWC") that alone reads a channels-last
 * FusedConv's output into that FusedConv (attributes depth_to_space, d2s_mode, to: ops/fused.h)
 * where the backend says its kernel writes it (dt_backend.writes_d2s); after
 * dt_pass_precision, before the network is extracted and written (builder/fuse_d2s.c).
 * DUCTILE_FUSE_CONV_D2S=0 turns it off. *fused: how many. */
ductile_status dt_pass_fuse_d2s(ductile_network *net, const dt_backend *be, int *fused);

/* Marks (attribute `bf16` = 1) the layers that the backend computes in bfloat16 inside their
 * kernels with these flags (dt_backend.bf16_in_kernel); before dt_pass_prepack, which packs
 * their weights so. */
ductile_status dt_pass_mark_bf16(ductile_network *net, const dt_backend *be, unsigned flags);

/* Appends attributes to a layer (arena-allocated copy of its attribute array). */
ductile_status dt_layer_add_attrs(ductile_network *net, ductile_layer *L, const dt_attr *add, int n);

#endif
