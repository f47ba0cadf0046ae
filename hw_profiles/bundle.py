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

from hw_profiles.runtime import Timing, torch_threads
from hw_profiles.profile import DeviceProfile
from hw_profiles.profiler import assemble_profile
from hw_profiles.validate import apply_whole_network_fit
from hw_profiles.workloads import build_module, example_input, network_workload, space_workloads
from specialize.sampling import spread_architectures
from specialize.errors import SpecializeError
from specialize.fileio import atomic_write_bytes, atomic_write_json, provenance, read_json, require
from specialize.space import SearchSpace

BUNDLE_SCHEMA_VERSION = 1
RUNNER = Path(__file__).with_name("run_bundle.py")
MANIFEST, RESULTS = "manifest.json", "results.json"


def _file_name(key: str) -> str:
    return "onnx/" + key.replace("/", "_").replace(",", "-") + ".onnx"


def write_bundle(space: SearchSpace, out_dir: str | Path, batch: int = 1, networks: int = 8, seed: int = 0,
                 progress: Callable[[str], None] | None = None) -> dict:
    from supernet.export import module_to_onnx_bytes

    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise SpecializeError(f"bundle directory {out_dir} exists and is not empty; choose a new one")
    (out_dir / "onnx").mkdir(parents=True, exist_ok=True)
    workloads = space_workloads(space, batch) + [network_workload(space, a, batch) for a in spread_architectures(space, networks, seed)]
    entries = []
    with torch_threads(1):
        for i, workload in enumerate(workloads):
            # networks get a short numbered name; their arch is in the manifest
            name = _file_name(workload.key) if workload.arch is None else f"onnx/net{i:03d}.onnx"
            onnx = module_to_onnx_bytes(build_module(space, workload), example_input(workload.input_shape), dynamic_batch=False)
            atomic_write_bytes(out_dir / name, onnx)
            entries.append({"key": workload.key, "file": name, "input_shape": list(workload.input_shape),
                            "layer": workload.layer, "candidate": workload.candidate, "arch": workload.arch})
            if progress:
                progress(workload.key)
    manifest = {"schema_version": BUNDLE_SCHEMA_VERSION, "kind_of_file": "profile_bundle", "space": space.to_dict(),
                "space_name": space.name, "fingerprint": space.fingerprint, "batch": batch, "entries": entries,
                "provenance": provenance(space=space.name, batch=batch, networks=networks, seed=seed)}
    atomic_write_json(out_dir / MANIFEST, manifest)
    shutil.copyfile(RUNNER, out_dir / RUNNER.name)
    return manifest


def _timing(entry: dict, key: str, path: Path) -> Timing:
    try:
        return Timing(float(entry["median_ms"]), float(entry["iqr_ms"]), int(entry["samples"]), int(entry.get("runs_per_sample", 1)))
    except (TypeError, KeyError, ValueError):
        raise SpecializeError(f"bundle results file {path}: field 'results.{key}' needs median_ms, iqr_ms and samples") from None


def import_bundle(directory: str | Path, name: str | None = None) -> DeviceProfile:
    directory = Path(directory)
    manifest_path, results_path = directory / MANIFEST, directory / RESULTS
    manifest = read_json(manifest_path, "bundle manifest", BUNDLE_SCHEMA_VERSION)
    if not results_path.is_file():
        raise SpecializeError(f"bundle results file {results_path} does not exist: run `python run_bundle.py` in {directory} first")
    results = read_json(results_path, "bundle results", BUNDLE_SCHEMA_VERSION)
    try:
        space = SearchSpace.from_dict(require(manifest, "space", manifest_path, "bundle manifest"))
    except (TypeError, KeyError, ValueError) as exc:
        raise SpecializeError(f"bundle manifest file {manifest_path}: field 'space' is not a valid space: {exc}") from None
    measured = require(results, "results", results_path, "bundle results")
    timings = {}
    for entry in manifest["entries"]:
        if entry["key"] not in measured:
            raise SpecializeError(f"bundle results file {results_path}: no result for {entry['key']!r} ({entry['file']})")
        timings[entry["key"]] = _timing(measured[entry["key"]], entry["key"], results_path)
    batch = int(manifest.get("batch", 1))
    latency, spread, fixed, fixed_spread = assemble_profile(space, timings, batch)
    runtime = "tensorrt" if results.get("runner") == "trtexec" else "onnxruntime"
    profile = DeviceProfile(
        name=name or require(results, "name", results_path, "bundle results"), kind="measured", runtime=runtime,
        space=space, latency_ms=latency, fixed_ms=fixed, precision=results.get("precision", "fp32"), batch=batch,
        spread_ms=spread, fixed_spread_ms=fixed_spread, threads=int(results.get("threads") or 1),
        graph_optimization_level=results.get("graph_optimization_level"),
        hardware={k: results.get(k) for k in ("device_name", "host", "nvpmodel", "jetson_clocks")},
        measurement={"threads": results.get("threads"), "graph_optimization_level": results.get("graph_optimization_level"),
                     "runner": results.get("runner"), "repeats": results.get("repeats"),
                     "bundle": str(directory), "runner_date": results.get("date")},
        provenance=provenance(bundle=str(directory), runtime=runtime, runtime_version=results.get("runtime_version")),
    )
    networks = [e for e in manifest["entries"] if e.get("arch")]
    if len(networks) < 4:
        return profile
    archs = [space.parse_arch(e["arch"]) for e in networks]
    times = [timings[e["key"]].median_ms for e in networks]
    profile.measurement["calibration_networks"] = len(networks)
    return apply_whole_network_fit(profile, archs, times, f"{len(networks)} bundle networks timed by run_bundle.py")
