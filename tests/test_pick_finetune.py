"""Fine-tuning the pick alone before export (`--pick-finetune-epochs`): the recipe trains, keeps frozen batch norm
frozen, is repeatable; the export measures the pick before and after and records it; bad input is refused."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from cli.main import app
from specialize.api import _misses, export_result, specialize
from specialize.api.offline import pick_finetune_recipe
from specialize.errors import SpecializeError
from specialize.space import get_space
from specialize.table import load_table
from supernet.bn import FrozenBatchNorm2d
from supernet.data import load_dataset, to_tensor
from supernet.elastic import Supernet
from supernet.finetune import finetune, refit_classifier, scheduled_lr
from supernet.onnx_graph import read_metadata
from supernet.train_config import FinetuneRecipe

runner = CliRunner()


def tiny_pick(batch_norm: str = "batch", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    space = replace(get_space("test-tiny"), batch_norm=batch_norm)
    return Supernet(space).extract(space.largest_arch())


def bn_stats(module: torch.nn.Module) -> list[torch.Tensor]:
    return [b.clone() for m in module.modules() if hasattr(m, "running_mean") for b in (m.running_mean, m.running_var)]


@pytest.fixture(scope="module")
def images(synthetic_data):
    data = load_dataset(synthetic_data, image_size=16)
    return data.train_images, data.train_labels


def train_loss(module: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    with torch.no_grad():
        return F.cross_entropy(module.eval()(to_tensor(images)), torch.from_numpy(labels).long()).item()


def test_the_schedule_warms_up_then_follows_the_cosine():
    total = 100
    lrs = [scheduled_lr(1.0, s, total, 0.1) for s in range(total)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(0.5 * (1 + np.cos(np.pi * 9 / total)))
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10]))  # ramps up over the first tenth
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] < 0.01  # then decays to about zero
    assert scheduled_lr(1.0, 50, total, 0.0, "step") == pytest.approx(0.1)


def test_finetune_lowers_the_training_loss_and_is_repeatable(images):
    x, y = images
    first, second = tiny_pick(), tiny_pick()
    before = train_loss(first, x, y)
    recipe = FinetuneRecipe(epochs=20, lr=0.1, batch_size=16)
    report = finetune(first, x, y, recipe)
    finetune(second, x, y, recipe)
    assert train_loss(first, x, y) < 0.8 * before
    assert report.images == len(x) and report.steps == round(20 * len(x) / 16)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_the_probe_refits_the_classifier_on_the_picks_features_and_leaves_the_body(images):
    x, y = images
    net = tiny_pick()
    body = {k: v.clone() for k, v in net.state_dict().items() if not k.startswith("classifier")}
    before = train_loss(net, x, y)
    refit_classifier(net, x, y, None)
    assert train_loss(net, x, y) < 0.5 * before
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in body.items())


def test_the_probe_fits_on_a_capped_sample_of_a_large_folder(images, monkeypatch):
    import supernet.finetune as ft

    seen = []
    monkeypatch.setattr(ft, "PROBE_IMAGES", 20)
    monkeypatch.setattr(ft, "pooled_features", lambda f, x, size, flip: seen.append(len(x)) or f(to_tensor(x, size)))
    x, y = images
    refit_classifier(tiny_pick(), x, y, None)
    assert seen == [20, 20] and len(x) > 20


def test_the_default_learning_rate_follows_how_batch_norm_trains(images):
    """No --pick-finetune-lr: a frozen network trains at the small-folder rate, batch statistics at the larger one
    measured on CIFAR-10; one given is kept either way, and the recorded recipe says which ran."""
    from supernet.train_config import PICK_FINETUNE_LRS

    x, y = images
    recipe = FinetuneRecipe(epochs=0.1, batch_size=16)
    assert finetune(tiny_pick("frozen"), x, y, recipe).recipe.lr == PICK_FINETUNE_LRS["frozen"]
    assert finetune(tiny_pick("batch"), x, y, recipe).recipe.lr == PICK_FINETUNE_LRS["batch"]
    assert PICK_FINETUNE_LRS["frozen"] != PICK_FINETUNE_LRS["batch"]
    assert finetune(tiny_pick("batch"), x, y, FinetuneRecipe(epochs=0.1, lr=0.3, batch_size=16)).recipe.lr == 0.3


def test_frozen_batch_norm_stays_frozen_and_batch_statistics_adapt(images):
    x, y = images
    frozen, batch = tiny_pick("frozen"), tiny_pick("batch")
    assert any(isinstance(m, FrozenBatchNorm2d) for m in frozen.modules())
    frozen_before, batch_before = bn_stats(frozen), bn_stats(batch)
    weights_before = [p.clone() for p in frozen.parameters()]
    assert finetune(frozen, x, y, FinetuneRecipe(epochs=1, lr=0.05, batch_size=16)).batch_norm.startswith("frozen")
    assert finetune(batch, x, y, FinetuneRecipe(epochs=1, lr=0.05, batch_size=16)).batch_norm.startswith("batch")
    # eval mode: not even the layers a frozen space adapts move their statistics while the weights train
    assert all(torch.equal(a, b) for a, b in zip(frozen_before, bn_stats(frozen)))
    assert any(not torch.equal(a, b) for a, b in zip(weights_before, frozen.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(batch_before, bn_stats(batch)))


def test_clipping_bounds_every_step(images):
    x, y = images
    clipped, free = tiny_pick(), tiny_pick()
    recipe = FinetuneRecipe(epochs=1, lr=1.0, batch_size=16, warmup=0.0, momentum=0.0, weight_decay=0.0, probe=False)
    start = [p.clone() for p in clipped.parameters()]
    finetune(clipped, x, y, replace(recipe, clip_grad=1e-3, epochs=16 / len(x)))  # one step
    finetune(free, x, y, replace(recipe, clip_grad=0.0, epochs=16 / len(x)))
    moved = torch.sqrt(sum(((p - s) ** 2).sum() for p, s in zip(clipped.parameters(), start)))
    free_moved = torch.sqrt(sum(((p - s) ** 2).sum() for p, s in zip(free.parameters(), start)))
    assert moved <= 1e-3 * 1.0001 < free_moved  # lr 1 x clipped norm


def test_a_killed_finetune_resumes_to_exactly_the_weights_of_an_uninterrupted_one(images, tmp_path):
    x, y = images
    recipe = FinetuneRecipe(epochs=3, lr=0.05, batch_size=16)
    whole = tiny_pick()
    finetune(whole, x, y, recipe)
    checkpoint = tmp_path / "pick.finetune.pt"

    def kill(step, total, loss):
        if step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(tiny_pick(), x, y, recipe, progress=kill, checkpoint=checkpoint, checkpoint_seconds=0)
    resumed = tiny_pick()
    report = finetune(resumed, x, y, recipe, checkpoint=checkpoint, checkpoint_seconds=0)
    assert report.resumed_at_step == 6 and report.steps == round(3 * len(x) / 16)
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))
    # a finished checkpoint resumes at its end: nothing retrains, the same weights come back
    again = tiny_pick()
    assert finetune(again, x, y, recipe, checkpoint=checkpoint).resumed_at_step == report.steps
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), again.state_dict().values()))


def test_the_reported_minutes_sum_the_runs_before_and_after_a_kill(images, tmp_path, monkeypatch):
    """A resumed fine-tune reports its whole training time (as training's wall clock does), not the last run's."""
    x, y = images
    clock = [0.0]
    monkeypatch.setattr("supernet.finetune.time", SimpleNamespace(time=lambda: clock[0]))
    recipe, checkpoint = FinetuneRecipe(epochs=3, lr=0.05, batch_size=16), tmp_path / "pick.finetune.pt"
    killed = []

    def minute_per_step(step, total, loss):  # each step takes a minute; the first run is killed during the 7th
        clock[0] += 60
        if step == 7 and not killed:
            killed.append(step)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(tiny_pick(), x, y, recipe, progress=minute_per_step, checkpoint=checkpoint, checkpoint_seconds=0)
    report = finetune(tiny_pick(), x, y, recipe, progress=minute_per_step, checkpoint=checkpoint)
    assert report.resumed_at_step == 6 and report.minutes == report.steps  # 6 minutes before the kill, the rest after


def test_a_checkpoint_of_another_finetune_or_a_corrupt_one_is_refused_and_kept(images, tmp_path):
    x, y = images
    checkpoint = tmp_path / "pick.finetune.pt"
    finetune(tiny_pick(), x, y, FinetuneRecipe(epochs=1, batch_size=16), checkpoint=checkpoint)
    kept = checkpoint.read_bytes()
    with pytest.raises(SpecializeError, match=r"pick.finetune.pt belongs to another fine-tune \(recipe differ\)"):
        finetune(tiny_pick(), x, y, FinetuneRecipe(epochs=1, batch_size=16, lr=0.01), checkpoint=checkpoint)
    assert checkpoint.read_bytes() == kept
    checkpoint.write_bytes(kept[: len(kept) // 2])
    with pytest.raises(SpecializeError, match="pick fine-tune checkpoint .*pick.finetune.pt cannot be read"):
        finetune(tiny_pick(), x, y, FinetuneRecipe(epochs=1, batch_size=16), checkpoint=checkpoint)


class ConstantTeacher(torch.nn.Module):
    """Says class `label` with certainty, whatever the image."""

    def __init__(self, classes: int, label: int):
        super().__init__()
        self.logits = torch.full((classes,), -20.0)
        self.logits[label] = 20.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), -1)


def test_distillation_pulls_the_pick_toward_its_teacher_in_proportion(images):
    """A teacher that always says class 0: with all of the loss from it the pick learns to say 0 for every image;
    with none, the teacher is ignored (the same weights as a run without one); in between, in between."""
    x, y = images
    recipe = FinetuneRecipe(epochs=3, lr=0.05, batch_size=16, probe=False)
    teacher = ConstantTeacher(int(y.max()) + 1, 0)

    def says_zero(distill: float, with_teacher: bool = True) -> tuple[float, torch.nn.Module]:
        pick = tiny_pick()
        finetune(pick, x, y, replace(recipe, distill=distill), teacher=teacher if with_teacher else None)
        with torch.no_grad():
            predicted = pick.eval()(to_tensor(x)).argmax(1)
        return (predicted == 0).float().mean().item(), pick

    all_soft, _ = says_zero(1.0)
    none, with_teacher = says_zero(0.0)
    _, plain = says_zero(0.0, with_teacher=False)
    assert all_soft == 1.0 and none < 0.9 and (y == 0).mean() < 0.9
    for a, b in zip(plain.state_dict().values(), with_teacher.state_dict().values()):
        assert torch.equal(a, b)  # distill 0: the teacher changes nothing
    assert none <= says_zero(0.5)[0] <= all_soft


def test_label_smoothing_reaches_the_loss(images):
    """A smoothed recipe trains to other weights than a plain one from the same start, and its final loss is the
    smoothed one (never below the smoothing's floor); a smoothing of 1 or more is refused."""
    x, y = images
    plain, smoothed = tiny_pick(), tiny_pick()
    base = FinetuneRecipe(epochs=2, lr=0.05, batch_size=16, probe=False)
    finetune(plain, x, y, base)
    report = finetune(smoothed, x, y, replace(base, label_smoothing=0.5))
    assert any(not torch.equal(a, b) for a, b in zip(plain.state_dict().values(), smoothed.state_dict().values()))
    classes = int(y.max()) + 1
    floor = -(
        0.5 / classes * (classes - 1) * np.log(0.5 / classes)
        + (1 - 0.5 + 0.5 / classes) * np.log(1 - 0.5 + 0.5 / classes)
    )
    assert report.final_loss >= floor - 1e-4 and "label_smoothing" in report.recipe.to_dict()
    with pytest.raises(SpecializeError, match="label smoothing"):
        replace(base, label_smoothing=1.0).check()


def test_distillation_without_a_teacher_and_out_of_range_weights_are_refused(images):
    x, y = images
    with pytest.raises(SpecializeError, match="needs a teacher"):
        finetune(tiny_pick(), x, y, FinetuneRecipe(epochs=1, batch_size=16, distill=0.5))
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(SpecializeError, match="--pick-finetune-distill"):
            pick_finetune_recipe(1, 0.002, bad)


def test_a_checkpoint_without_distillation_resumes_and_one_with_other_distillation_is_refused(images, tmp_path):
    """Checkpoints written before the distill field existed have no such key: a plain recipe still matches them."""
    x, y = images
    assert "distill" not in FinetuneRecipe(epochs=1).to_dict()
    checkpoint = tmp_path / "pick.finetune.pt"
    teacher = ConstantTeacher(int(y.max()) + 1, 0)
    finetune(tiny_pick(), x, y, FinetuneRecipe(epochs=1, batch_size=16, distill=0.5), checkpoint=checkpoint,
             teacher=teacher)  # fmt: skip
    with pytest.raises(SpecializeError, match=r"belongs to another fine-tune \(recipe differ\)"):
        finetune(tiny_pick(), x, y, FinetuneRecipe(epochs=1, batch_size=16), checkpoint=checkpoint)


@pytest.mark.parametrize(
    "epochs, lr, needle",
    [
        (-1, 0.002, "--pick-finetune-epochs"),
        (float("nan"), 0.002, "--pick-finetune-epochs"),
        (1, 0, "--pick-finetune-lr"),
    ],
)
def test_bad_recipes_are_refused_naming_the_option(epochs, lr, needle):
    with pytest.raises(SpecializeError, match=needle):
        pick_finetune_recipe(epochs, lr)
    assert pick_finetune_recipe(0, 0.002) is None


def test_the_library_refuses_a_zero_learning_rate_too(deploy_run, tmp_path):
    with pytest.raises(SpecializeError, match="--pick-finetune-lr"):
        export_result(specialize(table=str(deploy_run / "table.json")), tmp_path / "m.onnx", pick_finetune_epochs=1,
                      pick_finetune_lr=0.0)  # fmt: skip
    assert not (tmp_path / "m.onnx").exists()


def test_export_measures_the_pick_before_and_after_and_records_it(deploy_run, synthetic_data, tmp_path):
    table = str(deploy_run / "table.json")
    plain = export_result(specialize(table=table), tmp_path / "plain.onnx", data=synthetic_data)
    tuned = export_result(specialize(table=table), tmp_path / "tuned.onnx", data=synthetic_data, pick_finetune_epochs=2)
    done = tuned.export["finetuned"]
    n_train = len(load_dataset(synthetic_data, image_size=16).train_labels)
    assert done["images"] == n_train and done["steps"] == round(2 * n_train / 32) and done["epochs"] == 2
    # before the fine-tune, the pick is the plain export, measured on the same images
    assert done["accuracy_before"] == pytest.approx(plain.export["measured_accuracy"])
    assert tuned.export["max_abs_diff"] < 1e-3  # the fine-tuned network is what the file computes
    meta = read_metadata(__import__("onnx").load(str(tmp_path / "tuned.onnx")))
    assert json.loads(meta["specialize.finetuned"])["steps"] == done["steps"]
    assert float(meta["specialize.measured_accuracy"]) == pytest.approx(tuned.export["measured_accuracy"], abs=1e-6)
    assert "specialize.finetuned" not in read_metadata(__import__("onnx").load(str(tmp_path / "plain.onnx")))
    assert not list(tmp_path.glob("*.finetune.pt"))  # the checkpoint goes once the file is written


def test_export_distills_from_the_largest_network_and_records_it(deploy_run, synthetic_data, tmp_path, monkeypatch):
    """The teacher is the supernet's largest architecture from the same weights, recalibrated, in eval mode."""
    import supernet.finetune as finetune_module

    seen = {}
    original = finetune_module.finetune

    def spy(module, *args, teacher=None, **kwargs):
        seen["teacher"] = teacher
        return original(module, *args, teacher=teacher, **kwargs)

    monkeypatch.setattr(finetune_module, "finetune", spy)
    table = str(deploy_run / "table.json")
    result = export_result(specialize(table=table), tmp_path / "kd.onnx", data=synthetic_data, pick_finetune_epochs=1,
                           pick_finetune_distill=0.5)  # fmt: skip
    teacher = seen["teacher"]
    assert not teacher.training and teacher.arch_string == str(load_table(table).space.largest_arch())
    assert result.export["finetuned"]["distill"] == 0.5
    meta = read_metadata(__import__("onnx").load(str(tmp_path / "kd.onnx")))
    assert json.loads(meta["specialize.finetuned"])["distill"] == 0.5


def export_with_finetune(table: str, output, data) -> list[str]:
    """The main command's arguments: search `table`, export to `output` after one epoch of the pick on `data`."""
    return ["--table", table, "--export", str(output), "--data", str(data), "--pick-finetune-epochs", "1"]


def test_export_refuses_a_checkpoint_it_did_not_write_and_writes_nothing(deploy_run, synthetic_data, tmp_path):
    table = str(deploy_run / "table.json")
    stray = tmp_path / "m.finetune.pt"
    data = load_dataset(synthetic_data, image_size=16)
    finetune(
        tiny_pick(), data.train_images, data.train_labels, FinetuneRecipe(epochs=1, batch_size=16), checkpoint=stray
    )
    got = runner.invoke(app, export_with_finetune(table, tmp_path / "m.onnx", synthetic_data))
    assert got.exit_code == 2 and "belongs to another fine-tune" in got.output, got.output
    assert stray.exists() and not (tmp_path / "m.onnx").exists()


def test_the_band_is_checked_against_the_pick_before_its_fine_tune(deploy_run):
    result = replace(specialize(table=str(deploy_run / "table.json")), predicted_accuracy=0.5)
    result = replace(result, predicted_accuracy_band=0.05)
    assert _misses(result, 0.9, None, {"accuracy_before": 0.52}) == []
    assert "before the pick's fine-tuning" in _misses(result, 0.52, None, {"accuracy_before": 0.9})[0]


def test_cli_refusals(deploy_run, synthetic_data, tmp_path):
    table = str(deploy_run / "table.json")
    cases = [
        ([], "--export"),  # a fine-tune without a file to write
        (["--export", str(tmp_path / "a.onnx"), "--pick-finetune-epochs", "-2"], "--pick-finetune-epochs"),
        (["--export", str(tmp_path / "b.onnx"), "--pick-finetune-lr", "0"], "--pick-finetune-lr"),
        (["--export", str(tmp_path / "b.onnx"), "--pick-finetune-distill", "2"], "--pick-finetune-distill"),
    ]
    for extra, needle in cases:
        args = ["--table", table, *(["--pick-finetune-epochs", "1"] if not extra else []), *extra]
        if "--pick-finetune-lr" in extra or "--pick-finetune-distill" in extra:
            args += ["--pick-finetune-epochs", "1"]
        got = runner.invoke(app, args)
        assert got.exit_code == 2 and needle in got.output, got.output
        assert not (tmp_path / "a.onnx").exists() and not (tmp_path / "b.onnx").exists()
    got = runner.invoke(
        app,
        [
            "export",
            "--arch",
            specialize(table=table).arch,
            "-o",
            str(tmp_path / "c.onnx"),
            "--space",
            "test-tiny",
            "--untrained",
            "--pick-finetune-epochs",
            "1",
        ],
    )
    assert got.exit_code == 2 and "trained weights" in got.output and not (tmp_path / "c.onnx").exists()


def test_without_training_images_here_the_fine_tune_asks_for_data(deploy_run, tmp_path):
    """As on a fresh clone of the embedded default: the shipped calibration images set batch norm, but 300 images
    are no training set; the refusal names --data, exit 2, nothing written."""
    from tests.test_deploy import _moved_run

    run = _moved_run(deploy_run, tmp_path, keep_calibration=True)
    got = runner.invoke(app, ["--table", str(run / "table.json"), "--export", str(tmp_path / "m.onnx"),
                              "--pick-finetune-epochs", "1"])  # fmt: skip
    assert got.exit_code == 2 and "needs the training images: give --data" in got.output, got.output
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.finetune.pt").exists()


def test_cli_export_prints_before_and_after(deploy_run, synthetic_data, tmp_path):
    table = str(deploy_run / "table.json")
    got = runner.invoke(app, export_with_finetune(table, tmp_path / "m.onnx", synthetic_data))
    assert got.exit_code == 0, got.output
    assert "for the pick as the supernet holds it, measured" in got.output and "after its fine-tune" in got.output
    assert "trained alone 1 epochs" in got.output
    steps = round(len(load_dataset(synthetic_data, image_size=16).train_labels) / 32)
    # off a terminal, progress is a log line at the first and the last step (and every 30 s between)
    assert f"fine-tuning the pick alone: step 1/{steps}, loss" in got.output
    assert f"fine-tuning the pick alone: step {steps}/{steps}, loss" in got.output and "min left" in got.output
