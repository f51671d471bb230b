"""Per-layer minima of one ductile engine, 1 thread by default, for A/Bs of library builds.

    DUCTILE_LIB=build/libductile.so python bench/layer_minima.py MODEL SHAPES RUNS [THREADS [FLAGS]]
      SHAPES  JSON {input: [dims]} (min = opt = max)
      FLAGS   builder flags, comma separated (bf16, fp16)
Prints one JSON line: total_cpu_min / total_cpu_med (thread CPU time of whole runs, ms),
wall_min / wall_med (wall time of as many runs without the profiler, interleaved: wall_min -
sum_min is what runs between the layers, forks and joins included, at THREADS > 1),
sum_min (the sum of the layers' minima) and layers: [name, op type, tactic, min ms, flops]
in execution order. Whole-run times of two builds differ by +-1-2% between processes on a
shared machine (tactic timing, arena layout); per-layer minima over alternating processes
separate changes of a few percent on one layer (bench/results/cpu-cpures-2026-12-04-s15.md)."""
import json, os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import numpy as np
import ductile
model, shapes, runs = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 1
flags = [f for f in sys.argv[5].split(",") if f] if len(sys.argv) > 5 else []
b = ductile.Builder(); net = b.parse_onnx(model); prof = b.create_optimization_profile()
for n, s in shapes.items(): prof.set_shape(n, tuple(s), tuple(s), tuple(s))
cfg = b.create_builder_config(); cfg.threads = threads; cfg.add_optimization_profile(prof)
for f in flags: cfg.set_flag(getattr(ductile.BuilderFlag, f.upper()))
eng = b.build_engine(net, cfg); ctx = eng.create_execution_context(); ctx.set_threads(threads)
feeds = {n: np.random.default_rng(0).uniform(-1, 1, s).astype(np.float32) for n, s in shapes.items()}
best = {}; cur = []
ctx.profiler = lambda t: cur.append(t)
tot = []; wall = []; prof = ctx.profiler
for r in range(runs + 2):
    ctx.profiler = None; w = time.perf_counter(); ctx.run(feeds); w = time.perf_counter() - w
    ctx.profiler = prof
    cur.clear(); c = time.thread_time(); ctx.run(feeds); c = time.thread_time() - c
    if r < 2: continue
    wall.append(w * 1e3)
    tot.append(c * 1e3)
    for t in cur:
        k = (t.index, t.layer)
        if k not in best or t.ms < best[k][2]: best[k] = [t.op_type, t.tactic, t.ms, t.flops]
out = {"total_cpu_min": min(tot), "total_cpu_med": sorted(tot)[len(tot)//2],
       "wall_min": min(wall), "wall_med": sorted(wall)[len(wall)//2], "sum_min": sum(v[2] for v in best.values()),
       "layers": [[k[1]] + v for k, v in sorted(best.items())]}
print(json.dumps(out))
