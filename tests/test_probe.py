"""The linear probe that starts a new classifier (supernet/probe.py)."""

from __future__ import annotations

import numpy as np
import torch

from supernet.probe import fit_probe


def test_the_probe_classifies_raw_features_far_from_zero_and_of_any_scale():
    # Three separable clusters, shifted by 100 and scaled per dimension by 0.01-100: the fit standardizes them, and
    # the returned classifier must fold that back (weights / std, bias - weights . mean) to read raw features.
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, 20))
    labels = np.repeat(np.arange(3), 100)
    features = (centres[labels] + rng.normal(0, 1, (300, 20))) * 10 ** rng.uniform(-2, 2, 20) + 100
    x, y = torch.from_numpy(features).float(), torch.from_numpy(labels).long()
    classifier = fit_probe(x, y, 3)
    with torch.no_grad():
        assert (classifier(x).argmax(1) == y).float().mean() >= 0.95
