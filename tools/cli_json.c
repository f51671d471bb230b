/* cli_json — the --exportOutput writer (see cli_json.h). */
#include "cli_json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli_data.h"
#include "cli_shapes.h"
#include "cli_util.h"

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void write_real(FILE *f, double v, int digits)
{
    if (isnan(v))
        fputs("NaN", f);
    else if (isinf(v))
        fputs(v > 0 ? "Infinity" : "-Infinity", f);
    else
        fprintf(f, "%.*g", digits, v);
}

static int write_value(FILE *f, ductile_dtype dtype, const void *data, size_t i)
{
    switch (dtype) {
    case DUCTILE_FLOAT32: write_real(f, ((const float *)data)[i], 9); break;
    case DUCTILE_FLOAT64: write_real(f, ((const double *)data)[i], 17); break;
    case DUCTILE_FLOAT16: write_real(f, cli_half_to_float(((const uint16_t *)data)[i]), 9); break;
    case DUCTILE_BFLOAT16: write_real(f, cli_bf16_to_float(((const uint16_t *)data)[i]), 9); break;
    case DUCTILE_INT64: fprintf(f, "%" PRId64, ((const int64_t *)data)[i]); break;
    case DUCTILE_UINT64: fprintf(f, "%" PRIu64, ((const uint64_t *)data)[i]); break;
    case DUCTILE_INT32: fprintf(f, "%" PRId32, ((const int32_t *)data)[i]); break;
    case DUCTILE_UINT32: fprintf(f, "%" PRIu32, ((const uint32_t *)data)[i]); break;
    case DUCTILE_INT16: fprintf(f, "%d", ((const int16_t *)data)[i]); break;
    case DUCTILE_UINT16: fprintf(f, "%u", ((const uint16_t *)data)[i]); break;
    case DUCTILE_INT8: fprintf(f, "%d", ((const int8_t *)data)[i]); break;
    case DUCTILE_UINT8: fprintf(f, "%u", ((const uint8_t *)data)[i]); break;
    case DUCTILE_BOOL: fprintf(f, "%d", ((const uint8_t *)data)[i] ? 1 : 0); break;
    default: return -1;
    }
    return 0;
}

static int write_output(FILE *f, ductile_context *context, const ductile_engine *engine,
                        const char *name)
{
    ductile_dims dims;
    void *data = NULL;
    ductile_status s = ductile_context_get_tensor_shape(context, name, &dims);
    if (s == DUCTILE_OK)
        s = ductile_context_get_tensor_address(context, name, &data);
    if (s != DUCTILE_OK)
        return cli_report(s);
    ductile_dtype dtype = ductile_engine_tensor_dtype(engine, name);
    int64_t count = cli_dims_volume(&dims);
    if (count < 0)
        return cli_fail("--exportOutput: output '%s' has an invalid shape", name);

    fputs("{ \"name\" : ", f);
    cli_json_string(f, name);
    fputs("\n  , \"dimensions\" : \"", f);
    for (int i = 0; i < dims.nb_dims; i++)
        fprintf(f, i ? "x%" PRId64 : "%" PRId64, dims.d[i]);
    fputs("\"\n  , \"values\" : [", f);
    for (int64_t i = 0; i < count; i++) {
        fputs(i == 0 ? " " : i % 16 ? ", " : "\n    , ", f);
        if (write_value(f, dtype, data, (size_t)i) != 0)
            return cli_fail("--exportOutput: output '%s' has dtype %s, which cannot be written",
                            name, ductile_dtype_name(dtype));
    }
    fputs(" ]\n  }\n", f);
    return 0;
}

int cli_json_export(const char *path, const ductile_engine *engine, ductile_context *context)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return cli_fail("--exportOutput: cannot create '%s': %s", path, strerror(errno));
    int rc = 0, written = 0;
    fputs("[\n", f);
    int32_t n = ductile_engine_num_io_tensors(engine);
    for (int32_t i = 0; i < n && rc == 0; i++) {
        const char *name = ductile_engine_io_tensor_name(engine, i);
        if (!name || ductile_engine_is_input(engine, name) != 0)
            continue;
        fputs(written++ ? ", " : "  ", f);
        rc = write_output(f, context, engine, name);
    }
    fputs("]\n", f);
    int io_failed = ferror(f);
    if (fclose(f) != 0)
        io_failed = 1;
    if (rc == 0 && io_failed)
        rc = cli_fail("--exportOutput: writing '%s' failed: %s", path, strerror(errno));
    return rc;
}
