"""Training settings (no torch here, so the CLI can show their defaults without importing it)."""
from __future__ import annotations

from dataclasses import dataclass

VALIDATION_IMAGES = 2500   # table entries 0.04 points apart; 500 images gave 0.2-point steps and exact ties
# Settings a resumed run may change: they do not alter what is trained or measured.
RESUMABLE_CHANGES = ("threads", "candidates_per_pass")


@dataclass
class TrainConfig:
    space: str
    data: str
    width: float = 1.0              # EcoNAS c: channel multiplier
    resolution: int | None = None   # EcoNAS r: input resolution (None: the space's)
    sample_ratio: float = 1.0       # EcoNAS s: share of the training images used
    epochs: int = 10                # EcoNAS e: meta-training epochs
    finetune_epochs: float = 0.2    # passes over the sampled data per fine-tuned layer
    batch_size: int = 128
    lr: float = 0.1
    finetune_lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 4e-5
    label_smoothing: float = 0.0
    schedule: str = "cosine"        # cosine | step
    val_per_class: int | None = None  # None: enough to separate candidates (VALIDATION_IMAGES in all)
    calib_images: int = 300         # batch-norm recalibration sample (shipped beside the weights)
    spread_samples: int = 30        # sub-networks measured after training to fit table score -> accuracy
    seed: int = 0
    weights_dtype: str = "float16"
    threads: int | None = None
    candidates_per_pass: int | None = None   # strict fairness: candidates per forward (None: all; fewer saves memory)

    def proxy(self) -> dict:
        return {"width": self.width, "resolution": self.resolution, "sample_ratio": self.sample_ratio,
                "epochs": self.epochs, "finetune_epochs": self.finetune_epochs}
