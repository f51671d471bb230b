"""Layer-by-layer comparison with onnxruntime, as Polygraphy's `--onnx-outputs mark all` does for
TensorRT: every tensor a node computes is marked as an output, both engines run the same inputs,
and a table gives each tensor's max absolute and relative error; the first layer beyond
tolerance is named.

    python -m ductile.compare model.onnx --shapes=input:1x3x333x517
    python -m ductile.compare bert.onnx --shapes=input_ids:1x7,attention_mask:1x7 \\
        --shapes=input_ids:2x64,attention_mask:2x64 --rtol=1e-3 --atol=1e-4

Each --shapes is one run. Profiles come from --minShapes/--optShapes/--maxShapes (the k-th of
each make profile k, as in the CLI; each run uses the first profile that holds its shapes) or,
without them, one profile per --shapes (min = opt = max). Inputs are random with --seed
(float: standard normal; integers and bools: 0 or 1, valid as token ids and masks) unless
--loadInputs=name:file.bin gives raw little-endian data of the input's dtype.

Exit status: 0 every tensor agrees, 1 some tensor diverges (the first is named), 2 the
comparison could not be made (arguments, a file, onnxruntime missing, an engine failing).
onnxruntime runs without graph optimizations, so each tensor is the one the file describes.
"""
import argparse
import pathlib
import sys

import numpy as np

PROG = "python -m ductile.compare"


class Usage(Exception):
    """A bad argument or input file: exit 2 with the message."""


# ---- arguments ------------------------------------------------------------------------------

def parse_shapes(flag, spec):
    """'a:1x3x8x8,b:2x5' -> {'a': (1, 3, 8, 8), 'b': (2, 5)}. The name is what precedes the
    last ':' of an item, so names holding ':' work."""
    shapes = {}
    for item in spec.split(","):
        name, colon, dims = item.rpartition(":")
        if not colon or not name:
            raise Usage(f"{flag}={spec}: item '{item}' is not name:dims (such as "
                        "input:1x3x224x224)")
        if not dims:
            raise Usage(f"{flag}={spec}: input '{name}' has no dims after ':'")
        parsed = []
        for i, d in enumerate(dims.split("x")):
            if not d.isdigit():
                raise Usage(f"{flag}={spec}: dim {i} of input '{name}' is '{d}', not a "
                            "non-negative integer")
            parsed.append(int(d))
        if name in shapes:
            raise Usage(f"{flag}={spec}: input '{name}' given twice")
        shapes[name] = tuple(parsed)
    return shapes


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="the ONNX file")
    p.add_argument("--shapes", action="append", default=[], metavar="NAME:DIMS[,...]",
                   help="input shapes of one run; repeat for several runs")
    for corner in ("min", "opt", "max"):
        p.add_argument(f"--{corner}Shapes", action="append", default=[], metavar="NAME:DIMS[,...]",
                       help=f"{corner} shapes of a profile; the k-th of each make profile k")
    p.add_argument("--loadInputs", action="append", default=[], metavar="NAME:FILE[,...]",
                   help="raw little-endian data of an input, in its dtype")
    p.add_argument("--rtol", type=float, default=1e-3, help="relative tolerance (default 1e-3)")
    p.add_argument("--atol", type=float, default=1e-4, help="absolute tolerance (default 1e-4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    args = p.parse_args(argv)
    try:
        args.runs = [parse_shapes("--shapes", s) for s in args.shapes]
        corners = [[parse_shapes(f"--{c}Shapes", s) for s in getattr(args, f"{c}Shapes")]
                   for c in ("min", "opt", "max")]
        if len({len(c) for c in corners}) != 1:
            raise Usage("--minShapes, --optShapes and --maxShapes must be given the same number "
                        f"of times (one each per profile): {len(corners[0])}, {len(corners[1])} "
                        f"and {len(corners[2])} given")
        args.profiles = [dict(mn=mn, opt=op, mx=mx) for mn, op, mx in zip(*corners)]
        for k, prof in enumerate(args.profiles):
            if not (prof["mn"].keys() == prof["opt"].keys() == prof["mx"].keys()):
                raise Usage(f"profile {k}: --minShapes, --optShapes and --maxShapes name "
                            "different inputs")
        args.load = {}
        for spec in args.loadInputs:
            for item in spec.split(","):
                name, colon, path = item.partition(":")
                if not colon or not name or not path:
                    raise Usage(f"--loadInputs={spec}: item '{item}' is not name:file")
                args.load[name] = path
        if args.rtol < 0 or args.atol < 0 or not np.isfinite([args.rtol, args.atol]).all():
            raise Usage(f"--rtol and --atol must be finite and >= 0 (--rtol={args.rtol}, "
                        f"--atol={args.atol})")
    except Usage as e:
        p.error(str(e))
    return args


# ---- the model ------------------------------------------------------------------------------

def mark_every_tensor(model, typed=True):
    """A copy of the model with every node output appended to graph.output, typed by onnx's
    shape inference where it can (and `typed`), else untyped: both engines then report what
    they compute. Returns (model, [(node index, node, output name)]) in graph order, graph
    outputs included."""
    import onnx
    marked = onnx.ModelProto.FromString(model.SerializeToString())
    types = {}
    try:
        inferred = onnx.shape_inference.infer_shapes(marked) if typed else None
        for vi in list(inferred.graph.value_info) + list(inferred.graph.output) if typed else []:
            types[vi.name] = vi.type.tensor_type.elem_type
    except Exception:  # inference is a help for the dtypes, not a requirement
        pass
    taken = {o.name for o in marked.graph.output} | {i.name for i in marked.graph.input}
    tensors = []
    for k, node in enumerate(marked.graph.node):
        for name in node.output:
            if not name:
                continue
            if name not in taken:
                taken.add(name)
                if types.get(name):
                    vi = onnx.helper.make_tensor_value_info(name, types[name], None)
                else:
                    vi = onnx.helper.make_empty_tensor_value_info(name)
                marked.graph.output.append(vi)
            elif name in {i.name for i in marked.graph.input}:
                continue
            tensors.append((k, node, name))
    return marked, tensors


def model_inputs(model):
    """{name: (dims with None where dynamic, numpy dtype)} of the inputs that are not
    initializers."""
    import onnx
    inits = {t.name for t in model.graph.initializer}
    out = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        if not tt.elem_type:
            raise Usage(f"input '{vi.name}' of the model declares no tensor dtype")
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
        out[vi.name] = (dims, onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type))
    return out


def complete(flag, shapes, inputs):
    """The shapes of a run or profile corner with fixed inputs filled in; checked against the
    model's inputs."""
    for name, shape in shapes.items():
        if name not in inputs:
            raise Usage(f"{flag}: the model has no input '{name}' (inputs: "
                        f"{', '.join(inputs)})")
        dims = inputs[name][0]
        if len(shape) != len(dims):
            raise Usage(f"{flag}: input '{name}' has {len(dims)} dims in the model, "
                        f"{len(shape)} given")
        for i, (want, got) in enumerate(zip(dims, shape)):
            if want is not None and want != got:
                raise Usage(f"{flag}: dim {i} of input '{name}' is fixed at {want} in the "
                            f"model, {got} given")
    full = dict(shapes)
    for name, (dims, _) in inputs.items():
        if name not in full:
            if None in dims:
                raise Usage(f"{flag}: input '{name}' has dynamic dims "
                            f"{'x'.join('?' if d is None else str(d) for d in dims)}; give its "
                            "shape")
            full[name] = dims
    return full


def shape_text(shapes):
    return ",".join(f"{n}:{'x'.join(map(str, s))}" for n, s in shapes.items())


def make_feeds(shapes, inputs, load, seed):
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, shape in shapes.items():
        dtype = np.dtype(inputs[name][1])
        if name in load:
            path = pathlib.Path(load[name])
            want = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            try:
                data = path.read_bytes()
            except OSError as e:
                raise Usage(f"--loadInputs: cannot read '{path}' for input '{name}': "
                            f"{e.strerror}")
            if len(data) != want:
                raise Usage(f"--loadInputs: input '{name}' ({'x'.join(map(str, shape))} "
                            f"{dtype.name}) needs {want} bytes but '{path}' has {len(data)} bytes")
            feeds[name] = np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
        elif np.issubdtype(dtype, np.floating):
            feeds[name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[name] = rng.integers(0, 2, size=shape).astype(dtype)
    for name in load:
        if name not in shapes:
            raise Usage(f"--loadInputs: the model has no input '{name}' (inputs: "
                        f"{', '.join(shapes)})")
    return feeds


# ---- the comparison -------------------------------------------------------------------------

def errors(got, want, rtol, atol):
    """(max abs error, max relative error, agrees): elementwise |got - want| <= atol +
    rtol * |want|, NaN matching NaN and infinities matching themselves."""
    a = np.asarray(got).astype(np.float64)
    b = np.asarray(want).astype(np.float64)
    if a.size == 0:
        return 0.0, 0.0, True
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.where(same, 0.0, np.abs(a - b))
        rel = np.where(same, 0.0, diff / np.abs(b))
    diff = np.where(np.isnan(diff), np.inf, diff)
    rel = np.where(np.isnan(rel), np.inf, rel)
    ok = bool(np.all(same | (diff <= atol + rtol * np.abs(b))))
    return float(diff.max()), float(rel.max()), ok


def run_ort(model_bytes, feeds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def build_engine(model_bytes, profiles):
    import ductile
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model_bytes)
    config = builder.create_builder_config()
    for prof in profiles:
        profile = builder.create_optimization_profile()
        for name in prof["mn"]:
            profile.set_shape(name, prof["mn"][name], prof["opt"][name], prof["mx"][name])
        config.add_optimization_profile(profile)
    return builder.build_engine(network, config)


def fmt(x):
    return "inf" if x == np.inf else f"{x:.3e}"


def table(rows):
    head = ("layer", "op", "output", "shape", "max abs err", "max rel err", "result")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def compare_run(k, shapes, profile, engine, marked_bytes, tensors, feeds, args):
    """Prints the table of one run; returns the first diverging row or None."""
    print(f"Run {k}: {shape_text(shapes)} (profile {profile})")
    want = run_ort(marked_bytes, feeds)
    context = engine.create_execution_context()
    context.set_optimization_profile(profile)
    got = context.run(feeds)
    rows, first = [], None
    for idx, node, name in tensors:
        layer = node.name or f"{node.op_type}_{idx}"
        w = want.get(name)
        g = got.get(name)
        shape = "x".join(map(str, np.shape(w))) if w is not None else "?"
        if w is None or g is None:
            row = (layer, node.op_type, name, shape, "-", "-",
                   "missing in " + ("onnxruntime" if w is None else "ductile"))
            ok = False
        elif np.shape(g) != np.shape(w):
            row = (layer, node.op_type, name, shape, "-", "-",
                   f"shape {'x'.join(map(str, np.shape(g)))} in ductile")
            ok = False
        else:
            mx_abs, mx_rel, ok = errors(g, w, args.rtol, args.atol)
            row = (layer, node.op_type, name, shape or "scalar", fmt(mx_abs), fmt(mx_rel),
                   "ok" if ok else "DIVERGES")
        rows.append(row)
        if not ok and first is None:
            first = row
    table(rows)
    return first


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print(f"{PROG}: onnxruntime is not installed; the comparison needs it (pip install "
              "onnxruntime)", file=sys.stderr)
        return 2
    import onnx
    import ductile
    try:
        try:
            with open(args.model, "rb"):
                pass
        except OSError as e:
            raise Usage(f"cannot open '{args.model}': {e.strerror}")
        try:
            model = onnx.load(args.model)
        except Exception as e:  # onnx raises DecodeError, ValueError and others
            raise Usage(f"'{args.model}' is not an ONNX model: {e}")
        inputs = model_inputs(model)
        runs = [complete(f"--shapes={s}", shapes, inputs)
                for s, shapes in zip(args.shapes, args.runs)]
        if not runs:
            runs = [complete("the model's declared shapes (no --shapes given)", {}, inputs)]
        if args.profiles:
            profiles = [{c: complete(f"profile {k} --{flag}Shapes", p[c], inputs)
                         for c, flag in (("mn", "min"), ("opt", "opt"), ("mx", "max"))}
                        for k, p in enumerate(args.profiles)]
        else:
            profiles = []
            for shapes in runs:
                if not any(p["opt"] == shapes for p in profiles):
                    profiles.append(dict(mn=shapes, opt=shapes, mx=shapes))
        chosen = []
        for shapes in runs:
            holds = [k for k, p in enumerate(profiles)
                     if all(all(lo <= d <= hi for lo, d, hi in zip(p["mn"][n], s, p["mx"][n]))
                            for n, s in shapes.items())]
            if not holds:
                raise Usage(f"--shapes={shape_text(shapes)} is inside no profile")
            chosen.append(holds[0])
        feeds = [make_feeds(s, inputs, args.load, args.seed + k) for k, s in enumerate(runs)]
    except Usage as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    marked, tensors = mark_every_tensor(model)
    marked_bytes = marked.SerializeToString()
    try:
        engine = build_engine(marked_bytes, profiles)
    except ductile.Error as e:
        print(f"{PROG}: ductile cannot build the model with every tensor marked: {e}",
              file=sys.stderr)
        return 2
    firsts = []
    for k, shapes in enumerate(runs):
        try:
            first = compare_run(k + 1, shapes, chosen[k], engine, marked_bytes, tensors,
                                feeds[k], args)
        except ductile.Error as e:
            print(f"{PROG}: ductile failed at {shape_text(shapes)}: {e}", file=sys.stderr)
            return 2
        except Exception as e:  # onnxruntime's errors have no common base class to name
            print(f"{PROG}: onnxruntime failed at {shape_text(shapes)}: {e}", file=sys.stderr)
            return 2
        if first:
            firsts.append((k + 1, first))
        print()
    tol = f"atol={args.atol:g}, rtol={args.rtol:g}"
    if not firsts:
        print(f"All {len(tensors)} tensors agree in {len(runs)} run(s) ({tol})")
        return 0
    for k, (layer, op, name, *_rest, result) in firsts:
        print(f"Run {k}: first layer beyond tolerance ({tol}): '{layer}' ({op}), output "
              f"'{name}': {result if result != 'DIVERGES' else 'max abs err ' + _rest[1]}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
