"""Bounds on an architecture's resources, compiled into one vectorized `Problem` that every solver reads.

A chromosome (architecture) is one candidate index per layer. The score to maximize is the sum of
the accuracy-loss table T_d (PONAS §3.3). Bounds are EPNAS intervals [C_l, C_u] on:

- latency_ms (Σ per-block latency of a device profile + its offset), macs, params: linear, one row each;
- intensity = 2·MACs / bytes (FLOPs per byte): `intensity >= c` is the linear row
  Σ (2·macs − c·bytes) + fixed >= 0 (and `<= c` likewise);
- peak_activation_bytes, a max over layers: an upper bound removes candidates per layer (`allowed`),
  a lower bound is the linear row "at least one chosen block reaches it".

`allowed` starts from the space's own mask (`CostArrays.allowed`: `skip` only where a layer keeps its
shape), kept apart as `space_allowed`, which no penalty relaxes. A disallowed cell's score and costs
are ordinary numbers (the table stores 0 accuracy there); the mask alone keeps solvers off it.

All rows are stacked in one [rows, layers, candidates] array, so evaluating a population [N, L] of
chromosomes is one fancy-indexing gather and a sum.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable, TypeVar

import numpy as np

from specialize.cost import CostArrays
from specialize.registry import Registry
from specialize.errors import SpecializeError, option
from specialize.units import (
    format_bytes,
    format_count,
    format_ratio,
    format_time_ms,
    parse_bytes,
    parse_count,
    parse_ratio,
    parse_time_ms,
)


TOLERANCE = 1e-9  # relative slack on every bound, far below any meaningful difference


@dataclass(frozen=True)
class Metric:
    key: str  # field of a result: "macs"
    option: str  # option stem: "flops" -> --max-flops / max_flops=
    label: str  # what it is called in messages: "MACs"
    parse: Callable[[str | float], float]
    format: Callable[..., str]
    help: str  # what a bound on it takes, for --help


METRICS: Registry[Metric] = Registry(
    "metric",
    items={
        m.key: m
        for m in (
            Metric(
                "latency_ms",
                "latency",
                "latency",
                parse_time_ms,
                format_time_ms,
                "latency on the device: 20ms, 500us, 0.02s (bare number = ms)",
            ),
            Metric(
                "macs",
                "flops",
                "MACs",
                parse_count,
                format_count,
                "MACs (what MobileNet papers call FLOPs): 300M, 1.2G",
            ),
            Metric("params", "params", "parameters", parse_count, format_count, "parameters: 4.2M, 800k"),
            Metric(
                "intensity",
                "intensity",
                "compute intensity (FLOPs/byte)",
                parse_ratio,
                format_ratio,
                "compute intensity, FLOPs (2 x MACs) per byte moved: 80",
            ),
            Metric(
                "peak_activation_bytes",
                "peak_memory",
                "peak activation memory",
                parse_bytes,
                format_bytes,
                "peak activation memory in bytes: 2M, 2MB, 1.5MiB",
            ),
        )
    },
)
OPTION_TO_METRIC = {m.option: m.key for m in METRICS.values()}
SIDES = {"max": "upper", "min": "lower"}
# Every bound option, declared here once: max_latency, min_latency, max_flops, ... (keyword -> (side, metric)).
BOUND_OPTIONS: dict[str, tuple[str, Metric]] = {
    f"{side}_{m.option}": (side, m) for m in METRICS.values() for side in SIDES
}
F = TypeVar("F", bound=Callable)


def takes_bounds(fn: F) -> F:
    """Show the bound keywords (max_flops=..., one per BOUND_OPTIONS entry, default None) in place of
    `fn`'s `**bounds`, so help() and IDEs list them; calls are unchanged (bounds_from_options checks names)."""
    params = list(inspect.signature(fn).parameters.values())
    keywords = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation="str | float | None")
        for name in BOUND_OPTIONS
    ]
    fn.__signature__ = inspect.signature(fn).replace(
        parameters=[p for p in params if p.kind != p.VAR_KEYWORD] + keywords
    )
    return fn


@dataclass(frozen=True)
class Bound:
    metric: str  # a key of METRICS
    lower: float | None = None
    upper: float | None = None
    tolerance: float = 0.0  # stated slack on both sides (set for near-zero-width intervals, reach.py)

    @property
    def low(self) -> float | None:
        return None if self.lower is None else self.lower - self.tolerance

    @property
    def high(self) -> float | None:
        return None if self.upper is None else self.upper + self.tolerance

    def flags(self) -> list[str]:
        """The options as the caller gave them: ['--min-flops 100M', '--max-flops 300M'] (errors.option)."""
        m = METRICS[self.metric]
        out = [option(f"min_{m.option}", m.format(self.lower))] if self.lower is not None else []
        return out + ([option(f"max_{m.option}", m.format(self.upper))] if self.upper is not None else [])

    def holds(self, value: float, rel: float = TOLERANCE) -> bool:
        low, high = self.low, self.high
        return (low is None or value >= low * (1 - rel)) and (high is None or value <= high * (1 + rel))


def bounds_from_options(**options: str | float | None) -> tuple[Bound, ...]:
    """`max_flops="300M", min_latency="5ms"` -> Bounds; unknown names and malformed values raise."""
    limits: dict[str, dict[str, float]] = {}
    for name, text in options.items():
        if text is None:
            continue
        if name not in BOUND_OPTIONS:
            raise SpecializeError(f"unknown bound {name!r}; valid: {', '.join(BOUND_OPTIONS)}")
        side, metric = BOUND_OPTIONS[name]
        limits.setdefault(metric.key, {})[SIDES[side]] = metric.parse(text)
    bounds = tuple(Bound(key, **sides) for key, sides in limits.items())
    for b in bounds:
        if b.lower is not None and b.upper is not None and b.lower > b.upper:
            low, high = b.flags()
            raise SpecializeError(f"{low} is above {high}: the interval is empty")
    return bounds


@dataclass(frozen=True)
class Problem:
    """Everything a solver needs, as arrays. Score and rows are [layers, candidates]."""

    space_name: str
    device: str | None
    score: np.ndarray  # [L, C] accuracy loss T_d (<= 0); maximize the sum
    allowed: np.ndarray  # [L, C] bool: candidates left after per-layer filters
    rows: np.ndarray  # [K, L, C] linear constraint coefficients
    row_fixed: np.ndarray  # [K] architecture-independent part of each row
    row_lo: np.ndarray  # [K] lower limit (-inf if none)
    row_hi: np.ndarray  # [K] upper limit (+inf if none)
    bounds: tuple[Bound, ...]
    linear: dict[str, tuple[np.ndarray, float]] = field(repr=False)  # metric -> ([L, C], fixed)
    peak: tuple[np.ndarray, float] = field(repr=False)  # ([L, C] peak bytes, fixed peak)
    fixed_infeasible: tuple[Bound, ...] = ()  # bounds the fixed stem/head alone already break
    space_allowed: np.ndarray | None = None  # [L, C] bool: the space's own mask (skip only where shapes match)

    @property
    def structural(self) -> np.ndarray:
        """[L, C] the space's mask: what even a soft penalty may not relax (all True when not given)."""
        return np.ones(self.score.shape, dtype=bool) if self.space_allowed is None else self.space_allowed

    candidates: tuple[str, ...] = ()  # candidate names ("k3e3", "skip", ...): what a policy's actions change

    @property
    def num_layers(self) -> int:
        return self.score.shape[0]

    def gather(self, table: np.ndarray, pop: np.ndarray) -> np.ndarray:
        """table[..., l, pop[n, l]] for every chromosome: [..., N, L] (one `take` over flattened [L*C])."""
        layers, cands = table.shape[-2:]
        return np.take(table.reshape(*table.shape[:-2], layers * cands), pop + self.offsets, axis=-1)

    @cached_property
    def offsets(self) -> np.ndarray:
        """[L] where each layer's candidates start in a flattened [L*C] table."""
        return np.arange(self.num_layers) * self.score.shape[1]

    def scores(self, pop: np.ndarray) -> np.ndarray:
        return self.gather(self.score, pop).sum(axis=-1)

    def row_values(self, pop: np.ndarray) -> np.ndarray:
        """[K, N] value of every constraint row for every chromosome."""
        return self.gather(self.rows, pop).sum(axis=-1) + self.row_fixed[:, None]

    def row_violation(self, values: np.ndarray) -> np.ndarray:
        """[K, N] how far each row is outside its limits, in units of the row's reachable range."""
        over = np.maximum(values - self.row_hi[:, None], 0) + np.maximum(self.row_lo[:, None] - values, 0)
        return over / self.row_scale[:, None]

    @cached_property
    def any_filtered(self) -> bool:
        return not self.allowed.all()

    @cached_property
    def row_scale(self) -> np.ndarray:
        mask = self.structural[None]
        high = np.where(mask, self.rows, -np.inf).max(axis=2).sum(axis=1)
        low = np.where(mask, self.rows, np.inf).min(axis=2).sum(axis=1)
        return np.maximum(high - low, 1e-12)

    @cached_property
    def one_sided(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows as Σ A'[l, g_l] <= b' (a two-sided row becomes two), for a 4-operation feasibility test.
        A row may miss its limit by TOLERANCE of its range (float sums of latencies are not exact), and never by
        more than TOLERANCE of the limit itself, the slack `Bound.holds` gives: an answer this test passes is one
        the printed bound check passes too."""
        lower, upper = np.isfinite(self.row_lo), np.isfinite(self.row_hi)
        rows = np.concatenate([self.rows[upper], -self.rows[lower]])
        limits = np.concatenate(
            [self.row_hi[upper] - self.row_fixed[upper], self.row_fixed[lower] - self.row_lo[lower]]
        )
        scale = np.concatenate(
            [
                np.minimum(self.row_scale[upper], np.abs(self.row_hi[upper])),
                np.minimum(self.row_scale[lower], np.abs(self.row_lo[lower])),
            ]
        )
        slack = TOLERANCE * scale
        return rows, (limits + slack)[:, None]

    def feasible(self, pop: np.ndarray) -> np.ndarray:
        """[N] bool: every gene allowed and every row inside its limits."""
        if self.fixed_infeasible:
            return np.zeros(pop.shape[:-1], dtype=bool)
        rows, limits = self.one_sided
        ok = (
            (self.gather(rows, pop).sum(axis=-1) <= limits).all(axis=0)
            if len(rows)
            else np.ones(pop.shape[:-1], dtype=bool)
        )
        return ok & self.gather(self.allowed, pop).all(axis=-1) if self.any_filtered else ok

    def capped(self, metric: str, upper: float) -> "Problem":
        """This problem with one more linear upper bound (used to check points of a Pareto front)."""
        arr, fixed = self.linear[metric]
        return replace(
            self,
            rows=np.concatenate([self.rows, arr[None]]),
            row_fixed=np.append(self.row_fixed, fixed),
            row_lo=np.append(self.row_lo, -np.inf),
            row_hi=np.append(self.row_hi, upper),
            bounds=self.bounds + (Bound(metric, upper=upper),),
        )

    def excluding(self, genes: np.ndarray) -> "Problem":
        """This problem without one architecture: the no-good cut Σ_l x[l, g_l] <= L - 1."""
        cut = np.zeros(self.score.shape)
        cut[np.arange(self.num_layers), genes] = 1.0
        return replace(
            self,
            rows=np.concatenate([self.rows, cut[None]]),
            row_fixed=np.append(self.row_fixed, 0.0),
            row_lo=np.append(self.row_lo, -np.inf),
            row_hi=np.append(self.row_hi, self.num_layers - 1),
        )

    def measure(self, pop: np.ndarray) -> dict[str, np.ndarray]:
        """[N] value of every metric (latency only with a device profile)."""
        out = {key: self.gather(arr, pop).sum(axis=-1) + fixed for key, (arr, fixed) in self.linear.items()}
        out["intensity"] = 2 * out["macs"] / out["bytes"]
        peak, fixed_peak = self.peak
        out["peak_activation_bytes"] = np.maximum(self.gather(peak, pop).max(axis=-1), fixed_peak)
        return out


def build_problem(
    loss: np.ndarray,
    costs: CostArrays,
    bounds: tuple[Bound, ...],
    space_name: str,
    latency: tuple[np.ndarray, float] | None = None,
    device: str | None = None,
    candidates: tuple[str, ...] = (),
) -> Problem:
    """Compile bounds into rows and per-layer filters. `latency` is ([L, C] block ms, offset ms);
    `candidates` names the columns (the space's candidate names)."""
    linear = {
        "macs": (costs.macs.astype(float), float(costs.fixed_macs)),
        "params": (costs.params.astype(float), float(costs.fixed_params)),
        "bytes": (costs.bytes.astype(float), float(costs.fixed_bytes)),
    }
    if latency is not None:
        linear["latency_ms"] = (np.asarray(latency[0], dtype=float), float(latency[1]))
    peak = (costs.peak_activation_bytes.astype(float), float(costs.fixed_peak_activation_bytes))
    if costs.allowed.shape != np.shape(loss):
        raise SpecializeError(f"accuracy table {np.shape(loss)} and cost arrays {costs.allowed.shape} differ in shape")
    allowed = costs.allowed.copy()
    rows: list[tuple[np.ndarray, float, float, float]] = []
    fixed_bad: list[Bound] = []
    for b in bounds:
        if b.metric == "latency_ms" and latency is None:
            raise SpecializeError(
                f"{' and '.join(b.flags())} needs a device: give {option('device')} or {option('profile')}"
            )
        if b.metric in linear:
            arr, fixed = linear[b.metric]
            rows.append((arr, fixed, -np.inf if b.low is None else b.low, np.inf if b.high is None else b.high))
        elif b.metric == "intensity":
            rows += _intensity_rows(linear, b)
        else:
            allowed, peak_rows, broken = _peak_filters(peak, b, allowed)
            rows += peak_rows
            fixed_bad += [b] if broken else []
    problem = _assemble(loss, allowed, rows, bounds, linear, peak, space_name, device, tuple(fixed_bad))
    return replace(problem, space_allowed=costs.allowed, candidates=tuple(candidates))


def _intensity_rows(linear: dict, b: Bound) -> list[tuple[np.ndarray, float, float, float]]:
    """2·MACs − c·bytes >= 0 (lower c) and <= 0 (upper c)."""
    (macs, fm), (nbytes, fb) = linear["macs"], linear["bytes"]
    out = []
    if b.low is not None:
        out.append((2 * macs - b.low * nbytes, 2 * fm - b.low * fb, 0.0, np.inf))
    if b.high is not None:
        out.append((2 * macs - b.high * nbytes, 2 * fm - b.high * fb, -np.inf, 0.0))
    return out


def _peak_filters(peak: tuple[np.ndarray, float], b: Bound, allowed: np.ndarray):
    """Upper bound: drop candidates above it. Lower bound: at least one block (or the fixed part) reaches it."""
    arr, fixed = peak
    broken = b.upper is not None and fixed > b.upper
    if b.upper is not None:
        allowed = allowed & (arr <= b.upper)
    rows = []
    if b.lower is not None and fixed < b.lower:
        rows.append(((arr >= b.lower).astype(float), 0.0, 1.0, np.inf))
    return allowed, rows, broken


def _assemble(loss, allowed, rows, bounds, linear, peak, space_name, device, fixed_bad) -> Problem:
    shape = loss.shape
    stack = np.stack([r[0] for r in rows]) if rows else np.zeros((0, *shape))

    def column(i: int) -> np.ndarray:
        return np.array([r[i] for r in rows], dtype=float)

    return Problem(
        space_name,
        device,
        np.asarray(loss, dtype=float),
        allowed,
        stack,
        column(1),
        column(2),
        column(3),
        tuple(bounds),
        linear,
        peak,
        fixed_bad,
    )
