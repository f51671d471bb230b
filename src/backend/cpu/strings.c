/* CPU kernels of the string ops (ops/strings.h), and Equal on strings. Views are copied, bytes
 * only where an op makes new ones (StringConcat, StringNormalizer's case change), and those go
 * to the context's string arena (dt_exec.strings). */
#include "backend/cpu/families.h"
#include "backend/cpu/elementwise_impl.h"
#include "ops/strings.h"
#include "core/alloc.h"
#include "core/dtype.h"
#include "core/status.h"

#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

static char *dt_str_bytes(dt_exec *ex, size_t n)
{
    if (!ex->strings) {
        dt_fail(DUCTILE_ERR_INTERNAL, "a string kernel ran where no string bytes may be made");
        return NULL;
    }
    char *p = dt_arena_alloc(ex->strings, n ? n : 1);
    if (!p) dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for string results", n);
    return p;
}

/* Offsets of output element o in a and b under numpy broadcasting (out has the larger rank). */
static void dt_bcast_offsets(const dt_view *out, const dt_view *a, const dt_view *b, int64_t o, int64_t *ia, int64_t *ib)
{
    int64_t sa = 1, sb = 1;
    *ia = *ib = 0;
    for (int d = out->rank - 1; d >= 0; d--) {
        int64_t x = o % out->dims[d];
        o /= out->dims[d];
        int da = d - (out->rank - a->rank), db = d - (out->rank - b->rank);
        if (da >= 0) { if (a->dims[da] != 1) *ia += x * sa; sa *= a->dims[da]; }
        if (db >= 0) { if (b->dims[db] != 1) *ib += x * sb; sb *= b->dims[db]; }
    }
}

static bool dt_str_eq(ductile_string a, ductile_string b)
{
    return a.length == b.length && (!a.length || !memcmp(a.data, b.data, a.length));
}

/* ---- Equal: strings here, every other dtype in the binary kernel ---- */

static ductile_status dt_equal_prepare(const ductile_layer *L, void **params)
{
    return dt_cpu_ew_binary_kernel.prepare ? dt_cpu_ew_binary_kernel.prepare(L, params) : DUCTILE_OK;
}

static ductile_status dt_equal_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                       size_t *bytes)
{
    *bytes = 0;
    if (in[0].dtype == DUCTILE_STRING || !dt_cpu_ew_binary_kernel.scratch) return DUCTILE_OK;
    return dt_cpu_ew_binary_kernel.scratch(params, in, out, threads, bytes);
}

static ductile_status dt_equal_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    if (in[0].dtype != DUCTILE_STRING) return dt_cpu_ew_binary_kernel.run(params, in, out, ex);
    const ductile_string *a = in[0].data, *b = in[1].data;
    bool *y = out[0].data;
    int64_t n = dt_view_count(&out[0]);
    for (int64_t o = 0; o < n; o++) {
        int64_t ia, ib;
        dt_bcast_offsets(&out[0], &in[0], &in[1], o, &ia, &ib);
        y[o] = dt_str_eq(a[ia], b[ib]);
    }
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_equal_kernel = {.prepare = dt_equal_prepare, .scratch = dt_equal_scratch, .run = dt_equal_run};

/* ---- StringConcat ---- */

static ductile_status dt_concat_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const ductile_string *a = in[0].data, *b = in[1].data;
    ductile_string *y = out[0].data;
    int64_t n = dt_view_count(&out[0]);
    size_t total = 0;
    for (int64_t o = 0; o < n; o++) {
        int64_t ia, ib;
        dt_bcast_offsets(&out[0], &in[0], &in[1], o, &ia, &ib);
        size_t len = a[ia].length + b[ib].length;
        if (len < a[ia].length || total + len < total)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "element %lld: the concatenation's length overflows", (long long)o);
        total += len;
    }
    char *p = dt_str_bytes(ex, total);
    if (!p) return DUCTILE_ERR_OUT_OF_MEMORY;
    for (int64_t o = 0; o < n; o++) {
        int64_t ia, ib;
        dt_bcast_offsets(&out[0], &in[0], &in[1], o, &ia, &ib);
        size_t la = a[ia].length, lb = b[ib].length;
        if (la) memcpy(p, a[ia].data, la);
        if (lb) memcpy(p + la, b[ib].data, lb);
        y[o] = (ductile_string){la + lb ? p : NULL, la + lb};
        p += la + lb;
    }
    return DUCTILE_OK;
}

static const dt_kernel dt_cpu_strconcat_kernel = {.run = dt_concat_run};

/* ---- StringSplit ---- */

typedef struct dt_split_params {
    const char *delim;
    size_t dlen;
    int64_t maxsplit;
} dt_split_params;

static ductile_status dt_split_prepare(const ductile_layer *L, void **params)
{
    const dt_attr *d = dt_attr_find(L, "delimiter");
    dt_split_params p = {"", 0, dt_attr_int(L, "maxsplit", -1)};
    if (d && d->type == DT_ATTR_STRING && d->s) p = (dt_split_params){d->s, d->s_len, p.maxsplit};
    return dt_cpu_params_copy(&p, sizeof p, L, params);
}

static ductile_status dt_split_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_split_params *p = params;
    const ductile_string *x = in[0].data;
    ductile_string *y = out[0].data;
    int64_t *z = out[1].data, n = dt_view_count(&in[0]), w = out[0].dims[out[0].rank - 1];
    for (int64_t i = 0; i < n; i++) {
        ductile_string *row = y + i * w;
        int64_t k = dt_string_split(x[i], p->delim, p->dlen, p->maxsplit, row, w);
        if (k > w) return dt_fail(DUCTILE_ERR_INTERNAL, "element %lld splits into %lld pieces, output has room for %lld",
                                  (long long)i, (long long)k, (long long)w);
        for (int64_t j = k; j < w; j++) row[j] = (ductile_string){NULL, 0};
        z[i] = k;
    }
    return DUCTILE_OK;
}

static const dt_kernel dt_cpu_strsplit_kernel = {.prepare = dt_split_prepare, .run = dt_split_run};

/* ---- StringNormalizer ---- */

static ductile_status dt_norm_prepare(const ductile_layer *L, void **params)
{
    dt_strnorm_attrs a;
    DT_TRY(dt_strnorm_attrs_read(L, &a));
    return dt_cpu_params_copy(&a, sizeof a, L, params);
}

static ductile_status dt_norm_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_strnorm_attrs *a = params;
    const ductile_string *x = in[0].data;
    ductile_string *y = out[0].data;
    int64_t n = dt_view_count(&in[0]), cap = dt_view_count(&out[0]), k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (dt_strnorm_is_stop(a, x[i])) continue;
        if (k >= cap) return dt_fail(DUCTILE_ERR_INTERNAL, "more strings kept than the output holds (%lld)", (long long)cap);
        if (!a->action) {
            y[k++] = x[i];
            continue;
        }
        if (x[i].length > SIZE_MAX / 4) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "element %lld is too long", (long long)i);
        char *o = dt_str_bytes(ex, 4 * x[i].length);
        if (!o) return DUCTILE_ERR_OUT_OF_MEMORY;
        size_t bad = 0;
        int64_t len = dt_strnorm_case(a->action, x[i], o, &bad);
        if (len < 0)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 0 element %lld: invalid UTF-8 at byte %zu; a case change "
                           "needs UTF-8 text", (long long)i, bad);
        y[k++] = (ductile_string){len ? o : NULL, (size_t)len};
    }
    /* Every string a stopword: ONNX's one empty string. */
    for (; k < cap; k++) y[k] = (ductile_string){NULL, 0};
    return DUCTILE_OK;
}

static const dt_kernel dt_cpu_strnorm_kernel = {.prepare = dt_norm_prepare, .run = dt_norm_run};

/* ---- RegexFullMatch ----
 * regex_t holds memory of the C library's that the plan's dt_free cannot release, so the
 * params keep the translated pattern and the run compiles it (prepare compiles it once to
 * refuse what regcomp refuses, naming it, when the engine is loaded). */

typedef struct dt_regex_params {
    char posix[4096];
} dt_regex_params;

/* Compiled and run under C.UTF-8 (this thread only: uselocale), so that '.' and [^...] take
 * one code point as in RE2, whatever the process's locale. */
static ductile_status dt_regex_compile(const char *posix, regex_t *re)
{
    locale_t utf8 = dt_strings_utf8_locale(), old = utf8 ? uselocale(utf8) : (locale_t)0;
    int rc = regcomp(re, posix, REG_EXTENDED | REG_NOSUB);
    if (utf8) uselocale(old);
    if (rc) {
        char msg[200];
        regerror(rc, re, msg, sizeof msg);
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'pattern': the POSIX form '%s' is refused by regcomp: %s",
                       posix, msg);
    }
    return DUCTILE_OK;
}

static ductile_status dt_regex_prepare(const ductile_layer *L, void **params)
{
    dt_regex_params *p = dt_malloc(sizeof *p);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory preparing RegexFullMatch");
    ductile_status s = dt_regex_to_posix(dt_attr_string(L, "pattern", ""), p->posix, sizeof p->posix);
    regex_t re;
    if (!s && !(s = dt_regex_compile(p->posix, &re))) regfree(&re);
    if (s) {
        dt_free(p);
        return s;
    }
    *params = p;
    return DUCTILE_OK;
}

static ductile_status dt_regex_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_regex_params *p = params;
    const ductile_string *x = in[0].data;
    bool *y = out[0].data;
    int64_t n = dt_view_count(&in[0]);
    if (!n) return DUCTILE_OK;
    /* RE2 reads UTF-8; bytes that are not are refused rather than matched some other way. */
    for (int64_t i = 0; i < n; i++) {
        size_t bad = dt_utf8_invalid_at(x[i]);
        if (bad != SIZE_MAX)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 0 element %lld: invalid UTF-8 at byte %zu; "
                           "RegexFullMatch matches UTF-8 text", (long long)i, bad);
    }
    regex_t re;
    DT_TRY(dt_regex_compile(p->posix, &re));
    locale_t utf8 = dt_strings_utf8_locale(), old = utf8 ? uselocale(utf8) : (locale_t)0;
    for (int64_t i = 0; i < n; i++) {
        /* REG_STARTEND: the view's bounds, no NUL needed (glibc). */
        regmatch_t m = {0, (regoff_t)x[i].length};
        y[i] = regexec(&re, x[i].data ? x[i].data : "", 1, &m, REG_STARTEND) == 0;
    }
    if (utf8) uselocale(old);
    regfree(&re);
    return DUCTILE_OK;
}

static const dt_kernel dt_cpu_regex_kernel = {.prepare = dt_regex_prepare, .run = dt_regex_run};

/* ---- LabelEncoder ---- */

/* Keys as strings or as doubles (every numeric key dtype fits: int64 keys beyond 2^53 are not
 * told apart, which ONNX's int64 maps of labels never need), sorted for binary search; the
 * values as the bytes of their dtype. One blob: header, then the arrays. */
typedef struct dt_labels_params {
    bool str_keys;
    int64_t n;
    size_t es;                  /* bytes of one value */
    const ductile_string *keys; /* str_keys: sorted views into the layer's attributes */
    const double *nkeys;        /* else: sorted */
    const unsigned char *values;/* by sorted key */
    unsigned char dflt[sizeof(ductile_string)];
} dt_labels_params;

static double dt_num_at(const void *data, int dtype, int64_t i)
{
    switch (dtype) {
    case DUCTILE_INT64: return (double)((const int64_t *)data)[i];
    case DUCTILE_INT32: return ((const int32_t *)data)[i];
    case DUCTILE_INT16: return ((const int16_t *)data)[i];
    case DUCTILE_FLOAT32: return ((const float *)data)[i];
    case DUCTILE_FLOAT64: return ((const double *)data)[i];
    default: return NAN;
    }
}

static int dt_str_cmp(ductile_string a, ductile_string b)
{
    size_t n = a.length < b.length ? a.length : b.length;
    int c = n ? memcmp(a.data, b.data, n) : 0;
    return c ? c : (a.length > b.length) - (a.length < b.length);
}

/* NaN sorts last and equals NaN (ONNX maps a NaN key). */
static int dt_num_cmp(double a, double b)
{
    if (isnan(a) || isnan(b)) return isnan(a) - isnan(b);
    return (a > b) - (a < b);
}

typedef struct dt_key_ref {
    ductile_string s;
    double d;
    int64_t i;
} dt_key_ref;

static int dt_key_ref_cmp(const void *x, const void *y)
{
    const dt_key_ref *a = x, *b = y;
    int c = a->s.data || b->s.data || a->s.length || b->s.length ? dt_str_cmp(a->s, b->s) : dt_num_cmp(a->d, b->d);
    return c ? c : (a->i > b->i) - (a->i < b->i);
}

static ductile_status dt_labels_prepare(const ductile_layer *L, void **params)
{
    const dt_attr *kt = dt_attr_find(L, "keys_tensor"), *vt = dt_attr_find(L, "values_tensor");
    const dt_attr *ks = dt_attr_find(L, "keys_strings"), *ki = dt_attr_find(L, "keys_int64s"),
                  *kf = dt_attr_find(L, "keys_floats");
    const dt_attr *vs = dt_attr_find(L, "values_strings"), *vi = dt_attr_find(L, "values_int64s"),
                  *vf = dt_attr_find(L, "values_floats");
    int kdtype = kt ? kt->t->dtype : ks ? DUCTILE_STRING : ki ? DUCTILE_INT64 : DUCTILE_FLOAT32;
    int vdtype = vt ? vt->t->dtype : vs ? DUCTILE_STRING : vi ? DUCTILE_INT64 : DUCTILE_FLOAT32;
    int64_t n = kt ? dt_tensor_count(kt->t) : ks ? ks->n : ki ? ki->n : kf ? kf->n : 0;
    size_t es = ductile_dtype_size((ductile_dtype)vdtype);
    bool str = kdtype == DUCTILE_STRING;
    size_t head = (sizeof(dt_labels_params) + 15) & ~(size_t)15;
    size_t ksz = (size_t)n * (str ? sizeof(ductile_string) : sizeof(double));
    size_t total = head + ksz + (size_t)n * es + 16;
    dt_key_ref *refs = dt_malloc(((size_t)n + 1) * sizeof *refs);
    unsigned char *blob = dt_calloc(1, total);
    if (!refs || !blob) {
        dt_free(refs);
        dt_free(blob);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory preparing LabelEncoder (%lld keys)", (long long)n);
    }
    for (int64_t i = 0; i < n; i++) {
        refs[i] = (dt_key_ref){{NULL, 0}, 0, i};
        if (str) refs[i].s = kt ? ((const ductile_string *)kt->t->data)[i]
                                : (ductile_string){ks->strings[i], strlen(ks->strings[i])};
        else refs[i].d = kt ? dt_num_at(kt->t->data, kdtype, i) : ki ? (double)ki->ints[i] : kf->floats[i];
        /* an empty string key has data NULL and length 0 in both: compares as a string */
        if (str && !refs[i].s.data) refs[i].s.data = "";
    }
    if (n) qsort(refs, (size_t)n, sizeof *refs, dt_key_ref_cmp); /* prepare, not run: may allocate */
    dt_labels_params *p = (dt_labels_params *)blob;
    p->str_keys = str;
    p->n = n;
    p->es = es;
    unsigned char *k = blob + head, *v = k + ksz;
    for (int64_t j = 0; j < n; j++) {
        int64_t i = refs[j].i;
        if (str) ((ductile_string *)k)[j] = refs[j].s;
        else ((double *)k)[j] = refs[j].d;
        unsigned char *dst = v + (size_t)j * es;
        if (vt) memcpy(dst, (const unsigned char *)vt->t->data + (size_t)i * es, es);
        else if (vs) { ductile_string s = {vs->strings[i], strlen(vs->strings[i])}; memcpy(dst, &s, es); }
        else if (vi) memcpy(dst, &vi->ints[i], es);
        else memcpy(dst, &vf->floats[i], es);
    }
    if (str) p->keys = (const ductile_string *)k;
    else p->nkeys = (const double *)k;
    p->values = v;
    const dt_attr *dt = dt_attr_find(L, "default_tensor");
    if (dt) memcpy(p->dflt, dt->t->data, es);
    else if (vdtype == DUCTILE_STRING) {
        const char *s = dt_attr_string(L, "default_string", "_Unused");
        ductile_string d = {s, strlen(s)};
        memcpy(p->dflt, &d, es);
    } else if (vdtype == DUCTILE_INT64) {
        int64_t d = dt_attr_int(L, "default_int64", -1);
        memcpy(p->dflt, &d, es);
    } else {
        float d = dt_attr_float(L, "default_float", -0.0f);
        memcpy(p->dflt, &d, es);
    }
    dt_free(refs);
    *params = blob;
    return DUCTILE_OK;
}

static ductile_status dt_labels_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_labels_params *p = params;
    int64_t n = dt_view_count(&in[0]);
    unsigned char *y = out[0].data;
    for (int64_t i = 0; i < n; i++) {
        int64_t lo = 0, hi = p->n;
        ductile_string s = {NULL, 0};
        double d = 0;
        if (p->str_keys) s = ((const ductile_string *)in[0].data)[i];
        else d = dt_num_at(in[0].data, in[0].dtype, i);
        while (lo < hi) {
            int64_t m = lo + (hi - lo) / 2;
            int c = p->str_keys ? dt_str_cmp(p->keys[m], s) : dt_num_cmp(p->nkeys[m], d);
            if (c < 0) lo = m + 1;
            else hi = m;
        }
        bool hit = lo < p->n && (p->str_keys ? dt_str_cmp(p->keys[lo], s) == 0 : dt_num_cmp(p->nkeys[lo], d) == 0);
        memcpy(y + (size_t)i * p->es, hit ? p->values + (size_t)lo * p->es : p->dflt, p->es);
    }
    return DUCTILE_OK;
}

static const dt_kernel dt_cpu_labels_kernel = {.prepare = dt_labels_prepare, .run = dt_labels_run};

const dt_cpu_kernel dt_cpu_strings[] = {
    {"StringConcat", NULL, &dt_cpu_strconcat_kernel},
    {"StringSplit", NULL, &dt_cpu_strsplit_kernel},
    {"StringNormalizer", NULL, &dt_cpu_strnorm_kernel},
    {"RegexFullMatch", NULL, &dt_cpu_regex_kernel},
    {"LabelEncoder", NULL, &dt_cpu_labels_kernel},
    {NULL, NULL, NULL},
};
