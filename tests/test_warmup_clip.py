"""LP-FT's guards in training: the learning rate's linear warm-up and gradient clipping, at both stages."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import tiny_config


def test_warmup_rises_linearly_then_follows_the_schedule() -> None:
    from supernet.train import TrainConfig, _lr_at

    for schedule in ("cosine", "step"):
        plain = TrainConfig(space="cifar10", data="d", schedule=schedule)
        warm = replace(plain, warmup=0.1)
        for step in range(100):
            factor = min(1.0, (step + 1) / 10)
            assert _lr_at(warm, 0.5, step, 100) == pytest.approx(_lr_at(plain, 0.5, step, 100) * factor)
    # a stage shorter than one warm-up step still warms up over one step, i.e. not at all
    assert _lr_at(warm, 0.5, 0, 3) == _lr_at(plain, 0.5, 0, 3)


def _moved(trainer, run_stage) -> tuple[float, int]:
    """How far (L2) one stage moved the parameters under plain SGD, and its steps."""
    before = [p.detach().clone() for p in trainer.net.parameters()]
    opt = torch.optim.SGD(trainer.net.parameters(), lr=1.0)  # no momentum, no decay: an update is lr x gradient
    steps = run_stage(trainer, opt)
    moved = torch.cat([(p.detach() - b).flatten() for p, b in zip(trainer.net.parameters(), before)])
    return float(moved.norm()), steps


def _meta(trainer, opt) -> int:
    trainer.meta_epoch(opt, 0)
    return trainer.steps_per_epoch()


def _finetune(trainer, opt) -> int:
    trainer.finetune_layer(opt, 0, [])
    return max(1, round(trainer.steps_per_epoch() * trainer.cfg.finetune_epochs))


@pytest.mark.parametrize("stage", [_meta, _finetune], ids=["meta", "finetune"])
def test_clip_grad_bounds_every_step_of_both_stages(synthetic_data: Path, tmp_path: Path, stage) -> None:
    from supernet.train import Trainer

    clip = 1e-4
    cfg = replace(tiny_config(synthetic_data), clip_grad=clip, finetune_epochs=1.0)
    clipped, steps = _moved(Trainer(cfg, tmp_path / "a"), stage)
    lr = max(cfg.with_recipe().lr, cfg.with_recipe().finetune_lr)
    assert 0 < clipped <= steps * lr * clip * 1.001
    free, _ = _moved(Trainer(replace(cfg, clip_grad=0.0), tmp_path / "b"), stage)
    assert free > 10 * steps * lr * clip  # the bound above binds: unclipped gradients are far larger
