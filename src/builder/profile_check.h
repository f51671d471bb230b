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

/* Infers shapes at the corners of every profile; a failure names the input dimension and
 * range that break the model and the node and constant at fault. */
ductile_status dt_profiles_verify(const ductile_engine *e);

/* Plans the activation memory at min, opt and max of every profile and refuses a profile
 * that needs more than `workspace` bytes (0: the backend's memory size), naming the bytes,
 * the corner and the limit. Engines whose shapes follow from run-time data are skipped. */
ductile_status dt_profiles_check_memory(const ductile_engine *e, uint64_t workspace);

#endif
