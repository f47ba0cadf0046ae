"""Latency of an exported file timed as a deployment would run it: a plain onnxruntime session from the
file, at the profile's thread count and default graph optimizations, warm-up, then the median of timed runs.
Only a profile measured on this machine with the same runtime can be checked this way."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from hw_profiles.measure import cpu_name
from hw_profiles.profile import DeviceProfile

WARMUP_RUNS = 10
TIMED_RUNS = 30


def profile_threads(profile: DeviceProfile) -> int:
    return int((profile.measurement or {}).get("threads") or 1)


def not_measured_here(profile: DeviceProfile) -> str | None:
    """Why the profile's prediction cannot be checked on this machine (None when it can)."""
    if profile.kind != "measured":
        return f"{profile.name} is an estimated profile, not this machine"
    if profile.runtime != "onnxruntime":
        return f"profile {profile.name} was measured with {profile.runtime}, this check times onnxruntime"
    host = (profile.hardware or {}).get("host_cpu")
    if host != cpu_name():
        return f"profile {profile.name} was measured on {host!r}, this machine is {cpu_name()!r}"
    return None


def deployed_latency_ms(onnx_path: str | Path, profile: DeviceProfile) -> tuple[float, str]:
    """(median latency in ms, how it was timed) of the ONNX file at the profile's batch and threads."""
    import onnxruntime

    threads = profile_threads(profile)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    shape = [profile.batch if not isinstance(d, int) else d for d in session.get_inputs()[0].shape]
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).random(shape, dtype=np.float32)}
    for _ in range(WARMUP_RUNS):
        session.run(None, feed)
    times = []
    for _ in range(TIMED_RUNS):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(1e3 * (time.perf_counter() - start))
    how = (f"plain onnxruntime session of {Path(onnx_path).name}, {threads} thread(s), batch {profile.batch}, "
           f"{WARMUP_RUNS} warm-up runs, median of {TIMED_RUNS}")
    return statistics.median(times), how
