"""Dynamic-shape semantic segmentation, written against TensorRT 10's Python API as its
documentation shows it: parse the ONNX model, add a sigmoid to the logits, one optimization
profile over height and width, build a serialized engine, deserialize it, then for each input
size set the shape, bind buffers by tensor name and execute_async_v3.
tests/python/test_trt_api.py runs it with the one import line changed to `import ductile as trt`
(host buffers: ductile runs on the CPU).

    python segment_trt10.py model.onnx out_dir in_0.npy [in_1.npy ...]   -> out_dir/out_<i>.npy
"""
import sys

import numpy as np
import tensorrt as trt

TRT_LOGGER = trt.Logger(trt.Logger.WARNING)


def build_engine(onnx_file_path):
    builder = trt.Builder(TRT_LOGGER)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, TRT_LOGGER)
    success = parser.parse_from_file(onnx_file_path)
    for idx in range(parser.num_errors):
        print(parser.get_error(idx))
    if not success:
        sys.exit("failed to parse the ONNX file")

    # The example's sigmoid on the logits.
    logits = network.get_output(0)
    sigmoid_layer = network.add_activation(logits, trt.ActivationType.SIGMOID)
    network.unmark_output(logits)
    network.mark_output(sigmoid_layer.get_output(0))

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 4 << 30)
    profile = builder.create_optimization_profile()
    input_name = network.get_input(0).name
    profile.set_shape(input_name, (1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600))
    config.add_optimization_profile(profile)
    return builder.build_serialized_network(network, config)


def main(onnx_file_path, out_dir, *input_files):
    serialized_engine = build_engine(onnx_file_path)
    runtime = trt.Runtime(TRT_LOGGER)
    engine = runtime.deserialize_cuda_engine(serialized_engine)
    context = engine.create_execution_context()
    stream = 0
    context.set_optimization_profile_async(0, stream)

    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    input_name = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT][0]
    output_name = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT][0]
    print("input", input_name, engine.get_tensor_shape(input_name),
          engine.get_tensor_dtype(input_name))
    print("output", output_name, engine.get_tensor_shape(output_name))
    print("profile", engine.get_tensor_profile_shape(input_name, 0))

    for i, path in enumerate(input_files):
        image = np.load(path)
        context.set_input_shape(input_name, image.shape)
        input_buffer = np.ascontiguousarray(image, dtype=trt.nptype(engine.get_tensor_dtype(input_name)))
        output_shape = context.get_tensor_shape(output_name)
        output_buffer = np.empty(trt.volume(output_shape),
                                 dtype=trt.nptype(engine.get_tensor_dtype(output_name)))
        context.set_tensor_address(input_name, int(input_buffer.ctypes.data))
        context.set_tensor_address(output_name, int(output_buffer.ctypes.data))
        context.execute_async_v3(stream_handle=stream)
        np.save(f"{out_dir}/out_{i}.npy", output_buffer.reshape(output_shape))


if __name__ == "__main__":
    main(*sys.argv[1:])
