#!/usr/bin/env python3
"""Time every ONNX file of a `specialize profile bundle` on this device; write results.json.

Standalone: needs Python 3.8+, numpy and onnxruntime, or TensorRT's `trtexec` on PATH (used by
default when present; then numpy only). Copy the bundle directory to the device and run
    python run_bundle.py [--runner auto|onnxruntime|trtexec] [--fp16] [--threads T] [--repeats R]
then `specialize profile import DIR -o PROFILE.json` on the machine with `specialize`.
On Jetson it records `nvpmodel -q` and `jetson_clocks --show` so the power mode travels with the
numbers; run `sudo jetson_clocks` first for steady clocks.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def tool_output(command):
    """stdout+stderr of a diagnostic tool, or None when it is not installed."""
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        return (done.stdout + done.stderr).strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return "failed: %s" % exc


def jetson_clocks_state():
    text = tool_output(["jetson_clocks", "--show"])
    if text is None:
        return None
    # jetson_clocks pins every clock to its maximum: MinFreq == MaxFreq == CurrentFreq on each line
    triples = re.findall(r"MinFreq=(\d+) MaxFreq=(\d+) CurrentFreq=(\d+)", text)
    pinned = bool(triples) and all(lo == hi == cur for lo, hi, cur in triples)
    return {"on": pinned if triples else None, "output": text[:4000]}


# -- cpu_name and ort_session copied verbatim from hw_profiles/host.py and supernet/sessions.py, the rest from
# hw_profiles/runtime.py (tests/test_hw_runtime.py fails if any differ) --
def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- copied verbatim from hw_profiles/runtime.py --
WARMUP_S = 0.02
SAMPLE_S = 0.001
REPEATS = 21
MIN_SAMPLES = 5
BUDGET_S = 0.12
REL_IQR_MAX = 0.1
PASSES = 3
GRAPH_OPTIMIZATION_LEVELS = ("disabled", "basic", "extended", "all")
DEFAULT_GRAPH_OPTIMIZATION = "all"


def ort_session(model, threads=1, graph_optimization_level="all"):
    """An onnxruntime CPU session as a deployment makes one: `threads` intra-op threads, one inter-op
    thread, sequential execution, the named graph optimization level. `model`: ONNX bytes or a path."""
    import onnxruntime

    levels = {
        "disabled": onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = levels[graph_optimization_level]
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def wall_clock(run, n):
    """Seconds that `n` calls of `run` take, by the wall clock."""
    start = time.perf_counter()
    for _ in range(n):
        run()
    return time.perf_counter() - start


def time_samples(run, clock, warmup_s, sample_s, repeats, budget_s, min_samples):
    """The timing protocol: warm up for `warmup_s` (at least 3 runs); time one run to pick how many
    runs make a sample at least `sample_s` long; take samples (ms per run) until `repeats`, or until
    `budget_s` has passed once `min_samples` are in. Returns (samples, runs per sample)."""
    start, warm = time.perf_counter(), 0
    while warm < 3 or time.perf_counter() - start < warmup_s:
        run()
        warm += 1
    once = clock(run, 1)
    inner = max(1, math.ceil(sample_s / max(once, 1e-7))) if sample_s > 0 else 1
    samples, begin = [], time.perf_counter()
    while len(samples) < repeats:
        samples.append(1e3 * clock(run, inner) / inner)
        if len(samples) >= min_samples and time.perf_counter() - begin > budget_s:
            break
    return samples, inner


def summarize(samples, runs_per_sample):
    """Median and interquartile range of the samples (ms)."""
    import numpy as np

    q1, median, q3 = np.percentile(samples, [25, 50, 75])
    return {
        "median_ms": float(median),
        "iqr_ms": float(q3 - q1),
        "samples": len(samples),
        "runs_per_sample": runs_per_sample,
    }


def pick(timings, rel_iqr_max):
    """Lowest median among steady timings (interference only adds time), else the steadiest one."""

    def rel(t):
        return t["iqr_ms"] / t["median_ms"] if t["median_ms"] > 0 else float("inf")

    steady = [t for t in timings if rel(t) <= rel_iqr_max]
    return min(steady, key=lambda t: t["median_ms"]) if steady else min(timings, key=rel)


# -- end of the copy ------------------------------------------------------------------------------
def time_file(session, shape, args, warmup_s):
    """Median and IQR of samples, each the mean of enough runs to last --sample-s (as `specialize profile`)."""
    import numpy as np

    feed = {"input": np.random.default_rng(0).random(shape, dtype=np.float32)}
    samples, inner = time_samples(
        lambda: session.run(None, feed), wall_clock, warmup_s, args.sample_s, args.repeats, args.budget_s, MIN_SAMPLES
    )
    return summarize(samples, inner)


def time_all_onnxruntime(entries, args):
    """Round-robin passes over every file, keeping each file's best pass (as `specialize profile`)."""
    sessions, passes = {}, {}
    for i, entry in enumerate(entries):
        sessions[entry["key"]] = ort_session(os.path.join(HERE, entry["file"]), args.threads, args.graph_optimization)
        passes[entry["key"]] = [time_file(sessions[entry["key"]], tuple(entry["input_shape"]), args, args.warmup_s)]
        print(
            "[%d/%d] %s %.4f ms" % (i + 1, len(entries), entry["key"], passes[entry["key"]][0]["median_ms"]), flush=True
        )
    for p in range(1, args.passes):
        print("pass %d/%d" % (p + 1, args.passes), flush=True)
        for entry in entries:
            passes[entry["key"]].append(time_file(sessions[entry["key"]], tuple(entry["input_shape"]), args, 0.0))
    return {key: pick(found, args.rel_iqr_max) for key, found in passes.items()}


def time_trtexec(path, shape, args):
    with tempfile.TemporaryDirectory() as tmp:
        times = os.path.join(tmp, "times.json")
        command = [
            "trtexec",
            "--onnx=" + path,
            "--noDataTransfers",
            "--useCudaGraph",
            "--useSpinWait",
            "--exportTimes=" + times,
            "--iterations=%d" % max(args.repeats, 10),
            "--warmUp=%d" % int(1e3 * args.warmup_s),
            "--avgRuns=1",
            "--duration=0",
        ]
        if args.fp16:
            command.append("--fp16")
        if getattr(args, "int8", False):
            command.append("--int8")  # explicit quantization: the scales are in the QDQ graph
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit("trtexec failed on %s:\n%s" % (path, (done.stdout + done.stderr)[-3000:]))
        try:
            with open(times) as f:
                records = json.load(f)
            samples = [r.get("computeMs", r.get("latencyMs")) for r in records]
            return summarize([s for s in samples if s is not None], 1)
        except (OSError, ValueError):
            match = re.search(r"GPU Compute Time:.*?median = ([\d.]+) ms", done.stdout)
            if not match:
                raise SystemExit("could not read trtexec timings for %s" % path)
            return {
                "median_ms": float(match.group(1)),
                "iqr_ms": 0.0,
                "samples": 1,
                "runs_per_sample": max(args.repeats, 10),
            }


def write_new(path, text):
    """Write through a fresh temporary file beside `path`, then rename: a planted symlink is never followed."""
    directory, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + name + ".", suffix=".tmp", dir=directory)  # O_EXCL: never an existing file
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)  # replaces a link at `path` itself, never its target
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runner", choices=["auto", "onnxruntime", "trtexec"], default="auto")
    parser.add_argument("--name", default=socket.gethostname(), help="device name stored in the results")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (1: steadiest)")
    parser.add_argument(
        "--graph-optimization",
        choices=GRAPH_OPTIMIZATION_LEVELS,
        default=DEFAULT_GRAPH_OPTIMIZATION,
        help="onnxruntime graph optimization level (record it; deploy with the same)",
    )
    parser.add_argument(
        "--passes", type=int, default=PASSES, help="round-robin passes; each file keeps its best (onnxruntime)"
    )
    parser.add_argument(
        "--rel-iqr-max", type=float, default=REL_IQR_MAX, help="IQR/median above this marks a pass noisy"
    )
    parser.add_argument("--fp16", action="store_true", help="trtexec --fp16 (onnxruntime runs fp32)")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed samples per file")
    parser.add_argument("--warmup-s", type=float, default=WARMUP_S)
    parser.add_argument("--sample-s", type=float, default=SAMPLE_S)
    parser.add_argument("--budget-s", type=float, default=BUDGET_S, help="per-file time cap for sampling (onnxruntime)")
    parser.add_argument("--out", default=os.path.join(HERE, "results.json"))
    args = parser.parse_args()
    runner = args.runner
    if runner == "auto":
        runner = "trtexec" if shutil.which("trtexec") else "onnxruntime"
    if runner == "trtexec" and shutil.which("trtexec") is None:
        raise SystemExit("trtexec is not on PATH (on Jetson: /usr/src/tensorrt/bin/trtexec)")
    if args.fp16 and runner != "trtexec":
        raise SystemExit("--fp16 needs --runner trtexec; onnxruntime on CPU measures fp32")
    with open(os.path.join(HERE, "manifest.json")) as f:
        manifest = json.load(f)
    precision = manifest.get("precision", "fp32")  # int8: the graphs are QDQ, quantized for manifest["runtime"]
    if precision == "int8" and args.fp16:
        raise SystemExit("this bundle's graphs are int8 (QDQ): run it without --fp16")
    args.int8 = precision == "int8"
    if runner == "onnxruntime":
        import onnxruntime

        version, device = onnxruntime.__version__, cpu_name()
    else:
        version, device = tool_output(["trtexec", "--help"]) or "", tool_output(["nvidia-smi", "-L"]) or cpu_name()
        version = (
            re.search(r"TensorRT v(\d+)", version) or re.search(r"(\d+\.\d+\.\d+)", version) or [None, "unknown"]
        )[1]
    entries = manifest["entries"]
    if runner == "onnxruntime":
        results = time_all_onnxruntime(entries, args)
    else:
        results = {}
        for i, entry in enumerate(entries):
            results[entry["key"]] = time_trtexec(os.path.join(HERE, entry["file"]), tuple(entry["input_shape"]), args)
            print(
                "[%d/%d] %s %.4f ms" % (i + 1, len(entries), entry["key"], results[entry["key"]]["median_ms"]),
                flush=True,
            )
    out = {
        "schema_version": 1,
        "kind_of_file": "bundle_results",
        "name": args.name,
        "runner": runner,
        "runtime_version": version,
        "device_name": device,
        "threads": args.threads if runner == "onnxruntime" else None,
        "graph_optimization_level": args.graph_optimization if runner == "onnxruntime" else None,
        "precision": "int8" if args.int8 else "fp16" if args.fp16 else "fp32",
        "repeats": args.repeats,
        "fingerprint": manifest["fingerprint"],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": {"hostname": socket.gethostname(), "platform": platform.platform(), "cpu": cpu_name()},
        "nvpmodel": tool_output(["nvpmodel", "-q"]),
        "jetson_clocks": jetson_clocks_state(),
        "results": results,
    }
    write_new(args.out, json.dumps(out, indent=1))
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
