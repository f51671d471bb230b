/* Engine reader: the bytes described in format/format.h -> network + profiles.
 *
 * The bytes are untrusted. Every count, offset, size and index is checked against what is
 * left before it is used, so a count can never make the reader allocate more than the file
 * could describe, and no read leaves the buffer. Errors name the section and the absolute
 * byte offset of the field at fault. */
#include "format/format.h"
#include "core/alloc.h"
#include "runtime/engine_read.h"
#include "format/checksum.h"
#include "core/checked.h"
#include "core/dtype.h"
#include "format/strings.h"
#include "core/status.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DT_NSEC = 9 }; /* section ids 1..8; 8 (SUBGRAPHS) is optional */
/* Subgraphs nest as engine images inside engine images; each level is smaller, and this bounds
 * the recursion of a crafted file. */
enum { DT_MAX_NESTING = 32 };

static const char *const dt_section_names[DT_NSEC] = {"?", "STRINGS", "TENSORS", "LAYERS",
                                                      "IO", "PROFILES", "BLOBS", "TARGET",
                                                      "SUBGRAPHS"};

typedef struct dt_reader {
    const unsigned char *base;
    size_t size;
    size_t sec_off[DT_NSEC], sec_size[DT_NSEC];
    bool have[DT_NSEC];
    uint32_t n_strings;
    const char **str;        /* into base; NUL-terminated */
    uint32_t *str_len;
    ductile_network *net;
    uint32_t *tflags;        /* per tensor: its record's flags */
    bool *ready;             /* per tensor: has a value before the current layer */
    uint32_t hflags;         /* the header's flags (DT_ENGINE_FLAG_*) */
    unsigned flags;          /* dt_engine_read_ex's, for the subgraphs */
    int depth;               /* nesting of this image inside SUBGRAPHS sections */
} dt_reader;

static ductile_status dt_read_image(const void *data, size_t size, unsigned flags, int depth, ductile_network **net,
                                    ductile_profile **profiles, int *n_profiles, dt_engine_target *target);

/* A position inside one section. */
typedef struct dt_cur {
    dt_reader *r;
    int sec;
    size_t pos, end;         /* absolute byte offsets */
} dt_cur;

static ductile_status dt_read_subgraph(dt_cur *c, size_t at, uint32_t idx, ductile_network **out);

static uint32_t dt_ld32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t dt_ld64(const unsigned char *p) { return dt_ld32(p) | (uint64_t)dt_ld32(p + 4) << 32; }

/* "engine section <NAME> at byte offset <at>: <message>" */
__attribute__((format(printf, 3, 4))) static ductile_status dt_bad(const dt_cur *c, size_t at,
                                                                   const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dt_fail(DUCTILE_ERR_FORMAT, "engine section %s at byte offset %zu: %s",
                   dt_section_names[c->sec], at, msg);
}

/* Checks that n more bytes (n from the file: any value) are left in the section. */
static ductile_status dt_need(const dt_cur *c, uint64_t n, const char *what)
{
    if (n > c->end - c->pos)
        return dt_bad(c, c->pos, "truncated: %s needs %" PRIu64 " bytes, %zu left in the section",
                      what, n, c->end - c->pos);
    return DUCTILE_OK;
}

/* n * each more bytes, with the product checked. */
static ductile_status dt_need_n(const dt_cur *c, uint64_t n, uint64_t each, const char *what)
{
    uint64_t total;
    if (__builtin_mul_overflow(n, each, &total))
        return dt_bad(c, c->pos, "%s: count %" PRIu64 " is too large", what, n);
    return dt_need(c, total, what);
}

/* Readers after dt_need; they still stop at the section end, returning 0, so a missed
 * dt_need is a wrong message and never a read outside the buffer. */
static uint32_t dt_u32(dt_cur *c)
{
    if (c->end - c->pos < 4) {
        c->pos = c->end;
        return 0;
    }
    uint32_t v = dt_ld32(c->r->base + c->pos);
    c->pos += 4;
    return v;
}

static uint64_t dt_u64(dt_cur *c)
{
    if (c->end - c->pos < 8) {
        c->pos = c->end;
        return 0;
    }
    uint64_t v = dt_ld64(c->r->base + c->pos);
    c->pos += 8;
    return v;
}

static int32_t dt_i32(dt_cur *c) { return (int32_t)dt_u32(c); }
static int64_t dt_i64(dt_cur *c) { return (int64_t)dt_u64(c); }

static dt_cur dt_section(dt_reader *r, int sec)
{
    dt_cur c = {r, sec, r->sec_off[sec], r->sec_off[sec] + r->sec_size[sec]};
    return c;
}

static ductile_status dt_section_end(const dt_cur *c)
{
    if (c->pos != c->end)
        return dt_bad(c, c->pos, "%zu unexpected bytes after the last record", c->end - c->pos);
    return DUCTILE_OK;
}

static ductile_status dt_oom(void) { return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory reading an engine"); }

/* ---- strings ---- */

static ductile_status dt_read_strings(dt_reader *r)
{
    dt_cur c = dt_section(r, DT_SECTION_STRINGS);
    DT_TRY(dt_need(&c, 4, "the string count"));
    uint32_t n = dt_u32(&c);
    DT_TRY(dt_need_n(&c, n, 5, "the strings")); /* each at least a length and a NUL */
    if (n == DT_ENGINE_NO_STRING) return dt_bad(&c, c.pos - 4, "string count 0x%08x is reserved", n);
    r->str = dt_malloc(sizeof *r->str * ((size_t)n + 1));
    r->str_len = dt_malloc(sizeof *r->str_len * ((size_t)n + 1));
    if (!r->str || !r->str_len) return dt_oom();
    for (uint32_t i = 0; i < n; i++) {
        DT_TRY(dt_need(&c, 4, "a string length"));
        size_t at = c.pos;
        uint32_t len = dt_u32(&c);
        DT_TRY(dt_need(&c, (uint64_t)len + 1, "a string"));
        if (r->base[c.pos + len] != 0)
            return dt_bad(&c, c.pos + len, "string %" PRIu32 " (length %" PRIu32 ", at %zu) is not NUL-terminated",
                          i, len, at);
        r->str[i] = (const char *)r->base + c.pos;
        r->str_len[i] = len;
        c.pos += (size_t)len + 1;
    }
    r->n_strings = n;
    return dt_section_end(&c);
}

/* A string by index at the cursor. none_ok: DT_ENGINE_NO_STRING gives NULL. name: no NUL
 * inside (names are C strings). */
static ductile_status dt_str(dt_cur *c, const char *what, bool none_ok, bool name, const char **out,
                             size_t *len)
{
    size_t at = c->pos;
    DT_TRY(dt_need(c, 4, what));
    uint32_t i = dt_u32(c);
    *out = NULL;
    if (len) *len = 0;
    if (i == DT_ENGINE_NO_STRING && none_ok) return DUCTILE_OK;
    if (i >= c->r->n_strings)
        return dt_bad(c, at, "%s: string index %" PRIu32 " out of range (%" PRIu32 " strings)", what, i,
                      c->r->n_strings);
    if (name && strlen(c->r->str[i]) != c->r->str_len[i])
        return dt_bad(c, at, "%s: string %" PRIu32 " holds a NUL byte, not allowed in a name", what, i);
    *out = c->r->str[i];
    if (len) *len = c->r->str_len[i];
    return DUCTILE_OK;
}

/* An arena copy of a name string (NULL stays NULL). */
static ductile_status dt_name(dt_cur *c, const char *what, bool none_ok, const char **out)
{
    const char *s;
    DT_TRY(dt_str(c, what, none_ok, true, &s, NULL));
    *out = NULL;
    if (!s) return DUCTILE_OK;
    *out = dt_arena_strdup(&c->r->net->arena, s);
    return *out ? DUCTILE_OK : dt_oom();
}

/* ---- tensors ---- */

/* A STRING constant: views (in the engine's arena) into its blob (format/strings.h). */
static ductile_status dt_read_string_blob(dt_cur *c, ductile_tensor *t, const char *nm, int64_t count,
                                          uint64_t off, uint64_t size, size_t at)
{
    dt_reader *r = c->r;
    uint64_t end;
    if (off % DT_ENGINE_BLOB_ALIGN || __builtin_add_overflow(off, size, &end) ||
        end > r->sec_size[DT_SECTION_BLOBS])
        return dt_bad(c, at, "tensor '%s': blob at %" PRIu64 " (+%" PRIu64 " bytes) is not a 64-byte-aligned range of BLOBS (%zu bytes)",
                      nm, off, size, r->sec_size[DT_SECTION_BLOBS]);
    size_t nbytes;
    if (!dt_mul_size((size_t)count, sizeof(ductile_string), &nbytes))
        return dt_bad(c, at, "tensor '%s': %" PRId64 " strings are too many", nm, count);
    ductile_string *v = dt_arena_alloc(&r->net->arena, nbytes ? nbytes : 1);
    if (!v) return dt_oom();
    const unsigned char *blob = r->base + r->sec_off[DT_SECTION_BLOBS] + off;
    uint64_t bad_at = 0;
    ductile_status s = dt_strings_blob_read(blob, size, count, v, &bad_at);
    if (s)
        return dt_fail_prefix(s, "engine section BLOBS at byte offset %" PRIu64 ": tensor '%s'",
                              (uint64_t)r->sec_off[DT_SECTION_BLOBS] + off + bad_at, nm);
    t->data = v;
    t->nbytes = nbytes;
    return DUCTILE_OK;
}

/* One tensor record into t (name excluded: returned in *name); graph: a TENSORS entry (flags
 * input/output allowed), else an attribute tensor. */
static ductile_status dt_read_tensor(dt_cur *c, ductile_tensor *t, const char **name, uint32_t *flags,
                                     bool graph)
{
    dt_reader *r = c->r;
    size_t rec = c->pos;
    DT_TRY(dt_need(c, DT_ENGINE_TENSOR_RECORD, "a tensor record"));
    DT_TRY(dt_str(c, "tensor name", !graph, true, name, NULL));
    const char *nm = *name ? *name : "(unnamed)";
    t->dtype = dt_i32(c);
    t->rank = dt_i32(c);
    *flags = dt_u32(c);
    uint32_t allowed = DT_ENGINE_TENSOR_DATA |
                       (graph ? DT_ENGINE_TENSOR_INPUT | DT_ENGINE_TENSOR_OUTPUT | DT_ENGINE_TENSOR_KIND : 0);
    if (*flags & ~allowed)
        return dt_bad(c, rec + 12, "tensor '%s': flags 0x%" PRIx32 " has unknown bits", nm, *flags);
    bool has_data = *flags & DT_ENGINE_TENSOR_DATA;
    t->kind = (int)((*flags & DT_ENGINE_TENSOR_KIND) >> DT_ENGINE_TENSOR_KIND_SHIFT);
    if (t->kind && (has_data || t->rank != 0))
        return dt_bad(c, rec + 12, "tensor '%s': a sequence or optional (flags 0x%" PRIx32 ") has rank 0 and no data", nm,
                      *flags);
    if (t->rank < -1 || t->rank > DT_MAX_DIMS)
        return dt_bad(c, rec + 8, "tensor '%s': rank %d is not in -1..%d", nm, t->rank, DT_MAX_DIMS);
    if (has_data ? !dt_dtype_valid(t->dtype) : (t->dtype != 0 && !dt_dtype_valid(t->dtype)))
        return dt_bad(c, rec + 4, "tensor '%s': dtype %d is not a supported type", nm, t->dtype);
    if (t->dtype == DUCTILE_STRING && !(r->hflags & DT_ENGINE_FLAG_STRINGS))
        return dt_bad(c, rec + 4, "tensor '%s': dtype string without the header's flag 0x%x (strings)", nm,
                      (unsigned)DT_ENGINE_FLAG_STRINGS);
    for (int i = 0; i < DT_MAX_DIMS; i++) {
        size_t at = c->pos;
        t->dims[i] = dt_i64(c);
        if (i < t->rank ? t->dims[i] < -1 : t->dims[i] != 0)
            return dt_bad(c, at, "tensor '%s': dim %d is %" PRId64 " (rank %d)", nm, i, t->dims[i], t->rank);
    }
    for (int i = 0; i < DT_MAX_DIMS; i++) {
        if (i >= t->rank) {
            size_t at = c->pos;
            if (dt_u32(c) != DT_ENGINE_NO_STRING)
                return dt_bad(c, at, "tensor '%s': a symbol for dim %d beyond rank %d", nm, i, t->rank);
            continue;
        }
        DT_TRY(dt_name(c, "dim symbol", true, &t->dim_sym[i]));
    }
    size_t at = c->pos;
    uint64_t off = dt_u64(c), size = dt_u64(c);
    if (!has_data) {
        if (off || size) return dt_bad(c, at, "tensor '%s': blob offset/size without data", nm);
        return DUCTILE_OK;
    }
    int64_t count;
    uint64_t want;
    if (t->rank < 0 || !dt_dims_product(t->dims, t->rank, &count))
        return dt_bad(c, rec + 8, "tensor '%s': constant data needs known dims", nm);
    if (t->dtype == DUCTILE_STRING) return dt_read_string_blob(c, t, nm, count, off, size, at);
    if (__builtin_mul_overflow((uint64_t)count, (uint64_t)ductile_dtype_size((ductile_dtype)t->dtype), &want) ||
        want != size)
        return dt_bad(c, at + 8, "tensor '%s': blob size %" PRIu64 " is not %" PRId64 " elements of %s", nm,
                      size, count, ductile_dtype_name((ductile_dtype)t->dtype));
    uint64_t end;
    if (off % DT_ENGINE_BLOB_ALIGN || __builtin_add_overflow(off, size, &end) ||
        end > r->sec_size[DT_SECTION_BLOBS])
        return dt_bad(c, at, "tensor '%s': blob at %" PRIu64 " (+%" PRIu64 " bytes) is not a 64-byte-aligned range of BLOBS (%zu bytes)",
                      nm, off, size, r->sec_size[DT_SECTION_BLOBS]);
    t->data = r->base + r->sec_off[DT_SECTION_BLOBS] + off;
    t->nbytes = (size_t)size;
    return DUCTILE_OK;
}

static ductile_status dt_read_tensors(dt_reader *r)
{
    dt_cur c = dt_section(r, DT_SECTION_TENSORS);
    DT_TRY(dt_need(&c, 4, "the tensor count"));
    uint32_t n = dt_u32(&c);
    DT_TRY(dt_need_n(&c, n, DT_ENGINE_TENSOR_RECORD, "the tensor records"));
    if (n > INT_MAX) return dt_bad(&c, c.pos - 4, "tensor count %" PRIu32 " is too large", n);
    r->tflags = dt_calloc((size_t)n + 1, sizeof *r->tflags);
    r->ready = dt_calloc((size_t)n + 1, sizeof *r->ready);
    if (!r->tflags || !r->ready) return dt_oom();
    for (uint32_t i = 0; i < n; i++) {
        size_t at = c.pos;
        ductile_tensor tmp;
        const char *name;
        memset(&tmp, 0, sizeof tmp);
        DT_TRY(dt_read_tensor(&c, &tmp, &name, &r->tflags[i], true));
        ductile_tensor *t = dt_network_add_tensor(r->net, name);
        if (!t) {
            if (dt_network_find(r->net, name))
                return dt_bad(&c, at, "tensor %" PRIu32 ": name '%s' is used twice", i, name);
            return dt_oom();
        }
        t->dtype = tmp.dtype;
        t->rank = tmp.rank;
        memcpy(t->dims, tmp.dims, sizeof t->dims);
        memcpy(t->dim_sym, tmp.dim_sym, sizeof t->dim_sym);
        t->data = tmp.data;
        t->nbytes = tmp.nbytes;
        t->kind = tmp.kind;
        r->ready[i] = t->data != NULL;
    }
    return dt_section_end(&c);
}

/* ---- I/O ---- */

/* Reads one I/O list and checks it against the tensors' flags. */
static ductile_status dt_read_io_list(dt_cur *c, uint32_t n, bool outputs)
{
    dt_reader *r = c->r;
    ductile_network *net = r->net;
    uint32_t bit = outputs ? DT_ENGINE_TENSOR_OUTPUT : DT_ENGINE_TENSOR_INPUT;
    const char *what = outputs ? "output" : "input";
    for (uint32_t k = 0; k < n; k++) {
        size_t at = c->pos;
        int32_t x = dt_i32(c);
        if (x < 0 || x >= net->n_tensors)
            return dt_bad(c, at, "%s %" PRIu32 ": tensor index %" PRId32 " out of range (%d tensors)", what, k, x,
                          net->n_tensors);
        ductile_tensor *t = net->tensors[x];
        if (!(r->tflags[x] & bit) || (outputs ? t->is_output : t->is_input))
            return dt_bad(c, at, "%s %" PRIu32 ": tensor '%s' is %s", what, k, t->name,
                          (r->tflags[x] & bit) ? "listed twice" : "not flagged as one in TENSORS");
        DT_TRY(outputs ? dt_network_add_output(net, t) : dt_network_add_input(net, t));
        if (!outputs) r->ready[x] = true;
    }
    return DUCTILE_OK;
}

static ductile_status dt_read_io(dt_reader *r)
{
    dt_cur c = dt_section(r, DT_SECTION_IO);
    DT_TRY(dt_need(&c, 16, "the I/O counts"));
    uint32_t n_in = dt_u32(&c), n_out = dt_u32(&c);
    r->net->opset = dt_i32(&c);
    if (dt_u32(&c) != 0) return dt_bad(&c, c.pos - 4, "reserved field is not 0");
    DT_TRY(dt_need_n(&c, (uint64_t)n_in + n_out, 4, "the I/O tensor indices"));
    DT_TRY(dt_read_io_list(&c, n_in, false));
    DT_TRY(dt_read_io_list(&c, n_out, true));
    for (int i = 0; i < r->net->n_tensors; i++) {
        const ductile_tensor *t = r->net->tensors[i];
        if (((r->tflags[i] & DT_ENGINE_TENSOR_INPUT) != 0) != t->is_input ||
            ((r->tflags[i] & DT_ENGINE_TENSOR_OUTPUT) != 0) != t->is_output)
            return dt_bad(&c, r->sec_off[DT_SECTION_IO], "tensor '%s' is flagged as a network %s in TENSORS but not listed here",
                          t->name, t->is_input == !!(r->tflags[i] & DT_ENGINE_TENSOR_INPUT) ? "output" : "input");
    }
    return dt_section_end(&c);
}

/* ---- layers ---- */

static ductile_status dt_read_attr(dt_cur *c, ductile_layer *L, dt_attr *a)
{
    dt_arena *arena = &c->r->net->arena;
    DT_TRY(dt_need(c, 8, "an attribute header"));
    DT_TRY(dt_name(c, "attribute name", true, &a->name));
    size_t at = c->pos;
    a->type = (int)dt_u32(c);
    const char *an = a->name ? a->name : "(unnamed)";
    switch (a->type) {
    case DT_ATTR_FLOAT: {
        DT_TRY(dt_need(c, 4, "a FLOAT attribute"));
        uint32_t bits = dt_u32(c);
        memcpy(&a->f, &bits, 4);
        return DUCTILE_OK;
    }
    case DT_ATTR_INT:
        DT_TRY(dt_need(c, 8, "an INT attribute"));
        a->i = dt_i64(c);
        return DUCTILE_OK;
    case DT_ATTR_STRING: {
        const char *s;
        size_t len;
        DT_TRY(dt_str(c, "STRING attribute", true, false, &s, &len));
        if (s && !(a->s = dt_arena_strndup(arena, s, len))) return dt_oom();
        a->s_len = len;
        return DUCTILE_OK;
    }
    case DT_ATTR_TENSOR: {
        ductile_tensor *t = dt_arena_alloc(arena, sizeof *t);
        if (!t) return dt_oom();
        const char *name;
        uint32_t flags;
        DT_TRY(dt_read_tensor(c, t, &name, &flags, false));
        if (name && !(t->name = dt_arena_strdup(arena, name))) return dt_oom();
        t->index = -1;
        a->t = t;
        return DUCTILE_OK;
    }
    case DT_ATTR_FLOATS:
    case DT_ATTR_INTS:
    case DT_ATTR_STRINGS: {
        DT_TRY(dt_need(c, 8, "an attribute element count"));
        size_t cat = c->pos;
        uint64_t n = dt_u64(c);
        size_t each = a->type == DT_ATTR_INTS ? 8 : 4;
        DT_TRY(dt_need_n(c, n, each, "the attribute elements"));
        if (n > INT64_MAX / 8) return dt_bad(c, cat, "attribute '%s': count %" PRIu64 " is too large", an, n);
        a->n = (int64_t)n;
        if (n == 0) return DUCTILE_OK;
        /* n * each fits in the section (dt_need_n), so the allocation is bounded by the file. */
        void *arr = dt_arena_alloc(arena, (size_t)n * (a->type == DT_ATTR_STRINGS ? sizeof(char *) : each));
        if (!arr) return dt_oom();
        if (a->type == DT_ATTR_FLOATS) {
            float *f = arr;
            for (uint64_t k = 0; k < n; k++) {
                uint32_t bits = dt_u32(c);
                memcpy(&f[k], &bits, 4);
            }
            a->floats = f;
        } else if (a->type == DT_ATTR_INTS) {
            int64_t *v = arr;
            for (uint64_t k = 0; k < n; k++) v[k] = dt_i64(c);
            a->ints = v;
        } else {
            const char **v = arr;
            for (uint64_t k = 0; k < n; k++) DT_TRY(dt_name(c, "STRINGS attribute element", true, &v[k]));
            a->strings = v;
        }
        return DUCTILE_OK;
    }
    case DT_ATTR_GRAPH: {
        DT_TRY(dt_need(c, 4, "a GRAPH attribute"));
        size_t gat = c->pos;
        return dt_read_subgraph(c, gat, dt_u32(c), &a->g);
    }
    }
    return dt_bad(c, at, "layer '%s' attribute '%s': type %d is not an attribute type", L->name, an, a->type);
}

static void dt_release_network(void *p, size_t n)
{
    (void)n;
    dt_network_delete(p);
}

/* Subgraph idx of the SUBGRAPHS section (format.h), read as an engine image of its own; at:
 * the attribute's index field, for messages. The network's keeps it. */
static ductile_status dt_read_subgraph(dt_cur *c, size_t at, uint32_t idx, ductile_network **out)
{
    dt_reader *r = c->r;
    if (!r->have[DT_SECTION_SUBGRAPHS])
        return dt_bad(c, at, "GRAPH attribute: subgraph %" PRIu32 ", but the engine has no SUBGRAPHS section", idx);
    if (r->depth + 1 >= DT_MAX_NESTING)
        return dt_bad(c, at, "GRAPH attribute: subgraphs nested deeper than %d levels", DT_MAX_NESTING);
    dt_cur sc = dt_section(r, DT_SECTION_SUBGRAPHS);
    size_t start = sc.pos;
    DT_TRY(dt_need(&sc, 8, "the SUBGRAPHS header"));
    uint32_t version = dt_u32(&sc), count = dt_u32(&sc);
    if (version != DT_ENGINE_SUBGRAPHS_VERSION)
        return dt_bad(&sc, start, "version %" PRIu32 " is not supported (this build reads version %d)",
                      version, DT_ENGINE_SUBGRAPHS_VERSION);
    if (idx >= count)
        return dt_bad(c, at, "GRAPH attribute: subgraph %" PRIu32 " out of range (%" PRIu32 " subgraphs)", idx, count);
    DT_TRY(dt_need_n(&sc, count, DT_ENGINE_SUBGRAPH_ENTRY, "the subgraph entries"));
    sc.pos += (size_t)idx * DT_ENGINE_SUBGRAPH_ENTRY;
    size_t eat = sc.pos;
    uint32_t captured = dt_u32(&sc);
    if (dt_u32(&sc)) return dt_bad(&sc, eat + 4, "subgraph %" PRIu32 ": reserved field is not 0", idx);
    uint64_t off = dt_u64(&sc), len = dt_u64(&sc);
    size_t secsize = r->sec_size[DT_SECTION_SUBGRAPHS];
    if (off % DT_ENGINE_BLOB_ALIGN || off > secsize || len > secsize - off)
        return dt_bad(&sc, eat + 8, "subgraph %" PRIu32 " at offset %" PRIu64 " (+%" PRIu64
                      " bytes) is not a 64-byte-aligned range inside the section (%zu bytes)", idx, off, len, secsize);
    ductile_network *g = NULL;
    ductile_profile *pr = NULL;
    int np = 0;
    ductile_status s = dt_read_image(r->base + r->sec_off[DT_SECTION_SUBGRAPHS] + off, (size_t)len, r->flags,
                                     r->depth + 1, &g, &pr, &np, NULL);
    if (s) return dt_fail_prefix(s, "engine section SUBGRAPHS, subgraph %" PRIu32, idx);
    for (int i = 0; i < np; i++) dt_profile_clear(&pr[i]);
    dt_free(pr);
    if (captured > (uint32_t)g->n_inputs) {
        int n_inputs = g->n_inputs;
        dt_network_delete(g);
        return dt_bad(&sc, eat, "subgraph %" PRIu32 " captures %" PRIu32 " inputs but has %d inputs", idx, captured,
                      n_inputs);
    }
    g->n_captured = (int)captured;
    DT_TRY(dt_network_keep(r->net, g, 0, dt_release_network));
    *out = g;
    return DUCTILE_OK;
}

/* One tensor reference of a layer: in range, and ready (inputs) or not yet (outputs). */
static ductile_status dt_read_ref(dt_cur *c, ductile_layer *L, int k, bool output, ductile_tensor **slot)
{
    dt_reader *r = c->r;
    size_t at = c->pos;
    int32_t x = dt_i32(c);
    *slot = NULL;
    /* An absent optional input; every output has a tensor (the ONNX importer makes one for an
     * unused output, and the runtime reads each output's) */
    if (x == -1 && output)
        return dt_bad(c, at, "layer '%s' (%s) output %d: no tensor (index -1); every output needs one", L->name,
                      L->op_type, k);
    if (x == -1) return DUCTILE_OK;
    if (x < 0 || x >= r->net->n_tensors)
        return dt_bad(c, at, "tensor index %" PRId32 " out of range (%d tensors)", x, r->net->n_tensors);
    ductile_tensor *t = r->net->tensors[x];
    if (!output && !r->ready[x])
        return dt_bad(c, at, "layer '%s' (%s) input %d: tensor '%s' is not a constant, a network input or the output of an earlier layer",
                      L->name, L->op_type, k, t->name);
    if (output && r->ready[x])
        return dt_bad(c, at, "layer '%s' (%s) output %d: tensor '%s' already has a value (a constant, a network input or an earlier layer's output)",
                      L->name, L->op_type, k, t->name);
    if (output) {
        r->ready[x] = true;
        t->producer = L;
    }
    *slot = t;
    return DUCTILE_OK;
}

static ductile_status dt_read_layers(dt_reader *r)
{
    dt_cur c = dt_section(r, DT_SECTION_LAYERS);
    DT_TRY(dt_need(&c, 4, "the layer count"));
    uint32_t n = dt_u32(&c);
    DT_TRY(dt_need_n(&c, n, 32, "the layer records"));
    for (uint32_t li = 0; li < n; li++) {
        size_t at = c.pos;
        const char *name, *op, *domain;
        DT_TRY(dt_need(&c, 32, "a layer header"));
        DT_TRY(dt_str(&c, "layer name", false, true, &name, NULL));
        DT_TRY(dt_str(&c, "layer op_type", false, true, &op, NULL));
        DT_TRY(dt_str(&c, "layer domain", true, true, &domain, NULL));
        if (!op[0]) return dt_bad(&c, at + 4, "layer %" PRIu32 " ('%s'): empty op_type", li, name);
        int32_t opset = dt_i32(&c);
        uint32_t n_in = dt_u32(&c), n_out = dt_u32(&c), n_attr = dt_u32(&c);
        if (dt_u32(&c) != 0) return dt_bad(&c, c.pos - 4, "layer '%s': reserved field is not 0", name);
        if (n_in > INT_MAX || n_out > INT_MAX || n_attr > INT_MAX)
            return dt_bad(&c, at + 16, "layer '%s': %" PRIu32 " inputs, %" PRIu32 " outputs, %" PRIu32
                          " attributes: too many", name, n_in, n_out, n_attr);
        DT_TRY(dt_need_n(&c, (uint64_t)n_in + n_out, 4, "the layer's tensor indices"));
        uint64_t rest = c.end - c.pos - ((uint64_t)n_in + n_out) * 4;
        if ((uint64_t)n_attr * 12 > rest) /* each attribute is at least 12 bytes */
            return dt_bad(&c, at + 24, "layer '%s': %" PRIu32 " attributes cannot fit in the %" PRIu64 " bytes left",
                          name, n_attr, rest);
        ductile_layer *L = dt_network_add_layer(r->net, op, name, (int)n_in, (int)n_out, (int)n_attr);
        if (!L) return dt_oom();
        if (domain && !(L->domain = dt_arena_strdup(&r->net->arena, domain))) return dt_oom();
        L->opset = opset;
        for (uint32_t k = 0; k < n_in; k++) DT_TRY(dt_read_ref(&c, L, (int)k, false, &L->in[k]));
        for (uint32_t k = 0; k < n_out; k++) DT_TRY(dt_read_ref(&c, L, (int)k, true, &L->out[k]));
        for (uint32_t k = 0; k < n_attr; k++) DT_TRY(dt_read_attr(&c, L, &L->attrs[k]));
    }
    return dt_section_end(&c);
}

/* ---- profiles ---- */

static ductile_status dt_read_profiles(dt_reader *r, ductile_profile **out, int *n_out)
{
    dt_cur c = dt_section(r, DT_SECTION_PROFILES);
    DT_TRY(dt_need(&c, 4, "the profile count"));
    uint32_t n = dt_u32(&c);
    DT_TRY(dt_need_n(&c, n, 4, "the profiles"));
    if (n == 0) return dt_section_end(&c);
    ductile_profile *ps = dt_calloc(n, sizeof *ps);
    if (!ps) return dt_oom();
    *out = ps;
    for (uint32_t p = 0; p < n; p++) {
        *n_out = (int)p + 1; /* so the caller frees what was filled on failure */
        DT_TRY(dt_need(&c, 4, "a profile's entry count"));
        uint32_t ne = dt_u32(&c);
        DT_TRY(dt_need_n(&c, ne, 8, "the profile entries"));
        for (uint32_t e = 0; e < ne; e++) {
            size_t at = c.pos;
            const char *name;
            DT_TRY(dt_need(&c, 8, "a profile entry"));
            DT_TRY(dt_str(&c, "profile input name", false, true, &name, NULL));
            uint32_t rank = dt_u32(&c);
            if (rank > DT_MAX_DIMS)
                return dt_bad(&c, at + 4, "profile %" PRIu32 " input '%s': rank %" PRIu32 " is not in 0..%d", p, name,
                              rank, DT_MAX_DIMS);
            DT_TRY(dt_need_n(&c, rank, 24, "a profile entry's dims"));
            int64_t d[3][DT_MAX_DIMS];
            for (int w = 0; w < 3; w++)
                for (uint32_t i = 0; i < rank; i++) d[w][i] = dt_i64(&c);
            for (uint32_t i = 0; i < rank; i++)
                if (d[0][i] < 0 || d[0][i] > d[1][i] || d[1][i] > d[2][i])
                    return dt_bad(&c, at + 8 + 8 * i, "profile %" PRIu32 " input '%s' dim %" PRIu32
                                  ": needs 0 <= min %" PRId64 " <= opt %" PRId64 " <= max %" PRId64,
                                  p, name, i, d[0][i], d[1][i], d[2][i]);
            const ductile_tensor *t = dt_network_find(r->net, name);
            if (!t || !t->is_input)
                return dt_bad(&c, at, "profile %" PRIu32 ": '%s' is not a network input", p, name);
            if (dt_profile_get(&ps[p], name))
                return dt_bad(&c, at, "profile %" PRIu32 ": input '%s' is listed twice", p, name);
            DT_TRY(dt_profile_set(&ps[p], name, (int)rank, d[0], d[1], d[2]));
        }
    }
    return dt_section_end(&c);
}

/* ---- target ---- */

/* A NUL-padded name field of `cap` bytes: terminated, the padding all NUL, and every
 * character accepted by `ok`. */
static ductile_status dt_name_field(const dt_cur *c, size_t at, size_t cap, const char *what, bool (*ok)(int),
                                    char *out)
{
    const unsigned char *p = c->r->base + at;
    size_t n = strnlen((const char *)p, cap);
    if (n == cap) return dt_bad(c, at, "%s is not NUL-terminated within %zu bytes", what, cap);
    for (size_t i = 0; i < n; i++)
        if (!ok(p[i])) return dt_bad(c, at + i, "%s holds byte 0x%02x", what, p[i]);
    for (size_t i = n; i < cap; i++)
        if (p[i]) return dt_bad(c, at + i, "%s: padding after the name is not 0", what);
    memcpy(out, p, n + 1);
    return DUCTILE_OK;
}

static bool dt_backend_char(int ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'; }
static bool dt_printable(int ch) { return ch >= 0x20 && ch < 0x7f; }

static ductile_status dt_read_target(dt_reader *r, dt_engine_target *t)
{
    dt_cur c = dt_section(r, DT_SECTION_TARGET);
    if (c.end - c.pos != DT_ENGINE_TARGET_SIZE)
        return dt_bad(&c, c.pos, "size %zu, expected %d", c.end - c.pos, DT_ENGINE_TARGET_SIZE);
    size_t at = c.pos;
    DT_TRY(dt_name_field(&c, at, 16, "the backend name", dt_backend_char, t->backend));
    if (!t->backend[0]) return dt_bad(&c, at, "the backend name is empty");
    DT_TRY(dt_name_field(&c, at + 16, 96, "the device name", dt_printable, t->device));
    t->cc_major = dt_ld32(c.r->base + at + 112);
    t->cc_minor = dt_ld32(c.r->base + at + 116);
    if (t->cc_major > 1000 || t->cc_minor > 1000)
        return dt_bad(&c, at + 112, "compute capability %u.%u is not plausible", (unsigned)t->cc_major, (unsigned)t->cc_minor);
    if (dt_ld64(c.r->base + at + 120)) return dt_bad(&c, at + 120, "reserved field is not 0");
    return DUCTILE_OK;
}

/* ---- header and section table ---- */

static ductile_status dt_read_header(dt_reader *r, unsigned flags)
{
    const unsigned char *b = r->base;
    size_t size = r->size;
    size_t m = size < 8 ? size : 8;
    if (memcmp(b, DT_ENGINE_MAGIC, m) != 0)
        return dt_fail(DUCTILE_ERR_FORMAT, "not a ductile engine: bad magic at byte offset 0");
    if (size < DT_ENGINE_HEADER_SIZE)
        return dt_fail(DUCTILE_ERR_FORMAT, "truncated engine: got %zu bytes, the header alone is %d bytes", size,
                       DT_ENGINE_HEADER_SIZE);
    uint32_t version = dt_ld32(b + DT_ENGINE_OFF_VERSION);
    if (version != DT_ENGINE_FORMAT_VERSION)
        return dt_fail(DUCTILE_ERR_FORMAT, "engine format version %" PRIu32 " is not supported (this build reads version %d)",
                       version, DT_ENGINE_FORMAT_VERSION);
    uint64_t fsize = dt_ld64(b + DT_ENGINE_OFF_FILE_SIZE);
    if (fsize > size)
        return dt_fail(DUCTILE_ERR_FORMAT, "truncated engine: the header says %" PRIu64 " bytes, got %zu", fsize, size);
    if (fsize < size)
        return dt_fail(DUCTILE_ERR_FORMAT, "engine size mismatch: the header says %" PRIu64 " bytes, got %zu (extra bytes at the end)",
                       fsize, size);
    if (!(flags & DT_ENGINE_READ_NO_CHECKSUM)) {
        uint32_t stored = dt_ld32(b + DT_ENGINE_OFF_CHECKSUM);
        uint32_t crc = dt_crc32c(0, b, DT_ENGINE_OFF_CHECKSUM);
        crc = dt_crc32c(crc, b + DT_ENGINE_OFF_CHECKSUM + 4, size - DT_ENGINE_OFF_CHECKSUM - 4);
        if (crc != stored)
            return dt_fail(DUCTILE_ERR_FORMAT, "engine checksum mismatch: stored 0x%08" PRIx32 ", computed 0x%08" PRIx32
                           " (the file is corrupted)", stored, crc);
    }
    uint32_t hsize = dt_ld32(b + DT_ENGINE_OFF_HEADER_SIZE);
    if (hsize < DT_ENGINE_HEADER_SIZE || hsize % 8 || hsize > size)
        return dt_fail(DUCTILE_ERR_FORMAT, "engine header at byte offset %d: header size %" PRIu32
                       " is not a multiple of 8 between %d and the file size", DT_ENGINE_OFF_HEADER_SIZE, hsize,
                       DT_ENGINE_HEADER_SIZE);
    uint32_t hflags = dt_ld32(b + DT_ENGINE_OFF_FLAGS);
    r->hflags = hflags;
    if (hflags & ~(uint32_t)DT_ENGINE_FLAG_STRINGS)
        return dt_fail(DUCTILE_ERR_FORMAT, "engine header at byte offset %d: flags 0x%08" PRIx32
                       " name features this build does not know", DT_ENGINE_OFF_FLAGS, hflags);
    if (dt_ld32(b + 36) || dt_ld64(b + 56))
        return dt_fail(DUCTILE_ERR_FORMAT, "engine header at byte offset %d: reserved fields are not 0",
                       dt_ld32(b + 36) ? 36 : 56);
    uint32_t nsec = dt_ld32(b + DT_ENGINE_OFF_SECTION_COUNT);
    uint64_t table_end;
    if (__builtin_mul_overflow((uint64_t)nsec, DT_ENGINE_SECTION_ENTRY, &table_end) ||
        __builtin_add_overflow(table_end, hsize, &table_end) || table_end > size)
        return dt_fail(DUCTILE_ERR_FORMAT, "engine header at byte offset %d: %" PRIu32
                       " sections of %d bytes after a %" PRIu32 "-byte header do not fit in %zu bytes",
                       DT_ENGINE_OFF_SECTION_COUNT, nsec, DT_ENGINE_SECTION_ENTRY, hsize, size);
    for (uint32_t i = 0; i < nsec; i++) {
        size_t at = hsize + (size_t)i * DT_ENGINE_SECTION_ENTRY;
        uint32_t id = dt_ld32(b + at);
        uint64_t off = dt_ld64(b + at + 8), len = dt_ld64(b + at + 16), end;
        if (dt_ld32(b + at + 4))
            return dt_fail(DUCTILE_ERR_FORMAT, "engine section table at byte offset %zu: reserved field is not 0", at + 4);
        if (off < table_end || __builtin_add_overflow(off, len, &end) || end > size)
            return dt_fail(DUCTILE_ERR_FORMAT, "engine section table at byte offset %zu: section %" PRIu32
                           " at %" PRIu64 " (+%" PRIu64 " bytes) is not inside the file after the table (%" PRIu64 "..%zu)",
                           at, id, off, len, table_end, size);
        if (id == 0 || id >= DT_NSEC) continue; /* a later version's section: skipped */
        if (r->have[id])
            return dt_fail(DUCTILE_ERR_FORMAT, "engine section table at byte offset %zu: section %s appears twice",
                           at, dt_section_names[id]);
        if ((id == DT_SECTION_BLOBS || id == DT_SECTION_SUBGRAPHS) && off % DT_ENGINE_BLOB_ALIGN)
            return dt_fail(DUCTILE_ERR_FORMAT, "engine section table at byte offset %zu: %s at %" PRIu64
                           " is not 64-byte aligned", at + 8, dt_section_names[id], off);
        r->have[id] = true;
        r->sec_off[id] = (size_t)off;
        r->sec_size[id] = (size_t)len;
    }
    for (int id = 1; id < DT_NSEC; id++)
        if (!r->have[id] && id != DT_SECTION_SUBGRAPHS)
            return dt_fail(DUCTILE_ERR_FORMAT, "engine is missing its required section %s", dt_section_names[id]);
    return DUCTILE_OK;
}

ductile_status dt_engine_read_ex(const void *data, size_t size, unsigned flags, ductile_network **net,
                                 ductile_profile **profiles, int *n_profiles)
{
    return dt_engine_read_target(data, size, flags, net, profiles, n_profiles, NULL);
}

ductile_status dt_engine_read_target(const void *data, size_t size, unsigned flags, ductile_network **net,
                                     ductile_profile **profiles, int *n_profiles, dt_engine_target *target)
{
    return dt_read_image(data, size, flags, 0, net, profiles, n_profiles, target);
}

static ductile_status dt_read_image(const void *data, size_t size, unsigned flags, int depth, ductile_network **net,
                                    ductile_profile **profiles, int *n_profiles, dt_engine_target *target)
{
    dt_engine_target tgt;
    memset(&tgt, 0, sizeof tgt);
    if (net) *net = NULL;
    if (profiles) *profiles = NULL;
    if (n_profiles) *n_profiles = 0;
    if (!net || !profiles || !n_profiles || (!data && size))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "engine read: data, net, profiles or n_profiles is NULL");
    if ((uintptr_t)data % DT_ENGINE_BLOB_ALIGN != 0)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "engine buffer must be 64-byte aligned");
    dt_reader r;
    memset(&r, 0, sizeof r);
    r.base = data ? data : (const unsigned char *)"";
    r.size = size;
    r.flags = flags;
    r.depth = depth;
    ductile_status s = dt_read_header(&r, flags);
    if (!s) s = dt_network_new(&r.net);
    /* Order: names first, then tensors, I/O (which marks inputs ready), layers, profiles
     * (which need the inputs). */
    if (!s) s = dt_read_strings(&r);
    if (!s) s = dt_read_tensors(&r);
    if (!s) s = dt_read_io(&r);
    if (!s) s = dt_read_layers(&r);
    if (!s) s = dt_read_profiles(&r, profiles, n_profiles);
    if (!s) s = dt_read_target(&r, &tgt);
    dt_free(r.str);
    dt_free(r.str_len);
    dt_free(r.tflags);
    dt_free(r.ready);
    if (s) {
        dt_network_delete(r.net);
        for (int i = 0; i < *n_profiles; i++) dt_profile_clear(&(*profiles)[i]);
        dt_free(*profiles);
        *profiles = NULL;
        *n_profiles = 0;
        return s;
    }
    *net = r.net;
    if (target) *target = tgt;
    return DUCTILE_OK;
}

ductile_status dt_engine_read(const void *data, size_t size, ductile_network **net,
                              ductile_profile **profiles, int *n_profiles)
{
    return dt_engine_read_ex(data, size, 0, net, profiles, n_profiles);
}
