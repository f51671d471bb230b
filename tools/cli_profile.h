/* cli_profile — --dumpProfile and --exportProfile: per-layer times of the timed runs, as
 * trtexec reports them, collected through ductile_context_set_profiler. */
#ifndef CLI_PROFILE_H
#define CLI_PROFILE_H

#include <stdio.h>

#include "ductile.h"

typedef struct cli_profile cli_profile;

/* A collector for one context; NULL when out of memory. */
cli_profile *cli_profile_create(void);
void cli_profile_free(cli_profile *p);
/* The ductile_profiler_fn to set on the context, with the collector as its user pointer. */
void cli_profile_report(void *user, const ductile_layer_timing *t);

/* The table: one row per layer in execution order (as trtexec prints it) with total and
 * average ms, share of the total and tactic, a Total row, then the totals per op type,
 * largest first. */
void cli_profile_print(const cli_profile *p, FILE *f);
/* trtexec's --exportProfile JSON: [ {"count": N}, {"name", "timeMs", "averageMs",
 * "percentage", "opType", "tactic", "flops"}, ... ] ("flops" per run). 0, or
 * CLI_EXIT_FAILURE after a message naming the file. */
int cli_profile_export(const cli_profile *p, const char *path);

#endif
