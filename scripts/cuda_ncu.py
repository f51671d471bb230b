"""Per-kernel GPU times of ductile's FP16 engines (Nsight Compute, one metric: the kernel's
duration), beside the CUDA-graph latency of the same engine: where the time of a small-shape
run goes, and how much of it is not kernels (launch gaps between graph nodes).
    python3 scripts/cuda_ncu.py OUTDIR [model,...] [shape indices, e.g. 0 or 0,2]
Exports bench_cuda's models (random weights, BatchNorm calibrated), builds each with the CLI
(--fp16, profile min/opt/max = bench_cuda's shapes), then per shape: the CLI's graph latency,
its --dumpProfile (layer -> tactic), and `ncu --clock-control none` over a few executes
(NCU_WARM=1: also `--cache-control none`, so each kernel finds what its predecessor left in L2,
as in a graph replay, instead of flushed caches; NCU_DETAIL=1: also the speed-of-light,
occupancy, launch and warp-state sections of a few executes' kernels in OUTDIR/detail_*.txt).
The graph latency is measured with programmatic dependent launch off and on (DUCTILE_CUDA_PDL).
Runs on the GPU machine only."""
import csv
import io
import os
import subprocess
import sys
import tempfile


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import bench_cuda  # noqa: E402

CLI = os.path.join(HERE, "..", "build", "ductile")


def spec(shapes, i):
    return ",".join(f"{n}:{'x'.join(map(str, s[i]))}" for n, s in shapes.items())


def sh(cmd, log, timeout=300, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ, **(env or {})))
    with open(log, "w") as f:
        f.write(" ".join(cmd) + "\n" + r.stdout + r.stderr)
    return r.returncode, r.stdout + r.stderr


def last_execute(names):
    """Length of the repeating tail: the kernels of one execute."""
    for k in range(1, len(names) // 2 + 1):
        if names[-k:] == names[-2 * k:-k]:
            return k
    return len(names)


def kernels(csv_text):
    rows = [r for r in csv.reader(io.StringIO(csv_text)) if r]
    head = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
    if head is None:
        return []
    h = rows[head]
    kn, mv, mu = h.index("Kernel Name"), h.index("Metric Value"), h.index("Metric Unit")
    out = []
    for r in rows[head + 1:]:
        if len(r) <= max(kn, mv):
            continue
        v = float(r[mv].replace(",", ""))
        scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}.get(r[mu], 1.0)
        out.append((r[kn], v * scale))
    return out


def main():
    out = sys.argv[1]
    models = (sys.argv[2] if len(sys.argv) > 2 else "resnet50,superres,mobilenet_v2,seg_lraspp,bert_small").split(",")
    which = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "0").split(",")]
    os.makedirs(out, exist_ok=True)
    for name in models:
        work = tempfile.mkdtemp(prefix="ncu_")  # models and engines: large, not results
        model, shapes, path, _ = bench_cuda.export_named(name, work)
        del model
        eng = os.path.join(work, name + ".fp16.engine")
        rc, txt = sh([CLI, f"--onnx={path}", "--device=cuda", "--fp16", f"--minShapes={spec(shapes, 0)}",
                      f"--optShapes={spec(shapes, 1)}", f"--maxShapes={spec(shapes, 2)}", f"--saveEngine={eng}",
                      "--skipInference"], f"{out}/build_{name}.log", timeout=600)
        print(f"== {name}: build rc={rc}", flush=True)
        if rc:
            print(txt[-2000:], flush=True)
            continue
        for i in which:
            s = spec(shapes, i)
            tag = f"{name}_{i}"
            base = [CLI, f"--loadEngine={eng}", f"--shapes={s}"]
            for pdl in ("0", "1", "0", "1"):  # programmatic dependent launch off / on, alternating
                rc, txt = sh(base + ["--iterations=500", "--warmUp=300", "--duration=0"], f"{out}/lat_{tag}_pdl{pdl}.log",
                             env={"DUCTILE_CUDA_PDL": pdl})
                lat = [l for l in txt.splitlines() if l.startswith("Latency")]
                print(f"== {tag} {s} graphs, PDL {pdl}: {lat[0] if lat else txt[-500:]}", flush=True)
            sh(base + ["--iterations=200", "--warmUp=100", "--duration=0", "--dumpProfile"], f"{out}/prof_{tag}.log")
            ncu = ["ncu", "--clock-control", "none", "--metrics", "gpu__time_duration.sum", "--csv",
                   "--print-kernel-base", "function"]
            if os.environ.get("NCU_WARM") == "1":
                ncu[1:1] = ["--cache-control", "none"]
            rc, txt = sh(ncu + base + ["--iterations=6", "--warmUp=0", "--duration=0"], f"{out}/ncu_{tag}.csv", 600)
            if os.environ.get("NCU_DETAIL") == "1":   # the sections of two executes' kernels, as text
                det = ["ncu", "--cache-control", "none", "--clock-control", "none", "--section", "SpeedOfLight",
                       "--section", "Occupancy", "--section", "LaunchStats", "--section", "WarpStateStats",
                       "--metrics", "regex:smsp__average_warps_issue_stalled_.*_per_issue_active.ratio,"
                       "smsp__inst_executed.sum,smsp__inst_executed.avg.per_cycle_active",
                       "--print-kernel-base", "function"]
                if os.environ.get("NCU_KERNEL"):   # a regex of the kernels to detail
                    det += ["--kernel-name", "regex:" + os.environ["NCU_KERNEL"]]
                sh(det + base + ["--iterations=4", "--warmUp=0", "--duration=0"], f"{out}/detail_{tag}.txt", 600)
            ks = kernels(txt)
            if not ks:
                print(f"   ncu rc={rc}: no kernels\n{txt[-1500:]}", flush=True)
                continue
            k = last_execute([n for n, _ in ks])
            one = ks[-k:]
            total = sum(t for _, t in one)
            print(f"   ncu: {k} kernels per execute, kernel time {total:.1f} us", flush=True)
            agg = {}
            for n, t in one:
                a = agg.setdefault(n, [0, 0.0])
                a[0] += 1
                a[1] += t
            for n, (c, t) in sorted(agg.items(), key=lambda x: -x[1][1])[:25]:
                print(f"   {t:8.1f} us {c:3d}x  {n[:110]}", flush=True)
            with open(f"{out}/seq_{tag}.txt", "w") as f:
                for n, t in one:
                    f.write(f"{t:9.2f}  {n}\n")


if __name__ == "__main__":
    main()
