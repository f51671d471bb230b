/* Build-time validation of optimization profiles. */
#ifndef DT_PROFILE_CHECK_H
#define DT_PROFILE_CHECK_H

#include "builder/config.h"
#include "graph/network.h"
#include "runtime/engine_impl.h"

/* Copies the config's profiles into *out (n = max(1, count)), checked against the network:
 * names and ranks match inputs, every dynamic input covered, shared symbols agree; inputs
 * the file declares fixed and the profile omits get their declared shape. */
ductile_status dt_profiles_normalize(const ductile_network *net, const ductile_config *cfg,
                                     ductile_profile **out, int *n_out);

/* What the model declares for each dim of each network input, before any override
 * (ductile_network_set_input_dims): the size, or -1 where the model leaves the dim dynamic.
 * One per input of the engine, in order. */
typedef struct dt_input_decl {
    int64_t dims[DUCTILE_MAX_DIMS];
} dt_input_decl;

/* The declarations of e's inputs, read from the network it was built from (*out dt_malloc'd). */
ductile_status dt_input_decls(const ductile_network *net, const ductile_engine *e, dt_input_decl **out);

/* Refuses a profile that ranges a dim the model fixes (dim_ties.c); infers shapes at the
 * corners of every profile, and moves every overridden dim away from the model's size: a
 * failure names the input dimension and range that break the model and the node and
 * constant at fault. */
ductile_status dt_profiles_verify(const ductile_engine *e, const dt_input_decl *decl);

/* Shapes at one point (per input, its rank's dims) into *st, which the caller frees with
 * dt_shape_state_free whatever the result. */
ductile_status dt_profile_point(const ductile_engine *e, const ductile_profile *prof,
                                int64_t (*point)[DUCTILE_MAX_DIMS], dt_shape_state *st);

/* Plans the activation memory at min, opt and max of every profile and refuses a profile
 * that needs more than `workspace` bytes (0: the backend's memory size), naming the bytes,
 * the corner and the limit. Engines whose shapes follow from run-time data are skipped. */
ductile_status dt_profiles_check_memory(const ductile_engine *e, uint64_t workspace);

#endif
