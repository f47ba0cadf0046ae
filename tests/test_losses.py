"""The one loss of training and the pick's fine-tune: cross entropy mixed with a teacher's soft labels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from supernet.losses import distilled_loss


def batch(seed: int, n: int = 6, classes: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=g)
    labels = torch.randint(classes, (n,), generator=g)
    soft = F.softmax(torch.randn(n, classes, generator=g) * 3, dim=1)
    return logits, labels, soft


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), distill=st.floats(0, 1), smoothing=st.floats(0, 0.5))
def test_the_loss_is_the_weighted_mix_of_hard_and_soft_cross_entropy(seed, distill, smoothing):
    logits, labels, soft = batch(seed)
    hard = F.cross_entropy(logits, labels, label_smoothing=smoothing)
    soft_ce = -(soft * F.log_softmax(logits, 1)).sum(1).mean()
    mixed = distilled_loss(logits, labels, soft, distill, smoothing)
    assert mixed.item() == pytest.approx(((1 - distill) * hard + distill * soft_ce).item(), rel=1e-5, abs=1e-6)
    assert distilled_loss(logits, labels, None, distill, smoothing).item() == pytest.approx(hard.item(), rel=1e-6)


def test_all_soft_is_minimal_where_the_student_matches_the_teacher():
    """With the whole loss from the teacher, the student's best answer is the teacher's distribution."""
    _, labels, soft = batch(1)
    matched = distilled_loss(soft.log(), labels, soft, 1.0)
    for shift in (0.5, -0.5):
        other = soft.log().clone()
        other[:, 0] += shift
        assert distilled_loss(other, labels, soft, 1.0) > matched
