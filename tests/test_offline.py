"""The offline evaluator (supernet.fitness), `search_offline` and `specialize search`, on a tiny run trained here.

The run uses seed 3 and float32 weights, so the sub-network accuracies it recorded during training (its
table's last row and its spread samples) can be compared exactly with what the evaluator measures: they
match only on the same validation images, calibration images and weights.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from specialize.cost import arch_cost
from specialize.errors import SpecializeError
from specialize.table import load_table

runner = CliRunner()


@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory: pytest.TempPathFactory, synthetic_data: Path) -> Path:
    from supernet.train import TrainConfig, train

    out = tmp_path_factory.mktemp("offline-run")
    cfg = TrainConfig(
        space="test-tiny",
        data=str(synthetic_data),
        epochs=1,
        val_per_class=2,
        finetune_epochs=0.25,
        batch_size=16,
        calib_images=20,
        spread_samples=4,
        seed=3,
        weights_dtype="float32",
    )
    train(cfg, out)
    return out / "table.json"


@pytest.fixture(scope="module")
def fitness(seeded_run, synthetic_data):
    from supernet.fitness import supernet_fitness

    return supernet_fitness(load_table(seeded_run), synthetic_data)


@pytest.fixture
def measured(monkeypatch) -> list[int]:
    """Validation images of every sub-network actually measured."""
    import supernet.fitness

    sizes, measure = [], supernet.fitness.subnet_accuracy

    def counting(net, arch, x, y, calibration):
        sizes.append(len(y))
        return measure(net, arch, x, y, calibration)

    monkeypatch.setattr(supernet.fitness, "subnet_accuracy", counting)
    return sizes


def test_scores_are_the_accuracies_training_measured_on_its_validation_split(seeded_run, fitness):
    table = load_table(seeded_run)
    chosen = [table.space.candidate_index(name) for name in table.best_arch.split(",")]
    last_row = np.array([chosen[:-1] + [c] for c in range(table.space.num_candidates)])
    assert np.array_equal(fitness(last_row), table.accuracy[-1])
    assert table.results["accuracy_fit"]["split"] == "fit"  # the spread is measured on images apart from these


def test_the_split_is_the_held_out_training_images_and_never_the_calibration_ones(fitness):
    split = fitness.split
    assert len(split.indices) == len(set(split.indices)) == 20 == fitness.images  # 2 per class, 10 classes
    assert not set(split.indices) & set(split.calibration_indices)
    assert sorted(np.bincount(split.y.numpy())) == [2] * 10


def test_a_cached_architecture_is_not_measured_again(fitness, measured):
    pop = np.array([[0, 1, 2], [3, 4, 5], [0, 1, 2]])
    before = fitness.evaluations
    first = fitness(pop)
    assert first[0] == first[2] and fitness.evaluations - before == len(measured) <= 2
    again = fitness(pop)
    assert np.array_equal(first, again) and fitness.evaluations - before == len(measured)
    assert fitness.evaluations_per_second > 0


def test_fidelity_scores_a_prefix_of_the_fixed_order(fitness, measured):
    fitness(np.array([[5, 5, 5]]), fidelity=0.5)
    fitness(np.array([[5, 5, 5]]), fidelity=1.0)
    fitness(np.array([[5, 5, 5]]), fidelity=0.01)
    assert measured == [10, 20, 1]
    with pytest.raises(SpecializeError, match="fidelity"):
        fitness(np.array([[5, 5, 5]]), fidelity=0.0)


def test_other_data_is_refused(seeded_run, tmp_path):
    from supernet.data import make_synthetic_folder
    from supernet.fitness import supernet_fitness

    other = make_synthetic_folder(tmp_path / "other", classes=10, train_per_class=9, test_per_class=3, size=16)
    with pytest.raises(SpecializeError, match="not the data"):
        supernet_fitness(load_table(seeded_run), other)


@pytest.mark.parametrize("strategy", ["random", "epnas"])
def test_search_offline_returns_a_measured_answer_within_budget(seeded_run, synthetic_data, fitness, strategy):
    from specialize.api import search_offline
    from specialize.cost import cost_arrays

    table = load_table(seeded_run)
    largest = int(cost_arrays(table.space).macs.max(axis=1).sum() + cost_arrays(table.space).fixed_macs)
    result = search_offline(
        seeded_run, synthetic_data, strategy=strategy, budget=12, seed=1, fitness=fitness, max_flops=0.9 * largest
    )
    assert result.meets_bounds and result.macs <= 0.9 * largest and result.bounds[0]["ok"]
    assert result.evaluations <= 12 and result.history
    genes = np.array([table.space.parse_arch(result.arch).indices])
    assert result.validation_accuracy == fitness(genes)[0]
    cost = arch_cost(table.space.parse_arch(result.arch))
    assert (result.macs, result.params, result.bytes) == (cost["macs"], cost["params"], cost["bytes"])
    assert result.evaluations_per_second == pytest.approx(result.evaluations / result.wall_seconds)


def test_search_offline_on_a_device_reports_the_answer_latency(seeded_run, synthetic_data, fitness):
    from hw_profiles import resolve_profile
    from specialize.api import search_offline

    table = load_table(seeded_run)
    result = search_offline(
        seeded_run, synthetic_data, device="jetson", strategy="random", budget=4, seed=1, fitness=fitness
    )
    expected = resolve_profile("jetson", table.space).predict_ms(table.space.parse_arch(result.arch))
    assert result.device == "jetson-orin-nano" and result.latency_ms == pytest.approx(expected)


def test_search_offline_finds_the_data_the_table_was_trained_on(seeded_run):
    """Without data, the offline search scores on the dataset the table records (here, on this machine)."""
    from specialize.api import search_offline

    result = search_offline(seeded_run, strategy="random", budget=2, seed=1, val_images=20)
    assert result.evaluations <= 2 and 0.0 <= result.validation_accuracy <= 1.0


def test_search_offline_refuses_infeasible_bounds_before_measuring(seeded_run, synthetic_data, fitness, measured):
    from specialize.api import search_offline

    with pytest.raises(SpecializeError):
        search_offline(seeded_run, synthetic_data, strategy="random", budget=5, fitness=fitness, max_params=10)
    assert measured == []


def test_specialize_search_prints_json(seeded_run, synthetic_data):
    done = runner.invoke(
        app,
        [
            "search",
            "--strategy",
            "random",
            "--table",
            str(seeded_run),
            "--data",
            str(synthetic_data),
            "--budget",
            "4",
            "--max-flops",
            "1G",
            "--json",
        ],
    )
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["strategy"] == "random" and data["evaluations"] <= 4 and 0 <= data["validation_accuracy"] <= 1
    assert {"arch", "meets_bounds", "macs", "bounds", "evaluations_per_second", "wall_seconds", "history"} <= set(data)


def test_specialize_search_renders_and_refuses_a_table_strategy(seeded_run, synthetic_data):
    done = runner.invoke(
        app,
        ["search", "--strategy", "random", "--table", str(seeded_run), "--data", str(synthetic_data), "--budget", "3"],
    )
    assert done.exit_code == 0, done.output
    assert "validation accuracy" in done.stdout and "evaluations/s" in done.stdout
    refused = runner.invoke(
        app, ["search", "--strategy", "ga", "--table", str(seeded_run), "--data", str(synthetic_data)]
    )
    assert refused.exit_code == 2 and "searches the table" in refused.output


@pytest.mark.parametrize("strategy", ["epnas", "random"])
def test_the_main_command_refuses_an_offline_strategy_in_one_line(strategy):
    done = runner.invoke(app, ["--strategy", strategy, "--max-flops", "45M"])
    assert done.exit_code == 2
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and f"specialize search --strategy {strategy}" in lines[0]
