/* The engine writer: network + profiles -> the bytes of format/format.h. */
#ifndef DT_ENGINE_WRITE_H
#define DT_ENGINE_WRITE_H

#include "ductile.h"
#include "format/format.h"
#include "format/profile.h"
#include "graph/network.h"

#include <stddef.h>

/* Serializes an optimized network (layers already in execution order) and its profiles.
 * *out is allocated with dt_aligned_alloc(64) and owned by the caller (dt_free), so it can be
 * read back in place. Writing the same network twice gives identical bytes. A network that
 * cannot be stored (a NULL name, a tensor of another network, data of the wrong size, rank
 * above 8) is refused with DUCTILE_ERR_INVALID_ARGUMENT naming the tensor or layer. */
ductile_status dt_engine_write(const ductile_network *net, const ductile_profile *profiles,
                               int n_profiles, void **out, size_t *size);
/* The same for a given target (dt_engine_write: the CPU backend). */
ductile_status dt_engine_write_target(const ductile_network *net, const ductile_profile *profiles,
                                      int n_profiles, const dt_engine_target *target, void **out,
                                      size_t *size);
/* dt_engine_write_target, then the bytes loaded as *out (which owns them), so a built engine
 * is what a saved and loaded one is. */
struct ductile_engine;
ductile_status dt_engine_rewrite(const ductile_network *net, const ductile_profile *profiles, int n_profiles,
                                 const dt_engine_target *target, struct ductile_engine **out);

#endif
