"""The whole ductile workflow on a super-resolution model, as TensorRT's dynamic-shape guide
does it: parse, put a sigmoid on the output, one profile, build, save, load, run at three sizes.

usage: PYTHONPATH=python demo.py MODEL.onnx
"""
import pathlib
import sys
import time

import numpy as np

import ductile

SHAPES = [(1, 1, 64, 64), (1, 1, 256, 256), (2, 1, 512, 384)]
ENGINE_PATH = pathlib.Path(__file__).resolve().parents[1] / "build" / "demo" / "superres_demo.engine"


def build_engine(model_path):
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path)
    output = network.get_output(0)
    network.unmark_output(output)
    sigmoid = network.add_activation(output, ductile.ActivationType.SIGMOID)
    network.mark_output(sigmoid.get_output(0))
    print(f"network: {network.num_layers} layers, input {network.get_input(0).shape}, "
          f"output '{network.get_output(0).name}' (sigmoid of '{output.name}')")

    profile = builder.create_optimization_profile()
    profile.set_shape(network.get_input(0).name, (1, 1, 64, 64), (1, 1, 256, 256), (2, 1, 512, 512))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    t0 = time.perf_counter()
    engine = builder.build_engine(network, config)
    print(f"built in {(time.perf_counter() - t0) * 1e3:.0f} ms")
    return engine, network.get_input(0).name, network.get_output(0).name


def reference(model_path):
    """sigmoid(onnxruntime output), or None when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    session = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    return lambda feeds: 1.0 / (1.0 + np.exp(-session.run(None, feeds)[0].astype(np.float64)))


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    model_path = argv[1]
    engine, input_name, output_name = build_engine(model_path)
    ENGINE_PATH.parent.mkdir(parents=True, exist_ok=True)
    engine.save(ENGINE_PATH)
    engine = ductile.load_engine(ENGINE_PATH)
    print(f"saved and loaded {ENGINE_PATH} ({ENGINE_PATH.stat().st_size} bytes)")

    context = engine.create_execution_context()
    ref = reference(model_path)
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        x = rng.standard_normal(shape, dtype=np.float32)
        y = context.run({input_name: x})[output_name]
        times = []
        for _ in range(10):
            t0 = time.perf_counter()
            context.run({input_name: x})
            times.append(time.perf_counter() - t0)
        line = f"{'x'.join(map(str, shape)):>12} -> {'x'.join(map(str, y.shape)):<14}"
        if ref is not None:
            line += f" max|ductile - sigmoid(onnxruntime)| {np.max(np.abs(y - ref({input_name: x}))):.2e}"
        print(f"{line}  {np.median(times) * 1e3:8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
