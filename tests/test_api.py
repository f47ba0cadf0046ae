"""The Python API: `specialize(...)` and `pareto(...)` return data; the online path imports no torch or onnx."""

import json
import subprocess
import sys

import numpy as np
import pytest

from hw_profiles.profile import DeviceProfile
from specialize import SpecializeResult, pareto, specialize
from specialize.cost import arch_cost, cost_arrays
from specialize.errors import InfeasibleError, SpecializeError
from specialize.space import get_space
from specialize.table import AccuracyTable

JSON_KEYS = {
    "arch",
    "space",
    "device",
    "macs",
    "params",
    "latency_ms",
    "intensity",
    "predicted_accuracy",
    "optimality_gap",
    "search_seconds",
}


def random_table(seed: int = 0) -> AccuracyTable:
    """Random accuracies (the API's plumbing does not depend on what the numbers are)."""
    space = get_space("cifar10")
    acc = np.random.default_rng(seed).uniform(0.6, 0.9, (space.num_layers, space.num_candidates))
    return AccuracyTable(space=space, accuracy=acc, best_arch=str(space.largest_arch()))


def roofline_profile(space) -> DeviceProfile:
    c = cost_arrays(space)
    block = np.maximum(2 * c.macs / 1e11, c.bytes / 2e10) * 1e3
    fixed = float(max(2 * c.fixed_macs / 1e11, c.fixed_bytes / 2e10) * 1e3)
    return DeviceProfile("roofline-test", "estimated", "roofline", space, block, {"stem_head": fixed})


def test_specialize_returns_a_result_within_bounds():
    table = random_table()
    profile = roofline_profile(table.space)
    result = specialize(table=table, profile=profile, max_flops="45M", max_latency=profile.offset_ms() + 0.6, seed=1)
    assert isinstance(result, SpecializeResult)
    arch = table.space.parse_arch(result.arch)
    assert result.macs == arch_cost(arch)["macs"] <= 45e6
    assert result.latency_ms == pytest.approx(profile.predict_ms(arch))
    assert all(b["ok"] for b in result.bounds) and len(result.blocks) == table.space.num_layers
    assert result.predicted_accuracy == pytest.approx(
        table.accuracy[-1].max() + table.loss[np.arange(12), arch.indices].sum()
    )
    assert 0 <= result.optimality_gap == result.optimum_value - result.accuracy_loss  # of the answer returned
    data = json.loads(json.dumps(result.to_dict()))
    assert JSON_KEYS <= set(data) and data["device"] == "roofline-test" and data["device_kind"] == "estimated"


def test_exact_solver_answer_is_the_optimum():
    result = specialize(table=random_table(1), strategy="exact", max_params="1.5M")
    assert result.optimality_gap == 0 and result.accuracy_loss == result.optimum_value
    assert result.status == result.optimum_status == "optimal" and result.answer_from == "exact"
    assert result.search_seconds > 0
    assert specialize(table=random_table(1), solver="exact", max_params="1.5M").strategy == "exact"


def test_bound_keywords_come_from_the_metric_registry():
    import inspect

    from specialize.search.constraints import BOUND_OPTIONS

    for fn in (specialize, pareto):
        assert set(BOUND_OPTIONS) <= set(inspect.signature(fn).parameters)
    with pytest.raises(SpecializeError, match="unknown bound 'max_speed'"):
        specialize(table=random_table(), max_speed="3")


def test_no_device_means_no_latency():
    result = specialize(table=random_table(2), max_flops="40M")
    assert result.latency_ms is None and result.device is None


def test_infeasible_and_bad_input_raise():
    with pytest.raises(
        InfeasibleError, match="--max-flops 10M is infeasible: the smallest MACs in space cifar10 is 32.77M"
    ):
        specialize(table=random_table(), max_flops="10M")
    with pytest.raises(
        SpecializeError, match="unknown strategy 'annealing'; known strategies: econas, epnas, exact, ga, pnas, random"
    ):
        specialize(table=random_table(), strategy="annealing")
    with pytest.raises(SpecializeError, match="unknown strategy"):
        specialize(table=random_table(), solver="annealing")
    with pytest.raises(SpecializeError, match="malformed"):
        specialize(table=random_table(), max_params="lots")


def test_pareto_front_points_carry_costs_and_labels():
    table = random_table(3)
    front = pareto(
        objective="latency", table=table, profile=roofline_profile(table.space), generations=30, population=20
    )
    labels = [p.label for p in front.points if p.label]
    assert "most accurate" in labels and "cheapest" in labels
    costs = [p.cost for p in front.points]
    assert costs == sorted(costs) and all(p.latency_ms == p.cost for p in front.points)
    json.dumps(front.to_dict())


ISOLATION = """
import sys, numpy as np
import specialize.api, cli.main
from specialize import specialize
from specialize.space import get_space
from specialize.table import AccuracyTable
space = get_space("cifar10")
acc = np.random.default_rng(0).uniform(0.6, 0.9, (space.num_layers, space.num_candidates))
table = AccuracyTable(space=space, accuracy=acc, best_arch="-")
specialize(table=table, device="jetson", max_flops="40M", generations=50)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "onnx", "onnxruntime", "tensorrt", "matplotlib"))
assert not heavy, heavy
"""


def test_online_path_imports_neither_torch_nor_onnx():
    done = subprocess.run([sys.executable, "-c", ISOLATION], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("metric", ["flops", "latency", "intensity", "params"])
def test_zero_width_interval_answers_with_a_stated_tolerance(metric):
    """min == max, equal to a real architecture's value: widened to 0.1% of the reachable range, stated."""
    table = random_table(4)
    profile = roofline_profile(table.space)
    arch = table.space.arch_from_indices(np.random.default_rng(5).integers(0, 12, 12))
    cost = arch_cost(arch)
    value = {
        "flops": cost["macs"],
        "latency": profile.predict_ms(arch),
        "intensity": cost["intensity"],
        "params": cost["params"],
    }[metric]
    result = specialize(table=table, profile=profile, **{f"min_{metric}": value, f"max_{metric}": value})
    [bound] = result.bounds
    assert bound["lower"] == bound["upper"] == value and bound["tolerance"] > 0 and bound["ok"]
    assert abs(bound["value"] - value) <= bound["tolerance"] * (1 + 1e-9)


def test_an_exact_answer_stopped_early_is_labelled_not_proven(monkeypatch):
    """HiGHS stopped after its root node (as at a time limit): never "optimal", and its bound is reported."""
    from specialize.search import exact

    monkeypatch.setitem(exact.HIGHS_OPTIONS, "mip_max_nodes", 1)
    space = get_space("ponas-imagenet")
    acc = np.random.default_rng(0).uniform(0.5, 0.9, (space.num_layers, space.num_candidates))
    table = AccuracyTable(space=space, accuracy=acc, best_arch="-")
    arch = space.arch_from_indices(np.random.default_rng(2).integers(0, 12, space.num_layers))
    from specialize.api import prepare
    from specialize.search.reach import reachable

    cost, bounds, unbounded = arch_cost(arch), {}, prepare(table, None, None, ())[2]
    for option, key in (("flops", "macs"), ("params", "params")):
        lo, hi = reachable(unbounded, key)
        bounds |= {f"min_{option}": cost[key] - 1e-3 * (hi - lo), f"max_{option}": cost[key] + 1e-3 * (hi - lo)}
    result = specialize(table=table, strategy="exact", **bounds)
    assert result.status == result.optimum_status == "not proven"
    assert result.optimum_bound > result.optimum_value and result.optimality_gap == pytest.approx(
        result.optimum_bound - result.accuracy_loss
    )
    assert all(b["ok"] for b in result.bounds)


def test_the_answer_is_the_best_any_solver_found():
    """A strategy that returns a feasible but worse answer than the exact reference: the reference is returned,
    and the result says where it came from."""
    from specialize.search.registry import STRATEGIES, SearchResult, register_strategy

    @register_strategy("smallest-feasible", summary="test: the smallest architecture")
    def smallest(problem, evaluation, budget, seed):
        genes = np.asarray(get_space(problem.space_name).smallest_arch().indices)
        return SearchResult(genes, float(problem.scores(genes[None])[0]), 0.0, "heuristic")

    try:
        r = specialize("this-cpu", table="cifar10", strategy="smallest-feasible", max_flops="45M")
    finally:
        STRATEGIES.pop("smallest-feasible")
    assert r.strategy_value < r.optimum_value and r.strategy_gap == pytest.approx(r.optimum_value - r.strategy_value)
    assert r.answer_from == "exact" and r.accuracy_loss == r.optimum_value


def test_one_accuracy_model_in_text_json_and_front():
    """The best network's predicted accuracy is the same figure in the result, its JSON and the Pareto front, and a
    bound can only lower it."""
    free = specialize("this-cpu")
    bound = specialize("this-cpu", max_flops="45M")
    front = pareto("this-cpu", objective="macs", generations=30, population=20)
    best = next(p for p in front.points if p.label == "most accurate")
    assert free.predicted_accuracy == free.best_accuracy == pytest.approx(best.predicted_accuracy)
    assert best.predicted_accuracy_band == free.predicted_accuracy_band
    assert bound.predicted_accuracy <= bound.best_accuracy == free.best_accuracy


def test_a_measurement_outside_the_printed_band_is_said():
    from dataclasses import replace

    from specialize.api import _misses

    r = replace(
        specialize("this-cpu"),
        predicted_accuracy=0.80,
        predicted_accuracy_band=0.02,
        latency_ms=1.0,
        latency_expected_error=0.1,
    )
    assert _misses(r, 0.79, 1.05) == []
    said = _misses(r, 0.75, 1.5)
    assert "outside the printed band (80.00% ± 2.0)" in said[0] and "1.5 ms is outside" in said[1]


def test_library_errors_name_keywords_and_the_command_line_names_flags():
    """A Python caller is told `profile='PROFILE.json'` and `max_flops='45M'`, a shell user `--profile PROFILE.json`
    and `--max-flops 45M`: the same message, spelled the way each gave it."""
    from typer.testing import CliRunner

    from cli.main import app

    with pytest.raises(SpecializeError) as info:
        specialize("no-such-device", max_flops="45M")
    assert "(or pass profile='PROFILE.json')" in str(info.value) and "--" not in str(info.value)
    with pytest.raises(SpecializeError) as info:
        specialize("", max_flops="45M")
    assert str(info.value).startswith("device is empty")
    shell = CliRunner().invoke(app, ["--device", "no-such-device", "--max-flops", "45M"])
    assert shell.exit_code == 2 and "(or pass --profile PROFILE.json)" in " ".join(shell.stderr.split())
    with pytest.raises(SpecializeError) as info:
        specialize("no-such-device", max_flops="45M")  # the command line's spelling ended with the command
    assert "profile='PROFILE.json'" in str(info.value)


def test_a_bound_is_named_as_the_caller_wrote_it():
    from specialize.errors import command_line_spelling
    from specialize.search.constraints import Bound

    bound = Bound("macs", 1e6, 4.5e7)
    assert bound.flags() == ["min_flops='1M'", "max_flops='45M'"]
    with command_line_spelling():
        assert bound.flags() == ["--min-flops 1M", "--max-flops 45M"]


def test_precision_picks_the_profile_and_the_export_ships_it(tmp_path):
    """precision='int8' uses an int8 profile (a file made at fp32 is refused); the result says int8, and an export
    of it ships int8, and an fp16 profile an fp16 file."""
    from dataclasses import replace

    from hw_profiles import resolve_profile
    from specialize.api import shipped_precision

    fp32 = resolve_profile("this-cpu", get_space("cifar10"))
    path = tmp_path / "int8.json"
    replace(fp32, precision="int8", latency_ms=fp32.latency_ms * 0.5).save(path)
    result = specialize(profile=str(path), table="cifar10", precision="int8", max_flops="45M")
    assert result.precision == "int8" and result.device == "this-cpu"
    assert specialize("this-cpu", max_flops="45M").precision == "fp32"
    with pytest.raises(SpecializeError, match="measured at int8, not precision='fp32'"):
        specialize(profile=str(path), table="cifar10", precision="fp32", max_flops="45M")
    assert [shipped_precision(p) for p in ("fp32", "fp16", "int8", None)] == ["fp32", "fp16", "int8", "fp32"]


def test_int8_predictions_take_the_measured_drop_and_say_so(tmp_path):
    """At int8 the prediction is the FP32 one less the recorded median drop, bands combined; with no record, the
    FP32 figure with no band, and the basis says the drop was never measured. A bad record is refused."""
    import json
    from dataclasses import replace

    from hw_profiles import resolve_profile
    from specialize.table import load_table

    table = load_table("default")
    profile = resolve_profile("this-cpu", table.space)
    int8_profile = tmp_path / "int8.json"
    replace(profile, precision="int8").save(int8_profile)
    bare = dict(table.results)
    bare.pop("int8", None)
    unmeasured = replace(table, results=bare)
    fp32 = specialize(table=unmeasured, profile=str(profile.path), max_flops="45M")
    plain = specialize(table=unmeasured, profile=str(int8_profile), max_flops="45M")
    assert plain.predicted_accuracy == fp32.predicted_accuracy and plain.predicted_accuracy_band is None
    assert plain.accuracy_basis.endswith(
        "; int8: FP32 figure, the INT8 drop never measured (`specialize table int8-check`): no band"
    )
    measured = replace(table, results={**bare, "int8": {"median_drop": 0.01, "band": 0.006, "networks": [{}] * 20}})
    int8 = specialize(table=measured, profile=str(int8_profile), max_flops="45M")
    assert int8.predicted_accuracy == pytest.approx(fp32.predicted_accuracy - 0.01)
    assert int8.predicted_accuracy_band == pytest.approx(np.hypot(fp32.predicted_accuracy_band, 0.006))
    assert "less the median INT8 drop 1.00 points over 20 networks" in int8.accuracy_basis
    data = json.loads(table.path.read_text())
    data["results"]["int8"] = {"median_drop": "0.01"}
    (tmp_path / "t.json").write_text(json.dumps(data))
    with pytest.raises(SpecializeError, match="field 'results.int8' needs a 'median_drop' in"):
        load_table(tmp_path / "t.json")


def test_auto_precision_tries_each_profile_and_keeps_the_best_prediction(tmp_path):
    result = specialize("jetson", precision="auto", max_latency="1.6ms")
    tried = {c["precision"]: c for c in result.precision_choice}
    assert set(tried) == {"fp32", "fp16"} and sum(c["chosen"] for c in tried.values()) == 1
    best = max(tried.values(), key=lambda c: c["predicted_accuracy"])
    assert best["chosen"] and result.precision == best["precision"] and result.arch == best["arch"]
    for precision, c in tried.items():
        alone = specialize("jetson", precision=precision, max_latency="1.6ms")
        assert (alone.arch, alone.predicted_accuracy) == (c["arch"], c["predicted_accuracy"])
    with pytest.raises(SpecializeError) as caught:
        specialize(profile=str(tmp_path / "p.json"), precision="auto", max_flops="45M")
    assert str(caught.value) == (
        "precision='auto' compares a device's profiles; a profile file has one precision: leave precision out, "
        "or give device instead"
    )
    no_device = r"^batch, threads and precision choose a device's latency profile: give device or profile too$"
    with pytest.raises(SpecializeError, match=no_device):
        specialize(precision="auto", max_flops="45M")


def test_auto_precision_tries_the_profiles_of_the_batch_asked_for():
    """At batch 32 this CPU has an fp32 profile only (int8 ones are batch 1): auto tries that one alone."""
    result = specialize("this-cpu", table="cifar10", precision="auto", max_flops="45M", batch=32)
    assert [c["precision"] for c in result.precision_choice] == ["fp32"] and result.batch == 32
    refused = r"^precision='auto' needs .* of space cifar10 at batch=64 and threads=1: "
    with pytest.raises(SpecializeError, match=refused):
        specialize("this-cpu", table="cifar10", precision="auto", max_flops="45M", batch=64)


def test_threads_pick_the_measured_profile_of_that_thread_count():
    one = specialize("this-cpu", table="cifar10", max_flops="45M")
    two = specialize("this-cpu", table="cifar10", max_flops="45M", threads=2)
    assert (one.threads, two.threads) == (1, 2) and one.profile_file != two.profile_file
    assert one.params == arch_cost(get_space("cifar10").parse_arch(one.arch))["params"]


def test_a_profile_measured_on_another_host_says_where(tmp_path):
    from hw_profiles.registry import DATA_DIR

    data = json.loads((DATA_DIR / "this-cpu-onnxruntime.cifar10.json").read_text())
    data["hardware"]["host_cpu"] = "Imaginary CPU 9000"
    (tmp_path / "p.json").write_text(json.dumps(data))
    result = specialize(profile=tmp_path / "p.json", table="cifar10", max_flops="45M")
    assert "Imaginary CPU 9000" in result.device_note and "specialize profile" in result.device_note


def test_a_device_and_a_profile_of_another_device_are_refused(tmp_path):
    from hw_profiles.registry import DATA_DIR

    with pytest.raises(SpecializeError) as caught:
        specialize("jetson", profile=DATA_DIR / "this-cpu-onnxruntime.cifar10.json", table="cifar10")
    assert str(caught.value).startswith("device='jetson' and profile=") and str(caught.value).endswith(
        "(device 'this-cpu') disagree: give one, or a profile of that device"
    )
    from hw_profiles import load_profile

    loaded = load_profile(DATA_DIR / "this-cpu-onnxruntime.cifar10.json")
    with pytest.raises(SpecializeError) as caught:
        specialize("jetson", profile=loaded, table="cifar10")  # a DeviceProfile object is named by its file
    assert str(caught.value).startswith("device='jetson' and profile=PosixPath(") and "DeviceProfile(" not in str(
        caught.value
    )
    agreed = specialize(
        "this-cpu", profile=DATA_DIR / "this-cpu-onnxruntime.cifar10.json", table="cifar10", max_flops="45M"
    )
    assert agreed.device == "this-cpu"


def test_loss_range_is_the_tables_spread_over_the_allowed_blocks():
    """The gap's scale: the unconstrained optimum minus the worst architecture, layer by layer over the blocks
    each layer allows (a skip where the shape changes is not one)."""
    table = random_table(2)
    space = table.space
    spread = sum(
        max(table.accuracy[layer][i] for i in space.allowed_indices(layer))
        - min(table.accuracy[layer][i] for i in space.allowed_indices(layer))
        for layer in range(space.num_layers)
    )
    assert specialize(table=table, max_flops="45M").loss_range == pytest.approx(spread)


def test_a_bound_at_the_space_edge_is_met_by_every_network_and_said_not_binding():
    from specialize.cost import space_ranges

    low, high = space_ranges(get_space("cifar10"))["macs"]
    result = specialize(table="cifar10", min_flops=low, max_flops=high)
    (bound,) = result.bounds
    assert not bound["binding"] and bound["ok"]
    assert "the smallest network in cifar10 has MACs" in bound["note"] and "the largest network" in bound["note"]


def test_best_accuracy_is_the_largest_entry_of_the_last_row():
    from specialize.api import best_accuracy

    space = get_space("cifar10")
    accuracy = np.full((space.num_layers, space.num_candidates), 0.5)
    accuracy[-2, 0], accuracy[-1, 3] = 0.9, 0.7  # another row's larger entry is not the base
    table = AccuracyTable(space=space, accuracy=accuracy, best_arch="-")
    assert best_accuracy(table) == 0.7
