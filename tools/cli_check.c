/* cli_check — the flags checked against the network or the engine (see cli_check.h). */
#include "cli_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli_util.h"

enum { LIST_SIZE = 1024 };

/* Appends printf output to buf (capacity LIST_SIZE), cutting with "..." when full. */
__attribute__((format(printf, 2, 3))) static void append(char *buf, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 4 >= LIST_SIZE)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + used, LIST_SIZE - used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= LIST_SIZE - used)
        strcpy(buf + LIST_SIZE - 4, "...");
}

/* "'a', 'b'" of the network's inputs. */
static void network_inputs(ductile_network *network, char *buf)
{
    buf[0] = '\0';
    for (int32_t i = 0; i < ductile_network_num_inputs(network); i++)
        append(buf, "%s'%s'", i ? ", " : "", ductile_tensor_name(ductile_network_get_input(network, i)));
}

static void engine_inputs(const ductile_engine *engine, char *buf)
{
    buf[0] = '\0';
    for (int32_t i = 0; i < ductile_engine_num_io_tensors(engine); i++) {
        const char *name = ductile_engine_io_tensor_name(engine, i);
        if (ductile_engine_is_input(engine, name) == 1)
            append(buf, "%s'%s'", buf[0] ? ", " : "", name);
    }
}

/* what: "an output", "an intermediate tensor", or NULL when the name is no tensor at all. */
static int not_an_input(const char *flag, const char *name, const char *of, const char *what,
                        const char *inputs)
{
    if (what)
        return cli_fail("%s: '%s' is %s of the %s, not an input (inputs: %s)", flag, name, what,
                        of, inputs);
    return cli_fail("%s: '%s' is not an input of the %s (inputs: %s)", flag, name, of, inputs);
}

static int check_list_names(const char *flag, const cli_shape_list *list, ductile_network *network)
{
    for (int i = 0; i < list->count; i++) {
        ductile_tensor *t = ductile_network_find_tensor(network, list->items[i].name);
        if (t && ductile_tensor_is_input(t) == 1)
            continue;
        char inputs[LIST_SIZE];
        network_inputs(network, inputs);
        return not_an_input(flag, list->items[i].name, "network",
                            !t ? NULL : ductile_tensor_is_output(t) == 1 ? "an output" : "an intermediate tensor",
                            inputs);
    }
    return 0;
}

static int has_dynamic_dim(const ductile_dims *d)
{
    if (d->nb_dims < 0)
        return 1;
    for (int32_t i = 0; i < d->nb_dims; i++)
        if (d->d[i] < 0)
            return 1;
    return 0;
}

/* "[1,3,-1,-1]" and "input_1:1x3x<image_height>x<image_width>": the spec to write, with the
 * model's name for each dynamic dim (<d2> where it has none). */
static void describe_dynamic(ductile_tensor *t, char *dims, char *spec)
{
    ductile_dims d = ductile_tensor_dims(t);
    dims[0] = spec[0] = '\0';
    append(spec, "%s:", ductile_tensor_name(t));
    if (d.nb_dims < 0) {
        append(dims, "[rank unknown]");
        append(spec, "<dims>");
        return;
    }
    append(dims, "[");
    for (int32_t i = 0; i < d.nb_dims; i++) {
        const char *sym = ductile_tensor_dim_name(t, i);
        append(dims, "%s%lld", i ? "," : "", (long long)d.d[i]);
        if (d.d[i] >= 0)
            append(spec, "%s%lld", i ? "x" : "", (long long)d.d[i]);
        else if (sym)
            append(spec, "%s<%s>", i ? "x" : "", sym);
        else
            append(spec, "%s<d%d>", i ? "x" : "", (int)i);
    }
    append(dims, "]");
}

/* No shape flag at all: every dynamic input is named, with the spec that would cover it. */
static int report_uncovered(ductile_network *network)
{
    char names[LIST_SIZE] = "", spec[LIST_SIZE] = "", dims[LIST_SIZE], one[LIST_SIZE];
    const char *first = NULL;
    int count = 0;
    for (int32_t i = 0; i < ductile_network_num_inputs(network); i++) {
        ductile_tensor *t = ductile_network_get_input(network, i);
        ductile_dims d = ductile_tensor_dims(t);
        if (!has_dynamic_dim(&d))
            continue;
        describe_dynamic(t, dims, one);
        append(names, "%s'%s' %s", count ? ", " : "", ductile_tensor_name(t), dims);
        append(spec, "%s%s", count ? "," : "", one);
        first = first ? first : ductile_tensor_name(t);
        count++;
    }
    if (count == 0)
        return 0;
    char advice[3 * LIST_SIZE];
    snprintf(advice, sizeof advice, "add --minShapes/--optShapes/--maxShapes=%s (a range of "
             "shapes) or --shapes=%s (one shape), with sizes for <...>", spec, spec);
    if (count == 1) /* dims still holds the one input's */
        return cli_fail("input '%s' has dynamic dims %s: %s", first, dims, advice);
    return cli_fail("inputs %s have dynamic dims: %s", names, advice);
}

int cli_check_network(const cli_options *o, ductile_network *network)
{
    int rc = check_list_names("--shapes", &o->shapes, network);
    for (int p = 0; rc == 0 && p < o->num_profiles; p++)
        rc = check_list_names("--minShapes", &o->profiles[p].min, network);
    if (rc)
        return rc;
    if (o->num_profiles == 0 && o->shapes.count == 0)
        return report_uncovered(network);
    /* Profiles given (or made of --shapes): each must name every dynamic input. */
    int synthesized = o->num_profiles == 0;
    for (int p = 0; p < (synthesized ? 1 : o->num_profiles); p++) {
        const cli_shape_list *list = synthesized ? &o->shapes : &o->profiles[p].min;
        for (int32_t i = 0; i < ductile_network_num_inputs(network); i++) {
            ductile_tensor *t = ductile_network_get_input(network, i);
            ductile_dims d = ductile_tensor_dims(t);
            if (!has_dynamic_dim(&d) || cli_shapes_find(list, ductile_tensor_name(t)))
                continue;
            char dims[LIST_SIZE], spec[LIST_SIZE];
            describe_dynamic(t, dims, spec);
            if (synthesized)
                return cli_fail("input '%s' has dynamic dims %s but is not in --shapes: add %s "
                                "to it, with sizes for <...>", ductile_tensor_name(t), dims, spec);
            return cli_fail("profile %d: input '%s' has dynamic dims %s but is not in "
                            "--minShapes/--optShapes/--maxShapes: add %s to each, with sizes "
                            "for <...>", p, ductile_tensor_name(t), dims, spec);
        }
    }
    return 0;
}

int cli_check_engine(const cli_options *o, const ductile_engine *engine)
{
    static const char *const flags[2] = {"--shapes", "--loadInputs"};
    for (int k = 0; k < 2; k++) {
        int n = k == 0 ? o->shapes.count : o->num_inputs;
        for (int i = 0; i < n; i++) {
            const char *name = k == 0 ? o->shapes.items[i].name : o->inputs[i].name;
            int is_input = ductile_engine_is_input(engine, name);
            if (is_input == 1)
                continue;
            char inputs[LIST_SIZE];
            engine_inputs(engine, inputs);
            return not_an_input(flags[k], name, "engine", is_input == 0 ? "an output" : NULL,
                                inputs);
        }
    }
    return 0;
}
