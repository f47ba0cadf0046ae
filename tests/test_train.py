"""Offline layer: data reader errors, the accuracy table a training run writes, resume after kill -9, torchrun."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from conftest import TINY_TRAIN_ARGS, tiny_config
from specialize.errors import SpecializeError
from specialize.fileio import sha256_file
from specialize.table import load_table
from supernet.data import balanced_split, load_dataset, make_synthetic_folder

SPECIALIZE = [sys.executable, "-m", "cli.main"]
ROOT = Path(__file__).resolve().parent.parent


# -- data ------------------------------------------------------------------------------------
def test_reads_folder_and_tar_alike(tmp_path: Path) -> None:
    root = make_synthetic_folder(tmp_path / "ds", classes=3, train_per_class=4, test_per_class=2, size=8)
    archive = tmp_path / "ds.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="ds")
    a, b = load_dataset(root), load_dataset(archive)
    assert a.classes == b.classes == ("class0", "class1", "class2")
    assert a.train_images.shape == (12, 8, 8, 3) and a.test_images.shape == (6, 8, 8, 3)
    np.testing.assert_array_equal(a.train_images, b.train_images)
    np.testing.assert_array_equal(a.test_labels, b.test_labels)
    np.testing.assert_array_equal(load_dataset(root).train_images, a.train_images)  # second read: from the cache


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("empty", "is empty"),
        ("empty_class", "holds no images"),
        ("unreadable", "unreadable image"),
        ("mismatch", "class sets differ"),
    ],
)
def test_bad_folders_are_clear_errors(tmp_path: Path, breakage: str, message: str) -> None:
    root = tmp_path / "ds"
    if breakage == "empty":
        root.mkdir()
    else:
        make_synthetic_folder(root, classes=2, train_per_class=2, test_per_class=1, size=8)
    if breakage == "empty_class":
        (root / "train" / "class2").mkdir()
        (root / "test" / "class2").mkdir()
    if breakage == "unreadable":
        (root / "train" / "class0" / "broken.jpg").write_bytes(b"not an image")
    if breakage == "mismatch":
        shutil.rmtree(root / "test" / "class1")
    with pytest.raises(SpecializeError, match=message) as info:
        load_dataset(root, cache=False)
    if breakage == "unreadable":
        assert "broken.jpg" in str(info.value)


def test_balanced_split_is_seeded_and_balanced() -> None:
    labels = np.repeat(np.arange(4), 10)
    rest, held = balanced_split(labels, 3, seed=5)
    assert np.bincount(labels[held]).tolist() == [3, 3, 3, 3]
    assert len(np.intersect1d(rest, held)) == 0 and len(rest) + len(held) == 40
    np.testing.assert_array_equal(held, balanced_split(labels, 3, seed=5)[1])


# -- the table a run writes --------------------------------------------------------------------
def test_training_writes_a_complete_table(tiny_run: Path) -> None:
    table = load_table(tiny_run / "table.json")
    space = table.space
    assert table.accuracy.shape == (space.num_layers, space.num_candidates)
    assert np.allclose(table.loss.max(axis=1), 0) and (table.loss <= 0).all()
    chosen = space.parse_arch(table.best_arch).indices  # each layer's most accurate block (ties: fewer MACs)
    assert all(table.accuracy[layer, i] == table.accuracy[layer].max() for layer, i in enumerate(chosen))
    assert table.results["accuracy_fit"]["split"] == "fit" and prov_counts(table)["fit"] == 10
    assert table.trained_space.width_multiplier == 0.25 and table.trained_space.base_space == "cifar10"
    assert table.proxy["width"] == 0.25 and table.proxy["resolution"] == 16
    assert sha256_file(table.weights_path()) == table.weights["sha256"]
    payload = torch.load(table.weights_path(), weights_only=True)
    assert payload["fingerprint"] == table.trained_space.fingerprint
    prov = table.provenance
    assert prov["settings"]["data_counts"]["validation"] == 20
    assert {"command", "machine", "versions", "date"} <= set(prov)
    assert {"meta", "finetune"} == set(table.results["wall_seconds"])
    events = [json.loads(line)["event"] for line in (tiny_run / "log.jsonl").read_text().splitlines()]
    assert events.count("layer") == space.num_layers and events[-1] == "done"


def prov_counts(table) -> dict:
    return table.provenance["settings"]["data_counts"]


def test_table_show_json(tiny_table: Path) -> None:
    result = CliRunner().invoke(app, ["table", "show", "--table", str(tiny_table), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"space", "fingerprint", "accuracy", "loss"} <= set(data)
    assert len(data["accuracy"]) == 12 and len(data["loss"][0]) == 12
    assert data["prediction_fit"] == data["random_subnetwork_fit"] and data["prediction_fit"]["split"] == "fit"
    shown = CliRunner().invoke(app, ["table", "show", "--table", str(tiny_table)])
    assert shown.exit_code == 0 and "best architecture" in shown.output
    assert "fit over 31 random sub-networks (fit split, 10 images)" in " ".join(shown.output.split())


def test_table_validate_json(tiny_table: Path, synthetic_data: Path, tmp_path: Path) -> None:
    plot = tmp_path / "scatter.png"
    result = CliRunner().invoke(
        app,
        [
            "table",
            "validate",
            "--table",
            str(tiny_table),
            "--data",
            str(synthetic_data),
            "--samples",
            "4",
            "--json",
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{") :])
    assert {"kendall_tau", "spearman_rho", "samples"} <= set(data) and len(data["samples"]) == 4
    assert {"arch", "predicted", "accuracy"} <= set(data["samples"][0])
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_corrupt_table_names_file_and_field(tmp_path: Path, tiny_table: Path) -> None:
    data = json.loads(tiny_table.read_text())
    data["accuracy"] = data["accuracy"][:-1]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result = CliRunner().invoke(app, ["table", "show", "--table", str(bad)])
    assert result.exit_code == 2 and "bad.json" in result.output and "'accuracy'" in result.output
    assert "Traceback" not in result.output


def test_train_bad_input_exits_2(tmp_path: Path, synthetic_data: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(
        app, ["train", "--space", "cifar10", "--data", str(tmp_path / "nope"), "-o", str(tmp_path / "r")]
    )
    assert missing.exit_code == 2 and "does not exist" in missing.output
    unknown = runner.invoke(app, ["train", "--space", "nope", "--data", str(synthetic_data), "-o", str(tmp_path / "r")])
    assert unknown.exit_code == 2 and "cifar10" in unknown.output
    proxy = runner.invoke(
        app, ["train", "--space", "cifar10", "--data", str(synthetic_data), "-o", str(tmp_path / "r"), "--width", "2"]
    )
    assert proxy.exit_code == 2 and "--width" in proxy.output


# -- long runs lose nothing ------------------------------------------------------------------------
def _train_command(data: Path, out: Path, *extra: str) -> list[str]:
    return SPECIALIZE + ["train", "--data", str(data), "-o", str(out), *TINY_TRAIN_ARGS, *extra]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_resume_after_kill_equals_uninterrupted_run(tmp_path: Path, synthetic_data: Path, tiny_run: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        _train_command(synthetic_data, out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = out / "log.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # kill -9 in the middle of fine-tuning
        if log.is_file() and log.read_text().count('"event": "layer"') >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "table.json").exists()
    resumed = subprocess.run(
        _train_command(synthetic_data, out, "--resume"), env=_env(), capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    a, b = load_table(out / "table.json"), load_table(tiny_run / "table.json")
    np.testing.assert_array_equal(a.accuracy, b.accuracy)
    assert a.best_arch == b.best_arch
    assert a.prediction_fit is a.pick_fit and a.pick_fit["split"] == "fit" and a.pick_fit["samples"] >= 3
    assert f"accuracy fit over {a.pick_fit['samples']} search answers" in " ".join(resumed.stdout.split())


def test_existing_run_without_resume_is_refused(tmp_path: Path, tiny_run: Path, synthetic_data: Path) -> None:
    before = sorted(p.name for p in tiny_run.iterdir())
    result = CliRunner().invoke(app, ["train", "--data", str(synthetic_data), "-o", str(tiny_run), *TINY_TRAIN_ARGS])
    assert result.exit_code == 2 and "--resume" in result.output
    assert sorted(p.name for p in tiny_run.iterdir()) == before  # no .lock left in the finished run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(tmp_path: Path, synthetic_data: Path) -> None:
    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        "-m",
        "cli.main",
        "train",
        "--data",
        str(synthetic_data),
        "-o",
        str(out),
        *TINY_TRAIN_ARGS,
        "--threads",
        "1",
    ]
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    table = load_table(out / "table.json")
    assert table.provenance["settings"]["world_size"] == 2
    assert table.provenance["settings"]["data_parallel"] == "DistributedDataParallel (gloo)"
    assert table.accuracy.shape == (12, 12)
    assert table.pick_fit["samples"] >= 3  # the main process alone fitted on the search's answers
    assert " ".join(result.stdout.split()).count(f"accuracy fit over {table.pick_fit['samples']} search answers") == 1


def test_candidates_per_pass_gives_the_same_gradient(synthetic_data: Path) -> None:
    """Fewer candidates per forward (less memory) recomputes the prefix but sums the same gradient."""
    from supernet.train import Trainer

    trainer = Trainer(tiny_config(synthetic_data), synthetic_data.parent / "unused-run")
    space, layer = trainer.space, 4
    chosen, suffix = [space.largest] * layer, [space.largest] * (space.num_layers - layer - 1)
    x, y = next(trainer.batches(20, 0))
    grads = []
    for per_pass in (None, 5, 1):
        trainer.cfg.candidates_per_pass = per_pass
        trainer.net.zero_grad(set_to_none=True)
        torch.manual_seed(0)
        trainer.fairness_step(x, y, chosen, suffix)
        grads.append(torch.cat([p.grad.flatten() for p in trainer.net.parameters() if p.grad is not None]))
    for other in grads[1:]:
        torch.testing.assert_close(other, grads[0], rtol=1e-3, atol=1e-5)


def test_a_finished_run_leaves_no_lock_file(tmp_path: Path, synthetic_data: Path) -> None:
    from supernet.train import TrainConfig, train

    cfg = TrainConfig(space="test-tiny", data=str(synthetic_data), epochs=1, val_per_class=2, finetune_epochs=0.1,
                      batch_size=16, calib_images=20, spread_samples=3)  # fmt: skip
    train(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "table.json").is_file() and not (tmp_path / "run" / ".lock").exists()


def test_training_log_lines_carry_an_eta() -> None:
    from rich.console import Console
    from rich.progress import Progress

    from cli.train_cmd import ProgressReporter

    console = Console(record=True, force_terminal=False, width=200)
    with Progress(console=console) as progress:
        report = ProgressReporter(progress)
        for step in (1, 25, 50):
            report({"event": "step", "stage": "meta", "epoch": 0, "step": step, "steps": 100, "loss": 1.0})
    assert "meta epoch 1: step 50/100, loss 1.000, ETA" in console.export_text()


def test_spread_lines_name_the_split_they_were_measured_on() -> None:
    from rich.console import Console
    from rich.progress import Progress

    from cli.train_cmd import ProgressReporter

    console = Console(record=True, force_terminal=False, width=200)
    with Progress(console=console) as progress:
        report = ProgressReporter(progress)
        report({"event": "eval", "stage": "spread", "index": 1, "count": 2, "accuracy": 0.5, "split": "fit"})
        report({"event": "eval", "stage": "spread", "index": 2, "count": 2, "accuracy": 0.5})  # an older log
    text = console.export_text()
    assert "sub-network 1/2 fit accuracy 50.00%" in text and "sub-network 2/2 validation accuracy 50.00%" in text


def test_candidates_per_pass_follows_the_memory_budget(synthetic_data: Path, monkeypatch) -> None:
    """Without --candidates-per-pass, a pass holds as many candidates as the activation budget allows: all of them
    on a small network, fewer where each holds more (an early layer, a bigger batch), never fewer than one, and the
    note says so once per layer."""
    from supernet import train as train_module
    from supernet.train import Trainer, training_activation_bytes

    notes = []
    trainer = Trainer(
        tiny_config(synthetic_data), synthetic_data.parent / "unused-run", report=lambda e: notes.append(e)
    )
    space = trainer.trained_space
    assert trainer.candidates_per_pass(0, 12, 16) == 12 and not [n for n in notes if n.get("event") == "note"]
    early, late = training_activation_bytes(space, 0), training_activation_bytes(space, space.num_layers - 1)
    assert early > late > 0
    trainer._per_pass.clear()
    monkeypatch.setattr(train_module, "activation_budget", lambda: 3.5 * 16 * early)
    assert trainer.candidates_per_pass(0, 12, 16) == 3
    assert trainer.candidates_per_pass(space.num_layers - 1, 12, 16) == min(12, int(3.5 * 16 * early // (16 * late)))
    monkeypatch.setattr(train_module, "activation_budget", lambda: 1.0)
    assert trainer.candidates_per_pass(1, 12, 16) == 1  # at least one, whatever the budget
    said = [n["text"] for n in notes if n.get("event") == "note"]
    assert len(said) == 2 and said[0].startswith("layer 1: 3 of 12 candidates per pass")


def test_the_fit_split_is_apart_from_training_validation_and_calibration(synthetic_data: Path) -> None:
    from dataclasses import replace

    from supernet.train import held_out_split

    labels = load_dataset(synthetic_data).train_labels
    cfg = tiny_config(synthetic_data)
    rest, validation, calibration, fit = held_out_split(labels, cfg)
    assert len(fit) == 10 and sorted(np.bincount(labels[fit])) == [1] * 10
    assert not set(fit) & (set(rest) | set(validation)) and set(calibration) <= set(rest)
    old_rest, old_validation, _, none = held_out_split(labels, replace(cfg, fit_images=0))
    assert len(none) == 0 and sorted(old_rest) == sorted([*rest, *fit]) and list(old_validation) == list(validation)


def test_settings_newer_than_a_checkpoint_take_the_values_runs_had_before() -> None:
    from supernet.train import TrainConfig

    cfg = TrainConfig(space="cifar10", data="d", resolutions=(64,), warmup=0.1, clip_grad=1.0)
    old = cfg.as_checkpointed({"space": "cifar10", "data": "d"})
    assert old.fit_images == 0 and old.resolutions == () and old.warmup == 0 and old.clip_grad == 0
    assert cfg.as_checkpointed({"fit_images": 2500, "resolutions": (64,), "warmup": 0.1, "clip_grad": 1.0}) == cfg
    restored = TrainConfig.from_settings({"space": "cifar10", "data": "d", "resolutions": [64, 80], "new_key": 1})
    assert restored.resolutions == (64, 80) and restored.fit_images == 0
