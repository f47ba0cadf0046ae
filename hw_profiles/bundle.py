"""Profile a device that cannot run this package: export a bundle, time it there, import the results.

`write_bundle` writes every block, the stem, the head, an empty "dispatch" graph and a few whole
networks as ONNX files, a manifest, and `run_bundle.py` (needs only onnxruntime + numpy, or
trtexec). `import_bundle` reads the runner's results.json back into a measured profile and fits the
calibration from the whole-network timings (kept only if it helps under leave-one-out).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from hw_profiles.runtime import BUNDLE_NETWORKS, Timing, torch_threads
from hw_profiles.profile import DeviceProfile
from hw_profiles.profiler import assemble_profile
from hw_profiles.validate import apply_whole_network_fit
from hw_profiles.workloads import network_workload, space_workloads, timed_workloads, workload_onnx
from specialize.sampling import spread_architectures
from specialize.errors import SpecializeError, has_control_characters, option
from specialize.fileio import atomic_write_bytes, atomic_write_json, provenance, read_json, require
from specialize.space import SearchSpace

BUNDLE_SCHEMA_VERSION = 1
RUNNER = Path(__file__).with_name("run_bundle.py")
MANIFEST, RESULTS = "manifest.json", "results.json"


def _file_name(key: str) -> str:
    return "onnx/" + key.replace("/", "_").replace(",", "-") + ".onnx"


def make_bundle_dir(out_dir: str | Path) -> Path:
    """Create the bundle directory (with onnx/); an existing file or non-empty directory is refused."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise SpecializeError(f"bundle directory {out_dir} exists and is not a directory; choose a new one")
    if (out_dir / "onnx").is_dir() and not any((out_dir / "onnx").iterdir()) and len(list(out_dir.iterdir())) == 1:
        return out_dir  # made by an earlier call, still empty
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise SpecializeError(f"bundle directory {out_dir} exists and is not empty; choose a new one")
    try:
        (out_dir / "onnx").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecializeError(f"cannot create bundle directory {out_dir}: {exc.strerror or exc}") from None
    return out_dir


def write_bundle(
    space: SearchSpace,
    out_dir: str | Path,
    batch: int = 1,
    networks: int = BUNDLE_NETWORKS,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    precision: str = "fp32",
    runtime: str = "onnxruntime",
) -> dict:
    """Every block, the stem, the head and `networks` whole networks as ONNX files with the standalone runner. At
    int8 each graph is quantized as `export --precision int8` ships it for `runtime` (onnxruntime's or TensorRT's
    QDQ form), so the device times what it will run; the empty dispatch graph stays as it is."""
    check_bundle_settings(precision, runtime)
    out_dir = make_bundle_dir(out_dir)
    workloads = timed_workloads(space, batch, precision) + [
        network_workload(space, a, batch) for a in spread_architectures(space, networks, seed)
    ]
    entries = []
    with torch_threads(1):
        for i, workload in enumerate(workloads):
            # networks get a short numbered name; their arch is in the manifest
            name = _file_name(workload.key) if workload.arch is None else f"onnx/net{i:03d}.onnx"
            onnx = workload_onnx(space, workload, precision, runtime, dynamic_batch=False)
            atomic_write_bytes(out_dir / name, onnx)
            entries.append(
                {
                    "key": workload.key,
                    "file": name,
                    "input_shape": list(workload.input_shape),
                    "layer": workload.layer,
                    "candidate": workload.candidate,
                    "arch": workload.arch,
                }
            )
            if progress:
                progress(workload.key)
    manifest = {
        "schema_version": BUNDLE_SCHEMA_VERSION,
        "kind_of_file": "profile_bundle",
        "space": space.to_dict(),
        "space_name": space.name,
        "fingerprint": space.fingerprint,
        "batch": batch,
        "precision": precision,
        "runtime": runtime,
        "entries": entries,
        "provenance": provenance(
            space=space.name, batch=batch, networks=networks, seed=seed, precision=precision, runtime=runtime
        ),
    }
    atomic_write_json(out_dir / MANIFEST, manifest)
    shutil.copyfile(RUNNER, out_dir / RUNNER.name)
    return manifest


BUNDLE_PRECISIONS = ("fp32", "int8")  # fp16 is the runner's --fp16 flag on TensorRT, not a form of the graphs
BUNDLE_RUNTIMES = ("onnxruntime", "tensorrt")  # whose INT8 QDQ form the graphs take


def check_bundle_settings(precision: str, runtime: str) -> None:
    if precision not in BUNDLE_PRECISIONS:
        raise SpecializeError(
            f"{option('precision', precision)} for a bundle must be fp32 or int8 (fp16 is the runner's --fp16 "
            "flag on TensorRT)"
        )
    if runtime not in BUNDLE_RUNTIMES:
        raise SpecializeError(f"{option('runtime', runtime)} for a bundle must be onnxruntime or tensorrt")


def _printable_name(results: dict, path: Path) -> str:
    """The device name the runner recorded: a non-empty string of printable text."""
    value = require(results, "name", path, "bundle results")
    if not isinstance(value, str) or not value.strip() or has_control_characters(value):
        raise SpecializeError(f"bundle results file {path}: field 'name' is not a non-empty string of printable text")
    return value


def _check_precisions(manifest: dict, manifest_path: Path, results: dict, results_path: Path) -> None:
    """The graphs' precision (the manifest's) and the one the runner says it timed (the results') agree: an int8
    bundle's QDQ graphs time as int8 on any runner; an fp32 bundle times as fp32, or fp16 with trtexec --fp16."""
    bundled = manifest.get("precision", "fp32")
    if bundled not in BUNDLE_PRECISIONS:
        raise SpecializeError(
            f"bundle manifest file {manifest_path}: field 'precision' is {bundled!r}; expected one of "
            f"{', '.join(BUNDLE_PRECISIONS)}"
        )
    timed = results.get("precision", "fp32")
    if (bundled == "int8") != (timed == "int8"):
        raise SpecializeError(
            f"bundle results file {results_path}: field 'precision' is {timed!r}, but the bundle's graphs are "
            f"{bundled}: run the runner the bundle came with"
        )


def _timing(entry: dict, key: str, path: Path) -> Timing:
    """A runner's timing: median_ms > 0 and iqr_ms >= 0 finite numbers, samples a positive integer."""

    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1e7

    ok = (
        isinstance(entry, dict)
        and number(entry.get("median_ms"))
        and entry["median_ms"] > 0
        and number(entry.get("iqr_ms"))
        and type(entry.get("samples")) is int
        and entry["samples"] > 0
        and type(entry.get("runs_per_sample", 1)) is int
        and entry.get("runs_per_sample", 1) > 0
    )
    if not ok:
        raise SpecializeError(
            f"bundle results file {path}: field 'results.{key}' needs median_ms > 0, iqr_ms >= 0 "
            "(finite ms) and a positive integer samples"
        )
    return Timing(float(entry["median_ms"]), float(entry["iqr_ms"]), entry["samples"], entry.get("runs_per_sample", 1))


def _check_results_settings(results: dict, path: Path) -> None:
    """The run's settings the profile keeps: threads a whole number 1..65536, precision one we know, names text."""
    from hw_profiles.profile import PRECISIONS

    threads = results.get("threads")
    if threads is not None and (type(threads) is not int or not 1 <= threads <= 65536):
        raise SpecializeError(
            f"bundle results file {path}: field 'threads' is {threads!r}, not a whole number 1..65536"
        )
    if results.get("precision", "fp32") not in PRECISIONS:
        raise SpecializeError(
            f"bundle results file {path}: field 'precision' is {results.get('precision')!r}; "
            f"expected one of {', '.join(PRECISIONS)}"
        )
    for key in ("runner", "graph_optimization_level", "device_name", "date"):
        if results.get(key) is not None and not isinstance(results[key], str):
            raise SpecializeError(f"bundle results file {path}: field {key!r} is not text")
    if results.get("host") is not None and not isinstance(results["host"], dict):
        raise SpecializeError(f"bundle results file {path}: field 'host' is not an object")


def _manifest_entries(manifest: dict, path: Path) -> list[dict]:
    """The manifest's entries: a list of objects, each with string 'key' and 'file' and an optional string 'arch'."""
    entries = require(manifest, "entries", path, "bundle manifest")
    valid = isinstance(entries, list) and all(
        isinstance(e, dict)
        and isinstance(e.get("key"), str)
        and isinstance(e.get("file"), str)
        and isinstance(e.get("arch") or "", str)
        for e in entries
    )
    if not valid:
        raise SpecializeError(
            f"bundle manifest file {path}: field 'entries' must be a list of objects with string 'key' and 'file'"
        )
    batch = manifest.get("batch", 1)
    if type(batch) is not int or batch < 1:
        raise SpecializeError(f"bundle manifest file {path}: field 'batch' is not a positive integer")
    return entries


def _read_bundle(directory: Path) -> tuple[dict, dict, Path, SearchSpace, list[dict], dict[str, Timing]]:
    """The manifest, results (and their path), space, entries and per-entry timings of a run bundle, checked."""
    manifest_path, results_path = directory / MANIFEST, directory / RESULTS
    manifest = read_json(manifest_path, "bundle manifest", BUNDLE_SCHEMA_VERSION)
    if not results_path.is_file():
        raise SpecializeError(
            f"bundle results file {results_path} does not exist: run `python run_bundle.py` in {directory} first"
        )
    results = read_json(results_path, "bundle results", BUNDLE_SCHEMA_VERSION)
    try:
        space = SearchSpace.from_dict(require(manifest, "space", manifest_path, "bundle manifest"))
    except ValueError as exc:
        raise SpecializeError(
            f"bundle manifest file {manifest_path}: field 'space' is not a valid space: {exc}"
        ) from None
    entries = _manifest_entries(manifest, manifest_path)
    _check_precisions(manifest, manifest_path, results, results_path)
    measured = require(results, "results", results_path, "bundle results")
    if not isinstance(measured, dict):
        raise SpecializeError(f"bundle results file {results_path}: field 'results' is not an object")
    timings = {}
    for entry in entries:
        if entry["key"] not in measured:
            raise SpecializeError(
                f"bundle results file {results_path}: no result for {entry['key']!r} ({entry['file']})"
            )
        timings[entry["key"]] = _timing(measured[entry["key"]], entry["key"], results_path)
    missing = [w.key for w in space_workloads(space, manifest.get("batch", 1)) if w.key not in timings]
    if missing:
        raise SpecializeError(
            f"bundle manifest file {manifest_path}: no entry for {missing[0]!r} ({len(missing)} missing)"
        )
    return manifest, results, results_path, space, entries, timings


def import_bundle(directory: str | Path, name: str | None = None) -> DeviceProfile:
    """A measured profile from a bundle's per-block timings, corrected by its whole networks where that helps."""
    directory = Path(directory)
    manifest, results, results_path, space, entries, timings = _read_bundle(directory)
    batch = manifest["batch"] if "batch" in manifest else 1
    _check_results_settings(results, results_path)
    latency, spread, fixed, fixed_spread = assemble_profile(space, timings, batch)
    runtime = "tensorrt" if results.get("runner") == "trtexec" else "onnxruntime"
    profile = DeviceProfile(
        name=name or _printable_name(results, results_path),
        kind="measured",
        runtime=runtime,
        space=space,
        latency_ms=latency,
        fixed_ms=fixed,
        precision=results.get("precision", "fp32"),
        batch=batch,
        spread_ms=spread,
        fixed_spread_ms=fixed_spread,
        threads=int(results.get("threads") or 1),
        graph_optimization_level=results.get("graph_optimization_level"),
        hardware={k: results.get(k) for k in ("device_name", "host", "nvpmodel", "jetson_clocks")},
        measurement={
            "threads": results.get("threads"),
            "graph_optimization_level": results.get("graph_optimization_level"),
            "runner": results.get("runner"),
            "repeats": results.get("repeats"),
            "bundle": str(directory),
            "runner_date": results.get("date"),
        },
        provenance=provenance(bundle=str(directory), runtime=runtime, runtime_version=results.get("runtime_version")),
    )
    networks = [e for e in entries if e.get("arch")]
    if len(networks) < 4:
        return profile
    archs = [space.parse_arch(e["arch"]) for e in networks]
    times = [timings[e["key"]].median_ms for e in networks]
    profile.measurement["calibration_networks"] = len(networks)
    return apply_whole_network_fit(profile, archs, times, f"{len(networks)} bundle networks timed by run_bundle.py")


def import_bundle_few_shot(directory: str | Path, device: str, name: str | None = None) -> DeviceProfile:
    """Few-shot calibration from a bundle (HELP-style): the registered `device`'s anchored estimate with its
    compute, memory and per-kernel terms fitted to the bundle's timed whole networks (`fewshot.calibrate_estimate`),
    its leave-one-out error the profile's expected error. The per-block timings are not used."""
    from hw_profiles.devices import canonical_name, devices
    from hw_profiles.fewshot import MAX_TIMINGS, MIN_TIMINGS, calibrate_estimate
    from hw_profiles.roofline import estimate_profile

    directory = Path(directory)
    manifest, results, _, space, entries, timings = _read_bundle(directory)
    registered = devices()
    if canonical_name(device) not in registered:
        raise SpecializeError(
            f"{option('estimate', device)} is not a registered device; known: {', '.join(sorted(registered))}"
        )
    pairs = [(space.parse_arch(e["arch"]), timings[e["key"]].median_ms) for e in entries if e.get("arch")][:MAX_TIMINGS]
    if len(pairs) < MIN_TIMINGS:
        raise SpecializeError(
            f"bundle {directory} timed {len(pairs)} whole networks; few-shot calibration takes at least "
            f"{MIN_TIMINGS} (make the bundle with `specialize profile bundle --networks 12`)"
        )
    estimate = estimate_profile(
        registered[canonical_name(device)],
        space,
        precision=results.get("precision", "fp32"),
        batch=manifest["batch"] if "batch" in manifest else 1,
    )
    profile = calibrate_estimate(estimate, pairs)
    profile.name = name or _printable_name(results, directory / RESULTS)
    profile.provenance = provenance(bundle=str(directory), estimate_of=estimate.name, few_shot_networks=len(pairs))
    return profile
