/* Field names of the ONNX messages the importer reads (onnx.proto3), for error messages. */
#include "onnx/onnx_internal.h"

#define DT_DESC(var, type, ...)                                                    \
    static const char *const var##_names[] = {__VA_ARGS__};                        \
    const pb_msgdesc var = {type, var##_names, sizeof var##_names / sizeof(char *)}

DT_DESC(dt_pb_model, "ModelProto", [1] = "ir_version", [2] = "producer_name",
        [3] = "producer_version", [4] = "domain", [5] = "model_version", [6] = "doc_string",
        [7] = "graph", [8] = "opset_import", [14] = "metadata_props", [20] = "training_info",
        [25] = "functions");
DT_DESC(dt_pb_graph, "GraphProto", [1] = "node", [2] = "name", [5] = "initializer",
        [10] = "doc_string", [11] = "input", [12] = "output", [13] = "value_info",
        [14] = "quantization_annotation", [15] = "sparse_initializer");
DT_DESC(dt_pb_node, "NodeProto", [1] = "input", [2] = "output", [3] = "name", [4] = "op_type",
        [5] = "attribute", [6] = "doc_string", [7] = "domain", [8] = "overload");
DT_DESC(dt_pb_attr, "AttributeProto", [1] = "name", [2] = "f", [3] = "i", [4] = "s", [5] = "t",
        [6] = "g", [7] = "floats", [8] = "ints", [9] = "strings", [10] = "tensors",
        [11] = "graphs", [13] = "doc_string", [14] = "tp", [15] = "type_protos", [20] = "type",
        [21] = "ref_attr_name", [22] = "sparse_tensor", [23] = "sparse_tensors");
DT_DESC(dt_pb_tensor, "TensorProto", [1] = "dims", [2] = "data_type", [3] = "segment",
        [4] = "float_data", [5] = "int32_data", [6] = "string_data", [7] = "int64_data",
        [8] = "name", [9] = "raw_data", [10] = "double_data", [11] = "uint64_data",
        [12] = "doc_string", [13] = "external_data", [14] = "data_location");
DT_DESC(dt_pb_value_info, "ValueInfoProto", [1] = "name", [2] = "type", [3] = "doc_string");
DT_DESC(dt_pb_type, "TypeProto", [1] = "tensor_type", [4] = "sequence_type", [5] = "map_type",
        [6] = "denotation", [8] = "sparse_tensor_type", [9] = "optional_type");
DT_DESC(dt_pb_type_sequence, "TypeProto.Sequence", [1] = "elem_type");
DT_DESC(dt_pb_type_optional, "TypeProto.Optional", [1] = "elem_type");
DT_DESC(dt_pb_type_tensor, "TypeProto.Tensor", [1] = "elem_type", [2] = "shape");
DT_DESC(dt_pb_shape, "TensorShapeProto", [1] = "dim");
DT_DESC(dt_pb_dim, "TensorShapeProto.Dimension", [1] = "dim_value", [2] = "dim_param",
        [3] = "denotation");
DT_DESC(dt_pb_opset, "OperatorSetIdProto", [1] = "domain", [2] = "version");
DT_DESC(dt_pb_entry, "StringStringEntryProto", [1] = "key", [2] = "value");
