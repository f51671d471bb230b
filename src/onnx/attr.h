#ifndef DT_ONNX_ATTR_H
#define DT_ONNX_ATTR_H

#include "onnx/onnx_internal.h"

/* Decodes an AttributeProto; a GRAPH one into a nested network (dt_onnx_subgraph). TENSORS, SPARSE_TENSOR(S) and TYPE_PROTO(S) attributes:
 * DUCTILE_ERR_UNSUPPORTED "attribute '<name>' of type <TYPE> is not supported by ductile". */
ductile_status dt_onnx_attr(dt_import *im, const pb_field *f, dt_attr *a);

#endif
