"""Per-node minima of onnxruntime (pinned, CPU) in its own process: the counterpart of
bench/layer_minima.py for per-layer comparisons (bench/layer_compare.py).

    python bench/ort_layers.py MODEL SHAPES RUNS [THREADS]
      SHAPES  JSON {input: [dims]}
Prints one JSON line: total_cpu_min (thread CPU time of whole runs, ms, profiled), sum_min (the
sum of the nodes' minima) and layers: [name, op type, "ort", min ms] in first-seen order, from
onnxruntime's own profiler (enable_profiling: its "Node" events of kind "*_kernel_time"). The
profiler costs onnxruntime ~5% (session 16: mobilenet_v2 1 thread 3.44 -> 3.63 ms), so a node
that ties here is really ~5% behind ort."""
import json
import os
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

model, shapes, runs = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 1
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.enable_profiling = True
so.profile_file_prefix = os.path.join(tempfile.mkdtemp(prefix="ort_layers_"), "prof")
sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
kinds = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}
rng = np.random.default_rng(0)
feeds = {}
for i in sess.get_inputs():
    dt = kinds.get(i.type, np.float32)
    s = shapes[i.name]
    feeds[i.name] = rng.uniform(-1, 1, s).astype(dt) if dt == np.float32 else rng.integers(0, 2, s).astype(dt)
tot = []
for r in range(runs + 2):
    c = time.thread_time()
    sess.run(None, feeds)
    c = time.thread_time() - c
    if r >= 2:
        tot.append(c * 1e3)
path = sess.end_profiling()
with open(path) as f:
    events = json.load(f)
os.remove(path)
# the first two runs are warm-ups: skip each node's first two events
seen, best, order = {}, {}, []
for ev in events:
    if ev.get("cat") != "Node" or not ev.get("name", "").endswith("_kernel_time"):
        continue
    name = ev["name"][: -len("_kernel_time")]
    n = seen[name] = seen.get(name, 0) + 1
    if n <= 2:
        if n == 1:
            order.append(name)
        continue
    ms = ev["dur"] / 1e3
    op = ev.get("args", {}).get("op_name", "")
    if name not in best or ms < best[name][1]:
        best[name] = (op, ms)
layers = [[n, best[n][0], "ort", best[n][1]] for n in order if n in best]
print(json.dumps({"total_cpu_min": min(tot), "sum_min": sum(l[3] for l in layers), "layers": layers}))
