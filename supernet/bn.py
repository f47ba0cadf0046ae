"""Batch-norm recalibration: inherited running statistics are wrong for smaller candidates."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """Reset every BN layer's running stats and re-estimate them (cumulative average) on `batches`.

    Works on static networks (`Supernet.extract(arch)` first). The model is left in eval mode.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(bn.momentum, bn.training) for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over all recalibration batches
    model.eval()
    for bn in bns:
        bn.train()
    for x in batches:
        model(x)
    for bn, (momentum, _) in zip(bns, saved):
        bn.momentum = momentum
    model.eval()
