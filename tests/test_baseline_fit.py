"""benchmarks/baseline.py's budget fit: the tool's pick at each budget is searched again until it uses the budget on
the machine as timed now (over it: smaller; more than 5% under it: larger), and a pick still over it at the end gives
way to the last one that met it. The search and the timing are stand-ins: a catalogue of networks by predicted ms, and
a machine that runs every network at a fixed share of its prediction."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest


def load_baseline():
    spec = importlib.util.spec_from_file_location("baseline", Path(__file__).parents[1] / "benchmarks" / "baseline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CATALOGUE = (0.5, 0.8, 0.9, 1.1, 1.25, 1.3, 1.5)  # the networks the search can answer, by predicted ms


def fit(monkeypatch, tmp_path, machine, lite0_ms=1.0, fit_rounds=3):
    """The measure phase with one budget (Lite0 at 64 px, timed at `lite0_ms`) on a machine where a network of
    predicted p ms runs machine(p, round) ms; what it ships and every search limit it tried."""
    baseline = load_baseline()
    limits, rounds = [], [0]

    def search(args, table, search_ms, previous):
        out = {}
        for name, limit in search_ms.items():
            limits.append(round(limit, 4))
            predicted = max(p for p in CATALOGUE if p <= limit)
            out[name] = {"file": str(tmp_path / f"{predicted}.onnx"), "resolution": 96, "predicted_ms": predicted}
        return out

    def timing(files, threads, rounds_):
        rounds[0] += 1
        return {
            name: lite0_ms if name.startswith("lite0@") else machine(float(Path(path).stem), rounds[0])
            for name, (path, _) in files.items()
        }

    monkeypatch.setattr(baseline, "tool_exports", search)
    monkeypatch.setattr(baseline, "interleaved_ms", timing)
    monkeypatch.setattr(baseline, "lite0_onnx", lambda classes, r, path: path)
    args = SimpleNamespace(
        profiles=["p.json"], resolutions=[64], budgets=None, budgets_at=[64], rounds=1, threads=1,
        fit_rounds=fit_rounds, out=tmp_path,
    )  # fmt: skip
    table = SimpleNamespace(space=SimpleNamespace(num_classes=10))
    measured = baseline.measure_phase(args, table)
    return measured["tool"]["tool@lite0-64px"], limits


def test_a_pick_far_under_its_budget_is_searched_again_larger(monkeypatch, tmp_path):
    """The profile over-predicts by 25%: the first pick (0.9 predicted) runs 0.72 ms against a 1.0 ms budget, so it
    is searched again at 1.0 / 0.8 and the 1.25 ms network, running 1.0 ms, ships."""
    pick, limits = fit(monkeypatch, tmp_path, lambda p, r: 0.8 * p)
    assert limits == [1.0, 1.25]
    assert pick["predicted_ms"] == 1.25 and pick["latency_ms"] == pytest.approx(1.0)


def test_a_pick_over_its_budget_is_searched_again_smaller(monkeypatch, tmp_path):
    """The profile under-predicts by 20%: 0.9 predicted runs 1.08 ms, over 1.0; searched again under 1.0 / 1.2."""
    pick, limits = fit(monkeypatch, tmp_path, lambda p, r: 1.2 * p)
    assert limits == [1.0, round(1.0 / 1.2, 4)]
    assert pick["predicted_ms"] == 0.8 and pick["latency_ms"] <= 1.0


def test_a_pick_still_over_after_the_last_round_gives_way_to_the_last_that_met_it(monkeypatch, tmp_path):
    """The machine slows each round: the last pick runs over, so the one that met the budget ships."""
    pick, _ = fit(monkeypatch, tmp_path, lambda p, r: [0.8, 0.8, 1.3][min(r, 3) - 1] * p, fit_rounds=1)
    assert pick["latency_ms"] <= 1.0 and pick["predicted_ms"] == 0.9
