"""EcoNAS §3 rank consistency of reduced settings: train a zoo of sub-networks from scratch under each
reduced setting (c, r, s, e) and under a reference setting, and report Spearman's rho of each reduced
setting's ranking against the reference's, beside its cost relative to the reference.

Settings use EcoNAS's notation (Table 1): `c2r1s0e30` is channels x (1/sqrt 2)^2, resolution x (1/sqrt 2)^1
(rounded to a multiple of 4, as the paper does: 32, 24, 16, 12, 8), sample ratio 1/2^0 and 30 epochs.
The reference is a setting too (`c0r0s0e10`). Answering "does a table trained at width 0.5 rank the
full-width space?" is `c2r0s0eE` against `c0r0s0eE`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from specialize.cost import arch_cost
from specialize.errors import SpecializeError, option
from specialize.fileio import atomic_write_json
from specialize.sampling import spread_architectures
from specialize.space import Architecture, SearchSpace
from supernet.data import ImageDataset, augment, balanced_split, to_tensor
from supernet.evaluate import top1_accuracy
from supernet.static import build_static

_SETTING_RE = re.compile(r"^c(\d)r(\d)s(\d)e(\d+)$")


@dataclass(frozen=True)
class Setting:
    c: int
    r: int
    s: int
    e: int

    @classmethod
    def parse(cls, text: str) -> "Setting":
        match = _SETTING_RE.match(text.strip())
        if not match or max(int(g) for g in match.groups()[:3]) > 4 or int(match.group(4)) < 1:
            raise SpecializeError(
                f"malformed reduced setting {text!r}: expected c<0-4>r<0-4>s<0-4>e<epochs>, e.g. c2r2s0e4 "
                f"(EcoNAS notation)"
            )
        return cls(*(int(g) for g in match.groups()))

    @property
    def name(self) -> str:
        return f"c{self.c}r{self.r}s{self.s}e{self.e}"

    def width(self) -> float:
        return (1 / math.sqrt(2)) ** self.c

    def resolution(self, full: int) -> int:
        value = full * (1 / math.sqrt(2)) ** self.r
        return int(value) if value == int(value) else max(4, int(round(value / 4)) * 4)

    def sample_ratio(self) -> float:
        return 0.5**self.s


@dataclass
class SettingResult:
    setting: str
    width: float
    resolution: int
    sample_ratio: float
    epochs: int
    cost_ratio: float  # MACs x images seen, relative to the reference
    spearman_rho: float | None  # against the reference (None for the reference itself)
    accuracies: list[float] = field(default_factory=list)
    rho_interval: tuple[float, float] | None = None  # 90% bootstrap interval over the zoo (`rho_interval`)


def rho_interval(
    reference: list[float], reduced: list[float], resamples: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """5th and 95th percentiles of Spearman's rho over `resamples` bootstrap resamples of the zoo's
    architectures: how far a zoo this small lets the figure move (resamples without a ranking on either
    side are skipped; None when none has one)."""
    from scipy.stats import spearmanr

    ref, red = np.asarray(reference), np.asarray(reduced)
    rng, rhos = np.random.default_rng(seed), []
    for _ in range(resamples):
        pick = rng.integers(0, len(ref), len(ref))
        if np.ptp(ref[pick]) > 0 and np.ptp(red[pick]) > 0:
            rhos.append(spearmanr(ref[pick], red[pick])[0])
    rhos = [r for r in rhos if not math.isnan(r)]
    return (float(np.percentile(rhos, 5)), float(np.percentile(rhos, 95))) if rhos else None


def train_and_score(
    space: SearchSpace,
    arch: Architecture,
    setting: Setting,
    data: ImageDataset,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    seed: int,
    batch_size: int = 64,
    lr: float = 0.05,
) -> float:
    """Validation accuracy of `arch` trained from scratch under `setting` (SGD, cosine, crop and flip)."""
    reduced = space.scaled(setting.width(), setting.resolution(space.resolution))
    torch.manual_seed(seed)
    net = build_static(reduced, reduced.arch_from_indices(arch.indices)).to(memory_format=torch.channels_last)
    rng = np.random.default_rng(seed)
    subset = np.sort(
        rng.choice(
            train_idx, min(len(train_idx), max(batch_size, int(len(train_idx) * setting.sample_ratio()))), replace=False
        )
    )
    steps_per_epoch = max(1, len(subset) // batch_size)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    g, total, step = torch.Generator().manual_seed(seed), setting.e * steps_per_epoch, 0
    net.train()
    for _ in range(setting.e):
        order = subset[torch.randperm(len(subset), generator=g).numpy()]
        for i in range(steps_per_epoch):
            idx = order[i * batch_size : (i + 1) * batch_size]
            x = augment(to_tensor(data.train_images[idx], reduced.resolution), g).contiguous(
                memory_format=torch.channels_last
            )
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = F.cross_entropy(net(x), torch.from_numpy(data.train_labels[idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    x_val = to_tensor(data.train_images[val_idx], reduced.resolution)
    return top1_accuracy(net, x_val, torch.from_numpy(data.train_labels[val_idx]))


def cost_of(space: SearchSpace, archs: list[Architecture], setting: Setting, images: int) -> float:
    reduced = space.scaled(setting.width(), setting.resolution(space.resolution))
    macs = sum(arch_cost(reduced.arch_from_indices(a.indices))["macs"] for a in archs)
    return macs * setting.e * setting.sample_ratio() * images


def proxy_check(
    space: SearchSpace,
    data: ImageDataset,
    zoo: int,
    reference: Setting,
    settings: list[Setting],
    *,
    val_per_class: int,  # its default is the CLI's --val-per-class, declared there only
    seed: int = 0,
    progress=lambda text: None,
    checkpoint: str | Path | None = None,
) -> list[SettingResult]:
    """Rank consistency (Spearman rho) of each reduced setting against the reference over a zoo of `zoo`
    architectures spread over the MACs range; the reference comes first in the result. With `checkpoint`,
    every trained architecture's accuracy is written there atomically, and a run that finds the file (from
    the same space, zoo, seed, split and settings) trains only what it lacks: a killed run resumes."""
    from scipy.stats import spearmanr

    if zoo < 3:
        raise SpecializeError(f"{option('zoo')} must be at least 3 to rank architectures, got {zoo}")
    rest, val = balanced_split(data.train_labels, val_per_class, seed)
    archs = spread_architectures(space, zoo, seed)
    key = {
        "space": space.fingerprint,
        "seed": seed,
        "val_per_class": val_per_class,
        "train_images": len(data.train_labels),
        "zoo": [str(a) for a in archs],
    }
    done = load_checkpoint(checkpoint, key) if checkpoint else {}
    reference_cost = cost_of(space, archs, reference, len(rest))
    results = []
    for setting in [reference] + settings:
        accuracies = done.setdefault(setting.name, [])
        for i, arch in enumerate(archs[len(accuracies) :], start=len(accuracies)):
            accuracies.append(train_and_score(space, arch, setting, data, rest, val, seed + i))
            if checkpoint:
                atomic_write_json(checkpoint, {"key": key, "accuracies": done})
            progress(f"{setting.name}: trained {i + 1}/{len(archs)} ({100 * accuracies[-1]:.1f}%)")
        ranked = results and len(set(accuracies)) > 1 and len(set(results[0].accuracies)) > 1
        rho = float(spearmanr(results[0].accuracies, accuracies)[0]) if ranked else None  # ties everywhere: no ranking
        rho = None if rho is None or math.isnan(rho) else rho
        results.append(
            SettingResult(
                setting.name,
                setting.width(),
                setting.resolution(space.resolution),
                setting.sample_ratio(),
                setting.e,
                cost_of(space, archs, setting, len(rest)) / reference_cost,
                rho,
                list(accuracies),
                None if rho is None else rho_interval(results[0].accuracies, accuracies, seed=seed),
            )
        )
    return results


def read_checkpoint(path: str | Path) -> dict | None:
    """The checkpoint file's content, its format checked (None when it does not exist yet): `proxy-check` reads
    it before loading any data, so an edited file is refused before minutes of decoding."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
        accuracies = saved["accuracies"]
        if not isinstance(saved.get("key"), dict) or not all(
            isinstance(v, list) and all(isinstance(a, float) and 0 <= a <= 1 for a in v) for v in accuracies.values()
        ):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise SpecializeError(
            f"proxy-check checkpoint {path}: not a checkpoint written by proxy-check "
            f"(field 'key' or 'accuracies' missing or malformed: accuracies are lists of numbers in [0, 1])"
        ) from None
    return saved


def load_checkpoint(path: str | Path, key: dict) -> dict[str, list[float]]:
    """Accuracies already trained by a run with the same `key`; empty when `path` does not exist yet."""
    saved = read_checkpoint(path)
    if saved is None:
        return {}
    for field_name, value in key.items():
        if saved["key"].get(field_name) != value:
            raise SpecializeError(
                f"proxy-check checkpoint {path} was written by a different run (field "
                f"'{field_name}' differs); remove it or pass another --checkpoint"
            )
    return {name: list(values)[: len(key["zoo"])] for name, values in saved["accuracies"].items()}


def plot_proxy_check(results: list[SettingResult], path: str | Path, title: str) -> None:
    """Bars of Spearman rho per reduced setting, labelled with its cost ratio (EcoNAS Fig. 8 style)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from specialize.fileio import atomic_write_bytes

    reduced = results[1:]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(reduced) + 2), 3.5), dpi=120)
    rhos = [r.spearman_rho if r.spearman_rho is not None else 0.0 for r in reduced]
    bars = ax.bar([r.setting for r in reduced], rhos, color="tab:blue")
    for bar, r in zip(bars, reduced):
        ax.annotate(
            f"cost x{r.cost_ratio:.2f}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.set_ylabel(f"Spearman rho vs {results[0].setting}")
    ax.set_ylim(min(0.0, min(rhos, default=0) - 0.1), 1.05)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def to_dict(results: list[SettingResult]) -> dict:
    return {"reference": results[0].setting, "settings": [asdict(r) for r in results]}
