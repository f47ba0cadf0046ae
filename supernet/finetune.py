"""Fine-tuning one extracted sub-network alone: what once-for-all offers after specializing and NVIDIA ModelOpt does
after pruning, here as LP-FT: the classifier is first refitted as a linear probe on the pick's own features (the
table's was fitted on the largest network's), so the first steps do not push a mismatched head's gradients into the
body.

A PONAS table's sub-networks are never trained whole: the meta stage trains the largest architecture, the fine-tuning
stage each layer's candidates beside it, on the images the table does not hold out. Once the search has picked one,
the held-out images have done their work, so this trains the pick on every training image of the folder.

Recipe (measured on the 3-class folder of `benchmarks/own_data.py`, `benchmarks/pick_finetune.py`): SGD with
Nesterov momentum, a tenth of the steps warming up then cosine, gradients clipped to norm 1, batch 32, plain cross
entropy, training's crops and flips (`supernet.data.augment`). A network with frozen batch norm (`--batch-norm
frozen`) trains in eval mode: every batch norm keeps its statistics and dropout is off, as LP-FT of Lite0 alone does;
one with batch statistics trains in train mode. Batch norm is recalibrated afterwards by the export, as always.
The run checkpoints atomically and resumes to the weights an uninterrupted run would have (`finetune`).
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from specialize.errors import SpecializeError
from specialize.fileio import atomic_write_bytes
from supernet.bn import FrozenBatchNorm2d
from supernet.data import augment, to_tensor
from supernet.losses import distilled_loss
from supernet.probe import PROBE_IMAGES, PROBE_L2, fit_probe, pooled_features
from supernet.train_config import FinetuneRecipe


CHECKPOINT_SECONDS = 60.0  # a killed fine-tune loses at most this much


@dataclass(frozen=True)
class FinetuneReport:
    recipe: FinetuneRecipe
    images: int
    steps: int
    minutes: float
    batch_norm: str  # "frozen (eval mode)" or "batch statistics (train mode)"
    final_loss: float
    resumed_at_step: int = 0  # > 0: this run continued a checkpoint written at that step


def scheduled_lr(base: float, step: int, total: int, warmup: float, schedule: str = "cosine") -> float:
    """The learning rate at `step` of `total`: cosine from `base` (or `schedule` "step": a tenth at each third), under
    a linear warm-up over the first `warmup` share of the steps. Training's stages use it too."""
    if schedule == "step":
        lr = base * (0.1 ** (3 * step // max(total, 1)))
    else:
        lr = base * 0.5 * (1 + math.cos(math.pi * step / max(total, 1)))
    warm = math.ceil(warmup * total)
    return lr * min(1.0, (step + 1) / warm) if warm else lr


@torch.no_grad()
def refit_classifier(
    module: nn.Module, images: np.ndarray, labels: np.ndarray, resolution: int | None, seed: int = 0
) -> None:
    """LP-FT's first step for this network: its classifier refitted as a linear probe (`supernet.probe`, L2
    `PROBE_L2`) on its own pooled features of `images` (at most `PROBE_IMAGES` of them, drawn by `seed`) and their
    flips, the body frozen in eval mode. The table's
    classifier was fitted and trained on the largest network's features, not the pick's."""
    module.eval()
    if len(images) > PROBE_IMAGES:  # as training's probe: enough for 1,280 features, minutes not hours
        keep = np.sort(np.random.default_rng(seed).choice(len(images), PROBE_IMAGES, replace=False))
        images, labels = images[keep], labels[keep]
    size = resolution or images.shape[1]
    features = torch.cat([pooled_features(module.features, images, size, flip) for flip in (False, True)])
    targets = torch.from_numpy(np.concatenate([labels, labels])).long()
    probe = fit_probe(features, targets, module.classifier.out_features, PROBE_L2)
    module.classifier.weight.copy_(probe.weight)
    module.classifier.bias.copy_(probe.bias)


def has_frozen_batch_norm(module: nn.Module) -> bool:
    return any(isinstance(m, FrozenBatchNorm2d) for m in module.modules())


def finetune(
    module: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    recipe: FinetuneRecipe,
    resolution: int | None = None,
    progress: Callable[[int, int, float], None] = lambda step, total, loss: None,
    checkpoint: Path | None = None,
    identity: dict | None = None,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
    teacher: nn.Module | None = None,
) -> FinetuneReport:
    """Train `module` (a network from `Supernet.extract`, or any classifier of [N, 3, R, R] images in [0, 1] with
    `features` and `classifier`) on uint8 [N, H, W, 3] `images` for `recipe.epochs`, in place, its classifier first
    refitted as a probe where `recipe.probe` says so. Deterministic for a seed: the batch order and each batch's
    augmentation come from one generator.

    With `checkpoint`, the whole state (weights, optimizer, step, generators) is written there atomically every
    `checkpoint_seconds` and at the end; a run that finds one of the same `identity` resumes from it and ends with
    exactly the weights an uninterrupted run would have. One of another identity is refused, not overwritten.

    With `recipe.distill` > 0, that share of the loss is cross entropy against `teacher`'s probabilities on the same
    augmented batch (the teacher in eval mode, no gradient): once-for-all's knowledge distillation from the largest
    network, which it uses to fine-tune a specialized sub-network."""
    if len(images) == 0:
        raise SpecializeError("fine-tuning got no training images")
    if recipe.distill and teacher is None:
        raise SpecializeError("fine-tuning with distillation needs a teacher network")
    recipe = recipe.with_default_lr(has_frozen_batch_norm(module))
    identity = {**(identity or {}), "recipe": recipe.to_dict(), "images": len(images), "resolution": resolution}
    saved = read_finetune_checkpoint(checkpoint, identity) if checkpoint is not None and checkpoint.exists() else None
    with torch.random.fork_rng():  # the probe's initial guess and dropout draw from the recipe's seed alone
        torch.manual_seed(recipe.seed)
        run = _Run(module, recipe, len(images), checkpoint, identity, checkpoint_seconds, teacher)
        if saved is not None:
            run.restore(saved)
        elif recipe.probe:
            refit_classifier(module, images, labels, resolution, recipe.seed)
        return run.train(images, labels, resolution, progress)


def read_finetune_checkpoint(path: Path, identity: dict) -> dict:
    """A fine-tune checkpoint of this very fine-tune (`identity`: architecture, weights, data, recipe), read
    weights-only; another one is refused, naming the file and what differs."""
    from supernet.checkpoint import read_torch_file

    payload = read_torch_file(path, "pick fine-tune checkpoint")
    if not isinstance(payload, dict) or not isinstance(payload.get("identity"), str):
        raise SpecializeError(f"pick fine-tune checkpoint {path} has no identity field: delete it to start over")
    theirs, mine = json.loads(payload["identity"]), json.loads(json.dumps(identity))
    if theirs != mine:
        differ = sorted(k for k in set(theirs) | set(mine) if theirs.get(k) != mine.get(k))
        raise SpecializeError(
            f"pick fine-tune checkpoint {path} belongs to another fine-tune ({', '.join(differ)} differ); delete it "
            "to start over, or give another output file"
        )
    return payload


class _Run:
    """One fine-tune's state: what a checkpoint holds and a resume restores."""

    def __init__(
        self,
        module: nn.Module,
        recipe: FinetuneRecipe,
        n_images: int,
        checkpoint: Path | None,
        identity: dict,
        checkpoint_seconds: float,
        teacher: nn.Module | None = None,
    ):
        self.module, self.recipe, self.checkpoint, self.identity = module, recipe, checkpoint, identity
        self.teacher = teacher.eval() if teacher is not None and recipe.distill else None
        self.checkpoint_seconds = checkpoint_seconds
        self.batch = min(recipe.batch_size, n_images)
        self.steps = max(1, round(recipe.epochs * n_images / self.batch))
        self.generator = torch.Generator().manual_seed(recipe.seed)
        self.optimizer = torch.optim.SGD(
            module.parameters(),
            lr=recipe.lr,
            momentum=recipe.momentum,
            weight_decay=recipe.weight_decay,
            nesterov=recipe.momentum > 0,
        )
        self.order = torch.empty(0, dtype=torch.long)
        self.step, self.loss = 0, float("nan")
        self.seconds = 0.0  # training wall time, summed over resumes

    def save(self) -> None:
        if self.checkpoint is None:
            return
        payload = {
            "identity": json.dumps(self.identity, sort_keys=True),
            "step": self.step,
            "loss": self.loss,
            "seconds": self.seconds,
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "rng": torch.get_rng_state(),
            "order": self.order,
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        atomic_write_bytes(self.checkpoint, buffer.getvalue())

    def restore(self, payload: dict) -> None:
        self.module.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.generator.set_state(payload["generator"])
        torch.set_rng_state(payload["rng"])
        self.order, self.step, self.loss = payload["order"], int(payload["step"]), float(payload["loss"])
        self.seconds = float(payload.get("seconds", 0.0))  # absent in checkpoints of 2026-12-07

    def train(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        resolution: int | None,
        progress: Callable[[int, int, float], None],
    ) -> FinetuneReport:
        frozen = has_frozen_batch_norm(self.module)
        self.module.train(not frozen)
        tick = last_save = time.time()
        resumed_at = self.step
        while self.step < self.steps:
            self.loss = self.train_step(images, labels, resolution)
            self.step += 1
            progress(self.step, self.steps, self.loss)
            now = time.time()
            self.seconds, tick = self.seconds + now - tick, now
            if now - last_save >= self.checkpoint_seconds:
                self.save()
                last_save = time.time()
        self.save()
        self.module.eval()
        return FinetuneReport(
            recipe=self.recipe,
            images=len(images),
            steps=self.steps,
            minutes=self.seconds / 60,
            batch_norm="frozen (eval mode)" if frozen else "batch statistics (train mode)",
            final_loss=self.loss,
            resumed_at_step=resumed_at,
        )

    def train_step(self, images: np.ndarray, labels: np.ndarray, resolution: int | None) -> float:
        recipe, module = self.recipe, self.module
        if len(self.order) < self.batch:
            self.order = torch.cat([self.order, torch.randperm(len(images), generator=self.generator)])
        index, self.order = self.order[: self.batch].numpy(), self.order[self.batch :]
        x = to_tensor(images[index], resolution)
        x = augment(x, self.generator, max(4, x.shape[-1] // 8)).contiguous(memory_format=torch.channels_last)
        for group in self.optimizer.param_groups:
            group["lr"] = scheduled_lr(recipe.lr, self.step, self.steps, recipe.warmup)
        soft = None
        if self.teacher is not None:
            with torch.no_grad():
                soft = F.softmax(self.teacher(x), dim=1)
        labels_t = torch.from_numpy(labels[index]).long()
        loss = distilled_loss(module(x), labels_t, soft, recipe.distill, recipe.label_smoothing)
        if not torch.isfinite(loss):
            raise SpecializeError(
                f"fine-tuning diverged at step {self.step + 1}/{self.steps} (loss {loss.item()}); lower the learning "
                f"rate (now {recipe.lr:g}, --pick-finetune-lr)"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.clip_grad:
            torch.nn.utils.clip_grad_norm_(module.parameters(), recipe.clip_grad)
        self.optimizer.step()
        return loss.item()
