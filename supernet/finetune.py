"""Fine-tuning one extracted sub-network alone: what once-for-all offers after specializing and NVIDIA ModelOpt does
after pruning, here as LP-FT (the classifier already fits the data, so the first steps do not push random-head
gradients into the pretrained body).

A PONAS table's sub-networks are never trained whole: the meta stage trains the largest architecture, the fine-tuning
stage each layer's candidates beside it, on the images the table does not hold out. Once the search has picked one,
the held-out images have done their work, so this trains the pick on every training image of the folder.

Recipe (measured on the 3-class folder of `benchmarks/own_data.py`, `benchmarks/pick_finetune.py`): SGD with
Nesterov momentum, a tenth of the steps warming up then cosine, gradients clipped to norm 1, batch 32, plain cross
entropy, training's crops and flips (`supernet.data.augment`). A network with frozen batch norm (`--batch-norm
frozen`) trains in eval mode: every batch norm keeps its statistics and dropout is off, as LP-FT of Lite0 alone does;
one with batch statistics trains in train mode. Batch norm is recalibrated afterwards by the export, as always.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from specialize.errors import SpecializeError
from supernet.bn import FrozenBatchNorm2d
from supernet.data import augment, to_tensor
from supernet.probe import PROBE_L2, fit_probe, pooled_features
from supernet.train_config import FinetuneRecipe


@dataclass(frozen=True)
class FinetuneReport:
    recipe: FinetuneRecipe
    images: int
    steps: int
    minutes: float
    batch_norm: str  # "frozen (eval mode)" or "batch statistics (train mode)"
    final_loss: float


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
def refit_classifier(module: nn.Module, images: np.ndarray, labels: np.ndarray, resolution: int | None) -> None:
    """LP-FT's first step for this network: its classifier refitted as a linear probe (`supernet.probe`, L2
    `PROBE_L2`) on its own pooled features of `images` and their flips, the body frozen in eval mode. The table's
    classifier was fitted and trained on the largest network's features, not the pick's."""
    module.eval()
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
) -> FinetuneReport:
    """Train `module` (a network from `Supernet.extract`, or any classifier of [N, 3, R, R] images in [0, 1] with
    `features` and `classifier`) on uint8 [N, H, W, 3] `images` for `recipe.epochs`, in place, its classifier first
    refitted as a probe where `recipe.probe` says so. Deterministic for a seed: the batch order and each batch's
    augmentation come from one generator."""
    if len(images) == 0:
        raise SpecializeError("fine-tuning got no training images")
    with torch.random.fork_rng():  # the probe's initial guess and dropout draw from the recipe's seed alone
        torch.manual_seed(recipe.seed)
        return _finetune(module, images, labels, recipe, resolution, progress)


def _finetune(
    module: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    recipe: FinetuneRecipe,
    resolution: int | None,
    progress: Callable[[int, int, float], None],
) -> FinetuneReport:
    if recipe.probe:
        refit_classifier(module, images, labels, resolution)
    frozen = has_frozen_batch_norm(module)
    batch = min(recipe.batch_size, len(images))
    steps = max(1, round(recipe.epochs * len(images) / batch))
    generator = torch.Generator().manual_seed(recipe.seed)
    optimizer = torch.optim.SGD(
        module.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=recipe.momentum > 0,
    )
    module.train(not frozen)
    order = torch.empty(0, dtype=torch.long)
    start, loss = time.time(), torch.tensor(float("nan"))
    for step in range(steps):
        if len(order) < batch:
            order = torch.cat([order, torch.randperm(len(images), generator=generator)])
        index, order = order[:batch].numpy(), order[batch:]
        x = to_tensor(images[index], resolution)
        x = augment(x, generator, max(4, x.shape[-1] // 8)).contiguous(memory_format=torch.channels_last)
        for group in optimizer.param_groups:
            group["lr"] = scheduled_lr(recipe.lr, step, steps, recipe.warmup)
        loss = F.cross_entropy(module(x), torch.from_numpy(labels[index]).long())
        if not torch.isfinite(loss):
            raise SpecializeError(
                f"fine-tuning diverged at step {step + 1}/{steps} (loss {loss.item()}); lower the learning rate "
                f"(now {recipe.lr:g}, --pick-finetune-lr)"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.clip_grad:
            torch.nn.utils.clip_grad_norm_(module.parameters(), recipe.clip_grad)
        optimizer.step()
        progress(step + 1, steps, loss.item())
    module.eval()
    return FinetuneReport(
        recipe=recipe,
        images=len(images),
        steps=steps,
        minutes=(time.time() - start) / 60,
        batch_norm="frozen (eval mode)" if frozen else "batch statistics (train mode)",
        final_loss=float(loss.item()),
    )
