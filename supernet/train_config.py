"""Training settings (no torch here, so the CLI can show their defaults without importing it)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from specialize.errors import SpecializeError
from specialize.space import BATCH_NORMS

VALIDATION_IMAGES = 2500  # table entries 0.04 points apart; 500 images gave 0.2-point steps and exact ties
# Settings a resumed run may change: they do not alter what is trained or measured.
RESUMABLE_CHANGES = ("threads", "candidates_per_pass")
# Settings only the fine-tuning stage reads: a run resumed before that stage began may still change them.
FINETUNE_SETTINGS = ("finetune_epochs", "finetune_lr", "distill", "spread_samples")
# what a checkpoint written before a setting existed was trained with: a resumed run takes these, not the defaults
LEGACY = {"resolutions": (), "fit_images": 0, "batch_norm": "batch", "warmup": 0.0, "clip_grad": 0.0}
HEAD_INITS = ("probe", "random")
MAX_RESOLUTIONS = 8  # elastic resolution: each size adds a table's worth of evaluation to fine-tuning


# What trained the shipped tables (docs/training.md): from scratch (the embedded cifar10 table), and from ImageNet
# weights (the efficientnet-lite0 default). The CLI's defaults are these; an option given overrides its part.
RECIPES = {
    "scratch": {"lr": 0.1, "finetune_lr": 0.02, "weight_decay": 5e-4},
    "pretrained": {"lr": 0.02, "finetune_lr": 0.005, "weight_decay": 4e-5},
}


@dataclass
class TrainConfig:
    space: str
    data: str
    width: float = 1.0  # EcoNAS c: channel multiplier
    resolution: int | None = None  # EcoNAS r: input resolution (None: the space's)
    sample_ratio: float = 1.0  # EcoNAS s: share of the training images used
    epochs: int = 10  # EcoNAS e: meta-training epochs
    finetune_epochs: float = 0.2  # passes over the sampled data per fine-tuned layer
    batch_size: int = 128
    lr: float | None = None  # None: the recipe's (RECIPES)
    finetune_lr: float | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    label_smoothing: float = 0.1
    schedule: str = "cosine"  # cosine | step
    val_per_class: int | None = None  # None: enough to separate candidates (VALIDATION_IMAGES in all)
    calib_images: int = 300  # batch-norm recalibration sample (shipped beside the weights)
    spread_samples: int = 30  # sub-networks measured after training to fit table score -> accuracy
    seed: int = 0
    weights_dtype: str = "float16"
    threads: int | None = None
    candidates_per_pass: int | None = None  # strict fairness: candidates per forward (None: all; fewer saves memory)
    init: str | None = None  # pretrained start: efficientnet-lite0 or a state-dict path (None: from scratch)
    input_size: int | None = None  # the deployed input resolution (None: the space's); the table's space has it
    distill: float = 0.0  # fine-tuning: weight of in-place distillation from the teacher architecture
    teacher: str | None = None  # its architecture (None: the largest; with --init, the pretrained one)
    meta_arch: str | None = None  # what the meta stage trains (None: the largest; benchmarks/baseline.py: Lite0)
    # elastic resolution (once-for-all §3.2): more input sizes, one drawn per batch in training, each measured into a
    # table of its own (table-<r>px.json beside table.json, which stays at input_size); the search picks among them
    resolutions: tuple[int, ...] = ()
    # training images held out (balanced, apart from validation and calibration) to measure the spread sub-networks
    # the accuracy fit is made from: the table picked its path on the validation images, so a fit made there
    # predicts high (winner's curse); 0: measure on the validation split, as runs before this setting did
    fit_images: int = 2500
    # with --init and a new classifier (another class count than the source's): "probe" fits it on the pretrained
    # network's frozen features before the meta stage (LP-FT, supernet/probe.py); "random" leaves it as initialised,
    # as the shipped tables were trained. On cat/dog/bird at 96 px (4 epochs, lr 0.02) the meta network reached
    # 67.13% from the probe and 66.07% from a random head, one run each: no measured gain, so not the default
    head_init: str = "random"
    # with --init: how batch norm trains (specialize.space.BATCH_NORMS). "frozen" keeps the pretrained statistics
    # but in the last layer and the head; the trained space records it, so every later recalibration (export,
    # refit, validation) re-estimates only those. On cat/dog/bird at 96 px the best sub-network reached 72.03% against
    # 68.37%; on CIFAR-10 it gained 2 points after 300 steps at lr 0.01, nothing after 1,000, and collapsed at lr 0.05
    # (docs/training.md), so "batch" stays the default
    batch_norm: str = "batch"
    # LP-FT's guards (benchmarks/own_data_probe.py, Kumar et al.): the learning rate rises linearly over this share of
    # each stage's steps (the meta stage's all, each fine-tuned layer's own), and gradients are clipped to this norm
    # (0: neither). Frozen batch statistics no longer rescale large early updates; LP-FT at 224 px collapsed to chance
    # within 20 steps without them
    warmup: float = 0.0
    clip_grad: float = 0.0

    @staticmethod
    def parse_sizes(text: str | None) -> tuple[int, ...]:
        """--resolutions: input sizes in pixels, comma-separated ("64,80,96"); None or "" gives ()."""
        if not text:
            return ()
        parts = [part.strip() for part in text.split(",")]
        if not all(part.isdigit() and len(part) <= 5 for part in parts):
            raise SpecializeError(
                f"--resolutions {text[:40]!r}: give input sizes in pixels, comma-separated, e.g. 64,80,96"
            )
        return tuple(int(part) for part in parts)

    @staticmethod
    def recipes() -> dict:
        return RECIPES

    def with_recipe(self) -> "TrainConfig":
        """This config with the settings left None taken from the recipe that trained the shipped tables: from
        scratch, or fine-tuning from a pretrained start (`init`)."""
        recipe = RECIPES["pretrained" if self.init else "scratch"]
        return replace(self, **{k: v for k, v in recipe.items() if getattr(self, k) is None})

    @classmethod
    def from_settings(cls, settings: dict) -> "TrainConfig":
        """The config a table's provenance settings record (JSON: lists back to tuples; unknown keys dropped;
        settings newer than the table take their LEGACY values)."""
        known = {f.name for f in fields(cls)}
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in settings.items() if k in known}
        return cls(**values).as_checkpointed(settings)

    def as_checkpointed(self, saved: object) -> "TrainConfig":
        """This config for resuming a checkpoint saved with the settings `saved`: a setting newer than the
        checkpoint takes the value runs had before it existed (LEGACY), so the run goes on as it began."""
        if not isinstance(saved, dict):
            return self
        return replace(self, **{k: v for k, v in LEGACY.items() if k not in saved})

    def proxy(self) -> dict:
        return {
            "width": self.width,
            "resolution": self.resolution,
            "sample_ratio": self.sample_ratio,
            "epochs": self.epochs,
            "finetune_epochs": self.finetune_epochs,
        }

    def check(self) -> None:
        """Refuse settings that would crash training or silently train something else, naming the option."""
        for option, value, ok, valid in _rules(self.with_recipe()):
            if not ok:
                raise SpecializeError(f"--{option} {value!r} is out of range: {valid}")


def _finite(value, low: float, high: float = math.inf, low_open: bool = False) -> bool:
    return (
        isinstance(value, (int, float))
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and value <= high
    )


def _count(value, low: int, high: int = 2**31 - 1, optional: bool = False) -> bool:
    return (optional and value is None) or (type(value) is int and low <= value <= high)


def _rules(c: "TrainConfig") -> list[tuple]:
    return [
        ("width", c.width, _finite(c.width, 0, 1, low_open=True), "0 < width <= 1"),
        ("sample-ratio", c.sample_ratio, _finite(c.sample_ratio, 0, 1, low_open=True), "0 < sample ratio <= 1"),
        ("resolution", c.resolution, _count(c.resolution, 8, 4096, optional=True), "8..4096 pixels"),
        ("input-size", c.input_size, _count(c.input_size, 8, 4096, optional=True), "8..4096 pixels"),
        ("epochs", c.epochs, _count(c.epochs, 0, 100_000), "0..100000"),
        ("finetune-epochs", c.finetune_epochs, _finite(c.finetune_epochs, 0, 1000), "a number in [0, 1000]"),
        ("batch-size", c.batch_size, _count(c.batch_size, 1, 65536), "1..65536"),
        ("lr", c.lr, _finite(c.lr, 0, 100, low_open=True), "a number in (0, 100]"),
        ("distill", c.distill, _finite(c.distill, 0, 1), "a number in [0, 1]"),
        ("finetune-lr", c.finetune_lr, _finite(c.finetune_lr, 0, 100, low_open=True), "a number in (0, 100]"),
        ("weight-decay", c.weight_decay, _finite(c.weight_decay, 0, 1), "a number in [0, 1]"),
        ("warmup", c.warmup, _finite(c.warmup, 0, 1), "a share of each stage's steps in [0, 1]"),
        ("clip-grad", c.clip_grad, _finite(c.clip_grad, 0, 1e6), "a gradient norm in [0, 1e6] (0: off)"),
        (
            "label-smoothing",
            c.label_smoothing,
            _finite(c.label_smoothing, 0, 1) and c.label_smoothing < 1,
            "a number in [0, 1)",
        ),
        ("val-per-class", c.val_per_class, _count(c.val_per_class, 1, optional=True), "1 or more"),
        ("calib-images", c.calib_images, _count(c.calib_images, 1, 1_000_000), "1..1000000"),
        ("fit-images", c.fit_images, _count(c.fit_images, 0, 1_000_000), "0..1000000"),
        ("spread-samples", c.spread_samples, _count(c.spread_samples, 0, 100_000), "0..100000"),
        ("seed", c.seed, _count(c.seed, 0, 2**32 - 1), "0..4294967295"),
        ("threads", c.threads, _count(c.threads, 1, 4096, optional=True), "1..4096"),
        ("candidates-per-pass", c.candidates_per_pass, _count(c.candidates_per_pass, 1, optional=True), "1 or more"),
        ("schedule", c.schedule, c.schedule in ("cosine", "step"), "cosine or step"),
        ("head-init", c.head_init, c.head_init in HEAD_INITS, " or ".join(HEAD_INITS)),
        ("batch-norm", c.batch_norm, c.batch_norm in BATCH_NORMS, " or ".join(BATCH_NORMS)),
        (
            "batch-norm",
            c.batch_norm,
            c.batch_norm == "batch" or bool(c.init),
            "frozen keeps pretrained statistics, so it needs --init",
        ),
        (
            "resolutions",
            ",".join(map(str, c.resolutions)),
            isinstance(c.resolutions, tuple)
            and len(c.resolutions) <= MAX_RESOLUTIONS
            and all(_count(r, 8, 4096) for r in c.resolutions),
            f"at most {MAX_RESOLUTIONS} sizes, each 8..4096 pixels",
        ),
        (
            "resolutions",
            ",".join(map(str, c.resolutions)),
            not (c.resolutions and c.resolution is not None),
            "elastic resolution trains at full size: leave out the proxy --resolution",
        ),
    ]


# The pick fine-tune's peak learning rate (batches of 32) when none is given, by how the network's batch norm trains.
# Frozen (a `--batch-norm frozen` run, small folders): 0.002, where LP-FT of Lite0 on 1,500 images held 81-82% from
# 0.0003 to 0.002 and 224 px collapsed without warm-up and clipping. Batch statistics (CIFAR-10's 50,000 images): one
# epoch of the 80 px budget's pick measured 83.94/84.40/85.06/85.37% at 0.002/0.005/0.01/0.02, and on another host
# 85.93/86.13/85.52% at 0.02/0.04/0.08; four epochs at 0.04 beat 0.02 at all three budgets' picks, one host:
# 87.46/88.86/88.85% against 86.87/88.46/88.56% at 64/80/96 px (benchmarks/results/baseline_pick_finetune.txt).
PICK_FINETUNE_LRS = {"frozen": 0.002, "batch": 0.04}


@dataclass(frozen=True)
class FinetuneRecipe:
    """How `supernet.finetune` trains one picked sub-network alone (its module docstring says why these)."""

    epochs: float
    lr: float | None = None  # None: PICK_FINETUNE_LRS for the network's batch norm (`with_default_lr`)
    batch_size: int = 32
    warmup: float = 0.1
    clip_grad: float = 1.0
    weight_decay: float = 1e-5
    momentum: float = 0.9
    seed: int = 0
    probe: bool = True  # refit the classifier on the pick's own frozen features first (LP-FT's LP)
    distill: float = 0.0  # share of the loss from the supernet's largest network's soft labels (0: plain)
    label_smoothing: float = 0.0  # of the cross entropy on the labels (training's own recipe uses 0.1)

    def check(self) -> "FinetuneRecipe":
        """Refuse what cannot train, naming the option."""
        if not _finite(self.epochs, 0, 1000, low_open=True):
            raise SpecializeError(f"--pick-finetune-epochs must be a number in (0, 1000], got {self.epochs!r}")
        if self.lr is not None and not _finite(self.lr, 0, 10, low_open=True):
            raise SpecializeError(f"--pick-finetune-lr must be a number in (0, 10], got {self.lr!r}")
        if not (_finite(self.label_smoothing, 0, 1) and self.label_smoothing < 1):
            raise SpecializeError(f"label smoothing must be a number in [0, 1), got {self.label_smoothing!r}")
        if not _finite(self.distill, 0, 1):
            raise SpecializeError(f"--pick-finetune-distill must be a number in [0, 1], got {self.distill!r}")
        return self

    def with_default_lr(self, frozen_batch_norm: bool) -> "FinetuneRecipe":
        """This recipe with its learning rate settled: the one given, else the default for how batch norm trains."""
        if self.lr is not None:
            return self
        return replace(self, lr=PICK_FINETUNE_LRS["frozen" if frozen_batch_norm else "batch"])

    def to_dict(self) -> dict:
        """The recipe as recorded in checkpoints and metadata; `distill` and `label_smoothing` only when they are on,
        so a checkpoint written before those fields existed still resumes."""
        recorded = asdict(self)
        for added in ("distill", "label_smoothing"):  # fields of 2026-12-07: recorded only when on
            if not recorded[added]:
                del recorded[added]
        return recorded
