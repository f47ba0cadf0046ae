"""`--rerank surrogate` / `rerank="surrogate"`: the table's k best re-ranked by PNAS's surrogate of measured accuracy.

Tables here are random accuracies with a synthetic `results.spread` (what training measures), so whether
the rerank should change the answer is known: the measured accuracies reward one block the table does not.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from specialize import specialize
from specialize.api import prepare
from specialize.errors import SpecializeError
from specialize.search.constraints import bounds_from_options
from specialize.search.exact import top_k
from specialize.space import get_space
from specialize.table import AccuracyTable

BOUNDS = {"max_flops": "45M"}


def table_with_spread(reward: tuple[int, int] | None, samples: int = 40, seed: int = 0) -> AccuracyTable:
    """Random table; measured accuracy 0.3 + noise, plus 0.3 where layer reward[0] takes candidate reward[1]."""
    space = get_space("cifar10")
    rng = np.random.default_rng(seed)
    table = AccuracyTable(
        space=space,
        accuracy=rng.uniform(0.6, 0.9, (space.num_layers, space.num_candidates)),
        best_arch=str(space.largest_arch()),
    )
    genes = rng.integers(0, space.num_candidates, (samples, space.num_layers))
    if reward is not None:
        genes[::2, reward[0]] = reward[1]
    bonus = np.zeros(samples) if reward is None else 0.3 * (genes[:, reward[0]] == reward[1])
    accuracy = 0.3 + bonus + rng.normal(0, 0.01, samples)
    table.results = {
        "spread": [{"arch": str(space.arch_from_indices(g)), "accuracy": float(a)} for g, a in zip(genes, accuracy)]
    }
    return table


def block_only_a_runner_up_has(table: AccuracyTable) -> tuple[int, int]:
    """(layer, candidate) that one of the table's 10 best has and its best does not: the reward to plant."""
    problem = prepare(table, None, None, bounds_from_options(**BOUNDS))[2]
    found = np.stack([r.genes for r in top_k(problem, 10)])
    for genes in found[1:]:
        for layer in np.flatnonzero(genes != found[0]):
            if (found[:, layer] == genes[layer]).sum() == 1:
                return int(layer), int(genes[layer])
    raise AssertionError("the table's 10 best share every block")


def test_rerank_follows_measured_accuracy_the_table_misses():
    reward = block_only_a_runner_up_has(table_with_spread(None))
    table = table_with_spread(reward)
    plain = specialize(table=table, **BOUNDS)
    result = specialize(table=table, rerank="surrogate", **BOUNDS)
    rerank = result.rerank
    assert rerank["changed"] and rerank["before"] == plain.arch and rerank["after"] == result.arch != plain.arch
    assert table.space.parse_arch(result.arch).indices[reward[0]] == reward[1]
    assert result.answer_from == "rerank surrogate" and all(b["ok"] for b in result.bounds)
    on_device = specialize("jetson", table=table, rerank="surrogate", **BOUNDS)  # the moved answer keeps its device
    assert on_device.rerank["changed"] and on_device.device == "jetson-orin-nano" and on_device.latency_ms > 0
    rows = rerank["candidates"]
    assert len(rows) == rerank["k"] == 10 and rerank["samples"] == 40
    assert [r["table_score"] for r in rows] == sorted((r["table_score"] for r in rows), reverse=True)
    assert sorted(r["rerank_position"] for r in rows) == list(range(1, 11))
    chosen = next(r for r in rows if r["rerank_position"] == 1)
    assert chosen["arch"] == result.arch and chosen["predicted_accuracy"] == max(r["predicted_accuracy"] for r in rows)
    assert result.accuracy_loss == pytest.approx(chosen["table_score"]) and result.optimality_gap > 0
    assert result.strategy_details == plain.strategy_details  # how the search ran, kept through the rerank
    assert (result.strategy_value, result.strategy_gap) == (plain.strategy_value, plain.strategy_gap)
    assert all(r["prediction_spread"] >= 0 for r in rows) and any(r["prediction_spread"] > 0 for r in rows)


def test_rerank_keeps_the_answer_when_measured_accuracy_rewards_it():
    table = table_with_spread(None)
    problem = prepare(table, None, None, bounds_from_options(**BOUNDS))[2]
    best = top_k(problem, 1)[0].genes
    rng = np.random.default_rng(1)
    genes = np.where(
        rng.random((40, len(best))) < 0.5, best, rng.integers(0, table.space.num_candidates, (40, len(best)))
    )
    accuracy = 0.3 + 0.3 * (genes == best).mean(axis=1)  # the more of the table's best, the more accurate
    table.results = {
        "spread": [
            {"arch": str(table.space.arch_from_indices(g)), "accuracy": float(a)} for g, a in zip(genes, accuracy)
        ]
    }
    result = specialize(table=table, rerank="surrogate", **BOUNDS)
    assert not result.rerank["changed"] and result.arch == result.rerank["before"]
    assert result.answer_from == "ga" and result.optimality_gap == pytest.approx(0, abs=1e-12)


def test_a_table_with_too_few_measured_subnetworks_is_refused():
    with pytest.raises(SpecializeError, match=r"has 5 measured sub-networks .* at least 10"):
        specialize(table=table_with_spread(None, samples=5), rerank="surrogate", **BOUNDS)
    with pytest.raises(SpecializeError, match=r"unknown rerank 'oracle'; known reranks: surrogate"):
        specialize(table=table_with_spread(None), rerank="oracle", **BOUNDS)


@pytest.fixture(scope="module")
def spread_table_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("tables") / "spread.table.json"
    table_with_spread(block_only_a_runner_up_has(table_with_spread(None))).save(path)
    return str(path)


def test_cli_reports_the_rerank_in_json_and_in_one_line(spread_table_file):
    runner = CliRunner()
    done = runner.invoke(
        app,
        ["--table", spread_table_file, "--device", "jetson", "--max-flops", "45M", "--rerank", "surrogate", "--json"],
    )
    assert done.exit_code == 0, done.output
    rerank = json.loads(done.stdout)["rerank"]
    assert {"changed", "before", "after", "candidates", "cv_error", "samples"} <= set(rerank)
    assert {"arch", "table_score", "predicted_accuracy"} <= set(rerank["candidates"][0])
    done = runner.invoke(app, ["--table", spread_table_file, "--max-flops", "45M", "--rerank", "surrogate"])
    assert done.exit_code == 0, done.output
    lines = [l for l in done.stdout.splitlines() if l.startswith("rerank (")]
    assert len(lines) == 1 and ("changed the answer" in lines[0] or "kept the answer" in lines[0])


@pytest.mark.parametrize(
    "args, words",
    [
        (["--rerank", "oracle"], "unknown rerank"),
        (["--rerank", "surrogate", "--rerank-k", "1"], "--rerank-k 1 is out of range"),
    ],
)
def test_cli_bad_rerank_is_one_line_and_exit_2(spread_table_file, args, words):
    done = CliRunner().invoke(app, ["--table", spread_table_file, "--max-flops", "45M", *args])
    assert done.exit_code == 2 and words in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_the_rerank_imports_neither_torch_nor_onnx(spread_table_file):
    code = (
        "import sys; from specialize import specialize; "
        f"r = specialize(table={spread_table_file!r}, max_flops='45M', rerank='surrogate'); "
        "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
