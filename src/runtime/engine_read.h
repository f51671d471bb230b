/* The engine reader: the bytes of format/format.h -> a network and its profiles. */
#ifndef DT_ENGINE_READ_H
#define DT_ENGINE_READ_H

#include "ductile.h"
#include "format/format.h"
#include "format/profile.h"
#include "graph/network.h"

#include <stddef.h>

/* Parses engine bytes into a new network and profiles.
 *   1. data is 64-byte aligned (DUCTILE_ERR_INVALID_ARGUMENT otherwise).
 *   2. The network's constants point INTO data (zero copy): the caller keeps data alive and
 *      unchanged as long as the network (e.g. hands it over with dt_network_keep).
 *   3. *profiles is a dt_malloc'd array of *n_profiles profiles: dt_profile_clear each, then
 *      free the array (NULL when there are none).
 *   4. Any bytes are safe to pass: a file that is not an engine, of another version,
 *      truncated or corrupted is refused with DUCTILE_ERR_FORMAT and a message naming the
 *      section and byte offset at fault. On failure *net is NULL, *profiles NULL and
 *      *n_profiles 0. */
ductile_status dt_engine_read(const void *data, size_t size, ductile_network **net,
                              ductile_profile **profiles, int *n_profiles);

/* Flags of dt_engine_read_ex. */
enum {
    /* Skips the checksum so tests can reach the parser's own validation with mutated bytes. */
    DT_ENGINE_READ_NO_CHECKSUM = 1
};
ductile_status dt_engine_read_ex(const void *data, size_t size, unsigned flags,
                                 ductile_network **net, ductile_profile **profiles,
                                 int *n_profiles);
/* dt_engine_read_ex that also returns the TARGET section (target may be NULL). */
ductile_status dt_engine_read_target(const void *data, size_t size, unsigned flags,
                                     ductile_network **net, ductile_profile **profiles,
                                     int *n_profiles, dt_engine_target *target);

#endif
