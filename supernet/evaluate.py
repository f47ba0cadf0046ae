"""The one evaluator of sub-network accuracy: extract from the supernet, recalibrate batch norm, count
correct top-1 predictions. `top1` is the one accuracy loop: it takes a predict function, so torch modules
(training's table entries and accuracy fit, table validation, the offline strategies) and exported graphs in
onnxruntime (export's measured accuracy) are counted the same way."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from specialize.errors import SpecializeError
from specialize.space import Architecture, SearchSpace
from supernet.bn import recalibrate_bn
from supernet.elastic import Supernet

EVAL_BATCH = 500


def top1(predict: Callable[[int, int], np.ndarray], labels: np.ndarray, batch: int = EVAL_BATCH) -> float:
    """Share of `labels` predicted: `predict(start, stop)` gives the logits [stop - start, classes] of those images.
    Logits that are not finite raise (corrupt weights), rather than count as wrong answers."""
    correct = 0
    for i in range(0, len(labels), batch):
        logits = predict(i, min(i + batch, len(labels)))
        if not np.isfinite(logits).all():
            raise SpecializeError("the network outputs NaN or infinity on real images: the weights are corrupt")
        correct += int((logits.argmax(1) == labels[i : i + batch]).sum())
    return correct / max(len(labels), 1)


@torch.no_grad()
def top1_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = EVAL_BATCH) -> float:
    """Share of `x` (float [N, 3, R, R] in [0, 1]) that the torch `model` classifies as `y`."""
    model.eval()
    return top1(lambda a, b: model(x[a:b].contiguous(memory_format=torch.channels_last)).numpy(), y.numpy(), batch)


@torch.no_grad()
def subnet_accuracy(
    net: Supernet,
    arch: Architecture,
    x: torch.Tensor,
    y: torch.Tensor,
    calibration: Sequence[torch.Tensor],
    space: SearchSpace | None = None,
) -> float:
    """Accuracy of `arch` with inherited weights after batch-norm recalibration on `calibration`, built for `space`
    (default the supernet's: another input size builds its own padding, as its export does)."""
    sub = net.extract(net.space.arch_from_indices(arch.indices), space).to(memory_format=torch.channels_last)
    recalibrate_bn(sub, [b.contiguous(memory_format=torch.channels_last) for b in calibration])
    return top1_accuracy(sub, x, y)
