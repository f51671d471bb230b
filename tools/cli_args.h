/*
 * cli_args — the command line of `ductile`, with trtexec's flag names and meanings.
 * Flags are --name=value or --name (booleans); --help lists them.
 */
#ifndef CLI_ARGS_H
#define CLI_ARGS_H

#include <stdint.h>
#include <stdio.h>
#include "cli_shapes.h"

#define CLI_MAX_PERCENTILES 16

/* One --loadInputs item: raw little-endian element data for an input. */
typedef struct cli_input_file {
    char *name;
    char *path;
} cli_input_file;

/* One optimization profile as given by a --minShapes/--optShapes/--maxShapes triple. */
typedef struct cli_profile_spec {
    cli_shape_list min, opt, max;
} cli_profile_spec;

typedef struct cli_options {
    const char *onnx;            /* strings point into argv */
    const char *load_engine;
    const char *save_engine;
    const char *export_output;
    const char *export_profile;  /* --exportProfile */

    cli_profile_spec *profiles;  /* one per triple, in order */
    int num_profiles;
    int num_min, num_opt, num_max; /* how many of each flag were seen */

    cli_shape_list dynamic_dims; /* --dynamicDims: input dims overridden before the build */
    cli_shape_list shapes;       /* --shapes */
    int32_t profile;             /* --profile */

    int64_t iterations;
    double warmup_ms;
    double duration_s;
    double percentiles[CLI_MAX_PERCENTILES];
    int num_percentiles;

    int32_t threads;             /* 0: the library's default */
    int has_workspace;
    uint64_t workspace_bytes;

    cli_input_file *inputs;      /* --loadInputs */
    int num_inputs;

    int fp16, bf16, tf32, dump_layer_info, dump_profile, verbose, skip_inference, help;
    const char *device;          /* --device (points into argv); NULL: cpu */
    int32_t cuda_graphs;         /* --cudaGraphs / --useCudaGraph; -1: the library's default */
} cli_options;

/* Parses argv into *o (set to defaults first). Returns 0, or 2 after printing the reason on
 * stderr ("error: unknown flag '--foo'", "error: invalid value for --iterations: 'x' ...").
 * Always call cli_args_free afterwards, also on failure. */
int cli_args_parse(int argc, char **argv, cli_options *o);
void cli_args_free(cli_options *o);

void cli_args_usage(FILE *f);

#endif
