"""The network definition: Network, its Tensor and Layer views, and TensorRT's OnnxParser."""
import ctypes
import os

from ._enums import ActivationType, ElementWiseOperation, to_numpy_dtype
from ._lib import Dims, Error, c_int, check, enc, free_quietly, lib, new_handle, text
from .trt import TrtNetwork, TrtParser


class _View:
    """A tensor or layer handle. The network owns the C object; the view keeps the network
    alive so the handle cannot dangle."""

    def __init__(self, network, handle):
        self._network = network
        self._handle = handle

    def __eq__(self, other):
        return type(self) is type(other) and self._handle == other._handle

    def __hash__(self):
        return hash((type(self), self._handle))


class Tensor(_View):
    @property
    def name(self):
        return text(lib.ductile_tensor_name(self._handle))

    @property
    def dtype(self):
        return to_numpy_dtype(lib.ductile_tensor_dtype(self._handle))

    @property
    def shape(self):
        """Declared shape, -1 for a dynamic dim; None when the rank is unknown."""
        return lib.ductile_tensor_dims(self._handle).to_tuple()

    @shape.setter
    def shape(self, dims):
        """Overrides a network input's declared shape, as TensorRT's `tensor.shape = ...`:
        -1 makes a dim dynamic (a dim the model fixes gets the symbol "<input>_dim<i>"), a
        size fixes it. See ductile_network_set_input_dims."""
        check(lib.ductile_network_set_input_dims(self._network._handle, self._handle,
                                                 ctypes.byref(Dims.of(dims))))

    @property
    def dim_names(self):
        shape = self.shape or ()
        return tuple(text(lib.ductile_tensor_dim_name(self._handle, i)) for i in range(len(shape)))

    @property
    def is_network_input(self):
        return bool(lib.ductile_tensor_is_input(self._handle))

    @property
    def is_network_output(self):
        return bool(lib.ductile_tensor_is_output(self._handle))

    def __repr__(self):
        return f"<ductile.Tensor {self.name!r} {self.dtype} {self.shape}>"


class Layer(_View):
    @property
    def name(self):
        return text(lib.ductile_layer_name(self._handle))

    @property
    def type(self):
        """The ONNX op type ("Conv")."""
        return text(lib.ductile_layer_op_type(self._handle))

    @property
    def num_inputs(self):
        return lib.ductile_layer_num_inputs(self._handle)

    @property
    def num_outputs(self):
        return lib.ductile_layer_num_outputs(self._handle)

    def get_input(self, index):
        index = c_int(index, "int32", "Layer.get_input: index")
        return self._network._tensor(lib.ductile_layer_get_input(self._handle, index),
                                     "layer input", index)

    def get_output(self, index):
        index = c_int(index, "int32", "Layer.get_output: index")
        return self._network._tensor(lib.ductile_layer_get_output(self._handle, index),
                                     "layer output", index)

    def __repr__(self):
        return f"<ductile.Layer {self.name!r} {self.type}>"


class Network(TrtNetwork):
    """An editable network definition. Made by Builder.create_network() or Builder.parse_onnx."""

    def __init__(self, builder_handle):
        self._handle = new_handle(lib.ductile_network_create, builder_handle)
        self._free = lib.ductile_network_free

    def __del__(self):
        free_quietly(getattr(self, "_free", None), getattr(self, "_handle", None))

    def _tensor(self, handle, what, index):
        if not handle:
            raise IndexError(f"{what} index {index} out of range")
        return Tensor(self, handle)

    def _parse_file(self, path):
        check(lib.ductile_onnx_parse_file(self._handle, enc(os.fspath(path))))

    def _parse_bytes(self, data):
        data = bytes(data)
        check(lib.ductile_onnx_parse_memory(self._handle, data, len(data)))

    @property
    def num_inputs(self):
        return lib.ductile_network_num_inputs(self._handle)

    @property
    def num_outputs(self):
        return lib.ductile_network_num_outputs(self._handle)

    @property
    def num_layers(self):
        return lib.ductile_network_num_layers(self._handle)

    def get_input(self, index):
        index = c_int(index, "int32", "Network.get_input: index")
        return self._tensor(lib.ductile_network_get_input(self._handle, index), "input", index)

    def get_output(self, index):
        index = c_int(index, "int32", "Network.get_output: index")
        return self._tensor(lib.ductile_network_get_output(self._handle, index), "output", index)

    def get_layer(self, index):
        index = c_int(index, "int32", "Network.get_layer: index")
        handle = lib.ductile_network_get_layer(self._handle, index)
        if not handle:
            raise IndexError(f"layer index {index} out of range")
        return Layer(self, handle)

    def find_tensor(self, name):
        """The tensor of that name, or None."""
        handle = lib.ductile_network_find_tensor(self._handle, enc(name))
        return Tensor(self, handle) if handle else None

    @property
    def inputs(self):
        return [self.get_input(i) for i in range(self.num_inputs)]

    @property
    def outputs(self):
        return [self.get_output(i) for i in range(self.num_outputs)]

    @property
    def layers(self):
        return [self.get_layer(i) for i in range(self.num_layers)]

    def _own(self, tensor):
        if not isinstance(tensor, Tensor) or tensor._network is not self:
            raise ValueError(f"{tensor!r} is not a tensor of this network")
        return tensor._handle

    def mark_output(self, tensor):
        check(lib.ductile_network_mark_output(self._handle, self._own(tensor)))

    def unmark_output(self, tensor):
        check(lib.ductile_network_unmark_output(self._handle, self._own(tensor)))

    def add_activation(self, input, type):
        out = ctypes.c_void_p()
        check(lib.ductile_network_add_activation(self._handle, self._own(input),
                                                 int(ActivationType(type)), ctypes.byref(out)))
        return Layer(self, out.value)

    def add_elementwise(self, input1, input2, op):
        out = ctypes.c_void_p()
        check(lib.ductile_network_add_elementwise(self._handle, self._own(input1),
                                                  self._own(input2),
                                                  int(ElementWiseOperation(op)),
                                                  ctypes.byref(out)))
        return Layer(self, out.value)


class ParserError:
    """One error recorded by OnnxParser, as TensorRT's IParserError reads."""

    def __init__(self, error):
        self._error = error

    def desc(self):
        return str(self._error)

    def code(self):
        return self._error.status

    def __str__(self):
        return str(self._error)


class OnnxParser(TrtParser):
    """TensorRT's parser: fills an empty network; failures are recorded, not raised."""

    def __init__(self, network, logger=None):
        self._network = network
        self._errors = []

    def _try(self, parse, arg):
        self._errors.clear()
        try:
            parse(arg)
        except Error as e:
            self._errors.append(ParserError(e))
            return False
        return True

    def parse_from_file(self, path):
        return self._try(self._network._parse_file, path)

    def parse(self, model):
        return self._try(self._network._parse_bytes, model)

    @property
    def num_errors(self):
        return len(self._errors)

    def get_error(self, index):
        return self._errors[index]

    def clear_errors(self):
        self._errors.clear()
