"""PONAS two-stage supernet training (§3.2) that writes an accuracy table.

Stage 1 (meta): train the meta network, every layer at its largest candidate.
Stage 2 (progressive fine-tuning), for layer l = 1..L: the supernet has the chosen blocks before l,
all candidates at l and the largest block after l. Each step every candidate at l runs forward and
backward on the same batch (strict fairness), gradients accumulate, one optimizer step. Then every
candidate is evaluated on the validation split (after batch-norm recalibration): T[l, i]; the best
is fixed at l. With elastic depth, `skip` (the identity) is one more candidate wherever the layer keeps
its shape; where it does not, skip is neither trained nor evaluated and T[l, skip] is stored as 0.0
(see specialize.table). The meta stage is unchanged: the largest block everywhere.

EcoNAS proxies (width c, resolution r, sample ratio s, epochs e) are first-class settings.
Checkpoints are written atomically after every meta epoch and every fine-tuned layer; every epoch
draws its randomness from (seed, stage, index), so a resumed run equals an uninterrupted one.
Every training step is one forward of `FairnessPass`: the prefix once, then each candidate at the layer
on it (the meta stage is the case of one candidate, the largest, at layer 0), so under torchrun the
pass is wrapped in DistributedDataParallel and gradients are all-reduced by its backward. Each rank
trains on its own shard; only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from specialize.errors import SpecializeError
from specialize.fileio import atomic_write_bytes, provenance, sha256_file
from specialize.cost import cost_arrays
from specialize.sampling import spread_architectures
from specialize.space import Candidate, get_space
from specialize.table import AccuracyTable, accuracy_loss, fit_accuracy
from supernet.checkpoint import first_line, read_checkpoint, save_supernet_weights
from supernet.run_dir import claim_run_dir
from supernet.data import augment, balanced_split, calibration_indices, image_batches, load_dataset, to_tensor
from supernet.elastic import Supernet
from supernet.evaluate import subnet_accuracy
from supernet.finetune import scheduled_lr
from supernet.losses import distilled_loss
from supernet.pretrained import import_pretrained
from supernet.bn import recalibrate_bn
from supernet.probe import PROBE_IMAGES, fit_probe, pooled_features
from supernet.train_config import FINETUNE_SETTINGS, RESUMABLE_CHANGES, VALIDATION_IMAGES, TrainConfig

CHECKPOINT_FILE = "checkpoint.pt"
CALIBRATION_FILE = "calibration.npz"


FROZEN_LR = 0.01
FROZEN_LR_NOTE = (
    "--batch-norm frozen at --lr {lr:g}: with fixed statistics a CIFAR-10 pilot lost 21 points at lr 0.02 and "
    f"collapsed to chance at 0.05, where lr {FROZEN_LR:g} trained well (docs/training.md); README's own-data "
    "command uses 0.002"
)


def validation_per_class(labels: np.ndarray, requested: int | None) -> int:
    """Images held out per class: as asked, else VALIDATION_IMAGES in all, at most a fifth of the smallest class."""
    return requested if requested is not None else per_class(labels, VALIDATION_IMAGES)


def per_class(labels: np.ndarray, images: int) -> int:
    """A balanced held-out split's share of each class: `images` in all, at most a fifth of the smallest class."""
    classes, counts = np.unique(labels, return_counts=True)
    return max(1, min(-(-images // len(classes)), int(counts.min()) // 5))


def held_out_split(labels: np.ndarray, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rest, validation, calibration, fit) indices into the training images, fixed by the run's settings: the
    one derivation both training and the offline evaluator (`supernet.fitness`) use. Calibration images
    come from the rest, never from the validation split; the fit split (`fit_images`, balanced) is taken out of
    the rest, so nothing trains or picks on it."""
    rest, validation = balanced_split(labels, validation_per_class(labels, cfg.val_per_class), cfg.seed)
    fit = np.zeros(0, dtype=np.int64)
    if cfg.fit_images:
        kept, held = balanced_split(labels[rest], per_class(labels[rest], cfg.fit_images), _seeded(cfg.seed, 40))
        rest, fit = rest[kept], rest[held]
    return rest, validation, calibration_indices(rest, cfg.calib_images, cfg.seed), fit


def pick_best(row: list[float], macs: np.ndarray, allowed: tuple[int, ...] | None = None) -> int:
    """The most accurate of the `allowed` candidates (default all); among exact ties, the one with the fewest MACs."""
    return min(range(len(row)) if allowed is None else allowed, key=lambda i: (-row[i], int(macs[i]), i))


@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


Reporter = Callable[[dict], None]


ACTIVATION_BUDGET = 0.25  # share of physical memory one fine-tuning pass may hold in activations
TRAINING_BYTES_PER_OUTPUT = 12  # float32 outputs x 3: the convolution's, batch norm's and the activation's, kept
# for backward (measured: Lite0 at 96 px, layer 6 on, 3.7 MB an image against 1.4 MB of outputs)


def activation_budget() -> float:
    try:
        return ACTIVATION_BUDGET * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX sysconf: assume 16 GiB
        return ACTIVATION_BUDGET * 16 * 2**30


def training_activation_bytes(space, layer: int) -> int:
    """Bytes one image holds for backward through the largest candidate at `layer`, the layers after it and the
    head (what one more candidate in a fairness pass costs)."""
    from specialize.cost import candidate_ops, head_ops

    ops = [op for l in range(layer, space.num_layers) for op in candidate_ops(space, l, space.largest)]
    return TRAINING_BYTES_PER_OUTPUT * sum(op.out_elems for op in ops + head_ops(space))


class FairnessPass(nn.Module):
    """One forward of a training step: the `chosen` blocks run once, then each of `cands` (at the next
    layer) followed by `suffix` runs on that shared prefix. Returns logits
    [candidates, batch, classes]; the prefix's gradient sums over the candidates in one backward."""

    def __init__(self, net: Supernet):
        super().__init__()
        self.net = net

    def forward(
        self, x: torch.Tensor, chosen: list[Candidate], cands: list[Candidate], suffix: list[Candidate]
    ) -> torch.Tensor:
        prefix = self.net.run_blocks(self.net.features_in(x), chosen)
        return torch.stack(
            [self.net.classify(self.net.run_blocks(prefix, [c] + suffix, start=len(chosen))) for c in cands]
        )


def _seeded(seed: int, *parts: int) -> int:
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1)[0])


def _lr_at(cfg: TrainConfig, base: float, step: int, total: int) -> float:
    """The learning rate at `step` of a stage of `total` steps: the schedule, under a linear warm-up over the first
    `cfg.warmup` share of the steps."""
    return scheduled_lr(base, step, total, cfg.warmup, cfg.schedule)


class Trainer:
    def __init__(
        self, cfg: TrainConfig, out_dir: str | Path, report: Reporter = lambda e: None, dist_info: Dist = Dist()
    ):
        cfg = cfg.with_recipe()
        self.cfg, self.out, self.report, self.dist = cfg, Path(out_dir), report, dist_info
        self.checkpoint_seconds = 600.0  # inside a meta epoch; every epoch and fine-tuned layer also checkpoints
        preset = get_space(cfg.space)
        main = cfg.input_size or preset.resolution
        # elastic resolution: every size's images decoded by Pillow as a user's would be, main size first
        self.resolutions = tuple(sorted(set(cfg.resolutions) | {main})) if cfg.resolutions else ()
        self.data_at = {
            r: load_dataset(cfg.data, image_size=r) for r in sorted(self.resolutions, key=lambda r: r != main)
        }
        self.data = self.data_at.get(main) or load_dataset(cfg.data, image_size=(cfg.resolution or main))
        for note in [n for d in {id(d): d for d in [self.data, *self.data_at.values()]}.values() for n in d.notes]:
            report({"event": "note", "text": note})
        if cfg.batch_norm == "frozen" and cfg.lr > FROZEN_LR:
            report({"event": "note", "text": FROZEN_LR_NOTE.format(lr=cfg.lr)})
        # the classifier is sized to the data's classes, the input to --input-size; the space records how batch norm
        # trains, so every network later built from these weights treats it the same way (supernet/bn.py)
        classed = replace(preset.with_classes(self.data.classes), batch_norm=cfg.batch_norm)
        self.space = classed.with_resolution(cfg.input_size)
        self.space_at = {r: classed.with_resolution(r) for r in self.resolutions}
        self.trained_space = self.space.scaled(cfg.width, cfg.resolution)
        self.val_per_class = validation_per_class(self.data.train_labels, cfg.val_per_class)
        rest, val, self.calib_idx, self.fit_idx = held_out_split(self.data.train_labels, cfg)
        rng = np.random.default_rng(_seeded(cfg.seed, 1))
        self.train_idx = np.sort(rng.choice(rest, max(1, int(round(len(rest) * cfg.sample_ratio))), replace=False))
        self.val_idx = val
        self.res = self.trained_space.resolution
        self.val_x = to_tensor(self.data.train_images[val], self.res)
        self.val_y = torch.from_numpy(self.data.train_labels[val])
        self.calib = image_batches(self.data.train_images[self.calib_idx], self.res)
        self.val_at = {r: to_tensor(d.train_images[val], r) for r, d in self.data_at.items() if r != self.res}
        self.fit_split = "fit" if len(self.fit_idx) else "validation"  # what the spread sub-networks are measured on
        self.fit_y = torch.from_numpy(self.data.train_labels[self.fit_idx]) if len(self.fit_idx) else self.val_y
        self.calib_at = {
            r: image_batches(d.train_images[self.calib_idx], r) for r, d in self.data_at.items() if r != self.res
        }
        self.macs = cost_arrays(self.space).macs
        torch.manual_seed(_seeded(cfg.seed, 0))
        self.net = Supernet(self.trained_space).to(memory_format=torch.channels_last)  # 1.7x faster convs on CPU
        self.pretrained = import_pretrained(self.net, cfg.init) if cfg.init else None
        self._per_pass: dict[int, int] = {}  # fine-tuning: candidates per forward, by layer (candidates_per_pass)
        teacher = cfg.teacher or (self.pretrained["architecture"] if self.pretrained else None)
        self.teacher_arch = list(
            (self.trained_space.parse_arch(teacher) if teacher else self.trained_space.largest_arch()).candidates
        )
        self.model = FairnessPass(self.net)
        if dist_info.world > 1:  # SE weights of unchosen candidates get no gradient in some passes
            self.model = DistributedDataParallel(self.model, find_unused_parameters=True)
        self.largest = self.space.largest
        meta = self.trained_space.parse_arch(cfg.meta_arch) if cfg.meta_arch else self.trained_space.largest_arch()
        self.meta_architecture = meta
        self.meta_arch = list(meta.candidates)  # what the meta stage trains: the largest, or a fixed baseline
        self.state = {
            "stage": "meta",
            "epoch": 0,
            "layer": 0,
            "chosen": [],
            "accuracy": [],
            "wall": {"meta": 0.0, "finetune": 0.0},
            "history": [],
        }

    # -- batches --------------------------------------------------------------------------
    def batches(self, stage: int, index: int, start: int = 0):
        """Shuffled, augmented batches of this rank's shard from batch `start` on. The order is fixed by
        (seed, stage, index) and each batch's augmentation by (seed, stage, index, batch), so a run resumed
        in the middle of an epoch sees exactly the batches an uninterrupted one would."""
        g = torch.Generator().manual_seed(_seeded(self.cfg.seed, stage, index))
        order = self.train_idx[torch.randperm(len(self.train_idx), generator=g).numpy()]
        per_rank = self.cfg.batch_size // self.dist.world
        usable = len(order) // self.cfg.batch_size * self.cfg.batch_size or len(order)
        for step, first in enumerate(range(0, usable, self.cfg.batch_size)):
            if step < start:
                continue
            idx = order[first : first + self.cfg.batch_size][
                self.dist.rank * per_rank : (self.dist.rank + 1) * per_rank
            ]
            gb = torch.Generator().manual_seed(_seeded(self.cfg.seed, stage, index, step))
            size = self.batch_resolution(gb)
            images = (self.data_at[size] if self.resolutions else self.data).train_images[idx]
            x = augment(to_tensor(images, size), gb, max(4, size // 8)).contiguous(memory_format=torch.channels_last)
            yield x, torch.from_numpy(self.data.train_labels[idx])

    def batch_resolution(self, generator: torch.Generator) -> int:
        """The batch's input size: the run's, or with elastic resolution one of `resolutions` drawn with the
        batch's own generator (the same on every rank, and again after a resume)."""
        if not self.resolutions:
            return self.res
        return self.resolutions[int(torch.randint(len(self.resolutions), (1,), generator=generator))]

    def steps_per_epoch(self) -> int:
        return max(1, len(self.train_idx) // self.cfg.batch_size)

    # -- distributed helpers ----------------------------------------------------------------
    def data_parallel(self) -> str | None:
        """How ranks were kept in step, for provenance: 'DistributedDataParallel (gloo)' or None."""
        if isinstance(self.model, DistributedDataParallel):
            return f"DistributedDataParallel ({dist.get_backend()})"
        return None

    def _sync_buffers(self) -> None:
        if self.dist.world > 1:
            for b in self.net.buffers():
                dist.broadcast(b, 0)

    # -- stages ---------------------------------------------------------------------------
    def optimizer(self, lr: float) -> torch.optim.SGD:
        return torch.optim.SGD(
            self.net.parameters(), lr=lr, momentum=self.cfg.momentum, weight_decay=self.cfg.weight_decay, nesterov=True
        )

    def step(self, opt: torch.optim.Optimizer) -> None:
        """The optimizer's step on the gradients as they are (all-reduced under DDP), clipped to `clip_grad`."""
        if self.cfg.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.clip_grad)
        opt.step()

    def meta_epoch(self, opt: torch.optim.Optimizer, epoch: int) -> dict:
        """One meta epoch from the step the state records; checkpoints every `checkpoint_seconds` inside it."""
        self.net.train()
        arch = self.meta_arch
        total, per_epoch = self.cfg.epochs * self.steps_per_epoch(), self.steps_per_epoch()
        run = self.state.setdefault("meta_partial", {"step": 0, "loss_sum": 0.0, "correct": 0, "seen": 0, "recent": []})
        last_save = time.time()
        for step, (x, y) in enumerate(self.batches(10, epoch, run["step"]), start=run["step"]):
            torch.manual_seed(_seeded(self.cfg.seed, 10, epoch, step))  # dropout
            for group in opt.param_groups:
                group["lr"] = _lr_at(self.cfg, self.cfg.lr, epoch * per_epoch + step, total)
            logits = self.model(x, [], arch[:1], arch[1:])[0]
            loss = F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            self.step(opt)
            value = loss.item()
            if not math.isfinite(value):
                raise SpecializeError(
                    f"training diverged: loss {value} at meta epoch {epoch + 1}, step {step + 1}; "
                    f"lower --lr (now {self.cfg.lr:g})"
                )
            run["loss_sum"] += value
            run["recent"] = (run["recent"] + [value])[-20:]
            run["correct"] += int((logits.argmax(1) == y).sum())
            run["seen"] += len(y)
            run["step"] = step + 1
            self.report(
                {
                    "event": "step",
                    "stage": "meta",
                    "epoch": epoch,
                    "step": step + 1,
                    "steps": per_epoch,
                    "loss": float(np.mean(run["recent"])),
                    "train_accuracy": run["correct"] / max(run["seen"], 1),
                }
            )
            if time.time() - last_save > self.checkpoint_seconds and run["step"] < per_epoch:
                self.state["wall"]["meta"] += time.time() - last_save
                self.save_checkpoint(opt)
                last_save = time.time()
        self.state["wall"]["meta"] += time.time() - last_save
        self._sync_buffers()
        del self.state["meta_partial"]
        return {"loss": run["loss_sum"] / max(run["step"], 1), "train_accuracy": run["correct"] / max(run["seen"], 1)}

    def finetune_layer(self, opt: torch.optim.Optimizer, layer: int, chosen: list[Candidate]) -> float:
        self.net.train()
        torch.manual_seed(_seeded(self.cfg.seed, 20, layer))
        suffix = [self.largest] * (self.space.num_layers - layer - 1)
        per_epoch = self.steps_per_epoch()
        steps = max(1, int(round(per_epoch * self.cfg.finetune_epochs)))
        losses = []
        for step in range(steps):
            x, y = next(self.batches(20, layer * 1000 + step // per_epoch, step % per_epoch))
            for group in opt.param_groups:
                group["lr"] = _lr_at(self.cfg, self.cfg.finetune_lr, step, steps)
            opt.zero_grad(set_to_none=True)
            step_loss = self.fairness_step(x, y, chosen, suffix)
            self.step(opt)
            losses.append(step_loss)
            self.report(
                {
                    "event": "step",
                    "stage": "finetune",
                    "layer": layer,
                    "step": step + 1,
                    "steps": steps,
                    "loss": float(np.mean(losses[-20:])),
                }
            )
        self._sync_buffers()
        return float(np.mean(losses))

    def layer_candidates(self, layer: int) -> list[Candidate]:
        """The candidates layer `layer` may take (`skip` only where it keeps its shape)."""
        return [self.space.candidates[i] for i in self.space.allowed_indices(layer)]

    def candidates_per_pass(self, layer: int, count: int, batch: int) -> int:
        """How many of a layer's `count` candidates one forward/backward holds at once when --candidates-per-pass
        is not given: as many as fit in ACTIVATION_BUDGET of this machine's memory. Each candidate in a pass holds
        the activations of its block and every layer after it; an early layer of Lite0 at 96 px holds about 11 MB
        an image, so all ten candidates of a batch of 128 held 14 GB and a run was killed for memory. Passes in
        turn sum the same gradients (strict fairness is kept); only the peak changes."""
        if layer not in self._per_pass:
            held = batch * training_activation_bytes(self.trained_space, layer)
            size = torch.tensor([max(1, min(count, int(activation_budget() // max(held, 1))))])
            if isinstance(self.model, DistributedDataParallel):  # every rank must make the same passes
                size = size.to(next(self.net.parameters()).device)  # NCCL reduces GPU tensors only
                dist.all_reduce(size, op=dist.ReduceOp.MIN)
            self._per_pass[layer] = int(size)
            if self._per_pass[layer] < count:
                self.report(
                    {
                        "event": "note",
                        "text": f"layer {layer + 1}: {self._per_pass[layer]} of {count} candidates per pass, "
                        f"{held * self._per_pass[layer] / 2**30:.1f} GiB of activations (the budget "
                        f"{activation_budget() / 2**30:.1f} GiB; --candidates-per-pass sets it)",
                    }
                )
        return self._per_pass[layer]

    def fairness_step(
        self, x: torch.Tensor, y: torch.Tensor, chosen: list[Candidate], suffix: list[Candidate]
    ) -> float:
        """Strict fairness: every allowed candidate at the layer, same batch, gradients summed (mean loss).
        Candidates go `candidates_per_pass` at a time (each group recomputes the prefix). Under DDP
        only the last group's backward all-reduces; the largest candidate goes last, so every
        parameter an earlier group touched is used there too. With `distill` > 0 each candidate's loss mixes
        in the teacher architecture's soft labels (in-place distillation, once-for-all §3.2)."""
        cands = [c for c in self.layer_candidates(len(chosen)) if c != self.largest] + [self.largest]
        size = self.cfg.candidates_per_pass or self.candidates_per_pass(len(chosen), len(cands), len(x))
        groups = [cands[i : i + size] for i in range(0, len(cands), size)]
        soft = self.teacher_probabilities(x)
        total = 0.0
        for i, group in enumerate(groups):
            quiet = (
                self.model.no_sync()
                if isinstance(self.model, DistributedDataParallel) and i < len(groups) - 1
                else contextlib.nullcontext()
            )
            with quiet:
                logits = self.model(x, chosen, group, suffix)
                loss = self.loss(
                    logits.flatten(0, 1), y.repeat(len(group)), None if soft is None else soft.repeat(len(group), 1)
                )
                loss = loss * len(group) / len(cands)
                loss.backward()
            total += loss.item()
        return total

    def teacher_probabilities(self, x: torch.Tensor) -> torch.Tensor | None:
        """Soft labels of the teacher architecture on `x` (no gradient), or None without distillation."""
        if not self.cfg.distill:
            return None
        with torch.no_grad():
            return F.softmax(self.net(x, self.teacher_arch), dim=1)

    def loss(self, logits: torch.Tensor, y: torch.Tensor, soft: torch.Tensor | None) -> torch.Tensor:
        return distilled_loss(logits, y, soft, self.cfg.distill, self.cfg.label_smoothing)

    def evaluate(self, arch_cands: list[Candidate], x: torch.Tensor, y: torch.Tensor, size: int | None = None) -> float:
        """Accuracy of the extracted sub-network after batch-norm recalibration (at input `size`, elastic
        resolution's other sizes, built with that size's 'same' padding as its export is; default the run's)."""
        arch = self.trained_space.arch_from_indices([self.space.candidates.index(c) for c in arch_cands])
        if size in (None, self.res):
            return subnet_accuracy(self.net, arch, x, y, self.calib)
        return subnet_accuracy(self.net, arch, x, y, self.calib_at[size], self.trained_space.with_resolution(size))

    def validation_at(self, size: int) -> torch.Tensor:
        return self.val_x if size == self.res else self.val_at[size]

    def fit_images_at(self, size: int) -> torch.Tensor:
        """The fit split at input `size` (the validation split in runs without one), decoded to tensors per call:
        the spread stage asks once per size."""
        if not len(self.fit_idx):
            return self.validation_at(size)
        return to_tensor((self.data if size == self.res else self.data_at[size]).train_images[self.fit_idx], size)

    def evaluate_layer(self, layer: int, chosen: list[Candidate], size: int | None = None) -> list[float]:
        """T[l, i] for every candidate; 0.0, not evaluated, where the layer may not take it (skip on a
        layer that changes shape: the mask keeps every reader off that cell)."""
        size = size or self.res
        suffix = [self.largest] * (self.space.num_layers - layer - 1)
        allowed = self.space.allowed_indices(layer)
        row = [0.0] * self.space.num_candidates
        for n, i in enumerate(allowed):
            cand = self.space.candidates[i]
            row[i] = self.evaluate(chosen + [cand] + suffix, self.validation_at(size), self.val_y, size)
            self.report(
                {
                    "event": "eval",
                    "stage": "finetune",
                    "layer": layer,
                    "candidate": cand.name if size == self.res else f"{cand.name} @{size}px",
                    "index": n + 1,
                    "count": len(allowed),
                    "accuracy": row[i],
                }
            )
        return row

    def other_resolutions(self) -> tuple[int, ...]:
        """Elastic resolution's sizes besides the run's own, each measured into a table of its own."""
        return tuple(r for r in self.resolutions if r != self.res)

    # -- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self, opt: torch.optim.Optimizer) -> None:
        if not self.dist.main:
            return
        state = dict(self.state, chosen=[c.name for c in self.state["chosen"]])
        payload = {
            "config": asdict(self.cfg),
            "state_json": json.dumps(state),
            "net": self.net.state_dict(),
            "optimizer": opt.state_dict(),
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        atomic_write_bytes(self.out / CHECKPOINT_FILE, buffer.getvalue())

    def load_checkpoint(self, opt_factory: Callable[[float], torch.optim.Optimizer]) -> torch.optim.Optimizer | None:
        path = self.out / CHECKPOINT_FILE
        if not path.is_file():
            return None
        payload, state = read_checkpoint(path)
        check_resumable(payload, self.cfg, path)
        try:
            self.net.load_state_dict(payload["net"])
            state["chosen"] = [Candidate.parse(str(n)) for n in state["chosen"]]
            opt = opt_factory(self.cfg.lr if state["stage"] == "meta" else self.cfg.finetune_lr)
            opt.load_state_dict(payload["optimizer"])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
            raise SpecializeError(f"--resume: checkpoint {path} does not fit this run: {first_line(exc)}") from None
        self.state = state
        return opt

    # -- the run ---------------------------------------------------------------------------
    def meta_stage(self, resume: bool = False) -> torch.optim.Optimizer:
        """Stage 1 (or what is left of it after a resume): `meta_arch` trained for `epochs`; returns the optimizer."""
        opt = self.load_checkpoint(self.optimizer) if resume else None
        if resume and opt is not None:
            self.report(
                {
                    "event": "resume",
                    "stage": self.state["stage"],
                    "epoch": self.state["epoch"],
                    "layer": self.state["layer"],
                }
            )
        if opt is None and self.probes_head():
            self.probe_head()
        opt = opt or self.optimizer(self.cfg.lr)
        s = self.state
        while s["stage"] == "meta" and s["epoch"] < self.cfg.epochs:
            stats = self.meta_epoch(opt, s["epoch"])
            s["epoch"] += 1
            s["history"].append({"stage": "meta", "epoch": s["epoch"], **stats})
            self.report({"event": "epoch", "stage": "meta", "epoch": s["epoch"], "epochs": self.cfg.epochs, **stats})
            self.save_checkpoint(opt)
        return opt

    def probes_head(self) -> bool:
        """--head-init probe applies to a fresh start from pretrained weights whose classifier was not imported."""
        fresh = self.state["stage"] == "meta" and self.state["epoch"] == 0
        new_head = self.pretrained is not None and self.pretrained["classifier"] != "imported"
        return self.cfg.head_init == "probe" and fresh and new_head

    def probe_head(self) -> None:
        """The new classifier fitted on the pretrained meta network's frozen pooled features (and their flips) of up
        to PROBE_IMAGES training images, with batch norm statistics re-estimated on those images: the meta stage
        normalizes by this data's batch statistics, not ImageNet's (on cat/dog/bird at 96 px a probe fitted under
        ImageNet's statistics fell from 82% to 50% once batch statistics replaced them; fitted under this data's
        own, 75%). Reports the probe's accuracy on the validation split."""
        start = time.time()
        rng = np.random.default_rng(_seeded(self.cfg.seed, 5))
        idx = np.sort(rng.choice(self.train_idx, min(len(self.train_idx), PROBE_IMAGES), replace=False))
        images, labels = self.data.train_images[idx], torch.from_numpy(self.data.train_labels[idx]).long()
        net = self.net.extract(self.meta_architecture).to(memory_format=torch.channels_last)
        recalibrate_bn(net, [to_tensor(images[i : i + 128], self.res) for i in range(0, len(images), 128)])

        def features_of(x: torch.Tensor) -> torch.Tensor:
            return net.features(x.contiguous(memory_format=torch.channels_last))

        statistics = "these images'" + (
            " in the last layer and the head, the pretrained ones elsewhere (--batch-norm frozen)"
            if self.trained_space.batch_norm == "frozen"
            else ""
        )
        features = torch.cat([pooled_features(features_of, images, self.res, flip) for flip in (False, True)])
        classifier = fit_probe(features, torch.cat([labels, labels]), self.space.num_classes)
        with torch.no_grad():
            self.net.classifier.load_state_dict(classifier.state_dict())
            for p in self.net.classifier.parameters() if self.dist.world > 1 else ():
                dist.broadcast(p, 0)
            val = torch.cat([features_of(x) for x in self.val_x.split(128)])
            accuracy = float((classifier(val).argmax(1) == self.val_y).float().mean())
        self.report(
            {
                "event": "note",
                "text": f"classifier fitted as a linear probe on the pretrained network's features of {len(idx)} "
                f"training images and their flips (batch norm statistics: {statistics}): {100 * accuracy:.2f}% on "
                "the validation split",
            }
        )
        self.state["history"].append(
            {"stage": "probe", "images": len(idx), "val_accuracy": accuracy, "seconds": time.time() - start}
        )

    def run(self, resume: bool = False) -> AccuracyTable:
        opt = self.meta_stage(resume)
        s = self.state
        if s["stage"] == "meta":
            s["stage"] = "finetune"
            s["meta_test_accuracy"] = self.test_accuracy(self.meta_arch)
            self.report({"event": "meta_done", "test_accuracy": s["meta_test_accuracy"]})
            opt = self.optimizer(self.cfg.finetune_lr)
            self.save_checkpoint(opt)
        while s["layer"] < self.space.num_layers:
            layer, start = s["layer"], time.time()
            opt = self.optimizer(self.cfg.finetune_lr)  # a fresh optimizer per layer
            loss = self.finetune_layer(opt, layer, s["chosen"])
            row = self.evaluate_layer(layer, s["chosen"])
            for size in self.other_resolutions():  # the path stays the run's size's; each size gets its row
                s.setdefault("accuracy_at", {}).setdefault(str(size), []).append(
                    self.evaluate_layer(layer, s["chosen"], size)
                )
            best = pick_best(row, self.macs[layer], self.space.allowed_indices(layer))
            s["chosen"].append(self.space.candidates[best])
            s["accuracy"].append(row)
            s["layer"] += 1
            s["wall"]["finetune"] += time.time() - start
            s["history"].append(
                {
                    "stage": "finetune",
                    "layer": layer,
                    "loss": loss,
                    "best": self.space.candidates[best].name,
                    "best_accuracy": row[best],
                }
            )
            self.report(
                {
                    "event": "layer",
                    "stage": "finetune",
                    "layer": layer + 1,
                    "layers": self.space.num_layers,
                    "best": self.space.candidates[best].name,
                    "accuracy": row[best],
                    "loss": loss,
                }
            )
            self.save_checkpoint(opt)
        if s["stage"] != "spread":
            s["stage"] = "spread"
            self.save_checkpoint(opt)
        if "spread" not in s:
            s["spread"] = self.measure_spread()
            self.save_checkpoint(opt)
        for size in self.other_resolutions():
            if str(size) not in s.setdefault("spread_at", {}):
                s["spread_at"][str(size)] = self.measure_spread(size)
                self.save_checkpoint(opt)
        return self.finish()

    def measure_spread(self, size: int | None = None) -> list[dict]:
        """Validation accuracy of `spread_samples` sub-networks spread over the MACs range (and the best one),
        each after batch-norm recalibration: the data the table's score -> accuracy fit is made from (at input
        `size` with that size's table)."""
        size = size or self.res
        best = self.space.arch_from_indices([self.space.candidates.index(c) for c in self.state["chosen"]])
        archs = spread_architectures(self.space, self.cfg.spread_samples, _seeded(self.cfg.seed, 30))
        archs = archs + ([best] if best not in archs else [])
        allowed = np.array(self.space.allowed_mask(), dtype=bool)
        rows_at = self.state["accuracy"] if size == self.res else self.state["accuracy_at"][str(size)]
        loss = accuracy_loss(np.asarray(rows_at), allowed)
        rows, out = np.arange(self.space.num_layers), []
        macs = self.macs if size == self.res else cost_arrays(self.space_at[size]).macs
        images = self.fit_images_at(size)
        for i, arch in enumerate(archs):
            genes = np.asarray(arch.indices)
            accuracy = self.evaluate(list(arch.candidates), images, self.fit_y, size)
            out.append(
                {
                    "arch": str(arch),
                    "score": float(loss[rows, genes].sum()),
                    "accuracy": accuracy,
                    "macs": int(macs[rows, genes].sum()),
                }
            )
            self.report(
                {
                    "event": "eval",
                    "stage": "spread",
                    "index": i + 1,
                    "count": len(archs),
                    "arch": str(arch),
                    "accuracy": accuracy,
                    "split": self.fit_split,
                }
            )
        return out

    def test_accuracy(self, cands: list[Candidate], size: int | None = None) -> float:
        size = size or self.res
        x = to_tensor((self.data if size == self.res else self.data_at[size]).test_images, size)
        return self.evaluate(cands, x, torch.from_numpy(self.data.test_labels), size)

    def table_files(self) -> dict[str, str]:
        """Elastic resolution's tables by input size (table.json at the run's own), each listing them all, so
        that a search given any one of them can search every size; {} for a run at one size."""
        return {str(r): "table.json" if r == self.res else f"table-{r}px.json" for r in self.resolutions}

    def finish(self) -> AccuracyTable:
        s = self.state
        best_arch = ",".join(c.name for c in s["chosen"])
        table = self.table_at(self.res, best_arch)
        others = [self.table_at(size, best_arch) for size in self.other_resolutions()]
        if self.dist.main:
            weights = self.out / "weights.pt"
            save_supernet_weights(
                weights,
                self.net,
                getattr(torch, self.cfg.weights_dtype),
                extra={"best_arch": best_arch, "table": "table.json"},
            )
            table.weights = {"file": weights.name, "sha256": sha256_file(weights), "dtype": self.cfg.weights_dtype}
            table.calibration = self.save_calibration()
            for size, other in zip(self.other_resolutions(), others):
                other.weights, other.calibration = table.weights, table.calibration
                other.save(self.out / self.table_files()[str(size)])
            table.save(self.out / "table.json")
        self.report(
            {
                "event": "done",
                "best_arch": best_arch,
                "best_test_accuracy": table.results["best_test_accuracy"],
                "meta_test_accuracy": s["meta_test_accuracy"],
            }
        )
        return table

    def table_at(self, size: int, best_arch: str) -> AccuracyTable:
        """The accuracy table at input `size`: the run's own, or one of elastic resolution's."""
        s = self.state
        own = size == self.res
        spread = s["spread"] if own else s["spread_at"][str(size)]
        n_val = len(self.val_idx)
        return AccuracyTable(
            space=self.space if own else self.space_at[size],
            accuracy=np.asarray(s["accuracy"] if own else s["accuracy_at"][str(size)]),
            best_arch=best_arch,
            trained_space=self.trained_space if own else self.space_at[size],
            proxy=self.cfg.proxy(),
            results={
                "meta_test_accuracy": s["meta_test_accuracy"] if own else None,
                "best_test_accuracy": self.test_accuracy(s["chosen"], size),
                "validation_images": n_val,
                "wall_seconds": s["wall"],
                "history": s["history"],
                "spread": spread,
                "accuracy_fit": fit_accuracy(spread, len(self.fit_y), self.fit_split),
                **({"resolutions": self.table_files()} if self.resolutions else {}),
            },
            provenance=provenance(
                **asdict(self.cfg),
                data_counts={
                    **self.data.counts(),
                    "train_used": len(self.train_idx),
                    "validation": n_val,
                    "fit": int(len(self.fit_idx)),
                    "validation_per_class": self.val_per_class,
                },
                class_names=list(self.space.class_names or ()),
                data_path=str(Path(self.cfg.data).resolve()),
                data_notes=list(self.data.notes),
                world_size=self.dist.world,
                data_parallel=self.data_parallel(),
                pretrained=self.pretrained,
                torch_threads=torch.get_num_threads(),
            ),
        )

    def save_calibration(self) -> dict:
        """The batch-norm recalibration images (uint8, from the training split) beside the weights, so exports
        of this table recalibrate without the dataset. Stored as small as they come: at the data's own size when
        every image has one and it is no larger than the smallest size trained (CIFAR-10's 32x32: 300 images in
        under 1 MB, so a shipped table can carry them), else at that smallest size; an export resizes them to its
        input as training did."""
        images, size = self.smallest_calibration_images()
        path = self.out / CALIBRATION_FILE
        buffer = io.BytesIO()
        np.savez_compressed(buffer, images=images, labels=self.data.train_labels[self.calib_idx])
        atomic_write_bytes(path, buffer.getvalue())
        return {
            "file": path.name,
            "sha256": sha256_file(path),
            "images": int(len(self.calib_idx)),
            "source": f"training split of {self.cfg.data}",
            "resolution": size,
        }

    def smallest_calibration_images(self) -> tuple[np.ndarray, int]:
        smallest = min(self.resolutions or (self.res,))
        native = next((d.source_size for d in [self.data, *self.data_at.values()] if d.source_size), None)
        if native is not None and native < smallest:
            return load_dataset(self.cfg.data, image_size=native).train_images[self.calib_idx], native
        return (self.data_at.get(smallest) or self.data).train_images[self.calib_idx], smallest


def check_resumable(payload: dict, cfg: TrainConfig, path: Path) -> None:
    """A resumed run must match the settings it was started with (RESUMABLE_CHANGES aside, and FINETUNE_SETTINGS
    while the run is still in its meta stage): mixing two configurations in one table is refused, naming the
    first difference. Settings newer than the checkpoint take their defaults."""
    saved = payload.get("config")
    if not isinstance(saved, dict):
        raise SpecializeError(f"--resume: checkpoint {path}: field 'config' is missing")
    try:
        in_meta = json.loads(payload.get("state_json", "{}")).get("stage") == "meta"
    except (ValueError, AttributeError, RecursionError):
        in_meta = False
    free = RESUMABLE_CHANGES + (FINETUNE_SETTINGS if in_meta else ())
    for key, value in asdict(cfg).items():
        if key in saved and key not in free and saved[key] != value:
            raise SpecializeError(
                f"--resume: checkpoint {path} was made with {key}={saved[key]!r}, "
                f"this run asks {key}={value!r}; resume with the same settings or pick another -o"
            )


def init_distributed() -> Dist:
    """Under torchrun: join the process group (NCCL on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def train(
    cfg: TrainConfig, out_dir: str | Path, resume: bool = False, report: Reporter = lambda e: None
) -> AccuracyTable:
    """Run (or resume) the two-stage training; writes table.json, weights.pt and log.jsonl into out_dir."""
    cfg = cfg.with_recipe()
    cfg.check()
    dist_info = init_distributed()
    out = Path(out_dir)
    run_dir = claim_run_dir(out, resume, CHECKPOINT_FILE) if dist_info.main else None  # locked until the run ends
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    log = run_dir.log if run_dir else None

    def report_and_log(event: dict) -> None:
        if log and event["event"] != "step":
            log.write(json.dumps({"time": time.time(), **event}) + "\n")
            log.flush()
        if dist_info.main:
            report(event)

    finished = False
    try:
        if resume and (out / CHECKPOINT_FILE).is_file():  # refuse a bad or foreign checkpoint before loading any data
            saved = read_checkpoint(out / CHECKPOINT_FILE)[0]
            cfg = cfg.as_checkpointed(saved.get("config") if isinstance(saved, dict) else None)
            check_resumable(saved, cfg, out / CHECKPOINT_FILE)
        table = Trainer(cfg, out, report_and_log, dist_info).run(resume)
        finished = True
        return table
    finally:
        if run_dir:
            run_dir.close(finished)
        if dist_info.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
