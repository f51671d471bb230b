"""Writes the seed corpora of the fuzz harnesses (fuzz/README.md) into fuzz/corpus/<name>/:

    onnx/    tiny ONNX models of a few ops each, some with symbolic dims
    engine/  engines built from some of them with the Python binding (PYTHONPATH=python)
    shapes/  shape specs as the CLI's --shapes flags take them
    image/   small images in every format ImageDecoder reads (Pillow writes them; tests/c/
             test_image_decoder.c checks that the lossless ones decode to rgb.ppm's pixels)

Deterministic: the same files on every run. Kept small (a few KB in all) so they can be
committed. usage: make_fuzz_seeds.py [OUTDIR]   (default fuzz/corpus)
"""
import pathlib
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
I64 = TensorProto.INT64


def model(name, nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def models():
    rng = np.random.default_rng(0)
    w = lambda *s: numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), f"w{len(s)}")
    yield "add_relu", model("add_relu", [
        helper.make_node("Add", ["x", "y"], ["s"]),
        helper.make_node("Relu", ["s"], ["out"])],
        [vi("x", F, ["batch", 4]), vi("y", F, [1, 4])], [vi("out", F, ["batch", 4])]), ["x", "y"]
    yield "matmul_sigmoid", model("matmul_sigmoid", [
        helper.make_node("MatMul", ["x", "w2"], ["m"]),
        helper.make_node("Sigmoid", ["m"], ["out"])],
        [vi("x", F, ["n", 3])], [vi("out", F, ["n", 5])], [w(3, 5)]), ["x"]
    yield "conv_pool", model("conv_pool", [
        helper.make_node("Conv", ["x", "w4"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["c"], ["out"], kernel_shape=[2, 2], strides=[2, 2])],
        [vi("x", F, ["b", 2, "h", "w"])], [vi("out", F, ["b", 2, None, None])], [w(2, 2, 3, 3)]), ["x"]
    shape = numpy_helper.from_array(np.array([-1, 6], np.int64), "shape")
    yield "reshape_softmax", model("reshape_softmax", [
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("Softmax", ["r"], ["t"], axis=-1),
        helper.make_node("Transpose", ["t"], ["out"], perm=[1, 0])],
        [vi("x", F, ["b", 2, 3])], [vi("out", F, [6, "b"])], [shape]), ["x"]
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    yield "concat_reduce", model("concat_reduce", [
        helper.make_node("Concat", ["x", "y"], ["c"], axis=1),
        helper.make_node("ReduceSum", ["c", "axes"], ["r"], keepdims=1),
        helper.make_node("Tanh", ["r"], ["out"])],
        [vi("x", F, [2, "k"]), vi("y", F, [2, 3])], [vi("out", F, [2, 1])], [axes]), ["x", "y"]
    idx = numpy_helper.from_array(np.array([0, 2], np.int64), "idx")
    yield "shape_gather", model("shape_gather", [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["x", "idx"], ["g"], axis=1),
        helper.make_node("Cast", ["g"], ["out"], to=TensorProto.INT32)],
        [vi("x", F, ["b", 3])], [vi("out", TensorProto.INT32, ["b", 2]), vi("s", I64, [2])], [idx]), ["x"]
    yield "static_gemm", model("static_gemm", [
        helper.make_node("Gemm", ["x", "w2", "bias"], ["out"], transB=1)],
        [vi("x", F, [2, 4])], [vi("out", F, [2, 3])],
        [w(3, 4), numpy_helper.from_array(np.ones(3, np.float32), "bias")]), []


def images(out):
    """A 7 x 5 picture (odd sizes: row padding, subsampling edges) in every format."""
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:5, 0:7]
    a = (np.stack([x * 40, y * 60, (x + y) * 25], -1) + rng.integers(0, 16, (5, 7, 3))).astype(np.uint8)
    rgb = Image.fromarray(a)
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    files = {
        "rgb.ppm": (rgb, "PPM", {}), "rgb.png": (rgb, "PNG", {}), "rgb.bmp": (rgb, "BMP", {}),
        "rgb.tif": (rgb, "TIFF", {}), "rgb_lzw.tif": (rgb, "TIFF", {"compression": "tiff_lzw"}),
        "rgb.webp": (rgb, "WEBP", {"lossless": True}), "rgb.jp2": (rgb, "JPEG2000", {}),
        "rgb.j2k": (rgb, "JPEG2000", {"no_jp2": True}),
        "rgb.jpg": (rgb, "JPEG", {}), "gray_progressive.jpg": (rgb.convert("L"), "JPEG", {"progressive": True}),
        "lossy.webp": (rgb, "WEBP", {}), "palette_trns.png": (pal, "PNG", {"transparency": 2}),
        "palette4.bmp": (pal, "BMP", {}), "gray.pgm": (rgb.convert("L"), "PPM", {}),
        "bits.pbm": (rgb.convert("1"), "PPM", {}),
        "cmyk.jpg": (Image.fromarray(np.concatenate([a, a[:, :, 1:2]], 2), "CMYK"), "JPEG", {}),
    }
    files["animated.webp"] = (rgb, "WEBP", {"save_all": True, "append_images": [rgb.transpose(Image.Transpose.FLIP_TOP_BOTTOM)]})
    (out / "image").mkdir(parents=True, exist_ok=True)
    for name, (img, fmt, kw) in files.items():
        f = io.BytesIO()
        img.save(f, format=fmt, **kw)
        (out / "image" / name).write_bytes(f.getvalue())


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus")
    for d in ("onnx", "engine", "shapes"):
        (out / d).mkdir(parents=True, exist_ok=True)
    images(out)
    built = []
    for name, m, dyn in models():
        onnx.checker.check_model(m)
        data = m.SerializeToString()
        (out / "onnx" / f"{name}.onnx").write_bytes(data)
        built.append((name, data, m))
    try:
        import ductile
    except ImportError as e:  # the binding needs build/libductile.so
        sys.exit(f"make_fuzz_seeds: cannot import ductile ({e}); run 'make' and set PYTHONPATH=python")
    for name, data, m in built:
        builder = ductile.Builder()
        network = builder.parse_onnx_bytes(data)
        config = builder.create_builder_config()
        profile = builder.create_optimization_profile()
        dynamic = False
        for i in m.graph.input:
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in i.type.tensor_type.shape.dim]
            if -1 in dims:
                dynamic = True
            lo = [d if d >= 0 else 2 for d in dims]
            hi = [d if d >= 0 else 4 for d in dims]
            profile.set_shape(i.name, lo, lo, hi)
        if dynamic:
            config.add_optimization_profile(profile)
        engine = builder.build_engine(network, config)
        (out / "engine" / f"{name}.engine").write_bytes(bytes(engine.serialize()))
    specs = ["x:1x3x224x224", "input:1x3x64x64,y:4x128", "'in:0':1x2,b:3", "input:0:2x2",
             "s:", "a:1,b:2,c:3x4x5x6x7x8x9x1", "q:9223372036854775807"]
    for i, spec in enumerate(specs):
        (out / "shapes" / f"spec{i}.txt").write_bytes(spec.encode())


if __name__ == "__main__":
    main()
