/* Cast (and CastLike) to and from strings; other casts go to the cast kernel unchanged.
 *   to string: numbers as numpy's astype(str) writes them, which onnx.reference uses and
 *     onnxruntime matches for float32: the fewest digits that read back to the same value of
 *     the source type, positional ("100.5", "3.0", "-0.0") when 1e-4 <= |x| < 1e3 (float16),
 *     1e6 (float32) or 1e16 (float64), else scientific ("1e+10", "1.2345679e+08"); "nan",
 *     "inf", "-inf"; integers in decimal; bool "True" and "False".
 *   from string: ONNX's literals (decimal, scientific, "INF", "+INF", "-INF", "NaN", any case,
 *     spaces around allowed); integer targets take integers, and a decimal is truncated
 *     ("100.5" -> 100, the spec's example). Other text is refused naming the element. The
 *     value then goes through the cast kernel from float64 (float targets) or int64/uint64,
 *     so saturation and wrapping are those of numeric casts. */
#include "backend/cpu/families.h"
#include "backend/cpu/elementwise_impl.h"
#include "ops/strings.h"
#include "core/alloc.h"
#include "core/dtype.h"
#include "core/status.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool dt_is_float(int t)
{
    return t == DUCTILE_FLOAT16 || t == DUCTILE_FLOAT32 || t == DUCTILE_FLOAT64;
}

static ductile_status dt_str_cast_prepare(const ductile_layer *L, void **params)
{
    return dt_cpu_ew_cast_kernel.prepare(L, params);
}

static ductile_status dt_str_cast_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                          size_t *bytes)
{
    *bytes = 0;
    if (in[0].dtype != DUCTILE_STRING && out[0].dtype != DUCTILE_STRING)
        return dt_cpu_ew_cast_kernel.scratch ? dt_cpu_ew_cast_kernel.scratch(params, in, out, threads, bytes)
                                             : DUCTILE_OK;
    *bytes = (size_t)dt_view_count(&in[0]) * 8; /* the float64 / int64 step */
    return DUCTILE_OK;
}

/* One element of type t (float16 included) through the cast kernel into a double and back:
 * whether text that strtod read as d reads back as the source value `want`. */
static bool dt_reads_back(const void *params, dt_exec *ex, int t, double d, double want)
{
    if (t == DUCTILE_FLOAT64) return d == want;
    if (t == DUCTILE_FLOAT32) return (float)d == (float)want;
    uint16_t h = 0;
    double back = 0;
    dt_view a = {DUCTILE_FLOAT64, 1, {1}, &d}, b = {DUCTILE_FLOAT16, 1, {1}, &h}, c = {DUCTILE_FLOAT64, 1, {1}, &back};
    dt_exec one = *ex;
    one.pool = NULL;
    if (dt_cpu_ew_cast_kernel.run(params, &a, &b, &one) || dt_cpu_ew_cast_kernel.run(params, &b, &c, &one)) return false;
    return back == want;
}

/* v (exactly a value of type t) as numpy writes it; returns the length. */
static int dt_format_float(const void *params, dt_exec *ex, int t, double v, char *buf, size_t cap)
{
    if (isnan(v)) return snprintf(buf, cap, "nan");
    if (isinf(v)) return snprintf(buf, cap, v < 0 ? "-inf" : "inf");
    int p = 1;
    for (; p < 17; p++) {
        snprintf(buf, cap, "%.*e", p - 1, v);
        if (dt_reads_back(params, ex, t, strtod(buf, NULL), v)) break;
    }
    snprintf(buf, cap, "%.*e", p - 1, v);
    int exp10 = atoi(strchr(buf, 'e') + 1);
    double upper = t == DUCTILE_FLOAT16 ? 1e3 : t == DUCTILE_FLOAT32 ? 1e6 : 1e16, a = fabs(v);
    if (v == 0 || (a >= 1e-4 && a < upper)) {
        int decimals = p - 1 - exp10;
        return snprintf(buf, cap, "%.*f", decimals < 1 ? 1 : decimals, v);
    }
    return snprintf(buf, cap, "%.*e", p - 1, v);
}

static int64_t dt_int_at(const dt_view *v, int64_t i)
{
    switch (v->dtype) {
    case DUCTILE_INT8: return ((const int8_t *)v->data)[i];
    case DUCTILE_INT16: return ((const int16_t *)v->data)[i];
    case DUCTILE_INT32: return ((const int32_t *)v->data)[i];
    case DUCTILE_INT64: return ((const int64_t *)v->data)[i];
    case DUCTILE_UINT8: return ((const uint8_t *)v->data)[i];
    case DUCTILE_UINT16: return ((const uint16_t *)v->data)[i];
    case DUCTILE_UINT32: return ((const uint32_t *)v->data)[i];
    default: return ((const int8_t *)v->data)[i]; /* bool */
    }
}

static ductile_status dt_to_strings(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int64_t n = dt_view_count(&in[0]);
    ductile_string *y = out[0].data;
    int t = in[0].dtype;
    const double *d = NULL;
    if (dt_is_float(t)) {
        dt_view wide = {DUCTILE_FLOAT64, in[0].rank, {0}, ex->scratch};
        memcpy(wide.dims, in[0].dims, sizeof wide.dims);
        DT_TRY(dt_cpu_ew_cast_kernel.run(params, &in[0], &wide, ex));
        d = ex->scratch;
    }
    for (int64_t i = 0; i < n; i++) {
        char buf[64];
        int len;
        if (d) len = dt_format_float(params, ex, t, d[i], buf, sizeof buf);
        else if (t == DUCTILE_BOOL) len = snprintf(buf, sizeof buf, "%s", ((const uint8_t *)in[0].data)[i] ? "True" : "False");
        else if (t == DUCTILE_UINT64) len = snprintf(buf, sizeof buf, "%llu", (unsigned long long)((const uint64_t *)in[0].data)[i]);
        else len = snprintf(buf, sizeof buf, "%lld", (long long)dt_int_at(&in[0], i));
        char *p = ex->strings ? dt_arena_alloc(ex->strings, (size_t)len) : NULL;
        if (!p) return ex->strings ? dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for Cast's strings")
                                   : dt_fail(DUCTILE_ERR_INTERNAL, "Cast to string ran where no string bytes may be made");
        memcpy(p, buf, (size_t)len);
        y[i] = (ductile_string){p, (size_t)len};
    }
    return DUCTILE_OK;
}

/* s without surrounding whitespace, NUL-terminated in buf (NULL when too long or holding NUL). */
static const char *dt_trimmed(ductile_string s, char *buf, size_t cap)
{
    const char *b = s.data, *e = s.data + s.length;
    while (b < e && isspace((unsigned char)*b)) b++;
    while (e > b && isspace((unsigned char)e[-1])) e--;
    size_t n = (size_t)(e - b);
    if (n >= cap || (n && memchr(b, 0, n))) return NULL;
    if (n) memcpy(buf, b, n);
    buf[n] = 0;
    return buf;
}

static bool dt_parse_double(const char *s, double *out)
{
    if (!*s) return false;
    char *end;
    errno = 0;
    *out = strtod(s, &end); /* "inf", "+INF", "nan" in any case; overflow gives +-inf */
    return *end == 0;
}

static ductile_status dt_from_strings(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int64_t n = dt_view_count(&in[0]);
    const ductile_string *x = in[0].data;
    int t = out[0].dtype;
    if (t == DUCTILE_STRING) {
        memcpy(out[0].data, in[0].data, (size_t)n * sizeof *x);
        return DUCTILE_OK;
    }
    int via = dt_is_float(t) ? DUCTILE_FLOAT64 : t == DUCTILE_UINT64 ? DUCTILE_UINT64 : DUCTILE_INT64;
    for (int64_t i = 0; i < n; i++) {
        char buf[512];
        const char *s = dt_trimmed(x[i], buf, sizeof buf);
        double d = 0;
        char *end = NULL;
        bool ok = s != NULL;
        if (ok && via == DUCTILE_FLOAT64) {
            ok = dt_parse_double(s, &d);
            ((double *)ex->scratch)[i] = d;
        } else if (ok) {
            errno = 0;
            int64_t v = 0;
            uint64_t u = 0;
            if (t == DUCTILE_BOOL && (!strcasecmp(s, "true") || !strcasecmp(s, "false"))) v = !strcasecmp(s, "true");
            else if (via == DUCTILE_UINT64 && *s != '-') u = strtoull(s, &end, 10);
            else v = strtoll(s, &end, 10);
            if (end && (*end || end == s || errno)) {
                /* "100.5" -> 100: a decimal truncated, inside the range of int64 */
                ok = dt_parse_double(s, &d) && isfinite(d) && d > -9223372036854775808.0 &&
                     d < (via == DUCTILE_UINT64 ? 18446744073709551616.0 : 9223372036854775808.0) &&
                     (via != DUCTILE_UINT64 || d > -1.0);
                v = ok ? (int64_t)d : 0;
                u = ok && via == DUCTILE_UINT64 ? (uint64_t)d : 0;
            }
            if (via == DUCTILE_UINT64) ((uint64_t *)ex->scratch)[i] = u;
            else ((int64_t *)ex->scratch)[i] = v;
        }
        if (!ok) {
            char shown[40];
            size_t k = x[i].length < 32 ? x[i].length : 32;
            memcpy(shown, x[i].data ? x[i].data : "", k);
            shown[k] = 0;
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 0 element %lld: '%s%s' is not a number %s can hold",
                           (long long)i, shown, x[i].length > 32 ? "..." : "", ductile_dtype_name((ductile_dtype)t));
        }
    }
    dt_view mid = {via, in[0].rank, {0}, ex->scratch};
    memcpy(mid.dims, in[0].dims, sizeof mid.dims);
    return dt_cpu_ew_cast_kernel.run(params, &mid, &out[0], ex);
}

static ductile_status dt_str_cast_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    if (in[0].dtype != DUCTILE_STRING && out[0].dtype != DUCTILE_STRING)
        return dt_cpu_ew_cast_kernel.run(params, in, out, ex);
    DT_TRY(dt_strings_cast_pair(in[0].dtype, out[0].dtype));
    if (out[0].dtype == DUCTILE_STRING && in[0].dtype != DUCTILE_STRING) return dt_to_strings(params, in, out, ex);
    return dt_from_strings(params, in, out, ex);
}

const dt_kernel dt_cpu_str_cast_kernel = {
    .prepare = dt_str_cast_prepare, .scratch = dt_str_cast_scratch, .run = dt_str_cast_run,
};
