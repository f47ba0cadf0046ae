"""Measure a device profile: time every block, the stem and the head on one runtime.

Each entry is timed in its own session, in several round-robin passes (see `measure_workloads`), so each carries
the runtime's per-call cost; that cost is
measured once on an empty graph ("dispatch"), taken off every entry and counted once in the fixed
part, as one inference pays it once. Entries whose relative IQR exceeds the protocol's threshold are
re-measured; if some stay noisy, `profile_space` refuses (NoisyProfileError) unless forced.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from typing import Callable

import numpy as np

from hw_profiles.runtime import (
    DEFAULT_GRAPH_OPTIMIZATION,
    Protocol,
    Timing,
    cpu_busy_share,
    get_runtime,
    pick_timing,
    time_runs,
    torch_threads,
)
from hw_profiles.host import host_record
from hw_profiles.profile import DeviceProfile
from hw_profiles.workloads import (
    BOUNDARY,
    Workload,
    boundary_key,
    build_module,
    example_input,
    handover_shapes,
    space_workloads,
    timed_workloads,
    workload_onnx,
)
from specialize.errors import SpecializeError, option
from specialize.fileio import provenance
from specialize.space import SearchSpace


class NoisyProfileError(SpecializeError):
    """Some entries stayed too noisy to trust; `profile` holds what was measured."""

    def __init__(self, message: str, profile: DeviceProfile):
        super().__init__(message)
        self.profile = profile


BOUNDARY_NOTE = (
    "each block less half a QuantizeLinear->DequantizeLinear pair on its input and on its output tensor (timed "
    "alone, it pays a Q at its input and a DQ at its output that consecutive blocks in a network do not); the stem "
    "less half its output's pair, the head half its input's"
)
MIN_AVAILABLE_MEMORY = 0.3  # below this share of RAM available, sessions stop being held between passes


def memory_low() -> bool:
    """True when less than MIN_AVAILABLE_MEMORY of the machine's memory is available (/proc/meminfo)."""
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) for line in f if line.split()[1:]}
        return info["MemAvailable"] < MIN_AVAILABLE_MEMORY * info["MemTotal"]
    except (OSError, KeyError, ValueError, IndexError):
        return False


def prepare_workload(runtime, space: SearchSpace, workload: Workload) -> tuple[Callable[[], None], Callable | None]:
    """(run, reopen): `reopen()` makes a fresh run of the same model from its ONNX bytes, on runtimes that
    load ONNX files; None on runtimes that time torch modules."""
    if not hasattr(runtime, "load"):
        return runtime.prepare(build_module(space, workload), example_input(workload.input_shape)), None
    onnx = workload_onnx(space, workload, runtime.precision, runtime.name)

    def reopen() -> Callable[[], None]:
        return runtime.load(onnx, tuple(workload.input_shape))

    return reopen(), reopen


def measure_workloads(
    runtime,
    space: SearchSpace,
    workloads: list[Workload],
    protocol: Protocol,
    progress: Callable[[str], None] | None = None,
    between_passes: Callable[[], None] | None = None,
) -> tuple[dict[str, Timing], bool]:
    """Time every workload in `protocol.passes` round-robin passes and keep, per workload, `pick` of
    its passes: a burst of interference from another process then spoils one pass, not the entry.
    Entries still noisy are re-timed up to `protocol.retries` times. `progress(key)` after each timing;
    `between_passes()` before the first pass and after each (whole-network rounds interleave there).
    Sessions are held between passes while memory allows; once it runs low (ponas-imagenet at batch 32
    held ~20 GB), each later timing opens a fresh session and warms it up. Returns (timings, held)."""
    tick = between_passes or (lambda: None)
    tick()
    runs, reopen, passes, held = {}, {}, {}, True
    for workload in workloads:
        runs[workload.key], reopen[workload.key] = prepare_workload(runtime, space, workload)
        passes[workload.key] = [time_runs(runs[workload.key], runtime.clock, protocol)]
        if held and memory_low():
            held = False
        if not held:
            runs.update({key: None for key in runs if reopen[key] is not None})
        if progress:
            progress(workload.key)
    tick()
    warm = replace(protocol, warmup_s=0.0)  # held sessions are warm after the first pass

    def timed(key: str) -> Timing:
        run = runs[key]
        return (
            time_runs(run, runtime.clock, warm)
            if run is not None
            else time_runs(reopen[key](), runtime.clock, protocol)
        )

    for _ in range(protocol.passes - 1):
        for key in runs:
            passes[key].append(timed(key))
            if progress:
                progress(key)
        tick()
    timings = {key: pick_timing(found, protocol.rel_iqr_max) for key, found in passes.items()}
    for key in runs:
        for _ in range(protocol.retries):
            if timings[key].rel_iqr <= protocol.rel_iqr_max:
                break
            timings[key] = pick_timing([timings[key], timed(key)], protocol.rel_iqr_max)
    return timings, held


def boundary_share(space: SearchSpace, timings: dict[str, Timing], batch: int) -> list[float]:
    """Per handover tensor (the stem's output, each layer's output), half the time of a QuantizeLinear ->
    DequantizeLinear pair on it, less the per-call cost: what a block timed alone at int8 pays at each end and
    does not pay inside a network (one Q at its input, one DQ at its output). Zeros without probes (fp32, or an
    INT8 bundle written before the probes existed)."""
    dispatch = timings["dispatch"].median_ms
    shapes = handover_shapes(space, batch)
    if not all(boundary_key(shape) in timings for shape in shapes):
        return [0.0] * len(shapes)
    return [max(timings[boundary_key(shape)].median_ms - dispatch, 0.0) / 2 for shape in shapes]


def noisy_entries(timings: dict[str, Timing], protocol: Protocol) -> list[dict]:
    """Entries noisier than the protocol allows, worst first."""
    noisy = [(key, t) for key, t in timings.items() if t.rel_iqr > protocol.rel_iqr_max and key != "dispatch"]
    noisy.sort(key=lambda item: -item[1].rel_iqr)
    return [{"entry": key, "median_ms": round(t.median_ms, 4), "rel_iqr": round(t.rel_iqr, 3)} for key, t in noisy]


def assemble_profile(space: SearchSpace, timings: dict[str, Timing], batch: int) -> tuple:
    """(latency [L][C], spread [L][C], fixed_ms, fixed_spread_ms) from timings keyed like `timed_workloads`.
    With INT8 boundary probes among them, each block loses half the QDQ pair of its input and half that of its
    output, the stem half its output's and the head half its input's (`boundary_share`)."""
    dispatch = timings["dispatch"].median_ms
    boundary = boundary_share(space, timings, batch)
    latency = np.zeros((space.num_layers, space.num_candidates))
    spread = np.zeros_like(latency)
    for workload in space_workloads(space, batch):
        if workload.layer is not None:
            timing = timings[workload.key]
            paid = boundary[workload.layer] + boundary[workload.layer + 1]
            latency[workload.layer, workload.candidate] = max(timing.median_ms - dispatch - paid, 0.0)
            spread[workload.layer, workload.candidate] = timing.iqr_ms
    paid = {"stem": boundary[0], "head": boundary[-1]}
    fixed = {part: max(timings[part].median_ms - dispatch - paid[part], 0.0) for part in ("stem", "head")}
    fixed["dispatch"] = dispatch
    fixed_spread = {part: timings[part].iqr_ms for part in ("stem", "head", "dispatch")}
    return latency, spread, fixed, fixed_spread


def profile_space(
    space: SearchSpace,
    name: str,
    runtime_name: str = "onnxruntime",
    precision: str = "fp32",
    batch: int = 1,
    threads: int | None = None,
    protocol: Protocol = Protocol(),
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    graph_optimization_level: str = DEFAULT_GRAPH_OPTIMIZATION,
    calibration_networks: int = 0,
) -> DeviceProfile:
    """A measured profile of `space`; `progress(key)` is called after each timing (entries x passes),
    and, when `calibration_networks` > 0, once per export and per whole-network timing: those networks are
    timed in rounds between the block passes and fit the correction (`hw_profiles.validate.CalibrationRounds`)."""
    runtime = get_runtime(runtime_name, precision, threads, graph_optimization_level)
    busy = cpu_busy_share(0.5)
    start = time.perf_counter()
    whole = None
    if calibration_networks and hasattr(runtime, "load"):
        from hw_profiles.validate import CalibrationRounds

        whole = CalibrationRounds(
            space,
            batch,
            runtime_name,
            precision,
            runtime.threads or 1,
            runtime.graph_optimization_level,
            calibration_networks,
            progress=progress,
        )
    with whole or contextlib.nullcontext(), torch_threads(1):  # tracing for export is single-threaded work
        timings, held = measure_workloads(
            runtime,
            space,
            timed_workloads(space, batch, precision),
            protocol,
            progress,
            whole.time_round if whole else None,
        )
        if whole:
            whole.time_after_passes()
    latency, spread, fixed, fixed_spread = assemble_profile(space, timings, batch)
    described = runtime.describe()
    noisy = noisy_entries(timings, protocol)
    profile = DeviceProfile(
        name=name,
        kind="measured",
        runtime=runtime_name,
        space=space,
        latency_ms=latency,
        fixed_ms=fixed,
        precision=precision,
        batch=batch,
        spread_ms=spread,
        fixed_spread_ms=fixed_spread,
        threads=runtime.threads or 1,
        graph_optimization_level=runtime.graph_optimization_level,
        hardware={"device_name": described["device_name"], **host_record()},
        measurement={
            "protocol": protocol.__dict__,
            "threads": described.get("threads"),
            "noisy": noisy,
            "busy_before": None if busy is None else round(busy, 3),
            "sessions": "held between passes"
            if held
            else "reopened (and warmed up) for each timing once memory ran low",
            "forced": bool(noisy) and force,
            "wall_s": round(time.perf_counter() - start, 2),
            "spread": "interquartile range of the samples, ms",
            "dispatch": "per-call cost of an empty graph, taken off every entry and counted once in fixed_ms",
            **({"int8_boundary": BOUNDARY_NOTE} if any(k.startswith(BOUNDARY) for k in timings) else {}),
        },
        provenance=provenance(name=name, batch=batch, **described),
    )
    if noisy and not force:
        listed = ", ".join(f"{e['entry']} (IQR {100 * e['rel_iqr']:.0f}% of {e['median_ms']} ms)" for e in noisy[:8])
        raise NoisyProfileError(
            f"{len(noisy)} entries stayed noisier than {100 * protocol.rel_iqr_max:.0f}% relative IQR after "
            f"{protocol.retries} re-measurements; worst: {listed}. Is something else using the CPU/GPU? "
            f"Re-run when the machine is idle, or pass {option('force', True)} to write it anyway",
            profile,
        )
    if calibration_networks and whole is None:
        profile.measurement["whole_network"] = {
            "skipped": f"runtime {runtime_name} times torch modules, not exported "
            f"ONNX files, so no whole-network correction was fitted"
        }
    elif whole is not None:
        profile = whole.fit(profile)
    return profile
