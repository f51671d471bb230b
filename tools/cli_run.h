/* cli_run — one inference session on an engine: shapes, input data, warm-up, timed runs,
 * statistics and --exportOutput. */
#ifndef CLI_RUN_H
#define CLI_RUN_H

#include "cli_args.h"
#include "ductile.h"

/* Runs the engine as o says and prints shapes and latency. Returns a CLI exit code. */
int cli_run(const cli_options *o, const ductile_engine *engine);

#endif
