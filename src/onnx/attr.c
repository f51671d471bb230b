/* AttributeProto -> dt_attr. Messages name the attribute; the caller prefixes the node. */
#include "onnx/onnx_internal.h"
#include "onnx/attr.h"
#include "core/status.h"

#include <string.h>

enum { A_NAME = 1, A_F = 2, A_I = 3, A_S = 4, A_T = 5, A_G = 6, A_FLOATS = 7, A_INTS = 8,
       A_STRINGS = 9, A_TENSORS = 10, A_GRAPHS = 11, A_TP = 14, A_TYPE_PROTOS = 15, A_TYPE = 20,
       A_SPARSE = 22, A_SPARSES = 23 };

/* AttributeProto.AttributeType values ductile does not hold in dt_attr. */
static const char *dt_attr_type_name(int64_t type)
{
    switch (type) {
    case 9: return "TENSORS";
    case 10: return "GRAPHS";
    case 11: return "SPARSE_TENSOR";
    case 12: return "SPARSE_TENSORS";
    case 13: return "TYPE_PROTO";
    case 14: return "TYPE_PROTOS";
    default: return NULL;
    }
}

/* Type of an attribute written before IR version 2 added the type field: the field set. */
static int64_t dt_attr_guess(const bool seen[32])
{
    static const struct { int field; int type; } order[] = {
        {A_T, DT_ATTR_TENSOR}, {A_G, 5}, {A_S, DT_ATTR_STRING}, {A_FLOATS, DT_ATTR_FLOATS},
        {A_INTS, DT_ATTR_INTS}, {A_STRINGS, DT_ATTR_STRINGS}, {A_TENSORS, 9}, {A_GRAPHS, 10},
        {A_SPARSE, 11}, {A_F, DT_ATTR_FLOAT}, {A_I, DT_ATTR_INT}};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
        if (seen[order[k].field]) return order[k].type;
    return 0;
}

ductile_status dt_onnx_attr(dt_import *im, const pb_field *f, dt_attr *a)
{
    pb_reader r;
    pb_field g, t_field = {0}, g_field = {0}, tp_field = {0};
    bool more, seen[32] = {0};
    int64_t type = 0;
    size_t n_floats = 0, n_ints = 0, n_strings = 0;
    dt_arena *arena = &im->net->arena;

    memset(a, 0, sizeof *a);
    a->name = "";
    DT_TRY(pb_sub(f, &dt_pb_attr, &r));
    for (;;) {
        DT_TRY(pb_next(&r, &g, &more));
        if (!more) break;
        if (g.num < 32) seen[g.num] = true;
        switch (g.num) {
        case A_NAME:
            DT_TRY(pb_expect(&g, PB_LEN));
            if (!(a->name = dt_onnx_str(im, &g))) goto oom;
            break;
        case A_TYPE: DT_TRY(pb_expect(&g, PB_VARINT)); type = (int64_t)g.u; break;
        case A_F: {
            DT_TRY(pb_expect(&g, PB_I32));
            uint32_t bits = (uint32_t)g.u;
            memcpy(&a->f, &bits, 4);
            break;
        }
        case A_I: DT_TRY(pb_expect(&g, PB_VARINT)); a->i = (int64_t)g.u; break;
        case A_S:
            DT_TRY(pb_expect(&g, PB_LEN));
            if (!(a->s = dt_onnx_str(im, &g))) goto oom;
            a->s_len = g.len;
            break;
        case A_T: DT_TRY(pb_expect(&g, PB_LEN)); t_field = g; break;
        case A_G: DT_TRY(pb_expect(&g, PB_LEN)); g_field = g; break;
        case A_TP: DT_TRY(pb_expect(&g, PB_LEN)); tp_field = g; break;
        case A_FLOATS: {
            size_t n = 1;
            if (g.wire == PB_LEN) DT_TRY(pb_packed_count(&g, PB_I32, &n));
            else DT_TRY(pb_expect(&g, PB_I32));
            n_floats += n;
            break;
        }
        case A_INTS: {
            size_t n = 1;
            if (g.wire == PB_LEN) DT_TRY(pb_packed_count(&g, PB_VARINT, &n));
            else DT_TRY(pb_expect(&g, PB_VARINT));
            n_ints += n;
            break;
        }
        case A_STRINGS: DT_TRY(pb_expect(&g, PB_LEN)); n_strings++; break;
        default: break;
        }
    }
    if (type == 0) type = dt_attr_guess(seen);
    if (type == 13) {
        /* TYPE_PROTO (Optional's `type`): held as INTS {value kind, element dtype}, all a
         * layer needs of it, so the engine format has nothing new to store. */
        if (!seen[A_TP])
            return dt_fail(DUCTILE_ERR_PARSE, "attribute '%s' of type TYPE_PROTO has no type 'tp'", a->name);
        dt_vtype vt;
        DT_TRY(dt_onnx_type_proto(im, &tp_field, &vt));
        int kind = vt.is_tensor ? DUCTILE_VALUE_TENSOR : vt.kind;
        if ((!vt.is_tensor && vt.kind != DUCTILE_VALUE_SEQUENCE) || !vt.elem)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                           "attribute '%s' (TYPE_PROTO) is not a tensor or a sequence of tensors with an element type; ductile supports those",
                           a->name);
        int64_t *ints = dt_arena_alloc(arena, 2 * sizeof *ints);
        if (!ints) goto oom;
        ints[0] = kind;
        ints[1] = vt.elem;
        a->type = DT_ATTR_INTS;
        a->ints = ints;
        a->n = 2;
        return DUCTILE_OK;
    }
    const char *unsupported = dt_attr_type_name(type);
    if (unsupported)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute '%s' of type %s is not supported by ductile",
                       a->name, unsupported);
    if (type == DT_ATTR_GRAPH) {
        if (!seen[A_G])
            return dt_fail(DUCTILE_ERR_PARSE, "attribute '%s' of type GRAPH has no graph 'g'", a->name);
        return dt_onnx_subgraph(im, &g_field, a);
    }
    if (type < DT_ATTR_FLOAT || type > DT_ATTR_STRINGS)
        return dt_fail(DUCTILE_ERR_PARSE, "attribute '%s' has type %lld, expected an AttributeType (1..14)",
                       a->name, (long long)type);
    a->type = (int)type;

    switch (type) {
    case DT_ATTR_STRING:
        if (!a->s) a->s = "";
        return DUCTILE_OK;
    case DT_ATTR_TENSOR: {
        if (!seen[A_T])
            return dt_fail(DUCTILE_ERR_PARSE, "attribute '%s' of type TENSOR has no tensor 't'", a->name);
        ductile_tensor *t = dt_arena_alloc(arena, sizeof *t);
        if (!t) goto oom;
        DT_TRY(dt_onnx_tensor(im, &t_field, a->name, t));
        a->t = t;
        return DUCTILE_OK;
    }
    case DT_ATTR_FLOATS: a->n = (int64_t)n_floats; break;
    case DT_ATTR_INTS: a->n = (int64_t)n_ints; break;
    case DT_ATTR_STRINGS: a->n = (int64_t)n_strings; break;
    default: return DUCTILE_OK;
    }

    /* Second pass: the repeated fields, now that their counts are known. */
    float *floats = NULL;
    int64_t *ints = NULL;
    const char **strings = NULL;
    size_t k = 0;
    if (type == DT_ATTR_FLOATS && !(a->floats = floats = dt_arena_alloc(arena, n_floats * sizeof *floats)))
        goto oom;
    if (type == DT_ATTR_INTS && !(a->ints = ints = dt_arena_alloc(arena, n_ints * sizeof *ints))) goto oom;
    if (type == DT_ATTR_STRINGS && !(a->strings = strings = dt_arena_alloc(arena, n_strings * sizeof *strings)))
        goto oom;
    DT_TRY(pb_sub(f, &dt_pb_attr, &r));
    for (;;) {
        DT_TRY(pb_next(&r, &g, &more));
        if (!more) break;
        if (type == DT_ATTR_FLOATS && g.num == A_FLOATS) {
            if (g.wire == PB_LEN) {
                for (size_t j = 0; j < g.len / 4; j++) memcpy(&floats[k++], pb_bytes(&g) + 4 * j, 4);
            } else {
                uint32_t bits = (uint32_t)g.u;
                memcpy(&floats[k++], &bits, 4);
            }
        } else if (type == DT_ATTR_INTS && g.num == A_INTS) {
            if (g.wire == PB_LEN) {
                size_t pos = g.off;
                while (pos < g.off + g.len) {
                    uint64_t v;
                    DT_TRY(pb_packed_varint(&g, &pos, &v));
                    ints[k++] = (int64_t)v;
                }
            } else {
                ints[k++] = (int64_t)g.u;
            }
        } else if (type == DT_ATTR_STRINGS && g.num == A_STRINGS) {
            if (!(strings[k++] = dt_onnx_str(im, &g))) goto oom;
        }
    }
    return DUCTILE_OK;
oom:
    return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "attribute '%s': out of memory", a->name);
}
