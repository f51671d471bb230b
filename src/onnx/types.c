/* ValueInfoProto -> declared dtype and shape (graph inputs, outputs, value_info hints). */
#include "onnx/onnx_internal.h"
#include "core/status.h"

#include <string.h>

static ductile_status dt_dim(dt_import *im, const pb_field *f, dt_vtype *out)
{
    pb_reader r;
    pb_field g;
    bool more;
    int64_t value = -1;
    const char *sym = NULL;
    DT_TRY(pb_sub(f, &dt_pb_dim, &r));
    for (;;) {
        DT_TRY(pb_next(&r, &g, &more));
        if (!more) break;
        if (g.num == 1) {
            DT_TRY(pb_expect(&g, PB_VARINT));
            value = (int64_t)g.u;
            sym = NULL;
        } else if (g.num == 2) {
            DT_TRY(pb_expect(&g, PB_LEN));
            sym = dt_onnx_str(im, &g);
            if (!sym) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory reading a dim_param");
            value = -1;
        }
    }
    /* A negative dim_value is not a size; it is read as unknown. An empty dim_param names
     * nothing. */
    if (value < -1) value = -1;
    if (sym && !sym[0]) sym = NULL;
    if (out->raw_rank < DT_MAX_DIMS) {
        out->dims[out->raw_rank] = value;
        out->syms[out->raw_rank] = sym;
    }
    out->raw_rank++;
    return DUCTILE_OK;
}

static ductile_status dt_tensor_type(dt_import *im, const pb_field *f, dt_vtype *out)
{
    pb_reader r, sr;
    pb_field g, h;
    bool more;
    out->is_tensor = true;
    DT_TRY(pb_sub(f, &dt_pb_type_tensor, &r));
    for (;;) {
        DT_TRY(pb_next(&r, &g, &more));
        if (!more) break;
        if (g.num == 1) {
            DT_TRY(pb_expect(&g, PB_VARINT));
            out->elem = (int)(g.u > 1000 ? 1000 : g.u);   /* any unknown type stays unknown */
        } else if (g.num == 2) {
            out->raw_rank = 0;
            DT_TRY(pb_sub(&g, &dt_pb_shape, &sr));
            for (;;) {
                DT_TRY(pb_next(&sr, &h, &more));
                if (!more) break;
                if (h.num == 1) DT_TRY(dt_dim(im, &h, out));
            }
            out->rank = out->raw_rank;
        }
    }
    return DUCTILE_OK;
}

/* A TypeProto: a tensor, or a sequence or optional of tensors (optional of a sequence too);
 * deeper nestings and maps get kind -1, which the graph input refuses and hints ignore. */
static ductile_status dt_type(dt_import *im, const pb_field *f, dt_vtype *out, int depth)
{
    pb_reader r, wr;
    pb_field h, g;
    bool more;
    DT_TRY(pb_sub(f, &dt_pb_type, &r));
    for (;;) {
        DT_TRY(pb_next(&r, &h, &more));
        if (!more) break;
        if (h.num == 1) {
            DT_TRY(dt_tensor_type(im, &h, out));
        } else if (h.num == 4 || h.num == 9) {
            bool seq = h.num == 4;
            DT_TRY(pb_sub(&h, seq ? &dt_pb_type_sequence : &dt_pb_type_optional, &wr));
            dt_vtype inner = {.rank = -1};
            for (;;) {
                DT_TRY(pb_next(&wr, &g, &more));
                if (!more) break;
                if (g.num == 1 && depth < 2) DT_TRY(dt_type(im, &g, &inner, depth + 1));
            }
            out->is_tensor = false;
            out->elem = inner.elem;
            out->rank = -1;
            out->raw_rank = 0;
            if (seq) out->kind = inner.is_tensor ? DUCTILE_VALUE_SEQUENCE : -1;
            else out->kind = inner.is_tensor ? DUCTILE_VALUE_OPTIONAL_TENSOR
                           : inner.kind == DUCTILE_VALUE_SEQUENCE ? DUCTILE_VALUE_OPTIONAL_SEQUENCE : -1;
        } else if (h.num == 5 || h.num == 8) {
            out->is_tensor = false;
            out->kind = -1;
        }
    }
    return DUCTILE_OK;
}

ductile_status dt_onnx_type_proto(dt_import *im, const pb_field *f, dt_vtype *out)
{
    memset(out, 0, sizeof *out);
    out->name = "";
    out->rank = -1;
    out->has_type = true;
    return dt_type(im, f, out, 0);
}

ductile_status dt_onnx_value_info(dt_import *im, const pb_field *f, dt_vtype *out)
{
    pb_reader r;
    pb_field g;
    bool more;
    memset(out, 0, sizeof *out);
    out->name = "";
    out->rank = -1;
    DT_TRY(pb_sub(f, &dt_pb_value_info, &r));
    for (;;) {
        DT_TRY(pb_next(&r, &g, &more));
        if (!more) break;
        if (g.num == 1) {
            DT_TRY(pb_expect(&g, PB_LEN));
            out->name = dt_onnx_str(im, &g);
            if (!out->name) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory reading a value_info name");
        } else if (g.num == 2) {
            out->has_type = true;
            DT_TRY(dt_type(im, &g, out, 0));
        }
    }
    if (out->rank > DT_MAX_DIMS) out->rank = DT_MAX_DIMS + 1;   /* caller refuses or ignores */
    return DUCTILE_OK;
}
