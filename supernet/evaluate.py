"""The one evaluator of sub-network accuracy: extract from the supernet, recalibrate batch norm, count
correct top-1 predictions. Training (table entries, the accuracy fit), table validation, the offline
search strategies and export all call it."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from specialize.space import Architecture
from supernet.bn import recalibrate_bn
from supernet.elastic import Supernet

EVAL_BATCH = 500


@torch.no_grad()
def top1_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = EVAL_BATCH) -> float:
    """Share of `x` (float [N, 3, R, R] in [0, 1]) that `model` classifies as `y`."""
    model.eval()
    correct = 0
    for i in range(0, len(y), batch):
        xb = x[i : i + batch].contiguous(memory_format=torch.channels_last)
        correct += int((model(xb).argmax(1) == y[i : i + batch]).sum())
    return correct / max(len(y), 1)


@torch.no_grad()
def subnet_accuracy(
    net: Supernet, arch: Architecture, x: torch.Tensor, y: torch.Tensor, calibration: Sequence[torch.Tensor]
) -> float:
    """Accuracy of `arch` with inherited weights after batch-norm recalibration on `calibration`."""
    sub = net.extract(net.space.arch_from_indices(arch.indices)).to(memory_format=torch.channels_last)
    recalibrate_bn(sub, [b.contiguous(memory_format=torch.channels_last) for b in calibration])
    return top1_accuracy(sub, x, y)
