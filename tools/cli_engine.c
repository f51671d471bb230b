/* cli_engine — building, loading, saving and describing the engine (see cli_engine.h). */
#include "cli_engine.h"

#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_check.h"
#include "cli_shapes.h"
#include "cli_util.h"

/* "[batch, 1, height, width]": symbolic names where the model gives them, ? for unnamed. */
static void print_declared(ductile_tensor *t)
{
    ductile_dims dims = ductile_tensor_dims(t);
    printf("  %s: %s ", ductile_tensor_name(t), ductile_dtype_name(ductile_tensor_dtype(t)));
    if (dims.nb_dims < 0) {
        printf("[rank unknown]\n");
        return;
    }
    putchar('[');
    for (int32_t i = 0; i < dims.nb_dims; i++) {
        const char *sym = ductile_tensor_dim_name(t, i);
        if (i)
            printf(", ");
        if (dims.d[i] >= 0)
            printf("%lld", (long long)dims.d[i]);
        else
            printf("%s", sym ? sym : "?");
    }
    printf("]\n");
}

static void describe_network(ductile_network *network, int verbose)
{
    printf("Inputs:\n");
    for (int32_t i = 0; i < ductile_network_num_inputs(network); i++)
        print_declared(ductile_network_get_input(network, i));
    printf("Outputs:\n");
    for (int32_t i = 0; i < ductile_network_num_outputs(network); i++)
        print_declared(ductile_network_get_output(network, i));
    int32_t layers = ductile_network_num_layers(network);
    printf("Layers: %d\n", layers);
    for (int32_t i = 0; verbose && i < layers; i++) {
        ductile_layer *l = ductile_network_get_layer(network, i);
        printf("  [%d] %s (%s)\n", i, ductile_layer_name(l), ductile_layer_op_type(l));
    }
}

/* --dynamicDims: each item overrides the declared dims of one network input. */
static int override_dims(const cli_options *o, ductile_network *network)
{
    for (int i = 0; i < o->dynamic_dims.count; i++) {
        const cli_shape *item = &o->dynamic_dims.items[i];
        ductile_tensor *t = ductile_network_find_tensor(network, item->name);
        if (!t || !ductile_tensor_is_input(t)) {
            char names[512];
            size_t used = 0;
            names[0] = 0;
            for (int32_t k = 0; k < ductile_network_num_inputs(network) && used < sizeof names; k++)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s'%s'", k ? ", " : "",
                                         ductile_tensor_name(ductile_network_get_input(network, k)));
            return cli_fail("--dynamicDims names '%s', which is not an input of the network (inputs: %s)",
                            item->name, names);
        }
        ductile_status s = ductile_network_set_input_dims(network, t, &item->dims);
        if (s != DUCTILE_OK)
            return cli_report(s);
    }
    return CLI_EXIT_OK;
}

/* Profiles from the command line: one per triple; with no triple but --shapes, one profile
 * of min = opt = max = --shapes (trtexec does the same); otherwise none, which the library
 * accepts for a network without dynamic inputs. */
static ductile_status add_profiles(const cli_options *o, ductile_builder *builder,
                                   ductile_config *config)
{
    int synthesized = o->num_profiles == 0 && o->shapes.count > 0;
    int count = synthesized ? 1 : o->num_profiles;
    for (int p = 0; p < count; p++) {
        const cli_shape_list *min = synthesized ? &o->shapes : &o->profiles[p].min;
        const cli_shape_list *opt = synthesized ? &o->shapes : &o->profiles[p].opt;
        const cli_shape_list *max = synthesized ? &o->shapes : &o->profiles[p].max;
        ductile_profile *profile = NULL;
        ductile_status s = ductile_profile_create(builder, &profile);
        for (int i = 0; s == DUCTILE_OK && i < min->count; i++) {
            const char *name = min->items[i].name;
            s = ductile_profile_set_shape(profile, name, &min->items[i].dims,
                                          &cli_shapes_find(opt, name)->dims,
                                          &cli_shapes_find(max, name)->dims);
        }
        if (s == DUCTILE_OK)
            s = ductile_config_add_profile(config, profile, NULL);
        ductile_profile_free(profile);
        if (s != DUCTILE_OK)
            return s;
    }
    if (synthesized)
        printf("Profile 0 made of --shapes (min = opt = max)\n");
    return DUCTILE_OK;
}

/* Tactic timing is most of a long build: on a terminal, one line rewritten in place says how far
 * it is; piped or redirected, stderr stays clean for logs and tests. */
static void show_progress(void *user, int32_t profile, int32_t n_profiles, int32_t done, int32_t total)
{
    int *shown = user;
    /* Counts padded to the width of their totals: each line overwrites the last one fully. */
    int wp = snprintf(NULL, 0, "%d", (int)n_profiles), wl = snprintf(NULL, 0, "%d", (int)total);
    fprintf(stderr, "\rTiming tactics: profile %*d/%d, layer %*d/%d", wp, (int)profile + 1,
            (int)n_profiles, wl, (int)done, (int)total);
    fflush(stderr);
    *shown = 1;
}

static int build(const cli_options *o, ductile_engine **out)
{
    ductile_builder *builder = NULL;
    ductile_network *network = NULL;
    ductile_config *config = NULL;
    int rc = CLI_EXIT_OK, shown = 0;

    double t0 = cli_now_ms();
    ductile_status s = ductile_builder_create(&builder);
    if (s == DUCTILE_OK)
        s = ductile_network_create(builder, &network);
    if (s == DUCTILE_OK)
        s = ductile_onnx_parse_file(network, o->onnx);
    if (s != DUCTILE_OK) {
        rc = cli_report(s);
        goto done;
    }
    printf("=== Model ===\n");
    printf("Parsed %s in %.3f ms\n", o->onnx, cli_now_ms() - t0);
    rc = override_dims(o, network);
    if (rc != CLI_EXIT_OK)
        goto done;
    describe_network(network, o->verbose);
    rc = cli_check_network(o, network);
    if (rc)
        goto done;
    bool on_cpu = !o->device || strcmp(o->device, "cpu") == 0;
    if (on_cpu && o->tf32)
        fprintf(stderr, "warning: --tf32 has no effect: the CPU backend computes in float32\n");

    s = ductile_config_create(builder, &config);
    /* Accepted for trtexec's command lines, but a user timing --fp16 on the CPU should know it
     * is float32 (TensorRT too builds without half where the platform has no fast half); the
     * CUDA backend has half kernels and TF32. */
    bool bf16 = s == DUCTILE_OK && on_cpu && o->bf16;
    bool has_bf16 = bf16 && ductile_config_has_precision(config, DUCTILE_FLAG_BF16);
    /* --fp16 on the CPU: float16 products where the CPU has AVX512-FP16; with --bf16 too, the
     * layers bfloat16 takes are the same, so --bf16 applies alone. */
    bool has_fp16 = s == DUCTILE_OK && on_cpu && o->fp16 && ductile_config_has_precision(config, DUCTILE_FLAG_FP16);
    if (s == DUCTILE_OK && on_cpu && o->fp16 && !has_fp16)
        fprintf(stderr, "warning: --fp16 on the CPU needs AVX512-FP16, which this CPU lacks; %s\n",
                has_bf16 ? "--bf16 applies alone" : "building float32");
    else if (has_fp16 && has_bf16)
        fprintf(stderr, "warning: --fp16 on the CPU with --bf16: --bf16 applies alone\n");
    if (bf16 && !has_bf16)
        fprintf(stderr, "warning: --bf16 on the CPU needs AVX512-BF16, which this CPU lacks; building float32\n");
    if (s == DUCTILE_OK && o->has_workspace)
        s = ductile_config_set_workspace(config, o->workspace_bytes);
    if (s == DUCTILE_OK && o->device)
        s = ductile_config_set_device(config, o->device);
    if (s == DUCTILE_OK && o->threads > 0)
        s = ductile_config_set_threads(config, o->threads);
    if (s == DUCTILE_OK && o->fp16)
        s = ductile_config_set_flag(config, DUCTILE_FLAG_FP16, 1);
    if (s == DUCTILE_OK && o->bf16)
        s = ductile_config_set_flag(config, DUCTILE_FLAG_BF16, 1);
    if (s == DUCTILE_OK && o->tf32)
        s = ductile_config_set_flag(config, DUCTILE_FLAG_TF32, 1);
    if (s == DUCTILE_OK && isatty(fileno(stderr)))
        s = ductile_config_set_progress(config, show_progress, &shown);
    if (s == DUCTILE_OK)
        s = add_profiles(o, builder, config);
    if (s != DUCTILE_OK) {
        rc = cli_report(s);
        goto done;
    }

    printf("=== Build ===\n");
    fflush(stdout); /* a long build should not hide what came before */
    double t1 = cli_now_ms();
    s = ductile_builder_build(builder, network, config, out);
    if (shown)
        fputc('\n', stderr); /* end the progress line before what follows */
    if (s != DUCTILE_OK) {
        rc = cli_report(s);
        goto done;
    }
    printf("Build time: %.3f ms\n", cli_now_ms() - t1);
done:
    ductile_config_free(config);
    ductile_network_free(network);
    ductile_builder_free(builder);
    return rc;
}

/* An ONNX file opens with ModelProto's field 1 (ir_version, a varint): the byte 0x08. Read
 * only after the loader refused the file, and only from a regular file (never block on a FIFO). */
static int starts_like_onnx(const char *path)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    unsigned char first = 0;
    int yes = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read(fd, &first, 1) == 1 &&
              first == 0x08;
    close(fd);
    return yes;
}

int cli_engine_obtain(const cli_options *o, ductile_engine **out)
{
    *out = NULL;
    if (o->load_engine) {
        if (o->num_profiles || o->has_workspace || o->fp16 || o->bf16 || o->tf32 || o->dynamic_dims.count ||
            o->device)
            fprintf(stderr, "warning: build flags are ignored with --loadEngine\n");
        double t0 = cli_now_ms();
        ductile_status s = ductile_engine_load_file(o->load_engine, out);
        if (s == DUCTILE_ERR_FORMAT && starts_like_onnx(o->load_engine)) {
            fprintf(stderr, "error: %s: %s (the file starts as an ONNX model does: build it with "
                            "--onnx=%s)\n", ductile_status_name(s), ductile_last_error(),
                    o->load_engine);
            return CLI_EXIT_FAILURE;
        }
        if (s != DUCTILE_OK)
            return cli_report(s);
        printf("=== Engine ===\n");
        printf("Loaded %s in %.3f ms\n", o->load_engine, cli_now_ms() - t0);
    } else {
        int rc = build(o, out);
        if (rc)
            return rc;
        printf("=== Engine ===\n");
    }
    if (o->save_engine) {
        ductile_status s = ductile_engine_save(*out, o->save_engine);
        if (s != DUCTILE_OK) {
            ductile_engine_free(*out);
            *out = NULL;
            return cli_report(s);
        }
        printf("Saved engine to %s\n", o->save_engine);
    }
    return CLI_EXIT_OK;
}

void cli_engine_describe(const ductile_engine *engine)
{
    int32_t n = ductile_engine_num_io_tensors(engine);
    int32_t profiles = ductile_engine_num_profiles(engine);
    printf("Profiles: %d\n", profiles);
    for (int pass = 0; pass < 2; pass++) {
        printf(pass == 0 ? "Inputs:\n" : "Outputs:\n");
        for (int32_t i = 0; i < n; i++) {
            const char *name = ductile_engine_io_tensor_name(engine, i);
            if (!name || ductile_engine_is_input(engine, name) != (pass == 0))
                continue;
            printf("  %s: %s\n", name, ductile_dtype_name(ductile_engine_tensor_dtype(engine, name)));
            for (int32_t p = 0; pass == 0 && p < profiles; p++) {
                ductile_dims d[3];
                char text[3][128];
                int ok = 1;
                for (int w = 0; w < 3; w++) {
                    ok = ok && ductile_engine_get_profile_shape(engine, p, name,
                                                                (ductile_profile_selector)w,
                                                                &d[w]) == DUCTILE_OK;
                    if (ok)
                        cli_dims_format(&d[w], text[w], sizeof text[w]);
                }
                if (ok)
                    printf("    profile %d: min %s, opt %s, max %s\n", p, text[0], text[1], text[2]);
            }
        }
    }
}
