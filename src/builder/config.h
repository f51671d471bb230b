/* Builder config: the options and profiles an engine is built with. */
#ifndef DT_CONFIG_H
#define DT_CONFIG_H

#include "ductile.h"
#include "format/profile.h"

struct ductile_builder {
    int threads;        /* threads used to time and fold at build time */
};

struct ductile_config {
    ductile_profile *profiles;   /* dt_malloc'd array of n_profiles */
    int n_profiles, cap_profiles;
    uint64_t workspace;          /* 0: unlimited */
    unsigned flags;              /* bit per ductile_builder_flag */
    ductile_progress_fn progress; /* NULL: silent */
    void *progress_user;
    const char *device;          /* backend name (static string); NULL = "cpu" */
    int threads;                 /* CPU tactics timed on this many threads; 0: the builder's */
};

#endif
