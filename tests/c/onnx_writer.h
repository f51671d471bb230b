/* ONNX messages for the C tests (tensors, value infos, attributes, nodes, models) on top of
 * pbwrite.h's protobuf writer, so tests build explicit models without a model file. */
#ifndef DT_ONNX_WRITER_H
#define DT_ONNX_WRITER_H

#include "ductile.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbwrite.h"

/* ONNX messages (field numbers of onnx.proto). */
static inline pbw tensor_head(const char *name, int dtype, int rank, const int64_t *dims)
{
    pbw t = {0};
    for (int i = 0; i < rank; i++) w_int(&t, 1, dims[i]);
    w_int(&t, 2, dtype);
    if (name) w_str(&t, 8, name);
    return t;
}

static inline pbw tensor_raw(const char *name, int dtype, int rank, const int64_t *dims, const void *raw,
                      size_t n)
{
    pbw t = tensor_head(name, dtype, rank, dims);
    w_bytes(&t, 9, raw, n);
    return t;
}

static inline pbw tensor_external(const char *name, const char *location, const char *offset,
                           const char *length)
{
    int64_t d = 3;
    pbw t = tensor_head(name, DUCTILE_FLOAT32, 1, &d);
    const char *kv[] = {"location", location, "offset", offset, "length", length};
    for (int i = 0; i < 6; i += 2) {
        if (!kv[i + 1]) continue;
        pbw e = {0};
        w_str(&e, 1, kv[i]);
        w_str(&e, 2, kv[i + 1]);
        w_msg(&t, 13, e);
    }
    w_int(&t, 14, 1);
    return t;
}

/* ValueInfoProto; rank -1: no shape. A dim < 0 with a sym is a dim_param, without one neither. */
static inline pbw value_info(const char *name, int elem, int rank, const int64_t *dims,
                      const char *const *syms)
{
    pbw tt = {0}, type = {0}, v = {0};
    w_int(&tt, 1, elem);
    if (rank >= 0) {
        pbw shape = {0};
        for (int i = 0; i < rank; i++) {
            pbw d = {0};
            if (dims[i] >= 0) w_int(&d, 1, dims[i]);
            else if (syms && syms[i]) w_str(&d, 2, syms[i]);
            w_msg(&shape, 1, d);
        }
        w_msg(&tt, 2, shape);
    }
    w_msg(&type, 1, tt);
    w_str(&v, 1, name);
    w_msg(&v, 2, type);
    return v;
}

static inline pbw attr_int(const char *name, int64_t v)
{
    pbw a = {0};
    w_str(&a, 1, name);
    w_int(&a, 3, v);
    w_int(&a, 20, 2);
    return a;
}

static inline pbw attr_float(const char *name, float v)
{
    pbw a = {0};
    w_str(&a, 1, name);
    w_f32(&a, 2, v);
    w_int(&a, 20, 1);
    return a;
}

static inline pbw attr_str(const char *name, const char *v, int type)
{
    pbw a = {0};
    w_str(&a, 1, name);
    w_str(&a, 4, v);
    w_int(&a, 20, type);
    return a;
}

static inline pbw attr_tensor(const char *name, pbw t)
{
    pbw a = {0};
    w_str(&a, 1, name);
    w_msg(&a, 5, t);
    w_int(&a, 20, 4);
    return a;
}

/* NodeProto; ins and outs NULL-terminated; attrs consumed. */
static inline pbw node(const char *name, const char *op, const char *domain, const char *const *ins,
                const char *const *outs, pbw *attrs, int n_attrs)
{
    pbw n = {0};
    for (; ins && *ins; ins++) w_str(&n, 1, *ins);
    for (; outs && *outs; outs++) w_str(&n, 2, *outs);
    if (name) w_str(&n, 3, name);
    w_str(&n, 4, op);
    for (int i = 0; i < n_attrs; i++) w_msg(&n, 5, attrs[i]);
    if (domain) w_str(&n, 7, domain);
    return n;
}

/* ModelProto around a graph, default-domain opset 13 plus an optional second domain. */
static inline pbw model(pbw graph, const char *domain2, int version2)
{
    pbw m = {0}, o = {0};
    w_int(&m, 1, 8);
    w_str(&m, 2, "ductile-test");
    w_msg(&m, 7, graph);
    w_str(&o, 1, "");
    w_int(&o, 2, 13);
    w_msg(&m, 8, o);
    if (domain2) {
        pbw o2 = {0};
        w_str(&o2, 1, domain2);
        w_int(&o2, 2, version2);
        w_msg(&m, 8, o2);
    }
    return m;
}

#define S(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A graph of one node x -> node -> y, with x a float [2] input. */
static inline pbw one_node_model(pbw n, const char *domain2, int version2)
{
    pbw g = {0};
    int64_t d = 2;
    w_msg(&g, 1, n);
    w_str(&g, 2, "g");
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 1, &d, NULL));
    w_msg(&g, 12, value_info("y", DUCTILE_FLOAT32, 1, &d, NULL));
    return model(g, domain2, version2);
}

#endif
