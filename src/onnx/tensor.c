/* TensorProto -> constant tensor. raw_data stays in the model's buffer when aligned for its
 * dtype (zero-copy weights); typed fields (float_data, int64_data, ...) are decoded into the
 * arena, since their wire form (varints) is not the in-memory form. The 4-bit and 2-bit types
 * are packed in the file (raw_data and int32_data alike: two or four per byte, low bits first)
 * and one byte per element in memory, so they are always unpacked into the arena. */
#include "onnx/onnx_internal.h"
#include "core/checked.h"
#include "core/dtype.h"
#include "core/status.h"

#include <stdint.h>
#include <string.h>

enum { T_DIMS = 1, T_DTYPE = 2, T_SEGMENT = 3, T_FLOAT = 4, T_INT32 = 5, T_STRING = 6,
       T_INT64 = 7, T_NAME = 8, T_RAW = 9, T_DOUBLE = 10, T_UINT64 = 11, T_EXTERNAL = 13,
       T_LOCATION = 14 };

/* The typed field that holds elements of a dtype (onnx.proto's comments on each field). */
static int dt_typed_field(int dtype)
{
    switch (dtype) {
    case DUCTILE_FLOAT32: return T_FLOAT;
    case DUCTILE_INT64: return T_INT64;
    case DUCTILE_FLOAT64: return T_DOUBLE;
    case DUCTILE_UINT32: case DUCTILE_UINT64: return T_UINT64;
    default: return T_INT32;   /* int32, int16, int8, uint16, uint8, bool, float16, bfloat16,
                                  float8 (one per entry), 4-bit and 2-bit (packed bytes) */
    }
}

static const char *dt_typed_name(int field)
{
    switch (field) {
    case T_FLOAT: return "float_data";
    case T_INT64: return "int64_data";
    case T_DOUBLE: return "double_data";
    case T_UINT64: return "uint64_data";
    default: return "int32_data";
    }
}

static bool dt_is_typed(uint32_t num)
{
    return num == T_FLOAT || num == T_INT32 || num == T_INT64 || num == T_DOUBLE || num == T_UINT64;
}

/* Wire form of one element of a typed field. */
static int dt_elem_wire(uint32_t num)
{
    return num == T_FLOAT ? PB_I32 : num == T_DOUBLE ? PB_I64 : PB_VARINT;
}

static void dt_store(uint8_t *dst, size_t es, uint64_t v)
{
    /* Narrower types keep the low bytes: int32_data holds int8/float16 bit patterns. */
    switch (es) {
    case 1: { uint8_t x = (uint8_t)v; memcpy(dst, &x, 1); break; }
    case 2: { uint16_t x = (uint16_t)v; memcpy(dst, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(dst, &x, 4); break; }
    default: memcpy(dst, &v, 8); break;
    }
}

/* Elements of field num in one occurrence f, packed or not: count only (dst NULL) or decode. */
static ductile_status dt_typed_elems(const pb_field *f, int wire, size_t es, uint8_t *dst,
                                     size_t cap, size_t *n)
{
    if (f->wire != PB_LEN) {
        DT_TRY(pb_expect(f, wire));
        if (dst && *n < cap) dt_store(dst + *n * es, es, f->u);
        (*n)++;
        return DUCTILE_OK;
    }
    size_t count;
    DT_TRY(pb_packed_count(f, wire, &count));
    if (!dst) {
        *n += count;
        return DUCTILE_OK;
    }
    const uint8_t *b = pb_bytes(f);
    size_t pos = f->off;
    for (size_t i = 0; i < count && *n < cap; i++, (*n)++) {
        uint64_t v;
        if (wire == PB_VARINT) {
            DT_TRY(pb_packed_varint(f, &pos, &v));
        } else if (wire == PB_I32) {
            uint32_t x;
            memcpy(&x, b + i * 4, 4);
            v = x;
        } else {
            memcpy(&v, b + i * 8, 8);
        }
        dt_store(dst + *n * es, es, v);
    }
    return DUCTILE_OK;
}

/* Spreads count elements of bits (4 or 2) each, packed low bits first in src, one per byte of
 * dst. dst may be src: it is filled from the end, and element i reads byte i / per <= i. */
static void dt_unpack_bits(uint8_t *dst, const uint8_t *src, int64_t count, int bits)
{
    int per = 8 / bits;
    unsigned mask = (1u << bits) - 1;
    for (int64_t i = count - 1; i >= 0; i--)
        dst[i] = (uint8_t)((src[i / per] >> (i % per * bits)) & mask);
}

/* Unpacks t's packed file data (in place when it is already in the arena). */
static ductile_status dt_unpack_into_arena(dt_import *im, ductile_tensor *t, const uint8_t *packed,
                                           bool in_arena, int64_t count, int bits)
{
    uint8_t *dst = in_arena ? (uint8_t *)packed : dt_arena_alloc(&im->net->arena, (size_t)count);
    if (!dst && count)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory (%lld bytes)", t->name,
                       (long long)count);
    if (count) dt_unpack_bits(dst, packed, count, bits);
    t->data = dst;
    t->nbytes = (size_t)count;
    return DUCTILE_OK;
}

/* A STRING tensor: one ductile_string per element, viewing its string_data entry in the
 * model's buffer (kept as long as the network), so string constants are not copied. */
static ductile_status dt_onnx_string_tensor(dt_import *im, const pb_field *f, ductile_tensor *t,
                                            const int64_t *dims, size_t rank)
{
    const char *tn = t->name;
    char dbuf[200];
    t->dtype = DUCTILE_STRING;
    t->rank = (int)rank;
    t->index = -1;
    for (size_t i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return dt_fail(DUCTILE_ERR_PARSE, "tensor '%s': dim %zu is %lld, expected >= 0", tn, i,
                           (long long)dims[i]);
        t->dims[i] = dims[i];
    }
    int64_t count;
    size_t nbytes;
    if (!dt_dims_product(t->dims, t->rank, &count) || !dt_mul_size((size_t)count, sizeof(ductile_string), &nbytes))
        return dt_fail(DUCTILE_ERR_PARSE, "tensor '%s': dims %s overflow", tn,
                       dt_format_dims(dbuf, sizeof dbuf, t->dims, t->rank, NULL));
    ductile_string *v = dt_arena_alloc(&im->net->arena, nbytes ? nbytes : 1);
    if (!v) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory (%zu bytes)", tn, nbytes);
    pb_reader r;
    pb_field g;
    bool more;
    size_t n = 0;
    DT_TRY(pb_sub(f, &dt_pb_tensor, &r));
    for (;;) {
        DT_TRY(pb_next(&r, &g, &more));
        if (!more) break;
        if (g.num != T_STRING) continue;
        DT_TRY(pb_expect(&g, PB_LEN));
        if (n < (size_t)count) v[n] = (ductile_string){(const char *)pb_bytes(&g), g.len};
        n++;
    }
    if (n != (size_t)count)
        return dt_fail(DUCTILE_ERR_PARSE, "tensor '%s': string_data has %zu elements, expected %lld (dims %s)", tn,
                       n, (long long)count, dt_format_dims(dbuf, sizeof dbuf, t->dims, t->rank, NULL));
    t->data = v;
    t->nbytes = nbytes;
    return DUCTILE_OK;
}

ductile_status dt_onnx_tensor(dt_import *im, const pb_field *f, const char *name_override,
                              ductile_tensor *t)
{
    pb_reader r;
    pb_field g, raw = {0}, name = {0};
    bool more, has_raw = false, has_name = false, segment = false, has_strings = false;
    int64_t dims[DT_MAX_DIMS];
    size_t rank = 0, typed_n[16] = {0};
    int64_t dtype = 0, location = 0;

    DT_TRY(pb_sub(f, &dt_pb_tensor, &r));
    for (;;) {
        DT_TRY(pb_next(&r, &g, &more));
        if (!more) break;
        switch (g.num) {
        case T_DIMS: {
            /* dims may be packed or not; collected one at a time either way. */
            size_t n = 0, pos = g.off;
            if (g.wire == PB_LEN) DT_TRY(pb_packed_count(&g, PB_VARINT, &n));
            else { DT_TRY(pb_expect(&g, PB_VARINT)); n = 1; }
            for (size_t i = 0; i < n; i++, rank++) {
                uint64_t v = g.u;
                if (g.wire == PB_LEN) DT_TRY(pb_packed_varint(&g, &pos, &v));
                if (rank < DT_MAX_DIMS) dims[rank] = (int64_t)v;
            }
            break;
        }
        case T_DTYPE: DT_TRY(pb_expect(&g, PB_VARINT)); dtype = (int64_t)g.u; break;
        case T_SEGMENT: segment = true; break;
        case T_STRING: has_strings = true; break;
        case T_NAME: DT_TRY(pb_expect(&g, PB_LEN)); name = g; has_name = true; break;
        case T_RAW: DT_TRY(pb_expect(&g, PB_LEN)); raw = g; has_raw = true; break;
        case T_LOCATION: DT_TRY(pb_expect(&g, PB_VARINT)); location = (int64_t)g.u; break;
        default:
            if (dt_is_typed(g.num))
                DT_TRY(dt_typed_elems(&g, dt_elem_wire(g.num), 0, NULL, 0, &typed_n[g.num]));
            break;
        }
    }

    t->name = name_override ? name_override : has_name ? dt_onnx_str(im, &name) : "";
    if (!t->name) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory reading a tensor name");
    const char *tn = t->name;
    if (rank > DT_MAX_DIMS)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "tensor '%s': rank %zu is above the maximum of %d",
                       tn, rank, DT_MAX_DIMS);
    if (dtype == DUCTILE_STRING || has_strings) {
        if (dtype != DUCTILE_STRING)
            return dt_fail(DUCTILE_ERR_PARSE, "tensor '%s': has string_data, expected %s for dtype %s", tn,
                           dt_typed_name(dt_typed_field((int)dtype)), ductile_dtype_name((ductile_dtype)dtype));
        if (segment)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "tensor '%s': segmented tensors are not supported by ductile", tn);
        if (location != 0 || has_raw)
            return dt_fail(DUCTILE_ERR_PARSE, "tensor '%s': a string tensor keeps its elements in string_data, "
                           "not in %s", tn, has_raw ? "raw_data" : "external data");
        return dt_onnx_string_tensor(im, f, t, dims, rank);
    }
    if (dtype == 0)
        return dt_fail(DUCTILE_ERR_PARSE, "tensor '%s': data_type is missing", tn);
    size_t es = ductile_dtype_size((ductile_dtype)dtype);
    if (es == 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "tensor '%s': dtype %lld is not supported by ductile",
                       tn, (long long)dtype);
    if (segment)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "tensor '%s': segmented tensors are not supported by ductile", tn);

    t->dtype = (int)dtype;
    t->rank = (int)rank;
    t->index = -1;
    for (size_t i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return dt_fail(DUCTILE_ERR_PARSE, "tensor '%s': dim %zu is %lld, expected >= 0", tn, i,
                           (long long)dims[i]);
        t->dims[i] = dims[i];
    }
    int64_t count;
    size_t nbytes;
    char dbuf[200];
    if (!dt_dims_product(t->dims, t->rank, &count) || !dt_mul_size((size_t)count, es, &nbytes))
        return dt_fail(DUCTILE_ERR_PARSE, "tensor '%s': dims %s overflow", tn,
                       dt_format_dims(dbuf, sizeof dbuf, t->dims, t->rank, NULL));
    t->nbytes = nbytes;
    /* The packed types: bits < 8, and the file holds file_bytes rather than nbytes. */
    int bits = dt_dtype_file_bits((int)dtype);
    size_t file_bytes = nbytes;
    if (bits < 8) file_bytes = (size_t)count / (size_t)(8 / bits) + ((size_t)count % (size_t)(8 / bits) != 0);

    if (location == 1) {
        if (bits >= 8) return dt_onnx_external(im, t, f, nbytes);
        DT_TRY(dt_onnx_external(im, t, f, file_bytes));
        return dt_unpack_into_arena(im, t, t->data, false, count, bits);
    }
    if (location != 0)
        return dt_fail(DUCTILE_ERR_PARSE, "tensor '%s': data_location %lld, expected 0 (default) or 1 (external)",
                       tn, (long long)location);

    if (has_raw) {
        if (raw.len != file_bytes)
            return dt_fail(DUCTILE_ERR_PARSE, "tensor '%s': raw_data has %zu bytes, expected %zu (dims %s, %s%s)",
                           tn, raw.len, file_bytes, dt_format_dims(dbuf, sizeof dbuf, t->dims, t->rank, NULL),
                           ductile_dtype_name((ductile_dtype)dtype), bits < 8 ? ", packed" : "");
        const uint8_t *p = pb_bytes(&raw);
        if (bits < 8) return dt_unpack_into_arena(im, t, p, false, count, bits);
        if (nbytes && (uintptr_t)p % es == 0) {
            t->data = p;
            return DUCTILE_OK;
        }
        void *copy = dt_arena_alloc(&im->net->arena, nbytes);
        if (!copy) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory (%zu bytes)", tn, nbytes);
        if (nbytes) memcpy(copy, p, nbytes);
        t->data = copy;
        return DUCTILE_OK;
    }

    int want = dt_typed_field((int)dtype);
    for (int k = 0; k < 16; k++) {
        if (k != want && typed_n[k])
            return dt_fail(DUCTILE_ERR_PARSE, "tensor '%s': has %s, expected %s for dtype %s", tn,
                           dt_typed_name(k), dt_typed_name(want), ductile_dtype_name((ductile_dtype)dtype));
    }
    /* For the packed types each int32_data entry holds one packed byte. */
    size_t entries = bits < 8 ? file_bytes : (size_t)count;
    if (typed_n[want] != entries)
        return dt_fail(DUCTILE_ERR_PARSE, "tensor '%s': %s has %zu elements, expected %zu (dims %s%s)", tn,
                       dt_typed_name(want), typed_n[want], entries,
                       dt_format_dims(dbuf, sizeof dbuf, t->dims, t->rank, NULL),
                       bits < 8 ? ", packed" : "");
    uint8_t *dst = dt_arena_alloc(&im->net->arena, nbytes);
    if (!dst) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory (%zu bytes)", tn, nbytes);
    t->data = dst;
    if (!count) return DUCTILE_OK;
    size_t n = 0;
    DT_TRY(pb_sub(f, &dt_pb_tensor, &r));
    for (;;) {
        DT_TRY(pb_next(&r, &g, &more));
        if (!more) break;
        if ((int)g.num == want) DT_TRY(dt_typed_elems(&g, dt_elem_wire(g.num), es, dst, entries, &n));
    }
    if (bits < 8) return dt_unpack_into_arena(im, t, dst, true, count, bits);
    return DUCTILE_OK;
}
