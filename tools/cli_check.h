/*
 * cli_check — the command line checked against the model before anything is built or run, so
 * that a mistake is reported in the terms of the flags: a name in a shape flag that is not an
 * input (the inputs listed), a dynamic input no shape flag covers (the flags to add, spelled
 * out). Each check prints one "error: ..." line on stderr and returns CLI_EXIT_FAILURE, or 0.
 */
#ifndef CLI_CHECK_H
#define CLI_CHECK_H

#include "cli_args.h"
#include "ductile.h"

/* Before a build: names in --shapes and the profile flags, and every dynamic input covered. */
int cli_check_network(const cli_options *o, ductile_network *network);

/* Before a run: names in --shapes and --loadInputs are inputs of the engine. */
int cli_check_engine(const cli_options *o, const ductile_engine *engine);

#endif
