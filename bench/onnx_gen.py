"""What the bench's model writers (make_resnet50.py, make_efficientnet.py, make_yolo.py,
make_llama.py) share: unique tensor names and the model's assembly, check and save."""
import os

import onnx
from onnx import helper


class Names:
    """prefix_1, prefix_2, ...: one counter for every name of a graph."""

    def __init__(self):
        self.count = 0

    def __call__(self, prefix):
        self.count += 1
        return f"{prefix}_{self.count}"


def save(path, nodes, name, inputs, outputs, inits, opset=17):
    """The graph as an opset-`opset` model (IR 8, producer ductile-bench), checked, written to path.
    A node without a name is named after its first output: both engines' profiles then name
    its layer alike (bench/layer_compare.py lines them up)."""
    for n in nodes:
        if not n.name and n.output:
            n.name = n.output[0]
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="ductile-bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    onnx.save(model, path)
