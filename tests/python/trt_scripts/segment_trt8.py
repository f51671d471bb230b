"""Dynamic-shape semantic segmentation, written against TensorRT 8's Python API as the classic
dynamic-shape tutorials use it: `with` blocks, parse(bytes), max_workspace_size, build_engine,
active_optimization_profile, binding indices, set_binding_shape, all_binding_shapes_specified,
execute_v2 and execute_async_v2. tests/python/test_trt_api.py runs it with the one import line
changed to `import ductile as trt` (host buffers: ductile runs on the CPU).

    python segment_trt8.py model.onnx out_dir in_0.npy [in_1.npy ...]   -> out_dir/out_<i>.npy
"""
import sys

import numpy as np
import tensorrt as trt

TRT_LOGGER = trt.Logger(trt.Logger.WARNING)
EXPLICIT_BATCH = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)


def build_engine(onnx_file_path):
    with trt.Builder(TRT_LOGGER) as builder, \
            builder.create_network(EXPLICIT_BATCH) as network, \
            builder.create_builder_config() as config, \
            trt.OnnxParser(network, TRT_LOGGER) as parser:
        config.max_workspace_size = 4 << 30
        if builder.platform_has_fast_fp16:
            config.set_flag(trt.BuilderFlag.FP16)
        with open(onnx_file_path, "rb") as model:
            if not parser.parse(model.read()):
                for error in range(parser.num_errors):
                    print(parser.get_error(error))
                return None
        # The example's sigmoid on the logits.
        logits = network.get_output(0)
        sigmoid_layer = network.add_activation(logits, trt.ActivationType.SIGMOID)
        network.unmark_output(logits)
        network.mark_output(sigmoid_layer.get_output(0))

        profile = builder.create_optimization_profile()
        profile.set_shape(network.get_input(0).name, (1, 3, 512, 512), (1, 3, 1024, 1024),
                          (1, 3, 1600, 1600))
        config.add_optimization_profile(profile)
        return builder.build_engine(network, config)


def main(onnx_file_path, out_dir, *input_files):
    engine = build_engine(onnx_file_path)
    if engine is None:
        sys.exit("failed to build the engine")
    with engine.create_execution_context() as context:
        context.active_optimization_profile = 0
        input_binding = [b for b in range(engine.num_bindings) if engine.binding_is_input(b)][0]
        output_binding = [b for b in range(engine.num_bindings) if not engine.binding_is_input(b)][0]
        print("bindings", [(b, engine.get_binding_name(b), engine.get_binding_shape(b))
                           for b in range(engine.num_bindings)])
        print("profile", engine.get_profile_shape(0, engine.get_binding_name(input_binding)))
        for i, path in enumerate(input_files):
            image = np.load(path)
            context.set_binding_shape(input_binding, image.shape)
            assert context.all_binding_shapes_specified
            input_buffer = np.ascontiguousarray(image, dtype=trt.nptype(engine.get_binding_dtype(input_binding)))
            output_shape = tuple(context.get_binding_shape(output_binding))
            output_buffer = np.empty(trt.volume(output_shape),
                                     dtype=trt.nptype(engine.get_binding_dtype(output_binding)))
            bindings = [0] * engine.num_bindings
            bindings[input_binding] = int(input_buffer.ctypes.data)
            bindings[output_binding] = int(output_buffer.ctypes.data)
            if i % 2 == 0:
                context.execute_v2(bindings)
            else:
                context.execute_async_v2(bindings=bindings, stream_handle=0)
            np.save(f"{out_dir}/out_{i}.npy", output_buffer.reshape(output_shape))


if __name__ == "__main__":
    main(*sys.argv[1:])
