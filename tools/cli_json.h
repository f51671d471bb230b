/* cli_json — --exportOutput: the outputs of a run as trtexec writes them:
 *   [ { "name" : "output", "dimensions" : "1x1x672x672", "values" : [ ... ] } ]
 * Floats are printed with %.9g (float32 round-trips; float64 with %.17g); NaN and infinities
 * as NaN, Infinity, -Infinity (what Python's json reads); integers and bools as integers. */
#ifndef CLI_JSON_H
#define CLI_JSON_H

#include <stdio.h>

#include "ductile.h"

/* Writes s as a JSON string literal (quotes, backslashes and control characters escaped). */
void cli_json_string(FILE *f, const char *s);

/* Writes every output of the engine, from the context's buffers after an execute.
 * Returns 0, or CLI_EXIT_FAILURE after a message naming the file or tensor. */
int cli_json_export(const char *path, const ductile_engine *engine, ductile_context *context);

#endif
