"""The offline strategies' fitness: measured validation accuracy of sub-networks with inherited supernet
weights after batch-norm recalibration (EPNAS §3.4's performance prediction, in its one-shot form).

`supernet_fitness(table, data)` builds it from an accuracy table and the dataset the table was trained on:
the weights the table names (checked by sha256, `load_table_weights`), whose space is the table's
trained_space, and the validation split and calibration images rebuilt exactly as `supernet.train.Trainer`
made them from the table's provenance (seed, val_per_class, calib_images, resolution). So the images scored
are the ones the table's entries were measured on: held-out training images, never the test split.
One evaluation is `supernet.evaluate.subnet_accuracy` (extract, recalibrate, count top-1).

The validation images are kept in a fixed order (a permutation drawn from the table's seed);
`fitness(pop, fidelity)` uses the first ceil(fidelity * n) of them, so a cheaper evaluation (EcoNAS) is a
prefix of the full one. Scores are cached by (architecture, images used); `evaluations` counts the
sub-networks actually measured and `evaluations_per_second` their rate.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from specialize.errors import SpecializeError
from specialize.table import AccuracyTable
from supernet.data import ImageDataset, image_batches, load_dataset, to_tensor
from supernet.elastic import Supernet
from supernet.evaluate import subnet_accuracy
from supernet.train import _seeded, held_out_split
from supernet.train_config import TrainConfig
from supernet.validate import load_table_weights

ORDER_STREAM = 40  # the validation order's random stream, apart from the ones training draws from


@dataclass(frozen=True)
class ValidationSplit:
    x: torch.Tensor  # [n, 3, R, R] validation images in the fixed order
    y: torch.Tensor  # [n] their labels
    indices: np.ndarray  # [n] their indices among the dataset's training images, in that order
    calibration: list[torch.Tensor]  # batch-norm recalibration batches (the table's calibration images)
    calibration_indices: np.ndarray  # their indices among the training images
    name: str = "validation"  # which held-out split: "validation", or "fit" (images neither training nor the table saw)


def training_config(table: AccuracyTable) -> TrainConfig:
    """The settings the table was trained with, from its provenance (missing ones take the values runs had before
    they existed)."""
    settings = (table.provenance or {}).get("settings")
    if not isinstance(settings, dict) or "seed" not in settings:
        raise SpecializeError(
            f"accuracy table {table.path}: field 'provenance' has no training settings, so its "
            "validation split cannot be rebuilt"
        )
    return TrainConfig.from_settings(settings)


def check_same_data(table: AccuracyTable, dataset: ImageDataset) -> None:
    """The dataset must be the one the table was trained on, or its validation split would be other images."""
    counts = (table.provenance or {}).get("settings", {}).get("data_counts", {})
    names = tuple(table.space.class_names or ())
    if counts.get("train") not in (None, len(dataset.train_labels)) or (names and names != tuple(dataset.classes)):
        raise SpecializeError(
            f"data {dataset.source} is not the data accuracy table {table.path} was trained on "
            f"({len(dataset.train_labels)} "
            f"training images in classes {', '.join(dataset.classes)}; the table's: {counts.get('train')} in "
            f"{', '.join(names) or 'unnamed classes'}), so its validation split cannot be rebuilt"
        )


def table_split(
    table: AccuracyTable, dataset: ImageDataset, resolution: int, split: str = "validation"
) -> ValidationSplit:
    """The validation split and calibration images of the table's training run, as `Trainer.__init__` made them.
    `split="fit"` takes the run's fit split instead (images neither training nor the table's entries used), and
    the validation split in runs made without one (`name` says which it is)."""
    cfg, labels = training_config(table), dataset.train_labels
    check_same_data(table, dataset)
    _, validation, calib, fit = held_out_split(labels, cfg)
    name, held_out = ("fit", fit) if split == "fit" and len(fit) else ("validation", validation)
    order = held_out[np.random.default_rng(_seeded(cfg.seed, ORDER_STREAM)).permutation(len(held_out))]
    return ValidationSplit(
        to_tensor(dataset.train_images[order], resolution),
        torch.from_numpy(labels[order]),
        order,
        image_batches(dataset.train_images[calib], resolution),
        calib,
        name,
    )


class SupernetFitness:
    """fitness(pop [N, L], fidelity=1.0) -> [N] validation top-1 accuracy, cached by architecture."""

    def __init__(self, net: Supernet, table: AccuracyTable, split: ValidationSplit, images: int | None = None):
        self.net, self.table, self.split = net, table, split
        self.images = len(split.y) if images is None else min(images, len(split.y))
        if self.images < 1:
            raise SpecializeError(f"--val-images must be at least 1, got {images}")
        self.cache: dict[tuple[tuple[int, ...], int], float] = {}
        self.evaluations, self.seconds = 0, 0.0

    def images_for(self, fidelity: float) -> int:
        """Validation images a score at `fidelity` (0, 1] uses: the first ceil(fidelity * n) of the fixed order."""
        if not 0 < fidelity <= 1:
            raise SpecializeError(f"fidelity must be in (0, 1], got {fidelity}")
        return max(1, math.ceil(fidelity * self.images - 1e-9))

    def __call__(self, pop: np.ndarray, fidelity: float = 1.0) -> np.ndarray:
        pop = np.asarray(pop, dtype=np.int64)
        flat, n = pop.reshape(-1, pop.shape[-1]), self.images_for(fidelity)
        return np.array([self.accuracy(tuple(int(g) for g in genes), n) for genes in flat]).reshape(pop.shape[:-1])

    def accuracy(self, genes: tuple[int, ...], images: int) -> float:
        key = (genes, images)
        if key not in self.cache:
            start = time.perf_counter()
            arch = self.table.space.arch_from_indices(genes)
            self.cache[key] = subnet_accuracy(
                self.net, arch, self.split.x[:images], self.split.y[:images], self.split.calibration
            )
            self.evaluations += 1
            self.seconds += time.perf_counter() - start
        return self.cache[key]

    @property
    def evaluations_per_second(self) -> float:
        return self.evaluations / max(self.seconds, 1e-9)


def supernet_fitness(
    table: AccuracyTable, data: str | Path | ImageDataset, images: int | None = None, split: str = "validation"
) -> SupernetFitness:
    """The fitness of sub-networks of `table`'s supernet on its validation split of `data` (the first `images`
    of the fixed order when given; `split="fit"`: its fit split, as `table_split`)."""
    net = load_table_weights(table)
    cfg = training_config(table)
    dataset = (
        data
        if isinstance(data, ImageDataset)
        else load_dataset(data, image_size=cfg.resolution or table.space.resolution)
    )
    return SupernetFitness(net, table, table_split(table, dataset, net.space.resolution, split), images)
