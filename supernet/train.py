"""PONAS two-stage supernet training (§3.2) that writes an accuracy table.

Stage 1 (meta): train the meta network, every layer at its largest candidate.
Stage 2 (progressive fine-tuning), for layer l = 1..L: the supernet has the chosen blocks before l,
all candidates at l and the largest block after l. Each step every candidate at l runs forward and
backward on the same batch (strict fairness), gradients accumulate, one optimizer step. Then every
candidate is evaluated on the validation split (after batch-norm recalibration): T[l, i]; the best
is fixed at l.

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
from dataclasses import asdict, dataclass
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
from specialize.space import Candidate, get_space
from specialize.table import AccuracyTable
from supernet.bn import recalibrate_bn
from supernet.checkpoint import save_supernet_weights
from supernet.data import augment, balanced_split, calibration_batches, load_dataset, to_tensor
from supernet.elastic import Supernet

CHECKPOINT_FILE = "checkpoint.pt"


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
    schedule: str = "cosine"        # cosine | step
    val_per_class: int = 50         # PONAS holds out 50 images per class
    calib_images: int = 300         # batch-norm recalibration sample
    seed: int = 0
    weights_dtype: str = "float16"
    threads: int | None = None
    candidates_per_pass: int | None = None   # strict fairness: candidates per forward (None: all; fewer saves memory)

    def proxy(self) -> dict:
        return {"width": self.width, "resolution": self.resolution, "sample_ratio": self.sample_ratio,
                "epochs": self.epochs, "finetune_epochs": self.finetune_epochs}


@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


Reporter = Callable[[dict], None]


class FairnessPass(nn.Module):
    """One forward of a training step: the `chosen` blocks run once, then each of `cands` (at the next
    layer) followed by `suffix` runs on that shared prefix. Returns logits
    [candidates, batch, classes]; the prefix's gradient sums over the candidates in one backward."""

    def __init__(self, net: Supernet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, chosen: list[Candidate], cands: list[Candidate],
                suffix: list[Candidate]) -> torch.Tensor:
        prefix = self.net.run_blocks(self.net.features_in(x), chosen)
        return torch.stack([self.net.classify(self.net.run_blocks(prefix, [c] + suffix, start=len(chosen)))
                            for c in cands])


def _seeded(seed: int, *parts: int) -> int:
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1)[0])


def _lr_at(cfg: TrainConfig, base: float, step: int, total: int) -> float:
    if cfg.schedule == "step":
        return base * (0.1 ** (3 * step // max(total, 1)))
    return base * 0.5 * (1 + math.cos(math.pi * step / max(total, 1)))


class Trainer:
    def __init__(self, cfg: TrainConfig, out_dir: str | Path, report: Reporter = lambda e: None, dist_info: Dist = Dist()):
        self.cfg, self.out, self.report, self.dist = cfg, Path(out_dir), report, dist_info
        self.space = get_space(cfg.space)
        self.trained_space = self.space.scaled(cfg.width, cfg.resolution)
        self.data = load_dataset(cfg.data)
        if len(self.data.classes) != self.space.num_classes:
            raise SpecializeError(f"space {self.space.name!r} has {self.space.num_classes} classes but {cfg.data} has "
                                  f"{len(self.data.classes)}: {', '.join(self.data.classes)}")
        rest, val = balanced_split(self.data.train_labels, cfg.val_per_class, cfg.seed)
        rng = np.random.default_rng(_seeded(cfg.seed, 1))
        self.train_idx = np.sort(rng.choice(rest, max(1, int(round(len(rest) * cfg.sample_ratio))), replace=False))
        self.val_idx = val
        self.res = self.trained_space.resolution
        self.val_x = to_tensor(self.data.train_images[val], self.res)
        self.val_y = torch.from_numpy(self.data.train_labels[val])
        self.calib = calibration_batches(self.data, self.res, cfg.calib_images, 100, cfg.seed)
        torch.manual_seed(_seeded(cfg.seed, 0))
        self.net = Supernet(self.trained_space)
        self.model = FairnessPass(self.net)
        if dist_info.world > 1:   # SE weights of unchosen candidates get no gradient in some passes
            self.model = DistributedDataParallel(self.model, find_unused_parameters=True)
        self.largest = self.space.largest
        self.state = {"stage": "meta", "epoch": 0, "layer": 0, "chosen": [], "accuracy": [], "wall": {"meta": 0.0, "finetune": 0.0},
                      "history": []}

    # -- batches --------------------------------------------------------------------------
    def batches(self, stage: int, index: int):
        """Shuffled, augmented batches of this rank's shard; randomness fixed by (seed, stage, index)."""
        g = torch.Generator().manual_seed(_seeded(self.cfg.seed, stage, index))
        order = self.train_idx[torch.randperm(len(self.train_idx), generator=g).numpy()]
        per_rank = self.cfg.batch_size // self.dist.world
        usable = len(order) // self.cfg.batch_size * self.cfg.batch_size or len(order)
        for start in range(0, usable, self.cfg.batch_size):
            idx = order[start:start + self.cfg.batch_size][self.dist.rank * per_rank:(self.dist.rank + 1) * per_rank]
            x = augment(to_tensor(self.data.train_images[idx], self.res), g)
            yield x, torch.from_numpy(self.data.train_labels[idx])

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
        return torch.optim.SGD(self.net.parameters(), lr=lr, momentum=self.cfg.momentum, weight_decay=self.cfg.weight_decay, nesterov=True)

    def meta_epoch(self, opt: torch.optim.Optimizer, epoch: int) -> dict:
        self.net.train()
        torch.manual_seed(_seeded(self.cfg.seed, 10, epoch))
        arch = [self.largest] * self.space.num_layers
        total, per_epoch = self.cfg.epochs * self.steps_per_epoch(), self.steps_per_epoch()
        losses, correct, seen = [], 0, 0
        for step, (x, y) in enumerate(self.batches(10, epoch)):
            for group in opt.param_groups:
                group["lr"] = _lr_at(self.cfg, self.cfg.lr, epoch * per_epoch + step, total)
            logits = self.model(x, [], arch[:1], arch[1:])[0]
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
            self.report({"event": "step", "stage": "meta", "epoch": epoch, "step": step + 1, "steps": per_epoch,
                         "loss": float(np.mean(losses[-20:])), "train_accuracy": correct / max(seen, 1)})
        self._sync_buffers()
        return {"loss": float(np.mean(losses)), "train_accuracy": correct / max(seen, 1)}

    def finetune_layer(self, opt: torch.optim.Optimizer, layer: int, chosen: list[Candidate]) -> float:
        self.net.train()
        torch.manual_seed(_seeded(self.cfg.seed, 20, layer))
        cands = self.space.candidates
        suffix = [self.largest] * (self.space.num_layers - layer - 1)
        batches = list(self.batches(20, layer))
        steps = max(1, int(round(len(batches) * self.cfg.finetune_epochs)))
        losses = []
        for step, (x, y) in enumerate(batches[:steps] if steps <= len(batches) else (batches * math.ceil(steps / len(batches)))[:steps]):
            for group in opt.param_groups:
                group["lr"] = _lr_at(self.cfg, self.cfg.finetune_lr, step, steps)
            opt.zero_grad(set_to_none=True)
            step_loss = self.fairness_step(x, y, chosen, suffix)
            opt.step()
            losses.append(step_loss)
            self.report({"event": "step", "stage": "finetune", "layer": layer, "step": step + 1, "steps": steps,
                         "loss": float(np.mean(losses[-20:]))})
        self._sync_buffers()
        return float(np.mean(losses))

    def fairness_step(self, x: torch.Tensor, y: torch.Tensor, chosen: list[Candidate], suffix: list[Candidate]) -> float:
        """Strict fairness: every candidate at the layer, same batch, gradients summed (mean loss).
        Candidates go `candidates_per_pass` at a time (each group recomputes the prefix). Under DDP
        only the last group's backward all-reduces; the largest candidate goes last, so every
        parameter an earlier group touched is used there too."""
        cands = [c for c in self.space.candidates if c != self.largest] + [self.largest]
        size = self.cfg.candidates_per_pass or len(cands)
        groups = [cands[i:i + size] for i in range(0, len(cands), size)]
        total = 0.0
        for i, group in enumerate(groups):
            quiet = self.model.no_sync() if isinstance(self.model, DistributedDataParallel) and i < len(groups) - 1 \
                else contextlib.nullcontext()
            with quiet:
                logits = self.model(x, chosen, group, suffix)
                loss = F.cross_entropy(logits.flatten(0, 1), y.repeat(len(group))) * len(group) / len(cands)
                loss.backward()
            total += loss.item()
        return total

    @torch.no_grad()
    def evaluate(self, arch_cands: list[Candidate], x: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy of the extracted sub-network after batch-norm recalibration."""
        arch = self.trained_space.arch_from_indices([self.space.candidates.index(c) for c in arch_cands])
        net = self.net.extract(arch)
        recalibrate_bn(net, self.calib)
        correct = sum((net(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item() for i in range(0, len(y), 500))
        return correct / len(y)

    def evaluate_layer(self, layer: int, chosen: list[Candidate]) -> list[float]:
        suffix = [self.largest] * (self.space.num_layers - layer - 1)
        row = []
        for i, cand in enumerate(self.space.candidates):
            row.append(self.evaluate(chosen + [cand] + suffix, self.val_x, self.val_y))
            self.report({"event": "eval", "stage": "finetune", "layer": layer, "candidate": cand.name, "index": i + 1,
                         "count": self.space.num_candidates, "accuracy": row[-1]})
        return row

    # -- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self, opt: torch.optim.Optimizer) -> None:
        if not self.dist.main:
            return
        state = dict(self.state, chosen=[c.name for c in self.state["chosen"]])
        payload = {"config": asdict(self.cfg), "state_json": json.dumps(state), "net": self.net.state_dict(), "optimizer": opt.state_dict()}
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        atomic_write_bytes(self.out / CHECKPOINT_FILE, buffer.getvalue())

    def load_checkpoint(self, opt_factory: Callable[[float], torch.optim.Optimizer]) -> torch.optim.Optimizer | None:
        path = self.out / CHECKPOINT_FILE
        if not path.is_file():
            return None
        payload = torch.load(path, map_location="cpu", weights_only=True)
        saved = payload["config"]
        for key in ("space", "width", "resolution", "sample_ratio", "epochs", "seed", "batch_size", "finetune_epochs"):
            if saved.get(key) != getattr(self.cfg, key):
                raise SpecializeError(f"--resume: checkpoint {path} was made with {key}={saved.get(key)!r}, "
                                      f"this run asks {key}={getattr(self.cfg, key)!r}")
        self.net.load_state_dict(payload["net"])
        state = json.loads(payload["state_json"])
        state["chosen"] = [Candidate.parse(n) for n in state["chosen"]]
        self.state = state
        opt = opt_factory(self.cfg.lr if state["stage"] == "meta" else self.cfg.finetune_lr)
        opt.load_state_dict(payload["optimizer"])
        return opt

    # -- the run ---------------------------------------------------------------------------
    def run(self, resume: bool = False) -> AccuracyTable:
        opt = self.load_checkpoint(self.optimizer) if resume else None
        if resume and opt is not None:
            self.report({"event": "resume", "stage": self.state["stage"], "epoch": self.state["epoch"], "layer": self.state["layer"]})
        opt = opt or self.optimizer(self.cfg.lr)
        s = self.state
        while s["stage"] == "meta" and s["epoch"] < self.cfg.epochs:
            start = time.time()
            stats = self.meta_epoch(opt, s["epoch"])
            s["epoch"] += 1
            s["wall"]["meta"] += time.time() - start
            s["history"].append({"stage": "meta", "epoch": s["epoch"], **stats})
            self.report({"event": "epoch", "stage": "meta", "epoch": s["epoch"], "epochs": self.cfg.epochs, **stats})
            self.save_checkpoint(opt)
        if s["stage"] == "meta":
            s["stage"] = "finetune"
            s["meta_test_accuracy"] = self.test_accuracy([self.largest] * self.space.num_layers)
            self.report({"event": "meta_done", "test_accuracy": s["meta_test_accuracy"]})
            opt = self.optimizer(self.cfg.finetune_lr)
            self.save_checkpoint(opt)
        while s["layer"] < self.space.num_layers:
            layer, start = s["layer"], time.time()
            opt = self.optimizer(self.cfg.finetune_lr)  # a fresh optimizer per layer
            loss = self.finetune_layer(opt, layer, s["chosen"])
            row = self.evaluate_layer(layer, s["chosen"])
            best = int(np.argmax(row))
            s["chosen"].append(self.space.candidates[best])
            s["accuracy"].append(row)
            s["layer"] += 1
            s["wall"]["finetune"] += time.time() - start
            s["history"].append({"stage": "finetune", "layer": layer, "loss": loss, "best": self.space.candidates[best].name,
                                 "best_accuracy": row[best]})
            self.report({"event": "layer", "stage": "finetune", "layer": layer + 1, "layers": self.space.num_layers,
                         "best": self.space.candidates[best].name, "accuracy": row[best], "loss": loss})
            self.save_checkpoint(opt)
        return self.finish()

    def test_accuracy(self, cands: list[Candidate]) -> float:
        x = to_tensor(self.data.test_images, self.res)
        return self.evaluate(cands, x, torch.from_numpy(self.data.test_labels))

    def finish(self) -> AccuracyTable:
        s = self.state
        best_arch = ",".join(c.name for c in s["chosen"])
        best_test = self.test_accuracy(s["chosen"])
        table = AccuracyTable(
            space=self.space, accuracy=np.asarray(s["accuracy"]), best_arch=best_arch, trained_space=self.trained_space,
            proxy=self.cfg.proxy(),
            results={"meta_test_accuracy": s["meta_test_accuracy"], "best_test_accuracy": best_test,
                     "wall_seconds": s["wall"], "history": s["history"]},
            provenance=provenance(**asdict(self.cfg), data_counts={**self.data.counts(), "train_used": len(self.train_idx),
                                                                     "validation": len(self.val_idx)},
                                  world_size=self.dist.world, data_parallel=self.data_parallel(),
                                  torch_threads=torch.get_num_threads()),
        )
        if self.dist.main:
            weights = self.out / "weights.pt"
            save_supernet_weights(weights, self.net, getattr(torch, self.cfg.weights_dtype),
                                  extra={"best_arch": best_arch, "table": "table.json"})
            table.weights = {"file": weights.name, "sha256": sha256_file(weights), "dtype": self.cfg.weights_dtype}
            table.save(self.out / "table.json")
        self.report({"event": "done", "best_arch": best_arch, "best_test_accuracy": best_test,
                     "meta_test_accuracy": s["meta_test_accuracy"]})
        return table


def init_distributed() -> Dist:
    """Under torchrun: join the process group (NCCL on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, report: Reporter = lambda e: None) -> AccuracyTable:
    """Run (or resume) the two-stage training; writes table.json, weights.pt and log.jsonl into out_dir."""
    dist_info = init_distributed()
    out = Path(out_dir)
    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)
        if not resume and (out / CHECKPOINT_FILE).exists():
            raise SpecializeError(f"{out} already holds a run; pass --resume to continue it or pick another -o")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    log = open(out / "log.jsonl", "a") if dist_info.main else None

    def report_and_log(event: dict) -> None:
        if log and event["event"] != "step":
            log.write(json.dumps({"time": time.time(), **event}) + "\n")
            log.flush()
        if dist_info.main:
            report(event)

    try:
        return Trainer(cfg, out, report_and_log, dist_info).run(resume)
    finally:
        if log:
            log.close()
        if dist_info.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
