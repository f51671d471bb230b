/* cli_run — inference and timing (see cli_run.h). */
#include "cli_run.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli_check.h"
#include "cli_data.h"
#include "cli_json.h"
#include "cli_profile.h"
#include "cli_shapes.h"
#include "cli_stats.h"
#include "cli_util.h"

/* Names given on the command line must be inputs: a typo should not silently run on
 * random data or on the opt shape. */
static int check_names(const cli_options *o, const ductile_engine *engine)
{
    int rc = cli_check_engine(o, engine);
    if (rc)
        return rc;
    int32_t profiles = ductile_engine_num_profiles(engine);
    if (o->profile >= profiles)
        return cli_fail("--profile=%d: the engine has %d profile%s (0..%d)", o->profile, profiles,
                        profiles == 1 ? "" : "s", profiles - 1);
    return 0;
}

static const char *load_path(const cli_options *o, const char *name)
{
    for (int i = 0; i < o->num_inputs; i++)
        if (strcmp(o->inputs[i].name, name) == 0)
            return o->inputs[i].path;
    return NULL;
}

/* Byte size of a tensor for its current shape; -1 after a message when it cannot be held. */
static int tensor_bytes(const ductile_engine *engine, const char *name, const ductile_dims *dims,
                        size_t *bytes)
{
    ductile_dtype dtype = ductile_engine_tensor_dtype(engine, name);
    size_t elem = ductile_dtype_size(dtype);
    int64_t count = cli_dims_volume(dims);
    /* A string tensor's buffer holds views (ductile_string), not bytes a file could give. */
    if (elem == 0 || dtype == DUCTILE_STRING)
        return cli_fail("tensor '%s' has dtype %s, which the CLI cannot handle", name,
                        ductile_dtype_name(dtype));
    if (count < 0 || (uint64_t)count > SIZE_MAX / elem)
        return cli_fail("tensor '%s' is too large to hold", name);
    *bytes = (size_t)count * elem;
    return 0;
}

static int set_shapes(const cli_options *o, const ductile_engine *engine, ductile_context *ctx)
{
    int32_t n = ductile_engine_num_io_tensors(engine);
    for (int32_t i = 0; i < n; i++) {
        const char *name = ductile_engine_io_tensor_name(engine, i);
        if (ductile_engine_is_input(engine, name) != 1)
            continue;
        const cli_shape *given = cli_shapes_find(&o->shapes, name);
        ductile_dims dims;
        ductile_status s = DUCTILE_OK;
        if (given)
            dims = given->dims;
        else
            s = ductile_engine_get_profile_shape(engine, o->profile, name, DUCTILE_PROFILE_OPT,
                                                 &dims);
        if (s == DUCTILE_OK)
            s = ductile_context_set_input_shape(ctx, name, &dims);
        if (s != DUCTILE_OK)
            return cli_report(s);
    }
    return 0;
}

/* A device engine's own buffers are device memory: the CLI binds host buffers (host[i] for
 * I/O tensor i, freed by the caller), which the context copies through. */
static int is_device(const ductile_engine *engine);

static int bind_host(const ductile_engine *engine, ductile_context *ctx, const char *name, int32_t i,
                     const ductile_dims *dims, void **host)
{
    if (!is_device(engine))
        return 0;
    size_t bytes = 0;
    if (tensor_bytes(engine, name, dims, &bytes) != 0)
        return CLI_EXIT_FAILURE;
    free(host[i]);
    host[i] = calloc(1, bytes ? bytes : 1);
    if (!host[i])
        return cli_fail("out of memory for tensor '%s'", name);
    ductile_status s = ductile_context_set_tensor_address(ctx, name, host[i]);
    return s == DUCTILE_OK ? 0 : cli_report(s);
}

/* Fills every input buffer and prints the shapes of inputs, then of outputs. */
static int prepare_io(const cli_options *o, const ductile_engine *engine, ductile_context *ctx, void **host)
{
    int32_t n = ductile_engine_num_io_tensors(engine);
    for (int pass = 0; pass < 2; pass++) {
        printf(pass == 0 ? "Input shapes:\n" : "Output shapes:\n");
        for (int32_t i = 0; i < n; i++) {
            const char *name = ductile_engine_io_tensor_name(engine, i);
            if (ductile_engine_is_input(engine, name) != (pass == 0))
                continue;
            ductile_dims dims;
            ductile_status s = ductile_context_get_tensor_shape(ctx, name, &dims);
            /* An output shaped by computed data (NonZero, If, Loop): the context's own buffer
             * holds it after execute. */
            if (s == DUCTILE_ERR_STATE && pass == 1) {
                printf("  %s: known after execute (it depends on computed data)\n", name);
                continue;
            }
            if (s != DUCTILE_OK)
                return cli_report(s);
            char text[160];
            cli_dims_format(&dims, text, sizeof text);
            if (bind_host(engine, ctx, name, i, &dims, host) != 0)
                return CLI_EXIT_FAILURE;
            if (pass == 1) {
                printf("  %s: %s\n", name, text);
                continue;
            }
            size_t bytes = 0;
            void *data = NULL;
            if (tensor_bytes(engine, name, &dims, &bytes) != 0)
                return CLI_EXIT_FAILURE;
            s = ductile_context_get_tensor_address(ctx, name, &data);
            if (s != DUCTILE_OK)
                return cli_report(s);
            if (!data && bytes)
                return cli_fail("input '%s': the context gave no buffer", name);
            const char *path = load_path(o, name);
            ductile_dtype dtype = ductile_engine_tensor_dtype(engine, name);
            int rc = path ? cli_load_input(name, path, text, data, bytes)
                          : cli_fill_random(dtype, name, data, bytes / ductile_dtype_size(dtype));
            if (rc)
                return rc;
            printf("  %s: %s (%s)\n", name, text, path ? path : "random data");
        }
    }
    return 0;
}

static int execute(ductile_context *ctx)
{
    ductile_status s = ductile_context_execute(ctx);
    return s == DUCTILE_OK ? 0 : cli_report(s);
}

static int is_device(const ductile_engine *engine)
{
    const char *dev = ductile_engine_device(engine);
    return dev && strcmp(dev, "cpu") != 0;
}

/* The first two runs at the shapes, timed apart from the others: the first sets the kernels
 * up (library plans, workspace); on a device engine the second records the CUDA graph that
 * the later runs replay (not when graphs are off or a layer runs on the host). */
static int first_runs(const ductile_engine *engine, ductile_context *ctx)
{
    double t0 = cli_now_ms();
    if (execute(ctx))
        return CLI_EXIT_FAILURE;
    double t1 = cli_now_ms();
    if (execute(ctx))
        return CLI_EXIT_FAILURE;
    double t2 = cli_now_ms();
    const char *info = ductile_engine_layer_info(engine);
    int graphs = is_device(engine) && ductile_context_get_cuda_graphs(ctx) > 0 &&
                 !(info && strstr(info, "\"cpu fallback\""));
    printf("First run: %.3f ms (the first execute at these shapes)\n", t1 - t0);
    printf("Second run: %.3f ms%s\n", t2 - t1, graphs ? " (records the CUDA graph)" : "");
    return 0;
}

/* The first two runs, warm-up, then at least o->iterations runs lasting at least
 * o->duration_s in total; prof (may be NULL) collects the timed runs' layers (profiled runs
 * go kernel by kernel, never through a CUDA graph: ductile.h). */
static int time_runs(const cli_options *o, const ductile_engine *engine, ductile_context *ctx, cli_profile *prof)
{
    if (first_runs(engine, ctx))
        return CLI_EXIT_FAILURE;
    if (o->warmup_ms > 0) {
        double start = cli_now_ms(), now = start;
        long runs = 0;
        do {
            if (execute(ctx))
                return CLI_EXIT_FAILURE;
            runs++;
            now = cli_now_ms();
        } while (now - start < o->warmup_ms);
        printf("Warm-up: %ld runs in %.3f ms\n", runs, now - start);
    }
    if (prof) {
        ductile_status s = ductile_context_set_profiler(ctx, cli_profile_report, prof);
        if (s != DUCTILE_OK)
            return cli_report(s);
    }
    size_t cap = 64, n = 0;
    double *ms = malloc(cap * sizeof *ms);
    if (!ms)
        return cli_fail("out of memory");
    double start = cli_now_ms(), end = start;
    while ((int64_t)n < o->iterations || end - start < o->duration_s * 1e3) {
        if (n == cap) {
            double *grown = realloc(ms, 2 * cap * sizeof *ms);
            if (!grown) {
                free(ms);
                return cli_fail("out of memory");
            }
            ms = grown;
            cap *= 2;
        }
        double t0 = cli_now_ms();
        if (execute(ctx)) {
            free(ms);
            return CLI_EXIT_FAILURE;
        }
        end = cli_now_ms();
        ms[n++] = end - t0;
    }
    printf("Timed runs: %zu iterations in %.3f s\n", n, (end - start) * 1e-3);
    cli_stats_print(stdout, ms, n, o->percentiles, o->num_percentiles, end - start);
    free(ms);
    uint64_t bytes = 0;
    ductile_status s = ductile_context_get_memory_size(ctx, &bytes);
    if (s != DUCTILE_OK)
        return cli_report(s);
    printf("%s memory: %.2f MiB (the context's: activations, scratch, I/O buffers, workspace)\n",
           is_device(engine) ? "Device" : "Host", (double)bytes / (1024.0 * 1024.0));
    return 0;
}

int cli_run(const cli_options *o, const ductile_engine *engine)
{
    int rc = check_names(o, engine);
    if (rc)
        return rc;
    ductile_context *ctx = NULL;
    ductile_status s = ductile_context_create(engine, &ctx);
    if (s == DUCTILE_OK && o->threads > 0)
        s = ductile_context_set_threads(ctx, o->threads);
    if (s == DUCTILE_OK)
        s = ductile_context_set_profile(ctx, o->profile);
    if (s == DUCTILE_OK && o->cuda_graphs >= 0)
        s = ductile_context_set_cuda_graphs(ctx, o->cuda_graphs);
    if (s != DUCTILE_OK) {
        ductile_context_free(ctx);
        return cli_report(s);
    }
    printf("=== Inference ===\n");
    printf("Profile: %d\n", o->profile);
    if (o->threads > 0)
        printf("Threads: %d\n", o->threads);
    rc = set_shapes(o, engine, ctx);
    int32_t n_io = ductile_engine_num_io_tensors(engine);
    void **host = calloc((size_t)n_io + 1, sizeof *host);
    if (!host)
        rc = cli_fail("out of memory");
    if (rc == 0)
        rc = prepare_io(o, engine, ctx, host);
    fflush(stdout);
    cli_profile *prof = NULL;
    if (rc == 0 && (o->dump_profile || o->export_profile) && !(prof = cli_profile_create()))
        rc = cli_fail("out of memory");
    if (rc == 0)
        rc = time_runs(o, engine, ctx, prof);
    if (rc == 0 && prof) {
        ductile_context_set_profiler(ctx, NULL, NULL);
        if (o->dump_profile)
            cli_profile_print(prof, stdout);
        if (o->export_profile) {
            rc = cli_profile_export(prof, o->export_profile);
            if (rc == 0)
                printf("Profile written to %s\n", o->export_profile);
        }
    }
    cli_profile_free(prof);
    if (rc == 0 && o->export_output) {
        rc = cli_json_export(o->export_output, engine, ctx);
        if (rc == 0)
            printf("Outputs written to %s\n", o->export_output);
    }
    ductile_context_free(ctx);
    for (int32_t i = 0; host && i < n_io; i++)
        free(host[i]);
    free(host);
    return rc;
}
