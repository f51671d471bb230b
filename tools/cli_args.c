/* cli_args — flag parsing (see cli_args.h). Every rejection names the flag and the value. */
#include "cli_args.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ERR_SIZE 512

void cli_args_usage(FILE *f)
{
    fputs(
"usage: ductile (--onnx=<model.onnx> | --loadEngine=<file>) [flags]\n"
"\n"
"Builds an engine from an ONNX model (or loads one) and times inference, like trtexec.\n"
"\n"
"Model and engine:\n"
"  --onnx=<file>              ONNX model to parse and build\n"
"  --loadEngine=<file>        engine file to load instead of building (build flags ignored)\n"
"  --saveEngine=<file>        write the built engine to this file\n"
"  --minShapes=<spec>         minimum shapes of an optimization profile\n"
"  --optShapes=<spec>         optimum shapes of the profile\n"
"  --maxShapes=<spec>         maximum shapes of the profile\n"
"                             The three together declare one profile; repeat the triple to\n"
"                             declare more (profile 0, 1, ... in order). A spec is\n"
"                             name:dims[,name:dims...], dims as 1x3x224x224; a name holding\n"
"                             ':' or ',' may be quoted: 'input:0':1x3x224x224.\n"
"                             A network without dynamic inputs needs no shape flags; with\n"
"                             --shapes and no triple, one profile min=opt=max=--shapes is built.\n"
"  --dynamicDims=<spec>       override input dims before the build, -1 for dynamic:\n"
"                             input:-1x1x-1x-1 (as TensorRT's tensor.shape = ...). A dim the\n"
"                             model fixes stays fixed unless overridden; the build refuses a\n"
"                             model whose constants tie an overridden dim to its old size.\n"
"  --memPoolSize=workspace:<N>[K|M|G]  activation memory limit per profile (plain N: MiB;\n"
"                             default: the machine's memory)\n"
"  --fp16                     allow float16 kernels\n"
"  --bf16                     allow bfloat16 kernels\n"
"  --tf32                     allow TF32 in float32 convolutions and matmuls (cuda; off by\n"
"                             default, unlike trtexec's --noTF32)\n"
"  --device=cpu|cuda          the backend the engine is built for (default cpu)\n"
"  --dumpLayerInfo            print the engine's layers (JSON)\n"
"  --skipInference            stop after building (and saving) the engine\n"
"\n"
"Inference:\n"
"  --shapes=<spec>            shapes to run; inputs not named use the opt shape of the profile\n"
"  --profile=<index>          profile used for the run (default 0)\n"
"  --loadInputs=<name:file>[,name:file...]  raw little-endian element data for an input; the\n"
"                             file size must equal the input's byte size exactly.\n"
"                             Other inputs get deterministic pseudo-random data: floats uniform\n"
"                             in [-1, 1); integers in [0, 100), or 1 when the input name contains\n"
"                             \"mask\"; bools 0 or 1 (1 for masks).\n"
"  --iterations=<N>           minimum number of timed runs (default 10)\n"
"  --warmUp=<ms>              warm-up time before timing (default 200; 0 = none)\n"
"  --duration=<s>             minimum seconds of timed runs (default 3; 0 = just iterations)\n"
"  --percentile=<P>[,P...]    latency percentiles to report, 0..100 (default 90,95,99)\n"
"  --threads=<N>              worker threads of the execution context (and of a build's tactic timing)\n"
"  --exportOutput=<file>      write the outputs of the last run as JSON (trtexec's format)\n"
"  --cudaGraphs=<N>           CUDA graphs kept per context, one per shape and set of buffers\n"
"                             (default 16; 0 = off): a shape's second run records one, later\n"
"                             runs replay it. No effect on the CPU\n"
"  --useCudaGraph             trtexec's switch; graphs are on by default (16)\n"
"  --dumpProfile              print each layer's time over the timed runs (average, share of\n"
"                             the total, tactic), in execution order, and the totals per op\n"
"                             type; timing layers makes the runs slightly slower\n"
"  --exportProfile=<file>     write that profile as JSON (trtexec's format, plus opType,\n"
"                             tactic and flops per run)\n"
"\n"
"Other:\n"
"  --verbose                  more detail\n"
"  --help                     this text\n"
"\n"
"Exit status: 0 success, 1 a failure while building, loading or running, 2 a bad command line.\n",
        f);
}

static int bad_value(const char *flag, const char *value, const char *expected)
{
    fprintf(stderr, "error: invalid value for --%s: '%s' (expected %s)\n", flag, value, expected);
    return 2;
}

/* Strict integer parse: the whole string, in [lo, hi]. */
static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!*s || *s == ' ' || *s == '+')
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    if (!*s || *s == ' ')
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* trtexec's pool syntax, limited to the one pool ductile has: "workspace:1024M". */
static int parse_mem_pool(const char *value, uint64_t *bytes)
{
    const char *s = value;
    if (strncmp(s, "workspace:", 10) == 0)
        s += 10;
    if (!*s || *s == '-' || *s == ' ' || *s == '+')
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0)
        return -1;
    double scale;
    if (!*end || strcmp(end, "M") == 0)
        scale = 1024.0 * 1024.0;
    else if (strcmp(end, "K") == 0)
        scale = 1024.0;
    else if (strcmp(end, "G") == 0)
        scale = 1024.0 * 1024.0 * 1024.0;
    else
        return -1;
    double b = v * scale;
    if (b >= 18446744073709551616.0) /* 2^64 */
        return -1;
    *bytes = (uint64_t)b;
    return 0;
}

static int parse_percentiles(const char *value, cli_options *o)
{
    int n = 0;
    const char *p = value;
    char buf[64];
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= sizeof buf || n == CLI_MAX_PERCENTILES)
            return -1;
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (parse_double(buf, 0.0, 100.0, &o->percentiles[n]) != 0)
            return -1;
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    o->num_percentiles = n;
    return 0;
}

/* "name:file[,name:file]". Unquoted, the name ends at the first ':' (a path may hold ':');
 * quote a name that holds ':' or ','. A path cannot hold ','. */
static int parse_load_inputs(const char *value, cli_options *o, char *err, size_t err_size)
{
    const char *p = value;
    for (;;) {
        const char *name = p, *name_end, *path;
        if (*p == '\'') {
            name = p + 1;
            name_end = strchr(name, '\'');
            if (!name_end || name_end[1] != ':') {
                snprintf(err, err_size, "a quoted name must be closed and followed by ':'");
                return -1;
            }
            path = name_end + 2;
        } else {
            name_end = p;
            while (*name_end && *name_end != ':' && *name_end != ',')
                name_end++;
            if (*name_end != ':') {
                snprintf(err, err_size, "expected name:file");
                return -1;
            }
            path = name_end + 1;
        }
        const char *path_end = strchr(path, ',');
        if (!path_end)
            path_end = path + strlen(path);
        if (name_end == name || path_end == path) {
            snprintf(err, err_size, "empty name or file in name:file");
            return -1;
        }
        char *n = strndup(name, (size_t)(name_end - name));
        for (int i = 0; n && i < o->num_inputs; i++)
            if (strcmp(o->inputs[i].name, n) == 0) {
                snprintf(err, err_size, "input '%s' given twice", n);
                free(n);
                return -1;
            }
        char *f = strndup(path, (size_t)(path_end - path));
        cli_input_file *grown =
            n && f ? realloc(o->inputs, sizeof *grown * (size_t)(o->num_inputs + 1)) : NULL;
        if (!grown) {
            free(n);
            free(f);
            snprintf(err, err_size, "out of memory");
            return -1;
        }
        o->inputs = grown;
        o->inputs[o->num_inputs].name = n;
        o->inputs[o->num_inputs].path = f;
        o->num_inputs++;
        if (!*path_end)
            return 0;
        p = path_end + 1;
    }
}

/* The k-th --minShapes (or opt, max) belongs to profile k; grows the profile array as needed. */
static cli_shape_list *profile_slot(cli_options *o, int *counter, int which)
{
    int k = (*counter)++;
    if (k >= o->num_profiles) {
        cli_profile_spec *grown = realloc(o->profiles, sizeof *grown * (size_t)(k + 1));
        if (!grown)
            return NULL;
        memset(&grown[o->num_profiles], 0, sizeof *grown * (size_t)(k + 1 - o->num_profiles));
        o->profiles = grown;
        o->num_profiles = k + 1;
    }
    cli_profile_spec *ps = &o->profiles[k];
    return which == 0 ? &ps->min : which == 1 ? &ps->opt : &ps->max;
}

static int set_defaults(cli_options *o)
{
    memset(o, 0, sizeof *o);
    o->iterations = 10;
    o->warmup_ms = 200.0;
    o->duration_s = 3.0;
    o->percentiles[0] = 90.0;
    o->percentiles[1] = 95.0;
    o->percentiles[2] = 99.0;
    o->num_percentiles = 3;
    o->cuda_graphs = -1;
    return 0;
}

enum { BOOL_FLAG, VALUE_FLAG };

static const struct flag_desc {
    const char *name;
    int kind;
} FLAGS[] = {
    {"onnx", VALUE_FLAG}, {"loadEngine", VALUE_FLAG}, {"saveEngine", VALUE_FLAG},
    {"minShapes", VALUE_FLAG}, {"optShapes", VALUE_FLAG}, {"maxShapes", VALUE_FLAG},
    {"dynamicDims", VALUE_FLAG}, {"shapes", VALUE_FLAG}, {"profile", VALUE_FLAG}, {"iterations", VALUE_FLAG},
    {"warmUp", VALUE_FLAG}, {"duration", VALUE_FLAG}, {"percentile", VALUE_FLAG},
    {"threads", VALUE_FLAG}, {"memPoolSize", VALUE_FLAG}, {"loadInputs", VALUE_FLAG},
    {"exportOutput", VALUE_FLAG}, {"fp16", BOOL_FLAG}, {"bf16", BOOL_FLAG}, {"tf32", BOOL_FLAG},
    {"dumpLayerInfo", BOOL_FLAG}, {"verbose", BOOL_FLAG}, {"skipInference", BOOL_FLAG},
    {"help", BOOL_FLAG}, {"device", VALUE_FLAG}, {"cudaGraphs", VALUE_FLAG}, {"useCudaGraph", BOOL_FLAG},
    {"dumpProfile", BOOL_FLAG}, {"exportProfile", VALUE_FLAG},
};

static int apply_flag(cli_options *o, const char *flag, const char *value)
{
    char err[ERR_SIZE];
    int64_t i64;

    if (strcmp(flag, "onnx") == 0) o->onnx = value;
    else if (strcmp(flag, "loadEngine") == 0) o->load_engine = value;
    else if (strcmp(flag, "saveEngine") == 0) o->save_engine = value;
    else if (strcmp(flag, "exportOutput") == 0) o->export_output = value;
    else if (strcmp(flag, "exportProfile") == 0) o->export_profile = value;
    else if (strcmp(flag, "minShapes") == 0 || strcmp(flag, "optShapes") == 0 ||
             strcmp(flag, "maxShapes") == 0) {
        int which = flag[1] == 'i' ? 0 : flag[1] == 'p' ? 1 : 2;
        int *counter = which == 0 ? &o->num_min : which == 1 ? &o->num_opt : &o->num_max;
        cli_shape_list *list = profile_slot(o, counter, which);
        if (!list) {
            fprintf(stderr, "error: out of memory\n");
            return 2;
        }
        if (cli_shapes_parse(value, list, err, sizeof err) != 0) {
            fprintf(stderr, "error: invalid value for --%s: '%s' (%s)\n", flag, value, err);
            return 2;
        }
    } else if (strcmp(flag, "dynamicDims") == 0) {
        if (cli_shapes_parse_dynamic(value, &o->dynamic_dims, err, sizeof err) != 0) {
            fprintf(stderr, "error: invalid value for --%s: '%s' (%s)\n", flag, value, err);
            return 2;
        }
    } else if (strcmp(flag, "shapes") == 0) {
        if (cli_shapes_parse(value, &o->shapes, err, sizeof err) != 0) {
            fprintf(stderr, "error: invalid value for --%s: '%s' (%s)\n", flag, value, err);
            return 2;
        }
    } else if (strcmp(flag, "loadInputs") == 0) {
        if (parse_load_inputs(value, o, err, sizeof err) != 0) {
            fprintf(stderr, "error: invalid value for --%s: '%s' (%s)\n", flag, value, err);
            return 2;
        }
    } else if (strcmp(flag, "profile") == 0) {
        if (parse_int(value, 0, INT32_MAX, &i64) != 0)
            return bad_value(flag, value, "a profile index >= 0");
        o->profile = (int32_t)i64;
    } else if (strcmp(flag, "iterations") == 0) {
        if (parse_int(value, 1, INT64_MAX / 2, &i64) != 0)
            return bad_value(flag, value, "an integer >= 1");
        o->iterations = i64;
    } else if (strcmp(flag, "threads") == 0) {
        if (parse_int(value, 1, 4096, &i64) != 0)
            return bad_value(flag, value, "an integer in 1..4096");
        o->threads = (int32_t)i64;
    } else if (strcmp(flag, "warmUp") == 0) {
        if (parse_double(value, 0.0, 3600e3, &o->warmup_ms) != 0)
            return bad_value(flag, value, "milliseconds >= 0");
    } else if (strcmp(flag, "duration") == 0) {
        if (parse_double(value, 0.0, 86400.0, &o->duration_s) != 0)
            return bad_value(flag, value, "seconds >= 0");
    } else if (strcmp(flag, "percentile") == 0) {
        if (parse_percentiles(value, o) != 0)
            return bad_value(flag, value, "percentiles in 0..100 separated by ',', at most 16");
    } else if (strcmp(flag, "memPoolSize") == 0) {
        if (parse_mem_pool(value, &o->workspace_bytes) != 0)
            return bad_value(flag, value, "workspace:<N>[K|M|G], e.g. workspace:1024M");
        o->has_workspace = 1;
    } else if (strcmp(flag, "device") == 0) {
        if (strcmp(value, "cpu") != 0 && strcmp(value, "cuda") != 0)
            return bad_value(flag, value, "cpu or cuda");
        o->device = value;
    } else if (strcmp(flag, "cudaGraphs") == 0) {
        if (parse_int(value, 0, 4096, &i64) != 0)
            return bad_value(flag, value, "an integer in 0..4096 (0: off)");
        o->cuda_graphs = (int32_t)i64;
    } else if (strcmp(flag, "useCudaGraph") == 0) {
        if (o->cuda_graphs < 0)
            o->cuda_graphs = 16;
    } else if (strcmp(flag, "fp16") == 0) o->fp16 = 1;
    else if (strcmp(flag, "bf16") == 0) o->bf16 = 1;
    else if (strcmp(flag, "tf32") == 0) o->tf32 = 1;
    else if (strcmp(flag, "dumpLayerInfo") == 0) o->dump_layer_info = 1;
    else if (strcmp(flag, "dumpProfile") == 0) o->dump_profile = 1;
    else if (strcmp(flag, "verbose") == 0) o->verbose = 1;
    else if (strcmp(flag, "skipInference") == 0) o->skip_inference = 1;
    else if (strcmp(flag, "help") == 0) o->help = 1;
    return 0;
}

/* Checks between flags, once all are read. */
static int check_combination(cli_options *o)
{
    if (o->help)
        return 0;
    if (!o->onnx && !o->load_engine) {
        fprintf(stderr, "error: give --onnx=<model.onnx> or --loadEngine=<file> (see --help)\n");
        return 2;
    }
    if (o->onnx && o->load_engine) {
        fprintf(stderr, "error: --onnx and --loadEngine exclude each other\n");
        return 2;
    }
    if (o->num_min != o->num_opt || o->num_opt != o->num_max) {
        fprintf(stderr,
                "error: --minShapes, --optShapes and --maxShapes must be given together, once "
                "per profile (got %d, %d and %d)\n",
                o->num_min, o->num_opt, o->num_max);
        return 2;
    }
    for (int p = 0; p < o->num_profiles; p++) {
        const cli_profile_spec *ps = &o->profiles[p];
        const cli_shape_list *lists[3] = {&ps->min, &ps->opt, &ps->max};
        static const char *const names[3] = {"minShapes", "optShapes", "maxShapes"};
        for (int a = 0; a < 3; a++)
            for (int i = 0; i < lists[a]->count; i++)
                for (int b = 0; b < 3; b++)
                    if (!cli_shapes_find(lists[b], lists[a]->items[i].name)) {
                        fprintf(stderr,
                                "error: profile %d: input '%s' is in --%s but not in --%s\n", p,
                                lists[a]->items[i].name, names[a], names[b]);
                        return 2;
                    }
    }
    return 0;
}

static const struct flag_desc *find_flag(const char *name, size_t len)
{
    for (size_t k = 0; k < sizeof FLAGS / sizeof FLAGS[0]; k++)
        if (strlen(FLAGS[k].name) == len && strncmp(FLAGS[k].name, name, len) == 0)
            return &FLAGS[k];
    return NULL;
}

/* Edit distance (insert, delete, substitute; case ignored) of a[0..la) and b, for flags only:
 * both are short (la is capped by the caller). */
static size_t edit_distance(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b), row[64];
    if (lb >= sizeof row / sizeof row[0])
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t sub = diag + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            size_t best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            diag = up;
        }
    }
    return row[lb];
}

/* "error: unknown flag '--iteratons' (did you mean --iterations?)": the nearest flag within
 * two edits that is not mostly rewritten (--fp32 is no --fp16). */
static int unknown_flag(const char *arg, size_t name_len)
{
    const char *name = arg + 2;
    if (name_len == 9 && strncmp(name, "workspace", 9) == 0) {
        fprintf(stderr, "error: unknown flag '--workspace' (trtexec's old spelling: use "
                        "--memPoolSize=workspace:<N>)\n");
        return 2;
    }
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t k = 0; name_len < 64 && k < sizeof FLAGS / sizeof FLAGS[0]; k++) {
        size_t d = edit_distance(name, name_len, FLAGS[k].name);
        size_t longer = name_len > strlen(FLAGS[k].name) ? name_len : strlen(FLAGS[k].name);
        if (d <= 2 && 3 * d <= longer && d < best_d) {
            best = FLAGS[k].name;
            best_d = d;
        }
    }
    if (best)
        fprintf(stderr, "error: unknown flag '%.*s' (did you mean --%s?)\n", (int)(name_len + 2),
                arg, best);
    else
        fprintf(stderr, "error: unknown flag '%.*s'\n", (int)(name_len + 2), arg);
    return 2;
}

int cli_args_parse(int argc, char **argv, cli_options *o)
{
    set_defaults(o);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0) {
            o->help = 1;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            /* "-onnx=m.onnx" (one dash, as some tools take): show the flag as it should be. */
            size_t len = arg[0] == '-' ? strcspn(arg + 1, "=") : 0;
            if (len && find_flag(arg + 1, len))
                fprintf(stderr, "error: unexpected argument '%s' (flags start with '--': -%s)\n",
                        arg, arg);
            else
                fprintf(stderr, "error: unexpected argument '%s' (flags are --name=value)\n", arg);
            return 2;
        }
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        const struct flag_desc *desc = find_flag(arg + 2, name_len);
        if (!desc)
            return unknown_flag(arg, name_len);
        if (desc->kind == BOOL_FLAG && eq) {
            fprintf(stderr, "error: --%s takes no value (got '%s')\n", desc->name, eq + 1);
            return 2;
        }
        if (desc->kind == VALUE_FLAG && !eq && i + 1 < argc && argv[i + 1][0] != '-') {
            /* "--onnx m.onnx": trtexec's flags take their value after '=' only. */
            fprintf(stderr, "error: --%s needs its value after '=': --%s=%s\n", desc->name,
                    desc->name, argv[i + 1]);
            return 2;
        }
        if (desc->kind == VALUE_FLAG && (!eq || !eq[1])) {
            fprintf(stderr, "error: --%s needs a value (--%s=...)\n", desc->name, desc->name);
            return 2;
        }
        int rc = apply_flag(o, desc->name, eq ? eq + 1 : NULL);
        if (rc)
            return rc;
    }
    return check_combination(o);
}

void cli_args_free(cli_options *o)
{
    if (!o)
        return;
    for (int p = 0; p < o->num_profiles; p++) {
        cli_shapes_free(&o->profiles[p].min);
        cli_shapes_free(&o->profiles[p].opt);
        cli_shapes_free(&o->profiles[p].max);
    }
    free(o->profiles);
    cli_shapes_free(&o->shapes);
    cli_shapes_free(&o->dynamic_dims);
    for (int i = 0; i < o->num_inputs; i++) {
        free(o->inputs[i].name);
        free(o->inputs[i].path);
    }
    free(o->inputs);
    memset(o, 0, sizeof *o);
}
