"""Writes a small Llama-style decoder (the prefill pass, no KV cache) as PyTorch's exporter writes
Hugging Face's LlamaForCausalLM with dynamic batch and sequence: token embedding by Gather,
RMSNorm as Pow / ReduceMean / Add / Sqrt / Reciprocal / Mul / Mul, bias-free projections,
rotary position embedding (cos / sin tables gathered by Range positions, rotate_half as Slice /
Neg / Concat), a causal mask from position comparisons (Where: 0 or float32's lowest), Softmax
attention, and the SwiGLU MLP (SiLU as Sigmoid + Mul). 4 layers, hidden 256, 4 heads of 64, MLP
704, vocabulary 2048, random weights; input input_ids [batch, seq] int64, output logits
[batch, seq, 2048]. Opset 17.
Usage: python bench/make_llama.py OUT.onnx"""
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from onnx_gen import Names, save

D, HEADS, HD, FF, VOCAB, LAYERS, MAXPOS = 256, 4, 64, 704, 2048, 4, 2048


def build(path, seed=0):
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    name = Names()

    def const(arr, prefix):
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.asarray(arr), n))
        return n

    def node(op, ins, **attrs):
        y = name(op.lower())
        nodes.append(helper.make_node(op, ins, [y], **attrs))
        return y

    def weight(rows, cols):
        return const((rng.standard_normal((rows, cols)) / np.sqrt(rows)).astype(np.float32), "w")

    def rmsnorm(x):
        var = node("ReduceMean", [node("Pow", [x, const(np.float32(2.0), "two")])], axes=[-1], keepdims=1)
        inv = node("Reciprocal", [node("Sqrt", [node("Add", [var, const(np.float32(1e-6), "eps")])])])
        w = const((1.0 + 0.1 * rng.standard_normal(D)).astype(np.float32), "norm")
        return node("Mul", [node("Mul", [x, inv]), w])

    def heads(x):
        r = node("Reshape", [x, const(np.array([0, 0, HEADS, HD], np.int64), "shape")])
        return node("Transpose", [r], perm=[0, 2, 1, 3])

    def rope(x, cos, sin):
        half = HD // 2
        x1 = node("Slice", [x, const(np.array([0], np.int64), "s"), const(np.array([half], np.int64), "e"),
                            const(np.array([3], np.int64), "ax")])
        x2 = node("Slice", [x, const(np.array([half], np.int64), "s"), const(np.array([HD], np.int64), "e"),
                            const(np.array([3], np.int64), "ax")])
        rot = node("Concat", [node("Neg", [x2]), x1], axis=-1)
        return node("Add", [node("Mul", [x, cos]), node("Mul", [rot, sin])])

    inv_freq = 1.0 / (10000.0 ** (np.arange(0, HD, 2) / HD))
    ang = np.outer(np.arange(MAXPOS), inv_freq)
    emb = np.concatenate([ang, ang], axis=1)
    seq = node("Gather", [node("Shape", ["input_ids"]), const(np.array(1, np.int64), "one")], axis=0)
    pos = node("Range", [const(np.array(0, np.int64), "zero"), seq, const(np.array(1, np.int64), "step")])
    cos = node("Unsqueeze", [node("Gather", [const(np.cos(emb).astype(np.float32), "cos"), pos], axis=0),
                             const(np.array([0, 1], np.int64), "axes")])
    sin = node("Unsqueeze", [node("Gather", [const(np.sin(emb).astype(np.float32), "sin"), pos], axis=0),
                             const(np.array([0, 1], np.int64), "axes")])
    later = node("Greater", [node("Unsqueeze", [pos, const(np.array([0], np.int64), "axes")]),
                             node("Unsqueeze", [pos, const(np.array([1], np.int64), "axes")])])
    mask = node("Where", [later, const(np.float32(np.finfo(np.float32).min), "lowest"), const(np.float32(0.0), "zero")])
    h = node("Gather", [const((rng.standard_normal((VOCAB, D)) * 0.5).astype(np.float32), "embed"), "input_ids"],
             axis=0)
    for _ in range(LAYERS):
        n = rmsnorm(h)
        q = rope(heads(node("MatMul", [n, weight(D, D)])), cos, sin)
        k = rope(heads(node("MatMul", [n, weight(D, D)])), cos, sin)
        v = heads(node("MatMul", [n, weight(D, D)]))
        s = node("Div", [node("MatMul", [q, node("Transpose", [k], perm=[0, 1, 3, 2])]),
                         const(np.float32(np.sqrt(HD)), "scale")])
        p = node("Softmax", [node("Add", [s, mask])], axis=-1)
        a = node("Transpose", [node("MatMul", [p, v])], perm=[0, 2, 1, 3])
        a = node("Reshape", [a, const(np.array([0, 0, D], np.int64), "shape")])
        h = node("Add", [h, node("MatMul", [a, weight(D, D)])])
        n = rmsnorm(h)
        g = node("MatMul", [n, weight(D, FF)])
        up = node("MatMul", [n, weight(D, FF)])
        act = node("Mul", [g, node("Sigmoid", [g])])
        h = node("Add", [h, node("MatMul", [node("Mul", [act, up]), weight(FF, D)])])
    nodes.append(helper.make_node("MatMul", [rmsnorm(h), weight(D, VOCAB)], ["logits"]))
    save(path, nodes, "llama_small", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
         [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", VOCAB])], inits)

if __name__ == "__main__":
    build(sys.argv[1])
