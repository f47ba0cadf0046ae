"""Measuring on onnxruntime with a tiny space and tiny repeat counts; runtimes that cannot run here."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from hw_profiles import load_profile
from hw_profiles import profiler as profiler_module
from hw_profiles.bundle import import_bundle, import_bundle_few_shot, write_bundle
from hw_profiles.runtime import Protocol, RuntimeUnavailable, Timing, get_runtime
from hw_profiles.profiler import NoisyProfileError, profile_space
from hw_profiles.validate import AFTER_PASS_ROUNDS
from hw_profiles.validate import agreement, fit_calibration, validate_profile
from hw_profiles.workloads import space_workloads
from specialize.sampling import spread_architectures
from specialize.cost import arch_cost
from specialize.errors import SpecializeError
from specialize import space as space_module
from specialize.space import LayerSpec, get_space

QUICK = Protocol(warmup_s=0.0, sample_s=0.0005, repeats=3, budget_s=0.005, rel_iqr_max=10.0, retries=0, passes=2)


def tiny_space():
    """Two searchable layers, four candidates, 16x16 input: every entry exports and times in milliseconds."""
    return replace(
        get_space("cifar10"),
        name="tiny",
        resolution=16,
        stem_channels=8,
        first_block_channels=8,
        layers=(LayerSpec(8, 8, 1), LayerSpec(8, 16, 2)),
        head_channels=32,
        kernels=(3, 5),
        expansions=(3,),
    )


@pytest.fixture
def tiny(monkeypatch):
    """The tiny space, registered so that `export_subnet` (which validation uses) finds it by name."""
    monkeypatch.setitem(space_module.SPACES, "tiny", tiny_space)
    return tiny_space()


def test_profile_tiny_space_writes_a_valid_file(tmp_path):
    space = tiny_space()
    seen = []
    profile = profile_space(space, "this-cpu", threads=1, protocol=QUICK, force=True, progress=seen.append)
    assert seen == [w.key for w in space_workloads(space)] * 2
    profile.save(tmp_path / "p.json")
    loaded = load_profile(tmp_path / "p.json", space)
    assert loaded.kind == "measured" and loaded.runtime == "onnxruntime" and loaded.name == "this-cpu"
    assert loaded.latency_ms.shape == (2, 4) and (loaded.latency_ms >= 0).all() and loaded.spread_ms.shape == (2, 4)
    assert set(loaded.fixed_ms) == {"stem", "head", "dispatch"}
    prov = json.loads((tmp_path / "p.json").read_text())["provenance"]
    assert prov["settings"]["runtime_version"] and prov["settings"]["device_name"] and prov["settings"]["threads"] == 1
    assert prov["date"] and loaded.measurement["protocol"]["repeats"] == 3


def fake_timing(median, iqr):
    return lambda run, clock, protocol: Timing(median, iqr, 5, 1)


def test_noisy_entries_refuse_unless_forced(monkeypatch):
    monkeypatch.setattr(profiler_module, "time_runs", fake_timing(1.0, 0.5))
    noisy = replace(QUICK, rel_iqr_max=0.1, retries=2)
    with pytest.raises(NoisyProfileError) as info:
        profile_space(tiny_space(), "x", threads=1, protocol=noisy)
    assert "L00/k3e3" in str(info.value) and "force=True" in str(info.value) and "50%" in str(info.value)
    forced = profile_space(tiny_space(), "x", threads=1, protocol=noisy, force=True)
    assert forced.measurement["forced"] and forced.measurement["noisy"]


def test_runtimes_without_cuda_or_tensorrt_say_why():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the absence path is not reachable")
    with pytest.raises(RuntimeUnavailable, match="CUDA GPU"):
        get_runtime("torch-cuda")
    with pytest.raises(RuntimeUnavailable, match="TensorRT|CUDA GPU"):
        get_runtime("tensorrt", "fp16")
    with pytest.raises(SpecializeError, match="fp32 and int8"):
        get_runtime("onnxruntime", "fp16")
    with pytest.raises(SpecializeError, match="known runtimes"):
        get_runtime("coreml")


def test_sampled_archs_spread_over_the_macs_range():
    space = get_space("ponas-imagenet")
    macs = np.array([arch_cost(a)["macs"] for a in spread_architectures(space, 30, seed=0)])
    smallest, largest = arch_cost(space.smallest_arch())["macs"], arch_cost(space.largest_arch())["macs"]
    span = largest - smallest
    assert macs.min() < smallest + 0.25 * span and macs.max() > largest - 0.25 * span


def test_agreement_and_calibration_figures():
    measured = [1.0, 2.0, 3.0, 4.0]
    assert agreement([1.05, 2.0, 3.5, 4.0], measured)["within_10pct"] == 0.75
    fit = fit_calibration([x / 2 - 0.1 for x in measured], measured)
    assert fit["scale"] == pytest.approx(2.0) and fit["offset_ms"] == pytest.approx(0.2)
    with pytest.raises(SpecializeError):
        fit_calibration([1.0, 1.0, 1.0], measured[:3])


def test_validate_reports_figures_and_keeps_calibration_only_if_it_helps(tiny):
    profile = profile_space(tiny, "this-cpu", threads=1, protocol=QUICK, force=True)
    report, updated = validate_profile(profile, samples=4, calibrate=True, fit_samples=4, runs=3)
    assert {"mape", "within_10pct", "kendall_tau", "samples", "uncalibrated", "calibration", "expected_error"} <= set(
        report
    )
    assert len(report["samples"]) == 4 and {"arch", "predicted_ms", "measured_ms"} <= set(report["samples"][0])
    assert (updated.calibration is not None) == report["calibration_kept"]
    assert report["threads"] == 1 and "median of 3 runs" in report["protocol"]


def test_validate_times_the_exported_onnx_files_in_a_plain_session(tiny, monkeypatch):
    from hw_profiles import validate as validate_module

    seen = {}

    def fake_time_deployed(paths, shape, runtime, precision, threads, level, runs, progress):
        seen.update(
            files=[p.suffix for p in paths], exist=all(p.is_file() for p in paths), threads=threads, level=level
        )
        return [1.0 + i for i in range(len(paths))]

    monkeypatch.setattr(validate_module, "time_deployed", fake_time_deployed)
    profile = replace(
        profile_space(tiny, "this-cpu", threads=1, protocol=QUICK, force=True),
        threads=2,
        graph_optimization_level="basic",
    )
    validate_profile(profile, samples=3, runs=3)
    assert seen == {"files": [".onnx"] * 3, "exist": True, "threads": 2, "level": "basic"}


def test_profile_records_threads_and_fits_its_whole_network_correction(tiny, tmp_path):
    profile = profile_space(
        tiny,
        "this-cpu",
        threads=2,
        protocol=QUICK,
        force=True,
        graph_optimization_level="extended",
        calibration_networks=4,
    )
    whole = profile.measurement["whole_network"]
    assert whole["networks"] == 4 and whole["uncalibrated_mape"] >= 0 and whole["rounds"] == AFTER_PASS_ROUNDS
    assert set(whole["measured_over_block_sum"]) == {"between_passes", "after_passes"}
    model_error = whole["calibrated_loo_mape"] if profile.calibration else whole["uncalibrated_mape"]
    assert profile.expected_error == pytest.approx(np.hypot(model_error, whole["repeatability"]))
    profile.save(tmp_path / "p.json")
    loaded = load_profile(tmp_path / "p.json", tiny)
    assert loaded.threads == 2 and loaded.graph_optimization_level == "extended" and "2 threads" in loaded.label
    assert json.loads((tmp_path / "p.json").read_text())["threads"] == 2


def test_old_profiles_without_threads_load_as_one_thread(tmp_path):
    data = profile_space(tiny_space(), "this-cpu", threads=1, protocol=QUICK, force=True).to_dict()
    del data["threads"], data["graph_optimization_level"]
    data["measurement"].pop("threads", None)
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert load_profile(tmp_path / "old.json").threads == 1
    data["threads"] = 0
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(SpecializeError, match="threads"):
        load_profile(tmp_path / "bad.json")


def test_validate_estimated_profile_needs_a_runtime():
    from hw_profiles import resolve_profile

    with pytest.raises(SpecializeError, match="give runtime"):
        validate_profile(resolve_profile("jetson", tiny_space()), samples=2)


def test_bundle_runner_import_round_trip(tmp_path):
    space = tiny_space()
    manifest = write_bundle(space, tmp_path / "b", networks=4)
    assert (tmp_path / "b" / "run_bundle.py").is_file() and len(manifest["entries"]) == len(space_workloads(space)) + 4
    run_bundle_runner(tmp_path / "b", "lab-board")
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["runner"] == "onnxruntime" and "nvpmodel" in results and "jetson_clocks" in results
    profile = import_bundle(tmp_path / "b")
    assert profile.name == "lab-board" and profile.kind == "measured" and profile.runtime == "onnxruntime"
    assert profile.latency_ms.shape == (2, 4) and profile.measurement["calibration_networks"] == 4
    profile.save(tmp_path / "p.json")
    assert load_profile(tmp_path / "p.json", space).predict_ms(space.largest_arch()) > 0


def run_bundle_runner(directory, name: str) -> None:
    """The bundle's own standalone runner, in a fresh interpreter, with tiny repeat counts."""
    done = subprocess.run(
        [sys.executable, str(directory / "run_bundle.py"), "--runner", "onnxruntime", "--repeats", "3",
         "--budget-s", "0.005", "--warmup-s", "0", "--threads", "1", "--name", name],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def run_tiny_bundle(directory, networks: int) -> None:
    write_bundle(tiny_space(), directory, networks=networks)
    run_bundle_runner(directory, "lab-board")


def test_bundle_import_few_shot_fits_the_estimate_to_the_timed_networks(tmp_path):
    run_tiny_bundle(tmp_path / "b", networks=6)
    profile = import_bundle_few_shot(tmp_path / "b", "raspberry-pi-4")
    few_shot = profile.hardware["few_shot"]
    assert profile.kind == "estimated" and profile.name == "lab-board" and few_shot["networks"] == 6
    assert profile.expected_error == pytest.approx(few_shot["loo_mape"])
    # a Pi 4's level is far from this CPU's: the fitted terms must bring the timed networks much closer
    assert few_shot["loo_mape"] < few_shot["estimate_mape"] / 2
    with pytest.raises(SpecializeError, match="not a registered device"):
        import_bundle_few_shot(tmp_path / "b", "no-such-board")


def test_bundle_import_few_shot_needs_five_networks(tmp_path):
    run_tiny_bundle(tmp_path / "b", networks=4)
    with pytest.raises(SpecializeError, match="at least 5"):
        import_bundle_few_shot(tmp_path / "b", "raspberry-pi-4")


def test_bundle_refuses_a_non_empty_directory_and_import_needs_results(tmp_path):
    (tmp_path / "x").write_text("")
    with pytest.raises(SpecializeError, match="not empty"):
        write_bundle(tiny_space(), tmp_path, networks=0)
    write_bundle(tiny_space(), tmp_path / "b", networks=0)
    with pytest.raises(SpecializeError, match="run_bundle.py"):
        import_bundle(tmp_path / "b")


@pytest.mark.slow
def test_profile_cifar10_with_tiny_repeat_counts(tmp_path):
    space = get_space("cifar10")
    profile = profile_space(space, "this-cpu", threads=1, protocol=QUICK, force=True)
    profile.save(tmp_path / "p.json")
    assert load_profile(tmp_path / "p.json", space).latency_ms.shape == (12, 12)


def test_whole_network_rounds_interleave_with_the_block_passes(tiny, monkeypatch):
    """One round of whole networks before the first block pass and one after each, then AFTER_PASS_ROUNDS more
    once the passes are over (the rounds the correction is fitted on)."""
    from hw_profiles import validate as validate_module

    events, real_runs, real_deployed = [], profiler_module.time_runs, validate_module.time_deployed
    monkeypatch.setattr(profiler_module, "time_runs", lambda *a: events.append("block") or real_runs(*a))
    monkeypatch.setattr(validate_module, "time_deployed", lambda *a: events.append("whole") or real_deployed(*a))
    profile_space(tiny, "this-cpu", threads=1, protocol=QUICK, force=True, calibration_networks=4)
    order = "".join("w" if e == "whole" else "b" for e in events)
    assert order.endswith("b" + "w" * (1 + AFTER_PASS_ROUNDS))
    passes = order[:-AFTER_PASS_ROUNDS].strip("b").split("w")[1:-1]
    assert events[0] == "whole" and events.count("whole") == QUICK.passes + 1 + AFTER_PASS_ROUNDS
    assert all(len(p) >= len(space_workloads(tiny, 1)) for p in passes) and len(passes) == QUICK.passes


def test_the_correction_is_fitted_on_the_rounds_after_the_passes(tiny):
    """The correction takes the rounds timed after the passes, not those between them, and both windows'
    measured / block-sum ratios are recorded; with no later rounds it falls back to the ones between."""
    from hw_profiles.validate import CalibrationRounds

    profile = profile_space(tiny, "this-cpu", threads=1, protocol=QUICK, force=True)
    rounds = object.__new__(CalibrationRounds)
    rounds.archs, rounds.seed, rounds.runs = spread_architectures(tiny, 5, 3), 3, 1
    raw = [profile.predict_ms(a, calibrated=False) for a in rounds.archs]
    rounds.rounds = [[1.6 * ms for ms in raw]] * 3
    rounds.after = [[1.3 * ms for ms in raw]] * 2
    fitted = rounds.fit(profile)
    whole = fitted.measurement["whole_network"]
    assert whole["rounds"] == 2 and "after the block passes" in whole["source"]
    assert whole["measured_over_block_sum"]["after_passes"] == pytest.approx(1.3, abs=1e-4)
    assert whole["measured_over_block_sum"]["between_passes"] == pytest.approx(1.6, abs=1e-4)
    assert [fitted.predict_ms(a) for a in rounds.archs] == pytest.approx([1.3 * ms for ms in raw], rel=1e-6)
    rounds.after = []
    assert rounds.fit(profile).measurement["whole_network"]["rounds"] == 3


def test_repeatability_is_the_rounds_spread_and_widens_the_expected_error(tiny):
    from hw_profiles.validate import apply_whole_network_fit, repeatability

    assert repeatability(np.array([[1.0, 2.0]])) is None
    assert repeatability(np.array([[1.0, 2.0], [1.1, 2.2], [0.9, 1.8]])) == pytest.approx(0.4 / 6)
    profile = profile_space(tiny, "this-cpu", threads=1, protocol=QUICK, force=True)
    archs = spread_architectures(tiny, 5, 3)
    steady = [[profile.predict_ms(a) * 1.3 for a in archs]] * 3
    drifting = steady + [[ms * 1.2 for ms in steady[0]]] * 2
    assert apply_whole_network_fit(profile, archs, steady, "steady").expected_error == pytest.approx(0.0, abs=1e-9)
    moved = apply_whole_network_fit(profile, archs, drifting, "drifting")
    assert moved.measurement["whole_network"]["repeatability"] == pytest.approx(
        2 * 0.2 / 5
    )  # two rounds of five 20% off
    assert moved.expected_error == pytest.approx(2 * 0.2 / 5, rel=1e-6)


def test_sessions_are_reopened_once_memory_runs_low(tiny, monkeypatch):
    """ponas-imagenet at batch 32 held ~20 GB of sessions: past the memory limit each timing opens its own
    (and the profile says so); the timings are still taken for every entry and pass."""
    opened = []
    real_load = get_runtime("onnxruntime", "fp32", 1).__class__.load
    monkeypatch.setattr(profiler_module, "memory_low", lambda: len(opened) >= 3)
    monkeypatch.setattr(
        get_runtime("onnxruntime", "fp32", 1).__class__,
        "load",
        lambda self, *a: opened.append(1) or real_load(self, *a),
    )
    profile = profile_space(tiny, "this-cpu", threads=1, protocol=QUICK, force=True)
    entries = len(space_workloads(tiny, 1))
    assert len(opened) == entries * QUICK.passes
    assert profile.measurement["sessions"].startswith("reopened")
    monkeypatch.setattr(profiler_module, "memory_low", lambda: False)
    opened.clear()
    held = profile_space(tiny, "this-cpu", threads=1, protocol=QUICK, force=True)
    assert len(opened) == entries and held.measurement["sessions"] == "held between passes"


def test_hardware_truth_ships_a_fresh_profile_only_if_it_predicts_the_timings_at_least_as_well(tmp_path):
    """Twice on 2026-12-01 a fresh 2-thread profile made while the VM's second core was in its other state
    validated worse than the shipped one and replaced it; `--ship` now compares both on the same timings."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "hardware_truth", Path(__file__).parents[1] / "benchmarks" / "hardware_truth.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    space = get_space("cifar10")
    name = "this-cpu-onnxruntime.cifar10.json"
    shipped_text = (bench.DATA_DIR / name).read_text()
    profile = load_profile(bench.DATA_DIR / name, space)
    archs = spread_architectures(space, 12, 1)
    fresh = tmp_path / "fresh.json"
    fresh.write_text(shipped_text + "\n")  # differs from the shipped file, so a copy shows

    def report(measured_scale, within, tau):
        samples = [{"arch": str(a), "measured_ms": profile.predict_ms(a) * s} for a, s in zip(archs, measured_scale)]
        return {
            "samples": samples,
            "within_10pct": within,
            "kendall_tau": tau,
            "shipped_name": name,
            "fresh_path": fresh,
        }

    (tmp_path / name).write_text(shipped_text)
    exact = report(np.ones(len(archs)), 0.5, 0.6)  # the shipped profile predicts these exactly
    assert "kept the shipped" in bench.ship(exact, "cifar10", tmp_path)
    assert (tmp_path / name).read_text() == shipped_text and fresh.read_text() != shipped_text

    off = report(np.linspace(0.5, 3.0, len(archs))[::-1], 1.0, 1.0)  # the shipped one is far off on these
    assert bench.ship(off, "cifar10", tmp_path).startswith("shipped " + name)
    assert (tmp_path / name).read_text() == fresh.read_text()
    unsteady = {**off, "retimed": {"within_10pct": 0.5, "kendall_tau": 0.7, "mape": 0.3}}
    assert bench.ship(unsteady, "cifar10", tmp_path).startswith("shipped nothing")
    (tmp_path / name).unlink()
    assert bench.ship(exact, "cifar10", tmp_path) == f"shipped {name}"  # nothing shipped yet


def test_an_int8_profile_times_blocks_and_networks_quantized_as_shipped(tiny, monkeypatch):
    """--precision int8 on onnxruntime: every timed block (not the empty dispatch probe) and every whole network
    of the correction is the QDQ graph `export --precision int8` would ship; the profile says int8."""
    from hw_profiles import profiler, validate as validate_module
    from supernet.quantize import quantized_ops

    loaded = []
    real_load = profiler.get_runtime("onnxruntime", "int8", 1).__class__.load

    def spy_load(self, model, shape):
        data = model if isinstance(model, bytes) else open(model, "rb").read()
        loaded.append((tuple(shape), quantized_ops(data)["QuantizeLinear"]))
        return real_load(self, model, shape)

    monkeypatch.setattr(profiler.get_runtime("onnxruntime").__class__, "load", spy_load)
    networks = {}
    real_time = validate_module.time_deployed

    def spy_time(paths, *args):
        networks.update({p.name: quantized_ops(p.read_bytes())["QuantizeLinear"] for p in paths})
        return real_time(paths, *args)

    monkeypatch.setattr(validate_module, "time_deployed", spy_time)
    profile = profile_space(tiny, "this-cpu", precision="int8", protocol=QUICK, force=True, calibration_networks=4)
    workloads = space_workloads(tiny)
    assert profile.precision == "int8" and "int8" in profile.label
    dispatch = next(w.input_shape for w in workloads if w.key == "dispatch")
    assert len(loaded) >= len(workloads) and all((q == 0) == (shape == dispatch) for shape, q in loaded)
    assert len(networks) == 4 and all(q > 0 for q in networks.values())
    with pytest.raises(SpecializeError, match="not int8"):
        get_runtime("torch-cuda", "int8")


def test_a_space_that_lives_only_in_a_table_profiles_with_its_whole_network_correction():
    """A dataset's own space (e.g. efficientnet-lite0-3class-96px) is no preset: the correction's exports must use
    the space given, not look its name up (a fresh-clone run of README's own-data section was refused)."""
    space = tiny_space()  # not registered as a preset here
    with pytest.raises(SpecializeError, match="unknown space"):
        get_space(space.name)
    profile = profile_space(space, "this-cpu", threads=1, protocol=QUICK, force=True, calibration_networks=4)
    assert profile.measurement["whole_network"]["networks"] == 4
    report, _ = validate_profile(profile, samples=3, runs=3)
    assert len(report["samples"]) == 3


def test_an_int8_bundle_holds_quantized_graphs_and_imports_as_an_int8_profile(tmp_path):
    import onnx

    space = tiny_space()
    manifest = write_bundle(space, tmp_path / "b", networks=2, precision="int8")
    assert manifest["precision"] == "int8" and manifest["runtime"] == "onnxruntime"
    for entry in manifest["entries"]:
        ops = {node.op_type for node in onnx.load(str(tmp_path / "b" / entry["file"])).graph.node}
        assert ("QuantizeLinear" in ops) == (entry["key"] != "dispatch"), entry["key"]
    run_bundle_runner(tmp_path / "b", "arm-board")
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["precision"] == "int8"
    profile = import_bundle(tmp_path / "b")
    assert profile.precision == "int8" and profile.name == "arm-board"
    results["precision"] = "fp32"  # a results file that does not match its graphs
    (tmp_path / "b" / "results.json").write_text(json.dumps(results))
    with pytest.raises(SpecializeError, match="field 'precision' is 'fp32', but the bundle's graphs are int8"):
        import_bundle(tmp_path / "b")
    with pytest.raises(SpecializeError, match="fp32 or int8"):
        write_bundle(space, tmp_path / "c", precision="fp16")


def test_int8_blocks_lose_the_qdq_boundary_they_pay_alone(tiny):
    """A block timed alone at int8 pays a Q at its input and a DQ at its output; the profile takes half of each
    handover tensor's measured QDQ pair off each end (the stem its output's, the head its input's)."""
    from hw_profiles.profiler import assemble_profile
    from hw_profiles.workloads import boundary_key, handover_shapes, timed_workloads

    shapes = handover_shapes(tiny)
    probes = {boundary_key(shape): 0.1 + 0.2 * i for i, shape in enumerate(shapes)}  # seconds-free ms, distinct
    work = timed_workloads(tiny, 1, "int8")
    assert {w.key for w in work} - {w.key for w in space_workloads(tiny)} == set(probes)
    timings = {w.key: Timing(probes.get(w.key, 5.0), 0.1, 5, 1) for w in work}
    timings["dispatch"] = Timing(0.05, 0.0, 5, 1)
    latency, _, fixed, _ = assemble_profile(tiny, timings, 1)
    half = [(probes[boundary_key(shape)] - 0.05) / 2 for shape in shapes]
    for layer in range(tiny.num_layers):
        expected = 5.0 - 0.05 - half[layer] - half[layer + 1]
        assert np.allclose(latency[layer][latency[layer] > 0], expected)
    assert fixed["stem"] == pytest.approx(5.0 - 0.05 - half[0]) and fixed["head"] == pytest.approx(
        5.0 - 0.05 - half[-1]
    )
    plain = {k: v for k, v in timings.items() if not k.startswith("qdq/")}  # fp32, or a bundle without probes
    assert np.allclose(assemble_profile(tiny, plain, 1)[0][latency > 0], 5.0 - 0.05)


def test_the_boundary_probe_is_a_qdq_pair_each_runtime_runs(tiny):
    from supernet.quantize import boundary_graph, quantized_ops
    from supernet.sessions import ort_session

    x = np.random.default_rng(0).random((1, 16, 8, 8), dtype=np.float32)
    for target in ("onnxruntime", "tensorrt"):
        graph = boundary_graph(x.shape, target)
        assert quantized_ops(graph) == {"QuantizeLinear": 1, "DequantizeLinear": 1}
        y = ort_session(graph).run(None, {"input": x})[0]
        assert np.abs(y - np.clip(x, None, 127 / 255 if target == "tensorrt" else None)).max() <= 0.5 / 255 + 1e-6


def test_an_int8_profile_and_bundle_carry_the_probes(tiny, tmp_path):
    profile = profile_space(tiny, "this-cpu", precision="int8", protocol=QUICK, force=True)
    assert "int8_boundary" in profile.measurement
    assert "int8_boundary" not in profile_space(tiny, "this-cpu", protocol=QUICK, force=True).measurement
    manifest = write_bundle(tiny, tmp_path / "b", networks=2, precision="int8")
    assert sum(e["key"].startswith("qdq/") for e in manifest["entries"]) == len(set(handover(tiny)))


def handover(space):
    from hw_profiles.workloads import handover_shapes

    return handover_shapes(space)


def test_a_whole_network_fit_that_would_price_the_fastest_network_below_zero_is_not_kept(tiny, tmp_path):
    from hw_profiles.validate import apply_whole_network_fit

    profile = profile_space(tiny, "this-cpu", threads=1, protocol=QUICK, force=True)
    fastest = profile.fastest_ms()
    archs = [a for a in spread_architectures(tiny, 8, 3) if profile.predict_ms(a) > fastest * 1.01]
    raw = np.array([profile.predict_ms(a, calibrated=False) for a in archs])
    assert len(archs) >= 4
    offset = -3 * (fastest + raw.min()) / 2  # every timed network stays positive, the fastest one would not
    fitted = apply_whole_network_fit(profile, archs, list(3 * raw + offset), "steep")
    assert fitted.calibration is None and fitted.fastest_ms() > 0
    assert "fastest network" in fitted.measurement["whole_network"]["calibration_skipped"]
    fitted.save(tmp_path / "p.json")  # a kept fit would be refused here


def test_a_profile_whose_own_rounds_drift_past_ten_percent_says_no_profile_can_be_checked_here():
    """The 2-vCPU VM's two-thread timings flip between two speeds (benchmarks/two_threads.py): `specialize profile`
    must say so rather than leave a ±50% profile unexplained."""
    from types import SimpleNamespace

    from specialize.api.hardware import drift_warning

    def measured(drift, threads):
        return SimpleNamespace(measurement={"whole_network": {"repeatability": drift}}, threads=threads)

    assert drift_warning(measured(0.05, 2)) is None
    assert drift_warning(measured(None, 2)) is None
    assert drift_warning(SimpleNamespace(measurement={}, threads=1)) is None
    one = drift_warning(measured(0.21, 1))
    assert "±21%" in one and "thread" not in one
    two = drift_warning(measured(0.21, 2))
    assert "±21%" in two and "2-thread" in two and "1 thread" in two
