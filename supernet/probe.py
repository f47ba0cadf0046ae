"""A linear probe: a classifier fitted on a frozen network's pooled features.

Training from a pretrained start with a new, random classifier lets the first large steps push the random head's
gradients into the pretrained body. Fitting the new classifier first, on the frozen body's features, and then
training the whole network (LP-FT: Kumar et al., "Fine-Tuning can Distort Pretrained Features and Underperform
Out-of-Distribution", ICLR 2022) avoids that. `specialize train --init ... --head-init probe` does this before the
meta stage; `benchmarks/own_data_probe.py` measures the probe alone and LP-FT on a small folder.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from supernet.data import to_tensor

PROBE_L2 = 0.1  # on standardized features: 78.1 / 80.1 / 79.9 / 79.3% at 0.01 / 0.1 / 0.3 / 1.0 (own_data_probe.txt)
PROBE_IMAGES = 10000  # at most this many training images (and their flips) feed the fit


@torch.no_grad()
def pooled_features(
    features_of: Callable[[torch.Tensor], torch.Tensor], images: np.ndarray, size: int, flip: bool = False
) -> torch.Tensor:
    """[N, C] pooled features of uint8 [N, H, W, 3] images read at `size` (`features_of` maps a batch to them)."""
    out = []
    for first in range(0, len(images), 128):
        x = to_tensor(images[first : first + 128], size)
        out.append(features_of(x.flip(-1) if flip else x))
    return torch.cat(out)


def fit_probe(features: torch.Tensor, labels: torch.Tensor, classes: int, l2: float = PROBE_L2) -> torch.nn.Linear:
    """Multinomial logistic regression (L-BFGS, features standardized, L2 on the weights), returned as a classifier
    of the raw features: w' = w / std, b' = b - w' . mean."""
    mean, std = features.mean(0), features.std(0) + 1e-6
    x = (features - mean) / std
    linear = torch.nn.Linear(x.shape[1], classes)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=300)

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = F.cross_entropy(linear(x), labels) + l2 * linear.weight.pow(2).sum()
        value.backward()
        return value

    with torch.enable_grad():
        optimizer.step(loss)
    folded = torch.nn.Linear(x.shape[1], classes)
    with torch.no_grad():
        folded.weight.copy_(linear.weight / std)
        folded.bias.copy_(linear.bias - folded.weight @ mean)
    return folded
