"""ONNX's backend protocol (onnx.backend.base) over ductile, as onnxruntime.backend is for
onnxruntime, so ONNX's own test runner judges ductile the way it judges other backends:

    import ductile.backend
    onnx.backend.test.BackendTest(ductile.backend, __name__)

    rep = ductile.backend.prepare(model)          # parse now, build on first run
    outputs = rep.run([x, y])                     # a tuple in the model's output order

An engine needs a profile, and the backend protocol gives shapes only at run(): prepare()
parses (so an unsupported model fails there), and run() builds one engine per distinct set of
input shapes (min = opt = max = those shapes) and keeps it for the next run with the same
shapes. prepare(model, symbolic_dims=True) first replaces every input dim by a symbol, so the
same model goes through the dynamic-shape path with a profile pinned to the run's shapes.
"""
import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict

from ._lib import Error
from .builder import Builder


def make_dims_symbolic(model):
    """A copy of model whose graph inputs have a distinct named symbol for every dim."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    inits = {t.name for t in out.graph.initializer}
    for i, vi in enumerate(out.graph.input):
        if vi.name in inits or not vi.type.HasField("tensor_type"):
            continue
        if not vi.type.tensor_type.HasField("shape"):
            continue
        for k, d in enumerate(vi.type.tensor_type.shape.dim):
            d.ClearField("dim_value")
            d.dim_param = f"in{i}_d{k}"
    return out


class DuctileRep(BackendRep):
    """A parsed model; engines are built per set of input shapes (see the module's text)."""

    def __init__(self, model, network, builder, device="cpu"):
        self._device = device
        self._model = model
        self._builder = builder
        self._network = network
        inits = {t.name for t in model.graph.initializer}
        self._inputs = [vi for vi in model.graph.input if vi.name not in inits]
        self._input_names = [vi.name for vi in self._inputs]
        # "tensor_type", or "sequence_type" / "optional_type": fed as lists, None or a value.
        self._kinds = {vi.name: vi.type.WhichOneof("value") or "tensor_type" for vi in self._inputs}
        self._output_names = [vo.name for vo in model.graph.output]
        self._contexts = {}  # tuple of input shapes -> execution context (holds its engine)

    def _feeds(self, inputs):
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            inputs = list(inputs)
            if len(inputs) > len(self._input_names):
                raise Error(f"run: {len(inputs)} inputs given, the model has "
                            f"{len(self._input_names)} ({', '.join(self._input_names)})",
                            "DUCTILE_ERR_INVALID_ARGUMENT")
            feeds = dict(zip(self._input_names, inputs))
        # Sequences come as lists of arrays, optionals as None or their value.
        kinds = self._kinds
        for name, value in feeds.items():
            if kinds.get(name, "tensor_type") == "tensor_type" and not isinstance(value, (np.ndarray, np.generic)):
                raise Error(f"run: input '{name}' is a {type(value).__name__}, not a tensor (the model "
                            "declares a tensor)",
                            "DUCTILE_ERR_INVALID_ARGUMENT")
        feeds = {name: np.asarray(value) if kinds.get(name, "tensor_type") == "tensor_type" else value
                 for name, value in feeds.items()}
        for vi in self._inputs:
            if vi.name in feeds and kinds[vi.name] == "tensor_type":
                self._check_declared(vi, feeds[vi.name].shape)
        return feeds

    @staticmethod
    def _check_declared(vi, shape):
        """The model's fixed dims bind as they do in onnxruntime: the builder would let a
        profile widen them (docs/DESIGN.md), but a backend runs the model as declared."""
        tensor = vi.type.tensor_type
        if not tensor.HasField("shape"):
            return
        declared = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        text = "[" + ",".join("?" if d is None else str(d) for d in declared) + "]"
        if len(declared) != len(shape):
            raise Error(f"run: input '{vi.name}' has rank {len(shape)}; the model declares "
                        f"{text}", "DUCTILE_ERR_INVALID_ARGUMENT")
        for k, (want, have) in enumerate(zip(declared, shape)):
            if want is not None and want != have:
                raise Error(f"run: input '{vi.name}' has shape {list(shape)}; the model declares "
                            f"{text} (dimension {k} is {want})", "DUCTILE_ERR_INVALID_ARGUMENT")

    def _context(self, feeds):
        # Sequences and optionals have no profile shape: their items' shapes are the run's.
        tensors = {name: arr for name, arr in feeds.items() if self._kinds.get(name, "tensor_type") == "tensor_type"}
        key = tuple((name, tensors[name].shape) for name in sorted(tensors))
        ctx = self._contexts.get(key)
        if ctx is None:
            config = self._builder.create_builder_config()
            profile = self._builder.create_optimization_profile()
            for name, arr in tensors.items():
                profile.set_shape(name, arr.shape, arr.shape, arr.shape)
            config.add_optimization_profile(profile)
            config.device = self._device
            engine = self._builder.build_engine(self._network, config)
            ctx = engine.create_execution_context()
            self._contexts[key] = ctx
        return ctx

    def run(self, inputs, **kwargs):
        feeds = self._feeds(inputs)
        got = self._context(feeds).run(feeds)
        missing = [n for n in self._output_names if n not in got]
        if missing:
            raise Error(f"run: the engine has no output '{missing[0]}' (it has "
                        f"{', '.join(got)})", "DUCTILE_ERR_INTERNAL")
        return namedtupledict("Outputs", self._output_names)(*(got[n] for n in self._output_names))


_CUDA = None


def _cuda_available():
    """Whether an engine can be built for CUDA here (the backend in this build and a GPU):
    one tiny build, once per process."""
    global _CUDA
    if _CUDA is None:
        x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
        y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
        g = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "probe", [x], [y])
        m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 13)])
        try:
            b = Builder()
            n = b.parse_onnx_bytes(m.SerializeToString())
            c = b.create_builder_config()
            c.device = "cuda"
            b.build_engine(n, c)
            _CUDA = True
        except Error:
            _CUDA = False
    return _CUDA


class DuctileBackend(Backend):
    @classmethod
    def is_compatible(cls, model, device="CPU", **kwargs):
        return cls.supports_device(device)

    @classmethod
    def supports_device(cls, device):
        try:
            kind = Device(device).type
        except (AttributeError, KeyError, ValueError):  # a name onnx's Device does not know
            return False
        return kind == DeviceType.CPU or (kind == DeviceType.CUDA and _cuda_available())

    @classmethod
    def prepare(cls, model, device="CPU", symbolic_dims=False, **kwargs):
        """model: a ModelProto, serialized bytes or a path. Other keyword arguments (ONNX's
        runner passes each test's rtol/atol) are accepted and unused."""
        if not cls.supports_device(device):
            raise Error(f"prepare: device '{device}' is not supported here (ductile runs on the CPU, "
                        "and on CUDA where this build has the backend and a GPU is found)",
                        "DUCTILE_ERR_UNSUPPORTED")
        if isinstance(model, (bytes, bytearray)):
            model = onnx.load_model_from_string(bytes(model))
        elif isinstance(model, str):
            model = onnx.load(model)
        if symbolic_dims:
            model = make_dims_symbolic(model)
        builder = Builder()
        network = builder.parse_onnx_bytes(model.SerializeToString())
        return DuctileRep(model, network, builder,
                          "cuda" if Device(device).type == DeviceType.CUDA else "cpu")

    @classmethod
    def run_model(cls, model, inputs, device="CPU", **kwargs):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node, inputs, device="CPU", outputs_info=None, **kwargs):
        """One node as a model of its own: inputs named after the node's, in order."""
        inputs = [np.asarray(x) for x in inputs]
        vis = [onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(x.dtype),
                                                  x.shape)
               for name, x in zip(node.input, inputs)]
        if outputs_info:
            outs = [onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(
                        np.dtype(dtype)), shape) for name, (dtype, shape) in zip(node.output, outputs_info)]
        else:
            outs = [onnx.helper.make_empty_tensor_value_info(name) for name in node.output]
        graph = onnx.helper.make_graph([node], "run_node", vis, outs)
        opset = kwargs.pop("opset_version", None)
        imports = [onnx.helper.make_opsetid(node.domain, opset)] if opset else None
        model = onnx.helper.make_model(graph, opset_imports=imports)
        return cls.run_model(model, inputs, device, **kwargs)


is_compatible = DuctileBackend.is_compatible
prepare = DuctileBackend.prepare
run = DuctileBackend.run_model
run_model = DuctileBackend.run_model
run_node = DuctileBackend.run_node
supports_device = DuctileBackend.supports_device
