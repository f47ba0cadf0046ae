"""The composition root's hardware side: measuring, scaling, validating, calibrating and bundling device profiles.

`cli/profile_cmd.py` parses and renders; everything it asks of `hw_profiles` (and, through it, of the torch
side) comes through these functions. Heavy imports happen inside them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from specialize.errors import SpecializeError, option
from specialize.fileio import check_not_input, check_writable
from specialize.space import SPACES, SearchSpace

Progress = Callable[[str], None]


def defaults() -> dict:
    """The library's defaults the profile commands show: timed samples per entry, batch, bundle networks, whole
    networks a profile is calibrated on, graph optimization, single runs per network a validation times."""
    from hw_profiles.registry import DEFAULT_BATCH
    from hw_profiles.runtime import (
        BUNDLE_NETWORKS,
        DEFAULT_GRAPH_OPTIMIZATION,
        PROFILE_CALIBRATION_NETWORKS,
        REPEATS,
    )
    from hw_profiles.validate import DEPLOYED_RUNS

    return {
        "repeats": REPEATS,
        "batch": DEFAULT_BATCH,
        "networks": BUNDLE_NETWORKS,
        "calibration_networks": PROFILE_CALIBRATION_NETWORKS,
        "graph_optimization": DEFAULT_GRAPH_OPTIMIZATION,
        "runs": DEPLOYED_RUNS,
    }


def space_of(space: str) -> SearchSpace:
    """A space by preset name, the space an embedded table carries (by its name, or 'default'), or the space a file
    carries: an accuracy table (.json), or supernet weights (a space trained on the user's own data, e.g.
    `cifar10-3class`, exists only there)."""
    from specialize.table import EMBEDDED_TABLES, is_embedded_name, load_table

    if is_embedded_name(space) and space not in SPACES:
        return load_table(space).space
    if space.endswith(".json"):
        return load_table(space).space  # a missing or unreadable file is named there
    if not space.endswith(".pt") or not Path(space).is_file():
        return SPACES.lookup(space, f"; or an embedded table: {', '.join(EMBEDDED_TABLES)}; or a table .json")()
    from supernet.checkpoint import load_supernet

    return load_supernet(space).space


MAX_ACTIVATION_BYTES = 4 * 2**30  # the largest network's peak activation memory at --batch may not exceed this


def check_batch_memory(space: SearchSpace, batch: int) -> None:
    """Refuse a batch whose largest network would need more activation memory than MAX_ACTIVATION_BYTES (the
    cost model's count), before anything is allocated."""
    from specialize.cost import arch_cost

    peak = arch_cost(space.largest_arch(), batch=batch)["peak_activation_bytes"]
    if peak > MAX_ACTIVATION_BYTES:
        raise SpecializeError(
            f"{option('batch', batch)} would need {peak / 2**30:.1f} GiB of activations for the largest network of "
            f"{space.name!r} (limit {MAX_ACTIVATION_BYTES / 2**30:.0f} GiB); use a smaller batch"
        )


def measure_steps(space: str, batch: int, calibration_networks: int, repeats: int, precision: str = "fp32") -> int:
    """How many progress steps `measure_profile` reports."""
    from hw_profiles.runtime import Protocol
    from hw_profiles.workloads import timed_workloads

    protocol = Protocol(repeats=repeats)
    return len(timed_workloads(space_of(space), batch, precision)) * protocol.passes + calibration_networks * (
        protocol.passes + 2
    )


def check_measurable(
    space: str, runtime: str, precision: str, threads: int | None, graph_optimization: str, output: Path, batch: int = 1
) -> None:
    """Fail before any work when the space is unknown, the output unwritable or the runtime cannot run here."""
    from hw_profiles.runtime import get_runtime

    check_writable(output)
    check_batch_memory(space_of(space), batch)
    get_runtime(runtime, precision, threads, graph_optimization)


def measure_profile(
    name: str,
    space: str,
    runtime: str,
    precision: str,
    batch: int,
    threads: int | None,
    graph_optimization: str,
    calibration_networks: int,
    repeats: int,
    force: bool,
    output: Path,
    progress: Progress,
):
    """Time every block, the stem and the head on `runtime`; write and return the measured profile. A profile
    with entries that stay noisy raises (nothing written) unless `force`."""
    from hw_profiles.profiler import NoisyProfileError, profile_space
    from hw_profiles.runtime import Protocol

    try:
        result = profile_space(
            space_of(space),
            name,
            runtime,
            precision,
            batch,
            threads,
            Protocol(repeats=repeats),
            force,
            progress,
            graph_optimization,
            calibration_networks,
        )
    except NoisyProfileError as exc:
        raise SpecializeError(f"{exc}; nothing written to {output}") from None
    result.save(output)
    return result


def busy_warning(profile) -> str | None:
    """Why a measured profile's timings are likely distorted (other processes busy as it began), if they are."""
    from hw_profiles.runtime import BUSY_LIMIT

    busy = profile.measurement.get("busy_before")
    if busy is not None and busy > BUSY_LIMIT:
        return f"other processes used {100 * busy:.0f}% of the CPU as it began (timings are likely distorted)"
    return None


def drift_warning(profile) -> str | None:
    """Why no profile can be checked within ±10% on this machine: the same networks, timed in rounds while it was
    measured, moved more than that between rounds. At two threads on a 2-vCPU VM the speed flips between two
    levels 1.8x apart while one thread holds still (benchmarks/two_threads.py). Back-to-back rounds do not see a
    drift over minutes (224 px networks here: docs/int8.md), so silence is not proof of a steady host."""
    from hw_profiles.validate import WITHIN

    drift = (profile.measurement.get("whole_network") or {}).get("repeatability")
    if drift is None or drift <= WITHIN:
        return None
    text = f"the same networks moved ±{100 * drift:.0f}% between timing rounds: no profile can be checked closer here"
    if (profile.threads or 1) > 1:
        text += f"; {profile.threads}-thread timings on a VM can flip between two speeds, 1 thread may hold still"
    return text


def scaling_steps(calibration_networks: int) -> int:
    from hw_profiles.thread_scaling import SCALING_ROUNDS

    return calibration_networks * (SCALING_ROUNDS + 1)


def scale_profile(
    base_path: Path,
    space: str | None,
    threads: int,
    calibration_networks: int,
    name: str | None,
    output: Path,
    progress: Progress,
):
    """A `threads`-thread profile from a 1-thread profile's blocks and whole networks timed at `threads`."""
    from hw_profiles.profile import load_profile
    from hw_profiles.thread_scaling import scale_to_threads

    check_writable(output)
    check_not_input(output, base_path)
    base = load_profile(base_path, space_of(space) if space else None)
    if base.elsewhere:
        raise SpecializeError(
            f"{option('from_one_thread', str(base_path))} was measured on {base.elsewhere}, not here: "
            "its blocks and this "
            f"machine's whole networks would mix two machines; profile this one first: `{base.profile_here_command()}`"
        )
    result = scale_to_threads(base, threads, calibration_networks, progress=progress)
    if name:
        result = replace(result, name=name)
    result.save(output)
    return base, result


def validate(
    profile_path: Path,
    samples: int,
    seed: int,
    calibrate: bool,
    fit_samples: int | None,
    runtime: str | None,
    threads: int | None,
    runs: int,
    record: bool,
    output: Path | None,
    progress: Progress,
) -> tuple[dict, object]:
    """Export random whole networks, time them as deployed, compare with the profile; with `calibrate` or `record`,
    write the updated profile to `output`. Returns (report, profile)."""
    from hw_profiles.profile import load_profile
    from hw_profiles.validate import check_recordable, record_validation, validate_profile

    if (calibrate or record) and output is None:
        raise SpecializeError(
            f"{option('calibrate' if calibrate else 'record')} writes the profile to a file: give {option('output')}"
        )
    if output is not None:
        check_writable(output)
    loaded = load_profile(profile_path)
    if record:
        check_recordable(loaded, runtime, threads)
    report, updated = validate_profile(loaded, samples, seed, calibrate, fit_samples, runtime, threads, runs, progress)
    if record:
        updated = record_validation(updated, report)
        report["expected_error"] = updated.expected_error
    if report.get("calibration_kept") or record:
        updated.save(output)
    return report, updated


def profile_or_estimate(profile: str, space: str | None, batch: int | None = None):
    """A profile file (at `batch` when given), or the estimate of a registered device for `space` at `batch`."""
    from hw_profiles import load_profile, resolve_profile
    from hw_profiles.devices import canonical_name, devices
    from hw_profiles.registry import check_profile_settings

    if canonical_name(profile) in devices() and not Path(profile).is_file():
        if space is None:
            raise SpecializeError(
                f"{option('profile', profile)} is a device name: give {option('space')} for its estimate"
            )
        return resolve_profile(profile, space_of(space), batch=batch)
    return check_profile_settings(load_profile(profile), batch, None)


def calibrate(profile: str, timings: Path, space: str | None, batch: int | None, output: Path | None):
    """Fit a profile (or a device's estimate) to a few whole-network timings; write it. Returns (path, profile)."""
    from hw_profiles.fewshot import calibrate_profile_with_timings

    loaded = profile_or_estimate(profile, space, batch)
    target = output or loaded.path
    if target is None:
        raise SpecializeError(
            f"{option('profile')} names a device, so give {option('output')} to write the calibrated profile"
        )
    check_writable(target)
    check_not_input(target, timings)
    result = calibrate_profile_with_timings(loaded, timings)
    result.save(target)
    return target, result


def bundle_steps(space: str, batch: int, networks: int, precision: str = "fp32") -> int:
    from hw_profiles.workloads import timed_workloads

    check_batch_memory(space_of(space), batch)
    return len(timed_workloads(space_of(space), batch, precision)) + networks


def check_bundle_options(precision: str, runtime: str) -> None:
    """Refused before the progress bar starts (hw_profiles.bundle's one check)."""
    from hw_profiles.bundle import check_bundle_settings

    check_bundle_settings(precision, runtime)


def prepare_bundle(output: Path) -> None:
    """Refuse a bundle directory that exists and is not empty (before any progress is drawn)."""
    from hw_profiles.bundle import make_bundle_dir

    make_bundle_dir(output)


def write_bundle(
    space: str,
    output: Path,
    batch: int,
    networks: int,
    seed: int,
    progress: Progress,
    precision: str = "fp32",
    runtime: str = "onnxruntime",
) -> dict:
    from hw_profiles.bundle import write_bundle as write

    return write(space_of(space), output, batch, networks, seed, progress, precision, runtime)


def import_bundle(directory: Path, output: Path, name: str | None, estimate: str | None):
    """A profile from a bundle's results (or a few-shot fit of a device's estimate to them); written to `output`."""
    from hw_profiles.bundle import import_bundle as assemble, import_bundle_few_shot

    check_writable(output)
    check_not_input(output, *Path(directory).glob("*"), *Path(directory).glob("onnx/*"))
    result = assemble(directory, name) if estimate is None else import_bundle_few_shot(directory, estimate, name)
    result.save(output)
    return result


def list_devices(precision: str | None = None) -> list[dict]:
    from hw_profiles import list_devices as rows

    return rows(precision)


def resolve_profile(device: str | None, space, **options):
    """The one factory of profiles (`hw_profiles.resolve_profile`): a device's shipped or estimated profile,
    or a file."""
    from hw_profiles import resolve_profile as resolve

    return resolve(device, space, **options)
