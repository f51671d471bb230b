/* Optimization profiles: for each dynamic input, a min, opt and max shape. */
#ifndef DT_PROFILE_H
#define DT_PROFILE_H

#include "ductile.h"
#include <stdint.h>

typedef struct dt_profile_input {
    char *name;                  /* dt_malloc'd */
    int rank;
    int64_t min[DUCTILE_MAX_DIMS], opt[DUCTILE_MAX_DIMS], max[DUCTILE_MAX_DIMS];
} dt_profile_input;

struct ductile_profile {
    int n, cap;
    dt_profile_input *inputs;    /* dt_malloc'd array of n */
};

/* Sets or replaces the range of one input (name copied). */
ductile_status dt_profile_set(ductile_profile *p, const char *name, int rank, const int64_t *min,
                              const int64_t *opt, const int64_t *max);
/* The entry for a name, or NULL. */
const dt_profile_input *dt_profile_get(const ductile_profile *p, const char *name);
/* Deep copy into *dst (which must be empty / zeroed). */
ductile_status dt_profile_copy(ductile_profile *dst, const ductile_profile *src);
/* Frees the entries (not p itself); leaves p empty. */
void dt_profile_clear(ductile_profile *p);

#endif
