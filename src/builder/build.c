/* ductile_builder_build: network + config -> engine.
 *
 * 1. copy the needed part of the network (the user's network is only read),
 * 2. fold layers whose inputs are all constants, fuse conv chains, lay out channels-last
 *    regions where the backend wants them (layout.c), pack weights for the backend
 *    (optimize.h), and copy again without what that left unused,
 * 3. check the profiles against the inputs,
 * 4. write the engine bytes (for the config's device: its TARGET section) and load them, so a
 *    built engine and a loaded one are the same,
 *    settling on the way every computed tensor's dtype (a declared one that differs is
 *    refused: builder/dtypes.c); with --fp16/--bf16/--tf32 on a backend that has them, lower
 *    layers to half and write again (builder/precision.c); a backend that computes bf16
 *    inside float32 layers (the CPU) has them marked `bf16` before packing, in step 2,
 * 5. refuse ranged dims the model fixes, infer shapes at the corners of every profile and
 *    move every overridden dim away from the model's size (profile_check.c, dim_ties.c), and plan the activation memory there: a
 *    profile that needs more than the workspace limit (default: the backend's memory) is
 *    refused here rather than at its first run,
 * 6. time the backend's tactics at each profile's min, opt and max shapes and, when some
 *    layer has a choice, write and load the engine again with the choices; where the backend
 *    says some chosen tactics' error only shows in the whole network, run the engine with and
 *    without them and keep them only on layers whose outputs then agree (precision_check.c); and where
 *    packed weights carry parts no stored tactic reads, write and load it without them,
 * 7. on a device, when step 2 made layers channels last at the backend's wish, build the
 *    channels-first engine too (steps 2-6 again, so the progress callback sees both), time
 *    both at profile 0's opt shapes and keep the faster (layout_choice.c). */
#include "backend/backend.h"
#include "builder/config.h"
#include "core/alloc.h"
#include "builder/engine_write.h"
#include "builder/optimize.h"
#include "builder/passes.h"
#include "builder/profile_check.h"
#include "core/status.h"
#include "runtime/engine_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ductile_status dt_check_network(const ductile_network *net)
{
    if (net->n_outputs == 0)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "the network has no outputs: mark at least one tensor as an output");
    for (int i = 0; i < net->n_outputs; i++) {
        const ductile_tensor *t = net->outputs[i];
        if (t->is_input)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "output '%s' is also a network input; ductile needs outputs computed by a layer", t->name);
    }
    return DUCTILE_OK;
}

/* DUCTILE_LAYOUT=nhwc: channels-last regions around every 2-D conv, whatever the backend
 * prefers (how tests run the layout pass on the CPU); =nchw: none (the layout as ONNX has it,
 * for comparisons); unset or anything else: the backend's preference. */
static dt_layout_mode dt_layout_mode_env(void)
{
    const char *v = getenv("DUCTILE_LAYOUT");
    if (v && !strcmp(v, "nhwc")) return DT_LAYOUT_ALL;
    if (v && !strcmp(v, "nchw")) return DT_LAYOUT_NONE;
    return DT_LAYOUT_BACKEND;
}

static ductile_status dt_build_once(ductile_builder *b, const ductile_network *net, const ductile_config *cfg,
                                    const dt_backend *backend, const dt_engine_target *target, dt_layout_mode mode,
                                    ductile_engine **out, int *nhwc);

ductile_status ductile_builder_build(ductile_builder *b, const ductile_network *net, const ductile_config *cfg,
                                     ductile_engine **out)
{
    if (!out) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "build: out is NULL");
    *out = NULL;
    if (!b || !net || !cfg) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "build: builder, network or config is NULL");
    DT_TRY(dt_check_network(net));
    /* The network's constants may live in mappings of the model file and its external data
     * (zero-copy: weights are not held twice). A file truncated since parsing would make the
     * reads below SIGBUS, and one rewritten would mix new bytes into what was parsed, so the
     * files are checked (size, modification time) before anything is read, and again after,
     * for a change during the build. The engine gets its own copy of every constant, so once
     * built nothing depends on the files. Copying at parse instead would close the remaining
     * window (a truncation during the build itself) at the cost of holding every weight twice
     * until the network is freed; the header documents that the files must not change while
     * a network parsed from them is alive. */
    DT_TRY(dt_network_check_files(net));
    /* The backend first: a missing device fails the build before any work. */
    const dt_backend *backend;
    DT_TRY(dt_backend_require(cfg->device ? cfg->device : "cpu", "build:", &backend));
    dt_engine_target target;
    memset(&target, 0, sizeof target);
    snprintf(target.backend, sizeof target.backend, "%s", backend->name);
    if (backend->device) {
        dt_device_info dev;
        DT_TRY(backend->device(&dev));
        snprintf(target.device, sizeof target.device, "%s", dev.name);
        target.cc_major = (uint32_t)dev.cc_major;
        target.cc_minor = (uint32_t)dev.cc_minor;
    }
    dt_layout_mode mode = dt_layout_mode_env();
    int nhwc = 0;
    ductile_engine *e = NULL;
    DT_TRY(dt_build_once(b, net, cfg, backend, &target, mode, &e, &nhwc));
    /* The layout is the backend's wish, and the whole network decides whether it pays (the
     * kernels on either side, the transposes at the borders): a device build times the
     * channels-last engine against the channels-first one at profile 0's opt shapes and keeps
     * the faster (channels last only when at least 2% faster: no flip on noise). Engines whose
     * inputs include shape tensors are not timed (their values are the caller's). */
    if (nhwc && mode == DT_LAYOUT_BACKEND && !backend->host_memory && !e->plan.n_shape_inputs) {
        ductile_engine *alt = NULL;
        int none = 0;
        double t_nhwc = 0, t_nchw = 0;
        if (dt_build_once(b, net, cfg, backend, &target, DT_LAYOUT_NONE, &alt, &none) == DUCTILE_OK &&
            dt_engine_time(e, &t_nhwc) == DUCTILE_OK && dt_engine_time(alt, &t_nchw) == DUCTILE_OK &&
            !(t_nhwc < 0.98 * t_nchw)) {
            ductile_engine *t = e;
            e = alt;
            alt = t;
        }
        ductile_engine_free(alt);
    }
    *out = e;
    return DUCTILE_OK;
}

/* Steps 2-6 of the pipeline with the layout pass in `mode`; *nhwc: the layers it made
 * channels last. */
static ductile_status dt_build_once(ductile_builder *b, const ductile_network *net, const ductile_config *cfg,
                                    const dt_backend *backend, const dt_engine_target *tp, dt_layout_mode mode,
                                    ductile_engine **out, int *nhwc)
{
    dt_engine_target target = *tp;
    *out = NULL;
    ductile_network *w1 = NULL, *w2 = NULL;
    ductile_profile *profiles = NULL;
    int n_profiles = 0;
    ductile_engine *e = NULL;
    ductile_status s = dt_pass_extract(net, &w1);
    if (!s) s = dt_pass_fold_constants(w1);
    if (!s) s = dt_pass_cse(w1, NULL);
    int commuted = 0;
    ductile_network *w0 = NULL; /* w1 before the extract below: w1 then shares its data */
    if (!s) s = dt_pass_commute_resize(w1, &commuted);
    /* The shape layers that computed a moved Resize's old sizes are dead now and still read
     * its input; fusion counts readers (seg_lraspp's SE Mul folds into the conv without them). */
    if (!s && commuted) {
        w0 = w1;
        w1 = NULL;
        s = dt_pass_extract(w0, &w1);
    }
    if (!s) s = dt_pass_fuse_for(w1, backend);
    if (!s) s = dt_pass_layout(w1, backend, cfg->flags, mode, nhwc);
    if (!s) s = dt_pass_fuse_pool(w1, backend);
    if (!s) s = dt_pass_mark_bf16(w1, backend, cfg->flags);
    if (!s) s = dt_pass_prepack(w1, backend);
    if (!s) s = dt_pass_extract(w1, &w2);
    if (!s) s = dt_check_network(w2);
    if (!s) s = dt_profiles_normalize(w2, cfg, &profiles, &n_profiles);
    if (!s) s = dt_pass_dtypes(w2, profiles, n_profiles, &target, &e);
    /* Precision needs settled dtypes and the backend's placement; the edited network is
     * written and loaded again. */
    ductile_network *w3 = NULL;
    bool lowered = false;
    if (!s) s = dt_pass_precision(w2, e, backend, cfg->flags, &lowered);
    if (!s && lowered) {
        ductile_engine_free(e);
        e = NULL;
        int folded = 0;
        s = dt_pass_fuse_d2s(w2, backend, &folded);
        if (!s) s = dt_pass_extract(w2, &w3);
        if (!s) {
            ductile_network *t = w2; /* w3 shares w2's names and data: w2 lives to the end */
            w2 = w3;
            w3 = t;
            s = dt_engine_rewrite(w2, profiles, n_profiles, &target, &e);
        }
    }
    dt_input_decl *decl = NULL;
    if (!s) s = dt_input_decls(w2, e, &decl);
    if (!s) s = dt_profiles_verify(e, decl);
    dt_free(decl);
    if (!s) s = dt_profiles_check_memory(e, cfg->workspace);
    /* Tactics are timed on the engine itself; the choices go into w2's layers and the engine
     * is written and loaded once more, so the stored engine carries them. */
    bool changed = false;
    int threads = cfg->threads > 0 ? cfg->threads : b->threads > 0 ? b->threads : 1;
    if (!s) s = dt_pass_tactics(e, w2, threads, cfg->progress, cfg->progress_user, &changed);
    if (!s && changed) {
        ductile_engine_free(e);
        s = dt_engine_rewrite(w2, profiles, n_profiles, &target, &e);
    }
    /* Tactics whose error only the whole network shows are kept where its outputs agree. */
    if (!s && changed) s = dt_pass_precision_check(&e, w2, profiles, n_profiles, &target, threads);
    /* Packed weights that no stored tactic reads are dropped (dt_backend.prune): the engine is
     * written and loaded once more, without the old constants. */
    bool pruned = false;
    ductile_network *w4 = NULL;
    if (!s && changed) s = dt_pass_prune(w2, backend, &pruned);
    if (!s && pruned) s = dt_pass_extract(w2, &w4); /* shares w2's data: w2 lives to the end */
    if (!s && pruned) {
        ductile_engine_free(e);
        s = dt_engine_rewrite(w4, profiles, n_profiles, &target, &e);
    }
    for (int i = 0; i < n_profiles; i++) dt_profile_clear(&profiles[i]);
    dt_free(profiles);
    dt_network_delete(w4);
    dt_network_delete(w2);
    dt_network_delete(w3);
    dt_network_delete(w1);
    dt_network_delete(w0);
    if (!s) s = dt_network_check_files(net);
    if (s) {
        ductile_engine_free(e);
        return s;
    }
    *out = e;
    return DUCTILE_OK;
}
