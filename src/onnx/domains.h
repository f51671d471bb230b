/* The ops ductile runs from ONNX domains other than the default one (ai.onnx). */
#ifndef DT_ONNX_DOMAINS_H
#define DT_ONNX_DOMAINS_H

#include <stdbool.h>

/* The domain op_type belongs to when it is one of those ops ("ai.onnx.ml", ...), else NULL
 * (a default-domain op, or one ductile does not know). */
const char *dt_onnx_op_domain(const char *op_type);
/* Whether ductile runs some op of this (non-default) domain. */
bool dt_onnx_domain_known(const char *domain);

#endif
