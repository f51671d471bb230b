/* The string op family: check and infer of StringNormalizer, StringConcat, StringSplit,
 * RegexFullMatch and ai.onnx.ml's LabelEncoder, and which ops may touch string tensors. */
#include "ops/strings.h"
#include "ops/families.h"
#include "ops/shape.h"
#include "core/dtype.h"
#include "core/status.h"

#include <locale.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wctype.h>

/* ---- which ops take strings ---- */

static const char *const dt_string_ops[] = {
    /* moves or reshapes elements: views are copied like any 16-byte element */
    "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Gather", "Transpose",
    "Slice", "Expand", "Split", "Tile", "Shape", "Size",
    /* computes on strings */
    "Equal", "Cast", "CastLike", "StringNormalizer", "StringConcat", "StringSplit", "RegexFullMatch", "LabelEncoder",
};

static bool dt_takes_strings(const char *op)
{
    for (size_t i = 0; i < sizeof dt_string_ops / sizeof dt_string_ops[0]; i++)
        if (!strcmp(dt_string_ops[i], op)) return true;
    return false;
}

ductile_status dt_strings_check_layer(const ductile_layer *L)
{
    if (dt_takes_strings(L->op_type)) return DUCTILE_OK;
    for (int k = 0; k < L->n_in; k++)
        if (L->in[k] && L->in[k]->dtype == DUCTILE_STRING)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input %d ('%s') has dtype string; %s does not take strings", k,
                           L->in[k]->name, L->op_type);
    for (int k = 0; k < L->n_out; k++)
        if (L->out[k] && L->out[k]->dtype == DUCTILE_STRING)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "output %d ('%s') has dtype string; %s does not make strings", k,
                           L->out[k]->name, L->op_type);
    return DUCTILE_OK;
}

bool dt_strings_makes_bytes(const ductile_layer *L)
{
    if (!strcmp(L->op_type, "StringConcat") || !strcmp(L->op_type, "StringNormalizer")) return true;
    if (!strcmp(L->op_type, "Cast")) return dt_attr_int(L, "to", 0) == DUCTILE_STRING;
    return !strcmp(L->op_type, "CastLike") && L->n_in > 1 && L->in[1] && L->in[1]->dtype == DUCTILE_STRING;
}

static bool dt_castable(int t)
{
    switch (t) {
    case DUCTILE_STRING: case DUCTILE_BOOL: case DUCTILE_FLOAT16: case DUCTILE_FLOAT32: case DUCTILE_FLOAT64:
    case DUCTILE_INT8: case DUCTILE_INT16: case DUCTILE_INT32: case DUCTILE_INT64:
    case DUCTILE_UINT8: case DUCTILE_UINT16: case DUCTILE_UINT32: case DUCTILE_UINT64: return true;
    default: return false;
    }
}

ductile_status dt_strings_cast_pair(int from, int to)
{
    if (dt_castable(from == DUCTILE_STRING ? to : from)) return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_UNSUPPORTED, "Cast from %s to %s is not supported (strings cast to and from "
                   "float16, float32, float64, the integer types and bool)",
                   ductile_dtype_name((ductile_dtype)from), ductile_dtype_name((ductile_dtype)to));
}

static const char *dt_in_name(const ductile_layer *L, int i) { return i < L->n_in && L->in[i] ? L->in[i]->name : ""; }

static ductile_status dt_want_string(const ductile_layer *L, const dt_view *in, int i)
{
    if (in[i].dtype != DUCTILE_STRING)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input %d ('%s') has dtype %s; expected string", i,
                       dt_in_name(L, i), ductile_dtype_name((ductile_dtype)in[i].dtype));
    return DUCTILE_OK;
}

/* ---- StringNormalizer ---- */

ductile_status dt_strnorm_attrs_read(const ductile_layer *L, dt_strnorm_attrs *a)
{
    const char *act = dt_attr_string(L, "case_change_action", "NONE");
    a->action = !strcmp(act, "NONE") ? 0 : !strcmp(act, "LOWER") ? 1 : !strcmp(act, "UPPER") ? 2 : -1;
    if (a->action < 0)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attribute 'case_change_action' = '%s'; expected \"NONE\", \"LOWER\" or \"UPPER\"", act);
    int64_t cs = dt_attr_int(L, "is_case_sensitive", 0);
    if (cs != 0 && cs != 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'is_case_sensitive' = %lld; expected 0 or 1",
                       (long long)cs);
    a->case_sensitive = cs;
    /* Case changes follow Unicode's simple mappings (C.UTF-8), which is what en_US gives. */
    const char *loc = dt_attr_string(L, "locale", "");
    if (loc[0] && strcmp(loc, "en_US") && strcmp(loc, "en_US.UTF-8") && strcmp(loc, "C") && strcmp(loc, "C.UTF-8"))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'locale' = '%s' is not supported (ductile supports en_US, en_US.UTF-8, C and C.UTF-8)", loc);
    const dt_attr *sw = dt_attr_find(L, "stopwords");
    a->n_stop = sw && sw->type == DT_ATTR_STRINGS ? sw->n : 0;
    a->stop = a->n_stop ? sw->strings : NULL;
    return DUCTILE_OK;
}

static locale_t dt_utf8_locale;
static pthread_once_t dt_utf8_once = PTHREAD_ONCE_INIT;
static void dt_utf8_locale_init(void) { dt_utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0); }

locale_t dt_strings_utf8_locale(void)
{
    pthread_once(&dt_utf8_once, dt_utf8_locale_init);
    return dt_utf8_locale;
}

/* The next code point of s at *i, or -1 for invalid UTF-8 (overlong, surrogate, truncated). */
static int32_t dt_utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned c = s[*i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || *i + (size_t)len > n) return -1;
    int32_t cp = len == 1 ? (int32_t)c : (int32_t)(c & (0x7f >> len));
    for (int k = 1; k < len; k++) {
        unsigned d = s[*i + (size_t)k];
        if ((d >> 6) != 2) return -1;
        cp = cp << 6 | (int32_t)(d & 0x3f);
    }
    static const int32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
    *i += (size_t)len;
    return cp;
}

size_t dt_utf8_invalid_at(ductile_string s)
{
    size_t i = 0;
    while (i < s.length) {
        size_t at = i;
        if (dt_utf8_next((const unsigned char *)s.data, s.length, &i) < 0) return at;
    }
    return SIZE_MAX;
}

static size_t dt_utf8_put(int32_t cp, char *o)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int32_t dt_case_cp(int action, int32_t cp)
{
    if (cp < 0x80) {
        if (action == 1 && cp >= 'A' && cp <= 'Z') return cp + 32;
        if (action == 2 && cp >= 'a' && cp <= 'z') return cp - 32;
        return cp;
    }
    locale_t loc = dt_strings_utf8_locale();
    if (!loc) return cp; /* no C.UTF-8 here: ASCII only */
    wint_t r = action == 1 ? towlower_l((wint_t)cp, loc) : towupper_l((wint_t)cp, loc);
    return r > 0x10ffff ? cp : (int32_t)r;
}

int64_t dt_strnorm_case(int action, ductile_string s, char *out, size_t *bad)
{
    const unsigned char *p = (const unsigned char *)s.data;
    size_t i = 0, o = 0;
    while (i < s.length) {
        size_t at = i;
        int32_t cp = dt_utf8_next(p, s.length, &i);
        if (cp < 0) {
            *bad = at;
            return -1;
        }
        o += dt_utf8_put(action ? dt_case_cp(action, cp) : cp, out + o);
    }
    return (int64_t)o;
}

/* Compares a and b after lowering both (invalid UTF-8 compares bytewise). */
static bool dt_equal_folded(const unsigned char *a, size_t na, const unsigned char *b, size_t nb)
{
    size_t i = 0, j = 0;
    while (i < na && j < nb) {
        size_t i0 = i, j0 = j;
        int32_t x = dt_utf8_next(a, na, &i), y = dt_utf8_next(b, nb, &j);
        if (x < 0 || y < 0) return na - i0 == nb - j0 && !memcmp(a + i0, b + j0, na - i0);
        if (dt_case_cp(1, x) != dt_case_cp(1, y)) return false;
    }
    return i == na && j == nb;
}

bool dt_strnorm_is_stop(const dt_strnorm_attrs *a, ductile_string s)
{
    for (int64_t k = 0; k < a->n_stop; k++) {
        size_t n = strlen(a->stop[k]);
        if (a->case_sensitive ? n == s.length && (!n || !memcmp(a->stop[k], s.data, n))
                              : dt_equal_folded((const unsigned char *)a->stop[k], n, (const unsigned char *)s.data, s.length))
            return true;
    }
    return false;
}

static ductile_status dt_strnorm_check(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 1, 1, NULL));
    dt_strnorm_attrs a;
    return dt_strnorm_attrs_read(L, &a);
}

/* [C] or [1, C] in; the kept strings out, [C'] or [1, C'], and one "" when none is kept. */
static ductile_status dt_strnorm_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_string(L, in, 0));
    /* C >= 1 as onnxruntime asks: the output's one "" for "nothing kept" needs a C to stand in. */
    if (!(in[0].rank == 1 || (in[0].rank == 2 && in[0].dims[0] == 1)) || in[0].dims[in[0].rank - 1] < 1) {
        char s[160];
        dt_format_dims(s, sizeof s, in[0].dims, in[0].rank, NULL);
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 ('%s') has shape %s; expected [C] or [1, C] with C >= 1",
                       dt_in_name(L, 0), s);
    }
    dt_strnorm_attrs a;
    DT_TRY(dt_strnorm_attrs_read(L, &a));
    int64_t n = dt_view_count(&in[0]), kept = n;
    if (a.n_stop) {
        DT_TRY(dt_shape_need_value(L, in, 0));
        const ductile_string *v = in[0].data;
        kept = 0;
        for (int64_t i = 0; i < n; i++) kept += !dt_strnorm_is_stop(&a, v[i]);
    }
    out[0] = in[0];
    out[0].data = NULL;
    out[0].dims[out[0].rank - 1] = kept ? kept : 1;
    return DUCTILE_OK;
}

/* ---- StringConcat ---- */

static ductile_status dt_strconcat_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_check_arity(L, 2, 2, 1, 1, NULL));
    DT_TRY(dt_want_string(L, in, 0));
    DT_TRY(dt_want_string(L, in, 1));
    DT_TRY(dt_broadcast(&in[0], &in[1], &out[0]));
    out[0].dtype = DUCTILE_STRING;
    out[0].data = NULL;
    return DUCTILE_OK;
}

static ductile_status dt_strconcat_check(const ductile_layer *L) { return dt_check_arity(L, 2, 2, 1, 1, NULL); }

/* ---- StringSplit ---- */

static bool dt_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

int64_t dt_string_split(ductile_string s, const char *delim, size_t dlen, int64_t maxsplit,
                        ductile_string *out, int64_t cap)
{
    const char *p = s.data, *end = s.data + s.length;
    int64_t n = 0;
#define DT_PIECE(b, e) do { if (n < cap && out) out[n] = (ductile_string){(b), (size_t)((e) - (b))}; n++; } while (0)
    if (!s.length) return 0; /* onnxruntime: no pieces (Python's "".split("-") has one) */
    if (!dlen) {
        while (p < end && dt_space((unsigned char)*p)) p++;
        while (p < end) {
            if (maxsplit >= 0 && n == maxsplit) {
                /* the rest, its trailing whitespace dropped as onnxruntime does (Python keeps it) */
                const char *e = end;
                while (e > p && dt_space((unsigned char)e[-1])) e--;
                DT_PIECE(p, e);
                return n;
            }
            const char *b = p;
            while (p < end && !dt_space((unsigned char)*p)) p++;
            DT_PIECE(b, p);
            while (p < end && dt_space((unsigned char)*p)) p++;
        }
        return n;
    }
    for (;;) {
        const char *hit = NULL;
        if (maxsplit < 0 || n < maxsplit)
            for (const char *q = p; q + dlen <= end; q++)
                if (!memcmp(q, delim, dlen)) { hit = q; break; }
        if (!hit) { DT_PIECE(p, end); return n; }
        DT_PIECE(p, hit);
        p = hit + dlen;
    }
#undef DT_PIECE
}

static ductile_status dt_strsplit_check(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 2, 2, NULL));
    const dt_attr *m = dt_attr_find(L, "maxsplit");
    if (m && (m->type != DT_ATTR_INT || m->i < 0))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'maxsplit' = %lld; expected an int >= 0",
                       (long long)(m->type == DT_ATTR_INT ? m->i : -1));
    return DUCTILE_OK;
}

/* Y: the input's dims and the most pieces of any element (padded with ""); Z: the counts. */
static ductile_status dt_strsplit_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_string(L, in, 0));
    if (in[0].rank >= DT_MAX_DIMS)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 ('%s') has rank %d; StringSplit's output adds a dim and "
                       "ductile holds at most %d", dt_in_name(L, 0), in[0].rank, DT_MAX_DIMS);
    int64_t n = dt_view_count(&in[0]), most = 0;
    if (n) {
        DT_TRY(dt_shape_need_value(L, in, 0));
        const dt_attr *d = dt_attr_find(L, "delimiter");
        const char *delim = d && d->type == DT_ATTR_STRING && d->s ? d->s : "";
        size_t dlen = d && d->type == DT_ATTR_STRING ? d->s_len : 0;
        int64_t maxsplit = dt_attr_int(L, "maxsplit", -1);
        const ductile_string *v = in[0].data;
        for (int64_t i = 0; i < n; i++) {
            int64_t k = dt_string_split(v[i], delim, dlen, maxsplit, NULL, 0);
            if (k > most) most = k;
        }
    }
    out[0] = in[0];
    out[0].data = NULL;
    out[0].dims[out[0].rank++] = most;
    out[1] = in[0];
    out[1].data = NULL;
    out[1].dtype = DUCTILE_INT64;
    return DUCTILE_OK;
}

/* ---- RegexFullMatch ---- */

static ductile_status dt_regex_check(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 1, 1, NULL));
    const dt_attr *p = dt_attr_find(L, "pattern");
    if (!p || p->type != DT_ATTR_STRING)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'pattern' (a string) is required");
    char buf[4096];
    ductile_status s = dt_regex_to_posix(p->s, buf, sizeof buf);
    return s ? dt_fail_prefix(s, "attribute 'pattern' ('%s')", p->s) : DUCTILE_OK;
}

static ductile_status dt_regex_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_string(L, in, 0));
    out[0] = in[0];
    out[0].data = NULL;
    out[0].dtype = DUCTILE_BOOL;
    return DUCTILE_OK;
}

/* ---- LabelEncoder (ai.onnx.ml, opsets 1..4) ---- */

/* The key or value side: a tensor attribute, or the list attribute of its type. */
static int dt_labels_side(const ductile_layer *L, const char *side, int64_t *n)
{
    char name[32];
    snprintf(name, sizeof name, "%s_tensor", side);
    const dt_attr *a = dt_attr_find(L, name);
    if (a && a->type == DT_ATTR_TENSOR && a->t) {
        *n = a->t->rank < 0 ? 0 : dt_tensor_count(a->t);
        return a->t->dtype;
    }
    static const char *const suffix[] = {"strings", "int64s", "floats"};
    static const int dtype[] = {DUCTILE_STRING, DUCTILE_INT64, DUCTILE_FLOAT32};
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "%s_%s", side, suffix[k]);
        a = dt_attr_find(L, name);
        if (a) {
            *n = a->n;
            return dtype[k];
        }
    }
    *n = 0;
    return 0;
}

static ductile_status dt_labels_check(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 1, 1, NULL));
    if (strcmp(L->domain ? L->domain : "", "ai.onnx.ml"))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "LabelEncoder is an op of domain ai.onnx.ml, not '%s'", L->domain);
    int64_t nk, nv;
    int kt = dt_labels_side(L, "keys", &nk), vt = dt_labels_side(L, "values", &nv);
    if (!kt) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "no keys: expected keys_tensor, keys_strings, keys_int64s or keys_floats");
    if (!vt) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "no values: expected values_tensor, values_strings, values_int64s or values_floats");
    if (nk != nv)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%lld keys and %lld values; expected as many of each",
                       (long long)nk, (long long)nv);
    if (kt != DUCTILE_STRING && kt != DUCTILE_INT64 && kt != DUCTILE_FLOAT32 && kt != DUCTILE_INT32 &&
        kt != DUCTILE_INT16 && kt != DUCTILE_FLOAT64)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "keys of dtype %s are not supported (string, int64, int32, int16, "
                       "float32, float64)", ductile_dtype_name((ductile_dtype)kt));
    const dt_attr *dflt = dt_attr_find(L, "default_tensor");
    if (dflt && (dflt->type != DT_ATTR_TENSOR || !dflt->t || dflt->t->dtype != vt || dt_tensor_count(dflt->t) != 1))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'default_tensor' must hold one value of the values' "
                       "dtype (%s)", ductile_dtype_name((ductile_dtype)vt));
    return DUCTILE_OK;
}

static ductile_status dt_labels_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    int64_t nk;
    int kt = dt_labels_side(L, "keys", &nk), vt = dt_labels_side(L, "values", &nk);
    bool kstr = kt == DUCTILE_STRING, instr = in[0].dtype == DUCTILE_STRING;
    if (kstr != instr || (!kstr && !dt_dtype_numeric(in[0].dtype)))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 0 ('%s') has dtype %s; the keys are %s",
                       dt_in_name(L, 0), ductile_dtype_name((ductile_dtype)in[0].dtype),
                       ductile_dtype_name((ductile_dtype)kt));
    out[0] = in[0];
    out[0].data = NULL;
    out[0].dtype = vt;
    return DUCTILE_OK;
}

const dt_opdef dt_ops_strings[] = {
    {"StringNormalizer", dt_strnorm_check, dt_strnorm_infer, 1u << 0},
    {"StringConcat", dt_strconcat_check, dt_strconcat_infer, 0},
    {"StringSplit", dt_strsplit_check, dt_strsplit_infer, 1u << 0},
    {"RegexFullMatch", dt_regex_check, dt_regex_infer, 0},
    {"LabelEncoder", dt_labels_check, dt_labels_infer, 0},
    {NULL, NULL, NULL, 0},
};
