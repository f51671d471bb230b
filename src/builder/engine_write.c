/* Engine writer: network + profiles -> the bytes described in format/format.h.
 *
 * Each section is built in its own growing buffer (strings and blobs are appended while the
 * tensor and layer records that name them are written), then the sections are laid out
 * behind the header and the checksum is taken last. Every byte is written explicitly
 * (padding is zero), so the same network always gives the same bytes. The writer refuses
 * what the reader would refuse, so an engine that was written can always be read back. */
#include "format/format.h"
#include "core/alloc.h"
#include "builder/engine_write.h"
#include "format/checksum.h"
#include "format/strings.h"
#include "core/checked.h"
#include "core/dtype.h"
#include "core/status.h"
#include "runtime/engine_impl.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "engine blobs are stored in host order, which the format fixes as little-endian"
#endif

typedef struct dt_wbuf {
    unsigned char *p;
    size_t n, cap;
    bool failed; /* out of memory or size overflow; reported once at the end */
} dt_wbuf;

static void *dt_wbuf_grow(dt_wbuf *b, size_t extra)
{
    size_t need;
    if (b->failed || !dt_add_size(b->n, extra, &need)) {
        b->failed = true;
        return NULL;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) {
            if (!dt_mul_size(cap, 2, &cap)) {
                b->failed = true;
                return NULL;
            }
        }
        unsigned char *np = dt_realloc(b->p, cap);
        if (!np) {
            b->failed = true;
            return NULL;
        }
        b->p = np;
        b->cap = cap;
    }
    void *at = b->p ? b->p + b->n : NULL; /* p is NULL only before the first byte */
    b->n = need;
    return at;
}

static void dt_put(dt_wbuf *b, const void *src, size_t n)
{
    void *at = dt_wbuf_grow(b, n);
    if (at && n) memcpy(at, src, n);
}

static void dt_put_u32(dt_wbuf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    dt_put(b, x, 4);
}

static void dt_put_u64(dt_wbuf *b, uint64_t v)
{
    dt_put_u32(b, (uint32_t)v);
    dt_put_u32(b, (uint32_t)(v >> 32));
}

static void dt_put_i32(dt_wbuf *b, int32_t v) { dt_put_u32(b, (uint32_t)v); }
static void dt_put_i64(dt_wbuf *b, int64_t v) { dt_put_u64(b, (uint64_t)v); }

static void dt_pad(dt_wbuf *b, size_t align)
{
    size_t r = b->n % align;
    if (r) {
        void *at = dt_wbuf_grow(b, align - r);
        if (at) memset(at, 0, align - r);
    }
}

typedef struct dt_writer {
    const ductile_network *net;
    dt_wbuf strings;
    uint32_t n_strings;
    dt_wbuf tensors, layers, io, profiles, blobs, target;
    bool has_strings;   /* a STRING tensor was written: header flag DT_ENGINE_FLAG_STRINGS */
    const dt_engine_target *tgt;
    dt_wbuf sub_tab, sub_img;   /* SUBGRAPHS: entries (offsets into sub_img until assembly), images */
    uint32_t n_sub;
} dt_writer;

/* Appends a string and returns its index; NULL gives DT_ENGINE_NO_STRING. */
static uint32_t dt_wstring(dt_writer *w, const char *s, size_t len)
{
    if (!s) return DT_ENGINE_NO_STRING;
    if (w->n_strings >= DT_ENGINE_NO_STRING - 1 || len > UINT32_MAX) {
        w->strings.failed = true;
        return DT_ENGINE_NO_STRING;
    }
    dt_put_u32(&w->strings, (uint32_t)len);
    dt_put(&w->strings, s, len);
    dt_put(&w->strings, "", 1);
    return w->n_strings++;
}

static uint32_t dt_wname(dt_writer *w, const char *s) { return dt_wstring(w, s, s ? strlen(s) : 0); }

/* A tensor record (format/format.h); `what` names the tensor in errors. */
static ductile_status dt_write_tensor(dt_writer *w, dt_wbuf *b, const ductile_tensor *t,
                                      uint32_t flags, const char *what)
{
    const char *name = t->name ? t->name : "(unnamed)";
    if (t->rank < -1 || t->rank > DT_MAX_DIMS)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "cannot store %s '%s': rank %d is not in -1..%d",
                       what, name, t->rank, DT_MAX_DIMS);
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] < -1)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "cannot store %s '%s': dim %d is %lld",
                           what, name, i, (long long)t->dims[i]);
    bool has_data = t->data != NULL;
    if (has_data ? !dt_dtype_valid(t->dtype) : (t->dtype != 0 && !dt_dtype_valid(t->dtype)))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "cannot store %s '%s': dtype %d (%s) has no fixed size",
                       what, name, t->dtype, ductile_dtype_name((ductile_dtype)t->dtype));
    uint64_t blob_off = 0, blob_size = 0;
    if (t->dtype == DUCTILE_STRING) w->has_strings = true;
    if (has_data && t->dtype == DUCTILE_STRING) {
        /* Views are addresses of this process: the blob holds the bytes (format/strings.h). */
        int64_t count = dt_tensor_count(t);
        const ductile_string *v = t->data;
        if (count < 0 || (size_t)count * sizeof *v != t->nbytes || !dt_strings_blob_size(v, count, &blob_size))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "cannot store %s '%s': its data is %zu bytes, its shape and dtype say otherwise",
                           what, name, t->nbytes);
        dt_pad(&w->blobs, DT_ENGINE_BLOB_ALIGN);
        blob_off = w->blobs.n;
        for (int64_t i = 0; i < count; i++) dt_put_u64(&w->blobs, v[i].length);
        for (int64_t i = 0; i < count; i++) dt_put(&w->blobs, v[i].data, v[i].length);
        flags |= DT_ENGINE_TENSOR_DATA;
    } else if (has_data) {
        int64_t count = dt_tensor_count(t);
        size_t bytes;
        if (count < 0 || !dt_mul_size((size_t)count, ductile_dtype_size((ductile_dtype)t->dtype), &bytes) ||
            bytes != t->nbytes)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "cannot store %s '%s': its data is %zu bytes, its shape and dtype say otherwise",
                           what, name, t->nbytes);
        dt_pad(&w->blobs, DT_ENGINE_BLOB_ALIGN);
        blob_off = w->blobs.n;
        blob_size = bytes;
        dt_put(&w->blobs, t->data, bytes);
        flags |= DT_ENGINE_TENSOR_DATA;
    }
    if (t->kind < 0 || t->kind > DUCTILE_VALUE_OPTIONAL_SEQUENCE || (t->kind && has_data))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "cannot store %s '%s': kind %d%s", what, name, t->kind,
                       has_data ? " with data" : " is not a ductile_value_kind");
    flags |= (uint32_t)t->kind << DT_ENGINE_TENSOR_KIND_SHIFT;
    dt_put_u32(b, dt_wname(w, t->name));
    dt_put_i32(b, t->dtype);
    dt_put_i32(b, t->rank);
    dt_put_u32(b, flags);
    for (int i = 0; i < DT_MAX_DIMS; i++) dt_put_i64(b, i < t->rank ? t->dims[i] : 0);
    for (int i = 0; i < DT_MAX_DIMS; i++)
        dt_put_u32(b, i < t->rank ? dt_wname(w, t->dim_sym[i]) : DT_ENGINE_NO_STRING);
    dt_put_u64(b, blob_off);
    dt_put_u64(b, blob_size);
    return DUCTILE_OK;
}

/* The index of a tensor of this network, or -1 for NULL; -2 for a foreign tensor. */
static int dt_windex(const ductile_network *net, const ductile_tensor *t)
{
    if (!t) return -1;
    if (t->index < 0 || t->index >= net->n_tensors || net->tensors[t->index] != t) return -2;
    return t->index;
}

static ductile_status dt_write_tensors(dt_writer *w)
{
    const ductile_network *net = w->net;
    for (int i = 0; i < net->n_tensors; i++) {
        const ductile_tensor *t = net->tensors[i];
        if (!t || !t->name || t->index != i)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "cannot store tensor %d: it is NULL, unnamed or misindexed", i);
    }
    /* Flags come from the I/O lists (not the tensors' own bits) so they agree by construction. */
    uint32_t *flags = dt_calloc((size_t)net->n_tensors + 1, sizeof *flags);
    if (!flags) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory writing an engine");
    ductile_status s = DUCTILE_OK;
    for (int k = 0; k < 2 && !s; k++) {
        int n = k ? net->n_outputs : net->n_inputs;
        ductile_tensor *const *list = k ? net->outputs : net->inputs;
        uint32_t bit = k ? DT_ENGINE_TENSOR_OUTPUT : DT_ENGINE_TENSOR_INPUT;
        for (int i = 0; i < n && !s; i++) {
            int x = dt_windex(net, list[i]);
            if (x < 0)
                s = dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "cannot store network %s %d: not a tensor of the network",
                            k ? "output" : "input", i);
            else if (flags[x] & bit)
                s = dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "cannot store network %s '%s': listed twice",
                            k ? "output" : "input", list[i]->name);
            else
                flags[x] |= bit;
        }
    }
    dt_put_u32(&w->tensors, (uint32_t)net->n_tensors);
    for (int i = 0; i < net->n_tensors && !s; i++)
        s = dt_write_tensor(w, &w->tensors, net->tensors[i], flags[i], "tensor");
    if (!s) {
        dt_put_u32(&w->io, (uint32_t)net->n_inputs);
        dt_put_u32(&w->io, (uint32_t)net->n_outputs);
        dt_put_i32(&w->io, net->opset);
        dt_put_u32(&w->io, 0);
        for (int i = 0; i < net->n_inputs; i++) dt_put_i32(&w->io, net->inputs[i]->index);
        for (int i = 0; i < net->n_outputs; i++) dt_put_i32(&w->io, net->outputs[i]->index);
    }
    dt_free(flags);
    return s;
}

static ductile_status dt_write_attr(dt_writer *w, const ductile_layer *L, const dt_attr *a)
{
    dt_wbuf *b = &w->layers;
    const char *an = a->name ? a->name : "(unnamed)";
    if ((a->type == DT_ATTR_FLOATS || a->type == DT_ATTR_INTS || a->type == DT_ATTR_STRINGS) &&
        (a->n < 0 || (a->n > 0 && !(a->type == DT_ATTR_FLOATS ? (const void *)a->floats
                                    : a->type == DT_ATTR_INTS ? (const void *)a->ints
                                                              : (const void *)a->strings))))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "cannot store layer '%s' attribute '%s': %lld elements without data",
                       L->name, an, (long long)a->n);
    dt_put_u32(b, dt_wname(w, a->name));
    dt_put_u32(b, (uint32_t)a->type);
    switch (a->type) {
    case DT_ATTR_FLOAT: {
        uint32_t bits;
        memcpy(&bits, &a->f, 4);
        dt_put_u32(b, bits);
        return DUCTILE_OK;
    }
    case DT_ATTR_INT: dt_put_i64(b, a->i); return DUCTILE_OK;
    case DT_ATTR_STRING: dt_put_u32(b, dt_wstring(w, a->s, a->s ? a->s_len : 0)); return DUCTILE_OK;
    case DT_ATTR_TENSOR:
        if (!a->t)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "cannot store layer '%s' attribute '%s': TENSOR without a tensor",
                           L->name, an);
        return dt_write_tensor(w, b, a->t, 0, "attribute tensor");
    case DT_ATTR_GRAPH: {
        /* A whole engine image of its own (format.h, SUBGRAPHS), so subgraphs nest. */
        if (!a->g)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "cannot store layer '%s' attribute '%s': GRAPH without a graph",
                           L->name, an);
        void *img = NULL;
        size_t size = 0;
        ductile_status s = dt_engine_write_target(a->g, NULL, 0, w->tgt, &img, &size);
        if (s) return dt_fail_prefix(s, "layer '%s' attribute '%s'", L->name, an);
        dt_pad(&w->sub_img, DT_ENGINE_BLOB_ALIGN);
        dt_put_u32(&w->sub_tab, (uint32_t)a->g->n_captured);
        dt_put_u32(&w->sub_tab, 0);
        dt_put_u64(&w->sub_tab, w->sub_img.n);
        dt_put_u64(&w->sub_tab, size);
        dt_put(&w->sub_img, img, size);
        dt_free(img);
        dt_put_u32(b, w->n_sub++);
        return DUCTILE_OK;
    }
    case DT_ATTR_FLOATS:
        dt_put_u64(b, (uint64_t)a->n);
        for (int64_t k = 0; k < a->n; k++) {
            uint32_t bits;
            memcpy(&bits, &a->floats[k], 4);
            dt_put_u32(b, bits);
        }
        return DUCTILE_OK;
    case DT_ATTR_INTS:
        dt_put_u64(b, (uint64_t)a->n);
        for (int64_t k = 0; k < a->n; k++) dt_put_i64(b, a->ints[k]);
        return DUCTILE_OK;
    case DT_ATTR_STRINGS:
        dt_put_u64(b, (uint64_t)a->n);
        for (int64_t k = 0; k < a->n; k++) dt_put_u32(b, dt_wname(w, a->strings[k]));
        return DUCTILE_OK;
    }
    return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "cannot store layer '%s' attribute '%s': type %d is not a known attribute type",
                   L->name, an, a->type);
}

/* Layers in order; checks what the reader checks: inputs produced before use, one producer. */
static ductile_status dt_write_layers(dt_writer *w)
{
    const ductile_network *net = w->net;
    bool *ready = dt_calloc((size_t)net->n_tensors + 1, 1);
    if (!ready) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory writing an engine");
    for (int i = 0; i < net->n_tensors; i++)
        ready[i] = net->tensors[i]->data != NULL;
    for (int i = 0; i < net->n_inputs; i++) ready[net->inputs[i]->index] = true;
    ductile_status s = DUCTILE_OK;
    dt_put_u32(&w->layers, (uint32_t)net->n_layers);
    for (int li = 0; li < net->n_layers && !s; li++) {
        const ductile_layer *L = net->layers[li];
        if (!L || !L->op_type || !L->name || L->n_in < 0 || L->n_out < 0 || L->n_attr < 0) {
            s = dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "cannot store layer %d: it is NULL or malformed", li);
            break;
        }
        dt_wbuf *b = &w->layers;
        dt_put_u32(b, dt_wname(w, L->name));
        dt_put_u32(b, dt_wname(w, L->op_type));
        dt_put_u32(b, dt_wname(w, L->domain ? L->domain : ""));
        dt_put_i32(b, L->opset);
        dt_put_u32(b, (uint32_t)L->n_in);
        dt_put_u32(b, (uint32_t)L->n_out);
        dt_put_u32(b, (uint32_t)L->n_attr);
        dt_put_u32(b, 0);
        for (int k = 0; k < L->n_in && !s; k++) {
            int x = dt_windex(net, L->in[k]);
            if (x == -2 || (x >= 0 && !ready[x]))
                s = dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                            "cannot store layer '%s' (%s): input %d is %s", L->name, L->op_type, k,
                            x == -2 ? "not a tensor of the network"
                                    : "not produced by an earlier layer, an input or a constant");
            dt_put_i32(b, x);
        }
        for (int k = 0; k < L->n_out && !s; k++) {
            int x = dt_windex(net, L->out[k]);
            if (x < 0 || ready[x])
                s = dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                            "cannot store layer '%s' (%s): output %d is %s", L->name, L->op_type, k,
                            x == -1   ? "missing (every output needs a tensor)"
                            : x == -2 ? "not a tensor of the network"
                                      : "already an input, a constant or another layer's output");
            if (x >= 0) ready[x] = true;
            dt_put_i32(b, x);
        }
        for (int k = 0; k < L->n_attr && !s; k++) s = dt_write_attr(w, L, &L->attrs[k]);
    }
    dt_free(ready);
    return s;
}

static ductile_status dt_write_profiles(dt_writer *w, const ductile_profile *profiles, int n)
{
    dt_wbuf *b = &w->profiles;
    dt_put_u32(b, (uint32_t)n);
    for (int p = 0; p < n; p++) {
        const ductile_profile *pr = &profiles[p];
        dt_put_u32(b, (uint32_t)pr->n);
        for (int e = 0; e < pr->n; e++) {
            const dt_profile_input *in = &pr->inputs[e];
            bool listed = false;
            for (int i = 0; in->name && i < w->net->n_inputs && !listed; i++)
                listed = !strcmp(w->net->inputs[i]->name, in->name);
            if (!listed)
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "cannot store profile %d: '%s' is not a network input",
                               p, in->name ? in->name : "(null)");
            for (int f = 0; f < e; f++)
                if (!strcmp(pr->inputs[f].name, in->name))
                    return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "cannot store profile %d: input '%s' is listed twice",
                                   p, in->name);
            if (in->rank < 0 || in->rank > DT_MAX_DIMS)
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "cannot store profile %d input '%s': rank %d is not in 0..%d",
                               p, in->name, in->rank, DT_MAX_DIMS);
            for (int i = 0; i < in->rank; i++)
                if (in->min[i] < 0 || in->min[i] > in->opt[i] || in->opt[i] > in->max[i])
                    return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                                   "cannot store profile %d input '%s' dim %d: needs 0 <= min %lld <= opt %lld <= max %lld",
                                   p, in->name, i, (long long)in->min[i], (long long)in->opt[i], (long long)in->max[i]);
            dt_put_u32(b, dt_wname(w, in->name));
            dt_put_u32(b, (uint32_t)in->rank);
            for (int i = 0; i < in->rank; i++) dt_put_i64(b, in->min[i]);
            for (int i = 0; i < in->rank; i++) dt_put_i64(b, in->opt[i]);
            for (int i = 0; i < in->rank; i++) dt_put_i64(b, in->max[i]);
        }
    }
    return DUCTILE_OK;
}

static void dt_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void dt_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Header, table and sections into one 64-byte-aligned buffer. */
/* SUBGRAPHS from the entries and images (nothing when there are no subgraphs). */
static void dt_write_subgraphs(dt_writer *w, dt_wbuf *sec)
{
    if (!w->n_sub) return;
    size_t head = 8 + (size_t)w->n_sub * DT_ENGINE_SUBGRAPH_ENTRY;
    size_t base = (head + DT_ENGINE_BLOB_ALIGN - 1) / DT_ENGINE_BLOB_ALIGN * DT_ENGINE_BLOB_ALIGN;
    dt_put_u32(sec, DT_ENGINE_SUBGRAPHS_VERSION);
    dt_put_u32(sec, w->n_sub);
    sec->failed |= w->sub_tab.failed || w->sub_img.failed;
    for (uint32_t i = 0; i < w->n_sub && !sec->failed; i++) {
        const unsigned char *e = w->sub_tab.p + (size_t)i * DT_ENGINE_SUBGRAPH_ENTRY;
        uint64_t off = 0;
        for (int b = 0; b < 8; b++) off |= (uint64_t)e[8 + b] << (8 * b);
        dt_put(sec, e, 8);
        dt_put_u64(sec, off + base);
        dt_put(sec, e + 16, 8);
    }
    dt_pad(sec, DT_ENGINE_BLOB_ALIGN);
    dt_put(sec, w->sub_img.p, w->sub_img.n);
}

static ductile_status dt_assemble(dt_writer *w, void **out, size_t *size)
{
    enum { NMAX = 8 };
    dt_wbuf subgraphs = {0};
    dt_write_subgraphs(w, &subgraphs);
    dt_wbuf *sec[NMAX] = {&w->strings, &w->tensors, &w->layers, &w->io, &w->profiles, &w->blobs, &w->target,
                          &subgraphs};
    static const uint32_t ids[NMAX] = {DT_SECTION_STRINGS, DT_SECTION_TENSORS, DT_SECTION_LAYERS,
                                       DT_SECTION_IO, DT_SECTION_PROFILES, DT_SECTION_BLOBS,
                                       DT_SECTION_TARGET, DT_SECTION_SUBGRAPHS};
    /* An engine without subgraphs keeps the seven sections (and bytes) it always had. */
    const int NSEC = w->n_sub ? 8 : 7;
    size_t off[NMAX], pos = DT_ENGINE_HEADER_SIZE + (size_t)NSEC * DT_ENGINE_SECTION_ENTRY;
    for (int i = 0; i < NSEC; i++) {
        if (sec[i]->failed) {
            dt_free(subgraphs.p);
            return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory writing an engine");
        }
        size_t align = ids[i] == DT_SECTION_BLOBS || ids[i] == DT_SECTION_SUBGRAPHS ? DT_ENGINE_BLOB_ALIGN : 8;
        if (!dt_add_size(pos, align - 1, &pos)) {
            dt_free(subgraphs.p);
            return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "engine too large");
        }
        pos -= pos % align;
        off[i] = pos;
        if (!dt_add_size(pos, sec[i]->n, &pos)) {
            dt_free(subgraphs.p);
            return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "engine too large");
        }
    }
    void *mem = dt_aligned_alloc(DT_ENGINE_BLOB_ALIGN, pos ? pos : 1);
    if (!mem) {
        dt_free(subgraphs.p);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) writing an engine", pos);
    }
    unsigned char *f = mem;
    memset(f, 0, pos);
    memcpy(f + DT_ENGINE_OFF_MAGIC, DT_ENGINE_MAGIC, 8);
    dt_le32(f + DT_ENGINE_OFF_VERSION, DT_ENGINE_FORMAT_VERSION);
    dt_le32(f + DT_ENGINE_OFF_HEADER_SIZE, DT_ENGINE_HEADER_SIZE);
    dt_le32(f + DT_ENGINE_OFF_SECTION_COUNT, NSEC);
    dt_le32(f + DT_ENGINE_OFF_FLAGS, w->has_strings ? DT_ENGINE_FLAG_STRINGS : 0);
    dt_le64(f + DT_ENGINE_OFF_FILE_SIZE, pos);
    const char *lib = ductile_version();
    memcpy(f + DT_ENGINE_OFF_LIB_VERSION, lib, strnlen(lib, 15));
    for (int i = 0; i < NSEC; i++) {
        unsigned char *e = f + DT_ENGINE_HEADER_SIZE + (size_t)i * DT_ENGINE_SECTION_ENTRY;
        dt_le32(e, ids[i]);
        dt_le64(e + 8, off[i]);
        dt_le64(e + 16, sec[i]->n);
        if (sec[i]->n) memcpy(f + off[i], sec[i]->p, sec[i]->n);
    }
    dt_free(subgraphs.p);
    uint32_t crc = dt_crc32c(0, f, DT_ENGINE_OFF_CHECKSUM);
    crc = dt_crc32c(crc, f + DT_ENGINE_OFF_CHECKSUM + 4, pos - DT_ENGINE_OFF_CHECKSUM - 4);
    dt_le32(f + DT_ENGINE_OFF_CHECKSUM, crc);
    *out = mem;
    *size = pos;
    return DUCTILE_OK;
}

/* TARGET: fixed-size, NUL-padded names (the reader checks the characters). */
static void dt_write_target(dt_writer *w, const dt_engine_target *t)
{
    unsigned char rec[DT_ENGINE_TARGET_SIZE];
    memset(rec, 0, sizeof rec);
    memcpy(rec, t->backend, strnlen(t->backend, 15));
    memcpy(rec + 16, t->device, strnlen(t->device, 95));
    dt_le32(rec + 112, t->cc_major);
    dt_le32(rec + 116, t->cc_minor);
    dt_put(&w->target, rec, sizeof rec);
}

ductile_status dt_engine_write(const ductile_network *net, const ductile_profile *profiles,
                               int n_profiles, void **out, size_t *size)
{
    dt_engine_target cpu = {.backend = "cpu"};
    return dt_engine_write_target(net, profiles, n_profiles, &cpu, out, size);
}

ductile_status dt_engine_write_target(const ductile_network *net, const ductile_profile *profiles,
                                      int n_profiles, const dt_engine_target *target, void **out,
                                      size_t *size)
{
    if (out) *out = NULL;
    if (size) *size = 0;
    if (!net || !out || !size || !target || n_profiles < 0 || (n_profiles > 0 && !profiles))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "engine write: net, target, out or size is NULL, or profiles do not match n_profiles");
    dt_writer w;
    memset(&w, 0, sizeof w);
    w.net = net;
    w.tgt = target;
    dt_write_target(&w, target);
    ductile_status s = dt_write_tensors(&w);
    if (!s) s = dt_write_layers(&w);
    if (!s) s = dt_write_profiles(&w, profiles, n_profiles);
    if (!s) {
        /* The string count leads its section; it is known only now. */
        dt_wbuf strings = {0};
        dt_put_u32(&strings, w.n_strings);
        dt_put(&strings, w.strings.p, w.strings.n);
        strings.failed |= w.strings.failed;
        dt_free(w.strings.p);
        w.strings = strings;
        s = dt_assemble(&w, out, size);
    }
    dt_free(w.strings.p);
    dt_free(w.tensors.p);
    dt_free(w.layers.p);
    dt_free(w.io.p);
    dt_free(w.profiles.p);
    dt_free(w.blobs.p);
    dt_free(w.target.p);
    dt_free(w.sub_tab.p);
    dt_free(w.sub_img.p);
    return s;
}

ductile_status dt_engine_rewrite(const ductile_network *net, const ductile_profile *profiles, int n_profiles,
                                 const dt_engine_target *target, ductile_engine **out)
{
    void *bytes = NULL;
    size_t size = 0;
    *out = NULL;
    DT_TRY(dt_engine_write_target(net, profiles, n_profiles, target, &bytes, &size));
    return dt_engine_from_bytes(bytes, size, out);
}
