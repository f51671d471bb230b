/* cli_engine — the engine of a run: built from --onnx with the profiles of the command line,
 * or loaded from --loadEngine; saved with --saveEngine; described on stdout. */
#ifndef CLI_ENGINE_H
#define CLI_ENGINE_H

#include "cli_args.h"
#include "ductile.h"

/* Builds or loads the engine as o says, printing what was parsed and built, and saves it when
 * asked. *out is the engine (free with ductile_engine_free) or NULL on failure.
 * Returns a CLI exit code. */
int cli_engine_obtain(const cli_options *o, ductile_engine **out);

/* Prints the engine's inputs with dtype and each profile's min/opt/max, and its outputs. */
void cli_engine_describe(const ductile_engine *engine);

#endif
