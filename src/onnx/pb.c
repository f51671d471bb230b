#include "onnx/pb.h"
#include "core/status.h"

#include <stdio.h>
#include <string.h>

static const char *const pb_wire_names[] = {"varint", "64-bit", "length-delimited",
                                            "start group", "end group", "32-bit"};

static const char *pb_name_of(const pb_msgdesc *d, uint32_t num)
{
    return d && num < d->n_names ? d->names[num] : NULL;
}

const char *pb_field_label(const pb_field *f, char *buf, size_t cap)
{
    const pb_msgdesc *d = f->from->desc;
    const char *type = d ? d->type : "message";
    const char *name = pb_name_of(d, f->num);
    if (name)
        snprintf(buf, cap, "field '%s' (%s field %u)", name, type, f->num);
    else
        snprintf(buf, cap, "field %u (%s)", f->num, type);
    return buf;
}

void pb_init(pb_reader *r, const void *base, size_t size, const pb_msgdesc *desc)
{
    r->base = base;
    r->pos = 0;
    r->end = size;
    r->desc = desc;
    r->depth = 0;
}

/* Reads a varint in [*pos, end). Returns 0 on success, 1 when it runs past end, 2 when it is
 * longer than 10 bytes; the caller words the error for its context. */
static int pb_varint(const uint8_t *b, size_t *pos, size_t end, uint64_t *v)
{
    uint64_t x = 0;
    size_t p = *pos;
    for (int i = 0; i < 10; i++) {
        if (p >= end) return 1;
        uint8_t c = b[p++];
        x |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *v = x;
            *pos = p;
            return 0;
        }
    }
    return 2;
}

static const char *pb_type(const pb_reader *r) { return r->desc ? r->desc->type : "message"; }

ductile_status pb_next(pb_reader *r, pb_field *f, bool *more)
{
    char lab[160];
    *more = false;
    if (r->pos >= r->end) return DUCTILE_OK;
    size_t key_off = r->pos;
    uint64_t key;
    int e = pb_varint(r->base, &r->pos, r->end, &key);
    if (e == 1)
        return dt_fail(DUCTILE_ERR_PARSE, "truncated at byte offset %zu: field key runs past the end of %s",
                       key_off, pb_type(r));
    if (e == 2)
        return dt_fail(DUCTILE_ERR_PARSE, "malformed at byte offset %zu: varint longer than 10 bytes in %s",
                       key_off, pb_type(r));
    pb_field g = {0};
    g.from = r;
    g.wire = (int)(key & 7);
    if ((key >> 3) > 0x1fffffff || (key >> 3) == 0)
        return dt_fail(DUCTILE_ERR_PARSE, "malformed at byte offset %zu: field number %llu in %s",
                       key_off, (unsigned long long)(key >> 3), pb_type(r));
    g.num = (uint32_t)(key >> 3);
    g.off = r->pos;
    size_t remain = r->end - r->pos;
    switch (g.wire) {
    case PB_VARINT:
        e = pb_varint(r->base, &r->pos, r->end, &g.u);
        if (e == 1)
            return dt_fail(DUCTILE_ERR_PARSE, "truncated at byte offset %zu: varint of %s runs past the end of %s",
                           g.off, pb_field_label(&g, lab, sizeof lab), pb_type(r));
        if (e == 2)
            return dt_fail(DUCTILE_ERR_PARSE, "malformed at byte offset %zu: varint longer than 10 bytes in %s",
                           g.off, pb_type(r));
        break;
    case PB_I64:
    case PB_I32: {
        size_t w = g.wire == PB_I64 ? 8 : 4;
        if (remain < w)
            return dt_fail(DUCTILE_ERR_PARSE, "truncated at byte offset %zu: %s needs %zu bytes, %zu remain",
                           g.off, pb_field_label(&g, lab, sizeof lab), w, remain);
        uint64_t v = 0;
        for (size_t i = 0; i < w; i++) v |= (uint64_t)r->base[r->pos + i] << (8 * i);
        g.u = v;
        r->pos += w;
        break;
    }
    case PB_LEN: {
        uint64_t n;
        e = pb_varint(r->base, &r->pos, r->end, &n);
        if (e == 1)
            return dt_fail(DUCTILE_ERR_PARSE, "truncated at byte offset %zu: length of %s runs past the end of %s",
                           g.off, pb_field_label(&g, lab, sizeof lab), pb_type(r));
        if (e == 2)
            return dt_fail(DUCTILE_ERR_PARSE, "malformed at byte offset %zu: varint longer than 10 bytes in %s",
                           g.off, pb_type(r));
        g.off = r->pos;
        remain = r->end - r->pos;
        if (n > remain)
            return dt_fail(DUCTILE_ERR_PARSE, "truncated at byte offset %zu: %s needs %llu bytes, %zu remain",
                           g.off, pb_field_label(&g, lab, sizeof lab), (unsigned long long)n, remain);
        g.len = (size_t)n;
        r->pos += g.len;
        break;
    }
    case PB_SGROUP:
    case PB_EGROUP:
        return dt_fail(DUCTILE_ERR_PARSE, "malformed at byte offset %zu: %s has wire type %d (group); groups are not supported",
                       key_off, pb_field_label(&g, lab, sizeof lab), g.wire);
    default:
        return dt_fail(DUCTILE_ERR_PARSE, "malformed at byte offset %zu: invalid wire type %d in %s",
                       key_off, g.wire, pb_type(r));
    }
    *f = g;
    *more = true;
    return DUCTILE_OK;
}

ductile_status pb_expect(const pb_field *f, int wire)
{
    char lab[160];
    if (f->wire == wire) return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_PARSE, "malformed at byte offset %zu: %s has wire type %d, expected %d (%s)",
                   f->off, pb_field_label(f, lab, sizeof lab), f->wire, wire, pb_wire_names[wire]);
}

ductile_status pb_sub(const pb_field *f, const pb_msgdesc *desc, pb_reader *out)
{
    char lab[160];
    DT_TRY(pb_expect(f, PB_LEN));
    if (f->from->depth + 1 > PB_MAX_DEPTH)
        return dt_fail(DUCTILE_ERR_PARSE, "malformed at byte offset %zu: messages nested deeper than %d in %s",
                       f->off, PB_MAX_DEPTH, pb_field_label(f, lab, sizeof lab));
    out->base = f->from->base;
    out->pos = f->off;
    out->end = f->off + f->len;
    out->desc = desc;
    out->depth = f->from->depth + 1;
    return DUCTILE_OK;
}

ductile_status pb_packed_count(const pb_field *f, int elem_wire, size_t *count)
{
    char lab[160];
    DT_TRY(pb_expect(f, PB_LEN));
    const uint8_t *b = pb_bytes(f);
    if (elem_wire == PB_VARINT) {
        size_t n = 0;
        for (size_t i = 0; i < f->len; i++) n += !(b[i] & 0x80);
        if (f->len && (b[f->len - 1] & 0x80))
            return dt_fail(DUCTILE_ERR_PARSE, "truncated at byte offset %zu: last varint of packed %s runs past its end",
                           f->off + f->len - 1, pb_field_label(f, lab, sizeof lab));
        *count = n;
        return DUCTILE_OK;
    }
    size_t w = elem_wire == PB_I64 ? 8 : 4;
    if (f->len % w)
        return dt_fail(DUCTILE_ERR_PARSE, "malformed at byte offset %zu: packed %s has %zu bytes, not a multiple of %zu",
                       f->off, pb_field_label(f, lab, sizeof lab), f->len, w);
    *count = f->len / w;
    return DUCTILE_OK;
}

ductile_status pb_packed_varint(const pb_field *f, size_t *pos, uint64_t *v)
{
    char lab[160];
    size_t start = *pos;
    int e = pb_varint(f->from->base, pos, f->off + f->len, v);
    if (e == 1)
        return dt_fail(DUCTILE_ERR_PARSE, "truncated at byte offset %zu: varint of packed %s runs past its end",
                       start, pb_field_label(f, lab, sizeof lab));
    if (e == 2)
        return dt_fail(DUCTILE_ERR_PARSE, "malformed at byte offset %zu: varint longer than 10 bytes in packed %s",
                       start, pb_field_label(f, lab, sizeof lab));
    return DUCTILE_OK;
}
