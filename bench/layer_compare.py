"""ductile against onnxruntime, block by block: where a model's time goes in each engine.

    python bench/layer_compare.py MODEL SHAPES [--runs N] [--threads T] [--rounds R]
                                  [--group REGEX] [--lib LIBDUCTILE]
      SHAPES  JSON {input: [dims]}
Runs bench/layer_minima.py (ductile's profiler) and bench/ort_layers.py (onnxruntime's) each in
its own process, alternating for R rounds, keeps each layer's minimum over the rounds, and sums
the layers per block: the part of the layer's name that REGEX matches (default: the first two
components of ONNX paths, "/features/features.5" or "/layer1/layer1.0"; names that do not match
go to "(rest)"). The engines fuse differently and onnxruntime names its nodes after their
outputs, so blocks, not layers, line up. --order groups by the model's node order instead, for
models without path-like names: a block is one of ductile's layers (named after a node of the
model) and the nodes after it up to the next one; onnxruntime's nodes go to the block their
name's node falls in (its fused nodes keep the name of one of theirs). Prints a table sorted
by ductile's excess (ms over onnxruntime), and the totals. onnxruntime's profiler costs it ~5% (bench/ort_layers.py)."""
import argparse
import collections
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def minima(script, model, shapes, runs, threads, env):
    out = subprocess.run([sys.executable, os.path.join(HERE, script), model, json.dumps(shapes), str(runs), str(threads)],
                         capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["layers"]


def group_blocks(regex):
    """A layer's block: the part of its name that regex matches."""
    group = re.compile(regex)

    def key(name):
        m = group.search(name)
        return m.group(0) if m else "(rest)"
    return key


def order_blocks(model, layers):
    """A layer's block by node order: the last of ductile's layers at or before its node.
    onnxruntime's names carry its fusions' marks ("conv_3_nchwc", "silu_5/QuickGeluFusion/");
    a name with no node of the model ("ReorderOutput_token_307") goes to the block of the layer
    before it (the layers come in execution order)."""
    import onnx
    index = {n.name: i for i, n in enumerate(onnx.load(model, load_external_data=False).graph.node)}
    starts = sorted((index[n], n) for n in set(layers) if n in index)
    last = ["(rest)"]

    def key(name):
        for cand in (name, name.split("/")[0], re.sub(r"_nchwc$", "", name)):
            i = index.get(cand)
            if i is not None:
                break
        else:
            return last[0]
        block = "(rest)"
        for s, n in starts:
            if s > i:
                break
            block = n
        last[0] = block
        return block
    return key


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("shapes")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--group", default=r"^/[^/]+/[^/]+")
    ap.add_argument("--order", action="store_true", help="group by node order (see above)")
    ap.add_argument("--lib", default=os.environ.get("DUCTILE_LIB"))
    a = ap.parse_args()
    shapes = json.loads(a.shapes)
    env = dict(os.environ)
    if a.lib:
        env["DUCTILE_LIB"] = a.lib
    best = {"ductile": {}, "ort": {}}
    for _ in range(a.rounds):
        for eng, script in (("ductile", "layer_minima.py"), ("ort", "ort_layers.py")):
            for i, l in enumerate(minima(script, a.model, shapes, a.runs, a.threads, env)):
                key = (i, l[0])
                if key not in best[eng] or l[3] < best[eng][key]:
                    best[eng][key] = l[3]
    blocks = {e: collections.OrderedDict() for e in best}
    key = order_blocks(a.model, [n for _, n in sorted(best["ductile"])]) if a.order else group_blocks(a.group)
    for eng, layers in best.items():
        for (_, name), ms in sorted(layers.items()):
            k = key(name)
            blocks[eng][k] = blocks[eng].get(k, 0.0) + ms
    keys = list(dict.fromkeys(list(blocks["ductile"]) + list(blocks["ort"])))
    rows = [(k, blocks["ductile"].get(k, 0.0), blocks["ort"].get(k, 0.0)) for k in keys]
    print(f"{'block':40s} {'ductile ms':>10s} {'ort ms':>8s} {'excess':>8s}")
    for k, d, o in sorted(rows, key=lambda r: r[2] - r[1]):
        print(f"{k[:40]:40s} {d:10.3f} {o:8.3f} {d - o:+8.3f}")
    td, to = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"{'total (sum of layer minima)':40s} {td:10.3f} {to:8.3f} {td - to:+8.3f}")


if __name__ == "__main__":
    main()
