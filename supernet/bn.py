"""Batch norm: recalibration (inherited running statistics are wrong for smaller candidates), and the frozen
statistics of `SearchSpace.batch_norm == "frozen"`."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """Batch norm that normalizes by its running statistics in training too, and that recalibration leaves alone:
    a fixed per-channel affine map whose scale and shift still train. Same state dict as `nn.BatchNorm2d`."""

    def train(self, mode: bool = True) -> "FrozenBatchNorm2d":
        return super().train(False)


def adapted_norms(net: nn.Module) -> list[_BatchNorm]:
    """The batch norm layers a frozen space still adapts: the last searchable layer's and the head's (of a
    `Supernet` or a `StaticNet`, which both have `blocks` and `head`)."""
    return [m for part in (net.blocks[-1], net.head) for m in part.modules() if isinstance(m, _BatchNorm)]


def freeze_batch_norm(net: nn.Module) -> None:
    """Make every batch norm layer of a freshly built network but `adapted_norms` a `FrozenBatchNorm2d` (in place,
    before weights are loaded: the new layers start at their defaults)."""
    adapted = {id(m) for m in adapted_norms(net)}
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.BatchNorm2d and id(child) not in adapted:
                setattr(parent, name, FrozenBatchNorm2d(child.num_features, child.eps, child.momentum))


def is_recalibrated(module: nn.Module) -> bool:
    return isinstance(module, _BatchNorm) and not isinstance(module, FrozenBatchNorm2d)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """Reset every BN layer's running stats and re-estimate them (cumulative average) on `batches`; frozen layers
    (`FrozenBatchNorm2d`) keep theirs.

    Works on static networks (`Supernet.extract(arch)` first). The model is left in eval mode.
    """
    bns = [m for m in model.modules() if is_recalibrated(m)]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over all recalibration batches
    model.eval()
    for bn in bns:
        bn.train()
    for x in batches if bns else ():
        model(x)
    for bn, momentum in zip(bns, saved):
        bn.momentum = momentum
    model.eval()
