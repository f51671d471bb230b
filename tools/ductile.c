/*
 * ductile — the command-line tool: trtexec's workflow on ductile's engine.
 * Parse flags, build or load the engine (and save it), then time inference on it.
 * Exit codes: 0 success, 1 a failure of the library or of a file, 2 a bad command line.
 */
#include <stdio.h>

#include "cli_args.h"
#include "cli_engine.h"
#include "cli_run.h"
#include "cli_util.h"

int main(int argc, char **argv)
{
    cli_options o;
    int rc = cli_args_parse(argc, argv, &o);
    if (rc == 0 && o.help) {
        cli_args_usage(stdout);
    } else if (rc == 0) {
        printf("ductile %s\n", ductile_version());
        ductile_engine *engine = NULL;
        rc = cli_engine_obtain(&o, &engine);
        if (rc == 0) {
            cli_engine_describe(engine);
            if (o.dump_layer_info) {
                const char *info = ductile_engine_layer_info(engine);
                printf("Layer information:\n%s\n", info ? info : "(none)");
            }
            if (!o.skip_inference)
                rc = cli_run(&o, engine);
            else
                printf("Inference skipped (--skipInference)\n");
        }
        ductile_engine_free(engine);
    } else if (argc == 1) {
        cli_args_usage(stderr);
    }
    cli_args_free(&o);
    fflush(stdout);
    return rc;
}
