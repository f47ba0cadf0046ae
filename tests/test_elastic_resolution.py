"""Elastic resolution: a run trained at several input sizes writes a table per size; the search picks among them,
and each size exports at its own input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from hw_profiles import resolve_profile
from specialize.api import export_result, specialize
from specialize.cost import cost_arrays
from specialize.errors import SpecializeError
from specialize.table import load_table
from supernet.train import Trainer, TrainConfig, train

SIZES = (12, 16, 20)  # test-tiny's own 16 and two more


def _config(data: Path) -> TrainConfig:
    return TrainConfig(
        space="test-tiny",
        data=str(data),
        epochs=2,
        val_per_class=2,
        finetune_epochs=0.5,
        batch_size=16,
        calib_images=20,
        spread_samples=6,
        seed=0,
        resolutions=(20, 12),
    )


@pytest.fixture(scope="module")
def elastic_run(tmp_path_factory: pytest.TempPathFactory, synthetic_data: Path) -> Path:
    out = tmp_path_factory.mktemp("elastic-run")
    train(_config(synthetic_data), out)
    return out


def test_a_table_per_size_each_naming_the_family(elastic_run: Path) -> None:
    main = load_table(elastic_run / "table.json")
    assert sorted(main.sizes()) == list(SIZES)
    for size, path in main.sizes().items():
        table = load_table(path)
        assert table.space.resolution == size and table.sizes() == main.sizes()
        assert table.accuracy.shape == main.accuracy.shape
        assert table.weights == main.weights and table.calibration == main.calibration
        block_macs = cost_arrays(table.space).macs
        for entry in table.results["spread"]:  # the blocks' MACs at the size the entry was measured at
            genes = table.space.parse_arch(entry["arch"]).indices
            assert entry["macs"] == block_macs[np.arange(len(genes)), genes].sum()
    small = load_table(elastic_run / "table-12px.json")
    assert not np.array_equal(small.accuracy, main.accuracy) or small.results["spread"] != main.results["spread"]


def test_each_batch_draws_its_size_the_same_way_twice(synthetic_data: Path, tmp_path: Path) -> None:
    trainer = Trainer(_config(synthetic_data), tmp_path)
    sizes = [x.shape[-1] for x, _ in trainer.batches(10, 0)]
    again = [x.shape[-1] for x, _ in trainer.batches(10, 0, start=2)]
    assert set(sizes) <= set(SIZES) and len(set(sizes)) > 1
    assert again == sizes[2:]  # a resumed epoch trains each batch at the size the uninterrupted one did


def test_one_size_runs_draw_nothing(synthetic_data: Path, tmp_path: Path) -> None:
    trainer = Trainer(replace(_config(synthetic_data), resolutions=()), tmp_path)
    assert {x.shape[-1] for x, _ in trainer.batches(10, 0)} == {16}
    assert trainer.table_files() == {}


def test_search_takes_the_most_accurate_size(elastic_run: Path) -> None:
    picked = specialize("jetson", table=elastic_run / "table-12px.json", max_flops="0.7M")
    pinned = {size: specialize("jetson", table=elastic_run / "table.json", max_flops="0.7M", resolution=size)
              for size in SIZES}  # fmt: skip
    assert [c["resolution"] for c in picked.resolution_choice] == list(SIZES)
    best = max(r.predicted_accuracy for r in pinned.values())
    assert picked.predicted_accuracy == best and pinned[picked.resolution].arch == picked.arch
    assert [c for c in picked.resolution_choice if c["chosen"]] == [
        c for c in picked.resolution_choice if c["resolution"] == picked.resolution
    ]
    for size, result in pinned.items():
        assert result.resolution == size and result.table.endswith("table.json" if size == 16 else f"{size}px.json")


def test_a_profile_per_size_and_sizes_without_one(elastic_run: Path) -> None:
    table = load_table(elastic_run / "table.json")
    profiles = {size: resolve_profile("jetson", load_table(path).space) for size, path in table.sizes().items()}
    both = specialize(table=table, profile=[profiles[12], profiles[20]])
    searched = {c["resolution"]: c for c in both.resolution_choice}
    assert "not_searched" in searched[16] and "arch" in searched[12] and "arch" in searched[20]
    assert searched[16]["chosen"] is False and sum(c["chosen"] for c in searched.values()) == 1
    one = specialize(table=table, profile=profiles[20], resolution=20)
    assert one.resolution == 20 and one.latency_ms == profiles[20].predict_ms(one_arch(table, 20, one.arch))
    with pytest.raises(SpecializeError, match="none of the 1 profiles given is for input size 12"):
        specialize(table=table, profile=[profiles[20]], resolution=12)


def one_arch(table, size: int, arch: str):
    return load_table(table.sizes()[size]).space.parse_arch(arch)


def test_an_unknown_size_names_the_sizes_there_are(elastic_run: Path) -> None:
    with pytest.raises(SpecializeError, match=r"^resolution=13: table .* has input sizes 12, 16, 20"):
        specialize(table=elastic_run / "table.json", resolution=13)


def test_one_profile_not_in_a_list_searches_the_size_it_fits(elastic_run: Path, tmp_path: Path) -> None:
    """A single profile (a file, as a library user passes one) is one profile, not a list to iterate."""
    table = load_table(elastic_run / "table.json")
    at_20 = resolve_profile("jetson", load_table(table.sizes()[20]).space)
    at_20.save(tmp_path / "p20.json")
    result = specialize(table=table, profile=str(tmp_path / "p20.json"))
    searched = {c["resolution"]: c for c in result.resolution_choice}
    assert result.resolution == 20 and "not_searched" in searched[12] and "not_searched" in searched[16]


def test_each_size_exports_at_its_own_input(elastic_run: Path, synthetic_data: Path, tmp_path: Path) -> None:
    result = specialize(table=elastic_run / "table.json", resolution=12)
    shipped = export_result(result, tmp_path / "m12.onnx", data=synthetic_data).export
    dims = onnx.load(tmp_path / "m12.onnx").graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [3, 12, 12]
    assert shipped["macs"] == result.macs and shipped["measured_accuracy"] is not None


def test_weights_are_refused_at_a_size_no_table_vouches_for(elastic_run: Path, tmp_path: Path) -> None:
    from supernet.export import check_weights_space

    main, small = load_table(elastic_run / "table.json"), load_table(elastic_run / "table-12px.json")
    assert check_weights_space(small.space, main.space, tmp_path, (12, 16)) == []
    with pytest.raises(SpecializeError, match="neither"):
        check_weights_space(small.space, main.space, tmp_path, (16, 20))


@pytest.mark.parametrize(
    "family",
    [{"12": "../table.json", "16": "table.json"}, {"16": 3}, {"12": "table-12px.json"}, ["table.json"], {"x": "t"}],
)
def test_a_bad_family_names_the_field(elastic_run: Path, tmp_path: Path, family) -> None:
    data = json.loads((elastic_run / "table.json").read_text())
    data["results"]["resolutions"] = family
    (tmp_path / "table.json").write_text(json.dumps(data))
    with pytest.raises(SpecializeError, match="results.resolutions"):
        load_table(tmp_path / "table.json")


def test_bad_sizes_exit_2(tmp_path: Path, synthetic_data: Path) -> None:
    base = ["train", "--space", "test-tiny", "--data", str(synthetic_data), "-o", str(tmp_path / "r")]
    for extra, says in [
        (["--resolutions", "64,abc"], "comma-separated"),
        (["--resolutions", "4"], "8..4096"),
        (["--resolutions", "20", "--resolution", "12"], "proxy --resolution"),
    ]:
        result = CliRunner().invoke(app, base + extra)
        assert result.exit_code == 2 and says in result.output and len(result.output.strip().splitlines()) == 1
        assert not (tmp_path / "r").exists()


def test_the_cli_lists_every_size_searched(elastic_run: Path) -> None:
    result = CliRunner().invoke(app, ["--table", str(elastic_run / "table.json"), "--device", "jetson"])
    assert result.exit_code == 0, result.output
    assert "input sizes searched" in result.output and "chosen" in result.output
    assert all(f"{size} px" in result.output for size in SIZES)


def test_elastic_training_keeps_torch_state_sane(elastic_run: Path) -> None:
    payload = torch.load(elastic_run / "weights.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in payload["state_dict"].values() if v.is_floating_point())


def _calibration_side(run: Path) -> int:
    with np.load(run / "calibration.npz") as archive:
        return archive["images"].shape[1]


def test_calibration_images_ship_at_the_smallest_size(elastic_run: Path) -> None:
    table = load_table(elastic_run / "table.json")
    assert _calibration_side(elastic_run) == 12 == table.calibration["resolution"]


def test_calibration_images_ship_at_the_files_own_size_when_smaller(synthetic_data: Path, tmp_path: Path) -> None:
    cfg = replace(_config(synthetic_data), input_size=20, resolutions=(24,), epochs=1, finetune_epochs=0.1)
    table = train(cfg, tmp_path)  # synthetic images are 16x16: stored as they are, not upscaled to 20
    assert _calibration_side(tmp_path) == 16 == table.calibration["resolution"]
    from supernet.export import calibration_file_batches

    assert {b.shape[-1] for b in calibration_file_batches(tmp_path / "calibration.npz", 24)} == {24}


def test_the_files_own_size_survives_the_cache(synthetic_data: Path) -> None:
    from supernet.data import load_dataset

    first, cached = load_dataset(synthetic_data, image_size=20), load_dataset(synthetic_data, image_size=20)
    assert first.source_size == cached.source_size == 16 and first.train_images.shape[1] == 20


def test_the_cli_takes_a_profile_per_size(elastic_run: Path, tmp_path: Path) -> None:
    table = load_table(elastic_run / "table.json")
    paths = []
    for size in (12, 20):
        path = tmp_path / f"p{size}.json"
        resolve_profile("jetson", load_table(table.sizes()[size]).space).save(path)
        paths += ["--profile", str(path)]
    done = CliRunner().invoke(app, ["--table", str(elastic_run / "table.json"), *paths, "--json"])
    assert done.exit_code == 0, done.output
    searched = {c["resolution"]: c for c in json.loads(done.stdout)["resolution_choice"]}
    assert "not_searched" in searched[16] and "arch" in searched[12] and "arch" in searched[20]
    one = CliRunner().invoke(app, ["--table", str(elastic_run / "table-12px.json"), "--resolution", "12", *paths])
    assert one.exit_code == 0, one.output


def test_equal_predictions_at_two_sizes_go_to_the_faster_one(monkeypatch):
    """_best_resolution's order: predicted accuracy, then latency, then the smaller size; here the larger size is
    the faster, so only the latency tie-break can pick it."""
    from dataclasses import dataclass, field
    from types import SimpleNamespace

    import specialize.api as api

    @dataclass
    class Answer:
        latency_ms: float
        predicted_accuracy: float = 0.8
        predicted_accuracy_band: float | None = None
        arch: str = "-"
        macs: int = 1
        resolution_choice: list = field(default_factory=list)

    table = SimpleNamespace(sizes=lambda: {64: "t64", 80: "t80"}, space=SimpleNamespace(resolution=64))
    monkeypatch.setattr(api, "load_table", lambda path: table)
    answers = {64: Answer(latency_ms=2.0), 80: Answer(latency_ms=1.0)}
    best = api._best_resolution(lambda at, size, profile: answers[size], table, None)
    assert best.latency_ms == 1.0 and [c["chosen"] for c in best.resolution_choice] == [False, True]


def test_every_size_is_fitted_on_its_own_search_answers(
    elastic_run: Path, synthetic_data: Path, tmp_path: Path
) -> None:
    """The other sizes' tables share the run's weights: their answers are measured by the same weights fed images
    of that size (the run's fit split, decoded at that size), as training measured their entries."""
    import shutil

    from specialize.api import offline, specialize
    from supernet.fitness import supernet_fitness

    for name in ("weights.pt", "calibration.npz", *(p.name for p in elastic_run.glob("table*.json"))):
        shutil.copy(elastic_run / name, tmp_path / name)
    small = tmp_path / "table-12px.json"
    offline.calibrate_on_picks(str(small), synthetic_data, 8, 0, lambda _: None)
    table = load_table(small)
    fitness = supernet_fitness(table, synthetic_data, split="fit")
    assert fitness.split.x.shape[-1] == 12 and table.pick_fit["split"] == "fit"
    # the weights built at 12 px ('same' padding follows each layer's input size, as in the exported network)
    assert fitness.net.space.fingerprint == table.space.fingerprint and fitness.net.space.resolution == 12
    for pick in table.pick_fit["picks"]:
        answer = specialize(None, table=small, max_flops=pick["max_flops"], resolution=12)
        assert answer.arch == pick["arch"] and answer.resolution == 12
        assert pick["accuracy"] == fitness.accuracy(tuple(table.space.parse_arch(pick["arch"]).indices), fitness.images)
