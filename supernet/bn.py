"""Batch-norm recalibration: inherited running statistics are wrong for smaller candidates."""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor], forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
    """Reset every BN layer's running stats and re-estimate them (cumulative average) on `batches`.

    `forward` runs one batch through the model (default: `model(x)`); for a supernet pass
    `lambda x: supernet(x, arch)`. The model is left in eval mode.
    """
    forward = forward or model
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(bn.momentum, bn.training) for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over all recalibration batches
    model.eval()
    for bn in bns:
        bn.train()
    for x in batches:
        forward(x)
    for bn, (momentum, _) in zip(bns, saved):
        bn.momentum = momentum
    model.eval()
