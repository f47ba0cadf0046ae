"""Shared fixtures: a synthetic image folder and a table made by the project's own training command.

No figure in the tests is typed in: tables come from `specialize train` on tiny synthetic data.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# One thread per process: on 2 cores, oversubscribed torch threads run 10-100x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Tiny settings: the whole two-stage run takes seconds on 2 cores.
TINY_TRAIN_ARGS = [
    "--space",
    "cifar10",
    "--width",
    "0.25",
    "--resolution",
    "16",
    "--epochs",
    "2",
    "--val-per-class",
    "2",
    "--finetune-epochs",
    "0.5",
    "--batch-size",
    "16",
    "--calib-images",
    "20",
    "--seed",
    "0",
    "--picks",  # the CLI's last step; tiny_config (the library's training) has no such setting
    "6",
]


def _tiny_space():
    """A full-width space small enough to train in seconds: what the deploy-path tests export."""
    from specialize.space import SearchSpace, _plan

    return SearchSpace(
        name="test-tiny",
        resolution=16,
        num_classes=10,
        stem_channels=8,
        stem_stride=1,
        first_block_channels=8,
        layers=_plan(8, [(16, 1, 2), (16, 1, 1), (24, 1, 2)]),
        head_channels=64,
        dropout=0.0,
    )


def _tiny_depth_space():
    """test-tiny's geometry with elastic depth: `skip` allowed on the two middle layers (16 -> 16, stride 1) only."""
    from dataclasses import replace

    from specialize.space import _plan

    return replace(
        _tiny_space(),
        name="test-tiny-depth",
        layers=_plan(8, [(16, 1, 2), (16, 2, 1), (24, 1, 2)]),
        kernels=(3, 5),
        skip=True,
    )


def _register_tiny_space() -> None:
    from specialize.space import register_space

    register_space(_tiny_space)
    register_space(_tiny_depth_space)


_register_tiny_space()


@pytest.fixture(scope="session")
def deploy_run(tmp_path_factory: pytest.TempPathFactory, synthetic_data: Path) -> Path:
    """A full-width (not proxy) training run of space test-tiny on synthetic data: table, weights, calibration."""
    from supernet.train import TrainConfig, train

    out = tmp_path_factory.mktemp("deploy-run")
    cfg = TrainConfig(
        space="test-tiny",
        data=str(synthetic_data),
        epochs=3,
        val_per_class=2,
        finetune_epochs=0.5,
        batch_size=16,
        calib_images=20,
        spread_samples=10,
        seed=0,
    )
    train(cfg, out)
    return out


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["SPECIALIZE_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from supernet.data import make_synthetic_folder

    return make_synthetic_folder(
        tmp_path_factory.mktemp("data") / "synthetic", classes=10, train_per_class=8, test_per_class=3, size=16
    )


def tiny_config(data: Path):
    from supernet.train import TrainConfig

    args = dict(zip(TINY_TRAIN_ARGS[::2], TINY_TRAIN_ARGS[1::2]))
    return TrainConfig(
        space=args["--space"],
        data=str(data),
        width=float(args["--width"]),
        resolution=int(args["--resolution"]),
        epochs=int(args["--epochs"]),
        val_per_class=int(args["--val-per-class"]),
        finetune_epochs=float(args["--finetune-epochs"]),
        batch_size=int(args["--batch-size"]),
        calib_images=int(args["--calib-images"]),
        seed=int(args["--seed"]),
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, synthetic_data: Path) -> Path:
    """Run directory of an uninterrupted tiny training run (table.json, weights.pt, log.jsonl)."""
    from supernet.train import train

    out = tmp_path_factory.mktemp("tiny-run")
    train(tiny_config(synthetic_data), out)
    return out


@pytest.fixture(scope="session")
def tiny_table(tiny_run: Path) -> Path:
    """Path of an accuracy table (space cifar10) produced by the training command on synthetic data."""
    return tiny_run / "table.json"
