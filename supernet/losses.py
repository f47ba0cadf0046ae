"""The training loss shared by the supernet's stages and the pick's fine-tune: cross entropy, optionally mixed with
soft-label cross entropy against a teacher's probabilities (in-place distillation, once-for-all §3.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distilled_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    soft: torch.Tensor | None,
    distill: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """(1 - distill) x cross entropy on `labels` + distill x cross entropy on the teacher's probabilities `soft`;
    plain cross entropy when `soft` is None."""
    hard = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    if soft is None:
        return hard
    distilled = -(soft * F.log_softmax(logits, dim=1)).sum(1).mean()
    return (1 - distill) * hard + distill * distilled
