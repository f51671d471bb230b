"""What a served model looks like from outside, read from the engine: its inputs and outputs,
their dtypes and dims (-1 where the profiles let a dim vary), and whether requests can be
batched along dim 0, up to which size. Also Triton's config.pbtxt for it.

Batching needs every input to have a dynamic dim 0 (the batch) and every output's dim 0 to
follow it; the outputs are probed on a context at the profile's min shapes and at one more in
the batch, so a model whose dim 0 is not a batch (a sequence, say) is never split wrongly.
"""
from dataclasses import dataclass

import numpy as np

from .._enums import TensorIOMode
from .._lib import Error
from ..engine import load_engine

# numpy dtype -> Triton's data type (model_config.proto's DataType).
TRITON_DTYPES = {
    np.dtype(np.bool_): "TYPE_BOOL", np.dtype(np.uint8): "TYPE_UINT8",
    np.dtype(np.uint16): "TYPE_UINT16", np.dtype(np.uint32): "TYPE_UINT32",
    np.dtype(np.uint64): "TYPE_UINT64", np.dtype(np.int8): "TYPE_INT8",
    np.dtype(np.int16): "TYPE_INT16", np.dtype(np.int32): "TYPE_INT32",
    np.dtype(np.int64): "TYPE_INT64", np.dtype(np.float16): "TYPE_FP16",
    np.dtype(np.float32): "TYPE_FP32", np.dtype(np.float64): "TYPE_FP64",
}


@dataclass
class TensorSpec:
    name: str
    dtype: np.dtype
    dims: tuple  # whole shape, batch dim included; -1 where it varies

    @property
    def triton_dtype(self):
        return TRITON_DTYPES[self.dtype]


# Triton's max_batch_size for a batched model (see Signature.config_pbtxt): any request a
# client sends in practice reaches ductile's own profile check.
TRITON_MAX_BATCH = 1 << 16


@dataclass
class Signature:
    inputs: list
    outputs: list
    # The largest batch one execute takes (every input's dim 0 within one profile); 0 when the
    # engine cannot be batched along dim 0.
    max_batch: int

    def config_pbtxt(self, name, instances=1, max_batch=None, queue_delay_us=100,
                     dynamic_batching=True, threads=0, engine_file="model.engine"):
        """Triton's model configuration (text protobuf) for the Python backend model that
        triton_model.py implements. max_batch None: the engine's; 0: no batch dim."""
        mb = self.max_batch if max_batch is None else max_batch
        if mb < 0 or mb > self.max_batch:
            raise ValueError(f"model '{name}': max batch {mb} is outside 0..{self.max_batch}, "
                             "the largest batch the engine's profiles accept"
                             if self.max_batch else
                             f"model '{name}': the engine cannot be batched along dim 0 (an "
                             "input's dim 0 is fixed, or an output's dim 0 does not follow it), "
                             "so its max batch must be 0")

        def tensors(specs):
            rows = []
            for t in specs:
                dims = t.dims[1:] if mb else t.dims
                rows.append(f'  {{ name: "{t.name}" data_type: {t.triton_dtype} '
                            f'dims: [ {", ".join(str(d) for d in dims)} ] }}')
            return ",\n".join(rows)

        # Triton refuses a request above max_batch_size with its own message before the model
        # sees it, so Triton's bound is set far above the profile's: a request outside the
        # profile then reaches ductile and gets ductile's message (a 400), and what Triton
        # gathers is split by batcher.py into executes of at most `max_batch` (a parameter).
        lines = [f'name: "{name}"', 'backend: "python"', f"max_batch_size: {TRITON_MAX_BATCH if mb else 0}",
                 f"input [\n{tensors(self.inputs)}\n]", f"output [\n{tensors(self.outputs)}\n]"]
        if mb and dynamic_batching:
            lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {queue_delay_us} }}")
        lines.append(f"instance_group [ {{ count: {instances} kind: KIND_CPU }} ]")
        for key, value in (("engine", engine_file), ("threads", str(threads)), ("max_batch", str(mb))):
            lines.append(f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}')
        return "\n".join(lines) + "\n"


def _range_dims(engine, name):
    """(dims with -1 where any profile lets the dim vary, per-dim max over the profiles)."""
    lo = hi = None
    for p in range(engine.num_optimization_profiles):
        mn, _, mx = engine.get_tensor_profile_shape(name, p)
        lo = list(mn) if lo is None else [min(a, b) for a, b in zip(lo, mn)]
        hi = list(mx) if hi is None else [max(a, b) for a, b in zip(hi, mx)]
    return tuple(a if a == b else -1 for a, b in zip(lo, hi)), hi


def io_names(engine):
    """(input names, output names) in the engine's order."""
    names = engine.io_tensor_names
    return ([n for n in names if engine.get_tensor_mode(n) == TensorIOMode.INPUT],
            [n for n in names if engine.get_tensor_mode(n) == TensorIOMode.OUTPUT])


def _output_shapes(context, inputs, outputs, shapes):
    """{output: shape} at these input shapes; None for an output known only after execute."""
    for name, shape in zip(inputs, shapes):
        context.set_input_shape(name, shape)
    out = {}
    for name in outputs:
        try:
            out[name] = context.get_tensor_shape(name)
        except Error as e:
            if e.status != "DUCTILE_ERR_STATE":
                raise
            out[name] = None
    return out


def _batch_limit(engine, inputs):
    """Profile p's largest batch (min over inputs of their dim 0's max), best profile; 0 when
    an input's dim 0 does not vary."""
    best = 0
    for p in range(engine.num_optimization_profiles):
        limits = []
        for name in inputs:
            mn, _, mx = engine.get_tensor_profile_shape(name, p)
            if len(mn) < 2 or mn[0] == mx[0]:
                return 0  # rank-1 inputs would leave Triton no dims: not batched
            limits.append(mx[0])
        best = max(best, min(limits))
    return best


def read_signature(engine):
    """The Signature of an engine (a ductile.Engine or a path to one)."""
    if not hasattr(engine, "io_tensor_names"):
        engine = load_engine(engine)
    inputs, outputs = io_names(engine)
    for n in inputs + outputs:
        dt = engine.get_tensor_dtype(n)
        if dt is None or np.dtype(dt) not in TRITON_DTYPES:
            raise Error(f"serve: tensor '{n}' has a dtype ({dt}) that Triton's numpy path "
                        "cannot carry", "DUCTILE_ERR_UNSUPPORTED")
    in_specs = [TensorSpec(n, np.dtype(engine.get_tensor_dtype(n)), _range_dims(engine, n)[0])
                for n in inputs]

    # Outputs: dims from profile 0's min and max shapes; batching from min and min+1 in dim 0.
    ctx = engine.create_execution_context()
    ctx.set_optimization_profile(0)
    mins = [engine.get_tensor_profile_shape(n, 0)[0] for n in inputs]
    maxs = [engine.get_tensor_profile_shape(n, 0)[2] for n in inputs]
    at_min = _output_shapes(ctx, inputs, outputs, mins)
    at_max = _output_shapes(ctx, inputs, outputs, maxs)
    out_specs = []
    for n in outputs:
        a, b = at_min[n], at_max[n]
        dims = (-1,) if a is None or b is None or len(a) != len(b) else \
            tuple(x if x == y else -1 for x, y in zip(a, b))
        out_specs.append(TensorSpec(n, np.dtype(engine.get_tensor_dtype(n)), dims))

    max_batch = _batch_limit(engine, inputs)
    if max_batch:
        b0 = mins[0][0]
        plus = [(s[0] + 1,) + tuple(s[1:]) for s in mins]
        at_plus = _output_shapes(ctx, inputs, outputs, plus) if b0 + 1 <= maxs[0][0] else None
        for n in outputs:
            a = at_min[n]
            p = at_plus[n] if at_plus is not None else None
            if a is None or len(a) == 0 or a[0] != b0 or (at_plus is not None and
                                                          (p is None or p[0] != b0 + 1)):
                max_batch = 0
                break
    if max_batch:
        # The batch dim is Triton's, not the model's: always -1 for the client.
        for t in in_specs + out_specs:
            if len(t.dims) > 1:
                t.dims = (-1,) + tuple(t.dims[1:])
    return Signature(in_specs, out_specs, max_batch)
