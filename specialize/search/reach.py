"""What the space can reach on each metric, and the message for bounds that no architecture meets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from specialize.cost import masked_extremes
from specialize.errors import InfeasibleError
from specialize.search.constraints import METRICS, Bound, Problem


NARROW = 1e-3  # intervals narrower than this share of their metric's reachable range are widened to it


def with_tolerance(problem: Problem, bounds: tuple[Bound, ...]) -> tuple[Bound, ...]:
    """Give an interval narrower than NARROW of its metric's reachable range (min == max included) a
    stated tolerance that makes it that wide. An exact-sum knapsack row can keep HiGHS busy for minutes;
    at this width it answers in a fraction of a second. Peak memory is a max, not a sum: left as is."""
    out = []
    for b in bounds:
        known = b.metric in problem.linear or b.metric == "intensity"
        if b.lower is None or b.upper is None or not known:
            out.append(b)
            continue
        low, high = reachable(problem, b.metric)
        width = NARROW * (high - low)
        out.append(replace(b, tolerance=(width - (b.upper - b.lower)) / 2) if b.upper - b.lower < width else b)
    return tuple(out)


def reachable(problem: Problem, metric: str) -> tuple[float, float]:
    """Smallest and largest value of `metric` over the whole space (no bounds applied)."""
    if metric == "intensity":
        return _ratio_extreme(problem, np.argmin), _ratio_extreme(problem, np.argmax)
    if metric == "peak_activation_bytes":
        arr, fixed = problem.peak
        low, high = masked_extremes(arr, problem.structural)
        return max(float(low.max()), fixed), max(float(high.max()), fixed)
    arr, fixed = problem.linear[metric]
    low, high = masked_extremes(arr, problem.structural)
    return float(low.sum()) + fixed, float(high.sum()) + fixed


def _ratio_extreme(problem: Problem, pick) -> float:
    """Dinkelbach's method for the extreme of 2·MACs / bytes: per-layer picks, exact in a few steps."""
    (macs, fm), (nbytes, fb) = problem.linear["macs"], problem.linear["bytes"]
    layers, blocked = np.arange(macs.shape[0]), np.inf if pick is np.argmin else -np.inf

    def best(values: np.ndarray) -> np.ndarray:  # per-layer pick over the space's allowed candidates
        return pick(np.where(problem.structural, values, blocked), axis=1)

    genes = best(macs)
    ratio = 2 * (macs[layers, genes].sum() + fm) / (nbytes[layers, genes].sum() + fb)
    for _ in range(100):
        genes = best(2 * macs - ratio * nbytes)
        new = 2 * (macs[layers, genes].sum() + fm) / (nbytes[layers, genes].sum() + fb)
        if abs(new - ratio) <= 1e-12 * abs(ratio):
            break
        ratio = new
    return float(new)


def flag(metric: str, side: str, value: float) -> str:
    m = METRICS[metric]
    return f"--{side}-{m.option.replace('_', '-')} {m.format(value)}"


def explain_infeasible(problem: Problem) -> InfeasibleError:
    """One clause per bound the space cannot reach; if each alone is reachable, say they clash."""
    where = f"space {problem.space_name}" + (f" on {problem.device}" if problem.device else "")
    limits = {b.metric: reachable(problem, b.metric) for b in problem.bounds}
    clauses = [c for b in problem.bounds for c in _clauses(b, limits[b.metric], where)]
    if not clauses:
        given = " ".join(f for b in problem.bounds for f in b.flags())
        ranges = "; ".join(f"{METRICS[k].label} {_fmt(k, lo)} to {_fmt(k, hi)}" for k, (lo, hi) in limits.items())
        clauses = [
            f"no architecture in {where} meets {given} together, though each bound alone is reachable "
            f"(the space spans {ranges})"
        ]
    return InfeasibleError("; ".join(clauses), limits={k: {"min": lo, "max": hi} for k, (lo, hi) in limits.items()})


def _clauses(b: Bound, reach: tuple[float, float], where: str) -> list[str]:
    low, high = reach
    label = METRICS[b.metric].label
    out = []
    if b.upper is not None and b.upper < low:
        out.append(
            f"{flag(b.metric, 'max', b.upper)} is infeasible: the smallest {label} in {where} is {_fmt(b.metric, low)}"
        )
    if b.lower is not None and b.lower > high:
        out.append(
            f"{flag(b.metric, 'min', b.lower)} is infeasible: the largest {label} in {where} is {_fmt(b.metric, high)}"
        )
    return out


def _fmt(metric: str, value: float) -> str:
    return METRICS[metric].format(value, 4)
